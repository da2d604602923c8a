//! Oura's webhook subscription API (`/v2/webhook/subscription`, client id
//! and secret headers): list, create, renew, delete.
//!
//! These calls authenticate as the application, not the user, so they do
//! not count against the user's request quota and skip the limiter. Keeping
//! the subscriptions in place is `webhook::upkeep`'s job.

use jiff::Timestamp;
use serde::Deserialize;
use serde_json::json;

use crate::config::{Config, Secret};

/// What happened to a document, as Oura names it in a webhook event's and a
/// subscription's `event_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    Create,
    Update,
    Delete,
}

impl Operation {
    /// Every operation; ouradb subscribes to all of them.
    pub const ALL: [Operation; 3] = [Operation::Create, Operation::Update, Operation::Delete];

    /// Oura's exact spelling (`create`, `update`, `delete`); anything else is `None`.
    pub fn parse(s: &str) -> Option<Operation> {
        Operation::ALL.into_iter().find(|op| op.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Update => "update",
            Operation::Delete => "delete",
        }
    }
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SubscriptionError {
    /// A credential the subscription API (or the signature check) needs is not set.
    #[error("webhook setting missing: {0}")]
    Missing(&'static str),
    #[error("webhook subscription API: HTTP {status} on {action}: {detail}")]
    Http {
        action: String,
        status: u16,
        detail: String,
    },
    #[error("webhook subscription API unreachable on {action}: {cause}")]
    Network { action: String, cause: String },
    /// The API redirected to another origin; the request, which carries
    /// the client secret, was not repeated there.
    #[error(
        "webhook subscription API on {action}: {detail}; check api.base_url: it must be the Oura API itself (\"https://api.ouraring.com\"), not an address that forwards elsewhere"
    )]
    Redirected { action: String, detail: String },
}

/// One subscription as Oura reports it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct Subscription {
    pub id: String,
    pub callback_url: String,
    pub event_type: String,
    pub data_type: String,
    pub expiration_time: Timestamp,
}

/// The OAuth application's id and secret: they authenticate subscription
/// calls and key the signatures of the events Oura sends. (`Secret`'s
/// `Debug` is redacted.)
#[derive(Debug, Clone)]
pub struct AppCredentials {
    pub client_id: String,
    pub client_secret: Secret,
}

impl AppCredentials {
    /// `auth.client_id` and `auth.client_secret`, both required.
    pub fn from_config(config: &Config) -> Result<AppCredentials, SubscriptionError> {
        Ok(AppCredentials {
            client_id: config
                .oauth
                .client_id
                .clone()
                .ok_or(SubscriptionError::Missing("auth.client_id"))?,
            client_secret: config
                .oauth
                .client_secret
                .clone()
                .ok_or(SubscriptionError::Missing("auth.client_secret"))?,
        })
    }
}

pub struct WebhookApi {
    http: reqwest::Client,
    base: url::Url,
    app: AppCredentials,
}

impl std::fmt::Debug for WebhookApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookApi")
            .field("base", &self.base.as_str())
            .field("client_id", &self.app.client_id)
            .finish_non_exhaustive()
    }
}

/// Subscribing makes Oura call the receiver back before answering, so
/// these calls get at least this long.
const MIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

impl WebhookApi {
    /// Uses `api.base_url` and the OAuth application's id and secret.
    pub fn new(config: &Config) -> Result<WebhookApi, SubscriptionError> {
        Self::with_credentials(config, AppCredentials::from_config(config)?)
    }

    /// Uses `api.base_url` and `app`.
    pub fn with_credentials(
        config: &Config,
        app: AppCredentials,
    ) -> Result<WebhookApi, SubscriptionError> {
        let http = super::http::client(config.request_timeout.max(MIN_TIMEOUT)).map_err(|e| {
            SubscriptionError::Network {
                action: "setup".into(),
                cause: e.to_string(),
            }
        })?;
        Ok(WebhookApi {
            http,
            base: config.base_url.clone(),
            app,
        })
    }

    fn url(&self, rest: &str) -> url::Url {
        super::http::join(&self.base, &format!("v2/webhook/subscription{rest}"))
    }

    async fn send(
        &self,
        action: &str,
        req: reqwest::RequestBuilder,
    ) -> Result<(u16, bytes::Bytes), SubscriptionError> {
        let resp = req
            .header("x-client-id", &self.app.client_id)
            .header("x-client-secret", self.app.client_secret.expose())
            .send()
            .await
            .map_err(|e| match super::http::refused_redirect(&e) {
                Some(detail) => SubscriptionError::Redirected {
                    action: action.to_owned(),
                    detail,
                },
                None => SubscriptionError::Network {
                    action: action.to_owned(),
                    cause: e.without_url().to_string(),
                },
            })?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(|e| SubscriptionError::Network {
            action: action.to_owned(),
            cause: e.without_url().to_string(),
        })?;
        Ok((status, body))
    }

    /// An error from an answer; validation errors echo the request, so
    /// the secrets it carried are masked, and the server's text is kept
    /// free of control characters.
    fn failed(
        &self,
        action: &str,
        status: u16,
        body: &[u8],
        token: Option<&Secret>,
    ) -> SubscriptionError {
        let text = String::from_utf8_lossy(body);
        let detail = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| {
                v.get("detail")
                    .map(|d| d.as_str().map_or_else(|| d.to_string(), str::to_owned))
            })
            .unwrap_or_else(|| text.chars().take(200).collect());
        // Stripped before masking: a control character inside an echoed
        // secret must not hide it from the mask.
        let mut detail = super::text::one_line(&detail);
        for secret in std::iter::once(&self.app.client_secret).chain(token) {
            if !secret.expose().is_empty() {
                detail = detail.replace(secret.expose(), "***");
            }
        }
        SubscriptionError::Http {
            action: super::text::one_line(action),
            status,
            detail,
        }
    }

    fn parse<T: serde::de::DeserializeOwned>(
        action: &str,
        body: &[u8],
    ) -> Result<T, SubscriptionError> {
        serde_json::from_slice(body).map_err(|e| SubscriptionError::Http {
            action: super::text::one_line(action),
            status: 200,
            detail: super::text::one_line(&format!("unreadable answer: {e}")),
        })
    }

    /// Every subscription of the application.
    pub async fn list(&self) -> Result<Vec<Subscription>, SubscriptionError> {
        let (status, body) = self.send("list", self.http.get(self.url(""))).await?;
        if status != 200 {
            return Err(self.failed("list", status, &body, None));
        }
        Self::parse("list", &body)
    }

    /// The subscriptions that point at `callback_url`.
    pub async fn list_for(
        &self,
        callback_url: &str,
    ) -> Result<Vec<Subscription>, SubscriptionError> {
        let mut subs = self.list().await?;
        subs.retain(|s| s.callback_url == callback_url);
        Ok(subs)
    }

    /// Creates a subscription; `Ok(None)` when Oura answers 409 (it exists).
    pub async fn create(
        &self,
        callback_url: &str,
        verification_token: &Secret,
        event_type: Operation,
        data_type: &str,
    ) -> Result<Option<Subscription>, SubscriptionError> {
        let action = format!("create {data_type}/{event_type}");
        let body = json!({
            "callback_url": callback_url,
            "verification_token": verification_token.expose(),
            "event_type": event_type.as_str(),
            "data_type": data_type,
        });
        let (status, resp) = self
            .send(&action, self.http.post(self.url("")).json(&body))
            .await?;
        match status {
            200 | 201 => Self::parse(&action, &resp).map(Some),
            409 => Ok(None),
            _ => Err(self.failed(&action, status, &resp, Some(verification_token))),
        }
    }

    /// Extends a subscription's expiration.
    pub async fn renew(&self, id: &str) -> Result<Subscription, SubscriptionError> {
        let action = format!("renew {id}");
        let (status, body) = self
            .send(&action, self.http.put(self.url(&format!("/renew/{id}"))))
            .await?;
        if status != 200 {
            return Err(self.failed(&action, status, &body, None));
        }
        Self::parse(&action, &body)
    }

    pub async fn delete(&self, id: &str) -> Result<(), SubscriptionError> {
        let action = format!("delete {id}");
        let (status, body) = self
            .send(&action, self.http.delete(self.url(&format!("/{id}"))))
            .await?;
        if !(200..300).contains(&status) {
            return Err(self.failed(&action, status, &body, None));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_mask_the_secrets_an_answer_echoes() {
        let mut c = Config::for_base_url("http://127.0.0.1:1", "t", "db".into());
        c.oauth.client_id = Some("app".into());
        c.oauth.client_secret = Some(Secret::new("client-s3cret"));
        let api = WebhookApi::new(&c).unwrap();
        let body =
            br#"{"detail":[{"input":{"verification_token":"vt-s3cret","x":"client-s3cret"}}]}"#;
        let e = api
            .failed("create", 422, body, Some(&Secret::new("vt-s3cret")))
            .to_string();
        assert!(e.contains("422") && e.contains("***"), "{e}");
        assert!(!e.contains("s3cret"), "{e}");
        assert!(!format!("{api:?}").contains("s3cret"));
    }

    #[test]
    fn operations_parse_their_own_spelling_only() {
        for op in Operation::ALL {
            assert_eq!(Operation::parse(op.as_str()), Some(op));
        }
        assert_eq!(Operation::parse("Create"), None);
        assert_eq!(Operation::parse("upsert"), None);
    }
}
