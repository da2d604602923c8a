//! Keying policy, pure code apart from the SQL that writes it: what
//! becomes of each document of a page (stored, deleted, superseded,
//! quarantined, skipped) and under which keys, decided for the whole page
//! before anything is written.

use std::collections::HashMap;

use jiff::Timestamp;
use jiff::civil::Date;

use crate::registry::DataType;

/// The keys of a document that can be stored.
pub(super) struct Keys<'a> {
    /// Its Oura id, when it has one.
    pub(super) id: Option<&'a str>,
    /// The id made from its natural key, when it has one.
    pub(super) synthetic: Option<String>,
    /// The id it is stored under unless a stored copy says otherwise.
    pub(super) key: String,
    pub(super) day: Option<Date>,
}

/// What becomes of one document of a page, decided for the whole page
/// before anything is written: only documents that will be stored may add
/// columns, and of two documents of one day only one is stored.
pub(super) enum Fate<'a> {
    /// `{}` carries nothing to store or to replace a stored copy with.
    Skip,
    Quarantine {
        key: Option<String>,
        reason: String,
    },
    /// Marked deleted by the API (the registry's `deleted_marker`).
    Delete(Keys<'a>),
    Store(Keys<'a>),
    /// A document of a one-per-day type (the registry's `one_per_day`)
    /// that another document of the page replaces: kept in
    /// `document_history` only.
    Superseded {
        id: &'a str,
        day: Date,
        by: String,
    },
}

impl Fate<'_> {
    pub(super) fn stored(&self) -> bool {
        matches!(self, Fate::Store(_))
    }
}

/// The fate of one document, on its own.
pub(super) fn fate<'a>(dt: &DataType, doc: &'a serde_json::Value) -> Fate<'a> {
    let Some(obj) = doc.as_object() else {
        return Fate::Quarantine {
            key: None,
            reason: "not a JSON object".to_owned(),
        };
    };
    if obj.is_empty() {
        return Fate::Skip;
    }
    let id = doc
        .get("id")
        .and_then(serde_json::Value::as_str)
        .filter(|s| !s.is_empty());
    let synthetic = dt.synthetic_id(doc);
    let key = id.map(str::to_owned).or_else(|| synthetic.clone());
    let day = dt.document_day(doc);
    if let (Some(field), None) = (dt.day_field, day) {
        let reason = format!(
            "no readable `{field}` (got {}){}",
            doc.get(field)
                .map_or("nothing".to_owned(), |v| v.to_string()),
            if dt.day_from.is_empty() {
                String::new()
            } else {
                format!(" and no `{}` to derive it from", dt.day_from.join("`/`"))
            }
        );
        return Fate::Quarantine { key, reason };
    }
    let Some(key) = key else {
        let reason = match dt.natural_key {
            crate::registry::NaturalKey::Fields(f) => {
                format!("no `id`, and no `{}` to key it by", f.join("`/`"))
            }
            _ => "no `id`, and the type has no other key".to_owned(),
        };
        return Fate::Quarantine { key: None, reason };
    };
    let keys = Keys {
        id,
        synthetic,
        key,
        day,
    };
    match dt.deleted_marker {
        Some((field, marker))
            if doc.get(field).and_then(serde_json::Value::as_str) == Some(marker) =>
        {
            Fate::Delete(keys)
        }
        _ => Fate::Store(keys),
    }
}

/// The fates of a page's documents. Of documents of a one-per-day type
/// that share a day under different ids, the newest is stored and the
/// others are superseded. "Newest": the later date-time in the registry's
/// `day_from` fields when both have one and they differ; otherwise the
/// later in the page. (A daily document's `timestamp` is the start of its
/// day, the same for every copy of that day, and the API gives no
/// modification time, so the order it lists them in is all there is.
/// Against a copy stored by an earlier fetch, any document of a later
/// fetch is newer: see [`resolve`].)
pub(super) fn plan_page<'a>(dt: &DataType, docs: &[&'a serde_json::Value]) -> Vec<Fate<'a>> {
    let mut fates: Vec<Fate<'a>> = docs.iter().map(|d| fate(dt, d)).collect();
    if !dt.one_per_day() {
        return fates;
    }
    let time = |doc: &serde_json::Value| {
        dt.day_from
            .iter()
            .find_map(|f| doc.get(*f)?.as_str()?.parse::<Timestamp>().ok())
    };
    // Per day, the index of the newest document with an Oura id.
    let mut newest: HashMap<Date, usize> = HashMap::new();
    for (i, f) in fates.iter().enumerate() {
        if let Fate::Store(Keys {
            id: Some(_),
            day: Some(day),
            ..
        }) = f
        {
            let e = newest.entry(*day).or_insert(i);
            if (time(docs[i]), i) >= (time(docs[*e]), *e) {
                *e = i;
            }
        }
    }
    for i in 0..fates.len() {
        let Fate::Store(Keys {
            id: Some(id),
            day: Some(day),
            ..
        }) = fates[i]
        else {
            continue;
        };
        let winner = newest[&day];
        let Fate::Store(Keys { id: Some(by), .. }) = fates[winner] else {
            continue;
        };
        if by != id {
            fates[i] = Fate::Superseded {
                id,
                day,
                by: by.to_owned(),
            };
        }
    }
    fates
}
