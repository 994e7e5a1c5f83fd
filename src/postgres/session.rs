//! A model's `session_settings` (checked when the project loaded,
//! [`crate::project::session_settings`]), applied at the start of the transaction
//! that builds it with `set_config(name, value, true)` — `SET LOCAL`: they hold for
//! its hooks and statements and end with its commit or rollback, so the pooled
//! connection goes back to the profile's settings. Names and values are bound.

use tokio_postgres::Transaction;

use crate::manifest::Node;

use super::swap::Failure;

/// Applies `node`'s settings inside `tx`; nothing is sent when it has none.
pub(super) async fn apply(tx: &Transaction<'_>, node: &Node) -> Result<(), Failure> {
    let settings = crate::project::session_settings(&node.config);
    if settings.is_empty() {
        return Ok(());
    }
    let (names, values): (Vec<String>, Vec<String>) = settings.into_iter().unzip();
    let statement = "select set_config(n, v, true) from unnest($1::text[], $2::text[]) as s(n, v)";
    tx.execute(statement, &[&names, &values])
        .await
        .map_err(|error| {
            Failure::Message(format!(
                "session_settings of {} ({}): {}; fix the value in its config",
                node.name,
                names
                    .iter()
                    .zip(&values)
                    .map(|(n, v)| format!("{n}: {v}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                super::describe_db_error(&error, "")
            ))
        })?;
    Ok(())
}
