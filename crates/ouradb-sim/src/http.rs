//! Request handling: routing, auth, scopes, rate limit, query validation,
//! pagination and fault injection. One fallback handler does the routing by
//! hand so every path (including unknown ones) goes through the same
//! logging and error shapes.

// The error of these validators is the finished response; boxing it would
// only add an allocation to the rejection path.
#![allow(clippy::result_large_err)]

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp, ToSpan};
use serde_json::{Value, json};

use super::data::{BatterySample, Dataset, Document, HeartRateSample};
use super::faults::{self, Fault};
use super::ibi;
use super::paging::{self, PageToken};
use super::quirks;
use super::{RequestLogEntry, Shared, oauth, webhook};

pub(crate) fn router(s: Arc<Shared>) -> Router {
    Router::new().fallback(handle).with_state(s)
}

pub(crate) fn json_response(status: StatusCode, body: String) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// FastAPI's HTTPValidationError with one entry.
pub(crate) fn validation_error(kind: &str, loc: Value, msg: &str, input: Value) -> Response {
    json_response(
        StatusCode::UNPROCESSABLE_ENTITY,
        json!({"detail": [{"type": kind, "loc": loc, "msg": msg, "input": input}]}).to_string(),
    )
}

fn problem(status: StatusCode, title: &str, detail: &str, error: &str) -> Response {
    let mut r = json_response(
        status,
        json!({"type": "about:blank", "status": status.as_u16(), "title": title,
               "detail": detail, "error": error})
        .to_string(),
    );
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    r
}

fn unauthorized(detail: &str) -> Response {
    let mut r = problem(
        StatusCode::UNAUTHORIZED,
        "Unauthorized",
        detail,
        "invalid_token",
    );
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer error=\"invalid_token\""),
    );
    r
}

fn detail(status: StatusCode, msg: &str) -> Response {
    json_response(status, json!({ "detail": msg }).to_string())
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, tok) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| tok.trim().to_owned())
}

/// Records a request in the log and counters when dropped, so requests whose
/// connection went away mid-response (stalls, client timeouts) still count.
struct Record {
    s: Arc<Shared>,
    entry: RequestLogEntry,
    /// Endpoint and fault, known once routing has drawn a fault.
    pending: Option<(String, Option<Fault>)>,
}

impl Drop for Record {
    fn drop(&mut self) {
        if let Some((endpoint, fault)) = self.pending.take() {
            self.entry.endpoint = endpoint;
            self.entry.fault = fault.map(Fault::name);
        }
        *self
            .s
            .counters
            .lock()
            .unwrap()
            .entry((self.entry.endpoint.clone(), self.entry.status))
            .or_insert(0) += 1;
        if self.s.cfg.log_requests {
            let e = std::mem::replace(
                &mut self.entry,
                RequestLogEntry {
                    method: String::new(),
                    path: String::new(),
                    query: String::new(),
                    status: 0,
                    token: None,
                    endpoint: String::new(),
                    at: std::time::Instant::now(),
                    time: Timestamp::UNIX_EPOCH,
                    fault: None,
                    person: None,
                    application: None,
                },
            );
            self.s.log.lock().unwrap().push(e);
        }
    }
}

async fn handle(
    State(s): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path();
    let query = uri.query().unwrap_or("");
    let token = bearer(&headers);
    let (person, application) = token
        .as_deref()
        .and_then(|t| super::persons::owner(&s, t))
        .unzip();
    let mut rec = Record {
        entry: RequestLogEntry {
            method: method.to_string(),
            path: path.to_owned(),
            query: query.to_owned(),
            status: 0,
            token,
            endpoint: "unknown".to_owned(),
            at: s.now(),
            time: s.wall(),
            fault: None,
            person,
            application,
        },
        pending: None,
        s: s.clone(),
    };
    let (resp, endpoint, fault) =
        route(&s, &method, path, query, &headers, &body, &mut rec.pending).await;
    rec.pending = Some((endpoint, fault));
    if fault != Some(Fault::Reset) {
        rec.entry.status = resp.status().as_u16();
    }
    resp
}

async fn route(
    s: &Arc<Shared>,
    method: &Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: &[u8],
    pending: &mut Option<(String, Option<Fault>)>,
) -> (Response, String, Option<Fault>) {
    let ep = |e: &str| format!("{method} {e}");
    if let Some(rest) = path.strip_prefix("/v2/webhook/subscription") {
        let (r, e) = webhook::handle(s, method, rest, headers, body).await;
        return (r, ep(e), None);
    }
    match (method, path) {
        (&Method::GET, "/oauth/authorize") => {
            return (oauth::authorize(s, query), ep(path), None);
        }
        (&Method::POST, "/oauth/token") => {
            return (oauth::token(s, headers, body, false), ep(path), None);
        }
        (&Method::POST, super::NEW_PORTAL_TOKEN_PATH) => {
            return (oauth::token(s, headers, body, true), ep(path), None);
        }
        (&Method::GET | &Method::POST, "/oauth/revoke") => {
            return (oauth::revoke(s, query, body), ep(path), None);
        }
        _ => {}
    }
    let (sandbox, rest) = if let Some(r) = path.strip_prefix("/v2/usercollection/") {
        (false, r)
    } else if let Some(r) = path.strip_prefix("/v2/sandbox/usercollection/") {
        (true, r)
    } else {
        return (
            detail(StatusCode::NOT_FOUND, "Not Found"),
            "unknown".to_owned(),
            None,
        );
    };
    let (kind, id) = match rest.split_once('/') {
        Some((k, id)) if !id.is_empty() && !id.contains('/') => (k, Some(id)),
        Some(_) => ("", None),
        None => (rest, None),
    };
    let Some(coll) = Collection::parse(kind, sandbox, id.is_some()) else {
        return (
            detail(StatusCode::NOT_FOUND, "Not Found"),
            "unknown".to_owned(),
            None,
        );
    };
    let prefix = if sandbox {
        "/v2/sandbox/usercollection/"
    } else {
        "/v2/usercollection/"
    };
    let endpoint = if id.is_some() {
        format!("{method} {prefix}{kind}/{{document_id}}")
    } else {
        format!("{method} {prefix}{kind}")
    };
    if method != Method::GET {
        return (
            detail(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed"),
            endpoint,
            None,
        );
    }

    // Counted until the response is built; a body streams out after.
    let _answering = super::Answering::start(s);
    s.gate.pass().await;
    if !s.cfg.latency.is_zero() {
        s.sleep(s.cfg.latency).await;
    }
    let fault = faults::draw(s);
    *pending = Some((endpoint.clone(), fault));
    match fault {
        Some(Fault::Status(code)) => {
            let st = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let msg = st.canonical_reason().unwrap_or("Error");
            return (detail(st, msg), endpoint, fault);
        }
        Some(Fault::Burst429) => {
            s.limits.count(super::RateLimitCause::Injected);
            let (limit, window) = (s.cfg.rate_limit, s.cfg.rate_window);
            let resp = too_many(s, window.as_secs().max(1), limit, window);
            return (resp, endpoint, fault);
        }
        Some(Fault::Slow(d)) | Some(Fault::Stall(d)) => s.sleep(d).await,
        _ => {}
    }

    let resp = serve_collection(s, coll, sandbox, id, query, headers);
    let resp = match fault {
        Some(Fault::Reset) => reset(),
        Some(Fault::Truncate) if resp.status() == StatusCode::OK => truncate(resp).await,
        Some(Fault::Malformed) if resp.status() == StatusCode::OK => malformed(resp).await,
        _ => resp,
    };
    (resp, endpoint, fault)
}

fn too_many(s: &Shared, retry_after: u64, limit: u32, window: std::time::Duration) -> Response {
    let mut r = problem(
        StatusCode::TOO_MANY_REQUESTS,
        "Too Many Requests",
        "Rate limit exceeded",
        "rate_limited",
    );
    let h = r.headers_mut();
    let num = |n: u64| HeaderValue::from_str(&n.to_string()).expect("digits");
    h.insert(header::RETRY_AFTER, num(retry_after));
    h.insert("x-ratelimit-limit", num(u64::from(limit)));
    h.insert("x-ratelimit-window", num(window.as_secs()));
    // The spec defines the reset as a Unix epoch, not a delay.
    let reset = jiff::Timestamp::now().as_second().max(0) as u64 + retry_after;
    h.insert("x-ratelimit-reset", num(reset));
    h.insert(
        "x-ratelimit-tier",
        HeaderValue::from_str(&s.cfg.rate_tier).unwrap_or(HeaderValue::from_static("standard")),
    );
    r
}

fn reset() -> Response {
    let stream = futures::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "injected reset",
        ))
    });
    Response::new(Body::from_stream(stream))
}

async fn body_bytes(resp: Response) -> (axum::http::response::Parts, Bytes) {
    let (parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    (parts, bytes)
}

async fn truncate(resp: Response) -> Response {
    let (mut parts, bytes) = body_bytes(resp).await;
    let half = bytes.slice(..bytes.len() / 2);
    // A streamed body has no known length, so hyper trusts our header and
    // the client sees the connection end before Content-Length bytes.
    parts.headers.insert(
        header::CONTENT_LENGTH,
        HeaderValue::from_str(&bytes.len().to_string()).expect("digits"),
    );
    // The pause lets hyper flush the head and the first half before the
    // error aborts the connection.
    let first = futures::stream::iter([Ok::<Bytes, std::io::Error>(half)]);
    let cut = futures::stream::once(async {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "injected truncation",
        ))
    });
    Response::from_parts(
        parts,
        Body::from_stream(futures::StreamExt::chain(first, cut)),
    )
}

async fn malformed(resp: Response) -> Response {
    let (parts, bytes) = body_bytes(resp).await;
    let cut = bytes.slice(..bytes.len() / 2);
    Response::from_parts(parts, Body::from(cut))
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Collection {
    Docs(&'static str),
    HeartRate,
    Battery,
    Interbeat,
    PersonalInfo,
}

const COLLECTIONS: &[&str] = super::data::DOCUMENT_COLLECTIONS;

impl Collection {
    fn parse(kind: &str, sandbox: bool, with_id: bool) -> Option<Collection> {
        let c = match kind {
            "heartrate" => Collection::HeartRate,
            "ring_battery_level" => Collection::Battery,
            "interbeat_interval" => Collection::Interbeat,
            "personal_info" if !sandbox => Collection::PersonalInfo,
            k => Collection::Docs(COLLECTIONS.iter().find(|c| **c == k)?),
        };
        if with_id && !matches!(c, Collection::Docs(_)) {
            return None;
        }
        Some(c)
    }

    fn name(self) -> &'static str {
        match self {
            Collection::Docs(n) => n,
            Collection::HeartRate => "heartrate",
            Collection::Battery => "ring_battery_level",
            Collection::Interbeat => "interbeat_interval",
            Collection::PersonalInfo => "personal_info",
        }
    }

    fn scope(self) -> &'static str {
        match self.name() {
            "personal_info" => "personal",
            "heartrate" | "interbeat_interval" => "heartrate",
            "workout" => "workout",
            "tag" | "enhanced_tag" => "tag",
            "session" => "session",
            "daily_spo2" => "spo2",
            _ => "daily",
        }
    }

    /// Oura answers a missing scope with 401 on these newer routes.
    fn scope_failure_is_401(self) -> bool {
        matches!(
            self.name(),
            "daily_resilience" | "vO2_max" | "daily_cardiovascular_age" | "ring_battery_level"
        )
    }
}

/// Auth, membership, rate limit and scope, in the order Oura applies them.
/// The token's sliding window after a request was admitted.
struct WindowUse {
    /// Whose data the token reads.
    person: usize,
    remaining: u64,
    /// Unix second at which every request now in the window has left it.
    reset_epoch: u64,
}

fn gate(
    s: &Shared,
    coll: Collection,
    sandbox: bool,
    headers: &HeaderMap,
) -> Result<WindowUse, Response> {
    let Some(token) = bearer(headers) else {
        return Err(unauthorized("Missing bearer token"));
    };
    let now = s.now();
    let (scopes, person, app) = {
        let mut a = s.auth.lock().unwrap();
        match a.access.get(&token) {
            None => return Err(unauthorized("Invalid or unknown access token")),
            Some(t) if t.expires.is_some_and(|e| e <= now) => {
                a.access.remove(&token);
                return Err(unauthorized("Access token expired"));
            }
            Some(t) => (t.scopes.clone(), t.person, t.app.clone()),
        }
    };
    if s.membership_expired.load(Ordering::Relaxed) {
        return Err(problem(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "The user's Oura membership has expired",
            "membership_required",
        ));
    }
    let remaining = s
        .limits
        .admit(&s.cfg, &token, &app, now)
        .map_err(|r| too_many(s, r.retry_after, r.limit, r.window))?;
    let until_reset = s.cfg.rate_window.as_secs_f64().ceil() as u64;
    let window = WindowUse {
        person,
        remaining,
        reset_epoch: jiff::Timestamp::now().as_second().max(0) as u64 + until_reset,
    };
    if let Some(denied) = denied(s, coll) {
        return Err(denied);
    }
    if !sandbox
        && let Some(sc) = scopes
        && !sc
            .iter()
            .any(|x| x == coll.scope() || (coll.scope() == "spo2" && x == "spo2Daily"))
    {
        let msg = format!("The access token lacks the '{}' scope", coll.scope());
        let status = if coll.scope_failure_is_401() {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::FORBIDDEN
        };
        let title = status.canonical_reason().unwrap_or("Forbidden");
        return Err(problem(status, title, &msg, "insufficient_scope"));
    }
    Ok(window)
}

/// The refusal of a collection the application may not read
/// (`SimConfig::denied_collections`): the same body as for a bad token (401)
/// or a bare 403, naming neither the collection nor a scope, as Oura's does.
fn denied(s: &Shared, coll: Collection) -> Option<Response> {
    let status = *s.denied.read().unwrap().get(coll.name())?;
    let detail = "Not authorized to access this resource";
    Some(match StatusCode::from_u16(status) {
        Ok(StatusCode::FORBIDDEN) => {
            problem(StatusCode::FORBIDDEN, "Forbidden", detail, "forbidden")
        }
        _ => unauthorized(detail),
    })
}

struct Query<'a>(Vec<(Cow<'a, str>, Cow<'a, str>)>);

impl<'a> Query<'a> {
    fn parse(raw: &'a str) -> Query<'a> {
        Query(url::form_urlencoded::parse(raw.as_bytes()).collect())
    }
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_ref())
    }
}

fn bad_date(name: &str, raw: &str) -> Response {
    let msg = if raw.is_empty() {
        "Input should be a valid date or datetime, input is too short"
    } else {
        "Input should be a valid date or datetime, invalid character in year"
    };
    validation_error(
        "date_from_datetime_parsing",
        json!(["query", name]),
        msg,
        json!(raw),
    )
}

/// A `start_date`/`end_date` value: a date, or a date-time whose own local
/// date is taken.
fn parse_date(name: &str, raw: Option<&str>) -> Result<Option<Date>, Response> {
    let Some(raw) = raw else { return Ok(None) };
    if raw.len() < 10 || !raw.is_char_boundary(10) {
        return Err(bad_date(name, raw));
    }
    let Ok(d) = raw[..10].parse::<Date>() else {
        return Err(bad_date(name, raw));
    };
    if raw.len() == 10
        || raw.parse::<Timestamp>().is_ok()
        || raw.parse::<jiff::civil::DateTime>().is_ok()
    {
        Ok(Some(d))
    } else {
        Err(bad_date(name, raw))
    }
}

fn parse_datetime(name: &str, raw: Option<&str>) -> Result<Option<Timestamp>, Response> {
    let Some(raw) = raw else { return Ok(None) };
    if let Ok(t) = raw.parse::<Timestamp>() {
        return Ok(Some(t));
    }
    // Pydantic takes offset-less values as UTC; an unencoded '+' that became a
    // space lands here too and must fail.
    let naive = if raw.len() == 10 {
        raw.parse::<Date>().ok().map(|d| d.at(0, 0, 0, 0))
    } else {
        raw.parse::<jiff::civil::DateTime>().ok()
    };
    if !raw.contains(' ')
        && let Some(dt) = naive
        && let Ok(z) = dt.to_zoned(jiff::tz::TimeZone::UTC)
    {
        return Ok(Some(z.timestamp()));
    }
    Err(validation_error(
        "datetime_from_date_parsing",
        json!(["query", name]),
        "Input should be a valid datetime or date, unexpected extra characters at the end of the input",
        json!(raw),
    ))
}

fn parse_bool(name: &str, raw: Option<&str>) -> Result<bool, Response> {
    match raw.map(str::to_ascii_lowercase).as_deref() {
        None => Ok(false),
        Some("true" | "1" | "yes" | "on" | "t" | "y") => Ok(true),
        Some("false" | "0" | "no" | "off" | "f" | "n") => Ok(false),
        Some(other) => Err(validation_error(
            "bool_parsing",
            json!(["query", name]),
            "Input should be a valid boolean, unable to interpret input",
            json!(other),
        )),
    }
}

/// Requested fields and the fields always returned.
type Selection = (Vec<String>, &'static [&'static str]);

/// The `fields=` selection of a request: the requested fields and those
/// always returned (the model's required fields). `None` when the route
/// returns every field; an unknown field name is a 400.
fn fields_of(q: &Query, sandbox: bool, collection: &str) -> Result<Option<Selection>, Response> {
    if sandbox {
        return Ok(None);
    }
    let Some(raw) = q.get("fields") else {
        return Ok(None);
    };
    let Some((_, selectable, required, known)) = super::fields::FIELDS
        .iter()
        .find(|(c, ..)| *c == collection)
    else {
        return Ok(None);
    };
    if !selectable {
        return Ok(None);
    }
    let list: Vec<String> = raw
        .split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(str::to_owned)
        .collect();
    let unknown: Vec<&str> = list
        .iter()
        .map(String::as_str)
        .filter(|f| !known.contains(f))
        .collect();
    if !unknown.is_empty() {
        return Err(detail(
            StatusCode::BAD_REQUEST,
            &format!(
                "Unknown field(s) for {collection}: {}; known fields: {}",
                unknown.join(", "),
                known.join(", ")
            ),
        ));
    }
    Ok((!list.is_empty()).then_some((list, *required)))
}

/// Keeps only the requested fields (plus those always returned).
fn project(json: &str, fields: &[String], always: &[&str]) -> String {
    match serde_json::from_str::<Value>(json) {
        Ok(Value::Object(mut m)) => {
            m.retain(|k, _| always.contains(&k.as_str()) || fields.iter().any(|f| f == k));
            Value::Object(m).to_string()
        }
        _ => json.to_owned(),
    }
}

fn serve_collection(
    s: &Shared,
    coll: Collection,
    sandbox: bool,
    id: Option<&str>,
    raw_query: &str,
    headers: &HeaderMap,
) -> Response {
    let window = match gate(s, coll, sandbox, headers) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let mut resp = serve_gated(s, window.person, coll, sandbox, id, raw_query);
    if s.cfg.rate_headers_always {
        let h = resp.headers_mut();
        let num = |n: u64| HeaderValue::from_str(&n.to_string()).expect("digits");
        h.insert("x-ratelimit-limit", num(u64::from(s.cfg.rate_limit)));
        h.insert("x-ratelimit-window", num(s.cfg.rate_window.as_secs()));
        h.insert("x-ratelimit-remaining", num(window.remaining));
        h.insert("x-ratelimit-reset", num(window.reset_epoch));
    }
    resp
}

fn serve_gated(
    s: &Shared,
    person: usize,
    coll: Collection,
    sandbox: bool,
    id: Option<&str>,
    raw_query: &str,
) -> Response {
    let data = s.people.data(person);
    let data = data.read().unwrap();
    let empty = s.faults.read().unwrap().empty_pages;
    if let Some(id) = id {
        let name = coll.name();
        // A document served without an id is named by its day instead.
        let found = data.document(name, id).or_else(|| {
            let day = id.parse::<Date>().ok()?;
            s.cfg
                .quirks
                .is_idless(name)
                .then(|| data.documents(name).iter().find(|d| d.day == day))
                .flatten()
        });
        return match found {
            Some(d) if !empty => json_response(
                StatusCode::OK,
                quirks::serve(&s.cfg.quirks, name, d, data.utc_offset_seconds(d.day)).into_owned(),
            ),
            _ => detail(StatusCode::NOT_FOUND, "Document not found"),
        };
    }
    if empty {
        return json_response(
            StatusCode::OK,
            match coll {
                Collection::PersonalInfo => "{}".to_owned(),
                _ => page_body(&[], None),
            },
        );
    }
    let q = Query::parse(raw_query);
    match coll {
        Collection::PersonalInfo => json_response(StatusCode::OK, data.personal_info().to_owned()),
        Collection::HeartRate | Collection::Battery | Collection::Interbeat => {
            series(s, &data, coll, &q, sandbox)
        }
        Collection::Docs(name) => documents(s, &data, name, &q, sandbox),
    }
}

fn page_body(items: &[Cow<'_, str>], next: Option<String>) -> String {
    let len: usize = items.iter().map(|i| i.len() + 1).sum();
    let mut out = String::with_capacity(len + 64);
    out.push_str("{\"data\":[");
    for (i, it) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(it);
    }
    out.push_str("],\"next_token\":");
    match next {
        Some(t) => {
            out.push('"');
            out.push_str(&t);
            out.push('"');
        }
        None => out.push_str("null"),
    }
    out.push('}');
    out
}

fn bad_token() -> Response {
    detail(StatusCode::BAD_REQUEST, "Invalid next_token")
}

fn route_key(name: &str, sandbox: bool) -> String {
    if sandbox {
        format!("sandbox/{name}")
    } else {
        name.to_owned()
    }
}

fn documents(s: &Shared, data: &Dataset, name: &'static str, q: &Query, sandbox: bool) -> Response {
    let dated = name != "ring_configuration";
    let start = match parse_date("start_date", q.get("start_date")) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let end = match parse_date("end_date", q.get("end_date")) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let fields = match fields_of(q, sandbox, name) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let fields_key = fields.as_ref().map(|f| f.0.join(",")).unwrap_or_default();
    let route = route_key(name, sandbox);
    let today = data.today;
    let (start, end, after) = match q.get("next_token") {
        Some(t) => {
            let Some(tok) = paging::decode(&s.page_key, &route, t) else {
                return bad_token();
            };
            let (Ok(ts), Ok(te)) = (tok.start.parse::<Date>(), tok.end.parse::<Date>()) else {
                return bad_token();
            };
            if start.is_some_and(|d| d != ts)
                || end.is_some_and(|d| d != te)
                || tok.fields != fields_key
            {
                return bad_token();
            }
            let Some((day, id)) = tok.after.split_once('/') else {
                return bad_token();
            };
            let Ok(day) = day.parse::<Date>() else {
                return bad_token();
            };
            (ts, te, Some((day, id.to_owned())))
        }
        None => {
            let end = end.unwrap_or(today);
            let start = start.unwrap_or(end);
            if dated && start > end {
                return json_response(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    json!({"detail": [{"type": "value_error", "loc": ["query", "start_date"],
                        "msg": "Value error, start_date must not be after end_date",
                        "input": start.to_string()}]})
                    .to_string(),
                );
            }
            (start, end, None)
        }
    };
    let docs = data.documents(name);
    // Which documents a range selects differs per collection; measured on
    // the real API (see issue 2).
    let pred = |d: &Document| -> bool {
        if !dated {
            return true;
        }
        match name {
            "daily_activity" => d.day >= start && d.day < end,
            "sleep" => d.day.saturating_sub(1.day()) >= start && d.day < end,
            "workout" => d.utc_day >= start && d.utc_day < end,
            _ => d.day >= start && d.day <= end,
        }
    };
    let mut from = if dated {
        let lo = start.saturating_sub(1.day());
        docs.partition_point(|d| d.day < lo)
    } else {
        0
    };
    if let Some((day, id)) = &after {
        from = from.max(docs.partition_point(|d| (d.day, d.id.as_str()) <= (*day, id.as_str())));
    }
    let hi_day = end.saturating_add(1.day());
    let page = s.cfg.page_size.max(1);
    let mut items: Vec<Cow<str>> = Vec::with_capacity(page.min(64));
    let mut last: Option<&Document> = None;
    let mut more = false;
    for d in &docs[from..] {
        if dated && d.day > hi_day {
            break;
        }
        if !pred(d) {
            continue;
        }
        if items.len() == page {
            more = true;
            break;
        }
        let served = quirks::serve(&s.cfg.quirks, name, d, data.utc_offset_seconds(d.day));
        items.push(match &fields {
            Some((f, always)) => Cow::Owned(project(&served, f, always)),
            None => served,
        });
        last = Some(d);
    }
    let next = match (more, last) {
        (true, Some(l)) => Some(paging::encode(
            &s.page_key,
            &PageToken {
                route,
                start: start.to_string(),
                end: end.to_string(),
                fields: fields_key,
                after: format!("{}/{}", l.day, l.id),
            },
        )),
        _ => None,
    };
    json_response(StatusCode::OK, page_body(&items, next))
}

const MAX_SERIES_RANGE: SignedDuration = SignedDuration::from_hours(30 * 24);

fn series(s: &Shared, data: &Dataset, coll: Collection, q: &Query, sandbox: bool) -> Response {
    let start = match parse_datetime("start_datetime", q.get("start_datetime")) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let end = match parse_datetime("end_datetime", q.get("end_datetime")) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let latest = if sandbox {
        false
    } else {
        match parse_bool("latest", q.get("latest")) {
            Ok(v) => v,
            Err(r) => return r,
        }
    };
    let fields = match fields_of(q, sandbox, coll.name()) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let fields_key = fields.as_ref().map(|f| f.0.join(",")).unwrap_or_default();
    let route = route_key(coll.name(), sandbox);
    let (start, end, after) = match q.get("next_token") {
        Some(t) => {
            let Some(tok) = paging::decode(&s.page_key, &route, t) else {
                return bad_token();
            };
            let parsed = (
                tok.start
                    .parse::<i64>()
                    .ok()
                    .and_then(|m| Timestamp::from_millisecond(m).ok()),
                tok.end
                    .parse::<i64>()
                    .ok()
                    .and_then(|m| Timestamp::from_millisecond(m).ok()),
                tok.after.parse::<i64>().ok(),
            );
            let (Some(ts), Some(te), Some(after)) = parsed else {
                return bad_token();
            };
            if start.is_some_and(|x| x != ts)
                || end.is_some_and(|x| x != te)
                || tok.fields != fields_key
            {
                return bad_token();
            }
            (ts, te, Some(after))
        }
        None => {
            let end = end.unwrap_or_else(|| data.now());
            let start = start.unwrap_or(end - SignedDuration::from_hours(24));
            if start > end {
                return detail(
                    StatusCode::BAD_REQUEST,
                    "start_datetime must be before end_datetime",
                );
            }
            if end.duration_since(start) > MAX_SERIES_RANGE {
                return detail(
                    StatusCode::BAD_REQUEST,
                    "The requested time range exceeds the maximum of 30 days",
                );
            }
            (start, end, None)
        }
    };
    let page = s.cfg.series_page_size.max(1);
    let mut rows: Vec<Cow<str>> = Vec::new();
    let mut next = None;
    macro_rules! walk {
        ($samples:expr, $write:path) => {{
            let samples = $samples;
            let lo = samples.partition_point(|x| x.ts < start);
            let lo = match after {
                Some(a) => lo.max(samples.partition_point(|x| x.ts.as_millisecond() <= a)),
                None => lo,
            };
            let hi = samples.partition_point(|x| x.ts <= end);
            let range = if latest {
                if hi > lo {
                    &samples[hi - 1..hi]
                } else {
                    &samples[0..0]
                }
            } else {
                &samples[lo.min(hi)..hi]
            };
            let take = range.len().min(page);
            rows.reserve(take);
            for x in &range[..take] {
                let mut o = String::with_capacity(96);
                $write(x, &mut o);
                rows.push(Cow::Owned(match &fields {
                    Some((f, always)) => project(&o, f, always),
                    None => o,
                }));
            }
            if range.len() > take {
                next = Some(range[take - 1].ts.as_millisecond());
            }
        }};
    }
    match coll {
        Collection::HeartRate => walk!(data.heartrate(), HeartRateSample::write_json),
        Collection::Interbeat => {
            // Derived per request (see ibi.rs), one more than a page to
            // know whether a next page exists.
            let floor = s.cfg.interbeat_days.map_or(i64::MIN, |d| {
                data.now().as_millisecond() - i64::from(d) * 86_400_000
            });
            let span = (start.as_millisecond().max(floor), end.as_millisecond());
            let beats = ibi::beats(data, s.cfg.seed, span, after, page + 1, latest);
            walk!(&beats[..], ibi::IbiSample::write_json)
        }
        _ => walk!(data.battery(), BatterySample::write_json),
    }
    let next = next.map(|after| {
        paging::encode(
            &s.page_key,
            &PageToken {
                route,
                start: start.as_millisecond().to_string(),
                end: end.as_millisecond().to_string(),
                fields: fields_key,
                after: after.to_string(),
            },
        )
    });
    json_response(StatusCode::OK, page_body(&rows, next))
}
