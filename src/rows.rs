//! Time-series pages read without a `serde_json::Value` tree: each row's
//! JSON text as received and, for a flat row, its fields as spans of that
//! text. A backfill reads millions of such rows; building a map per row cost
//! most of its allocations. Anything that is not a flat object of scalars
//! keeps only its text, and the store maps it the general way. The client
//! reads pages into it and the store writes from it; it knows neither.

use std::ops::Range;

use serde::Deserialize;

mod split;

pub use split::{PageError, Split, Undecodable, single_value, split_page};

/// A document as received: decoded, and its JSON text exactly as the API
/// sent it, which is what `raw_json` keeps (a big integer keeps its digits,
/// which the decoded value rounds to a float).
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub value: serde_json::Value,
    pub text: String,
}

impl Document {
    /// Decodes one document from its bytes as received (one element of a
    /// page, or a single-document body).
    pub fn decode(bytes: &[u8]) -> Result<Document, Undecodable> {
        let value = serde_json::from_slice(bytes).map_err(|e| Undecodable::json(bytes, &e))?;
        // serde_json accepted it, so it is UTF-8 throughout.
        let text = String::from_utf8(bytes.to_vec())
            .map_err(|e| Undecodable::new(bytes, format!("not UTF-8 text: {e}")))?;
        Ok(Document { value, text })
    }

    /// A document built in process rather than received: its text is its
    /// serialization.
    pub fn from_value(value: serde_json::Value) -> Document {
        Document {
            text: value.to_string(),
            value,
        }
    }
}

/// The documents of a page body, each decoded on its own.
#[derive(Debug, Default)]
pub struct DocumentPage {
    pub documents: Vec<Document>,
    /// Those that could not be decoded.
    pub undecodable: Vec<Undecodable>,
    pub next_token: Option<String>,
}

impl DocumentPage {
    /// Reads a page body (`{"data": [...], "next_token": ...}`): split into
    /// documents first, so only the page's own frame can fail it.
    pub fn parse(body: &[u8]) -> Result<DocumentPage, PageError> {
        let split = split_page(body)?;
        let mut page = DocumentPage {
            documents: Vec::with_capacity(split.data.len()),
            next_token: split.next_token,
            ..DocumentPage::default()
        };
        for span in split.data {
            match Document::decode(&body[span]) {
                Ok(d) => page.documents.push(d),
                Err(u) => page.undecodable.push(u),
            }
        }
        Ok(page)
    }
}

/// The time-series rows of one page: each row's JSON text and, for a flat
/// object (scalar values, no escaped text, no repeated field), its fields
/// read once here, off the store's thread, as spans of the text.
#[derive(Debug, Default)]
pub struct RawRows {
    body: String,
    rows: Vec<RowEntry>,
    fields: Vec<SpanField>,
    /// Rows that could not be decoded (kept out of `rows`).
    undecodable: Vec<Undecodable>,
}

/// A field of a flat row: the spans of its name and (for text) its value.
type SpanField = (Range<usize>, Field<Range<usize>>);

#[derive(Debug)]
struct RowEntry {
    text: Range<usize>,
    /// Into `RawRows::fields`; `None` when the row is not a flat object.
    fields: Option<Range<usize>>,
    /// See [`RawRow::exact_ms`].
    ms: Option<i64>,
}

/// A scalar field value as read from JSON text (`T`: its text).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Field<T> {
    Null,
    Bool(bool),
    U64(u64),
    I64(i64),
    F64(f64),
    Text(T),
}

impl<T> Field<T> {
    /// The same value with its text (if any) mapped by `f`.
    fn map_text<U>(self, f: impl FnOnce(T) -> U) -> Field<U> {
        match self {
            Field::Null => Field::Null,
            Field::Bool(b) => Field::Bool(b),
            Field::U64(n) => Field::U64(n),
            Field::I64(n) => Field::I64(n),
            Field::F64(n) => Field::F64(n),
            Field::Text(t) => Field::Text(f(t)),
        }
    }
}

/// One row of [`RawRows`].
#[derive(Debug, Clone, Copy)]
pub struct RawRow<'a> {
    /// The row's JSON text exactly as received.
    pub text: &'a str,
    body: &'a str,
    fields: Option<&'a [SpanField]>,
    /// Unix seconds of a flat row whose `timestamp` is a whole second that
    /// `timestamp_unix` (milliseconds) agrees with; `None` otherwise.
    pub exact_ts: Option<i64>,
    /// Unix milliseconds of a flat row whose `timestamp` is a whole
    /// millisecond that `timestamp_unix` agrees with (beats are timed to
    /// the millisecond); `None` otherwise.
    pub exact_ms: Option<i64>,
}

impl<'a> RawRow<'a> {
    /// The fields of a flat row (`None` for any other row).
    pub fn fields(&self) -> Option<impl Iterator<Item = (&'a str, Field<&'a str>)> + 'a> {
        let body = self.body;
        self.fields.map(move |f| {
            f.iter()
                .map(move |(k, v)| (&body[k.clone()], v.clone().map_text(|r| &body[r])))
        })
    }

    /// A field of a flat row.
    pub fn get(&self, name: &str) -> Option<Field<&'a str>> {
        self.fields()?.find(|(k, _)| *k == name).map(|(_, v)| v)
    }
}

impl RawRows {
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = RawRow<'_>> {
        self.rows.iter().map(|r| RawRow {
            text: &self.body[r.text.clone()],
            body: &self.body,
            fields: r.fields.clone().map(|f| &self.fields[f]),
            exact_ts: r.ms.filter(|ms| ms % 1000 == 0).map(|ms| ms / 1000),
            exact_ms: r.ms,
        })
    }

    /// The rows of the page that could not be decoded: quarantined, while
    /// the others are stored.
    pub fn undecodable(&self) -> &[Undecodable] {
        &self.undecodable
    }

    /// Reads a page body whose `data` holds time-series rows. A row that
    /// cannot be decoded (a value out of range, bytes that are not UTF-8)
    /// is set apart in [`RawRows::undecodable`]; only the page's own frame
    /// can fail it.
    pub fn parse(bytes: &[u8]) -> Result<(RawRows, Option<String>), PageError> {
        let split = split_page(bytes)?;
        let (body, spans, mut undecodable) = match std::str::from_utf8(bytes) {
            Ok(text) => (text.to_owned(), split.data, Vec::new()),
            Err(_) => utf8_rows(bytes, split.data),
        };
        let mut out = RawRows {
            rows: Vec::with_capacity(spans.len()),
            fields: Vec::with_capacity(spans.len() * 4),
            ..RawRows::default()
        };
        let base = body.as_ptr() as usize;
        let span = |s: &str| {
            let start = s.as_ptr() as usize - base;
            start..start + s.len()
        };
        let mut scratch = Vec::new();
        for range in spans {
            let raw = &body[range.clone()];
            let first = out.fields.len();
            let flat = read_flat(raw, &mut scratch);
            // A row that is not flat is checked here, so the store's
            // general path only ever gets rows that decode.
            if !flat && let Err(e) = serde_json::from_str::<serde_json::Value>(raw) {
                undecodable.push(Undecodable::json(raw.as_bytes(), &e));
                continue;
            }
            let ms = if flat { exact_ms(&scratch) } else { None };
            if flat {
                out.fields
                    .extend(scratch.iter().map(|(k, v)| (span(k), v.map_text(span))));
            }
            out.rows.push(RowEntry {
                text: range,
                fields: flat.then_some(first..out.fields.len()),
                ms,
            });
        }
        out.body = body;
        out.undecodable = undecodable;
        Ok((out, split.next_token))
    }
}

/// For a body that is not UTF-8 throughout: the rows that are, copied into
/// one text with their new spans, and the others as undecodable.
fn utf8_rows(
    bytes: &[u8],
    spans: Vec<Range<usize>>,
) -> (String, Vec<Range<usize>>, Vec<Undecodable>) {
    let mut body = String::with_capacity(bytes.len());
    let mut kept = Vec::with_capacity(spans.len());
    let mut undecodable = Vec::new();
    for r in spans {
        match std::str::from_utf8(&bytes[r.clone()]) {
            Ok(text) => {
                kept.push(body.len()..body.len() + text.len());
                body.push_str(text);
            }
            Err(e) => undecodable.push(Undecodable::new(&bytes[r], format!("not UTF-8 text: {e}"))),
        }
    }
    (body, kept, undecodable)
}

/// Reads a row's fields into `out` when it is a flat object: scalar values,
/// no escapes in names or text (so each is a span of the row), each name
/// once.
fn read_flat<'a>(raw: &'a str, out: &mut Vec<(&'a str, Field<&'a str>)>) -> bool {
    out.clear();
    let mut de = serde_json::Deserializer::from_str(raw);
    if serde::de::DeserializeSeed::deserialize(FlatSeed(out), &mut de).is_err() || de.end().is_err()
    {
        out.clear();
        return false;
    }
    let fields = &*out;
    !(1..fields.len()).any(|i| fields[..i].iter().any(|(k, _)| *k == fields[i].0))
}

/// Unix milliseconds of a row whose `timestamp` is a whole millisecond
/// that its `timestamp_unix` (milliseconds) agrees with.
fn exact_ms(fields: &[(&str, Field<&str>)]) -> Option<i64> {
    let get = |name: &str| fields.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
    let Some(Field::Text(text)) = get("timestamp") else {
        return None;
    };
    let parsed = text.parse::<jiff::Timestamp>().ok()?;
    let ms = parsed.as_millisecond();
    let unix_ms = match get("timestamp_unix") {
        Some(Field::U64(n)) => i64::try_from(n).ok(),
        Some(Field::I64(n)) => Some(n),
        _ => None,
    };
    (parsed.subsec_nanosecond() % 1_000_000 == 0 && unix_ms == Some(ms)).then_some(ms)
}

/// Fails on anything but a flat object (see [`read_flat`]).
struct FlatSeed<'s, 'a>(&'s mut Vec<(&'a str, Field<&'a str>)>);

/// A value of a flat object; errors on anything else.
struct FlatValue<'a>(Field<&'a str>);

impl<'de> Deserialize<'de> for FlatValue<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = FlatValue<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a scalar without escapes")
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
                Ok(FlatValue(Field::Null))
            }
            fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<Self::Value, E> {
                Ok(FlatValue(Field::Bool(b)))
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Self::Value, E> {
                Ok(FlatValue(Field::U64(n)))
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Self::Value, E> {
                Ok(FlatValue(Field::I64(n)))
            }
            fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<Self::Value, E> {
                Ok(FlatValue(Field::F64(n)))
            }
            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                s: &'de str,
            ) -> Result<Self::Value, E> {
                Ok(FlatValue(Field::Text(s)))
            }
        }
        d.deserialize_any(V)
    }
}

/// An object key without escapes; errors otherwise.
struct FlatKey<'a>(&'a str);

impl<'de> Deserialize<'de> for FlatKey<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = FlatKey<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a name without escapes")
            }
            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                s: &'de str,
            ) -> Result<Self::Value, E> {
                Ok(FlatKey(s))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for FlatSeed<'_, 'de> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for FlatSeed<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<(), A::Error> {
        while let Some(FlatKey(k)) = a.next_key()? {
            let FlatValue(v) = a.next_value()?;
            self.0.push((k, v));
        }
        Ok(())
    }
}
