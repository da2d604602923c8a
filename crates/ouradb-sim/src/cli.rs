//! The command line of `ouradb-sim`, kept in the library so that the
//! benchmarks start an in-process simulator from the same flags.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use clap::Parser;
use jiff::civil::Date;

use crate::{OAuthClient, Quirks, SimConfig};

#[derive(Parser, Debug)]
#[command(
    name = "ouradb-sim",
    about = "Simulated Oura API v2 (quirks and faults included)"
)]
pub struct Args {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Days of history to generate (up to 3650).
    #[arg(long, default_value_t = 730)]
    pub days: u32,
    /// Seed of the synthetic person and of fault injection.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Simulated current day (YYYY-MM-DD); defaults to today (UTC).
    #[arg(long)]
    pub today: Option<Date>,
    /// Accepted personal access token of the first person (repeatable).
    #[arg(long = "token")]
    pub tokens: Vec<String>,
    /// Simulated Oura users. Person N (from 2) has a seed, history length
    /// and webhook user_id of their own, and the token `<first token>-N`
    /// (e.g. sim-token-2). OAuth sign-ins pick the person by `login_hint`
    /// (their email or user id), else the first person.
    #[arg(long, default_value_t = 1)]
    pub persons: usize,
    /// Documents per page.
    #[arg(long, default_value_t = 50)]
    pub page_size: usize,
    /// Serve interbeat intervals for the last N days only (default: the
    /// whole history, ~25,000 beats a night).
    #[arg(long)]
    pub interbeat_days: Option<u32>,
    /// Requests per token per window.
    #[arg(long, default_value_t = 5000)]
    pub rate_limit: u32,
    /// Rate-limit window in seconds.
    #[arg(long, default_value_t = 300)]
    pub rate_window: u64,
    /// Requests per application per window, across all its tokens (each
    /// OAuth client id; all personal access tokens count as one).
    #[arg(long, default_value_t = 5000)]
    pub app_rate_limit: u32,
    /// Application rate-limit window in seconds.
    #[arg(long, default_value_t = 300)]
    pub app_rate_window: u64,
    /// Lifetime of OAuth access tokens in seconds.
    #[arg(long, default_value_t = 86_400)]
    pub access_token_lifetime: u64,
    /// OAuth client id (also the webhook x-client-id).
    #[arg(long, default_value = "sim-client")]
    pub client_id: String,
    /// OAuth client secret (also the webhook x-client-secret and signing key).
    #[arg(long, default_value = "sim-secret")]
    pub client_secret: String,
    /// The OAuth application was registered on Oura's newer developer
    /// portal: refreshes at /oauth/token answer 400 invalid_request and work
    /// only at /oauth/v2/ext/oauth-token.
    #[arg(long)]
    pub new_portal: bool,
    /// Accept the spec 1.37 scope name `spo2Daily` instead of refusing it.
    #[arg(long)]
    pub legacy_spo2_scope: bool,
    /// The simulated user denies consent on /oauth/authorize.
    #[arg(long)]
    pub deny_consent: bool,
    /// Every data route answers 403 as for a lapsed membership.
    #[arg(long)]
    pub membership_expired: bool,
    /// A collection the application may not read: it answers 401 (or the
    /// status given, `NAME=403`) to every token (repeatable).
    #[arg(long = "deny-collection", value_name = "NAME[=STATUS]", value_parser = parse_denial)]
    pub deny_collections: Vec<(String, u16)>,
    /// Probability of a 5xx (split evenly across 500/502/503/504).
    #[arg(long, default_value_t = 0.0)]
    pub fault_5xx: f64,
    /// Probability that a burst of five 429s starts.
    #[arg(long, default_value_t = 0.0)]
    pub fault_429: f64,
    /// Milliseconds added to every data request (the real API's round trip).
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Probability of a 2-second delay.
    #[arg(long, default_value_t = 0.0)]
    pub fault_slow: f64,
    /// Probability of a truncated body.
    #[arg(long, default_value_t = 0.0)]
    pub fault_truncate: f64,
    /// Probability of malformed JSON.
    #[arg(long, default_value_t = 0.0)]
    pub fault_malformed: f64,
    /// Probability of a dropped connection.
    #[arg(long, default_value_t = 0.0)]
    pub fault_reset: f64,
    /// An outage: every data request answers 200 with nothing.
    #[arg(long)]
    pub fault_empty_pages: bool,
    /// Serve spec 1.37 exactly instead of the live API's deviations
    /// (id-less daily_cardiovascular_age, undocumented fields, 1.41 values,
    /// `extapi:`-prefixed granted scopes).
    #[arg(long)]
    pub spec_form: bool,
}

impl Args {
    /// The simulator configuration these flags describe.
    pub fn into_config(self) -> SimConfig {
        let a = self;
        let today = a.today.unwrap_or_else(|| {
            jiff::Timestamp::now()
                .to_zoned(jiff::tz::TimeZone::UTC)
                .date()
        });
        let mut cfg = SimConfig::new(a.seed, a.days.min(3650), today);
        cfg.addr = SocketAddr::new(a.bind, a.port);
        if !a.tokens.is_empty() {
            cfg.tokens = a.tokens;
        }
        cfg.page_size = a.page_size;
        cfg.interbeat_days = a.interbeat_days;
        cfg.latency = Duration::from_millis(a.latency_ms);
        cfg.rate_limit = a.rate_limit;
        cfg.rate_window = Duration::from_secs(a.rate_window);
        cfg.app_rate_limit = a.app_rate_limit;
        cfg.app_rate_window = Duration::from_secs(a.app_rate_window);
        cfg.access_token_lifetime = Duration::from_secs(a.access_token_lifetime);
        cfg.clients = vec![if a.new_portal {
            OAuthClient::new_portal(&a.client_id, &a.client_secret)
        } else {
            OAuthClient::legacy(&a.client_id, &a.client_secret)
        }];
        cfg.legacy_spo2_scope = a.legacy_spo2_scope;
        cfg.oauth_approve = !a.deny_consent;
        cfg.membership_expired = a.membership_expired;
        cfg.denied_collections = a.deny_collections.into_iter().collect();
        let q = a.fault_5xx / 4.0;
        cfg.faults.status_500 = q;
        cfg.faults.status_502 = q;
        cfg.faults.status_503 = q;
        cfg.faults.status_504 = q;
        cfg.faults.burst_429 = a.fault_429;
        cfg.faults.slow = a.fault_slow;
        cfg.faults.slow_delay = Duration::from_secs(2);
        cfg.faults.truncate = a.fault_truncate;
        cfg.faults.malformed = a.fault_malformed;
        cfg.faults.reset = a.fault_reset;
        cfg.faults.empty_pages = a.fault_empty_pages;
        if a.spec_form {
            cfg.quirks = Quirks::spec();
        }
        // A benchmark or a long-running demo would otherwise grow the log forever.
        cfg.log_requests = false;
        cfg.with_persons(a.persons)
    }
}

/// `NAME` or `NAME=STATUS` with STATUS 401 or 403.
fn parse_denial(text: &str) -> Result<(String, u16), String> {
    let (name, status) = match text.split_once('=') {
        Some((n, s)) => (
            n,
            s.parse().map_err(|_| format!("`{s}` is not 401 or 403"))?,
        ),
        None => (text, 401),
    };
    if name.is_empty() || name.contains('/') {
        return Err(format!(
            "`{name}` is not a collection name such as daily_spo2"
        ));
    }
    if status != 401 && status != 403 {
        return Err(format!("{status} is not 401 or 403"));
    }
    Ok((name.to_owned(), status))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deny_collection_takes_a_name_and_401_or_403() {
        let a = Args::parse_from([
            "ouradb-sim",
            "--deny-collection",
            "interbeat_interval",
            "--deny-collection",
            "daily_spo2=403",
        ]);
        let cfg = a.into_config();
        assert_eq!(cfg.denied_collections.get("interbeat_interval"), Some(&401));
        assert_eq!(cfg.denied_collections.get("daily_spo2"), Some(&403));
        for bad in ["daily_spo2=500", "daily_spo2=x", "=401", "v2/x"] {
            let e = Args::try_parse_from(["ouradb-sim", "--deny-collection", bad]);
            assert!(e.is_err(), "{bad}");
        }
    }
}
