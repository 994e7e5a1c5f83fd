//! YAML property files (`version: 2` style): sources with their tables, model
//! properties, columns and the data tests declared on them — checked key by key
//! when the project loads (see [`super::keys`]). Resources that build nothing
//! (exposures, metrics, semantic models, saved queries, groups, macro
//! properties) are accepted; those not built yet are refused with the file and
//! line.

use serde_json::{Map, Value};

use crate::error::Result;

use super::config::{check_config_block, check_value, merge_config, FreshnessPolicy, Warnings};
use super::contract::{check_data_type, read_constraints, Constraint, ConstraintKind, Level};
use super::files::SqlFile;
use super::keys::Resource;
use super::yaml::{self, At, Yaml, YamlValue};
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
    /// Table-level over source-level; `None` when switched off or absent.
    pub(crate) freshness: Option<FreshnessPolicy>,
    pub(crate) columns: Vec<Column>,
    /// Table-level data tests.
    pub(crate) tests: Vec<Value>,
    pub(crate) tags: Vec<String>,
    pub(crate) meta: Value,
    /// The `config:` of the source and of the table (the table's last).
    pub(crate) config: Map<String, Value>,
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
    /// Model-level `constraints:`.
    pub(crate) constraints: Vec<Constraint>,
    pub(crate) file: String,
    /// The line of the model's entry.
    pub(crate) line: usize,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub(crate) struct Column {
    pub(crate) name: String,
    pub(crate) description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) data_type: Option<String>,
    #[serde(skip)]
    pub(crate) tests: Vec<Value>,
    /// The column's `tags:`, which its data tests inherit.
    #[serde(skip)]
    pub(crate) tags: Vec<String>,
    /// Column-level `constraints:`.
    #[serde(skip)]
    pub(crate) constraints: Vec<Constraint>,
    /// The line of the column's entry.
    #[serde(skip)]
    pub(crate) line: usize,
}

/// Reads one YAML property file into the project.
pub(super) fn read_properties(
    project: &mut Project,
    f: &SqlFile,
    warnings: &mut Warnings,
) -> Result<()> {
    let file = f.original_file_path.as_str();
    let doc = yaml::parse(&f.content, file)?;
    if !matches!(doc.value, YamlValue::Map(_)) {
        return Err(doc.at(file).error(format!(
            "expected a mapping of resources (`version: 2`, `models:`, `sources:` …), got {}",
            doc.kind()
        )));
    }
    for (key, line, value) in doc.entries() {
        let at = At { file, line: *line };
        let refuse = |why: &str| {
            Err(at.error(format!(
                "{key}: {why}; remove it or run this project with dbt-core"
            )))
        };
        match key.as_str() {
            "sources" => read_sources(project, value, file, warnings)?,
            "models" => read_models(project, value, file, warnings, Resource::Model)?,
            "seeds" => read_models(project, value, file, warnings, Resource::Seed)?,
            "version" | "exposures" | "metrics" | "semantic_models" | "saved_queries"
            | "groups" | "macros" | "anchors" | "data_tests" | "tests" => {}
            "snapshots" => return refuse("snapshots are not supported yet"),
            "analyses" => return refuse("analyses are not supported yet"),
            "unit_tests" => return refuse("unit tests are not supported yet"),
            other => {
                return Err(at.error(format!(
                    "`{other}:` is not a kind of resource dbt reads from property files; fix the key (models, sources, exposures, …)"
                )))
            }
        }
    }
    Ok(())
}

/// The entries of a list-valued key (`models:`, `tables:`, `columns:` …).
fn list<'a>(v: &'a Yaml, what: &str, file: &str) -> Result<&'a [Yaml]> {
    match &v.value {
        YamlValue::Seq(items) => Ok(items),
        YamlValue::Null => Ok(&[]),
        _ => Err(v
            .at(file)
            .error(format!("{what}: expected a list, got {}", v.kind()))),
    }
}

/// A mapping entry's `name:`.
fn name_of<'a>(entry: &'a Yaml, what: &str, file: &str) -> Result<&'a str> {
    if !matches!(entry.value, YamlValue::Map(_)) {
        return Err(entry.at(file).error(format!(
            "{what}: expected a mapping with a `name:`, got {}",
            entry.kind()
        )));
    }
    match entry.get("name") {
        Some(n) => n.as_str().ok_or_else(|| {
            n.at(file)
                .error(format!("{what}: `name:` must be a string"))
        }),
        None => Err(entry
            .at(file)
            .error(format!("{what} has no `name:`; name every entry"))),
    }
}

fn text(entry: &Yaml, key: &str, file: &str) -> Result<Option<String>> {
    match entry.get(key) {
        None => Ok(None),
        Some(v) => match &v.value {
            YamlValue::Str(s) => Ok(Some(s.clone())),
            YamlValue::Null => Ok(None),
            _ => Err(v
                .at(file)
                .error(format!("{key}: expected a string, got {}", v.kind()))),
        },
    }
}

/// Tags given as a string or a list.
fn tags(entry: &Yaml, file: &str) -> Result<Vec<String>> {
    match entry.get("tags") {
        None => Ok(Vec::new()),
        Some(v) => match &v.value {
            YamlValue::Str(s) => Ok(vec![s.clone()]),
            YamlValue::Seq(items) => items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| i.at(file).error("tags: expected strings"))
                })
                .collect(),
            YamlValue::Null => Ok(Vec::new()),
            _ => Err(v.at(file).error("tags: expected a tag or a list of tags")),
        },
    }
}

/// `data_tests:` (dbt ≥ 1.8) or `tests:` of an entry, each checked.
fn tests_of(entry: &Yaml, file: &str, warnings: &mut Warnings) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for key in ["data_tests", "tests"] {
        if let Some(v) = entry.get(key) {
            for t in list(v, key, file)? {
                check_test_entry(t, file, warnings)?;
                out.push(t.to_json());
            }
        }
    }
    Ok(out)
}

/// A test entry's configs: under `config:`, or (older style) beside its arguments.
fn check_test_entry(t: &Yaml, file: &str, warnings: &mut Warnings) -> Result<()> {
    let body = match &t.value {
        YamlValue::Map(entries) if t.get("test_name").is_some() => t,
        YamlValue::Map(entries) if entries.len() == 1 => &entries[0].2,
        _ => return Ok(()), // `- unique`, or a shape render reports
    };
    for (k, line, v) in body.entries() {
        let at = At { file, line: *line };
        match k.as_str() {
            "config" => check_config_block(Resource::DataTest, v, "config", file, warnings)?,
            "severity" | "where" | "error_if" | "warn_if" | "store_failures" | "limit"
            | "enabled" | "tags" | "meta" | "fail_calc" | "store_failures_as" => {
                check_value(Resource::DataTest, k, v, k, at, warnings)?
            }
            _ => {}
        }
    }
    Ok(())
}

fn columns_of(entry: &Yaml, file: &str, warnings: &mut Warnings) -> Result<Vec<Column>> {
    let Some(cols) = entry.get("columns") else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for c in list(cols, "columns", file)? {
        let name = name_of(c, "a column", file)?;
        for (k, line, v) in c.entries() {
            let at = At { file, line: *line };
            match k.as_str() {
                "quote" if matches!(v.value, YamlValue::Bool(true)) => {
                    return Err(at.error(format!(
                        "column {name}: `quote: true` is not supported yet; remove it or run this project with dbt-core"
                    )))
                }
                _ => {}
            }
        }
        out.push(Column {
            name: name.to_string(),
            description: text(c, "description", file)?.unwrap_or_default(),
            data_type: match c.get("data_type") {
                Some(v) => check_data_type(v, name, file)?,
                None => None,
            },
            tests: tests_of(c, file, warnings)?,
            tags: tags(c, file)?,
            constraints: match c.get("constraints") {
                Some(v) => read_constraints(v, Level::Column, &format!("column {name}"), file)?,
                None => Vec::new(),
            },
            line: c.line,
        });
    }
    Ok(out)
}

/// The `models:` or `seeds:` entries of a property file (`resource` says which).
fn read_models(
    project: &mut Project,
    models: &Yaml,
    file: &str,
    warnings: &mut Warnings,
    resource: Resource,
) -> Result<()> {
    let (root, what) = match resource {
        Resource::Seed => ("seeds", "seed"),
        _ => ("models", "model"),
    };
    for m in list(models, root, file)? {
        let name = name_of(m, &format!("a {what} entry"), file)?;
        let known = match resource {
            Resource::Seed => &project.seed_props,
            _ => &project.model_props,
        };
        if let Some(prev) = known.get(name) {
            return Err(m.at(file).error(format!(
                "{what} '{name}' already has properties in {}; keep one entry per {what}",
                prev.file
            )));
        }
        let mut config = Map::new();
        let mut constraints = Vec::new();
        for (k, line, v) in m.entries() {
            let at = At { file, line: *line };
            match k.as_str() {
                "config" => {
                    check_config_block(resource, v, &format!("{root}.{name}.config"), file, warnings)?;
                    if let Value::Object(c) = v.to_json() {
                        for (ck, cv) in c {
                            merge_config(&mut config, &ck, cv);
                        }
                    }
                }
                // Older places of configs, which dbt 1.10 still reads as configs.
                "meta" | "docs" | "tags" | "access" | "group" | "contract" => {
                    if k == "contract" && m.get("config").and_then(|c| c.get("contract")).is_some() {
                        return Err(at.error(format!(
                            "{root}.{name}: `contract` is both under `config:` and a top-level key; keep the one under `config:`"
                        )));
                    }
                    check_value(resource, k, v, &format!("{root}.{name}.{k}"), at, warnings)?;
                    merge_config(&mut config, k, v.to_json());
                }
                "versions" | "latest_version" => {
                    return Err(at.error(format!(
                        "{root}.{name}.{k}: model versions are not supported yet; remove them or run this project with dbt-core"
                    )))
                }
                "constraints" => {
                    constraints = read_constraints(v, Level::Model, &format!("model {name}"), file)?
                }
                _ => {}
            }
        }
        let columns = columns_of(m, file, warnings)?;
        check_primary_keys(name, &columns, &constraints, m.at(file))?;
        let props = ModelProps {
            description: text(m, "description", file)?.unwrap_or_default(),
            config,
            columns,
            tests: tests_of(m, file, warnings)?,
            constraints,
            file: file.to_string(),
            line: m.line,
        };
        match resource {
            Resource::Seed => project.seed_props.insert(name.to_string(), props),
            _ => project.model_props.insert(name.to_string(), props),
        };
    }
    Ok(())
}

/// dbt's rule: one primary key, declared on one column or on the model.
fn check_primary_keys(
    model: &str,
    columns: &[Column],
    constraints: &[Constraint],
    at: At<'_>,
) -> Result<()> {
    let is_pk = |c: &Constraint| c.kind == ConstraintKind::PrimaryKey;
    let on_columns: Vec<&Column> = columns
        .iter()
        .filter(|c| c.constraints.iter().any(is_pk))
        .collect();
    if on_columns.len() > 1 {
        let names: Vec<&str> = on_columns.iter().map(|c| c.name.as_str()).collect();
        return Err(At {
            line: on_columns[1].line,
            ..at
        }
        .error(format!(
            "model {model}: columns {} each have a primary_key constraint; a primary key of several columns is a model-level constraint (constraints: [{{type: primary_key, columns: [{}]}}])",
            names.join(", "),
            names.join(", ")
        )));
    }
    if let (Some(col), Some(c)) = (on_columns.first(), constraints.iter().find(|c| is_pk(c))) {
        return Err(At { line: c.line, ..at }.error(format!(
            "model {model}: a primary key is declared both on column {} and at the model level; keep one",
            col.name
        )));
    }
    Ok(())
}

fn read_sources(
    project: &mut Project,
    sources: &Yaml,
    file: &str,
    warnings: &mut Warnings,
) -> Result<()> {
    for s in list(sources, "sources", file)? {
        let sname = name_of(s, "a source", file)?;
        for key in ["quoting", "overrides", "loaded_at_query"] {
            if let Some(v) = s.get(key) {
                if !v.is_null() {
                    return Err(v.at(file).error(format!(
                        "sources.{sname}.{key}: not supported yet; remove it or run this project with dbt-core"
                    )));
                }
            }
        }
        let mut source_config = Map::new();
        if let Some(c) = s.get("config") {
            check_config_block(
                Resource::Source,
                c,
                &format!("sources.{sname}.config"),
                file,
                warnings,
            )?;
            if let Value::Object(c) = c.to_json() {
                source_config = c;
            }
        }
        let source_freshness = match s.get("freshness") {
            Some(v) => Some(FreshnessPolicy::from_yaml(v, v.at(file))?),
            None => None,
        };
        let schema = text(s, "schema", file)?.unwrap_or_else(|| sname.to_string());
        let Some(tables) = s.get("tables") else {
            continue;
        };
        for t in list(tables, "tables", file)? {
            let tname = name_of(t, &format!("a table of source '{sname}'"), file)?;
            if project
                .sources
                .iter()
                .any(|x| x.source_name == sname && x.name == tname)
            {
                return Err(t.at(file).error(format!(
                    "source '{sname}.{tname}' is declared twice; keep one declaration"
                )));
            }
            for key in ["quoting", "external", "loaded_at_query"] {
                if let Some(v) = t.get(key) {
                    if !v.is_null() {
                        return Err(v.at(file).error(format!(
                            "sources.{sname}.tables.{tname}.{key}: not supported yet; remove it or run this project with dbt-core"
                        )));
                    }
                }
            }
            let mut config = source_config.clone();
            if let Some(c) = t.get("config") {
                check_config_block(
                    Resource::Source,
                    c,
                    &format!("sources.{sname}.tables.{tname}.config"),
                    file,
                    warnings,
                )?;
                if let Value::Object(c) = c.to_json() {
                    for (k, v) in c {
                        merge_config(&mut config, &k, v);
                    }
                }
            }
            // Table over source; a `freshness:` in a config block counts as given
            // at that level.
            let table_freshness = match t.get("freshness") {
                Some(v) => Some(FreshnessPolicy::from_yaml(v, v.at(file))?),
                None => None,
            };
            let freshness = table_freshness
                .or_else(|| source_freshness.clone())
                .flatten();
            let mut all_tags = tags(s, file)?;
            for tag in tags(t, file)? {
                if !all_tags.contains(&tag) {
                    all_tags.push(tag);
                }
            }
            project.sources.push(SourceTable {
                source_name: sname.to_string(),
                name: tname.to_string(),
                schema: schema.clone(),
                identifier: text(t, "identifier", file)?.unwrap_or_else(|| tname.to_string()),
                database: text(s, "database", file)?,
                description: text(t, "description", file)?.unwrap_or_default(),
                source_description: text(s, "description", file)?.unwrap_or_default(),
                loader: text(s, "loader", file)?.unwrap_or_default(),
                loaded_at_field: match text(t, "loaded_at_field", file)? {
                    Some(f) => Some(f),
                    None => text(s, "loaded_at_field", file)?,
                },
                freshness,
                columns: columns_of(t, file, warnings)?,
                tests: tests_of(t, file, warnings)?,
                tags: all_tags,
                meta: t
                    .get("meta")
                    .map(Yaml::to_json)
                    .unwrap_or(Value::Object(Map::new())),
                config,
                file: file.to_string(),
            });
        }
    }
    Ok(())
}
