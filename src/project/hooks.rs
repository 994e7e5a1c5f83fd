//! Model and seed hooks (`pre-hook`/`post-hook`, alias `pre_hook`/`post_hook`):
//! their shape checked when the project loads (with the file and line of the
//! value), merged as dbt-core 1.10 merges them (every level's hooks accumulate:
//! `dbt_project.yml` from the outermost folder in, then the property file, then
//! `config()`), and typed for the adapter ([`Hook`]). The merged config keeps them
//! as dbt's manifest records them, `[{"sql": …, "transaction": …, "index": null}]`.

use serde_json::{json, Map, Value};

use crate::error::Result;

use super::yaml::{At, Yaml, YamlValue};

/// A hook: SQL run before or after a model's or seed's build, inside the build's
/// transaction (`transaction: true`, the default) or outside it (`before_begin`
/// for a pre-hook, `after_commit` for a post-hook).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hook {
    /// As written (Jinja), or once rendered with the node's context.
    pub(crate) sql: String,
    pub(crate) transaction: bool,
    /// Still as written, rendered only when it runs, on the node's connection:
    /// its Jinja reaches the database (`run_query`, `adapter.drop_relation`…),
    /// which dbt does at that moment, after what runs before it.
    pub(crate) at_run: bool,
}

/// A node's hooks, in the order they run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Hooks {
    pub(crate) pre: Vec<Hook>,
    pub(crate) post: Vec<Hook>,
}

impl Hooks {
    /// The hooks of a merged config.
    pub(crate) fn of(config: &Map<String, Value>) -> Hooks {
        let list = |key: &str| -> Vec<Hook> {
            config
                .get(key)
                .map(hook_values)
                .unwrap_or_default()
                .iter()
                .filter_map(|h| {
                    Some(Hook {
                        sql: h.get("sql")?.as_str()?.to_string(),
                        transaction: h.get("transaction").and_then(Value::as_bool) != Some(false),
                        at_run: false,
                    })
                })
                .collect()
        };
        Hooks {
            pre: list("pre-hook"),
            post: list("post-hook"),
        }
    }
}

/// The canonical key of a hook config (`pre_hook` is dbt's alias of `pre-hook`).
pub(crate) fn hook_key(key: &str) -> Option<&'static str> {
    match key {
        "pre-hook" | "pre_hook" => Some("pre-hook"),
        "post-hook" | "post_hook" => Some("post-hook"),
        _ => None,
    }
}

/// A hook config value (SQL text, a `{sql, transaction}` mapping, or a list of
/// them) as the list dbt records: `[{"sql": …, "transaction": …, "index": null}]`.
fn hook_values(v: &Value) -> Vec<Value> {
    let one = |h: &Value| -> Option<Value> {
        match h {
            // dbt reads a string that is JSON (what `before_begin(…)` and
            // `after_commit(…)` render) as that mapping.
            Value::String(s) => match serde_json::from_str::<Value>(s.trim()) {
                Ok(Value::Object(o)) if o.get("sql").is_some_and(Value::is_string) => one_of(&o),
                _ => Some(json!({"sql": s, "transaction": true, "index": null})),
            },
            Value::Object(o) => one_of(o),
            _ => None,
        }
    };
    match v {
        Value::Array(items) => items.iter().filter_map(one).collect(),
        Value::Null => Vec::new(),
        other => one(other).into_iter().collect(),
    }
}

fn one_of(o: &Map<String, Value>) -> Option<Value> {
    Some(json!({
                "sql": o.get("sql").and_then(Value::as_str).unwrap_or_default(),
                "transaction": o.get("transaction").and_then(Value::as_bool).unwrap_or(true),
                "index": o.get("index").cloned().unwrap_or(Value::Null),
    }))
}

/// Appends the hooks of `new` to the inherited `old` ones.
pub(crate) fn merge_hooks(old: Option<&Value>, new: &Value) -> Value {
    let mut list = old.map(hook_values).unwrap_or_default();
    list.extend(hook_values(new));
    Value::Array(list)
}

/// `pre-hook`/`post-hook`: SQL, a `{sql, transaction}` mapping, or a list of those.
pub(super) fn check_hooks(v: &Yaml, path: &str, at: At<'_>) -> Result<()> {
    let one = |h: &Yaml| -> Result<()> {
        let at = At {
            line: if h.line > 0 { h.line } else { at.line },
            ..at
        };
        match &h.value {
            YamlValue::Str(_) => Ok(()),
            YamlValue::Map(entries) => {
                for (k, line, x) in entries {
                    let here = At {
                        line: if *line > 0 { *line } else { at.line },
                        ..at
                    };
                    match k.as_str() {
                        "sql" if matches!(x.value, YamlValue::Str(_)) => {}
                        "transaction" if matches!(x.value, YamlValue::Bool(_)) => {}
                        "index" if matches!(x.value, YamlValue::Int(_) | YamlValue::Null) => {}
                        "sql" | "transaction" | "index" => {
                            return Err(here.error(format!(
                                "{path}: the hook's `{k}` has the wrong type ({}); `sql` is SQL text, `transaction` true or false",
                                x.kind()
                            )))
                        }
                        other => {
                            return Err(here.error(format!(
                                "{path}: a hook has no key `{other}`; a hook is SQL text, or {{sql: …, transaction: true|false}}"
                            )))
                        }
                    }
                }
                if h.get("sql").is_none() {
                    return Err(at.error(format!(
                        "{path}: a hook mapping needs its `sql:`; write {{sql: \"…\", transaction: false}}"
                    )));
                }
                Ok(())
            }
            _ => Err(at.error(format!(
                "{path}: expected SQL text, a list of SQL texts, or {{sql: …, transaction: …}}, got {}; fix the value",
                h.kind()
            ))),
        }
    };
    match &v.value {
        YamlValue::Null => Ok(()),
        YamlValue::Seq(items) => items.iter().try_for_each(one),
        _ => one(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hooks_accumulate_in_order() {
        let a = merge_hooks(None, &json!("select 1"));
        let b = merge_hooks(
            Some(&a),
            &json!([
                "select 2",
                {"sql": "vacuum x", "transaction": false},
                " {\"sql\": \"analyze x\", \"transaction\": false}\n"
            ]),
        );
        let h = Hooks::of(&json!({"pre-hook": b}).as_object().unwrap().clone());
        let sqls: Vec<_> = h
            .pre
            .iter()
            .map(|h| (h.sql.as_str(), h.transaction))
            .collect();
        assert_eq!(
            sqls,
            vec![
                ("select 1", true),
                ("select 2", true),
                ("vacuum x", false),
                ("analyze x", false)
            ]
        );
        assert!(h.post.is_empty());
    }
}
