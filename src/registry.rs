//! The one definition of every Oura data type ouradb syncs.
//!
//! Fetching (`sync`), storing (`store`) and reporting (`status`) are all driven
//! by [`DATA_TYPES`]; adding a data type means adding one entry here and its
//! table to `schema.sql`, nothing else.

pub mod known;

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

/// A `PublicSample` field (`{interval, items, timestamp}`), one row per
/// sample in its table or view.
#[derive(Debug, Clone, Copy)]
pub struct SampleArray {
    /// JSON field on the document, e.g. `heart_rate`.
    pub field: &'static str,
    /// Child table or view: `document_pk`, `offset`, `timestamp`, `value`.
    pub table: &'static str,
    pub storage: SampleStorage,
}

/// How the samples of a [`SampleArray`] reach their rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleStorage {
    /// Written row by row with their document.
    Rows,
    /// Decoded from the document's `raw_json` by a view on every read
    /// (schema_met_view.sql): for arrays so long that writing them row by
    /// row would dominate a backfill. The document's table keeps the
    /// array's `<field>_timestamp` and `<field>_interval` for the view.
    View,
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

/// How a document is identified when it comes without an `id` (the live
/// API serves `daily_cardiovascular_age` that way) and how an id-less copy
/// is matched to a stored one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NaturalKey {
    /// One document per combination of these fields' values. `day` fields
    /// are compared after normalisation (see [`DataType::document_day`]).
    Fields(&'static [&'static str]),
    /// The type holds exactly one document (personal_info).
    Single,
    /// Nothing identifies a document but its id: one without is quarantined.
    None,
}

/// What it means when a stored document is missing from a complete re-fetch
/// of its window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vanishing {
    /// The API drops deleted documents (tags): a document still missing from
    /// a complete fetch of its window 24 hours after it was first missed is
    /// removed.
    Deletes,
    /// The API marks deletions instead (or never deletes): absence proves
    /// nothing, the stored copy stays.
    Ignored,
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
    /// Largest window (days) of one backfill request chain, at most
    /// `window_days`. A window's pages follow each other's `next_token`,
    /// one round trip at a time, so a first sync takes at least as long as
    /// its longest chain: a time series' 30-day window was a chain of ~37
    /// pages (7 s at 200 ms a round trip), shorter windows let more chains
    /// share `sync.max_in_flight` and end together.
    pub backfill_window_days: u32,
    /// Backfill windows fetched side by side, never more than
    /// `sync.max_in_flight` ([`ALL_THE_CAP_ALLOWS`] for as many as it
    /// allows). A time series' pages are small, so its windows fill what
    /// the cap leaves; a document type has a window a year whose pages are
    /// large in memory (a day of activity holds 1,440 MET samples): one.
    pub backfill_windows_in_flight: usize,
    /// How a backfill request of this type ranks against other requests
    /// when the in-flight cap or the quota binds (its incremental requests
    /// rank by [`Priority::of_recent_requests`]).
    pub backfill_priority: Priority,
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
    /// Identity of a document that has no `id`.
    pub natural_key: NaturalKey,
    /// Date-time fields (RFC 3339 with the user's offset) whose local date is
    /// the document's day when `day_field` is missing or unreadable, tried in
    /// order.
    pub day_from: &'static [&'static str],
    pub vanishing: Vanishing,
    /// Default cron (6 fields, seconds first) of the type's job when
    /// `[schedule]` names neither the type nor `default`.
    pub schedule: &'static str,
    /// A date-time field whose value in this type's documents dates the
    /// start of the user's history (the ring's set-up time): every backfill
    /// starts at most a week before the earliest one, when every document
    /// has one (see `sync::engine::backfill_start_from_history`). Types
    /// with such a field run before the others.
    pub history_start: Option<&'static str>,
    /// Two small integer fields of a time-series row stored as one
    /// integer column: a row's record then has one value, not two.
    pub packed: Option<PackedFields>,
}

/// Two integer fields a time series stores in one column, `column`, as
/// `high * 2^low_bits + low`; virtual columns named after the two fields
/// read them back. A row whose `low` falls outside `0..2^low_bits`, or
/// whose `high` or `low` is not an integer, has the column NULL and keeps
/// its whole JSON beside the table (as any row its columns cannot restore).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackedFields {
    pub column: &'static str,
    pub high: &'static str,
    pub low: &'static str,
    pub low_bits: u32,
}

impl PackedFields {
    /// The stored value of `high` and `low`, when they fit.
    pub fn pack(&self, high: i64, low: i64) -> Option<i64> {
        if !(0..1 << self.low_bits).contains(&low) {
            return None;
        }
        high.checked_mul(1 << self.low_bits).map(|h| h + low)
    }
}

/// Which requests go first when `sync.max_in_flight` or the quota binds,
/// lowest first: the days a dashboard shows fill before old history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// Incremental runs, re-checks, metadata and webhook fetches of a type
    /// caught up: the only requests the quota's reserve is kept for
    /// (`api::limiter::recent_reserve`).
    Recent,
    /// The same requests of a type that has not caught up yet (its first
    /// sync, a new account's): before any history, so a new account's
    /// dashboards fill from the recent days, but after every caught-up
    /// account's runs, and outside the reserve: ten accounts starting at
    /// once would otherwise spend it on their first days, and one caught-up
    /// account's 15-minute run would wait for the window to turn.
    CatchUp,
    /// Backfill of daily documents: a year of history in a few requests.
    History,
    /// Backfill of time series: most of a first sync's requests.
    BulkHistory,
    /// Every request of a type whose volume dwarfs all others together
    /// (raw interbeat intervals: ~27,000 rows a night), incremental runs
    /// included: it takes only what the other types leave, so it never
    /// delays them.
    Raw,
}

impl Priority {
    /// The rank of an incremental run, re-check or whole-collection fetch
    /// of a type whose backfill ranks at `self`: first once the type has
    /// `caught_up` (its backfill complete), else [`Priority::CatchUp`],
    /// unless the type always yields ([`Priority::Raw`]).
    pub fn of_recent_requests(self, caught_up: bool) -> Priority {
        match (self, caught_up) {
            (Priority::Raw, _) => Priority::Raw,
            (_, true) => Priority::Recent,
            (_, false) => Priority::CatchUp,
        }
    }
}

/// [`DataType::backfill_windows_in_flight`]: as many as `sync.max_in_flight`.
pub const ALL_THE_CAP_ALLOWS: usize = usize::MAX;

/// Time series change all day: every 15 minutes.
pub const SCHEDULE_FREQUENT: &str = "0 */15 * * * *";
/// Daily documents: hourly, at :05.
pub const SCHEDULE_HOURLY: &str = "0 5 * * * *";
/// Slow-changing metadata (profile, rings): once a day, at 03:30.
pub const SCHEDULE_DAILY: &str = "0 30 3 * * *";

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
        backfill_window_days: DOCUMENT_WINDOW_DAYS,
        backfill_windows_in_flight: 1,
        backfill_priority: Priority::History,
        scope,
        table: name,
        day_field: Some("day"),
        flatten,
        samples: &[],
        interval_strings: &[],
        webhook: Some(name),
        deleted_marker: None,
        natural_key: NaturalKey::Fields(&["day"]),
        // Daily documents that carry a `timestamp` (documented or not) start
        // at local midnight of their day.
        day_from: &["timestamp"],
        vanishing: Vanishing::Ignored,
        schedule: SCHEDULE_HOURLY,
        history_start: None,
        packed: None,
    }
}

/// Date-keyed collections are paginated by the API, so one window can be long;
/// a year keeps the request count of a multi-year backfill low while a kill -9
/// costs at most one year of one type to re-fetch.
pub const DOCUMENT_WINDOW_DAYS: u32 = 365;
/// The API rejects time-series requests spanning more than 30 days.
pub const TIME_SERIES_WINDOW_DAYS: u32 = 30;
/// A backfill window of a time series. With `sync.max_in_flight` windows
/// side by side the longest chain (~37 pages of heart rate) no longer
/// bounds a first sync: 10-day windows gave the same 5-year wall time at
/// 200 ms a round trip (38.8 s vs 38.5 s) but 40 % more without latency,
/// probably because a chain waits for its window's last commit before the
/// next window starts (BENCHMARKS.md).
pub const TIME_SERIES_BACKFILL_WINDOW_DAYS: u32 = 30;

pub static DATA_TYPES: &[DataType] = &[
    DataType {
        // 1,440 one-minute samples a day: half the rows of a backfill.
        samples: &[SampleArray {
            field: "met",
            table: "daily_activity_met",
            storage: SampleStorage::View,
        }],
        interval_strings: &[IntervalString {
            field: "class_5_min",
            start_field: "timestamp",
            interval_seconds: 300,
            table: "daily_activity_class",
        }],
        ..daily("daily_activity", "daily", &["contributors", "met"])
    },
    daily("daily_cardiovascular_age", "daily", &[]),
    daily("daily_readiness", "daily", &["contributors"]),
    daily("daily_resilience", "daily", &["contributors"]),
    daily("daily_sleep", "daily", &["contributors"]),
    daily("daily_spo2", "spo2", &["spo2_percentage"]),
    daily("daily_stress", "daily", &[]),
    DataType {
        day_field: Some("start_day"),
        natural_key: NaturalKey::Fields(&["start_time", "tag_type_code"]),
        day_from: &["start_time"],
        vanishing: Vanishing::Deletes,
        ..daily("enhanced_tag", "tag", &[])
    },
    HEARTRATE,
    DataType {
        // The ring's raw beat-to-beat intervals: served by the live API
        // though spec 1.37 does not list it (newer specs' generated clients
        // have `PublicInterbeatIntervalRow`: timestamp, timestamp_unix in
        // ms, ibi in ms, validity). ~100 times heart rate's rows.
        name: "interbeat_interval",
        path: "interbeat_interval",
        table: "interbeat_interval",
        backfill_priority: Priority::Raw,
        // Beats reach the cloud when the app syncs the ring, mostly in the
        // morning; each run re-reads the lookback (~27 pages a night).
        schedule: SCHEDULE_HOURLY,
        // A night's beats are ~27 pages that follow one another by
        // next_token: heart rate's 30-day windows made each a chain of
        // ~800 round trips (90 nights: 178 s at 200 ms a request, whatever
        // the cap). A week a window: 60 s, and 16.7 bytes a beat against
        // 16.9 (1-day windows: 53 s but 18.4 bytes, their inserts split
        // more pages); BENCHMARKS.md.
        backfill_window_days: 7,
        // A beat's interval (at most 2,000 ms) and validity code (0, 1
        // or 2) share one 2-byte integer: one value less in each of
        // millions of records saves a byte a beat (BENCHMARKS.md).
        packed: Some(PackedFields {
            column: "ibi_validity",
            high: "ibi",
            low: "validity",
            low_bits: 3,
        }),
        ..HEARTRATE
    },
    DataType {
        name: "personal_info",
        path: "personal_info",
        query: QueryStyle::Single,
        window_days: 0,
        backfill_window_days: 0,
        backfill_windows_in_flight: 1,
        backfill_priority: Priority::Recent,
        scope: "personal",
        table: "personal_info",
        day_field: None,
        flatten: &[],
        samples: &[],
        interval_strings: &[],
        webhook: None,
        deleted_marker: None,
        natural_key: NaturalKey::Single,
        day_from: &[],
        vanishing: Vanishing::Ignored,
        schedule: SCHEDULE_DAILY,
        history_start: None,
        packed: None,
    },
    DataType {
        day_field: Some("start_day"),
        natural_key: NaturalKey::Fields(&["start_time"]),
        day_from: &["start_time"],
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
        backfill_window_days: 0,
        backfill_priority: Priority::Recent,
        day_field: None,
        natural_key: NaturalKey::None,
        day_from: &[],
        schedule: SCHEDULE_DAILY,
        history_start: Some("set_up_at"),
        ..daily("ring_configuration", "daily", &[])
    },
    DataType {
        samples: &[
            SampleArray {
                field: "heart_rate",
                table: "session_heart_rate",
                storage: SampleStorage::Rows,
            },
            SampleArray {
                field: "heart_rate_variability",
                table: "session_hrv",
                storage: SampleStorage::Rows,
            },
            SampleArray {
                field: "motion_count",
                table: "session_motion_count",
                storage: SampleStorage::Rows,
            },
        ],
        natural_key: NaturalKey::Fields(&["start_datetime", "type"]),
        day_from: &["start_datetime"],
        ..daily("session", "session", &[])
    },
    DataType {
        samples: &[
            SampleArray {
                field: "heart_rate",
                table: "sleep_heart_rate",
                storage: SampleStorage::Rows,
            },
            SampleArray {
                field: "hrv",
                table: "sleep_hrv",
                storage: SampleStorage::Rows,
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
        natural_key: NaturalKey::Fields(&["bedtime_start"]),
        // A period counts for the day it ends on (the morning of a night).
        day_from: &["bedtime_end"],
        ..daily(
            "sleep",
            "daily",
            &["readiness_contributors", "readiness", "contributors"],
        )
    },
    daily("sleep_time", "daily", &["optimal_bedtime"]),
    DataType {
        natural_key: NaturalKey::Fields(&["timestamp"]),
        vanishing: Vanishing::Deletes,
        ..daily("tag", "tag", &[])
    },
    DataType {
        path: "vO2_max",
        ..daily("vo2_max", "daily", &[])
    },
    DataType {
        natural_key: NaturalKey::Fields(&["start_datetime", "activity"]),
        day_from: &["start_datetime"],
        ..daily("workout", "workout", &[])
    },
];

const HEARTRATE: DataType = DataType {
    name: "heartrate",
    path: "heartrate",
    query: QueryStyle::DateTimeRange,
    window_days: TIME_SERIES_WINDOW_DAYS,
    backfill_window_days: TIME_SERIES_BACKFILL_WINDOW_DAYS,
    backfill_windows_in_flight: ALL_THE_CAP_ALLOWS,
    backfill_priority: Priority::BulkHistory,
    scope: "heartrate",
    table: "heartrate",
    day_field: None,
    flatten: &[],
    samples: &[],
    interval_strings: &[],
    webhook: None,
    deleted_marker: None,
    natural_key: NaturalKey::Fields(&["timestamp"]),
    day_from: &[],
    vanishing: Vanishing::Ignored,
    schedule: SCHEDULE_FREQUENT,
    history_start: None,
    packed: None,
};

/// The prefix of ids ouradb makes up for documents served without one; no
/// Oura id has it (they are UUIDs or hex strings).
pub const SYNTHETIC_ID_PREFIX: &str = "key:";

impl DataType {
    /// The document's local day: its `day_field` as `YYYY-MM-DD`, the basic
    /// form `YYYYMMDD` or the date part of a date-time; failing that, the
    /// local date of the first [`DataType::day_from`] field that parses.
    /// `None` when the type has no day or none can be found.
    pub fn document_day(&self, doc: &serde_json::Value) -> Option<jiff::civil::Date> {
        let field = self.day_field?;
        if let Some(d) = doc.get(field).and_then(|v| v.as_str()).and_then(parse_day) {
            return Some(d);
        }
        self.day_from.iter().find_map(|f| {
            let s = doc.get(*f)?.as_str()?;
            // The local date of a date-time with offset is its first ten
            // characters; checking the whole value rejects garbage.
            s.parse::<jiff::Timestamp>().ok()?;
            s.get(..10)?.parse().ok()
        })
    }

    /// Whether the type holds one document per day: its natural key is its
    /// day alone. A document with a new id for a day stored under another
    /// id replaces that one (the store keeps the replaced one's JSON in
    /// `document_history`).
    pub fn one_per_day(&self) -> bool {
        matches!(self.natural_key, NaturalKey::Fields([field]) if Some(*field) == self.day_field)
    }

    /// The id ouradb stores for `doc`: its own `id`, else one made from its
    /// natural key (`key:` followed by the key's values, `|`-separated).
    /// `None` when neither exists.
    pub fn document_key(&self, doc: &serde_json::Value) -> Option<String> {
        if let Some(id) = doc
            .get("id")
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
        {
            return Some(id.to_owned());
        }
        self.synthetic_id(doc)
    }

    /// The made-up id for `doc`'s natural key, whether or not it has an id.
    pub fn synthetic_id(&self, doc: &serde_json::Value) -> Option<String> {
        let values = self.natural_key_values(doc)?;
        Some(format!("{SYNTHETIC_ID_PREFIX}{}", values.join("|")))
    }

    /// The values of the natural key's fields (days normalised), in order.
    pub fn natural_key_values(&self, doc: &serde_json::Value) -> Option<Vec<String>> {
        match self.natural_key {
            NaturalKey::None => None,
            NaturalKey::Single => Some(vec![self.name.to_owned()]),
            NaturalKey::Fields(fields) => fields
                .iter()
                .map(|f| {
                    if Some(*f) == self.day_field {
                        return self.document_day(doc).map(|d| d.to_string());
                    }
                    match doc.get(*f)? {
                        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
                        serde_json::Value::Number(n) => Some(n.to_string()),
                        _ => None,
                    }
                })
                .collect(),
        }
    }
}

/// A day as `YYYY-MM-DD`, basic `YYYYMMDD`, or the date part of a date-time.
fn parse_day(s: &str) -> Option<jiff::civil::Date> {
    if s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit()) {
        let (y, m, d) = (&s[..4], &s[4..6], &s[6..]);
        return jiff::civil::Date::new(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?).ok();
    }
    let day: jiff::civil::Date = s.get(..10)?.parse().ok()?;
    (s.len() == 10 || s.parse::<jiff::Timestamp>().is_ok() || s[10..].starts_with('T'))
        .then_some(day)
}

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

/// The current name of a scope as a grant may list it: without a
/// namespace prefix (Oura has answered `extapi:daily` for `daily` since
/// September 2026; any `prefix:` is dropped) and renamed (`spo2Daily` is
/// `spo2`). Grants are stored as received and compared through this.
pub fn canonical_scope(scope: &str) -> &str {
    let bare = scope.rsplit_once(':').map_or(scope, |(_, name)| name);
    SCOPE_ALIASES
        .iter()
        .find(|(old, _)| *old == bare)
        .map_or(bare, |(_, new)| new)
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
        assert_eq!(
            DATA_TYPES.len(),
            20,
            "spec 1.37's 19 collections and interbeat_interval"
        );
        assert_eq!(find("heartrate").unwrap().path, "heartrate");
        assert_eq!(
            find("ring_battery_level").unwrap().query,
            QueryStyle::DateTimeRange
        );
        assert_eq!(find("ring_battery_level").unwrap().window_days, 30);
        assert_eq!(find_by_webhook("vo2_max").unwrap().path, "vO2_max");
        assert!(find("personal_info").unwrap().webhook.is_none());
        assert!(find("heartrate").unwrap().webhook.is_none());
        assert_eq!(
            find("ring_battery_level").unwrap().schedule,
            SCHEDULE_FREQUENT
        );
        assert_eq!(find("personal_info").unwrap().schedule, SCHEDULE_DAILY);
        assert_eq!(find("daily_sleep").unwrap().schedule, SCHEDULE_HOURLY);
        let dating: Vec<_> = DATA_TYPES
            .iter()
            .filter(|d| d.history_start.is_some())
            .map(|d| d.name)
            .collect();
        assert_eq!(dating, ["ring_configuration"]);
    }

    #[test]
    fn backfill_windows_fit_their_request_windows_and_history_ranks_below_recent_days() {
        for d in DATA_TYPES {
            assert!(d.backfill_window_days <= d.window_days, "{}", d.name);
            assert_eq!(d.has_history(), d.backfill_window_days > 0, "{}", d.name);
            if d.has_history() {
                assert!(d.backfill_priority > Priority::Recent, "{}", d.name);
            }
        }
        // Daily documents' history before the time series' bulk.
        assert!(
            find("daily_sleep").unwrap().backfill_priority
                < find("heartrate").unwrap().backfill_priority
        );
    }

    #[test]
    fn packed_fields_take_a_low_value_within_its_bits_and_a_high_that_does_not_overflow() {
        let p = find("interbeat_interval").unwrap().packed.unwrap();
        assert_eq!(p.pack(2000, 2), Some(16_002));
        assert_eq!(p.pack(900, 7), Some(7_207));
        assert_eq!(
            p.pack(-5, 1),
            Some(-39),
            "SQLite's >> 3 and & 7 read -5 and 1"
        );
        assert_eq!(p.pack(900, 8), None);
        assert_eq!(p.pack(900, -1), None);
        assert_eq!(p.pack(i64::MAX / 8, 7), Some(i64::MAX));
        assert_eq!(p.pack(i64::MAX / 8 + 1, 0), None);
        assert_eq!(p.pack(i64::MIN / 8, 0), Some(i64::MIN));
    }

    #[test]
    fn interbeat_intervals_rank_below_every_other_request() {
        let ibi = find("interbeat_interval").unwrap();
        assert_eq!(ibi.query, QueryStyle::DateTimeRange);
        assert_eq!(ibi.scope, "heartrate");
        assert_eq!(ibi.window_days, TIME_SERIES_WINDOW_DAYS);
        // A backfill window is one chain of next_token pages, ~27 a night:
        // at 200 ms a round trip, no window may take more than a minute.
        let chain = ibi.backfill_window_days * 27;
        assert!(chain * 200 <= 60_000, "{chain} pages in a row");
        for d in DATA_TYPES.iter().filter(|d| d.name != ibi.name) {
            let theirs = [
                d.backfill_priority,
                d.backfill_priority.of_recent_requests(false),
                d.backfill_priority.of_recent_requests(true),
            ];
            for p in theirs {
                assert!(p < ibi.backfill_priority, "{}", d.name);
                for caught_up in [false, true] {
                    let ibi_recent = ibi.backfill_priority.of_recent_requests(caught_up);
                    assert!(p < ibi_recent, "{}", d.name);
                }
            }
        }
    }

    #[test]
    fn days_are_normalised_or_derived_from_the_documents_own_time() {
        let cva = find("daily_cardiovascular_age").unwrap();
        let day = |v: serde_json::Value| cva.document_day(&v).map(|d| d.to_string());
        assert_eq!(
            day(serde_json::json!({"day": "2026-11-29"})).as_deref(),
            Some("2026-11-29")
        );
        assert_eq!(
            day(serde_json::json!({"day": "20261129"})).as_deref(),
            Some("2026-11-29")
        );
        assert_eq!(
            day(serde_json::json!({"day": null, "timestamp": "2026-11-29T00:00:00-08:00"}))
                .as_deref(),
            Some("2026-11-29"),
            "the local date, not the UTC one"
        );
        assert_eq!(day(serde_json::json!({"day": "2026-13-01"})), None);
        assert_eq!(
            day(serde_json::json!({"timestamp": "garbage-and-more"})),
            None
        );
        let stress = find("daily_stress").unwrap();
        assert_eq!(stress.document_day(&serde_json::json!({"day": null})), None);
        let sleep = find("sleep").unwrap();
        assert_eq!(
            sleep
                .document_day(&serde_json::json!({"bedtime_end": "2026-11-29T07:00:00+01:00"}))
                .map(|d| d.to_string())
                .as_deref(),
            Some("2026-11-29")
        );
    }

    #[test]
    fn documents_without_id_are_keyed_by_their_natural_key() {
        let cva = find("daily_cardiovascular_age").unwrap();
        let with = serde_json::json!({"id": "abc", "day": "2024-03-16"});
        let without = serde_json::json!({"day": "20240316", "vascular_age": 34});
        assert_eq!(cva.document_key(&with).as_deref(), Some("abc"));
        assert_eq!(
            cva.document_key(&without).as_deref(),
            Some("key:2024-03-16")
        );
        assert_eq!(cva.synthetic_id(&with), cva.document_key(&without));
        let session = find("session").unwrap();
        assert_eq!(
            session
                .document_key(&serde_json::json!({"start_datetime": "2024-03-16T10:00:00+01:00", "type": "breathing"}))
                .as_deref(),
            Some("key:2024-03-16T10:00:00+01:00|breathing")
        );
        assert_eq!(
            session.document_key(&serde_json::json!({"type": "breathing"})),
            None
        );
        let ring = find("ring_configuration").unwrap();
        assert_eq!(
            ring.document_key(&serde_json::json!({"color": "silver"})),
            None
        );
        let me = find("personal_info").unwrap();
        assert_eq!(
            me.document_key(&serde_json::json!({"age": 40})).as_deref(),
            Some("key:personal_info")
        );
        // Every daily type has a natural key, and only tags vanish for real.
        for dt in DATA_TYPES
            .iter()
            .filter(|d| d.query == QueryStyle::DateRange)
        {
            assert!(
                matches!(dt.natural_key, NaturalKey::Fields(_)),
                "{}",
                dt.name
            );
            assert_eq!(
                dt.vanishing == Vanishing::Deletes,
                dt.name.ends_with("tag"),
                "{}",
                dt.name
            );
        }
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

    #[test]
    fn prefixed_scope_names_cover_their_types() {
        let granted: Vec<String> = ["extapi:daily", "extapi:spo2Daily", "other:ns:heartrate"]
            .map(String::from)
            .into();
        assert!(grant_covers(&granted, "daily"));
        assert!(grant_covers(&granted, "spo2"));
        assert!(grant_covers(&granted, "heartrate"));
        assert!(grant_covers(&granted, "extapi:daily"));
        assert!(!grant_covers(&granted, "workout"));
        assert!(!grant_covers(&["extapi:".into()], "daily"));
        assert_eq!(canonical_scope("extapi:spo2Daily"), "spo2");
    }
}
