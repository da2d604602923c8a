//! `[storage]`: where the database file is.

use std::path::PathBuf;

use serde::Deserialize;

use super::defaults::default_database_path;
use super::{ConfigError, expand_home};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStorage {
    database: Option<PathBuf>,
}

pub(super) fn database(raw: RawStorage) -> Result<PathBuf, ConfigError> {
    let database = raw
        .database
        .map(|p| expand_home(&p))
        .unwrap_or_else(default_database_path);
    if database.as_os_str().is_empty() {
        return Err(ConfigError::invalid(
            "storage.database",
            "is empty",
            "give a file path such as \"~/.local/share/ouradb/ouradb.sqlite\"",
        ));
    }
    Ok(database)
}
