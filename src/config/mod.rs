//! `daemon.toml`: parsing, defaults and validation.
//!
//! Every key is documented in `daemon.toml.example`. A bad value is reported
//! as one line naming the key and how to fix it. Each section is parsed by
//! its own module into a typed value; `Config::from_raw` only puts the
//! sections together. Every default is in `defaults.rs`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::civil::Date;
use serde::Deserialize;

use crate::registry::DataType;
pub use crate::secret::Secret;

mod account;
mod api;
mod auth;
mod defaults;
mod log;
mod metrics;
mod rate_limit;
mod retry;
mod schedule;
mod storage;
mod sync;
mod toml_errors;
mod urls;
mod warnings;
mod webhook;

pub use account::{AccountConfig, check_account_name};
pub use auth::{ClientAuth, OAuthConfig};
pub use defaults::*;
pub use log::LogFormat;
pub use rate_limit::RateLimitConfig;
pub use retry::RetryConfig;
pub use webhook::{
    WebhookConfig, WebhookSettings, missing_callback_url, missing_verification_token,
};

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

/// The raw file, exactly as TOML describes it: one raw type per section,
/// beside the code that validates it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    api: api::RawApi,
    #[serde(default)]
    auth: auth::RawAuth,
    #[serde(default)]
    storage: storage::RawStorage,
    #[serde(default)]
    sync: sync::RawSync,
    #[serde(default)]
    rate_limit: rate_limit::RawRateLimit,
    #[serde(default)]
    retry: retry::RawRetry,
    #[serde(default)]
    schedule: BTreeMap<String, String>,
    #[serde(default)]
    log: log::RawLog,
    #[serde(default)]
    webhook: webhook::RawWebhook,
    #[serde(default)]
    metrics: metrics::RawMetrics,
    #[serde(default, rename = "account")]
    accounts: Vec<account::RawAccount>,
}

impl RawConfig {
    /// Whether the file itself holds a token or secret.
    fn holds_credential(&self) -> bool {
        let set = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.trim().is_empty());
        set(&self.auth.personal_access_token)
            || set(&self.auth.client_secret)
            || set(&self.webhook.verification_token)
            || self.accounts.iter().any(|a| set(&a.personal_access_token))
    }
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
    /// The accounts synced, in the file's order: the `[[account]]` entries,
    /// or the one implicit account `default` with `token` and
    /// `oauth.token_file`.
    pub accounts: Vec<AccountConfig>,
    /// Whether the file lists `[[account]]` entries (else `accounts` is
    /// the implicit one).
    pub account_entries: bool,
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
                .splice(0..0, warnings::exposed_file("config file", &path));
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
        Self::from_raw(toml_errors::parse_raw(text, path)?, env)
    }

    /// The sections, each validated by its own module, put together.
    fn from_raw(
        raw: RawConfig,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let api = api::api(raw.api)?;
        let sync = sync::sync_section(raw.sync)?;
        let oauth = auth::oauth_config(&raw.auth, &env)?;
        refuse_plain_http_for_credentials(&api, &oauth)?;
        let mut warnings: Vec<String> = warnings::exposed_file("token file", &oauth.token_file)
            .into_iter()
            .collect();
        let webhook = webhook::webhook_config(raw.webhook, &oauth, &env)?;
        let metrics_listen = metrics::metrics_listen(raw.metrics)?;
        let account_entries = !raw.accounts.is_empty();
        let mut accounts =
            account::accounts(raw.accounts, &raw.auth, &oauth.token_file, &mut warnings)?;
        let mut token = auth::personal_token(raw.auth, &env, &mut warnings)?;
        if account_entries {
            // Each account has its own; OURA_TOKEN would be nobody's.
            token = None;
        } else {
            accounts.push(AccountConfig::implicit(
                token.clone(),
                oauth.token_file.clone(),
            ));
        }
        let database = storage::database(raw.storage)?;
        let rate_limit = rate_limit::rate_limit(raw.rate_limit)?;
        let retry = retry::retry(raw.retry)?;
        let schedules = schedule::schedules(&raw.schedule)?;
        let (log_level, log_format) = log::log(raw.log)?;
        Ok(Config {
            base_url: api.base_url,
            sandbox: api.sandbox,
            request_timeout: api.request_timeout,
            token,
            oauth,
            database,
            backfill_start: sync.backfill_start,
            lookback_days: sync.lookback_days,
            lookback_overrides: sync.lookback_overrides,
            types: sync.types,
            stale_after: sync.stale_after,
            max_body_bytes: sync.max_body_bytes,
            max_in_flight: sync.max_in_flight,
            rate_limit,
            retry,
            schedules,
            log_level,
            log_format,
            webhook,
            warnings,
            metrics_listen,
            accounts,
            account_entries,
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
        c.accounts = vec![AccountConfig::implicit(
            c.token.clone(),
            c.oauth.token_file.clone(),
        )];
        c
    }

    /// This config as `account` syncs with it: its token and OAuth token
    /// file in place of `[auth]`'s. The implicit account's are `[auth]`'s,
    /// so its config is this one unchanged.
    pub fn for_account(&self, account: &AccountConfig) -> Config {
        let mut c = self.clone();
        if self.account_entries {
            c.token = account.token.clone();
            c.oauth.token_file = account.token_file.clone();
            c.accounts = vec![account.clone()];
        }
        c
    }

    /// The configured account named `name`; an unknown name is an error
    /// (for `key`, e.g. `--account`) listing the configured ones.
    pub fn account(&self, key: &str, name: &str) -> Result<&AccountConfig, ConfigError> {
        self.accounts
            .iter()
            .find(|a| a.name == name)
            .ok_or_else(|| {
                let names: Vec<&str> = self.accounts.iter().map(|a| a.name.as_str()).collect();
                ConfigError::invalid(
                    key,
                    format!("no account `{name}` is configured"),
                    format!(
                        "use one of: {} (accounts are the config's [[account]] entries)",
                        names.join(", ")
                    ),
                )
            })
    }

    pub fn lookback_days(&self, dt: &DataType) -> u32 {
        self.lookback_overrides
            .get(dt.name)
            .copied()
            .unwrap_or(self.lookback_days)
    }
}

/// Every URL that carries a credential (the API's, which gets the token;
/// the OAuth endpoints, which get the client secret) through
/// [`urls::refuse_plain_http`].
fn refuse_plain_http_for_credentials(
    api: &api::Api,
    oauth: &OAuthConfig,
) -> Result<(), ConfigError> {
    for (key, url) in [
        ("api.base_url", Some(&api.base_url)),
        ("auth.token_url", Some(&oauth.token_url)),
        ("auth.fallback_token_url", oauth.fallback_token_url.as_ref()),
        ("auth.revoke_url", Some(&oauth.revoke_url)),
    ] {
        if let Some(url) = url {
            urls::refuse_plain_http(key, url, api.allow_insecure_http)?;
        }
    }
    Ok(())
}

/// `~/…` with the user's home folder in place of `~`.
fn expand_home(p: &Path) -> PathBuf {
    match p.strip_prefix("~") {
        Ok(rest) => dirs::home_dir()
            .map(|h| h.join(rest))
            .unwrap_or_else(|| p.to_path_buf()),
        Err(_) => p.to_path_buf(),
    }
}

#[cfg(test)]
mod tests;
