//! The generic mapping from API JSON to table rows.
//!
//! Nothing here knows a particular data type: each table's columns are read
//! from the database once at open (`PRAGMA table_info`) and matched to JSON
//! fields by name, nested objects through the registry's `flatten` prefixes.
//! The SQL for every statement is built once here and then reused through
//! rusqlite's prepared-statement cache.

use rusqlite::Connection;
use rusqlite::types::Value as Sql;
use rusqlite::types::{ToSqlOutput, ValueRef};
use serde_json::Value;

use super::StoreError;
use crate::registry::{DataType, NaturalKey, SYNTHETIC_ID_PREFIX, SampleStorage};
use crate::rows::{Field, RawRow};

/// Columns of document tables that ouradb fills itself, not from a JSON field.
pub(super) const BOOKKEEPING: &[&str] = &["raw_json", "first_seen", "last_seen", "last_changed"];

/// The integer key of document tables with sample arrays; SQLite assigns it
/// (it aliases the rowid) and the sample tables reference it.
pub(super) const SURROGATE_KEY: &str = "pk";

/// One table column filled from the document.
#[derive(Debug)]
pub(super) struct Column {
    pub name: String,
    /// Path inside a flattened object, used when the document has no
    /// top-level field of the column's own name (`readiness_score` is
    /// `/readiness/score`, but `readiness_score_delta` is a top-level field).
    pub nested: Option<Vec<String>>,
}

impl Column {
    pub fn lookup<'a>(&self, doc: &'a Value) -> Option<&'a Value> {
        if let Some(v) = doc.get(&self.name) {
            return Some(v);
        }
        let mut cur = doc;
        for seg in self.nested.as_ref()? {
            cur = cur.get(seg)?;
        }
        Some(cur)
    }
}

/// Rows per multi-row sample insert (4 parameters each).
pub(super) const CHILD_BATCH: usize = 64;

#[derive(Debug)]
pub(super) struct Child {
    pub field: &'static str,
    /// Parameters: document key (the parent's rowid), offset, timestamp, value.
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
    /// Every column of the table (bookkeeping included), lower-cased:
    /// SQLite compares column names without case.
    pub all_columns: std::collections::HashSet<String>,
    /// Index in `columns` of the day column, filled with the normalised day.
    pub day_column: Option<usize>,
    /// The rowid, `raw_json` and `id` of stored documents with the natural
    /// key's values (parameters in key order) and an Oura id; `None` when a
    /// key field has no column.
    pub sql_select_by_natural_key: Option<String>,
    /// Gives the row with rowid ?1 the id ?2.
    pub sql_rekey: String,
    /// The rowid (the `pk` of tables with sample arrays) and `raw_json`.
    pub sql_select_key_raw: String,
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
    /// The whole row as JSON when the columns cannot restore it.
    Extra,
    /// The JSON field of the same name.
    Field(String),
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
    pub sql_update: String,
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
        Shape::Series(build_series(dt.table, &info)?)
    } else {
        Shape::Document(Box::new(build_document(conn, dt, &info)?))
    };
    Ok(shape)
}

fn build_document(
    conn: &Connection,
    dt: &DataType,
    info: &[ColumnInfo],
) -> Result<DocTable, StoreError> {
    let t = quote(dt.table);
    require(dt.table, info, &["id"])?;
    require(dt.table, info, BOOKKEEPING)?;
    if let Some(day) = dt.day_field {
        require(dt.table, info, &[day])?;
    }
    let mut columns = vec![Column {
        name: "id".to_owned(),
        nested: None,
    }];
    columns.extend(
        info.iter()
            .filter(|c| {
                c.name != "id" && c.name != SURROGATE_KEY && !BOOKKEEPING.contains(&c.name.as_str())
            })
            .map(|c| Column {
                name: c.name.clone(),
                nested: nested_path(dt.flatten, &c.name),
            }),
    );
    let n = columns.len();
    let names: Vec<String> = columns.iter().map(|c| quote(&c.name)).collect();
    // Parameters: ?1..?n the columns (id first), ?n+1 raw_json, ?n+2 the time.
    let (raw, at) = (n + 1, n + 2);
    let sql_insert = format!(
        "INSERT INTO {t} ({}, raw_json, first_seen, last_seen, last_changed) VALUES ({}, ?{raw}, ?{at}, ?{at}, ?{at})",
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
        "UPDATE {t} SET {}{}raw_json = ?{raw}, last_seen = ?{at}, last_changed = ?{at} WHERE id = ?1",
        sets.join(", "),
        if sets.is_empty() { "" } else { ", " },
    );
    let sql_ids_in_range = match dt.day_field {
        Some(day) => format!(
            "SELECT id, raw_json FROM {t} WHERE {} BETWEEN ?1 AND ?2",
            quote(day)
        ),
        None => format!("SELECT id, raw_json FROM {t}"),
    };
    let sql_pending_days = dt.day_field.map(|day| {
        format!(
            "SELECT DISTINCT d.{day} FROM {t} d JOIN pending_removal p ON p.doc_id = d.id \
             WHERE p.data_type = ?1 AND d.{day} IS NOT NULL ORDER BY 1",
            day = quote(day)
        )
    });
    let has = |name: &str| info.iter().any(|c| c.name == name);
    let sql_select_by_natural_key = match dt.natural_key {
        NaturalKey::Fields(fields) if fields.iter().all(|f| has(f)) => {
            let conds: Vec<String> = fields
                .iter()
                .enumerate()
                .map(|(i, f)| format!("{} = ?{}", quote(f), i + 1))
                .collect();
            Some(format!(
                "SELECT rowid, raw_json, id FROM {t} WHERE {} AND id NOT LIKE '{SYNTHETIC_ID_PREFIX}%' ORDER BY rowid LIMIT 1",
                conds.join(" AND ")
            ))
        }
        NaturalKey::Single => Some(format!(
            "SELECT rowid, raw_json, id FROM {t} WHERE id NOT LIKE '{SYNTHETIC_ID_PREFIX}%' ORDER BY rowid LIMIT 1"
        )),
        _ => None,
    };
    let day_column = dt
        .day_field
        .and_then(|d| columns.iter().position(|c| c.name == d));
    let mut children = Vec::new();
    if !dt.samples.is_empty() {
        require(dt.table, info, &[SURROGATE_KEY])?;
    }
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
        columns,
        all_columns: info.iter().map(|c| c.name.to_lowercase()).collect(),
        day_column,
        sql_select_by_natural_key,
        sql_rekey: format!("UPDATE {t} SET id = ?2 WHERE rowid = ?1"),
        sql_select_key_raw: format!("SELECT rowid, raw_json FROM {t} WHERE id = ?1"),
        sql_insert,
        sql_update,
        sql_touch: format!("UPDATE {t} SET last_seen = ?2 WHERE id = ?1"),
        sql_delete: format!("DELETE FROM {t} WHERE id = ?1"),
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
        &["document_pk", "offset", "timestamp", "value"],
    )?;
    let t = quote(table);
    let head = format!("INSERT INTO {t} (document_pk, \"offset\", timestamp, value) VALUES ");
    let rows: Vec<String> = (0..CHILD_BATCH)
        .map(|i| format!("({})", placeholders(i * 4 + 1, 4)))
        .collect();
    Ok(Child {
        field,
        sql_insert: format!("{head}(?1, ?2, ?3, ?4)"),
        sql_insert_batch: format!("{head}{}", rows.join(", ")),
        sql_clear: format!("DELETE FROM {t} WHERE document_pk = ?1"),
    })
}

fn build_series(table: &str, info: &[ColumnInfo]) -> Result<SeriesTable, StoreError> {
    require(table, info, &["ts", "extra"])?;
    let t = quote(table);
    let columns: Vec<SeriesColumn> = info
        .iter()
        .map(|c| match c.name.as_str() {
            "ts" => SeriesColumn::Ts,
            "extra" => SeriesColumn::Extra,
            other => SeriesColumn::Field(other.to_owned()),
        })
        .collect();
    let names: Vec<String> = info.iter().map(|c| quote(&c.name)).collect();
    // ON CONFLICT, not INSERT OR IGNORE: OR IGNORE would also silently drop
    // rows violating NOT NULL (e.g. a heart-rate row without a source).
    let sql_insert = format!(
        "INSERT INTO {t} ({}) VALUES ({}) ON CONFLICT DO NOTHING",
        names.join(", "),
        placeholders(1, names.len())
    );
    let key: Vec<String> = info
        .iter()
        .enumerate()
        .filter(|(_, c)| c.pk > 0)
        .map(|(i, c)| format!("{} = ?{}", quote(&c.name), i + 1))
        .collect();
    if key.is_empty() {
        return Err(StoreError::Schema(format!(
            "table {table} has no primary key"
        )));
    }
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
        .collect();
    // Only rows whose values differ are rewritten, so `changes()` tells an
    // update from an unchanged row.
    let sql_update = format!(
        "UPDATE {t} SET {} WHERE {} AND ({})",
        sets.join(", "),
        key.join(" AND "),
        differs.join(" OR ")
    );
    let row = format!("({})", vec!["?"; names.len()].join(", "));
    let sql_insert_batch = format!(
        "INSERT INTO {t} ({}) VALUES {} ON CONFLICT DO NOTHING",
        names.join(", "),
        vec![row; SERIES_BATCH].join(", ")
    );
    let required = info
        .iter()
        .enumerate()
        .filter(|(_, c)| c.notnull && c.name != "ts")
        .map(|(i, c)| (i, c.name.clone()))
        .collect();
    Ok(SeriesTable {
        columns,
        required,
        sql_insert,
        sql_insert_batch,
        sql_update,
    })
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
    v?.as_str()?
        .parse::<jiff::Timestamp>()
        .ok()
        .map(|t| t.as_second())
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
    let ts = match (parsed, unix_ms) {
        (Some(t), _) => t.as_second(),
        (None, Some(ms)) => ms.div_euclid(1000),
        (None, None) => {
            return Err(StoreError::Invalid(format!(
                "{}: row without a parseable timestamp",
                dt.name
            )));
        }
    };
    // The row is fully restorable from the columns when it has no field
    // beyond them and its two timestamps are whole seconds that agree.
    let mut exact =
        parsed.is_some_and(|t| t.subsec_nanosecond() == 0) && unix_ms == Some(ts * 1000);
    if exact {
        exact = obj.iter().all(|(k, v)| {
            k == "timestamp"
                || k == "timestamp_unix"
                || (!v.is_object()
                    && !v.is_array()
                    && table
                        .columns
                        .iter()
                        .any(|c| matches!(c, SeriesColumn::Field(f) if f == k)))
        });
    }
    let start = out.len();
    out.extend(table.columns.iter().map(|c| match c {
        SeriesColumn::Ts => ToSqlOutput::Borrowed(ValueRef::Integer(ts)),
        SeriesColumn::Extra if exact => ToSqlOutput::Borrowed(ValueRef::Null),
        SeriesColumn::Extra => ToSqlOutput::Owned(Sql::Text(row.to_string())),
        SeriesColumn::Field(f) => to_sql_ref(obj.get(f)),
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

/// Scalar fields of `doc` that `known` (lower-cased column names) lacks, as
/// (column, JSON path, SQL type): top-level scalars, and the scalars of the
/// registry's flattened objects as `<prefix>_<field>`.
pub(super) fn unknown_fields(
    dt: &DataType,
    known: &std::collections::HashSet<String>,
    doc: &Value,
    out: &mut std::collections::BTreeMap<String, (String, &'static str)>,
) {
    let mut offer = |column: String, path: String, v: &Value| {
        let Some(ty) = sql_type(v) else { return };
        if !plain_identifier(&column) || known.contains(&column.to_lowercase()) {
            return;
        }
        let e = out.entry(column).or_insert((path, ty));
        // An integer column that also sees fractions becomes REAL.
        if e.1 == "INTEGER" && ty == "REAL" {
            e.1 = "REAL";
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
            offer(
                format!("{prefix}_{k}"),
                format!("$.{}.{k}", path.join(".")),
                v,
            );
        }
    }
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
    let (Some(ts), Some(mut fields)) = (row.exact_ts, row.fields()) else {
        return false;
    };
    let known = |k: &str| {
        table
            .columns
            .iter()
            .any(|c| matches!(c, SeriesColumn::Field(f) if f == k))
    };
    if !fields.all(|(k, _)| k == "timestamp" || k == "timestamp_unix" || known(k)) {
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
            SeriesColumn::Ts => ValueRef::Integer(ts),
            SeriesColumn::Extra => ValueRef::Null,
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
