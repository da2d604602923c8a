//! Several Oura accounts in one file (issue 20, the store): each account's
//! rows are exactly what a file of its own would hold, and a file written
//! before accounts migrates to the same rows.

use std::path::Path;
use std::sync::Arc;

use ouradb::secret::Secret;
use ouradb::store::{AccountId, Store, StoreHandle};
use ouradb::sync::{self, NoObserver, RunOptions, SyncEngine, TypeReport};
use tokio_util::sync::CancellationToken;

use crate::db::{account_fingerprint, reader, view_rows_of_account};
use crate::util::{Env, TOKEN, assert_no_errors};

async fn sync_all(engine: &SyncEngine) -> Vec<TypeReport> {
    let types = engine.config().types.clone();
    let options = RunOptions {
        since: None,
        backfill: true,
    };
    engine.run(&types, options, &NoObserver).await
}

fn engine_on(env: &Env, db: &Path, token: &str, store: StoreHandle) -> SyncEngine {
    let mut config = env.config_for(db);
    config.token = Some(Secret::new(token));
    sync::engine_with_store(
        Arc::new(config),
        None,
        CancellationToken::new(),
        env.clock(),
        store,
    )
    .expect("engine")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_accounts_in_one_file_hold_exactly_what_each_holds_alone() {
    let env = Env::start(45, |c| *c = c.clone().with_persons(2)).await;
    let tokens = [TOKEN.to_owned(), format!("{TOKEN}-2")];
    let alone: Vec<_> = ["one.sqlite", "two.sqlite"]
        .iter()
        .map(|n| env.dir.path().join(n))
        .collect();
    for (db, token) in alone.iter().zip(&tokens) {
        let store = StoreHandle::new(Store::open(db).unwrap());
        assert_no_errors(&sync_all(&engine_on(&env, db, token, store)).await);
    }

    let shared = env.dir.path().join("shared.sqlite");
    let store = StoreHandle::new(Store::open(&shared).unwrap());
    let second = store.blocking(|s| s.add_account("second", jiff::Timestamp::now()).unwrap());
    let first = engine_on(
        &env,
        &shared,
        &tokens[0],
        store.for_account(AccountId::FIRST),
    );
    let other = engine_on(&env, &shared, &tokens[1], store.for_account(second));
    // Side by side, as a household's daemon runs them.
    let (a, b) = tokio::join!(sync_all(&first), sync_all(&other));
    assert_no_errors(&a);
    assert_no_errors(&b);
    drop((first, other, store));

    assert_eq!(
        account_fingerprint(&shared, AccountId::FIRST.get()),
        account_fingerprint(&alone[0], AccountId::FIRST.get()),
        "the first account's rows differ from the first person synced alone"
    );
    assert_eq!(
        account_fingerprint(&shared, second.get()),
        account_fingerprint(&alone[1], AccountId::FIRST.get()),
        "the second account's rows differ from the second person synced alone"
    );
    // Every view shows each account what the account's own file shows:
    // none joins, ranks or groups one person's rows with another's.
    for view in crate::db::views(&shared) {
        for (account, alone) in [(AccountId::FIRST, &alone[0]), (second, &alone[1])] {
            let rows = view_rows_of_account(&shared, &view, account.get());
            assert_eq!(
                rows,
                view_rows_of_account(alone, &view, AccountId::FIRST.get()),
                "{view}: account {} differs from its person synced alone",
                account.get()
            );
        }
    }
    // And no row of one person is under the other: the persons' profiles
    // differ, and each account holds one.
    let conn = reader(&shared);
    let ids: Vec<(i64, String)> = conn
        .prepare("SELECT account, id FROM personal_info ORDER BY account")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let persons = env.sim.persons();
    assert_eq!(
        ids,
        vec![
            (1, persons[0].personal_info_id()),
            (second.get(), persons[1].personal_info_id())
        ]
    );
    env.sim.stop().await;
}

/// Makes a file as ouradb wrote it before accounts (schema 10) holding the
/// rows of `from` (a file of this ouradb with one account).
fn as_version_10(from: &Path, to: &Path) {
    let conn = rusqlite::Connection::open(to).unwrap();
    for sql in ouradb::store::migration_sources().take(10) {
        conn.execute_batch(sql).unwrap();
    }
    conn.execute_batch("PRAGMA user_version = 10; PRAGMA application_id = 1330991681;")
        .unwrap();
    conn.execute("ATTACH ?1 AS src", [from.to_str().unwrap()])
        .unwrap();
    let tables: Vec<String> = conn
        .prepare(
            "SELECT m.name FROM src.sqlite_master m WHERE m.type = 'table'
             AND m.name NOT IN ('account', 'sqlite_sequence')
             AND m.name NOT LIKE '\\_%' ESCAPE '\\'",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let columns = |schema: &str, t: &str| -> Vec<String> {
        conn.prepare("SELECT name FROM pragma_table_info(?1, ?2)")
            .unwrap()
            .query_map([t, schema], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    for t in &tables {
        let have = columns("main", t);
        let cols: Vec<String> = columns("src", t)
            .into_iter()
            .filter(|c| c != "account")
            .collect();
        for c in cols.iter().filter(|c| !have.contains(c)) {
            conn.execute_batch(&format!("ALTER TABLE main.\"{t}\" ADD COLUMN \"{c}\""))
                .unwrap();
        }
        let list = cols
            .iter()
            .map(|c| format!("\"{c}\""))
            .collect::<Vec<_>>()
            .join(", ");
        // Lookup tables the migrations fill hold the same rows on both sides.
        conn.execute_batch(&format!(
            "INSERT OR IGNORE INTO main.\"{t}\" ({list}) SELECT {list} FROM src.\"{t}\""
        ))
        .unwrap();
    }
    conn.execute_batch("DETACH src").unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_of_two_synced_years_before_accounts_migrates_to_the_same_rows() {
    let env = Env::start(730, |_| {}).await;
    let synced = env.db();
    assert_no_errors(&env.sync().await);
    let old = env.dir.path().join("v10.sqlite");
    as_version_10(&synced, &old);
    let before = std::fs::metadata(&old).unwrap().len();
    assert!(before > 1_000_000, "a real two-year file: {before} bytes");

    let store = Store::open(&old).unwrap();
    assert_eq!(store.schema_version(), ouradb::store::SCHEMA_VERSION);
    let accounts = store.accounts().unwrap();
    drop(store);
    assert_eq!(accounts.len(), 1);
    assert_eq!(accounts[0].id, AccountId::FIRST);
    assert!(accounts[0].oura_user_id.is_some(), "{accounts:?}");
    assert_eq!(
        account_fingerprint(&old, 1),
        account_fingerprint(&synced, 1),
        "the migrated file differs from the file it was made from"
    );
    env.sim.stop().await;
}
