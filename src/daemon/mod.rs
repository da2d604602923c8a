//! The long-running daemon: a catch-up run at start, then each data type's
//! job on its own cron, until SIGTERM/SIGINT.
//!
//! Shutdown follows mini-redis: one cancellation token is broadcast to every
//! job; a job stops at its next await point (no SQLite transaction is ever
//! open across one, so every committed page stays committed and nothing is
//! half-written), and the daemon waits at most [`SHUTDOWN_GRACE`].
//!
//! Beside the jobs runs the supervision loop (`health`): systemd's watchdog
//! pings, sent only while the loop and the store's thread make progress, and
//! the `STATUS=` line.

mod health;

mod idle;

mod metrics;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio_cron_scheduler::{Job, JobScheduler};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::sync::{self, NoObserver, RunOptions, SyncEngine};

pub use health::{Freshness, freshness, status_line};
pub use idle::limit_malloc_arenas;

/// systemd waits `TimeoutStopSec`; we promise to be gone well before.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(4);

/// What stops the daemon from starting or running; the cli prints it.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Setup(#[from] sync::SetupError),
    #[error(
        "the config lists {} accounts ({}), and the daemon syncs one account for now; run `ouradb sync` on a timer (e.g. a systemd timer every 15 minutes) instead, or keep one [[account]] for the daemon"
    , .0.len(), .0.join(", "))]
    SeveralAccounts(Vec<String>),
    #[error("scheduler: {0}; check the [schedule] cron expressions")]
    Scheduler(String),
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    #[error(transparent)]
    Webhook(#[from] crate::webhook::WebhookError),
    #[error("cannot serve metrics on {addr}: {source}; change metrics.listen")]
    MetricsBind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

pub async fn run(config: Arc<Config>) -> Result<ExitCode, DaemonError> {
    let cancel = CancellationToken::new();
    spawn_signal_listener(cancel.clone()).map_err(DaemonError::Signals)?;
    let [account] = config.accounts.as_slice() else {
        let names = config.accounts.iter().map(|a| a.name.clone()).collect();
        return Err(DaemonError::SeveralAccounts(names));
    };
    let store = crate::store::StoreHandle::new(
        crate::store::Store::open(&config.database).map_err(sync::SetupError::from)?,
    );
    let engine = sync::account_engine(
        &config,
        account,
        &store,
        cancel.clone(),
        sync::system_clock(),
    )
    .await?;
    drop(store);
    run_with(Arc::new(engine), cancel).await?;
    Ok(ExitCode::SUCCESS)
}

/// Runs the daemon on an existing engine until `cancel` fires.
pub async fn run_with(
    engine: Arc<SyncEngine>,
    cancel: CancellationToken,
) -> Result<(), DaemonError> {
    let tracker = TaskTracker::new();
    let types = engine.config().types.clone();
    let idle = Arc::new(idle::Idle::new(engine.clone()));

    crate::webhook::start_in_daemon(engine.clone(), cancel.clone(), &tracker).await?;
    if let Some(addr) = engine.config().metrics_listen {
        metrics::start(engine.clone(), addr, cancel.clone(), &tracker).await?;
    }

    // Catch up at start: whatever the schedule says, a daemon that was
    // down for a week should not wait an hour to fill the gap.
    {
        let engine = engine.clone();
        let types = types.clone();
        let idle = idle.clone();
        tracker.spawn(async move {
            let opts = RunOptions {
                since: None,
                backfill: true,
            };
            idle.around(engine.run(&types, opts, &NoObserver)).await;
        });
    }

    let mut sched = JobScheduler::new()
        .await
        .map_err(|e| DaemonError::Scheduler(e.to_string()))?;
    let mut job_ids = Vec::new();
    for dt in types {
        let expr = engine.config().schedules[dt.name].clone();
        let engine_j = engine.clone();
        let tracker_j = tracker.clone();
        let cancel_j = cancel.clone();
        let idle_j = idle.clone();
        let job = Job::new_async(expr.as_str(), move |uuid, mut lock| {
            let engine = engine_j.clone();
            let tracker = tracker_j.clone();
            let cancel = cancel_j.clone();
            let idle = idle_j.clone();
            Box::pin(async move {
                if cancel.is_cancelled() {
                    return;
                }
                // Tracked so shutdown waits for the job's current page.
                let job = tracker.spawn({
                    let engine = engine.clone();
                    async move {
                        let opts = RunOptions {
                            since: None,
                            backfill: true,
                        };
                        let run = engine.run_type(dt, opts, &NoObserver);
                        let report = idle.around(run).await;
                        if report.skipped_busy {
                            tracing::debug!(
                                data_type = dt.name,
                                "previous run still in progress; skipped"
                            );
                        }
                    }
                });
                let next = lock.next_tick_for_job(uuid).await.ok().flatten();
                record_next_run(&engine, dt, next.map(|t| t.timestamp())).await;
                let _ = job.await;
            })
        })
        .map_err(|e| DaemonError::Scheduler(format!("{}: {e}", dt.name)))?;
        let id = sched
            .add(job)
            .await
            .map_err(|e| DaemonError::Scheduler(e.to_string()))?;
        job_ids.push((dt, id));
    }
    sched
        .start()
        .await
        .map_err(|e| DaemonError::Scheduler(e.to_string()))?;
    let mut next_runs = Vec::with_capacity(job_ids.len());
    for (dt, id) in &job_ids {
        let next = sched.next_tick_for_job(*id).await.ok().flatten();
        next_runs.push((*dt, next.map(|t| t.timestamp())));
    }
    // Recorded in the background: a database locked by another process
    // must not hold up READY or the answer to SIGTERM.
    {
        let engine = engine.clone();
        tracker.spawn(async move {
            for (dt, next) in next_runs {
                record_next_run(&engine, dt, next).await;
            }
        });
    }

    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    tracker.spawn(health::supervise(
        engine.clone(),
        watch_rate_limit(&engine),
        cancel.clone(),
    ));
    tracing::info!(
        database = %engine.config().database.display(),
        types = job_ids.len(),
        "ouradb daemon running"
    );

    cancel.cancelled().await;
    tracing::info!("shutting down");
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    let _ = sched.shutdown().await;
    tracker.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            "jobs did not stop within {SHUTDOWN_GRACE:?}; exiting anyway (committed pages are safe)"
        );
    }
    Ok(())
}

/// Has the client tell [`health::Health`] of every rate-limit wait, for
/// the STATUS line; the daemon waits as long as Oura says.
fn watch_rate_limit(engine: &SyncEngine) -> Arc<health::Health> {
    let health = Arc::new(health::Health::default());
    let h = health.clone();
    engine.client().set_wait_policy(crate::api::WaitPolicy {
        max_wait: None,
        notify: Some(Arc::new(move |w: &crate::api::RateLimitWait| {
            tracing::info!(data_type = w.data_type, "{}", w.describe());
            h.note_rate_limit_wait(w.until);
        })),
    });
    health
}

async fn record_next_run(
    engine: &SyncEngine,
    dt: &'static crate::registry::DataType,
    unix: Option<i64>,
) {
    let at = unix.and_then(|s| jiff::Timestamp::from_second(s).ok());
    if let Err(e) = engine.store().run(move |s| s.set_next_run(dt, at)).await {
        tracing::warn!(data_type = dt.name, error = %e, "cannot record next run");
    }
}

/// SIGTERM (systemd) and SIGINT (Ctrl-C) both cancel the one token.
fn spawn_signal_listener(cancel: CancellationToken) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = int.recv() => tracing::info!("SIGINT received"),
        }
        cancel.cancel();
    });
    Ok(())
}
