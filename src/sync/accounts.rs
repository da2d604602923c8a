//! Syncing one account of several: its store handle, its engine (its own
//! credentials on the shared file, limiter and quota) and the check that
//! no two accounts sign in as the same Oura user.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{Clock, Observer, RunOptions, SetupError, SyncEngine, TypeReport};
use crate::config::{AccountConfig, Config};
use crate::registry::DataType;
use crate::store::{AccountId, StoreError, StoreHandle};

/// `store` acting for `account`: the file's first account for a config
/// without `[[account]]` (whatever it is called now), else the account of
/// that name, added when the file has none.
pub async fn account_store(
    store: &StoreHandle,
    config: &Config,
    account: &AccountConfig,
) -> Result<StoreHandle, StoreError> {
    if !config.account_entries {
        return Ok(store.for_account(AccountId::FIRST));
    }
    let name = account.name.clone();
    let id = store
        .run(move |s| s.add_account(&name, crate::clock::now()))
        .await?;
    Ok(store.for_account(id))
}

/// An engine syncing `account` into `store` (see [`account_store`]) with
/// the account's own token and OAuth token file.
pub async fn account_engine(
    config: &Config,
    account: &AccountConfig,
    store: &StoreHandle,
    cancel: CancellationToken,
    clock: Clock,
) -> Result<SyncEngine, SetupError> {
    let store = account_store(store, config, account).await?;
    super::engine_with_store(
        Arc::new(config.for_account(account)),
        None,
        cancel,
        clock,
        store,
    )
}

/// One account's run: its types' reports, and why the account stopped
/// early, if it did.
pub struct AccountRun {
    pub reports: Vec<TypeReport>,
    pub error: Option<String>,
}

/// Runs `types` for the engine's account. The profile (personal_info) goes
/// first when it is among them: once stored, its Oura user is recorded on
/// the account, and an Oura user another account already signed in as
/// stops the run before anything else is fetched.
pub async fn run_account(
    engine: &SyncEngine,
    name: &str,
    types: &[&'static DataType],
    opts: RunOptions,
    observer: &dyn Observer,
) -> AccountRun {
    let (profile, rest): (Vec<_>, Vec<_>) = types
        .iter()
        .copied()
        .partition(|d| d.name == "personal_info");
    let mut reports = engine.run(&profile, opts, observer).await;
    if !profile.is_empty() {
        let recorded = engine.store().run(|s| s.record_oura_user()).await;
        let error = match recorded {
            Ok(None) => None,
            Ok(Some(other)) => Some(format!(
                "account {name} signed in as the same Oura user as account {}; each account needs its own Oura sign-in (sign account {name} in as its own Oura user, or remove it from the config)",
                other.name
            )),
            Err(e) => Some(format!("account {name}: cannot record its Oura user: {e}")),
        };
        if error.is_some() {
            return AccountRun { reports, error };
        }
    }
    reports.extend(engine.run(&rest, opts, observer).await);
    let order = |n: &str| types.iter().position(|d| d.name == n);
    reports.sort_by_key(|r| order(r.data_type));
    AccountRun {
        reports,
        error: None,
    }
}
