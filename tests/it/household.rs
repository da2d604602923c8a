//! The daemon of a household (issue 20, scheduling and quota): every
//! account's jobs in one process, beside `ouradb sync` processes on the
//! same file, within and filling the application's quota; the STATUS line
//! naming the account whose sign-in failed.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ouradb::config::{AccountConfig, Config};
use ouradb::secret::Secret;
use ouradb::store::{AccountId, Store, StoreHandle, SyncState};
use ouradb::sync::{self, SyncEngine, TypeReport};
use tokio_util::sync::CancellationToken;

use crate::accounts::{quota_config, sync_all};
use crate::util::{self, Env, assert_no_errors, person_token};

const NAMES: [&str; 3] = ["alice", "bob", "carol"];

/// A config of three `[[account]]`s, one per simulated person, under
/// [`quota_config`]'s quota with `limit` for each token and all together.
fn household_config(env: &Env, db: &Path, limit: u32, window: Duration) -> Config {
    let mut config = quota_config(env, db, 0, (limit, limit), window);
    config.token = None;
    config.accounts = NAMES
        .iter()
        .enumerate()
        .map(|(i, name)| AccountConfig {
            name: (*name).to_owned(),
            token: Some(Secret::new(person_token(i))),
            token_file: env.dir.path().join(format!("{name}-tokens.json")),
        })
        .collect();
    config.account_entries = true;
    config
}

/// Waits until the daemon's catch-up of every account has ended, and
/// every account synced without an error.
async fn caught_up(engines: &[Arc<SyncEngine>]) {
    for engine in engines {
        assert_no_errors(&after_catch_up(engine).await);
    }
}

/// The reports of a run of `engine`'s own once the daemon's catch-up of
/// its account has ended: a run that finds no type busy.
async fn after_catch_up(engine: &SyncEngine) -> Vec<TypeReport> {
    loop {
        let reports = sync_all(engine).await;
        if reports.iter().all(|r| !r.skipped_busy) {
            return reports;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The daemon syncing three accounts and two `ouradb sync` processes
/// syncing the same three on one file: the application's quota holds in
/// every window (no 429), and while the backfills run they keep at least
/// 90 % of it in use (of what the configured margin leaves usable).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_and_two_sync_processes_of_three_accounts_keep_and_fill_the_applications_quota() {
    let (limit, window) = (60u32, Duration::from_secs(4));
    let env = Env::start(60, |c| {
        *c = c.clone().with_persons(3);
        c.app_rate_limit = limit;
        c.app_rate_window = window;
    })
    .await;
    let db = env.dir.path().join("household.sqlite");
    let config = household_config(&env, &db, limit, window);
    let cancel = CancellationToken::new();
    let store = StoreHandle::new(Store::open(&db).unwrap());
    let engines = sync::household(&config, &store, cancel.clone(), env.clock())
        .await
        .expect("engines");
    let ids: Vec<AccountId> = engines.iter().map(|e| e.store().account()).collect();
    let daemon = tokio::spawn(ouradb::daemon::run_all(engines.clone(), cancel.clone()));
    let process = |order: [usize; 3]| {
        // A process of its own: its own store thread and request-account
        // connection on the file.
        let store = StoreHandle::new(Store::open(&db).unwrap());
        let engines: Vec<SyncEngine> = order
            .into_iter()
            .map(|i| {
                let c = config.for_account(&config.accounts[i]);
                sync::engine_with_store(
                    Arc::new(c),
                    None,
                    CancellationToken::new(),
                    env.clock(),
                    store.for_account(ids[i]),
                )
                .unwrap()
            })
            .collect();
        async move {
            let mut reports = Vec::new();
            for e in &engines {
                reports.extend(sync_all(e).await);
            }
            reports
        }
    };
    let bounded = tokio::time::timeout(Duration::from_secs(240), async {
        let (a, b) = tokio::join!(process([0, 1, 2]), process([2, 1, 0]));
        assert_no_errors(&a);
        assert_no_errors(&b);
        caught_up(&engines).await;
    });
    bounded.await.expect("the household synced in time");
    cancel.cancel();
    daemon.await.unwrap().expect("the daemon stops cleanly");

    let app = ouradb_sim::Application::PersonalTokens;
    let busiest = env.sim.max_app_requests_in_window(&app, window);
    let mut times: Vec<_> = env
        .sim
        .request_log()
        .into_iter()
        .filter(|e| e.application.as_ref() == Some(&app))
        .map(|e| e.at)
        .collect();
    // Logged as answered, not quite in arrival order.
    times.sort();
    let usable = ouradb::api::limiter::usable_quota(&config.rate_limit);
    let share = backfill_share(&times, window, usable);
    let per_token: Vec<usize> = (0..3)
        .map(|i| env.sim.max_requests_in_window(&person_token(i), window))
        .collect();
    eprintln!(
        "{} requests, at most {busiest} in any {window:?} (limit {limit}, {usable} usable; per token {per_token:?}), {:.0} % of the usable quota used during the backfill, {} x 429",
        times.len(),
        share * 100.0,
        util::status_count(&env.sim, 429)
    );
    assert!(
        times.len() > 4 * limit as usize,
        "several windows' worth: {}",
        times.len()
    );
    assert!(busiest <= limit as usize, "{busiest} in one window");
    assert_eq!(util::status_count(&env.sim, 429), 0, "no request refused");
    assert!(share >= 0.9, "{:.2} of the usable quota used", share);
    env.sim.stop().await;
}

/// The share of `usable` (the limit less the configured margin) in use
/// while the backfills run: the mean count of the windows starting every
/// 100 ms from the first request until the window that reaches the 80th
/// percentile request (the tail, where the last runs finish alone, is no
/// backfill), over `usable`.
fn backfill_share(times: &[std::time::Instant], window: Duration, usable: u32) -> f64 {
    let end = times[times.len() * 8 / 10];
    let mut from = times[0];
    let mut counts = Vec::new();
    while from + window <= end {
        counts.push(
            times
                .iter()
                .filter(|t| (from..from + window).contains(t))
                .count(),
        );
        from += Duration::from_millis(100);
    }
    let mean = counts.iter().sum::<usize>() as f64 / counts.len().max(1) as f64;
    mean / f64::from(usable)
}

/// The STATUS line of several accounts names the one whose sign-in failed
/// and the command for it, else adds every account's types together.
#[test]
fn the_status_line_of_a_household_names_the_account_to_sign_in_again() {
    let now = jiff::Timestamp::now();
    let stale = Duration::from_secs(86_400);
    let fresh = |name: &str| SyncState {
        data_type: name.into(),
        last_success: Some(now),
        ..SyncState::default()
    };
    let revoked = SyncState {
        last_error_at: Some(now.checked_add(jiff::SignedDuration::from_secs(1)).unwrap()),
        last_error_kind: Some("reauth_required".into()),
        ..fresh("sleep")
    };
    let line = |accounts: &[(&str, Vec<SyncState>)]| {
        ouradb::daemon::household_status_line(accounts, now, stale, None)
    };
    let alice = ("alice", vec![fresh("sleep"), fresh("tag")]);
    let bob = ("bob", vec![revoked.clone(), fresh("tag")]);
    assert_eq!(
        line(&[alice.clone(), bob.clone()]),
        "auth revoked for account bob: run ouradb auth login --account bob"
    );
    let carol = ("carol", vec![revoked]);
    assert_eq!(
        line(&[alice.clone(), bob, carol]),
        "auth revoked for accounts bob, carol: run ouradb auth login --account NAME for each"
    );
    let dave = ("dave", vec![fresh("sleep")]);
    assert_eq!(line(&[alice.clone(), dave]), "2 accounts: 3 types fresh");
    // One account reads as it always did.
    assert_eq!(line(&[alice]), "2 types fresh");
}

/// A daemon of three accounts, one of them (carol) with no credentials at
/// all: carol pauses alone, each of her types naming her, the cause and the
/// command that fixes it, with nothing sent for her; alice and bob sync to
/// completion beside her; the STATUS line names carol.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_without_credentials_pauses_alone_in_a_household_daemon() {
    let env = Env::start(20, |c| *c = c.clone().with_persons(3)).await;
    let db = env.dir.path().join("household.sqlite");
    let mut config = household_config(&env, &db, 5000, Duration::from_secs(300));
    config.accounts[2].token = None;
    let cancel = CancellationToken::new();
    let store = StoreHandle::new(Store::open(&db).unwrap());
    let engines = sync::household(&config, &store, cancel.clone(), env.clock())
        .await
        .expect("engines");
    let daemon = tokio::spawn(ouradb::daemon::run_all(engines.clone(), cancel.clone()));
    let synced = tokio::time::timeout(Duration::from_secs(120), caught_up(&engines[..2]));
    synced.await.expect("alice and bob synced in time");
    let carol = &engines[2];
    let reports = after_catch_up(carol).await;
    cancel.cancel();
    daemon.await.unwrap().expect("the daemon stops cleanly");

    let fix = "account carol has no Oura credentials, so nothing was requested for it; set personal_access_token (or personal_access_token_file) in its [[account]] entry, or run `ouradb auth login --account carol`";
    for r in &reports {
        let error = r.error.as_deref().unwrap_or_default();
        assert!(error.contains(fix), "{}: {error}", r.data_type);
    }
    let states = configured_states(carol).await;
    assert_eq!(states.len(), config.types.len());
    for s in &states {
        let error = s.last_error.as_deref().unwrap_or_default();
        assert!(error.contains(fix), "{}: {error}", s.data_type);
    }
    let unsigned = env
        .sim
        .request_log()
        .iter()
        .filter(|e| e.token.is_none())
        .count();
    assert_eq!(unsigned, 0, "nothing was sent without a token");
    for (engine, name) in engines[..2].iter().zip(NAMES) {
        let states = configured_states(engine).await;
        assert!(
            states
                .iter()
                .all(|s| s.backfill_complete && s.last_success.is_some()),
            "{name}: {states:?}"
        );
    }
    let all: Vec<(&str, Vec<SyncState>)> = vec![
        ("alice", configured_states(&engines[0]).await),
        ("bob", configured_states(&engines[1]).await),
        ("carol", states),
    ];
    let line = ouradb::daemon::household_status_line(
        &all,
        jiff::Timestamp::now(),
        Duration::from_secs(86_400),
        None,
    );
    assert_eq!(
        line,
        "auth revoked for account carol: run ouradb auth login --account carol"
    );
    env.sim.stop().await;
}

/// The sync state of the types `engine` syncs.
async fn configured_states(engine: &SyncEngine) -> Vec<SyncState> {
    let types = &engine.config().types;
    let states = engine.states().await.unwrap();
    states
        .into_iter()
        .filter(|s| types.iter().any(|t| t.name == s.data_type))
        .collect()
}
