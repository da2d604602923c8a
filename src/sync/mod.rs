//! Sync jobs: window planning (`plan`) and the engine that runs them.

pub mod accounts;
pub mod engine;
pub mod plan;

pub use accounts::{account_engine, account_store, household};
pub use engine::{Clock, NoObserver, Observer, RunOptions, SyncEngine, SyncError, TypeReport};

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::api::auth::TokenSource;
use crate::api::limiter::AccountClock;
use crate::api::{ApiError, Client, Limiter};
use crate::config::Config;
use crate::store::{RequestLog, Store, StoreError, StoreHandle};

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Api(#[from] ApiError),
}

/// Builds an engine from config: opens (and migrates) the database, sets up
/// the one limiter and the client.
pub fn engine_from_config(
    config: Arc<Config>,
    auth: Option<Arc<dyn TokenSource>>,
    cancel: CancellationToken,
    clock: Clock,
) -> Result<SyncEngine, SetupError> {
    let store = StoreHandle::new(Store::open(&config.database)?);
    engine_with_store(config, auth, cancel, clock, store)
}

/// An engine on `store`, acting for the handle's account: the accounts of
/// one process share the store's thread and connection (see
/// [`StoreHandle::for_account`]).
pub fn engine_with_store(
    config: Arc<Config>,
    auth: Option<Arc<dyn TokenSource>>,
    cancel: CancellationToken,
    clock: Clock,
    store: StoreHandle,
) -> Result<SyncEngine, SetupError> {
    engine_sharing(config, auth, cancel, clock, store, None)
}

/// [`engine_with_store`], its requests counted in `in_flight` (the cap the
/// process's other accounts share) when given.
fn engine_sharing(
    config: Arc<Config>,
    auth: Option<Arc<dyn TokenSource>>,
    cancel: CancellationToken,
    clock: Clock,
    store: StoreHandle,
    in_flight: Option<crate::api::InFlight>,
) -> Result<SyncEngine, SetupError> {
    // The request account lives in the same file, so every process syncing
    // it shares one quota.
    let account = Arc::new(RequestLog::open(&config.database)?);
    let limiter = Arc::new(Limiter::with_account(
        &config.rate_limit,
        account,
        store.account(),
        AccountClock::Wall,
    ));
    // OAuth when tokens are stored (or an app is configured without a
    // personal access token), else the personal access token.
    let auth = auth.unwrap_or_else(|| crate::api::oauth::token_source(&config));
    let mut client = Client::new(&config, auth, limiter, cancel)?;
    if let Some(shared) = in_flight {
        client = client.sharing_in_flight(shared);
    }
    Ok(SyncEngine::new(Arc::new(client), store, config, clock))
}

/// The scopes missing when a run skipped every one of its data types for a
/// scope not granted: such a run stored nothing and will store nothing
/// until the user signs in again, so it is a failure, not a quiet success.
/// `None` when any type did anything else (synced, failed, was busy).
pub fn scopes_missing_for_every_type(reports: &[TypeReport]) -> Option<Vec<&'static str>> {
    let all_skipped = !reports.is_empty()
        && reports
            .iter()
            .all(|r| r.error_kind == Some(crate::error_kind::ErrorKind::ScopeNotGranted));
    if !all_skipped {
        return None;
    }
    let mut scopes: Vec<&'static str> = reports
        .iter()
        .filter_map(|r| crate::registry::find(r.data_type))
        .map(|dt| dt.scope)
        .collect();
    scopes.sort_unstable();
    scopes.dedup();
    Some(scopes)
}

/// How long a type refused to this application alone waits before it is
/// asked again.
pub const NOT_AVAILABLE_RETRY: jiff::SignedDuration = jiff::SignedDuration::from_hours(24);

/// When a type marked not available to this application (its last run
/// ended so) is asked again; `None` when it is not marked.
pub fn not_available_until(state: &crate::store::SyncState) -> Option<jiff::Timestamp> {
    if state.error_kind() != Some(crate::error_kind::ErrorKind::NotAvailable) {
        return None;
    }
    state.last_error_at?.checked_add(NOT_AVAILABLE_RETRY).ok()
}

/// The real clock.
pub fn system_clock() -> Clock {
    crate::clock::system()
}
