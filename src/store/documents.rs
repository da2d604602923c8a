//! Document upserts: the SQL that writes what the keying decided, their
//! child rows, the history of replaced daily documents and the deletion
//! rule for documents that vanish.

use std::borrow::Cow;

use jiff::Timestamp;
use rusqlite::types::Value as Sql;
use rusqlite::{Connection, OptionalExtension, params};

use super::keying::{Fate, Keys};
use super::quarantine::{QuarantineLog, has_quarantined, quarantine, unquarantine};
use super::{REMOVE_AFTER, StoreError, Vanished, WriteCounts, mapping, text_time};
use crate::registry::{DataType, Vanishing};

pub(super) fn clear_pending(tx: &Connection, dt: &DataType, id: &str) -> Result<(), StoreError> {
    if dt.vanishing == Vanishing::Deletes {
        tx.prepare_cached(
            "DELETE FROM pending_removal WHERE account = ouradb_account() AND data_type = ?1 AND doc_id = ?2",
        )?
            .execute(params![dt.name, id])?;
    }
    Ok(())
}

/// Whether a failed statement was refused because of the document's
/// content (so it belongs in quarantine) rather than the database's state.
pub(super) fn refused_content(e: &rusqlite::Error) -> bool {
    use rusqlite::ErrorCode as C;
    matches!(
        e.sqlite_error_code(),
        Some(C::ConstraintViolation | C::TypeMismatch | C::TooBig)
    ) || matches!(e, rusqlite::Error::ToSqlConversionFailure(_))
}

/// The stored row a document is (or replaces): by its id; for a document
/// with an id that is not stored yet, the row its id-less copy made, else
/// (for a one-per-day type) the row of another id for its day, which it
/// replaces (see [`replace_daily`]); for a document without an id, the row
/// of its natural key, whatever its id. `replace_at` is the time of the
/// page, `None` for a deletion (which never takes over another document's
/// row). Returns (pk, raw_json, stored id); the pk is `None` for tables
/// without sample rows.
pub(super) fn resolve(
    tx: &Connection,
    t: &mapping::DocTable,
    dt: &DataType,
    id: Option<&str>,
    synthetic: Option<&str>,
    doc: &serde_json::Value,
    replace_at: Option<&str>,
) -> Result<Option<(Option<i64>, String, String)>, StoreError> {
    let mut by_id = tx.prepare_cached(&t.sql_select_key_raw)?;
    if let Some(id) = id
        && let Some((pk, raw)) = by_id
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?
    {
        return Ok(Some((pk, raw, id.to_owned())));
    }
    if let Some(s) = synthetic
        && let Some((pk, raw)) = by_id
            .query_row([s], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?
    {
        // The id-less copy's row becomes the document's: same pk, so
        // its sample rows stay attached until the update replaces them.
        return Ok(Some(match id {
            Some(id) => {
                tx.prepare_cached(&t.sql_rekey)?.execute(params![s, id])?;
                clear_pending(tx, dt, s)?;
                (pk, raw, id.to_owned())
            }
            None => (pk, raw, s.to_owned()),
        }));
    }
    if (id.is_none() || (dt.one_per_day() && replace_at.is_some()))
        && let Some(sql) = &t.sql_select_by_natural_key
        && let Some(values) = dt.natural_key_values(doc)
    {
        let values = match dt.natural_key {
            crate::registry::NaturalKey::Single => Vec::new(),
            _ => values,
        };
        let found: Option<(Option<i64>, String, String)> = tx
            .prepare_cached(sql)?
            .query_row(rusqlite::params_from_iter(values.iter()), |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        return match (found, id, replace_at) {
            (Some((pk, raw, old)), Some(id), Some(at)) => {
                replace_daily(tx, t, dt, &old, &values.join("|"), &raw, id, at)?;
                Ok(Some((pk, raw, id.to_owned())))
            }
            (found, _, _) => Ok(found),
        };
    }
    Ok(None)
}

/// A one-per-day document with a new id arrived for a day stored under
/// `old`: the arrival is newer (a later fetch than the one that stored
/// `old`), so it takes over the row. The old document's JSON goes to
/// `document_history`; the caller's update then rewrites the columns and
/// replaces the child rows, all in the page's transaction.
#[allow(clippy::too_many_arguments)]
pub(super) fn replace_daily(
    tx: &Connection,
    t: &mapping::DocTable,
    dt: &DataType,
    old: &str,
    day: &str,
    raw: &str,
    id: &str,
    at: &str,
) -> Result<(), StoreError> {
    keep_in_history(tx, dt, old, day, raw, at, id)?;
    tx.prepare_cached(&t.sql_rekey)?.execute(params![old, id])?;
    clear_pending(tx, dt, old)?;
    Ok(())
}

/// Document upserts: a document is written only when its canonical JSON
/// differs from what is stored; its child rows only then too. A document
/// without an id is stored under its natural key; one that cannot be keyed
/// or stored is quarantined and the rest of the page goes on.
pub(super) fn upsert_documents(
    tx: &Connection,
    dt: &DataType,
    t: &mapping::DocTable,
    docs: &[(&serde_json::Value, Cow<'_, str>)],
    fates: Vec<Fate<'_>>,
    at: &str,
    log: &mut QuarantineLog,
) -> Result<WriteCounts, StoreError> {
    let mut counts = WriteCounts::default();
    let mut insert = tx.prepare_cached(&t.sql_insert)?;
    let mut update = tx.prepare_cached(&t.sql_update)?;
    let mut touch = tx.prepare_cached(&t.sql_touch)?;
    let mut delete = tx.prepare_cached(&t.sql_delete)?;
    let mut children = t
        .children
        .iter()
        .map(|c| ChildStatements::prepare(tx, c))
        .collect::<Result<Vec<_>, StoreError>>()?;
    let quarantined_before = has_quarantined(tx, dt)?;
    let pending_before = dt.vanishing == Vanishing::Deletes
        && tx
            .prepare_cached(
                "SELECT 1 FROM pending_removal WHERE account = ouradb_account() AND data_type = ?1 LIMIT 1",
            )?
            .exists([dt.name])?;
    // Written after the page's stored documents, so that the copy this
    // page brought is the one history keeps.
    let mut superseded = Vec::new();
    for ((doc, text), fate) in docs.iter().zip(fates) {
        let doc = *doc;
        let keys = match fate {
            Fate::Skip => continue,
            Fate::Quarantine { key, reason } => {
                quarantine(tx, dt, key.as_deref(), text.as_bytes(), &reason, at, log)?;
                counts.quarantined += 1;
                continue;
            }
            Fate::Superseded { id, day, by } => {
                superseded.push((text, id, day, by));
                continue;
            }
            Fate::Delete(k) => {
                let stored = resolve(tx, t, dt, k.id, k.synthetic.as_deref(), doc, None)?;
                match stored {
                    Some((_, _, stored_id)) if delete.execute([&stored_id])? > 0 => {
                        counts.deleted += 1;
                        clear_pending(tx, dt, &stored_id)?;
                    }
                    _ => counts.unchanged += 1,
                }
                continue;
            }
            Fate::Store(k) => k,
        };
        let Keys {
            id,
            synthetic,
            key,
            day,
        } = keys;
        let stored = resolve(tx, t, dt, id, synthetic.as_deref(), doc, Some(at))?;
        let stored_id = stored.as_ref().map_or(key, |(_, _, i)| i.clone());
        if quarantined_before {
            unquarantine(tx, dt, &[Some(&stored_id), id, synthetic.as_deref()])?;
        }
        if pending_before {
            clear_pending(tx, dt, &stored_id)?;
        }
        // The document's text as received (see `Documents`).
        let raw = text.as_ref();
        if stored.as_ref().map(|(_, s, _)| s.as_str()) == Some(raw) {
            touch.execute(params![stored_id, at])?;
            counts.unchanged += 1;
            continue;
        }
        let mut values = mapping::column_values(&t.columns, doc);
        values[0] = Sql::Text(stored_id.clone());
        if let (Some(i), Some(d)) = (t.day_column, day) {
            values[i] = Sql::Text(d.to_string());
        }
        values.push(Sql::Text(raw.to_owned()));
        values.push(Sql::Text(at.to_owned()));
        // The pk stays the same through an update, so sample rows keyed
        // by it only need replacing.
        let written = if let Some((pk, _, _)) = stored {
            update
                .execute(rusqlite::params_from_iter(values.iter()))
                .map(|_| pk)
        } else {
            insert.query_row(rusqlite::params_from_iter(values.iter()), |r| {
                r.get::<_, Option<i64>>(0)
            })
        };
        let pk = match written {
            Ok(pk) => pk,
            Err(e) if refused_content(&e) => {
                quarantine(
                    tx,
                    dt,
                    Some(&stored_id),
                    text.as_bytes(),
                    &format!("SQLite refused it: {e}"),
                    at,
                    log,
                )?;
                counts.quarantined += 1;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if stored.is_some() {
            counts.updated += 1;
        } else {
            counts.inserted += 1;
        }
        if let Some(pk) = pk {
            for c in &mut children {
                c.write(pk, doc, stored.is_some())?;
            }
        }
    }
    // Seen and kept (in history), not written to the table: unchanged.
    for (text, id, day, by) in superseded {
        keep_in_history(tx, dt, id, &day.to_string(), text, at, &by)?;
        counts.unchanged += 1;
    }
    Ok(counts)
}

/// The prepared statements of one sample table for a page.
pub(super) struct ChildStatements<'c> {
    pub(super) child: &'c mapping::Child,
    single: rusqlite::CachedStatement<'c>,
    batch: rusqlite::CachedStatement<'c>,
    clear: rusqlite::CachedStatement<'c>,
}

impl<'c> ChildStatements<'c> {
    pub(super) fn prepare(
        tx: &'c Connection,
        child: &'c mapping::Child,
    ) -> Result<Self, StoreError> {
        Ok(ChildStatements {
            child,
            single: tx.prepare_cached(&child.sql_insert)?,
            batch: tx.prepare_cached(&child.sql_insert_batch)?,
            clear: tx.prepare_cached(&child.sql_clear)?,
        })
    }

    /// Writes the sample rows of `doc` for its document `pk`, replacing
    /// the rows it had when `replace`.
    pub(super) fn write(
        &mut self,
        pk: i64,
        doc: &serde_json::Value,
        replace: bool,
    ) -> Result<(), StoreError> {
        if replace {
            self.clear.execute([pk])?;
        }
        let rows = mapping::child_rows(self.child, doc);
        let mut chunks = rows.chunks_exact(mapping::CHILD_BATCH);
        for chunk in &mut chunks {
            for (i, (offset, ts, value)) in chunk.iter().enumerate() {
                let p = i * 4;
                self.batch.raw_bind_parameter(p + 1, pk)?;
                self.batch.raw_bind_parameter(p + 2, offset)?;
                self.batch.raw_bind_parameter(p + 3, ts)?;
                self.batch.raw_bind_parameter(p + 4, value)?;
            }
            self.batch.raw_execute()?;
        }
        for (offset, ts, value) in chunks.remainder() {
            self.single.execute(params![pk, offset, ts, value])?;
        }
        Ok(())
    }
}

/// Keeps the JSON of a one-per-day document another one replaced (the
/// latest copy per id).
pub(super) fn keep_in_history(
    tx: &Connection,
    dt: &DataType,
    id: &str,
    day: &str,
    raw: &str,
    at: &str,
    by: &str,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO document_history (account, data_type, id, day, raw_json, replaced_at, replaced_by)
         VALUES (ouradb_account(), ?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (account, data_type, id) DO UPDATE SET
            day = excluded.day, raw_json = excluded.raw_json,
            replaced_at = excluded.replaced_at, replaced_by = excluded.replaced_by",
    )?
    .execute(params![dt.name, id, day, raw, at, by])?;
    Ok(())
}

/// The deletion rule for documents missing from a complete re-fetch (see
/// [`Vanished`]); returns how many were removed.
pub(super) fn apply_vanished(
    tx: &Connection,
    dt: &DataType,
    t: &mapping::DocTable,
    v: &Vanished<'_>,
    now: Timestamp,
) -> Result<u64, StoreError> {
    if dt.vanishing != Vanishing::Deletes || !v.complete {
        return Ok(0);
    }
    let mut select = tx.prepare_cached(&t.sql_ids_in_range)?;
    let (first, last) = (v.first_day.to_string(), v.last_day.to_string());
    let read = |r: &rusqlite::Row<'_>| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?));
    let stored: Vec<(String, String)> = if select.parameter_count() == 2 {
        select
            .query_map([first, last], read)?
            .collect::<Result<_, _>>()?
    } else {
        select.query_map([], read)?.collect::<Result<_, _>>()?
    };
    if stored.is_empty() {
        return Ok(0);
    }
    if v.seen_ids.is_empty() {
        tracing::warn!(
            data_type = dt.name,
            from = %v.first_day,
            to = %v.last_day,
            stored = stored.len(),
            "the API returned no documents for a window that holds some; keeping them (an outage is no proof of deletion)"
        );
        return Ok(0);
    }
    let missing = stored.into_iter().filter(|(id, raw)| {
        // A document stored with its Oura id may come back without one.
        !v.seen_ids.contains(id)
            && !serde_json::from_str::<serde_json::Value>(raw)
                .ok()
                .and_then(|doc| dt.synthetic_id(&doc))
                .is_some_and(|s| v.seen_ids.contains(&s))
    });
    let mut first_missed = tx.prepare_cached(
        "SELECT first_missed FROM pending_removal
         WHERE account = ouradb_account() AND data_type = ?1 AND doc_id = ?2",
    )?;
    let mut record = tx.prepare_cached(
        "INSERT OR REPLACE INTO pending_removal (account, data_type, doc_id, first_missed)
         VALUES (ouradb_account(), ?1, ?2, ?3)",
    )?;
    let mut delete = tx.prepare_cached(&t.sql_delete)?;
    let mut deleted = 0;
    for (id, _) in missing {
        let since: Option<String> = first_missed
            .query_row(params![dt.name, id], |r| r.get(0))
            .optional()?;
        match since.and_then(|s| s.parse::<Timestamp>().ok()) {
            Some(since) if now.duration_since(since) >= REMOVE_AFTER => {
                deleted += delete.execute([&id])? as u64;
                clear_pending(tx, dt, &id)?;
            }
            Some(_) => {}
            None => {
                record.execute(params![dt.name, id, text_time(now)])?;
            }
        }
    }
    Ok(deleted)
}
