-- title: Last nights
-- description: The main sleep of each account's last N nights (default 14) with its scores, stages and physiology, newest first. Leave the account empty for every account.
-- example: nights=7
-- example: account=SELECT name FROM account ORDER BY id LIMIT 1
WITH ranked AS (
    SELECT n.*, ROW_NUMBER() OVER (PARTITION BY n.account ORDER BY n.day DESC) AS nth
    FROM sleep_night n
    WHERE n.account IN (SELECT id FROM account WHERE coalesce(:account, '') IN ('', name))
)
SELECT (SELECT a.name FROM account a WHERE a.id = n.account) AS account,
       n.day,
       n.sleep_score,
       n.readiness_score,
       substr(n.bedtime_start, 12, 5) AS bedtime,
       substr(n.bedtime_end, 12, 5) AS wake_up,
       CAST(round(n.total_sleep_min) AS INTEGER) AS asleep_min,
       CAST(round(n.deep_sleep_min) AS INTEGER) AS deep_min,
       CAST(round(n.light_sleep_min) AS INTEGER) AS light_min,
       CAST(round(n.rem_sleep_min) AS INTEGER) AS rem_min,
       CAST(round(n.awake_min) AS INTEGER) AS awake_min,
       n.efficiency,
       n.lowest_heart_rate,
       round(n.average_heart_rate, 1) AS average_heart_rate,
       n.average_hrv,
       round(n.average_breath, 1) AS average_breath,
       n.temperature_deviation
FROM ranked n
WHERE n.nth <= coalesce(CAST(nullif(:nights, '') AS INTEGER), 14)
ORDER BY n.day DESC, n.account
