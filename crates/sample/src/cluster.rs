//! A throwaway PostgreSQL server for the demo and the tests.
//!
//! This module owns finding the PostgreSQL server binaries, creating a fresh cluster
//! (`initdb`), choosing a free TCP port, starting and stopping the server with
//! `pg_ctl`, creating databases, and removing everything again. The server listens
//! on 127.0.0.1 only, trusts every local connection (user `postgres`, no password)
//! unless [`ClusterOptions`] replace its `pg_hba.conf`, and runs with `fsync = off`:
//! it is for data that can be regenerated, never for anything that must survive.
//!
//! Two kinds of cluster:
//!
//! - [`Cluster::start`] (or [`Cluster::start_with`] options): a fresh cluster in a
//!   new temporary directory. Dropping it stops the server and deletes the
//!   directory. That does not happen when the process is killed or exits without
//!   unwinding (e.g. on Ctrl-C without a signal handler): a caller that wants to
//!   survive that should handle the signal and drop the cluster, or
//!   [`Cluster::keep`] it and print the stop command.
//! - [`Cluster::shared`]: a persistent cluster in a directory of the caller's
//!   choosing, reused by every later call while its server answers (a test suite
//!   starts it once for many test processes). Dropping it leaves it running;
//!   [`Cluster::stop`] or [`Cluster::stop_shared`] stop it.
//!
//! PostgreSQL refuses to run as root, so when the current process is root the
//! server's commands run as the `postgres` system user (`runuser -u postgres --`),
//! with a directory that user owns; an ordinary user runs them directly.

use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const HOST: &str = "127.0.0.1";
const USER: &str = "postgres";
/// The environment variable that names the server's bin directory explicitly.
const BIN_ENV: &str = "RELUVIA_PG_BIN";
/// Longest path of a Unix socket (`sun_path` is 108 bytes on Linux, NUL included).
const MAX_SOCKET_PATH: usize = 107;

/// How a cluster differs from the defaults (100 connections, the system's time
/// zone, initdb's `pg_hba.conf`: trust for local connections). Applied when the
/// cluster is created; a reused [`Cluster::shared`] cluster gets its `pg_hba.conf`
/// again, the rest stays as it was created.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterOptions {
    max_connections: Option<u32>,
    timezone: Option<String>,
    conf_lines: Vec<String>,
    hba: Option<String>,
    files: Vec<(String, PathBuf)>,
    /// Keep PostgreSQL's durability settings (fsync, synchronous_commit,
    /// full_page_writes) as a production server has them.
    durable: bool,
}

impl ClusterOptions {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// The server's `max_connections` (default 100).
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = Some(n);
        self
    }

    /// The server's default `timezone`, e.g. `Pacific/Chatham`.
    pub fn timezone(mut self, zone: &str) -> Self {
        self.timezone = Some(zone.to_string());
        self
    }

    /// A line appended to `postgresql.conf` after the cluster's own settings (so it
    /// wins over them), e.g. `ssl = on`.
    pub fn conf_line(mut self, line: &str) -> Self {
        self.conf_lines.push(line.to_string());
        self
    }

    /// A server as durable as a production one: fsync, synchronous_commit and
    /// full_page_writes keep PostgreSQL's defaults (a throwaway cluster turns them
    /// off). For benchmarks, whose figures must hold on a real server.
    pub fn durable(mut self) -> Self {
        self.durable = true;
        self
    }

    /// The whole `pg_hba.conf`, replacing initdb's.
    pub fn pg_hba(mut self, text: &str) -> Self {
        self.hba = Some(text.to_string());
        self
    }

    /// Copies file `source` into the data directory as `name` (a plain file name),
    /// mode 600 and owned by the server's user: e.g. a TLS certificate and key that
    /// `ssl_cert_file`/`ssl_key_file` name.
    pub fn data_file(mut self, name: &str, source: impl AsRef<Path>) -> Self {
        self.files
            .push((name.to_string(), source.as_ref().to_path_buf()));
        self
    }
}

/// A running throwaway PostgreSQL server. A cluster from [`Cluster::start`] is
/// stopped and deleted on drop unless kept; a [`Cluster::shared`] one keeps running.
#[derive(Debug)]
pub struct Cluster {
    bin: PathBuf,
    /// The directory holding `server.log` and the socket: a temporary directory
    /// with `data/` in it, or the shared cluster's data directory itself.
    root: PathBuf,
    data: PathBuf,
    port: u16,
    /// True when the server's commands run as the `postgres` user (we are root).
    as_postgres: bool,
    /// A persistent cluster of [`Cluster::shared`]: never removed, not stopped on drop.
    shared: bool,
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
    /// Creates and starts a fresh server on a free port of 127.0.0.1, with the
    /// default options.
    ///
    /// The error is one line a user can act on: which step failed, the tool's own
    /// last words (for the server, the last lines of its log) and what to do.
    pub fn start() -> Result<Cluster, String> {
        Cluster::start_with(&ClusterOptions::default())
    }

    /// [`Cluster::start`] with `options`.
    pub fn start_with(options: &ClusterOptions) -> Result<Cluster, String> {
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
            shared: false,
            started: false,
            armed: true,
        };
        cluster.init(options)?;
        cluster.launch()?;
        log::info!(
            "started throwaway PostgreSQL on {HOST}:{} (data {})",
            cluster.port,
            cluster.data.display()
        );
        Ok(cluster)
    }

    /// The persistent cluster in data directory `dir`: the server already running
    /// there when it answers (its `pg_hba.conf` rewritten from `options` and
    /// reloaded), else a fresh cluster created there with `options` and started on a
    /// free port. Whatever was in `dir` before is removed then, provided it is a
    /// PostgreSQL data directory or empty.
    ///
    /// The cluster is not stopped on drop: the next call, from this process or
    /// another, reuses it. [`Cluster::stop`] or [`Cluster::stop_shared`] stop it
    /// (and leave the directory). Calls for the same `dir` take turns (a lock file
    /// `dir.lock` beside it), so concurrent processes share one server.
    pub fn shared(dir: &Path, options: &ClusterOptions) -> Result<Cluster, String> {
        let bin = find_bin_dir()?;
        let as_postgres = running_as_root();
        let dir = absolute(dir)?;
        let _lock = DirLock::acquire(&dir)?;
        let mut cluster = Cluster {
            bin,
            root: dir.clone(),
            data: dir.clone(),
            port: 0,
            as_postgres,
            shared: true,
            started: false,
            armed: true,
        };
        if let Some(port) = cluster.answering_port() {
            cluster.port = port;
            cluster.started = true;
            cluster.write_hba(options)?;
            cluster.reload()?;
            log::info!(
                "reusing PostgreSQL on {HOST}:{port} (data {})",
                dir.display()
            );
            return Ok(cluster);
        }
        if dir.join("postmaster.pid").exists() && cluster.server_runs() {
            // A server that runs but does not answer. (A stale postmaster.pid, left
            // by a server that is gone, is the server's own business at start.)
            let _ = cluster.pg_ctl_stop("immediate");
        }
        if options.durable && dir.join("PG_VERSION").is_file() {
            // A durable cluster whose server stopped (a reboot, a killed server):
            // its data is what it is kept for, so start it again as it is.
            cluster.write_hba(options)?;
            cluster.launch()?;
            log::info!(
                "restarted PostgreSQL on {HOST}:{} (data {})",
                cluster.port,
                dir.display()
            );
            return Ok(cluster);
        }
        make_shared_dir(&dir, as_postgres)?;
        cluster.init(options)?;
        cluster.launch()?;
        log::info!(
            "started PostgreSQL on {HOST}:{} (data {})",
            cluster.port,
            dir.display()
        );
        Ok(cluster)
    }

    /// Stops the server of the [`Cluster::shared`] cluster in `dir`, if one runs
    /// there, and leaves the directory. Returns whether a server was stopped.
    pub fn stop_shared(dir: &Path) -> Result<bool, String> {
        let dir = absolute(dir)?;
        if !dir.join("postmaster.pid").exists() {
            return Ok(false);
        }
        let _lock = DirLock::acquire(&dir)?;
        let cluster = Cluster {
            bin: find_bin_dir()?,
            root: dir.clone(),
            data: dir,
            port: 0,
            as_postgres: running_as_root(),
            shared: true,
            started: true,
            armed: false,
        };
        if !cluster.server_runs() {
            return Ok(false);
        }
        if cluster.pg_ctl_stop("fast") || cluster.pg_ctl_stop("immediate") {
            Ok(true)
        } else {
            Err(format!(
                "could not stop the PostgreSQL server of {}; see {}",
                cluster.data.display(),
                cluster.log_file().display()
            ))
        }
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

    /// The server log.
    fn log_file(&self) -> PathBuf {
        self.root.join("server.log")
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

    /// Runs `sql` in database `dbname` with [`Cluster::psql`].
    pub fn execute(&self, dbname: &str, sql: &str) -> Result<(), String> {
        run_checked(
            self.psql(dbname).arg("-c").arg(sql),
            "psql",
            &format!("psql in database {dbname:?} of the throwaway server"),
        )
    }

    /// Creates database `name` (any name: `createdb` quotes it).
    pub fn create_database(&self, name: &str) -> Result<(), String> {
        let mut cmd = client_command(&self.bin.join("createdb"));
        cmd.args(["-h", HOST, "-U", USER])
            .arg("-p")
            .arg(self.port.to_string())
            .arg("--")
            .arg(name);
        run_checked(
            &mut cmd,
            "createdb",
            &format!("could not create database {name:?} on the throwaway server"),
        )
    }

    /// Disarms the drop: the server keeps running after this value and this process
    /// are gone. Returns where it is and the command that stops it and (unless it is
    /// a shared cluster) removes its directory.
    pub fn keep(mut self) -> KeptCluster {
        self.armed = false;
        let pg_ctl = shell_quote(&self.bin.join("pg_ctl").to_string_lossy());
        let data = shell_quote(&self.data.to_string_lossy());
        let runuser = if self.as_postgres {
            "runuser -u postgres -- "
        } else {
            ""
        };
        let mut stop_command = format!("{runuser}{pg_ctl} -D {data} -m fast -w stop");
        if !self.shared {
            let root = shell_quote(&self.root.to_string_lossy());
            stop_command.push_str(&format!("; rm -rf {root}"));
        }
        KeptCluster {
            port: self.port,
            stop_command,
        }
    }

    /// Stops the server (`pg_ctl -m fast stop`) and removes its directory (a shared
    /// cluster's stays). Problems are logged as warnings: there is nothing a caller
    /// could do about them.
    pub fn stop(mut self) {
        if self.shared {
            // Dropping a shared cluster leaves it alone; stopping it does not.
            if !self.pg_ctl_stop("fast") && !self.pg_ctl_stop("immediate") {
                log::warn!(
                    "could not stop the PostgreSQL server of {}",
                    self.data.display()
                );
            }
            self.armed = false;
        } else {
            self.shutdown();
        }
    }

    fn shutdown(&mut self) {
        if !self.armed || self.shared {
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

    /// The port of the server running in the data directory, if `pg_ctl status`
    /// finds its process and it answers there (`pg_isready`): a stale
    /// `postmaster.pid` whose PID another process took would fool `pg_ctl` alone.
    fn answering_port(&self) -> Option<u16> {
        let pid_file = std::fs::read_to_string(self.data.join("postmaster.pid")).ok()?;
        // The fourth line is the port.
        let port: u16 = pid_file.lines().nth(3)?.trim().parse().ok()?;
        if !self.server_runs() {
            return None;
        }
        let mut ready = client_command(&self.bin.join("pg_isready"));
        ready
            .args(["-q", "-h", HOST, "-t", "5", "-p"])
            .arg(port.to_string());
        run(&mut ready, "pg_isready")
            .ok()?
            .status
            .success()
            .then_some(port)
    }

    /// Whether `pg_ctl status` finds the process of the data directory's server.
    fn server_runs(&self) -> bool {
        let mut status = self.server_command("pg_ctl");
        status.arg("-D").arg(&self.data).arg("status");
        run(&mut status, "pg_ctl").is_ok_and(|out| out.status.success())
    }

    fn reload(&self) -> Result<(), String> {
        let mut cmd = self.server_command("pg_ctl");
        cmd.arg("-D").arg(&self.data).arg("reload");
        run_checked(&mut cmd, "pg_ctl", "pg_ctl reload")
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

    /// Hands a file we wrote to the server's user (when we are root) and makes it
    /// readable by that user alone.
    fn give_to_server(&self, path: &Path) -> Result<(), String> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| format!("could not restrict {}: {e}", path.display()))?;
        if self.as_postgres {
            hand_to_postgres(path)?;
        }
        Ok(())
    }

    fn init(&mut self, options: &ClusterOptions) -> Result<(), String> {
        let mut cmd = self.server_command("initdb");
        cmd.arg("-D").arg(&self.data).args([
            "-U",
            USER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        ]);
        if !options.durable {
            // Durability is pointless for a throwaway cluster and syncing is slow.
            cmd.arg("--no-sync");
        }
        let out = run(&mut cmd, "initdb")?;
        if !out.status.success() {
            return Err(format!(
                "initdb failed for the throwaway PostgreSQL cluster: {}",
                last_lines(&output_text(&out), 4)
            ));
        }
        // Settings that do not depend on the port (which is chosen at each start
        // attempt and appended then).
        let socket_dir = self.root.to_string_lossy().into_owned();
        let socket_dir = if socket_dir.len() + "/.s.PGSQL.65535".len() <= MAX_SOCKET_PATH {
            socket_dir
        } else {
            // Too long for a Unix socket: TCP only (everything here uses TCP).
            String::new()
        };
        let mut settings = format!(
            "\n# reluvia throwaway cluster\n\
             listen_addresses = '{HOST}'\n\
             unix_socket_directories = '{}'\n\
             max_connections = {}\n\
             log_min_messages = warning\n",
            conf_quote(&socket_dir),
            options.max_connections.unwrap_or(100)
        );
        if !options.durable {
            settings.push_str("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n");
        }
        if let Some(zone) = &options.timezone {
            settings.push_str(&format!("timezone = '{}'\n", conf_quote(zone)));
        }
        for line in &options.conf_lines {
            settings.push_str(line);
            settings.push('\n');
        }
        self.append_conf(&settings)?;
        for (name, source) in &options.files {
            let target = self.data.join(name);
            std::fs::copy(source, &target).map_err(|e| {
                format!(
                    "could not copy {} to {}: {e}",
                    source.display(),
                    target.display()
                )
            })?;
            self.give_to_server(&target)?;
        }
        self.write_hba(options)
    }

    /// Appends to `postgresql.conf` (as root this keeps the file's owner and mode).
    fn append_conf(&self, text: &str) -> Result<(), String> {
        let conf = self.data.join("postgresql.conf");
        std::fs::OpenOptions::new()
            .append(true)
            .open(&conf)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(|e| format!("could not write {}: {e}", conf.display()))
    }

    /// Replaces `pg_hba.conf` with the options' (atomically: a running server may
    /// reload at any time); nothing to do without one.
    fn write_hba(&self, options: &ClusterOptions) -> Result<(), String> {
        let Some(hba) = &options.hba else {
            return Ok(());
        };
        let new = self.data.join("pg_hba.conf.new");
        std::fs::write(&new, hba).map_err(|e| format!("could not write {}: {e}", new.display()))?;
        self.give_to_server(&new)?;
        let hba_file = self.data.join("pg_hba.conf");
        std::fs::rename(&new, &hba_file)
            .map_err(|e| format!("could not replace {}: {e}", hba_file.display()))
    }

    /// Starts the server on a free port; retries with another port when the chosen
    /// one was taken between choosing it and the server binding it. The port goes
    /// into `postgresql.conf`, so the data directory says where its server listens.
    fn launch(&mut self) -> Result<(), String> {
        let log = self.log_file();
        let mut last_error = String::new();
        for _attempt in 0..3 {
            self.port = free_port()?;
            self.append_conf(&format!("port = {}\n", self.port))?;
            let mut cmd = self.server_command("pg_ctl");
            cmd.arg("-D")
                .arg(&self.data)
                .arg("-l")
                .arg(&log)
                .args(["-w", "-t", "60", "start"]);
            let out = run(&mut cmd, "pg_ctl")?;
            if out.status.success() {
                self.started = true;
                return Ok(());
            }
            // pg_ctl may have left a half-started postmaster behind.
            let _ = self.pg_ctl_stop("immediate");
            let log_text = std::fs::read_to_string(&log).unwrap_or_default();
            if log_text.contains("could not bind") || log_text.contains("already in use") {
                last_error = format!("port {} was taken", self.port);
                // The next attempt appends to the same log; start it afresh.
                let _ = std::fs::remove_file(&log);
                continue;
            }
            // A temporary cluster's directory is removed on drop: keep a copy of the log.
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

/// `dir` made absolute against the current directory (a shared cluster's
/// directory is handed to tools that run elsewhere).
fn absolute(dir: &Path) -> Result<PathBuf, String> {
    std::path::absolute(dir).map_err(|e| format!("bad directory {}: {e}", dir.display()))
}

/// Prepares `dir` for a new shared cluster: removes what is there (only an empty
/// directory or a PostgreSQL data directory: never anything else), creates it
/// private and, as root, hands it to the `postgres` user.
fn make_shared_dir(dir: &Path, as_postgres: bool) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() && !dir.join("PG_VERSION").is_file() {
                return Err(format!(
                    "{} is neither empty nor a PostgreSQL data directory: not removing it; choose another directory",
                    dir.display()
                ));
            }
            std::fs::remove_dir_all(dir)
                .map_err(|e| format!("could not remove the old cluster {}: {e}", dir.display()))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("could not read {}: {e}", dir.display())),
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("could not create {}: {e}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| format!("could not restrict {}: {e}", dir.display()))?;
    if as_postgres {
        hand_to_postgres(dir)?;
    }
    Ok(())
}

/// A lock file `DIR.lock` beside a shared cluster's directory, held while a process
/// checks, creates or stops the cluster. A lock whose process is gone is taken over.
struct DirLock {
    path: PathBuf,
}

impl DirLock {
    fn acquire(dir: &Path) -> Result<DirLock, String> {
        let mut name = dir.as_os_str().to_owned();
        name.push(".lock");
        let path = PathBuf::from(name);
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    let _ = write!(f, "{}", std::process::id());
                    return Ok(DirLock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = std::fs::read_to_string(&path).unwrap_or_default();
                    let alive = holder.trim().parse::<u32>().is_ok_and(|pid| {
                        pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists()
                    });
                    // An empty file is a lock being written, unless it is old.
                    let age = std::fs::metadata(&path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok())
                        .unwrap_or_default();
                    if !alive && (!holder.is_empty() || age > Duration::from_secs(10)) {
                        let _ = std::fs::remove_file(&path);
                        continue;
                    }
                    if Instant::now() > deadline {
                        return Err(format!(
                            "{} is held by process {}: remove it if that process is not starting a cluster",
                            path.display(),
                            holder.trim()
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => return Err(format!("could not create {}: {e}", path.display())),
            }
        }
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Finds the server's bin directory: `$RELUVIA_PG_BIN`, else the newest
/// `/usr/lib/postgresql/*/bin` with `initdb`, else `pg_config --bindir`.
fn find_bin_dir() -> Result<PathBuf, String> {
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
        hand_to_postgres(&root).map_err(cleanup)?;
    }
    Ok(root)
}

/// Gives `path` to the `postgres` user (we are root) and checks that user can write
/// it (a directory it cannot enter would fail later, less clearly).
fn hand_to_postgres(path: &Path) -> Result<(), String> {
    let out = Command::new("chown")
        .arg(format!("{USER}:"))
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("could not run chown: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "running as root, but could not hand {} to the `postgres` user ({}): install the PostgreSQL server package (e.g. `apt-get install postgresql`), which creates that user, or run as an ordinary user",
            path.display(),
            last_lines(&output_text(&out), 1)
        ));
    }
    let writable = Command::new("runuser")
        .args(["-u", USER, "--", "test", "-w"])
        .arg(path)
        .stdin(Stdio::null())
        .status();
    match writable {
        Ok(s) if s.success() => Ok(()),
        Ok(_) => Err(format!(
            "the `postgres` user cannot reach {}: use a directory it can enter, such as one in /tmp (for a temporary cluster, set TMPDIR)",
            path.display()
        )),
        Err(e) => Err(format!(
            "running as root needs `runuser` (util-linux) to start PostgreSQL as the `postgres` user: {e}"
        )),
    }
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

/// Runs `cmd`; when it fails, the error is `failure` and the last lines it printed.
fn run_checked(cmd: &mut Command, what: &str, failure: &str) -> Result<(), String> {
    let out = run(cmd, what)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{failure}: {}", last_lines(&output_text(&out), 3)))
    }
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
mod tests;
