//! Every default of a key `daemon.toml` may leave out, in one place
//! (schedules excepted: each data type's is in the registry), with the
//! bounds the validation holds values to.

use std::path::PathBuf;
use std::time::Duration;

use jiff::civil::Date;

use super::{RateLimitConfig, RetryConfig, WebhookConfig};

pub const DEFAULT_BASE_URL: &str = "https://api.ouraring.com";
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 30;
/// Before the first Oura ring; the ring's set-up date raises it.
pub const DEFAULT_BACKFILL_START: Date = jiff::civil::date(2015, 1, 1);
pub const DEFAULT_LOOKBACK_DAYS: u32 = 3;
pub const DEFAULT_STALE_AFTER_HOURS: u64 = 26;
/// Largest API response body read (64 MiB): a year of Oura's largest
/// documents is a few MiB, and a hostile or broken server must not make the
/// process hold hundreds of MB.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 64 * 1024 * 1024;
/// The smallest `sync.max_body_bytes` accepted: below it even an error page
/// or one day of documents may not fit.
pub(super) const MIN_MAX_BODY_BYTES: u64 = 1024;
/// Data requests in flight at once (`sync.max_in_flight`): a first sync is
/// a chain of round trips, so its wall time is about requests × latency ÷
/// this. 16 keeps a 5-year first sync near 45 s at 200 ms a round trip.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 16;
/// More in flight buys nothing at Oura's quota (5,000 per 5 minutes).
pub const MAX_MAX_IN_FLIGHT: usize = 256;
pub const DEFAULT_LOG_LEVEL: &str = "info";

pub const DEFAULT_REDIRECT_URI: &str = "http://localhost:8745/callback";
/// What `auth login` asks for. Oura grants `spo2` today (spec 1.37's
/// `spo2Daily` is refused as `invalid_scope`) and added `heart_health` in
/// spec 1.41.
pub const DEFAULT_SCOPES: &str =
    "email personal daily heartrate workout tag session spo2 heart_health";
pub const DEFAULT_AUTHORIZE_URL: &str = "https://cloud.ouraring.com/oauth/authorize";
pub const DEFAULT_TOKEN_URL: &str = "https://api.ouraring.com/oauth/token";
/// Where applications registered on Oura's newer developer portal refresh
/// their tokens: `DEFAULT_TOKEN_URL` answers their refreshes with
/// `400 invalid_request`.
pub const DEFAULT_FALLBACK_TOKEN_URL: &str = "https://moi.ouraring.com/oauth/v2/ext/oauth-token";
pub const DEFAULT_REVOKE_URL: &str = "https://api.ouraring.com/oauth/revoke";

/// Where the webhook receiver listens by default: loopback only, since users
/// put a reverse proxy or tunnel in front of it.
pub const DEFAULT_WEBHOOK_LISTEN: &str = "127.0.0.1:8788";

/// The documented port of the Prometheus endpoint (`[metrics] listen`).
pub const DEFAULT_METRICS_PORT: u16 = 9788;

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            requests: 5000,
            application_requests: 5000,
            window: Duration::from_secs(300),
            margin_percent: 2,
        }
    }
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_attempts: 6,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(60),
        }
    }
}

/// [`DEFAULT_WEBHOOK_LISTEN`] as an address.
pub(super) fn default_webhook_listen() -> std::net::SocketAddr {
    DEFAULT_WEBHOOK_LISTEN.parse().expect("valid default")
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig::Disabled {
            listen: default_webhook_listen(),
            callback_url: None,
            verification_token: None,
        }
    }
}

pub fn default_config_path() -> PathBuf {
    dirs::config_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("ouradb")
        .join("daemon.toml")
}

pub fn default_database_path() -> PathBuf {
    data_dir().join("ouradb.sqlite")
}

/// The account of a config without `[[account]]`, and the first account of
/// every database file.
pub const DEFAULT_ACCOUNT_NAME: &str = "default";
/// Longest `[[account]] name`: it heads status sections and progress bars.
pub const MAX_ACCOUNT_NAME_CHARS: usize = 32;

/// An account's OAuth token file when its entry names none: beside
/// `[auth]`'s token file.
pub(super) fn account_token_file(folder: &std::path::Path, name: &str) -> PathBuf {
    folder.join(format!("tokens-{name}.json"))
}

pub fn default_token_file() -> PathBuf {
    data_dir().join("tokens.json")
}

/// `~/.local/share/ouradb` (or the platform's data folder): the database
/// and the token file live here by default.
fn data_dir() -> PathBuf {
    dirs::data_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("ouradb")
}
