//! `compile`: renders the selected models', analyses' and tests' SQL into
//! `<target-path>/compiled/` and writes `manifest.json`, without a database.

use std::sync::Arc;

use crate::artifacts;
use crate::cli::GlobalArgs;
use crate::console::{plural, Output};
use crate::error::Result;
use crate::execute::{plan, Job};
use crate::manifest::{Materialization, NodeKind};
use crate::settings::Settings;

use super::{compile_selected, header, load, warn_unmatched, Invocation};

pub(super) fn compile(
    inv: &Invocation,
    settings: Arc<Settings>,
    global: &GlobalArgs,
    out: &Output,
) -> Result<i32> {
    let mut loaded = load(settings, &inv.cancel)?;
    header(out, &loaded);
    warn_unmatched(out, &loaded, global)?;
    let (mut order, _) = plan(
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
    // compile also renders what never runs: the selected analyses and ephemeral
    // models.
    let m = &loaded.manifest;
    let extra: Vec<String> = loaded
        .graph
        .select(m, &global.select, &global.exclude)?
        .into_iter()
        .filter(|id| {
            m.kind(id) == Some(NodeKind::Analysis)
                || m.node(id).map(|n| n.materialized) == Some(Materialization::Ephemeral)
        })
        .collect();
    order.extend(extra);
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
