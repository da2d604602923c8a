//! `daemon.toml`: parsing, defaults and validation.
//!
//! Every key is documented in `daemon.toml.example`. A bad value is reported
//! as one line naming the key and how to fix it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::civil::Date;
use serde::Deserialize;

use crate::registry::{self, DataType};
pub use crate::secret::Secret;

// Defaults of the keys `daemon.toml` may leave out, in one place (the OAuth
// endpoints' are beside `OAuthConfig`, the webhook's beside `WebhookConfig`,
// rate limit and retry in their `Default`s, schedules in the registry).

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
const MIN_MAX_BODY_BYTES: u64 = 1024;
/// Data requests in flight at once (`sync.max_in_flight`): a first sync is
/// a chain of round trips, so its wall time is about requests × latency ÷
/// this. 16 keeps a 5-year first sync near 45 s at 200 ms a round trip.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 16;
/// More in flight buys nothing at Oura's quota (5,000 per 5 minutes).
pub const MAX_MAX_IN_FLIGHT: usize = 256;
pub const DEFAULT_LOG_LEVEL: &str = "info";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config key `{key}`: {problem}; {fix}")]
    Invalid {
        key: String,
        problem: String,
        fix: String,
    },
}

impl ConfigError {
    fn invalid(key: &str, problem: impl Into<String>, fix: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.to_owned(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }
}

/// The raw file, exactly as TOML describes it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    api: RawApi,
    #[serde(default)]
    auth: RawAuth,
    #[serde(default)]
    storage: RawStorage,
    #[serde(default)]
    sync: RawSync,
    #[serde(default)]
    rate_limit: RawRateLimit,
    #[serde(default)]
    retry: RawRetry,
    #[serde(default)]
    schedule: BTreeMap<String, String>,
    #[serde(default)]
    log: RawLog,
    #[serde(default)]
    webhook: RawWebhook,
    #[serde(default)]
    metrics: RawMetrics,
}

impl RawConfig {
    /// Whether the file itself holds a token or secret.
    fn holds_credential(&self) -> bool {
        let set = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.trim().is_empty());
        set(&self.auth.personal_access_token)
            || set(&self.auth.client_secret)
            || set(&self.webhook.verification_token)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApi {
    base_url: Option<String>,
    sandbox: Option<bool>,
    timeout_seconds: Option<u64>,
    allow_insecure_http: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    personal_access_token: Option<String>,
    personal_access_token_file: Option<PathBuf>,
    client_id: Option<String>,
    client_secret: Option<String>,
    redirect_uri: Option<String>,
    scopes: Option<String>,
    authorize_url: Option<String>,
    token_url: Option<String>,
    fallback_token_url: Option<String>,
    revoke_url: Option<String>,
    token_file: Option<PathBuf>,
    client_auth: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStorage {
    database: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSync {
    backfill_start: Option<String>,
    lookback_days: Option<u32>,
    #[serde(default)]
    lookback: BTreeMap<String, u32>,
    types: Option<Vec<String>>,
    stale_after_hours: Option<u64>,
    max_body_bytes: Option<u64>,
    max_in_flight: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRateLimit {
    requests: Option<u32>,
    window_seconds: Option<u64>,
    margin_percent: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetry {
    max_attempts: Option<u32>,
    base_delay_ms: Option<u64>,
    max_delay_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    level: Option<String>,
    format: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    enabled: Option<bool>,
    listen: Option<String>,
    callback_url: Option<String>,
    verification_token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    listen: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub base_url: url::Url,
    pub sandbox: bool,
    pub request_timeout: Duration,
    pub token: Option<Secret>,
    /// OAuth2 settings (`[auth]` client and endpoint keys).
    pub oauth: OAuthConfig,
    pub database: PathBuf,
    pub backfill_start: Date,
    pub lookback_days: u32,
    pub lookback_overrides: BTreeMap<String, u32>,
    /// Data types to sync, registry order.
    pub types: Vec<&'static DataType>,
    pub stale_after: Duration,
    /// Largest API response body read, decompressed (`sync.max_body_bytes`).
    pub max_body_bytes: u64,
    /// Most data requests in flight at once, across every type (`sync.max_in_flight`).
    pub max_in_flight: usize,
    pub rate_limit: RateLimitConfig,
    pub retry: RetryConfig,
    /// Cron expression (6 fields, seconds first) per data type name.
    pub schedules: BTreeMap<&'static str, String>,
    pub log_level: String,
    pub log_format: LogFormat,
    /// Oura webhooks (`[webhook]`).
    pub webhook: WebhookConfig,
    /// Problems worth a warning that do not stop anything (files holding
    /// credentials that other users can read); the CLI prints them, the
    /// daemon logs them.
    pub warnings: Vec<String>,
    /// Where the daemon serves `/metrics` (`[metrics] listen`); `None`: off.
    pub metrics_listen: Option<std::net::SocketAddr>,
}

/// Where the webhook receiver listens by default: loopback only, since users
/// put a reverse proxy or tunnel in front of it.
pub const DEFAULT_WEBHOOK_LISTEN: &str = "127.0.0.1:8788";

/// `[webhook]`, validated: the receiver's settings exist only when complete.
#[derive(Debug, Clone)]
pub enum WebhookConfig {
    /// `enabled = false` (the default): no receiver runs. The keys as set,
    /// for `ouradb webhook …` and `status`.
    Disabled {
        listen: std::net::SocketAddr,
        callback_url: Option<url::Url>,
        verification_token: Option<Secret>,
    },
    /// `enabled = true`: the daemon runs the receiver and keeps the
    /// subscriptions. Loading also required `auth.client_id` and
    /// `auth.client_secret`.
    Enabled(WebhookSettings),
}

/// What the webhook receiver and the subscription upkeep run with.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub listen: std::net::SocketAddr,
    /// The public URL Oura calls; its path is the one the receiver serves.
    pub callback_url: url::Url,
    /// Echoed by Oura when it verifies the callback.
    pub verification_token: Secret,
}

/// [`DEFAULT_WEBHOOK_LISTEN`] as an address.
fn default_webhook_listen() -> std::net::SocketAddr {
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

impl WebhookConfig {
    /// The receiver's settings when webhooks are enabled.
    pub fn enabled(&self) -> Option<&WebhookSettings> {
        match self {
            WebhookConfig::Enabled(s) => Some(s),
            WebhookConfig::Disabled { .. } => None,
        }
    }

    /// Where the receiver listens (or would).
    pub fn listen(&self) -> std::net::SocketAddr {
        match self {
            WebhookConfig::Enabled(s) => s.listen,
            WebhookConfig::Disabled { listen, .. } => *listen,
        }
    }

    pub fn callback_url(&self) -> Option<&url::Url> {
        match self {
            WebhookConfig::Enabled(s) => Some(&s.callback_url),
            WebhookConfig::Disabled { callback_url, .. } => callback_url.as_ref(),
        }
    }

    pub fn verification_token(&self) -> Option<&Secret> {
        match self {
            WebhookConfig::Enabled(s) => Some(&s.verification_token),
            WebhookConfig::Disabled {
                verification_token, ..
            } => verification_token.as_ref(),
        }
    }
}

/// `webhook.callback_url` is not set (`problem`), with how to set it.
pub fn missing_callback_url(problem: &str) -> ConfigError {
    ConfigError::invalid(
        "webhook.callback_url",
        problem,
        "set the public https URL Oura should call, e.g. \"https://ouradb.example.org/oura/webhook\"",
    )
}

/// `webhook.verification_token` is not set (`problem`), with how to set it.
pub fn missing_verification_token(problem: &str) -> ConfigError {
    ConfigError::invalid(
        "webhook.verification_token",
        problem,
        "set a long random string (or OURA_WEBHOOK_VERIFICATION_TOKEN)",
    )
}

fn webhook_config(
    raw: RawWebhook,
    oauth: &OAuthConfig,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<WebhookConfig, ConfigError> {
    let listen = match raw.listen.as_deref() {
        None => default_webhook_listen(),
        Some(text) => text.trim().parse().map_err(|_| {
            ConfigError::invalid(
                "webhook.listen",
                format!("`{text}` is not an IP address and port"),
                format!("use e.g. \"{DEFAULT_WEBHOOK_LISTEN}\""),
            )
        })?,
    };
    let callback_url = raw
        .callback_url
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            http_url(
                "webhook.callback_url",
                s.trim(),
                "https://ouradb.example.org/oura/webhook",
            )
        })
        .transpose()?;
    let verification_token = raw
        .verification_token
        .filter(|s| !s.trim().is_empty())
        .or_else(|| env("OURA_WEBHOOK_VERIFICATION_TOKEN").filter(|s| !s.trim().is_empty()))
        .map(|s| Secret::new(s.trim()));
    if !raw.enabled.unwrap_or(false) {
        return Ok(WebhookConfig::Disabled {
            listen,
            callback_url,
            verification_token,
        });
    }
    const REQUIRED: &str = "is required when webhooks are enabled";
    let callback_url = callback_url.ok_or_else(|| missing_callback_url(REQUIRED))?;
    let verification_token =
        verification_token.ok_or_else(|| missing_verification_token(REQUIRED))?;
    if oauth.client_id.is_none() || oauth.client_secret.is_none() {
        return Err(ConfigError::invalid(
            "auth.client_id",
            "webhooks need the OAuth application's client_id and client_secret",
            "set auth.client_id and auth.client_secret (or OURA_CLIENT_SECRET)",
        ));
    }
    Ok(WebhookConfig::Enabled(WebhookSettings {
        listen,
        callback_url,
        verification_token,
    }))
}

/// The documented port of the Prometheus endpoint (`[metrics] listen`).
pub const DEFAULT_METRICS_PORT: u16 = 9788;

/// `[metrics] listen`: an address and port, or a port alone, which listens on
/// 127.0.0.1 (health data stays on the machine unless asked otherwise);
/// absent or "" turns the endpoint off.
fn metrics_listen(raw: RawMetrics) -> Result<Option<std::net::SocketAddr>, ConfigError> {
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

/// How the client id and secret travel to the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// `client_id` and `client_secret` form fields (what Oura documents).
    Form,
    /// HTTP Basic authentication (RFC 6749 section 2.3.1).
    Basic,
}

/// OAuth2 application settings from `[auth]`.
#[derive(Debug, Clone)]
pub struct OAuthConfig {
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    pub redirect_uri: url::Url,
    pub scopes: Vec<String>,
    pub authorize_url: url::Url,
    pub token_url: url::Url,
    /// Tried once when `token_url` refuses a refresh or code exchange with
    /// `400 invalid_request`/`invalid_client`; `None` when set to "".
    pub fallback_token_url: Option<url::Url>,
    pub revoke_url: url::Url,
    /// Where access and refresh tokens are kept (mode 0600).
    pub token_file: PathBuf,
    pub client_auth: ClientAuth,
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

/// `text` as an http(s) URL with a host, or an error naming `key` and
/// showing `example`.
fn http_url(key: &str, text: &str, example: &str) -> Result<url::Url, ConfigError> {
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
fn url_or_default(key: &str, value: Option<&str>, default: &str) -> Result<url::Url, ConfigError> {
    http_url(key, value.unwrap_or(default), default)
}

fn oauth_config(
    raw: &RawAuth,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<OAuthConfig, ConfigError> {
    let client_id = raw
        .client_id
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let client_secret = raw
        .client_secret
        .clone()
        .filter(|s| !s.trim().is_empty())
        .or_else(|| env("OURA_CLIENT_SECRET").filter(|s| !s.trim().is_empty()))
        .map(|s| Secret::new(s.trim()));
    let redirect_uri = url_or_default(
        "auth.redirect_uri",
        raw.redirect_uri.as_deref(),
        DEFAULT_REDIRECT_URI,
    )?;
    if redirect_uri.port_or_known_default().is_none() {
        return Err(ConfigError::invalid(
            "auth.redirect_uri",
            "has no port",
            format!("use e.g. \"{DEFAULT_REDIRECT_URI}\""),
        ));
    }
    let scopes: Vec<String> = raw
        .scopes
        .as_deref()
        .unwrap_or(DEFAULT_SCOPES)
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    if scopes.is_empty() {
        return Err(ConfigError::invalid(
            "auth.scopes",
            "is empty",
            format!("list space-separated scopes, e.g. \"{DEFAULT_SCOPES}\""),
        ));
    }
    let authorize_url = url_or_default(
        "auth.authorize_url",
        raw.authorize_url.as_deref(),
        DEFAULT_AUTHORIZE_URL,
    )?;
    let token_url = url_or_default(
        "auth.token_url",
        raw.token_url.as_deref(),
        DEFAULT_TOKEN_URL,
    )?;
    let fallback_token_url = match raw
        .fallback_token_url
        .as_deref()
        .unwrap_or(DEFAULT_FALLBACK_TOKEN_URL)
        .trim()
    {
        "" => None,
        text => Some(http_url(
            "auth.fallback_token_url",
            text,
            DEFAULT_FALLBACK_TOKEN_URL,
        )?),
    };
    let revoke_url = url_or_default(
        "auth.revoke_url",
        raw.revoke_url.as_deref(),
        DEFAULT_REVOKE_URL,
    )?;
    let token_file = raw
        .token_file
        .as_deref()
        .map(expand_home)
        .unwrap_or_else(default_token_file);
    if token_file.as_os_str().is_empty() || token_file.file_name().is_none() {
        return Err(ConfigError::invalid(
            "auth.token_file",
            "is not a file path",
            "give a file path such as \"~/.local/share/ouradb/tokens.json\"",
        ));
    }
    let client_auth = match raw.client_auth.as_deref().unwrap_or("form") {
        "form" => ClientAuth::Form,
        "basic" => ClientAuth::Basic,
        other => {
            return Err(ConfigError::invalid(
                "auth.client_auth",
                format!("unknown method `{other}`"),
                "use form or basic",
            ));
        }
    };
    Ok(OAuthConfig {
        client_id,
        client_secret,
        redirect_uri,
        scopes,
        authorize_url,
        token_url,
        fallback_token_url,
        revoke_url,
        token_file,
        client_auth,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitConfig {
    pub requests: u32,
    pub window: Duration,
    /// Share of the quota held back for clock skew between us and the server.
    pub margin_percent: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            requests: 5000,
            window: Duration::from_secs(300),
            margin_percent: 2,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryConfig {
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable with colours on a terminal, plain lines (journald) otherwise.
    Auto,
    Pretty,
    Plain,
    Json,
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

impl Config {
    /// Loads `path`; a missing file at the default location means "all defaults".
    #[allow(clippy::disallowed_methods, reason = "config reads the environment")]
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let (path, explicit) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (default_config_path(), false),
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => String::new(),
            Err(source) => return Err(ConfigError::Read { path, source }),
        };
        let mut config = Self::from_toml(&text, &path, |k| std::env::var(k).ok())?;
        // Parsed once more (it parsed above): only a file holding a
        // credential needs to be private.
        if toml::from_str::<RawConfig>(&text).is_ok_and(|r| r.holds_credential()) {
            config
                .warnings
                .splice(0..0, exposed_file("config file", &path));
        }
        Ok(config)
    }

    /// Parses config text; `env` supplies environment variables so tests can
    /// inject them without touching the process environment.
    pub fn from_toml(
        text: &str,
        path: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            // A wrong-typed value: name the key and the type it needs.
            if let Some(span) = e.span()
                && let Some(key) = key_at(text, span.start)
                && let Some(expected) = expected_type(e.message())
            {
                return ConfigError::Invalid {
                    problem: format!(
                        "{} (in {} at line {})",
                        e.message().trim(),
                        path.display(),
                        line_of(text, span.start)
                    ),
                    fix: format!("write {expected}"),
                    key,
                };
            }
            ConfigError::Parse {
                path: path.to_path_buf(),
                message: e.message().trim().to_owned()
                    + &e.span()
                        .map(|s| format!(" (at line {})", line_of(text, s.start)))
                        .unwrap_or_default()
                    + "; see daemon.toml.example for every key",
            }
        })?;
        Self::from_raw(raw, env)
    }

    fn from_raw(
        raw: RawConfig,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let base_url = url_or_default(
            "api.base_url",
            raw.api.base_url.as_deref(),
            DEFAULT_BASE_URL,
        )?;
        let timeout = raw.api.timeout_seconds.unwrap_or(DEFAULT_TIMEOUT_SECONDS);
        if timeout == 0 {
            return Err(ConfigError::invalid(
                "api.timeout_seconds",
                "must be at least 1",
                "use e.g. 30",
            ));
        }

        let max_body_bytes = raw.sync.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES);
        if max_body_bytes < MIN_MAX_BODY_BYTES {
            return Err(ConfigError::invalid(
                "sync.max_body_bytes",
                format!("{max_body_bytes} is too small to hold a page"),
                format!(
                    "use at least {MIN_MAX_BODY_BYTES}; the default is {DEFAULT_MAX_BODY_BYTES} (64 MiB)"
                ),
            ));
        }

        let oauth = oauth_config(&raw.auth, &env)?;
        let insecure_ok = raw.api.allow_insecure_http.unwrap_or(false);
        for (key, url) in [
            ("api.base_url", Some(&base_url)),
            ("auth.token_url", Some(&oauth.token_url)),
            ("auth.fallback_token_url", oauth.fallback_token_url.as_ref()),
            ("auth.revoke_url", Some(&oauth.revoke_url)),
        ] {
            if let Some(url) = url {
                refuse_plain_http(key, url, insecure_ok)?;
            }
        }
        let mut warnings: Vec<String> = exposed_file("token file", &oauth.token_file)
            .into_iter()
            .collect();
        let webhook = webhook_config(raw.webhook, &oauth, &env)?;
        let metrics_listen = metrics_listen(raw.metrics)?;
        let token = match (
            raw.auth
                .personal_access_token
                .filter(|t| !t.trim().is_empty()),
            raw.auth.personal_access_token_file,
        ) {
            (Some(t), _) => {
                check_token("auth.personal_access_token", t.trim())?;
                Some(Secret::new(t.trim()))
            }
            (None, Some(file)) => {
                let file = expand_home(&file);
                warnings.extend(exposed_file("token file", &file));
                let t = std::fs::read_to_string(&file).map_err(|e| {
                    ConfigError::invalid(
                        "auth.personal_access_token_file",
                        format!("cannot read {}: {e}", file.display()),
                        "point it at a readable file holding only the token",
                    )
                })?;
                check_token("auth.personal_access_token_file", t.trim())?;
                Some(Secret::new(t.trim()))
            }
            (None, None) => None,
        };
        let token = match token {
            Some(t) => Some(t),
            None => match env("OURA_TOKEN").filter(|t| !t.trim().is_empty()) {
                Some(t) => {
                    check_token("OURA_TOKEN", t.trim())?;
                    Some(Secret::new(t.trim()))
                }
                None => None,
            },
        };

        let database = raw
            .storage
            .database
            .map(|p| expand_home(&p))
            .unwrap_or_else(default_database_path);
        if database.as_os_str().is_empty() {
            return Err(ConfigError::invalid(
                "storage.database",
                "is empty",
                "give a file path such as \"~/.local/share/ouradb/ouradb.sqlite\"",
            ));
        }

        let backfill_start = match raw.sync.backfill_start {
            None => DEFAULT_BACKFILL_START,
            Some(s) => s.parse::<Date>().map_err(|_| {
                ConfigError::invalid(
                    "sync.backfill_start",
                    format!("`{s}` is not a date"),
                    "use YYYY-MM-DD, e.g. \"2015-01-01\"",
                )
            })?,
        };

        let types: Vec<&'static DataType> = match raw.sync.types {
            None => registry::DATA_TYPES.iter().collect(),
            Some(list) if list.is_empty() => registry::DATA_TYPES.iter().collect(),
            Some(list) => {
                for name in &list {
                    if registry::find(name).is_none() {
                        return Err(ConfigError::invalid(
                            "sync.types",
                            format!("unknown data type `{name}`"),
                            format!("use any of: {}", registry::names().join(", ")),
                        ));
                    }
                }
                registry::DATA_TYPES
                    .iter()
                    .filter(|d| list.iter().any(|n| n == d.name))
                    .collect()
            }
        };
        for name in raw.sync.lookback.keys() {
            if registry::find(name).is_none() {
                return Err(ConfigError::invalid(
                    &format!("sync.lookback.{name}"),
                    "is not a data type",
                    format!("use any of: {}", registry::names().join(", ")),
                ));
            }
        }

        let rate_default = RateLimitConfig::default();
        let requests = raw.rate_limit.requests.unwrap_or(rate_default.requests);
        let window_seconds = raw
            .rate_limit
            .window_seconds
            .unwrap_or(rate_default.window.as_secs());
        let margin_percent = raw
            .rate_limit
            .margin_percent
            .unwrap_or(rate_default.margin_percent);
        if requests < 3 {
            return Err(ConfigError::invalid(
                "rate_limit.requests",
                "must be at least 3",
                "use Oura's limit, 5000",
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

        let retry_default = RetryConfig::default();
        let retry = RetryConfig {
            max_attempts: raw.retry.max_attempts.unwrap_or(retry_default.max_attempts),
            base_delay: raw
                .retry
                .base_delay_ms
                .map(Duration::from_millis)
                .unwrap_or(retry_default.base_delay),
            max_delay: raw
                .retry
                .max_delay_seconds
                .map(Duration::from_secs)
                .unwrap_or(retry_default.max_delay),
        };
        if retry.max_attempts == 0 {
            return Err(ConfigError::invalid(
                "retry.max_attempts",
                "must be at least 1",
                "use e.g. 6",
            ));
        }

        let mut schedules = BTreeMap::new();
        let fallback = raw.schedule.get("default").cloned();
        for (name, expr) in &raw.schedule {
            if name != "default" && registry::find(name).is_none() {
                return Err(ConfigError::invalid(
                    &format!("schedule.{name}"),
                    "is not a data type",
                    format!("use `default` or any of: {}", registry::names().join(", ")),
                ));
            }
            validate_cron(&format!("schedule.{name}"), expr)?;
        }
        for dt in registry::DATA_TYPES {
            let expr = raw
                .schedule
                .get(dt.name)
                .cloned()
                .or_else(|| fallback.clone())
                .unwrap_or_else(|| dt.schedule.to_owned());
            schedules.insert(dt.name, expr);
        }

        let log_format = match raw.log.format.as_deref().unwrap_or("auto") {
            "auto" => LogFormat::Auto,
            "pretty" => LogFormat::Pretty,
            "plain" | "journald" => LogFormat::Plain,
            "json" => LogFormat::Json,
            other => {
                return Err(ConfigError::invalid(
                    "log.format",
                    format!("unknown format `{other}`"),
                    "use auto, pretty, plain or json",
                ));
            }
        };
        let log_level = raw.log.level.unwrap_or_else(|| DEFAULT_LOG_LEVEL.into());
        if !valid_log_filter(&log_level) {
            return Err(ConfigError::invalid(
                "log.level",
                format!("`{log_level}` is not a log level"),
                "use off, error, warn, info, debug or trace (or directives such as \"info,ouradb=debug\")",
            ));
        }

        Ok(Config {
            base_url,
            sandbox: raw.api.sandbox.unwrap_or(false),
            request_timeout: Duration::from_secs(timeout),
            token,
            oauth,
            database,
            backfill_start,
            lookback_days: raw.sync.lookback_days.unwrap_or(DEFAULT_LOOKBACK_DAYS),
            lookback_overrides: raw.sync.lookback,
            types,
            stale_after: Duration::from_secs(
                3600 * raw
                    .sync
                    .stale_after_hours
                    .unwrap_or(DEFAULT_STALE_AFTER_HOURS),
            ),
            max_body_bytes,
            max_in_flight: max_in_flight(raw.sync.max_in_flight)?,
            rate_limit: RateLimitConfig {
                requests,
                window: Duration::from_secs(window_seconds),
                margin_percent,
            },
            retry,
            schedules,
            log_level,
            log_format,
            webhook,
            warnings,
            metrics_listen,
        })
    }

    /// A config for tests and the demo: everything default except what is given.
    pub fn for_base_url(base_url: &str, token: &str, database: PathBuf) -> Config {
        let mut c = Self::from_raw(RawConfig::default(), |_| None).expect("defaults are valid");
        c.base_url = url::Url::parse(base_url).expect("valid base url");
        c.token = Some(Secret::new(token));
        // Keep OAuth tokens beside the database so a test or the demo never
        // picks up the user's real sign-in.
        c.oauth.token_file = database.with_file_name("tokens.json");
        // What the defaults said about the user's own token file is no
        // concern of a test or the demo.
        c.warnings.clear();
        c.database = database;
        c
    }

    pub fn lookback_days(&self, dt: &DataType) -> u32 {
        self.lookback_overrides
            .get(dt.name)
            .copied()
            .unwrap_or(self.lookback_days)
    }
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
fn refuse_plain_http(key: &str, url: &url::Url, allowed: bool) -> Result<(), ConfigError> {
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

/// A warning when `path` (holding credentials) exists and other users may
/// read or change it, naming the `chmod` that fixes it.
fn exposed_file(what: &str, path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    if mode & 0o077 == 0 {
        return None;
    }
    let shown = path.display().to_string();
    let quoted = if shown
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_-./=:@%+,".contains(c))
    {
        shown.clone()
    } else {
        format!("'{}'", shown.replace('\'', r"'\''"))
    };
    Some(format!(
        "{what} {shown} holds a credential and is open to other users (mode {mode:04o}: they can read or change it); run `chmod 600 {quoted}`"
    ))
}

const LOG_LEVELS: &[&str] = &["off", "error", "warn", "info", "debug", "trace"];

/// A level, or comma-separated `target=level` directives. A bare word that
/// is not a level (`loud`) would be read by tracing as a target name and
/// silence every log line, so it is refused.
fn valid_log_filter(text: &str) -> bool {
    let is_level = |l: &str| LOG_LEVELS.iter().any(|x| x.eq_ignore_ascii_case(l.trim()));
    !text.trim().is_empty()
        && text.split(',').all(|d| match d.rsplit_once('=') {
            Some((target, level)) => !target.trim().is_empty() && is_level(level),
            None => is_level(d),
        })
        && tracing_subscriber::EnvFilter::try_new(text).is_ok()
}

/// A token must fit in one HTTP header line.
fn check_token(key: &str, token: &str) -> Result<(), ConfigError> {
    if token.is_empty() {
        return Err(ConfigError::invalid(
            key,
            "is empty",
            "put the token in it, or run `ouradb auth login` to sign in with OAuth2",
        ));
    }
    if token.chars().any(|c| c.is_control() || c == ' ') {
        return Err(ConfigError::invalid(
            key,
            "contains a line break, space or other character a token cannot have",
            "copy the token again as one line with nothing around it",
        ));
    }
    Ok(())
}

fn validate_cron(key: &str, expr: &str) -> Result<(), ConfigError> {
    let fields = expr.split_whitespace().count();
    if !(6..=7).contains(&fields) {
        return Err(ConfigError::invalid(
            key,
            format!("`{expr}` has {fields} fields"),
            "use 6 fields with seconds first, e.g. \"0 5 * * * *\" (every hour at :05)",
        ));
    }
    // Parse with the scheduler itself so config validation and the daemon
    // can never disagree about what a valid expression is.
    tokio_cron_scheduler::Job::new(expr, |_, _| {}).map_err(|_| {
        ConfigError::invalid(
            key,
            format!("`{expr}` is not a valid cron expression"),
            "use 6 fields with seconds first, e.g. \"0 5 * * * *\"",
        )
    })?;
    Ok(())
}

/// The dotted key whose value starts at `offset`: the nearest `[table]`
/// header above it plus the key on its line.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line = &text[line_start..];
    let line = line.split('\n').next().unwrap_or("");
    let (key, _) = line.split_once('=')?;
    let key = key.trim().trim_matches('"');
    if key.is_empty() || key.starts_with('#') {
        return None;
    }
    let table = text[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('[') && !l.starts_with("[["))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_owned());
    Some(match table {
        Some(t) if !t.is_empty() => format!("{t}.{key}"),
        _ => key.to_owned(),
    })
}

/// Plain words for the type serde expected, from its "invalid type" message.
fn expected_type(message: &str) -> Option<&'static str> {
    let expected = message.split("expected").nth(1)?.trim();
    Some(if expected.starts_with('u') || expected.starts_with('i') {
        "a whole number without quotes, e.g. 30"
    } else if expected.starts_with("a boolean") {
        "true or false without quotes"
    } else if expected.contains("string") || expected.contains("path") {
        "a quoted string, e.g. \"value\""
    } else if expected.contains("sequence") {
        "a list, e.g. [\"daily_sleep\", \"heartrate\"]"
    } else if expected.contains("map") || expected.contains("struct") {
        "a table, e.g. [section] with key = value lines"
    } else {
        return None;
    })
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

fn expand_home(p: &Path) -> PathBuf {
    match p.strip_prefix("~") {
        Ok(rest) => dirs::home_dir()
            .map(|h| h.join(rest))
            .unwrap_or_else(|| p.to_path_buf()),
        Err(_) => p.to_path_buf(),
    }
}

fn max_in_flight(raw: Option<usize>) -> Result<usize, ConfigError> {
    match raw.unwrap_or(DEFAULT_MAX_IN_FLIGHT) {
        n @ 1..=MAX_MAX_IN_FLIGHT => Ok(n),
        n => Err(ConfigError::invalid(
            "sync.max_in_flight",
            format!("{n} requests in flight"),
            format!("use 1 to {MAX_MAX_IN_FLIGHT} (default {DEFAULT_MAX_IN_FLIGHT})"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_in_flight_defaults_to_16_and_refuses_0() {
        assert_eq!(parse("").unwrap().max_in_flight, DEFAULT_MAX_IN_FLIGHT);
        assert_eq!(parse("[sync]\nmax_in_flight = 4").unwrap().max_in_flight, 4);
        for bad in ["0", "257"] {
            let e = parse(&format!("[sync]\nmax_in_flight = {bad}"))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("sync.max_in_flight") && e.contains("use 1 to 256"),
                "{e}"
            );
        }
    }

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml(text, Path::new("t.toml"), |_| None)
    }

    #[test]
    fn defaults() {
        let c = parse("").unwrap();
        assert_eq!(c.base_url.as_str(), "https://api.ouraring.com/");
        assert_eq!(c.rate_limit.requests, 5000);
        assert_eq!(c.rate_limit.window, Duration::from_secs(300));
        assert_eq!(c.backfill_start, jiff::civil::date(2015, 1, 1));
        assert_eq!(c.types.len(), 20);
        assert_eq!(c.schedules["heartrate"], "0 */15 * * * *");
        for dt in registry::DATA_TYPES {
            assert_eq!(c.schedules[dt.name], dt.schedule, "{}", dt.name);
        }
        let c = parse("[schedule]\ndefault = \"0 0 * * * *\"\nsleep = \"0 1 * * * *\"").unwrap();
        assert_eq!(c.schedules["heartrate"], "0 0 * * * *");
        assert_eq!(c.schedules["sleep"], "0 1 * * * *");
        assert_eq!(c.lookback_days, 3);
        assert!(c.token.is_none());
    }

    #[test]
    fn env_token_and_config_precedence() {
        let c = Config::from_toml("", Path::new("t"), |k| {
            (k == "OURA_TOKEN").then(|| "envtok".into())
        })
        .unwrap();
        assert_eq!(c.token.unwrap().expose(), "envtok");
        let c = Config::from_toml(
            "[auth]\npersonal_access_token = \"filetok\"\n",
            Path::new("t"),
            |_| Some("envtok".into()),
        )
        .unwrap();
        assert_eq!(c.token.unwrap().expose(), "filetok");
    }

    #[test]
    fn errors_name_the_key_and_the_fix() {
        let cases = [
            (
                "[sync]\nbackfill_start = \"yesterday\"",
                "sync.backfill_start",
                "YYYY-MM-DD",
            ),
            (
                "[api]\nbase_url = \"ftp://x\"",
                "api.base_url",
                "https://api.ouraring.com",
            ),
            ("[rate_limit]\nrequests = 0", "rate_limit.requests", "5000"),
            ("[sync]\ntypes = [\"sleeep\"]", "sync.types", "daily_sleep"),
            (
                "[schedule]\nheartrate = \"*/5 * * *\"",
                "schedule.heartrate",
                "6 fields",
            ),
            (
                "[schedule]\nheartrate = \"0 99 * * * *\"",
                "schedule.heartrate",
                "cron",
            ),
            ("[log]\nformat = \"xml\"", "log.format", "json"),
            (
                "[sync]\nmax_body_bytes = 10",
                "sync.max_body_bytes",
                "at least 1024",
            ),
            ("[log]\nlevel = \"loud\"", "log.level", "debug"),
            (
                "[api]\ntimeout_seconds = \"30\"",
                "api.timeout_seconds",
                "whole number",
            ),
            ("[api]\nsandbox = 1", "api.sandbox", "true or false"),
            ("[sync]\ntypes = \"daily_sleep\"", "sync.types", "a list"),
            (
                "[auth]\npersonal_access_token = \"abc\\ndef\"",
                "auth.personal_access_token",
                "one line",
            ),
        ];
        for (text, key, fix) in cases {
            let msg = parse(text).unwrap_err().to_string();
            assert!(msg.contains(key), "{msg}");
            assert!(msg.contains(fix), "{msg}");
            assert!(!msg.contains('\n'), "one line: {msg}");
        }
        for ok in ["debug", "info,ouradb=debug", "WARN", "ouradb::sync=trace"] {
            assert!(parse(&format!("[log]\nlevel = \"{ok}\"")).is_ok(), "{ok}");
        }
        let msg = parse("[storage]\ndatabse = \"x\"").unwrap_err().to_string();
        assert!(msg.contains("databse") && msg.contains("line 2"), "{msg}");
    }

    #[test]
    fn oauth_defaults_env_secret_and_errors() {
        let c = Config::from_toml("[auth]\nclient_id = \"app\"\n", Path::new("t"), |k| {
            (k == "OURA_CLIENT_SECRET").then(|| "envsecret".into())
        })
        .unwrap();
        assert_eq!(c.oauth.client_id.as_deref(), Some("app"));
        assert_eq!(c.oauth.client_secret.unwrap().expose(), "envsecret");
        assert_eq!(c.oauth.redirect_uri.as_str(), DEFAULT_REDIRECT_URI);
        assert_eq!(c.oauth.scopes.len(), 9);
        assert!(c.oauth.scopes.iter().any(|s| s == "spo2"));
        assert!(!c.oauth.scopes.iter().any(|s| s == "spo2Daily"));
        assert_eq!(
            c.oauth.fallback_token_url.as_ref().map(url::Url::as_str),
            Some(DEFAULT_FALLBACK_TOKEN_URL)
        );
        assert_eq!(c.oauth.token_url.as_str(), DEFAULT_TOKEN_URL);
        assert_eq!(c.oauth.client_auth, ClientAuth::Form);
        assert!(c.oauth.token_file.ends_with("ouradb/tokens.json"));
        let c = parse("[auth]\nfallback_token_url = \"\"").unwrap();
        assert!(c.oauth.fallback_token_url.is_none(), "\"\" turns it off");
        let c = parse("[auth]\nclient_secret = \"s3cret\"\nclient_auth = \"basic\"").unwrap();
        assert_eq!(c.oauth.client_auth, ClientAuth::Basic);
        assert!(!format!("{c:?}").contains("s3cret"));
        for (text, key) in [
            ("[auth]\nredirect_uri = \"nope\"", "auth.redirect_uri"),
            ("[auth]\ntoken_url = \"ftp://x\"", "auth.token_url"),
            (
                "[auth]\nfallback_token_url = \"nope\"",
                "auth.fallback_token_url",
            ),
            ("[auth]\nscopes = \" \"", "auth.scopes"),
            ("[auth]\nclient_auth = \"jwt\"", "auth.client_auth"),
        ] {
            let msg = parse(text).unwrap_err().to_string();
            assert!(msg.contains(key), "{msg}");
        }
    }

    #[test]
    fn webhook_defaults_and_errors() {
        let c = parse("").unwrap();
        assert!(c.webhook.enabled().is_none());
        assert_eq!(c.webhook.listen().to_string(), DEFAULT_WEBHOOK_LISTEN);
        assert!(c.webhook.listen().ip().is_loopback());
        let c = parse(
            "[auth]\nclient_id = \"app\"\nclient_secret = \"s\"\n[webhook]\nenabled = true\nlisten = \"0.0.0.0:9000\"\ncallback_url = \"https://x.example/hook\"\nverification_token = \"vt-secret\"",
        )
        .unwrap();
        let w = c.webhook.enabled().expect("enabled");
        assert_eq!(w.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(w.callback_url.path(), "/hook");
        assert!(!format!("{:?}", w.verification_token).contains("vt-secret"));
        let example = parse(include_str!("../daemon.toml.example")).unwrap();
        assert!(example.webhook.enabled().is_none());
        assert_eq!(example.webhook.listen().to_string(), DEFAULT_WEBHOOK_LISTEN);
        for (text, key) in [
            ("[webhook]\nlisten = \"localhost\"", "webhook.listen"),
            (
                "[webhook]\ncallback_url = \"ftp://x\"",
                "webhook.callback_url",
            ),
            ("[webhook]\nenabled = true", "webhook.callback_url"),
            (
                "[webhook]\nenabled = true\ncallback_url = \"https://x/h\"",
                "webhook.verification_token",
            ),
            (
                "[webhook]\nenabled = true\ncallback_url = \"https://x/h\"\nverification_token = \"v\"",
                "auth.client_id",
            ),
        ] {
            let msg = parse(text).unwrap_err().to_string();
            assert!(msg.contains(key), "{msg}");
        }
    }

    #[test]
    fn plain_http_only_to_this_machine_unless_allowed() {
        for ok in [
            "[api]\nbase_url = \"http://127.0.0.1:9000\"",
            "[api]\nbase_url = \"http://127.8.0.1\"",
            "[api]\nbase_url = \"http://[::1]:9\"",
            "[api]\nbase_url = \"http://LOCALHOST:9/oura\"",
            "[auth]\ntoken_url = \"http://localhost:9/oauth/token\"",
            "[api]\nbase_url = \"https://oura.example\"",
            "[api]\nallow_insecure_http = true\nbase_url = \"http://oura.example\"",
        ] {
            assert!(parse(ok).is_ok(), "{ok}");
        }
        for (text, key) in [
            ("[api]\nbase_url = \"http://oura.example\"", "api.base_url"),
            ("[api]\nbase_url = \"http://10.0.0.5:8080\"", "api.base_url"),
            (
                "[auth]\ntoken_url = \"http://oura.example/t\"",
                "auth.token_url",
            ),
            (
                "[auth]\nfallback_token_url = \"http://oura.example/t\"",
                "auth.fallback_token_url",
            ),
            (
                "[auth]\nrevoke_url = \"http://oura.example/r\"",
                "auth.revoke_url",
            ),
            (
                "[api]\nallow_insecure_http = false\nbase_url = \"http://127.0.0.1.example\"",
                "api.base_url",
            ),
        ] {
            let msg = parse(text).unwrap_err().to_string();
            assert!(msg.contains(key), "{msg}");
            assert!(
                msg.contains("unencrypted") && msg.contains("allow_insecure_http = true"),
                "{msg}"
            );
        }
    }

    #[test]
    fn secret_is_not_debug_printed() {
        let c = parse("[auth]\npersonal_access_token = \"hunter2\"").unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn metrics_endpoint_is_off_by_default_and_a_bare_port_stays_on_loopback() {
        assert_eq!(parse("").unwrap().metrics_listen, None);
        assert_eq!(
            parse("[metrics]\nlisten = \"\"").unwrap().metrics_listen,
            None
        );
        for (text, addr) in [
            ("9788", "127.0.0.1:9788"),
            (":9788", "127.0.0.1:9788"),
            ("0.0.0.0:9100", "0.0.0.0:9100"),
            ("[::1]:9788", "[::1]:9788"),
        ] {
            let c = parse(&format!("[metrics]\nlisten = \"{text}\"")).unwrap();
            assert_eq!(c.metrics_listen, Some(addr.parse().unwrap()), "{text}");
        }
        let e = parse("[metrics]\nlisten = \"localhost:x\"")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("metrics.listen")
                && e.contains("localhost:x")
                && e.contains("127.0.0.1:9788"),
            "{e}"
        );
        let e = parse("[metrics]\nport = 1").unwrap_err().to_string();
        assert!(e.contains("port"), "{e}");
        let example = include_str!("../daemon.toml.example");
        assert_eq!(parse(example).unwrap().metrics_listen, None);
        let on = example.replace("# listen = \"127.0.0.1:", "listen = \"127.0.0.1:");
        assert_eq!(
            parse(&on).unwrap().metrics_listen,
            Some((std::net::Ipv4Addr::LOCALHOST, DEFAULT_METRICS_PORT).into())
        );
    }
}
