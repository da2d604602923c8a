-- title: One night: hypnogram and heart rate
-- description: Every 5 minutes of one night's main sleep: sleep stage, heart rate and HRV. Leave the day empty for the latest night.
-- example: day=SELECT max(day) FROM sleep_night
WITH night AS (
    SELECT sleep_id, day
    FROM sleep_night
    WHERE day = coalesce(nullif(:day, ''), (SELECT max(day) FROM sleep_night))
)
SELECT h.day,
       h.timestamp,
       time(h.timestamp, 'unixepoch') AS utc_time,
       h.phase,
       h.phase_name,
       hr.value AS heart_rate,
       hrv.value AS hrv
FROM night n
JOIN sleep_hypnogram h ON h.sleep_id = n.sleep_id
LEFT JOIN sleep_heart_rate_by_id hr ON hr.document_id = n.sleep_id AND hr.timestamp = h.timestamp
LEFT JOIN sleep_hrv_by_id hrv ON hrv.document_id = n.sleep_id AND hrv.timestamp = h.timestamp
ORDER BY h.timestamp
