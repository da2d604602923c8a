//! `[metrics]`: where the daemon serves Prometheus metrics, if anywhere.

use serde::Deserialize;

use super::ConfigError;
use super::defaults::DEFAULT_METRICS_PORT;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMetrics {
    listen: Option<String>,
}

/// `[metrics] listen`: an address and port, or a port alone, which listens on
/// 127.0.0.1 (health data stays on the machine unless asked otherwise);
/// absent or "" turns the endpoint off.
pub(super) fn metrics_listen(raw: RawMetrics) -> Result<Option<std::net::SocketAddr>, ConfigError> {
    let Some(text) = raw
        .listen
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    else {
        return Ok(None);
    };
    let port_only = text.strip_prefix(':').unwrap_or(text);
    if let Ok(port) = port_only.parse::<u16>() {
        return Ok(Some((std::net::Ipv4Addr::LOCALHOST, port).into()));
    }
    text.parse().map(Some).map_err(|_| {
        ConfigError::invalid(
            "metrics.listen",
            format!("`{text}` is not a port or an IP address and port"),
            format!("use e.g. \"127.0.0.1:{DEFAULT_METRICS_PORT}\" or \"{DEFAULT_METRICS_PORT}\""),
        )
    })
}
