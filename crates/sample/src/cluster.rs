//! A throwaway PostgreSQL server for the demo and the tests.
//!
//! This module owns finding the PostgreSQL server binaries, creating a fresh cluster
//! in a temporary directory (`initdb`), choosing a free TCP port, starting and
//! stopping the server with `pg_ctl`, creating databases, and removing everything
//! again. The server listens on 127.0.0.1 only, trusts every local connection (user
//! `postgres`, no password) and runs with `fsync = off`: it is for data that can be
//! regenerated, never for anything that must survive.
//!
//! PostgreSQL refuses to run as root, so when the current process is root the
//! server's commands run as the `postgres` system user (`runuser -u postgres --`),
//! with a temporary directory that user owns; an ordinary user runs them directly.
//!
//! Dropping a [`Cluster`] stops the server and deletes its directory. That does not
//! happen when the process is killed or exits without unwinding (e.g. on Ctrl-C
//! without a signal handler): a caller that wants to survive that should handle the
//! signal and drop the cluster, or [`Cluster::keep`] it and print the stop command.

use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

const HOST: &str = "127.0.0.1";
const USER: &str = "postgres";
/// The environment variable that names the server's bin directory explicitly.
pub const BIN_ENV: &str = "RELUVIA_PG_BIN";
/// Longest path of a Unix socket (`sun_path` is 108 bytes on Linux, NUL included).
const MAX_SOCKET_PATH: usize = 107;

/// A running throwaway PostgreSQL server. Stopped and deleted on drop unless kept.
#[derive(Debug)]
pub struct Cluster {
    bin: PathBuf,
    /// The temporary directory holding `data/`, `server.log` and the socket.
    root: PathBuf,
    data: PathBuf,
    port: u16,
    /// True when the server's commands run as the `postgres` user (we are root).
    as_postgres: bool,
    /// Whether the server was started (and so must be stopped).
    started: bool,
    /// False once stopped or kept: `Drop` then leaves everything alone.
    armed: bool,
}

/// What remains of a [`Cluster`] handed over with [`Cluster::keep`]: the server keeps
/// running after this process exits, until someone runs `stop_command`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeptCluster {
    /// TCP port on 127.0.0.1.
    pub port: u16,
    /// The cluster's data directory.
    pub data_dir: PathBuf,
    /// The server log.
    pub log_file: PathBuf,
    /// A shell command that stops the server and removes its directory.
    pub stop_command: String,
}

impl KeptCluster {
    /// Connection URL of database `dbname`, like [`Cluster::url`].
    pub fn url(&self, dbname: &str) -> String {
        url(self.port, dbname)
    }
}

/// Shows the stop command, the one thing to print for the user.
impl std::fmt::Display for KeptCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.stop_command)
    }
}

impl Cluster {
    /// Creates and starts a fresh server on a free port of 127.0.0.1.
    ///
    /// The error is one line a user can act on: which step failed, the tool's own
    /// last words (for the server, the last lines of its log) and what to do.
    pub fn start() -> Result<Cluster, String> {
        let bin = find_bin_dir()?;
        let as_postgres = running_as_root();
        let root = make_root_dir(as_postgres)?;
        // From here on, dropping `cluster` on an early return removes `root`.
        let mut cluster = Cluster {
            data: root.join("data"),
            bin,
            root,
            port: 0,
            as_postgres,
            started: false,
            armed: true,
        };
        cluster.init()?;
        cluster.launch()?;
        log::info!(
            "started throwaway PostgreSQL on {HOST}:{} (data {})",
            cluster.port,
            cluster.data.display()
        );
        Ok(cluster)
    }

    /// The server's address: always `127.0.0.1`.
    pub fn host(&self) -> &str {
        HOST
    }

    /// The server's TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The superuser to connect as (no password): `postgres`.
    pub fn user(&self) -> &str {
        USER
    }

    /// The cluster's data directory (inside the temporary directory).
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// The temporary directory that holds everything of the cluster.
    pub fn root_dir(&self) -> &Path {
        &self.root
    }

    /// The server log.
    pub fn log_file(&self) -> PathBuf {
        self.root.join("server.log")
    }

    /// The PostgreSQL bin directory in use.
    pub fn bin_dir(&self) -> &Path {
        &self.bin
    }

    /// `postgresql://postgres@127.0.0.1:PORT/dbname` (the name percent-encoded).
    pub fn url(&self, dbname: &str) -> String {
        url(self.port, dbname)
    }

    /// A `psql` command connected to `dbname`, quiet, without reading `~/.psqlrc`,
    /// stopping at the first error. Add `-c SQL` or `-f FILE` and run it.
    pub fn psql(&self, dbname: &str) -> Command {
        let mut cmd = client_command(&self.bin.join("psql"));
        cmd.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", HOST, "-U", USER])
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-d")
            .arg(dbname);
        cmd
    }

    /// Creates database `name` (any name: `createdb` quotes it).
    pub fn create_database(&self, name: &str) -> Result<(), String> {
        let mut cmd = client_command(&self.bin.join("createdb"));
        cmd.args(["-h", HOST, "-U", USER])
            .arg("-p")
            .arg(self.port.to_string())
            .arg("--")
            .arg(name);
        let out = run(&mut cmd, "createdb")?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "could not create database {name:?} on the throwaway server: {}",
                last_lines(&output_text(&out), 3)
            ))
        }
    }

    /// Disarms the drop: the server keeps running after this value and this process
    /// are gone. Returns where it is and the command that stops and removes it.
    pub fn keep(mut self) -> KeptCluster {
        self.armed = false;
        let pg_ctl = shell_quote(&self.bin.join("pg_ctl").to_string_lossy());
        let data = shell_quote(&self.data.to_string_lossy());
        let root = shell_quote(&self.root.to_string_lossy());
        let runuser = if self.as_postgres {
            "runuser -u postgres -- "
        } else {
            ""
        };
        KeptCluster {
            port: self.port,
            data_dir: self.data.clone(),
            log_file: self.log_file(),
            stop_command: format!("{runuser}{pg_ctl} -D {data} -m fast -w stop; rm -rf {root}"),
        }
    }

    /// Stops the server (`pg_ctl -m fast stop`) and removes its directory. Problems
    /// are logged as warnings: there is nothing a caller could do about them.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if !self.armed {
            return;
        }
        self.armed = false;
        if self.started {
            self.started = false;
            let stopped = self.pg_ctl_stop("fast");
            if !stopped && !self.pg_ctl_stop("immediate") {
                log::warn!(
                    "could not stop the throwaway PostgreSQL server (data {}); stop it with `pg_ctl -D {} stop`",
                    self.data.display(),
                    self.data.display()
                );
            }
        }
        if let Err(e) = std::fs::remove_dir_all(&self.root) {
            if e.kind() != std::io::ErrorKind::NotFound {
                log::warn!("could not remove {}: {e}", self.root.display());
            }
        }
    }

    fn pg_ctl_stop(&self, mode: &str) -> bool {
        let mut cmd = self.server_command("pg_ctl");
        cmd.arg("-D")
            .arg(&self.data)
            .args(["-m", mode, "-w", "-t", "60", "stop"]);
        match run(&mut cmd, "pg_ctl") {
            Ok(out) if out.status.success() => true,
            Ok(out) => {
                log::warn!(
                    "pg_ctl stop -m {mode}: {}",
                    last_lines(&output_text(&out), 3)
                );
                false
            }
            Err(e) => {
                log::warn!("{e}");
                false
            }
        }
    }

    /// A command for one of the server binaries, run as the `postgres` user when we
    /// are root, from the cluster's directory (so that user can `chdir` there) and
    /// without the caller's `PG*` variables (`PGDATA`, `PGPORT`, ... would change
    /// what the tools do).
    fn server_command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", USER, "--"]).arg(path);
            c
        } else {
            Command::new(path)
        };
        cmd.current_dir(&self.root).stdin(Stdio::null());
        remove_pg_env(&mut cmd);
        cmd
    }

    fn init(&mut self) -> Result<(), String> {
        let mut cmd = self.server_command("initdb");
        cmd.arg("-D")
            .arg(&self.data)
            .args(["-U", USER, "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"])
            // Durability is pointless for a throwaway cluster and syncing is slow.
            .arg("--no-sync");
        let out = run(&mut cmd, "initdb")?;
        if !out.status.success() {
            return Err(format!(
                "initdb failed for the throwaway PostgreSQL cluster: {}",
                last_lines(&output_text(&out), 4)
            ));
        }
        // Settings that do not depend on the port (which is chosen at each start
        // attempt and passed on the command line).
        let socket_dir = self.root.to_string_lossy().into_owned();
        let socket_dir = if socket_dir.len() + "/.s.PGSQL.65535".len() <= MAX_SOCKET_PATH {
            socket_dir
        } else {
            // Too long for a Unix socket: TCP only (everything here uses TCP).
            String::new()
        };
        let settings = format!(
            "\n# reluvia-transform throwaway cluster\n\
             listen_addresses = '{HOST}'\n\
             unix_socket_directories = '{}'\n\
             fsync = off\n\
             synchronous_commit = off\n\
             full_page_writes = off\n\
             max_connections = 100\n\
             log_min_messages = warning\n",
            conf_quote(&socket_dir)
        );
        // Appending as root keeps the file's owner (postgres) and mode.
        let conf = self.data.join("postgresql.conf");
        std::fs::OpenOptions::new()
            .append(true)
            .open(&conf)
            .and_then(|mut f| f.write_all(settings.as_bytes()))
            .map_err(|e| format!("could not write {}: {e}", conf.display()))
    }

    /// Starts the server on a free port; retries with another port when the chosen
    /// one was taken between choosing it and the server binding it.
    fn launch(&mut self) -> Result<(), String> {
        let log = self.log_file();
        let mut last_error = String::new();
        for _attempt in 0..3 {
            self.port = free_port()?;
            let mut cmd = self.server_command("pg_ctl");
            cmd.arg("-D")
                .arg(&self.data)
                .arg("-l")
                .arg(&log)
                .args(["-w", "-t", "60"])
                // A number needs no quoting in pg_ctl's shell command line.
                .arg("-o")
                .arg(format!("-p {}", self.port))
                .arg("start");
            let out = run(&mut cmd, "pg_ctl")?;
            if out.status.success() {
                self.started = true;
                return Ok(());
            }
            // pg_ctl may have left a half-started postmaster behind.
            self.started = true;
            let _ = self.pg_ctl_stop("immediate");
            self.started = false;
            let log_text = std::fs::read_to_string(&log).unwrap_or_default();
            if log_text.contains("could not bind") || log_text.contains("already in use") {
                last_error = format!("port {} was taken", self.port);
                // The next attempt appends to the same log; start it afresh.
                let _ = std::fs::remove_file(&log);
                continue;
            }
            // The cluster's directory is removed on drop: keep a copy of the log.
            let saved =
                std::env::temp_dir().join(format!("reluvia-pg-failed-{}.log", std::process::id()));
            let saved = match std::fs::write(&saved, &log_text) {
                Ok(()) => format!(" (full log: {})", saved.display()),
                Err(_) => String::new(),
            };
            return Err(format!(
                "could not start the throwaway PostgreSQL server ({}): {}{saved}",
                last_lines(&output_text(&out), 1),
                last_lines(&log_text, 5)
            ));
        }
        Err(format!(
            "could not start the throwaway PostgreSQL server: {last_error} three times; try again"
        ))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Finds the server's bin directory: `$RELUVIA_PG_BIN`, else the newest
/// `/usr/lib/postgresql/*/bin` with `initdb`, else `pg_config --bindir`.
pub fn find_bin_dir() -> Result<PathBuf, String> {
    find_bin_dir_in(
        std::env::var_os(BIN_ENV),
        Path::new("/usr/lib/postgresql"),
        pg_config_bindir,
    )
}

/// [`find_bin_dir`] with its inputs explicit (for tests).
fn find_bin_dir_in(
    env: Option<OsString>,
    debian_root: &Path,
    pg_config: impl FnOnce() -> Option<PathBuf>,
) -> Result<PathBuf, String> {
    if let Some(dir) = env.filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        return if is_server_bin(&dir) {
            Ok(dir)
        } else {
            Err(format!(
                "{BIN_ENV}={} has no initdb and pg_ctl: point it at the bin directory of a PostgreSQL server (e.g. /usr/lib/postgresql/16/bin) or unset it",
                dir.display()
            ))
        };
    }
    // Debian/Ubuntu install each major version side by side; take the newest.
    let mut best: Option<(Vec<u32>, PathBuf)> = None;
    if let Ok(entries) = std::fs::read_dir(debian_root) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(version) = name
                .split('.')
                .map(|p| p.parse::<u32>().ok())
                .collect::<Option<Vec<u32>>>()
            else {
                continue;
            };
            let bin = entry.path().join("bin");
            if is_server_bin(&bin) && best.as_ref().is_none_or(|(v, _)| version > *v) {
                best = Some((version, bin));
            }
        }
    }
    if let Some((_, bin)) = best {
        return Ok(bin);
    }
    if let Some(bin) = pg_config().filter(|b| is_server_bin(b)) {
        return Ok(bin);
    }
    Err(format!(
        "no PostgreSQL server binaries (initdb, pg_ctl) found: install the server package (e.g. `apt-get install postgresql`) or set {BIN_ENV} to its bin directory"
    ))
}

fn is_server_bin(dir: &Path) -> bool {
    dir.join("initdb").is_file() && dir.join("pg_ctl").is_file()
}

fn pg_config_bindir() -> Option<PathBuf> {
    let out = Command::new("pg_config")
        .arg("--bindir")
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let dir = text.trim();
    (out.status.success() && !dir.is_empty()).then(|| PathBuf::from(dir))
}

/// Whether the effective user is root, from `/proc/self/status` (Linux), else `id -u`.
fn running_as_root() -> bool {
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        if let Some(line) = status.lines().find(|l| l.starts_with("Uid:")) {
            // "Uid: real effective saved fs"
            return line.split_whitespace().nth(2) == Some("0");
        }
    }
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Creates a new private temporary directory for one cluster; as root, hands it to
/// the `postgres` user and checks that user can write there.
fn make_root_dir(as_postgres: bool) -> Result<PathBuf, String> {
    use std::os::unix::fs::PermissionsExt;
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let base = std::env::temp_dir();
    let mut root = None;
    for _ in 0..100 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = base.join(format!("reluvia-pg-{}-{n}-{nanos:08x}", std::process::id()));
        // create_dir (not _all) fails if the name exists: never reuse a directory.
        match std::fs::create_dir(&dir) {
            Ok(()) => {
                root = Some(dir);
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(format!(
                    "could not create a temporary directory in {}: {e}; set TMPDIR to a writable directory",
                    base.display()
                ))
            }
        }
    }
    let root = root.ok_or_else(|| {
        format!(
            "could not create a fresh temporary directory in {}; clean up old reluvia-pg-* directories there",
            base.display()
        )
    })?;
    let cleanup = |msg: String| {
        let _ = std::fs::remove_dir_all(&root);
        msg
    };
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| cleanup(format!("could not restrict {}: {e}", root.display())))?;
    if as_postgres {
        let out = Command::new("chown")
            .arg(format!("{USER}:"))
            .arg(&root)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| cleanup(format!("could not run chown: {e}")))?;
        if !out.status.success() {
            return Err(cleanup(format!(
                "running as root, but could not hand {} to the `postgres` user ({}): install the PostgreSQL server package (e.g. `apt-get install postgresql`), which creates that user, or run as an ordinary user",
                root.display(),
                last_lines(&output_text(&out), 1)
            )));
        }
        let writable = Command::new("runuser")
            .args(["-u", USER, "--", "test", "-w"])
            .arg(&root)
            .stdin(Stdio::null())
            .status();
        match writable {
            Ok(s) if s.success() => {}
            Ok(_) => {
                return Err(cleanup(format!(
                    "the `postgres` user cannot reach {}: set TMPDIR to a directory it can enter, such as /tmp",
                    root.display()
                )))
            }
            Err(e) => {
                return Err(cleanup(format!(
                    "running as root needs `runuser` (util-linux) to start PostgreSQL as the `postgres` user: {e}"
                )))
            }
        }
    }
    Ok(root)
}

/// A free TCP port on 127.0.0.1: bind port 0 and read what the kernel picked. (The
/// port is free again once the listener is dropped; `launch` retries if another
/// process takes it first.)
fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind((HOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("could not find a free TCP port on {HOST}: {e}"))
}

/// A client tool (psql, createdb) run as the current user over TCP, without the
/// caller's `PG*` variables (e.g. `PGSSLMODE=require` would fail against this
/// server, `PGDATABASE` would change the target).
fn client_command(path: &Path) -> Command {
    let mut cmd = Command::new(path);
    remove_pg_env(&mut cmd);
    cmd.env("PGCONNECT_TIMEOUT", "10");
    cmd
}

fn remove_pg_env(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PG") {
            cmd.env_remove(key);
        }
    }
}

fn run(cmd: &mut Command, what: &str) -> Result<Output, String> {
    cmd.output()
        .map_err(|e| format!("could not run {what} ({:?}): {e}", cmd.get_program()))
}

fn output_text(out: &Output) -> String {
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push('\n');
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    text
}

/// The last `n` non-empty lines of `text`, joined with " | " to fit on one line.
fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let tail = lines[lines.len().saturating_sub(n)..].join(" | ");
    if tail.is_empty() {
        "(no output)".to_string()
    } else {
        tail
    }
}

/// Quotes a value for a single-quoted postgresql.conf string.
fn conf_quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\'', "''")
}

/// Quotes a word for a POSIX shell.
fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+=:,@".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

fn url(port: u16, dbname: &str) -> String {
    let mut encoded = String::new();
    for b in dbname.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("postgresql://{USER}@{HOST}:{port}/{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value `sql` returns in the database of connection URL `url`, by `psql`
    /// (which also shows the URL works for the demo's users).
    fn query_one(url: &str, sql: &str) -> Result<String, String> {
        let psql = find_bin_dir()?.join("psql");
        let out = client_command(&psql)
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d"])
            .arg(url)
            .arg("-c")
            .arg(sql)
            .output()
            .map_err(|e| format!("psql: {e}"))?;
        if !out.status.success() {
            return Err(format!("{url}: {}", output_text(&out)));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        Ok(text.strip_suffix('\n').unwrap_or(&text).to_string())
    }

    #[test]
    fn start_connect_create_database_stop() {
        let cluster = Cluster::start().expect("start");
        assert_eq!(cluster.host(), "127.0.0.1");
        assert_eq!(cluster.user(), "postgres");
        assert!(cluster.port() > 0);
        assert_eq!(
            cluster.url("x y"),
            format!("postgresql://postgres@127.0.0.1:{}/x%20y", cluster.port())
        );
        let user = query_one(&cluster.url("postgres"), "SELECT current_user::text").expect("query");
        assert_eq!(user, "postgres");
        let encoding = query_one(
            &cluster.url("postgres"),
            "SELECT current_setting('server_encoding')",
        )
        .expect("query");
        assert_eq!(encoding, "UTF8");

        cluster.create_database("Demo-DB").expect("createdb");
        let db =
            query_one(&cluster.url("Demo-DB"), "SELECT current_database()::text").expect("query");
        assert_eq!(db, "Demo-DB");
        let err = cluster.create_database("Demo-DB").expect_err("exists");
        assert!(
            err.contains("already exists") && !err.contains('\n'),
            "{err}"
        );

        let root = cluster.root_dir().to_path_buf();
        let data = cluster.data_dir().to_path_buf();
        let port = cluster.port();
        assert!(data.join("PG_VERSION").is_file());
        cluster.stop();
        assert!(!data.exists() && !root.exists(), "directory left behind");
        assert!(
            std::net::TcpStream::connect((HOST, port)).is_err(),
            "server still up"
        );
    }

    #[test]
    fn two_clusters_get_different_ports_and_drop_cleans_up() {
        let a = Cluster::start().expect("start a");
        let b = Cluster::start().expect("start b");
        assert_ne!(a.port(), b.port());
        assert_ne!(a.root_dir(), b.root_dir());
        for c in [&a, &b] {
            let one = query_one(&c.url("postgres"), "SELECT '1'::text").expect("query");
            assert_eq!(one, "1");
        }
        let roots = [a.root_dir().to_path_buf(), b.root_dir().to_path_buf()];
        drop(a);
        drop(b);
        assert!(roots.iter().all(|r| !r.exists()));
    }

    #[test]
    fn kept_cluster_survives_until_its_stop_command() {
        let cluster = Cluster::start().expect("start");
        let root = cluster.root_dir().to_path_buf();
        let kept = cluster.keep();
        assert!(root.exists());
        assert_eq!(kept.to_string(), kept.stop_command);
        let one = query_one(&kept.url("postgres"), "SELECT 'up'::text").expect("still running");
        assert_eq!(one, "up");
        let status = Command::new("sh")
            .arg("-c")
            .arg(&kept.stop_command)
            .stdout(Stdio::null())
            .status()
            .expect("sh");
        assert!(status.success(), "{}", kept.stop_command);
        assert!(!root.exists());
        assert!(std::net::TcpStream::connect((HOST, kept.port)).is_err());
    }

    #[test]
    fn bin_dir_errors_say_what_to_do() {
        let empty =
            std::env::temp_dir().join(format!("reluvia-pg-test-empty-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&empty);
        let err = find_bin_dir_in(
            Some(empty.clone().into_os_string()),
            Path::new("/nonexistent"),
            || None,
        )
        .expect_err("empty dir is no bin dir");
        assert!(err.contains(BIN_ENV), "{err}");
        let err = find_bin_dir_in(None, &empty, || None).expect_err("nothing installed");
        assert!(
            err.contains("apt-get install postgresql") && !err.contains('\n'),
            "{err}"
        );
        let err = find_bin_dir_in(None, &empty, || Some(empty.clone()))
            .expect_err("pg_config without server");
        assert!(err.contains("apt-get install postgresql"), "{err}");
        let _ = std::fs::remove_dir_all(&empty);
        // On this machine the Debian layout has a server.
        let found =
            find_bin_dir_in(None, Path::new("/usr/lib/postgresql"), || None).expect("found");
        assert!(found.join("initdb").is_file());
    }

    #[test]
    fn quoting_helpers() {
        assert_eq!(shell_quote("/tmp/a-b_c.1"), "/tmp/a-b_c.1");
        assert_eq!(shell_quote("it's here"), "'it'\\''s here'");
        assert_eq!(conf_quote("a'b\\c"), "a''b\\\\c");
        assert_eq!(last_lines("a\n\nb\nc\n", 2), "b | c");
        assert_eq!(last_lines("", 2), "(no output)");
    }

    /// The generator's output loads into the tables it describes: COPY accepts every
    /// value (escaping, timestamps, JSON) and the primary keys hold.
    #[test]
    fn generated_raw_data_loads() {
        use crate::generate::{generate, GenOptions};
        let cluster = Cluster::start().expect("start");
        cluster.create_database("raw").expect("createdb");
        let end = chrono::NaiveDate::from_ymd_opt(2026, 11, 24).expect("date");
        let now = end.and_hms_opt(18, 3, 11).expect("time");
        let tables = generate(&GenOptions {
            seed: 1,
            days: 30,
            sessions_per_day: 40,
            end,
            now,
        });
        let out = cluster
            .psql("raw")
            .arg("-c")
            .arg(crate::contract::ddl())
            .output()
            .expect("psql");
        assert!(out.status.success(), "{}", output_text(&out));
        for data in &tables {
            let copy = format!(
                "COPY {}.{} ({}) FROM STDIN",
                data.schema,
                data.table,
                data.columns.join(", ")
            );
            let mut child = cluster
                .psql("raw")
                .arg("-c")
                .arg(&copy)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("psql");
            let mut stdin = child.stdin.take().expect("stdin");
            let text = data.copy_text.clone();
            let writer = std::thread::spawn(move || stdin.write_all(text.as_bytes()));
            let out = child.wait_with_output().expect("psql");
            writer
                .join()
                .expect("writer thread")
                .expect("write to psql");
            assert!(out.status.success(), "{copy}: {}", output_text(&out));
            let count = query_one(
                &cluster.url("raw"),
                &format!("SELECT count(*)::text FROM {}.{}", data.schema, data.table),
            )
            .expect("count");
            assert_eq!(
                count,
                data.rows.to_string(),
                "{}.{}",
                data.schema,
                data.table
            );
        }
        // Values that needed escaping arrive intact.
        let tab = query_one(
            &cluster.url("raw"),
            "SELECT count(*)::text FROM raw_facebook.ad_statistics WHERE ad_name = E'Testimonial\\tcut B'",
        )
        .expect("query");
        assert_ne!(tab, "0");
        let newline = query_one(
            &cluster.url("raw"),
            "SELECT name FROM raw_facebook.campaigns WHERE name LIKE 'Retargeting%'",
        )
        .expect("query");
        assert_eq!(newline, "Retargeting\n30d visitors");
        let query = query_one(
            &cluster.url("raw"),
            "SELECT count(*)::text FROM raw_amplitude.events WHERE event_properties->>'query' = E'C:\\\\ reset\\nplan'",
        )
        .expect("query");
        assert_ne!(query, "0");
    }
}
