//! The generic mapping from API JSON to table rows.
//!
//! Nothing here knows a particular data type: each table's columns are read
//! from the database once at open (`PRAGMA table_info`) and matched to JSON
//! fields by name, nested objects through the registry's `flatten` prefixes.
//! The SQL for every statement is built once here and then reused through
//! rusqlite's prepared-statement cache.

use std::collections::{BTreeMap, HashMap, HashSet};

use rusqlite::Connection;
use rusqlite::types::Value as Sql;
use rusqlite::types::{ToSqlOutput, ValueRef};
use serde_json::Value;

use super::StoreError;
use crate::registry::{DataType, NaturalKey, PackedFields, SYNTHETIC_ID_PREFIX, SampleStorage};
use crate::rows::{Field, RawRow};

/// Columns of document tables that ouradb fills itself, not from a JSON field.
pub(super) const BOOKKEEPING: &[&str] = &["raw_json", "first_seen", "last_seen", "last_changed"];

/// The integer key of document tables with sample arrays; SQLite assigns it
/// (it aliases the rowid) and the sample tables reference it. The store
/// addresses rows by this column or by `id`, never by the implicit rowid: a
/// table's columns follow the API's fields, and a column named `rowid`
/// would silently take the rowid's place in SQL.
pub(super) const SURROGATE_KEY: &str = "pk";

/// The column naming a row's account (schema 11). The store fills it with
/// `ouradb_account()`, the account of the operation running (see
/// `accounts::CurrentAccount`), and every statement on a per-account table
/// filters on it with [`SCOPE`].
pub(super) const ACCOUNT: &str = "account";

/// The condition that keeps a statement to the current account's rows.
pub(super) const SCOPE: &str = "account = ouradb_account()";

/// The key column of a time series whose rows are too many for an account
/// column of their own (`interbeat_interval`): the rowid, packing the
/// account above the time in milliseconds (`account` and `ts_ms` are
/// virtual columns computed from it). A table has this layout when it has
/// this column.
pub(super) const PACKED_KEY: &str = "beat";

/// The table beside a packed table holding the whole API row of each of
/// its rows the columns cannot restore (schema 14): `<table>_extra`, keyed
/// by the same packed key. An `extra` column would cost every row a byte.
pub(super) const EXTRA_SUFFIX: &str = "_extra";

/// Milliseconds a packed key holds below the account: 2^42, up to 2109.
pub(super) const PACKED_SPAN: i64 = 1 << 42;

/// The packed key of the current account's time 0; a row's key is this
/// plus its time in milliseconds.
const PACKED_BASE: &str = "(ouradb_account() - 1) * 4398046511104";

/// Names SQLite resolves to a table's rowid unless a column takes them
/// (compared without case). A field so named gets a column with `_`
/// appended (`rowid` is stored as `rowid_`; see [`column_names`]).
const ROWID_ALIASES: &[&str] = &["rowid", "oid", "_rowid_"];

/// Suffix of a column whose decoded date-time column it follows:
/// `<source>_ts` holds the unix seconds of the date-time in `<source>`.
/// Whether SQLite reads `name` as the rowid when no column takes it.
pub(super) fn is_rowid_alias(name: &str) -> bool {
    ROWID_ALIASES.contains(&name.to_lowercase().as_str())
}

pub(super) const SECONDS_SUFFIX: &str = "_ts";

/// Where one table column's value comes from.
#[derive(Debug)]
pub(super) enum Fill {
    /// The JSON field of the column's own name; else, inside a flattened
    /// object, `nested` (`readiness_score` is `/readiness/score`, but
    /// `readiness_score_delta` is a top-level field).
    Field { nested: Option<Vec<String>> },
    /// Exactly this JSON path: a column ouradb added, as recorded in
    /// `added_column` (its name may differ from the field's, see
    /// [`column_names`]).
    Path(Vec<String>),
    /// Unix seconds of the date-time text in column `.0` (an index into
    /// [`DocTable::columns`]), decoded as sample timestamps are
    /// ([`unix_seconds`]): the decoding views read it instead of parsing
    /// offsets in SQL, which knows `+05:45` but not `+0545` or `+05:45:30`.
    Seconds(usize),
}

/// One table column filled from the document.
#[derive(Debug)]
pub(super) struct Column {
    pub name: String,
    pub fill: Fill,
}

impl Column {
    pub fn lookup<'a>(&self, doc: &'a Value) -> Option<&'a Value> {
        let path = match &self.fill {
            Fill::Field { nested } => {
                if let Some(v) = doc.get(&self.name) {
                    return Some(v);
                }
                nested.as_ref()?
            }
            Fill::Path(path) => path,
            Fill::Seconds(_) => return None,
        };
        path.iter().try_fold(doc, |cur, seg| cur.get(seg))
    }
}

/// The column values of `doc` in column order (`id` first): each column's
/// JSON value, and for [`Fill::Seconds`] columns the decoded time of their
/// source column.
pub(super) fn column_values(columns: &[Column], doc: &Value) -> Vec<Sql> {
    let mut values: Vec<Sql> = columns.iter().map(|c| to_sql(c.lookup(doc))).collect();
    for (i, c) in columns.iter().enumerate() {
        if let Fill::Seconds(source) = c.fill {
            values[i] = match &values[source] {
                Sql::Text(s) => unix_seconds(s).map_or(Sql::Null, Sql::Integer),
                _ => Sql::Null,
            };
        }
    }
    values
}

/// Unix seconds of an RFC 3339 date-time with any UTC offset jiff reads
/// (`Z`, `+05:45`, `+0545`, `+05:45:30`, ...): the one decoding of
/// date-times into sample times, for sample rows and decoding views alike.
pub(super) fn unix_seconds(s: &str) -> Option<i64> {
    s.parse::<jiff::Timestamp>().ok().map(|t| t.as_second())
}

/// The decoded-time columns of a document table, as (source column, its
/// `<source>_ts` column): the start of each sample array the table's views
/// decode from raw_json and of each interval string.
pub(super) fn seconds_columns(dt: &DataType) -> Vec<(String, String)> {
    let mut sources: Vec<String> = dt
        .samples
        .iter()
        .filter(|s| s.storage == SampleStorage::View)
        .map(|s| format!("{}_timestamp", s.field))
        .chain(dt.interval_strings.iter().map(|s| s.start_field.to_owned()))
        .collect();
    sources.dedup();
    sources
        .into_iter()
        .map(|s| {
            let ts = format!("{s}{SECONDS_SUFFIX}");
            (s, ts)
        })
        .collect()
}

/// Fills every empty decoded-time column from its source column, for rows
/// written before the column existed (run by the migration that adds them,
/// in its transaction). Returns the rows filled.
pub(super) fn fill_seconds_columns(conn: &Connection) -> Result<usize, StoreError> {
    let mut filled = 0;
    for dt in crate::registry::DATA_TYPES {
        let t = quote(dt.table);
        for (source, ts) in seconds_columns(dt) {
            let (source, ts) = (quote(&source), quote(&ts));
            let mut read = conn.prepare(&format!(
                "SELECT id, {source} FROM {t} WHERE {SCOPE} AND {ts} IS NULL AND {source} IS NOT NULL"
            ))?;
            let rows = read
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            let mut write = conn.prepare(&format!(
                "UPDATE {t} SET {ts} = ?2 WHERE {SCOPE} AND id = ?1"
            ))?;
            for (id, text) in rows {
                if let Some(secs) = unix_seconds(&text) {
                    filled += write.execute(rusqlite::params![id, secs])?;
                }
            }
        }
    }
    Ok(filled)
}

/// Rows per multi-row sample insert (4 parameters each).
pub(super) const CHILD_BATCH: usize = 64;

#[derive(Debug)]
pub(super) struct Child {
    pub field: &'static str,
    pub table: &'static str,
    /// Parameters: document key (the parent's `pk`), offset, timestamp, value.
    pub sql_insert: String,
    /// [`CHILD_BATCH`] rows in one statement, parameters as in `sql_insert`
    /// repeated per row: a sample array has hundreds of rows, and one
    /// statement per row spent most of its time starting and ending the
    /// statement rather than inserting.
    pub sql_insert_batch: String,
    /// Removes a document's rows; parameter: the document key.
    pub sql_clear: String,
}

#[derive(Debug)]
pub(super) struct DocTable {
    /// Mapped columns; `id` first.
    pub columns: Vec<Column>,
    /// JSON paths (`$.a.b`) a column already holds: fields outside them are
    /// candidates for a new column.
    pub known_paths: HashSet<String>,
    /// Index in `columns` of the day column, filled with the normalised day.
    pub day_column: Option<usize>,
    /// The `pk` (NULL for tables without sample rows), `raw_json` and `id`
    /// of the stored document with the natural key's values (parameters in
    /// key order) and an Oura id; `None` when a key field has no column.
    pub sql_select_by_natural_key: Option<String>,
    /// Gives the document with id ?1 the id ?2.
    pub sql_rekey: String,
    /// The `pk` (NULL for tables without sample rows) and `raw_json` of the
    /// document with id ?1.
    pub sql_select_key_raw: String,
    /// Inserts a document; returns its `pk` (NULL for tables without one).
    pub sql_insert: String,
    pub sql_update: String,
    pub sql_touch: String,
    pub sql_delete: String,
    /// Ids and raw_json stored for a range of days (or all of them when the
    /// type has no day).
    pub sql_ids_in_range: String,
    /// Days of the documents waiting in `pending_removal` (none when the
    /// type has no day).
    pub sql_pending_days: Option<String>,
    pub children: Vec<Child>,
}

/// What fills one column of a time-series table.
#[derive(Debug, PartialEq)]
pub(super) enum SeriesColumn {
    /// Unix seconds parsed from the row's `timestamp`.
    Ts,
    /// Unix milliseconds parsed from the row's `timestamp` (`ts_ms`, for
    /// rows timed finer than a second).
    TsMs,
    /// The whole row as JSON when the columns cannot restore it.
    Extra,
    /// The JSON field of the same name.
    Field(String),
    /// Two integer fields as one value (the registry's `packed`).
    Packed(PackedFields),
}

impl SeriesColumn {
    /// Whether the column holds the row's JSON field `field`.
    pub fn holds(&self, field: &str) -> bool {
        match self {
            SeriesColumn::Field(f) => f == field,
            SeriesColumn::Packed(p) => p.high == field || p.low == field,
            _ => false,
        }
    }
}

#[derive(Debug)]
pub(super) struct SeriesTable {
    /// In table order; statement parameter `?n` is column `n - 1`.
    pub columns: Vec<SeriesColumn>,
    /// Names of the NOT NULL field columns, by index in `columns`.
    pub required: Vec<(usize, String)>,
    pub sql_insert: String,
    /// `sql_insert` for [`SERIES_BATCH`] rows at once: a backfill writes
    /// millions of new samples, one statement per row would dominate.
    pub sql_insert_batch: String,
    /// Rewrites a stored row whose values (its `extra` included) differ;
    /// binds every column's value.
    pub sql_update: String,
    /// Where the `extra` of a packed table lives.
    pub side: Option<SideExtra>,
    /// Times (milliseconds) the table can key: `Some` for a packed key.
    pub ms_range: Option<std::ops::Range<i64>>,
}

/// The `<table>_extra` of a packed table: the last of the table's
/// `columns` is its [`SeriesColumn::Extra`], written here, not to the row.
#[derive(Debug)]
pub(super) struct SideExtra {
    /// Position of the key's value among a row's values.
    pub key: usize,
    /// `?1` the key's time, `?2` the extra: inserts it or rewrites a
    /// different one.
    pub sql_upsert: String,
    /// `?1` the key's time: deletes the row's extra, if any.
    pub sql_clear: String,
}

impl SeriesTable {
    /// The packing of the table's packed column, if it has one.
    pub fn packed(&self) -> Option<&PackedFields> {
        self.columns.iter().find_map(|c| match c {
            SeriesColumn::Packed(p) => Some(p),
            _ => None,
        })
    }

    /// How many leading values of a row the inserts bind: all of
    /// `columns`, or all but the last when `extra` lives in `side`.
    pub fn insert_width(&self) -> usize {
        self.columns.len() - usize::from(self.side.is_some())
    }
}

/// Time-series rows per multi-row insert (a few parameters each, far below
/// SQLite's parameter limit).
pub(super) const SERIES_BATCH: usize = 200;

#[derive(Debug)]
pub(super) enum Shape {
    Document(Box<DocTable>),
    Series(SeriesTable),
}

pub(super) struct ColumnInfo {
    pub name: String,
    /// Whether the column is declared NOT NULL.
    notnull: bool,
    /// Position in the primary key, 0 when not part of it.
    pk: i64,
}

pub(super) fn table_info(conn: &Connection, table: &str) -> Result<Vec<ColumnInfo>, StoreError> {
    let mut stmt = conn.prepare(&format!("PRAGMA table_info({})", quote(table)))?;
    let cols = stmt
        .query_map([], |r| {
            Ok(ColumnInfo {
                name: r.get(1)?,
                notnull: r.get(3)?,
                pk: r.get(5)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    if cols.is_empty() {
        return Err(StoreError::Schema(format!("table {table} is missing")));
    }
    Ok(cols)
}

pub(super) fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// The JSON path of a flatten prefix; a prefix extending another one is
/// nested inside it (`readiness_contributors` is `/readiness/contributors`
/// when `readiness` is also a prefix).
pub(super) fn prefix_path(flatten: &[&str], prefix: &str) -> Vec<String> {
    for other in flatten {
        if *other != prefix
            && let Some(rest) = prefix.strip_prefix(other).and_then(|r| r.strip_prefix('_'))
        {
            let mut path = prefix_path(flatten, other);
            path.push(rest.to_owned());
            return path;
        }
    }
    vec![prefix.to_owned()]
}

fn nested_path(flatten: &[&str], column: &str) -> Option<Vec<String>> {
    flatten.iter().find_map(|prefix| {
        let rest = column.strip_prefix(prefix)?.strip_prefix('_')?;
        let mut path = prefix_path(flatten, prefix);
        path.push(rest.to_owned());
        Some(path)
    })
}

fn require(table: &str, cols: &[ColumnInfo], names: &[&str]) -> Result<(), StoreError> {
    for name in names {
        if !cols.iter().any(|c| c.name == *name) {
            return Err(StoreError::Schema(format!(
                "table {table} has no column {name}"
            )));
        }
    }
    Ok(())
}

fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn build(conn: &Connection, dt: &DataType) -> Result<Shape, StoreError> {
    let info = table_info(conn, dt.table)?;
    let shape = if dt.is_time_series() {
        Shape::Series(build_series(conn, dt, &info)?)
    } else {
        Shape::Document(Box::new(build_document(conn, dt, &info)?))
    };
    Ok(shape)
}

/// The JSON path of each column ouradb added to `table`, from `added_column`.
fn added_paths(conn: &Connection, table: &str) -> Result<HashMap<String, String>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT column_name, json_path FROM added_column WHERE table_name = ?1")?;
    let rows = stmt
        .query_map([table], |r| {
            Ok((r.get::<_, String>(0)?.to_lowercase(), r.get(1)?))
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// `$.a.b` as its segments; `None` for anything else (ouradb records only
/// paths of plain identifiers).
fn path_segments(path: &str) -> Option<Vec<String>> {
    let segs: Vec<String> = path
        .strip_prefix("$.")?
        .split('.')
        .map(str::to_owned)
        .collect();
    segs.iter().all(|s| plain_identifier(s)).then_some(segs)
}

/// The mapped columns of a document table, `id` first: JSON fields by name
/// (or their recorded path for added columns), then decoded times.
fn document_columns(
    conn: &Connection,
    dt: &DataType,
    info: &[ColumnInfo],
) -> Result<Vec<Column>, StoreError> {
    let added = added_paths(conn, dt.table)?;
    let seconds = seconds_columns(dt);
    let is_seconds = |name: &str| seconds.iter().any(|(_, ts)| ts == name);
    let mut columns = vec![Column {
        name: "id".to_owned(),
        fill: Fill::Field { nested: None },
    }];
    columns.extend(
        info.iter()
            .filter(|c| {
                // `pk` is ouradb's own only in tables with sample rows.
                let own_pk = c.name == SURROGATE_KEY && !dt.samples.is_empty();
                c.name != "id"
                    && c.name != ACCOUNT
                    && !own_pk
                    && !BOOKKEEPING.contains(&c.name.as_str())
                    && !is_seconds(&c.name)
            })
            .map(|c| Column {
                name: c.name.clone(),
                fill: match added
                    .get(&c.name.to_lowercase())
                    .and_then(|p| path_segments(p))
                {
                    Some(path) => Fill::Path(path),
                    None => Fill::Field {
                        nested: nested_path(dt.flatten, &c.name),
                    },
                },
            }),
    );
    for (source, ts) in &seconds {
        require(dt.table, info, &[source, ts])?;
        let i = columns
            .iter()
            .position(|c| c.name == *source)
            .ok_or_else(|| {
                StoreError::Schema(format!("table {} has no column {source}", dt.table))
            })?;
        columns.push(Column {
            name: ts.clone(),
            fill: Fill::Seconds(i),
        });
    }
    Ok(columns)
}

/// The JSON paths the columns hold (`$.field`, and `$.prefix.field` for a
/// flattened one).
fn known_paths(columns: &[Column]) -> HashSet<String> {
    let mut known = HashSet::new();
    for c in columns {
        match &c.fill {
            Fill::Field { nested } => {
                known.insert(format!("$.{}", c.name));
                if let Some(n) = nested {
                    known.insert(format!("$.{}", n.join(".")));
                }
            }
            Fill::Path(p) => {
                known.insert(format!("$.{}", p.join(".")));
            }
            Fill::Seconds(_) => {}
        }
    }
    known
}

fn build_document(
    conn: &Connection,
    dt: &DataType,
    info: &[ColumnInfo],
) -> Result<DocTable, StoreError> {
    let t = quote(dt.table);
    require(dt.table, info, &["id", ACCOUNT])?;
    require(dt.table, info, BOOKKEEPING)?;
    if let Some(day) = dt.day_field {
        require(dt.table, info, &[day])?;
    }
    if !dt.samples.is_empty() {
        require(dt.table, info, &[SURROGATE_KEY])?;
    }
    let columns = document_columns(conn, dt, info)?;
    // Sample rows reference their document by `pk`; other tables have none.
    let pk = if dt.samples.is_empty() {
        "NULL"
    } else {
        SURROGATE_KEY
    };
    let n = columns.len();
    let names: Vec<String> = columns.iter().map(|c| quote(&c.name)).collect();
    // Parameters: ?1..?n the columns (id first), ?n+1 raw_json, ?n+2 the time.
    let (raw, at) = (n + 1, n + 2);
    let sql_insert = format!(
        "INSERT INTO {t} (account, {}, raw_json, first_seen, last_seen, last_changed) VALUES (ouradb_account(), {}, ?{raw}, ?{at}, ?{at}, ?{at}) RETURNING {pk}",
        names.join(", "),
        placeholders(1, n),
    );
    let sets: Vec<String> = names
        .iter()
        .enumerate()
        .skip(1)
        .map(|(i, name)| format!("{name} = ?{}", i + 1))
        .collect();
    let sql_update = format!(
        "UPDATE {t} SET {}{}raw_json = ?{raw}, last_seen = ?{at}, last_changed = ?{at} WHERE {SCOPE} AND id = ?1",
        sets.join(", "),
        if sets.is_empty() { "" } else { ", " },
    );
    let sql_ids_in_range = match dt.day_field {
        Some(day) => format!(
            "SELECT id, raw_json FROM {t} WHERE {SCOPE} AND {} BETWEEN ?1 AND ?2",
            quote(day)
        ),
        None => format!("SELECT id, raw_json FROM {t} WHERE {SCOPE}"),
    };
    let sql_pending_days = dt.day_field.map(|day| {
        format!(
            "SELECT DISTINCT d.{day} FROM {t} d \
             JOIN pending_removal p ON p.account = d.account AND p.doc_id = d.id \
             WHERE d.account = ouradb_account() AND p.data_type = ?1 AND d.{day} IS NOT NULL ORDER BY 1",
            day = quote(day)
        )
    });
    let has = |name: &str| info.iter().any(|c| c.name == name);
    // The oldest stored copy first, as the rowid order did before.
    let oldest = "ORDER BY first_seen, id LIMIT 1";
    let sql_select_by_natural_key = match dt.natural_key {
        NaturalKey::Fields(fields) if fields.iter().all(|f| has(f)) => {
            let conds: Vec<String> = fields
                .iter()
                .enumerate()
                .map(|(i, f)| format!("{} = ?{}", quote(f), i + 1))
                .collect();
            Some(format!(
                "SELECT {pk}, raw_json, id FROM {t} WHERE {SCOPE} AND {} AND id NOT LIKE '{SYNTHETIC_ID_PREFIX}%' {oldest}",
                conds.join(" AND ")
            ))
        }
        NaturalKey::Single => Some(format!(
            "SELECT {pk}, raw_json, id FROM {t} WHERE {SCOPE} AND id NOT LIKE '{SYNTHETIC_ID_PREFIX}%' {oldest}"
        )),
        _ => None,
    };
    let day_column = dt
        .day_field
        .and_then(|d| columns.iter().position(|c| c.name == d));
    let mut children = Vec::new();
    for s in dt.samples {
        match s.storage {
            SampleStorage::Rows => children.push(child(conn, s.field, s.table)?),
            // Its view reads these two columns and raw_json, nothing more.
            SampleStorage::View => require(
                dt.table,
                info,
                &[
                    &format!("{}_timestamp", s.field),
                    &format!("{}_interval", s.field),
                ],
            )?,
        }
    }
    // Interval strings are decoded by views over their column (schema.sql),
    // so they have no rows to write.
    Ok(DocTable {
        known_paths: known_paths(&columns),
        columns,
        day_column,
        sql_select_by_natural_key,
        sql_rekey: format!("UPDATE {t} SET id = ?2 WHERE {SCOPE} AND id = ?1"),
        sql_select_key_raw: format!("SELECT {pk}, raw_json FROM {t} WHERE {SCOPE} AND id = ?1"),
        sql_insert,
        sql_update,
        sql_touch: format!("UPDATE {t} SET last_seen = ?2 WHERE {SCOPE} AND id = ?1"),
        sql_delete: format!("DELETE FROM {t} WHERE {SCOPE} AND id = ?1"),
        sql_ids_in_range,
        sql_pending_days,
        children,
    })
}

fn child(conn: &Connection, field: &'static str, table: &'static str) -> Result<Child, StoreError> {
    let info = table_info(conn, table)?;
    require(
        table,
        &info,
        &[ACCOUNT, "document_pk", "offset", "timestamp", "value"],
    )?;
    let t = quote(table);
    let head =
        format!("INSERT INTO {t} (account, document_pk, \"offset\", timestamp, value) VALUES ");
    let rows: Vec<String> = (0..CHILD_BATCH)
        .map(|i| format!("(ouradb_account(), {})", placeholders(i * 4 + 1, 4)))
        .collect();
    Ok(Child {
        field,
        table,
        sql_insert: format!("{head}(ouradb_account(), ?1, ?2, ?3, ?4)"),
        sql_insert_batch: format!("{head}{}", rows.join(", ")),
        sql_clear: format!("DELETE FROM {t} WHERE document_pk = ?1"),
    })
}

fn build_series(
    conn: &Connection,
    dt: &DataType,
    all: &[ColumnInfo],
) -> Result<SeriesTable, StoreError> {
    let table = dt.table;
    if let Some(p) = dt.packed {
        require(table, all, &[p.column])?;
    }
    let packed = all.iter().any(|c| c.name == PACKED_KEY);
    let time = if packed || all.iter().any(|c| c.name == "ts_ms") {
        "ts_ms"
    } else {
        "ts"
    };
    let side_table = format!("{table}{EXTRA_SUFFIX}");
    if packed {
        require(table, all, &[PACKED_KEY])?;
        require(
            &side_table,
            &table_info(conn, &side_table)?,
            &[PACKED_KEY, "extra"],
        )?;
    } else {
        require(table, all, &[ACCOUNT, time, "extra"])?;
    }
    // The account is no parameter: statements fill and match it themselves.
    let info: Vec<&ColumnInfo> = all.iter().filter(|c| c.name != ACCOUNT).collect();
    let t = quote(table);
    let mut columns: Vec<SeriesColumn> = info
        .iter()
        .map(|c| match c.name.as_str() {
            "ts" => SeriesColumn::Ts,
            "ts_ms" | PACKED_KEY => SeriesColumn::TsMs,
            "extra" => SeriesColumn::Extra,
            other => match dt.packed {
                Some(p) if p.column == other => SeriesColumn::Packed(p),
                _ => SeriesColumn::Field(other.to_owned()),
            },
        })
        .collect();
    let side = packed.then(|| {
        columns.push(SeriesColumn::Extra);
        side_extra(&quote(&side_table), &info)
    });
    let names: Vec<String> = info.iter().map(|c| quote(&c.name)).collect();
    // What each parameter fills: a packed key adds the account's base.
    let value = |c: &ColumnInfo, param: &str| -> String {
        if c.name == PACKED_KEY {
            format!("{PACKED_BASE} + {param}")
        } else {
            param.to_owned()
        }
    };
    let (head, account_value) = if packed {
        (format!("INSERT INTO {t} ({})", names.join(", ")), "")
    } else {
        (
            format!("INSERT INTO {t} (account, {})", names.join(", ")),
            "ouradb_account(), ",
        )
    };
    let numbered: Vec<String> = info
        .iter()
        .enumerate()
        .map(|(i, c)| value(c, &format!("?{}", i + 1)))
        .collect();
    // ON CONFLICT, not INSERT OR IGNORE: OR IGNORE would also silently drop
    // rows violating NOT NULL (e.g. a heart-rate row without a source).
    let sql_insert = format!(
        "{head} VALUES ({account_value}{}) ON CONFLICT DO NOTHING",
        numbered.join(", ")
    );
    let key: Vec<String> = info
        .iter()
        .enumerate()
        .filter(|(_, c)| c.pk > 0)
        .map(|(i, c)| format!("{} = {}", quote(&c.name), value(c, &format!("?{}", i + 1))))
        .collect();
    if key.is_empty() {
        return Err(StoreError::Schema(format!(
            "table {table} has no primary key"
        )));
    }
    // A row whose `extra` alone changed is an update too: the row is
    // rewritten as it was, and the side table written after.
    let side_differs = side.as_ref().map(|s| {
        format!(
            "(SELECT extra FROM {} WHERE {PACKED_KEY} = {PACKED_BASE} + ?{}) IS NOT ?{}",
            quote(&side_table),
            s.key + 1,
            info.len() + 1
        )
    });
    let sql_update = series_update(&t, &info, &key, side_differs);
    let unnumbered: Vec<String> = info.iter().map(|c| value(c, "?")).collect();
    let row = format!("({account_value}{})", unnumbered.join(", "));
    let sql_insert_batch = format!(
        "{head} VALUES {} ON CONFLICT DO NOTHING",
        vec![row; SERIES_BATCH].join(", ")
    );
    let required = info
        .iter()
        .enumerate()
        .filter(|(_, c)| c.notnull && c.name != time)
        .map(|(i, c)| (i, c.name.clone()))
        .collect();
    Ok(SeriesTable {
        columns,
        required,
        sql_insert,
        sql_insert_batch,
        sql_update,
        side,
        ms_range: packed.then_some(0..PACKED_SPAN),
    })
}

/// The statements of a packed table's side table `t` (quoted), whose key
/// is the packed key's value among the row's values (`info`).
fn side_extra(t: &str, info: &[&ColumnInfo]) -> SideExtra {
    SideExtra {
        key: info.iter().position(|c| c.name == PACKED_KEY).unwrap_or(0),
        sql_upsert: format!(
            "INSERT INTO {t} ({PACKED_KEY}, extra) VALUES ({PACKED_BASE} + ?1, ?2)
             ON CONFLICT ({PACKED_KEY}) DO UPDATE SET extra = excluded.extra
             WHERE extra IS NOT excluded.extra"
        ),
        sql_clear: format!("DELETE FROM {t} WHERE {PACKED_KEY} = {PACKED_BASE} + ?1"),
    }
}

/// Rewrites the values of the current account's row with the key `key`,
/// only where they differ, so `changes()` tells an update from an
/// unchanged row.
fn series_update(
    t: &str,
    info: &[&ColumnInfo],
    key: &[String],
    also_differs: Option<String>,
) -> String {
    let value_cols: Vec<(usize, String)> = info
        .iter()
        .enumerate()
        .filter(|(_, c)| c.pk == 0)
        .map(|(i, c)| (i + 1, quote(&c.name)))
        .collect();
    let sets: Vec<String> = value_cols
        .iter()
        .map(|(i, n)| format!("{n} = ?{i}"))
        .collect();
    let differs: Vec<String> = value_cols
        .iter()
        .map(|(i, n)| format!("{n} IS NOT ?{i}"))
        .chain(also_differs)
        .collect();
    format!(
        "UPDATE {t} SET {} WHERE {SCOPE} AND {} AND ({})",
        sets.join(", "),
        key.join(" AND "),
        differs.join(" OR ")
    )
}

/// A JSON value as stored in a typed column: booleans as 0/1, objects and
/// arrays (never expected in a scalar column) as JSON text.
pub(super) fn to_sql(v: Option<&Value>) -> Sql {
    match v {
        None | Some(Value::Null) => Sql::Null,
        Some(Value::Bool(b)) => Sql::Integer(i64::from(*b)),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(i) => Sql::Integer(i),
            None => Sql::Real(n.as_f64().unwrap_or_default()),
        },
        Some(Value::String(s)) => Sql::Text(s.clone()),
        Some(other) => Sql::Text(other.to_string()),
    }
}

fn parse_seconds(v: Option<&Value>) -> Option<i64> {
    unix_seconds(v?.as_str()?)
}

/// Child rows of one document: (offset, timestamp, value).
pub(super) fn child_rows(child: &Child, doc: &Value) -> Vec<(i64, Option<i64>, Sql)> {
    let Some(v) = doc.get(child.field) else {
        return Vec::new();
    };
    // A `PublicSample` object: `{interval, items, timestamp}`.
    let Some(items) = v.get("items").and_then(Value::as_array) else {
        return Vec::new();
    };
    let start = parse_seconds(v.get("timestamp"));
    let interval = v.get("interval").and_then(Value::as_f64);
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let offset = i as i64;
            // The interval is the server's number: one of 1e300 (cast to
            // i64::MAX) must give no time rather than an overflow.
            let ts = start
                .zip(interval)
                .and_then(|(s, iv)| s.checked_add((offset as f64 * iv).round() as i64));
            let value = match item.as_f64() {
                Some(f) => Sql::Real(f),
                None => Sql::Null,
            };
            (offset, ts, value)
        })
        .collect()
}

/// A JSON value as bound to a typed column, borrowing strings from the
/// document: the same values as [`to_sql`] without copying them.
pub(super) fn to_sql_ref(v: Option<&Value>) -> ToSqlOutput<'_> {
    match v {
        None | Some(Value::Null) => ToSqlOutput::Borrowed(ValueRef::Null),
        Some(Value::Bool(b)) => ToSqlOutput::Borrowed(ValueRef::Integer(i64::from(*b))),
        Some(Value::Number(n)) => ToSqlOutput::Borrowed(match n.as_i64() {
            Some(i) => ValueRef::Integer(i),
            None => ValueRef::Real(n.as_f64().unwrap_or_default()),
        }),
        Some(Value::String(s)) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
        Some(other) => ToSqlOutput::Owned(Sql::Text(other.to_string())),
    }
}

/// The column values of one time-series row, in table order.
pub(super) fn series_values(
    table: &SeriesTable,
    dt: &DataType,
    row: &Value,
) -> Result<Vec<Sql>, StoreError> {
    let mut out = Vec::with_capacity(table.columns.len());
    series_values_into(table, dt, row, &mut out)?;
    Ok(out
        .into_iter()
        .map(|v| match v {
            ToSqlOutput::Borrowed(v) => Sql::try_from(v).expect("valid UTF-8: it came from a str"),
            ToSqlOutput::Owned(v) => v,
            _ => unreachable!("series values are borrowed or owned"),
        })
        .collect())
}

/// Appends the column values of one time-series row to `out`, in table
/// order, borrowing from the row (no per-row allocation unless the row
/// needs an `extra` copy); on an error `out` is left as it was.
pub(super) fn series_values_into<'a>(
    table: &SeriesTable,
    dt: &DataType,
    row: &'a Value,
    out: &mut Vec<ToSqlOutput<'a>>,
) -> Result<(), StoreError> {
    let obj = row.as_object().ok_or_else(|| {
        StoreError::Invalid(format!("{}: a time-series row is not an object", dt.name))
    })?;
    let parsed = obj
        .get("timestamp")
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<jiff::Timestamp>().ok());
    let unix_ms = obj.get("timestamp_unix").and_then(Value::as_i64);
    let (ts, ms) = match (parsed, unix_ms) {
        (Some(t), _) => (t.as_second(), t.as_millisecond()),
        (None, Some(ms)) => (ms.div_euclid(1000), ms),
        (None, None) => {
            return Err(StoreError::Invalid(format!(
                "{}: row without a parseable timestamp",
                dt.name
            )));
        }
    };
    if let Some(range) = &table.ms_range
        && !range.contains(&ms)
    {
        return Err(StoreError::Invalid(format!(
            "{}: time {ms} ms is outside what the table can key (1970 to 2109)",
            dt.name
        )));
    }
    // The row is fully restorable from the columns when it has no field
    // beyond them and its two timestamps agree at the table's precision
    // (whole seconds, or whole milliseconds with a `ts_ms` column).
    let in_ms = table.columns.contains(&SeriesColumn::TsMs);
    let packed = table.packed().map(|p| {
        let field = |f: &str| obj.get(f).and_then(Value::as_i64);
        field(p.high)
            .zip(field(p.low))
            .and_then(|(h, l)| p.pack(h, l))
    });
    let mut exact = if in_ms {
        parsed.is_some_and(|t| t.subsec_nanosecond() % 1_000_000 == 0) && unix_ms == Some(ms)
    } else {
        parsed.is_some_and(|t| t.subsec_nanosecond() == 0) && unix_ms == Some(ts * 1000)
    };
    if exact {
        exact = packed != Some(None)
            && obj.iter().all(|(k, v)| {
                k == "timestamp"
                    || k == "timestamp_unix"
                    || (!v.is_object() && !v.is_array() && table.columns.iter().any(|c| c.holds(k)))
            });
    }
    let start = out.len();
    out.extend(table.columns.iter().map(|c| match c {
        SeriesColumn::Ts => ToSqlOutput::Borrowed(ValueRef::Integer(ts)),
        SeriesColumn::TsMs => ToSqlOutput::Borrowed(ValueRef::Integer(ms)),
        SeriesColumn::Extra if exact => ToSqlOutput::Borrowed(ValueRef::Null),
        SeriesColumn::Extra => ToSqlOutput::Owned(Sql::Text(row.to_string())),
        SeriesColumn::Field(f) => to_sql_ref(obj.get(f)),
        SeriesColumn::Packed(_) => {
            ToSqlOutput::Borrowed(packed.flatten().map_or(ValueRef::Null, ValueRef::Integer))
        }
    }));
    if let Some((_, name)) = table
        .required
        .iter()
        .find(|(i, _)| matches!(out[start + *i], ToSqlOutput::Borrowed(ValueRef::Null)))
    {
        out.truncate(start);
        return Err(StoreError::Invalid(format!(
            "{}: row without `{name}`",
            dt.name
        )));
    }
    Ok(())
}

/// SQLite column type for a JSON scalar, the way sqlite-utils infers it.
/// `None` for null, objects and arrays.
pub(super) fn sql_type(v: &Value) -> Option<&'static str> {
    match v {
        Value::Bool(_) => Some("INTEGER"),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some("INTEGER"),
        Value::Number(_) => Some("REAL"),
        Value::String(_) => Some("TEXT"),
        _ => None,
    }
}

/// Whether a JSON field name can become a column as it is.
pub(super) fn plain_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 64
}

/// A scalar field of a page that no column holds yet: the column name it
/// asks for and its SQL type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Wanted {
    pub column: String,
    pub sql_type: &'static str,
}

/// Scalar fields of `doc` whose JSON path no column holds (`known`), by
/// path: top-level scalars, and the scalars of the registry's flattened
/// objects as `<prefix>_<field>`.
pub(super) fn unknown_fields(
    dt: &DataType,
    known: &HashSet<String>,
    doc: &Value,
    out: &mut BTreeMap<String, Wanted>,
) {
    let mut offer = |column: String, path: String, v: &Value| {
        let Some(ty) = sql_type(v) else { return };
        if !plain_identifier(&column) || known.contains(&path) {
            return;
        }
        let e = out.entry(path).or_insert(Wanted {
            column,
            sql_type: ty,
        });
        // An integer column that also sees fractions becomes REAL.
        if e.sql_type == "INTEGER" && ty == "REAL" {
            e.sql_type = "REAL";
        }
    };
    let Some(obj) = doc.as_object() else { return };
    for (k, v) in obj {
        offer(k.clone(), format!("$.{k}"), v);
    }
    for prefix in dt.flatten {
        let path = prefix_path(dt.flatten, prefix);
        let Some(inner) = path
            .iter()
            .try_fold(doc, |cur, seg| cur.get(seg))
            .and_then(Value::as_object)
        else {
            continue;
        };
        if path.iter().any(|seg| !plain_identifier(seg)) {
            continue;
        }
        for (k, v) in inner {
            if plain_identifier(k) {
                offer(
                    format!("{prefix}_{k}"),
                    format!("$.{}.{k}", path.join(".")),
                    v,
                );
            }
        }
    }
}

/// The column each wanted field gets, decided once for the whole page:
/// its own name, with `_` appended when SQLite would read it as the rowid
/// (`rowid`, `oid`, `_rowid_`, any case); then, because SQLite compares
/// column names without case, `_2`, `_3`, ... until no column of the table
/// (`taken`, lower-cased) nor one chosen before has it. Fields are taken in
/// the order of their names, then paths, so the same fields always get the
/// same names whatever order the documents came in (`NewField` keeps its
/// name, `newField` becomes `newField_2`). Returns (path, column, type).
pub(super) fn column_names(
    wanted: &BTreeMap<String, Wanted>,
    taken: &HashSet<String>,
) -> Vec<(String, String, &'static str)> {
    let mut order: Vec<(&String, &Wanted)> = wanted.iter().collect();
    order.sort_by(|a, b| (&a.1.column, a.0).cmp(&(&b.1.column, b.0)));
    let mut taken = taken.clone();
    order
        .into_iter()
        .map(|(path, w)| {
            let mut base = w.column.clone();
            if is_rowid_alias(&base) {
                base.push('_');
            }
            let mut name = base.clone();
            let mut n = 1;
            while taken.contains(&name.to_lowercase()) {
                n += 1;
                name = format!("{base}_{n}");
            }
            taken.insert(name.to_lowercase());
            (path.clone(), name, w.sql_type)
        })
        .collect()
}

/// The fast path of [`series_values_into`] for a row the client read field
/// by field: appends its column values to `out`, borrowing from the page,
/// when the row is a flat object the columns restore fully (the usual case)
/// and its required columns are there. Returns `false`, appending nothing,
/// for any other row (not a flat object, unknown fields, sub-second or
/// inconsistent times, a missing value): those take the general path,
/// which gives their `extra` copy or quarantines them.
pub(super) fn series_values_raw<'a>(
    table: &SeriesTable,
    row: &RawRow<'a>,
    out: &mut Vec<ToSqlOutput<'a>>,
) -> bool {
    let in_ms = table.columns.contains(&SeriesColumn::TsMs);
    let exact = if in_ms { row.exact_ms } else { row.exact_ts };
    let (Some(ts), Some(mut fields)) = (exact, row.fields()) else {
        return false;
    };
    if table.ms_range.as_ref().is_some_and(|r| !r.contains(&ts)) {
        return false;
    }
    let known = |k: &str| table.columns.iter().any(|c| c.holds(k));
    if !fields.all(|(k, _)| k == "timestamp" || k == "timestamp_unix" || known(k)) {
        return false;
    }
    let int = |f: &str| match row.get(f) {
        Some(Field::I64(n)) => Some(n),
        Some(Field::U64(n)) => i64::try_from(n).ok(),
        _ => None,
    };
    let packed = table
        .packed()
        .map(|p| int(p.high).zip(int(p.low)).and_then(|(h, l)| p.pack(h, l)));
    if packed == Some(None) {
        return false;
    }
    let present = |i: usize| match &table.columns[i] {
        SeriesColumn::Field(f) => !matches!(row.get(f), None | Some(Field::Null)),
        _ => false,
    };
    if !table.required.iter().all(|(i, _)| present(*i)) {
        return false;
    }
    out.extend(table.columns.iter().map(|c| {
        ToSqlOutput::Borrowed(match c {
            SeriesColumn::Ts | SeriesColumn::TsMs => ValueRef::Integer(ts),
            SeriesColumn::Extra => ValueRef::Null,
            SeriesColumn::Packed(_) => packed.flatten().map_or(ValueRef::Null, ValueRef::Integer),
            SeriesColumn::Field(f) => match row.get(f) {
                None | Some(Field::Null) => ValueRef::Null,
                Some(Field::Bool(b)) => ValueRef::Integer(i64::from(b)),
                // As `Value::as_i64`, else `as_f64`.
                Some(Field::U64(n)) => match i64::try_from(n) {
                    Ok(i) => ValueRef::Integer(i),
                    Err(_) => ValueRef::Real(n as f64),
                },
                Some(Field::I64(n)) => ValueRef::Integer(n),
                Some(Field::F64(n)) => ValueRef::Real(n),
                Some(Field::Text(s)) => ValueRef::Text(s.as_bytes()),
            },
        })
    }));
    true
}
