//! OAuth2 for the Oura API: the authorization-code login, the token file and
//! a [`TokenSource`] that refreshes single-flight and never loses a rotated
//! refresh token.
//!
//! Oura refresh tokens are single-use. Every refresh therefore happens under
//! an in-process mutex *and* a cross-process file lock, re-reads the token
//! file first (someone else may already have refreshed), and writes the new
//! pair to disk durably before the new access token is handed out.

mod login;
mod source;
pub mod store;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use serde::Deserialize;

pub use login::{
    CallbackParams, LoginOptions, LoginOutcome, Pasted, login, logout, parse_pasted,
    redirect_is_loopback,
};
pub use source::OAuthSource;
pub use store::{StoredTokens, TokenFile, TokenFileError};

use super::auth::{StaticToken, TokenSource};
use crate::config::{ClientAuth, Config, OAuthConfig, Secret};

/// Environment variable naming a failpoint (tests only need it).
pub const FAILPOINT_ENV: &str = "OURADB_FAILPOINT";

#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error(
        "auth.client_id is not set; register an application at https://cloud.ouraring.com/oauth/applications and put its client id in the [auth] section"
    )]
    NoClientId,
    #[error(
        "no client secret; set auth.client_secret or the OURA_CLIENT_SECRET environment variable"
    )]
    NoClientSecret,
    #[error(
        "authorization was denied on Oura's consent page (access_denied); nothing was stored. Run `ouradb auth login` again and choose Allow"
    )]
    Denied,
    #[error(
        "Oura refused the scope {} at sign-in (invalid_scope{}); nothing was stored. Change auth.scopes in the config file (Oura's scopes today: {}; `spo2Daily` is now `spo2`) and run `ouradb auth login` again",
        refused.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", "),
        description.as_deref().map(|d| format!(": {d}")).unwrap_or_default(),
        crate::registry::KNOWN_SCOPES.join(" ")
    )]
    InvalidScope {
        refused: Vec<String>,
        description: Option<String>,
    },
    #[error("the authorization server refused the login ({error}{}); nothing was stored", description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Authorization {
        error: String,
        description: Option<String>,
    },
    #[error(
        "the callback's `state` does not match this login (a forged request, or the callback of an older login attempt); nothing was stored. Run `ouradb auth login` again"
    )]
    StateMismatch,
    #[error(
        "the callback carried neither a code nor an error; paste the full URL the browser was sent to"
    )]
    MissingCode,
    #[error(
        "cannot listen on {addr} for the OAuth callback ({source}); free that port or change auth.redirect_uri (and the redirect URI registered with Oura)"
    )]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("no sign-in completed within {0:?}; run `ouradb auth login` again")]
    Timeout(Duration),
    #[error("cannot read the pasted URL or code: {0}")]
    Input(std::io::Error),
    #[error("exchanging the authorization code failed: {0}")]
    Exchange(String),
    #[error(
        "revoking the grant failed: {0}; run `ouradb auth logout --force` to delete the local tokens anyway"
    )]
    Revoke(String),
    #[error("not signed in with OAuth (no token file at {0})")]
    NotSignedIn(PathBuf),
    #[error(transparent)]
    Store(#[from] TokenFileError),
}

/// The auth side of `status`: what the engine and `ouradb status` show.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuthState {
    pub token_file: PathBuf,
    /// Tokens are stored.
    pub signed_in: bool,
    /// Why the user must run `ouradb auth login` again, if they must.
    pub reauth_required: Option<String>,
    pub user_id: Option<String>,
    pub scopes: Vec<String>,
    pub access_expires_at: Option<Timestamp>,
    /// Changes with every login (never with a refresh): a data type skipped
    /// for a missing scope is retried once this differs.
    pub grant_id: Option<String>,
    /// The token endpoint remembered with the tokens (the one that last
    /// worked); `None` until a refresh or login recorded one.
    pub token_endpoint: Option<String>,
}

impl AuthState {
    pub(crate) fn from_tokens(path: PathBuf, t: Option<&StoredTokens>) -> AuthState {
        AuthState {
            token_file: path,
            signed_in: t.is_some(),
            reauth_required: t.and_then(|t| t.reauth_required.clone()),
            user_id: t.and_then(|t| t.user_id.clone()),
            scopes: t.map(|t| t.scopes.clone()).unwrap_or_default(),
            access_expires_at: t.map(|t| t.expires_at),
            grant_id: t.map(|t| t.grant_id.clone()),
            token_endpoint: t.and_then(|t| t.token_url.clone()),
        }
    }

    /// Whether `scope` was granted (true for every scope when not signed
    /// in with OAuth, where a personal access token decides).
    pub fn has_scope(&self, scope: &str) -> bool {
        !self.signed_in || crate::registry::grant_covers(&self.scopes, scope)
    }
}

/// Reads the auth state from the token file named in the config.
pub fn auth_state(config: &OAuthConfig) -> Result<AuthState, TokenFileError> {
    let file = TokenFile::new(&config.token_file);
    let tokens = file.load()?;
    Ok(AuthState::from_tokens(
        config.token_file.clone(),
        tokens.as_ref(),
    ))
}

/// Whether the daemon should use OAuth: tokens are stored, or an OAuth app
/// is configured and there is no personal access token to fall back on.
pub fn uses_oauth(config: &Config) -> bool {
    config.oauth.token_file.exists() || (config.oauth.client_id.is_some() && config.token.is_none())
}

/// The token source the client should use for this config.
pub fn token_source(config: &Config) -> Arc<dyn TokenSource> {
    let source: Arc<dyn TokenSource> = if uses_oauth(config) {
        if config.token.is_some() {
            tracing::info!("OAuth tokens are stored; ignoring the personal access token");
        }
        Arc::new(OAuthSource::new(config))
    } else {
        Arc::new(StaticToken::new(config.token.clone()))
    };
    match (config.account_entries, config.accounts.as_slice()) {
        (true, [account]) => Arc::new(super::auth::OfAccount {
            inner: source,
            name: account.name.clone(),
        }),
        _ => source,
    }
}

/// Aborts the process when the named failpoint is armed, to prove that
/// what was persisted before it is enough to carry on. Compiled only into
/// test builds (feature `failpoints`, which the package's dev-dependency on
/// itself turns on); elsewhere it is a no-op.
#[cfg(feature = "failpoints")]
pub(crate) fn failpoint(name: &str) {
    #[allow(
        clippy::disallowed_methods,
        reason = "a test-only switch, not configuration; absent from release builds"
    )]
    let armed = std::env::var(FAILPOINT_ENV).is_ok_and(|v| v == name);
    if armed {
        eprintln!("ouradb: failpoint {name} hit; aborting");
        std::process::abort();
    }
}

#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub(crate) fn failpoint(_name: &str) {}

/// A successful token-endpoint answer. Deliberately not `Debug`.
#[derive(Deserialize)]
pub(crate) struct TokenResponse {
    pub access_token: String,
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub expires_in: Option<u64>,
    #[serde(default)]
    pub scope: Option<String>,
}

#[derive(Deserialize)]
struct TokenErrorBody {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// Why a token-endpoint call failed.
#[derive(Debug)]
pub(crate) enum TokenCallError {
    /// The grant (code or refresh token) is dead: only a new login helps.
    InvalidGrant(String),
    /// Our request or credentials are wrong; retrying will not help.
    Permanent(String),
    /// Network trouble, 5xx, 429: a later attempt may work.
    Transient(String),
    /// `400 invalid_request` or `invalid_client`: what the legacy endpoint
    /// answers refreshes of apps from Oura's newer developer portal. The
    /// grant is untouched, so the other endpoint may take the same request.
    WrongEndpoint(String),
}

impl std::fmt::Display for TokenCallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenCallError::InvalidGrant(m)
            | TokenCallError::Permanent(m)
            | TokenCallError::Transient(m) => f.write_str(m),
            TokenCallError::WrongEndpoint(m) => write!(
                f,
                "{m}; check auth.client_id, auth.client_secret, auth.token_url and auth.fallback_token_url"
            ),
        }
    }
}

/// Client credentials for the token endpoint.
#[derive(Clone)]
pub(crate) struct ClientCredentials {
    pub id: String,
    pub secret: Secret,
    pub method: ClientAuth,
}

/// The client for token calls ([`super::http::client`]); one without the
/// timeouts if that cannot be built, still never following a redirect to
/// another origin.
pub(crate) fn http_client(timeout: Duration) -> reqwest::Client {
    super::http::client(timeout).unwrap_or_else(|_| {
        reqwest::Client::builder()
            .redirect(super::http::redirect_policy())
            .build()
            .unwrap_or_default()
    })
}

/// POSTs one grant to the token endpoint. Nothing here logs a value from
/// the request or the response.
pub(crate) async fn token_call(
    http: &reqwest::Client,
    token_url: &url::Url,
    creds: &ClientCredentials,
    grant: &[(&str, &str)],
) -> Result<TokenResponse, TokenCallError> {
    let mut form: Vec<(&str, &str)> = grant.to_vec();
    let mut req = http.post(token_url.clone());
    match creds.method {
        ClientAuth::Form => {
            form.push(("client_id", &creds.id));
            form.push(("client_secret", creds.secret.expose()));
        }
        ClientAuth::Basic => {
            req = req.basic_auth(&creds.id, Some(creds.secret.expose()));
        }
    }
    let resp = req
        .header(reqwest::header::ACCEPT, "application/json")
        .form(&form)
        .send()
        .await
        .map_err(|e| match super::http::refused_redirect(&e) {
            // Following it would hand the client secret and the grant to
            // whoever the redirect names.
            Some(why) => TokenCallError::Permanent(format!(
                "the token endpoint {why}; check auth.token_url and auth.fallback_token_url: each must be the token endpoint itself, not an address that forwards elsewhere"
            )),
            None => TokenCallError::Transient(format!(
                "cannot reach {}: {}",
                token_url.host_str().unwrap_or(""),
                if e.is_timeout() {
                    "timed out"
                } else {
                    "connection failed"
                }
            )),
        })?;
    let status = resp.status();
    let body = resp
        .bytes()
        .await
        .map_err(|_| TokenCallError::Transient("token response interrupted".into()))?;
    if status.is_success() {
        return serde_json::from_slice::<TokenResponse>(&body).map_err(|_| {
            TokenCallError::Transient(format!(
                "token endpoint answered HTTP {} with an unreadable body",
                status.as_u16()
            ))
        });
    }
    let err = serde_json::from_slice::<TokenErrorBody>(&body).ok();
    // Both fields are the server's text: no control characters pass.
    let describe = |e: &TokenErrorBody| {
        let mut m = format!(
            "HTTP {}: {}",
            status.as_u16(),
            super::text::one_line_cut(&e.error, 100)
        );
        if let Some(d) = &e.error_description {
            m.push_str(": ");
            m.push_str(&super::text::one_line_cut(d, 200));
        }
        m
    };
    match err {
        Some(e) if e.error == "invalid_grant" => Err(TokenCallError::InvalidGrant(describe(&e))),
        Some(e)
            if status.as_u16() == 400
                && (e.error == "invalid_request" || e.error == "invalid_client") =>
        {
            Err(TokenCallError::WrongEndpoint(format!(
                "{} at {}",
                describe(&e),
                token_url.host_str().unwrap_or("")
            )))
        }
        Some(e) if e.error == "invalid_client" || e.error == "unauthorized_client" => {
            Err(TokenCallError::Permanent(format!(
                "{}; check auth.client_id, auth.client_secret and auth.client_auth",
                describe(&e)
            )))
        }
        _ if status.is_server_error() || status.as_u16() == 429 => Err(TokenCallError::Transient(
            format!("token endpoint answered HTTP {}", status.as_u16()),
        )),
        Some(e) => Err(TokenCallError::Permanent(describe(&e))),
        None => Err(TokenCallError::Permanent(format!(
            "token endpoint answered HTTP {}; check auth.token_url",
            status.as_u16()
        ))),
    }
}

/// The token endpoints to try, in order: the one remembered with the tokens
/// when it is still configured, else `auth.token_url`; then the other one.
pub(crate) fn token_endpoints(config: &OAuthConfig, remembered: Option<&str>) -> Vec<url::Url> {
    let mut all = vec![config.token_url.clone()];
    if let Some(f) = &config.fallback_token_url
        && *f != config.token_url
    {
        all.push(f.clone());
    }
    if let Some(r) = remembered
        && let Some(i) = all.iter().position(|u| u.as_str() == r)
    {
        all.swap(0, i);
    }
    all
}

/// [`token_call`] at the first endpoint; when that one answers
/// [`TokenCallError::WrongEndpoint`], the same request once at the next.
/// The refused call does not spend the code or refresh token, so the retry
/// carries the same grant. Returns the endpoint that answered.
pub(crate) async fn token_call_any(
    http: &reqwest::Client,
    endpoints: &[url::Url],
    creds: &ClientCredentials,
    grant: &[(&str, &str)],
) -> Result<(TokenResponse, url::Url), TokenCallError> {
    let mut refused: Option<(url::Url, String)> = None;
    for url in endpoints {
        match token_call(http, url, creds, grant).await {
            Ok(resp) => {
                if let Some((first, why)) = &refused {
                    tracing::info!(
                        refused = %first,
                        cause = %why,
                        used = %url,
                        "token endpoint refused the request; the fallback worked and is remembered"
                    );
                }
                return Ok((resp, url.clone()));
            }
            Err(TokenCallError::WrongEndpoint(m)) if refused.is_none() => {
                refused = Some((url.clone(), m));
            }
            Err(TokenCallError::WrongEndpoint(m)) => {
                let (_, first) = refused.expect("set above");
                return Err(TokenCallError::WrongEndpoint(format!(
                    "both token endpoints refused the request ({first}; {m})"
                )));
            }
            Err(e) => return Err(e),
        }
    }
    let (_, m) = refused.expect("at least one endpoint");
    Err(TokenCallError::WrongEndpoint(m))
}

/// Builds the stored form of a token response.
pub(crate) fn tokens_from_response(
    resp: TokenResponse,
    previous: Option<&StoredTokens>,
    client_id: &str,
    requested_scopes: &[String],
    grant_id: String,
) -> Result<StoredTokens, TokenCallError> {
    let refresh = match (resp.refresh_token, previous) {
        (Some(r), _) if !r.is_empty() => Secret::new(r),
        // RFC 6749 6: a refresh answer without a refresh token keeps the old one.
        (_, Some(p)) => p.refresh_token.clone(),
        _ => {
            return Err(TokenCallError::Permanent(
                "the token endpoint issued no refresh token".into(),
            ));
        }
    };
    let scopes = match resp.scope {
        Some(s) => s.split_whitespace().map(str::to_owned).collect(),
        None => previous
            .map(|p| p.scopes.clone())
            .unwrap_or_else(|| requested_scopes.to_vec()),
    };
    let now = crate::clock::now();
    let lifetime = resp.expires_in.unwrap_or(86_400).min(10 * 365 * 86_400);
    Ok(StoredTokens {
        version: store::TOKEN_FILE_VERSION,
        client_id: client_id.to_owned(),
        access_token: Secret::new(resp.access_token),
        refresh_token: refresh,
        expires_at: now + jiff::SignedDuration::from_secs(lifetime as i64),
        obtained_at: now,
        scopes,
        user_id: previous.and_then(|p| p.user_id.clone()),
        grant_id,
        reauth_required: None,
        token_url: previous.and_then(|p| p.token_url.clone()),
    })
}
