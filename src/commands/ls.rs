//! `ls` (`list`): the selected nodes, one per line, sorted as dbt prints them.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::json;

use crate::cli::{GlobalArgs, LsOutput, ResourceTypeArg};
use crate::console::Output;
use crate::error::Result;
use crate::settings::Settings;

use super::{load, warn_unmatched, Invocation};

pub(super) fn ls(
    inv: &Invocation,
    settings: Arc<Settings>,
    global: &GlobalArgs,
    out: &Output,
    output: LsOutput,
    rtype: Option<ResourceTypeArg>,
) -> Result<i32> {
    let loaded = load(settings, &inv.cancel)?;
    super::warn_project(out, &loaded);
    warn_unmatched(out, &loaded, global)?;
    let chosen = loaded
        .graph
        .select(&loaded.manifest, &global.select, &global.exclude)?;
    let mut lines = Vec::new();
    for n in &loaded.manifest.nodes {
        if !chosen.contains(&n.unique_id) || rtype.is_some_and(|r| r != ResourceTypeArg::Model) {
            continue;
        }
        lines.push(match output {
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
        });
    }
    for s in &loaded.manifest.sources {
        if !chosen.contains(&s.unique_id) || rtype.is_some_and(|r| r != ResourceTypeArg::Source) {
            continue;
        }
        lines.push(match output {
            LsOutput::Selector => format!("source:{}", s.fqn.join(".")),
            LsOutput::Name => format!("{}.{}", s.table.source_name, s.table.name),
            LsOutput::Path => s.table.file.clone(),
            LsOutput::Json => json!({
                "name": s.table.name, "resource_type": "source", "package_name": loaded.manifest.project_name,
                "source_name": s.table.source_name, "original_file_path": s.table.file, "unique_id": s.unique_id,
                "schema": s.table.schema, "identifier": s.table.identifier, "tags": s.table.tags,
            })
            .to_string(),
        });
    }
    let with_tests = loaded
        .graph
        .with_tests(&loaded.manifest, &chosen, &BTreeSet::new());
    for t in &loaded.manifest.tests {
        if !with_tests.contains(&t.unique_id) || rtype.is_some_and(|r| r != ResourceTypeArg::Test) {
            continue;
        }
        lines.push(match output {
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
        });
    }
    lines.sort(); // dbt's `ls` lists in sorted order
    let mut stdout = String::new();
    for l in lines {
        stdout.push_str(&l);
        stdout.push('\n');
    }
    print!("{stdout}");
    Ok(0)
}
