//! Several accounts from the config and the command line (issue 20):
//! `[[account]]` entries synced by `ouradb sync` each into its own rows,
//! `ouradb account ...`, and `status` per account.

use std::path::{Path, PathBuf};
use std::process::Output;

use ouradb::store::AccountId;

use crate::cli::ouradb_at;
use crate::db::{account_fingerprint, reader};
use crate::util::{Env, TOKEN, assert_no_errors};

/// A config for `env` with one `[[account]]` per (name, token).
fn accounts_config(env: &Env, db: &Path, accounts: &[(&str, &str)]) -> PathBuf {
    let c = env.config_for(db);
    let mut text = format!(
        "[api]\nbase_url = \"{}\"\ntimeout_seconds = 5\n[storage]\ndatabase = \"{}\"\n\
         [sync]\nbackfill_start = \"{}\"\n[retry]\nbase_delay_ms = 20\nmax_delay_seconds = 1\n",
        env.sim.base_url(),
        db.display(),
        c.backfill_start
    );
    for (name, token) in accounts {
        text.push_str(&format!(
            "[[account]]\nname = \"{name}\"\npersonal_access_token = \"{token}\"\n"
        ));
    }
    let path = db.with_extension("toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn run(cfg: &Path, args: &[&str]) -> Output {
    ouradb_at(cfg).args(args).output().unwrap()
}

fn account_ids(db: &Path) -> Vec<(String, i64, Option<String>)> {
    reader(db)
        .prepare("SELECT name, id, oura_user_id FROM account ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn rows_of(db: &Path, table: &str, account: i64) -> i64 {
    reader(db)
        .query_row(
            &format!("SELECT COUNT(*) FROM {table} WHERE account = ?1"),
            [account],
            |r| r.get(0),
        )
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_configured_accounts_sync_from_the_cli_into_what_each_holds_alone() {
    let env = Env::start(45, |c| *c = c.clone().with_persons(2)).await;
    let second = format!("{TOKEN}-2");
    let alone: Vec<PathBuf> = ["one.sqlite", "two.sqlite"]
        .iter()
        .map(|n| env.dir.path().join(n))
        .collect();
    for (db, token) in alone.iter().zip([TOKEN, second.as_str()]) {
        let mut config = env.config_for(db);
        config.token = Some(ouradb::secret::Secret::new(token));
        assert_no_errors(&env.sync_with(config).await);
    }

    let db = env.dir.path().join("shared.sqlite");
    let cfg = accounts_config(&env, &db, &[("alice", TOKEN), ("bob", &second)]);
    let out = ouradb_at(&cfg)
        .env("OURADB_LOG", "info")
        .arg("sync")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let report = stdout(&out);
    assert!(
        report.contains("account alice:") && report.contains("account bob:"),
        "{report}"
    );
    // Every line a run logs names its account, the store's own too (the
    // simulator's `daily_readiness` carries a field outside the schema,
    // which the first account's run adds a column for).
    let log = stderr(&out);
    let named = |l: &str, name: &str| l.contains(&format!("account{{name={name}}}"));
    assert!(
        log.lines()
            .any(|l| named(l, "alice") && l.contains("added a column")),
        "{log}"
    );
    assert!(log.lines().any(|l| named(l, "bob")), "{log}");

    let persons = env.sim.persons();
    let ids = account_ids(&db);
    assert_eq!(
        ids,
        vec![
            ("default".to_owned(), 1, None),
            ("alice".to_owned(), 2, Some(persons[0].personal_info_id())),
            ("bob".to_owned(), 3, Some(persons[1].personal_info_id())),
        ]
    );
    for (id, alone) in [(2, &alone[0]), (3, &alone[1])] {
        assert_eq!(
            account_fingerprint(&db, id),
            account_fingerprint(alone, AccountId::FIRST.get()),
            "account {id} differs from its person synced alone"
        );
    }

    check_account_list(&cfg, &persons);
    check_status_per_account(&cfg, &persons);
    check_one_account_selected(&cfg, &db);
    check_remove_and_purge(&env, &db, &alone[0]);
    env.sim.stop().await;
}

fn check_account_list(cfg: &Path, persons: &[ouradb_sim::PersonConfig]) {
    let out = run(cfg, &["account", "list", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.len(), 3, "{list:#?}");
    for (row, (name, person)) in list[1..]
        .iter()
        .zip([("alice", &persons[0]), ("bob", &persons[1])])
    {
        assert_eq!(row["name"], name);
        assert_eq!(row["oura_user_id"], person.personal_info_id().as_str());
        assert_eq!(row["email"], person.email().as_str());
        assert_eq!(row["credentials"], "token");
        assert!(row["documents"].as_i64().unwrap() > 100, "{row}");
    }
    assert_eq!(list[0]["configured"], false);
    let out = ouradb_at(cfg)
        .args(["account", "list"])
        .env("COLUMNS", "80")
        .output()
        .unwrap();
    let table = stdout(&out);
    for p in persons {
        assert!(table.contains(&p.personal_info_id()), "{table}");
    }
    assert!(
        table.contains("default (id 1)") && table.contains("not in config"),
        "{table}"
    );
    for line in table.lines() {
        assert!(line.chars().count() <= 80, "wider than 80 columns: {line}");
    }
}

fn check_status_per_account(cfg: &Path, persons: &[ouradb_sim::PersonConfig]) {
    let out = run(cfg, &["status"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let alice = text.find("account alice").expect("alice's section");
    let bob = text.find("account bob").expect("bob's section");
    assert!(alice < bob, "{text}");
    assert!(text[alice..bob].contains(&persons[0].email()), "{text}");
    assert!(text[bob..].contains(&persons[1].email()), "{text}");
    assert_eq!(text.matches("daily_sleep").count(), 2, "{text}");

    let out = run(cfg, &["status", "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let accounts = doc["accounts"].as_array().unwrap();
    assert_eq!(accounts.len(), 2);
    assert_eq!(accounts[0]["name"], "alice");
    assert_eq!(accounts[0]["id"], 2);
    assert_eq!(accounts[1]["name"], "bob");
    for a in accounts {
        let types = a["types"].as_array().unwrap();
        assert_eq!(types.len(), ouradb::registry::DATA_TYPES.len());
        assert!(types.iter().all(|t| t["freshness"] == "fresh"), "{a:#}");
    }

    let out = run(cfg, &["status", "--account", "bob"]);
    let text = stdout(&out);
    assert!(
        text.contains("account bob") && !text.contains("account alice"),
        "{text}"
    );
}

fn check_one_account_selected(cfg: &Path, db: &Path) {
    let before = account_fingerprint(db, 2);
    let out = run(cfg, &["sync", "--account", "bob", "--type", "daily_sleep"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = stdout(&out);
    assert!(
        report.contains("account bob:") && !report.contains("alice"),
        "{report}"
    );
    assert_eq!(account_fingerprint(db, 2), before, "alice was not synced");

    let out = run(
        cfg,
        &[
            "sync",
            "--json",
            "--account",
            "bob",
            "--type",
            "daily_sleep",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let accounts = doc["accounts"].as_array().unwrap();
    assert_eq!(accounts.len(), 1);
    assert_eq!(accounts[0]["name"], "bob");
    assert_eq!(accounts[0]["id"], 3);
    assert!(accounts[0]["error"].is_null());
    assert_eq!(accounts[0]["types"][0]["data_type"], "daily_sleep");

    let out = run(cfg, &["sync", "--account", "carol"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("--account") && err.contains("carol") && err.contains("alice, bob"),
        "{err}"
    );
}

fn check_remove_and_purge(env: &Env, db: &Path, alice_alone: &Path) {
    let both = db.with_extension("toml");
    let out = run(&both, &["account", "remove", "bob"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("still in the config"),
        "{}",
        stderr(&out)
    );

    let only_alice = accounts_config(env, db, &[("alice", TOKEN)]);
    let bob_rows = rows_of(db, "daily_sleep", 3);
    assert!(bob_rows > 0);
    let out = run(&only_alice, &["account", "remove", "bob"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("stay in the database"),
        "{}",
        stdout(&out)
    );
    assert_eq!(rows_of(db, "daily_sleep", 3), bob_rows, "the data stays");

    let out = run(&only_alice, &["account", "remove", "bob", "--purge"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--yes"), "{}", stderr(&out));
    assert_eq!(rows_of(db, "daily_sleep", 3), bob_rows);

    let out = run(
        &only_alice,
        &["account", "remove", "bob", "--purge", "--yes"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    for t in [
        "sync_state",
        "daily_sleep",
        "heartrate",
        "sleep_heart_rate",
        "personal_info",
    ] {
        assert_eq!(rows_of(db, t, 3), 0, "{t} keeps bob's rows");
    }
    assert_eq!(account_ids(db).len(), 2);
    assert_eq!(
        account_fingerprint(db, 2),
        account_fingerprint(alice_alone, 1),
        "alice's rows are untouched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oura_user_signed_in_on_two_accounts_stops_the_second() {
    let env = Env::start(10, |_| {}).await;
    let db = env.dir.path().join("same.sqlite");
    let cfg = accounts_config(&env, &db, &[("a", TOKEN), ("b", TOKEN)]);
    let out = run(&cfg, &["sync"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let said = stdout(&out) + &stderr(&out);
    let refusal = "account b signed in as the same Oura user as account a; each account needs its own Oura sign-in";
    assert!(said.contains(refusal), "{said}");
    let out = run(&cfg, &["status", "--account", "b"]);
    let line = stdout(&out)
        .lines()
        .find(|l| l.contains("personal_info"))
        .unwrap()
        .to_owned();
    assert!(
        line.contains("failing") && line.contains("account b signed in"),
        "{line}"
    );
    let ids = account_ids(&db);
    assert!(ids[1].2.is_some() && ids[2].2.is_none(), "{ids:?}");
    assert!(rows_of(&db, "daily_sleep", 2) > 0);
    assert_eq!(
        rows_of(&db, "daily_sleep", 3),
        0,
        "b stopped before its data"
    );
    env.sim.stop().await;
}

/// An account whose credentials start signing in as another person (a
/// token swapped in the config) stops before that person's data lands
/// among its own, and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_signing_in_as_another_person_stops_before_their_data() {
    let env = Env::start(10, |c| *c = c.clone().with_persons(2)).await;
    let db = env.dir.path().join("swapped.sqlite");
    let cfg = accounts_config(&env, &db, &[("a", TOKEN)]);
    assert!(run(&cfg, &["sync"]).status.success());
    let before = rows_of(&db, "daily_sleep", 2);
    assert!(before > 0);
    let second = format!("{TOKEN}-2");
    let cfg = accounts_config(&env, &db, &[("a", &second)]);
    let out = run(&cfg, &["sync"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let said = stdout(&out) + &stderr(&out);
    assert!(
        said.contains("account a holds the data of Oura user")
            && said.contains("sign a in as its own Oura user again"),
        "{said}"
    );
    assert_eq!(
        rows_of(&db, "daily_sleep", 2),
        before,
        "the other person's nights stay out"
    );
    env.sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_without_accounts_keeps_one_implicit_account_and_todays_shapes() {
    let env = Env::start(10, |_| {}).await;
    let db = env.db();
    let cfg = crate::cli::write_config(&env, env.dir.path(), &db);
    let out = ouradb_at(&cfg)
        .env("OURADB_LOG", "info")
        .arg("sync")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stdout(&out).contains("account"), "{}", stdout(&out));
    assert!(!stderr(&out).contains("account{"), "{}", stderr(&out));
    let out = run(&cfg, &["status", "--json"]);
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.len(), ouradb::registry::DATA_TYPES.len());
    let out = run(&cfg, &["status"]);
    assert!(!stdout(&out).contains("account"), "{}", stdout(&out));
    let out = run(&cfg, &["account", "list", "--json"]);
    let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["name"], "default");
    assert_eq!(list[0]["configured"], true);
    assert_eq!(
        list[0]["oura_user_id"],
        env.sim.persons()[0].personal_info_id().as_str()
    );
    env.sim.stop().await;
}

#[test]
fn account_add_and_rename_keep_names_unique_and_the_first_accounts_data() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.sqlite");
    let cfg = dir.path().join("a.toml");
    std::fs::write(
        &cfg,
        format!(
            "[storage]\ndatabase = \"{}\"\n[[account]]\nname = \"a\"\npersonal_access_token = \"t1\"\n\
             [[account]]\nname = \"b\"\npersonal_access_token = \"t2\"\n",
            db.display()
        ),
    )
    .unwrap();
    let out = run(&cfg, &["account", "add", "carol"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("[[account]]"), "{}", stdout(&out));
    let out = run(&cfg, &["account", "add", "carol"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    let out = run(&cfg, &["account", "add", "Carol!"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&cfg, &["account", "rename", "carol", "dave"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&cfg, &["account", "rename", "nobody", "eve"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no account nobody"),
        "{}",
        stderr(&out)
    );
    let names: Vec<String> = account_ids(&db).into_iter().map(|a| a.0).collect();
    assert_eq!(names, ["default", "dave"]);
    let out = run(&cfg, &["account", "remove", "default", "--purge", "--yes"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("rename it"), "{}", stderr(&out));
}

/// Documents stored for the account `id` so far (0 before the file exists).
fn stored_for(db: &Path, id: i64) -> i64 {
    if !db.exists() {
        return 0;
    }
    reader(db)
        .query_row(
            "SELECT coalesce(sum(documents), 0) FROM sync_state WHERE account = ?1",
            [id],
            |r| r.get(0),
        )
        .unwrap_or(0)
}

/// Three accounts; the second person's token is revoked while that
/// account's sync runs. Only it stops: the other two complete, and
/// `status` names it with what to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_revoked_mid_run_stops_its_account_alone() {
    let env = Env::start(60, |c| *c = c.clone().with_persons(3)).await;
    let tokens = [TOKEN.to_owned(), format!("{TOKEN}-2"), format!("{TOKEN}-3")];
    let db = env.dir.path().join("household.sqlite");
    let cfg = accounts_config(
        &env,
        &db,
        &[
            ("alice", &tokens[0]),
            ("bob", &tokens[1]),
            ("carol", &tokens[2]),
        ],
    );
    // The simulator answers a few requests at a time, so the test revokes
    // bob's token once his run has stored something, whatever the pace.
    env.sim.hold_requests();
    let mut sync = ouradb_at(&cfg)
        .arg("sync")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let bob = 3; // ids: default 1, then the accounts in config order
    while stored_for(&db, bob) == 0 {
        assert!(sync.try_wait().unwrap().is_none(), "the sync ended early");
        env.sim.allow_requests(4);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    env.sim.revoke_token(&tokens[1]);
    env.sim.release_requests();
    let out = sync.wait_with_output().unwrap();
    assert!(!out.status.success(), "a failed account fails the run");
    let report = stdout(&out);

    let status = stdout(&run(&cfg, &["status"]));
    let section = |name: &str| -> String {
        let start = status
            .find(&format!("\naccount {name}"))
            .unwrap_or_else(|| panic!("status has no section for {name}:\n{status}"));
        let rest = &status[start + 1..];
        let end = rest.find("\naccount ").map_or(rest.len(), |e| e + 1);
        status[start..start + end].to_owned()
    };
    for fine in ["alice", "carol"] {
        let s = section(fine);
        assert!(
            !s.contains("failing") && !s.contains("401"),
            "{fine} synced fully:\n{s}\n{report}"
        );
    }
    let s = section("bob");
    assert!(
        s.contains("personal_access_token") || s.contains("auth login"),
        "{s}"
    );
    assert_eq!(account_ids(&db).len(), 4, "{status}");
    assert!(rows_of(&db, "daily_sleep", 4) > 0, "carol synced after bob");
    env.sim.stop().await;
}
