//! Cost growth with history length: a cold sync of 1, 2, 5 and 10
//! simulated years of all types (interbeat intervals without beats), each from a fresh simulator into a
//! fresh database. A linear cost keeps time per year flat; memory should
//! stay flat regardless.
//!
//! `cargo bench --bench growth -- [years...]` (default 1 2 5 10).

#[path = "common/mod.rs"]
mod common;

use common::{Sim, days_of, measure, mib};

fn main() {
    let mut years: Vec<u32> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .filter_map(|a| a.parse().ok())
        .collect();
    if years.is_empty() {
        years = vec![1, 2, 5, 10];
    }
    let dir = tempfile::tempdir().expect("tempdir");
    println!(
        "cold sync growth, all {} types (interbeat_interval without beats); {}; {}",
        ouradb::registry::DATA_TYPES.len(),
        common::machine(),
        common::date_now()
    );
    println!(
        "| years | wall s | CPU s | CPU s / year | peak RSS MiB | requests | rows | database MiB |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for y in years {
        let days = days_of(y);
        // Cost, not quota: 10 years need more requests than one 5-minute
        // window allows, so both the simulator's and ouradb's limits are
        // lifted.
        let sim = Sim::start(
            days,
            &[
                "--rate-limit",
                "4294967295",
                "--app-rate-limit",
                "4294967295",
            ],
        );
        let db = dir.path().join(format!("{y}y.sqlite"));
        let config = dir.path().join(format!("{y}y.toml"));
        common::write_config(
            &config,
            &sim.url,
            &db,
            days,
            "[rate_limit]\nrequests = 1000000\n",
        );
        let m = measure(common::ouradb_sync(&config));
        drop(sim);
        let requests = common::requests_of(&m.stdout);
        let rows = common::rows_in(&db);
        let size = std::fs::metadata(&db).map_or(0, |m| m.len());
        println!(
            "| {y} | {:.2} | {:.2} | {:.2} | {:.1} | {requests} | {rows} | {:.0} |{}",
            m.wall.as_secs_f64(),
            m.cpu.as_secs_f64(),
            m.cpu.as_secs_f64() / f64::from(y),
            mib(m.peak_rss_kib),
            size as f64 / 1048576.0,
            if m.ok { "" } else { " FAILED" }
        );
        let _ = std::fs::remove_file(&db);
    }
}
