//! Opaque `next_token`s: the resume position plus the query it belongs to,
//! MAC'd with a per-instance key so tampered, foreign or cross-collection
//! tokens are refused.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// What a token carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PageToken {
    /// Route the token was issued for (collection, sandbox or not).
    pub route: String,
    /// Resolved range of the first request, as sent on the wire.
    pub start: String,
    pub end: String,
    /// Fields filter of the first request.
    pub fields: String,
    /// Resume after this key: `day/id` for documents, ms for samples.
    pub after: String,
}

const TAG_LEN: usize = 16;

fn mac(key: &[u8; 32], payload: &[u8]) -> [u8; TAG_LEN] {
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("any key length");
    m.update(payload);
    let full = m.finalize().into_bytes();
    let mut out = [0u8; TAG_LEN];
    out.copy_from_slice(&full[..TAG_LEN]);
    out
}

pub(crate) fn encode(key: &[u8; 32], t: &PageToken) -> String {
    let payload = [t.route.as_str(), &t.start, &t.end, &t.fields, &t.after].join("\u{1f}");
    let tag = mac(key, payload.as_bytes());
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(payload.as_bytes()),
        URL_SAFE_NO_PAD.encode(tag)
    )
}

/// `None` for anything not minted by this instance for `route`.
pub(crate) fn decode(key: &[u8; 32], route: &str, token: &str) -> Option<PageToken> {
    let (p, t) = token.split_once('.')?;
    let payload = URL_SAFE_NO_PAD.decode(p).ok()?;
    let tag = URL_SAFE_NO_PAD.decode(t).ok()?;
    let want = mac(key, &payload);
    if tag.len() != TAG_LEN
        || tag
            .iter()
            .zip(want.iter())
            .fold(0u8, |a, (x, y)| a | (x ^ y))
            != 0
    {
        return None;
    }
    let payload = String::from_utf8(payload).ok()?;
    let mut parts = payload.split('\u{1f}');
    let tok = PageToken {
        route: parts.next()?.to_owned(),
        start: parts.next()?.to_owned(),
        end: parts.next()?.to_owned(),
        fields: parts.next()?.to_owned(),
        after: parts.next()?.to_owned(),
    };
    if parts.next().is_some() || tok.route != route {
        return None;
    }
    Some(tok)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok() -> PageToken {
        PageToken {
            route: "sleep".into(),
            start: "2024-01-01".into(),
            end: "2024-02-01".into(),
            fields: String::new(),
            after: "2024-01-10/abc".into(),
        }
    }

    #[test]
    fn roundtrip_and_rejections() {
        let key = [3u8; 32];
        let s = encode(&key, &tok());
        assert_eq!(decode(&key, "sleep", &s), Some(tok()));
        assert_eq!(decode(&key, "workout", &s), None, "other collection");
        assert_eq!(decode(&[4u8; 32], "sleep", &s), None, "other instance");
        let mut bad = s.clone().into_bytes();
        bad[2] ^= 1;
        assert_eq!(
            decode(&key, "sleep", &String::from_utf8(bad).unwrap()),
            None
        );
        assert_eq!(decode(&key, "sleep", "garbage"), None);
    }
}
