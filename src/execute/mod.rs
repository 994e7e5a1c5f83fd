//! Executing a job (`run`, `test`, `build`): its [`plan`], then on one connection
//! the optional freshness gate, the target schemas and the `on-run-start` hooks
//! ([`run_hooks`]), then the [`scheduler`] over a pool of connections, each node
//! run by [`node`]; [`run_end_hooks`] runs the `on-run-end` hooks after it. Cancellation stops new work,
//! cancels the running statements on the server and skips the rest.

mod microbatch;
mod node;
mod plan;
mod run_hooks;
mod scheduler;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use crate::artifacts;
use crate::cancel::Cancel;
use crate::console::{plural, Output};
use crate::datatest;
use crate::error::{Error, Result};
use crate::freshness;
use crate::graph::Graph;
use crate::manifest::{Manifest, NodeKind, SourceNode};
use crate::postgres::{self, Pool, SwapOptions};
use crate::render::Renderer;
use crate::results::NodeResult;
use crate::settings::Settings;

pub(crate) use microbatch::MicrobatchRun;
pub(crate) use plan::{plan, plan_order, Job};
pub(crate) use run_hooks::RenderedRunHook;

/// Everything an execution needs: the compiled manifest, the ids to run in
/// dependency order and the graph they run on.
pub(crate) struct Execution {
    pub(crate) settings: Arc<Settings>,
    pub(crate) manifest: Arc<Manifest>,
    pub(crate) graph: Graph,
    pub(crate) order: Vec<String>,
    pub(crate) target_dir: PathBuf,
    pub(crate) invocation_id: String,
    pub(crate) out: Arc<Output>,
    pub(crate) cancel: Cancel,
    pub(crate) store_failures: bool,
    pub(crate) check_freshness: bool,
    /// `--full-refresh` (seeds are recreated rather than reloaded).
    pub(crate) full_refresh: bool,
    /// The `on-run-start` hooks, rendered.
    pub(crate) on_run_start: Vec<RenderedRunHook>,
    /// Renders the nodes of `manifest.render_at_run` when they run.
    pub(crate) renderer: Arc<Renderer>,
    /// The batches of microbatch models.
    pub(crate) microbatch: MicrobatchRun,
}

/// How an execution ended.
pub(crate) enum Executed {
    /// Every node has a result; `interrupted` when cancellation stopped it.
    Ran {
        results: Vec<NodeResult>,
        interrupted: bool,
    },
    /// Stale sources stopped `build --check-freshness` before anything was built.
    StaleSources,
    /// The landed source tables broke the project's declarations (see
    /// [`crate::landing`]) before anything was built.
    LandingMismatch,
}

/// Connects, optionally checks freshness, creates the target schemas and runs the
/// scheduler over the plan.
pub(crate) async fn execute(ex: Execution) -> Result<Executed> {
    let Execution {
        settings,
        manifest,
        graph,
        order,
        target_dir,
        invocation_id,
        out,
        cancel,
        store_failures,
        check_freshness,
        full_refresh,
        on_run_start,
        renderer,
        microbatch,
    } = ex;
    microbatch::warn(&manifest, &order, &out);
    cross_database(&manifest)?;
    let first =
        postgres::connect_with_retry(&settings, &cancel, &|m| out.warn("connect_retry", m)).await?;
    // The sources the selected nodes read.
    let mut wanted = BTreeSet::new();
    for id in &order {
        wanted.extend(
            graph
                .ancestors(id)
                .into_iter()
                .filter(|a| manifest.kind(a) == Some(NodeKind::Source)),
        );
    }
    let read: Vec<&SourceNode> = manifest
        .sources
        .iter()
        .filter(|s| wanted.contains(&s.unique_id))
        .collect();
    let diffs = crate::landing::check(&first, &read).await?;
    if crate::landing::report(&out, &diffs, settings.source_check_warn_only) {
        return Ok(Executed::LandingMismatch);
    }
    if check_freshness {
        let sources: Vec<&SourceNode> = read
            .iter()
            .copied()
            .filter(|s| freshness::has_check(s))
            .collect();
        let results = freshness::check_all(&first, &settings, &sources, &out, &cancel).await?;
        artifacts::write_json(
            &target_dir,
            "sources.json",
            &freshness::sources_json(&results, 0.0, &invocation_id),
        )?;
        let stale: Vec<&freshness::FreshnessResult> =
            results.iter().filter(|r| r.status.is_error()).collect();
        if !stale.is_empty() {
            for r in &stale {
                out.error(&format!("{}: {}", r.unique_id, r.message));
            }
            out.error(&format!(
                "{} source{} failed the freshness check; nothing was built. Load fresh data, or build without --check-freshness",
                stale.len(),
                plural(stale.len())
            ));
            return Ok(Executed::StaleSources);
        }
        out.blank();
    }
    let mut schemas: BTreeSet<String> = order
        .iter()
        .filter_map(|id| manifest.node(id))
        .map(|n| n.stored_schema())
        .collect();
    // The audit schema, once, before tests run in parallel.
    let stores_failures = |t: &crate::manifest::TestNode| {
        t.config
            .get("store_failures")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(store_failures)
    };
    let stores = order
        .iter()
        .filter_map(|id| manifest.test(id))
        .any(stores_failures);
    let shared_scans = datatest::SharedScans::new(&manifest, &order, stores_failures);
    if stores {
        schemas.insert(datatest::audit_schema(&settings.schema));
    }
    for s in &schemas {
        let work = async {
            postgres::ensure_schema(&first, s).await.map_err(|e| {
                Error::runtime(format!(
                    "cannot create schema '{s}': {}; grant CREATE on the database to '{}' or create the schema first",
                    postgres::describe_db_error(&e, ""),
                    settings.user
                ))
            })
        };
        postgres::cancellable(
            &first,
            &settings,
            &cancel,
            "while creating the target schemas; nothing was built",
            work,
        )
        .await?;
    }
    out.info(
        "concurrency",
        &format!(
            "Concurrency: {} thread{} (target schema '{}')",
            settings.threads,
            plural(settings.threads),
            settings.schema
        ),
    );
    out.blank();
    let start_results = run_hooks::run(&first, &on_run_start, &out, &cancel).await;
    if !on_run_start.is_empty() {
        out.blank();
    }
    let pool = Arc::new(Pool::new(settings.clone(), settings.threads));
    pool.adopt(first);

    let runner = Arc::new(node::NodeRunner {
        manifest: manifest.clone(),
        settings: settings.clone(),
        pool: pool.clone(),
        out: out.clone(),
        swap: SwapOptions::new(&settings, cancel.clone()),
        suffix: invocation_id
            .chars()
            .filter(|c| c.is_ascii_hexdigit())
            .take(8)
            .collect(),
        audit: store_failures.then(|| datatest::audit_schema(&settings.schema)),
        total: order.len(),
        full_refresh,
        compiled_dir: shown_dir(&target_dir, &settings.project_dir)
            .join("compiled")
            .join(&manifest.project_name),
        renderer,
        target_dir: target_dir.clone(),
        microbatch,
        shared_scans,
    });
    let job = |id: String, index: usize| runner.clone().run(id, index);
    let skip = |id: &str, index: usize, reason| runner.skip(id, index, reason);
    let on_interrupt = || async {
        out.warn(
            "interrupted",
            "Interrupted: cancelling running queries; their models stay as they were",
        );
        pool.cancel_all().await;
    };
    let (results, interrupted) = scheduler::execute(
        &order,
        &graph,
        settings.threads,
        settings.fail_fast,
        &cancel,
        job,
        skip,
        on_interrupt,
    )
    .await;
    log::debug!("connections opened: {}", pool.opened());
    Ok(Executed::Ran {
        results: start_results.into_iter().chain(results).collect(),
        interrupted,
    })
}

/// Connects and runs the `on-run-end` hooks, once the job's nodes are done.
pub(crate) async fn run_end_hooks(
    settings: &Settings,
    hooks: &[RenderedRunHook],
    out: &Arc<Output>,
    cancel: &Cancel,
) -> Result<Vec<NodeResult>> {
    if hooks.is_empty() {
        return Ok(Vec::new());
    }
    let client =
        postgres::connect_with_retry(settings, cancel, &|m| out.warn("connect_retry", m)).await?;
    out.blank();
    Ok(run_hooks::run(&client, hooks, out, cancel).await)
}

/// `dir` as messages show it: relative to the project directory when under it
/// (`target`), else as it is.
fn shown_dir(dir: &std::path::Path, project_dir: &std::path::Path) -> PathBuf {
    dir.strip_prefix(project_dir)
        .map(std::path::Path::to_path_buf)
        .unwrap_or_else(|_| dir.to_path_buf())
}

/// dbt-postgres builds only in the target's database: a relation given another
/// (a `database` config, a `generate_database_name` override) stops the command
/// before anything runs, as dbt's "Cross-db references not allowed" does.
fn cross_database(manifest: &Manifest) -> Result<()> {
    let unquoted = |d: &str| d.trim_matches('"').to_lowercase();
    let expected = unquoted(&manifest.database);
    let other = manifest.nodes.iter().find(|n| {
        n.materialized != crate::manifest::Materialization::Ephemeral
            && unquoted(&n.database) != expected
    });
    match other {
        None => Ok(()),
        Some(n) => Err(Error::in_file(
            n.original_file_path.clone(),
            format!(
                "Cross-db references not allowed in postgres ({} vs {}): {} '{}' is given database '{}' \
                 (its `database` config or generate_database_name); PostgreSQL builds only in the \
                 target's database, so remove that config or return target.database",
                n.database, manifest.database, n.resource_type, n.name, n.database
            ),
        )
        .for_node(&n.unique_id)),
    }
}
