//! `ouradb coverage --spec FILE`, run as the binary: the spec ouradb was
//! written against gives only the declared deviations; a spec that moved
//! on gives exactly what moved.

use std::path::Path;
use std::process::{Command, Output};

use ouradb::registry::known::BEYOND_SPEC;
use serde_json::{Value, json};

use crate::util::spec_path;

fn coverage(spec: &Path, json: bool) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ouradb"));
    c.args(["coverage", "--spec"]).arg(spec);
    if json {
        c.arg("--json");
    }
    // No configuration is read: a missing config file must not matter.
    c.env("HOME", "/nonexistent").env_remove("XDG_CONFIG_HOME");
    c.output().expect("ouradb runs")
}

fn report(spec: &Path) -> (Option<i32>, Value) {
    let out = coverage(spec, true);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: {stdout} {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code(), report)
}

fn spec_1_37() -> Value {
    let path = spec_path();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("the vendored spec {} is missing: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

#[test]
fn spec_1_37_reports_only_the_declared_deviations() {
    let (code, report) = report(&spec_path());
    assert_eq!(report["findings"], json!([]), "{report:#}");
    assert_eq!(code, Some(0));
    let declared: Vec<Value> = BEYOND_SPEC
        .iter()
        .map(|b| json!({"item": describe(&b.what), "reason": b.reason}))
        .collect();
    assert_eq!(report["beyond"], Value::Array(declared));
    assert_eq!(report["collections"], 19);
    assert!(
        report["beyond"].to_string().contains("interbeat_interval"),
        "{report:#}"
    );

    let out = coverage(&spec_path(), false);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("collection interbeat_interval"), "{text}");
    assert!(text.contains("Nothing else"), "{text}");
    assert!(text.lines().all(|l| l.chars().count() <= 80), "{text}");
}

fn describe(what: &ouradb::registry::known::Beyond) -> String {
    use ouradb::registry::known::Beyond;
    let dotted = |p: &[&str]| p.join(".");
    match *what {
        Beyond::Collection(n) => format!("collection {n}"),
        Beyond::Field(n, p) => format!("field {n}.{}", dotted(p)),
        Beyond::EnumValue(n, p, v) => format!("value {n}.{} = {v:?}", dotted(p)),
    }
}

/// 1.37 with a new collection, a new field, a new enum value and a field
/// taken away.
fn moved_on() -> Value {
    let mut spec = spec_1_37();
    let paths = spec["paths"].as_object_mut().unwrap();
    let new = paths["/v2/usercollection/vO2_max"].clone();
    paths.insert("/v2/usercollection/body_temperature".into(), new);
    let schemas = spec["components"]["schemas"].as_object_mut().unwrap();
    schemas["PublicDailySleep"]["properties"]["skin_temperature"] =
        json!({"anyOf": [{"type": "number"}, {"type": "null"}]});
    schemas["PublicSleepType"]["enum"]
        .as_array_mut()
        .unwrap()
        .push(json!("siesta"));
    schemas["PublicVO2Max"]["properties"]
        .as_object_mut()
        .unwrap()
        .remove("vo2_max")
        .unwrap();
    spec
}

#[test]
fn a_spec_that_moved_on_is_reported_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("openapi-next.json");
    std::fs::write(&path, moved_on().to_string()).unwrap();
    let (code, report) = report(&path);
    assert_eq!(
        report["findings"],
        json!([
            {"kind": "unknown_collection", "collection": "body_temperature"},
            {"kind": "unknown_field", "data_type": "daily_sleep", "field": "skin_temperature"},
            {"kind": "unknown_enum_value", "data_type": "sleep", "field": "type", "value": "siesta"},
            {"kind": "dropped_field", "data_type": "vo2_max", "field": "vo2_max"},
        ]),
        "{report:#}"
    );
    assert_eq!(code, Some(1), "findings exit 1");
    assert_eq!(report["collections"], 20);

    let out = coverage(&path, false);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    for line in [
        "Collections the spec has that ouradb does not sync:\n  body_temperature\n",
        "Fields ouradb has no typed column for:\n  daily_sleep.skin_temperature\n",
        "Enum values ouradb does not know:\n  sleep.type = \"siesta\"\n",
        "Fields ouradb stores that the spec does not list:\n  vo2_max.vo2_max\n",
        "4 finding(s)",
    ] {
        assert!(text.contains(line), "{line:?} in\n{text}");
    }
    assert!(text.lines().all(|l| l.chars().count() <= 80), "{text}");
}

#[test]
fn a_file_that_is_not_an_oura_spec_is_refused_naming_the_cause_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("missing.json", None, "cannot read the spec"),
        ("broken.json", Some("{\"openapi\": "), "it is not JSON"),
        (
            "other.json",
            Some("{\"swagger\": \"2.0\"}"),
            "not an OpenAPI document",
        ),
        (
            "petstore.json",
            Some(r#"{"openapi": "3.0.0", "paths": {"/pets": {}}}"#),
            "lists no /v2/usercollection/",
        ),
    ];
    for (name, content, cause) in cases {
        let path = dir.path().join(name);
        if let Some(c) = content {
            std::fs::write(&path, c).unwrap();
        }
        let out = coverage(&path, false);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(stderr.contains(cause), "{name}: {stderr}");
        assert!(stderr.contains(name), "names the file: {stderr}");
        assert!(
            stderr.contains("download the current spec") && stderr.contains("--spec"),
            "{name}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{name}");
    }
}
