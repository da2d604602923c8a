//! `ouradb coverage`: compares an Oura OpenAPI document with what ouradb
//! knows (the registry's data types, the typed columns the store maps,
//! and `registry::known`) and lists what either side lacks.
//!
//! Pure: the caller reads the file and asks the store for the typed
//! columns; nothing here does I/O. The cli renders the [`Report`].

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

use crate::registry::DataType;
use crate::registry::known::{Beyond, BeyondSpec, KnownEnum, RawField};
use crate::store::TypedColumn;

/// Where the spec lists the collections ouradb syncs.
const COLLECTION_PREFIX: &str = "/v2/usercollection/";

/// `$ref` chains longer than this are taken for a cycle: a hostile or
/// broken spec must not recurse forever.
const MAX_REF_DEPTH: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum CoverageError {
    #[error("it is not JSON ({0})")]
    NotJson(#[source] serde_json::Error),
    #[error("it is not an OpenAPI document (no {0})")]
    NotOpenApi(&'static str),
    #[error("it lists no {COLLECTION_PREFIX}… collection, so it is not Oura's API")]
    NoCollections,
}

/// What ouradb knows, as compared with a spec.
#[derive(Debug, Clone, Copy)]
pub struct Known<'a> {
    pub types: &'a [DataType],
    /// Each type's typed columns (`store::typed_columns`).
    pub columns: &'a [(&'static str, Vec<TypedColumn>)],
    pub enums: &'a [KnownEnum],
    pub raw_fields: &'a [RawField],
    pub beyond: &'a [BeyondSpec],
}

/// One difference between the spec and ouradb. Fields are JSON paths
/// joined with `.`; collections are the spec's path segment, data types
/// the registry's name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Finding {
    /// A collection the spec has and ouradb does not sync.
    UnknownCollection { collection: String },
    /// A field of a known collection with no typed column (nor sample
    /// table or view) in ouradb.
    UnknownField { data_type: String, field: String },
    /// A value of an enum ouradb relies on that it does not know.
    UnknownEnumValue {
        data_type: String,
        field: String,
        value: String,
    },
    /// A data type ouradb syncs that the spec does not list.
    DroppedCollection { data_type: String },
    /// A field ouradb stores that the spec's document lacks.
    DroppedField { data_type: String, field: String },
    /// A value ouradb relies on that the spec's enum lacks.
    DroppedEnumValue {
        data_type: String,
        field: String,
        value: String,
    },
    /// A declared deviation (`registry::known::BEYOND_SPEC`) that no longer
    /// holds: the spec lists it now, or ouradb no longer models it.
    StaleDeclaration { item: String, why: String },
}

/// A declared deviation that holds for this spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deviation {
    pub item: String,
    pub reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The spec's `info.title` and `info.version`.
    pub title: String,
    pub version: String,
    /// Collections the spec lists.
    pub collections: usize,
    /// What ouradb deliberately models beyond the spec.
    pub beyond: Vec<Deviation>,
    /// Sorted; empty when ouradb knows everything the spec lists.
    pub findings: Vec<Finding>,
}

/// Compares the OpenAPI document `text` with `known`.
pub fn compare(text: &str, known: &Known) -> Result<Report, CoverageError> {
    let spec: Value = serde_json::from_str(text).map_err(CoverageError::NotJson)?;
    for key in ["openapi", "paths"] {
        if spec.get(key).is_none() {
            return Err(CoverageError::NotOpenApi(if key == "paths" {
                "`paths`"
            } else {
                "`openapi` version"
            }));
        }
    }
    let collections = collections(&spec);
    if collections.is_empty() {
        return Err(CoverageError::NoCollections);
    }
    let text_of = |p: &str| {
        spec.pointer(&format!("/info/{p}"))
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_owned()
    };
    let mut c = Comparison::default();
    c.collections(&spec, &collections, known);
    c.declarations(&collections, known);
    c.findings.sort();
    c.findings.dedup();
    Ok(Report {
        title: text_of("title"),
        version: text_of("version"),
        collections: collections.len(),
        beyond: c.beyond,
        findings: c.findings,
    })
}

/// The spec's collections by path segment, each with its document schema
/// (`None` when the spec gives none).
fn collections(spec: &Value) -> BTreeMap<String, Option<&Value>> {
    let Some(paths) = spec.get("paths").and_then(Value::as_object) else {
        return BTreeMap::new();
    };
    paths
        .iter()
        .filter_map(|(path, item)| {
            let name = path.strip_prefix(COLLECTION_PREFIX)?;
            (!name.is_empty() && !name.contains('/'))
                .then(|| (name.to_owned(), document(spec, item)))
        })
        .collect()
}

/// The schema of one document of a collection: the items of the 200
/// answer's `data` array, or the answer itself (personal_info).
fn document<'a>(spec: &'a Value, item: &'a Value) -> Option<&'a Value> {
    let answer = item.pointer("/get/responses/200/content/application~1json/schema")?;
    let shapes = shapes(spec, answer, 0);
    shapes
        .iter()
        .find_map(|s| {
            let data = s.pointer("/properties/data/items")?;
            shapes_of_kind(spec, data)
        })
        .or_else(|| shapes.into_iter().find(|s| s.get("properties").is_some()))
}

fn shapes_of_kind<'a>(spec: &'a Value, s: &'a Value) -> Option<&'a Value> {
    shapes(spec, s, 0)
        .into_iter()
        .find(|s| s.get("properties").is_some())
}

/// The alternatives a schema stands for: `$ref`s followed, `anyOf`,
/// `oneOf` and `allOf` opened, `null` left out.
fn shapes<'a>(spec: &'a Value, s: &'a Value, depth: usize) -> Vec<&'a Value> {
    if depth > MAX_REF_DEPTH {
        return Vec::new();
    }
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        return r
            .strip_prefix('#')
            .and_then(|p| spec.pointer(p))
            .map_or_else(Vec::new, |t| shapes(spec, t, depth + 1));
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(alts) = s.get(key).and_then(Value::as_array) {
            return alts
                .iter()
                .flat_map(|a| shapes(spec, a, depth + 1))
                .collect();
        }
    }
    if s.get("type").and_then(Value::as_str) == Some("null") {
        return Vec::new();
    }
    vec![s]
}

/// One property of a spec document, nested ones included.
#[derive(Debug)]
struct SpecField {
    path: Vec<String>,
    /// An object with properties of its own (listed after it).
    object: bool,
    array: bool,
    /// The values of its `enum`, when it has one.
    values: BTreeSet<String>,
}

/// Every property of `schema`, depth first, paths under `prefix`.
fn fields(spec: &Value, schema: &Value, prefix: &[String], out: &mut Vec<SpecField>) {
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    if prefix.len() >= MAX_REF_DEPTH {
        return; // a schema containing itself
    }
    for (name, prop) in props {
        let mut path = prefix.to_vec();
        path.push(name.clone());
        let alts = shapes(spec, prop, 0);
        let object = alts.iter().find(|s| s.get("properties").is_some());
        let values = alts
            .iter()
            .filter_map(|s| s.get("enum").and_then(Value::as_array))
            .flatten()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            .collect();
        out.push(SpecField {
            path: path.clone(),
            object: object.is_some(),
            array: alts
                .iter()
                .any(|s| s.get("type").and_then(Value::as_str) == Some("array")),
            values,
        });
        if let Some(obj) = object {
            fields(spec, obj, &path, out);
        }
    }
}

fn dotted(path: &[impl AsRef<str>]) -> String {
    path.iter().map(AsRef::as_ref).collect::<Vec<_>>().join(".")
}

fn same(a: &[String], b: &[&str]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

#[derive(Default)]
struct Comparison {
    beyond: Vec<Deviation>,
    findings: Vec<Finding>,
    /// The spec's fields of each data type it lists, by registry name.
    spec_fields: SpecFields,
}

impl Comparison {
    fn collections(
        &mut self,
        spec: &Value,
        listed: &BTreeMap<String, Option<&Value>>,
        known: &Known,
    ) {
        for (name, doc) in listed {
            match known.types.iter().find(|d| d.path == name) {
                None => self.findings.push(Finding::UnknownCollection {
                    collection: name.clone(),
                }),
                Some(dt) => {
                    if let Some(doc) = doc {
                        let mut spec_fields = Vec::new();
                        fields(spec, doc, &[], &mut spec_fields);
                        self.fields(dt, &spec_fields, known);
                        self.enums(dt, &spec_fields, known);
                        self.spec_fields.insert(dt.name, spec_fields);
                    }
                }
            }
        }
        for dt in known.types.iter().filter(|d| !listed.contains_key(d.path)) {
            let declared = known
                .beyond
                .iter()
                .any(|b| b.what == Beyond::Collection(dt.name));
            if !declared {
                self.findings.push(Finding::DroppedCollection {
                    data_type: dt.name.to_owned(),
                });
            }
        }
    }
}

/// A data type's spec fields, as the comparison needs them more than once.
type SpecFields = BTreeMap<&'static str, Vec<SpecField>>;

impl Comparison {
    /// Spec fields of `dt` that ouradb has nowhere to put.
    fn unknown_fields(dt: &DataType, spec_fields: &[SpecField], known: &Known) -> Vec<String> {
        let columns = columns_of(dt, known);
        let mut skip: Vec<&[String]> = Vec::new();
        let mut unknown = Vec::new();
        for f in spec_fields {
            if skip.iter().any(|s| f.path.starts_with(s)) {
                continue;
            }
            if kept_whole(dt, known, &f.path) {
                skip.push(&f.path);
                continue;
            }
            let held = if f.object {
                // Flattened: its fields are columns, each checked on its own.
                columns
                    .iter()
                    .flat_map(|c| &c.paths)
                    .any(|p| p.len() > f.path.len() && p.starts_with(&f.path))
            } else {
                !f.array && columns.iter().any(|c| c.paths.contains(&f.path))
            };
            if !held {
                unknown.push(dotted(&f.path));
                skip.push(&f.path);
            }
        }
        unknown
    }

    fn fields(&mut self, dt: &DataType, spec_fields: &[SpecField], known: &Known) {
        for field in Self::unknown_fields(dt, spec_fields, known) {
            self.findings.push(Finding::UnknownField {
                data_type: dt.name.to_owned(),
                field,
            });
        }
        let in_spec = |p: &[String]| spec_fields.iter().any(|f| f.path == p);
        let declared = |p: &[String]| {
            known
                .beyond
                .iter()
                .any(|b| matches!(b.what, Beyond::Field(t, f) if t == dt.name && same(p, f)))
        };
        let mut ours: Vec<Vec<String>> = columns_of(dt, known)
            .iter()
            .filter(|c| !c.paths.iter().any(|p| in_spec(p) || declared(p)))
            .filter_map(|c| c.paths.last().cloned())
            .collect();
        ours.extend(whole_kept(dt, known).map(|f| vec![f.to_owned()]));
        for path in ours.into_iter().filter(|p| !in_spec(p) && !declared(p)) {
            self.findings.push(Finding::DroppedField {
                data_type: dt.name.to_owned(),
                field: dotted(&path),
            });
        }
    }

    fn enums(&mut self, dt: &DataType, spec_fields: &[SpecField], known: &Known) {
        for (path, ours) in relied_values(dt, known) {
            let Some(f) = spec_fields.iter().find(|f| same(&f.path, &path)) else {
                continue; // a dropped field: reported as one
            };
            let declared = |v: &str| {
                known.beyond.iter().any(|b| {
                    matches!(b.what, Beyond::EnumValue(t, p, x) if t == dt.name && p == path && x == v)
                })
            };
            let finding = |value: &String, unknown: bool| {
                let (data_type, field, value) = (dt.name.to_owned(), dotted(&path), value.clone());
                if unknown {
                    Finding::UnknownEnumValue {
                        data_type,
                        field,
                        value,
                    }
                } else {
                    Finding::DroppedEnumValue {
                        data_type,
                        field,
                        value,
                    }
                }
            };
            for v in f
                .values
                .iter()
                .filter(|v| !ours.contains(v.as_str()) && !declared(v))
            {
                self.findings.push(finding(v, true));
            }
            for v in ours.iter().filter(|v| !f.values.contains(**v)) {
                self.findings.push(finding(&(*v).to_owned(), false));
            }
        }
    }
}

/// The typed columns of `dt` (none when the store mapped no table).
fn columns_of<'a>(dt: &DataType, known: &'a Known) -> &'a [TypedColumn] {
    known
        .columns
        .iter()
        .find(|(n, _)| *n == dt.name)
        .map_or(&[], |(_, c)| c.as_slice())
}

/// Top-level fields ouradb keeps whole outside the typed columns: sample
/// arrays (rows or a view) and fields left in `raw_json` for a view.
fn whole_kept<'a>(dt: &'a DataType, known: &'a Known) -> impl Iterator<Item = &'static str> + 'a {
    dt.samples.iter().map(|s| s.field).chain(
        known
            .raw_fields
            .iter()
            .filter(|r| r.data_type == dt.name)
            .map(|r| r.field),
    )
}

fn kept_whole(dt: &DataType, known: &Known, path: &[String]) -> bool {
    path.len() == 1 && whole_kept(dt, known).any(|f| f == path[0])
}

/// The enum fields of `dt` whose values ouradb relies on, with the values
/// (`registry::known::ENUMS` and the type's deletion marker).
fn relied_values(
    dt: &DataType,
    known: &Known,
) -> BTreeMap<Vec<&'static str>, BTreeSet<&'static str>> {
    let mut out: BTreeMap<Vec<&'static str>, BTreeSet<&'static str>> = BTreeMap::new();
    for e in known.enums.iter().filter(|e| e.data_type == dt.name) {
        out.entry(e.field.to_vec()).or_default().extend(e.values);
    }
    if let Some((field, value)) = dt.deleted_marker {
        out.entry(vec![field]).or_default().insert(value);
    }
    out
}

/// Whether ouradb stores `path` of `dt` anywhere: a typed column, a
/// sample table or a view over `raw_json`.
fn ouradb_has(dt: &DataType, known: &Known, path: &[&str]) -> bool {
    let path: Vec<String> = path.iter().map(|s| (*s).to_owned()).collect();
    kept_whole(dt, known, &path)
        || columns_of(dt, known)
            .iter()
            .any(|c| c.paths.contains(&path))
}

impl Comparison {
    /// Checks each declared deviation: one that holds is listed as such,
    /// one that no longer does is a finding.
    fn declarations(&mut self, listed: &BTreeMap<String, Option<&Value>>, known: &Known) {
        for b in known.beyond {
            let item = describe(&b.what);
            match self.stale(&b.what, listed, known) {
                Some(why) => self.findings.push(Finding::StaleDeclaration { item, why }),
                None => self.beyond.push(Deviation {
                    item,
                    reason: b.reason,
                }),
            }
        }
    }

    /// Why a declaration no longer holds, if it does not.
    fn stale(
        &self,
        what: &Beyond,
        listed: &BTreeMap<String, Option<&Value>>,
        known: &Known,
    ) -> Option<String> {
        const LISTED: &str = "the spec lists it now: remove the declaration";
        let name = match *what {
            Beyond::Collection(n) | Beyond::Field(n, _) | Beyond::EnumValue(n, _, _) => n,
        };
        let Some(dt) = known.types.iter().find(|d| d.name == name) else {
            return Some(format!("the registry has no data type {name}"));
        };
        let spec_field = |p: &[&str]| {
            self.spec_fields
                .get(dt.name)
                .and_then(|fs| fs.iter().find(|f| same(&f.path, p)))
        };
        match *what {
            Beyond::Collection(_) => listed.contains_key(dt.path).then(|| LISTED.to_owned()),
            Beyond::Field(_, path) if !ouradb_has(dt, known, path) => {
                Some("ouradb has no typed column, sample table or view for it".to_owned())
            }
            Beyond::Field(_, path) => spec_field(path).map(|_| LISTED.to_owned()),
            Beyond::EnumValue(_, path, _) if !relied_values(dt, known).contains_key(path) => {
                Some("ouradb relies on no values of this field (registry::known::ENUMS)".to_owned())
            }
            Beyond::EnumValue(_, path, value) => spec_field(path)
                .filter(|f| f.values.contains(value))
                .map(|_| LISTED.to_owned()),
        }
    }
}

/// A declared item in words: `collection x`, `field x.a.b`, `value x.a = "v"`.
fn describe(what: &Beyond) -> String {
    match *what {
        Beyond::Collection(n) => format!("collection {n}"),
        Beyond::Field(n, p) => format!("field {n}.{}", dotted(p)),
        Beyond::EnumValue(n, p, v) => format!("value {n}.{} = {v:?}", dotted(p)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::known::{ENUMS, RAW_FIELDS};
    use crate::registry::{self, DATA_TYPES};

    /// A spec with daily_stress only, as 1.37 has it, plus `extra`
    /// properties on its document and `values` for its enum.
    fn spec(extra: Value, values: &[&str]) -> String {
        let mut doc = json!({
            "id": {"type": "string"},
            "day": {"type": "string", "format": "date"},
            "day_summary": {"anyOf": [{"$ref": "#/components/schemas/E"}, {"type": "null"}]},
            "stress_high": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
            "recovery_high": {"type": "integer"}
        });
        doc.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        json!({
            "openapi": "3.1.0",
            "info": {"title": "T", "version": "9"},
            "paths": {"/v2/usercollection/daily_stress": {"get": {"responses": {"200": {"content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/R"}}}}}}}},
            "components": {"schemas": {
                "R": {"properties": {"data": {"type": "array", "items": {"$ref": "#/components/schemas/S"}}}},
                "S": {"properties": doc},
                "E": {"enum": values}
            }}
        })
        .to_string()
    }

    use serde_json::json;

    const SUMMARIES: &[&str] = &["restored", "normal", "stressful"];

    fn run(text: &str, beyond: &[BeyondSpec]) -> Report {
        let types = std::slice::from_ref(registry::find("daily_stress").unwrap());
        let columns = crate::store::typed_columns(types).unwrap();
        let known = Known {
            types,
            columns: &columns,
            enums: ENUMS,
            raw_fields: RAW_FIELDS,
            beyond,
        };
        compare(text, &known).unwrap()
    }

    #[test]
    fn the_same_document_gives_nothing() {
        let r = run(&spec(json!({}), SUMMARIES), &[]);
        assert_eq!(r.findings, []);
        assert_eq!((r.collections, r.version.as_str()), (1, "9"));
    }

    #[test]
    fn an_object_or_array_without_columns_is_one_finding() {
        let extra = json!({
            "details": {"properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}},
            "notes": {"type": "array", "items": {"type": "string"}},
            "cycle": {"$ref": "#/components/schemas/S"}
        });
        let r = run(&spec(extra, SUMMARIES), &[]);
        let unknown = |f: &str| Finding::UnknownField {
            data_type: "daily_stress".into(),
            field: f.into(),
        };
        assert_eq!(
            r.findings,
            [unknown("cycle"), unknown("details"), unknown("notes")]
        );
    }

    #[test]
    fn enum_values_are_compared_both_ways() {
        let r = run(&spec(json!({}), &["restored", "normal", "calm"]), &[]);
        let value = |v: &str| {
            (
                "daily_stress".to_owned(),
                "day_summary".to_owned(),
                v.to_owned(),
            )
        };
        let (data_type, field, value_) = value("calm");
        let (d2, f2, v2) = value("stressful");
        assert_eq!(
            r.findings,
            [
                Finding::UnknownEnumValue {
                    data_type,
                    field,
                    value: value_
                },
                Finding::DroppedEnumValue {
                    data_type: d2,
                    field: f2,
                    value: v2
                },
            ]
        );
    }

    #[test]
    fn declarations_hold_until_the_spec_or_ouradb_catches_up() {
        let calm = Beyond::EnumValue("daily_stress", &["day_summary"], "calm");
        let declare = |what| BeyondSpec {
            what,
            reason: "why",
        };
        let beyond = [
            declare(calm),
            declare(Beyond::Collection("daily_stress")),
            declare(Beyond::Collection("no_such_type")),
            declare(Beyond::Field("daily_stress", &["stress_high"])),
            declare(Beyond::Field("daily_stress", &["mood"])),
            declare(Beyond::EnumValue("daily_stress", &["stress_high"], "1")),
        ];
        let r = run(&spec(json!({}), SUMMARIES), &beyond);
        assert_eq!(
            r.beyond,
            [Deviation {
                item: "value daily_stress.day_summary = \"calm\"".into(),
                reason: "why"
            }]
        );
        let stale: Vec<(&str, &str)> = r
            .findings
            .iter()
            .map(|f| match f {
                Finding::StaleDeclaration { item, why } => (item.as_str(), why.as_str()),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            stale,
            [
                (
                    "collection daily_stress",
                    "the spec lists it now: remove the declaration"
                ),
                (
                    "collection no_such_type",
                    "the registry has no data type no_such_type"
                ),
                (
                    "field daily_stress.mood",
                    "ouradb has no typed column, sample table or view for it"
                ),
                (
                    "field daily_stress.stress_high",
                    "the spec lists it now: remove the declaration"
                ),
                (
                    "value daily_stress.stress_high = \"1\"",
                    "ouradb relies on no values of this field (registry::known::ENUMS)"
                ),
            ]
        );
        // Once the spec lists the declared value, the declaration is stale.
        let r = run(
            &spec(json!({}), &["restored", "normal", "stressful", "calm"]),
            &beyond[..1],
        );
        assert_eq!(r.beyond, []);
        assert!(
            matches!(&r.findings[..], [Finding::StaleDeclaration { item, .. }] if item.contains("calm"))
        );
    }

    #[test]
    fn what_is_not_an_oura_spec_is_an_error() {
        let known = Known {
            types: DATA_TYPES,
            columns: &[],
            enums: &[],
            raw_fields: &[],
            beyond: &[],
        };
        let err = |t: &str| compare(t, &known).unwrap_err().to_string();
        assert!(err("{").starts_with("it is not JSON"));
        assert_eq!(
            err("{\"paths\": {}}"),
            "it is not an OpenAPI document (no `openapi` version)"
        );
        assert_eq!(
            err("{\"openapi\": \"3.0\"}"),
            "it is not an OpenAPI document (no `paths`)"
        );
        assert!(
            err("{\"openapi\": \"3.0\", \"paths\": {\"/pets\": {}}}")
                .contains("lists no /v2/usercollection/")
        );
    }

    #[test]
    fn every_known_enum_and_raw_field_names_a_registry_type_and_a_stored_field() {
        let columns = crate::store::typed_columns(DATA_TYPES).unwrap();
        let known = Known {
            types: DATA_TYPES,
            columns: &columns,
            enums: ENUMS,
            raw_fields: RAW_FIELDS,
            beyond: &[],
        };
        for e in ENUMS {
            let dt = registry::find(e.data_type).unwrap();
            assert!(
                ouradb_has(dt, &known, e.field),
                "{}.{:?}",
                e.data_type,
                e.field
            );
        }
        let objects = crate::store::schema_objects().unwrap();
        for r in RAW_FIELDS {
            assert!(registry::find(r.data_type).is_some(), "{}", r.data_type);
            assert!(
                objects.iter().any(|o| o.name == r.view && o.kind == "view"),
                "{}",
                r.view
            );
        }
    }
}
