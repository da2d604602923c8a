//! `[rate_limit]`: the request quota the limiter keeps to.

use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRateLimit {
    requests: Option<u32>,
    application_requests: Option<u32>,
    window_seconds: Option<u64>,
    margin_percent: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// Oura's quota per access token: what one account may send.
    pub requests: u32,
    /// Oura's quota per application, across every token of it: what all
    /// the accounts of a file send together (same window and margin).
    pub application_requests: u32,
    pub window: Duration,
    /// Share of the quota held back for clock skew between us and the server.
    pub margin_percent: u32,
}

pub(super) fn rate_limit(raw: RawRateLimit) -> Result<RateLimitConfig, ConfigError> {
    let default = RateLimitConfig::default();
    let requests = raw.requests.unwrap_or(default.requests);
    let application_requests = raw
        .application_requests
        .unwrap_or(default.application_requests);
    let window_seconds = raw.window_seconds.unwrap_or(default.window.as_secs());
    let margin_percent = raw.margin_percent.unwrap_or(default.margin_percent);
    if requests < 3 {
        return Err(ConfigError::invalid(
            "rate_limit.requests",
            "must be at least 3",
            "use Oura's limit, 5000",
        ));
    }
    if application_requests < 3 {
        return Err(ConfigError::invalid(
            "rate_limit.application_requests",
            "must be at least 3",
            "use Oura's limit per application, 5000",
        ));
    }
    if window_seconds == 0 {
        return Err(ConfigError::invalid(
            "rate_limit.window_seconds",
            "must be at least 1",
            "use Oura's window, 300",
        ));
    }
    if margin_percent >= 50 {
        return Err(ConfigError::invalid(
            "rate_limit.margin_percent",
            "must be below 50",
            "use a small safety margin such as 2",
        ));
    }
    Ok(RateLimitConfig {
        requests,
        application_requests,
        window: Duration::from_secs(window_seconds),
        margin_percent,
    })
}
