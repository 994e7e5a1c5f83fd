//! `compile`: renders the selected models' and tests' SQL into
//! `<target-path>/compiled/` and writes `manifest.json`, without a database.

use std::sync::Arc;

use crate::artifacts;
use crate::cli::GlobalArgs;
use crate::console::{plural, Output};
use crate::error::Result;
use crate::execute::{plan, Job};
use crate::manifest::NodeKind;
use crate::settings::Settings;

use super::{compile_selected, header, load, Invocation};

pub(super) fn compile(
    inv: &Invocation,
    settings: Arc<Settings>,
    global: &GlobalArgs,
    out: &Output,
) -> Result<i32> {
    let mut loaded = load(settings, &inv.cancel)?;
    header(out, &loaded);
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
    compile_selected(&mut loaded, &order, &inv.cancel)?;
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
