//! `[schedule]`: a cron expression per data type; `default` for every type
//! not named, the registry's own schedule when neither is set.

use std::collections::BTreeMap;

use super::ConfigError;
use crate::registry;

pub(super) fn schedules(
    raw: &BTreeMap<String, String>,
) -> Result<BTreeMap<&'static str, String>, ConfigError> {
    for (name, expr) in raw {
        if name != "default" && registry::find(name).is_none() {
            return Err(ConfigError::invalid(
                &format!("schedule.{name}"),
                "is not a data type",
                format!("use `default` or any of: {}", registry::names().join(", ")),
            ));
        }
        validate_cron(&format!("schedule.{name}"), expr)?;
    }
    let fallback = raw.get("default");
    Ok(registry::DATA_TYPES
        .iter()
        .map(|dt| {
            let expr = raw
                .get(dt.name)
                .or(fallback)
                .cloned()
                .unwrap_or_else(|| dt.schedule.to_owned());
            (dt.name, expr)
        })
        .collect())
}

fn validate_cron(key: &str, expr: &str) -> Result<(), ConfigError> {
    let fields = expr.split_whitespace().count();
    if !(6..=7).contains(&fields) {
        return Err(ConfigError::invalid(
            key,
            format!("`{expr}` has {fields} fields"),
            "use 6 fields with seconds first, e.g. \"0 5 * * * *\" (every hour at :05)",
        ));
    }
    // Parse with the scheduler itself so config validation and the daemon
    // can never disagree about what a valid expression is.
    tokio_cron_scheduler::Job::new(expr, |_, _| {}).map_err(|_| {
        ConfigError::invalid(
            key,
            format!("`{expr}` is not a valid cron expression"),
            "use 6 fields with seconds first, e.g. \"0 5 * * * *\"",
        )
    })?;
    Ok(())
}
