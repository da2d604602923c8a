//! Near-real-time updates from Oura webhooks.
//!
//! - [`receiver`]: the HTTP endpoint Oura calls (verification GET, signed
//!   event POSTs). It only authenticates and queues; it never fetches inline.
//! - [`worker`]: drains the queue, fetching each announced document through
//!   the engine's client (so the one rate limiter covers it) and upserting it,
//!   or removing it on `delete`.
//! - [`upkeep`]: the reconciliation the daemon runs at start and hourly
//!   (create missing, renew expiring), through the subscription API in
//!   [`crate::api::subscriptions`].
//!
//! Webhooks are lossy (multi-day outages happen), so scheduled polling keeps
//! running unchanged; webhooks only make updates arrive sooner.

pub mod receiver;
pub mod route;
pub mod upkeep;
pub mod worker;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::api::subscriptions::{AppCredentials, SubscriptionError, WebhookApi};
use crate::registry::{self, DataType};
use crate::store::StoreError;
use crate::sync::{self, SyncEngine};

pub use receiver::{ReceiverOptions, WebhookHandle, WebhookStats};
pub use upkeep::{Reconciled, Wanted, reconcile, save_subscriptions, wanted};
pub use worker::Outcome;

/// Subscriptions are renewed once less than this remains.
pub const RENEW_BEFORE: Duration = Duration::from_secs(7 * 86_400);

/// How often the daemon checks its subscriptions.
pub const CHECK_EVERY: Duration = Duration::from_secs(3600);

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("webhooks are not enabled; set webhook.enabled = true")]
    Disabled,
    #[error("cannot listen for webhooks on {addr}: {source}; change webhook.listen")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Api(#[from] SubscriptionError),
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

/// Where a recorded subscription stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renewal {
    /// More than [`RENEW_BEFORE`] left.
    Current,
    /// The upkeep renews it at its next check.
    Due,
    Expired,
}

impl Renewal {
    pub fn of(expiration_time: Timestamp, now: Timestamp) -> Renewal {
        let left = expiration_time.duration_since(now);
        if left.is_negative() {
            Renewal::Expired
        } else if left.as_secs() < RENEW_BEFORE.as_secs() as i64 {
            Renewal::Due
        } else {
            Renewal::Current
        }
    }
}

/// Starts the receiver, its workers and the subscription upkeep inside the
/// daemon when webhooks are enabled (`None` when not): all stop with
/// `cancel` and are tracked by `tracker`. Subscriptions are the OAuth
/// application's, so one receiver serves every account of `engines`.
pub async fn start_in_daemon(
    engines: &[Arc<SyncEngine>],
    cancel: CancellationToken,
    tracker: &TaskTracker,
) -> Result<Option<WebhookHandle>, WebhookError> {
    let Some(engine) = engines.first().cloned() else {
        return Ok(None);
    };
    let config = engine.config().clone();
    let Some(settings) = config.webhook.enabled() else {
        return Ok(None);
    };
    let app = AppCredentials::from_config(&config)?;
    let opts = ReceiverOptions::new(settings, app.client_secret.clone(), sync::system_clock());
    let api = WebhookApi::with_credentials(&config, app)?;
    let accounts = route::Accounts::new(engines.to_vec());
    let handle = receiver::start(accounts, opts, cancel.clone(), tracker).await?;
    // After the receiver: creating a subscription makes Oura call it.
    tracker.spawn(upkeep::run(
        engine,
        api,
        settings.callback_url.to_string(),
        settings.verification_token.clone(),
        cancel,
    ));
    Ok(Some(handle))
}
