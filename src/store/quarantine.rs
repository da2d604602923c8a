//! Quarantine: documents and rows that cannot be stored, kept aside with
//! their reason (and bytes), never dropped, never blocking their page.

use std::borrow::Cow;

use rusqlite::{Connection, params};
use sha2::{Digest, Sha256};

use super::StoreError;
use crate::registry::DataType;
use crate::rows::Undecodable;

/// What a page put in quarantine, for its one log line.
#[derive(Debug, Default)]
pub(super) struct QuarantineLog {
    /// The first few distinct reasons.
    pub(super) reasons: Vec<String>,
    /// Whether an entry was keyed by its content (see [`MAX_UNKEYED_QUARANTINE`]).
    pub(super) unkeyed: bool,
}

impl QuarantineLog {
    const REASONS: usize = 3;

    pub(super) fn note(&mut self, reason: &str) {
        if self.reasons.len() < Self::REASONS && !self.reasons.iter().any(|r| r == reason) {
            self.reasons.push(reason.to_owned());
        }
    }

    /// One line for the page: how many and why (server text stripped of
    /// control characters).
    pub(super) fn report(&self, dt: &DataType, count: u64) {
        if count == 0 {
            return;
        }
        let reasons: Vec<String> = self
            .reasons
            .iter()
            .map(|r| r.chars().filter(|c| !c.is_control()).collect())
            .collect();
        tracing::warn!(
            data_type = dt.name,
            quarantined = count,
            reasons = reasons.join("; "),
            "documents quarantined (kept in the quarantine table; `ouradb status` lists them)"
        );
    }
}

/// Entries per data type of documents with no identity at all (no id, no
/// natural key: keyed by a hash of their content), or the latest page's
/// when it alone has more (a page is always kept whole). Such a document
/// cannot be told apart from another one, so a server that changes it on
/// every fetch would otherwise add an entry per document and run; beyond
/// this many, the entries received longest ago go (the server sent a newer
/// copy since, or stopped sending them), with a warning.
pub(super) const MAX_UNKEYED_QUARANTINE: i64 = 1_000;

/// The key an undecodable document is quarantined under: what its
/// readable fields identify (a time-series row by its timestamp), so a
/// later good copy takes it out; `None` when they identify nothing.
pub(super) fn undecodable_key(dt: &DataType, u: &Undecodable) -> Option<String> {
    if dt.is_time_series() {
        let ts = u.readable.get("timestamp")?.as_str()?;
        return Some(format!("timestamp:{ts}"));
    }
    dt.document_key(&u.readable)
}

/// Puts a document that cannot be stored into `quarantine` (or refreshes
/// its entry), keyed so a later good copy can take it out again and a
/// later copy replaces it: by its id, else its natural key, else (nothing
/// identifies it) a hash of its bytes. `raw` is the document as received:
/// `raw_json` holds it, and `raw_bytes` too when it is not UTF-8 text
/// (`raw_json` then has U+FFFD for each bad byte).
pub(super) fn quarantine(
    tx: &Connection,
    dt: &DataType,
    key: Option<&str>,
    raw: &[u8],
    reason: &str,
    at: &str,
    log: &mut QuarantineLog,
) -> Result<(), StoreError> {
    let (text, bytes) = match std::str::from_utf8(raw) {
        Ok(text) => (Cow::Borrowed(text), None),
        Err(_) => (String::from_utf8_lossy(raw), Some(raw)),
    };
    let key = match key {
        Some(k) => k.to_owned(),
        None => {
            log.unkeyed = true;
            format!("{UNKEYED_PREFIX}{}", hex::encode(Sha256::digest(raw)))
        }
    };
    log.note(reason);
    tx.prepare_cached(
        "INSERT INTO quarantine (account, data_type, doc_key, reason, raw_json, raw_bytes, first_seen, last_seen)
         VALUES (ouradb_account(), ?1, ?2, ?3, ?4, ?5, ?6, ?6)
         ON CONFLICT (account, data_type, doc_key) DO UPDATE SET
            reason = excluded.reason, raw_json = excluded.raw_json,
            raw_bytes = excluded.raw_bytes, last_seen = excluded.last_seen",
    )?
    .execute(params![dt.name, key, reason, text, bytes, at])?;
    Ok(())
}

/// `doc_key` prefix of quarantined documents keyed by their content.
pub(super) const UNKEYED_PREFIX: &str = "sha256:";

/// Keeps the content-keyed entries of `dt` within [`MAX_UNKEYED_QUARANTINE`],
/// never dropping those of the page written at `at`.
pub(super) fn bound_unkeyed_quarantine(
    tx: &Connection,
    dt: &DataType,
    at: &str,
) -> Result<(), StoreError> {
    let current: i64 = tx
        .prepare_cached(
            "SELECT COUNT(*) FROM quarantine
             WHERE account = ouradb_account() AND data_type = ?1
               AND substr(doc_key, 1, 7) = ?2 AND last_seen = ?3",
        )?
        .query_row(params![dt.name, UNKEYED_PREFIX, at], |r| r.get(0))?;
    let evicted = tx
        .prepare_cached(
            "DELETE FROM quarantine WHERE account = ouradb_account() AND data_type = ?1 AND doc_key IN (
                SELECT doc_key FROM quarantine
                WHERE account = ouradb_account() AND data_type = ?1
                  AND substr(doc_key, 1, 7) = ?2 AND last_seen <> ?3
                ORDER BY last_seen DESC, doc_key LIMIT -1 OFFSET ?4)",
        )?
        .execute(params![
            dt.name,
            UNKEYED_PREFIX,
            at,
            (MAX_UNKEYED_QUARANTINE - current).max(0)
        ])?;
    if evicted > 0 {
        tracing::warn!(
            data_type = dt.name,
            evicted,
            "quarantine keeps at most {MAX_UNKEYED_QUARANTINE} documents without id or key per type (or the latest page's); dropped the ones received longest ago"
        );
    }
    Ok(())
}

/// Whether the type has quarantined documents (checked once per page, so
/// the per-document clean-up costs nothing in the usual case).
pub(super) fn has_quarantined(tx: &Connection, dt: &DataType) -> Result<bool, StoreError> {
    Ok(tx
        .prepare_cached(
            "SELECT 1 FROM quarantine WHERE account = ouradb_account() AND data_type = ?1 LIMIT 1",
        )?
        .exists([dt.name])?)
}

pub(super) fn unquarantine(
    tx: &Connection,
    dt: &DataType,
    keys: &[Option<&str>],
) -> Result<(), StoreError> {
    let mut stmt =
        tx.prepare_cached(
            "DELETE FROM quarantine WHERE account = ouradb_account() AND data_type = ?1 AND doc_key = ?2",
        )?;
    for k in keys.iter().flatten() {
        stmt.execute(params![dt.name, k])?;
    }
    Ok(())
}
