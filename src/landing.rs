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
/// live table. Two round trips whatever the number of tables and columns: the
/// live columns of every table, and every declared type as the server resolves
/// it (one query each per column cost about 70 ms a run for the shipped project's
/// eight sources).
pub(crate) async fn check(client: &Client, sources: &[&SourceNode]) -> Result<Vec<Difference>> {
    let db = |e: tokio_postgres::Error| {
        Error::runtime(format!(
            "cannot read the columns of the source tables: {}",
            crate::postgres::describe_db_error(&e, "")
        ))
    };
    let checked: Vec<&SourceNode> = sources.iter().copied().filter(|s| declares(s)).collect();
    if checked.is_empty() {
        return Ok(Vec::new());
    }
    let schemas: Vec<&str> = checked.iter().map(|s| s.table.schema.as_str()).collect();
    let identifiers: Vec<&str> = checked
        .iter()
        .map(|s| s.table.identifier.as_str())
        .collect();
    // Per table (by position): None when it does not exist, else its live columns
    // in order.
    let mut live: Vec<Option<Vec<(String, String)>>> = vec![None; checked.len()];
    let rows = client
        .query(
            "select t.i::int4, t.rel is not null, a.attname::text, a.atttypid::regtype::text
             from (
                 select i, to_regclass(format('%I.%I', s, n)) as rel
                 from unnest($1::text[], $2::text[]) with ordinality as u (s, n, i)
             ) as t
             left join pg_attribute as a
                 on a.attrelid = t.rel and a.attnum > 0 and not a.attisdropped
             order by t.i, a.attnum",
            &[&schemas, &identifiers],
        )
        .await
        .map_err(db)?;
    for r in &rows {
        let i = usize::try_from(r.get::<_, i32>(0) - 1).expect("ordinality starts at 1");
        if !r.get::<_, bool>(1) {
            continue;
        }
        let columns = live[i].get_or_insert_with(Vec::new);
        if let (Some(name), Some(found)) =
            (r.get::<_, Option<String>>(2), r.get::<_, Option<String>>(3))
        {
            columns.push((name, found));
        }
    }
    let mut declared_types: Vec<&str> = checked
        .iter()
        .flat_map(|s| {
            s.table
                .columns
                .iter()
                .filter_map(|c| c.data_type.as_deref())
        })
        .collect();
    declared_types.sort_unstable();
    declared_types.dedup();
    let resolved: std::collections::HashMap<String, Option<String>> = client
        .query(
            "select t, to_regtype(t)::text from unnest($1::text[]) as t",
            &[&declared_types],
        )
        .await
        .map_err(db)?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let mut out = Vec::new();
    for (s, live) in checked.iter().zip(&live) {
        let t = &s.table;
        let diff = |column: &str, declared: &str, found: &str, breaking: bool| Difference {
            source: t.source_name.clone(),
            table: t.name.clone(),
            column: column.to_string(),
            declared: declared.to_string(),
            found: found.to_string(),
            breaking,
        };
        let Some(live) = live else {
            out.push(diff("", "table", "no such table", true));
            continue;
        };
        for c in &t.columns {
            let Some(declared) = &c.data_type else {
                continue;
            };
            match live.iter().find(|(name, _)| *name == c.name) {
                None => out.push(diff(&c.name, declared, "no such column", true)),
                Some((_, found)) => match resolved.get(declared).and_then(Option::as_ref) {
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
        for (name, found) in live {
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
