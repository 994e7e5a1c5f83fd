//! The previous state of `--state DIR`: the `manifest.json` and
//! `run_results.json` an earlier invocation wrote (by this binary or by
//! dbt-core), and what selection and `--defer` ask of them — dbt's `state:`
//! methods (`new`, `old`, `modified` and its `.body`, `.configs`, `.relation`,
//! `.persisted_descriptions`, `.macros`, `.contract` parts, `unmodified`), the
//! `result:<status>` method, and the relation a deferred `ref()` resolves to.
//!
//! Nodes are compared as `manifest.json` writes them, on both sides, so a
//! manifest written by dbt-core compares with ours by the same rules dbt uses:
//! the code (a seed's file checksum), the configuration as written
//! (`unrendered_config`, without `alias`, `schema`, `database`, `tags` and
//! `group`), the configured relation (`database`, `schema`, `alias`), persisted
//! descriptions, the project macros called, and an enforced contract.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value as Json};

use crate::error::{Error, Result};

/// The artifacts of a previous invocation.
#[derive(Debug, Clone)]
pub(crate) struct PreviousState {
    /// The directory as given (relative ones are read from the project
    /// directory), for messages.
    dir: PathBuf,
    /// Its `manifest.json`, when the directory has one.
    manifest: Option<Json>,
    /// Unique id → status of its `run_results.json`, when the directory has one.
    results: Option<BTreeMap<String, String>>,
}

/// The sections of `manifest.json` that hold selectable nodes.
const SECTIONS: [&str; 7] = [
    "nodes",
    "sources",
    "exposures",
    "metrics",
    "semantic_models",
    "saved_queries",
    "unit_tests",
];

/// The `state:` methods dbt has.
const STATE_METHODS: [&str; 10] = [
    "new",
    "old",
    "modified",
    "unmodified",
    "modified.body",
    "modified.configs",
    "modified.persisted_descriptions",
    "modified.relation",
    "modified.macros",
    "modified.contract",
];

/// Config keys dbt leaves out of `state:modified.configs` (the relation's own
/// keys are compared by `modified.relation`).
const NOT_COMPARED: [&str; 5] = ["alias", "schema", "database", "tags", "group"];

impl PreviousState {
    /// Reads the artifacts of `dir` (relative to `project_dir` unless
    /// absolute, as dbt reads `--state`); either may be absent (the selector
    /// that needs it says so), an unreadable one is an error naming it.
    pub(crate) fn read(project_dir: &Path, given: &Path) -> Result<PreviousState> {
        let dir = project_dir.join(given);
        if !dir.is_dir() {
            return Err(Error::usage(format!(
                "--state {}: no such directory (relative to the project directory); give the target/ directory of the run to compare with",
                given.display()
            )));
        }
        let read = |name: &str| -> Result<Option<Json>> {
            let path = dir.join(name);
            let Ok(text) = std::fs::read_to_string(&path) else {
                return Ok(None);
            };
            serde_json::from_str(&text).map(Some).map_err(|e| {
                Error::usage(format!(
                    "--state: {} is not valid JSON ({e}); give the target/ directory of a finished run",
                    given.join(name).display()
                ))
            })
        };
        let manifest = read("manifest.json")?;
        let results = read("run_results.json")?.map(|doc| {
            doc.get("results")
                .and_then(Json::as_array)
                .into_iter()
                .flatten()
                .filter_map(|r| {
                    let id = r.get("unique_id")?.as_str()?;
                    let status = r.get("status")?.as_str()?;
                    Some((id.to_string(), status.to_string()))
                })
                .collect()
        });
        Ok(PreviousState {
            dir: given.to_path_buf(),
            manifest,
            results,
        })
    }

    fn manifest(&self, what: &str) -> Result<&Json> {
        self.manifest.as_ref().ok_or_else(|| {
            Error::usage(format!(
                "{what} needs a previous manifest.json, and {} has none; give --state the target/ directory of a run (any command that parses the project writes one)",
                self.dir.display()
            ))
        })
    }

    /// The node `unique_id` of the previous manifest, in whichever section holds it.
    fn old_node(&self, manifest: &Json, unique_id: &str) -> Option<Json> {
        SECTIONS
            .iter()
            .find_map(|section| manifest.get(section)?.get(unique_id).cloned())
    }

    /// The ids of `current` (this invocation's `manifest.json`) that
    /// `state:<value>` selects.
    pub(crate) fn state_method(&self, current: &Json, value: &str) -> Result<BTreeSet<String>> {
        if !STATE_METHODS.contains(&value) {
            return Err(Error::usage(format!(
                "state:{value}: unknown state; use one of {}",
                STATE_METHODS.join(", ")
            )));
        }
        let old_manifest = self.manifest(&format!("state:{value}"))?;
        let compare = Compare {
            old_macros: macros_of(old_manifest),
            new_macros: macros_of(current),
        };
        let mut out = BTreeSet::new();
        for (id, new) in current_nodes(current) {
            let old = self.old_node(old_manifest, id);
            let hit = match value {
                "new" => old.is_none(),
                "old" => old.is_some(),
                "modified" => compare.modified(old.as_ref(), new),
                "unmodified" => !compare.modified(old.as_ref(), new),
                part => match &old {
                    None => part != "modified.macros" || compare.macros_changed(new),
                    Some(old) => match part {
                        "modified.body" => !same_body(old, new),
                        "modified.configs" => !same_config(old, new),
                        "modified.persisted_descriptions" => !same_persisted(old, new),
                        "modified.relation" => !same_relation(old, new),
                        "modified.macros" => compare.macros_changed(new),
                        _ => !same_contract(old, new),
                    },
                },
            };
            if hit {
                out.insert(id.clone());
            }
        }
        Ok(out)
    }

    /// The ids whose status in the previous `run_results.json` is `status`.
    pub(crate) fn result_method(&self, status: &str) -> Result<BTreeSet<String>> {
        let results = self.results.as_ref().ok_or_else(|| {
            Error::usage(format!(
                "result:{status} needs a previous run_results.json, and {} has none; give --state the target/ directory of a run, test or build",
                self.dir.display()
            ))
        })?;
        Ok(results
            .iter()
            .filter(|(_, s)| *s == status)
            .map(|(id, _)| id.clone())
            .collect())
    }

    /// Where the previous manifest built `unique_id`: `(database, schema,
    /// identifier)` of a model, seed or snapshot that was a relation (not
    /// ephemeral), for `--defer`.
    pub(crate) fn relation_of(&self, unique_id: &str) -> Result<Option<(String, String, String)>> {
        let manifest = self.manifest("--defer")?;
        let Some(node) = manifest.get("nodes").and_then(|n| n.get(unique_id)) else {
            return Ok(None);
        };
        let materialized = node
            .pointer("/config/materialized")
            .and_then(Json::as_str)
            .unwrap_or("");
        if matches!(materialized, "ephemeral" | "test") {
            return Ok(None);
        }
        let text = |k: &str| node.get(k).and_then(Json::as_str).map(str::to_string);
        let identifier = text("alias").or_else(|| text("identifier"));
        Ok(match (text("database"), text("schema"), identifier) {
            (Some(d), Some(s), Some(i)) => Some((d, s, i)),
            _ => None,
        })
    }
}

/// Every selectable node of a `manifest.json`, by unique id.
fn current_nodes(current: &Json) -> impl Iterator<Item = (&String, &Json)> {
    SECTIONS
        .into_iter()
        .filter_map(|section| current.get(section)?.as_object())
        .flat_map(Map::iter)
}

/// A manifest's macros: unique id → (text, macros it calls).
fn macros_of(manifest: &Json) -> BTreeMap<String, (Option<String>, Vec<String>)> {
    manifest
        .get("macros")
        .and_then(Json::as_object)
        .into_iter()
        .flatten()
        .map(|(id, m)| {
            let sql = m
                .get("macro_sql")
                .and_then(Json::as_str)
                .map(str::to_string);
            (id.clone(), (sql, depends_on_macros(m)))
        })
        .collect()
}

fn depends_on_macros(node: &Json) -> Vec<String> {
    node.pointer("/depends_on/macros")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| Some(m.as_str()?.to_string()))
        .collect()
}

/// The macros of both manifests, for `state:modified.macros`.
struct Compare {
    old_macros: BTreeMap<String, (Option<String>, Vec<String>)>,
    new_macros: BTreeMap<String, (Option<String>, Vec<String>)>,
}

impl Compare {
    /// dbt's `state:modified`: new, or any part changed.
    fn modified(&self, old: Option<&Json>, new: &Json) -> bool {
        let Some(old) = old else {
            // A source that is new is not "modified" in dbt (only `state:new`).
            return new.get("resource_type").and_then(Json::as_str) != Some("source");
        };
        if is_source(new) {
            return !same_source(old, new);
        }
        !(same_body(old, new)
            && same_config(old, new)
            && same_persisted(old, new)
            && old.get("fqn") == new.get("fqn")
            && same_relation(old, new)
            && same_ref_representation(old, new))
            || self.macros_changed(new)
            || !same_contract(old, new)
    }

    /// A project macro the node calls (directly or through other macros) was
    /// changed, added or removed.
    fn macros_changed(&self, new: &Json) -> bool {
        let mut seen = BTreeSet::new();
        let mut todo = depends_on_macros(new);
        while let Some(id) = todo.pop() {
            if !seen.insert(id.clone()) {
                continue;
            }
            match (self.old_macros.get(&id), self.new_macros.get(&id)) {
                (Some((old, _)), Some((new, calls))) => {
                    if old != new {
                        return true;
                    }
                    todo.extend(calls.iter().cloned());
                }
                // dbt's own macros are not in our manifest: not a change.
                (None, None) => {}
                _ if id.starts_with("macro.dbt.") || id.starts_with("macro.dbt_postgres.") => {}
                _ => return true,
            }
        }
        false
    }
}

fn is_source(node: &Json) -> bool {
    node.get("resource_type").and_then(Json::as_str) == Some("source")
}

/// The code: a seed's file checksum, any other node's raw code.
fn same_body(old: &Json, new: &Json) -> bool {
    if new.get("resource_type").and_then(Json::as_str) == Some("seed") {
        return old.get("checksum") == new.get("checksum");
    }
    old.get("raw_code") == new.get("raw_code")
}

/// The configuration as written, but for the keys dbt compares elsewhere or not
/// at all.
fn same_config(old: &Json, new: &Json) -> bool {
    // A key written as null (or an empty mapping or list) is a key not
    // written: dbt writes some of a source's keys so.
    let config = |n: &Json| {
        let mut c = n
            .get("unrendered_config")
            .and_then(Json::as_object)
            .cloned()
            .unwrap_or_default();
        c.retain(|_, v| {
            !(v.is_null()
                || v.as_object().is_some_and(|o| o.is_empty())
                || v.as_array().is_some_and(|a| a.is_empty()))
        });
        c
    };
    let (a, b) = (config(old), config(new));
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    let same = keys
        .into_iter()
        .filter(|k| !NOT_COMPARED.contains(&k.as_str()))
        .all(|k| a.get(k) == b.get(k));
    same
}

/// The configured relation: `database`, `schema` and `alias` as written.
fn same_relation(old: &Json, new: &Json) -> bool {
    ["database", "schema", "alias"].iter().all(|k| {
        old.pointer(&format!("/unrendered_config/{k}"))
            == new.pointer(&format!("/unrendered_config/{k}"))
    })
}

/// Descriptions that `persist_docs` writes to the database.
fn same_persisted(old: &Json, new: &Json) -> bool {
    let persist = |what: &str| {
        new.pointer(&format!("/config/persist_docs/{what}"))
            .and_then(Json::as_bool)
            .unwrap_or(false)
    };
    if persist("relation") && old.get("description") != new.get("description") {
        return false;
    }
    if persist("columns") {
        let descriptions = |n: &Json| -> BTreeMap<String, Json> {
            n.get("columns")
                .and_then(Json::as_object)
                .into_iter()
                .flatten()
                .map(|(k, c)| {
                    (
                        k.clone(),
                        c.get("description").cloned().unwrap_or(Json::Null),
                    )
                })
                .collect()
        };
        if descriptions(old) != descriptions(new) {
            return false;
        }
    }
    true
}

/// A model's latest version, access and deprecation date, which refs depend on.
fn same_ref_representation(old: &Json, new: &Json) -> bool {
    if new.get("resource_type").and_then(Json::as_str) != Some("model") {
        return true;
    }
    let access = |n: &Json| {
        n.get("access")
            .or_else(|| n.pointer("/config/access"))
            .cloned()
            .unwrap_or(Json::Null)
    };
    // A key written as null is a key not written (dbt writes these as null).
    let get = |n: &Json, k: &str| n.get(k).filter(|v| !v.is_null()).cloned();
    get(old, "latest_version") == get(new, "latest_version")
        && access(old) == access(new)
        && get(old, "deprecation_date") == get(new, "deprecation_date")
}

/// An enforced contract: unchanged when neither side enforces one, or both do
/// with the same checksum.
fn same_contract(old: &Json, new: &Json) -> bool {
    if new.get("resource_type").and_then(Json::as_str) != Some("model") {
        return true;
    }
    let enforced = |n: &Json| {
        n.pointer("/contract/enforced")
            .and_then(Json::as_bool)
            .unwrap_or(false)
    };
    match (enforced(old), enforced(new)) {
        (false, false) => true,
        (true, true) => old.pointer("/contract/checksum") == new.pointer("/contract/checksum"),
        _ => false,
    }
}

/// dbt's comparison of a source: its relation, fqn, config, quoting,
/// freshness and external properties (not descriptions, tags or meta).
fn same_source(old: &Json, new: &Json) -> bool {
    let same = |k: &str| old.get(k) == new.get(k);
    [
        "database",
        "schema",
        "identifier",
        "fqn",
        "quoting",
        "external",
    ]
    .iter()
    .all(|k| same(k))
        && same_freshness(old, new)
        && old.pointer("/config/enabled") == new.pointer("/config/enabled")
}

fn same_freshness(old: &Json, new: &Json) -> bool {
    old.get("loaded_at_field") == new.get("loaded_at_field")
        && old.get("freshness") == new.get("freshness")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn configs_compare_without_relation_keys_and_tags() {
        let old =
            json!({"unrendered_config": {"materialized": "table", "tags": ["a"], "schema": "x"}});
        let new = json!({"unrendered_config": {"materialized": "table", "tags": ["b"]}});
        assert!(same_config(&old, &new));
        assert!(!same_relation(&old, &new));
        let changed = json!({"unrendered_config": {"materialized": "view"}});
        assert!(!same_config(&old, &changed));
    }

    #[test]
    fn a_new_source_is_new_not_modified() {
        let c = Compare {
            old_macros: BTreeMap::new(),
            new_macros: BTreeMap::new(),
        };
        assert!(!c.modified(None, &json!({"resource_type": "source"})));
        assert!(c.modified(None, &json!({"resource_type": "model"})));
    }
}
