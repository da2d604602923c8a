-- ouradb schema step "real accounts": quarantine, pending removals and the
-- columns ouradb added for fields outside the schema.
--
-- Applied after the earlier steps by the same migration runner; the
-- conventions of schema.sql hold (times are RFC 3339 UTC text). Documents
-- served without an `id` are stored under a made-up id, 'key:' followed by
-- their natural key's values separated by '|' (e.g. 'key:2024-03-16' for a
-- daily document); see the registry's `natural_key` for each type.

-- Documents the API sent that ouradb could not key or store (no id and no
-- natural key, no readable day, a value SQLite refuses, ...). The rest of
-- their page is stored as usual; a later good copy with the same doc_key
-- takes the entry out of here.
CREATE TABLE quarantine (
    data_type  TEXT NOT NULL,  -- ouradb data type name, e.g. 'daily_cardiovascular_age'
    doc_key    TEXT NOT NULL,  -- the document's id, else its natural-key id ('key:...'), else 'sha256:' of raw_json
    reason     TEXT NOT NULL,  -- why it could not be stored, e.g. 'no id, and no day to key it by'
    raw_json   TEXT NOT NULL,  -- the document as received, JSON
    first_seen TEXT NOT NULL,  -- RFC 3339 UTC time ouradb first received it
    last_seen  TEXT NOT NULL,  -- RFC 3339 UTC time ouradb last received it
    PRIMARY KEY (data_type, doc_key)
);

-- Stored documents missing from a complete re-fetch of their window, for
-- types whose documents vanish when deleted (tags). A document is removed
-- only when it is still missing from a complete fetch at least 24 hours
-- after first_missed; it leaves this table when the API serves it again.
-- Until then it stays in its table and every view, like any other.
CREATE TABLE pending_removal (
    data_type    TEXT NOT NULL,  -- ouradb data type name
    doc_id       TEXT NOT NULL,  -- id of the stored document (its table's id column)
    first_missed TEXT NOT NULL,  -- RFC 3339 UTC time a complete fetch first lacked it
    PRIMARY KEY (data_type, doc_id)
);

-- Columns ouradb added to a document table because the API sent a scalar
-- field the table had no column for (typed like sqlite-utils: INTEGER for
-- integers and booleans, REAL for other numbers, TEXT for strings) and
-- filled from raw_json. A later schema step that adds the column itself
-- deletes its row here.
CREATE TABLE added_column (
    table_name  TEXT NOT NULL,  -- table that got the column, e.g. 'daily_cardiovascular_age'
    column_name TEXT NOT NULL,  -- column name: the JSON field, flattened objects as '<object>_<field>'
    sql_type    TEXT NOT NULL,  -- INTEGER, REAL or TEXT
    json_path   TEXT NOT NULL,  -- where the value sits in raw_json, e.g. '$.timestamp'
    first_seen  TEXT NOT NULL,  -- RFC 3339 UTC time ouradb first received the field and added the column
    PRIMARY KEY (table_name, column_name)
);
