//! OAuth2 against the simulator: login, durable rotation, single-flight
//! refresh, re-authorization, and secret-free logs.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ouradb::api::auth::TokenSource;
use ouradb::api::oauth::{self, LoginOptions, LoginOutcome, OAuthError, OAuthSource, TokenFile};
use ouradb::api::{ApiError, Client, Limiter, PageQuery};
use ouradb::config::Config;
use ouradb_sim::{OAuthClient, SimConfig, SimServer};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

const CLIENT_ID: &str = "oauth-test-app";
const CLIENT_SECRET: &str = "cs-7f3a91d2e6b04c58a1f0-client-secret";
const TOKEN_EP: &str = "POST /oauth/token";
const NEW_TOKEN_EP: &str = "POST /oauth/v2/ext/oauth-token";
const PERSONAL: &str = "GET /v2/usercollection/personal_info";

struct Env {
    sim: SimServer,
    dir: tempfile::TempDir,
    config: Config,
    config_path: PathBuf,
}

fn sim_config(lifetime: Duration) -> SimConfig {
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    let mut c = SimConfig::new(11, 10, today);
    c.tokens = Vec::new();
    c.access_token_lifetime = lifetime;
    c.clients = vec![OAuthClient::legacy(CLIENT_ID, CLIENT_SECRET)];
    c
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn setup_with(sim_cfg: SimConfig, redirect: Option<&str>) -> Env {
    let sim = SimServer::start(sim_cfg).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let base = sim.base_url();
    let redirect = redirect
        .map(str::to_owned)
        .unwrap_or_else(|| format!("http://127.0.0.1:{}/callback", free_port()));
    let text = format!(
        r#"[api]
base_url = "{base}"
timeout_seconds = 10

[storage]
database = "{db}"

[auth]
client_id = "{CLIENT_ID}"
client_secret = "{CLIENT_SECRET}"
redirect_uri = "{redirect}"
authorize_url = "{base}/oauth/authorize"
token_url = "{base}/oauth/token"
fallback_token_url = "{base}/oauth/v2/ext/oauth-token"
revoke_url = "{base}/oauth/revoke"
token_file = "{tokens}"

[retry]
max_attempts = 2
base_delay_ms = 10
"#,
        db = dir.path().join("db.sqlite").display(),
        tokens = dir.path().join("state/tokens.json").display(),
    );
    let config_path = dir.path().join("daemon.toml");
    std::fs::write(&config_path, &text).unwrap();
    let config = Config::from_toml(&text, &config_path, |_| None).unwrap();
    Env {
        sim,
        dir,
        config,
        config_path,
    }
}

async fn setup(lifetime: Duration) -> Env {
    setup_with(sim_config(lifetime), None).await
}

/// Runs `login` and plays the browser: follows the authorization URL
/// (after `tamper`) through the simulator's redirect to our listener.
async fn drive_login(
    config: &Config,
    tamper: impl Fn(url::Url) -> url::Url + Send + 'static,
) -> Result<LoginOutcome, OAuthError> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut opts = LoginOptions::new(false, move |u| {
        let _ = tx.send(u.clone());
    });
    opts.timeout = Duration::from_secs(20);
    let browser = tokio::spawn(async move {
        let u = rx.recv().await.expect("authorization URL");
        let _ = reqwest::get(tamper(u)).await;
    });
    let r = oauth::login(config, opts).await;
    browser.await.unwrap();
    r
}

fn api_client(config: &Config, source: Arc<dyn TokenSource>) -> Arc<Client> {
    Arc::new(
        Client::new(
            config,
            source,
            Arc::new(Limiter::new(&config.rate_limit)),
            CancellationToken::new(),
        )
        .unwrap(),
    )
}

async fn fetch(client: &Client) -> Result<(), ApiError> {
    let dt = ouradb::registry::find("personal_info").unwrap();
    let page = client.fetch_page(dt, &PageQuery::All, None).await?;
    assert_eq!(page.data.len(), 1);
    Ok(())
}

fn stored(config: &Config) -> oauth::StoredTokens {
    TokenFile::new(&config.oauth.token_file)
        .load()
        .unwrap()
        .expect("tokens stored")
}

fn ouradb_cmd(env: &Env, args: &[&str]) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_ouradb"));
    c.arg("--config")
        .arg(&env.config_path)
        .args(args)
        .env_remove("OURA_TOKEN")
        .env_remove("OURA_CLIENT_SECRET")
        .env_remove("OURADB_FAILPOINT")
        .env_remove("OURADB_LOG")
        .env("HOME", env.dir.path())
        .kill_on_drop(true)
        .stdin(std::process::Stdio::null());
    c
}

async fn run_bin(mut cmd: tokio::process::Command) -> std::process::Output {
    tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("ouradb finished in time")
        .unwrap()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_stores_private_tokens_and_api_calls_work() {
    let env = setup(Duration::from_secs(3600)).await;
    let out = drive_login(&env.config, |u| u).await.unwrap();
    assert_eq!(out.scopes.len(), 9, "{:?}", out.scopes);
    assert!(out.missing_scopes.is_empty());
    // The user id comes from personal_info, read once during login.
    assert_eq!(env.sim.count(PERSONAL, 200), 1);
    let info: serde_json::Value =
        serde_json::from_str(&env.sim.read_data(|d| d.personal_info().to_owned())).unwrap();
    assert_eq!(out.user_id.as_deref(), info["id"].as_str());
    let file = &env.config.oauth.token_file;
    assert_eq!(mode(file), 0o600);
    assert_eq!(mode(file.parent().unwrap()), 0o700);
    let t = stored(&env.config);
    assert_eq!(t.client_id, CLIENT_ID);
    assert!(t.reauth_required.is_none());

    // The engine's choice for this config is OAuth, and it works.
    assert!(oauth::uses_oauth(&env.config));
    let client = api_client(&env.config, oauth::token_source(&env.config));
    fetch(&client).await.unwrap();
    assert_eq!(env.sim.count(TOKEN_EP, 200), 1);

    let st = oauth::auth_state(&env.config.oauth).unwrap();
    assert!(st.signed_in && st.reauth_required.is_none());
    assert!(st.has_scope("heartrate"));
    env.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_state_and_access_denied_are_rejected_clearly() {
    let env = setup(Duration::from_secs(3600)).await;
    let err = drive_login(&env.config, |mut u| {
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "state" {
                    "forged".into()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
        u
    })
    .await
    .unwrap_err();
    assert!(matches!(err, OAuthError::StateMismatch), "{err}");
    assert!(err.to_string().contains("`state` does not match"), "{err}");
    assert!(!env.config.oauth.token_file.exists());
    assert_eq!(
        env.sim.count(TOKEN_EP, 200),
        0,
        "a forged callback's code is never exchanged"
    );
    env.sim.stop().await;

    let mut cfg = sim_config(Duration::from_secs(3600));
    cfg.oauth_approve = false;
    let env = setup_with(cfg, None).await;
    let err = drive_login(&env.config, |u| u).await.unwrap_err();
    assert!(matches!(err, OAuthError::Denied), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("denied") && msg.contains("ouradb auth login"),
        "{msg}"
    );
    assert!(!env.config.oauth.token_file.exists());
    env.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pasted_redirect_url_when_the_redirect_is_not_local() {
    let env = setup_with(
        sim_config(Duration::from_secs(3600)),
        Some("https://example.invalid/oura/callback"),
    )
    .await;
    let (mut writer, reader) = tokio::io::duplex(4096);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut opts = LoginOptions::new(false, move |u| {
        let _ = tx.send(u.clone());
    });
    opts.timeout = Duration::from_secs(20);
    opts.paste = Some(Box::new(tokio::io::BufReader::new(reader)));
    let user = tokio::spawn(async move {
        let u = rx.recv().await.unwrap();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let resp = http.get(u).send().await.unwrap();
        let location = resp.headers()["location"].to_str().unwrap().to_owned();
        assert!(location.starts_with("https://example.invalid/oura/callback?"));
        writer
            .write_all(format!("{location}\n").as_bytes())
            .await
            .unwrap();
    });
    let out = oauth::login(&env.config, opts).await.unwrap();
    user.await.unwrap();
    assert_eq!(out.scopes.len(), 9);
    let client = api_client(&env.config, Arc::new(OAuthSource::new(&env.config)));
    fetch(&client).await.unwrap();
    env.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiring_tokens_are_refreshed_transparently() {
    let env = setup(Duration::from_secs(2)).await;
    drive_login(&env.config, |u| u).await.unwrap();
    let source = Arc::new(OAuthSource::new(&env.config));
    let client = api_client(&env.config, source.clone());
    fetch(&client).await.unwrap();
    let first = stored(&env.config);

    // Past the lifetime: refreshed before use, no 401 seen.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    fetch(&client).await.unwrap();
    assert_eq!(env.sim.count(TOKEN_EP, 200), 2);
    assert_eq!(env.sim.count(PERSONAL, 401), 0);
    let second = stored(&env.config);
    assert_ne!(first.refresh_token, second.refresh_token);

    // The server thinks the token expired early: one 401, one refresh.
    env.sim.advance_time(Duration::from_secs(5));
    fetch(&client).await.unwrap();
    assert_eq!(env.sim.count(PERSONAL, 401), 1);
    assert_eq!(env.sim.count(TOKEN_EP, 200), 3);
    assert_eq!(env.sim.count(TOKEN_EP, 400), 0);
    assert_eq!(source.refresh_count(), 2);
    env.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_consecutive_refreshes_keep_the_chain_alive() {
    let env = setup(Duration::from_secs(3600)).await;
    drive_login(&env.config, |u| u).await.unwrap();
    let source = Arc::new(OAuthSource::new(&env.config));
    let mut previous = stored(&env.config).refresh_token;
    for i in 0..50 {
        source
            .refresh_now()
            .await
            .unwrap_or_else(|e| panic!("refresh {i}: {e}"));
        let now = stored(&env.config).refresh_token;
        assert_ne!(now, previous, "refresh {i} rotated the refresh token");
        previous = now;
    }
    assert_eq!(env.sim.count(TOKEN_EP, 200), 51);
    assert_eq!(env.sim.count(TOKEN_EP, 400), 0);
    let client = api_client(&env.config, source);
    fetch(&client).await.unwrap();
    env.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_callers_hitting_a_401_cause_one_refresh() {
    let env = setup(Duration::from_secs(3600)).await;
    drive_login(&env.config, |u| u).await.unwrap();
    let source = Arc::new(OAuthSource::new(&env.config));
    let client = api_client(&env.config, source.clone());
    fetch(&client).await.unwrap();

    // Ten jobs through the client, all with a token the server now refuses.
    env.sim.advance_time(Duration::from_secs(7200));
    let barrier = Arc::new(tokio::sync::Barrier::new(10));
    let jobs: Vec<_> = (0..10)
        .map(|_| {
            let client = client.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                fetch(&client).await
            })
        })
        .collect();
    for j in jobs {
        j.await.unwrap().unwrap();
    }
    assert!(env.sim.count(PERSONAL, 401) >= 1);
    assert_eq!(
        env.sim.count(TOKEN_EP, 200),
        2,
        "login + exactly one refresh"
    );

    // Ten direct `rejected` calls for the same token at the same moment.
    let tok = source.access_token().await.unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(10));
    let calls: Vec<_> = (0..10)
        .map(|_| {
            let (source, tok, barrier) = (source.clone(), tok.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                source.rejected(&tok).await
            })
        })
        .collect();
    for c in calls {
        assert!(c.await.unwrap().unwrap());
    }
    assert_eq!(env.sim.count(TOKEN_EP, 200), 3);
    assert_eq!(env.sim.count(TOKEN_EP, 400), 0);
    assert_ne!(source.access_token().await.unwrap(), tok);
    env.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_right_after_persisting_keeps_the_new_refresh_token() {
    let env = setup(Duration::from_secs(3600)).await;
    drive_login(&env.config, |u| u).await.unwrap();
    let before = stored(&env.config);

    let mut cmd = ouradb_cmd(&env, &["auth", "refresh"]);
    cmd.env(oauth::FAILPOINT_ENV, "after_token_persist");
    let out = run_bin(cmd).await;
    assert_eq!(
        out.status.signal(),
        Some(6),
        "aborted by the failpoint: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(env.sim.count(TOKEN_EP, 200), 2);
    let after_crash = stored(&env.config);
    assert_ne!(after_crash.refresh_token, before.refresh_token);
    assert_eq!(mode(&env.config.oauth.token_file), 0o600);

    // The next start refreshes with the persisted (new) refresh token.
    let out = run_bin(ouradb_cmd(&env, &["auth", "refresh"])).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(env.sim.count(TOKEN_EP, 200), 3);
    assert_eq!(
        env.sim.count(TOKEN_EP, 400),
        0,
        "no dead refresh token was spent"
    );
    assert_ne!(stored(&env.config).refresh_token, after_crash.refresh_token);
    let client = api_client(&env.config, Arc::new(OAuthSource::new(&env.config)));
    fetch(&client).await.unwrap();
    env.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_grant_requires_reauth_then_a_new_login_resumes() {
    let env = setup(Duration::from_secs(3600)).await;
    drive_login(&env.config, |u| u).await.unwrap();
    let source = Arc::new(OAuthSource::new(&env.config));
    let client = api_client(&env.config, source.clone());
    fetch(&client).await.unwrap();

    env.sim.revoke_grant(CLIENT_ID);
    let err = fetch(&client).await.unwrap_err();
    assert!(matches!(err, ApiError::ReauthRequired(_)), "{err}");
    assert!(err.to_string().contains("ouradb auth login"), "{err}");
    let st = oauth::auth_state(&env.config.oauth).unwrap();
    assert!(st.reauth_required.is_some(), "persisted in the token file");
    assert!(source.state().reauth_required.is_some());

    // No more API or token calls while re-authorization is required.
    let seen = env.sim.request_log().len();
    for _ in 0..3 {
        assert!(matches!(
            fetch(&client).await,
            Err(ApiError::ReauthRequired(_))
        ));
    }
    assert_eq!(env.sim.request_log().len(), seen);

    // `ouradb auth status` shows the state and the command to run.
    let out = run_bin(ouradb_cmd(&env, &["auth", "status"])).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("re-authorization required"), "{stdout}");
    assert!(stdout.contains("ouradb auth login"), "{stdout}");

    // A new login (here in this process; normally another one) is picked up
    // by the same source without a restart.
    let grant_before = st.grant_id.clone();
    drive_login(&env.config, |u| u).await.unwrap();
    fetch(&client).await.unwrap();
    let st = source.state();
    assert!(st.reauth_required.is_none());
    assert_ne!(st.grant_id, grant_before);
    env.sim.stop().await;
}

/// Runs `ouradb auth login` as a user would (the test plays the browser).
async fn login_with_binary(env: &Env, extra_env: &[(&str, &str)]) -> (String, String) {
    let (status, stdout, stderr) =
        login_with_binary_args(env, &["auth", "login", "--no-browser"], extra_env).await;
    assert!(status.success(), "{stdout}\n{stderr}");
    (stdout, stderr)
}

/// Runs `ouradb` with `args` (an `auth login`) and plays the browser.
async fn login_with_binary_args(
    env: &Env,
    args: &[&str],
    extra_env: &[(&str, &str)],
) -> (std::process::ExitStatus, String, String) {
    let mut cmd = ouradb_cmd(env, args);
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let err_task = tokio::spawn(async move {
        let mut s = String::new();
        stderr.read_to_string(&mut s).await.unwrap();
        s
    });
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stdout = String::new();
    let drive = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            stdout.push_str(&line);
            stdout.push('\n');
            if line.starts_with("http") && line.contains("/oauth/authorize?") {
                let u = line.trim().to_owned();
                tokio::spawn(async move {
                    let _ = reqwest::get(u).await;
                });
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), drive)
        .await
        .expect("login finished");
    let status = child.wait().await.unwrap();
    let stderr = err_task.await.unwrap();
    (status, stdout, stderr)
}

/// Two `[[account]]`s signed in as the same Oura user (the browser's Oura
/// session still the first person's): the second sign-in is refused with
/// the reason and the fix, its tokens dropped, the first account's kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_account_signing_in_as_the_same_oura_user_is_refused() {
    let env = setup_with(sim_config(Duration::from_secs(3600)).with_persons(2), None).await;
    let mut text = std::fs::read_to_string(&env.config_path).unwrap();
    text.push_str("\n[[account]]\nname = \"alex\"\n\n[[account]]\nname = \"sam\"\n");
    std::fs::write(&env.config_path, text).unwrap();
    let login = |name: &'static str| {
        let env = &env;
        async move {
            login_with_binary_args(
                env,
                &["auth", "login", "--no-browser", "--account", name],
                &[],
            )
            .await
        }
    };
    let (status, out, err) = login("alex").await;
    assert!(status.success(), "{out}\n{err}");
    let (status, out, err) = login("sam").await;
    assert!(!status.success(), "{out}\n{err}");
    assert!(
        err.contains("account sam signed in as Oura user")
            && err.contains("which account alex already is")
            && err.contains("ouradb auth login --account sam"),
        "{err}"
    );
    let state = env.dir.path().join("state");
    assert!(state.join("tokens-alex.json").exists());
    assert!(
        !state.join("tokens-sam.json").exists(),
        "the refused sign-in's tokens stay"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_logs_of_a_full_run_contain_no_secrets() {
    let env = setup(Duration::from_secs(3600)).await;
    let trace = [("OURADB_LOG", "trace")];
    let mut output = String::new();
    let mut secrets: Vec<String> = vec![CLIENT_SECRET.to_owned()];

    let (o, e) = login_with_binary(&env, &trace).await;
    assert!(o.contains("granted scopes:"), "{o}");
    output += &o;
    output += &e;
    let t = stored(&env.config);
    secrets.push(t.access_token.expose().to_owned());
    secrets.push(t.refresh_token.expose().to_owned());

    for args in [
        &["auth", "refresh"][..],
        &["auth", "status"][..],
        &["auth", "status", "--json"][..],
    ] {
        let mut cmd = ouradb_cmd(&env, args);
        cmd.env("OURADB_LOG", "trace");
        let out = run_bin(cmd).await;
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        output += &String::from_utf8_lossy(&out.stdout);
        output += &String::from_utf8_lossy(&out.stderr);
        let t = stored(&env.config);
        secrets.push(t.access_token.expose().to_owned());
        secrets.push(t.refresh_token.expose().to_owned());
    }
    // Let the refreshed token make an API call, as a sync would.
    let client = api_client(&env.config, Arc::new(OAuthSource::new(&env.config)));
    fetch(&client).await.unwrap();

    let mut cmd = ouradb_cmd(&env, &["auth", "logout"]);
    cmd.env("OURADB_LOG", "trace");
    let out = run_bin(cmd).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    output += &String::from_utf8_lossy(&out.stdout);
    output += &String::from_utf8_lossy(&out.stderr);
    assert!(
        !env.config.oauth.token_file.exists(),
        "logout deleted the tokens"
    );

    // The logout revoked the grant: its tokens no longer work.
    let err = fetch(&api_client(
        &env.config,
        Arc::new(ouradb::api::auth::StaticToken::new(Some(
            ouradb::config::Secret::new(secrets.last().unwrap().clone()),
        ))),
    ))
    .await;
    assert!(err.is_err());

    for entry in env.sim.request_log() {
        if let Some(tok) = entry.token {
            secrets.push(tok);
        }
    }
    secrets.sort();
    secrets.dedup();
    assert!(secrets.len() >= 5, "{}", secrets.len());
    assert!(output.contains("TRACE"), "TRACE logging was on:\n{output}");
    for s in &secrets {
        assert!(
            !output.contains(s.as_str()),
            "a secret leaked into the output:\n{output}"
        );
    }
    env.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_sharing_the_token_file_refresh_once() {
    // Two sources over one file stand for a daemon and a one-off `ouradb
    // sync`: the file lock and the re-read under it keep them from spending
    // the same refresh token twice.
    let env = setup(Duration::from_secs(3600)).await;
    drive_login(&env.config, |u| u).await.unwrap();
    let a = Arc::new(OAuthSource::new(&env.config));
    let b = Arc::new(OAuthSource::new(&env.config));
    let tok = a.access_token().await.unwrap();
    assert_eq!(b.access_token().await.unwrap(), tok);
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let calls: Vec<_> = [a.clone(), b.clone()]
        .into_iter()
        .map(|s| {
            let (tok, barrier) = (tok.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                s.rejected(&tok).await
            })
        })
        .collect();
    for c in calls {
        assert!(c.await.unwrap().unwrap());
    }
    assert_eq!(env.sim.count(TOKEN_EP, 200), 2, "login + one refresh");
    assert_eq!(env.sim.count(TOKEN_EP, 400), 0);
    assert_eq!(a.refresh_count() + b.refresh_count(), 1);
    let new = a.access_token().await.unwrap();
    assert_ne!(new, tok);
    assert_eq!(b.access_token().await.unwrap(), new);
    env.sim.stop().await;
}

/// Adds a backfill start close to the simulated history so a full sync
/// stays small.
fn with_recent_backfill(env: &Env) {
    let mut text = std::fs::read_to_string(&env.config_path).unwrap();
    let start = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
        .saturating_sub(jiff::Span::new().days(20));
    text.push_str(&format!("\n[sync]\nbackfill_start = \"{start}\"\n"));
    std::fs::write(&env.config_path, text).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_then_sync_and_status_shows_reauthorization() {
    let env = setup(Duration::from_secs(3600)).await;
    with_recent_backfill(&env);
    drive_login(&env.config, |u| u).await.unwrap();

    let out = run_bin(ouradb_cmd(&env, &["sync"])).await;
    assert!(
        out.status.success(),
        "first sync after login: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run_bin(ouradb_cmd(&env, &["status"])).await;
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("auth: OAuth"), "{table}");
    let line = table.lines().find(|l| l.contains("daily_sleep")).unwrap();
    assert!(line.contains("fresh"), "{line}");

    env.sim.revoke_grant(CLIENT_ID);
    let out = run_bin(ouradb_cmd(&env, &["sync", "--type", "daily_sleep"])).await;
    assert_eq!(out.status.code(), Some(1));
    let out = run_bin(ouradb_cmd(&env, &["status"])).await;
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("RE-AUTHORIZATION REQUIRED") && table.contains("ouradb auth login"),
        "{table}"
    );
    let line = table.lines().find(|l| l.contains("daily_sleep")).unwrap();
    assert!(line.contains("failing"), "{line}");

    drive_login(&env.config, |u| u).await.unwrap();
    let out = run_bin(ouradb_cmd(&env, &["sync", "--type", "daily_sleep"])).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run_bin(ouradb_cmd(&env, &["status"])).await;
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(!table.contains("RE-AUTHORIZATION REQUIRED"), "{table}");
    env.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scope_left_out_of_the_grant_is_skipped_without_asking() {
    let mut cfg = sim_config(Duration::from_secs(3600));
    cfg.oauth_granted_scopes = Some(crate::util::scopes_without("workout"));
    let env = setup_with(cfg, None).await;
    with_recent_backfill(&env);
    let outcome = drive_login(&env.config, |u| u).await.unwrap();
    assert_eq!(outcome.missing_scopes, vec!["workout".to_owned()]);

    let out = run_bin(ouradb_cmd(&env, &["sync"])).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "a skipped type is reported, not a failure: {stderr}"
    );
    assert!(
        stderr.contains("ouradb: skipped workout (scope not granted; run `ouradb auth login` granting it to sync them)"),
        "{stderr}"
    );
    assert!(!stderr.contains("failed"), "{stderr}");
    assert_eq!(
        env.sim.count("GET /v2/usercollection/workout", 403)
            + env.sim.count("GET /v2/usercollection/workout", 200),
        0,
        "workout was never requested"
    );
    let out = run_bin(ouradb_cmd(&env, &["status"])).await;
    let table = String::from_utf8_lossy(&out.stdout);
    let line = table.lines().find(|l| l.contains("workout")).unwrap();
    assert!(
        line.contains("skipped") && line.contains("scope `workout` not granted"),
        "{line}"
    );
    let line = table.lines().find(|l| l.contains("daily_sleep")).unwrap();
    assert!(line.contains("fresh"), "{line}");
    env.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_portal_app_refreshes_through_the_fallback_and_remembers_it() {
    let mut cfg = sim_config(Duration::from_secs(3600));
    cfg.clients = vec![OAuthClient::new_portal(CLIENT_ID, CLIENT_SECRET)];
    let env = setup_with(cfg, None).await;
    drive_login(&env.config, |u| u).await.unwrap();
    // The code exchange works at the configured (legacy) endpoint.
    assert_eq!(env.sim.count(TOKEN_EP, 200), 1);
    let legacy = env.config.oauth.token_url.to_string();
    let fallback = env
        .config
        .oauth
        .fallback_token_url
        .clone()
        .unwrap()
        .to_string();
    assert_eq!(
        stored(&env.config).token_url.as_deref(),
        Some(legacy.as_str())
    );

    let a = OAuthSource::new(&env.config);
    for _ in 0..4 {
        a.refresh_now().await.unwrap();
    }
    assert_eq!(a.refresh_count(), 4);
    assert_eq!(
        env.sim.count(TOKEN_EP, 400),
        1,
        "only the first refresh tries the legacy endpoint"
    );
    assert_eq!(env.sim.count(NEW_TOKEN_EP, 200), 4);
    assert_eq!(
        stored(&env.config).token_url.as_deref(),
        Some(fallback.as_str())
    );
    // The refused call did not spend the refresh token, and the data API
    // takes the refreshed token.
    let client = api_client(&env.config, Arc::new(OAuthSource::new(&env.config)));
    fetch(&client).await.unwrap();

    // A second process (or a restart) goes straight to the remembered one.
    let b = OAuthSource::new(&env.config);
    b.refresh_now().await.unwrap();
    b.refresh_now().await.unwrap();
    assert_eq!(env.sim.count(TOKEN_EP, 400), 1, "no failed attempt");
    assert_eq!(env.sim.count(NEW_TOKEN_EP, 200), 6);
    let out = run_bin(ouradb_cmd(&env, &["auth", "refresh"])).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(env.sim.count(TOKEN_EP, 400), 1, "no failed attempt");

    let out = run_bin(ouradb_cmd(&env, &["auth", "status"])).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "token endpoint: {fallback} (fallback: Oura's newer developer portal)"
        )),
        "{text}"
    );
    env.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_portal_refresh_without_a_fallback_names_the_keys() {
    let mut cfg = sim_config(Duration::from_secs(3600));
    cfg.clients = vec![OAuthClient::new_portal(CLIENT_ID, CLIENT_SECRET)];
    let mut env = setup_with(cfg, None).await;
    env.config.oauth.fallback_token_url = None;
    drive_login(&env.config, |u| u).await.unwrap();
    let a = OAuthSource::new(&env.config);
    let err = a.refresh_now().await.unwrap_err().to_string();
    assert!(
        err.contains("HTTP 400: invalid_request")
            && err.contains("auth.token_url")
            && err.contains("auth.fallback_token_url"),
        "{err}"
    );
    // Refused, not spent: the grant still works once the fallback is set.
    let env_config = {
        let mut c = env.config.clone();
        c.oauth.fallback_token_url = Some(
            url::Url::parse(&format!("{}/oauth/v2/ext/oauth-token", env.sim.base_url())).unwrap(),
        );
        c
    };
    OAuthSource::new(&env_config).refresh_now().await.unwrap();
    env.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_scopes_ask_for_spo2_and_heart_health() {
    let env = setup(Duration::from_secs(3600)).await;
    let scopes = &env.config.oauth.scopes;
    assert!(scopes.iter().any(|s| s == "spo2"), "{scopes:?}");
    assert!(scopes.iter().any(|s| s == "heart_health"), "{scopes:?}");
    assert!(!scopes.iter().any(|s| s == "spo2Daily"), "{scopes:?}");
    let out = drive_login(&env.config, |u| u).await.unwrap();
    assert!(out.missing_scopes.is_empty(), "{:?}", out.missing_scopes);
    let st = oauth::auth_state(&env.config.oauth).unwrap();
    assert!(st.has_scope("spo2") && st.has_scope("heart_health"));
    let client = api_client(&env.config, oauth::token_source(&env.config));
    let dt = ouradb::registry::find("daily_spo2").unwrap();
    client.fetch_page(dt, &PageQuery::All, None).await.unwrap();
    env.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spo2daily_is_refused_naming_the_scope_and_the_key() {
    let mut env = setup(Duration::from_secs(3600)).await;
    env.config.oauth.scopes = vec!["personal".into(), "daily".into(), "spo2Daily".into()];
    let err = drive_login(&env.config, |u| u).await.unwrap_err();
    assert!(matches!(err, OAuthError::InvalidScope { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("Oura refused the scope `spo2Daily` at sign-in")
            && msg.contains("Change auth.scopes")
            && msg.contains("`spo2Daily` is now `spo2`"),
        "{msg}"
    );
    assert!(!env.config.oauth.token_file.exists(), "nothing stored");
    env.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_listing_spo2daily_still_covers_daily_spo2() {
    let mut cfg = sim_config(Duration::from_secs(3600));
    cfg.legacy_spo2_scope = true;
    let mut env = setup_with(cfg, None).await;
    env.config.oauth.scopes = vec!["personal".into(), "daily".into(), "spo2Daily".into()];
    let out = drive_login(&env.config, |u| u).await.unwrap();
    // As Oura lists it today (`extapi:spo2Daily`), stored as received.
    assert!(
        out.scopes
            .iter()
            .any(|s| s.rsplit(':').next() == Some("spo2Daily")),
        "{:?}",
        out.scopes
    );
    assert!(out.missing_scopes.is_empty(), "{:?}", out.missing_scopes);
    let st = oauth::auth_state(&env.config.oauth).unwrap();
    assert!(st.has_scope("spo2"), "the registry's daily_spo2 scope");
    let client = api_client(&env.config, oauth::token_source(&env.config));
    let grant = client.grant();
    let dt = ouradb::registry::find("daily_spo2").unwrap();
    assert!(ouradb::registry::grant_covers(
        grant.scopes.as_deref().unwrap(),
        dt.scope
    ));
    client.fetch_page(dt, &PageQuery::All, None).await.unwrap();
    env.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_exchange_refused_at_the_legacy_endpoint_uses_the_fallback() {
    let mut cfg = sim_config(Duration::from_secs(3600));
    cfg.clients = vec![OAuthClient {
        portal: ouradb_sim::Portal::NewOnly,
        ..OAuthClient::legacy(CLIENT_ID, CLIENT_SECRET)
    }];
    let env = setup_with(cfg, None).await;
    drive_login(&env.config, |u| u).await.unwrap();
    assert_eq!(env.sim.count(TOKEN_EP, 400), 1);
    assert_eq!(
        env.sim.count(NEW_TOKEN_EP, 200),
        1,
        "the same code, once more"
    );
    let fallback = env
        .config
        .oauth
        .fallback_token_url
        .clone()
        .unwrap()
        .to_string();
    assert_eq!(
        stored(&env.config).token_url.as_deref(),
        Some(fallback.as_str())
    );
    OAuthSource::new(&env.config).refresh_now().await.unwrap();
    assert_eq!(
        env.sim.count(TOKEN_EP, 400),
        1,
        "refreshes go straight there"
    );
    assert_eq!(env.sim.count(NEW_TOKEN_EP, 200), 2);
    env.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_token_with_a_line_break_is_not_blamed_on_the_network() {
    let env = setup(Duration::from_secs(3600)).await;
    drive_login(&env.config, |u| u).await.unwrap();
    let mut t = stored(&env.config);
    t.access_token = ouradb::config::Secret::new("a_first-half\nsecond-half");
    TokenFile::new(&env.config.oauth.token_file)
        .save(&t)
        .unwrap();
    env.sim.clear_request_log();
    let client = api_client(&env.config, oauth::token_source(&env.config));
    let err = fetch(&client).await.unwrap_err().to_string();
    assert_eq!(
        err,
        "personal_info: the access token contains a line break or another character an HTTP header cannot carry, so nothing was sent; copy the token again as one line, or run `ouradb auth login` for OAuth tokens"
    );
    assert!(!err.contains("network"), "{err}");
    assert!(env.sim.request_log().is_empty(), "nothing was sent");
    env.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scopes_listed_with_a_prefix_are_granted_shown_and_synced() {
    let env = setup(Duration::from_secs(3600)).await;
    assert_eq!(
        env.sim.config().quirks.scope_prefix.as_deref(),
        Some("extapi:"),
        "the live API's form is the simulator's default"
    );
    with_recent_backfill(&env);
    let (stdout, _) = login_with_binary(&env, &[]).await;
    assert!(stdout.contains("granted scopes: extapi:"), "{stdout}");
    assert!(!stdout.contains("not granted"), "{stdout}");
    // Kept as received; the user id came from personal_info, so `personal`
    // was recognised too.
    let t = stored(&env.config);
    assert_eq!(t.scopes.len(), 9, "{:?}", t.scopes);
    assert!(
        t.scopes.iter().all(|s| s.starts_with("extapi:")),
        "{:?}",
        t.scopes
    );
    assert!(t.user_id.is_some());

    let out = run_bin(ouradb_cmd(&env, &["auth", "status"])).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("scopes: extapi:"), "{stdout}");
    assert!(!stdout.contains("not granted"), "{stdout}");
    assert!(!stdout.contains("user id: unknown"), "{stdout}");
    assert!(stdout.contains("state: active"), "{stdout}");

    let out = run_bin(ouradb_cmd(&env, &["sync"])).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("skipped"), "{stderr}");
    let db = env.dir.path().join("db.sqlite");
    for table in ["daily_sleep", "heartrate", "workout", "personal_info"] {
        assert!(crate::util::count(&db, table) > 0, "{table} stored");
    }
    env.sim.stop().await;
}

/// `u` with the query parameter `key` set to `value`.
fn with_param(mut u: url::Url, key: &str, value: &str) -> url::Url {
    let pairs: Vec<(String, String)> = u
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == key {
                value.to_owned()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    u.query_pairs_mut().clear().extend_pairs(pairs);
    u
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_uses_pkce_s256_and_a_code_without_its_verifier_is_refused() {
    let env = setup(Duration::from_secs(3600)).await;
    let (tx, rx) = std::sync::mpsc::channel();
    drive_login(&env.config, move |u| {
        tx.send(u.clone()).unwrap();
        u
    })
    .await
    .unwrap();
    let u = rx.recv().unwrap();
    let param = |k: &str| {
        u.query_pairs()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.into_owned())
    };
    assert_eq!(param("code_challenge_method").as_deref(), Some("S256"));
    let challenge = param("code_challenge").expect("code_challenge");
    assert_eq!(challenge.len(), 43, "BASE64URL of a SHA-256, unpadded");
    assert!(
        challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "{challenge}"
    );

    // Another challenge than ours: the code is issued for it, and our
    // verifier does not match it.
    let forged = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    let err = drive_login(&env.config, move |u| {
        with_param(u, "code_challenge", forged)
    })
    .await
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("exchanging the authorization code failed") && msg.contains("invalid_grant"),
        "{msg}"
    );
    // A second login takes a fresh verifier (and so a fresh challenge).
    let (tx, rx) = std::sync::mpsc::channel();
    drive_login(&env.config, move |u| {
        tx.send(u.clone()).unwrap();
        u
    })
    .await
    .unwrap();
    let again = rx.recv().unwrap();
    assert!(
        again
            .query_pairs()
            .any(|(k, v)| k == "code_challenge" && v != challenge.as_str()),
        "{again}"
    );
    env.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_that_skips_every_type_for_scopes_fails_naming_them() {
    let mut cfg = sim_config(Duration::from_secs(3600));
    cfg.oauth_granted_scopes = Some(vec!["email".into()]);
    let env = setup_with(cfg, None).await;
    with_recent_backfill(&env);
    let outcome = drive_login(&env.config, |u| u).await.unwrap();
    assert_eq!(outcome.scopes, vec!["extapi:email".to_owned()]);

    let out = run_bin(ouradb_cmd(&env, &["sync"])).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "ouradb: nothing synced: every data type was skipped because the grant lacks its scope (not granted: daily heartrate personal session spo2 tag workout); run `ouradb auth login` granting them"
        ),
        "{stderr}"
    );
    let data_requests = env
        .sim
        .request_log()
        .iter()
        .filter(|e| e.path.starts_with("/v2/"))
        .count();
    assert_eq!(
        data_requests, 0,
        "the grant's list decided, nothing was asked"
    );
    env.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_exchanges_a_pkce_code_only_with_its_verifier() {
    let env = setup(Duration::from_secs(3600)).await;
    let base = env.sim.base_url();
    let redirect = env.config.oauth.redirect_uri.to_string();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // RFC 7636 appendix B's pair.
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    let code = |method: Option<&'static str>, value: &'static str| {
        let (http, base, redirect) = (http.clone(), base.clone(), redirect.clone());
        async move {
            let mut q = vec![
                ("response_type", "code"),
                ("client_id", CLIENT_ID),
                ("redirect_uri", redirect.as_str()),
                ("scope", "daily"),
                ("state", "s"),
                ("code_challenge", value),
            ];
            if let Some(m) = method {
                q.push(("code_challenge_method", m));
            }
            let r = http
                .get(format!("{base}/oauth/authorize"))
                .query(&q)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 302);
            let to = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
            let get = |k: &str| {
                to.query_pairs()
                    .find(|(key, _)| key == k)
                    .map(|(_, v)| v.into_owned())
            };
            (get("code"), get("error"))
        }
    };
    let exchange = |code: String, verifier: Option<&'static str>| {
        let (http, base, redirect) = (http.clone(), base.clone(), redirect.clone());
        async move {
            let mut form = vec![
                ("grant_type", "authorization_code".to_owned()),
                ("code", code),
                ("redirect_uri", redirect),
                ("client_id", CLIENT_ID.to_owned()),
                ("client_secret", CLIENT_SECRET.to_owned()),
            ];
            if let Some(v) = verifier {
                form.push(("code_verifier", v.to_owned()));
            }
            let r = http
                .post(format!("{base}/oauth/token"))
                .form(&form)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let body: serde_json::Value = r.json().await.unwrap();
            (status, body["error"].as_str().unwrap_or("").to_owned())
        }
    };
    let wrong = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXX";
    for verifier in [Some(wrong), None, Some("short")] {
        let (c, _) = code(Some("S256"), challenge).await;
        let (status, error) = exchange(c.unwrap(), verifier).await;
        assert_eq!(
            (status, error.as_str()),
            (400, "invalid_grant"),
            "{verifier:?}"
        );
    }
    let (c, _) = code(Some("S256"), challenge).await;
    let c = c.unwrap();
    assert_eq!(exchange(c.clone(), Some(verifier)).await.0, 200);
    assert_eq!(
        exchange(c, Some(verifier)).await,
        (400, "invalid_grant".to_owned()),
        "single use"
    );
    // `plain` (the default method) compares the verifier itself.
    let (c, _) = code(None, verifier).await;
    assert_eq!(exchange(c.unwrap(), Some(verifier)).await.0, 200);
    // Unknown methods and malformed challenges are refused at authorization.
    for (method, value) in [(Some("S512"), challenge), (Some("S256"), "too-short")] {
        let (c, e) = code(method, value).await;
        assert_eq!(
            (c, e.as_deref()),
            (None, Some("invalid_request")),
            "{method:?} {value}"
        );
    }
    // Without a challenge the verifier is not asked for.
    let r = http
        .get(format!("{base}/oauth/authorize"))
        .query(&[
            ("response_type", "code"),
            ("client_id", CLIENT_ID),
            ("redirect_uri", redirect.as_str()),
            ("scope", "daily"),
        ])
        .send()
        .await
        .unwrap();
    let to = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    let c = to
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    assert_eq!(exchange(c, None).await.0, 200);
    env.sim.stop().await;
}

/// A partial grant as Oura lists it today (`extapi:daily ...`): the token
/// response and `auth status` compare each prefixed name with the scope it
/// stands for, so exactly the scopes left out are named, without prefix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_grant_listed_with_a_prefix_names_exactly_the_scopes_left_out() {
    let mut cfg = sim_config(Duration::from_secs(3600));
    let granted = ["email", "personal", "daily", "heartrate", "tag", "session"];
    cfg.oauth_granted_scopes = Some(granted.map(String::from).to_vec());
    let env = setup_with(cfg, None).await;
    let (stdout, _) = login_with_binary(&env, &[]).await;
    assert!(
        stdout.contains("granted scopes: extapi:email extapi:personal extapi:daily"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "not granted: workout spo2 heart_health (data types needing these are skipped)"
        ),
        "{stdout}"
    );
    let st = oauth::auth_state(&env.config.oauth).unwrap();
    assert!(st.has_scope("daily") && st.has_scope("heartrate") && !st.has_scope("workout"));

    let out = run_bin(ouradb_cmd(&env, &["auth", "status"])).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("scopes: extapi:email"), "{stdout}");
    assert!(
        stdout.contains("\nnot granted: workout spo2 heart_health\n"),
        "{stdout}"
    );
    env.sim.stop().await;
}

/// Without `[[account]]` in the config, a sign-in is the file's first
/// account's, whatever it is called now (as `sync` writes it): no second
/// account appears for the same person.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_without_accounts_in_the_config_is_the_files_first_account() {
    let env = setup(Duration::from_secs(3600)).await;
    let mut store = ouradb::store::Store::open(&env.config.database).unwrap();
    assert!(store.rename_account("default", "alice").unwrap());
    drop(store);
    login_with_binary(&env, &[]).await;
    let accounts = ouradb::store::Store::open(&env.config.database)
        .unwrap()
        .accounts()
        .unwrap();
    let info: serde_json::Value =
        serde_json::from_str(&env.sim.read_data(|d| d.personal_info().to_owned())).unwrap();
    let users: Vec<(i64, String, Option<String>)> = accounts
        .into_iter()
        .map(|a| (a.id.get(), a.name, a.oura_user_id))
        .collect();
    assert_eq!(
        users,
        [(
            1,
            "alice".to_owned(),
            info["id"].as_str().map(str::to_owned)
        )]
    );
    env.sim.stop().await;
}
