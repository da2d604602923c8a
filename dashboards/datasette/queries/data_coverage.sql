-- title: Data coverage per type
-- description: For each data type since a day (default: all history): documents, first and last day, days with data and days missing between them. Heart rate counts samples per local day (heartrate_daily), ring battery and interbeat intervals (beats) per UTC day.
-- example: since=SELECT date(max(day), '-180 days') FROM daily_sleep
WITH days AS (
    SELECT data_type, day, documents FROM data_coverage
    WHERE day >= coalesce(nullif(:since, ''), '0000-00-00')
    UNION ALL
    SELECT 'heartrate', day, sum(samples) FROM heartrate_daily
    WHERE day >= coalesce(nullif(:since, ''), '0000-00-00')
    GROUP BY day
    UNION ALL
    SELECT 'ring_battery_level', date(ts, 'unixepoch'), count(*) FROM ring_battery_level
    WHERE ts >= CAST(strftime('%s', coalesce(nullif(:since, ''), '1970-01-01')) AS INTEGER)
    GROUP BY ts / 86400
    UNION ALL
    SELECT 'interbeat_interval', date(ts_ms / 1000, 'unixepoch'), count(*) FROM interbeat_interval
    WHERE ts_ms >= 1000 * CAST(strftime('%s', coalesce(nullif(:since, ''), '1970-01-01')) AS INTEGER)
    GROUP BY ts_ms / 86400000
)
SELECT data_type,
       sum(documents) AS documents,
       min(day) AS first_day,
       max(day) AS last_day,
       count(*) AS days_with_data,
       CAST(julianday(max(day)) - julianday(min(day)) + 1 - count(*) AS INTEGER) AS days_missing
FROM days
GROUP BY data_type
ORDER BY data_type
