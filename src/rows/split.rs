//! A page body split into its documents without decoding them. The page's
//! frame (`{"data": [...], "next_token": ...}`) is read here; each element
//! of `data` is only delimited (strings, escapes and brackets followed, any
//! other token taken up to the next delimiter), so one value serde_json
//! cannot decode (`1e400`, `NaN`, a lone surrogate `"\ud83d"`, bytes that
//! are not UTF-8) stays inside its own document instead of failing the page.
//! Each document is decoded on its own afterwards, from its bytes as
//! received, which are also what `raw_json` keeps (big integers included).

use std::ops::Range;

/// Why a page body is not a page.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PageError {
    /// Cut off, or not JSON at all: asking again may get a whole page.
    #[error("{0}")]
    Malformed(String),
    /// Well-formed, but not a page: asking again gets the same.
    #[error("{0}")]
    Shape(String),
}

/// A document (or time-series row) of a page that serde_json could not
/// decode. It is quarantined with its bytes; the rest of its page is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Undecodable {
    /// The document's bytes exactly as received.
    pub bytes: Vec<u8>,
    /// Why it could not be decoded, e.g. `number out of range at line 1 column 40`.
    pub reason: String,
    /// The document's top-level fields that decode on their own (its `id`,
    /// `day` or `timestamp`, if readable), as an object: what identifies it
    /// for the quarantine and the deletion rule. Never stored as data.
    pub readable: serde_json::Value,
}

impl Undecodable {
    /// `bytes` (one element of a page) that serde_json failed to decode.
    pub fn json(bytes: &[u8], error: &serde_json::Error) -> Undecodable {
        Undecodable::new(bytes, format!("not decodable JSON: {error}"))
    }

    /// `bytes` (one element of a page) that failed to decode for `reason`.
    pub fn new(bytes: &[u8], reason: String) -> Undecodable {
        Undecodable {
            bytes: bytes.to_vec(),
            reason,
            readable: readable_fields(bytes),
        }
    }
}

/// The byte spans of a page's `data` elements, and its `next_token`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Split {
    pub data: Vec<Range<usize>>,
    pub next_token: Option<String>,
}

/// Splits a page body `{"data": [...], "next_token": ...}` into the spans of
/// its documents. Other top-level fields are skipped; `next_token` must be a
/// string or null. Fails only on the page's own frame.
pub fn split_page(b: &[u8]) -> Result<Split, PageError> {
    let mut s = Cursor { b, i: 0 };
    s.ws();
    if s.peek() != Some(b'{') {
        return Err(match s.peek() {
            None => s.eof("a page"),
            Some(b'[' | b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n') => PageError::Shape(
                format!("expected a JSON object with `data`, got {}", s.token_kind()),
            ),
            Some(_) => s.malformed("expected value"),
        });
    }
    s.i += 1;
    let mut data = None;
    let mut next_token = None;
    let mut first = true;
    loop {
        s.ws();
        match s.peek() {
            Some(b'}') if first => {
                s.i += 1;
                break;
            }
            Some(b'"') => {}
            None => return Err(s.eof("the page")),
            Some(_) => return Err(s.malformed("expected a field name")),
        }
        let name = s.field_name()?;
        s.ws();
        s.expect(b':', "expected `:` after a field name")?;
        s.ws();
        match name.as_str() {
            "data" if data.is_some() => {
                return Err(PageError::Shape("duplicate field `data`".into()));
            }
            "data" => data = Some(s.elements()?),
            "next_token" => next_token = Some(s.next_token()?),
            _ => {
                s.value()?;
            }
        }
        s.ws();
        match s.peek() {
            Some(b',') => s.i += 1,
            Some(b'}') => {
                s.i += 1;
                break;
            }
            None => return Err(s.eof("the page")),
            Some(_) => return Err(s.malformed("expected `,` or `}` after a field")),
        }
        first = false;
    }
    s.ws();
    if s.i < b.len() {
        return Err(s.malformed("trailing characters after the page"));
    }
    Ok(Split {
        data: data.ok_or_else(|| PageError::Shape("missing field `data`".into()))?,
        next_token: next_token.flatten(),
    })
}

/// The extent of the one JSON value `b` holds (whitespace around it
/// allowed), without decoding it: `None` when `b` is cut off or holds
/// anything else, so a single-document body is told from a truncated one.
pub fn single_value(b: &[u8]) -> Option<Range<usize>> {
    let mut s = Cursor { b, i: 0 };
    s.ws();
    let span = s.value().ok()?;
    s.ws();
    (s.i == b.len()).then_some(span)
}

/// The top-level fields of a document that decode on their own.
fn readable_fields(b: &[u8]) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    let mut s = Cursor { b, i: 0 };
    s.ws();
    if s.peek() != Some(b'{') {
        return out.into();
    }
    s.i += 1;
    loop {
        s.ws();
        if s.peek() != Some(b'"') {
            break;
        }
        let Ok(name) = s.field_name() else { break };
        s.ws();
        if s.expect(b':', "").is_err() {
            break;
        }
        s.ws();
        let Ok(span) = s.value() else { break };
        if let Ok(v) = serde_json::from_slice(&b[span]) {
            out.entry(name).or_insert(v);
        }
        s.ws();
        if s.expect(b',', "").is_err() {
            break;
        }
    }
    out.into()
}

/// A position in a page body.
struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.i += 1;
        }
    }

    fn malformed(&self, what: &str) -> PageError {
        PageError::Malformed(format!("{what} at byte {}", self.i))
    }

    fn eof(&self, what: &str) -> PageError {
        PageError::Malformed(format!(
            "EOF while parsing {what} (the body ends at byte {})",
            self.b.len()
        ))
    }

    fn expect(&mut self, c: u8, what: &str) -> Result<(), PageError> {
        match self.peek() {
            Some(x) if x == c => {
                self.i += 1;
                Ok(())
            }
            None => Err(self.eof("the page")),
            Some(_) => Err(self.malformed(what)),
        }
    }

    /// What the value at the cursor is, for messages: `integer `5``, `a string`.
    fn token_kind(&self) -> String {
        let start = self.i;
        let mut probe = Cursor {
            b: self.b,
            i: start,
        };
        let end = probe.value().map_or(self.b.len(), |r| r.end);
        let text = String::from_utf8_lossy(&self.b[start..end.min(start + 40)]);
        match self.peek() {
            Some(b'[') => "a sequence".into(),
            Some(b'{') => "a map".into(),
            Some(b'"') => "a string".into(),
            Some(b'-' | b'0'..=b'9') if text.bytes().all(|c| c == b'-' || c.is_ascii_digit()) => {
                format!("integer `{text}`")
            }
            Some(b'-' | b'0'..=b'9') => format!("floating point `{text}`"),
            _ => format!("`{text}`"),
        }
    }

    /// A field name, decoded (names with escapes included).
    fn field_name(&mut self) -> Result<String, PageError> {
        let start = self.i;
        let span = self.string()?;
        serde_json::from_slice(&self.b[span]).map_err(|e| {
            PageError::Malformed(format!("a field name at byte {start} is not text: {e}"))
        })
    }

    /// The elements of the array at the cursor.
    fn elements(&mut self) -> Result<Vec<Range<usize>>, PageError> {
        if self.peek() != Some(b'[') {
            if self.peek().is_none() {
                return Err(self.eof("`data`"));
            }
            return Err(PageError::Shape(format!(
                "invalid type: {}, expected a sequence",
                self.token_kind()
            )));
        }
        self.i += 1;
        let mut out = Vec::new();
        self.ws();
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(out);
        }
        loop {
            self.ws();
            out.push(self.value()?);
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(out);
                }
                None => return Err(self.eof("`data`")),
                Some(_) => return Err(self.malformed("expected `,` or `]` after a document")),
            }
        }
    }

    /// `next_token`: a string or null.
    fn next_token(&mut self) -> Result<Option<String>, PageError> {
        let start = self.i;
        let span = self.value()?;
        serde_json::from_slice(&self.b[span]).map_err(|_| {
            let mut at = Cursor {
                b: self.b,
                i: start,
            };
            at.ws();
            PageError::Shape(format!(
                "invalid type: {}, expected `next_token` to be a string or null",
                at.token_kind()
            ))
        })
    }

    /// The span of the value at the cursor, which moves past it. Brackets
    /// must match; what lies between them is not checked.
    fn value(&mut self) -> Result<Range<usize>, PageError> {
        let start = self.i;
        match self.peek() {
            None => return Err(self.eof("a value")),
            Some(b'"') => return self.string(),
            Some(b'[' | b'{') => {}
            Some(_) => {
                while let Some(c) = self.peek() {
                    if matches!(c, b',' | b']' | b'}' | b':' | b'[' | b'{' | b'"')
                        || c.is_ascii_whitespace()
                    {
                        break;
                    }
                    self.i += 1;
                }
                if self.i == start {
                    return Err(self.malformed("expected value"));
                }
                return Ok(start..self.i);
            }
        }
        // Closing brackets still expected, innermost last.
        let mut open = Vec::new();
        while let Some(c) = self.peek() {
            match c {
                b'"' => {
                    self.string()?;
                    continue;
                }
                b'[' => open.push(b']'),
                b'{' => open.push(b'}'),
                b']' | b'}' => {
                    if open.pop() != Some(c) {
                        return Err(self.malformed("mismatched bracket"));
                    }
                    if open.is_empty() {
                        self.i += 1;
                        return Ok(start..self.i);
                    }
                }
                _ => {}
            }
            self.i += 1;
        }
        Err(self.eof("a value"))
    }

    /// The span of the string at the cursor (quotes included).
    fn string(&mut self) -> Result<Range<usize>, PageError> {
        let start = self.i;
        let mut i = start + 1;
        while let Some(off) = self.b[i.min(self.b.len())..]
            .iter()
            .position(|&c| c == b'"' || c == b'\\')
        {
            i += off;
            if self.b[i] == b'"' {
                self.i = i + 1;
                return Ok(start..self.i);
            }
            // An escape: its next byte is never the closing quote.
            i += 2;
        }
        Err(self.eof("a string"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs(body: &str) -> Vec<&str> {
        let s = split_page(body.as_bytes()).unwrap();
        s.data.into_iter().map(|r| &body[r]).collect()
    }

    #[test]
    fn splits_documents_whatever_their_values() {
        let body = r#" {"data": [ {"id":"a","v":1e400} , {"id":"b","s":"\ud83d"},{"x":NaN},
            {"t":"a \" ] } [ {"}, 123456789012345678901234567890, "s", null, [1,[2]] ],
            "next_token": "tok\u0041", "other": {"k": [1, "]"]}}"#;
        assert_eq!(
            docs(body),
            [
                r#"{"id":"a","v":1e400}"#,
                r#"{"id":"b","s":"\ud83d"}"#,
                r#"{"x":NaN}"#,
                r#"{"t":"a \" ] } [ {"}"#,
                "123456789012345678901234567890",
                r#""s""#,
                "null",
                "[1,[2]]"
            ]
        );
        assert_eq!(
            split_page(body.as_bytes()).unwrap().next_token.as_deref(),
            Some("tokA")
        );
    }

    #[test]
    fn bytes_that_are_not_utf8_stay_inside_their_document() {
        let mut body = br#"{"data": [{"id": "a", "s": ""#.to_vec();
        body.extend([0xff, 0xfe, b'"', b'}']);
        body.extend(br#", {"id": "b"}], "next_token": null}"#);
        let s = split_page(&body).unwrap();
        assert_eq!(s.data.len(), 2);
        assert_eq!(&body[s.data[1].clone()], br#"{"id": "b"}"#);
        assert_eq!(s.next_token, None);
        let e = serde_json::from_slice::<serde_json::Value>(&body[s.data[0].clone()]).unwrap_err();
        let u = Undecodable::json(&body[s.data[0].clone()], &e);
        assert_eq!(u.readable, serde_json::json!({"id": "a"}));
        assert!(
            u.reason.contains("invalid unicode code point"),
            "{}",
            u.reason
        );
    }

    #[test]
    fn a_broken_frame_is_a_page_error() {
        let malformed = |b: &str| match split_page(b.as_bytes()) {
            Err(PageError::Malformed(m)) => m,
            other => panic!("{b}: {other:?}"),
        };
        let shape = |b: &str| match split_page(b.as_bytes()) {
            Err(PageError::Shape(m)) => m,
            other => panic!("{b}: {other:?}"),
        };
        assert!(malformed(r#"{"data": [{"id": "a", "day""#).starts_with("EOF while parsing"));
        assert!(malformed(r#"{"data": [{"id": "a"}"#).starts_with("EOF while parsing"));
        assert!(malformed(r#"{"data": [{"id": "a"]]}"#).starts_with("mismatched bracket"));
        assert!(malformed(r#"{"data": []} x"#).starts_with("trailing characters"));
        assert!(malformed("<html>").starts_with("expected value"));
        assert!(malformed("").starts_with("EOF while parsing"));
        assert_eq!(
            shape(r#"{"data": 5}"#),
            "invalid type: integer `5`, expected a sequence"
        );
        assert_eq!(shape(r#"{"next_token": null}"#), "missing field `data`");
        assert!(shape(r#"{"data": [], "next_token": 5}"#).contains("integer `5`"));
        assert!(shape("[1]").contains("expected a JSON object"));
    }

    #[test]
    fn a_single_value_is_told_from_a_cut_one() {
        assert_eq!(single_value(b" {\"a\": NaN} \n"), Some(1..11));
        assert_eq!(single_value(b"{\"a\": [1}"), None);
        assert_eq!(single_value(b"{\"a\": 1"), None);
        assert_eq!(single_value(b"{} {}"), None);
    }
}
