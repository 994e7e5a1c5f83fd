//! Microbatch models (`incremental_strategy='microbatch'`) as typed data: their
//! configs (`event_time`, `batch_size`, `begin`, `lookback`,
//! `concurrent_batches`), checked as dbt checks them when the project loads, and
//! the calendar arithmetic of their batches, as dbt-core 1.10 computes them: a
//! run's batches go from the start of the batch holding `--event-time-start` (or
//! `begin` when the table is built from scratch, or `lookback` batches before the
//! end otherwise) to the end of the batch holding `--event-time-end` (or now), in
//! UTC; each batch is the window `[start, end)`.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc};
use serde_json::{Map, Value as Json};

/// A batch: its window `[start, end)`.
pub(crate) type Batch = (DateTime<Utc>, DateTime<Utc>);

/// `batch_size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BatchSize {
    Hour,
    Day,
    Month,
    Year,
}

/// The microbatch configs of a model.
#[derive(Debug, Clone)]
pub(crate) struct Microbatch {
    pub(crate) batch_size: BatchSize,
    pub(crate) begin: DateTime<Utc>,
    pub(crate) lookback: u32,
}

/// `--event-time-start`/`--event-time-end` of `run` and `build`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EventWindow {
    pub(crate) start: DateTime<Utc>,
    pub(crate) end: DateTime<Utc>,
}

impl EventWindow {
    /// Both flags or neither, start before end, as dbt validates them.
    pub(crate) fn of(
        start: Option<&str>,
        end: Option<&str>,
    ) -> Result<Option<EventWindow>, String> {
        let parse = |flag: &str, v: &str| {
            parse_event_time(v).ok_or_else(|| {
                format!("--{flag} '{v}' is not a date or time; write it as 2024-01-31, 2024-01-31T06:00:00 or '2024-01-31 06:00:00'")
            })
        };
        match (start, end) {
            (None, None) => Ok(None),
            (None, Some(_)) => Err("The flag `--event-time-end` was specified, but `--event-time-start` was not. When specifying `--event-time-end`, `--event-time-start` must also be present.".to_string()),
            (Some(_), None) => Err("The flag `--event-time-start` was specified, but `--event-time-end` was not. When specifying `--event-time-start`, `--event-time-end` must also be present.".to_string()),
            (Some(s), Some(e)) => {
                let (start, end) = (parse("event-time-start", s)?, parse("event-time-end", e)?);
                if start >= end {
                    return Err("Value for `--event-time-start` must be less than `--event-time-end`".to_string());
                }
                Ok(Some(EventWindow { start, end }))
            }
        }
    }
}

/// A date or time as dbt reads `begin` and the `--event-time-*` flags (ISO
/// format, a space or `T` between date and time, an optional offset), in UTC.
pub(crate) fn parse_event_time(text: &str) -> Option<DateTime<Utc>> {
    let t = text.trim();
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Some(Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0)?));
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(&t.replacen(' ', "T", 1)) {
        return Some(dt.with_timezone(&Utc));
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(t, fmt) {
            return Some(Utc.from_utc_datetime(&dt));
        }
    }
    None
}

/// Whether `config` makes a microbatch model.
pub(crate) fn is_microbatch(config: &Map<String, Json>) -> bool {
    config.get("materialized").and_then(Json::as_str) == Some("incremental")
        && config.get("incremental_strategy").and_then(Json::as_str) == Some("microbatch")
}

impl Microbatch {
    /// The microbatch configs of model `name`, or dbt's parsing error for a
    /// missing or invalid one; `None` when it is no microbatch model.
    pub(crate) fn of(name: &str, config: &Map<String, Json>) -> Result<Option<Microbatch>, String> {
        if !is_microbatch(config) {
            return Ok(None);
        }
        let get = |k: &str| config.get(k).filter(|v| !v.is_null());
        // Its own `event_time` filters it where another microbatch model reads it.
        match get("event_time") {
            None => return Err(format!("Microbatch model '{name}' must provide an 'event_time' (string) config that indicates the name of the event time column.")),
            Some(Json::String(_)) => {}
            Some(_) => return Err(format!("Microbatch model '{name}' must provide an 'event_time' config of type string.")),
        }
        let begin = match get("begin") {
            None => return Err(format!("Microbatch model '{name}' must provide a 'begin' (datetime) config that indicates the earliest timestamp the microbatch model should be built from.")),
            Some(b) => b
                .as_str()
                .and_then(parse_event_time)
                .ok_or_else(|| format!("Microbatch model '{name}' must provide a 'begin' config of valid datetime (ISO format), but got: {}.", b.as_str().map_or(b.to_string(), str::to_string)))?,
        };
        let batch_size = match get("batch_size").and_then(Json::as_str) {
            Some("hour") => BatchSize::Hour,
            Some("day") => BatchSize::Day,
            Some("month") => BatchSize::Month,
            Some("year") => BatchSize::Year,
            other => return Err(format!("Microbatch model '{name}' must provide a 'batch_size' config that is one of ['hour', 'day', 'month', 'year'], but got: {}.", other.unwrap_or("None"))),
        };
        let lookback = match get("lookback") {
            None => 1,
            Some(v) => v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| format!("Microbatch model '{name}' must provide the optional 'lookback' config as a whole number."))?,
        };
        if get("concurrent_batches").is_some_and(|v| !v.is_boolean()) {
            return Err(format!("Microbatch model '{name}' optional 'concurrent_batches' config must be true or false."));
        }
        Ok(Some(Microbatch {
            batch_size,
            begin,
            lookback,
        }))
    }

    /// The batches of a run ending at `now` (or the window's end): from the
    /// window's start, else from `begin` when `incremental` is false, else
    /// `lookback` batches before the end's batch.
    pub(crate) fn batches(
        &self,
        incremental: bool,
        window: Option<EventWindow>,
        now: DateTime<Utc>,
    ) -> Vec<Batch> {
        let size = self.batch_size;
        let end = ceiling(window.map_or(now, |w| w.end), size);
        let start = match window {
            Some(w) => truncate(w.start, size),
            None if !incremental => truncate(self.begin, size),
            None => {
                // The end is a batch boundary, so the last batch ends there and
                // the lookback counts from the batch before it (dbt's rule).
                let mut lookback = self.lookback as i64;
                if end == truncate(end, size) {
                    lookback += 1;
                }
                offset(end, size, -lookback)
            }
        };
        let mut batches = Vec::new();
        let mut from = start;
        loop {
            let to = offset(from, size, 1);
            batches.push((from, to));
            if to >= end {
                break;
            }
            from = to;
        }
        // The last batch stops at the end itself, as in dbt.
        if let Some(last) = batches.last_mut() {
            last.1 = end;
        }
        batches
    }
}

/// The start of the batch holding `t`.
pub(crate) fn truncate(t: DateTime<Utc>, size: BatchSize) -> DateTime<Utc> {
    let (y, m, d, h) = match size {
        BatchSize::Hour => (t.year(), t.month(), t.day(), t.hour()),
        BatchSize::Day => (t.year(), t.month(), t.day(), 0),
        BatchSize::Month => (t.year(), t.month(), 1, 0),
        BatchSize::Year => (t.year(), 1, 1, 0),
    };
    Utc.with_ymd_and_hms(y, m, d, h, 0, 0).single().unwrap_or(t)
}

/// `n` batches after (before, when negative) the start of the batch holding `t`.
pub(crate) fn offset(t: DateTime<Utc>, size: BatchSize, n: i64) -> DateTime<Utc> {
    let t = truncate(t, size);
    match size {
        BatchSize::Hour => t + Duration::hours(n),
        BatchSize::Day => t + Duration::days(n),
        BatchSize::Month => {
            let months = t.year() as i64 * 12 + t.month0() as i64 + n;
            Utc.with_ymd_and_hms(
                months.div_euclid(12) as i32,
                months.rem_euclid(12) as u32 + 1,
                1,
                0,
                0,
                0,
            )
            .single()
            .unwrap_or(t)
        }
        BatchSize::Year => Utc
            .with_ymd_and_hms(t.year() + n as i32, 1, 1, 0, 0, 0)
            .single()
            .unwrap_or(t),
    }
}

/// The end of the batch holding `t`, or `t` when it is a batch boundary.
pub(crate) fn ceiling(t: DateTime<Utc>, size: BatchSize) -> DateTime<Utc> {
    let start = truncate(t, size);
    if start == t {
        t
    } else {
        offset(start, size, 1)
    }
}

/// How dbt names a batch by its start: `2024-09-17T16`, `2024-09-17`,
/// `2024-09`, `2024`.
pub(crate) fn format_batch_start(start: DateTime<Utc>, size: BatchSize) -> String {
    start
        .format(match size {
            BatchSize::Year => "%Y",
            BatchSize::Month => "%Y-%m",
            BatchSize::Day => "%Y-%m-%d",
            BatchSize::Hour => "%Y-%m-%dT%H",
        })
        .to_string()
}

/// `model.batch.id`: the batch's start without dashes (`20240917`).
pub(crate) fn batch_id(start: DateTime<Utc>, size: BatchSize) -> String {
    format_batch_start(start, size).replace('-', "")
}

/// A time as Python prints a UTC datetime (`2024-03-01 00:00:00+00:00`), as dbt
/// renders a batch's bounds in SQL and in `model.batch`.
pub(crate) fn python_str(t: DateTime<Utc>) -> String {
    if t.nanosecond() == 0 {
        t.format("%Y-%m-%d %H:%M:%S+00:00").to_string()
    } else {
        t.format("%Y-%m-%d %H:%M:%S%.6f+00:00").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        parse_event_time(s).unwrap()
    }

    fn model(size: BatchSize, lookback: u32) -> Microbatch {
        Microbatch {
            batch_size: size,
            begin: t("2024-01-01"),
            lookback,
        }
    }

    #[test]
    fn arithmetic_follows_dbt() {
        let x = t("2024-09-17 16:06:00");
        assert_eq!(offset(x, BatchSize::Hour, -1), t("2024-09-17 15:00"));
        assert_eq!(offset(x, BatchSize::Day, 1), t("2024-09-18"));
        assert_eq!(offset(x, BatchSize::Month, -1), t("2024-08-01"));
        assert_eq!(offset(x, BatchSize::Month, 4), t("2025-01-01"));
        assert_eq!(offset(x, BatchSize::Year, -1), t("2023-01-01"));
        assert_eq!(ceiling(x, BatchSize::Day), t("2024-09-18"));
        assert_eq!(ceiling(t("2024-09-17"), BatchSize::Day), t("2024-09-17"));
        assert_eq!(format_batch_start(x, BatchSize::Hour), "2024-09-17T16");
        assert_eq!(batch_id(t("2024-09-17"), BatchSize::Day), "20240917");
        assert_eq!(python_str(t("2024-03-01")), "2024-03-01 00:00:00+00:00");
    }

    #[test]
    fn batches_of_a_window_a_begin_and_a_lookback() {
        let w = EventWindow::of(Some("2024-03-01"), Some("2024-03-03 12:00:00"))
            .unwrap()
            .unwrap();
        let b = model(BatchSize::Day, 1).batches(true, Some(w), t("2030-01-01"));
        assert_eq!(
            b,
            vec![
                (t("2024-03-01"), t("2024-03-02")),
                (t("2024-03-02"), t("2024-03-03")),
                (t("2024-03-03"), t("2024-03-04")),
            ]
        );
        let now = t("2024-01-03 10:00");
        assert_eq!(model(BatchSize::Day, 1).batches(false, None, now).len(), 3);
        let b = model(BatchSize::Day, 1).batches(true, None, now);
        assert_eq!(
            b,
            vec![
                (t("2024-01-02"), t("2024-01-03")),
                (t("2024-01-03"), t("2024-01-04"))
            ]
        );
        assert_eq!(model(BatchSize::Day, 3).batches(true, None, now).len(), 4);
    }

    #[test]
    fn flags_are_checked_as_dbt_checks_them() {
        assert!(EventWindow::of(Some("2024-03-01"), None).is_err());
        assert!(EventWindow::of(None, Some("2024-03-01")).is_err());
        assert!(EventWindow::of(Some("2024-03-02"), Some("2024-03-01")).is_err());
        assert!(EventWindow::of(Some("yesterday"), Some("2024-03-01")).is_err());
        assert_eq!(EventWindow::of(None, None), Ok(None));
    }
}
