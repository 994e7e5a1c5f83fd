//! YAML property files (`version: 2` style): sources with their tables, model
//! properties, columns and the data tests declared on them.

use serde_json::{Map, Value};

use crate::error::{Error, Result};

use super::files::SqlFile;
use super::yaml::parse_yaml;
use super::Project;

/// One table of a source, with its source-level properties folded in.
#[derive(Debug, Clone)]
pub(crate) struct SourceTable {
    pub(crate) source_name: String,
    pub(crate) name: String,
    pub(crate) schema: String,
    pub(crate) identifier: String,
    pub(crate) database: Option<String>,
    pub(crate) description: String,
    pub(crate) source_description: String,
    pub(crate) loader: String,
    pub(crate) loaded_at_field: Option<String>,
    /// `freshness:` with table-level over source-level (`null` disables).
    pub(crate) freshness: Option<Value>,
    pub(crate) columns: Vec<Column>,
    /// Table-level data tests.
    pub(crate) tests: Vec<Value>,
    pub(crate) tags: Vec<String>,
    pub(crate) meta: Value,
    /// The YAML file that declares it.
    pub(crate) file: String,
}

/// Properties of a model from a YAML file.
#[derive(Debug, Clone, Default)]
pub(crate) struct ModelProps {
    pub(crate) description: String,
    pub(crate) config: Map<String, Value>,
    pub(crate) columns: Vec<Column>,
    pub(crate) tests: Vec<Value>,
    pub(crate) file: String,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub(crate) struct Column {
    pub(crate) name: String,
    pub(crate) description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) data_type: Option<String>,
    #[serde(skip)]
    pub(crate) tests: Vec<Value>,
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
pub(super) fn read_properties(project: &mut Project, f: &SqlFile) -> Result<()> {
    let doc = parse_yaml(&f.content, &f.original_file_path)?;
    let file = f.original_file_path.clone();
    if let Some(Value::Array(sources)) = doc.get("sources") {
        for s in sources {
            let sname = s.get("name").and_then(Value::as_str).ok_or_else(|| {
                Error::in_file(
                    file.to_string(),
                    "a source has no `name:`; name every entry under `sources:`".to_string(),
                )
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
                    Error::in_file(
                        file.to_string(),
                        format!("a table of source '{sname}' has no `name:`"),
                    )
                })?;
                if project
                    .sources
                    .iter()
                    .any(|x| x.source_name == sname && x.name == tname)
                {
                    return Err(Error::in_file(
                        file.to_string(),
                        format!("source '{sname}.{tname}' is declared twice; keep one declaration"),
                    ));
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
                Error::in_file(
                    file.to_string(),
                    "a model entry has no `name:`; name every entry under `models:`".to_string(),
                )
            })?;
            if let Some(prev) = project.model_props.get(name) {
                return Err(Error::in_file(
                    file.to_string(),
                    format!(
                        "model '{name}' already has properties in {}; keep one entry per model",
                        prev.file
                    ),
                ));
            }
            let config = match m.get("config") {
                Some(Value::Object(c)) => c.clone(),
                _ => Map::new(),
            };
            project.model_props.insert(
                name.to_string(),
                ModelProps {
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
