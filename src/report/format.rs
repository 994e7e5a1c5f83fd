//! How figures read, in the HTML report and the terminal summary alike: money in
//! US dollars with two decimals and thousands separators (`$12,345.67`), counts
//! with separators, rates as percentages, ROAS as a multiple, and a word (never
//! a dash) for a value that is not defined. Numeric values come from PostgreSQL
//! as text and are rounded here as decimals (halves away from zero, as numeric
//! `round()`), never through floating point.

/// `12345` → `12,345`.
pub(crate) fn count(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let sign = if n < 0 { "-" } else { "" };
    format!("{sign}{}", group(&digits))
}

/// Thousands separators in a string of digits.
fn group(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A decimal in text (`-12.3456`) rounded to `places` decimals, halves away from
/// zero, as (negative, integer digits, fraction digits). None when not a decimal.
fn round_decimal(text: &str, places: usize) -> Option<(bool, String, String)> {
    let t = text.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    if int.is_empty() && frac.is_empty()
        || !int.chars().all(|c| c.is_ascii_digit())
        || !frac.chars().all(|c| c.is_ascii_digit())
    {
        return None;
    }
    let int = if int.is_empty() { "0" } else { int };
    let mut digits: Vec<u8> = int.bytes().map(|b| b - b'0').collect();
    let mut fr: Vec<u8> = frac.bytes().map(|b| b - b'0').collect();
    let round_up = fr.get(places).is_some_and(|d| *d >= 5);
    fr.resize(places, 0);
    if round_up {
        // Add one unit in the last place, carrying leftwards.
        let mut carry = true;
        for d in fr.iter_mut().rev().chain(digits.iter_mut().rev()) {
            if !carry {
                break;
            }
            if *d == 9 {
                *d = 0;
            } else {
                *d += 1;
                carry = false;
            }
        }
        if carry {
            digits.insert(0, 1);
        }
    }
    let int: String = digits.iter().map(|d| (b'0' + d) as char).collect();
    let int = int.trim_start_matches('0');
    let int = if int.is_empty() { "0" } else { int }.to_string();
    let frac: String = fr.iter().map(|d| (b'0' + d) as char).collect();
    let zero = int == "0" && frac.chars().all(|c| c == '0');
    Some((neg && !zero, int, frac))
}

/// A decimal rounded to `places`, with thousands separators: `12,345.68`.
pub(crate) fn decimal(text: &str, places: usize) -> String {
    match round_decimal(text, places) {
        Some((neg, int, frac)) => {
            let sign = if neg { "-" } else { "" };
            if places == 0 {
                format!("{sign}{}", group(&int))
            } else {
                format!("{sign}{}.{frac}", group(&int))
            }
        }
        None => text.to_string(),
    }
}

/// US dollars: `$12,345.67`, `-$3.10`.
pub(crate) fn money(text: &str) -> String {
    let d = decimal(text, 2);
    match d.strip_prefix('-') {
        Some(rest) => format!("-${rest}"),
        None => format!("${d}"),
    }
}

/// Whole dollars for chart axes: `$12,346`.
pub(crate) fn money_whole(text: &str) -> String {
    let d = decimal(text, 0);
    match d.strip_prefix('-') {
        Some(rest) => format!("-${rest}"),
        None => format!("${d}"),
    }
}

/// A fraction as a percentage with `places` decimals: `0.0345` → `3.45%`.
pub(crate) fn percent(fraction: &str, places: usize) -> String {
    match shift_left2(fraction) {
        Some(p) => format!("{}%", decimal(&p, places)),
        None => fraction.to_string(),
    }
}

/// The decimal text multiplied by 100, exactly.
fn shift_left2(text: &str) -> Option<String> {
    let t = text.trim();
    let (sign, t) = match t.strip_prefix('-') {
        Some(r) => ("-", r),
        None => ("", t),
    };
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    let mut frac: String = frac.to_string();
    while frac.len() < 2 {
        frac.push('0');
    }
    let (moved, rest) = frac.split_at(2);
    let int = format!("{int}{moved}");
    round_decimal(&format!("{sign}{int}.{rest}"), rest.len().max(1))
        .map(|(neg, i, f)| format!("{}{i}.{f}", if neg { "-" } else { "" }))
}

/// ROAS, revenue per dollar of ad spend: `1.23×`.
pub(crate) fn multiple(text: &str) -> String {
    format!("{}×", decimal(text, 2))
}

/// The value as a float, for drawing only.
pub(crate) fn float(text: &str) -> f64 {
    text.trim().parse().unwrap_or(0.0)
}

/// How one KPI is measured and shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    /// A count of things (sessions, subscriptions, charges).
    Count,
    /// US dollars.
    Usd,
    /// A fraction shown as a percentage.
    Rate,
    /// Revenue per dollar of ad spend.
    Multiple,
}

impl Unit {
    /// A value of this unit as a reader sees it; `None` is "n/a".
    pub(crate) fn show(self, value: Option<&str>) -> String {
        let Some(v) = value else {
            return "n/a".to_string();
        };
        match self {
            Unit::Count => decimal(v, if v.contains('.') { 1 } else { 0 }),
            Unit::Usd => money(v),
            Unit::Rate => percent(v, 2),
            Unit::Multiple => multiple(v),
        }
    }

    /// An axis label of this unit (coarser than [`Unit::show`]).
    pub(crate) fn axis(self, v: f64) -> String {
        match self {
            Unit::Count => count(v.round() as i64),
            Unit::Usd => money_whole(&format!("{v:.2}")),
            Unit::Rate => format!("{}%", decimal(&format!("{:.4}", v * 100.0), 1)),
            Unit::Multiple => format!("{}×", decimal(&format!("{v:.4}"), 1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_has_two_decimals_and_separators() {
        assert_eq!(money("12345.67"), "$12,345.67");
        assert_eq!(money("0"), "$0.00");
        assert_eq!(money("1234567.005"), "$1,234,567.01");
        assert_eq!(money("-3.1"), "-$3.10");
        assert_eq!(money("999.995"), "$1,000.00");
        assert_eq!(money("-0.001"), "$0.00");
    }

    #[test]
    fn rates_and_multiples_round_as_numeric() {
        assert_eq!(percent("0.0345", 2), "3.45%");
        assert_eq!(percent("1", 2), "100.00%");
        assert_eq!(percent("0.00005", 2), "0.01%");
        assert_eq!(percent("0.12345", 2), "12.35%");
        assert_eq!(multiple("1.0050"), "1.01×");
        assert_eq!(multiple("0.0000"), "0.00×");
        assert_eq!(count(1234567), "1,234,567");
        assert_eq!(count(-12), "-12");
        assert_eq!(Unit::Usd.show(None), "n/a");
        assert_eq!(Unit::Count.show(Some("40.25")), "40.3");
    }
}
