//! `manifest.json`: every node, source and macro with its config, dependencies
//! and compiled SQL, in dbt's schema (v12) so dbt tooling can read it.

use serde_json::{json, Map, Value};

use crate::manifest::Manifest;

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
        let columns: Map<String, Value> = n
            .columns
            .iter()
            .map(|c| (c.name.clone(), json!({"name": c.name, "description": c.description, "data_type": c.data_type, "meta": {}, "tags": []})))
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
                "freshness": t.freshness,
                "tags": t.tags,
                "meta": t.meta,
                "relation_name": s.relation_name(),
            }),
        );
    }
    let mut exposures = Map::new();
    for x in &manifest.exposures {
        parent_map.insert(x.unique_id.clone(), json!(x.depends_on_nodes));
        for p in &x.depends_on_nodes {
            if let Some(Value::Array(a)) = child_map.get_mut(p) {
                a.push(json!(x.unique_id));
            }
        }
        child_map.insert(x.unique_id.clone(), json!([]));
        exposures.insert(
            x.unique_id.clone(),
            json!({
                "name": x.name,
                "resource_type": "exposure",
                "package_name": manifest.project_name,
                "path": x.original_file_path.split_once('/').map(|(_, p)| p).unwrap_or(&x.original_file_path),
                "original_file_path": x.original_file_path,
                "unique_id": x.unique_id,
                "fqn": x.fqn,
                "type": x.kind,
                "owner": {"name": x.owner_name, "email": x.owner_email},
                "description": x.description,
                "label": x.label,
                "maturity": x.maturity,
                "meta": x.meta,
                "tags": x.tags,
                "config": {"enabled": true, "tags": x.tags, "meta": x.meta},
                "url": x.url,
                "depends_on": {"macros": [], "nodes": x.depends_on_nodes},
                "refs": x.refs.iter().map(|r| json!({"name": r, "package": null, "version": null})).collect::<Vec<_>>(),
                "sources": x.sources.iter().map(|(s, t)| json!([s, t])).collect::<Vec<_>>(),
                "metrics": [],
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
    let mut metadata = super::metadata(MANIFEST_SCHEMA, invocation_id);
    metadata["project_name"] = json!(manifest.project_name);
    json!({
        "metadata": metadata,
        "nodes": nodes,
        "sources": sources,
        "macros": macros,
        "exposures": exposures, "metrics": {}, "groups": {}, "selectors": {},
        "disabled": manifest.disabled.iter().map(|d| (format!("model.{}.{d}", manifest.project_name), json!([]))).collect::<Map<String, Value>>(),
        "parent_map": parent_map,
        "child_map": child_map,
    })
}
