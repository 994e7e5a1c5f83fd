//! `modules.datetime`: Python's `datetime`, `date`, `time` and `timedelta` types
//! (dbt exports those and `tzinfo`) as template values — constructors,
//! `now()`/`utcnow()`/`today()`, `strptime`/`fromisoformat`/`fromtimestamp`,
//! attributes, `strftime`/`isoformat`/`timestamp`, `replace`, `astimezone`,
//! `date()`/`time()`, `weekday()`, comparisons, and `str()` exactly as Python
//! writes them. `run_started_at` and a microbatch's `event_time_start`/`end` are
//! datetimes of this module. Python's `+`, `-` and `*` between them and
//! timedeltas are [`arith`] (templates reach it through `super::super::pyops`).

use std::cmp::Ordering;
use std::sync::Arc;

use chrono::{
    DateTime, Datelike, Duration, Local, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Timelike,
    Utc,
};
use minijinja::value::{DynObject, Object, ValueKind};
use minijinja::{Error, State, Value};

use super::super::pyops::{type_error, Op};
use super::pytz::{offset_text, tz_arg, tz_value, TzInfo};
use super::{bind, int_arg, no_method, num_arg, py_error, str_arg, unsupported_value};

/// A datetime, naive or aware: its local (wall clock) time and tzinfo.
#[derive(Debug, Clone)]
pub(super) struct PyDateTime {
    pub(super) local: NaiveDateTime,
    pub(super) tz: Option<TzInfo>,
}

/// A UTC-aware datetime value (`run_started_at`, a batch's bounds).
pub(in crate::render) fn utc_datetime(t: DateTime<Utc>) -> Value {
    PyDateTime::value(t.naive_utc(), Some(TzInfo::Utc))
}

impl PyDateTime {
    pub(super) fn value(local: NaiveDateTime, tz: Option<TzInfo>) -> Value {
        Value::from_object(PyDateTime { local, tz })
    }

    /// The UTC instant (a naive datetime is read as the machine's local time,
    /// as Python does).
    fn utc(&self) -> NaiveDateTime {
        match &self.tz {
            Some(tz) => self.local - Duration::seconds(tz.offset() as i64),
            None => Local
                .from_local_datetime(&self.local)
                .earliest()
                .map(|t| t.naive_utc())
                .unwrap_or(self.local),
        }
    }

    /// `astimezone(tz)` (and a pytz zone's `normalize`).
    pub(super) fn astimezone(&self, tz: &TzInfo) -> Value {
        let utc = self.utc();
        let tz = tz.at_utc(utc);
        PyDateTime::value(utc + Duration::seconds(tz.offset() as i64), Some(tz))
    }

    fn isoformat(&self, sep: &str) -> String {
        let mut out = format!(
            "{}{sep}{}",
            date_text(self.local.date()),
            time_text(self.local.time())
        );
        if let Some(tz) = &self.tz {
            out.push_str(&offset_text(tz.offset(), true));
        }
        out
    }
}

fn date_text(d: NaiveDate) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day())
}

/// `HH:MM:SS`, and `.ffffff` when there are microseconds.
fn time_text(t: NaiveTime) -> String {
    let us = t.nanosecond() / 1000;
    let mut out = format!("{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second());
    if us != 0 {
        out.push_str(&format!(".{us:06}"));
    }
    out
}

/// Python's `strftime`: chrono's directives, with `%f` (microseconds), `%z` and
/// `%Z` (empty when naive) as Python writes them; an unknown directive is kept.
fn strftime(local: NaiveDateTime, tz: Option<&TzInfo>, fmt: &str) -> String {
    use chrono::format::{Item, StrftimeItems};
    let mut out = String::new();
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = String::from("%");
        if let Some(&flag) = chars.peek() {
            if matches!(flag, '-' | '_' | '0') {
                spec.push(flag);
                chars.next();
            }
        }
        let Some(d) = chars.next() else {
            out.push_str(&spec);
            break;
        };
        spec.push(d);
        match d {
            '%' => out.push('%'),
            'f' => out.push_str(&format!("{:06}", local.nanosecond() / 1000)),
            'z' => {
                if let Some(tz) = tz {
                    out.push_str(&offset_text(tz.offset(), false));
                }
            }
            'Z' => {
                if let Some(name) = tz.and_then(TzInfo::tzname) {
                    out.push_str(&name);
                }
            }
            _ => {
                let items: Vec<Item> = StrftimeItems::new(&spec).collect();
                if items.iter().any(|i| matches!(i, Item::Error)) {
                    out.push_str(&spec);
                } else {
                    out.push_str(&local.format_with_items(items.into_iter()).to_string());
                }
            }
        }
    }
    out
}

/// Python's `strptime`: Python's defaults (1900-01-01 00:00:00) for what the
/// format leaves out; `%z` makes an aware datetime.
fn strptime(s: &str, fmt: &str) -> Result<PyDateTime, Error> {
    use chrono::format::{parse, Parsed, StrftimeItems};
    let err = || {
        py_error(
            "ValueError",
            format!(
                "time data {} does not match format {}",
                crate::project::py_str(s),
                crate::project::py_str(fmt)
            ),
        )
    };
    // Python's `%f` takes one to six digits: after a dot, chrono's `%.f` does.
    let chrono_fmt = fmt.replace(".%f", "%.f").replace("%f", "%6f");
    let mut p = Parsed::new();
    parse(&mut p, s, StrftimeItems::new(&chrono_fmt)).map_err(|_| err())?;
    let no_year = p.year().is_none()
        && p.year_mod_100().is_none()
        && p.isoyear().is_none()
        && p.timestamp().is_none();
    if no_year {
        p.set_year(1900).map_err(|_| err())?;
    }
    if p.month().is_none()
        && p.ordinal().is_none()
        && p.isoweek().is_none()
        && p.week_from_mon().is_none()
        && p.week_from_sun().is_none()
    {
        p.set_month(1).map_err(|_| err())?;
    }
    if p.day().is_none() && p.ordinal().is_none() && p.weekday().is_none() {
        p.set_day(1).map_err(|_| err())?;
    }
    if p.hour_mod_12().is_none() {
        p.set_hour(0).map_err(|_| err())?;
    } else if p.hour_div_12().is_none() {
        p.set_ampm(false).map_err(|_| err())?;
    }
    if p.minute().is_none() {
        p.set_minute(0).map_err(|_| err())?;
    }
    if p.second().is_none() {
        p.set_second(0).map_err(|_| err())?;
    }
    let date = p.to_naive_date().map_err(|_| err())?;
    let time = p.to_naive_time().map_err(|_| err())?;
    let tz = p.offset().map(|offset| TzInfo::Fixed {
        offset,
        pytz: false,
    });
    Ok(PyDateTime {
        local: date.and_time(time),
        tz,
    })
}

/// Python's `fromisoformat` (3.11): `YYYY-MM-DD`, then a one-character
/// separator and `HH[:MM[:SS[.ffffff]]]`, then `Z` or `±HH:MM[:SS]`.
fn fromisoformat(s: &str) -> Result<PyDateTime, Error> {
    let err = || {
        py_error(
            "ValueError",
            format!("Invalid isoformat string: {}", crate::project::py_str(s)),
        )
    };
    let date = parse_iso_date(s.get(..10).ok_or_else(err)?).ok_or_else(err)?;
    let rest = &s[10..];
    if rest.is_empty() {
        return Ok(PyDateTime {
            local: date.and_time(NaiveTime::MIN),
            tz: None,
        });
    }
    let mut chars = rest.chars();
    chars.next();
    let rest = chars.as_str();
    let split = rest.find(['+', '-', 'Z']).unwrap_or(rest.len());
    let (time, offset) = rest.split_at(split);
    let time = parse_iso_time(time).ok_or_else(err)?;
    let tz = match offset {
        "" => None,
        "Z" => Some(TzInfo::Fixed {
            offset: 0,
            pytz: false,
        }),
        o => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            let t = parse_iso_time(&o[1..]).ok_or_else(err)?;
            Some(TzInfo::Fixed {
                offset: sign * t.num_seconds_from_midnight() as i32,
                pytz: false,
            })
        }
    };
    Ok(PyDateTime {
        local: date.and_time(time),
        tz,
    })
}

fn parse_iso_date(s: &str) -> Option<NaiveDate> {
    if s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit()) {
        return NaiveDate::parse_from_str(s, "%Y%m%d").ok();
    }
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    NaiveDate::from_ymd_opt(
        s[..4].parse().ok()?,
        s[5..7].parse().ok()?,
        s[8..].parse().ok()?,
    )
}

fn parse_iso_time(s: &str) -> Option<NaiveTime> {
    let (hms, frac) = match s.split_once(['.', ',']) {
        Some((a, f)) => (a, Some(f)),
        None => (s, None),
    };
    let parts: Vec<&str> = if hms.contains(':') {
        hms.split(':').collect()
    } else {
        hms.as_bytes()
            .chunks(2)
            .map(|c| std::str::from_utf8(c).unwrap_or(""))
            .collect()
    };
    if parts.is_empty() || parts.len() > 3 || parts.iter().any(|p| p.len() != 2) {
        return None;
    }
    let n = |i: usize| -> Option<u32> { parts.get(i).map_or(Some(0), |p| p.parse().ok()) };
    let us = match frac {
        None => 0,
        Some(f) if !f.is_empty() && f.len() <= 9 && f.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{:0<6}", &f[..f.len().min(6)]).parse().ok()?
        }
        Some(_) => return None,
    };
    NaiveTime::from_hms_micro_opt(n(0)?, n(1)?, n(2)?, us)
}

fn now_utc() -> NaiveDateTime {
    Utc::now().naive_utc()
}

fn now_local() -> NaiveDateTime {
    Local::now().naive_local()
}

fn from_timestamp(ts: f64) -> Result<NaiveDateTime, Error> {
    DateTime::from_timestamp_micros((ts * 1e6).round() as i64)
        .map(|t| t.naive_utc())
        .ok_or_else(|| py_error("ValueError", format!("timestamp out of range: {ts}")))
}

fn date_of(y: i64, m: i64, d: i64) -> Result<NaiveDate, Error> {
    if !(1..=9999).contains(&y) {
        return Err(py_error("ValueError", format!("year {y} is out of range")));
    }
    if !(1..=12).contains(&m) {
        return Err(py_error("ValueError", "month must be in 1..12"));
    }
    NaiveDate::from_ymd_opt(y as i32, m as u32, d as u32)
        .ok_or_else(|| py_error("ValueError", "day is out of range for month"))
}

fn time_of(h: i64, mi: i64, s: i64, us: i64) -> Result<NaiveTime, Error> {
    let check = |v: i64, hi: i64, what: &str| {
        if (0..hi).contains(&v) {
            Ok(())
        } else {
            Err(py_error(
                "ValueError",
                format!("{what} must be in 0..{}", hi - 1),
            ))
        }
    };
    check(h, 24, "hour")?;
    check(mi, 60, "minute")?;
    check(s, 60, "second")?;
    check(us, 1_000_000, "microsecond")?;
    Ok(NaiveTime::from_hms_micro_opt(h as u32, mi as u32, s as u32, us as u32).unwrap_or_default())
}

/// An integer slot of a bound call, with its default.
fn int_slot(
    func: &str,
    params: &[&str],
    a: &[Option<Value>],
    i: usize,
    default: i64,
) -> Result<i64, Error> {
    match &a[i] {
        Some(v) => int_arg(func, params[i], v),
        None => Ok(default),
    }
}

fn required(func: &str, params: &[&str], a: &[Option<Value>], n: usize) -> Result<(), Error> {
    if let Some(i) = a[..n].iter().position(Option::is_none) {
        return Err(py_error(
            "TypeError",
            format!("{func}() missing required argument '{}'", params[i]),
        ));
    }
    Ok(())
}

/// The classes of the module: callable, with their class methods.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Class {
    DateTime,
    Date,
    Time,
    TimeDelta,
}

const DT_PARAMS: [&str; 8] = [
    "year",
    "month",
    "day",
    "hour",
    "minute",
    "second",
    "microsecond",
    "tzinfo",
];
const TIME_PARAMS: [&str; 5] = ["hour", "minute", "second", "microsecond", "tzinfo"];
const TD_PARAMS: [&str; 7] = [
    "days",
    "seconds",
    "microseconds",
    "milliseconds",
    "minutes",
    "hours",
    "weeks",
];

impl Object for Class {
    fn repr(self: &Arc<Self>) -> minijinja::value::ObjectRepr {
        minijinja::value::ObjectRepr::Plain
    }

    fn call(self: &Arc<Self>, _: &mut State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        match **self {
            Class::DateTime => {
                let a = bind("datetime", &DT_PARAMS, args)?;
                required("datetime", &DT_PARAMS, &a, 3)?;
                let i = |n: usize| int_slot("datetime", &DT_PARAMS, &a, n, 0);
                let date = date_of(i(0)?, i(1)?, i(2)?)?;
                let time = time_of(i(3)?, i(4)?, i(5)?, i(6)?)?;
                let tz = tz_arg("datetime", a[7].as_ref())?;
                Ok(PyDateTime::value(date.and_time(time), tz))
            }
            Class::Date => {
                let p = ["year", "month", "day"];
                let a = bind("date", &p, args)?;
                required("date", &p, &a, 3)?;
                let i = |n: usize| int_slot("date", &p, &a, n, 0);
                Ok(Value::from_object(PyDate(date_of(i(0)?, i(1)?, i(2)?)?)))
            }
            Class::Time => {
                let a = bind("time", &TIME_PARAMS, args)?;
                let i = |n: usize| int_slot("time", &TIME_PARAMS, &a, n, 0);
                let time = time_of(i(0)?, i(1)?, i(2)?, i(3)?)?;
                let tz = tz_arg("time", a[4].as_ref())?;
                Ok(Value::from_object(PyTime(time, tz)))
            }
            Class::TimeDelta => {
                let a = bind("timedelta", &TD_PARAMS, args)?;
                let scale = [86_400e6, 1e6, 1.0, 1e3, 60e6, 3_600e6, 604_800e6];
                let mut us = 0f64;
                for (i, slot) in a.iter().enumerate() {
                    if let Some(v) = slot {
                        us += num_arg("timedelta", TD_PARAMS[i], v)? * scale[i];
                    }
                }
                Ok(timedelta_micros(us.round_ties_even() as i64))
            }
        }
    }

    fn call_method(
        self: &Arc<Self>,
        _: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let class = **self;
        let dt = |local: NaiveDateTime| -> Value {
            match class {
                Class::Date => Value::from_object(PyDate(local.date())),
                _ => PyDateTime::value(local, None),
            }
        };
        match (class, method) {
            (Class::DateTime | Class::Date, "today") => {
                let () = minijinja::value::from_args(args)?;
                Ok(dt(now_local()))
            }
            (Class::DateTime, "now") => {
                let a = bind("now", &["tz"], args)?;
                match tz_arg("now", a[0].as_ref())? {
                    None => Ok(dt(now_local())),
                    Some(tz) => Ok(PyDateTime {
                        local: now_utc(),
                        tz: Some(TzInfo::Utc),
                    }
                    .astimezone(&tz)),
                }
            }
            (Class::DateTime, "utcnow") => {
                let () = minijinja::value::from_args(args)?;
                Ok(dt(now_utc()))
            }
            (Class::DateTime, "strptime") => {
                let a = bind("strptime", &["date_string", "format"], args)?;
                required("strptime", &["date_string", "format"], &a, 2)?;
                let s = str_arg(
                    "strptime",
                    "date_string",
                    a[0].as_ref().unwrap_or(&Value::UNDEFINED),
                )?;
                let f = str_arg(
                    "strptime",
                    "format",
                    a[1].as_ref().unwrap_or(&Value::UNDEFINED),
                )?;
                Ok(Value::from_object(strptime(&s, &f)?))
            }
            (Class::DateTime | Class::Date, "fromisoformat") => {
                let a = bind("fromisoformat", &["date_string"], args)?;
                let s = str_arg(
                    "fromisoformat",
                    "date_string",
                    a[0].as_ref().unwrap_or(&Value::UNDEFINED),
                )?;
                if class == Class::Date {
                    return parse_iso_date(&s)
                        .map(|d| Value::from_object(PyDate(d)))
                        .ok_or_else(|| {
                            py_error(
                                "ValueError",
                                format!("Invalid isoformat string: {}", crate::project::py_str(&s)),
                            )
                        });
                }
                Ok(Value::from_object(fromisoformat(&s)?))
            }
            (Class::DateTime | Class::Date, "fromtimestamp") => {
                let a = bind("fromtimestamp", &["timestamp", "tz"], args)?;
                let ts = num_arg(
                    "fromtimestamp",
                    "timestamp",
                    a[0].as_ref().unwrap_or(&Value::UNDEFINED),
                )?;
                let utc = from_timestamp(ts)?;
                match tz_arg("fromtimestamp", a[1].as_ref())? {
                    Some(tz) if class == Class::DateTime => Ok(PyDateTime {
                        local: utc,
                        tz: Some(TzInfo::Utc),
                    }
                    .astimezone(&tz)),
                    _ => Ok(dt(Local.from_utc_datetime(&utc).naive_local())),
                }
            }
            (Class::DateTime, "utcfromtimestamp") => {
                let a = bind("utcfromtimestamp", &["timestamp"], args)?;
                let ts = num_arg(
                    "utcfromtimestamp",
                    "timestamp",
                    a[0].as_ref().unwrap_or(&Value::UNDEFINED),
                )?;
                Ok(dt(from_timestamp(ts)?))
            }
            (Class::DateTime, "combine") => {
                let a = bind("combine", &["date", "time", "tzinfo"], args)?;
                let d = a[0]
                    .as_ref()
                    .and_then(|v| v.downcast_object_ref::<PyDate>())
                    .map(|d| d.0);
                let t = a[1]
                    .as_ref()
                    .and_then(|v| v.downcast_object_ref::<PyTime>())
                    .map(|t| (t.0, t.1.clone()));
                let (Some(d), Some((t, ttz))) = (d, t) else {
                    return Err(py_error("TypeError", "combine() expects a date and a time"));
                };
                let tz = match &a[2] {
                    Some(v) => tz_arg("combine", Some(v))?,
                    None => ttz,
                };
                Ok(PyDateTime::value(d.and_time(t), tz))
            }
            (Class::Date, "fromordinal") => {
                let a = bind("fromordinal", &["n"], args)?;
                let n = int_arg(
                    "fromordinal",
                    "n",
                    a[0].as_ref().unwrap_or(&Value::UNDEFINED),
                )?;
                NaiveDate::from_num_days_from_ce_opt(n as i32)
                    .map(|d| Value::from_object(PyDate(d)))
                    .ok_or_else(|| py_error("ValueError", format!("ordinal must be >= 1: {n}")))
            }
            _ => Err(no_method(self.name(), method)),
        }
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let name = key.as_str()?;
        match name {
            "min" | "max" | "resolution" => {
                Some(unsupported_value(&format!("{}.{name}", self.name())))
            }
            _ => None,
        }
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<class '{}'>", self.name())
    }
}

impl Class {
    fn name(&self) -> &'static str {
        match self {
            Class::DateTime => "datetime.datetime",
            Class::Date => "datetime.date",
            Class::Time => "datetime.time",
            Class::TimeDelta => "datetime.timedelta",
        }
    }
}

/// `modules.datetime`.
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
        Some(match key.as_str()? {
            "datetime" => Value::from_object(Class::DateTime),
            "date" => Value::from_object(Class::Date),
            "time" => Value::from_object(Class::Time),
            "timedelta" => Value::from_object(Class::TimeDelta),
            "tzinfo" => unsupported_value("modules.datetime.tzinfo"),
            _ => return None,
        })
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("{'date': <class 'datetime.date'>, 'datetime': <class 'datetime.datetime'>, 'time': <class 'datetime.time'>, 'timedelta': <class 'datetime.timedelta'>, 'tzinfo': <class 'datetime.tzinfo'>}")
    }
}

/// The methods a date and a datetime share: `weekday()`, `isoweekday()`,
/// `toordinal()`.
fn date_methods(d: NaiveDate, method: &str, args: &[Value]) -> Option<Result<Value, Error>> {
    let v = match method {
        "weekday" => d.weekday().num_days_from_monday() as i64,
        "isoweekday" => d.weekday().number_from_monday() as i64,
        "toordinal" => d.num_days_from_ce() as i64,
        _ => return None,
    };
    Some(minijinja::value::from_args::<()>(args).map(|()| Value::from(v)))
}

impl Object for PyDateTime {
    fn repr(self: &Arc<Self>) -> minijinja::value::ObjectRepr {
        minijinja::value::ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let t = &self.local;
        Some(match key.as_str()? {
            "year" => Value::from(t.year()),
            "month" => Value::from(t.month()),
            "day" => Value::from(t.day()),
            "hour" => Value::from(t.hour()),
            "minute" => Value::from(t.minute()),
            "second" => Value::from(t.second()),
            "microsecond" => Value::from(t.nanosecond() / 1000),
            "fold" => Value::from(0),
            "tzinfo" => self.tz.as_ref().map_or(Value::from(()), tz_value),
            _ => return None,
        })
    }

    fn call_method(
        self: &Arc<Self>,
        _: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        if let Some(r) = date_methods(self.local.date(), method, args) {
            return r;
        }
        match method {
            "strftime" => {
                let a = bind("strftime", &["format"], args)?;
                let f = str_arg(
                    "strftime",
                    "format",
                    a[0].as_ref().unwrap_or(&Value::UNDEFINED),
                )?;
                Ok(Value::from(strftime(self.local, self.tz.as_ref(), &f)))
            }
            "isoformat" => {
                let a = bind("isoformat", &["sep", "timespec"], args)?;
                if a[1].is_some() {
                    return Err(super::unsupported("datetime.isoformat(timespec=…)"));
                }
                let sep = match &a[0] {
                    Some(v) => str_arg("isoformat", "sep", v)?,
                    None => "T".into(),
                };
                Ok(Value::from(self.isoformat(&sep)))
            }
            "timestamp" => {
                let () = minijinja::value::from_args(args)?;
                Ok(Value::from(
                    self.utc().and_utc().timestamp_micros() as f64 / 1e6,
                ))
            }
            "date" => {
                let () = minijinja::value::from_args(args)?;
                Ok(Value::from_object(PyDate(self.local.date())))
            }
            "time" => {
                let () = minijinja::value::from_args(args)?;
                Ok(Value::from_object(PyTime(self.local.time(), None)))
            }
            "timetz" => {
                let () = minijinja::value::from_args(args)?;
                Ok(Value::from_object(PyTime(
                    self.local.time(),
                    self.tz.clone(),
                )))
            }
            "utcoffset" | "dst" | "tzname" => {
                let () = minijinja::value::from_args(args)?;
                let Some(tz) = &self.tz else {
                    return Ok(Value::from(()));
                };
                Ok(match method {
                    "utcoffset" => timedelta_secs(tz.offset() as i64),
                    "dst" => tz
                        .dst()
                        .map_or(Value::from(()), |d| timedelta_secs(d as i64)),
                    _ => Value::from(tz.tzname()),
                })
            }
            "astimezone" => {
                let a = bind("astimezone", &["tz"], args)?;
                let tz = match tz_arg("astimezone", a[0].as_ref())? {
                    Some(tz) => tz,
                    None => TzInfo::Fixed {
                        offset: Local
                            .offset_from_utc_datetime(&self.utc())
                            .local_minus_utc(),
                        pytz: false,
                    },
                };
                Ok(self.astimezone(&tz))
            }
            "replace" => {
                let a = bind("replace", &DT_PARAMS, args)?;
                let t = &self.local;
                let cur = [
                    t.year() as i64,
                    t.month() as i64,
                    t.day() as i64,
                    t.hour() as i64,
                    t.minute() as i64,
                    t.second() as i64,
                    (t.nanosecond() / 1000) as i64,
                ];
                let i = |n: usize| int_slot("replace", &DT_PARAMS, &a, n, cur[n]);
                let date = date_of(i(0)?, i(1)?, i(2)?)?;
                let time = time_of(i(3)?, i(4)?, i(5)?, i(6)?)?;
                let tz = match &a[7] {
                    Some(v) => tz_arg("replace", Some(v))?,
                    None => self.tz.clone(),
                };
                Ok(PyDateTime::value(date.and_time(time), tz))
            }
            _ => Err(no_method("datetime.datetime", method)),
        }
    }

    fn custom_cmp(self: &Arc<Self>, other: &DynObject) -> Option<Ordering> {
        let other = other.downcast_ref::<Self>()?;
        Some(match (&self.tz, &other.tz) {
            (Some(_), Some(_)) => self.utc().cmp(&other.utc()),
            _ => self.local.cmp(&other.local),
        })
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.isoformat(" "))
    }
}

/// A date.
#[derive(Debug)]
struct PyDate(NaiveDate);

impl Object for PyDate {
    fn repr(self: &Arc<Self>) -> minijinja::value::ObjectRepr {
        minijinja::value::ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        Some(match key.as_str()? {
            "year" => Value::from(self.0.year()),
            "month" => Value::from(self.0.month()),
            "day" => Value::from(self.0.day()),
            _ => return None,
        })
    }

    fn call_method(
        self: &Arc<Self>,
        _: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        if let Some(r) = date_methods(self.0, method, args) {
            return r;
        }
        match method {
            "strftime" => {
                let a = bind("strftime", &["format"], args)?;
                let f = str_arg(
                    "strftime",
                    "format",
                    a[0].as_ref().unwrap_or(&Value::UNDEFINED),
                )?;
                Ok(Value::from(strftime(
                    self.0.and_time(NaiveTime::MIN),
                    None,
                    &f,
                )))
            }
            "isoformat" => {
                let () = minijinja::value::from_args(args)?;
                Ok(Value::from(date_text(self.0)))
            }
            "replace" => {
                let p = ["year", "month", "day"];
                let a = bind("replace", &p, args)?;
                let cur = [
                    self.0.year() as i64,
                    self.0.month() as i64,
                    self.0.day() as i64,
                ];
                let i = |n: usize| int_slot("replace", &p, &a, n, cur[n]);
                Ok(Value::from_object(PyDate(date_of(i(0)?, i(1)?, i(2)?)?)))
            }
            _ => Err(no_method("datetime.date", method)),
        }
    }

    fn custom_cmp(self: &Arc<Self>, other: &DynObject) -> Option<Ordering> {
        Some(self.0.cmp(&other.downcast_ref::<Self>()?.0))
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&date_text(self.0))
    }
}

/// A time of day, naive or with a tzinfo.
#[derive(Debug)]
struct PyTime(NaiveTime, Option<TzInfo>);

impl PyTime {
    fn isoformat(&self) -> String {
        let mut out = time_text(self.0);
        if let Some(tz) = &self.1 {
            out.push_str(&offset_text(tz.offset(), true));
        }
        out
    }
}

impl Object for PyTime {
    fn repr(self: &Arc<Self>) -> minijinja::value::ObjectRepr {
        minijinja::value::ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let t = &self.0;
        Some(match key.as_str()? {
            "hour" => Value::from(t.hour()),
            "minute" => Value::from(t.minute()),
            "second" => Value::from(t.second()),
            "microsecond" => Value::from(t.nanosecond() / 1000),
            "fold" => Value::from(0),
            "tzinfo" => self.1.as_ref().map_or(Value::from(()), tz_value),
            _ => return None,
        })
    }

    fn call_method(
        self: &Arc<Self>,
        _: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "isoformat" => {
                let () = minijinja::value::from_args(args)?;
                Ok(Value::from(self.isoformat()))
            }
            "strftime" => {
                let a = bind("strftime", &["format"], args)?;
                let f = str_arg(
                    "strftime",
                    "format",
                    a[0].as_ref().unwrap_or(&Value::UNDEFINED),
                )?;
                let base = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or_default();
                Ok(Value::from(strftime(
                    base.and_time(self.0),
                    self.1.as_ref(),
                    &f,
                )))
            }
            "replace" => {
                let a = bind("replace", &TIME_PARAMS, args)?;
                let t = &self.0;
                let cur = [
                    t.hour() as i64,
                    t.minute() as i64,
                    t.second() as i64,
                    (t.nanosecond() / 1000) as i64,
                ];
                let i = |n: usize| int_slot("replace", &TIME_PARAMS, &a, n, cur[n]);
                let time = time_of(i(0)?, i(1)?, i(2)?, i(3)?)?;
                let tz = match &a[4] {
                    Some(v) => tz_arg("replace", Some(v))?,
                    None => self.1.clone(),
                };
                Ok(Value::from_object(PyTime(time, tz)))
            }
            _ => Err(no_method("datetime.time", method)),
        }
    }

    fn custom_cmp(self: &Arc<Self>, other: &DynObject) -> Option<Ordering> {
        Some(self.0.cmp(&other.downcast_ref::<Self>()?.0))
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.isoformat())
    }
}

/// A duration, in microseconds.
#[derive(Debug)]
struct PyTimeDelta(i64);

fn timedelta_micros(us: i64) -> Value {
    Value::from_object(PyTimeDelta(us))
}

pub(super) fn timedelta_secs(secs: i64) -> Value {
    timedelta_micros(secs * 1_000_000)
}

impl PyTimeDelta {
    /// Python's normalised (days, seconds, microseconds).
    fn parts(&self) -> (i64, i64, i64) {
        let day = 86_400_000_000;
        let days = self.0.div_euclid(day);
        let rest = self.0.rem_euclid(day);
        (days, rest / 1_000_000, rest % 1_000_000)
    }

    fn text(&self) -> String {
        let (days, secs, us) = self.parts();
        let mut out = String::new();
        if days != 0 {
            let s = if days.abs() != 1 { "s" } else { "" };
            out.push_str(&format!("{days} day{s}, "));
        }
        out.push_str(&format!(
            "{}:{:02}:{:02}",
            secs / 3600,
            secs % 3600 / 60,
            secs % 60
        ));
        if us != 0 {
            out.push_str(&format!(".{us:06}"));
        }
        out
    }
}

impl Object for PyTimeDelta {
    fn repr(self: &Arc<Self>) -> minijinja::value::ObjectRepr {
        minijinja::value::ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let (days, secs, us) = self.parts();
        Some(match key.as_str()? {
            "days" => Value::from(days),
            "seconds" => Value::from(secs),
            "microseconds" => Value::from(us),
            _ => return None,
        })
    }

    fn call_method(
        self: &Arc<Self>,
        _: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "total_seconds" => {
                let () = minijinja::value::from_args(args)?;
                Ok(Value::from(self.0 as f64 / 1e6))
            }
            _ => Err(no_method("datetime.timedelta", method)),
        }
    }

    fn custom_cmp(self: &Arc<Self>, other: &DynObject) -> Option<Ordering> {
        Some(self.0.cmp(&other.downcast_ref::<Self>()?.0))
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text())
    }
}

/// The Python type name of a value of this module.
pub(super) fn type_name(v: &Value) -> Option<&'static str> {
    Some(if v.downcast_object_ref::<PyDateTime>().is_some() {
        "datetime.datetime"
    } else if v.downcast_object_ref::<PyDate>().is_some() {
        "datetime.date"
    } else if v.downcast_object_ref::<PyTime>().is_some() {
        "datetime.time"
    } else if v.downcast_object_ref::<PyTimeDelta>().is_some() {
        "datetime.timedelta"
    } else {
        return None;
    })
}

/// Python's `a op b` (`op a` without `b`) when an operand is a date, datetime,
/// time or timedelta: `datetime ± timedelta`, `date ± timedelta` (whole days, as
/// Python: `timedelta.days`), `datetime - datetime` (both naive or both aware),
/// `date - date`, `timedelta ± timedelta`, `timedelta * number`, `-timedelta`;
/// any other pairing is Python's `TypeError`. `None` when no operand is ours.
pub(super) fn arith(op: Op, a: &Value, b: Option<&Value>) -> Option<Result<Value, Error>> {
    if type_name(a).is_none() && b.and_then(type_name).is_none() {
        return None;
    }
    Some(arith_of(op, a, b).unwrap_or_else(|| Err(type_error(op, a, b))))
}

fn arith_of(op: Op, a: &Value, b: Option<&Value>) -> Option<Result<Value, Error>> {
    let td = |v: &Value| v.downcast_object_ref::<PyTimeDelta>().map(|t| t.0);
    fn dt(v: &Value) -> Option<&PyDateTime> {
        v.downcast_object_ref::<PyDateTime>()
    }
    let date = |v: &Value| v.downcast_object_ref::<PyDate>().map(|d| d.0);
    let Some(b) = b else {
        let d = td(a).filter(|_| op == Op::Neg)?;
        return Some(td_value(d.checked_neg()));
    };
    Some(match op {
        Op::Add | Op::Sub => {
            let sign = if op == Op::Add { 1 } else { -1 };
            if let (Some(x), Some(y)) = (td(a), td(b)) {
                return Some(td_value(y.checked_mul(sign).and_then(|y| x.checked_add(y))));
            }
            // A timedelta on the left only adds.
            let (base, delta) = match (td(a), td(b)) {
                (None, Some(d)) => (a, d),
                (Some(d), None) if op == Op::Add => (b, d),
                _ => return date_difference(op, a, b),
            };
            if let Some(t) = dt(base) {
                let local = Duration::microseconds(delta)
                    .checked_mul(sign as i32)
                    .and_then(|d| t.local.checked_add_signed(d))
                    .filter(|l| (1..=9999).contains(&l.year()));
                match local {
                    Some(local) => Ok(PyDateTime::value(local, t.tz.clone())),
                    None => Err(overflow("date value out of range")),
                }
            } else {
                let d = date(base)?;
                let days = PyTimeDelta(delta).parts().0 * sign;
                match d
                    .checked_add_signed(Duration::days(days))
                    .filter(|d| (1..=9999).contains(&d.year()))
                {
                    Some(d) => Ok(Value::from_object(PyDate(d))),
                    None => Err(overflow("result out of range")),
                }
            }
        }
        Op::Mul => {
            let (d, n) = match (td(a), td(b)) {
                (Some(d), None) => (d, b),
                (None, Some(d)) => (d, a),
                _ => return None,
            };
            if n.is_integer() || n.kind() == ValueKind::Bool {
                td_value(n.as_i64().and_then(|n| d.checked_mul(n)))
            } else if n.kind() == ValueKind::Number {
                let f = f64::try_from(n.clone()).ok()?;
                let us = (d as f64 * f).round_ties_even();
                td_value((us.is_finite() && us.abs() < i64::MAX as f64).then_some(us as i64))
            } else {
                return None;
            }
        }
        Op::Neg => return None,
    })
}

/// `datetime - datetime` and `date - date`: a timedelta.
fn date_difference(op: Op, a: &Value, b: &Value) -> Option<Result<Value, Error>> {
    if op != Op::Sub {
        return None;
    }
    if let (Some(x), Some(y)) = (
        a.downcast_object_ref::<PyDate>(),
        b.downcast_object_ref::<PyDate>(),
    ) {
        return Some(Ok(timedelta_secs((x.0 - y.0).num_days() * 86_400)));
    }
    let (x, y) = (
        a.downcast_object_ref::<PyDateTime>()?,
        b.downcast_object_ref::<PyDateTime>()?,
    );
    let diff = match (&x.tz, &y.tz) {
        (None, None) => x.local - y.local,
        (Some(_), Some(_)) => x.utc() - y.utc(),
        _ => {
            return Some(Err(py_error(
                "TypeError",
                "can't subtract offset-naive and offset-aware datetimes",
            )))
        }
    };
    Some(td_value(diff.num_microseconds()))
}

/// A timedelta of `us` microseconds, Python's `OverflowError` when out of range.
fn td_value(us: Option<i64>) -> Result<Value, Error> {
    us.map(timedelta_micros)
        .ok_or_else(|| overflow("timedelta out of range"))
}

fn overflow(msg: &str) -> Error {
    py_error("OverflowError", msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap()
    }

    #[test]
    fn datetimes_write_as_python() {
        let aware = PyDateTime {
            local: dt("2026-01-02 03:04:05.123456"),
            tz: Some(TzInfo::Utc),
        };
        assert_eq!(aware.isoformat(" "), "2026-01-02 03:04:05.123456+00:00");
        let naive = PyDateTime {
            local: dt("2026-01-02 03:04:05"),
            tz: None,
        };
        assert_eq!(naive.isoformat("T"), "2026-01-02T03:04:05");
        assert_eq!(
            strftime(
                aware.local,
                aware.tz.as_ref(),
                "%Y%m%d %H:%M:%S.%f %z %Z %% %a %j"
            ),
            "20260102 03:04:05.123456 +0000 UTC % Fri 002"
        );
        assert_eq!(strftime(naive.local, None, "[%z%Z]"), "[]");
    }

    #[test]
    fn parsing_follows_python() {
        let p = strptime("2026-09-01", "%Y-%m-%d").unwrap();
        assert_eq!(p.local, dt("2026-09-01 00:00:00"));
        assert!(p.tz.is_none());
        let p = strptime("10:30", "%H:%M").unwrap();
        assert_eq!(p.local, dt("1900-01-01 10:30:00"));
        assert!(strptime("2026-13-01", "%Y-%m-%d").is_err());
        let p = fromisoformat("2026-08-15T12:00:00+00:00").unwrap();
        assert_eq!(
            (p.local, p.tz.map(|t| t.offset())),
            (dt("2026-08-15 12:00:00"), Some(0))
        );
        let p = fromisoformat("2026-09-01 00:00:00.5-07:00").unwrap();
        assert_eq!(p.isoformat(" "), "2026-09-01 00:00:00.500000-07:00");
        assert!(fromisoformat("2026-09-01X").is_err());
    }

    #[test]
    fn timedeltas_write_as_python() {
        let t = |us: i64| PyTimeDelta(us).text();
        assert_eq!(t(0), "0:00:00");
        assert_eq!(t(86_400_000_000 * 2 + 3_723_000_000), "2 days, 1:02:03");
        assert_eq!(t(-1_000_000), "-1 day, 23:59:59");
        assert_eq!(t(500_000), "0:00:00.500000");
    }
}
