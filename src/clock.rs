//! Wall-clock time: the one place that reads the system time.
//!
//! Code that can be handed a [`Clock`] (the sync engine, the webhook receiver
//! and worker) asks it, so tests run them on the simulator's clock; code
//! that cannot calls [`now`]. `Timestamp::now` is banned everywhere else by
//! `clippy.toml`.

use std::sync::Arc;

use jiff::Timestamp;

/// An injected wall clock.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// The current system time.
#[allow(
    clippy::disallowed_methods,
    reason = "the single place that reads the system time"
)]
pub fn now() -> Timestamp {
    Timestamp::now()
}

/// The real clock, for code that takes a [`Clock`].
pub fn system() -> Clock {
    Arc::new(now)
}
