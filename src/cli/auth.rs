//! `ouradb auth …`: sign in, show, refresh and sign out of OAuth2.

use std::process::ExitCode;

use clap::Subcommand;

use crate::api::auth::TokenSource;
use crate::api::oauth::{self, LoginOptions, OAuthSource};
use crate::api::text::one_line;
use crate::config::Config;
use crate::store::{AccountId, Claim, Store};

#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Sign in with Oura (OAuth2 authorization code) and store the tokens.
    Login {
        /// Print the authorization URL without opening a browser.
        #[arg(long)]
        no_browser: bool,
    },
    /// Show the stored grant: user, scopes, expiry, state (never a token).
    Status {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Refresh the access token now (checks that the stored grant works).
    Refresh,
    /// Revoke the grant at Oura, then delete the stored tokens.
    Logout {
        /// Delete the local tokens even when revocation fails.
        #[arg(long)]
        force: bool,
    },
}

/// Runs `cmd` for the account `account` (whose credentials `config` holds).
pub async fn run(config: &Config, account: &str, cmd: AuthCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        AuthCommand::Login { no_browser } => login(config, account, !no_browser).await,
        AuthCommand::Status { json } => status(config, json),
        AuthCommand::Refresh => {
            let source = OAuthSource::new(config);
            source.refresh_now().await?;
            // Proves the new token is usable from the file, as a restart would.
            source.access_token().await?;
            let st = source.state();
            println!(
                "refreshed; access token valid until {}",
                st.access_expires_at
                    .map(|t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
                    .unwrap_or_else(|| "-".into())
            );
            Ok(ExitCode::SUCCESS)
        }
        AuthCommand::Logout { force } => {
            let revoked = oauth::logout(config, force).await?;
            if revoked {
                println!(
                    "revoked the grant and deleted {}",
                    config.oauth.token_file.display()
                );
            } else {
                println!(
                    "deleted {} (revocation failed; remove ouradb's access in your Oura account settings)",
                    config.oauth.token_file.display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn login(config: &Config, account: &str, open_browser: bool) -> anyhow::Result<ExitCode> {
    let loopback = oauth::redirect_is_loopback(&config.oauth.redirect_uri);
    let opts = LoginOptions::new(open_browser, move |u| {
        println!("Open this URL to sign in with Oura:");
        // On its own line so it can be copied or clicked in any terminal.
        println!("{u}");
        if loopback {
            println!("Waiting for the redirect back to this machine…");
        } else {
            println!("Then paste the full URL your browser was redirected to (or just the code):");
        }
    });
    let out = oauth::login(config, opts).await?;
    if let Some(id) = &out.user_id
        && let Some(refusal) = claim(config, account, id)?
    {
        // The tokens are this sign-in's own: dropping them leaves the other
        // account's grant as it is (revoking could end that one too).
        let _ = std::fs::remove_file(&out.token_file);
        eprintln!("ouradb: {refusal}");
        return Ok(ExitCode::FAILURE);
    }
    println!("Signed in. Tokens stored in {}", out.token_file.display());
    // The user id and the scopes are the server's words.
    if let Some(id) = &out.user_id {
        println!("user id: {}", one_line(id));
    }
    println!("granted scopes: {}", one_line(&out.scopes.join(" ")));
    if !out.missing_scopes.is_empty() {
        println!(
            "not granted: {} (data types needing these are skipped)",
            out.missing_scopes.join(" ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Records that `account` signs in as the Oura user `user_id`; the reason
/// to refuse the sign-in when another account is that user, or the account
/// holds another user's data.
fn claim(config: &Config, account: &str, user_id: &str) -> anyhow::Result<Option<String>> {
    let mut store = Store::open(&config.database)?;
    // The account `sync` writes: a config without `[[account]]` syncs the
    // file's first account, whatever it is called now.
    let id = if config.account_entries {
        store.add_account(account, crate::clock::now())?
    } else {
        AccountId::FIRST
    };
    let user = one_line(user_id);
    Ok(match store.claim_oura_user(id, user_id, None)? {
        Claim::Claimed => None,
        Claim::TakenBy(other) => Some(format!(
            "account {account} signed in as Oura user {user}, which account {other} already is; \
                 each account needs its own Oura sign-in: run `ouradb auth login --account {account}` \
                 again and sign in as the other person (a private browser window keeps Oura's \
                 session of the first person out of the way); nothing was stored"
        )),
        Claim::HoldsAnother(previous) => Some(format!(
            "account {account} holds the data of Oura user {}, not {user}; sign in as that \
                 person, or add an [[account]] of its own for this one; nothing was stored",
            one_line(&previous)
        )),
    })
}

fn status(config: &Config, json: bool) -> anyhow::Result<ExitCode> {
    let st = oauth::auth_state(&config.oauth)?;
    let using_oauth = oauth::uses_oauth(config);
    // The remembered endpoint is where the next refresh goes; without one,
    // the configured endpoint is tried first.
    let endpoint = st
        .token_endpoint
        .clone()
        .unwrap_or_else(|| config.oauth.token_url.to_string());
    if json {
        let mut v = serde_json::to_value(&st)?;
        v["token_endpoint"] = endpoint.clone().into();
        v["method"] = if using_oauth {
            "oauth".into()
        } else if config.token.is_some() {
            "personal_access_token".into()
        } else {
            "none".into()
        };
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    if !st.signed_in {
        if config.token.is_some() && !using_oauth {
            println!(
                "using a personal access token (deprecated by Oura); run `ouradb auth login` to switch to OAuth2"
            );
        } else {
            println!("not signed in; run `ouradb auth login`");
        }
        return Ok(ExitCode::SUCCESS);
    }
    println!("token file: {}", st.token_file.display());
    println!(
        "user id: {}",
        one_line(st.user_id.as_deref().unwrap_or("unknown"))
    );
    println!("scopes: {}", one_line(&st.scopes.join(" ")));
    let portal = match &config.oauth.fallback_token_url {
        Some(f) if f.as_str() == endpoint => " (fallback: Oura's newer developer portal)",
        _ => "",
    };
    println!("token endpoint: {endpoint}{portal}");
    let missing: Vec<&str> = config
        .oauth
        .scopes
        .iter()
        .filter(|s| !st.has_scope(s))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        println!("not granted: {}", missing.join(" "));
    }
    if let Some(at) = st.access_expires_at {
        let now = crate::clock::now();
        let when = at.strftime("%Y-%m-%d %H:%M:%S UTC");
        if at > now {
            println!("access token expires: {when} (refreshed automatically)");
        } else {
            println!("access token expired: {when} (refreshed on next use)");
        }
    }
    match &st.reauth_required {
        Some(reason) => {
            println!("state: re-authorization required: {}", one_line(reason));
            println!(
                "run `ouradb auth login` to sign in again; a running daemon resumes by itself"
            );
            Ok(ExitCode::FAILURE)
        }
        None => {
            println!("state: active");
            Ok(ExitCode::SUCCESS)
        }
    }
}
