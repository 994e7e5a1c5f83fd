//! Calendar arithmetic on day numbers and microsecond timestamps, and their text
//! forms as PostgreSQL prints them. Hand-written so the output does not depend on
//! anything but integer arithmetic.

use chrono::{Datelike, NaiveDate};
use std::fmt::Write as _;

use super::{Micros, DAY, HOUR, MIN, SEC};

/// Day number (days since 1970-01-01) of a chrono date.
pub(super) fn day_number(date: NaiveDate) -> i64 {
    // 719_163 is the day count of 1970-01-01 from 0001-01-01 (chrono's "CE" day 1).
    i64::from(date.num_days_from_ce()) - 719_163
}

/// (year, month, day) of a day number, by the proleptic Gregorian calendar. Works in
/// 400-year eras (146 097 days) counted from 0000-03-01, so that leap days fall at
/// the end of each year of the era.
pub(super) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468; // days from 0000-03-01
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, 0..146096
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365; // year of era
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of year from March 1st
    let mp = (5 * doy + 2) / 153; // month from March, 0..11
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Inverse of [`civil_from_days`].
pub(super) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `t` plus `months` calendar months, the day clamped to the target month's length
/// (Jan 31 + 1 month = Feb 28/29), as Stripe bills monthly plans.
pub(super) fn add_months(t: Micros, months: i64) -> Micros {
    let days = t.div_euclid(DAY);
    let time = t.rem_euclid(DAY);
    let (y, m, d) = civil_from_days(days);
    let total = y * 12 + i64::from(m) - 1 + months;
    let (ny, nm) = (total.div_euclid(12), (total.rem_euclid(12) + 1) as u32);
    let next_first = if nm == 12 {
        days_from_civil(ny + 1, 1, 1)
    } else {
        days_from_civil(ny, nm + 1, 1)
    };
    let month_len = (next_first - days_from_civil(ny, nm, 1)) as u32;
    days_from_civil(ny, nm, d.min(month_len)) * DAY + time
}

/// 0 = Monday ... 6 = Sunday (1970-01-01 was a Thursday).
pub(super) fn weekday(day: i64) -> usize {
    (day + 3).rem_euclid(7) as usize
}

/// Appends `value` in decimal, zero-padded to `width` digits. Hand-written because
/// timestamps are most of the output and `format!` padding is several times slower.
fn push_padded(out: &mut String, value: i64, width: usize) {
    if value < 0 {
        // Only reachable for years before 1 CE; not worth a fast path.
        let _ = write!(out, "{value:0width$}");
        return;
    }
    let mut digits = [b'0'; 20];
    let mut v = value as u64;
    let mut n = 0;
    while v > 0 || n == 0 {
        digits[19 - n] = b'0' + (v % 10) as u8;
        v /= 10;
        n += 1;
    }
    for _ in n..width {
        out.push('0');
    }
    for &d in &digits[20 - n..] {
        out.push(char::from(d));
    }
}

/// Appends `value` in decimal.
pub(super) fn push_int(out: &mut String, value: i64) {
    if value < 0 {
        out.push('-');
        // i64::MIN has no positive counterpart; the generator never writes it.
        push_padded(out, value.checked_neg().unwrap_or(i64::MAX), 1);
    } else {
        push_padded(out, value, 1);
    }
}

pub(super) fn push_date(out: &mut String, day: i64) {
    let (y, m, d) = civil_from_days(day);
    push_padded(out, y, 4);
    out.push('-');
    push_padded(out, i64::from(m), 2);
    out.push('-');
    push_padded(out, i64::from(d), 2);
}

/// `YYYY-MM-DD HH:MM:SS[.ffffff]`: the fraction only when it is not zero, as
/// PostgreSQL prints a `timestamp`.
pub(super) fn push_timestamp(out: &mut String, t: Micros) {
    let day = t.div_euclid(DAY);
    let rem = t.rem_euclid(DAY);
    push_date(out, day);
    out.push(' ');
    push_padded(out, rem / HOUR, 2);
    out.push(':');
    push_padded(out, rem % HOUR / MIN, 2);
    out.push(':');
    push_padded(out, rem % MIN / SEC, 2);
    let frac = rem % SEC;
    if frac != 0 {
        out.push('.');
        push_padded(out, frac, 6);
    }
}

pub(super) fn floor_to(t: Micros, unit: Micros) -> Micros {
    t - t.rem_euclid(unit)
}
