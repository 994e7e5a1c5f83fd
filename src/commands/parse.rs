//! `parse`: reads and renders the project (every file, config and macro call,
//! as `run` would before building), writes `manifest.json` and reports how long
//! it took; no database is touched.

use std::sync::Arc;
use std::time::Instant;

use crate::artifacts;
use crate::console::Output;
use crate::error::Result;
use crate::settings::Settings;

use super::{header, load, Invocation};

pub(super) fn parse(inv: &Invocation, settings: Arc<Settings>, out: &Output) -> Result<i32> {
    let started = Instant::now();
    let loaded = load(settings, &inv.cancel)?;
    header(out, &loaded);
    let parsed = started.elapsed().as_secs_f64();
    let path = loaded.target_dir.join("manifest.json");
    artifacts::write_json(
        &loaded.target_dir,
        "manifest.json",
        &artifacts::manifest_json(&loaded.manifest, &loaded.invocation_id),
    )?;
    out.info(
        "parse_timing",
        &format!(
            "Parsed the project in {parsed:.2}s; wrote {} in {:.2}s",
            path.display(),
            started.elapsed().as_secs_f64() - parsed
        ),
    );
    Ok(0)
}
