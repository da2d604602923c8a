//! Applies queued webhook events: fetch the announced document through the
//! engine's client (the shared rate limiter paces a burst) and upsert it, or
//! remove it on `delete`. Every event is recorded in `webhook_event`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use jiff::Timestamp;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::receiver::WebhookStats;
use super::route::{Accounts, Route};
use crate::api::Operation;
use crate::registry::DataType;
use crate::store::{AccountId, WEBHOOK_PENDING, WebhookEventRecord};
use crate::sync::{Clock, SyncEngine};

/// The longest rate-limit wait one event's fetch accepts: a full window of
/// Oura's limit. A longer one (a server asking for hours) fails the event
/// at once, recorded, and the next scheduled poll fetches the document,
/// instead of holding every later event behind it.
const FETCH_MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(300);

/// How long accepted events stay in `webhook_event`.
const KEEP_EVENTS: jiff::SignedDuration = jiff::SignedDuration::from_hours(7 * 24);

/// What applying one event came to; stored as `webhook_event.outcome`
/// (its [`Display`](std::fmt::Display) text, which dashboards read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The fetched document was written (`stored`).
    Stored,
    /// The fetched document could not be keyed or stored (`quarantined`).
    Quarantined,
    /// The announced document is gone at Oura (`not_found`).
    NotFound,
    /// A delete removed the stored document (`deleted`).
    Deleted,
    /// A delete of a document that was not stored (`deleted (was not stored)`).
    DeletedNotStored,
    /// Acknowledged but not applied (shutdown): applied at the next start
    /// ([`WEBHOOK_PENDING`]).
    Pending,
    /// The fetch or the write failed (`failed: <reason>`).
    Failed(String),
    /// The event's `object_id` cannot name a document, so nothing was
    /// fetched or removed (`rejected: <reason>`).
    Rejected(&'static str),
    /// No account is the event's Oura user: none has its `user_id`, and no
    /// account's credentials read the document (`ignored: no account ...`).
    NoAccount(String),
}

impl Outcome {
    pub fn is_failure(&self) -> bool {
        matches!(self, Outcome::Failed(_))
    }

    /// The outcome without its reason, as a metric label.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Stored => "stored",
            Outcome::Quarantined => "quarantined",
            Outcome::NotFound => "not_found",
            Outcome::Deleted => "deleted",
            Outcome::DeletedNotStored => "deleted_not_stored",
            Outcome::Pending => "pending",
            Outcome::Failed(_) => "failed",
            Outcome::Rejected(_) => "rejected",
            Outcome::NoAccount(_) => "no_account",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Stored => f.write_str("stored"),
            Outcome::Quarantined => f.write_str("quarantined"),
            Outcome::NotFound => f.write_str("not_found"),
            Outcome::Deleted => f.write_str("deleted"),
            Outcome::DeletedNotStored => f.write_str("deleted (was not stored)"),
            Outcome::Pending => f.write_str(WEBHOOK_PENDING),
            Outcome::Failed(reason) => write!(f, "failed: {reason}"),
            Outcome::Rejected(reason) => write!(f, "rejected: {reason}"),
            Outcome::NoAccount(user) => {
                write!(f, "ignored: no account is Oura user {user}")
            }
        }
    }
}

/// One accepted event.
#[derive(Debug, Clone)]
pub struct Job {
    pub op: Operation,
    pub dt: &'static DataType,
    pub object_id: String,
    pub event_time: Option<String>,
    /// Upper-case hex, the replay key kept across restarts.
    pub signature: String,
    pub received_at: Timestamp,
    /// The Oura user the event is about, as Oura sent it.
    pub user_id: Option<String>,
    /// The account a pending event was routed to before a restart.
    pub account: Option<AccountId>,
}

/// Drains one queue until it closes or `cancel` fires. Events still queued
/// at shutdown were already acknowledged to Oura, which will not send them
/// again: they are saved as [`WEBHOOK_PENDING`] and applied at the next
/// start (see [`pending_jobs`]).
pub async fn run(
    accounts: Arc<Accounts>,
    mut rx: mpsc::Receiver<Job>,
    stats: Arc<WebhookStats>,
    clock: Clock,
    cancel: CancellationToken,
) {
    loop {
        let job = tokio::select! {
            // Shutdown first: queued events are saved below, not started.
            biased;
            _ = cancel.cancelled() => break,
            job = rx.recv() => match job {
                Some(j) => j,
                None => break,
            },
        };
        let (outcome, account) = route_and_apply(&accounts, &job, &clock).await;
        crate::metrics::live().webhook_event(outcome.label());
        if outcome.is_failure() {
            stats.failed.fetch_add(1, Ordering::Relaxed);
        }
        let record = record_of(&job, &outcome, account);
        let keep_since = clock() - KEEP_EVENTS;
        let recorded = accounts
            .first()
            .store()
            .record_webhook_event(record, keep_since)
            .await;
        if let Err(e) = recorded {
            tracing::warn!(error = %e, "cannot record webhook event");
        }
        stats.processed.fetch_add(1, Ordering::SeqCst);
    }
    rx.close();
    let mut records = Vec::new();
    while let Ok(job) = rx.try_recv() {
        records.push(record_of(&job, &Outcome::Pending, job.account));
    }
    let keep_since = clock() - KEEP_EVENTS;
    let queued = records.len();
    let failed = accounts
        .first()
        .store()
        .record_webhook_events(records, keep_since)
        .await;
    for e in &failed {
        tracing::warn!(error = %e, "cannot save a queued webhook event");
    }
    let saved = queued - failed.len();
    if saved > 0 {
        tracing::info!(
            saved,
            "webhook events queued at shutdown were saved; they are applied at the next start"
        );
    }
}

/// The store's row of `job`: the operation, the outcome as text and the
/// account it was applied to.
fn record_of(job: &Job, outcome: &Outcome, account: Option<AccountId>) -> WebhookEventRecord {
    WebhookEventRecord {
        signature: job.signature.clone(),
        received_at: job.received_at,
        event_type: job.op.as_str().to_owned(),
        data_type: job.dt.webhook.unwrap_or(job.dt.name).to_owned(),
        object_id: job.object_id.clone(),
        event_time: job.event_time.clone(),
        outcome: outcome.to_string(),
        account,
    }
}

/// Jobs saved at the last shutdown, oldest first, for the types in `types`.
pub fn pending_jobs(
    events: Vec<WebhookEventRecord>,
    types: &std::collections::HashSet<&'static str>,
) -> Vec<Job> {
    events
        .into_iter()
        .filter_map(|ev| {
            let dt = super::webhook_type(&ev.data_type).filter(|d| types.contains(d.name))?;
            Some(Job {
                op: Operation::parse(&ev.event_type)?,
                dt,
                object_id: ev.object_id,
                event_time: ev.event_time,
                signature: ev.signature,
                received_at: ev.received_at,
                user_id: None,
                account: ev.account,
            })
        })
        .collect()
}

/// Longest `object_id` accepted; Oura's ids are UUIDs (36 characters).
pub const MAX_OBJECT_ID: usize = 256;

/// Why `id` cannot name one document, if it cannot. It becomes a path
/// segment of the fetch: `..` or `.` would be dropped by URL parsing (a
/// request for the whole collection), `/ ? # %` would change the path or
/// its meaning, and whitespace or control characters are no id of Oura's.
pub fn object_id_problem(id: &str) -> Option<&'static str> {
    if id.is_empty() {
        return Some("empty object_id");
    }
    if id == "." || id == ".." {
        return Some("object_id is a relative path segment (`.` or `..`)");
    }
    if id.len() > MAX_OBJECT_ID {
        return Some("object_id longer than 256 bytes");
    }
    let odd = |c: char| matches!(c, '/' | '?' | '#' | '%' | '\\') || c.is_whitespace();
    if id.chars().any(odd) || crate::api::text::one_line(id) != id {
        return Some(
            "object_id contains / ? # % \\, whitespace or a control character, which no document id has",
        );
    }
    None
}

/// Routes `job` to its account (see [`super::route`]) and applies it
/// there; returns the outcome and the account it was applied to.
async fn route_and_apply(
    accounts: &Accounts,
    job: &Job,
    clock: &Clock,
) -> (Outcome, Option<AccountId>) {
    let provable = job.op != Operation::Delete;
    let route = accounts
        .route(job.user_id.as_deref(), job.account, provable)
        .await;
    let candidates = match route {
        Route::Account(i) => {
            let engine = accounts.engine(i);
            return (
                apply_surviving(engine, job, clock).await,
                Some(engine.store().account()),
            );
        }
        Route::Unknown => return (no_account(job), None),
        Route::Probe(candidates) => candidates,
    };
    if let Some(why) = object_id_problem(&job.object_id) {
        return (Outcome::Rejected(why), None);
    }
    for i in candidates {
        let engine = accounts.engine(i);
        match apply_surviving(engine, job, clock).await {
            // Not this account's document (or gone): ask the next.
            Outcome::NotFound => continue,
            stored @ (Outcome::Stored | Outcome::Quarantined) => {
                if let Some(user) = &job.user_id {
                    tracing::info!(
                        account = engine.account_name(),
                        user_id = %crate::api::text::one_line_cut(user, 80),
                        "webhook user is this account (its credentials read the announced document)"
                    );
                    accounts.learn(user, i);
                }
                return (stored, Some(engine.store().account()));
            }
            // Unproven: a failure, or shutdown; polling (or the next
            // start) settles it.
            other => return (other, None),
        }
    }
    (no_account(job), None)
}

/// The outcome of an event no account may apply.
fn no_account(job: &Job) -> Outcome {
    let user = job
        .user_id
        .as_deref()
        .map_or("(none given)".to_owned(), |u| {
            crate::api::text::one_line_cut(u, 80)
        });
    tracing::warn!(
        data_type = job.dt.name,
        user_id = %user,
        "webhook event for an Oura user no account is; ignored"
    );
    Outcome::NoAccount(user)
}

/// [`apply`], with a panic (a bug, never expected) turned into a failed
/// outcome: the event is still recorded and the worker goes on with the
/// next one, instead of its task dying with events acknowledged to Oura
/// and never applied.
async fn apply_surviving(engine: &SyncEngine, job: &Job, clock: &Clock) -> Outcome {
    surviving(job.dt.name, apply(engine, job, clock)).await
}

/// The outcome of `work`, or [`Outcome::Failed`] naming its panic.
async fn surviving(data_type: &str, work: impl std::future::Future<Output = Outcome>) -> Outcome {
    use futures::FutureExt;
    match std::panic::AssertUnwindSafe(work).catch_unwind().await {
        Ok(outcome) => outcome,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(data_type, panic = %what, "applying a webhook event panicked; recorded as failed, polling will catch up");
            Outcome::Failed(format!("internal error: {what}"))
        }
    }
}

/// Applies one event; returns the outcome recorded for `status`.
async fn apply(engine: &SyncEngine, job: &Job, clock: &Clock) -> Outcome {
    let dt = job.dt;
    let id = job.object_id.as_str();
    if let Some(why) = object_id_problem(id) {
        tracing::warn!(
            data_type = dt.name,
            object_id = %crate::api::text::one_line_cut(id, 80),
            reason = why,
            "webhook event rejected: nothing fetched or removed"
        );
        return Outcome::Rejected(why);
    }
    // A run of this type in progress could sweep out (or overwrite) what
    // this writes: wait for it, and keep the next one out until done.
    let _writes = engine.lock_writes(dt).await;
    match job.op {
        Operation::Delete => {
            let owned = id.to_owned();
            match engine.store().delete_document(dt, owned).await {
                Ok(true) => {
                    tracing::debug!(data_type = dt.name, id, "webhook delete applied");
                    Outcome::Deleted
                }
                Ok(false) => Outcome::DeletedNotStored,
                Err(e) => {
                    tracing::warn!(data_type = dt.name, id, error = %e, "webhook delete failed");
                    Outcome::Failed(e.to_string())
                }
            }
        }
        Operation::Create | Operation::Update => match engine
            .client()
            .fetch_document_within(dt, id, FETCH_MAX_WAIT)
            .await
        {
            Ok((None, _)) => {
                // Usually deleted again before we got to it; its delete
                // event or the next poll settles it.
                tracing::info!(
                    data_type = dt.name,
                    id,
                    "document announced by a webhook is gone (404); ignored"
                );
                Outcome::NotFound
            }
            Ok((Some(doc), requests)) => {
                let at = clock();
                // One that cannot be decoded is quarantined.
                let stored = engine.store().store_document(dt, doc, requests, at).await;
                match stored {
                    Ok(c) if c.quarantined > 0 => {
                        tracing::warn!(data_type = dt.name, id, "webhook document quarantined");
                        Outcome::Quarantined
                    }
                    Ok(_) => {
                        tracing::debug!(data_type = dt.name, id, "webhook document stored");
                        Outcome::Stored
                    }
                    Err(e) => {
                        tracing::warn!(data_type = dt.name, id, error = %e, "webhook document not stored");
                        Outcome::Failed(e.to_string())
                    }
                }
            }
            // Shutdown cut the fetch short: keep the event for the next start.
            Err(crate::api::ApiError::Cancelled) => Outcome::Pending,
            Err(crate::api::ApiError::RateLimitWait {
                by, until, wait, ..
            }) => {
                tracing::warn!(
                    data_type = dt.name,
                    id,
                    "webhook fetch not sent: {by} holds requests until {until} ({wait}), longer than a webhook event waits; polling will catch up"
                );
                Outcome::Failed(
                    crate::error_kind::ErrorKind::RateLimited
                        .as_str()
                        .to_owned(),
                )
            }
            Err(e) => {
                tracing::warn!(data_type = dt.name, id, error = %e, "webhook fetch failed; polling will catch up");
                Outcome::Failed(e.kind().as_str().to_owned())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_applying_an_event_is_a_failed_outcome_not_a_dead_worker() {
        let failed = surviving("daily_sleep", async {
            let d: std::time::Duration = std::hint::black_box(std::time::Duration::MAX);
            let _ = tokio::time::Instant::now() + d;
            Outcome::Stored
        })
        .await;
        assert_eq!(
            failed,
            Outcome::Failed("internal error: overflow when adding duration to instant".into())
        );
        assert_eq!(
            surviving("daily_sleep", async { Outcome::Stored }).await,
            Outcome::Stored
        );
    }
}
