//! `ouradb webhook …`: manage the webhook subscriptions for `callback_url`.

use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

use crate::api::text::{one_line, one_line_cut};
use crate::api::{Subscription, WebhookApi};
use crate::config::{self, Config, ConfigError};
use crate::registry::DataType;
use crate::store::{Store, StoreError};
use crate::webhook::{self, Renewal, Wanted};

#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// Subscribe to create/update/delete events (default: every synced type with webhooks).
    Subscribe {
        /// Only these data types (repeatable).
        #[arg(long = "type", value_name = "TYPE")]
        types: Vec<String>,
    },
    /// List the application's subscriptions at Oura.
    List {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Renew every subscription for `webhook.callback_url` now.
    Renew,
    /// Delete subscriptions for `webhook.callback_url` (default: all of them).
    Unsubscribe {
        /// Only these data types (repeatable).
        #[arg(long = "type", value_name = "TYPE")]
        types: Vec<String>,
    },
    /// The events received, newest first, with the account each was routed
    /// to and what became of it.
    Events {
        /// Only the events of this account (default: every event, those no
        /// account owns included).
        #[arg(long)]
        account: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(config: &Config, cmd: WebhookCommand) -> anyhow::Result<ExitCode> {
    let api = || WebhookApi::new(config);
    let callback = || -> Result<String, ConfigError> {
        config
            .webhook
            .callback_url()
            .map(|u| u.to_string())
            .ok_or_else(|| config::missing_callback_url("is not set"))
    };
    match cmd {
        // Read from the database alone: no application credentials needed.
        WebhookCommand::Events {
            account,
            limit,
            json,
        } => events(config, account.as_deref(), limit, json),
        WebhookCommand::Subscribe { types } => {
            let api = api()?;
            let url = callback()?;
            let token = config
                .webhook
                .verification_token()
                .ok_or_else(|| config::missing_verification_token("is not set"))?;
            let want: Vec<Wanted> = webhook::wanted(&select(config, &types)?);
            // Only creates: renewing is `renew`'s (and the daemon's) job.
            let r = webhook::reconcile(
                &api,
                &url,
                token,
                &want,
                crate::clock::now(),
                Default::default(),
            )
            .await?;
            println!(
                "{} created, {} already subscribed, {} failed",
                r.created,
                r.unchanged + r.already,
                r.failed.len()
            );
            for f in &r.failed {
                eprintln!("ouradb: {f}");
            }
            save(config, &url, &r.subscriptions);
            Ok(if r.failed.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        WebhookCommand::List { json } => {
            let api = api()?;
            let subs = api.list().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&subs)?);
            } else {
                print_table(&subs);
            }
            if let Ok(url) = callback() {
                let ours: Vec<Subscription> = subs
                    .iter()
                    .filter(|s| s.callback_url == url)
                    .cloned()
                    .collect();
                save(config, &url, &ours);
            }
            Ok(ExitCode::SUCCESS)
        }
        WebhookCommand::Renew => {
            let api = api()?;
            let url = callback()?;
            let mut failed = 0;
            let mut renewed = 0;
            for s in &api.list_for(&url).await? {
                match api.renew(&s.id).await {
                    Ok(_) => renewed += 1,
                    Err(e) => {
                        failed += 1;
                        eprintln!("ouradb: {e}");
                    }
                }
            }
            let ours = api.list_for(&url).await?;
            println!("{renewed} renewed, {failed} failed");
            print_table(&ours);
            save(config, &url, &ours);
            Ok(if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        WebhookCommand::Unsubscribe { types } => {
            let api = api()?;
            let url = callback()?;
            let only: Vec<&str> = select(config, &types)?
                .iter()
                .filter_map(|d| d.webhook)
                .collect();
            let mut deleted = 0;
            let mut failed = 0;
            for s in api.list_for(&url).await?.iter().filter(|s| {
                types.is_empty() || only.iter().any(|d| d.eq_ignore_ascii_case(&s.data_type))
            }) {
                match api.delete(&s.id).await {
                    Ok(()) => deleted += 1,
                    Err(e) => {
                        failed += 1;
                        eprintln!("ouradb: {e}");
                    }
                }
            }
            let ours = api.list_for(&url).await?;
            println!("{deleted} deleted, {failed} failed");
            save(config, &url, &ours);
            Ok(if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

/// `--type` values (registry names or webhook data types); the synced
/// types with webhooks when none are given.
fn select(config: &Config, names: &[String]) -> anyhow::Result<Vec<&'static DataType>> {
    if names.is_empty() {
        return Ok(config
            .types
            .iter()
            .copied()
            .filter(|d| d.webhook.is_some())
            .collect());
    }
    names
        .iter()
        .map(|n| {
            webhook::webhook_type(n).ok_or_else(|| {
                let have: Vec<&str> = crate::registry::DATA_TYPES
                    .iter()
                    .filter_map(|d| d.webhook)
                    .collect();
                anyhow::Error::new(ConfigError::Invalid {
                    key: "--type".into(),
                    problem: format!("`{n}` is not a data type with webhooks"),
                    fix: format!("use any of: {}", have.join(", ")),
                })
            })
        })
        .collect()
}

fn print_table(subs: &[Subscription]) {
    let mut t = comfy_table::Table::new();
    t.set_header(["id", "data type", "event", "expires", "callback"]);
    for s in subs {
        // Every field but the time is the server's text.
        t.add_row([
            one_line(&s.id),
            one_line(&s.data_type),
            one_line(&s.event_type),
            s.expiration_time.strftime("%Y-%m-%d %H:%M UTC").to_string(),
            one_line(&s.callback_url),
        ]);
    }
    println!("{t}");
}

/// `ouradb webhook events`: what the receiver recorded, by account.
fn events(config: &Config, only: Option<&str>, limit: u32, json: bool) -> anyhow::Result<ExitCode> {
    let store = Store::open_read_only(&config.database)?;
    let stored = store.accounts()?;
    let account = match only {
        None => None,
        Some(name) => {
            let chosen = super::account::one(config, Some(name))?;
            match super::account::stored_id(config, &stored, chosen) {
                Some(id) => Some(id),
                None => {
                    println!(
                        "account {name} has no data in this database yet, so no events: `ouradb sync --account {name}` adds it"
                    );
                    return Ok(ExitCode::SUCCESS);
                }
            }
        }
    };
    let name_of = |id: Option<crate::store::AccountId>| match id {
        None => None,
        Some(id) => stored.iter().find(|a| a.id == id).map(|a| a.name.clone()),
    };
    let events = store.recent_webhook_events(account, limit)?;
    if json {
        let rows: Vec<serde_json::Value> = events
            .iter()
            .map(|e| {
                serde_json::json!({
                    "received_at": e.received_at.to_string(),
                    "account": name_of(e.account),
                    "event_type": e.event_type,
                    "data_type": e.data_type,
                    "object_id": e.object_id,
                    "event_time": e.event_time,
                    "outcome": e.outcome,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    if events.is_empty() {
        println!("no webhook events recorded");
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = comfy_table::Table::new();
    t.set_header([
        "received",
        "account",
        "event",
        "data type",
        "object id",
        "outcome",
    ]);
    for e in &events {
        // Everything but the time and the account is the server's text.
        t.add_row([
            e.received_at.strftime("%Y-%m-%d %H:%M:%S").to_string(),
            name_of(e.account).unwrap_or_else(|| "-".into()),
            one_line(&e.event_type),
            one_line(&e.data_type),
            one_line_cut(&e.object_id, 40),
            one_line_cut(&e.outcome, 60),
        ]);
    }
    println!("{t}");
    Ok(ExitCode::SUCCESS)
}

/// Best effort: `status` shows what was last recorded.
fn save(config: &Config, url: &str, subs: &[Subscription]) {
    let saved = Store::open(&config.database)
        .context("cannot open the database")
        .and_then(|mut store| {
            webhook::save_subscriptions(&mut store, url, subs, crate::clock::now())
                .context("cannot record subscriptions")
        });
    if let Err(e) = saved {
        tracing::warn!(error = %format!("{e:#}"), "subscriptions not recorded for `ouradb status`");
    }
}

/// The webhook part of `ouradb status`: `None` when webhooks are off and
/// nothing was ever recorded.
pub fn status_section(
    config: &Config,
    store: &Store,
    now: jiff::Timestamp,
) -> Result<Option<String>, StoreError> {
    let day_ago = now - jiff::SignedDuration::from_hours(24);
    let health = store.webhook_health(day_ago)?;
    let enabled = config.webhook.enabled();
    if enabled.is_none() && health.last_event.is_none() && health.subscriptions.is_empty() {
        return Ok(None);
    }
    let mut out = String::new();
    let state = match enabled {
        Some(s) => format!("enabled, listening on {}", s.listen),
        None => "disabled".to_owned(),
    };
    out.push_str(&format!("webhooks: {state}\n"));
    if let Some(url) = config.webhook.callback_url() {
        out.push_str(&format!("callback: {url}\n"));
    }
    match &health.last_event {
        None => out.push_str("last event: never\n"),
        Some(ev) => out.push_str(&format!(
            "last event: {} ({} {} {}: {}); {} in the last 24 h\n",
            ev.received_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
            one_line(&ev.event_type),
            one_line(&ev.data_type),
            one_line_cut(&ev.object_id, 80),
            one_line(&ev.outcome),
            health.recent_events
        )),
    }
    if health.subscriptions.is_empty() {
        out.push_str("subscriptions: none recorded (run `ouradb webhook list`)\n");
        return Ok(Some(out));
    }
    let mut t = comfy_table::Table::new();
    t.set_header(["data type", "event", "expires", "state", "checked"]);
    for s in &health.subscriptions {
        let state = match Renewal::of(s.expiration_time, now) {
            Renewal::Expired => "expired",
            Renewal::Due => "renewal due",
            Renewal::Current => "ok",
        };
        t.add_row([
            one_line(&s.data_type),
            one_line(&s.event_type),
            s.expiration_time.strftime("%Y-%m-%d %H:%M UTC").to_string(),
            state.to_owned(),
            s.checked_at.strftime("%Y-%m-%d %H:%M UTC").to_string(),
        ]);
    }
    out.push_str(&format!("{t}\n"));
    Ok(Some(out))
}
