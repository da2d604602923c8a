//! The Prometheus endpoint of `ouradb daemon`, checked the way Prometheus
//! runs it: scraped after a sync on the simulator and compared with
//! `ouradb status --json` and the simulator's own count of requests, linted
//! by `promtool check metrics`, scraped by a real Prometheus server; the
//! example alert rules under `promtool`; and the packaged assets.
//!
//! promtool and prometheus come from Debian's `prometheus` package, which
//! `.ci/run` installs: these tests fail without them rather than skip.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{self, Env};

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// A Debian `prometheus` tool, or a failure saying how to install it.
fn tool(name: &str) -> Command {
    let found = Command::new(name)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "{name} is not installed: run `apt-get install prometheus` (.ci/run does)"
    );
    Command::new(name)
}

/// A port free on 127.0.0.1 a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The test config of `env` with the metrics endpoint on `port`.
fn config_with_metrics(env: &Env, port: u16) -> PathBuf {
    let cfg = crate::cli::write_config(env, env.dir.path(), &env.db());
    let mut f = std::fs::OpenOptions::new().append(true).open(&cfg).unwrap();
    writeln!(f, "[metrics]\nlisten = \"127.0.0.1:{port}\"").unwrap();
    cfg
}

fn status_json(cfg: &Path) -> Option<Vec<serde_json::Value>> {
    let out = crate::cli::ouradb_at(cfg)
        .args(["status", "--json"])
        .output()
        .ok()?;
    serde_json::from_slice(&out.stdout).ok()
}

/// A running `ouradb daemon`, stopped with SIGTERM when dropped.
struct Daemon(Child);

impl Daemon {
    fn start(cfg: &Path) -> Daemon {
        let child = crate::cli::ouradb_at(cfg)
            .arg("daemon")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Daemon(child)
    }

    /// Waits (bounded) until every type is fresh; returns `status --json`.
    async fn caught_up(&mut self, cfg: &Path) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            assert!(Instant::now() < deadline, "the daemon did not catch up");
            assert!(self.0.try_wait().unwrap().is_none(), "the daemon exited");
            if let Some(rows) = status_json(cfg)
                && rows.len() == ouradb::registry::DATA_TYPES.len()
                && rows.iter().all(|r| r["freshness"] == "fresh")
            {
                return rows;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        stop(&mut self.0);
    }
}

/// SIGTERM, then up to 10 s for the child to exit (killed after that).
fn stop(child: &mut Child) {
    // SAFETY: plain kill(2) on our own child.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

async fn get(url: &str) -> reqwest::Response {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

/// Every sample of an exposition: series (name and labels as written) to value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            (series.to_owned(), value.parse().unwrap())
        })
        .collect()
}

/// The sum of every sample of `name`, whatever its labels.
fn total(s: &BTreeMap<String, f64>, name: &str) -> f64 {
    s.iter()
        .filter(|(k, _)| k.as_str() == name || k.starts_with(&format!("{name}{{")))
        .map(|(_, v)| v)
        .sum()
}

/// Lints `text` with `promtool check metrics`; its complaints, if any.
fn promtool_check_metrics(text: &str) -> String {
    let mut child = tool("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && said.trim().is_empty() {
        String::new()
    } else {
        format!("{}: {said}", out.status)
    }
}

/// Data requests the simulator answered, and how many of them with 429.
fn sim_data_requests(env: &Env) -> (usize, usize) {
    let log = env.sim.request_log();
    let data: Vec<_> = log
        .iter()
        .filter(|e| util::collection_of(&e.path).is_some())
        .collect();
    let limited = data.iter().filter(|e| e.status == 429).count();
    (data.len(), limited)
}

/// `status --json` and a scrape of `/metrics` taken while the daemon was
/// idle: its catch-up run over (every backfill complete) and the status the
/// same before and after the scrape.
async fn scrape_when_idle(cfg: &Path, port: u16) -> (Vec<serde_json::Value>, String) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "the daemon never went idle");
        let before = status_json(cfg).unwrap();
        let resp = get(&format!("http://127.0.0.1:{port}/metrics")).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.headers()["content-type"],
            "text/plain; version=0.0.4; charset=utf-8"
        );
        let text = resp.text().await.unwrap();
        let done = before
            .iter()
            .all(|r| r["backfill_complete"] == true && r["freshness"] == "fresh");
        tokio::time::sleep(Duration::from_millis(300)).await;
        if done && status_json(cfg).unwrap() == before {
            return (before, text);
        }
    }
}

/// After the daemon's catch-up run: every named series, with the values
/// `status --json` and the simulator give, and promtool finds nothing to
/// lint. The simulator's quota is tighter than the configured one, so some
/// requests meet a 429 and wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_serves_metrics_equal_to_status_and_promtool_finds_no_problem() {
    let env = Env::start(30, |c| {
        c.rate_limit = 25;
        c.rate_window = Duration::from_secs(1);
    })
    .await;
    let port = free_port();
    let cfg = config_with_metrics(&env, port);
    let started = jiff::Timestamp::now();
    let mut daemon = Daemon::start(&cfg);
    daemon.caught_up(&cfg).await;
    let (rows, text) = scrape_when_idle(&cfg, port).await;
    let scraped_at = jiff::Timestamp::now();
    let s = samples(&text);
    let v = |k: &str| *s.get(k).unwrap_or_else(|| panic!("no {k} in\n{text}"));

    for name in ouradb::metrics::SERIES {
        // Absent by design here: no OAuth token, no type refused alone.
        let absent = [
            "ouradb_oauth_token_expiry_timestamp_seconds",
            "ouradb_not_available",
            "ouradb_not_available_retry_timestamp_seconds",
        ];
        if !absent.contains(name) {
            assert!(
                text.contains(&format!("\n{name}")),
                "{name} missing:\n{text}"
            );
        }
    }
    let version = format!(
        "ouradb_build_info{{version=\"{}\"}}",
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(v(&version), 1.0);
    for row in &rows {
        let dt = row["data_type"].as_str().unwrap();
        let label = format!("{{data_type=\"{dt}\",account=\"default\"}}");
        assert_eq!(
            v(&format!("ouradb_documents{label}")),
            row["documents"].as_i64().unwrap() as f64,
            "{dt}"
        );
        let last: jiff::Timestamp = row["last_success"].as_str().unwrap().parse().unwrap();
        let scraped = v(&format!("ouradb_last_success_timestamp_seconds{label}"));
        assert_eq!(scraped, last.as_second() as f64, "{dt}");
        assert!(
            (started.as_second() - 1) as f64 <= scraped
                && scraped <= (scraped_at.as_second() + 1) as f64,
            "{dt}: last success {scraped} outside the run {started}..{scraped_at}"
        );
        for (series, field) in [
            ("ouradb_quarantined_documents", "quarantined"),
            ("ouradb_pending_removals", "pending_removal"),
        ] {
            assert_eq!(
                v(&format!("{series}{label}")),
                row[field].as_i64().unwrap() as f64,
                "{series} {dt}"
            );
        }
    }
    assert_eq!(
        v("ouradb_schedule_period_seconds{data_type=\"heartrate\",account=\"default\"}"),
        900.0
    );
    assert_eq!(
        v("ouradb_schedule_period_seconds{data_type=\"daily_sleep\",account=\"default\"}"),
        3600.0
    );

    let (sent, limited) = sim_data_requests(&env);
    assert!(limited > 0, "the simulator's quota was never hit");
    assert_eq!(total(&s, "ouradb_requests_total"), sent as f64);
    assert_eq!(
        v("ouradb_requests_total{outcome=\"rate_limited\"}"),
        limited as f64
    );
    assert_eq!(v("ouradb_rate_limited_total"), limited as f64);
    assert_eq!(
        v("ouradb_requests_total{outcome=\"ok\"}"),
        (sent - limited) as f64
    );
    assert!(v("ouradb_rate_limit_wait_seconds_total") > 0.5);
    // The account records leases, which grow to BATCH_MAX slots while
    // requests stream: at most BATCH_MAX - 1 of them unused.
    let used = v("ouradb_quota_used_ratio") * 5000.0;
    let unused = f64::from(ouradb::api::limiter::BATCH_MAX) - 0.5;
    assert!(
        (sent as f64 - 0.5..=sent as f64 + unused).contains(&used),
        "{used} of {sent}"
    );
    let commits = v("ouradb_store_commit_duration_seconds_count");
    assert!(commits >= rows.len() as f64, "{commits} commits");
    assert_eq!(
        v("ouradb_store_commit_duration_seconds_bucket{le=\"+Inf\"}"),
        commits
    );
    assert!(v("ouradb_store_commit_duration_seconds_sum") > 0.0);
    assert_eq!(v("ouradb_auth_failing{account=\"default\"}"), 0.0);
    assert!(
        !text.contains("ouradb_oauth_token_expiry"),
        "a token, no expiry"
    );
    assert_eq!(total(&s, "ouradb_webhook_events_total"), 0.0);

    assert_eq!(promtool_check_metrics(&text), "");
    drop(daemon);
    env.sim.stop().await;
}

/// A revoked OAuth grant: every type fails asking for `ouradb auth login`,
/// `ouradb_auth_failing` is 1 and the stored access token's expiry is
/// exposed; nothing was sent to Oura.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_grant_shows_as_auth_failing_with_the_token_expiry() {
    use ouradb::api::oauth::{StoredTokens, TokenFile};
    use ouradb::config::Secret;
    let env = Env::start(5, |_| {}).await;
    let port = free_port();
    let cfg = config_with_metrics(&env, port);
    let tokens = env.dir.path().join("tokens.json");
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "[auth]\n",
        &format!("[auth]\ntoken_file = \"{}\"\n", tokens.display()),
    );
    std::fs::write(&cfg, text).unwrap();
    let expires = jiff::Timestamp::from_second(2_000_000_000).unwrap();
    TokenFile::new(&tokens)
        .save(&StoredTokens {
            version: ouradb::api::oauth::store::TOKEN_FILE_VERSION,
            client_id: "sim-client".into(),
            access_token: Secret::new("revoked-access"),
            refresh_token: Secret::new("revoked-refresh"),
            expires_at: expires,
            obtained_at: jiff::Timestamp::from_second(1_900_000_000).unwrap(),
            scopes: ouradb_sim::ALL_SCOPES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            user_id: None,
            grant_id: "g".into(),
            reauth_required: Some("the refresh token was revoked".into()),
            token_url: None,
        })
        .unwrap();
    let mut daemon = Daemon::start(&cfg);
    let deadline = Instant::now() + Duration::from_secs(60);
    let text = loop {
        assert!(
            Instant::now() < deadline,
            "the types never failed: {:?}",
            status_json(&cfg)
        );
        assert!(daemon.0.try_wait().unwrap().is_none(), "the daemon exited");
        let failed = status_json(&cfg).is_some_and(|rows| {
            rows.iter()
                .all(|r| r["freshness"] == "failing" && r["last_error_kind"] == "reauth_required")
        });
        if failed {
            break get(&format!("http://127.0.0.1:{port}/metrics"))
                .await
                .text()
                .await
                .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let s = samples(&text);
    assert_eq!(s["ouradb_auth_failing{account=\"default\"}"], 1.0, "{text}");
    assert_eq!(
        s["ouradb_oauth_token_expiry_timestamp_seconds{account=\"default\"}"],
        expires.as_second() as f64
    );
    assert_eq!(total(&s, "ouradb_requests_total"), 0.0);
    assert_eq!(sim_data_requests(&env).0, 0);
    assert!(!text.contains("revoked-"), "a token in the metrics");
    drop(daemon);
    env.sim.stop().await;
}

/// Debian's Prometheus, on its own port and storage, scrapes the daemon
/// every second until its query API returns the daemon's build info.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_server_scrapes_the_daemon() {
    let env = Env::start(7, |_| {}).await;
    let port = free_port();
    let cfg = config_with_metrics(&env, port);
    let mut daemon = Daemon::start(&cfg);
    daemon.caught_up(&cfg).await;

    let dir = env.dir.path();
    let prom_cfg = dir.join("prometheus.yml");
    std::fs::write(
        &prom_cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: ouradb\n    static_configs:\n      - targets: [\"127.0.0.1:{port}\"]\n"
        ),
    )
    .unwrap();
    let web = free_port();
    // A file, not a pipe: nobody reads its log until it fails.
    let prom_log = dir.join("prometheus.log");
    let mut prometheus = tool("prometheus")
        .arg(format!("--config.file={}", prom_cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{web}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&prom_log).unwrap())
        .spawn()
        .unwrap();
    let query = |q: &str| format!("http://127.0.0.1:{web}/api/v1/query?query={q}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let result = loop {
        if let Some(status) = prometheus.try_wait().unwrap() {
            let log = std::fs::read_to_string(&prom_log).unwrap_or_default();
            panic!("prometheus exited ({status}):\n{log}");
        }
        if Instant::now() > deadline {
            stop(&mut prometheus);
            let log = std::fs::read_to_string(&prom_log).unwrap_or_default();
            panic!("prometheus never scraped ouradb_build_info:\n{log}");
        }
        let answer = reqwest::get(query("ouradb_build_info")).await;
        if let Ok(r) = answer
            && let Ok(body) = r.json::<serde_json::Value>().await
            && body["status"] == "success"
            && body["data"]["result"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
        {
            break body["data"]["result"][0].clone();
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(result["metric"]["job"], "ouradb");
    assert_eq!(result["metric"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(result["value"][1], "1");
    // Every scrape so far succeeded, and the data types came along.
    let up: serde_json::Value = get(&query("up")).await.json().await.unwrap();
    assert_eq!(up["data"]["result"][0]["value"][1], "1", "{up}");
    let docs: serde_json::Value = get(&query("ouradb_documents")).await.json().await.unwrap();
    assert_eq!(
        docs["data"]["result"].as_array().unwrap().len(),
        ouradb::registry::DATA_TYPES.len(),
        "{docs}"
    );
    stop(&mut prometheus);
    drop(daemon);
    env.sim.stop().await;
}

/// The example alert rules load, and each fires on the case it names and
/// stays quiet otherwise (promtool's rule unit tests beside them).
#[test]
fn the_example_alert_rules_pass_promtool() {
    let dir = Path::new(REPO).join("dashboards/prometheus");
    for args in [
        ["check", "rules", "alerts.yml"],
        ["test", "rules", "alerts_test.yml"],
    ] {
        let out = tool("promtool")
            .args(args)
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool {args:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Every `ouradb_…` name the rules use is a series the daemon serves.
#[test]
fn the_alert_rules_name_only_served_series() {
    let rules =
        std::fs::read_to_string(Path::new(REPO).join("dashboards/prometheus/alerts.yml")).unwrap();
    let mut used = Vec::new();
    for (i, _) in rules.match_indices("ouradb_") {
        let name: String = rules[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        used.push(name);
    }
    assert!(used.len() >= 4, "{used:?}");
    for name in used {
        assert!(ouradb::metrics::SERIES.contains(&name.as_str()), "{name}");
    }
}

/// `ouradb_webhook_events_total{outcome}` of this process's counters.
fn webhook_events(outcome: &str) -> f64 {
    let text = ouradb::metrics::render(
        ouradb::metrics::live(),
        &ouradb::metrics::Snapshot::default(),
    );
    samples(&text)[&format!("ouradb_webhook_events_total{{outcome=\"{outcome}\"}}")]
}

/// A signed webhook event applied by the worker is counted by its outcome.
/// (Other tests of this binary only ever add to the process's counters.)
#[tokio::test]
async fn an_applied_webhook_event_is_counted_by_outcome() {
    use hmac::{Hmac, KeyInit, Mac};
    use ouradb::config::{Secret, WebhookConfig, WebhookSettings};
    const SECRET: &str = "sim-secret";
    let env = Env::start(5, |_| {}).await;
    let mut config = env.config();
    config.oauth.client_id = Some("sim-client".into());
    config.oauth.client_secret = Some(Secret::new(SECRET));
    config.webhook = WebhookConfig::Enabled(WebhookSettings {
        listen: "127.0.0.1:0".parse().unwrap(),
        callback_url: "http://127.0.0.1:1/hook".parse().unwrap(),
        verification_token: Secret::new("vt"),
    });
    let engine = std::sync::Arc::new(env.engine(config.clone()));
    let cancel = tokio_util::sync::CancellationToken::new();
    let tracker = tokio_util::task::TaskTracker::new();
    let opts = ouradb::webhook::ReceiverOptions::from_config(&config, ouradb::sync::system_clock())
        .unwrap();
    let handle = ouradb::webhook::receiver::start(engine, opts, cancel.clone(), &tracker)
        .await
        .unwrap();
    let before = webhook_events("deleted_not_stored");

    let ts = jiff::Timestamp::now().as_second().to_string();
    let body = serde_json::json!({"event_type": "delete", "data_type": "daily_sleep",
        "object_id": "never-stored", "event_time": jiff::Timestamp::now().to_string(),
        "user_id": "u"})
    .to_string();
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(ts.as_bytes());
    mac.update(body.as_bytes());
    let status = reqwest::Client::new()
        .post(format!("http://{}/hook", handle.addr))
        .header("content-type", "application/json")
        .header("x-oura-timestamp", &ts)
        .header(
            "x-oura-signature",
            hex::encode_upper(mac.finalize().into_bytes()),
        )
        .body(body)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    assert!(handle.wait_processed(1, Duration::from_secs(10)).await);
    assert!(webhook_events("deleted_not_stored") >= before + 1.0);
    cancel.cancel();
    tracker.close();
    tracker.wait().await;
    env.sim.stop().await;
}

/// Every outcome the webhook worker records is one the endpoint exposes
/// from the start.
#[test]
fn every_webhook_outcome_is_a_declared_label() {
    use ouradb::webhook::Outcome;
    for o in [
        Outcome::Stored,
        Outcome::Quarantined,
        Outcome::NotFound,
        Outcome::Deleted,
        Outcome::DeletedNotStored,
        Outcome::Pending,
        Outcome::Failed("boom".into()),
    ] {
        assert!(
            ouradb::metrics::WEBHOOK_OUTCOMES.contains(&o.label()),
            "{o:?}"
        );
    }
}

/// The files the package build generates are the ones `Cargo.toml`'s
/// `[package.metadata.deb]` lists, and they describe the real CLI.
#[test]
fn generated_package_assets_match_the_package_metadata_and_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let out = crate::cli::ouradb()
        .arg("generate-assets")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let mut generated: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    generated.sort();

    let manifest: toml::Table =
        toml::from_str(&std::fs::read_to_string(Path::new(REPO).join("Cargo.toml")).unwrap())
            .unwrap();
    let assets = manifest["package"]["metadata"]["deb"]["assets"]
        .as_array()
        .unwrap();
    let mut listed = Vec::new();
    for a in assets {
        let source = a[0].as_str().unwrap();
        match source.strip_prefix("target/release/assets/") {
            Some("*.1.gz") => {
                listed.extend(generated.iter().filter(|g| g.ends_with(".1.gz")).cloned())
            }
            Some(file) => listed.push(file.to_owned()),
            None if source.starts_with("target/") => {}
            None => assert!(Path::new(REPO).join(source).is_file(), "{source}"),
        }
    }
    listed.sort();
    assert_eq!(listed, generated);

    let read = |f: &str| {
        let bytes = std::fs::read(dir.path().join(f)).unwrap();
        let mut text = String::new();
        if f.ends_with(".gz") {
            std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut text)
                .unwrap();
        } else {
            text = String::from_utf8(bytes).unwrap();
        }
        text
    };
    for sub in [
        "daemon",
        "sync",
        "status",
        "auth",
        "webhook",
        "dashboards",
        "demo",
    ] {
        assert!(read("ouradb.bash").contains(sub), "bash: {sub}");
        assert!(read("_ouradb").contains(sub), "zsh: {sub}");
        assert!(read("ouradb.fish").contains(sub), "fish: {sub}");
        assert!(
            generated.contains(&format!("ouradb-{sub}.1.gz")),
            "man: {sub}"
        );
    }
    assert!(read("ouradb.bash").contains("--max-wait"));
    assert!(read("_ouradb").starts_with("#compdef ouradb"));
    assert!(
        read("ouradb.1.gz").starts_with(".ie"),
        "{}",
        read("ouradb.1.gz")
    );
    assert!(read("ouradb.1.gz").contains(".TH ouradb 1"));
    assert!(read("ouradb-sync.1.gz").contains("max\\-wait"));
    assert!(read("ouradb.service").contains("ExecStart=/usr/bin/ouradb daemon"));
    for g in &generated {
        assert!(!g.contains("generate-assets"), "{g}");
        assert!(
            !read(g).contains("generate-assets"),
            "{g} names the hidden command"
        );
    }
    // bash loads it and completes the subcommands.
    let script = format!(
        "source {}; COMP_WORDS=(ouradb st); COMP_CWORD=1; _ouradb ouradb st ouradb; echo \"${{COMPREPLY[@]}}\"",
        dir.path().join("ouradb.bash").display()
    );
    let out = Command::new("bash").args(["-c", &script]).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "status",
        "{out:?}"
    );
    // The global --config reaches every subcommand's completion.
    assert!(read("ouradb.fish").contains("__fish_ouradb_using_subcommand sync\" -l config"));
}
