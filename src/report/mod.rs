//! The executive report from the marts: [`data`] reads it from PostgreSQL,
//! [`html`] writes it as one self-contained HTML file with inline SVG charts
//! ([`chart`]), and [`text`] prints the terminal summary of `demo`. Both speak
//! the same units and mark the current UTC day as partial ([`format`]).
//!
//! The KPIs are listed once, in [`KPIS`], with their unit, what their missing
//! value means, and which direction is good.

pub(crate) mod chart;
pub(crate) mod data;
pub(crate) mod format;
pub(crate) mod html;
pub(crate) mod text;

use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::settings::Settings;

use data::{Averages, Kpis};
use format::Unit;

/// One KPI of the report: its column, how it reads, and where its values are.
pub(crate) struct Kpi {
    /// The column of `mart_daily_kpis`.
    pub(crate) column: &'static str,
    pub(crate) label: &'static str,
    pub(crate) unit: Unit,
    /// What the figure counts or measures, said under it.
    pub(crate) unit_text: &'static str,
    /// Why the value can be missing ("n/a").
    pub(crate) when_na: &'static str,
    pub(crate) higher_is_better: bool,
    pub(crate) value: fn(&Kpis) -> Option<String>,
    pub(crate) average: fn(&Averages) -> Option<String>,
}

/// The KPIs, in the order the report shows them.
pub(crate) const KPIS: &[Kpi] = &[
    Kpi {
        column: "sessions",
        label: "Sessions",
        unit: Unit::Count,
        unit_text: "funnel sessions",
        when_na: "",
        higher_is_better: true,
        value: |k| Some(k.sessions.to_string()),
        average: |a| Some(a.sessions.clone()),
    },
    Kpi {
        column: "conversion_rate",
        label: "Conversion rate",
        unit: Unit::Rate,
        unit_text: "% of sessions that acquired a new subscription",
        when_na: "no sessions",
        higher_is_better: true,
        value: |k| k.conversion_rate.clone(),
        average: |a| a.conversion_rate.clone(),
    },
    Kpi {
        column: "new_subscriptions",
        label: "New subscriptions",
        unit: Unit::Count,
        unit_text: "subscriptions paid by a first charge",
        when_na: "",
        higher_is_better: true,
        value: |k| Some(k.new_subscriptions.to_string()),
        average: |a| Some(a.new_subscriptions.clone()),
    },
    Kpi {
        column: "revenue_usd",
        label: "Revenue",
        unit: Unit::Usd,
        unit_text: "USD, first charges of new subscriptions (gross)",
        when_na: "",
        higher_is_better: true,
        value: |k| Some(k.revenue_usd.clone()),
        average: |a| Some(a.revenue_usd.clone()),
    },
    Kpi {
        column: "ad_spend_usd",
        label: "Ad spend",
        unit: Unit::Usd,
        unit_text: "USD, Facebook ads",
        when_na: "",
        higher_is_better: false,
        value: |k| Some(k.ad_spend_usd.clone()),
        average: |a| Some(a.ad_spend_usd.clone()),
    },
    Kpi {
        column: "cac_usd",
        label: "CAC",
        unit: Unit::Usd,
        unit_text: "USD of ad spend per new subscription",
        when_na: "no new subscriptions",
        higher_is_better: false,
        value: |k| k.cac_usd.clone(),
        average: |a| a.cac_usd.clone(),
    },
    Kpi {
        column: "roas",
        label: "ROAS",
        unit: Unit::Multiple,
        unit_text: "revenue ÷ ad spend",
        when_na: "no ad spend",
        higher_is_better: true,
        value: |k| k.roas.clone(),
        average: |a| a.roas.clone(),
    },
    Kpi {
        column: "failed_charges",
        label: "Failed charges",
        unit: Unit::Count,
        unit_text: "Stripe charges with status failed",
        when_na: "",
        higher_is_better: false,
        value: |k| Some(k.failed_charges.to_string()),
        average: |a| Some(a.failed_charges.clone()),
    },
];

/// What `report` was asked for.
#[derive(Debug, Clone)]
pub(crate) struct ReportOptions {
    /// The day reported; default the latest complete UTC day.
    pub(crate) date: Option<NaiveDate>,
    /// Complete days of the trend charts.
    pub(crate) days: u32,
    /// Where report.html goes; default `<target-path>/report.html`.
    pub(crate) output: Option<PathBuf>,
    /// Also write a PNG beside it (headless Chromium).
    pub(crate) png: bool,
}

impl Default for ReportOptions {
    fn default() -> ReportOptions {
        ReportOptions {
            date: None,
            days: 28,
            output: None,
            png: false,
        }
    }
}

/// Reads the marts and writes the report; returns the paths written (HTML, then
/// the PNG when asked).
pub(crate) async fn write(
    settings: &Settings,
    manifest: &Manifest,
    target_dir: &Path,
    options: &ReportOptions,
) -> Result<Vec<PathBuf>> {
    let relations = data::Relations::of(manifest)?;
    let client = crate::postgres::connect(settings).await?;
    let data = data::read(&client, &relations, options.date, options.days).await?;
    let page = html::render(&data, &manifest.project_name);
    let path = options
        .output
        .clone()
        .unwrap_or_else(|| target_dir.join("report.html"));
    crate::artifacts::write_atomic(&path, page.as_bytes())?;
    let mut written = vec![path.clone()];
    if options.png {
        written.push(png(&path, html::page_height(&data))?);
    }
    Ok(written)
}

/// A screenshot of the report by headless Chromium (`chromium`, or
/// `$RELUVIA_CHROMIUM`), beside the HTML file.
fn png(html: &Path, height: u32) -> Result<PathBuf> {
    let browser = std::env::var("RELUVIA_CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let out = html.with_extension("png");
    let abs = std::fs::canonicalize(html)
        .map_err(|e| Error::runtime(format!("cannot read {}: {e}", html.display())))?;
    let profile = tempfile_dir()?;
    let status = std::process::Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--window-size=1100,{height}"))
        .arg(format!("--screenshot={}", out.display()))
        .arg(format!("file://{}", abs.display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    let _ = std::fs::remove_dir_all(&profile);
    match status {
        Ok(s) if s.success() && out.exists() => Ok(out),
        Ok(s) => Err(Error::runtime(format!(
            "report --png: {browser} exited with {s} without writing {}",
            out.display()
        ))),
        Err(e) => Err(Error::runtime(format!(
            "report --png needs headless Chromium: cannot run '{browser}' ({e}); install it (apt-get install chromium) or set RELUVIA_CHROMIUM"
        ))),
    }
}

fn tempfile_dir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "reluvia-report-chromium-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4()
    ));
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::runtime(format!("cannot create {}: {e}", dir.display())))?;
    Ok(dir)
}

/// The text summary of the last `days` days, for the terminal.
pub(crate) async fn summary(settings: &Settings, manifest: &Manifest, days: u32) -> Result<String> {
    let relations = data::Relations::of(manifest)?;
    let client = crate::postgres::connect(settings).await?;
    let data = data::read(&client, &relations, None, days.max(2) - 1).await?;
    Ok(text::summary(&data))
}

/// A KPI figure as a reader sees it, with why it is missing when it is.
pub(crate) fn shown(kpi: &Kpi, value: Option<&str>) -> String {
    match value {
        Some(v) => kpi.unit.show(Some(v)),
        None if kpi.when_na.is_empty() => "no data".into(),
        None => "n/a".into(),
    }
}
