//! The one rate limiter every request goes through.
//!
//! Oura counts requests in any sliding window (5000 per 300 s). A GCRA bucket
//! with burst `B` refilled at `R` per window admits up to `B + R` requests in
//! one window, so the quota is split between the two (`B + R + 1 <= quota
//! minus a margin`) instead of using a full-size bucket that would let
//! nearly twice the quota through. The margin absorbs requests arriving at
//! the server a little later than they leave here.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use governor::clock::Clock;
use governor::{
    Quota, RateLimiter, middleware::NoOpMiddleware, state::InMemoryState, state::NotKeyed,
};

use crate::config::RateLimitConfig;

/// governor clock on tokio's timer, so `tokio::time::pause()` drives the
/// limiter in tests exactly like it drives sleeps.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioClock;

impl Clock for TokioClock {
    type Instant = std::time::Instant;
    fn now(&self) -> Self::Instant {
        tokio::time::Instant::now().into_std()
    }
}

/// Share of the usable quota available as an immediate burst: a first
/// backfill gets through thousands of requests at once, the rest refills
/// steadily, and no sliding window ever exceeds the quota.
const BURST_PERCENT: u32 = 80;

pub struct Limiter {
    gcra: RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<std::time::Instant>>,
    /// Set from a 429's Retry-After: no request leaves before this instant.
    blocked_until: Mutex<Option<tokio::time::Instant>>,
    plan: QuotaPlan,
}

/// How a configured quota is split into burst and refill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaPlan {
    pub burst: u32,
    /// Cells refilled per window.
    pub refill: u32,
    pub window: Duration,
}

impl QuotaPlan {
    pub fn new(cfg: &RateLimitConfig) -> QuotaPlan {
        // Config guarantees at least 3 requests, the least that fits a burst,
        // a refill and the slack cell below.
        let usable = (cfg.requests as u64 * (100 - cfg.margin_percent as u64) / 100).max(3) as u32;
        // One cell of slack: a window whose both ends land exactly on a
        // refill instant sees one more refill than W/T.
        let usable = usable - 1;
        let burst = (usable * BURST_PERCENT / 100).max(1);
        let refill = (usable - burst).max(1);
        QuotaPlan {
            burst,
            refill,
            window: cfg.window,
        }
    }

    /// The most requests this plan admits in any window of its length.
    pub fn max_per_window(&self) -> u32 {
        self.burst + self.refill + 1
    }
}

impl Limiter {
    pub fn new(cfg: &RateLimitConfig) -> Limiter {
        let plan = QuotaPlan::new(cfg);
        let period = plan.window / plan.refill;
        let quota = Quota::with_period(period.max(Duration::from_nanos(1)))
            .expect("period is positive")
            .allow_burst(NonZeroU32::new(plan.burst).expect("burst is positive"));
        Limiter {
            gcra: RateLimiter::direct_with_clock(quota, TokioClock),
            blocked_until: Mutex::new(None),
            plan,
        }
    }

    pub fn plan(&self) -> QuotaPlan {
        self.plan
    }

    /// Waits until one more request may be sent.
    pub async fn acquire(&self) {
        loop {
            let blocked = *self.blocked_until.lock().expect("limiter lock");
            if let Some(until) = blocked
                && until > tokio::time::Instant::now()
            {
                tokio::time::sleep_until(until).await;
                continue;
            }
            match self.gcra.check() {
                Ok(()) => return,
                Err(not_until) => {
                    let wait = not_until.wait_time_from(TokioClock.now());
                    tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
                }
            }
        }
    }

    /// The instant a 429's Retry-After holds requests until, if any (it may
    /// be in the past). Lets callers show or bound the wait.
    pub fn blocked_until(&self) -> Option<tokio::time::Instant> {
        *self.blocked_until.lock().expect("limiter lock")
    }

    /// Blocks every request until `until` (a 429's Retry-After). Never
    /// shortens an existing block.
    pub fn block_until(&self, until: tokio::time::Instant) {
        let mut b = self.blocked_until.lock().expect("limiter lock");
        if b.is_none_or(|cur| cur < until) {
            *b = Some(until);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_never_exceeds_quota() {
        for requests in [3, 10, 50, 100, 5000, 100_000] {
            for margin_percent in [0, 2, 10] {
                let cfg = RateLimitConfig {
                    requests,
                    window: Duration::from_secs(300),
                    margin_percent,
                };
                let p = QuotaPlan::new(&cfg);
                assert!(
                    p.max_per_window() <= requests,
                    "{requests} {margin_percent}: {p:?}"
                );
                assert!(p.burst >= 1 && p.refill >= 1);
            }
        }
        let p = QuotaPlan::new(&RateLimitConfig::default());
        assert!(
            p.burst >= 3500,
            "a first backfill needs a large burst: {p:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn sliding_window_holds_under_paused_time() {
        let cfg = RateLimitConfig {
            requests: 50,
            window: Duration::from_secs(3),
            margin_percent: 2,
        };
        let limiter = Limiter::new(&cfg);
        let start = tokio::time::Instant::now();
        let mut times = Vec::new();
        for _ in 0..400 {
            limiter.acquire().await;
            times.push(start.elapsed());
        }
        let w = Duration::from_secs(3);
        let mut worst = 0;
        for (i, t) in times.iter().enumerate() {
            let n = times[i..].iter().take_while(|u| **u - *t <= w).count();
            worst = worst.max(n);
        }
        assert!(worst <= 50, "{worst} requests in one 3 s window");
        assert!(worst >= 40, "limiter far too strict: {worst}");
    }

    #[tokio::test(start_paused = true)]
    async fn block_until_holds_every_request() {
        let limiter = Limiter::new(&RateLimitConfig::default());
        let start = tokio::time::Instant::now();
        limiter.block_until(start + Duration::from_secs(7));
        limiter.block_until(start + Duration::from_secs(2));
        limiter.acquire().await;
        assert!(start.elapsed() >= Duration::from_secs(7));
    }
}
