-- ouradb schema step 14: a beat's `extra` moves to a table of its own.
--
-- Nearly every beat is restored by its typed columns alone, so `extra` was
-- NULL in almost every row, yet a NULL column still costs each row a byte
-- of its record header: about 1 byte of the 16 a beat takes. The few beats
-- that need their whole API row now keep it here, under the same key.

-- The whole API row as JSON of each beat that its typed columns cannot
-- restore (unknown fields, sub-millisecond or inconsistent times), under
-- the beat's key in interbeat_interval. A beat without a row here is
-- restored from its columns alone.
CREATE TABLE interbeat_interval_extra (
    beat INTEGER PRIMARY KEY, -- the beat's key in interbeat_interval: (account - 1) * 4398046511104 + ts_ms; not an Oura value
    extra TEXT NOT NULL, -- the whole API row of the beat, as JSON
    account INTEGER GENERATED ALWAYS AS ((beat >> 42) + 1) VIRTUAL, -- the ouradb account the row belongs to (account.id), from beat
    ts_ms INTEGER GENERATED ALWAYS AS (beat & 4398046511103) VIRTUAL -- beat time, unix milliseconds (UTC), from beat
);
INSERT INTO interbeat_interval_extra (beat, extra)
    SELECT beat, extra FROM interbeat_interval WHERE extra IS NOT NULL;
ALTER TABLE interbeat_interval DROP COLUMN extra;
