//! `dbt_project.yml`, read into [`ProjectFile`]: every top-level key dbt 1.10
//! knows is either understood, accepted because it changes nothing we build, or
//! refused as not supported yet — each error naming the file and line.

use serde_json::{Map, Value};

use crate::error::Result;

use crate::manifest::Quoting;

use super::config::{check_tree, Warnings};
use super::keys::Resource;
use super::yaml::{At, Yaml, YamlValue};

/// The settings of `dbt_project.yml` that loading and rendering use.
#[derive(Debug, Clone)]
pub(crate) struct ProjectFile {
    pub(crate) name: String,
    pub(crate) model_paths: Vec<String>,
    pub(crate) macro_paths: Vec<String>,
    pub(crate) test_paths: Vec<String>,
    pub(crate) seed_paths: Vec<String>,
    pub(crate) snapshot_paths: Vec<String>,
    pub(crate) analysis_paths: Vec<String>,
    /// Where `.md` files with docs blocks are; `None`: every resource path.
    pub(crate) docs_paths: Option<Vec<String>>,
    /// `target-path`, relative to the project directory unless absolute.
    pub(crate) target_path: String,
    /// `clean-targets`: what `clean` deletes (default: the target path).
    pub(crate) clean_targets: Vec<String>,
    /// `log-path`: where the log file goes (default: `logs`).
    pub(crate) log_path: Option<String>,
    /// Project-level `vars:` (global ones and those scoped to this project).
    pub(crate) vars: Map<String, Value>,
    /// `vars:` without the block scoped to this project: what the project's
    /// packages see of them.
    pub(crate) global_vars: Map<String, Value>,
    /// The config trees: `models:`, `data_tests:` (or `tests:`), `sources:`, `seeds:`,
    /// `analyses:`, `snapshots:`.
    pub(crate) models: Value,
    pub(crate) data_tests: Value,
    pub(crate) sources: Value,
    pub(crate) seeds: Value,
    pub(crate) analyses: Value,
    pub(crate) snapshots: Value,
    /// `quoting:`: which parts of relation names are quoted (all by default).
    pub(crate) quoting: Quoting,
    /// `on-run-start` and `on-run-end`: SQL (Jinja) run before and after a job.
    pub(crate) on_run_start: Vec<String>,
    pub(crate) on_run_end: Vec<String>,
    /// `packages-install-path`: where `deps` installs packages (default `dbt_packages`).
    pub(crate) packages_install_path: String,
    /// `dispatch:`: a macro namespace → the packages searched, in order.
    pub(crate) dispatch: Vec<(String, Vec<String>)>,
}

/// Reads the parsed `dbt_project.yml` (`file` names it in messages).
pub(crate) fn read(doc: &Yaml, file: &str, warnings: &mut Warnings) -> Result<ProjectFile> {
    if !matches!(doc.value, YamlValue::Map(_)) {
        return Err(doc.at(file).error(format!(
            "expected a mapping of project settings, got {}",
            doc.kind()
        )));
    }
    let name = match doc.get("name") {
        Some(n) => match n.as_str() {
            Some(s) if valid_name(s) => s.to_string(),
            Some(s) => {
                return Err(n.at(file).error(format!(
                    "name: '{s}' is not a valid project name; use letters, digits and underscores, starting with a letter or underscore"
                )))
            }
            None => return Err(n.at(file).error("name: expected a string")),
        },
        None => {
            return Err(doc
                .at(file)
                .error("`name:` is missing; give the project a name"))
        }
    };
    for (key, line, value) in doc.entries() {
        let at = At { file, line: *line };
        check_top_level(key, value, at, warnings)?;
    }
    let paths = |keys: &[&str], default: &str| -> Result<Vec<String>> {
        for key in keys {
            if let Some(v) = doc.get(key) {
                return string_list(v, key, file);
            }
        }
        Ok(vec![default.to_string()])
    };
    let target_path = match doc.get("target-path") {
        Some(v) => match v.as_str() {
            Some(s) => s.to_string(),
            None => return Err(v.at(file).error("target-path: expected a path")),
        },
        None => "target".to_string(),
    };
    let tree = |keys: &[&str], resource: Resource, warnings: &mut Warnings| -> Result<Value> {
        for key in keys {
            if let Some(v) = doc.get(key) {
                check_tree(resource, v, &name, file, warnings)?;
                return Ok(v.to_json());
            }
        }
        Ok(Value::Null)
    };
    let models = tree(&["models"], Resource::Model, warnings)?;
    let data_tests = tree(&["data_tests", "tests"], Resource::DataTest, warnings)?;
    let sources = tree(&["sources"], Resource::Source, warnings)?;
    let seeds = tree(&["seeds"], Resource::Seed, warnings)?;
    let analyses = tree(&["analyses"], Resource::Analysis, warnings)?;
    let snapshots = tree(&["snapshots"], Resource::Snapshot, warnings)?;
    let quoting = match doc.get("quoting") {
        Some(q) => read_quoting(q, "quoting", file)?,
        None => Quoting::default(),
    };

    // vars: top-level keys are global, except a key named after the project, whose
    // contents are scoped to it (dbt-core semantics) and take precedence.
    let mut vars = Map::new();
    let mut global_vars = Map::new();
    if let Some(v) = doc.get("vars") {
        match v.to_json() {
            Value::Object(all) => {
                for (k, val) in &all {
                    if k != &name {
                        vars.insert(k.clone(), val.clone());
                    }
                }
                global_vars = vars.clone();
                if let Some(Value::Object(scoped)) = all.get(&name) {
                    for (k, val) in scoped {
                        vars.insert(k.clone(), val.clone());
                    }
                }
            }
            Value::Null => {}
            _ => {
                return Err(v
                    .at(file)
                    .error("vars: expected a mapping of names to values"))
            }
        }
    }
    let run_hooks = |key: &str| -> Result<Vec<String>> {
        let Some(v) = doc.get(key) else {
            return Ok(Vec::new());
        };
        let want = |y: &Yaml| {
            y.at(file).error(format!(
                "{key}: expected SQL text or a list of SQL texts, got {}",
                y.kind()
            ))
        };
        match &v.value {
            YamlValue::Null => Ok(Vec::new()),
            YamlValue::Str(s) => Ok(vec![s.clone()]),
            YamlValue::Seq(items) => items
                .iter()
                .map(|i| i.as_str().map(str::to_string).ok_or_else(|| want(i)))
                .collect(),
            _ => Err(want(v)),
        }
    };
    let packages_install_path = match doc.get("packages-install-path") {
        Some(v) => v
            .as_str()
            .ok_or_else(|| v.at(file).error("packages-install-path: expected a path"))?
            .to_string(),
        None => "dbt_packages".to_string(),
    };
    let dispatch = match doc.get("dispatch") {
        Some(v) => read_dispatch(v, file)?,
        None => Vec::new(),
    };
    Ok(ProjectFile {
        packages_install_path,
        dispatch,
        on_run_start: run_hooks("on-run-start")?,
        on_run_end: run_hooks("on-run-end")?,
        model_paths: paths(&["model-paths", "source-paths"], "models")?,
        macro_paths: paths(&["macro-paths"], "macros")?,
        test_paths: paths(&["test-paths"], "tests")?,
        seed_paths: paths(&["seed-paths", "data-paths"], "seeds")?,
        snapshot_paths: paths(&["snapshot-paths"], "snapshots")?,
        analysis_paths: paths(&["analysis-paths"], "analyses")?,
        docs_paths: match doc.get("docs-paths") {
            Some(v) => Some(string_list(v, "docs-paths", file)?),
            None => None,
        },
        clean_targets: match doc.get("clean-targets") {
            Some(v) => string_list(v, "clean-targets", file)?,
            None => vec![target_path.clone()],
        },
        log_path: match doc.get("log-path") {
            Some(v) => Some(
                v.as_str()
                    .ok_or_else(|| v.at(file).error("log-path: expected a path"))?
                    .to_string(),
            ),
            None => None,
        },
        target_path,
        vars,
        global_vars,
        models,
        data_tests,
        sources,
        seeds,
        analyses,
        snapshots,
        quoting,
        name,
    })
}

/// A `quoting:` mapping (`database`, `schema`, `identifier`, `column`, each true
/// or false) laid over every part quoted.
pub(super) fn read_quoting(q: &Yaml, path: &str, file: &str) -> Result<Quoting> {
    read_quoting_over(Quoting::default(), q, path, file)
}

/// `q` laid over `base`.
pub(super) fn read_quoting_over(
    base: Quoting,
    q: &Yaml,
    path: &str,
    file: &str,
) -> Result<Quoting> {
    if q.is_null() {
        return Ok(base);
    }
    if !matches!(q.value, YamlValue::Map(_)) {
        return Err(q.at(file).error(format!(
            "{path}: expected a mapping such as {{identifier: false}}, got {}",
            q.kind()
        )));
    }
    for (k, line, v) in q.entries() {
        let at = At { file, line: *line };
        if !matches!(k.as_str(), "database" | "schema" | "identifier" | "column") {
            return Err(at.error(format!(
                "{path}.{k}: unknown key; quoting has database, schema, identifier and column"
            )));
        }
        if !matches!(v.value, YamlValue::Bool(_) | YamlValue::Null) {
            return Err(at.error(format!(
                "{path}.{k}: expected true or false, got {}",
                v.kind()
            )));
        }
    }
    // `column` decides how dbt quotes column names in a few macros of
    // materializations this binary does not have; relation names ignore it.
    Ok(base.merged(q.to_json().as_object().unwrap_or(&serde_json::Map::new())))
}

/// `dispatch:`: a list of `{macro_namespace: name, search_order: [package, …]}`.
fn read_dispatch(v: &Yaml, file: &str) -> Result<Vec<(String, Vec<String>)>> {
    let want = |y: &Yaml| {
        y.at(file).error(format!(
            "dispatch: expected a list of {{macro_namespace: <package>, search_order: [<package>, …]}}, got {}",
            y.kind()
        ))
    };
    let items = match &v.value {
        YamlValue::Null => return Ok(Vec::new()),
        YamlValue::Seq(items) => items,
        _ => return Err(want(v)),
    };
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for item in items {
        if !matches!(item.value, YamlValue::Map(_)) {
            return Err(want(item));
        }
        for (k, line, _) in item.entries() {
            if k != "macro_namespace" && k != "search_order" {
                return Err(At { file, line: *line }.error(format!(
                    "dispatch: unknown key '{k}'; an entry has macro_namespace and search_order"
                )));
            }
        }
        let namespace = match item.get("macro_namespace").and_then(Yaml::as_str) {
            Some(n) => n.to_string(),
            None => {
                return Err(item
                    .at(file)
                    .error("dispatch: macro_namespace is missing; name the package whose macros are dispatched"))
            }
        };
        let order = match item.get("search_order") {
            Some(o) => string_list(o, "dispatch: search_order", file)?,
            None => {
                return Err(item.at(file).error(format!(
                    "dispatch: search_order is missing for '{namespace}'; list the packages to search, e.g. [my_project, {namespace}]"
                )))
            }
        };
        if out.iter().any(|(n, _)| n == &namespace) {
            return Err(item.at(file).error(format!(
                "dispatch: macro_namespace '{namespace}' is configured twice; keep one entry"
            )));
        }
        out.push((namespace, order));
    }
    Ok(out)
}

/// dbt's rule for a project's (and package's) name.
fn valid_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn string_list(v: &Yaml, key: &str, file: &str) -> Result<Vec<String>> {
    match &v.value {
        YamlValue::Str(s) => Ok(vec![s.clone()]),
        YamlValue::Seq(items) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| i.at(file).error(format!("{key}: expected a list of paths")))
            })
            .collect(),
        _ => Err(v
            .at(file)
            .error(format!("{key}: expected a list of paths, got {}", v.kind()))),
    }
}

/// One top-level key of `dbt_project.yml`.
fn check_top_level(key: &str, v: &Yaml, at: At<'_>, warnings: &mut Warnings) -> Result<()> {
    let refuse = |why: &str| {
        Err(at.error(format!(
            "{key}: {why}; remove it or run this project with dbt-core"
        )))
    };
    match key {
        // Understood (the config trees are checked where they are read).
        "name"
        | "version"
        | "config-version"
        | "profile"
        | "model-paths"
        | "macro-paths"
        | "test-paths"
        | "seed-paths"
        | "snapshot-paths"
        | "analysis-paths"
        | "target-path"
        | "clean-targets"
        | "log-path"
        | "vars"
        | "models"
        | "data_tests"
        | "tests"
        | "sources"
        | "docs-paths"
        | "seeds"
        | "snapshots"
        | "analyses"
        | "quoting"
        | "on-run-start"
        | "on-run-end"
        | "packages-install-path"
        | "dispatch" => Ok(()),
        "source-paths" => {
            warnings.push(
                "The `source-paths` config has been renamed to `model-paths`. Please update your `dbt_project.yml` configuration to reflect this change.".into(),
            );
            Ok(())
        }
        "data-paths" => {
            warnings.push(
                "The `data-paths` config has been renamed to `seed-paths`. Please update your `dbt_project.yml` configuration to reflect this change.".into(),
            );
            Ok(())
        }
        // Accepted: they change nothing reluvia-transform builds.
        "require-dbt-version"
        | "asset-paths"
        | "exposures"
        | "metrics"
        | "semantic-models"
        | "saved-queries"
        | "dbt-cloud"
        | "flags" => Ok(()),
        "restrict-access" => match v.value {
            YamlValue::Bool(false) | YamlValue::Null => Ok(()),
            _ => refuse("restricted model access (groups) is not supported yet"),
        },
        "query-comment" => refuse("query comments are not supported yet"),
        "unit_tests" => refuse(
            "unit test configs in dbt_project.yml are not supported yet; set `config:` on each unit test in its YAML file",
        ),
        other => {
            warnings.push(format!(
                "Unexpected top-level key `{other}` in file `{}`",
                at.file
            ));
            Ok(())
        }
    }
}
