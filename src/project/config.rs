//! Node configuration as dbt reads and merges it.
//!
//! Reading: every config value of the `dbt_project.yml` trees (`models:`,
//! `data_tests:`, `sources:`), of YAML `config:` blocks and of `config()` calls is
//! checked against [`super::keys`] when the project loads: an implemented key must
//! have the right shape, an unsupported one is refused, a custom one is kept with
//! a warning — each error naming its file and line, before any connection.
//!
//! Merging: the configs of a node, least specific first — the `dbt_project.yml`
//! tree level by level, then YAML, then the file's own `config()` — with `tags`
//! accumulating and every other key replaced.

use serde_json::{Map, Value};

use crate::error::{Error, Result};

use super::contract::check_contract;
use super::grants::{check_grants, merge_grants};
use super::hooks::{check_hooks, hook_key, merge_hooks};
use super::indexes::check_indexes;
use super::keys::{classify, is_config_name, KeyClass, Resource};
use super::session_settings::check_session_settings;
use super::yaml::{At, Yaml, YamlValue};

/// Warnings found while reading the project, shown once it is loaded.
#[derive(Debug, Default, Clone)]
pub(crate) struct Warnings(pub(crate) Vec<String>);

impl Warnings {
    pub(crate) fn push(&mut self, w: String) {
        if !self.0.contains(&w) {
            self.0.push(w);
        }
    }
}

/// Checks one config value; `path` is where it sits, for messages
/// (`models.shop.marts.+materialized`). Custom keys warn.
pub(crate) fn check_value(
    resource: Resource,
    key: &str,
    value: &Yaml,
    path: &str,
    at: At<'_>,
    warnings: &mut Warnings,
) -> Result<()> {
    match classify(resource, key) {
        KeyClass::Inert => Ok(()),
        KeyClass::Custom => {
            warnings.push(format!(
                "Custom key `{key}` found in `config` at path `{path}` in file `{}`. Custom config keys should move into the `config.meta`.",
                at.file
            ));
            Ok(())
        }
        KeyClass::Unsupported(why) => Err(at.error(format!(
            "{path}: {why}; remove `{key}` or run this project with dbt-core"
        ))),
        KeyClass::Implemented => check_shape(resource, key, value, path, at),
    }
}

/// The shape an implemented key's value must have.
fn check_shape(resource: Resource, key: &str, v: &Yaml, path: &str, at: At<'_>) -> Result<()> {
    let want = |what: &str| -> Error {
        at.error(format!(
            "{path}: expected {what}, got {}; fix the value",
            describe(v)
        ))
    };
    let is_str = matches!(v.value, YamlValue::Str(_));
    // Jinja (`"{{ target.name == 'prod' }}"`) is rendered with the project's
    // context before the value is used; its result is checked then.
    if let YamlValue::Str(s) = &v.value {
        if s.contains("{{") || s.contains("{%") {
            return Ok(());
        }
    }
    match key {
        "enabled" | "full_refresh" | "store_failures" | "quote_columns" | "unlogged" => {
            if !matches!(v.value, YamlValue::Bool(_)) {
                return Err(want("true or false"));
            }
        }
        "tags" => {
            let ok = match &v.value {
                YamlValue::Str(_) => true,
                YamlValue::Seq(items) => items.iter().all(|i| i.as_str().is_some()),
                _ => false,
            };
            if !ok {
                return Err(want("a tag or a list of tags"));
            }
        }
        "meta" | "docs" => {
            if !matches!(v.value, YamlValue::Map(_)) {
                return Err(want("a mapping"));
            }
        }
        "materialized" if resource == Resource::Snapshot => {
            if v.as_str() != Some("snapshot") {
                return Err(want("'snapshot' (a snapshot is always materialized as one)"));
            }
        }
        "strategy" if resource == Resource::Snapshot => match v.as_str() {
            Some("timestamp" | "check") => {}
            _ => {
                return Err(want(
                    "'timestamp' or 'check' (custom snapshot strategies are not supported)",
                ))
            }
        },
        "check_cols" if resource == Resource::Snapshot => {
            let ok = match &v.value {
                YamlValue::Str(s) => s == "all",
                YamlValue::Seq(items) => items.iter().all(|i| i.as_str().is_some()),
                YamlValue::Null => true,
                _ => false,
            };
            if !ok {
                return Err(want("'all' or a list of column names"));
            }
        }
        "hard_deletes" if resource == Resource::Snapshot => match v.as_str() {
            Some("ignore" | "invalidate" | "new_record") => {}
            None if v.is_null() => {}
            _ => return Err(want("'ignore', 'invalidate' or 'new_record'")),
        },
        "invalidate_hard_deletes" => {
            if !matches!(v.value, YamlValue::Bool(_) | YamlValue::Null) {
                return Err(want("true or false"));
            }
        }
        "snapshot_meta_column_names" => {
            let YamlValue::Map(entries) = &v.value else {
                return Err(want("a mapping such as {dbt_valid_from: valid_from}"));
            };
            for (k, line, val) in entries {
                let at = At { file: at.file, line: *line };
                if !matches!(
                    k.as_str(),
                    "dbt_valid_to" | "dbt_valid_from" | "dbt_scd_id" | "dbt_updated_at" | "dbt_is_deleted"
                ) {
                    return Err(at.error(format!(
                        "{path}.{k}: unknown meta column; the names are dbt_valid_from, dbt_valid_to, dbt_scd_id, dbt_updated_at and dbt_is_deleted"
                    )));
                }
                if val.as_str().is_none() && !val.is_null() {
                    return Err(at.error(format!("{path}.{k}: expected a column name")));
                }
            }
        }
        "materialized" => {
            let Some(m) = v.as_str() else {
                return Err(want("a materialization name"));
            };
            check_materialized(m).map_err(|msg| at.error(format!("{path}: {msg}")))?;
        }
        "severity" => match v.as_str().map(str::to_ascii_lowercase).as_deref() {
            Some("warn" | "error") => {}
            _ => return Err(want("'warn' or 'error'")),
        },
        "error_if" | "warn_if" => match v.as_str() {
            Some(c) if valid_condition(c) => {}
            _ => return Err(want("a comparison such as '!= 0' or '> 10'")),
        },
        "limit" => {
            if !matches!(v.value, YamlValue::Int(n) if n >= 0) && !v.is_null() {
                return Err(want("a whole number"));
            }
        }
        "freshness" if resource == Resource::Source => {
            FreshnessPolicy::from_yaml(v, at).map_err(|e| prefix(e, path))?;
        }
        "column_types" => {
            let ok = match &v.value {
                YamlValue::Map(entries) => entries.iter().all(|(_, _, t)| t.as_str().is_some()),
                YamlValue::Null => true,
                _ => false,
            };
            if !ok {
                return Err(want(
                    "a mapping of column names to PostgreSQL types, e.g. {code: varchar(3)}",
                ));
            }
        }
        "delimiter" => match v.as_str() {
            Some(d) if d.chars().count() == 1 => {}
            _ => return Err(want("one character, e.g. ';' or '|'")),
        },
        "persist_docs" => {
            let ok = match &v.value {
                YamlValue::Map(entries) => entries.iter().all(|(k, _, b)| {
                    matches!(k.as_str(), "relation" | "columns")
                        && matches!(b.value, YamlValue::Bool(_))
                }),
                YamlValue::Null => true,
                _ => false,
            };
            if !ok {
                return Err(want("{relation: true|false, columns: true|false}"));
            }
        }
        "contract" if resource == Resource::Model => check_contract(v, path, at)?,
        "pre-hook" | "post-hook" | "pre_hook" | "post_hook" => check_hooks(v, path, at)?,
        "indexes" => check_indexes(v, path, at)?,
        "session_settings" => check_session_settings(v, path, at)?,
        "grants" => check_grants(v, path, at)?,
        "unique_key" if matches!(resource, Resource::Model | Resource::Snapshot) => {
            let ok = match &v.value {
                YamlValue::Str(_) | YamlValue::Null => true,
                YamlValue::Seq(items) => items.iter().all(|i| i.as_str().is_some()),
                _ => false,
            };
            if !ok {
                return Err(want("a column name or a list of column names"));
            }
        }
        "incremental_predicates" | "predicates" | "merge_update_columns"
        | "merge_exclude_columns"
            if resource == Resource::Model =>
        {
            let ok = match &v.value {
                YamlValue::Null => true,
                YamlValue::Seq(items) => items.iter().all(|i| i.as_str().is_some()),
                _ => false,
            };
            if !ok {
                return Err(want("a list of strings"));
            }
        }
        "incremental_strategy" if resource == Resource::Model => match v.as_str() {
            None if v.is_null() => {}
            Some("append" | "delete+insert" | "merge" | "microbatch" | "default") => {}
            _ => {
                return Err(want(
                    "'append', 'delete+insert', 'merge' or 'microbatch' (the strategies of dbt-postgres)",
                ))
            }
        },
        "batch_size" if resource == Resource::Model => match v.as_str() {
            None if v.is_null() => {}
            Some("hour" | "day" | "month" | "year") => {}
            _ => return Err(want("'hour', 'day', 'month' or 'year'")),
        },
        "begin" if resource == Resource::Model => match v.as_str() {
            None if v.is_null() => {}
            Some(b) if super::microbatch::parse_event_time(b).is_some() => {}
            _ => return Err(want("a date or time such as '2024-01-01' or '2024-01-01T06:00:00'")),
        },
        "lookback" if resource == Resource::Model => {
            if !matches!(v.value, YamlValue::Int(n) if n >= 0) && !v.is_null() {
                return Err(want("a whole number of batches"));
            }
        }
        "concurrent_batches" if resource == Resource::Model => {
            if !matches!(v.value, YamlValue::Bool(_) | YamlValue::Null) {
                return Err(want("true or false"));
            }
        }
        "on_schema_change" if resource == Resource::Model => match v.as_str() {
            None if v.is_null() => {}
            Some("ignore" | "fail" | "append_new_columns" | "sync_all_columns") => {}
            _ => {
                return Err(want(
                    "'ignore', 'fail', 'append_new_columns' or 'sync_all_columns'",
                ))
            }
        },
        "on_configuration_change" => match v.as_str() {
            None if v.is_null() => {}
            Some("apply" | "continue" | "fail") => {}
            _ => return Err(want("'apply', 'continue' or 'fail'")),
        },
        "access" => match v.as_str() {
            Some("private" | "protected" | "public") => {}
            _ => return Err(want("'private', 'protected' or 'public'")),
        },
        _ => {
            if !is_str && !v.is_null() {
                return Err(want("a string"));
            }
        }
    }
    Ok(())
}

fn prefix(mut e: Error, path: &str) -> Error {
    e.message = format!("{path}: {}", e.message);
    e
}

fn describe(v: &Yaml) -> String {
    match &v.value {
        YamlValue::Str(s) => format!("'{s}'"),
        YamlValue::Bool(b) => b.to_string(),
        YamlValue::Int(i) => i.to_string(),
        _ => v.kind().to_string(),
    }
}

/// What a config value written as Jinja rendered to, for the keys whose value
/// has a type (checked as written when it is not Jinja): why it is wrong.
pub(crate) fn check_rendered_config(
    key: &str,
    v: &serde_json::Value,
) -> std::result::Result<(), String> {
    match key {
        "enabled" | "full_refresh" | "store_failures" | "quote_columns" | "unlogged" => {
            if v.is_boolean() {
                Ok(())
            } else {
                Err(format!("rendered to {v}, not true or false; fix the Jinja"))
            }
        }
        "materialized" => match v.as_str() {
            Some(m) => check_materialized(m).map_err(|msg| format!("rendered to '{m}': {msg}")),
            None => Err(format!(
                "rendered to {v}, not a materialization name; fix the Jinja"
            )),
        },
        _ => Ok(()),
    }
}

/// A materialization reluvia-transform builds, or why not.
pub(crate) fn check_materialized(m: &str) -> std::result::Result<(), String> {
    match m {
        "table" | "view" | "ephemeral" | "incremental" | "materialized_view" => Ok(()),
        "snapshot" | "seed" => Err(format!(
            "materialized='{m}' is not supported yet; use 'table', 'view', 'incremental', 'materialized_view' or 'ephemeral'"
        )),
        other => Err(format!(
            "materialized='{other}' is not a materialization dbt-postgres knows (custom materializations are not supported); use 'table', 'view', 'incremental', 'materialized_view' or 'ephemeral'"
        )),
    }
}

/// Checks an `error_if`/`warn_if` condition: a comparison with a whole number.
pub(crate) fn valid_condition(cond: &str) -> bool {
    let c = cond.trim();
    let op_len = ["!=", "<>", ">=", "<=", "=", ">", "<"]
        .iter()
        .find(|op| c.starts_with(*op))
        .map(|op| op.len());
    match op_len {
        Some(n) => {
            let num = c[n..].trim();
            !num.is_empty() && num.chars().all(|ch| ch.is_ascii_digit())
        }
        None => false,
    }
}

/// Checks the configs of a `config()` call in a node's SQL (no line is known).
pub(crate) fn check_call_config(
    resource: Resource,
    config: &Map<String, Value>,
    file: &str,
    warnings: &mut Warnings,
) -> Result<()> {
    for (k, v) in config {
        let at = At { file, line: 0 };
        check_value(
            resource,
            k,
            &super::yaml::from_json(v),
            &format!("config({k}=…)"),
            at,
            warnings,
        )?;
    }
    Ok(())
}

/// Checks a `config:` mapping of a YAML property file.
pub(crate) fn check_config_block(
    resource: Resource,
    block: &Yaml,
    path: &str,
    file: &str,
    warnings: &mut Warnings,
) -> Result<()> {
    if block.is_null() {
        return Ok(());
    }
    if !matches!(block.value, YamlValue::Map(_)) {
        return Err(block.at(file).error(format!(
            "{path}: expected a mapping of configs, got {}",
            block.kind()
        )));
    }
    for (k, line, v) in block.entries() {
        let at = At { file, line: *line };
        check_value(resource, k, v, &format!("{path}.{k}"), at, warnings)?;
    }
    Ok(())
}

/// Checks a `dbt_project.yml` config tree (`models:`, `data_tests:`, `sources:`).
/// Its first level names packages: this project, whose folders follow, or
/// another package (checked by [`check_package_trees`] once the installed
/// packages are known; a name no package has applies to nothing).
pub(crate) fn check_tree(
    resource: Resource,
    tree: &Yaml,
    project: &str,
    file: &str,
    warnings: &mut Warnings,
) -> Result<()> {
    let root = resource.tree_key();
    if tree.is_null() {
        return Ok(());
    }
    if !matches!(tree.value, YamlValue::Map(_)) {
        return Err(tree
            .at(file)
            .error(format!("{root}: expected a mapping, got {}", tree.kind())));
    }
    for (k, line, v) in tree.entries() {
        let at = At { file, line: *line };
        if let Some(key) = k.strip_prefix('+') {
            check_value(resource, key, v, &format!("{root}.{k}"), at, warnings)?;
        } else if k == project {
            check_level(resource, v, &format!("{root}.{k}"), file, warnings)?;
        } else if is_config_name(resource, k) && !matches!(v.value, YamlValue::Map(_)) {
            check_value(resource, k, v, &format!("{root}.{k}"), at, warnings)?;
        } else {
            warnings.push(format!(
                "Configuration paths exist in your dbt_project.yml file which do not apply to any resources: {root}.{k} (no package named '{k}' is installed)"
            ));
        }
    }
    Ok(())
}

/// Checks the levels of the root project's trees that name an installed package
/// (`models: {shop_pkg: {+materialized: …}}`) as strictly as the project's own.
pub(crate) fn check_package_trees(
    doc: &Yaml,
    packages: &[&str],
    file: &str,
    warnings: &mut Warnings,
) -> Result<()> {
    let trees: [(&[&str], Resource); 6] = [
        (&["models"], Resource::Model),
        (&["data_tests", "tests"], Resource::DataTest),
        (&["sources"], Resource::Source),
        (&["seeds"], Resource::Seed),
        (&["analyses"], Resource::Analysis),
        (&["snapshots"], Resource::Snapshot),
    ];
    for (keys, resource) in trees {
        let Some(tree) = keys.iter().find_map(|k| doc.get(k)) else {
            continue;
        };
        if !matches!(tree.value, YamlValue::Map(_)) {
            continue; // refused when the file was read
        }
        for (k, _, v) in tree.entries() {
            if packages.contains(&k.as_str()) {
                let path = format!("{}.{k}", resource.tree_key());
                check_level(resource, v, &path, file, warnings)?;
            }
        }
    }
    Ok(())
}

fn check_level(
    resource: Resource,
    level: &Yaml,
    path: &str,
    file: &str,
    warnings: &mut Warnings,
) -> Result<()> {
    if level.is_null() {
        return Ok(());
    }
    if !matches!(level.value, YamlValue::Map(_)) {
        return Err(level.at(file).error(format!(
            "{path}: expected a mapping of configs and folders, got {}",
            level.kind()
        )));
    }
    for (k, line, v) in level.entries() {
        let at = At { file, line: *line };
        let here = format!("{path}.{k}");
        if let Some(key) = k.strip_prefix('+') {
            check_value(resource, key, v, &here, at, warnings)?;
        } else if matches!(v.value, YamlValue::Map(_)) {
            check_level(resource, v, &here, file, warnings)?;
        } else if is_config_name(resource, k) {
            check_value(resource, k, v, &here, at, warnings)?;
        } else {
            // Neither a folder nor a config dbt knows: a custom config without
            // its `+`, kept like dbt keeps it.
            check_value(resource, k, v, &here, at, warnings)?;
        }
    }
    Ok(())
}

/// A source's freshness policy (`warn_after`/`error_after`, each a `count` of
/// `period`s, and an optional `filter`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FreshnessPolicy {
    pub(crate) warn_after: Option<Threshold>,
    pub(crate) error_after: Option<Threshold>,
    pub(crate) filter: Option<String>,
}

/// `{count: 12, period: hour}`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Threshold {
    pub(crate) count: f64,
    pub(crate) period: Period,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Period {
    Minute,
    Hour,
    Day,
}

impl Period {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Period::Minute => "minute",
            Period::Hour => "hour",
            Period::Day => "day",
        }
    }

    pub(crate) fn seconds(self) -> f64 {
        match self {
            Period::Minute => 60.0,
            Period::Hour => 3600.0,
            Period::Day => 86400.0,
        }
    }
}

impl Threshold {
    pub(crate) fn seconds(self) -> f64 {
        self.count * self.period.seconds()
    }
}

impl FreshnessPolicy {
    /// Reads a `freshness:` value; `null` (the policy switched off) is `None`.
    pub(crate) fn from_yaml(v: &Yaml, at: At<'_>) -> Result<Option<FreshnessPolicy>> {
        if v.is_null() {
            return Ok(None);
        }
        if !matches!(v.value, YamlValue::Map(_)) {
            return Err(at.error(format!(
                "freshness: expected a mapping with warn_after/error_after, got {}",
                v.kind()
            )));
        }
        let mut policy = FreshnessPolicy {
            warn_after: None,
            error_after: None,
            filter: None,
        };
        for (k, line, val) in v.entries() {
            let at = At {
                file: at.file,
                line: *line,
            };
            match k.as_str() {
                "warn_after" => policy.warn_after = threshold(val, k, at)?,
                "error_after" => policy.error_after = threshold(val, k, at)?,
                "filter" => match &val.value {
                    YamlValue::Str(s) => policy.filter = Some(s.clone()),
                    YamlValue::Null => {}
                    _ => return Err(at.error("freshness.filter: expected an SQL condition")),
                },
                other => {
                    return Err(at.error(format!(
                        "freshness.{other}: unknown key; a freshness policy has warn_after, error_after and filter"
                    )))
                }
            }
        }
        Ok(Some(policy))
    }

    /// Whether it has a threshold to check.
    pub(crate) fn has_threshold(&self) -> bool {
        self.warn_after.is_some() || self.error_after.is_some()
    }

    /// The policy as `sources.json` and `manifest.json` write it.
    pub(crate) fn to_json(&self) -> Value {
        let t = |t: &Option<Threshold>| match t {
            Some(t) if t.count.fract() == 0.0 => {
                serde_json::json!({"count": t.count as i64, "period": t.period.as_str()})
            }
            Some(t) => serde_json::json!({"count": t.count, "period": t.period.as_str()}),
            None => serde_json::json!({"count": null, "period": null}),
        };
        serde_json::json!({
            "warn_after": t(&self.warn_after),
            "error_after": t(&self.error_after),
            "filter": self.filter,
        })
    }
}

fn threshold(v: &Yaml, key: &str, at: At<'_>) -> Result<Option<Threshold>> {
    if v.is_null() {
        return Ok(None);
    }
    let count = v.get("count");
    let period = v.get("period");
    match (count, period) {
        (None, None) => Ok(None),
        (Some(c), Some(p)) if c.is_null() && p.is_null() => Ok(None),
        (Some(c), Some(p)) => {
            let count = match c.value {
                YamlValue::Int(n) if n >= 0 => n as f64,
                YamlValue::Float(f) if f >= 0.0 => f,
                _ => {
                    return Err(At { line: c.line, ..at }.error(format!(
                        "freshness.{key}.count: expected a number, got {}",
                        describe(c)
                    )))
                }
            };
            let period = match p.as_str() {
                Some("minute") => Period::Minute,
                Some("hour") => Period::Hour,
                Some("day") => Period::Day,
                _ => {
                    return Err(At { line: p.line, ..at }.error(format!(
                        "freshness.{key}.period: expected minute, hour or day, got {}",
                        describe(p)
                    )))
                }
            };
            Ok(Some(Threshold { count, period }))
        }
        _ => Err(at.error(format!(
            "freshness.{key}: needs both `count` and `period`, e.g. {{count: 12, period: hour}}"
        ))),
    }
}

/// The configs a node at `fqn_tail` (folders below its path, then its name) gets
/// from a `dbt_project.yml` tree rooted at the project's name, least specific
/// first. Tags accumulate; other keys are replaced by more specific levels.
pub(crate) fn tree_config(
    resource: Resource,
    tree: &Value,
    project_name: &str,
    fqn_tail: &[String],
) -> Map<String, Value> {
    let mut out = Map::new();
    // Configs at the very top (`models: {+materialized: table}`) apply to all.
    merge_level(resource, &mut out, tree, true);
    let Some(root) = tree.get(project_name) else {
        return out;
    };
    let mut level = root;
    merge_level(resource, &mut out, level, false);
    for part in fqn_tail {
        match level.get(part) {
            Some(next) if next.is_object() => {
                level = next;
                merge_level(resource, &mut out, level, false);
            }
            _ => break,
        }
    }
    out
}

fn merge_level(resource: Resource, out: &mut Map<String, Value>, level: &Value, top: bool) {
    let Some(obj) = level.as_object() else { return };
    for (k, v) in obj {
        let key = match k.strip_prefix('+') {
            Some(stripped) => stripped,
            None if !top && !v.is_object() => k.as_str(),
            None if top && is_config_name(resource, k) && !v.is_object() => k.as_str(),
            None => continue,
        };
        merge_config(out, key, v.clone());
    }
}

/// Sets one config key dbt's way: `tags` and hooks accumulate, `contract` is
/// updated key by key, `grants` privilege by privilege (`+select` extends),
/// everything else replaces.
pub(crate) fn merge_config(out: &mut Map<String, Value>, key: &str, value: Value) {
    if let Some(canonical) = hook_key(key) {
        let merged = merge_hooks(out.get(canonical), &value);
        out.insert(canonical.to_string(), merged);
    } else if key == "grants" {
        let merged = merge_grants(out.get(key), &value);
        out.insert(key.to_string(), merged);
    } else if key == "contract" {
        if let (Some(Value::Object(old)), Value::Object(new)) = (out.get_mut(key), &value) {
            for (k, v) in new {
                old.insert(k.clone(), v.clone());
            }
            return;
        }
        out.insert(key.to_string(), value);
    } else if key == "tags" {
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
