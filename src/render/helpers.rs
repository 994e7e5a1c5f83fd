//! dbt's small context helpers built on Python's standard library: `tojson`
//! (Python's `json.dumps`), `fromjson`, `fromyaml`, `local_md5`, `var` as an
//! object (`var('x', default)`, `var.has_var('x')`).

use std::sync::Arc;

use minijinja::value::{from_args, Kwargs, Object, ObjectRepr};
use minijinja::{Error, ErrorKind, State, Value};
use serde_json::{Map, Value as Json};

use super::jerr;
use super::pystr::{json_dumps, md5_hex};

/// `tojson(value, sort_keys=False)`: the text Python's `json.dumps` writes
/// (`{"a": 1, "b": [1, 2]}`, non-ASCII escaped).
pub(super) fn tojson(value: Value, kwargs: Kwargs) -> Result<Value, Error> {
    let sort: bool = kwargs.get::<Option<bool>>("sort_keys")?.unwrap_or(false);
    let _: Option<Value> = kwargs.get("default")?;
    kwargs.assert_all_used()?;
    let json = serde_json::to_value(&value).map_err(|e| jerr(format!("tojson(): {e}")))?;
    Ok(Value::from(json_dumps(&json, sort)))
}

/// `fromjson(text, default=None)`: the value, or `default` when it is not JSON.
pub(super) fn fromjson(text: String, default: Option<Value>) -> Value {
    match serde_json::from_str::<Json>(&text) {
        Ok(v) => super::mutable::from_json(&v),
        Err(_) => default.unwrap_or(Value::from(())),
    }
}

/// `fromyaml(text, default=None)`.
pub(super) fn fromyaml(text: String, default: Option<Value>) -> Value {
    match serde_saphyr::from_str::<Json>(&text) {
        Ok(v) => super::mutable::from_json(&v),
        Err(_) => default.unwrap_or(Value::from(())),
    }
}

/// `local_md5(text)`: the hex md5 of the text.
pub(super) fn local_md5(text: String) -> String {
    md5_hex(&text)
}

/// `var`: callable as `var(name, default)`, and `var.has_var(name)`.
#[derive(Debug)]
pub(super) struct VarObj {
    pub(super) vars: Map<String, Json>,
    /// What a package's nodes read instead (`__package` of the render).
    pub(super) packages: std::collections::BTreeMap<String, Map<String, Json>>,
}

impl VarObj {
    fn vars_for(&self, state: &State<'_, '_>) -> &Map<String, Json> {
        state
            .lookup("__package")
            .and_then(|p| p.as_str().and_then(|p| self.packages.get(p)))
            .unwrap_or(&self.vars)
    }
}

impl Object for VarObj {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn call(self: &Arc<Self>, state: &mut State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        let (name, default): (String, Option<Value>) = from_args(args)?;
        match self.vars_for(state).get(&name) {
            Some(v) => Ok(super::mutable::from_json(v)),
            None => default.ok_or_else(|| {
                jerr(format!(
                    "var('{name}') is not set and has no default; pass --vars '{{\"{name}\": …}}' or set it under `vars:` in dbt_project.yml"
                ))
            }),
        }
    }

    fn call_method(
        self: &Arc<Self>,
        state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "has_var" => {
                let (name,): (String,) = from_args(args)?;
                Ok(Value::from(self.vars_for(state).contains_key(&name)))
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tojson_writes_what_python_writes() {
        let v: Json = serde_json::json!({"b": [1, 2.5, null], "a": "é\"x", "t": true});
        assert_eq!(
            json_dumps(&v, false),
            r#"{"b": [1, 2.5, null], "a": "\u00e9\"x", "t": true}"#
        );
        let sorted = json_dumps(&v, true);
        assert!(sorted.starts_with(r#"{"a": "#), "{sorted}");
    }
}
