//! The request account: send times of data requests, kept in the database so
//! every process on one file (daemon, a concurrent `ouradb sync`, a process
//! restarted after a crash) spends one shared quota.
//!
//! Calls are synchronous and may wait up to the busy timeout for another
//! process's write lock: callers on an async runtime run them on a blocking
//! thread (`api::Limiter` does).

use std::path::Path;
#[allow(clippy::disallowed_types, reason = "locked only on blocking threads")]
use std::sync::Mutex;

use rusqlite::{Connection, TransactionBehavior};

use super::{StoreError, schema};

/// At most `cap` requests in any `window_us` microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowLimit {
    pub window_us: i64,
    pub cap: u32,
}

/// The answer to "may these requests go?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// This many slots (at least one, at most the number asked for) were
    /// recorded.
    Granted(u32),
    /// Every slot of some limit's window is taken until this instant (µs
    /// since the epoch).
    WaitUntil(i64),
}

/// Slots recorded earlier at `at_us` and not used: they are given back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unused {
    pub at_us: i64,
    pub slots: u32,
}

/// Rows dated further ahead than this are dropped from the account: no
/// send can happen in the future, so such a row was written by a process
/// whose clock was wrong (or before the wall clock stepped backwards), or
/// by hand. Counting it would hold requests for as long as it is ahead (a
/// day for a row dated tomorrow) and then for a window more; pulling it to
/// now would still hold a full window for sends that may never have
/// happened. Dropped, a wrong row costs at worst one over-quota burst,
/// which the server's own `Retry-After` stops. Smaller offsets are clock
/// skew between processes and count as usual.
const FUTURE_TOLERANCE_US: i64 = 1_000_000;

pub struct RequestLog {
    /// Only ever locked inside a synchronous call, never across an await.
    #[allow(clippy::disallowed_types, reason = "locked only on blocking threads")]
    conn: Mutex<Connection>,
}

impl RequestLog {
    /// A log in the database at `path`, shared with every other process
    /// that opens it (creates and migrates the file like [`super::Store::open`]).
    pub fn open(path: &Path) -> Result<RequestLog, StoreError> {
        let conn = schema::open_read_write(path)?;
        Ok(RequestLog {
            #[allow(clippy::disallowed_types, reason = "locked only on blocking threads")]
            conn: Mutex::new(conn),
        })
    }

    /// A log private to this process (tests, tools without a database).
    pub fn in_memory() -> Result<RequestLog, StoreError> {
        let conn = Connection::open_in_memory()?;
        conn.execute_batch(include_str!("../../schema_limiter.sql"))?;
        Ok(RequestLog {
            #[allow(clippy::disallowed_types, reason = "locked only on blocking threads")]
            conn: Mutex::new(conn),
        })
    }

    /// Takes up to `want` slots at `now_us` if every limit has room, in one
    /// IMMEDIATE transaction so two processes cannot both take the last
    /// slot; otherwise returns when the fullest limit frees one.
    ///
    /// The slots are recorded at `record_at_us` (≥ `now_us`): the caller
    /// may send them any time until then, and a row never dates a send
    /// earlier than it happened, so counting rows newer than `now − window`
    /// counts every send that can share a window with the new ones.
    pub fn reserve(
        &self,
        now_us: i64,
        want: u32,
        record_at_us: i64,
        limits: &[WindowLimit],
        unused: Option<Unused>,
    ) -> Result<Reservation, StoreError> {
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        reserve_in(tx, now_us, want, record_at_us, limits, unused)
    }

    /// [`reserve`](Self::reserve) with the time read once the write lock is
    /// held: waiting for another process's lock must not date the slots
    /// before the sends they cover. Records them `lease_us` after that time
    /// and returns the record time with the answer.
    pub fn reserve_when_locked(
        &self,
        now_us: impl FnOnce() -> i64,
        want: u32,
        lease_us: i64,
        limits: &[WindowLimit],
        unused: Option<Unused>,
    ) -> Result<(Reservation, i64), StoreError> {
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = now_us();
        let record_at = now + lease_us;
        Ok((
            reserve_in(tx, now, want, record_at, limits, unused)?,
            record_at,
        ))
    }

    /// Frees what SQLite holds for the account's connection (see
    /// `store::memory`); on a blocking thread from async code.
    pub fn release_memory(&self) -> Result<(), StoreError> {
        super::memory::release(&self.conn.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Send times recorded at or after `since_us`, oldest first.
    pub fn sends_since(&self, since_us: i64) -> Result<Vec<i64>, StoreError> {
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let mut stmt = conn.prepare_cached(
            "SELECT sent_us FROM _request_log WHERE sent_us >= ?1 ORDER BY sent_us",
        )?;
        let rows = stmt
            .query_map([since_us], |r| r.get(0))?
            .collect::<Result<Vec<i64>, _>>()?;
        Ok(rows)
    }
}

/// One reservation inside the caller's IMMEDIATE transaction, committed here.
fn reserve_in(
    tx: rusqlite::Transaction<'_>,
    now_us: i64,
    want: u32,
    record_at_us: i64,
    limits: &[WindowLimit],
    unused: Option<Unused>,
) -> Result<Reservation, StoreError> {
    if let Some(u) = unused.filter(|u| u.slots > 0) {
        tx.prepare_cached(
            "DELETE FROM _request_log WHERE rowid IN
             (SELECT rowid FROM _request_log WHERE sent_us = ?1 LIMIT ?2)",
        )?
        .execute([u.at_us, i64::from(u.slots)])?;
    }
    tx.prepare_cached("DELETE FROM _request_log WHERE sent_us > ?1")?
        .execute([record_at_us.saturating_add(FUTURE_TOLERANCE_US)])?;
    let longest = limits.iter().map(|l| l.window_us).max().unwrap_or(0);
    tx.prepare_cached("DELETE FROM _request_log WHERE sent_us <= ?1")?
        .execute([now_us.saturating_sub(longest)])?;
    let mut room = want.max(1);
    let mut wait_until = None::<i64>;
    for l in limits {
        let cap = l.cap.max(1);
        let used: i64 = tx
            .prepare_cached("SELECT count(*) FROM _request_log WHERE sent_us > ?1")?
            .query_row([now_us.saturating_sub(l.window_us)], |r| r.get(0))?;
        let free = (i64::from(cap) - used).max(0) as u32;
        room = room.min(free);
        if free == 0 {
            // The cap-th newest row: the window stays full until it
            // leaves.
            let t: i64 = tx
                .prepare_cached(
                    "SELECT sent_us FROM _request_log WHERE sent_us > ?1
                     ORDER BY sent_us DESC LIMIT 1 OFFSET ?2",
                )?
                .query_row(
                    [now_us.saturating_sub(l.window_us), i64::from(cap) - 1],
                    |r| r.get(0),
                )?;
            let free_at = t.saturating_add(l.window_us);
            wait_until = Some(wait_until.map_or(free_at, |w| w.max(free_at)));
        }
    }
    let answer = match wait_until {
        Some(t) => Reservation::WaitUntil(t),
        None => {
            let mut insert = tx.prepare_cached("INSERT INTO _request_log (sent_us) VALUES (?1)")?;
            for _ in 0..room {
                insert.execute([record_at_us])?;
            }
            Reservation::Granted(room)
        }
    };
    tx.commit()?;
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: i64 = 10_000_000;

    fn limit(cap: u32) -> [WindowLimit; 1] {
        [WindowLimit { window_us: W, cap }]
    }

    fn one(log: &RequestLog, now: i64, cap: u32) -> Reservation {
        log.reserve(now, 1, now, &limit(cap), None).unwrap()
    }

    #[test]
    fn admits_up_to_the_cap_then_names_when_a_slot_frees() {
        let log = RequestLog::in_memory().unwrap();
        for i in 0..3 {
            assert_eq!(one(&log, i, 3), Reservation::Granted(1));
        }
        assert_eq!(one(&log, 5, 3), Reservation::WaitUntil(W));
        assert_eq!(one(&log, W, 3), Reservation::Granted(1));
        assert_eq!(one(&log, W, 3), Reservation::WaitUntil(W + 1));
        // The send at 0 left the window at W and was pruned.
        assert_eq!(log.sends_since(0).unwrap(), vec![1, 2, W]);
    }

    #[test]
    fn a_batch_takes_what_fits_and_unused_slots_come_back() {
        let log = RequestLog::in_memory().unwrap();
        let lim = limit(10);
        assert_eq!(
            log.reserve(0, 8, 100, &lim, None).unwrap(),
            Reservation::Granted(8)
        );
        assert_eq!(
            log.reserve(50, 8, 150, &lim, None).unwrap(),
            Reservation::Granted(2)
        );
        assert_eq!(
            log.reserve(60, 8, 160, &lim, None).unwrap(),
            Reservation::WaitUntil(100 + W)
        );
        // Five of the first eight were never sent.
        let unused = Unused {
            at_us: 100,
            slots: 5,
        };
        assert_eq!(
            log.reserve(70, 8, 170, &lim, Some(unused)).unwrap(),
            Reservation::Granted(5)
        );
        assert_eq!(log.sends_since(0).unwrap().len(), 10);
    }

    #[test]
    fn the_strictest_limit_decides_and_old_rows_are_pruned() {
        let log = RequestLog::in_memory().unwrap();
        let both = [
            WindowLimit {
                window_us: W,
                cap: 10,
            },
            WindowLimit {
                window_us: 1_000,
                cap: 1,
            },
        ];
        assert_eq!(
            log.reserve(0, 1, 0, &both, None).unwrap(),
            Reservation::Granted(1)
        );
        assert_eq!(
            log.reserve(10, 1, 10, &both, None).unwrap(),
            Reservation::WaitUntil(1_000)
        );
        assert_eq!(
            log.reserve(3 * W, 1, 3 * W, &both, None).unwrap(),
            Reservation::Granted(1)
        );
        assert_eq!(log.sends_since(0).unwrap(), vec![3 * W]);
    }

    #[test]
    fn rows_dated_in_the_future_do_not_hold_requests() {
        let log = RequestLog::in_memory().unwrap();
        let day = 86_400_000_000;
        for _ in 0..5 {
            assert_eq!(one(&log, day, 5), Reservation::Granted(1));
        }
        // The clock went back a day (or another process's clock was a day
        // ahead): its rows are dropped, not a day-and-a-window stall.
        assert_eq!(one(&log, 0, 5), Reservation::Granted(1));
        assert_eq!(log.sends_since(i64::MIN).unwrap(), vec![0]);
        // Within the tolerance, skew between processes still counts.
        let log = RequestLog::in_memory().unwrap();
        assert_eq!(one(&log, 500_000, 1), Reservation::Granted(1));
        assert_eq!(one(&log, 0, 1), Reservation::WaitUntil(500_000 + W));
        // Extreme values never overflow.
        let log = RequestLog::in_memory().unwrap();
        assert_eq!(one(&log, i64::MAX, 1), Reservation::Granted(1));
        assert_eq!(one(&log, i64::MAX, 1), Reservation::WaitUntil(i64::MAX));
        assert_eq!(one(&log, i64::MIN, 1), Reservation::Granted(1));
    }
}
