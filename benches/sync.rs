//! Sync benchmark: a full backfill of N simulated years of every data type
//! from the simulator into a fresh database, then a no-op incremental cycle.
//!
//! Both programs run as separate release processes, as a user runs them;
//! wall time, CPU time and peak RSS are the `ouradb` process's own (wait4).
//!
//! `cargo bench --bench sync -- [years]` (default 5).

mod common;

use std::path::Path;
use std::time::Duration;

struct Run {
    wall: Duration,
    cpu: Duration,
    peak_rss_kib: i64,
    requests: u64,
    rows_written: u64,
    ok: bool,
}

fn run_sync(config: &Path) -> Run {
    let m = common::measure(common::ouradb_sync(config));
    let reports: Vec<serde_json::Value> =
        serde_json::from_str(&m.stdout).expect("sync --json output");
    Run {
        wall: m.wall,
        cpu: m.cpu,
        peak_rss_kib: m.peak_rss_kib,
        requests: reports
            .iter()
            .map(|r| r["requests"].as_u64().unwrap_or(0))
            .sum(),
        rows_written: reports
            .iter()
            .map(|r| {
                r["counts"]["inserted"].as_u64().unwrap_or(0)
                    + r["counts"]["updated"].as_u64().unwrap_or(0)
            })
            .sum(),
        ok: m.ok,
    }
}

fn main() {
    let years: u32 = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(5);
    let days = common::days_of(years);
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = common::Sim::start(days, &[]);
    let db = dir.path().join("bench.sqlite");
    let config = dir.path().join("daemon.toml");
    common::write_config(&config, &sim.url, &db, days, "");

    let full = run_sync(&config);
    let db_bytes = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
    let conn = rusqlite::Connection::open(&db).expect("open db");
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let rows: i64 = tables
        .iter()
        .map(|t| {
            conn.query_row(&format!("SELECT count(*) FROM \"{t}\""), [], |r| {
                r.get::<_, i64>(0)
            })
            .unwrap()
        })
        .sum();
    drop(conn);
    let noop = run_sync(&config);

    drop(sim);

    println!(
        "full backfill of {years} simulated years ({days} days), all {} data types (interbeat_interval without beats)",
        ouradb::registry::DATA_TYPES.len()
    );
    println!("  ok:              {}", full.ok);
    println!("  wall time:       {:.2} s", full.wall.as_secs_f64());
    println!("  cpu time:        {:.2} s", full.cpu.as_secs_f64());
    println!(
        "  peak RSS:        {:.1} MiB",
        full.peak_rss_kib as f64 / 1024.0
    );
    println!("  requests:        {}", full.requests);
    println!(
        "  rows in db:      {rows} ({:.0} rows/s)",
        rows as f64 / full.wall.as_secs_f64()
    );
    println!("  documents/samples written: {}", full.rows_written);
    println!("  database size:   {:.1} MiB", db_bytes as f64 / 1048576.0);
    println!("no-op incremental cycle");
    println!("  ok:              {}", noop.ok);
    println!("  wall time:       {:.2} s", noop.wall.as_secs_f64());
    println!("  cpu time:        {:.3} s", noop.cpu.as_secs_f64());
    println!(
        "  peak RSS:        {:.1} MiB",
        noop.peak_rss_kib as f64 / 1024.0
    );
    println!(
        "  requests:        {} ({} types)",
        noop.requests,
        ouradb::registry::DATA_TYPES.len()
    );
    println!("  rows written:    {}", noop.rows_written);
}
