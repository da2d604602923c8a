//! Applies queued webhook events: fetch the announced document through the
//! engine's client (the shared rate limiter paces a burst) and upsert it, or
//! remove it on `delete`. Every event is recorded in `webhook_event`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use jiff::Timestamp;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::receiver::WebhookStats;
use crate::registry::DataType;
use crate::store::{CursorAdvance, PageCommit, WebhookEventRecord};
use crate::sync::{Clock, SyncEngine};

/// How long accepted events stay in `webhook_event`.
const KEEP_EVENTS: jiff::SignedDuration = jiff::SignedDuration::from_hours(7 * 24);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Create,
    Update,
    Delete,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Update => "update",
            Op::Delete => "delete",
        }
    }
}

/// One accepted event.
#[derive(Debug, Clone)]
pub struct Job {
    pub op: Op,
    pub dt: &'static DataType,
    pub object_id: String,
    pub event_time: Option<String>,
    /// Upper-case hex, the replay key kept across restarts.
    pub signature: String,
    pub received_at: Timestamp,
}

/// Drains one queue until it closes or `cancel` fires. Events still queued
/// at shutdown are dropped: the next scheduled poll picks their data up.
pub async fn run(
    engine: Arc<SyncEngine>,
    mut rx: mpsc::Receiver<Job>,
    stats: Arc<WebhookStats>,
    clock: Clock,
    cancel: CancellationToken,
) {
    loop {
        let job = tokio::select! {
            _ = cancel.cancelled() => break,
            job = rx.recv() => match job {
                Some(j) => j,
                None => break,
            },
        };
        let outcome = apply(&engine, &job, &clock).await;
        if outcome.starts_with("failed") {
            stats.failed.fetch_add(1, Ordering::Relaxed);
        }
        let record = WebhookEventRecord {
            signature: job.signature.clone(),
            received_at: job.received_at,
            event_type: job.op.as_str().to_owned(),
            data_type: job.dt.webhook.unwrap_or(job.dt.name).to_owned(),
            object_id: job.object_id.clone(),
            event_time: job.event_time.clone(),
            outcome,
        };
        {
            let mut store = engine.store().lock().unwrap_or_else(|p| p.into_inner());
            if let Err(e) = store.record_webhook_event(&record, clock() - KEEP_EVENTS) {
                tracing::warn!(error = %e, "cannot record webhook event");
            }
        }
        stats.processed.fetch_add(1, Ordering::SeqCst);
    }
    let dropped = rx.len();
    if dropped > 0 {
        tracing::info!(
            dropped,
            "webhook events left unapplied at shutdown; scheduled polling will catch up"
        );
    }
}

/// Applies one event; returns the outcome recorded for `status`.
async fn apply(engine: &SyncEngine, job: &Job, clock: &Clock) -> String {
    let dt = job.dt;
    let id = job.object_id.as_str();
    match job.op {
        Op::Delete => {
            let mut store = engine.store().lock().unwrap_or_else(|p| p.into_inner());
            match store.delete_document(dt, id) {
                Ok(true) => {
                    tracing::debug!(data_type = dt.name, id, "webhook delete applied");
                    "deleted".to_owned()
                }
                Ok(false) => "deleted (was not stored)".to_owned(),
                Err(e) => {
                    tracing::warn!(data_type = dt.name, id, error = %e, "webhook delete failed");
                    format!("failed: {e}")
                }
            }
        }
        Op::Create | Op::Update => match engine.client().fetch_document(dt, id).await {
            Ok((None, _)) => {
                // Usually deleted again before we got to it; its delete
                // event or the next poll settles it.
                tracing::info!(
                    data_type = dt.name,
                    id,
                    "document announced by a webhook is gone (404); ignored"
                );
                "not_found".to_owned()
            }
            Ok((Some(doc), requests)) => {
                let docs = [doc];
                let page = PageCommit {
                    documents: &docs,
                    vanished: None,
                    cursor: CursorAdvance::default(),
                    requests,
                    at: clock(),
                };
                let mut store = engine.store().lock().unwrap_or_else(|p| p.into_inner());
                match store.commit_page(dt, &page) {
                    Ok(c) if c.quarantined > 0 => {
                        tracing::warn!(data_type = dt.name, id, "webhook document quarantined");
                        "quarantined".to_owned()
                    }
                    Ok(_) => {
                        tracing::debug!(data_type = dt.name, id, "webhook document stored");
                        "stored".to_owned()
                    }
                    Err(e) => {
                        tracing::warn!(data_type = dt.name, id, error = %e, "webhook document not stored");
                        format!("failed: {e}")
                    }
                }
            }
            Err(e) => {
                tracing::warn!(data_type = dt.name, id, error = %e, "webhook fetch failed; polling will catch up");
                format!("failed: {}", e.kind())
            }
        },
    }
}
