//! What ouradb knows about Oura's API besides its data types, for
//! `ouradb coverage`, which compares an Oura OpenAPI document with it:
//! the enum values ouradb relies on, the fields it keeps only in
//! `raw_json` on purpose, and what it models beyond the spec it was
//! written against (1.37), each declared once with its reason.
//!
//! The data types' own fields (typed columns, flattened objects, sample
//! arrays, interval strings) come from [`super::DATA_TYPES`] and the
//! schema; nothing here repeats them.

/// An enum field whose values ouradb relies on (a view or dashboard
/// decodes, filters or labels them; any value is still stored). A value
/// the spec adds may need a view or dashboard change, so coverage reports
/// it. The registry's [`super::DataType::deleted_marker`] values count too.
#[derive(Debug, Clone, Copy)]
pub struct KnownEnum {
    pub data_type: &'static str,
    /// The field's JSON path inside a document.
    pub field: &'static [&'static str],
    pub values: &'static [&'static str],
    /// What relies on the values.
    pub used_by: &'static str,
}

pub static ENUMS: &[KnownEnum] = &[
    KnownEnum {
        data_type: "daily_resilience",
        field: &["level"],
        values: &["limited", "adequate", "solid", "strong", "exceptional"],
        used_by: "the Grafana dashboard's value mapping of resilience levels",
    },
    KnownEnum {
        data_type: "daily_stress",
        field: &["day_summary"],
        values: &["restored", "normal", "stressful"],
        used_by: "the Grafana dashboard's value mapping of stress summaries",
    },
    KnownEnum {
        data_type: "heartrate",
        field: &["source"],
        values: &["awake", "workout", "rest", "sleep", "live", "session"],
        used_by: "heartrate_daily (per source) and the dashboards' awake heart rate",
    },
    KnownEnum {
        data_type: "sleep",
        field: &["type"],
        values: &["deleted", "sleep", "long_sleep", "late_nap", "rest"],
        used_by: "the deletion marker, and sleep_night (long_sleep first, rest left out)",
    },
    KnownEnum {
        data_type: "workout",
        field: &["intensity"],
        values: &["easy", "moderate", "hard"],
        used_by: "the workouts_by_type query (counts per intensity)",
    },
];

/// A field that has no typed column on purpose: it stays in `raw_json`,
/// where a view reads it.
#[derive(Debug, Clone, Copy)]
pub struct RawField {
    pub data_type: &'static str,
    pub field: &'static str,
    /// The view that lists it.
    pub view: &'static str,
}

pub static RAW_FIELDS: &[RawField] = &[
    RawField {
        data_type: "rest_mode_period",
        field: "episodes",
        view: "rest_mode_episode",
    },
    RawField {
        data_type: "tag",
        field: "tags",
        view: "tag_item",
    },
];

/// Something ouradb models that the spec it was written against does not
/// list: the live API serves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beyond {
    /// A data type (registry name) the spec has no collection for.
    Collection(&'static str),
    /// A field (JSON path) of a data type the spec's document lacks.
    Field(&'static str, &'static [&'static str]),
    /// A value of a [`KnownEnum`] field the spec's enum lacks.
    EnumValue(&'static str, &'static [&'static str], &'static str),
}

/// A deliberate deviation from the spec, with the reason for it.
#[derive(Debug, Clone, Copy)]
pub struct BeyondSpec {
    pub what: Beyond,
    pub reason: &'static str,
}

pub static BEYOND_SPEC: &[BeyondSpec] = &[BeyondSpec {
    what: Beyond::Collection("interbeat_interval"),
    reason: "the live API serves /v2/usercollection/interbeat_interval (scope \
             heartrate); newer specs' generated clients list it, 1.37 does not",
}];
