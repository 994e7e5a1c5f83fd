//! dbt's small context helpers built on Python's standard library: `tojson`
//! (Python's `json.dumps`), `fromjson`, `fromyaml`, `local_md5`, `var` as an
//! object (`var('x', default)`, `var.has_var('x')`) and `run_started_at` as a
//! datetime.

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

/// `run_started_at`: a timezone-aware datetime (UTC) as Python's: renders as
/// `2026-01-02 03:04:05.123456+00:00`; `.strftime(fmt)`, `.isoformat()`,
/// `.timestamp()`, `.year` … `.microsecond`.
#[derive(Debug)]
pub(super) struct DateTimeObj(pub(super) chrono::DateTime<chrono::Utc>);

impl DateTimeObj {
    /// Python's `strftime`: chrono's, but `%f` is microseconds.
    fn strftime(&self, fmt: &str) -> String {
        let fmt = fmt.replace("%f", "%6f");
        let mut out = String::new();
        use std::fmt::Write;
        match write!(out, "{}", self.0.format(&fmt)) {
            Ok(()) => out,
            Err(_) => fmt,
        }
    }
}

impl Object for DateTimeObj {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        use chrono::{Datelike, Timelike};
        let t = &self.0;
        Some(Value::from(match key.as_str()? {
            "year" => t.year() as i64,
            "month" => t.month() as i64,
            "day" => t.day() as i64,
            "hour" => t.hour() as i64,
            "minute" => t.minute() as i64,
            "second" => t.second() as i64,
            "microsecond" => (t.nanosecond() / 1000) as i64,
            _ => return None,
        }))
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "strftime" => {
                let (fmt,): (String,) = from_args(args)?;
                Ok(Value::from(self.strftime(&fmt)))
            }
            "isoformat" => {
                let () = from_args(args)?;
                Ok(Value::from(self.strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")))
            }
            "timestamp" => {
                let () = from_args(args)?;
                Ok(Value::from(self.0.timestamp_micros() as f64 / 1e6))
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }

    /// Python's `str()`: without the fraction when it is zero.
    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::project::python_str(self.0))
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

    #[test]
    fn datetimes_format_as_python() {
        use chrono::TimeZone;
        let t = chrono::Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap()
            + chrono::Duration::microseconds(123456);
        let d = DateTimeObj(t);
        assert_eq!(
            d.strftime("%Y-%m-%d %H:%M:%S.%f"),
            "2026-01-02 03:04:05.123456"
        );
        assert_eq!(d.strftime("%Y%m%d"), "20260102");
    }
}
