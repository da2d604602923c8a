-- ouradb schema, version 1 (PRAGMA user_version = 1).
--
-- Applied by the ouradb binary inside one BEGIN IMMEDIATE transaction; never
-- edit a released version in place: later versions are new migration steps.
--
-- Conventions, true for every table below:
-- * Document tables (one per Oura collection) are keyed by the API's `id` and
--   hold one typed column per scalar field of the Oura API spec 1.37, nested
--   objects flattened as `<object>_<field>` (e.g. `contributors_deep_sleep`).
--   Column names equal the JSON field names, which is how the daemon maps
--   documents to columns, so renaming a column breaks that mapping.
-- * Document tables with sample arrays (daily_activity, sleep, session) also
--   have an INTEGER `pk` that their sample tables reference as `document_pk`:
--   an integer key keeps the millions of sample rows small and appended in
--   order. The `<sample table>_by_id` views show the Oura `id` instead.
-- * `raw_json` is the whole document as received (re-serialized with sorted
--   keys), so fields Oura adds later are never lost; `json_extract(raw_json,
--   '$.field')` reads them.
-- * Dates (`day`, `*_day`) are local calendar days as 'YYYY-MM-DD' text.
--   Date-times copied from documents (`timestamp`, `bedtime_start`, ...) are
--   the API's RFC 3339 text with the user's UTC offset.
-- * `first_seen`, `last_seen`, `last_changed` and every time in `sync_state`
--   are RFC 3339 UTC text written by ouradb ('2024-05-01T06:00:00Z',
--   fractional seconds only when non-zero).
-- * `timestamp` / `ts` columns of sample and time-series tables are INTEGER
--   unix seconds (UTC); the `*_readable` and decoding views add text times.
-- * Booleans are INTEGER 0/1; NULL means the API sent null or omitted it.
-- * Scores and contributors are 1..100 points unless stated otherwise;
--   durations are seconds unless the column name ends in `_min` (minutes).
-- * Deletions: documents the API marks deleted (sleep `type = 'deleted'`),
--   documents a webhook reports deleted, and documents missing from a window
--   the API fully re-served are REMOVED (not flagged); their sample rows go
--   with them through ON DELETE CASCADE.

-- Per data type sync bookkeeping, one row per ouradb data type name.
CREATE TABLE sync_state (
    data_type TEXT PRIMARY KEY NOT NULL,          -- ouradb data type name, e.g. 'sleep', 'heartrate'
    high_water TEXT,                              -- last day (YYYY-MM-DD; UTC day for time series) fully synced by incremental jobs
    backfill_floor TEXT,                          -- oldest day (YYYY-MM-DD) the backfill has covered
    backfill_complete INTEGER NOT NULL DEFAULT 0, -- 1 once the backfill reached sync.backfill_start
    last_attempt TEXT,                            -- RFC 3339 UTC time the last job started
    last_success TEXT,                            -- RFC 3339 UTC time a job last finished its window
    last_error_kind TEXT,                         -- machine-readable kind of the last error ('rate_limited', 'http_403', 'network', ...); NULL after a success
    last_error TEXT,                              -- human-readable message of the last error; NULL after a success
    last_error_at TEXT,                           -- RFC 3339 UTC time of the last error; NULL after a success
    documents INTEGER NOT NULL DEFAULT 0,         -- documents (rows for time series) currently stored for this type
    requests INTEGER NOT NULL DEFAULT 0,          -- API requests made for this type since the database was created, retries included
    next_run TEXT                                 -- RFC 3339 UTC time the daemon will next run this type's job
);

-- Meaning of the one-character codes in interval strings (hypnograms,
-- movement and activity classes), as documented by the Oura API.
CREATE TABLE interval_code (
    kind TEXT NOT NULL,    -- which string: 'sleep_phase', 'sleep_movement' or 'activity_class'
    code INTEGER NOT NULL, -- the character's digit
    meaning TEXT NOT NULL, -- what the code means, e.g. 'deep', 'REM', 'high activity'
    PRIMARY KEY (kind, code)
) WITHOUT ROWID;

-- Character positions 0..5759 (48 hours of 30-second intervals), joined by
-- the views that decode interval strings so a filter on one document reads
-- only that document's characters.
CREATE TABLE interval_offset (
    n INTEGER PRIMARY KEY -- character index, from 0
);

WITH RECURSIVE seq(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM seq WHERE n < 5759)
INSERT INTO interval_offset (n) SELECT n FROM seq;

INSERT INTO interval_code (kind, code, meaning) VALUES
    ('sleep_phase', 1, 'deep'),
    ('sleep_phase', 2, 'light'),
    ('sleep_phase', 3, 'REM'),
    ('sleep_phase', 4, 'awake'),
    ('sleep_movement', 1, 'no motion'),
    ('sleep_movement', 2, 'restless'),
    ('sleep_movement', 3, 'tossing and turning'),
    ('sleep_movement', 4, 'active'),
    ('activity_class', 0, 'non wear'),
    ('activity_class', 1, 'rest'),
    ('activity_class', 2, 'inactive'),
    ('activity_class', 3, 'low activity'),
    ('activity_class', 4, 'medium activity'),
    ('activity_class', 5, 'high activity');

-- Daily activity summary (API PublicDailyActivity), one row per day.
CREATE TABLE daily_activity (
    pk INTEGER PRIMARY KEY,                        -- ouradb's key for the document, referenced by its sample tables (document_pk); kept while the document is stored, not an Oura value
    id TEXT NOT NULL UNIQUE,                       -- Oura document id
    day TEXT,                                      -- local day (YYYY-MM-DD)
    score INTEGER,                                 -- activity score, 1..100
    active_calories INTEGER,                       -- active energy expenditure, kcal
    total_calories INTEGER,                        -- total energy expenditure, kcal
    target_calories INTEGER,                       -- daily active calorie target, kcal
    steps INTEGER,                                 -- steps taken, count
    equivalent_walking_distance INTEGER,           -- walking distance equivalent to the day's activity, metres
    meters_to_target INTEGER,                      -- remaining distance to the activity target, metres
    target_meters INTEGER,                         -- daily activity target as distance, metres
    average_met_minutes REAL,                      -- average metabolic equivalent, MET
    high_activity_met_minutes INTEGER,             -- high-intensity activity, MET minutes
    medium_activity_met_minutes INTEGER,           -- medium-intensity activity, MET minutes
    low_activity_met_minutes INTEGER,              -- low-intensity activity, MET minutes
    sedentary_met_minutes INTEGER,                 -- sedentary activity, MET minutes
    high_activity_time INTEGER,                    -- time in high activity, seconds
    medium_activity_time INTEGER,                  -- time in medium activity, seconds
    low_activity_time INTEGER,                     -- time in low activity, seconds
    sedentary_time INTEGER,                        -- time sedentary, seconds
    resting_time INTEGER,                          -- time resting, seconds
    non_wear_time INTEGER,                         -- time the ring was not worn, seconds
    inactivity_alerts INTEGER,                     -- inactivity alerts received, count
    timestamp TEXT,                                -- start of the activity day, RFC 3339 with local offset
    class_5_min TEXT,                              -- 5-minute activity classes as a string (decoded in daily_activity_class)
    contributors_meet_daily_targets INTEGER,       -- contributor: meeting daily targets, 1..100
    contributors_move_every_hour INTEGER,          -- contributor: moving every hour, 1..100
    contributors_recovery_time INTEGER,            -- contributor: recovery time, 1..100
    contributors_stay_active INTEGER,              -- contributor: staying active, 1..100
    contributors_training_frequency INTEGER,       -- contributor: training frequency, 1..100
    contributors_training_volume INTEGER,          -- contributor: training volume, 1..100
    raw_json TEXT NOT NULL,                        -- the whole document as received, JSON
    first_seen TEXT NOT NULL,                      -- RFC 3339 UTC time ouradb first stored it
    last_seen TEXT NOT NULL,                       -- RFC 3339 UTC time the API last returned it
    last_changed TEXT NOT NULL                     -- RFC 3339 UTC time its content last changed
);
CREATE INDEX daily_activity_day ON daily_activity (day); -- dashboards filter by day

-- MET samples of a daily activity document (its `met` sample array).
CREATE TABLE daily_activity_met (
    document_pk INTEGER NOT NULL REFERENCES daily_activity (pk) ON DELETE CASCADE, -- daily_activity.pk (daily_activity_met_by_id shows daily_activity.id instead)
    offset INTEGER NOT NULL,   -- index of the sample in the array, from 0
    timestamp INTEGER,         -- sample time, unix seconds (start + offset * interval)
    value REAL,                -- metabolic equivalent, MET; NULL where the API sent null
    PRIMARY KEY (document_pk, offset)
) WITHOUT ROWID;

-- daily_activity_met by Oura document id: document_id (daily_activity.id), offset,
-- timestamp (unix seconds), value (MET); WHERE document_id = ? reads one document.
CREATE VIEW daily_activity_met_by_id AS
SELECT p.id AS document_id, c.offset, c.timestamp, c.value
FROM daily_activity_met c
JOIN daily_activity p ON p.pk = c.document_pk;

-- 5-minute activity classes of a daily activity document (`class_5_min`),
-- one row per character; meanings in interval_code kind 'activity_class'.
-- A view over the string column rather than stored rows: decoding is cheap,
-- while storing one row per character tripled the cost of a backfill.
CREATE VIEW daily_activity_class AS
SELECT d.id AS document_id,                                              -- daily_activity.id
       o.n AS offset,                                                    -- index of the character, from 0
       CAST(strftime('%s', d.timestamp) AS INTEGER) + o.n * 300 AS timestamp, -- interval start, unix seconds (timestamp + offset * 300)
       CASE WHEN substr(d.class_5_min, o.n + 1, 1) GLOB '[0-9]'
            THEN CAST(substr(d.class_5_min, o.n + 1, 1) AS INTEGER) END AS value  -- activity class 0..5 (0 non wear, 1 rest, 2 inactive, 3 low, 4 medium, 5 high); NULL for a non-digit
FROM daily_activity d
JOIN interval_offset o ON o.n < length(d.class_5_min);

-- Cardiovascular age estimate (API PublicDailyCardiovascularAge), one per day.
CREATE TABLE daily_cardiovascular_age (
    id TEXT PRIMARY KEY NOT NULL,  -- Oura document id
    day TEXT,                      -- local day (YYYY-MM-DD)
    pulse_wave_velocity REAL,      -- pulse wave velocity, metres per second
    vascular_age INTEGER,          -- estimated vascular age, years
    raw_json TEXT NOT NULL,        -- the whole document as received, JSON
    first_seen TEXT NOT NULL,      -- RFC 3339 UTC time ouradb first stored it
    last_seen TEXT NOT NULL,       -- RFC 3339 UTC time the API last returned it
    last_changed TEXT NOT NULL     -- RFC 3339 UTC time its content last changed
);
CREATE INDEX daily_cardiovascular_age_day ON daily_cardiovascular_age (day); -- dashboards filter by day

-- Daily readiness (API PublicDailyReadiness), one per day.
CREATE TABLE daily_readiness (
    id TEXT PRIMARY KEY NOT NULL,                 -- Oura document id
    day TEXT,                                     -- local day (YYYY-MM-DD)
    score INTEGER,                                -- readiness score, 1..100
    temperature_deviation REAL,                   -- skin temperature deviation from baseline, degrees Celsius
    temperature_trend_deviation REAL,             -- weighted temperature trend deviation, degrees Celsius
    timestamp TEXT,                               -- start of the readiness day, RFC 3339 with local offset
    contributors_activity_balance INTEGER,        -- contributor: activity balance, 1..100
    contributors_body_temperature INTEGER,        -- contributor: body temperature, 1..100
    contributors_hrv_balance INTEGER,             -- contributor: HRV balance, 1..100
    contributors_previous_day_activity INTEGER,   -- contributor: previous day's activity, 1..100
    contributors_previous_night INTEGER,          -- contributor: previous night's sleep, 1..100
    contributors_recovery_index INTEGER,          -- contributor: recovery index, 1..100
    contributors_resting_heart_rate INTEGER,      -- contributor: resting heart rate, 1..100
    contributors_sleep_balance INTEGER,           -- contributor: sleep balance, 1..100
    contributors_sleep_regularity INTEGER,        -- contributor: sleep regularity, 1..100
    raw_json TEXT NOT NULL,                       -- the whole document as received, JSON
    first_seen TEXT NOT NULL,                     -- RFC 3339 UTC time ouradb first stored it
    last_seen TEXT NOT NULL,                      -- RFC 3339 UTC time the API last returned it
    last_changed TEXT NOT NULL                    -- RFC 3339 UTC time its content last changed
);
CREATE INDEX daily_readiness_day ON daily_readiness (day); -- dashboards filter by day

-- Daily resilience (API DailyResilienceModel), one per day.
CREATE TABLE daily_resilience (
    id TEXT PRIMARY KEY NOT NULL,          -- Oura document id
    day TEXT,                              -- local day (YYYY-MM-DD)
    level TEXT,                            -- resilience level: limited, adequate, solid, strong, exceptional
    contributors_sleep_recovery REAL,      -- contributor: sleep recovery, 0..100
    contributors_daytime_recovery REAL,    -- contributor: daytime recovery, 0..100
    contributors_stress REAL,              -- contributor: stress, 0..100
    raw_json TEXT NOT NULL,                -- the whole document as received, JSON
    first_seen TEXT NOT NULL,              -- RFC 3339 UTC time ouradb first stored it
    last_seen TEXT NOT NULL,               -- RFC 3339 UTC time the API last returned it
    last_changed TEXT NOT NULL             -- RFC 3339 UTC time its content last changed
);
CREATE INDEX daily_resilience_day ON daily_resilience (day); -- dashboards filter by day

-- Daily sleep score (API PublicDailySleep), one per day.
CREATE TABLE daily_sleep (
    id TEXT PRIMARY KEY NOT NULL,         -- Oura document id
    day TEXT,                             -- local day (YYYY-MM-DD)
    score INTEGER,                        -- sleep score, 1..100
    timestamp TEXT,                       -- start of the sleep day, RFC 3339 with local offset
    contributors_deep_sleep INTEGER,      -- contributor: deep sleep, 1..100
    contributors_efficiency INTEGER,      -- contributor: sleep efficiency, 1..100
    contributors_latency INTEGER,         -- contributor: sleep latency, 1..100
    contributors_rem_sleep INTEGER,       -- contributor: REM sleep, 1..100
    contributors_restfulness INTEGER,     -- contributor: restfulness, 1..100
    contributors_timing INTEGER,          -- contributor: sleep timing, 1..100
    contributors_total_sleep INTEGER,     -- contributor: total sleep, 1..100
    raw_json TEXT NOT NULL,               -- the whole document as received, JSON
    first_seen TEXT NOT NULL,             -- RFC 3339 UTC time ouradb first stored it
    last_seen TEXT NOT NULL,              -- RFC 3339 UTC time the API last returned it
    last_changed TEXT NOT NULL            -- RFC 3339 UTC time its content last changed
);
CREATE INDEX daily_sleep_day ON daily_sleep (day); -- dashboards filter by day

-- Daily blood oxygen (API PublicDailySpO2), one per day.
CREATE TABLE daily_spo2 (
    id TEXT PRIMARY KEY NOT NULL,            -- Oura document id
    day TEXT,                                -- local day (YYYY-MM-DD)
    breathing_disturbance_index INTEGER,     -- breathing disturbance index, events per hour
    spo2_percentage_average REAL,            -- average SpO2 during sleep, percent
    raw_json TEXT NOT NULL,                  -- the whole document as received, JSON
    first_seen TEXT NOT NULL,                -- RFC 3339 UTC time ouradb first stored it
    last_seen TEXT NOT NULL,                 -- RFC 3339 UTC time the API last returned it
    last_changed TEXT NOT NULL               -- RFC 3339 UTC time its content last changed
);
CREATE INDEX daily_spo2_day ON daily_spo2 (day); -- dashboards filter by day

-- Daily stress (API PublicDailyStress), one per day.
CREATE TABLE daily_stress (
    id TEXT PRIMARY KEY NOT NULL,   -- Oura document id
    day TEXT,                       -- local day (YYYY-MM-DD)
    day_summary TEXT,               -- day's stress summary: restored, normal, stressful
    stress_high INTEGER,            -- time in high stress, seconds
    recovery_high INTEGER,          -- time in high recovery, seconds
    raw_json TEXT NOT NULL,         -- the whole document as received, JSON
    first_seen TEXT NOT NULL,       -- RFC 3339 UTC time ouradb first stored it
    last_seen TEXT NOT NULL,        -- RFC 3339 UTC time the API last returned it
    last_changed TEXT NOT NULL      -- RFC 3339 UTC time its content last changed
);
CREATE INDEX daily_stress_day ON daily_stress (day); -- dashboards filter by day

-- Enhanced tags the user logged (API EnhancedTagModel).
CREATE TABLE enhanced_tag (
    id TEXT PRIMARY KEY NOT NULL,  -- Oura document id
    tag_type_code TEXT,            -- tag type, e.g. 'tag_generic_nocaffeine'; 'custom' for user-named tags
    start_time TEXT,               -- when the tag starts, local date-time text
    end_time TEXT,                 -- when the tag ends (NULL for instant tags), local date-time text
    start_day TEXT,                -- local day the tag starts (YYYY-MM-DD)
    end_day TEXT,                  -- local day the tag ends (YYYY-MM-DD), NULL for instant tags
    comment TEXT,                  -- free-text comment
    custom_name TEXT,              -- name of a custom tag
    raw_json TEXT NOT NULL,        -- the whole document as received, JSON
    first_seen TEXT NOT NULL,      -- RFC 3339 UTC time ouradb first stored it
    last_seen TEXT NOT NULL,       -- RFC 3339 UTC time the API last returned it
    last_changed TEXT NOT NULL     -- RFC 3339 UTC time its content last changed
);
CREATE INDEX enhanced_tag_start_day ON enhanced_tag (start_day); -- dashboards filter by day

-- Heart rate time series (API PublicHeartRateRow), one row per sample;
-- about 450,000 rows a year, hence the narrow WITHOUT ROWID layout.
CREATE TABLE heartrate (
    ts INTEGER NOT NULL,   -- sample time, unix seconds (UTC), parsed from the API's `timestamp`; `timestamp_unix` is ts * 1000
    source TEXT NOT NULL,  -- what the ring was measuring in: awake, workout, rest, sleep, live, session
    bpm INTEGER,           -- heart rate, beats per minute
    extra TEXT,            -- NULL, unless the API row held more than ts/source/bpm can restore (unknown fields, sub-second or inconsistent times): then the whole row as JSON
    PRIMARY KEY (ts, source)
) WITHOUT ROWID;

-- The user's profile (API PersonalInfoResponse); a single row.
CREATE TABLE personal_info (
    id TEXT PRIMARY KEY NOT NULL,  -- Oura user id
    age INTEGER,                   -- age, years
    weight REAL,                   -- weight, kilograms
    height REAL,                   -- height, metres
    biological_sex TEXT,           -- biological sex as reported by the API
    email TEXT,                    -- account e-mail address
    raw_json TEXT NOT NULL,        -- the whole document as received, JSON
    first_seen TEXT NOT NULL,      -- RFC 3339 UTC time ouradb first stored it
    last_seen TEXT NOT NULL,       -- RFC 3339 UTC time the API last returned it
    last_changed TEXT NOT NULL     -- RFC 3339 UTC time its content last changed
);

-- Rest mode periods (API PublicRestModePeriod); episodes stay in raw_json
-- and are listed by the rest_mode_episode view.
CREATE TABLE rest_mode_period (
    id TEXT PRIMARY KEY NOT NULL,  -- Oura document id
    start_day TEXT,                -- local day rest mode started (YYYY-MM-DD)
    start_time TEXT,               -- when rest mode started, RFC 3339 with local offset
    end_day TEXT,                  -- local day rest mode ended (YYYY-MM-DD), NULL while ongoing
    end_time TEXT,                 -- when rest mode ended, RFC 3339 with local offset, NULL while ongoing
    raw_json TEXT NOT NULL,        -- the whole document as received, JSON
    first_seen TEXT NOT NULL,      -- RFC 3339 UTC time ouradb first stored it
    last_seen TEXT NOT NULL,       -- RFC 3339 UTC time the API last returned it
    last_changed TEXT NOT NULL     -- RFC 3339 UTC time its content last changed
);
CREATE INDEX rest_mode_period_start_day ON rest_mode_period (start_day); -- dashboards filter by day

-- Ring battery time series (API PublicRingBatteryLevelRow), one row per sample.
CREATE TABLE ring_battery_level (
    ts INTEGER PRIMARY KEY NOT NULL, -- sample time, unix seconds (UTC), parsed from the API's `timestamp`; `timestamp_unix` is ts * 1000
    level INTEGER,                   -- battery level, percent 0..100
    charging INTEGER,                -- 1 while charging, 0 when not, NULL when unknown
    in_charger INTEGER,              -- 1 while in the charger, 0 when not, NULL when unknown
    extra TEXT                       -- NULL, unless the API row held more than the columns can restore: then the whole row as JSON
);

-- Rings the user set up (API PublicRingConfiguration).
CREATE TABLE ring_configuration (
    id TEXT PRIMARY KEY NOT NULL,  -- Oura ring configuration id
    color TEXT,                    -- ring colour, e.g. 'stealth_black'
    design TEXT,                   -- ring design: balance, heritage, horizon, ...
    firmware_version TEXT,         -- firmware version string
    hardware_type TEXT,            -- hardware generation: gen1, gen2, gen2m, gen3, gen4
    set_up_at TEXT,                -- when the ring was set up, UTC date-time text (placeholders such as 1970-01-01 occur)
    size INTEGER,                  -- ring size, US size
    raw_json TEXT NOT NULL,        -- the whole document as received, JSON
    first_seen TEXT NOT NULL,      -- RFC 3339 UTC time ouradb first stored it
    last_seen TEXT NOT NULL,       -- RFC 3339 UTC time the API last returned it
    last_changed TEXT NOT NULL     -- RFC 3339 UTC time its content last changed
);

-- Guided and unguided sessions: meditation, breathing, ... (API PublicSession).
CREATE TABLE session (
    pk INTEGER PRIMARY KEY,        -- ouradb's key for the document, referenced by its sample tables (document_pk); kept while the document is stored, not an Oura value
    id TEXT NOT NULL UNIQUE,       -- Oura document id
    day TEXT,                      -- local day (YYYY-MM-DD)
    start_datetime TEXT,           -- session start, RFC 3339 with local offset
    end_datetime TEXT,             -- session end, RFC 3339 with local offset
    type TEXT,                     -- session type: breathing, meditation, nap, relaxation, rest, body_status
    mood TEXT,                     -- mood after the session: bad, worse, same, good, great
    raw_json TEXT NOT NULL,        -- the whole document as received, JSON
    first_seen TEXT NOT NULL,      -- RFC 3339 UTC time ouradb first stored it
    last_seen TEXT NOT NULL,       -- RFC 3339 UTC time the API last returned it
    last_changed TEXT NOT NULL     -- RFC 3339 UTC time its content last changed
);
CREATE INDEX session_day ON session (day); -- dashboards filter by day

-- Heart rate samples of a session (its `heart_rate` sample array).
CREATE TABLE session_heart_rate (
    document_pk INTEGER NOT NULL REFERENCES session (pk) ON DELETE CASCADE, -- session.pk (session_heart_rate_by_id shows session.id instead)
    offset INTEGER NOT NULL,   -- index of the sample in the array, from 0
    timestamp INTEGER,         -- sample time, unix seconds (start + offset * interval)
    value REAL,                -- heart rate, beats per minute; NULL where the API sent null
    PRIMARY KEY (document_pk, offset)
) WITHOUT ROWID;

-- session_heart_rate by Oura document id: document_id (session.id), offset,
-- timestamp (unix seconds), value (beats per minute); WHERE document_id = ? reads one document.
CREATE VIEW session_heart_rate_by_id AS
SELECT p.id AS document_id, c.offset, c.timestamp, c.value
FROM session_heart_rate c
JOIN session p ON p.pk = c.document_pk;

-- Heart rate variability samples of a session (`heart_rate_variability`).
CREATE TABLE session_hrv (
    document_pk INTEGER NOT NULL REFERENCES session (pk) ON DELETE CASCADE, -- session.pk (session_hrv_by_id shows session.id instead)
    offset INTEGER NOT NULL,   -- index of the sample in the array, from 0
    timestamp INTEGER,         -- sample time, unix seconds (start + offset * interval)
    value REAL,                -- HRV (RMSSD), milliseconds; NULL where the API sent null
    PRIMARY KEY (document_pk, offset)
) WITHOUT ROWID;

-- session_hrv by Oura document id: document_id (session.id), offset,
-- timestamp (unix seconds), value (RMSSD, ms); WHERE document_id = ? reads one document.
CREATE VIEW session_hrv_by_id AS
SELECT p.id AS document_id, c.offset, c.timestamp, c.value
FROM session_hrv c
JOIN session p ON p.pk = c.document_pk;

-- Motion count samples of a session (`motion_count`).
CREATE TABLE session_motion_count (
    document_pk INTEGER NOT NULL REFERENCES session (pk) ON DELETE CASCADE, -- session.pk (session_motion_count_by_id shows session.id instead)
    offset INTEGER NOT NULL,   -- index of the sample in the array, from 0
    timestamp INTEGER,         -- sample time, unix seconds (start + offset * interval)
    value REAL,                -- movements counted in the interval, count; NULL where the API sent null
    PRIMARY KEY (document_pk, offset)
) WITHOUT ROWID;

-- session_motion_count by Oura document id: document_id (session.id), offset,
-- timestamp (unix seconds), value (count); WHERE document_id = ? reads one document.
CREATE VIEW session_motion_count_by_id AS
SELECT p.id AS document_id, c.offset, c.timestamp, c.value
FROM session_motion_count c
JOIN session p ON p.pk = c.document_pk;

-- Sleep periods: nights, naps, rests (API PublicModifiedSleepModel). Several
-- per day are possible; sleep_night picks the main one.
CREATE TABLE sleep (
    pk INTEGER PRIMARY KEY,                             -- ouradb's key for the document, referenced by its sample tables (document_pk); kept while the document is stored, not an Oura value
    id TEXT NOT NULL UNIQUE,                            -- Oura document id
    day TEXT,                                           -- local day the period counts for (YYYY-MM-DD)
    type TEXT,                                          -- period type: long_sleep, sleep, late_nap, rest ('deleted' periods are removed)
    period INTEGER,                                     -- index of the period within the day, from 0
    bedtime_start TEXT,                                 -- went to bed, RFC 3339 with local offset
    bedtime_end TEXT,                                   -- got up, RFC 3339 with local offset
    time_in_bed INTEGER,                                -- time in bed, seconds
    total_sleep_duration INTEGER,                       -- time asleep, seconds
    deep_sleep_duration INTEGER,                        -- deep sleep, seconds
    light_sleep_duration INTEGER,                       -- light sleep, seconds
    rem_sleep_duration INTEGER,                         -- REM sleep, seconds
    awake_time INTEGER,                                 -- time awake in bed, seconds
    latency INTEGER,                                    -- time to fall asleep, seconds
    efficiency INTEGER,                                 -- sleep efficiency, percent 1..100
    restless_periods INTEGER,                           -- restless periods, count
    average_breath REAL,                                -- average breathing rate, breaths per minute
    average_heart_rate REAL,                            -- average heart rate, beats per minute
    lowest_heart_rate INTEGER,                          -- lowest heart rate, beats per minute
    average_hrv INTEGER,                                -- average heart rate variability (RMSSD), milliseconds
    low_battery_alert INTEGER,                          -- 1 when the ring warned of low battery during the period
    sleep_algorithm_version TEXT,                       -- sleep algorithm version, e.g. 'v2'
    sleep_analysis_reason TEXT,                         -- why the period was analysed, e.g. 'foreground_sleep_analysis'
    sleep_score_delta INTEGER,                          -- change this period made to the sleep score, points
    readiness_score_delta INTEGER,                      -- change this period made to the readiness score, points
    ring_id TEXT,                                       -- id of the ring that recorded the period; deprecated in spec 1.41 (always NULL there)
    sleep_phase_5_min TEXT,                             -- 5-minute hypnogram as a string (decoded in sleep_phase)
    sleep_phase_30_sec TEXT,                            -- 30-second hypnogram as a string, 1 deep, 2 light, 3 REM, 4 awake
    app_sleep_phase_5_min TEXT,                         -- 5-minute hypnogram as shown in the app, same codes
    movement_30_sec TEXT,                               -- 30-second movement classes as a string (decoded in sleep_movement)
    readiness_score INTEGER,                            -- readiness score computed from this period, 1..100
    readiness_temperature_deviation REAL,               -- readiness temperature deviation, degrees Celsius
    readiness_temperature_trend_deviation REAL,         -- readiness temperature trend deviation, degrees Celsius
    readiness_contributors_activity_balance INTEGER,    -- readiness contributor: activity balance, 1..100
    readiness_contributors_body_temperature INTEGER,    -- readiness contributor: body temperature, 1..100
    readiness_contributors_hrv_balance INTEGER,         -- readiness contributor: HRV balance, 1..100
    readiness_contributors_previous_day_activity INTEGER, -- readiness contributor: previous day's activity, 1..100
    readiness_contributors_previous_night INTEGER,      -- readiness contributor: previous night, 1..100
    readiness_contributors_recovery_index INTEGER,      -- readiness contributor: recovery index, 1..100
    readiness_contributors_resting_heart_rate INTEGER,  -- readiness contributor: resting heart rate, 1..100
    readiness_contributors_sleep_balance INTEGER,       -- readiness contributor: sleep balance, 1..100
    readiness_contributors_sleep_regularity INTEGER,    -- readiness contributor: sleep regularity, 1..100
    raw_json TEXT NOT NULL,                             -- the whole document as received, JSON
    first_seen TEXT NOT NULL,                           -- RFC 3339 UTC time ouradb first stored it
    last_seen TEXT NOT NULL,                            -- RFC 3339 UTC time the API last returned it
    last_changed TEXT NOT NULL                          -- RFC 3339 UTC time its content last changed
);
CREATE INDEX sleep_day ON sleep (day); -- dashboards filter by day

-- Heart rate samples of a sleep period (its `heart_rate` sample array).
CREATE TABLE sleep_heart_rate (
    document_pk INTEGER NOT NULL REFERENCES sleep (pk) ON DELETE CASCADE, -- sleep.pk (sleep_heart_rate_by_id shows sleep.id instead)
    offset INTEGER NOT NULL,   -- index of the sample in the array, from 0
    timestamp INTEGER,         -- sample time, unix seconds (start + offset * interval)
    value REAL,                -- heart rate, beats per minute; NULL where the API sent null
    PRIMARY KEY (document_pk, offset)
) WITHOUT ROWID;

-- sleep_heart_rate by Oura document id: document_id (sleep.id), offset,
-- timestamp (unix seconds), value (beats per minute); WHERE document_id = ? reads one document.
CREATE VIEW sleep_heart_rate_by_id AS
SELECT p.id AS document_id, c.offset, c.timestamp, c.value
FROM sleep_heart_rate c
JOIN sleep p ON p.pk = c.document_pk;

-- HRV samples of a sleep period (its `hrv` sample array).
CREATE TABLE sleep_hrv (
    document_pk INTEGER NOT NULL REFERENCES sleep (pk) ON DELETE CASCADE, -- sleep.pk (sleep_hrv_by_id shows sleep.id instead)
    offset INTEGER NOT NULL,   -- index of the sample in the array, from 0
    timestamp INTEGER,         -- sample time, unix seconds (start + offset * interval)
    value REAL,                -- HRV (RMSSD), milliseconds; NULL where the API sent null
    PRIMARY KEY (document_pk, offset)
) WITHOUT ROWID;

-- sleep_hrv by Oura document id: document_id (sleep.id), offset,
-- timestamp (unix seconds), value (RMSSD, ms); WHERE document_id = ? reads one document.
CREATE VIEW sleep_hrv_by_id AS
SELECT p.id AS document_id, c.offset, c.timestamp, c.value
FROM sleep_hrv c
JOIN sleep p ON p.pk = c.document_pk;

-- The 5-minute hypnogram of a sleep period (`sleep_phase_5_min`), one row per
-- character; meanings in interval_code kind 'sleep_phase'.
-- A view over the string column rather than stored rows: decoding is cheap,
-- while storing one row per character tripled the cost of a backfill.
CREATE VIEW sleep_phase AS
SELECT d.id AS document_id,                                              -- sleep.id
       o.n AS offset,                                                    -- index of the character, from 0
       CAST(strftime('%s', d.bedtime_start) AS INTEGER) + o.n * 300 AS timestamp, -- interval start, unix seconds (bedtime_start + offset * 300)
       CASE WHEN substr(d.sleep_phase_5_min, o.n + 1, 1) GLOB '[0-9]'
            THEN CAST(substr(d.sleep_phase_5_min, o.n + 1, 1) AS INTEGER) END AS value  -- sleep phase: 1 deep, 2 light, 3 REM, 4 awake; NULL for a non-digit
FROM sleep d
JOIN interval_offset o ON o.n < length(d.sleep_phase_5_min);

-- 30-second movement classes of a sleep period (`movement_30_sec`), one row
-- per character; meanings in interval_code kind 'sleep_movement'.
-- A view over the string column rather than stored rows: decoding is cheap,
-- while storing one row per character tripled the cost of a backfill.
CREATE VIEW sleep_movement AS
SELECT d.id AS document_id,                                              -- sleep.id
       o.n AS offset,                                                    -- index of the character, from 0
       CAST(strftime('%s', d.bedtime_start) AS INTEGER) + o.n * 30 AS timestamp, -- interval start, unix seconds (bedtime_start + offset * 30)
       CASE WHEN substr(d.movement_30_sec, o.n + 1, 1) GLOB '[0-9]'
            THEN CAST(substr(d.movement_30_sec, o.n + 1, 1) AS INTEGER) END AS value  -- movement: 1 no motion, 2 restless, 3 tossing and turning, 4 active; NULL for a non-digit
FROM sleep d
JOIN interval_offset o ON o.n < length(d.movement_30_sec);

-- Recommended bedtime (API PublicSleepTime), one per day.
CREATE TABLE sleep_time (
    id TEXT PRIMARY KEY NOT NULL,          -- Oura document id
    day TEXT,                              -- local day (YYYY-MM-DD)
    recommendation TEXT,                   -- recommendation, e.g. 'follow_optimal_bedtime', 'improve_efficiency'
    status TEXT,                           -- status, e.g. 'optimal_found', 'not_enough_nights'
    optimal_bedtime_day_tz INTEGER,        -- the day's UTC offset, seconds
    optimal_bedtime_start_offset INTEGER,  -- optimal bedtime window start, seconds from local midnight (negative = before)
    optimal_bedtime_end_offset INTEGER,    -- optimal bedtime window end, seconds from local midnight
    raw_json TEXT NOT NULL,                -- the whole document as received, JSON
    first_seen TEXT NOT NULL,              -- RFC 3339 UTC time ouradb first stored it
    last_seen TEXT NOT NULL,               -- RFC 3339 UTC time the API last returned it
    last_changed TEXT NOT NULL             -- RFC 3339 UTC time its content last changed
);
CREATE INDEX sleep_time_day ON sleep_time (day); -- dashboards filter by day

-- Tags the user logged, old format (API TagModel, deprecated by enhanced_tag);
-- the `tags` list stays in raw_json and is listed by the tag_item view.
CREATE TABLE tag (
    id TEXT PRIMARY KEY NOT NULL,  -- Oura document id
    day TEXT,                      -- local day (YYYY-MM-DD)
    text TEXT,                     -- free text the user entered
    timestamp TEXT,                -- when the tag was logged, local date-time text
    raw_json TEXT NOT NULL,        -- the whole document as received, JSON
    first_seen TEXT NOT NULL,      -- RFC 3339 UTC time ouradb first stored it
    last_seen TEXT NOT NULL,       -- RFC 3339 UTC time the API last returned it
    last_changed TEXT NOT NULL     -- RFC 3339 UTC time its content last changed
);
CREATE INDEX tag_day ON tag (day); -- dashboards filter by day

-- VO2 max estimates (API PublicVO2Max).
CREATE TABLE vo2_max (
    id TEXT PRIMARY KEY NOT NULL,  -- Oura document id
    day TEXT,                      -- local day (YYYY-MM-DD)
    timestamp TEXT,                -- when it was estimated, RFC 3339 with local offset
    vo2_max INTEGER,               -- VO2 max, ml/kg/min
    raw_json TEXT NOT NULL,        -- the whole document as received, JSON
    first_seen TEXT NOT NULL,      -- RFC 3339 UTC time ouradb first stored it
    last_seen TEXT NOT NULL,       -- RFC 3339 UTC time the API last returned it
    last_changed TEXT NOT NULL     -- RFC 3339 UTC time its content last changed
);
CREATE INDEX vo2_max_day ON vo2_max (day); -- dashboards filter by day

-- Workouts (API PublicWorkout).
CREATE TABLE workout (
    id TEXT PRIMARY KEY NOT NULL,  -- Oura document id
    day TEXT,                      -- local day (YYYY-MM-DD)
    activity TEXT,                 -- activity, e.g. 'walking', 'cycling'
    intensity TEXT,                -- intensity: easy, moderate, hard
    source TEXT,                   -- how it was recorded: manual, autodetected, confirmed, workout_heart_rate; spec 1.41 adds live_third_party_heart_rate, live_oura_heart_rate (any value is stored)
    label TEXT,                    -- user-given label
    start_datetime TEXT,           -- start, RFC 3339 with local offset
    end_datetime TEXT,             -- end, RFC 3339 with local offset
    calories REAL,                 -- energy burned, kcal
    distance REAL,                 -- distance, metres
    raw_json TEXT NOT NULL,        -- the whole document as received, JSON
    first_seen TEXT NOT NULL,      -- RFC 3339 UTC time ouradb first stored it
    last_seen TEXT NOT NULL,       -- RFC 3339 UTC time the API last returned it
    last_changed TEXT NOT NULL     -- RFC 3339 UTC time its content last changed
);
CREATE INDEX workout_day ON workout (day); -- dashboards filter by day

-- Heart rate with readable times: time (UTC 'YYYY-MM-DD HH:MM:SS' text), ts (unix seconds), source, bpm (beats per minute).
CREATE VIEW heartrate_readable AS
SELECT datetime(ts, 'unixepoch') AS time, ts, source, bpm
FROM heartrate;

-- Ring battery with readable times: time (UTC text), ts (unix seconds), level (percent), charging and in_charger (0/1).
CREATE VIEW ring_battery_level_readable AS
SELECT datetime(ts, 'unixepoch') AS time, ts, level, charging, in_charger
FROM ring_battery_level;

-- The hypnogram of every sleep period, decoded: sleep_id, day (YYYY-MM-DD),
-- time (UTC text), timestamp (unix seconds), phase (code 1..4), phase_name
-- ('deep', 'light', 'REM', 'awake'). Plot a night with WHERE sleep_id = ?.
CREATE VIEW sleep_hypnogram AS
SELECT p.document_id AS sleep_id, s.day, datetime(p.timestamp, 'unixepoch') AS time,
       p.timestamp, p.value AS phase, c.meaning AS phase_name
FROM sleep_phase p
JOIN sleep s ON s.id = p.document_id
LEFT JOIN interval_code c ON c.kind = 'sleep_phase' AND c.code = p.value;

-- 30-second movement of every sleep period, decoded: sleep_id, day, time (UTC
-- text), timestamp (unix seconds), movement (code 1..4), movement_name.
CREATE VIEW sleep_movement_decoded AS
SELECT m.document_id AS sleep_id, s.day, datetime(m.timestamp, 'unixepoch') AS time,
       m.timestamp, m.value AS movement, c.meaning AS movement_name
FROM sleep_movement m
JOIN sleep s ON s.id = m.document_id
LEFT JOIN interval_code c ON c.kind = 'sleep_movement' AND c.code = m.value;

-- 5-minute activity classes of every day, decoded: day, time (UTC text),
-- timestamp (unix seconds), class (code 0..5), class_name ('rest', 'high activity', ...).
CREATE VIEW activity_class_decoded AS
SELECT a.day, datetime(k.timestamp, 'unixepoch') AS time, k.timestamp,
       k.value AS class, c.meaning AS class_name
FROM daily_activity_class k
JOIN daily_activity a ON a.id = k.document_id
LEFT JOIN interval_code c ON c.kind = 'activity_class' AND c.code = k.value;

-- One row per tag of a (old-format) tag document: tag_id, day (YYYY-MM-DD),
-- timestamp (local date-time text), tag (tag text).
CREATE VIEW tag_item AS
SELECT t.id AS tag_id, t.day, t.timestamp, j.value AS tag
FROM tag t, json_each(t.raw_json, '$.tags') j;

-- One row per episode of a rest mode period: rest_mode_period_id, start_day
-- (YYYY-MM-DD), episode (index from 0), timestamp (RFC 3339 with local offset),
-- tags (JSON array of tag texts).
CREATE VIEW rest_mode_episode AS
SELECT r.id AS rest_mode_period_id, r.start_day, CAST(j.key AS INTEGER) AS episode,
       json_extract(j.value, '$.timestamp') AS timestamp,
       json_extract(j.value, '$.tags') AS tags
FROM rest_mode_period r, json_each(r.raw_json, '$.episodes') j;

-- The main sleep period of each day (a long_sleep before other types, then the
-- longest), with durations in minutes:
-- day (YYYY-MM-DD), sleep_id, type, bedtime_start / bedtime_end (RFC 3339 local),
-- time_in_bed_min, total_sleep_min, deep_sleep_min, light_sleep_min,
-- rem_sleep_min, awake_min, latency_min (minutes), efficiency (percent),
-- average_heart_rate / lowest_heart_rate (bpm), average_hrv (ms),
-- average_breath (breaths per minute), restless_periods (count),
-- readiness_score (1..100), temperature_deviation (degrees Celsius),
-- sleep_score (1..100, from daily_sleep), periods (sleep periods that day, count).
CREATE VIEW sleep_night AS
WITH ranked AS (
    SELECT s.*,
           ROW_NUMBER() OVER (
               PARTITION BY s.day
               ORDER BY (s.type = 'long_sleep') DESC, s.total_sleep_duration DESC, s.id
           ) AS rank_in_day,
           COUNT(*) OVER (PARTITION BY s.day) AS periods_in_day
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
       (SELECT ds.score FROM daily_sleep ds WHERE ds.day = r.day ORDER BY ds.id LIMIT 1) AS sleep_score,
       r.periods_in_day AS periods
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
-- recovery_high_min (minutes); spo2_average (percent); resilience_level (text).
CREATE VIEW daily_summary AS
WITH days AS (
    SELECT day FROM daily_sleep WHERE day IS NOT NULL
    UNION SELECT day FROM daily_readiness WHERE day IS NOT NULL
    UNION SELECT day FROM daily_activity WHERE day IS NOT NULL
    UNION SELECT day FROM sleep WHERE day IS NOT NULL
)
SELECT d.day,
       (SELECT score FROM daily_sleep WHERE day = d.day ORDER BY id LIMIT 1) AS sleep_score,
       (SELECT score FROM daily_readiness WHERE day = d.day ORDER BY id LIMIT 1) AS readiness_score,
       a.score AS activity_score,
       n.total_sleep_min,
       n.deep_sleep_min,
       n.rem_sleep_min,
       n.efficiency AS sleep_efficiency,
       n.lowest_heart_rate AS resting_heart_rate,
       n.average_heart_rate,
       n.average_hrv,
       (SELECT temperature_deviation FROM daily_readiness WHERE day = d.day ORDER BY id LIMIT 1) AS temperature_deviation,
       a.steps,
       a.active_calories,
       a.total_calories,
       a.equivalent_walking_distance AS walking_distance,
       a.high_activity_time / 60.0 AS high_activity_min,
       a.medium_activity_time / 60.0 AS medium_activity_min,
       (SELECT stress_high / 60.0 FROM daily_stress WHERE day = d.day ORDER BY id LIMIT 1) AS stress_high_min,
       (SELECT recovery_high / 60.0 FROM daily_stress WHERE day = d.day ORDER BY id LIMIT 1) AS recovery_high_min,
       (SELECT spo2_percentage_average FROM daily_spo2 WHERE day = d.day ORDER BY id LIMIT 1) AS spo2_average,
       (SELECT level FROM daily_resilience WHERE day = d.day ORDER BY id LIMIT 1) AS resilience_level
FROM days d
LEFT JOIN daily_activity a ON a.id = (SELECT id FROM daily_activity WHERE day = d.day ORDER BY id LIMIT 1)
LEFT JOIN sleep_night n ON n.day = d.day;
