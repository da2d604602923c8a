//! `ouradb demo`: the bundled Oura simulator on 127.0.0.1, a sync of its
//! persons into one file (one account each), then the file's status and
//! dashboards.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use jiff::civil::Date;
use ouradb_sim::{SimConfig, SimServer};
use tokio_util::sync::CancellationToken;

use super::{Bars, dashboards, print_reports};
use crate::config::{AccountConfig, Config, DEFAULT_ACCOUNT_NAME, Secret};
use crate::store::{Store, StoreHandle};
use crate::sync::{self, RunOptions, TypeReport};

/// The simulator's seed: every demo shows the same persons.
const SEED: u64 = 7;

/// The first person's token; person `n` (from 2) has `demo-token-n`.
const TOKEN: &str = "demo-token";

/// The simulator the demo syncs from: `persons` persons of `days` days of
/// history ending `today`.
pub fn sim_config(days: u32, today: Date, persons: usize) -> SimConfig {
    let mut cfg = SimConfig::new(SEED, days, today);
    cfg.tokens = vec![TOKEN.to_owned()];
    // The demo's own request log would only grow; nothing reads it.
    cfg.log_requests = false;
    // Two weeks of raw beats (~350,000 rows) fill the interbeat chart; the
    // whole history would be ~27 requests a night, mostly waiting on the
    // simulated quota.
    cfg.interbeat_days = Some(14);
    cfg.with_persons(persons)
}

/// The demo's accounts, one per simulated person: the file's first
/// account (`default`) is the first person, `person-n` the n-th.
pub fn accounts(persons: usize, database: &Path) -> Vec<AccountConfig> {
    (1..=persons.max(1))
        .map(|n| {
            let (name, token) = match n {
                1 => (DEFAULT_ACCOUNT_NAME.to_owned(), TOKEN.to_owned()),
                n => (format!("person-{n}"), format!("{TOKEN}-{n}")),
            };
            AccountConfig {
                token_file: database.with_file_name(format!("tokens-{name}.json")),
                name,
                token: Some(Secret::new(token)),
            }
        })
        .collect()
}

/// The configuration the demo syncs with: the simulator at `base_url`,
/// `days` of backfill, the demo's accounts for `persons` persons.
pub fn config(base_url: &str, database: PathBuf, days: u32, today: Date, persons: usize) -> Config {
    let mut config = Config::for_base_url(base_url, TOKEN, database.clone());
    config.backfill_start = today.saturating_sub(jiff::Span::new().days(days as i64));
    config.accounts = accounts(persons, &database);
    config.account_entries = persons > 1;
    config
}

pub async fn run(database: PathBuf, days: u32, persons: u16) -> anyhow::Result<ExitCode> {
    let persons = usize::from(persons);
    let today = crate::clock::now().to_zoned(jiff::tz::TimeZone::UTC).date();
    eprintln!(
        "starting the Oura API simulator with {persons} person(s), {days} days of synthetic history each..."
    );
    let sim = SimServer::start(sim_config(days, today, persons))
        .await
        .context("cannot start the built-in simulator")?;
    eprintln!("simulator listening on {}", sim.base_url());
    let config = Arc::new(config(
        &sim.base_url(),
        database.clone(),
        days,
        today,
        persons,
    ));
    let started = std::time::Instant::now();
    let reports = sync_every_account(&config).await;
    let elapsed = started.elapsed();
    sim.stop().await;
    let reports = reports?;

    super::status(&config, false, None)?;
    let all = reports.iter().flatten();
    let failed = all.clone().any(|r| r.error.is_some());
    println!(
        "synced {} rows with {} requests in {:.1} s into {}",
        all.clone()
            .map(|r| r.counts.inserted + r.counts.updated)
            .sum::<u64>(),
        all.map(|r| r.requests as u64).sum::<u64>(),
        elapsed.as_secs_f64(),
        database.display()
    );
    println!(
        "open it with: sqlite3 {} 'SELECT * FROM daily_summary ORDER BY day DESC LIMIT 7'",
        database.display()
    );
    let installed = dashboards::install(&database, &dashboards::default_dir(&database))?;
    println!("{}", dashboards::instructions(&installed, 8001));
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Each account's backfill in turn, its reports printed (under its name
/// when there are several).
async fn sync_every_account(config: &Config) -> anyhow::Result<Vec<Vec<TypeReport>>> {
    let store = StoreHandle::new(Store::open(&config.database)?);
    let named = config.accounts.len() > 1;
    let mut all = Vec::with_capacity(config.accounts.len());
    for account in &config.accounts {
        let label = named.then_some(account.name.as_str());
        let engine = sync::account_engine(
            config,
            account,
            &store,
            CancellationToken::new(),
            sync::system_clock(),
        )
        .await?;
        let bars = Bars::labelled(std::io::stderr().is_terminal(), label);
        let options = RunOptions {
            since: None,
            backfill: true,
        };
        let reports = engine.run(&config.types, options, &bars).await;
        bars.clear();
        if let Some(name) = label {
            println!("\naccount {name}:");
        }
        print_reports(&reports);
        all.push(reports);
    }
    Ok(all)
}
