//! The store's front door: every operation code outside `store` asks of a
//! running store, typed, each run on the store's own thread and connection
//! (see [`StoreHandle`]). Callers hand over owned values and get results
//! back; none of them sees a `Store`, a connection or a transaction, so a
//! second storage engine can stand behind the same door.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use jiff::Timestamp;
use jiff::civil::Date;

use super::{
    Account, AccountId, Claim, CursorAdvance, Documents, PageCommit, QuarantineSummary, StoreError,
    StoreHandle, StoredSubscription, SyncState, Vanished, WebhookEventRecord, WriteCounts,
};
use crate::error_kind::ErrorKind;
use crate::registry::DataType;
use crate::rows::{Document, RawRows, Undecodable};

/// One fetched page of a window, owned, as the sync engine hands it over.
pub struct WindowPage {
    pub documents: Vec<Document>,
    /// Documents that could not be decoded: quarantined with their bytes.
    pub undecodable: Vec<Undecodable>,
    /// Time-series rows read field by field (see `Store::commit_page_rows`).
    pub rows: RawRows,
    /// On a window's last page, the keys of every document it returned.
    pub vanished: Option<WindowIds>,
    pub cursor: PageCursor,
    /// Requests spent on this page, retries included.
    pub requests: u32,
    pub at: Timestamp,
}

impl WindowPage {
    /// A page without documents that moves the cursor by `cursor`.
    pub fn empty(cursor: CursorAdvance, at: Timestamp) -> WindowPage {
        WindowPage {
            documents: Vec::new(),
            undecodable: Vec::new(),
            rows: RawRows::default(),
            vanished: None,
            cursor: PageCursor::Fixed(cursor),
            requests: 0,
            at,
        }
    }
}

/// The documents a whole window returned, for the deletion rule (see
/// [`Vanished`]).
pub struct WindowIds {
    pub first_day: Date,
    pub last_day: Date,
    pub seen_ids: HashSet<String>,
    pub complete: bool,
}

/// Where a page's cursor comes from.
pub enum PageCursor {
    Fixed(CursorAdvance),
    /// Decided on the store's thread at the moment the page commits, in the
    /// order commits happen (a backfill floor that moves over a window only
    /// once every window above it is stored).
    AtCommit(Box<dyn CursorAtCommit>),
}

/// A cursor decided at commit time. `commit` runs `write` once with the
/// cursor as it stands now and records the outcome before any other page
/// decides its own: `write` is the page's transaction.
pub trait CursorAtCommit: Send {
    fn commit(
        &mut self,
        write: &mut dyn FnMut(CursorAdvance) -> Result<WriteCounts, StoreError>,
    ) -> Result<WriteCounts, StoreError>;
}

/// What `status` and the metrics read of one account.
pub struct Holdings {
    pub states: Vec<SyncState>,
    pub quarantined: Vec<QuarantineSummary>,
    pub pending: HashMap<String, i64>,
}

impl StoreHandle {
    /// Commits one page of a window with its bookkeeping in one transaction.
    pub async fn commit_window_page(
        &self,
        dt: &'static DataType,
        page: WindowPage,
    ) -> Result<WriteCounts, StoreError> {
        self.run(move |s| {
            let WindowPage {
                documents,
                undecodable,
                rows,
                vanished,
                mut cursor,
                requests,
                at,
            } = page;
            let mut write = |cursor: CursorAdvance| {
                let commit = PageCommit {
                    documents: Documents::Received {
                        decoded: &documents,
                        undecodable: &undecodable,
                    },
                    vanished: vanished.as_ref().map(|v| Vanished {
                        first_day: v.first_day,
                        last_day: v.last_day,
                        seen_ids: &v.seen_ids,
                        complete: v.complete,
                    }),
                    cursor,
                    requests,
                    at,
                };
                crate::metrics::live().time_commit(|| s.commit_page_rows(dt, &commit, &rows))
            };
            match &mut cursor {
                PageCursor::Fixed(c) => write(c.clone()),
                PageCursor::AtCommit(decide) => decide.commit(&mut write),
            }
        })
        .await
    }

    /// Stores one document fetched on its own (a webhook's), or
    /// quarantines it when it could not be decoded; moves no cursor.
    pub async fn store_document(
        &self,
        dt: &'static DataType,
        doc: Result<Document, Undecodable>,
        requests: u32,
        at: Timestamp,
    ) -> Result<WriteCounts, StoreError> {
        let (documents, undecodable) = match doc {
            Ok(d) => (vec![d], vec![]),
            Err(u) => (vec![], vec![u]),
        };
        let page = WindowPage {
            documents,
            undecodable,
            requests,
            ..WindowPage::empty(CursorAdvance::default(), at)
        };
        self.commit_window_page(dt, page).await
    }

    /// Moves `dt`'s cursor alone, as a page without documents would.
    pub async fn advance_cursor(
        &self,
        dt: &'static DataType,
        cursor: CursorAdvance,
        at: Timestamp,
    ) -> Result<WriteCounts, StoreError> {
        self.commit_window_page(dt, WindowPage::empty(cursor, at))
            .await
    }

    pub async fn delete_document(
        &self,
        dt: &'static DataType,
        id: String,
    ) -> Result<bool, StoreError> {
        self.run(move |s| s.delete_document(dt, &id)).await
    }

    pub async fn sync_state(&self, dt: &'static DataType) -> Result<SyncState, StoreError> {
        self.run(move |s| s.sync_state(dt)).await
    }

    pub async fn all_sync_states(&self) -> Result<Vec<SyncState>, StoreError> {
        self.run(|s| s.all_sync_states()).await
    }

    /// The account's cursors, quarantine and pending removals, read together.
    pub async fn holdings(&self) -> Result<Holdings, StoreError> {
        self.run(|s| {
            Ok(Holdings {
                states: s.all_sync_states()?,
                quarantined: s.quarantine_summary()?,
                pending: s.pending_removals()?,
            })
        })
        .await
    }

    pub async fn record_attempt(
        &self,
        dt: &'static DataType,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        self.run(move |s| s.record_attempt(dt, at)).await
    }

    pub async fn record_failure(
        &self,
        dt: &'static DataType,
        kind: ErrorKind,
        message: String,
        requests: u32,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        self.run(move |s| s.record_failure(dt, kind, &message, requests, at))
            .await
    }

    pub async fn reopen_backfill(&self, dt: &'static DataType) -> Result<(), StoreError> {
        self.run(move |s| s.reopen_backfill(dt)).await
    }

    pub async fn set_next_run(
        &self,
        dt: &'static DataType,
        at: Option<Timestamp>,
    ) -> Result<(), StoreError> {
        self.run(move |s| s.set_next_run(dt, at)).await
    }

    pub async fn pending_removal_days(
        &self,
        dt: &'static DataType,
    ) -> Result<Vec<Date>, StoreError> {
        self.run(move |s| s.pending_removal_days(dt)).await
    }

    pub async fn history_start_times(
        &self,
        dt: &'static DataType,
    ) -> Result<Vec<Option<String>>, StoreError> {
        self.run(move |s| s.history_start_times(dt)).await
    }

    pub async fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        self.run(|s| s.accounts()).await
    }

    pub async fn add_account(&self, name: String, at: Timestamp) -> Result<AccountId, StoreError> {
        self.run(move |s| s.add_account(&name, at)).await
    }

    /// Records the Oura user of this handle's account (see
    /// `Store::record_oura_user`), with the account's name.
    pub async fn claim_oura_user(&self) -> Result<(Option<Claim>, String), StoreError> {
        let me = self.account();
        self.run(move |s| {
            let claim = s.record_oura_user()?;
            let mine = s.accounts()?.into_iter().find(|a| a.id == me);
            Ok((claim, mine.map(|a| a.name).unwrap_or_default()))
        })
        .await
    }

    pub async fn record_webhook_event(
        &self,
        record: WebhookEventRecord,
        keep_since: Timestamp,
    ) -> Result<(), StoreError> {
        self.run(move |s| s.record_webhook_event(&record, keep_since))
            .await
    }

    /// Records each of `records`; the errors of those that could not be.
    pub async fn record_webhook_events(
        &self,
        records: Vec<WebhookEventRecord>,
        keep_since: Timestamp,
    ) -> Vec<StoreError> {
        self.run(move |s| {
            records
                .iter()
                .filter_map(|r| s.record_webhook_event(r, keep_since).err())
                .collect()
        })
        .await
    }

    pub async fn pending_webhook_events(&self) -> Result<Vec<WebhookEventRecord>, StoreError> {
        self.run(|s| s.pending_webhook_events()).await
    }

    pub async fn webhook_signatures_since(
        &self,
        since: Timestamp,
    ) -> Result<Vec<String>, StoreError> {
        self.run(move |s| s.webhook_signatures_since(since)).await
    }

    pub async fn replace_webhook_subscriptions(
        &self,
        callback_url: String,
        rows: Vec<StoredSubscription>,
    ) -> Result<(), StoreError> {
        self.run(move |s| s.replace_webhook_subscriptions(&callback_url, &rows))
            .await
    }

    pub async fn webhook_subscriptions(&self) -> Result<Vec<StoredSubscription>, StoreError> {
        self.run(|s| s.webhook_subscriptions()).await
    }

    /// Grows the cache for a run (`run`) or gives it back, deciding on the
    /// store's thread, where calls run in order, whether runs are in flight
    /// (`in_flight`): a run that started while this call was queued keeps
    /// its large cache. Whether the cache changed.
    pub async fn fit_cache(
        &self,
        run: bool,
        in_flight: Arc<AtomicUsize>,
    ) -> Result<bool, StoreError> {
        self.run(move |s| {
            let busy = in_flight.load(Ordering::SeqCst) > 0;
            match (run, busy) {
                (true, true) => s.prepare_for_run().map(|()| true),
                (false, false) => s.release_memory().map(|()| true),
                _ => Ok(false),
            }
        })
        .await
    }

    /// The page cache's size, KiB.
    pub async fn cache_kib(&self) -> Result<i64, StoreError> {
        self.run(|s| s.cache_kib()).await
    }

    /// Holds the store's thread from when it tells `held` until `release`
    /// says so or is dropped: what a slow disk does to the rest (tests).
    #[cfg(feature = "failpoints")]
    pub async fn hold(
        &self,
        held: tokio::sync::oneshot::Sender<()>,
        release: std::sync::mpsc::Receiver<()>,
    ) {
        self.run(move |_| {
            let _ = held.send(());
            let _ = release.recv();
        })
        .await
    }

    /// Queues a call that never returns, stopping the store's thread: the
    /// failpoint that shows the watchdog a wedged store.
    #[cfg(feature = "failpoints")]
    pub fn wedge(&self) {
        let wedge = self.run(|_| {
            loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
        });
        // Polled once, which queues the call, and not awaited.
        let _ = futures::FutureExt::now_or_never(wedge);
    }
}
