//! The PostgreSQL adapter: connections ([`connect`]), TLS ([`tls`]), the pool of an
//! execution ([`pool`]), materializations with safe swaps ([`swap`]), increments
//! of incremental models ([`incremental`]), snapshots ([`snapshot`]),
//! materialized views ([`matview`]), comments ([`comments`]), a model's session
//! settings ([`session`]) and SQL header ([`header`]) and how
//! database errors read ([`db_error`]); plus the few catalog statements the
//! commands need (server version, target schemas).

mod comments;
mod connect;
mod contract;
mod db_error;
mod foreign_keys;
mod grants;
mod header;
mod hooks;
mod incremental;
mod indexes;
mod matview;
mod pool;
mod seed;
mod session;
mod snapshot;
mod swap;
mod tls;

use std::future::Future;

use tokio_postgres::error::SqlState;
use tokio_postgres::{CancelToken, Client};

use crate::cancel::Cancel;
use crate::error::{Error, Result};
use crate::manifest::{quote_ident, Materialization, Node};
use crate::results::{Built, NodeFailure};
use crate::settings::Settings;

pub(crate) use connect::{connect, connect_with_retry};
pub(crate) use db_error::describe_db_error;
pub(crate) use hooks::{DbJob, HookRender, Lend};
pub(crate) use pool::Pool;
pub(crate) use seed::SeedLoad;
pub(crate) use swap::{load_seed, SwapOptions};

/// Server version string (`SHOW server_version`) and how the session is
/// encrypted, as `debug` shows them: `16.4 over TLSv1.3` or `16.4 without TLS`.
pub(crate) async fn server_version(client: &Client) -> Result<String> {
    let row = client
        .query_one(
            "select current_setting('server_version') || coalesce((select ' over ' || version from pg_stat_ssl where pid = pg_backend_pid() and ssl), ' without TLS')",
            &[],
        )
        .await
        .map_err(|e| Error::runtime(format!("cannot read the server version: {e}")))?;
    Ok(row.get(0))
}

/// Builds a model: a materialized view as dbt-postgres decides ([`matview`]:
/// `full_refresh` rebuilds it), an increment when it is an incremental model
/// compiled with `is_incremental()` true ([`incremental`]), a snapshot's next
/// versions ([`snapshot`]), else a new relation swapped in ([`swap`]: first
/// builds and full refreshes of incremental models too).
pub(crate) async fn build_model(
    client: &mut Client,
    node: &Node,
    sql: &str,
    suffix: &str,
    full_refresh: bool,
    opts: &SwapOptions,
    notify: &swap::Notify<'_>,
) -> std::result::Result<Built, NodeFailure> {
    let built = if node.materialized == Materialization::MaterializedView {
        matview::build(client, node, sql, suffix, full_refresh, opts, notify).await
    } else if node.materialized == crate::manifest::Materialization::Snapshot {
        snapshot::build(client, node, sql, suffix, opts, notify).await
    } else if node.incremental {
        let r = incremental::increment(client, node, sql, suffix, opts, notify).await;
        swap::outcome(r, node, opts)
    } else {
        swap::materialize(client, node, sql, suffix, opts, notify).await
    };
    header::clear(client, node).await;
    built
}

/// Which of `relations` (schema, name) exist as tables: the incremental models
/// that compile with `is_incremental()` true.
pub(crate) async fn existing_tables(
    client: &Client,
    relations: &[(String, String)],
) -> Result<std::collections::BTreeSet<(String, String)>> {
    existing(
        client,
        relations,
        &["r", "p"],
        "the tables of the incremental models",
    )
    .await
}

/// Which of `(schema, name)` exist as a relation of any kind (for `--defer`).
pub(crate) async fn existing_relations(
    client: &Client,
    relations: &[(String, String)],
) -> Result<std::collections::BTreeSet<(String, String)>> {
    existing(
        client,
        relations,
        &["r", "p", "v", "m", "f"],
        "the relations to defer",
    )
    .await
}

async fn existing(
    client: &Client,
    relations: &[(String, String)],
    kinds: &[&str],
    what: &str,
) -> Result<std::collections::BTreeSet<(String, String)>> {
    let schemas: Vec<&str> = relations.iter().map(|(s, _)| s.as_str()).collect();
    let names: Vec<&str> = relations.iter().map(|(_, n)| n.as_str()).collect();
    let rows = client
        .query(
            "select n.nspname::text, c.relname::text
             from pg_class c join pg_namespace n on n.oid = c.relnamespace
             join unnest($1::text[], $2::text[]) as w(s, r) on w.s = n.nspname and w.r = c.relname
             where c.relkind::text = any($3)",
            &[&schemas, &names, &kinds],
        )
        .await
        .map_err(|e| {
            Error::runtime(format!(
                "cannot look up {what}: {}",
                describe_db_error(&e, "")
            ))
        })?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Creates `schema` unless it exists (only needs CREATE when it does not).
pub(crate) async fn ensure_schema(
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

/// Asks the server to cancel the statement running on the connection of `token`
/// (best effort: a connection that is idle or gone has nothing to cancel; a server
/// that does not answer within `connect_timeout` is given up on).
pub(crate) async fn cancel_query(token: &CancelToken, settings: &Settings) {
    let Ok((_, tls)) = tls::connector(settings) else {
        return; // the connection was opened with these settings: cannot happen
    };
    let limit = std::time::Duration::from_secs(settings.connect_timeout);
    let _ = tokio::time::timeout(limit, token.cancel_query(tls)).await;
}

/// Runs `work`, which uses `client`; if the invocation is cancelled first, cancels
/// the statement running on the server and fails with "interrupted <phase>".
pub(crate) async fn cancellable<T>(
    client: &Client,
    settings: &Settings,
    cancel: &Cancel,
    phase: &str,
    work: impl Future<Output = Result<T>>,
) -> Result<T> {
    let mut work = std::pin::pin!(work);
    tokio::select! {
        r = &mut work => r,
        _ = cancel.cancelled() => {
            cancel_query(&client.cancel_token(), settings).await;
            // The statement ends in an error once the server has cancelled it:
            // wait for that (within reason), so that nothing of ours is still
            // running when the process exits.
            let _ = tokio::time::timeout(std::time::Duration::from_secs(10), &mut work).await;
            Err(Error::interrupted(phase))
        }
    }
}

/// The columns (name, type name) and rows of one query, each value as the
/// text PostgreSQL sends (`show`: [`crate::preview`] types them as dbt does).
/// The statement is described first, then run as written.
pub(crate) type TextRows = (Vec<(String, String)>, Vec<Vec<Option<String>>>);

pub(crate) async fn fetch_text(
    client: &Client,
    sql: &str,
) -> std::result::Result<TextRows, tokio_postgres::Error> {
    let statement = client.prepare(sql).await?;
    let columns: Vec<(String, String)> = statement
        .columns()
        .iter()
        .map(|c| (c.name().to_string(), c.type_().name().to_string()))
        .collect();
    let mut rows = Vec::new();
    for m in client.simple_query(sql).await? {
        if let tokio_postgres::SimpleQueryMessage::Row(r) = m {
            rows.push(
                (0..columns.len())
                    .map(|i| r.get(i).map(str::to_string))
                    .collect(),
            );
        }
    }
    Ok((columns, rows))
}
