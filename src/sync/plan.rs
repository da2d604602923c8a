//! Which days a job covers and how they are asked for. Pure functions, so the
//! API's date quirks are handled (and tested) in one place.

use jiff::ToSpan;
use jiff::civil::Date;

use crate::api::PageQuery;
use crate::registry::{DataType, QueryStyle};

/// An inclusive range of days a job owns: documents whose day falls inside
/// are stored, and documents stored for those days but no longer served are
/// removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from: Date,
    pub to: Date,
}

impl Window {
    pub fn days(&self) -> i64 {
        (self.to - self.from)
            .total((jiff::Unit::Day, self.from))
            .map(|d| d as i64 + 1)
            .unwrap_or(1)
    }

    pub fn contains(&self, d: Date) -> bool {
        self.from <= d && d <= self.to
    }
}

/// Splits `[from, to]` into windows of at most `size` days, oldest first.
pub fn split(from: Date, to: Date, size: u32) -> Vec<Window> {
    let size = size.max(1) as i64;
    let mut out = Vec::new();
    let mut start = from;
    while start <= to {
        let end = start.checked_add((size - 1).days()).unwrap_or(to).min(to);
        out.push(Window {
            from: start,
            to: end,
        });
        match end.checked_add(1.day()) {
            Ok(n) => start = n,
            Err(_) => break,
        }
    }
    out
}

/// The request that covers every document of `w`, whatever the
/// collection's date semantics:
/// - some collections exclude `end_date` (daily_activity, sleep, workout),
/// - a sleep period of day D is only returned when `start_date <= D-1`,
/// - workout filters by UTC date while reporting a local day, which can be a
///   day either side.
///
/// One day of padding before and two after absorb all three; the caller
/// filters locally by day.
pub fn request_for(dt: &DataType, w: Window) -> PageQuery {
    match dt.query {
        QueryStyle::DateRange => PageQuery::Dates {
            start: w.from.saturating_sub(1.day()),
            end: w.to.saturating_add(2.days()),
        },
        // Time series are keyed by instant; the window's UTC days, with the
        // end bound at the following midnight.
        QueryStyle::DateTimeRange => PageQuery::DateTimes {
            start: w.from,
            end: w.to.saturating_add(1.day()),
        },
        QueryStyle::List | QueryStyle::Single => PageQuery::All,
    }
}

/// The days an incremental run covers: from the cursor minus the lookback
/// (revised documents live there) to tomorrow, which is "today" somewhere.
pub fn incremental_window(
    high_water: Option<Date>,
    since: Option<Date>,
    today: Date,
    lookback_days: u32,
) -> Window {
    let tomorrow = today.saturating_add(1.day());
    let from = match (since, high_water) {
        (Some(s), _) => s,
        (None, Some(h)) => h.saturating_sub((lookback_days as i64).days()),
        (None, None) => today.saturating_sub((lookback_days as i64).days()),
    };
    Window {
        from: from.min(tomorrow),
        to: tomorrow,
    }
}

/// The next backfill window below `floor`, or None when `start` is reached.
pub fn next_backfill_window(floor: Date, start: Date, size: u32) -> Option<Window> {
    if floor <= start {
        return None;
    }
    let to = floor.saturating_sub(1.day());
    let from = to
        .saturating_sub((size.max(1) as i64 - 1).days())
        .max(start);
    Some(Window { from, to })
}

/// Every backfill window below `floor` down to `start`, newest first.
pub fn backfill_windows(mut floor: Date, start: Date, size: u32) -> Vec<Window> {
    let mut out = Vec::new();
    while let Some(w) = next_backfill_window(floor, start, size) {
        out.push(w);
        floor = w.from;
    }
    out
}

/// The backfill floor while several windows of one type are in flight.
/// Windows finish in any order, but the floor (everything from it up to the
/// high water is stored) may only move down over windows that are complete
/// and touch it: a window finished below a gap waits here until the gap's
/// window finishes, and a crash before then re-fetches both, losing nothing.
#[derive(Debug, Clone)]
pub struct FloorLedger {
    floor: Date,
    start: Date,
    /// Finished windows below a gap, by their last day.
    waiting: std::collections::BTreeMap<Date, Date>,
}

impl FloorLedger {
    pub fn new(floor: Date, start: Date) -> Self {
        FloorLedger {
            floor,
            start,
            waiting: Default::default(),
        }
    }

    /// Where the floor would be if `w` finished now: lower than today's
    /// floor when `w` touches it (taking with it the finished windows below
    /// it), or None when a window above `w` is still missing.
    pub fn floor_after(&self, w: Window) -> Option<Date> {
        if w.to.checked_add(1.day()).ok()? != self.floor {
            return None;
        }
        let mut floor = w.from;
        while let Some(from) = floor
            .checked_sub(1.day())
            .ok()
            .and_then(|d| self.waiting.get(&d))
        {
            floor = *from;
        }
        Some(floor)
    }

    /// Records `w` as stored (its last page committed with
    /// [`FloorLedger::floor_after`]'s floor).
    pub fn finished(&mut self, w: Window) {
        match self.floor_after(w) {
            Some(floor) => {
                self.waiting.retain(|to, _| *to < floor);
                self.floor = floor;
            }
            None => {
                self.waiting.insert(w.to, w.from);
            }
        }
    }

    /// Whether a floor has reached the start of history.
    pub fn reaches_start(&self, floor: Date) -> bool {
        floor <= self.start
    }
}

/// Windows that re-fetch the days of documents waiting for removal proof
/// (`pending`, sorted) older than the incremental window starting at
/// `incremental_from`: a deletion first seen near the lookback's edge is
/// confirmed, or the document cleared, by the next run instead of staying
/// pending once the lookback has moved past its day. Each window starts at
/// a pending day and reaches forward (at most `size` days, never into the
/// incremental window) so it usually holds other documents too: a window
/// the API returns empty proves nothing.
pub fn recheck_windows(pending: &[Date], incremental_from: Date, size: u32) -> Vec<Window> {
    let last = incremental_from.saturating_sub(1.day());
    let mut out: Vec<Window> = Vec::new();
    for &day in pending.iter().filter(|d| **d <= last) {
        if out.last().is_some_and(|w| w.contains(day)) {
            continue;
        }
        let to = day
            .saturating_add((size.max(1) as i64 - 1).days())
            .min(last);
        out.push(Window { from: day, to });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry;
    use jiff::civil::date;

    #[test]
    fn recheck_windows_cover_pending_days_before_the_incremental_window_only() {
        let inc = date(2024, 3, 10);
        let pending = [
            date(2024, 1, 1),
            date(2024, 1, 5),
            date(2024, 2, 20),
            date(2024, 3, 9),
            date(2024, 3, 12),
        ];
        assert_eq!(
            recheck_windows(&pending, inc, 10),
            vec![
                Window {
                    from: date(2024, 1, 1),
                    to: date(2024, 1, 10)
                },
                Window {
                    from: date(2024, 2, 20),
                    to: date(2024, 2, 29)
                },
                Window {
                    from: date(2024, 3, 9),
                    to: date(2024, 3, 9)
                },
            ]
        );
        assert!(recheck_windows(&[date(2024, 3, 10)], inc, 10).is_empty());
        assert!(recheck_windows(&[], inc, 10).is_empty());
    }

    #[test]
    fn split_covers_range_without_overlap() {
        let ws = split(date(2024, 1, 1), date(2024, 3, 1), 30);
        assert_eq!(ws.first().unwrap().from, date(2024, 1, 1));
        assert_eq!(ws.last().unwrap().to, date(2024, 3, 1));
        for pair in ws.windows(2) {
            assert_eq!(pair[0].to.tomorrow().unwrap(), pair[1].from);
        }
        assert!(ws.iter().all(|w| w.days() <= 30));
        assert_eq!(ws.iter().map(|w| w.days()).sum::<i64>(), 61);
        assert_eq!(split(date(2024, 1, 2), date(2024, 1, 1), 30), vec![]);
    }

    #[test]
    fn requests_are_padded_for_the_api_quirks() {
        let w = Window {
            from: date(2024, 5, 10),
            to: date(2024, 5, 20),
        };
        assert_eq!(
            request_for(registry::find("sleep").unwrap(), w),
            PageQuery::Dates {
                start: date(2024, 5, 9),
                end: date(2024, 5, 22)
            }
        );
        assert_eq!(
            request_for(registry::find("heartrate").unwrap(), w),
            PageQuery::DateTimes {
                start: date(2024, 5, 10),
                end: date(2024, 5, 21)
            }
        );
        assert_eq!(
            request_for(registry::find("ring_configuration").unwrap(), w),
            PageQuery::All
        );
    }

    #[test]
    fn incremental_starts_at_cursor_minus_lookback() {
        let today = date(2024, 6, 30);
        let w = incremental_window(Some(date(2024, 6, 29)), None, today, 3);
        assert_eq!(w.from, date(2024, 6, 26));
        assert_eq!(w.to, date(2024, 7, 1));
        let w = incremental_window(None, None, today, 3);
        assert_eq!(w.from, date(2024, 6, 27));
        let w = incremental_window(Some(date(2024, 6, 29)), Some(date(2024, 1, 1)), today, 3);
        assert_eq!(w.from, date(2024, 1, 1));
    }

    #[test]
    fn backfill_walks_down_to_start() {
        let start = date(2024, 1, 1);
        let mut floor = date(2024, 3, 15);
        let mut seen = Vec::new();
        while let Some(w) = next_backfill_window(floor, start, 30) {
            assert_eq!(w.to.tomorrow().unwrap(), floor);
            assert!(w.days() <= 30);
            seen.push(w);
            floor = w.from;
        }
        assert_eq!(floor, start);
        assert_eq!(seen.len(), 3);
    }

    #[test]
    fn the_floor_moves_only_over_contiguous_finished_windows() {
        let start = date(2024, 1, 1);
        let ws = backfill_windows(date(2024, 4, 1), start, 30);
        assert_eq!(ws.len(), 4);
        assert_eq!(ws[0].to, date(2024, 3, 31));
        assert_eq!(ws[3].from, start);
        let mut l = FloorLedger::new(date(2024, 4, 1), start);
        // The third and second finish before the first: the floor stays.
        assert_eq!(l.floor_after(ws[2]), None);
        l.finished(ws[2]);
        assert_eq!(l.floor_after(ws[1]), None);
        l.finished(ws[1]);
        // The first takes the two below it along.
        assert_eq!(l.floor_after(ws[0]), Some(ws[2].from));
        l.finished(ws[0]);
        assert!(!l.reaches_start(ws[2].from));
        assert_eq!(l.floor_after(ws[3]), Some(start));
        assert!(l.reaches_start(start));
        l.finished(ws[3]);
        assert_eq!(l.floor_after(ws[3]), None);
    }
}
