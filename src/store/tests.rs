//! Unit tests for what integration tests cannot see: per-connection pragmas,
//! the migration list and the column mapping internals.

use rusqlite::types::{Value as Sql, ValueRef};
use serde_json::json;

use super::mapping::{self, SeriesColumn};
use super::*;
use crate::registry;

fn temp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db.sqlite")).unwrap();
    (dir, store)
}

fn pragma(conn: &Connection, name: &str) -> String {
    conn.query_row(&format!("PRAGMA {name}"), [], |r| {
        Ok(match r.get_ref(0)? {
            ValueRef::Integer(i) => i.to_string(),
            ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
            other => format!("{other:?}"),
        })
    })
    .unwrap()
}

#[test]
fn pragmas_are_set_on_every_open() {
    let (dir, store) = temp_store();
    let check = |conn: &Connection| {
        assert_eq!(pragma(conn, "journal_mode"), "wal");
        assert_eq!(pragma(conn, "synchronous"), "1", "NORMAL");
        assert_eq!(pragma(conn, "foreign_keys"), "1");
    };
    check(&store.conn);
    drop(store);
    let again = Store::open(&dir.path().join("db.sqlite")).unwrap();
    check(&again.conn);
    let ro = Store::open_read_only(&dir.path().join("db.sqlite")).unwrap();
    assert_eq!(pragma(&ro.conn, "busy_timeout"), "5000");
    assert_eq!(pragma(&ro.conn, "journal_mode"), "wal");
}

#[test]
fn migrations_are_consecutive_from_one() {
    for (i, m) in schema::MIGRATIONS.iter().enumerate() {
        assert_eq!(m.version, i as i64 + 1);
    }
    assert_eq!(SCHEMA_VERSION, schema::MIGRATIONS.len() as i64);
}

#[test]
fn json_serialization_is_canonical() {
    // Unchanged detection compares serialized text; that only works when
    // key order does not depend on how the API ordered them.
    let a: serde_json::Value = serde_json::from_str(r#"{"b":1,"a":{"d":2,"c":3}}"#).unwrap();
    let b: serde_json::Value = serde_json::from_str(r#"{"a":{"c":3,"d":2},"b":1}"#).unwrap();
    assert_eq!(
        serde_json::to_string(&a).unwrap(),
        serde_json::to_string(&b).unwrap()
    );
    assert_eq!(
        serde_json::to_string(&a).unwrap(),
        r#"{"a":{"c":3,"d":2},"b":1}"#
    );
}

#[test]
fn flatten_prefixes_resolve_nested_objects_and_top_level_fields() {
    let (_dir, store) = temp_store();
    let sleep = registry::find("sleep").unwrap();
    let mapping::Shape::Document(t) = store.shape(sleep).unwrap() else {
        panic!("sleep is a document type");
    };
    let col = |name: &str| t.columns.iter().find(|c| c.name == name).unwrap();
    let doc = json!({
        "readiness_score_delta": 4,
        "readiness": {"score": 80, "contributors": {"hrv_balance": 70}},
    });
    assert_eq!(col("readiness_score").lookup(&doc), Some(&json!(80)));
    assert_eq!(
        col("readiness_contributors_hrv_balance").lookup(&doc),
        Some(&json!(70))
    );
    assert_eq!(col("readiness_score_delta").lookup(&doc), Some(&json!(4)));
    assert_eq!(col("readiness_temperature_deviation").lookup(&doc), None);
    assert_eq!(t.columns[0].name, "id");
}

#[test]
fn series_extra_is_null_only_for_fully_restorable_rows() {
    let (_dir, store) = temp_store();
    let hr = registry::find("heartrate").unwrap();
    let mapping::Shape::Series(t) = store.shape(hr).unwrap() else {
        panic!("heartrate is a time series");
    };
    assert!(t.columns.contains(&SeriesColumn::Ts));
    let extra_of = |row: serde_json::Value| {
        let values = mapping::series_values(t, hr, &row).unwrap();
        let i = t
            .columns
            .iter()
            .position(|c| *c == SeriesColumn::Extra)
            .unwrap();
        values[i].clone()
    };
    let plain = json!({"timestamp": "2024-03-01T10:00:00+00:00", "timestamp_unix": 1709287200000i64, "bpm": 61, "source": "awake"});
    assert_eq!(extra_of(plain), Sql::Null);
    let offset = json!({"timestamp": "2024-03-01T12:00:00+02:00", "timestamp_unix": 1709287200000i64, "bpm": 61, "source": "awake"});
    assert_eq!(extra_of(offset), Sql::Null);
    let unknown = json!({"timestamp": "2024-03-01T10:00:00+00:00", "timestamp_unix": 1709287200000i64, "bpm": 61, "source": "awake", "confidence": 0.9});
    assert!(matches!(extra_of(unknown), Sql::Text(s) if s.contains("confidence")));
    let subsecond = json!({"timestamp": "2024-03-01T10:00:00.250+00:00", "timestamp_unix": 1709287200250i64, "bpm": 61, "source": "awake"});
    assert!(matches!(extra_of(subsecond), Sql::Text(_)));
    let disagree = json!({"timestamp": "2024-03-01T10:00:00+00:00", "timestamp_unix": 1, "bpm": 61, "source": "awake"});
    assert!(matches!(extra_of(disagree), Sql::Text(_)));
}

#[test]
fn busy_waits_start_fine_and_end_after_the_busy_timeout() {
    use super::schema::busy_delay;
    assert_eq!(busy_delay(0), Some(std::time::Duration::from_micros(100)));
    assert_eq!(busy_delay(49), Some(std::time::Duration::from_micros(100)));
    assert_eq!(busy_delay(50), Some(std::time::Duration::from_millis(2)));
    let total: std::time::Duration = (0..).map_while(busy_delay).sum();
    assert!(
        total >= std::time::Duration::from_millis(4990)
            && total <= std::time::Duration::from_millis(5010),
        "{total:?}"
    );
}

/// Writers wait for another connection's lock by steps of 0.1 ms, not by
/// SQLite's 1, 2, 5 ms: the lock this process meets most is its own
/// short commit or request-account lease.
#[test]
fn a_short_lock_is_waited_out_in_steps_under_a_millisecond() {
    use std::time::{Duration, Instant};
    let (dir, mut store) = temp_store();
    let path = dir.path().join("db.sqlite");
    let sleep = registry::find("sleep").unwrap();
    let mut best = Duration::MAX;
    for _ in 0..5 {
        let other = Connection::open(&path).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let holder = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_micros(3500));
            other.execute_batch("COMMIT").unwrap();
            Instant::now()
        });
        std::thread::sleep(Duration::from_micros(200));
        store
            .record_attempt(sleep, jiff::Timestamp::UNIX_EPOCH)
            .unwrap();
        let done = Instant::now();
        let released = holder.join().unwrap();
        best = best.min(done.saturating_duration_since(released));
    }
    // SQLite's own handler would try again 8 ms in: 4.5 ms after release.
    assert!(best < Duration::from_millis(1), "{best:?}");
}

/// A file at schema 10 (before accounts) holding a little of everything the
/// accounts migration rebuilds: documents with sample rows, a column ouradb
/// added, series rows, quarantine, pending removal, history, cursors.
fn version_10_file(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("v10.sqlite");
    let conn = Connection::open(&path).unwrap();
    conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
        .unwrap();
    for m in schema::MIGRATIONS.iter().filter(|m| m.version <= 10) {
        conn.execute_batch(m.sql).unwrap();
    }
    conn.execute_batch(&format!(
        "PRAGMA user_version = 10; PRAGMA application_id = {};",
        schema::APPLICATION_ID
    ))
    .unwrap();
    conn.execute_batch(
        "INSERT INTO personal_info (id, email, raw_json, first_seen, last_seen, last_changed)
             VALUES ('user-1', 'ring@example.org', '{}', 't', 't', 't');
         ALTER TABLE daily_sleep ADD COLUMN new_field INTEGER;
         INSERT INTO added_column VALUES ('daily_sleep', 'new_field', 'INTEGER', '$.new_field', 't');
         INSERT INTO daily_sleep (id, day, score, new_field, raw_json, first_seen, last_seen, last_changed)
             VALUES ('ds-1', '2024-03-01', 80, 7, '{\"id\":\"ds-1\"}', 't', 't', 't'),
                    ('ds-2', '2024-03-02', 1.5, NULL, '{\"id\":\"ds-2\"}', 't', 't', 't');
         INSERT INTO sleep (pk, id, day, type, bedtime_start, bedtime_start_ts, bedtime_end, average_hrv,
                            raw_json, first_seen, last_seen, last_changed)
             VALUES (7, 'sl-1', '2024-03-01', 'long_sleep', '2024-03-01T00:00:00Z', 1709251200,
                     '2024-03-01T00:00:10Z', 40, '{}', 't', 't', 't');
         INSERT INTO sleep_hrv (document_pk, \"offset\", timestamp, value)
             VALUES (7, 0, 1709251200, 41.0), (7, 1, 1709251500, NULL);
         INSERT INTO heartrate (ts, source, bpm, extra) VALUES (1709251200, 'sleep', 55, NULL),
                                                               (1709251260, 'sleep', 54, '{\"x\":1}');
         INSERT INTO interbeat_interval (ts_ms, ibi, validity, extra)
             VALUES (1709251200000, 900, 1, NULL), (1709251200900, 905, 1, NULL),
                    (1709251201805, 2000, 2, NULL), (1709251202805, 950, 1, '{\"x\":1}'),
                    (1709251203755, 812.5, 1, NULL), (1709251204600, 940, 9, NULL);
         INSERT INTO ring_battery_level (ts, level) VALUES (1709251200, 80);
         INSERT INTO quarantine (data_type, doc_key, reason, raw_json, raw_bytes, first_seen, last_seen)
             VALUES ('tag', 'sha256:ab', 'no id', '{}', x'ff00', 't', 't');
         INSERT INTO pending_removal VALUES ('tag', 'tag-1', 't');
         INSERT INTO document_history VALUES ('daily_sleep', 'ds-0', '2024-03-01', '{}', 't', 'ds-1');
         INSERT INTO sync_state (data_type, high_water, documents, requests)
             VALUES ('daily_sleep', '2024-03-02', 2, 5), ('heartrate', '2024-03-01', 2, 3);",
    )
    .unwrap();
    drop(conn);
    path
}

fn count(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// Purging an account takes its beats (a range of the packed key) and
/// every other row of its, and leaves the other account's.
#[test]
fn purging_an_account_takes_its_beats_and_rows_and_leaves_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let path = version_10_file(dir.path());
    let mut store = Store::open(&path).unwrap();
    let second = store.add_account("second", crate::clock::now()).unwrap();
    let base = (second.get() - 1) * mapping::PACKED_SPAN;
    store
        .conn
        .execute(
            "INSERT INTO interbeat_interval (beat, ibi_validity) VALUES (?1, 7201), (?2, 7281);",
            [base + 1709251200000, base + 1709251200900],
        )
        .unwrap();
    store
        .conn
        .execute(
            "INSERT INTO interbeat_interval_extra (beat, extra) VALUES (?1, '{}')",
            [base + 1709251200900],
        )
        .unwrap();
    store
        .conn
        .execute(
            "INSERT INTO heartrate (account, ts, source, bpm) VALUES (?1, 1709251200, 'sleep', 60)",
            [second.get()],
        )
        .unwrap();
    let c = |store: &Store, sql: &str| count(&store.conn, sql);
    assert_eq!(
        c(
            &store,
            "SELECT count(*) FROM interbeat_interval WHERE account = 2"
        ),
        2
    );
    store.purge_account(second).unwrap();
    assert_eq!(
        c(
            &store,
            "SELECT count(*) FROM interbeat_interval WHERE account = 2"
        ),
        0
    );
    assert_eq!(
        c(
            &store,
            "SELECT sum(account) * 10 + count(*) FROM interbeat_interval_extra"
        ),
        33,
        "the first account's three extras stay, the second's goes"
    );
    assert_eq!(
        c(&store, "SELECT count(*) FROM heartrate WHERE account = 2"),
        0
    );
    assert_eq!(
        c(
            &store,
            "SELECT count(*) FROM interbeat_interval WHERE account = 1"
        ),
        6
    );
    assert_eq!(
        c(&store, "SELECT count(*) FROM heartrate WHERE account = 1"),
        2
    );
    assert_eq!(c(&store, "SELECT count(*) FROM account"), 1);
}

#[test]
fn a_version_10_file_moves_every_row_to_the_first_account_and_proves_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = version_10_file(dir.path());
    let store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version(), SCHEMA_VERSION);
    let c = &store.conn;
    for table in accounts::REBUILT {
        let columns = mapping::table_info(c, table).unwrap();
        // The account leads every key: as a column, or packed in the key.
        assert!(
            [mapping::ACCOUNT, mapping::PACKED_KEY].contains(&columns[0].name.as_str()),
            "{table}"
        );
        let strays = count(
            c,
            &format!("SELECT count(*) FROM {table} WHERE account <> 1"),
        );
        assert_eq!(strays, 0, "{table}");
    }
    assert_eq!(count(c, "SELECT count(*) FROM daily_sleep"), 2);
    assert_eq!(
        count(c, "SELECT new_field FROM daily_sleep WHERE id = 'ds-1'"),
        7
    );
    let score: f64 = c
        .query_row("SELECT score FROM daily_sleep WHERE id = 'ds-2'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(score, 1.5, "values keep their type");
    assert_eq!(
        count(c, "SELECT count(*) FROM sleep_hrv WHERE document_pk = 7"),
        2
    );
    assert_eq!(count(c, "SELECT count(*) FROM heartrate"), 2);
    assert_eq!(count(c, "SELECT count(*) FROM interbeat_interval"), 6);
    assert_eq!(
        count(c, "SELECT sum(beat = ts_ms) FROM interbeat_interval"),
        6,
        "the first account's packed keys are its times"
    );
    // Schema 14: the one beat's extra moved beside the table, whose
    // `extra` column is gone.
    let extras: Vec<(i64, i64, String)> = c
        .prepare("SELECT beat, account, extra FROM interbeat_interval_extra")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    // Schema 15: values that do not pack into ibi_validity (an interval
    // that is not an integer, a validity above 7) moved there too, as the
    // API row the columns held; the others read back unchanged.
    assert_eq!(
        extras,
        [
            (1709251202805, 1, r#"{"x":1}"#.to_owned()),
            (
                1709251203755,
                1,
                r#"{"ibi":812.5,"timestamp":"2024-03-01T00:00:03.755+00:00","timestamp_unix":1709251203755,"validity":1}"#
                    .to_owned()
            ),
            (
                1709251204600,
                1,
                r#"{"ibi":940,"timestamp":"2024-03-01T00:00:04.600+00:00","timestamp_unix":1709251204600,"validity":9}"#
                    .to_owned()
            ),
        ]
    );
    let beats: Vec<(Option<i64>, Option<i64>, Option<i64>)> = c
        .prepare("SELECT ibi_validity, ibi, validity FROM interbeat_interval ORDER BY beat")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let p = |ibi, v| (Some(ibi * 8 + v), Some(ibi), Some(v));
    assert_eq!(
        beats,
        [
            p(900, 1),
            p(905, 1),
            p(2000, 2),
            p(950, 1),
            (None, None, None),
            (None, None, None)
        ]
    );
    assert!(
        mapping::table_info(c, "interbeat_interval")
            .unwrap()
            .iter()
            .all(|col| col.name != "extra")
    );
    assert_eq!(count(c, "SELECT length(raw_bytes) FROM quarantine"), 2);
    assert_eq!(
        count(
            c,
            "SELECT requests FROM sync_state WHERE data_type = 'daily_sleep'"
        ),
        5
    );
    let (user, email): (String, String) = c
        .query_row(
            "SELECT oura_user_id, email FROM account WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        (user.as_str(), email.as_str()),
        ("user-1", "ring@example.org")
    );
    // The views are back and read the new tables.
    assert_eq!(count(c, "SELECT count(*) FROM interbeat_hrv_nightly"), 1);
    assert_eq!(count(c, "SELECT count(*) FROM heartrate_readable"), 2);
    assert_eq!(
        count(
            c,
            "SELECT count(*) FROM sqlite_master WHERE name LIKE '%before_accounts%'"
        ),
        0
    );
    let views = count(c, "SELECT count(*) FROM sqlite_master WHERE type = 'view'");
    let fresh = schema::fresh_in_memory().unwrap();
    assert_eq!(
        views,
        count(
            &fresh,
            "SELECT count(*) FROM sqlite_master WHERE type = 'view'"
        )
    );
    assert_eq!(count(c, "SELECT count(*) FROM pragma_foreign_key_check"), 0);
    // The cursor reads as before.
    let ds = registry::DATA_TYPES
        .iter()
        .find(|d| d.name == "daily_sleep")
        .unwrap();
    assert_eq!(store.sync_state(ds).unwrap().documents, 2);
}

#[test]
fn a_copy_that_differs_rolls_the_migration_back_and_leaves_the_file_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let path = version_10_file(dir.path());
    let before = std::fs::read(&path).unwrap();
    let changed = |c: &Connection| -> Result<(), StoreError> {
        c.execute_batch("UPDATE daily_sleep SET score = 81 WHERE id = 'ds-1'")?;
        Ok(())
    };
    let lost = |c: &Connection| -> Result<(), StoreError> {
        c.execute_batch("DELETE FROM heartrate WHERE ts = 1709251260")?;
        Ok(())
    };
    for (table, tamper) in [
        ("daily_sleep", &changed as schema::Tamper<'_>),
        ("heartrate", &lost),
    ] {
        let err = schema::open_tampered(&path, tamper).unwrap_err();
        match &err {
            StoreError::MigrationProof { table: t, .. } => assert_eq!(t, table),
            other => panic!("expected a failed proof, got {other}"),
        }
        let text = err.to_string();
        assert!(
            text.contains("rolled back") && text.contains(table),
            "{text}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), before, "the file changed");
        let conn = Connection::open(&path).unwrap();
        assert_eq!(count(&conn, "PRAGMA user_version"), 10);
        assert_eq!(count(&conn, "SELECT count(*) FROM heartrate"), 2);
    }
    // Untouched, the same file migrates.
    assert_eq!(Store::open(&path).unwrap().schema_version(), SCHEMA_VERSION);
}

#[test]
fn each_account_sees_only_its_own_documents_cursors_and_quarantine() {
    let (_dir, mut store) = temp_store();
    let second = store
        .add_account("second", jiff::Timestamp::UNIX_EPOCH)
        .unwrap();
    assert_ne!(second, AccountId::FIRST);
    let ds = registry::DATA_TYPES
        .iter()
        .find(|d| d.name == "daily_sleep")
        .unwrap();
    let at = jiff::Timestamp::UNIX_EPOCH;
    let page = |docs: &[serde_json::Value], hw: &str| {
        let docs: Vec<serde_json::Value> = docs.to_vec();
        (docs, hw.parse::<jiff::civil::Date>().unwrap())
    };
    let (one, hw1) = page(
        &[json!({"id": "same-id", "day": "2024-03-01", "score": 10})],
        "2024-03-01",
    );
    let (two, hw2) = page(
        &[
            json!({"id": "same-id", "day": "2024-03-01", "score": 20}),
            json!({"day": null}),
        ],
        "2024-03-05",
    );
    for (account, docs, hw) in [(AccountId::FIRST, &one, hw1), (second, &two, hw2)] {
        store.use_account(account);
        let commit = PageCommit {
            documents: Documents::from(docs.as_slice()),
            cursor: CursorAdvance {
                high_water: Some(hw),
                ..CursorAdvance::default()
            },
            requests: 1,
            at,
            vanished: None,
        };
        store.commit_page(ds, &commit).unwrap();
    }
    let score = |store: &Store, account: AccountId| -> i64 {
        store
            .conn
            .query_row(
                "SELECT score FROM daily_sleep WHERE account = ?1 AND id = 'same-id'",
                [account.get()],
                |r| r.get(0),
            )
            .unwrap()
    };
    assert_eq!(
        (score(&store, AccountId::FIRST), score(&store, second)),
        (10, 20)
    );
    store.use_account(AccountId::FIRST);
    assert_eq!(store.sync_state(ds).unwrap().high_water, Some(hw1));
    assert_eq!(store.sync_state(ds).unwrap().documents, 1);
    assert!(store.quarantine_summary().unwrap().is_empty());
    assert!(store.delete_document(ds, "same-id").unwrap());
    store.use_account(second);
    assert_eq!(store.sync_state(ds).unwrap().high_water, Some(hw2));
    assert_eq!(store.quarantine_summary().unwrap().len(), 1);
    assert_eq!(
        score(&store, second),
        20,
        "a delete for one account left the other's"
    );
}

#[test]
fn an_oura_user_is_claimed_by_one_account_and_an_account_by_one_user() {
    let (_dir, mut store) = temp_store();
    let at = jiff::Timestamp::UNIX_EPOCH;
    let alex = store.add_account("alex", at).unwrap();
    let sam = store.add_account("sam", at).unwrap();
    assert_eq!(
        store.claim_oura_user(alex, "user-a", None).unwrap(),
        Claim::Claimed
    );
    // Signing in again as the same person changes nothing.
    assert_eq!(
        store.claim_oura_user(alex, "user-a", None).unwrap(),
        Claim::Claimed
    );
    assert_eq!(
        store.claim_oura_user(sam, "user-a", None).unwrap(),
        Claim::TakenBy("alex".into())
    );
    assert_eq!(
        store.claim_oura_user(alex, "user-b", None).unwrap(),
        Claim::HoldsAnother("user-a".into())
    );
    assert_eq!(
        store.claim_oura_user(sam, "user-b", None).unwrap(),
        Claim::Claimed
    );
    let users: Vec<(String, Option<String>)> = store
        .accounts()
        .unwrap()
        .into_iter()
        .map(|a| (a.name, a.oura_user_id))
        .collect();
    assert_eq!(
        users,
        [
            ("default".into(), None),
            ("alex".into(), Some("user-a".into())),
            ("sam".into(), Some("user-b".into()))
        ]
    );
}

/// Schema 15 moves the beats a batch at a time, each deleted from the old
/// table as it goes: the file grows by about a batch, not by a second copy
/// of its largest table (one `INSERT ... SELECT` of every beat and a `DROP`
/// left the old pages in the file as free pages: 9.5 million beats took a
/// 165 MB file to 298 MB).
#[test]
fn packing_the_beats_grows_the_file_by_a_batch_not_a_copy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("beats.sqlite");
    drop(Store::open(&path).unwrap());
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(
        "CREATE TABLE interbeat_interval_v14 (beat INTEGER PRIMARY KEY, ibi INTEGER, validity INTEGER,
             ts_ms INTEGER GENERATED ALWAYS AS (beat & 4398046511103) VIRTUAL);
         WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 599999)
         INSERT INTO interbeat_interval_v14
             SELECT 1700000000000 + i * 900, 800 + i % 400, i % 3 FROM n;
         PRAGMA wal_checkpoint(TRUNCATE);",
    )
    .unwrap();
    let before = count(&conn, "PRAGMA page_count");
    let tx = conn.unchecked_transaction().unwrap();
    assert_eq!(schema::move_beats(&tx).unwrap(), 600_000);
    tx.commit().unwrap();
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .unwrap();
    let after = count(&conn, "PRAGMA page_count");
    eprintln!("{before} pages before, {after} after");
    assert!(
        after <= before + before / 5,
        "{before} pages before, {after} after ({} free)",
        count(&conn, "PRAGMA freelist_count")
    );
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM interbeat_interval
             WHERE ibi = 800 + (ts_ms - 1700000000000) / 900 % 400
               AND validity = (ts_ms - 1700000000000) / 900 % 3"
        ),
        600_000,
        "every beat moved with its values"
    );
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM sqlite_master WHERE name = 'interbeat_interval_v14'"
        ),
        0
    );
}
