//! dbt's semantic layer as far as a PostgreSQL build sees it: metrics, semantic
//! models, saved queries and groups read from the property files, resolved to
//! what they read (a semantic model's model, a metric's semantic models or
//! metrics, a saved query's metrics) so that `ls`, selection and `manifest.json`
//! show them as dbt does. Nothing is built for them (MetricFlow queries them).
//!
//! Also what every YAML entry that builds nothing (exposures too) shares once
//! read: where it is, for messages; its fqn; the `ref()`/`source()`/`metric()`
//! calls written in a `depends_on:` or a `model:`.

use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::manifest::{Manifest, NodeKind, Ref, SemanticNode};
use crate::project::{PropertyEntry, Yaml};

/// `groups:`: name and owner (`{name, email}`).
type Groups = Vec<(String, Value)>;

const METRIC_TYPES: &[&str] = &["simple", "ratio", "derived", "cumulative", "conversion"];

/// The semantic models, metrics and saved queries of `entries` (in that order,
/// each resolved against the ones before it and the manifest's models), and the
/// groups; an error names the file, the line and what to fix.
pub(crate) fn load(
    entries: &[PropertyEntry],
    manifest: &Manifest,
) -> Result<(Vec<SemanticNode>, Groups)> {
    let project = &manifest.project_name;
    let mut out: Vec<SemanticNode> = Vec::new();
    let mut groups: Groups = Vec::new();
    for e in entries.iter().filter(|e| e.key == "groups") {
        let at = EntryAt::of(e);
        let name = at.name(&e.value, "a group")?;
        let owner = e
            .value
            .get("owner")
            .map(Yaml::to_json)
            .unwrap_or(Value::Null);
        if !owner.is_object() {
            return Err(at.error(format!(
                "group '{name}' has no owner; give `owner:` a `name:` or an `email:`"
            )));
        }
        if groups.iter().any(|(g, _)| g == &name) {
            return Err(at.error(format!("group '{name}' is declared twice; rename one")));
        }
        groups.push((name, owner));
    }
    // Measure name → its semantic model's unique id.
    let mut measures: Vec<(String, String)> = Vec::new();
    for e in entries.iter().filter(|e| e.key == "semantic_models") {
        let at = EntryAt::of(e);
        let name = at.name(&e.value, "a semantic model")?;
        let id = format!("semantic_model.{project}.{name}");
        let model = text(&e.value, "model", &at)?.ok_or_else(|| {
            at.error(format!(
                "semantic model '{name}' has no `model:`; name the model it describes, e.g. model: ref('orders')"
            ))
        })?;
        let Some(Call::Ref { name: m, version }) = parse_call(&model) else {
            return Err(at.error(format!(
                "semantic model '{name}': `model: {model}` is not ref('model')"
            )));
        };
        let r = Ref {
            package: None,
            name: m,
            version,
        };
        let Some(model_id) = manifest.resolve_ref(&r) else {
            return Err(at.error(format!(
                "semantic model '{name}' reads ref('{}'), which is not an enabled model; fix the name",
                r.name
            )));
        };
        for m in e.value.get("measures").map(list_of).unwrap_or_default() {
            if let Some(n) = m.get("name").and_then(Yaml::as_str) {
                measures.push((n.to_string(), id.clone()));
            }
        }
        push(
            &mut out,
            node(e, manifest, NodeKind::SemanticModel, name, vec![model_id])?,
        )?;
    }
    let metric_entries: Vec<&PropertyEntry> =
        entries.iter().filter(|e| e.key == "metrics").collect();
    let metric_names: Vec<String> = metric_entries
        .iter()
        .filter_map(|e| {
            e.value
                .get("name")
                .and_then(Yaml::as_str)
                .map(str::to_string)
        })
        .collect();
    for e in metric_entries {
        let at = EntryAt::of(e);
        let name = at.name(&e.value, "a metric")?;
        let kind = text(&e.value, "type", &at)?
            .unwrap_or_default()
            .to_lowercase();
        if !METRIC_TYPES.contains(&kind.as_str()) {
            return Err(at.error(format!(
                "metric '{name}': `type:` must be one of {}",
                METRIC_TYPES.join(", ")
            )));
        }
        let params = e.value.get("type_params");
        let mut deps: Vec<String> = Vec::new();
        let mut add = |id: String| {
            if !deps.contains(&id) {
                deps.push(id);
            }
        };
        let named = |v: Option<&Yaml>| -> Option<String> {
            let v = v?;
            v.as_str()
                .or_else(|| v.get("name").and_then(Yaml::as_str))
                .map(str::to_string)
        };
        let measure_of = |m: &str| -> Result<String> {
            measures
                .iter()
                .find(|(n, _)| n == m)
                .map(|(_, id)| id.clone())
                .ok_or_else(|| {
                    at.error(format!(
                        "metric '{name}' uses measure '{m}', which no semantic model declares; fix the name"
                    ))
                })
        };
        let metric_of = |m: &str| -> Result<String> {
            if metric_names.iter().any(|n| n == m) {
                Ok(format!("metric.{project}.{m}"))
            } else {
                Err(at.error(format!(
                    "metric '{name}' uses metric '{m}', which is not declared under `metrics:`; fix the name"
                )))
            }
        };
        match kind.as_str() {
            "simple" | "cumulative" => {
                let Some(m) = named(params.and_then(|p| p.get("measure"))) else {
                    return Err(at.error(format!(
                        "metric '{name}' ({kind}) has no `type_params: {{measure: …}}`"
                    )));
                };
                add(measure_of(&m)?);
            }
            "ratio" => {
                for side in ["numerator", "denominator"] {
                    let Some(m) = named(params.and_then(|p| p.get(side))) else {
                        return Err(at.error(format!(
                            "metric '{name}' (ratio) has no `type_params: {{{side}: …}}`"
                        )));
                    };
                    add(metric_of(&m)?);
                }
            }
            "derived" => {
                for m in params
                    .and_then(|p| p.get("metrics"))
                    .map(list_of)
                    .unwrap_or_default()
                {
                    if let Some(m) = named(Some(&m)) {
                        add(metric_of(&m)?);
                    }
                }
            }
            _ => {
                let c = params.and_then(|p| p.get("conversion_type_params"));
                for side in ["base_measure", "conversion_measure"] {
                    if let Some(m) = named(c.and_then(|c| c.get(side))) {
                        add(measure_of(&m)?);
                    }
                }
            }
        }
        push(&mut out, node(e, manifest, NodeKind::Metric, name, deps)?)?;
    }
    for e in entries.iter().filter(|e| e.key == "saved_queries") {
        let at = EntryAt::of(e);
        let name = at.name(&e.value, "a saved query")?;
        let mut deps = Vec::new();
        let metrics = e
            .value
            .get("query_params")
            .and_then(|q| q.get("metrics"))
            .map(list_of)
            .unwrap_or_default();
        for m in metrics.iter().filter_map(|m| m.as_str()) {
            let id = format!("metric.{project}.{m}");
            if !out.iter().any(|x| x.unique_id == id) {
                return Err(at.error(format!(
                    "saved query '{name}' uses metric '{m}', which is not declared under `metrics:`; fix the name"
                )));
            }
            deps.push(id);
        }
        push(
            &mut out,
            node(e, manifest, NodeKind::SavedQuery, name, deps)?,
        )?;
    }
    Ok((out, groups))
}

/// A list of strings, or one string, as dbt reads `tags:`.
pub(crate) fn string_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

fn list_of(v: &Yaml) -> Vec<Yaml> {
    match &v.value {
        crate::project::YamlValue::Seq(items) => items.clone(),
        _ => Vec::new(),
    }
}

fn push(out: &mut Vec<SemanticNode>, n: SemanticNode) -> Result<()> {
    if let Some(prev) = out.iter().find(|x| x.unique_id == n.unique_id) {
        return Err(Error::in_file(
            n.original_file_path.clone(),
            format!(
                "{} '{}' is also declared in {}; rename one of them",
                n.kind.as_str().replace('_', " "),
                n.name,
                prev.original_file_path
            ),
        ));
    }
    out.push(n);
    Ok(())
}

/// The node of entry `e`, with dbt's config of its kind.
fn node(
    e: &PropertyEntry,
    manifest: &Manifest,
    kind: NodeKind,
    name: String,
    depends_on_nodes: Vec<String>,
) -> Result<SemanticNode> {
    let at = EntryAt::of(e);
    let spec = e.value.to_json();
    let given = match spec.get("config") {
        Some(Value::Object(c)) => c.clone(),
        _ => Map::new(),
    };
    let mut config = Map::new();
    config.insert(
        "enabled".into(),
        given.get("enabled").cloned().unwrap_or(json!(true)),
    );
    config.insert(
        "group".into(),
        given
            .get("group")
            .or(spec.get("group"))
            .cloned()
            .unwrap_or(Value::Null),
    );
    config.insert(
        "meta".into(),
        given
            .get("meta")
            .or(spec.get("meta"))
            .cloned()
            .unwrap_or(json!({})),
    );
    if kind == NodeKind::SavedQuery {
        config.insert("export_as".into(), Value::Null);
        config.insert("schema".into(), Value::Null);
        config.insert("cache".into(), json!({"enabled": false}));
    }
    let tags = string_list(spec.get("tags").or(given.get("tags")));
    Ok(SemanticNode {
        unique_id: format!("{}.{}.{name}", kind.as_str(), manifest.project_name),
        kind,
        label: text(&e.value, "label", &at)?,
        description: text(&e.value, "description", &at)?.unwrap_or_default(),
        original_file_path: e.file.clone(),
        fqn: fqn_of(&manifest.project_name, e, &name),
        tags,
        config,
        depends_on_nodes,
        spec,
        name,
    })
}

/// Where an entry is written, and what it is, for messages.
#[derive(Debug, Clone)]
pub(crate) struct EntryAt {
    file: String,
    line: usize,
}

impl EntryAt {
    pub(crate) fn of(entry: &PropertyEntry) -> EntryAt {
        EntryAt {
            file: entry.file.clone(),
            line: entry.value.line,
        }
    }

    /// The same file at `line` (when known).
    pub(crate) fn at_line(&self, line: usize) -> EntryAt {
        EntryAt {
            file: self.file.clone(),
            line: if line > 0 { line } else { self.line },
        }
    }

    pub(crate) fn error(&self, message: impl Into<String>) -> Error {
        Error::usage(message).at(self.file.clone(), (self.line > 0).then_some(self.line))
    }

    /// The entry's `name:`, required.
    pub(crate) fn name(&self, e: &Yaml, what: &str) -> Result<String> {
        match text(e, "name", self)? {
            Some(n) => Ok(n),
            None => Err(self.error(format!(
                "{what} has no `name:`; name every entry of this list"
            ))),
        }
    }
}

/// Every key of `e` must be one of `known`: dbt refuses the others.
pub(crate) fn check_keys(e: &Yaml, known: &[&str], at: &EntryAt) -> Result<()> {
    for (k, line, _) in e.entries() {
        if !known.contains(&k.as_str()) {
            return Err(at.at_line(*line).error(format!(
                "`{k}:` is not a key of this entry (dbt knows {}); remove it or fix its spelling",
                known.join(", ")
            )));
        }
    }
    Ok(())
}

/// The string at `key` of `e`, trimmed; `None` when absent, null or blank.
pub(crate) fn text(e: &Yaml, key: &str, at: &EntryAt) -> Result<Option<String>> {
    match e.get(key) {
        None => Ok(None),
        Some(v) if v.is_null() => Ok(None),
        Some(v) => match v.as_str() {
            Some(s) => Ok(Some(s.trim().to_string()).filter(|s| !s.is_empty())),
            None => match v.to_json() {
                serde_json::Value::Number(n) => Ok(Some(n.to_string())),
                serde_json::Value::Bool(b) => Ok(Some(b.to_string())),
                _ => Err(at
                    .at_line(v.line)
                    .error(format!("`{key}:` must be a string, got {}", v.kind()))),
            },
        },
    }
}

/// dbt's fqn of an entry named `name` of property file `entry`: the project, the
/// folders of the file within its resource path, the name.
pub(crate) fn fqn_of(project: &str, entry: &PropertyEntry, name: &str) -> Vec<String> {
    let mut fqn = vec![project.to_string()];
    let parts: Vec<&str> = entry.path.split('/').collect();
    if parts.len() > 1 {
        fqn.extend(parts[..parts.len() - 1].iter().map(|s| s.to_string()));
    }
    fqn.push(name.to_string());
    fqn
}

/// A call written in YAML: `ref('m')`, `ref('m', v=2)`, `source('s', 't')`,
/// `metric('x')`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Call {
    Ref {
        name: String,
        version: Option<String>,
    },
    Source {
        source: String,
        table: String,
    },
    Metric {
        name: String,
    },
}

/// Parses one call; `None` when `s` is none of them.
pub(crate) fn parse_call(s: &str) -> Option<Call> {
    let s = s.trim();
    let open = s.find('(')?;
    let f = s[..open].trim();
    let inner = s[open + 1..].strip_suffix(')')?;
    let mut positional: Vec<String> = Vec::new();
    let mut version = None;
    for arg in inner.split(',').map(str::trim).filter(|a| !a.is_empty()) {
        if let Some((k, v)) = arg.split_once('=') {
            let k = k.trim();
            if k != "v" && k != "version" {
                return None;
            }
            version = Some(unquote(v.trim()).unwrap_or(v.trim()).to_string());
        } else {
            positional.push(unquote(arg)?.to_string());
        }
    }
    match (f, positional.as_slice()) {
        ("ref", [name]) | ("ref", [_, name]) => Some(Call::Ref {
            name: name.clone(),
            version,
        }),
        ("source", [source, table]) if version.is_none() => Some(Call::Source {
            source: source.clone(),
            table: table.clone(),
        }),
        ("metric", [name]) | ("metric", [_, name]) if version.is_none() => {
            Some(Call::Metric { name: name.clone() })
        }
        _ => None,
    }
}

fn unquote(s: &str) -> Option<&str> {
    s.strip_prefix('\'')
        .and_then(|x| x.strip_suffix('\''))
        .or_else(|| s.strip_prefix('"').and_then(|x| x.strip_suffix('"')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls() {
        assert_eq!(
            parse_call("ref('orders')"),
            Some(Call::Ref {
                name: "orders".into(),
                version: None
            })
        );
        assert_eq!(
            parse_call("ref(\"members\", v=1)"),
            Some(Call::Ref {
                name: "members".into(),
                version: Some("1".into())
            })
        );
        assert_eq!(
            parse_call("source('raw', 'items')"),
            Some(Call::Source {
                source: "raw".into(),
                table: "items".into()
            })
        );
        assert_eq!(
            parse_call("metric('revenue')"),
            Some(Call::Metric {
                name: "revenue".into()
            })
        );
        assert_eq!(parse_call("model('x')"), None);
        assert_eq!(parse_call("ref(orders)"), None);
    }
}
