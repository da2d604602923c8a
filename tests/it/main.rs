//! The one integration-test binary. Each module covers one area; `util`
//! holds the shared harness.

// The bans in clippy.toml keep the daemon's invariants; tests compare with
// the real time, read test switches from the environment and share plain
// state with test servers.
#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    reason = "the clippy.toml bans are invariants of the daemon, not of its tests"
)]

mod accounts;
mod accounts_cli;
mod cli;
mod coverage;
mod daemon;
mod dashboards;
mod db;
mod hostile;
mod household;
mod interbeat;
mod metrics;
mod not_available;
mod oauth;
mod ops;
mod pg;
mod readers;
mod real_accounts;
mod sim_http;
mod sim_schema;
mod store;
mod sync;
mod tidy;
mod util;
mod webhook;
