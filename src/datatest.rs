//! Data tests at run time: runs a test's query (its failing rows), counts them and
//! judges the count with the test's `severity`, `error_if` and `warn_if` (dbt-core
//! semantics), optionally keeping the failing rows in an audit table.

use tokio_postgres::Client;

use crate::manifest::{relation_name, TestNode};
use crate::postgres::describe_db_error;
use crate::project::valid_condition;
use crate::results::{NodeFailure, Status, TestOutcome};

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
    let failures = count.max(0) as u64;
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
    Ok(TestOutcome {
        status,
        failures,
        message,
        stored_in,
    })
}

fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
