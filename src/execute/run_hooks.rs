//! `on-run-start` and `on-run-end` hooks, as dbt-core 1.10 runs them: one after
//! the other on one connection, outside any transaction, each reported on the
//! console (`1 of 2 START hook: shop.on-run-start.0`) and in `run_results.json` as
//! its `operation` node. Once one fails (or the invocation is cancelled), the
//! rest of its kind are skipped; a failed
//! `on-run-start` does not stop the job's nodes (dbt's default), but the job then
//! exits 1.

use std::sync::Arc;
use std::time::Instant;

use tokio_postgres::Client;

use crate::cancel::Cancel;
use crate::console::Output;
use crate::postgres;
use crate::results::{Built, NodeFailure, NodeResult, Outcome, SkipReason};

/// A run hook rendered for its run: its SQL, or why it could not be rendered.
pub(crate) struct RenderedRunHook {
    pub(crate) unique_id: String,
    /// `<project>.on-run-start.<index>`.
    pub(crate) name: String,
    pub(crate) sql: Result<String, String>,
}

/// Runs `hooks` in order on `client`.
pub(super) async fn run(
    client: &Client,
    hooks: &[RenderedRunHook],
    out: &Arc<Output>,
    cancel: &Cancel,
) -> Vec<NodeResult> {
    let mut results = Vec::new();
    let mut failed = false;
    for (i, h) in hooks.iter().enumerate() {
        let what = format!("hook: {}", h.name);
        let index = i + 1;
        if failed || cancel.is_cancelled() {
            let outcome = Outcome::Skipped(SkipReason::Stopped);
            out.node_end(index, hooks.len(), &what, &h.unique_id, &outcome, 0.0);
            results.push(NodeResult::new(&h.unique_id, outcome));
            continue;
        }
        let started_at = chrono::Utc::now();
        let clock = Instant::now();
        out.node_start(index, hooks.len(), &what, &h.unique_id);
        let outcome = match &h.sql {
            Err(message) => Outcome::Failed(NodeFailure::Compile {
                message: message.clone(),
            }),
            // A hook that renders to nothing runs nothing.
            Ok(sql) if sql.is_empty() => passed(h),
            Ok(sql) => match client.batch_execute(sql.as_str()).await {
                Ok(()) => passed(h),
                Err(e) => Outcome::Failed(NodeFailure::Sql {
                    sqlstate: e.code().map(|c| c.code().to_string()),
                    message: format!(
                        "{} failed: {}",
                        h.name,
                        postgres::describe_db_error(&e, sql)
                    ),
                }),
            },
        };
        failed = matches!(outcome, Outcome::Failed(_));
        let secs = clock.elapsed().as_secs_f64();
        out.node_end(index, hooks.len(), &what, &h.unique_id, &outcome, secs);
        results.push(NodeResult {
            started_at: Some(started_at),
            completed_at: Some(chrono::Utc::now()),
            execution_time: secs,
            thread_id: "main".to_string(),
            compiled_code: h.sql.as_ref().ok().cloned(),
            ..NodeResult::new(&h.unique_id, outcome)
        });
    }
    results
}

fn passed(h: &RenderedRunHook) -> Outcome {
    Outcome::Built(Built {
        message: format!("{} passed", h.name),
        code: String::new(),
        rows: None,
    })
}
