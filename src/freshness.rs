//! Source freshness: the age of the newest row of each source table that declares
//! a `loaded_at_field` and a `freshness` policy (`warn_after`/`error_after`, each a
//! `count` of `minute`/`hour`/`day`, optional `filter`), judged pass/warn/error.
//!
//! The loaded-at column may be `timestamp` holding UTC wall-clock time (as
//! target-postgres writes `_sdc_batched_at`), `timestamptz`, or `date`: the query
//! converts each to an instant explicitly, so ages are right whatever the
//! server's or the session's TimeZone.

use serde_json::{json, Value};
use tokio_postgres::Client;

use crate::cancel::Cancel;
use crate::console::Output;
use crate::manifest::{quote_ident, SourceNode};
use crate::postgres::describe_db_error;
use crate::project::{FreshnessPolicy, Threshold};
use crate::results::FreshnessStatus;
use crate::settings::Settings;

/// The outcome for one source table.
#[derive(Debug, Clone)]
pub(crate) struct FreshnessResult {
    pub(crate) unique_id: String,
    pub(crate) status: FreshnessStatus,
    pub(crate) max_loaded_at: Option<String>,
    pub(crate) snapshotted_at: Option<String>,
    pub(crate) age_seconds: Option<f64>,
    pub(crate) criteria: Value,
    pub(crate) message: String,
    pub(crate) execution_time: f64,
    pub(crate) started_at: chrono::DateTime<chrono::Utc>,
    pub(crate) completed_at: chrono::DateTime<chrono::Utc>,
}

/// Whether a source table has a freshness check to run.
pub(crate) fn has_check(s: &SourceNode) -> bool {
    s.table.loaded_at_field.is_some()
        && s.table
            .freshness
            .as_ref()
            .is_some_and(FreshnessPolicy::has_threshold)
}

/// Checks one source table.
pub(crate) async fn check(client: &Client, s: &SourceNode) -> FreshnessResult {
    let started_at = chrono::Utc::now();
    let clock = std::time::Instant::now();
    let policy = s.table.freshness.clone().unwrap_or(FreshnessPolicy {
        warn_after: None,
        error_after: None,
        filter: None,
    });
    let criteria = policy.to_json();
    let mut r = FreshnessResult {
        unique_id: s.unique_id.clone(),
        status: FreshnessStatus::RuntimeError,
        max_loaded_at: None,
        snapshotted_at: None,
        age_seconds: None,
        criteria,
        message: String::new(),
        execution_time: 0.0,
        started_at,
        completed_at: started_at,
    };
    match measure(client, s, &policy).await {
        Ok((max, snap, age)) => {
            r.max_loaded_at = max;
            r.snapshotted_at = Some(snap);
            r.age_seconds = age;
            let (status, message) = judge(
                age,
                policy.warn_after.map(Threshold::seconds),
                policy.error_after.map(Threshold::seconds),
            );
            r.status = status;
            r.message = message;
        }
        Err(e) => {
            r.message = format!(
                "{}: source {}.{}: {e}",
                s.table.file, s.table.source_name, s.table.name
            )
        }
    }
    r.completed_at = chrono::Utc::now();
    r.execution_time = clock.elapsed().as_secs_f64();
    r
}

fn judge(age: Option<f64>, warn: Option<f64>, error: Option<f64>) -> (FreshnessStatus, String) {
    let Some(age) = age else {
        return (
            FreshnessStatus::Error,
            "the table has no rows with a loaded-at time".to_string(),
        );
    };
    let hours = age / 3600.0;
    if error.is_some_and(|e| age > e) {
        (
            FreshnessStatus::Error,
            format!(
                "newest row is {hours:.1} hours old, over the error threshold of {:.1} hours",
                error.unwrap_or(0.0) / 3600.0
            ),
        )
    } else if warn.is_some_and(|w| age > w) {
        (
            FreshnessStatus::Warn,
            format!(
                "newest row is {hours:.1} hours old, over the warning threshold of {:.1} hours",
                warn.unwrap_or(0.0) / 3600.0
            ),
        )
    } else {
        (
            FreshnessStatus::Pass,
            format!("newest row is {hours:.1} hours old"),
        )
    }
}

/// (max loaded-at as UTC ISO text, snapshot time, age in seconds).
async fn measure(
    client: &Client,
    s: &SourceNode,
    policy: &FreshnessPolicy,
) -> Result<(Option<String>, String, Option<f64>), String> {
    let field = s.table.loaded_at_field.clone().unwrap_or_default();
    let rel = s.relation_name();
    // A plain column name: look its type up to convert it to an instant. Anything
    // else is taken as an SQL expression yielding timestamptz, as in dbt.
    let ty: Option<String> = client
        .query_opt(
            "select format_type(a.atttypid, a.atttypmod) from pg_attribute a
             join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
             where n.nspname = $1 and c.relname = $2 and a.attname = $3 and a.attnum > 0 and not a.attisdropped",
            &[&s.table.schema, &s.table.identifier, &field],
        )
        .await
        .map_err(|e| describe_db_error(&e, ""))?
        .map(|row| row.get(0));
    let expr = match ty.as_deref() {
        Some(t) if t.starts_with("timestamp without time zone") => format!("max({}) at time zone 'UTC'", quote_ident(&field)),
        Some(t) if t.starts_with("timestamp with time zone") => format!("max({})", quote_ident(&field)),
        Some("date") => format!("max({})::timestamp at time zone 'UTC'", quote_ident(&field)),
        Some(other) => return Err(format!("loaded_at_field '{field}' is of type {other}; it must be a timestamp, timestamptz or date")),
        None => format!("max(({field})::timestamptz)"),
    };
    let filter = policy
        .filter
        .as_deref()
        .map(|f| format!(" where {f}"))
        .unwrap_or_default();
    let sql = format!(
        "select to_char(m at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),
                to_char(now() at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),
                extract(epoch from now() - m)::float8
         from (select {expr} as m from {rel}{filter}) x"
    );
    let row = client
        .query_one(sql.as_str(), &[])
        .await
        .map_err(|e| describe_db_error(&e, ""))?;
    Ok((row.get(0), row.get(1), row.get(2)))
}

/// `sources.json` in dbt's shape.
pub(crate) fn sources_json(
    results: &[FreshnessResult],
    elapsed: f64,
    invocation_id: &str,
) -> Value {
    let ts =
        |t: &chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    json!({
        "metadata": {
            "dbt_schema_version": "https://schemas.getdbt.com/dbt/sources/v3.json",
            "dbt_version": format!("reluvia-transform {}", crate::VERSION),
            "generated_at": ts(&chrono::Utc::now()),
            "invocation_id": invocation_id,
            "env": {},
        },
        "results": results.iter().map(|r| {
            let mut v = json!({
                "unique_id": r.unique_id,
                "status": r.status.as_str(),
                "max_loaded_at": r.max_loaded_at,
                "snapshotted_at": r.snapshotted_at,
                "max_loaded_at_time_ago_in_s": r.age_seconds,
                "criteria": r.criteria,
                "adapter_response": {},
                "timing": [{"name": "execute", "started_at": ts(&r.started_at), "completed_at": ts(&r.completed_at)}],
                "thread_id": "Thread-1",
                "execution_time": r.execution_time,
            });
            if r.status == FreshnessStatus::RuntimeError {
                v["error"] = json!(r.message);
            }
            v
        }).collect::<Vec<_>>(),
        "elapsed_time": elapsed,
    })
}

/// Checks `sources` one after the other on `client`, printing a line for each.
/// Cancellation cancels the running check on the server and fails the whole.
pub(crate) async fn check_all(
    client: &Client,
    settings: &Settings,
    sources: &[&SourceNode],
    out: &Output,
    cancel: &Cancel,
) -> crate::error::Result<Vec<FreshnessResult>> {
    let total = sources.len();
    let mut results = Vec::new();
    for (i, s) in sources.iter().enumerate() {
        let what = format!("freshness of {}.{}", s.table.source_name, s.table.name);
        out.node_start(i + 1, total, &what, &s.unique_id);
        let r = crate::postgres::cancellable(
            client,
            settings,
            cancel,
            "while checking source freshness; nothing was built",
            async { Ok(check(client, s).await) },
        )
        .await?;
        out.freshness_end(
            i + 1,
            total,
            r.status,
            &what,
            &s.unique_id,
            &r.message,
            r.execution_time,
        );
        results.push(r);
    }
    Ok(results)
}
