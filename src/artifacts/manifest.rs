//! `manifest.json`: every node, source and macro with its config, dependencies
//! and compiled SQL, in dbt's schema (v12) so dbt tooling can read it. Each node's
//! dictionary ([`model_json`], [`test_json`], [`source_json`]) is also what `ls
//! --output json` prints a selection of.

use serde_json::{json, Map, Value};

use crate::manifest::{
    Exposure, Manifest, Materialization, Node, NodeKind, RunHook, SemanticNode, SourceNode,
    TestKind, TestNode,
};
use crate::project::{Constraint, FreshnessPolicy};

const MANIFEST_SCHEMA: &str = "https://schemas.getdbt.com/dbt/manifest/v12.json";

/// `defaults` with `given` laid over it; mappings whose default is a mapping
/// (`docs`, `contract`) are merged key by key.
fn with_defaults(defaults: Value, given: &Map<String, Value>) -> Map<String, Value> {
    let Value::Object(mut out) = defaults else {
        return given.clone();
    };
    for (k, v) in given {
        match (out.get_mut(k), v) {
            (Some(Value::Object(d)), Value::Object(o)) if !d.is_empty() => {
                for (sk, sv) in o {
                    d.insert(sk.clone(), sv.clone());
                }
            }
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    out
}

/// A model's config as dbt records it: every key with its default, then the
/// configured values.
pub(crate) fn model_config(n: &Node) -> Map<String, Value> {
    let mut c = with_defaults(model_config_defaults(), &n.config);
    c.insert("tags".into(), json!(n.tags));
    c.insert("materialized".into(), json!(n.materialized.as_str()));
    if matches!(n.resource_type, "analysis" | "snapshot") {
        // dbt's analysis and snapshot configs are a model's without these two.
        c.remove("access");
        c.remove("freshness");
    }
    snapshot_config(n, c)
}

/// Every key of a model's config with dbt's default (made once, then copied:
/// a manifest takes it for every model).
fn model_config_defaults() -> Value {
    static DEFAULTS: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    DEFAULTS.get_or_init(model_config_defaults_new).clone()
}

fn model_config_defaults_new() -> Value {
    json!({
            "enabled": true, "alias": null, "schema": null, "database": null, "tags": [],
            "meta": {}, "group": null, "materialized": "view", "incremental_strategy": null,
            "batch_size": null, "lookback": 1, "begin": null, "persist_docs": {},
            "post-hook": [], "pre-hook": [], "quoting": {}, "column_types": {},
            "full_refresh": null, "unique_key": null, "on_schema_change": "ignore",
            "on_configuration_change": "apply", "grants": {}, "packages": [],
            "docs": {"show": true, "node_color": null},
            "contract": {"enforced": false, "alias_types": true}, "event_time": null,
            "concurrent_batches": null, "access": "protected", "freshness": null,
    })
}

/// `c` with a snapshot's own keys, when `n` is one.
fn snapshot_config(n: &Node, mut c: Map<String, Value>) -> Map<String, Value> {
    if n.resource_type == "snapshot" {
        for k in [
            "strategy",
            "target_schema",
            "target_database",
            "updated_at",
            "check_cols",
            "dbt_valid_to_current",
        ] {
            c.entry(k).or_insert(Value::Null);
        }
        let mut names = json!({"dbt_valid_to": null, "dbt_valid_from": null, "dbt_scd_id": null,
            "dbt_updated_at": null, "dbt_is_deleted": null});
        if let (Some(Value::Object(set)), Some(all)) = (
            n.config.get("snapshot_meta_column_names"),
            names.as_object_mut(),
        ) {
            for (k, v) in set {
                all.insert(k.clone(), v.clone());
            }
        }
        c.insert("snapshot_meta_column_names".into(), names);
    }
    c
}

/// An `on-run-start`/`on-run-end` hook as dbt records it: an `operation` node
/// of its project, named by its position, configured by the project's
/// `models:` tree (the `hooks` folder of its fqn); never compiled, no relation.
pub(crate) fn hook_json(manifest: &Manifest, h: &RunHook) -> Value {
    let name = format!(
        "{}-{}-{}",
        h.package,
        if h.end { "on-run-end" } else { "on-run-start" },
        h.index
    );
    let mut config = with_defaults(model_config_defaults(), &h.config);
    config.remove("access");
    config.remove("freshness");
    let docs = config.get("docs").cloned().unwrap_or_default();
    json!({
        "database": manifest.database, "schema": manifest.target_schema,
        "name": name, "resource_type": "operation", "package_name": h.package,
        "path": format!("hooks/{name}.sql"), "original_file_path": "./dbt_project.yml",
        "unique_id": h.unique_id, "fqn": [h.package, "hooks", name], "alias": name,
        "checksum": h.checksum, "config": config,
        "tags": [if h.end { "on-run-end" } else { "on-run-start" }],
        "description": "", "columns": {}, "meta": {}, "group": null, "docs": docs,
        "patch_path": null, "build_path": null, "unrendered_config": h.unrendered_config,
        "relation_name": null, "raw_code": h.sql,
        "doc_blocks": [], "language": "sql", "refs": [], "sources": [], "metrics": [],
        "depends_on": {"macros": h.depends_on_macros, "nodes": []},
        "compiled_path": null,
        "contract": {"enforced": false, "alias_types": true, "checksum": null},
        "index": h.index,
    })
}

/// A data test's config as dbt records it (severity `ERROR` unless configured,
/// schema `dbt_test__audit`).
pub(crate) fn test_config(t: &TestNode) -> Map<String, Value> {
    // Made once, then copied: a manifest takes it for every test.
    static DEFAULTS: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    let defaults = DEFAULTS.get_or_init(|| {
        json!({
            "enabled": true, "alias": null, "schema": "dbt_test__audit", "database": null,
            "tags": [], "meta": {}, "group": null, "materialized": "test",
            "severity": "ERROR", "store_failures": null, "store_failures_as": null,
            "where": null, "limit": null, "fail_calc": "count(*)", "warn_if": "!= 0",
            "error_if": "!= 0",
        })
    });
    with_defaults(defaults.clone(), &t.config)
}

/// A source table's config as dbt records it.
pub(crate) fn source_config(s: &SourceNode) -> Map<String, Value> {
    let t = &s.table;
    let mut c = with_defaults(
        json!({
            "enabled": true, "event_time": null,
            "freshness": {"warn_after": {"count": null, "period": null},
                          "error_after": {"count": null, "period": null}, "filter": null},
            "loaded_at_field": null, "loaded_at_query": null, "meta": {}, "tags": [],
        }),
        &t.config,
    );
    if let Some(f) = &t.freshness {
        c.insert("freshness".into(), f.to_json());
    }
    if let Some(f) = &t.loaded_at_field {
        c.insert("loaded_at_field".into(), json!(f));
    }
    c.insert("tags".into(), json!(s.tags()));
    c
}

fn columns_json(columns: &[crate::project::Column]) -> Map<String, Value> {
    columns
        .iter()
        .map(|c| (c.name.clone(), json!({"name": c.name, "description": c.description, "data_type": c.data_type, "meta": {}, "tags": c.tags})))
        .collect()
}

/// A model's declared columns, with their data types and constraints.
fn model_columns_json(n: &Node) -> Map<String, Value> {
    let compiled = n.compiled_code.is_some();
    n.declared_columns()
        .into_iter()
        .map(|c| {
            let constraints: Vec<Value> =
                c.constraints.iter().map(|k| k.to_json(compiled)).collect();
            (
                c.name.clone(),
                json!({"name": c.name, "description": c.description, "data_type": c.data_type, "constraints": constraints, "meta": {}, "tags": c.tags}),
            )
        })
        .collect()
}

/// A test's `raw_code` as dbt writes it: a singular test's file without
/// surrounding whitespace; a generic test's call of its macro
/// (`{{ test_unique(**_dbt_generic_test_kwargs) }}`, `{{ pkg.test_x(…) }}`).
fn test_raw_code(t: &TestNode) -> String {
    match (&t.kind, &t.test_name) {
        (TestKind::Generic, Some(name)) => {
            let namespace = t
                .test_namespace
                .as_ref()
                .map(|n| format!("{n}."))
                .unwrap_or_default();
            let call = format!("{{{{ {namespace}test_{name}(**_dbt_generic_test_kwargs) }}}}");
            // A name of 64 characters or more gets its short form as alias.
            if t.file_name != t.name {
                format!("{call}{{{{ config(alias=\"{}\") }}}}", t.file_name)
            } else {
                call
            }
        }
        _ => t.raw_code.trim().to_string(),
    }
}

/// A test's checksum as dbt writes it: a singular test's file's, none for a
/// generic test (its YAML is compared through its config and arguments).
fn test_checksum(t: &TestNode) -> Value {
    match t.kind {
        TestKind::Singular => crate::project::file_checksum(&t.raw_code),
        _ => json!({"name": "none", "checksum": ""}),
    }
}

/// A model's node in `manifest.json`.
pub(crate) fn model_json(manifest: &Manifest, n: &Node) -> Value {
    let (package, rel) = manifest.package_path(&n.original_file_path);
    let file = n.compiled_file();
    let rest = file.strip_prefix(&n.original_file_path).unwrap_or_default();
    let compiled_path = format!("target/compiled/{package}/{rel}{rest}");
    let mut node = json!({
        "database": n.database,
        "schema": n.schema,
        "name": n.name,
        "resource_type": n.resource_type,
        "package_name": n.package_name,
        "path": n.path,
        "original_file_path": manifest.package_path(&n.original_file_path).1,
        "unique_id": n.unique_id,
        "fqn": n.fqn,
        "alias": n.alias,
        "config": null,
        "unrendered_config": null,
        "checksum": null,
        "tags": n.tags,
        "description": n.description,
        "columns": null,
        "contract": {"enforced": n.contract.enforced, "alias_types": n.contract.alias_types, "checksum": contract_checksum(n)},
        "constraints": n.constraints.iter().map(|k| k.to_json(n.compiled_code.is_some())).collect::<Vec<_>>(),
        "patch_path": n.patch_path,
        "raw_code": n.raw_code.trim(),
        "language": "sql",
        "refs": n.refs.iter().map(crate::manifest::Ref::to_json).collect::<Vec<_>>(),
        "sources": n.sources.iter().map(|(s, t)| json!([s, t])).collect::<Vec<_>>(),
        "depends_on": {"macros": n.depends_on_macros, "nodes": n.depends_on_nodes},
        "compiled_path": compiled_path,
        "compiled": n.compiled_code.is_some(),
        "compiled_code": n.compiled_code,
        "relation_name": n.relation_name(),
    });
    // The mappings are put in place (`json!` would copy each).
    node["config"] = Value::Object(model_config(n));
    node["unrendered_config"] = Value::Object(n.unrendered_config.clone());
    node["checksum"] = n.checksum.clone();
    node["columns"] = Value::Object(model_columns_json(n));
    node
}

/// A data test's node in `manifest.json`.
pub(crate) fn test_json(manifest: &Manifest, t: &TestNode) -> Value {
    let (package, original_file_path) = manifest.package_path(&t.original_file_path);
    let path = match t.kind {
        crate::manifest::TestKind::Generic => format!("{}.sql", t.file_name),
        crate::manifest::TestKind::Singular | crate::manifest::TestKind::Unit => original_file_path
            .split_once('/')
            .map_or(original_file_path, |(_, p)| p)
            .to_string(),
    };
    let mut node = json!({
        "database": manifest.database,
        "schema": format!("{}_dbt_test__audit", manifest.target_schema),
        "name": t.name,
        "resource_type": "test",
        "package_name": package,
        "path": path,
        "original_file_path": original_file_path,
        "unique_id": t.unique_id,
        "fqn": t.fqn,
        "alias": t.alias,
        "config": null,
        "unrendered_config": null,
        "tags": t.tags,
        "raw_code": test_raw_code(t),
        "checksum": test_checksum(t),
        "language": "sql",
        "column_name": t.column_name,
        "attached_node": t.attached_node,
        "test_metadata": t.test_name.as_ref().map(|n| json!({"name": n, "kwargs": t.kwargs, "namespace": t.test_namespace})),
        "depends_on": {"macros": t.depends_on_macros, "nodes": t.depends_on_nodes},
        "compiled": t.compiled_code.is_some(),
        "compiled_code": t.compiled_code,
    });
    // The mappings are put in place (`json!` would copy each).
    node["config"] = Value::Object(test_config(t));
    node["unrendered_config"] = Value::Object(t.config.clone());
    node
}

/// A unit test in `manifest.json` (dbt's `UnitTestDefinition`, under
/// `unit_tests`).
pub(crate) fn unit_test_json(manifest: &Manifest, t: &TestNode) -> Value {
    let rows = |r: &crate::project::Rows| match r {
        crate::project::Rows::Dicts(rows) => json!({"format": "dict", "rows": rows}),
        crate::project::Rows::Sql(sql) => json!({"format": "sql", "rows": sql}),
    };
    let unit = t.unit.as_deref();
    let model = unit
        .and_then(|u| manifest.node(&u.model))
        .map(|n| n.name.clone());
    json!({
        "model": model,
        "given": unit.map(|u| u.inputs.iter().map(|i| {
            let mut g = rows(&i.rows);
            g["input"] = json!(i.written);
            g
        }).collect::<Vec<_>>()),
        "expect": unit.map(|u| rows(&u.expect)),
        "name": t.name,
        "resource_type": "unit_test",
        "package_name": manifest.project_name,
        "path": t.original_file_path.split_once('/').map_or(t.original_file_path.as_str(), |(_, p)| p),
        "original_file_path": t.original_file_path,
        "unique_id": t.unique_id,
        "fqn": t.fqn,
        "description": unit.map(|u| u.description.clone()).unwrap_or_default(),
        "overrides": unit.map(|u| json!({"vars": u.overrides.vars, "macros": u.overrides.macros, "env_vars": u.overrides.env_vars})),
        "depends_on": {"macros": t.depends_on_macros, "nodes": t.depends_on_nodes},
        "config": t.config,
        "schema": unit.and_then(|u| manifest.node(&u.model)).map(|n| n.schema.clone()),
        "version": null,
    })
}

/// A source table in `manifest.json`.
pub(crate) fn source_json(manifest: &Manifest, s: &SourceNode) -> Value {
    let t = &s.table;
    json!({
        "database": s.database,
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
        "columns": columns_json(&t.columns),
        "loaded_at_field": t.loaded_at_field,
        "freshness": t.freshness.as_ref().map(FreshnessPolicy::to_json).unwrap_or_else(|| json!({"warn_after": {"count": null, "period": null}, "error_after": {"count": null, "period": null}, "filter": null})),
        "tags": s.tags(),
        "config": source_config(s),
        "unrendered_config": s.table.config,
        "quoting": {"database": null, "schema": null, "identifier": null, "column": null},
        "external": null,
        "meta": t.meta,
        "relation_name": s.relation_name(),
    })
}

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
    // The nodes' dictionaries, the bulk of the work, are made on two threads.
    let test_value = |t: &TestNode| {
        if t.unit.is_some() {
            unit_test_json(manifest, t)
        } else {
            test_json(manifest, t)
        }
    };
    let (mut model_values, mut test_values) = std::thread::scope(|scope| {
        let tests = scope.spawn(|| manifest.tests.iter().map(test_value).collect::<Vec<_>>());
        let models: Vec<Value> = manifest
            .nodes
            .iter()
            .map(|n| model_json(manifest, n))
            .collect();
        let tests = tests
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e));
        (models.into_iter(), tests.into_iter())
    });
    for n in &manifest.nodes {
        nodes.insert(n.unique_id.clone(), model_values.next().unwrap_or_default());
        parent_map.insert(n.unique_id.clone(), json!(n.depends_on_nodes));
        for p in &n.depends_on_nodes {
            if let Some(Value::Array(a)) = child_map.get_mut(p) {
                a.push(json!(n.unique_id));
            }
        }
    }
    for h in &manifest.run_hooks {
        nodes.insert(h.unique_id.clone(), hook_json(manifest, h));
        parent_map.insert(h.unique_id.clone(), json!([]));
        child_map.insert(h.unique_id.clone(), json!([]));
    }
    let mut unit_tests = Map::new();
    for t in &manifest.tests {
        let value = test_values.next().unwrap_or_default();
        if t.unit.is_some() {
            unit_tests.insert(t.unique_id.clone(), value);
        } else {
            nodes.insert(t.unique_id.clone(), value);
        }
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
        parent_map.insert(s.unique_id.clone(), json!([]));
        sources.insert(s.unique_id.clone(), source_json(manifest, s));
    }
    let mut exposures = Map::new();
    let (mut metrics, mut semantic_models, mut saved_queries) =
        (Map::new(), Map::new(), Map::new());
    for x in &manifest.exposures {
        parent_map.insert(x.unique_id.clone(), json!(x.depends_on_nodes));
        for p in &x.depends_on_nodes {
            if let Some(Value::Array(a)) = child_map.get_mut(p) {
                a.push(json!(x.unique_id));
            }
        }
        child_map.insert(x.unique_id.clone(), json!([]));
        exposures.insert(x.unique_id.clone(), exposure_json(manifest, x));
    }
    for x in &manifest.semantic {
        parent_map.insert(x.unique_id.clone(), json!(x.depends_on_nodes));
        for p in &x.depends_on_nodes {
            if let Some(Value::Array(a)) = child_map.get_mut(p) {
                a.push(json!(x.unique_id));
            }
        }
        child_map.insert(x.unique_id.clone(), json!([]));
        let section = match x.kind {
            NodeKind::Metric => &mut metrics,
            NodeKind::SemanticModel => &mut semantic_models,
            _ => &mut saved_queries,
        };
        section.insert(x.unique_id.clone(), semantic_json(manifest, x));
    }
    let macros: Map<String, Value> = manifest
        .macros
        .iter()
        .map(|(name, file)| {
            let id = format!("macro.{}.{name}", manifest.project_name);
            let (sql, calls) = manifest.macro_sources.get(name).cloned().unwrap_or_default();
            let calls: Vec<String> = calls.iter().map(|c| format!("macro.{}.{c}", manifest.project_name)).collect();
            (id.clone(), json!({"name": name, "unique_id": id, "package_name": manifest.project_name, "original_file_path": file, "resource_type": "macro", "macro_sql": sql, "depends_on": {"macros": calls}}))
        })
        .collect();
    let mut metadata = super::metadata(MANIFEST_SCHEMA, invocation_id);
    metadata["project_name"] = json!(manifest.project_name);
    // The sections are moved in (`json!` would copy each).
    let groups = manifest.groups.iter().map(|(name, owner)| (format!("group.{}.{name}", manifest.project_name), json!({"name": name, "resource_type": "group", "package_name": manifest.project_name, "unique_id": format!("group.{}.{name}", manifest.project_name), "owner": owner}))).collect::<Map<String, Value>>();
    let disabled = manifest
        .disabled
        .iter()
        .map(|d| (format!("model.{}.{d}", manifest.project_name), json!([])))
        .collect::<Map<String, Value>>();
    let sections = [
        ("metadata", metadata),
        ("nodes", Value::Object(nodes)),
        ("sources", Value::Object(sources)),
        ("macros", Value::Object(macros)),
        ("exposures", Value::Object(exposures)),
        ("metrics", Value::Object(metrics)),
        ("semantic_models", Value::Object(semantic_models)),
        ("saved_queries", Value::Object(saved_queries)),
        ("groups", Value::Object(groups)),
        ("unit_tests", Value::Object(unit_tests)),
        ("selectors", json!({})),
        ("disabled", Value::Object(disabled)),
        ("parent_map", Value::Object(parent_map)),
        ("child_map", Value::Object(child_map)),
    ];
    Value::Object(
        sections
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    )
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

/// An exposure as `manifest.json` and `ls --output json` give it.
pub(crate) fn exposure_json(manifest: &Manifest, x: &Exposure) -> Value {
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
        "config": x.config,
        "url": x.url,
        "depends_on": {"macros": [], "nodes": x.depends_on_nodes},
        "refs": x.refs.iter().map(crate::manifest::Ref::to_json).collect::<Vec<_>>(),
        "sources": x.sources.iter().map(|(s, t)| json!([s, t])).collect::<Vec<_>>(),
        "metrics": x.metrics.iter().map(|m| json!([m])).collect::<Vec<_>>(),
    })
}

/// A metric, semantic model or saved query as `manifest.json` and `ls --output
/// json` give it: the entry as written, with dbt's identifying keys.
pub(crate) fn semantic_json(manifest: &Manifest, x: &SemanticNode) -> Value {
    let mut obj = match &x.spec {
        Value::Object(o) => o.clone(),
        _ => Map::new(),
    };
    for (k, v) in [
        ("name", json!(x.name)),
        ("resource_type", json!(x.kind.as_str())),
        ("package_name", json!(manifest.project_name)),
        ("original_file_path", json!(x.original_file_path)),
        ("unique_id", json!(x.unique_id)),
        ("fqn", json!(x.fqn)),
        ("label", json!(x.label)),
        ("description", json!(x.description)),
        ("tags", json!(x.tags)),
        ("config", Value::Object(x.config.clone())),
        (
            "depends_on",
            json!({"macros": [], "nodes": x.depends_on_nodes}),
        ),
    ] {
        obj.insert(k.to_string(), v);
    }
    Value::Object(obj)
}
