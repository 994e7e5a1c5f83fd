//! The Python methods dbt projects call on Jinja values that minijinja does not
//! have: `dict.items()`/`keys()`/`values()`/`get()`, a list's `index()`,
//! `count()` and `copy()` on lists that are not literals (a filter's result), and
//! the common `str` methods (a `split()` gives a mutable list, as Python's).

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
        (ValueKind::Map, "copy") => {
            let () = from_args(args)?;
            let mut pairs = Vec::new();
            for k in value.try_iter()? {
                let x = value.get_item(&k)?;
                pairs.push((k, x));
            }
            Ok(super::mutable::dict(pairs))
        }
        (ValueKind::Seq, "index" | "count" | "copy") => {
            let items: Vec<Value> = value.try_iter()?.collect();
            match method {
                "copy" => {
                    let () = from_args(args)?;
                    Ok(super::mutable::list(items))
                }
                "count" => {
                    let (x,): (Value,) = from_args(args)?;
                    Ok(Value::from(items.iter().filter(|y| **y == x).count()))
                }
                _ => {
                    let (x,): (Value,) = from_args(args)?;
                    items
                        .iter()
                        .position(|y| *y == x)
                        .map(Value::from)
                        .ok_or_else(|| {
                            Error::new(ErrorKind::InvalidOperation, format!("{x:?} is not in list"))
                        })
                }
            }
        }
        (ValueKind::String, _) => {
            let s = value.as_str().unwrap_or_default();
            // Python's `strip(chars)`: the characters given, else whitespace.
            let chars: Option<Vec<char>> = match method {
                "strip" | "lstrip" | "rstrip" => {
                    let (c,): (Option<String>,) = from_args(args)?;
                    c.map(|c| c.chars().collect())
                }
                _ => None,
            };
            let is_stripped = |c: char| match &chars {
                Some(set) => set.contains(&c),
                None => c.is_whitespace(),
            };
            match method {
                "upper" => Ok(Value::from(s.to_uppercase())),
                "lower" => Ok(Value::from(s.to_lowercase())),
                "strip" => Ok(Value::from(s.trim_matches(is_stripped))),
                "lstrip" => Ok(Value::from(s.trim_start_matches(is_stripped))),
                "rstrip" => Ok(Value::from(s.trim_end_matches(is_stripped))),
                "title" | "capitalize" | "swapcase" => {
                    let () = from_args(args)?;
                    Ok(Value::from(recase(s, method)))
                }
                "isdigit" | "isnumeric" | "isdecimal" | "isalpha" | "isalnum" | "isupper"
                | "islower" | "isspace" => {
                    let () = from_args(args)?;
                    Ok(Value::from(is_class(s, method)))
                }
                "count" => {
                    let (sub,): (String,) = from_args(args)?;
                    Ok(Value::from(if sub.is_empty() {
                        s.chars().count() + 1
                    } else {
                        s.matches(sub.as_str()).count()
                    }))
                }
                "find" | "index" | "rfind" | "rindex" => {
                    let (sub,): (String,) = from_args(args)?;
                    let at = if method.starts_with('r') {
                        s.rfind(sub.as_str())
                    } else {
                        s.find(sub.as_str())
                    };
                    match at {
                        Some(b) => Ok(Value::from(s[..b].chars().count())),
                        None if method.ends_with("find") => Ok(Value::from(-1)),
                        None => Err(Error::new(
                            ErrorKind::InvalidOperation,
                            "substring not found",
                        )),
                    }
                }
                "join" => {
                    let (items,): (Value,) = from_args(args)?;
                    let parts: Vec<String> = items
                        .try_iter()?
                        .map(|x| {
                            x.as_str()
                                .map(str::to_string)
                                .unwrap_or_else(|| x.to_string())
                        })
                        .collect();
                    Ok(Value::from(parts.join(s)))
                }
                "zfill" => {
                    let (width,): (usize,) = from_args(args)?;
                    let n = s.chars().count();
                    if n >= width {
                        return Ok(Value::from(s));
                    }
                    let (sign, rest) = match s.strip_prefix(['-', '+']) {
                        Some(r) => (&s[..1], r),
                        None => ("", s),
                    };
                    Ok(Value::from(format!(
                        "{sign}{}{rest}",
                        "0".repeat(width - n)
                    )))
                }
                "ljust" | "rjust" | "center" => {
                    let (width, fill): (usize, Option<String>) = from_args(args)?;
                    let fill = fill.and_then(|f| f.chars().next()).unwrap_or(' ');
                    let n = s.chars().count();
                    let extra = width.saturating_sub(n);
                    let (left, right) = match method {
                        "ljust" => (0, extra),
                        "rjust" => (extra, 0),
                        // Python's rounding of the odd column.
                        _ => {
                            let l = extra / 2 + (extra & width & 1);
                            (l, extra - l)
                        }
                    };
                    let pad = |k: usize| fill.to_string().repeat(k);
                    Ok(Value::from(format!("{}{s}{}", pad(left), pad(right))))
                }
                "partition" | "rpartition" => {
                    let (sep,): (String,) = from_args(args)?;
                    let at = if method == "partition" {
                        s.find(sep.as_str())
                    } else {
                        s.rfind(sep.as_str())
                    };
                    let parts = match at {
                        Some(i) => vec![&s[..i], sep.as_str(), &s[i + sep.len()..]],
                        None if method == "partition" => vec![s, "", ""],
                        None => vec!["", "", s],
                    };
                    Ok(Value::from(minijinja::value::Tuple::from(
                        parts.into_iter().map(Value::from).collect::<Vec<_>>(),
                    )))
                }
                "splitlines" => {
                    let () = from_args(args)?;
                    Ok(super::mutable::list(s.lines().map(Value::from).collect()))
                }
                "rsplit" => {
                    let (sep, max): (Option<String>, Option<i64>) = from_args(args)?;
                    let max = max.filter(|m| *m >= 0).map(|m| m as usize);
                    let mut parts: Vec<Value> = match (sep, max) {
                        (Some(sep), Some(m)) => {
                            s.rsplitn(m + 1, sep.as_str()).map(Value::from).collect()
                        }
                        (Some(sep), None) => s.rsplit(sep.as_str()).map(Value::from).collect(),
                        (None, _) => s.split_whitespace().rev().map(Value::from).collect(),
                    };
                    parts.reverse();
                    Ok(super::mutable::list(parts))
                }
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
                    let (sep, max): (Option<String>, Option<i64>) = from_args(args)?;
                    let max = max.filter(|m| *m >= 0).map(|m| m as usize);
                    let parts: Vec<Value> = match (sep, max) {
                        (Some(sep), Some(m)) => {
                            s.splitn(m + 1, sep.as_str()).map(Value::from).collect()
                        }
                        (Some(sep), None) => s.split(sep.as_str()).map(Value::from).collect(),
                        (None, _) => s.split_whitespace().map(Value::from).collect(),
                    };
                    Ok(super::mutable::list(parts))
                }
                _ => Err(Error::from(ErrorKind::UnknownMethod)),
            }
        }
        _ => Err(Error::from(ErrorKind::UnknownMethod)),
    }
}

/// Python's `title()`, `capitalize()` and `swapcase()` (ASCII and Unicode
/// letters; a letter after a non-letter starts a word).
fn recase(s: &str, how: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_letter = false;
    for (i, c) in s.chars().enumerate() {
        let up = match how {
            "title" => !prev_letter,
            "capitalize" => i == 0,
            _ => c.is_lowercase(),
        };
        if up {
            out.extend(c.to_uppercase());
        } else {
            out.extend(c.to_lowercase());
        }
        prev_letter = c.is_alphabetic();
    }
    out
}

/// Python's `str.isdigit()` and its siblings: false for the empty string.
fn is_class(s: &str, how: &str) -> bool {
    let cased = || s.chars().any(char::is_alphabetic);
    !s.is_empty()
        && match how {
            "isdigit" | "isnumeric" | "isdecimal" => s.chars().all(|c| c.is_numeric()),
            "isalpha" => s.chars().all(char::is_alphabetic),
            "isalnum" => s.chars().all(char::is_alphanumeric),
            "isupper" => cased() && !s.chars().any(char::is_lowercase),
            "islower" => cased() && !s.chars().any(char::is_uppercase),
            _ => s.chars().all(char::is_whitespace),
        }
}
