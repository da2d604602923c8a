//! Command-line interface: argument parsing, progress bars, tables, exit codes.
//! This is the binary's edge, the only place `anyhow` is used.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
#[allow(clippy::disallowed_types, reason = "never held across an .await")]
use std::sync::{Arc, Mutex};

mod account;
mod assets;
mod auth;
mod backup;
mod coverage;
pub mod dashboards;
pub mod demo;
mod sync_cmd;
pub mod webhook;

use anyhow::Context;
use clap::{Parser, Subcommand};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use jiff::Timestamp;
use jiff::civil::Date;

use crate::api::text;
use crate::config::{Config, ConfigError, LogFormat};
use crate::error_kind::ErrorKind;
use crate::registry::{self, DataType};
use crate::store::{Store, SyncState};
use crate::sync::{self, Observer, RunOptions, TypeReport};

#[derive(Debug, Parser)]
#[command(
    name = "ouradb",
    version,
    about = "Keeps a complete, always-current copy of your Oura Ring data in SQLite"
)]
pub struct Cli {
    /// Config file (default: ~/.config/ouradb/daemon.toml).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run continuously: scheduled incremental and backfill jobs per data type.
    Daemon,
    /// Sync once: each type's incremental job, and its backfill while incomplete.
    Sync {
        /// Only these data types (repeatable).
        #[arg(long = "type", value_name = "TYPE")]
        types: Vec<String>,
        /// Re-fetch from this day (YYYY-MM-DD) instead of the cursor.
        #[arg(long, value_name = "DATE")]
        since: Option<Date>,
        /// Skip backfill jobs.
        #[arg(long)]
        no_backfill: bool,
        /// Print the per-type summary as JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Longest total wait on Oura's rate limit (e.g. 90s, 5m, 1h); past
        /// it the waiting types end as rate-limited and the run says so.
        #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
        max_wait: std::time::Duration,
        /// Only this account (default: every configured account, one after another).
        #[arg(long, value_name = "NAME")]
        account: Option<String>,
    },
    /// Show each data type's cursor, freshness and last error.
    Status {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// Only this account (default: every configured account).
        #[arg(long, value_name = "NAME")]
        account: Option<String>,
    },
    /// The database's accounts; add, rename or remove one.
    Account {
        #[command(subcommand)]
        cmd: account::AccountCommand,
    },
    /// Sign in with Oura (OAuth2), show the grant, refresh or sign out.
    Auth {
        /// The account to sign in, show or sign out (needed when the
        /// config lists several).
        #[arg(long, value_name = "NAME", global = true)]
        account: Option<String>,
        #[command(subcommand)]
        cmd: auth::AuthCommand,
    },
    /// Manage Oura webhook subscriptions for `webhook.callback_url`.
    Webhook {
        #[command(subcommand)]
        cmd: webhook::WebhookCommand,
    },
    /// Write the Datasette and Grafana dashboards for the database and print
    /// how to open them (or start Datasette with --serve).
    Dashboards {
        /// Database file (default: the configured `storage.database`).
        #[arg(long, value_name = "FILE")]
        database: Option<PathBuf>,
        /// Folder to write the files to (default: `<database stem>-dashboards` beside the database).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Start Datasette on the dashboard when it is installed.
        #[arg(long)]
        serve: bool,
        /// Port for Datasette.
        #[arg(long, default_value_t = 8001)]
        port: u16,
    },
    /// Write a consistent copy of the database to DEST, also while the
    /// daemon writes (VACUUM INTO, integrity_check, fsync, atomic rename).
    Backup {
        /// The backup file to write.
        #[arg(value_name = "DEST")]
        dest: PathBuf,
        /// Replace DEST when it exists.
        #[arg(long)]
        force: bool,
        /// Database file (default: the configured `storage.database`).
        #[arg(long, value_name = "FILE")]
        database: Option<PathBuf>,
    },
    /// Check a database file (integrity, foreign keys, schema) and say how
    /// to recover from what is wrong.
    Check {
        /// Database file (default: the configured `storage.database`).
        #[arg(long, value_name = "FILE")]
        database: Option<PathBuf>,
    },
    /// Compare an Oura OpenAPI document with what ouradb knows: collections,
    /// fields and enum values either side lacks. Exit 0: nothing unknown
    /// beyond the declared deviations; 1: findings; 2: unreadable spec.
    Coverage {
        /// The OpenAPI JSON (see the README on fetching the current one).
        #[arg(long, value_name = "FILE")]
        spec: PathBuf,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Write the shell completions, man pages and systemd unit the Debian
    /// package ships into DIR (run by the package build).
    #[command(hide = true)]
    GenerateAssets {
        /// Folder to write into (created when missing).
        dir: PathBuf,
    },
    /// Sync two simulated years from the built-in simulator into a local file.
    Demo {
        /// Database file to create.
        #[arg(long, default_value = "ouradb-demo.sqlite")]
        database: PathBuf,
        /// Days of simulated history.
        #[arg(long, default_value_t = 730)]
        days: u32,
        /// Simulated persons, each synced as an account of its own (a
        /// household in one file).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=10))]
        accounts: u16,
    },
}

/// Exit code for configuration errors.
const EXIT_CONFIG: u8 = 2;

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            if let Some(ce) = e.downcast_ref::<ConfigError>() {
                eprintln!("ouradb: {ce}");
                return ExitCode::from(EXIT_CONFIG);
            }
            // An error may carry a server's words (older ones from the
            // database too): nothing in it may drive the terminal.
            eprintln!("ouradb: {}", text::multi_line(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Command::GenerateAssets { dir } = &cli.command {
        return assets::generate(dir);
    }
    if let Command::Coverage { spec, json } = &cli.command {
        return coverage::run(spec, *json);
    }
    if let Command::Demo {
        database,
        days,
        accounts,
    } = &cli.command
    {
        init_logging("warn", LogFormat::Auto);
        return block_on(demo::run(database.clone(), *days, *accounts))?;
    }
    if let Command::Dashboards {
        database: Some(db),
        dir,
        serve,
        port,
    } = &cli.command
    {
        // An explicit file needs no configuration (e.g. the demo database).
        return dashboards::run(db, dir.as_deref(), *serve, *port);
    }
    // An explicit file needs no configuration here either.
    match &cli.command {
        Command::Backup {
            dest,
            force,
            database: Some(db),
        } => return backup::backup(db, dest, *force),
        Command::Check { database: Some(db) } => return backup::check(db),
        _ => {}
    }
    let config = Config::load(cli.config.as_deref())?;
    init_logging(&config.log_level, config.log_format);
    for w in &config.warnings {
        // The daemon's stderr is its log; a command's is the user's screen.
        if matches!(cli.command, Command::Daemon) {
            tracing::warn!("{w}");
        } else {
            eprintln!("ouradb: warning: {w}");
        }
    }
    match cli.command {
        Command::Status { json, account } => status(&config, json, account.as_deref()),
        Command::Account { cmd } => account::run(&config, cmd),
        Command::Sync {
            types,
            since,
            no_backfill,
            json,
            max_wait,
            account,
        } => {
            let types = select_types(&config, &types)?;
            let accounts: Vec<_> = account::selected(&config, account.as_deref())?
                .into_iter()
                .cloned()
                .collect();
            if let [one] = accounts.as_slice() {
                require_credentials(&config.for_account(one))?;
            }
            let request = sync_cmd::SyncRequest {
                types,
                opts: RunOptions {
                    since,
                    backfill: !no_backfill,
                },
                json,
                max_wait,
            };
            block_on(sync_cmd::sync_once(Arc::new(config), accounts, request))?
        }
        Command::Daemon => {
            if let [one] = config.accounts.as_slice() {
                require_credentials(&config.for_account(one))?;
            }
            crate::daemon::limit_malloc_arenas();
            Ok(block_on(crate::daemon::run(Arc::new(config)))??)
        }
        Command::Auth { cmd, account } => {
            let chosen = account::one(&config, account.as_deref())?;
            let own = config.for_account(chosen);
            block_on(auth::run(&own, &chosen.name, cmd))?
        }
        Command::Webhook { cmd } => block_on(webhook::run(&config, cmd))?,
        Command::Dashboards {
            dir, serve, port, ..
        } => dashboards::run(&config.database, dir.as_deref(), serve, port),
        Command::Backup { dest, force, .. } => backup::backup(&config.database, &dest, force),
        Command::Check { .. } => backup::check(&config.database),
        Command::Demo { .. } | Command::GenerateAssets { .. } | Command::Coverage { .. } => {
            unreachable!("handled above")
        }
    }
}

/// `90s`, `5m`, `1h30m`, `2 hours`: anything jiff's friendly duration
/// format or ISO 8601 reads.
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let d: jiff::SignedDuration = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a duration; use e.g. 90s, 5m or 1h"))?;
    std::time::Duration::try_from(d).map_err(|_| format!("`{text}` is negative"))
}

/// Stops before any request when there is nothing to authenticate with
/// (`config` as one account syncs with it, [`Config::for_account`]).
fn require_credentials(config: &Config) -> anyhow::Result<()> {
    if config.token.is_none() && !crate::api::oauth::uses_oauth(config) {
        if let (true, [account]) = (config.account_entries, config.accounts.as_slice()) {
            return Err(ConfigError::Invalid {
                key: format!("account.{}.personal_access_token", account.name),
                problem: format!("account {} has no Oura credentials, so nothing was requested for it", account.name),
                fix: format!("set it (or personal_access_token_file) in its [[account]] entry, or keep its OAuth tokens in {}", account.token_file.display()),
            }
            .into());
        }
        return Err(ConfigError::Invalid {
            key: "auth.personal_access_token".into(),
            problem: "no Oura credentials are configured (the token is empty or missing), so nothing was requested".into(),
            fix: "set it (or OURA_TOKEN), or run `ouradb auth login` to sign in with OAuth2".into(),
        }
        .into());
    }
    Ok(())
}

/// How long the end of a command waits for blocking store calls still
/// running. Once the work has returned (the daemon after giving its jobs
/// [`crate::daemon::SHUTDOWN_GRACE`]), what is left is waiting for another
/// process's lock: dropping the runtime would wait for every queued call to
/// time out in turn, holding a SIGTERM for many seconds, and exiting instead
/// rolls their open transactions back, as a kill would.
const EXIT_WAIT: std::time::Duration = std::time::Duration::from_millis(250);

/// Runs `work` on a new multi-threaded runtime and shuts it down, waiting at
/// most [`EXIT_WAIT`] for blocking calls left over.
fn block_on<F: std::future::Future>(work: F) -> anyhow::Result<F::Output> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let out = rt.block_on(work);
    rt.shutdown_timeout(EXIT_WAIT);
    Ok(out)
}

fn select_types(config: &Config, names: &[String]) -> anyhow::Result<Vec<&'static DataType>> {
    if names.is_empty() {
        return Ok(config.types.clone());
    }
    names
        .iter()
        .map(|n| {
            registry::find(n).ok_or_else(|| {
                anyhow::Error::new(ConfigError::Invalid {
                    key: "--type".into(),
                    problem: format!("unknown data type `{n}`"),
                    fix: format!("use any of: {}", registry::names().join(", ")),
                })
            })
        })
        .collect()
}

/// Logs: colourful on a terminal; plain lines without timestamps under
/// systemd, whose journal stamps every line itself.
pub fn init_logging(level: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("OURADB_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    // why: whether systemd runs us is not configuration; only its journal sets this.
    #[allow(clippy::disallowed_methods, reason = "set by systemd, not a setting")]
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let tty = std::io::stderr().is_terminal();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Pretty => builder.with_ansi(tty).try_init(),
        LogFormat::Plain => builder.with_ansi(false).without_time().try_init(),
        LogFormat::Auto if journald || !tty => builder.with_ansi(false).without_time().try_init(),
        LogFormat::Auto => builder.with_ansi(true).try_init(),
    };
}

/// The closing line of `sync` and its exit code: types skipped for a scope
/// that was not granted are reported but are not failures. `who` starts
/// each line (`account NAME: ` when several accounts are synced).
fn summarize(reports: &[TypeReport], interrupted: bool, who: &str) -> ExitCode {
    let skipped: Vec<&str> = reports
        .iter()
        .filter(|r| r.error_kind == Some(ErrorKind::ScopeNotGranted))
        .map(|r| r.data_type)
        .collect();
    // Refused to this application alone: reported, asked again daily, no
    // failure of the run.
    let not_available: Vec<&str> = reports
        .iter()
        .filter(|r| r.error_kind == Some(ErrorKind::NotAvailable))
        .map(|r| r.data_type)
        .collect();
    let failed: Vec<&TypeReport> = reports
        .iter()
        .filter(|r| r.error.is_some())
        .filter(|r| {
            !matches!(
                r.error_kind,
                Some(ErrorKind::ScopeNotGranted | ErrorKind::NotAvailable)
            )
        })
        .collect();
    if !skipped.is_empty() {
        eprintln!(
            "ouradb: {who}skipped {} (scope not granted; run `ouradb auth login` granting it to sync them)",
            skipped.join(", ")
        );
    }
    if !not_available.is_empty() {
        eprintln!(
            "ouradb: {who}not available to this application: {} (refused while other collections work; {}; asked again once a day, see `ouradb status`)",
            not_available.join(", "),
            crate::api::error::NOT_AVAILABLE_FIX
        );
    }
    if let Some(scopes) = sync::scopes_missing_for_every_type(reports) {
        eprintln!(
            "ouradb: {who}nothing synced: every data type was skipped because the grant lacks its scope (not granted: {}); run `ouradb auth login` granting them (auth.scopes in the config file lists what is asked for)",
            scopes.join(" ")
        );
        return ExitCode::FAILURE;
    }
    if interrupted {
        let unfinished = failed
            .iter()
            .filter(|r| r.error_kind == Some(ErrorKind::Cancelled))
            .count();
        eprintln!(
            "ouradb: {who}interrupted; {unfinished} data type(s) not finished, every committed page is kept: run `ouradb sync` again to continue"
        );
        return ExitCode::FAILURE;
    }
    let rate_limited: Vec<&str> = failed
        .iter()
        .filter(|r| r.error_kind == Some(ErrorKind::RateLimited))
        .map(|r| r.data_type)
        .collect();
    if !rate_limited.is_empty() {
        eprintln!(
            "ouradb: {who}rate-limited by Oura: {} stopped waiting; run `ouradb sync` again later",
            rate_limited.join(", ")
        );
    }
    if !failed.is_empty() {
        eprintln!(
            "ouradb: {who}{} data type(s) failed; see `ouradb status` for details",
            failed.len()
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn print_reports(reports: &[TypeReport]) {
    let mut t = comfy_table::Table::new();
    t.set_header([
        "data type",
        "inserted",
        "updated",
        "unchanged",
        "deleted",
        "quarantined",
        "requests",
        "result",
    ]);
    for r in reports {
        let result = match (&r.error, r.skipped_busy) {
            // The whole text follows the table, one line per type.
            (Some(e), _) => cut(e, 60),
            (None, true) => "skipped: already running".into(),
            (None, false) => "ok".into(),
        };
        t.add_row([
            r.data_type.to_string(),
            r.counts.inserted.to_string(),
            r.counts.updated.to_string(),
            r.counts.unchanged.to_string(),
            r.counts.deleted.to_string(),
            r.counts.quarantined.to_string(),
            r.requests.to_string(),
            result,
        ]);
    }
    println!("{t}");
    // The table cuts errors to fit; the advice is often at the end of the
    // message, so each failure is repeated in full below it.
    for e in reports.iter().filter_map(|r| r.error.as_deref()) {
        println!("{}", text::one_line(e));
    }
}

/// One progress bar per data type, drawn only on a terminal.
pub struct Bars {
    multi: Option<MultiProgress>,
    /// The account the bars are for, when several are synced.
    label: Option<String>,
    #[allow(clippy::disallowed_types, reason = "never held across an .await")]
    bars: Mutex<std::collections::HashMap<&'static str, ProgressBar>>,
}

impl Bars {
    pub fn new(enabled: bool) -> Self {
        Self::labelled(enabled, None)
    }

    /// Bars whose labels start with `label` (the account's name).
    pub fn labelled(enabled: bool, label: Option<&str>) -> Self {
        Bars {
            multi: enabled.then(MultiProgress::new),
            label: label.map(str::to_owned),
            #[allow(clippy::disallowed_types, reason = "never held across an .await")]
            bars: Mutex::default(),
        }
    }

    fn clear(&self) {
        if let Some(m) = &self.multi {
            let _ = m.clear();
        }
    }

    /// A line on stderr that does not tear the bars.
    fn println(&self, line: &str) {
        match &self.multi {
            Some(m) => {
                let _ = m.println(line);
            }
            None => eprintln!("{line}"),
        }
    }
}

impl Observer for Bars {
    fn started(&self, dt: &'static DataType, total_days: u64) {
        let Some(m) = &self.multi else { return };
        let bar = m.add(ProgressBar::new(total_days.max(1)));
        bar.set_style(
            ProgressStyle::with_template("{prefix:>25} [{bar:30}] {pos}/{len} days {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        match &self.label {
            Some(l) => bar.set_prefix(format!("{l}: {}", dt.name)),
            None => bar.set_prefix(dt.name),
        }
        self.bars.lock().expect("bars").insert(dt.name, bar);
    }

    fn advanced(&self, dt: &'static DataType, days: u64, docs: u64) {
        if let Some(b) = self.bars.lock().expect("bars").get(dt.name) {
            b.inc(days);
            b.set_message(format!("+{docs} rows"));
        }
    }

    fn finished(&self, report: &TypeReport) {
        if let Some(b) = self.bars.lock().expect("bars").get(report.data_type) {
            match &report.error {
                None => b.finish_with_message("done"),
                Some(_) => b.abandon_with_message(format!(
                    "failed: {}",
                    report.error_kind.map_or("error", ErrorKind::as_str)
                )),
            }
        }
    }
}

pub use crate::daemon::{Freshness, freshness};

fn status(config: &Config, json: bool, only: Option<&str>) -> anyhow::Result<ExitCode> {
    status_inner(config, json, only).map_err(|e| match e.downcast::<crate::store::StoreError>() {
        Ok(se) => store_error_with_path(se, &config.database),
        Err(e) => e,
    })
}

/// A store error as one line naming the file once, with its class's advice
/// (errors from opening the file already carry both).
fn store_error_with_path(e: crate::store::StoreError, path: &std::path::Path) -> anyhow::Error {
    use crate::store::StoreError;
    match e {
        e @ (StoreError::File(_) | StoreError::Refused(_)) => e.into(),
        e => {
            let advice = crate::store::error::advice(e.class(), path);
            if advice.is_empty() {
                anyhow::anyhow!("database {}: {e}", path.display())
            } else {
                anyhow::anyhow!("{e}; {advice}")
            }
        }
    }
}

fn status_inner(config: &Config, json: bool, only: Option<&str>) -> anyhow::Result<ExitCode> {
    let selected = account::selected(config, only)?;
    let mut store = Store::open_read_only(&config.database)?;
    let stored = store.accounts()?;
    let now = crate::clock::now();
    if json {
        let mut nested = Vec::new();
        for a in &selected {
            let id = account::stored_id(config, &stored, a);
            let types = match id {
                Some(id) => {
                    store.use_account(id);
                    status_json(&store, config, now)?
                }
                None => Vec::new(),
            };
            nested.push(serde_json::json!({ "name": a.name, "id": id, "types": types }));
        }
        // A config without [[account]] keeps the shape from before accounts.
        let doc = match config.account_entries {
            false => nested.swap_remove(0)["types"].take(),
            true => serde_json::json!({ "accounts": nested }),
        };
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("database: {}", config.database.display());
    let sections = config.accounts.len() > 1;
    for a in &selected {
        let id = account::stored_id(config, &stored, a);
        if sections {
            let known = stored.iter().find(|s| Some(s.id) == id);
            let email = known.and_then(|k| k.email.as_deref());
            println!(
                "\naccount {}{}",
                a.name,
                email.map_or(String::new(), |e| format!(" ({})", text::one_line(e)))
            );
        }
        let Some(id) = id else {
            println!("not synced yet: `ouradb sync --account {}` adds it", a.name);
            continue;
        };
        store.use_account(id);
        status_text(&store, &config.for_account(a), now)?;
    }
    if let Some(section) = webhook::status_section(config, &store, now)? {
        print!("\n{section}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `status --json`'s per-type objects of the store's current account.
fn status_json(
    store: &Store,
    config: &Config,
    now: Timestamp,
) -> anyhow::Result<Vec<serde_json::Value>> {
    let states = store.all_sync_states()?;
    let quarantine = store.quarantine_summary()?;
    let pending = store.pending_removals()?;
    let added = store.added_columns()?;
    Ok(states
        .iter()
        .map(|s| {
            let mut v = serde_json::to_value(s).expect("serializable");
            v["freshness"] =
                serde_json::to_value(freshness(s, now, config.stale_after)).expect("serializable");
            let q = quarantine.iter().find(|q| q.data_type == s.data_type);
            v["quarantined"] = q.map_or(0, |q| q.count).into();
            v["quarantine_reason"] = q.map(|q| q.latest_reason.clone()).into();
            v["pending_removal"] = pending.get(&s.data_type).copied().unwrap_or(0).into();
            v["not_available"] = not_available_json(s);
            let table = crate::registry::find(&s.data_type).map(|d| d.table);
            v["added_columns"] = serde_json::to_value(
                added
                    .iter()
                    .filter(|c| Some(c.table.as_str()) == table)
                    .collect::<Vec<_>>(),
            )
            .expect("serializable");
            v
        })
        .collect())
}

/// The auth line, status table and quarantine section of the store's
/// current account (`config` as that account syncs with it).
fn status_text(store: &Store, config: &Config, now: Timestamp) -> anyhow::Result<()> {
    let states = store.all_sync_states()?;
    let quarantine = store.quarantine_summary()?;
    let pending = store.pending_removals()?;
    println!("{}", auth_line(config));
    println!("{}", status_table(&states, now, config.stale_after));
    if let Some(section) = quarantine_section(&quarantine, &pending) {
        print!("\n{section}");
    }
    Ok(())
}

fn auth_line(config: &Config) -> String {
    if crate::api::oauth::uses_oauth(config) {
        match crate::api::oauth::auth_state(&config.oauth) {
            Ok(a) => match &a.reauth_required {
                Some(why) => format!(
                    "auth: RE-AUTHORIZATION REQUIRED ({}); run `ouradb auth login` - syncing resumes by itself afterwards",
                    text::one_line(why)
                ),
                None => format!(
                    "auth: OAuth{}, scopes: {}",
                    a.user_id
                        .map(|u| format!(" as {}", text::one_line(&u)))
                        .unwrap_or_default(),
                    text::one_line(&a.scopes.join(" "))
                ),
            },
            Err(e) => format!("auth: {e}"),
        }
    } else if config.token.is_some() {
        "auth: personal access token (deprecated by Oura; consider `ouradb auth login`)".into()
    } else if config.account_entries {
        "auth: no credentials; set personal_access_token in its [[account]] entry or run `ouradb auth login --account NAME`".into()
    } else {
        "auth: no credentials; run `ouradb auth login` or set OURA_TOKEN".into()
    }
}

/// Longest reason the quarantine section shows; `status --json` has it whole.
const TABLE_ERROR_CHARS: usize = 160;

/// Width for the status table when stdout is not a terminal.
// why: the terminal's width, set by the shell, is not configuration.
#[allow(clippy::disallowed_methods, reason = "terminal width, not a setting")]
fn fallback_width() -> u16 {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .filter(|w| *w >= 40)
        .unwrap_or(120)
}

/// The first line of `msg`, cut to `max` characters, without control
/// characters (errors and reasons may quote a server).
fn cut(msg: &str, max: usize) -> String {
    let line = text::one_line(msg.lines().next().unwrap_or(""));
    let line = line.as_str();
    if line.chars().count() <= max && !msg.contains('\n') {
        return line.to_owned();
    }
    if max == 0 {
        return String::new();
    }
    let mut out: String = line.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Quarantined documents and pending removals per type, for `status`.
pub fn quarantine_section(
    quarantine: &[crate::store::QuarantineSummary],
    pending: &std::collections::HashMap<String, i64>,
) -> Option<String> {
    if quarantine.is_empty() && pending.values().all(|n| *n == 0) {
        return None;
    }
    let mut out = String::new();
    if !quarantine.is_empty() {
        out.push_str("quarantined documents (kept in the `quarantine` table; a later good copy replaces them):\n");
        for q in quarantine {
            out.push_str(&format!(
                "  {}: {} (latest: {})\n",
                q.data_type,
                q.count,
                cut(&q.latest_reason, TABLE_ERROR_CHARS)
            ));
        }
    }
    let mut pending: Vec<_> = pending.iter().filter(|(_, n)| **n > 0).collect();
    pending.sort();
    if !pending.is_empty() {
        out.push_str(
            "missing from a re-fetch, removed if still missing 24 h later (still stored):\n",
        );
        for (t, n) in pending {
            out.push_str(&format!("  {t}: {n}\n"));
        }
    }
    Some(out)
}

/// The per-type status table, one line per type. Errors are cut to one
/// line that fits the terminal (or `COLUMNS`, else 120 characters), and
/// never shorter than 40 characters; `status --json` has them whole.
pub fn status_table(
    states: &[SyncState],
    now: Timestamp,
    stale_after: std::time::Duration,
) -> comfy_table::Table {
    let width = comfy_table::Table::new()
        .width()
        .unwrap_or_else(fallback_width);
    status_table_width(states, now, stale_after, width)
}

/// [`status_table`] for a given total width.
pub fn status_table_width(
    states: &[SyncState],
    now: Timestamp,
    stale_after: std::time::Duration,
    width: u16,
) -> comfy_table::Table {
    let header = [
        "data type",
        "state",
        "documents",
        "synced through",
        "backfill",
        "last success",
        "next run",
        "last error",
    ];
    let rows: Vec<[String; 8]> = states
        .iter()
        .map(|s| {
            let f = freshness(s, now, stale_after);
            let backfill = match (s.backfill_complete, s.backfill_floor) {
                (true, _) => "complete".to_string(),
                (false, Some(f)) => format!("down to {f}"),
                (false, None) => "not started".to_string(),
            };
            let error = match (&s.last_error_kind, &s.last_error) {
                (Some(k), Some(m)) if f == Freshness::Failing => format!("{k}: {m}"),
                // The row names the type; its message need not again.
                (Some(_), Some(m)) if f == Freshness::Skipped => m
                    .strip_prefix(s.data_type.as_str())
                    .and_then(|rest| rest.strip_prefix(": "))
                    .unwrap_or(m)
                    .to_owned(),
                (Some(_), Some(m)) if f == Freshness::NotAvailable => not_available_text(s, m),
                _ => String::new(),
            };
            [
                s.data_type.clone(),
                f.as_str().to_owned(),
                s.documents.to_string(),
                s.high_water
                    .map(|d| d.to_string())
                    .unwrap_or_else(|| "-".into()),
                backfill,
                s.last_success
                    .map(|t| ago(now, t))
                    .unwrap_or_else(|| "never".into()),
                s.next_run
                    .map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
                    .unwrap_or_else(|| "-".into()),
                error,
            ]
        })
        .collect();
    let build = |max_error: usize| {
        let mut t = comfy_table::Table::new();
        t.set_header(header);
        for r in &rows {
            let mut r = r.clone();
            r[7] = cut(&r[7], max_error);
            t.add_row(r);
        }
        t
    };
    // What the other columns take decides how much of an error fits.
    let others = build(0)
        .to_string()
        .lines()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(0);
    let room = usize::from(width).saturating_sub(others).max(40);
    build(room)
}

/// The status line of a type refused to this application alone: the
/// refusal (status, server text, how to enable it) and the next try.
fn not_available_text(s: &SyncState, message: &str) -> String {
    let why = message
        .strip_prefix(s.data_type.as_str())
        .and_then(|rest| rest.strip_prefix(": "))
        .unwrap_or(message);
    match sync::not_available_until(s) {
        Some(t) => format!("{why}; next try {}", t.strftime("%Y-%m-%d %H:%M UTC")),
        None => why.to_owned(),
    }
}

/// `status --json`'s `not_available` of a type: null, or why, how to
/// enable it and when it is asked again.
fn not_available_json(s: &SyncState) -> serde_json::Value {
    let Some(retry) = sync::not_available_until(s) else {
        return serde_json::Value::Null;
    };
    serde_json::json!({
        "reason": s.last_error.as_deref().map(text::one_line),
        "refused_at": s.last_error_at.map(|t| t.to_string()),
        "how_to_enable": crate::api::error::NOT_AVAILABLE_FIX,
        "retry_at": retry.to_string(),
    })
}

fn ago(now: Timestamp, then: Timestamp) -> String {
    let secs = now.duration_since(then).as_secs().max(0);
    match secs {
        0..60 => format!("{secs}s ago"),
        60..3600 => format!("{}m ago", secs / 60),
        3600..86400 => format!("{}h ago", secs / 3600),
        _ => format!("{}d ago", secs / 86400),
    }
}
