//! `interbeat_interval`: raw beats stored compactly, odd rows kept the
//! time-series way, the per-night HRV view against numbers computed here,
//! the version-9 upgrade, and a sync from the simulator.

use jiff::Timestamp;
use ouradb::registry::{self, DataType};
use ouradb::rows::RawRows;
use ouradb::store::{CursorAdvance, PageCommit, SCHEMA_VERSION, Store, WriteCounts};
use serde_json::{Value, json};

use crate::db;
use crate::util::{Env, assert_no_errors};

fn dt(name: &str) -> &'static DataType {
    registry::find(name).unwrap()
}

fn temp() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ouradb.sqlite");
    (dir, path)
}

fn page(docs: &[Value]) -> PageCommit<'_> {
    PageCommit {
        documents: docs.into(),
        vanished: None,
        cursor: CursorAdvance::default(),
        requests: 1,
        at: "2024-03-02T08:00:00Z".parse().unwrap(),
    }
}

/// Commits `rows` the way the client does: read from a page body.
fn commit_raw(store: &mut Store, name: &str, rows: &[Value]) -> WriteCounts {
    let body = json!({"data": rows, "next_token": null}).to_string();
    let (raw, _) = RawRows::parse(body.as_bytes()).unwrap();
    store.commit_page_rows(dt(name), &page(&[]), &raw).unwrap()
}

fn beat(ts: &str, ibi: i64, validity: i64) -> Value {
    let ms = ts.parse::<Timestamp>().unwrap().as_millisecond();
    json!({"ibi": ibi, "timestamp": ts, "timestamp_unix": ms, "validity": validity})
}

type Stored = (i64, Option<i64>, Option<i64>, Option<String>);

fn stored(path: &std::path::Path) -> Vec<Stored> {
    let conn = db::reader(path);
    let mut stmt = conn
        .prepare(
            "SELECT i.ts_ms, i.ibi, i.validity, x.extra FROM interbeat_interval i
             LEFT JOIN interbeat_interval_extra x USING (beat) ORDER BY i.ts_ms",
        )
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn quarantined(path: &std::path::Path) -> Vec<(Option<String>, String)> {
    let conn = db::reader(path);
    let mut stmt = conn
        .prepare("SELECT doc_key, reason FROM quarantine WHERE data_type = 'interbeat_interval'")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Plain beats fill the typed columns alone (`extra` NULL, millisecond
/// times kept); a row the columns cannot restore (unknown fields, odd
/// times, values that do not pack into `ibi_validity`) keeps its JSON in
/// `extra`; a row without a time goes to quarantine and the page goes on.
/// Read from a page body or from `Value`s, the result is the same.
#[test]
fn beats_fill_typed_columns_and_odd_rows_keep_the_time_series_rules() {
    let plain = beat("2024-03-01T01:00:00.123+00:00", 987, 1);
    let offset = beat("2024-03-01T02:00:00.500+01:00", 1012, 0);
    let mut unknown = beat("2024-03-01T01:00:01.111+00:00", 990, 1);
    unknown["amplitude"] = json!(3);
    let mut sub_ms = beat("2024-03-01T01:00:02.000+00:00", 1001, 1);
    sub_ms["timestamp"] = json!("2024-03-01T01:00:02.0004+00:00");
    let mut disagree = beat("2024-03-01T01:00:03.000+00:00", 999, 2);
    disagree["timestamp_unix"] = json!(1_709_254_803_001i64);
    let unpackable = beat("2024-03-01T01:00:04.000+00:00", 1003, 9);
    let timeless = json!({"ibi": 1000, "validity": 1});
    let negative = beat("2024-03-01T01:00:05.000+00:00", -5, 1);
    let rows = [
        plain, offset, unknown, sub_ms, disagree, unpackable, negative, timeless,
    ];
    let mut results = Vec::new();
    for raw in [true, false] {
        let (_dir, path) = temp();
        let mut store = Store::open(&path).unwrap();
        let counts = if raw {
            commit_raw(&mut store, "interbeat_interval", &rows)
        } else {
            store
                .commit_page(dt("interbeat_interval"), &page(&rows))
                .unwrap()
        };
        assert_eq!((counts.inserted, counts.quarantined), (7, 1), "raw: {raw}");
        drop(store);
        let got = stored(&path);
        assert_eq!(
            got[..2],
            [
                (1_709_254_800_123, Some(987), Some(1), None),
                (1_709_254_800_500, Some(1012), Some(0), None),
            ],
            "raw: {raw}"
        );
        for (i, (ms, _, _, extra)) in got[2..6].iter().enumerate() {
            let extra: Value = serde_json::from_str(extra.as_deref().unwrap()).unwrap();
            assert_eq!(extra, rows[i + 2], "raw: {raw}, {ms}");
        }
        assert_eq!(got[2].0, 1_709_254_801_111);
        assert_eq!(got[4].0, 1_709_254_803_000, "the timestamp text wins");
        assert_eq!(
            (got[5].1, got[5].2),
            (None, None),
            "a validity above 7 does not pack: the row is whole in extra"
        );
        assert_eq!(
            got[6],
            (1_709_254_805_000, Some(-5), Some(1), None),
            "a negative interval packs and reads back"
        );
        let q = quarantined(&path);
        assert_eq!(q.len(), 1, "raw: {raw}");
        assert!(q[0].1.contains("timestamp"), "{q:?}");
        results.push(got);
    }
    assert_eq!(results[0], results[1]);
}

/// A beat's `extra` lives beside the table and follows the beat: it
/// appears when a re-fetched beat gains a field, goes when the beat comes
/// back plain, and a change of the `extra` alone counts as an update.
#[test]
fn a_beats_extra_follows_its_row_in_the_side_table() {
    let (_dir, path) = temp();
    let mut store = Store::open(&path).unwrap();
    let a = beat("2024-03-01T01:00:00.123+00:00", 987, 1);
    let b = beat("2024-03-01T01:00:01.110+00:00", 990, 1);
    let with = |row: &Value, amplitude: i64| {
        let mut row = row.clone();
        row["amplitude"] = json!(amplitude);
        row
    };
    let extras = |path: &std::path::Path| -> Vec<Option<String>> {
        stored(path).into_iter().map(|(_, _, _, x)| x).collect()
    };
    let counts = |c: WriteCounts| (c.inserted, c.updated, c.unchanged);

    let first = [a.clone(), with(&b, 3)];
    assert_eq!(
        counts(commit_raw(&mut store, "interbeat_interval", &first)),
        (2, 0, 0)
    );
    assert_eq!(extras(&path), [None, Some(first[1].to_string())]);

    let second = [with(&a, 1), b.clone()];
    assert_eq!(
        counts(commit_raw(&mut store, "interbeat_interval", &second)),
        (0, 2, 0)
    );
    assert_eq!(extras(&path), [Some(second[0].to_string()), None]);

    let third = [with(&a, 2), b.clone()];
    assert_eq!(
        counts(commit_raw(&mut store, "interbeat_interval", &third)),
        (0, 1, 1)
    );
    assert_eq!(
        counts(commit_raw(&mut store, "interbeat_interval", &third)),
        (0, 0, 2)
    );
    assert_eq!(extras(&path), [Some(third[0].to_string()), None]);
    assert_eq!(db::count(&path, "interbeat_interval_extra"), 1);
}

/// A sleep period as the API serves it.
fn sleep_doc(id: &str, start: &str, end: &str, average_hrv: i64) -> Value {
    json!({"id": id, "day": &end[..10], "type": "long_sleep", "bedtime_start": start,
           "bedtime_end": end, "average_hrv": average_hrv, "average_heart_rate": 55.0})
}

/// RMSSD and SDNN of `beats` (ms, ibi, validity) the textbook way: valid
/// beats have validity 1 and an interval under the 2,000 ms cap; the
/// successive differences are those of two valid beats next to each other.
fn hrv(beats: &[(i64, i64, i64)]) -> (f64, f64) {
    let valid = |b: &(i64, i64, i64)| b.2 == 1 && b.1 < 2000;
    let diffs: Vec<f64> = beats
        .windows(2)
        .filter(|w| valid(&w[0]) && valid(&w[1]))
        .map(|w| (w[1].1 - w[0].1) as f64)
        .collect();
    let rmssd = (diffs.iter().map(|d| d * d).sum::<f64>() / diffs.len() as f64).sqrt();
    let nn: Vec<f64> = beats
        .iter()
        .filter(|b| valid(b))
        .map(|b| b.1 as f64)
        .collect();
    let mean = nn.iter().sum::<f64>() / nn.len() as f64;
    let sdnn = (nn.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / nn.len() as f64).sqrt();
    (rmssd, sdnn)
}

/// The nightly view's RMSSD and SDNN equal the ones computed in Rust from
/// the same beats: only beats inside the period count, invalid and capped
/// beats are left out and break the chain of successive differences.
#[test]
fn nightly_rmssd_and_sdnn_match_an_independent_computation() {
    let (_dir, path) = temp();
    let mut store = Store::open(&path).unwrap();
    let start = "2024-03-01T23:00:00+01:00";
    let end = "2024-03-02T01:00:00+01:00";
    store
        .commit_page(
            dt("sleep"),
            &page(&[
                sleep_doc("night-1", start, end, 48),
                sleep_doc(
                    "night-2",
                    "2024-03-03T23:00:00+01:00",
                    "2024-03-04T06:00:00+01:00",
                    30,
                ),
            ]),
        )
        .unwrap();
    let t0 = start.parse::<Timestamp>().unwrap().as_millisecond();
    let t1 = end.parse::<Timestamp>().unwrap().as_millisecond();
    // A fixed, irregular pattern of intervals and codes.
    let mut beats = Vec::new();
    let mut t = t0 - 5_000;
    for i in 0..7_000i64 {
        let ibi = 900 + (i * 37 % 101) - 50 + if i % 13 == 0 { 60 } else { 0 };
        let (ibi, validity) = match i % 211 {
            5 => (ibi / 2, 0),
            6 => (2000, 2),
            7 => (1700, 2),
            _ => (ibi, 1),
        };
        t += ibi;
        beats.push((t, ibi, validity));
    }
    let rows: Vec<Value> = beats
        .iter()
        .map(|(ms, ibi, v)| {
            let ts = Timestamp::from_millisecond(*ms).unwrap();
            json!({"ibi": ibi, "timestamp": ts.to_string(), "timestamp_unix": ms, "validity": v})
        })
        .collect();
    for chunk in rows.chunks(2000) {
        commit_raw(&mut store, "interbeat_interval", chunk);
    }
    drop(store);
    let inside: Vec<_> = beats
        .iter()
        .copied()
        .filter(|b| b.0 >= t0 && b.0 < t1)
        .collect();
    assert!(inside.len() < beats.len() && inside.len() > 5_000);
    let (rmssd, sdnn) = hrv(&inside);
    let conn = db::reader(&path);
    let row: (i64, i64, f64, f64, i64) = conn
        .query_row(
            "SELECT beats, valid_beats, rmssd_ms, sdnn_ms, average_hrv FROM interbeat_hrv_nightly WHERE sleep_id = 'night-1'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .unwrap();
    assert_eq!(row.0, inside.len() as i64);
    let valid = inside.iter().filter(|b| b.2 == 1 && b.1 < 2000).count();
    assert_eq!(row.1, valid as i64);
    assert!((row.2 - rmssd).abs() <= 0.05 + 1e-9, "{} vs {rmssd}", row.2);
    assert!((row.3 - sdnn).abs() <= 0.05 + 1e-9, "{} vs {sdnn}", row.3);
    assert_eq!(row.4, 48);
    let empty: (i64, Option<f64>, i64) = conn
        .query_row(
            "SELECT beats, rmssd_ms, average_hrv FROM interbeat_hrv_nightly WHERE sleep_id = 'night-2'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(empty, (0, None, 30), "a night without beats");
}

/// A version-9 file (before interbeat intervals) opens at the current
/// version with its data kept and the new table and views in place.
#[test]
fn a_version_9_file_gains_the_interbeat_table_and_views() {
    let (_dir, path) = temp();
    let conn = rusqlite::Connection::open(&path).unwrap();
    for sql in ouradb::store::migration_sources().take(9) {
        conn.execute_batch(sql).unwrap();
    }
    conn.execute_batch(&format!(
        "PRAGMA user_version = 9; PRAGMA application_id = {};",
        0x4F55_5241
    ))
    .unwrap();
    conn.execute(
        "INSERT INTO heartrate (ts, source, bpm) VALUES (1709254800, 'sleep', 52)",
        [],
    )
    .unwrap();
    let missing: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name LIKE 'interbeat%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(missing, 0);
    drop(conn);
    let mut store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version(), SCHEMA_VERSION);
    commit_raw(
        &mut store,
        "interbeat_interval",
        &[beat("2024-03-01T01:00:00.123+00:00", 987, 1)],
    );
    drop(store);
    assert_eq!(db::count(&path, "heartrate"), 1);
    assert_eq!(db::count(&path, "interbeat_interval"), 1);
    assert_eq!(db::count(&path, "interbeat_interval_readable"), 1);
    assert_eq!(db::count(&path, "interbeat_hrv_nightly"), 0);
}

/// Bytes the table and its side table of `extra` rows take on disk per
/// stored beat, their pages counted by SQLite itself (`dbstat`).
pub fn bytes_per_beat(path: &std::path::Path) -> f64 {
    let conn = db::reader(path);
    let (bytes, beats): (i64, i64) = conn
        .query_row(
            "SELECT (SELECT sum(pgsize) FROM dbstat
                     WHERE name IN ('interbeat_interval', 'interbeat_interval_extra')),
                    (SELECT count(*) FROM interbeat_interval)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    bytes as f64 / beats as f64
}

/// A sync of a week of beats from the simulator: every beat served is
/// stored, within 16 bytes a beat on disk, and each night's RMSSD from the
/// beats is close to the average_hrv the simulator reported for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_week_of_simulated_beats_syncs_compactly_and_matches_average_hrv() {
    let env = Env::start(7, |c| c.interbeat_days = None).await;
    let mut config = env.config();
    config.types = ["sleep", "interbeat_interval"].map(dt).to_vec();
    let reports = env.sync_with(config).await;
    assert_no_errors(&reports);
    let db = env.db();
    let served = env.sim.read_data(|d| {
        let now = d.now().as_millisecond();
        ouradb_sim::ibi::beats(d, 7, (now - 10 * 86_400_000, now), None, usize::MAX, false).len()
    });
    let stored = db::count(&db, "interbeat_interval");
    assert_eq!(stored, served as i64);
    assert!(stored > 4 * 24_000, "{stored}");
    // A full leaf holds 15 bytes a beat (6 of time as the row's key, 2 of
    // interval, 1 header byte per column, the cell's length and pointer);
    // the rare beat needing its whole API row keeps it in a side table, as
    // an `extra` column would cost every beat one more header byte.
    // The account rides in the key's high bits: a separate account column
    // made the table WITHOUT ROWID, whose leaves SQLite splits in half
    // instead of packing them when rows arrive in key order (19.6 measured);
    // an index beside a rowid table costs far more.
    let per_beat = bytes_per_beat(&db);
    eprintln!("{stored} beats, {per_beat:.2} bytes a beat (dbstat)");
    assert!(per_beat <= 15.0, "{per_beat:.2} bytes a beat");
    let conn = db::reader(&db);
    let mut stmt = conn
        .prepare(
            "SELECT rmssd_ms, average_hrv FROM interbeat_hrv_nightly
             WHERE beats > 10000 AND average_hrv IS NOT NULL",
        )
        .unwrap();
    let nights: Vec<(f64, f64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(nights.len() >= 4, "{nights:?}");
    for (rmssd, avg) in nights {
        assert!((rmssd - avg).abs() <= avg * 0.2, "{rmssd} vs {avg}");
    }
}

/// Two accounts' beats at the same millisecond are two rows, each read back
/// under its own account and time from the packed key; a beat the key
/// cannot hold (after 2109) is quarantined with the reason, the rest of
/// its page stored.
#[test]
fn beats_of_two_accounts_share_no_key_and_a_beat_past_2109_is_quarantined() {
    let (_dir, path) = temp();
    let mut store = Store::open(&path).unwrap();
    let first = beat("2024-03-01T01:00:00.123+00:00", 987, 1);
    let far = beat("2150-01-01T00:00:00.000+00:00", 1000, 1);
    let counts = commit_raw(&mut store, "interbeat_interval", &[first.clone(), far]);
    assert_eq!((counts.inserted, counts.quarantined), (1, 1));
    let second = store.add_account("second", Timestamp::now()).unwrap();
    store.use_account(second);
    let mut other = first.clone();
    other["ibi"] = json!(640);
    let counts = commit_raw(&mut store, "interbeat_interval", &[other]);
    assert_eq!(counts.inserted, 1);
    drop(store);
    let conn = db::reader(&path);
    let rows: Vec<(i64, i64, i64)> = conn
        .prepare("SELECT account, ts_ms, ibi FROM interbeat_interval ORDER BY beat")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let ms = 1_709_254_800_123;
    assert_eq!(rows, vec![(1, ms, 987), (second.get(), ms, 640)]);
    let q = quarantined(&path);
    assert_eq!(q.len(), 1, "{q:?}");
    assert!(q[0].1.contains("2109"), "{q:?}");
}
