//! Idle benchmark: what `ouradb daemon` keeps after a catch-up.
//!
//! Starts the simulator with N days (default 730), runs a release
//! `ouradb daemon` against it until every type's backfill is complete
//! (polling `ouradb status --json`), then samples the daemon's resident
//! memory (`VmRSS`) and CPU time (utime + stime from `/proc/PID/stat`) once
//! a minute over an idle period. The daemon's own schedule (incremental
//! jobs every quarter hour by default) runs in that time: that is part of
//! idle, so the defaults are kept.
//!
//! `cargo bench --bench idle -- [--minutes M] [--days D] [--variant
//! LABEL=BINARY[,KEY=VALUE...]]...` (defaults 5 minutes, 730 days, this
//! build's binary); variants run side by side, e.g. an older binary or
//! `MALLOC_ARENA_MAX=2`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn arg(name: &str) -> Option<u64> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
}

/// One daemon to measure: a label, its binary, extra environment.
struct Variant {
    label: String,
    binary: String,
    env: Vec<(String, String)>,
}

/// `--variant LABEL=BINARY[,KEY=VALUE...]`, repeatable (`default` for this
/// build's binary): the variants run side by side against one simulator,
/// an A/B in one run. Without any, this build's binary alone.
fn variants() -> Vec<Variant> {
    let args: Vec<String> = std::env::args().collect();
    let mut out: Vec<Variant> = args
        .windows(2)
        .filter(|w| w[0] == "--variant")
        .map(|w| {
            let (label, rest) = w[1].split_once('=').expect("--variant LABEL=BINARY,...");
            let mut parts = rest.split(',');
            let binary = match parts.next().unwrap_or("default") {
                "default" => env!("CARGO_BIN_EXE_ouradb").to_owned(),
                path => path.to_owned(),
            };
            let env = parts
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            Variant {
                label: label.to_owned(),
                binary,
                env,
            }
        })
        .collect();
    if out.is_empty() {
        out.push(Variant {
            label: "ouradb".into(),
            binary: env!("CARGO_BIN_EXE_ouradb").into(),
            env: Vec::new(),
        });
    }
    out
}

/// Resident memory now (anonymous, file-backed) and its high-water mark, KiB.
struct Rss {
    total: i64,
    anon: i64,
    file: i64,
    peak: i64,
}

fn rss_kib(pid: u32) -> Rss {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    Rss {
        total: field("VmRSS:"),
        anon: field("RssAnon:"),
        file: field("RssFile:"),
        peak: field("VmHWM:"),
    }
}

fn show(r: &Rss) -> String {
    format!(
        "RSS {:>5.1} MiB (anon {:>5.1}, file {:>4.1})",
        common::mib(r.total),
        common::mib(r.anon),
        common::mib(r.file)
    )
}

/// User + system CPU seconds of `pid` so far (all its threads).
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name may hold spaces; fields are counted after its ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after ')'.
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|v| v.parse::<u64>().ok()))
        .sum();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    ticks as f64 / hz
}

fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |d| d.count())
}

fn all_complete(config: &Path) -> bool {
    let out = Command::new(env!("CARGO_BIN_EXE_ouradb"))
        .arg("--config")
        .arg(config)
        .args(["status", "--json"])
        .env("OURADB_LOG", "off")
        .output();
    let Ok(out) = out else { return false };
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap_or_default();
    !rows.is_empty()
        && rows
            .iter()
            .all(|r| r["backfill_complete"] == true && !r["last_success"].is_null())
}

struct Daemon {
    label: String,
    child: Child,
    config: PathBuf,
    caught_up: Option<f64>,
    cpu0: f64,
    last_cpu: f64,
    rss_at: Vec<i64>,
}

fn start_daemon(binary: &Path, v: &Variant, config: PathBuf) -> Daemon {
    let child = Command::new(binary)
        .arg("--config")
        .arg(&config)
        .arg("daemon")
        .env("OURADB_LOG", "warn")
        .envs(v.env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::null())
        .spawn()
        .expect("start daemon");
    Daemon {
        label: v.label.clone(),
        child,
        config,
        caught_up: None,
        cpu0: 0.0,
        last_cpu: 0.0,
        rss_at: Vec::new(),
    }
}

fn stop(mut child: Child) {
    // SAFETY: plain kill(2) on our own child.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let _ = child.wait();
}

fn main() {
    let minutes = arg("--minutes").unwrap_or(5);
    let days = arg("--days").unwrap_or(730) as u32;
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = common::Sim::start(days, &[]);
    println!("{}; {}", common::date_now(), common::machine());
    let started = Instant::now();
    let mut daemons: Vec<Daemon> = variants()
        .iter()
        .map(|v| {
            let db = dir.path().join(format!("{}.sqlite", v.label));
            let config = dir.path().join(format!("{}.toml", v.label));
            common::write_config(&config, &sim.url, &db, days, "");
            // A copy each: daemons sharing one file would share its pages,
            // which the kernel then will not page out for either.
            let binary = dir.path().join(format!("{}-ouradb", v.label));
            std::fs::copy(&v.binary, &binary).expect("copy the binary");
            start_daemon(&binary, v, config)
        })
        .collect();
    while daemons.iter().any(|d| d.caught_up.is_none()) {
        assert!(
            started.elapsed() < Duration::from_secs(1800),
            "the daemons did not catch up in 30 minutes"
        );
        for d in daemons.iter_mut().filter(|d| d.caught_up.is_none()) {
            if all_complete(&d.config) {
                let pid = d.child.id();
                d.caught_up = Some(started.elapsed().as_secs_f64());
                d.cpu0 = cpu_secs(pid);
                d.last_cpu = d.cpu0;
                let r = rss_kib(pid);
                println!(
                    "{}: caught up {days} days in {:.1} s: {}, peak {:.1} MiB, CPU {:.2} s, {} threads",
                    d.label,
                    started.elapsed().as_secs_f64(),
                    show(&r),
                    common::mib(r.peak),
                    d.cpu0,
                    threads(pid),
                );
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    idle(&mut daemons, minutes);
    for d in daemons {
        stop(d.child);
    }
    drop(sim);
}

/// Samples every daemon once a minute for `minutes` after the last caught
/// up; prints each minute and a summary per daemon.
fn idle(daemons: &mut [Daemon], minutes: u64) {
    let t0 = Instant::now();
    for d in daemons.iter_mut() {
        d.cpu0 = cpu_secs(d.child.id());
        d.last_cpu = d.cpu0;
        println!("{} idle start: {}", d.label, show(&rss_kib(d.child.id())));
    }
    for m in 1..=minutes {
        let due = t0 + Duration::from_secs(60 * m);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        for d in daemons.iter_mut() {
            let pid = d.child.id();
            let r = rss_kib(pid);
            let cpu = cpu_secs(pid);
            println!(
                "{} idle minute {m:>3}: {}, CPU {:.3} s this minute, {} threads",
                d.label,
                show(&r),
                cpu - d.last_cpu,
                threads(pid),
            );
            d.last_cpu = cpu;
            d.rss_at.push(r.total);
        }
    }
    for d in daemons.iter() {
        let per_minute = (d.last_cpu - d.cpu0) / minutes.max(1) as f64;
        let last = d.rss_at.last().copied().unwrap_or(0);
        let max = d.rss_at.iter().copied().max().unwrap_or(0);
        println!(
            "{}: idle {minutes} min: RSS at end {:.1} MiB (max while idle {:.1} MiB), CPU {per_minute:.4} s per minute",
            d.label,
            common::mib(last),
            common::mib(max),
        );
    }
}
