//! `modules.re`: Python's regular expressions in templates — `match`, `search`,
//! `fullmatch`, `sub`/`subn`, `findall`, `finditer`, `split`, `compile`,
//! `escape`, the flags (`I`/`IGNORECASE`, `M`, `S`, `X`, `A`, `U`), compiled
//! patterns and match objects (`group`, `groups`, `groupdict`, `start`, `end`,
//! `span`). Patterns run on fancy-regex, whose syntax is Python's for what
//! templates use (look-around, back-references); Python's `\Z` and `(?P=name)`
//! are translated, and a pattern it cannot compile is an error naming it.
//! Positions are counted in characters, as Python's are.

use std::sync::Arc;

use fancy_regex::{Captures, Regex, RegexBuilder};
use minijinja::value::{from_args, Object};
use minijinja::{Error, State, Value};

use crate::project::py_str;

use super::{bind, int_arg, no_method, py_error, str_arg, unsupported_value};

const I: i64 = 2;
const M: i64 = 8;
const S: i64 = 16;
const U: i64 = 32;
const X: i64 = 64;
const A: i64 = 256;

/// Python's syntax where it differs from fancy-regex's.
fn translate(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('Z') => out.push_str("\\z"),
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push('\\'),
            }
        } else if c == '(' && pattern_rest_starts(&chars, "?P=") {
            // (?P=name) → \k<name>
            for _ in 0..3 {
                chars.next();
            }
            let name: String = chars.by_ref().take_while(|&c| c != ')').collect();
            out.push_str(&format!("\\k<{name}>"));
        } else {
            out.push(c);
        }
    }
    out
}

fn pattern_rest_starts(chars: &std::iter::Peekable<std::str::Chars<'_>>, prefix: &str) -> bool {
    chars.clone().take(prefix.len()).eq(prefix.chars())
}

/// A compiled pattern: the searching one, and the ones anchored for `match`
/// and `fullmatch`.
#[derive(Debug)]
struct Pattern {
    source: String,
    flags: i64,
    search: Regex,
    anchored: Regex,
    full: Regex,
}

fn compile(pattern: &str, flags: i64) -> Result<Arc<Pattern>, Error> {
    let p = translate(pattern);
    let build = |p: String| {
        let mut b = RegexBuilder::new(&p);
        b.case_insensitive(flags & I != 0)
            .multi_line(flags & M != 0)
            .dot_matches_new_line(flags & S != 0)
            .verbose_mode(flags & X != 0)
            .unicode_mode(flags & A == 0);
        b.build().map_err(|e| {
            py_error(
                "re.error",
                format!("pattern {} cannot be compiled here: {e}", py_str(pattern)),
            )
        })
    };
    Ok(Arc::new(Pattern {
        source: pattern.to_string(),
        flags,
        search: build(p.clone())?,
        anchored: build(format!("\\A(?:{p})"))?,
        full: build(format!("\\A(?:{p})\\z"))?,
    }))
}

fn regex_error(e: fancy_regex::Error) -> Error {
    py_error("re.error", e)
}

/// Character position of a byte offset.
fn char_pos(text: &str, byte: usize) -> usize {
    text[..byte].chars().count()
}

/// A match: the text and each group's byte range.
#[derive(Debug)]
struct PyMatch {
    text: Arc<str>,
    groups: Vec<Option<(usize, usize)>>,
    names: Vec<Option<String>>,
}

impl PyMatch {
    fn new(text: &Arc<str>, caps: &Captures<'_, str>, names: Vec<Option<String>>) -> PyMatch {
        PyMatch {
            text: text.clone(),
            groups: (0..caps.len())
                .map(|i| caps.get(i).map(|m| (m.start(), m.end())))
                .collect(),
            names,
        }
    }

    fn group_text(&self, i: usize) -> Option<&str> {
        self.groups
            .get(i)
            .copied()
            .flatten()
            .map(|(s, e)| &self.text[s..e])
    }

    fn index(&self, g: &Value) -> Result<usize, Error> {
        if let Some(name) = g.as_str() {
            return self
                .names
                .iter()
                .position(|n| n.as_deref() == Some(name))
                .ok_or_else(|| py_error("IndexError", "no such group"));
        }
        let i = int_arg("group", "group", g)?;
        if i < 0 || i as usize >= self.groups.len() {
            return Err(py_error("IndexError", "no such group"));
        }
        Ok(i as usize)
    }

    fn group_value(&self, i: usize, default: &Value) -> Value {
        match self.group_text(i) {
            Some(t) => Value::from(t),
            None => default.clone(),
        }
    }

    fn span(&self, i: usize) -> (i64, i64) {
        match self.groups[i] {
            Some((s, e)) => (
                char_pos(&self.text, s) as i64,
                char_pos(&self.text, e) as i64,
            ),
            None => (-1, -1),
        }
    }
}

impl Object for PyMatch {
    fn repr(self: &Arc<Self>) -> minijinja::value::ObjectRepr {
        minijinja::value::ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "string" => Some(Value::from(&*self.text)),
            "lastindex" => Some(
                (1..self.groups.len())
                    .rev()
                    .find(|&i| self.groups[i].is_some())
                    .map_or(Value::from(()), Value::from),
            ),
            _ => None,
        }
    }

    fn call_method(
        self: &Arc<Self>,
        _: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "group" => {
                let none = Value::from(());
                match args {
                    [] => Ok(self.group_value(0, &none)),
                    [g] => Ok(self.group_value(self.index(g)?, &none)),
                    gs => {
                        let mut out = Vec::new();
                        for g in gs {
                            out.push(self.group_value(self.index(g)?, &none));
                        }
                        Ok(Value::from(out))
                    }
                }
            }
            "groups" => {
                let a = bind("groups", &["default"], args)?;
                let default = a[0].clone().unwrap_or(Value::from(()));
                Ok(Value::from(
                    (1..self.groups.len())
                        .map(|i| self.group_value(i, &default))
                        .collect::<Vec<_>>(),
                ))
            }
            "groupdict" => {
                let a = bind("groupdict", &["default"], args)?;
                let default = a[0].clone().unwrap_or(Value::from(()));
                let pairs = self.names.iter().enumerate().filter_map(|(i, n)| {
                    n.as_ref()
                        .map(|n| (n.clone(), self.group_value(i, &default)))
                });
                Ok(Value::from(
                    pairs.collect::<std::collections::BTreeMap<_, _>>(),
                ))
            }
            "start" | "end" | "span" => {
                let a = bind(method, &["group"], args)?;
                let i = match &a[0] {
                    Some(g) => self.index(g)?,
                    None => 0,
                };
                let (s, e) = self.span(i);
                Ok(match method {
                    "start" => Value::from(s),
                    "end" => Value::from(e),
                    _ => Value::from(vec![s, e]),
                })
            }
            _ => Err(no_method("re.Match", method)),
        }
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (s, e) = self.span(0);
        write!(
            f,
            "<re.Match object; span=({s}, {e}), match={}>",
            py_str(self.group_text(0).unwrap_or(""))
        )
    }
}

impl Pattern {
    fn names(&self) -> Vec<Option<String>> {
        self.search
            .capture_names()
            .map(|n| n.map(str::to_string))
            .collect()
    }

    fn one(&self, re: &Regex, text: &str) -> Result<Value, Error> {
        let text: Arc<str> = Arc::from(text);
        match re.captures(&*text).map_err(regex_error)? {
            Some(c) => Ok(Value::from_object(PyMatch::new(&text, &c, self.names()))),
            None => Ok(Value::from(())),
        }
    }

    /// Every match, left to right, as Python's `finditer`.
    fn all(&self, text: &Arc<str>) -> Result<Vec<PyMatch>, Error> {
        let names = self.names();
        let mut out = Vec::new();
        for c in self.search.captures_iter(&**text) {
            let c = c.map_err(regex_error)?;
            out.push(PyMatch::new(text, &c, names.clone()));
        }
        Ok(out)
    }

    fn findall(&self, text: &str) -> Result<Value, Error> {
        let text: Arc<str> = Arc::from(text);
        let n = self.search.captures_len();
        let items = self.all(&text)?.into_iter().map(|m| {
            let g = |i: usize| Value::from(m.group_text(i).unwrap_or(""));
            match n {
                1 => g(0),
                2 => g(1),
                _ => Value::from((1..n).map(g).collect::<Vec<_>>()),
            }
        });
        Ok(Value::from(items.collect::<Vec<_>>()))
    }

    fn split(&self, text: &str, maxsplit: i64) -> Result<Value, Error> {
        let text: Arc<str> = Arc::from(text);
        let mut out = Vec::new();
        let mut last = 0;
        for (k, m) in self.all(&text)?.into_iter().enumerate() {
            if maxsplit > 0 && k as i64 >= maxsplit {
                break;
            }
            let (s, e) = m.groups[0].unwrap_or((0, 0));
            out.push(Value::from(&text[last..s]));
            for i in 1..m.groups.len() {
                out.push(m.group_text(i).map_or(Value::from(()), Value::from));
            }
            last = e;
        }
        out.push(Value::from(&text[last..]));
        Ok(Value::from(out))
    }

    fn sub(&self, repl: &str, text: &str, count: i64) -> Result<(String, i64), Error> {
        let text: Arc<str> = Arc::from(text);
        let mut out = String::new();
        let mut last = 0;
        let mut n = 0;
        for m in self.all(&text)? {
            if count > 0 && n >= count {
                break;
            }
            let (s, e) = m.groups[0].unwrap_or((0, 0));
            out.push_str(&text[last..s]);
            expand(repl, &m, &mut out)?;
            last = e;
            n += 1;
        }
        out.push_str(&text[last..]);
        Ok((out, n))
    }

    /// The methods of a pattern; `func` names the module function for messages.
    fn call(&self, method: &str, args: &[Value]) -> Result<Value, Error> {
        let s = |v: &Option<Value>, name: &str| {
            str_arg(method, name, v.as_ref().unwrap_or(&Value::UNDEFINED))
        };
        let n = |v: &Option<Value>, name: &str| match v {
            Some(v) => int_arg(method, name, v),
            None => Ok(0),
        };
        match method {
            "match" | "search" | "fullmatch" => {
                let a = bind(method, &["string"], args)?;
                let text = s(&a[0], "string")?;
                let re = match method {
                    "match" => &self.anchored,
                    "search" => &self.search,
                    _ => &self.full,
                };
                self.one(re, &text)
            }
            "findall" => {
                let a = bind(method, &["string"], args)?;
                self.findall(&s(&a[0], "string")?)
            }
            "finditer" => {
                let a = bind(method, &["string"], args)?;
                let text: Arc<str> = Arc::from(s(&a[0], "string")?);
                Ok(Value::from(
                    self.all(&text)?
                        .into_iter()
                        .map(Value::from_object)
                        .collect::<Vec<_>>(),
                ))
            }
            "split" => {
                let a = bind(method, &["string", "maxsplit"], args)?;
                self.split(&s(&a[0], "string")?, n(&a[1], "maxsplit")?)
            }
            "sub" | "subn" => {
                let a = bind(method, &["repl", "string", "count"], args)?;
                if a[0].as_ref().is_some_and(|v| v.as_str().is_none()) {
                    return Err(super::unsupported("modules.re.sub with a function as repl"));
                }
                let (out, count) =
                    self.sub(&s(&a[0], "repl")?, &s(&a[1], "string")?, n(&a[2], "count")?)?;
                Ok(if method == "sub" {
                    Value::from(out)
                } else {
                    Value::from(vec![Value::from(out), Value::from(count)])
                })
            }
            _ => Err(no_method("re.Pattern", method)),
        }
    }
}

/// Python's replacement template: `\1`, `\g<1>`, `\g<name>` and the escapes.
fn expand(repl: &str, m: &PyMatch, out: &mut String) -> Result<(), Error> {
    let mut chars = repl.chars().peekable();
    let bad = |what: String| py_error("re.error", what);
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            None => return Err(bad("bad escape (end of pattern)".into())),
            Some(d) if d.is_ascii_digit() => {
                let mut num = d.to_string();
                if let Some(&e) = chars.peek() {
                    if e.is_ascii_digit() {
                        num.push(e);
                        chars.next();
                    }
                }
                let i: usize = num.parse().unwrap_or(0);
                if i >= m.groups.len() {
                    return Err(bad(format!("invalid group reference {i}")));
                }
                out.push_str(m.group_text(i).unwrap_or(""));
            }
            Some('g') => {
                if chars.next() != Some('<') {
                    return Err(bad("missing <".into()));
                }
                let name: String = chars.by_ref().take_while(|&c| c != '>').collect();
                let i = m.index(&match name.parse::<i64>() {
                    Ok(i) => Value::from(i),
                    Err(_) => Value::from(name.clone()),
                })?;
                out.push_str(m.group_text(i).unwrap_or(""));
            }
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\x0c'),
            Some('v') => out.push('\x0b'),
            Some('a') => out.push('\x07'),
            Some('\\') => out.push('\\'),
            Some(d) if d.is_ascii_alphabetic() => {
                return Err(bad(format!("bad escape \\{d}")));
            }
            Some(d) => {
                out.push('\\');
                out.push(d);
            }
        }
    }
    Ok(())
}

/// Python's `re.escape`: a backslash before every special character.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\t' | '\n' | '\x0b' | '\x0c' | '\r' | ' ' | '#' | '$' | '&' | '(' | ')' | '*'
            | '+' | '-' | '.' | '?' | '[' | '\\' | ']' | '^' | '{' | '|' | '}' | '~' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// A compiled pattern as a template value (`re.compile(...)`).
#[derive(Debug)]
struct PyPattern(Arc<Pattern>);

impl Object for PyPattern {
    fn repr(self: &Arc<Self>) -> minijinja::value::ObjectRepr {
        minijinja::value::ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "pattern" => Some(Value::from(self.0.source.clone())),
            "flags" => Some(Value::from(self.0.flags)),
            "groups" => Some(Value::from(self.0.search.captures_len() - 1)),
            _ => None,
        }
    }

    fn call_method(
        self: &Arc<Self>,
        _: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        self.0.call(method, args)
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "re.compile({})", py_str(&self.0.source))
    }
}

/// `modules.re`.
#[derive(Debug)]
struct Module;

pub(super) fn module() -> Value {
    Value::from_object(Module)
}

impl Object for Module {
    fn repr(self: &Arc<Self>) -> minijinja::value::ObjectRepr {
        minijinja::value::ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let name = key.as_str()?;
        Some(Value::from(match name {
            "I" | "IGNORECASE" => I,
            "L" | "LOCALE" => 4,
            "M" | "MULTILINE" => M,
            "S" | "DOTALL" => S,
            "U" | "UNICODE" => U,
            "X" | "VERBOSE" => X,
            "A" | "ASCII" => A,
            "NOFLAG" => 0,
            "purge" | "template" | "error" | "Pattern" | "Match" | "RegexFlag" => {
                return Some(unsupported_value(&format!("modules.re.{name}")))
            }
            _ => return None,
        }))
    }

    fn call_method(
        self: &Arc<Self>,
        _: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        // Module functions: the pattern first, `flags` last, the rest as the
        // pattern's method takes them.
        let params: &[&str] = match method {
            "match" | "search" | "fullmatch" | "findall" | "finditer" => {
                &["pattern", "string", "flags"]
            }
            "split" => &["pattern", "string", "maxsplit", "flags"],
            "sub" | "subn" => &["pattern", "repl", "string", "count", "flags"],
            "compile" => &["pattern", "flags"],
            "escape" => {
                let (s,): (Value,) = from_args(args)?;
                return Ok(Value::from(escape(&str_arg("escape", "pattern", &s)?)));
            }
            _ => return Err(super::unsupported(&format!("modules.re.{method}"))),
        };
        let a = bind(method, params, args)?;
        let pattern = match &a[0] {
            Some(v) if v.downcast_object_ref::<PyPattern>().is_some() => {
                v.downcast_object_ref::<PyPattern>().map(|p| p.0.clone())
            }
            _ => None,
        };
        let flags = match a.last().cloned().flatten() {
            Some(v) => int_arg(method, "flags", &v)?,
            None => 0,
        };
        let pattern = match pattern {
            Some(p) => p,
            None => compile(
                &str_arg(
                    method,
                    "pattern",
                    a[0].as_ref().unwrap_or(&Value::UNDEFINED),
                )?,
                flags,
            )?,
        };
        if method == "compile" {
            return Ok(Value::from_object(PyPattern(pattern)));
        }
        let rest: Vec<Value> = a[1..a.len() - 1].iter().map_while(|v| v.clone()).collect();
        pattern.call(method, &rest)
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<module 're'>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Arc<Pattern> {
        compile(s, 0).unwrap()
    }

    #[test]
    fn functions_behave_as_pythons() {
        let (out, n) = p("[ -]+").sub("_", "a b - c", 0).unwrap();
        assert_eq!((out.as_str(), n), ("a_b_c", 2));
        let (out, _) = p(r"(\w+)@(\w+)").sub(r"\2 at \g<1>", "me@host", 0).unwrap();
        assert_eq!(out, "host at me");
        assert_eq!(
            p(r"\d+").findall("a1b22c333").unwrap().to_string(),
            "['1', '22', '333']"
        );
        assert_eq!(
            p(r"(\w)=(\d)").findall("a=1 b=2").unwrap().to_string(),
            "[['a', '1'], ['b', '2']]"
        );
        assert_eq!(
            p(r"(,)").split("a,b", 0).unwrap().to_string(),
            "['a', ',', 'b']"
        );
        assert!(p("b").one(&p("b").anchored, "ab").unwrap().is_none());
        assert!(!p("b").one(&p("b").search, "ab").unwrap().is_none());
        // Look-around, which dbt-expectations' flag check uses.
        let re = p("^(?!.*--)[-imsU]*(?<!-)$");
        assert!(!re.one(&re.anchored, "im").unwrap().is_none());
        assert!(re.one(&re.anchored, "i--m").unwrap().is_none());
        assert_eq!(escape("a.b c"), r"a\.b\ c");
        assert!(compile("(unclosed", 0).is_err());
    }
}
