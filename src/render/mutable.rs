//! Python's mutable lists and dicts in templates. dbt's Jinja is Python's: a macro
//! builds a column list with `{% set cols = [] %}{% do cols.append(c) %}` or a
//! mapping with `{% do d.update({...}) %}`, while minijinja's literals are
//! immutable. Owns the rewrite of a template's list and dict literals into
//! `([…]|__mutable)` (every other byte kept, so lines stay where they were) and the
//! shared, mutable [`List`] and [`Dict`] values the filter makes, with Python's
//! methods (`append`, `extend`, `insert`, `pop`, `remove`, `index`, `count`,
//! `reverse`, `update`, `setdefault`, `get`, `keys`, `values`, `items`, `copy`).

use std::sync::{Arc, Mutex};

use minijinja::value::{from_args, Enumerator, Object, ObjectRepr, ValueKind};
use minijinja::{Environment, Error, ErrorKind, State, Value};

/// The filter the rewrite applies to literals.
const FILTER: &str = "__mutable";

/// Registers the filter that turns a literal into a mutable value.
pub(super) fn register(env: &mut Environment<'_>) {
    env.add_filter(FILTER, |v: Value| -> Result<Value, Error> {
        Ok(match v.kind() {
            ValueKind::Seq => Value::from_object(List(Mutex::new(v.try_iter()?.collect()))),
            ValueKind::Map => {
                let mut pairs = Vec::new();
                for k in v.try_iter()? {
                    let item = v.get_item(&k)?;
                    pairs.push((k, item));
                }
                Value::from_object(Dict(Mutex::new(pairs)))
            }
            _ => v,
        })
    });
}

/// A Python list of `items` (what `split()` and `list.copy()` give).
pub(super) fn list(items: Vec<Value>) -> Value {
    Value::from_object(List(Mutex::new(items)))
}

/// A Python dict of `pairs`, in their order.
pub(super) fn dict(pairs: Vec<(Value, Value)>) -> Value {
    Value::from_object(Dict(Mutex::new(pairs)))
}

/// A value read from YAML or JSON (`fromjson`, `fromyaml`, `var()`) as Python
/// holds it: its lists and dicts, at every depth, mutable.
pub(super) fn from_json(j: &serde_json::Value) -> Value {
    match j {
        serde_json::Value::Array(items) => list(items.iter().map(from_json).collect()),
        serde_json::Value::Object(m) => dict(
            m.iter()
                .map(|(k, v)| (Value::from(k.as_str()), from_json(v)))
                .collect(),
        ),
        scalar => Value::from(minijinja::value::Serde(scalar)),
    }
}

/// Rewrites every list literal `[…]` and dict literal `{…}` inside `{{ }}` and
/// `{% %}` into `([…]|__mutable)`, leaving text, comments, strings, subscripts
/// (`x[0]`) and `{% raw %}` blocks alone.
pub(super) fn rewrite(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len() + 64);
    let mut i = 0;
    let mut copied = 0;
    while i < b.len() {
        // Outside code: look for the next tag.
        if b[i] == b'{' && i + 1 < b.len() && matches!(b[i + 1], b'{' | b'%' | b'#') {
            let kind = b[i + 1];
            if kind == b'#' {
                i = src[i..].find("#}").map_or(b.len(), |e| i + e + 2);
                continue;
            }
            let mut j = i + 2;
            let word = src[j..].trim_start_matches(['-', '+', ' ', '\t', '\r', '\n']);
            if kind == b'%'
                && word.starts_with("raw")
                && !word[3..].starts_with(|c: char| c.is_alphanumeric() || c == '_')
            {
                i = match src[i..].find("endraw") {
                    Some(e) => src[i + e..].find("%}").map_or(b.len(), |f| i + e + f + 2),
                    None => b.len(),
                };
                continue;
            }
            // Inside code until the matching `}}` / `%}` at depth 0.
            let close = if kind == b'{' { b'}' } else { b'%' };
            let mut stack: Vec<bool> = Vec::new(); // true: a literal we wrap
            let mut prev_value = false; // the previous token ends a value
            while j < b.len() {
                let c = b[j];
                if stack.is_empty() && c == close && j + 1 < b.len() && b[j + 1] == b'}' {
                    j += 2;
                    break;
                }
                match c {
                    b'\'' | b'"' => {
                        let mut k = j + 1;
                        while k < b.len() && b[k] != c {
                            k += if b[k] == b'\\' { 2 } else { 1 };
                        }
                        j = (k + 1).min(b.len());
                        prev_value = true;
                        continue;
                    }
                    b'[' | b'{' => {
                        let literal = c == b'{' || !prev_value;
                        if literal {
                            out.push_str(&src[copied..j]);
                            out.push('(');
                            copied = j;
                        }
                        stack.push(literal);
                        prev_value = false;
                    }
                    b']' | b'}' => {
                        if stack.pop() == Some(true) {
                            out.push_str(&src[copied..=j]);
                            out.push('|');
                            out.push_str(FILTER);
                            out.push(')');
                            copied = j + 1;
                        }
                        prev_value = true;
                    }
                    b'(' => {
                        stack.push(false);
                        prev_value = false;
                    }
                    b')' => {
                        stack.pop();
                        prev_value = true;
                    }
                    c if c.is_ascii_alphanumeric() || c == b'_' => {
                        let start = j;
                        while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                            j += 1;
                        }
                        let word = &src[start..j];
                        prev_value = !matches!(
                            word,
                            "in" | "and"
                                | "or"
                                | "not"
                                | "if"
                                | "else"
                                | "elif"
                                | "is"
                                | "return"
                                | "set"
                                | "do"
                                | "for"
                        );
                        continue;
                    }
                    c if c.is_ascii_whitespace() => {}
                    _ => prev_value = false,
                }
                j += 1;
            }
            i = j;
            continue;
        }
        i += 1;
    }
    out.push_str(&src[copied..]);
    out
}

/// A Python list: shared, so `append` is seen by every holder of it.
#[derive(Debug)]
struct List(Mutex<Vec<Value>>);

impl List {
    fn items(&self) -> Vec<Value> {
        self.0.lock().unwrap().clone()
    }
}

fn no_such(what: &str, name: &str) -> Error {
    Error::new(
        ErrorKind::UnknownMethod,
        format!("{what} has no method named {name}"),
    )
}

fn python_index(i: i64, len: usize) -> Option<usize> {
    let i = if i < 0 { i + len as i64 } else { i };
    (0..len as i64).contains(&i).then_some(i as usize)
}

impl Object for List {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let v = self.0.lock().unwrap();
        let i = python_index(key.as_i64()?, v.len())?;
        v.get(i).cloned()
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.items())
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(self.0.lock().unwrap().len())
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        name: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let mut v = self.0.lock().unwrap();
        match name {
            "append" => {
                let (x,): (Value,) = from_args(args)?;
                v.push(x);
            }
            "extend" => {
                let (xs,): (Value,) = from_args(args)?;
                v.extend(xs.try_iter()?);
            }
            "insert" => {
                let (at, x): (i64, Value) = from_args(args)?;
                let len = v.len() as i64;
                let at = if at < 0 {
                    (at + len).max(0)
                } else {
                    at.min(len)
                };
                v.insert(at as usize, x);
            }
            "pop" => {
                let (at,): (Option<i64>,) = from_args(args)?;
                let len = v.len();
                let Some(i) = python_index(at.unwrap_or(-1), len) else {
                    return Err(Error::new(
                        ErrorKind::InvalidOperation,
                        "pop index out of range",
                    ));
                };
                return Ok(v.remove(i));
            }
            "remove" => {
                let (x,): (Value,) = from_args(args)?;
                let Some(i) = v.iter().position(|y| *y == x) else {
                    return Err(Error::new(
                        ErrorKind::InvalidOperation,
                        "list.remove(x): x not in list",
                    ));
                };
                v.remove(i);
            }
            "index" => {
                let (x,): (Value,) = from_args(args)?;
                return match v.iter().position(|y| *y == x) {
                    Some(i) => Ok(Value::from(i)),
                    None => Err(Error::new(
                        ErrorKind::InvalidOperation,
                        format!("{x} is not in list"),
                    )),
                };
            }
            "count" => {
                let (x,): (Value,) = from_args(args)?;
                return Ok(Value::from(v.iter().filter(|y| **y == x).count()));
            }
            "reverse" => {
                let () = from_args(args)?;
                v.reverse();
            }
            "clear" => {
                let () = from_args(args)?;
                v.clear();
            }
            "copy" => {
                let () = from_args(args)?;
                return Ok(Value::from_object(List(Mutex::new(v.clone()))));
            }
            _ => return Err(no_such("list", name)),
        }
        Ok(Value::from(()))
    }
}

/// A Python dict, in insertion order.
#[derive(Debug)]
struct Dict(Mutex<Vec<(Value, Value)>>);

impl Dict {
    fn set(pairs: &mut Vec<(Value, Value)>, k: Value, x: Value) {
        match pairs.iter_mut().find(|(key, _)| *key == k) {
            Some(slot) => slot.1 = x,
            None => pairs.push((k, x)),
        }
    }
}

impl Object for Dict {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let d = self.0.lock().unwrap();
        d.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(
            self.0
                .lock()
                .unwrap()
                .iter()
                .map(|(k, _)| k.clone())
                .collect(),
        )
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(self.0.lock().unwrap().len())
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        name: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let mut d = self.0.lock().unwrap();
        match name {
            "update" => {
                let (other, kwargs): (Option<Value>, minijinja::value::Kwargs) = from_args(args)?;
                if let Some(other) = other {
                    for k in other.try_iter()? {
                        let x = other.get_item(&k)?;
                        Dict::set(&mut d, k, x);
                    }
                }
                for k in kwargs.args() {
                    let x: Value = kwargs.get(k)?;
                    Dict::set(&mut d, Value::from(k), x);
                }
                Ok(Value::from(()))
            }
            "pop" => {
                let (k, default): (Value, Option<Value>) = from_args(args)?;
                match d.iter().position(|(key, _)| *key == k) {
                    Some(i) => Ok(d.remove(i).1),
                    None => default.ok_or_else(|| {
                        Error::new(ErrorKind::InvalidOperation, format!("KeyError: {k}"))
                    }),
                }
            }
            "setdefault" => {
                let (k, default): (Value, Option<Value>) = from_args(args)?;
                if let Some((_, x)) = d.iter().find(|(key, _)| *key == k) {
                    return Ok(x.clone());
                }
                let x = default.unwrap_or(Value::from(()));
                d.push((k, x.clone()));
                Ok(x)
            }
            "get" => {
                let (k, default): (Value, Option<Value>) = from_args(args)?;
                Ok(d.iter()
                    .find(|(key, _)| *key == k)
                    .map(|(_, x)| x.clone())
                    .unwrap_or_else(|| default.unwrap_or(Value::from(()))))
            }
            "keys" => Ok(Value::from(
                d.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
            )),
            "values" => Ok(Value::from(
                d.iter().map(|(_, x)| x.clone()).collect::<Vec<_>>(),
            )),
            "items" => Ok(Value::from(
                d.iter()
                    .map(|(k, x)| Value::from(vec![k.clone(), x.clone()]))
                    .collect::<Vec<_>>(),
            )),
            "copy" => Ok(Value::from_object(Dict(Mutex::new(d.clone())))),
            "clear" => {
                d.clear();
                Ok(Value::from(()))
            }
            _ => Err(no_such("dict", name)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_literals_only() {
        assert_eq!(
            rewrite("a [b] {{ x[0] ~ [1, [2]] }}{% set d = {'k': []} %}{# [c] #}'[q]'"),
            "a [b] {{ x[0] ~ ([1, ([2]|__mutable)]|__mutable) }}{% set d = ({'k': ([]|__mutable)}|__mutable) %}{# [c] #}'[q]'"
        );
        assert_eq!(
            rewrite("{% for c in ['a'] if c not in ['b'] %}{{ '[x]' }}{% endfor %}"),
            "{% for c in (['a']|__mutable) if c not in (['b']|__mutable) %}{{ '[x]' }}{% endfor %}"
        );
        assert_eq!(
            rewrite("{% raw %}{{ [1] }}{% endraw %}"),
            "{% raw %}{{ [1] }}{% endraw %}"
        );
        assert_eq!(
            rewrite("{{ f(a)[0] }}{{ 'x'[0] }}"),
            "{{ f(a)[0] }}{{ 'x'[0] }}"
        );
    }

    #[test]
    fn lists_and_dicts_are_shared_and_mutable() {
        let mut env = Environment::new();
        register(&mut env);
        let src = rewrite(
            "{% set l = [] %}{% do l.append(1) %}{% do l.extend([2, 3]) %}{% set m = {'a': 1} %}{% do m.update({'b': 2}) %}{{ l }} {{ l | length }} {{ l[-1] }} {{ m.b }} {{ m | length }} {{ l.pop(0) }}{{ l }} {{ 2 in l }}",
        );
        env.add_template_owned("t", src).unwrap();
        let out = env.get_template("t").unwrap().render(()).unwrap();
        assert_eq!(out, "[1, 2, 3] 3 3 2 2 1[2, 3] True");
    }
}
