//! Giving memory back between runs. A backfill wants a large page cache
//! (see `schema::open_checked`); the daemon then idles for hours between
//! incremental runs that touch a few pages each. Holding the backfill's
//! cache and prepared statements all that time made an idle daemon keep
//! about twice the memory it needs, so after its runs the daemon shrinks
//! the cache to [`IDLE_CACHE_KIB`] and frees what SQLite holds, and grows
//! it again before the next run.

use rusqlite::Connection;

use super::{Store, StoreError};

/// The page cache a run works with; a connection opens with it.
pub const RUN_CACHE_KIB: i64 = 16384;

/// The page cache between runs: enough for the upper levels of the indexes
/// an incremental run or `status` reads, a fraction of the run's.
pub const IDLE_CACHE_KIB: i64 = 1024;

/// Sets the page cache limit (KiB); a smaller limit frees the unused pages
/// above it at once.
pub(super) fn set_cache_kib(conn: &Connection, kib: i64) -> Result<(), StoreError> {
    conn.execute_batch(&format!("PRAGMA cache_size = -{kib}"))?;
    Ok(())
}

/// Frees every page cached by `conn` that no statement holds, and its
/// prepared statements (re-prepared by the next run, a few dozen).
pub(super) fn release(conn: &Connection) -> Result<(), StoreError> {
    conn.flush_prepared_statement_cache();
    conn.execute_batch("PRAGMA shrink_memory")?;
    Ok(())
}

/// Heap bytes SQLite holds in this process, across every connection.
pub fn sqlite_memory_used() -> i64 {
    // SAFETY: sqlite3_memory_used only reads SQLite's global counter.
    unsafe { rusqlite::ffi::sqlite3_memory_used() }
}

impl Store {
    /// After a run, while the process idles: a small page cache and the
    /// memory SQLite holds for this connection given back.
    pub fn release_memory(&mut self) -> Result<(), StoreError> {
        set_cache_kib(&self.conn, IDLE_CACHE_KIB)?;
        release(&self.conn)
    }

    /// Before a run: the page cache a run works with again.
    pub fn prepare_for_run(&mut self) -> Result<(), StoreError> {
        set_cache_kib(&self.conn, RUN_CACHE_KIB)
    }

    /// The page cache limit in force, KiB.
    pub fn cache_kib(&self) -> Result<i64, StoreError> {
        let size: i64 = self.conn.query_row("PRAGMA cache_size", [], |r| r.get(0))?;
        // Negative means KiB, positive pages (see SQLite's PRAGMA cache_size).
        Ok(if size < 0 {
            -size
        } else {
            size * self.page_size()? / 1024
        })
    }

    fn page_size(&self) -> Result<i64, StoreError> {
        Ok(self.conn.query_row("PRAGMA page_size", [], |r| r.get(0))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Heap bytes of the connection's page cache.
    fn cache_used(store: &Store) -> i64 {
        let (mut cur, mut hi) = (0, 0);
        // SAFETY: the handle is live for as long as `store`; the status
        // call only reads counters into the two locals.
        unsafe {
            rusqlite::ffi::sqlite3_db_status(
                store.conn.handle(),
                rusqlite::ffi::SQLITE_DBSTATUS_CACHE_USED,
                &mut cur,
                &mut hi,
                0,
            )
        };
        i64::from(cur)
    }

    #[test]
    fn release_shrinks_the_cache_and_frees_its_pages_and_a_run_grows_it_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("m.sqlite")).unwrap();
        assert_eq!(store.cache_kib().unwrap(), RUN_CACHE_KIB);
        store
            .conn
            .execute_batch(
                "CREATE TABLE t(x); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 20000) INSERT INTO t SELECT randomblob(200) FROM n; SELECT count(*) FROM t;",
            )
            .unwrap();
        let before = cache_used(&store);
        assert!(before > 2 << 20, "the insert filled the cache: {before}");

        store.release_memory().unwrap();
        assert_eq!(store.cache_kib().unwrap(), IDLE_CACHE_KIB);
        let after = cache_used(&store);
        assert!(after < before / 4, "pages freed: {before} -> {after}");

        store.prepare_for_run().unwrap();
        assert_eq!(store.cache_kib().unwrap(), RUN_CACHE_KIB);
    }
}
