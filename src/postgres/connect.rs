//! Opening connections: the tokio-postgres configuration of the settings (TLS per
//! `sslmode` through [`super::tls`]; every session runs with `TimeZone = 'UTC'`,
//! the configured `statement_timeout`, `search_path` and `application_name`, set as
//! start-up parameters so they cost no round trip), retrying the first connection
//! while the server is unreachable or starting up, and how connection failures
//! become one-line messages that say what to check.

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
    let (mode, tls) = super::tls::connector(settings)?;
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
