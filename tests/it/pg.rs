//! A throwaway PostgreSQL cluster for the tests that need a real server:
//! `initdb` in a temporary directory, the server listening on a Unix
//! socket there and on no TCP port, stopped (and its files removed) when
//! the [`Cluster`] is dropped. PostgreSQL refuses to run as root, so as
//! root the server runs as the `postgres` system user.
//!
//! Needs Debian's `postgresql` (`.ci/run` installs it). Without it every
//! test that starts a cluster fails, naming what to install; a run that
//! means to leave PostgreSQL out says so with `OURADB_TEST_POSTGRES=0`
//! (README, "Tests"), and those tests then fail with that reason instead
//! of passing unseen.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The database user the cluster is created with (`initdb -U`).
const SUPERUSER: &str = "ouradb";

/// How long the server may take to start or stop.
const WAIT: Duration = Duration::from_secs(60);

pub struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
}

impl Cluster {
    /// Creates and starts a cluster; panics naming the cause and the fix.
    pub fn start() -> Cluster {
        if std::env::var_os("OURADB_TEST_POSTGRES").is_some_and(|v| v == "0") {
            panic!(
                "OURADB_TEST_POSTGRES=0: this test needs PostgreSQL and was asked to leave it out"
            );
        }
        let bin = server_bin().unwrap_or_else(|| {
            panic!(
                "PostgreSQL's server programs (initdb, pg_ctl) are not installed: \
                 apt-get install postgresql, or set OURADB_TEST_POSTGRES=0 to leave these tests out"
            )
        });
        let dir = tempfile::Builder::new()
            .prefix("ouradb-pg-")
            .tempdir()
            .expect("a temporary directory");
        if as_root() {
            let (uid, gid) = postgres_user();
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .expect("chown the cluster's directory to postgres");
        }
        let cluster = Cluster { dir, bin };
        cluster.run(
            "initdb",
            &[
                "--pgdata",
                &cluster.data().display().to_string(),
                "--username",
                SUPERUSER,
                "--auth",
                "trust",
                "--encoding",
                "UTF8",
                "--no-sync",
            ],
        );
        let options = format!(
            "-c listen_addresses='' -c unix_socket_directories='{}' -c fsync=off",
            cluster.socket_dir().display()
        );
        cluster.run(
            "pg_ctl",
            &[
                "start",
                "--pgdata",
                &cluster.data().display().to_string(),
                "--wait",
                "--timeout",
                &WAIT.as_secs().to_string(),
                "--log",
                &cluster.dir.path().join("server.log").display().to_string(),
                "-o",
                &options,
            ],
        );
        cluster
    }

    /// The directory holding the server's socket.
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A client configuration for database `db` as the cluster's superuser.
    pub fn config(&self, db: &str) -> postgres::Config {
        let mut c = postgres::Config::new();
        c.host_path(self.socket_dir())
            .user(SUPERUSER)
            .dbname(db)
            .connect_timeout(WAIT);
        c
    }

    /// Connects to database `db`.
    pub fn connect(&self, db: &str) -> postgres::Client {
        let deadline = Instant::now() + WAIT;
        loop {
            match self.config(db).connect(postgres::NoTls) {
                Ok(c) => return c,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("PostgreSQL not answering yet ({e}); retrying");
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("cannot connect to the test cluster: {e}\n{}", self.log()),
            }
        }
    }

    /// The server's log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// One of the server's programs, to run as `postgres` when we are root,
    /// in the cluster's directory.
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        let mut cmd = if as_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        // The server's programs would read our locale; C is everywhere.
        cmd.env("LC_ALL", "C").current_dir(self.dir.path());
        cmd
    }

    /// Runs one of the server's programs; panics with its output if it fails.
    fn run(&self, program: &str, args: &[&str]) -> Output {
        let out = self
            .command(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        assert!(
            out.status.success(),
            "{program} failed: {}\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        out
    }
}

/// Stops the server at once (its data is thrown away with the directory).
impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data();
        let stopped = self
            .command("pg_ctl")
            .args(["stop", "--mode", "immediate", "--wait", "--pgdata"])
            .arg(&data)
            .output();
        if !stopped.is_ok_and(|o| o.status.success()) {
            eprintln!("could not stop the test cluster in {}", data.display());
        }
    }
}

fn as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The `postgres` system user's uid and gid.
fn postgres_user() -> (u32, u32) {
    let out = Command::new("id")
        .args(["-u", "postgres"])
        .output()
        .expect("id -u postgres");
    let uid = String::from_utf8_lossy(&out.stdout).trim().parse().expect(
        "no `postgres` user: PostgreSQL refuses to run as root; apt-get install postgresql creates it",
    );
    let out = Command::new("id")
        .args(["-g", "postgres"])
        .output()
        .expect("id -g postgres");
    let gid = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("the postgres user's group");
    (uid, gid)
}

/// The newest installed server's programs: Debian keeps them in
/// `/usr/lib/postgresql/<major>/bin`, off the PATH.
fn server_bin() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((major, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

/// A cluster starts on its own socket, with no TCP port, answers SQL,
/// and is gone (socket, lock file, server process) once dropped.
#[test]
fn a_throwaway_cluster_answers_on_its_socket_and_stops() {
    let cluster = Cluster::start();
    let socket_dir = cluster.socket_dir().to_owned();
    let mut client = cluster.connect("postgres");
    let version: String = client.query_one("SHOW server_version", &[]).unwrap().get(0);
    assert!(!version.is_empty());
    let listen: String = client
        .query_one("SHOW listen_addresses", &[])
        .unwrap()
        .get(0);
    assert_eq!(listen, "", "no TCP port");
    client.batch_execute("CREATE DATABASE study").unwrap();
    let mut study = cluster.connect("study");
    study
        .batch_execute("CREATE TABLE t (id BIGINT PRIMARY KEY, doc JSONB NOT NULL)")
        .unwrap();
    study
        .execute(
            "INSERT INTO t VALUES ($1, $2::TEXT::JSONB)",
            &[&1i64, &r#"{"a": 1}"#],
        )
        .unwrap();
    let a: i32 = study
        .query_one("SELECT (doc->>'a')::INT FROM t WHERE id = 1", &[])
        .unwrap()
        .get(0);
    assert_eq!(a, 1);
    let pid: i32 = client
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    assert!(pid > 0);
    drop((client, study));
    drop(cluster);
    assert!(
        !socket_dir.join(".s.PGSQL.5432").exists(),
        "the socket is gone"
    );
    assert!(!socket_dir.exists(), "the cluster's files are gone");
}
