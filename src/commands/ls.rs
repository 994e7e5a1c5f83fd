//! `ls` (`list`): the selected nodes, one per line, sorted as dbt prints them.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::json;

use crate::cli::{GlobalArgs, LsOutput, ResourceTypeArg};
use crate::console::Output;
use crate::error::Result;
use crate::manifest::Node;
use crate::settings::Settings;

use super::{load, Invocation};

pub(super) fn ls(
    inv: &Invocation,
    settings: Arc<Settings>,
    global: &GlobalArgs,
    output: LsOutput,
    rtype: Option<ResourceTypeArg>,
) -> Result<i32> {
    let format = settings.log_format;
    let loaded = load(settings, &inv.cancel)?;
    super::warn_project(&Output::new(format), &loaded);
    let chosen = loaded
        .graph
        .select(&loaded.manifest, &global.select, &global.exclude)?;
    // (unique_id, line): dbt prints in unique_id order.
    let mut lines = Vec::new();
    for n in &loaded.manifest.nodes {
        let kind = match n.resource_type {
            "seed" => ResourceTypeArg::Seed,
            _ => ResourceTypeArg::Model,
        };
        if !chosen.contains(&n.unique_id) || rtype.is_some_and(|r| r != kind) {
            continue;
        }
        if kind == ResourceTypeArg::Seed {
            lines.push((n.unique_id.clone(), seed_line(n, output)));
            continue;
        }
        lines.push((n.unique_id.clone(), match output {
            LsOutput::Selector => n.fqn.join("."),
            LsOutput::Name => n.name.clone(),
            LsOutput::Path => n.original_file_path.clone(),
            LsOutput::Json => json!({
                "name": n.name, "resource_type": "model", "package_name": n.package_name,
                "original_file_path": n.original_file_path, "unique_id": n.unique_id, "alias": n.alias,
                "schema": n.schema, "config": n.config, "tags": n.tags,
                "depends_on": {"nodes": n.depends_on_nodes, "macros": n.depends_on_macros},
            })
            .to_string(),
        }));
    }
    for s in &loaded.manifest.sources {
        if !chosen.contains(&s.unique_id) || rtype.is_some_and(|r| r != ResourceTypeArg::Source) {
            continue;
        }
        lines.push((s.unique_id.clone(), match output {
            LsOutput::Selector => format!("source:{}", s.fqn.join(".")),
            LsOutput::Name => format!("{}.{}", s.table.source_name, s.table.name),
            LsOutput::Path => s.table.file.clone(),
            LsOutput::Json => json!({
                "name": s.table.name, "resource_type": "source", "package_name": loaded.manifest.project_name,
                "source_name": s.table.source_name, "original_file_path": s.table.file, "unique_id": s.unique_id,
                "schema": s.table.schema, "identifier": s.table.identifier, "tags": s.table.tags,
            })
            .to_string(),
        }));
    }
    let with_tests = loaded
        .graph
        .with_tests(&loaded.manifest, &chosen, &BTreeSet::new());
    for t in &loaded.manifest.tests {
        if !with_tests.contains(&t.unique_id) || rtype.is_some_and(|r| r != ResourceTypeArg::Test) {
            continue;
        }
        lines.push((t.unique_id.clone(), match output {
            LsOutput::Selector => t.fqn.join("."),
            LsOutput::Name => t.name.clone(),
            LsOutput::Path => t.original_file_path.clone(),
            LsOutput::Json => json!({
                "name": t.name, "resource_type": "test", "package_name": loaded.manifest.project_name,
                "original_file_path": t.original_file_path, "unique_id": t.unique_id, "tags": t.tags,
                "config": t.config, "depends_on": {"nodes": t.depends_on_nodes},
                "test_metadata": t.test_name.as_ref().map(|n| json!({"name": n, "kwargs": t.kwargs})),
            })
            .to_string(),
        }));
    }
    lines.sort(); // dbt's `ls` lists in unique_id order
    let mut stdout = String::new();
    for (_, l) in lines {
        stdout.push_str(&l);
        stdout.push('\n');
    }
    print!("{stdout}");
    Ok(0)
}

/// A seed's line: its fqn, name, path, or dbt's JSON object (its config with
/// every default dbt gives a seed).
fn seed_line(n: &Node, output: LsOutput) -> String {
    match output {
        LsOutput::Selector => n.fqn.join("."),
        LsOutput::Name => n.name.clone(),
        LsOutput::Path => n.original_file_path.clone(),
        LsOutput::Json => {
            let mut config = json!({
                "enabled": true, "alias": null, "schema": null, "database": null, "tags": [],
                "meta": {}, "group": null, "materialized": "seed", "incremental_strategy": null,
                "batch_size": null, "lookback": 1, "begin": null, "persist_docs": {},
                "post-hook": [], "pre-hook": [], "quoting": {}, "column_types": {},
                "full_refresh": null, "unique_key": null, "on_schema_change": "ignore",
                "on_configuration_change": "apply", "grants": {}, "packages": [],
                "docs": {"show": true, "node_color": null},
                "contract": {"enforced": false, "alias_types": true}, "event_time": null,
                "concurrent_batches": null, "delimiter": ",", "quote_columns": null,
            });
            if let Some(c) = config.as_object_mut() {
                for (k, v) in &n.config {
                    c.insert(k.clone(), v.clone());
                }
                c.insert("tags".into(), json!(n.tags));
            }
            json!({
                "name": n.name, "resource_type": "seed", "package_name": n.package_name,
                "original_file_path": n.original_file_path, "unique_id": n.unique_id,
                "alias": n.alias, "config": config, "tags": n.tags,
                "depends_on": {"macros": []},
            })
            .to_string()
        }
    }
}
