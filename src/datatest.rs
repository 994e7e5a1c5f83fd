//! Data tests at run time: runs a test's query (its failing rows), counts them and
//! judges the count with the test's `severity`, `error_if` and `warn_if` (dbt-core
//! semantics), optionally keeping the failing rows in an audit table. A `unique`
//! or `not_null` test that the table's own constraints already guarantee is
//! answered from the catalog instead ([`Guaranteed`]); tests that can share a
//! scan of their relation are counted together ([`SharedScans`]).

mod shared;

use tokio_postgres::Client;

use crate::manifest::{relation_name, TestNode};
use crate::postgres::describe_db_error;
use crate::project::valid_condition;
use crate::results::{NodeFailure, Status, TestOutcome};

pub(crate) use shared::SharedScans;

/// Schema of stored failures: dbt's `<target schema>_dbt_test__audit`.
pub(crate) fn audit_schema(target_schema: &str) -> String {
    format!("{target_schema}_dbt_test__audit")
}

/// Runs test `t` whose compiled query is `sql`. With `store_in = Some(schema)`,
/// the failing rows are kept in `schema.<test name>` (replaced on every run); that
/// schema must exist.
pub(crate) async fn run(
    client: &mut Client,
    t: &TestNode,
    sql: &str,
    store_in: Option<&str>,
    guaranteed: Option<Guaranteed>,
) -> Result<TestOutcome, NodeFailure> {
    let (warn_if, error_if) = (t.warn_if(), t.error_if());
    for cond in [&warn_if, &error_if] {
        if !valid_condition(cond) {
            return Err(NodeFailure::Config {
                message: format!(
                    "{}: test {}: condition '{cond}' is not a comparison such as '!= 0' or '> 10'",
                    t.original_file_path, t.name
                ),
            });
        }
    }
    // dbt's test query: `fail_calc` (default count(*)) over the failing rows,
    // at most `limit` of them.
    let fail_calc = t
        .config
        .get("fail_calc")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("count(*)");
    let limit = match t.config.get("limit").and_then(serde_json::Value::as_u64) {
        Some(n) => format!("\nlimit {n}"),
        None => String::new(),
    };
    let mut statement = String::new();
    if let (Some(relation), None, "count(*)") = (guaranteed, store_in, fail_calc) {
        // No failing row can exist: judge a count of 0 with the test's conditions.
        statement = format!("select 0::bigint {warn_if}, 0::bigint {error_if}");
        let judged = client.query_one(statement.as_str(), &[]).await;
        if let Ok(row) = judged {
            log::debug!(
                "test {}: answered by the catalog ({} of {}.{} guarantees it)",
                t.name,
                relation.by,
                relation.schema,
                relation.name
            );
            let mut outcome = judge(t, 0, row.get(0), row.get(1), None);
            outcome.guaranteed_by = Some(relation.by);
            return Ok(outcome);
        }
    }
    let result = async {
        let source = match store_in {
            Some(schema) => {
                let table = t.alias.clone();
                let rel = relation_name(schema, &table);
                // The audit schema exists: the caller creates it before any test runs.
                let tx = client.transaction().await?;
                statement = format!("drop table if exists {rel}");
                tx.batch_execute(&statement).await?;
                statement = format!("create table {rel} as (\n{sql}{limit}\n)");
                // One statement (extended protocol): the test's SQL cannot add others.
                tx.execute(statement.as_str(), &[]).await?;
                tx.commit().await?;
                (rel.clone(), Some(format!("{schema}.{table}")))
            }
            None => (format!("(\n{sql}{limit}\n) dbt_internal_test"), None),
        };
        let failures = if fail_calc == "count(*)" {
            "count(*)::bigint".to_string()
        } else {
            format!("({fail_calc})::bigint")
        };
        statement = format!(
            "select {failures}, {fail_calc} {warn_if}, {fail_calc} {error_if}\nfrom {}",
            source.0
        );
        let row = client.query_one(statement.as_str(), &[]).await?;
        Ok::<_, tokio_postgres::Error>((
            row.get::<_, i64>(0),
            row.get::<_, bool>(1),
            row.get::<_, bool>(2),
            source.1,
        ))
    }
    .await;
    let (count, should_warn, should_error, stored_in) = result.map_err(|e| {
        // The count query puts the test's SQL after a header of two lines.
        let msg = describe_db_error(&e, &statement);
        NodeFailure::Sql {
            sqlstate: e.code().map(|c| c.code().to_string()),
            message: format!("{}: test {}: {msg}", t.original_file_path, t.name),
        }
    })?;
    Ok(judge(
        t,
        count.max(0) as u64,
        should_warn,
        should_error,
        stored_in,
    ))
}

/// The outcome of a test that found `failures` failing rows.
fn judge(
    t: &TestNode,
    failures: u64,
    should_warn: bool,
    should_error: bool,
    stored_in: Option<String>,
) -> TestOutcome {
    let (warn_if, error_if) = (t.warn_if(), t.error_if());
    let (status, message) = if t.severity() == "error" && should_error {
        (
            Status::Fail,
            format!(
                "Got {failures} result{}, configured to fail if {error_if}",
                plural(failures)
            ),
        )
    } else if should_warn {
        (
            Status::Warn,
            format!(
                "Got {failures} result{}, configured to warn if {warn_if}",
                plural(failures)
            ),
        )
    } else {
        (Status::Pass, "PASS".to_string())
    };
    TestOutcome {
        status,
        // dbt reports no failures for a test that passes, whatever its count
        // (one with `error_if: "<1"` passes on failing rows).
        failures: if status == Status::Pass { 0 } else { failures },
        message,
        stored_in,
        guaranteed_by: None,
    }
}

/// A table whose constraints guarantee that a `unique` or `not_null` test on one
/// of its columns finds no failing row.
pub(crate) struct Guaranteed {
    schema: String,
    name: String,
    /// The unique index's name, or `NOT NULL`.
    by: String,
}

/// Asks the catalog whether test `t`, on the table `schema.name`, cannot fail:
/// dbt's own `unique` (not one the project overrides) on a column that a valid,
/// non-partial unique index has as its only key (a primary key, a unique
/// constraint) — in the column's collation, or in any when the column's is
/// deterministic (equal means byte-equal then, as in `collate "C"`) — or dbt's
/// `not_null` on a column declared NOT NULL. Only the plain
/// test qualifies (no `where`), on a column named as an identifier. Reading the
/// table would give the same answer at the cost of scanning it; at scale that is
/// most of a build's tests (a raw table's primary key, a mart's constraint).
pub(crate) async fn guaranteed(
    client: &Client,
    t: &TestNode,
    schema: &str,
    name: &str,
) -> Option<Guaranteed> {
    let check = match (t.test_name.as_deref(), t.depends_on_macros.first()) {
        (Some("unique"), Some(m)) if m == "macro.dbt.test_unique" => "unique",
        (Some("not_null"), Some(m)) if m == "macro.dbt.test_not_null" => "not_null",
        _ => return None,
    };
    if t.config.contains_key("where") {
        return None;
    }
    let column = catalog_column_name(t.kwargs.get("column_name")?.as_str()?)?;
    // The table (not a view: it has no constraint to rely on) and the column;
    // what guarantees the answer: the unique index (a primary key's first) or
    // the column's NOT NULL.
    let sql = "select case when $4 = 'unique' then (
                   select ic.relname::text from pg_index i
                   join pg_class ic on ic.oid = i.indexrelid
                   where i.indrelid = c.oid and i.indisunique and i.indisvalid
                     and i.indpred is null and i.indnkeyatts = 1 and i.indkey[0] = a.attnum
                     and (i.indcollation[0] = a.attcollation
                          or coalesce((select l.collisdeterministic from pg_collation l
                                       where l.oid = a.attcollation), true))
                   order by i.indisprimary desc, ic.relname limit 1)
               when a.attnotnull then 'NOT NULL' end
           from pg_class c
           join pg_namespace n on n.oid = c.relnamespace
           join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
           where n.nspname = $1 and c.relname = $2 and a.attname = $3 and c.relkind in ('r', 'p')";
    let row = client
        .query_opt(sql, &[&schema, &name, &column, &check])
        .await
        .ok()??;
    let by: String = row.get::<_, Option<String>>(0)?;
    Some(Guaranteed {
        schema: schema.to_string(),
        name: name.to_string(),
        by,
    })
}

/// The catalog's name of a test's `column_name`: an unquoted identifier folds to
/// lower case as PostgreSQL folds it, a quoted one is taken as written; anything
/// else (an expression) is not a column the catalog can speak for.
fn catalog_column_name(column: &str) -> Option<String> {
    let column = column.trim();
    if let Some(inner) = column.strip_prefix('"').and_then(|c| c.strip_suffix('"')) {
        return (!inner.is_empty() && !inner.contains('"')).then(|| inner.to_string());
    }
    let mut chars = column.chars();
    let first = chars.next()?;
    ((first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$'))
    .then(|| column.to_ascii_lowercase())
}

fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
