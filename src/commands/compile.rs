//! `compile`: renders the selected models' and tests' SQL into
//! `<target-path>/compiled/` and writes `manifest.json`. The database is only
//! asked which selected incremental models' tables exist (`is_incremental()`).

use std::sync::Arc;

use crate::artifacts;
use crate::cli::GlobalArgs;
use crate::console::{plural, Output};
use crate::error::Result;
use crate::execute::{plan, Job};
use crate::manifest::NodeKind;
use crate::settings::Settings;

use super::{compile_selected, header, load, mark_incremental, warn_unmatched, Invocation};

pub(super) fn compile(
    inv: &Invocation,
    settings: Arc<Settings>,
    global: &GlobalArgs,
    out: &Output,
    full_refresh: bool,
) -> Result<i32> {
    let mut loaded = load(settings.clone(), &inv.cancel)?;
    header(out, &loaded);
    warn_unmatched(out, &loaded, global)?;
    let (order, _) = plan(
        &loaded.graph,
        &loaded.manifest,
        &global.select,
        &global.exclude,
        Job::Build {
            store_failures: false,
            check_freshness: false,
            full_refresh: false,
        },
    )?;
    mark_incremental(inv, &settings, out, &mut loaded, &order, full_refresh)?;
    let failed = compile_selected(&mut loaded, &order, &inv.cancel)?;
    let m = &loaded.manifest;
    for id in &order {
        let error = m
            .node(id)
            .and_then(|n| n.compile_error.as_ref())
            .or_else(|| m.test(id).and_then(|t| t.compile_error.as_ref()));
        if let Some(e) = error {
            out.error(&format!("Compilation Error in {id}: {e}"));
        }
    }
    if failed > 0 {
        return Ok(1);
    }
    let order: Vec<String> = order
        .into_iter()
        .filter(|id| loaded.manifest.kind(id) == Some(NodeKind::Model))
        .collect();
    out.info(
        "compiled",
        &format!(
            "Compiled {} model{} to {}",
            order.len(),
            plural(order.len()),
            artifacts::compiled_path(&loaded.target_dir, &loaded.manifest.project_name, "")
                .display()
        ),
    );
    Ok(0)
}
