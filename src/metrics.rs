//! Prometheus metrics: what the process counts as it goes ([`Live`]:
//! requests by outcome, 429s, rate-limit waits, webhook outcomes, store
//! commit durations) and the text `/metrics` serves ([`render`]), which adds
//! what a scrape reads from the database and the token file ([`Snapshot`]).
//!
//! Counters are counted where they happen (one call each in the client, the
//! engine and the webhook worker, on the process-wide [`live`] set); every
//! other series is derived at scrape time from the state `ouradb status`
//! reads, so the two never disagree. The exposition is prometheus-client's
//! Prometheus text format (0.0.4), which `promtool check metrics` and every
//! Prometheus version read. Series of the database's state carry the
//! `account` (the `[[account]]` name, `default` without one) and, per data
//! type, the `data_type`; the process's counters and the request account's
//! window are the whole process's (the accounts share one application
//! quota).

use std::sync::LazyLock;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

use crate::error_kind::ErrorKind;

/// The `Content-Type` of what [`render`] returns.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Every series name, for the README and the tests.
pub const SERIES: &[&str] = &[
    "ouradb_build_info",
    "ouradb_last_success_timestamp_seconds",
    "ouradb_documents",
    "ouradb_quarantined_documents",
    "ouradb_pending_removals",
    "ouradb_schedule_period_seconds",
    "ouradb_requests_total",
    "ouradb_rate_limited_total",
    "ouradb_rate_limit_wait_seconds_total",
    "ouradb_quota_used_ratio",
    "ouradb_webhook_events_total",
    "ouradb_oauth_token_expiry_timestamp_seconds",
    "ouradb_auth_failing",
    "ouradb_not_available",
    "ouradb_not_available_retry_timestamp_seconds",
    "ouradb_store_commit_duration_seconds",
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TypeLabel {
    data_type: &'static str,
    account: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusalLabel {
    data_type: &'static str,
    account: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AccountLabel {
    account: String,
}

type FloatCounter = Counter<f64, AtomicU64>;

/// What the process counts as it goes. One set per process ([`live`]): the
/// hooks sit deep in the client and the engine, where threading a handle
/// through would touch every constructor for four counters.
#[derive(Debug)]
pub struct Live {
    requests: Family<OutcomeLabel, Counter>,
    rate_limited: Counter,
    rate_limit_wait: FloatCounter,
    webhook_events: Family<OutcomeLabel, Counter>,
    commit_duration: Histogram,
}

/// The `outcome`s of `ouradb_webhook_events_total` (the webhook worker's
/// `Outcome::label`s), each exposed from the start so a rate over them
/// never sees a missing series.
pub const WEBHOOK_OUTCOMES: &[&str] = &[
    "stored",
    "quarantined",
    "not_found",
    "deleted",
    "deleted_not_stored",
    "pending",
    "failed",
];

impl Default for Live {
    fn default() -> Self {
        let live = Live {
            requests: Family::default(),
            rate_limited: Counter::default(),
            rate_limit_wait: FloatCounter::default(),
            webhook_events: Family::default(),
            // 0.25 ms to 8 s: a small page commits in well under a
            // millisecond, a lock held by another process shows as seconds.
            commit_duration: Histogram::new(exponential_buckets(0.000_25, 2.0, 16)),
        };
        let _ = live.requests.get_or_create(&OutcomeLabel { outcome: "ok" });
        for outcome in WEBHOOK_OUTCOMES {
            let _ = live.webhook_events.get_or_create(&OutcomeLabel { outcome });
        }
        live
    }
}

static LIVE: LazyLock<Live> = LazyLock::new(Live::default);

/// The process's counters.
pub fn live() -> &'static Live {
    &LIVE
}

impl Live {
    /// One data request answered (`None`: usable, `ok`) or failed with
    /// `failure` (`rate_limited` also counts a 429).
    pub fn request(&self, failure: Option<ErrorKind>) {
        let outcome = failure.map_or("ok", ErrorKind::as_str);
        self.requests.get_or_create(&OutcomeLabel { outcome }).inc();
        if failure == Some(ErrorKind::RateLimited) {
            self.rate_limited.inc();
        }
    }

    /// Time a request waited for the limiter (the quota account, pacing,
    /// or a 429's Retry-After) before it could be sent.
    pub fn rate_limit_wait(&self, waited: Duration) {
        self.rate_limit_wait.inc_by(waited.as_secs_f64());
    }

    /// One webhook event applied, with the outcome it was recorded with.
    pub fn webhook_event(&self, outcome: &'static str) {
        self.webhook_events
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
    }

    /// Runs one store commit, timing it.
    pub fn time_commit<T>(&self, commit: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let out = commit();
        self.commit_duration
            .observe(started.elapsed().as_secs_f64());
        out
    }
}

/// One data type's state at scrape time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TypeSnapshot {
    pub data_type: &'static str,
    /// The account whose type this is.
    pub account: String,
    /// Unix seconds of the last successful run.
    pub last_success: Option<i64>,
    pub documents: i64,
    pub quarantined: i64,
    pub pending_removals: i64,
    /// Longest gap between the type's scheduled runs (daemon only).
    pub schedule_period: Option<Duration>,
    /// Refused to this application alone: why, and when it is asked again.
    pub not_available: Option<NotAvailable>,
}

/// A type marked not available to this application.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NotAvailable {
    /// The refusal: status, the server's text, how to enable the type.
    pub reason: String,
    /// Unix seconds of the next try.
    pub retry_at: i64,
}

/// What a scrape reads from the database and the token file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub types: Vec<TypeSnapshot>,
    /// Requests in the request account's current window over Oura's quota.
    pub quota_used_ratio: f64,
    pub accounts: Vec<AccountSnapshot>,
}

/// One account's credentials at scrape time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccountSnapshot {
    pub name: String,
    /// Unix seconds when the OAuth access token expires (OAuth only).
    pub token_expiry: Option<i64>,
    /// A type's last run ended for want of working credentials, or the
    /// OAuth grant needs `ouradb auth login`.
    pub auth_failing: bool,
}

/// The Prometheus text of `live` and `snap`.
pub fn render(live: &Live, snap: &Snapshot) -> String {
    let mut r = Registry::with_prefix("ouradb");
    r.register(
        "build",
        "The running ouradb version (always 1)",
        Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
    );
    register_types(&mut r, &snap.types);
    register_live(&mut r, live);
    let quota = Gauge::<f64, AtomicU64>::default();
    quota.set(snap.quota_used_ratio);
    r.register(
        "quota_used_ratio",
        "Share of the OAuth application's request quota (rate_limit.application_requests) used in the current rate-limit window (0 to 1), counting every account and every process on the database",
        quota,
    );
    register_accounts(&mut r, &snap.accounts);
    let mut out = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut out, &r)
        .expect("writing to a String cannot fail");
    out
}

/// The per-account gauges: the OAuth token's expiry and failing credentials.
fn register_accounts(r: &mut Registry, accounts: &[AccountSnapshot]) {
    let expiry = Family::<AccountLabel, Gauge>::default();
    let failing = Family::<AccountLabel, Gauge>::default();
    for a in accounts {
        let l = AccountLabel {
            account: a.name.clone(),
        };
        if let Some(at) = a.token_expiry {
            expiry.get_or_create(&l).set(at);
        }
        failing.get_or_create(&l).set(i64::from(a.auth_failing));
    }
    if accounts.iter().any(|a| a.token_expiry.is_some()) {
        r.register_with_unit(
            "oauth_token_expiry_timestamp",
            "When the account's stored OAuth access token expires (Unix time); it is refreshed before requests as needed",
            Unit::Seconds,
            expiry,
        );
    }
    r.register(
        "auth_failing",
        "1 while a data type of the account last failed for want of working credentials, or its OAuth grant needs `ouradb auth login --account NAME`; else 0",
        failing,
    );
}

/// The per-type gauges: one series per data type the daemon syncs.
fn register_types(r: &mut Registry, types: &[TypeSnapshot]) {
    let last_success = Family::<TypeLabel, Gauge>::default();
    let documents = Family::<TypeLabel, Gauge>::default();
    let quarantined = Family::<TypeLabel, Gauge>::default();
    let pending = Family::<TypeLabel, Gauge>::default();
    let period = Family::<TypeLabel, Gauge>::default();
    let refused = Family::<RefusalLabel, Gauge>::default();
    let retry = Family::<TypeLabel, Gauge>::default();
    for t in types {
        let l = TypeLabel {
            data_type: t.data_type,
            account: t.account.clone(),
        };
        if let Some(n) = &t.not_available {
            let reason = RefusalLabel {
                data_type: t.data_type,
                account: t.account.clone(),
                reason: n.reason.clone(),
            };
            refused.get_or_create(&reason).set(1);
            retry.get_or_create(&l).set(n.retry_at);
        }
        if let Some(at) = t.last_success {
            last_success.get_or_create(&l).set(at);
        }
        documents.get_or_create(&l).set(t.documents);
        quarantined.get_or_create(&l).set(t.quarantined);
        pending.get_or_create(&l).set(t.pending_removals);
        if let Some(p) = t.schedule_period {
            period.get_or_create(&l).set(p.as_secs() as i64);
        }
    }
    r.register_with_unit(
        "last_success_timestamp",
        "When the data type's last successful run committed (Unix time); absent before its first",
        Unit::Seconds,
        last_success,
    );
    r.register(
        "documents",
        "Documents (or time-series samples) stored for the data type, as `ouradb status` shows",
        documents,
    );
    r.register(
        "quarantined_documents",
        "Documents of the data type kept in the quarantine table because they could not be stored",
        quarantined,
    );
    r.register(
        "pending_removals",
        "Stored documents of the data type missing from a re-fetch, removed if still missing 24 h later",
        pending,
    );
    r.register(
        "not_available",
        "1 for a data type Oura refuses to this application alone (HTTP 401/403 while the same token reads other types; `reason` says which and how to enable it: ask Oura to enable the type for the application or check its scopes in the developer portal); absent otherwise. Not a failure: asked again daily",
        refused,
    );
    r.register_with_unit(
        "not_available_retry_timestamp",
        "When a data type not available to this application is asked again (Unix time)",
        Unit::Seconds,
        retry,
    );
    r.register_with_unit(
        "schedule_period",
        "Longest gap between the data type's scheduled runs (from its cron schedule)",
        Unit::Seconds,
        period,
    );
}

fn register_live(r: &mut Registry, live: &Live) {
    r.register(
        "requests",
        "Data requests sent to Oura by outcome (ok, or the kind of failure, as in `ouradb status`), retries included",
        live.requests.clone(),
    );
    r.register(
        "rate_limited",
        "Data requests Oura answered with 429 Too Many Requests",
        live.rate_limited.clone(),
    );
    r.register_with_unit(
        "rate_limit_wait",
        "Time data requests spent waiting for the rate limiter (the shared quota account, pacing and 429 Retry-After) before being sent",
        Unit::Seconds,
        live.rate_limit_wait.clone(),
    );
    r.register(
        "webhook_events",
        "Webhook events applied by outcome (stored, quarantined, not_found, deleted, deleted_not_stored, pending, failed, rejected, no_account: no account is the event's Oura user)",
        live.webhook_events.clone(),
    );
    r.register_with_unit(
        "store_commit_duration",
        "Time one page's store transaction took (documents, bookkeeping and cursor), waiting for the write lock included",
        Unit::Seconds,
        live.commit_duration.clone(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> Snapshot {
        Snapshot {
            types: vec![
                TypeSnapshot {
                    data_type: "daily_sleep",
                    account: "default".into(),
                    last_success: Some(1_765_000_000),
                    documents: 30,
                    quarantined: 2,
                    pending_removals: 1,
                    schedule_period: Some(Duration::from_secs(3600)),
                    not_available: None,
                },
                TypeSnapshot {
                    data_type: "tag",
                    account: "default".into(),
                    not_available: Some(NotAvailable {
                        reason: "tag: not available (HTTP 401: \"no\")".into(),
                        retry_at: 1_765_100_000,
                    }),
                    ..Default::default()
                },
            ],
            quota_used_ratio: 0.25,
            accounts: vec![AccountSnapshot {
                name: "default".into(),
                token_expiry: Some(1_765_086_400),
                auth_failing: true,
            }],
        }
    }

    /// The value of the one sample line starting with `series` (name and
    /// labels exactly as exposed).
    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .map(|v| v.parse().unwrap())
    }

    #[test]
    fn every_series_has_help_and_a_type_and_carries_the_snapshot() {
        let live = Live::default();
        live.request(None);
        live.request(None);
        live.request(Some(ErrorKind::RateLimited));
        live.rate_limit_wait(Duration::from_millis(1500));
        live.webhook_event("stored");
        live.time_commit(|| ());
        let text = render(&live, &snapshot());
        for name in SERIES {
            assert!(text.contains(&format!("# HELP {name} ")), "{name}:\n{text}");
            assert!(text.contains(&format!("# TYPE {name} ")), "{name}:\n{text}");
        }
        let v = |s: &str| sample(&text, s).unwrap_or_else(|| panic!("{s}:\n{text}"));
        assert_eq!(
            v(
                "ouradb_last_success_timestamp_seconds{data_type=\"daily_sleep\",account=\"default\"}"
            ),
            1_765_000_000.0
        );
        assert_eq!(
            sample(
                &text,
                "ouradb_last_success_timestamp_seconds{data_type=\"tag\",account=\"default\"}"
            ),
            None
        );
        assert_eq!(
            v("ouradb_documents{data_type=\"daily_sleep\",account=\"default\"}"),
            30.0
        );
        assert_eq!(
            v("ouradb_documents{data_type=\"tag\",account=\"default\"}"),
            0.0
        );
        assert_eq!(
            v("ouradb_quarantined_documents{data_type=\"daily_sleep\",account=\"default\"}"),
            2.0
        );
        assert_eq!(
            v("ouradb_pending_removals{data_type=\"daily_sleep\",account=\"default\"}"),
            1.0
        );
        assert_eq!(
            v("ouradb_schedule_period_seconds{data_type=\"daily_sleep\",account=\"default\"}"),
            3600.0
        );
        assert_eq!(v("ouradb_requests_total{outcome=\"ok\"}"), 2.0);
        assert_eq!(v("ouradb_requests_total{outcome=\"rate_limited\"}"), 1.0);
        assert_eq!(v("ouradb_rate_limited_total"), 1.0);
        assert_eq!(v("ouradb_rate_limit_wait_seconds_total"), 1.5);
        assert_eq!(v("ouradb_quota_used_ratio"), 0.25);
        assert_eq!(v("ouradb_webhook_events_total{outcome=\"stored\"}"), 1.0);
        assert_eq!(
            v("ouradb_oauth_token_expiry_timestamp_seconds{account=\"default\"}"),
            1_765_086_400.0
        );
        assert_eq!(v("ouradb_auth_failing{account=\"default\"}"), 1.0);
        assert_eq!(
            v(
                "ouradb_not_available{data_type=\"tag\",account=\"default\",reason=\"tag: not available (HTTP 401: \\\"no\\\")\"}"
            ),
            1.0
        );
        assert_eq!(
            v(
                "ouradb_not_available_retry_timestamp_seconds{data_type=\"tag\",account=\"default\"}"
            ),
            1_765_100_000.0
        );
        assert!(!text.contains("ouradb_not_available{data_type=\"daily_sleep\""));
        assert_eq!(v("ouradb_store_commit_duration_seconds_count"), 1.0);
        let version = format!(
            "ouradb_build_info{{version=\"{}\"}}",
            env!("CARGO_PKG_VERSION")
        );
        assert_eq!(v(&version), 1.0);
    }

    #[test]
    fn a_personal_access_token_has_no_expiry_series() {
        let mut snap = snapshot();
        snap.accounts[0].token_expiry = None;
        let text = render(&Live::default(), &snap);
        assert!(!text.contains("ouradb_oauth_token_expiry"), "{text}");
    }
}
