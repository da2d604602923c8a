-- title: Weekly averages
-- description: Averages per week (Monday to Sunday) of the last N weeks (default 12): scores, sleep, resting heart rate, HRV, temperature and activity, per account. Leave the account empty for every account.
-- example: weeks=8
-- example: account=SELECT name FROM account ORDER BY id LIMIT 1
SELECT (SELECT a.name FROM account a WHERE a.id = m.account) AS account,
       date(day, '-' || ((CAST(strftime('%w', day) AS INTEGER) + 6) % 7) || ' days') AS week_start,
       count(*) AS days,
       round(avg(sleep_score), 1) AS sleep_score,
       round(avg(readiness_score), 1) AS readiness_score,
       round(avg(activity_score), 1) AS activity_score,
       round(avg(total_sleep_min) / 60, 2) AS sleep_hours,
       round(avg(deep_sleep_min)) AS deep_min,
       round(avg(rem_sleep_min)) AS rem_min,
       round(avg(resting_heart_rate), 1) AS resting_heart_rate,
       round(avg(average_hrv), 1) AS hrv,
       round(avg(temperature_deviation), 2) AS temperature_deviation,
       round(avg(steps)) AS steps,
       round(avg(active_calories)) AS active_calories
FROM daily_metrics m
WHERE m.account IN (SELECT id FROM account WHERE coalesce(:account, '') IN ('', name))
  AND day >= date((SELECT max(l.day) FROM daily_metrics l WHERE l.account = m.account),
                  '-' || (7 * coalesce(CAST(nullif(:weeks, '') AS INTEGER), 12)) || ' days')
GROUP BY m.account, week_start
ORDER BY week_start DESC, m.account
