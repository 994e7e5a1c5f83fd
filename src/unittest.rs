//! Unit tests at run time, as dbt-core 1.10's `unit` materialization runs them:
//! each `given` input becomes a CTE of its rows, typed with the columns of the
//! relation it stands for (columns not given are null); the tested model's SQL
//! runs on them; the expected rows are cast to the types of the model's own
//! columns; only the expected columns are compared, as multisets of their text
//! (so `3` and `3.00` differ, as in dbt). Everything
//! runs in one transaction that is rolled back: a unit test changes nothing.

use std::collections::BTreeMap;

use serde_json::{Map, Value as Json};
use tokio_postgres::Client;

use crate::manifest::{quote_ident, relation_name, TestNode, UnitSpec};
use crate::postgres::describe_db_error;
use crate::project::Rows;
use crate::results::{NodeFailure, Status, TestOutcome};

/// A relation's columns in order: (name, type as `format_type` spells it).
type Columns = Vec<(String, String)>;

/// Runs unit test `t` whose model SQL (every input a CTE reference) is
/// `model_sql`; returns its verdict and the SQL that ran.
pub(crate) async fn run(
    client: &mut Client,
    t: &TestNode,
    model_sql: &str,
) -> (Result<TestOutcome, NodeFailure>, String) {
    let Some(spec) = t.unit.as_deref() else {
        return (
            Err(NodeFailure::Config {
                message: format!("internal: {} is not a unit test", t.unique_id),
            }),
            String::new(),
        );
    };
    let mut sql = String::new();
    let outcome = match client.transaction().await {
        Ok(tx) => {
            let r = run_in(&tx, t, spec, model_sql, &mut sql).await;
            // Nothing a unit test did stays.
            let _ = tx.rollback().await;
            r
        }
        Err(e) => Err(sql_failure(t, &e, "")),
    };
    (outcome, sql)
}

async fn run_in(
    tx: &tokio_postgres::Transaction<'_>,
    t: &TestNode,
    spec: &UnitSpec,
    model_sql: &str,
    ran: &mut String,
) -> Result<TestOutcome, NodeFailure> {
    let model_name = spec.model.rsplit('.').next().unwrap_or(&spec.model);
    // The inputs the model reads, as CTEs.
    let mut ctes = Vec::new();
    for input in &spec.inputs {
        if !mentions(model_sql, &input.cte) || ctes.iter().any(|(c, _)| c == &input.cte) {
            continue;
        }
        let body = match &input.rows {
            Rows::Sql(s) => s.clone(),
            Rows::Dicts(rows) => {
                let (schema, name) = &input.relation;
                let columns = columns_of(tx, &relation_name(schema, name))
                    .await
                    .map_err(|e| sql_failure(t, &e, ""))?;
                if columns.is_empty() {
                    return Err(NodeFailure::Compile {
                        message: format!(
                            "unit test '{}': Not able to get columns for unit test '{model_name}' from relation \"{schema}\".\"{name}\" because the relation doesn't exist; build it first (input {})",
                            t.name, input.written
                        ),
                    });
                }
                fixture_sql(rows, &columns, &format!("'{model_name}'"))
                    .map_err(|message| compile(t, message))?
            }
        };
        ctes.push((input.cte.clone(), format!(" {} as (\n{body}\n)", input.cte)));
    }
    let main_sql = crate::render::inject_ctes(model_sql, &ctes);
    // The model's columns and their types, from an empty temporary table.
    let temp = format!("{}__dbt_tmp", t.name.chars().take(40).collect::<String>());
    let create = format!(
        "create temporary table {} as\nselect * from (\n{main_sql}\n) as __dbt_sbq\nwhere false\nlimit 0",
        quote_ident(&temp)
    );
    *ran = create.clone();
    tx.batch_execute(&create)
        .await
        .map_err(|e| sql_failure(t, &e, &create))?;
    let columns = columns_of(tx, &quote_ident(&temp))
        .await
        .map_err(|e| sql_failure(t, &e, ""))?;
    let types: BTreeMap<String, (String, String)> = columns
        .iter()
        .map(|(n, ty)| (n.to_lowercase(), (quote_ident(n), ty.clone())))
        .collect();
    // The expected columns: those of the first expected row, else the model's.
    let (expected_names, expected_sql) = match &spec.expect {
        Rows::Dicts(rows) if !rows.is_empty() => {
            let mut names = Vec::new();
            for k in rows[0].keys() {
                let Some((q, _)) = types.get(&k.to_lowercase()) else {
                    return Err(invalid_column(t, k, &columns, "expected output"));
                };
                names.push(q.clone());
            }
            let mut selects = Vec::new();
            for row in rows {
                let mut cols = Vec::new();
                for (k, v) in row {
                    let Some((q, ty)) = types.get(&k.to_lowercase()) else {
                        return Err(invalid_column(t, k, &columns, "expected output"));
                    };
                    cols.push(format!("{} as {q}", cast(v, ty)));
                }
                selects.push(format!("select {}", cols.join(", ")));
            }
            (names, selects.join("\nunion all\n"))
        }
        Rows::Dicts(_) => (
            columns.iter().map(|(n, _)| quote_ident(n)).collect(),
            "select * from dbt_internal_unit_test_actual\nlimit 0".to_string(),
        ),
        Rows::Sql(s) => (
            columns.iter().map(|(n, _)| quote_ident(n)).collect(),
            s.clone(),
        ),
    };
    let cols = expected_names.join(", ");
    let unit_sql = format!(
        "with dbt_internal_unit_test_actual as (\n  select {cols}, 'actual' as \"actual_or_expected\"\n  from (\n{main_sql}\n  ) _dbt_internal_unit_test_actual\n),\ndbt_internal_unit_test_expected as (\n  select {cols}, 'expected' as \"actual_or_expected\"\n  from (\n{expected_sql}\n  ) _dbt_internal_unit_test_expected\n)\nselect * from dbt_internal_unit_test_actual\nunion all\nselect * from dbt_internal_unit_test_expected"
    );
    *ran = unit_sql.clone();
    let as_text: Vec<String> = expected_names
        .iter()
        .map(|c| format!("{c}::text"))
        .collect();
    let rows_sql = format!(
        "select \"actual_or_expected\", {}\nfrom (\n{unit_sql}\n) dbt_internal_unit_test_rows",
        as_text.join(", ")
    );
    let rows = tx
        .query(rows_sql.as_str(), &[])
        .await
        .map_err(|e| sql_failure(t, &e, &rows_sql))?;
    let mut actual: Vec<Vec<Option<String>>> = Vec::new();
    let mut expected: Vec<Vec<Option<String>>> = Vec::new();
    for r in &rows {
        let which: String = r.get(0);
        let values: Vec<Option<String>> = (1..r.len()).map(|i| r.get(i)).collect();
        if which == "actual" {
            actual.push(values);
        } else {
            expected.push(values);
        }
    }
    // Compared as text, as dbt's diff compares the values it fetched: 3 and
    // 3.00 of a numeric column differ.
    actual.sort();
    expected.sort();
    let differs = actual != expected;
    if !differs {
        return Ok(TestOutcome {
            status: Status::Pass,
            failures: 0,
            message: String::new(),
            stored_in: None,
            guaranteed_by: None,
        });
    }
    let header: Vec<String> = expected_names
        .iter()
        .map(|q| q.trim_matches('"').replace("\"\"", "\""))
        .collect();
    Ok(TestOutcome {
        status: Status::Fail,
        failures: 1,
        message: format!(
            "\n\nactual differs from expected:\n\n{}\n",
            render_diff(&header, actual, expected)
        ),
        stored_in: None,
        guaranteed_by: None,
    })
}

/// Whether `sql` names the CTE `cte` (not merely a longer name starting so).
fn mentions(sql: &str, cte: &str) -> bool {
    sql.match_indices(cte).any(|(i, _)| {
        let next = sql[i + cte.len()..].chars().next();
        !next.is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

/// dbt's `get_fixture_sql`: one `select` per row with every column of the
/// relation, the given values cast to its types and the others null; `limit 0`
/// without rows.
fn fixture_sql(
    rows: &[Map<String, Json>],
    columns: &Columns,
    fixture_name: &str,
) -> Result<String, String> {
    let lower: BTreeMap<String, &(String, String)> =
        columns.iter().map(|c| (c.0.to_lowercase(), c)).collect();
    let mut selects = Vec::new();
    for row in rows {
        let mut given: BTreeMap<String, String> = BTreeMap::new();
        for (k, v) in row {
            let k = k.to_lowercase();
            let Some((_, ty)) = lower.get(&k) else {
                return Err(format!(
                    "Invalid column name: '{k}' in unit test fixture for {fixture_name}. Accepted columns for {fixture_name} are: {}",
                    accepted(columns)
                ));
            };
            given.insert(k, cast(v, ty));
        }
        let cols: Vec<String> = columns
            .iter()
            .map(|(n, ty)| {
                let v = given
                    .get(&n.to_lowercase())
                    .cloned()
                    .unwrap_or_else(|| format!("cast(null as {ty})"));
                format!("{v} as {}", quote_ident(n))
            })
            .collect();
        selects.push(format!("select {}", cols.join(", ")));
    }
    if selects.is_empty() {
        let cols: Vec<String> = columns
            .iter()
            .map(|(n, ty)| format!("cast(null as {ty}) as {}", quote_ident(n)))
            .collect();
        return Ok(format!("select {}\nlimit 0", cols.join(", ")));
    }
    Ok(selects.join("\nunion all\n"))
}

/// A fixture value as dbt's `format_row` writes it: a string quoted (a varchar's
/// length dropped so nothing is truncated), null as `null`, others as written,
/// cast to the column's type.
fn cast(v: &Json, ty: &str) -> String {
    match v {
        Json::Null => format!("cast(null as {ty})"),
        Json::String(s) => {
            let ty = if ty.contains("varying") {
                ty.split('(').next().unwrap_or(ty)
            } else {
                ty
            };
            format!("cast('{}' as {ty})", s.replace('\'', "''"))
        }
        Json::Bool(b) => format!("cast({b} as {ty})"),
        Json::Number(n) => format!("cast({n} as {ty})"),
        other => format!("cast('{}' as {ty})", other.to_string().replace('\'', "''")),
    }
}

fn accepted(columns: &Columns) -> String {
    let names: Vec<String> = columns
        .iter()
        .map(|(n, _)| format!("'{}'", n.to_lowercase()))
        .collect();
    format!("[{}]", names.join(", "))
}

fn invalid_column(t: &TestNode, k: &str, columns: &Columns, what: &str) -> NodeFailure {
    compile(
        t,
        format!(
            "Invalid column name: '{}' in unit test fixture for {what}. Accepted columns for {what} are: {}",
            k.to_lowercase(),
            accepted(columns)
        ),
    )
}

fn compile(t: &TestNode, message: String) -> NodeFailure {
    NodeFailure::Compile {
        message: format!("{}: unit test {}: {message}", t.original_file_path, t.name),
    }
}

fn sql_failure(t: &TestNode, e: &tokio_postgres::Error, statement: &str) -> NodeFailure {
    NodeFailure::Sql {
        sqlstate: e.code().map(|c| c.code().to_string()),
        message: format!(
            "{}: unit test {}: {}; there may be an error in the unit test definition: check the data types",
            t.original_file_path,
            t.name,
            describe_db_error(e, statement)
        ),
    }
}

/// The columns of relation `name` (written as SQL names it: quoted, qualified
/// or not), in order; none when it does not exist.
async fn columns_of(
    tx: &tokio_postgres::Transaction<'_>,
    name: &str,
) -> Result<Columns, tokio_postgres::Error> {
    let rows = tx
        .query(
            "select a.attname::text, format_type(a.atttypid, a.atttypmod)
             from pg_attribute a
             where a.attrelid = pg_catalog.to_regclass($1) and a.attnum > 0 and not a.attisdropped
             order by a.attnum",
            &[&name],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// The rows of both sides, sorted, as a table: rows only in the actual result
/// marked `+++`, rows only in the expected `---`, rows in both unmarked (the
/// marks of dbt's diff).
fn render_diff(
    header: &[String],
    mut actual: Vec<Vec<Option<String>>>,
    mut expected: Vec<Vec<Option<String>>>,
) -> String {
    actual.sort();
    expected.sort();
    let mut lines: Vec<(&str, Vec<String>)> = Vec::new();
    let show = |r: &[Option<String>]| -> Vec<String> {
        r.iter()
            .map(|v| v.clone().unwrap_or_else(|| "NULL".to_string()))
            .collect()
    };
    let (mut i, mut j) = (0, 0);
    while i < actual.len() || j < expected.len() {
        match (actual.get(i), expected.get(j)) {
            (Some(a), Some(e)) if a == e => {
                lines.push(("", show(a)));
                i += 1;
                j += 1;
            }
            (Some(a), Some(e)) if a < e => {
                lines.push(("+++", show(a)));
                i += 1;
            }
            (Some(_), Some(e)) | (None, Some(e)) => {
                lines.push(("---", show(e)));
                j += 1;
            }
            (Some(a), None) => {
                lines.push(("+++", show(a)));
                i += 1;
            }
            (None, None) => break,
        }
    }
    // An expected row next to an actual one is shown as one changed row,
    // `→` with `expected→actual` in the cells that differ, as dbt's diff does.
    let mut paired: Vec<(&str, Vec<String>)> = Vec::new();
    let mut k = 0;
    while k < lines.len() {
        let pair = lines.get(k + 1).filter(|next| {
            let marks = (lines[k].0, next.0);
            matches!(marks, ("---", "+++") | ("+++", "---"))
        });
        match pair {
            Some(next) => {
                let (exp, act) = if lines[k].0 == "---" {
                    (&lines[k].1, &next.1)
                } else {
                    (&next.1, &lines[k].1)
                };
                let cells = exp
                    .iter()
                    .zip(act)
                    .map(|(e, a)| {
                        if e == a {
                            e.clone()
                        } else {
                            format!("{e}→{a}")
                        }
                    })
                    .collect();
                paired.push(("→", cells));
                k += 2;
            }
            None => {
                paired.push(lines[k].clone());
                k += 1;
            }
        }
    }
    let lines = paired;
    let mut widths: Vec<usize> = std::iter::once(2)
        .chain(header.iter().map(|h| h.chars().count()))
        .collect();
    for (mark, cells) in &lines {
        widths[0] = widths[0].max(mark.chars().count());
        for (k, c) in cells.iter().enumerate() {
            widths[k + 1] = widths[k + 1].max(c.chars().count());
        }
    }
    let row = |mark: &str, cells: &[String]| -> String {
        let pad =
            |c: &str, w: usize| format!("{c}{}", " ".repeat(w.saturating_sub(c.chars().count())));
        let mut parts = vec![pad(mark, widths[0])];
        for (k, c) in cells.iter().enumerate() {
            parts.push(pad(c, widths[k + 1]));
        }
        parts.join(",").trim_end().to_string()
    };
    let mut out = vec![row("@@", header)];
    for (mark, cells) in &lines {
        out.push(row(mark, cells));
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture_rows_fill_missing_columns_with_typed_nulls() {
        let cols: Columns = vec![
            ("id".into(), "integer".into()),
            ("name".into(), "character varying(5)".into()),
        ];
        let mut row = Map::new();
        row.insert("ID".into(), Json::from(1));
        let sql = fixture_sql(&[row], &cols, "'m'").unwrap();
        assert_eq!(
            sql,
            "select cast(1 as integer) as \"id\", cast(null as character varying(5)) as \"name\""
        );
        let mut bad = Map::new();
        bad.insert("nope".into(), Json::from(1));
        assert!(fixture_sql(&[bad], &cols, "'m'")
            .unwrap_err()
            .starts_with("Invalid column name: 'nope'"));
        assert_eq!(
            cast(&Json::from("it's"), "character varying(3)"),
            "cast('it''s' as character varying)"
        );
    }

    #[test]
    fn cte_names_match_whole_words() {
        assert!(mentions("select * from __dbt__cte__a", "__dbt__cte__a"));
        assert!(!mentions("select * from __dbt__cte__ab", "__dbt__cte__a"));
    }

    #[test]
    fn diff_marks_added_and_missing_rows() {
        let v = |s: &str| Some(s.to_string());
        let d = render_diff(
            &["id".into(), "x".into()],
            vec![vec![v("1"), v("a")], vec![v("2"), v("b")]],
            vec![vec![v("1"), v("a")], vec![v("2"), None]],
        );
        assert_eq!(d, "@@,id,x\n  ,1 ,a\n→ ,2 ,NULL→b");
        let d = render_diff(&["id".into()], vec![vec![v("1")]], Vec::new());
        assert_eq!(d, "@@ ,id\n+++,1");
    }
}
