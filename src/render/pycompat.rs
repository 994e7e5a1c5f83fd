//! The Python methods dbt projects call on Jinja values that minijinja does not
//! have: `dict.items()`/`keys()`/`values()`/`get()` and the common `str` methods.

use minijinja::value::{from_args, ValueKind};
use minijinja::{Error, ErrorKind, State, Value};

/// minijinja's unknown-method callback: Python's methods of dicts and strings.
pub(super) fn python_method(
    state: &mut State,
    value: &Value,
    method: &str,
    args: &[Value],
) -> Result<Value, Error> {
    match (value.kind(), method) {
        (ValueKind::Map, "items") => {
            let () = from_args(args)?;
            state.apply_filter("items", std::slice::from_ref(value))
        }
        (ValueKind::Map, "keys") => {
            let () = from_args(args)?;
            Ok(Value::from(value.try_iter()?.collect::<Vec<_>>()))
        }
        (ValueKind::Map, "values") => {
            let () = from_args(args)?;
            let mut out = Vec::new();
            for k in value.try_iter()? {
                out.push(value.get_item(&k)?);
            }
            Ok(Value::from(out))
        }
        (ValueKind::Map, "get") => {
            let (key, default): (Value, Option<Value>) = from_args(args)?;
            let v = value.get_item(&key)?;
            Ok(if v.is_undefined() {
                default.unwrap_or(Value::from(()))
            } else {
                v
            })
        }
        (ValueKind::String, _) => {
            let s = value.as_str().unwrap_or_default();
            match method {
                "upper" => Ok(Value::from(s.to_uppercase())),
                "lower" => Ok(Value::from(s.to_lowercase())),
                "strip" => Ok(Value::from(s.trim())),
                "lstrip" => Ok(Value::from(s.trim_start())),
                "rstrip" => Ok(Value::from(s.trim_end())),
                "startswith" => {
                    let (p,): (String,) = from_args(args)?;
                    Ok(Value::from(s.starts_with(&p)))
                }
                "endswith" => {
                    let (p,): (String,) = from_args(args)?;
                    Ok(Value::from(s.ends_with(&p)))
                }
                "replace" => {
                    let (from, to): (String, String) = from_args(args)?;
                    Ok(Value::from(s.replace(&from, &to)))
                }
                "split" => {
                    let (sep,): (Option<String>,) = from_args(args)?;
                    let parts: Vec<Value> = match sep {
                        Some(sep) => s.split(sep.as_str()).map(Value::from).collect(),
                        None => s.split_whitespace().map(Value::from).collect(),
                    };
                    Ok(Value::from(parts))
                }
                _ => Err(Error::from(ErrorKind::UnknownMethod)),
            }
        }
        _ => Err(Error::from(ErrorKind::UnknownMethod)),
    }
}
