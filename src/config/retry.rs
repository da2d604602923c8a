//! `[retry]`: how often and how patiently a failed request is tried again.

use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRetry {
    max_attempts: Option<u32>,
    base_delay_ms: Option<u64>,
    max_delay_seconds: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryConfig {
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

pub(super) fn retry(raw: RawRetry) -> Result<RetryConfig, ConfigError> {
    let default = RetryConfig::default();
    let retry = RetryConfig {
        max_attempts: raw.max_attempts.unwrap_or(default.max_attempts),
        base_delay: raw
            .base_delay_ms
            .map(Duration::from_millis)
            .unwrap_or(default.base_delay),
        max_delay: raw
            .max_delay_seconds
            .map(Duration::from_secs)
            .unwrap_or(default.max_delay),
    };
    if retry.max_attempts == 0 {
        return Err(ConfigError::invalid(
            "retry.max_attempts",
            "must be at least 1",
            "use e.g. 6",
        ));
    }
    Ok(retry)
}
