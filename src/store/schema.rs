//! Opening the database file: permissions, pragmas and versioned migrations.

use std::fs::{DirBuilder, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use super::StoreError;
use super::accounts::CurrentAccount;
use super::error::{FileError, Refusal};

/// `PRAGMA application_id` of every ouradb database ("OURA" in ASCII): a
/// file carrying another id belongs to another program and is refused.
pub const APPLICATION_ID: i32 = 0x4F55_5241;

/// Tables every ouradb file has had since schema version 1: how a file made
/// before `application_id` was set is recognised.
const OURADB_TABLES: &[&str] = &["sync_state", "daily_sleep", "heartrate", "sleep"];

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
    Migration {
        version: 6,
        sql: include_str!("../../schema_met_view.sql"),
    },
    Migration {
        version: 7,
        sql: include_str!("../../schema_v7_documents.sql"),
    },
    Migration {
        version: 8,
        sql: include_str!("../../schema_local_days.sql"),
    },
    Migration {
        version: 9,
        sql: include_str!("../../schema_quarantine_bytes.sql"),
    },
    Migration {
        version: 10,
        sql: include_str!("../../schema_interbeat.sql"),
    },
    Migration {
        version: ACCOUNTS_VERSION,
        sql: include_str!("../../schema_accounts.sql"),
    },
    Migration {
        version: 12,
        sql: include_str!("../../schema_account_views.sql"),
    },
    Migration {
        version: 13,
        sql: REQUEST_ACCOUNT_SQL,
    },
    Migration {
        version: 14,
        sql: include_str!("../../schema_interbeat_extra.sql"),
    },
    Migration {
        version: 15,
        sql: include_str!("../../schema_interbeat_packed.sql"),
    },
];

/// The step that gives `_request_log` its `account` column: a private
/// request log (`RequestLog::in_memory`) applies it after `schema_limiter.sql`.
pub(super) const REQUEST_ACCOUNT_SQL: &str = include_str!("../../schema_request_account.sql");

/// The version that rebuilds the tables with an `account` column
/// (src/store/accounts.rs).
pub(super) const ACCOUNTS_VERSION: i64 = 11;

/// A hook run between a rebuild's copy and its proof; tests corrupt the
/// copy there. Production code passes [`untouched`].
pub(super) type Tamper<'a> = &'a dyn Fn(&Connection) -> Result<(), StoreError>;

pub(super) fn untouched(_: &Connection) -> Result<(), StoreError> {
    Ok(())
}

/// Runs one migration inside the caller's transaction: what must happen
/// before its SQL, the SQL, what must follow it, and the new version.
fn apply(conn: &Connection, m: &Migration, tamper: Tamper<'_>) -> Result<(), StoreError> {
    let aside = if m.version == ACCOUNTS_VERSION {
        Some(super::accounts::set_aside(conn)?)
    } else {
        None
    };
    conn.execute_batch(m.sql)?;
    if m.version == PACKED_BEATS_VERSION {
        let moved = move_beats(conn)?;
        tracing::info!(
            beats = moved,
            "schema 15: each beat's interval and validity now one integer"
        );
    }
    if let Some(aside) = aside {
        let proofs = super::accounts::copy_and_prove(conn, aside, tamper)?;
        let rows: u64 = proofs.iter().map(|p| p.rows).sum();
        tracing::info!(
            tables = proofs.len(),
            rows,
            "schema 11: every table rebuilt with an account column; row counts and fingerprints equal before and after"
        );
    }
    conn.execute_batch(&format!("PRAGMA user_version = {}", m.version))?;
    Ok(())
}

/// The version that packs a beat's two values into one integer
/// (`schema_interbeat_packed.sql`).
pub(super) const PACKED_BEATS_VERSION: i64 = 15;

/// Beats moved per statement by [`move_beats`].
const MOVE_BATCH: i64 = 50_000;

/// Each of schema 14's beats with its packed value: NULL when its values
/// do not pack (not both integers, a validity outside 0..7, an interval
/// whose * 8 would overflow).
const PACKED_V14: &str = "CREATE TEMP VIEW interbeat_interval_v14_packed AS
    SELECT beat, ibi, validity, ts_ms,
           CASE WHEN typeof(ibi) = 'integer' AND typeof(validity) = 'integer'
                     AND validity BETWEEN 0 AND 7
                     AND ibi BETWEEN -1152921504606846976 AND 1152921504606846975
                THEN ibi * 8 + validity END AS ibi_validity
    FROM interbeat_interval_v14";

/// Beats whose values do not pack keep them beside the table, as the API
/// row the typed columns held (UTC time).
const UNPACKED_TO_EXTRA: &str = "INSERT INTO interbeat_interval_extra (beat, extra)
    SELECT v.beat,
           json_object('ibi', v.ibi,
                       'timestamp', strftime('%Y-%m-%dT%H:%M:%f', v.ts_ms / 1000.0, 'unixepoch') || '+00:00',
                       'timestamp_unix', v.ts_ms,
                       'validity', v.validity)
    FROM interbeat_interval_v14_packed v
    WHERE v.ibi_validity IS NULL
      AND v.beat NOT IN (SELECT beat FROM interbeat_interval_extra)";

/// Moves schema 14's beats (set aside as `interbeat_interval_v14` by the
/// SQL of [`PACKED_BEATS_VERSION`]) into the packed table, in key order, a
/// batch at a time: each batch goes in at the new table's right edge
/// (leaves packed full) and is deleted from the old table at once, so the
/// pages it freed take the next batch and the file grows by about a batch
/// instead of a second copy of its largest table. A beat whose values do
/// not pack keeps its row in the side table first. Returns the beats moved.
pub(super) fn move_beats(conn: &Connection) -> Result<u64, StoreError> {
    conn.execute_batch(&format!("{PACKED_V14}; {UNPACKED_TO_EXTRA};"))?;
    let mut insert = conn.prepare(
        "INSERT INTO interbeat_interval (beat, ibi_validity)
         SELECT beat, ibi_validity FROM interbeat_interval_v14_packed ORDER BY beat LIMIT ?1",
    )?;
    let mut delete = conn.prepare("DELETE FROM interbeat_interval_v14 WHERE beat <= ?1")?;
    let mut moved = 0u64;
    loop {
        let n = insert.execute([MOVE_BATCH])?;
        if n == 0 {
            break;
        }
        let last: i64 =
            conn.query_row("SELECT max(beat) FROM interbeat_interval", [], |r| r.get(0))?;
        delete.execute([last])?;
        moved += n as u64;
    }
    drop((insert, delete));
    conn.execute_batch(
        "DROP VIEW interbeat_interval_v14_packed; DROP TABLE interbeat_interval_v14;
         PRAGMA legacy_alter_table = OFF;",
    )?;
    Ok(moved)
}

/// What the migrations from version `from` need beyond their SQL, run in
/// their transaction after the last one: steps that decode JSON or follow
/// the registry, written against the newest schema (so they run on it).
fn after_migrations(conn: &Connection, from: i64) -> Result<(), StoreError> {
    if from < 7 {
        // The *_ts columns (version 7) hold what ouradb decodes, for the
        // rows already stored too; days stored twice keep their newest
        // document. Every row belongs to the first account at this point.
        super::mapping::fill_seconds_columns(conn)?;
        super::keep_one_per_day(conn)?;
        super::rename_rowid_columns(conn)?;
    }
    Ok(())
}

/// The schema version this binary writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].version;

/// The SQL of every migration, oldest first: the documentation of the
/// schema (its comments) for generators such as the Datasette metadata.
pub fn migration_sources() -> impl Iterator<Item = &'static str> {
    MIGRATIONS.iter().map(|m| m.sql)
}

/// An empty database at [`SCHEMA_VERSION`], in memory.
pub(super) fn fresh_in_memory() -> Result<Connection, StoreError> {
    let conn = Connection::open_in_memory()?;
    conn.execute_batch("PRAGMA foreign_keys = ON")?;
    CurrentAccount::register(&conn)?;
    let tx = rusqlite::Transaction::new_unchecked(&conn, TransactionBehavior::Immediate)?;
    for m in MIGRATIONS {
        apply(&tx, m, &untouched)?;
    }
    after_migrations(&tx, 0)?;
    tx.commit()?;
    Ok(conn)
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
    let conn = fresh_in_memory()?;
    let mut stmt = conn.prepare(
        "SELECT name, type FROM sqlite_master WHERE type IN ('table', 'view') \
         AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )?;
    let objects: Vec<(String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    // Generated columns too (hidden 2 and 3): readers see and query them.
    let mut cols =
        conn.prepare("SELECT name FROM pragma_table_xinfo(?1) WHERE hidden <> 1 ORDER BY cid")?;
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

/// Creates the parent directory and, when there is no file yet, the file
/// itself with owner-only permissions before SQLite sees it: the file holds
/// health data, and SQLite would create it with the process umask (usually
/// world-readable). An existing file is never opened here: closing a
/// descriptor of ours would drop every POSIX lock this process's SQLite
/// connections hold on it, and the next reader to close would take the
/// daemon for gone, checkpoint and delete its -wal and -shm.
fn create_private_file(path: &Path) -> Result<(), StoreError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(|e| io_err(path, e))?;
    }
    // `create_new` never opens an existing file; one that appeared since
    // the check (another process creating it) is SQLite's to open.
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io_err(path, e)),
    }
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

/// What the pre-write check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Found {
    /// No file, or an empty one: ouradb may create its schema.
    Empty,
    /// An ouradb database (marked, or recognised by its tables).
    Ouradb,
}

/// What SQLite reads of a file's header and schema.
struct Header {
    application_id: i32,
    user_version: i64,
    tables: Vec<String>,
}

/// Decides whether `path` may be opened by ouradb, reading only, and only
/// through SQLite: `stat` for what the path is, then the header fields and
/// the table list through an `immutable` read-only connection, which
/// creates no -wal or -shm file and takes no lock. Runs before anything
/// writes to the file, and may run while this process has connections to
/// it (the store's and the request account's): SQLite keeps the descriptor
/// of a file it closes while other connections of the process hold locks
/// on it, so those locks stay (a descriptor of our own would drop them).
fn check_file(path: &Path) -> Result<Found, StoreError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Found::Empty),
        Err(e) => return Err(io_err(path, e)),
    };
    if meta.is_dir() {
        return Err(Refusal::Directory {
            path: path.display().to_string(),
            example: path.join("ouradb.sqlite").display().to_string(),
        }
        .into());
    }
    if meta.len() == 0 {
        return Ok(Found::Empty);
    }
    match read_header_settled(path) {
        Ok(h) => verdict(path, h),
        Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::NotADatabase) => {
            Err(not_a_database(path, meta.len(), &e))
        }
        Err(e) => Err(FileError::sqlite(path, &e).into()),
    }
}

/// Whether a SQLite file with `header` is ouradb's, empty, or refused.
fn verdict(path: &Path, header: Header) -> Result<Found, StoreError> {
    let shown = path.display().to_string();
    let Header {
        application_id,
        user_version,
        tables,
    } = header;
    if application_id != APPLICATION_ID && application_id != 0 {
        return Err(Refusal::Foreign {
            path: shown,
            found: format!("its application_id is {application_id:#010x}"),
        }
        .into());
    }
    let ours = |found| {
        if user_version > SCHEMA_VERSION {
            Err(too_new(path, user_version))
        } else {
            Ok(found)
        }
    };
    if application_id == APPLICATION_ID {
        return ours(Found::Ouradb);
    }
    if tables.is_empty() && user_version == 0 {
        return Ok(Found::Empty);
    }
    if OURADB_TABLES
        .iter()
        .all(|t| tables.iter().any(|have| have == t))
    {
        return ours(Found::Ouradb);
    }
    let mut listed: Vec<&str> = tables.iter().map(String::as_str).take(5).collect();
    if tables.len() > 5 {
        listed.push("...");
    }
    Err(Refusal::Foreign {
        path: shown,
        found: if tables.is_empty() {
            format!("an empty SQLite file at user_version {user_version}")
        } else {
            format!(
                "a SQLite database with tables {} at user_version {user_version}",
                listed.join(", ")
            )
        },
    }
    .into())
}

/// A file SQLite refused as "not a database": a damaged database when it
/// starts with SQLite's magic, else another kind of file. Only here are
/// its first bytes read directly: SQLite cannot open the file, so no
/// connection of this process holds a lock on it whose loss would matter.
fn not_a_database(path: &Path, len: u64, e: &rusqlite::Error) -> StoreError {
    use std::io::Read;
    if len >= 100 {
        let mut magic = Vec::with_capacity(16);
        let read = std::fs::File::open(path).and_then(|f| f.take(16).read_to_end(&mut magic));
        if read.is_ok() && magic == b"SQLite format 3\0" {
            return FileError::sqlite(path, e).into();
        }
    }
    Refusal::NotSqlite {
        path: path.display().to_string(),
        found: if len < 100 {
            format!("only {len} bytes long")
        } else {
            "no SQLite header".to_owned()
        },
    }
    .into()
}

/// Tries of [`read_header`] that may meet a checkpoint in progress.
const HEADER_TRIES: u32 = 20;

/// [`read_header`], tried again while it finds the file damaged: an
/// immutable connection takes no lock, so it can read page 1 while another
/// process's checkpoint is writing the file (the header may then count more
/// pages than the file has yet). Damage that lasts is reported.
fn read_header_settled(path: &Path) -> Result<Header, rusqlite::Error> {
    let mut tries = 1;
    loop {
        match read_header(path) {
            Err(e)
                if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseCorrupt)
                    && tries < HEADER_TRIES =>
            {
                tries += 1;
                std::thread::sleep(Duration::from_millis(25));
            }
            other => return other,
        }
    }
}

/// The header fields and tables of a file, read without writing or
/// locking anything.
fn read_header(path: &Path) -> Result<Header, rusqlite::Error> {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut uri = url::Url::from_file_path(&abs)
        .map_err(|()| rusqlite::Error::InvalidPath(abs.clone()))?
        .to_string();
    uri.push_str("?immutable=1");
    let conn = Connection::open_with_flags(
        uri,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let application_id = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    let user_version = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    // The header pragmas read page 1 only. An immutable connection ignores
    // the WAL, so the schema pages it would read for the table list can be
    // mid-change while another process writes (SQLITE_CORRUPT): the list is
    // read only for files not marked as ouradb's, which no ouradb writes.
    if application_id == APPLICATION_ID {
        return Ok(Header {
            application_id,
            user_version,
            tables: Vec::new(),
        });
    }
    let mut stmt = conn.prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )?;
    let tables = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Header {
        application_id,
        user_version,
        tables,
    })
}

/// Opens (creating if needed) a database for writing and brings its schema
/// to [`SCHEMA_VERSION`]. A file that is not ouradb's is refused before
/// anything (even a -wal file) is written.
pub(super) fn open_read_write(path: &Path) -> Result<Connection, StoreError> {
    if check_file(path)? == Found::Empty {
        create_private_file(path).map_err(|e| match e {
            StoreError::Io { source, .. } => FileError::io(path, &source).into(),
            other => other,
        })?;
    }
    open_checked(path).map_err(|e| match e {
        StoreError::Sqlite(s) => FileError::sqlite(path, &s).into(),
        other => other,
    })
}

/// Tries of the busy handler that sleep [`BUSY_FINE_STEP`] before it
/// falls back to [`BUSY_STEP`].
const BUSY_FINE_TRIES: i32 = 50;
const BUSY_FINE_STEP: Duration = Duration::from_micros(100);
const BUSY_STEP: Duration = Duration::from_millis(2);

/// Waits for another connection's write lock for about [`BUSY_TIMEOUT`].
/// SQLite's own handler sleeps 1, 2, 5, 10, … ms between tries, while most
/// locks this process meets are its own page commits and request-account
/// leases, over in well under a millisecond: the limiter's lease waited
/// several milliseconds behind a commit, and every request with it (a
/// 5-year backfill stalled a fifth of its time). Short sleeps first, then
/// coarse ones for a lock another process holds.
fn busy_wait(tries: i32) -> bool {
    match busy_delay(tries) {
        Some(d) => {
            std::thread::sleep(d);
            true
        }
        None => false,
    }
}

/// The sleep before try `tries + 1`, or None once about [`BUSY_TIMEOUT`]
/// has been spent.
pub(super) fn busy_delay(tries: i32) -> Option<Duration> {
    let tries = tries.max(0);
    let fine = tries.min(BUSY_FINE_TRIES);
    let waited = BUSY_FINE_STEP * fine as u32 + BUSY_STEP * (tries - fine) as u32;
    if waited >= BUSY_TIMEOUT {
        return None;
    }
    Some(if tries < BUSY_FINE_TRIES {
        BUSY_FINE_STEP
    } else {
        BUSY_STEP
    })
}

fn open_checked(path: &Path) -> Result<Connection, StoreError> {
    open_checked_with(path, &untouched)
}

/// Opens `path` for writing as [`open_read_write`] does for an existing
/// file, running `tamper` inside the accounts migration (tests).
#[cfg(test)]
pub(super) fn open_tampered(path: &Path, tamper: Tamper<'_>) -> Result<Connection, StoreError> {
    open_checked_with(path, tamper)
}

fn open_checked_with(path: &Path, tamper: Tamper<'_>) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_handler(Some(busy_wait))?;
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
    migrate_with(&conn, path, tamper)?;
    Ok(conn)
}

/// Opens an existing database for reading only; never migrates.
pub(super) fn open_read_only(path: &Path) -> Result<(Connection, i64), StoreError> {
    if !path.exists() {
        return Err(StoreError::Missing {
            path: path.display().to_string(),
        });
    }
    check_file(path)?;
    open_read_only_checked(path).map_err(|e| match e {
        StoreError::Sqlite(s) => FileError::sqlite(path, &s).into(),
        other => other,
    })
}

fn open_read_only_checked(path: &Path) -> Result<(Connection, i64), StoreError> {
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

fn application_id(conn: &Connection) -> Result<i32, StoreError> {
    Ok(conn.query_row("PRAGMA application_id", [], |r| r.get(0))?)
}

/// Brings the file to [`SCHEMA_VERSION`] in one transaction; `tamper`
/// runs inside the accounts rebuild (tests corrupt its copy there).
fn migrate_with(conn: &Connection, path: &Path, tamper: Tamper<'_>) -> Result<(), StoreError> {
    let found = user_version(conn)?;
    if found > SCHEMA_VERSION {
        return Err(too_new(path, found));
    }
    if found == SCHEMA_VERSION {
        // Files written before ouradb marked its databases get the mark
        // now (check_file recognised them by their tables).
        if application_id(conn)? != APPLICATION_ID {
            conn.execute_batch(&format!("PRAGMA application_id = {APPLICATION_ID}"))?;
        }
        return Ok(());
    }
    // IMMEDIATE takes the write lock up front, so two processes opening a
    // fresh file cannot both decide to migrate it.
    let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
    let current = user_version(&tx)?;
    if current > SCHEMA_VERSION {
        return Err(too_new(path, current));
    }
    // The steps after the SQL read and write through the store's own
    // statements, which name the account.
    CurrentAccount::register(&tx)?;
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        apply(&tx, m, tamper)?;
    }
    after_migrations(&tx, current)?;
    tx.execute_batch(&format!("PRAGMA application_id = {APPLICATION_ID}"))?;
    tx.commit()?;
    Ok(())
}
