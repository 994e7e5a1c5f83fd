//! The selectors of a project's `selectors.yml` (`--selector name`, and the one
//! with `default: true` when nothing is selected), read into selection specs as
//! dbt builds them: a criterion (`2+tag:daily+`, `@x`, `config.materialized:table`)
//! or a union, intersection or difference of specs, from strings, `{method: …,
//! value: …, children: true, …}`, `union:`, `intersection:`, `exclude:` and
//! `{method: selector, value: other}`. [`Criteria::selector`] gives a criterion
//! back in the command line's syntax, which `select.rs` evaluates.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::cli::IndirectSelection;
use crate::error::{Error, Result};

/// How the selections of a group's members combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Union,
    Intersection,
    /// The first minus the others.
    Difference,
}

/// One selection method with its value and graph operators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Criteria {
    pub(crate) raw: String,
    /// `fqn`, `tag`, `path`, `config`, `state`…
    pub(crate) method: String,
    /// What follows the method name: `materialized` of `config.materialized`.
    pub(crate) arguments: Vec<String>,
    pub(crate) value: String,
    /// `@`.
    pub(crate) childrens_parents: bool,
    /// `+x` / `2+x`.
    pub(crate) parents: bool,
    pub(crate) parents_depth: Option<usize>,
    /// `x+` / `x+2`.
    pub(crate) children: bool,
    pub(crate) children_depth: Option<usize>,
    pub(crate) indirect: IndirectSelection,
}

/// A selection spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Spec {
    Criteria(Criteria),
    Group {
        op: Op,
        components: Vec<Spec>,
        indirect: IndirectSelection,
        raw: String,
    },
}

/// The methods dbt knows; the ones we cannot evaluate are refused when used.
const METHODS: &[&str] = &[
    "fqn",
    "tag",
    "group",
    "access",
    "source",
    "path",
    "file",
    "package",
    "config",
    "test_name",
    "test_type",
    "resource_type",
    "state",
    "exposure",
    "metric",
    "result",
    "source_status",
    "version",
    "semantic_model",
    "saved_query",
    "unit_test",
    "unique_id",
];

impl Criteria {
    /// One criterion of the command line's syntax: `[@][N+][method[.args]:]value[+[N]]`.
    pub(crate) fn parse(raw: &str, indirect: IndirectSelection) -> Result<Criteria> {
        let mut rest = raw;
        let childrens_parents = rest.starts_with('@');
        if childrens_parents {
            rest = &rest[1..];
        }
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (parents, parents_depth) = if rest[digits..].starts_with('+') {
            let depth = rest[..digits].parse::<usize>().ok();
            rest = &rest[digits + 1..];
            (true, depth)
        } else {
            (false, None)
        };
        let (children, children_depth) = match rest.rfind('+') {
            Some(pos) if rest[pos + 1..].chars().all(|c| c.is_ascii_digit()) => {
                let depth = rest[pos + 1..].parse::<usize>().ok();
                rest = &rest[..pos];
                (true, depth)
            }
            _ => (false, None),
        };
        let (method, value) = match rest.split_once(':') {
            Some((m, v))
                if !m.is_empty()
                    && m.chars()
                        .all(|c| c.is_alphanumeric() || c == '_' || c == '.') =>
            {
                (Some(m), v)
            }
            _ => (None, rest),
        };
        let (method, arguments) = match method {
            Some(m) => {
                let mut parts = m.split('.');
                let name = parts.next().unwrap_or_default();
                (name.to_string(), parts.map(str::to_string).collect())
            }
            None => (default_method(value).to_string(), Vec::new()),
        };
        if !METHODS.contains(&method.as_str()) {
            return Err(Error::usage(format!(
                "'{method}' is not a valid method name in selector '{raw}'; use a node name, tag:, path:, file:, source:, fqn:, package:, resource_type:, test_type:, test_name:, config.<key>:, state:, result: or unique_id:"
            )));
        }
        if childrens_parents && children {
            return Err(Error::usage(format!(
                "invalid selector '{raw}': the \"@\" prefix and the \"+\" suffix cannot be used together"
            )));
        }
        Ok(Criteria {
            raw: raw.to_string(),
            method,
            arguments,
            value: value.to_string(),
            childrens_parents,
            parents,
            parents_depth,
            children,
            children_depth,
            indirect,
        })
    }
}

/// The method of a selector without one: a path when it has a `/`, a file when
/// it ends in `.sql`, `.py` or `.csv`, else an fqn (or name).
fn default_method(value: &str) -> &'static str {
    if value.contains('/') {
        "path"
    } else if [".sql", ".py", ".csv"]
        .iter()
        .any(|ext| value.to_ascii_lowercase().ends_with(ext))
    {
        "file"
    } else {
        "fqn"
    }
}

impl Criteria {
    /// The criterion in the command line's syntax (`@`, `N+method.args:value+N`).
    pub(crate) fn selector(&self) -> String {
        let mut s = String::new();
        if self.childrens_parents {
            s.push('@');
        }
        if self.parents {
            if let Some(d) = self.parents_depth {
                s.push_str(&d.to_string());
            }
            s.push('+');
        }
        s.push_str(&self.method);
        for a in &self.arguments {
            s.push('.');
            s.push_str(a);
        }
        s.push(':');
        s.push_str(&self.value);
        if self.children {
            s.push('+');
            if let Some(d) = self.children_depth {
                s.push_str(&d.to_string());
            }
        }
        s
    }
}

impl Spec {
    fn group(op: Op, components: Vec<Spec>, raw: String) -> Spec {
        Spec::Group {
            op,
            components,
            indirect: IndirectSelection::Eager,
            raw,
        }
    }
}

/// The selectors of a project's `selectors.yml`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Selectors {
    /// By name, in file order.
    pub(crate) by_name: BTreeMap<String, Spec>,
    pub(crate) order: Vec<String>,
    /// The selector with `default: true`.
    pub(crate) default: Option<String>,
    /// Each selector as written (for manifest.json).
    pub(crate) raw: BTreeMap<String, Value>,
}

impl Selectors {
    /// Reads the parsed `selectors.yml` (`file` names it in messages); `indirect`
    /// is the `--indirect-selection` of criteria that do not set their own.
    pub(crate) fn parse(doc: &Value, file: &str, indirect: IndirectSelection) -> Result<Selectors> {
        let bad = |m: String| Error::in_file(file.to_string(), m);
        let list = match doc.get("selectors") {
            Some(Value::Array(items)) => items,
            Some(Value::Null) | None => {
                return Err(bad(
                    "expected `selectors:` with a list of selectors (name, definition)".into(),
                ))
            }
            Some(other) => {
                return Err(bad(format!(
                    "selectors: expected a list of selectors, got {other}"
                )))
            }
        };
        let mut out = Selectors::default();
        for item in list {
            let Some(obj) = item.as_object() else {
                return Err(bad(format!(
                    "each selector is a mapping with name and definition, got {item}"
                )));
            };
            let name = obj
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("a selector has no `name:`".into()))?
                .to_string();
            for key in obj.keys() {
                if !["name", "description", "definition", "default"].contains(&key.as_str()) {
                    return Err(bad(format!(
                        "selector '{name}': unknown key '{key}'; a selector has name, description, default and definition"
                    )));
                }
            }
            let definition = obj
                .get("definition")
                .ok_or_else(|| bad(format!("selector '{name}' has no `definition:`")))?;
            let default = match obj.get("default") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(other) => {
                    return Err(bad(format!(
                        "selector '{name}': default: expected true or false, got {other}"
                    )))
                }
            };
            if default {
                if let Some(first) = &out.default {
                    return Err(bad(format!(
                        "found several selectors with `default: true`: {first} and {name}; keep one"
                    )));
                }
                out.default = Some(name.clone());
            }
            let spec = parse_definition(definition, true, &out.by_name, indirect)
                .map_err(|e| bad(format!("selector '{name}': {}", e.message)))?;
            out.by_name.insert(name.clone(), spec);
            out.raw.insert(name.clone(), item.clone());
            out.order.push(name);
        }
        Ok(out)
    }
}

/// One definition of `selectors.yml` (dbt's `parse_from_definition`).
fn parse_definition(
    def: &Value,
    root: bool,
    known: &BTreeMap<String, Spec>,
    indirect: IndirectSelection,
) -> Result<Spec> {
    match def {
        Value::String(s) => Ok(Spec::Criteria(Criteria::parse(s, indirect)?)),
        Value::Object(map) => {
            let set_op = ["union", "intersection"]
                .into_iter()
                .find(|k| map.contains_key(*k));
            if let Some(op_key) = set_op {
                if root && map.len() > 1 {
                    let keys: Vec<&str> = map.keys().map(String::as_str).collect();
                    return Err(Error::usage(format!(
                        "only one `union` or `intersection` key is allowed at the root of a definition; found {}",
                        keys.join(",")
                    )));
                }
                let Some(Value::Array(items)) = map.get(op_key) else {
                    return Err(Error::usage(format!("{op_key}: expected a list")));
                };
                let mut include = Vec::new();
                let mut exclude: Option<Spec> = None;
                for item in items {
                    if let Some(ex) = item.as_object().and_then(|o| o.get("exclude")) {
                        if exclude.is_some() {
                            return Err(Error::usage(format!(
                                "several `exclude` entries in one `{op_key}`; put them in one list"
                            )));
                        }
                        exclude = Some(parse_exclusions(ex, known, indirect)?);
                    } else {
                        include.push(parse_definition(item, false, known, indirect)?);
                    }
                }
                let op = if op_key == "union" {
                    Op::Union
                } else {
                    Op::Intersection
                };
                let raw = def.to_string();
                let base = Spec::group(op, include, raw.clone());
                Ok(match exclude {
                    None => base,
                    Some(ex) => Spec::group(Op::Difference, vec![base, ex], raw),
                })
            } else if map.len() == 1 {
                let (key, value) = map.iter().next().expect("one entry");
                let value = scalar(value).ok_or_else(|| {
                    Error::usage(format!("{key}: expected a value such as a name or a tag"))
                })?;
                criteria_from_map(def, key, &value, map, indirect)
            } else if map.get("method").and_then(Value::as_str) == Some("selector") {
                let name = map.get("value").and_then(Value::as_str).unwrap_or_default();
                known.get(name).cloned().ok_or_else(|| {
                    Error::usage(format!(
                        "no selector '{name}' defined above this one (a selector can use those defined before it)"
                    ))
                })
            } else if let (Some(method), Some(value)) = (map.get("method"), map.get("value")) {
                let method = method
                    .as_str()
                    .ok_or_else(|| Error::usage("method: expected a method name"))?;
                let value = scalar(value)
                    .ok_or_else(|| Error::usage("value: expected a name, tag, path…"))?;
                let base = criteria_from_map(def, method, &value, map, indirect)?;
                match map.get("exclude") {
                    None => Ok(base),
                    Some(ex) => Ok(Spec::group(
                        Op::Difference,
                        vec![base, parse_exclusions(ex, known, indirect)?],
                        def.to_string(),
                    )),
                }
            } else {
                let keys: Vec<&str> = map.keys().map(String::as_str).collect();
                Err(Error::usage(format!(
                    "expected either one key (method: value) or `method` and `value` keys, got {}",
                    keys.join(", ")
                )))
            }
        }
        other => Err(Error::usage(format!(
            "expected a union, an intersection, a string or a mapping, got {other}"
        ))),
    }
}

fn parse_exclusions(
    ex: &Value,
    known: &BTreeMap<String, Spec>,
    indirect: IndirectSelection,
) -> Result<Spec> {
    let Value::Array(items) = ex else {
        return Err(Error::usage("exclude: expected a list"));
    };
    let mut parsed = items
        .iter()
        .map(|i| parse_definition(i, false, known, indirect))
        .collect::<Result<Vec<_>>>()?;
    Ok(if parsed.len() == 1 {
        parsed.remove(0)
    } else {
        Spec::group(Op::Union, parsed, ex.to_string())
    })
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A criterion given as a mapping: `{method: tag, value: x, parents: true,
/// children_depth: 1, indirect_selection: cautious}` or `{tag: x}`.
fn criteria_from_map(
    raw: &Value,
    method: &str,
    value: &str,
    map: &serde_json::Map<String, Value>,
    indirect: IndirectSelection,
) -> Result<Spec> {
    let mut parts = method.split('.');
    let name = parts.next().unwrap_or_default().to_string();
    if !METHODS.contains(&name.as_str()) {
        return Err(Error::usage(format!("'{name}' is not a valid method name")));
    }
    let flag = |k: &str| map.get(k).is_some_and(|v| v.as_bool() == Some(true));
    let depth = |k: &str| -> Result<Option<usize>> {
        match map.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .map(|d| Some(d as usize))
                .or_else(|| v.as_str().and_then(|s| s.parse().ok().map(Some)))
                .ok_or_else(|| Error::usage(format!("{k}: expected a number, got {v}"))),
        }
    };
    let indirect = match map.get("indirect_selection") {
        None => indirect,
        Some(v) => v
            .as_str()
            .and_then(|s| <IndirectSelection as clap::ValueEnum>::from_str(s, true).ok())
            .ok_or_else(|| {
                Error::usage(format!(
                    "indirect_selection: expected eager, cautious, buildable or empty, got {v}"
                ))
            })?,
    };
    let c = Criteria {
        raw: raw.to_string(),
        method: name,
        arguments: parts.map(str::to_string).collect(),
        value: value.to_string(),
        childrens_parents: flag("childrens_parents"),
        parents: flag("parents"),
        parents_depth: depth("parents_depth")?,
        children: flag("children"),
        children_depth: depth("children_depth")?,
        indirect,
    };
    if c.childrens_parents && c.children {
        return Err(Error::usage(
            "childrens_parents and children cannot be used together",
        ));
    }
    Ok(Spec::Criteria(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn criteria_syntax() {
        let c = Criteria::parse("2+config.materialized:table+1", IndirectSelection::Eager).unwrap();
        assert_eq!(c.method, "config");
        assert_eq!(c.arguments, vec!["materialized"]);
        assert_eq!(c.value, "table");
        assert_eq!((c.parents, c.parents_depth), (true, Some(2)));
        assert_eq!((c.children, c.children_depth), (true, Some(1)));
        // `state:modified.body`: the value holds the sub-selector.
        let c = Criteria::parse("@state:modified.body", IndirectSelection::Eager).unwrap();
        assert!(c.childrens_parents);
        assert_eq!(c.method, "state");
        assert!(c.arguments.is_empty());
        assert_eq!(c.value, "modified.body");
        assert_eq!(
            Criteria::parse("models/marts", IndirectSelection::Eager)
                .unwrap()
                .method,
            "path"
        );
        assert!(Criteria::parse("nope:x", IndirectSelection::Eager).is_err());
        assert!(Criteria::parse("@x+", IndirectSelection::Eager).is_err());
    }
}
