//! The schedule: one tokio-cron-scheduler job per (account, data type), on
//! the type's cron expression. A job that fires while the previous run of
//! its (account, type) is still going skips this tick.

use std::sync::Arc;

use tokio_cron_scheduler::{Job, JobScheduler};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{DaemonError, idle::Idle};
use crate::registry::DataType;
use crate::sync::{NoObserver, RunOptions, SyncEngine};

fn scheduler_error(e: impl std::fmt::Display) -> DaemonError {
    DaemonError::Scheduler(e.to_string())
}

/// Starts a job for every type of every engine's account; returns the
/// running scheduler and the number of jobs.
pub(super) async fn schedule(
    engines: &[Arc<SyncEngine>],
    idle: &Arc<Idle>,
    tracker: &TaskTracker,
    cancel: &CancellationToken,
) -> Result<(JobScheduler, usize), DaemonError> {
    let mut sched = JobScheduler::new().await.map_err(scheduler_error)?;
    let mut ids = Vec::new();
    for engine in engines {
        for &dt in &engine.config().types {
            let job = job(engine, dt, idle, tracker, cancel)?;
            let id = sched.add(job).await.map_err(scheduler_error)?;
            ids.push((engine.clone(), dt, id));
        }
    }
    sched.start().await.map_err(scheduler_error)?;
    let jobs = ids.len();
    let mut next_runs = Vec::with_capacity(jobs);
    for (engine, dt, id) in ids {
        let next = sched.next_tick_for_job(id).await.ok().flatten();
        next_runs.push((engine, dt, next.map(|t| t.timestamp())));
    }
    // Recorded in the background: a database locked by another process
    // must not hold up READY or the answer to SIGTERM.
    tracker.spawn(async move {
        for (engine, dt, next) in next_runs {
            record_next_run(&engine, dt, next).await;
        }
    });
    Ok((sched, jobs))
}

/// The job of `dt` for `engine`'s account.
fn job(
    engine: &Arc<SyncEngine>,
    dt: &'static DataType,
    idle: &Arc<Idle>,
    tracker: &TaskTracker,
    cancel: &CancellationToken,
) -> Result<Job, DaemonError> {
    let expr = engine.config().schedules[dt.name].clone();
    let (engine, idle, tracker, cancel) = (
        engine.clone(),
        idle.clone(),
        tracker.clone(),
        cancel.clone(),
    );
    Job::new_async(expr.as_str(), move |uuid, mut lock| {
        let (engine, idle, tracker, cancel) = (
            engine.clone(),
            idle.clone(),
            tracker.clone(),
            cancel.clone(),
        );
        Box::pin(async move {
            if cancel.is_cancelled() {
                return;
            }
            // Tracked so shutdown waits for the job's current page.
            let run = tracker.spawn(run_once(engine.clone(), dt, idle));
            let next = lock.next_tick_for_job(uuid).await.ok().flatten();
            record_next_run(&engine, dt, next.map(|t| t.timestamp())).await;
            let _ = run.await;
        })
    })
    .map_err(|e| DaemonError::Scheduler(format!("{}: {e}", dt.name)))
}

async fn run_once(engine: Arc<SyncEngine>, dt: &'static DataType, idle: Arc<Idle>) {
    let opts = RunOptions {
        since: None,
        backfill: true,
    };
    let report = idle.around(engine.run_type(dt, opts, &NoObserver)).await;
    if report.skipped_busy {
        tracing::debug!(
            account = engine.account_name(),
            data_type = dt.name,
            "previous run still in progress; skipped"
        );
    }
}

async fn record_next_run(engine: &SyncEngine, dt: &'static DataType, unix: Option<i64>) {
    let at = unix.and_then(|s| jiff::Timestamp::from_second(s).ok());
    if let Err(e) = engine.store().set_next_run(dt, at).await {
        tracing::warn!(
            account = engine.account_name(),
            data_type = dt.name,
            error = %e,
            "cannot record next run"
        );
    }
}
