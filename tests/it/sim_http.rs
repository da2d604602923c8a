//! The simulator's HTTP behaviour, driven through reqwest against
//! `SimServer::start` on port 0.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use jiff::civil::{Date, date};
use ouradb_sim::data::{Change, Op};
use ouradb_sim::{Application, Faults, RateLimitCause, SimConfig, SimServer};
use serde_json::{Value, json};

const TOKEN: &str = "sim-token";
const TODAY: Date = date(2024, 6, 30);
const LIMIT: Duration = Duration::from_secs(60);

fn cfg(days: u32) -> SimConfig {
    SimConfig::new(7, days, TODAY)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn get(srv: &SimServer, path: &str) -> reqwest::Response {
    client()
        .get(format!("{}{}", srv.base_url(), path))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
}

async fn get_json(srv: &SimServer, path: &str) -> (u16, Value) {
    let r = get(srv, path).await;
    let st = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        st,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn bounded<F: std::future::Future<Output = ()>>(f: F) {
    tokio::time::timeout(LIMIT, f)
        .await
        .expect("test timed out");
}

#[tokio::test]
async fn auth_missing_and_unknown_token_is_401_problem() {
    bounded(async {
        let srv = SimServer::start(cfg(3)).await.unwrap();
        let url = format!("{}/v2/usercollection/daily_sleep", srv.base_url());
        let r = client().get(&url).send().await.unwrap();
        assert_eq!(r.status(), 401);
        let b: Value = r.json().await.unwrap();
        assert_eq!(b["status"], 401);
        assert_eq!(b["error"], "invalid_token");
        assert!(b["title"].is_string() && b["detail"].is_string());
        let r = client().get(&url).bearer_auth("nope").send().await.unwrap();
        assert_eq!(r.status(), 401);
        let r = client().get(&url).bearer_auth(TOKEN).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let b: Value = r.json().await.unwrap();
        assert!(b["data"].is_array());
        assert!(b.get("next_token").is_some());
        srv.revoke_token(TOKEN);
        let r = client().get(&url).bearer_auth(TOKEN).send().await.unwrap();
        assert_eq!(r.status(), 401);
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn missing_scope_is_401_on_new_routes_and_403_elsewhere() {
    bounded(async {
        let mut c = cfg(3);
        c.token_scopes
            .insert(TOKEN.to_owned(), vec!["email".to_owned()]);
        let srv = SimServer::start(c).await.unwrap();
        for coll in [
            "daily_resilience",
            "vO2_max",
            "daily_cardiovascular_age",
            "ring_battery_level",
        ] {
            let (st, b) = get_json(&srv, &format!("/v2/usercollection/{coll}")).await;
            assert_eq!(st, 401, "{coll}");
            assert_eq!(b["status"], 401);
        }
        for coll in [
            "daily_sleep",
            "sleep",
            "heartrate",
            "workout",
            "tag",
            "enhanced_tag",
            "session",
            "daily_spo2",
            "personal_info",
            "ring_configuration",
        ] {
            let (st, _) = get_json(&srv, &format!("/v2/usercollection/{coll}")).await;
            assert_eq!(st, 403, "{coll}");
        }
        srv.stop().await;

        let mut c = cfg(3);
        c.token_scopes.insert(
            TOKEN.to_owned(),
            vec!["workout".to_owned(), "spo2Daily".to_owned()],
        );
        let srv = SimServer::start(c).await.unwrap();
        assert_eq!(get(&srv, "/v2/usercollection/workout").await.status(), 200);
        assert_eq!(
            get(&srv, "/v2/usercollection/daily_spo2").await.status(),
            200
        );
        assert_eq!(
            get(&srv, "/v2/usercollection/daily_sleep").await.status(),
            403
        );
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn expired_membership_is_403_everywhere() {
    bounded(async {
        let mut c = cfg(3);
        c.membership_expired = true;
        let srv = SimServer::start(c).await.unwrap();
        for coll in ["daily_sleep", "vO2_max", "heartrate", "personal_info"] {
            let (st, b) = get_json(&srv, &format!("/v2/usercollection/{coll}")).await;
            assert_eq!(st, 403, "{coll}");
            assert_eq!(b["status"], 403);
        }
        srv.set_membership_expired(false);
        assert_eq!(
            get(&srv, "/v2/usercollection/daily_sleep").await.status(),
            200
        );
        srv.stop().await;
    })
    .await;
}

async fn authorize(srv: &SimServer, scope: &str) -> reqwest::Response {
    client()
        .get(format!("{}/oauth/authorize", srv.base_url()))
        .query(&[
            ("response_type", "code"),
            ("client_id", "sim-client"),
            ("redirect_uri", "http://127.0.0.1:9/cb"),
            ("scope", scope),
            ("state", "xyz 1"),
        ])
        .send()
        .await
        .unwrap()
}

fn location_params(r: &reqwest::Response) -> HashMap<String, String> {
    let loc = r.headers()["location"].to_str().unwrap();
    let u = url::Url::parse(loc).unwrap();
    assert_eq!(u.path(), "/cb");
    u.query_pairs().into_owned().collect()
}

async fn exchange(srv: &SimServer, form: &[(&str, &str)]) -> (u16, Value) {
    let r = client()
        .post(format!("{}/oauth/token", srv.base_url()))
        .form(form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn oauth_code_flow_single_use_expiry_and_scopes() {
    bounded(async {
        let srv = SimServer::start(cfg(3)).await.unwrap();
        let r = authorize(&srv, "daily heartrate").await;
        assert_eq!(r.status(), 302);
        let p = location_params(&r);
        assert_eq!(p["state"], "xyz 1");
        assert_eq!(p["scope"], "daily heartrate");
        let code = p["code"].clone();
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", "http://127.0.0.1:9/cb"),
            ("client_id", "sim-client"),
            ("client_secret", "sim-secret"),
        ];
        let (st, tok) = exchange(&srv, &form).await;
        assert_eq!(st, 200, "{tok}");
        assert_eq!(tok["token_type"], "bearer");
        assert_eq!(tok["expires_in"], 86_400);
        let access = tok["access_token"].as_str().unwrap().to_owned();
        assert!(tok["refresh_token"].is_string());
        // Single use.
        let (st, err) = exchange(&srv, &form).await;
        assert_eq!(st, 400);
        assert_eq!(err["error"], "invalid_grant");
        // The token works, within its scopes.
        let c = client();
        let daily = format!("{}/v2/usercollection/daily_sleep", srv.base_url());
        let r = c.get(&daily).bearer_auth(&access).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let r = c
            .get(format!("{}/v2/usercollection/workout", srv.base_url()))
            .bearer_auth(&access)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);

        // Codes expire after 10 minutes; HTTP Basic works for the client.
        let p = location_params(&authorize(&srv, "daily").await);
        srv.advance_time(Duration::from_secs(601));
        let r = client()
            .post(format!("{}/oauth/token", srv.base_url()))
            .basic_auth("sim-client", Some("sim-secret"))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", p["code"].as_str()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let b: Value = r.json().await.unwrap();
        assert_eq!(b["error"], "invalid_grant");
        let p = location_params(&authorize(&srv, "daily").await);
        let r = client()
            .post(format!("{}/oauth/token", srv.base_url()))
            .basic_auth("sim-client", Some("sim-secret"))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", p["code"].as_str()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);

        // Wrong client secret.
        let (st, b) = exchange(
            &srv,
            &[
                ("grant_type", "authorization_code"),
                ("code", "x"),
                ("client_id", "sim-client"),
                ("client_secret", "bad"),
            ],
        )
        .await;
        assert_eq!(st, 401);
        assert_eq!(b["error"], "invalid_client");
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn oauth_denied_consent_redirects_with_access_denied() {
    bounded(async {
        let mut c = cfg(3);
        c.oauth_approve = false;
        let srv = SimServer::start(c).await.unwrap();
        let r = authorize(&srv, "daily").await;
        assert_eq!(r.status(), 302);
        let p = location_params(&r);
        assert_eq!(p["error"], "access_denied");
        assert_eq!(p["state"], "xyz 1");
        assert!(!p.contains_key("code"));
        srv.stop().await;
    })
    .await;
}

async fn oauth_tokens(srv: &SimServer) -> Value {
    let p = location_params(&authorize(srv, "daily personal").await);
    let (st, tok) = exchange(
        srv,
        &[
            ("grant_type", "authorization_code"),
            ("code", p["code"].as_str()),
            ("client_id", "sim-client"),
            ("client_secret", "sim-secret"),
        ],
    )
    .await;
    assert_eq!(st, 200);
    tok
}

#[tokio::test]
async fn oauth_refresh_rotates_and_reuse_is_invalid_grant() {
    bounded(async {
        let mut c = cfg(3);
        c.access_token_lifetime = Duration::from_secs(60);
        let srv = SimServer::start(c).await.unwrap();
        let tok = oauth_tokens(&srv).await;
        let a1 = tok["access_token"].as_str().unwrap().to_owned();
        let r1 = tok["refresh_token"].as_str().unwrap().to_owned();
        assert_eq!(tok["expires_in"], 60);
        let daily = format!("{}/v2/usercollection/daily_sleep", srv.base_url());
        srv.advance_time(Duration::from_secs(61));
        let r = client().get(&daily).bearer_auth(&a1).send().await.unwrap();
        assert_eq!(r.status(), 401, "access token expired");
        let refresh = |rt: String| {
            let srv = &srv;
            async move {
                exchange(
                    srv,
                    &[
                        ("grant_type", "refresh_token"),
                        ("refresh_token", rt.as_str()),
                        ("client_id", "sim-client"),
                        ("client_secret", "sim-secret"),
                    ],
                )
                .await
            }
        };
        let (st, t2) = refresh(r1.clone()).await;
        assert_eq!(st, 200);
        let a2 = t2["access_token"].as_str().unwrap().to_owned();
        let r2 = t2["refresh_token"].as_str().unwrap().to_owned();
        assert_ne!(a2, a1);
        assert_ne!(r2, r1);
        let r = client().get(&daily).bearer_auth(&a2).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let (st, e) = refresh(r1).await;
        assert_eq!(st, 400);
        assert_eq!(e["error"], "invalid_grant");
        let (st, t3) = refresh(r2).await;
        assert_eq!(st, 200);

        // /oauth/revoke ends the grant; revoke_grant ends a client's grants.
        let a3 = t3["access_token"].as_str().unwrap().to_owned();
        let r = client()
            .post(format!("{}/oauth/revoke", srv.base_url()))
            .form(&[("access_token", a3.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let r = client().get(&daily).bearer_auth(&a3).send().await.unwrap();
        assert_eq!(r.status(), 401);
        let (st, _) = refresh(t3["refresh_token"].as_str().unwrap().to_owned()).await;
        assert_eq!(st, 400);

        let t4 = oauth_tokens(&srv).await;
        srv.revoke_grant("sim-client");
        let r = client()
            .get(&daily)
            .bearer_auth(t4["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn malformed_and_inverted_dates_are_422_validation_errors() {
    bounded(async {
        let srv = SimServer::start(cfg(3)).await.unwrap();
        let cases = [
            ("/v2/usercollection/daily_sleep?start_date=", "start_date"),
            (
                "/v2/usercollection/daily_sleep?start_date=2024-13-01",
                "start_date",
            ),
            ("/v2/usercollection/sleep?end_date=yesterday", "end_date"),
            (
                "/v2/usercollection/workout?start_date=2024-06-10&end_date=2024-06-01",
                "start_date",
            ),
        ];
        for (path, field) in cases {
            let (st, b) = get_json(&srv, path).await;
            assert_eq!(st, 422, "{path}");
            let d = &b["detail"][0];
            assert_eq!(d["loc"], json!(["query", field]), "{path}");
            assert!(d["type"].is_string() && d["msg"].is_string(), "{path}");
            assert!(d.get("input").is_some(), "{path}");
        }
        // Unknown parameters are ignored; date-times are accepted.
        let (st, _) = get_json(
            &srv,
            "/v2/usercollection/daily_sleep?start_date=2024-06-01T00:00:00%2B02:00&foo=bar",
        )
        .await;
        assert_eq!(st, 200);
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn time_series_range_limits_and_plus_sign() {
    bounded(async {
        let srv = SimServer::start(cfg(3)).await.unwrap();
        let (st, b) = get_json(
            &srv,
            "/v2/usercollection/heartrate?start_datetime=2024-05-01T00:00:00%2B00:00&end_datetime=2024-06-01T00:00:01%2B00:00",
        )
        .await;
        assert_eq!(st, 400, "{b}");
        let (st, _) = get_json(
            &srv,
            "/v2/usercollection/heartrate?start_datetime=2024-05-02T00:00:00%2B00:00&end_datetime=2024-06-01T00:00:00%2B00:00",
        )
        .await;
        assert_eq!(st, 200);
        // An unencoded '+' decodes to a space: rejected like the real API.
        let (st, b) = get_json(
            &srv,
            "/v2/usercollection/ring_battery_level?start_datetime=2024-06-01T00:00:00+02:00",
        )
        .await;
        assert_eq!(st, 422);
        assert_eq!(b["detail"][0]["loc"], json!(["query", "start_datetime"]));
        let (st, _) = get_json(&srv, "/v2/usercollection/heartrate?latest=maybe").await;
        assert_eq!(st, 422);
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn tampered_or_foreign_next_token_is_400() {
    bounded(async {
        let srv = SimServer::start(cfg(3)).await.unwrap();
        for path in [
            "/v2/usercollection/daily_sleep?next_token=abc",
            "/v2/usercollection/heartrate?next_token=abc.def",
            "/v2/sandbox/usercollection/tag?next_token=x",
        ] {
            let (st, _) = get_json(&srv, path).await;
            assert_eq!(st, 400, "{path}");
        }
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn rate_limit_429_with_headers_and_window_counter() {
    bounded(async {
        let mut c = cfg(3);
        c.rate_limit = 5;
        c.rate_window = Duration::from_secs(300);
        let srv = SimServer::start(c).await.unwrap();
        for _ in 0..5 {
            assert_eq!(
                get(&srv, "/v2/usercollection/daily_sleep").await.status(),
                200
            );
        }
        let r = get(&srv, "/v2/usercollection/daily_sleep").await;
        assert_eq!(r.status(), 429);
        let h = r.headers();
        let retry: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=300).contains(&retry));
        assert_eq!(h["x-ratelimit-limit"], "5");
        assert_eq!(h["x-ratelimit-window"], "300");
        assert!(h.contains_key("x-ratelimit-reset"));
        assert_eq!(h["x-ratelimit-tier"], "standard");
        // Another token has its own window.
        srv.advance_time(Duration::from_secs(301));
        assert_eq!(
            get(&srv, "/v2/usercollection/daily_sleep").await.status(),
            200
        );

        assert_eq!(
            srv.max_requests_in_window(TOKEN, Duration::from_secs(300)),
            6
        );
        assert_eq!(
            srv.max_requests_in_window(TOKEN, Duration::from_secs(900)),
            7
        );
        assert_eq!(
            srv.max_requests_in_window("other", Duration::from_secs(300)),
            0
        );
        assert_eq!(srv.count("GET /v2/usercollection/daily_sleep", 200), 6);
        assert_eq!(srv.count("GET /v2/usercollection/daily_sleep", 429), 1);
        let log = srv.request_log();
        assert_eq!(log.len(), 7);
        assert_eq!(log[5].status, 429);
        assert_eq!(log[0].path, "/v2/usercollection/daily_sleep");
        assert_eq!(log[0].token.as_deref(), Some(TOKEN));
        assert_eq!(log[0].method, "GET");
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn rate_headers_on_every_response_when_asked() {
    bounded(async {
        let mut c = cfg(3);
        c.rate_limit = 4;
        c.rate_window = Duration::from_secs(60);
        c.rate_headers_always = true;
        let srv = SimServer::start(c).await.unwrap();
        for left in (0..4).rev() {
            let r = get(&srv, "/v2/usercollection/daily_sleep").await;
            assert_eq!(r.status(), 200);
            let h = r.headers();
            assert_eq!(h["x-ratelimit-remaining"], left.to_string().as_str());
            assert_eq!(h["x-ratelimit-limit"], "4");
            assert_eq!(h["x-ratelimit-window"], "60");
            let reset: i64 = h["x-ratelimit-reset"].to_str().unwrap().parse().unwrap();
            let now = jiff::Timestamp::now().as_second();
            assert!((now + 59..=now + 61).contains(&reset), "{reset} vs {now}");
        }
        assert_eq!(
            get(&srv, "/v2/usercollection/daily_sleep").await.status(),
            429
        );
        srv.stop().await;

        // Off by default, as Oura documents them for 429s only.
        let srv = SimServer::start(cfg(3)).await.unwrap();
        let r = get(&srv, "/v2/usercollection/daily_sleep").await;
        assert!(!r.headers().contains_key("x-ratelimit-remaining"));
        srv.stop().await;
    })
    .await;
}

#[derive(Default)]
struct Receiver {
    verifications: Vec<HashMap<String, String>>,
    events: Vec<(HeaderMap, String)>,
    /// Statuses to answer events with, in order; then 200.
    script: Vec<u16>,
}

type Rx = Arc<Mutex<Receiver>>;

async fn start_receiver(rx: Rx) -> (String, tokio::task::JoinHandle<()>) {
    async fn verify(
        State(rx): State<Rx>,
        Query(q): Query<HashMap<String, String>>,
    ) -> axum::Json<Value> {
        let ch = q.get("challenge").cloned().unwrap_or_default();
        rx.lock().unwrap().verifications.push(q);
        axum::Json(json!({ "challenge": ch }))
    }
    async fn event(State(rx): State<Rx>, headers: HeaderMap, body: String) -> StatusCode {
        let mut r = rx.lock().unwrap();
        r.events.push((headers, body));
        let code = if r.script.is_empty() {
            200
        } else {
            r.script.remove(0)
        };
        StatusCode::from_u16(code).unwrap()
    }
    let app = axum::Router::new()
        .route("/hook", axum::routing::get(verify).post(event))
        .route(
            "/bad",
            axum::routing::get(|| async { axum::Json(json!({"challenge": "wrong"})) }),
        )
        .with_state(rx);
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let h = tokio::spawn(async move {
        axum::serve(l, app).await.unwrap();
    });
    (url, h)
}

fn wh(c: &reqwest::Client, m: reqwest::Method, url: String) -> reqwest::RequestBuilder {
    c.request(m, url)
        .header("x-client-id", "sim-client")
        .header("x-client-secret", "sim-secret")
}

#[tokio::test]
async fn webhook_subscription_crud_verification_and_conflict() {
    bounded(async {
        let srv = SimServer::start(cfg(3)).await.unwrap();
        let rx: Rx = Arc::default();
        let (cb, recv) = start_receiver(rx.clone()).await;
        let c = client();
        let base = format!("{}/v2/webhook/subscription", srv.base_url());
        let body = json!({"callback_url": format!("{cb}/hook"), "verification_token": "vt",
                          "event_type": "update", "data_type": "vo2_max"});
        // Bad credentials.
        let r = c.post(&base).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 401);
        let r = wh(&c, reqwest::Method::POST, base.clone())
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let sub: Value = r.json().await.unwrap();
        let id = sub["id"].as_str().unwrap().to_owned();
        assert_eq!(sub["data_type"], "vo2_max");
        assert!(
            sub["expiration_time"]
                .as_str()
                .unwrap()
                .parse::<jiff::Timestamp>()
                .is_ok()
        );
        {
            let r = rx.lock().unwrap();
            assert_eq!(r.verifications.len(), 1);
            assert_eq!(r.verifications[0]["verification_token"], "vt");
        }
        let r = wh(&c, reqwest::Method::POST, base.clone())
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 409);
        // Failing verification and invalid body.
        let mut bad = body.clone();
        bad["callback_url"] = json!(format!("{cb}/bad"));
        let r = wh(&c, reqwest::Method::POST, base.clone())
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422);
        let r = wh(&c, reqwest::Method::POST, base.clone())
            .json(&json!({"callback_url": "x", "verification_token": "v",
                          "event_type": "upsert", "data_type": "tag"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422);
        let b: Value = r.json().await.unwrap();
        assert_eq!(b["detail"][0]["loc"], json!(["body", "event_type"]));

        let list: Value = wh(&c, reqwest::Method::GET, base.clone())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(list.as_array().unwrap().len(), 1);
        let one = wh(&c, reqwest::Method::GET, format!("{base}/{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(one.status(), 200);
        let r = wh(&c, reqwest::Method::PUT, format!("{base}/{id}"))
            .json(&json!({"verification_token": "vt", "event_type": "create"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let upd: Value = r.json().await.unwrap();
        assert_eq!(upd["event_type"], "create");
        srv.advance_time(Duration::from_secs(86_400));
        let r = wh(&c, reqwest::Method::PUT, format!("{base}/renew/{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let ren: Value = r.json().await.unwrap();
        let t0: jiff::Timestamp = sub["expiration_time"].as_str().unwrap().parse().unwrap();
        let t1: jiff::Timestamp = ren["expiration_time"].as_str().unwrap().parse().unwrap();
        assert!(t1 > t0);
        let r = wh(&c, reqwest::Method::DELETE, format!("{base}/{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        let r = wh(&c, reqwest::Method::GET, format!("{base}/{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        srv.stop().await;
        recv.abort();
    })
    .await;
}

#[tokio::test]
async fn webhook_events_are_signed_retried_and_410_cancels() {
    bounded(async {
        let mut c = cfg(3);
        c.webhook_backoff = Duration::from_millis(20);
        let srv = SimServer::start(c).await.unwrap();
        let rx: Rx = Arc::default();
        let (cb, recv) = start_receiver(rx.clone()).await;
        let cl = client();
        let base = format!("{}/v2/webhook/subscription", srv.base_url());
        let r = wh(&cl, reqwest::Method::POST, base.clone())
            .json(
                &json!({"callback_url": format!("{cb}/hook"), "verification_token": "vt",
                          "event_type": "update", "data_type": "vo2_max"}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let sub_id = r.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();

        rx.lock().unwrap().script = vec![500, 503];
        let changes = srv.with_data(|_| {
            vec![
                Change {
                    collection: "vO2_max",
                    id: "v1".into(),
                    op: Op::Update,
                },
                // Not subscribed: no event.
                Change {
                    collection: "tag",
                    id: "t1".into(),
                    op: Op::Delete,
                },
            ]
        });
        assert_eq!(changes.len(), 2);
        assert!(srv.webhooks_idle(Duration::from_secs(10)).await);
        {
            let r = rx.lock().unwrap();
            assert_eq!(r.events.len(), 3, "two failures then success");
            let (h, body) = &r.events[2];
            let ts = h["x-oura-timestamp"].to_str().unwrap();
            let sig = h["x-oura-signature"].to_str().unwrap();
            assert_eq!(sig, ouradb_sig("sim-secret", ts, body));
            assert_eq!(sig, sig.to_uppercase());
            let v: Value = serde_json::from_str(body).unwrap();
            assert_eq!(v["event_type"], "update");
            assert_eq!(v["data_type"], "vo2_max");
            assert_eq!(v["object_id"], "v1");
            assert_eq!(v["user_id"], "sim-user-7");
            assert!(
                v["event_time"]
                    .as_str()
                    .unwrap()
                    .parse::<jiff::Timestamp>()
                    .is_ok()
            );
        }
        let attempts = srv.webhook_attempts();
        assert_eq!(
            attempts.iter().map(|a| a.status).collect::<Vec<_>>(),
            vec![Some(500), Some(503), Some(200)]
        );

        // 410 cancels the subscription.
        rx.lock().unwrap().script = vec![410];
        srv.with_data(|_| {
            vec![Change {
                collection: "vO2_max",
                id: "v2".into(),
                op: Op::Update,
            }]
        });
        assert!(srv.webhooks_idle(Duration::from_secs(10)).await);
        assert_eq!(rx.lock().unwrap().events.len(), 4);
        let r = wh(&cl, reqwest::Method::GET, format!("{base}/{sub_id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        srv.with_data(|_| {
            vec![Change {
                collection: "vO2_max",
                id: "v3".into(),
                op: Op::Update,
            }]
        });
        assert!(srv.webhooks_idle(Duration::from_secs(10)).await);
        assert_eq!(rx.lock().unwrap().events.len(), 4);
        srv.stop().await;
        recv.abort();
    })
    .await;
}

fn ouradb_sig(secret: &str, ts: &str, body: &str) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    let mut m = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
    m.update(ts.as_bytes());
    m.update(body.as_bytes());
    hex::encode_upper(m.finalize().into_bytes())
}

fn only(f: impl FnOnce(&mut Faults)) -> Faults {
    let mut x = Faults::none();
    f(&mut x);
    x
}

#[tokio::test]
async fn faults_status_codes_and_429_bursts() {
    bounded(async {
        let srv = SimServer::start(cfg(3)).await.unwrap();
        for (code, f) in [
            (500, only(|f| f.status_500 = 1.0)),
            (502, only(|f| f.status_502 = 1.0)),
            (503, only(|f| f.status_503 = 1.0)),
            (504, only(|f| f.status_504 = 1.0)),
        ] {
            srv.set_faults(f);
            assert_eq!(
                get(&srv, "/v2/usercollection/daily_sleep").await.status(),
                code
            );
        }
        srv.set_faults(only(|f| {
            f.burst_429 = 1.0;
            f.burst_len = 3;
        }));
        let r = get(&srv, "/v2/usercollection/daily_sleep").await;
        assert_eq!(r.status(), 429);
        assert!(r.headers().contains_key("retry-after"));
        assert!(r.headers().contains_key("x-ratelimit-tier"));
        srv.set_faults(only(|f| {
            f.burst_429 = 0.05;
            f.burst_len = 3;
        }));
        // Deterministic by seed: two servers with one seed fault identically.
        let mut seqs = Vec::new();
        for _ in 0..2 {
            let s2 = SimServer::start(cfg(3)).await.unwrap();
            s2.set_faults(only(|f| f.status_503 = 0.3));
            let mut seq = Vec::new();
            for _ in 0..20 {
                seq.push(
                    get(&s2, "/v2/usercollection/daily_sleep")
                        .await
                        .status()
                        .as_u16(),
                );
            }
            s2.stop().await;
            seqs.push(seq);
        }
        assert_eq!(seqs[0], seqs[1]);
        assert!(seqs[0].contains(&503) && seqs[0].contains(&200));
        srv.set_faults(Faults::none());
        assert_eq!(
            get(&srv, "/v2/usercollection/daily_sleep").await.status(),
            200
        );
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn faults_bursts_last_burst_len_requests() {
    bounded(async {
        let srv = SimServer::start(cfg(3)).await.unwrap();
        srv.set_faults(only(|f| {
            f.burst_429 = 1.0;
            f.burst_len = 3;
        }));
        for _ in 0..3 {
            assert_eq!(
                get(&srv, "/v2/usercollection/daily_sleep").await.status(),
                429
            );
        }
        srv.set_faults(Faults::none());
        assert_eq!(
            get(&srv, "/v2/usercollection/daily_sleep").await.status(),
            200
        );
        let faults: Vec<_> = srv.request_log().iter().map(|e| e.fault).collect();
        assert_eq!(faults, vec![Some("429"), Some("429"), Some("429"), None]);
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn faults_slow_stall_truncate_malformed_reset() {
    bounded(async {
        let srv = SimServer::start(cfg(3)).await.unwrap();
        let url = format!("{}/v2/usercollection/daily_sleep", srv.base_url());

        srv.set_faults(only(|f| {
            f.slow = 1.0;
            f.slow_delay = Duration::from_millis(300);
        }));
        let t = std::time::Instant::now();
        assert_eq!(
            get(&srv, "/v2/usercollection/daily_sleep").await.status(),
            200
        );
        assert!(t.elapsed() >= Duration::from_millis(300));

        srv.set_faults(only(|f| {
            f.stall = 1.0;
            f.stall_duration = Duration::from_secs(30);
        }));
        let short = reqwest::Client::builder()
            .timeout(Duration::from_millis(300))
            .build()
            .unwrap();
        let e = short.get(&url).bearer_auth(TOKEN).send().await.unwrap_err();
        assert!(e.is_timeout());

        srv.set_faults(only(|f| f.truncate = 1.0));
        let r = client().get(&url).bearer_auth(TOKEN).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let announced = r.content_length().unwrap();
        assert!(announced > 0);
        assert!(r.bytes().await.is_err(), "body shorter than Content-Length");

        srv.set_faults(only(|f| f.malformed = 1.0));
        let r = client().get(&url).bearer_auth(TOKEN).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let text = r.text().await.unwrap();
        assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");

        srv.set_faults(only(|f| f.reset = 1.0));
        let res = client().get(&url).bearer_auth(TOKEN).send().await;
        match res {
            Err(_) => {}
            Ok(r) => assert!(r.bytes().await.is_err()),
        }
        srv.set_faults(Faults::none());
        let log = srv.request_log();
        let kinds: Vec<_> = log.iter().filter_map(|e| e.fault).collect();
        assert_eq!(
            kinds,
            vec!["slow", "stall", "truncate", "malformed", "reset"]
        );
        // Stop cuts the stalled request short instead of waiting 30 s.
        let t = std::time::Instant::now();
        srv.stop().await;
        assert!(t.elapsed() < Duration::from_secs(6));
    })
    .await;
}

#[tokio::test]
async fn unknown_routes_404_and_sandbox_mirror() {
    bounded(async {
        let srv = SimServer::start(cfg(3)).await.unwrap();
        assert_eq!(get(&srv, "/v2/usercollection/nope").await.status(), 404);
        assert_eq!(
            get(&srv, "/v2/usercollection/sleep/missing-id")
                .await
                .status(),
            404
        );
        assert_eq!(
            get(&srv, "/v2/sandbox/usercollection/personal_info")
                .await
                .status(),
            404
        );
        assert_eq!(
            get(&srv, "/v2/sandbox/usercollection/sleep").await.status(),
            200
        );
        assert_eq!(
            get(&srv, "/v2/usercollection/personal_info").await.status(),
            200
        );
        srv.stop().await;
    })
    .await;
}

fn ids(v: &Value) -> Vec<String> {
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn served_ids(srv: &SimServer, coll: &str, start: &str, end: &str) -> Vec<String> {
    let (st, b) = get_json(
        srv,
        &format!("/v2/usercollection/{coll}?start_date={start}&end_date={end}"),
    )
    .await;
    assert_eq!(st, 200, "{b}");
    assert!(b["next_token"].is_null());
    ids(&b)
}

#[tokio::test]
async fn date_semantics_per_collection() {
    bounded(async {
        let mut c = cfg(60);
        c.page_size = 10_000;
        let srv = SimServer::start(c).await.unwrap();
        srv.with_data(|d| {
            vec![
                d.set_document(
                    "daily_activity",
                    json!({"id": "x-act", "day": "2024-06-10"}),
                )
                .unwrap(),
                d.set_document("daily_sleep", json!({"id": "x-ds", "day": "2024-06-10"}))
                    .unwrap(),
                d.set_document("daily_sleep", json!({"id": "x-today", "day": "2024-06-30"}))
                    .unwrap(),
                d.set_document(
                    "sleep",
                    json!({"id": "x-sl", "day": "2024-06-10",
                    "bedtime_start": "2024-06-09T23:00:00+00:00"}),
                )
                .unwrap(),
                d.set_document(
                    "workout",
                    json!({"id": "x-wo", "day": "2024-06-10",
                    "start_datetime": "2024-06-10T22:00:00-05:00"}),
                )
                .unwrap(),
            ]
        });
        let has = |v: &[String], id: &str| v.iter().any(|x| x == id);
        // daily_activity excludes the end day.
        assert!(!has(
            &served_ids(&srv, "daily_activity", "2024-06-10", "2024-06-10").await,
            "x-act"
        ));
        assert!(!has(
            &served_ids(&srv, "daily_activity", "2024-06-09", "2024-06-10").await,
            "x-act"
        ));
        assert!(has(
            &served_ids(&srv, "daily_activity", "2024-06-10", "2024-06-11").await,
            "x-act"
        ));
        // daily_sleep includes it.
        assert!(has(
            &served_ids(&srv, "daily_sleep", "2024-06-10", "2024-06-10").await,
            "x-ds"
        ));
        // sleep: day D only when start <= D-1, and the end day excluded.
        assert!(!has(
            &served_ids(&srv, "sleep", "2024-06-10", "2024-06-11").await,
            "x-sl"
        ));
        assert!(has(
            &served_ids(&srv, "sleep", "2024-06-09", "2024-06-11").await,
            "x-sl"
        ));
        assert!(!has(
            &served_ids(&srv, "sleep", "2024-06-09", "2024-06-10").await,
            "x-sl"
        ));
        // workout: filtered by UTC day (2024-06-11), reported with local day.
        assert!(!has(
            &served_ids(&srv, "workout", "2024-06-10", "2024-06-11").await,
            "x-wo"
        ));
        let (_, b) = get_json(
            &srv,
            "/v2/usercollection/workout?start_date=2024-06-11&end_date=2024-06-12",
        )
        .await;
        let wo = b["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"] == "x-wo")
            .unwrap();
        assert_eq!(wo["day"], "2024-06-10");
        // Missing dates mean the last day.
        let (_, b) = get_json(&srv, "/v2/usercollection/daily_sleep").await;
        let got = ids(&b);
        assert!(has(&got, "x-today"));
        assert!(!has(&got, "x-ds"));
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn pagination_walks_every_document_once_and_rejects_tampering() {
    bounded(async {
        let mut c = cfg(60);
        c.page_size = 7;
        let srv = SimServer::start(c).await.unwrap();
        let want: Vec<String> = srv.read_data(|d| {
            d.documents("daily_sleep")
                .iter()
                .filter(|x| x.day >= date(2024, 5, 10) && x.day <= date(2024, 6, 20))
                .map(|x| x.id.clone())
                .collect()
        });
        assert!(want.len() > 14, "real data expected");
        let base = "/v2/usercollection/daily_sleep?start_date=2024-05-10&end_date=2024-06-20";
        let (st, first) = get_json(&srv, base).await;
        assert_eq!(st, 200);
        assert_eq!(first["data"].as_array().unwrap().len(), 7);
        let first_token = first["next_token"].as_str().unwrap().to_owned();
        let mut got = ids(&first);
        let mut token = Some(first_token.clone());
        let mut pages = 1;
        while let Some(t) = token {
            let (st, b) = get_json(&srv, &format!("{base}&next_token={t}")).await;
            assert_eq!(st, 200, "{b}");
            got.extend(ids(&b));
            token = b["next_token"].as_str().map(str::to_owned);
            pages += 1;
            assert!(pages < 100);
        }
        assert_eq!(got, want);
        // Only the token works too.
        let (st, _) = get_json(
            &srv,
            &format!("/v2/usercollection/daily_sleep?next_token={first_token}"),
        )
        .await;
        assert_eq!(st, 200);
        // Tampered, foreign collection, other query.
        let mut bad = first_token.clone().into_bytes();
        bad[3] = if bad[3] == b'A' { b'B' } else { b'A' };
        let bad = String::from_utf8(bad).unwrap();
        for path in [
            format!("{base}&next_token={bad}"),
            format!("/v2/usercollection/daily_readiness?next_token={first_token}"),
            format!(
                "/v2/usercollection/daily_sleep?start_date=2024-05-11&next_token={first_token}"
            ),
            format!("/v2/sandbox/usercollection/daily_sleep?next_token={first_token}"),
        ] {
            let (st, _) = get_json(&srv, &path).await;
            assert_eq!(st, 400, "{path}");
        }
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn heartrate_pages_latest_and_fields() {
    bounded(async {
        let srv = SimServer::start(cfg(10)).await.unwrap();
        let (s, e) = ("2024-06-25T00:00:00%2B00:00", "2024-06-27T00:00:00%2B00:00");
        let want = srv.read_data(|d| {
            let lo: jiff::Timestamp = "2024-06-25T00:00:00Z".parse().unwrap();
            let hi: jiff::Timestamp = "2024-06-27T00:00:00Z".parse().unwrap();
            d.heartrate()
                .iter()
                .filter(|x| x.ts >= lo && x.ts <= hi)
                .count()
        });
        assert!(want > 1000, "{want}");
        let base = format!("/v2/usercollection/heartrate?start_datetime={s}&end_datetime={e}");
        let mut url = base.clone();
        let mut total = 0;
        let mut pages = 0;
        loop {
            let (st, b) = get_json(&srv, &url).await;
            assert_eq!(st, 200);
            let n = b["data"].as_array().unwrap().len();
            pages += 1;
            total += n;
            match b["next_token"].as_str() {
                Some(t) => {
                    assert_eq!(n, 1000);
                    url = format!("{base}&next_token={t}");
                }
                None => break,
            }
        }
        assert_eq!(total, want);
        assert_eq!(pages, want.div_ceil(1000));

        let (st, b) = get_json(&srv, &format!("{base}&latest=true")).await;
        assert_eq!(st, 200);
        let rows = b["data"].as_array().unwrap();
        assert_eq!(rows.len(), 1);
        let last = srv.read_data(|d| {
            let hi: jiff::Timestamp = "2024-06-27T00:00:00Z".parse().unwrap();
            d.heartrate()
                .iter()
                .rfind(|x| x.ts <= hi)
                .unwrap()
                .ts
                .as_millisecond()
        });
        assert_eq!(rows[0]["timestamp_unix"], last);

        let (st, b) = get_json(&srv, &format!("{base}&fields=bpm,nonsense")).await;
        assert_eq!(st, 400);
        assert!(b["detail"].as_str().unwrap().contains("nonsense"), "{b}");
        // Every field of a heart-rate row is required, so all come back.
        let (_, b) = get_json(&srv, &format!("{base}&fields=bpm")).await;
        let row = b["data"][0].as_object().unwrap();
        let mut keys: Vec<&str> = row.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(keys, vec!["bpm", "source", "timestamp", "timestamp_unix"]);
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn fields_single_documents_and_sandbox() {
    bounded(async {
        let srv = SimServer::start(cfg(10)).await.unwrap();
        let range = "/v2/usercollection/daily_sleep?start_date=2024-06-25&end_date=2024-06-28";
        let (st, b) = get_json(&srv, &format!("{range}&fields=score,bogus")).await;
        assert_eq!(st, 400, "unknown field names are refused: {b}");
        assert!(b["detail"].as_str().unwrap().contains("bogus"), "{b}");
        // The selected fields come "in addition to the always returned
        // fields": the model's required ones, so documents stay valid.
        let (st, b) = get_json(&srv, &format!("{range}&fields=score")).await;
        assert_eq!(st, 200);
        let docs = b["data"].as_array().unwrap();
        assert!(!docs.is_empty());
        for d in docs {
            let mut keys: Vec<&str> = d.as_object().unwrap().keys().map(String::as_str).collect();
            keys.sort();
            assert_eq!(
                keys,
                vec!["contributors", "day", "id", "score", "timestamp"]
            );
        }
        // Routes without field selection ignore the parameter.
        let (st, b) = get_json(
            &srv,
            "/v2/usercollection/tag?start_date=2024-06-01&end_date=2024-06-28&fields=nothing",
        )
        .await;
        assert_eq!(st, 200, "{b}");
        let id = srv.read_data(|d| d.documents("daily_sleep")[0].id.clone());
        let want = srv.served_documents("daily_sleep")[0].clone();
        for prefix in ["/v2/usercollection", "/v2/sandbox/usercollection"] {
            let (st, got) = get_json(&srv, &format!("{prefix}/daily_sleep/{id}")).await;
            assert_eq!(st, 200);
            assert_eq!(got, want);
        }
        let (st, p) = get_json(&srv, "/v2/usercollection/personal_info").await;
        assert_eq!(st, 200);
        assert!(p["id"].is_string());
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn advancing_days_serves_new_data_and_fires_create_events() {
    bounded(async {
        let srv = SimServer::start(cfg(10)).await.unwrap();
        let rx: Rx = Arc::default();
        let (cb, recv) = start_receiver(rx.clone()).await;
        let r = wh(
            &client(),
            reqwest::Method::POST,
            format!("{}/v2/webhook/subscription", srv.base_url()),
        )
        .json(
            &json!({"callback_url": format!("{cb}/hook"), "verification_token": "vt",
                          "event_type": "create", "data_type": "daily_sleep"}),
        )
        .send()
        .await
        .unwrap();
        assert_eq!(r.status(), 201);
        let changes = srv.advance_days(1);
        let created: Vec<&Change> = changes
            .iter()
            .filter(|c| c.collection == "daily_sleep" && c.op == Op::Create)
            .collect();
        assert!(!created.is_empty());
        assert!(srv.webhooks_idle(Duration::from_secs(10)).await);
        let events: Vec<Value> = rx
            .lock()
            .unwrap()
            .events
            .iter()
            .map(|(_, b)| serde_json::from_str(b).unwrap())
            .collect();
        assert_eq!(events.len(), created.len());
        assert_eq!(events[0]["object_id"], created[0].id.as_str());
        let (_, b) = get_json(&srv, "/v2/usercollection/daily_sleep").await;
        assert_eq!(b["data"][0]["day"], "2024-07-01");
        srv.stop().await;
        recv.abort();
    })
    .await;
}

#[tokio::test]
async fn live_quirks_by_default_and_the_spec_form_on_request() {
    bounded(async {
        let srv = SimServer::start(cfg(400)).await.unwrap();
        let cva = srv.served_documents("daily_cardiovascular_age");
        assert!(!cva.is_empty());
        for d in &cva {
            assert!(d.get("id").is_none(), "id-less like the live API: {d}");
            let day = d["day"].as_str().unwrap();
            assert!(d["timestamp"].as_str().unwrap().starts_with(day), "{d}");
        }
        let (st, b) = get_json(
            &srv,
            "/v2/usercollection/daily_cardiovascular_age?start_date=2024-06-01&end_date=2024-06-28",
        )
        .await;
        assert_eq!(st, 200);
        let listed = b["data"].as_array().unwrap();
        assert!(!listed.is_empty() && listed.iter().all(|d| d.get("id").is_none()));
        // Such a document is named by its day.
        let day = listed[0]["day"].as_str().unwrap();
        let (st, one) = get_json(
            &srv,
            &format!("/v2/usercollection/daily_cardiovascular_age/{day}"),
        )
        .await;
        assert_eq!((st, &one), (200, &listed[0]));
        // Undocumented fields on some documents, spec 1.41 values on some.
        let readiness = srv.served_documents("daily_readiness");
        let extra = readiness
            .iter()
            .filter(|d| d.get("resting_heart_rate").is_some())
            .count();
        assert!(extra > 0 && extra < readiness.len(), "{extra}");
        let sleep = srv.served_documents("daily_sleep");
        assert!(
            sleep
                .iter()
                .any(|d| d["contributors"].get("regularity").is_some())
        );
        let workouts = srv.served_documents("workout");
        for source in [
            "live_third_party_heart_rate",
            "live_oura_heart_rate",
            "autodetected",
        ] {
            assert!(workouts.iter().any(|d| d["source"] == source), "{source}");
        }
        let periods = srv.served_documents("sleep");
        assert!(periods.iter().any(|d| d["ring_id"].is_null()));
        assert!(periods.iter().any(|d| d["ring_id"].is_string()));
        srv.stop().await;

        let mut spec = cfg(30);
        spec.quirks = ouradb_sim::Quirks::spec();
        let srv = SimServer::start(spec).await.unwrap();
        let served = srv.served_documents("daily_cardiovascular_age");
        let stored = srv.read_data(|d| d.documents("daily_cardiovascular_age").to_vec());
        assert_eq!(served.len(), stored.len());
        for (s, d) in served.iter().zip(&stored) {
            assert_eq!(s["id"], d.id.as_str());
            assert_eq!(*s, serde_json::from_str::<Value>(&d.json).unwrap());
        }
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn an_empty_page_outage_answers_200_with_nothing() {
    bounded(async {
        let srv = SimServer::start(cfg(10)).await.unwrap();
        srv.set_faults(Faults {
            empty_pages: true,
            ..Faults::default()
        });
        let (st, b) = get_json(&srv, "/v2/usercollection/daily_sleep?start_date=2024-06-01").await;
        assert_eq!((st, b), (200, json!({"data": [], "next_token": null})));
        let (st, b) = get_json(&srv, "/v2/usercollection/personal_info").await;
        assert_eq!((st, b), (200, json!({})));
        let (st, _) = get_json(&srv, "/v2/usercollection/heartrate").await;
        assert_eq!(st, 200);
        srv.stop().await;
    })
    .await;
}

/// `latency` holds every data request that long (the real API's round
/// trip), so a bench can show what requests in flight side by side buy.
#[tokio::test]
async fn latency_holds_every_data_request() {
    bounded(async {
        let mut c = cfg(3);
        c.latency = Duration::from_millis(300);
        let srv = SimServer::start(c).await.unwrap();
        for path in [
            "/v2/usercollection/daily_sleep",
            "/v2/usercollection/heartrate?start_datetime=2024-06-29T00:00:00%2B00:00",
        ] {
            let started = std::time::Instant::now();
            let (st, _) = get_json(&srv, path).await;
            assert_eq!(st, 200, "{path}");
            assert!(started.elapsed() >= Duration::from_millis(300), "{path}");
        }
        let started = std::time::Instant::now();
        let (st, _) = get_json(
            &SimServer::start(cfg(3)).await.unwrap(),
            "/v2/usercollection/daily_sleep",
        )
        .await;
        assert_eq!(st, 200);
        assert!(
            started.elapsed() < Duration::from_millis(300),
            "no latency by default"
        );
    })
    .await;
}

/// The simulator counts the most data requests it answers at once (latency
/// included), so tests and benchmarks can check a client's in-flight cap;
/// routes that are not data (unknown paths, OAuth) do not count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_most_data_requests_answered_at_once_are_counted() {
    bounded(async {
        let mut c = cfg(3);
        c.latency = Duration::from_millis(1000);
        let srv = SimServer::start(c).await.unwrap();
        let stats = srv.stats();
        assert_eq!(srv.max_concurrent_requests(), 0);
        for _ in 0..2 {
            assert_eq!(
                get_json(&srv, "/v2/usercollection/daily_sleep").await.0,
                200
            );
        }
        assert_eq!(srv.max_concurrent_requests(), 1, "one after the other");
        let five = (0..5).map(|_| get_json(&srv, "/v2/usercollection/daily_readiness"));
        for (st, _) in futures::future::join_all(five).await {
            assert_eq!(st, 200);
        }
        assert_eq!(srv.max_concurrent_requests(), 5, "five side by side");
        assert_eq!(stats.concurrent_requests(), 0);
        assert_eq!(stats.responses_with_status(200), 7);
        stats.reset_max_concurrent();
        let others = [
            "/v2/usercollection/no_such_thing",
            "/oauth/authorize",
            "/nope",
        ]
        .map(|p| get_json(&srv, p));
        futures::future::join_all(others).await;
        assert_eq!(stats.max_concurrent_requests(), 0, "not data requests");
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_denied_collection_answers_401_or_403_alone_until_lifted() {
    bounded(async {
        let mut c = cfg(3);
        c.denied_collections.insert("daily_spo2".to_owned(), 401);
        let srv = SimServer::start(c).await.unwrap();
        let (st, b) = get_json(&srv, "/v2/usercollection/daily_spo2").await;
        assert_eq!(st, 401);
        // Nothing in the body tells it from a bad token's refusal but the text.
        assert_eq!(b["detail"], "Not authorized to access this resource");
        assert!(!b.to_string().contains("scope"), "{b}");
        assert_eq!(
            get_json(&srv, "/v2/usercollection/daily_sleep").await.0,
            200
        );
        srv.deny_collection("heartrate", Some(403));
        assert_eq!(get_json(&srv, "/v2/usercollection/heartrate").await.0, 403);
        srv.deny_collection("daily_spo2", None);
        assert_eq!(get_json(&srv, "/v2/usercollection/daily_spo2").await.0, 200);
        srv.stop().await;
    })
    .await;
}

/// `interbeat_interval` is as strict as heart rate (scope `heartrate`,
/// validated datetimes, 30-day ranges, signed tokens) and pages through
/// exactly the beats the generator derives, 1,000 a page.
#[tokio::test]
async fn interbeat_interval_is_strict_and_pages_through_every_beat() {
    bounded(async {
        let mut c = cfg(5);
        c.token_scopes
            .insert(TOKEN.to_owned(), vec!["daily".to_owned()]);
        let srv = SimServer::start(c).await.unwrap();
        let (st, _) = get_json(&srv, "/v2/usercollection/interbeat_interval").await;
        assert_eq!(st, 403, "the heartrate scope is needed");
        srv.stop().await;

        let srv = SimServer::start(cfg(5)).await.unwrap();
        let base = "/v2/usercollection/interbeat_interval";
        let (st, _) = get_json(
            &srv,
            &format!("{base}?start_datetime=2024-05-01T00:00:00%2B00:00&end_datetime=2024-06-01T00:00:01%2B00:00"),
        )
        .await;
        assert_eq!(st, 400);
        let (st, _) = get_json(&srv, &format!("{base}?start_datetime=2024-06-28T00:00:00+02:00")).await;
        assert_eq!(st, 422);
        let (st, _) = get_json(&srv, &format!("{base}?next_token=abc.def")).await;
        assert_eq!(st, 400);

        let (s, e) = ("2024-06-27T00:00:00%2B00:00", "2024-06-30T12:00:00%2B00:00");
        let mut path = format!("{base}?start_datetime={s}&end_datetime={e}");
        let mut served = Vec::new();
        let mut pages = 0;
        loop {
            let (st, b) = get_json(&srv, &path).await;
            assert_eq!(st, 200, "{b}");
            pages += 1;
            let rows = b["data"].as_array().unwrap();
            assert!(rows.len() <= 1000);
            served.extend(rows.iter().cloned());
            match b["next_token"].as_str() {
                Some(t) => path = format!("{base}?start_datetime={s}&end_datetime={e}&next_token={t}"),
                None => break,
            }
        }
        let expected = srv.read_data(|d| {
            let from = "2024-06-27T00:00:00Z".parse::<jiff::Timestamp>().unwrap();
            let to = "2024-06-30T12:00:00Z".parse::<jiff::Timestamp>().unwrap();
            let span = (from.as_millisecond(), to.as_millisecond());
            ouradb_sim::ibi::beats(d, 7, span, None, usize::MAX, false)
        });
        assert!(expected.len() > 50_000, "{}", expected.len());
        assert_eq!(served.len(), expected.len());
        assert_eq!(pages, expected.len().div_ceil(1000));
        for (row, beat) in served.iter().zip(&expected) {
            assert_eq!(row["timestamp_unix"], beat.ts.as_millisecond());
            assert_eq!(row["ibi"], beat.ibi);
            assert!(row["ibi"].as_u64().unwrap() <= 2000);
        }
        let codes: std::collections::BTreeSet<u64> =
            served.iter().map(|r| r["validity"].as_u64().unwrap()).collect();
        assert_eq!(codes, [0, 1, 2].into());
        srv.stop().await;
    })
    .await;
}

// -- several persons and the per-application limit (issue 20) --------------

const TOKEN_2: &str = "sim-token-2";

async fn get_as(srv: &SimServer, token: &str, path: &str) -> (u16, Value) {
    let r = client()
        .get(format!("{}{}", srv.base_url(), path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let st = r.status().as_u16();
    (st, r.json().await.unwrap_or(Value::Null))
}

const SLEEP_MAY: &str = "/v2/usercollection/daily_sleep?start_date=2024-05-01&end_date=2024-06-30";

#[tokio::test]
async fn each_token_reads_its_own_person_and_the_first_is_unchanged() {
    bounded(async {
        let srv = SimServer::start(cfg(60).with_persons(2)).await.unwrap();
        let persons = srv.persons();
        assert_eq!(persons.len(), 2);
        assert_eq!(srv.stats().persons_generated(), 1, "only the first so far");
        let (s1, info1) = get_as(&srv, TOKEN, "/v2/usercollection/personal_info").await;
        let (s2, info2) = get_as(&srv, TOKEN_2, "/v2/usercollection/personal_info").await;
        assert_eq!((s1, s2), (200, 200));
        assert_ne!(info1["id"], info2["id"]);
        assert_ne!(info1["email"], info2["email"]);
        assert_eq!(info1["email"], persons[0].email().as_str());
        assert_eq!(info2["email"], persons[1].email().as_str());
        assert_eq!(info2["id"], persons[1].personal_info_id().as_str());
        assert_eq!(srv.stats().persons_generated(), 2);
        // The same token stays the same person.
        let (_, again) = get_as(&srv, TOKEN_2, "/v2/usercollection/personal_info").await;
        assert_eq!(again, info2);
        // Different data, and a shorter history with a later ring set-up.
        let (_, sleep1) = get_as(&srv, TOKEN, SLEEP_MAY).await;
        let (_, sleep2) = get_as(&srv, TOKEN_2, SLEEP_MAY).await;
        assert!(!ids(&sleep2).is_empty());
        assert!(ids(&sleep1).iter().all(|id| !ids(&sleep2).contains(id)));
        assert_eq!(persons[1].days, 54);
        let first = |p| srv.read_person_data(p, |d| d.first_day());
        assert_eq!(first(1), first(0) + jiff::ToSpan::days(6));
        let (_, rings) = get_as(&srv, TOKEN_2, "/v2/usercollection/ring_configuration").await;
        let set_up: Vec<&str> = rings["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| r["set_up_at"].as_str())
            .collect();
        assert!(set_up.iter().any(|t| t.starts_with(&first(1).to_string())));
        // A token no person holds is refused as before.
        let (s3, _) = get_as(&srv, "sim-token-3", "/v2/usercollection/personal_info").await;
        assert_eq!(s3, 401);

        // The first person is served exactly as by a one-person simulator
        // (page tokens aside: each server has a key of its own).
        let single = SimServer::start(cfg(60)).await.unwrap();
        for path in [SLEEP_MAY, "/v2/usercollection/personal_info"] {
            let mut one = get_as(&single, TOKEN, path).await;
            let mut two = get_as(&srv, TOKEN, path).await;
            for v in [&mut one.1, &mut two.1] {
                v.as_object_mut().unwrap().remove("next_token");
            }
            assert_eq!(one, two);
        }
        single.stop().await;
        srv.stop().await;
    })
    .await;
}

async fn sign_in(srv: &SimServer, hint: Option<&str>) -> Result<String, String> {
    let mut q = vec![
        ("response_type", "code"),
        ("client_id", "sim-client"),
        ("redirect_uri", "http://127.0.0.1:9/cb"),
    ];
    if let Some(h) = hint {
        q.push(("login_hint", h));
    }
    let r = client()
        .get(format!("{}/oauth/authorize", srv.base_url()))
        .query(&q)
        .send()
        .await
        .unwrap();
    let p = location_params(&r);
    let Some(code) = p.get("code") else {
        return Err(p.get("error_description").cloned().unwrap_or_default());
    };
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("client_id", "sim-client"),
        ("client_secret", "sim-secret"),
    ];
    let (st, tok) = exchange(srv, &form).await;
    assert_eq!(st, 200, "{tok}");
    Ok(tok["access_token"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn oauth_sign_ins_choose_their_person() {
    bounded(async {
        let srv = SimServer::start(cfg(5).with_persons(3)).await.unwrap();
        let persons = srv.persons();
        let email = |p: usize| persons[p].email();
        let info = |t: String| {
            let srv = &srv;
            async move { get_as(srv, &t, "/v2/usercollection/personal_info").await.1["email"].clone() }
        };
        // Two accounts as two Oura users, by email and by user id.
        let a = sign_in(&srv, Some(&email(1))).await.unwrap();
        let b = sign_in(&srv, Some(&persons[2].user_id)).await.unwrap();
        assert_eq!(info(a.clone()).await, email(1).as_str());
        assert_eq!(info(b.clone()).await, email(2).as_str());
        // The same user twice: two tokens, one person.
        let a2 = sign_in(&srv, Some(&persons[1].personal_info_id())).await.unwrap();
        assert_ne!(a2, a);
        assert_eq!(info(a2.clone()).await, email(1).as_str());
        // Without a hint: whoever the browser is signed in as.
        assert_eq!(info(sign_in(&srv, None).await.unwrap()).await, email(0).as_str());
        srv.sign_in_as(2);
        assert_eq!(info(sign_in(&srv, None).await.unwrap()).await, email(2).as_str());
        let err = sign_in(&srv, Some("nobody@example.com")).await.unwrap_err();
        assert!(err.contains("login_hint"), "{err}");
        // One person withdrawing consent leaves the others signed in.
        srv.revoke_person_grant("sim-client", 1);
        let daily = "/v2/usercollection/daily_sleep";
        assert_eq!(get_as(&srv, &a, daily).await.0, 401);
        assert_eq!(get_as(&srv, &a2, daily).await.0, 401);
        assert_eq!(get_as(&srv, &b, daily).await.0, 200);
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn the_application_limit_trips_across_tokens_under_their_own_limits() {
    bounded(async {
        let mut c = cfg(3).with_persons(2);
        c.rate_limit = 3;
        c.app_rate_limit = 4;
        c.app_rate_window = Duration::from_secs(60);
        let srv = SimServer::start(c).await.unwrap();
        let daily = "/v2/usercollection/daily_sleep";
        for t in [TOKEN, TOKEN_2, TOKEN, TOKEN_2] {
            assert_eq!(get_as(&srv, t, daily).await.0, 200);
        }
        // Each token has used 2 of its 3; the personal-token application is full.
        let r = client()
            .get(format!("{}{daily}", srv.base_url()))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 429);
        let h = r.headers();
        let retry: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry));
        assert_eq!(h["x-ratelimit-limit"], "4");
        assert_eq!(h["x-ratelimit-window"], "60");
        let stats = srv.stats();
        assert_eq!(stats.rate_limited(RateLimitCause::Application), 1);
        assert_eq!(stats.rate_limited(RateLimitCause::Token), 0);
        // OAuth clients are applications of their own, shared by their users.
        let a = sign_in(&srv, None).await.unwrap();
        srv.sign_in_as(1);
        let b = sign_in(&srv, None).await.unwrap();
        for t in [&a, &b, &a, &b] {
            assert_eq!(get_as(&srv, t, daily).await.0, 200);
        }
        assert_eq!(get_as(&srv, &b, daily).await.0, 429);
        assert_eq!(stats.rate_limited(RateLimitCause::Application), 2);
        let app = Application::Client("sim-client".into());
        assert_eq!(
            srv.max_app_requests_in_window(&app, Duration::from_secs(60)),
            5
        );
        // The window slides: the quota comes back.
        srv.advance_time(Duration::from_secs(61));
        assert_eq!(get_as(&srv, &b, daily).await.0, 200);
        assert_eq!(get_as(&srv, TOKEN, daily).await.0, 200);
        // The token's own limit (3 per 300 s) still applies on its own.
        assert_eq!(get_as(&srv, TOKEN, daily).await.0, 429);
        assert_eq!(stats.rate_limited(RateLimitCause::Token), 1);
        assert_eq!(stats.responses_with_status(429), 3);
        srv.stop().await;
    })
    .await;
}

#[tokio::test]
async fn webhook_events_carry_the_user_id_of_the_person_whose_data_changed() {
    bounded(async {
        let srv = SimServer::start(cfg(10).with_persons(2)).await.unwrap();
        let persons = srv.persons();
        let rx: Rx = Arc::default();
        let (cb, recv) = start_receiver(rx.clone()).await;
        let r = wh(
            &client(),
            reqwest::Method::POST,
            format!("{}/v2/webhook/subscription", srv.base_url()),
        )
        .json(
            &json!({"callback_url": format!("{cb}/hook"), "verification_token": "vt",
                          "event_type": "create", "data_type": "daily_sleep"}),
        )
        .send()
        .await
        .unwrap();
        assert_eq!(r.status(), 201);
        let one = Change {
            collection: "daily_sleep",
            id: "p1-doc".into(),
            op: Op::Create,
        };
        srv.with_person_data(1, |_| vec![one.clone()]);
        assert!(srv.webhooks_idle(Duration::from_secs(10)).await);
        // Both persons' days move on: each event names its own person.
        srv.advance_days(1);
        assert!(srv.webhooks_idle(Duration::from_secs(10)).await);
        let events: Vec<Value> = rx
            .lock()
            .unwrap()
            .events
            .iter()
            .map(|(_, b)| serde_json::from_str(b).unwrap())
            .collect();
        assert_eq!(events[0]["object_id"], "p1-doc");
        assert_eq!(events[0]["user_id"], persons[1].user_id.as_str());
        assert_ne!(persons[0].user_id, persons[1].user_id);
        for (p, person) in persons.iter().enumerate() {
            let own: Vec<String> = srv.read_person_data(p, |d| {
                d.documents("daily_sleep")
                    .iter()
                    .map(|x| x.id.clone())
                    .collect()
            });
            let told: Vec<&Value> = events[1..]
                .iter()
                .filter(|e| e["user_id"] == person.user_id.as_str())
                .collect();
            assert!(!told.is_empty(), "person {p} got no event");
            for e in told {
                assert!(own.iter().any(|id| e["object_id"] == id.as_str()), "{e}");
            }
        }
        srv.stop().await;
        recv.abort();
    })
    .await;
}
