use super::*;
use crate::registry;

#[test]
fn max_in_flight_defaults_to_16_and_refuses_0() {
    assert_eq!(parse("").unwrap().max_in_flight, DEFAULT_MAX_IN_FLIGHT);
    assert_eq!(parse("[sync]\nmax_in_flight = 4").unwrap().max_in_flight, 4);
    for bad in ["0", "257"] {
        let e = parse(&format!("[sync]\nmax_in_flight = {bad}"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("sync.max_in_flight") && e.contains("use 1 to 256"),
            "{e}"
        );
    }
}

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml(text, Path::new("t.toml"), |_| None)
}

#[test]
fn defaults() {
    let c = parse("").unwrap();
    assert_eq!(c.base_url.as_str(), "https://api.ouraring.com/");
    assert_eq!(c.rate_limit.requests, 5000);
    assert_eq!(c.rate_limit.window, Duration::from_secs(300));
    assert_eq!(c.backfill_start, jiff::civil::date(2015, 1, 1));
    assert_eq!(c.types.len(), 20);
    assert_eq!(c.schedules["heartrate"], "0 */15 * * * *");
    for dt in registry::DATA_TYPES {
        assert_eq!(c.schedules[dt.name], dt.schedule, "{}", dt.name);
    }
    let c = parse("[schedule]\ndefault = \"0 0 * * * *\"\nsleep = \"0 1 * * * *\"").unwrap();
    assert_eq!(c.schedules["heartrate"], "0 0 * * * *");
    assert_eq!(c.schedules["sleep"], "0 1 * * * *");
    assert_eq!(c.lookback_days, 3);
    assert!(c.token.is_none());
}

#[test]
fn env_token_and_config_precedence() {
    let c = Config::from_toml("", Path::new("t"), |k| {
        (k == "OURA_TOKEN").then(|| "envtok".into())
    })
    .unwrap();
    assert_eq!(c.token.unwrap().expose(), "envtok");
    let c = Config::from_toml(
        "[auth]\npersonal_access_token = \"filetok\"\n",
        Path::new("t"),
        |_| Some("envtok".into()),
    )
    .unwrap();
    assert_eq!(c.token.unwrap().expose(), "filetok");
}

#[test]
fn errors_name_the_key_and_the_fix() {
    let cases = [
        (
            "[sync]\nbackfill_start = \"yesterday\"",
            "sync.backfill_start",
            "YYYY-MM-DD",
        ),
        (
            "[api]\nbase_url = \"ftp://x\"",
            "api.base_url",
            "https://api.ouraring.com",
        ),
        ("[rate_limit]\nrequests = 0", "rate_limit.requests", "5000"),
        ("[sync]\ntypes = [\"sleeep\"]", "sync.types", "daily_sleep"),
        (
            "[schedule]\nheartrate = \"*/5 * * *\"",
            "schedule.heartrate",
            "6 fields",
        ),
        (
            "[schedule]\nheartrate = \"0 99 * * * *\"",
            "schedule.heartrate",
            "cron",
        ),
        ("[log]\nformat = \"xml\"", "log.format", "json"),
        (
            "[sync]\nmax_body_bytes = 10",
            "sync.max_body_bytes",
            "at least 1024",
        ),
        ("[log]\nlevel = \"loud\"", "log.level", "debug"),
        (
            "[api]\ntimeout_seconds = \"30\"",
            "api.timeout_seconds",
            "whole number",
        ),
        ("[api]\nsandbox = 1", "api.sandbox", "true or false"),
        ("[sync]\ntypes = \"daily_sleep\"", "sync.types", "a list"),
        (
            "[auth]\npersonal_access_token = \"abc\\ndef\"",
            "auth.personal_access_token",
            "one line",
        ),
    ];
    for (text, key, fix) in cases {
        let msg = parse(text).unwrap_err().to_string();
        assert!(msg.contains(key), "{msg}");
        assert!(msg.contains(fix), "{msg}");
        assert!(!msg.contains('\n'), "one line: {msg}");
    }
    for ok in ["debug", "info,ouradb=debug", "WARN", "ouradb::sync=trace"] {
        assert!(parse(&format!("[log]\nlevel = \"{ok}\"")).is_ok(), "{ok}");
    }
    let msg = parse("[storage]\ndatabse = \"x\"").unwrap_err().to_string();
    assert!(msg.contains("databse") && msg.contains("line 2"), "{msg}");
}

#[test]
fn the_application_quota_defaults_to_oura_s_and_refuses_fewer_than_3() {
    let c = parse("").unwrap();
    assert_eq!(c.rate_limit.application_requests, 5000);
    let c = parse("[rate_limit]\napplication_requests = 12000\nrequests = 400").unwrap();
    assert_eq!(
        (c.rate_limit.application_requests, c.rate_limit.requests),
        (12000, 400)
    );
    for bad in ["0", "2"] {
        let msg = parse(&format!("[rate_limit]\napplication_requests = {bad}"))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("rate_limit.application_requests")
                && msg.contains("at least 3")
                && msg.contains("5000"),
            "{msg}"
        );
    }
    let msg = parse("[rate_limit]\napplication_requests = \"many\"")
        .unwrap_err()
        .to_string();
    assert!(msg.contains("application_requests"), "{msg}");
}

#[test]
fn oauth_defaults_env_secret_and_errors() {
    let c = Config::from_toml("[auth]\nclient_id = \"app\"\n", Path::new("t"), |k| {
        (k == "OURA_CLIENT_SECRET").then(|| "envsecret".into())
    })
    .unwrap();
    assert_eq!(c.oauth.client_id.as_deref(), Some("app"));
    assert_eq!(c.oauth.client_secret.unwrap().expose(), "envsecret");
    assert_eq!(c.oauth.redirect_uri.as_str(), DEFAULT_REDIRECT_URI);
    assert_eq!(c.oauth.scopes.len(), 9);
    assert!(c.oauth.scopes.iter().any(|s| s == "spo2"));
    assert!(!c.oauth.scopes.iter().any(|s| s == "spo2Daily"));
    assert_eq!(
        c.oauth.fallback_token_url.as_ref().map(url::Url::as_str),
        Some(DEFAULT_FALLBACK_TOKEN_URL)
    );
    assert_eq!(c.oauth.token_url.as_str(), DEFAULT_TOKEN_URL);
    assert_eq!(c.oauth.client_auth, ClientAuth::Form);
    assert!(c.oauth.token_file.ends_with("ouradb/tokens.json"));
    let c = parse("[auth]\nfallback_token_url = \"\"").unwrap();
    assert!(c.oauth.fallback_token_url.is_none(), "\"\" turns it off");
    let c = parse("[auth]\nclient_secret = \"s3cret\"\nclient_auth = \"basic\"").unwrap();
    assert_eq!(c.oauth.client_auth, ClientAuth::Basic);
    assert!(!format!("{c:?}").contains("s3cret"));
    for (text, key) in [
        ("[auth]\nredirect_uri = \"nope\"", "auth.redirect_uri"),
        ("[auth]\ntoken_url = \"ftp://x\"", "auth.token_url"),
        (
            "[auth]\nfallback_token_url = \"nope\"",
            "auth.fallback_token_url",
        ),
        ("[auth]\nscopes = \" \"", "auth.scopes"),
        ("[auth]\nclient_auth = \"jwt\"", "auth.client_auth"),
    ] {
        let msg = parse(text).unwrap_err().to_string();
        assert!(msg.contains(key), "{msg}");
    }
}

#[test]
fn webhook_defaults_and_errors() {
    let c = parse("").unwrap();
    assert!(c.webhook.enabled().is_none());
    assert_eq!(c.webhook.listen().to_string(), DEFAULT_WEBHOOK_LISTEN);
    assert!(c.webhook.listen().ip().is_loopback());
    let c = parse(
        "[auth]\nclient_id = \"app\"\nclient_secret = \"s\"\n[webhook]\nenabled = true\nlisten = \"0.0.0.0:9000\"\ncallback_url = \"https://x.example/hook\"\nverification_token = \"vt-secret\"",
    )
    .unwrap();
    let w = c.webhook.enabled().expect("enabled");
    assert_eq!(w.listen.to_string(), "0.0.0.0:9000");
    assert_eq!(w.callback_url.path(), "/hook");
    assert!(!format!("{:?}", w.verification_token).contains("vt-secret"));
    let example = parse(include_str!("../../daemon.toml.example")).unwrap();
    assert!(example.webhook.enabled().is_none());
    assert_eq!(example.webhook.listen().to_string(), DEFAULT_WEBHOOK_LISTEN);
    for (text, key) in [
        ("[webhook]\nlisten = \"localhost\"", "webhook.listen"),
        (
            "[webhook]\ncallback_url = \"ftp://x\"",
            "webhook.callback_url",
        ),
        ("[webhook]\nenabled = true", "webhook.callback_url"),
        (
            "[webhook]\nenabled = true\ncallback_url = \"https://x/h\"",
            "webhook.verification_token",
        ),
        (
            "[webhook]\nenabled = true\ncallback_url = \"https://x/h\"\nverification_token = \"v\"",
            "auth.client_id",
        ),
    ] {
        let msg = parse(text).unwrap_err().to_string();
        assert!(msg.contains(key), "{msg}");
    }
}

#[test]
fn plain_http_only_to_this_machine_unless_allowed() {
    for ok in [
        "[api]\nbase_url = \"http://127.0.0.1:9000\"",
        "[api]\nbase_url = \"http://127.8.0.1\"",
        "[api]\nbase_url = \"http://[::1]:9\"",
        "[api]\nbase_url = \"http://LOCALHOST:9/oura\"",
        "[auth]\ntoken_url = \"http://localhost:9/oauth/token\"",
        "[api]\nbase_url = \"https://oura.example\"",
        "[api]\nallow_insecure_http = true\nbase_url = \"http://oura.example\"",
    ] {
        assert!(parse(ok).is_ok(), "{ok}");
    }
    for (text, key) in [
        ("[api]\nbase_url = \"http://oura.example\"", "api.base_url"),
        ("[api]\nbase_url = \"http://10.0.0.5:8080\"", "api.base_url"),
        (
            "[auth]\ntoken_url = \"http://oura.example/t\"",
            "auth.token_url",
        ),
        (
            "[auth]\nfallback_token_url = \"http://oura.example/t\"",
            "auth.fallback_token_url",
        ),
        (
            "[auth]\nrevoke_url = \"http://oura.example/r\"",
            "auth.revoke_url",
        ),
        (
            "[api]\nallow_insecure_http = false\nbase_url = \"http://127.0.0.1.example\"",
            "api.base_url",
        ),
    ] {
        let msg = parse(text).unwrap_err().to_string();
        assert!(msg.contains(key), "{msg}");
        assert!(
            msg.contains("unencrypted") && msg.contains("allow_insecure_http = true"),
            "{msg}"
        );
    }
}

#[test]
fn secret_is_not_debug_printed() {
    let c = parse("[auth]\npersonal_access_token = \"hunter2\"").unwrap();
    assert!(!format!("{c:?}").contains("hunter2"));
}

#[test]
fn metrics_endpoint_is_off_by_default_and_a_bare_port_stays_on_loopback() {
    assert_eq!(parse("").unwrap().metrics_listen, None);
    assert_eq!(
        parse("[metrics]\nlisten = \"\"").unwrap().metrics_listen,
        None
    );
    for (text, addr) in [
        ("9788", "127.0.0.1:9788"),
        (":9788", "127.0.0.1:9788"),
        ("0.0.0.0:9100", "0.0.0.0:9100"),
        ("[::1]:9788", "[::1]:9788"),
    ] {
        let c = parse(&format!("[metrics]\nlisten = \"{text}\"")).unwrap();
        assert_eq!(c.metrics_listen, Some(addr.parse().unwrap()), "{text}");
    }
    let e = parse("[metrics]\nlisten = \"localhost:x\"")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("metrics.listen") && e.contains("localhost:x") && e.contains("127.0.0.1:9788"),
        "{e}"
    );
    let e = parse("[metrics]\nport = 1").unwrap_err().to_string();
    assert!(e.contains("port"), "{e}");
    let example = include_str!("../../daemon.toml.example");
    assert_eq!(parse(example).unwrap().metrics_listen, None);
    let on = example.replace("# listen = \"127.0.0.1:", "listen = \"127.0.0.1:");
    assert_eq!(
        parse(&on).unwrap().metrics_listen,
        Some((std::net::Ipv4Addr::LOCALHOST, DEFAULT_METRICS_PORT).into())
    );
}

#[test]
fn without_account_entries_there_is_one_implicit_default_account() {
    let c = Config::from_toml(
        "[auth]\npersonal_access_token = \"tok\"\ntoken_file = \"/x/t.json\"\n",
        Path::new("t"),
        |_| None,
    )
    .unwrap();
    assert!(!c.account_entries);
    assert_eq!(c.accounts.len(), 1);
    let a = &c.accounts[0];
    assert_eq!(a.name, DEFAULT_ACCOUNT_NAME);
    assert_eq!(a.token.as_ref().unwrap().expose(), "tok");
    assert_eq!(a.token_file, Path::new("/x/t.json"));
    let own = c.for_account(a);
    assert_eq!(own.token.unwrap().expose(), "tok");
    assert_eq!(own.oauth.token_file, c.oauth.token_file);
}

#[test]
fn account_entries_carry_their_own_tokens_and_token_files() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bob.token");
    std::fs::write(&file, "bobtok\n").unwrap();
    let text = format!(
        "[auth]\ntoken_file = \"/data/tokens.json\"\n\
         [[account]]\nname = \"alice\"\npersonal_access_token = \"alicetok\"\n\
         [[account]]\nname = \"bob-2\"\npersonal_access_token_file = \"{}\"\n\
         [[account]]\nname = \"carol_c\"\ntoken_file = \"/elsewhere/c.json\"\n",
        file.display()
    );
    let c = Config::from_toml(&text, Path::new("t"), |_| Some("envtok".into())).unwrap();
    assert!(c.account_entries);
    assert!(c.token.is_none(), "OURA_TOKEN belongs to no account");
    let names: Vec<&str> = c.accounts.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["alice", "bob-2", "carol_c"]);
    assert_eq!(c.accounts[0].token.as_ref().unwrap().expose(), "alicetok");
    assert_eq!(c.accounts[1].token.as_ref().unwrap().expose(), "bobtok");
    assert!(c.accounts[2].token.is_none());
    assert_eq!(
        c.accounts[0].token_file,
        Path::new("/data/tokens-alice.json")
    );
    assert_eq!(c.accounts[2].token_file, Path::new("/elsewhere/c.json"));
    let bob = c.for_account(&c.accounts[1]);
    assert_eq!(bob.token.unwrap().expose(), "bobtok");
    assert_eq!(bob.oauth.token_file, Path::new("/data/tokens-bob-2.json"));
    assert_eq!(c.account("--account", "alice").unwrap().name, "alice");
    let e = c.account("--account", "dave").unwrap_err().to_string();
    assert!(
        e.contains("--account") && e.contains("dave") && e.contains("alice, bob-2, carol_c"),
        "{e}"
    );
}

#[test]
fn bad_account_entries_name_the_key_and_the_fix() {
    let cases = [
        (
            "[[account]]\ntoken_file = \"/t.json\"",
            "account.name",
            "add e.g. name",
        ),
        (
            "[[account]]\nname = \"\"",
            "account.name",
            "1 to 32 characters",
        ),
        ("[[account]]\nname = \"Alice\"", "account.name", "a-z, 0-9"),
        (
            "[[account]]\nname = \"a b\"",
            "account.name",
            "1 to 32 characters",
        ),
        (
            &format!("[[account]]\nname = \"{}\"", "a".repeat(33)),
            "account.name",
            "1 to 32",
        ),
        (
            "[[account]]\nname = \"a\"\n[[account]]\nname = \"a\"",
            "account.name",
            "its own name",
        ),
        (
            "[[account]]\nname = \"a\"\npersonal_access_token = \"x y\"",
            "account.a.personal_access_token",
            "one line",
        ),
        (
            "[[account]]\nname = \"a\"\npersonal_access_token_file = \"/nonexistent/t\"",
            "account.a.personal_access_token_file",
            "readable file",
        ),
        (
            "[[account]]\nname = \"a\"\ntoken_file = \"/t.json\"\n[[account]]\nname = \"b\"\ntoken_file = \"/t.json\"",
            "account.b.token_file",
            "its own token file",
        ),
        (
            "[[account]]\nname = \"a\"\ntoken = \"x\"",
            "token",
            "daemon.toml.example",
        ),
        (
            "[auth]\npersonal_access_token = \"tok\"\n[[account]]\nname = \"a\"",
            "auth.personal_access_token",
            "move it into the [[account]]",
        ),
        (
            "[auth]\npersonal_access_token_file = \"/t\"\n[[account]]\nname = \"a\"",
            "auth.personal_access_token_file",
            "move it into the [[account]]",
        ),
    ];
    for (text, key, fix) in cases {
        let msg = parse(text).unwrap_err().to_string();
        assert!(msg.contains(key), "{text}: {msg}");
        assert!(msg.contains(fix), "{text}: {msg}");
        assert!(!msg.contains('\n'), "one line: {msg}");
    }
    // The example file's empty token is no token.
    let c = parse("[auth]\npersonal_access_token = \"\"\n[[account]]\nname = \"a\"").unwrap();
    assert_eq!(c.accounts.len(), 1);
}
