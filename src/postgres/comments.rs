//! `persist_docs`: a node's descriptions as PostgreSQL comments on its relation
//! (`relation: true`) and on its columns (`columns: true`), written inside the
//! build's transaction once the new relation is in place, as dbt-postgres'
//! `persist_docs` writes them after a build.
//!
//! A relation built anew (a table, a view, a full rebuild) ends with exactly the
//! documented comments, as dbt's new relation has: an empty description removes
//! the comment carried over from the old relation. A relation that is kept (an
//! increment; a seed, which dbt truncates and reloads) gets the documented
//! comments and keeps its others. Columns are matched by their exact name, as
//! dbt-postgres matches them; a documented column the relation lacks is left out,
//! and so are a materialized view's columns (dbt-postgres cannot see them).
//! Statements are built by the server (`format(%I, %L)`).

use serde_json::Value as Json;
use tokio_postgres::Transaction;

use crate::manifest::{relation_name, Node};

use super::swap::Failure;

/// The `persist_docs` config of a node (its shape was checked at load).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct PersistDocs {
    relation: bool,
    columns: bool,
}

impl PersistDocs {
    fn of(node: &Node) -> PersistDocs {
        let get = |k: &str| {
            node.config
                .get("persist_docs")
                .and_then(|p| p.get(k))
                .and_then(Json::as_bool)
                .unwrap_or(false)
        };
        PersistDocs {
            relation: get("relation"),
            columns: get("columns"),
        }
    }
}

/// Writes the comments `persist_docs` asks for on `schema.name`, a relation of
/// kind `keyword` (`table`, `view`, `materialized view`); `rebuilt` when it was
/// built anew in this transaction.
pub(super) async fn persist(
    tx: &Transaction<'_>,
    node: &Node,
    schema: &str,
    name: &str,
    keyword: &str,
    rebuilt: bool,
) -> Result<(), Failure> {
    let docs = PersistDocs::of(node);
    if docs == PersistDocs::default() {
        return Ok(());
    }
    let relation = relation_name(schema, name);
    let mut statements: Vec<String> = Vec::new();
    if docs.relation && (rebuilt || !node.description.is_empty()) {
        let description = (!node.description.is_empty()).then_some(node.description.as_str());
        let row = tx
            .query_one(
                "select format('comment on %s %s is %s', $1::text, $2::text, coalesce(quote_literal($3::text), 'null'))",
                &[&keyword, &relation, &description],
            )
            .await?;
        statements.push(row.get(0));
    }
    // dbt-postgres reads a relation's columns from information_schema, which
    // leaves materialized views out: their columns never get comments (dbt warns
    // that the documented columns are "not present in the database").
    if docs.columns && keyword != "materialized view" {
        let names: Vec<&str> = node.columns.iter().map(|c| c.name.as_str()).collect();
        let descriptions: Vec<&str> = node
            .columns
            .iter()
            .map(|c| c.description.as_str())
            .collect();
        let rows = tx
            .query(
                "with documented as (select * from unnest($2::text[], $3::text[]) as d(name, description))
                 select format('comment on column %s.%I is %s', $1::text, a.attname,
                               coalesce(quote_literal(nullif(d.description, '')), 'null'))
                 from pg_attribute a
                 left join documented d on d.name = a.attname
                 where a.attrelid = $1::text::regclass and a.attnum > 0 and not a.attisdropped
                   and (d.name is not null or $4)
                 order by a.attnum",
                &[&relation, &names, &descriptions, &rebuilt],
            )
            .await?;
        statements.extend(rows.iter().map(|r| r.get::<_, String>(0)));
    }
    for statement in statements {
        tx.execute(statement.as_str(), &[])
            .await
            .map_err(|error| Failure::Db { error, statement })?;
    }
    Ok(())
}
