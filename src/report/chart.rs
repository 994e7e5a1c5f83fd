//! Charts as inline SVG, drawn at generate time: a daily chart (bars or lines,
//! one or two series, the partial day hatched and labelled, a missing value a gap
//! rather than a zero) and horizontal bars. Own code: a few hundred lines give
//! full control of units, nulls and the partial day, with no dependency.

use std::fmt::Write;

use chrono::NaiveDate;

use super::format::Unit;

/// Escapes text for HTML and SVG.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    Bars,
    Line,
}

/// One series of a daily chart; `labels` are the exact figures of the tooltips.
pub(crate) struct Series {
    pub(crate) name: String,
    pub(crate) color: &'static str,
    pub(crate) style: Style,
    pub(crate) values: Vec<Option<f64>>,
    pub(crate) labels: Vec<String>,
}

/// A round axis maximum at or above `max` and its tick step.
fn nice(max: f64) -> (f64, f64) {
    if max <= 0.0 || !max.is_finite() {
        return (1.0, 0.25);
    }
    let raw = max / 4.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| s * 4.0 >= max)
        .unwrap_or(10.0 * mag);
    (step * 4.0, step)
}

const W: f64 = 470.0;
const H: f64 = 190.0;
const LEFT: f64 = 62.0;
const RIGHT: f64 = 10.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 34.0;

/// A chart of daily values over `dates`; `partial[i]` marks the current day.
pub(crate) fn daily(
    id: &str,
    label: &str,
    unit: Unit,
    dates: &[NaiveDate],
    partial: &[bool],
    series: &[Series],
) -> String {
    let n = dates.len().max(1);
    let max = series
        .iter()
        .flat_map(|s| s.values.iter().flatten())
        .fold(0.0f64, |a, b| a.max(*b));
    let (top, step) = match nice(max) {
        // Counts are whole: no tick between 0 and 1.
        (_, step) if unit == Unit::Count && step < 1.0 => (4.0, 1.0),
        nice => nice,
    };
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let slot = plot_w / n as f64;
    let x_mid = |i: usize| LEFT + slot * (i as f64 + 0.5);
    let y = |v: f64| TOP + plot_h * (1.0 - (v / top).clamp(0.0, 1.0));
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" id="{id}" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{}">"#,
        esc(label)
    );
    let _ = write!(
        s,
        r##"<defs><pattern id="{id}-hatch" width="5" height="5" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="5" height="5" fill="#fff"/><line x1="0" y1="0" x2="0" y2="5" stroke="#9aa3b2" stroke-width="3"/></pattern></defs>"##
    );
    // Grid and y axis labels.
    let mut v = 0.0;
    while v <= top + step / 2.0 {
        let yy = y(v);
        let _ = write!(
            s,
            r##"<line x1="{LEFT}" x2="{}" y1="{yy:.1}" y2="{yy:.1}" stroke="{}" stroke-width="1"/><text x="{}" y="{:.1}" class="ax" text-anchor="end">{}</text>"##,
            W - RIGHT,
            if v == 0.0 { "#9aa3b2" } else { "#e5e8ee" },
            LEFT - 6.0,
            yy + 4.0,
            esc(&unit.axis(v))
        );
        v += step;
    }
    // X labels: about six dates, always the last one.
    let every = n.div_ceil(6).max(1);
    for (i, d) in dates.iter().enumerate() {
        let last = i + 1 == n;
        if i % every != 0 && !last || (!last && n - 1 - i < every / 2 + 1 && i != 0) {
            continue;
        }
        let text = if partial.get(i).copied().unwrap_or(false) {
            "today*".to_string()
        } else {
            d.format("%b %-d").to_string()
        };
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" class="ax{}" text-anchor="middle">{}</text>"#,
            x_mid(i),
            H - BOTTOM + 16.0,
            if partial.get(i).copied().unwrap_or(false) {
                " partial"
            } else {
                ""
            },
            esc(&text)
        );
    }
    let bars: Vec<&Series> = series.iter().filter(|s| s.style == Style::Bars).collect();
    let bw = (slot * 0.75 / bars.len().max(1) as f64).max(1.0);
    for (bi, ser) in bars.iter().enumerate() {
        for (i, v) in ser.values.iter().enumerate() {
            let Some(v) = v else { continue };
            let x = x_mid(i) - slot * 0.375 + bw * bi as f64;
            let (y0, y1) = (y(*v), y(0.0));
            let is_partial = partial.get(i).copied().unwrap_or(false);
            let fill = if is_partial {
                format!("url(#{id}-hatch)")
            } else {
                ser.color.to_string()
            };
            let _ = write!(
                s,
                r#"<rect x="{x:.1}" y="{y0:.1}" width="{bw:.1}" height="{:.1}" fill="{fill}"{}><title>{}: {} {}{}</title></rect>"#,
                (y1 - y0).max(if *v == 0.0 { 0.0 } else { 0.5 }),
                if is_partial {
                    format!(r#" stroke="{}" stroke-width="1""#, ser.color)
                } else {
                    String::new()
                },
                dates[i].format("%a %b %-d"),
                esc(&ser.name),
                esc(&ser.labels[i]),
                if is_partial { " (today, partial)" } else { "" }
            );
        }
    }
    for ser in series.iter().filter(|s| s.style == Style::Line) {
        // A polyline per run of defined values; the step into the partial day dashed.
        let mut run: Vec<(f64, f64)> = Vec::new();
        let flush = |run: &mut Vec<(f64, f64)>, s: &mut String, dashed: bool| {
            if run.len() > 1 {
                let pts: Vec<String> = run.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
                let _ = write!(
                    s,
                    r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"{}/>"#,
                    pts.join(" "),
                    ser.color,
                    if dashed {
                        r#" stroke-dasharray="4 3""#
                    } else {
                        ""
                    }
                );
            }
            run.clear();
        };
        for (i, v) in ser.values.iter().enumerate() {
            let is_partial = partial.get(i).copied().unwrap_or(false);
            match v {
                Some(v) if is_partial => {
                    let prev = run.last().copied();
                    flush(&mut run, &mut s, false);
                    if let Some(p) = prev {
                        run.push(p);
                        run.push((x_mid(i), y(*v)));
                        flush(&mut run, &mut s, true);
                    }
                }
                Some(v) => run.push((x_mid(i), y(*v))),
                None => flush(&mut run, &mut s, false),
            }
        }
        flush(&mut run, &mut s, false);
        for (i, v) in ser.values.iter().enumerate() {
            let Some(v) = v else { continue };
            let is_partial = partial.get(i).copied().unwrap_or(false);
            let _ = write!(
                s,
                r##"<circle cx="{:.1}" cy="{:.1}" r="{}" fill="{}" stroke="{}" stroke-width="1.5"><title>{}: {} {}{}</title></circle>"##,
                x_mid(i),
                y(*v),
                if is_partial { 3.5 } else { 2.2 },
                if is_partial { "#fff" } else { ser.color },
                ser.color,
                dates[i].format("%a %b %-d"),
                esc(&ser.name),
                esc(&ser.labels[i]),
                if is_partial { " (today, partial)" } else { "" }
            );
        }
    }
    s.push_str("</svg>");
    s
}

/// One bar of a horizontal bar list.
pub(crate) struct Bar {
    pub(crate) label: String,
    pub(crate) value: f64,
    pub(crate) text: String,
}

/// Horizontal bars, longest first as given, each with its label and figure.
pub(crate) fn hbars(id: &str, label: &str, color: &str, bars: &[Bar], width: f64) -> String {
    let row = 24.0;
    let label_w = 170.0;
    let text_w = 120.0;
    let h = row * bars.len().max(1) as f64 + 4.0;
    let max = bars.iter().fold(0.0f64, |a, b| a.max(b.value));
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" id="{id}" viewBox="0 0 {width} {h}" width="{width}" height="{h}" role="img" aria-label="{}">"#,
        esc(label)
    );
    let span = width - label_w - text_w;
    for (i, b) in bars.iter().enumerate() {
        let y = 2.0 + row * i as f64;
        let w = if max > 0.0 { span * b.value / max } else { 0.0 };
        let name: String = if b.label.chars().count() > 26 {
            format!("{}…", b.label.chars().take(25).collect::<String>())
        } else {
            b.label.clone()
        };
        let _ = write!(
            s,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end" class="lbl">{}<title>{}</title></text><rect x="{label_w}" y="{:.1}" width="{:.1}" height="{:.1}" rx="2" fill="{color}"/><text x="{:.1}" y="{:.1}" class="fig">{}</text>"##,
            label_w - 8.0,
            y + 16.0,
            esc(&name),
            esc(&b.label),
            y + 4.0,
            w.max(if b.value > 0.0 { 1.0 } else { 0.0 }),
            row - 8.0,
            label_w + w + 6.0,
            y + 16.0,
            esc(&b.text)
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::nice;

    #[test]
    fn axis_maxima_are_round() {
        assert_eq!(nice(37.0), (40.0, 10.0));
        assert_eq!(nice(0.034), (0.04, 0.01));
        assert_eq!(nice(1234.0), (2000.0, 500.0));
        assert_eq!(nice(0.0), (1.0, 0.25));
    }
}
