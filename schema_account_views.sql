-- ouradb schema step "account views": every view says whose rows it shows.
--
-- Applied after the accounts step, which keyed every table by account. Each
-- view gains an `account` column (the account's id, last so that queries
-- written for one account keep their column order) and matches accounts
-- wherever it joins, ranks or groups rows, so two people's nights, days and
-- beats never meet. With one account every view shows what it showed before.

DROP VIEW IF EXISTS interbeat_hrv_nightly;
DROP VIEW IF EXISTS interbeat_interval_readable;
DROP VIEW IF EXISTS heartrate_daily;
DROP VIEW IF EXISTS local_day_offset;
DROP VIEW IF EXISTS sleep_movement;
DROP VIEW IF EXISTS sleep_phase;
DROP VIEW IF EXISTS daily_activity_class;
DROP VIEW IF EXISTS daily_activity_met_by_id;
DROP VIEW IF EXISTS daily_activity_met;
DROP VIEW IF EXISTS data_coverage;
DROP VIEW IF EXISTS sleep_stage_night;
DROP VIEW IF EXISTS daily_contributors;
DROP VIEW IF EXISTS daily_metrics;
DROP VIEW IF EXISTS daily_summary;
DROP VIEW IF EXISTS sleep_night;
DROP VIEW IF EXISTS rest_mode_episode;
DROP VIEW IF EXISTS tag_item;
DROP VIEW IF EXISTS activity_class_decoded;
DROP VIEW IF EXISTS sleep_movement_decoded;
DROP VIEW IF EXISTS sleep_hypnogram;
DROP VIEW IF EXISTS ring_battery_level_readable;
DROP VIEW IF EXISTS heartrate_readable;
DROP VIEW IF EXISTS sleep_hrv_by_id;
DROP VIEW IF EXISTS sleep_heart_rate_by_id;
DROP VIEW IF EXISTS session_motion_count_by_id;
DROP VIEW IF EXISTS session_hrv_by_id;
DROP VIEW IF EXISTS session_heart_rate_by_id;

-- session_heart_rate by Oura document id: document_id (session.id), offset,
-- timestamp (unix seconds), value (beats per minute); WHERE document_id = ? reads one document;
-- account (the account's id).
CREATE VIEW session_heart_rate_by_id AS
SELECT p.id AS document_id, c.offset, c.timestamp, c.value, p.account
FROM session_heart_rate c
JOIN session p ON p.pk = c.document_pk;

-- session_hrv by Oura document id: document_id (session.id), offset,
-- timestamp (unix seconds), value (RMSSD, ms); WHERE document_id = ? reads one document;
-- account (the account's id).
CREATE VIEW session_hrv_by_id AS
SELECT p.id AS document_id, c.offset, c.timestamp, c.value, p.account
FROM session_hrv c
JOIN session p ON p.pk = c.document_pk;

-- session_motion_count by Oura document id: document_id (session.id), offset,
-- timestamp (unix seconds), value (count); WHERE document_id = ? reads one document;
-- account (the account's id).
CREATE VIEW session_motion_count_by_id AS
SELECT p.id AS document_id, c.offset, c.timestamp, c.value, p.account
FROM session_motion_count c
JOIN session p ON p.pk = c.document_pk;

-- sleep_heart_rate by Oura document id: document_id (sleep.id), offset,
-- timestamp (unix seconds), value (beats per minute); WHERE document_id = ? reads one document;
-- account (the account's id).
CREATE VIEW sleep_heart_rate_by_id AS
SELECT p.id AS document_id, c.offset, c.timestamp, c.value, p.account
FROM sleep_heart_rate c
JOIN sleep p ON p.pk = c.document_pk;

-- sleep_hrv by Oura document id: document_id (sleep.id), offset,
-- timestamp (unix seconds), value (RMSSD, ms); WHERE document_id = ? reads one document;
-- account (the account's id).
CREATE VIEW sleep_hrv_by_id AS
SELECT p.id AS document_id, c.offset, c.timestamp, c.value, p.account
FROM sleep_hrv c
JOIN sleep p ON p.pk = c.document_pk;

-- Heart rate with readable times: time (UTC 'YYYY-MM-DD HH:MM:SS' text), ts (unix seconds), source, bpm (beats per minute), account (the account's id).
CREATE VIEW heartrate_readable AS
SELECT datetime(ts, 'unixepoch') AS time, ts, source, bpm, account
FROM heartrate;

-- Ring battery with readable times: time (UTC text), ts (unix seconds), level (percent), charging and in_charger (0/1), account (the account's id).
CREATE VIEW ring_battery_level_readable AS
SELECT datetime(ts, 'unixepoch') AS time, ts, level, charging, in_charger, account
FROM ring_battery_level;

-- The hypnogram of every sleep period, decoded: sleep_id, day (YYYY-MM-DD),
-- time (UTC text), timestamp (unix seconds), phase (code 1..4), phase_name
-- ('deep', 'light', 'REM', 'awake'). Plot a night with WHERE sleep_id = ?;
-- account (the account's id).
CREATE VIEW sleep_hypnogram AS
SELECT p.document_id AS sleep_id, s.day, datetime(p.timestamp, 'unixepoch') AS time,
       p.timestamp, p.value AS phase, c.meaning AS phase_name, p.account
FROM sleep_phase p
JOIN sleep s ON s.account = p.account AND s.id = p.document_id
LEFT JOIN interval_code c ON c.kind = 'sleep_phase' AND c.code = p.value;

-- 30-second movement of every sleep period, decoded: sleep_id, day, time (UTC
-- text), timestamp (unix seconds), movement (code 1..4), movement_name,
-- account (the account's id).
CREATE VIEW sleep_movement_decoded AS
SELECT m.document_id AS sleep_id, s.day, datetime(m.timestamp, 'unixepoch') AS time,
       m.timestamp, m.value AS movement, c.meaning AS movement_name, m.account
FROM sleep_movement m
JOIN sleep s ON s.account = m.account AND s.id = m.document_id
LEFT JOIN interval_code c ON c.kind = 'sleep_movement' AND c.code = m.value;

-- 5-minute activity classes of every day, decoded: day, time (UTC text),
-- timestamp (unix seconds), class (code 0..5), class_name ('rest', 'high activity', ...),
-- account (the account's id).
CREATE VIEW activity_class_decoded AS
SELECT a.day, datetime(k.timestamp, 'unixepoch') AS time, k.timestamp,
       k.value AS class, c.meaning AS class_name, k.account
FROM daily_activity_class k
JOIN daily_activity a ON a.account = k.account AND a.id = k.document_id
LEFT JOIN interval_code c ON c.kind = 'activity_class' AND c.code = k.value;

-- One row per tag of a (old-format) tag document: tag_id, day (YYYY-MM-DD),
-- timestamp (local date-time text), tag (tag text),
-- account (the account's id).
CREATE VIEW tag_item AS
SELECT t.id AS tag_id, t.day, t.timestamp, j.value AS tag, t.account
FROM tag t, json_each(t.raw_json, '$.tags') j;

-- One row per episode of a rest mode period: rest_mode_period_id, start_day
-- (YYYY-MM-DD), episode (index from 0), timestamp (RFC 3339 with local offset),
-- tags (JSON array of tag texts), account (the account's id).
CREATE VIEW rest_mode_episode AS
SELECT r.id AS rest_mode_period_id, r.start_day, CAST(j.key AS INTEGER) AS episode,
       json_extract(j.value, '$.timestamp') AS timestamp,
       json_extract(j.value, '$.tags') AS tags,
       r.account
FROM rest_mode_period r, json_each(r.raw_json, '$.episodes') j;

-- The main sleep period of each day (a long_sleep before other types, then the
-- longest), with durations in minutes:
-- day (YYYY-MM-DD), sleep_id, type, bedtime_start / bedtime_end (RFC 3339 local),
-- time_in_bed_min, total_sleep_min, deep_sleep_min, light_sleep_min,
-- rem_sleep_min, awake_min, latency_min (minutes), efficiency (percent),
-- average_heart_rate / lowest_heart_rate (bpm), average_hrv (ms),
-- average_breath (breaths per minute), restless_periods (count),
-- readiness_score (1..100), temperature_deviation (degrees Celsius),
-- sleep_score (1..100, from daily_sleep), periods (sleep periods that day, count),
-- account (the account's id).
CREATE VIEW sleep_night AS
WITH ranked AS (
    SELECT s.*,
           ROW_NUMBER() OVER (
               PARTITION BY s.account, s.day
               ORDER BY (s.type = 'long_sleep') DESC, s.total_sleep_duration DESC, s.id
           ) AS rank_in_day,
           COUNT(*) OVER (PARTITION BY s.account, s.day) AS periods_in_day
    FROM sleep s
    WHERE s.type IS NULL OR s.type <> 'rest'
)
SELECT r.day,
       r.id AS sleep_id,
       r.type,
       r.bedtime_start,
       r.bedtime_end,
       r.time_in_bed / 60.0 AS time_in_bed_min,
       r.total_sleep_duration / 60.0 AS total_sleep_min,
       r.deep_sleep_duration / 60.0 AS deep_sleep_min,
       r.light_sleep_duration / 60.0 AS light_sleep_min,
       r.rem_sleep_duration / 60.0 AS rem_sleep_min,
       r.awake_time / 60.0 AS awake_min,
       r.latency / 60.0 AS latency_min,
       r.efficiency,
       r.average_heart_rate,
       r.lowest_heart_rate,
       r.average_hrv,
       r.average_breath,
       r.restless_periods,
       r.readiness_score,
       r.readiness_temperature_deviation AS temperature_deviation,
       (SELECT ds.score FROM daily_sleep ds WHERE ds.account = r.account AND ds.day = r.day ORDER BY ds.id LIMIT 1) AS sleep_score,
       r.periods_in_day AS periods,
       r.account
FROM ranked r
WHERE r.rank_in_day = 1;

-- One row per day with any sleep, readiness or activity data:
-- day (YYYY-MM-DD); sleep_score, readiness_score, activity_score (1..100);
-- total_sleep_min, deep_sleep_min, rem_sleep_min (minutes, main sleep);
-- sleep_efficiency (percent); resting_heart_rate (lowest bpm of the main sleep);
-- average_heart_rate (bpm, main sleep); average_hrv (ms, main sleep);
-- temperature_deviation (degrees Celsius, daily readiness); steps (count);
-- active_calories, total_calories (kcal); walking_distance (metres);
-- high_activity_min, medium_activity_min (minutes); stress_high_min,
-- recovery_high_min (minutes); spo2_average (percent); resilience_level (text);
-- account (the account's id).
CREATE VIEW daily_summary AS
WITH days AS (
    SELECT account, day FROM daily_sleep WHERE day IS NOT NULL
    UNION SELECT account, day FROM daily_readiness WHERE day IS NOT NULL
    UNION SELECT account, day FROM daily_activity WHERE day IS NOT NULL
    UNION SELECT account, day FROM sleep WHERE day IS NOT NULL
)
SELECT d.day,
       (SELECT score FROM daily_sleep WHERE account = d.account AND day = d.day ORDER BY id LIMIT 1) AS sleep_score,
       (SELECT score FROM daily_readiness WHERE account = d.account AND day = d.day ORDER BY id LIMIT 1) AS readiness_score,
       a.score AS activity_score,
       n.total_sleep_min,
       n.deep_sleep_min,
       n.rem_sleep_min,
       n.efficiency AS sleep_efficiency,
       n.lowest_heart_rate AS resting_heart_rate,
       n.average_heart_rate,
       n.average_hrv,
       (SELECT temperature_deviation FROM daily_readiness WHERE account = d.account AND day = d.day ORDER BY id LIMIT 1) AS temperature_deviation,
       a.steps,
       a.active_calories,
       a.total_calories,
       a.equivalent_walking_distance AS walking_distance,
       a.high_activity_time / 60.0 AS high_activity_min,
       a.medium_activity_time / 60.0 AS medium_activity_min,
       (SELECT stress_high / 60.0 FROM daily_stress WHERE account = d.account AND day = d.day ORDER BY id LIMIT 1) AS stress_high_min,
       (SELECT recovery_high / 60.0 FROM daily_stress WHERE account = d.account AND day = d.day ORDER BY id LIMIT 1) AS recovery_high_min,
       (SELECT spo2_percentage_average FROM daily_spo2 WHERE account = d.account AND day = d.day ORDER BY id LIMIT 1) AS spo2_average,
       (SELECT level FROM daily_resilience WHERE account = d.account AND day = d.day ORDER BY id LIMIT 1) AS resilience_level,
       d.account
FROM days d
LEFT JOIN daily_activity a ON a.account = d.account AND a.id = (SELECT id FROM daily_activity WHERE account = d.account AND day = d.day ORDER BY id LIMIT 1)
LEFT JOIN sleep_night n ON n.account = d.account AND n.day = d.day;

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
         WHERE r.account = s.account AND r.day = s.day ORDER BY r.id LIMIT 1) AS temperature_trend_deviation, -- weighted temperature trend deviation, degrees Celsius
       s.spo2_average AS spo2_average,                                         -- average SpO2 during sleep, percent
       (SELECT p.breathing_disturbance_index FROM daily_spo2 p
         WHERE p.account = s.account AND p.day = s.day ORDER BY p.id LIMIT 1) AS breathing_disturbance_index, -- breathing disturbance index, events per hour
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
         WHERE t.account = s.account AND t.day = s.day ORDER BY t.id LIMIT 1) AS stress_summary,          -- the day's stress summary: restored, normal, stressful
       s.resilience_level AS resilience_level,                                 -- resilience level: limited, adequate, solid, strong, exceptional
       (SELECT v.vo2_max FROM vo2_max v
         WHERE v.account = s.account AND v.day = s.day ORDER BY v.id LIMIT 1) AS vo2_max,                 -- VO2 max estimate, ml/kg/min
       (SELECT c.vascular_age FROM daily_cardiovascular_age c
         WHERE c.account = s.account AND c.day = s.day ORDER BY c.id LIMIT 1) AS vascular_age,            -- estimated vascular age, years
       s.account AS account                                                    -- the ouradb account the row belongs to (account.id)
FROM daily_summary s
LEFT JOIN sleep_night n ON n.account = s.account AND n.day = s.day
LEFT JOIN daily_activity a ON a.account = s.account
    AND a.id = (SELECT id FROM daily_activity WHERE account = s.account AND day = s.day ORDER BY id LIMIT 1);

-- One row per day with the three scores and every contributor behind them,
-- for "why was my score low" charts.
CREATE VIEW daily_contributors AS
WITH days AS (
    SELECT account, day FROM daily_sleep WHERE day IS NOT NULL
    UNION SELECT account, day FROM daily_readiness WHERE day IS NOT NULL
    UNION SELECT account, day FROM daily_activity WHERE day IS NOT NULL
    UNION SELECT account, day FROM daily_resilience WHERE day IS NOT NULL
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
       rs.contributors_stress AS resilience_stress,                               -- resilience contributor: stress, 0..100
       d.account AS account                                                       -- the ouradb account the row belongs to (account.id)
FROM days d
LEFT JOIN daily_sleep sl ON sl.account = d.account AND sl.id = (SELECT id FROM daily_sleep WHERE account = d.account AND day = d.day ORDER BY id LIMIT 1)
LEFT JOIN daily_readiness rd ON rd.account = d.account AND rd.id = (SELECT id FROM daily_readiness WHERE account = d.account AND day = d.day ORDER BY id LIMIT 1)
LEFT JOIN daily_activity ac ON ac.account = d.account AND ac.id = (SELECT id FROM daily_activity WHERE account = d.account AND day = d.day ORDER BY id LIMIT 1)
LEFT JOIN daily_resilience rs ON rs.account = d.account AND rs.id = (SELECT id FROM daily_resilience WHERE account = d.account AND day = d.day ORDER BY id LIMIT 1);

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
       n.periods AS periods,                                                     -- sleep periods that day (naps included), count
       n.account AS account                                                      -- the ouradb account the row belongs to (account.id)
FROM sleep_night n;

-- Documents stored per data type and day, for coverage charts ("which days
-- am I missing?"): one row per (data type, day) with at least one document.
-- Time series (heartrate, ring_battery_level) are counted by
-- heartrate_daily and the battery table itself; personal_info and
-- ring_configuration have no day.
CREATE VIEW data_coverage AS
SELECT CAST(strftime('%s', day) AS INTEGER) AS time,                             -- the day's midnight, unix seconds (UTC)
       day AS day,                                                               -- local day (YYYY-MM-DD)
       data_type AS data_type,                                                   -- ouradb data type name, as in sync_state
       documents AS documents,                                                   -- documents of that type for that day, count
       account AS account                                                        -- the ouradb account the row belongs to (account.id)
FROM (
    SELECT 'daily_activity' AS data_type, account, day, count(*) AS documents FROM daily_activity WHERE day IS NOT NULL GROUP BY account, day
    UNION ALL SELECT 'daily_cardiovascular_age', account, day, count(*) FROM daily_cardiovascular_age WHERE day IS NOT NULL GROUP BY account, day
    UNION ALL SELECT 'daily_readiness', account, day, count(*) FROM daily_readiness WHERE day IS NOT NULL GROUP BY account, day
    UNION ALL SELECT 'daily_resilience', account, day, count(*) FROM daily_resilience WHERE day IS NOT NULL GROUP BY account, day
    UNION ALL SELECT 'daily_sleep', account, day, count(*) FROM daily_sleep WHERE day IS NOT NULL GROUP BY account, day
    UNION ALL SELECT 'daily_spo2', account, day, count(*) FROM daily_spo2 WHERE day IS NOT NULL GROUP BY account, day
    UNION ALL SELECT 'daily_stress', account, day, count(*) FROM daily_stress WHERE day IS NOT NULL GROUP BY account, day
    UNION ALL SELECT 'enhanced_tag', account, start_day, count(*) FROM enhanced_tag WHERE start_day IS NOT NULL GROUP BY account, start_day
    UNION ALL SELECT 'rest_mode_period', account, start_day, count(*) FROM rest_mode_period WHERE start_day IS NOT NULL GROUP BY account, start_day
    UNION ALL SELECT 'session', account, day, count(*) FROM session WHERE day IS NOT NULL GROUP BY account, day
    UNION ALL SELECT 'sleep', account, day, count(*) FROM sleep WHERE day IS NOT NULL GROUP BY account, day
    UNION ALL SELECT 'sleep_time', account, day, count(*) FROM sleep_time WHERE day IS NOT NULL GROUP BY account, day
    UNION ALL SELECT 'tag', account, day, count(*) FROM tag WHERE day IS NOT NULL GROUP BY account, day
    UNION ALL SELECT 'vo2_max', account, day, count(*) FROM vo2_max WHERE day IS NOT NULL GROUP BY account, day
    UNION ALL SELECT 'workout', account, day, count(*) FROM workout WHERE day IS NOT NULL GROUP BY account, day
);

-- MET samples of a daily activity document (its `met` sample array), one
-- row per sample, decoded from raw_json on every read.
CREATE VIEW daily_activity_met AS
SELECT d.pk AS document_pk,                                     -- daily_activity.pk (daily_activity_met_by_id shows daily_activity.id instead)
       CAST(j.key AS INTEGER) AS offset,                        -- index of the sample in the array, from 0
       d.met_timestamp_ts
           + CAST(round(j.key * d.met_interval) AS INTEGER) AS timestamp, -- sample time, unix seconds (start + offset * interval)
       CASE WHEN j.type IN ('integer', 'real')
            THEN CAST(j.value AS REAL) END AS value,            -- metabolic equivalent, MET; NULL where the API sent null
       d.account AS account                                     -- the ouradb account the row belongs to (account.id)
FROM daily_activity d, json_each(d.raw_json, '$.met.items') j;

-- daily_activity_met by Oura document id: document_id (daily_activity.id), offset,
-- timestamp (unix seconds), value (MET); WHERE document_id = ? reads one document;
-- account (the account's id).
CREATE VIEW daily_activity_met_by_id AS
SELECT p.id AS document_id, c.offset, c.timestamp, c.value, p.account
FROM daily_activity_met c
JOIN daily_activity p ON p.pk = c.document_pk;

-- 5-minute activity classes of a daily activity document (`class_5_min`),
-- one row per character; meanings in interval_code kind 'activity_class'.
-- A view over the string column rather than stored rows: decoding is cheap,
-- while storing one row per character tripled the cost of a backfill.
CREATE VIEW daily_activity_class AS
SELECT d.id AS document_id,                                              -- daily_activity.id
       o.n AS offset,                                                    -- index of the character, from 0
       d.timestamp_ts + o.n * 300 AS timestamp,                          -- interval start, unix seconds (timestamp + offset * 300)
       CASE WHEN substr(d.class_5_min, o.n + 1, 1) GLOB '[0-9]'
            THEN CAST(substr(d.class_5_min, o.n + 1, 1) AS INTEGER) END AS value,  -- activity class 0..5 (0 non wear, 1 rest, 2 inactive, 3 low, 4 medium, 5 high); NULL for a non-digit
       d.account AS account                                              -- the ouradb account the row belongs to (account.id)
FROM daily_activity d
JOIN interval_offset o ON o.n < length(d.class_5_min);

-- The 5-minute hypnogram of a sleep period (`sleep_phase_5_min`), one row per
-- character; meanings in interval_code kind 'sleep_phase'.
-- A view over the string column rather than stored rows: decoding is cheap,
-- while storing one row per character tripled the cost of a backfill.
CREATE VIEW sleep_phase AS
SELECT d.id AS document_id,                                              -- sleep.id
       o.n AS offset,                                                    -- index of the character, from 0
       d.bedtime_start_ts + o.n * 300 AS timestamp,                      -- interval start, unix seconds (bedtime_start + offset * 300)
       CASE WHEN substr(d.sleep_phase_5_min, o.n + 1, 1) GLOB '[0-9]'
            THEN CAST(substr(d.sleep_phase_5_min, o.n + 1, 1) AS INTEGER) END AS value,  -- sleep phase: 1 deep, 2 light, 3 REM, 4 awake; NULL for a non-digit
       d.account AS account                                              -- the ouradb account the row belongs to (account.id)
FROM sleep d
JOIN interval_offset o ON o.n < length(d.sleep_phase_5_min);

-- 30-second movement classes of a sleep period (`movement_30_sec`), one row
-- per character; meanings in interval_code kind 'sleep_movement'.
-- A view over the string column rather than stored rows: decoding is cheap,
-- while storing one row per character tripled the cost of a backfill.
CREATE VIEW sleep_movement AS
SELECT d.id AS document_id,                                              -- sleep.id
       o.n AS offset,                                                    -- index of the character, from 0
       d.bedtime_start_ts + o.n * 30 AS timestamp,                       -- interval start, unix seconds (bedtime_start + offset * 30)
       CASE WHEN substr(d.movement_30_sec, o.n + 1, 1) GLOB '[0-9]'
            THEN CAST(substr(d.movement_30_sec, o.n + 1, 1) AS INTEGER) END AS value,  -- movement: 1 no motion, 2 restless, 3 tossing and turning, 4 active; NULL for a non-digit
       d.account AS account                                              -- the ouradb account the row belongs to (account.id)
FROM sleep d
JOIN interval_offset o ON o.n < length(d.movement_30_sec);

-- The person's UTC offset on each local day, read from the offset of the
-- day's daily_activity timestamp (else daily_readiness's, else
-- daily_sleep's): one row per day with any of those documents.
CREATE VIEW local_day_offset AS
WITH stamped AS (
    SELECT account, day, timestamp, 1 AS rank FROM daily_activity WHERE day IS NOT NULL AND timestamp IS NOT NULL
    UNION ALL SELECT account, day, timestamp, 2 FROM daily_readiness WHERE day IS NOT NULL AND timestamp IS NOT NULL
    UNION ALL SELECT account, day, timestamp, 3 FROM daily_sleep WHERE day IS NOT NULL AND timestamp IS NOT NULL
),
chosen AS (
    -- SQLite takes the bare `timestamp` from the row min(rank) picked.
    SELECT account, day, min(rank) AS rank, timestamp FROM stamped GROUP BY account, day
)
SELECT day AS day,                                                               -- local day (YYYY-MM-DD)
       CAST(strftime('%s', substr(timestamp, 1, 19)) AS INTEGER)
         - CAST(strftime('%s', timestamp) AS INTEGER) AS utc_offset,             -- the day's UTC offset, seconds (+02:00 = 7200)
       account AS account                                                        -- the ouradb account the row belongs to (account.id)
FROM chosen;

-- Heart rate per local day and source (awake, sleep, workout, ...): sample
-- count and minimum, average and maximum, for trend charts that would
-- otherwise read hundreds of thousands of samples. Each day of
-- local_day_offset starts at its own midnight in its own offset; a sample
-- belongs to the latest day started by its time, placed with that day's
-- offset (a day without documents then follows the day before it; samples
-- before the first day use the first day's offset). Samples are first summed
-- per quarter hour (every UTC offset is a whole number of them), so only
-- those sums are ordered in time. It aggregates the whole table on every
-- read (a few seconds for five years): for a few days, query heartrate with
-- a `ts` range instead.
CREATE VIEW heartrate_daily AS
WITH starts AS (
    SELECT account, CAST(strftime('%s', day) AS INTEGER) - utc_offset AS t, utc_offset
    FROM local_day_offset
),
quarters AS (
    SELECT account, ts / 900 * 900 AS t, source, count(bpm) AS n, min(bpm) AS lo,
           max(bpm) AS hi, sum(bpm) AS total
    FROM heartrate
    GROUP BY account, ts / 900, source
),
timeline AS (
    SELECT account, t, utc_offset, NULL AS source, NULL AS n, NULL AS lo, NULL AS hi, NULL AS total FROM starts
    UNION ALL
    SELECT account, t, NULL, source, n, lo, hi, total FROM quarters
),
numbered AS (
    -- How many days have started by each row (a day's start before the
    -- quarters of the same instant): the rows of one day share the number.
    SELECT *, count(utc_offset) OVER (PARTITION BY account ORDER BY t, utc_offset IS NULL ROWS UNBOUNDED PRECEDING) AS started
    FROM timeline
),
placed AS (
    SELECT account, source, n, lo, hi, total,
           date(t + coalesce(max(utc_offset) OVER (PARTITION BY account, started),
                             (SELECT l.utc_offset FROM local_day_offset l
                              WHERE l.account = numbered.account ORDER BY l.day LIMIT 1),
                             0), 'unixepoch') AS day
    FROM numbered
)
SELECT CAST(strftime('%s', p.day) AS INTEGER) AS time,                           -- the local day's midnight, unix seconds (UTC), like every day-keyed view
       p.day AS day,                                                             -- local day (YYYY-MM-DD)
       p.source AS source,                                                       -- what the ring was measuring in: awake, workout, rest, sleep, live, session
       sum(p.n) AS samples,                                                      -- samples with a value, count
       min(p.lo) AS min_bpm,                                                     -- lowest heart rate, beats per minute
       round(CAST(sum(p.total) AS REAL) / sum(p.n), 1) AS avg_bpm,               -- average heart rate, beats per minute
       max(p.hi) AS max_bpm,                                                     -- highest heart rate, beats per minute
       p.account AS account                                                      -- the ouradb account the row belongs to (account.id)
FROM placed p
WHERE p.source IS NOT NULL
GROUP BY p.account, p.day, p.source;

-- Interbeat intervals with readable times: time (UTC 'YYYY-MM-DD HH:MM:SS.SSS' text),
-- ts_ms (unix milliseconds), ibi_ms (milliseconds), validity (API code, 1 = valid),
-- account (the account's id).
CREATE VIEW interbeat_interval_readable AS
SELECT strftime('%Y-%m-%d %H:%M:%f', ts_ms / 1000.0, 'unixepoch') AS time, ts_ms, ibi AS ibi_ms, validity, account
FROM interbeat_interval;

-- Heart rate variability per sleep period computed from the raw beats
-- between bedtime_start and bedtime_end, beside Oura's own average_hrv.
-- A beat is valid when its validity is 1 and its interval is below the
-- API's 2,000 ms cap (a capped interval spans missing beats). RMSSD uses
-- only successive differences between two valid beats that follow each
-- other with no beat between them; SDNN is the population standard
-- deviation of the valid intervals. Periods without beats have NULLs.
-- Each period reads only its own beats (a range of the table's packed
-- key: the account's base plus the times in milliseconds), so
-- a WHERE on time or day reads only the nights it selects. Square roots
-- are six Newton steps from a guess within 5x (exact to 0.1 ms): SQLite
-- builds without math functions, ouradb's own among them, have no sqrt().
CREATE VIEW interbeat_hrv_nightly AS
SELECT p.time AS time,                                                               -- bedtime_start, unix seconds
       p.day AS day,                                                                 -- the sleep period's day (YYYY-MM-DD)
       p.sleep_id AS sleep_id,                                                       -- sleep.id
       p.type AS type,                                                               -- sleep period type (long_sleep, sleep, late_nap, rest)
       (SELECT count(*) FROM interbeat_interval i
        WHERE i.beat >= p.first_beat AND i.beat < p.end_beat) AS beats,                -- beats stored in the period, count
       (SELECT count(*) FROM interbeat_interval i
        WHERE i.beat >= p.first_beat AND i.beat < p.end_beat
          AND i.validity = 1 AND i.ibi < 2000) AS valid_beats,                       -- valid beats (validity 1, interval under 2,000 ms), count
       (SELECT round(CASE WHEN v = 0 THEN 0.0 ELSE g END, 1) FROM (SELECT v, (g + v / g) / 2 AS g FROM (SELECT v, (g + v / g) / 2 AS g FROM (SELECT v, (g + v / g) / 2 AS g FROM (SELECT v, (g + v / g) / 2 AS g FROM (SELECT v, (g + v / g) / 2 AS g FROM (SELECT v, (g + v / g) / 2 AS g FROM (SELECT v, CASE WHEN v < 100 THEN 5.0 WHEN v < 10000 THEN 50.0 ELSE 500.0 END AS g FROM (SELECT avg(b.diff * b.diff) AS v
        FROM (SELECT i.ibi - lag(i.ibi) OVER w AS diff,
                     (i.validity = 1 AND i.ibi < 2000) AS valid,
                     lag(i.validity = 1 AND i.ibi < 2000) OVER w AS prev_valid
              FROM interbeat_interval i
              WHERE i.beat >= p.first_beat AND i.beat < p.end_beat
              WINDOW w AS (ORDER BY i.beat)) b
        WHERE b.valid AND b.prev_valid))))))))) AS rmssd_ms,                                 -- RMSSD of successive valid intervals, milliseconds
       (SELECT round(CASE WHEN v = 0 THEN 0.0 ELSE g END, 1) FROM (SELECT v, (g + v / g) / 2 AS g FROM (SELECT v, (g + v / g) / 2 AS g FROM (SELECT v, (g + v / g) / 2 AS g FROM (SELECT v, (g + v / g) / 2 AS g FROM (SELECT v, (g + v / g) / 2 AS g FROM (SELECT v, (g + v / g) / 2 AS g FROM (SELECT v, CASE WHEN v < 100 THEN 5.0 WHEN v < 10000 THEN 50.0 ELSE 500.0 END AS g FROM (SELECT max(avg(i.ibi * i.ibi) - avg(i.ibi) * avg(i.ibi), 0) AS v
        FROM interbeat_interval i
        WHERE i.beat >= p.first_beat AND i.beat < p.end_beat
          AND i.validity = 1 AND i.ibi < 2000))))))))) AS sdnn_ms,                           -- SDNN (population standard deviation of valid intervals), milliseconds
       p.average_hrv AS average_hrv,                                                 -- Oura's average HRV (RMSSD) of the period, milliseconds
       p.account AS account                                                          -- the ouradb account the row belongs to (account.id)
FROM (SELECT s.account, s.bedtime_start_ts AS time, s.day, s.id AS sleep_id, s.type, s.average_hrv,
             (s.account - 1) * 4398046511104 + s.bedtime_start_ts * 1000 AS first_beat,
             (s.account - 1) * 4398046511104 + CAST(strftime('%s', s.bedtime_end) AS INTEGER) * 1000 AS end_beat
      FROM sleep s
      WHERE s.bedtime_start_ts IS NOT NULL AND s.type IS NOT 'deleted') p;
