//! SQLite storage: schema and migrations, document upserts, per-type cursors.
//!
//! Invariant: only this module runs SQL. Every write that stores documents
//! also advances the cursor covering them, in the same transaction.
//!
//! Layout (see schema.sql for every column): one table per data type named by
//! the registry's `table`; document tables keyed by `id` with typed columns,
//! `raw_json` and first/last seen/changed times; sample arrays and interval
//! strings as child tables; time series as narrow tables keyed by `ts`.
//! Times ouradb writes itself are RFC 3339 UTC text (jiff's `Timestamp`
//! display, so they parse back to the same instant).
//!
//! Deletion semantics: deleted documents are removed, never flagged.

mod accounts;
mod backup;
mod documents;
pub mod error;
mod front;
mod handle;
mod keying;
mod mapping;
pub mod memory;
mod quarantine;
mod request_log;
mod schema;
mod series;
#[cfg(test)]
mod tests;
mod typed_columns;
mod webhook;

use documents::{
    ChildStatements, apply_vanished, clear_pending, keep_in_history, upsert_documents,
};
use keying::plan_page;
use quarantine::{QuarantineLog, bound_unkeyed_quarantine, quarantine, undecodable_key};
use series::upsert_series;

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::path::Path;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use jiff::Timestamp;
use jiff::civil::Date;

use crate::error_kind::ErrorKind;
use crate::registry::{DataType, SYNTHETIC_ID_PREFIX};
use crate::rows::{Document, RawRows, Undecodable};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error(
        "database {path} has schema version {found}, newer than this ouradb supports ({supported}); upgrade ouradb or point storage.database at another file"
    )]
    TooNew {
        path: String,
        found: i64,
        supported: i64,
    },
    #[error("cannot open database {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("database {path} does not exist yet; run `ouradb sync` or start the daemon first")]
    Missing { path: String },
    /// The database's tables do not match what the registry expects.
    #[error(
        "database schema mismatch: {0}; the file was written by an incompatible ouradb build: move it aside and run `ouradb sync` to rebuild it"
    )]
    Schema(String),
    /// A document or row the API sent cannot be stored (e.g. no `id`).
    #[error("cannot store document: {0}")]
    Invalid(String),
    /// Opening or checking the file failed; the message names the path
    /// once and says what to do.
    #[error(transparent)]
    File(#[from] error::FileError),
    /// The file is not ouradb's; nothing was written to it.
    #[error(transparent)]
    Refused(#[from] error::Refusal),
    /// A table rebuilt by a migration did not hold the same rows as before;
    /// the migration rolled back and the file is unchanged.
    #[error(
        "the upgrade to schema {} was rolled back: table {table} held {} rows (fingerprint {}) before and {} rows (fingerprint {}) after the copy; the file is unchanged and the previous ouradb release still opens it. Run `ouradb check` on it: if it finds no damage, this release's migration is at fault, so keep the file and stay on the previous release",
        schema::SCHEMA_VERSION, before.0, &before.1[..12], after.0, &after.1[..12]
    )]
    MigrationProof {
        table: String,
        before: (u64, String),
        after: (u64, String),
    },
}

impl StoreError {
    /// What kind of trouble this is (busy, full disk, corrupt, ...).
    pub fn class(&self) -> error::ErrorClass {
        error::classify(self)
    }
}

pub use accounts::{Account, AccountId, Claim, TableProof};
pub use backup::{BackupError, BackupReport, CheckReport, OrphanRows, backup, check};
pub use front::{CursorAtCommit, Holdings, PageCursor, WindowIds, WindowPage};
pub use handle::StoreHandle;
pub use request_log::{RequestLog, Reservation, Scope, Unused, WindowLimit};
pub use schema::{SCHEMA_VERSION, SchemaObject, migration_sources, schema_objects};
pub use typed_columns::{TypedColumn, typed_columns};
pub use webhook::{
    PENDING as WEBHOOK_PENDING, StoredSubscription, WebhookEventRecord, WebhookHealth,
};

/// Per data type sync bookkeeping, one row of `sync_state`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct SyncState {
    pub data_type: String,
    /// Last local day (UTC day for time series) fully synced by incremental jobs.
    pub high_water: Option<Date>,
    /// Oldest day the backfill has covered.
    pub backfill_floor: Option<Date>,
    pub backfill_complete: bool,
    pub last_attempt: Option<Timestamp>,
    pub last_success: Option<Timestamp>,
    /// The [`ErrorKind`] name as stored (see [`SyncState::error_kind`]).
    pub last_error_kind: Option<String>,
    pub last_error: Option<String>,
    pub last_error_at: Option<Timestamp>,
    pub documents: i64,
    pub requests: i64,
    pub next_run: Option<Timestamp>,
}

impl SyncState {
    /// The kind of the last error, when it names one this build knows.
    pub fn error_kind(&self) -> Option<ErrorKind> {
        self.last_error_kind.as_deref().and_then(ErrorKind::parse)
    }
}

/// Cursor movement committed with a page. Fields left `None` are unchanged.
#[derive(Debug, Clone, Default)]
pub struct CursorAdvance {
    pub high_water: Option<Date>,
    pub backfill_floor: Option<Date>,
    pub backfill_complete: bool,
    /// The window finished: set `last_success` and clear the last error.
    pub window_done: bool,
}

/// A window the API fully re-served, for the deletion rule of types whose
/// deleted documents vanish (the registry's [`Vanishing::Deletes`]).
///
/// `seen_ids` must hold the key ([`DataType::document_key`]) of every
/// document the API returned for the whole window, this page's included.
/// A stored document of the window that none of them matches is recorded
/// as missing; it is removed only when a complete fetch at least
/// [`REMOVE_AFTER`] after it was first missed still lacks it. Nothing is
/// recorded when `complete` is false (a document could not be keyed, so
/// any stored one may be it) or when the API returned nothing at all while
/// the window holds documents (an outage, not a deletion).
/// Ignored for other types and for time series.
#[derive(Debug)]
pub struct Vanished<'a> {
    pub first_day: Date,
    pub last_day: Date,
    pub seen_ids: &'a HashSet<String>,
    pub complete: bool,
}

/// How long a document must stay missing from complete re-fetches of its
/// window before it is removed.
pub const REMOVE_AFTER: jiff::SignedDuration = jiff::SignedDuration::from_hours(24);

/// The documents of a page.
#[derive(Debug, Clone, Copy)]
pub enum Documents<'a> {
    /// As the API sent them: `raw_json` keeps each one's text as received;
    /// those that could not be decoded go to `quarantine` with their bytes.
    Received {
        decoded: &'a [Document],
        undecodable: &'a [Undecodable],
    },
    /// Built in process: stored with their serialization as `raw_json`.
    Values(&'a [serde_json::Value]),
}

impl Default for Documents<'_> {
    fn default() -> Self {
        Documents::Values(&[])
    }
}

impl<'a> From<&'a [serde_json::Value]> for Documents<'a> {
    fn from(values: &'a [serde_json::Value]) -> Self {
        Documents::Values(values)
    }
}

impl<'a> Documents<'a> {
    /// The decoded documents, each with the text `raw_json` keeps.
    fn each(self) -> Vec<(&'a serde_json::Value, Cow<'a, str>)> {
        match self {
            Documents::Received { decoded, .. } => decoded
                .iter()
                .map(|d| (&d.value, Cow::Borrowed(d.text.as_str())))
                .collect(),
            // serde_json's map is a BTreeMap, so this is canonical (sorted
            // keys); a unit test guards against the preserve_order feature.
            Documents::Values(v) => v.iter().map(|d| (d, Cow::Owned(d.to_string()))).collect(),
        }
    }

    fn undecodable(self) -> &'a [Undecodable] {
        match self {
            Documents::Received { undecodable, .. } => undecodable,
            Documents::Values(_) => &[],
        }
    }
}

/// One page of API results and the bookkeeping committed with it.
#[derive(Debug)]
pub struct PageCommit<'a> {
    /// Documents (or time-series samples) exactly as the API sent them.
    pub documents: Documents<'a>,
    pub vanished: Option<Vanished<'a>>,
    pub cursor: CursorAdvance,
    /// Requests spent on this page, retries included.
    pub requests: u32,
    pub at: Timestamp,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct WriteCounts {
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub deleted: u64,
    /// Documents (or rows) put in quarantine instead of their table.
    pub quarantined: u64,
}

impl std::ops::AddAssign for WriteCounts {
    fn add_assign(&mut self, o: Self) {
        self.inserted += o.inserted;
        self.updated += o.updated;
        self.unchanged += o.unchanged;
        self.deleted += o.deleted;
        self.quarantined += o.quarantined;
    }
}

/// Quarantined documents of one data type, for `status`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct QuarantineSummary {
    pub data_type: String,
    pub count: i64,
    pub latest_reason: String,
    pub latest_at: Timestamp,
}

/// A column ouradb added for a field outside the schema.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AddedColumn {
    pub table: String,
    pub column: String,
    pub sql_type: String,
    pub json_path: String,
}

pub struct Store {
    conn: Connection,
    /// The account the statements act for (`ouradb_account()` in SQL).
    account: accounts::CurrentAccount,
    /// Schema version found at open (always [`SCHEMA_VERSION`] for writers).
    version: i64,
    /// Per data type name, how its JSON maps onto its table(s).
    shapes: HashMap<&'static str, mapping::Shape>,
}

/// Prepared statements stay cached across pages; the cache must hold every
/// statement of every table so a 2M-row backfill never re-prepares.
const STATEMENT_CACHE: usize = 256;

fn text_time(t: Timestamp) -> String {
    t.to_string()
}

fn parse_time(s: Option<String>, col: &str) -> Result<Option<Timestamp>, StoreError> {
    s.map(|s| {
        s.parse::<Timestamp>()
            .map_err(|e| StoreError::Schema(format!("sync_state.{col} holds {s:?}: {e}")))
    })
    .transpose()
}

fn parse_date(s: Option<String>, col: &str) -> Result<Option<Date>, StoreError> {
    s.map(|s| {
        s.parse::<Date>()
            .map_err(|e| StoreError::Schema(format!("sync_state.{col} holds {s:?}: {e}")))
    })
    .transpose()
}

/// Makes sure `sync_state` has a row for the type, so updates can assume it.
const ENSURE_STATE: &str =
    "INSERT OR IGNORE INTO sync_state (account, data_type) VALUES (ouradb_account(), ?1)";

impl Store {
    /// Opens the database for writing, creating the file (mode 0600) and its
    /// directory when missing and migrating the schema to [`SCHEMA_VERSION`].
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = schema::open_read_write(path)?;
        Self::with_connection(conn, SCHEMA_VERSION)
    }

    /// Opens an existing database without ever writing to it, for readers
    /// such as `ouradb status` that run while the daemon writes.
    pub fn open_read_only(path: &Path) -> Result<Self, StoreError> {
        let (conn, version) = schema::open_read_only(path)?;
        Self::with_connection(conn, version)
    }

    fn with_connection(conn: Connection, version: i64) -> Result<Self, StoreError> {
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let account = accounts::CurrentAccount::register(&conn)?;
        let mut shapes = HashMap::new();
        // A read-only handle on an older (or still empty) file cannot map
        // documents, but can still report what it holds.
        if version == SCHEMA_VERSION {
            for dt in crate::registry::DATA_TYPES {
                shapes.insert(dt.name, mapping::build(&conn, dt)?);
            }
        }
        Ok(Store {
            conn,
            account,
            version,
            shapes,
        })
    }

    /// The account the next operations act for.
    pub fn account(&self) -> AccountId {
        self.account.get()
    }

    /// Makes the following operations act for `id`: its rows, cursors,
    /// quarantine and pending removals, never another account's.
    pub fn use_account(&mut self, id: AccountId) {
        self.account.set(id);
    }

    /// `sql` as it reads a file of this store's version: files older than
    /// accounts (read-only handles on them, e.g. `ouradb status` beside an
    /// older daemon) have no `account` column, and all their rows are the
    /// first account's.
    fn for_version<'s>(&self, sql: &'s str) -> Cow<'s, str> {
        if self.version >= accounts::ACCOUNTS_VERSION {
            return Cow::Borrowed(sql);
        }
        Cow::Owned(
            sql.replace("account = ouradb_account() AND ", "")
                .replace("WHERE account = ouradb_account() ", "")
                .replace("q2.account = q.account AND ", ""),
        )
    }

    /// The schema version of the open file.
    pub fn schema_version(&self) -> i64 {
        self.version
    }

    fn shape(&self, dt: &DataType) -> Result<&mapping::Shape, StoreError> {
        self.shapes.get(dt.name).ok_or_else(|| {
            StoreError::Schema(format!(
                "no table mapping for data type {} (schema version {})",
                dt.name, self.version
            ))
        })
    }

    fn doc_table(&self, dt: &DataType) -> Result<&mapping::DocTable, StoreError> {
        match self.shape(dt)? {
            mapping::Shape::Document(t) => Ok(t),
            mapping::Shape::Series(_) => Err(StoreError::Invalid(format!(
                "{} is a time series and has no documents",
                dt.name
            ))),
        }
    }

    pub fn sync_state(&self, dt: &DataType) -> Result<SyncState, StoreError> {
        let default = SyncState {
            data_type: dt.name.to_owned(),
            ..SyncState::default()
        };
        if self.version == 0 {
            return Ok(default);
        }
        let sql = self.for_version(
            "SELECT high_water, backfill_floor, backfill_complete, last_attempt, last_success,
                    last_error_kind, last_error, last_error_at, documents, requests, next_run
             FROM sync_state WHERE account = ouradb_account() AND data_type = ?1",
        );
        let row = self
            .conn
            .prepare_cached(&sql)?
            .query_row([dt.name], |r| {
                Ok((
                    r.get::<_, Option<String>>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, bool>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, Option<String>>(5)?,
                    r.get::<_, Option<String>>(6)?,
                    r.get::<_, Option<String>>(7)?,
                    r.get::<_, i64>(8)?,
                    r.get::<_, i64>(9)?,
                    r.get::<_, Option<String>>(10)?,
                ))
            })
            .optional()?;
        let Some((hw, floor, complete, attempt, success, kind, err, err_at, docs, reqs, next)) =
            row
        else {
            return Ok(default);
        };
        Ok(SyncState {
            high_water: parse_date(hw, "high_water")?,
            backfill_floor: parse_date(floor, "backfill_floor")?,
            backfill_complete: complete,
            last_attempt: parse_time(attempt, "last_attempt")?,
            last_success: parse_time(success, "last_success")?,
            last_error_kind: kind,
            last_error: err,
            last_error_at: parse_time(err_at, "last_error_at")?,
            documents: docs,
            requests: reqs,
            next_run: parse_time(next, "next_run")?,
            ..default
        })
    }

    /// One state per registry entry, in registry order; defaults for types
    /// that never ran.
    pub fn all_sync_states(&self) -> Result<Vec<SyncState>, StoreError> {
        crate::registry::DATA_TYPES
            .iter()
            .map(|dt| self.sync_state(dt))
            .collect()
    }

    /// Stores one page and its bookkeeping in one IMMEDIATE transaction:
    /// either all of it is visible to readers or none of it. Documents that
    /// cannot be keyed or stored go to `quarantine` in the same transaction
    /// instead of failing the page; scalar fields the table has no column
    /// for get one first (see [`Store::added_columns`]).
    pub fn commit_page(
        &mut self,
        dt: &DataType,
        page: &PageCommit<'_>,
    ) -> Result<WriteCounts, StoreError> {
        self.commit_page_rows(dt, page, &RawRows::default())
    }

    /// [`Store::commit_page`] for a time series whose rows the client read
    /// field by field (`rows`, after `page.documents`): the same result as
    /// parsing them into `documents`, without building a `Value` per row.
    pub fn commit_page_rows(
        &mut self,
        dt: &DataType,
        page: &PageCommit<'_>,
        rows: &RawRows,
    ) -> Result<WriteCounts, StoreError> {
        let shape = self.shapes.get(dt.name).ok_or_else(|| {
            StoreError::Schema(format!("no table mapping for data type {}", dt.name))
        })?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let at = text_time(page.at);
        let mut log = QuarantineLog::default();
        let docs = page.documents.each();
        let (widened, mut counts) = match shape {
            mapping::Shape::Document(t) => {
                let values: Vec<&serde_json::Value> = docs.iter().map(|(d, _)| *d).collect();
                let fates = plan_page(dt, &values);
                let stored = values.iter().zip(&fates);
                let stored = stored.filter(|(_, f)| f.stored()).map(|(d, _)| *d);
                let widened = add_columns(&tx, dt, t, stored, &at)?;
                let t = match &widened {
                    Some(mapping::Shape::Document(w)) => w,
                    _ => t,
                };
                let counts = upsert_documents(&tx, dt, t, &docs, fates, &at, &mut log)?;
                (widened, counts)
            }
            mapping::Shape::Series(t) => {
                (None, upsert_series(&tx, dt, t, &docs, rows, &at, &mut log)?)
            }
        };
        let undecodable = page.documents.undecodable().iter();
        for u in undecodable.chain(rows.undecodable()) {
            let key = undecodable_key(dt, u);
            quarantine(&tx, dt, key.as_deref(), &u.bytes, &u.reason, &at, &mut log)?;
            counts.quarantined += 1;
        }
        if log.unkeyed {
            bound_unkeyed_quarantine(&tx, dt, &at)?;
        }
        let shape = widened.as_ref().unwrap_or(shape);
        if let (Some(v), mapping::Shape::Document(t)) = (&page.vanished, shape) {
            counts.deleted += apply_vanished(&tx, dt, t, v, page.at)?;
        }
        tx.prepare_cached(ENSURE_STATE)?.execute([dt.name])?;
        let c = &page.cursor;
        tx.prepare_cached(
            "UPDATE sync_state SET
                high_water = COALESCE(?2, high_water),
                backfill_floor = COALESCE(?3, backfill_floor),
                backfill_complete = MAX(backfill_complete, ?4),
                last_success = CASE WHEN ?5 THEN ?6 ELSE last_success END,
                last_error_kind = CASE WHEN ?5 THEN NULL ELSE last_error_kind END,
                last_error = CASE WHEN ?5 THEN NULL ELSE last_error END,
                last_error_at = CASE WHEN ?5 THEN NULL ELSE last_error_at END,
                requests = requests + ?7,
                documents = documents + ?8
             WHERE account = ouradb_account() AND data_type = ?1",
        )?
        .execute(params![
            dt.name,
            c.high_water.map(|d| d.to_string()),
            c.backfill_floor.map(|d| d.to_string()),
            c.backfill_complete,
            c.window_done,
            at,
            page.requests,
            counts.inserted as i64 - counts.deleted as i64,
        ])?;
        tx.commit()?;
        log.report(dt, counts.quarantined);
        if let Some(shape) = widened {
            self.shapes.insert(dt.name, shape);
        }
        Ok(counts)
    }

    /// Quarantined documents per data type (registry order), with the
    /// reason of the one received last. Empty for older schema versions.
    pub fn quarantine_summary(&self) -> Result<Vec<QuarantineSummary>, StoreError> {
        if !self.has_table("quarantine")? {
            return Ok(Vec::new());
        }
        let sql = self.for_version(
            "SELECT data_type, COUNT(*),
                    (SELECT reason FROM quarantine q2
                     WHERE q2.account = q.account AND q2.data_type = q.data_type
                     ORDER BY last_seen DESC, doc_key DESC LIMIT 1),
                    MAX(last_seen)
             FROM quarantine q WHERE account = ouradb_account() GROUP BY data_type",
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let mut out = Vec::with_capacity(rows.len());
        for (data_type, count, latest_reason, at) in rows {
            out.push(QuarantineSummary {
                data_type,
                count,
                latest_reason,
                latest_at: parse_time(Some(at), "quarantine.last_seen")?.expect("present"),
            });
        }
        let order = |n: &str| crate::registry::DATA_TYPES.iter().position(|d| d.name == n);
        out.sort_by_key(|q| order(&q.data_type));
        Ok(out)
    }

    /// Stored documents per data type that a complete re-fetch lacked and
    /// that wait out [`REMOVE_AFTER`] before removal.
    pub fn pending_removals(&self) -> Result<HashMap<String, i64>, StoreError> {
        if !self.has_table("pending_removal")? {
            return Ok(HashMap::new());
        }
        let sql = self.for_version(
            "SELECT data_type, COUNT(*) FROM pending_removal
             WHERE account = ouradb_account() GROUP BY data_type",
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// Days (sorted) of the stored documents of `dt` that a complete
    /// re-fetch lacked and that wait for a later one to confirm it; empty
    /// for types without a day.
    pub fn pending_removal_days(&self, dt: &DataType) -> Result<Vec<Date>, StoreError> {
        let sql = match self.shape(dt)? {
            mapping::Shape::Document(t) => match &t.sql_pending_days {
                Some(sql) => sql,
                None => return Ok(Vec::new()),
            },
            mapping::Shape::Series(_) => return Ok(Vec::new()),
        };
        if !self.has_table("pending_removal")? {
            return Ok(Vec::new());
        }
        let mut stmt = self.conn.prepare_cached(sql)?;
        let days = stmt
            .query_map([dt.name], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        // ouradb writes the day column from a parsed date; a hand-edited
        // value that is not one has no window to recheck.
        Ok(days.iter().filter_map(|d| d.parse().ok()).collect())
    }

    /// Columns ouradb added for fields outside the schema, by table.
    pub fn added_columns(&self) -> Result<Vec<AddedColumn>, StoreError> {
        if !self.has_table("added_column")? {
            return Ok(Vec::new());
        }
        let mut stmt = self.conn.prepare_cached(
            "SELECT table_name, column_name, sql_type, json_path FROM added_column
             ORDER BY table_name, column_name",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok(AddedColumn {
                    table: r.get(0)?,
                    column: r.get(1)?,
                    sql_type: r.get(2)?,
                    json_path: r.get(3)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    fn has_table(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1")?
            .exists([name])?)
    }

    pub fn record_attempt(&mut self, dt: &DataType, at: Timestamp) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO sync_state (account, data_type, last_attempt)
                 VALUES (ouradb_account(), ?1, ?2)
                 ON CONFLICT (account, data_type) DO UPDATE SET last_attempt = excluded.last_attempt",
            )?
            .execute(params![dt.name, text_time(at)])?;
        Ok(())
    }

    /// Marks `dt`'s backfill unfinished again (the floor stays where it
    /// is): the start of history moved below it, so the days between are
    /// still to be fetched. The only way `backfill_complete` goes back.
    pub fn reopen_backfill(&mut self, dt: &DataType) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "UPDATE sync_state SET backfill_complete = 0
                 WHERE account = ouradb_account() AND data_type = ?1",
            )?
            .execute([dt.name])?;
        Ok(())
    }

    /// Records a failed job: the error (its kind's name, such as
    /// `rate_limited` or `network`, and its message) and the requests it spent.
    pub fn record_failure(
        &mut self,
        dt: &DataType,
        kind: ErrorKind,
        message: &str,
        requests: u32,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO sync_state (account, data_type, last_error_kind, last_error, last_error_at, requests)
                 VALUES (ouradb_account(), ?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (account, data_type) DO UPDATE SET
                    last_error_kind = excluded.last_error_kind,
                    last_error = excluded.last_error,
                    last_error_at = excluded.last_error_at,
                    requests = requests + excluded.requests",
            )?
            .execute(params![
                dt.name,
                kind.as_str(),
                message,
                text_time(at),
                requests
            ])?;
        Ok(())
    }

    pub fn set_next_run(&mut self, dt: &DataType, at: Option<Timestamp>) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO sync_state (account, data_type, next_run) VALUES (ouradb_account(), ?1, ?2)
                 ON CONFLICT (account, data_type) DO UPDATE SET next_run = excluded.next_run",
            )?
            .execute(params![dt.name, at.map(text_time)])?;
        Ok(())
    }

    /// Removes one document (and its sample rows), e.g. for a webhook delete
    /// event. `id` is the document's id, or for a document stored without
    /// one, its made-up id or the value of its one-field natural key (the
    /// day of a daily document). Returns whether it was stored.
    pub fn delete_document(&mut self, dt: &DataType, id: &str) -> Result<bool, StoreError> {
        let t = self.doc_table(dt)?;
        let sql_delete = t.sql_delete.clone();
        let by_key = by_key_field(dt).map(|field| {
            format!(
                "DELETE FROM {} WHERE account = ouradb_account() AND {} = ?1",
                mapping::quote(dt.table),
                mapping::quote(field)
            )
        });
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut removed = tx.prepare_cached(&sql_delete)?.execute([id])?;
        if removed == 0 && !id.starts_with(SYNTHETIC_ID_PREFIX) {
            removed = tx
                .prepare_cached(&sql_delete)?
                .execute([format!("{SYNTHETIC_ID_PREFIX}{id}")])?;
        }
        if removed == 0
            && let Some(sql) = by_key
        {
            // A natural key value names the document however it is stored.
            let value = match (by_key_field(dt), dt.day_field) {
                (Some(k), Some(day)) if k == day => dt
                    .document_day(&serde_json::json!({ day: id }))
                    .map(|d| d.to_string()),
                _ => Some(id.to_owned()),
            };
            if let Some(v) = value {
                removed = tx.prepare_cached(&sql)?.execute([v])?;
            }
        }
        clear_pending(&tx, dt, id)?;
        if removed > 0 {
            tx.prepare_cached(ENSURE_STATE)?.execute([dt.name])?;
            tx.prepare_cached(
                "UPDATE sync_state SET documents = documents - ?2
                 WHERE account = ouradb_account() AND data_type = ?1",
            )?
            .execute(params![dt.name, removed as i64])?;
        }
        tx.commit()?;
        Ok(removed > 0)
    }

    /// The [`DataType::history_start`] field of every stored document of
    /// `dt` (None where null); nothing when the type has no such field.
    pub fn history_start_times(&self, dt: &DataType) -> Result<Vec<Option<String>>, StoreError> {
        let Some(field) = dt.history_start else {
            return Ok(Vec::new());
        };
        if self.version == 0 {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {} FROM {} WHERE account = ouradb_account()",
            mapping::quote(field),
            mapping::quote(dt.table)
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([], |r| r.get::<_, Option<String>>(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// The one field of a single-field natural key.
fn by_key_field(dt: &DataType) -> Option<&'static str> {
    match dt.natural_key {
        crate::registry::NaturalKey::Fields([field]) => Some(field),
        _ => None,
    }
}

/// At most this many columns are added to one table; further unknown
/// fields stay in `raw_json` (a hostile server must not widen tables
/// towards SQLite's column limit).
const MAX_ADDED_COLUMNS: i64 = 64;

/// Adds a typed column for every scalar field of `docs` (the documents of
/// the page that will be stored) that no column holds, named by
/// [`mapping::column_names`] for the whole page at once, records it in
/// `added_column` with its JSON path and fills it for every stored
/// document from `raw_json`. Returns the table's new mapping when it
/// changed.
fn add_columns<'a>(
    tx: &Connection,
    dt: &DataType,
    t: &mapping::DocTable,
    docs: impl Iterator<Item = &'a serde_json::Value>,
    at: &str,
) -> Result<Option<mapping::Shape>, StoreError> {
    let mut wanted = std::collections::BTreeMap::new();
    for doc in docs {
        mapping::unknown_fields(dt, &t.known_paths, doc, &mut wanted);
    }
    if wanted.is_empty() {
        return Ok(None);
    }
    // Another process may have added some since this mapping was built.
    let recorded: HashSet<String> = tx
        .prepare_cached("SELECT json_path FROM added_column WHERE table_name = ?1")?
        .query_map([dt.table], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let before = wanted.len();
    wanted.retain(|path, _| !recorded.contains(path));
    // Only fields past the cap: the mapping stays as it is.
    let mut changed = wanted.len() < before;
    let present: HashSet<String> = mapping::table_info(tx, dt.table)?
        .into_iter()
        .map(|c| c.name.to_lowercase())
        .collect();
    let mut added: i64 = tx
        .prepare_cached("SELECT COUNT(*) FROM added_column WHERE table_name = ?1")?
        .query_row([dt.table], |r| r.get(0))?;
    let table = mapping::quote(dt.table);
    let mut over_limit = Vec::new();
    for (path, column, ty) in mapping::column_names(&wanted, &present) {
        if added >= MAX_ADDED_COLUMNS {
            over_limit.push(column);
            continue;
        }
        let col = mapping::quote(&column);
        tx.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {col} {ty}"))?;
        tx.prepare_cached(
            "INSERT OR REPLACE INTO added_column (table_name, column_name, sql_type, json_path, first_seen)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![dt.table, column, ty, path, at])?;
        // Documents stored before the field had a column keep it in
        // raw_json; fill the column from there.
        tx.execute(
            &format!(
                "UPDATE {table} SET {col} = json_extract(raw_json, ?1) WHERE json_type(raw_json, ?1) IS NOT NULL"
            ),
            [&path],
        )?;
        tracing::info!(
            data_type = dt.name,
            column,
            json_path = path,
            sql_type = ty,
            "added a column for a field outside the schema"
        );
        added += 1;
        changed = true;
    }
    if !over_limit.is_empty() {
        tracing::warn!(
            data_type = dt.name,
            fields = over_limit.join(", "),
            "{MAX_ADDED_COLUMNS} columns were already added to this table; these fields stay in raw_json only"
        );
    }
    if !changed {
        return Ok(None);
    }
    Ok(Some(mapping::build(tx, dt)?))
}

/// Makes every one-per-day collection hold one document per day, for files
/// written before that rule (schema version 7): of the documents of one day,
/// the one the API served last (`last_seen`, then `first_seen`, then id) stays;
/// the others go to `document_history`, their child rows with them. Returns
/// how many moved.
fn keep_one_per_day(tx: &Connection) -> Result<usize, StoreError> {
    let at = text_time(crate::clock::now());
    let mut moved = 0;
    for dt in crate::registry::DATA_TYPES
        .iter()
        .filter(|d| d.one_per_day())
    {
        let (Some(day), t) = (dt.day_field, mapping::quote(dt.table)) else {
            continue;
        };
        let day = mapping::quote(day);
        let older: Vec<(String, String, String, String)> = tx
            .prepare(&format!(
                "SELECT id, {day}, raw_json, newest FROM (
                    SELECT id, {day}, raw_json, first_value(id) OVER (
                        PARTITION BY {day} ORDER BY last_seen DESC, first_seen DESC, id DESC) AS newest
                    FROM {t} WHERE account = ouradb_account() AND {day} IN (
                        SELECT {day} FROM {t} WHERE account = ouradb_account() AND {day} IS NOT NULL
                        GROUP BY {day} HAVING COUNT(*) > 1))
                 WHERE id <> newest"
            ))?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<Result<_, _>>()?;
        for (id, day, raw, newest) in &older {
            keep_in_history(tx, dt, id, day, raw, &at, newest)?;
            tx.execute(
                &format!("DELETE FROM {t} WHERE account = ouradb_account() AND id = ?1"),
                [id],
            )?;
            clear_pending(tx, dt, id)?;
        }
        if !older.is_empty() {
            tx.execute(
                "UPDATE sync_state SET documents = documents - ?2
                 WHERE account = ouradb_account() AND data_type = ?1",
                params![dt.name, older.len() as i64],
            )?;
        }
        moved += older.len();
    }
    Ok(moved)
}

/// Renames the columns an older ouradb added for fields named like the
/// rowid (`rowid`, `oid`, `_rowid_`) to the names [`mapping::column_names`]
/// gives them now, and rebuilds the sample rows of their tables from
/// `raw_json`: the store read such a column back as the row's key, so
/// sample rows may hang on the wrong document. Returns the columns renamed.
fn rename_rowid_columns(tx: &Connection) -> Result<usize, StoreError> {
    let mut renamed = 0;
    for dt in crate::registry::DATA_TYPES
        .iter()
        .filter(|d| !d.is_time_series())
    {
        let present: HashSet<String> = mapping::table_info(tx, dt.table)?
            .into_iter()
            .map(|c| c.name)
            .collect();
        let shadows: Vec<&String> = present
            .iter()
            .filter(|c| mapping::is_rowid_alias(c))
            .collect();
        if shadows.is_empty() {
            continue;
        }
        let mut taken: HashSet<String> = present.iter().map(|c| c.to_lowercase()).collect();
        for old in shadows {
            let wanted = std::collections::BTreeMap::from([(
                format!("$.{old}"),
                mapping::Wanted {
                    column: old.clone(),
                    sql_type: "TEXT",
                },
            )]);
            let (_, new, _) = mapping::column_names(&wanted, &taken).remove(0);
            tx.execute_batch(&format!(
                "ALTER TABLE {} RENAME COLUMN {} TO {}",
                mapping::quote(dt.table),
                mapping::quote(old),
                mapping::quote(&new)
            ))?;
            tx.execute(
                "UPDATE added_column SET column_name = ?3 WHERE table_name = ?1 AND column_name = ?2",
                params![dt.table, old, new],
            )?;
            taken.insert(new.to_lowercase());
            renamed += 1;
        }
        rebuild_sample_rows(tx, dt)?;
    }
    Ok(renamed)
}

/// Writes the sample rows of every stored document of `dt` afresh from
/// its `raw_json`.
fn rebuild_sample_rows(tx: &Connection, dt: &DataType) -> Result<(), StoreError> {
    let mapping::Shape::Document(t) = mapping::build(tx, dt)? else {
        return Ok(());
    };
    if t.children.is_empty() {
        return Ok(());
    }
    let docs: Vec<(i64, String)> = tx
        .prepare(&format!(
            "SELECT {}, raw_json FROM {} WHERE account = ouradb_account()",
            mapping::SURROGATE_KEY,
            mapping::quote(dt.table)
        ))?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut children = t
        .children
        .iter()
        .map(|c| ChildStatements::prepare(tx, c))
        .collect::<Result<Vec<_>, StoreError>>()?;
    for c in &mut children {
        tx.execute_batch(&format!(
            "DELETE FROM {} WHERE account = ouradb_account()",
            mapping::quote(c.child.table)
        ))?;
    }
    for (pk, raw) in docs {
        // ouradb wrote raw_json itself; one it cannot read keeps no samples
        // here, and its JSON stays in the row.
        let Ok(doc) = serde_json::from_str::<serde_json::Value>(&raw) else {
            continue;
        };
        for c in &mut children {
            c.write(pk, &doc, false)?;
        }
    }
    Ok(())
}
