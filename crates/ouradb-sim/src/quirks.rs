//! The live API's known deviations from spec 1.37, applied to documents as
//! they are served (the dataset itself stays in the spec's shape, which the
//! schema tests check). On by default: a client that only copes with the
//! spec's form fails against the simulator as it would against Oura.

use std::borrow::Cow;

use jiff::civil::Date;
use serde_json::{Value, json};

use super::data::Document;

/// Which deviations the simulator serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quirks {
    /// Collections whose documents come without `id` (the live API serves
    /// `daily_cardiovascular_age` so). Webhook events name such a document
    /// by its day, and the single-document route takes the day too.
    pub idless: Vec<String>,
    /// Undocumented scalar fields: `timestamp` on every
    /// daily_cardiovascular_age document (as the live API sends it), an
    /// extra top-level field on some daily_readiness documents and an extra
    /// contributor on some daily_sleep documents.
    pub extra_fields: bool,
    /// Spec 1.41 values on some documents: the workout sources
    /// `live_third_party_heart_rate` and `live_oura_heart_rate`, and sleep
    /// `ring_id` null (deprecated).
    pub spec_1_41: bool,
    /// The token endpoint lists the granted scopes with this namespace
    /// prefix: Oura has answered `extapi:daily extapi:heartrate ...` since
    /// September 2026, while authorization requests still name the plain
    /// scopes (a prefixed name there is refused as unknown).
    pub scope_prefix: Option<String>,
}

impl Default for Quirks {
    /// The live API as observed.
    fn default() -> Self {
        Quirks {
            idless: vec!["daily_cardiovascular_age".to_owned()],
            extra_fields: true,
            spec_1_41: true,
            scope_prefix: Some("extapi:".to_owned()),
        }
    }
}

impl Quirks {
    /// Exactly spec 1.37: every document as the dataset holds it.
    pub fn spec() -> Quirks {
        Quirks {
            idless: Vec::new(),
            extra_fields: false,
            spec_1_41: false,
            scope_prefix: None,
        }
    }

    fn any(&self) -> bool {
        !self.idless.is_empty() || self.extra_fields || self.spec_1_41
    }

    pub fn is_idless(&self, collection: &str) -> bool {
        self.idless.iter().any(|c| c == collection)
    }

    /// Granted scopes as the live API lists them: space-separated, each
    /// with the [`Quirks::scope_prefix`] when there is one.
    pub fn granted_scope_list(&self, scopes: &[String]) -> String {
        let prefix = self.scope_prefix.as_deref().unwrap_or("");
        scopes
            .iter()
            .map(|s| format!("{prefix}{s}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// A stable number in 0..100 per document, so the same documents always
/// carry the same deviations.
fn bucket(id: &str, salt: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ salt;
    for b in id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h % 100
}

/// The document as the live API serves it. `offset` is the UTC offset (in
/// seconds) of the document's day.
pub fn serve<'a>(q: &Quirks, collection: &str, doc: &'a Document, offset: i32) -> Cow<'a, str> {
    if !q.any() {
        return Cow::Borrowed(&doc.json);
    }
    let idless = q.is_idless(collection);
    let extra = q.extra_fields
        && match collection {
            "daily_cardiovascular_age" => true,
            "daily_readiness" => bucket(&doc.id, 1) < 35,
            "daily_sleep" => bucket(&doc.id, 2) < 35,
            _ => false,
        };
    let new_values = q.spec_1_41
        && match collection {
            "workout" => bucket(&doc.id, 3) < 15,
            "sleep" => bucket(&doc.id, 4) < 30,
            _ => false,
        };
    if !idless && !extra && !new_values {
        return Cow::Borrowed(&doc.json);
    }
    let Ok(Value::Object(mut m)) = serde_json::from_str::<Value>(&doc.json) else {
        return Cow::Borrowed(&doc.json);
    };
    if idless {
        m.remove("id");
    }
    if extra {
        match collection {
            "daily_cardiovascular_age" => {
                m.insert("timestamp".into(), json!(local_midnight(doc.day, offset)));
            }
            "daily_readiness" => {
                m.insert(
                    "resting_heart_rate".into(),
                    json!(45 + bucket(&doc.id, 5) % 20),
                );
            }
            _ => {
                if let Some(Value::Object(c)) = m.get_mut("contributors") {
                    c.insert("regularity".into(), json!(50 + bucket(&doc.id, 6) % 50));
                }
            }
        }
    }
    if new_values {
        match collection {
            "workout" => {
                let source = if bucket(&doc.id, 7) < 50 {
                    "live_third_party_heart_rate"
                } else {
                    "live_oura_heart_rate"
                };
                m.insert("source".into(), json!(source));
            }
            _ => {
                m.insert("ring_id".into(), Value::Null);
            }
        }
    }
    Cow::Owned(Value::Object(m).to_string())
}

fn local_midnight(day: Date, offset: i32) -> String {
    let sign = if offset < 0 { '-' } else { '+' };
    let a = offset.unsigned_abs();
    format!("{day}T00:00:00{sign}{:02}:{:02}", a / 3600, a / 60 % 60)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn doc(id: &str, json: Value) -> Document {
        Document {
            id: id.to_owned(),
            day: jiff::civil::date(2024, 3, 16),
            utc_day: jiff::civil::date(2024, 3, 16),
            json: Arc::from(json.to_string()),
        }
    }

    #[test]
    fn cardiovascular_age_comes_without_id_and_with_a_timestamp() {
        let d = doc(
            "x",
            json!({"id": "x", "day": "2024-03-16", "vascular_age": 34}),
        );
        let live: Value = serde_json::from_str(&serve(
            &Quirks::default(),
            "daily_cardiovascular_age",
            &d,
            -3600,
        ))
        .unwrap();
        assert_eq!(
            live,
            json!({"day": "2024-03-16", "vascular_age": 34, "timestamp": "2024-03-16T00:00:00-01:00"})
        );
        assert_eq!(
            serve(&Quirks::spec(), "daily_cardiovascular_age", &d, 0),
            d.json.as_ref()
        );
    }
}
