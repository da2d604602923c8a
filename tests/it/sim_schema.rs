//! The simulator's synthetic data: every served document against the spec's
//! strict component schemas, plus shapes, volumes and the mutations.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use jiff::civil::{Date, date};
use ouradb_sim::data::*;
use serde_json::Value;

use crate::util;

const TODAY: Date = date(2026, 3, 15);

fn ten_years() -> &'static Dataset {
    static DS: OnceLock<Dataset> = OnceLock::new();
    DS.get_or_init(|| Dataset::generate(7, 3650, TODAY))
}

fn parse(doc: &Document) -> Value {
    serde_json::from_str(&doc.json).expect("document is JSON")
}

/// The spec's components made stricter than the spec itself: no unknown
/// properties on any model, and the date/time string types pinned to the
/// formats Oura serves.
fn strict_components() -> Value {
    let spec: Value =
        serde_json::from_str(&std::fs::read_to_string(util::spec_path()).unwrap()).unwrap();
    let mut components = spec["components"].clone();
    let schemas = components["schemas"].as_object_mut().unwrap();
    for schema in schemas.values_mut() {
        if schema.get("properties").is_some() {
            schema["additionalProperties"] = Value::Bool(false);
        }
    }
    let local = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?[+-]\d\d:\d\d$";
    schemas["LocalizedDateTime"]["pattern"] = local.into();
    schemas["LocalDateTime"]["pattern"] = local.into();
    schemas["UtcDateTime"]["pattern"] = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$".into();
    schemas["ISODate"]["pattern"] = r"^\d{4}-\d\d-\d\d$".into();
    components
}

fn validator(components: &Value, name: &str) -> jsonschema::Validator {
    let root = serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": components,
        "$ref": format!("#/components/schemas/{name}"),
    });
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&root)
        .unwrap_or_else(|e| panic!("schema {name}: {e}"))
}

/// Component name of the single-document route of each collection, read
/// from the spec rather than written down here.
fn schema_names() -> HashMap<String, String> {
    let spec: Value =
        serde_json::from_str(&std::fs::read_to_string(util::spec_path()).unwrap()).unwrap();
    let mut out = HashMap::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        let Some(rest) = path.strip_prefix("/v2/usercollection/") else {
            continue;
        };
        let Some(coll) = rest.strip_suffix("/{document_id}") else {
            continue;
        };
        let r = item["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
            .as_str()
            .unwrap();
        out.insert(coll.to_string(), r.rsplit('/').next().unwrap().to_string());
    }
    out
}

fn check(v: &jsonschema::Validator, what: &str, instance: &Value) {
    if let Err(e) = v.validate(instance) {
        panic!(
            "{what} fails its schema: {e} at {}\n{instance}",
            e.instance_path()
        );
    }
}

/// Validates every document and personal_info, every `hr_stride`-th
/// heart-rate row plus the whole last day of them, and every battery row.
fn validate_all(ds: &Dataset, hr_stride: usize) {
    let components = strict_components();
    let names = schema_names();
    for coll in DOCUMENT_COLLECTIONS {
        let name = names
            .get(*coll)
            .unwrap_or_else(|| panic!("spec has no single-document route for {coll}"));
        let v = validator(&components, name);
        let docs = ds.documents(coll);
        for d in docs {
            let json = parse(d);
            check(&v, coll, &json);
            assert_eq!(json["id"], d.id.as_str());
        }
    }
    let v = validator(&components, "PersonalInfoResponse");
    check(
        &v,
        "personal_info",
        &serde_json::from_str(ds.personal_info()).unwrap(),
    );

    let v = validator(&components, "PublicHeartRateRow");
    let hr = ds.heartrate();
    let tail = hr.len().saturating_sub(1500);
    let mut buf = String::new();
    for (i, s) in hr.iter().enumerate() {
        if i % hr_stride == 0 || i >= tail {
            buf.clear();
            s.write_json(&mut buf);
            check(&v, "heartrate", &serde_json::from_str(&buf).unwrap());
        }
    }
    let v = validator(&components, "PublicRingBatteryLevelRow");
    for s in ds.battery() {
        buf.clear();
        s.write_json(&mut buf);
        check(
            &v,
            "ring_battery_level",
            &serde_json::from_str(&buf).unwrap(),
        );
    }
}

#[test]
fn every_document_of_ten_years_validates_against_the_strict_schemas() {
    let ds = ten_years();
    for coll in DOCUMENT_COLLECTIONS {
        assert!(!ds.documents(coll).is_empty(), "{coll} is empty");
    }
    validate_all(ds, 50);
}

#[test]
fn mutated_documents_still_validate() {
    let mut ds = Dataset::generate(21, 120, TODAY);
    for _ in 0..3 {
        assert!(!ds.advance_days(1).is_empty());
        assert!(!ds.revise_recent().is_empty());
        ds.deliver_late();
        assert!(!ds.delete_some().is_empty());
    }
    validate_all(&ds, 7);
}

#[test]
fn rows_serialize_in_the_spec_shape() {
    let ts = jiff::Timestamp::from_second(1_704_067_200).unwrap();
    let mut out = String::new();
    HeartRateSample {
        ts,
        bpm: 61,
        source: HeartRateSource::Workout,
    }
    .write_json(&mut out);
    assert_eq!(
        out,
        r#"{"bpm":61,"source":"workout","timestamp":"2024-01-01T00:00:00+00:00","timestamp_unix":1704067200000}"#
    );
    out.clear();
    BatterySample {
        ts,
        level: 80,
        charging: Some(true),
        in_charger: None,
    }
    .write_json(&mut out);
    assert_eq!(
        out,
        r#"{"charging":true,"in_charger":null,"level":80,"timestamp":"2024-01-01T00:00:00+00:00","timestamp_unix":1704067200000}"#
    );
}

fn all_docs(ds: &Dataset) -> Vec<(&'static str, String, Date, String)> {
    let mut out = Vec::new();
    for c in DOCUMENT_COLLECTIONS {
        for d in ds.documents(c) {
            out.push((*c, d.id.clone(), d.day, d.json.to_string()));
        }
    }
    out
}

#[test]
fn same_seed_same_bytes_other_seed_other_person() {
    let a = Dataset::generate(11, 90, TODAY);
    let b = Dataset::generate(11, 90, TODAY);
    let c = Dataset::generate(12, 90, TODAY);
    assert_eq!(all_docs(&a), all_docs(&b));
    assert_eq!(a.heartrate(), b.heartrate());
    assert_eq!(a.battery(), b.battery());
    assert_eq!(a.personal_info(), b.personal_info());
    assert_ne!(all_docs(&a), all_docs(&c));
    assert_ne!(a.heartrate(), c.heartrate());
    assert_ne!(a.personal_info(), c.personal_info());
}

#[test]
fn collections_are_sorted_unique_and_indexed() {
    let ds = ten_years();
    for c in DOCUMENT_COLLECTIONS {
        let docs = ds.documents(c);
        let mut ids = HashSet::new();
        for w in docs.windows(2) {
            assert!(
                (w[0].day, &w[0].id) < (w[1].day, &w[1].id),
                "{c} out of order"
            );
        }
        for d in docs {
            assert!(ids.insert(d.id.as_str()), "{c} repeats id {}", d.id);
            assert_eq!(ds.document(c, &d.id).map(|x| &x.json), Some(&d.json));
        }
    }
    assert!(ds.document("sleep", "no-such-id").is_none());
    assert!(ds.documents("no_such_collection").is_empty());
}

#[test]
fn time_series_are_ordered_dense_and_use_every_source() {
    let ds = ten_years();
    let hr = ds.heartrate();
    assert!(
        hr.windows(2).all(|w| w[0].ts < w[1].ts),
        "heart rate not strictly increasing"
    );
    let per_day = hr.len() as f64 / 3650.0;
    assert!(
        (1000.0..1450.0).contains(&per_day),
        "{per_day} heart-rate samples a day"
    );
    let sources: HashSet<&str> = hr.iter().map(|s| s.source.as_str()).collect();
    assert_eq!(sources.len(), 6, "{sources:?}");
    assert!(hr.iter().all(|s| (35..=200).contains(&s.bpm)));
    let b = ds.battery();
    assert!(
        b.windows(2).all(|w| w[0].ts < w[1].ts),
        "battery not strictly increasing"
    );
    assert!(b.len() > 3650 * 90);
    assert!(b.iter().all(|s| s.level <= 100));
    assert!(b.iter().any(|s| s.charging == Some(true)));
    assert!(b.iter().any(|s| s.charging.is_none()));
    // Nothing after the simulated now.
    assert!(hr.last().unwrap().ts <= ds.now());
    assert!(b.last().unwrap().ts <= ds.now());
}

#[test]
fn activity_has_a_full_day_of_samples_and_today_is_partial() {
    let ds = ten_years();
    let docs = ds.documents("daily_activity");
    let (today, past) = docs.split_last().unwrap();
    assert_eq!(today.day, TODAY);
    for d in past {
        let v = parse(d);
        assert_eq!(v["class_5_min"].as_str().unwrap().len(), 288, "{}", d.day);
        assert_eq!(
            v["met"]["items"].as_array().unwrap().len(),
            1440,
            "{}",
            d.day
        );
        assert_eq!(v["met"]["interval"], 60.0);
        assert!(
            v["class_5_min"]
                .as_str()
                .unwrap()
                .bytes()
                .all(|c| (b'0'..=b'5').contains(&c))
        );
    }
    let v = parse(today);
    let class = v["class_5_min"].as_str().unwrap().len();
    assert!(class > 0 && class < 288, "today has {class} slots");
    assert_eq!(v["met"]["items"].as_array().unwrap().len(), class * 5);
    let yesterday = parse(&past[past.len() - 1]);
    assert!(v["steps"].as_i64().unwrap() < yesterday["steps"].as_i64().unwrap() + 20_000);
}

#[test]
fn sleep_periods_have_consistent_strings_and_every_type() {
    let ds = ten_years();
    let mut types = HashSet::new();
    let mut per_day: HashMap<Date, usize> = HashMap::new();
    for d in ds.documents("sleep") {
        let v = parse(d);
        let tib = v["time_in_bed"].as_i64().unwrap();
        let phases = v["sleep_phase_5_min"].as_str().unwrap();
        assert_eq!(phases.len() as i64 * 300, tib, "{}", d.id);
        assert!(phases.bytes().all(|c| (b'1'..=b'4').contains(&c)));
        let movement = v["movement_30_sec"].as_str().unwrap();
        assert_eq!(movement.len() as i64 * 30, tib);
        assert!(movement.bytes().all(|c| (b'1'..=b'4').contains(&c)));
        assert_eq!(
            v["heart_rate"]["items"].as_array().unwrap().len(),
            phases.len()
        );
        assert_eq!(v["heart_rate"]["interval"], 300.0);
        let total = v["total_sleep_duration"].as_i64().unwrap();
        assert_eq!(total + v["awake_time"].as_i64().unwrap(), tib);
        types.insert(v["type"].as_str().unwrap().to_string());
        *per_day.entry(d.day).or_default() += 1;
    }
    for t in ["long_sleep", "sleep", "late_nap", "rest", "deleted"] {
        assert!(types.contains(t), "no {t} period in ten years");
    }
    assert!(per_day.values().filter(|n| **n >= 2).count() > 200);
    assert!(per_day.values().any(|n| *n >= 3));
}

#[test]
fn the_person_travels_across_offsets() {
    let ds = ten_years();
    let offset = |s: &str| s[s.len() - 6..].to_string();
    let mut offsets = HashSet::new();
    let mut mixed = 0;
    for d in ds.documents("sleep") {
        let v = parse(d);
        let (s, e) = (
            v["bedtime_start"].as_str().unwrap(),
            v["bedtime_end"].as_str().unwrap(),
        );
        offsets.insert(offset(e));
        mixed += usize::from(offset(s) != offset(e));
        // The document's day is the local day it ends on.
        assert_eq!(&e[..10], d.day.to_string(), "{}", d.id);
    }
    assert!(offsets.len() >= 3, "{offsets:?}");
    assert!(mixed >= 20, "only {mixed} nights span an offset change");
    let workouts = ds.documents("workout");
    assert!(workouts.iter().any(|w| w.utc_day != w.day));
    for w in workouts {
        let v = parse(w);
        let start = v["start_datetime"].as_str().unwrap();
        assert_eq!(&start[..10], w.day.to_string());
        let ts: jiff::Timestamp = start.parse().unwrap();
        assert_eq!(ts.to_zoned(jiff::tz::TimeZone::UTC).date(), w.utc_day);
    }
}

#[test]
fn nulls_appear_where_real_accounts_have_them() {
    let ds = ten_years();
    let any_null = |coll: &str, ptr: &str| {
        ds.documents(coll)
            .iter()
            .any(|d| parse(d).pointer(ptr) == Some(&Value::Null))
    };
    assert!(any_null("daily_readiness", "/contributors/hrv_balance"));
    assert!(any_null("daily_readiness", "/temperature_trend_deviation"));
    assert!(any_null("sleep", "/readiness"));
    assert!(any_null("sleep", "/readiness/contributors/hrv_balance"));
    assert!(any_null("workout", "/distance"));
    assert!(any_null("workout", "/label"));
    assert!(any_null("daily_stress", "/day_summary"));
    assert!(any_null("daily_spo2", "/spo2_percentage"));
    assert!(any_null("session", "/mood"));
    assert!(any_null("enhanced_tag", "/tag_type_code"));
    assert!(any_null("sleep_time", "/optimal_bedtime"));
    assert!(any_null("ring_configuration", "/color"));
    let items_null = ds.documents("sleep").iter().any(|d| {
        parse(d)["heart_rate"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(Value::is_null)
    });
    assert!(items_null);
}

#[test]
fn ring_configurations_include_the_epoch_set_up() {
    let ds = ten_years();
    let rings = ds.documents("ring_configuration");
    assert!(rings.len() >= 3);
    let epoch = rings
        .iter()
        .filter(|d| parse(d)["set_up_at"] == "1970-01-01T00:00:00+00:00")
        .count();
    assert_eq!(epoch, 1);
    let info: Value = serde_json::from_str(ds.personal_info()).unwrap();
    assert!(info["age"].as_i64().is_some() && info["email"].as_str().is_some());
}

#[test]
fn the_occasional_collections_show_up() {
    let ds = ten_years();
    let n = |c: &str| ds.documents(c).len();
    assert!(n("vO2_max") > 100 && n("vO2_max") < 1000);
    assert!(n("rest_mode_period") >= 5 && n("rest_mode_period") < 60);
    assert!(n("tag") > 50);
    assert!(n("enhanced_tag") > 200);
    assert!(n("session") > 500);
    assert!(n("workout") > 1500);
    for c in [
        "daily_resilience",
        "daily_cardiovascular_age",
        "daily_readiness",
        "daily_sleep",
    ] {
        assert!(n(c) > 3000 && n(c) <= 3650, "{c}: {}", n(c));
    }
    assert_eq!(n("sleep_time"), 3650);
    assert_eq!(n("daily_stress"), 3650);
    let ongoing_or_multi_day = ds.documents("rest_mode_period").iter().all(|d| {
        parse(d)["episodes"]
            .as_array()
            .is_some_and(|e| !e.is_empty())
    });
    assert!(ongoing_or_multi_day);
}

fn assert_consistent(ds: &Dataset) {
    for c in DOCUMENT_COLLECTIONS {
        let docs = ds.documents(c);
        for w in docs.windows(2) {
            assert!(
                (w[0].day, &w[0].id) < (w[1].day, &w[1].id),
                "{c} out of order or repeated"
            );
        }
        for d in docs {
            assert_eq!(
                ds.document(c, &d.id).map(|x| &x.id),
                Some(&d.id),
                "{c} index stale"
            );
        }
    }
    assert!(ds.heartrate().windows(2).all(|w| w[0].ts < w[1].ts));
    assert!(ds.battery().windows(2).all(|w| w[0].ts < w[1].ts));
}

fn changed<'a>(changes: &'a [Change], coll: &str, op: Op) -> Vec<&'a str> {
    changes
        .iter()
        .filter(|c| c.collection == coll && c.op == op)
        .map(|c| c.id.as_str())
        .collect()
}

#[test]
fn advancing_the_clock_matches_a_longer_history() {
    let d0 = date(2025, 6, 10);
    let mut ds = Dataset::generate(5, 60, d0);
    let before = ds.documents("daily_activity").last().unwrap().clone();
    let hr_before = ds.heartrate().len();
    let changes = ds.advance_days(2);
    assert_eq!(ds.today, date(2025, 6, 12));
    assert_consistent(&ds);
    // Yesterday's in-progress activity is completed, the new days appear.
    assert!(changed(&changes, "daily_activity", Op::Update).contains(&before.id.as_str()));
    assert_eq!(changed(&changes, "daily_activity", Op::Create).len(), 2);
    assert!(!changed(&changes, "sleep", Op::Create).is_empty());
    assert!(!changed(&changes, "daily_sleep", Op::Create).is_empty());
    assert!(changes.iter().all(|c| c.op != Op::Delete));
    let today = parse(ds.documents("daily_activity").last().unwrap());
    assert_eq!(today["day"], "2025-06-12");
    assert!(today["class_5_min"].as_str().unwrap().len() < 288);
    assert!(ds.heartrate().len() > hr_before + 2000);
    for c in &changes {
        assert!(
            ds.document(c.collection, &c.id).is_some(),
            "{c:?} not stored"
        );
    }

    // Same seed and same first day, generated in one go: identical except
    // for the night each one still holds back.
    let fresh = Dataset::generate(5, 62, date(2025, 6, 12));
    assert_eq!(ds.heartrate(), fresh.heartrate());
    assert_eq!(ds.battery(), fresh.battery());
    let held = [date(2025, 6, 7), date(2025, 6, 9)];
    let key = |d: &Dataset| {
        all_docs(d)
            .into_iter()
            .filter(|(c, _, day, _)| !(matches!(*c, "sleep" | "daily_sleep") && held.contains(day)))
            .collect::<Vec<_>>()
    };
    assert_eq!(key(&ds), key(&fresh));
    assert!(ds.advance_days(0).is_empty());
}

#[test]
fn revisions_change_content_but_keep_ids() {
    let mut ds = Dataset::generate(3, 45, TODAY);
    let counts: Vec<usize> = DOCUMENT_COLLECTIONS
        .iter()
        .map(|c| ds.documents(c).len())
        .collect();
    let yesterday = TODAY.yesterday().unwrap();
    let act_before = ds
        .documents("daily_activity")
        .iter()
        .find(|d| d.day == yesterday)
        .map(parse)
        .unwrap();
    let old: HashMap<String, Value> = ["daily_sleep", "sleep"]
        .iter()
        .flat_map(|c| ds.documents(c).iter().map(|d| (d.id.clone(), parse(d))))
        .collect();
    let changes = ds.revise_recent();
    assert_consistent(&ds);
    assert!(changes.iter().all(|c| c.op == Op::Update), "{changes:?}");
    let counts_after: Vec<usize> = DOCUMENT_COLLECTIONS
        .iter()
        .map(|c| ds.documents(c).len())
        .collect();
    assert_eq!(counts, counts_after);

    let ds_ids = changed(&changes, "daily_sleep", Op::Update);
    assert_eq!(ds_ids.len(), 1);
    let now = parse(ds.document("daily_sleep", ds_ids[0]).unwrap());
    assert_ne!(now["score"], old[ds_ids[0]]["score"]);
    assert!(now["day"].as_str().unwrap() <= yesterday.to_string().as_str());

    let act_id = act_before["id"].as_str().unwrap();
    assert_eq!(
        changed(&changes, "daily_activity", Op::Update),
        vec![act_id]
    );
    let act_after = parse(ds.document("daily_activity", act_id).unwrap());
    assert!(act_after["steps"].as_i64() > act_before["steps"].as_i64());

    let sleep_ids = changed(&changes, "sleep", Op::Update);
    assert_eq!(sleep_ids.len(), 1);
    let edited = parse(ds.document("sleep", sleep_ids[0]).unwrap());
    let was = &old[sleep_ids[0]];
    assert_eq!(edited["sleep_analysis_reason"], "bedtime_edit");
    assert_ne!(edited["bedtime_start"], was["bedtime_start"]);
    assert_eq!(edited["bedtime_end"], was["bedtime_end"]);
    let tib = edited["time_in_bed"].as_i64().unwrap();
    assert_eq!(tib, was["time_in_bed"].as_i64().unwrap() - 300);
    assert_eq!(
        edited["sleep_phase_5_min"].as_str().unwrap().len() as i64 * 300,
        tib
    );

    // Revisions survive the clock moving on, and can repeat.
    let later = ds.advance_days(1);
    assert!(!later.iter().any(|c| c.id == sleep_ids[0]));
    assert!(!ds.revise_recent().is_empty());
    assert_consistent(&ds);
}

#[test]
fn a_late_night_arrives_with_its_daily_sleep() {
    let mut ds = Dataset::generate(9, 30, TODAY);
    let late_day = date(2026, 3, 12);
    let has = |ds: &Dataset, c: &str| ds.documents(c).iter().any(|d| d.day == late_day);
    assert!(!has(&ds, "daily_sleep"));
    let changes = ds.deliver_late();
    assert_consistent(&ds);
    let sleeps = changed(&changes, "sleep", Op::Create);
    let dailies = changed(&changes, "daily_sleep", Op::Create);
    assert!(!sleeps.is_empty() && dailies.len() == 1, "{changes:?}");
    assert!(has(&ds, "daily_sleep"));
    for id in sleeps {
        assert_eq!(ds.document("sleep", id).unwrap().day, late_day);
    }
    // Nothing left pending: a second delivery finds a missed night or nothing,
    // and never re-creates what is already there.
    let again = ds.deliver_late();
    assert!(again.iter().all(|c| !dailies.contains(&c.id.as_str())));
    assert_consistent(&ds);
}

#[test]
fn deletions_mark_sleep_deleted_and_remove_a_tag() {
    let mut ds = Dataset::generate(4, 200, TODAY);
    let tags_before = ds.documents("tag").len() + ds.documents("enhanced_tag").len();
    let changes = ds.delete_some();
    assert_consistent(&ds);
    let updated = changed(&changes, "sleep", Op::Update);
    assert_eq!(updated.len(), 1, "{changes:?}");
    assert_eq!(
        parse(ds.document("sleep", updated[0]).unwrap())["type"],
        "deleted"
    );
    let gone: Vec<&Change> = changes.iter().filter(|c| c.op == Op::Delete).collect();
    assert_eq!(gone.len(), 1);
    assert!(matches!(gone[0].collection, "tag" | "enhanced_tag"));
    assert!(ds.document(gone[0].collection, &gone[0].id).is_none());
    assert_eq!(
        ds.documents("tag").len() + ds.documents("enhanced_tag").len(),
        tags_before - 1
    );
    // Neither comes back when days are re-derived.
    ds.advance_days(1);
    ds.revise_recent();
    assert!(ds.document(gone[0].collection, &gone[0].id).is_none());
    assert_eq!(
        parse(ds.document("sleep", updated[0]).unwrap())["type"],
        "deleted"
    );
}

#[test]
fn hand_made_documents_are_stored_in_order_and_survive() {
    let mut ds = Dataset::generate(2, 20, TODAY);
    let doc = serde_json::json!({
        "id": "custom-workout-1",
        "activity": "running",
        "calories": null,
        "day": "2026-03-10",
        "distance": null,
        "end_datetime": "2026-03-10T23:50:00-05:00",
        "intensity": "hard",
        "label": null,
        "source": "manual",
        "start_datetime": "2026-03-10T23:10:00-05:00",
    });
    let change = ds.set_document("workout", doc.clone()).unwrap();
    assert_eq!(change.op, Op::Create);
    assert_consistent(&ds);
    let stored = ds.document("workout", "custom-workout-1").unwrap();
    assert_eq!(stored.day, date(2026, 3, 10));
    assert_eq!(stored.utc_day, date(2026, 3, 11));
    let mut edited = doc;
    edited["label"] = "night run".into();
    assert_eq!(ds.set_document("workout", edited).unwrap().op, Op::Update);
    ds.advance_days(1);
    let v = parse(ds.document("workout", "custom-workout-1").unwrap());
    assert_eq!(v["label"], "night run");
    let removed = ds.remove_document("workout", "custom-workout-1").unwrap();
    assert_eq!(removed.op, Op::Delete);
    assert!(ds.document("workout", "custom-workout-1").is_none());
    assert!(ds.remove_document("workout", "custom-workout-1").is_none());
    assert!(
        ds.set_document("nope", serde_json::json!({"id": "x"}))
            .is_err()
    );
    assert!(
        ds.set_document("tag", serde_json::json!({"day": "2026-01-01"}))
            .is_err()
    );
    assert!(
        ds.set_document("tag", serde_json::json!({"id": "x"}))
            .is_err()
    );
    assert_consistent(&ds);
}

#[test]
fn a_single_day_history_is_valid() {
    let ds = Dataset::generate(1, 1, TODAY);
    assert_eq!(ds.documents("daily_activity").len(), 1);
    assert!(!ds.heartrate().is_empty());
    assert_consistent(&ds);
}

#[test]
fn the_strict_schemas_reject_what_oura_would_not_serve() {
    let components = strict_components();
    let v = validator(&components, "PublicWorkout");
    let ds = Dataset::generate(6, 30, TODAY);
    let good = parse(&ds.documents("workout")[0]);
    assert!(v.is_valid(&good));
    let mut extra = good.clone();
    extra["unexpected"] = 1.into();
    assert!(!v.is_valid(&extra));
    let mut no_offset = good.clone();
    no_offset["start_datetime"] = "2026-03-01T10:00:00".into();
    assert!(!v.is_valid(&no_offset));
    let mut bad_enum = good.clone();
    bad_enum["intensity"] = "extreme".into();
    assert!(!v.is_valid(&bad_enum));
    let mut missing = good;
    missing.as_object_mut().unwrap().remove("source");
    assert!(!v.is_valid(&missing));
    let v = validator(&components, "PublicHeartRateRow");
    assert!(!v.is_valid(&serde_json::json!({
        "bpm": 60, "source": "awake", "timestamp": "2026-03-01T10:00:00+01:00", "timestamp_unix": 1
    })));
}
