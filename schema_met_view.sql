-- Schema version 6: MET samples are decoded from the document, not stored
-- row by row.
--
-- A daily activity document carries 1,440 one-minute MET samples: they were
-- half the rows of a 5-year backfill and most of its write time. Its
-- raw_json holds them already, so daily_activity_met becomes a view over it
-- (as daily_activity_class is over class_5_min), with the same columns.
-- Reading one day stays instant; a scan of years of samples decodes them as
-- it goes (about a second a year in Python's SQLite 3.40).

-- Time of the first MET sample and the spacing of the samples, the
-- document's met.timestamp and met.interval: what the view needs per
-- document, so it does not re-read raw_json for every sample.
ALTER TABLE daily_activity ADD COLUMN met_interval REAL;  -- seconds between MET samples (met.interval)
ALTER TABLE daily_activity ADD COLUMN met_timestamp TEXT; -- time of the first MET sample, RFC 3339 with local offset (met.timestamp)
UPDATE daily_activity
SET met_interval = json_extract(raw_json, '$.met.interval'),
    met_timestamp = json_extract(raw_json, '$.met.timestamp');

DROP VIEW daily_activity_met_by_id;
ALTER TABLE daily_activity_met RENAME TO daily_activity_met_v5;

-- MET samples of a daily activity document (its `met` sample array), one
-- row per sample, decoded from raw_json on every read.
CREATE VIEW daily_activity_met AS
SELECT d.pk AS document_pk,                                     -- daily_activity.pk (daily_activity_met_by_id shows daily_activity.id instead)
       CAST(j.key AS INTEGER) AS offset,                        -- index of the sample in the array, from 0
       CAST(strftime('%s', d.met_timestamp) AS INTEGER)
           + CAST(round(j.key * d.met_interval) AS INTEGER) AS timestamp, -- sample time, unix seconds (start + offset * interval)
       CASE WHEN j.type IN ('integer', 'real')
            THEN CAST(j.value AS REAL) END AS value             -- metabolic equivalent, MET; NULL where the API sent null
FROM daily_activity d, json_each(d.raw_json, '$.met.items') j;

-- Nothing stored is dropped without proof: a stored sample the view does
-- not show the same (offset, timestamp, value) is kept in quarantine with
-- its document's id before the old table goes. Built from one document,
-- always empty in practice; the check is what makes dropping it safe.
INSERT OR REPLACE INTO quarantine (data_type, doc_key, reason, raw_json, first_seen, last_seen)
SELECT 'daily_activity',
       'met-rows:' || d.id,
       'MET samples stored before schema version 6 that the document''s raw_json does not hold the same; kept here when daily_activity_met became a view over raw_json',
       json_object('id', d.id, 'met_rows', json_group_array(json_array(x.offset, x.timestamp, x.value))),
       strftime('%Y-%m-%dT%H:%M:%SZ', 'now'),
       strftime('%Y-%m-%dT%H:%M:%SZ', 'now')
FROM (
    SELECT document_pk, offset, timestamp, value FROM daily_activity_met_v5
    EXCEPT
    SELECT document_pk, offset, timestamp, value FROM daily_activity_met
) x
JOIN daily_activity d ON d.pk = x.document_pk
GROUP BY d.id;

DROP TABLE daily_activity_met_v5;

-- daily_activity_met by Oura document id: document_id (daily_activity.id), offset,
-- timestamp (unix seconds), value (MET); WHERE document_id = ? reads one document.
CREATE VIEW daily_activity_met_by_id AS
SELECT p.id AS document_id, c.offset, c.timestamp, c.value
FROM daily_activity_met c
JOIN daily_activity p ON p.pk = c.document_pk;
