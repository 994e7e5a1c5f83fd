//! The subcommands: each wires the data path (settings → project → rendered nodes
//! → graph → execution → results) for one job and returns the exit code.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use serde_json::json;

use crate::artifacts::{self, NodeResult};
use crate::cli::{AboutFormat, Cli, Command, GlobalArgs, LsOutput, ResourceTypeArg};
use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::manifest::Manifest;
use crate::output::{Counts, Output, Status};
use crate::project::{self, Project};
use crate::render::Renderer;
use crate::scheduler::{self, SkipReason};
use crate::settings::{self, LogFormat, Settings};
use crate::warehouse::{self, Pool};

/// Everything a command needs once the project is parsed.
pub struct Loaded {
    pub settings: Arc<Settings>,
    pub project: Project,
    pub renderer: Renderer,
    pub manifest: Manifest,
    pub graph: Graph,
    pub target_dir: PathBuf,
    pub invocation_id: String,
}

/// Runs the parsed command line; returns the process exit code.
pub fn main(cli: Cli) -> i32 {
    if cli.about {
        print!("{}", about(cli.format));
        return 0;
    }
    let Some(command) = cli.command else {
        // Under Meltano (`meltano run … reluvia-transform`) the bare plugin name
        // means the daily job; from a terminal it means "show me the help".
        if std::env::var_os("MELTANO_PROJECT_ROOT").is_some() {
            return dispatch(&Command::Run, &cli.global);
        }
        use clap::CommandFactory;
        let _ = Cli::command().print_help();
        return 2;
    };
    dispatch(&command, &cli.global)
}

fn dispatch(command: &Command, global: &GlobalArgs) -> i32 {
    // Settings decide the log format, so a settings error is reported in the
    // format the flags asked for.
    let early_format = match global.log_format {
        Some(crate::cli::LogFormatArg::Json) => LogFormat::Json,
        _ => LogFormat::Text,
    };
    let settings = match global.settings_input().and_then(|i| settings::load(&i)) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            Output::new(early_format).error(&e.message);
            return e.exit_code();
        }
    };
    let out = Arc::new(Output::new(settings.log_format));
    let result = match command {
        Command::Run => run(settings, global, &out),
        Command::Compile => compile(settings, global, &out),
        Command::Ls {
            output,
            resource_type,
        } => ls(settings, global, *output, *resource_type),
        Command::Debug => debug(settings),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            out.error(&e.message);
            e.exit_code()
        }
    }
}

/// `--about`: name, version, description and settings (Singer SDK convention).
pub fn about(format: AboutFormat) -> String {
    let schema = settings::schema();
    let description = env!("CARGO_PKG_DESCRIPTION");
    match format {
        AboutFormat::Json => {
            let v = json!({
                "name": "reluvia-transform",
                "description": description,
                "version": crate::VERSION,
                "capabilities": ["about"],
                "settings": schema,
            });
            format!("{}\n", serde_json::to_string_pretty(&v).unwrap_or_default())
        }
        AboutFormat::Text | AboutFormat::Markdown => {
            let md = format == AboutFormat::Markdown;
            let mut t = if md {
                format!("# reluvia-transform\n\n{description}\n\nVersion: {}\n\n## Settings\n\n| Setting | Required | Default | Environment | Description |\n|:--|:--:|:--|:--|:--|\n", crate::VERSION)
            } else {
                format!(
                    "Name: reluvia-transform\nVersion: {}\nDescription: {description}\nSettings:\n",
                    crate::VERSION
                )
            };
            let required: Vec<&str> = schema["required"]
                .as_array()
                .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
                .unwrap_or_default();
            if let Some(props) = schema["properties"].as_object() {
                for (name, p) in props {
                    let default = p.get("default").map(|d| d.to_string()).unwrap_or_default();
                    let desc = p["description"].as_str().unwrap_or("");
                    let envs = settings::env_names(name).join(", ");
                    let req = if required.contains(&name.as_str()) {
                        "yes"
                    } else {
                        "no"
                    };
                    if md {
                        t.push_str(&format!(
                            "| {name} | {req} | {default} | {envs} | {desc} |\n"
                        ));
                    } else {
                        t.push_str(&format!(
                            "  - {name}{}: {desc} [env: {envs}]{}\n",
                            if req == "yes" { " (required)" } else { "" },
                            if default.is_empty() {
                                String::new()
                            } else {
                                format!(" [default: {default}]")
                            }
                        ));
                    }
                }
            }
            t
        }
    }
}

/// Settings → project → manifest → graph.
pub fn load(settings: Arc<Settings>) -> Result<Loaded> {
    let project = project::load(&settings.project_dir)?;
    let invocation_id = uuid::Uuid::new_v4().to_string();
    let renderer = Renderer::new(&project, &settings, &invocation_id)?;
    let manifest = renderer.build_manifest(&project)?;
    let graph = Graph::build(&manifest)?;
    let target_dir = settings.resolve_target_path(&project.target_path);
    Ok(Loaded {
        settings,
        project,
        renderer,
        manifest,
        graph,
        target_dir,
        invocation_id,
    })
}

/// The selected model ids, in dependency order.
fn selected_models(loaded: &Loaded, global: &GlobalArgs) -> Result<Vec<String>> {
    let chosen = loaded
        .graph
        .select(&loaded.manifest, &global.select, &global.exclude)?;
    let models: BTreeSet<String> = chosen
        .into_iter()
        .filter(|id| id.starts_with("model."))
        .collect();
    Ok(loaded.graph.topo_order(&models))
}

/// Renders the selected models, writes their compiled SQL and the manifest.
fn compile_selected(loaded: &mut Loaded, order: &[String]) -> Result<()> {
    for id in order {
        let idx = loaded
            .manifest
            .nodes
            .iter()
            .position(|n| &n.unique_id == id)
            .expect("selected node exists");
        let sql = loaded.renderer.compile(&loaded.manifest.nodes[idx])?;
        let node = &mut loaded.manifest.nodes[idx];
        let path = artifacts::compiled_path(
            &loaded.target_dir,
            &loaded.manifest.project_name,
            &node.original_file_path,
        );
        artifacts::write_atomic(&path, format!("{sql}\n").as_bytes())?;
        node.compiled_code = Some(sql);
    }
    artifacts::write_json(
        &loaded.target_dir,
        "manifest.json",
        &artifacts::manifest_json(&loaded.manifest, &loaded.invocation_id),
    )
}

fn header(out: &Output, loaded: &Loaded) {
    out.info(
        "main_report_version",
        &format!("Running with reluvia-transform={}", crate::VERSION),
    );
    out.info(
        "found_stats",
        &format!(
            "Found {} model{}, {} source{}, {} macro{}",
            loaded.manifest.nodes.len(),
            plural(loaded.manifest.nodes.len()),
            loaded.manifest.sources.len(),
            plural(loaded.manifest.sources.len()),
            loaded.manifest.macros.len(),
            plural(loaded.manifest.macros.len()),
        ),
    );
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn compile(settings: Arc<Settings>, global: &GlobalArgs, out: &Output) -> Result<i32> {
    let mut loaded = load(settings)?;
    header(out, &loaded);
    let order = selected_models(&loaded, global)?;
    compile_selected(&mut loaded, &order)?;
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

fn ls(
    settings: Arc<Settings>,
    global: &GlobalArgs,
    output: LsOutput,
    rtype: Option<ResourceTypeArg>,
) -> Result<i32> {
    let loaded = load(settings)?;
    let chosen = loaded
        .graph
        .select(&loaded.manifest, &global.select, &global.exclude)?;
    let mut lines = Vec::new();
    for n in &loaded.manifest.nodes {
        if !chosen.contains(&n.unique_id) || rtype.is_some_and(|r| r != ResourceTypeArg::Model) {
            continue;
        }
        lines.push(match output {
            LsOutput::Selector => n.fqn.join("."),
            LsOutput::Name => n.name.clone(),
            LsOutput::Path => n.original_file_path.clone(),
            LsOutput::Json => json!({
                "name": n.name, "resource_type": "model", "package_name": n.package_name,
                "original_file_path": n.original_file_path, "unique_id": n.unique_id, "alias": n.alias,
                "schema": n.schema, "config": n.config, "tags": n.tags,
                "depends_on": {"nodes": n.depends_on_nodes, "macros": n.depends_on_macros},
            })
            .to_string(),
        });
    }
    for s in &loaded.manifest.sources {
        if !chosen.contains(&s.unique_id) || rtype.is_some_and(|r| r != ResourceTypeArg::Source) {
            continue;
        }
        lines.push(match output {
            LsOutput::Selector => format!("source:{}", s.fqn.join(".")),
            LsOutput::Name => format!("{}.{}", s.table.source_name, s.table.name),
            LsOutput::Path => s.table.file.clone(),
            LsOutput::Json => json!({
                "name": s.table.name, "resource_type": "source", "package_name": loaded.manifest.project_name,
                "source_name": s.table.source_name, "original_file_path": s.table.file, "unique_id": s.unique_id,
                "schema": s.table.schema, "identifier": s.table.identifier, "tags": s.table.tags,
            })
            .to_string(),
        });
    }
    let mut stdout = String::new();
    for l in lines {
        stdout.push_str(&l);
        stdout.push('\n');
    }
    print!("{stdout}");
    Ok(0)
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::runtime(format!("cannot start the async runtime: {e}")))
}

fn debug(settings: Arc<Settings>) -> Result<i32> {
    let mut text = format!(
        "reluvia-transform {}\n\nSettings (highest-precedence source shown):\n",
        crate::VERSION
    );
    for (name, value, origin) in settings.describe() {
        text.push_str(&format!("  {name:<18} {value:<32} {origin}\n"));
    }
    let dbt_project = settings.project_dir.join("dbt_project.yml");
    text.push_str(&format!(
        "\nProject: {} ({})\n",
        settings.project_dir.display(),
        if dbt_project.is_file() {
            "dbt_project.yml found"
        } else {
            "dbt_project.yml NOT found"
        }
    ));
    let rt = runtime()?;
    let conn = rt.block_on(async {
        let client = warehouse::connect(&settings).await?;
        warehouse::server_version(&client).await
    });
    match conn {
        Ok(version) => {
            text.push_str(&format!(
                "Connection: OK ({}@{}:{}/{}, PostgreSQL {version})\n",
                settings.user, settings.host, settings.port, settings.dbname
            ));
            print!("{text}");
            Ok(if dbt_project.is_file() { 0 } else { 1 })
        }
        Err(e) => {
            text.push_str("Connection: FAILED\n");
            print!("{text}");
            Err(e)
        }
    }
}

fn run(settings: Arc<Settings>, global: &GlobalArgs, out: &Arc<Output>) -> Result<i32> {
    let started = Instant::now();
    let mut loaded = load(settings.clone())?;
    header(out, &loaded);
    let order = selected_models(&loaded, global)?;
    compile_selected(&mut loaded, &order)?;
    let args = json!({
        "which": "run", "select": global.select, "exclude": global.exclude,
        "threads": settings.threads, "vars": settings.vars, "fail_fast": settings.fail_fast,
    });
    if order.is_empty() {
        out.warn(
            "nothing_to_do",
            "Nothing to do: no model matches the selection. Check --select/--exclude.",
        );
        artifacts::write_json(
            &loaded.target_dir,
            "run_results.json",
            &artifacts::run_results_json(&[], 0.0, &loaded.invocation_id, args),
        )?;
        return Ok(0);
    }
    let rt = runtime()?;
    let loaded = Arc::new(loaded);
    let (results, interrupted) = rt.block_on(execute(loaded.clone(), &order, out.clone()))?;
    let elapsed = started.elapsed().as_secs_f64();
    artifacts::write_json(
        &loaded.target_dir,
        "run_results.json",
        &artifacts::run_results_json(&results, elapsed, &loaded.invocation_id, args),
    )?;

    let mut counts = Counts::default();
    let mut failures = Vec::new();
    for r in &results {
        match r.status {
            Status::Success | Status::Pass => counts.pass += 1,
            Status::Warn => counts.warn += 1,
            Status::Error | Status::Fail => {
                counts.error += 1;
                if let Some(n) = loaded.manifest.node(&r.unique_id) {
                    failures.push((
                        format!("Failure in model {} ({})", n.name, n.original_file_path),
                        r.message.clone(),
                    ));
                }
            }
            Status::Skipped => counts.skip += 1,
        }
    }
    let tables = order
        .iter()
        .filter(|id| {
            loaded
                .manifest
                .node(id)
                .is_some_and(|n| n.materialized == crate::manifest::Materialization::Table)
        })
        .count();
    let views = order.len() - tables;
    let mut what = Vec::new();
    if tables > 0 {
        what.push(format!("{tables} table model{}", plural(tables)));
    }
    if views > 0 {
        what.push(format!("{views} view model{}", plural(views)));
    }
    out.summary(&counts, &failures, elapsed, &what.join(", "));
    if interrupted {
        out.error("interrupted: in-flight models were rolled back and left as they were");
        return Ok(1);
    }
    Ok(if counts.error > 0 { 1 } else { 0 })
}

/// Connects, creates the target schemas and runs the scheduler.
async fn execute(
    loaded: Arc<Loaded>,
    order: &[String],
    out: Arc<Output>,
) -> Result<(Vec<NodeResult>, bool)> {
    let settings = loaded.settings.clone();
    let first = warehouse::connect_with_retry(&settings, &|m| out.warn("connect_retry", m)).await?;
    let schemas: BTreeSet<String> = order
        .iter()
        .filter_map(|id| loaded.manifest.node(id))
        .map(|n| n.schema.clone())
        .collect();
    for s in &schemas {
        warehouse::ensure_schema(&first, s).await.map_err(|e| {
            Error::runtime(format!(
                "cannot create schema '{s}': {}; grant CREATE on the database to '{}' or create the schema first",
                warehouse::describe_db_error(&e, ""),
                settings.user
            ))
        })?;
    }
    let pool = Arc::new(Pool::new(settings.clone(), settings.threads));
    pool.adopt(first);
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

    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => return,
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term.recv() => {},
        }
        let _ = tx.send(true);
    });

    let total = order.len();
    let suffix: String = loaded
        .invocation_id
        .chars()
        .filter(|c| c.is_ascii_hexdigit())
        .take(8)
        .collect();
    let job = |id: String, index: usize| {
        let loaded = loaded.clone();
        let pool = pool.clone();
        let suffix = suffix.clone();
        let out = out.clone();
        async move {
            let node = loaded.manifest.node(&id).expect("scheduled node exists");
            let what = format!(
                "sql {} model {}.{}",
                node.materialized.as_str(),
                node.schema,
                node.alias
            );
            out.node_start(index, total, &what, &id);
            let started_at = chrono::Utc::now();
            let clock = Instant::now();
            let sql = node.compiled_code.clone().unwrap_or_default();
            let outcome = match pool.get().await {
                Ok(mut client) => {
                    let notify = |m: &str| out.warn("waiting", m);
                    let r = warehouse::materialize(
                        &mut client,
                        node,
                        &sql,
                        &suffix,
                        &loaded.settings,
                        &notify,
                    )
                    .await;
                    pool.put(client);
                    r
                }
                Err(e) => Err(e.message),
            };
            let secs = clock.elapsed().as_secs_f64();
            let mut result = NodeResult {
                unique_id: id.clone(),
                status: Status::Success,
                message: String::new(),
                started_at: Some(started_at),
                completed_at: Some(chrono::Utc::now()),
                execution_time: secs,
                thread_id: format!("Thread-{}", (index - 1) % loaded.settings.threads + 1),
                rows_affected: None,
                code: String::new(),
                failures: None,
                compiled_code: Some(sql),
                relation_name: Some(node.relation_name()),
            };
            match outcome {
                Ok(built) => {
                    out.node_end(
                        index,
                        total,
                        Status::Success,
                        &what,
                        &id,
                        &built.message,
                        secs,
                        built.rows,
                    );
                    result.message = built.message;
                    result.code = built.code;
                    result.rows_affected = built.rows;
                }
                Err(msg) => {
                    out.node_end(index, total, Status::Error, &what, &id, &msg, secs, None);
                    result.status = Status::Error;
                    result.message = format!("Database error: {msg}");
                }
            }
            result
        }
    };
    let skip = |id: &str, index: usize, reason: SkipReason| {
        let node = loaded.manifest.node(id).expect("scheduled node exists");
        let what = format!("relation {}.{}", node.schema, node.alias);
        out.node_end(index, total, Status::Skipped, &what, id, "", 0.0, None);
        NodeResult {
            unique_id: id.to_string(),
            status: Status::Skipped,
            message: match reason {
                SkipReason::Upstream(parent) => format!("skipped: upstream {parent} failed"),
                SkipReason::Stopped => "skipped: the run stopped early".to_string(),
            },
            started_at: None,
            completed_at: None,
            execution_time: 0.0,
            thread_id: String::new(),
            rows_affected: None,
            code: String::new(),
            failures: None,
            compiled_code: node.compiled_code.clone(),
            relation_name: Some(node.relation_name()),
        }
    };
    let pool_for_cancel = pool.clone();
    let out_for_cancel = out.clone();
    let on_interrupt = || async move {
        let out = out_for_cancel;
        out.warn(
            "interrupted",
            "Interrupted: cancelling running queries; their models stay as they were",
        );
        pool_for_cancel.cancel_all().await;
    };
    let (results, interrupted) = scheduler::execute(
        order,
        &loaded.graph,
        settings.threads,
        settings.fail_fast,
        rx,
        job,
        skip,
        on_interrupt,
    )
    .await;
    log::debug!("connections opened: {}", pool.opened());
    Ok((results, interrupted))
}
