//! API errors, classified by what the caller should do next.

use std::time::Duration;

use crate::error_kind::ErrorKind;

/// How to enable a collection Oura refuses to the application.
pub const NOT_AVAILABLE_FIX: &str = "to sync it, ask Oura (api-support@ouraring.com) to enable this data type for the application, or check the application's scopes in the Oura developer portal";

/// An API request that did not produce data. Messages name the data type,
/// the HTTP status and what the user can do; they never contain a token.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    #[error(
        "{data_type}: the access token was rejected (HTTP 401); set a valid token (auth.personal_access_token or OURA_TOKEN) or run `ouradb auth login`"
    )]
    Unauthorized {
        data_type: String,
        /// The server's text (control characters stripped), kept for a
        /// refusal that turns out to be this collection's alone.
        detail: String,
    },
    /// A 401 or 403 for this collection while the same access token reads
    /// others: Oura does not let the application read this one. Not a
    /// failure of the run; the type is asked again once a day
    /// (`sync::engine`, "not available").
    #[error(
        "{data_type}: not available to this application (HTTP {status}: {detail}): other collections work with the same token; {NOT_AVAILABLE_FIX}; ouradb asks again once a day"
    )]
    NotAvailable {
        data_type: String,
        status: u16,
        detail: String,
    },
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
        "{data_type}: the API refused ouradb's query (HTTP {status}: {detail}); check that api.base_url points at the Oura API itself (a proxy may alter queries); if it does, the API has changed and ouradb needs an update"
    )]
    Rejected {
        data_type: String,
        status: u16,
        detail: String,
    },
    #[error(
        "{data_type}: the server has no {path} (HTTP 404); api.base_url must be the API's root, e.g. \"https://api.ouraring.com\" with no /v2 or other path (ouradb adds /v2/usercollection/... itself){hint}"
    )]
    NotFound {
        data_type: String,
        /// The path requested.
        path: String,
        /// Extra advice when the configured base URL has a path.
        hint: String,
    },
    #[error(
        "{data_type}: {detail}; check api.base_url: it must be the Oura API itself, e.g. \"https://api.ouraring.com\", not an address that forwards elsewhere"
    )]
    Redirected {
        data_type: String,
        /// Which origin redirected where (never a path or query).
        detail: String,
    },
    /// No usable credentials: nothing was sent.
    #[error("{data_type}: {message}")]
    Auth { data_type: String, message: String },
    #[error(
        "{data_type}: still rate limited after {attempts} attempts (HTTP 429); the next scheduled run retries"
    )]
    RateLimited { data_type: String, attempts: u32 },
    #[error(
        "{data_type}: {by} asks to wait until {until} ({wait}), beyond --max-wait {max_wait}; stopped this type with nothing lost: run `ouradb sync` again later or with a longer --max-wait (the daemon waits as long as Oura says)"
    )]
    RateLimitWait {
        data_type: String,
        /// What holds requests: "Oura's rate limit" or the shared quota.
        by: String,
        /// Local wall-clock time the wait would end, e.g. `14:05:10`.
        until: String,
        wait: String,
        max_wait: String,
    },
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
    /// A response body above the configured cap: not read further, so
    /// memory stays bounded.
    #[error(
        "{data_type}: the response body is larger than the cap of {limit} bytes ({size}); nothing of it was stored: if the server is the Oura API, raise `max_body_bytes` in the `[sync]` section of the config file, otherwise check api.base_url"
    )]
    TooLarge {
        data_type: String,
        /// How large it was found to be, e.g. `70000000 bytes announced by Content-Length`.
        size: String,
        limit: u64,
    },
    #[error(
        "{data_type}: stopped paging {window} because {pattern}; the pages read so far are stored but the cursor did not move, the next run retries this window (if it keeps happening the API is misbehaving: check api.base_url)"
    )]
    PagingLoop {
        data_type: String,
        /// The window being fetched, e.g. `2024-01-01..2024-12-31`.
        window: String,
        /// What the API kept doing.
        pattern: String,
    },
    #[error("re-authorization required: {0}; run `ouradb auth login`")]
    ReauthRequired(String),
    #[error("stopped by shutdown")]
    Cancelled,
}

impl ApiError {
    /// The status and server text of a refusal that may concern this
    /// collection alone: a 401 after the token refresh, or a 403 that
    /// names no scope.
    pub fn refusal(&self) -> Option<(u16, &str)> {
        match self {
            ApiError::Unauthorized { detail, .. } => Some((401, detail)),
            ApiError::Forbidden { detail, .. } => Some((403, detail)),
            _ => None,
        }
    }

    /// This refusal as the collection's alone (see [`ApiError::refusal`]).
    pub fn not_available(&self) -> Option<ApiError> {
        let (status, detail) = self.refusal()?;
        let data_type = match self {
            ApiError::Unauthorized { data_type, .. } | ApiError::Forbidden { data_type, .. } => {
                data_type.clone()
            }
            _ => return None,
        };
        Some(ApiError::NotAvailable {
            data_type,
            status,
            detail: detail.to_owned(),
        })
    }

    /// What kind of failure this is (stored in `sync_state.last_error_kind`).
    pub fn kind(&self) -> ErrorKind {
        match self {
            ApiError::Unauthorized { .. } => ErrorKind::Unauthorized,
            ApiError::NotAvailable { .. } => ErrorKind::NotAvailable,
            ApiError::ScopeNotGranted { .. } => ErrorKind::ScopeNotGranted,
            ApiError::Forbidden { .. } => ErrorKind::Forbidden,
            ApiError::Rejected { .. } | ApiError::Redirected { .. } => ErrorKind::Rejected,
            ApiError::NotFound { .. } => ErrorKind::NotFound,
            ApiError::Auth { .. } => ErrorKind::Auth,
            ApiError::RateLimited { .. } | ApiError::RateLimitWait { .. } => ErrorKind::RateLimited,
            ApiError::Server { .. } => ErrorKind::ServerError,
            ApiError::Network { .. } => ErrorKind::Network,
            ApiError::BadResponse { .. } | ApiError::TooLarge { .. } => ErrorKind::BadResponse,
            ApiError::PagingLoop { .. } => ErrorKind::PagingLoop,
            ApiError::ReauthRequired(_) => ErrorKind::ReauthRequired,
            ApiError::Cancelled => ErrorKind::Cancelled,
        }
    }

    /// Whether a later run may succeed without the user doing anything.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ApiError::RateLimited { .. }
                | ApiError::RateLimitWait { .. }
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
    /// The token was rejected (the server's text): refresh once, then
    /// give up.
    Unauthorized(String),
    /// Well-formed JSON that is not what the endpoint serves: retrying
    /// would get the same.
    Unreadable(String),
    Fatal(ApiError),
}

impl Attempt {
    /// The kind of failure this attempt was (the `outcome` of its metric).
    pub(crate) fn kind(&self) -> ErrorKind {
        match self {
            Attempt::Retry {
                status: Some(s), ..
            } if *s >= 500 => ErrorKind::ServerError,
            Attempt::Retry { status: None, .. } => ErrorKind::Network,
            Attempt::Retry { .. } | Attempt::Unreadable(_) => ErrorKind::BadResponse,
            Attempt::RetryAfter(_) => ErrorKind::RateLimited,
            Attempt::Unauthorized(_) => ErrorKind::Unauthorized,
            Attempt::Fatal(e) => e.kind(),
        }
    }
}
