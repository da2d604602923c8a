-- title: Workouts by type
-- description: Workouts per activity between two days (default: the last 365 days): count, time, calories and distance, per account. Leave the account empty for every account.
-- example: since=SELECT date(max(day), '-90 days') FROM workout
-- example: until=SELECT max(day) FROM workout
-- example: account=SELECT name FROM account ORDER BY id LIMIT 1
SELECT (SELECT a.name FROM account a WHERE a.id = w.account) AS account,
       activity,
       count(*) AS workouts,
       round(sum(strftime('%s', end_datetime) - strftime('%s', start_datetime)) / 3600.0, 1) AS hours,
       round(avg(strftime('%s', end_datetime) - strftime('%s', start_datetime)) / 60.0) AS average_min,
       round(sum(calories)) AS calories,
       round(sum(distance) / 1000.0, 1) AS distance_km,
       sum(intensity = 'hard') AS hard,
       sum(intensity = 'moderate') AS moderate,
       sum(intensity = 'easy') AS easy,
       max(day) AS last_day
FROM workout w
WHERE w.account IN (SELECT id FROM account WHERE coalesce(:account, '') IN ('', name))
  AND day >= coalesce(nullif(:since, ''),
                      date((SELECT max(l.day) FROM workout l WHERE l.account = w.account), '-365 days'))
  AND day <= coalesce(nullif(:until, ''), (SELECT max(l.day) FROM workout l WHERE l.account = w.account))
GROUP BY w.account, activity
ORDER BY w.account, workouts DESC
