//! Project loading: reads a dbt-format project from disk, with dbt-core 1.x
//! semantics for `dbt_project.yml`, the YAML property files (sources, model and
//! column properties, data tests) and the model, macro and singular-test `.sql`
//! files. Nothing here renders Jinja or talks to a database: the result is plain
//! data that [`crate::render`] turns into nodes.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value};

use crate::cancel::Cancel;
use crate::error::{Error, Result};

mod config;
mod files;
mod properties;
mod yaml;

pub(crate) use config::{merge_config, tree_config};
pub(crate) use files::{walk, SqlFile};
pub(crate) use properties::{Column, ModelProps, SourceTable};
pub(crate) use yaml::parse_yaml;

/// A dbt project as read from disk.
#[derive(Debug, Clone)]
pub(crate) struct Project {
    pub(crate) name: String,
    pub(crate) model_paths: Vec<String>,
    pub(crate) macro_paths: Vec<String>,
    pub(crate) test_paths: Vec<String>,
    /// `target-path`, relative to the project directory unless absolute.
    pub(crate) target_path: String,
    /// Project-level `vars:` (global ones and those scoped to this project).
    pub(crate) vars: Map<String, Value>,
    /// The `models:` config tree of `dbt_project.yml`.
    pub(crate) models_config: Value,
    /// The `data_tests:` (or `tests:`) config tree of `dbt_project.yml`.
    pub(crate) tests_config: Value,
    pub(crate) models: Vec<SqlFile>,
    pub(crate) macros: Vec<SqlFile>,
    /// Singular data tests: `.sql` files in the test paths (outside `generic/`).
    pub(crate) singular_tests: Vec<SqlFile>,
    pub(crate) sources: Vec<SourceTable>,
    /// Model properties from YAML, by model name.
    pub(crate) model_props: BTreeMap<String, ModelProps>,
}

/// Reads the project in `dir`.
pub(crate) fn load(dir: &Path, cancel: &Cancel) -> Result<Project> {
    let file = dir.join("dbt_project.yml");
    let text = std::fs::read_to_string(&file).map_err(|e| {
        Error::usage(format!(
            "cannot read {}: {e}; point --project-dir (or the project_dir setting) at the directory holding dbt_project.yml",
            file.display()
        ))
    })?;
    let doc = parse_yaml(&text, &file.display().to_string())?;
    let name = doc
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            Error::in_file(
                file.display().to_string(),
                "`name:` is missing; give the project a name".to_string(),
            )
        })?
        .to_string();
    let list = |key: &str, default: &str| -> Vec<String> {
        match doc.get(key) {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            Some(Value::String(s)) => vec![s.clone()],
            _ => vec![default.to_string()],
        }
    };
    let model_paths = list("model-paths", "models");
    let macro_paths = list("macro-paths", "macros");
    let test_paths = list("test-paths", "tests");
    let target_path = doc
        .get("target-path")
        .and_then(Value::as_str)
        .unwrap_or("target")
        .to_string();

    // vars: top-level keys are global, except a key named after the project, whose
    // contents are scoped to it (dbt-core semantics) and take precedence.
    let mut vars = Map::new();
    if let Some(Value::Object(v)) = doc.get("vars") {
        for (k, val) in v {
            if k != &name {
                vars.insert(k.clone(), val.clone());
            }
        }
        if let Some(Value::Object(scoped)) = v.get(&name) {
            for (k, val) in scoped {
                vars.insert(k.clone(), val.clone());
            }
        }
    }

    let mut project = Project {
        name,
        model_paths,
        macro_paths,
        test_paths,
        target_path,
        vars,
        models_config: doc.get("models").cloned().unwrap_or(Value::Null),
        tests_config: doc
            .get("data_tests")
            .or_else(|| doc.get("tests"))
            .cloned()
            .unwrap_or(Value::Null),
        models: Vec::new(),
        macros: Vec::new(),
        singular_tests: Vec::new(),
        sources: Vec::new(),
        model_props: BTreeMap::new(),
    };

    let mut yml_files = Vec::new();
    for mp in project.model_paths.clone() {
        for f in files::walk(dir, &mp, cancel)? {
            if f.original_file_path.ends_with(".sql") {
                project.models.push(f);
            } else if f.original_file_path.ends_with(".yml")
                || f.original_file_path.ends_with(".yaml")
            {
                yml_files.push(f);
            }
        }
    }
    for mp in project.macro_paths.clone() {
        for f in files::walk(dir, &mp, cancel)? {
            if f.original_file_path.ends_with(".sql") {
                project.macros.push(f);
            } else if f.original_file_path.ends_with(".yml")
                || f.original_file_path.ends_with(".yaml")
            {
                yml_files.push(f);
            }
        }
    }
    for tp in project.test_paths.clone() {
        for f in files::walk(dir, &tp, cancel)? {
            if !f.original_file_path.ends_with(".sql") {
                continue;
            }
            // tests/generic/*.sql hold generic test definitions, like macros.
            if f.path.starts_with("generic/") {
                project.macros.push(f);
            } else {
                project.singular_tests.push(f);
            }
        }
    }

    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for m in &project.models {
        if let Some(other) = seen.insert(m.name.clone(), m.original_file_path.clone()) {
            return Err(Error::usage(format!(
                "two models are named '{}': {} and {}; rename one of the files",
                m.name, other, m.original_file_path
            )));
        }
    }

    for f in &yml_files {
        properties::read_properties(&mut project, f)?;
    }
    Ok(project)
}
