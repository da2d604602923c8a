//! The simulator's synthetic data: every served document against the spec's
//! strict component schemas, plus shapes, volumes and the mutations.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use jiff::civil::{Date, date};
use ouradb::sim::data::*;
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

#[test]
fn every_document_of_ten_years_validates_against_the_strict_schemas() {
    let ds = ten_years();
    let components = strict_components();
    let names = schema_names();
    for coll in DOCUMENT_COLLECTIONS {
        let name = names
            .get(*coll)
            .unwrap_or_else(|| panic!("spec has no single-document route for {coll}"));
        let v = validator(&components, name);
        let docs = ds.documents(coll);
        assert!(!docs.is_empty(), "{coll} is empty");
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

    // Heart rate: every 50th row plus every row of the last day.
    let v = validator(&components, "PublicHeartRateRow");
    let hr = ds.heartrate();
    let tail = hr.len().saturating_sub(1500);
    let mut buf = String::new();
    for (i, s) in hr.iter().enumerate() {
        if i % 50 == 0 || i >= tail {
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
