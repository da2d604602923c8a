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
