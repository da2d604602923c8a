//! SQLite storage: schema and migrations, document upserts, per-type cursors.
//!
//! Invariant: only this module runs SQL. Every write that stores documents
//! also advances the cursor covering them, in the same transaction.

use std::collections::HashSet;
use std::path::Path;

use jiff::Timestamp;
use jiff::civil::Date;

use crate::registry::DataType;

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
}

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
    pub last_error_kind: Option<String>,
    pub last_error: Option<String>,
    pub last_error_at: Option<Timestamp>,
    pub documents: i64,
    pub requests: i64,
    pub next_run: Option<Timestamp>,
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

/// Documents the API no longer returns for a window it fully covered.
#[derive(Debug)]
pub struct Vanished<'a> {
    pub first_day: Date,
    pub last_day: Date,
    pub seen_ids: &'a HashSet<String>,
}

/// One page of API results and the bookkeeping committed with it.
#[derive(Debug)]
pub struct PageCommit<'a> {
    /// Documents (or time-series samples) exactly as the API sent them.
    pub documents: &'a [serde_json::Value],
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
}

impl std::ops::AddAssign for WriteCounts {
    fn add_assign(&mut self, o: Self) {
        self.inserted += o.inserted;
        self.updated += o.updated;
        self.unchanged += o.unchanged;
        self.deleted += o.deleted;
    }
}

pub struct Store {
    _conn: rusqlite::Connection,
}

impl Store {
    pub fn open(_path: &Path) -> Result<Self, StoreError> {
        unimplemented!("store helper")
    }
    pub fn open_read_only(_path: &Path) -> Result<Self, StoreError> {
        unimplemented!("store helper")
    }
    pub fn sync_state(&self, _dt: &DataType) -> Result<SyncState, StoreError> {
        unimplemented!("store helper")
    }
    pub fn all_sync_states(&self) -> Result<Vec<SyncState>, StoreError> {
        unimplemented!("store helper")
    }
    pub fn commit_page(
        &mut self,
        _dt: &DataType,
        _page: &PageCommit<'_>,
    ) -> Result<WriteCounts, StoreError> {
        unimplemented!("store helper")
    }
    pub fn record_attempt(&mut self, _dt: &DataType, _at: Timestamp) -> Result<(), StoreError> {
        unimplemented!("store helper")
    }
    pub fn record_failure(
        &mut self,
        _dt: &DataType,
        _kind: &str,
        _message: &str,
        _requests: u32,
        _at: Timestamp,
    ) -> Result<(), StoreError> {
        unimplemented!("store helper")
    }
    pub fn set_next_run(
        &mut self,
        _dt: &DataType,
        _at: Option<Timestamp>,
    ) -> Result<(), StoreError> {
        unimplemented!("store helper")
    }
    pub fn delete_document(&mut self, _dt: &DataType, _id: &str) -> Result<bool, StoreError> {
        unimplemented!("store helper")
    }
}
