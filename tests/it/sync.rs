//! The sync engine against the simulator (issue 3 acceptance).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use jiff::ToSpan;
use ouradb::error_kind::ErrorKind;
use ouradb::registry::{self, DATA_TYPES, Priority, QueryStyle};
use ouradb_sim::Faults;
use serde_json::Value;

use crate::util::{self, Env, assert_no_errors, count, fingerprint, reader};

/// Every document the simulator serves for the type, as served (with the
/// simulator's quirks), by the id ouradb stores it under (sleep periods
/// the API marks deleted are not expected in the database).
fn sim_documents(env: &Env, dt: &registry::DataType) -> BTreeMap<String, Value> {
    env.sim
        .served_documents(dt.path)
        .into_iter()
        .map(|doc| (dt.document_key(&doc).expect("keyable"), doc))
        .filter(|(_, v)| v.get("type").and_then(Value::as_str) != Some("deleted"))
        .collect()
}

fn db_documents(db: &std::path::Path, table: &str) -> BTreeMap<String, Value> {
    let conn = reader(db);
    let mut stmt = conn
        .prepare(&format!("SELECT id, raw_json FROM {table}"))
        .unwrap();
    stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .unwrap()
        .map(|r| {
            let (id, raw) = r.unwrap();
            (id, serde_json::from_str(&raw).unwrap())
        })
        .collect()
}

/// Every scalar (or flattened nested scalar) of `doc` equals its column.
fn assert_columns_match(conn: &rusqlite::Connection, dt: &registry::DataType, doc: &Value) {
    let key = dt.document_key(doc).unwrap();
    let id = key.as_str();
    let cols: Vec<String> = conn
        .prepare(&format!(
            "SELECT name FROM pragma_table_info('{}')",
            dt.table
        ))
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut flat: HashMap<String, Value> = HashMap::new();
    fn walk(prefix: &str, v: &Value, out: &mut HashMap<String, Value>) {
        if let Value::Object(m) = v {
            for (k, v) in m {
                let name = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}_{k}")
                };
                match v {
                    Value::Object(_) => walk(&name, v, out),
                    Value::Array(_) => {}
                    _ => {
                        out.insert(name, v.clone());
                    }
                }
            }
        }
    }
    walk("", doc, &mut flat);
    for (name, expected) in flat {
        if !cols.contains(&name) {
            // Nested sample objects (e.g. heart_rate.interval) live in child tables.
            continue;
        }
        let got: rusqlite::types::Value = conn
            .query_row(
                &format!("SELECT \"{name}\" FROM {} WHERE id = ?1", dt.table),
                [id],
                |r| r.get(0),
            )
            .unwrap();
        let ok = match (&expected, &got) {
            (Value::Null, rusqlite::types::Value::Null) => true,
            (Value::Bool(b), rusqlite::types::Value::Integer(i)) => (*b as i64) == *i,
            (Value::Number(n), rusqlite::types::Value::Integer(i)) => n.as_f64() == Some(*i as f64),
            (Value::Number(n), rusqlite::types::Value::Real(f)) => {
                (n.as_f64().unwrap() - f).abs() < 1e-9
            }
            (Value::String(s), rusqlite::types::Value::Text(t)) => {
                s == t
                    || (Some(name.as_str()) == dt.day_field
                        && dt.document_day(doc).map(|d| d.to_string()).as_deref() == Some(t))
            }
            _ => false,
        };
        assert!(
            ok,
            "{}.{name} of {id}: expected {expected}, got {got:?}",
            dt.table
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_sync_stores_every_document_and_sample() {
    // The simulator's live-API quirks are on by default: id-less
    // daily_cardiovascular_age, undocumented fields, spec 1.41 values.
    let env = Env::start(730, |c| assert_eq!(c.quirks, ouradb_sim::Quirks::default())).await;
    let reports = env.sync().await;
    assert_no_errors(&reports);
    assert!(
        reports.iter().all(|r| r.counts.quarantined == 0),
        "{reports:#?}"
    );
    let db = env.db();
    let conn = reader(&db);

    for dt in DATA_TYPES {
        match dt.query {
            QueryStyle::DateRange | QueryStyle::List => {
                let expected = sim_documents(&env, dt);
                let got = db_documents(&db, dt.table);
                assert!(!expected.is_empty(), "simulator has {}", dt.name);
                assert_eq!(got.len(), expected.len(), "{} document count", dt.name);
                for (id, doc) in &expected {
                    assert_eq!(got.get(id), Some(doc), "{} {id}", dt.name);
                }
                // Typed columns: check a spread of documents per type.
                for doc in expected.values().step_by((expected.len() / 25).max(1)) {
                    assert_columns_match(&conn, dt, doc);
                }
                for s in dt.samples {
                    let items: usize = expected
                        .values()
                        .filter_map(|d| d[s.field]["items"].as_array())
                        .map(Vec::len)
                        .sum();
                    assert_eq!(count(&db, s.table) as usize, items, "{} rows", s.table);
                }
                for s in dt.interval_strings {
                    let chars: usize = expected
                        .values()
                        .filter_map(|d| d[s.field].as_str())
                        .map(str::len)
                        .sum();
                    assert_eq!(count(&db, s.table) as usize, chars, "{} rows", s.table);
                    // The decoding view steps from the start field by the
                    // registry's interval, one digit per row.
                    let doc = expected
                        .values()
                        .find(|d| d[s.field].as_str().is_some_and(|v| v.len() > 2))
                        .unwrap();
                    let start: jiff::Timestamp =
                        doc[s.start_field].as_str().unwrap().parse().unwrap();
                    let digits: Vec<i64> = doc[s.field]
                        .as_str()
                        .unwrap()
                        .chars()
                        .map(|c| c.to_digit(10).unwrap() as i64)
                        .collect();
                    let doc_key = dt.document_key(doc).unwrap();
                    let rows: Vec<(i64, i64, i64)> = conn
                        .prepare(&format!(
                            "SELECT \"offset\", timestamp, value FROM {} WHERE document_id = ?1 ORDER BY \"offset\"",
                            s.table
                        ))
                        .unwrap()
                        .query_map([doc_key.as_str()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                        .unwrap()
                        .map(Result::unwrap)
                        .collect();
                    assert_eq!(rows.len(), digits.len(), "{}", s.table);
                    for (i, (offset, ts, value)) in rows.iter().enumerate() {
                        assert_eq!(*offset, i as i64);
                        assert_eq!(
                            *ts,
                            start.as_second() + i as i64 * s.interval_seconds as i64,
                            "{}",
                            s.table
                        );
                        assert_eq!(*value, digits[i], "{}", s.table);
                    }
                }
            }
            QueryStyle::Single => {
                let expected: Value =
                    serde_json::from_str(&env.sim.read_data(|d| d.personal_info().to_owned()))
                        .unwrap();
                let got = db_documents(&db, dt.table);
                assert_eq!(got.values().next(), Some(&expected));
                assert_columns_match(&conn, dt, &expected);
            }
            QueryStyle::DateTimeRange => {
                let expected = match dt.name {
                    "heartrate" => env.sim.read_data(|d| d.heartrate().len()),
                    // Beats are derived, for the days the harness serves them.
                    "interbeat_interval" => env.sim.read_data(|d| {
                        let now = d.now().as_millisecond();
                        let days = i64::from(env.sim.config().interbeat_days.unwrap_or(3650));
                        let span = (now - days * 86_400_000, now);
                        ouradb_sim::ibi::beats(d, 7, span, None, usize::MAX, false).len()
                    }),
                    _ => env.sim.read_data(|d| d.battery().len()),
                };
                assert!(expected > 0);
                assert_eq!(count(&db, dt.table) as usize, expected, "{} rows", dt.name);
            }
        }
    }

    // Fields outside the spec became typed columns, filled.
    let store = ouradb::store::Store::open_read_only(&db).unwrap();
    let added: Vec<(String, String, String)> = store
        .added_columns()
        .unwrap()
        .into_iter()
        .map(|c| (c.table, c.column, c.sql_type))
        .collect();
    for want in [
        ("daily_cardiovascular_age", "timestamp", "TEXT"),
        ("daily_readiness", "resting_heart_rate", "INTEGER"),
        ("daily_sleep", "contributors_regularity", "INTEGER"),
    ] {
        assert!(
            added.contains(&(want.0.into(), want.1.into(), want.2.into())),
            "{want:?} in {added:?}"
        );
        let (filled, expected): (i64, i64) = conn
            .query_row(
                &format!(
                    "SELECT count({}), count(json_extract(raw_json, '$.{}')) FROM {}",
                    want.1,
                    want.1.replace("contributors_", "contributors."),
                    want.0
                ),
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert!(
            filled > 0 && filled == expected,
            "{want:?}: {filled} of {expected}"
        );
    }

    // Every type's cursor says it is done.
    for s in store.all_sync_states().unwrap() {
        assert!(s.backfill_complete, "{} backfill complete", s.data_type);
        assert!(s.last_success.is_some(), "{} succeeded", s.data_type);
        assert!(s.last_error.is_none(), "{} no error", s.data_type);
        assert!(s.high_water.is_some());
    }
    env.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_run_with_nothing_new_is_one_request_per_type() {
    let env = Env::start(120, |_| {}).await;
    assert_no_errors(&env.sync().await);
    let before = fingerprint(&env.db());
    env.sim.clear_request_log();

    let reports = env.sync().await;
    assert_no_errors(&reports);
    for r in &reports {
        assert_eq!(
            r.counts.inserted + r.counts.updated + r.counts.deleted,
            0,
            "{} changed rows",
            r.data_type
        );
    }
    let per = util::requests_per_collection(&env.sim);
    let lookback = env.config().lookback_days as usize + 2;
    for dt in DATA_TYPES {
        let n = per.get(dt.path).copied().unwrap_or(0);
        let allowed = match dt.query {
            // Raw beats: ~27 pages a night inside the lookback.
            QueryStyle::DateTimeRange if dt.backfill_priority == Priority::Raw => 1 + lookback * 30,
            // One page per 1000 samples inside the lookback (about 1,200 a day).
            QueryStyle::DateTimeRange => 1 + lookback * 2,
            _ => 1,
        };
        assert!(
            n >= 1 && n <= allowed,
            "{}: {n} requests (allowed {allowed})",
            dt.name
        );
    }
    assert_eq!(fingerprint(&env.db()), before);
    env.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_run_reflects_revisions_new_days_late_nights_and_deletions() {
    let env = Env::start(60, |_| {}).await;
    // `delete_some` removes the newest tag. Generated tags can be weeks
    // apart, so make the newest one today's: the runs below then look back
    // far enough to see it go, whatever the date the suite runs on.
    env.sim.with_data(|d| {
        let newest = d.documents("tag").last().expect("a tag").clone();
        let mut tag: Value = serde_json::from_str(&newest.json).unwrap();
        let today = util::today().to_string();
        let time = tag["timestamp"].as_str().unwrap()[10..].to_owned();
        tag["id"] = "newest-tag".into();
        tag["day"] = today.clone().into();
        tag["timestamp"] = format!("{today}{time}").into();
        vec![d.set_document("tag", tag).unwrap()]
    });
    assert_no_errors(&env.sync().await);

    let changes = env.sim.with_data(|d| {
        let mut c = d.revise_recent();
        c.extend(d.deliver_late());
        c.extend(d.delete_some());
        c
    });
    assert!(!changes.is_empty());
    let vanished_tag = changes
        .iter()
        .find(|c| c.op == ouradb_sim::Op::Delete && c.collection.ends_with("tag"))
        .expect("a tag vanished")
        .clone();
    let tag_table = registry::find(if vanished_tag.collection == "tag" {
        "tag"
    } else {
        "enhanced_tag"
    })
    .unwrap()
    .table;
    // Another tag the same day: a window whose only document vanished
    // looks like an outage, and an outage never removes anything.
    let raw: String = reader(&env.db())
        .query_row(
            &format!("SELECT raw_json FROM {tag_table} WHERE id = ?1"),
            [&vanished_tag.id],
            |r| r.get(0),
        )
        .unwrap();
    let mut other: Value = serde_json::from_str(&raw).unwrap();
    other["id"] = "another-tag".into();
    env.sim
        .with_data(|d| vec![d.set_document(vanished_tag.collection, other).unwrap()]);
    env.advance_days(2);

    let mut reports = env.sync().await;
    assert_no_errors(&reports);
    let db = env.db();
    // A tag missing from one complete re-fetch is not gone yet: it stays
    // (and shows) until a fetch at least a day later still lacks it.
    let still: i64 = reader(&db)
        .query_row(
            &format!("SELECT count(*) FROM {tag_table} WHERE id = ?1"),
            [&vanished_tag.id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(still, 1, "kept on the first miss");
    let pending: i64 = reader(&db)
        .query_row("SELECT count(*) FROM pending_removal", [], |r| r.get(0))
        .unwrap();
    assert_eq!(pending, 1);
    env.advance_days(1);
    let second = env.sync().await;
    assert_no_errors(&second);
    for (r, s) in reports.iter_mut().zip(second) {
        r.counts += s.counts;
    }
    for dt in DATA_TYPES
        .iter()
        .filter(|d| matches!(d.query, QueryStyle::DateRange | QueryStyle::List))
    {
        assert_eq!(
            db_documents(&db, dt.table),
            sim_documents(&env, dt),
            "{} after changes",
            dt.name
        );
    }
    let updated: u64 = reports.iter().map(|r| r.counts.updated).sum();
    let deleted: u64 = reports.iter().map(|r| r.counts.deleted).sum();
    let inserted: u64 = reports.iter().map(|r| r.counts.inserted).sum();
    assert!(
        updated > 0 && deleted > 0 && inserted > 0,
        "{updated} {deleted} {inserted}"
    );
    env.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_never_exceed_the_quota_in_any_window() {
    let env = Env::start(90, |c| {
        c.rate_limit = 50;
        c.rate_window = Duration::from_secs(3);
    })
    .await;
    let mut config = env.config();
    config.rate_limit.requests = 50;
    config.rate_limit.window = Duration::from_secs(3);
    // The margin absorbs requests reaching the server later than they were
    // admitted; on a loaded 2-core machine that takes 5 of 50, not 2 %.
    config.rate_limit.margin_percent = 10;
    config.types = ["heartrate", "ring_battery_level", "daily_sleep", "sleep"]
        .iter()
        .map(|n| registry::find(n).unwrap())
        .collect();
    let started = std::time::Instant::now();
    let reports = env.sync_with(config).await;
    assert_no_errors(&reports);
    let total: u32 = reports.iter().map(|r| r.requests).sum();
    assert!(total > 100, "the test must need several windows: {total}");
    let worst = env
        .sim
        .max_requests_in_window(util::TOKEN, Duration::from_secs(3));
    assert!(worst <= 50, "{worst} requests in one 3 s window");
    assert_eq!(
        util::status_count(&env.sim, 429),
        0,
        "no request was refused"
    );
    assert!(started.elapsed() < Duration::from_secs(60));
    env.sim.stop().await;
}

fn types(names: &[&str]) -> Vec<&'static registry::DataType> {
    names.iter().map(|n| registry::find(n).unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_syncs_on_one_database_share_one_quota() {
    let env = Env::start(90, |c| {
        c.rate_limit = 30;
        c.rate_window = Duration::from_secs(2);
        // Small pages: both syncs need several windows of requests.
        c.page_size = 5;
    })
    .await;
    let mut config = env.config();
    config.rate_limit.requests = 30;
    config.rate_limit.window = Duration::from_secs(2);
    // The margin absorbs requests reaching the server later than they were
    // admitted; on a loaded 2-core machine that takes 3 of 30, not 2 %.
    config.rate_limit.margin_percent = 10;
    // Two engines are two limiters with two connections to one file, as a
    // daemon and an `ouradb sync` beside it would be.
    let mut a = config.clone();
    a.types = types(&["heartrate", "daily_sleep"]);
    let mut b = config;
    b.types = types(&["ring_battery_level", "sleep", "daily_readiness"]);
    let started = std::time::Instant::now();
    let (ra, rb) = tokio::join!(env.sync_with(a), env.sync_with(b));
    assert_no_errors(&ra);
    assert_no_errors(&rb);
    let (na, nb): (u32, u32) = (
        ra.iter().map(|r| r.requests).sum(),
        rb.iter().map(|r| r.requests).sum(),
    );
    assert!(
        na > 30 && nb > 30,
        "each sync alone needs more than a window: {na} {nb}"
    );
    let worst = env
        .sim
        .max_requests_in_window(util::TOKEN, Duration::from_secs(2));
    assert!(worst <= 30, "{worst} requests in one 2 s window");
    assert_eq!(util::status_count(&env.sim, 429), 0, "no request refused");
    assert!(started.elapsed() < Duration::from_secs(60));
    env.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_stricter_than_the_config_slows_the_sync_down() {
    let env = Env::start(90, |c| {
        c.rate_limit = 20;
        c.rate_window = Duration::from_secs(2);
        c.rate_headers_always = true;
    })
    .await;
    // Configured for Oura's real quota; only the server's headers say 20 / 2 s.
    let mut config = env.config();
    config.types = types(&["heartrate", "ring_battery_level", "daily_sleep", "sleep"]);
    let reports = env.sync_with(config).await;
    assert_no_errors(&reports);
    let total: u32 = reports.iter().map(|r| r.requests).sum();
    assert!(total > 60, "the test must need several windows: {total}");
    let worst = env
        .sim
        .max_requests_in_window(util::TOKEN, Duration::from_secs(2));
    assert!(worst <= 20, "{worst} requests in one 2 s window");
    assert_eq!(util::status_count(&env.sim, 429), 0, "no request refused");
    env.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_end_in_the_same_database_as_a_clean_run() {
    // Injected 429s answer Retry-After = the rate window; keep it short.
    let env = Env::start(45, |c| c.rate_window = Duration::from_secs(1)).await;
    let clean = env.dir.path().join("clean.sqlite");
    assert_no_errors(&env.sync_with(env.config_for(&clean)).await);

    env.sim.set_faults(Faults {
        status_500: 0.04,
        status_502: 0.03,
        status_503: 0.03,
        status_504: 0.02,
        burst_429: 0.02,
        burst_len: 2,
        truncate: 0.04,
        malformed: 0.04,
        reset: 0.04,
        ..Faults::default()
    });
    let faulty = env.dir.path().join("faulty.sqlite");
    let mut config = env.config_for(&faulty);
    config.retry.max_attempts = 12;
    let reports = env.sync_with(config).await;
    assert_no_errors(&reports);
    let retried: u64 = [500u16, 502, 503, 504, 429]
        .iter()
        .map(|s| util::status_count(&env.sim, *s))
        .sum();
    assert!(retried > 0, "faults were injected");
    assert_eq!(fingerprint(&faulty), fingerprint(&clean));
    env.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forbidden_type_fails_alone_and_says_why() {
    let env = Env::start(20, |c| {
        c.token_scopes
            .insert(util::TOKEN.to_owned(), util::scopes_without("workout"));
    })
    .await;
    let reports = env.sync().await;
    let workout = reports.iter().find(|r| r.data_type == "workout").unwrap();
    let err = workout
        .error
        .as_deref()
        .expect("workout fails without its scope");
    assert!(err.contains("workout") && err.contains("403"), "{err}");
    for r in reports.iter().filter(|r| r.data_type != "workout") {
        assert!(r.error.is_none(), "{}: {:?}", r.data_type, r.error);
    }
    let store = ouradb::store::Store::open_read_only(&env.db()).unwrap();
    let s = store
        .sync_state(registry::find("workout").unwrap())
        .unwrap();
    assert!(s.last_error.as_deref().unwrap().contains("403"));
    assert!(s.last_error_kind.is_some());
    env.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_token_is_a_clear_error_for_every_type() {
    let env = Env::start(5, |_| {}).await;
    let mut config = env.config();
    config.token = Some(ouradb::config::Secret::new("wrong-token"));
    let reports = env.sync_with(config).await;
    for r in &reports {
        let e = r
            .error
            .as_deref()
            .unwrap_or_else(|| panic!("{} must fail", r.data_type));
        assert!(e.contains("401") && e.contains("token"), "{e}");
        assert!(!e.contains("wrong-token"), "the token leaked: {e}");
    }
    env.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_a_network_error() {
    let env = Env::start(5, |_| {}).await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mut config = env.config();
    config.base_url = url::Url::parse(&format!("http://127.0.0.1:{port}")).unwrap();
    config.retry.max_attempts = 2;
    config.types = vec![registry::find("daily_sleep").unwrap()];
    let reports = env.sync_with(config).await;
    let e = reports[0].error.as_deref().unwrap();
    assert!(
        e.contains("cannot reach") && e.contains("api.base_url"),
        "{e}"
    );
    assert_eq!(
        reports[0].error_kind.map(ErrorKind::as_str),
        Some("network")
    );
    env.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboards_reading_during_a_backfill_see_whole_pages() {
    let env = Env::start(200, |_| {}).await;
    // Create the schema first so the reader can start immediately.
    drop(ouradb::store::Store::open(&env.db()).unwrap());
    let db = env.db();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader_stop = stop.clone();
    let reader = std::thread::spawn(move || {
        let conn = reader(&db);
        let mut reads = 0u32;
        let mut last_docs = 0i64;
        while !reader_stop.load(std::sync::atomic::Ordering::SeqCst) {
            let days: i64 = conn
                .query_row("SELECT count(*) FROM daily_summary", [], |r| r.get(0))
                .expect("daily_summary readable during the backfill");
            let _: i64 = conn
                .query_row("SELECT count(*) FROM sleep_night", [], |r| r.get(0))
                .expect("sleep_night readable during the backfill");
            // Within one read transaction, the counter in sync_state and
            // the rows it counts always agree: no partial page is visible.
            conn.execute_batch("BEGIN").unwrap();
            let stored: i64 = conn
                .query_row("SELECT count(*) FROM sleep", [], |r| r.get(0))
                .unwrap();
            let counted: i64 = conn
                .query_row(
                    "SELECT coalesce(sum(documents), 0) FROM sync_state WHERE data_type = 'sleep'",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            conn.execute_batch("COMMIT").unwrap();
            assert_eq!(stored, counted, "a half-written page was visible");
            assert!(stored >= last_docs);
            last_docs = stored;
            let _ = days;
            reads += 1;
        }
        reads
    });
    assert_no_errors(&env.sync().await);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let reads = reader.join().expect("reader saw no errors");
    assert!(reads > 3, "the reader ran during the sync ({reads} reads)");
    env.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_scope_is_skipped_and_not_retried_under_the_same_grant() {
    let env = Env::start(10, |c| {
        c.token_scopes
            .insert(util::TOKEN.to_owned(), util::scopes_without("workout"));
    })
    .await;
    let engine = env.engine(env.config());
    let types = engine.config().types.clone();
    let opts = ouradb::sync::RunOptions {
        since: None,
        backfill: true,
    };
    for _ in 0..3 {
        let reports = engine.run(&types, opts, &ouradb::sync::NoObserver).await;
        let w = reports.iter().find(|r| r.data_type == "workout").unwrap();
        assert_eq!(
            w.error_kind.map(ErrorKind::as_str),
            Some("scope_not_granted")
        );
        assert!(
            w.error
                .as_deref()
                .unwrap()
                .contains("skipped: scope `workout` not granted")
        );
    }
    let per = util::requests_per_collection(&env.sim);
    assert_eq!(
        per.get("workout"),
        Some(&1),
        "asked once, then skipped: {per:?}"
    );

    let store = ouradb::store::Store::open_read_only(&env.db()).unwrap();
    let states = store.all_sync_states().unwrap();
    let table =
        ouradb::cli::status_table(&states, jiff::Timestamp::now(), Duration::from_secs(3600))
            .to_string();
    let line = table.lines().find(|l| l.contains("workout")).unwrap();
    assert!(
        line.contains("skipped") && line.contains("scope `workout` not granted"),
        "{line}"
    );
    let sleep = table.lines().find(|l| l.contains("daily_sleep")).unwrap();
    assert!(sleep.contains("fresh"), "{sleep}");
    env.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn since_refetches_days_older_than_the_lookback() {
    let env = Env::start(40, |_| {}).await;
    assert_no_errors(&env.sync().await);
    // Oura revises a document three weeks back or more, far outside the
    // lookback (the newest such: the simulated ring is not worn every day).
    let three_weeks = util::today().saturating_sub(jiff::Span::new().days(21));
    let (old_day, mut doc) = env.sim.read_data(|d| {
        let doc = d
            .documents("daily_readiness")
            .iter()
            .rfind(|x| x.day <= three_weeks)
            .expect("a readiness document three weeks back or more");
        (doc.day, serde_json::from_str::<Value>(&doc.json).unwrap())
    });
    doc["score"] = serde_json::json!(12);
    let id = doc["id"].as_str().unwrap().to_owned();
    env.sim
        .with_data(|d| vec![d.set_document("daily_readiness", doc).unwrap()]);

    let stored_score = |env: &Env| -> i64 {
        reader(&env.db())
            .query_row(
                "SELECT score FROM daily_readiness WHERE id = ?1",
                [&id],
                |r| r.get(0),
            )
            .unwrap()
    };
    assert_no_errors(&env.sync().await);
    assert_ne!(
        stored_score(&env),
        12,
        "a plain incremental run does not look that far back"
    );

    let engine = env.engine(env.config());
    let dt = registry::find("daily_readiness").unwrap();
    let opts = ouradb::sync::RunOptions {
        since: Some(old_day.saturating_sub(jiff::Span::new().days(1))),
        backfill: true,
    };
    let r = engine.run_type(dt, opts, &ouradb::sync::NoObserver).await;
    assert!(r.error.is_none(), "{r:?}");
    assert_eq!(r.counts.updated, 1);
    assert_eq!(stored_score(&env), 12);
    env.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deletion_first_seen_behind_the_lookback_is_confirmed_by_ordinary_runs() {
    use jiff::ToSpan;
    use ouradb::store::Store;
    use ouradb::sync::{NoObserver, RunOptions};

    let env = Env::start(60, |_| {}).await;
    assert_no_errors(&env.sync().await);
    // A tag well behind the lookback, and another one its day so the day's
    // re-fetch is not empty (an empty answer proves nothing).
    let old = util::today().saturating_sub(10.days());
    let gone = env
        .sim
        .served_documents("tag")
        .into_iter()
        .rfind(|d| {
            d["day"]
                .as_str()
                .is_some_and(|s| s <= old.to_string().as_str())
        })
        .expect("a tag 10 days back or older");
    let gone_id = gone["id"].as_str().unwrap().to_owned();
    let day: jiff::civil::Date = gone["day"].as_str().unwrap().parse().unwrap();
    let mut other = gone.clone();
    other["id"] = "kept-tag".into();
    env.sim.with_data(|d| {
        let mut c = vec![d.set_document("tag", other).unwrap()];
        c.extend(d.remove_document("tag", &gone_id));
        c
    });
    // `sync --since` re-fetches the day and misses the tag for the first time.
    let engine = env.engine(env.config());
    let types = engine.config().types.clone();
    let since = RunOptions {
        since: Some(day.saturating_sub(1.day())),
        backfill: false,
    };
    assert_no_errors(&engine.run(&types, since, &NoObserver).await);
    let stored = |id: &str| {
        reader(&env.db())
            .query_row("SELECT count(*) FROM tag WHERE id = ?1", [id], |r| {
                r.get::<_, i64>(0)
            })
            .unwrap()
    };
    assert_eq!(stored(&gone_id), 1, "kept on the first miss");
    let pending = Store::open_read_only(&env.db())
        .unwrap()
        .pending_removals()
        .unwrap();
    assert_eq!(pending.get("tag"), Some(&1));

    // Ordinary runs only look back a few days, yet a day later the tag's
    // day is fetched again and the deletion confirmed.
    env.advance_days(1);
    assert_no_errors(&env.sync().await);
    assert_eq!(stored(&gone_id), 0, "removed once the miss is confirmed");
    assert_eq!(stored("kept-tag"), 1);
    let store = Store::open_read_only(&env.db()).unwrap();
    assert!(store.pending_removals().unwrap().is_empty());
    env.sim.stop().await;
}

/// Every type is in flight from the start (the in-flight cap, not the
/// number of types, bounds the work), so no time series runs alone at the
/// end of a backfill: each type's first request comes before the last
/// request of every time series.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_starts_before_a_time_series_finishes() {
    let env = Env::start(90, |_| {}).await;
    assert_no_errors(&env.sync().await);
    // Collections with the index of their first and last request.
    let mut span: Vec<(String, usize, usize)> = Vec::new();
    for (i, e) in env.sim.request_log().iter().enumerate() {
        let Some(coll) = util::collection_of(&e.path) else {
            continue;
        };
        match span.iter_mut().find(|(c, _, _)| c == coll) {
            Some(s) => s.2 = i,
            None => span.push((coll.to_owned(), i, i)),
        }
    }
    let of = |path: &str| span.iter().find(|(c, _, _)| c == path).unwrap();
    let last_start = span.iter().map(|(_, first, _)| *first).max().unwrap();
    for dt in DATA_TYPES.iter().filter(|d| d.is_time_series()) {
        assert!(
            last_start < of(dt.path).2,
            "{} finished before every type had started: {span:?}",
            dt.name
        );
    }
    env.sim.stop().await;
}

/// Gives every simulated ring the set-up time `at` (the epoch placeholder
/// ring too, which would otherwise leave the start of history unknown),
/// exactly as written: `9999-12-31T00:00:00+00:00` is past the last instant
/// jiff (and the simulator's own indexing) can represent.
fn set_every_ring_set_up_at(env: &Env, at: &str) {
    let rings = env.sim.served_documents("ring_configuration");
    assert!(rings.len() >= 3, "{rings:?}");
    env.sim.with_data(|d| {
        rings
            .into_iter()
            .map(|mut r| {
                r["set_up_at"] = Value::from(at);
                let id = r["id"].as_str().unwrap().to_owned();
                d.put_document("ring_configuration", &id, util::today(), r)
                    .unwrap()
            })
            .collect()
    });
}

/// Days of `table` stored before `day`.
fn days_before(env: &Env, table: &str, day: jiff::civil::Date) -> i64 {
    reader(&env.db())
        .query_row(
            &format!("SELECT count(*) FROM {table} WHERE day < ?1"),
            [day.to_string()],
            |r| r.get(0),
        )
        .unwrap()
}

/// Every date-ranged type's backfill is complete with its floor at `start`.
fn assert_backfilled_to(env: &Env, start: jiff::civil::Date) {
    let store = ouradb::store::Store::open_read_only(&env.db()).unwrap();
    for dt in DATA_TYPES.iter().filter(|d| d.has_history()) {
        let s = store.sync_state(dt).unwrap();
        assert!(s.backfill_complete, "{}: {s:?}", dt.name);
        assert_eq!(s.backfill_floor, Some(start), "{}", dt.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ring_set_up_in_the_future_does_not_end_the_backfill() {
    for future in [
        "9999-12-31T00:00:00+00:00".to_owned(),
        // Three hours from now at +14:00: its local day is tomorrow or the
        // day after, and the instant has not happened yet.
        (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(3))
            .to_zoned(jiff::tz::TimeZone::fixed(jiff::tz::offset(14)))
            .strftime("%Y-%m-%dT%H:%M:%S%:z")
            .to_string(),
    ] {
        let env = Env::start(60, |_| {}).await;
        set_every_ring_set_up_at(&env, &future);
        assert_no_errors(&env.sync().await);
        let config = env.config();
        assert_backfilled_to(&env, config.backfill_start);
        let sleep = registry::find("daily_sleep").unwrap();
        assert_eq!(
            db_documents(&env.db(), sleep.table).len(),
            sim_documents(&env, sleep).len(),
            "{future}: the whole history is stored"
        );
        assert!(days_before(&env, "daily_sleep", util::today() - 50.days()) > 0);
        env.sim.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_of_history_moved_earlier_reopens_a_finished_backfill() {
    let env = Env::start(60, |_| {}).await;
    let set_up = |days_ago: i64| {
        (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24 * days_ago))
            .strftime("%Y-%m-%dT%H:%M:%S+00:00")
            .to_string()
    };
    // A ring set up 20 days ago: history starts a week before.
    set_every_ring_set_up_at(&env, &set_up(20));
    assert_no_errors(&env.sync().await);
    let first_start = util::today() - 27.days();
    assert_backfilled_to(&env, first_start);
    assert_eq!(days_before(&env, "daily_sleep", first_start), 0);

    // The set-up time is corrected to 40 days ago: the 20 days between
    // were never fetched, so the finished backfill goes on down to them.
    set_every_ring_set_up_at(&env, &set_up(40));
    assert_no_errors(&env.sync().await);
    let second_start = util::today() - 47.days();
    assert_backfilled_to(&env, second_start);
    let sleep = registry::find("daily_sleep").unwrap();
    let reopened = sim_documents(&env, sleep)
        .values()
        .filter(|d| {
            let day: jiff::civil::Date = d["day"].as_str().unwrap().parse().unwrap();
            second_start <= day && day < first_start
        })
        .count();
    assert!(reopened >= 10, "{reopened}");
    assert_eq!(
        days_before(&env, "daily_sleep", first_start),
        reopened as i64,
        "the reopened days are stored"
    );
    assert_eq!(days_before(&env, "daily_sleep", second_start), 0);
    // Moving it later again changes nothing: nothing stored is dropped.
    set_every_ring_set_up_at(&env, &set_up(10));
    assert_no_errors(&env.sync().await);
    assert_backfilled_to(&env, second_start);
    env.sim.stop().await;
}

/// The first day a data request asked for (`start_date` or
/// `start_datetime`), from the simulator's request log.
fn start_day(e: &ouradb_sim::RequestLogEntry) -> Option<jiff::civil::Date> {
    url::form_urlencoded::parse(e.query.as_bytes())
        .find(|(k, _)| k == "start_date" || k == "start_datetime")
        .and_then(|(_, v)| v.get(..10)?.parse().ok())
}

/// Whether a data request asked for a time series' days before `inc_from`
/// (its backfill).
fn is_series_backfill(e: &ouradb_sim::RequestLogEntry, inc_from: jiff::civil::Date) -> bool {
    util::collection_of(&e.path)
        .and_then(registry::find)
        .is_some_and(|dt| dt.is_time_series())
        && start_day(e).is_some_and(|d| d < inc_from)
}

/// `sync.max_in_flight` caps the data requests in flight across every type
/// of a run, windows of one type and retries included: the simulator, which
/// holds each request 20 ms, never answers more at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_never_sees_more_requests_at_once_than_max_in_flight() {
    let env = Env::start(120, |c| c.latency = Duration::from_millis(20)).await;
    let mut config = env.config();
    config.max_in_flight = 4;
    assert_no_errors(&env.sync_with(config).await);
    let most = env.sim.max_concurrent_requests();
    assert!(most <= 4, "{most} requests at once with max_in_flight = 4");
    assert!(most >= 3, "the requests overlapped: {most}");
    let first = util::status_count(&env.sim, 200);

    // The default (16) is reached on a first sync, not passed.
    env.sim.stats().reset_max_concurrent();
    let other = env.dir.path().join("other.sqlite");
    assert_no_errors(&env.sync_with(env.config_for(&other)).await);
    let most = env.sim.max_concurrent_requests();
    assert!(most <= 16, "{most} requests at once with the default 16");
    assert!(
        most > 8,
        "a first sync keeps many requests in flight: {most}"
    );
    assert_eq!(fingerprint(&env.db()), fingerprint(&other));
    assert!(util::status_count(&env.sim, 200) > first);
    env.sim.stop().await;
}

/// Pages fetched but not yet stored keep a place: with the store thread
/// held, every type's windows running side by side fetch no more than
/// twice `sync.max_in_flight` pages between them (as many page places as
/// the cap, then the requests' own). Before, each window fetched its page
/// and the next one ahead, so a household's catch-up piled up hundreds of
/// pages in memory waiting for the one store thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_awaiting_the_store_thread_count_against_max_in_flight() {
    let env = Env::start(365, |c| c.latency = Duration::from_millis(20)).await;
    let mut config = env.config();
    config.max_in_flight = 4;
    let engine = std::sync::Arc::new(env.engine(config));
    let data_requests = || {
        env.sim
            .request_log()
            .iter()
            .filter(|e| util::collection_of(&e.path).is_some())
            .count()
    };
    let run = tokio::spawn({
        let engine = engine.clone();
        async move {
            let types = engine.config().types.clone();
            let opts = ouradb::sync::RunOptions {
                since: None,
                backfill: true,
            };
            engine.run(&types, opts, &ouradb::sync::NoObserver).await
        }
    });
    // Every type's jobs are under way (metadata is fetched first, alone).
    while data_requests() < 30 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (held_tx, held_rx) = tokio::sync::oneshot::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let store = engine.store().clone();
    let hold = tokio::spawn(async move { store.hold(held_tx, release_rx).await });
    held_rx.await.expect("the store thread is held");
    let at_hold = data_requests();
    // Nothing is stored from here on; wait until the requests stop (at
    // most three seconds: twenty 20 ms round trips per second per place).
    let mut last = (at_hold, std::time::Instant::now());
    #[allow(
        clippy::disallowed_methods,
        reason = "a bound on waiting, not a measurement"
    )]
    while last.1.elapsed() < Duration::from_millis(600) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = data_requests();
        if now != last.0 {
            last = (now, std::time::Instant::now());
        }
        if now > at_hold + 40 {
            break;
        }
    }
    let fetched = last.0 - at_hold;
    release_tx.send(()).expect("release the store thread");
    hold.await.expect("hold task");
    assert_no_errors(&run.await.expect("sync task"));
    assert!(
        fetched <= 8,
        "{fetched} pages fetched while none could be stored, with max_in_flight = 4"
    );
    env.sim.stop().await;
}

/// With the in-flight cap binding, every type's incremental run and the
/// daily types' history are served before the time series' old history:
/// the first request for an old time series' day waits until every
/// incremental window and much of the daily types' history were sent (and
/// from then on takes only the permits the daily types leave unused).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_tight_cap_daily_types_and_recent_days_come_before_old_time_series() {
    let env = Env::start(365, |c| c.latency = Duration::from_millis(20)).await;
    let mut config = env.config();
    config.max_in_flight = 4;
    assert_no_errors(&env.sync_with(config).await);
    let inc_from = ouradb::sync::plan::incremental_window(None, None, util::today(), 3).from;
    let log: Vec<_> = env
        .sim
        .request_log()
        .into_iter()
        .filter(|e| util::collection_of(&e.path).is_some())
        .collect();
    let is_daily = |e: &ouradb_sim::RequestLogEntry| {
        util::collection_of(&e.path)
            .and_then(registry::find)
            .is_some_and(|d| d.query == QueryStyle::DateRange)
    };
    let seq: String = log
        .iter()
        .map(|e| {
            if is_daily(e) {
                'D'
            } else if is_series_backfill(e, inc_from) {
                'S'
            } else {
                'o'
            }
        })
        .collect();
    let first_series = seq.find('S').unwrap();
    let dailies = seq.matches('D').count();
    let dailies_first = seq[..first_series].matches('D').count();
    assert!(
        seq.matches('S').count() > 3 * dailies,
        "the time series are most of the work: {seq}"
    );
    // Served first come, a time series' backfill follows its own
    // incremental window within a few requests.
    assert!(
        dailies_first * 3 > dailies,
        "{dailies_first} of {dailies} daily requests before the first old time series: {seq}"
    );
    // Every incremental window (padded a day earlier for the daily types)
    // before any old time series; raw beats (`Priority::Raw`) rank below
    // everything, their incremental window included.
    let raw = |e: &ouradb_sim::RequestLogEntry| {
        util::collection_of(&e.path)
            .and_then(registry::find)
            .is_some_and(|d| d.backfill_priority == Priority::Raw)
    };
    let last_incremental = log
        .iter()
        .rposition(|e| {
            !raw(e) && start_day(e).is_some_and(|d| d >= inc_from.saturating_sub(1.day()))
        })
        .unwrap();
    assert!(last_incremental < first_series, "{seq}");
    env.sim.stop().await;
}

/// Many backfill windows of a time series run side by side (as many as the
/// in-flight cap allows, not three): while the newest window's second page
/// is slow and then fails, every older window is stored, yet the floor stays
/// above the failed window; the next run fetches it and completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_backfill_windows_finish_beside_a_failed_one_and_the_floor_waits() {
    use crate::hostile::{Fake, json_page};
    use axum::response::IntoResponse;
    use ouradb::sync::plan;
    use std::sync::atomic::{AtomicBool, Ordering};
    let hr = registry::find("heartrate").unwrap();
    let today = util::today();
    let inc = plan::incremental_window(None, None, today, 3);
    let start = inc
        .from
        .saturating_sub((12 * hr.backfill_window_days as i64).days());
    let windows = plan::backfill_windows(inc.from, start, hr.backfill_window_days);
    assert_eq!(windows.len(), 12);
    let newest = windows[0].from.to_string();
    let failing = std::sync::Arc::new(AtomicBool::new(true));
    let (fail, slow) = (failing.clone(), failing.clone());
    let newest_page_2 = move |s: &crate::hostile::Seen| {
        s.param("next_token").is_some()
            && s.param("start_datetime")
                .is_some_and(|d| d.starts_with(&newest))
    };
    let is_slow = newest_page_2.clone();
    // Two pages per window, 300 ms each; the newest window's second page
    // takes 2 s and then fails while the run's first try lasts.
    let fake = Fake::start_delayed(
        move |s| {
            if is_slow(s) && slow.load(Ordering::SeqCst) {
                Duration::from_secs(2)
            } else {
                Duration::from_millis(300)
            }
        },
        move |s| {
            if newest_page_2(s) && fail.load(Ordering::SeqCst) {
                return (axum::http::StatusCode::UNPROCESSABLE_ENTITY, "{\"detail\":\"no\"}")
                    .into_response();
            }
            let from: jiff::civil::Date = s.param("start_datetime").unwrap()[..10].parse().unwrap();
            let (day, next) = match s.param("next_token") {
                None => (from, Some("2".to_owned())),
                Some(_) => (from.tomorrow().unwrap(), None),
            };
            json_page(
                serde_json::json!([{"bpm": 60, "source": "awake", "timestamp": format!("{day}T12:00:00+00:00")}]),
                next,
            )
        },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.sqlite");
    let mut config = ouradb::config::Config::for_base_url(&fake.base, "tok", db.clone());
    config.backfill_start = start;
    let engine = || {
        ouradb::sync::engine_from_config(
            std::sync::Arc::new(config.clone()),
            None,
            tokio_util::sync::CancellationToken::new(),
            ouradb::sync::system_clock(),
        )
        .unwrap()
    };
    let opts = ouradb::sync::RunOptions {
        since: None,
        backfill: true,
    };
    let floor = || -> (Option<String>, bool) {
        reader(&db)
            .query_row(
                "SELECT backfill_floor, backfill_complete FROM sync_state WHERE data_type = 'heartrate'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap()
    };
    let stored_days = || -> Vec<String> {
        let conn = reader(&db);
        let mut stmt = conn
            .prepare("SELECT date(ts, 'unixepoch') FROM heartrate ORDER BY ts")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };

    let reports = engine().run(&[hr], opts, &ouradb::sync::NoObserver).await;
    assert!(reports[0].error.is_some(), "{reports:?}");
    let days = stored_days();
    for w in &windows[1..] {
        assert!(
            days.contains(&w.from.to_string())
                && days.contains(&w.from.tomorrow().unwrap().to_string()),
            "window {}..{} finished beside the slow one: {days:?}",
            w.from,
            w.to
        );
    }
    // Its first page is stored, its second is not.
    assert!(
        !days.contains(&windows[0].from.tomorrow().unwrap().to_string()),
        "{days:?}"
    );
    assert_eq!(
        floor(),
        (Some(inc.from.to_string()), false),
        "the floor stays above the failed window"
    );

    failing.store(false, Ordering::SeqCst);
    assert_no_errors(&engine().run(&[hr], opts, &ouradb::sync::NoObserver).await);
    assert_eq!(floor(), (Some(start.to_string()), true));
    let days = stored_days();
    for w in &windows {
        assert!(days.contains(&w.from.to_string()), "{w:?} in {days:?}");
    }
}
