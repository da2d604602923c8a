//! Syncing one account of several: its store handle, its engine (its own
//! credentials on the shared file, limiter and quota) and the check, in
//! every run, that no two accounts sign in as the same Oura user.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{Clock, SetupError, SyncEngine, TypeReport};
use crate::config::{AccountConfig, Config};
use crate::error_kind::ErrorKind;
use crate::store::{AccountId, Claim, StoreError, StoreHandle};

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
    let id = store
        .add_account(account.name.clone(), crate::clock::now())
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

/// An engine for every account of `config` on `store`'s thread, in the
/// config's order. They share one cap on requests in flight, so
/// `sync.max_in_flight` and its priorities (recent data before history)
/// hold across the accounts: one account's backfill queues behind another's
/// incremental run, not in front of it.
pub async fn household(
    config: &Config,
    store: &StoreHandle,
    cancel: CancellationToken,
    clock: Clock,
) -> Result<Vec<Arc<SyncEngine>>, SetupError> {
    let in_flight = crate::api::InFlight::new(config.max_in_flight);
    let mut engines = Vec::with_capacity(config.accounts.len());
    for account in &config.accounts {
        let store = account_store(store, config, account).await?;
        let engine = super::engine_sharing(
            Arc::new(config.for_account(account)),
            None,
            cancel.clone(),
            clock.clone(),
            store,
            Some(in_flight.clone()),
        )?;
        engines.push(Arc::new(engine));
    }
    Ok(engines)
}

/// The data type whose document names the Oura user an account signed in
/// as (`id`, `email`).
const PROFILE: &str = "personal_info";

/// After a run's metadata types: when the profile was stored, claims its
/// Oura user for the engine's account. False when another account of the
/// file already is that Oura user, or the account already holds another
/// user's data: the profile's report (and its `sync_state`) then carries
/// the error and the run stops there, before any other data is fetched.
pub(super) async fn check_oura_user(engine: &SyncEngine, reports: &mut [TypeReport]) -> bool {
    let Some(profile) = reports
        .iter_mut()
        .find(|r| r.data_type == PROFILE && r.error.is_none() && !r.skipped_busy)
    else {
        return true;
    };
    let claimed = engine.store().claim_oura_user().await;
    let message = match claimed {
        Ok((None | Some(Claim::Claimed), _)) => return true,
        Ok((Some(Claim::TakenBy(other)), mine)) => format!(
            "account {mine} signed in as the same Oura user as account {other}; each account needs its own Oura sign-in (sign {mine} in as its own Oura user, or take it out of the config)"
        ),
        Ok((Some(Claim::HoldsAnother(previous)), mine)) => format!(
            "account {mine} holds the data of Oura user {}, but its credentials now sign in as another Oura user; sign {mine} in as its own Oura user again, or give the other person an [[account]] of their own",
            crate::api::text::one_line(&previous)
        ),
        Err(e) => {
            // The data is still this account's; only the label is missing.
            tracing::warn!("cannot record the account's Oura user: {e}");
            return true;
        }
    };
    let dt = crate::registry::find(PROFILE).expect("a registry type");
    let (kind, at, msg) = (ErrorKind::Auth, engine.now(), message.clone());
    let recorded = engine.store().record_failure(dt, kind, msg, 0, at).await;
    if let Err(e) = recorded {
        tracing::warn!("cannot record the failure of {PROFILE}: {e}");
    }
    profile.error = Some(message);
    profile.error_kind = Some(kind);
    false
}
