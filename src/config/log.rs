//! `[log]`: the level filter and the line format.

use serde::Deserialize;

use super::ConfigError;
use super::defaults::DEFAULT_LOG_LEVEL;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLog {
    level: Option<String>,
    format: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable with colours on a terminal, plain lines (journald) otherwise.
    Auto,
    Pretty,
    Plain,
    Json,
}

/// `[log]`, validated: the level filter and the format.
pub(super) fn log(raw: RawLog) -> Result<(String, LogFormat), ConfigError> {
    let format = match raw.format.as_deref().unwrap_or("auto") {
        "auto" => LogFormat::Auto,
        "pretty" => LogFormat::Pretty,
        "plain" | "journald" => LogFormat::Plain,
        "json" => LogFormat::Json,
        other => {
            return Err(ConfigError::invalid(
                "log.format",
                format!("unknown format `{other}`"),
                "use auto, pretty, plain or json",
            ));
        }
    };
    let level = raw.level.unwrap_or_else(|| DEFAULT_LOG_LEVEL.into());
    if !valid_log_filter(&level) {
        return Err(ConfigError::invalid(
            "log.level",
            format!("`{level}` is not a log level"),
            "use off, error, warn, info, debug or trace (or directives such as \"info,ouradb=debug\")",
        ));
    }
    Ok((level, format))
}

const LOG_LEVELS: &[&str] = &["off", "error", "warn", "info", "debug", "trace"];

/// A level, or comma-separated `target=level` directives. A bare word that
/// is not a level (`loud`) would be read by tracing as a target name and
/// silence every log line, so it is refused.
fn valid_log_filter(text: &str) -> bool {
    let is_level = |l: &str| LOG_LEVELS.iter().any(|x| x.eq_ignore_ascii_case(l.trim()));
    !text.trim().is_empty()
        && text.split(',').all(|d| match d.rsplit_once('=') {
            Some((target, level)) => !target.trim().is_empty() && is_level(level),
            None => is_level(d),
        })
        && tracing_subscriber::EnvFilter::try_new(text).is_ok()
}
