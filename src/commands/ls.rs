//! `ls` (`list`): the selected nodes as dbt prints them: one line per node, in the
//! order of their unique ids, as a selector, a name, a path or a JSON object.

use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::artifacts;
use crate::cli::{LsArgs, LsOutput, ResourceTypeArg};
use crate::console::Output;
use crate::error::{Error, Result};
use crate::manifest::{Node, NodeKind};
use crate::settings::Settings;

use super::{chosen, load, warn_unmatched, Invocation};

/// What `ls` prints and of which nodes.
struct Listing<'a> {
    output: LsOutput,
    resource_types: &'a [ResourceTypeArg],
    exclude_resource_types: &'a [ResourceTypeArg],
    output_keys: &'a [String],
}

/// The keys of a node dbt prints by default with `--output json`.
const JSON_KEYS: &[&str] = &[
    "name",
    "resource_type",
    "package_name",
    "original_file_path",
    "unique_id",
    "alias",
    "config",
    "tags",
    "depends_on",
    "source_name",
];

/// Whether a node of `kind` is listed with these `--resource-type`s (none: the
/// default, every type but analyses).
fn listed(kind: NodeKind, types: &[ResourceTypeArg]) -> bool {
    let named = match kind {
        NodeKind::Model => ResourceTypeArg::Model,
        NodeKind::Source => ResourceTypeArg::Source,
        NodeKind::Test => ResourceTypeArg::Test,
        NodeKind::UnitTest => ResourceTypeArg::UnitTest,
        NodeKind::Seed => ResourceTypeArg::Seed,
        NodeKind::Snapshot => ResourceTypeArg::Snapshot,
        NodeKind::Analysis => ResourceTypeArg::Analysis,
        NodeKind::Exposure => ResourceTypeArg::Exposure,
        NodeKind::Metric => ResourceTypeArg::Metric,
        NodeKind::SemanticModel => ResourceTypeArg::SemanticModel,
        NodeKind::SavedQuery => ResourceTypeArg::SavedQuery,
    };
    if types.is_empty() {
        return kind != NodeKind::Analysis;
    }
    types.iter().any(|t| match t {
        ResourceTypeArg::All => true,
        ResourceTypeArg::Default => kind != NodeKind::Analysis,
        t => *t == named,
    })
}

pub(super) fn ls(
    inv: &Invocation,
    settings: Arc<Settings>,
    args: &LsArgs,
    out: &Output,
) -> Result<i32> {
    // As dbt's ls: `-m`/`--models` selects models only.
    let (sel, resource_types) = if args.selection.models.is_empty() {
        (args.selection.clone(), args.resource_type.clone())
    } else if !args.selection.select.is_empty() {
        return Err(Error::usage(
            "ls: --models (-m) and --select are mutually exclusive; use one of them",
        ));
    } else if !args.resource_type.is_empty() {
        return Err(Error::usage(
            "ls: --models (-m) and --resource-type are mutually exclusive; --models lists models only, use --select with --resource-type",
        ));
    } else {
        (args.selection.merged(), vec![ResourceTypeArg::Model])
    };
    let sel = &sel;
    let listing = Listing {
        output: args.output,
        resource_types: &resource_types,
        exclude_resource_types: &args.exclude_resource_type,
        output_keys: &args.output_keys,
    };
    let loaded = load(settings, &inv.cancel)?;
    super::warn_project(out, &loaded);
    warn_unmatched(out, &loaded, sel)?;
    let m = &loaded.manifest;
    // Sorted by unique id, as dbt prints them.
    let chosen = chosen(&loaded, sel, out)?;
    let keys: Vec<String> = listing
        .output_keys
        .iter()
        .flat_map(|k| k.split_whitespace().map(str::to_string))
        .collect();
    let mut stdout = String::new();
    for id in &chosen {
        let Some(kind) = m.kind(id) else { continue };
        if !listed(kind, listing.resource_types)
            || (!listing.exclude_resource_types.is_empty()
                && listed(kind, listing.exclude_resource_types))
        {
            continue;
        }
        let line = match (listing.output, kind) {
            (LsOutput::Json, _) => {
                let full = match kind {
                    NodeKind::Model => m.node(id).map(|n| artifacts::model_json(m, n)),
                    NodeKind::Seed => m.node(id).map(seed_json),
                    NodeKind::Test => m.test(id).map(|t| artifacts::test_json(m, t)),
                    NodeKind::UnitTest => m.test(id).map(|t| artifacts::unit_test_json(m, t)),
                    NodeKind::Source => m.source(id).map(|s| artifacts::source_json(m, s)),
                    NodeKind::Analysis | NodeKind::Snapshot => {
                        m.node(id).map(|n| artifacts::model_json(m, n))
                    }
                    NodeKind::Exposure => m.exposure(id).map(|x| artifacts::exposure_json(m, x)),
                    NodeKind::Metric | NodeKind::SemanticModel | NodeKind::SavedQuery => {
                        m.semantic(id).map(|x| artifacts::semantic_json(m, x))
                    }
                };
                let Some(Value::Object(full)) = full else {
                    continue;
                };
                let wanted = |k: &str| {
                    if keys.is_empty() {
                        JSON_KEYS.contains(&k)
                    } else {
                        keys.iter().any(|x| x == k)
                    }
                };
                let obj: Map<String, Value> = full.into_iter().filter(|(k, _)| wanted(k)).collect();
                python_json(&Value::Object(obj))
            }
            (out, NodeKind::Source) => {
                let Some(s) = m.source(id) else { continue };
                match out {
                    LsOutput::Selector => format!(
                        "source:{}.{}.{}",
                        s.unique_id.split('.').nth(1).unwrap_or_default(),
                        s.table.source_name,
                        s.table.name
                    ),
                    LsOutput::Name => format!("{}.{}", s.table.source_name, s.table.name),
                    _ => s.table.file.clone(),
                }
            }
            (out, NodeKind::Model | NodeKind::Seed | NodeKind::Analysis | NodeKind::Snapshot) => {
                let Some(n) = m.node(id) else { continue };
                match out {
                    LsOutput::Selector => n.fqn.join("."),
                    LsOutput::Name => n.name.clone(),
                    _ => n.original_file_path.clone(),
                }
            }
            (out, NodeKind::Exposure) => {
                let Some(x) = m.exposure(id) else { continue };
                match out {
                    LsOutput::Selector => format!("exposure:{}", x.fqn.join(".")),
                    LsOutput::Name => x.name.clone(),
                    _ => x.original_file_path.clone(),
                }
            }
            (out, NodeKind::Metric | NodeKind::SemanticModel | NodeKind::SavedQuery) => {
                let Some(x) = m.semantic(id) else { continue };
                match out {
                    LsOutput::Selector => format!("{}:{}", kind.as_str(), x.fqn.join(".")),
                    LsOutput::Name => x.name.clone(),
                    _ => x.original_file_path.clone(),
                }
            }
            (out, NodeKind::Test | NodeKind::UnitTest) => {
                let Some(t) = m.test(id) else { continue };
                match out {
                    LsOutput::Selector if kind == NodeKind::UnitTest => {
                        format!("unit_test:{}.{}", m.project_name, t.name)
                    }
                    LsOutput::Selector => t.fqn.join("."),
                    LsOutput::Name => t.name.clone(),
                    _ => t.original_file_path.clone(),
                }
            }
        };
        stdout.push_str(&line);
        stdout.push('\n');
    }
    print!("{stdout}");
    Ok(0)
}

/// JSON as Python's `json.dumps` writes it, as dbt prints it.
fn python_json(v: &Value) -> String {
    crate::render::json_dumps(v, false)
}

/// A seed as dbt's `ls --output json` shows it (its config with every default
/// dbt gives a seed).
fn seed_json(n: &Node) -> Value {
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
}
