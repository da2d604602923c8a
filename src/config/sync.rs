//! `[sync]`: which data types, from when, how far back each run looks, and
//! how much a run may read and have in flight.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::civil::Date;
use serde::Deserialize;

use super::ConfigError;
use super::defaults::{
    DEFAULT_BACKFILL_START, DEFAULT_LOOKBACK_DAYS, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_STALE_AFTER_HOURS, MAX_MAX_IN_FLIGHT, MIN_MAX_BODY_BYTES,
};
use crate::registry::{self, DataType};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSync {
    backfill_start: Option<String>,
    lookback_days: Option<u32>,
    #[serde(default)]
    lookback: BTreeMap<String, u32>,
    types: Option<Vec<String>>,
    stale_after_hours: Option<u64>,
    max_body_bytes: Option<u64>,
    max_in_flight: Option<usize>,
}

/// `[sync]`, validated; the fields of [`super::Config`] of the same names.
pub(super) struct SyncSection {
    pub backfill_start: Date,
    pub lookback_days: u32,
    pub lookback_overrides: BTreeMap<String, u32>,
    pub types: Vec<&'static DataType>,
    pub stale_after: Duration,
    pub max_body_bytes: u64,
    pub max_in_flight: usize,
}

pub(super) fn sync_section(raw: RawSync) -> Result<SyncSection, ConfigError> {
    let max_body_bytes = max_body_bytes(raw.max_body_bytes)?;
    let backfill_start = backfill_start(raw.backfill_start)?;
    let types = types(raw.types)?;
    for name in raw.lookback.keys() {
        if registry::find(name).is_none() {
            return Err(ConfigError::invalid(
                &format!("sync.lookback.{name}"),
                "is not a data type",
                format!("use any of: {}", registry::names().join(", ")),
            ));
        }
    }
    let stale_after_hours = raw.stale_after_hours.unwrap_or(DEFAULT_STALE_AFTER_HOURS);
    Ok(SyncSection {
        backfill_start,
        lookback_days: raw.lookback_days.unwrap_or(DEFAULT_LOOKBACK_DAYS),
        lookback_overrides: raw.lookback,
        types,
        stale_after: Duration::from_secs(3600 * stale_after_hours),
        max_body_bytes,
        max_in_flight: max_in_flight(raw.max_in_flight)?,
    })
}

fn max_body_bytes(raw: Option<u64>) -> Result<u64, ConfigError> {
    let max_body_bytes = raw.unwrap_or(DEFAULT_MAX_BODY_BYTES);
    if max_body_bytes < MIN_MAX_BODY_BYTES {
        return Err(ConfigError::invalid(
            "sync.max_body_bytes",
            format!("{max_body_bytes} is too small to hold a page"),
            format!(
                "use at least {MIN_MAX_BODY_BYTES}; the default is {DEFAULT_MAX_BODY_BYTES} (64 MiB)"
            ),
        ));
    }
    Ok(max_body_bytes)
}

fn backfill_start(raw: Option<String>) -> Result<Date, ConfigError> {
    match raw {
        None => Ok(DEFAULT_BACKFILL_START),
        Some(s) => s.parse::<Date>().map_err(|_| {
            ConfigError::invalid(
                "sync.backfill_start",
                format!("`{s}` is not a date"),
                "use YYYY-MM-DD, e.g. \"2015-01-01\"",
            )
        }),
    }
}

/// `sync.types` in registry order; absent or empty: every type.
fn types(raw: Option<Vec<String>>) -> Result<Vec<&'static DataType>, ConfigError> {
    let list = match raw {
        Some(list) if !list.is_empty() => list,
        _ => return Ok(registry::DATA_TYPES.iter().collect()),
    };
    for name in &list {
        if registry::find(name).is_none() {
            return Err(ConfigError::invalid(
                "sync.types",
                format!("unknown data type `{name}`"),
                format!("use any of: {}", registry::names().join(", ")),
            ));
        }
    }
    Ok(registry::DATA_TYPES
        .iter()
        .filter(|d| list.iter().any(|n| n == d.name))
        .collect())
}

fn max_in_flight(raw: Option<usize>) -> Result<usize, ConfigError> {
    match raw.unwrap_or(DEFAULT_MAX_IN_FLIGHT) {
        n @ 1..=MAX_MAX_IN_FLIGHT => Ok(n),
        n => Err(ConfigError::invalid(
            "sync.max_in_flight",
            format!("{n} requests in flight"),
            format!("use 1 to {MAX_MAX_IN_FLIGHT} (default {DEFAULT_MAX_IN_FLIGHT})"),
        )),
    }
}
