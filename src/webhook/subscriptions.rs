//! Oura's webhook subscription API (`/v2/webhook/subscription`, client id
//! and secret headers) and the reconciliation that keeps ours in place.
//!
//! These calls authenticate as the application, not the user, so they do
//! not count against the user's request quota and skip the limiter.

use std::time::Duration;

use jiff::Timestamp;
use serde::Deserialize;
use serde_json::json;

use super::{EVENT_TYPES, WebhookError};
use crate::config::{Config, Secret};
use crate::registry::DataType;
use crate::store::{Store, StoredSubscription};

/// One subscription as Oura reports it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct Subscription {
    pub id: String,
    pub callback_url: String,
    pub event_type: String,
    pub data_type: String,
    pub expiration_time: Timestamp,
}

/// A (data type, event type) pair ouradb wants a subscription for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    /// Webhook `data_type`, e.g. `vo2_max`.
    pub data_type: &'static str,
    pub event_type: &'static str,
}

/// Every webhook type among `types` × create/update/delete.
pub fn wanted(types: &[&'static DataType]) -> Vec<Wanted> {
    types
        .iter()
        .filter_map(|d| d.webhook)
        .flat_map(|data_type| {
            EVENT_TYPES.iter().map(move |event_type| Wanted {
                data_type,
                event_type,
            })
        })
        .collect()
}

pub struct WebhookApi {
    http: reqwest::Client,
    base: url::Url,
    client_id: String,
    client_secret: Secret,
}

impl std::fmt::Debug for WebhookApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookApi")
            .field("base", &self.base.as_str())
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl WebhookApi {
    /// Uses `api.base_url` and the OAuth application's id and secret.
    pub fn new(config: &Config) -> Result<WebhookApi, WebhookError> {
        let client_id = config
            .oauth
            .client_id
            .clone()
            .ok_or_else(|| WebhookError::Config("auth.client_id".into()))?;
        let client_secret = config
            .oauth
            .client_secret
            .clone()
            .ok_or_else(|| WebhookError::Config("auth.client_secret".into()))?;
        // Subscribing makes Oura call the receiver back before answering.
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout.max(Duration::from_secs(30)))
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("ouradb/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| WebhookError::Network {
                action: "setup".into(),
                cause: e.to_string(),
            })?;
        Ok(WebhookApi {
            http,
            base: config.base_url.clone(),
            client_id,
            client_secret,
        })
    }

    fn url(&self, rest: &str) -> url::Url {
        let mut u = self.base.clone();
        let base_path = u.path().trim_end_matches('/').to_owned();
        u.set_path(&format!("{base_path}/v2/webhook/subscription{rest}"));
        u
    }

    async fn send(
        &self,
        action: &str,
        req: reqwest::RequestBuilder,
    ) -> Result<(u16, bytes::Bytes), WebhookError> {
        let resp = req
            .header("x-client-id", &self.client_id)
            .header("x-client-secret", self.client_secret.expose())
            .send()
            .await
            .map_err(|e| WebhookError::Network {
                action: action.to_owned(),
                cause: e.without_url().to_string(),
            })?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(|e| WebhookError::Network {
            action: action.to_owned(),
            cause: e.without_url().to_string(),
        })?;
        Ok((status, body))
    }

    /// An error from an answer; validation errors echo the request, so
    /// the secrets it carried are masked.
    fn failed(
        &self,
        action: &str,
        status: u16,
        body: &[u8],
        token: Option<&Secret>,
    ) -> WebhookError {
        let text = String::from_utf8_lossy(body);
        let mut detail = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.get("detail").map(|d| d.to_string()))
            .unwrap_or_else(|| text.chars().take(200).collect());
        for secret in std::iter::once(&self.client_secret).chain(token) {
            if !secret.expose().is_empty() {
                detail = detail.replace(secret.expose(), "***");
            }
        }
        WebhookError::Http {
            action: action.to_owned(),
            status,
            detail,
        }
    }

    fn parse<T: serde::de::DeserializeOwned>(action: &str, body: &[u8]) -> Result<T, WebhookError> {
        serde_json::from_slice(body).map_err(|e| WebhookError::Http {
            action: action.to_owned(),
            status: 200,
            detail: format!("unreadable answer: {e}"),
        })
    }

    /// Every subscription of the application.
    pub async fn list(&self) -> Result<Vec<Subscription>, WebhookError> {
        let (status, body) = self.send("list", self.http.get(self.url(""))).await?;
        if status != 200 {
            return Err(self.failed("list", status, &body, None));
        }
        Self::parse("list", &body)
    }

    /// Creates a subscription; `Ok(None)` when Oura answers 409 (it exists).
    pub async fn create(
        &self,
        callback_url: &str,
        verification_token: &Secret,
        event_type: &str,
        data_type: &str,
    ) -> Result<Option<Subscription>, WebhookError> {
        let action = format!("create {data_type}/{event_type}");
        let body = json!({
            "callback_url": callback_url,
            "verification_token": verification_token.expose(),
            "event_type": event_type,
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
    pub async fn renew(&self, id: &str) -> Result<Subscription, WebhookError> {
        let action = format!("renew {id}");
        let (status, body) = self
            .send(&action, self.http.put(self.url(&format!("/renew/{id}"))))
            .await?;
        if status != 200 {
            return Err(self.failed(&action, status, &body, None));
        }
        Self::parse(&action, &body)
    }

    pub async fn delete(&self, id: &str) -> Result<(), WebhookError> {
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

/// What a reconciliation did.
#[derive(Debug, Default)]
pub struct Reconciled {
    pub created: usize,
    /// 409 on create: Oura already had it.
    pub already: usize,
    pub renewed: usize,
    pub unchanged: usize,
    /// One message per wanted subscription that is not in place.
    pub failed: Vec<String>,
    /// Our subscriptions (those for `callback_url`) after the changes.
    pub subscriptions: Vec<Subscription>,
}

fn matches(s: &Subscription, callback_url: &str, w: &Wanted) -> bool {
    s.callback_url == callback_url
        && s.data_type.eq_ignore_ascii_case(w.data_type)
        && s.event_type.eq_ignore_ascii_case(w.event_type)
}

/// Makes every `wanted` subscription for `callback_url` exist with more than
/// `renew_before` left: creates missing ones (a 409 counts as existing),
/// renews those expiring sooner (re-creating one that renewal says is gone).
pub async fn reconcile(
    api: &WebhookApi,
    callback_url: &str,
    verification_token: &Secret,
    wanted: &[Wanted],
    now: Timestamp,
    renew_before: Duration,
) -> Result<Reconciled, WebhookError> {
    let existing = api.list().await?;
    let mut r = Reconciled::default();
    let renew_before = jiff::SignedDuration::try_from(renew_before).unwrap_or_default();
    for w in wanted {
        let found = existing.iter().find(|s| matches(s, callback_url, w));
        let create = match found {
            None => true,
            Some(s) if s.expiration_time.duration_since(now) < renew_before => {
                match api.renew(&s.id).await {
                    Ok(_) => {
                        r.renewed += 1;
                        false
                    }
                    Err(WebhookError::Http {
                        status: 403 | 404, ..
                    }) => true,
                    Err(e) => {
                        r.failed.push(e.to_string());
                        false
                    }
                }
            }
            Some(_) => {
                r.unchanged += 1;
                false
            }
        };
        if create {
            match api
                .create(callback_url, verification_token, w.event_type, w.data_type)
                .await
            {
                Ok(Some(_)) => r.created += 1,
                Ok(None) => r.already += 1,
                Err(e) => r.failed.push(e.to_string()),
            }
        }
    }
    r.subscriptions = api
        .list()
        .await?
        .into_iter()
        .filter(|s| s.callback_url == callback_url)
        .collect();
    Ok(r)
}

/// Records `subs` (ours, for `callback_url`) for `ouradb status`.
pub fn save_subscriptions(
    store: &mut Store,
    callback_url: &str,
    subs: &[Subscription],
    now: Timestamp,
) -> Result<(), WebhookError> {
    let rows: Vec<StoredSubscription> = subs
        .iter()
        .map(|s| StoredSubscription {
            id: s.id.clone(),
            callback_url: s.callback_url.clone(),
            event_type: s.event_type.clone(),
            data_type: s.data_type.clone(),
            expiration_time: s.expiration_time,
            checked_at: now,
        })
        .collect();
    store.replace_webhook_subscriptions(callback_url, &rows)?;
    Ok(())
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
    fn wanted_covers_every_event_of_types_with_webhooks() {
        let types: Vec<&'static DataType> = crate::registry::DATA_TYPES.iter().collect();
        let w = wanted(&types);
        let with = types.iter().filter(|d| d.webhook.is_some()).count();
        assert_eq!(w.len(), with * 3);
        assert!(w.iter().any(|x| x.data_type == "vo2_max"));
        assert!(!w.iter().any(|x| x.data_type == "heartrate"));
    }
}
