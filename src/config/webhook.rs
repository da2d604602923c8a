//! `[webhook]`: the receiver of Oura's webhook events and the subscription
//! upkeep.

use serde::Deserialize;

use super::defaults::{DEFAULT_WEBHOOK_LISTEN, default_webhook_listen};
use super::urls::http_url;
use super::{ConfigError, OAuthConfig, Secret};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWebhook {
    enabled: Option<bool>,
    listen: Option<String>,
    callback_url: Option<String>,
    pub verification_token: Option<String>,
}

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

pub(super) fn webhook_config(
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
