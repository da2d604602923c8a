//! Synthetic, seeded history of one person for every collection of spec 1.37.
//! (Interface stub; the data helper replaces this file.)

use std::sync::Arc;

use jiff::Timestamp;
use jiff::civil::Date;

/// One stored document of a date-filtered or list collection.
#[derive(Debug, Clone)]
pub struct Document {
    pub id: String,
    /// Local day the API's `start_date`/`end_date` filter compares against.
    pub day: Date,
    /// UTC day of the document's start (workout is filtered by this).
    pub utc_day: Date,
    /// The document exactly as served, serialized once.
    pub json: Arc<str>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeartRateSample {
    pub ts: Timestamp,
    pub bpm: u16,
    pub source: HeartRateSource,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeartRateSource {
    Awake,
    Workout,
    Rest,
    Sleep,
    Live,
    Session,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatterySample {
    pub ts: Timestamp,
    pub level: u8,
    pub charging: Option<bool>,
    pub in_charger: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Create,
    Update,
    Delete,
}

/// A change to the dataset, what a webhook event reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Collection path segment, e.g. `daily_sleep`, `vO2_max`.
    pub collection: &'static str,
    pub id: String,
    pub op: Op,
}

/// Every collection path served, in spec order.
pub const DOCUMENT_COLLECTIONS: &[&str] = &[
    "daily_activity",
    "daily_cardiovascular_age",
    "daily_readiness",
    "daily_resilience",
    "daily_sleep",
    "daily_spo2",
    "daily_stress",
    "enhanced_tag",
    "rest_mode_period",
    "ring_configuration",
    "session",
    "sleep",
    "sleep_time",
    "tag",
    "vO2_max",
    "workout",
];

pub struct Dataset {
    pub today: Date,
}

impl Dataset {
    /// `days` days of history ending with `today` (the simulated current day).
    pub fn generate(_seed: u64, _days: u32, today: Date) -> Dataset {
        Dataset { today }
    }
    /// Documents of a collection, sorted by `day` then id.
    pub fn documents(&self, _collection: &str) -> &[Document] {
        &[]
    }
    pub fn document(&self, _collection: &str, _id: &str) -> Option<&Document> {
        None
    }
    /// Sorted by timestamp.
    pub fn heartrate(&self) -> &[HeartRateSample] {
        &[]
    }
    /// Sorted by timestamp.
    pub fn battery(&self) -> &[BatterySample] {
        &[]
    }
    pub fn personal_info(&self) -> &str {
        "{}"
    }
    /// Moves the clock forward `days` days, generating their data.
    pub fn advance_days(&mut self, _days: u32) -> Vec<Change> {
        Vec::new()
    }
    /// Revises recent documents the way Oura does (scores recomputed, steps
    /// finalised late, a sleep period edited).
    pub fn revise_recent(&mut self) -> Vec<Change> {
        Vec::new()
    }
    /// Adds a night that the ring delivered late (a past day that had no sleep).
    pub fn deliver_late(&mut self) -> Vec<Change> {
        Vec::new()
    }
    /// Deletes documents: a sleep period becomes `type: deleted`, a tag vanishes.
    pub fn delete_some(&mut self) -> Vec<Change> {
        Vec::new()
    }
}
