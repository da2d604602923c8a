//! `interbeat_interval`: the ring's raw beat-to-beat intervals, which the
//! live API serves though spec 1.37 does not list it. The row shape is
//! newer specs' `PublicInterbeatIntervalRow` as their generated clients
//! have it: `timestamp`, `timestamp_unix` (ms), `ibi` (ms) and `validity`
//! (an integer code Oura does not document).
//!
//! A night holds ~25,000 beats, so five years would be ~45 million rows:
//! far too many to keep in memory like heart rate. Beats are derived on
//! each request instead, as a pure function of the seed and the stored
//! sleep periods (so they follow edits and late deliveries of sleep), plus
//! a few minutes of daytime measurement after each night.
//!
//! Codes served (an assumption where Oura says nothing): 1 a valid beat;
//! 0 an artifact (motion, an ectopic beat: its interval is off); 2 the
//! first beat after the ring lost contact, whose interval spans the gap
//! and is capped at 2,000 ms like every `ibi`.

use std::fmt::Write as _;

use jiff::Timestamp;
use serde_json::Value;

use crate::data::Dataset;

/// The API's cap on `ibi`.
pub const MAX_IBI_MS: i64 = 2000;
const DAY_MS: i64 = 86_400_000;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IbiSample {
    pub ts: Timestamp,
    pub ibi: u16,
    pub validity: u8,
}

impl IbiSample {
    /// Appends the beat as a `PublicInterbeatIntervalRow` object.
    pub fn write_json(&self, out: &mut String) {
        let ms = self.ts.as_millisecond();
        // RFC 3339 UTC with milliseconds, e.g. 2024-01-01T03:12:45.123+00:00.
        let t = jiff::tz::TimeZone::UTC.to_datetime(self.ts);
        let _ = write!(
            out,
            "{{\"ibi\":{},\"timestamp\":\"{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}+00:00\",\"timestamp_unix\":{ms},\"validity\":{}}}",
            self.ibi,
            t.year(),
            t.month(),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.subsec_nanosecond() / 1_000_000,
            self.validity
        );
    }
}

/// A stretch of measured beats.
#[derive(Debug, Clone, Copy)]
struct Segment {
    start_ms: i64,
    end_ms: i64,
    mean_ibi: f64,
    /// RMSSD the beats are drawn to have, ms.
    rmssd: f64,
    key: u64,
}

/// The beats with `start_ms <= ts <= end_ms` and `ts > after`, in time
/// order, at most `limit` of them (`latest`: only the last one).
pub fn beats(
    data: &Dataset,
    seed: u64,
    range: (i64, i64),
    after: Option<i64>,
    limit: usize,
    latest: bool,
) -> Vec<IbiSample> {
    let (start_ms, end_ms) = range;
    let from = after.map_or(start_ms, |a| start_ms.max(a + 1));
    let now = data.now().as_millisecond();
    let end_ms = end_ms.min(now);
    let segs = segments(data, seed, from, end_ms);
    let keep = |b: &IbiSample| {
        let t = b.ts.as_millisecond();
        t >= from && t <= end_ms
    };
    if latest {
        return segs
            .iter()
            .rev()
            .find_map(|s| segment_beats(s).into_iter().rev().find(keep))
            .into_iter()
            .collect();
    }
    let mut out = Vec::with_capacity(limit.min(32_768));
    for s in &segs {
        out.extend(segment_beats(s).into_iter().filter(keep));
        if out.len() >= limit {
            out.truncate(limit);
            break;
        }
    }
    out
}

/// Measured stretches overlapping `[from, to]`, sorted, none overlapping:
/// every sleep period (not deleted) and a few minutes of the day after
/// each long sleep.
fn segments(data: &Dataset, seed: u64, from: i64, to: i64) -> Vec<Segment> {
    let docs = data.documents("sleep");
    // A period ends on its `day` (or the day after in UTC), and starts at
    // most a day before.
    let day_of = |ms: i64| {
        Timestamp::from_millisecond(ms)
            .map(|t| t.to_zoned(jiff::tz::TimeZone::UTC).date())
            .ok()
    };
    let (Some(lo_day), Some(hi_day)) = (day_of(from - DAY_MS), day_of(to + 2 * DAY_MS)) else {
        return Vec::new();
    };
    let lo = docs.partition_point(|d| d.day < lo_day);
    let hi = docs.partition_point(|d| d.day <= hi_day);
    let mut segs = Vec::new();
    for d in &docs[lo..hi.max(lo)] {
        let Ok(v) = serde_json::from_str::<Value>(&d.json) else {
            continue;
        };
        segs.extend(from_sleep(&v, seed));
    }
    segs.sort_by_key(|s| s.start_ms);
    let mut kept: Vec<Segment> = Vec::with_capacity(segs.len());
    for s in segs {
        if kept.last().is_none_or(|k| k.end_ms < s.start_ms) {
            kept.push(s);
        }
    }
    kept.retain(|s| s.end_ms >= from && s.start_ms <= to);
    kept
}

/// The segments of one sleep document: the period itself and, after a
/// long sleep, five to fifteen minutes of daytime beats.
fn from_sleep(v: &Value, seed: u64) -> Vec<Segment> {
    let time = |f: &str| {
        v.get(f)?
            .as_str()?
            .parse::<Timestamp>()
            .ok()
            .map(|t| t.as_millisecond())
    };
    let (Some(start_ms), Some(end_ms)) = (time("bedtime_start"), time("bedtime_end")) else {
        return Vec::new();
    };
    let kind = v.get("type").and_then(Value::as_str).unwrap_or("");
    if kind == "deleted" || end_ms <= start_ms {
        return Vec::new();
    }
    let hr = v
        .get("average_heart_rate")
        .and_then(Value::as_f64)
        .unwrap_or(55.0);
    let hrv = v.get("average_hrv").and_then(Value::as_f64).unwrap_or(40.0);
    let key = mix(seed, start_ms as u64);
    let mut out = vec![Segment {
        start_ms,
        end_ms,
        mean_ibi: 60_000.0 / hr.clamp(35.0, 120.0),
        rmssd: hrv.clamp(8.0, 150.0),
        key,
    }];
    if kind == "long_sleep" {
        let day_start = end_ms + 7_200_000 + (mix(key, 1) % 28_800_000) as i64;
        let len = 300_000 + (mix(key, 2) % 600_000) as i64;
        out.push(Segment {
            start_ms: day_start,
            end_ms: day_start + len,
            mean_ibi: 60_000.0 / 72.0,
            rmssd: (hrv * 0.6).clamp(8.0, 150.0),
            key: mix(key, 3),
        });
    }
    out
}

/// The beats of one segment: intervals around the segment's mean with the
/// short-term variability of its RMSSD (an AR(1) process: successive
/// differences of x_t = m + a (x_{t-1} - m) + e have variance
/// 2 sd² (1 - a), sd² the process variance), lost contact now and then
/// (no beats, then a code-2 beat) and artifacts in short bursts (code 0).
fn segment_beats(s: &Segment) -> Vec<IbiSample> {
    const A: f64 = 0.6;
    let sd = s.rmssd / (2.0 * (1.0 - A)).sqrt();
    let noise_sd = sd * (1.0 - A * A).sqrt();
    let mut r = Rng(s.key);
    let mut out = Vec::with_capacity(((s.end_ms - s.start_ms) as f64 / s.mean_ibi) as usize + 1);
    let mut t = s.start_ms + (r.next() % 1000) as i64;
    let mut x = s.mean_ibi;
    let mut artifacts = 0u32;
    let mut after_gap = false;
    while t <= s.end_ms {
        // About one contact loss per half hour, 3 s to 3 min long.
        if r.unit() < s.mean_ibi / 1_800_000.0 {
            t += 3_000 + (r.next() % 177_000) as i64;
            after_gap = true;
            continue;
        }
        x = s.mean_ibi + A * (x - s.mean_ibi) + noise_sd * r.normal();
        let mut ibi = x.round().clamp(300.0, 1_900.0) as i64;
        let validity = if after_gap {
            after_gap = false;
            // The interval since the last beat heard, capped.
            ibi = (ibi + (r.next() % 4000) as i64).min(MAX_IBI_MS);
            2
        } else if artifacts > 0 || r.unit() < 0.004 {
            artifacts = if artifacts > 0 {
                artifacts - 1
            } else {
                (r.next() % 8) as u32
            };
            ibi = (ibi as f64 * (0.55 + 0.9 * r.unit())).round() as i64;
            0
        } else {
            1
        };
        t += ibi.max(1);
        if t > s.end_ms {
            break;
        }
        out.push(IbiSample {
            ts: Timestamp::from_millisecond(t).expect("a time within the history"),
            ibi: ibi.clamp(1, MAX_IBI_MS) as u16,
            validity,
        });
    }
    out
}

fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// xorshift64*: beats are drawn in sequence within a segment, each segment
/// seeded by its own key.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0 | 1;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller).
    fn normal(&mut self) -> f64 {
        let u = self.unit().max(1e-12);
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * self.unit()).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn night() -> Segment {
        Segment {
            start_ms: 1_700_000_000_000,
            end_ms: 1_700_000_000_000 + 8 * 3_600_000,
            mean_ibi: 1000.0,
            rmssd: 45.0,
            key: 7,
        }
    }

    #[test]
    fn a_night_has_realistic_volume_codes_and_variability() {
        let b = segment_beats(&night());
        assert!((24_000..30_000).contains(&b.len()), "{}", b.len());
        assert!(b.windows(2).all(|w| w[0].ts < w[1].ts));
        assert!(b.iter().all(|x| x.ibi as i64 <= MAX_IBI_MS && x.ibi > 0));
        let count = |v: u8| b.iter().filter(|x| x.validity == v).count();
        assert!(count(0) > 100 && count(2) > 3, "{} {}", count(0), count(2));
        assert_eq!(count(0) + count(1) + count(2), b.len());
        // RMSSD over consecutive valid beats lands near the target.
        let d: Vec<f64> = b
            .windows(2)
            .filter(|w| w[0].validity == 1 && w[1].validity == 1)
            .map(|w| f64::from(w[1].ibi) - f64::from(w[0].ibi))
            .collect();
        let rmssd = (d.iter().map(|x| x * x).sum::<f64>() / d.len() as f64).sqrt();
        assert!((38.0..52.0).contains(&rmssd), "{rmssd}");
        assert_eq!(segment_beats(&night()), b, "deterministic");
    }

    #[test]
    fn rows_have_the_live_shape() {
        let mut s = String::new();
        IbiSample {
            ts: Timestamp::from_millisecond(1_700_000_000_123).unwrap(),
            ibi: 987,
            validity: 1,
        }
        .write_json(&mut s);
        assert_eq!(
            s,
            r#"{"ibi":987,"timestamp":"2023-11-14T22:13:20.123+00:00","timestamp_unix":1700000000123,"validity":1}"#
        );
    }
}
