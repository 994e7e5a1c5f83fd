//! `retry`: runs again, with the command and flags of the last invocation
//! (`args` of its `run_results.json`, in the target path or `--state DIR`), the
//! nodes that errored, failed or were skipped there — as dbt's `retry`. The
//! last run's `--threads`, `--vars`, `--full-refresh`, `--store-failures` and
//! `--check-freshness` apply again, `--threads`/`--vars` given to `retry`
//! override them. Nothing to retry is said, exit 0.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use serde_json::Value as Json;

use crate::cli::{GlobalArgs, Selection};
use crate::console::Output;
use crate::error::{Error, Result};
use crate::execute::Job;
use crate::project::{self, Batch, EventWindow};
use crate::settings::Settings;

use super::{job, Invocation};

/// The statuses dbt retries.
const RETRIED: [&str; 5] = [
    "error",
    "fail",
    "skipped",
    "runtime error",
    "partial success",
];

pub(super) fn retry(
    inv: &Invocation,
    settings: Arc<Settings>,
    global: &GlobalArgs,
    sel: &Selection,
    out: &Arc<Output>,
) -> Result<i32> {
    let dir = &settings.project_dir;
    let path = match &global.state {
        Some(state) => dir.join(state).join("run_results.json"),
        None => {
            let target = project::project_file(dir)?.target_path;
            settings
                .resolve_target_path(&target)
                .join("run_results.json")
        }
    };
    let previous = read(&path)?;
    let args = previous.get("args").cloned().unwrap_or(Json::Null);
    let which = args.get("which").and_then(Json::as_str).unwrap_or("");
    let flag = |k: &str| args.get(k).and_then(Json::as_bool).unwrap_or(false);
    // The window of the microbatch models, as the last run had it.
    let event_time = EventWindow::of(
        args.get("event_time_start").and_then(Json::as_str),
        args.get("event_time_end").and_then(Json::as_str),
    )
    .map_err(|e| Error::usage(format!("retry: {}: {e}", path.display())))?;
    let job = match which {
        "run" => Job::Run {
            full_refresh: flag("full_refresh"),
            empty: flag("empty"),
            event_time,
        },
        "seed" => Job::Seed {
            full_refresh: flag("full_refresh"),
        },
        "snapshot" => Job::Snapshot,
        "test" => Job::Test {
            store_failures: flag("store_failures"),
        },
        "build" => Job::Build {
            store_failures: flag("store_failures"),
            check_freshness: flag("check_freshness"),
            full_refresh: flag("full_refresh"),
            empty: flag("empty"),
            event_time,
        },
        other => {
            return Err(Error::usage(format!(
                "retry: {} was written by `{other}`, which retry does not repeat; retry repeats run, seed, snapshot, test and build",
                path.display()
            )))
        }
    };
    let ids: BTreeSet<String> = previous
        .get("results")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .filter(|r| {
            r.get("status")
                .and_then(Json::as_str)
                .is_some_and(|s| RETRIED.contains(&s))
        })
        .filter_map(|r| Some(r.get("unique_id")?.as_str()?.to_string()))
        .filter(|id| !id.starts_with("operation."))
        .collect();
    let mut settings = (*settings).clone();
    if global.threads.is_none() {
        if let Some(n) = args.get("threads").and_then(Json::as_u64) {
            settings.threads = n.max(1) as usize;
        }
    }
    if global.vars.is_none() {
        if let Some(vars) = args.get("vars").and_then(Json::as_object) {
            settings.vars = vars.clone();
        }
    }
    let mut sel = sel.clone();
    sel.ids = Some(ids);
    // As dbt, batches computed again end where the retried run's ended: at the
    // time it started (dbt's `invocation_started_at`; ours writes the time it
    // finished, `generated_at`).
    let started = ["invocation_started_at", "generated_at"]
        .iter()
        .find_map(|k| previous.get("metadata")?.get(*k)?.as_str())
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&chrono::Utc));
    let batches = batches(&previous);
    job::run_with(inv, Arc::new(settings), &sel, out, job, batches, started)
}

/// The microbatch models of the last run that had both successful and failed
/// batches: only their failed batches run again (dbt's rule: a model none of
/// whose batches succeeded runs all its batches again).
fn batches(previous: &Json) -> BTreeMap<String, (Vec<Batch>, Vec<Batch>)> {
    let windows = |v: Option<&Json>| -> Vec<Batch> {
        v.and_then(Json::as_array)
            .into_iter()
            .flatten()
            .filter_map(|pair| {
                let parse = |i: usize| {
                    chrono::DateTime::parse_from_rfc3339(pair.get(i)?.as_str()?)
                        .ok()
                        .map(|t| t.with_timezone(&chrono::Utc))
                };
                Some((parse(0)?, parse(1)?))
            })
            .collect()
    };
    previous
        .get("results")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| {
            let b = r.get("batch_results")?;
            let (ok, failed) = (windows(b.get("successful")), windows(b.get("failed")));
            (!ok.is_empty() && !failed.is_empty())
                .then(|| Some((r.get("unique_id")?.as_str()?.to_string(), (ok, failed))))?
        })
        .collect()
}

fn read(path: &Path) -> Result<Json> {
    let text = std::fs::read_to_string(path).map_err(|_| {
        Error::usage(format!(
            "retry: no previous run to retry: {} does not exist; run a command first (run, seed, test or build), or give --state the directory of its run_results.json",
            path.display()
        ))
    })?;
    serde_json::from_str(&text).map_err(|e| {
        Error::usage(format!(
            "retry: {} is not valid JSON ({e}); run the command again instead",
            path.display()
        ))
    })
}
