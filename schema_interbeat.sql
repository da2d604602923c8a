-- ouradb schema step 10: raw interbeat intervals (API `interbeat_interval`,
-- rows like spec 1.41's PublicInterbeatIntervalRow), ~27,000 rows a night.

-- One row per beat. The beat's time in milliseconds is the rowid (an
-- INTEGER PRIMARY KEY of a rowid table is stored once, as the row's key,
-- and rows appended in time order fill their pages), so a beat costs about
-- 16 bytes on disk with no index beside the table (BENCHMARKS.md).
CREATE TABLE interbeat_interval (
    ts_ms INTEGER PRIMARY KEY NOT NULL, -- beat time, unix milliseconds (UTC), parsed from the API's `timestamp`; `timestamp_unix` is this value
    ibi INTEGER,                        -- interval since the previous beat, milliseconds (the API caps it at 2000)
    validity INTEGER,                   -- the API's validity code: 1 = a valid beat; anything else marks an artifact or a beat after a gap
    extra TEXT                          -- NULL, unless the API row held more than ts_ms/ibi/validity can restore (unknown fields, sub-millisecond or inconsistent times): then the whole row as JSON
);

-- Interbeat intervals with readable times: time (UTC 'YYYY-MM-DD HH:MM:SS.SSS' text),
-- ts_ms (unix milliseconds), ibi_ms (milliseconds), validity (API code, 1 = valid).
CREATE VIEW interbeat_interval_readable AS
SELECT strftime('%Y-%m-%d %H:%M:%f', ts_ms / 1000.0, 'unixepoch') AS time, ts_ms, ibi AS ibi_ms, validity
FROM interbeat_interval;

-- Heart rate variability per sleep period computed from the raw beats
-- between bedtime_start and bedtime_end, beside Oura's own average_hrv.
-- A beat is valid when its validity is 1 and its interval is below the
-- API's 2,000 ms cap (a capped interval spans missing beats). RMSSD uses
-- only successive differences between two valid beats that follow each
-- other with no beat between them; SDNN is the population standard
-- deviation of the valid intervals. Periods without beats have NULLs.
-- Each period reads only its own beats (a range of the table's key), so
-- a WHERE on time or day reads only the nights it selects. Square roots
-- are six Newton steps from a guess within 5x (exact to 0.1 ms): SQLite
-- builds without math functions, ouradb's own among them, have no sqrt().
CREATE VIEW interbeat_hrv_nightly AS
SELECT p.time AS time,                                                               -- bedtime_start, unix seconds
       p.day AS day,                                                                 -- the sleep period's day (YYYY-MM-DD)
       p.sleep_id AS sleep_id,                                                       -- sleep.id
       p.type AS type,                                                               -- sleep period type (long_sleep, sleep, late_nap, rest)
       (SELECT count(*) FROM interbeat_interval i
        WHERE i.ts_ms >= p.start_ms AND i.ts_ms < p.end_ms) AS beats,                -- beats stored in the period, count
       (SELECT count(*) FROM interbeat_interval i
        WHERE i.ts_ms >= p.start_ms AND i.ts_ms < p.end_ms
          AND i.validity = 1 AND i.ibi < 2000) AS valid_beats,                       -- valid beats (validity 1, interval under 2,000 ms), count
       (SELECT round(CASE WHEN v = 0 THEN 0.0 ELSE g END, 1) FROM (SELECT v, (g + v / g) / 2 AS g FROM (SELECT v, (g + v / g) / 2 AS g FROM (SELECT v, (g + v / g) / 2 AS g FROM (SELECT v, (g + v / g) / 2 AS g FROM (SELECT v, (g + v / g) / 2 AS g FROM (SELECT v, (g + v / g) / 2 AS g FROM (SELECT v, CASE WHEN v < 100 THEN 5.0 WHEN v < 10000 THEN 50.0 ELSE 500.0 END AS g FROM (SELECT avg(b.diff * b.diff) AS v
        FROM (SELECT i.ibi - lag(i.ibi) OVER w AS diff,
                     (i.validity = 1 AND i.ibi < 2000) AS valid,
                     lag(i.validity = 1 AND i.ibi < 2000) OVER w AS prev_valid
              FROM interbeat_interval i
              WHERE i.ts_ms >= p.start_ms AND i.ts_ms < p.end_ms
              WINDOW w AS (ORDER BY i.ts_ms)) b
        WHERE b.valid AND b.prev_valid))))))))) AS rmssd_ms,                                 -- RMSSD of successive valid intervals, milliseconds
       (SELECT round(CASE WHEN v = 0 THEN 0.0 ELSE g END, 1) FROM (SELECT v, (g + v / g) / 2 AS g FROM (SELECT v, (g + v / g) / 2 AS g FROM (SELECT v, (g + v / g) / 2 AS g FROM (SELECT v, (g + v / g) / 2 AS g FROM (SELECT v, (g + v / g) / 2 AS g FROM (SELECT v, (g + v / g) / 2 AS g FROM (SELECT v, CASE WHEN v < 100 THEN 5.0 WHEN v < 10000 THEN 50.0 ELSE 500.0 END AS g FROM (SELECT max(avg(i.ibi * i.ibi) - avg(i.ibi) * avg(i.ibi), 0) AS v
        FROM interbeat_interval i
        WHERE i.ts_ms >= p.start_ms AND i.ts_ms < p.end_ms
          AND i.validity = 1 AND i.ibi < 2000))))))))) AS sdnn_ms,                           -- SDNN (population standard deviation of valid intervals), milliseconds
       p.average_hrv AS average_hrv                                                  -- Oura's average HRV (RMSSD) of the period, milliseconds
FROM (SELECT s.bedtime_start_ts AS time, s.day, s.id AS sleep_id, s.type, s.average_hrv,
             s.bedtime_start_ts * 1000 AS start_ms,
             CAST(strftime('%s', s.bedtime_end) AS INTEGER) * 1000 AS end_ms
      FROM sleep s
      WHERE s.bedtime_start_ts IS NOT NULL AND s.type IS NOT 'deleted') p;
