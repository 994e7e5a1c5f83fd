//! `modules.pytz` and the time zones of datetimes: `pytz.timezone(name)` (the
//! IANA database, from chrono-tz), `pytz.utc`, `FixedOffset`, a zone's
//! `localize`/`normalize`, and [`TzInfo`], the `tzinfo` a datetime carries.
//!
//! pytz's rules kept: a zone passed straight as `tzinfo=` is in its first period
//! (mostly local mean time, `-07:53` for Los Angeles), while `localize` picks the
//! period of the local time (the standard one of an ambiguous or missing time,
//! `is_dst=False`); offsets are rounded to the minute.

use std::sync::Arc;

use chrono::{Duration, NaiveDate, NaiveDateTime, Offset, TimeZone};
use chrono_tz::{OffsetComponents, OffsetName, Tz};
use minijinja::value::{from_args, Object};
use minijinja::{Error, State, Value};

use super::datetime::PyDateTime;
use super::{bind, no_method, py_error, str_arg, unsupported_value};

/// The tzinfo of an aware datetime or time.
#[derive(Debug, Clone)]
pub(super) enum TzInfo {
    /// `pytz.utc` (and `pytz.timezone('UTC')`).
    Utc,
    /// A pytz zone in one of its periods: offset and DST part in seconds, its
    /// abbreviation.
    Zone {
        tz: Tz,
        offset: i32,
        dst: i32,
        abbr: String,
    },
    /// A fixed offset in seconds: Python's `datetime.timezone` (from
    /// `fromisoformat`, `strptime`'s `%z`) or `pytz.FixedOffset` (minutes).
    Fixed { offset: i32, pytz: bool },
}

/// pytz's rounding of an offset to the minute.
fn round_minute(secs: i32) -> i32 {
    (secs + 30).div_euclid(60) * 60
}

impl TzInfo {
    pub(super) fn offset(&self) -> i32 {
        match self {
            TzInfo::Utc => 0,
            TzInfo::Zone { offset, .. } | TzInfo::Fixed { offset, .. } => *offset,
        }
    }

    /// `tzname()`.
    pub(super) fn tzname(&self) -> Option<String> {
        match self {
            TzInfo::Utc => Some("UTC".into()),
            TzInfo::Zone { abbr, .. } => Some(abbr.clone()),
            TzInfo::Fixed { pytz: true, .. } => None,
            TzInfo::Fixed { offset: 0, .. } => Some("UTC".into()),
            TzInfo::Fixed { offset, .. } => Some(format!("UTC{}", offset_text(*offset, true))),
        }
    }

    /// `dst()` in seconds, `None` where Python's is `None`.
    pub(super) fn dst(&self) -> Option<i32> {
        match self {
            TzInfo::Utc => Some(0),
            TzInfo::Zone { dst, .. } => Some(*dst),
            TzInfo::Fixed { pytz: true, .. } => Some(0),
            TzInfo::Fixed { .. } => None,
        }
    }

    /// A zone's period at a UTC instant.
    fn zone_at_utc(tz: Tz, utc: NaiveDateTime) -> TzInfo {
        let o = tz.offset_from_utc_datetime(&utc);
        TzInfo::Zone {
            tz,
            offset: round_minute(o.fix().local_minus_utc()),
            dst: round_minute(o.dst_offset().num_seconds() as i32),
            abbr: o.abbreviation().unwrap_or_default().to_string(),
        }
    }

    /// The first period of a zone: what a pytz zone is before `localize`.
    fn zone_first(tz: Tz) -> TzInfo {
        let early = NaiveDate::from_ymd_opt(1, 1, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .unwrap_or_default();
        TzInfo::zone_at_utc(tz, early)
    }

    /// The same zone at a UTC instant (`normalize`, `astimezone`).
    pub(super) fn at_utc(&self, utc: NaiveDateTime) -> TzInfo {
        match self {
            TzInfo::Zone { tz, .. } => TzInfo::zone_at_utc(*tz, utc),
            other => other.clone(),
        }
    }

    /// The zone's period of a local time, as `localize(dt, is_dst)`.
    fn at_local(&self, local: NaiveDateTime, is_dst: bool) -> TzInfo {
        let TzInfo::Zone { tz, .. } = self else {
            return self.clone();
        };
        let tz = *tz;
        let period = |off: &<Tz as TimeZone>::Offset| {
            // The UTC instant of `local` in that period, and the period there.
            TzInfo::zone_at_utc(
                tz,
                local - Duration::seconds(off.fix().local_minus_utc() as i64),
            )
        };
        match tz.offset_from_local_datetime(&local) {
            chrono::LocalResult::Single(o) => period(&o),
            chrono::LocalResult::Ambiguous(a, b) => {
                let a_dst = a.dst_offset().num_seconds() != 0;
                if a_dst == is_dst {
                    period(&a)
                } else {
                    period(&b)
                }
            }
            chrono::LocalResult::None => {
                // A time in a gap: the period before it (standard time going
                // into summer time) or after it.
                let probe = if is_dst {
                    local + Duration::days(1)
                } else {
                    local - Duration::days(1)
                };
                let o = tz.offset_from_utc_datetime(&probe);
                let mut p = TzInfo::zone_at_utc(tz, probe);
                if let TzInfo::Zone { offset, .. } = &mut p {
                    *offset = round_minute(o.fix().local_minus_utc());
                }
                p
            }
        }
    }

    /// `str()` of the tzinfo object.
    fn text(&self) -> String {
        match self {
            TzInfo::Utc => "UTC".into(),
            TzInfo::Zone { tz, .. } => tz.name().to_string(),
            TzInfo::Fixed { pytz: true, offset } => {
                format!("pytz.FixedOffset({})", offset / 60)
            }
            TzInfo::Fixed { .. } => self.tzname().unwrap_or_default(),
        }
    }
}

/// `+HH:MM` (with `:SS` when there are seconds); without colons for `%z`.
pub(super) fn offset_text(offset: i32, colon: bool) -> String {
    let sign = if offset < 0 { '-' } else { '+' };
    let a = offset.abs();
    let (h, m, s) = (a / 3600, a % 3600 / 60, a % 60);
    let sep = if colon { ":" } else { "" };
    let mut out = format!("{sign}{h:02}{sep}{m:02}");
    if s != 0 {
        out.push_str(&format!("{sep}{s:02}"));
    }
    out
}

/// A tzinfo as a template value: `pytz.timezone(…)`, `pytz.utc`, `dt.tzinfo`.
#[derive(Debug)]
pub(super) struct PyTz(pub(super) TzInfo);

pub(super) fn tz_value(tz: &TzInfo) -> Value {
    Value::from_object(PyTz(tz.clone()))
}

/// The tzinfo a `tzinfo=` argument names (`None` is naive).
pub(super) fn tz_arg(func: &str, v: Option<&Value>) -> Result<Option<TzInfo>, Error> {
    match v {
        None => Ok(None),
        Some(v) if v.is_none() => Ok(None),
        Some(v) => match v.downcast_object_ref::<PyTz>() {
            Some(t) => Ok(Some(t.0.clone())),
            None => Err(py_error(
                "TypeError",
                format!("{func}(): tzinfo argument must be None or a tzinfo, not {v:?}"),
            )),
        },
    }
}

/// `pytz.timezone(name)`: case-insensitive, as pytz looks names up.
fn timezone(name: &str) -> Result<TzInfo, Error> {
    if name.eq_ignore_ascii_case("UTC") {
        return Ok(TzInfo::Utc);
    }
    let tz = name.parse::<Tz>().ok().or_else(|| {
        chrono_tz::TZ_VARIANTS
            .iter()
            .find(|t| t.name().eq_ignore_ascii_case(name))
            .copied()
    });
    match tz {
        Some(tz) => Ok(TzInfo::zone_first(tz)),
        None => Err(py_error(
            "UnknownTimeZoneError",
            crate::project::py_str(name),
        )),
    }
}

impl Object for PyTz {
    fn repr(self: &Arc<Self>) -> minijinja::value::ObjectRepr {
        minijinja::value::ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "zone" => Some(match &self.0 {
                TzInfo::Utc => Value::from("UTC"),
                TzInfo::Zone { tz, .. } => Value::from(tz.name()),
                TzInfo::Fixed { .. } => Value::from(()),
            }),
            _ => None,
        }
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let dt_of = |v: &Option<Value>, func: &str| -> Result<PyDateTime, Error> {
            v.as_ref()
                .and_then(|v| v.downcast_object_ref::<PyDateTime>())
                .cloned()
                .ok_or_else(|| py_error("TypeError", format!("{func}() expects a datetime")))
        };
        match method {
            "localize" => {
                let a = bind("localize", &["dt", "is_dst"], args)?;
                let dt = dt_of(&a[0], "localize")?;
                if dt.tz.is_some() {
                    return Err(py_error(
                        "ValueError",
                        "Not naive datetime (tzinfo is already set)",
                    ));
                }
                let is_dst = a[1].as_ref().is_some_and(Value::is_true);
                let tz = self.0.at_local(dt.local, is_dst);
                Ok(PyDateTime::value(dt.local, Some(tz)))
            }
            "normalize" => {
                let a = bind("normalize", &["dt"], args)?;
                let dt = dt_of(&a[0], "normalize")?;
                if dt.tz.is_none() {
                    return Err(py_error("ValueError", "Naive time - no tzinfo set"));
                }
                Ok(dt.astimezone(&self.0))
            }
            "utcoffset" | "dst" | "tzname" => {
                let a = bind(method, &["dt", "is_dst"], args)?;
                let is_dst = a[1].as_ref().is_some_and(Value::is_true);
                let period = match a[0].as_ref() {
                    Some(v) if !v.is_none() => {
                        let dt = dt_of(&a[0], method)?;
                        self.0.at_local(dt.local, is_dst)
                    }
                    _ => self.0.clone(),
                };
                Ok(match method {
                    "utcoffset" => super::datetime::timedelta_secs(period.offset() as i64),
                    "dst" => match period.dst() {
                        Some(d) => super::datetime::timedelta_secs(d as i64),
                        None => Value::from(()),
                    },
                    _ => Value::from(period.tzname()),
                })
            }
            _ => Err(no_method("pytz timezone", method)),
        }
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.text())
    }
}

/// `modules.pytz`.
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
        Some(match name {
            "utc" | "UTC" => tz_value(&TzInfo::Utc),
            "all_timezones" | "common_timezones" => Value::from(
                chrono_tz::TZ_VARIANTS
                    .iter()
                    .map(|t| t.name())
                    .collect::<Vec<_>>(),
            ),
            "timezone" | "FixedOffset" => return None,
            "country_timezones"
            | "country_names"
            | "AmbiguousTimeError"
            | "InvalidTimeError"
            | "NonExistentTimeError"
            | "UnknownTimeZoneError"
            | "all_timezones_set"
            | "common_timezones_set"
            | "BaseTzInfo" => unsupported_value(&format!("modules.pytz.{name}")),
            _ => return None,
        })
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "timezone" => {
                let (name,): (Value,) = from_args(args)?;
                let name = str_arg("timezone", "zone", &name)?;
                Ok(tz_value(&timezone(&name)?))
            }
            "FixedOffset" => {
                let a = bind("FixedOffset", &["offset"], args)?;
                let minutes = super::int_arg(
                    "FixedOffset",
                    "offset",
                    a[0].as_ref().unwrap_or(&Value::from(0)),
                )?;
                if minutes == 0 {
                    return Ok(tz_value(&TzInfo::Utc));
                }
                Ok(tz_value(&TzInfo::Fixed {
                    offset: (minutes * 60) as i32,
                    pytz: true,
                }))
            }
            _ => Err(super::unsupported(&format!("modules.pytz.{method}"))),
        }
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<module 'pytz'>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zone_before_localize_is_in_local_mean_time() {
        let TzInfo::Zone { offset, abbr, .. } = timezone("America/Los_Angeles").unwrap() else {
            panic!("not a zone")
        };
        assert_eq!((offset, abbr.as_str()), (-(7 * 3600 + 53 * 60), "LMT"));
        assert!(matches!(timezone("utc").unwrap(), TzInfo::Utc));
        assert!(timezone("Mars/Olympus").is_err());
    }

    #[test]
    fn localize_picks_the_period_of_the_local_time() {
        let la = timezone("america/los_angeles").unwrap();
        let t = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
        assert_eq!(
            la.at_local(t("2026-08-01 12:00"), false).offset(),
            -7 * 3600
        );
        assert_eq!(
            la.at_local(t("2026-01-01 12:00"), false).offset(),
            -8 * 3600
        );
        // 01:30 happens twice on 2026-11-01: is_dst=False is the standard one.
        assert_eq!(
            la.at_local(t("2026-11-01 01:30"), false).offset(),
            -8 * 3600
        );
        assert_eq!(la.at_local(t("2026-11-01 01:30"), true).offset(), -7 * 3600);
        assert_eq!(offset_text(-(7 * 3600 + 53 * 60), true), "-07:53");
    }
}
