//! `ouradb account ...`: the accounts of the database beside those of the
//! config, and which account a `--account NAME` selects.

use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

use crate::api::text;
use crate::config::{AccountConfig, Config, check_account_name};
use crate::store::{Account, AccountId, Store};

#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// The database's accounts: id, Oura user, documents stored, and
    /// whether the config has credentials for each.
    List {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Add an account to the database (list it as an [[account]] in the
    /// config to sync it).
    Add { name: String },
    /// Rename an account (and then its [[account]] entry in the config).
    Rename { old: String, new: String },
    /// Stop keeping an account: its data stays unless --purge --yes.
    Remove {
        name: String,
        /// Delete every row of the account and the account itself.
        #[arg(long)]
        purge: bool,
        /// Confirm --purge.
        #[arg(long)]
        yes: bool,
    },
}

pub fn run(config: &Config, cmd: AccountCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        AccountCommand::List { json } => list(config, json),
        AccountCommand::Add { name } => add(config, &name),
        AccountCommand::Rename { old, new } => rename(config, &old, &new),
        AccountCommand::Remove { name, purge, yes } => remove(config, &name, purge, yes),
    }
}

/// The configured accounts `--account` selects: `only`, else every one.
pub fn selected<'c>(
    config: &'c Config,
    only: Option<&str>,
) -> anyhow::Result<Vec<&'c AccountConfig>> {
    Ok(match only {
        Some(name) => vec![config.account("--account", name)?],
        None => config.accounts.iter().collect(),
    })
}

/// The database account a configured account syncs into, when the file
/// has it: the first account for a config without [[account]].
pub fn stored_id(
    config: &Config,
    accounts: &[Account],
    account: &AccountConfig,
) -> Option<AccountId> {
    if !config.account_entries {
        return Some(AccountId::FIRST);
    }
    accounts
        .iter()
        .find(|a| a.name == account.name)
        .map(|a| a.id)
}

/// The configured account a database account is, if any.
fn configured<'c>(config: &'c Config, account: &Account) -> Option<&'c AccountConfig> {
    match config.account_entries {
        false => (account.id == AccountId::FIRST).then(|| &config.accounts[0]),
        true => config.accounts.iter().find(|a| a.name == account.name),
    }
}

/// How the config lets an account sign in, in a word or two.
pub fn credentials(config: &Config, account: &AccountConfig) -> &'static str {
    let own = config.for_account(account);
    if own.oauth.token_file.exists() {
        "OAuth"
    } else if own.token.is_some() {
        "token"
    } else if own.oauth.client_id.is_some() {
        "not signed in"
    } else {
        "none"
    }
}

fn open(config: &Config) -> anyhow::Result<Store> {
    Store::open(&config.database)
        .with_context(|| format!("cannot open the database {}", config.database.display()))
}

fn list(config: &Config, json: bool) -> anyhow::Result<ExitCode> {
    let store = Store::open_read_only(&config.database)?;
    let accounts = store.accounts()?;
    let documents = store.documents_per_account()?;
    let rows: Vec<serde_json::Value> = accounts
        .iter()
        .map(|a| {
            let own = configured(config, a);
            serde_json::json!({
                "name": a.name,
                "id": a.id,
                "oura_user_id": a.oura_user_id,
                "email": a.email,
                "documents": documents.get(&a.id).copied().unwrap_or(0),
                "configured": own.is_some(),
                "credentials": own.map(|c| credentials(config, c)),
            })
        })
        .chain(
            // Configured but never synced: not in the file yet.
            config
                .accounts
                .iter()
                .filter(|c| stored_id(config, &accounts, c).is_none())
                .map(|c| {
                    serde_json::json!({
                        "name": c.name, "id": null, "oura_user_id": null, "email": null,
                        "documents": 0, "configured": true,
                        "credentials": credentials(config, c),
                    })
                }),
        )
        .collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print!("{}", list_text(&rows));
    }
    Ok(ExitCode::SUCCESS)
}

/// One account a paragraph, each fact on a line of its own, so even a
/// long e-mail address fits 80 columns.
fn list_text(rows: &[serde_json::Value]) -> String {
    let shown = |v: &serde_json::Value| v.as_str().map(text::one_line);
    let mut out = String::new();
    for r in rows {
        let id = r["id"]
            .as_i64()
            .map_or("not in the database yet".into(), |i| format!("id {i}"));
        let credentials =
            shown(&r["credentials"]).unwrap_or_else(|| "not in config, so not synced".into());
        out.push_str(&format!(
            "{} ({id}): {} documents; credentials: {credentials}\n",
            r["name"].as_str().unwrap_or(""),
            r["documents"]
        ));
        match shown(&r["oura_user_id"]) {
            Some(user) => out.push_str(&format!("    Oura user {user}\n")),
            None => out.push_str("    Oura user not known yet (its first sync records it)\n"),
        }
        if let Some(email) = shown(&r["email"]) {
            out.push_str(&format!("    e-mail {email}\n"));
        }
    }
    out
}

fn add(config: &Config, name: &str) -> anyhow::Result<ExitCode> {
    check_account_name("account name", name)?;
    let mut store = open(config)?;
    if let Some(a) = store.accounts()?.into_iter().find(|a| a.name == name) {
        eprintln!("ouradb: account {name} already exists (id {})", a.id.get());
        return Ok(ExitCode::FAILURE);
    }
    let id = store.add_account(name, crate::clock::now())?;
    println!("added account {name} (id {})", id.get());
    if config.account_entries && config.accounts.iter().all(|a| a.name != name) {
        println!("to sync it, add to the config:\n[[account]]\nname = \"{name}\"");
    }
    Ok(ExitCode::SUCCESS)
}

fn rename(config: &Config, old: &str, new: &str) -> anyhow::Result<ExitCode> {
    check_account_name("account name", new)?;
    let mut store = open(config)?;
    let accounts = store.accounts()?;
    if accounts.iter().any(|a| a.name == new) {
        eprintln!("ouradb: an account named {new} exists already; pick another name");
        return Ok(ExitCode::FAILURE);
    }
    if !store.rename_account(old, new)? {
        eprintln!("ouradb: {}", no_such_account(old, &accounts));
        return Ok(ExitCode::FAILURE);
    }
    println!("renamed account {old} to {new}");
    if config.account_entries && config.accounts.iter().any(|a| a.name == old) {
        println!(
            "rename its [[account]] entry in the config to name = \"{new}\" too, or the next sync adds a new, empty account {old}"
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn no_such_account(name: &str, accounts: &[Account]) -> String {
    let names: Vec<&str> = accounts.iter().map(|a| a.name.as_str()).collect();
    format!(
        "the database has no account {name}; it has: {}",
        names.join(", ")
    )
}

fn remove(config: &Config, name: &str, purge: bool, yes: bool) -> anyhow::Result<ExitCode> {
    let mut store = open(config)?;
    let accounts = store.accounts()?;
    let Some(account) = accounts.iter().find(|a| a.name == name) else {
        eprintln!("ouradb: {}", no_such_account(name, &accounts));
        return Ok(ExitCode::FAILURE);
    };
    if configured(config, account).is_some() {
        let entry = match config.account_entries {
            true => format!("its [[account]] entry (name = \"{name}\")"),
            false => "the config without [[account]] entries, which syncs it".into(),
        };
        eprintln!(
            "ouradb: account {name} is still in the config; remove {entry} first, so it is no longer synced"
        );
        return Ok(ExitCode::FAILURE);
    }
    let documents = store
        .documents_per_account()?
        .get(&account.id)
        .copied()
        .unwrap_or(0);
    if !purge {
        println!(
            "account {name} is not in the config, so it is no longer synced; its {documents} documents stay in the database. To delete them for good: ouradb account remove {name} --purge --yes"
        );
        return Ok(ExitCode::SUCCESS);
    }
    if account.id == AccountId::FIRST {
        eprintln!(
            "ouradb: account {name} (id 1) is the one a config without [[account]] syncs into and is kept; to use it for an [[account]], rename it: ouradb account rename {name} NEW"
        );
        return Ok(ExitCode::FAILURE);
    }
    if !yes {
        eprintln!(
            "ouradb: --purge deletes account {name} and its {documents} documents for good; add --yes to confirm"
        );
        return Ok(ExitCode::FAILURE);
    }
    store.purge_account(account.id)?;
    println!("deleted account {name} and its {documents} documents");
    Ok(ExitCode::SUCCESS)
}

/// The one account a command acting for a single account (`auth`) acts
/// for: `only`, or the config's only account.
pub fn one<'c>(config: &'c Config, only: Option<&str>) -> anyhow::Result<&'c AccountConfig> {
    match (only, config.accounts.as_slice()) {
        (Some(name), _) => Ok(config.account("--account", name)?),
        (None, [one]) => Ok(one),
        (None, several) => {
            let names: Vec<&str> = several.iter().map(|a| a.name.as_str()).collect();
            Err(crate::config::ConfigError::Invalid {
                key: "--account".into(),
                problem: "the config lists several accounts".into(),
                fix: format!("name one of: {}", names.join(", ")),
            }
            .into())
        }
    }
}
