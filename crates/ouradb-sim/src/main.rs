//! `ouradb-sim`: the Oura API v2 simulator as a standalone server.
//! Prints `listening on http://127.0.0.1:PORT` as its first stdout line and
//! serves until SIGTERM or SIGINT, then prints the most data requests it
//! answered at once to stderr (what a client's in-flight cap allowed).

use std::io::Write;

use clap::Parser;
use ouradb_sim::SimServer;
use ouradb_sim::cli::Args;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cfg = Args::parse().into_config();
    let server = SimServer::start(cfg).await?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {}", server.base_url())?;
        out.flush()?;
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    eprintln!(
        "most data requests answered at once: {}",
        server.max_concurrent_requests()
    );
    server.stop().await;
    Ok(())
}
