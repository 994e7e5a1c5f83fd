//! The landing contract: what a project expects the loaders to have landed, declared
//! with dbt's own source properties (`columns:` with `data_type` on a source table),
//! compared with the live tables before `build` and `run` and by `source check`.
//!
//! A missing table or column, or a column of another type, breaks the contract; a
//! live column the project does not declare is only reported. Source tables that
//! declare no `data_type` are not checked. Types are compared as PostgreSQL resolves
//! them (`to_regtype`: `timestamp` is `timestamp without time zone`, `int8` is
//! `bigint`), without type modifiers.

use tokio_postgres::Client;

use crate::console::Output;
use crate::error::{Error, Result};
use crate::manifest::SourceNode;

/// One difference between a declared source table and the live one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Difference {
    pub(crate) source: String,
    pub(crate) table: String,
    /// Empty when the whole table is missing.
    pub(crate) column: String,
    /// Empty for a column the project does not declare.
    pub(crate) declared: String,
    pub(crate) found: String,
    /// Missing tables and columns and type changes break the contract; new
    /// columns do not.
    pub(crate) breaking: bool,
}

/// Whether a source table declares the type of any of its columns.
pub(crate) fn declares(s: &SourceNode) -> bool {
    s.table.columns.iter().any(|c| c.data_type.is_some())
}

/// Compares every source table of `sources` that declares column types with the
/// live table.
pub(crate) async fn check(client: &Client, sources: &[&SourceNode]) -> Result<Vec<Difference>> {
    let db = |e: tokio_postgres::Error| {
        Error::runtime(format!(
            "cannot read the columns of the source tables: {}",
            crate::postgres::describe_db_error(&e, "")
        ))
    };
    let mut out = Vec::new();
    for s in sources.iter().filter(|s| declares(s)) {
        let t = &s.table;
        let diff = |column: &str, declared: &str, found: &str, breaking: bool| Difference {
            source: t.source_name.clone(),
            table: t.name.clone(),
            column: column.to_string(),
            declared: declared.to_string(),
            found: found.to_string(),
            breaking,
        };
        let exists = client
            .query_one(
                "select to_regclass(format('%I.%I', $1::text, $2::text)) is not null",
                &[&t.schema, &t.identifier],
            )
            .await
            .map_err(db)?;
        if !exists.get::<_, bool>(0) {
            out.push(diff("", "table", "no such table", true));
            continue;
        }
        let live: Vec<(String, String)> = client
            .query(
                "select a.attname::text, a.atttypid::regtype::text
                 from pg_attribute a
                 where a.attrelid = format('%I.%I', $1::text, $2::text)::regclass
                   and a.attnum > 0 and not a.attisdropped
                 order by a.attnum",
                &[&t.schema, &t.identifier],
            )
            .await
            .map_err(db)?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        for c in &t.columns {
            let Some(declared) = &c.data_type else {
                continue;
            };
            let resolved: Option<String> = client
                .query_one("select to_regtype($1::text)::text", &[declared])
                .await
                .map_err(db)?
                .get(0);
            match live.iter().find(|(name, _)| *name == c.name) {
                None => out.push(diff(&c.name, declared, "no such column", true)),
                Some((_, found)) => match &resolved {
                    Some(r) if r == found => {}
                    Some(_) => out.push(diff(&c.name, declared, found, true)),
                    None => out.push(diff(
                        &c.name,
                        declared,
                        &format!("{found} (the declared type is unknown to the server)"),
                        true,
                    )),
                },
            }
        }
        for (name, found) in &live {
            if !t.columns.iter().any(|c| c.name == *name) {
                out.push(diff(name, "", found, false));
            }
        }
    }
    Ok(out)
}

/// Prints the differences as one table (source, table, column, declared, found);
/// returns whether the contract is broken (and not turned into warnings).
pub(crate) fn report(out: &Output, diffs: &[Difference], warn_only: bool) -> bool {
    let breaking = diffs.iter().filter(|d| d.breaking).count();
    let new = diffs.len() - breaking;
    if diffs.is_empty() {
        return false;
    }
    let header = ["source", "table", "column", "declared", "found"];
    let rows: Vec<[&str; 5]> = diffs
        .iter()
        .map(|d| {
            [
                d.source.as_str(),
                d.table.as_str(),
                if d.column.is_empty() { "-" } else { &d.column },
                if d.declared.is_empty() {
                    "(not declared)"
                } else {
                    &d.declared
                },
                d.found.as_str(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: [&str; 5]| {
        cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let stops = breaking > 0 && !warn_only;
    let summary = match (breaking, new) {
        (0, n) => format!(
            "{n} column{} of the source tables {} not declared in the project (new upstream?)",
            crate::console::plural(n),
            if n == 1 { "is" } else { "are" }
        ),
        (b, _) => format!(
            "the landed tables differ from the project's source declarations in {b} place{}{}",
            crate::console::plural(b),
            if stops {
                "; nothing was built. Fix the loader, or update the source's columns (data_type) in the project"
            } else {
                ""
            }
        ),
    };
    let emit = |text: &str| {
        if stops {
            out.info("landing_difference", text)
        } else {
            out.warn("landing_difference", text)
        }
    };
    emit(&line(header));
    for r in rows {
        emit(&line(r));
    }
    if stops {
        out.error(&summary);
    } else {
        out.warn("landing_summary", &summary);
    }
    stops
}
