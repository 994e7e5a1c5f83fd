//! The report as one self-contained HTML file: inline CSS and inline SVG charts,
//! no script, no font, no image and no link to fetch, so it renders the same in a
//! browser, a mail client's preview, or as a PNG. Every figure says its unit;
//! every KPI card carries the mart's exact value in `data-value` (a missing one
//! has none), and the current UTC day is hatched and labelled partial.

use std::fmt::Write;

use super::chart::{self, esc, Bar, Series, Style};
use super::data::{Kpis, ReportData};
use super::format::{count, float, money, percent, Unit};
use super::{shown, Kpi, KPIS};

const CSS: &str = include_str!("report.css");

/// Colours of the series, one per KPI, in [`KPIS`] order.
const COLORS: &[&str] = &[
    "#2563eb", "#7c3aed", "#0d9488", "#059669", "#d97706", "#b45309", "#0891b2", "#dc2626",
];

/// Roughly how tall the page is at 1100 pixels wide, for the PNG.
pub(crate) fn page_height(data: &ReportData) -> u32 {
    let funnels = data.funnels.len().min(12) as u32;
    let codes = data.failure_codes.len().min(8) as u32;
    2150 + 34 * funnels + 26 * codes
}

/// The relative change from `avg` to `v`, when both are defined and avg is not 0.
fn change(v: Option<&str>, avg: Option<&str>) -> Option<f64> {
    let (v, a) = (float(v?), float(avg?));
    (a != 0.0).then(|| (v - a) / a)
}

fn card(kpi: &Kpi, i: usize, day: Option<&Kpis>, data: &ReportData) -> String {
    let value = day.and_then(|k| (kpi.value)(k));
    let a7 = (kpi.average)(&data.avg7);
    let a28 = (kpi.average)(&data.avg28);
    let figure = match (day, &value) {
        (None, _) => "no data".to_string(),
        (Some(_), v) => shown(kpi, v.as_deref()),
    };
    let why = match (day, &value) {
        (Some(_), None) => format!(r#"<div class="na">not defined: {}</div>"#, esc(kpi.when_na)),
        (Some(k), Some(_)) if kpi.column == "conversion_rate" => format!(
            r#"<div class="detail">{} of {} sessions</div>"#,
            count(k.converted_sessions),
            count(k.sessions)
        ),
        (Some(k), Some(_)) if kpi.column == "failed_charges" && k.failed_charges > 0 => format!(
            r#"<div class="detail">most frequent code: <code>{}</code></div>"#,
            esc(k
                .top_failure_code
                .as_deref()
                .unwrap_or("(none: failed without a code)"))
        ),
        _ => String::new(),
    };
    let delta = match change(value.as_deref(), a7.as_deref()) {
        Some(c) => {
            let good = (c >= 0.0) == kpi.higher_is_better;
            let cls = if c.abs() < 0.005 {
                "flat"
            } else if good {
                "good"
            } else {
                "bad"
            };
            let arrow = if c > 0.0 {
                "▲"
            } else if c < 0.0 {
                "▼"
            } else {
                "■"
            };
            format!(
                r#"<span class="delta {cls}">{arrow} {:+.0}% vs 7-day</span>"#,
                c * 100.0
            )
        }
        None => String::new(),
    };
    let avg = |label: &str, v: &Option<String>| {
        format!(
            r#"<div class="avg"><span>{label}</span> <b>{}</b></div>"#,
            esc(&match v {
                Some(v) => kpi.unit.show(Some(v)),
                None => "n/a".into(),
            })
        )
    };
    let data_value = value
        .as_deref()
        .map(|v| format!(r#" data-value="{}""#, esc(v)))
        .unwrap_or_default();
    format!(
        r#"<div class="kpi" data-kpi="{col}"{data_value} style="border-top-color:{color}"><div class="label">{label}</div><div class="value">{figure}</div><div class="unit">{unit}</div>{why}{delta}{a7}{a28}</div>"#,
        col = kpi.column,
        color = COLORS[i % COLORS.len()],
        label = esc(kpi.label),
        figure = esc(&figure),
        unit = esc(kpi.unit_text),
        a7 = avg(
            if kpi.unit == Unit::Rate || kpi.unit == Unit::Multiple || kpi.column == "cac_usd" {
                "7 days:"
            } else {
                "7-day avg:"
            },
            &a7
        ),
        a28 = avg(
            if kpi.unit == Unit::Rate || kpi.unit == Unit::Multiple || kpi.column == "cac_usd" {
                "28 days:"
            } else {
                "28-day avg:"
            },
            &a28
        ),
    )
}

/// A daily chart of one KPI (or revenue against spend) over the window.
fn trend(
    data: &ReportData,
    id: &str,
    title: &str,
    unit: Unit,
    kpis: &[usize],
    style: Style,
) -> String {
    let dates: Vec<_> = data.window.iter().map(|(d, _)| *d).collect();
    let partial: Vec<bool> = dates.iter().map(|d| data.is_partial(*d)).collect();
    let series: Vec<Series> = kpis
        .iter()
        .map(|i| {
            let kpi = &KPIS[*i];
            let raw: Vec<Option<String>> = data
                .window
                .iter()
                .map(|(_, k)| match k {
                    Some(k) => (kpi.value)(k),
                    // No row: a day without activity. Counts and money are 0; rates
                    // are not defined.
                    None => match kpi.unit {
                        Unit::Count | Unit::Usd if kpi.when_na.is_empty() => Some("0".into()),
                        _ => None,
                    },
                })
                .collect();
            Series {
                name: kpi.label.to_string(),
                color: COLORS[*i],
                style,
                values: raw.iter().map(|v| v.as_deref().map(float)).collect(),
                labels: raw.iter().map(|v| shown(kpi, v.as_deref())).collect(),
            }
        })
        .collect();
    let legend = if series.len() > 1 {
        series
            .iter()
            .map(|s| {
                format!(
                    r#"<span class="key"><i style="background:{}"></i>{}</span>"#,
                    s.color,
                    esc(&s.name)
                )
            })
            .collect::<Vec<_>>()
            .join(" ")
    } else {
        String::new()
    };
    format!(
        r#"<figure class="trend"><figcaption><b>{}</b> <span class="u">{}</span> {legend}</figcaption>{}</figure>"#,
        esc(title),
        esc(KPIS[kpis[0]].unit_text),
        chart::daily(id, title, unit, &dates, &partial, &series)
    )
}

fn today_strip(data: &ReportData) -> String {
    let Some(k) = data.today_row() else {
        return format!(
            r#"<section class="today" id="partial-day"><b>Today, {} (partial, up to {} UTC):</b> no activity recorded yet.</section>"#,
            data.today.format("%a %b %-d"),
            data.now_utc
        );
    };
    let items: Vec<String> = KPIS
        .iter()
        .map(|kpi| {
            format!(
                "{} <b>{}</b>",
                esc(kpi.label),
                esc(&shown(kpi, (kpi.value)(k).as_deref()))
            )
        })
        .collect();
    format!(
        r#"<section class="today" id="partial-day"><b>Today, {} — a partial day, up to {} UTC; not comparable with full days:</b> {}</section>"#,
        data.today.format("%a %b %-d"),
        data.now_utc,
        items.join(" · ")
    )
}

fn funnels(data: &ReportData) -> String {
    if data.funnels.is_empty() {
        return "<p>No sessions in these days.</p>".into();
    }
    let max_rate = data
        .funnels
        .iter()
        .filter_map(|f| f.conversion_rate.as_deref().map(float))
        .fold(0.0f64, f64::max);
    let max_rev = data
        .funnels
        .iter()
        .filter_map(|f| f.revenue_usd.as_deref().map(float))
        .fold(0.0f64, f64::max);
    let bar = |v: f64, max: f64, color: &str| {
        let w = if max > 0.0 { 100.0 * v / max } else { 0.0 };
        format!(r#"<span class="bar"><i style="width:{w:.1}%;background:{color}"></i></span>"#)
    };
    let mut s = String::from(
        r#"<table class="funnels"><thead><tr><th>Funnel</th><th class="n">Sessions</th><th class="n">Converted</th><th class="n" colspan="2">Conversion rate</th><th class="n" colspan="2">Revenue (USD)</th></tr></thead><tbody>"#,
    );
    for f in &data.funnels {
        let rate = f.conversion_rate.as_deref();
        let _ = write!(
            s,
            r#"<tr><td>{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td>{}</td><td class="n">{}</td><td>{}</td></tr>"#,
            esc(&f.name),
            count(f.sessions),
            count(f.converted),
            rate.map(|r| percent(r, 2)).unwrap_or_else(|| "n/a".into()),
            bar(rate.map(float).unwrap_or(0.0), max_rate, COLORS[1]),
            f.revenue_usd
                .as_deref()
                .map(money)
                .unwrap_or_else(|| "$0.00".into()),
            bar(
                f.revenue_usd.as_deref().map(float).unwrap_or(0.0),
                max_rev,
                COLORS[3]
            ),
        );
    }
    s.push_str("</tbody></table>");
    s
}

fn failure_codes(data: &ReportData) -> String {
    if data.relations.charges.is_none() {
        return "<p>The project declares no source raw_stripe.charges.</p>".into();
    }
    if data.failure_codes.is_empty() {
        return "<p>No failed charges in these days.</p>".into();
    }
    let total: i64 = data.failure_codes.iter().map(|c| c.charges).sum();
    let bars: Vec<Bar> = data
        .failure_codes
        .iter()
        .take(8)
        .map(|c| Bar {
            label: c
                .code
                .clone()
                .unwrap_or_else(|| "(failed without a code)".into()),
            value: c.charges as f64,
            text: format!(
                "{} charge{} · {:.0}%",
                count(c.charges),
                if c.charges == 1 { "" } else { "s" },
                100.0 * c.charges as f64 / total as f64
            ),
        })
        .collect();
    let more = data.failure_codes.len().saturating_sub(8);
    format!(
        "{}{}",
        chart::hbars(
            "failure-codes",
            "Failed charges by failure code",
            COLORS[7],
            &bars,
            640.0
        ),
        if more > 0 {
            format!(
                r#"<p class="note">and {more} more code{}.</p>"#,
                if more == 1 { "" } else { "s" }
            )
        } else {
            String::new()
        }
    )
}

/// The report page of `data`.
pub(crate) fn render(data: &ReportData, project: &str) -> String {
    let day = data.day();
    let (first, last) = data.span;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:"><title>Executive report — {date}</title><style>{CSS}</style></head><body><main>"#,
        date = data.date
    );
    let _ = write!(
        s,
        r#"<header><div class="kicker">Reluvia · executive daily report</div><h1 id="report-date" data-date="{}">{}</h1><p>The latest complete UTC day{}, against the averages of the 7 and 28 days ending on it. Generated {} {} UTC from <code>{}</code>.</p></header>"#,
        data.date,
        data.date.format("%A, %B %-d, %Y"),
        if data.date == data.today - chrono::Duration::days(1) {
            ""
        } else {
            " chosen"
        },
        data.today,
        data.now_utc,
        esc(&data.relations.kpis)
    );
    if day.is_none() {
        let latest = data
            .latest
            .map(|d| format!("its latest day is {d}"))
            .unwrap_or_else(|| "it is empty".into());
        let _ = write!(
            s,
            r#"<div class="banner" id="stale">No row for {} in <code>{}</code>: {latest}. The marts may be stale; check the last build and source freshness.</div>"#,
            data.date,
            esc(&data.relations.kpis)
        );
    }
    s.push_str(r#"<section class="kpis" id="kpis">"#);
    for (i, kpi) in KPIS.iter().enumerate() {
        s.push_str(&card(kpi, i, day, data));
    }
    s.push_str("</section>");
    s.push_str(&today_strip(data));
    let complete = data
        .window
        .iter()
        .filter(|(d, _)| !data.is_partial(*d))
        .count();
    let _ = write!(
        s,
        r#"<section><h2>Daily trends</h2><p class="sub">The {complete} complete days {first} to {last}, then today (hatched: a partial day). Hover a bar or point for its figure.</p><div class="grid">"#
    );
    s.push_str(&trend(
        data,
        "trend-sessions",
        "Sessions",
        Unit::Count,
        &[0],
        Style::Bars,
    ));
    s.push_str(&trend(
        data,
        "trend-conversion",
        "Conversion rate",
        Unit::Rate,
        &[1],
        Style::Line,
    ));
    s.push_str(&trend(
        data,
        "trend-subscriptions",
        "New subscriptions",
        Unit::Count,
        &[2],
        Style::Bars,
    ));
    s.push_str(&trend(
        data,
        "trend-revenue",
        "Revenue and ad spend",
        Unit::Usd,
        &[3, 4],
        Style::Bars,
    ));
    s.push_str(&trend(
        data,
        "trend-cac",
        "CAC",
        Unit::Usd,
        &[5],
        Style::Line,
    ));
    s.push_str(&trend(
        data,
        "trend-roas",
        "ROAS",
        Unit::Multiple,
        &[6],
        Style::Line,
    ));
    s.push_str(&trend(
        data,
        "trend-failed",
        "Failed charges",
        Unit::Count,
        &[7],
        Style::Bars,
    ));
    s.push_str("</div></section>");
    let _ = write!(
        s,
        r#"<section id="funnels"><h2>Conversion and revenue by funnel</h2><p class="sub">Sessions {first} to {last} by funnel; revenue (USD) of the new subscriptions those sessions acquired.</p>{}</section>"#,
        funnels(data)
    );
    let _ = write!(
        s,
        r#"<section id="failures"><h2>Top failure codes</h2><p class="sub">Failed Stripe charges {first} to {last} by failure code, from <code>{}</code> (the rows behind failed_charges).</p>{}</section>"#,
        esc(data.relations.charges.as_deref().unwrap_or("-")),
        failure_codes(data)
    );
    let _ = write!(
        s,
        r#"<footer><p><b>How to read it.</b> Days are UTC calendar days. Money is in US dollars, gross of refunds. Conversion rate: sessions that acquired a new subscription, over sessions. CAC: ad spend over new subscriptions. ROAS: revenue over ad spend. Averages are per day over the 7 and 28 days ending on the report date (a day without activity counts as zero); rates over those days pool their counts. <b>n/a</b> means not defined (no sessions, no new subscriptions or no ad spend); <b>$0.00</b> and <b>0</b> are real zeros.</p><p>Project <code>{}</code>; marts <code>{}</code>, <code>{}</code>. Written by reluvia-transform {}.</p></footer>"#,
        esc(project),
        esc(&data.relations.kpis),
        esc(&data.relations.funnels),
        crate::VERSION
    );
    s.push_str("</main></body></html>\n");
    s
}
