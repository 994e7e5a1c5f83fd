//! Node configuration as dbt merges it: the `dbt_project.yml` config trees
//! (`models:`, `data_tests:`), most specific level last, with `tags` accumulating.

use serde_json::{Map, Value};

/// Configs that a `dbt_project.yml` tree may give without the `+` prefix.
const KNOWN_CONFIGS: &[&str] = &[
    "materialized",
    "schema",
    "alias",
    "database",
    "tags",
    "enabled",
    "docs",
    "persist_docs",
    "pre-hook",
    "post-hook",
    "grants",
    "indexes",
    "meta",
    "full_refresh",
    "unlogged",
    "severity",
    "where",
    "error_if",
    "warn_if",
    "store_failures",
    "limit",
    "contract",
];

/// The configs a node at `fqn_dirs` (directories below the model path, then the
/// node name) gets from a `dbt_project.yml` tree rooted at the project's name, least
/// specific first. Tags accumulate; other keys are replaced by more specific levels.
pub(crate) fn tree_config(
    tree: &Value,
    project_name: &str,
    fqn_tail: &[String],
) -> Map<String, Value> {
    let mut out = Map::new();
    let Some(root) = tree.get(project_name) else {
        return out;
    };
    let mut level = root;
    merge_level(&mut out, level);
    for part in fqn_tail {
        match level.get(part) {
            Some(next) if next.is_object() => {
                level = next;
                merge_level(&mut out, level);
            }
            _ => break,
        }
    }
    out
}

fn merge_level(out: &mut Map<String, Value>, level: &Value) {
    let Some(obj) = level.as_object() else { return };
    for (k, v) in obj {
        let key = match k.strip_prefix('+') {
            Some(stripped) => stripped,
            None if KNOWN_CONFIGS.contains(&k.as_str()) && !v.is_object() => k.as_str(),
            None => continue,
        };
        merge_config(out, key, v.clone());
    }
}

/// Sets one config key dbt's way: `tags` accumulate, everything else replaces.
pub(crate) fn merge_config(out: &mut Map<String, Value>, key: &str, value: Value) {
    if key == "tags" {
        let mut tags: Vec<Value> = match out.get("tags") {
            Some(Value::Array(a)) => a.clone(),
            _ => Vec::new(),
        };
        let new: Vec<Value> = match value {
            Value::Array(a) => a,
            Value::String(s) => vec![Value::String(s)],
            _ => Vec::new(),
        };
        for t in new {
            if !tags.contains(&t) {
                tags.push(t);
            }
        }
        out.insert("tags".into(), Value::Array(tags));
    } else {
        out.insert(key.to_string(), value);
    }
}
