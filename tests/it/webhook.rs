//! Webhooks against the simulator's webhook sender: receiver checks, the
//! worker's fetch/upsert/delete, subscription upkeep, the daemon wiring.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use jiff::Timestamp;
use ouradb::api::{Operation, WebhookApi};
use ouradb::config::{Config, RateLimitConfig, Secret, WebhookConfig, WebhookSettings};
use ouradb::registry;
use ouradb::store::Store;
use ouradb::sync::{self, SyncEngine};
use ouradb::webhook::{
    self, RENEW_BEFORE, ReceiverOptions, WebhookHandle, receiver, reconcile, wanted,
};
use ouradb_sim::{Change, SimConfig};
use rusqlite::OptionalExtension;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::db;
use crate::util::{self, Env};

const CLIENT_ID: &str = "sim-client";
const SECRET: &str = "sim-secret";
const VT: &str = "verify-me-please";
const PATH: &str = "/oura/webhook";

async fn bounded<F: std::future::Future<Output = ()>>(f: F) {
    tokio::time::timeout(Duration::from_secs(90), f)
        .await
        .expect("test finished in time");
}

fn webhook_config(env: &Env, callback: &str) -> Config {
    let mut c = env.config();
    c.oauth.client_id = Some(CLIENT_ID.into());
    c.oauth.client_secret = Some(Secret::new(SECRET));
    // Never pick up tokens of whoever runs the tests.
    c.oauth.token_file = env.dir.path().join("tokens.json");
    c.webhook = WebhookConfig::Enabled(WebhookSettings {
        listen: "127.0.0.1:0".parse().unwrap(),
        callback_url: callback.parse().unwrap(),
        verification_token: Secret::new(VT),
    });
    c
}

/// The enabled webhook settings of a config from [`webhook_config`].
fn settings(c: &mut Config) -> &mut WebhookSettings {
    match &mut c.webhook {
        WebhookConfig::Enabled(s) => s,
        WebhookConfig::Disabled { .. } => panic!("webhooks enabled"),
    }
}

/// A receiver on a free port plus what the tests need around it.
struct Hook {
    env: Env,
    config: Config,
    engine: Arc<SyncEngine>,
    handle: WebhookHandle,
    callback: String,
    api: WebhookApi,
    cancel: CancellationToken,
    tracker: TaskTracker,
}

impl Hook {
    async fn start(
        tweak_sim: impl FnOnce(&mut SimConfig),
        tweak_cfg: impl FnOnce(&mut Config),
    ) -> Hook {
        let env = Env::start(10, tweak_sim).await;
        // The receiver only uses the path; the real URL is known once bound.
        let mut config = webhook_config(&env, &format!("http://127.0.0.1:1{PATH}"));
        tweak_cfg(&mut config);
        let engine = Arc::new(env.engine(config.clone()));
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        let opts = ReceiverOptions::from_config(&config, sync::system_clock()).unwrap();
        let handle = receiver::start(engine.clone(), opts, cancel.clone(), &tracker)
            .await
            .expect("receiver starts");
        let callback = format!("http://{}{PATH}", handle.addr);
        settings(&mut config).callback_url = callback.parse().unwrap();
        let api = WebhookApi::new(&config).unwrap();
        Hook {
            env,
            config,
            engine,
            handle,
            callback,
            api,
            cancel,
            tracker,
        }
    }

    async fn subscribe(&self, types: &[&'static registry::DataType]) -> webhook::Reconciled {
        let r = reconcile(
            &self.api,
            &self.callback,
            &Secret::new(VT),
            &wanted(types),
            Timestamp::now(),
            RENEW_BEFORE,
        )
        .await
        .expect("reconcile");
        assert!(r.failed.is_empty(), "{:?}", r.failed);
        r
    }

    fn processed(&self) -> u64 {
        self.handle
            .stats
            .processed
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The stored document, read once every store call queued before this
    /// one has returned (the store's thread runs them in order): a write
    /// seen here is one whose store call has returned (the worker records
    /// the event in its next call).
    async fn stored(&self, dt: &str, id: &str) -> Option<Value> {
        let dt = registry::find(dt).unwrap();
        self.engine.store().all_sync_states().await.unwrap();
        db::document_json(&self.config.database, dt, id)
            .unwrap()
            .map(|s| serde_json::from_str(&s).unwrap())
    }

    async fn wait_stored(&self, dt: &str, id: &str, pred: impl Fn(Option<&Value>) -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(1);
        loop {
            if pred(self.stored(dt, id).await.as_ref()) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// GETs of one document the simulator served.
    fn fetches(&self, path: &str, id: &str) -> usize {
        let want = format!("/{path}/{id}");
        self.env
            .sim
            .request_log()
            .iter()
            .filter(|e| e.path.ends_with(&want))
            .count()
    }

    async fn stop(self) {
        self.cancel.cancel();
        self.tracker.close();
        assert!(
            tokio::time::timeout(Duration::from_secs(5), self.tracker.wait())
                .await
                .is_ok(),
            "receiver and workers stop on cancel"
        );
        self.env.sim.stop().await;
    }
}

fn sign(secret: &str, ts: &str, body: &[u8]) -> String {
    let mut m = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
    m.update(ts.as_bytes());
    m.update(body);
    hex::encode_upper(m.finalize().into_bytes())
}

fn now_ts() -> String {
    Timestamp::now().as_second().to_string()
}

fn event_body(ev: &str, dt: &str, id: &str) -> String {
    json!({"event_type": ev, "data_type": dt, "object_id": id,
           "event_time": Timestamp::now().to_string(), "user_id": "u"})
    .to_string()
}

async fn post(url: &str, ts: &str, sig: Option<&str>, body: impl Into<reqwest::Body>) -> u16 {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("x-oura-timestamp", ts);
    if let Some(s) = sig {
        req = req.header("x-oura-signature", s);
    }
    req.body(body).send().await.unwrap().status().as_u16()
}

/// A copy of an existing simulated document under a new id.
fn new_doc(h: &Hook, collection: &str, id: &str) -> Value {
    let mut doc: Value = h.env.sim.read_data(|d| {
        serde_json::from_str(&d.documents(collection).last().expect("documents").json).unwrap()
    });
    doc["id"] = json!(id);
    doc
}

/// `doc` moved to a day of its own (the `n`th after 2020-01-01): a daily
/// collection holds one document per day, so documents meant to be stored
/// side by side need days of their own.
fn on_own_day(mut doc: Value, n: i32) -> Value {
    let day = jiff::civil::date(2020, 1, 1) + jiff::Span::new().days(n);
    doc["day"] = json!(day.to_string());
    doc
}

fn set(h: &Hook, collection: &str, doc: Value) -> Change {
    let mut out = h
        .env
        .sim
        .with_data(|d| vec![d.set_document(collection, doc).unwrap()]);
    out.pop().unwrap()
}

#[tokio::test]
async fn signed_create_update_delete_land_within_a_second() {
    bounded(async {
        let h = Hook::start(|_| {}, |_| {}).await;
        let types: Vec<_> = registry::DATA_TYPES.iter().collect();
        let r = h.subscribe(&types).await;
        let with_hooks = registry::DATA_TYPES
            .iter()
            .filter(|d| d.webhook.is_some())
            .count();
        assert_eq!(r.created, with_hooks * 3);
        assert_eq!(r.subscriptions.len(), with_hooks * 3);

        // create
        let mut doc = new_doc(&h, "daily_sleep", "wh-ds-1");
        doc["score"] = json!(42);
        let c = set(&h, "daily_sleep", doc.clone());
        assert_eq!(c.op, ouradb_sim::Op::Create);
        assert!(
            h.wait_stored("daily_sleep", "wh-ds-1", |d| d
                .is_some_and(|d| d["score"] == 42))
                .await,
            "created document stored within a second"
        );
        // update
        doc["score"] = json!(77);
        assert_eq!(set(&h, "daily_sleep", doc).op, ouradb_sim::Op::Update);
        assert!(
            h.wait_stored("daily_sleep", "wh-ds-1", |d| d
                .is_some_and(|d| d["score"] == 77))
                .await,
            "updated document stored within a second"
        );
        // vo2_max: webhook data_type differs from the path (vO2_max).
        let day = util::today().to_string();
        let vo2 = json!({"id": "wh-vo2-1", "day": day,
                         "timestamp": format!("{day}T06:00:00+00:00"), "vo2_max": 45.0});
        set(&h, "vO2_max", vo2);
        assert!(h.wait_stored("vo2_max", "wh-vo2-1", |d| d.is_some()).await);
        // delete
        h.env
            .sim
            .with_data(|d| vec![d.remove_document("daily_sleep", "wh-ds-1").unwrap()]);
        assert!(
            h.wait_stored("daily_sleep", "wh-ds-1", |d| d.is_none())
                .await,
            "deleted document removed within a second"
        );
        assert!(h.env.sim.webhooks_idle(Duration::from_secs(5)).await);
        assert!(
            h.env
                .sim
                .webhook_attempts()
                .iter()
                .all(|a| a.status == Some(200)),
            "every delivery acknowledged on the first try"
        );

        // status shows the health section.
        assert!(h.handle.wait_processed(4, Duration::from_secs(2)).await);
        let mut store = Store::open(&h.config.database).unwrap();
        webhook::save_subscriptions(&mut store, &h.callback, &r.subscriptions, Timestamp::now())
            .unwrap();
        drop(store);
        let ro = Store::open_read_only(&h.config.database).unwrap();
        let section = ouradb::cli::webhook::status_section(&h.config, &ro, Timestamp::now())
            .unwrap()
            .expect("webhooks enabled");
        assert!(section.contains("last event: "), "{section}");
        assert!(
            section.contains("delete daily_sleep wh-ds-1: deleted"),
            "{section}"
        );
        assert!(section.contains("4 in the last 24 h"), "{section}");
        assert!(section.contains("vo2_max"), "{section}");
        assert!(!section.contains(VT) && !section.contains(SECRET));
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn forged_stale_replayed_malformed_and_oversized_events_are_rejected() {
    bounded(async {
        let h = Hook::start(|_| {}, |_| {}).await;
        let url = h.callback.clone();
        let doc = new_doc(&h, "daily_sleep", "wh-x");
        // In the simulator without an event: only a request can bring it in.
        h.env.sim.with_data(|d| {
            d.set_document("daily_sleep", doc).unwrap();
            Vec::new()
        });
        let body = event_body("create", "daily_sleep", "wh-x");
        let ts = now_ts();

        // Verification GET: only with the right token.
        let c = reqwest::Client::new();
        let r = c
            .get(&url)
            .query(&[("verification_token", "wrong"), ("challenge", "abc")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        let r = c.get(&url).query(&[("challenge", "abc")]).send().await.unwrap();
        assert_eq!(r.status(), 403);
        let r = c
            .get(&url)
            .query(&[("verification_token", VT), ("challenge", "abc")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.json::<Value>().await.unwrap(), json!({"challenge": "abc"}));

        // Forged, unsigned, stale, future, malformed, oversized.
        let forged = sign("not-the-secret", &ts, body.as_bytes());
        assert_eq!(post(&url, &ts, Some(&forged), body.clone()).await, 401);
        assert_eq!(post(&url, &ts, None, body.clone()).await, 401);
        let good = sign(SECRET, &ts, body.as_bytes());
        let tampered = body.replace("wh-x", "wh-y");
        assert_eq!(post(&url, &ts, Some(&good), tampered).await, 401);
        for skew in [-600i64, 600] {
            let old = (Timestamp::now().as_second() + skew).to_string();
            let sig = sign(SECRET, &old, body.as_bytes());
            assert_eq!(post(&url, &old, Some(&sig), body.clone()).await, 401);
        }
        let junk = "{not json";
        assert_eq!(
            post(&url, &ts, Some(&sign(SECRET, &ts, junk.as_bytes())), junk).await,
            400
        );
        let wrong_shape = json!({"event_type": "explode", "data_type": "daily_sleep", "object_id": "wh-x"}).to_string();
        assert_eq!(
            post(&url, &ts, Some(&sign(SECRET, &ts, wrong_shape.as_bytes())), wrong_shape).await,
            400
        );
        let big = format!(
            "{{\"event_type\":\"create\",\"data_type\":\"daily_sleep\",\"object_id\":\"wh-x\",\"pad\":\"{}\"}}",
            "x".repeat(70 * 1024)
        );
        assert_eq!(
            post(&url, &ts, Some(&sign(SECRET, &ts, big.as_bytes())), big).await,
            413
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(h.processed(), 0, "nothing queued");
        assert_eq!(h.fetches("daily_sleep", "wh-x"), 0, "nothing fetched");
        assert!(
            h.stored("daily_sleep", "wh-x").await.is_none(),
            "nothing written"
        );

        // Lower-case hex is as valid as upper-case.
        assert_eq!(
            post(&url, &ts, Some(&good.to_lowercase()), body.clone()).await,
            200
        );
        assert!(h.wait_stored("daily_sleep", "wh-x", |d| d.is_some()).await);
        let doc2 = new_doc(&h, "daily_sleep", "wh-z");
        h.env.sim.with_data(|d| {
            d.set_document("daily_sleep", doc2).unwrap();
            Vec::new()
        });
        let body2 = event_body("update", "daily_sleep", "wh-z");
        let sig2 = sign(SECRET, &ts, body2.as_bytes());
        assert_eq!(post(&url, &ts, Some(&sig2), body2.clone()).await, 200);
        assert!(h.wait_stored("daily_sleep", "wh-z", |d| d.is_some()).await);
        assert!(h.handle.wait_processed(2, Duration::from_secs(2)).await);

        // Replays: the exact request again (either case) is refused.
        assert_eq!(post(&url, &ts, Some(&sig2), body2.clone()).await, 409);
        assert_eq!(post(&url, &ts, Some(&good), body.clone()).await, 409);
        // Oura re-delivering the same event (new timestamp and signature) is
        // acknowledged but not applied twice.
        let ts3 = (Timestamp::now().as_second() + 1).to_string();
        let sig3 = sign(SECRET, &ts3, body2.as_bytes());
        assert_eq!(post(&url, &ts3, Some(&sig3), body2.clone()).await, 200);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(h.processed(), 2);
        assert_eq!(h.fetches("daily_sleep", "wh-z"), 1, "replays fetch nothing");
        assert_eq!(h.fetches("daily_sleep", "wh-x"), 1);

        // A 404 on fetch is tolerated.
        let body4 = event_body("update", "daily_sleep", "wh-gone");
        let sig4 = sign(SECRET, &ts, body4.as_bytes());
        assert_eq!(post(&url, &ts, Some(&sig4), body4).await, 200);
        assert!(h.handle.wait_processed(3, Duration::from_secs(2)).await);
        assert_eq!(
            h.handle
                .stats
                .failed
                .load(std::sync::atomic::Ordering::SeqCst),
            0
        );
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_burst_of_1000_events_respects_the_rate_limit_and_loses_nothing() {
    bounded(async {
        let window = Duration::from_secs(1);
        let limit = 300;
        let h = Hook::start(
            |s| {
                s.rate_limit = limit;
                s.rate_window = window;
            },
            |c| {
                c.rate_limit = RateLimitConfig {
                    requests: limit,
                    window,
                    margin_percent: 2,
                    ..RateLimitConfig::default()
                };
            },
        )
        .await;
        let created = h
            .api
            .create(
                &h.callback,
                &Secret::new(VT),
                Operation::Create,
                "daily_sleep",
            )
            .await
            .unwrap();
        assert!(created.is_some());
        let template = new_doc(&h, "daily_sleep", "x");
        h.env.sim.with_data(|d| {
            (0..1000)
                .map(|i| {
                    let mut doc = on_own_day(template.clone(), i);
                    doc["id"] = json!(format!("burst-{i:04}"));
                    d.set_document("daily_sleep", doc).unwrap()
                })
                .collect()
        });
        assert!(
            h.handle.wait_processed(1000, Duration::from_secs(40)).await,
            "all events processed (got {})",
            h.processed()
        );
        let stored: i64 = util::reader(&h.config.database)
            .query_row(
                "SELECT count(*) FROM daily_sleep WHERE id LIKE 'burst-%'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(stored, 1000, "no event lost");
        let peak = h.env.sim.max_requests_in_window(util::TOKEN, window);
        assert!(peak <= limit as usize, "peak {peak} > {limit}");
        assert_eq!(util::status_count(&h.env.sim, 429), 0);
        assert!(h.env.sim.webhooks_idle(Duration::from_secs(10)).await);
        let attempts = h.env.sim.webhook_attempts();
        assert_eq!(attempts.len(), 1000, "each event delivered once");
        assert!(attempts.iter().all(|a| a.status == Some(200)));
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_webhook_apply_waits_for_the_run_of_its_type() {
    bounded(async {
        let h = Hook::start(|_| {}, |_| {}).await;
        let dt = registry::find("daily_sleep").unwrap();
        h.subscribe(&[dt]).await;
        // Every data request takes a second: the run below is in flight
        // while the event arrives, and a webhook fetch alone would finish
        // well before the run does.
        h.env.sim.set_faults(ouradb_sim::Faults {
            slow: 1.0,
            slow_delay: Duration::from_secs(1),
            ..Default::default()
        });
        let engine = h.engine.clone();
        let run = tokio::spawn(async move {
            let opts = sync::RunOptions {
                since: None,
                backfill: true,
            };
            engine.run_type(dt, opts, &sync::NoObserver).await
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        set(&h, "daily_sleep", new_doc(&h, "daily_sleep", "during-run"));
        while !run.is_finished() {
            assert_eq!(
                h.processed(),
                0,
                "applied while a run of its type was in flight"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let report = run.await.unwrap();
        assert!(report.error.is_none(), "{:?}", report.error);
        assert!(h.handle.wait_processed(1, Duration::from_secs(10)).await);
        assert!(h.stored("daily_sleep", "during-run").await.is_some());
        h.env.sim.set_faults(ouradb_sim::Faults::default());
        h.stop().await;
    })
    .await;
}

/// The default test runtime has one thread: a store call made on it would
/// stall everything else while SQLite waits for another process's lock.
#[tokio::test]
async fn a_locked_database_does_not_stall_the_runtime() {
    bounded(async {
        let h = Hook::start(|_| {}, |_| {}).await;
        // Another process holds the write lock (e.g. a long `ouradb sync` commit).
        let other = rusqlite::Connection::open(&h.config.database).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let engine = h.engine.clone();
        let run = tokio::spawn(async move {
            let opts = sync::RunOptions {
                since: None,
                backfill: true,
            };
            let dt = registry::find("daily_sleep").unwrap();
            engine.run_type(dt, opts, &sync::NoObserver).await
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!run.is_finished(), "the run waits for the lock");

        let started = Instant::now();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "timers fire"
        );
        util::assert_verification_answered_at_once(&h.callback, VT).await;

        other.execute_batch("COMMIT").unwrap();
        let report = run.await.unwrap();
        assert!(report.error.is_none(), "{:?}", report.error);
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn subscriptions_near_expiry_are_renewed_and_deleted_ones_recreated() {
    bounded(async {
        let h = Hook::start(|_| {}, |_| {}).await;
        let types: Vec<_> = registry::DATA_TYPES.iter().collect();
        let first = h.subscribe(&types).await;
        let n = first.subscriptions.len();
        assert!(n > 0);
        // Nothing to do right after.
        let again = h.subscribe(&types).await;
        assert_eq!((again.created, again.renewed, again.unchanged), (0, 0, n));

        // Someone deletes one; time passes until 5 of 90 days are left.
        let victim = first.subscriptions[0].clone();
        h.api.delete(&victim.id).await.unwrap();
        let skip = Duration::from_secs(85 * 86_400);
        h.env.sim.advance_time(skip);
        let later = Timestamp::now() + jiff::SignedDuration::try_from(skip).unwrap();
        let r = reconcile(
            &h.api,
            &h.callback,
            &Secret::new(VT),
            &wanted(&types),
            later,
            RENEW_BEFORE,
        )
        .await
        .unwrap();
        assert!(r.failed.is_empty(), "{:?}", r.failed);
        assert_eq!((r.created, r.renewed, r.unchanged), (1, n - 1, 0));
        assert_eq!(r.subscriptions.len(), n);
        let horizon = later + jiff::SignedDuration::try_from(RENEW_BEFORE).unwrap();
        assert!(
            r.subscriptions.iter().all(|s| s.expiration_time > horizon),
            "every subscription has more than a week left"
        );
        assert!(
            r.subscriptions
                .iter()
                .any(|s| s.data_type == victim.data_type && s.event_type == victim.event_type)
        );
        // Errors never carry the secrets the request did.
        let err = h
            .api
            .create(
                &h.callback,
                &Secret::new(VT),
                Operation::Update,
                "not_a_type",
            )
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("422"), "{err}");
        assert!(!err.contains(VT) && !err.contains(SECRET), "{err}");
        // 409 on create counts as already subscribed.
        assert!(
            h.api
                .create(&h.callback, &Secret::new(VT), Operation::Update, "vo2_max")
                .await
                .unwrap()
                .is_none()
        );
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn the_daemon_runs_the_receiver_and_keeps_subscriptions() {
    bounded(async {
        let env = Env::start(5, |_| {}).await;
        // A free port known before the daemon binds it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let callback = format!("http://127.0.0.1:{port}{PATH}");
        let mut config = webhook_config(&env, &callback);
        settings(&mut config).listen = format!("127.0.0.1:{port}").parse().unwrap();
        config.types = vec![registry::find("daily_sleep").unwrap()];
        let engine = Arc::new(env.engine(config.clone()));
        let cancel = CancellationToken::new();
        let daemon = tokio::spawn(ouradb::daemon::run_with(engine.clone(), cancel.clone()));
        let api = WebhookApi::new(&config).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let subs = loop {
            let subs = api.list().await.unwrap();
            if subs.len() == 3 {
                break subs;
            }
            assert!(Instant::now() < deadline, "daemon subscribed: {subs:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(
            subs.iter()
                .all(|s| s.callback_url == callback && s.data_type == "daily_sleep")
        );
        // An event reaches the database through the daemon's receiver.
        let doc = {
            let mut d: Value = env.sim.read_data(|d| {
                serde_json::from_str(&d.documents("daily_sleep").last().unwrap().json).unwrap()
            });
            d["id"] = json!("daemon-1");
            d
        };
        env.sim
            .with_data(|d| vec![d.set_document("daily_sleep", doc).unwrap()]);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let have = db::document_json(
                &config.database,
                registry::find("daily_sleep").unwrap(),
                "daemon-1",
            )
            .unwrap();
            if have.is_some() {
                break;
            }
            assert!(Instant::now() < deadline, "event applied by the daemon");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The upkeep recorded the subscriptions for `status`.
        let deadline = Instant::now() + Duration::from_secs(10);
        while engine.store().webhook_subscriptions().await.unwrap().len() != 3 {
            assert!(Instant::now() < deadline, "subscriptions recorded");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        cancel.cancel();
        tokio::time::timeout(Duration::from_secs(10), daemon)
            .await
            .expect("daemon stops")
            .unwrap()
            .unwrap();
        // The port is free again: the receiver stopped with the daemon.
        assert!(std::net::TcpListener::bind(("127.0.0.1", port)).is_ok());
        env.sim.stop().await;
    })
    .await;
}

#[tokio::test]
async fn the_receiver_binds_loopback_unless_configured_otherwise() {
    bounded(async {
        let c = Config::from_toml("", std::path::Path::new("t.toml"), |_| None).unwrap();
        assert_eq!(c.webhook.listen(), "127.0.0.1:8788".parse().unwrap());
        let env = Env::start(3, |_| {}).await;
        for (listen, loopback) in [("127.0.0.1:0", true), ("0.0.0.0:0", false)] {
            let mut config = webhook_config(&env, &format!("http://127.0.0.1:1{PATH}"));
            let text = format!(
                "[auth]\nclient_id = \"{CLIENT_ID}\"\nclient_secret = \"{SECRET}\"\n[webhook]\nenabled = true\nlisten = \"{listen}\"\ncallback_url = \"https://example.org{PATH}\"\nverification_token = \"{VT}\"\n"
            );
            let parsed = Config::from_toml(&text, std::path::Path::new("t.toml"), |_| None).unwrap();
            config.webhook = parsed.webhook;
            let engine = Arc::new(env.engine(config.clone()));
            let cancel = CancellationToken::new();
            let tracker = TaskTracker::new();
            let opts = ReceiverOptions::from_config(&config, sync::system_clock()).unwrap();
            let handle = receiver::start(engine, opts, cancel.clone(), &tracker)
                .await
                .unwrap();
            assert_eq!(handle.addr.ip().is_loopback(), loopback, "{listen}");
            if !loopback {
                assert!(handle.addr.ip().is_unspecified());
            }
            cancel.cancel();
            tracker.close();
            tracker.wait().await;
        }
        env.sim.stop().await;
    })
    .await;
}

#[tokio::test]
async fn sandbox_switches_every_collection_path() {
    bounded(async {
        let h = Hook::start(|_| {}, |c| c.sandbox = true).await;
        let mut config = h.config.clone();
        config.types = vec![
            registry::find("daily_sleep").unwrap(),
            registry::find("heartrate").unwrap(),
        ];
        h.env.sim.clear_request_log();
        util::assert_no_errors(&h.env.sync_with(config).await);
        let log = h.env.sim.request_log();
        assert!(!log.is_empty());
        for e in &log {
            assert!(
                e.path.starts_with("/v2/sandbox/usercollection/"),
                "{}",
                e.path
            );
        }
        // Webhook fetches go to the sandbox too.
        let id = h
            .env
            .sim
            .read_data(|d| d.documents("daily_sleep").last().unwrap().id.clone());
        let body = event_body("update", "daily_sleep", &id);
        let ts = now_ts();
        assert_eq!(
            post(
                &h.callback,
                &ts,
                Some(&sign(SECRET, &ts, body.as_bytes())),
                body
            )
            .await,
            200
        );
        assert!(h.handle.wait_processed(1, Duration::from_secs(2)).await);
        let want = format!("/v2/sandbox/usercollection/daily_sleep/{id}");
        assert!(h.env.sim.request_log().iter().any(|e| e.path == want));
        h.stop().await;
    })
    .await;
}

async fn ouradb(config: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_ouradb"))
        .env_remove("OURA_TOKEN")
        .env_remove("OURA_CLIENT_SECRET")
        .env("OURADB_LOG", "warn")
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn cli_subscribe_list_renew_unsubscribe_and_status() {
    bounded(async {
        let h = Hook::start(|_| {}, |_| {}).await;
        let path = h.env.dir.path().join("daemon.toml");
        std::fs::write(
            &path,
            format!(
                "[api]\nbase_url = \"{}\"\n[auth]\npersonal_access_token = \"{}\"\nclient_id = \"{CLIENT_ID}\"\nclient_secret = \"{SECRET}\"\ntoken_file = \"{}\"\n[storage]\ndatabase = \"{}\"\n[webhook]\ncallback_url = \"{}\"\nverification_token = \"{VT}\"\n",
                h.env.sim.base_url(),
                util::TOKEN,
                h.config.oauth.token_file.display(),
                h.config.database.display(),
                h.callback,
            ),
        )
        .unwrap();
        let (code, out, err) =
            ouradb(&path, &["webhook", "subscribe", "--type", "daily_sleep", "--type", "vo2_max"]).await;
        assert_eq!(code, 0, "{out}{err}");
        assert!(out.contains("6 created"), "{out}");
        let (code, out, _) = ouradb(&path, &["webhook", "subscribe", "--type", "vo2_max"]).await;
        assert_eq!(code, 0);
        assert!(out.contains("0 created, 3 already subscribed"), "{out}");
        let (code, out, err) = ouradb(&path, &["webhook", "subscribe", "--type", "heartrate"]).await;
        assert_eq!(code, 2, "{out}{err}");
        assert!(err.contains("--type") && err.contains("vo2_max"), "{err}");

        let (code, out, _) = ouradb(&path, &["webhook", "list", "--json"]).await;
        assert_eq!(code, 0);
        let list: Vec<Value> = serde_json::from_str(&out).unwrap();
        assert_eq!(list.len(), 6);
        let (code, out, _) = ouradb(&path, &["webhook", "renew"]).await;
        assert_eq!(code, 0);
        assert!(out.contains("6 renewed, 0 failed"), "{out}");

        let (code, out, err) = ouradb(&path, &["status"]).await;
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("webhooks: disabled"), "{out}");
        assert!(out.contains("vo2_max") && out.contains("daily_sleep"), "{out}");
        assert!(!out.contains(SECRET) && !out.contains(VT) && !err.contains(SECRET));

        let (code, out, _) = ouradb(&path, &["webhook", "unsubscribe", "--type", "vo2_max"]).await;
        assert_eq!(code, 0);
        assert!(out.contains("3 deleted"), "{out}");
        assert_eq!(h.api.list().await.unwrap().len(), 3);
        let (code, out, _) = ouradb(&path, &["webhook", "unsubscribe"]).await;
        assert_eq!(code, 0);
        assert!(out.contains("3 deleted"), "{out}");
        assert!(h.api.list().await.unwrap().is_empty());
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn daily_documents_with_and_without_id_are_inserted_updated_and_deleted() {
    bounded(async {
        let daily: Vec<&'static registry::DataType> = registry::DATA_TYPES
            .iter()
            .filter(|d| d.natural_key == registry::NaturalKey::Fields(&["day"]))
            .collect();
        assert!(daily.len() >= 9);
        for idless in [true, false] {
            let h = Hook::start(
                |c| {
                    c.quirks.idless = if idless {
                        daily.iter().map(|d| d.path.to_owned()).collect()
                    } else {
                        Vec::new()
                    };
                },
                |_| {},
            )
            .await;
            // VO2 max estimates are occasional; make sure there is one.
            if h.env.sim.read_data(|d| d.documents("vO2_max").is_empty()) {
                let day = util::today()
                    .saturating_sub(jiff::Span::new().days(2))
                    .to_string();
                set(
                    &h,
                    "vO2_max",
                    json!({"id": "vo2-test", "day": day,
                           "timestamp": format!("{day}T06:00:00+00:00"), "vo2_max": 45.0}),
                );
            }
            h.subscribe(&daily).await;
            // Insert: a poll stores every document under its key.
            let opts = sync::RunOptions {
                since: None,
                backfill: true,
            };
            util::assert_no_errors(&h.engine.run(&daily, opts, &sync::NoObserver).await);
            for dt in &daily {
                let served = h.env.sim.served_documents(dt.path);
                let last = served
                    .last()
                    .unwrap_or_else(|| panic!("{} has documents", dt.name));
                let key = dt.document_key(last).unwrap();
                assert_eq!(key.starts_with("key:"), idless, "{} {key}", dt.name);
                assert_eq!(
                    h.stored(dt.name, &key).await.as_ref(),
                    Some(last),
                    "{}",
                    dt.name
                );
                let rows = util::count(&h.config.database, dt.table);
                assert_eq!(rows as usize, served.len(), "{}", dt.name);

                // Update by webhook (and a second poll finds nothing new).
                let (id, mut doc) = h.env.sim.read_data(|d| {
                    let x = d.documents(dt.path).last().unwrap();
                    (
                        x.id.clone(),
                        serde_json::from_str::<Value>(&x.json).unwrap(),
                    )
                });
                doc["revision"] = json!(2);
                set(&h, dt.path, doc);
                assert!(
                    h.wait_stored(dt.name, &key, |d| d.is_some_and(|d| d["revision"] == 2))
                        .await,
                    "{} updated by webhook (idless: {idless})",
                    dt.name
                );
                let again = h.engine.run_type(dt, opts, &sync::NoObserver).await;
                assert!(again.error.is_none(), "{again:?}");
                assert_eq!(again.counts.inserted, 0, "{}: no duplicate", dt.name);
                assert_eq!(util::count(&h.config.database, dt.table), rows);

                // Delete by webhook.
                h.env
                    .sim
                    .with_data(|d| vec![d.remove_document(dt.path, &id).unwrap()]);
                assert!(
                    h.wait_stored(dt.name, &key, |d| d.is_none()).await,
                    "{} deleted by webhook (idless: {idless})",
                    dt.name
                );
                assert_eq!(util::count(&h.config.database, dt.table), rows - 1);
            }
            if idless {
                h.stop().await;
                continue;
            }
            // A document a webhook brings in that cannot be stored is
            // quarantined, and the event says so.
            let mut bad = new_doc(&h, "daily_stress", "wh-bad-day");
            bad["day"] = Value::Null;
            let day = h.env.sim.read_data(|d| d.documents("daily_stress")[0].day);
            h.env.sim.with_data(|d| {
                vec![
                    d.put_document("daily_stress", "wh-bad-day", day, bad)
                        .unwrap(),
                ]
            });
            // By its object, not as the last event: the delete event above
            // may be recorded after it.
            let outcome = {
                let reader = db::reader(&h.config.database);
                let deadline = Instant::now() + Duration::from_secs(2);
                loop {
                    let got: Option<String> = reader
                        .query_row(
                            "SELECT outcome FROM webhook_event WHERE object_id = 'wh-bad-day'",
                            [],
                            |r| r.get(0),
                        )
                        .optional()
                        .unwrap();
                    if got.is_some() || Instant::now() > deadline {
                        break got;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            };
            assert_eq!(outcome.as_deref(), Some("quarantined"));
            let ro = Store::open_read_only(&h.config.database).unwrap();
            let q = ro.quarantine_summary().unwrap();
            assert_eq!(q[0].data_type, "daily_stress", "{q:?}");
            h.stop().await;
        }
    })
    .await;
}

#[tokio::test]
async fn events_queued_at_shutdown_are_saved_and_applied_at_the_next_start() {
    bounded(async {
        let h = Hook::start(
            |c| {
                c.faults.slow = 1.0;
                c.faults.slow_delay = Duration::from_secs(3);
            },
            |_| {},
        )
        .await;
        // New documents the simulator does not announce itself: the test
        // posts their events, so all of them are queued behind slow fetches.
        let ids: Vec<String> = (0..6).map(|i| format!("wh-shutdown-{i}")).collect();
        let docs: Vec<Value> = ids
            .iter()
            .zip(0..)
            .map(|(id, n)| on_own_day(new_doc(&h, "daily_sleep", id), n))
            .collect();
        h.env.sim.with_data(|d| {
            for doc in &docs {
                d.set_document("daily_sleep", doc.clone()).unwrap();
            }
            Vec::new()
        });
        for id in &ids {
            let body = event_body("create", "daily_sleep", id);
            let ts = now_ts();
            let sig = sign(SECRET, &ts, body.as_bytes());
            assert_eq!(post(&h.callback, &ts, Some(&sig), body).await, 200);
        }
        let Hook {
            env,
            config,
            cancel,
            tracker,
            engine,
            ..
        } = h;
        drop(engine);
        cancel.cancel();
        tracker.close();
        tracker.wait().await;
        // Fetches in flight finish (one per worker); the rest were queued.
        let count = |outcome: &str| -> i64 {
            util::reader(&config.database)
                .query_row(
                    "SELECT count(*) FROM webhook_event WHERE outcome = ?1",
                    [outcome],
                    |r| r.get(0),
                )
                .unwrap()
        };
        let pending = count("pending");
        assert!(
            pending >= (6 - receiver::WORKERS) as i64,
            "queued events are saved: {pending}"
        );
        assert_eq!(
            pending + count("stored"),
            6,
            "every acknowledged event is kept"
        );

        env.sim.set_faults(ouradb_sim::Faults::default());
        let engine = Arc::new(env.engine(config.clone()));
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        let opts = ReceiverOptions::from_config(&config, sync::system_clock()).unwrap();
        let handle = receiver::start(engine.clone(), opts, cancel.clone(), &tracker)
            .await
            .unwrap();
        assert!(
            handle
                .wait_processed(pending as u64, Duration::from_secs(10))
                .await
        );
        for id in &ids {
            assert!(
                db::document_json(&config.database, registry::find("daily_sleep").unwrap(), id)
                    .unwrap()
                    .is_some(),
                "{id} applied after the restart"
            );
        }
        let outcomes: Vec<String> = util::reader(&config.database)
            .prepare("SELECT outcome FROM webhook_event ORDER BY object_id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(outcomes, vec!["stored"; 6]);
        cancel.cancel();
        tracker.close();
        tracker.wait().await;
        env.sim.stop().await;
    })
    .await;
}

#[tokio::test]
async fn object_ids_that_name_no_document_are_rejected_and_never_fetched() {
    bounded(async {
        let h = Hook::start(|_| {}, |_| {}).await;
        let url = h.callback.clone();
        let ts = now_ts();
        let long = "a".repeat(300);
        let bad = [
            "..",
            ".",
            "",
            "a/b",
            "../daily_sleep",
            "x?start_date=2020-01-01",
            "x#y",
            "x%2e",
            "%2e%2e",
            "a b",
            "x\t",
            "x\\..",
            "x\u{1b}]0;pwned\u{7}",
            "x\u{202e}y",
            long.as_str(),
        ];
        // Characters a path segment must escape, in an id that is usable.
        let odd_but_valid = "wh\"q<1>";
        let before = h.env.sim.request_log().len();
        for id in bad.iter().chain([&odd_but_valid]) {
            let body = event_body("update", "daily_sleep", id);
            let sig = sign(SECRET, &ts, body.as_bytes());
            assert_eq!(post(&url, &ts, Some(&sig), body).await, 200, "{id:?}");
        }
        let n = bad.len() as u64 + 1;
        assert!(h.handle.wait_processed(n, Duration::from_secs(5)).await);

        let requests: Vec<String> = h.env.sim.request_log()[before..]
            .iter()
            .map(|e| format!("{} {}?{}", e.method, e.path, e.query))
            .collect();
        assert_eq!(
            requests,
            vec!["GET /v2/usercollection/daily_sleep/wh%22q%3C1%3E?".to_owned()],
            "only the usable id is fetched, as one escaped path segment"
        );
        let outcomes: std::collections::HashMap<String, String> = {
            let reader = db::reader(&h.config.database);
            let mut st = reader
                .prepare("SELECT object_id, outcome FROM webhook_event")
                .unwrap();
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        for id in bad {
            let outcome = outcomes.get(id).map(String::as_str).unwrap_or("missing");
            assert!(outcome.starts_with("rejected: "), "{id:?}: {outcome}");
        }
        assert_eq!(outcomes[odd_but_valid], "not_found");
        assert_eq!(
            h.handle
                .stats
                .failed
                .load(std::sync::atomic::Ordering::SeqCst),
            0
        );
        // `status` shows the last event without its control characters.
        let ro = Store::open_read_only(&h.config.database).unwrap();
        let section = ouradb::cli::webhook::status_section(&h.config, &ro, Timestamp::now())
            .unwrap()
            .expect("webhooks enabled");
        assert!(
            !section.contains(['\u{1b}', '\u{7}', '\u{202e}']),
            "{section:?}"
        );
        h.stop().await;
    })
    .await;
}

/// A webhook for a daily document that Oura re-issued under a new id takes
/// the same road as a sync page: the day keeps one document, the new one,
/// and the old one's JSON is kept in document_history.
#[tokio::test]
async fn a_daily_document_re_issued_under_a_new_id_replaces_the_stored_one_by_webhook() {
    bounded(async {
        let h = Hook::start(|_| {}, |_| {}).await;
        h.subscribe(&[registry::find("daily_sleep").unwrap()]).await;
        let mut old = on_own_day(new_doc(&h, "daily_sleep", "wh-day-old"), 3);
        old["score"] = json!(41);
        set(&h, "daily_sleep", old.clone());
        assert!(
            h.wait_stored("daily_sleep", "wh-day-old", |d| d.is_some())
                .await
        );
        let mut new = old.clone();
        new["id"] = json!("wh-day-new");
        new["score"] = json!(83);
        set(&h, "daily_sleep", new);
        assert!(
            h.wait_stored("daily_sleep", "wh-day-new", |d| d
                .is_some_and(|d| d["score"] == 83))
                .await
        );
        let conn = util::reader(&h.config.database);
        let ids: Vec<String> = conn
            .prepare("SELECT id FROM daily_sleep WHERE day = '2020-01-04'")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(ids, vec!["wh-day-new".to_owned()]);
        let (kept, by): (String, String) = conn
            .query_row(
                "SELECT raw_json, replaced_by FROM document_history WHERE id = 'wh-day-old'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(serde_json::from_str::<Value>(&kept).unwrap()["score"], 41);
        assert_eq!(by, "wh-day-new");
    })
    .await;
}

/// `ouradb webhook events [--account NAME]` on the file of
/// [`events_reach_only_the_account_of_their_oura_user`]: bob's two events,
/// newest first; without `--account`, all five, the stranger's under no
/// account.
fn check_events_by_account(env: &Env, db: &std::path::Path, stranger: &str) {
    let cfg = env.dir.path().join("household.toml");
    std::fs::write(
        &cfg,
        format!(
            "[storage]\ndatabase = \"{}\"\n[[account]]\nname = \"alice\"\n[[account]]\nname = \"bob\"\n",
            db.display()
        ),
    )
    .unwrap();
    let events = |args: &[&str]| -> Vec<Value> {
        let out = crate::cli::ouradb_at(&cfg)
            .args(["webhook", "events", "--json"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let field =
        |rows: &[Value], key: &str| -> Vec<Value> { rows.iter().map(|r| r[key].clone()).collect() };
    let bobs = events(&["--account", "bob"]);
    assert_eq!(
        field(&bobs, "object_id"),
        [json!("wh-bob-2"), json!("wh-bob-1")]
    );
    assert_eq!(field(&bobs, "account"), [json!("bob"), json!("bob")]);
    let all = events(&[]);
    assert_eq!(all.len(), 5);
    let strangers: Vec<&Value> = all.iter().filter(|r| r["account"].is_null()).collect();
    assert_eq!(strangers.len(), 2);
    assert!(strangers.iter().all(|r| r["outcome"] == json!(stranger)));
    assert_eq!(events(&["--limit", "1"]).len(), 1);
    let out = crate::cli::ouradb_at(&cfg)
        .args(["webhook", "events", "--account", "carol"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "an account not in the config");
    let told = String::from_utf8_lossy(&out.stderr);
    assert!(
        told.contains("carol") && told.contains("alice, bob"),
        "{told}"
    );
}

/// Subscriptions are the application's, so one receiver hears every
/// account's events: each lands in the account of its Oura user only. The
/// simulator's webhook `user_id` is not the personal_info id, so the first
/// event of each user is proven by which account's token reads the
/// document, and later ones go straight to it. An event of a user no
/// account is, delete included, is recorded and touches nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reach_only_the_account_of_their_oura_user() {
    bounded(async {
        let env = Env::start(10, |c| *c = c.clone().with_persons(2)).await;
        let mut config = webhook_config(&env, &format!("http://127.0.0.1:1{PATH}"));
        let store = ouradb::store::StoreHandle::new(Store::open(&config.database).unwrap());
        let mut engines = Vec::new();
        let mut ids = Vec::new();
        for (name, token) in [
            ("alice", util::TOKEN.to_owned()),
            ("bob", util::person_token(1)),
        ] {
            let id = store
                .add_account(name.to_owned(), Timestamp::now())
                .await
                .unwrap();
            let mut c = config.clone();
            c.token = Some(Secret::new(&token));
            let engine = sync::engine_with_store(
                Arc::new(c),
                None,
                CancellationToken::new(),
                env.clock(),
                store.for_account(id),
            )
            .unwrap();
            engines.push(Arc::new(engine));
            ids.push(id.get());
        }
        let (cancel, tracker) = (CancellationToken::new(), TaskTracker::new());
        let opts = ReceiverOptions::from_config(&config, sync::system_clock()).unwrap();
        let accounts = webhook::route::Accounts::new(engines.clone());
        let handle = receiver::start(accounts, opts, cancel.clone(), &tracker)
            .await
            .unwrap();
        let callback = format!("http://{}{PATH}", handle.addr);
        settings(&mut config).callback_url = callback.parse().unwrap();
        let api = WebhookApi::new(&config).unwrap();
        let types = [registry::find("daily_sleep").unwrap()];
        let r = reconcile(
            &api,
            &callback,
            &Secret::new(VT),
            &wanted(&types),
            Timestamp::now(),
            RENEW_BEFORE,
        )
        .await
        .unwrap();
        assert!(r.failed.is_empty(), "{:?}", r.failed);

        let doc_of = |person: usize, id: &str, day: i32| {
            let mut doc: Value = env.sim.read_person_data(person, |d| {
                serde_json::from_str(&d.documents("daily_sleep").last().unwrap().json).unwrap()
            });
            doc["id"] = json!(id);
            on_own_day(doc, day)
        };
        let owners = |id: &str| -> Vec<i64> {
            db::reader(&config.database)
                .prepare("SELECT account FROM daily_sleep WHERE id = ?1")
                .unwrap()
                .query_map([id], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        let fetches = |id: &str| -> Vec<String> {
            env.sim
                .request_log()
                .iter()
                .filter(|e| e.path.ends_with(&format!("/daily_sleep/{id}")))
                .filter_map(|e| e.token.clone())
                .collect()
        };
        let mut processed = 0;
        for (person, id, day) in [(1, "wh-bob-1", 3), (0, "wh-alice-1", 4), (1, "wh-bob-2", 5)] {
            let doc = doc_of(person, id, day);
            env.sim.with_person_data(person, |d| {
                vec![d.set_document("daily_sleep", doc).unwrap()]
            });
            processed += 1;
            assert!(
                handle
                    .wait_processed(processed, Duration::from_secs(10))
                    .await,
                "{id}"
            );
            assert_eq!(
                owners(id),
                vec![ids[person]],
                "{id} stored under its own account only"
            );
        }
        // Bob's first event was proven by fetching with each account's
        // token (alice's answers 404); his second went straight to him.
        let bob = util::person_token(1);
        assert_eq!(
            fetches("wh-bob-1"),
            vec![util::TOKEN.to_owned(), bob.clone()]
        );
        assert_eq!(fetches("wh-bob-2"), vec![bob]);

        // A stranger's events: a delete of an id alice holds, a create of a
        // document no account's token reads.
        let ts = now_ts();
        for (op, id) in [("delete", "wh-alice-1"), ("create", "nobodys-document")] {
            let body = json!({"event_type": op, "data_type": "daily_sleep", "object_id": id,
                              "event_time": Timestamp::now().to_string(), "user_id": "stranger"})
            .to_string();
            let sig = sign(SECRET, &ts, body.as_bytes());
            assert_eq!(post(&callback, &ts, Some(&sig), body).await, 200);
        }
        assert!(
            handle
                .wait_processed(processed + 2, Duration::from_secs(10))
                .await
        );
        assert_eq!(
            owners("wh-alice-1"),
            vec![ids[0]],
            "a stranger's delete touches no account"
        );
        let mut recorded: Vec<(String, String, Option<i64>)> = db::reader(&config.database)
            .prepare(
                "SELECT object_id, outcome, account FROM webhook_event ORDER BY received_at, rowid",
            )
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let stranger = "ignored: no account is Oura user stranger".to_owned();
        // The stranger's two events may be applied by two workers in
        // either order.
        recorded[3..].sort();
        assert_eq!(
            recorded,
            vec![
                ("wh-bob-1".into(), "stored".into(), Some(ids[1])),
                ("wh-alice-1".into(), "stored".into(), Some(ids[0])),
                ("wh-bob-2".into(), "stored".into(), Some(ids[1])),
                ("nobodys-document".into(), stranger.clone(), None),
                ("wh-alice-1".into(), stranger.clone(), None),
            ]
        );
        check_events_by_account(&env, &config.database, &stranger);
        cancel.cancel();
        tracker.close();
        tracker.wait().await;
        env.sim.stop().await;
    })
    .await;
}
