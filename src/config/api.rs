//! `[api]`: where the Oura API is and how long a request may take.

use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;
use super::defaults::{DEFAULT_BASE_URL, DEFAULT_TIMEOUT_SECONDS};
use super::urls::url_or_default;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApi {
    base_url: Option<String>,
    sandbox: Option<bool>,
    timeout_seconds: Option<u64>,
    allow_insecure_http: Option<bool>,
}

/// `[api]`, validated.
pub(super) struct Api {
    pub base_url: url::Url,
    pub sandbox: bool,
    pub request_timeout: Duration,
    /// Plain http to another machine is allowed for credential URLs.
    pub allow_insecure_http: bool,
}

pub(super) fn api(raw: RawApi) -> Result<Api, ConfigError> {
    let base_url = url_or_default("api.base_url", raw.base_url.as_deref(), DEFAULT_BASE_URL)?;
    let timeout = raw.timeout_seconds.unwrap_or(DEFAULT_TIMEOUT_SECONDS);
    if timeout == 0 {
        return Err(ConfigError::invalid(
            "api.timeout_seconds",
            "must be at least 1",
            "use e.g. 30",
        ));
    }
    Ok(Api {
        base_url,
        sandbox: raw.sandbox.unwrap_or(false),
        request_timeout: Duration::from_secs(timeout),
        allow_insecure_http: raw.allow_insecure_http.unwrap_or(false),
    })
}
