//! `[auth]`: the personal access token and the OAuth2 application.

use std::path::PathBuf;

use serde::Deserialize;

use super::defaults::{
    DEFAULT_AUTHORIZE_URL, DEFAULT_FALLBACK_TOKEN_URL, DEFAULT_REDIRECT_URI, DEFAULT_REVOKE_URL,
    DEFAULT_SCOPES, DEFAULT_TOKEN_URL, default_token_file,
};
use super::urls::{http_url, url_or_default};
use super::warnings::exposed_file;
use super::{ConfigError, Secret, expand_home};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAuth {
    pub personal_access_token: Option<String>,
    pub personal_access_token_file: Option<PathBuf>,
    client_id: Option<String>,
    pub client_secret: Option<String>,
    redirect_uri: Option<String>,
    scopes: Option<String>,
    authorize_url: Option<String>,
    token_url: Option<String>,
    fallback_token_url: Option<String>,
    revoke_url: Option<String>,
    token_file: Option<PathBuf>,
    client_auth: Option<String>,
}

/// How the client id and secret travel to the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// `client_id` and `client_secret` form fields (what Oura documents).
    Form,
    /// HTTP Basic authentication (RFC 6749 section 2.3.1).
    Basic,
}

/// OAuth2 application settings from `[auth]`.
#[derive(Debug, Clone)]
pub struct OAuthConfig {
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    pub redirect_uri: url::Url,
    pub scopes: Vec<String>,
    pub authorize_url: url::Url,
    pub token_url: url::Url,
    /// Tried once when `token_url` refuses a refresh or code exchange with
    /// `400 invalid_request`/`invalid_client`; `None` when set to "".
    pub fallback_token_url: Option<url::Url>,
    pub revoke_url: url::Url,
    /// Where access and refresh tokens are kept (mode 0600).
    pub token_file: PathBuf,
    pub client_auth: ClientAuth,
}

pub(super) fn oauth_config(
    raw: &RawAuth,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<OAuthConfig, ConfigError> {
    let client_id = raw
        .client_id
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let client_secret = raw
        .client_secret
        .clone()
        .filter(|s| !s.trim().is_empty())
        .or_else(|| env("OURA_CLIENT_SECRET").filter(|s| !s.trim().is_empty()))
        .map(|s| Secret::new(s.trim()));
    let redirect_uri = redirect_uri(raw)?;
    let scopes = scopes(raw)?;
    let authorize_url = url_or_default(
        "auth.authorize_url",
        raw.authorize_url.as_deref(),
        DEFAULT_AUTHORIZE_URL,
    )?;
    let token_url = url_or_default(
        "auth.token_url",
        raw.token_url.as_deref(),
        DEFAULT_TOKEN_URL,
    )?;
    let fallback_token_url = fallback_token_url(raw)?;
    let revoke_url = url_or_default(
        "auth.revoke_url",
        raw.revoke_url.as_deref(),
        DEFAULT_REVOKE_URL,
    )?;
    Ok(OAuthConfig {
        client_id,
        client_secret,
        redirect_uri,
        scopes,
        authorize_url,
        token_url,
        fallback_token_url,
        revoke_url,
        token_file: token_file(raw)?,
        client_auth: client_auth(raw)?,
    })
}

fn redirect_uri(raw: &RawAuth) -> Result<url::Url, ConfigError> {
    let redirect_uri = url_or_default(
        "auth.redirect_uri",
        raw.redirect_uri.as_deref(),
        DEFAULT_REDIRECT_URI,
    )?;
    if redirect_uri.port_or_known_default().is_none() {
        return Err(ConfigError::invalid(
            "auth.redirect_uri",
            "has no port",
            format!("use e.g. \"{DEFAULT_REDIRECT_URI}\""),
        ));
    }
    Ok(redirect_uri)
}

fn scopes(raw: &RawAuth) -> Result<Vec<String>, ConfigError> {
    let scopes: Vec<String> = raw
        .scopes
        .as_deref()
        .unwrap_or(DEFAULT_SCOPES)
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    if scopes.is_empty() {
        return Err(ConfigError::invalid(
            "auth.scopes",
            "is empty",
            format!("list space-separated scopes, e.g. \"{DEFAULT_SCOPES}\""),
        ));
    }
    Ok(scopes)
}

/// `auth.fallback_token_url`; "" turns the fallback off.
fn fallback_token_url(raw: &RawAuth) -> Result<Option<url::Url>, ConfigError> {
    match raw
        .fallback_token_url
        .as_deref()
        .unwrap_or(DEFAULT_FALLBACK_TOKEN_URL)
        .trim()
    {
        "" => Ok(None),
        text => Ok(Some(http_url(
            "auth.fallback_token_url",
            text,
            DEFAULT_FALLBACK_TOKEN_URL,
        )?)),
    }
}

fn token_file(raw: &RawAuth) -> Result<PathBuf, ConfigError> {
    let token_file = raw
        .token_file
        .as_deref()
        .map(expand_home)
        .unwrap_or_else(default_token_file);
    if token_file.as_os_str().is_empty() || token_file.file_name().is_none() {
        return Err(ConfigError::invalid(
            "auth.token_file",
            "is not a file path",
            "give a file path such as \"~/.local/share/ouradb/tokens.json\"",
        ));
    }
    Ok(token_file)
}

fn client_auth(raw: &RawAuth) -> Result<ClientAuth, ConfigError> {
    match raw.client_auth.as_deref().unwrap_or("form") {
        "form" => Ok(ClientAuth::Form),
        "basic" => Ok(ClientAuth::Basic),
        other => Err(ConfigError::invalid(
            "auth.client_auth",
            format!("unknown method `{other}`"),
            "use form or basic",
        )),
    }
}

/// The personal access token: `auth.personal_access_token`, else the file
/// at `auth.personal_access_token_file` (a warning joins `warnings` when
/// other users can read it), else `OURA_TOKEN`.
pub(super) fn personal_token(
    raw: RawAuth,
    env: &impl Fn(&str) -> Option<String>,
    warnings: &mut Vec<String>,
) -> Result<Option<Secret>, ConfigError> {
    let token = configured_token(
        "auth",
        raw.personal_access_token,
        raw.personal_access_token_file,
        warnings,
    )?;
    if token.is_some() {
        return Ok(token);
    }
    match env("OURA_TOKEN").filter(|t| !t.trim().is_empty()) {
        Some(t) => {
            check_token("OURA_TOKEN", t.trim())?;
            Ok(Some(Secret::new(t.trim())))
        }
        None => Ok(None),
    }
}

/// `<section>.personal_access_token`, else the file at
/// `<section>.personal_access_token_file`: the token a section (`[auth]`
/// or an `[[account]]`) configures itself, checked to fit a header line.
pub(super) fn configured_token(
    section: &str,
    token: Option<String>,
    file: Option<PathBuf>,
    warnings: &mut Vec<String>,
) -> Result<Option<Secret>, ConfigError> {
    match (token.filter(|t| !t.trim().is_empty()), file) {
        (Some(t), _) => {
            check_token(&format!("{section}.personal_access_token"), t.trim())?;
            Ok(Some(Secret::new(t.trim())))
        }
        (None, Some(file)) => {
            let key = format!("{section}.personal_access_token_file");
            let file = expand_home(&file);
            warnings.extend(exposed_file("token file", &file));
            let t = std::fs::read_to_string(&file).map_err(|e| {
                ConfigError::invalid(
                    &key,
                    format!("cannot read {}: {e}", file.display()),
                    "point it at a readable file holding only the token",
                )
            })?;
            check_token(&key, t.trim())?;
            Ok(Some(Secret::new(t.trim())))
        }
        (None, None) => Ok(None),
    }
}

/// A token must fit in one HTTP header line.
fn check_token(key: &str, token: &str) -> Result<(), ConfigError> {
    if token.is_empty() {
        return Err(ConfigError::invalid(
            key,
            "is empty",
            "put the token in it, or run `ouradb auth login` to sign in with OAuth2",
        ));
    }
    if token.chars().any(|c| c.is_control() || c == ' ') {
        return Err(ConfigError::invalid(
            key,
            "contains a line break, space or other character a token cannot have",
            "copy the token again as one line with nothing around it",
        ));
    }
    Ok(())
}
