//! Shared by the benchmarks: measured child processes, the simulator as its
//! own runtime, configs, and the machine description printed with results.
#![allow(dead_code)]
#![allow(
    clippy::disallowed_methods,
    reason = "benchmarks date results by the real time"
)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One finished child process, measured by the kernel.
pub struct Measured {
    pub wall: Duration,
    /// User + system time.
    pub cpu: Duration,
    pub peak_rss_kib: i64,
    pub stdout: String,
    pub ok: bool,
}

/// Runs `cmd` to completion; wall and CPU are the child's own (wait4), so
/// the simulator's work is not counted. Peak RSS is the child's own
/// high-water mark (`VmHWM`), polled until it exits: wait4's `ru_maxrss`
/// would not do, because a child started from this process (which holds
/// the simulator and its data) inherits this process's high-water mark
/// when it execs, and reported ~88 MiB for every child of a 5-year bench.
// The child is reaped with wait4 (for its rusage), which clippy cannot see.
#[allow(clippy::zombie_processes)]
pub fn measure(mut cmd: Command) -> Measured {
    let started = Instant::now();
    let child = cmd.stdout(Stdio::piped()).spawn().expect("start child");
    let pid = child.id() as libc::pid_t;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let poller = {
        let done = done.clone();
        std::thread::spawn(move || {
            let own = proc_name("/proc/self/status");
            let path = format!("/proc/{pid}/status");
            let mut peak = 0i64;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(status) = std::fs::read_to_string(&path)
                    // Until it has exec'd, the child still shares this
                    // process's memory (posix_spawn): not its own figure.
                    && proc_name_of(&status) != own
                    && let Some(kib) = status
                        .lines()
                        .find_map(|l| l.strip_prefix("VmHWM:"))
                        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
                {
                    peak = peak.max(kib);
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            peak
        })
    };
    let mut stdout = child.stdout.expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut s).expect("read stdout");
        s
    });
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own child, waited for exactly once.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4");
    let wall = started.elapsed();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let peak_rss_kib = poller.join().expect("rss poller");
    let stdout = reader.join().expect("reader");
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    Measured {
        wall,
        cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
        peak_rss_kib,
        stdout,
        ok: libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
    }
}

fn proc_name(path: &str) -> String {
    proc_name_of(&std::fs::read_to_string(path).unwrap_or_default())
}

fn proc_name_of(status: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Name:"))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// The simulator, in this process on a runtime of its own (two workers, as
/// the `ouradb-sim` binary would have on this machine), so the measured child
/// processes' figures hold only their own work; stopped on drop.
pub struct Sim {
    pub url: String,
    /// The server's counters (most data requests at once, statuses).
    pub stats: ouradb_sim::SimStats,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// `--interbeat-days=0` unless `extra` sets it: a night holds ~27 pages of
/// interbeat intervals, so the simulator's default (beats on every day)
/// would make every "all types" figure a measure of that one type and of
/// the quota. Those benches keep the 19 types' volume they were recorded
/// with (the type is still requested, and answers empty pages);
/// `compare --interbeat` measures the beats themselves.
fn no_beats_unless_asked(extra: &[&str]) -> Option<&'static str> {
    let asked = extra.iter().any(|a| a.starts_with("--interbeat-days"));
    (!asked).then_some("--interbeat-days=0")
}

impl Sim {
    /// `extra` are `ouradb-sim` flags, e.g. `["--rate-limit", "100"]`.
    pub fn start(days: u32, extra: &[&str]) -> Sim {
        Sim::start_seeded(days, 7, extra)
    }

    /// [`Sim::start`] with another simulated person.
    pub fn start_seeded(days: u32, seed: u64, extra: &[&str]) -> Sim {
        use clap::Parser;
        let days = days.to_string();
        let seed = seed.to_string();
        let argv = [
            "ouradb-sim",
            "--port",
            "0",
            "--seed",
            &seed,
            "--token",
            TOKEN,
            "--days",
            &days,
        ]
        .into_iter()
        .chain(extra.iter().copied())
        .chain(no_beats_unless_asked(extra));
        let cfg = ouradb_sim::cli::Args::try_parse_from(argv)
            .expect("simulator flags")
            .into_config();
        let (url_tx, url_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("simulator runtime");
            rt.block_on(async move {
                let server = ouradb_sim::SimServer::start(cfg)
                    .await
                    .expect("start simulator");
                url_tx
                    .send((server.base_url().to_string(), server.stats()))
                    .expect("bench waits");
                let _ = stopped.await;
                server.stop().await;
            });
        });
        let (url, stats) = url_rx.recv().expect("simulator url");
        Sim {
            url,
            stats,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub const TOKEN: &str = "bench-token";

pub fn days_of(years: u32) -> u32 {
    years * 365 + years / 4
}

pub fn today() -> jiff::civil::Date {
    jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
}

/// The first day a backfill of `days` of history must cover.
pub fn backfill_start(days: u32) -> jiff::civil::Date {
    today().saturating_sub(jiff::Span::new().days(days as i64 + 2))
}

/// Writes a daemon.toml for `url` and `db`; `extra` is appended verbatim.
pub fn write_config(path: &Path, url: &str, db: &Path, days: u32, extra: &str) {
    std::fs::write(
        path,
        format!(
            "[api]\nbase_url = \"{url}\"\n[auth]\npersonal_access_token = \"{TOKEN}\"\n[storage]\ndatabase = \"{}\"\n[sync]\nbackfill_start = \"{}\"\n{extra}",
            db.display(),
            backfill_start(days)
        ),
    )
    .expect("config");
    // It holds the token: ouradb warns about a config others can read.
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod 600");
}

/// `ouradb --config <config> sync --json`, ready to measure.
pub fn ouradb_sync(config: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ouradb"));
    c.arg("--config")
        .arg(config)
        .args(["sync", "--json"])
        .env("OURADB_LOG", "warn");
    c
}

/// Requests `ouradb sync --json` reports.
pub fn requests_of(sync_json: &str) -> u64 {
    let reports: Vec<serde_json::Value> =
        serde_json::from_str(sync_json).expect("sync --json output");
    reports
        .iter()
        .map(|r| r["requests"].as_u64().unwrap_or(0))
        .sum()
}

/// Rows in every table of the database.
pub fn rows_in(db: &Path) -> i64 {
    let conn = rusqlite::Connection::open(db).expect("open db");
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '\\_%' ESCAPE '\\'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    tables
        .iter()
        .map(|t| {
            conn.query_row(&format!("SELECT count(*) FROM \"{t}\""), [], |r| {
                r.get::<_, i64>(0)
            })
            .unwrap()
        })
        .sum()
}

/// Cores, CPU model and memory, for the figures' header.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|l| l.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1048576.0);
    format!("{cores} cores, {model}, {mem_gib:.0} GiB")
}

pub fn date_now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%d %H:%M UTC")
        .to_string()
}

pub fn mib(kib: i64) -> f64 {
    kib as f64 / 1024.0
}
