//! Webhook bookkeeping (schema version 2): subscriptions as Oura last
//! reported them and the events the receiver accepted.

use jiff::Timestamp;
use rusqlite::{TransactionBehavior, params};

use super::{Store, StoreError, parse_time, text_time};

/// The first schema version holding the webhook tables.
const WEBHOOK_SCHEMA: i64 = 2;

/// One subscription as stored in `webhook_subscription`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StoredSubscription {
    pub id: String,
    pub callback_url: String,
    pub event_type: String,
    pub data_type: String,
    pub expiration_time: Timestamp,
    pub checked_at: Timestamp,
}

/// One accepted webhook event, as stored in `webhook_event`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEventRecord {
    pub signature: String,
    pub received_at: Timestamp,
    pub event_type: String,
    pub data_type: String,
    pub object_id: String,
    pub event_time: Option<String>,
    pub outcome: String,
    /// The account the event was routed to; `None` when no account is the
    /// event's Oura user (or, for one saved pending, not yet known).
    pub account: Option<super::AccountId>,
}

/// `webhook_event.outcome` of an event acknowledged but not yet applied.
pub const PENDING: &str = "pending";

/// What `status` shows about webhooks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookHealth {
    pub last_event: Option<WebhookEventRecord>,
    /// Events received since the `since` given to [`Store::webhook_health`].
    pub recent_events: i64,
    pub subscriptions: Vec<StoredSubscription>,
}

/// Whole seconds, so that the text form sorts like the instant (the display
/// form drops zero fractions, and `Z` sorts after `.`).
fn whole(t: Timestamp) -> String {
    text_time(Timestamp::from_second(t.as_second()).unwrap_or(t))
}

impl Store {
    fn has_webhook_tables(&self) -> bool {
        self.version >= WEBHOOK_SCHEMA
    }

    /// Records an accepted event and forgets events received before `prune_before`.
    pub fn record_webhook_event(
        &mut self,
        ev: &WebhookEventRecord,
        prune_before: Timestamp,
    ) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.prepare_cached(
            "INSERT OR REPLACE INTO webhook_event
                (signature, received_at, event_type, data_type, object_id, event_time, outcome, account)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            ev.signature,
            whole(ev.received_at),
            ev.event_type,
            ev.data_type,
            ev.object_id,
            ev.event_time,
            ev.outcome,
            ev.account.map(|a| a.get()),
        ])?;
        tx.prepare_cached("DELETE FROM webhook_event WHERE received_at < ?1")?
            .execute([whole(prune_before)])?;
        tx.commit()?;
        Ok(())
    }

    /// Events acknowledged to Oura but not applied before a shutdown
    /// (outcome [`PENDING`]), oldest first: applied at the next start.
    pub fn pending_webhook_events(&self) -> Result<Vec<WebhookEventRecord>, StoreError> {
        if !self.has_webhook_tables() {
            return Ok(Vec::new());
        }
        self.webhook_events("WHERE outcome = ?1 ORDER BY received_at, rowid", [PENDING])
    }

    /// The newest `limit` events, newest first: `account`'s when given,
    /// else every event, those no account owns included.
    pub fn recent_webhook_events(
        &self,
        account: Option<super::AccountId>,
        limit: u32,
    ) -> Result<Vec<WebhookEventRecord>, StoreError> {
        if !self.has_webhook_tables() {
            return Ok(Vec::new());
        }
        self.webhook_events(
            "WHERE ?1 IS NULL OR account = ?1 ORDER BY received_at DESC, rowid DESC LIMIT ?2",
            params![account.map(super::AccountId::get), limit],
        )
    }

    /// `webhook_event` rows selected by `filter` (a WHERE/ORDER/LIMIT tail).
    fn webhook_events(
        &self,
        filter: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<WebhookEventRecord>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT signature, received_at, event_type, data_type, object_id, event_time, outcome,
                    account
             FROM webhook_event {filter}"
        ))?;
        let rows = stmt
            .query_map(params, |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, Option<String>>(5)?,
                    r.get::<_, String>(6)?,
                    r.get::<_, Option<i64>>(7)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(
                |(
                    signature,
                    at,
                    event_type,
                    data_type,
                    object_id,
                    event_time,
                    outcome,
                    account,
                )| {
                    Ok(WebhookEventRecord {
                        signature,
                        received_at: parse_time(Some(at), "webhook_event.received_at")?
                            .expect("present"),
                        event_type,
                        data_type,
                        object_id,
                        event_time,
                        outcome,
                        account: account.map(super::AccountId::from_row),
                    })
                },
            )
            .collect()
    }

    /// Signatures of events received at or after `since` (replay protection
    /// that survives a restart).
    pub fn webhook_signatures_since(&self, since: Timestamp) -> Result<Vec<String>, StoreError> {
        if !self.has_webhook_tables() {
            return Ok(Vec::new());
        }
        let mut stmt = self
            .conn
            .prepare_cached("SELECT signature FROM webhook_event WHERE received_at >= ?1")?;
        let rows = stmt
            .query_map([whole(since)], |r| r.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        Ok(rows)
    }

    /// Replaces every stored subscription for `callback_url` with `subs`.
    pub fn replace_webhook_subscriptions(
        &mut self,
        callback_url: &str,
        subs: &[StoredSubscription],
    ) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.prepare_cached("DELETE FROM webhook_subscription WHERE callback_url = ?1")?
            .execute([callback_url])?;
        for s in subs {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO webhook_subscription
                    (id, callback_url, event_type, data_type, expiration_time, checked_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                s.id,
                s.callback_url,
                s.event_type,
                s.data_type,
                text_time(s.expiration_time),
                text_time(s.checked_at),
            ])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Stored subscriptions, by data type then event type.
    pub fn webhook_subscriptions(&self) -> Result<Vec<StoredSubscription>, StoreError> {
        if !self.has_webhook_tables() {
            return Ok(Vec::new());
        }
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, callback_url, event_type, data_type, expiration_time, checked_at
             FROM webhook_subscription ORDER BY data_type, event_type, id",
        )?;
        let raw = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        raw.into_iter()
            .map(|(id, callback_url, event_type, data_type, exp, checked)| {
                Ok(StoredSubscription {
                    id,
                    callback_url,
                    event_type,
                    data_type,
                    expiration_time: parse_time(Some(exp), "webhook_subscription.expiration_time")?
                        .expect("present"),
                    checked_at: parse_time(Some(checked), "webhook_subscription.checked_at")?
                        .expect("present"),
                })
            })
            .collect()
    }

    /// The last event, the number received since `since` and the subscriptions.
    /// Empty for databases older than schema version 2.
    pub fn webhook_health(&self, since: Timestamp) -> Result<WebhookHealth, StoreError> {
        if !self.has_webhook_tables() {
            return Ok(WebhookHealth::default());
        }
        let last_event = self
            .webhook_events("ORDER BY received_at DESC, rowid DESC LIMIT 1", [])?
            .pop();
        let recent_events = self
            .conn
            .prepare_cached("SELECT COUNT(*) FROM webhook_event WHERE received_at >= ?1")?
            .query_row([whole(since)], |r| r.get(0))?;
        Ok(WebhookHealth {
            last_event,
            recent_events,
            subscriptions: self.webhook_subscriptions()?,
        })
    }
}
