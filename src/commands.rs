//! The subcommands: each wires the data path (settings → project → rendered nodes
//! → graph → execution → results) for one job and returns the exit code.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use serde_json::json;

use crate::artifacts::{self, NodeResult};
use crate::cli::{AboutFormat, Cli, Command, GlobalArgs, LsOutput, ResourceTypeArg, SourceCommand};
use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::manifest::Manifest;
use crate::output::{Counts, Output, Status};
use crate::project::{self, Project};
use crate::render::Renderer;
use crate::scheduler::{self, SkipReason};
use crate::settings::{self, LogFormat, Settings};
use crate::warehouse::{self, Pool};
use crate::{datatest, freshness};

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
            return dispatch(
                &Command::Build {
                    store_failures: false,
                    check_freshness: false,
                },
                &cli.global,
            );
        }
        use clap::CommandFactory;
        let _ = Cli::command().print_help();
        return 2;
    };
    dispatch(&command, &cli.global)
}

fn dispatch(command: &Command, global: &GlobalArgs) -> i32 {
    // The demo brings its own database: it reads no connection settings.
    if let Command::Demo { keep, sample } = command {
        let opts = crate::demo::DemoOptions {
            keep: *keep,
            days: sample.days,
            sessions_per_day: sample.sessions_per_day,
            seed: sample.seed,
        };
        return match crate::demo::run(&opts) {
            Ok(code) => code,
            Err(e) => {
                Output::new(LogFormat::Text).error(&e.message);
                e.exit_code()
            }
        };
    }
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
        Command::Run => execute_command(settings, global, &out, Job::Run),
        Command::Test { store_failures } => execute_command(
            settings,
            global,
            &out,
            Job::Test {
                store_failures: *store_failures,
            },
        ),
        Command::Build {
            store_failures,
            check_freshness,
        } => execute_command(
            settings,
            global,
            &out,
            Job::Build {
                store_failures: *store_failures,
                check_freshness: *check_freshness,
            },
        ),
        Command::Source {
            command: SourceCommand::Freshness,
        }
        | Command::Freshness => source_freshness(settings, global, &out),
        Command::Compile => compile(settings, global, &out),
        Command::Demo { .. } => unreachable!("demo runs before settings are read"),
        Command::Generate { sample } => generate_raw(settings, *sample, &out),
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

/// What an executing command runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Job {
    Run,
    Test {
        store_failures: bool,
    },
    Build {
        store_failures: bool,
        check_freshness: bool,
    },
}

impl Job {
    fn name(self) -> &'static str {
        match self {
            Job::Run => "run",
            Job::Test { .. } => "test",
            Job::Build { .. } => "build",
        }
    }
}

/// The selected ids a job executes, in dependency order, and the graph it runs on.
fn plan(loaded: &Loaded, global: &GlobalArgs, job: Job) -> Result<(Vec<String>, Graph)> {
    let chosen = loaded
        .graph
        .select(&loaded.manifest, &global.select, &global.exclude)?;
    let excluded = if global.exclude.is_empty() {
        BTreeSet::new()
    } else {
        loaded
            .graph
            .select(&loaded.manifest, &global.exclude, &[])?
    };
    let models: BTreeSet<String> = chosen
        .iter()
        .filter(|id| id.starts_with("model."))
        .cloned()
        .collect();
    let with_tests = loaded
        .graph
        .with_tests(&loaded.manifest, &chosen, &excluded);
    let tests: BTreeSet<String> = with_tests
        .into_iter()
        .filter(|id| id.starts_with("test."))
        .collect();
    Ok(match job {
        Job::Run => (loaded.graph.topo_order(&models), loaded.graph.clone()),
        Job::Test { .. } => (loaded.graph.topo_order(&tests), loaded.graph.clone()),
        Job::Build { .. } => {
            let g = loaded.graph.for_build(&loaded.manifest);
            let ids: BTreeSet<String> = models.union(&tests).cloned().collect();
            (g.topo_order(&ids), g)
        }
    })
}

/// Renders the given models and tests, writes their compiled SQL and the manifest.
fn compile_selected(loaded: &mut Loaded, order: &[String]) -> Result<()> {
    for id in order {
        if let Some(idx) = loaded
            .manifest
            .nodes
            .iter()
            .position(|n| &n.unique_id == id)
        {
            let sql = loaded.renderer.compile(&loaded.manifest.nodes[idx])?;
            let node = &mut loaded.manifest.nodes[idx];
            let path = artifacts::compiled_path(
                &loaded.target_dir,
                &loaded.manifest.project_name,
                &node.original_file_path,
            );
            artifacts::write_atomic(&path, format!("{sql}\n").as_bytes())?;
            node.compiled_code = Some(sql);
        } else if let Some(idx) = loaded
            .manifest
            .tests
            .iter()
            .position(|t| &t.unique_id == id)
        {
            let sql = loaded
                .renderer
                .compile_test(&loaded.manifest.tests[idx], &loaded.manifest)?;
            let t = &mut loaded.manifest.tests[idx];
            // dbt's layout: generic tests under their YAML file, singular ones as is.
            let rel = match t.kind {
                crate::manifest::TestKind::Generic => {
                    format!("{}/{}.sql", t.original_file_path, t.name)
                }
                crate::manifest::TestKind::Singular => t.original_file_path.clone(),
            };
            let path =
                artifacts::compiled_path(&loaded.target_dir, &loaded.manifest.project_name, &rel);
            artifacts::write_atomic(&path, format!("{sql}\n").as_bytes())?;
            t.compiled_code = Some(sql);
        }
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
            "Found {} model{}, {} data test{}, {} source{}, {} macro{}",
            loaded.manifest.nodes.len(),
            plural(loaded.manifest.nodes.len()),
            loaded.manifest.tests.len(),
            plural(loaded.manifest.tests.len()),
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
    let (order, _) = plan(
        &loaded,
        global,
        Job::Build {
            store_failures: false,
            check_freshness: false,
        },
    )?;
    compile_selected(&mut loaded, &order)?;
    let order: Vec<String> = order
        .into_iter()
        .filter(|id| id.starts_with("model."))
        .collect();
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
    let with_tests = loaded
        .graph
        .with_tests(&loaded.manifest, &chosen, &BTreeSet::new());
    for t in &loaded.manifest.tests {
        if !with_tests.contains(&t.unique_id) || rtype.is_some_and(|r| r != ResourceTypeArg::Test) {
            continue;
        }
        lines.push(match output {
            LsOutput::Selector => t.fqn.join("."),
            LsOutput::Name => t.name.clone(),
            LsOutput::Path => t.original_file_path.clone(),
            LsOutput::Json => json!({
                "name": t.name, "resource_type": "test", "package_name": loaded.manifest.project_name,
                "original_file_path": t.original_file_path, "unique_id": t.unique_id, "tags": t.tags,
                "config": t.config, "depends_on": {"nodes": t.depends_on_nodes},
                "test_metadata": t.test_name.as_ref().map(|n| json!({"name": n, "kwargs": t.kwargs})),
            })
            .to_string(),
        });
    }
    lines.sort(); // dbt's `ls` lists in sorted order
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
    let rows = settings.describe();
    // Columns as wide as the longest setting name (connect_retry_timeout).
    let width = rows.iter().map(|(n, _, _)| n.len()).max().unwrap_or(0);
    for (name, value, origin) in rows {
        text.push_str(&format!("  {name:<width$} {value:<32} {origin}\n"));
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

/// `run`, `test` and `build`: plan, compile, (check freshness), execute, report.
fn execute_command(
    settings: Arc<Settings>,
    global: &GlobalArgs,
    out: &Arc<Output>,
    job: Job,
) -> Result<i32> {
    let started = Instant::now();
    let mut loaded = load(settings.clone())?;
    header(out, &loaded);
    let (order, graph) = plan(&loaded, global, job)?;
    compile_selected(&mut loaded, &order)?;
    let store_failures = match job {
        Job::Test { store_failures } | Job::Build { store_failures, .. } => {
            store_failures || settings.store_failures
        }
        Job::Run => false,
    };
    let check_freshness = matches!(
        job,
        Job::Build {
            check_freshness: true,
            ..
        }
    ) || (matches!(job, Job::Build { .. }) && settings.check_freshness);
    let args = json!({
        "which": job.name(), "select": global.select, "exclude": global.exclude,
        "threads": settings.threads, "vars": settings.vars, "fail_fast": settings.fail_fast,
        "store_failures": store_failures, "check_freshness": check_freshness,
    });
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
    let rt = runtime()?;
    let loaded = Arc::new(loaded);
    let opts = ExecOptions {
        store_failures,
        check_freshness,
    };
    let Some((results, interrupted)) =
        rt.block_on(execute(loaded.clone(), &order, graph, out.clone(), opts))?
    else {
        return Ok(1); // stale sources: nothing was built
    };
    let elapsed = started.elapsed().as_secs_f64();
    artifacts::write_json(
        &loaded.target_dir,
        "run_results.json",
        &artifacts::run_results_json(&results, elapsed, &loaded.invocation_id, args),
    )?;
    let code = summarize(out, &loaded.manifest, &results, elapsed, &order);
    if interrupted {
        out.error("interrupted: in-flight work was cancelled and rolled back; those models are as they were");
        return Ok(1);
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
        let label = match (manifest.node(&r.unique_id), manifest.test(&r.unique_id)) {
            (Some(n), _) => format!("model {} ({})", n.name, n.original_file_path),
            (_, Some(t)) => format!("test {} ({})", t.name, t.original_file_path),
            _ => r.unique_id.clone(),
        };
        match r.status {
            Status::Success | Status::Pass => counts.pass += 1,
            Status::Warn => {
                counts.warn += 1;
                failures.push((format!("Warning in {label}"), r.message.clone()));
            }
            Status::Error | Status::Fail => {
                counts.error += 1;
                failures.push((format!("Failure in {label}"), r.message.clone()));
            }
            Status::Skipped => counts.skip += 1,
        }
    }
    let (mut tables, mut views, mut tests) = (0, 0, 0);
    for id in order {
        match manifest.node(id).map(|n| n.materialized) {
            Some(crate::manifest::Materialization::Table) => tables += 1,
            Some(crate::manifest::Materialization::View) => views += 1,
            None => tests += 1,
        }
    }
    let mut what = Vec::new();
    for (n, label) in [
        (tables, "table model"),
        (views, "view model"),
        (tests, "data test"),
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

struct ExecOptions {
    store_failures: bool,
    check_freshness: bool,
}

/// Connects, optionally checks freshness, creates target schemas and runs the
/// scheduler over `order`. None: stale sources stopped the build.
async fn execute(
    loaded: Arc<Loaded>,
    order: &[String],
    graph: Graph,
    out: Arc<Output>,
    opts: ExecOptions,
) -> Result<Option<(Vec<NodeResult>, bool)>> {
    let settings = loaded.settings.clone();
    let first = warehouse::connect_with_retry(&settings, &|m| out.warn("connect_retry", m)).await?;
    if opts.check_freshness {
        // The sources the selected models read.
        let mut wanted = BTreeSet::new();
        for id in order {
            wanted.extend(
                graph
                    .ancestors(id)
                    .into_iter()
                    .filter(|a| a.starts_with("source.")),
            );
        }
        let sources: Vec<&crate::manifest::SourceNode> = loaded
            .manifest
            .sources
            .iter()
            .filter(|s| wanted.contains(&s.unique_id) && freshness::has_check(s))
            .collect();
        let results = run_freshness(&first, &sources, &out).await;
        artifacts::write_json(
            &loaded.target_dir,
            "sources.json",
            &freshness::sources_json(&results, 0.0, &loaded.invocation_id),
        )?;
        let stale: Vec<&freshness::FreshnessResult> = results
            .iter()
            .filter(|r| r.status == "error" || r.status == "runtime error")
            .collect();
        if !stale.is_empty() {
            for r in &stale {
                out.error(&format!("{}: {}", r.unique_id, r.message));
            }
            out.error(&format!(
                "{} source{} failed the freshness check; nothing was built. Load fresh data, or build without --check-freshness",
                stale.len(),
                plural(stale.len())
            ));
            return Ok(None);
        }
        out.blank();
    }
    let mut schemas: BTreeSet<String> = order
        .iter()
        .filter_map(|id| loaded.manifest.node(id))
        .map(|n| n.schema.clone())
        .collect();
    // The audit schema, once, before tests run in parallel.
    let stores = order
        .iter()
        .filter_map(|id| loaded.manifest.test(id))
        .any(|t| {
            t.config
                .get("store_failures")
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(opts.store_failures)
        });
    if stores {
        schemas.insert(datatest::audit_schema(&settings.schema));
    }
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
        let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            return;
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
    let audit = opts
        .store_failures
        .then(|| datatest::audit_schema(&settings.schema));
    let job = |id: String, index: usize| {
        let loaded = loaded.clone();
        let pool = pool.clone();
        let suffix = suffix.clone();
        let out = out.clone();
        let audit = audit.clone();
        async move {
            let started_at = chrono::Utc::now();
            let clock = Instant::now();
            let thread_id = format!("Thread-{}", (index - 1) % loaded.settings.threads + 1);
            if let Some(t) = loaded.manifest.test(&id) {
                let what = format!("test {}", t.name);
                out.node_start(index, total, &what, &id);
                let sql = t.compiled_code.clone().unwrap_or_default();
                // --store-failures (or the setting) for every test; a test's own
                // `store_failures` config for that test alone.
                let store = match t
                    .config
                    .get("store_failures")
                    .and_then(serde_json::Value::as_bool)
                {
                    Some(true) => Some(datatest::audit_schema(&loaded.settings.schema)),
                    Some(false) => None,
                    None => audit.clone(),
                };
                let outcome = match pool.get().await {
                    Ok(mut client) => {
                        let r = datatest::run(&mut client, t, &sql, store.as_deref()).await;
                        pool.put(client);
                        r
                    }
                    Err(e) => Err(e.message),
                };
                let secs = clock.elapsed().as_secs_f64();
                let (status, message, failures) = match outcome {
                    Ok(o) => {
                        let detail = if let Some(table) = &o.stored_in {
                            format!("{} (rows in {table})", o.message)
                        } else {
                            o.message.clone()
                        };
                        (o.status, detail, Some(o.failures))
                    }
                    Err(msg) => (Status::Error, msg, None),
                };
                let tag = failures.map(|f| f.to_string()).unwrap_or_default();
                out.node_end(index, total, status, &what, &id, &tag, secs, failures);
                return NodeResult {
                    started_at: Some(started_at),
                    completed_at: Some(chrono::Utc::now()),
                    execution_time: secs,
                    thread_id,
                    failures,
                    compiled_code: Some(sql),
                    ..NodeResult::new(&id, status, message)
                };
            }
            let node = loaded.manifest.node(&id).expect("scheduled node exists");
            let what = format!(
                "sql {} model {}.{}",
                node.materialized.as_str(),
                node.schema,
                node.alias
            );
            out.node_start(index, total, &what, &id);
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
                started_at: Some(started_at),
                completed_at: Some(chrono::Utc::now()),
                execution_time: secs,
                thread_id,
                compiled_code: Some(sql),
                relation_name: Some(node.relation_name()),
                ..NodeResult::new(&id, Status::Success, String::new())
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
        let (what, compiled, relation) = match (loaded.manifest.node(id), loaded.manifest.test(id))
        {
            (Some(n), _) => (
                format!("relation {}.{}", n.schema, n.alias),
                n.compiled_code.clone(),
                Some(n.relation_name()),
            ),
            (_, Some(t)) => (format!("test {}", t.name), t.compiled_code.clone(), None),
            _ => (id.to_string(), None, None),
        };
        out.node_end(index, total, Status::Skipped, &what, id, "", 0.0, None);
        let message = match reason {
            SkipReason::Upstream(parent) => format!("skipped: upstream {parent} failed"),
            SkipReason::Stopped => "skipped: the run stopped early".to_string(),
        };
        NodeResult {
            compiled_code: compiled,
            relation_name: relation,
            ..NodeResult::new(id, Status::Skipped, message)
        }
    };
    let pool_for_cancel = pool.clone();
    let out_for_cancel = out.clone();
    let on_interrupt = || async move {
        out_for_cancel.warn(
            "interrupted",
            "Interrupted: cancelling running queries; their models stay as they were",
        );
        pool_for_cancel.cancel_all().await;
    };
    let (results, interrupted) = scheduler::execute(
        order,
        &graph,
        settings.threads,
        settings.fail_fast,
        rx,
        job,
        skip,
        on_interrupt,
    )
    .await;
    log::debug!("connections opened: {}", pool.opened());
    Ok(Some((results, interrupted)))
}

/// Checks `sources` one after the other on `client`, printing a line for each.
async fn run_freshness(
    client: &tokio_postgres::Client,
    sources: &[&crate::manifest::SourceNode],
    out: &Output,
) -> Vec<freshness::FreshnessResult> {
    let total = sources.len();
    let mut results = Vec::new();
    for (i, s) in sources.iter().enumerate() {
        let what = format!("freshness of {}.{}", s.table.source_name, s.table.name);
        out.node_start(i + 1, total, &what, &s.unique_id);
        let r = freshness::check(client, s).await;
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
    results
}

/// `source freshness`: checks every selected source table with a policy.
fn source_freshness(
    settings: Arc<Settings>,
    global: &GlobalArgs,
    out: &Arc<Output>,
) -> Result<i32> {
    let started = Instant::now();
    let loaded = load(settings.clone())?;
    header(out, &loaded);
    let chosen = if global.select.is_empty() {
        loaded
            .manifest
            .sources
            .iter()
            .map(|s| s.unique_id.clone())
            .collect()
    } else {
        loaded
            .graph
            .select(&loaded.manifest, &global.select, &global.exclude)?
    };
    let sources: Vec<&crate::manifest::SourceNode> = loaded
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
    let rt = runtime()?;
    let results = rt.block_on(async {
        let client =
            warehouse::connect_with_retry(&settings, &|m| out.warn("connect_retry", m)).await?;
        out.blank();
        Ok::<_, Error>(run_freshness(&client, &sources, out).await)
    })?;
    let elapsed = started.elapsed().as_secs_f64();
    artifacts::write_json(
        &loaded.target_dir,
        "sources.json",
        &freshness::sources_json(&results, elapsed, &loaded.invocation_id),
    )?;
    let mut counts = Counts::default();
    let mut failures = Vec::new();
    for r in &results {
        match r.status {
            "pass" => counts.pass += 1,
            "warn" => {
                counts.warn += 1;
                failures.push((
                    format!("Warning: source {} is stale", r.unique_id),
                    r.message.clone(),
                ));
            }
            _ => {
                counts.error += 1;
                failures.push((
                    format!("Failure: source {} ({})", r.unique_id, r.status),
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

/// `generate`: replaces the raw schemas of the configured database with
/// generated data.
fn generate_raw(
    settings: Arc<Settings>,
    sample: crate::cli::SampleArgs,
    out: &Output,
) -> Result<i32> {
    let opts = crate::demo::gen_options(sample.days, sample.sessions_per_day, sample.seed);
    out.info(
        "generate",
        &format!(
            "Generating {} days x {} sessions/day (seed {}) into database '{}'",
            opts.days, opts.sessions_per_day, opts.seed, settings.dbname
        ),
    );
    let started = Instant::now();
    let loaded = runtime()?.block_on(async {
        let client = warehouse::connect(&settings).await?;
        crate::demo::load_raw(&client, &opts).await
    })?;
    for (table, rows) in loaded {
        out.info("generated", &format!("{table:<28} {rows:>10} rows"));
    }
    out.info(
        "generated",
        &format!("Done in {:.1}s", started.elapsed().as_secs_f64()),
    );
    Ok(0)
}
