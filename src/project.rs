//! Project loading: reads a dbt-format project from disk, with dbt-core 1.x
//! semantics for `dbt_project.yml`, the YAML property files (sources, model and
//! column properties, data tests) and the model, macro and singular-test `.sql`
//! files. Nothing here renders Jinja or talks to a database: the result is plain
//! data that [`crate::render`] turns into nodes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// A dbt project as read from disk.
#[derive(Debug, Clone)]
pub struct Project {
    /// The project directory (holding `dbt_project.yml`).
    pub root: PathBuf,
    pub name: String,
    pub version: Option<String>,
    pub model_paths: Vec<String>,
    pub macro_paths: Vec<String>,
    pub test_paths: Vec<String>,
    pub seed_paths: Vec<String>,
    /// `target-path`, relative to the project directory unless absolute.
    pub target_path: String,
    /// Project-level `vars:` (global ones and those scoped to this project).
    pub vars: Map<String, Value>,
    /// The `models:` config tree of `dbt_project.yml`.
    pub models_config: Value,
    /// The `data_tests:` (or `tests:`) config tree of `dbt_project.yml`.
    pub tests_config: Value,
    /// The `sources:` config tree of `dbt_project.yml`.
    pub sources_config: Value,
    pub models: Vec<SqlFile>,
    pub macros: Vec<SqlFile>,
    /// Singular data tests: `.sql` files in the test paths (outside `generic/`).
    pub singular_tests: Vec<SqlFile>,
    pub sources: Vec<SourceTable>,
    /// Model properties from YAML, by model name.
    pub model_props: BTreeMap<String, ModelProps>,
}

/// A `.sql` file of the project.
#[derive(Debug, Clone)]
pub struct SqlFile {
    /// Node name: the file stem.
    pub name: String,
    /// Path relative to the project directory (`models/marts/a.sql`), as dbt's
    /// `original_file_path`.
    pub original_file_path: String,
    /// Path relative to its model/macro/test path (`marts/a.sql`), as dbt's `path`.
    pub path: String,
    pub content: String,
}

/// One table of a source, with its source-level properties folded in.
#[derive(Debug, Clone)]
pub struct SourceTable {
    pub source_name: String,
    pub name: String,
    pub schema: String,
    pub identifier: String,
    pub database: Option<String>,
    pub description: String,
    pub source_description: String,
    pub loader: String,
    pub loaded_at_field: Option<String>,
    /// `freshness:` with table-level over source-level (`null` disables).
    pub freshness: Option<Value>,
    pub columns: Vec<Column>,
    /// Table-level data tests.
    pub tests: Vec<Value>,
    pub tags: Vec<String>,
    pub meta: Value,
    /// The YAML file that declares it.
    pub file: String,
}

/// Properties of a model from a YAML file.
#[derive(Debug, Clone, Default)]
pub struct ModelProps {
    pub name: String,
    pub description: String,
    pub config: Map<String, Value>,
    pub columns: Vec<Column>,
    pub tests: Vec<Value>,
    pub file: String,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Column {
    pub name: String,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_type: Option<String>,
    #[serde(skip)]
    pub tests: Vec<Value>,
}

/// Reads the project in `dir`.
pub fn load(dir: &Path) -> Result<Project> {
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
            Error::usage(format!(
                "{}: `name:` is missing; give the project a name",
                file.display()
            ))
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
    let seed_paths = list("seed-paths", "seeds");
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
        root: dir.to_path_buf(),
        name,
        version: doc.get("version").map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }),
        model_paths,
        macro_paths,
        test_paths,
        seed_paths,
        target_path,
        vars,
        models_config: doc.get("models").cloned().unwrap_or(Value::Null),
        tests_config: doc
            .get("data_tests")
            .or_else(|| doc.get("tests"))
            .cloned()
            .unwrap_or(Value::Null),
        sources_config: doc.get("sources").cloned().unwrap_or(Value::Null),
        models: Vec::new(),
        macros: Vec::new(),
        singular_tests: Vec::new(),
        sources: Vec::new(),
        model_props: BTreeMap::new(),
    };

    let mut yml_files = Vec::new();
    for mp in project.model_paths.clone() {
        for f in walk(dir, &mp)? {
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
        for f in walk(dir, &mp)? {
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
        for f in walk(dir, &tp)? {
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
        read_properties(&mut project, f)?;
    }
    Ok(project)
}

/// Every file under `root/sub`, sorted by path so loading is deterministic.
fn walk(root: &Path, sub: &str) -> Result<Vec<SqlFile>> {
    let base = root.join(sub);
    let mut out = Vec::new();
    if !base.is_dir() {
        return Ok(out);
    }
    let mut stack = vec![base.clone()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d)
            .map_err(|e| Error::usage(format!("cannot read directory {}: {e}", d.display())))?;
        for entry in entries {
            let entry = entry
                .map_err(|e| Error::usage(format!("cannot read directory {}: {e}", d.display())))?;
            let p = entry.path();
            let fname = entry.file_name().to_string_lossy().to_string();
            if fname.starts_with('.') {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let content = std::fs::read_to_string(&p)
                .map_err(|e| Error::usage(format!("cannot read {}: {e}", p.display())))?;
            let rel = p.strip_prefix(root).unwrap_or(&p);
            let within = p.strip_prefix(&base).unwrap_or(&p);
            out.push(SqlFile {
                name: p
                    .file_stem()
                    .map(|s| s.to_string_lossy().to_string())
                    .unwrap_or_default(),
                original_file_path: slash(rel),
                path: slash(within),
                content,
            });
        }
    }
    out.sort_by(|a, b| a.original_file_path.cmp(&b.original_file_path));
    Ok(out)
}

fn slash(p: &Path) -> String {
    p.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Parses YAML into JSON values, with errors naming the file and line.
pub fn parse_yaml(text: &str, file: &str) -> Result<Value> {
    if text.trim().is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    let v: Value = serde_saphyr::from_str(text).map_err(|e| {
        let msg = e.to_string();
        let first = msg
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("invalid YAML")
            .trim();
        let first = first.strip_prefix("error:").unwrap_or(first).trim();
        let at = msg
            .lines()
            .find_map(|l| {
                let l = l.trim();
                let pos = l.find("line ")?;
                Some(format!(" ({})", &l[pos..]))
            })
            .unwrap_or_default();
        let at = if first.contains("line ") {
            String::new()
        } else {
            at
        };
        Error::usage(format!("{file}: invalid YAML: {first}{at}; fix the file"))
    })?;
    Ok(if v.is_null() {
        Value::Object(Map::new())
    } else {
        v
    })
}

fn str_of(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or("").to_string()
}

/// `data_tests:` (dbt ≥ 1.8) or `tests:` of a YAML entry.
fn tests_of(v: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for key in ["data_tests", "tests"] {
        if let Some(Value::Array(a)) = v.get(key) {
            out.extend(a.iter().cloned());
        }
    }
    out
}

fn columns_of(v: &Value) -> Vec<Column> {
    let Some(Value::Array(cols)) = v.get("columns") else {
        return Vec::new();
    };
    cols.iter()
        .filter_map(|c| {
            Some(Column {
                name: c.get("name")?.as_str()?.to_string(),
                description: str_of(c, "description"),
                data_type: c
                    .get("data_type")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                tests: tests_of(c),
            })
        })
        .collect()
}

/// Reads one YAML property file (`version: 2` style) into the project.
fn read_properties(project: &mut Project, f: &SqlFile) -> Result<()> {
    let doc = parse_yaml(&f.content, &f.original_file_path)?;
    let file = f.original_file_path.clone();
    if let Some(Value::Array(sources)) = doc.get("sources") {
        for s in sources {
            let sname = s.get("name").and_then(Value::as_str).ok_or_else(|| {
                Error::usage(format!(
                    "{file}: a source has no `name:`; name every entry under `sources:`"
                ))
            })?;
            let schema = s
                .get("schema")
                .and_then(Value::as_str)
                .unwrap_or(sname)
                .to_string();
            let Some(Value::Array(tables)) = s.get("tables") else {
                continue;
            };
            for t in tables {
                let tname = t.get("name").and_then(Value::as_str).ok_or_else(|| {
                    Error::usage(format!(
                        "{file}: a table of source '{sname}' has no `name:`"
                    ))
                })?;
                if project
                    .sources
                    .iter()
                    .any(|x| x.source_name == sname && x.name == tname)
                {
                    return Err(Error::usage(format!(
                        "{file}: source '{sname}.{tname}' is declared twice; keep one declaration"
                    )));
                }
                let freshness = match t.get("freshness") {
                    Some(v) => Some(v.clone()),
                    None => s.get("freshness").cloned(),
                };
                let mut tags: Vec<String> = Vec::new();
                for v in [s.get("tags"), t.get("tags")].into_iter().flatten() {
                    if let Value::Array(a) = v {
                        tags.extend(a.iter().filter_map(Value::as_str).map(str::to_string));
                    }
                }
                project.sources.push(SourceTable {
                    source_name: sname.to_string(),
                    name: tname.to_string(),
                    schema: schema.clone(),
                    identifier: t
                        .get("identifier")
                        .and_then(Value::as_str)
                        .unwrap_or(tname)
                        .to_string(),
                    database: s
                        .get("database")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    description: str_of(t, "description"),
                    source_description: str_of(s, "description"),
                    loader: str_of(s, "loader"),
                    loaded_at_field: t
                        .get("loaded_at_field")
                        .or_else(|| s.get("loaded_at_field"))
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    freshness: freshness.filter(|v| !v.is_null()),
                    columns: columns_of(t),
                    tests: tests_of(t),
                    tags,
                    meta: t.get("meta").cloned().unwrap_or(Value::Object(Map::new())),
                    file: file.clone(),
                });
            }
        }
    }
    if let Some(Value::Array(models)) = doc.get("models") {
        for m in models {
            let name = m.get("name").and_then(Value::as_str).ok_or_else(|| {
                Error::usage(format!(
                    "{file}: a model entry has no `name:`; name every entry under `models:`"
                ))
            })?;
            if let Some(prev) = project.model_props.get(name) {
                return Err(Error::usage(format!(
                    "{file}: model '{name}' already has properties in {}; keep one entry per model",
                    prev.file
                )));
            }
            let config = match m.get("config") {
                Some(Value::Object(c)) => c.clone(),
                _ => Map::new(),
            };
            project.model_props.insert(
                name.to_string(),
                ModelProps {
                    name: name.to_string(),
                    description: str_of(m, "description"),
                    config,
                    columns: columns_of(m),
                    tests: tests_of(m),
                    file: file.clone(),
                },
            );
        }
    }
    Ok(())
}

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
pub fn tree_config(tree: &Value, project_name: &str, fqn_tail: &[String]) -> Map<String, Value> {
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
pub fn merge_config(out: &mut Map<String, Value>, key: &str, value: Value) {
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
