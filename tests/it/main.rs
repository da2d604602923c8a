//! The one integration-test binary. Each module covers one area; `util`
//! holds the shared harness.

mod cli;
mod daemon;
mod dashboards;
mod hostile;
mod oauth;
mod real_accounts;
mod sim_http;
mod sim_schema;
mod store;
mod sync;
mod util;
mod webhook;
