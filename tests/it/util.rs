//! Shared test harness.
#![allow(dead_code)]

use std::path::PathBuf;

/// The Oura OpenAPI 1.37 spec vendored with the tests.
pub fn spec_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/openapi-1.37.json")
}
