//! Enforced model contracts at build time, as dbt-postgres enforces them.
//!
//! Before a contracted model is built, the columns of its SQL are compared with
//! the declared ones: the server describes both queries (the model's SQL, and one
//! `cast(null as <data_type>)` per declared column), and each column's type is
//! named as psycopg2 names the type OID it reports ([`type_name`]), so `int2` and
//! `int4` are both `INTEGER`, `text` and `varchar` both `TEXT`, and precision and
//! length never count. Any difference fails the node with dbt's table.
//!
//! A contracted table is then built under the temporary name of the safe swap,
//! so a row that breaks a constraint fails the build and the old relation stays:
//! as `create table … as select cast(<column> as <data_type>) …` in the declared
//! column order (which PostgreSQL may run with parallel workers), then one
//! `alter table` adding the declared constraints. Where that could differ from
//! dbt-postgres' way (a type an explicit cast reads differently, a `custom`
//! constraint) and whenever it fails, the table is created with the declared
//! columns, types and constraints and the rows inserted, as dbt-postgres does,
//! so a failing model reports dbt's own error.

use tokio_postgres::Transaction;

use crate::manifest::{quote_ident, relation_name, Node};
use crate::project::{Constraint, ConstraintKind};

use super::swap::Failure;

/// The name psycopg2 gives a type OID (its `string_types`), with dbt's alias of
/// `STRING` as `TEXT`; an OID psycopg2 does not know reads as dbt shows it.
pub(super) fn type_name(oid: u32) -> String {
    let name = match oid {
        16 => "BOOLEAN",
        17 => "BINARY",
        18 | 19 | 25 | 1042 | 1043 => "TEXT",
        20 => "LONGINTEGER",
        21 | 23 => "INTEGER",
        26 => "ROWID",
        114 => "JSON",
        199 => "JSONARRAY",
        651 => "CIDRARRAY",
        700 | 701 => "FLOAT",
        704 | 1186 => "INTERVAL",
        705 => "UNKNOWN",
        1000 => "BOOLEANARRAY",
        1001 => "BINARYARRAY",
        1002 | 1003 | 1009 | 1014 | 1015 => "STRINGARRAY",
        1005..=1007 => "INTEGERARRAY",
        1013 | 1028 => "ROWIDARRAY",
        1016 => "LONGINTEGERARRAY",
        1021 | 1022 => "FLOATARRAY",
        1040 => "MACADDRARRAY",
        1041 => "INETARRAY",
        1082 => "DATE",
        1083 | 1266 => "TIME",
        1114 => "DATETIME",
        1115 => "DATETIMEARRAY",
        1182 => "DATEARRAY",
        1183 | 1270 => "TIMEARRAY",
        1184 => "DATETIMETZ",
        1185 => "DATETIMETZARRAY",
        1187 => "INTERVALARRAY",
        1231 => "DECIMALARRAY",
        1700 => "DECIMAL",
        3802 => "JSONB",
        3807 => "JSONBARRAY",
        // The range types: psycopg2 names int4range, numrange and int8range
        // after their Python class, `type`.
        3904 | 3906 | 3926 => "type",
        3905 | 3907 | 3927 => "typeARRAY",
        3908 => "tsrange",
        3909 => "tsrangeARRAY",
        3910 => "tstzrange",
        3911 => "tstzrangeARRAY",
        3912 => "daterange",
        3913 => "daterangeARRAY",
        other => return format!("unknown type_code {other}"),
    };
    name.to_string()
}

/// A name as PostgreSQL reads it unquoted in DDL (dbt writes the declared names
/// bare): folded to lower case, or taken as it is when written in double quotes.
pub(super) fn fold_ident(name: &str) -> String {
    match name.strip_prefix('"').and_then(|n| n.strip_suffix('"')) {
        Some(inner) if !inner.is_empty() => inner.replace("\"\"", "\""),
        _ => name.to_ascii_lowercase(),
    }
}

/// A declared name, quoted for the SQL we write.
fn ident(name: &str) -> String {
    quote_ident(&fold_ident(name))
}

/// A declared data type as the DDL gets it: with `alias_types`, dbt's `string`
/// is `TEXT`.
fn data_type(node: &Node, t: &str) -> String {
    if node.contract.alias_types && t.to_uppercase() == "STRING" {
        "TEXT".to_string()
    } else {
        t.to_string()
    }
}

/// Where the contract is declared, for messages.
fn declared_in(node: &Node) -> String {
    match &node.properties_at {
        Some((file, line)) if *line > 0 => format!("{file} line {line}"),
        Some((file, _)) => file.clone(),
        None => "a property file".to_string(),
    }
}

/// Python's repr of a list of strings, as dbt's messages print one.
fn py_list(names: &[&str]) -> String {
    let items: Vec<String> = names.iter().map(|n| crate::project::py_str(n)).collect();
    format!("[{}]", items.join(", "))
}

/// Compares the columns of `sql` with `node`'s declared columns, as dbt's
/// `assert_columns_equivalent` does; a difference is a [`Failure::Contract`].
pub(super) async fn check(tx: &Transaction<'_>, node: &Node, sql: &str) -> Result<(), Failure> {
    let declared = node.declared_columns();
    let hint = format!(
        "Fix the model's SQL or the columns declared in {}; nothing was built, {}.{} was left as it was.",
        declared_in(node),
        node.schema,
        node.alias
    );
    if declared.is_empty() {
        return Err(Failure::Contract(format!(
            "This model has an enforced contract, and its 'columns' specification is missing\nDeclare each of its columns with a data_type under `columns:` of its entry in a property file (models: - name: {}); nothing was built, {}.{} was left as it was.",
            node.name, node.schema, node.alias
        )));
    }
    let untyped: Vec<&str> = declared
        .iter()
        .filter(|c| c.data_type.is_none())
        .map(|c| c.name.as_str())
        .collect();
    if !untyped.is_empty() {
        return Err(Failure::Contract(format!(
            "Contracted models require data_type to be defined for each column. Please ensure that the column name and data_type are defined within the YAML configuration for the {} column(s).\n{hint}",
            py_list(&untyped)
        )));
    }

    // The model's columns, without running it: the server describes the query.
    let statement = format!("select * from (\n{sql}\n) as __dbt_sbq\nwhere false\nlimit 0");
    let described = tx
        .prepare(&statement)
        .await
        .map_err(|error| Failure::Db { error, statement })?;
    let of_sql: Vec<(String, String)> = described
        .columns()
        .iter()
        .map(|c| (c.name().to_string(), type_name(c.type_().oid())))
        .collect();

    // The declared columns, as the server reads their names and types.
    let casts: Vec<String> = declared
        .iter()
        .map(|c| {
            format!(
                "cast(null as {}) as {}",
                data_type(node, c.data_type.as_deref().unwrap_or_default()),
                ident(&c.name)
            )
        })
        .collect();
    // A savepoint, so that a type the server does not take can be looked for.
    tx.batch_execute("savepoint rt_contract").await?;
    let described = tx.prepare(&format!("select {}", casts.join(", "))).await;
    let of_yaml: Vec<(String, String)> = match described {
        Ok(s) => {
            tx.batch_execute("release savepoint rt_contract").await?;
            s.columns()
                .iter()
                .map(|c| (c.name().to_string(), type_name(c.type_().oid())))
                .collect()
        }
        Err(e) => {
            // Name the column whose type the server does not take.
            let mut culprit = "the declared data types".to_string();
            for (c, cast) in declared.iter().zip(&casts) {
                tx.batch_execute("rollback to savepoint rt_contract")
                    .await?;
                if tx.prepare(&format!("select {cast}")).await.is_err() {
                    culprit = format!(
                        "the data_type '{}' of column {}",
                        c.data_type.as_deref().unwrap_or_default(),
                        c.name
                    );
                    break;
                }
            }
            return Err(Failure::Contract(format!(
                "PostgreSQL does not take {culprit}: {}; write a type it knows in {}; nothing was built, {}.{} was left as it was",
                super::describe_db_error(&e, ""),
                declared_in(node),
                node.schema,
                node.alias
            )));
        }
    };

    if let Some(table) = mismatches(&of_yaml, &of_sql) {
        return Err(Failure::Contract(format!(
            "This model has an enforced contract that failed.\nPlease ensure the name, data_type, and number of columns in your contract match the columns in your model's definition.\n\n{table}\n{hint}"
        )));
    }
    Ok(())
}

/// dbt's verdict on the two column lists (`(name, type)` each): `None` when they
/// match (same count; every column of the SQL declared, by exact name, with the
/// same type), else dbt's table of mismatches, sorted by column name.
fn mismatches(yaml: &[(String, String)], sql: &[(String, String)]) -> Option<String> {
    let same = yaml.len() == sql.len()
        && sql.iter().all(|(n, t)| {
            yaml.iter()
                .find(|(yn, _)| yn == n)
                .is_some_and(|(_, yt)| yt == t)
        });
    if same {
        return None;
    }
    let mut rows: Vec<[String; 4]> = Vec::new();
    for (name, t) in sql {
        match yaml.iter().find(|(yn, _)| yn == name) {
            Some((_, yt)) if yt == t => {}
            Some((_, yt)) => rows.push([
                name.clone(),
                t.clone(),
                yt.clone(),
                "data type mismatch".into(),
            ]),
            None => rows.push([
                name.clone(),
                t.clone(),
                String::new(),
                "missing in contract".into(),
            ]),
        }
    }
    for (name, t) in yaml {
        if !sql.iter().any(|(n, _)| n == name) {
            rows.push([
                name.clone(),
                String::new(),
                t.clone(),
                "missing in definition".into(),
            ]);
        }
    }
    // Python's sort of the column names: stable, by code point.
    rows.sort_by(|a, b| a[0].cmp(&b[0]));
    Some(table(
        &[
            "column_name",
            "definition_type",
            "contract_type",
            "mismatch_reason",
        ],
        &rows,
    ))
}

/// A table as agate prints it (dbt's mismatch table): cells padded to the
/// widest, cut to 50 characters with `...`.
fn table(header: &[&str; 4], rows: &[[String; 4]]) -> String {
    let cut = |s: &str| -> String {
        if s.chars().count() > 50 {
            format!("{}...", s.chars().take(47).collect::<String>())
        } else {
            s.to_string()
        }
    };
    let rows: Vec<[String; 4]> = rows.iter().map(|r| r.clone().map(|c| cut(&c))).collect();
    let widths: Vec<usize> = (0..4)
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([header[i].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
            .collect();
        format!("| {} |", padded.join(" | "))
    };
    let mut out = vec![
        line(header.iter().map(|h| h.to_string()).collect()),
        line(widths.iter().map(|w| "-".repeat(*w)).collect()),
    ];
    out.extend(rows.into_iter().map(|r| line(r.to_vec())));
    out.join("\n") + "\n"
}

/// A named model-level constraint that builds an index (primary key, unique, a
/// custom one that might): its index name must be unique in the schema, and the
/// old relation holds it until the swap, so it is created under a temporary name
/// and renamed once the old relation is gone.
fn needs_temporary_name(c: &Constraint) -> bool {
    matches!(
        c.kind,
        ConstraintKind::PrimaryKey | ConstraintKind::Unique | ConstraintKind::Custom
    )
}

/// A constraint as dbt-postgres renders it in the DDL (column-level: after the
/// column's type; model-level: as a table constraint).
fn render(c: &Constraint, model_level: Option<&str>) -> String {
    let expr = c.expression.as_deref().unwrap_or("");
    let cols = |names: &[String]| {
        names
            .iter()
            .map(|n| ident(n))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let references = || match (&c.to_relation, c.to_columns.is_empty()) {
        (Some(rel), false) => format!("references {rel} ({})", cols(&c.to_columns)),
        _ => format!("references {expr}"),
    };
    let with_expr = |word: &str| format!("{word} {expr}").trim().to_string();
    let Some(name) = model_level else {
        return match c.kind {
            ConstraintKind::Check => format!("check ({expr})"),
            ConstraintKind::NotNull => with_expr("not null"),
            ConstraintKind::Unique => with_expr("unique"),
            ConstraintKind::PrimaryKey => with_expr("primary key"),
            ConstraintKind::ForeignKey => references(),
            ConstraintKind::Custom => expr.trim().to_string(),
        };
    };
    let prefix = if name.is_empty() {
        String::new()
    } else {
        format!("constraint {} ", quote_ident(name))
    };
    let body = match c.kind {
        ConstraintKind::Check => format!("check ({expr})"),
        ConstraintKind::Unique => format!("{} ({})", with_expr("unique"), cols(&c.columns)),
        ConstraintKind::PrimaryKey => {
            format!("{} ({})", with_expr("primary key"), cols(&c.columns))
        }
        ConstraintKind::ForeignKey => {
            format!("foreign key ({}) {}", cols(&c.columns), references())
        }
        ConstraintKind::Custom => expr.trim().to_string(),
        // Refused when the project loads.
        ConstraintKind::NotNull => String::new(),
    };
    format!("{prefix}{body}")
}

/// What building a contracted table did.
pub(super) struct Created {
    pub(super) rows: u64,
    /// Constraints created under a temporary name: (temporary, declared).
    pub(super) renames: Vec<(String, String)>,
}

/// Creates the contracted table `schema.tmp` with the declared columns, types and
/// constraints, and inserts the rows of `sql` in the declared column order.
/// `suffix` makes the temporary constraint names unique to the invocation.
pub(super) async fn create_table(
    tx: &Transaction<'_>,
    node: &Node,
    sql: &str,
    schema: &str,
    tmp: &str,
    suffix: &str,
) -> Result<Created, Failure> {
    let declared = node.declared_columns();
    let mut lines: Vec<String> = declared
        .iter()
        .map(|c| {
            let mut parts = vec![
                ident(&c.name),
                data_type(node, c.data_type.as_deref().unwrap_or_default()),
            ];
            parts.extend(c.constraints.iter().map(|k| render(k, None)));
            parts.join(" ")
        })
        .collect();
    let mut renames = Vec::new();
    for c in &node.constraints {
        let name = match &c.name {
            Some(n) if needs_temporary_name(c) => {
                let declared = fold_ident(n);
                let temporary = super::swap::derived_name(&declared, &format!("__rt_new_{suffix}"));
                renames.push((temporary.clone(), declared));
                temporary
            }
            Some(n) => fold_ident(n),
            None => String::new(),
        };
        lines.push(render(c, Some(&name)));
    }
    let rel = relation_name(schema, tmp);
    let names: Vec<String> = declared.iter().map(|c| ident(&c.name)).collect();
    let names = names.join(", ");
    let unlogged = if node.unlogged() { "unlogged " } else { "" };
    if let Some(alter) = alterations(node, &renames) {
        // The parallel path: `create table … as select` may use parallel workers,
        // `insert … select` never does. Under a savepoint: a row that breaks a
        // constraint or a cast is built again the way dbt-postgres builds it, so
        // the model fails with dbt's own error.
        tx.batch_execute("savepoint rt_contract_ctas").await?;
        let casts: Vec<String> = declared
            .iter()
            .map(|c| {
                let name = ident(&c.name);
                let t = data_type(node, c.data_type.as_deref().unwrap_or_default());
                format!("cast({name} as {t}) as {name}")
            })
            .collect();
        let statement = format!(
            "create {unlogged}table {rel} as select {} from (\n{sql}\n) as model_subq",
            casts.join(", ")
        );
        let built = match tx.execute(statement.as_str(), &[]).await {
            Ok(rows) if alter.is_empty() => Ok(rows),
            Ok(rows) => tx
                .batch_execute(&format!("alter table {rel} {alter}"))
                .await
                .map(|()| rows),
            Err(e) => Err(e),
        };
        match built {
            Ok(rows) => {
                tx.batch_execute("release savepoint rt_contract_ctas")
                    .await?;
                return Ok(Created { rows, renames });
            }
            // A cancelled statement is not run again.
            Err(error)
                if error.code() == Some(&tokio_postgres::error::SqlState::QUERY_CANCELED) =>
            {
                return Err(Failure::Db { error, statement });
            }
            Err(_) => {
                tx.batch_execute("rollback to savepoint rt_contract_ctas")
                    .await?;
            }
        }
    }
    let statement = format!(
        "create {unlogged}table {rel} (\n    {}\n)",
        lines.join(",\n    ")
    );
    tx.execute(statement.as_str(), &[])
        .await
        .map_err(|error| Failure::Db {
            error,
            statement: String::new(),
        })?;
    // One header line before the model's SQL, so errors place its lines.
    let statement =
        format!("insert into {rel} ({names}) select {names} from (\n{sql}\n) as model_subq");
    let rows = tx
        .execute(statement.as_str(), &[])
        .await
        .map_err(|error| Failure::Db { error, statement })?;
    Ok(Created { rows, renames })
}

/// A declared type an explicit cast reads differently from an insert's
/// assignment cast: to `char(n)`, `varchar(n)` and `bit(n)` (and their
/// spellings) a cast cuts a longer value where an insert fails.
fn cast_differs(data_type: &str) -> bool {
    let t = data_type.to_ascii_lowercase();
    t.contains("char") || t.contains("bit")
}

/// The one `alter table` clause list that gives a table created by
/// `create table … as` the declared constraints, in the order `create table`
/// adds them (PostgreSQL names an unnamed constraint the same way in both), or
/// `None` when the contract needs the `create table` + `insert` path: a type
/// whose cast differs from an insert's ([`cast_differs`]), a `custom`
/// constraint, a column-level constraint with an `expression` other than a
/// check's, or two unique or primary keys on the same columns.
fn alterations(node: &Node, renames: &[(String, String)]) -> Option<String> {
    let mut clauses = Vec::new();
    for c in node.declared_columns() {
        if cast_differs(c.data_type.as_deref().unwrap_or_default()) {
            return None;
        }
        let col = ident(&c.name);
        for k in &c.constraints {
            let expr = k.expression.as_deref().unwrap_or("").trim();
            clauses.push(match k.kind {
                ConstraintKind::Custom => return None,
                ConstraintKind::Check => format!("add check ({expr})"),
                ConstraintKind::ForeignKey => {
                    format!("add foreign key ({col}) {}", render(k, None))
                }
                _ if !expr.is_empty() => return None,
                ConstraintKind::NotNull => format!("alter column {col} set not null"),
                ConstraintKind::Unique => format!("add unique ({col})"),
                ConstraintKind::PrimaryKey => format!("add primary key ({col})"),
            });
        }
    }
    // `create table` keeps one index of two unique or primary key constraints
    // on the same columns, `alter table` makes both.
    let mut keys: Vec<Vec<String>> = Vec::new();
    for c in node.declared_columns() {
        for k in &c.constraints {
            if matches!(k.kind, ConstraintKind::Unique | ConstraintKind::PrimaryKey) {
                keys.push(vec![fold_ident(&c.name)]);
            }
        }
    }
    for c in &node.constraints {
        if matches!(c.kind, ConstraintKind::Unique | ConstraintKind::PrimaryKey) {
            keys.push(c.columns.iter().map(|n| fold_ident(n)).collect());
        }
    }
    if keys.iter().enumerate().any(|(i, k)| keys[..i].contains(k)) {
        return None;
    }
    let mut renamed = renames.iter();
    for c in &node.constraints {
        if c.kind == ConstraintKind::Custom {
            return None;
        }
        let name = match &c.name {
            Some(_) if needs_temporary_name(c) => renamed.next()?.0.clone(),
            Some(n) => fold_ident(n),
            None => String::new(),
        };
        clauses.push(format!("add {}", render(c, Some(&name))));
    }
    Some(clauses.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn mismatch_table_as_dbt_prints_it() {
        let yaml = cols(&[("id", "INTEGER"), ("name", "TEXT"), ("amount", "INTEGER")]);
        let sql = cols(&[("id", "INTEGER"), ("nickname", "TEXT"), ("amount", "TEXT")]);
        assert_eq!(
            mismatches(&yaml, &sql).unwrap(),
            "| column_name | definition_type | contract_type | mismatch_reason       |\n\
             | ----------- | --------------- | ------------- | --------------------- |\n\
             | amount      | TEXT            | INTEGER       | data type mismatch    |\n\
             | name        |                 | TEXT          | missing in definition |\n\
             | nickname    | TEXT            |               | missing in contract   |\n"
        );
        assert!(mismatches(
            &yaml,
            &cols(&[("amount", "INTEGER"), ("id", "INTEGER"), ("name", "TEXT")])
        )
        .is_none());
        let long = "b".repeat(60);
        let t = mismatches(
            &cols(&[("a", "INTEGER")]),
            &cols(&[(&long, "unknown type_code 2950")]),
        )
        .unwrap();
        assert!(
            t.contains(&format!(
                "| {}... | unknown type_code 2950 |",
                "b".repeat(47)
            )),
            "{t}"
        );
    }

    #[test]
    fn names_fold_like_unquoted_identifiers() {
        assert_eq!(fold_ident("PlanId"), "planid");
        assert_eq!(fold_ident("\"PlanId\""), "PlanId");
        assert_eq!(fold_ident("\"a\"\"b\""), "a\"b");
        assert_eq!(type_name(23), "INTEGER");
        assert_eq!(type_name(1043), "TEXT");
        assert_eq!(type_name(2950), "unknown type_code 2950");
    }
}
