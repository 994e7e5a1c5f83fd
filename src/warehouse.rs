//! The warehouse: PostgreSQL connections.
//!
//! Owns how a connection is opened (TLS per `sslmode` through [`crate::tls`];
//! every session runs with `TimeZone = 'UTC'`, the configured
//! `statement_timeout`, `search_path` and `application_name`, set as start-up
//! parameters so they cost no round trip), retrying the first connection while
//! the server is unreachable or starting up, how connection failures become
//! one-line messages, the pool of at most `threads` connections reused across
//! models, and cancelling everything on an interrupt.
//!
//! Materializations and their swaps live in [`crate::swap`]; [`materialize`] is
//! the entry point the commands use.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_postgres::error::SqlState;
use tokio_postgres::{CancelToken, Client};

use crate::error::{Error, Result};
use crate::manifest::{quote_ident, Node};
use crate::settings::{Settings, SslMode};
pub use crate::swap::Built;

/// Set once an interrupt has cancelled the running queries, so that work between
/// queries (a swap backing off) stops too instead of carrying on.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Whether [`Pool::cancel_all`] was called in this process.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// The tokio-postgres configuration of `settings`.
fn config(settings: &Settings) -> tokio_postgres::Config {
    let mut cfg = tokio_postgres::Config::new();
    if settings.host.starts_with('/') {
        cfg.host_path(&settings.host);
    } else {
        cfg.host(&settings.host);
    }
    let mut options = format!(
        "-c TimeZone=UTC -c statement_timeout={}",
        settings.statement_timeout.saturating_mul(1000)
    );
    if let Some(path) = &settings.search_path {
        // Start-up options split on spaces; a backslash escapes one.
        let escaped = path.replace('\\', "\\\\").replace(' ', "\\ ");
        options.push_str(&format!(" -c search_path={escaped}"));
    }
    cfg.port(settings.port)
        .user(&settings.user)
        .dbname(&settings.dbname)
        .application_name(&settings.application_name)
        .connect_timeout(Duration::from_secs(settings.connect_timeout))
        .options(options);
    if settings.keepalives_idle > 0 {
        cfg.keepalives_idle(Duration::from_secs(settings.keepalives_idle));
    }
    if let Some(pw) = &settings.password {
        cfg.password(pw);
    }
    cfg
}

/// One attempt: `Err` for a settings problem (an unreadable CA file), `Ok(Err)`
/// for a failure to connect.
async fn try_connect(
    settings: &Settings,
) -> Result<std::result::Result<Client, tokio_postgres::Error>> {
    let (mode, tls) = crate::tls::connector(settings)?;
    let mut cfg = config(settings);
    cfg.ssl_mode(mode);
    Ok(match cfg.connect(tls).await {
        Ok((client, connection)) => {
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    log::debug!("connection closed: {e}");
                }
            });
            Ok(client)
        }
        Err(e) => Err(e),
    })
}

/// Opens one connection with the session settings every model relies on.
pub async fn connect(settings: &Settings) -> Result<Client> {
    try_connect(settings)
        .await?
        .map_err(|e| connect_error(settings, &e, None))
}

/// [`connect`], retrying transient failures (the server restarting or starting
/// up, a refused or timed-out connection, a temporary DNS failure) with growing
/// waits for up to `connect_retry_timeout` seconds, each retry announced through
/// `notify`. Authentication failures, missing databases and TLS failures are
/// final at once: waiting cannot fix them.
pub async fn connect_with_retry(
    settings: &Settings,
    notify: &(dyn Fn(&str) + Sync),
) -> Result<Client> {
    // The run's own interrupt handling starts once connected; until then a
    // Ctrl-C or SIGTERM (Meltano's --timeout) must still end the wait with exit 1
    // rather than kill the process mid-retry.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let interrupted =
        || Error::runtime("interrupted while connecting to PostgreSQL; nothing was run");
    let budget = Duration::from_secs(settings.connect_retry_timeout);
    let started = Instant::now();
    let mut delay = Duration::from_millis(250);
    let mut tries = 0u32;
    loop {
        tries += 1;
        let attempt = tokio::select! {
            r = try_connect(settings) => r?,
            _ = tokio::signal::ctrl_c() => return Err(interrupted()),
            _ = recv(&mut term) => return Err(interrupted()),
        };
        let e = match attempt {
            Ok(client) => return Ok(client),
            Err(e) => e,
        };
        let left = budget.saturating_sub(started.elapsed());
        if !is_transient(&e) || left.is_zero() {
            let retried = (tries > 1).then(|| (tries, started.elapsed()));
            return Err(connect_error(settings, &e, retried));
        }
        let wait = delay.min(left);
        notify(&format!(
            "cannot connect to PostgreSQL at {}:{} yet ({}); retrying in {:.1}s ({}s left of connect_retry_timeout)",
            settings.host,
            settings.port,
            cause(&e),
            wait.as_secs_f64(),
            left.as_secs()
        ));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = tokio::signal::ctrl_c() => return Err(interrupted()),
            _ = recv(&mut term) => return Err(interrupted()),
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// The next SIGTERM, or never when its handler could not be installed.
async fn recv(term: &mut Option<tokio::signal::unix::Signal>) {
    match term {
        Some(t) => {
            t.recv().await;
        }
        None => std::future::pending::<()>().await,
    }
}

/// Whether waiting a little could make a failed connection attempt succeed.
fn is_transient(e: &tokio_postgres::Error) -> bool {
    if let Some(db) = e.as_db_error() {
        let c = db.code();
        return *c == SqlState::CANNOT_CONNECT_NOW
            || *c == SqlState::TOO_MANY_CONNECTIONS
            || *c == SqlState::ADMIN_SHUTDOWN
            || *c == SqlState::CRASH_SHUTDOWN;
    }
    if e.is_closed() {
        return true; // the server hung up during start-up (shutting down)
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind as K;
            return match io.kind() {
                K::ConnectionRefused
                | K::ConnectionReset
                | K::ConnectionAborted
                | K::TimedOut
                | K::NotConnected
                | K::UnexpectedEof
                | K::BrokenPipe
                | K::AddrNotAvailable
                | K::HostUnreachable
                | K::NetworkUnreachable => true,
                // getaddrinfo's EAI_AGAIN; "Name or service not known" is a typo.
                _ => io
                    .to_string()
                    .contains("Temporary failure in name resolution"),
            };
        }
        source = s.source();
    }
    false
}

/// The innermost message of an error, without the wrappers' repetitions.
fn cause(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return db.message().to_string();
    }
    let mut last = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        last = s.to_string();
        source = s.source();
    }
    last
}

/// A connection failure as a one-line message saying what to check. `retried`:
/// how many tries over how long, when the failure outlasted the retries.
fn connect_error(
    s: &Settings,
    e: &tokio_postgres::Error,
    retried: Option<(u32, Duration)>,
) -> Error {
    let at = format!("{}:{}", s.host, s.port);
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        if *code == SqlState::INVALID_PASSWORD
            || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
        {
            return Error::runtime(format!(
                "authentication failed for user '{}' at {at}: {}; check the user and password settings (RELUVIA_TRANSFORM_PASSWORD or PG_ANALYTICS_PASSWORD)",
                s.user,
                db.message()
            ));
        }
        if *code == SqlState::INVALID_CATALOG_NAME {
            return Error::runtime(format!(
                "database '{}' does not exist at {at}; check the dbname setting",
                s.dbname
            ));
        }
        let after = retried
            .map(|(n, d)| format!(" after {n} tries over {}s", d.as_secs()))
            .unwrap_or_default();
        return Error::runtime(format!(
            "cannot connect to PostgreSQL at {at} as '{}'{after}: {}",
            s.user,
            db.message()
        ));
    }
    let text = e.to_string();
    if text.contains("password missing") {
        return Error::runtime(format!(
            "the server at {at} asks a password for user '{}' and none is set; set RELUVIA_TRANSFORM_PASSWORD or PG_ANALYTICS_PASSWORD",
            s.user
        ));
    }
    let cause = cause(e);
    if text.contains("TLS") || cause.contains("TLS") || cause.contains("certificate") {
        let mode = match s.sslmode {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        };
        return Error::runtime(format!(
            "TLS connection to PostgreSQL at {at} failed (sslmode {mode}): {cause}; check sslmode, sslrootcert and that the host name matches the server's certificate"
        ));
    }
    let after = retried
        .map(|(n, d)| format!(" after {n} tries over {}s", d.as_secs()))
        .unwrap_or_default();
    Error::runtime(format!(
        "cannot reach PostgreSQL at {at}{after}: {cause}; check the host and port settings and that the server is running"
    ))
}

/// Up to `max` connections, opened on demand and reused across models.
pub struct Pool {
    settings: Arc<Settings>,
    max: usize,
    inner: Mutex<PoolInner>,
    available: tokio::sync::Semaphore,
}

#[derive(Default)]
struct PoolInner {
    idle: Vec<Client>,
    opened: usize,
    /// Cancel tokens of every connection ever opened, for interrupts.
    tokens: Vec<CancelToken>,
}

impl Pool {
    pub fn new(settings: Arc<Settings>, max: usize) -> Pool {
        Pool {
            settings,
            max,
            inner: Mutex::default(),
            available: tokio::sync::Semaphore::new(max),
        }
    }

    /// Adds an already open connection (the one used to check the server).
    pub fn adopt(&self, client: Client) {
        let mut inner = self.inner.lock().unwrap();
        inner.tokens.push(client.cancel_token());
        inner.opened += 1;
        inner.idle.push(client);
    }

    /// A connection: an idle one, or a new one while fewer than `max` are open.
    pub async fn get(&self) -> Result<Client> {
        let permit = self
            .available
            .acquire()
            .await
            .map_err(|_| Error::runtime("connection pool closed"))?;
        permit.forget();
        let idle = {
            let mut inner = self.inner.lock().unwrap();
            loop {
                match inner.idle.pop() {
                    Some(c) if c.is_closed() => inner.opened -= 1,
                    other => break other,
                }
            }
        };
        if let Some(c) = idle {
            return Ok(c);
        }
        match connect(&self.settings).await {
            Ok(c) => {
                let mut inner = self.inner.lock().unwrap();
                inner.opened += 1;
                inner.tokens.push(c.cancel_token());
                debug_assert!(inner.opened <= self.max);
                Ok(c)
            }
            Err(e) => {
                self.available.add_permits(1);
                Err(e)
            }
        }
    }

    /// Returns a connection for reuse.
    pub fn put(&self, client: Client) {
        let mut inner = self.inner.lock().unwrap();
        if client.is_closed() {
            inner.opened -= 1;
        } else {
            inner.idle.push(client);
        }
        drop(inner);
        self.available.add_permits(1);
    }

    /// How many connections were opened in all.
    pub fn opened(&self) -> usize {
        self.inner.lock().unwrap().tokens.len()
    }

    /// Cancels the statement running on every connection (Ctrl-C, SIGTERM).
    pub async fn cancel_all(&self) {
        INTERRUPTED.store(true, Ordering::SeqCst);
        let tokens: Vec<CancelToken> = self.inner.lock().unwrap().tokens.clone();
        let Ok((_, tls)) = crate::tls::connector(&self.settings) else {
            return; // the connections were opened with these settings: cannot happen
        };
        for t in tokens {
            let _ = t.cancel_query(tls.clone()).await;
        }
    }
}

/// Server version string (`SHOW server_version`) and how the session is
/// encrypted, as `debug` shows them: `16.4 over TLSv1.3` or `16.4 without TLS`.
pub async fn server_version(client: &Client) -> Result<String> {
    let row = client
        .query_one(
            "select current_setting('server_version') || coalesce((select ' over ' || version from pg_stat_ssl where pid = pg_backend_pid() and ssl), ' without TLS')",
            &[],
        )
        .await
        .map_err(|e| Error::runtime(format!("cannot read the server version: {e}")))?;
    Ok(row.get(0))
}

/// Creates `schema` unless it exists (only needs CREATE when it does not).
pub async fn ensure_schema(
    client: &Client,
    schema: &str,
) -> std::result::Result<(), tokio_postgres::Error> {
    let exists = client
        .query_opt("select 1 from pg_namespace where nspname = $1", &[&schema])
        .await?
        .is_some();
    if exists {
        return Ok(());
    }
    match client
        .batch_execute(&format!(
            "create schema if not exists {}",
            quote_ident(schema)
        ))
        .await
    {
        Ok(()) => Ok(()),
        // Another invocation created it at the same moment.
        Err(e)
            if e.code() == Some(&SqlState::UNIQUE_VIOLATION)
                || e.code() == Some(&SqlState::DUPLICATE_SCHEMA) =>
        {
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Builds `node` from `sql` and swaps it in safely (see [`crate::swap`]); on
/// failure everything is rolled back and the error is one line. `notify` gets the
/// console lines of a swap that waits (for another invocation, for locks).
pub async fn materialize(
    client: &mut Client,
    node: &Node,
    sql: &str,
    suffix: &str,
    settings: &Settings,
    notify: &crate::swap::Notify<'_>,
) -> std::result::Result<Built, String> {
    let opts = crate::swap::Options::from_settings(settings);
    crate::swap::materialize(client, node, sql, suffix, &opts, notify).await
}

/// A database error as one line: the server's message, detail and hint, and for
/// errors inside a model's SQL the line of the compiled SQL they point at
/// (`statement` is the statement that failed; its first line is a header).
pub fn describe_db_error(e: &tokio_postgres::Error, statement: &str) -> String {
    let Some(db) = e.as_db_error() else {
        let cause = std::error::Error::source(e)
            .map(|c| c.to_string())
            .unwrap_or_default();
        return if cause.is_empty() {
            e.to_string()
        } else {
            format!("{e}: {cause}")
        };
    };
    let mut msg = db.message().to_string();
    if let Some(tokio_postgres::error::ErrorPosition::Original(pos)) = db.position() {
        let before: String = statement
            .chars()
            .take((*pos as usize).saturating_sub(1))
            .collect();
        let line = before.matches('\n').count(); // statement line minus the header
        if line > 0 {
            msg.push_str(&format!(" (compiled SQL line {line})"));
        }
    }
    if let Some(d) = db.detail() {
        msg.push_str(&format!("; {d}"));
    }
    if let Some(h) = db.hint() {
        msg.push_str(&format!("; hint: {h}"));
    }
    msg.replace('\n', " ")
}
