//! The one rate limiter every data request goes through.
//!
//! Oura counts requests in any sliding window (5000 per 300 s) twice: per
//! access token and per application, across all of its tokens. Two layers
//! decide when a request may leave:
//!
//! - **The account** ([`RequestLog`]): an exact record of send times, each
//!   naming the account (token) that sent it. A request goes as soon as
//!   fewer than the token's usable quota (`requests × (1 − margin)`) were
//!   sent by its account in the last window and fewer than the
//!   application's (`application_requests × (1 − margin)`) by every account
//!   of the file. It lives in the database, so the daemon, an `ouradb sync`
//!   beside it, a process restarted after a crash and the other accounts of
//!   a household share it and none of them re-bursts. Slots are taken in an
//!   IMMEDIATE transaction on a blocking thread, so two processes cannot both
//!   take the last slot and the runtime never waits on SQLite. To keep that
//!   off the path of every request, slots are taken a few at a time as a
//!   short lease, recorded at the lease's end (never earlier than the sends
//!   they cover: the time is read once the database lock is held, and a
//!   grant that comes back after its lease ended is given back unused);
//!   unused ones are given back with the next batch.
//! - **governor** paces: a GCRA as deep as the token's usable quota and
//!   refilled at its rate, so a full burst goes at once and, once it is spent,
//!   requests are spread evenly instead of re-bursting a window later.
//!
//! History holds back a little of each window for recent data: a request
//! ranked below [`Priority::Recent`] (a backfill's, or a first sync's
//! recent days: [`Priority::CatchUp`]) is admitted only while the windows
//! keep [`recent_reserve`] slots free, and a recent request (a caught-up
//! type's incremental run, a webhook fetch) asks for its one slot with the
//! whole quota. So while the backfills of a household (or a first sync) keep the
//! quota full, an account's 15-minute heart-rate run still finds a free
//! slot at once, instead of waiting for the window to turn.
//!
//! The server's headers only ever slow this down: a 429's `Retry-After` and
//! `X-RateLimit-Reset` hold every request, `X-RateLimit-Limit`/`-Window`
//! add the server's own window to the token's count when it is stricter, and
//! `X-RateLimit-Remaining` stops requests once the server says none are left.
//! The margin absorbs requests arriving at the server a little later than
//! they leave here.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};
#[allow(clippy::disallowed_types, reason = "never held across an .await")]
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::Clock;
use governor::{
    Quota, RateLimiter, middleware::NoOpMiddleware, state::InMemoryState, state::NotKeyed,
};
use reqwest::header::HeaderMap;
use tokio::time::Instant;

use super::in_flight::Priority;
use crate::config::RateLimitConfig;
use crate::store::{AccountId, RequestLog, Reservation, Scope, Unused, WindowLimit};

/// governor clock on tokio's timer, so `tokio::time::pause()` drives the
/// limiter in tests exactly like it drives sleeps.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioClock;

impl Clock for TokioClock {
    type Instant = std::time::Instant;
    fn now(&self) -> Self::Instant {
        Instant::now().into_std()
    }
}

/// Where the account's timestamps come from.
#[derive(Debug, Clone, Copy)]
pub enum AccountClock {
    /// The system clock: the one time every process on the machine shares.
    Wall,
    /// The wall time when created, advanced by tokio's clock, so paused-time
    /// tests drive the account like they drive sleeps.
    Tokio { wall_us: i64, at: Instant },
}

impl AccountClock {
    pub fn tokio() -> AccountClock {
        AccountClock::Tokio {
            wall_us: wall_us(),
            at: Instant::now(),
        }
    }

    fn now_us(&self) -> i64 {
        match *self {
            AccountClock::Wall => wall_us(),
            AccountClock::Tokio { wall_us, at } => wall_us + at.elapsed().as_micros() as i64,
        }
    }

    /// The tokio instant at which this clock reads `us`, at most
    /// [`MAX_SERVER_WAIT`] away: the time comes from rows any process
    /// wrote, and no arithmetic on it may overflow.
    fn instant_at(&self, us: i64) -> Instant {
        let ahead = us.saturating_sub(self.now_us()).max(0) as u64;
        later(Instant::now(), Duration::from_micros(ahead))
    }
}

fn wall_us() -> i64 {
    crate::clock::now().as_microsecond()
}

/// Added to every window: sends recorded by limiters on slightly different
/// clocks (another process, timer rounding) still never share a window.
const WINDOW_SLACK: Duration = Duration::from_millis(1);

/// The shortest lease: a reservation's round trip through the blocking
/// pool must fit in it, or its slots are given back unused.
const LEASE_FLOOR: Duration = Duration::from_millis(50);

/// How long to wait before asking the database again when it failed (e.g.
/// another process held the write lock past the busy timeout).
const ACCOUNT_RETRY: Duration = Duration::from_secs(1);

/// The longest any server-given duration (`Retry-After`, `X-RateLimit-Reset`)
/// holds requests: a value beyond it is a broken or hostile server, and a
/// day is long enough to honour any real limit while staying far from the
/// overflow of `Instant` arithmetic.
pub const MAX_SERVER_WAIT: Duration = Duration::from_secs(24 * 3600);

/// `now + wait`, the wait clamped to [`MAX_SERVER_WAIT`]: never panics.
pub(crate) fn later(now: Instant, wait: Duration) -> Instant {
    let wait = wait.min(MAX_SERVER_WAIT);
    now.checked_add(wait).unwrap_or(now)
}

/// What holds requests back, as announced to the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// The server's headers: a 429's `Retry-After`/`X-RateLimit-Reset`, or
    /// `X-RateLimit-Remaining: 0`.
    Server,
    /// The request account shared through the database: the usable quota
    /// was spent in the last window (by this or another process).
    Account,
}

/// A `Retry-After` value: delay-seconds or an HTTP-date (RFC 9110 10.2.3),
/// clamped to [`MAX_SERVER_WAIT`]; a date in the past is no wait. A number
/// too large for any integer type is the longest wait, not a parse error.
pub fn parse_retry_after(value: &str, now: jiff::Timestamp) -> Option<Duration> {
    let v = value.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        let secs = v.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs).min(MAX_SERVER_WAIT));
    }
    // httpdate reads all three HTTP-date forms up to the year 9999 (beyond
    // jiff's range); a date with a numeric offset is RFC 2822's.
    let epoch = match httpdate::parse_http_date(v) {
        Ok(at) => at
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
        Err(_) => jiff::fmt::rfc2822::DateTimeParser::new()
            .parse_timestamp(v)
            .ok()?
            .as_second(),
    };
    Some(until_timestamp(epoch, now))
}

/// From `now` until the epoch second `epoch`, clamped to
/// `0..=MAX_SERVER_WAIT`, whatever the value.
fn until_timestamp(epoch: i64, now: jiff::Timestamp) -> Duration {
    let secs = epoch.saturating_sub(now.as_second()).max(0) as u64;
    Duration::from_secs(secs).min(MAX_SERVER_WAIT)
}

/// The most requests the account admits from one token in one window of
/// `cfg`.
pub fn usable_quota(cfg: &RateLimitConfig) -> u32 {
    usable(cfg.requests, cfg.margin_percent)
}

/// The most requests the account admits from every token of the file
/// together in one window of `cfg`.
pub fn usable_application_quota(cfg: &RateLimitConfig) -> u32 {
    usable(cfg.application_requests, cfg.margin_percent)
}

fn usable(requests: u32, margin_percent: u32) -> u32 {
    ((u64::from(requests) * u64::from(100 - margin_percent.min(99)) / 100) as u32).max(1)
}

/// What a 429 said, for the caller's log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimited {
    /// How long every request is held.
    pub wait: Duration,
    /// `X-RateLimit-Tier`: which of Oura's limits fired.
    pub tier: Option<String>,
}

#[derive(Debug, Default)]
struct ServerState {
    /// A 429's Retry-After/Reset: no request leaves before this instant.
    blocked_until: Option<Instant>,
    /// `X-RateLimit-Remaining` and when the server's window resets.
    remaining: Option<(u32, Instant)>,
    /// The server's own window (`X-RateLimit-Limit`/`-Window`) when it
    /// differs from the configured one.
    learned: Option<WindowLimit>,
}

/// Slots taken from the account and not yet used.
#[derive(Debug, Clone, Copy)]
struct Lease {
    slots: u32,
    /// Sends must leave before this; the rows say they left at this time.
    until: Instant,
    recorded_us: i64,
    /// When it was granted, and whether it was a batch (not a recent
    /// request's single slot): how fast a batch ran out sizes the next.
    granted: Instant,
    batch: bool,
}

/// Slots a lease starts at: a dozen requests per database round trip at
/// full speed, and little held back by a process that stops.
const BATCH: u32 = 16;

/// Slots a lease grows to while batches run out within a quarter of their
/// time (a first sync). Each reservation is a write transaction on the
/// shared file, which waits for a page commit holding the write lock while
/// every request waits for it: 64 instead of 16 made a 5-year heart-rate
/// sync at 50 ms 4 % faster (BENCHMARKS.md). A process that stops holds at
/// most this many unused slots until the window passes.
pub const BATCH_MAX: u32 = 64;

/// Slots of a window of `cap` that history leaves to recent requests: 2 %
/// (98 of Oura's usable 4,900), at least one when the cap allows it.
pub fn recent_reserve(cap: u32) -> u32 {
    if cap < 2 { 0 } else { (cap / 50).max(1) }
}

/// `slots` ([`BATCH`] or [`BATCH_MAX`]) under a quota of `usable`: at most
/// a sixteenth of it. A lease not used up stays recorded until its limiter
/// reserves again (or a window passes, when its account goes idle), so
/// under a small quota shared by several accounts and processes, leases of
/// 16 would hold most of it unused and the household would not fill it.
fn batch_for(slots: u32, usable: u32) -> u32 {
    slots.min(usable / 16).max(1)
}

/// The next batch after a lease of `size` slots: doubled when the last
/// batch ran out (`used_up`) within a quarter of its time (`quick`),
/// halved when it was given back unused, else the same; within
/// `floor..=max`.
fn next_batch(size: u32, used_up: bool, quick: bool, floor: u32, max: u32) -> u32 {
    match (used_up, quick) {
        (true, true) => size.saturating_mul(2).min(max),
        (false, _) => (size / 2).max(floor),
        (true, false) => size,
    }
    .clamp(floor.min(max), max)
}

type Gcra = RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<std::time::Instant>>;

pub struct Limiter {
    pacer: Gcra,
    account: Arc<RequestLog>,
    /// Whose token this limiter spends: the rows it records are this
    /// account's, and the token's limit counts only them.
    account_id: AccountId,
    clock: AccountClock,
    /// The token's limit (`rate_limit.requests`).
    configured: WindowLimit,
    /// The application's limit (`rate_limit.application_requests`).
    application: WindowLimit,
    margin_percent: u32,
    #[allow(clippy::disallowed_types, reason = "never held across an .await")]
    server: Mutex<ServerState>,
    #[allow(clippy::disallowed_types, reason = "never held across an .await")]
    lease: Mutex<Option<Lease>>,
    /// Held while a batch is being taken, so callers queue behind one
    /// database round trip instead of each starting their own.
    refill: tokio::sync::Mutex<()>,
    /// How long a batch stays usable: a 200th of the window, so the rows'
    /// lateness costs at most half a percent of the quota.
    lease_len: Duration,
    /// Slots a batch starts at and never shrinks below: [`BATCH`], or
    /// fewer under a small quota.
    batch: u32,
    /// Slots a batch grows to: [`BATCH_MAX`], or fewer under a small quota.
    batch_max: u32,
    /// Slots the next batch asks for (see [`next_batch`]).
    next_batch: AtomicU32,
}

impl Limiter {
    /// A limiter with a private, in-memory account on tokio's clock, for
    /// the first account: for tests and tools that have no database.
    pub fn new(cfg: &RateLimitConfig) -> Limiter {
        let log = RequestLog::in_memory().expect("an in-memory SQLite database opens");
        Limiter::with_account(cfg, Arc::new(log), AccountId::FIRST, AccountClock::tokio())
    }

    /// A limiter spending `account`'s token in the request account `log`,
    /// shared with every limiter (of this or another account, in this or
    /// another process) on the same database.
    pub fn with_account(
        cfg: &RateLimitConfig,
        log: Arc<RequestLog>,
        account: AccountId,
        clock: AccountClock,
    ) -> Limiter {
        let token = usable_quota(cfg);
        let application = usable_application_quota(cfg);
        let batch = batch_for(BATCH, token.min(application));
        let period = (cfg.window / token).max(Duration::from_nanos(1));
        let quota = Quota::with_period(period)
            .expect("period is positive")
            .allow_burst(NonZeroU32::new(token).expect("usable quota is positive"));
        Limiter {
            pacer: RateLimiter::direct_with_clock(quota, TokioClock),
            account: log,
            account_id: account,
            clock,
            configured: window_limit(cfg.window, token, Scope::Token),
            application: window_limit(cfg.window, application, Scope::Application),
            margin_percent: cfg.margin_percent,
            #[allow(clippy::disallowed_types, reason = "never held across an .await")]
            server: Mutex::new(ServerState::default()),
            #[allow(clippy::disallowed_types, reason = "never held across an .await")]
            lease: Mutex::new(None),
            refill: tokio::sync::Mutex::new(()),
            lease_len: (cfg.window / 200).clamp(LEASE_FLOOR, Duration::from_secs(2)),
            batch,
            batch_max: batch_for(BATCH_MAX, token.min(application)),
            next_batch: AtomicU32::new(batch),
        }
    }

    /// The request account this limiter spends (`/metrics` reads its window).
    pub fn account(&self) -> &Arc<RequestLog> {
        &self.account
    }

    /// The account whose token this limiter spends.
    pub fn account_id(&self) -> AccountId {
        self.account_id
    }

    /// Requests of this account admitted in any window of the configured
    /// length (the token's usable quota).
    pub fn usable(&self) -> u32 {
        self.configured.cap
    }

    /// Waits until one more request may be sent and records it.
    pub async fn acquire(&self) {
        let never = |_: Hold, _: Instant| Ok::<(), std::convert::Infallible>(());
        let Ok(()) = self.acquire_announcing(never).await;
    }

    /// [`acquire`](Self::acquire), calling `before_wait` before every wait
    /// on the server's headers or on the shared account (not the pacer's
    /// spacing) with what holds requests and until when: the client
    /// announces it and bounds it by `--max-wait`. An error from
    /// `before_wait` ends the call without a request.
    pub async fn acquire_announcing<E>(
        &self,
        mut before_wait: impl FnMut(Hold, Instant) -> Result<(), E>,
    ) -> Result<(), E> {
        self.wait_for_server(&mut before_wait).await?;
        loop {
            match self.pacer.check() {
                Ok(()) => break,
                Err(not_until) => {
                    let wait = not_until.wait_time_from(TokioClock.now());
                    tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
                }
            }
        }
        loop {
            // A 429 may have arrived while this request waited its turn.
            self.wait_for_server(&mut before_wait).await?;
            if self.take_leased() {
                return Ok(());
            }
            let refilling = self.refill.lock().await;
            if self.take_leased() {
                return Ok(());
            }
            let old = self.lease.lock().unwrap_or_else(|e| e.into_inner()).take();
            self.size_next_batch(old.as_ref());
            let unused = old.map(|l| Unused {
                at_us: l.recorded_us,
                slots: l.slots,
            });
            let clock = self.clock;
            let lease_us = self.lease_len.as_micros() as i64;
            // Recent requests ask for their own slot with the reserve;
            // history takes batches and leaves the reserve free.
            let recent = super::in_flight::current_priority() == Priority::Recent;
            let limits = self.limits(recent);
            let log = self.account.clone();
            let batch = match recent {
                true => 1,
                false => self.next_batch.load(Ordering::Relaxed),
            };
            let account = self.account_id;
            let outcome = tokio::task::spawn_blocking(move || {
                log.reserve_when_locked(
                    account,
                    || clock.now_us(),
                    batch,
                    lease_us,
                    &limits,
                    unused,
                )
            })
            .await;
            match outcome {
                Ok(Ok((Reservation::Granted(n), record_at))) => {
                    let until = self.clock.instant_at(record_at);
                    let late = Instant::now() >= until;
                    // Slots are dated at the lease's end; one sent after it
                    // would be dated too early for the other processes'
                    // count. A grant that comes back that late is given
                    // back with the next reservation instead of used.
                    *self.lease.lock().unwrap_or_else(|e| e.into_inner()) = Some(Lease {
                        slots: if late { n } else { n - 1 },
                        until,
                        recorded_us: record_at,
                        granted: Instant::now(),
                        batch: !recent,
                    });
                    if late {
                        drop(refilling);
                        continue;
                    }
                    self.spend_remaining();
                    return Ok(());
                }
                Ok(Ok((Reservation::WaitUntil(us), _))) => {
                    drop(refilling);
                    let until = self.clock.instant_at(us);
                    before_wait(Hold::Account, until)?;
                    tokio::time::sleep_until(until).await;
                }
                Ok(Err(e)) => {
                    drop(refilling);
                    tracing::warn!(error = %e, "cannot use the request account in the database; retrying in 1 s");
                    tokio::time::sleep(ACCOUNT_RETRY).await;
                }
                Err(e) => {
                    drop(refilling);
                    tracing::warn!(error = %e, "request account task failed; retrying in 1 s");
                    tokio::time::sleep(ACCOUNT_RETRY).await;
                }
            }
        }
    }

    /// Sizes the next batch from how the batch `old` went (see
    /// [`next_batch`]); a recent request's single slot says nothing.
    fn size_next_batch(&self, old: Option<&Lease>) {
        let Some(old) = old.filter(|l| l.batch) else {
            return;
        };
        let quick = old.granted.elapsed() < self.lease_len / 4;
        let size = self.next_batch.load(Ordering::Relaxed);
        let next = next_batch(size, old.slots == 0, quick, self.batch, self.batch_max);
        self.next_batch.store(next, Ordering::Relaxed);
    }

    /// Uses one slot of the current lease if it has one left in time.
    fn take_leased(&self) -> bool {
        let mut lease = self.lease.lock().unwrap_or_else(|e| e.into_inner());
        match lease.as_mut() {
            Some(l) if l.slots > 0 && Instant::now() < l.until => {
                l.slots -= 1;
                drop(lease);
                self.spend_remaining();
                true
            }
            _ => false,
        }
    }

    fn spend_remaining(&self) {
        if let Some((n, _)) = self.lock_server().remaining.as_mut() {
            *n = n.saturating_sub(1);
        }
    }

    fn lock_server(&self) -> std::sync::MutexGuard<'_, ServerState> {
        self.server.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every limit a reservation keeps to: whole for recent requests, less
    /// [`recent_reserve`] for history.
    fn limits(&self, recent: bool) -> Vec<WindowLimit> {
        let learned = self.lock_server().learned;
        [self.configured, self.application]
            .into_iter()
            .chain(learned)
            .map(|l| WindowLimit {
                cap: if recent {
                    l.cap
                } else {
                    l.cap - recent_reserve(l.cap)
                },
                ..l
            })
            .collect()
    }

    /// Sleeps while a 429 or an exhausted `X-RateLimit-Remaining` holds
    /// requests, telling `before_wait` first.
    async fn wait_for_server<E>(
        &self,
        before_wait: &mut impl FnMut(Hold, Instant) -> Result<(), E>,
    ) -> Result<(), E> {
        loop {
            let until = {
                let mut s = self.lock_server();
                let now = Instant::now();
                if s.remaining.is_some_and(|(_, reset)| reset <= now) {
                    s.remaining = None;
                }
                let exhausted = s.remaining.and_then(|(n, reset)| (n == 0).then_some(reset));
                let blocked = s.blocked_until.filter(|t| *t > now);
                match (blocked, exhausted) {
                    (Some(a), Some(b)) => a.max(b),
                    (Some(a), None) | (None, Some(a)) => a,
                    (None, None) => return Ok(()),
                }
            };
            before_wait(Hold::Server, until)?;
            tokio::time::sleep_until(until).await;
        }
    }

    /// When requests may go again if a 429 or an exhausted
    /// `X-RateLimit-Remaining` holds them now (what `acquire` would sleep
    /// for); `None` when nothing holds them. Lets the client announce and
    /// bound the wait before it starts.
    pub fn blocked_until(&self) -> Option<Instant> {
        let s = self.lock_server();
        let now = Instant::now();
        let exhausted = s
            .remaining
            .and_then(|(n, reset)| (n == 0 && reset > now).then_some(reset));
        let blocked = s.blocked_until.filter(|t| *t > now);
        match (blocked, exhausted) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    /// Holds every request until `until`. Never shortens an existing block.
    pub fn block_until(&self, until: Instant) {
        let mut s = self.lock_server();
        if s.blocked_until.is_none_or(|cur| cur < until) {
            s.blocked_until = Some(until);
        }
    }

    /// Reads a response's rate-limit headers. Returns what a 429 asks for
    /// (after holding every request for it); other statuses only tighten
    /// the limits.
    pub fn observe(&self, status: u16, headers: &HeaderMap) -> Option<RateLimited> {
        let now = Instant::now();
        let wall = crate::clock::now();
        let text = |name: &str| headers.get(name)?.to_str().ok();
        // Every number the server sends may be anything: too large ones
        // saturate, and each duration is clamped before it meets an Instant.
        let num = |name: &str| -> Option<u64> {
            let v = text(name)?.trim();
            if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            Some(v.parse::<u64>().unwrap_or(u64::MAX))
        };
        let reset_in = num("x-ratelimit-reset")
            .map(|epoch| until_timestamp(i64::try_from(epoch).unwrap_or(i64::MAX), wall));
        let server_window = num("x-ratelimit-window")
            .filter(|w| (1..=86_400).contains(w))
            .map(Duration::from_secs);
        {
            let mut s = self.lock_server();
            if let (Some(limit), Some(window)) = (num("x-ratelimit-limit"), server_window) {
                let cfg = RateLimitConfig {
                    requests: limit.min(u64::from(u32::MAX)) as u32,
                    window,
                    margin_percent: self.margin_percent,
                    ..RateLimitConfig::default()
                };
                // The headers answer a request of this token and describe
                // the token's limit, so the learned window counts this
                // account's rows. Counting every row instead would hold
                // the other accounts to one token's share; if a 429 of the
                // application's quota carries that quota here, applying it
                // to one token is stricter than needed, never looser.
                let l = window_limit(window, usable_quota(&cfg), Scope::Token);
                s.learned = (l != self.configured).then_some(l);
            }
            if let Some(remaining) = num("x-ratelimit-remaining") {
                let reset = reset_in
                    .or(server_window)
                    .unwrap_or_else(|| Duration::from_micros(self.configured.window_us as u64));
                s.remaining = Some((remaining.min(u64::from(u32::MAX)) as u32, later(now, reset)));
            }
        }
        if status != 429 {
            return None;
        }
        let retry_after = text("retry-after").and_then(|v| parse_retry_after(v, wall));
        // Both headers only ever lengthen the wait; a 429 without either
        // waits a minute.
        let wait = match (retry_after, reset_in) {
            (Some(a), Some(b)) => a.max(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => Duration::from_secs(60),
        };
        // Arrive just after the window reopens rather than just before.
        let wait = wait.min(MAX_SERVER_WAIT) + Duration::from_millis(250);
        self.block_until(later(now, wait));
        let tier = headers
            .get("x-ratelimit-tier")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Some(RateLimited { wait, tier })
    }
}

fn window_limit(window: Duration, cap: u32, scope: Scope) -> WindowLimit {
    WindowLimit {
        window_us: (window + WINDOW_SLACK).as_micros() as i64,
        cap,
        scope,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn cfg(requests: u32, window_s: u64) -> RateLimitConfig {
        RateLimitConfig {
            requests,
            window: Duration::from_secs(window_s),
            margin_percent: 2,
            // Above any token's quota here: only the tests of the
            // application's quota lower it.
            application_requests: 100_000,
        }
    }

    /// The most grants inside any closed interval of length `w`.
    fn fullest_window(times: &[Duration], w: Duration) -> usize {
        let mut sorted = times.to_vec();
        sorted.sort();
        let mut worst = 0;
        for (i, t) in sorted.iter().enumerate() {
            let n = sorted[i..].iter().take_while(|u| **u - *t <= w).count();
            worst = worst.max(n);
        }
        worst
    }

    #[test]
    fn retry_after_is_seconds_or_a_date_and_never_beyond_a_day() {
        let now: jiff::Timestamp = "2026-12-07T10:00:00Z".parse().unwrap();
        let p = |v: &str| parse_retry_after(v, now);
        assert_eq!(p(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(p("18446744073709551615"), Some(MAX_SERVER_WAIT));
        assert_eq!(p("1000000000000000000000000000"), Some(MAX_SERVER_WAIT));
        assert_eq!(
            p("Mon, 07 Dec 2026 10:01:30 GMT"),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            p("Monday, 07-Dec-26 10:01:30 GMT"),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            p("Mon, 07 Dec 2026 11:01:30 +0100"),
            Some(Duration::from_secs(90))
        );
        assert_eq!(p("Fri, 31 Dec 9999 23:59:59 GMT"), Some(MAX_SERVER_WAIT));
        assert_eq!(p("Thu, 01 Jan 1970 00:00:00 GMT"), Some(Duration::ZERO));
        assert_eq!(p("-5"), None);
        assert_eq!(p("soon"), None);
        assert_eq!(p(""), None);
    }

    #[tokio::test(start_paused = true)]
    async fn header_values_beyond_any_clock_hold_requests_for_a_day_at_most() {
        for (name, value) in [
            ("retry-after", "18446744073709551615"),
            ("x-ratelimit-reset", "18446744073709551615"),
            ("x-ratelimit-reset", "9223372036854775808"),
        ] {
            let limiter = Limiter::new(&RateLimitConfig::default());
            let got = limiter
                .observe(429, &headers(&[(name, value.into())]))
                .expect("a 429 is reported");
            assert_eq!(
                got.wait,
                MAX_SERVER_WAIT + Duration::from_millis(250),
                "{name}"
            );
            let until = limiter.blocked_until().expect("held");
            assert!(until - Instant::now() <= MAX_SERVER_WAIT, "{name}");
        }
        let limiter = Limiter::new(&RateLimitConfig::default());
        let h = headers(&[
            ("x-ratelimit-remaining", "0".into()),
            ("x-ratelimit-reset", "18446744073709551615".into()),
        ]);
        assert_eq!(limiter.observe(200, &h), None);
        let until = limiter.blocked_until().expect("held");
        assert!(until - Instant::now() <= MAX_SERVER_WAIT);
    }

    #[tokio::test(start_paused = true)]
    async fn waits_on_the_server_and_the_account_are_told_before_they_start() {
        let limiter = Limiter::new(&cfg(3, 10));
        let mut told = Vec::new();
        for _ in 0..3 {
            limiter
                .acquire_announcing(|hold, until| {
                    told.push((hold, until));
                    Ok::<(), ()>(())
                })
                .await
                .unwrap();
        }
        assert_eq!(told.len(), 1, "the third waits for the account: {told:?}");
        assert_eq!(told[0].0, Hold::Account);
        limiter.block_until(Instant::now() + Duration::from_secs(60));
        let refused = limiter.acquire_announcing(|hold, _| Err(hold)).await;
        assert_eq!(refused, Err(Hold::Server), "a refusal ends the wait");
    }

    #[test]
    fn usable_quota_keeps_the_margin() {
        assert_eq!(usable_quota(&RateLimitConfig::default()), 4900);
        assert_eq!(usable_quota(&cfg(40, 10)), 39);
        assert_eq!(usable_quota(&cfg(3, 10)), 2);
        for requests in [3, 10, 50, 100, 5000, 100_000] {
            for margin_percent in [0, 2, 10] {
                let c = RateLimitConfig {
                    margin_percent,
                    ..cfg(requests, 300)
                };
                assert!((1..=requests).contains(&usable_quota(&c)));
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn sliding_window_holds_under_paused_time() {
        let limiter = Limiter::new(&cfg(50, 3));
        let start = Instant::now();
        let mut times = Vec::new();
        for _ in 0..400 {
            limiter.acquire().await;
            times.push(start.elapsed());
        }
        let worst = fullest_window(&times, Duration::from_secs(3));
        assert!(worst <= 50, "{worst} requests in one 3 s window");
        assert_eq!(worst, 49, "the usable quota is reachable");
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_burst_goes_at_once_and_the_long_run_rate_is_the_quota() {
        let limiter = Limiter::new(&cfg(40, 10));
        let start = Instant::now();
        let mut times = Vec::new();
        for _ in 0..39 {
            limiter.acquire().await;
            times.push(start.elapsed());
        }
        assert_eq!(start.elapsed(), Duration::ZERO, "the whole burst is free");
        for _ in 0..(39 * 5) {
            limiter.acquire().await;
            times.push(start.elapsed());
        }
        // Six windows' worth took five windows and five leases (50 ms
        // each): 39 per 10 s, the usable quota, sustained.
        let took = start.elapsed();
        assert!(
            took > Duration::from_secs(50) && took < Duration::from_millis(50_300),
            "{took:?}"
        );
        assert!(fullest_window(&times, Duration::from_secs(10)) <= 39);
    }

    #[test]
    fn batches_double_while_they_run_out_quickly_and_halve_when_given_back() {
        assert_eq!(next_batch(16, true, true, 16, 64), 32);
        assert_eq!(next_batch(32, true, true, 16, 64), 64);
        assert_eq!(next_batch(64, true, true, 16, 64), 64, "at most the max");
        assert_eq!(next_batch(64, true, false, 16, 64), 64, "used up slowly");
        assert_eq!(next_batch(64, false, true, 16, 64), 32);
        assert_eq!(
            next_batch(16, false, false, 16, 64),
            16,
            "never below the floor"
        );
        // A small quota keeps its small batches.
        assert_eq!(batch_for(BATCH, 30), 1);
        assert_eq!(batch_for(BATCH_MAX, 30), 1);
        assert_eq!(next_batch(1, true, true, 1, 1), 1);
        assert_eq!(
            batch_for(BATCH_MAX, usable_quota(&RateLimitConfig::default())),
            BATCH_MAX
        );
    }

    /// A first sync's stream of requests grows the leases to
    /// [`BATCH_MAX`] (fewer write transactions on the shared file); an idle
    /// spell shrinks them again, and what the process holds unused stays
    /// below one batch.
    #[tokio::test(start_paused = true)]
    async fn leases_grow_under_a_stream_of_requests_and_shrink_after_it() {
        let limiter = Limiter::new(&RateLimitConfig::default());
        let size = |l: &Limiter| l.next_batch.load(Ordering::Relaxed);
        assert_eq!(size(&limiter), BATCH);
        let history = super::super::in_flight::at_priority(Priority::History, async {
            for _ in 0..300 {
                limiter.acquire().await;
            }
        });
        history.await;
        assert_eq!(size(&limiter), BATCH_MAX);
        let reserved = limiter.account().sends_since(0).unwrap().len();
        // 16 + 32 + 4 × 64 slots taken in 7 transactions instead of 19.
        assert_eq!(reserved, 304);
        assert!(reserved - 300 < BATCH_MAX as usize);
        tokio::time::sleep(Duration::from_secs(3)).await;
        super::super::in_flight::at_priority(Priority::History, limiter.acquire()).await;
        assert_eq!(
            size(&limiter),
            BATCH_MAX / 2,
            "the expired lease had slots left"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn block_until_holds_every_request() {
        let limiter = Limiter::new(&RateLimitConfig::default());
        let start = Instant::now();
        limiter.block_until(start + Duration::from_secs(7));
        limiter.block_until(start + Duration::from_secs(2));
        limiter.acquire().await;
        assert!(start.elapsed() >= Duration::from_secs(7));
    }

    fn db() -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ouradb.sqlite");
        (dir, path)
    }

    #[tokio::test(start_paused = true)]
    async fn two_limiters_over_one_database_never_exceed_the_quota_together() {
        let (_dir, path) = db();
        let c = cfg(30, 5);
        let clock = AccountClock::tokio();
        let a = Limiter::with_account(
            &c,
            Arc::new(RequestLog::open(&path).unwrap()),
            AccountId::FIRST,
            clock,
        );
        let b = Limiter::with_account(
            &c,
            Arc::new(RequestLog::open(&path).unwrap()),
            AccountId::FIRST,
            clock,
        );
        let start = Instant::now();
        let run = |l: Limiter| async move {
            let mut times = Vec::new();
            for _ in 0..90 {
                l.acquire().await;
                times.push(start.elapsed());
            }
            times
        };
        let (ta, tb) = tokio::join!(run(a), run(b));
        let all: Vec<Duration> = ta.iter().chain(&tb).copied().collect();
        let worst = fullest_window(&all, Duration::from_secs(5));
        assert!(worst <= 30, "{worst} requests in one 5 s window");
        assert_eq!(worst, 29, "together they still reach the usable quota");
        // Each alone would have burst 29 at once; together they shared it.
        let at_once = all.iter().filter(|t| t.is_zero()).count();
        assert_eq!(at_once, 29);
    }

    fn app_cfg(requests: u32, application_requests: u32, window_s: u64) -> RateLimitConfig {
        RateLimitConfig {
            application_requests,
            ..cfg(requests, window_s)
        }
    }

    fn limiter_of(c: &RateLimitConfig, path: &std::path::Path, id: i64) -> Limiter {
        Limiter::with_account(
            c,
            Arc::new(RequestLog::open(path).unwrap()),
            AccountId::for_test(id),
            // One wall time for every limiter of a test, as processes share.
            AccountClock::Tokio {
                wall_us: 1_700_000_000_000_000,
                at: Instant::now(),
            },
        )
    }

    #[tokio::test(start_paused = true)]
    async fn two_accounts_each_keep_to_their_token_and_together_to_the_application() {
        let (_dir, path) = db();
        // 19 usable per token, 29 per application.
        let c = app_cfg(20, 30, 5);
        let (a, b) = (limiter_of(&c, &path, 1), limiter_of(&c, &path, 2));
        let start = Instant::now();
        let run = |l: Limiter| async move {
            let mut times = Vec::new();
            for _ in 0..60 {
                l.acquire().await;
                times.push(start.elapsed());
            }
            times
        };
        let (ta, tb) = tokio::join!(run(a), run(b));
        let w = Duration::from_secs(5);
        assert!(fullest_window(&ta, w) <= 19, "{ta:?}");
        assert!(fullest_window(&tb, w) <= 19, "{tb:?}");
        let all: Vec<Duration> = ta.iter().chain(&tb).copied().collect();
        assert_eq!(
            fullest_window(&all, w),
            29,
            "the application's quota is reached"
        );
        // Both accounts went at once, beyond one token's quota.
        let at_once = all.iter().filter(|t| t.is_zero()).count();
        assert_eq!(at_once, 29);
        assert!(ta.iter().filter(|t| t.is_zero()).count() >= 10);
        assert!(tb.iter().filter(|t| t.is_zero()).count() >= 10);
    }

    #[tokio::test(start_paused = true)]
    async fn an_account_alone_keeps_to_the_stricter_of_its_token_and_the_application() {
        // (token, application, usable alone): 19 of 20 and 39 of 40.
        for (token, application, alone) in [(20, 1000, 19), (1000, 40, 39)] {
            let (_dir, path) = db();
            let one = limiter_of(&app_cfg(token, application, 10), &path, 1);
            let start = Instant::now();
            let mut times = Vec::new();
            for _ in 0..(alone * 2) {
                one.acquire().await;
                times.push(start.elapsed());
            }
            let at_once = times.iter().filter(|t| t.is_zero()).count();
            assert_eq!(at_once, alone, "({token}, {application})");
            let worst = fullest_window(&times, Duration::from_secs(10));
            assert_eq!(worst, alone, "({token}, {application})");
        }
    }

    /// A backfill filling the application's window leaves 2 % of it to
    /// recent requests: another account's incremental run goes at once
    /// while the backfill waits for the window to turn.
    #[tokio::test(start_paused = true)]
    async fn history_leaves_a_reserve_that_a_recent_request_takes_at_once() {
        use super::super::in_flight::at_priority;
        let (_dir, path) = db();
        // 100 per token and application, 2 % margin: 98 usable, 1 reserved.
        let c = app_cfg(100, 100, 10);
        let (backfill, recent) = (limiter_of(&c, &path, 1), limiter_of(&c, &path, 2));
        let start = Instant::now();
        let history = at_priority(Priority::History, async {
            let mut times = Vec::new();
            for _ in 0..98 {
                backfill.acquire().await;
                times.push(start.elapsed());
            }
            times
        });
        let other = async {
            // Once history has taken what it may.
            tokio::time::sleep(Duration::from_millis(1)).await;
            at_priority(Priority::Recent, recent.acquire()).await;
            start.elapsed()
        };
        let (history, recent_at) = tokio::join!(history, other);
        let at_once = history.iter().filter(|t| t.is_zero()).count();
        assert_eq!(at_once, 97, "history stops one short of the usable 98");
        assert!(history[97] >= Duration::from_secs(10), "{history:?}");
        assert!(
            recent_at < Duration::from_secs(1),
            "the recent request took the reserve at once: {recent_at:?}"
        );
        assert_eq!(recent_reserve(4900), 98);
        assert_eq!(recent_reserve(1), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_server_window_learned_by_one_account_holds_only_that_account() {
        let (_dir, path) = db();
        let c = app_cfg(20, 100, 10);
        let (a, b) = (limiter_of(&c, &path, 1), limiter_of(&c, &path, 2));
        let h = headers(&[
            ("x-ratelimit-limit", "5".into()),
            ("x-ratelimit-window", "10".into()),
        ]);
        assert_eq!(a.observe(200, &h), None);
        let start = Instant::now();
        for _ in 0..4 {
            a.acquire().await;
        }
        for _ in 0..19 {
            b.acquire().await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO, "b keeps its token's quota");
        a.acquire().await;
        assert!(
            start.elapsed() >= Duration::from_secs(10),
            "a keeps the server's"
        );
    }

    // Real time: the other process's lock is held on the wall clock.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn slots_taken_after_waiting_for_a_lock_are_not_dated_before_the_send() {
        let (_dir, path) = db();
        let c = cfg(30, 5);
        let limiter = Limiter::with_account(
            &c,
            Arc::new(RequestLog::open(&path).unwrap()),
            AccountId::FIRST,
            AccountClock::Wall,
        );
        // Another process holds the write lock for a while, as a daemon
        // committing a page would.
        let holder = rusqlite::Connection::open(&path).unwrap();
        holder.execute_batch("BEGIN IMMEDIATE").unwrap();
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(400));
            holder.execute_batch("COMMIT").unwrap();
        });
        limiter.acquire().await;
        let sent = wall_us();
        release.join().unwrap();
        let log = RequestLog::open(&path).unwrap();
        let recorded = log.sends_since(0).unwrap();
        assert!(!recorded.is_empty());
        assert!(
            recorded.iter().all(|r| *r >= sent),
            "a send at {sent} recorded as early as {:?}",
            recorded.iter().min()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_restart_continues_the_account() {
        let (_dir, path) = db();
        let c = cfg(20, 60);
        // Both processes read the same wall clock.
        let clock = AccountClock::tokio();
        let first = Limiter::with_account(
            &c,
            Arc::new(RequestLog::open(&path).unwrap()),
            AccountId::FIRST,
            clock,
        );
        for _ in 0..15 {
            first.acquire().await;
        }
        drop(first);
        tokio::time::sleep(Duration::from_secs(20)).await;
        // A new process: fresh governor, fresh memory, same database.
        let second = Limiter::with_account(
            &c,
            Arc::new(RequestLog::open(&path).unwrap()),
            AccountId::FIRST,
            clock,
        );
        let start = Instant::now();
        let mut at_once = 0;
        let waited = loop {
            second.acquire().await;
            if !start.elapsed().is_zero() {
                break start.elapsed();
            }
            at_once += 1;
        };
        // 19 usable, 15 sent: under so small a quota a lease is one slot
        // (`batch_for`), so the first process held none unused.
        assert_eq!(at_once, 4, "only what the first process left goes at once");
        assert!(
            waited >= Duration::from_secs(40) && waited < Duration::from_secs(41),
            "the next request waits for the first sends to leave the window: {waited:?}"
        );
    }

    fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_holds_requests_for_the_longer_of_retry_after_and_reset() {
        let limiter = Limiter::new(&RateLimitConfig::default());
        let reset = crate::clock::now().as_second() + 30;
        let h = headers(&[
            ("retry-after", "7".into()),
            ("x-ratelimit-reset", reset.to_string()),
            ("x-ratelimit-tier", "per_token".into()),
        ]);
        let start = Instant::now();
        let got = limiter.observe(429, &h).expect("a 429 is reported");
        assert_eq!(got.tier.as_deref(), Some("per_token"));
        assert!(
            got.wait >= Duration::from_secs(29) && got.wait <= Duration::from_secs(31),
            "{got:?}"
        );
        limiter.acquire().await;
        assert!(start.elapsed() >= Duration::from_secs(29));

        let limiter = Limiter::new(&RateLimitConfig::default());
        let got = limiter
            .observe(429, &headers(&[("retry-after", "7".into())]))
            .unwrap();
        assert_eq!(got.wait, Duration::from_millis(7250));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stricter_server_window_slows_requests_down() {
        let limiter = Limiter::new(&cfg(100, 10));
        let h = headers(&[
            ("x-ratelimit-limit", "10".into()),
            ("x-ratelimit-window", "2".into()),
        ]);
        assert_eq!(limiter.observe(200, &h), None);
        let start = Instant::now();
        let mut times = Vec::new();
        for _ in 0..40 {
            limiter.acquire().await;
            times.push(start.elapsed());
        }
        assert!(fullest_window(&times, Duration::from_secs(2)) <= 9);
        assert!(start.elapsed() >= Duration::from_secs(8));
    }

    #[tokio::test(start_paused = true)]
    async fn a_looser_server_window_does_not_speed_requests_up() {
        let limiter = Limiter::new(&cfg(10, 10));
        let h = headers(&[
            ("x-ratelimit-limit", "1000".into()),
            ("x-ratelimit-window", "10".into()),
        ]);
        limiter.observe(200, &h);
        let start = Instant::now();
        let mut times = Vec::new();
        for _ in 0..30 {
            limiter.acquire().await;
            times.push(start.elapsed());
        }
        assert!(fullest_window(&times, Duration::from_secs(10)) <= 9);
    }

    #[tokio::test(start_paused = true)]
    async fn no_remaining_requests_hold_until_the_reset() {
        let limiter = Limiter::new(&RateLimitConfig::default());
        let reset = crate::clock::now().as_second() + 20;
        let h = headers(&[
            ("x-ratelimit-remaining", "2".into()),
            ("x-ratelimit-reset", reset.to_string()),
        ]);
        limiter.observe(200, &h);
        let start = Instant::now();
        limiter.acquire().await;
        limiter.acquire().await;
        assert_eq!(start.elapsed(), Duration::ZERO, "two were left");
        limiter.acquire().await;
        assert!(
            start.elapsed() >= Duration::from_secs(18),
            "the third waits for the server's reset: {:?}",
            start.elapsed()
        );
    }
}
