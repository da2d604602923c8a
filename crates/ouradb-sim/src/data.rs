//! Synthetic, seeded history of one person for every collection of spec 1.37.
//!
//! Everything a day contains is a pure function of (seed, date, history start,
//! overrides): plans, documents and time-series samples are derived from
//! hashes of the seed and the day number, never from a running random stream.
//! That is what makes the dataset reproducible byte for byte, lets
//! `advance_days` produce exactly what a longer `generate` would, and lets the
//! mutations re-derive one day and diff it against what is stored.
//!
//! Time is handled as unix seconds plus a fixed UTC offset per local day (the
//! person's home offset, or a destination offset while travelling).

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::Arc;

use jiff::Timestamp;
use jiff::civil::Date;
use serde_json::{Value, json};

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

impl HeartRateSource {
    /// The spec's `PublicHeartRateSource` value.
    pub fn as_str(self) -> &'static str {
        match self {
            HeartRateSource::Awake => "awake",
            HeartRateSource::Workout => "workout",
            HeartRateSource::Rest => "rest",
            HeartRateSource::Sleep => "sleep",
            HeartRateSource::Live => "live",
            HeartRateSource::Session => "session",
        }
    }
}

impl HeartRateSample {
    /// Appends the sample as a `PublicHeartRateRow` object. `timestamp_unix`
    /// is in milliseconds, as the spec's field description says.
    pub fn write_json(&self, out: &mut String) {
        let secs = self.ts.as_second();
        out.push_str("{\"bpm\":");
        let _ = write!(out, "{}", self.bpm);
        out.push_str(",\"source\":\"");
        out.push_str(self.source.as_str());
        out.push_str("\",\"timestamp\":\"");
        push_ts(out, secs, 0, false);
        let _ = write!(out, "\",\"timestamp_unix\":{}}}", self.ts.as_millisecond());
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatterySample {
    pub ts: Timestamp,
    pub level: u8,
    pub charging: Option<bool>,
    pub in_charger: Option<bool>,
}

impl BatterySample {
    /// Appends the sample as a `PublicRingBatteryLevelRow` object
    /// (`timestamp_unix` in milliseconds).
    pub fn write_json(&self, out: &mut String) {
        fn opt(out: &mut String, v: Option<bool>) {
            out.push_str(match v {
                Some(true) => "true",
                Some(false) => "false",
                None => "null",
            });
        }
        out.push_str("{\"charging\":");
        opt(out, self.charging);
        out.push_str(",\"in_charger\":");
        opt(out, self.in_charger);
        let _ = write!(out, ",\"level\":{},\"timestamp\":\"", self.level);
        push_ts(out, self.ts.as_second(), 0, false);
        let _ = write!(out, "\",\"timestamp_unix\":{}}}", self.ts.as_millisecond());
    }
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

/// Errors of the test-facing document editing API.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("unknown collection {0:?}")]
    UnknownCollection(String),
    #[error("document has no string `id`")]
    MissingId,
    #[error("document has no valid `{0}`")]
    MissingDay(&'static str),
}

const N_COLL: usize = 16;
const C_ACTIVITY: usize = 0;
const C_CVA: usize = 1;
const C_READINESS: usize = 2;
const C_RESILIENCE: usize = 3;
const C_DSLEEP: usize = 4;
const C_SPO2: usize = 5;
const C_STRESS: usize = 6;
const C_ETAG: usize = 7;
const C_REST_MODE: usize = 8;
const C_RING: usize = 9;
const C_SESSION: usize = 10;
const C_SLEEP: usize = 11;
const C_SLEEP_TIME: usize = 12;
const C_TAG: usize = 13;
const C_VO2: usize = 14;
const C_WORKOUT: usize = 15;

/// Index of a collection path in `DOCUMENT_COLLECTIONS`.
pub fn collection_index(collection: &str) -> Option<usize> {
    DOCUMENT_COLLECTIONS.iter().position(|c| *c == collection)
}

const DAY: i64 = 86_400;
const HOUR: i64 = 3_600;
const MIN: i64 = 60;

// Random streams: one per purpose, so adding draws to one kind of data never
// shifts the values of another.
const S_TRIP: u64 = 1;
const S_BED: u64 = 2;
const S_WAKE: u64 = 3;
const S_PLAN: u64 = 4;
const S_SLEEP: u64 = 5;
const S_READY: u64 = 6;
const S_DSLEEP: u64 = 7;
const S_ACT: u64 = 8;
const S_CVA: u64 = 9;
const S_RES: u64 = 10;
const S_SPO2: u64 = 11;
const S_STRESS: u64 = 12;
const S_STIME: u64 = 13;
const S_VO2: u64 = 14;
const S_WORK: u64 = 15;
const S_SESS: u64 = 16;
const S_TAG: u64 = 17;
const S_ETAG: u64 = 18;
const S_REST: u64 = 19;
const S_CHARGE: u64 = 20;
const S_HR: u64 = 21;
const S_ID: u64 = 22;
const S_PERSON: u64 = 23;
const S_REVISE: u64 = 24;
const S_JITTER: u64 = 25;

const HOME_OFFSETS: &[i32] = &[3600, 7200, -18000, -28800, 0, 32400, 19800, -10800];
const TRIP_OFFSETS: &[i32] = &[-18000, 32400, 0, 3600, 19800, -28800, 36000, -10800, 7200];

/// Battery drain in percent per hour while worn.
const DRAIN: f64 = 0.85;

// ---------------------------------------------------------------------------
// Hashing and randomness. A hand-written SplitMix64 rather than `rand`'s
// generators: its output is fixed forever, so a dependency upgrade can never
// change the dataset a seed produces.

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn hash(parts: &[u64]) -> u64 {
    let mut h = 0x243F_6A88_85A3_08D3u64;
    for p in parts {
        h = splitmix(h ^ p);
    }
    h
}

struct Rng(u64);

impl Rng {
    fn new(parts: &[u64]) -> Rng {
        Rng(hash(parts))
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        splitmix(self.0)
    }
    fn f64(&mut self) -> f64 {
        (self.next() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
    /// Uniform in `lo..hi` (`lo` when the range is empty).
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        lo + (self.next() % (hi - lo) as u64) as i64
    }
    fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }
    /// Approximately standard normal (Irwin-Hall with four terms).
    fn normal(&mut self) -> f64 {
        (self.f64() + self.f64() + self.f64() + self.f64() - 2.0) * 1.732
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.range(0, items.len() as i64) as usize]
    }
}

fn unit(h: u64) -> f64 {
    (h >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

// ---------------------------------------------------------------------------
// Calendar arithmetic on day numbers (days since 1970-01-01).

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn day_no(date: Date) -> i64 {
    days_from_civil(date.year() as i64, date.month() as i64, date.day() as i64)
}

fn date_of(dn: i64) -> Date {
    let (y, m, d) = civil_from_days(dn);
    Date::new(y as i16, m as i8, d as i8).expect("day number within jiff's range")
}

fn date_str(dn: i64) -> String {
    let (y, m, d) = civil_from_days(dn);
    format!("{y:04}-{m:02}-{d:02}")
}

fn local_day(t: i64, off: i32) -> i64 {
    (t + off as i64).div_euclid(DAY)
}

fn local_midnight(dn: i64, off: i32) -> i64 {
    dn * DAY - off as i64
}

/// Appends `t` as ISO 8601 in the given UTC offset, e.g.
/// `2024-01-01T07:03:21+01:00` (with `.000` before the offset if `millis`).
fn push_ts(out: &mut String, t: i64, off: i32, millis: bool) {
    let local = t + off as i64;
    let (y, m, d) = civil_from_days(local.div_euclid(DAY));
    let sod = local.rem_euclid(DAY);
    let _ = write!(
        out,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    );
    if millis {
        out.push_str(".000");
    }
    let sign = if off < 0 { '-' } else { '+' };
    let a = off.unsigned_abs();
    let _ = write!(out, "{sign}{:02}:{:02}", a / 3600, a / 60 % 60);
}

fn lts(t: i64, off: i32) -> String {
    let mut s = String::with_capacity(25);
    push_ts(&mut s, t, off, false);
    s
}

fn lts_ms(t: i64, off: i32) -> String {
    let mut s = String::with_capacity(29);
    push_ts(&mut s, t, off, true);
    s
}

/// Appends a non-negative number of tenths below 1000 as `d.d`; the MET
/// items are millions of these, too many for `core::fmt`.
fn push_tenths(out: &mut String, tenths: i64) {
    let t = tenths.clamp(0, 999) as u8;
    if t >= 100 {
        out.push((b'0' + t / 100) as char);
    }
    out.push((b'0' + t / 10 % 10) as char);
    out.push('.');
    out.push((b'0' + t % 10) as char);
}

fn round_to(x: f64, step: f64) -> f64 {
    (x / step).round() * step
}

fn r2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn r3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Oura-looking identifier (UUID layout) derived from the seed, the
/// collection, the day and the document's number within that day.
fn make_id(seed: u64, coll: usize, dn: i64, n: u64) -> String {
    let a = hash(&[seed, S_ID, coll as u64, dn as u64, n]);
    let b = splitmix(a ^ 0x5151_5151_5151_5151);
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        0x8000 | ((b >> 48) & 0x3fff),
        b & 0xffff_ffff_ffff
    )
}

/// The `id` of the person `seed` generates, as personal_info serves it.
pub fn person_id(seed: u64) -> String {
    make_id(seed, 99, 0, 0)
}

/// The `email` of the person `seed` generates, as personal_info serves it.
pub fn person_email(seed: u64) -> String {
    format!("sim.person.{seed}@example.com")
}

// ---------------------------------------------------------------------------
// The person and the plan of each day.

#[derive(Debug, Clone)]
struct Person {
    home_off: i32,
    rhr: f64,
    hrv: f64,
    age: i64,
    female: bool,
    height: f64,
    weight: f64,
    vo2: f64,
    chrono: i64,
    bmr: i64,
    target_cal: i64,
    charge_phase: i64,
}

impl Person {
    fn new(seed: u64) -> Person {
        let mut r = Rng::new(&[seed, S_PERSON]);
        let female = r.chance(0.5);
        let height = if female {
            r.range(158, 176) as f64 / 100.0
        } else {
            r.range(170, 193) as f64 / 100.0
        };
        let bmi = 20.0 + r.f64() * 6.0;
        Person {
            home_off: r.pick(HOME_OFFSETS),
            rhr: r.range(48, 64) as f64,
            hrv: r.range(30, 75) as f64,
            age: r.range(26, 61),
            female,
            height,
            weight: (bmi * height * height * 10.0).round() / 10.0,
            vo2: r.range(34, 52) as f64,
            chrono: r.range(0, 45) * MIN,
            bmr: r.range(1400, 1900),
            target_cal: r.range(7, 13) * 50,
            charge_phase: r.range(0, 4),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IvKind {
    Workout(u8),
    Session,
    Nap,
    LateNap,
    Rest,
    Live,
    Charge,
}

#[derive(Debug, Clone, Copy)]
struct Iv {
    start: i64,
    end: i64,
    kind: IvKind,
}

/// What the person does on one local day: the night that ends that morning
/// and the awake time until bed.
#[derive(Debug, Clone)]
struct Plan {
    dn: i64,
    off: i32,
    prev_off: i32,
    night_start: i64,
    wake: i64,
    bed: i64,
    ring_off: bool,
    gap: Option<(i64, i64)>,
    ivs: Vec<Iv>,
    rest_reported: bool,
    nap_deleted: bool,
}

#[derive(Debug, Clone, Copy)]
struct Period {
    n: u64,
    start: i64,
    end: i64,
    start_off: i32,
    end_off: i32,
    kind: &'static str,
    night: bool,
    main: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cls {
    NonWear,
    Sleep,
    Rest,
    Awake,
    Work(u8),
}

#[derive(Debug, Clone, Copy)]
struct WorkoutInfo {
    activity: &'static str,
    intensity: &'static str,
    level: u8,
}

/// Edits layered over the pure generator by the mutations and tests.
#[derive(Debug, Clone, Default)]
struct Overrides {
    withheld: HashSet<i64>,
    forced_on: HashSet<i64>,
    score_delta: HashMap<i64, i64>,
    late_steps: HashMap<i64, i64>,
    sleep_shift: HashMap<String, i64>,
    deleted: HashSet<String>,
    removed: HashSet<(usize, String)>,
    custom: HashSet<(usize, String)>,
}

#[derive(Debug, Clone)]
struct Gen {
    seed: u64,
    p: Person,
    first_dn: i64,
    gen4_dn: Option<i64>,
    ring_ids: [String; 2],
    ov: Overrides,
}

impl Gen {
    fn offset(&self, dn: i64) -> i32 {
        let home = self.p.home_off;
        let block = dn.div_euclid(91);
        let mut r = Rng::new(&[self.seed, S_TRIP, block as u64]);
        let has = r.chance(0.7);
        let start = block * 91 + r.range(3, 75);
        let len = r.range(3, 15);
        let dest = r.pick(TRIP_OFFSETS);
        if has
            && dn >= start
            && dn < start + len
            && dest != home
            && (dest - home).abs() <= 12 * 3600
        {
            dest
        } else {
            home
        }
    }

    fn bed_raw(&self, dn: i64) -> i64 {
        let mut r = Rng::new(&[self.seed, S_BED, dn as u64]);
        local_midnight(dn, self.offset(dn))
            + 22 * HOUR
            + 15 * MIN
            + self.p.chrono
            + r.range(0, 150 * MIN)
    }

    fn wake_raw(&self, dn: i64) -> i64 {
        let mut r = Rng::new(&[self.seed, S_WAKE, dn as u64]);
        let weekend = matches!((dn + 3).rem_euclid(7), 5 | 6);
        local_midnight(dn, self.offset(dn))
            + 6 * HOUR
            + r.range(0, 150 * MIN)
            + if weekend { 45 * MIN } else { 0 }
    }

    fn charge_window(&self, dn: i64) -> Option<(i64, i64)> {
        if (dn + self.p.charge_phase).rem_euclid(4) != 0 {
            return None;
        }
        let mut r = Rng::new(&[self.seed, S_CHARGE, dn as u64]);
        let s = local_midnight(dn, self.offset(dn)) + 20 * HOUR + r.range(0, 1800);
        Some((s, s + HOUR))
    }

    fn plan(&self, dn: i64) -> Plan {
        let off = self.offset(dn);
        let prev_off = self.offset(dn - 1);
        let night_start = self.bed_raw(dn - 1);
        let wr = self.wake_raw(dn);
        // Flights east can leave almost no night: keep at least four hours.
        let wake = night_start + ((wr - night_start).max(4 * HOUR) + 299) / 300 * 300;
        let bed = self.bed_raw(dn);
        let mid = local_midnight(dn, off);
        let mut r = Rng::new(&[self.seed, S_PLAN, dn as u64]);
        let ring_off = r.chance(0.02) && !self.ov.forced_on.contains(&dn);
        let has_gap = r.chance(0.07);
        let g_at = night_start + 300 * r.range(12, 30);
        let g_len = 300 * r.range(4, 12);
        let gap = (has_gap && g_at + g_len + HOUR <= wake).then_some((g_at, g_at + g_len));

        let mut cands: Vec<(bool, i64, i64, IvKind)> = Vec::with_capacity(8);
        if let Some((s, e)) = self.charge_window(dn) {
            cands.push((true, s, e, IvKind::Charge));
        }
        let w0 = r.chance(0.25);
        let s = wake + r.range(45 * MIN, 90 * MIN);
        cands.push((w0, s, s + 300 * r.range(6, 14), IvKind::Workout(0)));
        let w1 = r.chance(0.35);
        let s = mid + 17 * HOUR + 30 * MIN + r.range(0, 150 * MIN);
        cands.push((w1, s, s + 300 * r.range(6, 18), IvKind::Workout(1)));
        let nap = r.chance(0.12);
        let s = mid + 14 * HOUR + r.range(0, 90 * MIN);
        cands.push((nap, s, s + 300 * r.range(4, 18), IvKind::Nap));
        let late = r.chance(0.04);
        let s = mid + 19 * HOUR + 30 * MIN + r.range(0, HOUR);
        cands.push((late, s, s + 300 * r.range(4, 10), IvKind::LateNap));
        let sess = r.chance(0.3);
        let s = mid + 12 * HOUR + 30 * MIN + r.range(0, HOUR);
        cands.push((sess, s, s + 300 * r.range(1, 4), IvKind::Session));
        let rest = r.chance(0.25);
        let s = mid + 16 * HOUR + r.range(0, 30 * MIN);
        cands.push((rest, s, s + 300 * r.range(6, 12), IvKind::Rest));
        let s = mid + 10 * HOUR + r.range(0, 6 * HOUR);
        cands.push((true, s, s + 120, IvKind::Live));

        let mut ivs: Vec<Iv> = Vec::with_capacity(8);
        for (on, start, end, kind) in cands {
            if !on || start < wake + 10 * MIN || end > bed - 10 * MIN {
                continue;
            }
            if ivs
                .iter()
                .any(|iv| start < iv.end + 5 * MIN && iv.start < end + 5 * MIN)
            {
                continue;
            }
            ivs.push(Iv { start, end, kind });
        }
        ivs.sort_by_key(|iv| iv.start);
        Plan {
            dn,
            off,
            prev_off,
            night_start,
            wake,
            bed,
            ring_off,
            gap,
            ivs,
            rest_reported: r.chance(0.25),
            nap_deleted: r.chance(0.08),
        }
    }

    fn periods(&self, plan: &Plan) -> Vec<Period> {
        let mut out = Vec::with_capacity(4);
        if !plan.ring_off {
            let pieces: Vec<(i64, i64)> = match plan.gap {
                Some((g0, g1)) => vec![(plan.night_start, g0), (g1, plan.wake)],
                None => vec![(plan.night_start, plan.wake)],
            };
            let longest = pieces
                .iter()
                .enumerate()
                .max_by_key(|(_, (s, e))| e - s)
                .map(|(i, _)| i)
                .unwrap_or(0);
            for (i, (s, e)) in pieces.into_iter().enumerate() {
                out.push(Period {
                    n: out.len() as u64,
                    start: s,
                    end: e,
                    start_off: if i == 0 { plan.prev_off } else { plan.off },
                    end_off: plan.off,
                    kind: if e - s >= 3 * HOUR {
                        "long_sleep"
                    } else {
                        "sleep"
                    },
                    night: true,
                    main: i == longest,
                });
            }
        }
        for iv in &plan.ivs {
            let kind = match iv.kind {
                IvKind::Nap if plan.nap_deleted => "deleted",
                IvKind::Nap => "sleep",
                IvKind::LateNap => "late_nap",
                IvKind::Rest if plan.rest_reported => "rest",
                _ => continue,
            };
            out.push(Period {
                n: out.len() as u64,
                start: iv.start,
                end: iv.end,
                start_off: plan.off,
                end_off: plan.off,
                kind,
                night: false,
                main: false,
            });
        }
        out
    }

    fn workout_info(&self, dn: i64, i: u8) -> WorkoutInfo {
        let mut r = Rng::new(&[self.seed, S_WORK, dn as u64, i as u64]);
        let activity = r.pick(&[
            "walking",
            "walking",
            "running",
            "cycling",
            "strength_training",
            "yoga",
            "hiking",
            "swimming",
            "tennis",
        ]);
        let level = r.range(0, 3) as u8;
        WorkoutInfo {
            activity,
            intensity: ["easy", "moderate", "hard"][level as usize],
            level,
        }
    }

    fn class_at(&self, t: i64, p: &Plan, q: &Plan) -> Cls {
        for pl in [p, q] {
            if t >= pl.night_start && t < pl.wake {
                if pl.ring_off {
                    return Cls::NonWear;
                }
                if let Some((g0, g1)) = pl.gap
                    && t >= g0
                    && t < g1
                {
                    return Cls::Awake;
                }
                return Cls::Sleep;
            }
        }
        for iv in &p.ivs {
            if t >= iv.start && t < iv.end {
                return match iv.kind {
                    IvKind::Workout(i) => Cls::Work(self.workout_info(p.dn, i).level),
                    IvKind::Charge => Cls::NonWear,
                    IvKind::Nap | IvKind::LateNap | IvKind::Rest | IvKind::Session => Cls::Rest,
                    IvKind::Live => Cls::Awake,
                };
            }
        }
        Cls::Awake
    }

    fn ring_id(&self, dn: i64) -> &str {
        match self.gen4_dn {
            Some(g) if dn >= g => &self.ring_ids[1],
            _ => &self.ring_ids[0],
        }
    }

    fn doc(&self, dn: i64, utc_dn: i64, id: String, json: String) -> Document {
        Document {
            id,
            day: date_of(dn),
            utc_day: date_of(utc_dn),
            json: Arc::from(json),
        }
    }

    // -- documents -----------------------------------------------------------

    /// Emits every document whose day is `dn`, as served at time `now`.
    fn day_docs(&self, dn: i64, now: i64, sink: &mut dyn FnMut(usize, Document)) {
        self.day_docs_planned(&self.plan(dn), &self.plan(dn + 1), now, sink);
    }

    /// `day_docs` with the plans of the day and the next one given.
    fn day_docs_planned(
        &self,
        plan: &Plan,
        next: &Plan,
        now: i64,
        sink: &mut dyn FnMut(usize, Document),
    ) {
        let dn = plan.dn;
        let seed = self.seed;
        let off = plan.off;
        let mid = local_midnight(dn, off);
        let mut emit_str = |coll: usize, n: u64, utc_dn: i64, json: String| {
            let id = make_id(seed, coll, dn, n);
            let key = (coll, id);
            if self.ov.removed.contains(&key) || self.ov.custom.contains(&key) {
                return;
            }
            sink(coll, self.doc(dn, utc_dn, key.1, json));
        };
        if let Some(json) = self.activity(plan, next, now) {
            emit_str(C_ACTIVITY, 0, dn, json);
        }
        let mut emit = |coll: usize, n: u64, utc_dn: i64, v: Value| {
            emit_str(coll, n, utc_dn, v.to_string());
        };

        let periods = self.periods(plan);
        let main = periods.iter().find(|p| p.main).copied();
        let night_ready = main.is_some_and(|m| m.end + 10 * MIN <= now);
        let withheld = self.ov.withheld.contains(&dn);

        for p in &periods {
            if p.end + 10 * MIN > now || (p.night && withheld) {
                continue;
            }
            let id = make_id(seed, C_SLEEP, dn, p.n);
            let (v, start) = self.sleep_doc(plan, p, &id);
            emit(C_SLEEP, p.n, start.div_euclid(DAY), v);
        }
        if night_ready {
            if !withheld {
                emit(C_DSLEEP, 0, dn, self.daily_sleep(dn, mid, off));
            }
            let mut ready = self.readiness(dn);
            if let Value::Object(m) = &mut ready {
                m.insert("id".into(), json!(make_id(seed, C_READINESS, dn, 0)));
                m.insert("day".into(), json!(date_str(dn)));
                m.insert("timestamp".into(), json!(lts(mid, off)));
            }
            emit(C_READINESS, 0, dn, ready);
            if let Some(v) = self.spo2(dn) {
                emit(C_SPO2, 0, dn, v);
            }
            emit(C_RESILIENCE, 0, dn, self.resilience(dn));
            if let Some(v) = self.cardio_age(dn) {
                emit(C_CVA, 0, dn, v);
            }
        }
        if mid + HOUR <= now {
            emit(C_STRESS, 0, dn, self.stress(dn, now >= mid + DAY));
            emit(C_SLEEP_TIME, 0, dn, self.sleep_time(dn, off));
        }
        for iv in &plan.ivs {
            match iv.kind {
                IvKind::Workout(i) if iv.end <= now => {
                    emit(
                        C_WORKOUT,
                        i as u64,
                        iv.start.div_euclid(DAY),
                        self.workout(dn, i, iv, off),
                    );
                }
                IvKind::Session if iv.end <= now => {
                    emit(C_SESSION, 0, dn, self.session(dn, iv, off));
                }
                _ => {}
            }
        }
        self.vo2(dn, plan, now, &mut emit);
        self.tags(dn, plan, now, &mut emit);
        self.rest_mode(dn, now, &mut emit);
    }

    fn sleep_doc(&self, plan: &Plan, p: &Period, id: &str) -> (Value, i64) {
        let dn = plan.dn;
        let shift = self.ov.sleep_shift.get(id).copied().unwrap_or(0);
        let start = (p.start + shift).min(p.end - 30 * MIN);
        let end = p.end;
        let slots = ((end - start) / 300) as usize;
        let mut r = Rng::new(&[self.seed, S_SLEEP, dn as u64, p.n, shift as u64]);
        let latency = if p.night {
            r.range(1, 5) as usize
        } else {
            r.range(0, 3) as usize
        }
        .min(slots.saturating_sub(1));
        let mut phase = String::with_capacity(slots);
        let mut prev = '2';
        for i in 0..slots {
            let frac = i as f64 / slots as f64;
            let c = if i < latency || (p.night && i + 1 == slots) {
                '4'
            } else if i > latency && r.chance(0.55) {
                prev
            } else {
                let x = r.f64();
                let (deep, rem) = if p.night {
                    (0.30 * (1.0 - frac), 0.08 + 0.25 * frac)
                } else {
                    (0.12, 0.05)
                };
                if x < deep {
                    '1'
                } else if x < deep + rem {
                    '3'
                } else if x < deep + rem + 0.06 {
                    '4'
                } else {
                    '2'
                }
            };
            phase.push(c);
            prev = c;
        }
        let mut movement = String::with_capacity(slots * 10);
        let mut hr: Vec<Option<i64>> = Vec::with_capacity(slots);
        let mut hrv: Vec<Option<i64>> = Vec::with_capacity(slots);
        for (i, c) in phase.bytes().enumerate() {
            let awake = c == b'4';
            for _ in 0..10 {
                let x = r.f64();
                movement.push(if awake {
                    if x < 0.4 {
                        '2'
                    } else if x < 0.75 {
                        '3'
                    } else {
                        '4'
                    }
                } else if x < 0.85 {
                    '1'
                } else if x < 0.96 {
                    '2'
                } else {
                    '3'
                });
            }
            let frac = i as f64 / slots as f64;
            let bpm = self.p.rhr + 3.0 + if awake { 6.0 } else { 0.0 }
                - 5.0 * (std::f64::consts::PI * frac).sin()
                + r.normal() * 2.0;
            let null_hr = r.chance(0.03) || (i == 0 && r.chance(0.5));
            hr.push((!null_hr).then_some(bpm.round().max(35.0) as i64));
            let v = self.p.hrv + 10.0 * (std::f64::consts::PI * frac).sin() + r.normal() * 6.0;
            let null_hrv = r.chance(0.05);
            hrv.push((!null_hrv).then_some(v.round().clamp(5.0, 200.0) as i64));
        }
        let count = |ch: char| phase.chars().filter(|c| *c == ch).count() as i64 * 300;
        let deep = count('1');
        let light = count('2');
        let rem = count('3');
        let awake = count('4');
        let tib = end - start;
        let total = deep + light + rem;
        let hr_vals: Vec<i64> = hr.iter().flatten().copied().collect();
        let avg_hr = (!hr_vals.is_empty()).then(|| {
            round_to(
                hr_vals.iter().sum::<i64>() as f64 / hr_vals.len() as f64,
                0.125,
            )
        });
        let lowest = hr_vals.iter().min().map(|m| m - r.range(0, 3));
        let hrv_vals: Vec<i64> = hrv.iter().flatten().copied().collect();
        let rest_type = p.kind == "rest";
        let avg_hrv = (!hrv_vals.is_empty() && !rest_type)
            .then(|| (hrv_vals.iter().sum::<i64>() as f64 / hrv_vals.len() as f64).round() as i64);
        let restless = movement
            .bytes()
            .filter(|c| *c == b'3' || *c == b'4')
            .count() as i64
            / 3;
        let v1 = dn < self.first_dn + 120;
        let reason = if shift != 0 {
            "bedtime_edit"
        } else if r.chance(0.7) {
            "foreground_sleep_analysis"
        } else {
            "background_sleep_analysis"
        };
        let deleted = self.ov.deleted.contains(id);
        let kind = if deleted { "deleted" } else { p.kind };
        let readiness = (p.main && p.kind == "long_sleep").then(|| self.readiness(dn));
        let deltas = !p.main && !rest_type;
        let score_delta = r.range(-2, 4);
        let ready_delta = r.range(-1, 3);
        let delta_null = r.chance(0.2);
        let low_batt = r.chance(0.01);
        let ring_null = r.chance(0.02);
        let breath = 13.0 + r.range(0, 40) as f64 * 0.125;
        let ts_start = lts_ms(start, p.start_off);
        let v = json!({
            "id": id,
            "average_breath": breath,
            "average_heart_rate": avg_hr,
            "average_hrv": avg_hrv,
            "awake_time": awake,
            "bedtime_end": lts(end, p.end_off),
            "bedtime_start": lts(start, p.start_off),
            "day": date_str(dn),
            "deep_sleep_duration": deep,
            "efficiency": ((100 * total) as f64 / tib as f64).round().clamp(1.0, 100.0) as i64,
            "heart_rate": {"interval": 300.0, "items": hr, "timestamp": ts_start},
            "hrv": if rest_type { Value::Null } else { json!({"interval": 300.0, "items": hrv, "timestamp": ts_start}) },
            "latency": latency as i64 * 300,
            "light_sleep_duration": light,
            "low_battery_alert": low_batt,
            "lowest_heart_rate": lowest,
            "movement_30_sec": movement,
            "period": p.n,
            "readiness": readiness,
            "readiness_score_delta": (deltas && !delta_null).then_some(ready_delta),
            "rem_sleep_duration": rem,
            "restless_periods": restless,
            "sleep_algorithm_version": if v1 { "v1" } else { "v2" },
            "sleep_analysis_reason": reason,
            "sleep_phase_30_sec": Value::Null,
            "app_sleep_phase_5_min": (!v1).then(|| phase.clone()),
            "sleep_phase_5_min": phase,
            "sleep_score_delta": (deltas && !delta_null).then_some(score_delta),
            "time_in_bed": tib,
            "total_sleep_duration": total,
            "type": kind,
            "ring_id": (!ring_null).then(|| self.ring_id(dn).to_string()),
        });
        (v, start)
    }

    fn readiness(&self, dn: i64) -> Value {
        let mut r = Rng::new(&[self.seed, S_READY, dn as u64]);
        let mut c = [0i64; 9];
        for v in c.iter_mut() {
            *v = r.range(55, 101);
        }
        let hrv_null = dn < self.first_dn + 14 || r.chance(0.03);
        let reg_null = dn < self.first_dn + 7 || r.chance(0.02);
        let temp = r.normal() * 0.25;
        let temp_null = r.chance(0.01);
        let trend = r.normal() * 0.15;
        let trend_null = dn < self.first_dn + 7 || r.chance(0.05);
        let score_null = r.chance(0.01);
        let opt = |v: i64, null: bool| (!null).then_some(v);
        let used: Vec<i64> = c
            .iter()
            .enumerate()
            .filter(|(i, _)| !(*i == 2 && hrv_null || *i == 8 && reg_null))
            .map(|(_, v)| *v)
            .collect();
        let score = (used.iter().sum::<i64>() as f64 / used.len() as f64).round() as i64;
        json!({
            "contributors": {
                "activity_balance": c[0],
                "body_temperature": c[1],
                "hrv_balance": opt(c[2], hrv_null),
                "previous_day_activity": c[3],
                "previous_night": c[4],
                "recovery_index": c[5],
                "resting_heart_rate": c[6],
                "sleep_balance": c[7],
                "sleep_regularity": opt(c[8], reg_null),
            },
            "score": opt(score, score_null),
            "temperature_deviation": (!temp_null).then_some(r2(temp)),
            "temperature_trend_deviation": (!trend_null).then_some(r2(trend)),
        })
    }

    fn daily_sleep(&self, dn: i64, mid: i64, off: i32) -> Value {
        let mut r = Rng::new(&[self.seed, S_DSLEEP, dn as u64]);
        let mut c = [0i64; 7];
        for v in c.iter_mut() {
            *v = r.range(45, 101);
        }
        let weights = [0.1, 0.1, 0.1, 0.1, 0.15, 0.1, 0.35];
        let base: f64 = c.iter().zip(weights).map(|(v, w)| *v as f64 * w).sum();
        let delta = self.ov.score_delta.get(&dn).copied().unwrap_or(0);
        let score = (base.round() as i64 + delta).clamp(1, 100);
        json!({
            "id": make_id(self.seed, C_DSLEEP, dn, 0),
            "contributors": {
                "deep_sleep": c[0],
                "efficiency": c[1],
                "latency": c[2],
                "rem_sleep": c[3],
                "restfulness": c[4],
                "timing": c[5],
                "total_sleep": c[6],
            },
            "day": date_str(dn),
            "score": score,
            "timestamp": lts(mid, off),
        })
    }

    fn spo2(&self, dn: i64) -> Option<Value> {
        let mut r = Rng::new(&[self.seed, S_SPO2, dn as u64]);
        let bdi = r.range(0, 25);
        let bdi_null = r.chance(0.1);
        let avg = 95.0 + r.f64() * 3.9;
        let avg_null = r.chance(0.03);
        Some(json!({
            "id": make_id(self.seed, C_SPO2, dn, 0),
            "breathing_disturbance_index": (!bdi_null).then_some(bdi),
            "day": date_str(dn),
            "spo2_percentage": (!avg_null).then(|| json!({"average": r3(avg)})),
        }))
    }

    fn resilience(&self, dn: i64) -> Value {
        let mut r = Rng::new(&[self.seed, S_RES, dn as u64]);
        let sleep = round_to(40.0 + r.f64() * 60.0, 0.1);
        let day = round_to(20.0 + r.f64() * 70.0, 0.1);
        let stress = round_to(20.0 + r.f64() * 70.0, 0.1);
        let mean = (sleep + day + (100.0 - stress)) / 3.0;
        let level = match mean {
            m if m < 40.0 => "limited",
            m if m < 55.0 => "adequate",
            m if m < 68.0 => "solid",
            m if m < 80.0 => "strong",
            _ => "exceptional",
        };
        json!({
            "id": make_id(self.seed, C_RESILIENCE, dn, 0),
            "day": date_str(dn),
            "contributors": {"sleep_recovery": sleep, "daytime_recovery": day, "stress": stress},
            "level": level,
        })
    }

    fn cardio_age(&self, dn: i64) -> Option<Value> {
        let mut r = Rng::new(&[self.seed, S_CVA, dn as u64]);
        if r.chance(0.08) {
            return None;
        }
        let mut slow = Rng::new(&[self.seed, S_CVA, dn.div_euclid(30) as u64, 1]);
        let years = (dn - self.first_dn).max(0) / 365;
        let age = (self.p.age + years + slow.range(-6, 5)).clamp(18, 100);
        let pwv = 5.0 + (age - 18) as f64 * 0.07 + r.normal() * 0.2;
        let pwv_null = r.chance(0.03);
        let age_null = r.chance(0.02);
        Some(json!({
            "id": make_id(self.seed, C_CVA, dn, 0),
            "day": date_str(dn),
            "pulse_wave_velocity": (!pwv_null).then_some(r2(pwv)),
            "vascular_age": (!age_null).then_some(age),
        }))
    }

    fn stress(&self, dn: i64, complete: bool) -> Value {
        let mut r = Rng::new(&[self.seed, S_STRESS, dn as u64]);
        let stress_high = 900 * r.range(0, 24);
        let recovery_high = 900 * r.range(0, 20);
        let null = r.chance(0.05);
        let summary = if stress_high > recovery_high + 5400 {
            "stressful"
        } else if recovery_high > stress_high + 3600 {
            "restored"
        } else {
            "normal"
        };
        // While the day runs, Oura has partial totals and no verdict yet.
        let (sh, rh) = if complete {
            (stress_high, recovery_high)
        } else {
            (stress_high / 1800 * 900, recovery_high / 1800 * 900)
        };
        json!({
            "id": make_id(self.seed, C_STRESS, dn, 0),
            "day": date_str(dn),
            "day_summary": (complete && !null).then_some(summary),
            "recovery_high": (!null).then_some(rh),
            "stress_high": (!null).then_some(sh),
        })
    }

    fn sleep_time(&self, dn: i64, off: i32) -> Value {
        let mut r = Rng::new(&[self.seed, S_STIME, dn as u64]);
        let early = dn < self.first_dn + 14;
        let x = r.f64();
        let status = if early {
            "not_enough_nights"
        } else if x < 0.8 {
            "optimal_found"
        } else if x < 0.9 {
            "only_recommended_found"
        } else if x < 0.95 {
            "not_enough_recent_nights"
        } else {
            "bad_sleep_quality"
        };
        let start = -3600 + 900 * r.range(-2, 4) + self.p.chrono / 900 * 900;
        let rec = r.pick(&[
            "follow_optimal_bedtime",
            "follow_optimal_bedtime",
            "earlier_bedtime",
            "later_bedtime",
            "improve_efficiency",
            "earlier_wake_up_time",
            "later_wake_up_time",
        ]);
        let window = matches!(status, "optimal_found" | "only_recommended_found");
        json!({
            "id": make_id(self.seed, C_SLEEP_TIME, dn, 0),
            "day": date_str(dn),
            "optimal_bedtime": window.then(|| json!({"day_tz": off, "end_offset": start + 3600, "start_offset": start})),
            "recommendation": (!early && status != "not_enough_recent_nights").then_some(rec),
            "status": status,
        })
    }

    /// The daily_activity document, written by hand: its 1440 MET values
    /// dominate the dataset's size, and formatting them as integer tenths
    /// is several times faster than going through `serde_json::Value`.
    fn activity(&self, p: &Plan, q: &Plan, now: i64) -> Option<String> {
        let dn = p.dn;
        let ws = local_midnight(dn, p.off) + 4 * HOUR;
        if ws > now {
            return None;
        }
        let elapsed = ((now - ws) / MIN).clamp(0, 1440) as usize;
        // Partial days cover whole 5-minute slots only.
        let minutes = if elapsed >= 1440 {
            1440
        } else {
            elapsed / 5 * 5
        };
        let mut r = Rng::new(&[self.seed, S_ACT, dn as u64]);
        let mut class = String::with_capacity(288);
        let mut met = String::with_capacity(minutes * 4 + 2);
        met.push('[');
        let mut secs = [0i64; 6];
        let mut met_min = [0i64; 6];
        let mut steps = 0i64;
        let mut active_tenths = 0i64;
        // Every draw is made for the whole day so a partial day is an exact
        // prefix of the finished one.
        for slot in 0..288usize {
            let t = ws + slot as i64 * 300;
            let x = r.f64();
            let c = match self.class_at(t, p, q) {
                Cls::NonWear => 0u8,
                Cls::Sleep | Cls::Rest => 1,
                Cls::Work(2) => 5,
                Cls::Work(_) => 4,
                Cls::Awake => match x {
                    x if x < 0.03 => 1,
                    x if x < 0.55 => 2,
                    x if x < 0.90 => 3,
                    x if x < 0.98 => 4,
                    _ => 5,
                },
            };
            let in_range = slot * 5 < minutes;
            if in_range {
                class.push((b'0' + c) as char);
            }
            for _ in 0..5 {
                let y = r.f64();
                let tenths = match c {
                    0 => 0,
                    1 => 9 + (y * 3.0) as i64,
                    2 => 11 + (y * 6.0) as i64,
                    3 => 18 + (y * 13.0) as i64,
                    4 => 30 + (y * 31.0) as i64,
                    _ => 60 + (y * 31.0) as i64,
                };
                let st = match c {
                    2 => (y * 10.0) as i64 % 7,
                    3 => 20 + (y * 50.0) as i64,
                    4 => 70 + (y * 50.0) as i64,
                    5 => 120 + (y * 50.0) as i64,
                    _ => 0,
                };
                if in_range {
                    if met.len() > 1 {
                        met.push(',');
                    }
                    push_tenths(&mut met, tenths);
                    secs[c as usize] += 60;
                    met_min[c as usize] += tenths;
                    steps += st;
                    active_tenths += (tenths - 10).max(0);
                }
            }
        }
        met.push(']');
        let late = self.ov.late_steps.get(&dn).copied().unwrap_or(0);
        steps += late;
        let ewd = (steps as f64 * 0.78).round() as i64;
        let active =
            (active_tenths as f64 / 10.0 * self.p.weight / 60.0).round() as i64 + late / 25;
        let total = active + self.p.bmr * minutes as i64 / 1440;
        let target_meters = self.p.target_cal * 20;
        let mut contrib = [0i64; 6];
        for v in contrib.iter_mut() {
            *v = r.range(40, 101);
        }
        let early = dn < self.first_dn + 7;
        let alerts = r.range(0, 3);
        let ratio = active as f64 / self.p.target_cal as f64;
        let score = (55.0 + 35.0 * ratio.min(1.0) + r.f64() * 10.0).round() as i64;
        let mostly_off = secs[0] > 12 * HOUR;
        let met_total: i64 = met_min.iter().sum();
        let avg_met = if minutes > 0 {
            r3(met_total as f64 / 10.0 / minutes as f64)
        } else {
            0.0
        };
        let mm = |i: usize| (met_min[i] as f64 / 10.0).round() as i64;
        let opt = |v: i64, null: bool| {
            if null {
                "null".to_string()
            } else {
                v.to_string()
            }
        };
        let ts = lts(ws, p.off);
        let mut o = String::with_capacity(met.len() + 1200);
        let _ = write!(
            o,
            concat!(
                r#"{{"active_calories":{},"average_met_minutes":{},"class_5_min":"{}","#,
                r#""contributors":{{"meet_daily_targets":{},"move_every_hour":{},"recovery_time":{},"#,
                r#""stay_active":{},"training_frequency":{},"training_volume":{}}},"#,
                r#""day":"{}","equivalent_walking_distance":{},"high_activity_met_minutes":{},"#,
                r#""high_activity_time":{},"id":"{}","inactivity_alerts":{},"#,
                r#""low_activity_met_minutes":{},"low_activity_time":{},"#,
                r#""medium_activity_met_minutes":{},"medium_activity_time":{},"#,
                r#""met":{{"interval":60.0,"items":{},"timestamp":"{}"}},"#,
                r#""meters_to_target":{},"non_wear_time":{},"resting_time":{},"score":{},"#,
                r#""sedentary_met_minutes":{},"sedentary_time":{},"steps":{},"#,
                r#""target_calories":{},"target_meters":{},"timestamp":"{}","total_calories":{}}}"#
            ),
            active,
            Value::from(avg_met),
            class,
            contrib[0],
            contrib[1],
            contrib[2],
            contrib[3],
            opt(contrib[4], early),
            opt(contrib[5], early),
            date_str(dn),
            ewd,
            mm(5),
            secs[5],
            make_id(self.seed, C_ACTIVITY, dn, 0),
            alerts,
            mm(3),
            secs[3],
            mm(4),
            secs[4],
            met,
            lts_ms(ws, p.off),
            (target_meters - ewd).max(0) / 100 * 100,
            secs[0],
            secs[1],
            opt(score.clamp(1, 100), mostly_off),
            mm(2),
            secs[2],
            steps,
            self.p.target_cal,
            target_meters,
            ts,
            total,
        );
        Some(o)
    }

    fn workout(&self, dn: i64, i: u8, iv: &Iv, off: i32) -> Value {
        let info = self.workout_info(dn, i);
        let mut r = Rng::new(&[self.seed, S_WORK, dn as u64, i as u64, 1]);
        let mins = (iv.end - iv.start) as f64 / 60.0;
        let kcal = mins * (4.0 + 3.0 * info.level as f64 + r.f64() * 2.0);
        let speed = match info.activity {
            "walking" | "hiking" => Some(85.0),
            "running" => Some(170.0),
            "cycling" => Some(380.0),
            "swimming" => Some(35.0),
            _ => None,
        };
        let dist_null = r.chance(0.1);
        let kcal_null = r.chance(0.03);
        let label = r.chance(0.1);
        let source = r.pick(&[
            "autodetected",
            "autodetected",
            "confirmed",
            "manual",
            "workout_heart_rate",
        ]);
        json!({
            "id": make_id(self.seed, C_WORKOUT, dn, i as u64),
            "activity": info.activity,
            "calories": (!kcal_null).then_some(r3(kcal)),
            "day": date_str(dn),
            "distance": speed.filter(|_| !dist_null).map(|s| r3(s * mins * (0.8 + r.f64() * 0.4))),
            "end_datetime": lts(iv.end, off),
            "intensity": info.intensity,
            "label": label.then(|| format!("{} with friends", info.activity)),
            "source": source,
            "start_datetime": lts(iv.start, off),
        })
    }

    fn session(&self, dn: i64, iv: &Iv, off: i32) -> Value {
        let mut r = Rng::new(&[self.seed, S_SESS, dn as u64]);
        let kind = r.pick(&[
            "breathing",
            "meditation",
            "relaxation",
            "rest",
            "body_status",
            "nap",
        ]);
        let n = ((iv.end - iv.start) / 5) as usize;
        let mut hr = Vec::with_capacity(n);
        let mut hrv = Vec::with_capacity(n);
        let mut motion = Vec::with_capacity(n);
        for _ in 0..n {
            let v = self.p.rhr + 6.0 + r.normal() * 3.0;
            hr.push((!r.chance(0.02)).then_some(v.round() as i64));
            let h = self.p.hrv + r.normal() * 8.0;
            hrv.push((!r.chance(0.05)).then_some(h.round().max(5.0) as i64));
            motion.push(Some(r.range(0, 4)));
        }
        let mood = r
            .chance(0.3)
            .then(|| r.pick(&["bad", "worse", "same", "good", "great"]));
        let samples_null = kind == "body_status" && r.chance(0.5);
        let ts = lts_ms(iv.start, off);
        let sample = |items: &Vec<Option<i64>>| {
            if samples_null {
                Value::Null
            } else {
                json!({"interval": 5.0, "items": items, "timestamp": ts})
            }
        };
        json!({
            "id": make_id(self.seed, C_SESSION, dn, 0),
            "day": date_str(dn),
            "end_datetime": lts(iv.end, off),
            "heart_rate": sample(&hr),
            "heart_rate_variability": sample(&hrv),
            "mood": mood,
            "motion_count": sample(&motion),
            "start_datetime": lts(iv.start, off),
            "type": kind,
        })
    }

    fn vo2(&self, dn: i64, plan: &Plan, now: i64, emit: &mut dyn FnMut(usize, u64, i64, Value)) {
        let mut r = Rng::new(&[self.seed, S_VO2, dn as u64]);
        if !r.chance(0.08) || dn < self.first_dn + 30 {
            return;
        }
        let t = (plan.wake + r.range(2 * HOUR, 10 * HOUR)).min(plan.bed - HOUR);
        if t > now {
            return;
        }
        let years = (dn - self.first_dn) as f64 / 365.0;
        let v = (self.p.vo2 - years * 0.4 + r.normal() * 1.5).round() as i64;
        emit(
            C_VO2,
            0,
            dn,
            json!({
                "id": make_id(self.seed, C_VO2, dn, 0),
                "day": date_str(dn),
                "timestamp": lts(t, plan.off),
                "vo2_max": v.max(15),
            }),
        );
    }

    fn tags(&self, dn: i64, plan: &Plan, now: i64, emit: &mut dyn FnMut(usize, u64, i64, Value)) {
        let mut r = Rng::new(&[self.seed, S_TAG, dn as u64]);
        if r.chance(0.05) {
            let t = (plan.wake + r.range(HOUR, 12 * HOUR)).min(plan.bed - 10 * MIN);
            let a = r.pick(&[
                "tag_generic_alcohol",
                "tag_generic_caffeine",
                "tag_generic_late_meal",
                "tag_generic_nocaffeine",
                "tag_generic_sauna",
            ]);
            let two = r.chance(0.3);
            let tags: Vec<&str> = if two {
                vec![a, "tag_generic_stress"]
            } else {
                vec![a]
            };
            let text = r.chance(0.3).then_some("felt off today");
            if t <= now {
                emit(
                    C_TAG,
                    0,
                    dn,
                    json!({
                        "id": make_id(self.seed, C_TAG, dn, 0),
                        "day": date_str(dn),
                        "text": text,
                        "timestamp": lts(t, plan.off),
                        "tags": tags,
                    }),
                );
            }
        }
        let mut r = Rng::new(&[self.seed, S_ETAG, dn as u64]);
        let count = if r.chance(0.12) {
            1 + r.chance(0.25) as u64
        } else {
            0
        };
        for n in 0..count {
            let t = (plan.wake + r.range(HOUR, 13 * HOUR)).min(plan.bed - 10 * MIN);
            let code: Option<&str> = r.pick(&[
                Some("tag_generic_caffeine"),
                Some("tag_generic_alcohol"),
                Some("tag_generic_late_meal"),
                Some("tag_sleep_aid"),
                Some("tag_generic_meditation"),
                Some("custom"),
                None,
            ]);
            let custom =
                (code == Some("custom")).then(|| r.pick(&["Sauna", "Cold plunge", "Hot yoga"]));
            let with_end = r.chance(0.4);
            let end = t + r.range(1, 10) * HOUR;
            let comment = if code.is_none() || r.chance(0.2) {
                Some("note from the app")
            } else {
                None
            };
            if t > now || (with_end && end > now) {
                continue;
            }
            emit(
                C_ETAG,
                n,
                dn,
                json!({
                    "id": make_id(self.seed, C_ETAG, dn, n),
                    "tag_type_code": code,
                    "start_time": lts(t, plan.off),
                    "end_time": with_end.then(|| lts(end, plan.off)),
                    "start_day": date_str(dn),
                    "end_day": with_end.then(|| date_str(local_day(end, plan.off))),
                    "comment": comment,
                    "custom_name": custom,
                }),
            );
        }
    }

    fn rest_mode(&self, dn: i64, now: i64, emit: &mut dyn FnMut(usize, u64, i64, Value)) {
        let block = dn.div_euclid(120);
        let mut r = Rng::new(&[self.seed, S_REST, block as u64]);
        let has = r.chance(0.5);
        let start_dn = block * 120 + r.range(0, 110);
        let len = r.range(2, 7);
        if !has || dn != start_dn {
            return;
        }
        let off = self.offset(dn);
        let start = local_midnight(dn, off) + 9 * HOUR + r.range(0, HOUR);
        if start > now {
            return;
        }
        let end = start + len * DAY;
        let ended = end <= now;
        let mut episodes = Vec::new();
        for k in 0..len {
            let t = start + k * DAY;
            if t <= now.min(end) {
                let tag = if k == 0 {
                    "tag_generic_fever"
                } else {
                    "tag_generic_fatigue"
                };
                episodes.push(
                    json!({"tags": [tag], "timestamp": lts(t, self.offset(local_day(t, off)))}),
                );
            }
        }
        let end_off = self.offset(local_day(end, off));
        emit(
            C_REST_MODE,
            0,
            dn,
            json!({
                "id": make_id(self.seed, C_REST_MODE, dn, 0),
                "end_day": ended.then(|| date_str(local_day(end, end_off))),
                "end_time": ended.then(|| lts(end, end_off)),
                "episodes": episodes,
                "start_day": date_str(dn),
                "start_time": lts(start, off),
            }),
        );
    }

    fn ring_configurations(&self, days: i64) -> Vec<Document> {
        let mut r = Rng::new(&[self.seed, S_PERSON, 2]);
        let size = r.range(6, 13);
        let utc = |t: i64| lts(t, 0);
        let mut out = Vec::new();
        let mut push = |n: u64, t: i64, v: Value| {
            let dn = t.div_euclid(DAY);
            out.push(self.doc(dn, dn, make_id(self.seed, C_RING, 0, n), v.to_string()));
        };
        // Real accounts carry an old ring whose set-up time is the epoch.
        push(
            0,
            0,
            json!({"id": make_id(self.seed, C_RING, 0, 0), "color": "silver", "design": "heritage",
                "firmware_version": "2.7.6", "hardware_type": "gen2",
                "set_up_at": "1970-01-01T00:00:00+00:00", "size": size}),
        );
        let t = self.first_dn * DAY + 10 * HOUR + r.range(0, HOUR);
        push(
            1,
            t,
            json!({"id": make_id(self.seed, C_RING, 0, 1), "color": "stealth_black", "design": "horizon",
                "firmware_version": "2.9.21", "hardware_type": "gen3", "set_up_at": utc(t), "size": size}),
        );
        let t = (self.first_dn + days / 3) * DAY + 18 * HOUR;
        push(
            2,
            t,
            json!({"id": make_id(self.seed, C_RING, 0, 2), "color": null, "design": null,
                "firmware_version": null, "hardware_type": "gen3", "set_up_at": utc(t), "size": null}),
        );
        if let Some(g) = self.gen4_dn {
            let t = g * DAY + 9 * HOUR;
            push(
                3,
                t,
                json!({"id": make_id(self.seed, C_RING, 0, 3), "color": "midnight", "design": "ceramic",
                    "firmware_version": "4.3.2", "hardware_type": "gen4", "set_up_at": utc(t), "size": size}),
            );
        }
        out
    }

    fn personal_info(&self) -> String {
        json!({
            "id": person_id(self.seed),
            "age": self.p.age,
            "weight": self.p.weight,
            "height": self.p.height,
            "biological_sex": if self.p.female { "female" } else { "male" },
            "email": person_email(self.seed),
        })
        .to_string()
    }

    // -- time series ---------------------------------------------------------

    fn bpm(&self, t: i64, base: f64, spread: f64) -> u16 {
        let h = hash(&[self.seed, S_HR, t as u64]);
        let noise = (unit(h) + unit(splitmix(h)) - 1.0) * spread;
        (base + noise).round().clamp(35.0, 200.0) as u16
    }

    /// Heart-rate samples of day `dn`'s span (its night, then its awake time)
    /// that fall in `[from, to)`, appended in timestamp order.
    fn emit_hr(&self, plan: &Plan, from: i64, to: i64, out: &mut Vec<HeartRateSample>) {
        let mut e = HrEmitter {
            g: self,
            lo: from.max(plan.night_start),
            hi: to.min(plan.bed),
            out,
        };
        if e.lo >= e.hi {
            return;
        }
        let rhr = self.p.rhr;
        let ns = plan.night_start;
        let night = (plan.wake - ns).max(1) as f64;
        let sleep_base =
            move |t: i64| rhr + 4.0 - 6.0 * (std::f64::consts::PI * (t - ns) as f64 / night).sin();
        if !plan.ring_off {
            match plan.gap {
                Some((g0, g1)) => {
                    e.fixed(ns, g0, 60, sleep_base, 4.0, HeartRateSource::Sleep);
                    e.awake(g0, g1);
                    e.fixed(g1, plan.wake, 60, sleep_base, 4.0, HeartRateSource::Sleep);
                }
                None => e.fixed(ns, plan.wake, 60, sleep_base, 4.0, HeartRateSource::Sleep),
            }
        }
        let mut cursor = plan.wake;
        for iv in &plan.ivs {
            e.awake(cursor, iv.start);
            let (s, end) = (iv.start, iv.end);
            match iv.kind {
                IvKind::Workout(i) => {
                    let level = self.workout_info(plan.dn, i).level as f64;
                    let base = move |t: i64| {
                        let ramp = ((t - s) as f64 / 180.0).min(1.0);
                        rhr + 30.0 + ramp * (45.0 + 20.0 * level)
                    };
                    e.fixed(s, end, 5, base, 10.0, HeartRateSource::Workout);
                }
                IvKind::Session => e.fixed(s, end, 5, |_| rhr + 6.0, 4.0, HeartRateSource::Session),
                IvKind::Nap | IvKind::LateNap => {
                    e.fixed(s, end, 60, |_| rhr + 3.0, 4.0, HeartRateSource::Sleep)
                }
                IvKind::Rest => e.fixed(s, end, 60, |_| rhr + 8.0, 5.0, HeartRateSource::Rest),
                IvKind::Live => e.fixed(s, end, 1, |_| rhr + 22.0, 6.0, HeartRateSource::Live),
                // Not worn while charging.
                IvKind::Charge => {}
            }
            cursor = end;
        }
        e.awake(cursor, plan.bed);
    }

    fn last_charge_before(&self, t: i64) -> (i64, i64) {
        let mut dn = t.div_euclid(DAY) + 1;
        loop {
            if let Some(w) = self.charge_window(dn)
                && w.0 <= t
            {
                return w;
            }
            dn -= 1;
        }
    }

    fn battery_at(&self, t: i64) -> BatterySample {
        let (s, e) = self.last_charge_before(t);
        let (_, pe) = self.last_charge_before(s - 1);
        let before = (100.0 - DRAIN * (s - pe) as f64 / 3600.0).max(3.0);
        let (level, charging) = if t < e {
            (
                before + (100.0 - before) * (t - s) as f64 / (e - s) as f64,
                true,
            )
        } else {
            ((100.0 - DRAIN * (t - e) as f64 / 3600.0).max(3.0), false)
        };
        // Firmware of the first months did not report the charger state.
        let known = t.div_euclid(DAY) >= self.first_dn + 90;
        BatterySample {
            ts: Timestamp::from_second(t).expect("timestamp in range"),
            level: level.round().clamp(0.0, 100.0) as u8,
            charging: known.then_some(charging),
            in_charger: known.then_some(charging),
        }
    }

    fn emit_battery(&self, plan: &Plan, from: i64, to: i64, out: &mut Vec<BatterySample>) {
        let lo = from.max(plan.night_start);
        let hi = to.min(self.bed_raw(plan.dn));
        let charge = self.charge_window(plan.dn);
        let mut k = lo.div_euclid(300) + i64::from(lo.rem_euclid(300) != 0);
        while k * 300 < hi {
            let t = k * 300;
            let charging = charge.is_some_and(|(s, e)| t >= s && t < e);
            if charging || k % 3 == 0 {
                out.push(self.battery_at(t));
            }
            k += 1;
        }
    }
}

/// Appends heart-rate samples clipped to `[lo, hi)`. Each value is a hash
/// of its timestamp, so any window yields the same samples as the whole.
struct HrEmitter<'a> {
    g: &'a Gen,
    lo: i64,
    hi: i64,
    out: &'a mut Vec<HeartRateSample>,
}

impl HrEmitter<'_> {
    fn push(&mut self, t: i64, base: f64, spread: f64, source: HeartRateSource) {
        if t >= self.lo && t < self.hi {
            self.out.push(HeartRateSample {
                ts: Timestamp::from_second(t).expect("timestamp in range"),
                bpm: self.g.bpm(t, base, spread),
                source,
            });
        }
    }

    /// Samples every `step` seconds from `s` (aligned to `s`) until `e`.
    fn fixed(
        &mut self,
        s: i64,
        e: i64,
        step: i64,
        base: impl Fn(i64) -> f64,
        spread: f64,
        source: HeartRateSource,
    ) {
        let end = e.min(self.hi);
        let mut t = if self.lo > s {
            s + (self.lo - s + step - 1) / step * step
        } else {
            s
        };
        while t < end {
            self.push(t, base(t), spread, source);
            t += step;
        }
    }

    /// Background daytime samples: a 5-minute grid with per-point jitter.
    fn awake(&mut self, s: i64, e: i64) {
        let base = self.g.p.rhr + 18.0;
        let mut k = s.max(self.lo - 300).div_euclid(300);
        while k * 300 < e.min(self.hi) {
            let j = (hash(&[self.g.seed, S_JITTER, k as u64]) % 60) as i64;
            let t = k * 300 + j;
            if t >= s && t < e {
                self.push(t, base, 16.0, HeartRateSource::Awake);
            }
            k += 1;
        }
    }
}

// ---------------------------------------------------------------------------
// Storage.

#[derive(Debug, Clone, Default)]
struct Collection {
    docs: Vec<Document>,
    index: HashMap<String, usize>,
}

impl Collection {
    fn sort_and_index(&mut self) {
        self.docs
            .sort_by(|a, b| (a.day, &a.id).cmp(&(b.day, &b.id)));
        self.reindex();
    }
    fn reindex(&mut self) {
        self.index.clear();
        self.index.reserve(self.docs.len());
        for (i, d) in self.docs.iter().enumerate() {
            self.index.insert(d.id.clone(), i);
        }
    }
    fn day_range(&self, day: Date) -> (usize, usize) {
        let lo = self.docs.partition_point(|d| d.day < day);
        let hi = self.docs.partition_point(|d| d.day <= day);
        (lo, hi)
    }
    fn get(&self, id: &str) -> Option<&Document> {
        self.index.get(id).map(|i| &self.docs[*i])
    }
    fn remove(&mut self, id: &str) -> Option<Document> {
        let i = *self.index.get(id)?;
        let d = self.docs.remove(i);
        self.reindex();
        Some(d)
    }
    fn insert(&mut self, doc: Document) {
        let pos = self
            .docs
            .partition_point(|d| (d.day, d.id.as_str()) < (doc.day, doc.id.as_str()));
        self.docs.insert(pos, doc);
        self.reindex();
    }
}

/// The simulated person's whole history plus the clock (`today`).
pub struct Dataset {
    pub today: Date,
    g: Gen,
    colls: Vec<Collection>,
    heartrate: Vec<HeartRateSample>,
    battery: Vec<BatterySample>,
    personal_info: String,
    revision: u64,
}

impl Dataset {
    /// `days` days of history ending with `today` (the simulated current day).
    pub fn generate(seed: u64, days: u32, today: Date) -> Dataset {
        let days = i64::from(days.max(1));
        let today_dn = day_no(today);
        let first_dn = today_dn - days + 1;
        let ring_ids = [
            format!("{:016x}", hash(&[seed, S_ID, 1000])),
            format!("{:016x}", hash(&[seed, S_ID, 1001])),
        ];
        let mut g = Gen {
            seed,
            p: Person::new(seed),
            first_dn,
            gen4_dn: (days >= 400).then_some(first_dn + days * 7 / 10),
            ring_ids,
            ov: Overrides::default(),
        };
        // One recent night has not reached the cloud yet; `deliver_late`
        // brings it in.
        let pending = today_dn - 3;
        if pending >= first_dn && !g.plan(pending).ring_off {
            g.ov.withheld.insert(pending);
        }
        let mut ds = Dataset {
            today,
            personal_info: g.personal_info(),
            g,
            colls: vec![Collection::default(); N_COLL],
            heartrate: Vec::with_capacity(days as usize * 1300),
            battery: Vec::with_capacity(days as usize * 110),
            revision: 0,
        };
        let now = ds.now_of(today_dn);
        let from = i64::MIN;
        let mut plan = ds.g.plan(first_dn);
        for dn in first_dn..=today_dn {
            let next = ds.g.plan(dn + 1);
            let colls = &mut ds.colls;
            ds.g.day_docs_planned(&plan, &next, now, &mut |c, d| colls[c].docs.push(d));
            ds.g.emit_hr(&plan, from, now, &mut ds.heartrate);
            ds.g.emit_battery(&plan, from, now, &mut ds.battery);
            plan = next;
        }
        ds.colls[C_RING].docs = ds.g.ring_configurations(days);
        for c in &mut ds.colls {
            c.sort_and_index();
        }
        ds
    }

    /// The simulated "now": midday of `dn` in that day's local offset.
    fn now_of(&self, dn: i64) -> i64 {
        local_midnight(dn, self.g.offset(dn)) + 12 * HOUR
    }

    /// The simulated current instant (midday of `today`, local time).
    pub fn now(&self) -> Timestamp {
        Timestamp::from_second(self.now_of(day_no(self.today))).expect("timestamp in range")
    }

    /// First day of the history.
    pub fn first_day(&self) -> Date {
        date_of(self.g.first_dn)
    }

    /// UTC offset in seconds the person lives in on a local day.
    pub fn utc_offset_seconds(&self, day: Date) -> i32 {
        self.g.offset(day_no(day))
    }

    /// Documents of a collection, sorted by `day` then id.
    pub fn documents(&self, collection: &str) -> &[Document] {
        match collection_index(collection) {
            Some(i) => &self.colls[i].docs,
            None => &[],
        }
    }

    pub fn document(&self, collection: &str, id: &str) -> Option<&Document> {
        self.colls[collection_index(collection)?].get(id)
    }

    /// Sorted by timestamp.
    pub fn heartrate(&self) -> &[HeartRateSample] {
        &self.heartrate
    }

    /// Sorted by timestamp.
    pub fn battery(&self) -> &[BatterySample] {
        &self.battery
    }

    pub fn personal_info(&self) -> &str {
        &self.personal_info
    }

    /// Re-derives day `dn` and stores the difference, reporting it.
    fn apply_day(&mut self, dn: i64, now: i64, changes: &mut Vec<Change>) {
        if dn < self.g.first_dn {
            return;
        }
        let mut fresh: Vec<Vec<Document>> = vec![Vec::new(); N_COLL];
        self.g.day_docs(dn, now, &mut |c, d| fresh[c].push(d));
        let day = date_of(dn);
        for (c, mut new_docs) in fresh.into_iter().enumerate() {
            if c == C_RING {
                continue;
            }
            let coll = &mut self.colls[c];
            let (lo, hi) = coll.day_range(day);
            let name = DOCUMENT_COLLECTIONS[c];
            let mut changed = false;
            for n in &new_docs {
                match coll.docs[lo..hi].iter().find(|e| e.id == n.id) {
                    Some(e) if e.json == n.json => {}
                    Some(_) => {
                        changed = true;
                        changes.push(Change {
                            collection: name,
                            id: n.id.clone(),
                            op: Op::Update,
                        });
                    }
                    None => {
                        changed = true;
                        changes.push(Change {
                            collection: name,
                            id: n.id.clone(),
                            op: Op::Create,
                        });
                    }
                }
            }
            for e in &coll.docs[lo..hi] {
                if self.g.ov.custom.contains(&(c, e.id.clone())) {
                    new_docs.push(e.clone());
                } else if !new_docs.iter().any(|n| n.id == e.id) {
                    changed = true;
                    changes.push(Change {
                        collection: name,
                        id: e.id.clone(),
                        op: Op::Delete,
                    });
                }
            }
            if changed {
                new_docs.sort_by(|a, b| a.id.cmp(&b.id));
                coll.docs.splice(lo..hi, new_docs);
                coll.reindex();
            }
        }
    }

    /// Moves the clock forward `days` days, generating their data. The new
    /// `today` is served as in progress (e.g. partial daily_activity);
    /// the previous one is completed.
    pub fn advance_days(&mut self, days: u32) -> Vec<Change> {
        let mut changes = Vec::new();
        if days == 0 {
            return changes;
        }
        let old_dn = day_no(self.today);
        let new_dn = old_dn + i64::from(days);
        let old_now = self.now_of(old_dn);
        let new_now = self.now_of(new_dn);
        self.today = date_of(new_dn);
        // Ongoing rest-mode periods and other multi-day documents started
        // before the old today can still change.
        for dn in (old_dn - 14)..=new_dn {
            self.apply_day(dn, new_now, &mut changes);
        }
        for dn in old_dn..=new_dn {
            let plan = self.g.plan(dn);
            self.g.emit_hr(&plan, old_now, new_now, &mut self.heartrate);
            self.g
                .emit_battery(&plan, old_now, new_now, &mut self.battery);
        }
        changes
    }

    fn today_dn(&self) -> i64 {
        day_no(self.today)
    }

    fn cur_now(&self) -> i64 {
        self.now_of(self.today_dn())
    }

    fn reapply(&mut self, dns: &[i64]) -> Vec<Change> {
        let now = self.cur_now();
        let mut changes = Vec::new();
        for dn in dns {
            self.apply_day(*dn, now, &mut changes);
        }
        changes
    }

    /// Latest generated sleep period in `[today-back, today]` matching `f`.
    fn recent_sleep(&self, back: i64, f: impl Fn(&Value) -> bool) -> Option<(String, i64)> {
        let today = self.today_dn();
        let docs = &self.colls[C_SLEEP].docs;
        for d in docs.iter().rev() {
            let dn = day_no(d.day);
            if dn > today {
                continue;
            }
            if dn < today - back {
                break;
            }
            if self.g.ov.custom.contains(&(C_SLEEP, d.id.clone())) {
                continue;
            }
            let v: Value = serde_json::from_str(&d.json).expect("stored documents are JSON");
            if f(&v) {
                return Some((d.id.clone(), dn));
            }
        }
        None
    }

    /// Revises recent documents the way Oura does: yesterday's sleep score
    /// recomputed, steps synced late into yesterday's activity, and the
    /// latest long sleep period's bedtime edited (same ids, new content).
    pub fn revise_recent(&mut self) -> Vec<Change> {
        self.revision += 1;
        let mut r = Rng::new(&[self.g.seed, S_REVISE, self.revision]);
        let y = self.today_dn() - 1;
        let mut days = Vec::new();
        let sleep_day = self.colls[C_DSLEEP]
            .docs
            .iter()
            .rev()
            .map(|d| day_no(d.day))
            .find(|dn| *dn <= y && *dn >= y - 7);
        if let Some(dn) = sleep_day {
            let delta = if self.revision % 2 == 1 {
                r.range(1, 4)
            } else {
                -r.range(1, 4)
            };
            *self.g.ov.score_delta.entry(dn).or_insert(0) += delta;
            days.push(dn);
        }
        if y >= self.g.first_dn {
            *self.g.ov.late_steps.entry(y).or_insert(0) += r.range(150, 900);
            days.push(y);
        }
        let edit = self.recent_sleep(7, |v| {
            v["type"] != "deleted" && v["time_in_bed"].as_i64().unwrap_or(0) >= 2 * 3600
        });
        if let Some((id, dn)) = edit {
            *self.g.ov.sleep_shift.entry(id).or_insert(0) += 300;
            days.push(dn);
        }
        days.sort_unstable();
        days.dedup();
        self.reapply(&days)
    }

    /// Adds a night that the ring delivered late: a pending recent night
    /// (or, failing that, a recent night the ring missed) appears with its
    /// sleep periods and daily_sleep.
    pub fn deliver_late(&mut self) -> Vec<Change> {
        let today = self.today_dn();
        if let Some(dn) = self.g.ov.withheld.iter().copied().max() {
            self.g.ov.withheld.remove(&dn);
            return self.reapply(&[dn]);
        }
        let missed = ((today - 30).max(self.g.first_dn)..today)
            .rev()
            .find(|dn| self.g.plan(*dn).ring_off);
        match missed {
            Some(dn) => {
                self.g.ov.forced_on.insert(dn);
                self.reapply(&[dn - 1, dn])
            }
            None => Vec::new(),
        }
    }

    /// Deletes documents: the latest live sleep period becomes
    /// `type: deleted` (an update) and the latest tag vanishes (a delete).
    pub fn delete_some(&mut self) -> Vec<Change> {
        let mut changes = Vec::new();
        if let Some((id, dn)) = self.recent_sleep(14, |v| v["type"] != "deleted") {
            self.g.ov.deleted.insert(id);
            changes.extend(self.reapply(&[dn]));
        }
        let last = |c: usize| self.colls[c].docs.last().map(|d| (d.day, c, d.id.clone()));
        if let Some((_, c, id)) = [last(C_TAG), last(C_ETAG)].into_iter().flatten().max() {
            changes.extend(self.remove_document(DOCUMENT_COLLECTIONS[c], &id));
        }
        changes
    }

    /// Stores a hand-made document (tests use this to craft edge cases).
    /// It replaces any document with the same id and survives regeneration.
    pub fn set_document(&mut self, collection: &str, json: Value) -> Result<Change, DataError> {
        let c = collection_index(collection)
            .ok_or_else(|| DataError::UnknownCollection(collection.to_string()))?;
        let id = json
            .get("id")
            .and_then(Value::as_str)
            .ok_or(DataError::MissingId)?
            .to_string();
        let day_field = match c {
            C_ETAG | C_REST_MODE => "start_day",
            C_RING => "set_up_at",
            _ => "day",
        };
        let day = match (c, json.get(day_field)) {
            (C_RING, Some(Value::Null) | None) => date_of(0),
            (C_RING, Some(Value::String(s))) => s
                .parse::<Timestamp>()
                .map(|t| date_of(t.as_second().div_euclid(DAY)))
                .map_err(|_| DataError::MissingDay(day_field))?,
            (_, Some(Value::String(s))) => s
                .parse::<Date>()
                .map_err(|_| DataError::MissingDay(day_field))?,
            _ => return Err(DataError::MissingDay(day_field)),
        };
        self.put_document(collection, &id, day, json)
    }

    /// Stores a document exactly as given, indexed under `id` and `day`
    /// whatever its content says: tests use this for what the spec forbids
    /// but real accounts serve (no `id`, a `day` in another form or none).
    /// It replaces any document with the same id and survives regeneration.
    pub fn put_document(
        &mut self,
        collection: &str,
        id: &str,
        day: Date,
        json: Value,
    ) -> Result<Change, DataError> {
        let c = collection_index(collection)
            .ok_or_else(|| DataError::UnknownCollection(collection.to_string()))?;
        let id = id.to_owned();
        let utc_day = ["start_datetime", "bedtime_start"]
            .iter()
            .find_map(|f| json.get(*f).and_then(Value::as_str))
            .and_then(|s| s.parse::<Timestamp>().ok())
            .map(|t| date_of(t.as_second().div_euclid(DAY)))
            .unwrap_or(day);
        let key = (c, id.clone());
        self.g.ov.removed.remove(&key);
        self.g.ov.custom.insert(key);
        let coll = &mut self.colls[c];
        let op = if coll.remove(&id).is_some() {
            Op::Update
        } else {
            Op::Create
        };
        coll.insert(Document {
            id: id.clone(),
            day,
            utc_day,
            json: Arc::from(json.to_string()),
        });
        Ok(Change {
            collection: DOCUMENT_COLLECTIONS[c],
            id,
            op,
        })
    }

    /// Removes a document for good (regeneration will not bring it back).
    pub fn remove_document(&mut self, collection: &str, id: &str) -> Option<Change> {
        let c = collection_index(collection)?;
        self.colls[c].remove(id)?;
        let key = (c, id.to_string());
        self.g.ov.custom.remove(&key);
        self.g.ov.removed.insert(key);
        Some(Change {
            collection: DOCUMENT_COLLECTIONS[c],
            id: id.to_string(),
            op: Op::Delete,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        for dn in [-1000, -1, 0, 1, 10_957, 19_723, 20_000, 60_000] {
            let (y, m, d) = civil_from_days(dn);
            assert_eq!(days_from_civil(y, m, d), dn);
        }
        assert_eq!(date_str(0), "1970-01-01");
        assert_eq!(date_str(19_723), "2024-01-01");
    }

    #[test]
    fn timestamps_carry_the_offset() {
        assert_eq!(lts(0, 0), "1970-01-01T00:00:00+00:00");
        assert_eq!(lts(0, 19_800), "1970-01-01T05:30:00+05:30");
        assert_eq!(lts_ms(0, -18_000), "1969-12-31T19:00:00.000-05:00");
    }

    #[test]
    fn tenths_format_like_floats() {
        let mut s = String::new();
        for t in [0, 9, 10, 61, 123] {
            push_tenths(&mut s, t);
            s.push(' ');
        }
        assert_eq!(s, "0.0 0.9 1.0 6.1 12.3 ");
    }

    #[test]
    fn ids_look_like_uuids() {
        let id = make_id(7, 3, 19_000, 2);
        assert_eq!(id.len(), 36);
        assert_eq!(id.matches('-').count(), 4);
        assert_ne!(id, make_id(7, 3, 19_000, 3));
        assert_ne!(id, make_id(8, 3, 19_000, 2));
    }
}
