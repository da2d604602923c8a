//! The token file: one small JSON document, replaced atomically and durably
//! so a rotated refresh token is on disk before anything uses it.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::config::Secret;

/// Current on-disk format.
pub const TOKEN_FILE_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    #[error("cannot {action} token file {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("token file {path} is not valid ({cause}); run `ouradb auth login` to replace it")]
    Corrupt { path: PathBuf, cause: String },
}

/// Everything an OAuth grant left us with. `Debug` never shows a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredTokens {
    pub version: u32,
    /// The application the tokens were issued to (refreshes must use it).
    pub client_id: String,
    #[serde(with = "secret_str")]
    pub access_token: Secret,
    #[serde(with = "secret_str")]
    pub refresh_token: Secret,
    /// When the access token stops working (absolute, so restarts keep it).
    pub expires_at: Timestamp,
    /// When the access token was issued.
    pub obtained_at: Timestamp,
    /// Scopes the user granted.
    pub scopes: Vec<String>,
    #[serde(default)]
    pub user_id: Option<String>,
    /// Random id of the login that created this grant; unchanged by
    /// refreshes, new on every `ouradb auth login`.
    pub grant_id: String,
    /// Set when the authorization server refused the refresh token: the user
    /// must sign in again. Holds the reason shown by `status`.
    #[serde(default)]
    pub reauth_required: Option<String>,
    /// The token endpoint that last worked for this grant (the configured
    /// one or the new portal's fallback), so every process and restart
    /// goes there first instead of repeating a refused call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
}

mod secret_str {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::config::Secret;

    pub fn serialize<S: Serializer>(s: &Secret, ser: S) -> Result<S::Ok, S::Error> {
        ser.serialize_str(s.expose())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<Secret, D::Error> {
        String::deserialize(de).map(Secret::new)
    }
}

/// Identity of one version of the file: a replace by rename always changes
/// the inode or the change time, so a differing stamp means "re-read".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

/// Holds the cross-process lock until dropped.
#[derive(Debug)]
pub struct TokenLock {
    _file: File,
}

#[derive(Debug, Clone)]
pub struct TokenFile {
    path: PathBuf,
}

impl TokenFile {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        TokenFile { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self, action: &'static str) -> impl FnOnce(std::io::Error) -> TokenFileError + '_ {
        move |source| TokenFileError::Io {
            action,
            path: self.path.clone(),
            source,
        }
    }

    /// The current version's stamp; `None` when there is no file.
    pub fn stamp(&self) -> Option<FileStamp> {
        let m = fs::metadata(&self.path).ok()?;
        Some(FileStamp {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        })
    }

    /// Reads the file; `Ok(None)` when it does not exist.
    pub fn load(&self) -> Result<Option<StoredTokens>, TokenFileError> {
        let text = match fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.io("read")(e)),
        };
        let tokens: StoredTokens =
            serde_json::from_str(&text).map_err(|e| TokenFileError::Corrupt {
                path: self.path.clone(),
                // serde_json's message names a line and column, never the value.
                cause: e.to_string(),
            })?;
        if tokens.version != TOKEN_FILE_VERSION {
            return Err(TokenFileError::Corrupt {
                path: self.path.clone(),
                cause: format!("unsupported version {}", tokens.version),
            });
        }
        Ok(Some(tokens))
    }

    fn dir(&self) -> PathBuf {
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    fn ensure_dir(&self) -> Result<PathBuf, TokenFileError> {
        let dir = self.dir();
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(self.io("create the directory of"))?;
        Ok(dir)
    }

    /// Replaces the file: a 0600 temp file in the same directory, fsync,
    /// rename over the old one, fsync the directory. When this returns the
    /// new tokens survive a crash or power loss.
    pub fn save(&self, tokens: &StoredTokens) -> Result<(), TokenFileError> {
        let dir = self.ensure_dir()?;
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "tokens.json".into());
        let suffix: u64 = rand::random();
        let tmp = dir.join(format!(".{name}.{}.{suffix:016x}.tmp", std::process::id()));
        let body = serde_json::to_vec_pretty(tokens).expect("tokens serialize");
        let result = (|| {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&body)?;
            f.sync_all()?;
            drop(f);
            fs::rename(&tmp, &self.path)?;
            File::open(&dir)?.sync_all()
        })();
        if let Err(e) = result {
            let _ = fs::remove_file(&tmp);
            return Err(self.io("write")(e));
        }
        Ok(())
    }

    /// Removes the file; `Ok(false)` when there was none.
    pub fn delete(&self) -> Result<bool, TokenFileError> {
        match fs::remove_file(&self.path) {
            Ok(()) => {
                if let Ok(d) = File::open(self.dir()) {
                    let _ = d.sync_all();
                }
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(self.io("delete")(e)),
        }
    }

    /// Takes the exclusive cross-process lock (a sibling `.lock` file), so
    /// a daemon and a one-off `ouradb sync` never spend the same refresh
    /// token twice. Blocks until the lock is free.
    pub fn lock(&self) -> Result<TokenLock, TokenFileError> {
        self.ensure_dir()?;
        let mut name = self.path.clone().into_os_string();
        name.push(".lock");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(PathBuf::from(name))
            .map_err(self.io("lock"))?;
        file.lock().map_err(self.io("lock"))?;
        Ok(TokenLock { _file: file })
    }
}

/// A fresh random id (hex), for `state` and grant ids.
pub(crate) fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::Rng::fill(&mut rand::rng(), &mut b[..]);
    hex::encode(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn sample(refresh: &str) -> StoredTokens {
        StoredTokens {
            version: TOKEN_FILE_VERSION,
            client_id: "app".into(),
            access_token: Secret::new("acc-xyz"),
            refresh_token: Secret::new(refresh),
            expires_at: crate::clock::now(),
            obtained_at: crate::clock::now(),
            scopes: vec!["daily".into()],
            user_id: None,
            grant_id: random_hex(8),
            reauth_required: None,
            token_url: None,
        }
    }

    #[test]
    fn save_is_private_atomic_and_reloadable() {
        let dir = tempfile::tempdir().unwrap();
        let f = TokenFile::new(dir.path().join("nested/deeper/tokens.json"));
        assert!(f.load().unwrap().is_none());
        assert!(f.stamp().is_none());
        f.save(&sample("r1")).unwrap();
        let mode = fs::metadata(f.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dmode = fs::metadata(dir.path().join("nested/deeper"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dmode, 0o700);
        let s1 = f.stamp().unwrap();
        assert_eq!(f.load().unwrap().unwrap().refresh_token.expose(), "r1");
        f.save(&sample("r2")).unwrap();
        assert_ne!(f.stamp().unwrap(), s1, "a replaced file has a new stamp");
        assert_eq!(f.load().unwrap().unwrap().refresh_token.expose(), "r2");
        let leftovers: Vec<_> = fs::read_dir(dir.path().join("nested/deeper"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
        assert!(!format!("{:?}", sample("r-secret")).contains("r-secret"));
        assert!(f.delete().unwrap());
        assert!(!f.delete().unwrap());
    }

    #[test]
    fn corrupt_file_is_reported_without_its_content() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("tokens.json");
        fs::write(&p, "{\"access_token\": \"leaky\"").unwrap();
        let msg = TokenFile::new(&p).load().unwrap_err().to_string();
        assert!(
            msg.contains("auth login") && !msg.contains("leaky"),
            "{msg}"
        );
    }
}
