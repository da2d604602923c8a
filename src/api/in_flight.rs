//! The cap on data requests in flight (`sync.max_in_flight`), shared by
//! every request of the process: sync jobs of every type, retries and
//! webhook fetches. A request holds a permit from before the limiter until
//! its body is read, so the server never sees more at once. A sync page
//! then keeps a place until it is stored (`DocumentsPage::place`): one of
//! as many page places as the cap, else its request's own permit. So at
//! most twice the cap of pages are fetched and not yet stored; pages
//! fetched faster than the one store thread writes them wait as requests
//! not yet sent rather than piling up in memory, while a page waiting a
//! moment for the store does not hold a request back.
//!
//! Waiting requests are served by [`Priority`], then in arrival order: when
//! the cap binds, caught-up types' incremental runs go first, then a first
//! sync's recent days, then the daily types' history, then the time
//! series' bulk, and since a permit is taken before the
//! limiter's slot, the same order holds when the quota binds (at most
//! `max_in_flight` requests wait on the limiter at once).
//!
//! A request's priority comes from the task it runs in ([`at_priority`]),
//! so the client's signature does not carry it; a request outside any
//! scope (a webhook fetch) is [`Priority::Recent`].

use std::collections::{BTreeSet, HashSet};
use std::future::Future;
#[allow(clippy::disallowed_types, reason = "never held across an .await")]
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

pub use crate::registry::Priority;

tokio::task_local! {
    static PRIORITY: Priority;
}

/// Runs `f` with its requests ranked at `p`.
pub async fn at_priority<F: Future>(p: Priority, f: F) -> F::Output {
    PRIORITY.scope(p, f).await
}

/// The priority of requests made by the current task.
pub fn current_priority() -> Priority {
    PRIORITY.try_with(|p| *p).unwrap_or(Priority::Recent)
}

/// A counting semaphore whose waiters are served by priority.
#[derive(Clone)]
pub struct InFlight {
    inner: Arc<Inner>,
}

struct Inner {
    cap: usize,
    #[allow(clippy::disallowed_types, reason = "never held across an .await")]
    state: Mutex<State>,
    /// Woken whenever a permit is handed to a waiter.
    handed: Notify,
}

#[derive(Default)]
struct State {
    free: usize,
    /// Places for pages fetched and not yet stored ([`Permit::into_page`]).
    pages_free: usize,
    /// Waiters by (priority, arrival).
    queue: BTreeSet<(Priority, u64)>,
    /// Waiters a permit was handed to, not yet woken.
    granted: HashSet<u64>,
    next: u64,
}

/// One request's place in flight, or a fetched page's place
/// ([`Permit::into_page`]); given back when dropped.
pub struct Permit {
    inner: Arc<Inner>,
    page: bool,
}

impl std::fmt::Debug for Permit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Permit")
    }
}

impl InFlight {
    /// At most `cap` permits out at once (at least one).
    pub fn new(cap: usize) -> InFlight {
        let cap = cap.max(1);
        #[allow(clippy::disallowed_types, reason = "never held across an .await")]
        InFlight {
            inner: Arc::new(Inner {
                cap,
                state: Mutex::new(State {
                    free: cap,
                    pages_free: cap,
                    ..State::default()
                }),
                handed: Notify::new(),
            }),
        }
    }

    pub fn cap(&self) -> usize {
        self.inner.cap
    }

    /// Waits for a permit at the current task's priority.
    pub async fn acquire(&self) -> Permit {
        self.acquire_at(current_priority()).await
    }

    /// Waits for a permit; waiters of a lower [`Priority`] go first, equals
    /// in arrival order. Cancel-safe: a waiter dropped after a permit was
    /// handed to it passes the permit on.
    pub async fn acquire_at(&self, p: Priority) -> Permit {
        let seq = {
            let mut s = self.inner.lock();
            if s.free > 0 && s.queue.is_empty() {
                s.free -= 1;
                return self.permit();
            }
            let seq = s.next;
            s.next += 1;
            s.queue.insert((p, seq));
            seq
        };
        let mut waiter = Waiter {
            inner: &self.inner,
            key: (p, seq),
            done: false,
        };
        loop {
            // Created before the check, so a hand-over between the check
            // and the await still wakes this waiter.
            let handed = self.inner.handed.notified();
            if self.inner.lock().granted.remove(&seq) {
                waiter.done = true;
                return self.permit();
            }
            handed.await;
        }
    }

    /// Permits out now (for tests and diagnostics).
    pub fn in_use(&self) -> usize {
        self.inner.cap - self.inner.lock().free
    }

    fn permit(&self) -> Permit {
        Permit {
            inner: self.inner.clone(),
            page: false,
        }
    }
}

impl Permit {
    /// The place of the page this request fetched, until it is stored: a
    /// page place when one is free, the request's place going back to the
    /// requests at once; else this request's place, kept.
    pub fn into_page(mut self) -> Permit {
        if self.page {
            return self;
        }
        let took = {
            let mut s = self.inner.lock();
            let free = s.pages_free > 0;
            if free {
                s.pages_free -= 1;
            }
            free
        };
        if took {
            self.inner.release();
            self.page = true;
        }
        self
    }
}

impl Inner {
    #[allow(clippy::disallowed_types, reason = "never held across an .await")]
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A permit came back: to the first waiter, else to the pool.
    fn release(&self) {
        let mut s = self.lock();
        match s.queue.pop_first() {
            Some((_, seq)) => {
                s.granted.insert(seq);
                drop(s);
                self.handed.notify_waiters();
            }
            None => s.free += 1,
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        match self.page {
            true => self.inner.lock().pages_free += 1,
            false => self.inner.release(),
        }
    }
}

/// A queued acquire; leaves the queue (or passes on a permit handed to it)
/// when cancelled.
struct Waiter<'a> {
    inner: &'a Inner,
    key: (Priority, u64),
    done: bool,
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut s = self.inner.lock();
        if !s.queue.remove(&self.key) && s.granted.remove(&self.key.1) {
            drop(s);
            self.inner.release();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Starts a task that waits for a permit at `p`, records `name` when it
    /// gets one and holds it for a second.
    fn request(
        gate: &InFlight,
        p: Priority,
        name: &'static str,
        order: &Arc<tokio::sync::Mutex<Vec<&'static str>>>,
    ) -> tokio::task::JoinHandle<()> {
        let (gate, order) = (gate.clone(), order.clone());
        tokio::spawn(async move {
            let _permit = at_priority(p, gate.acquire()).await;
            order.lock().await.push(name);
            tokio::time::sleep(Duration::from_secs(1)).await;
        })
    }

    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn waiters_are_served_recent_first_then_in_arrival_order() {
        let gate = InFlight::new(2);
        let order = Arc::new(tokio::sync::Mutex::new(Vec::new()));
        let mut tasks = vec![
            request(&gate, Priority::BulkHistory, "bulk-1", &order),
            request(&gate, Priority::BulkHistory, "bulk-2", &order),
        ];
        settle().await;
        assert_eq!(gate.in_use(), 2);
        // Queued while the cap binds, old history first.
        for (p, name) in [
            (Priority::BulkHistory, "bulk-3"),
            (Priority::BulkHistory, "bulk-4"),
            (Priority::History, "daily-1"),
            (Priority::CatchUp, "new-1"),
            (Priority::Recent, "recent-1"),
            (Priority::History, "daily-2"),
            (Priority::CatchUp, "new-2"),
            (Priority::Recent, "recent-2"),
        ] {
            tasks.push(request(&gate, p, name, &order));
            settle().await;
        }
        assert_eq!(gate.in_use(), 2, "never more than the cap");
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(
            *order.lock().await,
            [
                "bulk-1", "bulk-2", "recent-1", "recent-2", "new-1", "new-2", "daily-1", "daily-2",
                "bulk-3", "bulk-4"
            ]
        );
        assert_eq!(gate.in_use(), 0);
    }

    /// A fetched page takes a page place and gives its request's place
    /// back; with the page places taken, it keeps its request's place.
    #[tokio::test(start_paused = true)]
    async fn pages_take_page_places_then_keep_their_requests() {
        let gate = InFlight::new(2);
        let first = gate.acquire().await.into_page();
        let second = gate.acquire().await.into_page();
        assert_eq!(gate.in_use(), 0, "two pages, both in page places");
        let third = gate.acquire().await.into_page();
        let fourth = gate.acquire().await.into_page();
        assert_eq!(gate.in_use(), 2, "the page places are taken");
        let waiting = tokio::time::timeout(Duration::from_millis(10), gate.acquire()).await;
        assert!(waiting.is_err(), "four pages held: no request may go");
        drop(first);
        assert_eq!(gate.in_use(), 2, "a page place is no request place");
        drop(third);
        assert_eq!(gate.in_use(), 1);
        drop((second, fourth));
        assert_eq!(gate.in_use(), 0);
        let again = gate.acquire().await.into_page();
        assert_eq!(gate.in_use(), 0, "the page places came back");
        drop(again);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_waiter_gives_its_place_and_a_handed_permit_back() {
        let gate = InFlight::new(1);
        let held = gate.acquire_at(Priority::Recent).await;
        // Queued, then cancelled before its turn.
        let early =
            tokio::time::timeout(Duration::from_millis(10), gate.acquire_at(Priority::Recent))
                .await;
        assert!(early.is_err());
        // Handed a permit, then dropped before it woke to take it.
        let mut late = Box::pin(gate.acquire_at(Priority::Recent));
        assert!(futures::poll!(late.as_mut()).is_pending());
        drop(held);
        drop(late);
        assert_eq!(gate.in_use(), 0, "the handed permit came back");
        let _again = tokio::time::timeout(Duration::from_millis(10), gate.acquire())
            .await
            .expect("free again");
        assert_eq!(gate.in_use(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn interbeat_requests_yield_to_every_other_types_requests() {
        use crate::registry::{DATA_TYPES, find};
        let ibi = find("interbeat_interval").unwrap();
        let gate = InFlight::new(1);
        let order = Arc::new(tokio::sync::Mutex::new(Vec::new()));
        let mut tasks = vec![request(&gate, Priority::Recent, "holder", &order)];
        settle().await;
        // Interbeat's incremental and backfill requests queue first...
        for p in [
            ibi.backfill_priority.of_recent_requests(true),
            ibi.backfill_priority,
        ] {
            tasks.push(request(&gate, p, "interbeat", &order));
            settle().await;
        }
        // ...then one backfill and one incremental request of every other type.
        for d in DATA_TYPES.iter().filter(|d| d.name != ibi.name) {
            for p in [
                d.backfill_priority,
                d.backfill_priority.of_recent_requests(true),
            ] {
                tasks.push(request(&gate, p, d.name, &order));
                settle().await;
            }
        }
        for t in tasks {
            t.await.unwrap();
        }
        let order = order.lock().await;
        let first_ibi = order.iter().position(|n| *n == "interbeat").unwrap();
        assert_eq!(first_ibi, order.len() - 2, "{order:?}");
        assert_eq!(order[order.len() - 1], "interbeat");
    }
}
