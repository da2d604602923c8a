//! Hostile servers and hostile files: a small fake Oura on 127.0.0.1 that
//! misbehaves on purpose (endless or cycling next_tokens, HTML with 200,
//! huge Retry-After, 404/422, duplicated and reordered pages), foreign and
//! damaged database files, and a lock held by another process. Each case
//! checks what is left in the database and the exact line the user reads.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::cli::ouradb_at;
use crate::util::{self, Env, assert_no_errors, fingerprint};

/// One request as the fake saw it.
pub struct Seen {
    pub query: Vec<(String, String)>,
    /// 0 for the first request.
    pub n: usize,
}

impl Seen {
    pub fn param(&self, k: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }
}

type Handler = Arc<dyn Fn(&Seen) -> Response + Send + Sync>;

/// A fake API server answering every request with `handler`.
pub struct Fake {
    pub base: String,
    pub hits: Arc<AtomicUsize>,
    stop: CancellationToken,
}

impl Fake {
    pub async fn start(handler: impl Fn(&Seen) -> Response + Send + Sync + 'static) -> Fake {
        Fake::start_delayed(|_| Duration::ZERO, handler).await
    }

    /// [`Fake::start`], each answer sent `delay(request)` after the request.
    pub async fn start_delayed(
        delay: impl Fn(&Seen) -> Duration + Send + Sync + 'static,
        handler: impl Fn(&Seen) -> Response + Send + Sync + 'static,
    ) -> Fake {
        let handler: Handler = Arc::new(handler);
        let delay = Arc::new(delay);
        let hits = Arc::new(AtomicUsize::new(0));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let counter = hits.clone();
        let app = axum::Router::new().fallback(move |uri: Uri| {
            let (handler, delay) = (handler.clone(), delay.clone());
            let n = counter.fetch_add(1, Ordering::SeqCst);
            async move {
                let query = url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect();
                let seen = Seen { query, n };
                tokio::time::sleep(delay(&seen)).await;
                handler(&seen)
            }
        });
        let stop = CancellationToken::new();
        let s = stop.clone();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { s.cancelled().await })
                .await
        });
        Fake { base, hits, stop }
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

pub fn json_page(data: serde_json::Value, next: Option<String>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        json!({"data": data, "next_token": next}).to_string(),
    )
        .into_response()
}

/// A config file for `base`, with fast retries; `auth` replaces the token line.
pub fn config_file(dir: &Path, base: &str, db: &Path, auth: &str) -> PathBuf {
    let path = dir.join("daemon.toml");
    std::fs::write(
        &path,
        format!(
            r#"[api]
base_url = "{base}"
timeout_seconds = 5
[auth]
{auth}
token_file = "{tokens}"
[storage]
database = "{db}"
[sync]
backfill_start = "{start}"
[retry]
max_attempts = 3
base_delay_ms = 10
max_delay_seconds = 1
"#,
            tokens = dir.join("tokens.json").display(),
            db = db.display(),
            start = util::today().saturating_sub(jiff::Span::new().days(20)),
        ),
    )
    .unwrap();
    path
}

const TOKEN_LINE: &str = "personal_access_token = \"hostile-test-token\"";

/// Runs the binary off the test's runtime threads, bounded in time.
async fn run(cfg: &Path, args: &[&str]) -> (Output, Duration) {
    let mut cmd = ouradb_at(cfg);
    cmd.env_remove("OURA_CLIENT_SECRET").args(args);
    let started = Instant::now();
    let out = tokio::time::timeout(
        Duration::from_secs(90),
        tokio::task::spawn_blocking(move || cmd.output().unwrap()),
    )
    .await
    .expect("ouradb ended within 90 s")
    .unwrap();
    (out, started.elapsed())
}

/// `ouradb sync --json --type daily_sleep --no-backfill` against `fake`
/// into a fresh database: the output, how long it took, the directory
/// (removed when dropped) and the database's path.
async fn sync_daily_sleep(fake: &Fake) -> (Output, Duration, tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.sqlite");
    let cfg = config_file(dir.path(), &fake.base, &db, TOKEN_LINE);
    let (out, took) = run(
        &cfg,
        &["sync", "--json", "--type", "daily_sleep", "--no-backfill"],
    )
    .await;
    (out, took, dir, db)
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The error of each type in `sync --json` output (the table cuts long
/// errors to the terminal width), one per line.
fn errors(out: &Output) -> String {
    let reports: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    reports
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["error"].as_str().map(str::to_owned))
        .collect::<Vec<_>>()
        .join("\n")
}

fn sync_state_requests(db: &Path, dt: &str) -> i64 {
    util::reader(db)
        .query_row(
            "SELECT requests FROM sync_state WHERE data_type = ?1",
            [dt],
            |r| r.get(0),
        )
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_next_token_forever_ends_within_a_minute_naming_the_pattern() {
    let fake = Fake::start(|s| json_page(json!([]), Some(format!("fresh-{}", s.n)))).await;
    let (out, took, _dir, db) = sync_daily_sleep(&fake).await;
    let (_, stderr) = text(&out);
    let stdout = errors(&out);
    assert!(took < Duration::from_secs(60), "took {took:?}");
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stdout.contains("daily_sleep: stopped paging window")
            && stdout.contains("because the API returned a new next_token on each of 1000 pages (0 documents in all)"),
        "{stdout}"
    );
    assert!(stderr.contains("ouradb: 1 data type(s) failed"), "{stderr}");
    assert_eq!(fake.hits(), 1000);
    assert_eq!(util::count(&db, "daily_sleep"), 0);
    assert_eq!(
        sync_state_requests(&db, "daily_sleep"),
        1000,
        "every request is counted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cycle_of_three_tokens_is_named_as_such() {
    let fake = Fake::start(|s| json_page(json!([]), Some(format!("cycle-{}", s.n % 3)))).await;
    let (out, _, _dir, _) = sync_daily_sleep(&fake).await;
    let stdout = errors(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout.contains(
            "because page 4 returned a next_token already returned by page 1 (a cycle of 3 page(s))"
        ),
        "{stdout}"
    );
    assert_eq!(fake.hits(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn html_with_200_names_a_portal_or_proxy_and_counts_every_attempt() {
    let fake = Fake::start(|_| {
        (
            [(header::CONTENT_TYPE, "text/html")],
            "<html><body>Please log in to the Wi-Fi</body></html>",
        )
            .into_response()
    })
    .await;
    let (out, _, _dir, db) = sync_daily_sleep(&fake).await;
    let stdout = errors(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout.contains("daily_sleep: unreadable response after 3 attempts (HTTP 200 with an HTML page instead of JSON: a captive portal, login page or proxy answered, or api.base_url is not the Oura API)"),
        "{stdout}"
    );
    assert_eq!(fake.hits(), 3);
    assert_eq!(
        sync_state_requests(&db, "daily_sleep"),
        3,
        "failed attempts are counted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_body_is_retried_and_json_of_the_wrong_shape_is_not() {
    for (body, hits, cause) in [
        // Cut off mid-page: the next attempt may get all of it.
        (
            r#"{"data": [{"id": "a", "day""#,
            3,
            "malformed JSON: EOF while parsing",
        ),
        // Well-formed, but not a page: asking again gets the same.
        (
            r#"{"data": 5}"#,
            1,
            "invalid type: integer `5`, expected a sequence",
        ),
    ] {
        let fake = Fake::start(move |_| {
            ([(header::CONTENT_TYPE, "application/json")], body).into_response()
        })
        .await;
        let (out, _, _dir, db) = sync_daily_sleep(&fake).await;
        let errors = errors(&out);
        assert_eq!(out.status.code(), Some(1), "{body}");
        assert!(
            errors.contains(&format!(
                "daily_sleep: unreadable response after {hits} attempt"
            )),
            "{body}: {errors}"
        );
        assert!(errors.contains(cause), "{body}: {errors}");
        assert_eq!(fake.hits(), hits, "{body}");
        assert_eq!(
            sync_state_requests(&db, "daily_sleep"),
            hits as i64,
            "{body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_an_hour_ends_within_max_wait_and_says_why() {
    let fake = Fake::start(|_| {
        (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "3600")],
            "{}",
        )
            .into_response()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.sqlite");
    let cfg = config_file(dir.path(), &fake.base, &db, TOKEN_LINE);
    let (out, took) = run(
        &cfg,
        &[
            "sync",
            "--json",
            "--type",
            "daily_sleep",
            "--no-backfill",
            "--max-wait",
            "2m",
        ],
    )
    .await;
    let (_, stderr) = text(&out);
    let stdout = errors(&out);
    assert!(took < Duration::from_secs(30), "took {took:?}");
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stdout.contains("daily_sleep: Oura's rate limit asks to wait until")
            && stdout.contains(
                "(1 h 0 min), beyond --max-wait 2 min; stopped this type with nothing lost"
            ),
        "{stdout}"
    );
    assert!(
        stderr.contains("ouradb: rate-limited by Oura: daily_sleep stopped waiting; run `ouradb sync` again later"),
        "{stderr}"
    );
    assert_eq!(fake.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_rate_limit_wait_is_announced_then_the_sync_finishes() {
    let fake = Fake::start(|s| {
        if s.n == 0 {
            (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, "1")],
                "{}",
            )
                .into_response()
        } else {
            json_page(json!([]), None)
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.sqlite");
    let cfg = config_file(dir.path(), &fake.base, &db, TOKEN_LINE);
    let (out, took) = run(&cfg, &["sync", "--type", "daily_sleep", "--no-backfill"]).await;
    let (_, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(took >= Duration::from_secs(1), "the wait was honoured");
    assert!(
        stderr.contains("ouradb: Oura rate limit: waiting until")
            && stderr.contains("(2 s) for daily_sleep; Ctrl-C to stop (--max-wait 5 min)"),
        "{stderr}"
    );
    assert_eq!(fake.hits(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_base_url_with_a_path_gets_a_404_that_says_so() {
    let env = Env::start(5, |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.sqlite");
    let base = format!("{}/v2", env.sim.base_url());
    let cfg = config_file(
        dir.path(),
        &base,
        &db,
        &format!("personal_access_token = \"{}\"", util::TOKEN),
    );
    let (out, _) = run(
        &cfg,
        &["sync", "--json", "--type", "daily_sleep", "--no-backfill"],
    )
    .await;
    let stdout = errors(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout.contains("daily_sleep: the server has no /v2/v2/usercollection/daily_sleep (HTTP 404); api.base_url must be the API's root, e.g. \"https://api.ouraring.com\" with no /v2 or other path (ouradb adds /v2/usercollection/... itself); the configured api.base_url ends in `/v2`: remove that path"),
        "{stdout}"
    );
    assert!(!stdout.contains("bug in ouradb"), "{stdout}");
    env.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_422_is_not_called_a_bug_in_ouradb() {
    let fake = Fake::start(|_| {
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            [(header::CONTENT_TYPE, "application/json")],
            json!({"detail": [{"loc": ["query", "start_date"], "msg": "invalid date", "type": "x"}]})
                .to_string(),
        )
            .into_response()
    })
    .await;
    let (out, _, _dir, _) = sync_daily_sleep(&fake).await;
    let stdout = errors(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout.contains("daily_sleep: the API refused ouradb's query (HTTP 422: query.start_date: invalid date); check that api.base_url points at the Oura API itself"),
        "{stdout}"
    );
    assert!(!stdout.contains("bug in ouradb"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_or_missing_tokens_stop_before_any_request() {
    let fake = Fake::start(|_| json_page(json!([]), None)).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.sqlite");
    for (auth, key, expected) in [
        (
            "personal_access_token = \"abc\\ndef\"",
            "auth.personal_access_token",
            "contains a line break, space or other character a token cannot have; copy the token again as one line",
        ),
        (
            "personal_access_token = \"\"",
            "auth.personal_access_token",
            "no Oura credentials are configured (the token is empty or missing), so nothing was requested; set it (or OURA_TOKEN), or run `ouradb auth login`",
        ),
    ] {
        let cfg = config_file(dir.path(), &fake.base, &db, auth);
        let (out, _) = run(&cfg, &["sync", "--type", "daily_sleep"]).await;
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
        assert!(
            stderr.starts_with(&format!("ouradb: config key `{key}`: "))
                && stderr.contains(expected),
            "{stderr}"
        );
    }
    let empty = dir.path().join("empty-token");
    std::fs::write(&empty, "\n").unwrap();
    let cfg = config_file(
        dir.path(),
        &fake.base,
        &db,
        &format!("personal_access_token_file = \"{}\"", empty.display()),
    );
    let (out, _) = run(&cfg, &["sync", "--type", "daily_sleep"]).await;
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("config key `auth.personal_access_token_file`: is empty"),
        "{stderr}"
    );
    assert_eq!(fake.hits(), 0, "nothing was sent");
}

/// Bytes of every file in `dir`, by name.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_files_are_refused_before_any_write() {
    let fake = Fake::start(|_| json_page(json!([]), None)).await;
    let outer = tempfile::tempdir().unwrap();
    let cases: [(&str, &str, &str); 4] = [
        (
            "PRAGMA journal_mode = WAL; CREATE TABLE events (at TEXT);",
            "WAL mode",
            "is not an ouradb database (a SQLite database with tables events at user_version 0); ouradb wrote nothing to it. Point storage.database at a new file",
        ),
        (
            "CREATE TABLE contacts (name TEXT, phone TEXT); INSERT INTO contacts VALUES ('Ada', '123');",
            "contacts",
            "is not an ouradb database (a SQLite database with tables contacts at user_version 0); ouradb wrote nothing to it. Point storage.database at a new file",
        ),
        (
            "CREATE TABLE notes (body TEXT); CREATE TABLE sync_state (x); PRAGMA user_version = 1;",
            "user_version 1",
            "is not an ouradb database (a SQLite database with tables notes, sync_state at user_version 1); ouradb wrote nothing to it. Point storage.database at a new file",
        ),
        (
            "PRAGMA application_id = 42; CREATE TABLE daily_sleep (x); CREATE TABLE sync_state (x); CREATE TABLE heartrate (x); CREATE TABLE sleep (x);",
            "application_id",
            "is not an ouradb database (its application_id is 0x0000002a); ouradb wrote nothing to it. Point storage.database at a new file",
        ),
    ];
    for (sql, label, expected) in cases {
        let dir = tempfile::tempdir_in(outer.path()).unwrap();
        let db = dir.path().join("other-app.sqlite");
        rusqlite::Connection::open(&db)
            .unwrap()
            .execute_batch(sql)
            .unwrap();
        let cfg_dir = tempfile::tempdir_in(outer.path()).unwrap();
        let cfg = config_file(cfg_dir.path(), &fake.base, &db, TOKEN_LINE);
        let before = snapshot(dir.path());
        assert_eq!(before.len(), 1, "{label}: only the file itself");
        for args in [&["sync"][..], &["status"][..]] {
            let (out, _) = run(&cfg, args).await;
            let (_, stderr) = text(&out);
            assert_eq!(out.status.code(), Some(1), "{label} {args:?}: {stderr}");
            assert_eq!(
                stderr.trim_end(),
                format!("ouradb: {} {expected}", db.display()),
                "{label} {args:?}"
            );
            assert_eq!(snapshot(dir.path()), before, "{label} {args:?}: untouched");
        }
    }
    assert_eq!(fake.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_is_not_a_database_is_named_once_with_the_check_to_run() {
    let fake = Fake::start(|_| json_page(json!([]), None)).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("notes.txt");
    std::fs::write(&db, "shopping list\n".repeat(20)).unwrap();
    let cfg = config_file(dir.path(), &fake.base, &db, TOKEN_LINE);
    let before = std::fs::read(&db).unwrap();
    for args in [&["sync"][..], &["status"][..]] {
        let (out, _) = run(&cfg, args).await;
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        let shown = db.display().to_string();
        assert_eq!(
            stderr.trim_end(),
            format!(
                "ouradb: {shown} is not a SQLite database, or it is damaged (no SQLite header); ouradb wrote nothing to it. Check it with `sqlite3 {shown} \"PRAGMA integrity_check\"`, restore it from a backup, or point storage.database at a new file"
            )
        );
        assert_eq!(
            stderr.matches(&shown).count(),
            2,
            "the path, and in the command"
        );
    }
    assert_eq!(std::fs::read(&db).unwrap(), before);
    assert!(!dir.path().join("notes.txt-wal").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_on_a_damaged_database_names_the_file_and_the_check() {
    let env = Env::start(30, |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.sqlite");
    assert_no_errors(&env.sync_with(env.config_for(&db)).await);
    // Cut the file in half: its header still promises every page.
    let len = std::fs::metadata(&db).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&db)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let cfg = config_file(dir.path(), &env.sim.base_url(), &db, TOKEN_LINE);
    let (out, _) = run(&cfg, &["status"]).await;
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let shown = db.display().to_string();
    assert!(
        stderr.contains(&format!(
            "{shown} is damaged; check it with `sqlite3 {shown} \"PRAGMA integrity_check\"`, then restore it from a backup"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("Error code 522"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    env.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_held_by_another_process_is_named_as_such() {
    let fake = Fake::start(|_| json_page(json!([]), None)).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.sqlite");
    let cfg = config_file(dir.path(), &fake.base, &db, TOKEN_LINE);
    let (out, _) = run(&cfg, &["sync", "--type", "daily_sleep", "--no-backfill"]).await;
    assert!(out.status.success(), "{}", text(&out).1);
    let before = fingerprint(&db);
    let holder = rusqlite::Connection::open(&db).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let (out, took) = run(
        &cfg,
        &["sync", "--json", "--type", "daily_sleep", "--no-backfill"],
    )
    .await;
    holder.execute_batch("ROLLBACK").unwrap();
    let (_, stderr) = text(&out);
    let stdout = errors(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(took < Duration::from_secs(60));
    assert!(
        stdout.contains(&format!(
            "daily_sleep: database error: database is locked; {} is locked by another process (another `ouradb sync`, the daemon, or a program holding a write transaction) for longer than 5 s",
            db.display()
        )),
        "{stdout}"
    );
    assert!(!stdout.contains("disk space"), "{stdout}");
    assert_eq!(fingerprint(&db), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicated_and_reordered_pages_store_the_same_rows() {
    let docs: Vec<serde_json::Value> = (0..12)
        .map(|i| {
            let day = util::today().saturating_sub(jiff::Span::new().days(i));
            json!({"id": format!("ds-{i}"), "day": day.to_string(), "score": 60 + i,
                   "timestamp": format!("{day}T00:00:00+00:00"), "contributors": {}})
        })
        .collect();
    let pages: Vec<Vec<serde_json::Value>> = docs.chunks(4).map(<[_]>::to_vec).collect();
    // Straight: p0 p1 p2. Hostile: p2 p0 p0 p1 p2, each under a new token.
    let serve = |order: Vec<usize>| {
        let pages = pages.clone();
        move |s: &Seen| {
            let i: usize = s
                .param("next_token")
                .map(|t| t.parse().unwrap())
                .unwrap_or(0);
            let next = (i + 1 < order.len()).then(|| (i + 1).to_string());
            json_page(json!(pages[order[i]]), next)
        }
    };
    let mut prints = Vec::new();
    for order in [vec![0, 1, 2], vec![2, 0, 0, 1, 2]] {
        let fake = Fake::start(serve(order)).await;
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db.sqlite");
        let cfg = config_file(dir.path(), &fake.base, &db, TOKEN_LINE);
        let (out, _) = run(
            &cfg,
            &[
                "sync",
                "--type",
                "daily_sleep",
                "--no-backfill",
                "--since",
                &util::today()
                    .saturating_sub(jiff::Span::new().days(15))
                    .to_string(),
            ],
        )
        .await;
        assert!(out.status.success(), "{}", text(&out).1);
        assert_eq!(util::count(&db, "daily_sleep"), 12);
        prints.push(fingerprint(&db));
    }
    assert_eq!(prints[0], prints[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_sync_like_ctrl_c_with_a_summary() {
    // Slow, endless pages: the run is mid-window when the signal arrives.
    let fake = Fake::start(|s| {
        std::thread::sleep(Duration::from_millis(100));
        json_page(json!([]), Some(format!("slow-{}", s.n)))
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.sqlite");
    let cfg = config_file(dir.path(), &fake.base, &db, TOKEN_LINE);
    let child = ouradb_at(&cfg)
        .args(["sync", "--type", "daily_sleep", "--no-backfill"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while fake.hits() < 3 {
        assert!(Instant::now() < deadline, "the sync never started paging");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()),
    )
    .await
    .expect("stopped in time")
    .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "not killed by the signal: {stderr}"
    );
    assert!(
        stderr.contains("ouradb: interrupted (SIGTERM); finishing the current page"),
        "{stderr}"
    );
    assert!(
        stderr.contains("ouradb: interrupted; 1 data type(s) not finished, every committed page is kept: run `ouradb sync` again to continue"),
        "{stderr}"
    );
    assert!(stdout.contains("daily_sleep"), "summary table: {stdout}");
}

fn application_id(db: &Path) -> i64 {
    util::reader(db)
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn ouradb_files_are_marked_and_unmarked_older_ones_recognised() {
    use ouradb::store::Store;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.sqlite");
    drop(Store::open(&db).unwrap());
    assert_eq!(application_id(&db), 0x4F55_5241, "marked on creation");
    // A file made before ouradb marked its databases: same tables, id 0.
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("PRAGMA application_id = 0")
        .unwrap();
    assert_eq!(application_id(&db), 0);
    let before = fingerprint(&db);
    drop(Store::open_read_only(&db).unwrap());
    assert_eq!(application_id(&db), 0, "a reader never writes");
    drop(Store::open(&db).unwrap());
    assert_eq!(
        application_id(&db),
        0x4F55_5241,
        "marked when opened for writing"
    );
    assert_eq!(fingerprint(&db), before);
    // An empty file (e.g. made by `touch`) is ouradb's to fill.
    let empty = dir.path().join("empty.sqlite");
    std::fs::write(&empty, b"").unwrap();
    drop(Store::open(&empty).unwrap());
    assert_eq!(application_id(&empty), 0x4F55_5241);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_header_is_named_once_with_the_check_to_run() {
    let fake = Fake::start(|_| json_page(json!([]), None)).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("broken.sqlite");
    let mut bytes = b"SQLite format 3\0".to_vec();
    bytes.resize(8192, 0);
    std::fs::write(&db, &bytes).unwrap();
    let cfg = config_file(dir.path(), &fake.base, &db, TOKEN_LINE);
    let shown = db.display().to_string();
    for args in [&["sync"][..], &["status"][..]] {
        let (out, _) = run(&cfg, args).await;
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert_eq!(
            stderr.trim_end(),
            format!(
                "ouradb: {shown} is damaged; check it with `sqlite3 {shown} \"PRAGMA integrity_check\"`, then restore it from a backup, or move it aside and run `ouradb sync` to fetch everything again (SQLite: file is not a database)"
            ),
            "{args:?}"
        );
    }
    assert_eq!(std::fs::read(&db).unwrap(), bytes, "untouched");
    assert!(!dir.path().join("broken.sqlite-wal").exists());
}

#[test]
fn the_daemon_without_credentials_stops_before_any_request() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.sqlite");
    let cfg = config_file(dir.path(), "http://127.0.0.1:9", &db, "");
    let out = ouradb_at(&cfg)
        .env_remove("OURA_CLIENT_SECRET")
        .arg("daemon")
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(
        stderr.trim_end(),
        "ouradb: config key `auth.personal_access_token`: no Oura credentials are configured (the token is empty or missing), so nothing was requested; set it (or OURA_TOKEN), or run `ouradb auth login` to sign in with OAuth2"
    );
    assert!(!db.exists(), "nothing was created");
}

/// Backfill windows of one type run side by side, and the floor moves only
/// over windows that are stored and touch it. Here the newest backfill
/// window fails a second after it started, while the older windows beside
/// it finish: their samples are stored, but the floor stays above the
/// failed window (a later run re-fetches from there), and the next run
/// completes the backfill.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_windows_run_side_by_side_and_the_floor_waits_for_a_failed_one() {
    use ouradb::sync::plan;
    let today = util::today();
    let start = today.saturating_sub(jiff::Span::new().days(150));
    let inc = plan::incremental_window(None, None, today, 3);
    let size = ouradb::registry::find("heartrate")
        .unwrap()
        .backfill_window_days;
    let windows = plan::backfill_windows(inc.from, start, size);
    assert!(windows.len() >= 5, "{windows:?}");
    let newest = windows[0].from.to_string();
    let failing = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let (fail, wait, slow) = (failing.clone(), failing.clone(), newest.clone());
    let is_newest_page_2 = move |s: &Seen| {
        s.param("next_token").is_some()
            && s.param("start_datetime")
                .is_some_and(|d| d.starts_with(&slow))
    };
    let delayed = is_newest_page_2.clone();
    // Two pages per window: one sample on its first day, one on its second.
    let fake = Fake::start_delayed(
        move |s| {
            if delayed(s) && wait.load(Ordering::SeqCst) {
                Duration::from_secs(1)
            } else {
                Duration::ZERO
            }
        },
        move |s| {
            if is_newest_page_2(s) && fail.load(Ordering::SeqCst) {
                return (StatusCode::UNPROCESSABLE_ENTITY, "{\"detail\":\"no\"}").into_response();
            }
            let from: jiff::civil::Date = s.param("start_datetime").unwrap()[..10].parse().unwrap();
            let (day, next) = match s.param("next_token") {
                None => (from, Some("2".to_owned())),
                Some(_) => (from.tomorrow().unwrap(), None),
            };
            json_page(
                json!([{"bpm": 60, "source": "awake", "timestamp": format!("{day}T12:00:00+00:00")}]),
                next,
            )
        },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.sqlite");
    let cfg = config_file(dir.path(), &fake.base, &db, TOKEN_LINE);
    let text_of = std::fs::read_to_string(&cfg).unwrap();
    let line = text_of
        .lines()
        .find(|l| l.starts_with("backfill_start"))
        .unwrap();
    std::fs::write(
        &cfg,
        text_of.replace(
            line,
            &format!("backfill_start = \"{start}\"\nlookback_days = 3"),
        ),
    )
    .unwrap();
    let floor = |db: &Path| -> (Option<String>, bool) {
        util::reader(db)
            .query_row(
                "SELECT backfill_floor, backfill_complete FROM sync_state WHERE data_type = 'heartrate'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap()
    };
    let stored_days = |db: &Path| -> Vec<String> {
        let conn = util::reader(db);
        let mut stmt = conn
            .prepare("SELECT date(ts, 'unixepoch') FROM heartrate ORDER BY ts")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };

    let (out, _) = run(&cfg, &["sync", "--json", "--type", "heartrate"]).await;
    assert_ne!(out.status.code(), Some(0), "{}", text(&out).1);
    let days = stored_days(&db);
    for w in &windows[1..3] {
        let first = w.from.to_string();
        assert!(
            days.contains(&first),
            "window {}..{} finished beside the failing one: {days:?}",
            w.from,
            w.to
        );
    }
    assert_eq!(
        floor(&db),
        (Some(inc.from.to_string()), false),
        "the floor stays above the failed window"
    );

    failing.store(false, Ordering::SeqCst);
    let (out, _) = run(&cfg, &["sync", "--json", "--type", "heartrate"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    assert_eq!(floor(&db), (Some(start.to_string()), true));
    let days = stored_days(&db);
    for w in &windows {
        assert!(days.contains(&w.from.to_string()), "{w:?} in {days:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sample_interval_of_1e300_stores_the_samples_without_times() {
    let day = util::today();
    let start = format!("{day}T00:00:00+00:00");
    let doc = json!({"id": "s-1", "day": day.to_string(), "type": "long_sleep",
        "bedtime_start": start, "bedtime_end": format!("{day}T07:00:00+00:00"),
        "heart_rate": {"interval": 1e300, "items": [50, 51, null], "timestamp": start},
        "hrv": {"interval": 300.0, "items": [40, 41], "timestamp": start}});
    let fake = Fake::start(move |_| json_page(json!([doc.clone()]), None)).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.sqlite");
    let cfg = config_file(dir.path(), &fake.base, &db, TOKEN_LINE);
    let (out, _) = run(&cfg, &["sync", "--type", "sleep", "--no-backfill"]).await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let rows = |table: &str| -> Vec<(i64, Option<i64>)> {
        let conn = util::reader(&db);
        let mut stmt = conn
            .prepare(&format!(
                "SELECT offset, timestamp FROM {table} ORDER BY offset"
            ))
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let t0 = day
        .to_zoned(jiff::tz::TimeZone::UTC)
        .unwrap()
        .timestamp()
        .as_second();
    // The first sample is at the start; the others have no time to give.
    assert_eq!(
        rows("sleep_heart_rate"),
        vec![(0, Some(t0)), (1, None), (2, None)]
    );
    assert_eq!(rows("sleep_hrv"), vec![(0, Some(t0)), (1, Some(t0 + 300))]);
}
