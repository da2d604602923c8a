//! HTTP client for the Oura collections: one request at a time per caller,
//! every request through the shared [`Limiter`], retries with backoff.

use std::sync::Arc;
use std::time::Duration;

use jiff::civil::Date;
use rand::Rng;
use reqwest::StatusCode;
use tokio_util::sync::CancellationToken;

use super::auth::{AuthError, TokenSource};
use super::error::{ApiError, Attempt};
use super::http::{BodyError, BodySize};
use super::limiter::{Hold, Limiter};
use crate::config::{Config, RetryConfig};
use crate::registry::{DataType, QueryStyle};
use crate::rows::{Document, DocumentPage, PageError, RawRows, Undecodable};

/// The query of one page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageQuery {
    /// Inclusive local days as sent (`start_date`, `end_date`).
    Dates { start: Date, end: Date },
    /// UTC day boundaries: `start` 00:00 to `end` 00:00.
    DateTimes { start: Date, end: Date },
    /// No date parameters.
    All,
}

/// One page of documents (or time-series rows).
#[derive(Debug, Default)]
pub struct DocumentsPage {
    /// The page's documents, each with its text as received; empty for
    /// time series, whose rows are in `rows`.
    pub data: Vec<Document>,
    /// Documents that could not be decoded (the store quarantines them;
    /// time-series rows that could not are in `rows`).
    pub undecodable: Vec<Undecodable>,
    /// Time-series rows (`data` empty): their JSON text and fields, read
    /// without a `Value` tree per row, which cost most of a backfill's
    /// allocations (millions of small rows).
    pub rows: RawRows,
    pub next_token: Option<String>,
    /// Requests spent on this page, retries included.
    pub requests: u32,
    /// The page's place (`in_flight::Permit::into_page`), held until the
    /// page is stored: at most twice `sync.max_in_flight` pages are fetched
    /// and not yet stored, so ten accounts catching up at once cannot pile
    /// up hundreds of them in memory. Dropping the page gives it back.
    pub place: Option<super::in_flight::Permit>,
}

impl DocumentsPage {
    /// Documents or rows on the page, undecodable ones included.
    pub fn len(&self) -> usize {
        self.data.len() + self.undecodable.len() + self.rows.len() + self.rows.undecodable().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A page as read from its body, in the form its data type needs.
enum ReadPage {
    /// Time-series rows and the next token.
    Rows(RawRows, Option<String>),
    Documents(DocumentPage),
}

/// Reads a page body: split into documents first, each decoded on its own,
/// so one that cannot be decoded is set apart and the others are kept.
fn read_page(dt: &DataType, body: &[u8]) -> Result<ReadPage, PageError> {
    if dt.query == QueryStyle::Single {
        let mut page = DocumentPage::default();
        match read_single(body)? {
            Ok(doc) => page.documents.push(doc),
            Err(u) => page.undecodable.push(u),
        }
        return Ok(ReadPage::Documents(page));
    }
    if dt.is_time_series() {
        let (rows, next_token) = RawRows::parse(body)?;
        return Ok(ReadPage::Rows(rows, next_token));
    }
    DocumentPage::parse(body).map(ReadPage::Documents)
}

/// A single-document body: its document, or why it cannot be decoded. A
/// body that is cut off or holds more than one value fails as a page.
fn read_single(body: &[u8]) -> Result<Result<Document, Undecodable>, PageError> {
    match crate::rows::single_value(body) {
        Some(span) => Ok(Document::decode(&body[span])),
        None => Err(PageError::Malformed(
            serde_json::from_slice::<serde::de::IgnoredAny>(body)
                .err()
                .map_or_else(|| "not one JSON value".to_owned(), |e| e.to_string()),
        )),
    }
}

/// One wait on Oura's rate limit, as announced to the user.
#[derive(Debug, Clone)]
pub struct RateLimitWait {
    pub data_type: &'static str,
    /// When requests resume (wall clock).
    pub until: jiff::Timestamp,
    pub wait: Duration,
    /// The server's headers, or the quota shared through the database.
    pub hold: Hold,
}

impl RateLimitWait {
    /// E.g. "Oura rate limit: waiting until 14:05:10 (58 min)".
    pub fn describe(&self) -> String {
        format!(
            "{}: waiting until {} ({})",
            hold_name(self.hold),
            local_time(self.until),
            human_duration(self.wait)
        )
    }
}

/// What holds requests, as the announcement names it.
fn hold_name(hold: Hold) -> &'static str {
    match hold {
        Hold::Server => "Oura rate limit",
        Hold::Account => {
            "Oura request quota shared by every ouradb process on this database, used up in the last window"
        }
    }
}

/// What holds requests, as the subject of an error.
fn hold_cause(hold: Hold) -> &'static str {
    match hold {
        Hold::Server => "Oura's rate limit",
        Hold::Account => {
            "the Oura request quota shared by every ouradb process on this database (used up in the last window)"
        }
    }
}

/// Shared-account waits shorter than this are not announced.
const QUIET_ACCOUNT_WAIT: Duration = Duration::from_secs(1);

/// A wait ending less than this after the last one announced is the same
/// wait to a person: requests queued behind a spent quota each wait for
/// the next slot to leave the window, a few milliseconds apart, and the
/// household's daemon logged one identical line per request (32 in its
/// benchmark). Counted against `--max-wait` all the same.
const ANNOUNCE_AGAIN_AFTER: Duration = Duration::from_secs(60);

tokio::task_local! {
    /// The longest one rate-limit wait may be in this task, whatever the
    /// policy: set by [`Client::fetch_document_within`].
    static WAIT_CAP: Duration;
}

/// Receives each rate-limit wait as it starts.
pub type WaitNotifier = Arc<dyn Fn(&RateLimitWait) + Send + Sync>;

/// How rate-limit waits are bounded and shown.
#[derive(Clone, Default)]
pub struct WaitPolicy {
    /// Most time the whole run may spend waiting on Oura's rate limit;
    /// `None` waits as long as Oura says (the daemon).
    pub max_wait: Option<Duration>,
    /// Told once about every new wait.
    pub notify: Option<WaitNotifier>,
}

/// What the client has spent waiting on the rate limit so far.
#[derive(Default)]
struct WaitLedger {
    /// The latest block end already counted.
    counted_until: Option<tokio::time::Instant>,
    /// The latest block end told (logged and notified).
    told_until: Option<tokio::time::Instant>,
    spent: Duration,
}

pub struct Client {
    http: reqwest::Client,
    base: url::Url,
    sandbox: bool,
    auth: Arc<dyn TokenSource>,
    limiter: Arc<Limiter>,
    /// `sync.max_in_flight`: a permit per request, taken before the limiter.
    in_flight: super::InFlight,
    retry: RetryConfig,
    /// Largest response body read (`sync.max_body_bytes`).
    max_body: u64,
    cancel: CancellationToken,
    wait_policy: std::sync::RwLock<WaitPolicy>,
    #[allow(clippy::disallowed_types, reason = "never held across an .await")]
    waits: std::sync::Mutex<WaitLedger>,
}

impl Client {
    pub fn new(
        config: &Config,
        auth: Arc<dyn TokenSource>,
        limiter: Arc<Limiter>,
        cancel: CancellationToken,
    ) -> Result<Client, ApiError> {
        let http = super::http::client(config.request_timeout).map_err(|e| ApiError::Network {
            data_type: "client".into(),
            host: config.base_url.host_str().unwrap_or("").into(),
            cause: e.to_string(),
            attempts: 0,
        })?;
        Ok(Client {
            http,
            base: config.base_url.clone(),
            sandbox: config.sandbox,
            auth,
            limiter,
            in_flight: super::InFlight::new(config.max_in_flight),
            retry: config.retry,
            max_body: config.max_body_bytes,
            cancel,
            wait_policy: std::sync::RwLock::default(),
            #[allow(clippy::disallowed_types, reason = "never held across an .await")]
            waits: std::sync::Mutex::default(),
        })
    }

    /// This client with its requests counted in `in_flight`, a cap shared
    /// with other clients (the daemon's accounts), so `sync.max_in_flight`
    /// and its priorities hold across them.
    pub fn sharing_in_flight(mut self, in_flight: super::InFlight) -> Client {
        self.in_flight = in_flight;
        self
    }

    /// A place in flight, then a slot of the quota (taken in that order: a
    /// slot leased by the limiter is sent at once). A request that finds the
    /// shared quota spent gives its place back while it waits for the
    /// window to turn, then queues again by its priority: a full window of
    /// backfills must not hold every place for minutes while a caught-up
    /// account's incremental run, which may use the quota's reserve
    /// (`limiter::recent_reserve`), waits for one.
    async fn admitted(&self, dt: &DataType) -> Result<super::in_flight::Permit, ApiError> {
        loop {
            let permit = tokio::select! {
                p = self.in_flight.acquire() => p,
                _ = self.cancel.cancelled() => return Err(ApiError::Cancelled),
            };
            let mut spent_until = None;
            let admitted = tokio::select! {
                r = self.limiter.acquire_announcing(|hold, until| {
                    if hold == Hold::Account {
                        spent_until = Some(until);
                        return Err(None);
                    }
                    self.announce_wait(dt, hold, until).map_err(Some)
                }) => r,
                _ = self.cancel.cancelled() => return Err(ApiError::Cancelled),
            };
            let until = match (admitted, spent_until) {
                (Ok(()), _) => return Ok(permit),
                (Err(Some(e)), _) => return Err(e),
                (Err(None), Some(until)) => until,
                (Err(None), None) => continue,
            };
            drop(permit);
            self.announce_wait(dt, Hold::Account, until)?;
            tokio::select! {
                _ = tokio::time::sleep_until(until) => {}
                _ = self.cancel.cancelled() => return Err(ApiError::Cancelled),
            }
        }
    }

    /// Bounds and announces rate-limit waits (`ouradb sync --max-wait`).
    pub fn set_wait_policy(&self, policy: WaitPolicy) {
        *self.wait_policy.write().unwrap_or_else(|p| p.into_inner()) = policy;
    }

    /// Waits out a Retry-After block on the limiter, if one is in force:
    /// announced once per new block end, and refused when the run's total
    /// wait would exceed the policy's `max_wait`.
    async fn wait_for_block(&self, dt: &DataType) -> Result<(), ApiError> {
        let Some(until) = self.limiter.blocked_until() else {
            return Ok(());
        };
        if until <= tokio::time::Instant::now() {
            return Ok(());
        }
        self.announce_wait(dt, Hold::Server, until)?;
        tokio::select! {
            _ = tokio::time::sleep_until(until) => Ok(()),
            _ = self.cancel.cancelled() => Err(ApiError::Cancelled),
        }
    }

    /// Accounts for a wait until `until` about to start: announced once
    /// per new end (whatever holds requests: the server or the shared
    /// account), and refused when the run's total wait would exceed the
    /// policy's `max_wait` or this one exceeds the task's [`WAIT_CAP`].
    fn announce_wait(
        &self,
        dt: &DataType,
        hold: Hold,
        until: tokio::time::Instant,
    ) -> Result<(), ApiError> {
        let now = tokio::time::Instant::now();
        let refuse = |wait: Duration, max: Duration| ApiError::RateLimitWait {
            data_type: dt.name.into(),
            by: hold_cause(hold).into(),
            until: local_time(wall_at(wait)),
            wait: human_duration(wait),
            max_wait: human_duration(max),
        };
        if let Ok(cap) = WAIT_CAP.try_with(|c| *c)
            && until.saturating_duration_since(now) > cap
        {
            return Err(refuse(until.saturating_duration_since(now), cap));
        }
        let policy = self
            .wait_policy
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let announce = {
            let mut ledger = self.waits.lock().unwrap_or_else(|p| p.into_inner());
            if ledger.counted_until.is_some_and(|c| c >= until) {
                None
            } else {
                // Only the part of this block not already waited for counts.
                let from = ledger.counted_until.map_or(now, |c| c.max(now));
                let extra = until.saturating_duration_since(from);
                let wait = until.saturating_duration_since(now);
                if let Some(max) = policy.max_wait
                    && ledger.spent.saturating_add(extra) > max
                {
                    return Err(refuse(wait, max));
                }
                ledger.spent = ledger.spent.saturating_add(extra);
                ledger.counted_until = Some(until);
                // Processes sharing a full account wait a few milliseconds
                // at a time for the next slot: counted, but told only when
                // a person would notice.
                let noticed = hold == Hold::Server || wait >= QUIET_ACCOUNT_WAIT;
                let told = ledger
                    .told_until
                    .is_some_and(|t| until < t + ANNOUNCE_AGAIN_AFTER);
                (noticed && !told).then(|| {
                    ledger.told_until = Some(until);
                    RateLimitWait {
                        data_type: dt.name,
                        until: wall_at(wait),
                        wait,
                        hold,
                    }
                })
            }
        };
        if let Some(w) = announce {
            tracing::warn!(
                data_type = dt.name,
                wait_s = w.wait.as_secs_f64(),
                "{}",
                w.describe()
            );
            if let Some(n) = &policy.notify {
                n(&w);
            }
        }
        Ok(())
    }

    /// What the current credentials were granted.
    pub fn grant(&self) -> super::auth::Grant {
        self.auth.grant()
    }

    pub fn limiter(&self) -> &Arc<Limiter> {
        &self.limiter
    }

    fn collection_url(&self, dt: &DataType) -> url::Url {
        let prefix = if self.sandbox {
            "v2/sandbox/usercollection/"
        } else {
            "v2/usercollection/"
        };
        super::http::join(&self.base, &format!("{prefix}{}", dt.path))
    }

    /// Fetches one page of a collection.
    pub async fn fetch_page(
        &self,
        dt: &DataType,
        query: &PageQuery,
        next_token: Option<&str>,
    ) -> Result<DocumentsPage, ApiError> {
        self.fetch_page_counted(dt, query, next_token).await.0
    }

    /// [`Client::fetch_page`], also returning the requests sent, failed and
    /// retried attempts included (a success carries them in the page too).
    pub async fn fetch_page_counted(
        &self,
        dt: &DataType,
        query: &PageQuery,
        next_token: Option<&str>,
    ) -> (Result<DocumentsPage, ApiError>, u32) {
        let mut attempts = 0;
        let r = self
            .fetch_page_inner(dt, query, next_token, &mut attempts)
            .await;
        (r, attempts)
    }

    async fn fetch_page_inner(
        &self,
        dt: &DataType,
        query: &PageQuery,
        next_token: Option<&str>,
        attempts: &mut u32,
    ) -> Result<DocumentsPage, ApiError> {
        let mut params: Vec<(&str, String)> = Vec::with_capacity(3);
        match query {
            PageQuery::Dates { start, end } => {
                params.push(("start_date", start.to_string()));
                params.push(("end_date", end.to_string()));
            }
            PageQuery::DateTimes { start, end } => {
                params.push(("start_datetime", format!("{start}T00:00:00+00:00")));
                params.push(("end_datetime", format!("{end}T00:00:00+00:00")));
            }
            PageQuery::All => {}
        }
        if let Some(t) = next_token {
            params.push(("next_token", t.to_owned()));
        }
        let url = self.collection_url(dt);
        let (page, requests, place) = self
            .get(dt, &url, &params, false, attempts, |b| read_page(dt, b))
            .await?;
        let page = page.expect("404 is only tolerated for single documents");
        let (data, undecodable, rows, next_token) = match page {
            ReadPage::Rows(rows, next_token) => (Vec::new(), Vec::new(), rows, next_token),
            ReadPage::Documents(p) => {
                (p.documents, p.undecodable, RawRows::default(), p.next_token)
            }
        };
        Ok(DocumentsPage {
            data,
            undecodable,
            rows,
            next_token: next_token.filter(|t| !t.is_empty()),
            requests,
            place: Some(place.into_page()),
        })
    }

    /// [`Client::fetch_document`], refusing any single rate-limit wait
    /// longer than `max_wait` with [`ApiError::RateLimitWait`] (not counted
    /// against the policy): a webhook event is not held for hours while
    /// polling catches up anyway.
    pub async fn fetch_document_within(
        &self,
        dt: &DataType,
        id: &str,
        max_wait: Duration,
    ) -> Result<(Option<Result<Document, Undecodable>>, u32), ApiError> {
        WAIT_CAP.scope(max_wait, self.fetch_document(dt, id)).await
    }

    /// Fetches one document by id; `Ok(None)` when the API answers 404,
    /// `Err` inside when the document it sent cannot be decoded (the caller
    /// quarantines it).
    pub async fn fetch_document(
        &self,
        dt: &DataType,
        id: &str,
    ) -> Result<(Option<Result<Document, Undecodable>>, u32), ApiError> {
        // The URL parser drops a `.` or `..` segment, which would make this
        // a request for the whole collection.
        if matches!(id, "" | "." | "..") {
            return Err(ApiError::Rejected {
                data_type: dt.name.into(),
                status: 0,
                detail: format!("document id `{id}` cannot be requested; nothing was sent"),
            });
        }
        let mut url = self.collection_url(dt);
        url.path_segments_mut()
            .map_err(|_| ApiError::Rejected {
                data_type: dt.name.into(),
                status: 0,
                detail: "base URL cannot hold a path".into(),
            })?
            .push(id);
        let mut attempts = 0;
        let (document, attempts, _place) = self
            .get(dt, &url, &[], true, &mut attempts, read_single)
            .await?;
        Ok((document, attempts))
    }

    /// GET with limiter, auth and retries. Returns the body as `read`
    /// reads it (None on a tolerated 404), the number of requests it took
    /// and the successful request's place in flight; `attempts` counts
    /// them as they go, so a failure still reports what it spent. A body `read` finds truncated or malformed is retried
    /// like a failed request; one that is JSON of the wrong shape is not.
    async fn get<T>(
        &self,
        dt: &DataType,
        url: &url::Url,
        params: &[(&str, String)],
        allow_404: bool,
        attempts: &mut u32,
        read: impl Fn(&[u8]) -> Result<T, PageError>,
    ) -> Result<(Option<T>, u32, super::in_flight::Permit), ApiError> {
        let mut failures = 0u32;
        let mut rate_limited = 0u32;
        let mut refreshed = false;
        loop {
            if self.cancel.is_cancelled() {
                return Err(ApiError::Cancelled);
            }
            let token = self
                .auth
                .access_token()
                .await
                .map_err(|e| auth_error(dt, e))?;
            let waiting = tokio::time::Instant::now();
            self.wait_for_block(dt).await?;
            // A wait for a place in flight is not a rate-limit wait.
            let blocked = waiting.elapsed();
            let waiting = tokio::time::Instant::now();
            let permit = self.admitted(dt).await?;
            crate::metrics::live().rate_limit_wait(blocked + waiting.elapsed());
            let req = match self
                .http
                .get(url.clone())
                .query(params)
                .bearer_auth(token.expose())
                .build()
            {
                Ok(r) => r,
                // The URL is ours and valid; only the token can make the
                // Authorization header unbuildable (a line break in it).
                Err(e) if e.is_builder() => {
                    return Err(ApiError::Auth {
                        data_type: dt.name.into(),
                        message: "the access token contains a line break or another character an HTTP header cannot carry, so nothing was sent; copy the token again as one line, or run `ouradb auth login` for OAuth tokens".into(),
                    });
                }
                Err(e) => {
                    return Err(ApiError::Auth {
                        data_type: dt.name.into(),
                        message: format!("cannot build the request: {}", describe_reqwest(&e)),
                    });
                }
            };
            *attempts += 1;
            let req = self.http.execute(req);
            let outcome = tokio::select! {
                r = async {
                    match req.await {
                        Ok(resp) => self.classify(dt, resp, allow_404, &read).await,
                        Err(e) => Err(match super::http::refused_redirect(&e) {
                            // Retrying would meet the same redirect.
                            Some(detail) => Attempt::Fatal(ApiError::Redirected { data_type: dt.name.into(), detail }),
                            None => Attempt::Retry { cause: describe_reqwest(&e), status: None },
                        }),
                    }
                } => r,
                _ = self.cancel.cancelled() => return Err(ApiError::Cancelled),
            };
            crate::metrics::live().request(outcome.as_ref().err().map(Attempt::kind));
            let attempts = *attempts;
            let failed = match outcome {
                Ok(body) => return Ok((body, attempts, permit)),
                Err(failed) => failed,
            };
            // Not held through a refresh, a back-off or a Retry-After wait.
            drop(permit);
            let (cause, status) = match failed {
                Attempt::Fatal(e) => return Err(e),
                Attempt::Unreadable(cause) => {
                    return Err(ApiError::BadResponse {
                        data_type: dt.name.into(),
                        cause,
                        attempts,
                    });
                }
                Attempt::Unauthorized(detail) => {
                    if !refreshed
                        && self
                            .auth
                            .rejected(&token)
                            .await
                            .map_err(|e| auth_error(dt, e))?
                    {
                        refreshed = true;
                        continue;
                    }
                    return Err(ApiError::Unauthorized {
                        data_type: dt.name.into(),
                        detail,
                    });
                }
                Attempt::RetryAfter(wait) => {
                    rate_limited += 1;
                    // A server that keeps answering 429 despite honoured
                    // Retry-After is left for the next scheduled run. The
                    // limiter already holds every request for the wait.
                    if rate_limited > self.retry.max_attempts.max(3) {
                        return Err(ApiError::RateLimited {
                            data_type: dt.name.into(),
                            attempts,
                        });
                    }
                    tracing::debug!(
                        data_type = dt.name,
                        wait_ms = wait.as_millis() as u64,
                        "retrying after the rate limit wait"
                    );
                    // The wait itself (announced, bounded by the policy)
                    // happens at the top of the loop for every request.
                    continue;
                }
                Attempt::Retry { cause, status } => (cause, status),
            };
            failures += 1;
            if failures >= self.retry.max_attempts {
                return Err(match status {
                    Some(s) if s >= 500 => ApiError::Server {
                        data_type: dt.name.into(),
                        status: s,
                        attempts,
                    },
                    Some(_) => ApiError::BadResponse {
                        data_type: dt.name.into(),
                        cause,
                        attempts,
                    },
                    None => ApiError::Network {
                        data_type: dt.name.into(),
                        host: url.host_str().unwrap_or("").into(),
                        cause,
                        attempts,
                    },
                });
            }
            let delay = backoff(&self.retry, failures);
            tracing::debug!(data_type = dt.name, attempt = attempts, %cause, delay_ms = delay.as_millis() as u64, "retrying");
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = self.cancel.cancelled() => return Err(ApiError::Cancelled),
            }
        }
    }

    async fn classify<T>(
        &self,
        dt: &DataType,
        resp: reqwest::Response,
        allow_404: bool,
        read: &impl Fn(&[u8]) -> Result<T, PageError>,
    ) -> Result<Option<T>, Attempt> {
        let status = resp.status();
        if let Some(limited) = self.limiter.observe(status.as_u16(), resp.headers()) {
            tracing::warn!(
                data_type = dt.name,
                wait_s = limited.wait.as_secs_f64(),
                tier = limited.tier.as_deref().unwrap_or("unknown"),
                "rate limited (429); pausing all requests"
            );
            return Err(Attempt::RetryAfter(limited.wait));
        }
        if status.is_server_error() {
            return Err(Attempt::Retry {
                cause: format!("HTTP {}", status.as_u16()),
                status: Some(status.as_u16()),
            });
        }
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            let detail = error_detail(resp).await;
            // Oura answers a missing scope with 401 for some collections
            // and 403 for others; its body names the scope problem.
            let lower = detail.to_ascii_lowercase();
            if lower.contains("scope") {
                return Err(Attempt::Fatal(ApiError::ScopeNotGranted {
                    data_type: dt.name.into(),
                    scope: dt.scope.into(),
                    detail: format!("HTTP {}", status.as_u16()),
                }));
            }
            if status == StatusCode::UNAUTHORIZED {
                return Err(Attempt::Unauthorized(detail));
            }
            return Err(Attempt::Fatal(ApiError::Forbidden {
                data_type: dt.name.into(),
                detail,
            }));
        }
        if status == StatusCode::NOT_FOUND && allow_404 {
            return Ok(None);
        }
        if status == StatusCode::NOT_FOUND {
            let base_path = self.base.path().trim_end_matches('/');
            return Err(Attempt::Fatal(ApiError::NotFound {
                data_type: dt.name.into(),
                path: resp.url().path().to_owned(),
                hint: if base_path.is_empty() {
                    String::new()
                } else {
                    format!("; the configured api.base_url ends in `{base_path}`: remove that path")
                },
            }));
        }
        if !status.is_success() {
            let detail = error_detail(resp).await;
            return Err(Attempt::Fatal(ApiError::Rejected {
                data_type: dt.name.into(),
                status: status.as_u16(),
                detail,
            }));
        }
        let html = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().contains("html"));
        let body = super::http::read_body(resp, self.max_body)
            .await
            .map_err(|e| body_attempt(dt, e, status))?;
        // A truncated or malformed page is a transient fault: it is read
        // here, once, so the retry loop can try again. Well-formed JSON of
        // the wrong shape would come back the same. A document that cannot
        // be decoded is neither: `read` sets it apart for the quarantine.
        let e = match read(&body) {
            Ok(v) => return Ok(Some(v)),
            Err(PageError::Shape(e)) => return Err(Attempt::Unreadable(e)),
            Err(PageError::Malformed(e)) => e,
        };
        let looks_html = html
            || body
                .iter()
                .find(|b| !b.is_ascii_whitespace())
                .is_some_and(|b| *b == b'<');
        Err(Attempt::Retry {
            cause: if looks_html {
                format!(
                    "HTTP {} with an HTML page instead of JSON: a captive portal, login page or proxy answered, or api.base_url is not the Oura API",
                    status.as_u16()
                )
            } else {
                format!("malformed JSON: {e}")
            },
            status: Some(status.as_u16()),
        })
    }
}

/// What a body that could not be read means for the retry loop.
fn body_attempt(dt: &DataType, e: BodyError, status: StatusCode) -> Attempt {
    match e {
        BodyError::TooLarge { limit, size } => Attempt::Fatal(ApiError::TooLarge {
            data_type: dt.name.into(),
            size: match size {
                BodySize::Announced(n) => format!("{n} bytes announced by Content-Length"),
                BodySize::AtLeast(n) => format!("{n} bytes or more, counted after decompression"),
            },
            limit,
        }),
        // Damaged on the way: another attempt may get it whole, but in the
        // end it is the body's fault, not the network's.
        BodyError::Corrupt(cause) => Attempt::Retry {
            cause: format!(
                "HTTP {} but the response body could not be decoded: its compression (Content-Encoding, e.g. gzip) is corrupt ({cause}), so the server or a proxy on the way sent damaged data; if it keeps happening, check what answers at api.base_url",
                status.as_u16()
            ),
            status: Some(status.as_u16()),
        },
        BodyError::Interrupted(e) => Attempt::Retry {
            cause: format!("reading body: {}", describe_reqwest(&e)),
            status: None,
        },
    }
}

fn auth_error(dt: &DataType, e: AuthError) -> ApiError {
    match e {
        AuthError::ReauthRequired(m) => ApiError::ReauthRequired(m),
        e @ (AuthError::NoToken | AuthError::AccountNoToken(_) | AuthError::Refresh(_)) => {
            ApiError::Auth {
                data_type: dt.name.into(),
                message: e.to_string(),
            }
        }
    }
}

/// The wall-clock instant `wait` from now.
fn wall_at(wait: Duration) -> jiff::Timestamp {
    crate::clock::now()
        .checked_add(jiff::SignedDuration::try_from(wait).unwrap_or(jiff::SignedDuration::MAX))
        .unwrap_or(jiff::Timestamp::MAX)
}

/// `14:05:10` in the machine's time zone.
pub fn local_time(t: jiff::Timestamp) -> String {
    t.to_zoned(jiff::tz::TimeZone::system())
        .strftime("%H:%M:%S")
        .to_string()
}

/// `45 s`, `58 min`, `2 h 5 min`.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s.div_ceil(60)),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

/// Exponential backoff with full jitter in the upper half, capped.
pub(crate) fn backoff(cfg: &RetryConfig, failures: u32) -> Duration {
    let exp = cfg
        .base_delay
        .saturating_mul(1u32 << failures.saturating_sub(1).min(20));
    let capped = exp.min(cfg.max_delay);
    let jitter = rand::rng().random_range(0.5..=1.0);
    capped.mul_f64(jitter)
}

/// Most of an error body read: its human part is at the start.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// The human part of an error body (RFC 7807 `detail`, or HTTPValidationError),
/// on one line and free of control characters: it is printed and logged.
async fn error_detail(resp: reqwest::Response) -> String {
    let body = super::http::read_prefix(resp, ERROR_BODY_LIMIT).await;
    super::text::one_line(&detail_of(&String::from_utf8_lossy(&body)))
}

fn detail_of(text: &str) -> String {
    let v: serde_json::Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(_) => return text.chars().take(200).collect(),
    };
    let detail = match &v["detail"] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(items) => items
            .iter()
            .filter_map(|i| {
                let loc = i["loc"]
                    .as_array()
                    .map(|l| {
                        l.iter()
                            .map(|p| p.to_string().replace('"', ""))
                            .collect::<Vec<_>>()
                            .join(".")
                    })
                    .unwrap_or_default();
                i["msg"].as_str().map(|m| format!("{loc}: {m}"))
            })
            .collect::<Vec<_>>()
            .join("; "),
        _ => String::new(),
    };
    let title = v["title"].as_str().or(v["message"].as_str()).unwrap_or("");
    match (title.is_empty(), detail.is_empty()) {
        (false, false) => format!("{title}: {detail}"),
        (true, false) => detail,
        (false, true) => title.to_owned(),
        (true, true) => text.chars().take(200).collect(),
    }
}

fn describe_reqwest(e: &reqwest::Error) -> String {
    // reqwest's Display includes the URL; ours carry no secrets, but keep
    // the message short and free of query strings anyway.
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "response body interrupted"
    } else {
        "request failed"
    };
    let mut source = std::error::Error::source(e);
    let mut root = String::new();
    while let Some(s) = source {
        root = s.to_string();
        source = s.source();
    }
    if root.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {root}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client whose limiter admits `usable` requests per `window` (its
    /// own account), against a port nothing listens on, telling `waits`
    /// about every announced wait.
    #[allow(clippy::disallowed_types, reason = "a test's plain shared state")]
    fn client_with_waits(window: Duration) -> (Client, Arc<std::sync::Mutex<Vec<RateLimitWait>>>) {
        client_waiting_at_most(window, Duration::from_secs(60))
    }

    /// [`client_with_waits`] whose run may wait `max_wait` in all.
    #[allow(clippy::disallowed_types, reason = "a test's plain shared state")]
    fn client_waiting_at_most(
        window: Duration,
        max_wait: Duration,
    ) -> (Client, Arc<std::sync::Mutex<Vec<RateLimitWait>>>) {
        let mut config = Config::for_base_url("http://127.0.0.1:9", "t", "/nonexistent/x".into());
        config.retry.max_attempts = 1;
        config.rate_limit = crate::config::RateLimitConfig {
            requests: 3,
            window,
            margin_percent: 2,
            ..Default::default()
        };
        let limiter = Arc::new(Limiter::new(&config.rate_limit));
        let auth = Arc::new(super::super::auth::StaticToken::new(Some(
            crate::secret::Secret::new("t"),
        )));
        let client = Client::new(&config, auth, limiter, CancellationToken::new()).unwrap();
        let waits = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = waits.clone();
        client.set_wait_policy(WaitPolicy {
            max_wait: Some(max_wait),
            notify: Some(Arc::new(move |w: &RateLimitWait| {
                seen.lock().unwrap().push(w.clone())
            })),
        });
        (client, waits)
    }

    #[tokio::test(start_paused = true)]
    #[allow(clippy::disallowed_types, reason = "a test's plain shared state")]
    async fn a_wait_on_the_shared_account_is_announced_unless_too_short_to_notice() {
        let dt = crate::registry::find("daily_sleep").unwrap();
        for (window, announced) in [
            (Duration::from_millis(500), 0),
            (Duration::from_secs(10), 1),
        ] {
            let (client, waits) = client_with_waits(window);
            // Two usable requests in the window; the third waits for the
            // first to leave it.
            client.limiter().acquire().await;
            client.limiter().acquire().await;
            let _ = client.fetch_document(dt, "x").await;
            let waits = waits.lock().unwrap();
            assert_eq!(waits.len(), announced, "{window:?}: {waits:?}");
            assert!(waits.iter().all(|w| w.hold == Hold::Account));
        }
    }

    /// Requests queued behind a spent quota each wait for the next slot,
    /// a few milliseconds later than the one before: one announcement for
    /// them all, every millisecond of it counted, and a new one only for a
    /// wait ending a minute or more later.
    #[tokio::test(start_paused = true)]
    #[allow(clippy::disallowed_types, reason = "a test's plain shared state")]
    async fn waits_queued_behind_one_spent_quota_are_announced_once() {
        let dt = crate::registry::find("heartrate").unwrap();
        let (client, waits) =
            client_waiting_at_most(Duration::from_secs(300), Duration::from_secs(3600));
        let now = tokio::time::Instant::now();
        for ms in [296_000, 296_040, 296_090, 296_150] {
            let until = now + Duration::from_millis(ms);
            client.announce_wait(dt, Hold::Account, until).unwrap();
        }
        assert_eq!(waits.lock().unwrap().len(), 1);
        let later = now + Duration::from_secs(400);
        client.announce_wait(dt, Hold::Account, later).unwrap();
        assert_eq!(
            waits.lock().unwrap().len(),
            2,
            "a wait ending later is told"
        );
        let spent = client.waits.lock().unwrap().spent;
        assert_eq!(spent, Duration::from_secs(400), "every wait counted");
    }

    #[test]
    fn a_single_document_that_cannot_be_decoded_is_set_apart() {
        let dt = crate::registry::find("personal_info").unwrap();
        let undecodable = |body: &[u8]| match read_page(dt, body) {
            Ok(ReadPage::Documents(p)) if p.documents.is_empty() => p.undecodable,
            _ => panic!("{}", String::from_utf8_lossy(body)),
        };
        let u = undecodable(br#"{"id": "me", "age": NaN}"#);
        assert_eq!(u[0].bytes, br#"{"id": "me", "age": NaN}"#);
        assert_eq!(u[0].readable, serde_json::json!({"id": "me"}));
        assert_eq!(undecodable(b"{\"id\": \"\xff\"} ").len(), 1);
        match read_page(dt, br#"{"id": "me", "age": 3"#) {
            Err(PageError::Malformed(m)) => assert!(m.contains("EOF"), "{m}"),
            _ => panic!("a cut body is a page error"),
        }
        match read_page(
            dt,
            br#"{"id": "me", "total": 123456789012345678901234567890}"#,
        ) {
            Ok(ReadPage::Documents(p)) => assert_eq!(
                p.documents[0].text,
                r#"{"id": "me", "total": 123456789012345678901234567890}"#
            ),
            _ => panic!("decodable"),
        }
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let cfg = RetryConfig {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
        };
        let d1 = backoff(&cfg, 1);
        assert!(d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100));
        let d3 = backoff(&cfg, 3);
        assert!(d3 >= Duration::from_millis(200) && d3 <= Duration::from_millis(400));
        for f in 5..40 {
            assert!(backoff(&cfg, f) <= Duration::from_secs(2));
        }
    }
}
