//! `run-operation MACRO --args '{…}'`: runs one macro of the project by itself,
//! as dbt does. The project is loaded and parsed as for any command, then the
//! macro is rendered in dbt's execution phase (`execute` true) with `--args` as
//! its keyword arguments, on a connection of its own where every statement runs
//! inside a transaction: what the macro does not commit itself
//! (`{% do run_query('commit') %}`) is rolled back when it ends, as dbt's
//! connection does. Exit 0 when the macro ran, 1 when it failed (a database error,
//! `exceptions.raise_compiler_error`), 2 when there is no such macro or the
//! arguments are not a mapping. `run_results.json` holds one `operation` result.

use std::sync::Arc;
use std::time::Instant;

use serde_json::json;

use crate::artifacts;
use crate::cli::RunOperationArgs;
use crate::console::Output;
use crate::error::{Error, Result};
use crate::postgres;
use crate::render::{with_database, RenderDb};
use crate::results::{Built, NodeFailure, NodeResult, Outcome};
use crate::settings::Settings;

use super::{header, load, Invocation};

pub(super) fn run_operation(
    inv: &Invocation,
    settings: Arc<Settings>,
    args: &RunOperationArgs,
    out: &Output,
) -> Result<i32> {
    let started = Instant::now();
    let kwargs = match &args.args {
        Some(text) => match crate::cli::parse_mapping("--args", text)? {
            serde_json::Value::Object(m) => m,
            _ => serde_json::Map::new(),
        },
        None => serde_json::Map::new(),
    };
    let loaded = load(settings.clone(), &inv.cancel)?;
    header(out, &loaded);
    let project = loaded.manifest.project_name.clone();
    let Some(name) = loaded.renderer.find_macro(&project, &args.macro_name) else {
        return Err(Error::usage(format!(
            "run-operation: there is no macro named '{}' in the project; check the name, or define it in a .sql file of the macro paths",
            args.macro_name
        )));
    };
    let unique_id = format!("macro.{project}.{name}");
    let client =
        inv.runtime
            .block_on(postgres::connect_with_retry(&settings, &inv.cancel, &|m| {
                out.warn("connect_retry", m)
            }))?;
    let db = RenderDb::transactional(inv.runtime.handle().clone(), client, &unique_id);
    let (ran, _) = with_database(Some(db.clone()), || {
        loaded.renderer.run_operation(&project, &name, &kwargs)
    });
    // What the macro left uncommitted is rolled back, as dbt's connection does
    // when it is closed.
    if let Some(client) = db.take() {
        let rollback = client.batch_execute("rollback");
        let _ = inv
            .runtime
            .block_on(crate::console::NODE.scope(unique_id.clone(), rollback));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let (outcome, code) = match ran {
        Ok(_) => (
            Outcome::Built(Built {
                message: String::new(),
                code: String::new(),
                rows: None,
            }),
            0,
        ),
        Err(e) => {
            out.error(&format!(
                "Encountered an error while running operation: {e}"
            ));
            let failure = NodeFailure::Compile {
                message: e.to_string(),
            };
            (Outcome::Failed(failure), 1)
        }
    };
    let result = NodeResult {
        execution_time: elapsed,
        thread_id: "MainThread".to_string(),
        ..NodeResult::new(&unique_id, outcome)
    };
    let run_args = json!({"which": "run-operation", "macro": args.macro_name, "args": kwargs,
        "vars": settings.vars});
    artifacts::write_json(
        &loaded.target_dir,
        "run_results.json",
        &artifacts::run_results_json(&[result], elapsed, &loaded.invocation_id, run_args),
    )?;
    Ok(code)
}
