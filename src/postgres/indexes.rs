//! Creating a table's or seed's configured `indexes` on its new relation, inside
//! the swap's transaction before the swap, as dbt-postgres creates them on its
//! intermediate table: `create [unique] index "<md5>" on <relation> [using
//! <type>] (<columns>)`, the columns as written (names or expressions), the name
//! the md5 of the index's columns, relation, uniqueness, type and the time (as
//! dbt names them, so a rebuilt index never collides with the old relation's
//! while both exist). Each statement is sent alone with the extended protocol.

use tokio_postgres::Transaction;

use crate::manifest::relation_name;
use crate::project::Index;

use super::swap::{Failure, Names};

/// Creates `indexes` on the new relation of a swap.
pub(super) async fn create(
    tx: &Transaction<'_>,
    names: &Names,
    indexes: &[Index],
) -> Result<(), Failure> {
    let relation = relation_name(&names.schema, &names.tmp);
    for index in indexes {
        let seed = format!(
            "{}_{}.{}_{}_{}_{}",
            index.columns.join("_"),
            names.schema,
            names.target,
            index.unique,
            index.method.as_deref().unwrap_or("None"),
            chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6f")
        );
        let name: String = tx.query_one("select md5($1)", &[&seed]).await?.get(0);
        let statement = format!(
            "create {unique}index \"{name}\" on {relation} {using}({columns})",
            unique = if index.unique { "unique " } else { "" },
            using = index
                .method
                .as_deref()
                .map(|m| format!("using {m} "))
                .unwrap_or_default(),
            columns = index.columns.join(", "),
        );
        tx.execute(statement.as_str(), &[])
            .await
            .map_err(|error| Failure::Db { error, statement })?;
    }
    Ok(())
}
