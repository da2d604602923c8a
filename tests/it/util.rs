//! Shared test harness: a simulator, a temp database and an engine whose
//! clock follows the simulator's.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use jiff::civil::Date;
use jiff::{Timestamp, ToSpan};
use ouradb::config::Config;
use ouradb::sync::{self, NoObserver, RunOptions, SyncEngine, TypeReport};
use ouradb_sim::{SimConfig, SimServer};
use tokio_util::sync::CancellationToken;

// The database readers live in `db`; tests have long imported them from here.
pub use crate::db::{count, fingerprint, reader};

pub const TOKEN: &str = "test-token";

/// The personal access token of the simulator's person `i` (0 is the
/// first; a simulator started `with_persons(n)` gives the others
/// `TOKEN-2`, `TOKEN-3`, ...).
pub fn person_token(i: usize) -> String {
    if i == 0 {
        TOKEN.to_owned()
    } else {
        format!("{TOKEN}-{}", i + 1)
    }
}

/// The Oura OpenAPI 1.37 spec vendored with the tests.
pub fn spec_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/openapi-1.37.json")
}

pub fn today() -> Date {
    Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).date()
}

/// A simulator plus a database directory.
pub struct Env {
    pub sim: SimServer,
    pub dir: tempfile::TempDir,
    pub days: u32,
    /// Days the simulated clock is ahead of the real one.
    pub offset_days: Arc<AtomicI64>,
}

impl Env {
    pub async fn start(days: u32, tweak: impl FnOnce(&mut SimConfig)) -> Env {
        let mut cfg = SimConfig::new(7, days, today());
        cfg.tokens = vec![TOKEN.to_owned()];
        // Two nights of interbeat intervals (~50,000 beats) instead of a
        // whole history: every sync still covers the type, at a volume the
        // suite can afford (tests about it set their own).
        cfg.interbeat_days = Some(2);
        tweak(&mut cfg);
        let sim = SimServer::start(cfg).await.expect("simulator starts");
        Env {
            sim,
            dir: tempfile::tempdir().expect("tempdir"),
            days,
            offset_days: Arc::new(AtomicI64::new(0)),
        }
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("ouradb.sqlite")
    }

    /// Config for this simulator; the backfill starts a few days before the
    /// simulated history so the whole of it is covered.
    pub fn config_for(&self, db: &Path) -> Config {
        let mut c = Config::for_base_url(&self.sim.base_url(), TOKEN, db.to_path_buf());
        c.backfill_start = today().saturating_sub((self.days as i64 + 3).days());
        c.retry.base_delay = Duration::from_millis(20);
        c.retry.max_delay = Duration::from_millis(200);
        c.request_timeout = Duration::from_secs(5);
        c
    }

    pub fn config(&self) -> Config {
        self.config_for(&self.db())
    }

    pub fn clock(&self) -> sync::Clock {
        let off = self.offset_days.clone();
        Arc::new(move || {
            let days = off.load(Ordering::SeqCst);
            Timestamp::now()
                .checked_add(jiff::SignedDuration::from_hours(24 * days))
                .expect("in range")
        })
    }

    pub fn engine(&self, config: Config) -> SyncEngine {
        sync::engine_from_config(
            Arc::new(config),
            None,
            CancellationToken::new(),
            self.clock(),
        )
        .expect("engine")
    }

    /// One full `ouradb sync` equivalent on `config`.
    pub async fn sync_with(&self, config: Config) -> Vec<TypeReport> {
        let engine = self.engine(config);
        let types = engine.config().types.clone();
        engine
            .run(
                &types,
                RunOptions {
                    since: None,
                    backfill: true,
                },
                &NoObserver,
            )
            .await
    }

    pub async fn sync(&self) -> Vec<TypeReport> {
        self.sync_with(self.config()).await
    }

    pub fn advance_days(&self, n: u32) {
        self.sim.advance_days(n);
        self.offset_days.fetch_add(n as i64, Ordering::SeqCst);
    }
}

pub fn assert_no_errors(reports: &[TypeReport]) {
    let errors: Vec<_> = reports
        .iter()
        .filter_map(|r| r.error.as_ref().map(|e| format!("{}: {e}", r.data_type)))
        .collect();
    assert!(errors.is_empty(), "sync errors: {errors:#?}");
}

/// The collection path a data request asked for, e.g. `daily_sleep`.
pub fn collection_of(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/v2/usercollection/")?;
    Some(rest.split('/').next().unwrap_or(""))
}

/// Requests the simulator saw per collection path, e.g. `daily_sleep`.
pub fn requests_per_collection(sim: &SimServer) -> std::collections::BTreeMap<String, usize> {
    let mut m = std::collections::BTreeMap::new();
    for e in sim.request_log() {
        if let Some(coll) = collection_of(&e.path) {
            *m.entry(coll.to_owned()).or_default() += 1;
        }
    }
    m
}

/// Responses with `status` across every endpoint.
pub fn status_count(sim: &SimServer, status: u16) -> u64 {
    sim.counters()
        .iter()
        .filter(|((_, s), _)| *s == status)
        .map(|(_, n)| *n)
        .sum()
}

/// Every scope Oura grants except `left_out`.
pub fn scopes_without(left_out: &str) -> Vec<String> {
    ouradb_sim::ALL_SCOPES
        .iter()
        .filter(|s| **s != left_out)
        .map(|s| s.to_string())
        .collect()
}

/// Asks a webhook receiver at `callback` for Oura's verification challenge
/// and asserts it answers correctly within a second: what a receiver must
/// still do while the store waits for another process's lock.
pub async fn assert_verification_answered_at_once(callback: &str, token: &str) {
    let asked = std::time::Instant::now();
    let r = reqwest::Client::new()
        .get(callback)
        .query(&[("verification_token", token), ("challenge", "abc")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "the receiver answers while the store waits: {:?}",
        asked.elapsed()
    );
    assert!(r.text().await.unwrap().contains("abc"));
}
