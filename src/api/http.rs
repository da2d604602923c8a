//! The one HTTP setup every outbound Oura call shares: how the reqwest
//! client is built and how a path is joined to a configured base URL.

use std::time::Duration;

/// How long a connection may take to open, for every Oura call.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Most redirects one request follows (reqwest's default).
const MAX_REDIRECTS: usize = 10;

/// A client for Oura calls: `timeout` bounds each whole request, the
/// connection must open within 10 s, it identifies as `ouradb/<version>`
/// and follows redirects only within the origin it was sent to
/// ([`redirect_policy`]).
pub(crate) fn client(timeout: Duration) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(CONNECT_TIMEOUT)
        .user_agent(concat!("ouradb/", env!("CARGO_PKG_VERSION")))
        .redirect(redirect_policy())
        .build()
}

/// Every Oura call carries a credential: the bearer token, the client
/// secret and refresh token in a token request's form (a 307 re-sends the
/// body), the `x-client-secret` header of the subscription API (reqwest
/// drops only `Authorization` and cookies on a cross-host redirect). So a
/// redirect is followed only to the same origin (scheme, host and port) as
/// the request; any other is refused with a [`CrossOriginRedirect`].
pub(crate) fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        // `previous` starts with the URL first requested.
        let first = attempt.previous().first().cloned();
        match first {
            Some(first) if first.origin() != attempt.url().origin() => {
                let refused = CrossOriginRedirect {
                    from: origin_of(&first),
                    to: origin_of(attempt.url()),
                    status: attempt.status().as_u16(),
                };
                attempt.error(refused)
            }
            _ if attempt.previous().len() > MAX_REDIRECTS => attempt.error(TooManyRedirects),
            _ => attempt.follow(),
        }
    })
}

/// `scheme://host[:port]` of `u`: never its path, query or user info, which
/// may hold a secret.
fn origin_of(u: &url::Url) -> String {
    u.origin().ascii_serialization()
}

/// A redirect to another origin that was not followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrossOriginRedirect {
    /// The origin asked, e.g. `https://api.ouraring.com`.
    pub from: String,
    /// The origin it redirected to.
    pub to: String,
    pub status: u16,
}

impl std::fmt::Display for CrossOriginRedirect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} redirected (HTTP {}) to {}, another origin; ouradb does not follow it, so no credential went there",
            self.from, self.status, self.to
        )
    }
}

impl std::error::Error for CrossOriginRedirect {}

#[derive(Debug)]
struct TooManyRedirects;

impl std::fmt::Display for TooManyRedirects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "more than {MAX_REDIRECTS} redirects")
    }
}

impl std::error::Error for TooManyRedirects {}

/// What a refused redirect behind `e` was, in words; `None` when `e` is
/// not a refused redirect.
pub fn refused_redirect(e: &reqwest::Error) -> Option<String> {
    // The policy's error may arrive wrapped more than once.
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(r) = s.downcast_ref::<CrossOriginRedirect>() {
            return Some(r.to_string());
        }
        if s.is::<TooManyRedirects>() {
            return Some(s.to_string());
        }
        source = s.source();
    }
    None
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
