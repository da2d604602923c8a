//! Shared by the benchmarks: measured child processes, the simulator as its
//! own process, configs, and the machine description printed with results.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
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

/// Runs `cmd` to completion; wall, CPU and peak RSS are the child's own
/// (wait4), so the simulator's work is not counted.
// The child is reaped with wait4 (for its rusage), which clippy cannot see.
#[allow(clippy::zombie_processes)]
pub fn measure(mut cmd: Command) -> Measured {
    let started = Instant::now();
    let child = cmd.stdout(Stdio::piped()).spawn().expect("start child");
    let pid = child.id() as libc::pid_t;
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
    let stdout = reader.join().expect("reader");
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    Measured {
        wall,
        cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
        peak_rss_kib: usage.ru_maxrss,
        stdout,
        ok: libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
    }
}

/// `ouradb-sim` as its own process; stopped on drop.
pub struct Sim {
    child: Child,
    pub url: String,
}

impl Sim {
    pub fn start(days: u32, extra: &[&str]) -> Sim {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ouradb-sim"))
            .args(["--port", "0", "--seed", "7", "--token", TOKEN, "--days"])
            .arg(days.to_string())
            .args(extra)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start ouradb-sim");
        let mut first = String::new();
        BufReader::new(child.stdout.take().expect("sim stdout"))
            .read_line(&mut first)
            .expect("sim first line");
        let url = first
            .trim()
            .strip_prefix("listening on ")
            .expect("listening line")
            .to_owned();
        Sim { child, url }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        // SAFETY: signalling our own child by pid.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let _ = self.child.wait();
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
