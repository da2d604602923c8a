//! Where access tokens come from.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::config::Secret;

#[derive(Debug, Clone, thiserror::Error)]
pub enum AuthError {
    #[error(
        "no Oura access token configured; set auth.personal_access_token, the OURA_TOKEN environment variable, or run `ouradb auth login`"
    )]
    NoToken,
    /// [`AuthError::NoToken`] of one `[[account]]` of several.
    #[error(
        "account {0} has no Oura credentials, so nothing was requested for it; set personal_access_token (or personal_access_token_file) in its [[account]] entry, or run `ouradb auth login --account {0}`"
    )]
    AccountNoToken(String),
    #[error("re-authorization required: {0}; run `ouradb auth login`")]
    ReauthRequired(String),
    #[error("token refresh failed: {0}")]
    Refresh(String),
}

/// Supplies bearer tokens to the client.
#[async_trait::async_trait]
pub trait TokenSource: Send + Sync {
    /// A token to send now.
    async fn access_token(&self) -> Result<Secret, AuthError>;
    /// Called when `rejected` got a 401. Returns true when a different token
    /// is now available (so one retry makes sense).
    async fn rejected(&self, rejected: &Secret) -> Result<bool, AuthError>;
    /// What the current credentials were granted. A data type skipped for a
    /// missing scope is retried only once this changes.
    fn grant(&self) -> Grant {
        Grant::default()
    }
}

/// The token source of one `[[account]]`: a missing sign-in names the
/// account and the command that fixes it, as every account's error must in
/// a household (the others keep syncing).
pub struct OfAccount {
    pub inner: std::sync::Arc<dyn TokenSource>,
    pub name: String,
}

impl OfAccount {
    fn named(&self, e: AuthError) -> AuthError {
        match e {
            AuthError::NoToken => AuthError::AccountNoToken(self.name.clone()),
            e => e,
        }
    }
}

#[async_trait::async_trait]
impl TokenSource for OfAccount {
    async fn access_token(&self) -> Result<Secret, AuthError> {
        self.inner.access_token().await.map_err(|e| self.named(e))
    }

    async fn rejected(&self, rejected: &Secret) -> Result<bool, AuthError> {
        self.inner
            .rejected(rejected)
            .await
            .map_err(|e| self.named(e))
    }

    fn grant(&self) -> Grant {
        self.inner.grant()
    }
}

/// Identity and scopes of the current grant, when known.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grant {
    /// Changes when the user signs in again or configures another token.
    pub id: Option<String>,
    /// Granted scopes; `None` when the credentials do not say.
    pub scopes: Option<Vec<String>>,
}

/// A personal access token from config or the environment. Oura deprecated
/// them in December 2025, so the first use logs a one-time notice.
pub struct StaticToken {
    token: Option<Secret>,
    warned: AtomicBool,
}

impl StaticToken {
    pub fn new(token: Option<Secret>) -> Self {
        StaticToken {
            token,
            warned: AtomicBool::new(false),
        }
    }
}

#[async_trait::async_trait]
impl TokenSource for StaticToken {
    async fn access_token(&self) -> Result<Secret, AuthError> {
        let t = self.token.clone().ok_or(AuthError::NoToken)?;
        if !self.warned.swap(true, Ordering::Relaxed) {
            tracing::info!(
                "using a personal access token; Oura deprecated these in December 2025, consider `ouradb auth login` (OAuth2)"
            );
        }
        Ok(t)
    }

    async fn rejected(&self, _rejected: &Secret) -> Result<bool, AuthError> {
        Ok(false)
    }

    fn grant(&self) -> Grant {
        use sha2::Digest;
        // A digest prefix identifies the token without revealing it.
        let id = self
            .token
            .as_ref()
            .map(|t| hex::encode(&sha2::Sha256::digest(t.expose().as_bytes())[..8]));
        Grant { id, scopes: None }
    }
}
