//! OAuth2 authorization-code flow as Oura runs it: auto-approving consent
//! screen, single-use 10-minute codes, rotating refresh tokens, and PKCE
//! (RFC 7636): a code issued for a `code_challenge` is exchanged only with
//! its `code_verifier`. The person who signs in is the one the request's
//! `login_hint` names, else the one the simulated browser is signed in as
//! (see the `persons` module).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::{ALL_SCOPES, AccessToken, Application, Portal, Shared};

const CODE_LIFETIME: Duration = Duration::from_secs(600);

pub(crate) struct Grant {
    client_id: String,
    scopes: Vec<String>,
    /// The person who consented.
    person: usize,
}

pub(crate) struct AuthCode {
    client_id: String,
    person: usize,
    redirect_uri: String,
    scopes: Vec<String>,
    expires: Instant,
    /// The PKCE challenge given at authorization, if any.
    challenge: Option<Challenge>,
}

/// A PKCE `code_challenge` and how it was derived from the verifier.
#[derive(Clone)]
struct Challenge {
    value: String,
    /// `S256` (BASE64URL(SHA256(verifier))) or `plain` (the verifier itself).
    s256: bool,
}

impl Challenge {
    /// The challenge of an authorization request; `Err` names what is wrong.
    fn from_query(q: &HashMap<String, String>) -> Result<Option<Challenge>, &'static str> {
        let Some(value) = q.get("code_challenge") else {
            if q.contains_key("code_challenge_method") {
                return Err("code_challenge_method without code_challenge");
            }
            return Ok(None);
        };
        // RFC 7636 4.3: `plain` when the method is left out.
        let s256 = match q.get("code_challenge_method").map(String::as_str) {
            Some("S256") => true,
            None | Some("plain") => false,
            Some(_) => return Err("transform algorithm not supported"),
        };
        if !verifier_shaped(value) {
            return Err("code_challenge must be 43 to 128 unreserved characters");
        }
        Ok(Some(Challenge {
            value: value.clone(),
            s256,
        }))
    }

    fn verified_by(&self, verifier: &str) -> bool {
        if !verifier_shaped(verifier) {
            return false;
        }
        if self.s256 {
            use sha2::Digest;
            let digest = sha2::Sha256::digest(verifier.as_bytes());
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest) == self.value
        } else {
            verifier == self.value
        }
    }
}

/// 43 to 128 characters of `A-Z a-z 0-9 - . _ ~` (RFC 7636 4.1).
fn verifier_shaped(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

fn random_token(prefix: &str) -> String {
    let mut b = [0u8; 24];
    rand::Rng::fill(&mut rand::rng(), &mut b[..]);
    format!("{prefix}{}", hex::encode(b))
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let body = serde_json::json!({"error": error, "error_description": description});
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn params(raw: &str) -> HashMap<String, String> {
    url::form_urlencoded::parse(raw.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// `GET /oauth/authorize`.
pub(crate) fn authorize(s: &Shared, query: &str) -> Response {
    let q = params(query);
    let Some(client) = q
        .get("client_id")
        .and_then(|id| s.cfg.clients.iter().find(|c| &c.id == id))
    else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            "unknown client_id",
        );
    };
    let Some(redirect) = q.get("redirect_uri") else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "redirect_uri is required",
        );
    };
    if !client.redirect_uris.is_empty() && !client.redirect_uris.contains(redirect) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "redirect_uri is not registered for this client",
        );
    }
    let Ok(mut target) = url::Url::parse(redirect) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "redirect_uri is not a URL",
        );
    };
    let challenge = Challenge::from_query(&q);
    let person = match q.get("login_hint") {
        Some(hint) => s
            .people
            .find(hint)
            .ok_or("login_hint names no simulated person"),
        None => Ok(s.people.signed_in()),
    };
    {
        let mut pairs = target.query_pairs_mut();
        let requested: Vec<String> = match q.get("scope") {
            Some(sc) => sc.split_whitespace().map(str::to_owned).collect(),
            None => ALL_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
        };
        // Oura refuses the whole request when one scope is unknown to it,
        // `spo2Daily` (spec 1.37's name for `spo2`) included.
        let unknown: Vec<&str> = requested
            .iter()
            .map(String::as_str)
            .filter(|sc| {
                let legacy_ok = s.cfg.legacy_spo2_scope && *sc == "spo2Daily";
                !(ALL_SCOPES.contains(sc) || legacy_ok)
            })
            .collect();
        if q.get("response_type").map(String::as_str) != Some("code") {
            pairs.append_pair("error", "unsupported_response_type");
        } else if let Err(why) = &challenge {
            pairs.append_pair("error", "invalid_request");
            pairs.append_pair("error_description", why);
        } else if let Err(why) = person {
            pairs.append_pair("error", "invalid_request");
            pairs.append_pair("error_description", why);
        } else if !unknown.is_empty() {
            pairs.append_pair("error", "invalid_scope");
            pairs.append_pair(
                "error_description",
                &format!("Invalid scope(s): {}", unknown.join(", ")),
            );
        } else if !s.cfg.oauth_approve {
            pairs.append_pair("error", "access_denied");
        } else {
            let scopes: Vec<String> = requested
                .into_iter()
                .filter(|sc| {
                    s.cfg
                        .oauth_granted_scopes
                        .as_ref()
                        .is_none_or(|g| g.contains(sc))
                })
                .collect();
            let code = random_token("c_");
            s.auth.lock().unwrap().codes.insert(
                code.clone(),
                AuthCode {
                    client_id: client.id.clone(),
                    // `Ok` here: an unknown login_hint was answered above.
                    person: person.unwrap_or_default(),
                    redirect_uri: redirect.clone(),
                    scopes: scopes.clone(),
                    expires: s.now() + CODE_LIFETIME,
                    challenge: challenge.clone().ok().flatten(),
                },
            );
            pairs.append_pair("code", &code);
            pairs.append_pair("scope", &scopes.join(" "));
        }
        if let Some(state) = q.get("state") {
            pairs.append_pair("state", state);
        }
    }
    (
        StatusCode::FOUND,
        [(header::LOCATION, target.to_string())],
        "",
    )
        .into_response()
}

/// Client credentials from HTTP Basic or the form.
fn client_credentials(
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Option<(String, String)> {
    if let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        && let Some(b64) = v.strip_prefix("Basic ")
    {
        let raw = STANDARD.decode(b64.trim()).ok()?;
        let raw = String::from_utf8(raw).ok()?;
        let (id, secret) = raw.split_once(':')?;
        return Some((id.to_owned(), secret.to_owned()));
    }
    Some((
        form.get("client_id")?.clone(),
        form.get("client_secret")?.clone(),
    ))
}

fn issue(s: &Shared, grant: u64, scopes: &[String]) -> Response {
    let access = random_token("a_");
    let refresh = random_token("r_");
    let lifetime = s.cfg.access_token_lifetime;
    {
        let mut a = s.auth.lock().unwrap();
        let g = &a.grants[&grant];
        let (person, app) = (g.person, Application::Client(g.client_id.clone()));
        a.access.insert(
            access.clone(),
            AccessToken {
                grant: Some(grant),
                person,
                app,
                scopes: Some(scopes.to_vec()),
                expires: Some(s.now() + lifetime),
            },
        );
        a.refresh.insert(refresh.clone(), grant);
    }
    let body = serde_json::json!({
        "access_token": access,
        "token_type": "bearer",
        "expires_in": lifetime.as_secs(),
        "refresh_token": refresh,
        "scope": s.cfg.quirks.granted_scope_list(scopes),
    });
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body.to_string(),
    )
        .into_response()
}

/// `POST /oauth/token` (`new_path`: false) and the newer portal's
/// `POST /oauth/v2/ext/oauth-token` (true).
pub(crate) fn token(s: &Shared, headers: &HeaderMap, body: &[u8], new_path: bool) -> Response {
    let form = params(&String::from_utf8_lossy(body));
    let Some((id, secret)) = client_credentials(headers, &form) else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed",
        );
    };
    let Some(client) = s
        .cfg
        .clients
        .iter()
        .find(|c| c.id == id && c.secret == secret)
    else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed",
        );
    };
    // What live users of newer-portal apps see: the code exchange works at
    // the legacy path, every refresh there is refused before the refresh
    // token is looked at (so it stays valid for the right endpoint).
    if client.portal == Portal::New
        && !new_path
        && form.get("grant_type").map(String::as_str) == Some("refresh_token")
    {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Invalid request",
        );
    }
    if client.portal == Portal::NewOnly && !new_path {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            "Unknown client for this endpoint",
        );
    }
    match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let Some(code) = form.get("code") else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "code is required",
                );
            };
            let now = s.now();
            let granted = {
                let mut a = s.auth.lock().unwrap();
                // Removing first makes the code single-use even when the
                // exchange then fails.
                match a.codes.remove(code) {
                    Some(c)
                        if c.client_id == id
                            && c.expires > now
                            && form
                                .get("redirect_uri")
                                .is_none_or(|r| *r == c.redirect_uri)
                            && c.challenge.as_ref().is_none_or(|ch| {
                                form.get("code_verifier").is_some_and(|v| ch.verified_by(v))
                            }) =>
                    {
                        let g = a.next_grant;
                        a.next_grant += 1;
                        a.grants.insert(
                            g,
                            Grant {
                                client_id: id.clone(),
                                scopes: c.scopes.clone(),
                                person: c.person,
                            },
                        );
                        Some((g, c.scopes))
                    }
                    _ => None,
                }
            };
            match granted {
                Some((g, scopes)) => issue(s, g, &scopes),
                None => oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "authorization code is invalid, expired or already used, or the code_verifier does not match its code_challenge",
                ),
            }
        }
        Some("refresh_token") => {
            let Some(rt) = form.get("refresh_token") else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "refresh_token is required",
                );
            };
            let found = {
                let mut a = s.auth.lock().unwrap();
                match a.refresh.get(rt).copied() {
                    Some(g) if a.grants.get(&g).is_some_and(|gr| gr.client_id == id) => {
                        a.refresh.remove(rt);
                        Some((g, a.grants[&g].scopes.clone()))
                    }
                    _ => None,
                }
            };
            match found {
                Some((g, scopes)) => issue(s, g, &scopes),
                None => oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "refresh token is invalid, revoked or already used",
                ),
            }
        }
        _ => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant_type must be authorization_code or refresh_token",
        ),
    }
}

fn drop_grant(a: &mut super::AuthState, g: u64) {
    a.grants.remove(&g);
    a.access.retain(|_, t| t.grant != Some(g));
    a.refresh.retain(|_, gr| *gr != g);
}

/// `GET|POST /oauth/revoke` with `access_token` or `token`: ends the whole
/// grant the token belongs to.
pub(crate) fn revoke(s: &Shared, query: &str, body: &[u8]) -> Response {
    let mut p = params(query);
    p.extend(params(&String::from_utf8_lossy(body)));
    let Some(tok) = p.get("access_token").or_else(|| p.get("token")) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "token is required",
        );
    };
    let mut a = s.auth.lock().unwrap();
    let grant = a
        .access
        .get(tok)
        .map(|t| t.grant)
        .or_else(|| a.refresh.get(tok).map(|g| Some(*g)));
    match grant {
        Some(Some(g)) => drop_grant(&mut a, g),
        Some(None) => {
            a.access.remove(tok);
        }
        None => {}
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        "{}",
    )
        .into_response()
}

/// Ends every grant of `client_id`, or only those of `person`.
pub(crate) fn revoke_client(s: &Shared, client_id: &str, person: Option<usize>) {
    let mut a = s.auth.lock().unwrap();
    let gs: Vec<u64> = a
        .grants
        .iter()
        .filter(|(_, g)| g.client_id == client_id && person.is_none_or(|p| p == g.person))
        .map(|(id, _)| *id)
        .collect();
    for g in gs {
        drop_grant(&mut a, g);
    }
}
