//! The one integration-test binary. Each module covers one area; `util`
//! holds the shared harness.

mod util;
mod oauth;
