//! The store as async code uses it: one handle whose every call runs on the
//! store's own thread, fed by a channel, so a commit waiting in SQLite's
//! busy handler for another process's write lock (up to the busy timeout)
//! never stalls timers, the webhook receiver or shutdown on the async
//! runtime. One thread owns the store, its connection and its page cache,
//! runs the calls in the order they were queued, and hands work over
//! without waking a pool thread per call. Code outside `store` reaches it
//! through the typed operations of the front door (`front.rs`).

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::mpsc;

use super::{AccountId, Store};

type Job = Box<dyn FnOnce(&mut Store) + Send>;

/// A handle acts for one account (see [`StoreHandle::for_account`]): every
/// call it runs sees the store set to that account, so the accounts of a
/// process share one thread and connection and none can act on another's
/// rows.
#[derive(Clone)]
pub struct StoreHandle {
    inner: Arc<Inner>,
    account: AccountId,
}

struct Inner {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The last handle waits for the calls already queued and for the thread to
/// let go of the store, so the connection closes (and checkpoints its WAL)
/// before the handle is gone, as it did when the handle owned it.
impl Drop for Inner {
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(t) = self.thread.take()
            && t.thread().id() != std::thread::current().id()
        {
            let _ = t.join();
        }
    }
}

impl StoreHandle {
    /// Starts the store's thread; it ends when the last handle is dropped.
    pub fn new(mut store: Store) -> StoreHandle {
        let (jobs, queue) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("ouradb-store".into())
            .spawn(move || {
                for job in queue {
                    job(&mut store);
                }
            })
            .expect("cannot start the store's thread: the system is out of threads or memory");
        StoreHandle {
            inner: Arc::new(Inner {
                jobs: Some(jobs),
                thread: Some(thread),
            }),
            account: AccountId::FIRST,
        }
    }

    /// The same store, acting for `account`.
    pub fn for_account(&self, account: AccountId) -> StoreHandle {
        StoreHandle {
            inner: Arc::clone(&self.inner),
            account,
        }
    }

    /// The account this handle acts for.
    pub fn account(&self) -> AccountId {
        self.account
    }

    /// Runs `f` with the store to itself on the store's thread. A
    /// transaction opened inside `f` ends inside it, so none spans an
    /// `.await`; if the caller is cancelled, `f` still runs to completion (a
    /// page either commits whole or not at all). A panic in `f` is raised
    /// again in the caller.
    pub(super) async fn run<T, F>(&self, f: F) -> T
    where
        F: FnOnce(&mut Store) -> T + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let account = self.account;
        // What the store logs (added columns, quarantine) keeps the
        // caller's span: in a household, the account's name.
        let span = tracing::Span::current();
        let job: Job = Box::new(move |s| {
            let _span = span.enter();
            s.use_account(account);
            // A cancelled caller has dropped `rx`; the work is done anyway.
            let _ = tx.send(std::panic::catch_unwind(AssertUnwindSafe(|| f(s))));
        });
        self.inner
            .jobs
            .as_ref()
            .and_then(|j| j.send(job).ok())
            .unwrap_or_else(|| panic!("the store's thread has stopped"));
        match rx.await {
            Ok(Ok(v)) => v,
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
            Err(_) => panic!("the store's thread dropped a call"),
        }
    }
}
