//! `[[account]]`: the Oura accounts synced into the one database, each with
//! its own credentials. Without any entry there is one implicit account,
//! `default`, using `[auth]`'s token and token file, as before accounts.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::auth::{RawAuth, configured_token};
use super::defaults::{DEFAULT_ACCOUNT_NAME, MAX_ACCOUNT_NAME_CHARS, account_token_file};
use super::warnings::exposed_file;
use super::{ConfigError, Secret, expand_home};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAccount {
    name: Option<String>,
    pub personal_access_token: Option<String>,
    personal_access_token_file: Option<PathBuf>,
    token_file: Option<PathBuf>,
}

/// One account of the config: its name (the `account` row it syncs into)
/// and its own credentials.
#[derive(Debug, Clone)]
pub struct AccountConfig {
    pub name: String,
    /// Its personal access token, when it has one.
    pub token: Option<Secret>,
    /// Where its OAuth tokens are kept (mode 0600).
    pub token_file: PathBuf,
}

impl AccountConfig {
    /// The account of a config without `[[account]]`: `[auth]`'s
    /// credentials under the name the first account has in every file.
    pub(super) fn implicit(token: Option<Secret>, token_file: PathBuf) -> AccountConfig {
        AccountConfig {
            name: DEFAULT_ACCOUNT_NAME.to_owned(),
            token,
            token_file,
        }
    }
}

/// Validates the `[[account]]` entries. `auth_token_file` is `[auth]`'s
/// token file, whose folder holds the accounts' own by default.
pub(super) fn accounts(
    raw: Vec<RawAccount>,
    auth: &RawAuth,
    auth_token_file: &Path,
    warnings: &mut Vec<String>,
) -> Result<Vec<AccountConfig>, ConfigError> {
    if !raw.is_empty() {
        refuse_shared_token(auth)?;
    }
    let folder = auth_token_file.parent().unwrap_or(Path::new("."));
    let mut out: Vec<AccountConfig> = Vec::with_capacity(raw.len());
    for (i, a) in raw.into_iter().enumerate() {
        let name = name(a.name, i + 1)?;
        if out.iter().any(|o| o.name == name) {
            return Err(ConfigError::invalid(
                "account.name",
                format!("`{name}` names two [[account]] entries"),
                "give each [[account]] its own name",
            ));
        }
        let section = format!("account.{name}");
        let token = configured_token(
            &section,
            a.personal_access_token,
            a.personal_access_token_file,
            warnings,
        )?;
        let token_file = a
            .token_file
            .map(|p| expand_home(&p))
            .unwrap_or_else(|| account_token_file(folder, &name));
        if token_file.file_name().is_none() {
            return Err(ConfigError::invalid(
                &format!("{section}.token_file"),
                "is not a file path",
                format!("give a file path such as \"~/.local/share/ouradb/tokens-{name}.json\""),
            ));
        }
        if let Some(other) = out.iter().find(|o| o.token_file == token_file) {
            return Err(ConfigError::invalid(
                &format!("{section}.token_file"),
                format!("is account `{}`'s token file too", other.name),
                "give each account its own token file (or leave it out for the default)",
            ));
        }
        warnings.extend(exposed_file("token file", &token_file));
        out.push(AccountConfig {
            name,
            token,
            token_file,
        });
    }
    Ok(out)
}

/// A token in `[auth]` belongs to one Oura user: with several accounts it
/// would be nobody's, so it must move into its account's entry.
fn refuse_shared_token(auth: &RawAuth) -> Result<(), ConfigError> {
    let set = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.trim().is_empty());
    let key = if set(&auth.personal_access_token) {
        "auth.personal_access_token"
    } else if auth.personal_access_token_file.is_some() {
        "auth.personal_access_token_file"
    } else {
        return Ok(());
    };
    let own = key.trim_start_matches("auth.");
    Err(ConfigError::invalid(
        key,
        "is set while the file lists [[account]] entries, so it belongs to no account",
        format!("move it into the [[account]] whose Oura user it belongs to (as `{own}`)"),
    ))
}

/// The entry's `name` (see [`check_account_name`]).
fn name(name: Option<String>, position: usize) -> Result<String, ConfigError> {
    let Some(name) = name else {
        return Err(ConfigError::invalid(
            "account.name",
            format!("[[account]] number {position} has no name"),
            "add e.g. name = \"alice\" to it",
        ));
    };
    check_account_name("account.name", &name)?;
    Ok(name)
}

/// An account name (for `key`): 1 to 32 characters of `a-z`, `0-9`, `_`
/// and `-`, so it fits a status heading and a shell word.
pub fn check_account_name(key: &str, name: &str) -> Result<(), ConfigError> {
    let valid = (1..=MAX_ACCOUNT_NAME_CHARS).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !valid {
        return Err(ConfigError::invalid(
            key,
            // Debug quoting: control characters in it cannot reach the terminal.
            format!("{name:?} is not an account name"),
            format!(
                "use 1 to {MAX_ACCOUNT_NAME_CHARS} characters of a-z, 0-9, _ and -, e.g. \"alice\""
            ),
        ));
    }
    Ok(())
}
