//! The `ouradb-sim` binary: its first line, its flags, its shutdown.

use std::time::Duration;

use jiff::civil::Date;
use serde_json::Value;

async fn bounded<F: std::future::Future<Output = ()>>(f: F) {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("test timed out");
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// Starts the binary with `args`; returns it and the URL of its first line.
async fn start(args: &[&str]) -> (tokio::process::Child, String) {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_ouradb-sim"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let mut lines = tokio::io::BufReader::new(out).lines();
    let first = lines.next_line().await.unwrap().unwrap();
    let url = first
        .strip_prefix("listening on ")
        .expect(&first)
        .to_owned();
    (child, url)
}

fn util_today() -> Date {
    jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
}

#[tokio::test]
async fn binary_prints_listening_line_first() {
    bounded(async {
        let (mut child, url) = start(&[
            "--port", "0", "--days", "3", "--seed", "7", "--token", "T1", "--token", "T2",
        ])
        .await;
        assert!(url.starts_with("http://127.0.0.1:"));
        for t in ["T1", "T2"] {
            let r = client()
                .get(format!("{url}/v2/usercollection/daily_sleep"))
                .bearer_auth(t)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
        let pid = child.id().unwrap() as i32;
        // SIGTERM through kill(1): no libc dependency needed.
        let st = tokio::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await
            .unwrap();
        assert!(st.success());
        let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
            .await
            .unwrap()
            .unwrap();
        assert!(status.success());
    })
    .await;
}

#[tokio::test]
async fn binary_flags_switch_to_the_spec_form_and_to_an_empty_outage() {
    bounded(async {
        for (flags, has_id, empty) in [
            (&[][..], false, false),
            (&["--spec-form"][..], true, false),
            (&["--fault-empty-pages"][..], false, true),
        ] {
            let mut args = vec!["--port", "0", "--days", "60", "--token", "T1"];
            args.extend_from_slice(flags);
            let (mut child, url) = start(&args).await;
            let today = util_today();
            let b: Value = client()
                .get(format!(
                    "{url}/v2/usercollection/daily_cardiovascular_age?start_date={}&end_date={today}",
                    today.saturating_sub(jiff::Span::new().days(50))
                ))
                .bearer_auth("T1")
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let docs = b["data"].as_array().unwrap();
            assert_eq!(docs.is_empty(), empty, "{flags:?}");
            for d in docs {
                assert_eq!(d.get("id").is_some(), has_id, "{flags:?}: {d}");
            }
            child.kill().await.unwrap();
        }
    })
    .await;
}
