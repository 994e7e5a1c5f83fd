//! dbt's `modules` object in the Jinja context: the Python modules dbt-core hands
//! to templates (`modules.datetime`, `modules.pytz`, `modules.re`,
//! `modules.itertools`), as values with Python's behaviour. Owns the `modules`
//! namespace, the argument binding they share and the "not supported yet" refusal
//! of a Python name they do not implement; each module is a file of its own.

mod datetime;
mod itertools;
mod pytz;
mod re;

use std::sync::Arc;

use minijinja::value::{from_args, Kwargs, Object};
use minijinja::{Error, ErrorKind, State, Value};

pub(super) use datetime::utc_datetime;

/// Python's arithmetic on the `datetime` module's values (see [`datetime::arith`]).
pub(super) fn arith(
    op: super::pyops::Op,
    a: &Value,
    b: Option<&Value>,
) -> Option<Result<Value, Error>> {
    datetime::arith(op, a, b)
}

/// The Python type name of a value of these modules that has arithmetic.
pub(super) fn type_name(v: &Value) -> Option<&'static str> {
    datetime::type_name(v)
}

/// The value of `modules` in every render.
pub(super) fn modules() -> Value {
    Value::from_object(Modules)
}

#[derive(Debug)]
struct Modules;

impl Object for Modules {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        Some(match key.as_str()? {
            "datetime" => datetime::module(),
            "pytz" => pytz::module(),
            "re" => re::module(),
            "itertools" => itertools::module(),
            _ => return None,
        })
    }

    fn enumerate(self: &Arc<Self>) -> minijinja::value::Enumerator {
        minijinja::value::Enumerator::Str(&["pytz", "datetime", "re", "itertools"])
    }
}

/// A Python name a module has but this implementation does not: using it is an
/// error naming it (the template's file and line are added by the caller).
#[derive(Debug)]
struct Unsupported(String);

impl Object for Unsupported {
    fn repr(self: &Arc<Self>) -> minijinja::value::ObjectRepr {
        minijinja::value::ObjectRepr::Plain
    }

    fn call(self: &Arc<Self>, _: &mut State<'_, '_>, _: &[Value]) -> Result<Value, Error> {
        Err(unsupported(&self.0))
    }

    fn call_method(
        self: &Arc<Self>,
        _: &mut State<'_, '_>,
        method: &str,
        _: &[Value],
    ) -> Result<Value, Error> {
        Err(unsupported(&format!("{}.{method}", self.0)))
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<{} (not supported yet)>", self.0)
    }
}

fn unsupported_value(name: &str) -> Value {
    Value::from_object(Unsupported(name.to_string()))
}

fn unsupported(name: &str) -> Error {
    Error::new(
        ErrorKind::InvalidOperation,
        format!("{name} is not supported yet in templates"),
    )
}

/// An error of a Python call: `TypeError`, `ValueError`, … and its message.
fn py_error(kind: &str, msg: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::InvalidOperation, format!("{kind}: {msg}"))
}

/// An unknown method of one of these values: named, with its type.
fn no_method(ty: &str, method: &str) -> Error {
    Error::new(
        ErrorKind::InvalidOperation,
        format!("{ty} has no method {method} (or it is not supported yet)"),
    )
}

/// Python's binding of a call's positional and keyword arguments to the
/// parameters of `func`: one slot per parameter, `None` where not given.
fn bind(func: &str, params: &[&str], args: &[Value]) -> Result<Vec<Option<Value>>, Error> {
    let (pos, kwargs): (&[Value], Kwargs) = from_args(args)?;
    if pos.len() > params.len() {
        return Err(py_error(
            "TypeError",
            format!(
                "{func}() takes at most {} arguments ({} given)",
                params.len(),
                pos.len()
            ),
        ));
    }
    let mut slots: Vec<Option<Value>> = pos.iter().cloned().map(Some).collect();
    slots.resize(params.len(), None);
    for key in kwargs.args() {
        let Some(i) = params.iter().position(|p| *p == key) else {
            return Err(py_error(
                "TypeError",
                format!("{func}() got an unexpected keyword argument '{key}'"),
            ));
        };
        if slots[i].is_some() {
            return Err(py_error(
                "TypeError",
                format!("{func}() got multiple values for argument '{key}'"),
            ));
        }
        slots[i] = Some(kwargs.get::<Value>(key)?);
    }
    Ok(slots)
}

/// An integer argument (Python's `int`; a float is refused as Python does).
fn int_arg(func: &str, name: &str, v: &Value) -> Result<i64, Error> {
    if v.as_i64().is_some() && !matches!(v.kind(), minijinja::value::ValueKind::Bool) {
        return Ok(v.as_i64().unwrap_or_default());
    }
    Err(py_error(
        "TypeError",
        format!("{func}(): '{name}' must be an integer, not {v:?}"),
    ))
}

/// A number argument (int or float).
fn num_arg(func: &str, name: &str, v: &Value) -> Result<f64, Error> {
    if let Some(i) = v.as_i64() {
        return Ok(i as f64);
    }
    f64::try_from(v.clone()).map_err(|_| {
        py_error(
            "TypeError",
            format!("{func}(): '{name}' must be a number, not {v:?}"),
        )
    })
}

/// A string argument.
fn str_arg(func: &str, name: &str, v: &Value) -> Result<String, Error> {
    v.as_str().map(str::to_string).ok_or_else(|| {
        py_error(
            "TypeError",
            format!("{func}(): '{name}' must be a string, not {v:?}"),
        )
    })
}
