//! Artifacts in the target path, in dbt's shapes so dbt tooling can read them:
//! `manifest.json` (every node and source with config, dependencies and compiled
//! SQL), `run_results.json` (status, timing and rows of each executed node) and
//! `compiled/<project>/<original_file_path>`. Every file is written atomically
//! (temporary file in the same directory, fsync, rename), so a reader or a crash
//! never sees half a file. No secret is ever part of an artifact.

use std::io::Write;
use std::path::Path;

use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::output::Status;

pub const MANIFEST_SCHEMA: &str = "https://schemas.getdbt.com/dbt/manifest/v12.json";
pub const RUN_RESULTS_SCHEMA: &str = "https://schemas.getdbt.com/dbt/run-results/v6.json";

/// Writes `content` to `path` atomically.
pub fn write_atomic(path: &Path, content: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| {
        Error::runtime(format!(
            "cannot create {}: {e}; check the target path",
            dir.display()
        ))
    })?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default(),
        std::process::id()
    ));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(content)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::runtime(format!(
            "cannot write {}: {e}; check the target path",
            path.display()
        ))
    })
}

fn metadata(schema: &str, invocation_id: &str) -> Value {
    json!({
        "dbt_schema_version": schema,
        "dbt_version": format!("reluvia-transform {}", crate::VERSION),
        "generated_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "invocation_id": invocation_id,
        "env": {},
        "adapter_type": "postgres",
    })
}

/// Path of a node's compiled SQL under `target`.
pub fn compiled_path(target: &Path, project: &str, original_file_path: &str) -> std::path::PathBuf {
    target
        .join("compiled")
        .join(project)
        .join(original_file_path)
}

/// `manifest.json` of `manifest`.
pub fn manifest_json(manifest: &Manifest, invocation_id: &str) -> Value {
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
    let macros: Map<String, Value> = manifest
        .macros
        .iter()
        .map(|(name, file)| {
            let id = format!("macro.{}.{name}", manifest.project_name);
            (id.clone(), json!({"name": name, "unique_id": id, "package_name": manifest.project_name, "original_file_path": file, "resource_type": "macro"}))
        })
        .collect();
    json!({
        "metadata": metadata(MANIFEST_SCHEMA, invocation_id),
        "nodes": nodes,
        "sources": sources,
        "macros": macros,
        "exposures": {}, "metrics": {}, "groups": {}, "selectors": {},
        "disabled": manifest.disabled.iter().map(|d| (format!("model.{}.{d}", manifest.project_name), json!([]))).collect::<Map<String, Value>>(),
        "parent_map": parent_map,
        "child_map": child_map,
    })
}

/// One executed (or skipped) node for `run_results.json`.
#[derive(Debug, Clone)]
pub struct NodeResult {
    pub unique_id: String,
    pub status: Status,
    pub message: String,
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    pub completed_at: Option<chrono::DateTime<chrono::Utc>>,
    pub execution_time: f64,
    pub thread_id: String,
    pub rows_affected: Option<u64>,
    pub code: String,
    pub failures: Option<u64>,
    pub compiled_code: Option<String>,
    pub relation_name: Option<String>,
}

impl NodeResult {
    /// A result with nothing executed yet: no timing, rows, failures or SQL.
    pub fn new(unique_id: &str, status: Status, message: String) -> NodeResult {
        NodeResult {
            unique_id: unique_id.to_string(),
            status,
            message,
            started_at: None,
            completed_at: None,
            execution_time: 0.0,
            thread_id: String::new(),
            rows_affected: None,
            code: String::new(),
            failures: None,
            compiled_code: None,
            relation_name: None,
        }
    }
}

/// `run_results.json` of an invocation.
pub fn run_results_json(
    results: &[NodeResult],
    elapsed: f64,
    invocation_id: &str,
    args: Value,
) -> Value {
    let ts = |t: &Option<chrono::DateTime<chrono::Utc>>| {
        t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
    };
    let rows: Vec<Value> = results
        .iter()
        .map(|r| {
            let timing = if r.started_at.is_some() {
                json!([{"name": "execute", "started_at": ts(&r.started_at), "completed_at": ts(&r.completed_at)}])
            } else {
                json!([])
            };
            json!({
                "status": r.status.as_str(),
                "timing": timing,
                "thread_id": r.thread_id,
                "execution_time": r.execution_time,
                "adapter_response": if r.started_at.is_some() && r.status != Status::Error {
                    json!({"_message": r.message, "code": r.code, "rows_affected": r.rows_affected})
                } else { json!({}) },
                "message": r.message,
                "failures": r.failures,
                "unique_id": r.unique_id,
                "compiled": r.compiled_code.is_some(),
                "compiled_code": r.compiled_code,
                "relation_name": r.relation_name,
            })
        })
        .collect();
    json!({
        "metadata": metadata(RUN_RESULTS_SCHEMA, invocation_id),
        "results": rows,
        "elapsed_time": elapsed,
        "args": args,
    })
}

/// Serialises `value` and writes it atomically to `dir/name`.
pub fn write_json(dir: &Path, name: &str, value: &Value) -> Result<()> {
    let text = serde_json::to_vec_pretty(value)
        .map_err(|e| Error::runtime(format!("cannot serialise {name}: {e}")))?;
    write_atomic(&dir.join(name), &text)
}
