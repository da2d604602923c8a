//! A household under Oura's default quota (issue 20): one `ouradb daemon`
//! syncing N simulated persons' first year each (N `[[account]]`s in one
//! file, the application's 5000 requests per 5 minutes shared by all).
//!
//! The first account is synced alone beforehand (`ouradb sync --account
//! a1`). While the daemon (on its default schedule) backfills the others,
//! the bench runs a1's heart-rate incremental run every 20 s as a process
//! of its own on the same file (`ouradb sync --account a1 --type heartrate
//! --no-backfill`: the request account, and so the quota, is the file's),
//! which is a caught-up account's 15-minute run, sampled 45 times as often.
//! Reported: the daemon's wall time until every account's backfill is
//! complete, its CPU time and peak RSS (`VmHWM`), the requests it sent,
//! the fullest 5-minute window and its mean while the quota binds (read
//! once a second from the request account in the database, `_request_log`,
//! as a dashboard would read it), 429s, and how long each of a1's
//! heart-rate runs took (the process's wall time) while the others
//! backfilled, against one after.
//!
//! `cargo bench --bench household -- [accounts] [days]` (default 10, 365).

#![allow(
    clippy::disallowed_methods,
    reason = "the bench reads the request account against the real time"
)]

#[path = "common/mod.rs"]
mod common;

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use jiff::Timestamp;

const WINDOW_US: i64 = 300_000_000;
/// What the application may use: 5000 less the default 2 % margin.
const USABLE: i64 = 4900;

fn token(i: usize) -> String {
    if i == 0 {
        common::TOKEN.to_owned()
    } else {
        format!("{}-{}", common::TOKEN, i + 1)
    }
}

fn write_config(path: &Path, url: &str, db: &Path, days: u32, accounts: usize) {
    let mut text = format!(
        "[api]\nbase_url = \"{url}\"\n[storage]\ndatabase = \"{}\"\n[sync]\nbackfill_start = \"{}\"\n",
        db.display(),
        common::backfill_start(days)
    );
    for i in 0..accounts {
        text.push_str(&format!(
            "[[account]]\nname = \"a{}\"\npersonal_access_token = \"{}\"\n",
            i + 1,
            token(i)
        ));
    }
    std::fs::write(path, text).expect("config");
    // It holds the tokens.
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod 600");
}

/// What the database says at one moment, read-only beside the daemon.
struct Sample {
    complete: usize,
    /// Sends in the last five minutes, every account's.
    window: i64,
}

fn sample(db: &Path) -> Option<Sample> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .ok()?;
    conn.busy_timeout(Duration::from_secs(5)).ok()?;
    let complete: i64 = conn
        .query_row(
            "SELECT count(*) FROM sync_state WHERE backfill_complete",
            [],
            |r| r.get(0),
        )
        .ok()?;
    let since = Timestamp::now().as_microsecond() - WINDOW_US;
    let window: i64 = conn
        .query_row(
            "SELECT count(*) FROM _request_log WHERE sent_us > ?1",
            [since],
            |r| r.get(0),
        )
        .ok()?;
    Some(Sample {
        complete: complete as usize,
        window,
    })
}

/// a1's heart-rate incremental run, a process of its own: its wall time.
fn heart_rate_run(config: &Path) -> f64 {
    let mut c = common::ouradb_sync(config);
    c.args(["--account", "a1", "--type", "heartrate", "--no-backfill"]);
    let run = common::measure(c);
    assert!(run.ok, "a1's heart-rate run failed: {}", run.stdout);
    run.wall.as_secs_f64()
}

/// Runs a1's heart-rate run every `every` until `stop`; their wall times.
fn probe(
    config: &Path,
    every: Duration,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<Vec<f64>> {
    let config = config.to_path_buf();
    std::thread::spawn(move || {
        let mut runs = Vec::new();
        let mut next = Instant::now() + every;
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            if Instant::now() >= next {
                runs.push(heart_rate_run(&config));
                next += every;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        runs
    })
}

/// utime + stime of `pid`, and its peak RSS in KiB.
fn cpu_and_peak(pid: u32) -> (Duration, i64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    // After the name: state is field 3, utime 14 and stime 15 (1-based).
    let ticks = |i: usize| {
        fields
            .get(i - 3)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let cpu = Duration::from_millis((ticks(14) + ticks(15)) * 1000 / hz);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let peak = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    (cpu, peak)
}

fn start_daemon(config: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_ouradb"))
        .arg("--config")
        .arg(config)
        .arg("daemon")
        .env("OURADB_LOG", "warn")
        .spawn()
        .expect("start ouradb daemon")
}

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| !a.starts_with('-'));
    let accounts: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    let days: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(365);
    println!(
        "household: {accounts} accounts x {days} days, Oura's default quota (5000 per 5 min per token and per application); {}; {}",
        common::machine(),
        common::date_now()
    );
    let persons = accounts.to_string();
    let sim = common::Sim::start(days, &["--persons", &persons]);
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("household.sqlite");
    let config = dir.path().join("household.toml");
    write_config(&config, &sim.url, &db, days, accounts);

    let alone = common::measure({
        let mut c = common::ouradb_sync(&config);
        c.args(["--account", "a1"]);
        c
    });
    assert!(
        alone.ok,
        "ouradb sync --account a1 failed: {}",
        alone.stdout
    );
    println!(
        "a1 alone first (ouradb sync): {:.1} s",
        alone.wall.as_secs_f64()
    );
    let before = sim.stats.responses_with_status(200);

    let types = 20;
    let mut daemon = start_daemon(&config);
    let started = Instant::now();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let runs = probe(&config, Duration::from_secs(20), stop.clone());
    let mut fullest = 0;
    let mut bound = Vec::new();
    let done_at = loop {
        std::thread::sleep(Duration::from_secs(1));
        assert!(
            started.elapsed() < Duration::from_secs(3600),
            "the household did not catch up in an hour"
        );
        let Some(s) = sample(&db) else { continue };
        fullest = fullest.max(s.window);
        // The quota binds once history has taken what it may (98 %).
        if s.window >= USABLE * 98 / 100 || !bound.is_empty() {
            bound.push(s.window);
        }
        if s.complete >= accounts * types {
            break started.elapsed();
        }
    };
    let (cpu, peak) = cpu_and_peak(daemon.id());
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let runs_backfilling = runs.join().expect("the heart-rate probe");
    let sent = sim.stats.responses_with_status(200) - before;
    let refused = sim.stats.responses_with_status(429);
    // One more heart-rate run of a1's with nothing else to do.
    let after = heart_rate_run(&config);
    // SAFETY: signalling our own child by pid.
    unsafe { libc::kill(daemon.id() as libc::pid_t, libc::SIGTERM) };
    let _ = daemon.wait();

    let mean = bound.iter().sum::<i64>() as f64 / bound.len().max(1) as f64;
    println!("daemon, from start until every account's backfill was complete:");
    println!("  wall time:            {:.1} s", done_at.as_secs_f64());
    println!("  CPU time:             {:.1} s", cpu.as_secs_f64());
    println!("  peak RSS:             {:.1} MiB", common::mib(peak));
    println!("  requests answered:    {sent} (429: {refused})");
    println!(
        "  fullest 5-min window: {fullest} of 5000 ({:.1} %)",
        fullest as f64 / 50.0
    );
    println!(
        "  mean window while the quota binds: {:.0} ({:.1} % of 5000, {:.1} % of the usable {USABLE}; {} one-second samples)",
        mean,
        mean / 50.0,
        mean / USABLE as f64 * 100.0,
        bound.len()
    );
    let longest = runs_backfilling.iter().copied().fold(0.0, f64::max);
    println!(
        "  a1's heart-rate runs (every 20 s, a process each) while the others backfilled: {} runs, longest {longest:.2} s ({runs_backfilling:.2?})",
        runs_backfilling.len()
    );
    println!("  a1's heart-rate run with the household idle: {after:.2} s");
}
