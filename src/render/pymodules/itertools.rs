//! `modules.itertools`: the functions dbt exports (`product`, `chain`,
//! `combinations`, `combinations_with_replacement`, `permutations`, `islice`,
//! `accumulate`, `compress`, `repeat`, `starmap`, `zip_longest`, `tee`), each
//! answering a list where Python answers an iterator (templates only loop over
//! them), with dbt's deprecation warning on first use. The infinite ones
//! (`count`, `cycle`, `repeat` without a count) are refused.

use std::sync::{Arc, Once};

use minijinja::value::{Kwargs, Object};
use minijinja::{Error, State, Value};

use super::{bind, int_arg, py_error, unsupported};

/// `modules.itertools`.
#[derive(Debug)]
struct Module;

pub(super) fn module() -> Value {
    Value::from_object(Module)
}

fn items(v: &Value) -> Result<Vec<Value>, Error> {
    Ok(v.try_iter()?.collect())
}

/// The positional arguments (iterables) and the keyword arguments of a call.
fn split(args: &[Value]) -> Result<(Vec<Value>, Kwargs), Error> {
    let (pos, kw): (&[Value], Kwargs) = minijinja::value::from_args(args)?;
    Ok((pos.to_vec(), kw))
}

fn tuple(v: Vec<Value>) -> Value {
    Value::from(v)
}

/// Every `r`-length selection of indices `0..n`, in Python's order.
fn index_tuples(n: usize, r: usize, kind: &str) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    let mut cur = Vec::with_capacity(r);
    fn walk(n: usize, r: usize, kind: &str, cur: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
        if cur.len() == r {
            out.push(cur.clone());
            return;
        }
        let start = match (kind, cur.last()) {
            ("combinations", Some(&l)) => l + 1,
            ("combinations_with_replacement", Some(&l)) => l,
            _ => 0,
        };
        for i in start..n {
            if kind == "permutations" && cur.contains(&i) {
                continue;
            }
            cur.push(i);
            walk(n, r, kind, cur, out);
            cur.pop();
        }
    }
    walk(n, r, kind, &mut cur, &mut out);
    out
}

/// A guard against templates asking for huge results.
const MAX_ITEMS: usize = 1_000_000;

fn too_many(func: &str) -> Error {
    py_error(
        "OverflowError",
        format!("itertools.{func}() would make more than {MAX_ITEMS} items"),
    )
}

impl Object for Module {
    fn repr(self: &Arc<Self>) -> minijinja::value::ObjectRepr {
        minijinja::value::ObjectRepr::Plain
    }

    fn call_method(
        self: &Arc<Self>,
        state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        static WARNED: Once = Once::new();
        let known = [
            "product",
            "chain",
            "combinations",
            "combinations_with_replacement",
            "permutations",
            "islice",
            "accumulate",
            "compress",
            "repeat",
            "starmap",
            "zip_longest",
            "tee",
            "count",
            "cycle",
        ];
        if !known.contains(&method) {
            return Err(unsupported(&format!("modules.itertools.{method}")));
        }
        WARNED.call_once(|| {
            crate::console::template_message(
                crate::console::Level::Warn,
                "[WARNING]: Deprecated functionality\nUsage of itertools modules is deprecated. Please use the built-in functions instead.",
            )
        });
        let list = |v: Vec<Value>| Ok(Value::from(v));
        match method {
            "product" => {
                let (its, kw) = split(args)?;
                let repeat: i64 = kw.get::<Option<i64>>("repeat")?.unwrap_or(1);
                kw.assert_all_used()?;
                let mut pools = Vec::new();
                for _ in 0..repeat.max(0) {
                    for it in &its {
                        pools.push(items(it)?);
                    }
                }
                let total = pools
                    .iter()
                    .try_fold(1usize, |acc, p| acc.checked_mul(p.len()));
                if total.is_none_or(|t| t > MAX_ITEMS) {
                    return Err(too_many("product"));
                }
                let mut out: Vec<Vec<Value>> = vec![vec![]];
                for pool in pools {
                    out = out
                        .into_iter()
                        .flat_map(|prefix| {
                            pool.iter().map(move |x| {
                                let mut t = prefix.clone();
                                t.push(x.clone());
                                t
                            })
                        })
                        .collect();
                }
                list(out.into_iter().map(tuple).collect())
            }
            "chain" => {
                let (its, kw) = split(args)?;
                kw.assert_all_used()?;
                let mut out = Vec::new();
                for it in its {
                    out.extend(items(&it)?);
                }
                list(out)
            }
            "combinations" | "combinations_with_replacement" | "permutations" => {
                let a = bind(method, &["iterable", "r"], args)?;
                let pool = items(a[0].as_ref().unwrap_or(&Value::UNDEFINED))?;
                let r = match &a[1] {
                    Some(v) if !v.is_none() => int_arg(method, "r", v)?,
                    _ if method == "permutations" => pool.len() as i64,
                    _ => {
                        return Err(py_error(
                            "TypeError",
                            format!("{method}() missing required argument 'r'"),
                        ))
                    }
                };
                if r < 0 {
                    return Err(py_error("ValueError", "r must be non-negative"));
                }
                if pool.len() > 20 || r > 20 {
                    return Err(too_many(method));
                }
                let r = r as usize;
                if method != "combinations_with_replacement" && r > pool.len() {
                    return list(vec![]);
                }
                list(
                    index_tuples(pool.len(), r, method)
                        .into_iter()
                        .map(|ix| tuple(ix.into_iter().map(|i| pool[i].clone()).collect()))
                        .collect(),
                )
            }
            "islice" => {
                let (pos, kw) = split(args)?;
                kw.assert_all_used()?;
                let opt = |v: Option<&Value>, name: &str| -> Result<Option<i64>, Error> {
                    match v {
                        Some(v) if !v.is_none() => Ok(Some(int_arg("islice", name, v)?)),
                        _ => Ok(None),
                    }
                };
                let (start, stop, step) = match pos.len() {
                    2 => (None, opt(pos.get(1), "stop")?, None),
                    3 | 4 => (
                        opt(pos.get(1), "start")?,
                        opt(pos.get(2), "stop")?,
                        opt(pos.get(3), "step")?,
                    ),
                    _ => return Err(py_error("TypeError", "islice expected 2 to 4 arguments")),
                };
                let (start, step) = (start.unwrap_or(0), step.unwrap_or(1));
                if start < 0 || stop.is_some_and(|s| s < 0) || step < 1 {
                    return Err(py_error(
                        "ValueError",
                        "Indices for islice() must be None or an integer: 0 <= x <= sys.maxsize.",
                    ));
                }
                let all = items(&pos[0])?;
                let end = stop.map_or(all.len(), |s| (s as usize).min(all.len()));
                list(
                    all.into_iter()
                        .take(end)
                        .skip(start as usize)
                        .step_by(step as usize)
                        .collect(),
                )
            }
            "accumulate" => {
                let a = bind(method, &["iterable", "func", "initial"], args)?;
                if a[1].as_ref().is_some_and(|f| !f.is_none()) {
                    return Err(unsupported("modules.itertools.accumulate with a function"));
                }
                let mut out = Vec::new();
                let mut acc: Option<Value> = a[2].clone().filter(|v| !v.is_none());
                if let Some(v) = &acc {
                    out.push(v.clone());
                }
                for x in items(a[0].as_ref().unwrap_or(&Value::UNDEFINED))? {
                    let next = match acc {
                        None => x,
                        Some(prev) => state.apply_filter("sum", &[Value::from(vec![prev, x])])?,
                    };
                    out.push(next.clone());
                    acc = Some(next);
                }
                list(out)
            }
            "compress" => {
                let a = bind(method, &["data", "selectors"], args)?;
                let data = items(a[0].as_ref().unwrap_or(&Value::UNDEFINED))?;
                let sel = items(a[1].as_ref().unwrap_or(&Value::UNDEFINED))?;
                list(
                    data.into_iter()
                        .zip(sel)
                        .filter(|(_, s)| s.is_true())
                        .map(|(d, _)| d)
                        .collect(),
                )
            }
            "repeat" => {
                let a = bind(method, &["object", "times"], args)?;
                let Some(times) = &a[1] else {
                    return Err(unsupported(
                        "modules.itertools.repeat without times (an endless iterator)",
                    ));
                };
                let n = int_arg("repeat", "times", times)?.max(0) as usize;
                if n > MAX_ITEMS {
                    return Err(too_many("repeat"));
                }
                list(vec![a[0].clone().unwrap_or(Value::from(())); n])
            }
            "starmap" => {
                let a = bind(method, &["function", "iterable"], args)?;
                let f = a[0].clone().unwrap_or(Value::UNDEFINED);
                let mut out = Vec::new();
                for x in items(a[1].as_ref().unwrap_or(&Value::UNDEFINED))? {
                    out.push(f.call(state, &items(&x)?)?);
                }
                list(out)
            }
            "zip_longest" => {
                let (its, kw) = split(args)?;
                let fill: Value = kw
                    .get::<Option<Value>>("fillvalue")?
                    .unwrap_or(Value::from(()));
                kw.assert_all_used()?;
                let cols = its.iter().map(items).collect::<Result<Vec<_>, _>>()?;
                let n = cols.iter().map(Vec::len).max().unwrap_or(0);
                list(
                    (0..n)
                        .map(|i| {
                            tuple(
                                cols.iter()
                                    .map(|c| c.get(i).cloned().unwrap_or(fill.clone()))
                                    .collect(),
                            )
                        })
                        .collect(),
                )
            }
            "tee" => {
                let a = bind(method, &["iterable", "n"], args)?;
                let all = items(a[0].as_ref().unwrap_or(&Value::UNDEFINED))?;
                let n = match &a[1] {
                    Some(v) => int_arg("tee", "n", v)?.max(0) as usize,
                    None => 2,
                };
                list(vec![Value::from(all); n])
            }
            _ => Err(unsupported(&format!(
                "modules.itertools.{method} (an endless iterator)"
            ))),
        }
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<module 'itertools'>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selections_come_in_pythons_order() {
        assert_eq!(
            index_tuples(3, 2, "combinations"),
            vec![vec![0, 1], vec![0, 2], vec![1, 2]]
        );
        assert_eq!(
            index_tuples(2, 2, "permutations"),
            vec![vec![0, 1], vec![1, 0]]
        );
        assert_eq!(
            index_tuples(2, 2, "combinations_with_replacement"),
            vec![vec![0, 0], vec![0, 1], vec![1, 1]]
        );
    }
}
