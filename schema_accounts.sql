-- ouradb schema version 11: accounts. One file holds the data of several
-- Oura accounts (a household, a small study); every row of a data table,
-- child table, sync_state, quarantine, pending_removal and document_history
-- names its account, and document ids and natural keys are unique per
-- account, never across.
--
-- Applied by the same migration runner, in one transaction with a proof
-- (src/store/accounts.rs): the tables below replace those of version 10
-- under the same names; every row is copied into them with account 1 (the
-- file's one account so far), every column ouradb added for a field
-- outside the schema is carried over, and the migration compares each
-- table's row count and content fingerprint before and after, rolling back
-- on any difference. Views keep their definitions.

-- The Oura accounts whose data this file holds. A file written before
-- accounts existed has one, 'default', that owns all of its rows.
CREATE TABLE account (
    id INTEGER PRIMARY KEY,           -- ouradb's number for the account; every data row's `account` column holds it
    name TEXT NOT NULL UNIQUE,        -- short name given in daemon.toml ([[account]] name) or 'default'
    oura_user_id TEXT UNIQUE,         -- the Oura user id (personal_info.id) the account signed in as; NULL until known
    email TEXT,                       -- the Oura account's e-mail address as personal_info last gave it; NULL until known
    created_at TEXT NOT NULL          -- RFC 3339 UTC time ouradb added the account
);
INSERT INTO account (id, name, created_at) VALUES (1, 'default', strftime('%Y-%m-%dT%H:%M:%SZ', 'now'));

-- Per data type sync bookkeeping, one row per ouradb data type name.
CREATE TABLE sync_state (
    account INTEGER NOT NULL REFERENCES account (id), -- the ouradb account the row belongs to (account.id)
    data_type TEXT NOT NULL, -- ouradb data type name, e.g. 'sleep', 'heartrate'
    high_water TEXT, -- last day (YYYY-MM-DD; UTC day for time series) fully synced by incremental jobs
    backfill_floor TEXT, -- oldest day (YYYY-MM-DD) the backfill has covered
    backfill_complete INTEGER NOT NULL DEFAULT 0, -- 1 once the backfill reached sync.backfill_start
    last_attempt TEXT, -- RFC 3339 UTC time the last job started
    last_success TEXT, -- RFC 3339 UTC time a job last finished its window
    last_error_kind TEXT, -- machine-readable kind of the last error ('rate_limited', 'http_403', 'network', ...); NULL after a success
    last_error TEXT, -- human-readable message of the last error; NULL after a success
    last_error_at TEXT, -- RFC 3339 UTC time of the last error; NULL after a success
    documents INTEGER NOT NULL DEFAULT 0, -- documents (rows for time series) currently stored for this type
    requests INTEGER NOT NULL DEFAULT 0, -- API requests made for this type since the database was created, retries included
    next_run TEXT, -- RFC 3339 UTC time the daemon will next run this type's job
    PRIMARY KEY (account, data_type)
);

-- Daily activity summary (API PublicDailyActivity), one row per day.
CREATE TABLE daily_activity (
    account INTEGER NOT NULL REFERENCES account (id), -- the ouradb account the row belongs to (account.id)
    pk INTEGER PRIMARY KEY, -- ouradb's key for the document, referenced by its sample tables (document_pk); kept while the document is stored, not an Oura value
    id TEXT NOT NULL, -- Oura document id
    day TEXT, -- local day (YYYY-MM-DD)
    score INTEGER, -- activity score, 1..100
    active_calories INTEGER, -- active energy expenditure, kcal
    total_calories INTEGER, -- total energy expenditure, kcal
    target_calories INTEGER, -- daily active calorie target, kcal
    steps INTEGER, -- steps taken, count
    equivalent_walking_distance INTEGER, -- walking distance equivalent to the day's activity, metres
    meters_to_target INTEGER, -- remaining distance to the activity target, metres
    target_meters INTEGER, -- daily activity target as distance, metres
    average_met_minutes REAL, -- average metabolic equivalent, MET
    high_activity_met_minutes INTEGER, -- high-intensity activity, MET minutes
    medium_activity_met_minutes INTEGER, -- medium-intensity activity, MET minutes
    low_activity_met_minutes INTEGER, -- low-intensity activity, MET minutes
    sedentary_met_minutes INTEGER, -- sedentary activity, MET minutes
    high_activity_time INTEGER, -- time in high activity, seconds
    medium_activity_time INTEGER, -- time in medium activity, seconds
    low_activity_time INTEGER, -- time in low activity, seconds
    sedentary_time INTEGER, -- time sedentary, seconds
    resting_time INTEGER, -- time resting, seconds
    non_wear_time INTEGER, -- time the ring was not worn, seconds
    inactivity_alerts INTEGER, -- inactivity alerts received, count
    timestamp TEXT, -- start of the activity day, RFC 3339 with local offset
    class_5_min TEXT, -- 5-minute activity classes as a string (decoded in daily_activity_class)
    contributors_meet_daily_targets INTEGER, -- contributor: meeting daily targets, 1..100
    contributors_move_every_hour INTEGER, -- contributor: moving every hour, 1..100
    contributors_recovery_time INTEGER, -- contributor: recovery time, 1..100
    contributors_stay_active INTEGER, -- contributor: staying active, 1..100
    contributors_training_frequency INTEGER, -- contributor: training frequency, 1..100
    contributors_training_volume INTEGER, -- contributor: training volume, 1..100
    raw_json TEXT NOT NULL, -- the whole document as received, JSON
    first_seen TEXT NOT NULL, -- RFC 3339 UTC time ouradb first stored it
    last_seen TEXT NOT NULL, -- RFC 3339 UTC time the API last returned it
    last_changed TEXT NOT NULL, -- RFC 3339 UTC time its content last changed
    met_interval REAL, -- seconds between MET samples (met.interval)
    met_timestamp TEXT, -- time of the first MET sample, RFC 3339 with local offset (met.timestamp)
    met_timestamp_ts INTEGER, -- met_timestamp as unix seconds (any UTC offset form)
    timestamp_ts INTEGER, -- timestamp as unix seconds (any UTC offset form)
    UNIQUE (account, id)
);
CREATE INDEX daily_activity_day ON daily_activity (day); -- dashboards filter by day

-- Cardiovascular age estimate (API PublicDailyCardiovascularAge), one per day.
CREATE TABLE daily_cardiovascular_age (
    account INTEGER NOT NULL REFERENCES account (id), -- the ouradb account the row belongs to (account.id)
    id TEXT NOT NULL, -- Oura document id
    day TEXT, -- local day (YYYY-MM-DD)
    pulse_wave_velocity REAL, -- pulse wave velocity, metres per second
    vascular_age INTEGER, -- estimated vascular age, years
    raw_json TEXT NOT NULL, -- the whole document as received, JSON
    first_seen TEXT NOT NULL, -- RFC 3339 UTC time ouradb first stored it
    last_seen TEXT NOT NULL, -- RFC 3339 UTC time the API last returned it
    last_changed TEXT NOT NULL, -- RFC 3339 UTC time its content last changed
    PRIMARY KEY (account, id)
);
CREATE INDEX daily_cardiovascular_age_day ON daily_cardiovascular_age (day); -- dashboards filter by day

-- Daily readiness (API PublicDailyReadiness), one per day.
CREATE TABLE daily_readiness (
    account INTEGER NOT NULL REFERENCES account (id), -- the ouradb account the row belongs to (account.id)
    id TEXT NOT NULL, -- Oura document id
    day TEXT, -- local day (YYYY-MM-DD)
    score INTEGER, -- readiness score, 1..100
    temperature_deviation REAL, -- skin temperature deviation from baseline, degrees Celsius
    temperature_trend_deviation REAL, -- weighted temperature trend deviation, degrees Celsius
    timestamp TEXT, -- start of the readiness day, RFC 3339 with local offset
    contributors_activity_balance INTEGER, -- contributor: activity balance, 1..100
    contributors_body_temperature INTEGER, -- contributor: body temperature, 1..100
    contributors_hrv_balance INTEGER, -- contributor: HRV balance, 1..100
    contributors_previous_day_activity INTEGER, -- contributor: previous day's activity, 1..100
    contributors_previous_night INTEGER, -- contributor: previous night's sleep, 1..100
    contributors_recovery_index INTEGER, -- contributor: recovery index, 1..100
    contributors_resting_heart_rate INTEGER, -- contributor: resting heart rate, 1..100
    contributors_sleep_balance INTEGER, -- contributor: sleep balance, 1..100
    contributors_sleep_regularity INTEGER, -- contributor: sleep regularity, 1..100
    raw_json TEXT NOT NULL, -- the whole document as received, JSON
    first_seen TEXT NOT NULL, -- RFC 3339 UTC time ouradb first stored it
    last_seen TEXT NOT NULL, -- RFC 3339 UTC time the API last returned it
    last_changed TEXT NOT NULL, -- RFC 3339 UTC time its content last changed
    PRIMARY KEY (account, id)
);
CREATE INDEX daily_readiness_day ON daily_readiness (day); -- dashboards filter by day

-- Daily resilience (API DailyResilienceModel), one per day.
CREATE TABLE daily_resilience (
    account INTEGER NOT NULL REFERENCES account (id), -- the ouradb account the row belongs to (account.id)
    id TEXT NOT NULL, -- Oura document id
    day TEXT, -- local day (YYYY-MM-DD)
    level TEXT, -- resilience level: limited, adequate, solid, strong, exceptional
    contributors_sleep_recovery REAL, -- contributor: sleep recovery, 0..100
    contributors_daytime_recovery REAL, -- contributor: daytime recovery, 0..100
    contributors_stress REAL, -- contributor: stress, 0..100
    raw_json TEXT NOT NULL, -- the whole document as received, JSON
    first_seen TEXT NOT NULL, -- RFC 3339 UTC time ouradb first stored it
    last_seen TEXT NOT NULL, -- RFC 3339 UTC time the API last returned it
    last_changed TEXT NOT NULL, -- RFC 3339 UTC time its content last changed
    PRIMARY KEY (account, id)
);
CREATE INDEX daily_resilience_day ON daily_resilience (day); -- dashboards filter by day

-- Daily sleep score (API PublicDailySleep), one per day.
CREATE TABLE daily_sleep (
    account INTEGER NOT NULL REFERENCES account (id), -- the ouradb account the row belongs to (account.id)
    id TEXT NOT NULL, -- Oura document id
    day TEXT, -- local day (YYYY-MM-DD)
    score INTEGER, -- sleep score, 1..100
    timestamp TEXT, -- start of the sleep day, RFC 3339 with local offset
    contributors_deep_sleep INTEGER, -- contributor: deep sleep, 1..100
    contributors_efficiency INTEGER, -- contributor: sleep efficiency, 1..100
    contributors_latency INTEGER, -- contributor: sleep latency, 1..100
    contributors_rem_sleep INTEGER, -- contributor: REM sleep, 1..100
    contributors_restfulness INTEGER, -- contributor: restfulness, 1..100
    contributors_timing INTEGER, -- contributor: sleep timing, 1..100
    contributors_total_sleep INTEGER, -- contributor: total sleep, 1..100
    raw_json TEXT NOT NULL, -- the whole document as received, JSON
    first_seen TEXT NOT NULL, -- RFC 3339 UTC time ouradb first stored it
    last_seen TEXT NOT NULL, -- RFC 3339 UTC time the API last returned it
    last_changed TEXT NOT NULL, -- RFC 3339 UTC time its content last changed
    PRIMARY KEY (account, id)
);
CREATE INDEX daily_sleep_day ON daily_sleep (day); -- dashboards filter by day

-- Daily blood oxygen (API PublicDailySpO2), one per day.
CREATE TABLE daily_spo2 (
    account INTEGER NOT NULL REFERENCES account (id), -- the ouradb account the row belongs to (account.id)
    id TEXT NOT NULL, -- Oura document id
    day TEXT, -- local day (YYYY-MM-DD)
    breathing_disturbance_index INTEGER, -- breathing disturbance index, events per hour
    spo2_percentage_average REAL, -- average SpO2 during sleep, percent
    raw_json TEXT NOT NULL, -- the whole document as received, JSON
    first_seen TEXT NOT NULL, -- RFC 3339 UTC time ouradb first stored it
    last_seen TEXT NOT NULL, -- RFC 3339 UTC time the API last returned it
    last_changed TEXT NOT NULL, -- RFC 3339 UTC time its content last changed
    PRIMARY KEY (account, id)
);
CREATE INDEX daily_spo2_day ON daily_spo2 (day); -- dashboards filter by day

-- Daily stress (API PublicDailyStress), one per day.
CREATE TABLE daily_stress (
    account INTEGER NOT NULL REFERENCES account (id), -- the ouradb account the row belongs to (account.id)
    id TEXT NOT NULL, -- Oura document id
    day TEXT, -- local day (YYYY-MM-DD)
    day_summary TEXT, -- day's stress summary: restored, normal, stressful
    stress_high INTEGER, -- time in high stress, seconds
    recovery_high INTEGER, -- time in high recovery, seconds
    raw_json TEXT NOT NULL, -- the whole document as received, JSON
    first_seen TEXT NOT NULL, -- RFC 3339 UTC time ouradb first stored it
    last_seen TEXT NOT NULL, -- RFC 3339 UTC time the API last returned it
    last_changed TEXT NOT NULL, -- RFC 3339 UTC time its content last changed
    PRIMARY KEY (account, id)
);
CREATE INDEX daily_stress_day ON daily_stress (day); -- dashboards filter by day

-- Enhanced tags the user logged (API EnhancedTagModel).
CREATE TABLE enhanced_tag (
    account INTEGER NOT NULL REFERENCES account (id), -- the ouradb account the row belongs to (account.id)
    id TEXT NOT NULL, -- Oura document id
    tag_type_code TEXT, -- tag type, e.g. 'tag_generic_nocaffeine'; 'custom' for user-named tags
    start_time TEXT, -- when the tag starts, local date-time text
    end_time TEXT, -- when the tag ends (NULL for instant tags), local date-time text
    start_day TEXT, -- local day the tag starts (YYYY-MM-DD)
    end_day TEXT, -- local day the tag ends (YYYY-MM-DD), NULL for instant tags
    comment TEXT, -- free-text comment
    custom_name TEXT, -- name of a custom tag
    raw_json TEXT NOT NULL, -- the whole document as received, JSON
    first_seen TEXT NOT NULL, -- RFC 3339 UTC time ouradb first stored it
    last_seen TEXT NOT NULL, -- RFC 3339 UTC time the API last returned it
    last_changed TEXT NOT NULL, -- RFC 3339 UTC time its content last changed
    PRIMARY KEY (account, id)
);
CREATE INDEX enhanced_tag_start_day ON enhanced_tag (start_day); -- dashboards filter by day

-- Heart rate time series (API PublicHeartRateRow), one row per sample;
-- about 450,000 rows a year, hence the narrow WITHOUT ROWID layout.
CREATE TABLE heartrate (
    account INTEGER NOT NULL REFERENCES account (id), -- the ouradb account the row belongs to (account.id)
    ts INTEGER NOT NULL, -- sample time, unix seconds (UTC), parsed from the API's `timestamp`; `timestamp_unix` is ts * 1000
    source TEXT NOT NULL, -- what the ring was measuring in: awake, workout, rest, sleep, live, session
    bpm INTEGER, -- heart rate, beats per minute
    extra TEXT, -- NULL, unless the API row held more than ts/source/bpm can restore (unknown fields, sub-second or inconsistent times): then the whole row as JSON
    PRIMARY KEY (account, ts, source)
) WITHOUT ROWID;

-- The user's profile (API PersonalInfoResponse); a single row.
CREATE TABLE personal_info (
    account INTEGER NOT NULL REFERENCES account (id), -- the ouradb account the row belongs to (account.id)
    id TEXT NOT NULL, -- Oura user id
    age INTEGER, -- age, years
    weight REAL, -- weight, kilograms
    height REAL, -- height, metres
    biological_sex TEXT, -- biological sex as reported by the API
    email TEXT, -- account e-mail address
    raw_json TEXT NOT NULL, -- the whole document as received, JSON
    first_seen TEXT NOT NULL, -- RFC 3339 UTC time ouradb first stored it
    last_seen TEXT NOT NULL, -- RFC 3339 UTC time the API last returned it
    last_changed TEXT NOT NULL, -- RFC 3339 UTC time its content last changed
    PRIMARY KEY (account, id)
);

-- Rest mode periods (API PublicRestModePeriod); episodes stay in raw_json
-- and are listed by the rest_mode_episode view.
CREATE TABLE rest_mode_period (
    account INTEGER NOT NULL REFERENCES account (id), -- the ouradb account the row belongs to (account.id)
    id TEXT NOT NULL, -- Oura document id
    start_day TEXT, -- local day rest mode started (YYYY-MM-DD)
    start_time TEXT, -- when rest mode started, RFC 3339 with local offset
    end_day TEXT, -- local day rest mode ended (YYYY-MM-DD), NULL while ongoing
    end_time TEXT, -- when rest mode ended, RFC 3339 with local offset, NULL while ongoing
    raw_json TEXT NOT NULL, -- the whole document as received, JSON
    first_seen TEXT NOT NULL, -- RFC 3339 UTC time ouradb first stored it
    last_seen TEXT NOT NULL, -- RFC 3339 UTC time the API last returned it
    last_changed TEXT NOT NULL, -- RFC 3339 UTC time its content last changed
    PRIMARY KEY (account, id)
);
CREATE INDEX rest_mode_period_start_day ON rest_mode_period (start_day); -- dashboards filter by day

-- Ring battery time series (API PublicRingBatteryLevelRow), one row per sample.
CREATE TABLE ring_battery_level (
    account INTEGER NOT NULL REFERENCES account (id), -- the ouradb account the row belongs to (account.id)
    ts INTEGER NOT NULL, -- sample time, unix seconds (UTC), parsed from the API's `timestamp`; `timestamp_unix` is ts * 1000
    level INTEGER, -- battery level, percent 0..100
    charging INTEGER, -- 1 while charging, 0 when not, NULL when unknown
    in_charger INTEGER, -- 1 while in the charger, 0 when not, NULL when unknown
    extra TEXT, -- NULL, unless the API row held more than the columns can restore: then the whole row as JSON
    PRIMARY KEY (account, ts)
) WITHOUT ROWID;

-- Rings the user set up (API PublicRingConfiguration).
CREATE TABLE ring_configuration (
    account INTEGER NOT NULL REFERENCES account (id), -- the ouradb account the row belongs to (account.id)
    id TEXT NOT NULL, -- Oura ring configuration id
    color TEXT, -- ring colour, e.g. 'stealth_black'
    design TEXT, -- ring design: balance, heritage, horizon, ...
    firmware_version TEXT, -- firmware version string
    hardware_type TEXT, -- hardware generation: gen1, gen2, gen2m, gen3, gen4
    set_up_at TEXT, -- when the ring was set up, UTC date-time text (placeholders such as 1970-01-01 occur)
    size INTEGER, -- ring size, US size
    raw_json TEXT NOT NULL, -- the whole document as received, JSON
    first_seen TEXT NOT NULL, -- RFC 3339 UTC time ouradb first stored it
    last_seen TEXT NOT NULL, -- RFC 3339 UTC time the API last returned it
    last_changed TEXT NOT NULL, -- RFC 3339 UTC time its content last changed
    PRIMARY KEY (account, id)
);

-- Guided and unguided sessions: meditation, breathing, ... (API PublicSession).
CREATE TABLE session (
    account INTEGER NOT NULL REFERENCES account (id), -- the ouradb account the row belongs to (account.id)
    pk INTEGER PRIMARY KEY, -- ouradb's key for the document, referenced by its sample tables (document_pk); kept while the document is stored, not an Oura value
    id TEXT NOT NULL, -- Oura document id
    day TEXT, -- local day (YYYY-MM-DD)
    start_datetime TEXT, -- session start, RFC 3339 with local offset
    end_datetime TEXT, -- session end, RFC 3339 with local offset
    type TEXT, -- session type: breathing, meditation, nap, relaxation, rest, body_status
    mood TEXT, -- mood after the session: bad, worse, same, good, great
    raw_json TEXT NOT NULL, -- the whole document as received, JSON
    first_seen TEXT NOT NULL, -- RFC 3339 UTC time ouradb first stored it
    last_seen TEXT NOT NULL, -- RFC 3339 UTC time the API last returned it
    last_changed TEXT NOT NULL, -- RFC 3339 UTC time its content last changed
    UNIQUE (account, id)
);
CREATE INDEX session_day ON session (day); -- dashboards filter by day

-- Heart rate samples of a session (its `heart_rate` sample array).
CREATE TABLE session_heart_rate (
    account INTEGER NOT NULL REFERENCES account (id), -- the ouradb account the row belongs to (account.id)
    document_pk INTEGER NOT NULL REFERENCES session (pk) ON DELETE CASCADE, -- session.pk (session_heart_rate_by_id shows session.id instead)
    offset INTEGER NOT NULL, -- index of the sample in the array, from 0
    timestamp INTEGER, -- sample time, unix seconds (start + offset * interval)
    value REAL, -- heart rate, beats per minute; NULL where the API sent null
    PRIMARY KEY (document_pk, offset)
) WITHOUT ROWID;

-- Heart rate variability samples of a session (`heart_rate_variability`).
CREATE TABLE session_hrv (
    account INTEGER NOT NULL REFERENCES account (id), -- the ouradb account the row belongs to (account.id)
    document_pk INTEGER NOT NULL REFERENCES session (pk) ON DELETE CASCADE, -- session.pk (session_hrv_by_id shows session.id instead)
    offset INTEGER NOT NULL, -- index of the sample in the array, from 0
    timestamp INTEGER, -- sample time, unix seconds (start + offset * interval)
    value REAL, -- HRV (RMSSD), milliseconds; NULL where the API sent null
    PRIMARY KEY (document_pk, offset)
) WITHOUT ROWID;

-- Motion count samples of a session (`motion_count`).
CREATE TABLE session_motion_count (
    account INTEGER NOT NULL REFERENCES account (id), -- the ouradb account the row belongs to (account.id)
    document_pk INTEGER NOT NULL REFERENCES session (pk) ON DELETE CASCADE, -- session.pk (session_motion_count_by_id shows session.id instead)
    offset INTEGER NOT NULL, -- index of the sample in the array, from 0
    timestamp INTEGER, -- sample time, unix seconds (start + offset * interval)
    value REAL, -- movements counted in the interval, count; NULL where the API sent null
    PRIMARY KEY (document_pk, offset)
) WITHOUT ROWID;

-- Sleep periods: nights, naps, rests (API PublicModifiedSleepModel). Several
-- per day are possible; sleep_night picks the main one.
CREATE TABLE sleep (
    account INTEGER NOT NULL REFERENCES account (id), -- the ouradb account the row belongs to (account.id)
    pk INTEGER PRIMARY KEY, -- ouradb's key for the document, referenced by its sample tables (document_pk); kept while the document is stored, not an Oura value
    id TEXT NOT NULL, -- Oura document id
    day TEXT, -- local day the period counts for (YYYY-MM-DD)
    type TEXT, -- period type: long_sleep, sleep, late_nap, rest ('deleted' periods are removed)
    period INTEGER, -- index of the period within the day, from 0
    bedtime_start TEXT, -- went to bed, RFC 3339 with local offset
    bedtime_end TEXT, -- got up, RFC 3339 with local offset
    time_in_bed INTEGER, -- time in bed, seconds
    total_sleep_duration INTEGER, -- time asleep, seconds
    deep_sleep_duration INTEGER, -- deep sleep, seconds
    light_sleep_duration INTEGER, -- light sleep, seconds
    rem_sleep_duration INTEGER, -- REM sleep, seconds
    awake_time INTEGER, -- time awake in bed, seconds
    latency INTEGER, -- time to fall asleep, seconds
    efficiency INTEGER, -- sleep efficiency, percent 1..100
    restless_periods INTEGER, -- restless periods, count
    average_breath REAL, -- average breathing rate, breaths per minute
    average_heart_rate REAL, -- average heart rate, beats per minute
    lowest_heart_rate INTEGER, -- lowest heart rate, beats per minute
    average_hrv INTEGER, -- average heart rate variability (RMSSD), milliseconds
    low_battery_alert INTEGER, -- 1 when the ring warned of low battery during the period
    sleep_algorithm_version TEXT, -- sleep algorithm version, e.g. 'v2'
    sleep_analysis_reason TEXT, -- why the period was analysed, e.g. 'foreground_sleep_analysis'
    sleep_score_delta INTEGER, -- change this period made to the sleep score, points
    readiness_score_delta INTEGER, -- change this period made to the readiness score, points
    ring_id TEXT, -- id of the ring that recorded the period; deprecated in spec 1.41 (always NULL there)
    sleep_phase_5_min TEXT, -- 5-minute hypnogram as a string (decoded in sleep_phase)
    sleep_phase_30_sec TEXT, -- 30-second hypnogram as a string, 1 deep, 2 light, 3 REM, 4 awake
    app_sleep_phase_5_min TEXT, -- 5-minute hypnogram as shown in the app, same codes
    movement_30_sec TEXT, -- 30-second movement classes as a string (decoded in sleep_movement)
    readiness_score INTEGER, -- readiness score computed from this period, 1..100
    readiness_temperature_deviation REAL, -- readiness temperature deviation, degrees Celsius
    readiness_temperature_trend_deviation REAL, -- readiness temperature trend deviation, degrees Celsius
    readiness_contributors_activity_balance INTEGER, -- readiness contributor: activity balance, 1..100
    readiness_contributors_body_temperature INTEGER, -- readiness contributor: body temperature, 1..100
    readiness_contributors_hrv_balance INTEGER, -- readiness contributor: HRV balance, 1..100
    readiness_contributors_previous_day_activity INTEGER, -- readiness contributor: previous day's activity, 1..100
    readiness_contributors_previous_night INTEGER, -- readiness contributor: previous night, 1..100
    readiness_contributors_recovery_index INTEGER, -- readiness contributor: recovery index, 1..100
    readiness_contributors_resting_heart_rate INTEGER, -- readiness contributor: resting heart rate, 1..100
    readiness_contributors_sleep_balance INTEGER, -- readiness contributor: sleep balance, 1..100
    readiness_contributors_sleep_regularity INTEGER, -- readiness contributor: sleep regularity, 1..100
    raw_json TEXT NOT NULL, -- the whole document as received, JSON
    first_seen TEXT NOT NULL, -- RFC 3339 UTC time ouradb first stored it
    last_seen TEXT NOT NULL, -- RFC 3339 UTC time the API last returned it
    last_changed TEXT NOT NULL, -- RFC 3339 UTC time its content last changed
    bedtime_start_ts INTEGER, -- bedtime_start as unix seconds (any UTC offset form)
    UNIQUE (account, id)
);
CREATE INDEX sleep_day ON sleep (day); -- dashboards filter by day

-- Heart rate samples of a sleep period (its `heart_rate` sample array).
CREATE TABLE sleep_heart_rate (
    account INTEGER NOT NULL REFERENCES account (id), -- the ouradb account the row belongs to (account.id)
    document_pk INTEGER NOT NULL REFERENCES sleep (pk) ON DELETE CASCADE, -- sleep.pk (sleep_heart_rate_by_id shows sleep.id instead)
    offset INTEGER NOT NULL, -- index of the sample in the array, from 0
    timestamp INTEGER, -- sample time, unix seconds (start + offset * interval)
    value REAL, -- heart rate, beats per minute; NULL where the API sent null
    PRIMARY KEY (document_pk, offset)
) WITHOUT ROWID;

-- HRV samples of a sleep period (its `hrv` sample array).
CREATE TABLE sleep_hrv (
    account INTEGER NOT NULL REFERENCES account (id), -- the ouradb account the row belongs to (account.id)
    document_pk INTEGER NOT NULL REFERENCES sleep (pk) ON DELETE CASCADE, -- sleep.pk (sleep_hrv_by_id shows sleep.id instead)
    offset INTEGER NOT NULL, -- index of the sample in the array, from 0
    timestamp INTEGER, -- sample time, unix seconds (start + offset * interval)
    value REAL, -- HRV (RMSSD), milliseconds; NULL where the API sent null
    PRIMARY KEY (document_pk, offset)
) WITHOUT ROWID;

-- Recommended bedtime (API PublicSleepTime), one per day.
CREATE TABLE sleep_time (
    account INTEGER NOT NULL REFERENCES account (id), -- the ouradb account the row belongs to (account.id)
    id TEXT NOT NULL, -- Oura document id
    day TEXT, -- local day (YYYY-MM-DD)
    recommendation TEXT, -- recommendation, e.g. 'follow_optimal_bedtime', 'improve_efficiency'
    status TEXT, -- status, e.g. 'optimal_found', 'not_enough_nights'
    optimal_bedtime_day_tz INTEGER, -- the day's UTC offset, seconds
    optimal_bedtime_start_offset INTEGER, -- optimal bedtime window start, seconds from local midnight (negative = before)
    optimal_bedtime_end_offset INTEGER, -- optimal bedtime window end, seconds from local midnight
    raw_json TEXT NOT NULL, -- the whole document as received, JSON
    first_seen TEXT NOT NULL, -- RFC 3339 UTC time ouradb first stored it
    last_seen TEXT NOT NULL, -- RFC 3339 UTC time the API last returned it
    last_changed TEXT NOT NULL, -- RFC 3339 UTC time its content last changed
    PRIMARY KEY (account, id)
);
CREATE INDEX sleep_time_day ON sleep_time (day); -- dashboards filter by day

-- Tags the user logged, old format (API TagModel, deprecated by enhanced_tag);
-- the `tags` list stays in raw_json and is listed by the tag_item view.
CREATE TABLE tag (
    account INTEGER NOT NULL REFERENCES account (id), -- the ouradb account the row belongs to (account.id)
    id TEXT NOT NULL, -- Oura document id
    day TEXT, -- local day (YYYY-MM-DD)
    text TEXT, -- free text the user entered
    timestamp TEXT, -- when the tag was logged, local date-time text
    raw_json TEXT NOT NULL, -- the whole document as received, JSON
    first_seen TEXT NOT NULL, -- RFC 3339 UTC time ouradb first stored it
    last_seen TEXT NOT NULL, -- RFC 3339 UTC time the API last returned it
    last_changed TEXT NOT NULL, -- RFC 3339 UTC time its content last changed
    PRIMARY KEY (account, id)
);
CREATE INDEX tag_day ON tag (day); -- dashboards filter by day

-- VO2 max estimates (API PublicVO2Max).
CREATE TABLE vo2_max (
    account INTEGER NOT NULL REFERENCES account (id), -- the ouradb account the row belongs to (account.id)
    id TEXT NOT NULL, -- Oura document id
    day TEXT, -- local day (YYYY-MM-DD)
    timestamp TEXT, -- when it was estimated, RFC 3339 with local offset
    vo2_max INTEGER, -- VO2 max, ml/kg/min
    raw_json TEXT NOT NULL, -- the whole document as received, JSON
    first_seen TEXT NOT NULL, -- RFC 3339 UTC time ouradb first stored it
    last_seen TEXT NOT NULL, -- RFC 3339 UTC time the API last returned it
    last_changed TEXT NOT NULL, -- RFC 3339 UTC time its content last changed
    PRIMARY KEY (account, id)
);
CREATE INDEX vo2_max_day ON vo2_max (day); -- dashboards filter by day

-- Workouts (API PublicWorkout).
CREATE TABLE workout (
    account INTEGER NOT NULL REFERENCES account (id), -- the ouradb account the row belongs to (account.id)
    id TEXT NOT NULL, -- Oura document id
    day TEXT, -- local day (YYYY-MM-DD)
    activity TEXT, -- activity, e.g. 'walking', 'cycling'
    intensity TEXT, -- intensity: easy, moderate, hard
    source TEXT, -- how it was recorded: manual, autodetected, confirmed, workout_heart_rate; spec 1.41 adds live_third_party_heart_rate, live_oura_heart_rate (any value is stored)
    label TEXT, -- user-given label
    start_datetime TEXT, -- start, RFC 3339 with local offset
    end_datetime TEXT, -- end, RFC 3339 with local offset
    calories REAL, -- energy burned, kcal
    distance REAL, -- distance, metres
    raw_json TEXT NOT NULL, -- the whole document as received, JSON
    first_seen TEXT NOT NULL, -- RFC 3339 UTC time ouradb first stored it
    last_seen TEXT NOT NULL, -- RFC 3339 UTC time the API last returned it
    last_changed TEXT NOT NULL, -- RFC 3339 UTC time its content last changed
    PRIMARY KEY (account, id)
);
CREATE INDEX workout_day ON workout (day); -- dashboards filter by day

-- Documents the API sent that ouradb could not key or store (no id and no
-- natural key, no readable day, a value SQLite refuses, ...). The rest of
-- their page is stored as usual; a later good copy with the same doc_key
-- takes the entry out of here.
CREATE TABLE quarantine (
    account INTEGER NOT NULL REFERENCES account (id), -- the ouradb account the row belongs to (account.id)
    data_type  TEXT NOT NULL, -- ouradb data type name, e.g. 'daily_cardiovascular_age'
    doc_key    TEXT NOT NULL, -- the document's id, else its natural-key id ('key:...'), else 'sha256:' of raw_json
    reason     TEXT NOT NULL, -- why it could not be stored, e.g. 'no id, and no day to key it by'
    raw_json   TEXT NOT NULL, -- the document as received, JSON
    first_seen TEXT NOT NULL, -- RFC 3339 UTC time ouradb first received it
    last_seen  TEXT NOT NULL, -- RFC 3339 UTC time ouradb last received it
    raw_bytes BLOB, -- the document's exact bytes when they are not UTF-8 text (raw_json then replaces the invalid ones with U+FFFD); NULL otherwise
    PRIMARY KEY (account, data_type, doc_key)
);

-- Stored documents missing from a complete re-fetch of their window, for
-- types whose documents vanish when deleted (tags). A document is removed
-- only when it is still missing from a complete fetch at least 24 hours
-- after first_missed; it leaves this table when the API serves it again.
-- Until then it stays in its table and every view, like any other.
CREATE TABLE pending_removal (
    account INTEGER NOT NULL REFERENCES account (id), -- the ouradb account the row belongs to (account.id)
    data_type    TEXT NOT NULL, -- ouradb data type name
    doc_id       TEXT NOT NULL, -- id of the stored document (its table's id column)
    first_missed TEXT NOT NULL, -- RFC 3339 UTC time a complete fetch first lacked it
    PRIMARY KEY (account, data_type, doc_id)
);

-- Documents of a one-per-day collection (the registry's natural key is the
-- day alone: daily_activity, daily_sleep, daily_readiness, sleep_time, ...)
-- that a document with another id for the same day replaced: the API
-- re-issued the day under a new id. The table keeps the latest copy of
-- each replaced id; the day's current document is in the collection's table.
CREATE TABLE document_history (
    account INTEGER NOT NULL REFERENCES account (id), -- the ouradb account the row belongs to (account.id)
    data_type   TEXT NOT NULL, -- ouradb data type name, e.g. 'daily_sleep'
    id          TEXT NOT NULL, -- id of the replaced document
    day         TEXT, -- its day (YYYY-MM-DD)
    raw_json    TEXT NOT NULL, -- the replaced document as last received, JSON
    replaced_at TEXT NOT NULL, -- RFC 3339 UTC time it was replaced
    replaced_by TEXT NOT NULL, -- id of the document that replaced it
    PRIMARY KEY (account, data_type, id)
);

-- One row per beat. The table is the largest by far (about 9 million beats
-- a year), so its key packs the account and the time into one integer, the
-- row's own rowid: beat = (account - 1) * 2^42 + ts_ms. Rows arrive in key
-- order and SQLite packs such leaves full: about 16 bytes a beat, no index
-- beside the table (BENCHMARKS.md). account and ts_ms are computed from the
-- key, never stored; a range of one account's beats is a range of `beat`.
-- 2^42 ms reach to the year 2109; a beat outside 1970..2109 is quarantined.
CREATE TABLE interbeat_interval (
    beat INTEGER PRIMARY KEY, -- the row's key: (account - 1) * 4398046511104 + ts_ms; not an Oura value
    ibi INTEGER, -- interval since the previous beat, milliseconds (the API caps it at 2000)
    validity INTEGER, -- the API's validity code: 1 = a valid beat; anything else marks an artifact or a beat after a gap
    extra TEXT, -- NULL, unless the API row held more than ts_ms/ibi/validity can restore (unknown fields, sub-millisecond or inconsistent times): then the whole row as JSON
    account INTEGER GENERATED ALWAYS AS ((beat >> 42) + 1) VIRTUAL, -- the ouradb account the row belongs to (account.id), from beat
    ts_ms INTEGER GENERATED ALWAYS AS (beat & 4398046511103) VIRTUAL -- beat time, unix milliseconds (UTC), parsed from the API's `timestamp` (`timestamp_unix` is this value), from beat
);

-- Webhook events name the Oura user they are for; the worker routes each
-- to the account with that user id.
ALTER TABLE webhook_event ADD COLUMN account INTEGER REFERENCES account (id); -- the account the event was routed to; NULL when no account has its user_id
UPDATE webhook_event SET account = 1;
