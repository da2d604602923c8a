//! Time-series rows: batched inserts, updates only where a row already
//! existed, and the side table of a packed table's `extra`.

use std::borrow::Cow;

use rusqlite::types::Value as Sql;
use rusqlite::{Connection, params};

use super::quarantine::{QuarantineLog, has_quarantined, quarantine};
use super::{StoreError, WriteCounts, mapping};
use crate::registry::DataType;
use crate::rows::{Field, RawRows};

pub(super) fn upsert_series(
    tx: &Connection,
    dt: &DataType,
    t: &mapping::SeriesTable,
    rows: &[(&serde_json::Value, Cow<'_, str>)],
    raw_rows: &RawRows,
    at: &str,
    log: &mut QuarantineLog,
) -> Result<WriteCounts, StoreError> {
    let mut counts = WriteCounts::default();
    let mut stmts = SeriesStatements::prepare(tx, t)?;
    let width = t.columns.len();
    // The column values of up to one batch of good rows, borrowed from the
    // page and bound straight into the statements.
    let mut values = Vec::with_capacity(width * mapping::SERIES_BATCH);
    // A row that cannot be stored goes to quarantine; the page goes on.
    let mut quarantine_row = |row: &serde_json::Value,
                              text: &str,
                              reason: String,
                              counts: &mut WriteCounts|
     -> Result<(), StoreError> {
        let key = row
            .get("timestamp")
            .and_then(serde_json::Value::as_str)
            .map(|ts| format!("timestamp:{ts}"));
        let reason = reason
            .strip_prefix(&format!("{}: ", dt.name))
            .unwrap_or(&reason)
            .to_owned();
        quarantine(tx, dt, key.as_deref(), text.as_bytes(), &reason, at, log)?;
        counts.quarantined += 1;
        Ok(())
    };
    // With rows in quarantine, the timestamps of the rows stored: a good
    // copy of a quarantined row replaces it (read as the rows go, so the
    // page's rows are never parsed into `Value`s for it).
    let mut stored_ts = has_quarantined(tx, dt)?.then(Vec::new);
    for (row, text) in rows {
        match mapping::series_values_into(t, dt, row, &mut values) {
            Ok(()) => {
                if let (Some(s), Some(ts)) = (&mut stored_ts, row.get("timestamp")) {
                    s.extend(ts.as_str().map(str::to_owned));
                }
                if values.len() == width * mapping::SERIES_BATCH {
                    stmts.flush(t, &mut values, &mut counts)?;
                }
            }
            Err(StoreError::Invalid(reason)) => quarantine_row(row, text, reason, &mut counts)?,
            Err(e) => return Err(e),
        }
    }
    for raw in raw_rows.iter() {
        if !mapping::series_values_raw(t, &raw, &mut values) {
            // Anything but a plain row takes the general path, as a `Value`.
            let row: serde_json::Value = serde_json::from_str(raw.text)
                .map_err(|e| StoreError::Invalid(format!("{}: a row is not JSON: {e}", dt.name)))?;
            match mapping::series_values(t, dt, &row) {
                Ok(v) => {
                    values.extend(v.into_iter().map(rusqlite::types::ToSqlOutput::Owned));
                    if let (Some(s), Some(ts)) = (&mut stored_ts, row.get("timestamp")) {
                        s.extend(ts.as_str().map(str::to_owned));
                    }
                }
                Err(StoreError::Invalid(reason)) => {
                    quarantine_row(&row, raw.text, reason, &mut counts)?;
                    continue;
                }
                Err(e) => return Err(e),
            }
        } else if let (Some(s), Some(Field::Text(ts))) = (&mut stored_ts, raw.get("timestamp")) {
            s.push(ts.to_owned());
        }
        if values.len() == width * mapping::SERIES_BATCH {
            stmts.flush(t, &mut values, &mut counts)?;
        }
    }
    stmts.flush(t, &mut values, &mut counts)?;
    if let Some(stored_ts) = stored_ts {
        let mut stmt =
            tx.prepare_cached(
            "DELETE FROM quarantine WHERE account = ouradb_account() AND data_type = ?1 AND doc_key = ?2",
        )?;
        for ts in stored_ts {
            stmt.execute(params![dt.name, format!("timestamp:{ts}")])?;
        }
    }
    Ok(counts)
}

/// The statements one page of a time series is written with.
pub(super) struct SeriesStatements<'c> {
    insert: rusqlite::CachedStatement<'c>,
    update: rusqlite::CachedStatement<'c>,
    batch: rusqlite::CachedStatement<'c>,
    /// A packed table's side table: upsert and clear of a row's `extra`.
    side: Option<(rusqlite::CachedStatement<'c>, rusqlite::CachedStatement<'c>)>,
}

pub(super) type SeriesValue<'a> = rusqlite::types::ToSqlOutput<'a>;

impl<'c> SeriesStatements<'c> {
    pub(super) fn prepare(
        tx: &'c Connection,
        t: &mapping::SeriesTable,
    ) -> Result<Self, StoreError> {
        let side = match &t.side {
            Some(s) => Some((
                tx.prepare_cached(&s.sql_upsert)?,
                tx.prepare_cached(&s.sql_clear)?,
            )),
            None => None,
        };
        Ok(SeriesStatements {
            insert: tx.prepare_cached(&t.sql_insert)?,
            update: tx.prepare_cached(&t.sql_update)?,
            batch: tx.prepare_cached(&t.sql_insert_batch)?,
            side,
        })
    }

    /// Writes the rows whose values `values` holds (`t.columns` each) and
    /// empties it. New rows go in with one statement per batch;
    /// `changes()` says how many were new. Only when some already existed
    /// is each row of the batch offered as an update, which rewrites only
    /// rows that differ (the freshly inserted ones never do).
    pub(super) fn flush(
        &mut self,
        t: &mapping::SeriesTable,
        values: &mut Vec<SeriesValue<'_>>,
        counts: &mut WriteCounts,
    ) -> Result<(), StoreError> {
        let width = t.columns.len();
        let n = values.len() / width;
        if n == 0 {
            return Ok(());
        }
        let inserted = self.insert(t, values)?;
        counts.inserted += inserted as u64;
        let some_existed = inserted < n;
        if some_existed {
            let mut updated = 0;
            for row in values.chunks_exact(width) {
                for (i, v) in row.iter().enumerate() {
                    self.update.raw_bind_parameter(i + 1, v)?;
                }
                updated += self.update.raw_execute()?;
            }
            counts.updated += updated as u64;
            counts.unchanged += (n - inserted - updated) as u64;
        }
        if let (Some(side), Some(stmts)) = (&t.side, &mut self.side) {
            write_side_extras(side, stmts, values, width, some_existed)?;
        }
        values.clear();
        Ok(())
    }

    /// Inserts the rows of `values` that are new (their leading
    /// `t.insert_width()` values); returns how many were.
    pub(super) fn insert(
        &mut self,
        t: &mapping::SeriesTable,
        values: &[SeriesValue<'_>],
    ) -> Result<usize, StoreError> {
        let (width, bound) = (t.columns.len(), t.insert_width());
        if values.len() == width * mapping::SERIES_BATCH {
            for (r, row) in values.chunks_exact(width).enumerate() {
                for (i, v) in row[..bound].iter().enumerate() {
                    self.batch.raw_bind_parameter(r * bound + i + 1, v)?;
                }
            }
            return Ok(self.batch.raw_execute()?);
        }
        let mut inserted = 0;
        for row in values.chunks_exact(width) {
            for (i, v) in row[..bound].iter().enumerate() {
                self.insert.raw_bind_parameter(i + 1, v)?;
            }
            inserted += self.insert.raw_execute()?;
        }
        Ok(inserted)
    }
}

/// Writes the `extra` (each row's last value) of the rows just stored to
/// a packed table's side table: inserted or rewritten where the row has
/// one, deleted where it has none and the row may have had one before
/// (`some_existed`: a freshly inserted row never has).
pub(super) fn write_side_extras(
    side: &mapping::SideExtra,
    (upsert, clear): &mut (rusqlite::CachedStatement<'_>, rusqlite::CachedStatement<'_>),
    values: &[SeriesValue<'_>],
    width: usize,
    some_existed: bool,
) -> Result<(), StoreError> {
    use rusqlite::types::{ToSqlOutput, ValueRef};
    for row in values.chunks_exact(width) {
        let key = &row[side.key];
        match &row[width - 1] {
            ToSqlOutput::Borrowed(ValueRef::Null) | ToSqlOutput::Owned(Sql::Null) => {
                if some_existed {
                    clear.raw_bind_parameter(1, key)?;
                    clear.raw_execute()?;
                }
            }
            extra => {
                upsert.raw_bind_parameter(1, key)?;
                upsert.raw_bind_parameter(2, extra)?;
                upsert.raw_execute()?;
            }
        }
    }
    Ok(())
}
