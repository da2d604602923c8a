//! Which account a webhook event belongs to. Subscriptions belong to the
//! OAuth application, so one receiver hears about every account's data;
//! each event names its Oura user (`user_id`), and only that user's account
//! may apply it.
//!
//! An event is routed to the account whose Oura user id (`account
//! .oura_user_id`, recorded from personal_info) equals its `user_id`, or to
//! the account learned for that `user_id` earlier. Oura does not promise
//! that the webhook's `user_id` is the personal_info `id`, so an unknown
//! `user_id` is learned by proof: the announced document is fetched with
//! each unclaimed account's own credentials, and the one whose token reads
//! it (each token reads only its own person's data) is that user's account.
//! A delete cannot be proven that way; one for an unknown user is recorded
//! and left to the polls (whose vanished-document rule removes it).
//! A lone account keeps the single-account behaviour: every event is its.

use std::collections::HashMap;
#[allow(clippy::disallowed_types, reason = "never held across an .await")]
use std::sync::{Arc, Mutex};

use crate::store::AccountId;
use crate::sync::SyncEngine;

/// Every account's engine, with what routing has learned.
pub struct Accounts {
    engines: Vec<Arc<SyncEngine>>,
    /// Webhook `user_id` to the index of its account's engine, proven by a
    /// fetch (kept for the process's life; a restart proves it again).
    #[allow(clippy::disallowed_types, reason = "never held across an .await")]
    learned: Mutex<HashMap<String, usize>>,
}

/// Where an event goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// To the engine at this index.
    Account(usize),
    /// Try these engines' accounts in turn; the one whose token reads the
    /// document owns it.
    Probe(Vec<usize>),
    /// No account may apply it.
    Unknown,
}

impl From<Arc<SyncEngine>> for Accounts {
    fn from(engine: Arc<SyncEngine>) -> Accounts {
        Accounts::new(vec![engine])
    }
}

impl Accounts {
    pub fn new(engines: Vec<Arc<SyncEngine>>) -> Accounts {
        Accounts {
            engines,
            #[allow(clippy::disallowed_types, reason = "never held across an .await")]
            learned: Mutex::new(HashMap::new()),
        }
    }

    /// The first account's engine: the store's thread and the config every
    /// account shares.
    ///
    /// # Panics
    /// Never: an `Accounts` is only built with at least one engine.
    pub fn first(&self) -> &Arc<SyncEngine> {
        &self.engines[0]
    }

    pub fn engine(&self, index: usize) -> &Arc<SyncEngine> {
        &self.engines[index]
    }

    /// Where an event of Oura user `user_id` goes: `saved` is the account a
    /// pending event was routed to before a restart; `provable` is false
    /// for a delete, which no fetch can prove.
    pub async fn route(
        &self,
        user_id: Option<&str>,
        saved: Option<AccountId>,
        provable: bool,
    ) -> Route {
        if self.engines.len() == 1 {
            return Route::Account(0);
        }
        let by_account =
            |id: AccountId| self.engines.iter().position(|e| e.store().account() == id);
        if let Some(i) = saved.and_then(by_account) {
            return Route::Account(i);
        }
        let learned = self.learned_map();
        if let Some(&i) = user_id.and_then(|u| learned.get(u)) {
            return Route::Account(i);
        }
        let users = match self.first().store().accounts().await {
            Ok(users) => users,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the accounts to route a webhook event");
                Vec::new()
            }
        };
        let owner = users
            .iter()
            .find(|a| user_id.is_some() && a.oura_user_id.as_deref() == user_id);
        if let Some(i) = owner.and_then(|a| by_account(a.id)) {
            return Route::Account(i);
        }
        if !provable {
            return Route::Unknown;
        }
        // Accounts already proven to be another webhook user are not asked.
        let claimed: Vec<usize> = learned.values().copied().collect();
        let candidates: Vec<usize> = (0..self.engines.len())
            .filter(|i| !claimed.contains(i))
            .collect();
        if candidates.is_empty() {
            Route::Unknown
        } else {
            Route::Probe(candidates)
        }
    }

    /// Remembers that `user_id`'s documents are read by engine `index`.
    pub fn learn(&self, user_id: &str, index: usize) {
        let mut learned = self.learned.lock().unwrap_or_else(|p| p.into_inner());
        learned.insert(user_id.to_owned(), index);
    }

    fn learned_map(&self) -> HashMap<String, usize> {
        self.learned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}
