//! `ouradb backup DEST` and `ouradb check`: a consistent copy of the
//! database while the daemon writes, and a check that says what is wrong
//! with a file and how to recover.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use crate::registry::{self, DataType};
use crate::store::{self, CheckReport, Store};

/// `ouradb backup DEST [--force]`.
pub fn backup(database: &Path, dest: &Path, force: bool) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let report = store::backup(database, dest, force)?;
    println!(
        "backup of {} written to {}: {} in {:.2} s (schema version {}, integrity_check ok)",
        database.display(),
        report.dest.display(),
        human_size(report.bytes),
        started.elapsed().as_secs_f64(),
        report.schema_version
    );
    Ok(ExitCode::SUCCESS)
}

/// `1.4 MiB (1468006 bytes)`.
fn human_size(bytes: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    if bytes >= 1024 * 1024 {
        format!("{:.1} MiB ({bytes} bytes)", bytes as f64 / MIB)
    } else {
        format!("{:.1} KiB ({bytes} bytes)", bytes as f64 / 1024.0)
    }
}

/// `ouradb check`: exit 0 when the file is sound, 1 with the problems and
/// the way to recover otherwise.
pub fn check(database: &Path) -> anyhow::Result<ExitCode> {
    let report = match store::check(database) {
        Ok(r) => r,
        Err(e) => {
            let damaged = e.class() == store::error::ErrorClass::Corrupt;
            eprintln!("ouradb: {e}");
            if damaged {
                eprint!("{}", recovery(database, &[]));
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    println!("database: {}", database.display());
    print!("{}", findings(&report));
    if report.is_ok() {
        println!("no problems found");
        return Ok(ExitCode::SUCCESS);
    }
    let types = affected_types(&report);
    print!("{}", recovery(database, &types));
    Ok(ExitCode::FAILURE)
}

/// One line per check, with the problems under it.
fn findings(r: &CheckReport) -> String {
    let mut out = String::new();
    let version = if r.needs_migration() {
        format!(
            "{} (older than this ouradb's {}: the next `ouradb sync` or daemon start migrates it)",
            r.schema_version,
            store::SCHEMA_VERSION
        )
    } else {
        format!("{} (current)", r.schema_version)
    };
    out.push_str(&format!("schema version: {version}\n"));
    // A foreign id is refused before the checks run; 0 is a file from
    // before ouradb marked its databases.
    out.push_str(if r.application_id == 0 {
        "application_id: not set (an early ouradb file; the next `ouradb sync` marks it)\n"
    } else {
        "application_id: ouradb's\n"
    });
    if r.integrity.is_empty() {
        out.push_str("integrity_check: ok\n");
    } else {
        out.push_str(&format!(
            "integrity_check: DAMAGED ({} problem(s)):\n",
            r.integrity.len()
        ));
        for m in r.integrity.iter().take(10) {
            out.push_str(&format!("  {}\n", super::cut(m, 200)));
        }
        if !r.damaged_tables.is_empty() {
            out.push_str(&format!(
                "damaged tables: {}\n",
                r.damaged_tables.join(", ")
            ));
        }
        // Foreign keys and columns are not checked on a damaged file.
        return out;
    }
    if r.orphans.is_empty() {
        out.push_str("foreign keys: ok\n");
    } else {
        for o in &r.orphans {
            out.push_str(&format!(
                "foreign keys: {} row(s) of {} belong to {} documents that are gone\n",
                o.rows, o.table, o.parent
            ));
        }
    }
    if r.schema_mismatch.is_empty() {
        out.push_str("tables: ok\n");
    } else {
        for m in &r.schema_mismatch {
            out.push_str(&format!("tables: {m}\n"));
        }
    }
    out
}

/// The data types whose tables (documents, samples, intervals) a problem touches.
fn affected_types(r: &CheckReport) -> Vec<&'static DataType> {
    let mut tables: Vec<&str> = r.damaged_tables.iter().map(String::as_str).collect();
    for o in &r.orphans {
        tables.push(&o.table);
        tables.push(&o.parent);
    }
    for m in &r.schema_mismatch {
        tables.push(m.split(':').next().unwrap_or(""));
    }
    registry::DATA_TYPES
        .iter()
        .filter(|dt| {
            tables.iter().any(|t| {
                *t == dt.table
                    || dt.samples.iter().any(|s| s.table == *t)
                    || dt.interval_strings.iter().any(|s| s.table == *t)
            })
        })
        .collect()
}

/// How to get a sound file back: the backup first, then salvage and
/// re-fetching the affected types (each with its command).
fn recovery(database: &Path, types: &[&'static DataType]) -> String {
    let p = database.display();
    let mut out = format!(
        "how to recover:\n  \
         1. stop whatever writes to it: systemctl --user stop ouradb\n  \
         2. restore your latest backup (made by `ouradb backup DEST`): \
         ouradb check --database BACKUP && cp BACKUP {p}\n  \
         3. without a backup, keep what SQLite can still read: \
         sqlite3 {p} .recover | sqlite3 {p}.recovered && mv {p} {p}.damaged && mv {p}.recovered {p}\n"
    );
    if types.is_empty() {
        out.push_str(&format!(
            "     then run `ouradb sync`; or move {p} aside and run `ouradb sync` to fetch everything again\n"
        ));
        return out;
    }
    let since = first_days(database, types);
    out.push_str("     then fetch the affected data types again:\n");
    for (dt, day) in types.iter().zip(since) {
        out.push_str(&format!(
            "       ouradb sync --type {} --since {day}\n",
            dt.name
        ));
    }
    out
}

/// Where each type's history starts (its backfill floor), or a
/// placeholder when the file cannot tell.
fn first_days(database: &Path, types: &[&'static DataType]) -> Vec<String> {
    let store = Store::open_read_only(database).ok();
    types
        .iter()
        .map(|dt| {
            store
                .as_ref()
                .and_then(|s| s.sync_state(dt).ok())
                .and_then(|s| s.backfill_floor)
                .map(|d| d.to_string())
                .unwrap_or_else(|| "FIRST-DAY-OF-YOUR-HISTORY".into())
        })
        .collect()
}
