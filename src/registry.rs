//! The one definition of every Oura data type ouradb syncs.
//!
//! Fetching (`sync`), storing (`store`) and reporting (`status`) are all driven
//! by [`DATA_TYPES`]; adding a data type means adding one entry here and its
//! table to `schema.sql`, nothing else.

/// How a collection is queried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryStyle {
    /// `start_date` / `end_date` in the user's local zone, documents keyed by id.
    DateRange,
    /// `start_datetime` / `end_datetime` (ISO 8601 with offset), rows keyed by timestamp.
    DateTimeRange,
    /// A paginated list without date parameters (ring_configuration).
    List,
    /// A single document without pagination (personal_info).
    Single,
}

/// A `PublicSample` field (`{interval, items, timestamp}`) stored as child rows.
#[derive(Debug, Clone, Copy)]
pub struct SampleArray {
    /// JSON field on the document, e.g. `heart_rate`.
    pub field: &'static str,
    /// Child table, keyed by (`document_id`, `offset`).
    pub table: &'static str,
}

/// A string where every character is one interval (hypnograms, activity classes),
/// decoded into one child row per character.
#[derive(Debug, Clone, Copy)]
pub struct IntervalString {
    /// JSON field holding the string, e.g. `sleep_phase_5_min`.
    pub field: &'static str,
    /// JSON field holding the timestamp of the first interval.
    pub start_field: &'static str,
    /// Seconds per character.
    pub interval_seconds: u32,
    /// Child table, keyed by (`document_id`, `offset`).
    pub table: &'static str,
}

#[derive(Debug)]
pub struct DataType {
    /// Stable name used in config, `sync_state` and the CLI (`--type`).
    pub name: &'static str,
    /// Path segment under `/v2/usercollection/`.
    pub path: &'static str,
    pub query: QueryStyle,
    /// Largest window (days) one request chain may cover.
    pub window_days: u32,
    /// OAuth scope the data type needs.
    pub scope: &'static str,
    /// Table holding one row per document (or sample for time series).
    pub table: &'static str,
    /// JSON field holding the local day a document belongs to; `None` when
    /// the type has no day (time series are keyed by timestamp instead).
    pub day_field: Option<&'static str>,
    /// Nested objects whose scalar fields are flattened into `<prefix>_<field>`
    /// columns. Longest prefixes first: a column takes the first that matches.
    pub flatten: &'static [&'static str],
    pub samples: &'static [SampleArray],
    pub interval_strings: &'static [IntervalString],
    /// `data_type` in webhook events and subscriptions, when the type has webhooks.
    pub webhook: Option<&'static str>,
    /// A (field, value) pair by which the API marks a document as deleted
    /// instead of dropping it (sleep periods come back as `type: "deleted"`).
    pub deleted_marker: Option<(&'static str, &'static str)>,
}

impl DataType {
    pub fn is_time_series(&self) -> bool {
        self.query == QueryStyle::DateTimeRange
    }

    /// Whether the type has a history to backfill.
    pub fn has_history(&self) -> bool {
        matches!(
            self.query,
            QueryStyle::DateRange | QueryStyle::DateTimeRange
        )
    }
}

const fn daily(
    name: &'static str,
    scope: &'static str,
    flatten: &'static [&'static str],
) -> DataType {
    DataType {
        name,
        path: name,
        query: QueryStyle::DateRange,
        window_days: DOCUMENT_WINDOW_DAYS,
        scope,
        table: name,
        day_field: Some("day"),
        flatten,
        samples: &[],
        interval_strings: &[],
        webhook: Some(name),
        deleted_marker: None,
    }
}

/// Date-keyed collections are paginated by the API, so one window can be long;
/// a year keeps the request count of a multi-year backfill low while a kill -9
/// costs at most one year of one type to re-fetch.
pub const DOCUMENT_WINDOW_DAYS: u32 = 365;
/// The API rejects time-series requests spanning more than 30 days.
pub const TIME_SERIES_WINDOW_DAYS: u32 = 30;

pub static DATA_TYPES: &[DataType] = &[
    DataType {
        samples: &[SampleArray {
            field: "met",
            table: "daily_activity_met",
        }],
        interval_strings: &[IntervalString {
            field: "class_5_min",
            start_field: "timestamp",
            interval_seconds: 300,
            table: "daily_activity_class",
        }],
        ..daily("daily_activity", "daily", &["contributors"])
    },
    daily("daily_cardiovascular_age", "daily", &[]),
    daily("daily_readiness", "daily", &["contributors"]),
    daily("daily_resilience", "daily", &["contributors"]),
    daily("daily_sleep", "daily", &["contributors"]),
    daily("daily_spo2", "spo2", &["spo2_percentage"]),
    daily("daily_stress", "daily", &[]),
    DataType {
        day_field: Some("start_day"),
        ..daily("enhanced_tag", "tag", &[])
    },
    HEARTRATE,
    DataType {
        name: "personal_info",
        path: "personal_info",
        query: QueryStyle::Single,
        window_days: 0,
        scope: "personal",
        table: "personal_info",
        day_field: None,
        flatten: &[],
        samples: &[],
        interval_strings: &[],
        webhook: None,
        deleted_marker: None,
    },
    DataType {
        day_field: Some("start_day"),
        ..daily("rest_mode_period", "daily", &[])
    },
    DataType {
        name: "ring_battery_level",
        path: "ring_battery_level",
        scope: "daily",
        table: "ring_battery_level",
        ..HEARTRATE
    },
    DataType {
        query: QueryStyle::List,
        window_days: 0,
        day_field: None,
        ..daily("ring_configuration", "daily", &[])
    },
    DataType {
        samples: &[
            SampleArray {
                field: "heart_rate",
                table: "session_heart_rate",
            },
            SampleArray {
                field: "heart_rate_variability",
                table: "session_hrv",
            },
            SampleArray {
                field: "motion_count",
                table: "session_motion_count",
            },
        ],
        ..daily("session", "session", &[])
    },
    DataType {
        samples: &[
            SampleArray {
                field: "heart_rate",
                table: "sleep_heart_rate",
            },
            SampleArray {
                field: "hrv",
                table: "sleep_hrv",
            },
        ],
        interval_strings: &[
            IntervalString {
                field: "sleep_phase_5_min",
                start_field: "bedtime_start",
                interval_seconds: 300,
                table: "sleep_phase",
            },
            IntervalString {
                field: "movement_30_sec",
                start_field: "bedtime_start",
                interval_seconds: 30,
                table: "sleep_movement",
            },
        ],
        deleted_marker: Some(("type", "deleted")),
        ..daily(
            "sleep",
            "daily",
            &["readiness_contributors", "readiness", "contributors"],
        )
    },
    daily("sleep_time", "daily", &["optimal_bedtime"]),
    daily("tag", "tag", &[]),
    DataType {
        path: "vO2_max",
        ..daily("vo2_max", "daily", &[])
    },
    daily("workout", "workout", &[]),
];

const HEARTRATE: DataType = DataType {
    name: "heartrate",
    path: "heartrate",
    query: QueryStyle::DateTimeRange,
    window_days: TIME_SERIES_WINDOW_DAYS,
    scope: "heartrate",
    table: "heartrate",
    day_field: None,
    flatten: &[],
    samples: &[],
    interval_strings: &[],
    webhook: None,
    deleted_marker: None,
};

/// Look a data type up by its `name` (as used in config and `--type`).
pub fn find(name: &str) -> Option<&'static DataType> {
    DATA_TYPES.iter().find(|d| d.name == name)
}

/// Look a data type up by its webhook `data_type`.
pub fn find_by_webhook(data_type: &str) -> Option<&'static DataType> {
    DATA_TYPES.iter().find(|d| d.webhook == Some(data_type))
}

/// The names of every data type, for error messages.
pub fn names() -> Vec<&'static str> {
    DATA_TYPES.iter().map(|d| d.name).collect()
}

/// OAuth scopes Oura grants today (spec 1.41 added `heart_health`).
pub const KNOWN_SCOPES: &[&str] = &[
    "email",
    "personal",
    "daily",
    "heartrate",
    "workout",
    "tag",
    "session",
    "spo2",
    "heart_health",
];

/// Scopes Oura renamed: (old name, current name). A grant listing the old
/// name still covers the data types of the current one.
pub const SCOPE_ALIASES: &[(&str, &str)] = &[("spo2Daily", "spo2")];

/// The current name of a scope (`spo2Daily` is `spo2`).
pub fn canonical_scope(scope: &str) -> &str {
    SCOPE_ALIASES
        .iter()
        .find(|(old, _)| *old == scope)
        .map_or(scope, |(_, new)| new)
}

/// Whether a grant listing `granted` covers `needed`, old names included.
pub fn grant_covers(granted: &[String], needed: &str) -> bool {
    let needed = canonical_scope(needed);
    granted.iter().any(|g| canonical_scope(g) == needed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_tables_are_unique() {
        let mut names: Vec<_> = DATA_TYPES.iter().map(|d| d.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), DATA_TYPES.len());
        assert_eq!(DATA_TYPES.len(), 19, "spec 1.37 has 19 collections");
        assert_eq!(find("heartrate").unwrap().path, "heartrate");
        assert_eq!(
            find("ring_battery_level").unwrap().query,
            QueryStyle::DateTimeRange
        );
        assert_eq!(find("ring_battery_level").unwrap().window_days, 30);
        assert_eq!(find_by_webhook("vo2_max").unwrap().path, "vO2_max");
        assert!(find("personal_info").unwrap().webhook.is_none());
        assert!(find("heartrate").unwrap().webhook.is_none());
    }

    #[test]
    fn either_spo2_scope_name_covers_daily_spo2() {
        let dt = find("daily_spo2").unwrap();
        assert_eq!(dt.scope, "spo2");
        assert!(grant_covers(&["spo2".into()], dt.scope));
        assert!(grant_covers(&["spo2Daily".into()], dt.scope));
        assert!(grant_covers(&["spo2".into()], "spo2Daily"));
        assert!(!grant_covers(&["daily".into()], dt.scope));
        for dt in DATA_TYPES {
            assert!(KNOWN_SCOPES.contains(&dt.scope), "{}", dt.name);
        }
    }
}
