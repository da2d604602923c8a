-- title: One night: hypnogram and heart rate
-- description: Every 5 minutes of one night's main sleep: sleep stage, heart rate and HRV. Leave the day empty for each account's latest night, the account empty for every account.
-- example: day=SELECT max(day) FROM sleep_night
-- example: account=SELECT name FROM account ORDER BY id LIMIT 1
WITH night AS (
    SELECT n.account, n.sleep_id, n.day
    FROM sleep_night n
    WHERE n.account IN (SELECT id FROM account WHERE coalesce(:account, '') IN ('', name))
      AND n.day = coalesce(nullif(:day, ''),
                           (SELECT max(m.day) FROM sleep_night m WHERE m.account = n.account))
)
SELECT (SELECT a.name FROM account a WHERE a.id = n.account) AS account,
       h.day,
       h.timestamp,
       time(h.timestamp, 'unixepoch') AS utc_time,
       h.phase,
       h.phase_name,
       hr.value AS heart_rate,
       hrv.value AS hrv
FROM night n
JOIN sleep_hypnogram h ON h.account = n.account AND h.sleep_id = n.sleep_id
LEFT JOIN sleep_heart_rate_by_id hr
       ON hr.account = n.account AND hr.document_id = n.sleep_id AND hr.timestamp = h.timestamp
LEFT JOIN sleep_hrv_by_id hrv
       ON hrv.account = n.account AND hrv.document_id = n.sleep_id AND hrv.timestamp = h.timestamp
ORDER BY n.account, h.timestamp
