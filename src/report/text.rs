//! The terminal summary (what `demo` prints): the window's daily KPIs, conversion
//! by funnel and failed charges by code, as aligned tables that fit 100 columns,
//! in the report's units, with the current UTC day marked partial.

use super::data::ReportData;
use super::format::{count, money, percent, Unit};

/// A text table: numbers right-aligned, text left-aligned, two spaces apart.
fn table(header: &[(&str, bool)], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|(h, _)| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if header[i].1 {
                    format!("{c:>w$}", w = widths[i])
                } else {
                    format!("{c:<w$}", w = widths[i])
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = line(header.iter().map(|(h, _)| *h).collect());
    out.push('\n');
    out.push_str(
        &widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("  "),
    );
    out.push('\n');
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
        out.push('\n');
    }
    out
}

/// Cuts `s` to `max` characters with an ellipsis.
fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(max - 1).collect::<String>())
    }
}

/// The summary of `data` as text.
pub(crate) fn summary(data: &ReportData) -> String {
    let na = |v: &Option<String>, unit: Unit| unit.show(v.as_deref());
    let mut rows = Vec::new();
    let mut partial = false;
    for (date, k) in &data.window {
        let is_partial = data.is_partial(*date);
        partial |= is_partial;
        let d = format!("{date}{}", if is_partial { " *" } else { "" });
        rows.push(match k {
            Some(k) => vec![
                d,
                count(k.sessions),
                na(&k.conversion_rate, Unit::Rate),
                count(k.new_subscriptions),
                money(&k.revenue_usd),
                money(&k.ad_spend_usd),
                na(&k.cac_usd, Unit::Usd),
                na(&k.roas, Unit::Multiple),
                count(k.failed_charges),
            ],
            None => {
                let mut r = vec![
                    d,
                    "0".into(),
                    "n/a".into(),
                    "0".into(),
                    "$0.00".into(),
                    "$0.00".into(),
                ];
                r.extend(["n/a".into(), "n/a".into(), "0".into()]);
                r
            }
        });
    }
    let days = data.window.len();
    let mut out = format!(
        "Daily KPIs, last {days} days (UTC); money in US dollars\nfrom {}\n\n",
        data.relations.kpis
    );
    out.push_str(&table(
        &[
            ("date (UTC)", false),
            ("sessions", true),
            ("conversion", true),
            ("new subs", true),
            ("revenue", true),
            ("ad spend", true),
            ("CAC", true),
            ("ROAS", true),
            ("failed charges", true),
        ],
        &rows,
    ));
    if partial {
        out.push_str(&format!(
            "* {} is today: a partial day, up to {} UTC; do not compare it with full days.\n",
            data.today, data.now_utc
        ));
    }
    out.push_str(
        "conversion: % of sessions that acquired a new subscription; CAC: ad spend per new\n\
         subscription; ROAS: revenue ÷ ad spend; n/a: not defined (no sessions, no new\n\
         subscriptions, no ad spend).\n",
    );
    let (first, last) = data.span;
    out.push_str(&format!(
        "\nConversion by funnel, {first} to {last} (complete days)\nfrom {}\n\n",
        data.relations.funnels
    ));
    let funnels: Vec<Vec<String>> = data
        .funnels
        .iter()
        .map(|f| {
            vec![
                cut(&f.name, 40),
                count(f.sessions),
                count(f.converted),
                f.conversion_rate
                    .as_deref()
                    .map(|r| percent(r, 2))
                    .unwrap_or_else(|| "n/a".into()),
                f.revenue_usd
                    .as_deref()
                    .map(money)
                    .unwrap_or_else(|| "$0.00".into()),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            ("funnel", false),
            ("sessions", true),
            ("converted", true),
            ("conversion", true),
            ("revenue", true),
        ],
        &funnels,
    ));
    if data.relations.charges.is_some() {
        out.push_str(&format!(
            "\nFailed charges by failure code, {first} to {last}\n\n"
        ));
        if data.failure_codes.is_empty() {
            out.push_str("No failed charges.\n");
        } else {
            let codes: Vec<Vec<String>> = data
                .failure_codes
                .iter()
                .take(8)
                .map(|c| {
                    vec![
                        c.code
                            .as_deref()
                            .map(|c| cut(c, 40))
                            .unwrap_or_else(|| "(failed without a code)".into()),
                        count(c.charges),
                    ]
                })
                .collect();
            out.push_str(&table(
                &[("failure code", false), ("charges", true)],
                &codes,
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::super::data::{Averages, FailureCode, Funnel, Kpis, Relations, ReportData};
    use super::*;

    /// The widest line the summary may print: a 100-column terminal.
    const MAX_WIDTH: usize = 100;

    fn day(d: NaiveDate, big: bool) -> Kpis {
        let m = if big { "123456.78" } else { "1234.56" };
        Kpis {
            date: d,
            sessions: if big { 123_456 } else { 400 },
            converted_sessions: 12,
            conversion_rate: Some("0.0300".into()),
            new_subscriptions: if big { 12_345 } else { 12 },
            revenue_usd: m.into(),
            ad_spend_usd: m.into(),
            cac_usd: None,
            roas: Some("12.3456".into()),
            failed_charges: 1234,
            top_failure_code: None,
        }
    }

    #[test]
    fn the_summary_fits_100_columns_and_marks_today() {
        let today = NaiveDate::from_ymd_opt(2026, 3, 14).unwrap();
        let avg = Averages {
            sessions: "1".into(),
            conversion_rate: None,
            new_subscriptions: "1".into(),
            revenue_usd: "1".into(),
            ad_spend_usd: "1".into(),
            cac_usd: None,
            roas: None,
            failed_charges: "1".into(),
        };
        let window = (0..14)
            .rev()
            .map(|i| {
                let d = today - chrono::Duration::days(i);
                (d, (i != 3).then(|| day(d, i % 2 == 0)))
            })
            .collect();
        let data = ReportData {
            relations: Relations {
                kpis: "\"analytics\".\"mart_daily_kpis\"".into(),
                funnels: "\"analytics\".\"mart_funnel_conversions\"".into(),
                charges: Some("\"raw_stripe\".\"charges\"".into()),
            },
            today,
            now_utc: "10:32".into(),
            date: today - chrono::Duration::days(1),
            latest: Some(today),
            window,
            avg7: avg.clone(),
            avg28: avg,
            funnels: vec![Funnel {
                name: "A funnel with a very long title that goes on and on and on".into(),
                sessions: 123_456,
                converted: 1234,
                conversion_rate: Some("0.0100".into()),
                revenue_usd: Some("1234567.89".into()),
            }],
            failure_codes: vec![FailureCode {
                code: None,
                charges: 3,
            }],
            span: (
                today - chrono::Duration::days(13),
                today - chrono::Duration::days(1),
            ),
        };
        let text = summary(&data);
        for line in text.lines() {
            assert!(
                line.chars().count() <= MAX_WIDTH,
                "{} columns: {line}",
                line.chars().count()
            );
        }
        assert!(text.contains("2026-03-14 *"), "{text}");
        assert!(
            text.contains("* 2026-03-14 is today: a partial day, up to 10:32 UTC"),
            "{text}"
        );
        assert!(text.contains("$123,456.78"), "{text}");
        assert!(text.contains("(failed without a code)"), "{text}");
        // The day without a row reads as zeros, its ratios as not defined.
        let quiet = text.lines().find(|l| l.starts_with("2026-03-11")).unwrap();
        assert!(quiet.contains("$0.00") && quiet.contains("n/a"), "{quiet}");
    }
}
