//! The request account: send times of data requests, kept in the database so
//! every process on one file (daemon, a concurrent `ouradb sync`, a process
//! restarted after a crash) spends one shared quota.
//!
//! Each row names the account (the access token) that sent it: Oura meters
//! a token's requests and, across all of them, its application's, so a
//! limit counts either one account's rows or every row ([`Scope`]).
//!
//! Calls are synchronous and may wait up to the busy timeout for another
//! process's write lock: callers on an async runtime run them on a blocking
//! thread (`api::Limiter` does).

use std::path::Path;
#[allow(clippy::disallowed_types, reason = "locked only on blocking threads")]
use std::sync::Mutex;

use rusqlite::{Connection, TransactionBehavior, params};

use super::{AccountId, StoreError, schema};

/// Whose requests a [`WindowLimit`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The reserving account's rows: Oura's quota per access token (each
    /// account signs in with a token of its own).
    Token,
    /// Every row of the file: Oura's quota per application, which the
    /// tokens of all the file's accounts share.
    Application,
}

/// At most `cap` requests of `scope` in any `window_us` microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowLimit {
    pub window_us: i64,
    pub cap: u32,
    pub scope: Scope,
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

/// Slots recorded earlier at `at_us` and not used: they are given back
/// (from the rows of the account giving them back, never another's).
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
        conn.execute_batch(schema::REQUEST_ACCOUNT_SQL)?;
        Ok(RequestLog {
            #[allow(clippy::disallowed_types, reason = "locked only on blocking threads")]
            conn: Mutex::new(conn),
        })
    }

    /// Takes up to `want` slots for `account` at `now_us` if every limit
    /// has room, in one IMMEDIATE transaction so two processes cannot both
    /// take the last slot; otherwise returns when the fullest limit frees
    /// one.
    ///
    /// The slots are recorded at `record_at_us` (≥ `now_us`): the caller
    /// may send them any time until then, and a row never dates a send
    /// earlier than it happened, so counting rows newer than `now − window`
    /// counts every send that can share a window with the new ones.
    pub fn reserve(
        &self,
        account: AccountId,
        now_us: i64,
        want: u32,
        record_at_us: i64,
        limits: &[WindowLimit],
        unused: Option<Unused>,
    ) -> Result<Reservation, StoreError> {
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        reserve_in(tx, account, now_us, want, record_at_us, limits, unused)
    }

    /// [`reserve`](Self::reserve) with the time read once the write lock is
    /// held: waiting for another process's lock must not date the slots
    /// before the sends they cover. Records them `lease_us` after that time
    /// and returns the record time with the answer.
    pub fn reserve_when_locked(
        &self,
        account: AccountId,
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
            reserve_in(tx, account, now, want, record_at, limits, unused)?,
            record_at,
        ))
    }

    /// Frees what SQLite holds for the account's connection (see
    /// `store::memory`); on a blocking thread from async code.
    pub fn release_memory(&self) -> Result<(), StoreError> {
        super::memory::release(&self.conn.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Send times recorded at or after `since_us` by every account (what the
    /// application's quota counts), oldest first.
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

    /// Send times recorded at or after `since_us` by `account` (what its
    /// token's quota counts), oldest first.
    pub fn account_sends_since(
        &self,
        account: AccountId,
        since_us: i64,
    ) -> Result<Vec<i64>, StoreError> {
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let mut stmt = conn.prepare_cached(
            "SELECT sent_us FROM _request_log WHERE account = ?1 AND sent_us >= ?2
             ORDER BY sent_us",
        )?;
        let rows = stmt
            .query_map(params![account.get(), since_us], |r| r.get(0))?
            .collect::<Result<Vec<i64>, _>>()?;
        Ok(rows)
    }
}

/// How many rows of `limit`'s scope were sent after `after_us`.
fn count_after(
    tx: &rusqlite::Transaction<'_>,
    account: AccountId,
    limit: &WindowLimit,
    after_us: i64,
) -> Result<i64, StoreError> {
    let n = match limit.scope {
        Scope::Token => tx
            .prepare_cached(
                "SELECT count(*) FROM _request_log WHERE account = ?1 AND sent_us > ?2",
            )?
            .query_row(params![account.get(), after_us], |r| r.get(0))?,
        Scope::Application => tx
            .prepare_cached("SELECT count(*) FROM _request_log WHERE sent_us > ?1")?
            .query_row([after_us], |r| r.get(0))?,
    };
    Ok(n)
}

/// The send time of the `nth` newest row (0 = newest) of `limit`'s scope
/// sent after `after_us`; the caller knows there are more than `nth`.
fn nth_newest_after(
    tx: &rusqlite::Transaction<'_>,
    account: AccountId,
    limit: &WindowLimit,
    after_us: i64,
    nth: i64,
) -> Result<i64, StoreError> {
    let t = match limit.scope {
        Scope::Token => tx
            .prepare_cached(
                "SELECT sent_us FROM _request_log WHERE account = ?1 AND sent_us > ?2
                 ORDER BY sent_us DESC LIMIT 1 OFFSET ?3",
            )?
            .query_row(params![account.get(), after_us, nth], |r| r.get(0))?,
        Scope::Application => tx
            .prepare_cached(
                "SELECT sent_us FROM _request_log WHERE sent_us > ?1
                 ORDER BY sent_us DESC LIMIT 1 OFFSET ?2",
            )?
            .query_row([after_us, nth], |r| r.get(0))?,
    };
    Ok(t)
}

/// One reservation inside the caller's IMMEDIATE transaction, committed here.
fn reserve_in(
    tx: rusqlite::Transaction<'_>,
    account: AccountId,
    now_us: i64,
    want: u32,
    record_at_us: i64,
    limits: &[WindowLimit],
    unused: Option<Unused>,
) -> Result<Reservation, StoreError> {
    if let Some(u) = unused.filter(|u| u.slots > 0) {
        // Another account may have recorded slots at the same instant; its
        // rows are its own sends (or its own unused slots to give back).
        tx.prepare_cached(
            "DELETE FROM _request_log WHERE rowid IN
             (SELECT rowid FROM _request_log WHERE account = ?1 AND sent_us = ?2 LIMIT ?3)",
        )?
        .execute(params![account.get(), u.at_us, i64::from(u.slots)])?;
    }
    tx.prepare_cached("DELETE FROM _request_log WHERE sent_us > ?1")?
        .execute([record_at_us.saturating_add(FUTURE_TOLERANCE_US)])?;
    // Every account's rows are pruned by the longest window: the
    // application's limit counts them all.
    let longest = limits.iter().map(|l| l.window_us).max().unwrap_or(0);
    tx.prepare_cached("DELETE FROM _request_log WHERE sent_us <= ?1")?
        .execute([now_us.saturating_sub(longest)])?;
    let mut room = want.max(1);
    let mut wait_until = None::<i64>;
    for l in limits {
        let cap = l.cap.max(1);
        let start = now_us.saturating_sub(l.window_us);
        let used = count_after(&tx, account, l, start)?;
        let free = (i64::from(cap) - used).max(0) as u32;
        room = room.min(free);
        if free == 0 {
            // The cap-th newest row: the window stays full until it
            // leaves.
            let t = nth_newest_after(&tx, account, l, start, i64::from(cap) - 1)?;
            let free_at = t.saturating_add(l.window_us);
            wait_until = Some(wait_until.map_or(free_at, |w| w.max(free_at)));
        }
    }
    let answer = match wait_until {
        Some(t) => Reservation::WaitUntil(t),
        None => {
            let mut insert =
                tx.prepare_cached("INSERT INTO _request_log (account, sent_us) VALUES (?1, ?2)")?;
            for _ in 0..room {
                insert.execute(params![account.get(), record_at_us])?;
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
    const A: AccountId = AccountId::FIRST;
    const B: AccountId = AccountId::for_test(2);

    fn limit(cap: u32) -> [WindowLimit; 1] {
        [WindowLimit {
            window_us: W,
            cap,
            scope: Scope::Token,
        }]
    }

    fn one(log: &RequestLog, now: i64, cap: u32) -> Reservation {
        log.reserve(A, now, 1, now, &limit(cap), None).unwrap()
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
            log.reserve(A, 0, 8, 100, &lim, None).unwrap(),
            Reservation::Granted(8)
        );
        assert_eq!(
            log.reserve(A, 50, 8, 150, &lim, None).unwrap(),
            Reservation::Granted(2)
        );
        assert_eq!(
            log.reserve(A, 60, 8, 160, &lim, None).unwrap(),
            Reservation::WaitUntil(100 + W)
        );
        // Five of the first eight were never sent.
        let unused = Unused {
            at_us: 100,
            slots: 5,
        };
        assert_eq!(
            log.reserve(A, 70, 8, 170, &lim, Some(unused)).unwrap(),
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
                scope: Scope::Token,
            },
            WindowLimit {
                window_us: 1_000,
                cap: 1,
                scope: Scope::Token,
            },
        ];
        assert_eq!(
            log.reserve(A, 0, 1, 0, &both, None).unwrap(),
            Reservation::Granted(1)
        );
        assert_eq!(
            log.reserve(A, 10, 1, 10, &both, None).unwrap(),
            Reservation::WaitUntil(1_000)
        );
        assert_eq!(
            log.reserve(A, 3 * W, 1, 3 * W, &both, None).unwrap(),
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

    /// A token's quota of 3 and the application's of 5, over one window.
    const TOKEN_AND_APP: [WindowLimit; 2] = [
        WindowLimit {
            window_us: W,
            cap: 3,
            scope: Scope::Token,
        },
        WindowLimit {
            window_us: W,
            cap: 5,
            scope: Scope::Application,
        },
    ];

    fn one_of(log: &RequestLog, account: AccountId, now: i64) -> Reservation {
        log.reserve(account, now, 1, now, &TOKEN_AND_APP, None)
            .unwrap()
    }

    #[test]
    fn each_account_keeps_to_its_token_and_all_together_to_the_application() {
        let log = RequestLog::in_memory().unwrap();
        assert_eq!(one_of(&log, B, 0), Reservation::Granted(1));
        for now in [100, 101, 102] {
            assert_eq!(one_of(&log, A, now), Reservation::Granted(1));
        }
        // A's token is full (its first send leaves at 100 + W); the
        // application still has room, and B's token too.
        assert_eq!(one_of(&log, A, 103), Reservation::WaitUntil(100 + W));
        assert_eq!(one_of(&log, B, 104), Reservation::Granted(1));
        // Five sent: B's token has room, the application waits for its
        // oldest send (B's at 0).
        assert_eq!(one_of(&log, B, 105), Reservation::WaitUntil(W));
        // Both full: the later of the two.
        assert_eq!(one_of(&log, A, 106), Reservation::WaitUntil(100 + W));
        // B's send at 0 left the window: B goes, A's token still waits.
        assert_eq!(one_of(&log, B, W), Reservation::Granted(1));
        assert_eq!(one_of(&log, A, W), Reservation::WaitUntil(100 + W));
        assert_eq!(log.account_sends_since(A, 0).unwrap(), vec![100, 101, 102]);
        assert_eq!(log.account_sends_since(B, 0).unwrap(), vec![104, W]);
        assert_eq!(log.sends_since(0).unwrap(), vec![100, 101, 102, 104, W]);
    }

    #[test]
    fn one_account_alone_stops_at_its_token_and_two_at_the_application() {
        let log = RequestLog::in_memory().unwrap();
        let batch = |account, now| {
            log.reserve(account, now, 16, now, &TOKEN_AND_APP, None)
                .unwrap()
        };
        assert_eq!(batch(A, 0), Reservation::Granted(3));
        assert_eq!(batch(A, 1), Reservation::WaitUntil(W));
        assert_eq!(batch(B, 2), Reservation::Granted(2));
        assert_eq!(batch(B, 3), Reservation::WaitUntil(W));
        assert_eq!(log.sends_since(0).unwrap().len(), 5);
    }

    #[test]
    fn unused_slots_given_back_free_only_their_own_accounts_rows() {
        let log = RequestLog::in_memory().unwrap();
        let lim = &TOKEN_AND_APP;
        // Both accounts lease slots recorded at the same instant.
        assert_eq!(
            log.reserve(A, 0, 3, 100, lim, None).unwrap(),
            Reservation::Granted(3)
        );
        assert_eq!(
            log.reserve(B, 0, 3, 100, lim, None).unwrap(),
            Reservation::Granted(2)
        );
        // B used none of its two and gives back as many as A holds:
        // only B's rows go, so B gets its two again and A keeps its three.
        let unused = Unused {
            at_us: 100,
            slots: 3,
        };
        assert_eq!(
            log.reserve(B, 10, 3, 110, lim, Some(unused)).unwrap(),
            Reservation::Granted(2)
        );
        assert_eq!(log.account_sends_since(A, 0).unwrap(), vec![100; 3]);
        assert_eq!(log.account_sends_since(B, 0).unwrap(), vec![110; 2]);
        // A's give-back does not free the application for B either.
        assert_eq!(
            log.reserve(B, 20, 1, 120, lim, None).unwrap(),
            Reservation::WaitUntil(100 + W)
        );
    }

    #[test]
    fn rows_written_before_accounts_shared_the_log_are_the_first_accounts() {
        // A file at schema 12: its rows have no account.
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(include_str!("../../schema_limiter.sql"))
            .unwrap();
        conn.execute_batch("INSERT INTO _request_log (sent_us) VALUES (1), (2), (3)")
            .unwrap();
        conn.execute_batch(schema::REQUEST_ACCOUNT_SQL).unwrap();
        #[allow(clippy::disallowed_types, reason = "locked only on blocking threads")]
        let log = RequestLog {
            conn: Mutex::new(conn),
        };
        assert_eq!(log.account_sends_since(A, 0).unwrap(), vec![1, 2, 3]);
        assert_eq!(one_of(&log, A, 4), Reservation::WaitUntil(1 + W));
        assert_eq!(one_of(&log, B, 4), Reservation::Granted(1));
    }
}
