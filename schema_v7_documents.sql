-- Schema version 7: one document per day, start times decoded by ouradb,
-- and the history of replaced documents.
--
-- Applied after the earlier versions by the same migration runner; the
-- conventions of schema.sql hold. In the same transaction ouradb then fills
-- the new *_ts columns of the rows already stored and, in each one-per-day
-- collection, moves all but the newest document of a day to
-- document_history (see src/store/schema.rs).

-- Documents of a one-per-day collection (the registry's natural key is the
-- day alone: daily_activity, daily_sleep, daily_readiness, sleep_time, ...)
-- that a document with another id for the same day replaced: the API
-- re-issued the day under a new id. The table keeps the latest copy of
-- each replaced id; the day's current document is in the collection's table.
CREATE TABLE document_history (
    data_type   TEXT NOT NULL,  -- ouradb data type name, e.g. 'daily_sleep'
    id          TEXT NOT NULL,  -- id of the replaced document
    day         TEXT,           -- its day (YYYY-MM-DD)
    raw_json    TEXT NOT NULL,  -- the replaced document as last received, JSON
    replaced_at TEXT NOT NULL,  -- RFC 3339 UTC time it was replaced
    replaced_by TEXT NOT NULL,  -- id of the document that replaced it
    PRIMARY KEY (data_type, id)
);

-- Start times as unix seconds, decoded by ouradb as it decodes the times of
-- sample rows: SQLite's strftime reads `+05:45` but not `+0545` or
-- `+05:45:30`, which left the decoding views without times.
ALTER TABLE daily_activity ADD COLUMN met_timestamp_ts INTEGER; -- met_timestamp as unix seconds (any UTC offset form)
ALTER TABLE daily_activity ADD COLUMN timestamp_ts INTEGER;     -- timestamp as unix seconds (any UTC offset form)
ALTER TABLE sleep ADD COLUMN bedtime_start_ts INTEGER;          -- bedtime_start as unix seconds (any UTC offset form)

DROP VIEW daily_activity_met_by_id;
DROP VIEW daily_activity_met;

-- MET samples of a daily activity document (its `met` sample array), one
-- row per sample, decoded from raw_json on every read.
CREATE VIEW daily_activity_met AS
SELECT d.pk AS document_pk,                                     -- daily_activity.pk (daily_activity_met_by_id shows daily_activity.id instead)
       CAST(j.key AS INTEGER) AS offset,                        -- index of the sample in the array, from 0
       d.met_timestamp_ts
           + CAST(round(j.key * d.met_interval) AS INTEGER) AS timestamp, -- sample time, unix seconds (start + offset * interval)
       CASE WHEN j.type IN ('integer', 'real')
            THEN CAST(j.value AS REAL) END AS value             -- metabolic equivalent, MET; NULL where the API sent null
FROM daily_activity d, json_each(d.raw_json, '$.met.items') j;

-- daily_activity_met by Oura document id: document_id (daily_activity.id), offset,
-- timestamp (unix seconds), value (MET); WHERE document_id = ? reads one document.
CREATE VIEW daily_activity_met_by_id AS
SELECT p.id AS document_id, c.offset, c.timestamp, c.value
FROM daily_activity_met c
JOIN daily_activity p ON p.pk = c.document_pk;

DROP VIEW daily_activity_class;

-- 5-minute activity classes of a daily activity document (`class_5_min`),
-- one row per character; meanings in interval_code kind 'activity_class'.
-- A view over the string column rather than stored rows: decoding is cheap,
-- while storing one row per character tripled the cost of a backfill.
CREATE VIEW daily_activity_class AS
SELECT d.id AS document_id,                                              -- daily_activity.id
       o.n AS offset,                                                    -- index of the character, from 0
       d.timestamp_ts + o.n * 300 AS timestamp,                          -- interval start, unix seconds (timestamp + offset * 300)
       CASE WHEN substr(d.class_5_min, o.n + 1, 1) GLOB '[0-9]'
            THEN CAST(substr(d.class_5_min, o.n + 1, 1) AS INTEGER) END AS value  -- activity class 0..5 (0 non wear, 1 rest, 2 inactive, 3 low, 4 medium, 5 high); NULL for a non-digit
FROM daily_activity d
JOIN interval_offset o ON o.n < length(d.class_5_min);

DROP VIEW sleep_phase;

-- The 5-minute hypnogram of a sleep period (`sleep_phase_5_min`), one row per
-- character; meanings in interval_code kind 'sleep_phase'.
-- A view over the string column rather than stored rows: decoding is cheap,
-- while storing one row per character tripled the cost of a backfill.
CREATE VIEW sleep_phase AS
SELECT d.id AS document_id,                                              -- sleep.id
       o.n AS offset,                                                    -- index of the character, from 0
       d.bedtime_start_ts + o.n * 300 AS timestamp,                      -- interval start, unix seconds (bedtime_start + offset * 300)
       CASE WHEN substr(d.sleep_phase_5_min, o.n + 1, 1) GLOB '[0-9]'
            THEN CAST(substr(d.sleep_phase_5_min, o.n + 1, 1) AS INTEGER) END AS value  -- sleep phase: 1 deep, 2 light, 3 REM, 4 awake; NULL for a non-digit
FROM sleep d
JOIN interval_offset o ON o.n < length(d.sleep_phase_5_min);

DROP VIEW sleep_movement;

-- 30-second movement classes of a sleep period (`movement_30_sec`), one row
-- per character; meanings in interval_code kind 'sleep_movement'.
-- A view over the string column rather than stored rows: decoding is cheap,
-- while storing one row per character tripled the cost of a backfill.
CREATE VIEW sleep_movement AS
SELECT d.id AS document_id,                                              -- sleep.id
       o.n AS offset,                                                    -- index of the character, from 0
       d.bedtime_start_ts + o.n * 30 AS timestamp,                       -- interval start, unix seconds (bedtime_start + offset * 30)
       CASE WHEN substr(d.movement_30_sec, o.n + 1, 1) GLOB '[0-9]'
            THEN CAST(substr(d.movement_30_sec, o.n + 1, 1) AS INTEGER) END AS value  -- movement: 1 no motion, 2 restless, 3 tossing and turning, 4 active; NULL for a non-digit
FROM sleep d
JOIN interval_offset o ON o.n < length(d.movement_30_sec);
