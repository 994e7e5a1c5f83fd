//! A query's rows as `dbt show` prints them. dbt reads rows through psycopg2
//! into Python values, types each column as agate's type tester does (integers,
//! numbers, dates, date-times, booleans, else text), then prints agate's text
//! table (`print_table`: six columns at most, values cut at 20 characters,
//! numbers grouped and rounded half-even to at most three decimals) or its
//! JSON (`to_json`, re-indented). [`Preview::from_text`] turns the text
//! PostgreSQL sends for each column type into those values; [`Preview::table`]
//! and [`Preview::json`] print them.

use std::fmt::Write as _;

use crate::render::{json_str, py_float};

/// A value as psycopg2 hands it to agate.
#[derive(Debug, Clone, PartialEq)]
enum Py {
    None,
    /// A Python `int`, as its digits.
    Int(String),
    /// A `Decimal` (numeric), or a float (agate reads a float as the Decimal of
    /// its repr).
    Dec(Decimal),
    Bool(bool),
    /// A `date`, as `str()` prints it.
    Date(String),
    /// A `datetime` (naive or aware), as `str()` prints it.
    DateTime(String),
    /// Anything else, as its `str()`: text, times, intervals, JSON documents
    /// and arrays (dumped as JSON).
    Str(String),
}

/// agate's type of a column, as dbt's type tester picks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Agate {
    Integer,
    Number,
    Date,
    DateTime,
    Boolean,
    Text,
}

/// The rows of a query, typed as dbt types them.
#[derive(Debug)]
pub(crate) struct Preview {
    names: Vec<String>,
    types: Vec<Agate>,
    rows: Vec<Vec<Py>>,
}

impl Preview {
    /// From the columns (name and PostgreSQL type name) and the rows as the text
    /// PostgreSQL sends (session `DateStyle` ISO, `IntervalStyle` postgres).
    pub(crate) fn from_text(columns: &[(String, String)], rows: &[Vec<Option<String>>]) -> Self {
        let rows: Vec<Vec<Py>> = rows
            .iter()
            .map(|row| {
                columns
                    .iter()
                    .zip(row)
                    .map(|((_, ty), v)| match v {
                        None => Py::None,
                        Some(t) => python_value(ty, t),
                    })
                    .collect()
            })
            .collect();
        let types = (0..columns.len())
            .map(|i| agate_type(rows.iter().map(|r| &r[i])))
            .collect();
        Preview {
            names: columns.iter().map(|(n, _)| n.clone()).collect(),
            types,
            rows,
        }
    }

    /// agate's `print_table(max_rows=None)`: a Markdown-like table, one line
    /// per row, each line ending in a newline.
    pub(crate) fn table(&self) -> String {
        const MAX_COLUMNS: usize = 6;
        const MAX_WIDTH: usize = 20;
        const MAX_PRECISION: usize = 3;
        let cut = |s: &str| -> String {
            if s.chars().count() > MAX_WIDTH {
                let head: String = s.chars().take(MAX_WIDTH - 3).collect();
                format!("{head}...")
            } else {
                s.to_string()
            }
        };
        let truncated = self.names.len() > MAX_COLUMNS;
        let shown = self.names.len().min(MAX_COLUMNS);
        let mut header: Vec<String> = self.names[..shown].iter().map(|n| cut(n)).collect();
        if truncated {
            header.push("...".into());
        }
        let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
        // Decimal places of each number column: the most any value has, at most
        // three (then every value gets agate's ellipsis).
        let places: Vec<Option<(usize, bool)>> = (0..shown)
            .map(|j| {
                (self.types[j] == Agate::Number).then(|| {
                    let p = max_places(self.rows.iter().map(|r| &r[j]));
                    (p.min(MAX_PRECISION), p > MAX_PRECISION)
                })
            })
            .collect();
        let body: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|row| {
                let mut cells: Vec<String> = (0..shown)
                    .map(|j| {
                        let v = match (&row[j], places[j]) {
                            (Py::None, _) => String::new(),
                            (v, Some((p, ellipsis))) => match v {
                                Py::Dec(d) => d.format(p, ellipsis),
                                Py::Int(i) => Decimal::parse(i)
                                    .map(|d| d.format(p, ellipsis))
                                    .unwrap_or_else(|| i.clone()),
                                other => display(other),
                            },
                            (v, None) => display(v),
                        };
                        cut(&v)
                    })
                    .collect();
                if truncated {
                    cells.push("...".into());
                }
                cells
            })
            .collect();
        for cells in &body {
            for (w, c) in widths.iter_mut().zip(cells) {
                *w = (*w).max(c.chars().count());
            }
        }
        let mut out = String::new();
        self.write_row(&mut out, &header, &widths);
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        let _ = writeln!(out, "| {} |", rule.join(" | "));
        for cells in &body {
            self.write_row(&mut out, cells, &widths);
        }
        out
    }

    /// One line of the table: text left-justified, every other type
    /// right-justified (the `...` column takes the seventh column's type).
    fn write_row(&self, out: &mut String, cells: &[String], widths: &[usize]) {
        out.push('|');
        for (j, c) in cells.iter().enumerate() {
            let pad = " ".repeat(widths[j].saturating_sub(c.chars().count()));
            if self.types.get(j) == Some(&Agate::Text) {
                let _ = write!(out, " {c}{pad} |");
            } else {
                let _ = write!(out, " {pad}{c} |");
            }
        }
        out.push('\n');
    }

    /// The rows as agate's `to_json` gives them: a list of objects, keys in
    /// column order.
    pub(crate) fn json_rows(&self) -> Json {
        Json::Arr(
            self.rows
                .iter()
                .map(|row| {
                    Json::Obj(
                        self.names
                            .iter()
                            .zip(row)
                            .zip(&self.types)
                            .map(|((n, v), t)| (n.clone(), jsonify(v, *t)))
                            .collect(),
                    )
                })
                .collect(),
        )
    }
}

/// dbt's type tester over one column's values: text when psycopg2 gave any
/// string (dbt forces such columns to text); else the first of Integer,
/// Number, Date, DateTime, Boolean that takes every value (an all-null column
/// is Integer).
fn agate_type<'a>(values: impl Iterator<Item = &'a Py> + Clone) -> Agate {
    let all = |f: &dyn Fn(&Py) -> bool| values.clone().all(|v| *v == Py::None || f(v));
    if values.clone().any(|v| matches!(v, Py::Str(_))) {
        Agate::Text
    } else if all(&|v| matches!(v, Py::Int(_))) {
        Agate::Integer
    } else if all(&|v| matches!(v, Py::Int(_) | Py::Dec(_))) {
        Agate::Number
    } else if all(&|v| matches!(v, Py::Date(_))) {
        Agate::Date
    } else if all(&|v| matches!(v, Py::Date(_) | Py::DateTime(_))) {
        Agate::DateTime
    } else if all(&|v| matches!(v, Py::Bool(_))) {
        Agate::Boolean
    } else {
        Agate::Text
    }
}

/// Python's `str()` of a value.
fn display(v: &Py) -> String {
    match v {
        Py::None => String::new(),
        Py::Int(s) | Py::Date(s) | Py::DateTime(s) | Py::Str(s) => s.clone(),
        Py::Dec(d) => d.python_str(),
        Py::Bool(true) => "True".into(),
        Py::Bool(false) => "False".into(),
    }
}

/// agate's `jsonify` of a value of a column of type `t`.
fn jsonify(v: &Py, t: Agate) -> Json {
    match (v, t) {
        (Py::None, _) => Json::Null,
        (_, Agate::Text) => Json::Str(display(v)),
        (Py::Int(i), Agate::Integer) => Json::Int(i.clone()),
        (Py::Int(i), _) => Json::Float(i.parse().unwrap_or(f64::NAN)),
        (Py::Dec(d), _) => Json::Float(d.to_f64()),
        (Py::Bool(b), _) => Json::Bool(*b),
        (Py::Date(s), _) => Json::Str(s.clone()),
        (Py::DateTime(s), _) => Json::Str(s.replacen(' ', "T", 1)),
        (Py::Str(s), _) => Json::Str(s.clone()),
    }
}

/// The most decimal places of a number column's values (agate's
/// `max_precision`, before the cap at three).
fn max_places<'a>(values: impl Iterator<Item = &'a Py>) -> usize {
    let mut whole = 1i64;
    let mut places = 0i64;
    for v in values {
        let d = match v {
            Py::Dec(d) => d.clone(),
            Py::Int(i) => match Decimal::parse(i) {
                Some(d) => d,
                None => continue,
            },
            _ => continue,
        };
        let Some((digits, exp)) = d.normalized() else {
            continue;
        };
        let exponent_places = -exp;
        whole = whole.max(digits.len() as i64 - exponent_places);
        places = places.max(exponent_places);
    }
    // Python's decimal context holds 28 digits.
    if whole + places > 28 {
        places = 28 - whole;
    }
    places.max(0) as usize
}

/// What psycopg2 makes of PostgreSQL's text for a value of type `ty`.
fn python_value(ty: &str, text: &str) -> Py {
    match ty {
        "int2" | "int4" | "int8" | "oid" => Py::Int(text.to_string()),
        "numeric" => Decimal::parse(text).map_or_else(|| Py::Str(text.to_string()), Py::Dec),
        "float4" | "float8" => match text.parse::<f64>() {
            Ok(f) => Decimal::parse(&py_float(f)).map_or(Py::Str(text.into()), Py::Dec),
            Err(_) => Py::Str(text.to_string()),
        },
        "bool" => Py::Bool(text == "t"),
        "date" if text.len() == 10 => Py::Date(text.to_string()),
        "timestamp" | "timestamptz" if text.len() >= 19 => Py::DateTime(python_datetime(text)),
        "time" | "timetz" => Py::Str(python_time(text)),
        "interval" => Py::Str(python_interval(text).unwrap_or_else(|| text.to_string())),
        "json" | "jsonb" => match serde_json::from_str::<serde_json::Value>(text) {
            Ok(serde_json::Value::Null) => Py::None,
            Ok(serde_json::Value::Bool(b)) => Py::Bool(b),
            Ok(serde_json::Value::String(s)) => Py::Str(s),
            Ok(serde_json::Value::Number(n)) => {
                if n.is_i64() || n.is_u64() {
                    Py::Int(n.to_string())
                } else {
                    Decimal::parse(&py_float(n.as_f64().unwrap_or(f64::NAN)))
                        .map_or(Py::Str(n.to_string()), Py::Dec)
                }
            }
            Ok(doc) => Py::Str(Json::from_serde(&doc).compact()),
            Err(_) => Py::Str(text.to_string()),
        },
        t if t.starts_with('_') => match parse_array(text, &t[1..]) {
            Some(list) => Py::Str(list.compact()),
            None => Py::Str(text.to_string()),
        },
        _ => Py::Str(text.to_string()),
    }
}

/// `str()` of the datetime psycopg2 reads from `2024-03-01 10:00:00.5+05:30`:
/// microseconds in six digits, the offset as `+HH:MM`.
fn python_datetime(text: &str) -> String {
    let (date, rest) = text.split_at(10);
    format!("{date}{}", python_time(rest))
}

/// `str()` of a time (with its separator before it, if any): `10:00:00.5+02`
/// → `10:00:00.500000+02:00`.
fn python_time(text: &str) -> String {
    let (clock, offset) = match text.rfind(['+', '-']) {
        Some(i) if i > 0 && text[..i].contains(':') => text.split_at(i),
        _ => (text, ""),
    };
    let clock = match clock.split_once('.') {
        Some((whole, frac)) => {
            let micros: String = frac.chars().chain(std::iter::repeat('0')).take(6).collect();
            format!("{whole}.{micros}")
        }
        None => clock.to_string(),
    };
    let offset = match offset.len() {
        0 => String::new(),
        3 => format!("{offset}:00"),
        _ => offset.to_string(),
    };
    format!("{clock}{offset}")
}

/// `str()` of the timedelta psycopg2 reads from an interval in PostgreSQL's
/// `postgres` style (`1 year 2 mons -3 days 04:05:06.7`): years count 365
/// days and months 30, as psycopg2 counts them.
fn python_interval(text: &str) -> Option<String> {
    let mut days: i128 = 0;
    let mut micros: i128 = 0;
    let mut words = text.split_whitespace().peekable();
    while let Some(w) = words.next() {
        if w.contains(':') {
            let (neg, clock) = match w.strip_prefix('-') {
                Some(c) => (true, c),
                None => (false, w.strip_prefix('+').unwrap_or(w)),
            };
            let mut parts = clock.split(':');
            let h: i128 = parts.next()?.parse().ok()?;
            let m: i128 = parts.next()?.parse().ok()?;
            let s = parts.next().unwrap_or("0");
            let (sec, frac) = s.split_once('.').unwrap_or((s, ""));
            let sec: i128 = sec.parse().ok()?;
            let frac: String = frac.chars().chain(std::iter::repeat('0')).take(6).collect();
            let frac: i128 = frac.parse().ok()?;
            let total = ((h * 60 + m) * 60 + sec) * 1_000_000 + frac;
            micros += if neg { -total } else { total };
        } else {
            let n: i128 = w.parse().ok()?;
            let unit = words.next()?;
            match unit.trim_end_matches('s') {
                "year" => days += n * 365,
                "mon" => days += n * 30,
                "day" => days += n,
                _ => return None,
            }
        }
    }
    let total = days * 86_400_000_000 + micros;
    let d = total.div_euclid(86_400_000_000);
    let rest = total.rem_euclid(86_400_000_000);
    let (secs, us) = (rest / 1_000_000, rest % 1_000_000);
    let mut out = String::new();
    if d != 0 {
        let _ = write!(out, "{d} day{}, ", if d.abs() != 1 { "s" } else { "" });
    }
    let _ = write!(
        out,
        "{}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    if us != 0 {
        let _ = write!(out, ".{us:06}");
    }
    Some(out)
}

/// A PostgreSQL array's text (`{1,2}`, `{"a b",NULL}`, `{{1},{2}}`) as the
/// list psycopg2 makes of it, elements typed by the element type.
fn parse_array(text: &str, element: &str) -> Option<Json> {
    fn value(raw: Option<String>, element: &str) -> Json {
        let Some(t) = raw else { return Json::Null };
        match element {
            "int2" | "int4" | "int8" | "oid" => Json::Int(t),
            "float4" | "float8" => Json::Float(t.parse().unwrap_or(f64::NAN)),
            "bool" => Json::Bool(t == "t"),
            // Values json cannot encode are written as their str() (dbt's
            // forgiving encoder).
            "timestamp" | "timestamptz" if t.len() >= 19 => Json::Str(python_datetime(&t)),
            _ => Json::Str(t),
        }
    }
    fn list(chars: &mut std::iter::Peekable<std::str::Chars<'_>>, element: &str) -> Option<Json> {
        if chars.next()? != '{' {
            return None;
        }
        let mut items = Vec::new();
        if chars.peek() == Some(&'}') {
            chars.next();
            return Some(Json::Arr(items));
        }
        loop {
            match chars.peek()? {
                '{' => items.push(list(chars, element)?),
                '"' => {
                    chars.next();
                    let mut s = String::new();
                    loop {
                        match chars.next()? {
                            '\\' => s.push(chars.next()?),
                            '"' => break,
                            c => s.push(c),
                        }
                    }
                    items.push(value(Some(s), element));
                }
                _ => {
                    let mut s = String::new();
                    while let Some(&c) = chars.peek() {
                        if c == ',' || c == '}' {
                            break;
                        }
                        s.push(c);
                        chars.next();
                    }
                    let raw = (s != "NULL").then_some(s);
                    items.push(value(raw, element));
                }
            }
            match chars.next()? {
                ',' => continue,
                '}' => return Some(Json::Arr(items)),
                _ => return None,
            }
        }
    }
    let mut chars = text.chars().peekable();
    let out = list(&mut chars, element)?;
    chars.next().is_none().then_some(out)
}

/// A decimal number as Python's `Decimal` holds it: sign, coefficient digits
/// and exponent (`-12.50` is `-`, `1250`, `-2`), or a special value.
#[derive(Debug, Clone, PartialEq)]
enum Decimal {
    Finite {
        negative: bool,
        digits: String,
        exp: i64,
    },
    Infinity(bool),
    NaN,
}

impl Decimal {
    /// Reads `-12.50`, `1e+20`, `NaN`, `Infinity` (what PostgreSQL and
    /// Python's repr print).
    fn parse(text: &str) -> Option<Decimal> {
        let t = text.trim();
        let (negative, body) = match t.strip_prefix('-') {
            Some(b) => (true, b),
            None => (false, t.strip_prefix('+').unwrap_or(t)),
        };
        match body.to_ascii_lowercase().as_str() {
            "nan" => return Some(Decimal::NaN),
            "infinity" | "inf" => return Some(Decimal::Infinity(negative)),
            _ => {}
        }
        let (mantissa, exp) = match body.split_once(['e', 'E']) {
            Some((m, e)) => (m, e.parse::<i64>().ok()?),
            None => (body, 0),
        };
        let (whole, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        if whole.is_empty() && frac.is_empty() {
            return None;
        }
        if !whole
            .chars()
            .chain(frac.chars())
            .all(|c| c.is_ascii_digit())
        {
            return None;
        }
        let digits = format!("{whole}{frac}");
        let digits = digits.trim_start_matches('0');
        let digits = if digits.is_empty() { "0" } else { digits };
        Some(Decimal::Finite {
            negative,
            digits: digits.to_string(),
            exp: exp - frac.len() as i64,
        })
    }

    /// The coefficient without trailing zeros and its exponent (Python's
    /// `normalize()`), for a finite value.
    fn normalized(&self) -> Option<(String, i64)> {
        let Decimal::Finite { digits, exp, .. } = self else {
            return None;
        };
        if digits.chars().all(|c| c == '0') {
            return Some(("0".into(), 0));
        }
        let trimmed = digits.trim_end_matches('0');
        Some((
            trimmed.to_string(),
            exp + (digits.len() - trimmed.len()) as i64,
        ))
    }

    fn to_f64(&self) -> f64 {
        match self {
            Decimal::NaN => f64::NAN,
            Decimal::Infinity(neg) => {
                if *neg {
                    f64::NEG_INFINITY
                } else {
                    f64::INFINITY
                }
            }
            Decimal::Finite {
                negative,
                digits,
                exp,
            } => format!("{}{digits}e{exp}", if *negative { "-" } else { "" })
                .parse()
                .unwrap_or(f64::NAN),
        }
    }

    /// Python's `str()` of the Decimal.
    fn python_str(&self) -> String {
        match self {
            Decimal::NaN => "NaN".into(),
            Decimal::Infinity(neg) => format!("{}Infinity", if *neg { "-" } else { "" }),
            Decimal::Finite {
                negative,
                digits,
                exp,
            } => crate::seed::Decimal::Finite {
                negative: *negative,
                digits: digits.clone(),
                exponent: *exp,
            }
            .to_python_string(),
        }
    }

    /// babel's `format_decimal` with agate's pattern `#,##0.<places zeros>`
    /// (and agate's `…` after a number cut to three places): rounded half to
    /// even, thousands grouped with commas, the sign kept on a zero.
    fn format(&self, places: usize, ellipsis: bool) -> String {
        let tail = if ellipsis { "…" } else { "" };
        let (negative, digits, exp) = match self {
            Decimal::Infinity(_) => return self.python_str(),
            Decimal::NaN => {
                let frac = if places > 0 {
                    format!(".{}", "0".repeat(places))
                } else {
                    String::new()
                };
                return format!("NaN{frac}{tail}");
            }
            Decimal::Finite {
                negative,
                digits,
                exp,
            } => (*negative, digits.as_str(), *exp),
        };
        // The value times 10^places, rounded half to even to a whole number.
        let shift = exp + places as i64;
        let scaled = if shift >= 0 {
            format!("{digits}{}", "0".repeat(shift as usize))
        } else {
            let cut = (-shift) as usize;
            let padded = if cut > digits.len() {
                format!("{}{digits}", "0".repeat(cut - digits.len()))
            } else {
                digits.to_string()
            };
            let (kept, dropped) = padded.split_at(padded.len() - cut);
            let kept = if kept.is_empty() { "0" } else { kept };
            let mut dropped_chars = dropped.chars();
            let first = dropped_chars.next().unwrap_or('0');
            let rest_nonzero = dropped_chars.any(|c| c != '0');
            let last_odd = kept
                .chars()
                .last()
                .and_then(|c| c.to_digit(10))
                .is_some_and(|d| d % 2 == 1);
            let up = first > '5' || (first == '5' && (rest_nonzero || last_odd));
            if up {
                increment(kept)
            } else {
                kept.to_string()
            }
        };
        let scaled = scaled.trim_start_matches('0');
        let scaled = format!(
            "{}{scaled}",
            "0".repeat((places + 1).saturating_sub(scaled.len()))
        );
        let (int, frac) = scaled.split_at(scaled.len() - places);
        let mut grouped = String::new();
        for (i, c) in int.chars().enumerate() {
            if i > 0 && (int.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(c);
        }
        let sign = if negative { "-" } else { "" };
        if places == 0 {
            format!("{sign}{grouped}{tail}")
        } else {
            format!("{sign}{grouped}.{frac}{tail}")
        }
    }
}

/// A string of decimal digits plus one.
fn increment(digits: &str) -> String {
    let mut out: Vec<u8> = digits.bytes().collect();
    for b in out.iter_mut().rev() {
        if *b == b'9' {
            *b = b'0';
        } else {
            *b += 1;
            return String::from_utf8(out).unwrap_or_default();
        }
    }
    format!("1{}", String::from_utf8(out).unwrap_or_default())
}

/// A JSON value as Python's `json` module writes it (floats as their repr,
/// non-ASCII escaped).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    /// An integer, as its digits.
    Int(String),
    Float(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    fn from_serde(v: &serde_json::Value) -> Json {
        match v {
            serde_json::Value::Null => Json::Null,
            serde_json::Value::Bool(b) => Json::Bool(*b),
            serde_json::Value::Number(n) if n.is_i64() || n.is_u64() => Json::Int(n.to_string()),
            serde_json::Value::Number(n) => Json::Float(n.as_f64().unwrap_or(f64::NAN)),
            serde_json::Value::String(s) => Json::Str(s.clone()),
            serde_json::Value::Array(a) => Json::Arr(a.iter().map(Json::from_serde).collect()),
            serde_json::Value::Object(o) => Json::Obj(
                o.iter()
                    .map(|(k, v)| (k.clone(), Json::from_serde(v)))
                    .collect(),
            ),
        }
    }

    /// `json.dumps(v)`: one line, `", "` and `": "` between items.
    pub(crate) fn compact(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, None, 0);
        out
    }

    /// `json.dumps(v, indent=2)`.
    pub(crate) fn indented(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, Some(2), 0);
        out
    }

    fn write(&self, out: &mut String, indent: Option<usize>, level: usize) {
        let newline = |out: &mut String, level: usize| {
            if let Some(n) = indent {
                out.push('\n');
                out.push_str(&" ".repeat(n * level));
            }
        };
        let sep = if indent.is_some() { "," } else { ", " };
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Int(i) => out.push_str(i),
            Json::Float(f) => out.push_str(&json_float(*f)),
            Json::Str(s) => json_str(out, s),
            Json::Arr(items) if items.is_empty() => out.push_str("[]"),
            Json::Obj(items) if items.is_empty() => out.push_str("{}"),
            Json::Arr(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(sep);
                    }
                    newline(out, level + 1);
                    v.write(out, indent, level + 1);
                }
                newline(out, level);
                out.push(']');
            }
            Json::Obj(items) => {
                out.push('{');
                for (i, (k, v)) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(sep);
                    }
                    newline(out, level + 1);
                    json_str(out, k);
                    out.push_str(": ");
                    v.write(out, indent, level + 1);
                }
                newline(out, level);
                out.push('}');
            }
        }
    }
}

/// A float as `json.dumps` writes it (`NaN`, `Infinity` allowed, as Python's).
fn json_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        py_float(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Decimal {
        Decimal::parse(s).unwrap()
    }

    #[test]
    fn numbers_are_rounded_half_even_and_grouped_as_babel_does() {
        let cases = [
            ("1234567.5", 0, false, "1,234,568"),
            ("-0.0005", 0, false, "-0"),
            ("2.5", 0, false, "2"),
            ("0.125", 1, false, "0.1"),
            ("-1234.5", 1, false, "-1,234.5"),
            ("1E+2", 1, false, "100.0"),
            ("1234567.5", 3, true, "1,234,567.500…"),
            ("1.2345", 3, true, "1.234…"),
            ("0.0015", 3, true, "0.002…"),
            ("0.125", 2, false, "0.12"),
            ("1234567.555", 2, false, "1,234,567.56"),
            ("999.996", 2, false, "1,000.00"),
        ];
        for (v, p, e, want) in cases {
            assert_eq!(dec(v).format(p, e), want, "{v} to {p} places");
        }
    }

    #[test]
    fn intervals_read_as_timedeltas() {
        for (pg, want) in [
            ("1 day 02:00:00", "1 day, 2:00:00"),
            ("-00:00:01", "-1 day, 23:59:59"),
            ("1 year 2 mons 3 days", "428 days, 0:00:00"),
            ("00:00:00.5", "0:00:00.500000"),
            ("-1 days +02:00:00", "-1 day, 2:00:00"),
        ] {
            assert_eq!(python_interval(pg).as_deref(), Some(want), "{pg}");
        }
    }

    #[test]
    fn json_is_dumped_as_python_dumps_it() {
        let v = parse_array("{{1,2},{3,NULL}}", "int4").unwrap();
        assert_eq!(v.compact(), "[[1, 2], [3, null]]");
        let s = parse_array(r#"{"a b","é",NULL}"#, "text").unwrap();
        assert_eq!(s.compact(), r#"["a b", "\u00e9", null]"#);
    }
}
