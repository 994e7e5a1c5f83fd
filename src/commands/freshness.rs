//! `source freshness` (and its alias `freshness`): the age of the newest row of
//! every selected source table with a freshness policy; writes `sources.json`.

use std::sync::Arc;
use std::time::Instant;

use crate::artifacts;
use crate::cli::{FreshnessArgs, Selection};
use crate::console::{plural, Counts, Output};
use crate::error::Result;
use crate::freshness;
use crate::manifest::SourceNode;
use crate::postgres;
use crate::results::FreshnessStatus;
use crate::settings::Settings;

use super::{chosen, header, load, warn_unmatched, Invocation};

/// `source freshness`: checks every selected source table with a policy.
pub(super) fn source_freshness(
    inv: &Invocation,
    settings: Arc<Settings>,
    sel: &Selection,
    args: &FreshnessArgs,
    out: &Output,
) -> Result<i32> {
    let started = Instant::now();
    let loaded = load(settings.clone(), &inv.cancel)?;
    header(out, &loaded);
    warn_unmatched(out, &loaded, sel)?;
    let chosen = if sel.select.is_empty() && sel.selector.is_none() {
        loaded
            .manifest
            .sources
            .iter()
            .map(|s| s.unique_id.clone())
            .collect()
    } else {
        chosen(&loaded, sel, out)?
    };
    let sources: Vec<&SourceNode> = loaded
        .manifest
        .sources
        .iter()
        .filter(|s| chosen.contains(&s.unique_id) && freshness::has_check(s))
        .collect();
    if sources.is_empty() {
        out.warn(
            "nothing_to_do",
            "Nothing to do: no selected source table has a loaded_at_field and a freshness policy.",
        );
        return Ok(0);
    }
    let results = inv.runtime.block_on(async {
        let client =
            postgres::connect_with_retry(&settings, &inv.cancel, &|m| out.warn("connect_retry", m))
                .await?;
        out.blank();
        freshness::check_all(&client, &settings, &sources, out, &inv.cancel).await
    })?;
    let elapsed = started.elapsed().as_secs_f64();
    // `--output FILE`: relative to the current directory, as dbt reads it.
    let (dir, name) = match &args.output {
        Some(file) => (std::path::PathBuf::new(), file.display().to_string()),
        None => (loaded.target_dir.clone(), "sources.json".to_string()),
    };
    artifacts::write_json(
        &dir,
        &name,
        &freshness::sources_json(&results, elapsed, &loaded.invocation_id),
    )?;
    let mut counts = Counts::default();
    let mut failures = Vec::new();
    for r in &results {
        match r.status {
            FreshnessStatus::Pass => counts.pass += 1,
            FreshnessStatus::Warn => {
                counts.warn += 1;
                failures.push((
                    format!("Warning: source {} is stale", r.unique_id),
                    r.message.clone(),
                ));
            }
            _ => {
                counts.error += 1;
                failures.push((
                    format!("Failure: source {} ({})", r.unique_id, r.status.as_str()),
                    r.message.clone(),
                ));
            }
        }
    }
    out.summary(
        &counts,
        &failures,
        elapsed,
        &format!(
            "freshness checks of {} source table{}",
            results.len(),
            plural(results.len())
        ),
    );
    Ok(if counts.error > 0 { 1 } else { 0 })
}
