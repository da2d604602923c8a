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
