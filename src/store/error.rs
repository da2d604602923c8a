//! What a store error means for the user: each failure is put in one class
//! (busy, full disk, read-only, corrupt, constraint, bad document) and each
//! class has its own advice, so a lock held by another process is never
//! answered with "check disk space".

use std::path::Path;

use rusqlite::ErrorCode;

use super::StoreError;

pub use crate::error_kind::ErrorClass;

/// The class of a SQLite error.
pub fn classify_sqlite(e: &rusqlite::Error) -> ErrorClass {
    match e.sqlite_error() {
        Some(f) => match f.code {
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => ErrorClass::Busy,
            ErrorCode::DiskFull => ErrorClass::DiskFull,
            ErrorCode::ReadOnly | ErrorCode::PermissionDenied | ErrorCode::CannotOpen => {
                ErrorClass::ReadOnly
            }
            ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => ErrorClass::Corrupt,
            // SQLITE_IOERR_SHORT_READ (522): the file ends where its header
            // says pages are, i.e. a truncated file.
            ErrorCode::SystemIoFailure if f.extended_code == 522 => ErrorClass::Corrupt,
            ErrorCode::ConstraintViolation => ErrorClass::Constraint,
            _ => ErrorClass::Other,
        },
        None => match e {
            rusqlite::Error::FromSqlConversionFailure(..)
            | rusqlite::Error::InvalidColumnType(..) => ErrorClass::Corrupt,
            _ => ErrorClass::Other,
        },
    }
}

fn classify_io(e: &std::io::Error) -> ErrorClass {
    match e.kind() {
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => {
            ErrorClass::ReadOnly
        }
        std::io::ErrorKind::StorageFull => ErrorClass::DiskFull,
        _ => ErrorClass::Other,
    }
}

/// The class of any store error.
pub fn classify(e: &StoreError) -> ErrorClass {
    match e {
        StoreError::Sqlite(s) => classify_sqlite(s),
        StoreError::Io { source, .. } => classify_io(source),
        StoreError::File(f) => f.class,
        StoreError::Invalid(_) => ErrorClass::BadDocument,
        StoreError::TooNew { .. } | StoreError::Refused(_) => ErrorClass::Refused,
        StoreError::Schema(_) | StoreError::Missing { .. } => ErrorClass::Other,
        StoreError::MigrationProof { .. } => ErrorClass::Refused,
    }
}

/// What to do about an error of `class` on the database at `path`.
pub fn advice(class: ErrorClass, path: &Path) -> String {
    let p = path.display();
    match class {
        ErrorClass::Busy => format!(
            "{p} is locked by another process (another `ouradb sync`, the daemon, or a program holding a write transaction) for longer than 5 s; let it finish or stop it, then run again"
        ),
        ErrorClass::DiskFull => format!(
            "the disk holding {p} is full; free some space and run again (committed pages are intact)"
        ),
        ErrorClass::ReadOnly => format!(
            "{p} cannot be written (read-only file, directory or file system, or another owner); ouradb needs to write the file and its -wal and -shm files beside it: fix the permissions or point storage.database elsewhere"
        ),
        ErrorClass::Corrupt => format!(
            "{p} is damaged; see what is wrong with `ouradb check --database {p}`, then restore it from a backup (`ouradb backup` makes them), or move it aside and run `ouradb sync` to fetch everything again"
        ),
        ErrorClass::Constraint => {
            "a write broke a database constraint; this is a bug in ouradb, please report it with the data type".to_owned()
        }
        ErrorClass::BadDocument => {
            "Oura sent a document ouradb cannot store; the next run retries, report it if it keeps happening".to_owned()
        }
        ErrorClass::Refused | ErrorClass::Other => String::new(),
    }
}

/// A store error while opening or checking one file, with its path (once,
/// plus in the command to run) and advice in one line.
#[derive(Debug, thiserror::Error)]
#[error("{}", describe_file_error(self))]
pub struct FileError {
    pub path: String,
    pub class: ErrorClass,
    /// SQLite's own words, e.g. "file is not a database".
    pub detail: String,
}

fn describe_file_error(e: &FileError) -> String {
    match advice(e.class, Path::new(&e.path)) {
        a if a.is_empty() => format!("database {}: {}", e.path, e.detail),
        a => format!("{a} ({})", e.detail),
    }
}

impl FileError {
    pub(crate) fn sqlite(path: &Path, e: &rusqlite::Error) -> FileError {
        FileError {
            path: path.display().to_string(),
            class: classify_sqlite(e),
            detail: format!("SQLite: {}", sqlite_detail(e)),
        }
    }

    pub(crate) fn io(path: &Path, e: &std::io::Error) -> FileError {
        FileError {
            path: path.display().to_string(),
            class: classify_io(e),
            detail: e.to_string(),
        }
    }
}

/// SQLite's own message, without rusqlite's "Error code 26: " prefix and
/// repetition ("file is not a database: file is not a database").
fn sqlite_detail(e: &rusqlite::Error) -> String {
    match e {
        rusqlite::Error::SqliteFailure(_, Some(m)) => m.clone(),
        rusqlite::Error::SqliteFailure(f, None) => {
            let text = f.to_string();
            match text.split_once(": ") {
                Some((code, rest)) if code.starts_with("Error code") => rest.to_owned(),
                _ => text,
            }
        }
        other => other.to_string(),
    }
}

/// Why a file was refused before anything was written to it.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error(
        "{path} is not an ouradb database ({found}); ouradb wrote nothing to it. Point storage.database at a new file"
    )]
    Foreign { path: String, found: String },
    #[error(
        "{path} is not a SQLite database, or it is damaged ({found}); ouradb wrote nothing to it. Check it with `sqlite3 {path} \"PRAGMA integrity_check\"`, restore it from a backup, or point storage.database at a new file"
    )]
    NotSqlite { path: String, found: String },
    #[error(
        "{path} is a directory, not a database file; point storage.database (or --database) at a file, e.g. {example}"
    )]
    Directory { path: String, example: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_class_has_its_own_advice_naming_the_file() {
        let p = Path::new("/data/ouradb.sqlite");
        let busy = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            Some("database is locked".into()),
        );
        assert_eq!(classify_sqlite(&busy), ErrorClass::Busy);
        let full = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            None,
        );
        assert_eq!(classify_sqlite(&full), ErrorClass::DiskFull);
        let short_read = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_IOERR_SHORT_READ),
            None,
        );
        assert_eq!(classify_sqlite(&short_read), ErrorClass::Corrupt);
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert_eq!(classify_io(&denied), ErrorClass::ReadOnly);
        assert_eq!(
            classify(&StoreError::Invalid("no id".into())),
            ErrorClass::BadDocument
        );
        let mut seen = std::collections::HashSet::new();
        for class in [
            ErrorClass::Busy,
            ErrorClass::DiskFull,
            ErrorClass::ReadOnly,
            ErrorClass::Corrupt,
            ErrorClass::Constraint,
            ErrorClass::BadDocument,
        ] {
            let a = advice(class, p);
            assert!(seen.insert(a.clone()), "{class:?} shares its advice");
            assert!(!a.contains("disk space") || class == ErrorClass::DiskFull);
        }
        assert!(
            advice(ErrorClass::Busy, p)
                .contains("/data/ouradb.sqlite is locked by another process")
        );
        assert!(advice(ErrorClass::DiskFull, p).contains("is full"));
        let e = FileError::io(p, &denied).to_string();
        assert!(
            e.starts_with("/data/ouradb.sqlite cannot be written")
                && e.ends_with("(permission denied)"),
            "{e}"
        );
        let e = FileError::sqlite(p, &full).to_string();
        assert!(
            e.starts_with("the disk holding /data/ouradb.sqlite is full"),
            "{e}"
        );
    }
}
