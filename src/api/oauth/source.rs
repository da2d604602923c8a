//! The refreshing token source.

#[allow(clippy::disallowed_types, reason = "never held across an .await")]
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use jiff::SignedDuration;

use super::store::{FileStamp, StoredTokens, TokenFile};
use super::{
    AuthState, ClientCredentials, TokenCallError, failpoint, http_client, token_call_any,
    token_endpoints, tokens_from_response,
};
use crate::api::auth::{AuthError, TokenSource};
use crate::config::{ClientAuth, Config, OAuthConfig, Secret};

/// What the last look at the token file found.
#[derive(Default)]
struct Cache {
    stamp: Option<FileStamp>,
    tokens: Option<StoredTokens>,
    error: Option<String>,
}

/// OAuth tokens from the token file, refreshed before they expire and once
/// after a 401. Picks up a new login (another process rewriting the file)
/// on the next call.
pub struct OAuthSource {
    file: TokenFile,
    client_id: Option<String>,
    client_secret: Option<Secret>,
    client_auth: ClientAuth,
    /// The token endpoints (`auth.token_url`, `auth.fallback_token_url`).
    endpoints: OAuthConfig,
    http: reqwest::Client,
    #[allow(clippy::disallowed_types, reason = "never held across an .await")]
    cache: Mutex<Cache>,
    /// Single flight: one refresh at a time in this process.
    refresh: tokio::sync::Mutex<()>,
    refreshes: AtomicU64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Why {
    /// Proactive: the token is about to expire.
    Expiring,
    /// The API answered 401 to this exact token.
    Rejected,
    /// `ouradb auth refresh`.
    Forced,
}

impl OAuthSource {
    /// Never fails: a missing or broken token file surfaces on first use,
    /// so a daemon started before `ouradb auth login` picks the login up.
    pub fn new(config: &Config) -> Self {
        let o = &config.oauth;
        OAuthSource {
            file: TokenFile::new(&o.token_file),
            client_id: o.client_id.clone(),
            client_secret: o.client_secret.clone(),
            client_auth: o.client_auth,
            endpoints: o.clone(),
            http: http_client(config.request_timeout),
            #[allow(clippy::disallowed_types, reason = "never held across an .await")]
            cache: Mutex::new(Cache::default()),
            refresh: tokio::sync::Mutex::new(()),
            refreshes: AtomicU64::new(0),
        }
    }

    /// Refreshes performed by this instance (successful token calls).
    pub fn refresh_count(&self) -> u64 {
        self.refreshes.load(Ordering::Relaxed)
    }

    /// Signed-in state, scopes, expiry and whether re-authorization is
    /// required, as of the token file now.
    pub fn state(&self) -> AuthState {
        let cache = self.reload(false);
        AuthState::from_tokens(self.file.path().to_path_buf(), cache.tokens.as_ref())
    }

    /// Refreshes now, whatever the expiry (`ouradb auth refresh`).
    pub async fn refresh_now(&self) -> Result<(), AuthError> {
        let t = self.current()?;
        self.refresh_from(&t.access_token, Why::Forced)
            .await
            .map(|_| ())
    }

    /// Re-reads the file when its stamp changed (or when `force`), and
    /// returns a copy of the cache.
    fn reload(&self, force: bool) -> CacheView {
        let mut c = self.cache.lock().expect("token cache");
        let stamp = self.file.stamp();
        if force || stamp != c.stamp || (stamp.is_some() && c.tokens.is_none() && c.error.is_none())
        {
            match self.file.load() {
                Ok(t) => {
                    if c.tokens.is_some()
                        && t.as_ref().map(|t| &t.grant_id) != c.tokens.as_ref().map(|t| &t.grant_id)
                    {
                        tracing::info!("picked up a new OAuth grant from the token file");
                    }
                    c.tokens = t;
                    c.error = None;
                }
                Err(e) => {
                    c.tokens = None;
                    c.error = Some(e.to_string());
                }
            }
            c.stamp = stamp;
        }
        CacheView {
            tokens: c.tokens.clone(),
            error: c.error.clone(),
        }
    }

    fn remember(&self, tokens: StoredTokens) {
        let mut c = self.cache.lock().expect("token cache");
        c.stamp = self.file.stamp();
        c.tokens = Some(tokens);
        c.error = None;
    }

    /// The usable stored tokens, or why there are none.
    fn current(&self) -> Result<StoredTokens, AuthError> {
        usable(self.reload(false))
    }

    fn credentials(&self, t: &StoredTokens) -> Result<ClientCredentials, AuthError> {
        let secret = self.client_secret.clone().ok_or_else(|| {
            AuthError::Refresh(
                "no client secret; set auth.client_secret or OURA_CLIENT_SECRET".into(),
            )
        })?;
        Ok(ClientCredentials {
            // The grant belongs to the app that created it.
            id: if t.client_id.is_empty() {
                self.client_id.clone().unwrap_or_default()
            } else {
                t.client_id.clone()
            },
            secret,
            method: self.client_auth,
        })
    }

    async fn refresh_from(&self, stale: &Secret, why: Why) -> Result<Secret, AuthError> {
        let _flight = self.refresh.lock().await;
        let t = self.current()?;
        if t.access_token != *stale && !expiring(&t) {
            // Another caller refreshed while we waited.
            return Ok(t.access_token);
        }
        let file = self.file.clone();
        let _lock = tokio::task::spawn_blocking(move || file.lock())
            .await
            .map_err(|e| AuthError::Refresh(format!("token file lock task failed: {e}")))?
            .map_err(|e| AuthError::Refresh(e.to_string()))?;
        // Another process (a daemon, `ouradb sync`, a login) may have
        // replaced the tokens; the file under the lock is the truth.
        let t = usable(self.reload(true))?;
        if t.access_token != *stale && !expiring(&t) {
            return Ok(t.access_token);
        }
        let creds = self.credentials(&t)?;
        tracing::debug!(reason = ?why, "refreshing the OAuth access token");
        let endpoints = token_endpoints(&self.endpoints, t.token_url.as_deref());
        let answer = token_call_any(
            &self.http,
            &endpoints,
            &creds,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", t.refresh_token.expose()),
            ],
        )
        .await;
        match answer {
            Ok((resp, used)) => {
                let mut new =
                    tokens_from_response(resp, Some(&t), &creds.id, &t.scopes, t.grant_id.clone())
                        .map_err(|e| AuthError::Refresh(e.to_string()))?;
                new.token_url = Some(used.to_string());
                self.refreshes.fetch_add(1, Ordering::Relaxed);
                // The old refresh token is dead now: the new one must be on
                // disk before anything else happens.
                if let Err(e) = self.file.save(&new) {
                    tracing::error!(
                        error = %e,
                        "cannot persist the rotated OAuth tokens; keeping them in memory only, a restart will require `ouradb auth login`"
                    );
                } else {
                    failpoint("after_token_persist");
                }
                let access = new.access_token.clone();
                tracing::debug!(expires_at = %new.expires_at, "stored refreshed OAuth tokens");
                self.remember(new);
                Ok(access)
            }
            Err(TokenCallError::InvalidGrant(m)) => {
                let reason = format!("the refresh token was refused ({m})");
                tracing::warn!(%reason, "OAuth grant is no longer valid; run `ouradb auth login`");
                let mut marked = t.clone();
                marked.reauth_required = Some(reason.clone());
                if let Err(e) = self.file.save(&marked) {
                    tracing::error!(error = %e, "cannot record the re-authorization state");
                }
                self.remember(marked);
                Err(AuthError::ReauthRequired(reason))
            }
            Err(TokenCallError::Transient(m)) if why == Why::Expiring && !expired(&t) => {
                // Early refresh failed but the token still works: use it and
                // try again on the next call.
                tracing::warn!(cause = %m, "proactive token refresh failed; using the current token");
                Ok(t.access_token)
            }
            Err(e) => Err(AuthError::Refresh(e.to_string())),
        }
    }
}

struct CacheView {
    tokens: Option<StoredTokens>,
    error: Option<String>,
}

fn usable(v: CacheView) -> Result<StoredTokens, AuthError> {
    if let Some(e) = v.error {
        return Err(AuthError::ReauthRequired(e));
    }
    let t = v.tokens.ok_or(AuthError::NoToken)?;
    if let Some(r) = &t.reauth_required {
        return Err(AuthError::ReauthRequired(r.clone()));
    }
    Ok(t)
}

/// How long before expiry a token is refreshed: a tenth of its lifetime,
/// at most two minutes.
fn margin(t: &StoredTokens) -> SignedDuration {
    let life = t.expires_at.duration_since(t.obtained_at);
    (life / 10).clamp(SignedDuration::ZERO, SignedDuration::from_secs(120))
}

fn expiring(t: &StoredTokens) -> bool {
    crate::clock::now() + margin(t) >= t.expires_at
}

fn expired(t: &StoredTokens) -> bool {
    crate::clock::now() >= t.expires_at
}

#[async_trait::async_trait]
impl TokenSource for OAuthSource {
    fn grant(&self) -> crate::api::auth::Grant {
        let state = self.state();
        crate::api::auth::Grant {
            id: state.grant_id,
            scopes: state.signed_in.then_some(state.scopes),
        }
    }

    async fn access_token(&self) -> Result<Secret, AuthError> {
        let t = self.current()?;
        if !expiring(&t) {
            return Ok(t.access_token);
        }
        self.refresh_from(&t.access_token, Why::Expiring).await
    }

    async fn rejected(&self, rejected: &Secret) -> Result<bool, AuthError> {
        let t = self.current()?;
        if t.access_token != *rejected {
            return Ok(true);
        }
        self.refresh_from(rejected, Why::Rejected).await?;
        Ok(true)
    }
}

impl std::fmt::Debug for OAuthSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthSource")
            .field("token_file", &self.file.path())
            .finish_non_exhaustive()
    }
}
