//! One CSV value as dbt's type tester sees it (agate's types as dbt-common
//! configures them): whether it is NULL, a number (and how many decimal places
//! it has), a date, a timestamp (two formats) or a boolean, and the text
//! PostgreSQL reads for it. Each parser follows the rules dbt's libraries apply,
//! described in tests/dbt/NOTES.md ("Seeds"); they are written from that
//! description, not translated from them.

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime};

/// Python's `str.strip()`: Unicode whitespace and the ASCII separators U+001C–U+001F.
pub(crate) fn py_strip(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
}

/// NULL for every type: empty or `null` (any case), around whitespace.
pub(crate) fn is_null(s: &str) -> bool {
    let t = py_strip(s);
    t.is_empty() || t.eq_ignore_ascii_case("null")
}

// ------------------------------------------------------------------ numbers

/// A decimal number as Python's `Decimal` holds it after agate's cast: sign,
/// coefficient digits (no leading zeros; "0" for zero) and exponent, or a
/// non-finite value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decimal {
    Finite {
        negative: bool,
        digits: String,
        exponent: i64,
    },
    /// NaN or ±Infinity (skipped when counting decimal places; sent as NaN).
    NonFinite,
}

/// The currency symbols agate strips from both ends of a number, in its order.
const CURRENCY: &[char] = &[
    '؋', '$', 'ƒ', '៛', '¥', '₡', '₱', '£', '€', '¢', '﷼', '₪', '₩', '₭', '₮', '₦', '฿', '₤', '₫',
];

/// Python's decimal precision (28 significant digits).
const PRECISION: usize = 28;

/// A number as agate reads one in the en_US locale: whitespace trimmed, `%`
/// trimmed from both ends, a leading `-` taken as the sign, currency symbols
/// trimmed, grouping commas removed, then Python's decimal syntax (which also
/// ignores underscores), the result rounded to 28 significant digits.
/// `None`: not a number. Callers check [`is_null`] first.
pub(crate) fn parse_number(s: &str) -> Option<Decimal> {
    let mut d = py_strip(s).trim_matches('%');
    let mut negative = false;
    if let Some(rest) = d.strip_prefix('-') {
        d = rest;
        negative = true;
    }
    for sym in CURRENCY {
        d = d.trim_matches(*sym);
    }
    let cleaned: String = d.chars().filter(|c| *c != ',').collect();
    let mut dec = parse_python_decimal(&cleaned)?;
    if let Decimal::Finite {
        negative: n,
        digits,
        exponent,
    } = &mut dec
    {
        *n ^= negative;
        round_to_precision(digits, exponent);
    }
    Some(dec)
}

/// Python's `Decimal(str)`: surrounding whitespace and every underscore ignored,
/// `[sign] (digits [. [digits]] | . digits) [e [sign] digits]`, `inf`,
/// `infinity`, `nan[digits]`; a signalling NaN is refused (agate's
/// multiplication by the sign raises on it).
fn parse_python_decimal(s: &str) -> Option<Decimal> {
    let t: String = py_strip(s).chars().filter(|c| *c != '_').collect();
    let (negative, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t.as_str()),
    };
    let lower = body.to_ascii_lowercase();
    if lower == "inf" || lower == "infinity" {
        return Some(Decimal::NonFinite);
    }
    if let Some(payload) = lower.strip_prefix("nan") {
        return payload
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then_some(Decimal::NonFinite);
    }
    let (mantissa, exp) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int_part, frac_part) = match mantissa.find('.') {
        Some(i) => (&mantissa[..i], &mantissa[i + 1..]),
        None => (mantissa, ""),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    if !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac_part.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let mut exponent: i64 = 0;
    if let Some(e) = exp {
        let (eneg, edigits) = match e.as_bytes().first() {
            Some(b'-') => (true, &e[1..]),
            Some(b'+') => (false, &e[1..]),
            _ => (false, e),
        };
        if edigits.is_empty() || !edigits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // Exponents this large make the value unusable anyway; keep them bounded.
        let v: i64 = edigits.trim_start_matches('0').parse().unwrap_or(
            if edigits.trim_start_matches('0').is_empty() {
                0
            } else {
                i64::MAX / 4
            },
        );
        let v = v.min(i64::MAX / 4);
        exponent = if eneg { -v } else { v };
    }
    exponent -= frac_part.len() as i64;
    let all = format!("{int_part}{frac_part}");
    let digits = all.trim_start_matches('0');
    Some(Decimal::Finite {
        negative,
        digits: if digits.is_empty() {
            "0".into()
        } else {
            digits.into()
        },
        exponent,
    })
}

/// Rounds a coefficient to 28 significant digits, half to even (what the
/// multiplication by ±1 in agate's cast does).
fn round_to_precision(digits: &mut String, exponent: &mut i64) {
    if digits.len() <= PRECISION {
        return;
    }
    let drop = digits.len() - PRECISION;
    let (keep, rest) = digits.split_at(PRECISION);
    let first = rest.as_bytes()[0];
    let tail_nonzero = rest[1..].bytes().any(|b| b != b'0');
    let last_odd = (keep.as_bytes()[PRECISION - 1] - b'0') % 2 == 1;
    let up = first > b'5' || (first == b'5' && (tail_nonzero || last_odd));
    let mut kept: Vec<u8> = keep.bytes().collect();
    if up {
        let mut i = kept.len();
        loop {
            if i == 0 {
                kept.insert(0, b'1');
                break;
            }
            i -= 1;
            if kept[i] == b'9' {
                kept[i] = b'0';
            } else {
                kept[i] += 1;
                break;
            }
        }
    }
    let mut exp = *exponent + drop as i64;
    if kept.len() > PRECISION {
        kept.pop();
        exp += 1;
    }
    *digits = String::from_utf8(kept).unwrap_or_default();
    *exponent = exp;
}

impl Decimal {
    /// Digits before and after the point once trailing zeros are dropped
    /// (Python's `normalize()`), as agate's MaxPrecision counts them.
    pub(crate) fn places(&self) -> Option<(i64, i64)> {
        let Decimal::Finite {
            digits, exponent, ..
        } = self
        else {
            return None;
        };
        if digits == "0" {
            return Some((1, 0));
        }
        let trimmed = digits.trim_end_matches('0');
        let exp = exponent + (digits.len() - trimmed.len()) as i64;
        let whole = trimmed.len() as i64 + exp;
        Some((whole, -exp))
    }

    /// The value as Python prints a `Decimal` (what dbt's driver sends): plain
    /// notation unless the exponent is positive or the number very small, then
    /// scientific; NaN for non-finite values.
    pub(crate) fn to_python_string(&self) -> String {
        let Decimal::Finite {
            negative,
            digits,
            exponent,
        } = self
        else {
            return "NaN".into();
        };
        let sign = if *negative { "-" } else { "" };
        let n = digits.len() as i64;
        let adjusted = exponent + n - 1;
        if *exponent <= 0 && adjusted >= -6 {
            if *exponent == 0 {
                return format!("{sign}{digits}");
            }
            let point = n + exponent;
            if point > 0 {
                let (a, b) = digits.split_at(point as usize);
                format!("{sign}{a}.{b}")
            } else {
                format!("{sign}0.{}{digits}", "0".repeat((-point) as usize))
            }
        } else {
            let (a, b) = digits.split_at(1);
            let frac = if b.is_empty() {
                String::new()
            } else {
                format!(".{b}")
            };
            let esign = if adjusted >= 0 { "+" } else { "" };
            format!("{sign}{a}{frac}E{esign}{adjusted}")
        }
    }

    /// The value as a whole number's digits (for an `integer` column, whose
    /// values all have no decimal places); NaN for non-finite values.
    pub(crate) fn to_integer_string(&self) -> String {
        let Decimal::Finite {
            negative,
            digits,
            exponent,
        } = self
        else {
            return "NaN".into();
        };
        if digits == "0" {
            return "0".into();
        }
        let trimmed = digits.trim_end_matches('0');
        let exp = exponent + (digits.len() - trimmed.len()) as i64;
        let sign = if *negative { "-" } else { "" };
        if exp >= 0 {
            // Past 20 digits it cannot fit any integer type: keep it short.
            let zeros = exp.min(40) as usize;
            format!("{sign}{trimmed}{}", "0".repeat(zeros))
        } else {
            // Not reached for integer columns; PostgreSQL refuses it.
            self.to_python_string()
        }
    }
}

// ------------------------------------------------------------------ booleans

/// `true`/`false` in any case, commas ignored. Callers check nulls with
/// [`bool_is_null`].
pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    let t: String = s.chars().filter(|c| *c != ',').collect();
    let t = py_strip(&t);
    if t.eq_ignore_ascii_case("true") {
        Some(true)
    } else if t.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// NULL as the boolean type sees it (commas removed first).
pub(crate) fn bool_is_null(s: &str) -> bool {
    let t: String = s.chars().filter(|c| *c != ',').collect();
    is_null(&t)
}

// ------------------------------------------------------------------ strptime

/// One element of a `strptime` format.
#[derive(Clone, Copy)]
enum Part {
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    Lit(char),
    /// A space in the format: one or more whitespace characters.
    Space,
}

/// The alternatives (in order) Python's `strptime` regex tries for a field.
fn alternatives(part: Part, s: &[char]) -> Vec<(u32, usize)> {
    let digit = |i: usize| s.get(i).and_then(|c| c.to_digit(10));
    let two = |lo: u32, hi: u32, first: std::ops::RangeInclusive<u32>| -> Option<(u32, usize)> {
        let (a, b) = (digit(0)?, digit(1)?);
        (first.contains(&a) && (lo..=hi).contains(&b)).then_some((a * 10 + b, 2))
    };
    let one = |range: std::ops::RangeInclusive<u32>| -> Option<(u32, usize)> {
        let a = digit(0)?;
        range.contains(&a).then_some((a, 1))
    };
    let opts: Vec<Option<(u32, usize)>> = match part {
        Part::Year => vec![(|| {
            let v = (0..4).map(digit).collect::<Option<Vec<u32>>>()?;
            Some((v.iter().fold(0, |acc, d| acc * 10 + d), 4))
        })()],
        // 1[0-2] | 0[1-9] | [1-9]
        Part::Month => vec![two(0, 2, 1..=1), two(1, 9, 0..=0), one(1..=9)],
        // 3[01] | [12]\d | 0[1-9] | [1-9] | " "[1-9]
        Part::Day => vec![
            two(0, 1, 3..=3),
            two(0, 9, 1..=2),
            two(1, 9, 0..=0),
            one(1..=9),
            (s.first() == Some(&' '))
                .then(|| digit(1).filter(|d| *d >= 1).map(|d| (d, 2)))
                .flatten(),
        ],
        // 2[0-3] | [0-1]\d | \d
        Part::Hour => vec![two(0, 3, 2..=2), two(0, 9, 0..=1), one(0..=9)],
        // [0-5]\d | \d
        Part::Minute => vec![two(0, 9, 0..=5), one(0..=9)],
        // 6[0-1] | [0-5]\d | \d
        Part::Second => vec![two(0, 1, 6..=6), two(0, 9, 0..=5), one(0..=9)],
        Part::Lit(_) | Part::Space => vec![],
    };
    opts.into_iter().flatten().collect()
}

/// The first match of `parts` at the start of `s` (regex backtracking order);
/// its values and length.
fn match_parts(parts: &[Part], s: &[char], values: &mut Vec<u32>) -> Option<usize> {
    let Some((first, rest)) = parts.split_first() else {
        return Some(0);
    };
    match *first {
        Part::Lit(c) => {
            if s.first() == Some(&c) {
                match_parts(rest, &s[1..], values).map(|n| n + 1)
            } else {
                None
            }
        }
        Part::Space => {
            let n = s.iter().take_while(|c| c.is_whitespace()).count();
            if n == 0 {
                return None;
            }
            // Greedy; giving back whitespace cannot help the digits that follow.
            match_parts(rest, &s[n..], values).map(|m| m + n)
        }
        part => {
            for (v, len) in alternatives(part, s) {
                values.push(v);
                if let Some(m) = match_parts(rest, &s[len..], values) {
                    return Some(m + len);
                }
                values.pop();
            }
            None
        }
    }
}

fn strptime(s: &str, parts: &[Part]) -> Option<Vec<u32>> {
    let chars: Vec<char> = py_strip(s).chars().collect();
    let mut values = Vec::new();
    let n = match_parts(parts, &chars, &mut values)?;
    (n == chars.len()).then_some(values)
}

/// `%Y-%m-%d`.
pub(crate) fn parse_date(s: &str) -> Option<NaiveDate> {
    use Part::*;
    let v = strptime(s, &[Year, Lit('-'), Month, Lit('-'), Day])?;
    ymd(v[0] as i32, v[1], v[2])
}

/// `%Y-%m-%d %H:%M:%S`.
pub(crate) fn parse_datetime(s: &str) -> Option<NaiveDateTime> {
    use Part::*;
    let v = strptime(
        s,
        &[
            Year,
            Lit('-'),
            Month,
            Lit('-'),
            Day,
            Space,
            Hour,
            Lit(':'),
            Minute,
            Lit(':'),
            Second,
        ],
    )?;
    let date = ymd(v[0] as i32, v[1], v[2])?;
    let time = NaiveTime::from_hms_opt(v[3], v[4], v[5])?;
    Some(date.and_time(time))
}

/// A date Python's `date` accepts (years 1 to 9999).
fn ymd(y: i32, m: u32, d: u32) -> Option<NaiveDate> {
    if !(1..=9999).contains(&y) {
        return None;
    }
    NaiveDate::from_ymd_opt(y, m, d)
}

// ------------------------------------------------------------------ ISO 8601

/// A timestamp with an optional UTC offset in minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IsoDateTime {
    pub(crate) local: NaiveDateTime,
    pub(crate) offset_minutes: Option<i64>,
}

/// ISO 8601 as the `isodate` library reads it: exactly one `T` between a date
/// (complete, week, ordinal, year-month, year or century forms, basic or
/// extended) and a time (hours, minutes, seconds, each possibly fractional, then
/// `Z` or an offset).
pub(crate) fn parse_iso_datetime(s: &str) -> Option<IsoDateTime> {
    let s = py_strip(s);
    let mut parts = s.split('T');
    let (date, time) = (parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let date = iso_date(date)?;
    let (time, offset) = iso_time(time)?;
    Some(IsoDateTime {
        local: date.and_time(time),
        offset_minutes: offset,
    })
}

fn all_digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

fn num(s: &str) -> i64 {
    s.parse().unwrap_or(0)
}

fn iso_date(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    let year = || -> Option<i64> { all_digits(s.get(..4)?, 4).then(|| num(&s[..4])) };
    let date = |y: i64, m: i64, d: i64| -> Option<NaiveDate> {
        // A month of 00 reads as January; a day of 00 is refused.
        let m = if m == 0 { 1 } else { m };
        ymd(
            i32::try_from(y).ok()?,
            u32::try_from(m).ok()?,
            u32::try_from(d).ok()?,
        )
    };
    let week = |y: i64, w: i64, d: i64| -> Option<NaiveDate> {
        let jan1 = ymd(i32::try_from(y).ok()?, 1, 1)?;
        let shift = if jan1.iso_week().week() == 1 { 1 } else { 0 };
        let days = 7 * (w - shift) - i64::from(jan1.weekday().number_from_monday()) + d;
        in_range(jan1.checked_add_signed(Duration::days(days))?)
    };
    match s.len() {
        10 if b[4] == b'-' && b[7] == b'-' && all_digits(&s[5..7], 2) && all_digits(&s[8..], 2) => {
            date(year()?, num(&s[5..7]), num(&s[8..]))
        }
        8 if all_digits(s, 8) => date(year()?, num(&s[4..6]), num(&s[6..])),
        10 if &s[4..6] == "-W"
            && b[8] == b'-'
            && all_digits(&s[6..8], 2)
            && all_digits(&s[9..], 1) =>
        {
            week(year()?, num(&s[6..8]), num(&s[9..]))
        }
        8 if b[4] == b'W' && all_digits(&s[5..], 3) => week(year()?, num(&s[5..7]), num(&s[7..])),
        8 if b[4] == b'-' && all_digits(&s[5..], 3) => ordinal(year()?, num(&s[5..])),
        7 if all_digits(s, 7) => ordinal(year()?, num(&s[4..])),
        8 if &s[4..6] == "-W" && all_digits(&s[6..], 2) => week(year()?, num(&s[6..]), 1),
        7 if b[4] == b'W' && all_digits(&s[5..], 2) => week(year()?, num(&s[5..]), 1),
        7 if b[4] == b'-' && all_digits(&s[5..], 2) => date(year()?, num(&s[5..]), 1),
        6 if all_digits(s, 6) => date(year()?, num(&s[4..]), 1),
        4 if all_digits(s, 4) => date(num(s), 1, 1),
        2 if all_digits(s, 2) => date(num(s) * 100 + 1, 1, 1),
        _ => None,
    }
}

fn ordinal(y: i64, day: i64) -> Option<NaiveDate> {
    let jan1 = ymd(i32::try_from(y).ok()?, 1, 1)?;
    in_range(jan1.checked_add_signed(Duration::days(day - 1))?)
}

fn in_range(d: NaiveDate) -> Option<NaiveDate> {
    (1..=9999).contains(&d.year()).then_some(d)
}

/// `hh[:mm[:ss]]` (colons optional together), the last part possibly with a
/// `.`/`,` fraction, then `Z`, `±hh`, `±hhmm` or `±hh:mm`.
fn iso_time(s: &str) -> Option<(NaiveTime, Option<i64>)> {
    // Patterns in isodate's order: hh:mm:ss, hhmmss, hh:mm, hhmm, hh.
    for pattern in [
        &["hh", ":", "mm", ":", "ss"][..],
        &["hh", "mm", "ss"],
        &["hh", ":", "mm"],
        &["hh", "mm"],
        &["hh"],
    ] {
        if let Some(t) = iso_time_pattern(s, pattern) {
            return Some(t);
        }
    }
    None
}

fn iso_time_pattern(s: &str, pattern: &[&str]) -> Option<(NaiveTime, Option<i64>)> {
    let mut rest = s;
    let mut fields: Vec<i64> = Vec::new();
    for p in pattern {
        if *p == ":" {
            rest = rest.strip_prefix(':')?;
        } else {
            if !all_digits(rest.get(..2)?, 2) {
                return None;
            }
            fields.push(num(&rest[..2]));
            rest = &rest[2..];
        }
    }
    // The fraction of the last field: [,.] digits (greedy).
    let mut frac = "";
    if let Some(after) = rest.strip_prefix(['.', ',']) {
        let n = after.bytes().take_while(u8::is_ascii_digit).count();
        if n > 0 {
            frac = &after[..n];
            rest = &after[n..];
        }
    }
    let offset = match rest {
        "" => None,
        "Z" => Some(0),
        _ => {
            let (sign, r) = match rest.as_bytes()[0] {
                b'+' => (1, &rest[1..]),
                b'-' => (-1, &rest[1..]),
                _ => return None,
            };
            let (h, m) = if all_digits(r, 2) {
                (num(r), 0)
            } else if all_digits(r, 4) {
                (num(&r[..2]), num(&r[2..]))
            } else if r.len() == 5
                && &r[2..3] == ":"
                && all_digits(&r[..2], 2)
                && all_digits(&r[3..], 2)
            {
                (num(&r[..2]), num(&r[3..]))
            } else {
                return None;
            };
            Some(sign * (h * 60 + m))
        }
    };
    // Fraction digits as an exact value: numerator / 10^len (first 18 digits).
    let f: &str = &frac[..frac.len().min(18)];
    let (fnum, fden) = if f.is_empty() {
        (0i128, 1i128)
    } else {
        (f.parse::<i128>().ok()?, 10i128.pow(f.len() as u32))
    };
    let hour = fields[0];
    let (minute, second, micro) = match fields.len() {
        3 => {
            // Seconds' fraction: cut to microseconds.
            (fields[1], fields[2], (fnum * 1_000_000 / fden) as i64)
        }
        2 => {
            // Minutes' fraction: seconds cut to microseconds.
            let us = fnum * 60_000_000 / fden;
            (fields[1], (us / 1_000_000) as i64, (us % 1_000_000) as i64)
        }
        _ => {
            // Hours' fraction: minutes and seconds cut, microseconds rounded half to even.
            let total = fnum * 3_600_000_000; // in units of 1/fden µs
            let whole_us = total / fden;
            let rem = total % fden;
            let minute = whole_us / 60_000_000;
            let second = (whole_us % 60_000_000) / 1_000_000;
            let mut micro = whole_us % 1_000_000;
            if rem * 2 > fden || (rem * 2 == fden && micro % 2 == 1) {
                micro += 1;
            }
            if micro >= 1_000_000 {
                return None; // Python's time() refuses it
            }
            (minute as i64, second as i64, micro as i64)
        }
    };
    let time = NaiveTime::from_hms_micro_opt(
        u32::try_from(hour).ok()?,
        u32::try_from(minute).ok()?,
        u32::try_from(second).ok()?,
        u32::try_from(micro).ok()?,
    )?;
    if second >= 60 || micro >= 1_000_000 {
        return None;
    }
    Some((time, offset))
}

// ------------------------------------------------------------------ output

/// A date as PostgreSQL reads it.
pub(crate) fn date_text(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// A timestamp as PostgreSQL reads it (years before 1 as BC).
pub(crate) fn timestamp_text(t: NaiveDateTime) -> String {
    let (y, bc) = if t.year() <= 0 {
        (1 - t.year(), " BC")
    } else {
        (t.year(), "")
    };
    let frac = match t.and_utc().timestamp_subsec_micros() {
        0 => String::new(),
        us => format!(".{us:06}"),
    };
    format!("{y:04}-{}{frac}{bc}", t.format("%m-%d %H:%M:%S"))
}

impl IsoDateTime {
    /// The wall-clock time in UTC (every session of ours runs in UTC), as dbt's
    /// driver sends an offset timestamp into a `timestamp` column; `Err` for an
    /// offset of a day or more, which Python refuses.
    pub(crate) fn utc_text(&self) -> Result<String, String> {
        match self.offset_minutes {
            None => Ok(timestamp_text(self.local)),
            Some(m) if m.abs() >= 24 * 60 => Err(format!(
                "the UTC offset of {} is a day or more",
                timestamp_text(self.local)
            )),
            Some(m) => Ok(timestamp_text(self.local - Duration::minutes(m))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Option<String> {
        parse_number(s).map(|d| d.to_python_string())
    }

    #[test]
    fn numbers_as_agate_reads_them() {
        // Observed with agate 1.9 / Python 3.11 (tests/dbt/NOTES.md, "Seeds").
        for (input, want) in [
            ("1_000", Some("1000")),
            ("_1", Some("1")),
            (" 5 ", Some("5")),
            ("- 5", Some("-5")),
            ("--5", Some("5")),
            ("+5", Some("5")),
            ("5%", Some("5")),
            ("%5%", Some("5")),
            ("$€5", Some("5")),
            ("1e3", Some("1E+3")),
            (".5", Some("0.5")),
            ("5.", Some("5")),
            ("inf", Some("NaN")),
            ("NaN12", Some("NaN")),
            ("sNaN", None),
            ("1,2,3", Some("123")),
            ("1.0", Some("1.0")),
            ("0.00", Some("0.00")),
            ("$1,0", Some("10")),
            ("1.5e1", Some("15")),
            (
                "1.23456789012345678901234567891",
                Some("1.234567890123456789012345679"),
            ),
            (
                "99999999999999999999999999999",
                Some("1.000000000000000000000000000E+29"),
            ),
            ("yes", None),
            ("-", None),
            ("2026-03-01", None),
        ] {
            assert_eq!(n(input).as_deref(), want, "{input}");
        }
        assert_eq!(parse_number("1.0").unwrap().places(), Some((1, 0)));
        assert_eq!(parse_number("0.50").unwrap().places(), Some((0, 1)));
        assert_eq!(parse_number("1e3").unwrap().places(), Some((4, -3)));
        assert_eq!(parse_number("1e3").unwrap().to_integer_string(), "1000");
        assert_eq!(parse_number("-7.0").unwrap().to_integer_string(), "-7");
    }

    #[test]
    fn dates_and_times_as_python_reads_them() {
        assert!(parse_date("2026-3-1").is_some());
        assert!(parse_date("2026-03- 1").is_some());
        assert!(parse_date("2026-03-35").is_none());
        assert!(parse_date("2026-02-29").is_none());
        assert!(parse_date("03/01/2026").is_none());
        assert!(parse_datetime("2026-03-01  10:15:00").is_some());
        assert_eq!(
            parse_datetime("2026-03-01 1:2:3")
                .map(timestamp_text)
                .as_deref(),
            Some("2026-03-01 01:02:03")
        );
        assert!(parse_datetime("2026-03-01T10:15:00").is_none());
        assert!(parse_datetime("2026-03-01 10:15:60").is_none());
        for (input, want) in [
            ("2026-03-01T10", Some("2026-03-01 10:00:00")),
            ("2026-03-01T10:15", Some("2026-03-01 10:15:00")),
            ("20260301T101500", Some("2026-03-01 10:15:00")),
            ("2026-W09-1T10:00", Some("2026-02-23 10:00:00")),
            ("2026-060T10:00:00", Some("2026-03-01 10:00:00")),
            (
                "2026-03-01T10:15:00.1234567",
                Some("2026-03-01 10:15:00.123456"),
            ),
            (
                "2026-03-01T10:15:00,5+0530",
                Some("2026-03-01 04:45:00.500000"),
            ),
            ("2026-03-01T10:15:00-02", Some("2026-03-01 12:15:00")),
            ("2026-02-28T23:59:59+02:00", Some("2026-02-28 21:59:59")),
            ("2026-03-01T24:00:00", None),
            ("2026T10:00", Some("2026-01-01 10:00:00")),
            ("20T10:00", Some("2001-01-01 10:00:00")),
            ("2026-03-01t10:00", None),
            ("2026-03-01T10:15:60", None),
            ("2026-03-01T10.5", Some("2026-03-01 10:30:00")),
            ("2026-03-01T10:15.5Z", Some("2026-03-01 10:15:30")),
            ("2026-03-01", None),
        ] {
            let got = parse_iso_datetime(input).map(|t| t.utc_text().unwrap());
            assert_eq!(got.as_deref(), want, "{input}");
        }
    }

    #[test]
    fn booleans_and_nulls() {
        assert_eq!(parse_bool("t,rue"), Some(true));
        assert_eq!(parse_bool("FALSE"), Some(false));
        assert_eq!(parse_bool("yes"), None);
        assert!(is_null(" NULL "));
        assert!(is_null(""));
        assert!(!is_null("none"));
        assert!(bool_is_null(",,"));
    }
}
