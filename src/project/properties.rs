//! YAML property files (`version: 2` style): sources with their tables, model,
//! seed and analysis properties (model versions among them), columns and the data
//! tests declared on them — checked key by key when the project loads (see
//! [`super::keys`]). Resources that build nothing (exposures, metrics, semantic
//! models, saved queries, groups) are kept as written for [`crate::exposures`],
//! which resolves them against the manifest; macro properties are accepted;
//! resources not built yet are refused with the file and line.

use serde_json::{Map, Value};

use crate::error::Result;

use crate::manifest::Quoting;

use super::config::{check_config_block, check_value, merge_config, FreshnessPolicy, Warnings};
use super::contract::{check_data_type, read_constraints, Constraint, ConstraintKind, Level};
use super::dbt_project::read_quoting_over;
use super::files::SqlFile;
use super::keys::Resource;
use super::yaml::{At, Yaml, YamlValue};
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
    /// How its relation's name is written: the project's `quoting:`, then the
    /// source's, then the table's.
    pub(crate) quoting: Quoting,
}

/// An entry of a property file that builds nothing (an exposure, a metric, a
/// semantic model, a saved query, a group), as written, for [`crate::exposures`].
#[derive(Debug, Clone)]
pub(crate) struct PropertyEntry {
    /// `exposures`, `metrics`, `semantic_models`, `saved_queries` or `groups`.
    pub(crate) key: &'static str,
    /// The YAML file (relative to the project) and its path within its resource
    /// path (whose folders are part of the fqn).
    pub(crate) file: String,
    pub(crate) path: String,
    pub(crate) value: Yaml,
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
    /// `versions:` of a versioned model, and its `latest_version` (the greatest
    /// version when not given).
    pub(crate) versions: Vec<VersionProps>,
    pub(crate) latest_version: Option<String>,
    /// `time_spine: {standard_granularity_column}`, checked against the columns.
    pub(crate) time_spine: Option<(String, usize)>,
}

/// One entry of a model's `versions:`: what it changes for that version.
#[derive(Debug, Clone, Default)]
pub(crate) struct VersionProps {
    /// `v` as written (`1`, `2.5`, `beta`).
    pub(crate) v: String,
    /// The model file's name when it is not `<model>_v<v>`.
    pub(crate) defined_in: Option<String>,
    pub(crate) description: Option<String>,
    /// Its `config:` (and `docs`/`access`), laid over the model's.
    pub(crate) config: Map<String, Value>,
    /// `include`/`exclude` of the model's columns: `None` includes all.
    pub(crate) include: Option<Vec<String>>,
    pub(crate) exclude: Vec<String>,
    /// Columns of this version only.
    pub(crate) columns: Vec<Column>,
    /// Its own data tests, replacing the model's when given.
    pub(crate) tests: Option<Vec<Value>>,
    pub(crate) constraints: Option<Vec<Constraint>>,
    pub(crate) line: usize,
}

impl ModelProps {
    /// The properties of version `v` of a versioned model (dbt's
    /// `get_columns_for_version` and version patch): the model's columns it
    /// includes and its own, its tests or the model's, its config over the model's.
    pub(crate) fn for_version(&self, v: &str) -> ModelProps {
        let Some(ver) = self.versions.iter().find(|x| x.v == v) else {
            return self.clone();
        };
        let mut columns: Vec<Column> = self
            .columns
            .iter()
            .filter(|c| {
                ver.include
                    .as_ref()
                    .is_none_or(|names| names.contains(&c.name))
                    && !ver.exclude.contains(&c.name)
            })
            .cloned()
            .collect();
        columns.extend(ver.columns.iter().cloned());
        let mut config = self.config.clone();
        for (k, val) in &ver.config {
            merge_config(&mut config, k, val.clone());
        }
        ModelProps {
            description: ver
                .description
                .clone()
                .filter(|d| !d.is_empty())
                .unwrap_or_else(|| self.description.clone()),
            config,
            columns,
            tests: ver.tests.clone().unwrap_or_else(|| self.tests.clone()),
            constraints: ver
                .constraints
                .clone()
                .filter(|c| !c.is_empty())
                .unwrap_or_else(|| self.constraints.clone()),
            file: self.file.clone(),
            line: ver.line,
            versions: Vec::new(),
            latest_version: self.latest_version.clone(),
            time_spine: None,
        }
    }

    /// The file name that defines version `v`: its `defined_in`, else
    /// `<model>_v<v>`.
    pub(crate) fn version_file(&self, model: &str, v: &VersionProps) -> String {
        v.defined_in
            .clone()
            .unwrap_or_else(|| format!("{model}_v{}", v.v))
    }
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
    /// Its `granularity:` (a time spine's date column).
    #[serde(skip)]
    pub(crate) granularity: Option<String>,
}

/// Reads one YAML property file into the project.
pub(super) fn read_properties(
    project: &mut Project,
    f: &SqlFile,
    doc: Yaml,
    warnings: &mut Warnings,
) -> Result<()> {
    let file = f.original_file_path.as_str();
    if !matches!(doc.value, YamlValue::Map(_)) {
        return Err(doc.at(file).error(format!(
            "expected a mapping of resources (`version: 2`, `models:`, `sources:` …), got {}",
            doc.kind()
        )));
    }
    for (key, line, value) in doc.entries() {
        let at = At { file, line: *line };
        match key.as_str() {
            "sources" => read_sources(project, value, file, warnings)?,
            "models" => read_models(project, value, file, warnings, Resource::Model)?,
            "seeds" => read_models(project, value, file, warnings, Resource::Seed)?,
            "analyses" => read_models(project, value, file, warnings, Resource::Analysis)?,
            "exposures" | "metrics" | "semantic_models" | "saved_queries" | "groups" => {
                let key = match key.as_str() {
                    "exposures" => "exposures",
                    "metrics" => "metrics",
                    "semantic_models" => "semantic_models",
                    "saved_queries" => "saved_queries",
                    _ => "groups",
                };
                for entry in list(value, key, file)? {
                    project.entries.push(PropertyEntry {
                        key,
                        file: file.to_string(),
                        path: f.path.clone(),
                        value: entry.clone(),
                    });
                }
            }
            "version" | "macros" | "anchors" | "data_tests" | "tests" => {}
            "snapshots" => {
                read_models(project, value, file, warnings, Resource::Snapshot)?;
                for entry in list(value, "snapshots", file)? {
                    let Some(r) = entry.get("relation") else { continue };
                    let name = name_of(entry, "a snapshot entry", file)?;
                    let relation = r.as_str().ok_or_else(|| {
                        r.at(file).error(format!(
                            "snapshots.{name}.relation: expected ref('…') or source('…', '…')"
                        ))
                    })?;
                    project
                        .snapshot_relations
                        .insert(name.to_string(), (relation.to_string(), f.clone(), r.line));
                }
            }
            "unit_tests" => project.unit_test_yaml.push((file.to_string(), value.clone())),
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
            granularity: text(c, "granularity", file)?,
        });
    }
    Ok(out)
}

/// The `models:`, `seeds:` or `analyses:` entries of a property file (`resource`
/// says which).
fn read_models(
    project: &mut Project,
    models: &Yaml,
    file: &str,
    warnings: &mut Warnings,
    resource: Resource,
) -> Result<()> {
    let (root, what) = match resource {
        Resource::Seed => ("seeds", "seed"),
        Resource::Analysis => ("analyses", "analysis"),
        Resource::Snapshot => ("snapshots", "snapshot"),
        _ => ("models", "model"),
    };
    for m in list(models, root, file)? {
        let name = name_of(m, &format!("a {what} entry"), file)?;
        let known = match resource {
            Resource::Seed => &project.seed_props,
            Resource::Analysis => &project.analysis_props,
            Resource::Snapshot => &project.snapshot_props,
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
        let mut versions = Vec::new();
        let mut latest_version = None;
        let mut time_spine = None;
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
                "versions" | "latest_version" | "time_spine" if resource != Resource::Model => {
                    return Err(at.error(format!(
                        "{root}.{name}.{k}: only models have `{k}`; remove it"
                    )))
                }
                "versions" => versions = read_versions(v, name, file, warnings)?,
                "latest_version" => latest_version = version_text(v, file)?,
                "time_spine" => {
                    let col = v.get("standard_granularity_column");
                    match col.and_then(Yaml::as_str) {
                        Some(c) => time_spine = Some((c.to_string(), v.line)),
                        None => {
                            return Err(at.error(format!(
                                "{root}.{name}.time_spine: needs `standard_granularity_column:`, the column of the spine's dates"
                            )))
                        }
                    }
                }
                "data_tests" | "tests" if resource == Resource::Analysis => {
                    return Err(at.error(format!(
                        "{root}.{name}.{k}: analyses are never run, so they have no data tests (dbt ignores these); test the models the analysis reads"
                    )))
                }
                "constraints" => {
                    constraints = read_constraints(v, Level::Model, &format!("model {name}"), file)?
                }
                _ => {}
            }
        }
        let columns = columns_of(m, file, warnings)?;
        if resource == Resource::Analysis && columns.iter().any(|c| !c.tests.is_empty()) {
            return Err(m.at(file).error(format!(
                "{root}.{name}: analyses are never run, so their columns have no data tests (dbt ignores these); test the models the analysis reads"
            )));
        }
        check_primary_keys(name, &columns, &constraints, m.at(file))?;
        if let Some(latest) = &latest_version {
            if !versions.iter().any(|v: &VersionProps| &v.v == latest) {
                let all: Vec<&str> = versions.iter().map(|v| v.v.as_str()).collect();
                return Err(m.at(file).error(format!(
                    "{root}.{name}: latest_version {latest} is not one of its versions ({}); fix latest_version or add the version",
                    all.join(", ")
                )));
            }
        }
        let props = ModelProps {
            description: text(m, "description", file)?.unwrap_or_default(),
            config,
            columns,
            tests: tests_of(m, file, warnings)?,
            constraints,
            file: file.to_string(),
            line: m.line,
            latest_version: latest_version.or_else(|| greatest_version(&versions)),
            versions,
            time_spine,
        };
        check_time_spine(name, &props, file)?;
        match resource {
            Resource::Seed => project.seed_props.insert(name.to_string(), props),
            Resource::Analysis => project.analysis_props.insert(name.to_string(), props),
            Resource::Snapshot => project.snapshot_props.insert(name.to_string(), props),
            _ => project.model_props.insert(name.to_string(), props),
        };
    }
    Ok(())
}

/// A version as dbt writes it in ids and names: `1`, `2.5`, `beta`.
fn version_text(v: &Yaml, file: &str) -> Result<Option<String>> {
    Ok(match &v.value {
        YamlValue::Int(i) => Some(i.to_string()),
        // Python's str() of a float: `2.5`, `3.0`.
        YamlValue::Float(f) if f.fract() == 0.0 => Some(format!("{f:.1}")),
        YamlValue::Float(f) => Some(f.to_string()),
        YamlValue::Str(s) => Some(s.clone()),
        YamlValue::Null => None,
        _ => {
            return Err(v.at(file).error(format!(
                "expected a version such as 1 or 2, got {}",
                v.kind()
            )))
        }
    })
}

/// dbt's default latest version: the greatest (as numbers when they are).
fn greatest_version(versions: &[VersionProps]) -> Option<String> {
    versions
        .iter()
        .max_by(|a, b| match (a.v.parse::<f64>(), b.v.parse::<f64>()) {
            (Ok(x), Ok(y)) => x.total_cmp(&y),
            _ => a.v.cmp(&b.v),
        })
        .map(|v| v.v.clone())
}

/// A model's `versions:` list.
fn read_versions(
    list_yaml: &Yaml,
    model: &str,
    file: &str,
    warnings: &mut Warnings,
) -> Result<Vec<VersionProps>> {
    let mut out: Vec<VersionProps> = Vec::new();
    for entry in list(list_yaml, "versions", file)? {
        if !matches!(entry.value, YamlValue::Map(_)) {
            return Err(entry.at(file).error(format!(
                "models.{model}.versions: expected a mapping with `v:`, got {}",
                entry.kind()
            )));
        }
        let Some(v) = entry
            .get("v")
            .map(|v| version_text(v, file))
            .transpose()?
            .flatten()
        else {
            return Err(entry.at(file).error(format!(
                "models.{model}.versions: an entry has no `v:`; give each version its number"
            )));
        };
        if out.iter().any(|x| x.v == v) {
            return Err(entry.at(file).error(format!(
                "models.{model}: version {v} is listed twice; keep one entry per version"
            )));
        }
        let path = format!("models.{model}.versions.v{v}");
        let mut ver = VersionProps {
            v,
            line: entry.line,
            ..Default::default()
        };
        for (k, line, val) in entry.entries() {
            let at = At { file, line: *line };
            match k.as_str() {
                "v" | "deprecation_date" => {}
                "defined_in" => ver.defined_in = text(entry, k, file)?,
                "description" => ver.description = text(entry, k, file)?,
                "config" => {
                    check_config_block(Resource::Model, val, &format!("{path}.config"), file, warnings)?;
                    if let Value::Object(c) = val.to_json() {
                        for (ck, cv) in c {
                            merge_config(&mut ver.config, &ck, cv);
                        }
                    }
                }
                "docs" | "access" => {
                    check_value(Resource::Model, k, val, &format!("{path}.{k}"), at, warnings)?;
                    merge_config(&mut ver.config, k, val.to_json());
                }
                "constraints" => {
                    ver.constraints = Some(read_constraints(
                        val,
                        Level::Model,
                        &format!("model {model} v{}", ver.v),
                        file,
                    )?)
                }
                "data_tests" | "tests" => {
                    let mut tests = ver.tests.take().unwrap_or_default();
                    for t in list(val, k, file)? {
                        check_test_entry(t, file, warnings)?;
                        tests.push(t.to_json());
                    }
                    ver.tests = Some(tests);
                }
                "columns" => {
                    let mut plain = Vec::new();
                    let mut filter_seen = false;
                    for c in list(val, "columns", file)? {
                        if c.get("include").is_some() || c.get("exclude").is_some() {
                            if filter_seen {
                                return Err(c.at(file).error(format!(
                                    "{path}.columns: a version has at most one include/exclude element"
                                )));
                            }
                            filter_seen = true;
                            read_include_exclude(c, &path, file, &mut ver)?;
                        } else {
                            plain.push(c.clone());
                        }
                    }
                    let holder = Yaml {
                        value: YamlValue::Map(vec![(
                            "columns".into(),
                            val.line,
                            Yaml {
                                value: YamlValue::Seq(plain),
                                line: val.line,
                            },
                        )]),
                        line: val.line,
                    };
                    ver.columns = columns_of(&holder, file, warnings)?;
                }
                other => {
                    return Err(at.error(format!(
                        "{path}.{other}: not a key of a model version; use v, defined_in, description, config, columns, data_tests, constraints, docs, access or deprecation_date"
                    )))
                }
            }
        }
        out.push(ver);
    }
    Ok(out)
}

/// `{include: all|*|[names], exclude: [names]}` of a version's columns.
fn read_include_exclude(c: &Yaml, path: &str, file: &str, ver: &mut VersionProps) -> Result<()> {
    let names = |v: &Yaml, key: &str| -> Result<Vec<String>> {
        match &v.value {
            YamlValue::Seq(items) => items
                .iter()
                .map(|i| {
                    i.as_str().map(str::to_string).ok_or_else(|| {
                        i.at(file)
                            .error(format!("{path}.columns.{key}: expected column names"))
                    })
                })
                .collect(),
            _ => Err(v.at(file).error(format!(
                "{path}.columns.{key}: expected a list of column names{}",
                if key == "include" { ", all or *" } else { "" }
            ))),
        }
    };
    let all = match c.get("include") {
        None => {
            return Err(c
                .at(file)
                .error(format!("{path}.columns: `exclude` needs `include: all`")))
        }
        Some(i) if matches!(i.as_str(), Some("all" | "*")) => true,
        Some(i) => {
            ver.include = Some(names(i, "include")?);
            false
        }
    };
    if let Some(e) = c.get("exclude") {
        if !all {
            return Err(e.at(file).error(format!(
                "{path}.columns: `exclude` can only be given with `include: all` (or `*`)"
            )));
        }
        ver.exclude = names(e, "exclude")?;
    }
    Ok(())
}

/// dbt's check of a time spine: its standard granularity column is a column of
/// the model (of its latest version) with a `granularity`.
fn check_time_spine(model: &str, props: &ModelProps, file: &str) -> Result<()> {
    let Some((col, line)) = &props.time_spine else {
        return Ok(());
    };
    let at = At { file, line: *line };
    let effective = match &props.latest_version {
        Some(v) if !props.versions.is_empty() => props.for_version(v),
        _ => props.clone(),
    };
    match effective.columns.iter().find(|c| &c.name == col) {
        None => Err(at.error(format!(
            "models.{model}.time_spine: standard_granularity_column '{col}' is not one of the model's columns; declare it under `columns:` (with a `granularity`)"
        ))),
        Some(c) if c.granularity.is_none() => Err(at.error(format!(
            "models.{model}.time_spine: column '{col}' needs a `granularity` (such as day)"
        ))),
        Some(_) => Ok(()),
    }
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
        let source_quoting = match s.get("quoting") {
            Some(q) => read_quoting_over(
                project.quoting,
                q,
                &format!("sources.{sname}.quoting"),
                file,
            )?,
            None => project.quoting,
        };
        for key in ["overrides", "loaded_at_query"] {
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
            let quoting = match t.get("quoting") {
                Some(q) => read_quoting_over(
                    source_quoting,
                    q,
                    &format!("sources.{sname}.tables.{tname}.quoting"),
                    file,
                )?,
                None => source_quoting,
            };
            for key in ["external", "loaded_at_query"] {
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
                quoting,
            });
        }
    }
    Ok(())
}
