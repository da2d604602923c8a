//! Oura's two request quotas: one per access token and one per application
//! across all of its tokens (every user who signed in to it). Both are
//! sliding windows; a request is admitted only when both have room, and only
//! admitted requests take room.
//!
//! The application of an OAuth-issued token is its client id. Personal access
//! tokens belong to no OAuth application; the simulator counts all of them
//! against one shared application, [`Application::PersonalTokens`], so a
//! household with several tokens meets the same ceiling as with one app.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::SimConfig;

/// What a request's quota is counted against besides its token.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Application {
    /// Every personal access token of the server, together.
    PersonalTokens,
    /// The OAuth application with this client id.
    Client(String),
}

/// Why a request was answered 429.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimitCause {
    /// The token's own quota ([`SimConfig::rate_limit`]).
    Token,
    /// The application's quota ([`SimConfig::app_rate_limit`]).
    Application,
    /// An injected burst of 429s ([`crate::Faults::burst_429`]).
    Injected,
}

impl RateLimitCause {
    fn slot(self) -> usize {
        self as usize
    }
}

/// A refused request: why, when to try again, and the quota it hit.
pub(crate) struct Refusal {
    pub(crate) retry_after: u64,
    pub(crate) limit: u32,
    pub(crate) window: Duration,
}

/// The request windows of every token and application.
#[derive(Default)]
pub(crate) struct Limits {
    tokens: Mutex<HashMap<String, VecDeque<Instant>>>,
    apps: Mutex<HashMap<Application, VecDeque<Instant>>>,
    refused: [AtomicU64; 3],
}

/// Drops the instants that left the window; when the window is full, the
/// whole seconds until its oldest request leaves it (at least 1).
fn full_for(q: &mut VecDeque<Instant>, now: Instant, limit: u32, window: Duration) -> Option<u64> {
    while q.front().is_some_and(|t| now.duration_since(*t) >= window) {
        q.pop_front();
    }
    if q.len() < limit as usize {
        return None;
    }
    let wait = match q.front() {
        Some(oldest) => window.saturating_sub(now.duration_since(*oldest)),
        // A limit of 0 admits nothing, ever.
        None => window,
    };
    Some((wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1))
}

impl Limits {
    /// Admits a request of `token` (of `app`) at `now`, or says which quota
    /// refuses it. On admission, returns how many requests the token has
    /// left in its window.
    pub(crate) fn admit(
        &self,
        cfg: &SimConfig,
        token: &str,
        app: &Application,
        now: Instant,
    ) -> Result<u64, Refusal> {
        // Always tokens, then apps: one lock order.
        let mut tokens = self.tokens.lock().unwrap();
        let tq = tokens.entry(token.to_owned()).or_default();
        if let Some(secs) = full_for(tq, now, cfg.rate_limit, cfg.rate_window) {
            self.count(RateLimitCause::Token);
            return Err(Refusal {
                retry_after: secs,
                limit: cfg.rate_limit,
                window: cfg.rate_window,
            });
        }
        let mut apps = self.apps.lock().unwrap();
        let aq = apps.entry(app.clone()).or_default();
        if let Some(secs) = full_for(aq, now, cfg.app_rate_limit, cfg.app_rate_window) {
            self.count(RateLimitCause::Application);
            return Err(Refusal {
                retry_after: secs,
                limit: cfg.app_rate_limit,
                window: cfg.app_rate_window,
            });
        }
        aq.push_back(now);
        tq.push_back(now);
        Ok((cfg.rate_limit as usize).saturating_sub(tq.len()) as u64)
    }

    pub(crate) fn count(&self, cause: RateLimitCause) {
        self.refused[cause.slot()].fetch_add(1, Ordering::SeqCst);
    }

    /// 429s answered for `cause` so far.
    pub(crate) fn refused(&self, cause: RateLimitCause) -> u64 {
        self.refused[cause.slot()].load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_application_window_is_shared_and_refusals_take_no_room() {
        let mut cfg = SimConfig::new(7, 3, jiff::civil::date(2024, 6, 30));
        cfg.rate_limit = 3;
        cfg.app_rate_limit = 4;
        cfg.app_rate_window = Duration::from_secs(10);
        let l = Limits::default();
        let app = Application::Client("c".into());
        let t0 = Instant::now();
        assert_eq!(l.admit(&cfg, "a", &app, t0).ok(), Some(2));
        assert_eq!(l.admit(&cfg, "a", &app, t0).ok(), Some(1));
        assert_eq!(l.admit(&cfg, "b", &app, t0).ok(), Some(2));
        assert_eq!(l.admit(&cfg, "b", &app, t0).ok(), Some(1));
        let r = l.admit(&cfg, "b", &app, t0 + Duration::from_millis(1500));
        let r = r.expect_err("application full");
        assert_eq!((r.retry_after, r.limit), (9, 4));
        assert_eq!(l.refused(RateLimitCause::Application), 1);
        // Another application has its own window.
        let other = Application::PersonalTokens;
        assert!(l.admit(&cfg, "c", &other, t0).is_ok());
        // The refusal took no room in b's window.
        let later = t0 + Duration::from_secs(10);
        assert_eq!(l.admit(&cfg, "b", &app, later).ok(), Some(0));
    }
}
