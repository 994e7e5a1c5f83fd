//! The warehouse: PostgreSQL connections and materializations.
//!
//! Owns how a connection is opened (every session runs with `TimeZone = 'UTC'`,
//! the configured `statement_timeout` and `application_name`, set as start-up
//! parameters so they cost no round trip), how connection failures become
//! one-line messages, the pool of at most `threads` connections reused across
//! models, and the `table`/`view` materializations.
//!
//! A materialization builds the new relation under a name unique to the
//! invocation, then renames the old one away, renames the new one in and drops
//! the old one, all in one transaction: readers see either the old relation or the
//! new one, never a missing or half-built one. A failure rolls everything back, so
//! the old relation keeps its OID and nothing is left behind; a killed process's
//! transaction is rolled back by the server the same way.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_postgres::error::SqlState;
use tokio_postgres::{CancelToken, Client, NoTls};

use crate::error::{Error, Result};
use crate::manifest::{quote_ident, relation_name, Materialization, Node};
use crate::settings::Settings;

/// Opens one connection with the session settings every model relies on.
pub async fn connect(settings: &Settings) -> Result<Client> {
    let mut cfg = tokio_postgres::Config::new();
    if settings.host.starts_with('/') {
        cfg.host_path(&settings.host);
    } else {
        cfg.host(&settings.host);
    }
    cfg.port(settings.port)
        .user(&settings.user)
        .dbname(&settings.dbname)
        .application_name(&settings.application_name)
        .connect_timeout(Duration::from_secs(settings.connect_timeout))
        .options(format!(
            "-c TimeZone=UTC -c statement_timeout={}",
            settings.statement_timeout.saturating_mul(1000)
        ));
    if let Some(pw) = &settings.password {
        cfg.password(pw);
    }
    let (client, connection) = cfg
        .connect(NoTls)
        .await
        .map_err(|e| connect_error(settings, &e))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            log::debug!("connection closed: {e}");
        }
    });
    Ok(client)
}

/// A connection failure as a one-line message saying what to check.
fn connect_error(s: &Settings, e: &tokio_postgres::Error) -> Error {
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
        return Error::runtime(format!(
            "cannot connect to PostgreSQL at {at} as '{}': {}",
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
    let cause = std::error::Error::source(e)
        .map(|c| c.to_string())
        .unwrap_or(text);
    Error::runtime(format!(
        "cannot reach PostgreSQL at {at}: {cause}; check the host and port settings and that the server is running"
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
        let tokens: Vec<CancelToken> = self.inner.lock().unwrap().tokens.clone();
        for t in tokens {
            let _ = t.cancel_query(NoTls).await;
        }
    }
}

/// Server version string (`SHOW server_version`).
pub async fn server_version(client: &Client) -> Result<String> {
    let row = client
        .query_one("select current_setting('server_version')", &[])
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

/// What a successful materialization reports.
#[derive(Debug, Clone)]
pub struct Built {
    /// Command tag as dbt shows it: `SELECT 42`, `CREATE VIEW`.
    pub message: String,
    pub code: String,
    pub rows: Option<u64>,
}

/// A name of at most 63 bytes: `base` cut at a character boundary, then `suffix`.
fn derived_name(base: &str, suffix: &str) -> String {
    let room = 63usize.saturating_sub(suffix.len());
    let mut end = base.len().min(room);
    while !base.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{}", &base[..end], suffix)
}

/// The relation kind of `schema.name`: `r` table, `v` view, `m` matview, or none.
async fn relkind(
    client: &impl tokio_postgres::GenericClient,
    schema: &str,
    name: &str,
) -> std::result::Result<Option<i8>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "select c.relkind from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = $1 and c.relname = $2",
            &[&schema, &name],
        )
        .await?;
    Ok(row.map(|r| r.get::<_, i8>(0)))
}

fn kind_keyword(kind: i8) -> &'static str {
    match kind as u8 {
        b'v' => "view",
        b'm' => "materialized view",
        b'f' => "foreign table",
        _ => "table",
    }
}

/// Builds `node` from `sql` and swaps it in atomically. `suffix` is unique to the
/// invocation (temporary and backup names derive from it). On failure, the
/// transaction is rolled back and the error is described in one line.
pub async fn materialize(
    client: &mut Client,
    node: &Node,
    sql: &str,
    suffix: &str,
) -> std::result::Result<Built, String> {
    let mut statement = String::new();
    match swap_in(client, node, sql, suffix, &mut statement).await {
        Ok(b) => Ok(b),
        Err(e) => Err(describe_db_error(&e, &statement)),
    }
}

async fn swap_in(
    client: &mut Client,
    node: &Node,
    sql: &str,
    suffix: &str,
    statement: &mut String,
) -> std::result::Result<Built, tokio_postgres::Error> {
    let sql = sql.trim().trim_end_matches(';').trim_end();
    let schema = &node.schema;
    let target = &node.alias;
    let tmp = derived_name(target, &format!("__rt_new_{suffix}"));
    let old = derived_name(target, &format!("__rt_old_{suffix}"));
    let tx = client.transaction().await?;
    // Serialise builds of this relation across concurrent invocations.
    *statement = "select pg_advisory_xact_lock(hashtextextended($1, 0))".into();
    tx.execute(
        statement.as_str(),
        &[&format!("reluvia-transform:{schema}.{target}")],
    )
    .await?;
    let (message, code, rows) = match node.materialized {
        Materialization::Table => {
            *statement = format!(
                "create table {} as (\n{sql}\n)",
                relation_name(schema, &tmp)
            );
            let n = tx.execute(statement.as_str(), &[]).await?;
            (format!("SELECT {n}"), "SELECT".to_string(), Some(n))
        }
        Materialization::View => {
            *statement = format!("create view {} as (\n{sql}\n)", relation_name(schema, &tmp));
            tx.batch_execute(statement).await?;
            ("CREATE VIEW".to_string(), "CREATE VIEW".to_string(), None)
        }
    };
    let existing = relkind(&tx, schema, target).await?;
    if let Some(kind) = existing {
        *statement = format!(
            "alter {} {} rename to {}",
            kind_keyword(kind),
            relation_name(schema, target),
            quote_ident(&old)
        );
        tx.batch_execute(statement).await?;
    }
    *statement = format!(
        "alter {} {} rename to {}",
        node.materialized.as_str(),
        relation_name(schema, &tmp),
        quote_ident(target)
    );
    tx.batch_execute(statement).await?;
    if let Some(kind) = existing {
        // No CASCADE: an object that depends on the old relation stops the swap
        // (and is named in the error) instead of being dropped silently.
        *statement = format!(
            "drop {} {}",
            kind_keyword(kind),
            relation_name(schema, &old)
        );
        tx.batch_execute(statement).await?;
    }
    statement.clear();
    tx.commit().await?;
    Ok(Built {
        message,
        code,
        rows,
    })
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
