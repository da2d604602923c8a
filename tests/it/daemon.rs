//! `ouradb daemon`: catch-up at start, schedule bookkeeping, prompt shutdown.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::util::{self, Env, assert_no_errors};

fn status_json(cfg: &std::path::Path) -> Option<Vec<serde_json::Value>> {
    let out = crate::cli::ouradb_at(cfg)
        .args(["status", "--json"])
        .output()
        .ok()?;
    serde_json::from_slice(&out.stdout).ok()
}

fn sigterm(pid: u32) {
    // SAFETY: plain kill(2) on our own child.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGTERM);
    }
}

fn wait_with_deadline(
    child: &mut std::process::Child,
    limit: Duration,
) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// `ouradb daemon` at info level, its log on a pipe.
fn daemon_logging_info(cfg: &std::path::Path) -> std::process::Child {
    crate::cli::ouradb_at(cfg)
        .arg("daemon")
        .env("OURADB_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Everything an exited child wrote to its piped stderr.
fn stderr_of(child: &mut std::process::Child) -> String {
    let mut log = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut log).unwrap();
    log
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_catches_up_records_next_runs_and_stops_on_sigterm() {
    let env = Env::start(30, |_| {}).await;
    let db = env.db();
    let cfg = crate::cli::write_config(&env, env.dir.path(), &db);
    let mut child = daemon_logging_info(&cfg);

    // The catch-up run syncs every type without waiting for the schedule.
    let deadline = Instant::now() + Duration::from_secs(60);
    let rows = loop {
        assert!(Instant::now() < deadline, "daemon did not catch up in time");
        if let Some(rows) = status_json(&cfg)
            && rows.len() == ouradb::registry::DATA_TYPES.len()
            && rows
                .iter()
                .all(|r| r["freshness"] == "fresh" && !r["next_run"].is_null())
        {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // A type whose cron fires while this loop reads (every quarter hour)
    // shows the instant it started running as its next run: allow that.
    let started = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(30);
    for r in &rows {
        let next: jiff::Timestamp = r["next_run"].as_str().unwrap().parse().unwrap();
        assert!(next > started, "{r}");
    }

    let asked = Instant::now();
    sigterm(child.id());
    let status = wait_with_deadline(&mut child, Duration::from_secs(5))
        .expect("stopped within 5 s of SIGTERM");
    assert!(status.success(), "{status:?}");
    assert!(asked.elapsed() < Duration::from_secs(5));
    let log = stderr_of(&mut child);
    assert!(
        log.contains("SIGTERM") && log.contains("shutting down"),
        "{log}"
    );
    assert!(!log.contains(util::TOKEN), "token in the log");
    env.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_backfill_stops_promptly_and_a_later_sync_finishes_the_job() {
    let env = Env::start(365, |_| {}).await;
    let clean = env.dir.path().join("clean.sqlite");
    assert_no_errors(&env.sync_with(env.config_for(&clean)).await);
    env.sim.set_faults(ouradb_sim::Faults {
        slow: 0.3,
        ..Default::default()
    });

    let db = env.db();
    let cfg = crate::cli::write_config(&env, env.dir.path(), &db);
    let mut child = crate::cli::ouradb_at(&cfg)
        .arg("daemon")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(child.try_wait().unwrap().is_none(), "still backfilling");
    let asked = Instant::now();
    sigterm(child.id());
    let status =
        wait_with_deadline(&mut child, Duration::from_secs(5)).expect("stopped within 5 s");
    assert!(status.success());
    assert!(asked.elapsed() < Duration::from_secs(5));

    env.sim.set_faults(ouradb_sim::Faults::none());
    assert_no_errors(&env.sync().await);
    assert_eq!(util::fingerprint(&db), util::fingerprint(&clean));
    env.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_of_one_type_never_overlap() {
    let env = Env::start(120, |c| {
        c.faults.slow = 1.0;
        c.faults.slow_delay = Duration::from_millis(50);
    })
    .await;
    let engine = env.engine(env.config());
    let dt = ouradb::registry::find("daily_sleep").unwrap();
    let opts = ouradb::sync::RunOptions {
        since: None,
        backfill: true,
    };
    let (a, b) = tokio::join!(
        engine.run_type(dt, opts, &ouradb::sync::NoObserver),
        engine.run_type(dt, opts, &ouradb::sync::NoObserver)
    );
    assert!(
        a.skipped_busy != b.skipped_busy,
        "exactly one ran: {a:?} {b:?}"
    );
    let ran = if a.skipped_busy { &b } else { &a };
    assert!(ran.error.is_none() && ran.requests > 0);
    let skipped = if a.skipped_busy { &a } else { &b };
    assert_eq!(skipped.requests, 0);
    env.sim.stop().await;
}

/// The default test runtime has one thread. With another process holding
/// the write lock, the daemon's store calls wait on blocking threads: timers
/// still fire and a shutdown (what SIGTERM triggers) is answered within the
/// grace period. A store call made on the runtime thread would stall both.
#[tokio::test]
async fn a_locked_database_stalls_neither_the_daemon_nor_its_shutdown() {
    let env = Env::start(30, |_| {}).await;
    assert_no_errors(&env.sync().await);
    let other = rusqlite::Connection::open(env.db()).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();

    let cancel = tokio_util::sync::CancellationToken::new();
    let engine = std::sync::Arc::new(
        ouradb::sync::engine_from_config(
            std::sync::Arc::new(env.config()),
            None,
            cancel.clone(),
            env.clock(),
        )
        .unwrap(),
    );
    let daemon = tokio::spawn(ouradb::daemon::run_with(engine, cancel.clone()));
    // The catch-up runs start and wait for the lock.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!daemon.is_finished(), "the daemon is running");
    let started = Instant::now();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "timers fire: {:?}",
        started.elapsed()
    );

    let asked = Instant::now();
    cancel.cancel();
    let stopped = tokio::time::timeout(
        ouradb::daemon::SHUTDOWN_GRACE + Duration::from_secs(2),
        daemon,
    )
    .await
    .expect("the daemon answered the shutdown in time");
    stopped.unwrap().unwrap();
    assert!(asked.elapsed() < ouradb::daemon::SHUTDOWN_GRACE + Duration::from_secs(1));
    other.execute_batch("ROLLBACK").unwrap();
    env.sim.stop().await;
}

/// The same as a process, with a real signal: `ouradb daemon` with its
/// webhook receiver on, while another process holds the database's write
/// lock, answers Oura's verification call at once and exits within the
/// grace period of a SIGTERM, although its catch-up runs are still waiting
/// for the lock (a store call on a runtime thread, or a runtime that waits
/// for them on exit, would stall one or the other).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_database_stalls_neither_the_receiver_nor_sigterm_of_the_daemon_process() {
    const VT: &str = "verify-me-please";
    let env = Env::start(30, |_| {}).await;
    let db = env.db();
    // The schema exists, as for any daemon restart.
    assert_no_errors(&env.sync_with(env.config_for(&db)).await);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = env.dir.path().join("daemon.toml");
    std::fs::write(
        &cfg,
        format!(
            "[api]\nbase_url = \"{}\"\n[auth]\npersonal_access_token = \"{}\"\nclient_id = \"sim-client\"\nclient_secret = \"sim-secret\"\ntoken_file = \"{}\"\n[storage]\ndatabase = \"{}\"\n[webhook]\nenabled = true\nlisten = \"127.0.0.1:{port}\"\ncallback_url = \"http://127.0.0.1:{port}/oura/webhook\"\nverification_token = \"{VT}\"\n",
            env.sim.base_url(),
            util::TOKEN,
            env.dir.path().join("tokens.json").display(),
            db.display(),
        ),
    )
    .unwrap();
    let other = rusqlite::Connection::open(&db).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();

    let mut child = daemon_logging_info(&cfg);
    let callback = format!("http://127.0.0.1:{port}/oura/webhook");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    // Wait for the receiver to listen, then time one answer.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(Instant::now() < deadline, "the receiver never listened");
        assert!(child.try_wait().unwrap().is_none(), "the daemon exited");
        if http.get(&callback).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    util::assert_verification_answered_at_once(&callback, VT).await;

    let asked = Instant::now();
    sigterm(child.id());
    let limit = ouradb::daemon::SHUTDOWN_GRACE + Duration::from_secs(2);
    let status = wait_with_deadline(&mut child, limit).expect("stopped within the grace period");
    assert!(status.success(), "{status:?}");
    assert!(asked.elapsed() < limit);
    let log = stderr_of(&mut child);
    assert!(log.contains("SIGTERM"), "{log}");
    assert!(
        !log.contains(util::TOKEN) && !log.contains(VT),
        "a secret in the log"
    );
    other.execute_batch("ROLLBACK").unwrap();
    env.sim.stop().await;
}

/// A catch-up fills the store's page cache (16 MiB for a backfill); once it
/// is over, the daemon gives the cache back: its limit is back to the idle
/// size, which frees every page above it, until the next run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_catch_up_the_daemon_shrinks_the_stores_cache() {
    use ouradb::store::memory::{IDLE_CACHE_KIB, RUN_CACHE_KIB};
    let env = Env::start(30, |_| {}).await;
    let cancel = tokio_util::sync::CancellationToken::new();
    let engine = std::sync::Arc::new(
        ouradb::sync::engine_from_config(
            std::sync::Arc::new(env.config()),
            None,
            cancel.clone(),
            env.clock(),
        )
        .unwrap(),
    );
    let opened = engine.store().cache_kib().await.unwrap();
    assert_eq!(
        opened, RUN_CACHE_KIB,
        "a backfill starts with the large cache"
    );
    let daemon = tokio::spawn(ouradb::daemon::run_with(engine.clone(), cancel.clone()));

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            Instant::now() < deadline,
            "the daemon did not catch up and shrink its cache in time"
        );
        let states = engine.store().all_sync_states().await.unwrap();
        let cache = engine.store().cache_kib().await.unwrap();
        let caught_up = states.len() == ouradb::registry::DATA_TYPES.len()
            && states
                .iter()
                .all(|s| s.backfill_complete && s.last_success.is_some());
        if caught_up && cache == IDLE_CACHE_KIB {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cancel.cancel();
    daemon.await.unwrap().unwrap();
    env.sim.stop().await;
}
