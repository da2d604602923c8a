-- ouradb schema: the request account shared by every process on this file.
--
-- Applied after the earlier versions by the same migration runner.
--
-- Oura counts a user's requests in any sliding 5-minute window. The daemon,
-- an `ouradb sync` started beside it and a process restarted after a crash
-- all spend the same quota, so every data request's send time is recorded
-- here and each process admits a request only when fewer than the usable
-- quota were sent in the last window. Rows older than the longest window
-- are pruned as new ones arrive, so the table stays at most one quota long.
-- The leading underscore marks bookkeeping that is not data: fingerprints
-- and dashboards skip it.
CREATE TABLE _request_log (
    sent_us INTEGER NOT NULL            -- microseconds since the Unix epoch
);
CREATE INDEX _request_log_sent ON _request_log (sent_us);
