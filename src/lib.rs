//! ouradb: keeps a complete, always-current copy of a person's Oura Ring data
//! in one local SQLite file. See ARCHITECTURE.md for the code map.

pub mod api;
pub mod cli;
pub mod clock;
pub mod config;
pub mod coverage;
pub mod daemon;
pub mod error_kind;
pub mod metrics;
pub mod registry;
pub mod rows;
pub mod secret;
pub mod store;
pub mod sync;
pub mod webhook;
