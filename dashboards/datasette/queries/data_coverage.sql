-- title: Data coverage per type
-- description: For each account and data type since a day (default: all history): documents, first and last day, days with data and days missing between them. Heart rate counts samples per local day (heartrate_daily), ring battery and interbeat intervals (beats) per UTC day. Leave the account empty for every account.
-- example: since=SELECT date(max(day), '-180 days') FROM daily_sleep
-- example: account=SELECT name FROM account ORDER BY id LIMIT 1
WITH chosen AS (
    SELECT id FROM account WHERE coalesce(:account, '') IN ('', name)
),
days AS (
    SELECT account, data_type, day, documents FROM data_coverage
    WHERE account IN (SELECT id FROM chosen)
      AND day >= coalesce(nullif(:since, ''), '0000-00-00')
    UNION ALL
    SELECT account, 'heartrate', day, sum(samples) FROM heartrate_daily
    WHERE account IN (SELECT id FROM chosen)
      AND day >= coalesce(nullif(:since, ''), '0000-00-00')
    GROUP BY account, day
    UNION ALL
    SELECT account, 'ring_battery_level', date(ts, 'unixepoch'), count(*) FROM ring_battery_level
    WHERE account IN (SELECT id FROM chosen)
      AND ts >= CAST(strftime('%s', coalesce(nullif(:since, ''), '1970-01-01')) AS INTEGER)
    GROUP BY account, ts / 86400
    UNION ALL
    -- Beats by a range of their packed key (account and time), not a scan.
    SELECT c.id, 'interbeat_interval', date(i.ts_ms / 1000, 'unixepoch'), count(*)
    FROM chosen c
    JOIN interbeat_interval i
      ON i.beat >= (c.id - 1) * 4398046511104
                   + 1000 * CAST(strftime('%s', coalesce(nullif(:since, ''), '1970-01-01')) AS INTEGER)
     AND i.beat < c.id * 4398046511104
    GROUP BY c.id, i.ts_ms / 86400000
)
SELECT (SELECT a.name FROM account a WHERE a.id = days.account) AS account,
       data_type,
       sum(documents) AS documents,
       min(day) AS first_day,
       max(day) AS last_day,
       count(*) AS days_with_data,
       CAST(julianday(max(day)) - julianday(min(day)) + 1 - count(*) AS INTEGER) AS days_missing
FROM days
GROUP BY days.account, data_type
ORDER BY days.account, data_type
