//! A model's `sql_header` (`{% call set_sql_header(config) %}` or the
//! `sql_header` config): SQL statements run inside the model's transaction just
//! before the statement that creates its relation (a table's, a view's, an
//! incremental model's increment, a snapshot's staging table), as dbt-postgres
//! emits them in front of that statement — so a `set local` holds for the build, a
//! `create temporary function` is there for the model's SQL, and a header that
//! fails fails the model before anything is swapped in. With an enforced contract
//! it also runs before the contract's column check, as dbt runs it there too.
//!
//! What a header leaves in the session (a `set search_path`, a temporary
//! function) is cleared once the model is done ([`clear`]), so that a pooled
//! connection does not carry it to the next node.

use tokio_postgres::{Client, Transaction};

use crate::manifest::Node;

use super::swap::Failure;

/// The header of `node`, when it has one that is not blank.
pub(super) fn of(node: &Node) -> Option<&str> {
    node.config
        .get("sql_header")
        .and_then(serde_json::Value::as_str)
        .filter(|h| !h.trim().is_empty())
}

/// Runs `node`'s header inside `tx`; nothing is sent when it has none.
pub(super) async fn run(tx: &Transaction<'_>, node: &Node) -> Result<(), Failure> {
    let Some(header) = of(node) else {
        return Ok(());
    };
    tx.batch_execute(header).await.map_err(|error| {
        Failure::Message(format!(
            "sql_header of {} ({}): {}; fix the statements of its set_sql_header block or sql_header config",
            node.name,
            node.original_file_path,
            super::describe_db_error(&error, header)
        ))
    })
}

/// Resets what a header may have left in the session of `client` (settings,
/// temporary objects), after `node`'s transaction ended.
pub(super) async fn clear(client: &Client, node: &Node) {
    if of(node).is_none() || client.is_closed() {
        return;
    }
    // Neither statement fails on a live session outside a transaction; on a
    // broken one the client is closed, and the pool opens a new connection
    // instead of reusing it.
    let _ = client.batch_execute("reset all; discard temp").await;
}
