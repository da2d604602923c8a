-- ouradb schema step "request account per token": whose request each row is.
--
-- Applied after the account views. Oura meters requests twice: per access
-- token and per application (every token of one OAuth client, or all
-- personal access tokens). Each `[[account]]` of a file is one token, so
-- counting every row against one quota held a household of several people
-- to one person's share. Each row now names the account that sent it: a
-- request leaves only when its account's rows in the last window are below
-- the token's quota and all rows together below the application's.
--
-- Rows already here were sent before accounts could share the log, by the
-- file's first (then only) account; they leave the window within minutes
-- anyway. No foreign key to `account`: the requests of an account removed
-- from the file were still sent, and still count in the application's
-- window until they leave it.
ALTER TABLE _request_log ADD COLUMN account INTEGER NOT NULL DEFAULT 1;
-- The token's count is one account's rows newer than the window's start:
-- a range of this index. The application's count and the pruning use the
-- existing index on sent_us alone.
CREATE INDEX _request_log_account_sent ON _request_log (account, sent_us);
