//! Running ouradb as a service: `ouradb backup` and `ouradb check`, the
//! systemd watchdog and STATUS line, local days in the per-day views.

use std::collections::{HashMap, HashSet};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use ouradb::registry::{self, DataType};
use ouradb::store::{SCHEMA_VERSION, Store, SyncState};
use rusqlite::types::ValueRef;
use sha2::{Digest, Sha256};

use crate::cli::{ouradb, ouradb_at, write_config};
use crate::util::{Env, assert_no_errors, reader};

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn backup_cmd(db: &Path, dest: &Path) -> Command {
    let mut c = ouradb();
    c.arg("backup").arg(dest).arg("--database").arg(db);
    c
}

fn check_cmd(db: &Path) -> Output {
    ouradb()
        .arg("check")
        .arg("--database")
        .arg(db)
        .output()
        .unwrap()
}

// ---------------------------------------------------------------- backups

/// Columns that say when ouradb saw something, and the insertion-order key.
const NOT_DATA: &[&str] = &[
    "pk",
    "first_seen",
    "last_seen",
    "last_changed",
    "created_at",
];

/// Every row of every data table (not `sync_state`, not `_` bookkeeping)
/// as a digest of its data columns, child rows naming their parent by id:
/// comparable across files written in different orders.
fn row_digests(db: &Path) -> HashMap<String, HashSet<[u8; 32]>> {
    let conn = reader(db);
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '\\_%' ESCAPE '\\' AND name <> 'sync_state'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut out = HashMap::new();
    for table in tables {
        let cols: Vec<String> = conn
            .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<Vec<String>, _>>()
            .unwrap()
            .into_iter()
            .filter(|c| !NOT_DATA.contains(&c.as_str()))
            .collect();
        let parent: Option<String> = conn
            .query_row(
                &format!(
                    "SELECT \"table\" FROM pragma_foreign_key_list('{table}') \
                     WHERE \"from\" = 'document_pk'"
                ),
                [],
                |r| r.get(0),
            )
            .ok();
        let exprs: Vec<String> = cols
            .iter()
            .map(|c| match (&parent, c.as_str()) {
                (Some(p), "document_pk") => {
                    format!("(SELECT id FROM {p} WHERE pk = t.document_pk)")
                }
                _ => format!("t.\"{c}\""),
            })
            .collect();
        let sql = format!("SELECT {} FROM \"{table}\" t", exprs.join(", "));
        let mut stmt = conn.prepare(&sql).unwrap();
        let mut rows = stmt.query([]).unwrap();
        let mut set = HashSet::new();
        while let Some(r) = rows.next().unwrap() {
            let mut h = Sha256::new();
            for i in 0..cols.len() {
                match r.get_ref(i).unwrap() {
                    ValueRef::Null => h.update(b"N"),
                    ValueRef::Integer(v) => h.update([b"I".as_slice(), &v.to_le_bytes()].concat()),
                    ValueRef::Real(v) => h.update([b"R".as_slice(), &v.to_le_bytes()].concat()),
                    ValueRef::Text(t) | ValueRef::Blob(t) => {
                        h.update((t.len() as u64).to_le_bytes());
                        h.update(t);
                    }
                }
            }
            set.insert(h.finalize().into());
        }
        out.insert(table, set);
    }
    out
}

fn states(db: &Path) -> Vec<SyncState> {
    Store::open_read_only(db)
        .unwrap()
        .all_sync_states()
        .unwrap()
}

/// Rows of `dt` whose day lies in `from..=to` (UTC days of `ts` for time
/// series), `from` None meaning no lower bound.
fn rows_in(db: &Path, dt: &DataType, from: Option<&str>, to: &str) -> i64 {
    let from = from.unwrap_or("0000-01-01");
    let sql = match dt.day_field {
        _ if dt.is_time_series() => format!(
            "SELECT count(*) FROM {} WHERE date(ts, 'unixepoch') BETWEEN ?1 AND ?2",
            dt.table
        ),
        Some(day) => format!(
            "SELECT count(*) FROM {} WHERE {day} BETWEEN ?1 AND ?2",
            dt.table
        ),
        None => format!("SELECT count(*) FROM {} WHERE ?1 <= ?2", dt.table),
    };
    reader(db)
        .query_row(&sql, [from, to], |r| r.get(0))
        .unwrap()
}

/// What makes `backup` a committed state of a sync whose end is `clean`:
/// a sound file; every row one the finished sync also holds; each type's
/// document counter equal to its rows (they commit together); and every
/// day its cursor covers holding exactly the finished sync's rows there
/// (a cursor never ahead of its data).
fn assert_committed_state(
    backup: &Path,
    clean: &Path,
    clean_rows: &HashMap<String, HashSet<[u8; 32]>>,
) {
    let out = check_cmd(backup);
    assert!(out.status.success(), "{}: {}", backup.display(), text(&out));
    let rows = row_digests(backup);
    for (table, set) in &rows {
        let extra = set.difference(&clean_rows[table]).count();
        assert_eq!(
            extra,
            0,
            "{}: {extra} rows of {table} the sync never wrote",
            backup.display()
        );
    }
    for s in states(backup) {
        let dt = registry::find(&s.data_type).unwrap();
        let n: i64 = reader(backup)
            .query_row(&format!("SELECT count(*) FROM {}", dt.table), [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(
            s.documents,
            n,
            "{}: {} counter vs rows",
            backup.display(),
            dt.name
        );
        let Some(high) = s.high_water else { continue };
        let floor = if s.backfill_complete {
            None
        } else {
            s.backfill_floor.map(|d| d.to_string())
        };
        let Some(floor) = floor.or(s.backfill_complete.then(String::new)) else {
            continue;
        };
        let floor = (!floor.is_empty()).then_some(floor);
        let high = high.to_string();
        assert_eq!(
            rows_in(backup, dt, floor.as_deref(), &high),
            rows_in(clean, dt, floor.as_deref(), &high),
            "{}: {} rows in its cursor's days {floor:?}..={high}",
            backup.display(),
            dt.name
        );
    }
}

/// Simulated years of the concurrent-sync test (1 keeps the suite fast;
/// `OURADB_BACKUP_YEARS=5` runs the acceptance's 5-year variant by hand).
fn backup_test_years() -> u32 {
    std::env::var("OURADB_BACKUP_YEARS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_backups_during_a_sync_are_each_a_committed_state() {
    let days = 365 * backup_test_years();
    let env = Env::start(days, |_| {}).await;
    let clean = env.dir.path().join("clean.sqlite");
    assert_no_errors(&env.sync_with(env.config_for(&clean)).await);
    let clean_rows = row_digests(&clean);

    let db = env.db();
    let cfg = write_config(&env, env.dir.path(), &db);
    // The simulator answers only the requests the test allows, a few at a
    // time, so the sync cannot finish (nor get far ahead) between reaching
    // a backup's share and that backup, however loaded the machine is.
    env.sim.hold_requests();
    let mut sync = ouradb_at(&cfg)
        .arg("sync")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Backups spread over the sync: each waits for another 1/35 of the
    // documents the finished sync holds (the last one at 4/7 of them, so the
    // sync is still running while it is taken).
    let total: i64 = states(&clean).iter().map(|s| s.documents).sum();
    let stored = || -> i64 {
        if !db.exists() {
            return 0;
        }
        states(&db).iter().map(|s| s.documents).sum()
    };
    let mut backups = Vec::new();
    for i in 0..20 {
        while stored() < total * (i + 1) / 35 {
            env.sim.allow_requests(4);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let dest = env.dir.path().join(format!("backup-{i}.sqlite"));
        let out = backup_cmd(&db, &dest).output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
        eprint!("{}", String::from_utf8_lossy(&out.stdout));
        assert!(
            sync.try_wait().unwrap().is_none(),
            "the sync ended before backup {i}, with requests held"
        );
        backups.push(dest);
    }
    env.sim.release_requests();
    let status = sync.wait().unwrap();
    assert!(status.success());
    let sizes: Vec<u64> = backups
        .iter()
        .map(|b| b.metadata().unwrap().len())
        .collect();
    assert!(
        sizes.first() < sizes.last(),
        "the backups follow the sync: {sizes:?}"
    );
    for b in &backups {
        assert_committed_state(b, &clean, &clean_rows);
    }
    // And a backup of the finished file is the finished sync.
    let last = env.dir.path().join("after.sqlite");
    assert!(backup_cmd(&db, &last).output().unwrap().status.success());
    assert_eq!(
        crate::util::fingerprint(&last),
        crate::util::fingerprint(&db)
    );
    env.sim.stop().await;
}

/// A small synced file in a temp dir.
async fn small_synced() -> (Env, PathBuf) {
    let env = Env::start(20, |_| {}).await;
    assert_no_errors(&env.sync().await);
    let db = env.db();
    (env, db)
}

#[tokio::test]
async fn backup_refuses_what_it_must_and_replaces_only_with_force() {
    let (env, db) = small_synced().await;
    let dir = env.dir.path();
    let dest = dir.join("copy.sqlite");
    let out = backup_cmd(&db, &dest).output().unwrap();
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("copy.sqlite") && said.contains("bytes") && said.contains(" s "),
        "{said}"
    );
    assert_eq!(
        crate::util::fingerprint(&dest),
        crate::util::fingerprint(&db)
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(dest.metadata().unwrap().permissions().mode() & 0o777, 0o600);

    // An existing file stays untouched without --force.
    std::fs::write(&dest, b"precious").unwrap();
    let out = backup_cmd(&db, &dest).output().unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out).contains("already exists; pass --force"),
        "{}",
        text(&out)
    );
    assert_eq!(std::fs::read(&dest).unwrap(), b"precious");
    let out = backup_cmd(&db, &dest).arg("--force").output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        crate::util::fingerprint(&dest),
        crate::util::fingerprint(&db)
    );

    // The database itself, its WAL (by any spelling), a folder, a missing folder.
    let wal = PathBuf::from(format!("{}-wal", db.display()));
    let dotted = db.parent().unwrap().join(".").join(db.file_name().unwrap());
    for (dest, want) in [
        (db.clone(), "is the database itself"),
        (dotted, "is the database itself"),
        (wal, "is the database itself"),
        (dir.to_path_buf(), "is a directory"),
        (dir.join("nope/copy.sqlite"), "does not exist; create"),
    ] {
        let out = backup_cmd(&db, &dest).arg("--force").output().unwrap();
        assert!(!out.status.success(), "{}", dest.display());
        assert!(
            text(&out).contains(want),
            "{}: {}",
            dest.display(),
            text(&out)
        );
    }
    assert!(check_cmd(&db).status.success(), "the source is untouched");
    // No temporary file is left behind by the refusals or the copies.
    let left: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("ouradb-backup"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // No database at all.
    let out = backup_cmd(&dir.join("missing.sqlite"), &dir.join("x.sqlite"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(text(&out).contains("does not exist yet"), "{}", text(&out));
    env.sim.stop().await;
}

/// Overwrites one leaf page of `table` with garbage.
fn damage_a_page_of(db: &Path, table: &str) {
    let (page, size): (i64, i64) = {
        let conn = reader(db);
        let page = conn
            .query_row(
                "SELECT pageno FROM dbstat WHERE name = ?1 AND pagetype = 'leaf' ORDER BY pageno LIMIT 1 OFFSET 2",
                [table],
                |r| r.get(0),
            )
            .unwrap();
        let size = conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap();
        (page, size)
    };
    use std::io::{Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new().write(true).open(db).unwrap();
    f.seek(SeekFrom::Start(((page - 1) * size + 8) as u64))
        .unwrap();
    f.write_all(&vec![0xA5; (size - 16) as usize]).unwrap();
}

#[tokio::test]
async fn check_says_what_is_wrong_and_how_to_recover() {
    let (env, db) = small_synced().await;
    let dir = env.dir.path();
    let out = check_cmd(&db);
    assert!(out.status.success(), "{}", text(&out));
    for want in [
        "no problems found",
        "application_id: ouradb's",
        &format!("schema version: {SCHEMA_VERSION} (current)"),
        "integrity_check: ok",
        "foreign keys: ok",
    ] {
        assert!(text(&out).contains(want), "no {want:?} in {}", text(&out));
    }

    // A damaged page: the table, the backup, and the type to fetch again.
    let damaged = dir.join("damaged.sqlite");
    assert!(backup_cmd(&db, &damaged).output().unwrap().status.success());
    damage_a_page_of(&damaged, "heartrate");
    let out = check_cmd(&damaged);
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    for want in [
        "integrity_check: DAMAGED",
        "damaged tables: heartrate",
        "restore your latest backup",
        "ouradb sync --type heartrate --since ",
    ] {
        assert!(said.contains(want), "no {want:?} in\n{said}");
    }

    // Child rows whose document is gone: the type to fetch again.
    let orphaned = dir.join("orphaned.sqlite");
    assert!(
        backup_cmd(&db, &orphaned)
            .output()
            .unwrap()
            .status
            .success()
    );
    let conn = rusqlite::Connection::open(&orphaned).unwrap();
    conn.execute_batch(
        "PRAGMA foreign_keys = OFF; DELETE FROM sleep WHERE pk = (SELECT document_pk FROM sleep_heart_rate LIMIT 1);",
    )
    .unwrap();
    drop(conn);
    let out = check_cmd(&orphaned);
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("of sleep_heart_rate belong to sleep documents that are gone"),
        "{said}"
    );
    assert!(said.contains("ouradb sync --type sleep --since "), "{said}");

    // From a newer ouradb: said so, untouched.
    let newer = dir.join("newer.sqlite");
    assert!(backup_cmd(&db, &newer).output().unwrap().status.success());
    rusqlite::Connection::open(&newer)
        .unwrap()
        .execute_batch(&format!("PRAGMA user_version = {}", SCHEMA_VERSION + 1))
        .unwrap();
    let out = check_cmd(&newer);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("newer than this ouradb supports"),
        "{}",
        text(&out)
    );

    // Not a database: said so, with the way back.
    let junk = dir.join("junk.sqlite");
    std::fs::write(&junk, vec![b'x'; 4096]).unwrap();
    let out = check_cmd(&junk);
    assert!(!out.status.success());
    assert!(text(&out).contains("no SQLite header"), "{}", text(&out));
    env.sim.stop().await;
}

// ---------------------------------------------------------------- systemd

/// A socket standing in for systemd's NOTIFY_SOCKET: every datagram with
/// the time it arrived.
struct NotifySocket {
    sock: UnixDatagram,
    path: PathBuf,
    got: Vec<(Instant, String)>,
}

impl NotifySocket {
    fn bind(dir: &Path) -> NotifySocket {
        let path = dir.join("notify.sock");
        let sock = UnixDatagram::bind(&path).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        NotifySocket {
            sock,
            path,
            got: Vec::new(),
        }
    }

    /// Collects datagrams for `d`.
    fn collect_for(&mut self, d: Duration) {
        let end = Instant::now() + d;
        let mut buf = [0u8; 4096];
        while Instant::now() < end {
            if let Ok(n) = self.sock.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                self.got.push((Instant::now(), msg));
            }
        }
    }

    /// Collects until a STATUS line satisfies `want` (or `limit` passes).
    fn status_until(&mut self, limit: Duration, want: impl Fn(&str) -> bool) -> Option<String> {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            self.collect_for(Duration::from_millis(100));
            if let Some(s) = self.statuses().into_iter().rev().find(|s| want(s)) {
                return Some(s);
            }
        }
        None
    }

    fn pings(&self) -> Vec<Instant> {
        self.got
            .iter()
            .filter(|(_, m)| m.lines().any(|l| l == "WATCHDOG=1"))
            .map(|(t, _)| *t)
            .collect()
    }

    fn statuses(&self) -> Vec<String> {
        self.got
            .iter()
            .flat_map(|(_, m)| {
                m.lines()
                    .filter_map(|l| l.strip_prefix("STATUS="))
                    .map(str::to_owned)
            })
            .collect()
    }
}

/// The watchdog interval the tests give the daemon (pings every half).
const WATCHDOG: Duration = Duration::from_millis(400);

fn daemon_notifying(cfg: &Path, sock: &NotifySocket, failpoint: Option<&str>) -> Child {
    let mut c = ouradb_at(cfg);
    c.arg("daemon")
        .env("NOTIFY_SOCKET", &sock.path)
        .env("WATCHDOG_USEC", WATCHDOG.as_micros().to_string())
        .env_remove("WATCHDOG_PID")
        .env("OURADB_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(sock.path.with_file_name("daemon.log")).unwrap());
    match failpoint {
        Some(f) => c.env("OURADB_FAILPOINT", f),
        None => c.env_remove("OURADB_FAILPOINT"),
    };
    c.spawn().unwrap()
}

fn stop(mut child: Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Pings arrive every half interval until the failpoint wedges something
/// right after the third; then none comes for many intervals, where a
/// healthy daemon pings again within one.
async fn assert_pings_stop_when(failpoint: &str) {
    let env = Env::start(10, |_| {}).await;
    let cfg = write_config(&env, env.dir.path(), &env.db());
    let mut sock = NotifySocket::bind(env.dir.path());
    let child = daemon_notifying(&cfg, &sock, Some(failpoint));
    let deadline = Instant::now() + Duration::from_secs(30);
    while sock.pings().len() < 3 && Instant::now() < deadline {
        sock.collect_for(Duration::from_millis(50));
    }
    assert_eq!(sock.pings().len(), 3, "no pings: {:?}", sock.got);
    sock.collect_for(WATCHDOG * 5);
    stop(child);
    assert_eq!(
        sock.pings().len(),
        3,
        "pings went on after {failpoint}: {:?}",
        sock.got
    );
    env.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wedged_scheduler_loop_stops_the_watchdog_pings() {
    assert_pings_stop_when("wedge_scheduler_loop").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wedged_store_thread_stops_the_watchdog_pings() {
    assert_pings_stop_when("wedge_store_thread").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_says_auth_revoked_and_what_to_run() {
    let env = Env::start(10, |c| c.tokens = vec!["another-token".into()]).await;
    let cfg = write_config(&env, env.dir.path(), &env.db());
    let mut sock = NotifySocket::bind(env.dir.path());
    let child = daemon_notifying(&cfg, &sock, None);
    let said = sock.status_until(Duration::from_secs(30), |s| s.starts_with("auth"));
    stop(child);
    assert_eq!(
        said.as_deref(),
        Some("auth revoked: run ouradb auth login"),
        "{:?}",
        sock.statuses()
    );
    // Still pinging: the daemon is healthy, the credentials are not.
    assert!(
        sock.got
            .iter()
            .any(|(_, m)| m.contains("STATUS=auth revoked") && m.contains("WATCHDOG=1")),
        "{:?}",
        sock.got
    );
    env.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_says_until_when_it_waits_for_the_rate_limit() {
    let env = Env::start(10, |c| {
        c.rate_limit = 5;
        c.rate_window = Duration::from_secs(600);
    })
    .await;
    let cfg = write_config(&env, env.dir.path(), &env.db());
    let mut sock = NotifySocket::bind(env.dir.path());
    let child = daemon_notifying(&cfg, &sock, None);
    let said = sock.status_until(Duration::from_secs(60), |s| s.starts_with("waiting"));
    stop(child);
    let said = said.unwrap_or_else(|| {
        let log = std::fs::read_to_string(env.dir.path().join("daemon.log")).unwrap();
        panic!("{:?}\n{log}", sock.statuses())
    });
    let hhmm = said.strip_prefix("waiting for rate limit until ").unwrap();
    assert!(hhmm.len() == 5 && hhmm.as_bytes()[2] == b':', "{said}");
    env.sim.stop().await;
}

#[test]
fn the_status_line_puts_auth_first_then_the_rate_limit_then_freshness() {
    let now = jiff::Timestamp::now();
    let hour = jiff::SignedDuration::from_hours(1);
    let fresh = |name: &str| SyncState {
        data_type: name.into(),
        last_success: Some(now),
        next_run: Some(now.checked_add(hour).unwrap()),
        ..SyncState::default()
    };
    let mut states = vec![fresh("daily_sleep"), fresh("sleep")];
    states.push(SyncState {
        data_type: "tag".into(),
        ..SyncState::default()
    });
    let stale = Duration::from_secs(86400);
    let hhmm = |t: jiff::Timestamp| {
        t.to_zoned(jiff::tz::TimeZone::system())
            .strftime("%H:%M")
            .to_string()
    };
    let next = now.checked_add(hour).unwrap();
    assert_eq!(
        ouradb::daemon::status_line(&states, now, stale, None),
        format!("2 types fresh, 1 not synced yet, next run {}", hhmm(next))
    );
    let until = now.checked_add(jiff::SignedDuration::from_mins(7)).unwrap();
    assert_eq!(
        ouradb::daemon::status_line(&states, now, stale, Some(until)),
        format!("waiting for rate limit until {}", hhmm(until))
    );
    states[1].last_error_at = Some(now.checked_add(jiff::SignedDuration::from_secs(1)).unwrap());
    states[1].last_error_kind = Some("unauthorized".into());
    assert_eq!(
        ouradb::daemon::status_line(&states, now, stale, Some(until)),
        "auth revoked: run ouradb auth login"
    );
}

#[test]
fn the_unit_asks_for_the_watchdog() {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/systemd/ouradb.service"
    ))
    .unwrap();
    assert!(unit.lines().any(|l| l == "Type=notify"), "{unit}");
    let sec = unit
        .lines()
        .find_map(|l| l.strip_prefix("WatchdogSec="))
        .expect("WatchdogSec=");
    let secs: u64 = sec.trim_end_matches('s').parse().unwrap();
    // Pings come every half interval; leave room for a slow page commit.
    assert!((30..=300).contains(&secs), "WatchdogSec={sec}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchdog_pings_follow_watchdog_usec_with_a_status_line() {
    let env = Env::start(10, |_| {}).await;
    let cfg = write_config(&env, env.dir.path(), &env.db());
    let mut sock = NotifySocket::bind(env.dir.path());
    let child = daemon_notifying(&cfg, &sock, None);
    let n = registry::DATA_TYPES.len();
    let fresh = sock.status_until(Duration::from_secs(60), |s| {
        s.starts_with(&format!("{n} types fresh, next run "))
    });
    assert!(fresh.is_some(), "{:?}", sock.statuses());
    // And they keep coming (no wall-clock bound: a loaded machine only
    // delays them).
    let before = sock.pings().len();
    assert!(before >= 1, "no ping before the types were fresh");
    let deadline = Instant::now() + Duration::from_secs(30);
    while sock.pings().len() < before + 5 && Instant::now() < deadline {
        sock.collect_for(WATCHDOG);
    }
    stop(child);
    assert!(sock.pings().len() >= before + 5, "{:?}", sock.got);
    // STATUS and WATCHDOG=1 travel together, once per period.
    assert!(
        sock.got
            .iter()
            .filter(|(_, m)| m.contains("WATCHDOG=1"))
            .all(|(_, m)| m.starts_with("STATUS=")),
        "{:?}",
        sock.got
    );
    env.sim.stop().await;
}

// ---------------------------------------------------------------- local days

/// The schema version whose migration (`schema_local_days.sql`) made the
/// per-day views local.
const LOCAL_DAYS_VERSION: i64 = 8;

fn unix(s: &str) -> i64 {
    s.parse::<jiff::Timestamp>().unwrap().as_second()
}

/// A file at the version before the local days, holding days at +02:00 and
/// at -05:00 and samples the offset moves across a UTC midnight; opening it
/// migrates it.
fn file_before_local_days(dir: &Path) -> PathBuf {
    let path = dir.join("ouradb.sqlite");
    let conn = rusqlite::Connection::open(&path).unwrap();
    for sql in ouradb::store::migration_sources().take(LOCAL_DAYS_VERSION as usize - 1) {
        conn.execute_batch(sql).unwrap();
    }
    conn.execute_batch(&format!(
        "PRAGMA user_version = {}; PRAGMA application_id = {};",
        LOCAL_DAYS_VERSION - 1,
        0x4F55_5241
    ))
    .unwrap();
    for (day, stamp) in [
        ("2024-05-01", "2024-05-01T04:00:00+02:00"),
        ("2024-05-02", "2024-05-02T04:00:00.000+02:00"),
        ("2024-05-10", "2024-05-10T04:00:00-05:00"),
        ("2024-05-11", "2024-05-11T04:00:00-05:00"),
    ] {
        conn.execute(
            "INSERT INTO daily_activity (id, day, timestamp, raw_json, first_seen, last_seen, last_changed)
             VALUES (?1, ?1, ?2, '{}', 't', 't', 't')",
            [day, stamp],
        )
        .unwrap();
    }
    // Only a readiness document dates this day.
    conn.execute(
        "INSERT INTO daily_readiness (id, day, timestamp, raw_json, first_seen, last_seen, last_changed)
         VALUES ('r', '2024-06-01', '2024-06-01T00:00:00+09:00', '{}', 't', 't', 't')",
        [],
    )
    .unwrap();
    for (at, source, bpm) in [
        ("2024-05-01T21:30:00Z", "awake", 60),  // 23:30 on the 1st
        ("2024-05-01T22:30:00Z", "awake", 70),  // 00:30 on the 2nd: UTC says the 1st
        ("2024-05-02T10:00:00Z", "awake", 80),  // 12:00 on the 2nd
        ("2024-05-01T23:00:00Z", "sleep", 50),  // 01:00 on the 2nd
        ("2024-05-11T02:00:00Z", "awake", 90),  // 21:00 on the 10th: UTC says the 11th
        ("2024-05-11T06:00:00Z", "awake", 100), // 01:00 on the 11th
        ("2024-05-31T16:00:00Z", "awake", 55),  // 01:00 on 1 June at +09:00
        ("2024-05-05T23:30:00Z", "rest", 40), // no documents: the 2nd's +02:00 holds, 01:30 on the 6th
        ("2024-04-20T23:00:00Z", "rest", 45), // before any document: the first offset, the 21st
    ] {
        conn.execute(
            "INSERT INTO heartrate (ts, source, bpm) VALUES (?1, ?2, ?3)",
            rusqlite::params![unix(at), source, bpm],
        )
        .unwrap();
    }
    path
}

#[test]
fn heartrate_daily_counts_samples_in_the_persons_local_day() {
    let dir = tempfile::tempdir().unwrap();
    let path = file_before_local_days(dir.path());
    let store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version(), SCHEMA_VERSION);
    drop(store);
    let conn = reader(&path);
    let rows: Vec<(i64, String, String, i64, i64, f64, i64)> = conn
        .prepare("SELECT time, day, source, samples, min_bpm, avg_bpm, max_bpm FROM heartrate_daily ORDER BY day, source")
        .unwrap()
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let row = |day: &str, source: &str, n, lo, avg, hi| {
        (
            unix(&format!("{day}T00:00:00Z")),
            day.to_owned(),
            source.to_owned(),
            n,
            lo,
            avg,
            hi,
        )
    };
    assert_eq!(
        rows,
        vec![
            row("2024-04-21", "rest", 1, 45, 45.0, 45),
            row("2024-05-01", "awake", 1, 60, 60.0, 60),
            row("2024-05-02", "awake", 2, 70, 75.0, 80),
            row("2024-05-02", "sleep", 1, 50, 50.0, 50),
            row("2024-05-06", "rest", 1, 40, 40.0, 40),
            row("2024-05-10", "awake", 1, 90, 90.0, 90),
            row("2024-05-11", "awake", 1, 100, 100.0, 100),
            row("2024-06-01", "awake", 1, 55, 55.0, 55),
        ]
    );
    let offsets: Vec<(String, i64)> = conn
        .prepare("SELECT day, utc_offset FROM local_day_offset ORDER BY day")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(offsets[0], ("2024-05-01".to_owned(), 7200));
    assert_eq!(offsets[2], ("2024-05-10".to_owned(), -18000));
    assert_eq!(offsets[4], ("2024-06-01".to_owned(), 32400));
}
