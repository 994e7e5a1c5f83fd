//! Test harness shared by the integration tests: a fresh database per test on the
//! shared test server (`tests/pg.sh`'s, else started or reused here), SQL helpers
//! that return text rows, and a runner for the `reluvia-transform` binary pointed at
//! that database.
//!
//! Every test database is created with an ICU `en-US` collation and a default
//! `TimeZone` that is not UTC, so collation and time-zone bugs show up.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

pub const BIN: &str = env!("CARGO_BIN_EXE_reluvia-transform");

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Connection facts of the test server (host, port, user): the variables
/// `tests/pg.sh` exports, else the shared test cluster of the sample crate, started
/// (or reused) here once per test process.
pub fn server() -> (String, String, String) {
    static SERVER: OnceLock<(String, String, String)> = OnceLock::new();
    SERVER
        .get_or_init(|| {
            if std::env::var_os("RELUVIA_TEST_PGPORT").is_none() {
                let cluster = reluvia_sample::test_cluster::start()
                    .unwrap_or_else(|e| panic!("the test PostgreSQL cluster: {e}"));
                return (
                    cluster.host().to_string(),
                    cluster.port().to_string(),
                    cluster.user().to_string(),
                );
            }
            let get = |k: &str| {
                std::env::var(k).unwrap_or_else(|_| {
                    panic!("{k} is not set, but RELUVIA_TEST_PGPORT is: set both, or neither")
                })
            };
            (
                get("RELUVIA_TEST_PGHOST"),
                get("RELUVIA_TEST_PGPORT"),
                get("RELUVIA_TEST_PGUSER"),
            )
        })
        .clone()
}

fn connect(dbname: &str) -> postgres::Client {
    let (host, port, user) = server();
    postgres::Config::new()
        .host(&host)
        .port(port.parse().unwrap())
        .user(&user)
        .dbname(dbname)
        .connect(postgres::NoTls)
        .unwrap_or_else(|e| panic!("connect to test database {dbname}: {e}"))
}

/// A database of its own for one test, dropped when the value goes out of scope.
pub struct TestDb {
    pub name: String,
    client: std::cell::RefCell<postgres::Client>,
}

impl TestDb {
    /// A new empty database named after `prefix` (unique per process and call).
    pub fn new(prefix: &str) -> TestDb {
        TestDb::with_icu_locale(prefix, "en-US")
    }

    /// A new empty database whose default collation is ICU's `icu_locale`.
    pub fn with_icu_locale(prefix: &str, icu_locale: &str) -> TestDb {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!(
            "t_{}_{}_{}",
            prefix
                .to_lowercase()
                .replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
            std::process::id(),
            n
        );
        let mut admin = connect("postgres");
        for stmt in [
            format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
            format!(
                "CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8' \
                 LOCALE_PROVIDER icu ICU_LOCALE '{icu_locale}' LOCALE 'C.utf8'"
            ),
            format!("ALTER DATABASE \"{name}\" SET timezone TO 'America/New_York'"),
        ] {
            admin
                .batch_execute(&stmt)
                .unwrap_or_else(|e| panic!("{stmt}: {e}"));
        }
        let client = connect(&name);
        TestDb {
            name,
            client: std::cell::RefCell::new(client),
        }
    }

    /// A connection of its own to this database (another session).
    pub fn client(&self) -> postgres::Client {
        connect(&self.name)
    }

    /// Runs one or more statements; panics with the server's message on error.
    pub fn exec(&self, sql: &str) {
        self.client
            .borrow_mut()
            .batch_execute(sql)
            .unwrap_or_else(|e| panic!("SQL failed: {e}\n{sql}"));
    }

    /// Runs a query and returns its rows as text (NULL as `None`).
    pub fn rows(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        let msgs = self
            .client
            .borrow_mut()
            .simple_query(sql)
            .unwrap_or_else(|e| panic!("query failed: {e}\n{sql}"));
        msgs.into_iter()
            .filter_map(|m| match m {
                postgres::SimpleQueryMessage::Row(r) => {
                    Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
                }
                _ => None,
            })
            .collect()
    }

    /// Rows as `|`-joined strings with NULL shown as `∅`: handy for assertions.
    pub fn lines(&self, sql: &str) -> Vec<String> {
        self.rows(sql)
            .into_iter()
            .map(|r| {
                r.into_iter()
                    .map(|v| v.unwrap_or_else(|| "∅".into()))
                    .collect::<Vec<_>>()
                    .join("|")
            })
            .collect()
    }

    /// One value of a one-row, one-column query.
    pub fn value(&self, sql: &str) -> Option<String> {
        let rows = self.rows(sql);
        assert_eq!(rows.len(), 1, "expected one row from {sql}, got {rows:?}");
        rows[0][0].clone()
    }

    /// The binary with `PG_ANALYTICS_*` pointing at this database and a clean
    /// environment otherwise (no inherited `RELUVIA_TRANSFORM_*`/`PG*`/Meltano names).
    pub fn cmd(&self) -> Command {
        let (host, port, user) = server();
        let mut c = clean_command();
        c.env("PG_ANALYTICS_HOST", host)
            .env("PG_ANALYTICS_PORT", port)
            .env("PG_ANALYTICS_USER", user)
            .env("PG_ANALYTICS_DBNAME", &self.name);
        c
    }

    /// Runs the binary with `args` against this database.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cmd()
            .args(args)
            .output()
            .expect("run reluvia-transform")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return; // keep the database to look at
        }
        if let Ok(mut admin) = std::panic::catch_unwind(|| connect("postgres")) {
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// The binary with an environment free of every variable that could change settings.
pub fn clean_command() -> Command {
    let mut c = Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("RELUVIA_TRANSFORM_")
            || k.starts_with("PG_ANALYTICS_")
            || k.starts_with("DBT_")
            || k.starts_with("MELTANO_")
            || (k.starts_with("PG") && k != "PGTZ")
            || k == "DATABASE_URL"
        {
            c.env_remove(k);
        }
    }
    c.env_remove("RUST_LOG").env("NO_COLOR", "1");
    c
}

/// Polls `cond` until it holds; panics after a generous watchdog.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    while !cond() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "timed out waiting until {what}"
        );
        std::thread::yield_now();
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Sends SIGTERM to a child process.
pub fn sigterm(child: &std::process::Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -TERM failed");
}

/// A project directory in a temporary folder, written from `(path, content)` pairs.
pub fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, content) in files {
        write(dir.path(), path, content);
    }
    dir
}

pub fn write(root: &Path, path: &str, content: &str) {
    let p: PathBuf = root.join(path);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Asserts the exit code, showing both streams when it differs.
#[track_caller]
pub fn assert_code(o: &Output, code: i32) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "exit code\n--- stdout\n{}\n--- stderr\n{}",
        stdout(o),
        stderr(o)
    );
}

/// The shipped project (`transforms/` of this repository).
pub fn shipped_project() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("transforms")
}

/// insta filters for console output: the clock time that starts each line, the
/// durations (`in 0.12s` → `in N.NNs`) and the dot leaders, whose width depends
/// on the durations.
pub const CONSOLE_FILTERS: &[(&str, &str)] = &[
    (r"(?m)^\d\d:\d\d:\d\d  ", ""),
    (r" in [0-9.]+s", " in N.NNs"),
    (r"\.{3,}", "..."),
];

/// `insta::assert_snapshot!` for console output, through [`CONSOLE_FILTERS`].
#[macro_export]
macro_rules! assert_console_snapshot {
    ($name:expr, $value:expr) => {
        insta::with_settings!({filters => $crate::common::CONSOLE_FILTERS.to_vec()}, {
            insta::assert_snapshot!($name, $value);
        })
    };
}
