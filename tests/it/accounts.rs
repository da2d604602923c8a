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
use crate::util::{self, Env, TOKEN, assert_no_errors};

pub async fn sync_all(engine: &SyncEngine) -> Vec<TypeReport> {
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
    engine_with(env, config, store)
}

fn engine_with(env: &Env, config: ouradb::config::Config, store: StoreHandle) -> SyncEngine {
    sync::engine_with_store(
        Arc::new(config),
        None,
        CancellationToken::new(),
        env.clock(),
        store,
    )
    .expect("engine")
}

/// The config of person `i`'s account in the quota tests: three types (a
/// time series and two daily ones), `requests` per token and `application`
/// for every account together per `window`.
pub fn quota_config(
    env: &Env,
    db: &Path,
    i: usize,
    (requests, application): (u32, u32),
    window: std::time::Duration,
) -> ouradb::config::Config {
    let mut config = env.config_for(db);
    config.token = Some(Secret::new(util::person_token(i)));
    config.types = ["heartrate", "daily_sleep", "sleep"]
        .map(|n| ouradb::registry::find(n).unwrap())
        .to_vec();
    config.rate_limit.requests = requests;
    config.rate_limit.application_requests = application;
    config.rate_limit.window = window;
    // Requests reach the server a little after they leave here, later
    // still on a loaded machine running the simulator in the same process.
    config.rate_limit.margin_percent = 10;
    config
}

/// Adds the accounts `names` to the file of `store`.
async fn add_accounts(store: &StoreHandle, names: &[&str]) -> Vec<AccountId> {
    let mut ids = Vec::new();
    for n in names {
        let id = store.add_account(n.to_string(), jiff::Timestamp::now());
        ids.push(id.await.unwrap());
    }
    ids
}

/// Syncs the simulator's second person (token `test-token-2`; start the
/// simulator `with_persons(2)`) into `db` as the account `name`, beside
/// what the file holds: a file of two accounts, as a household has.
pub async fn sync_second_person(env: &Env, db: &Path, name: &str) -> AccountId {
    let store = StoreHandle::new(Store::open(db).unwrap());
    let id = store
        .add_account(name.to_owned(), jiff::Timestamp::now())
        .await
        .unwrap();
    let engine = engine_on(env, db, &format!("{TOKEN}-2"), store.for_account(id));
    assert_no_errors(&sync_all(&engine).await);
    id
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
    let second = store
        .add_account("second".into(), jiff::Timestamp::now())
        .await
        .unwrap();
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

/// Makes a file as ouradb wrote it at schema `version` (before accounts)
/// holding the rows of `from` (a file of this ouradb with one account) in
/// every column that version has.
fn as_version(from: &Path, to: &Path, version: usize) {
    let conn = rusqlite::Connection::open(to).unwrap();
    for sql in ouradb::store::migration_sources().take(version) {
        conn.execute_batch(sql).unwrap();
    }
    conn.execute_batch(&format!(
        "PRAGMA user_version = {version}; PRAGMA application_id = 1330991681;"
    ))
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
        // Computed columns too (a packed key's time), not the packed key.
        conn.prepare("SELECT name FROM pragma_table_xinfo(?1, ?2) WHERE name <> 'beat'")
            .unwrap()
            .query_map([t, schema], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    for t in &tables {
        let have = columns("main", t);
        if have.is_empty() {
            continue; // a table of a later schema
        }
        // Columns ouradb added for fields outside the schema come along;
        // those of later schemas do not.
        let added = |c: &str| -> bool {
            conn.query_row(
                "SELECT count(*) FROM src.added_column WHERE table_name = ?1 AND column_name = ?2",
                [t.as_str(), c],
                |r| r.get::<_, i64>(0),
            )
            .unwrap()
                > 0
        };
        let cols: Vec<String> = columns("src", t)
            .into_iter()
            .filter(|c| c != "account" && (have.contains(c) || added(c)))
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

/// The lines of a fingerprint for the tables `db` has (a file of an older
/// schema lacks the tables added since).
fn lines_for_tables_of(fingerprint: &str, db: &Path) -> String {
    let conn = reader(db);
    fingerprint
        .lines()
        .filter(|l| {
            let table = l.split(' ').next().unwrap_or_default();
            conn.query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [table],
                |r| r.get::<_, i64>(0),
            )
            .unwrap()
                == 1
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Two simulated years written by ouradb at schema 6 (the last release
/// before accounts that users run) and at schema 10 (the last before
/// accounts) open at the current schema with every row under the first
/// account, exactly as synced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_of_two_synced_years_before_accounts_migrate_to_the_same_rows() {
    let env = Env::start(730, |_| {}).await;
    let synced = env.db();
    assert_no_errors(&env.sync().await);
    for version in [6, 10] {
        let old = env.dir.path().join(format!("v{version}.sqlite"));
        as_version(&synced, &old, version);
        let before = std::fs::metadata(&old).unwrap().len();
        assert!(before > 1_000_000, "a real two-year file: {before} bytes");
        let expected = lines_for_tables_of(&account_fingerprint(&synced, 1), &old);

        let store = Store::open(&old).unwrap();
        assert_eq!(store.schema_version(), ouradb::store::SCHEMA_VERSION);
        let accounts = store.accounts().unwrap();
        drop(store);
        assert_eq!(accounts.len(), 1);
        assert_eq!(accounts[0].id, AccountId::FIRST);
        assert!(accounts[0].oura_user_id.is_some(), "{accounts:?}");
        let migrated = account_fingerprint(&old, 1);
        assert!(expected.lines().count() > 20, "{expected}");
        let tables: Vec<&str> = expected
            .lines()
            .filter_map(|l| l.split(' ').next())
            .collect();
        let migrated: String = migrated
            .lines()
            .filter(|l| tables.contains(&l.split(' ').next().unwrap_or_default()))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(
            migrated, expected,
            "the file migrated from schema {version} differs from the file it was made from"
        );
    }
    env.sim.stop().await;
}

/// `ouradb demo --accounts 3` syncs three simulated persons into one file;
/// each account holds exactly what a sync of its person alone, with the
/// demo's own settings, holds in a file of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demo_of_three_accounts_holds_each_person_as_synced_alone() {
    use ouradb::cli::demo;
    let days = 30;
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("demo.sqlite");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ouradb"))
        .args(["demo", "--accounts", "3", "--days", &days.to_string()])
        .arg("--database")
        .arg(&shared)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for name in ["account default:", "account person-2:", "account person-3:"] {
        assert!(text.contains(name), "the report names each account: {text}");
    }

    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    let sim = ouradb_sim::SimServer::start(demo::sim_config(days, today, 3))
        .await
        .unwrap();
    for (n, account) in demo::accounts(3, &shared).into_iter().enumerate() {
        let alone = dir.path().join(format!("alone-{n}.sqlite"));
        let mut config = demo::config(&sim.base_url(), alone.clone(), days, today, 1);
        config.token = account.token.clone();
        config.accounts[0].token = account.token.clone();
        let store = StoreHandle::new(Store::open(&alone).unwrap());
        let engine = sync::account_engine(
            &config,
            &config.accounts[0],
            &store,
            CancellationToken::new(),
            sync::system_clock(),
        )
        .await
        .unwrap();
        assert_no_errors(&sync_all(&engine).await);
        drop((engine, store));
        let id: i64 = reader(&shared)
            .query_row(
                "SELECT id FROM account WHERE name = ?1",
                [&account.name],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(
            account_fingerprint(&shared, id),
            account_fingerprint(&alone, AccountId::FIRST.get()),
            "account {} of the demo differs from its person synced alone",
            account.name
        );
    }
    sim.stop().await;
}

/// Two processes (two stores, two sets of limiters on one file) each sync
/// three accounts: every request of every account and process counts in
/// the file's one request account, so the application's quota (all
/// personal tokens together, as Oura counts them) is never exceeded in any
/// window and nothing is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_of_three_accounts_stay_within_the_applications_quota() {
    let (limit, window) = (30, std::time::Duration::from_secs(2));
    let env = Env::start(60, |c| {
        *c = c.clone().with_persons(3);
        c.app_rate_limit = limit;
        c.app_rate_window = window;
    })
    .await;
    let db = env.dir.path().join("household.sqlite");
    let first = StoreHandle::new(Store::open(&db).unwrap());
    let ids = add_accounts(&first, &["alice", "bob", "carol"]).await;
    let process = |order: Vec<usize>| {
        let store = StoreHandle::new(Store::open(&db).unwrap());
        let engines: Vec<SyncEngine> = order
            .into_iter()
            .map(|i| {
                let config = quota_config(&env, &db, i, (limit, limit), window);
                engine_with(&env, config, store.for_account(ids[i]))
            })
            .collect();
        async move {
            let mut reports = Vec::new();
            for e in &engines {
                reports.extend(sync_all(e).await);
            }
            reports
        }
    };
    let (a, b) = tokio::join!(process(vec![0, 1, 2]), process(vec![2, 1, 0]));
    assert_no_errors(&a);
    assert_no_errors(&b);
    let sent: u32 = a.iter().chain(&b).map(|r| r.requests).sum();
    assert!(
        sent > 3 * limit,
        "the syncs must need several windows: {sent}"
    );
    let busiest = env
        .sim
        .max_app_requests_in_window(&ouradb_sim::Application::PersonalTokens, window);
    eprintln!("{sent} requests, at most {busiest} in any {window:?} (limit {limit})");
    assert!(
        busiest <= limit as usize,
        "{busiest} requests in one window"
    );
    assert_eq!(
        env.sim
            .stats()
            .rate_limited(ouradb_sim::RateLimitCause::Application),
        0
    );
    assert_eq!(util::status_count(&env.sim, 429), 0, "no request refused");
    env.sim.stop().await;
}

/// Oura's two quotas, token and application, each kept exactly: two
/// processes each sync two accounts side by side with a token limit below
/// the application's (20 and 30 per 2 s). No token ever exceeds its own
/// limit, the accounts together never exceed the application's, nothing is
/// refused, and the busiest window holds more than one token's limit: the
/// second account is no longer held to the first one's share.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_side_by_side_each_keep_their_tokens_quota_and_share_the_applications() {
    let (token_limit, app_limit) = (20u32, 30u32);
    let window = std::time::Duration::from_secs(2);
    let env = Env::start(30, |c| {
        *c = c.clone().with_persons(2);
        c.rate_limit = token_limit;
        c.rate_window = window;
        c.app_rate_limit = app_limit;
        c.app_rate_window = window;
    })
    .await;
    let db = env.dir.path().join("household.sqlite");
    let tokens = [util::person_token(0), util::person_token(1)];
    let first = StoreHandle::new(Store::open(&db).unwrap());
    let ids = add_accounts(&first, &["alice", "bob"]).await;
    // One process: its own store and one engine (and limiter) per account,
    // every account's run at once.
    let process = || {
        let store = StoreHandle::new(Store::open(&db).unwrap());
        let engines: Vec<SyncEngine> = (0..2)
            .map(|i| {
                let config = quota_config(&env, &db, i, (token_limit, app_limit), window);
                engine_with(&env, config, store.for_account(ids[i]))
            })
            .collect();
        async move {
            let (a, b) = tokio::join!(sync_all(&engines[0]), sync_all(&engines[1]));
            a.into_iter().chain(b).collect::<Vec<_>>()
        }
    };
    let (a, b) = tokio::join!(process(), process());
    assert_no_errors(&a);
    assert_no_errors(&b);
    let sent: u32 = a.iter().chain(&b).map(|r| r.requests).sum();
    assert!(
        sent > 3 * app_limit,
        "the syncs must need several windows: {sent}"
    );
    for token in &tokens {
        let busiest = env.sim.max_requests_in_window(token, window);
        assert!(
            busiest <= token_limit as usize,
            "{busiest} requests of {token} in one window (limit {token_limit})"
        );
    }
    let busiest = env
        .sim
        .max_app_requests_in_window(&ouradb_sim::Application::PersonalTokens, window);
    eprintln!(
        "{sent} requests, at most {busiest} in any {window:?} (token {token_limit}, application {app_limit})"
    );
    assert!(
        busiest <= app_limit as usize,
        "{busiest} requests in one window (application limit {app_limit})"
    );
    assert!(
        busiest > token_limit as usize,
        "the accounts were held to one token's quota together: {busiest}"
    );
    let stats = env.sim.stats();
    assert_eq!(stats.rate_limited(ouradb_sim::RateLimitCause::Token), 0);
    assert_eq!(
        stats.rate_limited(ouradb_sim::RateLimitCause::Application),
        0
    );
    assert_eq!(util::status_count(&env.sim, 429), 0, "no request refused");
    env.sim.stop().await;
}
