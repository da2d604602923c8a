//! The sync engine: runs each data type's incremental and backfill jobs,
//! driven by the registry, committing every page with its cursor.

use std::collections::{HashMap, HashSet};
#[allow(clippy::disallowed_types, reason = "never held across an .await")]
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use jiff::civil::Date;

use super::plan::{self, FloorLedger, Window};
use crate::api::in_flight::{self, Priority};
use crate::api::{ApiError, Client, DocumentsPage, PageQuery};
use crate::config::Config;
use crate::error_kind::ErrorKind;
use crate::registry::{self, DataType, QueryStyle};
use crate::store::{
    CursorAdvance, CursorAtCommit, PageCursor, StoreError, StoreHandle, SyncState, WindowIds,
    WindowPage, WriteCounts,
};

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("{data_type}: {source}{advice}")]
    Store {
        data_type: String,
        source: StoreError,
        /// "; " and what to do about this class of error, or "" when the
        /// source already says it.
        advice: String,
    },
}

impl SyncError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            SyncError::Api(e) => e.kind(),
            SyncError::Store { source, .. } => ErrorKind::Store(source.class()),
        }
    }

    /// A store error with the advice for its class on the file at `path`.
    pub fn store(dt: &DataType, source: StoreError, path: &std::path::Path) -> SyncError {
        let advice = match &source {
            StoreError::File(_) | StoreError::Refused(_) => String::new(),
            other => {
                let a = crate::store::error::advice(other.class(), path);
                if a.is_empty() { a } else { format!("; {a}") }
            }
        };
        SyncError::Store {
            data_type: dt.name.into(),
            source,
            advice,
        }
    }
}

/// What a run asks of each data type.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Re-fetch from this day instead of the cursor minus lookback.
    pub since: Option<Date>,
    /// Also run the backfill job while the type's backfill is incomplete.
    pub backfill: bool,
}

/// The outcome of one data type's run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TypeReport {
    pub data_type: &'static str,
    pub counts: WriteCounts,
    pub requests: u32,
    /// Requests not covered by a committed page (failed, retried, or the
    /// page that ran into the error); recorded with the failure.
    #[serde(skip)]
    pub uncommitted_requests: u32,
    pub error: Option<String>,
    pub error_kind: Option<ErrorKind>,
    /// Another run of this type was in progress, so this one did nothing.
    pub skipped_busy: bool,
    /// Milliseconds from the start of [`SyncEngine::run`] until this type
    /// was done (0 outside `run`): when a slow type (interbeat intervals)
    /// shares a run, shows whether the others finished as early as alone.
    pub finished_after_ms: u64,
}

/// What one window cost and wrote, added to its type's report.
#[derive(Debug, Clone, Copy, Default)]
struct Tally {
    counts: WriteCounts,
    requests: u32,
    uncommitted_requests: u32,
}

impl TypeReport {
    fn add(&mut self, t: Tally) {
        self.counts += t.counts;
        self.requests += t.requests;
        self.uncommitted_requests += t.uncommitted_requests;
    }
}

/// What a window's last page commits besides its documents.
#[derive(Clone)]
enum WindowCursor {
    Fixed(CursorAdvance),
    /// A backfill window among others of its type in flight: the floor
    /// moves over it once every window above it is stored. Decided on the
    /// store's thread, in the order commits happen.
    #[allow(clippy::disallowed_types, reason = "locked only inside store calls")]
    Backfill(Arc<Mutex<FloorLedger>>),
}

/// The cursor of a backfill window's last page, decided as it commits:
/// the floor moves over every window stored so far, this one included
/// once it is, and the ledger stays locked until then so that no other
/// window's page decides its floor in between.
struct BackfillCursor {
    #[allow(clippy::disallowed_types, reason = "locked only inside store calls")]
    ledger: Arc<Mutex<FloorLedger>>,
    window: Window,
}

impl CursorAtCommit for BackfillCursor {
    fn commit(
        &mut self,
        write: &mut dyn FnMut(CursorAdvance) -> Result<WriteCounts, StoreError>,
    ) -> Result<WriteCounts, StoreError> {
        let mut ledger = self.ledger.lock().unwrap_or_else(|p| p.into_inner());
        let floor = ledger.floor_after(self.window);
        let counts = write(CursorAdvance {
            backfill_floor: floor,
            backfill_complete: floor.is_some_and(|f| ledger.reaches_start(f)),
            window_done: true,
            ..Default::default()
        })?;
        ledger.finished(self.window);
        Ok(counts)
    }
}

/// Progress notifications for bars and logs.
pub trait Observer: Send + Sync {
    fn started(&self, _dt: &'static DataType, _total_days: u64) {}
    fn advanced(&self, _dt: &'static DataType, _days: u64, _docs: u64) {}
    fn finished(&self, _report: &TypeReport) {}
}

pub struct NoObserver;
impl Observer for NoObserver {}

pub use crate::clock::Clock;

pub struct SyncEngine {
    client: Arc<Client>,
    store: StoreHandle,
    config: Arc<Config>,
    clock: Clock,
    /// One run per type at a time: a second run finds it taken and skips.
    running: HashMap<&'static str, tokio::sync::Mutex<()>>,
    /// Held by a run for its whole duration and by each webhook apply, so
    /// a webhook's document is never written into (and then swept out of)
    /// a window a run is in the middle of.
    writes: HashMap<&'static str, tokio::sync::Mutex<()>>,
    /// Types refused for a missing scope, with the grant that refused them:
    /// they are not asked again until the grant changes (no retry storm).
    #[allow(clippy::disallowed_types, reason = "never held across an .await")]
    scope_skips: Mutex<HashMap<&'static str, Option<String>>>,
}

impl SyncEngine {
    pub fn new(client: Arc<Client>, store: StoreHandle, config: Arc<Config>, clock: Clock) -> Self {
        let locks = || {
            registry::DATA_TYPES
                .iter()
                .map(|d| (d.name, tokio::sync::Mutex::new(())))
                .collect()
        };
        SyncEngine {
            client,
            store,
            config,
            clock,
            running: locks(),
            writes: locks(),
            #[allow(clippy::disallowed_types, reason = "never held across an .await")]
            scope_skips: Mutex::default(),
        }
    }

    pub fn store(&self) -> &StoreHandle {
        &self.store
    }

    /// Waits until no run of `dt` is in progress and keeps others out while
    /// the guard lives (webhook applies).
    pub async fn lock_writes(&self, dt: &DataType) -> tokio::sync::MutexGuard<'_, ()> {
        self.writes[dt.name].lock().await
    }

    pub fn client(&self) -> &Arc<Client> {
        &self.client
    }

    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    /// The name of the account this engine syncs (`default` for a config
    /// without `[[account]]`).
    pub fn account_name(&self) -> &str {
        self.config.accounts.first().map_or("", |a| a.name.as_str())
    }

    /// The engine's clock's time.
    pub fn now(&self) -> jiff::Timestamp {
        (self.clock)()
    }

    pub fn today(&self) -> Date {
        (self.clock)().to_zoned(jiff::tz::TimeZone::UTC).date()
    }

    /// Runs `types` (metadata first, the rest concurrently).
    pub async fn run(
        &self,
        types: &[&'static DataType],
        opts: RunOptions,
        observer: &dyn Observer,
    ) -> Vec<TypeReport> {
        let (meta, rest): (Vec<_>, Vec<_>) = types
            .iter()
            .copied()
            .partition(|d| !d.has_history() || d.history_start.is_some());
        let mut reports = Vec::with_capacity(types.len());
        let started = (self.clock)();
        let since_start = |mut r: TypeReport| {
            let ms = (self.clock)().duration_since(started).as_millis();
            r.finished_after_ms = u64::try_from(ms).unwrap_or(0);
            r
        };
        // Metadata first: the start of history its documents date (registry
        // `history_start`, the ring's set-up) bounds every backfill.
        for dt in meta {
            reports.push(since_start(self.run_type(dt, opts, observer).await));
        }
        // The profile names the Oura user: one another account of the file
        // signed in as stops this account before its data is fetched.
        if !super::accounts::check_oura_user(self, &mut reports).await {
            return reports;
        }
        // Every type at once: the client's in-flight cap
        // (`sync.max_in_flight`) bounds the requests, and its priorities
        // serve each type's recent days and the daily types' history before
        // the time series' bulk. A fixed number of types at a time (4, until
        // the cap) left a 5-year first sync at ~4 requests in flight: 155 s
        // at 200 ms a round trip.
        // The types with the most windows still start first, so their
        // first (recent, top-priority) requests go out early.
        let mut rest = rest;
        rest.sort_by_key(|d| match d.window_days {
            0 => u32::MAX,
            days => days,
        });
        let mut jobs: futures::stream::FuturesUnordered<_> = rest
            .into_iter()
            .map(|dt| self.run_type(dt, opts, observer))
            .collect();
        while let Some(r) = jobs.next().await {
            reports.push(since_start(r));
        }
        let order = |name: &str| types.iter().position(|d| d.name == name);
        reports.sort_by_key(|r| order(r.data_type));
        reports
    }

    /// One data type's jobs. Never runs two jobs of one type at once.
    pub async fn run_type(
        &self,
        dt: &'static DataType,
        opts: RunOptions,
        observer: &dyn Observer,
    ) -> TypeReport {
        use tracing::Instrument;
        self.run_type_logged(dt, opts, observer)
            .instrument(self.log_span())
            .await
    }

    /// The span every log line of this engine's runs carries (see
    /// [`account_span`]).
    pub fn log_span(&self) -> tracing::Span {
        account_span(&self.config)
    }

    async fn run_type_logged(
        &self,
        dt: &'static DataType,
        opts: RunOptions,
        observer: &dyn Observer,
    ) -> TypeReport {
        let mut report = TypeReport {
            data_type: dt.name,
            counts: WriteCounts::default(),
            requests: 0,
            uncommitted_requests: 0,
            error: None,
            error_kind: None,
            skipped_busy: false,
            finished_after_ms: 0,
        };
        let Ok(_guard) = self.running[dt.name].try_lock() else {
            report.skipped_busy = true;
            observer.finished(&report);
            return report;
        };
        let _writes = self.writes[dt.name].lock().await;
        if let Some(e) = self.scope_skip(dt).await {
            report.error_kind = Some(e.kind());
            report.error = Some(e.to_string());
            observer.finished(&report);
            return report;
        }
        if let Some(why) = self.not_available_skip(dt).await {
            report.error_kind = Some(ErrorKind::NotAvailable);
            report.error = Some(why);
            observer.finished(&report);
            return report;
        }
        let now = (self.clock)();
        if let Err(e) = self.stored(dt, self.store.record_attempt(dt, now)).await {
            report.error_kind = Some(e.kind());
            report.error = Some(e.to_string());
            observer.finished(&report);
            return report;
        }
        let result = match self.jobs(dt, opts, observer, &mut report).await {
            Err(SyncError::Api(e)) if e.refusal().is_some() => {
                Err(SyncError::Api(self.judge_refusal(dt, e, &mut report).await))
            }
            r => r,
        };
        if let Err(SyncError::Api(ApiError::ScopeNotGranted { .. })) = &result {
            let grant = self.client.grant().id;
            self.scope_skips
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(dt.name, grant);
        }
        if let Err(e) = result {
            if !matches!(e, SyncError::Api(ApiError::Cancelled)) {
                if e.kind() == ErrorKind::NotAvailable {
                    tracing::info!(data_type = dt.name, "{e}");
                } else {
                    tracing::warn!(data_type = dt.name, error = %e, "sync failed");
                }
                let at = (self.clock)();
                let kind = e.kind();
                let msg = e.to_string();
                let spent = report.uncommitted_requests;
                if let Err(se) = self
                    .stored(dt, self.store.record_failure(dt, kind, msg, spent, at))
                    .await
                {
                    tracing::error!(data_type = dt.name, error = %se, "cannot record failure");
                }
            }
            report.error_kind = Some(e.kind());
            report.error = Some(e.to_string());
        }
        observer.finished(&report);
        report
    }

    /// What `status` says of a type marked not available to this
    /// application within a day of its last refusal: it is not asked
    /// before then (`None` when it may be asked).
    async fn not_available_skip(&self, dt: &'static DataType) -> Option<String> {
        let state = self.stored(dt, self.store.sync_state(dt)).await.ok()?;
        let retry = super::not_available_until(&state)?;
        if (self.clock)() >= retry {
            return None;
        }
        Some(format!(
            "{}; asked again after {}",
            state
                .last_error
                .as_deref()
                .unwrap_or("not available to this application"),
            retry.strftime("%Y-%m-%d %H:%M UTC")
        ))
    }

    /// Tells a 401 (after the token refresh) or a 403 of `dt` that only
    /// this collection gets from a refusal of the token itself.
    ///
    /// The rule: the refusal is this collection's alone ("not available to
    /// this application") when one request of another configured
    /// collection, sent after the refusal came back, succeeds with the same
    /// credentials. Only a request sent after the refusal proves the token
    /// still works: an answer to one sent before may have been authorized
    /// before the token was revoked, however late it arrives. Anything else
    /// (the probe refused too, or failing otherwise) keeps the error as it
    /// is: the account's auth failure, with its fix.
    async fn judge_refusal(
        &self,
        dt: &'static DataType,
        e: ApiError,
        report: &mut TypeReport,
    ) -> ApiError {
        let (works, spent) = self.probe_token(dt).await;
        // Counted with the refused type: every attempt is counted.
        report.requests += spent;
        report.uncommitted_requests += spent;
        if works {
            return e.not_available().unwrap_or(e);
        }
        e
    }

    /// One request of another configured collection the grant covers (a
    /// single-document one when there is one, else today's window),
    /// stored nowhere: whether the token works at all, and the requests
    /// it took.
    async fn probe_token(&self, refused: &'static DataType) -> (bool, u32) {
        let grant = self.client.grant();
        let mut candidates: Vec<&'static DataType> = self
            .config
            .types
            .iter()
            .copied()
            .filter(|d| d.name != refused.name)
            .filter(|d| {
                grant
                    .scopes
                    .as_ref()
                    .is_none_or(|s| registry::grant_covers(s, d.scope))
            })
            .collect();
        candidates.sort_by_key(|d| !matches!(d.query, QueryStyle::Single | QueryStyle::List));
        let Some(probe) = candidates.first() else {
            return (false, 0);
        };
        let today = self.today();
        let query = match probe.query {
            QueryStyle::Single | QueryStyle::List => PageQuery::All,
            QueryStyle::DateRange => PageQuery::Dates {
                start: today,
                end: today,
            },
            QueryStyle::DateTimeRange => PageQuery::DateTimes {
                start: today,
                end: today.tomorrow().unwrap_or(today),
            },
        };
        let (page, spent) = self.client.fetch_page_counted(probe, &query, None).await;
        let works = page.is_ok();
        tracing::info!(
            data_type = refused.name,
            probe = probe.name,
            works,
            "refused: asked another collection whether the token works"
        );
        (works, spent)
    }

    /// Whether `dt` is known to lack its scope under the current grant. A
    /// type the grant's scope list excludes is recorded as skipped without
    /// asking the API at all.
    async fn scope_skip(&self, dt: &'static DataType) -> Option<ApiError> {
        let grant = self.client.grant();
        let skipped = |detail: &str| ApiError::ScopeNotGranted {
            data_type: dt.name.into(),
            scope: dt.scope.into(),
            detail: detail.into(),
        };
        if let Some(scopes) = &grant.scopes
            && !registry::grant_covers(scopes, dt.scope)
        {
            let e = skipped("not among the granted scopes");
            let at = (self.clock)();
            let msg = e.to_string();
            let kind = e.kind();
            let already = self
                .stored(dt, self.store.sync_state(dt))
                .await
                .map(|s| s.last_error.as_deref() == Some(msg.as_str()))
                .unwrap_or(false);
            let recorded = if already {
                Ok(())
            } else {
                let msg = msg.clone();
                self.stored(dt, self.store.record_failure(dt, kind, msg, 0, at))
                    .await
            };
            if let Err(se) = recorded {
                tracing::error!(data_type = dt.name, error = %se, "cannot record skip");
            }
            return Some(e);
        }
        let skips = self.scope_skips.lock().unwrap_or_else(|p| p.into_inner());
        match skips.get(dt.name) {
            Some(g) if *g == grant.id => Some(skipped("refused earlier under this grant")),
            _ => None,
        }
    }

    async fn jobs(
        &self,
        dt: &'static DataType,
        opts: RunOptions,
        observer: &dyn Observer,
        report: &mut TypeReport,
    ) -> Result<(), SyncError> {
        let mut state = self.stored(dt, self.store.sync_state(dt)).await?;
        let today = self.today();
        // Incremental windows, re-checks and whole collections; a backfill
        // ranks at its type's `backfill_priority`.
        let recent = dt
            .backfill_priority
            .of_recent_requests(state.backfill_complete);
        match dt.query {
            QueryStyle::Single | QueryStyle::List => {
                observer.started(dt, 1);
                let everything = Window {
                    from: Date::MIN,
                    to: Date::MAX,
                };
                let cursor = CursorAdvance {
                    high_water: Some(today),
                    backfill_complete: true,
                    window_done: true,
                    ..Default::default()
                };
                let mut tally = Tally::default();
                let r = self
                    .fetch_window(
                        dt,
                        everything,
                        PageQuery::All,
                        (WindowCursor::Fixed(cursor), recent),
                        &mut tally,
                    )
                    .await;
                report.add(tally);
                r?;
                observer.advanced(dt, 1, report.counts.inserted + report.counts.updated);
                Ok(())
            }
            QueryStyle::DateRange | QueryStyle::DateTimeRange => {
                let lookback = self.config.lookback_days(dt);
                let inc = plan::incremental_window(state.high_water, opts.since, today, lookback);
                let start = self.backfill_start().await?;
                if state.backfill_complete && state.backfill_floor.is_some_and(|f| start < f) {
                    self.reopen_backfill(dt, start, &mut state).await?;
                }
                let floor = state.backfill_floor.unwrap_or(inc.from);
                let backfill_days = if opts.backfill && !state.backfill_complete && floor > start {
                    Window {
                        from: start,
                        to: floor.saturating_sub(jiff::ToSpan::day(1)),
                    }
                    .days()
                } else {
                    0
                };
                let pending = self.stored(dt, self.store.pending_removal_days(dt)).await?;
                let rechecks = plan::recheck_windows(&pending, inc.from, dt.window_days);
                let recheck_days: i64 = rechecks.iter().map(Window::days).sum();
                observer.started(dt, (inc.days() + backfill_days + recheck_days) as u64);
                for w in rechecks {
                    // Moves no cursor: these days are synced already.
                    let cursor = WindowCursor::Fixed(CursorAdvance::default());
                    self.window_into(dt, w, (cursor, recent), observer, report)
                        .await?;
                }

                let windows = plan::split(inc.from, inc.to, dt.window_days);
                let last = windows.len().saturating_sub(1);
                for (i, w) in windows.into_iter().enumerate() {
                    let cursor = CursorAdvance {
                        // The incremental range ends tomorrow; the cursor
                        // records how far data is synced, today at most.
                        high_water: Some(w.to.min(today)),
                        // A fresh database's backfill starts below the
                        // first incremental window.
                        backfill_floor: (state.backfill_floor.is_none_or(|f| w.from < f) && i == 0)
                            .then_some(w.from),
                        backfill_complete: false,
                        window_done: i == last,
                    };
                    let cursor = (WindowCursor::Fixed(cursor), recent);
                    self.window_into(dt, w, cursor, observer, report).await?;
                }

                if !opts.backfill || state.backfill_complete {
                    return Ok(());
                }
                let floor = self
                    .stored(dt, self.store.sync_state(dt))
                    .await?
                    .backfill_floor
                    .unwrap_or(inc.from);
                if floor <= start {
                    self.mark_backfill_complete(dt, floor).await?;
                    return Ok(());
                }
                #[allow(clippy::disallowed_types, reason = "locked only inside store calls")]
                let ledger = Arc::new(Mutex::new(FloorLedger::new(floor, start)));
                let windows = plan::backfill_windows(floor, start, dt.backfill_window_days);
                // More windows than the cap could never all have a request
                // in flight; each window waiting holds a prefetched page.
                let side_by_side = dt
                    .backfill_windows_in_flight
                    .min(self.config.max_in_flight)
                    .max(1);
                let mut in_flight = futures::stream::iter(windows)
                    .map(|w| {
                        let cursor = (WindowCursor::Backfill(ledger.clone()), dt.backfill_priority);
                        async move {
                            let mut tally = Tally::default();
                            let r = self
                                .fetch_window(dt, w, plan::request_for(dt, w), cursor, &mut tally)
                                .await;
                            (w, tally, r)
                        }
                    })
                    .buffer_unordered(side_by_side);
                // The first error ends the job; dropping the stream cancels
                // the other windows between pages (a page being committed
                // commits whole), and the floor stays above any gap.
                while let Some((w, tally, r)) = in_flight.next().await {
                    report.add(tally);
                    r?;
                    observer.advanced(dt, w.days() as u64, tally.written());
                }
                Ok(())
            }
        }
    }

    /// One window, its tally added to `report` and its progress reported.
    async fn window_into(
        &self,
        dt: &'static DataType,
        w: Window,
        cursor: (WindowCursor, Priority),
        observer: &dyn Observer,
        report: &mut TypeReport,
    ) -> Result<(), SyncError> {
        let mut tally = Tally::default();
        let r = self
            .fetch_window(dt, w, plan::request_for(dt, w), cursor, &mut tally)
            .await;
        report.add(tally);
        r?;
        observer.advanced(dt, w.days() as u64, tally.written());
        Ok(())
    }

    /// The start of history moved below where a finished backfill stopped
    /// (a ring's set-up corrected, an earlier ring or `backfill_start`
    /// appeared): the days between were never fetched, so the backfill
    /// runs again from its floor down to the new start.
    async fn reopen_backfill(
        &self,
        dt: &'static DataType,
        start: Date,
        state: &mut SyncState,
    ) -> Result<(), SyncError> {
        tracing::info!(
            data_type = dt.name,
            floor = ?state.backfill_floor,
            %start,
            "history starts earlier than the finished backfill reached: backfilling again"
        );
        self.stored(dt, self.store.reopen_backfill(dt)).await?;
        state.backfill_complete = false;
        Ok(())
    }

    async fn mark_backfill_complete(
        &self,
        dt: &'static DataType,
        floor: Date,
    ) -> Result<(), SyncError> {
        let at = (self.clock)();
        let cursor = CursorAdvance {
            backfill_floor: Some(floor),
            backfill_complete: true,
            window_done: true,
            ..Default::default()
        };
        self.stored(dt, self.store.advance_cursor(dt, cursor, at))
            .await?;
        Ok(())
    }

    /// The oldest day worth asking for: the configured start, raised to the
    /// start of history the stored documents date (registry
    /// `history_start`: the first ring's set-up day) when that is known.
    async fn backfill_start(&self) -> Result<Date, SyncError> {
        let mut dated = Vec::new();
        for dt in registry::DATA_TYPES
            .iter()
            .filter(|d| d.history_start.is_some())
        {
            dated.extend(self.stored(dt, self.store.history_start_times(dt)).await?);
        }
        Ok(backfill_start_from_history(
            self.config.backfill_start,
            &dated,
            (self.clock)(),
        ))
    }

    /// Fetches every page of one window. Each page is committed with its
    /// bookkeeping; the cursor moves only with the window's last page, so a
    /// crash mid-window re-fetches that window and nothing is skipped.
    async fn fetch_window(
        &self,
        dt: &'static DataType,
        w: Window,
        query: PageQuery,
        (cursor, priority): (WindowCursor, Priority),
        tally: &mut Tally,
    ) -> Result<(), SyncError> {
        // Every token of the window with the page it led to: a cycle of any
        // length shows up as a token seen before.
        let mut tokens_seen: HashMap<String, usize> = HashMap::new();
        let cap = page_cap(dt, w);
        let mut pages = 0usize;
        let mut docs_total = 0usize;
        let mut seen_ids: HashSet<String> = HashSet::new();
        // Whether every document of the window could be keyed: one that
        // could not may be any stored document, so nothing counts as gone.
        let mut complete = true;
        let track_vanished = dt.query != QueryStyle::DateTimeRange;
        let mut pending = self.prefetch(dt, &query, None, priority);
        loop {
            let page = match pending.await {
                Ok((Ok(page), _)) => page,
                Ok((Err(e), attempts)) => {
                    tally.requests += attempts;
                    tally.uncommitted_requests += attempts;
                    return Err(e.into());
                }
                Err(join) => {
                    return Err(ApiError::BadResponse {
                        data_type: dt.name.into(),
                        cause: join.to_string(),
                        attempts: 0,
                    }
                    .into());
                }
            };
            pages += 1;
            docs_total += page.len();
            let paging_loop = |pattern: String| ApiError::PagingLoop {
                data_type: dt.name.into(),
                window: window_text(w),
                pattern,
            };
            let last_page = match &page.next_token {
                None => true,
                Some(t) => {
                    if let Some(first) = tokens_seen.insert(t.clone(), pages) {
                        tally.requests += page.requests;
                        tally.uncommitted_requests += page.requests;
                        return Err(paging_loop(format!(
                            "page {pages} returned a next_token already returned by page {first} (a cycle of {} page(s))",
                            pages - first
                        ))
                        .into());
                    }
                    if pages >= cap {
                        tally.requests += page.requests;
                        tally.uncommitted_requests += page.requests;
                        return Err(paging_loop(format!(
                            "the API returned a new next_token on each of {pages} pages ({docs_total} documents in all), the most this window can need is far fewer"
                        ))
                        .into());
                    }
                    false
                }
            };
            // The next page is requested before this one is written, so the
            // API's latency overlaps our SQLite work.
            pending = match &page.next_token {
                Some(t) => self.prefetch(dt, &query, Some(t.clone()), priority),
                None => tokio::spawn(async { (Ok(DocumentsPage::default()), 0) }),
            };
            let mut guard = AbortOnDrop(Some(pending.abort_handle()));
            // Given back once the page is stored (see `DocumentsPage::place`).
            let place = page.place;
            tally.requests += page.requests;
            let mut docs = page.data;
            // Documents that could not be decoded: their readable fields
            // (id, day) place and key them like the others.
            let mut undecodable = page.undecodable;
            // Time-series rows, read field by field but not yet mapped.
            let raw_rows = page.rows;
            if let (Some(_), QueryStyle::DateRange) = (dt.day_field, dt.query) {
                // A document whose day cannot be read or derived is kept for
                // the store, which quarantines it rather than dropping it.
                let in_window =
                    |d: &serde_json::Value| dt.document_day(d).is_none_or(|day| w.contains(day));
                docs.retain(|d| in_window(&d.value));
                undecodable.retain(|u| in_window(&u.readable));
            }
            if track_vanished {
                let values = docs.iter().map(|d| &d.value);
                for d in values.chain(undecodable.iter().map(|u| &u.readable)) {
                    match dt.document_key(d) {
                        Some(k) => {
                            seen_ids.insert(k);
                        }
                        None => complete = false,
                    }
                }
            }
            // The page, and on the last page the window's ids, move to the
            // store's thread; `seen_ids` is not needed after the last page.
            let vanished_ids = (last_page && track_vanished).then(|| std::mem::take(&mut seen_ids));
            let page_cursor = if last_page {
                cursor.clone()
            } else {
                WindowCursor::Fixed(CursorAdvance::default())
            };
            let requests = page.requests;
            let at = (self.clock)();
            let page = WindowPage {
                documents: docs,
                undecodable,
                rows: raw_rows,
                vanished: vanished_ids.map(|seen_ids| WindowIds {
                    first_day: w.from,
                    last_day: w.to,
                    seen_ids,
                    complete,
                }),
                cursor: match page_cursor {
                    WindowCursor::Fixed(c) => PageCursor::Fixed(c),
                    WindowCursor::Backfill(ledger) => {
                        PageCursor::AtCommit(Box::new(BackfillCursor { ledger, window: w }))
                    }
                },
                requests,
                at,
            };
            let counts = self
                .stored(dt, self.store.commit_window_page(dt, page))
                .await?;
            drop(place);
            tally.counts += counts;
            if last_page {
                return Ok(());
            }
            guard.0 = None;
        }
    }

    /// Starts fetching one page on its own task, its requests ranked at
    /// `priority` when the in-flight cap binds.
    fn prefetch(
        &self,
        dt: &'static DataType,
        query: &PageQuery,
        token: Option<String>,
        priority: Priority,
    ) -> tokio::task::JoinHandle<(Result<DocumentsPage, ApiError>, u32)> {
        let client = self.client.clone();
        let query = query.clone();
        let fetch = in_flight::at_priority(priority, async move {
            client
                .fetch_page_counted(dt, &query, token.as_deref())
                .await
        });
        // Its log lines (waits, retries) keep the run's account.
        tokio::spawn(tracing::Instrument::in_current_span(fetch))
    }

    /// Awaits a store operation, naming `dt` and the database in its error.
    async fn stored<T>(
        &self,
        dt: &DataType,
        op: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, SyncError> {
        op.await
            .map_err(|source| SyncError::store(dt, source, &self.config.database))
    }

    pub async fn states(&self) -> Result<Vec<SyncState>, StoreError> {
        self.store.all_sync_states().await
    }
}

/// The span of an account's runs: its name in a file of several accounts
/// (`account{name=alice}: ...`), so a household's lines say whose they are;
/// none with one account. At the error level, so that it is there at every
/// level a line is logged at: a span below the filter's level is dropped,
/// and with it the name, from every line inside it.
fn account_span(config: &Config) -> tracing::Span {
    match config.accounts.first() {
        Some(a) if config.account_entries => tracing::error_span!("account", name = %a.name),
        _ => tracing::Span::none(),
    }
}

/// Fewest pages a window may take before paging is declared runaway.
const MIN_PAGE_CAP: usize = 1000;

/// The most pages one window may take: ten times a generous estimate (one
/// page per ten days; Oura's pages hold far more), and never fewer than
/// [`MIN_PAGE_CAP`]. A server handing out a fresh `next_token` forever is
/// stopped here instead of paging until the process is killed: at the
/// limiter's burst rate 1,000 pages take well under a minute.
pub fn page_cap(dt: &DataType, w: Window) -> usize {
    let days = match dt.query {
        QueryStyle::DateRange | QueryStyle::DateTimeRange => w.days().max(1) as usize,
        QueryStyle::List | QueryStyle::Single => 1,
    };
    (days.div_ceil(10) * 10).max(MIN_PAGE_CAP)
}

fn window_text(w: Window) -> String {
    if w.from == Date::MIN && w.to == Date::MAX {
        "the whole collection".to_owned()
    } else {
        format!("window {}..{}", w.from, w.to)
    }
}

/// Days of history kept before the first ring's set-up, for data the ring
/// recorded before the app stamped the set-up time.
const SET_UP_SLACK_DAYS: i64 = 7;

/// Raises `configured` to a week before the earliest start of history
/// (registry `history_start`: a ring's set-up time) when every document
/// dates it. A placeholder (1970-01-01, seen on real accounts), a missing
/// time or one after `now` (`9999-12-31`, a bad clock) means a ring of
/// unknown age, so the configured start stands: skipping its history would
/// lose data.
pub fn backfill_start_from_history(
    configured: Date,
    set_up_at: &[Option<String>],
    now: jiff::Timestamp,
) -> Date {
    let mut earliest: Option<Date> = None;
    for s in set_up_at {
        let Some(day) = s.as_deref().and_then(|s| history_day(s, now)) else {
            return configured;
        };
        earliest = Some(earliest.map_or(day, |e| e.min(day)));
    }
    match earliest {
        Some(e) => configured.max(e.saturating_sub(jiff::Span::new().days(SET_UP_SLACK_DAYS))),
        None => configured,
    }
}

/// The local day of a start of history that is plausible: after the first
/// ring (2013) and not after `now`. Instants are compared, so a set-up at
/// `+14:00` whose local day is already tomorrow in UTC still counts once it
/// has happened. A bare date, which names no instant, counts once it has
/// begun everywhere (at 12:00 UTC, midnight at UTC-12).
fn history_day(s: &str, now: jiff::Timestamp) -> Option<Date> {
    let day = s.get(..10)?.parse::<Date>().ok()?;
    if day.year() < 2013 {
        return None;
    }
    let at = match s.parse::<jiff::Timestamp>() {
        Ok(t) => t,
        Err(_) => day
            .to_zoned(jiff::tz::TimeZone::UTC)
            .ok()?
            .timestamp()
            .checked_add(jiff::SignedDuration::from_hours(12))
            .ok()?,
    };
    (at <= now).then_some(day)
}

/// Aborts a prefetch that is no longer wanted (an error or cancellation
/// ended the window early).
struct AbortOnDrop(Option<tokio::task::AbortHandle>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(h) = self.0.take() {
            h.abort();
        }
    }
}

impl Tally {
    fn written(&self) -> u64 {
        self.counts.inserted + self.counts.updated + self.counts.unchanged
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    /// The account's name is on every line its runs log, the warnings of a
    /// daemon logging at `warn` included.
    #[test]
    fn an_accounts_span_is_there_at_every_level_and_only_for_accounts() {
        let parse = |text: &str| {
            let c = Config::from_toml(text, std::path::Path::new("t.toml"), |_| None).unwrap();
            c.for_account(&c.accounts[0])
        };
        let household = parse("[[account]]\nname = \"alice\"\npersonal_access_token = \"t\"\n");
        let alone = parse("[auth]\npersonal_access_token = \"t\"\n");
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::ERROR)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let span = account_span(&household);
            assert!(!span.is_disabled());
            assert_eq!(span.metadata().map(|m| m.name()), Some("account"));
            assert!(account_span(&alone).is_none());
        });
    }

    #[test]
    fn ring_set_up_raises_the_backfill_start_only_when_every_ring_is_dated() {
        let cfg = date(2015, 1, 1);
        let now: jiff::Timestamp = "2024-06-01T12:00:00Z".parse().unwrap();
        let start = |set_up: &[Option<String>]| backfill_start_from_history(cfg, set_up, now);
        let s = |v: &str| Some(v.to_owned());
        assert_eq!(
            start(&[
                s("2021-03-10T10:00:00+00:00"),
                s("2023-01-01T00:00:00+00:00")
            ]),
            date(2021, 3, 3)
        );
        // The 1970 placeholder and a null both mean "unknown": keep the config.
        assert_eq!(
            start(&[
                s("1970-01-01T00:00:00+00:00"),
                s("2021-03-10T10:00:00+00:00")
            ]),
            cfg
        );
        assert_eq!(start(&[None, s("2021-03-10T10:00:00+00:00")]), cfg);
        assert_eq!(start(&[]), cfg);
        // Never lower than configured.
        assert_eq!(
            backfill_start_from_history(date(2022, 1, 1), &[s("2021-03-10T10:00:00+00:00")], now),
            date(2022, 1, 1)
        );
    }

    #[test]
    fn a_start_of_history_after_now_means_unknown() {
        let cfg = date(2015, 1, 1);
        let now: jiff::Timestamp = "2024-06-01T12:00:00Z".parse().unwrap();
        let start = |v: &str| backfill_start_from_history(cfg, &[Some(v.to_owned())], now);
        assert_eq!(start("9999-12-31T00:00:00+00:00"), cfg);
        assert_eq!(start("9999-12-31"), cfg);
        // Tomorrow in Kiribati, an hour from now: not yet.
        assert_eq!(start("2024-06-02T03:00:00+14:00"), cfg);
        // Tomorrow in Kiribati, an hour ago: it happened.
        assert_eq!(start("2024-06-02T00:00:00+14:00"), date(2024, 5, 26));
        assert_eq!(start("2024-06-01T11:59:59Z"), date(2024, 5, 25));
        // A bare date counts once it has begun everywhere.
        assert_eq!(start("2024-06-02"), cfg);
        assert_eq!(start("2024-06-01"), date(2024, 5, 25));
        // Unreadable: unknown, as before.
        assert_eq!(start("soon"), cfg);
    }
}
