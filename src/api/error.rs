//! API errors, classified by what the caller should do next.

use std::time::Duration;

/// An API request that did not produce data. Messages name the data type,
/// the HTTP status and what the user can do; they never contain a token.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    #[error(
        "{data_type}: the access token was rejected (HTTP 401); set a valid token (auth.personal_access_token or OURA_TOKEN) or run `ouradb auth login`"
    )]
    Unauthorized { data_type: String },
    #[error(
        "{data_type}: skipped: scope `{scope}` not granted ({detail}); run `ouradb auth login` granting it to sync this type"
    )]
    ScopeNotGranted {
        data_type: String,
        scope: String,
        /// How we know: the HTTP status, or the grant's scope list.
        detail: String,
    },
    #[error(
        "{data_type}: access forbidden (HTTP 403: {detail}); check that the Oura membership is active"
    )]
    Forbidden { data_type: String, detail: String },
    #[error(
        "{data_type}: request rejected (HTTP {status}: {detail}); this is likely a bug in ouradb, please report it"
    )]
    Rejected {
        data_type: String,
        status: u16,
        detail: String,
    },
    #[error(
        "{data_type}: still rate limited after {attempts} attempts (HTTP 429); the next scheduled run retries"
    )]
    RateLimited { data_type: String, attempts: u32 },
    #[error(
        "{data_type}: server error (HTTP {status}) after {attempts} attempts; Oura may be down, the next scheduled run retries"
    )]
    Server {
        data_type: String,
        status: u16,
        attempts: u32,
    },
    #[error(
        "{data_type}: cannot reach {host} after {attempts} attempts ({cause}); check the network and api.base_url"
    )]
    Network {
        data_type: String,
        host: String,
        cause: String,
        attempts: u32,
    },
    #[error(
        "{data_type}: unreadable response after {attempts} attempts ({cause}); the next scheduled run retries"
    )]
    BadResponse {
        data_type: String,
        cause: String,
        attempts: u32,
    },
    #[error(
        "{data_type}: the API returned the same next_token twice; stopped paging to avoid a loop"
    )]
    PagingLoop { data_type: String },
    #[error("re-authorization required: {0}; run `ouradb auth login`")]
    ReauthRequired(String),
    #[error("stopped by shutdown")]
    Cancelled,
}

impl ApiError {
    /// Short machine-readable kind stored in `sync_state.last_error_kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            ApiError::Unauthorized { .. } => "unauthorized",
            ApiError::ScopeNotGranted { .. } => "scope_not_granted",
            ApiError::Forbidden { .. } => "forbidden",
            ApiError::Rejected { .. } => "rejected",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Server { .. } => "server_error",
            ApiError::Network { .. } => "network",
            ApiError::BadResponse { .. } => "bad_response",
            ApiError::PagingLoop { .. } => "paging_loop",
            ApiError::ReauthRequired(_) => "reauth_required",
            ApiError::Cancelled => "cancelled",
        }
    }

    /// Whether a later run may succeed without the user doing anything.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ApiError::RateLimited { .. }
                | ApiError::Server { .. }
                | ApiError::Network { .. }
                | ApiError::BadResponse { .. }
                | ApiError::Cancelled
        )
    }
}

/// What one HTTP attempt means for the retry loop.
#[derive(Debug)]
pub(crate) enum Attempt {
    /// Try again after backing off.
    Retry {
        cause: String,
        status: Option<u16>,
    },
    /// Try again once the server's Retry-After has passed.
    RetryAfter(Duration),
    /// The token was rejected: refresh once, then give up.
    Unauthorized,
    Fatal(ApiError),
}
