//! Opening connections: the tokio-postgres configuration of the settings (TLS per
//! `sslmode` through [`super::tls`]; every session runs with `TimeZone = 'UTC'`,
//! the configured `statement_timeout`, `search_path` and `application_name`, set as
//! start-up parameters so they cost no round trip), retrying the first connection
//! while the server is unreachable or starting up, and how connection failures
//! become one-line messages that say what to check.
//!
//! Nothing waits forever: `connect_timeout` bounds each attempt as a whole (socket,
//! TLS and start-up handshake: tokio-postgres' own timeout covers the socket only,
//! so a proxy that accepts and stays silent would hang), and TCP keepalives
//! (`keepalives_idle`, `keepalives_interval`, `keepalives_count`) end a connection
//! whose server stopped answering in the middle of a query within minutes.

use std::time::{Duration, Instant};

use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

use crate::cancel::Cancel;
use crate::error::{Error, Result};
use crate::settings::{Settings, SslMode};

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
    // 0: the system's (or tokio-postgres') default, as libpq.
    cfg.keepalives(true);
    if settings.keepalives_idle > 0 {
        cfg.keepalives_idle(Duration::from_secs(settings.keepalives_idle));
    }
    if settings.keepalives_interval > 0 {
        cfg.keepalives_interval(Duration::from_secs(settings.keepalives_interval));
    }
    if settings.keepalives_count > 0 {
        cfg.keepalives_retries(settings.keepalives_count);
    }
    if let Some(pw) = &settings.password {
        cfg.password(pw);
    }
    cfg
}

/// Why one attempt to connect failed.
enum Failed {
    Pg(tokio_postgres::Error),
    /// No session within `connect_timeout`: the server (or something in between)
    /// did not complete the connection, TLS or start-up handshake.
    TimedOut,
}

/// One attempt, bounded by `connect_timeout` as a whole: `Err` for a settings
/// problem (an unreadable CA file), `Ok(Err)` for a failure to connect.
async fn try_connect(settings: &Settings) -> Result<std::result::Result<Client, Failed>> {
    let (mode, tls) = super::tls::connector(settings)?;
    let mut cfg = config(settings);
    cfg.ssl_mode(mode);
    let limit = Duration::from_secs(settings.connect_timeout);
    Ok(match tokio::time::timeout(limit, cfg.connect(tls)).await {
        Ok(Ok((client, connection))) => {
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    log::debug!("connection closed: {e}");
                }
            });
            Ok(client)
        }
        Ok(Err(e)) => Err(Failed::Pg(e)),
        Err(_) => Err(Failed::TimedOut),
    })
}

/// Opens one connection with the session settings every model relies on.
pub(crate) async fn connect(settings: &Settings) -> Result<Client> {
    try_connect(settings)
        .await?
        .map_err(|e| connect_error(settings, &e, None))
}

/// [`connect`], retrying transient failures (the server restarting or starting
/// up, a refused or timed-out connection, a temporary DNS failure) with growing
/// waits for up to `connect_retry_timeout` seconds, each retry announced through
/// `notify`. Authentication failures, missing databases and TLS failures are
/// final at once: waiting cannot fix them.
pub(crate) async fn connect_with_retry(
    settings: &Settings,
    cancel: &Cancel,
    notify: &(dyn Fn(&str) + Sync),
) -> Result<Client> {
    let interrupted = || Error::interrupted("while connecting to PostgreSQL; nothing was run");
    let budget = Duration::from_secs(settings.connect_retry_timeout);
    let started = Instant::now();
    let mut delay = Duration::from_millis(250);
    let mut tries = 0u32;
    loop {
        tries += 1;
        let attempt = tokio::select! {
            r = try_connect(settings) => r?,
            _ = cancel.cancelled() => return Err(interrupted()),
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
            _ = cancel.cancelled() => return Err(interrupted()),
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// Whether waiting a little could make a failed connection attempt succeed.
fn is_transient(e: &Failed) -> bool {
    let e = match e {
        Failed::TimedOut => return true,
        Failed::Pg(e) => e,
    };
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

/// The innermost message of a failure, without the wrappers' repetitions.
fn cause(e: &Failed) -> String {
    match e {
        Failed::TimedOut => "no answer within connect_timeout".to_string(),
        Failed::Pg(e) => pg_cause(e),
    }
}

fn pg_cause(e: &tokio_postgres::Error) -> String {
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

/// Whether `e` or one of its causes says `text` (tokio-postgres wraps the reason
/// of many failures: "invalid configuration" caused by "password missing").
fn says(e: &tokio_postgres::Error, text: &str) -> bool {
    let mut next: Option<&dyn std::error::Error> = Some(e);
    while let Some(err) = next {
        if err.to_string().contains(text) {
            return true;
        }
        next = err.source();
    }
    false
}

/// A connection failure as a one-line message saying what to check, naming the
/// settings at fault and where their values came from. `retried`: how many tries
/// over how long, when the failure outlasted the retries.
fn connect_error(s: &Settings, e: &Failed, retried: Option<(u32, Duration)>) -> Error {
    let at = format!("{}:{}", s.host, s.port);
    let after = retried
        .map(|(n, d)| format!(" after {n} tries over {}s", d.as_secs()))
        .unwrap_or_default();
    let e = match e {
        Failed::TimedOut => {
            return Error::runtime(format!(
                "timed out connecting to PostgreSQL at {at}{after}: no session within connect_timeout ({}s, from {}): the connection, TLS or start-up handshake got no answer; check the host and port settings (a proxy or load balancer with no live server behind it?), or raise connect_timeout",
                s.connect_timeout,
                s.origin("connect_timeout")
            ))
        }
        Failed::Pg(e) => e,
    };
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        if *code == SqlState::INVALID_PASSWORD
            || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
        {
            let password = match s.password {
                Some(_) => format!("the password (from {})", s.origin("password")),
                None => format!(
                    "that a password is needed (none is set; {})",
                    set_password()
                ),
            };
            return Error::runtime(format!(
                "authentication failed for user '{}' at {at}: {}; check the user (from {}) and {password}",
                s.user,
                db.message(),
                s.origin("user")
            ));
        }
        if *code == SqlState::INVALID_CATALOG_NAME {
            return Error::runtime(format!(
                "database '{}' does not exist at {at}; check the dbname setting (from {})",
                s.dbname,
                s.origin("dbname")
            ));
        }
        return Error::runtime(format!(
            "cannot connect to PostgreSQL at {at} as '{}'{after}: {}",
            s.user,
            db.message()
        ));
    }
    if says(e, "password missing") {
        return Error::runtime(format!(
            "the server at {at} asks a password for user '{}' and none is set; {}",
            s.user,
            set_password()
        ));
    }
    let cause = pg_cause(e);
    if e.to_string().contains("TLS") || cause.contains("TLS") || cause.contains("certificate") {
        let mode = match s.sslmode {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        };
        return Error::runtime(format!(
            "TLS connection to PostgreSQL at {at} failed (sslmode {mode}, from {}): {cause}; check sslmode, sslrootcert and that the host name matches the server's certificate",
            s.origin("sslmode")
        ));
    }
    Error::runtime(format!(
        "cannot reach PostgreSQL at {at}{after}: {cause}; check the host (from {}) and port (from {}) settings and that the server is running",
        s.origin("host"),
        s.origin("port")
    ))
}

/// Where a password can be set, for messages.
fn set_password() -> String {
    format!(
        "set {}, the url's password or a profiles.yml password",
        crate::settings::env_names("password").join(", ")
    )
}
