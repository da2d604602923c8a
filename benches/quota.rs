//! Quota use: a backfill that the rate limit, not the machine, bounds.
//!
//! The simulator (in this process, request log on) allows 40 requests per
//! 10 s per token and `ouradb sync` (its own process) is configured with the
//! same quota. Reported: sustained requests/s as a percentage of the allowed
//! 4/s (mean over the complete windows after the first, whose burst would
//! flatter it), the fullest 10 s window (must be ≤ 40) and 429s (must be 0).
//! Then the same with three syncs killed 1.5 s after they start and a fourth
//! run to completion: a restarted process must continue the account, not
//! burst again.
//!
//! `cargo bench --bench quota -- [days]` (default 150: a little over 200
//! requests).

#[path = "common/mod.rs"]
mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use ouradb_sim::{SimConfig, SimServer};

const LIMIT: u32 = 40;
const WINDOW: Duration = Duration::from_secs(10);

struct Outcome {
    requests: usize,
    refused: usize,
    fullest: usize,
    sustained_percent: f64,
    overall_per_s: f64,
    wall: Duration,
}

fn analyse(sim: &SimServer, wall: Duration) -> Outcome {
    let times: Vec<std::time::Instant> = sim
        .request_log()
        .iter()
        .filter(|e| e.token.as_deref() == Some(common::TOKEN))
        .map(|e| e.at)
        .collect();
    let refused = sim.request_log().iter().filter(|e| e.status == 429).count();
    let first = times[0];
    let last = *times.last().expect("requests");
    let span = last.duration_since(first);
    let complete = (span.as_secs_f64() / WINDOW.as_secs_f64()).floor() as u32;
    let mut per_window = Vec::new();
    for j in 1..complete {
        let lo = first + WINDOW * j;
        let hi = lo + WINDOW;
        per_window.push(times.iter().filter(|t| **t >= lo && **t < hi).count());
    }
    let sustained = if per_window.is_empty() {
        f64::NAN
    } else {
        per_window.iter().sum::<usize>() as f64 / per_window.len() as f64
    };
    Outcome {
        requests: times.len(),
        refused,
        fullest: sim.max_requests_in_window(common::TOKEN, WINDOW),
        sustained_percent: 100.0 * sustained / f64::from(LIMIT),
        overall_per_s: times.len() as f64 / span.as_secs_f64(),
        wall,
    }
}

fn report(name: &str, o: &Outcome) {
    println!("{name}");
    println!("  requests:          {}", o.requests);
    println!("  wall time:         {:.1} s", o.wall.as_secs_f64());
    println!(
        "  sustained rate:    {:.1} % of the allowed {}/s (complete windows after the first)",
        o.sustained_percent,
        f64::from(LIMIT) / WINDOW.as_secs_f64()
    );
    println!(
        "  overall rate:      {:.2} requests/s, first to last request",
        o.overall_per_s
    );
    println!("  fullest 10 s window: {} (quota {LIMIT})", o.fullest);
    println!("  429 answers:       {}", o.refused);
}

fn config(dir: &Path, url: &str, name: &str, days: u32) -> std::path::PathBuf {
    let db = dir.join(format!("{name}.sqlite"));
    let config = dir.join(format!("{name}.toml"));
    common::write_config(
        &config,
        url,
        &db,
        days,
        &format!(
            "[rate_limit]\nrequests = {LIMIT}\nwindow_seconds = {}\nmargin_percent = 2\n",
            WINDOW.as_secs()
        ),
    );
    config
}

async fn start_sim(days: u32) -> SimServer {
    let mut cfg = SimConfig::new(7, days, common::today());
    cfg.tokens = vec![common::TOKEN.to_owned()];
    cfg.rate_limit = LIMIT;
    cfg.rate_window = WINDOW;
    cfg.log_requests = true;
    SimServer::start(cfg).await.expect("simulator")
}

fn main() {
    let days: u32 = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(150);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    println!(
        "rate-bound backfill of {days} days, quota {LIMIT} per {} s; {}; {}",
        WINDOW.as_secs(),
        common::machine(),
        common::date_now()
    );

    let sim = rt.block_on(start_sim(days));
    let cfg = config(dir.path(), &sim.base_url(), "one", days);
    let started = Instant::now();
    let m = common::measure(common::ouradb_sync(&cfg));
    assert!(m.ok, "ouradb sync failed: {}", m.stdout);
    report("one uninterrupted sync", &analyse(&sim, started.elapsed()));
    rt.block_on(sim.stop());

    let sim = rt.block_on(start_sim(days));
    let cfg = config(dir.path(), &sim.base_url(), "restarts", days);
    let started = Instant::now();
    for _ in 0..3 {
        let mut child = common::ouradb_sync(&cfg)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start ouradb");
        std::thread::sleep(Duration::from_millis(1500));
        // SAFETY: signalling our own child by pid.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) };
        let _ = child.wait();
    }
    let m = common::measure(common::ouradb_sync(&cfg));
    assert!(m.ok, "ouradb sync failed: {}", m.stdout);
    report(
        "three syncs killed after 1.5 s, then one to completion",
        &analyse(&sim, started.elapsed()),
    );
    rt.block_on(sim.stop());
}
