//! Webhook subscriptions and signed event delivery.

// The error of these validators is the finished response; boxing it would
// only add an allocation to the rejection path.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, KeyInit, Mac};
use jiff::Timestamp;
use serde_json::{Value, json};
use sha2::Sha256;

use super::Shared;
use super::data::{Change, Op};
use super::http::{json_response, validation_error};

const DATA_TYPES: &[&str] = &[
    "tag",
    "enhanced_tag",
    "workout",
    "session",
    "sleep",
    "daily_sleep",
    "daily_readiness",
    "daily_activity",
    "daily_spo2",
    "sleep_time",
    "rest_mode_period",
    "ring_configuration",
    "daily_stress",
    "daily_cardiovascular_age",
    "daily_resilience",
    "vo2_max",
    "meal",
];
const OPS: &[&str] = &["create", "update", "delete"];

#[derive(Debug, Clone)]
pub(crate) struct Subscription {
    id: String,
    client_id: String,
    callback_url: String,
    event_type: String,
    data_type: String,
    expiration: Timestamp,
}

impl Subscription {
    fn model(&self) -> Value {
        json!({
            "id": self.id,
            "callback_url": self.callback_url,
            "event_type": self.event_type,
            "data_type": self.data_type,
            "expiration_time": self.expiration.to_string(),
        })
    }
}

/// One delivery attempt, for tests.
#[derive(Debug, Clone)]
pub struct WebhookAttempt {
    pub subscription_id: String,
    pub object_id: String,
    pub attempt: u32,
    /// HTTP status, or `None` when the callback could not be reached.
    pub status: Option<u16>,
}

#[derive(Default)]
pub(crate) struct Registry {
    subs: HashMap<String, Subscription>,
    pub(crate) attempts: Vec<WebhookAttempt>,
}

fn uuid4() -> String {
    let mut b = [0u8; 16];
    rand::Rng::fill(&mut rand::rng(), &mut b[..]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn expiry(s: &Shared) -> Timestamp {
    let d = jiff::SignedDuration::try_from(s.cfg.webhook_lifetime).unwrap_or_default();
    s.wall() + d
}

/// Upper-case hex HMAC-SHA256 of `timestamp + body`, keyed by the secret.
pub fn signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).expect("any key");
    m.update(timestamp.as_bytes());
    m.update(body);
    hex::encode_upper(m.finalize().into_bytes())
}

fn not_found() -> Response {
    json_response(
        StatusCode::FORBIDDEN,
        json!({"detail": "Webhook with specified id does not exist."}).to_string(),
    )
}

/// The Oura data type string of a collection path (`vO2_max` → `vo2_max`).
pub(crate) fn data_type_of(collection: &str) -> String {
    collection.to_ascii_lowercase()
}

async fn verify(s: &Shared, callback: &str, verification_token: &str) -> bool {
    let challenge = uuid4();
    let Ok(mut url) = url::Url::parse(callback) else {
        return false;
    };
    url.query_pairs_mut()
        .append_pair("verification_token", verification_token)
        .append_pair("challenge", &challenge);
    let Ok(resp) = s.http.get(url).send().await else {
        return false;
    };
    if !resp.status().is_success() {
        return false;
    }
    match resp.json::<Value>().await {
        Ok(v) => v.get("challenge").and_then(Value::as_str) == Some(challenge.as_str()),
        Err(_) => false,
    }
}

fn verification_failed() -> Response {
    validation_error(
        "value_error",
        json!(["body", "callback_url"]),
        "Value error, callback verification failed",
        Value::Null,
    )
}

fn check_enum(v: &Value, field: &str, allowed: &[&str], errs: &mut Vec<Value>, required: bool) {
    match v.get(field) {
        None | Some(Value::Null) if required => errs.push(json!({
            "type": "missing", "loc": ["body", field], "msg": "Field required", "input": v,
        })),
        None | Some(Value::Null) => {}
        Some(Value::String(x)) if allowed.contains(&x.as_str()) => {}
        Some(other) => errs.push(json!({
            "type": "enum", "loc": ["body", field],
            "msg": format!("Input should be {}", allowed.join(", ")), "input": other,
        })),
    }
}

fn check_string(v: &Value, field: &str, errs: &mut Vec<Value>, required: bool) {
    match v.get(field) {
        None | Some(Value::Null) if required => errs.push(json!({
            "type": "missing", "loc": ["body", field], "msg": "Field required", "input": v,
        })),
        None | Some(Value::Null) | Some(Value::String(_)) => {}
        Some(other) => errs.push(json!({
            "type": "string_type", "loc": ["body", field],
            "msg": "Input should be a valid string", "input": other,
        })),
    }
}

fn parse_body(body: &[u8], create: bool) -> Result<Value, Response> {
    let v: Value = match serde_json::from_slice(body) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            return Err(json_response(
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"detail": [{"type": "json_invalid", "loc": ["body"],
                    "msg": "JSON decode error", "input": String::from_utf8_lossy(body)}]})
                .to_string(),
            ));
        }
    };
    let mut errs = Vec::new();
    check_string(&v, "callback_url", &mut errs, create);
    check_string(&v, "verification_token", &mut errs, true);
    check_enum(&v, "event_type", OPS, &mut errs, create);
    check_enum(&v, "data_type", DATA_TYPES, &mut errs, create);
    if errs.is_empty() {
        Ok(v)
    } else {
        Err(json_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({ "detail": errs }).to_string(),
        ))
    }
}

fn duplicate(
    reg: &Registry,
    me: Option<&str>,
    client: &str,
    url: &str,
    ev: &str,
    dt: &str,
) -> bool {
    reg.subs.values().any(|x| {
        Some(x.id.as_str()) != me
            && x.client_id == client
            && x.callback_url == url
            && x.event_type == ev
            && x.data_type == dt
    })
}

fn conflict() -> Response {
    json_response(
        StatusCode::CONFLICT,
        json!({"detail": "A subscription with the same callback_url, event_type and data_type already exists."}).to_string(),
    )
}

/// Everything under `/v2/webhook/subscription`.
pub(crate) async fn handle(
    s: &Arc<Shared>,
    method: &Method,
    rest: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> (Response, &'static str) {
    let id = headers.get("x-client-id").and_then(|v| v.to_str().ok());
    let secret = headers.get("x-client-secret").and_then(|v| v.to_str().ok());
    let client = match (id, secret) {
        (Some(id), Some(secret)) => s
            .cfg
            .clients
            .iter()
            .find(|c| c.id == id && c.secret == secret)
            .map(|c| c.id.clone()),
        _ => None,
    };
    let endpoint = match (method.as_str(), rest) {
        ("GET" | "POST", "") => "/v2/webhook/subscription",
        ("PUT", r) if r.starts_with("/renew/") => "/v2/webhook/subscription/renew/{id}",
        _ => "/v2/webhook/subscription/{id}",
    };
    let Some(client) = client else {
        return (
            json_response(
                StatusCode::UNAUTHORIZED,
                json!({"detail": "Invalid or missing x-client-id / x-client-secret"}).to_string(),
            ),
            endpoint,
        );
    };
    let resp = match (method.clone(), rest) {
        (Method::GET, "") => {
            let reg = s.webhooks.lock().unwrap();
            let mut subs: Vec<&Subscription> = reg
                .subs
                .values()
                .filter(|x| x.client_id == client)
                .collect();
            subs.sort_by(|a, b| a.id.cmp(&b.id));
            let list: Vec<Value> = subs.iter().map(|x| x.model()).collect();
            json_response(StatusCode::OK, Value::Array(list).to_string())
        }
        (Method::POST, "") => match parse_body(body, true) {
            Err(r) => r,
            Ok(v) => {
                let url = v["callback_url"].as_str().unwrap_or_default().to_owned();
                let ev = v["event_type"].as_str().unwrap_or_default().to_owned();
                let dt = v["data_type"].as_str().unwrap_or_default().to_owned();
                let vt = v["verification_token"].as_str().unwrap_or_default();
                if duplicate(&s.webhooks.lock().unwrap(), None, &client, &url, &ev, &dt) {
                    conflict()
                } else if !verify(s, &url, vt).await {
                    verification_failed()
                } else {
                    let sub = Subscription {
                        id: uuid4(),
                        client_id: client.clone(),
                        callback_url: url.clone(),
                        event_type: ev.clone(),
                        data_type: dt.clone(),
                        expiration: expiry(s),
                    };
                    let mut reg = s.webhooks.lock().unwrap();
                    if duplicate(&reg, None, &client, &url, &ev, &dt) {
                        conflict()
                    } else {
                        let model = sub.model();
                        reg.subs.insert(sub.id.clone(), sub);
                        json_response(StatusCode::CREATED, model.to_string())
                    }
                }
            }
        },
        (Method::PUT, r) if r.starts_with("/renew/") => {
            let id = &r["/renew/".len()..];
            let new_exp = expiry(s);
            let mut reg = s.webhooks.lock().unwrap();
            match reg.subs.get_mut(id) {
                Some(sub) if sub.client_id == client => {
                    sub.expiration = new_exp;
                    json_response(StatusCode::OK, sub.model().to_string())
                }
                _ => not_found(),
            }
        }
        (m, r) if r.len() > 1 && !r[1..].contains('/') => {
            let id = &r[1..];
            let current = s
                .webhooks
                .lock()
                .unwrap()
                .subs
                .get(id)
                .filter(|x| x.client_id == client)
                .cloned();
            match (m, current) {
                (_, None) => not_found(),
                (Method::GET, Some(sub)) => json_response(StatusCode::OK, sub.model().to_string()),
                (Method::DELETE, Some(_)) => {
                    s.webhooks.lock().unwrap().subs.remove(id);
                    (StatusCode::NO_CONTENT, "").into_response()
                }
                (Method::PUT, Some(mut sub)) => match parse_body(body, false) {
                    Err(r) => r,
                    Ok(v) => {
                        let vt = v["verification_token"].as_str().unwrap_or_default();
                        let old_url = sub.callback_url.clone();
                        if let Some(u) = v.get("callback_url").and_then(Value::as_str) {
                            sub.callback_url = u.to_owned();
                        }
                        if let Some(e) = v.get("event_type").and_then(Value::as_str) {
                            sub.event_type = e.to_owned();
                        }
                        if let Some(d) = v.get("data_type").and_then(Value::as_str) {
                            sub.data_type = d.to_owned();
                        }
                        let dup = duplicate(
                            &s.webhooks.lock().unwrap(),
                            Some(id),
                            &client,
                            &sub.callback_url,
                            &sub.event_type,
                            &sub.data_type,
                        );
                        if dup {
                            conflict()
                        } else if sub.callback_url != old_url
                            && !verify(s, &sub.callback_url, vt).await
                        {
                            verification_failed()
                        } else {
                            let model = sub.model();
                            s.webhooks.lock().unwrap().subs.insert(id.to_owned(), sub);
                            json_response(StatusCode::OK, model.to_string())
                        }
                    }
                },
                _ => (StatusCode::METHOD_NOT_ALLOWED, "").into_response(),
            }
        }
        _ => json_response(
            StatusCode::NOT_FOUND,
            json!({"detail": "Not Found"}).to_string(),
        ),
    };
    (resp, endpoint)
}

fn op_name(op: Op) -> &'static str {
    match op {
        Op::Create => "create",
        Op::Update => "update",
        Op::Delete => "delete",
    }
}

/// Announces `changes` to the data of the person `user_id` to every live
/// matching subscription, in the background. Subscriptions belong to an
/// application, not a person: each gets the events of every person, and
/// the `user_id` says whose data changed.
pub(crate) fn emit(s: &Arc<Shared>, user_id: &str, changes: &[Change]) {
    if changes.is_empty() {
        return;
    }
    let now = s.wall();
    let subs: Vec<Subscription> = s
        .webhooks
        .lock()
        .unwrap()
        .subs
        .values()
        .filter(|x| x.expiration > now)
        .cloned()
        .collect();
    for change in changes {
        let dt = data_type_of(change.collection);
        let ev = op_name(change.op);
        for sub in subs
            .iter()
            .filter(|x| x.data_type == dt && x.event_type == ev)
        {
            let Some(secret) = s
                .cfg
                .clients
                .iter()
                .find(|c| c.id == sub.client_id)
                .map(|c| c.secret.clone())
            else {
                continue;
            };
            let body = json!({
                "event_type": ev,
                "data_type": dt,
                "object_id": change.id,
                "event_time": now.to_string(),
                "user_id": user_id,
            })
            .to_string();
            s.inflight.fetch_add(1, Ordering::SeqCst);
            let s2 = s.clone();
            let sub = sub.clone();
            let object_id = change.id.clone();
            tokio::spawn(async move {
                deliver(&s2, &sub, &secret, body, object_id).await;
                if s2.inflight.fetch_sub(1, Ordering::SeqCst) == 1 {
                    s2.idle.notify_waiters();
                }
            });
        }
    }
}

async fn deliver(s: &Shared, sub: &Subscription, secret: &str, body: String, object_id: String) {
    let mut backoff = s.cfg.webhook_backoff;
    for attempt in 1..=s.cfg.webhook_max_attempts.max(1) {
        if *s.shutdown.borrow() {
            return;
        }
        let ts = s.wall().as_second().to_string();
        let sig = signature(secret, &ts, body.as_bytes());
        let res = s
            .http
            .post(&sub.callback_url)
            .header(header::CONTENT_TYPE, "application/json")
            .header("x-oura-signature", sig)
            .header("x-oura-timestamp", &ts)
            .body(body.clone())
            .send()
            .await;
        let status = res.as_ref().ok().map(|r| r.status().as_u16());
        s.webhooks.lock().unwrap().attempts.push(WebhookAttempt {
            subscription_id: sub.id.clone(),
            object_id: object_id.clone(),
            attempt,
            status,
        });
        match status {
            Some(200..=299) => return,
            Some(410) => {
                s.webhooks.lock().unwrap().subs.remove(&sub.id);
                return;
            }
            _ => {}
        }
        if attempt < s.cfg.webhook_max_attempts {
            s.sleep(backoff).await;
            backoff *= 2;
        }
    }
}
