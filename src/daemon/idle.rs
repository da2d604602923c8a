//! Giving memory back when the daemon goes idle. A catch-up fills SQLite's
//! page cache (16 MiB for the backfill) and the allocator's arenas, and
//! neither gives anything back by itself: an idle daemon held 31 MB an hour
//! after a 2-year first sync. Every run the daemon starts goes through
//! [`Idle::around`]; when the last of the runs in flight ends, the store's
//! cache shrinks to its idle size and SQLite frees what it holds, then the
//! C allocator returns its free pages to the system. The next run grows the
//! cache again first.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::sync::SyncEngine;

pub struct Idle {
    /// Every account's engine: they share the store's thread, and each has
    /// its own request-account connection.
    engines: Vec<Arc<SyncEngine>>,
    /// Runs started through [`Idle::around`] and not yet ended.
    in_flight: Arc<AtomicUsize>,
}

/// Ends a run's count even if its future is dropped before it returns.
struct Running(Arc<AtomicUsize>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Idle {
    pub fn new(engines: Vec<Arc<SyncEngine>>) -> Idle {
        Idle {
            engines,
            in_flight: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Runs `run`: the first of overlapping runs grows the cache, the last
    /// to end gives memory back.
    pub async fn around<T>(&self, run: impl Future<Output = T>) -> T {
        let first = self.in_flight.fetch_add(1, Ordering::SeqCst) == 0;
        let running = Running(self.in_flight.clone());
        if first {
            self.on_store(true).await;
        }
        let out = run.await;
        drop(running);
        if self.in_flight.load(Ordering::SeqCst) == 0 {
            self.on_store(false).await;
            self.release_process_memory().await;
        }
        out
    }

    /// Grows (`run`) or shrinks the store's cache. Decided again on the
    /// store's thread, where calls run in order: a run that started while
    /// this call was queued keeps its large cache.
    async fn on_store(&self, run: bool) {
        let Some(engine) = self.engines.first() else {
            return;
        };
        let in_flight = self.in_flight.clone();
        let result = engine.store().fit_cache(run, in_flight).await;
        match result {
            Ok(true) if !run => tracing::debug!(
                sqlite_bytes = crate::store::memory::sqlite_memory_used(),
                "idle: the store gave its cache back"
            ),
            Ok(_) => {}
            // Only memory is at stake: the next run tries again.
            Err(e) => tracing::warn!(error = %e, "cannot resize the store's cache"),
        }
    }

    /// The request account's SQLite memory, then the allocator's free
    /// pages; on a blocking thread, as both may take a moment.
    async fn release_process_memory(&self) {
        let accounts: Vec<_> = self
            .engines
            .iter()
            .map(|e| e.client().limiter().account().clone())
            .collect();
        let in_flight = self.in_flight.clone();
        let _ = tokio::task::spawn_blocking(move || {
            if in_flight.load(Ordering::SeqCst) > 0 {
                return;
            }
            for account in accounts {
                if let Err(e) = account.release_memory() {
                    tracing::warn!(error = %e, "cannot free the request account's cache");
                }
            }
            trim_allocator();
            page_out_program();
        })
        .await;
    }
}

/// glibc keeps freed memory in its arenas (one per thread that allocated,
/// up to 8 per core) until told; `malloc_trim` returns every free page.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim_allocator() {
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Other allocators (musl's, the BSDs') return memory as they free it.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim_allocator() {}

/// glibc gives every thread that allocates while another holds the lock an
/// arena of its own, up to 8 per core, and keeps each arena's pages. A
/// daemon's few threads wait on the network, not on malloc: two arenas
/// held 1.8 MiB less an hour after a catch-up (BENCHMARKS.md, "Idle daemon
/// after catch-up"). Called before the runtime starts its threads.
pub fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a limit the allocator reads when a thread
    // first needs an arena.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// The program's code and constants that a catch-up touched stay mapped,
/// and counted in the daemon's RSS (14 MiB of it after a 2-year first
/// sync), until the system runs short of memory. `MADV_PAGEOUT` hands those
/// pages back to the page cache now; the next run maps again what it uses,
/// from the cache. Pages another process maps too are left alone by the
/// kernel, and kernels before 5.4 refuse the advice: only memory is at
/// stake, so both are fine.
#[cfg(target_os = "linux")]
fn page_out_program() {
    let (Ok(exe), Ok(maps)) = (
        std::fs::read_link("/proc/self/exe"),
        std::fs::read_to_string("/proc/self/maps"),
    ) else {
        return;
    };
    for (start, end) in program_mappings(&maps, &exe.to_string_lossy()) {
        // SAFETY: the range is one of this process's own read-only file
        // mappings, as the kernel listed it; MADV_PAGEOUT never changes
        // what the memory reads, only where it is kept.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_PAGEOUT);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn page_out_program() {}

/// The address ranges of `exe`'s mappings that are never written (code,
/// constants), from `/proc/self/maps` lines such as
/// `55d0c9a00000-55d0ca6a7000 r-xp 00c81000 fd:01 1234   /usr/bin/ouradb`.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn program_mappings(maps: &str, exe: &str) -> Vec<(usize, usize)> {
    maps.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let range = fields.next()?;
            let perms = fields.next()?;
            // offset, device, inode; the rest is the path (may hold spaces).
            let path = line.splitn(6, char::is_whitespace).nth(5)?.trim();
            if path != exe || perms.as_bytes().get(1) != Some(&b'-') {
                return None;
            }
            let (a, b) = range.split_once('-')?;
            let start = usize::from_str_radix(a, 16).ok()?;
            let end = usize::from_str_radix(b, 16).ok()?;
            (end > start).then_some((start, end))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::program_mappings;

    #[test]
    fn only_the_programs_unwritable_mappings_are_paged_out() {
        let maps = "\
55d0c9000000-55d0c9a00000 r--p 00000000 fd:01 1234                       /usr/bin/our adb
55d0c9a00000-55d0ca6a7000 r-xp 00a00000 fd:01 1234                       /usr/bin/our adb
55d0ca6a7000-55d0ca744000 rw-p 016a7000 fd:01 1234                       /usr/bin/our adb
55d0ca744000-55d0ca745000 r--p 00000000 fd:01 99                         /usr/bin/our adb2
7f0000000000-7f0000021000 rw-p 00000000 00:00 0 
7f1000000000-7f1000100000 r-xp 00000000 fd:01 55                         /usr/lib/libc.so.6
";
        assert_eq!(
            program_mappings(maps, "/usr/bin/our adb"),
            vec![
                (0x55d0c9000000, 0x55d0c9a00000),
                (0x55d0c9a00000, 0x55d0ca6a7000)
            ]
        );
    }
}
