//! `run`, `test` and `build`: load, plan, compile, execute, then write
//! `run_results.json` and print the summary. The three share this pipeline; they
//! differ in their [`Job`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use serde_json::json;

use crate::artifacts;
use crate::cli::Selection;
use crate::console::{plural, Counts, Output};
use crate::error::Result;
use crate::execute::{self, plan, Executed, Execution, Job, MicrobatchRun, RenderedRunHook};
use crate::manifest::{Manifest, Materialization};
use crate::project::Batch;
use crate::render;
use crate::report::ReportOptions;
use crate::results::{NodeResult, Status};
use crate::settings::Settings;

use super::{
    chosen, compile_selected, defer, header, load, mark_incremental, warn_unmatched, Invocation,
};

/// Runs `job` over the selected nodes; returns the exit code.
pub(super) fn run(
    inv: &Invocation,
    settings: Arc<Settings>,
    sel: &Selection,
    out: &Arc<Output>,
    job: Job,
) -> Result<i32> {
    run_with(inv, settings, sel, out, job, BTreeMap::new(), None)
}

/// [`run`], with `retry`'s batches of microbatch models to run again and the
/// time the retried invocation started (the end of batches computed again).
pub(super) fn run_with(
    inv: &Invocation,
    settings: Arc<Settings>,
    sel: &Selection,
    out: &Arc<Output>,
    job: Job,
    previous_batches: BTreeMap<String, (Vec<Batch>, Vec<Batch>)>,
    previous_start: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<i32> {
    let started = Instant::now();
    let run_started = chrono::Utc::now();
    let mut loaded = load(settings.clone(), &inv.cancel)?;
    header(out, &loaded);
    warn_unmatched(out, &loaded, sel)?;
    let chosen = chosen(&loaded, sel, out)?;
    let (order, graph) = plan(&loaded.graph, &loaded.manifest, &chosen, job);
    let store_failures = match job {
        Job::Test { store_failures } | Job::Build { store_failures, .. } => {
            store_failures || settings.store_failures
        }
        Job::Run { .. } | Job::Seed { .. } | Job::Snapshot => false,
    };
    loaded.renderer.store_failures(store_failures);
    let full_refresh = match job {
        Job::Run { full_refresh, .. }
        | Job::Seed { full_refresh }
        | Job::Build { full_refresh, .. } => full_refresh,
        Job::Test { .. } | Job::Snapshot => false,
    };
    mark_incremental(inv, &settings, out, &mut loaded, &order, full_refresh)?;
    defer(inv, &settings, out, &loaded, &sel.against, &chosen, &order)?;
    let empty = matches!(
        job,
        Job::Run { empty: true, .. } | Job::Build { empty: true, .. }
    );
    loaded.renderer.empty(empty);
    compile_selected(&mut loaded, &order, &inv.cancel, None)?;
    let check_freshness = match job {
        Job::Build {
            check_freshness, ..
        } => check_freshness || settings.check_freshness,
        _ => false,
    };
    let args = json!({
        "which": job.name(), "select": sel.select, "exclude": sel.exclude, "selector": sel.selector,
        "threads": settings.threads, "vars": settings.vars, "fail_fast": settings.fail_fast,
        "store_failures": store_failures, "check_freshness": check_freshness,
        "full_refresh": full_refresh, "empty": empty,
    });
    let event_time = match job {
        Job::Run { event_time, .. } | Job::Build { event_time, .. } => event_time,
        _ => None,
    };
    let mut args = args;
    if let Some(w) = event_time {
        // dbt's spelling, which `retry` reads back.
        args["event_time_start"] = json!(w.start.format("%Y-%m-%dT%H:%M:%S").to_string());
        args["event_time_end"] = json!(w.end.format("%Y-%m-%dT%H:%M:%S").to_string());
    }
    if order.is_empty() {
        out.warn(
            "nothing_to_do",
            "Nothing to do: no node matches the selection. Check --select/--exclude.",
        );
        artifacts::write_json(
            &loaded.target_dir,
            "run_results.json",
            &artifacts::run_results_json(&[], 0.0, &loaded.invocation_id, args),
        )?;
        return Ok(0);
    }
    let run_hooks = loaded.manifest.run_hooks.clone();
    let render_run_hooks = |end: bool, extra: serde_json::Value| -> Vec<RenderedRunHook> {
        run_hooks
            .iter()
            .filter(|h| h.end == end)
            .map(|h| RenderedRunHook {
                unique_id: h.unique_id.clone(),
                name: h.name.clone(),
                sql: loaded.renderer.render_run_hook(h, extra.clone()),
            })
            .collect()
    };
    let on_run_start = render_run_hooks(false, json!({}));
    let manifest = Arc::new(loaded.manifest);
    let execution = Execution {
        settings: settings.clone(),
        manifest: manifest.clone(),
        graph,
        order: order.clone(),
        target_dir: loaded.target_dir.clone(),
        invocation_id: loaded.invocation_id.clone(),
        out: out.clone(),
        cancel: inv.cancel.clone(),
        store_failures,
        check_freshness,
        full_refresh,
        on_run_start,
        renderer: loaded.renderer.clone(),
        microbatch: MicrobatchRun {
            window: event_time,
            previous: previous_batches,
            now: Some(previous_start.unwrap_or(run_started)),
        },
    };
    let (mut results, interrupted) = match inv.runtime.block_on(execute::execute(execution))? {
        Executed::Ran {
            results,
            interrupted,
        } => (results, interrupted),
        Executed::StaleSources | Executed::LandingMismatch => return Ok(1), // nothing was built
    };
    if !interrupted {
        let on_run_end = render_run_hooks(true, render::run_end_context(&manifest, &results));
        let ran = execute::run_end_hooks(&settings, &on_run_end, out, &inv.cancel);
        results.extend(inv.runtime.block_on(ran)?);
    }
    let elapsed = started.elapsed().as_secs_f64();
    artifacts::write_json(
        &loaded.target_dir,
        "run_results.json",
        &artifacts::run_results_json(&results, elapsed, &loaded.invocation_id, args),
    )?;
    let code = summarize(out, &manifest, &results, elapsed, &order);
    if interrupted {
        out.error("interrupted: in-flight work was cancelled and rolled back; those models are as they were");
        return Ok(1);
    }
    if code == 0 && matches!(job, Job::Build { .. }) && settings.report_after_build {
        super::report::write(inv, settings, &ReportOptions::default(), out)?;
    }
    Ok(code)
}

/// Counts, failure details and the exit code of a finished run.
fn summarize(
    out: &Output,
    manifest: &Manifest,
    results: &[NodeResult],
    elapsed: f64,
    order: &[String],
) -> i32 {
    let mut counts = Counts::default();
    let mut failures = Vec::new();
    for r in results {
        // A package's file as dbt names it: relative to the package.
        let path = |file| manifest.package_path(file).1;
        let label = match (manifest.node(&r.unique_id), manifest.test(&r.unique_id)) {
            (Some(n), _) => format!(
                "{} {} ({})",
                n.resource_type,
                n.name,
                path(&n.original_file_path)
            ),
            (_, Some(t)) if t.unit.is_some() => {
                format!("unit_test {} ({})", t.name, path(&t.original_file_path))
            }
            (_, Some(t)) => format!("test {} ({})", t.name, path(&t.original_file_path)),
            _ => match r.unique_id.strip_prefix("operation.") {
                Some(op) => format!(
                    "operation {} (dbt_project.yml)",
                    op.split_once('.').map_or(op, |(_, name)| name)
                ),
                None => r.unique_id.clone(),
            },
        };
        match r.status() {
            Status::Success | Status::Pass => counts.pass += 1,
            Status::Warn => {
                counts.warn += 1;
                failures.push((format!("Warning in {label}"), r.message()));
            }
            Status::Error | Status::Fail | Status::PartialSuccess => {
                counts.error += 1;
                let message = match &r.outcome {
                    crate::results::Outcome::Batched(b) => b.failure_detail(),
                    _ => r.message(),
                };
                failures.push((format!("Failure in {label}"), message));
            }
            Status::Skipped => counts.skip += 1,
            Status::NoOp => counts.noop += 1,
        }
    }
    let (mut seeds, mut tables, mut incrementals, mut views, mut tests, mut noops) =
        (0, 0, 0, 0, 0, 0);
    let mut matviews = 0;
    let mut snapshots = 0;
    let mut units = 0;
    for id in order {
        if manifest.test(id).is_none() && manifest.node(id).is_none() {
            noops += 1; // an exposure or saved query
            continue;
        }
        match manifest.node(id).map(|n| n.materialized) {
            Some(Materialization::Seed) => seeds += 1,
            Some(Materialization::Table) => tables += 1,
            Some(Materialization::Incremental) => incrementals += 1,
            Some(Materialization::View) => views += 1,
            Some(Materialization::MaterializedView) => matviews += 1,
            Some(Materialization::Snapshot) => snapshots += 1,
            // Never run: inlined into the models that use it.
            Some(Materialization::Ephemeral) => {}
            None if manifest.test(id).is_some_and(|t| t.unit.is_some()) => units += 1,
            None => tests += 1,
        }
    }
    let hooks = manifest
        .run_hooks
        .iter()
        .filter(|h| results.iter().any(|r| r.unique_id == h.unique_id))
        .count();
    let mut what = Vec::new();
    for (n, label) in [
        (hooks, "project hook"),
        (seeds, "seed"),
        (snapshots, "snapshot"),
        (tables, "table model"),
        (incrementals, "incremental model"),
        (views, "view model"),
        (matviews, "materialized_view model"),
        (tests, "data test"),
        (units, "unit test"),
        (noops, "no-op node"),
    ] {
        if n > 0 {
            what.push(format!("{n} {label}{}", plural(n)));
        }
    }
    out.summary(&counts, &failures, elapsed, &what.join(", "));
    if counts.error > 0 {
        1
    } else {
        0
    }
}
