//! The `indexes` config of table models and seeds (dbt-postgres's): a list of
//! `{columns: [...], unique: true|false, type: btree|hash|gist|…}`, checked when
//! the project loads (with the file and line of the value) and typed for the
//! adapter ([`Index`]), which creates them on the new relation before it is
//! swapped in.

use serde_json::{Map, Value};

use crate::error::Result;

use super::yaml::{At, Yaml, YamlValue};

/// One of the `indexes:` of a table or seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Index {
    /// As written: column names or expressions, put into the statement as dbt
    /// puts them (unquoted).
    pub(crate) columns: Vec<String>,
    pub(crate) unique: bool,
    /// The access method (`btree`, `hash`, `gin` …); `None`: PostgreSQL's default.
    pub(crate) method: Option<String>,
}

impl Index {
    /// The indexes of a merged config (every value was checked when it loaded).
    pub(crate) fn list(config: &Map<String, Value>) -> Vec<Index> {
        let Some(Value::Array(items)) = config.get("indexes") else {
            return Vec::new();
        };
        items
            .iter()
            .map(|i| Index {
                columns: match i.get("columns") {
                    Some(Value::Array(c)) => c
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect(),
                    Some(Value::String(c)) => vec![c.clone()],
                    _ => Vec::new(),
                },
                unique: i.get("unique").and_then(Value::as_bool).unwrap_or(false),
                method: i
                    .get("type")
                    .and_then(Value::as_str)
                    .map(str::to_ascii_lowercase),
            })
            .collect()
    }
}

fn want(path: &str, what: &str, v: &Yaml, at: At<'_>) -> crate::error::Error {
    at.error(format!(
        "{path}: expected {what}, got {}; fix the value",
        v.kind()
    ))
}

/// `indexes`: a list of `{columns: [...], unique: true|false, type: btree|hash|…}`.
pub(super) fn check_indexes(v: &Yaml, path: &str, at: At<'_>) -> Result<()> {
    let items = match &v.value {
        YamlValue::Null => return Ok(()),
        YamlValue::Seq(items) => items,
        _ => {
            return Err(want(
                path,
                "a list of indexes, e.g. [{columns: [id], unique: true}]",
                v,
                at,
            ))
        }
    };
    for (n, i) in items.iter().enumerate() {
        let here = At {
            line: if i.line > 0 { i.line } else { at.line },
            ..at
        };
        let which = format!("{path}[{n}]");
        if !matches!(i.value, YamlValue::Map(_)) {
            return Err(want(&which, "a mapping with `columns:`", i, here));
        }
        for (k, line, x) in i.entries() {
            let at = At {
                line: if *line > 0 { *line } else { here.line },
                ..here
            };
            let ok = match k.as_str() {
                "columns" => match &x.value {
                    YamlValue::Seq(c) => {
                        !c.is_empty()
                            && c.iter()
                                .all(|c| c.as_str().is_some_and(|s| !s.trim().is_empty()))
                    }
                    YamlValue::Str(s) => !s.trim().is_empty(),
                    _ => false,
                },
                "unique" => matches!(x.value, YamlValue::Bool(_) | YamlValue::Null),
                "type" => match &x.value {
                    YamlValue::Null => true,
                    YamlValue::Str(s) => {
                        !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    }
                    _ => false,
                },
                other => {
                    let message = format!(
                        "{which}: an index has no key `{other}`; an index has columns, unique and type"
                    );
                    return Err(at.error(message));
                }
            };
            if !ok {
                let what = match k.as_str() {
                    "columns" => "a non-empty list of columns",
                    "unique" => "true or false",
                    _ => "an index method such as btree, hash, gist or gin",
                };
                return Err(want(&format!("{which}.{k}"), what, x, at));
            }
        }
        if i.get("columns").is_none() {
            return Err(here.error(format!(
                "{which}: an index needs its `columns:`, e.g. {{columns: [customer_id]}}"
            )));
        }
    }
    Ok(())
}
