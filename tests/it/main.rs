//! The one integration-test binary. Each module covers one area; `util`
//! holds the shared harness.

mod sim_schema;
mod util;
mod sim_http;
