//! The one HTTP setup every outbound Oura call shares: how the reqwest
//! client is built and how a path is joined to a configured base URL.

use std::time::Duration;

/// How long a connection may take to open, for every Oura call.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A client for Oura calls: `timeout` bounds each whole request, the
/// connection must open within 10 s, and it identifies as `ouradb/<version>`.
pub(crate) fn client(timeout: Duration) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(CONNECT_TIMEOUT)
        .user_agent(concat!("ouradb/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// How large a body was found to be when it passed the cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodySize {
    /// As the `Content-Length` header announced it: nothing was read.
    Announced(u64),
    /// Bytes received (after decompression) when reading stopped.
    AtLeast(u64),
}

/// Why a response body could not be read whole.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// Larger than the cap of `limit` bytes.
    TooLarge { limit: u64, size: BodySize },
    /// Its compression (`Content-Encoding`, e.g. gzip) could not be undone:
    /// the bytes were damaged on the way, or were never compressed data.
    Corrupt(String),
    /// The connection failed or timed out mid-body.
    Interrupted(reqwest::Error),
}

/// Reads a response body (decompressed) of at most `limit` bytes, in
/// chunks with a running count, so a huge body costs at most `limit` of
/// memory before it is refused.
pub(crate) async fn read_body(
    mut resp: reqwest::Response,
    limit: u64,
) -> Result<Vec<u8>, BodyError> {
    let announced = resp.content_length();
    if let Some(n) = announced.filter(|n| *n > limit) {
        return Err(BodyError::TooLarge {
            limit,
            size: BodySize::Announced(n),
        });
    }
    let mut body = Vec::with_capacity(usize::try_from(announced.unwrap_or(0)).unwrap_or(0));
    while let Some(chunk) = resp.chunk().await.map_err(body_error)? {
        let size = (body.len() + chunk.len()) as u64;
        if size > limit {
            return Err(BodyError::TooLarge {
                limit,
                size: BodySize::AtLeast(size),
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// At most the first `limit` bytes of a body (an error's text), whatever
/// its size; a failure ends it where it is.
pub(crate) async fn read_prefix(mut resp: reqwest::Response, limit: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < limit
        && let Ok(Some(chunk)) = resp.chunk().await
    {
        body.extend_from_slice(&chunk[..chunk.len().min(limit - body.len())]);
    }
    body
}

/// A failed chunk: reqwest reports every body failure as a decode error
/// wrapping its own errors; beneath them, a failure of the connection is
/// hyper's error (or reqwest's timeout), while the decompressor's is an
/// I/O error of its own, such as "Invalid gzip header".
fn body_error(e: reqwest::Error) -> BodyError {
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source.filter(|s| s.is::<reqwest::Error>()) {
        source = s.source();
    }
    match source.and_then(|s| s.downcast_ref::<std::io::Error>()) {
        Some(io) if !e.is_timeout() => BodyError::Corrupt(io.to_string()),
        _ => BodyError::Interrupted(e),
    }
}

/// `path` below `base`, keeping a path prefix the base URL has
/// (`http://proxy/oura` + `v2/x` is `http://proxy/oura/v2/x`); the base's
/// query and fragment are kept as they are.
pub fn join(base: &url::Url, path: &str) -> url::Url {
    let mut u = base.clone();
    let prefix = u.path().trim_end_matches('/').to_owned();
    u.set_path(&format!("{prefix}/{}", path.trim_start_matches('/')));
    u
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_keeps_the_base_path_prefix() {
        let u = |s: &str| url::Url::parse(s).unwrap();
        assert_eq!(
            join(&u("https://api.example"), "v2/usercollection/sleep").as_str(),
            "https://api.example/v2/usercollection/sleep"
        );
        assert_eq!(
            join(&u("http://127.0.0.1:9/prefix/"), "/v2/webhook/subscription").as_str(),
            "http://127.0.0.1:9/prefix/v2/webhook/subscription"
        );
        assert_eq!(
            join(&u("http://127.0.0.1:9/prefix"), "v2/x").as_str(),
            "http://127.0.0.1:9/prefix/v2/x"
        );
    }
}
