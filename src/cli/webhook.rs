//! `ouradb webhook …`: manage the webhook subscriptions for `callback_url`.

use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

use crate::config::{Config, ConfigError};
use crate::registry::DataType;
use crate::store::Store;
use crate::webhook::{self, Subscription, Wanted, WebhookApi};

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
}

pub async fn run(config: &Config, cmd: WebhookCommand) -> anyhow::Result<ExitCode> {
    let api = WebhookApi::new(config)?;
    let callback = || -> anyhow::Result<String> {
        config
            .webhook
            .callback_url
            .as_ref()
            .map(|u| u.to_string())
            .ok_or_else(|| {
                anyhow::Error::new(ConfigError::Invalid {
                    key: "webhook.callback_url".into(),
                    problem: "is not set".into(),
                    fix: "set the public https URL Oura should call".into(),
                })
            })
    };
    match cmd {
        WebhookCommand::Subscribe { types } => {
            let url = callback()?;
            let token = config.webhook.verification_token.clone().ok_or_else(|| {
                anyhow::Error::new(ConfigError::Invalid {
                    key: "webhook.verification_token".into(),
                    problem: "is not set".into(),
                    fix: "set a long random string (or OURA_WEBHOOK_VERIFICATION_TOKEN)".into(),
                })
            })?;
            let want: Vec<Wanted> = webhook::wanted(&select(config, &types)?);
            // Only creates: renewing is `renew`'s (and the daemon's) job.
            let r = webhook::reconcile(
                &api,
                &url,
                &token,
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
            let url = callback()?;
            let mut failed = 0;
            let mut renewed = 0;
            for s in api.list().await?.iter().filter(|s| s.callback_url == url) {
                match api.renew(&s.id).await {
                    Ok(_) => renewed += 1,
                    Err(e) => {
                        failed += 1;
                        eprintln!("ouradb: {e}");
                    }
                }
            }
            let ours = subscriptions_for(&api, &url).await?;
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
            let url = callback()?;
            let only: Vec<&str> = select(config, &types)?
                .iter()
                .filter_map(|d| d.webhook)
                .collect();
            let mut deleted = 0;
            let mut failed = 0;
            for s in api.list().await?.iter().filter(|s| {
                s.callback_url == url
                    && (types.is_empty()
                        || only.iter().any(|d| d.eq_ignore_ascii_case(&s.data_type)))
            }) {
                match api.delete(&s.id).await {
                    Ok(()) => deleted += 1,
                    Err(e) => {
                        failed += 1;
                        eprintln!("ouradb: {e}");
                    }
                }
            }
            let ours = subscriptions_for(&api, &url).await?;
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
        t.add_row([
            s.id.clone(),
            s.data_type.clone(),
            s.event_type.clone(),
            s.expiration_time.strftime("%Y-%m-%d %H:%M UTC").to_string(),
            s.callback_url.clone(),
        ]);
    }
    println!("{t}");
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

/// The subscriptions that point at our callback URL.
async fn subscriptions_for(api: &WebhookApi, url: &str) -> anyhow::Result<Vec<Subscription>> {
    Ok(api
        .list()
        .await?
        .into_iter()
        .filter(|s| s.callback_url == url)
        .collect())
}
