//! Python's `set` in templates, as dbt's context gives it: `set(iterable)`
//! (`none`, or the `default` given, when the value is not iterable) and
//! `set_strict(iterable)` (an error then), and the set value with Python's
//! methods: `add`, `update`, `remove`, `discard`, `pop`, `clear`, `copy`,
//! `union`, `intersection`, `difference`, `symmetric_difference`, `issubset`,
//! `issuperset`, `isdisjoint`. Membership (`x in s`), iteration, `|list`,
//! `|length` and `==` work as on any sequence; two sets are equal when they hold
//! the same members, in any order. `a - b` between two sets is their difference
//! (Python's other operators on a set are its `TypeError`).
//!
//! Python iterates a set in hash order; this one keeps its members sorted, one
//! of the orders Python may give (the one it gives for small integers).

use std::sync::{Arc, Mutex};

use minijinja::value::{from_args, Enumerator, Kwargs, Object, ObjectRepr, Rest, ValueKind};
use minijinja::{Error, ErrorKind, State, Value};

use super::pyops::{type_error, Op};

/// A Python set: shared and mutable, its members unique and kept sorted.
#[derive(Debug)]
pub(super) struct PySet(Mutex<Vec<Value>>);

impl PySet {
    /// A set of the members of `items`.
    pub(super) fn value(items: impl IntoIterator<Item = Value>) -> Value {
        let mut v: Vec<Value> = Vec::new();
        for x in items {
            insert(&mut v, x);
        }
        Value::from_object(PySet(Mutex::new(v)))
    }

    fn items(&self) -> Vec<Value> {
        self.0.lock().unwrap().clone()
    }
}

/// The Python type name of a set.
pub(super) fn type_name(v: &Value) -> Option<&'static str> {
    v.downcast_object_ref::<PySet>().map(|_| "set")
}

/// Python's `a op b` when an operand is a set: `set - set` is the difference;
/// `None` when neither is a set.
pub(super) fn arith(op: Op, a: &Value, b: Option<&Value>) -> Option<Result<Value, Error>> {
    let x = a.downcast_object_ref::<PySet>();
    let y = b.and_then(|b| b.downcast_object_ref::<PySet>());
    Some(match (op, x, y) {
        (_, None, None) => return None,
        (Op::Sub, Some(x), Some(y)) => {
            let theirs = y.items();
            Ok(PySet::value(
                x.items().into_iter().filter(|m| !theirs.contains(m)),
            ))
        }
        _ => Err(type_error(op, a, b)),
    })
}

fn insert(v: &mut Vec<Value>, x: Value) {
    if let Err(at) = v.binary_search(&x) {
        v.insert(at, x);
    }
}

/// The members of an argument of a set method: any iterable (a set, list,
/// string's characters, a dict's keys).
fn members(x: &Value) -> Result<Vec<Value>, Error> {
    if x.kind() == ValueKind::String {
        return Ok(x
            .as_str()
            .unwrap_or_default()
            .chars()
            .map(Value::from)
            .collect());
    }
    Ok(x.try_iter()?.collect())
}

/// `set(value, default=None)`: a set of the value's members, or `default` when
/// it is not iterable (Python's `TypeError`).
pub(super) fn set(args: Rest<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let default: Option<Value> = kwargs.get("default")?;
    kwargs.assert_all_used()?;
    let value = match args.as_slice() {
        [] => return Ok(PySet::value([])),
        [value] => value.clone(),
        _ => {
            return Err(Error::new(
                ErrorKind::TooManyArguments,
                "set() takes one iterable",
            ))
        }
    };
    Ok(match iterable(&value) {
        Some(items) => PySet::value(items),
        None => default.unwrap_or(Value::from(())),
    })
}

/// `set_strict(value)`: as `set`, but a value that is not iterable is an error.
pub(super) fn set_strict(value: Value) -> Result<Value, Error> {
    match iterable(&value) {
        Some(items) => Ok(PySet::value(items)),
        None => Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("set_strict(): '{value}' is not iterable"),
        )),
    }
}

fn iterable(value: &Value) -> Option<Vec<Value>> {
    match value.kind() {
        ValueKind::Seq | ValueKind::Map | ValueKind::Iterable | ValueKind::String => {
            members(value).ok()
        }
        _ => None,
    }
}

impl Object for PySet {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, _key: &Value) -> Option<Value> {
        // Python's sets are not subscriptable.
        None
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.items())
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(self.0.lock().unwrap().len())
    }

    fn is_true(self: &Arc<Self>) -> bool {
        !self.0.lock().unwrap().is_empty()
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        name: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        // Methods taking other iterables.
        let others = |args: &[Value]| -> Result<Vec<Vec<Value>>, Error> {
            args.iter().map(members).collect()
        };
        let mine = self.items();
        match name {
            "add" => {
                let (x,): (Value,) = from_args(args)?;
                insert(&mut self.0.lock().unwrap(), x);
            }
            "update" => {
                let others = others(args)?;
                let mut v = self.0.lock().unwrap();
                for x in others.into_iter().flatten() {
                    insert(&mut v, x);
                }
            }
            "remove" | "discard" => {
                let (x,): (Value,) = from_args(args)?;
                let mut v = self.0.lock().unwrap();
                match v.binary_search(&x) {
                    Ok(at) => {
                        v.remove(at);
                    }
                    Err(_) if name == "remove" => {
                        return Err(Error::new(
                            ErrorKind::InvalidOperation,
                            format!("KeyError: {x}"),
                        ))
                    }
                    Err(_) => {}
                }
            }
            "pop" => {
                let () = from_args(args)?;
                let mut v = self.0.lock().unwrap();
                if v.is_empty() {
                    return Err(Error::new(
                        ErrorKind::InvalidOperation,
                        "KeyError: 'pop from an empty set'",
                    ));
                }
                return Ok(v.remove(0));
            }
            "clear" => {
                let () = from_args(args)?;
                self.0.lock().unwrap().clear();
            }
            "copy" => {
                let () = from_args(args)?;
                return Ok(PySet::value(mine));
            }
            "union" => {
                let others = others(args)?;
                return Ok(PySet::value(
                    mine.into_iter().chain(others.into_iter().flatten()),
                ));
            }
            "intersection" => {
                let others = others(args)?;
                return Ok(PySet::value(
                    mine.into_iter()
                        .filter(|x| others.iter().all(|o| o.contains(x))),
                ));
            }
            "difference" => {
                let others = others(args)?;
                return Ok(PySet::value(
                    mine.into_iter()
                        .filter(|x| !others.iter().any(|o| o.contains(x))),
                ));
            }
            "symmetric_difference" => {
                let (other,): (Value,) = from_args(args)?;
                let other = members(&other)?;
                let only_mine = mine.iter().filter(|x| !other.contains(x)).cloned();
                let only_other = other.iter().filter(|x| !mine.contains(x)).cloned();
                return Ok(PySet::value(
                    only_mine.chain(only_other).collect::<Vec<_>>(),
                ));
            }
            "issubset" | "issuperset" | "isdisjoint" => {
                let (other,): (Value,) = from_args(args)?;
                let other = members(&other)?;
                return Ok(Value::from(match name {
                    "issubset" => mine.iter().all(|x| other.contains(x)),
                    "issuperset" => other.iter().all(|x| mine.contains(x)),
                    _ => !mine.iter().any(|x| other.contains(x)),
                }));
            }
            _ => {
                return Err(Error::new(
                    ErrorKind::UnknownMethod,
                    format!("set has no method named {name}"),
                ))
            }
        }
        Ok(Value::from(()))
    }

    /// Python's `str()`: `{1, 'a'}`, and `set()` when empty.
    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = self.items();
        if v.is_empty() {
            return f.write_str("set()");
        }
        let parts: Vec<String> = v.iter().map(|x| format!("{x:?}")).collect();
        write!(f, "{{{}}}", parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(src: &str) -> String {
        let mut env = minijinja::Environment::new();
        env.add_function("set", set);
        env.add_function("set_strict", set_strict);
        super::super::mutable::register(&mut env);
        env.add_template_owned("t", super::super::mutable::rewrite(src))
            .unwrap();
        env.get_template("t").unwrap().render(()).unwrap()
    }

    #[test]
    fn sets_behave_as_python_sets() {
        assert_eq!(
            render("{% set s = set(['b', 'a', 'b']) %}{{ s | list }} {{ s | length }} {{ 'a' in s }} {{ 'c' in s }}"),
            "['a', 'b'] 2 True False"
        );
        assert_eq!(
            render("{% set s = set([3, 1]) %}{% do s.add(2) %}{% do s.update([1, 5], [4]) %}{{ s }} {{ set() }} {{ set([]) | list }}"),
            "{1, 2, 3, 4, 5} set() []"
        );
        assert_eq!(
            render("{{ set(['a', 'b']) == set(['b', 'a']) }} {{ set(['a']) != set(['a', 'b']) }} {{ set(['a', 'b']).difference(['b']) | list }} {{ set([1, 2]).union([3]) | list }} {{ set([1, 2]).intersection([2, 3]) | list }}"),
            "True True ['a'] [1, 2, 3] [2]"
        );
        assert_eq!(
            render("{{ set(none) }} {{ set(1, default='x') }} {{ set([1]).issubset([1, 2]) }} {{ set([1, 2]).symmetric_difference([2, 3]) | list }}"),
            "None x True [1, 3]"
        );
        assert_eq!(
            render("{% set s = set([1, 2]) %}{% do s.discard(9) %}{% do s.remove(1) %}{{ s }}{% if set([]) %}x{% endif %}"),
            "{2}"
        );
    }
}
