//! TOML text to [`RawConfig`], with errors a user can act on: a wrong-typed
//! value names its dotted key and the type it needs.

use std::path::Path;

use super::{ConfigError, RawConfig};

/// Parses `text` (read from `path`) into the raw sections.
pub(super) fn parse_raw(text: &str, path: &Path) -> Result<RawConfig, ConfigError> {
    toml::from_str(text).map_err(|e| {
        // A wrong-typed value: name the key and the type it needs.
        if let Some(span) = e.span()
            && let Some(key) = key_at(text, span.start)
            && let Some(expected) = expected_type(e.message())
        {
            return ConfigError::Invalid {
                problem: format!(
                    "{} (in {} at line {})",
                    e.message().trim(),
                    path.display(),
                    line_of(text, span.start)
                ),
                fix: format!("write {expected}"),
                key,
            };
        }
        ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.message().trim().to_owned()
                + &e.span()
                    .map(|s| format!(" (at line {})", line_of(text, s.start)))
                    .unwrap_or_default()
                + "; see daemon.toml.example for every key",
        }
    })
}

/// The dotted key whose value starts at `offset`: the nearest `[table]`
/// header above it plus the key on its line.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line = &text[line_start..];
    let line = line.split('\n').next().unwrap_or("");
    let (key, _) = line.split_once('=')?;
    let key = key.trim().trim_matches('"');
    if key.is_empty() || key.starts_with('#') {
        return None;
    }
    let table = text[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('[') && !l.starts_with("[["))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_owned());
    Some(match table {
        Some(t) if !t.is_empty() => format!("{t}.{key}"),
        _ => key.to_owned(),
    })
}

/// Plain words for the type serde expected, from its "invalid type" message.
fn expected_type(message: &str) -> Option<&'static str> {
    let expected = message.split("expected").nth(1)?.trim();
    Some(if expected.starts_with('u') || expected.starts_with('i') {
        "a whole number without quotes, e.g. 30"
    } else if expected.starts_with("a boolean") {
        "true or false without quotes"
    } else if expected.contains("string") || expected.contains("path") {
        "a quoted string, e.g. \"value\""
    } else if expected.contains("sequence") {
        "a list, e.g. [\"daily_sleep\", \"heartrate\"]"
    } else if expected.contains("map") || expected.contains("struct") {
        "a table, e.g. [section] with key = value lines"
    } else {
        return None;
    })
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}
