-- ouradb schema, version 2 (PRAGMA user_version = 2): webhook bookkeeping.
--
-- Applied after schema.sql (version 1) by the same migration runner; the
-- conventions of schema.sql hold (times are RFC 3339 UTC text).

-- Subscriptions ouradb manages, as Oura last reported them. Rewritten each
-- time the daemon (or `ouradb webhook ...`) lists, creates or renews them;
-- `ouradb status` reads it without calling Oura.
CREATE TABLE webhook_subscription (
    id              TEXT PRIMARY KEY,   -- Oura's subscription id
    callback_url    TEXT NOT NULL,
    event_type      TEXT NOT NULL,      -- create | update | delete
    data_type       TEXT NOT NULL,      -- webhook data_type, e.g. 'vo2_max'
    expiration_time TEXT NOT NULL,
    checked_at      TEXT NOT NULL       -- when ouradb last saw it at Oura
);

-- Events the receiver accepted, kept for a week: `status` shows the last
-- one, and the signatures of recent ones reject replays after a restart.
CREATE TABLE webhook_event (
    signature    TEXT PRIMARY KEY,      -- x-oura-signature, upper-case hex
    received_at  TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    data_type    TEXT NOT NULL,
    object_id    TEXT NOT NULL,
    event_time   TEXT,                  -- as Oura sent it
    outcome      TEXT NOT NULL          -- stored | deleted | not_found | failed: ...
);
CREATE INDEX webhook_event_received ON webhook_event (received_at);
