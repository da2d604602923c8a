//! The Oura API simulator: a deterministic synthetic person served over HTTP
//! with the real service's quirks and failures. Used by `ouradb demo`, the
//! `ouradb-sim` binary, the tests and the benchmarks; nothing on the daemon's
//! sync path depends on it.
//!
//! It deliberately shares no code with `crate::registry`: it models Oura's
//! behaviour independently, so a wrong assumption in the daemon is caught
//! rather than mirrored.

pub mod data;
