//! Near-real-time updates from Oura webhooks.
//!
//! - [`receiver`]: the HTTP endpoint Oura calls (verification GET, signed
//!   event POSTs). It only authenticates and queues; it never fetches inline.
//! - [`worker`]: drains the queue, fetching each announced document through
//!   the engine's client (so the one rate limiter covers it) and upserting it,
//!   or removing it on `delete`.
//! - [`subscriptions`]: the subscription API and the reconciliation the
//!   daemon runs at start and hourly (create missing, renew expiring).
//!
//! Webhooks are lossy (multi-day outages happen), so scheduled polling keeps
//! running unchanged; webhooks only make updates arrive sooner.

pub mod receiver;
pub mod subscriptions;
pub mod worker;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Config, Secret};
use crate::registry::{self, DataType};
use crate::store::{Store, StoreError};
use crate::sync::{self, SyncEngine};

pub use receiver::{ReceiverOptions, WebhookHandle, WebhookStats};
pub use subscriptions::{
    Reconciled, Subscription, Wanted, WebhookApi, reconcile, save_subscriptions, wanted,
};

/// Event types ouradb subscribes to for every data type.
pub const EVENT_TYPES: &[&str] = &["create", "update", "delete"];

/// Subscriptions are renewed once less than this remains.
pub const RENEW_BEFORE: Duration = Duration::from_secs(7 * 86_400);

/// How often the daemon checks its subscriptions.
pub const CHECK_EVERY: Duration = Duration::from_secs(3600);

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("webhook setting missing: {0}")]
    Config(String),
    #[error("cannot listen for webhooks on {addr}: {source}; change webhook.listen")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("webhook subscription API: HTTP {status} on {action}: {detail}")]
    Http {
        action: String,
        status: u16,
        detail: String,
    },
    #[error("webhook subscription API unreachable on {action}: {cause}")]
    Network { action: String, cause: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A webhook `data_type` or registry name (`vo2_max`, `daily_sleep`) to the
/// registry entry, when that type has webhooks.
pub fn webhook_type(name: &str) -> Option<&'static DataType> {
    registry::find_by_webhook(name)
        .or_else(|| registry::find(name))
        .filter(|d| d.webhook.is_some())
}

/// Starts the receiver, its workers and the subscription upkeep inside the
/// daemon: all stop with `cancel` and are tracked by `tracker`.
pub async fn start_in_daemon(
    engine: Arc<SyncEngine>,
    cancel: CancellationToken,
    tracker: &TaskTracker,
) -> Result<WebhookHandle, WebhookError> {
    let config = engine.config().clone();
    let opts = ReceiverOptions::from_config(&config, sync::system_clock())?;
    let api = WebhookApi::new(&config)?;
    let callback = config
        .webhook
        .callback_url
        .clone()
        .ok_or_else(|| WebhookError::Config("webhook.callback_url".into()))?;
    let token = config
        .webhook
        .verification_token
        .clone()
        .ok_or_else(|| WebhookError::Config("webhook.verification_token".into()))?;
    let handle = receiver::start(engine.clone(), opts, cancel.clone(), tracker).await?;
    // After the receiver: creating a subscription makes Oura call it.
    tracker.spawn(upkeep(engine, api, callback.to_string(), token, cancel));
    Ok(handle)
}

/// Reconciles subscriptions at start and every [`CHECK_EVERY`].
async fn upkeep(
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
                let (cb, subs) = (callback.clone(), r.subscriptions.clone());
                let saved = engine
                    .store()
                    .run(move |s| save_subscriptions(s, &cb, &subs, now))
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

/// The webhook part of `ouradb status`: `None` when webhooks are off and
/// nothing was ever recorded.
pub fn status_section(
    config: &Config,
    store: &Store,
    now: Timestamp,
) -> Result<Option<String>, StoreError> {
    let day_ago = now - jiff::SignedDuration::from_hours(24);
    let health = store.webhook_health(day_ago)?;
    if !config.webhook.enabled && health.last_event.is_none() && health.subscriptions.is_empty() {
        return Ok(None);
    }
    let mut out = String::new();
    let state = if config.webhook.enabled {
        format!("enabled, listening on {}", config.webhook.listen)
    } else {
        "disabled".to_owned()
    };
    out.push_str(&format!("webhooks: {state}\n"));
    if let Some(url) = &config.webhook.callback_url {
        out.push_str(&format!("callback: {url}\n"));
    }
    match &health.last_event {
        None => out.push_str("last event: never\n"),
        Some(ev) => out.push_str(&format!(
            "last event: {} ({} {} {}: {}); {} in the last 24 h\n",
            ev.received_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
            ev.event_type,
            ev.data_type,
            ev.object_id,
            ev.outcome,
            health.recent_events
        )),
    }
    if health.subscriptions.is_empty() {
        out.push_str("subscriptions: none recorded (run `ouradb webhook list`)\n");
        return Ok(Some(out));
    }
    let mut t = comfy_table::Table::new();
    t.set_header(["data type", "event", "expires", "state", "checked"]);
    for s in &health.subscriptions {
        let left = s.expiration_time.duration_since(now);
        let state = if left.is_negative() {
            "expired"
        } else if left.as_secs() < RENEW_BEFORE.as_secs() as i64 {
            "renewal due"
        } else {
            "ok"
        };
        t.add_row([
            s.data_type.clone(),
            s.event_type.clone(),
            s.expiration_time.strftime("%Y-%m-%d %H:%M UTC").to_string(),
            state.to_owned(),
            s.checked_at.strftime("%Y-%m-%d %H:%M UTC").to_string(),
        ]);
    }
    out.push_str(&format!("{t}\n"));
    Ok(Some(out))
}
