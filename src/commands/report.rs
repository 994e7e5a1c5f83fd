//! `report`: the executive report from the marts, as one self-contained HTML file
//! (`<target-path>/report.html` unless `--output`), optionally with a PNG. Also
//! what `build` runs after a successful build when `report_after_build` is on.

use std::path::PathBuf;
use std::sync::Arc;

use crate::cli::ReportArgs;
use crate::console::Output;
use crate::error::{Error, Result};
use crate::report::{self, ReportOptions};
use crate::settings::Settings;

use super::{load, Invocation};

pub(super) fn report(
    inv: &Invocation,
    settings: Arc<Settings>,
    args: &ReportArgs,
    out: &Output,
) -> Result<i32> {
    let options = ReportOptions {
        date: args.date,
        days: args.days,
        output: args.output.clone(),
        png: args.png,
    };
    write(inv, settings, &options, out)?;
    Ok(0)
}

/// Loads the project (for the marts' relations), writes the report, and says
/// where on the console; returns the paths written.
pub(super) fn write(
    inv: &Invocation,
    settings: Arc<Settings>,
    options: &ReportOptions,
    out: &Output,
) -> Result<Vec<PathBuf>> {
    let loaded = load(settings.clone(), &inv.cancel)?;
    let paths = inv.runtime.block_on(async {
        tokio::select! {
            r = report::write(&settings, &loaded.manifest, &loaded.target_dir, options) => r,
            _ = inv.cancel.cancelled() => Err(Error::interrupted("while writing the report")),
        }
    })?;
    for p in &paths {
        out.info(
            "report_written",
            &format!("Wrote the executive report to {}", p.display()),
        );
    }
    Ok(paths)
}
