//! `catalog.json` in dbt's shape (schema v1), read from PostgreSQL's catalog:
//! for every relation of the manifest (models and sources) that exists, its type,
//! owner and comment, its columns in order with their types and comments, and
//! statistics: the row count (exact `count(*)` up to a million estimated rows,
//! else the planner's estimate, labelled so) and the size on disk. Relations not
//! built yet are left out, as dbt does.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};
use tokio_postgres::Client;

use crate::error::{Error, Result};
use crate::manifest::{quote_ident, Manifest};

const CATALOG_SCHEMA: &str = "https://schemas.getdbt.com/dbt/catalog/v1.json";

/// Tables estimated above this many rows are not counted exactly.
const EXACT_COUNT_UP_TO: f64 = 1_000_000.0;

struct Relation {
    kind: String,
    comment: Option<String>,
    owner: String,
    estimate: f64,
    bytes: Option<i64>,
    columns: Vec<(String, i16, String, Option<String>)>,
}

fn stat(id: &str, label: &str, value: Value, include: bool, description: &str) -> (String, Value) {
    (
        id.to_string(),
        json!({"id": id, "label": label, "value": value, "include": include, "description": description}),
    )
}

/// Reads the catalog of `manifest`'s relations in database `dbname`.
pub(crate) async fn read(
    client: &Client,
    manifest: &Manifest,
    dbname: &str,
    invocation_id: &str,
) -> Result<Value> {
    // (unique id, schema, identifier, is source)
    let mut wanted: Vec<(String, String, String, bool)> = Vec::new();
    for n in &manifest.nodes {
        wanted.push((
            n.unique_id.clone(),
            n.schema.clone(),
            n.alias.clone(),
            false,
        ));
    }
    for s in &manifest.sources {
        wanted.push((
            s.unique_id.clone(),
            s.table.schema.clone(),
            s.table.identifier.clone(),
            true,
        ));
    }
    let schemas: Vec<String> = {
        let mut v: Vec<String> = wanted.iter().map(|w| w.1.clone()).collect();
        v.sort();
        v.dedup();
        v
    };
    let fail = |e: tokio_postgres::Error| {
        Error::runtime(format!(
            "docs generate: reading the catalog: {}",
            crate::postgres::describe_db_error(&e, "")
        ))
    };
    let rows = client
        .query(
            "select n.nspname, c.relname,
                    case c.relkind when 'v' then 'VIEW' when 'm' then 'MATERIALIZED VIEW'
                                   when 'f' then 'FOREIGN TABLE' else 'BASE TABLE' end,
                    obj_description(c.oid, 'pg_class'), pg_get_userbyid(c.relowner),
                    c.reltuples::float8,
                    case when c.relkind in ('r', 'p', 'm') then pg_total_relation_size(c.oid) end,
                    a.attname, a.attnum, format_type(a.atttypid, a.atttypmod),
                    col_description(c.oid, a.attnum)
             from pg_class c
             join pg_namespace n on n.oid = c.relnamespace
             join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
             where n.nspname = any($1) and c.relkind in ('r', 'p', 'v', 'm', 'f')
             order by n.nspname, c.relname, a.attnum",
            &[&schemas],
        )
        .await
        .map_err(fail)?;
    let mut found: BTreeMap<(String, String), Relation> = BTreeMap::new();
    for r in &rows {
        let key: (String, String) = (r.get(0), r.get(1));
        let rel = found.entry(key).or_insert_with(|| Relation {
            kind: r.get(2),
            comment: r.get(3),
            owner: r.get(4),
            estimate: r.get(5),
            bytes: r.get(6),
            columns: Vec::new(),
        });
        rel.columns.push((r.get(7), r.get(8), r.get(9), r.get(10)));
    }
    let mut nodes = Map::new();
    let mut sources = Map::new();
    for (id, schema, ident, is_source) in wanted {
        let Some(rel) = found.get(&(schema.clone(), ident.clone())) else {
            continue;
        };
        let mut stats: Map<String, Value> = Map::new();
        let (k, v) = stat(
            "has_stats",
            "Has Stats?",
            Value::Bool(true),
            false,
            "Indicates whether there are statistics for this table",
        );
        stats.insert(k, v);
        if rel.kind != "VIEW" {
            let (id_, label, value, what) = if rel.estimate > EXACT_COUNT_UP_TO {
                (
                    "row_count_estimate",
                    "Row count (estimate)",
                    rel.estimate.round() as i64,
                    "The planner's estimate (pg_class.reltuples) after the last ANALYZE",
                )
            } else {
                let n: i64 = client
                    .query_one(
                        &format!(
                            "select count(*) from {}.{}",
                            quote_ident(&schema),
                            quote_ident(&ident)
                        ),
                        &[],
                    )
                    .await
                    .map_err(fail)?
                    .get(0);
                (
                    "row_count",
                    "Row count",
                    n,
                    "count(*) when the catalog was read",
                )
            };
            let (k, v) = stat(id_, label, json!(value), true, what);
            stats.insert(k, v);
        }
        if let Some(b) = rel.bytes {
            let (k, v) = stat(
                "bytes",
                "Size on disk (bytes)",
                json!(b),
                true,
                "pg_total_relation_size: table, indexes and TOAST",
            );
            stats.insert(k, v);
        }
        let columns: Map<String, Value> = rel
            .columns
            .iter()
            .map(|(name, idx, ty, comment)| {
                (
                    name.clone(),
                    json!({"type": ty, "index": idx, "name": name, "comment": comment}),
                )
            })
            .collect();
        let entry = json!({
            "metadata": {
                "type": rel.kind,
                "schema": schema,
                "name": ident,
                "database": dbname,
                "comment": rel.comment,
                "owner": rel.owner,
            },
            "columns": columns,
            "stats": stats,
            "unique_id": id,
        });
        if is_source {
            sources.insert(id, entry);
        } else {
            nodes.insert(id, entry);
        }
    }
    Ok(json!({
        "metadata": {
            "dbt_schema_version": CATALOG_SCHEMA,
            "dbt_version": format!("reluvia-transform {}", crate::VERSION),
            "generated_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "invocation_id": invocation_id,
            "env": {},
        },
        "nodes": nodes,
        "sources": sources,
        "errors": null,
    }))
}
