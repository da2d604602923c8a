//! What real accounts serve and real outages do (issues 8 and 9): odd and
//! missing days, documents that cannot be stored, fields outside the spec,
//! and an outage answering every request with an empty 200.

use jiff::ToSpan;
use ouradb::registry;
use ouradb::store::Store;
use ouradb::sync::{NoObserver, RunOptions};
use ouradb_sim::Faults;
use serde_json::{Value, json};

use crate::cli::{ouradb_at, write_config};
use crate::db;
use crate::util::{self, Env, assert_no_errors, reader};

fn stored(env: &Env, table: &str, id: &str) -> Option<Value> {
    reader(&env.db())
        .query_row(
            &format!("SELECT raw_json FROM {table} WHERE id = ?1"),
            [id],
            |r| r.get::<_, String>(0),
        )
        .ok()
        .map(|s| serde_json::from_str(&s).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_of_empty_pages_after_a_full_sync_changes_nothing() {
    let env = Env::start(120, |_| {}).await;
    assert_no_errors(&env.sync().await);
    let before = db::data_fingerprint(&env.db());
    let tags_before = util::count(&env.db(), "tag") + util::count(&env.db(), "enhanced_tag");
    assert!(tags_before > 0);

    env.sim.set_faults(Faults {
        empty_pages: true,
        ..Faults::default()
    });
    // Incremental runs, a day apart (long enough for any removal rule).
    for _ in 0..2 {
        assert_no_errors(&env.sync().await);
        assert_eq!(db::data_fingerprint(&env.db()), before, "incremental run");
        env.advance_days(1);
    }
    // A re-fetch of the whole history, twice, a day apart.
    let engine = env.engine(env.config());
    let types = engine.config().types.clone();
    let since = RunOptions {
        since: Some(util::today().saturating_sub((env.days as i64 + 5).days())),
        backfill: true,
    };
    for _ in 0..2 {
        let reports = engine.run(&types, since, &NoObserver).await;
        assert_no_errors(&reports);
        assert_eq!(db::data_fingerprint(&env.db()), before, "--since run");
        env.advance_days(1);
    }
    let store = Store::open_read_only(&env.db()).unwrap();
    assert!(store.pending_removals().unwrap().is_empty());
    assert!(store.quarantine_summary().unwrap().is_empty());
    env.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_with_odd_days_are_kept_and_unreadable_ones_quarantined() {
    let env = Env::start(30, |_| {}).await;
    assert_no_errors(&env.sync().await);
    let day = util::today().saturating_sub(1.day());
    let doc_on = |collection: &str, pick: &dyn Fn(&Value) -> bool| -> Value {
        env.sim
            .served_documents(collection)
            .into_iter()
            .rfind(|d| pick(d))
            .unwrap_or_else(|| panic!("a {collection} document"))
    };
    let on_day = |d: &Value| d["day"] == day.to_string();
    // Basic day form; a null day with a timestamp; no day and nothing to
    // derive one from; a tag whose day and timestamp are unreadable.
    let mut readiness = doc_on("daily_readiness", &on_day);
    readiness["day"] = json!(day.strftime("%Y%m%d").to_string());
    readiness["score"] = json!(11);
    let mut sleep = doc_on("daily_sleep", &on_day);
    sleep["day"] = Value::Null;
    sleep["score"] = json!(12);
    let mut stress = doc_on("daily_stress", &on_day);
    stress.as_object_mut().unwrap().remove("day");
    let tag = doc_on("tag", &|_| true);
    let tag_id = tag["id"].as_str().unwrap().to_owned();
    let tag_day: jiff::civil::Date = tag["day"].as_str().unwrap().parse().unwrap();
    let mut bad_tag = tag.clone();
    bad_tag["day"] = json!("someday");
    bad_tag["timestamp"] = json!("whenever");
    env.sim.with_data(|d| {
        let mut c = Vec::new();
        for (coll, doc, on) in [
            ("daily_readiness", &readiness, day),
            ("daily_sleep", &sleep, day),
            ("daily_stress", &stress, day),
            ("tag", &bad_tag, tag_day),
        ] {
            let id = doc["id"].as_str().unwrap();
            c.push(d.put_document(coll, id, on, doc.clone()).unwrap());
        }
        c
    });
    let since = RunOptions {
        since: Some(tag_day.min(day).saturating_sub(1.day())),
        backfill: true,
    };
    let engine = env.engine(env.config());
    let types = engine.config().types.clone();
    let reports = engine.run(&types, since, &NoObserver).await;
    assert_no_errors(&reports);

    let db = env.db();
    let day_col = |table: &str, id: &str| -> String {
        reader(&db)
            .query_row(
                &format!("SELECT day FROM {table} WHERE id = ?1"),
                [id],
                |r| r.get(0),
            )
            .unwrap()
    };
    let rid = readiness["id"].as_str().unwrap();
    assert_eq!(stored(&env, "daily_readiness", rid).unwrap(), readiness);
    assert_eq!(day_col("daily_readiness", rid), day.to_string());
    let sid = sleep["id"].as_str().unwrap();
    assert_eq!(stored(&env, "daily_sleep", sid).unwrap(), sleep);
    assert_eq!(
        day_col("daily_sleep", sid),
        day.to_string(),
        "from its timestamp"
    );
    // Unreadable copies go to quarantine; the stored copies stay.
    let stress_id = stress["id"].as_str().unwrap();
    assert!(stored(&env, "daily_stress", stress_id).is_some());
    assert_eq!(stored(&env, "tag", &tag_id).unwrap(), tag);
    let store = Store::open_read_only(&db).unwrap();
    let q = store.quarantine_summary().unwrap();
    let names: Vec<(&str, i64)> = q.iter().map(|q| (q.data_type.as_str(), q.count)).collect();
    assert_eq!(names, vec![("daily_stress", 1), ("tag", 1)]);
    assert!(q[0].latest_reason.contains("no readable `day`"), "{q:?}");
    assert!(
        store.pending_removals().unwrap().is_empty(),
        "a quarantined copy is still seen"
    );
    drop(store);

    // `ouradb status` shows them, `--json` too.
    let cfg = write_config(&env, env.dir.path(), &db);
    let out = ouradb_at(&cfg).arg("status").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("quarantined documents")
            && text.contains("daily_stress: 1 (latest: no readable `day`"),
        "{text}"
    );
    let out = ouradb_at(&cfg).args(["status", "--json"]).output().unwrap();
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let row = rows.iter().find(|r| r["data_type"] == "tag").unwrap();
    assert_eq!(row["quarantined"], 1);
    assert_eq!(row["pending_removal"], 0);
    let cva = rows
        .iter()
        .find(|r| r["data_type"] == "daily_cardiovascular_age")
        .unwrap();
    assert!(
        cva["added_columns"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["column"] == "timestamp" && c["sql_type"] == "TEXT"),
        "{cva}"
    );
    assert!(
        row["quarantine_reason"]
            .as_str()
            .unwrap()
            .contains("no readable `day`")
    );

    // `ouradb sync` counts them and exits 0: one bad document fails nothing.
    let out = ouradb_at(&cfg)
        .args(["sync", "--type", "daily_stress", "--since"])
        .arg(since.since.unwrap().to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains("quarantined"), "{summary}");
    let line = summary
        .lines()
        .find(|l| l.contains("daily_stress"))
        .unwrap();
    let cells: Vec<&str> = line.split('|').map(str::trim).collect();
    assert_eq!(cells[6], "1", "{summary}");

    // A day later, the same: nothing removed for being unreadable.
    env.advance_days(1);
    let engine = env.engine(env.config());
    assert_no_errors(&engine.run(&types, since, &NoObserver).await);
    assert_eq!(stored(&env, "tag", &tag_id).unwrap(), tag);

    // Good copies take them out of quarantine.
    let mut fixed = stress.clone();
    fixed["day"] = json!(day.to_string());
    env.sim.with_data(|d| {
        vec![
            d.set_document("daily_stress", fixed.clone()).unwrap(),
            d.set_document("tag", tag.clone()).unwrap(),
        ]
    });
    assert_no_errors(&engine.run(&types, since, &NoObserver).await);
    assert_eq!(stored(&env, "daily_stress", stress_id).unwrap(), fixed);
    let store = Store::open_read_only(&db).unwrap();
    assert!(store.quarantine_summary().unwrap().is_empty());
    env.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_field_outside_the_spec_becomes_a_column_on_an_existing_database_too() {
    let env = Env::start(90, |_| {}).await;
    assert_no_errors(&env.sync().await);
    let db = env.db();
    // The database as an ouradb without this feature left it: the field
    // only inside raw_json.
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(
            "ALTER TABLE daily_cardiovascular_age DROP COLUMN timestamp;
             DELETE FROM added_column WHERE table_name = 'daily_cardiovascular_age';",
        )
        .unwrap();
    }
    let rows = util::count(&db, "daily_cardiovascular_age");
    assert!(rows > 60, "{rows}");
    assert_no_errors(&env.sync().await);
    let (filled, typed): (i64, i64) = reader(&db)
        .query_row(
            "SELECT count(timestamp), count(CASE WHEN timestamp = json_extract(raw_json, '$.timestamp') THEN 1 END)
             FROM daily_cardiovascular_age",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((filled, typed), (rows, rows), "every row, old ones too");
    let store = Store::open_read_only(&db).unwrap();
    assert!(
        store
            .added_columns()
            .unwrap()
            .iter()
            .any(|c| c.table == "daily_cardiovascular_age" && c.column == "timestamp")
    );
    // The id-less documents are keyed by their day, one row per day.
    let dt = registry::find("daily_cardiovascular_age").unwrap();
    let distinct: i64 = reader(&db)
        .query_row(
            "SELECT count(DISTINCT day) FROM daily_cardiovascular_age WHERE id LIKE 'key:%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(distinct, rows);
    assert_eq!(
        store.sync_state(dt).unwrap().documents,
        rows,
        "no duplicates after re-fetches"
    );
    env.sim.stop().await;
}
