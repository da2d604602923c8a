//! The shipped dashboards (`dashboards/`): every Datasette canned query and
//! chart, and every Grafana panel query, runs on a database synced from the
//! simulator and returns rows with the columns its chart reads. The files are
//! iterated, not listed here, so a new panel is tested as soon as it exists.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use jiff::Timestamp;
use ouradb::cli::dashboards as dash;
use ouradb::registry;
use ouradb::store::{Store, StoredSubscription, WebhookEventRecord};
use rusqlite::types::Value as Sql;
use serde_json::Value;

use crate::util::{Env, assert_no_errors};

const PLUGIN: &str = "frser-sqlite-datasource";
/// Days of simulated history: enough for weekly groupings, workouts, tags,
/// VO2 max estimates and (usually) a rest mode period to occur.
const DAYS: u32 = 365;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn datasette_dir() -> PathBuf {
    repo().join("dashboards/datasette")
}

fn grafana_dashboard() -> Value {
    serde_json::from_str(dash::GRAFANA_DASHBOARD).expect("the Grafana dashboard is JSON")
}

fn metadata() -> Value {
    serde_json::from_str(dash::DATASETTE_METADATA).expect("metadata.json is JSON")
}

/// One database synced from the simulator (with a webhook event and
/// subscription, which no sync writes), shared by the query tests.
struct Synced {
    _env_dir: tempfile::TempDir,
    db: PathBuf,
    /// The simulated history's range, unix seconds.
    from: i64,
    to: i64,
}

/// The name of the second account of the synced file (the first is
/// `default`).
const SECOND_ACCOUNT: &str = "second";

fn synced() -> &'static Synced {
    static DB: OnceLock<Synced> = OnceLock::new();
    DB.get_or_init(|| {
        // Its own runtime: the simulator lives only for the sync, and each
        // #[test] may run on any thread.
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        rt.block_on(async {
            // Two persons in one file: every query must hold up with
            // several accounts, as a household's file has them.
            let env = Env::start(DAYS, |c| *c = c.clone().with_persons(2)).await;
            let reports = env.sync().await;
            assert_no_errors(&reports);
            crate::accounts::sync_second_person(&env, &env.db(), SECOND_ACCOUNT).await;
            let dir = tempfile::tempdir().expect("tempdir");
            let db = dir.path().join("ouradb.sqlite");
            // A consistent copy, WAL included, that outlives the simulator's temp dir.
            crate::util::reader(&env.db())
                .execute("VACUUM INTO ?1", [db.display().to_string()])
                .expect("copy the synced database");
            let mut store = Store::open(&db).expect("open");
            let now = Timestamp::now();
            store
                .record_webhook_event(
                    &WebhookEventRecord {
                        signature: "AB12".into(),
                        received_at: now,
                        event_type: "update".into(),
                        data_type: "daily_sleep".into(),
                        object_id: "x".into(),
                        event_time: None,
                        outcome: "stored".into(),
                        account: Some(ouradb::store::AccountId::FIRST),
                    },
                    now.checked_sub(jiff::SignedDuration::from_hours(24 * 7))
                        .unwrap(),
                )
                .expect("event");
            store
                .replace_webhook_subscriptions(
                    "https://example.invalid/hook",
                    &[StoredSubscription {
                        id: "s1".into(),
                        callback_url: "https://example.invalid/hook".into(),
                        event_type: "update".into(),
                        data_type: "daily_sleep".into(),
                        expiration_time: now
                            .checked_add(jiff::SignedDuration::from_hours(24 * 30))
                            .unwrap(),
                        checked_at: now,
                    }],
                )
                .expect("subscription");
            drop(store);
            let to = now.as_second();
            let from = to - (DAYS as i64 + 2) * 86400;
            env.sim.stop().await;
            Synced {
                _env_dir: dir,
                db,
                from,
                to,
            }
        })
    })
}

/// The result of one query: column names and rows.
struct Rows {
    columns: Vec<String>,
    rows: Vec<Vec<Sql>>,
}

impl Rows {
    fn column(&self, name: &str) -> impl Iterator<Item = &Sql> {
        let i = self
            .columns
            .iter()
            .position(|c| c == name)
            .unwrap_or_else(|| panic!("no column {name} in {:?}", self.columns));
        self.rows.iter().map(move |r| &r[i])
    }
}

/// Runs `sql` read-only, binding named parameters from `params` ("" when
/// absent, as Datasette does for an empty form field).
fn run(db: &Path, sql: &str, params: &BTreeMap<String, String>) -> Result<Rows, String> {
    let conn = crate::util::reader(db);
    let mut stmt = conn.prepare(sql).map_err(|e| e.to_string())?;
    for i in 1..=stmt.parameter_count() {
        let name = stmt
            .parameter_name(i)
            .ok_or_else(|| format!("positional parameter {i}: use :name"))?
            .trim_start_matches([':', '@', '$'])
            .to_owned();
        let v = params.get(&name).cloned().unwrap_or_default();
        stmt.raw_bind_parameter(i, v).map_err(|e| e.to_string())?;
    }
    let columns: Vec<String> = stmt.column_names().iter().map(|c| c.to_string()).collect();
    let n = columns.len();
    let mut rows = Vec::new();
    let mut q = stmt.raw_query();
    while let Some(r) = q.next().map_err(|e| e.to_string())? {
        rows.push((0..n).map(|i| r.get::<_, Sql>(i).unwrap()).collect());
    }
    Ok(Rows { columns, rows })
}

fn first_value(db: &Path, sql: &str) -> String {
    let r = run(db, sql, &BTreeMap::new()).unwrap_or_else(|e| panic!("{sql}: {e}"));
    match r.rows.first().map(|r| &r[0]) {
        Some(Sql::Text(s)) => s.clone(),
        Some(Sql::Integer(i)) => i.to_string(),
        Some(Sql::Real(f)) => f.to_string(),
        other => panic!("{sql}: no sample value ({other:?})"),
    }
}

/// A plausible unix time in seconds (not milliseconds, not a day count).
fn unix_seconds(v: &Sql) -> Result<(), String> {
    let secs = match v {
        Sql::Integer(i) => *i,
        Sql::Null => return Ok(()),
        other => return Err(format!("{other:?} is not an integer of unix seconds")),
    };
    let lo = 1_420_070_400; // 2015-01-01
    let hi = Timestamp::now().as_second() + 400 * 86400; // webhook expiries lie ahead
    if (lo..=hi).contains(&secs) {
        Ok(())
    } else {
        Err(format!(
            "{secs} is not unix seconds between 2015 and next year"
        ))
    }
}

#[test]
fn datasette_metadata_is_generated_from_the_schema_and_sources() {
    let generated = dash::generate_datasette_metadata(&datasette_dir()).expect("generate");
    let path = datasette_dir().join("metadata.json");
    if std::env::var_os("OURADB_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("write metadata.json");
        return;
    }
    assert!(
        dash::DATASETTE_METADATA == generated,
        "dashboards/datasette/metadata.json is stale: it is generated from schema*.sql comments, \
         queries/*.sql and dashboard.json. Regenerate it with \
         `OURADB_BLESS=1 cargo test --test it dashboards::datasette_metadata`"
    );
}

#[test]
fn schema_comments_describe_tables_and_dashboard_view_columns() {
    let m = metadata();
    let tables = m["databases"][dash::DEFAULT_DB_NAME]["tables"]
        .as_object()
        .expect("tables");
    let objects = ouradb::store::schema_objects().expect("schema");
    for o in &objects {
        let t = &tables[&o.name];
        assert!(
            t["description"].as_str().is_some_and(|d| d.len() > 10),
            "{} has no description in the metadata: comment it in the schema",
            o.name
        );
    }
    // Tables of schema.sql and the dashboard views document every column.
    let views_sql = include_str!("../../schema_views.sql");
    let schema_sql = include_str!("../../schema.sql");
    let columns: BTreeMap<String, Vec<String>> = objects
        .iter()
        .map(|o| (o.name.clone(), o.columns.clone()))
        .collect();
    let mut checked = 0;
    for (sql, kind) in [(schema_sql, "table"), (views_sql, "view")] {
        let docs = dash::parse_schema_docs(&[sql], &columns);
        for (name, _) in docs {
            let o = objects.iter().find(|o| o.name == name).unwrap();
            if o.kind != kind {
                continue;
            }
            for c in &o.columns {
                assert!(
                    tables[&name]["columns"][c].as_str().is_some(),
                    "{name}.{c} has no description: end its line with `-- description`"
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 300, "only {checked} columns checked");
    // Prose-documented views get column descriptions too.
    assert_eq!(
        tables["daily_summary"]["columns"]["steps"].as_str(),
        Some("count")
    );
    assert_eq!(
        tables["sleep_hypnogram"]["columns"]["phase"].as_str(),
        Some("code 1..4")
    );
}

#[test]
fn data_coverage_covers_every_day_keyed_data_type() {
    let s = synced();
    let conn = crate::util::reader(&s.db);
    let view: String = conn
        .query_row(
            "SELECT sql FROM sqlite_master WHERE type = 'view' AND name = 'data_coverage'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    for d in registry::DATA_TYPES {
        let Some(day) = d.day_field else { continue };
        let branch = format!("'{}'", d.name);
        let line = view
            .lines()
            .find(|l| l.contains(&branch))
            .unwrap_or_else(|| panic!("data_coverage does not count {}", d.name));
        assert!(
            line.contains(&format!("FROM {} ", d.table))
                && line.contains(&format!("GROUP BY account, {day}")),
            "data_coverage counts {} from the wrong table or day: {line}",
            d.name
        );
    }
    // And it returns those types' days.
    let r = run(
        &s.db,
        "SELECT data_type, count(*), min(time) FROM data_coverage GROUP BY data_type",
        &BTreeMap::new(),
    )
    .unwrap();
    assert!(r.rows.len() >= 10, "{} types with data", r.rows.len());
    for v in r.column("min(time)") {
        unix_seconds(v).unwrap();
    }
}

#[test]
fn heartrate_daily_places_every_sample_once_in_its_local_day() {
    let s = synced();
    let conn = crate::util::reader(&s.db);
    let (viewed, stored): (i64, i64) = conn
        .query_row(
            "SELECT (SELECT sum(samples) FROM heartrate_daily), (SELECT count(bpm) FROM heartrate)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(stored > 10_000);
    assert_eq!(viewed, stored);
    // Each day between days of the same offset holds exactly the samples
    // from its local midnight to the next, each account's in its own days.
    let viewed: BTreeMap<(i64, String), i64> = conn
        .prepare("SELECT account, day, sum(samples) FROM heartrate_daily GROUP BY account, day")
        .unwrap()
        .query_map([], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let expected: Vec<(i64, String, i64, i64)> = conn
        .prepare(
            "SELECT o.account, o.day, o.utc_offset, (SELECT count(bpm) FROM heartrate h
                 WHERE h.account = o.account
                   AND ts >= strftime('%s', o.day) - o.utc_offset
                   AND ts < strftime('%s', o.day) + 86400 - o.utc_offset)
             FROM local_day_offset o
             JOIN local_day_offset p ON p.account = o.account
                  AND p.day = date(o.day, '-1 day') AND p.utc_offset = o.utc_offset
             JOIN local_day_offset n ON n.account = o.account
                  AND n.day = date(o.day, '+1 day') AND n.utc_offset = o.utc_offset",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(expected.len() > 300, "{} days", expected.len());
    assert!(
        expected.iter().any(|(_, _, off, _)| *off != 0),
        "the simulated person never leaves UTC: nothing tested"
    );
    assert!(
        expected.iter().any(|(account, ..)| *account != 1),
        "one account only: nothing tested about several"
    );
    for (account, day, _, n) in &expected {
        let got = viewed.get(&(*account, day.clone())).copied().unwrap_or(0);
        assert_eq!(got, *n, "account {account}, {day}");
    }
}

/// True when every table or view `sql` names is empty in `db`: the simulator
/// did not produce that data type (e.g. no rest mode in the synced year), so
/// an empty result says nothing about the query. Any non-empty source makes
/// an empty result a failure.
fn reads_only_empty_tables(db: &Path, sql: &str) -> bool {
    let conn = crate::util::reader(db);
    let names: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let words: BTreeSet<&str> = sql
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .collect();
    let used: Vec<&String> = names
        .iter()
        .filter(|n| words.contains(n.as_str()))
        .collect();
    assert!(!used.is_empty(), "no table named in {sql}");
    used.iter().all(|n| {
        let rows: i64 = conn
            .query_row(
                &format!("SELECT count(*) FROM (SELECT 1 FROM {n} LIMIT 1)"),
                [],
                |r| r.get(0),
            )
            .unwrap();
        if rows == 0 {
            eprintln!("note: {n} is empty in the synced database; not asserting rows for {sql}");
        }
        rows == 0
    })
}

/// Sample values for one canned query: every `-- example:` (a SELECT is run).
fn examples(db: &Path, q: &dash::CannedQuery) -> BTreeMap<String, String> {
    q.examples
        .iter()
        .map(|(k, v)| {
            let v = if v.to_ascii_uppercase().starts_with("SELECT ") {
                first_value(db, v)
            } else {
                v.clone()
            };
            (k.clone(), v)
        })
        .collect()
}

#[test]
fn every_datasette_canned_query_runs_and_returns_rows() {
    let s = synced();
    let shipped = metadata();
    let shipped = shipped["databases"][dash::DEFAULT_DB_NAME]["queries"]
        .as_object()
        .expect("queries");
    let sources = dash::read_canned_queries(&datasette_dir()).expect("queries");
    assert_eq!(shipped.len(), sources.len());
    assert!(sources.len() >= 6);
    for q in &sources {
        assert_eq!(shipped[&q.name]["sql"].as_str(), Some(q.sql.as_str()));
        let conn = crate::util::reader(&s.db);
        let stmt = conn.prepare(&q.sql).expect("prepares");
        let params: BTreeSet<String> = (1..=stmt.parameter_count())
            .filter_map(|i| stmt.parameter_name(i).map(|n| n[1..].to_owned()))
            .collect();
        drop(stmt);
        assert!(
            !params.is_empty(),
            "{}: canned queries take named parameters",
            q.name
        );
        let ex = examples(&s.db, q);
        assert_eq!(
            ex.keys().cloned().collect::<BTreeSet<_>>(),
            params,
            "{}: give an `-- example:` for every parameter",
            q.name
        );
        // With the form left empty (the defaults) and with the examples.
        for p in [BTreeMap::new(), ex] {
            let r = run(&s.db, &q.sql, &p).unwrap_or_else(|e| panic!("{}: {e}", q.name));
            assert!(
                !r.rows.is_empty() || reads_only_empty_tables(&s.db, &q.sql),
                "{} with {p:?} returned no rows",
                q.name
            );
            assert!(r.columns.iter().all(|c| !c.is_empty()));
        }
    }
}

/// `[[ ... ]]` blocks of datasette-dashboards: kept (brackets removed) when
/// their parameter is set, dropped otherwise.
fn apply_dashboard_options(sql: &str, params: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = sql;
    while let Some(start) = rest.find("[[") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("]]").expect("unclosed [[") + start;
        let inner = &rest[start + 2..end];
        let param = inner
            .split(':')
            .nth(1)
            .map(|p| {
                p.chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect::<String>()
            })
            .unwrap_or_default();
        if params.get(&param).is_some_and(|v| !v.is_empty()) {
            out.push_str(inner);
        }
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

/// Every `field` a Vega-Lite spec reads, minus those its transforms create.
fn vega_fields(spec: &Value, read: &mut BTreeSet<String>, made: &mut BTreeSet<String>) {
    match spec {
        Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("field", Value::String(f)) => {
                        read.insert(f.clone());
                    }
                    ("fold", Value::Array(fs)) => {
                        read.extend(fs.iter().filter_map(|f| f.as_str().map(str::to_owned)));
                    }
                    ("as", Value::String(a)) => {
                        made.insert(a.clone());
                    }
                    ("as", Value::Array(a)) => {
                        made.extend(a.iter().filter_map(|f| f.as_str().map(str::to_owned)));
                    }
                    _ => vega_fields(v, read, made),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| vega_fields(v, read, made)),
        _ => {}
    }
}

#[test]
fn every_datasette_dashboard_chart_runs_and_feeds_its_chart() {
    let s = synced();
    let m = metadata();
    let dashboards = m["plugins"]["datasette-dashboards"]
        .as_object()
        .expect("datasette-dashboards config");
    assert!(dashboards.contains_key(dash::DASHBOARD_SLUG));
    let day = |t: i64| {
        Timestamp::from_second(t)
            .unwrap()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .date()
            .to_string()
    };
    let mut charts_checked = 0;
    for (slug, d) in dashboards {
        let charts = d["charts"].as_object().expect("charts");
        // The layout places every chart, and only charts.
        let placed: BTreeSet<&str> = d["layout"]
            .as_array()
            .expect("layout")
            .iter()
            .flat_map(|r| r.as_array().unwrap().iter().map(|c| c.as_str().unwrap()))
            .filter(|c| *c != ".")
            .collect();
        let named: BTreeSet<&str> = charts.keys().map(String::as_str).collect();
        assert_eq!(placed, named, "{slug}: layout and charts differ");
        let filters: BTreeSet<String> = d["filters"]
            .as_object()
            .map(|f| f.keys().cloned().collect())
            .unwrap_or_default();
        let range = BTreeMap::from([
            ("date_from".to_owned(), day(s.to - 30 * 86400)),
            ("date_to".to_owned(), day(s.to - 86400)),
        ]);
        for (name, chart) in charts {
            let Some(sql) = chart["query"].as_str() else {
                continue;
            };
            assert_eq!(
                chart["db"].as_str(),
                Some(dash::DEFAULT_DB_NAME),
                "{name}: charts read the ouradb database"
            );
            assert!(
                sql.contains(":account"),
                "{slug}/{name}: the account filter does not reach the chart"
            );
            let mut second = range.clone();
            second.insert("account".to_owned(), SECOND_ACCOUNT.to_owned());
            let first = BTreeMap::from([("account".to_owned(), "default".to_owned())]);
            for p in [BTreeMap::new(), range.clone(), second, first] {
                let sql = apply_dashboard_options(sql, &p);
                let r = run(&s.db, &sql, &p).unwrap_or_else(|e| panic!("{slug}/{name}: {e}"));
                assert!(
                    !r.rows.is_empty() || reads_only_empty_tables(&s.db, &sql),
                    "{slug}/{name} with {p:?} returned no rows"
                );
                let mut read = BTreeSet::new();
                let mut made = BTreeSet::new();
                vega_fields(&chart["display"], &mut read, &mut made);
                for f in read.difference(&made) {
                    assert!(
                        r.columns.contains(f),
                        "{slug}/{name}: the chart reads `{f}`, the query returns {:?}",
                        r.columns
                    );
                }
            }
            // Parameters other than the filters would stay unbound.
            let conn = crate::util::reader(&s.db);
            let stmt = conn.prepare(&apply_dashboard_options(sql, &range)).unwrap();
            for i in 1..=stmt.parameter_count() {
                let p = &stmt.parameter_name(i).unwrap()[1..];
                assert!(filters.contains(p), "{slug}/{name}: :{p} is not a filter");
            }
            charts_checked += 1;
        }
    }
    assert!(charts_checked >= 10, "only {charts_checked} charts");
}

/// What Grafana sends the plugin for one panel over `from..to` (unix
/// seconds), expanded the way the plugin expands it: Grafana's template
/// service substitutes its global variables, then the plugin
/// (`pkg/plugin/variables.go`, `pkg/plugin/macros.go`) replaces `$__from` /
/// `$__to` and its macros. An `Err` is the error Grafana would show.
fn grafana_sql(raw: &str, from: i64, to: i64) -> Result<String, String> {
    grafana_sql_for(raw, from, to, ALL_ACCOUNTS)
}

/// The dashboard's `account` variable set to "All": its `allValue`.
const ALL_ACCOUNTS: &str = "*";

/// [`grafana_sql`] with the dashboard's `account` variable set to `account`
/// (a name, or [`ALL_ACCOUNTS`]).
fn grafana_sql_for(raw: &str, from: i64, to: i64, account: &str) -> Result<String, String> {
    let sql = grafana_template_vars(raw, from, to, account)?;
    // variables.go: plain ReplaceAll, seconds * 1000.
    let sql = sql
        .replace("$__from", &(from * 1000).to_string())
        .replace("$__to", &(to * 1000).to_string());
    plugin_macros(&sql, from, to)
}

/// Grafana's template service (`templateSrv.replace`): `$name` and
/// `${name}` of a known global variable are substituted, unknown names are
/// left as they are. `$__from`/`$__to` are milliseconds; `$__interval_ms`
/// is Grafana's interval for ~1000 data points over the range.
fn grafana_template_vars(raw: &str, from: i64, to: i64, account: &str) -> Result<String, String> {
    let (from_ms, to_ms) = (from * 1000, to * 1000);
    let interval_ms = ((to_ms - from_ms) / 1000).max(1000);
    // The plugin calls templateSrv.replace without a format: a single-value
    // variable goes in as its text, "All" as the variable's allValue.
    let vars = BTreeMap::from([
        ("account", account.to_owned()),
        ("__from", from_ms.to_string()),
        ("__to", to_ms.to_string()),
        ("__interval_ms", interval_ms.to_string()),
        ("__interval", format!("{}s", interval_ms / 1000)),
        ("__range_s", ((to_ms - from_ms) / 1000).to_string()),
        ("__range_ms", (to_ms - from_ms).to_string()),
    ]);
    if raw.contains("${") || raw.contains("[[") {
        return Err("the test does not expand ${...} / [[...]] variables: use $name".into());
    }
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::new();
    let mut rest = raw;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let name_len = rest[at + 1..]
            .find(|c| !word(c))
            .unwrap_or(rest.len() - at - 1);
        let name = &rest[at + 1..at + 1 + name_len];
        match vars.get(name) {
            Some(v) => out.push_str(v),
            None => out.push_str(&rest[at..at + 1 + name_len]),
        }
        rest = &rest[at + 1 + name_len..];
    }
    out.push_str(rest);
    Ok(out)
}

/// One match of the plugin's macro regex `\$__([_a-zA-Z0-9]+)\(([^\)]*)\)`
/// at or after `from`: (start, end, name, arguments). The arguments end at
/// the FIRST `)`, as the regex's `[^\)]*` makes them.
fn next_macro(sql: &str, from: usize) -> Option<(usize, usize, &str, &str)> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut search = from;
    while let Some(rel) = sql[search..].find("$__") {
        let start = search + rel;
        let name_at = start + 3;
        let name_len = sql[name_at..]
            .find(|c| !word(c))
            .unwrap_or(sql.len() - name_at);
        let after = name_at + name_len;
        if name_len > 0
            && sql[after..].starts_with('(')
            && let Some(close) = sql[after + 1..].find(')')
        {
            let args = &sql[after + 1..after + 1 + close];
            return Some((start, after + 2 + close, &sql[name_at..after], args));
        }
        search = start + 1;
    }
    None
}

/// The plugin's `applyMacros`: every match replaced in one pass, arguments
/// split on `,` (Go's `strings.Split`), unknown macros left unchanged.
fn plugin_macros(sql: &str, from: i64, to: i64) -> Result<String, String> {
    let mut out = String::new();
    let mut last = 0;
    while let Some((start, end, name, args)) = next_macro(sql, last) {
        let args: Vec<&str> = args.split(',').collect();
        let replaced = match name {
            "timeFilter" => time_filter(&args, from, to)?,
            "unixEpochGroupSeconds" => unix_epoch_group_seconds(&args)?,
            _ => sql[start..end].to_owned(),
        };
        out.push_str(&sql[last..start]);
        out.push_str(&replaced);
        last = end;
    }
    out.push_str(&sql[last..]);
    Ok(out)
}

/// `timeFilter` of macros.go, with its double-quoted `"%s"` (SQLite reads
/// it as a string literal) and the range in whole seconds.
fn time_filter(args: &[&str], from: i64, to: i64) -> Result<String, String> {
    if args.len() != 1 {
        return Err(format!(
            "unsupported number of arguments ({}) for timeFilter",
            args.len()
        ));
    }
    let c = args[0];
    Ok(format!(
        "CAST(CASE WHEN typeof({c}) = 'integer' THEN {c} ELSE strftime(\"%s\", {c}) END AS INTEGER) BETWEEN {from} AND {to}"
    ))
}

/// `unixEpochGroupSeconds` of macros.go: Go's `strconv.Atoi` of the second
/// argument trimmed of spaces (only), an optional `NULL` gap filling value.
fn unix_epoch_group_seconds(args: &[&str]) -> Result<String, String> {
    if args.len() < 2 || args.len() > 3 {
        return Err(format!(
            "unsupported number of arguments ({}) for unixEpochGroupSeconds",
            args.len()
        ));
    }
    let n: i64 = args[1].trim_matches(' ').parse().map_err(|_| {
        format!(
            "could not convert '{}' to an integer grouping interval",
            args[1]
        )
    })?;
    if args.len() == 3 && args[2].trim_matches(' ').to_lowercase() != "null" {
        return Err(format!("unsupported gap filling value of: `{}`", args[2]));
    }
    Ok(format!("cast(({} / {n}) as int) * {n}", args[0]))
}

/// A `$__name` (a Grafana variable or macro) Grafana and the plugin left in
/// the SQL: SQLite would read it as an unbound parameter.
fn unexpanded(sql: &str) -> Option<&str> {
    let at = sql.find("$__")?;
    let len = sql[at + 3..]
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(sql.len() - at - 3);
    Some(&sql[at..at + 3 + len])
}

/// Every panel, rows' nested panels included.
fn grafana_panels(d: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().expect("panels") {
        out.push(p);
        if let Some(inner) = p["panels"].as_array() {
            out.extend(inner);
        }
    }
    out
}

/// A quoted 'YYYY-MM-DD...' literal.
fn has_date_literal(sql: &str) -> bool {
    sql.split('\'').skip(1).step_by(2).any(|lit| {
        let b = lit.as_bytes();
        b.len() >= 10 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' && b[7] == b'-'
    })
}

/// Panel types whose x axis is time: their queries must name a time column.
const TIME_PANELS: &[&str] = &["timeseries", "state-timeline", "histogram"];

#[test]
fn grafana_dashboard_is_structurally_valid() {
    let d = grafana_dashboard();
    assert_eq!(d["uid"], "ouradb");
    let panels = grafana_panels(&d);
    let data_panels: Vec<_> = panels.iter().filter(|p| p["type"] != "row").collect();
    assert!(
        data_panels.len() >= 67,
        "{} panels; the peer ships 67",
        data_panels.len()
    );
    let mut ids = BTreeSet::new();
    let rows: Vec<&str> = panels
        .iter()
        .filter(|p| p["type"] == "row")
        .map(|p| p["title"].as_str().unwrap())
        .collect();
    for want in [
        "Snapshot",
        "Scores",
        "Sleep",
        "Physiology",
        "Activity",
        "Workouts",
        "Stress",
        "Heart rate",
        "Tags",
        "coverage",
        "Ingestion",
    ] {
        assert!(rows.iter().any(|r| r.contains(want)), "no row about {want}");
    }
    for p in panels {
        let id = p["id"].as_i64().expect("panel id");
        assert!(ids.insert(id), "duplicate panel id {id}");
        let title = p["title"].as_str().expect("title");
        let g = &p["gridPos"];
        let (x, w) = (g["x"].as_i64().unwrap(), g["w"].as_i64().unwrap());
        assert!(
            x >= 0 && w > 0 && x + w <= 24 && g["h"].as_i64().unwrap() > 0,
            "{title}: gridPos {g}"
        );
        if p["type"] == "row" {
            continue;
        }
        assert_eq!(p["datasource"]["type"], PLUGIN, "{title}: datasource");
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title}: no query");
        for t in targets {
            assert_eq!(
                t["datasource"]["type"], PLUGIN,
                "{title}: target datasource"
            );
            let raw = t["rawQueryText"].as_str().expect("rawQueryText");
            assert!(!raw.trim().is_empty(), "{title}: empty query");
            assert_eq!(t["queryText"].as_str(), Some(raw), "{title}: queryText");
            assert!(
                matches!(t["queryType"].as_str(), Some("table" | "time series")),
                "{title}: queryType {}",
                t["queryType"]
            );
            let cols = t["timeColumns"].as_array().expect("timeColumns array");
            assert!(cols.iter().all(Value::is_string), "{title}: timeColumns");
            if TIME_PANELS.contains(&p["type"].as_str().unwrap()) {
                assert!(!cols.is_empty(), "{title}: a time panel needs timeColumns");
            }
            assert!(
                !has_date_literal(raw),
                "{title}: hard-coded dates; use $__from / $__to"
            );
        }
    }
}

#[test]
fn grafana_provisioning_names_the_plugin_and_placeholders() {
    assert!(dash::GRAFANA_DATASOURCE.contains(&format!("type: {PLUGIN}")));
    assert!(dash::GRAFANA_DATASOURCE.contains("uid: ouradb"));
    assert!(dash::GRAFANA_DATASOURCE.contains(dash::GRAFANA_DB_PLACEHOLDER));
    assert!(dash::GRAFANA_PROVIDER.contains(dash::GRAFANA_DASHBOARDS_PLACEHOLDER));
    for p in grafana_panels(&grafana_dashboard()) {
        if p["type"] != "row" {
            assert_eq!(p["datasource"]["uid"], "ouradb", "{}", p["title"]);
        }
    }
}

/// Panels that may return no rows on the 1-year simulated file: (title,
/// the table whose emptiness excuses it, why that table can be empty). A
/// listed panel without rows still fails when its table holds rows; any
/// other panel without rows fails: in Grafana it would show "No data".
const LEGITIMATELY_EMPTY: &[(&str, &str, &str)] = &[(
    "Rest mode periods",
    "rest_mode_period",
    "the simulator starts a rest mode period in half of its 120-day blocks, so about one simulated year in eight has none",
)];

/// Whether `title` may show no rows on the synced file (see [`LEGITIMATELY_EMPTY`]).
fn may_be_empty(db: &Path, title: &str) -> bool {
    LEGITIMATELY_EMPTY
        .iter()
        .any(|(t, table, _)| *t == title && crate::util::count(db, table) == 0)
}

/// What is wrong with one panel target on the synced file, as Grafana would
/// run it (nothing when it runs and returns plottable rows).
fn panel_problems(s: &Synced, panel: &Value, target: &Value, account: &str) -> Vec<String> {
    let name = panel["title"].as_str().unwrap();
    let title = &format!("{name} (account {account})");
    let raw = target["rawQueryText"].as_str().unwrap();
    let sql = match grafana_sql_for(raw, s.from, s.to, account) {
        Ok(sql) => sql,
        Err(e) => return vec![format!("{title}: Grafana shows: {e}")],
    };
    if let Some(left) = unexpanded(&sql) {
        return vec![format!(
            "{title}: {left} is neither a Grafana variable nor a macro the plugin expands: {sql}"
        )];
    }
    let r = match run(&s.db, &sql, &BTreeMap::new()) {
        Ok(r) => r,
        Err(e) => return vec![format!("{title}: {e}\n{sql}")],
    };
    let mut problems = Vec::new();
    if r.rows.is_empty() && !may_be_empty(&s.db, name) {
        problems.push(format!("{title}: no rows (list it in LEGITIMATELY_EMPTY with the reason if that is right)\n{sql}"));
    }
    for c in target["timeColumns"].as_array().unwrap() {
        let c = c.as_str().unwrap();
        if !r.columns.iter().any(|x| x == c) {
            problems.push(format!("{title}: time column {c} not in {:?}", r.columns));
            continue;
        }
        if let Some(e) = r.column(c).find_map(|v| unix_seconds(v).err()) {
            problems.push(format!("{title}: {c}: {e}"));
        }
    }
    if TIME_PANELS.contains(&panel["type"].as_str().unwrap()) && r.columns.len() < 2 {
        problems.push(format!("{title}: nothing to plot"));
    }
    problems
}

#[test]
fn every_grafana_panel_query_runs_with_time_columns_in_seconds() {
    let s = synced();
    let d = grafana_dashboard();
    let mut checked = 0;
    let mut problems = Vec::new();
    for p in grafana_panels(&d) {
        if p["type"] == "row" {
            continue;
        }
        for t in p["targets"].as_array().unwrap() {
            checked += 1;
            for account in [ALL_ACCOUNTS, "default", SECOND_ACCOUNT] {
                problems.extend(panel_problems(s, p, t, account));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(checked >= 67);
    let titles: BTreeSet<&str> = grafana_panels(&d)
        .iter()
        .filter_map(|p| p["title"].as_str())
        .collect();
    for (t, _, why) in LEGITIMATELY_EMPTY {
        assert!(
            titles.contains(t),
            "LEGITIMATELY_EMPTY names no panel {t} ({why})"
        );
    }
}

#[test]
fn macros_expand_as_the_plugin_expands_them() {
    let (from, to) = (1_700_000_000, 1_700_086_400);
    // Grafana's variables: milliseconds; Grafana leaves unknown names, the
    // plugin's plain ReplaceAll then replaces a `$__from` prefix too.
    assert_eq!(
        grafana_template_vars("SELECT $__from / 1000, $__to, $__fromage", from, to, "*").unwrap(),
        "SELECT 1700000000000 / 1000, 1700086400000, $__fromage"
    );
    assert_eq!(
        grafana_sql("SELECT $__fromage", from, to).unwrap(),
        "SELECT 1700000000000age"
    );
    assert_eq!(
        grafana_sql("SELECT $__unixEpochGroupSeconds(ts, 3600) FROM x", from, to).unwrap(),
        "SELECT cast((ts / 3600) as int) * 3600 FROM x"
    );
    assert_eq!(
        grafana_sql("SELECT $__unixEpochGroupSeconds(ts,  60 , NULL)", from, to).unwrap(),
        "SELECT cast((ts / 60) as int) * 60"
    );
    assert_eq!(
        grafana_sql("WHERE $__timeFilter(ts)", from, to).unwrap(),
        "WHERE CAST(CASE WHEN typeof(ts) = 'integer' THEN ts ELSE strftime(\"%s\", ts) END AS INTEGER) BETWEEN 1700000000 AND 1700086400"
    );
    // The arguments end at the first `)`: what broke the Workout panels.
    assert_eq!(
        grafana_sql(
            "SELECT $__unixEpochGroupSeconds(CAST(strftime('%s', day) AS INTEGER), 604800)",
            from,
            to
        ),
        Err("could not convert ' day' to an integer grouping interval".into())
    );
    assert_eq!(
        grafana_sql("$__timeFilter(a, b)", from, to),
        Err("unsupported number of arguments (2) for timeFilter".into())
    );
    assert_eq!(
        grafana_sql("$__unixEpochGroupSeconds(ts)", from, to),
        Err("unsupported number of arguments (1) for unixEpochGroupSeconds".into())
    );
    assert_eq!(
        grafana_sql("$__unixEpochGroupSeconds(ts, 60, 0)", from, to),
        Err("unsupported gap filling value of: ` 0`".into())
    );
    // Unknown macros are left for SQLite (and this test) to reject.
    let kept = grafana_sql("SELECT $__timeGroup(ts, 1h)", from, to).unwrap();
    assert_eq!(unexpanded(&kept), Some("$__timeGroup"));
    // The double-quoted "%s" of timeFilter runs in SQLite as the plugin's does.
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    let n: i64 = conn
        .query_row(
            &format!(
                "SELECT count(*) FROM (SELECT '2023-11-15T00:00:00Z' AS ts) WHERE {}",
                grafana_sql("$__timeFilter(ts)", from, to).unwrap()
            ),
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 1);
}

/// The two Workout panels as shipped before the fix: a `)` inside the
/// macro's arguments.
const OLD_WORKOUT_PANELS: &[(&str, &str)] = &[
    (
        "Workout minutes per week",
        "SELECT $__unixEpochGroupSeconds(CAST(strftime('%s', day) AS INTEGER), 604800) AS time, round(sum(strftime('%s', end_datetime) - strftime('%s', start_datetime)) / 60.0) AS minutes FROM workout WHERE day >= date($__from / 1000, 'unixepoch') AND day <= date($__to / 1000, 'unixepoch') GROUP BY 1 ORDER BY 1",
    ),
    (
        "Workout calories per week",
        "SELECT $__unixEpochGroupSeconds(CAST(strftime('%s', day) AS INTEGER), 604800) AS time, round(sum(calories)) AS calories FROM workout WHERE day >= date($__from / 1000, 'unixepoch') AND day <= date($__to / 1000, 'unixepoch') GROUP BY 1 ORDER BY 1",
    ),
];

#[test]
fn a_broken_panel_query_is_caught() {
    let s = synced();
    let panel = |title: &str, sql: &str| {
        let p = serde_json::json!({"title": title, "type": "timeseries"});
        let t = serde_json::json!({"rawQueryText": sql, "timeColumns": ["time"]});
        panel_problems(s, &p, &t, ALL_ACCOUNTS)
    };
    for (title, sql) in OLD_WORKOUT_PANELS {
        let problems = panel(title, sql);
        assert!(
            problems
                .iter()
                .any(|p| p.contains("could not convert ' day' to an integer grouping interval")),
            "{problems:?}"
        );
    }
    assert!(
        !panel(
            "x",
            "SELECT time, no_such_column FROM daily_metrics WHERE time >= $__from / 1000"
        )
        .is_empty()
    );
    let empty = panel(
        "x",
        "SELECT time, steps FROM daily_metrics WHERE time >= $__to / 1000 + 86400",
    );
    assert!(empty.iter().any(|p| p.contains("no rows")), "{empty:?}");
    let unknown = panel(
        "x",
        "SELECT time, steps FROM daily_metrics WHERE $__timeGroup(time, 1d) > 0",
    );
    assert!(
        unknown
            .iter()
            .any(|p| p.contains("$__timeGroup is neither")),
        "{unknown:?}"
    );
    let ms = panel("x", "SELECT time * 1000 AS time, steps FROM daily_metrics");
    assert!(ms.iter().any(|p| p.contains("not unix seconds")), "{ms:?}");
    assert!(has_date_literal("SELECT 1 WHERE day >= '2024-01-01'"));
    assert!(!has_date_literal("SELECT strftime('%s', day)"));
}

#[test]
fn dashboards_command_writes_files_for_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("my data.sqlite");
    Store::open(&db).expect("create");
    let out_dir = dir.path().join("dash");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ouradb"))
        .args(["dashboards", "--database"])
        .arg(&db)
        .arg("--dir")
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let last = stdout.lines().last().unwrap();
    let metadata = out_dir.join("datasette/metadata.json");
    assert!(last.starts_with("datasette serve "), "{last}");
    assert!(last.contains(&format!("'{}'", db.display())), "{last}");
    assert!(last.contains(&metadata.display().to_string()), "{last}");
    assert!(stdout.contains("/-/dashboards/ouradb"), "{stdout}");

    // Datasette names the database after the file: the metadata follows.
    let m: Value = serde_json::from_str(&std::fs::read_to_string(&metadata).unwrap()).unwrap();
    assert!(m["databases"]["my data"]["queries"].is_object());
    assert!(m["databases"].get("ouradb").is_none());
    for chart in m["plugins"]["datasette-dashboards"]["ouradb"]["charts"]
        .as_object()
        .unwrap()
        .values()
    {
        if chart.get("db").is_some() {
            assert_eq!(chart["db"], "my data");
        }
    }
    let ds = std::fs::read_to_string(out_dir.join("grafana/provisioning/datasources/ouradb.yaml"))
        .unwrap();
    assert!(ds.contains(&format!("path: {}", db.display())), "{ds}");
    let provider =
        std::fs::read_to_string(out_dir.join("grafana/provisioning/dashboards/ouradb.yaml"))
            .unwrap();
    assert!(provider.contains(&out_dir.join("grafana/dashboards").display().to_string()));
    assert_eq!(
        std::fs::read_to_string(out_dir.join("grafana/dashboards/ouradb.json")).unwrap(),
        dash::GRAFANA_DASHBOARD
    );
    assert!(out_dir.join("datasette/requirements.txt").is_file());
}

#[test]
fn serve_without_datasette_says_how_to_install_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ouradb.sqlite");
    Store::open(&db).expect("create");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ouradb"))
        .args(["dashboards", "--serve", "--database"])
        .arg(&db)
        .env("PATH", dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("datasette is not installed"), "{err}");
    // The files are written all the same, next to the database.
    assert!(
        dir.path()
            .join("ouradb-dashboards/datasette/metadata.json")
            .is_file()
    );
}

#[test]
fn demo_ends_with_the_datasette_command() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.sqlite");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ouradb"))
        .args(["demo", "--days", "5", "--database"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let last = stdout.lines().last().unwrap();
    assert!(last.starts_with("datasette serve "), "{last}");
    assert!(
        last.contains(
            &dir.path()
                .join("demo-dashboards/datasette/metadata.json")
                .display()
                .to_string()
        ),
        "{last}"
    );
    let m: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("demo-dashboards/datasette/metadata.json"))
            .unwrap(),
    )
    .unwrap();
    assert!(m["databases"]["demo"].is_object());
}

/// The Grafana `account` variable: one field listing the accounts (the
/// plugin's variable query takes exactly one), single-valued (the plugin
/// inserts several values as a `{a,b}` glob no SQL reads), "All" as a
/// GLOB that matches every name; every panel reading an account's rows
/// follows it, and each account's rows together are All's.
#[test]
fn the_grafana_account_variable_picks_whose_rows_every_panel_shows() {
    let s = synced();
    let d = grafana_dashboard();
    let vars = d["templating"]["list"].as_array().expect("templating");
    let v = vars
        .iter()
        .find(|v| v["name"] == "account")
        .expect("an account variable");
    assert_eq!(v["multi"], false);
    assert_eq!(v["includeAll"], true);
    assert_eq!(v["allValue"], ALL_ACCOUNTS);
    let names = run(&s.db, v["query"].as_str().unwrap(), &BTreeMap::new()).unwrap();
    assert_eq!(names.columns.len(), 1);
    let names: Vec<String> = names
        .column(&names.columns[0])
        .map(|n| match n {
            Sql::Text(t) => t.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(names, ["default", SECOND_ACCOUNT]);
    for p in grafana_panels(&d) {
        for t in p["targets"].as_array().into_iter().flatten() {
            let raw = t["rawQueryText"].as_str().unwrap();
            assert!(
                raw.contains("$account") || raw.contains("FROM webhook_"),
                "{}: reads every account's rows whatever the variable says: {raw}",
                p["title"]
            );
        }
    }
    let score = grafana_panels(&d)
        .into_iter()
        .find(|p| p["title"] == "Sleep score")
        .unwrap();
    let raw = score["targets"][0]["rawQueryText"].as_str().unwrap();
    let rows = |account: &str| {
        let sql = grafana_sql_for(raw, s.from, s.to, account).unwrap();
        run(&s.db, &sql, &BTreeMap::new()).unwrap().rows.len()
    };
    let (first, second, all) = (rows("default"), rows(SECOND_ACCOUNT), rows(ALL_ACCOUNTS));
    assert!(first > 0 && second > 0, "{first} {second}");
    assert_eq!(first + second, all);
}
