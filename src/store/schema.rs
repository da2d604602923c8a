//! Opening the database file: permissions, pragmas and versioned migrations.

use std::fs::{DirBuilder, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use super::StoreError;

/// One schema version: the SQL that takes a database from `version - 1` to
/// `version`. Versions are consecutive from 1; a new version is one more entry.
pub(super) struct Migration {
    pub version: i64,
    pub sql: &'static str,
}

pub(super) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sql: include_str!("../../schema.sql"),
    },
    Migration {
        version: 2,
        sql: include_str!("../../schema_v2.sql"),
    },
    Migration {
        version: 3,
        sql: include_str!("../../schema_real_accounts.sql"),
    },
    Migration {
        version: 4,
        sql: include_str!("../../schema_limiter.sql"),
    },
    Migration {
        version: 5,
        sql: include_str!("../../schema_views.sql"),
    },
];

/// The schema version this binary writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].version;

/// The SQL of every migration, oldest first: the documentation of the
/// schema (its comments) for generators such as the Datasette metadata.
pub fn migration_sources() -> impl Iterator<Item = &'static str> {
    MIGRATIONS.iter().map(|m| m.sql)
}

/// A table or view of a database at [`SCHEMA_VERSION`], with its columns in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaObject {
    pub name: String,
    /// `table` or `view`.
    pub kind: String,
    pub columns: Vec<String>,
}

/// Every table and view a fresh database has, read from an in-memory copy:
/// the authority on which columns exist, whatever the comments say.
pub fn schema_objects() -> Result<Vec<SchemaObject>, StoreError> {
    let conn = Connection::open_in_memory()?;
    let tx = rusqlite::Transaction::new_unchecked(&conn, TransactionBehavior::Immediate)?;
    for m in MIGRATIONS {
        tx.execute_batch(m.sql)?;
    }
    tx.commit()?;
    let mut stmt = conn.prepare(
        "SELECT name, type FROM sqlite_master WHERE type IN ('table', 'view') \
         AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )?;
    let objects: Vec<(String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut cols = conn.prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")?;
    objects
        .into_iter()
        .map(|(name, kind)| {
            let columns = cols
                .query_map([&name], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            Ok(SchemaObject {
                name,
                kind,
                columns,
            })
        })
        .collect()
}

/// How long a statement waits for another connection's lock before failing.
/// A dashboard's read never blocks a WAL writer; this covers a second writer
/// (e.g. `ouradb sync` while the daemon runs) holding the write lock for one page.
const BUSY_TIMEOUT: Duration = Duration::from_millis(5000);

fn io_err(path: &Path, source: std::io::Error) -> StoreError {
    StoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Creates the parent directory and the file itself with owner-only
/// permissions before SQLite sees it: the file holds health data, and SQLite
/// would create it with the process umask (usually world-readable).
fn create_private_file(path: &Path) -> Result<(), StoreError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(|e| io_err(path, e))?;
    }
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|e| io_err(path, e))?;
    Ok(())
}

fn user_version(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

fn too_new(path: &Path, found: i64) -> StoreError {
    StoreError::TooNew {
        path: path.display().to_string(),
        found,
        supported: SCHEMA_VERSION,
    }
}

/// Opens (creating if needed) a database for writing and brings its schema
/// to [`SCHEMA_VERSION`].
pub(super) fn open_read_write(path: &Path) -> Result<Connection, StoreError> {
    create_private_file(path)?;
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // WAL lets readers see the last committed page while a page is being
    // written; NORMAL is durable at every checkpoint and never corrupts in WAL.
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(path = %path.display(), mode, "SQLite refused WAL journal mode");
    }
    conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")?;
    // A backfill inserts millions of rows into B-trees keyed by document id:
    // a 16 MiB page cache keeps their upper levels resident (the 2 MiB
    // default thrashes), and a larger WAL means fewer checkpoints, each of
    // which fsyncs. Both stay well inside the daemon's memory budget.
    conn.execute_batch("PRAGMA cache_size = -16384; PRAGMA wal_autocheckpoint = 4000;")?;
    migrate(&conn, path)?;
    Ok(conn)
}

/// Opens an existing database for reading only; never migrates.
pub(super) fn open_read_only(path: &Path) -> Result<(Connection, i64), StoreError> {
    if !path.exists() {
        return Err(StoreError::Missing {
            path: path.display().to_string(),
        });
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let found = user_version(&conn)?;
    if found > SCHEMA_VERSION {
        return Err(too_new(path, found));
    }
    Ok((conn, found))
}

fn migrate(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let found = user_version(conn)?;
    if found > SCHEMA_VERSION {
        return Err(too_new(path, found));
    }
    if found == SCHEMA_VERSION {
        return Ok(());
    }
    // IMMEDIATE takes the write lock up front, so two processes opening a
    // fresh file cannot both decide to migrate it.
    let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
    let current = user_version(&tx)?;
    if current > SCHEMA_VERSION {
        return Err(too_new(path, current));
    }
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        tx.execute_batch(m.sql)?;
        tx.execute_batch(&format!("PRAGMA user_version = {}", m.version))?;
    }
    tx.commit()?;
    Ok(())
}
