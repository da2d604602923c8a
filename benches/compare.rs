//! ouradb against a Python client that only fetches: a cold sync of N
//! simulated years of the default data types, and `benches/python/fetch_only.py`
//! fetching and parsing the same pages over the same windows without
//! storing anything, both against one simulator, interleaved
//! (the order alternates each round) so background load hits both alike.
//!
//! `cargo bench --bench compare -- [years] [rounds] [latency_ms] [seed]`
//! (default 5 years, 3 rounds, no added latency, seed 7). With
//! `latency_ms`, the simulator holds every data request that long, as the
//! real API's round trip does; each ouradb run is then also set against
//! the latency bound `requests × latency ÷ max_in_flight` (target ≤ 1.2×
//! it), with the most requests the simulator answered at once during it
//! and its 429s. `--ouradb-only` skips the Python client (at 200 ms it
//! walks its 30-day windows for minutes); `--max-in-flight=N` sets
//! `sync.max_in_flight` (default 16).
//!
//! Both clients sync the default types without `interbeat_interval` (the
//! registry's `Priority::Raw` type, ~27 pages a night). `--interbeat`
//! also runs ouradb with it each round and reports its total wall time,
//! requests, bytes per beat on disk (`dbstat`), and when the last of the
//! other types was done (`sync --json`'s `finished_after_ms`) against the
//! run without it (target: within 10 %). `--interbeat-days=N` serves beats
//! for the last N days only, for a shorter run.

#[path = "common/mod.rs"]
mod common;

use std::process::Command;

use common::{Measured, Sim, days_of, measure, mib};
use ouradb::registry::{DATA_TYPES, DataType, Priority, QueryStyle};

/// The types both clients sync: all but the raw-volume ones.
fn default_types() -> Vec<&'static DataType> {
    DATA_TYPES
        .iter()
        .filter(|d| d.backfill_priority != Priority::Raw)
        .collect()
}

/// `types = [...]` for a config.
fn types_line(types: &[&DataType]) -> String {
    let names: Vec<String> = types.iter().map(|d| format!("\"{}\"", d.name)).collect();
    format!("types = [{}]\n", names.join(", "))
}

/// When the last type without raw volume was done, seconds, from `sync --json`.
fn others_done_s(sync_json: &str) -> f64 {
    let reports: Vec<serde_json::Value> = serde_json::from_str(sync_json).unwrap_or_default();
    let raw: Vec<&str> = DATA_TYPES
        .iter()
        .filter(|d| d.backfill_priority == Priority::Raw)
        .map(|d| d.name)
        .collect();
    reports
        .iter()
        .filter(|r| !raw.contains(&r["data_type"].as_str().unwrap_or("")))
        .filter_map(|r| r["finished_after_ms"].as_u64())
        .max()
        .unwrap_or(0) as f64
        / 1000.0
}

/// Bytes per stored beat of `interbeat_interval` and its side table of
/// `extra` rows, their pages as `dbstat` counts them.
fn bytes_per_beat(db: &std::path::Path) -> (f64, i64) {
    let conn = rusqlite::Connection::open(db).expect("open db");
    conn.query_row(
        "SELECT (SELECT sum(pgsize) FROM dbstat
                 WHERE name IN ('interbeat_interval', 'interbeat_interval_extra')),
                (SELECT count(*) FROM interbeat_interval)",
        [],
        |r| {
            let (bytes, beats): (i64, i64) = (r.get(0)?, r.get(1)?);
            Ok((bytes as f64 / beats.max(1) as f64, beats))
        },
    )
    .expect("dbstat")
}

fn python(sim: &Sim, days: u32) -> Command {
    let types: Vec<serde_json::Value> = default_types()
        .iter()
        .map(|dt| {
            let style = match dt.query {
                QueryStyle::DateRange => "dates",
                QueryStyle::DateTimeRange => "datetimes",
                QueryStyle::List => "list",
                QueryStyle::Single => "single",
            };
            serde_json::json!([dt.path, style, dt.window_days])
        })
        .collect();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/python/fetch_only.py");
    let mut c = Command::new("python3");
    c.arg(script)
        .arg(&sim.url)
        .arg(common::TOKEN)
        .arg(common::backfill_start(days).to_string())
        .arg(common::today().to_string())
        .arg(serde_json::Value::from(types).to_string());
    c
}

/// How an ouradb run compares with its latency bound, and what the
/// simulator saw during it.
fn latency_line(sim: &Sim, m: &Measured, requests: u64, latency_ms: u64, cap: usize) {
    let bound = requests as f64 * latency_ms as f64 / 1000.0 / cap as f64;
    let most = sim.stats.max_concurrent_requests();
    println!(
        "  ouradb  at most {most} requests at once (max_in_flight {cap}{}); bound requests × {latency_ms} ms ÷ {cap} = {bound:.1} s; wall {:.2}× the bound (target ≤ 1.2×)",
        if most > cap { ": EXCEEDED" } else { "" },
        m.wall.as_secs_f64() / bound.max(f64::MIN_POSITIVE),
    );
}

fn line(name: &str, m: &Measured, requests: u64) {
    println!(
        "  {name:<7} wall {:>6.2} s   cpu {:>6.2} s   peak RSS {:>6.1} MiB   requests {requests}{}",
        m.wall.as_secs_f64(),
        m.cpu.as_secs_f64(),
        mib(m.peak_rss_kib),
        if m.ok { "" } else { "   FAILED" }
    );
}

/// One ouradb run with `interbeat_interval` beside `without`, the run of
/// the default types alone.
fn interbeat_round(
    sim: &Sim,
    dir: &std::path::Path,
    round: u32,
    days: u32,
    cap: usize,
    without: &Measured,
) {
    let db = dir.join(format!("round{round}-ibi.sqlite"));
    let config = dir.join(format!("round{round}-ibi.toml"));
    let mut all: Vec<&DataType> = DATA_TYPES.iter().collect();
    all.sort_by_key(|d| d.name);
    let extra = format!("max_in_flight = {cap}\n{}", types_line(&all));
    common::write_config(&config, &sim.url, &db, days, &extra);
    sim.stats.reset_max_concurrent();
    let m = measure(common::ouradb_sync(&config));
    let r = common::requests_of(&m.stdout);
    line("+ibi", &m, r);
    let (bpb, beats) = bytes_per_beat(&db);
    let (alone, beside) = (others_done_s(&without.stdout), others_done_s(&m.stdout));
    println!(
        "  +ibi    {beats} beats, {bpb:.2} bytes a beat on disk (target ≤ 16); other types done after {beside:.1} s vs {alone:.1} s without it ({:+.1} %, target within 10 %); at most {} requests at once",
        (beside / alone.max(f64::MIN_POSITIVE) - 1.0) * 100.0,
        sim.stats.max_concurrent_requests()
    );
    let _ = std::fs::remove_file(&db);
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| !a.starts_with('-'));
    let years: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let rounds: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let latency_ms: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(0);
    let seed: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(7);
    let with_python = !std::env::args().any(|a| a == "--ouradb-only");
    let cap: usize = std::env::args()
        .find_map(|a| a.strip_prefix("--max-in-flight=")?.parse().ok())
        .unwrap_or(ouradb::config::DEFAULT_MAX_IN_FLIGHT);
    let with_interbeat = std::env::args().any(|a| a == "--interbeat");
    // Beats on every simulated day unless `--interbeat-days=N` says
    // otherwise (the bench harness serves none when no days are given).
    let interbeat_days = std::env::args()
        .find_map(|a| {
            a.strip_prefix("--interbeat-days=")
                .map(|d| format!("--interbeat-days={d}"))
        })
        .or_else(|| with_interbeat.then(|| "--interbeat-days=36500".to_owned()));
    let days = days_of(years);
    let dir = tempfile::tempdir().expect("tempdir");
    // Fetch-bound, not rate-bound: rounds follow each other within one
    // quota window, so the simulator's limit is lifted.
    let latency = latency_ms.to_string();
    let mut sim_args = vec![
        "--rate-limit",
        "4294967295",
        "--app-rate-limit",
        "4294967295",
        "--latency-ms",
        &latency,
    ];
    sim_args.extend(interbeat_days.as_deref());
    let sim = Sim::start_seeded(days, seed, &sim_args);
    println!(
        "cold sync of {years} simulated years ({days} days, seed {seed}), {} types{}, {latency_ms} ms added to each request; {}; {}",
        default_types().len(),
        if with_interbeat {
            " with and without interbeat_interval"
        } else {
            ""
        },
        common::machine(),
        common::date_now()
    );
    let (mut wall, mut cpu, mut rss) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let db = dir.path().join(format!("round{round}.sqlite"));
        let config = dir.path().join(format!("round{round}.toml"));
        common::write_config(
            &config,
            &sim.url,
            &db,
            days,
            &format!("max_in_flight = {cap}\n{}", types_line(&default_types())),
        );
        let run_ouradb = || {
            sim.stats.reset_max_concurrent();
            let before_429 = sim.stats.responses_with_status(429);
            let m = measure(common::ouradb_sync(&config));
            let r = common::requests_of(&m.stdout);
            println!(
                "  ouradb  all types done after {:.1} s",
                others_done_s(&m.stdout)
            );
            let r429 = sim.stats.responses_with_status(429) - before_429;
            println!("  ouradb  {r429} × 429");
            if latency_ms > 0 {
                latency_line(&sim, &m, r, latency_ms, cap);
            }
            (m, r)
        };
        if !with_python {
            let (o, or) = run_ouradb();
            println!("round {}", round + 1);
            line("ouradb", &o, or);
            let _ = std::fs::remove_file(&db);
            if with_interbeat {
                interbeat_round(&sim, dir.path(), round, days, cap, &o);
            }
            continue;
        }
        let run_python = || {
            let m = measure(python(&sim, days));
            let out: serde_json::Value =
                serde_json::from_str(&m.stdout).unwrap_or(serde_json::Value::Null);
            let r = out["requests"].as_u64().unwrap_or(0);
            (m, r)
        };
        let ((o, or), (p, pr)) = if round % 2 == 0 {
            let o = run_ouradb();
            (o, run_python())
        } else {
            let p = run_python();
            (run_ouradb(), p)
        };
        println!("round {}", round + 1);
        line("ouradb", &o, or);
        line("python", &p, pr);
        let w = o.wall.as_secs_f64() / p.wall.as_secs_f64();
        let c = o.cpu.as_secs_f64() / p.cpu.as_secs_f64();
        let m = o.peak_rss_kib as f64 / p.peak_rss_kib as f64;
        println!("  ratio ouradb/python: wall {w:.2}x   cpu {c:.2}x   peak RSS {m:.2}x");
        wall.push(w);
        cpu.push(c);
        rss.push(m);
        let _ = std::fs::remove_file(&db);
    }
    if !with_python {
        return;
    }
    println!(
        "median ratio ouradb/python over {rounds} rounds: wall {:.2}x   cpu {:.2}x   peak RSS {:.2}x",
        median(wall),
        median(cpu),
        median(rss)
    );
}
