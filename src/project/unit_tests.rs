//! Unit tests as the property files declare them (dbt 1.8+ `unit_tests:`): the
//! model tested, its `given` inputs and `expect`ed rows in the `dict`, `csv` or
//! `sql` format (inline, or a `fixture:` file of a test path's `fixtures/`
//! folder), the `overrides` of vars, macros and environment variables and the
//! `config` (tags, meta, enabled). Checked here with file and line; what the rows
//! mean for the database is [`crate::unittest`]'s.

use std::collections::BTreeMap;

use serde_json::{Map, Value as Json};

use super::files::SqlFile;
use super::yaml::{Yaml, YamlValue};
use crate::error::Result;

/// One entry of `unit_tests:`.
#[derive(Debug, Clone)]
pub(crate) struct UnitTestDef {
    pub(crate) name: String,
    /// The tested model's name as written.
    pub(crate) model: String,
    /// The YAML file (relative to the project).
    pub(crate) file: String,
    pub(crate) line: usize,
    pub(crate) description: String,
    pub(crate) given: Vec<Given>,
    pub(crate) expect: Rows,
    pub(crate) overrides: Overrides,
    /// `enabled`, `tags`, `meta` as written under `config:`.
    pub(crate) config: Map<String, Json>,
}

/// What a `given` input stands for in the tested model's SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Input {
    /// `ref('name')` (a version as `v=`).
    Ref {
        name: String,
        version: Option<String>,
    },
    /// `source('source', 'table')`.
    Source { source: String, table: String },
    /// `this`: the tested (incremental) model's own relation.
    This,
}

/// One `given` entry.
#[derive(Debug, Clone)]
pub(crate) struct Given {
    pub(crate) input: Input,
    /// `input:` as written, for messages.
    pub(crate) written: String,
    pub(crate) line: usize,
    pub(crate) rows: Rows,
}

/// Rows of a fixture: mappings of column name to value (`dict` and `csv`; CSV
/// values are strings, empty ones null), or a query (`sql`).
#[derive(Debug, Clone)]
pub(crate) enum Rows {
    Dicts(Vec<Map<String, Json>>),
    Sql(String),
}

/// `overrides:` of a unit test.
#[derive(Debug, Clone, Default)]
pub(crate) struct Overrides {
    pub(crate) vars: Map<String, Json>,
    /// Macro name (maybe `package.name`) → the value a call returns.
    pub(crate) macros: Map<String, Json>,
    pub(crate) env_vars: Map<String, Json>,
}

/// Reads the entries of one `unit_tests:` list of `file`.
pub(super) fn read(
    value: &Yaml,
    file: &str,
    fixtures: &BTreeMap<String, SqlFile>,
    out: &mut Vec<UnitTestDef>,
) -> Result<()> {
    let items = match &value.value {
        YamlValue::Seq(items) => items.as_slice(),
        YamlValue::Null => &[],
        _ => {
            return Err(value
                .at(file)
                .error(format!("unit_tests: expected a list, got {}", value.kind())))
        }
    };
    for entry in items {
        let at = entry.at(file);
        if !matches!(entry.value, YamlValue::Map(_)) {
            return Err(at.error(format!(
                "unit_tests: expected a mapping with a `name:`, got {}",
                entry.kind()
            )));
        }
        let string = |key: &str| -> Result<Option<String>> {
            match entry.get(key) {
                None
                | Some(Yaml {
                    value: YamlValue::Null,
                    ..
                }) => Ok(None),
                Some(v) => v.as_str().map(|s| Some(s.to_string())).ok_or_else(|| {
                    v.at(file)
                        .error(format!("unit test: `{key}:` must be a string"))
                }),
            }
        };
        let Some(name) = string("name")? else {
            return Err(at.error("unit test without a `name:`; name it"));
        };
        let Some(model) = string("model")? else {
            return Err(at.error(format!(
                "unit test '{name}' has no `model:`; name the model it tests"
            )));
        };
        for (key, line, v) in entry.entries() {
            let ok = matches!(
                key.as_str(),
                "name" | "model" | "description" | "given" | "expect" | "overrides" | "config"
            );
            if key == "versions" && !v.is_null() {
                return Err(v.at(file).error(format!(
                    "unit test '{name}': `versions:` is not supported yet; write one unit test per model version"
                )));
            }
            if !ok && key != "versions" {
                return Err(Yaml {
                    value: YamlValue::Null,
                    line: *line,
                }
                .at(file)
                .error(format!(
                    "unit test '{name}': unknown key `{key}:`; use name, model, description, given, expect, overrides or config"
                )));
            }
        }
        let mut given = Vec::new();
        match entry.get("given") {
            None => {}
            Some(g) => match &g.value {
                YamlValue::Null => {}
                YamlValue::Seq(items) => {
                    for item in items {
                        given.push(read_given(item, &name, file, fixtures)?);
                    }
                }
                _ => {
                    return Err(g.at(file).error(format!(
                        "unit test '{name}': `given:` must be a list of inputs"
                    )))
                }
            },
        }
        let Some(expect) = entry.get("expect") else {
            return Err(at.error(format!(
                "unit test '{name}' has no `expect:`; give the rows the model should return"
            )));
        };
        let expect = read_rows(expect, &name, "expect", file, fixtures)?;
        let overrides = match entry.get("overrides") {
            None => Overrides::default(),
            Some(o) if o.is_null() => Overrides::default(),
            Some(o) => read_overrides(o, &name, file)?,
        };
        let config = match entry.get("config") {
            None => Map::new(),
            Some(c) => match c.to_json() {
                Json::Null => Map::new(),
                Json::Object(m) => {
                    for (k, line, _) in c.entries() {
                        if !matches!(k.as_str(), "enabled" | "tags" | "meta") {
                            return Err(Yaml {
                                value: YamlValue::Null,
                                line: *line,
                            }
                            .at(file)
                            .error(format!(
                                "unit test '{name}': config `{k}` is not supported on unit tests; use enabled, tags or meta"
                            )));
                        }
                    }
                    m
                }
                _ => {
                    return Err(c
                        .at(file)
                        .error(format!("unit test '{name}': `config:` must be a mapping")))
                }
            },
        };
        out.push(UnitTestDef {
            name,
            model,
            file: file.to_string(),
            line: entry.line,
            description: string("description")?.unwrap_or_default(),
            given,
            expect,
            overrides,
            config,
        });
    }
    Ok(())
}

fn read_given(
    item: &Yaml,
    test: &str,
    file: &str,
    fixtures: &BTreeMap<String, SqlFile>,
) -> Result<Given> {
    let at = item.at(file);
    let Some(written) = item.get("input").and_then(Yaml::as_str) else {
        return Err(at.error(format!(
            "unit test '{test}': each `given:` entry needs an `input:` such as ref('model'), source('src', 'table') or this"
        )));
    };
    let input = parse_input(written).ok_or_else(|| {
        at.error(format!(
            "unit test '{test}': input `{written}` is not ref('…'), source('…', '…') or this; fix it"
        ))
    })?;
    Ok(Given {
        input,
        written: written.to_string(),
        line: item.line,
        rows: read_rows(item, test, "given", file, fixtures)?,
    })
}

/// The rows of a `given` entry or of `expect:`: `format` (default `dict`), then
/// `rows:` or `fixture:`.
fn read_rows(
    v: &Yaml,
    test: &str,
    what: &str,
    file: &str,
    fixtures: &BTreeMap<String, SqlFile>,
) -> Result<Rows> {
    let at = v.at(file);
    if !matches!(v.value, YamlValue::Map(_)) {
        return Err(at.error(format!(
            "unit test '{test}': `{what}:` must be a mapping with `rows:` or `fixture:`"
        )));
    }
    let format = match v.get("format") {
        None => "dict",
        Some(f) => match f.as_str() {
            Some(s @ ("dict" | "csv" | "sql")) => s,
            _ => {
                return Err(f.at(file).error(format!(
                    "unit test '{test}': format {} is not one of dict, csv, sql; fix it",
                    f.as_str()
                        .map_or_else(|| f.kind().to_string(), |s| format!("'{s}'"))
                )))
            }
        },
    };
    let rows = v.get("rows").filter(|r| !r.is_null());
    let fixture = match v.get("fixture") {
        None => None,
        Some(f) => Some(f.as_str().ok_or_else(|| {
            f.at(file).error(format!(
                "unit test '{test}': `fixture:` must be a file name"
            ))
        })?),
    };
    let fixture_text = |name: &str, line_of: &Yaml| -> Result<&str> {
        fixtures.get(name).map(|f| f.content.as_str()).ok_or_else(|| {
            line_of.at(file).error(format!(
                "unit test '{test}': fixture '{name}' not found; add tests/fixtures/{name}.{} (a fixtures folder of a test path)",
                if format == "sql" { "sql" } else { "csv" }
            ))
        })
    };
    match (format, rows, fixture) {
        ("dict", Some(r), None) => match &r.value {
            YamlValue::Seq(items) => {
                let mut out = Vec::new();
                for item in items {
                    match item.to_json() {
                        Json::Object(m) => out.push(m),
                        _ => {
                            return Err(item.at(file).error(format!(
                                "unit test '{test}': {what} rows which do not match format dict: each row must be a mapping of column to value"
                            )))
                        }
                    }
                }
                Ok(Rows::Dicts(promote_full_row(out)))
            }
            _ => Err(r.at(file).error(format!(
                "unit test '{test}': {what} rows which do not match format dict: expected a list of mappings"
            ))),
        },
        ("dict", None, None) => Err(at.error(format!(
            "unit test '{test}': `{what}:` has no `rows:`; give the rows (rows from a seed's file are not supported yet)"
        ))),
        ("dict", _, Some(_)) => Err(at.error(format!(
            "unit test '{test}': a `fixture:` file needs `format: csv` or `format: sql`"
        ))),
        (_, Some(_), Some(_)) => Err(at.error(format!(
            "unit test '{test}': `{what}:` has both `rows:` and `fixture:`; keep one"
        ))),
        ("csv", Some(r), None) => match r.as_str() {
            Some(text) => csv_rows(text).map_err(|e| r.at(file).error(format!("unit test '{test}': {e}"))),
            None => Err(r.at(file).error(format!(
                "unit test '{test}': {what} rows which do not match format csv: expected a string of CSV lines"
            ))),
        },
        ("csv", None, Some(name)) => {
            let text = fixture_text(name, v.get("fixture").unwrap_or(v))?;
            csv_rows(text).map_err(|e| at.error(format!("unit test '{test}': fixture '{name}': {e}")))
        }
        ("sql", Some(r), None) => match r.as_str() {
            Some(text) => Ok(Rows::Sql(text.to_string())),
            None => Err(r.at(file).error(format!(
                "unit test '{test}': {what} rows which do not match format sql: expected a string holding a query"
            ))),
        },
        ("sql", None, Some(name)) => Ok(Rows::Sql(
            fixture_text(name, v.get("fixture").unwrap_or(v))?.to_string(),
        )),
        _ => Err(at.error(format!(
            "unit test '{test}': `{what}:` has neither `rows:` nor `fixture:`; add one"
        ))),
    }
}

/// CSV text as rows (Python's `csv.DictReader`): the first line names the
/// columns; empty values are null.
fn csv_rows(text: &str) -> std::result::Result<Rows, String> {
    let mut reader = crate::seed::csv_reader(text.as_bytes());
    let mut header = Vec::new();
    if !reader.record(&mut header)? {
        return Ok(Rows::Dicts(Vec::new()));
    }
    let mut out = Vec::new();
    let mut fields = Vec::new();
    while reader.record(&mut fields)? {
        if fields.iter().all(String::is_empty) && fields.len() <= 1 {
            continue; // DictReader skips blank lines
        }
        let mut row = Map::new();
        for (i, h) in header.iter().enumerate() {
            let v = fields.get(i).cloned().unwrap_or_default();
            row.insert(
                h.clone(),
                if v.is_empty() {
                    Json::Null
                } else {
                    Json::String(v)
                },
            );
        }
        out.push(row);
    }
    Ok(Rows::Dicts(promote_full_row(out)))
}

/// dbt moves the first row without a null value to the top (its columns decide
/// the expected columns when rows differ).
fn promote_full_row(mut rows: Vec<Map<String, Json>>) -> Vec<Map<String, Json>> {
    if let Some(i) = rows.iter().position(|r| r.values().all(|v| !v.is_null())) {
        rows.swap(0, i);
    }
    rows
}

fn read_overrides(o: &Yaml, test: &str, file: &str) -> Result<Overrides> {
    let mut out = Overrides::default();
    if !matches!(o.value, YamlValue::Map(_)) {
        return Err(o.at(file).error(format!(
            "unit test '{test}': `overrides:` must be a mapping of vars, macros and env_vars"
        )));
    }
    for (k, _, v) in o.entries() {
        let slot = match k.as_str() {
            "vars" => &mut out.vars,
            "macros" => &mut out.macros,
            "env_vars" => &mut out.env_vars,
            other => {
                return Err(v.at(file).error(format!(
                "unit test '{test}': `overrides: {other}` is unknown; use vars, macros or env_vars"
            )))
            }
        };
        match v.to_json() {
            Json::Object(m) => *slot = m,
            Json::Null => {}
            _ => {
                return Err(v.at(file).error(format!(
                    "unit test '{test}': `overrides: {k}` must be a mapping"
                )))
            }
        }
    }
    Ok(out)
}

/// `ref('m')`, `ref("m", v=2)`, `ref('package', 'm')`, `source('s', 't')` or
/// `this`.
pub(crate) fn parse_input(s: &str) -> Option<Input> {
    if s.trim() == "this" {
        return Some(Input::This);
    }
    match crate::semantic::parse_call(s)? {
        crate::semantic::Call::Ref { name, version } => Some(Input::Ref { name, version }),
        crate::semantic::Call::Source { source, table } => Some(Input::Source { source, table }),
        crate::semantic::Call::Metric { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_as_dbt_writes_them() {
        assert_eq!(
            parse_input("ref('a')"),
            Some(Input::Ref {
                name: "a".into(),
                version: None
            })
        );
        assert_eq!(
            parse_input(" ref(\"a\", v=2) "),
            Some(Input::Ref {
                name: "a".into(),
                version: Some("2".into())
            })
        );
        assert_eq!(
            parse_input("source('raw', 'orders')"),
            Some(Input::Source {
                source: "raw".into(),
                table: "orders".into()
            })
        );
        assert_eq!(parse_input("this"), Some(Input::This));
        assert_eq!(parse_input("model('a')"), None);
        assert_eq!(parse_input("ref(a)"), None);
    }

    #[test]
    fn csv_values_are_strings_and_empty_is_null() {
        let Rows::Dicts(rows) = csv_rows("id,name\n1,\n2,b\n").unwrap() else {
            panic!()
        };
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["id"], Json::from("2"));
        assert_eq!(rows[1]["name"], Json::Null);
    }
}
