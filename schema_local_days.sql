-- Local days in the dashboard views.
--
-- Oura's day is the person's local day, and every daily document says so
-- with the UTC offset of its `timestamp`. Time-series samples carry only
-- an instant (unix seconds), so per-day aggregates used to cut them at UTC
-- midnight: at +02:00 a sample at 23:30 UTC counted for the previous day.
-- The views below place each sample in the local day the documents of that
-- day describe. Names and columns stay, so dashboards keep working.

-- The person's UTC offset on each local day, read from the offset of the
-- day's daily_activity timestamp (else daily_readiness's, else
-- daily_sleep's): one row per day with any of those documents.
CREATE VIEW local_day_offset AS
WITH stamped AS (
    SELECT day, timestamp, 1 AS rank FROM daily_activity WHERE day IS NOT NULL AND timestamp IS NOT NULL
    UNION ALL SELECT day, timestamp, 2 FROM daily_readiness WHERE day IS NOT NULL AND timestamp IS NOT NULL
    UNION ALL SELECT day, timestamp, 3 FROM daily_sleep WHERE day IS NOT NULL AND timestamp IS NOT NULL
),
chosen AS (
    -- SQLite takes the bare `timestamp` from the row min(rank) picked.
    SELECT day, min(rank) AS rank, timestamp FROM stamped GROUP BY day
)
SELECT day AS day,                                                               -- local day (YYYY-MM-DD)
       CAST(strftime('%s', substr(timestamp, 1, 19)) AS INTEGER)
         - CAST(strftime('%s', timestamp) AS INTEGER) AS utc_offset              -- the day's UTC offset, seconds (+02:00 = 7200)
FROM chosen;

DROP VIEW heartrate_daily;

-- Heart rate per local day and source (awake, sleep, workout, ...): sample
-- count and minimum, average and maximum, for trend charts that would
-- otherwise read hundreds of thousands of samples. A sample's local day is
-- the one whose offset (local_day_offset) puts it inside that day, among the
-- UTC day before, of and after the sample; a sample with no such day uses
-- the offset of a neighbouring day, else UTC. Samples are first summed per
-- quarter hour (every UTC offset is a whole number of them), so the day is
-- looked up per quarter hour, not per sample. It aggregates the whole table
-- on every read: for a few days, query heartrate with a `ts` range instead.
CREATE VIEW heartrate_daily AS
WITH offsets AS MATERIALIZED (
    SELECT day, utc_offset FROM local_day_offset
),
quarters AS (
    SELECT ts / 900 * 900 AS t, source, count(bpm) AS n, min(bpm) AS lo,
           max(bpm) AS hi, sum(bpm) AS total
    FROM heartrate
    GROUP BY ts / 900, source
),
placed AS (
    SELECT q.*,
           CASE
               WHEN nx.day = date(q.t + nx.utc_offset, 'unixepoch') THEN nx.day
               WHEN cu.day = date(q.t + cu.utc_offset, 'unixepoch') THEN cu.day
               WHEN pv.day = date(q.t + pv.utc_offset, 'unixepoch') THEN pv.day
               ELSE date(q.t + coalesce(cu.utc_offset, pv.utc_offset, nx.utc_offset, 0), 'unixepoch')
           END AS day
    FROM quarters q
    LEFT JOIN offsets pv ON pv.day = date(q.t, 'unixepoch', '-1 day')
    LEFT JOIN offsets cu ON cu.day = date(q.t, 'unixepoch')
    LEFT JOIN offsets nx ON nx.day = date(q.t, 'unixepoch', '+1 day')
)
SELECT CAST(strftime('%s', p.day) AS INTEGER) AS time,                           -- the local day's midnight, unix seconds (UTC), like every day-keyed view
       p.day AS day,                                                             -- local day (YYYY-MM-DD)
       p.source AS source,                                                       -- what the ring was measuring in: awake, workout, rest, sleep, live, session
       sum(p.n) AS samples,                                                      -- samples with a value, count
       min(p.lo) AS min_bpm,                                                     -- lowest heart rate, beats per minute
       round(CAST(sum(p.total) AS REAL) / sum(p.n), 1) AS avg_bpm,               -- average heart rate, beats per minute
       max(p.hi) AS max_bpm                                                      -- highest heart rate, beats per minute
FROM placed p
GROUP BY p.day, p.source;
