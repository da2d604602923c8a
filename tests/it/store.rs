//! Storage layer: schema and migrations, generic upserts of every data type,
//! deletions, cursor bookkeeping, atomic pages and readers during writes.

use std::collections::{BTreeMap, HashSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use jiff::civil::{Date, date};
use ouradb::error_kind::ErrorKind;
use ouradb::registry::{self, DATA_TYPES, DataType};
use ouradb::store::{
    CursorAdvance, PageCommit, SCHEMA_VERSION, Store, StoreError, Vanished, WriteCounts,
};
use serde_json::{Value, json};

use crate::db;

fn dt(name: &str) -> &'static DataType {
    registry::find(name).unwrap()
}

fn temp() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data").join("ouradb.sqlite");
    (dir, path)
}

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn page(docs: &[Value], at: Timestamp) -> PageCommit<'_> {
    PageCommit {
        documents: docs.into(),
        vanished: None,
        cursor: CursorAdvance::default(),
        requests: 1,
        at,
    }
}

fn commit(store: &mut Store, name: &str, docs: &[Value]) -> WriteCounts {
    store
        .commit_page(dt(name), &page(docs, t("2024-03-02T08:00:00Z")))
        .unwrap()
}

fn counts(inserted: u64, updated: u64, unchanged: u64, deleted: u64) -> WriteCounts {
    WriteCounts {
        inserted,
        updated,
        unchanged,
        deleted,
        quarantined: 0,
    }
}

fn sample(start: &str, interval: f64, items: Value) -> Value {
    json!({"interval": interval, "items": items, "timestamp": start})
}

/// One realistic document per data type, every field of spec 1.37 present.
fn examples() -> Vec<(&'static str, Value)> {
    vec![
        (
            "daily_activity",
            json!({
                "id": "act-1", "day": "2024-03-01", "score": 82,
                "active_calories": 512, "total_calories": 2650, "target_calories": 450,
                "steps": 10234, "equivalent_walking_distance": 8120, "meters_to_target": -300,
                "target_meters": 8000, "average_met_minutes": 1.6875,
                "high_activity_met_minutes": 30, "medium_activity_met_minutes": 120,
                "low_activity_met_minutes": 200, "sedentary_met_minutes": 10,
                "high_activity_time": 1200, "medium_activity_time": 3600,
                "low_activity_time": 9000, "sedentary_time": 30000, "resting_time": 28000,
                "non_wear_time": 600, "inactivity_alerts": 2,
                "timestamp": "2024-03-01T04:00:00+01:00",
                "class_5_min": "0012345",
                "contributors": {"meet_daily_targets": 60, "move_every_hour": 100,
                    "recovery_time": 95, "stay_active": 70, "training_frequency": 80,
                    "training_volume": 90},
                "met": sample("2024-03-01T04:00:00.000+01:00", 60.0, json!([0.9, null, 1.2, 3.5])),
            }),
        ),
        (
            "daily_cardiovascular_age",
            json!({"id": "cva-1", "day": "2024-03-01", "pulse_wave_velocity": 7.25, "vascular_age": 38}),
        ),
        (
            "daily_readiness",
            json!({
                "id": "rdy-1", "day": "2024-03-01", "score": 77,
                "temperature_deviation": -0.12, "temperature_trend_deviation": 0.05,
                "timestamp": "2024-03-01T00:00:00+01:00",
                "contributors": {"activity_balance": 80, "body_temperature": 98, "hrv_balance": 70,
                    "previous_day_activity": 85, "previous_night": 72, "recovery_index": 66,
                    "resting_heart_rate": 90, "sleep_balance": 81, "sleep_regularity": null},
            }),
        ),
        (
            "daily_resilience",
            json!({"id": "res-1", "day": "2024-03-01", "level": "solid",
                "contributors": {"sleep_recovery": 61.5, "daytime_recovery": 40.25, "stress": 55.0}}),
        ),
        (
            "daily_sleep",
            json!({"id": "dsl-1", "day": "2024-03-01", "score": 84,
                "timestamp": "2024-03-01T00:00:00+01:00",
                "contributors": {"deep_sleep": 90, "efficiency": 88, "latency": 75, "rem_sleep": 80,
                    "restfulness": 70, "timing": 95, "total_sleep": 85}}),
        ),
        (
            "daily_spo2",
            json!({"id": "spo-1", "day": "2024-03-01", "breathing_disturbance_index": 3,
                "spo2_percentage": {"average": 96.375}}),
        ),
        (
            "daily_stress",
            json!({"id": "str-1", "day": "2024-03-01", "day_summary": "normal",
                "stress_high": 3600, "recovery_high": 5400}),
        ),
        (
            "enhanced_tag",
            json!({"id": "etag-1", "tag_type_code": "tag_generic_caffeine",
                "start_time": "2024-03-01T09:00:00", "end_time": "2024-03-01T09:30:00",
                "start_day": "2024-03-01", "end_day": "2024-03-01",
                "comment": "double espresso", "custom_name": null}),
        ),
        (
            "heartrate",
            json!({"timestamp": "2024-03-01T10:00:00+00:00", "timestamp_unix": 1709287200000i64,
                "bpm": 64, "source": "awake"}),
        ),
        (
            "personal_info",
            json!({"id": "user-1", "age": 41, "weight": 72.5, "height": 1.78,
                "biological_sex": "female", "email": "person@example.com"}),
        ),
        (
            "rest_mode_period",
            json!({"id": "rmp-1", "start_day": "2024-03-01", "start_time": "2024-03-01T08:00:00+01:00",
                "end_day": "2024-03-03", "end_time": "2024-03-03T08:00:00+01:00",
                "episodes": [{"tags": ["tag_generic_fever"], "timestamp": "2024-03-01T08:00:00+01:00"}]}),
        ),
        (
            "ring_battery_level",
            json!({"timestamp": "2024-03-01T10:05:00+00:00", "timestamp_unix": 1709287500000i64,
                "level": 87, "charging": false, "in_charger": true}),
        ),
        (
            "ring_configuration",
            json!({"id": "ring-1", "color": "stealth_black", "design": "heritage",
                "firmware_version": "2.9.21", "hardware_type": "gen3",
                "set_up_at": "2022-05-01T10:00:00+00:00", "size": 9}),
        ),
        (
            "session",
            json!({"id": "ses-1", "day": "2024-03-01", "type": "meditation", "mood": "good",
                "start_datetime": "2024-03-01T18:00:00+01:00", "end_datetime": "2024-03-01T18:10:00+01:00",
                "heart_rate": sample("2024-03-01T18:00:00+01:00", 5.0, json!([60.0, 59.0, null])),
                "heart_rate_variability": sample("2024-03-01T18:00:00+01:00", 5.0, json!([40.0, 42.0])),
                "motion_count": sample("2024-03-01T18:00:00+01:00", 5.0, json!([0.0, 1.0, 0.0, 2.0]))}),
        ),
        ("sleep", sleep_example()),
        (
            "sleep_time",
            json!({"id": "stm-1", "day": "2024-03-01", "recommendation": "follow_optimal_bedtime",
                "status": "optimal_found",
                "optimal_bedtime": {"day_tz": 3600, "start_offset": -3600, "end_offset": 1800}}),
        ),
        (
            "tag",
            json!({"id": "tag-1", "day": "2024-03-01", "text": "late dinner",
                "timestamp": "2024-03-01T21:00:00", "tags": ["tag_generic_late_meal", "custom"]}),
        ),
        (
            "vo2_max",
            json!({"id": "vo2-1", "day": "2024-03-01", "timestamp": "2024-03-01T12:00:00+01:00", "vo2_max": 44}),
        ),
        (
            "workout",
            json!({"id": "wo-1", "day": "2024-03-01", "activity": "cycling", "intensity": "moderate",
                "source": "manual", "label": "commute", "start_datetime": "2024-03-01T08:00:00+01:00",
                "end_datetime": "2024-03-01T08:45:00+01:00", "calories": 410.5, "distance": 15200.0}),
        ),
    ]
}

/// A sleep period; built in two parts to stay within `json!`'s recursion limit.
fn sleep_example() -> Value {
    let mut doc = json!({
        "id": "slp-1", "day": "2024-03-01", "type": "long_sleep", "period": 0,
        "bedtime_start": "2024-02-29T23:00:00+01:00", "bedtime_end": "2024-03-01T07:00:00+01:00",
        "time_in_bed": 28800, "total_sleep_duration": 25200, "deep_sleep_duration": 5400,
        "light_sleep_duration": 14400, "rem_sleep_duration": 5400, "awake_time": 3600,
        "latency": 600, "efficiency": 88, "restless_periods": 12,
        "average_breath": 14.5, "average_heart_rate": 55.25, "lowest_heart_rate": 48,
        "average_hrv": 45, "low_battery_alert": false,
        "sleep_algorithm_version": "v2", "sleep_analysis_reason": "foreground_sleep_analysis",
        "sleep_score_delta": 2, "readiness_score_delta": -1, "ring_id": "ring-1",
        "sleep_phase_5_min": "4221134", "sleep_phase_30_sec": "44222211",
        "app_sleep_phase_5_min": "4221134", "movement_30_sec": "1123411",
    });
    doc["readiness"] = json!({"score": 79, "temperature_deviation": 0.1, "temperature_trend_deviation": -0.05,
        "contributors": {"activity_balance": 80, "body_temperature": 97, "hrv_balance": 71,
            "previous_day_activity": 84, "previous_night": 73, "recovery_index": 67,
            "resting_heart_rate": 91, "sleep_balance": 82, "sleep_regularity": 88}});
    doc["heart_rate"] = sample(
        "2024-02-29T23:00:00.000+01:00",
        300.0,
        json!([58.0, 55.0, null, 52.0]),
    );
    doc["hrv"] = sample(
        "2024-02-29T23:00:00.000+01:00",
        300.0,
        json!([40.0, 48.0, 51.0]),
    );
    doc
}

/// Every scalar leaf of a document as `column name -> value`, nested objects
/// joined with `_`, sample objects and arrays left out (they are child rows
/// or stay in raw_json). Independent of the store's own mapping code.
fn scalar_leaves(prefix: &str, v: &Value, out: &mut BTreeMap<String, Value>) {
    for (k, v) in v.as_object().unwrap() {
        let name = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}_{k}")
        };
        match v {
            Value::Object(o) if o.contains_key("items") => {}
            Value::Object(_) => scalar_leaves(&name, v, out),
            Value::Array(_) => {}
            Value::Bool(b) => {
                out.insert(name, json!(i64::from(*b)));
            }
            other => {
                out.insert(name, other.clone());
            }
        }
    }
}

fn same_number_or_value(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

#[test]
fn opens_fresh_database_private_and_reopens_idempotently() {
    let (_dir, path) = temp();
    let store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version(), SCHEMA_VERSION);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "health data must be owner-only");
    let before = db::fingerprint(&path);
    assert!(before.contains("sync_state 0 "));
    drop(store);
    let _again = Store::open(&path).unwrap();
    assert_eq!(db::fingerprint(&path), before);
    let version: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
}

#[test]
fn refuses_database_newer_than_binary() {
    let (_dir, path) = temp();
    drop(Store::open(&path).unwrap());
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(&format!("PRAGMA user_version = {}", SCHEMA_VERSION + 1))
        .unwrap();
    for result in [Store::open(&path), Store::open_read_only(&path)] {
        match result {
            Err(StoreError::TooNew {
                found, supported, ..
            }) => {
                assert_eq!((found, supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
            }
            Err(e) => panic!("expected TooNew, got {e}"),
            Ok(_) => panic!("expected TooNew, got a store"),
        }
    }
}

#[test]
fn read_only_open_of_missing_file_says_missing_and_creates_nothing() {
    let (_dir, path) = temp();
    assert!(matches!(
        Store::open_read_only(&path),
        Err(StoreError::Missing { .. })
    ));
    assert!(!path.exists());
}

#[test]
fn every_scalar_field_of_every_type_lands_in_its_column() {
    let (_dir, path) = temp();
    let mut store = Store::open(&path).unwrap();
    let examples = examples();
    assert_eq!(examples.len() + BEYOND_SPEC.len(), DATA_TYPES.len());
    for (name, doc) in &examples {
        let d = dt(name);
        let c = commit(&mut store, name, std::slice::from_ref(doc));
        assert_eq!(c, counts(1, 0, 0, 0), "{name}");
        let row = if d.is_time_series() {
            let ts = t(doc["timestamp"].as_str().unwrap()).as_second();
            let rows = db::series_rows(&path, d, ts, ts + 1).unwrap();
            assert_eq!(rows.len(), 1, "{name}");
            assert_eq!(rows[0]["ts"], json!(ts));
            assert_eq!(rows[0]["extra"], Value::Null, "{name}: known fields only");
            rows[0].clone()
        } else {
            let id = doc["id"].as_str().unwrap();
            let row = db::document_row(&path, d, id).unwrap().unwrap();
            let raw: Value = serde_json::from_str(row["raw_json"].as_str().unwrap()).unwrap();
            assert_eq!(&raw, doc, "{name}: raw_json");
            assert_eq!(row["first_seen"], json!("2024-03-02T08:00:00Z"));
            assert_eq!(row["last_changed"], json!("2024-03-02T08:00:00Z"));
            row
        };
        let mut leaves = BTreeMap::new();
        scalar_leaves("", doc, &mut leaves);
        for (field, value) in leaves {
            if d.is_time_series() && field.starts_with("timestamp") {
                continue;
            }
            let stored = row
                .get(&field)
                .unwrap_or_else(|| panic!("{name}: no column {field}"));
            assert!(
                same_number_or_value(stored, &value),
                "{name}.{field}: stored {stored}, sent {value}"
            );
        }
        assert_eq!(store.sync_state(d).unwrap().documents, 1, "{name}");
    }
}

#[test]
fn sample_arrays_and_interval_strings_become_child_rows() {
    let (_dir, path) = temp();
    let mut store = Store::open(&path).unwrap();
    for (name, doc) in examples() {
        commit(&mut store, name, &[doc]);
    }
    let sleep = dt("sleep");
    let hr = db::child_rows(&path, sleep, "sleep_heart_rate", "slp-1").unwrap();
    let start = t("2024-02-29T22:00:00Z").as_second();
    assert_eq!(
        hr,
        vec![
            (0, Some(start), Some(58.0)),
            (1, Some(start + 300), Some(55.0)),
            (2, Some(start + 600), None),
            (3, Some(start + 900), Some(52.0)),
        ]
    );
    assert_eq!(
        db::child_rows(&path, sleep, "sleep_hrv", "slp-1")
            .unwrap()
            .len(),
        3
    );
    let phases = db::child_rows(&path, sleep, "sleep_phase", "slp-1").unwrap();
    let codes: Vec<f64> = phases.iter().map(|r| r.2.unwrap()).collect();
    assert_eq!(codes, vec![4.0, 2.0, 2.0, 1.0, 1.0, 3.0, 4.0]);
    assert_eq!(phases[6].1, Some(start + 6 * 300));
    let movement = db::child_rows(&path, sleep, "sleep_movement", "slp-1").unwrap();
    assert_eq!(movement.len(), 7);
    assert_eq!(movement[1].1, Some(start + 30));
    let act = dt("daily_activity");
    assert_eq!(
        db::child_rows(&path, act, "daily_activity_met", "act-1")
            .unwrap()
            .len(),
        4
    );
    let classes = db::child_rows(&path, act, "daily_activity_class", "act-1").unwrap();
    assert_eq!(classes.len(), 7);
    assert_eq!(classes[6].2, Some(5.0));
    let ses = dt("session");
    for (table, n) in [
        ("session_heart_rate", 3),
        ("session_hrv", 2),
        ("session_motion_count", 4),
    ] {
        assert_eq!(
            db::child_rows(&path, ses, table, "ses-1").unwrap().len(),
            n,
            "{table}"
        );
    }
    assert!(matches!(
        db::child_rows(&path, ses, "sleep_heart_rate", "ses-1"),
        Err(e) if e == "sleep_heart_rate is not a child table of session"
    ));
}

#[test]
fn unchanged_documents_are_not_rewritten_and_changed_ones_are() {
    let (_dir, path) = temp();
    let mut store = Store::open(&path).unwrap();
    let sleep = dt("sleep");
    let doc = examples()
        .into_iter()
        .find(|(n, _)| *n == "sleep")
        .unwrap()
        .1;
    let first = t("2024-03-02T08:00:00Z");
    assert_eq!(
        store
            .commit_page(sleep, &page(std::slice::from_ref(&doc), first))
            .unwrap(),
        counts(1, 0, 0, 0)
    );

    // The same content with keys in another order is still unchanged.
    let reordered: Value = serde_json::from_str(&doc.to_string()).unwrap();
    let second = t("2024-03-03T08:00:00Z");
    assert_eq!(
        store
            .commit_page(sleep, &page(&[reordered], second))
            .unwrap(),
        counts(0, 0, 1, 0)
    );
    let row = db::document_row(&path, sleep, "slp-1").unwrap().unwrap();
    assert_eq!(row["last_changed"], json!("2024-03-02T08:00:00Z"));
    assert_eq!(row["first_seen"], json!("2024-03-02T08:00:00Z"));
    assert_eq!(row["last_seen"], json!("2024-03-03T08:00:00Z"));

    let mut revised = doc.clone();
    revised["efficiency"] = json!(91);
    revised["heart_rate"]["items"] = json!([50.0, 49.0]);
    revised["sleep_phase_5_min"] = json!("44");
    let third = t("2024-03-04T08:00:00Z");
    assert_eq!(
        store.commit_page(sleep, &page(&[revised], third)).unwrap(),
        counts(0, 1, 0, 0)
    );
    let row = db::document_row(&path, sleep, "slp-1").unwrap().unwrap();
    assert_eq!(row["efficiency"], json!(91));
    assert_eq!(row["last_changed"], json!("2024-03-04T08:00:00Z"));
    assert_eq!(row["first_seen"], json!("2024-03-02T08:00:00Z"));
    let hr = db::child_rows(&path, sleep, "sleep_heart_rate", "slp-1").unwrap();
    assert_eq!(
        hr.iter().map(|r| r.2).collect::<Vec<_>>(),
        vec![Some(50.0), Some(49.0)]
    );
    assert_eq!(
        db::child_rows(&path, sleep, "sleep_phase", "slp-1")
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        db::child_rows(&path, sleep, "sleep_hrv", "slp-1")
            .unwrap()
            .len(),
        3
    );
    assert_eq!(store.sync_state(sleep).unwrap().documents, 1);
}

#[test]
fn time_series_rows_are_upserted_by_key() {
    let (_dir, path) = temp();
    let mut store = Store::open(&path).unwrap();
    let hr = dt("heartrate");
    let row = |secs: i64, bpm: i64, source: &str| {
        let ts = Timestamp::from_second(secs).unwrap();
        json!({"timestamp": ts.to_string(), "timestamp_unix": secs * 1000, "bpm": bpm, "source": source})
    };
    let base = 1_709_287_200;
    let rows = vec![
        row(base, 60, "awake"),
        row(base, 70, "workout"),
        row(base + 300, 61, "awake"),
    ];
    assert_eq!(commit(&mut store, "heartrate", &rows), counts(3, 0, 0, 0));
    assert_eq!(commit(&mut store, "heartrate", &rows), counts(0, 0, 3, 0));
    let changed = vec![row(base, 62, "awake"), row(base + 600, 63, "awake")];
    assert_eq!(
        commit(&mut store, "heartrate", &changed),
        counts(1, 1, 0, 0)
    );
    assert_eq!(db::count(&path, hr.table), 4);
    assert_eq!(store.sync_state(hr).unwrap().documents, 4);
    let stored = db::series_rows(&path, hr, base, base + 1).unwrap();
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[0]["bpm"], json!(62));
    assert_eq!(stored[0]["source"], json!("awake"));

    let bat = dt("ring_battery_level");
    let b = json!({"timestamp": "2024-03-01T10:05:00+00:00", "timestamp_unix": 1709287500000i64, "level": 80, "charging": true, "in_charger": null});
    assert_eq!(
        commit(&mut store, "ring_battery_level", std::slice::from_ref(&b)),
        counts(1, 0, 0, 0)
    );
    assert_eq!(
        commit(&mut store, "ring_battery_level", &[b]),
        counts(0, 0, 1, 0)
    );
    let stored = db::series_rows(&path, bat, 1_709_287_500, 1_709_287_501).unwrap();
    assert_eq!(stored[0]["charging"], json!(1));
    assert_eq!(stored[0]["in_charger"], Value::Null);
}

#[test]
fn unknown_fields_are_preserved() {
    let (_dir, path) = temp();
    let mut store = Store::open(&path).unwrap();
    let doc = json!({"id": "vo2-9", "day": "2024-03-01", "timestamp": "2024-03-01T12:00:00+01:00", "vo2_max": 44, "vo2_confidence": {"low": 40, "high": 47}});
    commit(&mut store, "vo2_max", std::slice::from_ref(&doc));
    let raw: Value = serde_json::from_str(
        &db::document_json(&path, dt("vo2_max"), "vo2-9")
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(raw, doc);

    let hr = json!({"timestamp": "2024-03-01T10:00:00+00:00", "timestamp_unix": 1709287200000i64, "bpm": 64, "source": "awake", "quality": "good"});
    commit(&mut store, "heartrate", std::slice::from_ref(&hr));
    let rows = db::series_rows(&path, dt("heartrate"), 1_709_287_200, 1_709_287_201).unwrap();
    let extra: Value = serde_json::from_str(rows[0]["extra"].as_str().unwrap()).unwrap();
    assert_eq!(extra, hr);
    assert_eq!(rows[0]["bpm"], json!(64));
}

#[test]
fn documents_marked_deleted_are_removed_with_their_samples() {
    let (_dir, path) = temp();
    let mut store = Store::open(&path).unwrap();
    let sleep = dt("sleep");
    let doc = examples()
        .into_iter()
        .find(|(n, _)| *n == "sleep")
        .unwrap()
        .1;
    commit(&mut store, "sleep", std::slice::from_ref(&doc));
    assert_eq!(
        db::child_rows(&path, sleep, "sleep_heart_rate", "slp-1")
            .unwrap()
            .len(),
        4
    );
    let mut gone = doc.clone();
    gone["type"] = json!("deleted");
    assert_eq!(
        commit(&mut store, "sleep", &[gone.clone()]),
        counts(0, 0, 0, 1)
    );
    assert_eq!(db::count(&path, sleep.table), 0);
    assert!(db::document_json(&path, sleep, "slp-1").unwrap().is_none());
    for table in [
        "sleep_heart_rate",
        "sleep_hrv",
        "sleep_phase",
        "sleep_movement",
    ] {
        assert!(
            db::child_rows(&path, sleep, table, "slp-1")
                .unwrap()
                .is_empty(),
            "{table}"
        );
    }
    assert_eq!(store.sync_state(sleep).unwrap().documents, 0);
    // Seen deleted again: nothing left to delete.
    assert_eq!(commit(&mut store, "sleep", &[gone]), counts(0, 0, 1, 0));
}

#[test]
fn vanished_documents_are_removed_only_when_still_missing_a_day_later() {
    let (_dir, path) = temp();
    let mut store = Store::open(&path).unwrap();
    let tag = dt("tag");
    let doc = |id: &str, day: &str| json!({"id": id, "day": day, "text": "x", "tags": [], "timestamp": format!("{day}T08:00:00+00:00")});
    let docs = vec![
        doc("a", "2024-03-01"),
        doc("b", "2024-03-02"),
        doc("c", "2024-03-03"),
        doc("d", "2024-03-05"),
    ];
    commit(&mut store, "tag", &docs);
    let refetched = vec![doc("a", "2024-03-01"), doc("c", "2024-03-03")];
    let seen: HashSet<String> = ["a", "c"].map(String::from).into();
    let window = |seen, complete| Vanished {
        first_day: date(2024, 3, 1),
        last_day: date(2024, 3, 4),
        seen_ids: seen,
        complete,
    };
    let refetch = |store: &mut Store, at: &str, v: Vanished<'_>| {
        let mut p = page(&refetched, t(at));
        p.vanished = Some(v);
        store.commit_page(tag, &p).unwrap()
    };
    // First missed: recorded, kept, still in every view.
    assert_eq!(
        refetch(&mut store, "2024-03-06T08:00:00Z", window(&seen, true)),
        counts(0, 0, 2, 0)
    );
    assert!(db::document_json(&path, tag, "b").unwrap().is_some());
    assert_eq!(store.pending_removals().unwrap()["tag"], 1);
    // Missing again, but not yet 24 hours later.
    assert_eq!(
        refetch(&mut store, "2024-03-07T07:59:59Z", window(&seen, true)),
        counts(0, 0, 2, 0)
    );
    // A fetch with a document it could not key proves nothing.
    assert_eq!(
        refetch(&mut store, "2024-03-08T08:00:00Z", window(&seen, false)),
        counts(0, 0, 2, 0)
    );
    // An empty answer for a window that holds documents is an outage.
    let nothing = HashSet::new();
    let mut p = page(&[], t("2024-03-09T08:00:00Z"));
    p.vanished = Some(window(&nothing, true));
    assert_eq!(store.commit_page(tag, &p).unwrap(), counts(0, 0, 0, 0));
    assert_eq!(db::count(&path, tag.table), 4);
    // Complete, at least 24 hours after it was first missed: removed.
    assert_eq!(
        refetch(&mut store, "2024-03-09T08:00:00Z", window(&seen, true)),
        counts(0, 0, 2, 1)
    );
    assert!(db::document_json(&path, tag, "b").unwrap().is_none());
    assert!(
        db::document_json(&path, tag, "d").unwrap().is_some(),
        "outside the window"
    );
    assert_eq!(db::count(&path, tag.table), 3);
    assert_eq!(store.sync_state(tag).unwrap().documents, 3);
    assert!(store.pending_removals().unwrap().is_empty());

    // A document that comes back leaves the pending list.
    let only_a: HashSet<String> = ["a"].map(String::from).into();
    refetch(&mut store, "2024-03-10T08:00:00Z", window(&only_a, true));
    assert_eq!(store.pending_removals().unwrap()["tag"], 1, "c missed");
    refetch(&mut store, "2024-03-12T08:00:00Z", window(&seen, true));
    assert!(store.pending_removals().unwrap().is_empty(), "c is back");
    assert!(db::document_json(&path, tag, "c").unwrap().is_some());

    // Types whose API marks deletions never lose a document by absence.
    let ds = dt("daily_sleep");
    let sleep = json!({"id": "s", "day": "2024-03-02", "timestamp": "2024-03-02T00:00:00+00:00", "contributors": {}});
    commit(&mut store, "daily_sleep", &[sleep]);
    for at in ["2024-03-06T08:00:00Z", "2024-03-08T08:00:00Z"] {
        let mut p = page(&refetched[..0], t(at));
        p.vanished = Some(window(&seen, true));
        store.commit_page(ds, &p).unwrap();
    }
    assert!(db::document_json(&path, ds, "s").unwrap().is_some());
}

#[test]
fn delete_document_removes_one_and_reports_whether_it_existed() {
    let (_dir, path) = temp();
    let mut store = Store::open(&path).unwrap();
    let (_, doc) = examples()
        .into_iter()
        .find(|(n, _)| *n == "session")
        .unwrap();
    commit(&mut store, "session", &[doc]);
    let ses = dt("session");
    assert!(store.delete_document(ses, "ses-1").unwrap());
    assert!(!store.delete_document(ses, "ses-1").unwrap());
    assert!(
        db::child_rows(&path, ses, "session_heart_rate", "ses-1")
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.sync_state(ses).unwrap().documents, 0);
    assert!(matches!(
        store.delete_document(dt("heartrate"), "x"),
        Err(StoreError::Invalid(_))
    ));
}

#[test]
fn cursor_and_counters_follow_pages_and_failures() {
    let (_dir, path) = temp();
    let mut store = Store::open(&path).unwrap();
    let d = dt("daily_stress");
    let states = store.all_sync_states().unwrap();
    assert_eq!(
        states
            .iter()
            .map(|s| s.data_type.as_str())
            .collect::<Vec<_>>(),
        registry::names()
    );
    assert!(
        states
            .iter()
            .all(|s| s.documents == 0 && s.high_water.is_none())
    );

    let attempt = t("2024-03-05T10:00:00Z");
    store.record_attempt(d, attempt).unwrap();
    store
        .record_failure(
            d,
            ErrorKind::Forbidden,
            "forbidden: missing scope",
            2,
            t("2024-03-05T10:00:01Z"),
        )
        .unwrap();
    let s = store.sync_state(d).unwrap();
    assert_eq!(s.last_attempt, Some(attempt));
    assert_eq!(s.last_error_kind.as_deref(), Some("forbidden"));
    assert_eq!(s.requests, 2);

    let docs = vec![json!({"id": "s1", "day": "2024-03-04", "stress_high": 60})];
    let at = t("2024-03-05T10:05:00.5Z");
    let mut p = page(&docs, at);
    p.requests = 3;
    p.cursor = CursorAdvance {
        high_water: Some(date(2024, 3, 5)),
        backfill_floor: Some(date(2023, 3, 5)),
        backfill_complete: false,
        window_done: false,
    };
    store.commit_page(d, &p).unwrap();
    let s = store.sync_state(d).unwrap();
    assert_eq!(s.high_water, Some(date(2024, 3, 5)));
    assert_eq!(s.backfill_floor, Some(date(2023, 3, 5)));
    assert_eq!(s.requests, 5);
    assert_eq!(s.documents, 1);
    assert_eq!(
        s.last_error_kind.as_deref(),
        Some("forbidden"),
        "window not done yet"
    );
    assert_eq!(s.last_success, None);

    let mut p = page(&[], at);
    p.cursor = CursorAdvance {
        high_water: None,
        backfill_floor: None,
        backfill_complete: true,
        window_done: true,
    };
    store.commit_page(d, &p).unwrap();
    let s = store.sync_state(d).unwrap();
    assert_eq!(
        s.high_water,
        Some(date(2024, 3, 5)),
        "None leaves the cursor"
    );
    assert_eq!(s.backfill_floor, Some(date(2023, 3, 5)));
    assert!(s.backfill_complete);
    assert_eq!(s.last_success, Some(at), "sub-second times round-trip");
    assert_eq!(s.last_error_kind, None);
    assert_eq!(s.last_error, None);
    assert_eq!(s.last_error_at, None);
    assert_eq!(s.requests, 6);

    let next = t("2024-03-05T11:00:00Z");
    store.set_next_run(d, Some(next)).unwrap();
    assert_eq!(store.sync_state(d).unwrap().next_run, Some(next));
    store.set_next_run(d, None).unwrap();
    assert_eq!(store.sync_state(d).unwrap().next_run, None);

    // A read-only handle sees the same state.
    drop(store);
    let ro = Store::open_read_only(&path).unwrap();
    assert!(ro.sync_state(d).unwrap().backfill_complete);
}

fn quarantined(store_path: &Path) -> Vec<(String, String, String)> {
    let conn = rusqlite::Connection::open(store_path).unwrap();
    let mut stmt = conn
        .prepare("SELECT data_type, doc_key, reason FROM quarantine ORDER BY data_type, doc_key")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn a_bad_document_is_quarantined_and_the_rest_of_the_page_commits_with_its_cursor() {
    let (_dir, path) = temp();
    let mut store = Store::open(&path).unwrap();
    let d = dt("daily_stress");
    let docs = vec![
        json!({"id": "ok-1", "day": "2024-03-01"}),
        // No id and no day: nothing identifies it.
        json!({"note": "no id, no day"}),
        // An id, but no day and no timestamp to derive one from.
        json!({"id": "s-2", "day": null, "stress_high": 60}),
        json!("not an object"),
        // `{}` carries nothing at all and is skipped.
        json!({}),
    ];
    let mut p = page(&docs, t("2024-03-05T10:00:00Z"));
    p.cursor.high_water = Some(date(2024, 3, 2));
    p.cursor.window_done = true;
    let c = store.commit_page(d, &p).unwrap();
    assert_eq!((c.inserted, c.quarantined), (1, 3));
    assert_eq!(db::count(&path, d.table), 1);
    let s = store.sync_state(d).unwrap();
    assert_eq!(s.high_water, Some(date(2024, 3, 2)), "the cursor moved");
    assert!(s.last_success.is_some());
    let q = quarantined(&path);
    assert_eq!(q.len(), 3, "{q:?}");
    assert!(q.iter().any(|(_, k, r)| k == "s-2"
        && r.contains("no readable `day` (got null)")
        && r.contains("`timestamp`")));
    assert!(
        q.iter()
            .any(|(_, k, r)| k.starts_with("sha256:") && r == "not a JSON object")
    );
    for (_, _, reason) in &q {
        assert!(!reason.contains("disk"), "{reason}");
    }
    let summary = store.quarantine_summary().unwrap();
    assert_eq!(summary.len(), 1);
    assert_eq!(summary[0].data_type, "daily_stress");
    assert_eq!(summary[0].count, 3);

    // The same bad copy again: one entry, not two.
    store.commit_page(d, &p).unwrap();
    assert_eq!(quarantined(&path).len(), 3);
    // A good copy of s-2 takes it out of quarantine.
    let good = json!({"id": "s-2", "day": "2024-03-02", "stress_high": 60});
    assert_eq!(
        commit(&mut store, "daily_stress", &[good]),
        counts(1, 0, 0, 0)
    );
    assert_eq!(quarantined(&path).len(), 2);
    assert_eq!(store.quarantine_summary().unwrap()[0].count, 2);

    // Time-series rows: no timestamp, or no source (NOT NULL), are
    // quarantined; the good ones are stored.
    let hr = dt("heartrate");
    let rows = vec![
        json!({"timestamp": "2024-03-01T10:00:00+00:00", "timestamp_unix": 1709287200000i64, "bpm": 60, "source": "awake"}),
        json!({"timestamp": "2024-03-01T10:05:00+00:00", "timestamp_unix": 1709287500000i64, "bpm": 60}),
        json!({"timestamp": "yesterday", "bpm": 60, "source": "awake"}),
    ];
    let mut p = page(&rows, t("2024-03-05T10:00:00Z"));
    p.cursor.high_water = Some(date(2024, 3, 1));
    let c = store.commit_page(hr, &p).unwrap();
    assert_eq!((c.inserted, c.quarantined), (1, 2));
    assert_eq!(db::count(&path, hr.table), 1);
    assert_eq!(
        store.sync_state(hr).unwrap().high_water,
        Some(date(2024, 3, 1))
    );
    let q = quarantined(&path);
    assert!(q.iter().any(|(t, k, r)| t == "heartrate"
        && k == "timestamp:2024-03-01T10:05:00+00:00"
        && r == "row without `source`"));
    // Its good copy replaces the quarantined one.
    let fixed = json!({"timestamp": "2024-03-01T10:05:00+00:00", "timestamp_unix": 1709287500000i64, "bpm": 60, "source": "awake"});
    assert_eq!(
        commit(&mut store, "heartrate", &[fixed]),
        counts(1, 0, 0, 0)
    );
    assert!(
        !quarantined(&path)
            .iter()
            .any(|(_, k, _)| k.contains("10:05"))
    );
}

#[test]
fn documents_without_id_are_keyed_by_their_natural_key_for_every_daily_type() {
    let (_dir, path) = temp();
    let mut store = Store::open(&path).unwrap();
    let daily: Vec<&DataType> = DATA_TYPES
        .iter()
        .filter(|d| d.natural_key == registry::NaturalKey::Fields(&["day"]))
        .collect();
    assert!(daily.len() >= 9, "{}", daily.len());
    for d in daily {
        let name = d.name;
        let doc = |id: Option<&str>, day: &str, rev: i64| {
            let mut v = json!({"day": day, "revision": rev});
            if let Some(id) = id {
                v["id"] = json!(id);
            }
            v
        };
        let row_ids = |store: &Store| -> Vec<String> {
            let conn = rusqlite::Connection::open(&path).unwrap();
            let _ = store;
            conn.prepare(&format!("SELECT id FROM {} ORDER BY id", d.table))
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        // Without id: inserted under the day, updated on re-fetch (the
        // basic day form is the same day), deleted by a webhook naming the day.
        assert_eq!(
            commit(&mut store, name, &[doc(None, "2024-03-16", 1)]),
            counts(1, 0, 0, 0),
            "{name}"
        );
        assert_eq!(
            commit(&mut store, name, &[doc(None, "2024-03-16", 1)]),
            counts(0, 0, 1, 0),
            "{name}"
        );
        assert_eq!(
            commit(&mut store, name, &[doc(None, "20240316", 2)]),
            counts(0, 1, 0, 0),
            "{name}"
        );
        assert_eq!(row_ids(&store), vec!["key:2024-03-16"], "{name}");
        let row = db::document_row(&path, d, "key:2024-03-16")
            .unwrap()
            .unwrap();
        assert_eq!(
            row["day"],
            json!("2024-03-16"),
            "{name}: the day column is normalised"
        );
        assert_eq!(
            row["revision"],
            json!(2),
            "{name}: the new field got a column"
        );
        assert!(store.delete_document(d, "2024-03-16").unwrap(), "{name}");
        assert!(row_ids(&store).is_empty(), "{name}");
        assert_eq!(store.sync_state(d).unwrap().documents, 0, "{name}");

        // With id: the same cycle by id.
        assert_eq!(
            commit(&mut store, name, &[doc(Some("r-1"), "2024-03-17", 1)]),
            counts(1, 0, 0, 0),
            "{name}"
        );
        assert_eq!(
            commit(&mut store, name, &[doc(Some("r-1"), "2024-03-17", 2)]),
            counts(0, 1, 0, 0),
            "{name}"
        );
        assert!(store.delete_document(d, "r-1").unwrap(), "{name}");
        assert!(row_ids(&store).is_empty(), "{name}");

        // Both shapes of one document are one row: the id-carrying copy
        // takes over the id-less row, and a later id-less copy updates it.
        commit(&mut store, name, &[doc(None, "2024-03-18", 1)]);
        assert_eq!(
            commit(&mut store, name, &[doc(Some("r-2"), "2024-03-18", 2)]),
            counts(0, 1, 0, 0),
            "{name}"
        );
        assert_eq!(row_ids(&store), vec!["r-2"], "{name}");
        assert_eq!(
            commit(&mut store, name, &[doc(None, "2024-03-18", 3)]),
            counts(0, 1, 0, 0),
            "{name}"
        );
        assert_eq!(row_ids(&store), vec!["r-2"], "{name}");
        assert!(store.delete_document(d, "r-2").unwrap(), "{name}");
        assert_eq!(db::count(&path, d.table), 0, "{name}");
    }
}

#[test]
fn unknown_scalar_fields_become_typed_columns_filled_from_raw_json() {
    let (_dir, path) = temp();
    let mut store = Store::open(&path).unwrap();
    let cva = dt("daily_cardiovascular_age");
    let old =
        json!({"day": "2024-03-15", "vascular_age": 33, "timestamp": "2024-03-15T00:00:00+01:00"});
    commit(&mut store, "daily_cardiovascular_age", &[old]);
    // An "existing database": the column is gone, the field only in raw_json.
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "ALTER TABLE daily_cardiovascular_age DROP COLUMN timestamp; DELETE FROM added_column;",
        )
        .unwrap();
    }
    drop(store);
    let mut store = Store::open(&path).unwrap();
    let new = json!({"day": "2024-03-16", "vascular_age": 34, "timestamp": "2024-03-16T00:00:00+01:00",
                     "wave_quality": 0.5, "calibrated": true, "odd name": 1, "nested": {"a": 1}});
    commit(&mut store, "daily_cardiovascular_age", &[new]);
    let added = store.added_columns().unwrap();
    let names: Vec<(&str, &str, &str)> = added
        .iter()
        .map(|c| (c.table.as_str(), c.column.as_str(), c.sql_type.as_str()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("daily_cardiovascular_age", "calibrated", "INTEGER"),
            ("daily_cardiovascular_age", "timestamp", "TEXT"),
            ("daily_cardiovascular_age", "wave_quality", "REAL"),
        ]
    );
    let old_row = db::document_row(&path, cva, "key:2024-03-15")
        .unwrap()
        .unwrap();
    assert_eq!(
        old_row["timestamp"],
        json!("2024-03-15T00:00:00+01:00"),
        "back-filled"
    );
    assert_eq!(old_row["wave_quality"], Value::Null);
    let new_row = db::document_row(&path, cva, "key:2024-03-16")
        .unwrap()
        .unwrap();
    assert_eq!(new_row["wave_quality"], json!(0.5));
    assert_eq!(new_row["calibrated"], json!(1));
    // A reader opened afterwards maps the new columns too.
    drop(store);
    let ro = Store::open_read_only(&path).unwrap();
    assert_eq!(ro.added_columns().unwrap().len(), 3);

    // Flattened objects add `<prefix>_<field>` columns.
    let mut store = Store::open(&path).unwrap();
    let ds = json!({"id": "ds-1", "day": "2024-03-16", "score": 80, "timestamp": "2024-03-16T00:00:00+00:00",
                    "contributors": {"deep_sleep": 70, "regularity": 66}});
    commit(&mut store, "daily_sleep", &[ds]);
    let row = db::document_row(&path, dt("daily_sleep"), "ds-1")
        .unwrap()
        .unwrap();
    assert_eq!(row["contributors_regularity"], json!(66));
}

#[test]
fn fingerprint_ignores_timing_but_not_content() {
    let (_dir, path_a) = temp();
    let (_dir2, path_b) = temp();
    let mut a = Store::open(&path_a).unwrap();
    let mut b = Store::open(&path_b).unwrap();
    let all = examples();
    for (name, doc) in &all {
        a.commit_page(
            dt(name),
            &page(std::slice::from_ref(doc), t("2024-03-02T08:00:00Z")),
        )
        .unwrap();
    }
    for (name, doc) in all.iter().rev() {
        let mut p = page(std::slice::from_ref(doc), t("2025-01-01T00:00:00Z"));
        p.requests = 7;
        b.commit_page(dt(name), &p).unwrap();
        b.record_attempt(dt(name), t("2025-01-01T00:00:00Z"))
            .unwrap();
    }
    assert_eq!(db::fingerprint(&path_a), db::fingerprint(&path_b));
    let mut changed = all[2].1.clone();
    changed["score"] = json!(1);
    commit(&mut b, all[2].0, &[changed]);
    assert_ne!(db::fingerprint(&path_a), db::fingerprint(&path_b));
}

#[test]
fn reader_during_writes_sees_only_whole_pages() {
    let (_dir, path) = temp();
    let mut writer = Store::open(&path).unwrap();
    const PAGE: usize = 25;
    const PAGES: usize = 40;
    let reader_path = path.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_r = stop.clone();
    let reader = std::thread::spawn(move || {
        let ro = db::reader(&reader_path);
        let act = dt("daily_activity");
        let mut reads = 0;
        let mut seen_max = 0;
        while !stop_r.load(std::sync::atomic::Ordering::Relaxed) || reads == 0 {
            let n = db::count_on(&ro, act.table);
            assert_eq!(n as usize % PAGE, 0, "saw a partial page: {n} rows");
            assert!(n >= seen_max, "count went backwards");
            seen_max = n;
            reads += 1;
        }
        reads
    });
    let base: Date = date(2020, 1, 1);
    for p in 0..PAGES {
        let docs: Vec<Value> = (0..PAGE)
            .map(|i| {
                let n = p * PAGE + i;
                let day = base.checked_add(jiff::Span::new().days(n as i64)).unwrap();
                json!({"id": format!("act-{n}"), "day": day.to_string(), "steps": n,
                    "timestamp": format!("{day}T04:00:00+00:00"),
                    "met": {"interval": 60.0, "timestamp": format!("{day}T04:00:00+00:00"),
                        "items": vec![1.5; 288]}})
            })
            .collect();
        let mut pc = page(&docs, t("2024-03-02T08:00:00Z"));
        pc.cursor.high_water = Some(base);
        assert_eq!(
            writer
                .commit_page(dt("daily_activity"), &pc)
                .unwrap()
                .inserted,
            PAGE as u64
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let reads = reader.join().unwrap();
    assert!(reads > 0);
    assert_eq!(
        db::count(&path, dt("daily_activity").table),
        (PAGE * PAGES) as i64
    );
}

// ---------------------------------------------------------------------------
// schema.sql against the OpenAPI spec
// ---------------------------------------------------------------------------

/// The spec component schema each data type's documents follow.
const COMPONENTS: &[(&str, &str)] = &[
    ("daily_activity", "PublicDailyActivity"),
    ("daily_cardiovascular_age", "PublicDailyCardiovascularAge"),
    ("daily_readiness", "PublicDailyReadiness"),
    ("daily_resilience", "DailyResilienceModel"),
    ("daily_sleep", "PublicDailySleep"),
    ("daily_spo2", "PublicDailySpO2"),
    ("daily_stress", "PublicDailyStress"),
    ("enhanced_tag", "EnhancedTagModel"),
    ("heartrate", "PublicHeartRateRow"),
    ("personal_info", "PersonalInfoResponse"),
    ("rest_mode_period", "PublicRestModePeriod"),
    ("ring_battery_level", "PublicRingBatteryLevelRow"),
    ("ring_configuration", "PublicRingConfiguration"),
    ("session", "PublicSession"),
    ("sleep", "PublicModifiedSleepModel"),
    ("sleep_time", "PublicSleepTime"),
    ("tag", "TagModel"),
    ("vo2_max", "PublicVO2Max"),
    ("workout", "PublicWorkout"),
];

/// Types the live API serves that spec 1.37 does not list; their rows and
/// columns are checked in `interbeat`.
const BEYOND_SPEC: &[&str] = &["interbeat_interval"];

/// Every migration in order: the schema a new file gets.
/// Follows `$ref`, and `anyOf` alternatives that are not null, to the
/// schema object a property really has.
fn resolve<'a>(spec: &'a Value, s: &'a Value) -> Vec<&'a Value> {
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap();
        return resolve(spec, &spec["components"]["schemas"][name]);
    }
    if let Some(alts) = s.get("anyOf").or(s.get("allOf")).and_then(Value::as_array) {
        return alts.iter().flat_map(|a| resolve(spec, a)).collect();
    }
    vec![s]
}

/// Column names the spec requires: every scalar property, and the scalar
/// properties of objects the registry flattens, as `<prefix>_<field>`.
fn spec_columns(spec: &Value, d: &DataType, prefix: &str, schema: &Value, out: &mut Vec<String>) {
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    for (field, prop) in props {
        let name = if prefix.is_empty() {
            field.clone()
        } else {
            format!("{prefix}_{field}")
        };
        let shapes = resolve(spec, prop);
        let object = shapes.iter().find(|s| s.get("properties").is_some());
        let array = shapes
            .iter()
            .any(|s| s.get("type").and_then(Value::as_str) == Some("array"));
        if let Some(obj) = object {
            if d.flatten.contains(&name.as_str()) {
                spec_columns(spec, d, &name, obj, out);
            } else {
                assert!(
                    d.samples.iter().any(|s| s.field == name),
                    "{}: object field {name} is neither flattened nor a sample array",
                    d.name
                );
            }
        } else if !array {
            out.push(name);
        }
    }
}

#[test]
fn schema_has_a_column_for_every_scalar_field_of_the_spec() {
    let spec: Value =
        serde_json::from_str(&std::fs::read_to_string(crate::util::spec_path()).unwrap()).unwrap();
    // The schema as the migrations leave it (some steps rebuild tables,
    // so their sources cannot simply run one after another).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("schema.sqlite");
    drop(Store::open(&path).unwrap());
    let conn = db::reader(&path);
    let columns_of = |table: &str| -> HashSet<String> {
        let mut stmt = conn
            .prepare(&format!("PRAGMA table_info({table})"))
            .unwrap();
        stmt.query_map([], |r| r.get::<_, String>(1))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert_eq!(COMPONENTS.len() + BEYOND_SPEC.len(), DATA_TYPES.len());
    let mut missing = Vec::new();
    for (name, component) in COMPONENTS {
        let d = dt(name);
        let schema = &spec["components"]["schemas"][component];
        assert!(schema.is_object(), "spec has no {component}");
        let mut wanted = Vec::new();
        spec_columns(&spec, d, "", schema, &mut wanted);
        let have = columns_of(d.table);
        assert!(!have.is_empty(), "no table {}", d.table);
        for col in wanted {
            let col = if d.is_time_series() && col.starts_with("timestamp") {
                "ts".to_owned()
            } else {
                col
            };
            if !have.contains(&col) {
                missing.push(format!("{}.{col}", d.table));
            }
        }
        for s in d.samples {
            assert!(
                !columns_of(s.table).is_empty(),
                "no child table {}",
                s.table
            );
        }
        for s in d.interval_strings {
            assert!(
                !columns_of(s.table).is_empty(),
                "no child table {}",
                s.table
            );
        }
    }
    assert!(
        missing.is_empty(),
        "columns missing from schema.sql: {missing:?}"
    );
    // Booleans are stored as 0/1 and the flattened names use the registry prefixes.
    for col in [
        "contributors_deep_sleep",
        "readiness_contributors_hrv_balance",
        "readiness_score",
    ] {
        assert!(
            columns_of("daily_sleep").contains(col) || columns_of("sleep").contains(col),
            "{col}"
        );
    }
    assert!(columns_of("daily_spo2").contains("spo2_percentage_average"));
    assert!(columns_of("sleep_time").contains("optimal_bedtime_day_tz"));
}

#[test]
fn every_table_column_and_view_in_schema_sql_is_commented() {
    let sql =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("schema.sql")).unwrap();
    let lines: Vec<&str> = sql.lines().collect();
    let mut in_table = false;
    let mut objects = 0;
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim();
        if trimmed.starts_with("CREATE TABLE") || trimmed.starts_with("CREATE VIEW") {
            objects += 1;
            assert!(
                i > 0 && lines[i - 1].trim().starts_with("--"),
                "no comment above line {}: {trimmed}",
                i + 1
            );
            in_table = trimmed.starts_with("CREATE TABLE");
            continue;
        }
        if in_table {
            if trimmed.starts_with(')') {
                in_table = false;
            } else if !trimmed.starts_with("PRIMARY KEY") && !trimmed.is_empty() {
                assert!(
                    trimmed.contains("--"),
                    "column without comment at line {}: {trimmed}",
                    i + 1
                );
            }
        }
    }
    assert!(objects >= 30, "parsed only {objects} tables and views");
}

#[test]
fn views_answer_dashboard_queries() {
    let (_dir, path) = temp();
    let mut store = Store::open(&path).unwrap();
    for (name, doc) in examples() {
        commit(&mut store, name, &[doc]);
    }
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let (day, sleep_score, readiness, activity, total_min, steps): (String, i64, i64, i64, f64, i64) = conn
        .query_row(
            "SELECT day, sleep_score, readiness_score, activity_score, total_sleep_min, steps FROM daily_summary",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
        )
        .unwrap();
    assert_eq!(
        (day.as_str(), sleep_score, readiness, activity, steps),
        ("2024-03-01", 84, 77, 82, 10234)
    );
    assert_eq!(total_min, 420.0);
    let (sleep_id, deep): (String, f64) = conn
        .query_row(
            "SELECT sleep_id, deep_sleep_min FROM sleep_night WHERE day = '2024-03-01'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((sleep_id.as_str(), deep), ("slp-1", 90.0));
    let phases: Vec<String> = conn
        .prepare(
            "SELECT phase_name FROM sleep_hypnogram WHERE sleep_id = 'slp-1' ORDER BY timestamp",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        phases,
        ["awake", "light", "light", "deep", "deep", "REM", "awake"]
    );
    let time: String = conn
        .query_row("SELECT time FROM heartrate_readable", [], |r| r.get(0))
        .unwrap();
    assert_eq!(time, "2024-03-01 10:00:00");
    let tags: i64 = conn
        .query_row("SELECT COUNT(*) FROM tag_item", [], |r| r.get(0))
        .unwrap();
    assert_eq!(tags, 2);
    let episodes: i64 = conn
        .query_row("SELECT COUNT(*) FROM rest_mode_episode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(episodes, 1);
    let classes: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM activity_class_decoded WHERE class_name = 'high activity'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(classes, 1);
}

#[test]
fn full_batches_of_time_series_rows_count_inserts_updates_and_unchanged() {
    let (_dir, path) = temp();
    let mut store = Store::open(&path).unwrap();
    let hr = dt("heartrate");
    let row = |secs: i64, bpm: i64| {
        let ts = Timestamp::from_second(secs).unwrap();
        json!({"timestamp": ts.to_string(), "timestamp_unix": secs * 1000, "bpm": bpm, "source": "awake"})
    };
    let base = 1_709_287_200;
    // 1,000 rows: five full multi-row batches.
    let first: Vec<_> = (0..1000).map(|i| row(base + i * 60, 60 + i % 20)).collect();
    assert_eq!(
        commit(&mut store, "heartrate", &first),
        counts(1000, 0, 0, 0)
    );
    assert_eq!(
        commit(&mut store, "heartrate", &first),
        counts(0, 0, 1000, 0)
    );
    // Half old rows (three of them revised), half new, in full batches.
    let mut mixed: Vec<_> = first[500..].to_vec();
    for r in mixed.iter_mut().take(3) {
        r["bpm"] = json!(150);
    }
    mixed.extend((1000..1500).map(|i| row(base + i * 60, 70)));
    assert_eq!(
        commit(&mut store, "heartrate", &mixed),
        counts(500, 3, 497, 0)
    );
    assert_eq!(db::count(&path, hr.table), 1500);
    assert_eq!(store.sync_state(hr).unwrap().documents, 1500);
    let stored = db::series_rows(&path, hr, base + 500 * 60, base + 500 * 60 + 1).unwrap();
    assert_eq!(stored[0]["bpm"], json!(150));
}

#[test]
fn added_columns_stop_at_64_per_table_and_the_rest_stays_in_raw_json() {
    let (_dir, path) = temp();
    let mut store = Store::open(&path).unwrap();
    let mut doc = json!({"id": "w-1", "day": "2024-03-16"});
    for i in 0..70 {
        doc[format!("field_{i:02}")] = json!(i);
    }
    assert_eq!(
        commit(&mut store, "daily_stress", &[doc.clone()]),
        counts(1, 0, 0, 0)
    );
    assert_eq!(store.added_columns().unwrap().len(), 64);
    let raw: Value = serde_json::from_str(
        &db::document_json(&path, dt("daily_stress"), "w-1")
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(raw, doc, "every field kept in raw_json");
    // The next page with the same fields adds nothing more.
    doc["day"] = json!("2024-03-17");
    doc["id"] = json!("w-2");
    commit(&mut store, "daily_stress", &[doc]);
    assert_eq!(store.added_columns().unwrap().len(), 64);
}

/// The README once said version 1 while new files got 2: the number it
/// gives is the one the binary writes.
#[test]
fn the_readme_states_the_schema_version_new_files_get() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let said = format!("new files are at version {SCHEMA_VERSION}");
    assert!(
        readme
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .contains(&said),
        "README.md must say \"{said}\""
    );
}

/// A version-5 file stored MET samples as rows; version 6 decodes them from
/// raw_json. The migration shows the same rows through the view, and keeps
/// in quarantine any stored sample the document does not hold the same,
/// rather than dropping it with the table.
#[test]
fn met_rows_of_a_version_5_file_become_a_view_and_differences_are_kept() {
    let (_dir, path) = temp();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    for sql in ouradb::store::migration_sources().take(5) {
        conn.execute_batch(sql).unwrap();
    }
    conn.execute_batch(&format!(
        "PRAGMA user_version = 5; PRAGMA application_id = {};",
        0x4F55_5241
    ))
    .unwrap();
    let doc = |id: &str, day: &str, items: Value| {
        json!({"id": id, "day": day, "met": {"interval": 60.0, "items": items,
               "timestamp": format!("{day}T04:00:00.000-05:00")}})
    };
    // 04:00 at -05:00 is 09:00 UTC.
    let start = |day: &str| {
        format!("{day}T09:00:00Z")
            .parse::<Timestamp>()
            .unwrap()
            .as_second()
    };
    let docs = [
        ("a-1", "2024-03-01", json!([1.5, null, 2])),
        ("a-2", "2024-03-02", json!([0.9, 1.1])),
    ];
    for (pk, (id, day, items)) in docs.iter().enumerate() {
        let pk = pk as i64 + 1;
        conn.execute(
            "INSERT INTO daily_activity (pk, id, day, raw_json, first_seen, last_seen, last_changed)
             VALUES (?1, ?2, ?3, ?4, 't', 't', 't')",
            rusqlite::params![pk, id, day, doc(id, day, items.clone()).to_string()],
        )
        .unwrap();
        for (i, v) in items.as_array().unwrap().iter().enumerate() {
            // a-2's second sample was stored differently from its raw_json.
            let v = if *id == "a-2" && i == 1 {
                Some(7.0)
            } else {
                v.as_f64()
            };
            conn.execute(
                "INSERT INTO daily_activity_met (document_pk, offset, timestamp, value) VALUES (?1, ?2, ?3, ?4)",
                rusqlite::params![pk, i as i64, start(day) + 60 * i as i64, v],
            )
            .unwrap();
        }
    }
    drop(conn);

    let store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version(), SCHEMA_VERSION);
    drop(store);
    let act = dt("daily_activity");
    let rows = db::child_rows(&path, act, "daily_activity_met", "a-1").unwrap();
    let t = start("2024-03-01");
    assert_eq!(
        rows,
        vec![
            (0, Some(t), Some(1.5)),
            (1, Some(t + 60), None),
            (2, Some(t + 120), Some(2.0)),
        ]
    );
    let conn = db::reader(&path);
    let kept: Vec<(String, String, String)> = conn
        .prepare("SELECT data_type, doc_key, raw_json FROM quarantine ORDER BY doc_key")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(kept[0].0, "daily_activity");
    assert_eq!(kept[0].1, "met-rows:a-2");
    let raw: Value = serde_json::from_str(&kept[0].2).unwrap();
    assert_eq!(
        raw,
        json!({"id": "a-2", "met_rows": [[1, start("2024-03-02") + 60, 7.0]]})
    );
    let kind: String = conn
        .query_row(
            "SELECT type FROM sqlite_master WHERE name = 'daily_activity_met'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(kind, "view");
}

/// Names of the columns of a table, in order.
fn column_names_of(path: &Path, table: &str) -> Vec<String> {
    db::reader(path)
        .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// A field named `rowid` (or `oid`, `_rowid_`, any case) would shadow
/// SQLite's rowid if it became a column of that name: the store read it
/// back as the row's key, so an update hung the sample rows on another
/// document (or on none, failing the type for good). Such fields get a
/// column with `_` appended, recorded in `added_column`, and the store
/// addresses rows by `pk` or `id` only.
#[test]
fn fields_named_like_the_rowid_get_a_safe_column_and_samples_stay_with_their_document() {
    let (_dir, path) = temp();
    let mut store = Store::open(&path).unwrap();
    let sleep = dt("sleep");
    let mut a = sleep_example();
    let mut b = sleep_example();
    b["id"] = json!("slp-2");
    b["day"] = json!("2024-03-02");
    b["bedtime_start"] = json!("2024-03-01T23:00:00+01:00");
    b["heart_rate"] = sample("2024-03-01T23:00:00.000+01:00", 300.0, json!([70.0, 71.0]));
    // slp-2 gets pk 2: a `rowid` of 2 in slp-1 names that row.
    a["rowid"] = json!(2);
    a["OID"] = json!(2);
    a["_rowid_"] = json!(2);
    b["rowid"] = json!(1);
    commit(&mut store, "sleep", &[a.clone(), b.clone()]);
    a["heart_rate"] = sample(
        "2024-02-29T23:00:00.000+01:00",
        300.0,
        json!([60.0, 61.0, 62.0]),
    );
    a["average_hrv"] = json!(46);
    assert_eq!(
        commit(&mut store, "sleep", &[a.clone(), b]),
        counts(0, 1, 1, 0)
    );
    commit(&mut store, "sleep", &[a]);

    let values = |id: &str| -> Vec<Option<f64>> {
        db::child_rows(&path, sleep, "sleep_heart_rate", id)
            .unwrap()
            .into_iter()
            .map(|(_, _, v)| v)
            .collect()
    };
    assert_eq!(values("slp-1"), vec![Some(60.0), Some(61.0), Some(62.0)]);
    assert_eq!(values("slp-2"), vec![Some(70.0), Some(71.0)]);
    let cols = column_names_of(&path, "sleep");
    for shadow in ["rowid", "oid", "_rowid_"] {
        assert!(
            !cols.iter().any(|c| c.eq_ignore_ascii_case(shadow)),
            "{shadow} in {cols:?}"
        );
    }
    let added: Vec<(String, String)> = store
        .added_columns()
        .unwrap()
        .into_iter()
        .map(|c| (c.column, c.json_path))
        .collect();
    assert_eq!(
        added,
        vec![
            ("OID_".to_owned(), "$.OID".to_owned()),
            ("_rowid__".to_owned(), "$._rowid_".to_owned()),
            ("rowid_".to_owned(), "$.rowid".to_owned()),
        ]
    );
    let row = db::document_row(&path, sleep, "slp-1").unwrap().unwrap();
    assert_eq!((&row["rowid_"], &row["OID_"]), (&json!(2), &json!(2)));
    let row = db::document_row(&path, sleep, "slp-2").unwrap().unwrap();
    assert_eq!(row["rowid_"], json!(1));
}

/// SQLite compares column names without case: two new fields that differ
/// only in case (or a top-level `contributors_extra` beside a flattened
/// `contributors.EXTRA`) failed every run with "duplicate column name".
/// The names are decided once per page; the second gets `_2`, whatever
/// order the documents came in, and each column holds its own field.
#[test]
fn new_fields_differing_only_in_case_get_distinct_columns_decided_once_per_page() {
    let (_dir, path) = temp();
    let mut store = Store::open(&path).unwrap();
    let ds = dt("daily_sleep");
    let docs = vec![
        json!({"id": "ds-1", "day": "2024-03-01", "newField": 1, "contributors_extra": 5}),
        json!({"id": "ds-2", "day": "2024-03-02", "NewField": 2, "contributors": {"EXTRA": 6}}),
    ];
    assert_eq!(commit(&mut store, "daily_sleep", &docs), counts(2, 0, 0, 0));
    let added: Vec<(String, String)> = store
        .added_columns()
        .unwrap()
        .into_iter()
        .map(|c| (c.column, c.json_path))
        .collect();
    assert_eq!(
        added,
        vec![
            ("NewField".to_owned(), "$.NewField".to_owned()),
            (
                "contributors_EXTRA".to_owned(),
                "$.contributors.EXTRA".to_owned()
            ),
            (
                "contributors_extra_2".to_owned(),
                "$.contributors_extra".to_owned()
            ),
            ("newField_2".to_owned(), "$.newField".to_owned()),
        ]
    );
    let one = db::document_row(&path, ds, "ds-1").unwrap().unwrap();
    let two = db::document_row(&path, ds, "ds-2").unwrap().unwrap();
    assert_eq!(
        (&one["newField_2"], &one["NewField"]),
        (&json!(1), &Value::Null)
    );
    assert_eq!(
        (&two["NewField"], &two["newField_2"]),
        (&json!(2), &Value::Null)
    );
    assert_eq!(one["contributors_extra_2"], json!(5));
    assert_eq!(two["contributors_EXTRA"], json!(6));
    // The same fields in the other order, on a fresh mapping: no new column.
    drop(store);
    let mut store = Store::open(&path).unwrap();
    let reversed: Vec<Value> = docs.into_iter().rev().collect();
    assert_eq!(
        commit(&mut store, "daily_sleep", &reversed),
        counts(0, 0, 2, 0)
    );
    assert_eq!(store.added_columns().unwrap().len(), 4);
}

/// Unix seconds of an RFC 3339 date-time, as jiff (and the sample rows)
/// read it.
fn secs(s: &str) -> i64 {
    s.parse::<Timestamp>().unwrap().as_second()
}

/// The MET and activity-class views (and the sleep interval views) decoded
/// their start time with SQLite's strftime, which knows `+05:45` but not
/// `+0545` or `+05:45:30`: their samples had no time. They now read the
/// start as ouradb decodes it for the sleep samples' rows.
#[test]
fn decoding_views_read_offsets_without_colon_or_with_seconds_like_the_sample_rows() {
    let (_dir, path) = temp();
    let mut store = Store::open(&path).unwrap();
    let met_start = "2024-03-01T04:00:00.000+0545";
    let day_start = "2024-03-01T00:00:00+05:45:30";
    let act = json!({"id": "act-1", "day": "2024-03-01", "timestamp": day_start,
        "class_5_min": "123", "met": {"interval": 60.0, "items": [1.5, 2.5], "timestamp": met_start}});
    commit(&mut store, "daily_activity", &[act]);
    let mut slp = sleep_example();
    slp["bedtime_start"] = json!("2024-02-29T23:00:00+0100");
    commit(&mut store, "sleep", &[slp]);
    drop(store);

    let a = dt("daily_activity");
    let met = db::child_rows(&path, a, "daily_activity_met", "act-1").unwrap();
    let m = secs(met_start);
    assert_eq!(
        met,
        vec![(0, Some(m), Some(1.5)), (1, Some(m + 60), Some(2.5))]
    );
    let class = db::child_rows(&path, a, "daily_activity_class", "act-1").unwrap();
    let c = secs(day_start);
    assert_eq!(
        class.iter().map(|r| r.1).collect::<Vec<_>>(),
        vec![Some(c), Some(c + 300), Some(c + 600)]
    );
    // The sleep phases start where the heart-rate samples (rows ouradb
    // writes itself) start.
    let s = dt("sleep");
    let hr = db::child_rows(&path, s, "sleep_heart_rate", "slp-1").unwrap();
    let phase = db::child_rows(&path, s, "sleep_phase", "slp-1").unwrap();
    assert_eq!(phase[0].1, hr[0].1);
    assert_eq!(phase[0].1, Some(secs("2024-02-29T22:00:00Z")));
}

fn history(path: &Path) -> Vec<(String, String, String, String)> {
    db::reader(path)
        .prepare(
            "SELECT data_type, id, day, replaced_by FROM document_history ORDER BY data_type, id",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// A one-per-day collection holds one document per day: when the API
/// re-issues a day under a new id, the newer replaces the older (whose JSON
/// goes to document_history) and daily_summary shows the new one. Before,
/// both rows stayed and daily_summary showed whichever id sorted first.
#[test]
fn a_daily_document_with_a_new_id_for_a_stored_day_replaces_the_old_one() {
    let (_dir, path) = temp();
    let mut store = Store::open(&path).unwrap();
    let old = json!({"id": "a-old", "day": "2024-03-01", "score": 50});
    let new = json!({"id": "b-new", "day": "2024-03-01", "score": 80});
    commit(&mut store, "daily_sleep", std::slice::from_ref(&old));
    // One document, as a webhook apply commits it.
    assert_eq!(
        commit(&mut store, "daily_sleep", &[new]),
        counts(0, 1, 0, 0)
    );
    assert_eq!(db::count(&path, "daily_sleep"), 1);
    let score: i64 = db::reader(&path)
        .query_row(
            "SELECT sleep_score FROM daily_summary WHERE day = '2024-03-01'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(score, 80);
    assert_eq!(
        history(&path),
        vec![(
            "daily_sleep".to_owned(),
            "a-old".to_owned(),
            "2024-03-01".to_owned(),
            "b-new".to_owned()
        )]
    );
    let kept: String = db::reader(&path)
        .query_row("SELECT raw_json FROM document_history", [], |r| r.get(0))
        .unwrap();
    assert_eq!(serde_json::from_str::<Value>(&kept).unwrap(), old);
    assert_eq!(store.sync_state(dt("daily_sleep")).unwrap().documents, 1);

    // The MET samples (read from the row's raw_json) follow the new one.
    let act = |id: &str, items: Value| {
        json!({"id": id, "day": "2024-03-05", "met": {"interval": 60.0, "items": items,
               "timestamp": "2024-03-05T04:00:00.000+00:00"}})
    };
    commit(
        &mut store,
        "daily_activity",
        &[act("act-a", json!([1.0, 2.0, 3.0]))],
    );
    commit(&mut store, "daily_activity", &[act("act-b", json!([9.0]))]);
    let met: i64 = db::reader(&path)
        .query_row("SELECT count(*) FROM daily_activity_met", [], |r| r.get(0))
        .unwrap();
    assert_eq!(met, 1);
}

/// Two ids for one day in the same page: the later one is stored, the
/// other kept in history; the same page again changes nothing (no flapping
/// between the two, no growing history).
#[test]
fn two_ids_for_one_day_in_a_page_store_the_later_one_and_repeat_unchanged() {
    let (_dir, path) = temp();
    let mut store = Store::open(&path).unwrap();
    let page = vec![
        json!({"id": "z-first", "day": "2024-03-01", "score": 50}),
        json!({"id": "a-second", "day": "2024-03-01", "score": 80}),
        json!({"id": "other", "day": "2024-03-02", "score": 60}),
    ];
    commit(&mut store, "daily_sleep", &page);
    assert_eq!(db::count(&path, "daily_sleep"), 2);
    assert!(
        db::document_json(&path, dt("daily_sleep"), "a-second")
            .unwrap()
            .is_some()
    );
    let c = commit(&mut store, "daily_sleep", &page);
    assert_eq!((c.inserted, c.updated, c.deleted), (0, 0, 0));
    assert_eq!(db::count(&path, "daily_sleep"), 2);
    assert_eq!(history(&path).len(), 1);
    assert_eq!(history(&path)[0].1, "z-first");
}

/// Documents with no id and no day that change on every fetch were keyed
/// by their content, so each run added a new quarantine entry per
/// document. At most 1,000 stay per type (or the latest page, when it
/// alone has more): the ones received longest ago go.
#[test]
fn changing_documents_without_id_or_day_do_not_grow_the_quarantine_without_bound() {
    let (_dir, path) = temp();
    let mut store = Store::open(&path).unwrap();
    let d = dt("daily_sleep");
    let entries = |run: i64| -> (i64, i64) {
        let conn = db::reader(&path);
        let count = |sql: &str| conn.query_row(sql, [run], |r| r.get(0)).unwrap();
        (
            count("SELECT count(*) FROM quarantine WHERE ?1 IS NOT NULL"),
            count("SELECT count(*) FROM quarantine WHERE json_extract(raw_json, '$.run') = ?1"),
        )
    };
    for (run, size) in [(0, 600), (1, 600), (2, 600), (3, 1500)] {
        let docs: Vec<Value> = (0..size).map(|i| json!({"score": i, "run": run})).collect();
        let at = t("2024-03-02T08:00:00Z") + jiff::SignedDuration::from_hours(run);
        let c = store.commit_page(d, &page(&docs, at)).unwrap();
        assert_eq!(c.quarantined, size as u64);
        let (all, latest) = entries(run);
        assert_eq!(latest, size, "the latest page is kept whole");
        assert_eq!(all, [600, 1000, 1000, 1500][run as usize], "run {run}");
    }
}

/// Only documents that will be stored may add columns: a field seen only
/// in a quarantined document stays in its quarantine entry.
#[test]
fn fields_of_quarantined_documents_add_no_columns() {
    let (_dir, path) = temp();
    let mut store = Store::open(&path).unwrap();
    let docs = vec![
        json!({"id": "ok", "day": "2024-03-01", "score": 70, "goodField": 1}),
        json!({"id": "no-day", "onlyInBad": 1}),
        json!({"onlyInBadToo": 2}),
    ];
    let c = commit(&mut store, "daily_sleep", &docs);
    assert_eq!((c.inserted, c.quarantined), (1, 2));
    let cols = column_names_of(&path, "daily_sleep");
    assert!(cols.contains(&"goodField".to_owned()), "{cols:?}");
    assert!(!cols.iter().any(|c| c.starts_with("onlyInBad")), "{cols:?}");
}

/// A version-6 file: days stored twice keep their newest document (the
/// other goes to document_history), and the start times of the rows
/// already stored are decoded for the views, offsets of any form.
#[test]
fn a_version_6_file_keeps_one_document_per_day_and_decodes_stored_start_times() {
    let (_dir, path) = temp();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    for sql in ouradb::store::migration_sources().take(6) {
        conn.execute_batch(sql).unwrap();
    }
    conn.execute_batch(&format!(
        "PRAGMA user_version = 6; PRAGMA application_id = {};",
        0x4F55_5241
    ))
    .unwrap();
    let insert = |table: &str, id: &str, day: &str, raw: &Value, seen: &str| {
        conn.execute(
            &format!(
                "INSERT INTO {table} (id, day, raw_json, first_seen, last_seen, last_changed)
                 VALUES (?1, ?2, ?3, ?4, ?4, ?4)"
            ),
            rusqlite::params![id, day, raw.to_string(), seen],
        )
        .unwrap();
    };
    let stale = json!({"id": "a-stale", "day": "2024-03-01", "score": 50});
    let fresh = json!({"id": "b-fresh", "day": "2024-03-01", "score": 80});
    insert(
        "daily_sleep",
        "a-stale",
        "2024-03-01",
        &stale,
        "2024-03-01T08:00:00Z",
    );
    insert(
        "daily_sleep",
        "b-fresh",
        "2024-03-01",
        &fresh,
        "2024-03-03T08:00:00Z",
    );
    insert(
        "daily_sleep",
        "c-alone",
        "2024-03-02",
        &json!({"id": "c-alone", "day": "2024-03-02"}),
        "2024-03-01T08:00:00Z",
    );
    conn.execute(
        "INSERT INTO sync_state (data_type, documents) VALUES ('daily_sleep', 3)",
        [],
    )
    .unwrap();
    let met_start = "2024-03-01T04:00:00.000+0545";
    let day_start = "2024-03-01T00:00:00+05:45:30";
    let act = json!({"id": "act-1", "day": "2024-03-01", "timestamp": day_start, "class_5_min": "12",
        "met": {"interval": 60.0, "items": [1.5], "timestamp": met_start}});
    conn.execute(
        "INSERT INTO daily_activity (id, day, timestamp, class_5_min, met_timestamp, met_interval,
                                     raw_json, first_seen, last_seen, last_changed)
         VALUES ('act-1', '2024-03-01', ?1, '12', ?2, 60.0, ?3, 't', 't', 't')",
        rusqlite::params![day_start, met_start, act.to_string()],
    )
    .unwrap();
    drop(conn);

    let store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version(), SCHEMA_VERSION);
    assert_eq!(store.sync_state(dt("daily_sleep")).unwrap().documents, 2);
    drop(store);
    let ds = dt("daily_sleep");
    assert!(db::document_json(&path, ds, "a-stale").unwrap().is_none());
    assert!(db::document_json(&path, ds, "b-fresh").unwrap().is_some());
    assert!(db::document_json(&path, ds, "c-alone").unwrap().is_some());
    assert_eq!(
        history(&path),
        vec![(
            "daily_sleep".to_owned(),
            "a-stale".to_owned(),
            "2024-03-01".to_owned(),
            "b-fresh".to_owned()
        )]
    );
    let a = dt("daily_activity");
    let met = db::child_rows(&path, a, "daily_activity_met", "act-1").unwrap();
    assert_eq!(met, vec![(0, Some(secs(met_start)), Some(1.5))]);
    let class = db::child_rows(&path, a, "daily_activity_class", "act-1").unwrap();
    assert_eq!(class[1].1, Some(secs(day_start) + 300));
}

/// A version-6 file where an older ouradb gave a `rowid` field a column of
/// that name and hung sample rows on the wrong document: the migration
/// renames the column (`rowid_`, recorded in added_column) and writes the
/// sample rows afresh from each document's raw_json.
#[test]
fn a_version_6_file_with_a_rowid_column_gets_it_renamed_and_its_samples_rebuilt() {
    let (_dir, path) = temp();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    for sql in ouradb::store::migration_sources().take(6) {
        conn.execute_batch(sql).unwrap();
    }
    conn.execute_batch(&format!(
        "PRAGMA user_version = 6; PRAGMA application_id = {};
         ALTER TABLE sleep ADD COLUMN \"rowid\" INTEGER;
         INSERT INTO added_column VALUES ('sleep', 'rowid', 'INTEGER', '$.rowid', 't');",
        0x4F55_5241
    ))
    .unwrap();
    let mut a = sleep_example();
    a["rowid"] = json!(2);
    let mut b = sleep_example();
    b["id"] = json!("slp-2");
    b["heart_rate"] = sample("2024-03-01T23:00:00.000+01:00", 300.0, json!([70.0]));
    for (pk, doc) in [(1, &a), (2, &b)] {
        conn.execute(
            "INSERT INTO sleep (pk, id, day, \"rowid\", raw_json, first_seen, last_seen, last_changed)
             VALUES (?1, ?2, '2024-03-01', ?3, ?4, 't', 't', 't')",
            rusqlite::params![pk, doc["id"].as_str().unwrap(), doc["rowid"].as_i64(), doc.to_string()],
        )
        .unwrap();
    }
    // slp-1's samples stored under slp-2 (its `rowid` column), as the bug did.
    conn.execute_batch(
        "INSERT INTO sleep_heart_rate (document_pk, offset, timestamp, value) VALUES (2, 0, 0, 58.0), (2, 1, 0, 55.0);",
    )
    .unwrap();
    drop(conn);

    let store = Store::open(&path).unwrap();
    let added: Vec<(String, String)> = store
        .added_columns()
        .unwrap()
        .into_iter()
        .map(|c| (c.column, c.json_path))
        .collect();
    assert_eq!(added, vec![("rowid_".to_owned(), "$.rowid".to_owned())]);
    drop(store);
    let s = dt("sleep");
    let values = |id: &str| -> Vec<Option<f64>> {
        db::child_rows(&path, s, "sleep_heart_rate", id)
            .unwrap()
            .into_iter()
            .map(|(_, _, v)| v)
            .collect()
    };
    assert_eq!(
        values("slp-1"),
        vec![Some(58.0), Some(55.0), None, Some(52.0)]
    );
    assert_eq!(values("slp-2"), vec![Some(70.0)]);
    let row = db::document_row(&path, s, "slp-1").unwrap().unwrap();
    assert_eq!(row["rowid_"], json!(2));
}
