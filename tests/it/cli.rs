//! The `ouradb` binary: crash safety under kill -9, config errors, status.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

use crate::util::{self, Env, assert_no_errors, fingerprint};

pub fn ouradb() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ouradb"));
    c.env_remove("OURA_TOKEN").env("OURADB_LOG", "warn");
    c
}

/// `ouradb --config CFG`.
pub fn ouradb_at(cfg: &Path) -> Command {
    let mut c = ouradb();
    c.arg("--config").arg(cfg);
    c
}

pub fn write_config(env: &Env, dir: &Path, db: &Path) -> PathBuf {
    let c = env.config_for(db);
    let path = dir.join("daemon.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[api]
base_url = "{}"
timeout_seconds = 5
[auth]
personal_access_token = "{}"
[storage]
database = "{}"
[sync]
backfill_start = "{}"
[retry]
base_delay_ms = 20
max_delay_seconds = 1
"#,
            env.sim.base_url(),
            util::TOKEN,
            db.display(),
            c.backfill_start
        ),
    )
    .unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_points_then_finish_equals_a_clean_run() {
    let env = Env::start(365, |_| {}).await;
    let clean = env.dir.path().join("clean.sqlite");
    assert_no_errors(&env.sync_with(env.config_for(&clean)).await);
    let expected = fingerprint(&clean);

    let db = env.dir.path().join("killed.sqlite");
    let cfg = write_config(&env, env.dir.path(), &db);
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let mut killed_mid_run = 0;
    for _ in 0..20 {
        let mut child = ouradb_at(&cfg)
            .arg("sync")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let delay = Duration::from_millis(rng.random_range(30..900));
        tokio::time::sleep(delay).await;
        if child.try_wait().unwrap().is_none() {
            killed_mid_run += 1;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
    assert!(
        killed_mid_run >= 10,
        "most kills must land mid-run ({killed_mid_run})"
    );

    let out = ouradb_at(&cfg).arg("sync").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(fingerprint(&db), expected);
    env.sim.stop().await;
}

#[test]
fn bad_config_is_one_line_naming_the_key_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("[sync]\nbackfill_start = \"soon\"\n", "sync.backfill_start"),
        ("[rate_limit]\nrequests = 0\n", "rate_limit.requests"),
        ("[api]\nbase_url = \"not a url\"\n", "api.base_url"),
        ("[storage]\ndatabase_path = \"x\"\n", "database_path"),
    ];
    for (text, key) in cases {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, text).unwrap();
        let out = ouradb()
            .arg("--config")
            .arg(&path)
            .arg("status")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{text}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(key), "{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    }
    let out = ouradb()
        .arg("--config")
        .arg(dir.path().join("missing.toml"))
        .arg("status")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.toml"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_then_status_shows_every_type() {
    let env = Env::start(10, |_| {}).await;
    let db = env.db();
    let cfg = write_config(&env, env.dir.path(), &db);

    let out = ouradb_at(&cfg).arg("status").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ouradb sync"));

    let started = Instant::now();
    let out = ouradb_at(&cfg).arg("sync").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(started.elapsed() < Duration::from_secs(60));
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.contains("daily_sleep") && summary.contains("inserted"),
        "{summary}"
    );

    let out = ouradb_at(&cfg).arg("status").output().unwrap();
    assert!(out.status.success());
    let table = String::from_utf8_lossy(&out.stdout);
    for dt in ouradb::registry::DATA_TYPES {
        assert!(table.contains(dt.name), "{} in {table}", dt.name);
    }
    assert!(
        table.contains("fresh") && table.contains("complete"),
        "{table}"
    );

    let out = ouradb_at(&cfg).args(["status", "--json"]).output().unwrap();
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.len(), ouradb::registry::DATA_TYPES.len());
    assert!(rows.iter().all(|r| r["freshness"] == "fresh"), "{rows:#?}");

    // A failing sync exits non-zero and status marks the type failing.
    let mut bad = std::fs::read_to_string(&cfg).unwrap();
    bad = bad.replace(util::TOKEN, "revoked");
    std::fs::write(&cfg, bad).unwrap();
    let out = ouradb_at(&cfg)
        .args(["sync", "--type", "daily_sleep"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let out = ouradb_at(&cfg).arg("status").output().unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    let line = table.lines().find(|l| l.contains("daily_sleep")).unwrap();
    assert!(
        line.contains("failing") && line.contains("unauthorized"),
        "{line}"
    );
    assert!(!table.contains("revoked"), "token printed: {table}");
    // The table cuts long errors to fit; `--json` has the whole text.
    let out = ouradb_at(&cfg)
        .args(["status", "--json"])
        .env("COLUMNS", "100")
        .output()
        .unwrap();
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let ds = rows
        .iter()
        .find(|r| r["data_type"] == "daily_sleep")
        .unwrap();
    assert!(ds["last_error"].as_str().unwrap().contains("401"), "{ds}");
    env.sim.stop().await;
}

#[test]
fn systemd_unit_verifies_when_systemd_analyze_is_present() {
    let unit = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("systemd/ouradb.service");
    let text = std::fs::read_to_string(&unit).unwrap();
    for needle in [
        "Type=notify",
        "Restart=on-failure",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "ReadWritePaths=",
        "ExecStart=",
    ] {
        assert!(text.contains(needle), "unit lacks {needle}");
    }
    // Verify a copy whose ExecStart names the binary under test, so the
    // check is complete rather than tolerant of a missing executable.
    let dir = tempfile::tempdir().unwrap();
    let runtime = dir.path().join("runtime");
    std::fs::create_dir(&runtime).unwrap();
    let copy = dir.path().join("ouradb.service");
    let exec = text
        .lines()
        .find(|l| l.starts_with("ExecStart="))
        .unwrap()
        .to_owned();
    std::fs::write(
        &copy,
        text.replace(
            &exec,
            &format!("ExecStart={} daemon", env!("CARGO_BIN_EXE_ouradb")),
        ),
    )
    .unwrap();
    let Ok(out) = Command::new("systemd-analyze")
        .args(["verify", "--user"])
        .arg(&copy)
        .env("XDG_RUNTIME_DIR", &runtime)
        .output()
    else {
        eprintln!("systemd-analyze not installed; structural checks only");
        return;
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    let problems: Vec<_> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(problems.is_empty(), "systemd-analyze: {problems:#?}");
}

#[test]
fn the_status_table_cuts_long_errors_to_the_width_and_keeps_one_line_per_type() {
    let now = jiff::Timestamp::now();
    let long = format!("server said: {}\nsecond line", "x".repeat(3000));
    let states: Vec<ouradb::store::SyncState> = ouradb::registry::DATA_TYPES
        .iter()
        .map(|d| ouradb::store::SyncState {
            data_type: d.name.to_owned(),
            last_error_kind: Some("bad_response".into()),
            last_error: Some(long.clone()),
            last_error_at: Some(now),
            ..Default::default()
        })
        .collect();
    for width in [200u16, 120, 60] {
        let table = ouradb::cli::status_table_width(
            &states,
            now,
            std::time::Duration::from_secs(3600),
            width,
        )
        .to_string();
        let lines: Vec<&str> = table.lines().collect();
        // Header, separators and one line per type: nothing wraps.
        assert!(lines.len() <= 4 + 2 * states.len(), "{table}");
        let widest = lines.iter().map(|l| l.chars().count()).max().unwrap();
        let others =
            ouradb::cli::status_table_width(&states[..0], now, std::time::Duration::ZERO, 0)
                .to_string()
                .lines()
                .map(|l| l.chars().count())
                .max()
                .unwrap();
        assert!(
            widest <= usize::from(width).max(others + 60),
            "{widest} > {width}: {table}"
        );
        assert!(table.contains("bad_response: server said: xxx") && table.contains('…'));
        assert!(!table.contains("second line"));
    }
}

#[test]
fn status_lists_quarantined_documents_and_pending_removals() {
    let q = vec![ouradb::store::QuarantineSummary {
        data_type: "daily_stress".into(),
        count: 2,
        latest_reason: format!("no readable `day` (got null){}", " and more".repeat(100)),
        latest_at: jiff::Timestamp::now(),
    }];
    let pending: std::collections::HashMap<String, i64> = [("tag".to_owned(), 3)].into();
    let text = ouradb::cli::quarantine_section(&q, &pending).unwrap();
    assert!(
        text.contains("daily_stress: 2 (latest: no readable `day` (got null)"),
        "{text}"
    );
    assert!(text.lines().all(|l| l.chars().count() < 220), "{text}");
    assert!(text.contains("removed if still missing 24 h later") && text.contains("tag: 3"));
    assert!(ouradb::cli::quarantine_section(&[], &Default::default()).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_refused_every_type_for_scopes_exits_non_zero_naming_them() {
    // A personal access token carries no scope list: each type's refusal
    // (403/401 naming the scope) is how the run learns it.
    let env = Env::start(10, |c| {
        c.token_scopes.insert(
            util::TOKEN.to_owned(),
            vec!["email".to_owned(), "daily".to_owned()],
        );
    })
    .await;
    let db = env.db();
    let cfg = write_config(&env, env.dir.path(), &db);
    let out = ouradb_at(&cfg)
        .args(["sync", "--type", "workout", "--type", "heartrate"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("ouradb: nothing synced: every data type was skipped because the grant lacks its scope (not granted: heartrate workout); run `ouradb auth login` granting them"),
        "{stderr}"
    );

    // Types skipped beside synced ones are reported, not a failure.
    let out = ouradb_at(&cfg).arg("sync").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("ouradb: skipped "), "{stderr}");
    assert!(!stderr.contains("nothing synced"), "{stderr}");
    assert!(util::count(&db, "daily_sleep") > 0);
    env.sim.stop().await;
}

#[test]
fn plain_http_to_another_machine_is_refused_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("daemon.toml");
    let db = dir.path().join("db.sqlite");
    for (api, key) in [
        ("base_url = \"http://oura.example\"", "api.base_url"),
        ("", "auth.token_url"),
    ] {
        let auth = if api.is_empty() {
            "token_url = \"http://oura.example/oauth/token\""
        } else {
            ""
        };
        std::fs::write(
            &path,
            format!(
                "[api]\n{api}\n[auth]\n{auth}\n[storage]\ndatabase = \"{}\"\n",
                db.display()
            ),
        )
        .unwrap();
        let out = ouradb_at(&path).args(["auth", "status"]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
        assert!(
            err.contains(&format!("config key `{key}`"))
                && err.contains("unencrypted (plain http) to oura.example")
                && err.contains("https://oura.example")
                && err.contains("allow_insecure_http = true in [api]"),
            "{err}"
        );
    }
    // The opt-in, and loopback http (the simulator), load.
    for api in [
        "allow_insecure_http = true\nbase_url = \"http://oura.example\"",
        "base_url = \"http://127.0.0.1:9\"",
        "base_url = \"http://localhost:9\"",
        "base_url = \"http://[::1]:9\"",
    ] {
        std::fs::write(
            &path,
            format!("[api]\n{api}\n[storage]\ndatabase = \"{}\"\n", db.display()),
        )
        .unwrap();
        let out = ouradb_at(&path).args(["auth", "status"]).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{api}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn credential_files_open_to_other_users_are_named_with_the_chmod() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    // A space makes the printed command quote the path.
    let home = dir.path().join("my ouradb");
    std::fs::create_dir(&home).unwrap();
    let cfg = home.join("daemon.toml");
    let pat = home.join("token");
    let tokens = home.join("tokens.json");
    std::fs::write(&pat, "pat-from-file\n").unwrap();
    std::fs::write(&tokens, "{}").unwrap();
    let write_cfg = |secret: &str| {
        std::fs::write(
            &cfg,
            format!(
                "[auth]\npersonal_access_token_file = \"{}\"\ntoken_file = \"{}\"\n{secret}\n[storage]\ndatabase = \"{}\"\n",
                pat.display(),
                tokens.display(),
                home.join("db.sqlite").display()
            ),
        )
        .unwrap();
    };
    let chmod = |p: &Path, mode: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    let warnings = || {
        let out = ouradb_at(&cfg).args(["status"]).output().unwrap();
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter(|l| l.starts_with("ouradb: warning: "))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let quoted = |p: &Path| format!("`chmod 600 '{}'`", p.display());

    write_cfg("client_secret = \"cs-in-the-config\"");
    chmod(&cfg, 0o666);
    chmod(&pat, 0o644);
    chmod(&tokens, 0o640);
    let w = warnings();
    assert_eq!(w.len(), 3, "{w:#?}");
    assert!(
        w[0].contains(&format!("config file {}", cfg.display()))
            && w[0].contains("mode 0666")
            && w[0].ends_with(&quoted(&cfg)),
        "{w:#?}"
    );
    for (file, mode) in [(&tokens, "0640"), (&pat, "0644")] {
        assert!(
            w.iter()
                .any(|l| l.contains(&format!("token file {}", file.display()))
                    && l.contains(mode)
                    && l.ends_with(&quoted(file))),
            "{file:?}: {w:#?}"
        );
    }

    // A config without a credential in it may be readable.
    write_cfg("");
    let w = warnings();
    assert_eq!(w.len(), 2, "{w:#?}");
    assert!(w.iter().all(|l| !l.contains("config file")), "{w:#?}");

    for p in [&cfg, &pat, &tokens] {
        chmod(p, 0o600);
    }
    write_cfg("client_secret = \"cs-in-the-config\"");
    chmod(&cfg, 0o600);
    assert_eq!(warnings(), Vec::<String>::new());
}

#[test]
fn grafana_provisioning_keeps_any_database_path_as_written() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "Oura #1",
        "a: b",
        "it's \"quoted\"",
        "- dash",
        "{braces} & *star [x]",
        " lead and trail ",
        "yes",
        "ünïcode ✓",
    ] {
        let folder = dir.path().join(name);
        let db = folder.join("ouradb.sqlite");
        let out_dir = folder.join("dash");
        let out = ouradb()
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
        let read = |rel: &str| -> yaml_serde::Value {
            let text = std::fs::read_to_string(out_dir.join(rel)).unwrap();
            assert!(text.starts_with("# Grafana"), "the comment is kept: {text}");
            yaml_serde::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}\n{text}"))
        };
        let ds = read("grafana/provisioning/datasources/ouradb.yaml");
        assert_eq!(
            ds["datasources"][0]["jsonData"]["path"].as_str(),
            Some(db.to_str().unwrap()),
            "{name}"
        );
        assert_eq!(
            ds["datasources"][0]["jsonData"]["pathOptions"].as_str(),
            Some("mode=ro")
        );
        assert_eq!(
            ds["datasources"][0]["type"].as_str(),
            Some("frser-sqlite-datasource")
        );
        let prov = read("grafana/provisioning/dashboards/ouradb.yaml");
        assert_eq!(
            prov["providers"][0]["options"]["path"].as_str(),
            Some(out_dir.join("grafana/dashboards").to_str().unwrap()),
            "{name}"
        );
        assert!(out_dir.join("grafana/dashboards/ouradb.json").is_file());
    }
}
