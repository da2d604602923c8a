//! Injected failures. Each data request draws one number from a hash of the
//! seed and the request's sequence number, so a given seed and request order
//! always hit the same faults.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::Shared;

/// Probabilities (0.0–1.0) of each fault per `/v2/usercollection` request.
/// They are tried in field order; their sum should stay ≤ 1.
#[derive(Debug, Clone, PartialEq)]
pub struct Faults {
    pub status_500: f64,
    pub status_502: f64,
    pub status_503: f64,
    pub status_504: f64,
    /// Chance that a burst of 429s starts; it then lasts `burst_len` requests.
    pub burst_429: f64,
    pub burst_len: u32,
    /// Response delayed by `slow_delay`.
    pub slow: f64,
    pub slow_delay: Duration,
    /// Response held for `stall_duration` (long enough to trip client timeouts).
    pub stall: f64,
    pub stall_duration: Duration,
    /// Content-Length announces the full body, then the connection ends halfway.
    pub truncate: f64,
    /// A complete 200 response whose JSON is cut in half.
    pub malformed: f64,
    /// The connection is dropped without a response.
    pub reset: f64,
    /// An outage that answers every data request with `200` and nothing:
    /// empty pages without a next token, `{}` for personal_info and 404
    /// for single documents.
    pub empty_pages: bool,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            status_500: 0.0,
            status_502: 0.0,
            status_503: 0.0,
            status_504: 0.0,
            burst_429: 0.0,
            burst_len: 5,
            slow: 0.0,
            slow_delay: Duration::from_millis(500),
            stall: 0.0,
            stall_duration: Duration::from_secs(120),
            truncate: 0.0,
            malformed: 0.0,
            reset: 0.0,
            empty_pages: false,
        }
    }
}

impl Faults {
    pub fn none() -> Faults {
        Faults::default()
    }

    fn any(&self) -> bool {
        self.status_500
            + self.status_502
            + self.status_503
            + self.status_504
            + self.burst_429
            + self.slow
            + self.stall
            + self.truncate
            + self.malformed
            + self.reset
            > 0.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Fault {
    Status(u16),
    Burst429,
    Slow(Duration),
    Stall(Duration),
    Truncate,
    Malformed,
    Reset,
}

impl Fault {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Fault::Status(500) => "500",
            Fault::Status(502) => "502",
            Fault::Status(503) => "503",
            Fault::Status(_) => "504",
            Fault::Burst429 => "429",
            Fault::Slow(_) => "slow",
            Fault::Stall(_) => "stall",
            Fault::Truncate => "truncate",
            Fault::Malformed => "malformed",
            Fault::Reset => "reset",
        }
    }
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Picks the fault (if any) for the next data request.
pub(crate) fn draw(s: &Shared) -> Option<Fault> {
    let f = s.faults.read().unwrap();
    if !f.any() {
        return None;
    }
    if s.burst_left
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return Some(Fault::Burst429);
    }
    let n = s.fault_seq.fetch_add(1, Ordering::SeqCst);
    let x = (splitmix(s.cfg.seed ^ splitmix(n)) >> 11) as f64 / (1u64 << 53) as f64;
    let table = [
        (f.status_500, Fault::Status(500)),
        (f.status_502, Fault::Status(502)),
        (f.status_503, Fault::Status(503)),
        (f.status_504, Fault::Status(504)),
        (f.burst_429, Fault::Burst429),
        (f.slow, Fault::Slow(f.slow_delay)),
        (f.stall, Fault::Stall(f.stall_duration)),
        (f.truncate, Fault::Truncate),
        (f.malformed, Fault::Malformed),
        (f.reset, Fault::Reset),
    ];
    let mut acc = 0.0;
    for (p, fault) in table {
        acc += p;
        if x < acc {
            if fault == Fault::Burst429 {
                s.burst_left
                    .store(u64::from(f.burst_len.saturating_sub(1)), Ordering::SeqCst);
            }
            return Some(fault);
        }
    }
    None
}
