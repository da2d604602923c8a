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
    pub path: String,
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
                let seen = Seen {
                    path: uri.path().to_owned(),
                    query,
                    n,
                };
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
    // As README asks: it holds a token (else every command warns).
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    path
}

const TOKEN_LINE: &str = "personal_access_token = \"hostile-test-token\"";

/// Runs the binary off the test's runtime threads, bounded in time.
pub async fn run(cfg: &Path, args: &[&str]) -> (Output, Duration) {
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
            "{shown} is damaged; see what is wrong with `ouradb check --database {shown}`, then restore it from a backup"
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
                "ouradb: {shown} is damaged; see what is wrong with `ouradb check --database {shown}`, then restore it from a backup (`ouradb backup` makes them), or move it aside and run `ouradb sync` to fetch everything again (SQLite: file is not a database)"
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

/// One request as a [`Recorder`] heard it, whole.
#[derive(Debug, Clone)]
pub struct Heard {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Heard {
    /// Everything the request carried, as one text to search for secrets.
    pub fn everything(&self) -> String {
        let headers: Vec<String> = self
            .headers
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        format!(
            "{} {}?{}\n{}\n{}",
            self.method,
            self.path,
            self.query,
            headers.join("\n"),
            self.body
        )
    }
}

/// A fake server on 127.0.0.1 that keeps every request it hears (method,
/// path, query, headers, body) and answers with `handler`.
pub struct Recorder {
    pub base: String,
    #[allow(clippy::disallowed_types, reason = "never held across an .await")]
    heard: Arc<std::sync::Mutex<Vec<Heard>>>,
    stop: CancellationToken,
}

impl Recorder {
    pub async fn start(handler: impl Fn(&Heard) -> Response + Send + Sync + 'static) -> Recorder {
        let handler = Arc::new(handler);
        #[allow(clippy::disallowed_types, reason = "never held across an .await")]
        let heard: Arc<std::sync::Mutex<Vec<Heard>>> = Arc::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let log = heard.clone();
        let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
            let (handler, log) = (handler.clone(), log.clone());
            async move {
                let (parts, body) = req.into_parts();
                let body = axum::body::to_bytes(body, 1 << 20)
                    .await
                    .unwrap_or_default();
                let h = Heard {
                    method: parts.method.to_string(),
                    path: parts.uri.path().to_owned(),
                    query: parts.uri.query().unwrap_or("").to_owned(),
                    headers: parts
                        .headers
                        .iter()
                        .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
                        .collect(),
                    body: String::from_utf8_lossy(&body).into_owned(),
                };
                log.lock().unwrap().push(h.clone());
                handler(&h)
            }
        });
        let stop = CancellationToken::new();
        let s = stop.clone();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { s.cancelled().await })
                .await
        });
        Recorder { base, heard, stop }
    }

    pub fn heard(&self) -> Vec<Heard> {
        self.heard.lock().unwrap().clone()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// An answer redirecting (with `status`) to `to`.
fn redirect(status: StatusCode, to: &str) -> Response {
    (status, [(header::LOCATION, to.to_owned())], "").into_response()
}

const CLIENT_SECRET: &str = "cs-hostile-7f3a91d2e6b0-secret";
const REFRESH_TOKEN: &str = "rt-hostile-5c1e2f7a9b3d";
const ACCESS_TOKEN: &str = "at-hostile-0d9e8f7a6b5c";

/// A config whose API and token endpoints are `base`, signed in with
/// tokens about to expire (so the first use refreshes).
fn redirect_config(dir: &Path, base: &str, client_auth: &str) -> ouradb::config::Config {
    let text = format!(
        r#"[api]
base_url = "{base}"
timeout_seconds = 5
[auth]
client_id = "hostile-app"
client_secret = "{CLIENT_SECRET}"
client_auth = "{client_auth}"
token_url = "{base}/oauth/token"
fallback_token_url = ""
revoke_url = "{base}/oauth/revoke"
token_file = "{tokens}"
[storage]
database = "{db}"
[retry]
max_attempts = 2
base_delay_ms = 10
"#,
        tokens = dir.join("tokens.json").display(),
        db = dir.join("db.sqlite").display(),
    );
    let config =
        ouradb::config::Config::from_toml(&text, &dir.join("daemon.toml"), |_| None).unwrap();
    let now = jiff::Timestamp::now();
    let tokens = ouradb::api::oauth::StoredTokens {
        version: ouradb::api::oauth::store::TOKEN_FILE_VERSION,
        client_id: "hostile-app".into(),
        access_token: ouradb::config::Secret::new(ACCESS_TOKEN),
        refresh_token: ouradb::config::Secret::new(REFRESH_TOKEN),
        expires_at: now + jiff::SignedDuration::from_secs(5),
        obtained_at: now - jiff::SignedDuration::from_hours(1),
        scopes: vec!["daily".into(), "personal".into()],
        user_id: None,
        grant_id: "g1".into(),
        reauth_required: None,
        token_url: None,
    };
    ouradb::api::oauth::TokenFile::new(&config.oauth.token_file)
        .save(&tokens)
        .unwrap();
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_to_another_origin_carry_no_secret_there() {
    use ouradb::api::{ApiError, Client, Limiter, PageQuery, WebhookApi};
    // Another port on 127.0.0.1 is another origin.
    let thief =
        Recorder::start(|_| json_page(json!([{"access_token": "x", "refresh_token": "y"}]), None))
            .await;
    let to = thief.base.clone();
    let redirector = Recorder::start(move |h| {
        let status = if h.method == "POST" {
            // 307 keeps the method and the body: the form with the secret.
            StatusCode::TEMPORARY_REDIRECT
        } else {
            StatusCode::FOUND
        };
        redirect(status, &format!("{to}{}?hint=query-secret-9", h.path))
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let thief_origin = thief.base.clone();

    // Token refresh, with the secret in the form and in Basic auth.
    for client_auth in ["form", "basic"] {
        let config = redirect_config(dir.path(), &redirector.base, client_auth);
        let source = ouradb::api::oauth::OAuthSource::new(&config);
        let e = source.refresh_now().await.unwrap_err().to_string();
        assert!(
            e.contains(&format!(
                "token endpoint {} redirected (HTTP 307) to {thief_origin}",
                redirector.base
            )) && e.contains("check auth.token_url"),
            "{e}"
        );
        assert!(!e.contains("query-secret-9"), "no query string: {e}");
        assert!(
            !e.contains(CLIENT_SECRET) && !e.contains(REFRESH_TOKEN),
            "{e}"
        );
    }

    // The webhook subscription API (x-client-secret header).
    let config = redirect_config(dir.path(), &redirector.base, "form");
    let e = WebhookApi::new(&config)
        .unwrap()
        .list()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&format!("redirected (HTTP 302) to {thief_origin}"))
            && e.contains("check api.base_url"),
        "{e}"
    );

    // A data call with the bearer token: refused at once, not retried.
    let mut config = redirect_config(dir.path(), &redirector.base, "form");
    std::fs::remove_file(&config.oauth.token_file).unwrap();
    config.oauth.client_id = None;
    config.token = Some(ouradb::config::Secret::new(ACCESS_TOKEN));
    let client = Client::new(
        &config,
        ouradb::api::oauth::token_source(&config),
        Arc::new(Limiter::new(&config.rate_limit)),
        CancellationToken::new(),
    )
    .unwrap();
    let dt = ouradb::registry::find("daily_sleep").unwrap();
    let before = redirector.heard().len();
    let today = util::today();
    let q = PageQuery::Dates {
        start: today,
        end: today,
    };
    match client.fetch_page(dt, &q, None).await {
        Err(e @ ApiError::Redirected { .. }) => {
            let e = e.to_string();
            assert!(
                e.contains(&thief_origin) && e.contains("check api.base_url"),
                "{e}"
            );
        }
        other => panic!("expected a refused redirect, got {other:?}"),
    }
    assert_eq!(redirector.heard().len(), before + 1, "not retried");

    let heard = thief.heard();
    assert!(
        heard.is_empty(),
        "the other origin received requests: {:#?}",
        heard.iter().map(Heard::everything).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_within_the_origin_is_still_followed() {
    let fake = Recorder::start(|h| {
        if h.path.ends_with("/moved") {
            json_page(json!([]), None)
        } else {
            redirect(StatusCode::FOUND, &format!("{}/moved", h.path))
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.sqlite");
    let cfg = config_file(dir.path(), &fake.base, &db, TOKEN_LINE);
    let (out, _) = run(
        &cfg,
        &["sync", "--json", "--type", "daily_sleep", "--no-backfill"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", errors(&out));
    let heard = fake.heard();
    assert!(
        heard.iter().any(|h| h.path.ends_with("/moved")),
        "{heard:#?}"
    );
    assert!(
        heard.iter().all(|h| h
            .headers
            .iter()
            .any(|(k, v)| k == "authorization" && v.ends_with("hostile-test-token"))),
        "the token went along to the same origin"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminal_escapes_in_a_400_body_never_reach_the_screen() {
    const HOSTILE: &str = "before \u{1b}]0;pwned\u{7} \u{1b}[2J\u{9b}31m\u{202e}after";
    for body in [json!({"detail": HOSTILE}).to_string(), HOSTILE.to_owned()] {
        let fake =
            Fake::start(move |_| (StatusCode::BAD_REQUEST, body.clone()).into_response()).await;
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db.sqlite");
        let cfg = config_file(dir.path(), &fake.base, &db, TOKEN_LINE);
        let (sync, _) = run(&cfg, &["sync", "--type", "daily_sleep", "--no-backfill"]).await;
        let (status, _) = run(&cfg, &["status"]).await;
        for out in [&sync, &status] {
            let (stdout, stderr) = text(out);
            let all = format!("{stdout}{stderr}");
            assert!(
                !all.contains(['\u{1b}', '\u{7}', '\u{9b}', '\u{202e}']),
                "control characters printed: {all:?}"
            );
        }
        let (stdout, _) = text(&sync);
        assert_eq!(sync.status.code(), Some(1));
        assert!(
            stdout.contains("HTTP 400: before ]0;pwned [2J31mafter"),
            "the rest of the text is kept: {stdout}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_and_subscription_errors_carry_no_control_characters() {
    const HOSTILE: &str = "bad \u{1b}]0;pwned\u{7}\u{1b}[2J\u{85}\u{2066}client";
    let fake = Recorder::start(|h| {
        let body = if h.path.starts_with("/oauth/") {
            json!({"error": "invalid_client\u{1b}[31m", "error_description": HOSTILE})
        } else {
            json!({"detail": HOSTILE})
        };
        (
            StatusCode::UNAUTHORIZED,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = redirect_config(dir.path(), &fake.base, "form");
    let refresh = ouradb::api::oauth::OAuthSource::new(&config)
        .refresh_now()
        .await
        .unwrap_err()
        .to_string();
    let list = ouradb::api::WebhookApi::new(&config)
        .unwrap()
        .list()
        .await
        .unwrap_err()
        .to_string();
    for e in [&refresh, &list] {
        assert!(
            !e.contains(['\u{1b}', '\u{7}', '\u{85}', '\u{2066}']),
            "{e:?}"
        );
    }
    assert!(
        refresh.contains("invalid_client[31m: bad ]0;pwned[2Jclient"),
        "{refresh}"
    );
    assert!(
        list.contains("HTTP 401") && list.contains("]0;pwned[2Jclient"),
        "{list}"
    );
}

/// A page of documents that cannot be stored logged one WARN line per
/// document (a page of 10,000 gave 10,000 lines, every run). Now a page
/// logs one line: how many, and the first reasons; the quarantine table
/// holds them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_of_quarantined_documents_logs_one_line_with_the_count_and_reasons() {
    let day = util::today().to_string();
    let fake = Fake::start(move |_| {
        let mut docs: Vec<serde_json::Value> = (0..40)
            .map(|i| json!({"id": format!("bad-{i}"), "score": i, "day": "not a day"}))
            .collect();
        docs.push(json!({"id": "good", "day": day, "score": 77}));
        json_page(json!(docs), None)
    })
    .await;
    let (out, _, _dir, db) = sync_daily_sleep(&fake).await;
    let (_, stderr) = text(&out);
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("quarantined"))
        .collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains("quarantined=40"), "{}", lines[0]);
    assert!(lines[0].contains("no readable `day`"), "{}", lines[0]);
    assert_eq!(util::count(&db, "quarantine"), 40);
    assert_eq!(util::count(&db, "daily_sleep"), 1);
}

/// `sync --json --type daily_sleep --no-backfill` with `extra` arguments
/// into `db`, against `base`.
async fn sync_into(base: &str, dir: &Path, db: &Path, extra: &[&str]) -> (Output, Duration) {
    let cfg = config_file(dir, base, db, TOKEN_LINE);
    let mut args = vec!["sync", "--json", "--type", "daily_sleep", "--no-backfill"];
    args.extend_from_slice(extra);
    run(&cfg, &args).await
}

/// Server durations beyond any clock (Retry-After as a number larger than
/// any integer, as a date in the year 9999, X-RateLimit-Reset at the end
/// of u64 or just past i64) are clamped to a day: the wait is announced
/// and refused by `--max-wait` like any other, and nothing panics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_durations_beyond_any_clock_are_clamped_to_a_day_not_a_panic() {
    let cases: [(&str, &str); 5] = [
        ("retry-after", "18446744073709551615"),
        ("retry-after", "99999999999999999999999999"),
        ("retry-after", "Fri, 31 Dec 9999 23:59:59 GMT"),
        ("x-ratelimit-reset", "18446744073709551615"),
        ("x-ratelimit-reset", "9223372036854775808"),
    ];
    for (name, value) in cases {
        let fake = Fake::start(move |_| {
            (StatusCode::TOO_MANY_REQUESTS, [(name, value)], "{}").into_response()
        })
        .await;
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db.sqlite");
        let (out, took) = sync_into(&fake.base, dir.path(), &db, &["--max-wait", "2m"]).await;
        let (_, stderr) = text(&out);
        assert!(!stderr.contains("panicked"), "{name}: {value}: {stderr}");
        assert_eq!(out.status.code(), Some(1), "{name}: {value}: {stderr}");
        let errors = errors(&out);
        assert!(
            errors.contains("daily_sleep: Oura's rate limit asks to wait until")
                && errors.contains("(24 h 0 min), beyond --max-wait 2 min"),
            "{name}: {value}: {errors}"
        );
        assert!(took < Duration::from_secs(30), "{name}: {value}: {took:?}");
        assert_eq!(fake.hits(), 1, "{name}: {value}");
    }
}

/// Rows in the request account at `at_us`, as another process leaves them.
fn fill_account(db: &Path, rows: u32, at_us: i64) {
    rusqlite::Connection::open(db)
        .unwrap()
        .execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
             INSERT INTO _request_log (sent_us) SELECT ?2 FROM n",
            rusqlite::params![rows, at_us],
        )
        .unwrap();
}

fn now_us() -> i64 {
    jiff::Timestamp::now().as_microsecond()
}

/// A database with ouradb's schema (one sync against `fake`).
async fn fresh_db(fake: &Fake) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.sqlite");
    let (out, _) = sync_into(&fake.base, dir.path(), &db, &[]).await;
    assert!(out.status.success(), "{}", text(&out).1);
    (dir, db)
}

/// Another process spent the whole usable quota (4,900 requests) just now:
/// the wait on the shared account is announced like a Retry-After and
/// refused by `--max-wait`, not a silent five minutes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quota_spent_by_another_process_is_a_wait_bounded_by_max_wait() {
    let fake = Fake::start(|_| json_page(json!([]), None)).await;
    let (dir, db) = fresh_db(&fake).await;
    let before = fake.hits();
    fill_account(&db, 4900, now_us());
    let (out, took) = sync_into(&fake.base, dir.path(), &db, &["--max-wait", "1m"]).await;
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(took < Duration::from_secs(30), "took {took:?}");
    let errors = errors(&out);
    assert!(
        errors.contains("daily_sleep: the Oura request quota shared by every ouradb process on this database (used up in the last window) asks to wait until")
            && errors.contains("(5 min), beyond --max-wait 1 min; stopped this type with nothing lost"),
        "{errors}"
    );
    assert_eq!(fake.hits(), before, "nothing was sent over the quota");
}

/// A short wait on the shared account is announced, then the run finishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_wait_on_the_shared_quota_is_announced_then_the_sync_finishes() {
    let fake = Fake::start(|_| json_page(json!([]), None)).await;
    let (dir, db) = fresh_db(&fake).await;
    // The window is 300 s: these leave it about 3 s from now.
    fill_account(&db, 4900, now_us() - 297_000_000);
    let cfg = config_file(dir.path(), &fake.base, &db, TOKEN_LINE);
    let (out, took) = run(&cfg, &["sync", "--type", "daily_sleep", "--no-backfill"]).await;
    let (_, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(took >= Duration::from_secs(1), "the wait was honoured");
    assert!(
        stderr.contains("ouradb: Oura request quota shared by every ouradb process on this database, used up in the last window: waiting until")
            && stderr.contains("for daily_sleep; Ctrl-C to stop (--max-wait 5 min)"),
        "{stderr}"
    );
}

/// The quota's reserve (2 % of a window) is kept for the runs of types
/// that caught up: with the rest of the window spent by another process, a
/// caught-up type's incremental run goes at once, while the same run of a
/// type that never finished its first sync (a new account's) waits for the
/// window like history does, here beyond `--max-wait`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quotas_reserve_serves_caught_up_types_not_a_first_sync() {
    let fake = Fake::start(|_| json_page(json!([]), None)).await;
    let reserve = ouradb::api::limiter::recent_reserve(4900);
    let spend_all_but_the_reserve = |db: &Path| fill_account(db, 4900 - reserve, now_us());
    // daily_sleep's incremental run (`sync_into`).
    let args = ["--max-wait", "1m"];

    let dir = tempfile::tempdir().unwrap();
    let caught_up = dir.path().join("caught_up.sqlite");
    let cfg = config_file(dir.path(), &fake.base, &caught_up, TOKEN_LINE);
    let (out, _) = run(&cfg, &["sync", "--type", "daily_sleep"]).await;
    assert!(out.status.success(), "{}", text(&out).1);
    spend_all_but_the_reserve(&caught_up);
    let before = fake.hits();
    let (out, took) = sync_into(&fake.base, dir.path(), &caught_up, &args).await;
    assert!(out.status.success(), "{}", text(&out).1);
    assert!(took < Duration::from_secs(30), "took {took:?}");
    assert!(fake.hits() > before, "the run was sent within the reserve");

    let first = dir.path().join("first.sqlite");
    // The file's schema and its profile, nothing of daily_sleep yet.
    let cfg = config_file(dir.path(), &fake.base, &first, TOKEN_LINE);
    let (out, _) = run(&cfg, &["sync", "--type", "personal_info"]).await;
    assert!(out.status.success(), "{}", text(&out).1);
    spend_all_but_the_reserve(&first);
    let before = fake.hits();
    let (out, _) = sync_into(&fake.base, dir.path(), &first, &args).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out).1);
    assert!(
        errors(&out).contains("daily_sleep: the Oura request quota shared by every ouradb process on this database (used up in the last window) asks to wait until"),
        "{}",
        errors(&out)
    );
    assert_eq!(fake.hits(), before, "the first sync left the reserve alone");
}

/// Rows dated tomorrow (a process with its clock a day ahead) stall
/// nothing and are dropped from the account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_dated_tomorrow_in_the_shared_quota_stall_nothing() {
    let fake = Fake::start(|_| json_page(json!([]), None)).await;
    let (dir, db) = fresh_db(&fake).await;
    let day_us = 86_400_000_000;
    fill_account(&db, 4900, now_us() + day_us);
    let (out, took) = sync_into(&fake.base, dir.path(), &db, &["--max-wait", "1m"]).await;
    let (_, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(took < Duration::from_secs(30), "took {took:?}");
    assert!(!stderr.contains("waiting until"), "{stderr}");
    let future: i64 = util::reader(&db)
        .query_row(
            "SELECT count(*) FROM _request_log WHERE sent_us > ?1",
            [now_us() + 3_600_000_000],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(future, 0, "the future rows left the account");
}

/// A directory given as the database is named once, with the fix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_as_the_database_is_one_line_naming_the_fix() {
    let fake = Fake::start(|_| json_page(json!([]), None)).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("data");
    std::fs::create_dir(&db).unwrap();
    let cfg = config_file(dir.path(), &fake.base, &db, TOKEN_LINE);
    let shown = db.display();
    for args in [&["sync"][..], &["status"][..]] {
        let (out, _) = run(&cfg, args).await;
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert_eq!(
            stderr.trim_end(),
            format!(
                "ouradb: {shown} is a directory, not a database file; point storage.database (or --database) at a file, e.g. {shown}/ouradb.sqlite"
            ),
            "{args:?}"
        );
    }
    assert_eq!(
        std::fs::read_dir(&db).unwrap().count(),
        0,
        "nothing written"
    );
    assert_eq!(fake.hits(), 0);
}

/// A signed webhook event POSTed to `callback`: the HTTP status.
async fn post_event(callback: &str, secret: &str, object_id: &str) -> u16 {
    use hmac::{Hmac, KeyInit, Mac};
    let body = json!({"event_type": "create", "data_type": "daily_sleep",
        "object_id": object_id, "event_time": jiff::Timestamp::now().to_string(),
        "user_id": "u"})
    .to_string();
    let ts = jiff::Timestamp::now().as_second().to_string();
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(ts.as_bytes());
    mac.update(body.as_bytes());
    reqwest::Client::new()
        .post(callback)
        .header("content-type", "application/json")
        .header("x-oura-timestamp", ts)
        .header(
            "x-oura-signature",
            hex::encode_upper(mac.finalize().into_bytes()),
        )
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// The webhook worker fetching from a server that answers a 429 with a
/// Retry-After beyond any clock: the event is recorded as failed (rate
/// limited, polling catches up) at once, the worker lives on, and the
/// next event is accepted and recorded too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_fetch_answered_with_an_endless_retry_after_fails_the_event_not_the_worker() {
    use ouradb::config::{Secret, WebhookConfig, WebhookSettings};
    let fake = Fake::start(|_| {
        (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "18446744073709551615")],
            "{}",
        )
            .into_response()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.sqlite");
    let mut config = ouradb::config::Config::for_base_url(&fake.base, "tok", db.clone());
    config.oauth.client_id = Some("app".into());
    config.oauth.client_secret = Some(Secret::new("app-secret"));
    config.oauth.token_file = dir.path().join("tokens.json");
    config.webhook = WebhookConfig::Enabled(WebhookSettings {
        listen: "127.0.0.1:0".parse().unwrap(),
        callback_url: "http://127.0.0.1:1/hook".parse().unwrap(),
        verification_token: Secret::new("vt"),
    });
    let cancel = CancellationToken::new();
    let engine = Arc::new(
        ouradb::sync::engine_from_config(
            Arc::new(config.clone()),
            None,
            cancel.clone(),
            ouradb::sync::system_clock(),
        )
        .unwrap(),
    );
    let tracker = tokio_util::task::TaskTracker::new();
    let opts = ouradb::webhook::ReceiverOptions::from_config(&config, ouradb::sync::system_clock())
        .unwrap();
    let handle = ouradb::webhook::receiver::start(engine, opts, cancel.clone(), &tracker)
        .await
        .unwrap();
    let callback = format!("http://{}/hook", handle.addr);
    // One document: both events go to the same worker's queue.
    assert_eq!(post_event(&callback, "app-secret", "doc-1").await, 200);
    assert!(
        handle.wait_processed(1, Duration::from_secs(10)).await,
        "the first event was recorded"
    );
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(post_event(&callback, "app-secret", "doc-1").await, 200);
    assert!(
        handle.wait_processed(2, Duration::from_secs(10)).await,
        "the worker lived on and recorded the next event"
    );
    let outcomes: Vec<(String, String)> = util::reader(&db)
        .prepare("SELECT object_id, outcome FROM webhook_event ORDER BY received_at")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let failed = "failed: rate_limited".to_owned();
    assert_eq!(
        outcomes,
        vec![("doc-1".into(), failed.clone()), ("doc-1".into(), failed)]
    );
    assert_eq!(fake.hits(), 1, "the 429 held every later request");
    cancel.cancel();
    tracker.close();
    tokio::time::timeout(Duration::from_secs(5), tracker.wait())
        .await
        .expect("the receiver and worker stop");
}

/// A page body from its documents' texts (or bytes), exactly as given.
fn raw_page(docs: &[&[u8]], next: Option<&str>) -> Response {
    let mut body = b"{\"data\": [".to_vec();
    for (i, d) in docs.iter().enumerate() {
        if i > 0 {
            body.extend(b", ");
        }
        body.extend(*d);
    }
    body.extend(format!("], \"next_token\": {}}}", json!(next)).as_bytes());
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// (doc_key, reason, raw_json, raw_bytes) of every quarantined document of `dt`.
type Quarantined = (String, String, String, Option<Vec<u8>>);

fn quarantined(db: &Path, dt: &str) -> Vec<Quarantined> {
    let conn = util::reader(db);
    let mut stmt = conn
        .prepare(
            "SELECT doc_key, reason, raw_json, raw_bytes FROM quarantine
             WHERE data_type = ?1 ORDER BY doc_key",
        )
        .unwrap();
    stmt.query_map([dt], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Four documents serde_json cannot decode, each in its own way, with
/// `day` (inside the window) and `id` readable: (id, bytes, reason).
fn undecodable_documents(day: jiff::civil::Date) -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let doc = |id: &str, rest: &[u8]| {
        let mut d = format!(r#"{{"id": "{id}", "day": "{day}", "score": "#).into_bytes();
        d.extend(rest);
        d
    };
    vec![
        ("big-exp", doc("big-exp", b"1e400}"), "number out of range"),
        ("nan", doc("nan", b"NaN}"), "expected value"),
        (
            "surrogate",
            doc("surrogate", br#"70, "note": "cut \ud83d"}"#),
            "hex escape",
        ),
        (
            "not-utf8",
            doc("not-utf8", b"70, \"note\": \"caf\xe9\"}"),
            "invalid unicode code point",
        ),
    ]
}

/// Item 4 and 15 of issue 19: one value serde_json cannot decode no longer
/// fails its page. The page's good documents and the cursor commit; each
/// undecodable document is quarantined under its id with its reason and
/// its bytes as received; a big integer keeps its digits in raw_json.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_document_is_quarantined_and_the_rest_of_its_page_stored() {
    let day = util::today().yesterday().unwrap();
    let bad = undecodable_documents(day);
    // A day of its own: a daily collection keeps one document per day.
    let big_day = day.yesterday().unwrap();
    let big = format!(
        r#"{{"id": "big-int", "day": "{big_day}", "score": 80, "big": 123456789012345678901234567890}}"#
    );
    let good =
        format!(r#"{{"id":"good","day":"{day}","score":71,"timestamp":"{day}T00:00:00+00:00"}}"#);
    let (served_bad, served) = (bad.clone(), (big.clone(), good.clone()));
    let fake = Fake::start(move |_| {
        let mut docs: Vec<&[u8]> = vec![served.1.as_bytes()];
        docs.extend(served_bad.iter().map(|(_, b, _)| b.as_slice()));
        docs.push(served.0.as_bytes());
        raw_page(&docs, None)
    })
    .await;
    let (out, _, _dir, db) = sync_daily_sleep(&fake).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    assert_eq!(util::count(&db, "daily_sleep"), 2, "the good documents");
    let raw = |id: &str| -> String {
        util::reader(&db)
            .query_row(
                "SELECT raw_json FROM daily_sleep WHERE id = ?1",
                [id],
                |r| r.get(0),
            )
            .unwrap()
    };
    assert_eq!(raw("big-int"), big, "raw_json is the document as received");
    assert!(raw("big-int").contains("123456789012345678901234567890"));
    assert_eq!(raw("good"), good);
    let high_water: Option<String> = util::reader(&db)
        .query_row(
            "SELECT high_water FROM sync_state WHERE data_type = 'daily_sleep'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(high_water.is_some(), "the cursor moved");

    let q = quarantined(&db, "daily_sleep");
    assert_eq!(q.len(), 4, "{q:?}");
    for (id, bytes, reason) in &bad {
        let (_, got_reason, raw_json, raw_bytes) = q.iter().find(|e| e.0 == *id).unwrap();
        assert!(
            got_reason.starts_with("not decodable JSON: ") && got_reason.contains(reason),
            "{id}: {got_reason}"
        );
        match std::str::from_utf8(bytes) {
            Ok(text) => {
                assert_eq!(raw_json, text, "{id}");
                assert_eq!(raw_bytes, &None, "{id}");
            }
            Err(_) => {
                assert_eq!(raw_bytes.as_deref(), Some(bytes.as_slice()), "{id}");
                assert_eq!(raw_json, &String::from_utf8_lossy(bytes), "{id}");
            }
        }
    }
    let status = String::from_utf8_lossy(
        &run(
            &config_file(_dir.path(), &fake.base, &db, TOKEN_LINE),
            &["status"],
        )
        .await
        .0
        .stdout,
    )
    .into_owned();
    assert!(status.contains("not decodable JSON"), "{status}");
}

/// The same for time-series rows, read without a `Value` per row: a row
/// that cannot be decoded is quarantined under its timestamp, the others
/// are stored, and a later good copy takes it out of the quarantine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_row_is_quarantined_and_a_good_copy_replaces_it() {
    let day = util::today();
    let row = |h: u32, bpm: &[u8], source: &[u8]| {
        let mut r = b"{\"bpm\": ".to_vec();
        r.extend(bpm);
        r.extend(b", \"source\": \"");
        r.extend(source);
        r.extend(format!("\", \"timestamp\": \"{day}T0{h}:00:00+00:00\"}}").as_bytes());
        r
    };
    let bad = vec![
        row(1, b"1e400", b"awake"),
        row(2, b"NaN", b"awake"),
        row(3, b"60", b"awake\\udc00"),
        row(4, b"60", b"aw\xffake"),
        // Not flat (an object inside) and not decodable either.
        row(5, b"{\"v\": -Infinity}", b"awake"),
    ];
    let good: Vec<Vec<u8>> = (1..=6).map(|h| row(h, b"61", b"rest")).collect();
    let fixed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (is_fixed, served_bad, served_good) = (fixed.clone(), bad.clone(), good.clone());
    let fake = Fake::start(move |_| {
        if is_fixed.load(Ordering::SeqCst) {
            let docs: Vec<&[u8]> = served_good.iter().map(Vec::as_slice).collect();
            return raw_page(&docs, None);
        }
        let mut docs: Vec<&[u8]> = served_bad.iter().map(Vec::as_slice).collect();
        docs.push(&served_good[5]);
        raw_page(&docs, None)
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.sqlite");
    let cfg = config_file(dir.path(), &fake.base, &db, TOKEN_LINE);
    let args = ["sync", "--json", "--type", "heartrate", "--no-backfill"];
    let (out, _) = run(&cfg, &args).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    assert_eq!(util::count(&db, "heartrate"), 1, "the good row");
    let q = quarantined(&db, "heartrate");
    let keys: Vec<&str> = q.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        keys,
        (1..=5)
            .map(|h| format!("timestamp:{day}T0{h}:00:00+00:00"))
            .collect::<Vec<_>>(),
        "{q:?}"
    );
    assert_eq!(q[3].3.as_deref(), Some(bad[3].as_slice()), "bytes kept");
    assert_eq!(q[0].2.as_bytes(), bad[0].as_slice());

    fixed.store(true, Ordering::SeqCst);
    let (out, _) = run(&cfg, &args).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    assert_eq!(util::count(&db, "heartrate"), 6);
    assert_eq!(quarantined(&db, "heartrate"), Vec::new());
}

/// A config for `fake` with `sync.max_body_bytes = limit`.
fn config_with_cap(dir: &Path, fake: &Fake, db: &Path, limit: u64) -> PathBuf {
    let cfg = config_file(dir, &fake.base, db, TOKEN_LINE);
    let text = std::fs::read_to_string(&cfg).unwrap();
    let text = text.replace("[sync]\n", &format!("[sync]\nmax_body_bytes = {limit}\n"));
    std::fs::write(&cfg, text).unwrap();
    cfg
}

/// A page of `n` daily_sleep documents, about 100 bytes each.
fn big_page(n: usize) -> String {
    let day = util::today().yesterday().unwrap();
    let docs: Vec<serde_json::Value> = (0..n)
        .map(|i| json!({"id": format!("ds-{i:08}"), "day": day.to_string(), "score": 70, "padding": "x".repeat(40)}))
        .collect();
    json!({"data": docs, "next_token": null}).to_string()
}

/// Item 14 of issue 19: a body over `sync.max_body_bytes` ends the type
/// with an error naming the size and the key to raise; it is not retried
/// and nothing is stored. Announced by Content-Length, streamed without
/// one, or small on the wire and large once decompressed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_cap_ends_with_the_key_to_raise() {
    use std::io::Write;
    let page = big_page(3000);
    assert!(page.len() > 300_000);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(page.as_bytes()).unwrap();
    let gzipped = gz.finish().unwrap();
    assert!(gzipped.len() < 100_000, "{}", gzipped.len());
    let announced = format!("{} bytes announced by Content-Length", page.len());
    let cases: Vec<(&str, Response, String)> = vec![
        (
            "content-length",
            ([(header::CONTENT_TYPE, "application/json")], page.clone()).into_response(),
            announced,
        ),
        (
            "chunked",
            {
                let chunks: Vec<Result<Vec<u8>, std::io::Error>> = page
                    .as_bytes()
                    .chunks(16 * 1024)
                    .map(|c| Ok(c.to_vec()))
                    .collect();
                axum::body::Body::from_stream(futures::stream::iter(chunks)).into_response()
            },
            "counted after decompression".to_owned(),
        ),
        (
            "gzip",
            (
                [
                    (header::CONTENT_TYPE, "application/json"),
                    (header::CONTENT_ENCODING, "gzip"),
                ],
                gzipped,
            )
                .into_response(),
            "counted after decompression".to_owned(),
        ),
    ];
    for (name, response, size) in cases {
        let response = Arc::new(std::sync::Mutex::new(Some(response)));
        let fake = Fake::start(move |_| {
            response
                .lock()
                .unwrap()
                .take()
                .unwrap_or_else(|| StatusCode::GONE.into_response())
        })
        .await;
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db.sqlite");
        let cfg = config_with_cap(dir.path(), &fake, &db, 100_000);
        let (out, _) = run(
            &cfg,
            &["sync", "--json", "--type", "daily_sleep", "--no-backfill"],
        )
        .await;
        let errors = errors(&out);
        assert_eq!(out.status.code(), Some(1), "{name}: {}", text(&out).1);
        assert!(
            errors.starts_with(
                "daily_sleep: the response body is larger than the cap of 100000 bytes ("
            ) && errors.contains(&size)
                && errors.contains("raise `max_body_bytes` in the `[sync]` section"),
            "{name}: {errors}"
        );
        assert_eq!(fake.hits(), 1, "{name}: not retried");
        assert_eq!(util::count(&db, "daily_sleep"), 0, "{name}");
    }
    // The same page under the default cap is stored whole.
    let fake = Fake::start(move |_| {
        ([(header::CONTENT_TYPE, "application/json")], page.clone()).into_response()
    })
    .await;
    let (out, _, _dir, db) = sync_daily_sleep(&fake).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    // Every document was read: one per day in the table (they share a
    // day), the 2,999 it replaced in history.
    assert_eq!(util::count(&db, "daily_sleep"), 1);
    assert_eq!(util::count(&db, "document_history"), 2999);
}

/// Item 15 of issue 19: a gzip body that cannot be decompressed is retried
/// like a cut body, but the error says the body could not be decoded and
/// what that means, instead of blaming the network.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_gzip_body_is_named_as_such_not_as_the_network() {
    let fake = Fake::start(|_| {
        (
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CONTENT_ENCODING, "gzip"),
            ],
            "this is not gzip at all, just text claiming to be",
        )
            .into_response()
    })
    .await;
    let (out, _, _dir, db) = sync_daily_sleep(&fake).await;
    let errors = errors(&out);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out).1);
    assert!(
        errors.starts_with("daily_sleep: unreadable response after 3 attempts (HTTP 200 but the response body could not be decoded: its compression (Content-Encoding, e.g. gzip) is corrupt ("),
        "{errors}"
    );
    assert!(
        errors.contains("check what answers at api.base_url"),
        "{errors}"
    );
    assert!(
        !errors.contains("cannot reach") && !errors.contains("network"),
        "{errors}"
    );
    assert_eq!(fake.hits(), 3, "retried like a cut body");
    let kind: String = util::reader(&db)
        .query_row(
            "SELECT last_error_kind FROM sync_state WHERE data_type = 'daily_sleep'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(kind, "bad_response");
}

/// Item 15 of issue 19: raw_json is the document's text as received, so a
/// big integer keeps every digit (a re-serialised value made it
/// `1.2345678901234568e+29`); its added column holds the nearest float.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_integer_keeps_its_digits_in_raw_json() {
    let day = util::today().yesterday().unwrap();
    let doc = format!(
        r#"{{"id": "big", "day": "{day}", "score": 80, "total": 123456789012345678901234567890, "contributors": {{"deep_sleep": 1}}}}"#
    );
    let served = doc.clone();
    let fake = Fake::start(move |_| raw_page(&[served.as_bytes()], None)).await;
    let (out, _, _dir, db) = sync_daily_sleep(&fake).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    let (raw, total): (String, f64) = util::reader(&db)
        .query_row(
            "SELECT raw_json, total FROM daily_sleep WHERE id = 'big'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(raw, doc);
    assert!(raw.contains("123456789012345678901234567890"), "{raw}");
    assert_eq!(total, 1.2345678901234568e29);
}
