//! The Oura API simulator: deterministic synthetic persons (one by default,
//! see [`SimConfig::with_persons`]) served over HTTP with the real service's
//! quirks, quotas and failures. Used by `ouradb demo`, the
//! `ouradb-sim` binary, the tests and the benchmarks; nothing on the daemon's
//! sync path depends on it.
//!
//! It is its own crate and depends on nothing of ouradb's: it models Oura's
//! behaviour independently of ouradb's registry, so a wrong assumption in the
//! daemon is caught rather than mirrored.
//!
//! Embedding: build a [`SimConfig`], call [`SimServer::start`], talk to
//! [`SimServer::base_url`], inspect [`SimServer::request_log`], mutate the data
//! through [`SimServer::with_data`] / [`SimServer::advance_days`] (which also
//! fire webhooks), and finish with [`SimServer::stop`].

mod app_limit;
pub mod cli;
pub mod data;
mod faults;
mod fields;
mod gate;
mod http;
pub mod ibi;
mod oauth;
mod paging;
mod persons;
mod quirks;
mod webhook;

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use jiff::civil::Date;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

pub use app_limit::{Application, RateLimitCause};
pub use data::{Change, Dataset, Op};
pub use faults::Faults;
pub use persons::PersonConfig;
pub use quirks::Quirks;
pub use webhook::WebhookAttempt;

/// Every OAuth scope Oura grants today. Spec 1.37's `spo2Daily` is refused
/// as `invalid_scope` unless [`SimConfig::legacy_spo2_scope`] is set.
pub const ALL_SCOPES: &[&str] = &[
    "email",
    "personal",
    "daily",
    "heartrate",
    "workout",
    "tag",
    "session",
    "spo2",
    "heart_health",
];

/// The token endpoint of Oura's newer developer portal.
pub const NEW_PORTAL_TOKEN_PATH: &str = "/oauth/v2/ext/oauth-token";

/// Which Oura developer portal registered an application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Portal {
    /// The original portal: every grant works at `/oauth/token`.
    Legacy,
    /// The newer portal: code exchanges work at `/oauth/token`, but
    /// refreshes there answer `400 invalid_request` (without spending the
    /// refresh token); both work at [`NEW_PORTAL_TOKEN_PATH`].
    New,
    /// Like `New`, but `/oauth/token` refuses every grant of the app,
    /// code exchanges included, with `400 invalid_client`.
    NewOnly,
}

/// A registered OAuth application (also the webhook credentials).
#[derive(Debug, Clone)]
pub struct OAuthClient {
    pub id: String,
    pub secret: String,
    /// Allowed redirect URIs; empty accepts any.
    pub redirect_uris: Vec<String>,
    pub portal: Portal,
}

impl OAuthClient {
    /// An application from the original developer portal.
    pub fn legacy(id: &str, secret: &str) -> OAuthClient {
        OAuthClient {
            id: id.to_owned(),
            secret: secret.to_owned(),
            redirect_uris: Vec::new(),
            portal: Portal::Legacy,
        }
    }

    /// An application from Oura's newer developer portal, as people who
    /// register one today get.
    pub fn new_portal(id: &str, secret: &str) -> OAuthClient {
        OAuthClient {
            portal: Portal::New,
            ..OAuthClient::legacy(id, secret)
        }
    }
}

/// Everything a simulator instance can be told.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Listen address; port 0 picks a free port.
    pub addr: SocketAddr,
    /// Seed of the first person (and of fault injection).
    pub seed: u64,
    /// Days of the first person's history ending with `today`.
    pub days: u32,
    /// The simulated current day (the last day of data).
    pub today: Date,
    /// The first person's personal access tokens.
    pub tokens: Vec<String>,
    /// The persons besides the first (see the `persons` module docs and
    /// [`SimConfig::with_persons`]); a token none of them holds is a 401.
    pub persons: Vec<PersonConfig>,
    /// Scopes of a personal access token; tokens not listed get every scope.
    pub token_scopes: HashMap<String, Vec<String>>,
    /// Documents per page of the date-filtered collections.
    pub page_size: usize,
    /// Samples per page of heartrate and ring_battery_level.
    pub series_page_size: usize,
    /// Serve interbeat intervals only for the last this many days of the
    /// history (`None`: all of it, ~25,000 beats a night). A volume knob
    /// for tests and the demo that do not need years of beats.
    pub interbeat_days: Option<u32>,
    /// Requests allowed per access token in any sliding `rate_window`.
    pub rate_limit: u32,
    pub rate_window: Duration,
    /// Requests allowed per application (OAuth client id, or all personal
    /// access tokens together) in any sliding `app_rate_window`, across
    /// every person and token of it.
    pub app_rate_limit: u32,
    pub app_rate_window: Duration,
    /// Value of the `X-RateLimit-Tier` header.
    pub rate_tier: String,
    /// Send `X-RateLimit-Limit/-Remaining/-Window/-Reset` on every data
    /// response, not only on 429s (Oura documents them for 429s only).
    pub rate_headers_always: bool,
    /// Added to every data request before it is answered: the round trip
    /// to Oura, which on the real service dominates a sync.
    pub latency: Duration,
    /// Lifetime of OAuth-issued access tokens.
    pub access_token_lifetime: Duration,
    pub clients: Vec<OAuthClient>,
    /// Whether the simulated user approves `/oauth/authorize` requests.
    pub oauth_approve: bool,
    /// Scopes the user grants (intersected with the requested ones); `None`
    /// grants whatever is requested.
    pub oauth_granted_scopes: Option<Vec<String>>,
    /// Accept spec 1.37's `spo2Daily` scope (granting daily_spo2) instead of
    /// refusing it as `invalid_scope` like the live service does.
    pub legacy_spo2_scope: bool,
    /// `user_id` reported in webhook events about the first person.
    pub user_id: String,
    /// An expired membership answers 403 on every data route.
    pub membership_expired: bool,
    /// Collections (by path name, e.g. `daily_spo2`) the application may
    /// not read, with the status they answer (401 or 403) to any token.
    pub denied_collections: BTreeMap<String, u16>,
    pub faults: Faults,
    /// The live API's deviations from the spec (all on by default;
    /// [`Quirks::spec`] serves spec 1.37 exactly).
    pub quirks: Quirks,
    /// How long a webhook subscription lives before it needs renewing.
    pub webhook_lifetime: Duration,
    /// Delivery attempts per event (first try included).
    pub webhook_max_attempts: u32,
    /// Delay before the first retry; doubles each time.
    pub webhook_backoff: Duration,
    /// Keep a log of every request (needed by `request_log` and
    /// `max_requests_in_window`).
    pub log_requests: bool,
}

impl SimConfig {
    pub fn new(seed: u64, days: u32, today: Date) -> SimConfig {
        SimConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            seed,
            days,
            today,
            tokens: vec!["sim-token".to_owned()],
            persons: Vec::new(),
            token_scopes: HashMap::new(),
            page_size: 50,
            series_page_size: 1000,
            interbeat_days: None,
            rate_limit: 5000,
            rate_window: Duration::from_secs(300),
            app_rate_limit: 5000,
            app_rate_window: Duration::from_secs(300),
            rate_tier: "standard".to_owned(),
            rate_headers_always: false,
            latency: Duration::ZERO,
            access_token_lifetime: Duration::from_secs(86_400),
            clients: vec![
                OAuthClient::legacy("sim-client", "sim-secret"),
                OAuthClient::new_portal("sim-portal-client", "sim-portal-secret"),
            ],
            oauth_approve: true,
            oauth_granted_scopes: None,
            legacy_spo2_scope: false,
            user_id: format!("sim-user-{seed}"),
            membership_expired: false,
            denied_collections: BTreeMap::new(),
            faults: Faults::default(),
            quirks: Quirks::default(),
            webhook_lifetime: Duration::from_secs(90 * 86_400),
            webhook_max_attempts: 5,
            webhook_backoff: Duration::from_millis(200),
            log_requests: true,
        }
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        let today = Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).date();
        SimConfig::new(7, 730, today)
    }
}

/// One request as the simulator saw it.
#[derive(Debug, Clone)]
pub struct RequestLogEntry {
    pub method: String,
    pub path: String,
    pub query: String,
    /// Status sent, or 0 when the connection was cut before a status.
    pub status: u16,
    /// Bearer token presented, if any.
    pub token: Option<String>,
    /// Route template, e.g. `GET /v2/usercollection/sleep`.
    pub endpoint: String,
    /// Monotonic receive instant on the simulator's (advanceable) clock.
    pub at: Instant,
    pub time: Timestamp,
    /// Injected fault, if one hit this request.
    pub fault: Option<&'static str>,
    /// The person and application of the token presented, if it was valid.
    pub person: Option<usize>,
    pub application: Option<Application>,
}

pub(crate) struct AccessToken {
    grant: Option<u64>,
    person: usize,
    app: Application,
    /// `None` = every scope.
    scopes: Option<Vec<String>>,
    expires: Option<Instant>,
}

pub(crate) struct AuthState {
    access: HashMap<String, AccessToken>,
    refresh: HashMap<String, u64>,
    grants: HashMap<u64, oauth::Grant>,
    codes: HashMap<String, oauth::AuthCode>,
    next_grant: u64,
}

pub(crate) struct Shared {
    cfg: SimConfig,
    people: persons::People,
    auth: Mutex<AuthState>,
    limits: app_limit::Limits,
    log: Mutex<Vec<RequestLogEntry>>,
    counters: Mutex<HashMap<(String, u16), u64>>,
    faults: RwLock<Faults>,
    fault_seq: AtomicU64,
    burst_left: AtomicU64,
    membership_expired: AtomicBool,
    denied: RwLock<BTreeMap<String, u16>>,
    clock_offset: Mutex<Duration>,
    page_key: [u8; 32],
    webhooks: Mutex<webhook::Registry>,
    http: reqwest::Client,
    inflight: AtomicUsize,
    /// Data requests being answered now, and the most at once since the
    /// start (or the last [`SimStats::reset_max_concurrent`]).
    data_in_flight: AtomicUsize,
    max_data_in_flight: AtomicUsize,
    gate: gate::Gate,
    idle: Notify,
    shutdown: watch::Receiver<bool>,
}

impl Shared {
    /// Monotonic clock, shifted by `advance_time`.
    pub(crate) fn now(&self) -> Instant {
        Instant::now() + *self.clock_offset.lock().unwrap()
    }

    /// Wall clock, shifted by `advance_time`.
    pub(crate) fn wall(&self) -> Timestamp {
        let off = *self.clock_offset.lock().unwrap();
        Timestamp::now() + jiff::SignedDuration::try_from(off).unwrap_or_default()
    }

    /// Sleeps unless the server is stopping.
    pub(crate) async fn sleep(&self, d: Duration) {
        let mut rx = self.shutdown.clone();
        tokio::select! {
            _ = tokio::time::sleep(d) => {}
            _ = rx.wait_for(|s| *s) => {}
        }
    }
}

/// Counters of a running simulator, cheap to clone.
#[derive(Clone)]
pub struct SimStats {
    shared: Arc<Shared>,
}

impl SimStats {
    /// See [`SimServer::max_concurrent_requests`].
    pub fn max_concurrent_requests(&self) -> usize {
        self.shared.max_data_in_flight.load(Ordering::SeqCst)
    }

    /// Data requests being answered now.
    pub fn concurrent_requests(&self) -> usize {
        self.shared.data_in_flight.load(Ordering::SeqCst)
    }

    /// Starts the maximum again from the requests in flight now.
    pub fn reset_max_concurrent(&self) {
        let now = self.shared.data_in_flight.load(Ordering::SeqCst);
        self.shared.max_data_in_flight.store(now, Ordering::SeqCst);
    }

    /// 429s answered so far because of `cause`.
    pub fn rate_limited(&self, cause: RateLimitCause) -> u64 {
        self.shared.limits.refused(cause)
    }

    /// Persons whose dataset has been generated (asked for at least once).
    pub fn persons_generated(&self) -> usize {
        self.shared.people.generated()
    }

    /// Responses with `status` across every endpoint.
    pub fn responses_with_status(&self, status: u16) -> u64 {
        self.shared
            .counters
            .lock()
            .unwrap()
            .iter()
            .filter(|((_, s), _)| *s == status)
            .map(|(_, n)| *n)
            .sum()
    }
}

/// Counts one data request as being answered while it lives.
pub(crate) struct Answering<'a>(&'a Shared);

impl<'a> Answering<'a> {
    pub(crate) fn start(s: &'a Shared) -> Answering<'a> {
        let now = s.data_in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        s.max_data_in_flight.fetch_max(now, Ordering::SeqCst);
        Answering(s)
    }
}

impl Drop for Answering<'_> {
    fn drop(&mut self) {
        self.0.data_in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Day of every document of the id-less collections, by (collection, id).
fn days_of(data: &Dataset, idless: &[String]) -> HashMap<(String, String), Date> {
    idless
        .iter()
        .flat_map(|c| {
            data.documents(c)
                .iter()
                .map(move |d| ((c.clone(), d.id.clone()), d.day))
        })
        .collect()
}

/// A running simulator.
pub struct SimServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop_tx: watch::Sender<bool>,
    task: JoinHandle<io::Result<()>>,
}

impl SimServer {
    /// Generates the first person's dataset and starts serving (the other
    /// persons' datasets are generated on first use).
    pub async fn start(cfg: SimConfig) -> io::Result<SimServer> {
        let data = Dataset::generate(cfg.seed, cfg.days, cfg.today);
        SimServer::start_with_data(cfg, data).await
    }

    /// Starts serving a dataset built elsewhere as the first person's
    /// (saves regenerating it).
    pub async fn start_with_data(cfg: SimConfig, data: Dataset) -> io::Result<SimServer> {
        let people = persons::People::new(&cfg, data);
        let mut access = HashMap::new();
        for (t, person) in people.token_owners()? {
            let scopes = cfg.token_scopes.get(&t).cloned();
            let token = AccessToken {
                grant: None,
                person,
                app: Application::PersonalTokens,
                scopes,
                expires: None,
            };
            access.insert(t, token);
        }
        let listener = tokio::net::TcpListener::bind(cfg.addr).await?;
        let addr = listener.local_addr()?;
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut page_key = [0u8; 32];
        rand::Rng::fill(&mut rand::rng(), &mut page_key[..]);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(io::Error::other)?;
        let shared = Arc::new(Shared {
            people,
            auth: Mutex::new(AuthState {
                access,
                refresh: HashMap::new(),
                grants: HashMap::new(),
                codes: HashMap::new(),
                next_grant: 1,
            }),
            limits: app_limit::Limits::default(),
            log: Mutex::new(Vec::new()),
            counters: Mutex::new(HashMap::new()),
            faults: RwLock::new(cfg.faults.clone()),
            fault_seq: AtomicU64::new(0),
            burst_left: AtomicU64::new(0),
            membership_expired: AtomicBool::new(cfg.membership_expired),
            denied: RwLock::new(cfg.denied_collections.clone()),
            clock_offset: Mutex::new(Duration::ZERO),
            page_key,
            webhooks: Mutex::new(webhook::Registry::default()),
            http,
            inflight: AtomicUsize::new(0),
            data_in_flight: AtomicUsize::new(0),
            max_data_in_flight: AtomicUsize::new(0),
            gate: gate::Gate::open(),
            idle: Notify::new(),
            shutdown: stop_rx.clone(),
            cfg,
        });
        let app = http::router(shared.clone());
        let mut rx = stop_rx;
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.wait_for(|s| *s).await;
                })
                .await
        });
        Ok(SimServer {
            shared,
            addr,
            stop_tx,
            task,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn config(&self) -> &SimConfig {
        &self.shared.cfg
    }

    pub fn request_log(&self) -> Vec<RequestLogEntry> {
        self.shared.log.lock().unwrap().clone()
    }

    pub fn clear_request_log(&self) {
        self.shared.log.lock().unwrap().clear();
    }

    /// Requests per (endpoint template, status).
    pub fn counters(&self) -> BTreeMap<(String, u16), u64> {
        self.shared
            .counters
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }

    /// Requests seen for one endpoint template and status.
    pub fn count(&self, endpoint: &str, status: u16) -> u64 {
        self.shared
            .counters
            .lock()
            .unwrap()
            .get(&(endpoint.to_owned(), status))
            .copied()
            .unwrap_or(0)
    }

    /// The largest number of requests carrying `token` that arrived within
    /// any sliding `window` (rejected ones included).
    pub fn max_requests_in_window(&self, token: &str, window: Duration) -> usize {
        self.max_in_window(|e| e.token.as_deref() == Some(token), window)
    }

    /// The largest number of requests counted against `app` (every token
    /// of it, every person) within any sliding `window`, rejected included.
    pub fn max_app_requests_in_window(&self, app: &Application, window: Duration) -> usize {
        self.max_in_window(|e| e.application.as_ref() == Some(app), window)
    }

    fn max_in_window(&self, pick: impl Fn(&RequestLogEntry) -> bool, window: Duration) -> usize {
        let log = self.shared.log.lock().unwrap();
        let times: Vec<Instant> = log.iter().filter(|e| pick(e)).map(|e| e.at).collect();
        drop(log);
        most_in_window(times, window)
    }

    /// A handle on the server's counters that outlives borrows of the
    /// server (a benchmark keeps it while the server runs on its own thread).
    pub fn stats(&self) -> SimStats {
        SimStats {
            shared: self.shared.clone(),
        }
    }

    /// From now on, each data request waits for a permit from
    /// [`SimServer::allow_requests`] before it is answered (see the `gate`
    /// module): a test steps a client's run forward in known amounts.
    pub fn hold_requests(&self) {
        self.shared.gate.hold();
    }

    /// Lets `n` more data requests through while held.
    pub fn allow_requests(&self, n: usize) {
        self.shared.gate.allow(n);
    }

    /// Answers every data request again without waiting.
    pub fn release_requests(&self) {
        self.shared.gate.release();
    }

    /// The most data requests (`/v2/usercollection/...`) the server was
    /// answering at the same moment: from their arrival, latency included,
    /// until their response was handed to the connection.
    pub fn max_concurrent_requests(&self) -> usize {
        self.stats().max_concurrent_requests()
    }

    /// Reads the first person's dataset.
    pub fn read_data<R>(&self, f: impl FnOnce(&Dataset) -> R) -> R {
        self.read_person_data(0, f)
    }

    /// Reads a person's dataset (generating it if nobody asked for it yet).
    /// Panics on a person the configuration does not have.
    pub fn read_person_data<R>(&self, person: usize, f: impl FnOnce(&Dataset) -> R) -> R {
        f(&self.shared.people.data(person).read().unwrap())
    }

    /// Mutates the first person's dataset; the changes `f` returns are
    /// announced to webhook subscribers and returned.
    pub fn with_data(&self, f: impl FnOnce(&mut Dataset) -> Vec<Change>) -> Vec<Change> {
        self.with_person_data(0, f)
    }

    /// Mutates a person's dataset; the changes `f` returns are announced to
    /// webhook subscribers with that person's `user_id`, and returned.
    pub fn with_person_data(
        &self,
        person: usize,
        f: impl FnOnce(&mut Dataset) -> Vec<Change>,
    ) -> Vec<Change> {
        let data = self.shared.people.data(person);
        let mut data = data.write().unwrap();
        self.mutate(person, &mut data, f)
    }

    fn mutate(
        &self,
        person: usize,
        data: &mut Dataset,
        f: impl FnOnce(&mut Dataset) -> Vec<Change>,
    ) -> Vec<Change> {
        let idless = &self.shared.cfg.quirks.idless;
        let days_before = days_of(data, idless);
        let changes = f(data);
        // Documents served without an id are announced by their day.
        let days_after = days_of(data, idless);
        let announced: Vec<Change> = changes
            .iter()
            .map(|c| {
                let key = (c.collection.to_owned(), c.id.clone());
                match days_after.get(&key).or_else(|| days_before.get(&key)) {
                    Some(day) => Change {
                        id: day.to_string(),
                        ..c.clone()
                    },
                    None => c.clone(),
                }
            })
            .collect();
        let user_id = &self.shared.people.config(person).user_id;
        webhook::emit(&self.shared, user_id, &announced);
        changes
    }

    /// The first person's documents of a collection exactly as the
    /// simulator serves them (with the configured quirks), in order.
    pub fn served_documents(&self, collection: &str) -> Vec<serde_json::Value> {
        self.served_person_documents(0, collection)
    }

    /// [`SimServer::served_documents`] of any person.
    pub fn served_person_documents(
        &self,
        person: usize,
        collection: &str,
    ) -> Vec<serde_json::Value> {
        self.read_person_data(person, |data| {
            data.documents(collection)
                .iter()
                .map(|d| {
                    let json = quirks::serve(
                        &self.shared.cfg.quirks,
                        collection,
                        d,
                        data.utc_offset_seconds(d.day),
                    );
                    serde_json::from_str(&json).expect("served documents are JSON")
                })
                .collect()
        })
    }

    /// Moves every person's current day forward (new days appear, webhooks
    /// fire); returns the first person's changes.
    pub fn advance_days(&self, days: u32) -> Vec<Change> {
        let mut first = Vec::new();
        self.shared.people.advance(days, |person, data| {
            let mut data = data.write().unwrap();
            let changes = self.mutate(person, &mut data, |d| d.advance_days(days));
            if person == 0 {
                first = changes;
            }
        });
        first
    }

    /// The configuration of every person, the first included.
    pub fn persons(&self) -> Vec<PersonConfig> {
        (0..self.shared.people.len())
            .map(|i| self.shared.people.config(i).clone())
            .collect()
    }

    /// Signs the simulated browser in as `person`: authorization requests
    /// without a `login_hint` grant access to that person's data from now on.
    pub fn sign_in_as(&self, person: usize) {
        self.shared.people.sign_in_as(person);
    }

    /// Moves the simulator's clocks forward: token, code and subscription
    /// expiry and the rate-limit window all see the jump.
    pub fn advance_time(&self, by: Duration) {
        *self.shared.clock_offset.lock().unwrap() += by;
    }

    pub fn set_faults(&self, faults: Faults) {
        self.shared.burst_left.store(0, Ordering::SeqCst);
        *self.shared.faults.write().unwrap() = faults;
    }

    pub fn set_membership_expired(&self, expired: bool) {
        self.shared
            .membership_expired
            .store(expired, Ordering::SeqCst);
    }

    /// Answers `status` (401 or 403) for collection `name` to every token,
    /// as Oura does for a collection not enabled for the application;
    /// `None` serves it again.
    pub fn deny_collection(&self, name: &str, status: Option<u16>) {
        let mut denied = self.shared.denied.write().unwrap();
        match status {
            Some(s) => denied.insert(name.to_owned(), s),
            None => denied.remove(name),
        };
    }

    /// The user withdraws consent for an OAuth client: every access and
    /// refresh token issued to it stops working.
    pub fn revoke_grant(&self, client_id: &str) {
        oauth::revoke_client(&self.shared, client_id, None);
    }

    /// One person withdraws consent for an OAuth client: their tokens of
    /// it stop working, other persons' grants to it stay.
    pub fn revoke_person_grant(&self, client_id: &str, person: usize) {
        oauth::revoke_client(&self.shared, client_id, Some(person));
    }

    /// Forgets a personal access token (or any access token).
    pub fn revoke_token(&self, token: &str) {
        self.shared.auth.lock().unwrap().access.remove(token);
    }

    /// Every webhook delivery attempt so far.
    pub fn webhook_attempts(&self) -> Vec<WebhookAttempt> {
        self.shared.webhooks.lock().unwrap().attempts.clone()
    }

    /// Waits until no webhook delivery is in flight (bounded by `timeout`);
    /// returns whether it got idle.
    pub async fn webhooks_idle(&self, timeout: Duration) -> bool {
        let wait = async {
            loop {
                let notified = self.shared.idle.notified();
                if self.shared.inflight.load(Ordering::SeqCst) == 0 {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(timeout, wait).await.is_ok()
    }

    /// Stops accepting, lets in-flight requests finish (stalled ones are cut
    /// short) and waits for the server task.
    pub async fn stop(self) {
        let _ = self.stop_tx.send(true);
        self.shared.gate.release();
        let mut task = self.task;
        if tokio::time::timeout(Duration::from_secs(5), &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }
}

/// The most of `times` within any sliding `window`. Log entries are
/// stamped on arrival but logged as answered, so a slow answer comes after
/// later arrivals: the times are put in order first.
fn most_in_window(mut times: Vec<Instant>, window: Duration) -> usize {
    times.sort();
    let mut best = 0;
    let mut lo = 0;
    for hi in 0..times.len() {
        while times[hi].duration_since(times[lo]) >= window {
            lo += 1;
        }
        best = best.max(hi - lo + 1);
    }
    best
}

#[cfg(test)]
mod window_tests {
    use super::*;

    #[test]
    fn arrivals_logged_out_of_order_are_counted_in_their_own_windows() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let second = Duration::from_secs(1);
        // Logged as answered: the request that arrived at 0 ms answered last.
        let logged = vec![at(1500), at(1600), at(1700), at(0)];
        assert_eq!(most_in_window(logged, second), 3);
        let logged = vec![at(900), at(100), at(950), at(0), at(2000)];
        assert_eq!(most_in_window(logged, second), 4);
        assert_eq!(most_in_window(Vec::new(), second), 0);
    }
}
