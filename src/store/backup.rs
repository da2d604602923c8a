//! Online backups and file checks: `ouradb backup` and `ouradb check`.
//!
//! A backup is `VACUUM INTO` from a read-only connection: SQLite copies
//! one read transaction's snapshot (in WAL mode a writer carries on
//! meanwhile), so the copy is the database as committed at one instant,
//! never a mix of pages from before and after a commit. The copy goes to a
//! temporary file beside the destination, must pass `PRAGMA
//! integrity_check`, is fsynced and only then renamed over the
//! destination: a crash leaves either the old destination or the new one.
//!
//! The database file itself is only ever opened by SQLite; the temporary
//! file and the destination are other files, opened here to fsync them.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use super::StoreError;
use super::schema::{self, APPLICATION_ID, SCHEMA_VERSION};

/// Why a backup was refused or failed. Nothing is left at the destination
/// (nor beside it) when one is returned.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(
        "{dest} is the database itself ({database}); name another file for the backup, e.g. {database}.backup"
    )]
    SameFile { dest: String, database: String },
    #[error("{0} already exists; pass --force to replace it, or name another file")]
    Exists(String),
    #[error("{0} is a directory; name the backup file inside it, e.g. {0}/ouradb-backup.sqlite")]
    IsDirectory(String),
    #[error("the folder of {dest} does not exist; create {dir} first")]
    NoFolder { dest: String, dir: String },
    #[error(
        "{0}: the path is not valid UTF-8, which SQLite's VACUUM INTO needs; choose another name"
    )]
    NotUtf8(String),
    #[error("cannot write the backup {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("copying {database} to {dest} failed: {error}; {advice}")]
    Copy {
        database: String,
        dest: String,
        /// SQLite's message.
        error: String,
        advice: String,
    },
    #[error(
        "the copy of {database} fails PRAGMA integrity_check ({first}); nothing was written to {dest}; run `ouradb check --database {database}` to see what is damaged"
    )]
    CopyDamaged {
        database: String,
        dest: String,
        first: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A finished backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupReport {
    pub dest: PathBuf,
    /// Size of the written file.
    pub bytes: u64,
    /// Schema version of the copy (the source's).
    pub schema_version: i64,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Writes a consistent copy of the database at `database` to `dest`.
/// Refuses to overwrite `dest` unless `force`, and never writes to the
/// database itself (nor to a path that is it, its -wal or -shm).
pub fn backup(database: &Path, dest: &Path, force: bool) -> Result<BackupReport, BackupError> {
    let (conn, version) = schema::open_read_only(database)?;
    check_destination(database, dest, force)?;
    let tmp = TempFile::create(temp_path(dest))?;
    let tmp_text = tmp
        .0
        .to_str()
        .ok_or_else(|| BackupError::NotUtf8(dest.display().to_string()))?
        .to_owned();
    conn.execute("VACUUM INTO ?1", [&tmp_text])
        .map_err(|error| BackupError::Copy {
            database: database.display().to_string(),
            dest: dest.display().to_string(),
            advice: super::error::advice(super::error::classify_sqlite(&error), &tmp.0),
            error: error.to_string(),
        })?;
    drop(conn);
    verify_copy(database, dest, &tmp.0)?;
    File::open(&tmp.0)
        .and_then(|f| f.sync_all())
        .map_err(io(&tmp.0))?;
    std::fs::rename(&tmp.0, dest).map_err(io(dest))?;
    tmp.disarm();
    sync_dir(dest)?;
    let bytes = std::fs::metadata(dest).map_err(io(dest))?.len();
    Ok(BackupReport {
        dest: dest.to_path_buf(),
        bytes,
        schema_version: version,
    })
}

/// The refusals that need no copy: a directory, an existing file without
/// `force`, a missing folder, or the database (or its -wal/-shm) itself.
fn check_destination(database: &Path, dest: &Path, force: bool) -> Result<(), BackupError> {
    let shown = || dest.display().to_string();
    if dest.is_dir() {
        return Err(BackupError::IsDirectory(shown()));
    }
    let db = std::fs::canonicalize(database).map_err(io(database))?;
    let dir = match dest.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(p) => p.to_path_buf(),
        None => PathBuf::from("."),
    };
    let Ok(dir_abs) = std::fs::canonicalize(&dir) else {
        return Err(BackupError::NoFolder {
            dest: shown(),
            dir: dir.display().to_string(),
        });
    };
    let name = dest
        .file_name()
        .ok_or_else(|| BackupError::IsDirectory(shown()))?;
    let target = dir_abs.join(name);
    let same_inode = |a: &Path, b: &Path| match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    };
    let db_files = ["", "-wal", "-shm", "-journal"].map(|s| {
        let mut p = db.clone().into_os_string();
        p.push(s);
        PathBuf::from(p)
    });
    if db_files.contains(&target) || same_inode(&db, dest) {
        return Err(BackupError::SameFile {
            dest: shown(),
            database: database.display().to_string(),
        });
    }
    if !force && std::fs::symlink_metadata(dest).is_ok() {
        return Err(BackupError::Exists(shown()));
    }
    Ok(())
}

/// `.NAME.PID.ouradb-backup` beside `dest`: same folder, so the final
/// rename is atomic; hidden and named after the process, so two backups
/// to one place do not share it.
fn temp_path(dest: &Path) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dest.with_file_name(format!(".{name}.{}.ouradb-backup", std::process::id()))
}

/// The temporary copy: created empty and private (the copy holds health
/// data; VACUUM INTO accepts an empty file), removed with any journal
/// SQLite left beside it unless the copy was renamed into place.
struct TempFile(PathBuf);

impl TempFile {
    fn create(path: PathBuf) -> Result<TempFile, BackupError> {
        // A leftover of a crashed backup of this same pid is ours to replace.
        let _ = std::fs::remove_file(&path);
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(io(&path))?;
        Ok(TempFile(path))
    }

    fn disarm(self) {
        std::mem::forget(self);
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        for suffix in ["", "-journal", "-wal", "-shm"] {
            let mut p = self.0.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(PathBuf::from(p));
        }
    }
}

/// Checks the copy before it replaces anything: a self-contained file
/// (rollback journal, so restoring it is one `cp`), ouradb's mark, and a
/// clean `integrity_check`.
fn verify_copy(database: &Path, dest: &Path, tmp: &Path) -> Result<(), BackupError> {
    let damaged = |first: String| BackupError::CopyDamaged {
        database: database.display().to_string(),
        dest: dest.display().to_string(),
        first,
    };
    let run = || -> Result<Vec<String>, rusqlite::Error> {
        let conn = Connection::open_with_flags(
            tmp,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.query_row("PRAGMA journal_mode = DELETE", [], |_| Ok(()))?;
        let mut problems = integrity_messages(&conn)?;
        let id: i32 = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
        if id != APPLICATION_ID && id != 0 {
            problems.push(format!("application_id {id:#010x} is not ouradb's"));
        }
        conn.close().map_err(|(_, e)| e)?;
        Ok(problems)
    };
    match run() {
        Ok(problems) if problems.is_empty() => Ok(()),
        Ok(problems) => Err(damaged(problems.join("; "))),
        Err(e) => Err(damaged(e.to_string())),
    }
}

/// `PRAGMA integrity_check` messages other than its lone `ok`, one per
/// line (a row can hold several), without its `*** in database main ***`
/// heading.
fn integrity_messages(conn: &Connection) -> Result<Vec<String>, rusqlite::Error> {
    let mut stmt = conn.prepare("PRAGMA integrity_check(100)")?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    let mut out = Vec::new();
    for r in rows {
        let msg = r?;
        out.extend(
            msg.lines()
                .filter(|l| *l != "ok" && !l.starts_with("***") && !l.trim().is_empty())
                .map(str::to_owned),
        );
    }
    Ok(out)
}

/// Makes the rename durable: fsync of the folder holding `dest`.
fn sync_dir(dest: &Path) -> Result<(), BackupError> {
    let dir = match dest.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(p) => p,
        None => Path::new("."),
    };
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

/// Child rows whose parent is gone, per (table, parent table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrphanRows {
    pub table: String,
    pub parent: String,
    pub rows: i64,
}

/// What `ouradb check` found in a file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    pub schema_version: i64,
    pub application_id: i32,
    /// `PRAGMA integrity_check` messages (empty: ok).
    pub integrity: Vec<String>,
    /// Tables (and the tables of indexes) the integrity messages name.
    pub damaged_tables: Vec<String>,
    /// `PRAGMA foreign_key_check`, grouped.
    pub orphans: Vec<OrphanRows>,
    /// Tables whose columns do not match what this build maps documents to.
    pub schema_mismatch: Vec<String>,
}

impl CheckReport {
    pub fn is_ok(&self) -> bool {
        self.integrity.is_empty() && self.orphans.is_empty() && self.schema_mismatch.is_empty()
    }

    /// Whether the file is older than this build (it is migrated by the
    /// next `ouradb sync` or daemon start; not a problem).
    pub fn needs_migration(&self) -> bool {
        self.schema_version < SCHEMA_VERSION
    }
}

/// Checks the file at `path` without writing to it: header and schema
/// version (a foreign, non-SQLite or too-new file is refused as on every
/// open), integrity, foreign keys and the tables the registry maps.
pub fn check(path: &Path) -> Result<CheckReport, StoreError> {
    let (conn, version) = schema::open_read_only(path)?;
    let file_err = |e: rusqlite::Error| StoreError::from(super::error::FileError::sqlite(path, &e));
    let mut report = CheckReport {
        schema_version: version,
        application_id: conn
            .query_row("PRAGMA application_id", [], |r| r.get(0))
            .map_err(file_err)?,
        ..CheckReport::default()
    };
    report.integrity = match integrity_messages(&conn) {
        Ok(m) => m,
        // Damage can stop the check itself: that is its finding.
        Err(e) => vec![e.to_string()],
    };
    if !report.integrity.is_empty() {
        report.damaged_tables = damaged_tables(&conn, &report.integrity);
        return Ok(report);
    }
    report.orphans = orphans(&conn).map_err(file_err)?;
    if version == SCHEMA_VERSION {
        for dt in crate::registry::DATA_TYPES {
            if let Err(e) = super::mapping::build(&conn, dt) {
                report.schema_mismatch.push(format!("{}: {e}", dt.table));
            }
        }
    }
    Ok(report)
}

fn orphans(conn: &Connection) -> Result<Vec<OrphanRows>, rusqlite::Error> {
    let mut stmt = conn.prepare(
        "SELECT \"table\", parent, count(*) FROM pragma_foreign_key_check GROUP BY 1, 2 ORDER BY 1, 2",
    )?;
    stmt.query_map([], |r| {
        Ok(OrphanRows {
            table: r.get(0)?,
            parent: r.get(1)?,
            rows: r.get(2)?,
        })
    })?
    .collect()
}

/// Tables named by integrity messages: `Tree N ...` (a b-tree's root page)
/// and `... index NAME` (an index of a table). Best effort: a damaged
/// schema table names nothing.
fn damaged_tables(conn: &Connection, messages: &[String]) -> Vec<String> {
    let Ok(mut stmt) = conn.prepare("SELECT name, tbl_name, rootpage FROM sqlite_master") else {
        return Vec::new();
    };
    let Ok(objects) = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<i64>>(2)?,
            ))
        })
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
    else {
        return Vec::new();
    };
    let mut out: Vec<String> = Vec::new();
    for m in messages {
        let words: Vec<&str> = m.split([' ', ':', ',']).filter(|w| !w.is_empty()).collect();
        for pair in words.windows(2) {
            let hit = match pair[0] {
                "Tree" | "tree" => pair[1]
                    .parse::<i64>()
                    .ok()
                    .and_then(|root| objects.iter().find(|o| o.2 == Some(root))),
                "index" => objects.iter().find(|o| o.0 == pair[1]),
                _ => None,
            };
            if let Some((_, table, _)) = hit
                && !out.contains(table)
            {
                out.push(table.clone());
            }
        }
    }
    out
}
