//! The Prometheus endpoint (`[metrics] listen`): `GET /metrics` answers
//! with [`crate::metrics::render`] of the process's counters and a snapshot
//! read at scrape time from what `ouradb status` reads (the database's
//! `sync_state`, quarantine and pending removals), the request account and
//! the OAuth token file.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::DaemonError;
use crate::error_kind::ErrorKind;
use crate::metrics::{AccountSnapshot, Snapshot, TypeSnapshot};
use crate::registry::DataType;
use crate::store::SyncState;
use crate::sync::SyncEngine;

/// What a scrape reads from: every account's engine and each synced type's
/// schedule period (fixed while the daemon runs).
struct Scrape {
    engines: Vec<Arc<SyncEngine>>,
    periods: Vec<(&'static DataType, Option<Duration>)>,
}

/// Serves `/metrics` on `addr` until `cancel`; returns the bound address.
pub async fn start(
    engines: Vec<Arc<SyncEngine>>,
    addr: SocketAddr,
    cancel: CancellationToken,
    tracker: &TaskTracker,
) -> Result<SocketAddr, DaemonError> {
    let bind_error = |source| DaemonError::MetricsBind { addr, source };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(bind_error)?;
    let bound = listener.local_addr().map_err(bind_error)?;
    let Some(config) = engines.first().map(|e| e.config().clone()) else {
        return Ok(bound);
    };
    let periods = config
        .types
        .iter()
        .map(|dt| (*dt, schedule_period(&config.schedules[dt.name])))
        .collect();
    let app = Router::new()
        .route("/metrics", get(scrape))
        .with_state(Arc::new(Scrape { engines, periods }));
    tracing::info!(addr = %bound, "metrics endpoint listening on /metrics");
    tracker.spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { cancel.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "metrics endpoint stopped");
        }
    });
    Ok(bound)
}

async fn scrape(State(s): State<Arc<Scrape>>) -> Response {
    match snapshot(&s).await {
        Ok(snap) => (
            [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
            crate::metrics::render(crate::metrics::live(), &snap),
        )
            .into_response(),
        // A failed scrape (`up` 0) is what Prometheus alerts on; the reason
        // goes to the scraper and the log.
        Err(e) => {
            tracing::warn!(error = %e, "metrics scrape failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("ouradb: cannot read the metrics: {e}\n"),
            )
                .into_response()
        }
    }
}

async fn snapshot(s: &Scrape) -> Result<Snapshot, String> {
    let mut snap = Snapshot::default();
    for engine in &s.engines {
        let (types, account) = account_snapshot(s, engine).await?;
        snap.types.extend(types);
        snap.accounts.push(account);
    }
    let Some(first) = s.engines.first() else {
        return Ok(snap);
    };
    // Every account and process on the file counts in one request account.
    let account = first.client().limiter().account().clone();
    let window = first.config().rate_limit.window;
    let used = tokio::task::spawn_blocking(move || {
        let since = crate::clock::now().as_microsecond() - window.as_micros() as i64;
        account.sends_since(since).map(|sends| sends.len())
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())?;
    // Every account's sends over the application's quota: with one
    // account, the token's (both are Oura's 5000 by default).
    snap.quota_used_ratio = used as f64 / f64::from(first.config().rate_limit.application_requests);
    Ok(snap)
}

/// One account's types and credentials, read through its store handle and
/// from its token file.
async fn account_snapshot(
    s: &Scrape,
    engine: &SyncEngine,
) -> Result<(Vec<TypeSnapshot>, AccountSnapshot), String> {
    let stored = engine.store().holdings().await.map_err(|e| e.to_string())?;
    let config = engine.config().clone();
    // The token file is read off the runtime.
    let auth = tokio::task::spawn_blocking(move || {
        crate::api::oauth::uses_oauth(&config)
            .then(|| crate::api::oauth::auth_state(&config.oauth).ok())
            .flatten()
    })
    .await
    .map_err(|e| e.to_string())?;
    let name = engine.account_name().to_owned();
    let mut types = Vec::with_capacity(s.periods.len());
    let mut auth_failing = auth.as_ref().is_some_and(|a| a.reauth_required.is_some());
    for (dt, period) in &s.periods {
        let state = stored.states.iter().find(|st| st.data_type == dt.name);
        auth_failing |= state.is_some_and(fails_for_credentials);
        types.push(TypeSnapshot {
            data_type: dt.name,
            account: name.clone(),
            last_success: state.and_then(|st| st.last_success).map(|t| t.as_second()),
            documents: state.map_or(0, |st| st.documents),
            quarantined: stored
                .quarantined
                .iter()
                .find(|q| q.data_type == dt.name)
                .map_or(0, |q| q.count),
            pending_removals: stored.pending.get(dt.name).copied().unwrap_or(0),
            schedule_period: *period,
            not_available: state.and_then(not_available),
        });
    }
    let account = AccountSnapshot {
        name,
        token_expiry: auth
            .and_then(|a| a.access_expires_at)
            .map(|t| t.as_second()),
        auth_failing,
    };
    Ok((types, account))
}

/// A type marked not available to this application: its refusal (one
/// line, as `status` prints it) and the next try.
fn not_available(s: &SyncState) -> Option<crate::metrics::NotAvailable> {
    let retry = crate::sync::not_available_until(s)?;
    Some(crate::metrics::NotAvailable {
        reason: crate::api::text::one_line(s.last_error.as_deref().unwrap_or_default()),
        retry_at: retry.as_second(),
    })
}

/// The type's last run, newer than its last success, failed because the
/// credentials do not work (rejected, missing, or revoked).
fn fails_for_credentials(s: &SyncState) -> bool {
    let newer = match (s.last_error_at, s.last_success) {
        (Some(e), Some(ok)) => e > ok,
        (Some(_), None) => true,
        (None, _) => false,
    };
    newer
        && matches!(
            s.error_kind(),
            Some(ErrorKind::Unauthorized | ErrorKind::Auth | ErrorKind::ReauthRequired)
        )
}

/// The longest gap between the next runs of cron `expr`, as the scheduler
/// itself parses it (so the alert's "two periods" is the daemon's).
fn schedule_period(expr: &str) -> Option<Duration> {
    let mut job = tokio_cron_scheduler::Job::new(expr, |_, _| {}).ok()?;
    let data = job.job_data().ok()?;
    let cron = data.schedule()?;
    let mut at = data.next_tick_utc()?;
    let mut longest = 0;
    // Enough runs to see every gap of an hourly, daily or weekday pattern.
    for _ in 0..24 {
        let next = cron.find_next_occurrence(&at, false).ok()?;
        longest = longest.max(next.timestamp() - at.timestamp());
        at = next;
    }
    u64::try_from(longest).ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_periods_follow_the_cron_expressions() {
        let p = |e: &str| schedule_period(e).map(|d| d.as_secs());
        assert_eq!(p("0 */15 * * * *"), Some(900));
        assert_eq!(p("0 5 * * * *"), Some(3600));
        assert_eq!(p("0 30 3 * * *"), Some(86_400));
        // Uneven: twice a day at 09:00 and 17:00, the longest gap counts.
        assert_eq!(p("0 0 9,17 * * *"), Some(16 * 3600));
        assert_eq!(p("not cron"), None);
    }

    #[test]
    fn only_a_credentials_failure_newer_than_the_last_success_counts() {
        let t = |s: &str| s.parse::<jiff::Timestamp>().unwrap();
        let failing = SyncState {
            last_success: Some(t("2026-01-01T00:00:00Z")),
            last_error_at: Some(t("2026-01-01T01:00:00Z")),
            last_error_kind: Some("unauthorized".into()),
            ..SyncState::default()
        };
        assert!(fails_for_credentials(&failing));
        for kind in ["auth", "reauth_required"] {
            let s = SyncState {
                last_error_kind: Some(kind.into()),
                ..failing.clone()
            };
            assert!(fails_for_credentials(&s), "{kind}");
        }
        let other = SyncState {
            last_error_kind: Some("server_error".into()),
            ..failing.clone()
        };
        assert!(!fails_for_credentials(&other));
        let recovered = SyncState {
            last_success: Some(t("2026-01-01T02:00:00Z")),
            ..failing
        };
        assert!(!fails_for_credentials(&recovered));
    }
}
