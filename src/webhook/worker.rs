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
use crate::store::{CursorAdvance, PageCommit, WEBHOOK_PENDING, WebhookEventRecord};
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
    pub fn parse(s: &str) -> Option<Op> {
        match s {
            "create" => Some(Op::Create),
            "update" => Some(Op::Update),
            "delete" => Some(Op::Delete),
            _ => None,
        }
    }

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
/// at shutdown were already acknowledged to Oura, which will not send them
/// again: they are saved as [`WEBHOOK_PENDING`] and applied at the next
/// start (see [`pending_jobs`]).
pub async fn run(
    engine: Arc<SyncEngine>,
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
        let outcome = apply(&engine, &job, &clock).await;
        if outcome.starts_with("failed") {
            stats.failed.fetch_add(1, Ordering::Relaxed);
        }
        let record = record_of(&job, outcome);
        let keep_since = clock() - KEEP_EVENTS;
        let recorded = engine
            .store()
            .run(move |s| s.record_webhook_event(&record, keep_since))
            .await;
        if let Err(e) = recorded {
            tracing::warn!(error = %e, "cannot record webhook event");
        }
        stats.processed.fetch_add(1, Ordering::SeqCst);
    }
    rx.close();
    let mut records = Vec::new();
    while let Ok(job) = rx.try_recv() {
        records.push(record_of(&job, WEBHOOK_PENDING.to_owned()));
    }
    let keep_since = clock() - KEEP_EVENTS;
    let saved = engine
        .store()
        .run(move |store| {
            let mut saved = 0usize;
            for record in &records {
                match store.record_webhook_event(record, keep_since) {
                    Ok(()) => saved += 1,
                    Err(e) => tracing::warn!(error = %e, "cannot save a queued webhook event"),
                }
            }
            saved
        })
        .await;
    if saved > 0 {
        tracing::info!(
            saved,
            "webhook events queued at shutdown were saved; they are applied at the next start"
        );
    }
}

fn record_of(job: &Job, outcome: String) -> WebhookEventRecord {
    WebhookEventRecord {
        signature: job.signature.clone(),
        received_at: job.received_at,
        event_type: job.op.as_str().to_owned(),
        data_type: job.dt.webhook.unwrap_or(job.dt.name).to_owned(),
        object_id: job.object_id.clone(),
        event_time: job.event_time.clone(),
        outcome,
    }
}

/// Jobs saved at the last shutdown, oldest first, for the types in `types`.
pub fn pending_jobs(
    store: &crate::store::Store,
    types: &std::collections::HashSet<&'static str>,
) -> Result<Vec<Job>, crate::store::StoreError> {
    Ok(store
        .pending_webhook_events()?
        .into_iter()
        .filter_map(|ev| {
            let dt = super::webhook_type(&ev.data_type).filter(|d| types.contains(d.name))?;
            Some(Job {
                op: Op::parse(&ev.event_type)?,
                dt,
                object_id: ev.object_id,
                event_time: ev.event_time,
                signature: ev.signature,
                received_at: ev.received_at,
            })
        })
        .collect())
}

/// Applies one event; returns the outcome recorded for `status`.
async fn apply(engine: &SyncEngine, job: &Job, clock: &Clock) -> String {
    let dt = job.dt;
    let id = job.object_id.as_str();
    // A run of this type in progress could sweep out (or overwrite) what
    // this writes: wait for it, and keep the next one out until done.
    let _writes = engine.lock_writes(dt).await;
    match job.op {
        Op::Delete => {
            let owned = id.to_owned();
            match engine
                .store()
                .run(move |s| s.delete_document(dt, &owned))
                .await
            {
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
                let at = clock();
                let stored = engine
                    .store()
                    .run(move |s| {
                        let docs = [doc];
                        let page = PageCommit {
                            documents: &docs,
                            vanished: None,
                            cursor: CursorAdvance::default(),
                            requests,
                            at,
                        };
                        s.commit_page(dt, &page)
                    })
                    .await;
                match stored {
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
            // Shutdown cut the fetch short: keep the event for the next start.
            Err(crate::api::ApiError::Cancelled) => WEBHOOK_PENDING.to_owned(),
            Err(e) => {
                tracing::warn!(data_type = dt.name, id, error = %e, "webhook fetch failed; polling will catch up");
                format!("failed: {}", e.kind())
            }
        },
    }
}
