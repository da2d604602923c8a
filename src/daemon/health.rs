//! The daemon's supervision loop: systemd's watchdog and `STATUS=` line.
//!
//! Every period the loop asks the store for the sync state (through the
//! store's thread, like every page commit) and only then tells systemd
//! `WATCHDOG=1`: a wedged runtime, loop or store thread stops the pings,
//! and systemd restarts the daemon after `WatchdogSec`. The same answer
//! becomes the `STATUS=` line `systemctl --user status ouradb` shows.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use jiff::Timestamp;
use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;

use crate::error_kind::ErrorKind;
use crate::store::SyncState;
use crate::sync::SyncEngine;

/// How often STATUS is refreshed when systemd asked for no watchdog.
const STATUS_PERIOD: Duration = Duration::from_secs(30);

/// What the loop knows beside the sync state: the end of the rate-limit
/// wait in force (unix seconds, 0 for none), told by the client.
#[derive(Debug, Default)]
pub struct Health {
    rate_limited_until: AtomicI64,
}

impl Health {
    pub fn note_rate_limit_wait(&self, until: Timestamp) {
        self.rate_limited_until
            .fetch_max(until.as_second(), Ordering::Relaxed);
    }

    fn rate_limited_until(&self, now: Timestamp) -> Option<Timestamp> {
        let until = self.rate_limited_until.load(Ordering::Relaxed);
        (until > now.as_second())
            .then(|| Timestamp::from_second(until).ok())
            .flatten()
    }
}

/// Freshness of one data type, as `status` and the STATUS line show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Freshness {
    Fresh,
    Stale,
    Failing,
    /// Not synced on purpose: its scope was not granted.
    Skipped,
    /// Refused to this application alone (`sync::engine`, "not
    /// available"): asked again daily, not failing.
    NotAvailable,
    Never,
}

impl Freshness {
    /// The name `status` prints (and `--json` writes).
    pub fn as_str(self) -> &'static str {
        match self {
            Freshness::Fresh => "fresh",
            Freshness::Stale => "stale",
            Freshness::Failing => "failing",
            Freshness::Skipped => "skipped",
            Freshness::NotAvailable => "not_available",
            Freshness::Never => "never",
        }
    }
}

pub fn freshness(s: &SyncState, now: Timestamp, stale_after: Duration) -> Freshness {
    let failing = match (s.last_error_at, s.last_success) {
        (Some(e), Some(ok)) => e > ok,
        (Some(_), None) => true,
        _ => false,
    };
    if failing {
        match s.error_kind() {
            Some(ErrorKind::ScopeNotGranted) => return Freshness::Skipped,
            Some(ErrorKind::NotAvailable) => return Freshness::NotAvailable,
            _ => {}
        }
        return Freshness::Failing;
    }
    match s.last_success {
        None => Freshness::Never,
        Some(ok) => {
            let age = now.duration_since(ok);
            if age.as_secs() as u64 > stale_after.as_secs() {
                Freshness::Stale
            } else {
                Freshness::Fresh
            }
        }
    }
}

/// `14:15` in the machine's time zone: what the person reads the line in.
fn clock_time(t: Timestamp) -> String {
    t.to_zoned(jiff::tz::TimeZone::system())
        .strftime("%H:%M")
        .to_string()
}

/// A type's last run failed for want of working credentials.
fn auth_failing(states: &[SyncState], now: Timestamp, stale_after: Duration) -> bool {
    states.iter().any(|s| {
        freshness(s, now, stale_after) == Freshness::Failing
            && matches!(
                s.error_kind(),
                Some(ErrorKind::Unauthorized | ErrorKind::ReauthRequired | ErrorKind::Auth)
            )
    })
}

/// The STATUS line: what needs the person first (auth), then what the
/// daemon waits for (the rate limit), else how fresh the types are.
pub fn status_line(
    states: &[SyncState],
    now: Timestamp,
    stale_after: Duration,
    rate_limited_until: Option<Timestamp>,
) -> String {
    if auth_failing(states, now, stale_after) {
        return "auth revoked: run ouradb auth login".into();
    }
    if let Some(until) = rate_limited_until {
        return format!("waiting for rate limit until {}", clock_time(until));
    }
    let count = |f| {
        states
            .iter()
            .filter(|s| freshness(s, now, stale_after) == f)
            .count()
    };
    let mut line = format!("{} types fresh", count(Freshness::Fresh));
    for (f, what) in [
        (Freshness::Stale, "stale"),
        (Freshness::Failing, "failing"),
        (Freshness::Never, "not synced yet"),
        (Freshness::NotAvailable, "not available to this application"),
    ] {
        let n = count(f);
        if n > 0 {
            line.push_str(&format!(", {n} {what}"));
        }
    }
    if let Some(next) = states
        .iter()
        .filter_map(|s| s.next_run)
        .filter(|t| *t > now)
        .min()
    {
        line.push_str(&format!(", next run {}", clock_time(next)));
    }
    line
}

/// The STATUS line of a daemon syncing several accounts (`accounts`: each
/// account's name and states): the accounts whose credentials fail are
/// named with the command that fixes each, then the rate limit, then the
/// freshness of every account's types together. One account reads exactly
/// as [`status_line`].
pub fn household_status_line(
    accounts: &[(&str, Vec<SyncState>)],
    now: Timestamp,
    stale_after: Duration,
    rate_limited_until: Option<Timestamp>,
) -> String {
    if let [(_, states)] = accounts {
        return status_line(states, now, stale_after, rate_limited_until);
    }
    let failing: Vec<&str> = accounts
        .iter()
        .filter(|(_, states)| auth_failing(states, now, stale_after))
        .map(|(name, _)| *name)
        .collect();
    match failing.as_slice() {
        [] => {}
        [one] => {
            return format!(
                "auth revoked for account {one}: run ouradb auth login --account {one}"
            );
        }
        many => {
            return format!(
                "auth revoked for accounts {}: run ouradb auth login --account NAME for each",
                many.join(", ")
            );
        }
    }
    let all: Vec<SyncState> = accounts
        .iter()
        .flat_map(|(_, s)| s.iter().cloned())
        .collect();
    let line = status_line(&all, now, stale_after, rate_limited_until);
    format!("{} accounts: {line}", accounts.len())
}

/// Runs until `cancel`: every period, the sync state of every account
/// through the store's thread, then `STATUS=` and (when systemd set
/// `WATCHDOG_USEC`) `WATCHDOG=1` every half watchdog interval, as systemd
/// advises.
pub async fn supervise(
    engines: Vec<Arc<SyncEngine>>,
    health: Arc<Health>,
    cancel: CancellationToken,
) {
    let Some(first) = engines.first().cloned() else {
        return;
    };
    let watchdog = sd_notify::watchdog_enabled();
    // interval() panics on zero: WATCHDOG_USEC=1 must not.
    let period = watchdog
        .map_or(STATUS_PERIOD, |w| w / 2)
        .max(Duration::from_millis(1));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pings = 0u64;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        failpoints::wedge(&first, pings).await;
        // No timeout on purpose: a store thread that never answers must
        // stop the pings.
        let status = read_status(&engines, &health).await;
        let mut msg = vec![NotifyState::Status(&status)];
        if watchdog.is_some() {
            msg.push(NotifyState::Watchdog);
            pings += 1;
        }
        if let Err(e) = sd_notify::notify(&msg) {
            tracing::debug!(error = %e, "cannot notify systemd");
        }
    }
}

/// Every account's states, read through the store's thread, as one line.
async fn read_status(engines: &[Arc<SyncEngine>], health: &Health) -> String {
    let mut accounts = Vec::with_capacity(engines.len());
    for engine in engines {
        match engine.states().await {
            Ok(states) => accounts.push((engine.account_name(), states)),
            Err(e) => return format!("database error: {e}"),
        }
    }
    let now = crate::clock::now();
    let stale_after = engines
        .first()
        .map_or(Duration::ZERO, |e| e.config().stale_after);
    household_status_line(&accounts, now, stale_after, health.rate_limited_until(now))
}

/// Test-only switches (`OURADB_FAILPOINT`, feature `failpoints`) that wedge
/// the loop or the store's thread after the third ping, to prove the pings
/// stop; no-ops in release builds.
mod failpoints {
    use crate::sync::SyncEngine;

    /// Pings sent before a failpoint wedges anything.
    #[cfg(feature = "failpoints")]
    const PINGS_BEFORE: u64 = 3;

    #[cfg(feature = "failpoints")]
    pub async fn wedge(engine: &SyncEngine, pings: u64) {
        #[allow(
            clippy::disallowed_methods,
            reason = "a test-only switch, not configuration; absent from release builds"
        )]
        let armed = std::env::var(crate::api::oauth::FAILPOINT_ENV).unwrap_or_default();
        if pings != PINGS_BEFORE {
            return;
        }
        match armed.as_str() {
            "wedge_scheduler_loop" => {
                eprintln!("ouradb: failpoint wedge_scheduler_loop hit; the loop stops here");
                std::future::pending::<()>().await;
            }
            "wedge_store_thread" => {
                eprintln!("ouradb: failpoint wedge_store_thread hit; the store's thread stops");
                // The loop's own store call waits behind it.
                engine.store().wedge();
            }
            _ => {}
        }
    }

    #[cfg(not(feature = "failpoints"))]
    #[inline(always)]
    pub async fn wedge(_engine: &SyncEngine, _pings: u64) {}
}
