//! Keeping ouradb's subscriptions in place through the subscription API
//! ([`crate::api::subscriptions`]): create missing ones, renew those near
//! expiry, re-create those Oura deleted, and record them for `status`.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio_util::sync::CancellationToken;

use super::{CHECK_EVERY, RENEW_BEFORE};
use crate::api::{Operation, Subscription, SubscriptionError, WebhookApi};
use crate::config::Secret;
use crate::registry::DataType;
use crate::store::{Store, StoreError, StoredSubscription};
use crate::sync::SyncEngine;

/// A (data type, event type) pair ouradb wants a subscription for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    /// Webhook `data_type`, e.g. `vo2_max`.
    pub data_type: &'static str,
    pub event_type: Operation,
}

/// Every webhook type among `types` × create/update/delete.
pub fn wanted(types: &[&'static DataType]) -> Vec<Wanted> {
    types
        .iter()
        .filter_map(|d| d.webhook)
        .flat_map(|data_type| {
            Operation::ALL.into_iter().map(move |event_type| Wanted {
                data_type,
                event_type,
            })
        })
        .collect()
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
        && s.event_type.eq_ignore_ascii_case(w.event_type.as_str())
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
) -> Result<Reconciled, SubscriptionError> {
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
                    Err(SubscriptionError::Http {
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
    r.subscriptions = api.list_for(callback_url).await?;
    Ok(r)
}

/// Records `subs` (ours, for `callback_url`) for `ouradb status`.
pub fn save_subscriptions(
    store: &mut Store,
    callback_url: &str,
    subs: &[Subscription],
    now: Timestamp,
) -> Result<(), StoreError> {
    store.replace_webhook_subscriptions(callback_url, &subscription_rows(subs, now))
}

/// The rows recording `subs`, as checked at `now`.
fn subscription_rows(subs: &[Subscription], now: Timestamp) -> Vec<StoredSubscription> {
    subs.iter()
        .map(|s| StoredSubscription {
            id: s.id.clone(),
            callback_url: s.callback_url.clone(),
            event_type: s.event_type.clone(),
            data_type: s.data_type.clone(),
            expiration_time: s.expiration_time,
            checked_at: now,
        })
        .collect()
}

/// Reconciles subscriptions at start and every [`CHECK_EVERY`] until
/// `cancel`, recording them for `status`.
pub(super) async fn run(
    engine: Arc<SyncEngine>,
    api: WebhookApi,
    callback: String,
    token: Secret,
    cancel: CancellationToken,
) {
    let want = wanted(&engine.config().types);
    loop {
        let now = crate::clock::now();
        match reconcile(&api, &callback, &token, &want, now, RENEW_BEFORE).await {
            Ok(r) => {
                tracing::info!(
                    created = r.created,
                    renewed = r.renewed,
                    unchanged = r.unchanged,
                    failed = r.failed.len(),
                    "webhook subscriptions checked"
                );
                for f in &r.failed {
                    tracing::warn!(problem = %f, "webhook subscription not in place");
                }
                let rows = subscription_rows(&r.subscriptions, now);
                let saved = engine
                    .store()
                    .replace_webhook_subscriptions(callback.clone(), rows)
                    .await;
                if let Err(e) = saved {
                    tracing::warn!(error = %e, "cannot record webhook subscriptions");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot check webhook subscriptions"),
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(CHECK_EVERY) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
