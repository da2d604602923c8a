//! Readers beside the writer: the `sqlite3` CLI and Python's default
//! `sqlite3.connect` read the file while the daemon (and a second
//! `ouradb sync`) write it. A reader is the last connection only in its own
//! eyes if the writing process lost its POSIX locks (closing any descriptor
//! of the file drops them all): it then checkpoints and deletes the
//! writer's -wal and -shm, and every later commit of the writer goes into a
//! deleted file. These tests run the real tools, not an in-process reader.
//!
//! `.ci/run` runs them again against the release binary:
//! `OURADB_TEST_BIN=target/release/ouradb cargo test --test it readers`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ouradb::store::{AccountId, RequestLog, Scope, Store, WindowLimit};

use crate::util::{self, Env};

/// The binary under test: `OURADB_TEST_BIN` (the release build in CI),
/// else the one cargo built for these tests.
fn ouradb_bin() -> PathBuf {
    std::env::var_os("OURADB_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_ouradb")))
}

fn ouradb_at(cfg: &Path) -> Command {
    let mut c = Command::new(ouradb_bin());
    c.env_remove("OURA_TOKEN")
        .env("OURADB_LOG", "warn")
        .arg("--config")
        .arg(cfg);
    c
}

/// Runs a reader tool; a missing tool fails the test (CI installs both).
fn tool_output(cmd: &mut Command, what: &str) -> String {
    let out = cmd.stdin(Stdio::null()).output().unwrap_or_else(|e| {
        panic!("cannot run {what} ({e}); install it: apt-get install -y sqlite3 python3")
    });
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

const COUNTS: &str = "SELECT (SELECT count(*) FROM heartrate) || ' ' || \
    (SELECT coalesce(sum(requests), 0) FROM sync_state)";

/// What a reader saw: heartrate rows and requests recorded by all types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Seen {
    heartrate: i64,
    requests: i64,
}

fn parse_seen(text: &str) -> Seen {
    let mut it = text.split_whitespace().map(|n| n.parse::<i64>().unwrap());
    Seen {
        heartrate: it.next().unwrap(),
        requests: it.next().unwrap(),
    }
}

/// The `sqlite3` command-line shell, reading and closing.
fn read_with_cli(db: &Path) -> Seen {
    parse_seen(&tool_output(
        Command::new("sqlite3").arg(db).arg(COUNTS),
        "the sqlite3 CLI",
    ))
}

/// Python's `sqlite3.connect` with its defaults (read-write, rollback
/// journal settings left alone), reading and closing.
fn read_with_python(db: &Path) -> Seen {
    let script = format!(
        "import sqlite3, sys\nc = sqlite3.connect(sys.argv[1])\nprint(c.execute(\"{COUNTS}\").fetchone()[0])\nc.close()\n"
    );
    parse_seen(&tool_output(
        Command::new("python3").arg("-c").arg(script).arg(db),
        "python3",
    ))
}

/// Descriptors of `pid` that point at a deleted database, -wal or -shm file.
fn deleted_db_files(pid: &str, db: &Path) -> Vec<String> {
    let prefix = db.display().to_string();
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .map(|t| t.display().to_string())
        .filter(|t| t.starts_with(&prefix) && t.ends_with("(deleted)"))
        .collect()
}

fn assert_files_live(pid: &str, db: &Path, when: &str) {
    let deleted = deleted_db_files(pid, db);
    assert!(
        deleted.is_empty(),
        "{when}: the writer's files were deleted under it: {deleted:?}"
    );
}

/// In one process: the store, then the request account on the same file
/// (what `ouradb sync` and the daemon open), then read-only opens and
/// reopens. Readers in other processes must not find this process gone.
#[test]
fn the_store_and_its_request_account_keep_their_locks_against_other_readers() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ouradb.sqlite");
    let store = Store::open(&db).unwrap();
    let account = RequestLog::open(&db).unwrap();
    let limit = [WindowLimit {
        window_us: 1_000_000,
        cap: 100,
        scope: Scope::Application,
    }];
    let wal = dir.path().join("ouradb.sqlite-wal");
    for round in 0..3 {
        account
            .reserve(AccountId::FIRST, round, 1, round, &limit, None)
            .unwrap();
        // Every way this process opens the file again while it holds it.
        drop(Store::open_read_only(&db).unwrap());
        drop(RequestLog::open(&db).unwrap());
        drop(Store::open(&db).unwrap());
        read_with_cli(&db);
        read_with_python(&db);
        assert!(wal.exists(), "round {round}: a reader deleted the -wal");
        assert_files_live("self", &db, &format!("round {round}"));
    }
    // The account's writes reach the file through the live WAL.
    let sent: i64 = util::reader(&db)
        .query_row("SELECT count(*) FROM _request_log", [], |r| r.get(0))
        .unwrap();
    assert_eq!(sent, 3);
    drop((store, account));
}

/// A child process killed when the test ends, failed or not.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// How the daemon is stopped at the end.
#[derive(Debug, Clone, Copy)]
enum Ending {
    Kill,
    Sigterm,
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: plain kill(2) on our own child.
    unsafe {
        libc::kill(child.id() as libc::pid_t, sig);
    }
}

fn wait_for(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(start.elapsed() < limit, "the process did not end in time");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The daemon backfills a slow simulator; the CLI and Python read it over
/// and over, a second writer (`ouradb sync --since`) runs beside it; then
/// the daemon is stopped by `ending`. Every reader round: the daemon's
/// -wal/-shm are live. At the end: the file is intact and holds everything
/// any reader saw (each was committed: acknowledged to its writer).
fn readers_beside_the_daemon(ending: Ending) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    tool_output(Command::new("sqlite3").arg("-version"), "the sqlite3 CLI");
    tool_output(Command::new("python3").arg("--version"), "python3");
    let env = rt.block_on(Env::start(120, |c| {
        c.faults.slow = 1.0;
        c.faults.slow_delay = Duration::from_millis(40);
    }));
    let db = env.db();
    let cfg = crate::cli::write_config(&env, env.dir.path(), &db);
    let mut daemon = Reaped(
        ouradb_at(&cfg)
            .arg("daemon")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let daemon = &mut daemon.0;
    let pid = daemon.id().to_string();
    let wal = env.dir.path().join("ouradb.sqlite-wal");
    let deadline = Instant::now() + Duration::from_secs(30);
    // Until the daemon's first transaction (the schema) is committed.
    while !Command::new("sqlite3")
        .arg(&db)
        .arg(COUNTS)
        .output()
        .is_ok_and(|o| o.status.success())
    {
        assert!(
            Instant::now() < deadline,
            "the daemon never made its schema"
        );
        assert!(daemon.try_wait().unwrap().is_none(), "the daemon exited");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut seen = Vec::new();
    let mut second: Option<Reaped> = None;
    for round in 0..16 {
        seen.push(read_with_cli(&db));
        assert_files_live(&pid, &db, &format!("round {round}, after sqlite3"));
        seen.push(read_with_python(&db));
        assert_files_live(&pid, &db, &format!("round {round}, after python"));
        assert!(wal.exists(), "round {round}: the daemon's -wal is gone");
        if round == 3 {
            let since = util::today().saturating_sub(jiff::Span::new().days(30));
            second = Some(Reaped(
                ouradb_at(&cfg)
                    .args(["sync", "--type", "daily_sleep", "--no-backfill", "--since"])
                    .arg(since.to_string())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap(),
            ));
        }
        std::thread::sleep(Duration::from_millis(150));
    }
    let mut second = second.unwrap();
    let second = &mut second.0;
    let status = wait_for(second, Duration::from_secs(60));
    let mut log = String::new();
    std::io::Read::read_to_string(&mut second.stderr.take().unwrap(), &mut log).unwrap();
    assert!(status.success(), "the second writer failed: {log}");
    // What the second writer committed, as a reader sees it.
    seen.push(read_with_cli(&db));
    assert_files_live(&pid, &db, "after the second writer");
    assert!(
        daemon.try_wait().unwrap().is_none(),
        "the daemon is still running"
    );

    match ending {
        Ending::Kill => signal(daemon, libc::SIGKILL),
        Ending::Sigterm => signal(daemon, libc::SIGTERM),
    }
    let status = wait_for(daemon, Duration::from_secs(10));
    if let Ending::Sigterm = ending {
        assert!(status.success(), "{status:?}");
    }
    let check = tool_output(
        Command::new("sqlite3")
            .arg(&db)
            .arg("PRAGMA integrity_check"),
        "the sqlite3 CLI",
    );
    assert_eq!(check, "ok", "{ending:?}");
    let after = read_with_cli(&db);
    let most = seen.iter().copied().max().unwrap();
    assert!(
        seen.iter()
            .all(|s| s.heartrate <= after.heartrate && s.requests <= after.requests),
        "{ending:?}: a commit a reader saw is gone: saw up to {most:?}, the file holds {after:?}"
    );
    assert!(most.requests > 0, "the daemon wrote while it was read");
    rt.block_on(env.sim.stop());
}

#[test]
fn readers_beside_the_daemon_and_a_second_writer_then_kill_9() {
    readers_beside_the_daemon(Ending::Kill);
}

#[test]
fn readers_beside_the_daemon_and_a_second_writer_then_sigterm() {
    readers_beside_the_daemon(Ending::Sigterm);
}
