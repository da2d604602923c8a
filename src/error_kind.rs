//! What kind of failure ended a data type's run. One name per kind: the text
//! stored in `sync_state.last_error_kind` and printed by `--json`.
//!
//! The kinds come from the classifications of the module errors
//! ([`crate::api::ApiError::kind`], [`crate::store::StoreError::class`]);
//! callers compare kinds, never message text.

/// What kind of trouble a store error is (`crate::store::StoreError::class`),
/// here beside the kinds that carry it so the store depends on this module
/// and not the other way round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Another connection held the lock longer than the busy timeout.
    Busy,
    DiskFull,
    /// The file, its directory or the file system cannot be written.
    ReadOnly,
    /// The file is damaged or is not a database at all.
    Corrupt,
    /// A row broke a constraint: ouradb wrote something it should not have.
    Constraint,
    /// The API sent a document that cannot be stored.
    BadDocument,
    /// Refused before any write: not ouradb's file, or newer than this build.
    Refused,
    Other,
}

impl ErrorClass {
    /// Whether a later run may succeed without the user doing anything.
    pub fn is_transient(self) -> bool {
        matches!(self, ErrorClass::Busy | ErrorClass::BadDocument)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The access token was rejected (HTTP 401).
    Unauthorized,
    /// The grant lacks the type's scope: the type is skipped, not failing.
    ScopeNotGranted,
    /// Refused to this application alone (401/403 while the same token
    /// reads other collections): not failing, asked again daily.
    NotAvailable,
    Forbidden,
    /// The API refused the query (HTTP 400/422).
    Rejected,
    NotFound,
    /// No usable credentials: nothing was sent.
    Auth,
    /// Still rate limited, or the wait would pass `--max-wait`.
    RateLimited,
    ServerError,
    Network,
    BadResponse,
    PagingLoop,
    ReauthRequired,
    /// Stopped by shutdown (SIGTERM/SIGINT).
    Cancelled,
    /// The database failed; the class says how.
    Store(ErrorClass),
}

impl ErrorKind {
    /// Every kind, for [`ErrorKind::parse`].
    pub const ALL: &[ErrorKind] = &[
        ErrorKind::Unauthorized,
        ErrorKind::ScopeNotGranted,
        ErrorKind::NotAvailable,
        ErrorKind::Forbidden,
        ErrorKind::Rejected,
        ErrorKind::NotFound,
        ErrorKind::Auth,
        ErrorKind::RateLimited,
        ErrorKind::ServerError,
        ErrorKind::Network,
        ErrorKind::BadResponse,
        ErrorKind::PagingLoop,
        ErrorKind::ReauthRequired,
        ErrorKind::Cancelled,
        ErrorKind::Store(ErrorClass::Busy),
        ErrorKind::Store(ErrorClass::DiskFull),
        ErrorKind::Store(ErrorClass::ReadOnly),
        ErrorKind::Store(ErrorClass::Corrupt),
        ErrorKind::Store(ErrorClass::Constraint),
        ErrorKind::Store(ErrorClass::BadDocument),
        ErrorKind::Store(ErrorClass::Refused),
        ErrorKind::Store(ErrorClass::Other),
    ];

    /// The stored and printed name, e.g. `rate_limited`, `store_busy`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::ScopeNotGranted => "scope_not_granted",
            ErrorKind::NotAvailable => "not_available",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::Rejected => "rejected",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Auth => "auth",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::ServerError => "server_error",
            ErrorKind::Network => "network",
            ErrorKind::BadResponse => "bad_response",
            ErrorKind::PagingLoop => "paging_loop",
            ErrorKind::ReauthRequired => "reauth_required",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Store(class) => match class {
                ErrorClass::Busy => "store_busy",
                ErrorClass::DiskFull => "store_disk_full",
                ErrorClass::ReadOnly => "store_read_only",
                ErrorClass::Corrupt => "store_corrupt",
                ErrorClass::Constraint => "store_constraint",
                ErrorClass::BadDocument => "store_bad_document",
                ErrorClass::Refused => "store_refused",
                ErrorClass::Other => "store",
            },
        }
    }

    /// The kind a stored name stands for; `None` for text no kind has (a
    /// name written by another version).
    pub fn parse(text: &str) -> Option<ErrorKind> {
        Self::ALL.iter().copied().find(|k| k.as_str() == text)
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for ErrorKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_own_name_and_parses_back() {
        let mut seen = std::collections::HashSet::new();
        for k in ErrorKind::ALL {
            assert!(seen.insert(k.as_str()), "{k:?} shares its name");
            assert_eq!(ErrorKind::parse(k.as_str()), Some(*k));
        }
        assert_eq!(ErrorKind::parse("http_403"), None);
        assert_eq!(ErrorKind::Store(ErrorClass::Other).as_str(), "store");
        assert_eq!(
            serde_json::to_string(&Some(ErrorKind::ScopeNotGranted)).unwrap(),
            "\"scope_not_granted\""
        );
    }
}
