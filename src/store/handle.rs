//! The store as async code uses it: one handle whose every call runs on a
//! blocking thread, so a commit waiting in SQLite's busy handler for another
//! process's write lock (up to the busy timeout) never stalls timers, the
//! webhook receiver or shutdown on the async runtime. The mutex that
//! serialises calls is only ever locked on that blocking thread.

#[allow(clippy::disallowed_types, reason = "locked only on blocking threads")]
use std::sync::{Arc, Mutex};

use super::Store;

#[derive(Clone)]
pub struct StoreHandle {
    #[allow(clippy::disallowed_types, reason = "locked only on blocking threads")]
    store: Arc<Mutex<Store>>,
}

impl StoreHandle {
    pub fn new(store: Store) -> StoreHandle {
        StoreHandle {
            #[allow(clippy::disallowed_types, reason = "locked only on blocking threads")]
            store: Arc::new(Mutex::new(store)),
        }
    }

    /// Runs `f` with the store to itself on a blocking thread. A transaction
    /// opened inside `f` ends inside it, so none spans an `.await`; if the
    /// caller is cancelled, `f` still runs to completion (a page either
    /// commits whole or not at all).
    pub async fn run<T, F>(&self, f: F) -> T
    where
        F: FnOnce(&mut Store) -> T + Send + 'static,
        T: Send + 'static,
    {
        let store = self.store.clone();
        let task = tokio::task::spawn_blocking(move || {
            let mut guard = store.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut guard)
        });
        match task.await {
            Ok(v) => v,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Only a runtime that is shutting down drops a blocking task.
            Err(e) => panic!("store call abandoned by a stopping runtime: {e}"),
        }
    }

    /// Runs `f` on the calling thread: for synchronous code outside the
    /// runtime (CLI commands after a sync, tests).
    pub fn blocking<T>(&self, f: impl FnOnce(&mut Store) -> T) -> T {
        let mut guard = self.store.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }
}
