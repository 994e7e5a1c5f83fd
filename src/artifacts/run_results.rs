//! `run_results.json`: status, timing, rows and message of each executed or
//! skipped node, in dbt's schema (v6).

use serde_json::{json, Value};

use crate::results::{NodeResult, Outcome, Status};

const RUN_RESULTS_SCHEMA: &str = "https://schemas.getdbt.com/dbt/run-results/v6.json";

/// `run_results.json` of an invocation.
pub(crate) fn run_results_json(
    results: &[NodeResult],
    elapsed: f64,
    invocation_id: &str,
    args: Value,
) -> Value {
    let ts = |t: &Option<chrono::DateTime<chrono::Utc>>| {
        t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
    };
    let rows: Vec<Value> = results
        .iter()
        .map(|r| {
            let timing = if r.started_at.is_some() {
                json!([{"name": "execute", "started_at": ts(&r.started_at), "completed_at": ts(&r.completed_at)}])
            } else {
                json!([])
            };
            let status = r.status();
            // A microbatch model's windows, as dbt writes them.
            let (batch_results, batched) = match &r.outcome {
                Outcome::Batched(b) => {
                    let windows = |list: &[crate::project::Batch]| -> Vec<Value> {
                        list.iter()
                            .map(|(s, e)| json!([s.to_rfc3339(), e.to_rfc3339()]))
                            .collect()
                    };
                    (json!({"successful": windows(&b.successful), "failed": windows(&b.failed)}), true)
                }
                _ => (Value::Null, false),
            };
            json!({
                "status": status.as_str(),
                "timing": timing,
                "thread_id": r.thread_id,
                "execution_time": r.execution_time,
                "adapter_response": if r.started_at.is_some() && status != Status::Error && !batched {
                    json!({"_message": r.message(), "code": r.code(), "rows_affected": r.rows_affected()})
                } else { json!({}) },
                "message": r.message(),
                "failures": r.failures(),
                "unique_id": r.unique_id,
                "compiled": r.compiled_code.is_some(),
                "compiled_code": r.compiled_code,
                "relation_name": r.relation_name,
                "batch_results": batch_results,
            })
        })
        .collect();
    json!({
        "metadata": super::metadata(RUN_RESULTS_SCHEMA, invocation_id),
        "results": rows,
        "elapsed_time": elapsed,
        "args": args,
    })
}
