//! Exposures: the `exposures:` entries of the YAML property files under the model
//! paths (dbt-core 1.x: `name`, `type`, `owner`, `depends_on` of `ref('…')` and
//! `source('…', '…')`, `label`, `description`, `maturity`, `url`, `tags`, `meta`),
//! resolved against the manifest's models and sources. They never run: the docs
//! site draws them in the lineage and `manifest.json` lists them.
//!
//! Read here, from the files, rather than by the project loader: the loader keeps
//! what runs, and an exposure only names what it reads.

use std::path::Path;

use serde_json::{Map, Value};

use crate::cancel::Cancel;
use crate::error::{Error, Result};
use crate::manifest::{Exposure, Manifest};
use crate::project::{parse_yaml, walk};

const TYPES: &[&str] = &["dashboard", "notebook", "analysis", "ml", "application"];
const MATURITIES: &[&str] = &["low", "medium", "high"];

/// The exposures declared in the `.yml` files of `model_paths`, resolved against
/// `manifest`; an error names the file and what to fix.
pub(crate) fn load(
    dir: &Path,
    model_paths: &[String],
    manifest: &Manifest,
    cancel: &Cancel,
) -> Result<Vec<Exposure>> {
    let mut out: Vec<Exposure> = Vec::new();
    for mp in model_paths {
        for f in walk(dir, mp, cancel)? {
            let yaml =
                f.original_file_path.ends_with(".yml") || f.original_file_path.ends_with(".yaml");
            if !yaml || !f.content.contains("exposures") {
                continue;
            }
            let doc = parse_yaml(&f.content, &f.original_file_path)?;
            let Some(entries) = doc.get("exposures") else {
                continue;
            };
            let Value::Array(entries) = entries else {
                return Err(Error::in_file(
                    f.original_file_path.clone(),
                    "`exposures:` must be a list of exposures",
                ));
            };
            let dirs: Vec<&str> = f.path.split('/').collect();
            for e in entries {
                let x = exposure(e, &f.original_file_path, &dirs, manifest)?;
                if let Some(prev) = out.iter().find(|o| o.name == x.name) {
                    return Err(Error::in_file(
                        f.original_file_path.clone(),
                        format!(
                            "exposure '{}' is also declared in {}; rename one of them",
                            x.name, prev.original_file_path
                        ),
                    ));
                }
                out.push(x);
            }
        }
    }
    Ok(out)
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn exposure(e: &Value, file: &str, dirs: &[&str], manifest: &Manifest) -> Result<Exposure> {
    let fail = |msg: String| Error::in_file(file.to_string(), msg);
    let name = text(e, "name").ok_or_else(|| {
        fail("an exposure has no `name:`; name every entry under `exposures:`".into())
    })?;
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(fail(format!(
            "exposure '{name}': a name has only letters, digits and underscores; put the display name in `label:`"
        )));
    }
    let kind = text(e, "type").ok_or_else(|| {
        fail(format!(
            "exposure '{name}' has no `type:`; use one of {}",
            TYPES.join(", ")
        ))
    })?;
    if !TYPES.contains(&kind.as_str()) {
        return Err(fail(format!(
            "exposure '{name}': type '{kind}' is not one of {}",
            TYPES.join(", ")
        )));
    }
    let owner = e.get("owner").cloned().unwrap_or(Value::Null);
    let (owner_name, owner_email) = (text(&owner, "name"), text(&owner, "email"));
    if owner_name.is_none() && owner_email.is_none() {
        return Err(fail(format!(
            "exposure '{name}' has no owner; give `owner:` a `name:` or an `email:`"
        )));
    }
    let maturity = text(e, "maturity");
    if let Some(m) = &maturity {
        if !MATURITIES.contains(&m.as_str()) {
            return Err(fail(format!(
                "exposure '{name}': maturity '{m}' is not one of {}",
                MATURITIES.join(", ")
            )));
        }
    }
    let mut refs = Vec::new();
    let mut sources = Vec::new();
    let mut depends_on_nodes = Vec::new();
    let deps = match e.get("depends_on") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.clone(),
        Some(_) => {
            return Err(fail(format!(
            "exposure '{name}': `depends_on:` must be a list such as [\"ref('mart_daily_kpis')\"]"
        )))
        }
    };
    for d in &deps {
        let s = d.as_str().unwrap_or_default();
        let id = match parse_call(s) {
            Some((f, args)) if f == "ref" && (args.len() == 1 || args.len() == 2) => {
                let model = args.last().cloned().unwrap_or_default();
                let id = format!("model.{}.{model}", manifest.project_name);
                if manifest.node(&id).is_none() {
                    let why = if manifest.disabled.contains(&model) {
                        "is disabled"
                    } else {
                        "does not exist"
                    };
                    return Err(fail(format!(
                        "exposure '{name}' depends on ref('{model}'), which {why}; fix the name or remove it"
                    )));
                }
                refs.push(model);
                id
            }
            Some((f, args)) if f == "source" && args.len() == 2 => {
                let id = format!("source.{}.{}.{}", manifest.project_name, args[0], args[1]);
                if manifest.source(&id).is_none() {
                    return Err(fail(format!(
                        "exposure '{name}' depends on source('{}', '{}'), which is not declared under `sources:`",
                        args[0], args[1]
                    )));
                }
                sources.push((args[0].clone(), args[1].clone()));
                id
            }
            _ => {
                return Err(fail(format!(
                    "exposure '{name}': depends_on entry {d} is neither ref('model') nor source('source', 'table')"
                )))
            }
        };
        if !depends_on_nodes.contains(&id) {
            depends_on_nodes.push(id);
        }
    }
    let tags = match e.get("tags") {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    };
    let mut fqn = vec![manifest.project_name.clone()];
    fqn.extend(
        dirs[..dirs.len().saturating_sub(1)]
            .iter()
            .map(|d| d.to_string()),
    );
    fqn.push(name.clone());
    Ok(Exposure {
        unique_id: format!("exposure.{}.{name}", manifest.project_name),
        label: text(e, "label"),
        kind,
        description: text(e, "description").unwrap_or_default(),
        owner_name,
        owner_email,
        maturity,
        url: text(e, "url"),
        tags,
        meta: e.get("meta").cloned().unwrap_or(Value::Object(Map::new())),
        original_file_path: file.to_string(),
        fqn,
        refs,
        sources,
        depends_on_nodes,
        name,
    })
}

/// `ref('a')`, `ref("pkg", "a")`, `source('s', 't')` → the function and its
/// string arguments; None for anything else.
fn parse_call(s: &str) -> Option<(String, Vec<String>)> {
    let s = s.trim();
    let s = s
        .strip_prefix("{{")
        .and_then(|x| x.strip_suffix("}}"))
        .unwrap_or(s)
        .trim();
    let open = s.find('(')?;
    let func = s[..open].trim().to_string();
    let inner = s[open + 1..].strip_suffix(')')?;
    let mut args = Vec::new();
    for part in inner.split(',') {
        let p = part.trim();
        if p.is_empty() {
            continue;
        }
        let unq = p
            .strip_prefix('\'')
            .and_then(|x| x.strip_suffix('\''))
            .or_else(|| p.strip_prefix('"').and_then(|x| x.strip_suffix('"')))?;
        args.push(unq.to_string());
    }
    Some((func, args))
}

#[cfg(test)]
mod tests {
    use super::parse_call;

    #[test]
    fn parses_refs_and_sources() {
        assert_eq!(
            parse_call("ref('mart_daily_kpis')"),
            Some(("ref".into(), vec!["mart_daily_kpis".into()]))
        );
        assert_eq!(
            parse_call("{{ source(\"raw_stripe\", 'charges') }}"),
            Some(("source".into(), vec!["raw_stripe".into(), "charges".into()]))
        );
        assert_eq!(parse_call("mart_daily_kpis"), None);
        assert_eq!(parse_call("ref(mart)"), None);
    }
}
