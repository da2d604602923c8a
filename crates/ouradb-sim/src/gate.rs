//! A meter on the data requests the server answers, for tests that must
//! act at a point inside a client's run however fast or slow the machine
//! is: while held, each data request waits for a permit the test hands out
//! ([`crate::SimServer::allow_requests`]), so the client cannot get ahead
//! of the test, nor finish, between two of its steps.

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Semaphore;

/// Permits given on release: more than any run asks for, so nothing waits.
const RELEASED: usize = 1 << 30;

pub(crate) struct Gate {
    held: AtomicBool,
    permits: Semaphore,
}

impl Gate {
    pub(crate) fn open() -> Gate {
        Gate {
            held: AtomicBool::new(false),
            permits: Semaphore::new(0),
        }
    }

    /// Waits for a permit while the gate is held.
    pub(crate) async fn pass(&self) {
        if !self.held.load(Ordering::SeqCst) {
            return;
        }
        if let Ok(permit) = self.permits.acquire().await {
            permit.forget();
        }
    }

    pub(crate) fn hold(&self) {
        self.held.store(true, Ordering::SeqCst);
    }

    pub(crate) fn allow(&self, n: usize) {
        self.permits.add_permits(n);
    }

    pub(crate) fn release(&self) {
        self.held.store(false, Ordering::SeqCst);
        self.permits.add_permits(RELEASED);
    }
}
