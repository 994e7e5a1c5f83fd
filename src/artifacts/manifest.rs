//! `manifest.json`: every node, source and macro with its config, dependencies
//! and compiled SQL, in dbt's schema (v12) so dbt tooling can read it.

use serde_json::{json, Map, Value};

use crate::manifest::{Manifest, Materialization, Node};
use crate::project::{Constraint, FreshnessPolicy};

const MANIFEST_SCHEMA: &str = "https://schemas.getdbt.com/dbt/manifest/v12.json";

/// `manifest.json` of `manifest`.
pub(crate) fn manifest_json(manifest: &Manifest, invocation_id: &str) -> Value {
    let mut nodes = Map::new();
    let mut parent_map = Map::new();
    let mut child_map: Map<String, Value> = Map::new();
    for s in &manifest.sources {
        child_map.insert(s.unique_id.clone(), json!([]));
    }
    for n in &manifest.nodes {
        child_map.insert(n.unique_id.clone(), json!([]));
    }
    for n in &manifest.nodes {
        let compiled = n.compiled_code.is_some();
        let columns: Map<String, Value> = n
            .declared_columns()
            .into_iter()
            .map(|c| {
                let constraints: Vec<Value> =
                    c.constraints.iter().map(|k| k.to_json(compiled)).collect();
                (c.name.clone(), json!({"name": c.name, "description": c.description, "data_type": c.data_type, "constraints": constraints, "meta": {}, "tags": []}))
            })
            .collect();
        nodes.insert(
            n.unique_id.clone(),
            json!({
                "database": n.database,
                "schema": n.schema,
                "name": n.name,
                "resource_type": n.resource_type,
                "package_name": n.package_name,
                "path": n.path,
                "original_file_path": n.original_file_path,
                "unique_id": n.unique_id,
                "fqn": n.fqn,
                "alias": n.alias,
                "config": n.config,
                "tags": n.tags,
                "description": n.description,
                "columns": columns,
                "contract": {"enforced": n.contract.enforced, "alias_types": n.contract.alias_types, "checksum": contract_checksum(n)},
                "constraints": n.constraints.iter().map(|k| k.to_json(compiled)).collect::<Vec<_>>(),
                "patch_path": n.patch_path,
                "raw_code": n.raw_code,
                "language": "sql",
                "refs": n.refs.iter().map(|r| json!({"name": r, "package": null, "version": null})).collect::<Vec<_>>(),
                "sources": n.sources.iter().map(|(s, t)| json!([s, t])).collect::<Vec<_>>(),
                "depends_on": {"macros": n.depends_on_macros, "nodes": n.depends_on_nodes},
                "compiled_path": format!("target/compiled/{}/{}", manifest.project_name, n.original_file_path),
                "compiled": n.compiled_code.is_some(),
                "compiled_code": n.compiled_code,
                "relation_name": n.relation_name(),
            }),
        );
        parent_map.insert(n.unique_id.clone(), json!(n.depends_on_nodes));
        for p in &n.depends_on_nodes {
            if let Some(Value::Array(a)) = child_map.get_mut(p) {
                a.push(json!(n.unique_id));
            }
        }
    }
    for t in &manifest.tests {
        nodes.insert(
            t.unique_id.clone(),
            json!({
                "name": t.name,
                "resource_type": "test",
                "package_name": manifest.project_name,
                "path": t.original_file_path,
                "original_file_path": t.original_file_path,
                "unique_id": t.unique_id,
                "fqn": t.fqn,
                "config": t.config,
                "tags": t.tags,
                "raw_code": t.raw_code,
                "language": "sql",
                "column_name": t.column_name,
                "attached_node": t.attached_node,
                "test_metadata": t.test_name.as_ref().map(|n| json!({"name": n, "kwargs": t.kwargs, "namespace": null})),
                "depends_on": {"macros": t.depends_on_macros, "nodes": t.depends_on_nodes},
                "compiled": t.compiled_code.is_some(),
                "compiled_code": t.compiled_code,
            }),
        );
        parent_map.insert(t.unique_id.clone(), json!(t.depends_on_nodes));
        for p in &t.depends_on_nodes {
            if let Some(Value::Array(a)) = child_map.get_mut(p) {
                a.push(json!(t.unique_id));
            }
        }
        child_map.insert(t.unique_id.clone(), json!([]));
    }
    let mut sources = Map::new();
    for s in &manifest.sources {
        let t = &s.table;
        parent_map.insert(s.unique_id.clone(), json!([]));
        let columns: Map<String, Value> = t
            .columns
            .iter()
            .map(|c| (c.name.clone(), json!({"name": c.name, "description": c.description, "data_type": c.data_type, "meta": {}, "tags": []})))
            .collect();
        sources.insert(
            s.unique_id.clone(),
            json!({
                "database": t.database,
                "schema": t.schema,
                "name": t.name,
                "resource_type": "source",
                "package_name": manifest.project_name,
                "path": t.file,
                "original_file_path": t.file,
                "unique_id": s.unique_id,
                "fqn": s.fqn,
                "source_name": t.source_name,
                "source_description": t.source_description,
                "loader": t.loader,
                "identifier": t.identifier,
                "description": t.description,
                "columns": columns,
                "loaded_at_field": t.loaded_at_field,
                "freshness": t.freshness.as_ref().map(FreshnessPolicy::to_json),
                "tags": t.tags,
                "meta": t.meta,
                "relation_name": s.relation_name(),
            }),
        );
    }
    let macros: Map<String, Value> = manifest
        .macros
        .iter()
        .map(|(name, file)| {
            let id = format!("macro.{}.{name}", manifest.project_name);
            (id.clone(), json!({"name": name, "unique_id": id, "package_name": manifest.project_name, "original_file_path": file, "resource_type": "macro"}))
        })
        .collect();
    json!({
        "metadata": super::metadata(MANIFEST_SCHEMA, invocation_id),
        "nodes": nodes,
        "sources": sources,
        "macros": macros,
        "exposures": {}, "metrics": {}, "groups": {}, "selectors": {},
        "disabled": manifest.disabled.iter().map(|d| (format!("model.{}.{d}", manifest.project_name), json!([]))).collect::<Map<String, Value>>(),
        "parent_map": parent_map,
        "child_map": child_map,
    })
}

/// dbt's `contract.checksum` of an enforced contract: the SHA-256 of each declared
/// column (sorted by name) as `|name`, its data type and Python's repr of its
/// constraints, then for a table its materialization and model-level constraints.
fn contract_checksum(n: &Node) -> Option<String> {
    if !n.contract.enforced {
        return None;
    }
    let repr = |cs: &[Constraint]| {
        let items: Vec<String> = cs.iter().map(Constraint::python_repr).collect();
        format!("[{}]", items.join(", "))
    };
    let mut columns = n.declared_columns();
    columns.sort_by(|a, b| a.name.cmp(&b.name));
    let mut state = String::new();
    for c in columns {
        state.push('|');
        state.push_str(&c.name);
        state.push_str(c.data_type.as_deref().unwrap_or("None"));
        state.push_str(&repr(&c.constraints));
    }
    if n.materialized == Materialization::Table {
        state.push_str("table");
        state.push_str(&repr(&n.constraints));
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, state.as_bytes());
    Some(digest.as_ref().iter().map(|b| format!("{b:02x}")).collect())
}
