//! Reading a database file directly, as a dashboard would: a separate
//! read-only connection and plain SQL. These readers exist for the tests
//! only; the daemon never needs them, so they are not part of `store`.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use ouradb::registry::DataType;
use rusqlite::OptionalExtension;
use rusqlite::types::ValueRef;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// One child row: (offset, unix seconds, value).
pub type ChildRow = (i64, Option<i64>, Option<f64>);

/// Every column of one row, as JSON values: integers, reals, text or null.
pub type Row = Map<String, Value>;

/// The integer key SQLite assigns to documents with child tables; it
/// depends on insertion order, so it is not data.
const SURROGATE_KEY: &str = "pk";

/// Columns that record when ouradb saw something, not what Oura served.
/// The packed key of `interbeat_interval`: the account above the time, both
/// also computed columns of their own; it differs between two files holding
/// the same beats under different account numbers.
const PACKED_KEY: &str = "beat";

const TIMING_COLUMNS: &[&str] = &["first_seen", "last_seen", "last_changed", "created_at"];

/// Columns of `sync_state` that say where the data stands, as opposed to
/// when things happened or how much it cost.
const SYNC_STATE_POSITION: &[&str] = &[
    "data_type",
    "high_water",
    "backfill_floor",
    "backfill_complete",
    "documents",
];

/// Opens a database the way a dashboard would: read-only, separate
/// connection, waiting out a writer's checkpoint instead of failing.
pub fn reader(db: &Path) -> rusqlite::Connection {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open read-only");
    conn.busy_timeout(Duration::from_secs(5))
        .expect("busy timeout");
    conn
}

fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

fn json_of(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => i.into(),
        ValueRef::Real(f) => f.into(),
        ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned().into(),
        ValueRef::Blob(b) => hex::encode(b).into(),
    }
}

fn rows_of(
    conn: &rusqlite::Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> rusqlite::Result<Vec<Row>> {
    let mut stmt = conn.prepare(sql)?;
    let names: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
    stmt.query_map(params, |r| {
        let mut m = Map::new();
        for (i, n) in names.iter().enumerate() {
            m.insert(n.clone(), json_of(r.get_ref(i)?));
        }
        Ok(m)
    })?
    .collect()
}

/// Row count of a table (for a data type: documents, or samples for time
/// series).
pub fn count(db: &Path, table: &str) -> i64 {
    count_on(&reader(db), table)
}

/// [`count`] on an open connection.
pub fn count_on(conn: &rusqlite::Connection, table: &str) -> i64 {
    conn.query_row(&format!("SELECT count(*) FROM {}", quote(table)), [], |r| {
        r.get(0)
    })
    .unwrap()
}

/// The stored `raw_json` of a document.
pub fn document_json(db: &Path, dt: &DataType, id: &str) -> rusqlite::Result<Option<String>> {
    reader(db)
        .query_row(
            &format!("SELECT raw_json FROM {} WHERE id = ?1", quote(dt.table)),
            [id],
            |r| r.get(0),
        )
        .optional()
}

/// Every column of a stored document, bookkeeping included.
pub fn document_row(db: &Path, dt: &DataType, id: &str) -> rusqlite::Result<Option<Row>> {
    let sql = format!("SELECT * FROM {} WHERE id = ?1", quote(dt.table));
    Ok(rows_of(&reader(db), &sql, [id])?.into_iter().next())
}

/// Child rows of a document in one of the type's sample or interval
/// tables, ordered by offset: (offset, unix seconds, value). Interval codes
/// come back as reals. A table that is not one of the type's child tables
/// is an error.
pub fn child_rows(
    db: &Path,
    dt: &DataType,
    child_table: &str,
    document_id: &str,
) -> Result<Vec<ChildRow>, String> {
    // Sample tables are keyed by the parent's integer key; the interval
    // views already name the document by its id.
    let sql = if let Some(s) = dt.samples.iter().find(|s| s.table == child_table) {
        format!(
            "SELECT c.\"offset\", c.timestamp, c.value FROM {} c JOIN {} p ON p.{SURROGATE_KEY} = c.document_pk WHERE p.id = ?1 ORDER BY c.\"offset\"",
            quote(s.table),
            quote(dt.table)
        )
    } else if let Some(s) = dt.interval_strings.iter().find(|s| s.table == child_table) {
        format!(
            "SELECT \"offset\", timestamp, value FROM {} WHERE document_id = ?1 ORDER BY \"offset\"",
            quote(s.table)
        )
    } else {
        return Err(format!("{child_table} is not a child table of {}", dt.name));
    };
    let conn = reader(db);
    let mut stmt = conn.prepare(&sql).map_err(|e| e.to_string())?;
    stmt.query_map([document_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .and_then(|rows| rows.collect())
        .map_err(|e| e.to_string())
}

/// Time-series rows with `from <= ts < to` (unix seconds), ordered by key.
pub fn series_rows(db: &Path, dt: &DataType, from: i64, to: i64) -> rusqlite::Result<Vec<Row>> {
    assert!(dt.is_time_series(), "{} is not a time series", dt.name);
    let sql = format!(
        "SELECT * FROM {} WHERE ts >= ?1 AND ts < ?2 ORDER BY 1, 2",
        quote(dt.table)
    );
    rows_of(&reader(db), &sql, [from, to])
}

/// A digest of everything stored: one line per table, `name rows sha256`.
/// Every column and row counts except the times ouradb records
/// ([`TIMING_COLUMNS`]), SQLite's integer keys (references to them read as
/// the parent's id) and, for `sync_state`, anything but where each type
/// stands (cursors, backfill state, document count): not when it ran, its
/// errors or the requests it spent. `_`-prefixed tables are bookkeeping
/// (the request log), not data. Two databases holding the same data and
/// cursors have equal fingerprints, whatever order they were written in.
pub fn fingerprint(db: &Path) -> String {
    fingerprint_of(db, None)
}

/// [`fingerprint`] of one account's rows (`account.id`), without the
/// `account` column and table: equal for two files whose accounts hold the
/// same data, whatever their numbers and whatever else the files hold.
pub fn account_fingerprint(db: &Path, account: i64) -> String {
    fingerprint_of(db, Some(account))
}

fn fingerprint_of(db: &Path, account: Option<i64>) -> String {
    let conn = reader(db);
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '\\_%' ESCAPE '\\' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<Vec<String>, _>>()
        .unwrap()
        .into_iter()
        .filter(|t| account.is_none() || t != "account")
        .collect();
    let mut out = String::new();
    for table in tables {
        // (name, position in the primary key or 0)
        // Computed columns included: a packed key's account and time.
        let info: Vec<(String, i64)> = conn
            .prepare("SELECT name, pk FROM pragma_table_xinfo(?1)")
            .unwrap()
            .query_map([&table], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let parents: HashMap<String, String> = conn
            .prepare(
                "SELECT \"from\", \"table\" FROM pragma_foreign_key_list(?1) WHERE \"to\" = ?2",
            )
            .unwrap()
            .query_map([table.as_str(), SURROGATE_KEY], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let expr = |name: &str| match parents.get(name) {
            Some(parent) => format!(
                "(SELECT id FROM {} WHERE {SURROGATE_KEY} = t.{})",
                quote(parent),
                quote(name)
            ),
            None => format!("t.{}", quote(name)),
        };
        let per_account = info.iter().any(|(name, _)| name == "account");
        let only = match account {
            Some(a) if per_account => format!("WHERE t.account = {a}"),
            _ => String::new(),
        };
        let cols: Vec<&(String, i64)> = info
            .iter()
            .filter(|(name, _)| account.is_none() || name != "account")
            .filter(|(name, _)| {
                if table == "sync_state" {
                    SYNC_STATE_POSITION.contains(&name.as_str())
                } else {
                    name != SURROGATE_KEY
                        && name != PACKED_KEY
                        && !TIMING_COLUMNS.contains(&name.as_str())
                }
            })
            .collect();
        let mut key: Vec<&(String, i64)> = info
            .iter()
            .filter(|(name, pk)| *pk > 0 && name != SURROGATE_KEY)
            .filter(|(name, _)| account.is_none() || name != "account")
            .collect();
        key.sort_by_key(|(_, pk)| *pk);
        // A packed key is the account and the time: the time orders one
        // account's rows as the key does.
        let by_time = ("ts_ms".to_owned(), 1);
        if key.iter().any(|(n, _)| n == PACKED_KEY) {
            key = vec![&by_time];
        }
        let order: Vec<String> = if key.is_empty() {
            cols.iter().map(|(n, _)| expr(n)).collect()
        } else {
            key.iter().map(|(n, _)| expr(n)).collect()
        };
        let sql = format!(
            "SELECT {} FROM {} t {only} ORDER BY {}",
            cols.iter()
                .map(|(n, _)| expr(n))
                .collect::<Vec<_>>()
                .join(", "),
            quote(&table),
            order.join(", ")
        );
        let mut hash = Sha256::new();
        let mut rows = 0u64;
        let mut stmt = conn.prepare(&sql).unwrap();
        let mut q = stmt.query([]).unwrap();
        while let Some(r) = q.next().unwrap() {
            rows += 1;
            for i in 0..cols.len() {
                match r.get_ref(i).unwrap() {
                    ValueRef::Null => hash.update(b"N"),
                    ValueRef::Integer(v) => {
                        hash.update(b"I");
                        hash.update(v.to_le_bytes());
                    }
                    ValueRef::Real(v) => {
                        hash.update(b"R");
                        hash.update(v.to_bits().to_le_bytes());
                    }
                    ValueRef::Text(t) => {
                        hash.update(b"T");
                        hash.update((t.len() as u64).to_le_bytes());
                        hash.update(t);
                    }
                    ValueRef::Blob(b) => {
                        hash.update(b"B");
                        hash.update((b.len() as u64).to_le_bytes());
                        hash.update(b);
                    }
                }
            }
        }
        let _ = writeln!(out, "{table} {rows} {}", hex::encode(hash.finalize()));
    }
    out
}

/// [`fingerprint`] without its `sync_state` line: the data alone, for
/// comparing across runs that rightly move cursors forward (a later day's
/// incremental run over unchanged data).
pub fn data_fingerprint(db: &Path) -> String {
    fingerprint(db)
        .lines()
        .filter(|l| !l.starts_with("sync_state "))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Every view of `db`, by name.
pub fn views(db: &Path) -> Vec<String> {
    let conn = reader(db);
    let mut stmt = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'view' ORDER BY name")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// The rows `view` shows for `account`, each as JSON without the account
/// column and without `document_pk` (a key local to its file), sorted: two
/// files hold the same rows for an account when these are equal.
pub fn view_rows_of_account(db: &Path, view: &str, account: i64) -> Vec<String> {
    let conn = reader(db);
    let sql = format!("SELECT * FROM {} WHERE account = ?1", quote(view));
    let rows = rows_of(&conn, &sql, [account])
        .unwrap_or_else(|e| panic!("{view} cannot be read by account: {e}"));
    let mut out: Vec<String> = rows
        .into_iter()
        .map(|mut r| {
            r.remove("account");
            r.remove("document_pk");
            Value::Object(r).to_string()
        })
        .collect();
    out.sort_unstable();
    out
}
