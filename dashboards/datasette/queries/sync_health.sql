-- title: Sync health
-- description: Each account's and data type's sync state: documents, how far it is synced, backfill, age of the last success (flagged stale past N hours, default 24) and the last error. Leave the account empty for every account.
-- example: stale_hours=6
-- example: account=SELECT name FROM account ORDER BY id LIMIT 1
SELECT (SELECT a.name FROM account a WHERE a.id = sync_state.account) AS account,
       data_type,
       CASE
           WHEN last_error_at IS NOT NULL AND (last_success IS NULL OR last_error_at > last_success) THEN 'failing'
           WHEN last_success IS NULL THEN 'never'
           WHEN (julianday('now') - julianday(last_success)) * 24 > coalesce(CAST(nullif(:stale_hours, '') AS REAL), 24) THEN 'stale'
           ELSE 'fresh'
       END AS state,
       documents,
       high_water AS synced_through,
       CASE WHEN backfill_complete THEN 'complete' ELSE 'down to ' || coalesce(backfill_floor, '-') END AS backfill,
       last_success,
       round((julianday('now') - julianday(last_success)) * 24, 1) AS hours_since_success,
       requests,
       next_run,
       last_error_kind,
       last_error,
       last_error_at
FROM sync_state
WHERE account IN (SELECT id FROM account WHERE coalesce(:account, '') IN ('', name))
ORDER BY sync_state.account, data_type
