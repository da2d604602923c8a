-- ouradb schema: views for dashboards (Grafana, Datasette, notebooks).
--
-- Applied after the earlier versions by the same migration runner; the
-- conventions of schema.sql hold. These views only read: they add the
-- arithmetic every chart would otherwise repeat (a `time` column in unix
-- seconds, minutes instead of seconds, percentages, local clock hours).
--
-- Documentation convention (read by the Datasette metadata generator): the
-- comment block right above CREATE VIEW describes the view, and each output
-- column sits on its own line ending in `AS name, -- description`.
--
-- `time` on day-keyed views is the day's midnight as unix seconds in UTC
-- ('2024-05-01' -> 1714521600): a day is a calendar label, not an instant,
-- so every day lands on the same grid whatever the user's UTC offset was.

-- One row per day with the headline numbers of every daily collection, for
-- time-series charts: daily_summary plus the remaining daily values.
CREATE VIEW daily_metrics AS
SELECT CAST(strftime('%s', s.day) AS INTEGER) AS time,                         -- the day's midnight, unix seconds (UTC)
       s.day AS day,                                                           -- local day (YYYY-MM-DD)
       s.sleep_score AS sleep_score,                                           -- sleep score, 1..100
       s.readiness_score AS readiness_score,                                   -- readiness score, 1..100
       s.activity_score AS activity_score,                                     -- activity score, 1..100
       s.total_sleep_min AS total_sleep_min,                                   -- time asleep in the main sleep, minutes
       s.deep_sleep_min AS deep_sleep_min,                                     -- deep sleep in the main sleep, minutes
       s.rem_sleep_min AS rem_sleep_min,                                       -- REM sleep in the main sleep, minutes
       n.light_sleep_min AS light_sleep_min,                                   -- light sleep in the main sleep, minutes
       n.awake_min AS awake_min,                                               -- time awake in bed in the main sleep, minutes
       n.time_in_bed_min AS time_in_bed_min,                                   -- time in bed in the main sleep, minutes
       n.latency_min AS latency_min,                                           -- time to fall asleep in the main sleep, minutes
       s.sleep_efficiency AS sleep_efficiency,                                 -- sleep efficiency of the main sleep, percent
       s.resting_heart_rate AS resting_heart_rate,                             -- lowest heart rate of the main sleep, beats per minute
       s.average_heart_rate AS average_heart_rate,                             -- average heart rate of the main sleep, beats per minute
       s.average_hrv AS average_hrv,                                           -- average HRV (RMSSD) of the main sleep, milliseconds
       n.average_breath AS average_breath,                                     -- average breathing rate of the main sleep, breaths per minute
       n.restless_periods AS restless_periods,                                 -- restless periods in the main sleep, count
       s.temperature_deviation AS temperature_deviation,                       -- skin temperature deviation from baseline, degrees Celsius
       (SELECT r.temperature_trend_deviation FROM daily_readiness r
         WHERE r.day = s.day ORDER BY r.id LIMIT 1) AS temperature_trend_deviation, -- weighted temperature trend deviation, degrees Celsius
       s.spo2_average AS spo2_average,                                         -- average SpO2 during sleep, percent
       (SELECT p.breathing_disturbance_index FROM daily_spo2 p
         WHERE p.day = s.day ORDER BY p.id LIMIT 1) AS breathing_disturbance_index, -- breathing disturbance index, events per hour
       s.steps AS steps,                                                       -- steps taken, count
       s.active_calories AS active_calories,                                   -- active energy expenditure, kcal
       s.total_calories AS total_calories,                                     -- total energy expenditure, kcal
       s.walking_distance AS walking_distance,                                 -- walking distance equivalent of the day's activity, metres
       s.high_activity_min AS high_activity_min,                               -- time in high activity, minutes
       s.medium_activity_min AS medium_activity_min,                           -- time in medium activity, minutes
       a.low_activity_time / 60.0 AS low_activity_min,                         -- time in low activity, minutes
       a.sedentary_time / 60.0 AS sedentary_min,                               -- time sedentary, minutes
       a.non_wear_time / 60.0 AS non_wear_min,                                 -- time the ring was not worn, minutes
       s.stress_high_min AS stress_high_min,                                   -- time in high stress, minutes
       s.recovery_high_min AS recovery_high_min,                               -- time in high recovery, minutes
       (SELECT t.day_summary FROM daily_stress t
         WHERE t.day = s.day ORDER BY t.id LIMIT 1) AS stress_summary,          -- the day's stress summary: restored, normal, stressful
       s.resilience_level AS resilience_level,                                 -- resilience level: limited, adequate, solid, strong, exceptional
       (SELECT v.vo2_max FROM vo2_max v
         WHERE v.day = s.day ORDER BY v.id LIMIT 1) AS vo2_max,                 -- VO2 max estimate, ml/kg/min
       (SELECT c.vascular_age FROM daily_cardiovascular_age c
         WHERE c.day = s.day ORDER BY c.id LIMIT 1) AS vascular_age             -- estimated vascular age, years
FROM daily_summary s
LEFT JOIN sleep_night n ON n.day = s.day
LEFT JOIN daily_activity a ON a.id = (SELECT id FROM daily_activity WHERE day = s.day ORDER BY id LIMIT 1);

-- One row per day with the three scores and every contributor behind them,
-- for "why was my score low" charts.
CREATE VIEW daily_contributors AS
WITH days AS (
    SELECT day FROM daily_sleep WHERE day IS NOT NULL
    UNION SELECT day FROM daily_readiness WHERE day IS NOT NULL
    UNION SELECT day FROM daily_activity WHERE day IS NOT NULL
    UNION SELECT day FROM daily_resilience WHERE day IS NOT NULL
)
SELECT CAST(strftime('%s', d.day) AS INTEGER) AS time,                            -- the day's midnight, unix seconds (UTC)
       d.day AS day,                                                              -- local day (YYYY-MM-DD)
       sl.score AS sleep_score,                                                   -- sleep score, 1..100
       sl.contributors_deep_sleep AS sleep_deep_sleep,                            -- sleep contributor: deep sleep, 1..100
       sl.contributors_efficiency AS sleep_efficiency,                            -- sleep contributor: efficiency, 1..100
       sl.contributors_latency AS sleep_latency,                                  -- sleep contributor: latency, 1..100
       sl.contributors_rem_sleep AS sleep_rem_sleep,                              -- sleep contributor: REM sleep, 1..100
       sl.contributors_restfulness AS sleep_restfulness,                          -- sleep contributor: restfulness, 1..100
       sl.contributors_timing AS sleep_timing,                                    -- sleep contributor: timing, 1..100
       sl.contributors_total_sleep AS sleep_total_sleep,                          -- sleep contributor: total sleep, 1..100
       rd.score AS readiness_score,                                               -- readiness score, 1..100
       rd.contributors_activity_balance AS readiness_activity_balance,            -- readiness contributor: activity balance, 1..100
       rd.contributors_body_temperature AS readiness_body_temperature,            -- readiness contributor: body temperature, 1..100
       rd.contributors_hrv_balance AS readiness_hrv_balance,                      -- readiness contributor: HRV balance, 1..100
       rd.contributors_previous_day_activity AS readiness_previous_day_activity,  -- readiness contributor: previous day's activity, 1..100
       rd.contributors_previous_night AS readiness_previous_night,                -- readiness contributor: previous night, 1..100
       rd.contributors_recovery_index AS readiness_recovery_index,                -- readiness contributor: recovery index, 1..100
       rd.contributors_resting_heart_rate AS readiness_resting_heart_rate,        -- readiness contributor: resting heart rate, 1..100
       rd.contributors_sleep_balance AS readiness_sleep_balance,                  -- readiness contributor: sleep balance, 1..100
       rd.contributors_sleep_regularity AS readiness_sleep_regularity,            -- readiness contributor: sleep regularity, 1..100
       ac.score AS activity_score,                                                -- activity score, 1..100
       ac.contributors_meet_daily_targets AS activity_meet_daily_targets,         -- activity contributor: meeting daily targets, 1..100
       ac.contributors_move_every_hour AS activity_move_every_hour,               -- activity contributor: moving every hour, 1..100
       ac.contributors_recovery_time AS activity_recovery_time,                   -- activity contributor: recovery time, 1..100
       ac.contributors_stay_active AS activity_stay_active,                       -- activity contributor: staying active, 1..100
       ac.contributors_training_frequency AS activity_training_frequency,         -- activity contributor: training frequency, 1..100
       ac.contributors_training_volume AS activity_training_volume,               -- activity contributor: training volume, 1..100
       rs.level AS resilience_level,                                              -- resilience level: limited, adequate, solid, strong, exceptional
       rs.contributors_sleep_recovery AS resilience_sleep_recovery,               -- resilience contributor: sleep recovery, 0..100
       rs.contributors_daytime_recovery AS resilience_daytime_recovery,           -- resilience contributor: daytime recovery, 0..100
       rs.contributors_stress AS resilience_stress                                -- resilience contributor: stress, 0..100
FROM days d
LEFT JOIN daily_sleep sl ON sl.id = (SELECT id FROM daily_sleep WHERE day = d.day ORDER BY id LIMIT 1)
LEFT JOIN daily_readiness rd ON rd.id = (SELECT id FROM daily_readiness WHERE day = d.day ORDER BY id LIMIT 1)
LEFT JOIN daily_activity ac ON ac.id = (SELECT id FROM daily_activity WHERE day = d.day ORDER BY id LIMIT 1)
LEFT JOIN daily_resilience rs ON rs.id = (SELECT id FROM daily_resilience WHERE day = d.day ORDER BY id LIMIT 1);

-- The main sleep of each night broken down by stage, with shares of the time
-- asleep and the local clock times of going to bed and getting up, for
-- stacked stage charts and bedtime-consistency charts.
CREATE VIEW sleep_stage_night AS
SELECT CAST(strftime('%s', n.day) AS INTEGER) AS time,                           -- the night's day at midnight, unix seconds (UTC)
       n.day AS day,                                                             -- local day the night counts for (YYYY-MM-DD)
       n.sleep_id AS sleep_id,                                                   -- sleep.id of the main sleep period
       CAST(strftime('%s', n.bedtime_start) AS INTEGER) AS bedtime_start_ts,     -- went to bed, unix seconds
       CAST(strftime('%s', n.bedtime_end) AS INTEGER) AS bedtime_end_ts,         -- got up, unix seconds
       n.deep_sleep_min AS deep_min,                                             -- deep sleep, minutes
       n.light_sleep_min AS light_min,                                           -- light sleep, minutes
       n.rem_sleep_min AS rem_min,                                               -- REM sleep, minutes
       n.awake_min AS awake_min,                                                 -- awake in bed, minutes
       n.total_sleep_min AS total_sleep_min,                                     -- time asleep, minutes
       n.time_in_bed_min AS time_in_bed_min,                                     -- time in bed, minutes
       round(100.0 * n.deep_sleep_min / NULLIF(n.total_sleep_min, 0), 1) AS deep_pct,   -- deep sleep share of time asleep, percent
       round(100.0 * n.light_sleep_min / NULLIF(n.total_sleep_min, 0), 1) AS light_pct, -- light sleep share of time asleep, percent
       round(100.0 * n.rem_sleep_min / NULLIF(n.total_sleep_min, 0), 1) AS rem_pct,     -- REM sleep share of time asleep, percent
       n.efficiency AS efficiency,                                               -- sleep efficiency, percent
       n.latency_min AS latency_min,                                             -- time to fall asleep, minutes
       -- Clock times as hours on a 12:00..36:00 axis so a bedtime after
       -- midnight (24.5 = 00:30) plots next to one before it (23.5).
       (CAST(substr(n.bedtime_start, 12, 2) AS INTEGER) + CAST(substr(n.bedtime_start, 15, 2) AS INTEGER) / 60.0)
         + CASE WHEN CAST(substr(n.bedtime_start, 12, 2) AS INTEGER) < 12 THEN 24 ELSE 0 END AS bedtime_start_hour, -- local bedtime, hours from the previous noon's 00:00 (23.5 = 23:30, 24.5 = 00:30)
       CAST(substr(n.bedtime_end, 12, 2) AS INTEGER) + CAST(substr(n.bedtime_end, 15, 2) AS INTEGER) / 60.0 AS bedtime_end_hour, -- local wake-up time, hours after midnight (7.25 = 07:15)
       n.periods AS periods                                                      -- sleep periods that day (naps included), count
FROM sleep_night n;

-- Heart rate per UTC day and source (awake, sleep, workout, ...): sample count
-- and minimum, average and maximum, for trend charts that would otherwise
-- read hundreds of thousands of samples. It aggregates the whole table on
-- every read (about a second for five years): for a few days, query heartrate
-- with a `ts` range instead, which reads only those samples.
CREATE VIEW heartrate_daily AS
SELECT (h.ts / 86400) * 86400 AS time,                                           -- the UTC day's midnight, unix seconds
       date(h.ts, 'unixepoch') AS day,                                           -- UTC day (YYYY-MM-DD)
       h.source AS source,                                                       -- what the ring was measuring in: awake, workout, rest, sleep, live, session
       count(h.bpm) AS samples,                                                  -- samples with a value, count
       min(h.bpm) AS min_bpm,                                                    -- lowest heart rate, beats per minute
       round(avg(h.bpm), 1) AS avg_bpm,                                          -- average heart rate, beats per minute
       max(h.bpm) AS max_bpm                                                     -- highest heart rate, beats per minute
FROM heartrate h
GROUP BY h.ts / 86400, h.source;

-- Documents stored per data type and day, for coverage charts ("which days
-- am I missing?"): one row per (data type, day) with at least one document.
-- Time series (heartrate, ring_battery_level) are counted by
-- heartrate_daily and the battery table itself; personal_info and
-- ring_configuration have no day.
CREATE VIEW data_coverage AS
SELECT CAST(strftime('%s', day) AS INTEGER) AS time,                             -- the day's midnight, unix seconds (UTC)
       day AS day,                                                               -- local day (YYYY-MM-DD)
       data_type AS data_type,                                                   -- ouradb data type name, as in sync_state
       documents AS documents                                                    -- documents of that type for that day, count
FROM (
    SELECT 'daily_activity' AS data_type, day, count(*) AS documents FROM daily_activity WHERE day IS NOT NULL GROUP BY day
    UNION ALL SELECT 'daily_cardiovascular_age', day, count(*) FROM daily_cardiovascular_age WHERE day IS NOT NULL GROUP BY day
    UNION ALL SELECT 'daily_readiness', day, count(*) FROM daily_readiness WHERE day IS NOT NULL GROUP BY day
    UNION ALL SELECT 'daily_resilience', day, count(*) FROM daily_resilience WHERE day IS NOT NULL GROUP BY day
    UNION ALL SELECT 'daily_sleep', day, count(*) FROM daily_sleep WHERE day IS NOT NULL GROUP BY day
    UNION ALL SELECT 'daily_spo2', day, count(*) FROM daily_spo2 WHERE day IS NOT NULL GROUP BY day
    UNION ALL SELECT 'daily_stress', day, count(*) FROM daily_stress WHERE day IS NOT NULL GROUP BY day
    UNION ALL SELECT 'enhanced_tag', start_day, count(*) FROM enhanced_tag WHERE start_day IS NOT NULL GROUP BY start_day
    UNION ALL SELECT 'rest_mode_period', start_day, count(*) FROM rest_mode_period WHERE start_day IS NOT NULL GROUP BY start_day
    UNION ALL SELECT 'session', day, count(*) FROM session WHERE day IS NOT NULL GROUP BY day
    UNION ALL SELECT 'sleep', day, count(*) FROM sleep WHERE day IS NOT NULL GROUP BY day
    UNION ALL SELECT 'sleep_time', day, count(*) FROM sleep_time WHERE day IS NOT NULL GROUP BY day
    UNION ALL SELECT 'tag', day, count(*) FROM tag WHERE day IS NOT NULL GROUP BY day
    UNION ALL SELECT 'vo2_max', day, count(*) FROM vo2_max WHERE day IS NOT NULL GROUP BY day
    UNION ALL SELECT 'workout', day, count(*) FROM workout WHERE day IS NOT NULL GROUP BY day
);
