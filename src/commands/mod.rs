//! The subcommands, one file each: every file wires the data path (settings →
//! project → rendered manifest → graph → execution → results) for its job and
//! returns the exit code. This file dispatches the command line and holds what
//! they share: loading the project and compiling the selected nodes.

mod about;
mod compile;
mod debug;
mod demo;
mod docs;
mod freshness;
mod generate;
mod job;
mod ls;
mod report;

use std::path::PathBuf;
use std::sync::Arc;

use crate::artifacts;
use crate::cancel::Cancel;
use crate::cli::{Cli, Command, GlobalArgs, LogFormatArg, SourceCommand};
use crate::console::{plural, Output};
use crate::error::Result;
use crate::execute::Job;
use crate::exposures;
use crate::graph::Graph;
use crate::manifest::{Manifest, TestKind};
use crate::project::{self, Project};
use crate::render::Renderer;
use crate::settings::{self, LogFormat, Settings};

/// What every command gets from `main`: the async runtime and the cancellation
/// token, both in place before the command line was read.
pub(crate) struct Invocation {
    pub(crate) runtime: tokio::runtime::Runtime,
    pub(crate) cancel: Cancel,
}

/// Runs the parsed command line; returns the process exit code.
pub(crate) fn main(cli: Cli, inv: &Invocation) -> i32 {
    if cli.about {
        print!("{}", about::about(cli.format));
        return 0;
    }
    let Some(command) = cli.command else {
        // Under Meltano (`meltano run … reluvia-transform`) the bare plugin name
        // means the daily job; from a terminal it means "show me the help".
        if std::env::var_os("MELTANO_PROJECT_ROOT").is_some() {
            return dispatch(
                inv,
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
    dispatch(inv, &command, &cli.global)
}

fn dispatch(inv: &Invocation, command: &Command, global: &GlobalArgs) -> i32 {
    // The demo brings its own database: it reads no connection settings.
    if let Command::Demo {
        keep,
        sample,
        output_dir,
    } = command
    {
        let dir = output_dir
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join("reluvia-demo"));
        return match demo::run(inv, *keep, sample, &dir) {
            Ok(code) => code,
            Err(e) => {
                Output::new(LogFormat::Text).error(&e.to_string());
                e.exit_code()
            }
        };
    }
    // Settings decide the log format, so a settings error is reported in the
    // format the flags asked for.
    let early_format = match global.log_format {
        Some(LogFormatArg::Json) => LogFormat::Json,
        _ => LogFormat::Text,
    };
    let settings = match global.settings_input().and_then(|i| settings::load(&i)) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            Output::new(early_format).error(&e.to_string());
            return e.exit_code();
        }
    };
    let out = Arc::new(Output::new(settings.log_format));
    let result = match command {
        Command::Run => job::run(inv, settings, global, &out, Job::Run),
        Command::Test { store_failures } => job::run(
            inv,
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
        } => job::run(
            inv,
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
        | Command::Freshness => freshness::source_freshness(inv, settings, global, &out),
        Command::Compile => compile::compile(inv, settings, global, &out),
        Command::Demo { .. } => unreachable!("demo runs before settings are read"),
        Command::Generate { sample } => generate::generate(inv, settings, sample, &out),
        Command::Ls {
            output,
            resource_type,
        } => ls::ls(inv, settings, global, *output, *resource_type),
        Command::Debug => debug::debug(inv, settings),
        Command::Report(args) => report::report(inv, settings, args, &out),
        Command::Docs { command } => docs::docs(inv, settings, global, command, &out),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            out.error(&e.to_string());
            e.exit_code()
        }
    }
}

/// A project loaded for a command: settings → project → manifest → graph.
struct Loaded {
    renderer: Renderer,
    manifest: Manifest,
    graph: Graph,
    target_dir: PathBuf,
    invocation_id: String,
}

fn load(settings: Arc<Settings>, cancel: &Cancel) -> Result<Loaded> {
    let project: Project = project::load(&settings.project_dir, cancel)?;
    let invocation_id = uuid::Uuid::new_v4().to_string();
    let renderer = Renderer::new(&project, &settings, &invocation_id)?;
    let mut manifest = renderer.build_manifest(&project)?;
    manifest.exposures = exposures::load(
        &settings.project_dir,
        &project.model_paths,
        &manifest,
        cancel,
    )?;
    cancel.check("while rendering the project; nothing was run")?;
    let graph = Graph::build(&manifest)?;
    let target_dir = settings.resolve_target_path(&project.target_path);
    Ok(Loaded {
        renderer,
        manifest,
        graph,
        target_dir,
        invocation_id,
    })
}

/// Renders the given models and tests, writes their compiled SQL and the manifest.
fn compile_selected(loaded: &mut Loaded, order: &[String], cancel: &Cancel) -> Result<()> {
    let project_name = loaded.manifest.project_name.clone();
    for id in order {
        cancel.check("while compiling; nothing was run")?;
        if let Some(node) = loaded.manifest.node(id) {
            let sql = loaded
                .renderer
                .compile(node)
                .map_err(|e| e.for_node(&node.unique_id))?;
            let path = artifacts::compiled_path(
                &loaded.target_dir,
                &project_name,
                &node.original_file_path,
            );
            artifacts::write_atomic(&path, format!("{sql}\n").as_bytes())?;
            if let Some(node) = loaded.manifest.node_mut(id) {
                node.compiled_code = Some(sql);
            }
        } else if let Some(t) = loaded.manifest.test(id) {
            let sql = loaded
                .renderer
                .compile_test(t, &loaded.manifest)
                .map_err(|e| e.for_node(&t.unique_id))?;
            // dbt's layout: generic tests under their YAML file, singular ones as is.
            let rel = match t.kind {
                TestKind::Generic => format!("{}/{}.sql", t.original_file_path, t.name),
                TestKind::Singular => t.original_file_path.clone(),
            };
            let path = artifacts::compiled_path(&loaded.target_dir, &project_name, &rel);
            artifacts::write_atomic(&path, format!("{sql}\n").as_bytes())?;
            if let Some(t) = loaded.manifest.test_mut(id) {
                t.compiled_code = Some(sql);
            }
        }
    }
    artifacts::write_json(
        &loaded.target_dir,
        "manifest.json",
        &artifacts::manifest_json(&loaded.manifest, &loaded.invocation_id),
    )
}

/// The first lines of a command that loaded a project.
fn header(out: &Output, loaded: &Loaded) {
    out.info(
        "main_report_version",
        &format!("Running with reluvia-transform={}", crate::VERSION),
    );
    let m = &loaded.manifest;
    out.info(
        "found_stats",
        &format!(
            "Found {} model{}, {} data test{}, {} source{}, {} macro{}",
            m.nodes.len(),
            plural(m.nodes.len()),
            m.tests.len(),
            plural(m.tests.len()),
            m.sources.len(),
            plural(m.sources.len()),
            m.macros.len(),
            plural(m.macros.len()),
        ),
    );
}
