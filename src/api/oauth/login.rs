//! `ouradb auth login` and `logout`: the authorization-code flow with a
//! loopback callback listener (or a pasted redirect URL), and revocation.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use axum::http::{StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use jiff::Timestamp;
use tokio::io::{AsyncBufRead, AsyncBufReadExt};
use tokio::sync::{mpsc, watch};

use super::store::{StoredTokens, TokenFile, random_hex};
use super::{
    ClientCredentials, OAuthError, http_client, token_call_any, token_endpoints,
    tokens_from_response,
};
use crate::api::text;
use crate::config::Config;

/// How to run a login.
pub struct LoginOptions {
    /// Try to open the authorization URL in a browser.
    pub open_browser: bool,
    /// Receives the authorization URL once the callback listener is ready
    /// (the CLI prints it; tests follow it).
    pub on_url: Box<dyn Fn(&url::Url) + Send + Sync>,
    /// How long to wait for the user.
    pub timeout: Duration,
    /// Where the pasted redirect URL or code is read from when the redirect
    /// URI is not on this machine; `None` reads standard input.
    pub paste: Option<Box<dyn AsyncBufRead + Send + Unpin>>,
}

impl LoginOptions {
    pub fn new(open_browser: bool, on_url: impl Fn(&url::Url) + Send + Sync + 'static) -> Self {
        LoginOptions {
            open_browser,
            on_url: Box::new(on_url),
            timeout: Duration::from_secs(300),
            paste: None,
        }
    }
}

/// What a successful login stored.
#[derive(Debug, Clone)]
pub struct LoginOutcome {
    pub scopes: Vec<String>,
    /// Requested but not granted.
    pub missing_scopes: Vec<String>,
    pub user_id: Option<String>,
    pub expires_at: Timestamp,
    pub token_file: PathBuf,
}

/// The query of the redirect back to us.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

impl CallbackParams {
    fn from_query(q: &str) -> Self {
        let mut p = CallbackParams::default();
        for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
            let v = Some(v.into_owned());
            match k.as_ref() {
                "code" => p.code = v,
                "state" => p.state = v,
                "error" => p.error = v,
                "error_description" => p.error_description = v,
                _ => {}
            }
        }
        p
    }

    /// The code, once `state` matched and no error came back. The state is
    /// checked first: a forged callback must not even report an error.
    fn into_code(self, expected_state: Option<&str>) -> Result<String, OAuthError> {
        if let Some(expected) = expected_state
            && self.state.as_deref() != Some(expected)
        {
            return Err(OAuthError::StateMismatch);
        }
        match self.error.as_deref() {
            Some("access_denied") => return Err(OAuthError::Denied),
            // The authorization server's words, shown to the user.
            Some(e) => {
                return Err(OAuthError::Authorization {
                    error: text::one_line_cut(e, 100),
                    description: self.error_description.map(|d| text::one_line_cut(&d, 300)),
                });
            }
            None => {}
        }
        self.code
            .filter(|c| !c.is_empty())
            .ok_or(OAuthError::MissingCode)
    }
}

/// What the user pasted: the whole redirected URL or only the code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pasted {
    Callback(CallbackParams),
    Code(String),
}

/// Reads a pasted redirect URL (or its query) or a bare code.
pub fn parse_pasted(input: &str) -> Result<Pasted, OAuthError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(OAuthError::MissingCode);
    }
    let query = match url::Url::parse(s) {
        Ok(u) => Some(u.query().unwrap_or("").to_owned()),
        Err(_) if s.contains("code=") || s.contains("error=") => {
            Some(s.rsplit_once('?').map_or(s, |(_, q)| q).to_owned())
        }
        Err(_) => None,
    };
    match query {
        Some(q) => {
            let p = CallbackParams::from_query(&q);
            if p.code.is_none() && p.error.is_none() {
                return Err(OAuthError::MissingCode);
            }
            Ok(Pasted::Callback(p))
        }
        None if !s.contains(char::is_whitespace) => Ok(Pasted::Code(s.to_owned())),
        None => Err(OAuthError::MissingCode),
    }
}

/// Whether the redirect URI points at this machine, so we can listen for it.
pub fn redirect_is_loopback(u: &url::Url) -> bool {
    !listen_addrs(u).is_empty()
}

fn listen_addrs(u: &url::Url) -> Vec<SocketAddr> {
    let Some(port) = u.port_or_known_default() else {
        return Vec::new();
    };
    match u.host() {
        Some(url::Host::Domain(d)) if d.eq_ignore_ascii_case("localhost") => vec![
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port),
        ],
        Some(url::Host::Ipv4(ip)) if ip.is_loopback() => {
            vec![SocketAddr::new(IpAddr::V4(ip), port)]
        }
        Some(url::Host::Ipv6(ip)) if ip.is_loopback() => {
            vec![SocketAddr::new(IpAddr::V6(ip), port)]
        }
        _ => Vec::new(),
    }
}

fn open_browser(u: &url::Url) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    // Best effort: the URL is always printed as well.
    let _ = std::process::Command::new(opener)
        .arg(u.as_str())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
}

fn page(status: StatusCode, title: &str, text: &str) -> Response {
    (
        status,
        Html(format!(
            "<!doctype html><meta charset=utf-8><title>ouradb: {title}</title><h1>{title}</h1><p>{text}</p>"
        )),
    )
        .into_response()
}

/// Serves the redirect URI's path until one callback arrived (or timeout).
async fn wait_for_callback(
    listeners: Vec<tokio::net::TcpListener>,
    path: String,
    state: String,
    timeout: Duration,
) -> Result<String, OAuthError> {
    let (tx, mut rx) = mpsc::channel::<Result<String, OAuthError>>(1);
    let app = axum::Router::new().fallback(move |uri: Uri| {
        let tx = tx.clone();
        let path = path.clone();
        let state = state.clone();
        async move {
            if uri.path() != path {
                return page(
                    StatusCode::NOT_FOUND,
                    "Not found",
                    "This is ouradb's sign-in callback.",
                );
            }
            let p = CallbackParams::from_query(uri.query().unwrap_or(""));
            if p.code.is_none() && p.error.is_none() && p.state.is_none() {
                return page(
                    StatusCode::BAD_REQUEST,
                    "No sign-in here",
                    "This request carries no authorization result.",
                );
            }
            let result = p.into_code(Some(&state));
            let resp = match &result {
                Ok(_) => page(
                    StatusCode::OK,
                    "Signed in",
                    "ouradb received the authorization. You can close this tab.",
                ),
                Err(e) => page(StatusCode::BAD_REQUEST, "Sign-in failed", &e.to_string()),
            };
            let _ = tx.try_send(result);
            resp
        }
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut servers = Vec::new();
    for l in listeners {
        let mut stop = stop_rx.clone();
        let app = app.clone();
        servers.push(tokio::spawn(async move {
            axum::serve(l, app)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await
        }));
    }
    drop(app);
    let got = tokio::time::timeout(timeout, rx.recv()).await;
    let _ = stop_tx.send(true);
    for mut s in servers {
        // A browser may hold a keep-alive connection open; don't wait for it.
        if tokio::time::timeout(Duration::from_secs(2), &mut s)
            .await
            .is_err()
        {
            s.abort();
        }
    }
    match got {
        Ok(Some(r)) => r,
        Ok(None) | Err(_) => Err(OAuthError::Timeout(timeout)),
    }
}

async fn bind(addrs: &[SocketAddr]) -> Result<Vec<tokio::net::TcpListener>, OAuthError> {
    let mut out = Vec::new();
    for (i, a) in addrs.iter().enumerate() {
        match tokio::net::TcpListener::bind(a).await {
            Ok(l) => out.push(l),
            // `localhost` may also resolve to ::1; that one is optional.
            Err(_) if i > 0 => {}
            Err(source) => return Err(OAuthError::Bind { addr: *a, source }),
        }
    }
    Ok(out)
}

/// Runs the authorization-code flow and stores the tokens.
pub async fn login(config: &Config, opts: LoginOptions) -> Result<LoginOutcome, OAuthError> {
    let o = &config.oauth;
    let client_id = o.client_id.clone().ok_or(OAuthError::NoClientId)?;
    let secret = o.client_secret.clone().ok_or(OAuthError::NoClientSecret)?;
    let state = random_hex(16);
    // PKCE (RFC 7636): a code intercepted on its way back (another program
    // on the loopback port, a pasted URL in a shell history) is useless
    // without the verifier, which never leaves this process.
    let verifier = pkce_verifier();
    let mut auth_url = o.authorize_url.clone();
    auth_url
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &client_id)
        .append_pair("redirect_uri", o.redirect_uri.as_str())
        .append_pair("scope", &o.scopes.join(" "))
        .append_pair("state", &state)
        .append_pair("code_challenge", &pkce_challenge(&verifier))
        .append_pair("code_challenge_method", "S256");

    let addrs = listen_addrs(&o.redirect_uri);
    let code = async {
        Ok(if addrs.is_empty() {
            (opts.on_url)(&auth_url);
            if opts.open_browser {
                open_browser(&auth_url);
            }
            let mut line = String::new();
            let read = match opts.paste {
                Some(mut r) => r.read_line(&mut line).await,
                None => {
                    tokio::io::BufReader::new(tokio::io::stdin())
                        .read_line(&mut line)
                        .await
                }
            };
            read.map_err(OAuthError::Input)?;
            match parse_pasted(&line)? {
                Pasted::Callback(p) => p.into_code(Some(&state))?,
                // A bare code carries no state; the user vouches for it by pasting.
                Pasted::Code(c) => c,
            }
        } else {
            // Listen before showing the URL, so the redirect cannot arrive first.
            let listeners = bind(&addrs).await?;
            (opts.on_url)(&auth_url);
            if opts.open_browser {
                open_browser(&auth_url);
            }
            wait_for_callback(
                listeners,
                o.redirect_uri.path().to_owned(),
                state,
                opts.timeout,
            )
            .await?
        })
    }
    .await
    .map_err(|e| refused_scopes(e, &o.scopes))?;

    let http = http_client(config.request_timeout);
    let creds = ClientCredentials {
        id: client_id.clone(),
        secret,
        method: o.client_auth,
    };
    let (resp, used) = token_call_any(
        &http,
        &token_endpoints(o, None),
        &creds,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", o.redirect_uri.as_str()),
            ("code_verifier", &verifier),
        ],
    )
    .await
    .map_err(|e| OAuthError::Exchange(e.to_string()))?;
    let mut tokens = tokens_from_response(resp, None, &client_id, &o.scopes, random_hex(8))
        .map_err(|e| OAuthError::Exchange(e.to_string()))?;
    tokens.token_url = Some(used.to_string());
    if crate::registry::grant_covers(&tokens.scopes, "personal") {
        tokens.user_id = fetch_user_id(&http, config, &tokens).await;
    }
    let file = TokenFile::new(&o.token_file);
    let lock_file = file.clone();
    let _lock = tokio::task::spawn_blocking(move || lock_file.lock())
        .await
        .map_err(|e| OAuthError::Exchange(format!("token file lock task failed: {e}")))??;
    file.save(&tokens)?;
    tracing::info!(token_file = %o.token_file.display(), "stored OAuth tokens");
    let missing_scopes = o
        .scopes
        .iter()
        .filter(|s| !crate::registry::grant_covers(&tokens.scopes, s))
        .cloned()
        .collect();
    Ok(LoginOutcome {
        scopes: tokens.scopes,
        missing_scopes,
        user_id: tokens.user_id,
        expires_at: tokens.expires_at,
        token_file: o.token_file.clone(),
    })
}

/// The characters RFC 7636 allows in a code verifier ("unreserved").
const PKCE_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";

/// A fresh code verifier: 64 random unreserved characters (RFC 7636 asks
/// for 43 to 128; 64 of 66 symbols carry about 386 bits).
fn pkce_verifier() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..64)
        .map(|_| char::from(PKCE_CHARS[rng.random_range(0..PKCE_CHARS.len())]))
        .collect()
}

/// The S256 challenge of `verifier`: BASE64URL(SHA256(verifier)), unpadded.
fn pkce_challenge(verifier: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier))
}

/// Turns an `invalid_scope` answer into an error naming the refused scopes:
/// those the description mentions, else those Oura does not know today,
/// else every requested one.
fn refused_scopes(e: OAuthError, requested: &[String]) -> OAuthError {
    let OAuthError::Authorization { error, description } = e else {
        return e;
    };
    if error != "invalid_scope" {
        return OAuthError::Authorization { error, description };
    }
    let mentioned: Vec<String> = requested
        .iter()
        .filter(|s| {
            description.as_deref().is_some_and(|d| {
                d.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .any(|w| w == s.as_str())
            })
        })
        .cloned()
        .collect();
    let unknown: Vec<String> = requested
        .iter()
        .filter(|s| !crate::registry::KNOWN_SCOPES.contains(&s.as_str()))
        .cloned()
        .collect();
    let refused = if !mentioned.is_empty() {
        mentioned
    } else if !unknown.is_empty() {
        unknown
    } else {
        requested.to_vec()
    };
    OAuthError::InvalidScope {
        refused,
        description,
    }
}

/// The Oura user id, from `personal_info` (best effort: `None` on failure).
async fn fetch_user_id(
    http: &reqwest::Client,
    config: &Config,
    t: &StoredTokens,
) -> Option<String> {
    let u = crate::api::http::join(&config.base_url, "v2/usercollection/personal_info");
    let resp = http
        .get(u)
        .bearer_auth(t.access_token.expose())
        .send()
        .await
        .ok()?;
    if !resp.status().is_success() {
        tracing::debug!(status = resp.status().as_u16(), "cannot read the user id");
        return None;
    }
    let v: serde_json::Value = resp.json().await.ok()?;
    v["id"].as_str().map(str::to_owned)
}

/// Revokes the grant at Oura, then deletes the stored tokens. With `force`
/// the tokens are deleted even when revocation fails. Returns whether the
/// revocation succeeded.
pub async fn logout(config: &Config, force: bool) -> Result<bool, OAuthError> {
    let o = &config.oauth;
    let file = TokenFile::new(&o.token_file);
    let lock_file = file.clone();
    let _lock = tokio::task::spawn_blocking(move || lock_file.lock())
        .await
        .map_err(|e| OAuthError::Revoke(format!("token file lock task failed: {e}")))??;
    let tokens = file
        .load()?
        .ok_or_else(|| OAuthError::NotSignedIn(o.token_file.clone()))?;
    let http = http_client(config.request_timeout);
    let result = http
        .post(o.revoke_url.clone())
        .form(&[("access_token", tokens.access_token.expose())])
        .send()
        .await;
    let revoked = match result {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => Err(format!("HTTP {}", r.status().as_u16())),
        Err(e) => Err(match crate::api::http::refused_redirect(&e) {
            Some(why) => format!("the revocation endpoint {why}; check auth.revoke_url"),
            None if e.is_timeout() => "timed out".to_owned(),
            None => "connection failed".to_owned(),
        }),
    };
    let ok = revoked.is_ok();
    match revoked {
        Ok(()) => {}
        // A grant already refused by the server is as good as revoked.
        Err(_) if tokens.reauth_required.is_some() => {}
        Err(e) if !force => return Err(OAuthError::Revoke(e)),
        Err(e) => tracing::warn!(cause = %e, "revocation failed; deleting the local tokens anyway"),
    }
    file.delete()?;
    Ok(ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pasted_input_forms() {
        let p = parse_pasted("https://example.com/cb?code=abc&scope=daily&state=s1\n").unwrap();
        let Pasted::Callback(cb) = p else {
            panic!("callback")
        };
        assert_eq!(cb.clone().into_code(Some("s1")).unwrap(), "abc");
        assert!(matches!(
            cb.into_code(Some("other")),
            Err(OAuthError::StateMismatch)
        ));
        assert_eq!(
            parse_pasted("  abc123 ").unwrap(),
            Pasted::Code("abc123".into())
        );
        let Pasted::Callback(cb) = parse_pasted("?error=access_denied&state=s").unwrap() else {
            panic!("callback")
        };
        assert!(matches!(cb.into_code(Some("s")), Err(OAuthError::Denied)));
        assert!(matches!(parse_pasted("   "), Err(OAuthError::MissingCode)));
        assert!(matches!(
            parse_pasted("https://example.com/cb?x=1"),
            Err(OAuthError::MissingCode)
        ));
    }

    #[test]
    fn pkce_matches_rfc_7636() {
        // RFC 7636 appendix B.
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let v = pkce_verifier();
        assert_eq!(v.len(), 64);
        assert!(v.bytes().all(|b| PKCE_CHARS.contains(&b)), "{v}");
        assert_ne!(v, pkce_verifier(), "fresh every time");
    }

    #[test]
    fn loopback_detection() {
        let u = |s: &str| url::Url::parse(s).unwrap();
        assert_eq!(listen_addrs(&u("http://localhost:8745/callback")).len(), 2);
        assert!(redirect_is_loopback(&u("http://127.0.0.1:9/cb")));
        assert!(redirect_is_loopback(&u("http://[::1]:9/cb")));
        assert!(!redirect_is_loopback(&u("https://example.com/cb")));
    }
}
