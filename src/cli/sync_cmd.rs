//! `ouradb sync`: every configured account (or the one `--account` names),
//! one after another, each with its own credentials into its own rows.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use super::{Bars, print_reports, require_credentials, summarize};
use crate::config::{AccountConfig, Config};
use crate::registry::DataType;
use crate::store::{Store, StoreHandle};
use crate::sync::{self, RunOptions, TypeReport};

/// What `sync` was asked to do, the same for every account.
pub struct SyncRequest {
    pub types: Vec<&'static DataType>,
    pub opts: RunOptions,
    pub json: bool,
    pub max_wait: std::time::Duration,
}

/// One account's outcome: its reports, or why it did not run to the end.
struct Outcome {
    name: String,
    id: Option<i64>,
    reports: Vec<TypeReport>,
    error: Option<String>,
    ok: bool,
}

pub async fn sync_once(
    config: Arc<Config>,
    accounts: Vec<AccountConfig>,
    request: SyncRequest,
) -> anyhow::Result<ExitCode> {
    let cancel = CancellationToken::new();
    listen_for_signals(cancel.clone())?;
    let store = StoreHandle::new(Store::open(&config.database)?);
    // Several accounts in the config: every report and bar names its own.
    let named = config.accounts.len() > 1;
    let mut outcomes = Vec::with_capacity(accounts.len());
    for account in &accounts {
        if cancel.is_cancelled() {
            break;
        }
        let label = named.then_some(account.name.as_str());
        let outcome = sync_account(&config, account, &store, &cancel, &request, label).await?;
        outcomes.push(outcome);
    }
    if request.json && config.account_entries {
        let nested: Vec<_> = outcomes
            .iter()
            .map(|o| {
                serde_json::json!({
                    "name": o.name, "id": o.id, "error": o.error, "types": o.reports,
                })
            })
            .collect();
        let doc = serde_json::json!({ "accounts": nested });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else if request.json {
        let reports: Vec<&TypeReport> = outcomes.iter().flat_map(|o| &o.reports).collect();
        println!("{}", serde_json::to_string_pretty(&reports)?);
    }
    let ok = outcomes.iter().all(|o| o.ok) && !cancel.is_cancelled();
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// SIGTERM (systemd, `kill`) is handled exactly like Ctrl-C: the page
/// being written commits, nothing further is fetched, and the run ends
/// with its summary and a failure exit code.
fn listen_for_signals(cancel: CancellationToken) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot install signal handlers")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot install signal handlers")?;
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        eprintln!("ouradb: interrupted ({name}); finishing the current page");
        cancel.cancel();
    });
    Ok(())
}

/// One account's run, its report printed (unless `--json`) under its name
/// when `label` is given.
async fn sync_account(
    config: &Config,
    account: &AccountConfig,
    store: &StoreHandle,
    cancel: &CancellationToken,
    request: &SyncRequest,
    label: Option<&str>,
) -> anyhow::Result<Outcome> {
    let who = label.map_or(String::new(), |l| format!("account {l}: "));
    let mut outcome = Outcome {
        name: account.name.clone(),
        id: None,
        reports: Vec::new(),
        error: None,
        ok: false,
    };
    if let Err(e) = require_credentials(&config.for_account(account)) {
        let e = format!("{who}{e}");
        eprintln!("ouradb: {e}");
        outcome.error = Some(e);
        return Ok(outcome);
    }
    let engine =
        sync::account_engine(config, account, store, cancel.clone(), sync::system_clock()).await?;
    outcome.id = Some(engine.store().account().get());
    let bars = Arc::new(Bars::labelled(std::io::stderr().is_terminal(), label));
    set_wait_notice(&engine, &bars, request.max_wait, &who);
    let reports = engine
        .run(&request.types, request.opts, bars.as_ref())
        .await;
    bars.clear();
    if !request.json {
        if let Some(l) = label {
            println!("\naccount {l}:");
        }
        print_reports(&reports);
    }
    outcome.ok = summarize(&reports, cancel.is_cancelled(), &who) == ExitCode::SUCCESS;
    outcome.reports = reports;
    Ok(outcome)
}

/// Rate-limit waits are announced on stderr, naming the account when
/// several are synced.
fn set_wait_notice(
    engine: &sync::SyncEngine,
    bars: &Arc<Bars>,
    max_wait: std::time::Duration,
    who: &str,
) {
    let bars = bars.clone();
    let who = who.to_owned();
    engine.client().set_wait_policy(crate::api::WaitPolicy {
        max_wait: Some(max_wait),
        notify: Some(Arc::new(move |w: &crate::api::RateLimitWait| {
            bars.println(&format!(
                "ouradb: {who}{} for {}; Ctrl-C to stop (--max-wait {})",
                w.describe(),
                w.data_type,
                crate::api::client::human_duration(max_wait)
            ));
        })),
    });
}
