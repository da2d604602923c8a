//! The long-running daemon: a catch-up run of every account at start, then
//! each (account, data type)'s job on its own cron, until SIGTERM/SIGINT.
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

mod jobs;

mod metrics;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::sync::{self, NoObserver, RunOptions, SyncEngine};

pub use health::{Freshness, freshness, household_status_line, status_line};
pub use idle::limit_malloc_arenas;

/// systemd waits `TimeoutStopSec`; we promise to be gone well before.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(4);

/// What stops the daemon from starting or running; the cli prints it.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Setup(#[from] sync::SetupError),
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

/// Runs the daemon for every account of `config` until SIGTERM/SIGINT.
pub async fn run(config: Arc<Config>) -> Result<ExitCode, DaemonError> {
    let cancel = CancellationToken::new();
    spawn_signal_listener(cancel.clone()).map_err(DaemonError::Signals)?;
    let store = crate::store::StoreHandle::new(
        crate::store::Store::open(&config.database).map_err(sync::SetupError::from)?,
    );
    let engines = sync::household(&config, &store, cancel.clone(), sync::system_clock()).await?;
    drop(store);
    run_all(engines, cancel).await?;
    Ok(ExitCode::SUCCESS)
}

/// Runs the daemon on an existing engine until `cancel` fires.
pub async fn run_with(
    engine: Arc<SyncEngine>,
    cancel: CancellationToken,
) -> Result<(), DaemonError> {
    run_all(vec![engine], cancel).await
}

/// Runs the daemon for several accounts, one engine each (see
/// [`sync::household`]), until `cancel` fires: every (account, type) is its
/// own job; the webhook receiver, the metrics endpoint and the STATUS line
/// serve them all.
pub async fn run_all(
    engines: Vec<Arc<SyncEngine>>,
    cancel: CancellationToken,
) -> Result<(), DaemonError> {
    let Some(first) = engines.first().cloned() else {
        return Ok(());
    };
    let tracker = TaskTracker::new();
    let idle = Arc::new(idle::Idle::new(engines.clone()));

    crate::webhook::start_in_daemon(&engines, cancel.clone(), &tracker).await?;
    if let Some(addr) = first.config().metrics_listen {
        metrics::start(engines.clone(), addr, cancel.clone(), &tracker).await?;
    }
    for engine in &engines {
        catch_up(engine.clone(), idle.clone(), &tracker);
    }
    let (mut sched, jobs) = jobs::schedule(&engines, &idle, &tracker, &cancel).await?;

    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    let health = watch_rate_limit(&engines);
    tracker.spawn(health::supervise(engines.clone(), health, cancel.clone()));
    tracing::info!(
        database = %first.config().database.display(),
        accounts = engines.len(),
        jobs,
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

/// Catches up at start: whatever the schedule says, a daemon that was
/// down for a week should not wait an hour to fill the gap.
fn catch_up(engine: Arc<SyncEngine>, idle: Arc<idle::Idle>, tracker: &TaskTracker) {
    tracker.spawn(async move {
        let types = engine.config().types.clone();
        let opts = RunOptions {
            since: None,
            backfill: true,
        };
        idle.around(engine.run(&types, opts, &NoObserver)).await;
    });
}

/// Has every account's client tell [`health::Health`] of its rate-limit
/// waits, for the STATUS line; the daemon waits as long as Oura says.
fn watch_rate_limit(engines: &[Arc<SyncEngine>]) -> Arc<health::Health> {
    let health = Arc::new(health::Health::default());
    for engine in engines {
        let h = health.clone();
        let account = engine.account_name().to_owned();
        engine.client().set_wait_policy(crate::api::WaitPolicy {
            max_wait: None,
            notify: Some(Arc::new(move |w: &crate::api::RateLimitWait| {
                tracing::info!(account = %account, data_type = w.data_type, "{}", w.describe());
                h.note_rate_limit_wait(w.until);
            })),
        });
    }
    health
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
