-- ouradb schema step 15: a beat's interval and validity share one integer.
--
-- Each value of a record costs a header byte beside the value itself, and
-- a beat had two: `ibi` (2 bytes, up to 2,000 ms) and `validity` (0 bytes
-- for 0 or 1, else 1). As one integer, ibi * 8 + validity (at most 16,007,
-- still 2 bytes), a beat takes one header byte less: about 1 byte of the
-- 16 a beat takes (BENCHMARKS.md). `ibi` and `validity` become virtual
-- columns that read the packed value back, so every query and view keeps
-- working unchanged.
--
-- The table is rebuilt under its own name: the legacy rename leaves the
-- views naming `interbeat_interval`, so they read the new table. The
-- beats then move in key order a batch at a time, each batch deleted from
-- the old table as it goes (src/store/schema.rs, `move_beats`), so the
-- file grows by about a batch, not by a second copy of its largest table.
-- A beat
-- whose values do not pack (a validity outside 0..7, a value that is not
-- an integer or is missing) has ibi_validity NULL and keeps its whole row
-- in interbeat_interval_extra, as a beat with unknown fields does.

PRAGMA legacy_alter_table = ON;
ALTER TABLE interbeat_interval RENAME TO interbeat_interval_v14;

-- One row per beat, about 9 million a year: the largest table by far. Its
-- key packs the account and the time into one integer, the row's own
-- rowid (beat = (account - 1) * 2^42 + ts_ms), and the beat's two values
-- share one integer, so a beat costs about 15 bytes on disk with no index
-- beside the table (BENCHMARKS.md). account, ts_ms, ibi and validity are
-- computed, never stored; a range of one account's beats is a range of
-- `beat`. 2^42 ms reach to the year 2109; a beat outside 1970..2109 is
-- quarantined.
CREATE TABLE interbeat_interval (
    beat INTEGER PRIMARY KEY, -- the row's key: (account - 1) * 4398046511104 + ts_ms; not an Oura value
    ibi_validity INTEGER, -- ibi * 8 + validity, the beat's two values stored as one; NULL when they do not pack (the beat's whole row is then in interbeat_interval_extra)
    account INTEGER GENERATED ALWAYS AS ((beat >> 42) + 1) VIRTUAL, -- the ouradb account the row belongs to (account.id), from beat
    ts_ms INTEGER GENERATED ALWAYS AS (beat & 4398046511103) VIRTUAL, -- beat time, unix milliseconds (UTC), parsed from the API's `timestamp` (`timestamp_unix` is this value), from beat
    ibi INTEGER GENERATED ALWAYS AS (ibi_validity >> 3) VIRTUAL, -- interval since the previous beat, milliseconds (the API caps it at 2000), from ibi_validity
    validity INTEGER GENERATED ALWAYS AS (ibi_validity & 7) VIRTUAL -- the API's validity code: 1 = a valid beat; anything else marks an artifact or a beat after a gap; from ibi_validity
);

-- The beats move after this file (src/store/schema.rs, `move_beats`):
-- those whose values do not pack keep them in interbeat_interval_extra,
-- then every beat moves in key order, and interbeat_interval_v14 is
-- dropped and legacy_alter_table turned off again.
