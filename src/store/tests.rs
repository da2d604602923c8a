//! Unit tests for what integration tests cannot see: per-connection pragmas,
//! the migration list and the column mapping internals.

use rusqlite::types::ValueRef;
use serde_json::json;

use super::mapping::{self, SeriesColumn};
use super::*;
use crate::registry;

fn temp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db.sqlite")).unwrap();
    (dir, store)
}

fn pragma(conn: &Connection, name: &str) -> String {
    conn.query_row(&format!("PRAGMA {name}"), [], |r| {
        Ok(match r.get_ref(0)? {
            ValueRef::Integer(i) => i.to_string(),
            ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
            other => format!("{other:?}"),
        })
    })
    .unwrap()
}

#[test]
fn pragmas_are_set_on_every_open() {
    let (dir, store) = temp_store();
    let check = |conn: &Connection| {
        assert_eq!(pragma(conn, "journal_mode"), "wal");
        assert_eq!(pragma(conn, "synchronous"), "1", "NORMAL");
        assert_eq!(pragma(conn, "foreign_keys"), "1");
    };
    check(&store.conn);
    drop(store);
    let again = Store::open(&dir.path().join("db.sqlite")).unwrap();
    check(&again.conn);
    let ro = Store::open_read_only(&dir.path().join("db.sqlite")).unwrap();
    assert_eq!(pragma(&ro.conn, "busy_timeout"), "5000");
    assert_eq!(pragma(&ro.conn, "journal_mode"), "wal");
}

#[test]
fn migrations_are_consecutive_from_one() {
    for (i, m) in schema::MIGRATIONS.iter().enumerate() {
        assert_eq!(m.version, i as i64 + 1);
    }
    assert_eq!(SCHEMA_VERSION, schema::MIGRATIONS.len() as i64);
}

#[test]
fn json_serialization_is_canonical() {
    // Unchanged detection compares serialized text; that only works when
    // key order does not depend on how the API ordered them.
    let a: serde_json::Value = serde_json::from_str(r#"{"b":1,"a":{"d":2,"c":3}}"#).unwrap();
    let b: serde_json::Value = serde_json::from_str(r#"{"a":{"c":3,"d":2},"b":1}"#).unwrap();
    assert_eq!(
        serde_json::to_string(&a).unwrap(),
        serde_json::to_string(&b).unwrap()
    );
    assert_eq!(
        serde_json::to_string(&a).unwrap(),
        r#"{"a":{"c":3,"d":2},"b":1}"#
    );
}

#[test]
fn flatten_prefixes_resolve_nested_objects_and_top_level_fields() {
    let (_dir, store) = temp_store();
    let sleep = registry::find("sleep").unwrap();
    let mapping::Shape::Document(t) = store.shape(sleep).unwrap() else {
        panic!("sleep is a document type");
    };
    let col = |name: &str| t.columns.iter().find(|c| c.name == name).unwrap();
    let doc = json!({
        "readiness_score_delta": 4,
        "readiness": {"score": 80, "contributors": {"hrv_balance": 70}},
    });
    assert_eq!(col("readiness_score").lookup(&doc), Some(&json!(80)));
    assert_eq!(
        col("readiness_contributors_hrv_balance").lookup(&doc),
        Some(&json!(70))
    );
    assert_eq!(col("readiness_score_delta").lookup(&doc), Some(&json!(4)));
    assert_eq!(col("readiness_temperature_deviation").lookup(&doc), None);
    assert_eq!(t.columns[0].name, "id");
}

#[test]
fn series_extra_is_null_only_for_fully_restorable_rows() {
    let (_dir, store) = temp_store();
    let hr = registry::find("heartrate").unwrap();
    let mapping::Shape::Series(t) = store.shape(hr).unwrap() else {
        panic!("heartrate is a time series");
    };
    assert!(t.columns.contains(&SeriesColumn::Ts));
    let extra_of = |row: serde_json::Value| {
        let values = mapping::series_values(t, hr, &row).unwrap();
        let i = t
            .columns
            .iter()
            .position(|c| *c == SeriesColumn::Extra)
            .unwrap();
        values[i].clone()
    };
    let plain = json!({"timestamp": "2024-03-01T10:00:00+00:00", "timestamp_unix": 1709287200000i64, "bpm": 61, "source": "awake"});
    assert_eq!(extra_of(plain), Sql::Null);
    let offset = json!({"timestamp": "2024-03-01T12:00:00+02:00", "timestamp_unix": 1709287200000i64, "bpm": 61, "source": "awake"});
    assert_eq!(extra_of(offset), Sql::Null);
    let unknown = json!({"timestamp": "2024-03-01T10:00:00+00:00", "timestamp_unix": 1709287200000i64, "bpm": 61, "source": "awake", "confidence": 0.9});
    assert!(matches!(extra_of(unknown), Sql::Text(s) if s.contains("confidence")));
    let subsecond = json!({"timestamp": "2024-03-01T10:00:00.250+00:00", "timestamp_unix": 1709287200250i64, "bpm": 61, "source": "awake"});
    assert!(matches!(extra_of(subsecond), Sql::Text(_)));
    let disagree = json!({"timestamp": "2024-03-01T10:00:00+00:00", "timestamp_unix": 1, "bpm": 61, "source": "awake"});
    assert!(matches!(extra_of(disagree), Sql::Text(_)));
}

#[test]
fn busy_waits_start_fine_and_end_after_the_busy_timeout() {
    use super::schema::busy_delay;
    assert_eq!(busy_delay(0), Some(std::time::Duration::from_micros(100)));
    assert_eq!(busy_delay(49), Some(std::time::Duration::from_micros(100)));
    assert_eq!(busy_delay(50), Some(std::time::Duration::from_millis(2)));
    let total: std::time::Duration = (0..).map_while(busy_delay).sum();
    assert!(
        total >= std::time::Duration::from_millis(4990)
            && total <= std::time::Duration::from_millis(5010),
        "{total:?}"
    );
}

/// Writers wait for another connection's lock by steps of 0.1 ms, not by
/// SQLite's 1, 2, 5 ms: the lock this process meets most is its own
/// short commit or request-account lease.
#[test]
fn a_short_lock_is_waited_out_in_steps_under_a_millisecond() {
    use std::time::{Duration, Instant};
    let (dir, mut store) = temp_store();
    let path = dir.path().join("db.sqlite");
    let sleep = registry::find("sleep").unwrap();
    let mut best = Duration::MAX;
    for _ in 0..5 {
        let other = Connection::open(&path).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let holder = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_micros(3500));
            other.execute_batch("COMMIT").unwrap();
            Instant::now()
        });
        std::thread::sleep(Duration::from_micros(200));
        store
            .record_attempt(sleep, jiff::Timestamp::UNIX_EPOCH)
            .unwrap();
        let done = Instant::now();
        let released = holder.join().unwrap();
        best = best.min(done.saturating_duration_since(released));
    }
    // SQLite's own handler would try again 8 ms in: 4.5 ms after release.
    assert!(best < Duration::from_millis(1), "{best:?}");
}
