//! `source check`: compares the live source tables with the columns the project
//! declares for them (the landing contract, [`crate::landing`]); exit 1 when a
//! table or column is missing or a type changed, whatever `source_check_warn_only`
//! says (that setting is for `build`, `run` and `test`).

use std::sync::Arc;

use crate::cli::Selection;
use crate::console::{plural, Output};
use crate::error::Result;
use crate::landing;
use crate::manifest::SourceNode;
use crate::postgres;
use crate::settings::Settings;

use super::{chosen, header, load, warn_unmatched, Invocation};

pub(super) fn source_check(
    inv: &Invocation,
    settings: Arc<Settings>,
    sel: &Selection,
    out: &Output,
) -> Result<i32> {
    let loaded = load(settings.clone(), &inv.cancel)?;
    header(out, &loaded);
    warn_unmatched(out, &loaded, sel)?;
    let chosen = if sel.select.is_empty() && sel.selector.is_none() {
        None
    } else {
        Some(chosen(&loaded, sel, out)?)
    };
    let sources: Vec<&SourceNode> = loaded
        .manifest
        .sources
        .iter()
        .filter(|s| chosen.as_ref().is_none_or(|c| c.contains(&s.unique_id)))
        .collect();
    let checked = sources.iter().filter(|s| landing::declares(s)).count();
    let diffs = inv.runtime.block_on(async {
        let client =
            postgres::connect_with_retry(&settings, &inv.cancel, &|m| out.warn("connect_retry", m))
                .await?;
        landing::check(&client, &sources).await
    })?;
    let skipped = sources.len() - checked;
    let skipped = if skipped == 0 {
        String::new()
    } else {
        format!(
            "; {skipped} source table{} without declared column types skipped",
            plural(skipped)
        )
    };
    if landing::report(out, &diffs, false) {
        return Ok(1);
    }
    out.info(
        "source_check",
        &format!(
            "{checked} source table{} checked against the declared columns{skipped}",
            plural(checked)
        ),
    );
    Ok(0)
}
