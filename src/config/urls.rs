//! The one validator every URL key goes through, and the refusal of plain
//! http for the URLs that carry a credential.

use super::ConfigError;

/// `text` as an http(s) URL with a host, or an error naming `key` and
/// showing `example`.
pub(super) fn http_url(key: &str, text: &str, example: &str) -> Result<url::Url, ConfigError> {
    url::Url::parse(text)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .ok_or_else(|| {
            ConfigError::invalid(
                key,
                format!("`{text}` is not an http(s) URL"),
                format!("use e.g. \"{example}\""),
            )
        })
}

/// The URL at `key`, or `default` when the key is absent; either must be an
/// http(s) URL (the default is shown as the example).
pub(super) fn url_or_default(
    key: &str,
    value: Option<&str>,
    default: &str,
) -> Result<url::Url, ConfigError> {
    http_url(key, value.unwrap_or(default), default)
}

/// Whether `url` names this machine: `localhost`, 127.0.0.0/8 or ::1
/// (where the simulator and local proxies run).
fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        None => false,
    }
}

/// `url` carries a credential (a token, the client secret): plain http is
/// refused unless it stays on this machine or `api.allow_insecure_http`
/// says a network in between is trusted.
pub(super) fn refuse_plain_http(
    key: &str,
    url: &url::Url,
    allowed: bool,
) -> Result<(), ConfigError> {
    if url.scheme() != "http" || is_loopback(url) || allowed {
        return Ok(());
    }
    let mut https = url.clone();
    let _ = https.set_scheme("https");
    Err(ConfigError::invalid(
        key,
        format!(
            "`{url}` would send credentials unencrypted (plain http) to {}, which is not this machine",
            url.host_str().unwrap_or("")
        ),
        format!(
            "use \"{https}\", or set allow_insecure_http = true in [api] if the network in between is trusted"
        ),
    ))
}
