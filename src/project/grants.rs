//! The `grants` config of models and seeds (dbt's): privileges to roles, checked
//! when the project loads (with the file and line), merged as dbt-core 1.10 merges
//! them ([`merge_grants`]: a privilege given again replaces the inherited roles,
//! `+privilege` adds to them) and typed for the adapter ([`Grants`]).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::error::Result;

use super::yaml::{At, Yaml, YamlValue};

/// Privilege (lower case, e.g. `select`) → roles as written.
pub(crate) type Grants = BTreeMap<String, Vec<String>>;

/// The grants of a merged config; `None` without a `grants` config or with an
/// empty one (dbt then leaves the relation's grants alone).
pub(crate) fn grants_of(config: &Map<String, Value>) -> Option<Grants> {
    let Some(Value::Object(m)) = config.get("grants") else {
        return None;
    };
    let out: Grants = m
        .iter()
        .map(|(privilege, roles)| {
            let roles = match roles {
                Value::Array(a) => a
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect(),
                Value::String(s) => vec![s.clone()],
                _ => Vec::new(),
            };
            (
                privilege.trim_start_matches('+').to_ascii_lowercase(),
                roles,
            )
        })
        .collect();
    (!out.is_empty()).then_some(out)
}

/// dbt's merge of `grants`: every privilege's roles as a list; a privilege given
/// again replaces the inherited list, `+privilege` extends it (and is kept as
/// `+privilege` while nothing is inherited, to extend what it lands on later).
pub(crate) fn merge_grants(old: Option<&Value>, new: &Value) -> Value {
    let listify = |v: &Value| -> Vec<Value> {
        match v {
            Value::Array(a) => a.clone(),
            Value::Null => Vec::new(),
            other => vec![other.clone()],
        }
    };
    let Some(old) = old else {
        // Nothing inherited yet (a `config()` call or a property file's `config:`
        // read on its own): `+privilege` stays, to extend what it is merged onto.
        let Value::Object(n) = new else {
            return new.clone();
        };
        return Value::Object(
            n.iter()
                .map(|(k, v)| (k.clone(), Value::Array(listify(v))))
                .collect(),
        );
    };
    let mut out = Map::new();
    if let Value::Object(o) = old {
        for (k, v) in o {
            out.insert(
                k.trim_start_matches('+').to_string(),
                Value::Array(listify(v)),
            );
        }
    }
    if let Value::Object(n) = new {
        for (k, v) in n {
            match k.strip_prefix('+') {
                Some(key) => {
                    let mut list = match out.get(key.trim()) {
                        Some(Value::Array(a)) => a.clone(),
                        _ => Vec::new(),
                    };
                    list.extend(listify(v));
                    out.insert(key.trim().to_string(), Value::Array(list));
                }
                None => {
                    out.insert(k.clone(), Value::Array(listify(v)));
                }
            }
        }
    }
    Value::Object(out)
}

/// The privileges a table or view takes (PostgreSQL 15).
const PRIVILEGES: &[&str] = &[
    "select",
    "insert",
    "update",
    "delete",
    "truncate",
    "references",
    "trigger",
];

/// `grants`: a mapping of privileges (`select`, `+select`) to a role or a list of
/// roles.
pub(super) fn check_grants(v: &Yaml, path: &str, at: At<'_>) -> Result<()> {
    let entries = match &v.value {
        YamlValue::Null => return Ok(()),
        YamlValue::Map(entries) => entries,
        _ => {
            return Err(at.error(format!(
                "{path}: expected a mapping of privileges to roles, e.g. {{select: [reporter]}}, got {}",
                v.kind()
            )))
        }
    };
    for (k, line, roles) in entries {
        let here = At {
            line: if *line > 0 { *line } else { at.line },
            ..at
        };
        let privilege = k.strip_prefix('+').unwrap_or(k).trim().to_ascii_lowercase();
        if !PRIVILEGES.contains(&privilege.as_str()) {
            let message = format!(
                "{path}: '{k}' is not a privilege of a table or view; use select, insert, update, delete, truncate, references or trigger"
            );
            return Err(here.error(message));
        }
        let ok = match &roles.value {
            YamlValue::Str(s) => !s.trim().is_empty(),
            YamlValue::Null => true,
            YamlValue::Seq(items) => items
                .iter()
                .all(|r| r.as_str().is_some_and(|s| !s.trim().is_empty())),
            _ => false,
        };
        if !ok {
            let message = format!(
                "{path}.{k}: expected a role or a list of roles, e.g. [reporter, bi_reader]"
            );
            return Err(here.error(message));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn grants_replace_or_extend() {
        let base = merge_grants(None, &json!({"select": "a", "insert": ["w"]}));
        let replaced = merge_grants(Some(&base), &json!({"select": ["b"]}));
        assert_eq!(replaced, json!({"select": ["b"], "insert": ["w"]}));
        let extended = merge_grants(Some(&base), &json!({"+select": ["b"]}));
        assert_eq!(extended, json!({"select": ["a", "b"], "insert": ["w"]}));
        let own = merge_grants(None, &json!({"+select": "c"}));
        assert_eq!(own, json!({"+select": ["c"]}));
        let onto = merge_grants(Some(&base), &own);
        assert_eq!(onto, json!({"select": ["a", "c"], "insert": ["w"]}));
        let config = json!({"grants": extended}).as_object().unwrap().clone();
        assert_eq!(grants_of(&config).unwrap()["select"], ["a", "b"]);
        assert!(grants_of(&json!({"grants": {}}).as_object().unwrap().clone()).is_none());
    }
}
