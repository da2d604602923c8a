//! The endpoint Oura calls: answers the verification GET and accepts signed
//! event POSTs, queueing them for the workers.
//!
//! Order of checks on a POST: size (413), signature headers and timestamp
//! freshness (401), signature (401), exact replay (409), body (400). The
//! signature comes before parsing so unauthenticated callers learn nothing
//! about what the body should look like.

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
#[allow(clippy::disallowed_types, reason = "never held across an .await")]
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::json;
use sha2::Sha256;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::WebhookError;
use super::route::Accounts;
use super::worker::{self, Job};
use crate::api::Operation;
use crate::api::subscriptions::AppCredentials;
use crate::api::text::one_line_cut;
use crate::config::{Config, Secret, WebhookSettings};
use crate::registry;
use crate::sync::Clock;

/// Oura events are a few hundred bytes; anything this large is not one.
pub const MAX_BODY: usize = 64 * 1024;

/// Events whose timestamp is further than this from our clock are refused.
pub const MAX_SKEW: Duration = Duration::from_secs(300);

/// Parallel workers; events for one document always go to the same worker,
/// so a create and a delete of it are applied in the order they arrived.
pub const WORKERS: usize = 4;

/// Queued events per worker before the receiver answers 503 (Oura retries).
pub const QUEUE_PER_WORKER: usize = 1024;

/// Everything the receiver needs besides the engine.
#[derive(Clone)]
pub struct ReceiverOptions {
    pub listen: SocketAddr,
    /// The path of `callback_url`, e.g. `/oura/webhook`.
    pub path: String,
    pub verification_token: Secret,
    /// The OAuth client secret that keys the signatures.
    pub client_secret: Secret,
    /// Wall clock for the timestamp check.
    pub clock: Clock,
    pub queue_per_worker: usize,
}

impl std::fmt::Debug for ReceiverOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceiverOptions")
            .field("listen", &self.listen)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl ReceiverOptions {
    /// The receiver of `settings`, checking signatures with `client_secret`.
    pub fn new(settings: &WebhookSettings, client_secret: Secret, clock: Clock) -> ReceiverOptions {
        ReceiverOptions {
            listen: settings.listen,
            path: callback_path(&settings.callback_url),
            verification_token: settings.verification_token.clone(),
            client_secret,
            clock,
            queue_per_worker: QUEUE_PER_WORKER,
        }
    }

    /// The receiver of `config`, which must have webhooks enabled.
    pub fn from_config(config: &Config, clock: Clock) -> Result<ReceiverOptions, WebhookError> {
        let settings = config.webhook.enabled().ok_or(WebhookError::Disabled)?;
        let app = AppCredentials::from_config(config)?;
        Ok(ReceiverOptions::new(settings, app.client_secret, clock))
    }
}

fn callback_path(url: &url::Url) -> String {
    match url.path() {
        "" => "/".to_owned(),
        p => p.to_owned(),
    }
}

/// Counters for logs and tests.
#[derive(Debug, Default)]
pub struct WebhookStats {
    /// Events queued.
    pub accepted: AtomicU64,
    /// Events the workers finished (stored, deleted, not found or failed).
    pub processed: AtomicU64,
    /// Events whose fetch or write failed.
    pub failed: AtomicU64,
    /// Requests refused (any 4xx/5xx answer).
    pub rejected: AtomicU64,
}

/// A running receiver.
#[derive(Debug, Clone)]
pub struct WebhookHandle {
    pub addr: SocketAddr,
    pub stats: Arc<WebhookStats>,
}

impl WebhookHandle {
    /// Waits until `n` events were processed in total; false on timeout.
    pub async fn wait_processed(&self, n: u64, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.stats.processed.load(Ordering::SeqCst) < n {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }
}

/// What identifies one event independently of its delivery attempt.
type EventKey = (String, String, String, String);

/// Recently accepted deliveries, forgotten once their timestamp could no
/// longer pass the freshness check.
#[derive(Default)]
struct Seen {
    signatures: HashSet<String>,
    events: HashSet<EventKey>,
    order: VecDeque<(Timestamp, String, Option<EventKey>)>,
}

impl Seen {
    fn prune(&mut self, now: Timestamp) {
        let horizon = now - jiff::SignedDuration::try_from(MAX_SKEW * 2).expect("small");
        while let Some((at, _, _)) = self.order.front() {
            if *at >= horizon {
                break;
            }
            let (_, sig, key) = self.order.pop_front().expect("front exists");
            self.signatures.remove(&sig);
            if let Some(k) = key {
                self.events.remove(&k);
            }
        }
    }

    fn forget(&mut self, sig: &str, key: &EventKey) {
        self.signatures.remove(sig);
        self.events.remove(key);
        self.order.retain(|(_, s, _)| s != sig);
    }
}

struct Recv {
    opts: ReceiverOptions,
    queues: Vec<mpsc::Sender<Job>>,
    #[allow(clippy::disallowed_types, reason = "never held across an .await")]
    seen: Mutex<Seen>,
    stats: Arc<WebhookStats>,
    types: HashSet<&'static str>,
}

/// Binds `opts.listen` and serves until `cancel`; the workers drain the
/// queue, each event through its account's engine (`accounts`: one engine,
/// or every account's, see [`super::route`]).
pub async fn start(
    accounts: impl Into<Accounts>,
    opts: ReceiverOptions,
    cancel: CancellationToken,
    tracker: &TaskTracker,
) -> Result<WebhookHandle, WebhookError> {
    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .map_err(|source| WebhookError::Bind {
            addr: opts.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| WebhookError::Bind {
        addr: opts.listen,
        source,
    })?;
    let stats = Arc::new(WebhookStats::default());
    let accounts = Arc::new(accounts.into());
    let engine = accounts.first().clone();

    // Signatures accepted before a restart stay refused.
    let mut seen = Seen::default();
    {
        let now = (opts.clock)();
        let since = now - jiff::SignedDuration::try_from(MAX_SKEW * 2).expect("small");
        let recent = engine.store().webhook_signatures_since(since).await?;
        for sig in recent {
            seen.signatures.insert(sig.clone());
            seen.order.push_back((now, sig, None));
        }
    }

    let mut queues = Vec::with_capacity(WORKERS);
    for _ in 0..WORKERS {
        let (tx, rx) = mpsc::channel(opts.queue_per_worker.max(1));
        queues.push(tx);
        tracker.spawn(worker::run(
            accounts.clone(),
            rx,
            stats.clone(),
            opts.clock.clone(),
            cancel.clone(),
        ));
    }
    let types: HashSet<&'static str> = engine.config().types.iter().map(|d| d.name).collect();
    // Events acknowledged before the last shutdown but not applied then.
    let pending = worker::pending_jobs(engine.store().pending_webhook_events().await?, &types);
    if !pending.is_empty() {
        tracing::info!(
            count = pending.len(),
            "applying webhook events saved at the last shutdown"
        );
    }
    for job in pending {
        let shard = shard_of(job.dt.name, &job.object_id, queues.len());
        // A full queue leaves the rest saved for the next start.
        if queues[shard].try_send(job).is_err() {
            break;
        }
    }
    let state = Arc::new(Recv {
        types,
        opts: opts.clone(),
        queues,
        #[allow(clippy::disallowed_types, reason = "never held across an .await")]
        seen: Mutex::new(seen),
        stats: stats.clone(),
    });
    let app = Router::new()
        .route(&opts.path, get(verify).post(event))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state);
    tracing::info!(%addr, path = %opts.path, "webhook receiver listening");
    tracker.spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { cancel.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "webhook receiver stopped");
        }
    });
    Ok(WebhookHandle { addr, stats })
}

fn reply(status: StatusCode, detail: &str) -> Response {
    (status, axum::Json(json!({ "detail": detail }))).into_response()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    // Length is not secret (the token's length is fixed by the operator).
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[derive(Deserialize)]
struct VerifyQuery {
    verification_token: Option<String>,
    challenge: Option<String>,
}

async fn verify(State(st): State<Arc<Recv>>, Query(q): Query<VerifyQuery>) -> Response {
    let ok = q.verification_token.as_deref().is_some_and(|t| {
        constant_time_eq(t.as_bytes(), st.opts.verification_token.expose().as_bytes())
    });
    if !ok {
        st.stats.rejected.fetch_add(1, Ordering::Relaxed);
        tracing::warn!("webhook verification with a wrong or missing token refused");
        return reply(StatusCode::FORBIDDEN, "verification token mismatch");
    }
    match q.challenge {
        Some(challenge) => {
            tracing::info!("webhook callback verified by Oura");
            axum::Json(json!({ "challenge": challenge })).into_response()
        }
        None => {
            st.stats.rejected.fetch_add(1, Ordering::Relaxed);
            reply(StatusCode::BAD_REQUEST, "challenge missing")
        }
    }
}

/// Whether `signature` (hex, either case) is the HMAC-SHA256 of
/// `timestamp + body` keyed by `secret`, compared in constant time.
pub fn signature_valid(secret: &str, timestamp: &str, body: &[u8], signature: &str) -> bool {
    let Ok(given) = hex::decode(signature.trim()) else {
        return false;
    };
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(timestamp.as_bytes());
    mac.update(body);
    mac.verify_slice(&given).is_ok()
}

/// `x-oura-timestamp`: unix seconds (what Oura sends) or RFC 3339.
fn parse_timestamp(text: &str) -> Option<Timestamp> {
    let t = text.trim();
    match t.parse::<i64>() {
        Ok(secs) => Timestamp::from_second(secs).ok(),
        Err(_) => t.parse::<Timestamp>().ok(),
    }
}

#[derive(Deserialize)]
struct EventBody {
    event_type: String,
    data_type: String,
    object_id: String,
    #[serde(default)]
    event_time: Option<String>,
    /// The Oura user the event is about (routes it to an account).
    #[serde(default)]
    user_id: Option<String>,
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

async fn event(State(st): State<Arc<Recv>>, headers: HeaderMap, body: Bytes) -> Response {
    let resp = handle_event(&st, &headers, &body);
    if !resp.status().is_success() {
        st.stats.rejected.fetch_add(1, Ordering::Relaxed);
    }
    resp
}

fn handle_event(st: &Recv, headers: &HeaderMap, body: &[u8]) -> Response {
    let (Some(sig), Some(ts)) = (
        header(headers, "x-oura-signature"),
        header(headers, "x-oura-timestamp"),
    ) else {
        tracing::warn!("webhook event without signature headers refused");
        return reply(StatusCode::UNAUTHORIZED, "signature headers missing");
    };
    let now = (st.opts.clock)();
    let fresh =
        parse_timestamp(ts).is_some_and(|t| now.duration_since(t).unsigned_abs() <= MAX_SKEW);
    if !fresh {
        tracing::warn!(
            timestamp = ts,
            "webhook event with a stale or bad timestamp refused"
        );
        return reply(
            StatusCode::UNAUTHORIZED,
            "timestamp outside the accepted window",
        );
    }
    if !signature_valid(st.opts.client_secret.expose(), ts, body, sig) {
        tracing::warn!("webhook event with an invalid signature refused");
        return reply(StatusCode::UNAUTHORIZED, "invalid signature");
    }
    let sig = sig.trim().to_ascii_uppercase();
    let ev: EventBody = match serde_json::from_slice(body) {
        Ok(ev) => ev,
        Err(e) => {
            tracing::warn!(error = %e, "signed webhook event with an unreadable body refused");
            return reply(StatusCode::BAD_REQUEST, "body is not an Oura webhook event");
        }
    };
    let Some(op) = Operation::parse(&ev.event_type) else {
        return reply(StatusCode::BAD_REQUEST, "unknown event_type");
    };
    // An `object_id` that names no document is Oura's (signed) event all
    // the same: the worker records it as rejected without fetching.
    let key: EventKey = (
        ev.event_type.clone(),
        ev.data_type.clone(),
        ev.object_id.clone(),
        ev.event_time.clone().unwrap_or_default(),
    );
    {
        let mut seen = st.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.prune(now);
        if seen.signatures.contains(&sig) {
            tracing::warn!(object_id = %one_line_cut(&ev.object_id, 80), "replayed webhook event refused");
            return reply(StatusCode::CONFLICT, "event already received");
        }
        if seen.events.contains(&key) {
            // A new signature over the same event is Oura re-delivering
            // (our earlier answer got lost): acknowledge, do not redo it.
            tracing::debug!(object_id = %one_line_cut(&ev.object_id, 80), "duplicate webhook delivery acknowledged");
            return axum::Json(json!({"status": "duplicate"})).into_response();
        }
        seen.signatures.insert(sig.clone());
        seen.events.insert(key.clone());
        seen.order.push_back((now, sig.clone(), Some(key.clone())));
    }
    let Some(dt) = registry::find_by_webhook(&ev.data_type).filter(|d| st.types.contains(d.name))
    else {
        tracing::debug!(data_type = %one_line_cut(&ev.data_type, 80), "webhook event for a type not synced ignored");
        return axum::Json(json!({"status": "ignored"})).into_response();
    };
    let job = Job {
        op,
        dt,
        object_id: ev.object_id,
        event_time: ev.event_time,
        signature: sig.clone(),
        received_at: now,
        user_id: ev.user_id,
        account: None,
    };
    let shard = shard_of(dt.name, &job.object_id, st.queues.len());
    match st.queues[shard].try_send(job) {
        Ok(()) => {
            st.stats.accepted.fetch_add(1, Ordering::Relaxed);
            axum::Json(json!({"status": "queued"})).into_response()
        }
        Err(e) => {
            // Not remembered, so Oura's retry is accepted once there is room.
            st.seen
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .forget(&sig, &key);
            let full = matches!(e, mpsc::error::TrySendError::Full(_));
            tracing::warn!(full, "webhook queue unavailable; Oura will retry");
            reply(StatusCode::SERVICE_UNAVAILABLE, "busy, retry later")
        }
    }
}

fn shard_of(data_type: &str, object_id: &str, shards: usize) -> usize {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (data_type, object_id).hash(&mut h);
    (h.finish() % shards.max(1) as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &str, ts: &str, body: &[u8]) -> String {
        let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
        m.update(ts.as_bytes());
        m.update(body);
        hex::encode_upper(m.finalize().into_bytes())
    }

    #[test]
    fn signatures_any_case_valid_others_not() {
        let s = sign("k", "100", b"{}");
        assert!(signature_valid("k", "100", b"{}", &s));
        assert!(signature_valid("k", "100", b"{}", &s.to_lowercase()));
        assert!(!signature_valid("k", "101", b"{}", &s));
        assert!(!signature_valid("other", "100", b"{}", &s));
        assert!(!signature_valid("k", "100", b"{}", "zz"));
        assert!(!signature_valid("k", "100", b"{}", &s[..10]));
    }

    #[test]
    fn timestamps_parse_as_seconds_or_rfc3339() {
        assert_eq!(parse_timestamp("0"), Some(Timestamp::UNIX_EPOCH));
        assert!(parse_timestamp("2024-01-01T00:00:00Z").is_some());
        assert!(parse_timestamp("soon").is_none());
    }

    #[test]
    fn constant_time_eq_compares_bytes() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
