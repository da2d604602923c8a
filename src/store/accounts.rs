//! Schema version 11: every per-account table is rebuilt with an `account`
//! column in its rows and keys, in the migration's one transaction, with a
//! proof that no row changed on the way.
//!
//! SQLite cannot add a column to a primary key, so each table of
//! [`REBUILT`] is set aside under a temporary name ([`set_aside`]),
//! `schema_accounts.sql` creates it anew, and [`copy_and_prove`] copies
//! every row into it under account 1, carrying over the columns ouradb
//! added at run time. Before the old copy is dropped, each table's row
//! count and content fingerprint must be equal on both sides; otherwise
//! the migration fails and its transaction rolls back, leaving the file as
//! it was. Views are dropped for the rebuild and recreated from their own
//! stored text.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use rusqlite::functions::FunctionFlags;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension};
use sha2::{Digest, Sha256};

use super::StoreError;
use super::mapping::{PACKED_KEY, quote};

/// Per-account tables created after the accounts migration, with their
/// account from the start (the rebuild never sees them).
pub(super) const ADDED_SINCE: &[&str] = &["interbeat_interval_extra"];

/// The tables that gain an `account` column, parents before the tables
/// that reference them.
pub(super) const REBUILT: &[&str] = &[
    "sync_state",
    "daily_activity",
    "daily_cardiovascular_age",
    "daily_readiness",
    "daily_resilience",
    "daily_sleep",
    "daily_spo2",
    "daily_stress",
    "enhanced_tag",
    "heartrate",
    "personal_info",
    "rest_mode_period",
    "ring_battery_level",
    "ring_configuration",
    "session",
    "session_heart_rate",
    "session_hrv",
    "session_motion_count",
    "sleep",
    "sleep_heart_rate",
    "sleep_hrv",
    "sleep_time",
    "tag",
    "vo2_max",
    "workout",
    "quarantine",
    "pending_removal",
    "document_history",
    "interbeat_interval",
];

/// The account that owns every row of a file written before accounts.
pub(super) const FIRST_ACCOUNT: i64 = 1;

pub(super) use super::schema::ACCOUNTS_VERSION;

/// Suffix of a table set aside during the rebuild.
const SET_ASIDE: &str = "__before_accounts";

/// What [`set_aside`] moved out of the way: the views to recreate, in
/// the order they were created.
pub(super) struct SetAside {
    views: Vec<(String, String)>,
}

/// One table's rows as counted and fingerprinted on one side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableProof {
    pub table: String,
    pub rows: u64,
    /// SHA-256 over every row's values in key order, hex.
    pub fingerprint: String,
}

/// Drops the views and renames each rebuilt table (and drops its indexes,
/// whose names the new tables take).
pub(super) fn set_aside(conn: &Connection) -> Result<SetAside, StoreError> {
    let views = named_sql(
        conn,
        "SELECT name, sql FROM sqlite_master WHERE type = 'view' ORDER BY rowid",
    )?;
    for (name, _) in &views {
        conn.execute_batch(&format!("DROP VIEW {}", quote(name)))?;
    }
    let indexes = named_sql(
        conn,
        "SELECT name, tbl_name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL",
    )?;
    for (index, table) in &indexes {
        if REBUILT.contains(&table.as_str()) {
            conn.execute_batch(&format!("DROP INDEX {}", quote(index)))?;
        }
    }
    // The legacy rename leaves references to the old name (foreign keys of
    // child tables) pointing at the name the new table will take.
    conn.execute_batch("PRAGMA legacy_alter_table = ON")?;
    let renamed = rename_all(conn);
    conn.execute_batch("PRAGMA legacy_alter_table = OFF")?;
    renamed?;
    Ok(SetAside { views })
}

fn rename_all(conn: &Connection) -> Result<(), StoreError> {
    for t in REBUILT {
        conn.execute_batch(&format!(
            "ALTER TABLE {} RENAME TO {}",
            quote(t),
            quote(&format!("{t}{SET_ASIDE}"))
        ))?;
    }
    Ok(())
}

fn named_sql(conn: &Connection, sql: &str) -> Result<Vec<(String, String)>, StoreError> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Copies every set-aside table into its new self under
/// [`FIRST_ACCOUNT`], proves the copy, drops the old tables and recreates
/// the views. `tamper` runs between copy and proof (tests corrupt the copy
/// there to see the proof refuse it).
pub(super) fn copy_and_prove(
    conn: &Connection,
    aside: SetAside,
    tamper: &dyn Fn(&Connection) -> Result<(), StoreError>,
) -> Result<Vec<TableProof>, StoreError> {
    adopt_profile(conn)?;
    let mut plans = Vec::with_capacity(REBUILT.len());
    for t in REBUILT {
        let old = format!("{t}{SET_ASIDE}");
        let columns = carry_added_columns(conn, &old, t)?;
        let packed = is_packed(conn, t)?;
        copy_rows(conn, &old, t, &columns, packed)?;
        let key = key_columns(conn, &old, &columns)?;
        // A packed key orders the new rows as the old time key did (the
        // first account's keys are its times).
        let new_key = if packed {
            vec![PACKED_KEY.to_owned()]
        } else {
            key.clone()
        };
        plans.push((t, old, columns, key, new_key));
    }
    tamper(conn)?;
    let mut proofs = Vec::with_capacity(plans.len());
    for (t, old, columns, key, new_key) in &plans {
        let before = fingerprint(conn, old, t, columns, key)?;
        let after = fingerprint(conn, t, t, columns, new_key)?;
        if before != after {
            return Err(StoreError::MigrationProof {
                table: t.to_string(),
                before: (before.rows, before.fingerprint),
                after: (after.rows, after.fingerprint),
            });
        }
        proofs.push(after);
    }
    for (_, old, _, _, _) in plans.iter().rev() {
        conn.execute_batch(&format!("DROP TABLE {}", quote(old)))?;
    }
    recreate_views(conn, aside.views)?;
    Ok(proofs)
}

/// Whether `table` keys its rows by a packed account and time
/// ([`PACKED_KEY`]): its `account` and `ts_ms` are computed, not filled.
fn is_packed(conn: &Connection, table: &str) -> Result<bool, StoreError> {
    Ok(declared_columns(conn, table)?
        .iter()
        .any(|(n, _)| n == PACKED_KEY))
}

/// Copies every row of `old` into `new` under the first account.
fn copy_rows(
    conn: &Connection,
    old: &str,
    new: &str,
    columns: &[String],
    packed: bool,
) -> Result<(), StoreError> {
    let list = |cs: &[String]| cs.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", ");
    let sql = if packed {
        // The first account's packed key is the time itself.
        let into: Vec<String> = columns
            .iter()
            .map(|c| {
                if c == "ts_ms" {
                    PACKED_KEY.to_owned()
                } else {
                    c.clone()
                }
            })
            .collect();
        format!(
            "INSERT INTO {} ({}) SELECT {} FROM {}",
            quote(new),
            list(&into),
            list(columns),
            quote(old)
        )
    } else {
        format!(
            "INSERT INTO {} (account, {}) SELECT {FIRST_ACCOUNT}, {} FROM {}",
            quote(new),
            list(columns),
            list(columns),
            quote(old)
        )
    };
    conn.execute_batch(&sql)?;
    Ok(())
}

/// The first account takes the Oura user id and e-mail of the profile the
/// file holds, so a second account signing in as the same user is told.
fn adopt_profile(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch(&format!(
        "UPDATE account SET (oura_user_id, email) = (
             SELECT id, email FROM {} ORDER BY last_seen DESC LIMIT 1)
         WHERE id = {FIRST_ACCOUNT}
           AND EXISTS (SELECT 1 FROM {})",
        quote(&format!("personal_info{SET_ASIDE}")),
        quote(&format!("personal_info{SET_ASIDE}")),
    ))?;
    Ok(())
}

/// The old table's columns, after adding to the new table each one it
/// lacks (columns ouradb added for fields outside the schema), with the
/// same declared type.
fn carry_added_columns(conn: &Connection, old: &str, new: &str) -> Result<Vec<String>, StoreError> {
    let old_cols = declared_columns(conn, old)?;
    // Computed columns count as present: they are no place for a copy.
    let mut stmt = conn.prepare("SELECT name, type FROM pragma_table_xinfo(?1)")?;
    let new_cols: Vec<(String, String)> = stmt
        .query_map([new], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (name, ty) in &old_cols {
        if !new_cols.iter().any(|(n, _)| n == name) {
            conn.execute_batch(&format!(
                "ALTER TABLE {} ADD COLUMN {} {ty}",
                quote(new),
                quote(name)
            ))?;
        }
    }
    Ok(old_cols.into_iter().map(|(n, _)| n).collect())
}

fn declared_columns(conn: &Connection, table: &str) -> Result<Vec<(String, String)>, StoreError> {
    let mut stmt = conn.prepare("SELECT name, type FROM pragma_table_info(?1) ORDER BY cid")?;
    let rows = stmt.query_map([table], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The old table's primary key columns (every column when it has none):
/// both sides are read in this order.
fn key_columns(
    conn: &Connection,
    old: &str,
    columns: &[String],
) -> Result<Vec<String>, StoreError> {
    let mut stmt =
        conn.prepare("SELECT name FROM pragma_table_info(?1) WHERE pk > 0 ORDER BY pk")?;
    let key: Vec<String> = stmt
        .query_map([old], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(if key.is_empty() {
        columns.to_vec()
    } else {
        key
    })
}

/// Row count and SHA-256 of `columns` of `table` in `key` order, each value
/// hashed with its type so `1`, `1.0` and `'1'` differ.
fn fingerprint(
    conn: &Connection,
    table: &str,
    name: &str,
    columns: &[String],
    key: &[String],
) -> Result<TableProof, StoreError> {
    let list = columns
        .iter()
        .map(|c| quote(c))
        .collect::<Vec<_>>()
        .join(", ");
    let order = key.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", ");
    let mut stmt = conn.prepare(&format!(
        "SELECT {list} FROM {} ORDER BY {order}",
        quote(table)
    ))?;
    let mut rows = stmt.query([])?;
    let mut hash = Sha256::new();
    let mut count = 0u64;
    while let Some(row) = rows.next()? {
        count += 1;
        for i in 0..columns.len() {
            hash_value(&mut hash, row.get_ref(i)?);
        }
    }
    Ok(TableProof {
        table: name.to_owned(),
        rows: count,
        fingerprint: hex::encode(hash.finalize()),
    })
}

fn hash_value(hash: &mut Sha256, v: ValueRef<'_>) {
    let (tag, bytes): (u8, Vec<u8>) = match v {
        ValueRef::Null => (0, Vec::new()),
        ValueRef::Integer(i) => (1, i.to_le_bytes().to_vec()),
        ValueRef::Real(f) => (2, f.to_bits().to_le_bytes().to_vec()),
        ValueRef::Text(t) => (3, t.to_vec()),
        ValueRef::Blob(b) => (4, b.to_vec()),
    };
    hash.update([tag]);
    hash.update((bytes.len() as u64).to_le_bytes());
    hash.update(&bytes);
}

/// Recreates the views from their stored text. A view may read another, so
/// each round creates what it can until all exist.
fn recreate_views(conn: &Connection, mut views: Vec<(String, String)>) -> Result<(), StoreError> {
    while !views.is_empty() {
        let before = views.len();
        let mut failed = Vec::new();
        let mut last_error = None;
        for (name, sql) in views {
            match conn.execute_batch(&sql) {
                Ok(()) => {}
                Err(e) => {
                    last_error = Some(e);
                    failed.push((name, sql));
                }
            }
        }
        if failed.len() == before {
            return Err(last_error.map_or_else(
                || StoreError::Schema("views could not be recreated".into()),
                StoreError::from,
            ));
        }
        views = failed;
    }
    Ok(())
}

/// An account's number in `account.id`: what every per-account row carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct AccountId(i64);

impl AccountId {
    /// The account of a file written before accounts, and of a config
    /// without `[[account]]`.
    pub const FIRST: AccountId = AccountId(FIRST_ACCOUNT);

    pub fn get(self) -> i64 {
        self.0
    }

    /// The id a row of the store names.
    pub(super) fn from_row(id: i64) -> AccountId {
        AccountId(id)
    }

    /// An id no `account` row need back: unit tests of code that only
    /// carries ids (the request log, the limiter).
    #[cfg(test)]
    pub(crate) const fn for_test(id: i64) -> AccountId {
        AccountId(id)
    }
}

/// The account the store's statements act for, as SQL reads it:
/// `ouradb_account()`, a function of the store's own connection. Every
/// typed operation sets it before its first statement, so the cached
/// statements need no account parameter and none can forget it.
#[derive(Debug, Clone)]
pub(super) struct CurrentAccount(Arc<AtomicI64>);

impl CurrentAccount {
    /// Registers `ouradb_account()` on `conn`, answering [`AccountId::FIRST`]
    /// until told otherwise.
    pub(super) fn register(conn: &Connection) -> Result<CurrentAccount, StoreError> {
        let current = Arc::new(AtomicI64::new(FIRST_ACCOUNT));
        let read = Arc::clone(&current);
        // Not declared deterministic: its value changes between
        // executions of one cached statement, and SQLite may evaluate a
        // deterministic function while preparing.
        conn.create_scalar_function("ouradb_account", 0, FunctionFlags::SQLITE_UTF8, move |_| {
            Ok(read.load(Ordering::Relaxed))
        })?;
        Ok(CurrentAccount(current))
    }

    pub(super) fn set(&self, id: AccountId) {
        self.0.store(id.0, Ordering::Relaxed);
    }

    pub(super) fn get(&self) -> AccountId {
        AccountId(self.0.load(Ordering::Relaxed))
    }
}

/// One row of `account`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Account {
    pub id: AccountId,
    pub name: String,
    /// The Oura user the account signed in as, once known.
    pub oura_user_id: Option<String>,
    pub email: Option<String>,
}

impl super::Store {
    /// The account named `name`, added at `at` when the file has none of
    /// that name.
    pub fn add_account(
        &mut self,
        name: &str,
        at: jiff::Timestamp,
    ) -> Result<AccountId, StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO account (name, created_at) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
            )?
            .execute(rusqlite::params![name, at.to_string()])?;
        let id = self
            .conn
            .prepare_cached("SELECT id FROM account WHERE name = ?1")?
            .query_row([name], |r| r.get(0))?;
        Ok(AccountId(id))
    }

    /// Every account of the file, by id.
    pub fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        if self.version < ACCOUNTS_VERSION {
            return Ok(Vec::new());
        }
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, name, oura_user_id, email FROM account ORDER BY id")?;
        let rows = stmt.query_map([], |r| {
            Ok(Account {
                id: AccountId(r.get(0)?),
                name: r.get(1)?,
                oura_user_id: r.get(2)?,
                email: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

impl super::Store {
    /// Documents (or samples) stored per account, as `sync_state` counts
    /// them for `status`.
    pub fn documents_per_account(
        &self,
    ) -> Result<std::collections::HashMap<AccountId, i64>, StoreError> {
        if self.version < ACCOUNTS_VERSION {
            return Ok(Default::default());
        }
        let mut stmt = self
            .conn
            .prepare("SELECT account, SUM(documents) FROM sync_state GROUP BY account")?;
        let rows = stmt.query_map([], |r| Ok((AccountId(r.get(0)?), r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Renames the account `old` to `new`; false when there is no `old`.
    /// The caller makes sure `new` is free (the name is UNIQUE).
    pub fn rename_account(&mut self, old: &str, new: &str) -> Result<bool, StoreError> {
        let n = self
            .conn
            .execute("UPDATE account SET name = ?2 WHERE name = ?1", [old, new])?;
        Ok(n > 0)
    }

    /// Deletes every row of account `id` from every per-account table
    /// ([`ADDED_SINCE`] and [`REBUILT`], children first) and then the
    /// account itself, in one transaction.
    pub fn purge_account(&mut self, id: AccountId) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        for t in ADDED_SINCE.iter().rev().chain(REBUILT.iter().rev()) {
            // A packed key's account is computed from the key: a range of
            // the key, not a scan of every account's beats.
            let table = quote(t);
            if is_packed(&tx, t)? {
                let span = super::mapping::PACKED_SPAN;
                tx.execute(
                    &format!("DELETE FROM {table} WHERE {PACKED_KEY} >= ?1 AND {PACKED_KEY} < ?2"),
                    [(id.0 - 1) * span, id.0 * span],
                )?;
            } else {
                tx.execute(&format!("DELETE FROM {table} WHERE account = ?1"), [id.0])?;
            }
        }
        tx.execute("DELETE FROM account WHERE id = ?1", [id.0])?;
        tx.commit()?;
        Ok(())
    }

    /// Claims (see [`Self::claim_oura_user`]) the Oura user whose profile
    /// the current account's `personal_info` holds, with its e-mail;
    /// `None` while the account has no profile.
    pub fn record_oura_user(&mut self) -> Result<Option<Claim>, StoreError> {
        let me = self.account();
        let profile: Option<(String, Option<String>)> = self
            .conn
            .query_row(
                "SELECT id, email FROM personal_info WHERE account = ?1
                 ORDER BY last_seen DESC LIMIT 1",
                [me.0],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((user_id, email)) = profile else {
            return Ok(None);
        };
        self.claim_oura_user(me, &user_id, email.as_deref())
            .map(Some)
    }
}

/// What signing an account in as an Oura user found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The account is (now) this Oura user's.
    Claimed,
    /// Another account, named here, already is this Oura user.
    TakenBy(String),
    /// The account already holds another Oura user's data (that user's id).
    HoldsAnother(String),
}

impl super::Store {
    /// Makes the account `id` the Oura user `user_id` (with `email` when
    /// known), unless another account is that user or the account is
    /// already another user: one person's data never lands under two
    /// accounts, nor two persons' under one (`oura_user_id` is UNIQUE).
    pub fn claim_oura_user(
        &mut self,
        id: AccountId,
        user_id: &str,
        email: Option<&str>,
    ) -> Result<Claim, StoreError> {
        let accounts = self.accounts()?;
        if let Some(other) = accounts
            .iter()
            .find(|a| a.id != id && a.oura_user_id.as_deref() == Some(user_id))
        {
            return Ok(Claim::TakenBy(other.name.clone()));
        }
        let own = accounts.iter().find(|a| a.id == id);
        if let Some(previous) = own.and_then(|a| a.oura_user_id.as_deref())
            && previous != user_id
        {
            return Ok(Claim::HoldsAnother(previous.to_owned()));
        }
        self.conn.execute(
            "UPDATE account SET oura_user_id = ?1, email = coalesce(?2, email) WHERE id = ?3",
            rusqlite::params![user_id, email, id.0],
        )?;
        Ok(Claim::Claimed)
    }
}
