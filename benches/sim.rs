//! Requests per second the simulator serves on loopback: small pages
//! (one `daily_sleep` document) over keep-alive connections.
//!
//! `cargo bench --bench sim -- [requests] [connections]`

use std::time::{Duration, Instant};

use jiff::civil::date;
use ouradb_sim::{SimConfig, SimServer};

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| !a.starts_with('-'));
    let total: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let conns: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(32);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let mut cfg = SimConfig::new(7, 730, date(2024, 6, 30));
        cfg.log_requests = false;
        cfg.rate_limit = u32::MAX;
        cfg.app_rate_limit = u32::MAX;
        let srv = SimServer::start(cfg).await.expect("start");
        let url = format!(
            "{}/v2/usercollection/daily_sleep?start_date=2024-06-01&end_date=2024-06-01",
            srv.base_url()
        );
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(conns)
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client");
        // Warm up connections.
        for _ in 0..conns {
            let r = client.get(&url).bearer_auth("sim-token").send().await.expect("warmup");
            assert_eq!(r.status(), 200);
            r.bytes().await.expect("warmup body");
        }
        let per = total / conns;
        let t = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..conns {
            let c = client.clone();
            let u = url.clone();
            tasks.push(tokio::spawn(async move {
                let mut ok = 0usize;
                for _ in 0..per {
                    let r = c.get(&u).bearer_auth("sim-token").send().await.expect("send");
                    if r.status() == 200 && !r.bytes().await.expect("body").is_empty() {
                        ok += 1;
                    }
                }
                ok
            }));
        }
        let mut ok = 0;
        for t in tasks {
            ok += t.await.expect("task");
        }
        let secs = t.elapsed().as_secs_f64();
        println!(
            "sim: {ok} of {} requests OK over {conns} connections in {secs:.2} s = {:.0} requests/s",
            per * conns,
            ok as f64 / secs
        );
        srv.stop().await;
    });
}
