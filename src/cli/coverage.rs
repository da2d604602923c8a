//! `ouradb coverage --spec FILE`: what an Oura OpenAPI document lists that
//! ouradb does not know, and the other way round.
//!
//! Exit codes: 0 when nothing is unknown beyond the declared deviations,
//! 1 with findings, 2 when the file cannot be read as an Oura spec.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use crate::api::text::one_line;
use crate::coverage::{self, Finding, Known, Report};
use crate::registry::{self, known};
use crate::store;

/// Exit code for a spec that cannot be read (findings exit 1).
const EXIT_BAD_SPEC: u8 = 2;

/// Where deviations are declared, for the report's advice.
const DECLARATIONS: &str = "src/registry/known.rs";

const FETCH_HINT: &str = "download the current spec (README: \"Keeping up with Oura\") \
                          and pass its path to --spec";

pub fn run(spec: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let report = match read(spec) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ouradb: {}", one_line(&format!("{e:#}")));
            return Ok(ExitCode::from(EXIT_BAD_SPEC));
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    Ok(if report.findings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn read(spec: &Path) -> anyhow::Result<Report> {
    let shown = spec.display();
    let text = std::fs::read_to_string(spec)
        .with_context(|| format!("cannot read the spec {shown}; {FETCH_HINT}"))?;
    let columns = store::typed_columns(registry::DATA_TYPES)
        .context("cannot build the schema in memory to read its columns")?;
    let known = Known {
        types: registry::DATA_TYPES,
        columns: &columns,
        enums: known::ENUMS,
        raw_fields: known::RAW_FIELDS,
        beyond: known::BEYOND_SPEC,
    };
    coverage::compare(&text, &known)
        .with_context(|| format!("{shown} is not an Oura OpenAPI document; {FETCH_HINT}"))
}

/// The report as text, lines within 80 columns (names from the spec
/// aside), control characters stripped from what the file said.
pub fn render(r: &Report) -> String {
    let mut out = format!(
        "{} {}: {} collections.\n",
        one_line(&r.title),
        one_line(&r.version),
        r.collections
    );
    if !r.beyond.is_empty() {
        out.push_str(&format!(
            "\nModelled beyond this spec on purpose ({DECLARATIONS}):\n"
        ));
        for d in &r.beyond {
            out.push_str(&format!("  {}\n", one_line(&d.item)));
            for line in wrap(d.reason, 74) {
                out.push_str(&format!("      {line}\n"));
            }
        }
    }
    for (title, lines) in sections(&r.findings) {
        out.push_str(&format!("\n{title}:\n"));
        for l in lines {
            out.push_str(&format!("  {}\n", one_line(&l)));
        }
    }
    out.push('\n');
    out.push_str(&match r.findings.len() {
        0 => "Nothing else: ouradb knows every collection, field and enum value\n\
              of this spec, and the spec lists everything else ouradb relies on.\n"
            .to_owned(),
        n => format!(
            "{n} finding(s). Teach ouradb what is new (registry, schema,\n\
             registry::known), or declare a deliberate deviation with its\n\
             reason in {DECLARATIONS}.\n"
        ),
    });
    out
}

/// The findings grouped under their headings, in a fixed order.
fn sections(findings: &[Finding]) -> Vec<(&'static str, Vec<String>)> {
    const TITLES: [&str; 7] = [
        "Collections the spec has that ouradb does not sync",
        "Fields ouradb has no typed column for",
        "Enum values ouradb does not know",
        "Data types ouradb syncs that the spec does not list",
        "Fields ouradb stores that the spec does not list",
        "Enum values ouradb relies on that the spec does not list",
        "Declared deviations that no longer hold",
    ];
    let mut groups: Vec<Vec<String>> = vec![Vec::new(); TITLES.len()];
    for f in findings {
        let (i, line) = match f {
            Finding::UnknownCollection { collection } => (0, collection.clone()),
            Finding::UnknownField { data_type, field } => (1, format!("{data_type}.{field}")),
            Finding::UnknownEnumValue {
                data_type,
                field,
                value,
            } => (2, format!("{data_type}.{field} = {value:?}")),
            Finding::DroppedCollection { data_type } => (3, data_type.clone()),
            Finding::DroppedField { data_type, field } => (4, format!("{data_type}.{field}")),
            Finding::DroppedEnumValue {
                data_type,
                field,
                value,
            } => (5, format!("{data_type}.{field} = {value:?}")),
            Finding::StaleDeclaration { item, why } => (6, format!("{item}: {why}")),
        };
        groups[i].push(line);
    }
    TITLES
        .into_iter()
        .zip(groups)
        .filter(|(_, lines)| !lines.is_empty())
        .collect()
}

/// `text` in lines of at most `width` characters, broken between words.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        match lines.last_mut() {
            Some(l) if l.chars().count() + 1 + word.chars().count() <= width => {
                l.push(' ');
                l.push_str(word);
            }
            _ => lines.push(word.to_owned()),
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coverage::Deviation;

    #[test]
    fn the_report_fits_80_columns_and_groups_findings() {
        let r = Report {
            title: "Oura API Documentation".into(),
            version: "2.0".into(),
            collections: 20,
            beyond: vec![Deviation {
                item: "collection interbeat_interval".into(),
                reason: known::BEYOND_SPEC[0].reason,
            }],
            findings: vec![
                Finding::UnknownCollection {
                    collection: "new_thing".into(),
                },
                Finding::UnknownEnumValue {
                    data_type: "sleep".into(),
                    field: "type".into(),
                    value: "siesta".into(),
                },
            ],
        };
        let text = render(&r);
        assert!(text.lines().all(|l| l.chars().count() <= 80), "{text}");
        assert!(
            text.contains("does not sync:\n  new_thing\n")
                && text.contains("does not know:\n  sleep.type = \"siesta\"\n")
                && text.contains("2 finding(s)"),
            "{text}"
        );
        assert_eq!(wrap("a bb ccc", 4), ["a bb", "ccc"]);
    }
}
