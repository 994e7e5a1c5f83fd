//! Exposures: the `exposures:` entries of the YAML property files (dbt-core 1.x:
//! `name`, `type`, `owner`, `depends_on` of `ref('…')`, `source('…', '…')` and
//! `metric('…')`, `label`, `description`, `maturity`, `url`, `tags`, `meta`,
//! `config`), checked key by key as dbt checks them and resolved against the
//! manifest. They never run: `build` reports each as a no-op, `ls` lists them, the
//! docs site draws them in the lineage and `manifest.json` lists them.
//!
//! The project loader keeps the entries as read ([`PropertyEntry`]); this module
//! and [`crate::semantic`] (metrics, semantic models, saved queries, groups) give
//! them meaning once the models are known.

use serde_json::{Map, Value};

use crate::error::Result;
use crate::manifest::{Exposure, Manifest, Ref};
use crate::project::{PropertyEntry, Yaml};
use crate::semantic::{check_keys, fqn_of, parse_call, string_list, text, Call, EntryAt};

const TYPES: &[&str] = &["dashboard", "notebook", "analysis", "ml", "application"];
const MATURITIES: &[&str] = &["low", "medium", "high"];
const KEYS: &[&str] = &[
    "name",
    "type",
    "owner",
    "description",
    "label",
    "maturity",
    "meta",
    "tags",
    "url",
    "depends_on",
    "config",
];

/// The exposures of `entries`, resolved against `manifest` (whose metrics must be
/// known); an error names the file, the line and what to fix.
pub(crate) fn load(entries: &[PropertyEntry], manifest: &Manifest) -> Result<Vec<Exposure>> {
    let mut out: Vec<Exposure> = Vec::new();
    for e in entries.iter().filter(|e| e.key == "exposures") {
        let Some(x) = exposure(e, manifest)? else {
            continue;
        };
        if let Some(prev) = out.iter().find(|o| o.name == x.name) {
            return Err(EntryAt::of(e).error(format!(
                "exposure '{}' is also declared in {}; rename one of them",
                x.name, prev.original_file_path
            )));
        }
        out.push(x);
    }
    Ok(out)
}

/// One exposure; `None` when disabled by its config.
fn exposure(entry: &PropertyEntry, manifest: &Manifest) -> Result<Option<Exposure>> {
    let at = EntryAt::of(entry);
    let e = &entry.value;
    let name = at.name(e, "an exposure")?;
    check_keys(e, KEYS, &at)?;
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(at.error(format!(
            "exposure '{name}': a name has only letters, digits and underscores; put the display name in `label:`"
        )));
    }
    let kind = text(e, "type", &at)?.ok_or_else(|| {
        at.error(format!(
            "exposure '{name}' has no `type:`; use one of {}",
            TYPES.join(", ")
        ))
    })?;
    if !TYPES.contains(&kind.as_str()) {
        return Err(at.error(format!(
            "exposure '{name}': type '{kind}' is not one of {}",
            TYPES.join(", ")
        )));
    }
    let owner = e.get("owner");
    let (owner_name, owner_email) = match owner {
        Some(o) => (text(o, "name", &at)?, owner_email(o)),
        None => (None, None),
    };
    if owner_name.is_none() && owner_email.is_none() {
        return Err(at.error(format!(
            "exposure '{name}' has no owner; give `owner:` a `name:` or an `email:`"
        )));
    }
    let maturity = text(e, "maturity", &at)?;
    if let Some(m) = &maturity {
        if !MATURITIES.contains(&m.as_str()) {
            return Err(at.error(format!(
                "exposure '{name}': maturity '{m}' is not one of {}",
                MATURITIES.join(", ")
            )));
        }
    }
    let json = e.to_json();
    let mut config: Map<String, Value> = match json.get("config") {
        Some(Value::Object(c)) => c.clone(),
        None | Some(Value::Null) => Map::new(),
        Some(_) => return Err(at.error(format!("exposure '{name}': `config:` must be a mapping"))),
    };
    if config.get("enabled").and_then(Value::as_bool) == Some(false) {
        return Ok(None);
    }
    let mut tags = string_list(json.get("tags"));
    for t in string_list(config.get("tags")) {
        if !tags.contains(&t) {
            tags.push(t);
        }
    }
    let mut meta = json
        .get("meta")
        .cloned()
        .unwrap_or(Value::Object(Map::new()));
    if let (Value::Object(m), Some(Value::Object(cm))) = (&mut meta, config.get("meta")) {
        for (k, v) in cm {
            m.insert(k.clone(), v.clone());
        }
    }
    config.insert("enabled".into(), Value::Bool(true));
    config.insert("tags".into(), serde_json::json!(tags));
    config.insert("meta".into(), meta.clone());

    let mut refs = Vec::new();
    let mut sources = Vec::new();
    let mut metrics = Vec::new();
    let mut depends_on_nodes = Vec::new();
    let deps = match e.get("depends_on") {
        None => &[][..],
        Some(d) if d.is_null() => &[][..],
        Some(d) => match &d.value {
            crate::project::YamlValue::Seq(items) => items.as_slice(),
            _ => {
                return Err(at.error(format!(
                    "exposure '{name}': `depends_on:` must be a list such as [\"ref('mart_daily_kpis')\"]"
                )))
            }
        },
    };
    for d in deps {
        let s = d.as_str().unwrap_or_default();
        let id = match parse_call(s) {
            Some(Call::Ref { name: model, version }) => {
                let r = Ref {
                    package: None,
                    name: model.clone(),
                    version,
                };
                let Some(id) = manifest.resolve_ref(&r) else {
                    let why = if manifest.disabled.iter().any(|d| {
                        d == &format!("model.{}.{model}", manifest.project_name)
                            || d.starts_with(&format!("model.{}.{model}.v", manifest.project_name))
                    }) {
                        "is disabled"
                    } else {
                        "does not exist"
                    };
                    return Err(at.at_line(d.line).error(format!(
                        "exposure '{name}' depends on {s}, which {why}; fix the name or remove it"
                    )));
                };
                refs.push(r);
                id
            }
            Some(Call::Source { source, table }) => {
                let id = format!("source.{}.{source}.{table}", manifest.project_name);
                if manifest.source(&id).is_none() {
                    return Err(at.at_line(d.line).error(format!(
                        "exposure '{name}' depends on source('{source}', '{table}'), which is not declared under `sources:`"
                    )));
                }
                sources.push((source, table));
                id
            }
            Some(Call::Metric { name: metric }) => {
                let id = format!("metric.{}.{metric}", manifest.project_name);
                if manifest.semantic(&id).is_none() {
                    return Err(at.at_line(d.line).error(format!(
                        "exposure '{name}' depends on metric('{metric}'), which is not declared under `metrics:`"
                    )));
                }
                metrics.push(metric);
                id
            }
            None => {
                return Err(at.at_line(d.line).error(format!(
                    "exposure '{name}': depends_on entry {s:?} is none of ref('model'), source('source', 'table') or metric('metric')"
                )))
            }
        };
        if !depends_on_nodes.contains(&id) {
            depends_on_nodes.push(id);
        }
    }
    Ok(Some(Exposure {
        unique_id: format!("exposure.{}.{name}", manifest.project_name),
        label: text(e, "label", &at)?,
        kind,
        description: text(e, "description", &at)?.unwrap_or_default(),
        owner_name,
        owner_email,
        maturity,
        url: text(e, "url", &at)?,
        tags,
        meta,
        original_file_path: entry.file.clone(),
        fqn: fqn_of(&manifest.project_name, entry, &name),
        refs,
        sources,
        metrics,
        depends_on_nodes,
        config,
        name,
    }))
}

/// An owner's `email:`, a string or (dbt allows it) a list of them.
fn owner_email(o: &Yaml) -> Option<String> {
    match o.get("email").map(Yaml::to_json) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Some(Value::Array(items)) => {
            let all: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
            (!all.is_empty()).then(|| all.join(", "))
        }
        _ => None,
    }
}
