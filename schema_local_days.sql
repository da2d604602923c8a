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
    SELECT CAST(strftime('%s', day) AS INTEGER) - utc_offset AS t, utc_offset
    FROM local_day_offset
),
quarters AS (
    SELECT ts / 900 * 900 AS t, source, count(bpm) AS n, min(bpm) AS lo,
           max(bpm) AS hi, sum(bpm) AS total
    FROM heartrate
    GROUP BY ts / 900, source
),
timeline AS (
    SELECT t, utc_offset, NULL AS source, NULL AS n, NULL AS lo, NULL AS hi, NULL AS total FROM starts
    UNION ALL
    SELECT t, NULL, source, n, lo, hi, total FROM quarters
),
numbered AS (
    -- How many days have started by each row (a day's start before the
    -- quarters of the same instant): the rows of one day share the number.
    SELECT *, count(utc_offset) OVER (ORDER BY t, utc_offset IS NULL ROWS UNBOUNDED PRECEDING) AS started
    FROM timeline
),
placed AS (
    SELECT source, n, lo, hi, total,
           date(t + coalesce(max(utc_offset) OVER (PARTITION BY started),
                             (SELECT utc_offset FROM local_day_offset ORDER BY day LIMIT 1),
                             0), 'unixepoch') AS day
    FROM numbered
)
SELECT CAST(strftime('%s', p.day) AS INTEGER) AS time,                           -- the local day's midnight, unix seconds (UTC), like every day-keyed view
       p.day AS day,                                                             -- local day (YYYY-MM-DD)
       p.source AS source,                                                       -- what the ring was measuring in: awake, workout, rest, sleep, live, session
       sum(p.n) AS samples,                                                      -- samples with a value, count
       min(p.lo) AS min_bpm,                                                     -- lowest heart rate, beats per minute
       round(CAST(sum(p.total) AS REAL) / sum(p.n), 1) AS avg_bpm,               -- average heart rate, beats per minute
       max(p.hi) AS max_bpm                                                      -- highest heart rate, beats per minute
FROM placed p
WHERE p.source IS NOT NULL
GROUP BY p.day, p.source;
