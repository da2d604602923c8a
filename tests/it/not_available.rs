//! A collection the application may not read: a 401/403 for one
//! collection while the same token reads the others marks that collection
//! "not available to this application", asked again daily, never the
//! account's failure.

use std::time::Duration;

use ouradb::error_kind::ErrorKind;
use ouradb::store::Store;
use ouradb::sync::{NoObserver, RunOptions, TypeReport};

use crate::cli::{ouradb_at, write_config};
use crate::util::{self, Env};

const DENIED: &str = "daily_spo2";

fn report<'a>(reports: &'a [TypeReport], name: &str) -> &'a TypeReport {
    reports.iter().find(|r| r.data_type == name).unwrap()
}

/// Every type but `DENIED` completed without an error.
fn assert_others_complete(reports: &[TypeReport]) {
    let errors: Vec<_> = reports
        .iter()
        .filter(|r| r.data_type != DENIED)
        .filter_map(|r| r.error.as_ref().map(|e| format!("{}: {e}", r.data_type)))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

fn requests_for(env: &Env, coll: &str) -> usize {
    util::requests_per_collection(&env.sim)
        .get(coll)
        .copied()
        .unwrap_or(0)
}

/// The STATUS line and the status table's line of `DENIED`, at `now`.
fn status_of(env: &Env, now: jiff::Timestamp) -> (String, String) {
    let store = Store::open_read_only(&env.db()).unwrap();
    let states = store.all_sync_states().unwrap();
    let stale = Duration::from_secs(3600);
    let line = ouradb::daemon::status_line(&states, now, stale, None);
    let table = ouradb::cli::status_table_width(&states, now, stale, 1000).to_string();
    let row = table
        .lines()
        .find(|l| l.contains(DENIED))
        .unwrap()
        .to_owned();
    (line, row)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collection_refused_alone_is_not_available_retried_daily_and_syncs_once_enabled() {
    let env = Env::start(10, |c| {
        c.denied_collections.insert(DENIED.to_owned(), 401);
    })
    .await;
    let reports = env.sync().await;
    assert_others_complete(&reports);
    let r = report(&reports, DENIED);
    assert_eq!(r.error_kind, Some(ErrorKind::NotAvailable), "{r:?}");
    let msg = r.error.as_deref().unwrap();
    assert!(
        msg.contains("not available to this application (HTTP 401: Unauthorized: Not authorized to access this resource)")
            && msg.contains("ask Oura")
            && msg.contains("developer portal"),
        "{msg}"
    );
    assert!(util::count(&env.db(), "daily_sleep") > 0);

    // The account is not paused: no auth failure anywhere.
    let now = (env.clock())();
    let (line, row) = status_of(&env, now);
    assert!(!line.contains("auth"), "{line}");
    assert!(
        line.contains("1 not available to this application"),
        "{line}"
    );
    assert!(!line.contains("failing"), "{line}");
    assert!(
        row.contains("not_available")
            && row.contains("HTTP 401")
            && row.contains("ask Oura")
            && row.contains("next try"),
        "{row}"
    );

    // Asked at most once a day: the next runs of the day skip it, even once
    // Oura enables it.
    let asked = requests_for(&env, DENIED);
    assert_eq!(asked, 1, "one refusal, no retry storm");
    assert_others_complete(&env.sync().await);
    env.sim.deny_collection(DENIED, None);
    let reports = env.sync().await;
    assert_others_complete(&reports);
    let r = report(&reports, DENIED);
    assert_eq!(r.error_kind, Some(ErrorKind::NotAvailable));
    assert!(
        r.error.as_deref().unwrap().contains("asked again after"),
        "{r:?}"
    );
    assert_eq!(
        requests_for(&env, DENIED),
        asked,
        "not asked within the day"
    );

    // A day later it is asked again, syncs, and the mark is gone.
    env.advance_days(1);
    util::assert_no_errors(&env.sync().await);
    assert!(requests_for(&env, DENIED) > asked);
    assert!(util::count(&env.db(), DENIED) > 0);
    let state = Store::open_read_only(&env.db())
        .unwrap()
        .sync_state(ouradb::registry::find(DENIED).unwrap())
        .unwrap();
    assert_eq!(state.last_error_kind, None, "{state:?}");
    assert!(ouradb::sync::not_available_until(&state).is_none());
    env.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_with_no_other_collection_asked_yet_is_told_apart_by_one_probe() {
    let env = Env::start(10, |c| {
        c.denied_collections.insert(DENIED.to_owned(), 403);
    })
    .await;
    let engine = env.engine(env.config());
    let dt = ouradb::registry::find(DENIED).unwrap();
    let opts = RunOptions {
        since: None,
        backfill: true,
    };
    let r = engine.run(&[dt], opts, &NoObserver).await;
    assert_eq!(r[0].error_kind, Some(ErrorKind::NotAvailable), "{r:?}");
    assert!(r[0].error.as_deref().unwrap().contains("HTTP 403"), "{r:?}");
    let probes: usize = util::requests_per_collection(&env.sim)
        .iter()
        .filter(|(c, _)| c.as_str() != DENIED)
        .map(|(_, n)| n)
        .sum();
    assert_eq!(probes, 1, "one request of another collection");
    env.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_refused_everywhere_is_still_the_accounts_auth_failure() {
    let env = Env::start(10, |c| {
        c.denied_collections.insert(DENIED.to_owned(), 401);
    })
    .await;
    let reports = env.sync().await;
    assert_eq!(
        report(&reports, DENIED).error_kind,
        Some(ErrorKind::NotAvailable)
    );
    // The token is revoked: the same token that worked a moment ago is
    // refused by every collection, the marked one's retry included.
    env.sim.revoke_token(util::TOKEN);
    env.advance_days(1);
    let reports = env.sync().await;
    for r in &reports {
        assert_eq!(r.error_kind, Some(ErrorKind::Unauthorized), "{r:?}");
        assert!(
            r.error
                .as_deref()
                .unwrap()
                .contains("access token was rejected"),
            "{r:?}"
        );
    }
    let (line, row) = status_of(&env, (env.clock())());
    assert_eq!(line, "auth revoked: run ouradb auth login");
    assert!(
        row.contains("failing") && row.contains("unauthorized"),
        "{row}"
    );
    env.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_exits_0_and_status_explains_a_collection_not_available() {
    let env = Env::start(10, |c| {
        c.denied_collections.insert("heartrate".to_owned(), 403);
    })
    .await;
    let db = env.db();
    let cfg = write_config(&env, env.dir.path(), &db);
    let out = ouradb_at(&cfg).arg("sync").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("ouradb: not available to this application: heartrate"),
        "{stderr}"
    );
    assert!(!stderr.contains("failed"), "{stderr}");

    let out = ouradb_at(&cfg)
        .env("COLUMNS", "1000")
        .arg("status")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let row = text.lines().find(|l| l.contains("heartrate")).unwrap();
    assert!(
        row.contains("not_available")
            && row.contains("HTTP 403: Forbidden: Not authorized to access this resource")
            && row.contains("ask Oura")
            && row.contains("next try"),
        "{row}"
    );

    let out = ouradb_at(&cfg).args(["status", "--json"]).output().unwrap();
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let hr = rows.iter().find(|r| r["data_type"] == "heartrate").unwrap();
    assert_eq!(hr["freshness"], "not_available", "{hr}");
    let na = &hr["not_available"];
    assert!(na["reason"].as_str().unwrap().contains("HTTP 403"), "{na}");
    assert!(
        na["how_to_enable"]
            .as_str()
            .unwrap()
            .contains("developer portal")
    );
    let refused: jiff::Timestamp = na["refused_at"].as_str().unwrap().parse().unwrap();
    let retry: jiff::Timestamp = na["retry_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(retry.duration_since(refused).as_hours(), 24, "{na}");
    let sleep = rows
        .iter()
        .find(|r| r["data_type"] == "daily_sleep")
        .unwrap();
    assert_eq!(sleep["not_available"], serde_json::Value::Null);
    env.sim.stop().await;
}

/// A token revoked while requests are out: a request of another collection
/// authorized just before the revocation is answered after this
/// collection's refusal was sent. That late success proves nothing about
/// the token now, so the refusal stays the account's auth failure; before,
/// it marked the refused collection "not available" and the run passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_success_authorized_before_a_revocation_does_not_make_a_refusal_the_collections() {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::response::IntoResponse;

    use crate::hostile::{Fake, config_file, json_page};

    // The request number of the one success.
    let admitted = std::sync::Arc::new(AtomicUsize::new(usize::MAX));
    let (admit, admitted_h) = (admitted.clone(), admitted.clone());
    // The first daily_sleep request was authorized (the token still
    // worked) and its answer takes 300 ms; the token is revoked from then
    // on and every other request is refused after 800 ms.
    let fake = Fake::start_delayed(
        move |s| {
            let ok = s.path.ends_with("/daily_sleep")
                && admit
                    .compare_exchange(usize::MAX, s.n, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok();
            Duration::from_millis(if ok { 300 } else { 800 })
        },
        move |s| {
            if admitted_h.load(Ordering::SeqCst) == s.n {
                json_page(serde_json::json!([]), None)
            } else {
                (
                    axum::http::StatusCode::UNAUTHORIZED,
                    r#"{"detail":"Unauthorized"}"#,
                )
                    .into_response()
            }
        },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.sqlite");
    let cfg = config_file(
        dir.path(),
        &fake.base,
        &db,
        "personal_access_token = \"revoked-soon\"",
    );
    let args = [
        "sync",
        "--json",
        "--type",
        "daily_sleep",
        "--type",
        DENIED,
        "--no-backfill",
    ];
    let (out, _) = crate::hostile::run(&cfg, &args).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let reports: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let denied = reports
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["data_type"] == DENIED)
        .unwrap();
    assert!(!out.status.success(), "{stdout}");
    assert_eq!(denied["error_kind"], "unauthorized", "{denied}");
    assert!(
        denied["error"]
            .as_str()
            .unwrap()
            .contains("access token was rejected"),
        "{denied}"
    );
    assert_ne!(admitted.load(Ordering::SeqCst), usize::MAX, "one success");
}
