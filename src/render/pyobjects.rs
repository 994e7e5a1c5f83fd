//! dbt's context members that are Python objects or Python builtins: `flags`
//! (the invocation's flags, [`Flags`]), `builtins` (dbt's own `ref`, `source`
//! and `config`, for a project that overrides them with macros), `graph` (the
//! parsed project's nodes as dicts, [`GraphObj`]), `zip` and `zip_strict`, and
//! `toyaml` (PyYAML's `safe_dump` text).

use std::sync::{Arc, OnceLock};

use minijinja::value::{Kwargs, Object, ObjectRepr, Tuple, ValueKind};
use minijinja::{Error, ErrorKind, State, Value};
use serde_json::Value as Json;

/// The flags of the running command, as dbt's `flags` object shows them to
/// templates (`flags.WHICH`, `flags.FULL_REFRESH`, …).
#[derive(Debug, Clone, Default)]
pub(crate) struct Flags {
    /// dbt's name of the command: `run`, `build`, `run-operation`, `list`, …
    pub(crate) which: &'static str,
    pub(crate) full_refresh: bool,
    pub(crate) store_failures: bool,
    /// `--empty`: `None` for a command without the option, as in dbt.
    pub(crate) empty: Option<bool>,
    /// `--warn-error`: `None` when not given, as in dbt.
    pub(crate) warn_error: Option<bool>,
    pub(crate) fail_fast: bool,
}

static FLAGS: OnceLock<Flags> = OnceLock::new();

/// Sets the flags of this invocation (once, before the project is rendered).
pub(crate) fn set_flags(flags: Flags) {
    let _ = FLAGS.set(flags);
}

/// `flags`: the invocation's flags as attributes; a name dbt does not define
/// is undefined.
#[derive(Debug)]
pub(super) struct FlagsObj;

impl Object for FlagsObj {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let f = FLAGS.get_or_init(Flags::default);
        let opt = |b: Option<bool>| b.map_or(Value::from(()), Value::from);
        Some(match key.as_str()? {
            "WHICH" => Value::from(f.which),
            "FULL_REFRESH" => Value::from(f.full_refresh),
            "STORE_FAILURES" => Value::from(f.store_failures),
            "EMPTY" => opt(f.empty),
            "WARN_ERROR" => opt(f.warn_error),
            "FAIL_FAST" => Value::from(f.fail_fast),
            // What is fixed for this tool: dbt's defaults.
            "DEBUG" | "QUIET" | "CACHE_SELECTED_ONLY" => Value::from(false),
            "INTROSPECT" | "PARTIAL_PARSE" | "STATIC_PARSER" | "WRITE_JSON" | "USE_COLORS" => {
                Value::from(true)
            }
            "LOG_FORMAT" => Value::from("default"),
            "INDIRECT_SELECTION" => Value::from("eager"),
            "PRINTER_WIDTH" => Value::from(80),
            _ => return None,
        })
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Namespace()")
    }
}

/// `graph`: dbt's flat graph, the parsed project's `nodes`, `sources`,
/// `exposures`, `metrics`, `groups`, `semantic_models` and `saved_queries` as
/// manifest.json has them. Empty while the project is parsed (dbt builds it
/// once parsing is done), so templates read it under `if execute`.
#[derive(Debug, Default)]
pub(super) struct GraphObj(pub(super) OnceLock<Value>);

/// The sections of manifest.json that make dbt's flat graph.
pub(super) const GRAPH_SECTIONS: &[&str] = &[
    "nodes",
    "sources",
    "exposures",
    "metrics",
    "groups",
    "semantic_models",
    "saved_queries",
];

impl Object for GraphObj {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let v = self.0.get()?.get_item(key).ok()?;
        (!v.is_undefined()).then_some(v)
    }

    fn enumerate(self: &Arc<Self>) -> minijinja::value::Enumerator {
        match self.0.get() {
            Some(_) => minijinja::value::Enumerator::Str(GRAPH_SECTIONS),
            None => minijinja::value::Enumerator::Empty,
        }
    }
}

/// `builtins`: dbt's own context functions by name (`builtins.ref('x')`,
/// `builtins.source('s', 't')`, `builtins.config(...)`), what a project that
/// defines a macro of the same name reaches.
#[derive(Debug)]
pub(super) struct Builtins;

/// The builtins `builtins` gives.
const BUILTINS: &[&str] = &["ref", "source", "config", "var", "env_var", "return"];

impl Object for Builtins {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn call_method(
        self: &Arc<Self>,
        state: &mut State<'_, '_>,
        name: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        if !BUILTINS.contains(&name) {
            return Err(Error::new(
                ErrorKind::UnknownMethod,
                format!("builtins has no member named {name}"),
            ));
        }
        let f = match name {
            // `config` is the render's own object (in the context).
            "config" => state.lookup("config"),
            _ => state
                .env()
                .globals()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v),
        }
        .ok_or_else(|| Error::new(ErrorKind::UnknownMethod, format!("builtins.{name}")))?;
        f.call(state, args)
    }
}

/// `zip(*iterables, default=None)`: the tuples of the i-th members, as long as
/// the shortest; `default` when an argument is not iterable.
pub(super) fn zip(args: minijinja::value::Rest<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let default: Option<Value> = kwargs.get("default")?;
    kwargs.assert_all_used()?;
    match zipped(&args) {
        Some(v) => Ok(v),
        None => Ok(default.unwrap_or(Value::from(()))),
    }
}

/// `zip_strict(*iterables)`: as `zip`, an error when an argument is not iterable.
pub(super) fn zip_strict(args: minijinja::value::Rest<Value>) -> Result<Value, Error> {
    zipped(&args).ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidOperation,
            "zip_strict(): an argument is not iterable",
        )
    })
}

fn zipped(args: &[Value]) -> Option<Value> {
    let mut columns = Vec::with_capacity(args.len());
    for a in args {
        let items: Vec<Value> = match a.kind() {
            ValueKind::String => a.as_str()?.chars().map(Value::from).collect(),
            ValueKind::Seq | ValueKind::Map | ValueKind::Iterable => a.try_iter().ok()?.collect(),
            _ => return None,
        };
        columns.push(items);
    }
    let n = columns.iter().map(Vec::len).min().unwrap_or(0);
    Some(Value::from(
        (0..n)
            .map(|i| {
                Value::from(Tuple::from(
                    columns.iter().map(|c| c[i].clone()).collect::<Vec<_>>(),
                ))
            })
            .collect::<Vec<_>>(),
    ))
}

/// `toyaml(value, default=None, sort_keys=False)`: PyYAML's
/// `safe_dump(value, sort_keys=sort_keys)`.
pub(super) fn toyaml(value: Value, kwargs: Kwargs) -> Result<Value, Error> {
    let default: Option<Value> = kwargs.get("default")?;
    let sort: bool = kwargs.get::<Option<bool>>("sort_keys")?.unwrap_or(false);
    kwargs.assert_all_used()?;
    match serde_json::to_value(&value) {
        Ok(json) => Ok(Value::from(safe_dump(&json, sort))),
        Err(_) => Ok(default.unwrap_or(Value::from(()))),
    }
}

/// The column PyYAML breaks plain and quoted scalars after.
const WIDTH: usize = 80;

/// PyYAML's `safe_dump` in its default style: block mappings and sequences
/// (a sequence in a mapping not indented), flow `{}`/`[]` when empty, scalars
/// plain unless they would read back as another type or another value.
fn safe_dump(v: &Json, sort: bool) -> String {
    let mut out = String::new();
    match v {
        Json::Object(m) if !m.is_empty() => block(&mut out, v, 0, sort),
        Json::Array(a) if !a.is_empty() => block(&mut out, v, 0, sort),
        Json::Object(_) => out.push_str("{}\n"),
        Json::Array(_) => out.push_str("[]\n"),
        scalar => {
            let (text, plain) = scalar_text(scalar, 0);
            out.push_str(&text);
            out.push('\n');
            // A document that is a plain scalar ends with PyYAML's marker.
            if plain {
                out.push_str("...\n");
            }
        }
    }
    out
}

/// A mapping or a sequence at `indent`, its first line starting where the
/// output is (after a `- ` or at a line start).
fn block(out: &mut String, v: &Json, indent: usize, sort: bool) {
    let pad = " ".repeat(indent);
    match v {
        Json::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            if sort {
                keys.sort();
            }
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(&pad);
                }
                let (key, _) = scalar_text(&Json::String(k.clone()), indent);
                out.push_str(&key);
                out.push(':');
                value_after(out, &m[k], indent, sort, true);
            }
        }
        Json::Array(a) => {
            for (i, item) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(&pad);
                }
                out.push('-');
                value_after(out, item, indent, sort, false);
            }
        }
        _ => {}
    }
}

/// What follows `key:` or `-`: a scalar or an empty collection on the same
/// line, a nested block on the next lines (a mapping's sequence at the
/// mapping's indent, as PyYAML writes it) or, after `-`, on the same line.
fn value_after(out: &mut String, v: &Json, indent: usize, sort: bool, in_map: bool) {
    match v {
        Json::Object(m) if !m.is_empty() => {
            if in_map {
                out.push('\n');
                out.push_str(&" ".repeat(indent + 2));
            } else {
                out.push(' ');
            }
            block(out, v, indent + 2, sort);
        }
        Json::Array(a) if !a.is_empty() => {
            if in_map {
                out.push('\n');
                out.push_str(&" ".repeat(indent));
                block(out, v, indent, sort);
            } else {
                out.push(' ');
                block(out, v, indent + 2, sort);
            }
        }
        Json::Object(_) => out.push_str(" {}\n"),
        Json::Array(_) => out.push_str(" []\n"),
        scalar => {
            let col = out.len() - out.rfind('\n').map_or(0, |i| i + 1) + 1;
            let (text, _) = scalar_text_at(scalar, indent + 2, col);
            out.push(' ');
            out.push_str(&text);
            out.push('\n');
        }
    }
}

fn scalar_text(v: &Json, indent: usize) -> (String, bool) {
    scalar_text_at(v, indent, 0)
}

/// A scalar as PyYAML writes it starting at column `col`, and whether it is
/// plain (unquoted).
fn scalar_text_at(v: &Json, indent: usize, col: usize) -> (String, bool) {
    match v {
        Json::Null => ("null".into(), true),
        Json::Bool(b) => (b.to_string(), true),
        Json::Number(n) => {
            if let Some(f) = n.as_f64().filter(|_| n.is_f64()) {
                (yaml_float(f), true)
            } else {
                (n.to_string(), true)
            }
        }
        Json::String(s) => string_text(s, indent, col),
        other => (other.to_string(), false),
    }
}

/// PyYAML's float: Python's `repr`, lower case, `.0` before an exponent
/// without a point; `.inf`, `-.inf`, `.nan`.
fn yaml_float(f: f64) -> String {
    if f.is_nan() {
        return ".nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { ".inf" } else { "-.inf" }.into();
    }
    let r = super::pystr::py_repr(&Json::from(f)).to_lowercase();
    if !r.contains('.') && r.contains('e') {
        r.replacen('e', ".0e", 1)
    } else {
        r
    }
}

/// Whether text written plain would read back as something else than this
/// string under YAML 1.1 (PyYAML's resolver): null, a boolean, a number, a
/// date, `=`, `<<`.
fn resolves_to_other_type(s: &str) -> bool {
    const WORDS: &[&str] = &[
        "", "~", "null", "Null", "NULL", "yes", "Yes", "YES", "no", "No", "NO", "true", "True",
        "TRUE", "false", "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF", "=", "<<",
        ".inf", ".Inf", ".INF", "-.inf", "+.inf", ".nan", ".NaN", ".NAN",
    ];
    if WORDS.contains(&s) {
        return true;
    }
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    let digits = |t: &str| !t.is_empty() && t.chars().all(|c| c.is_ascii_digit() || c == '_');
    // Integers (decimal, 0x, 0b, 0o-ish, sexagesimal) and floats.
    if digits(body)
        || body
            .strip_prefix("0x")
            .is_some_and(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit() || c == '_'))
        || body
            .strip_prefix("0b")
            .is_some_and(|b| !b.is_empty() && b.chars().all(|c| matches!(c, '0' | '1' | '_')))
    {
        return true;
    }
    if body.contains(':')
        && body
            .split(':')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
    {
        return true;
    }
    let mantissa = body.split(['e', 'E']).next().unwrap_or(body);
    let exp_ok = match body.find(['e', 'E']) {
        None => true,
        Some(i) => {
            // YAML 1.1's exponent has a sign.
            let e = &body[i + 1..];
            e.strip_prefix(['-', '+'])
                .is_some_and(|e| !e.is_empty() && e.chars().all(|c| c.is_ascii_digit()))
        }
    };
    if mantissa.contains('.')
        && exp_ok
        && mantissa
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.' || c == '_')
        && mantissa.chars().filter(|c| *c == '.').count() == 1
        && mantissa.chars().any(|c| c.is_ascii_digit())
    {
        return true;
    }
    // Dates and timestamps: YYYY-MM-DD…
    let b = s.as_bytes();
    b.len() >= 8
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && s[5..]
            .split(['-', ' ', 'T', 't', ':'])
            .next()
            .is_some_and(|m| !m.is_empty() && m.len() <= 2 && m.chars().all(|c| c.is_ascii_digit()))
}

/// A string scalar: plain when PyYAML's analysis allows it, single-quoted when
/// only the plain style is ruled out, double-quoted (escaped) when it holds
/// characters that are not printable ASCII.
fn string_text(s: &str, indent: usize, col: usize) -> (String, bool) {
    let printable = s.chars().all(|c| (' '..='~').contains(&c));
    if !printable {
        return (double_quoted(s), false);
    }
    let first = s.chars().next();
    let followed_by_space = |i: usize| s[i + 1..].chars().next().is_none_or(|c| c == ' ');
    let indicator_first = first.is_some_and(|c| "#,[]{}&*!|>'\"%@`".contains(c))
        || (first.is_some_and(|c| "-?:".contains(c)) && followed_by_space(0));
    let mut plain = !(resolves_to_other_type(s)
        || s.starts_with(' ')
        || s.ends_with(' ')
        || indicator_first
        || s.contains(" #"));
    if plain {
        for (i, c) in s.char_indices() {
            if c == ':' && followed_by_space(i) {
                plain = false;
                break;
            }
        }
    }
    let body = if plain {
        s.to_string()
    } else {
        s.replace('\'', "''")
    };
    let wrapped = wrap(&body, indent, col + usize::from(!plain));
    if plain {
        (wrapped, true)
    } else {
        (format!("'{wrapped}'"), false)
    }
}

/// PyYAML's line breaking of a scalar: a single space met past the width
/// becomes a line break and the indent.
fn wrap(text: &str, indent: usize, start_col: usize) -> String {
    let mut out = String::with_capacity(text.len());
    let mut col = start_col;
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let single_space =
            c == ' ' && i > 0 && chars[i - 1] != ' ' && chars.get(i + 1).is_some_and(|n| *n != ' ');
        if single_space && col > WIDTH {
            out.push('\n');
            out.push_str(&" ".repeat(indent.max(2)));
            col = indent.max(2);
            continue;
        }
        out.push(c);
        col += 1;
    }
    out
}

/// PyYAML's double-quoted style: its named escapes, else `\xXX`, `\uXXXX`.
fn double_quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\x0b' => out.push_str("\\v"),
            '\x0c' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            '\x1b' => out.push_str("\\e"),
            '\u{85}' => out.push_str("\\N"),
            '\u{a0}' => out.push_str("\\_"),
            '\u{2028}' => out.push_str("\\L"),
            '\u{2029}' => out.push_str("\\P"),
            ' '..='~' => out.push(c),
            c if (c as u32) <= 0xff => out.push_str(&format!("\\x{:02X}", c as u32)),
            c if (c as u32) <= 0xffff => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push_str(&format!("\\U{:08X}", c as u32)),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn yaml_as_pyyaml_dumps_it() {
        assert_eq!(
            safe_dump(
                &json!({"a": 1, "b": ["x", "y"], "c": {"d": null, "e": [{"f": 1.5, "g": true}]}, "h": [], "i": {}}),
                false
            ),
            "a: 1\nb:\n- x\n- y\nc:\n  d: null\n  e:\n  - f: 1.5\n    g: true\nh: []\ni: {}\n"
        );
        assert_eq!(safe_dump(&json!("abc"), false), "abc\n...\n");
        assert_eq!(safe_dump(&json!("123"), false), "'123'\n");
        assert_eq!(
            safe_dump(
                &json!(["yes", "", "a: b", "it's", "-x", "- x", "é", 1e-05]),
                false
            ),
            "- 'yes'\n- ''\n- 'a: b'\n- it's\n- -x\n- '- x'\n- \"\\xE9\"\n- 1.0e-05\n"
        );
        assert_eq!(
            safe_dump(&json!(["n", "on", "1_000", "0x1f", "12:30", "1.5e3", "a #b", "x:y", "#c", format!("{} {} c", "a".repeat(50), "b".repeat(40))]), false),
            format!("- n\n- 'on'\n- '1_000'\n- '0x1f'\n- '12:30'\n- 1.5e3\n- 'a #b'\n- x:y\n- '#c'\n- {} {}\n  c\n", "a".repeat(50), "b".repeat(40))
        );
        assert_eq!(safe_dump(&json!({"b": 1, "a": 2}), true), "a: 2\nb: 1\n");
        assert_eq!(
            safe_dump(&json!([[1, 2], [3]]), false),
            "- - 1\n  - 2\n- - 3\n"
        );
        assert_eq!(safe_dump(&json!("2024-01-01"), false), "'2024-01-01'\n");
    }

    #[test]
    fn zip_pairs_members() {
        let v = zipped(&[Value::from(vec![1, 2, 3]), Value::from(vec!["a", "b"])]).unwrap();
        assert_eq!(format!("{v:?}"), "[(1, 'a'), (2, 'b')]");
        assert!(zipped(&[Value::from(1)]).is_none());
    }
}
