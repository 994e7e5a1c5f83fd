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
mod init;
mod job;
mod ls;
mod report;
mod source_check;

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
use crate::render::{EphemeralCache, Renderer};
use crate::semantic;
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
        // A command name read as a selector (`-s run`): without a command, the
        // default below would run something else than what was typed.
        let commands = crate::cli::command_names();
        let given = cli.global.select.iter().chain(&cli.global.exclude);
        if let Some(word) = given
            .flat_map(|s| s.split_whitespace())
            .find(|w| commands.iter().any(|c| c == w))
        {
            Output::new(flag_log_format(&cli.global)).error(&format!(
                "'{word}' was read as a selector of --select/--exclude and no command was given; put the command first: reluvia-transform {word} --select …"
            ));
            return 2;
        }
        // Under Meltano (`meltano run … reluvia-transform`) the bare plugin name
        // means the daily job; from a terminal it means "show me the help".
        if std::env::var_os("MELTANO_PROJECT_ROOT").is_some() {
            return dispatch(
                inv,
                &Command::Build {
                    store_failures: false,
                    check_freshness: false,
                    full_refresh: false,
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
    // `init` writes files and reads no settings.
    if let Command::Init { dir } = command {
        let out = Output::new(flag_log_format(global));
        return match init::init(dir.as_deref(), &out) {
            Ok(()) => 0,
            Err(e) => {
                out.error(&e.to_string());
                e.exit_code()
            }
        };
    }
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
    let early_format = flag_log_format(global);
    let settings = match global.settings_input().and_then(|i| settings::load(&i)) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            Output::new(early_format).error(&e.to_string());
            return e.exit_code();
        }
    };
    let out = Arc::new(Output::new(settings.log_format));
    for w in &settings.warnings {
        out.warn("settings_warning", w);
    }
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
            full_refresh,
        } => job::run(
            inv,
            settings,
            global,
            &out,
            Job::Build {
                store_failures: *store_failures,
                check_freshness: *check_freshness,
                full_refresh: *full_refresh,
            },
        ),
        Command::Seed { full_refresh } => job::run(
            inv,
            settings,
            global,
            &out,
            Job::Seed {
                full_refresh: *full_refresh,
            },
        ),
        Command::Source {
            command: SourceCommand::Freshness,
        }
        | Command::Freshness => freshness::source_freshness(inv, settings, global, &out),
        Command::Source {
            command: SourceCommand::Check,
        } => source_check::source_check(inv, settings, global, &out),
        Command::Compile => compile::compile(inv, settings, global, &out),
        Command::Demo { .. } | Command::Init { .. } => {
            unreachable!("demo and init run before settings are read")
        }
        Command::Generate {
            sample,
            replace_raw,
        } => generate::generate(inv, settings, sample, *replace_raw, &out),
        Command::Ls {
            output,
            resource_type,
            exclude_resource_type,
            output_keys,
        } => ls::ls(
            inv,
            settings,
            global,
            &out,
            ls::Listing {
                output: *output,
                resource_types: resource_type,
                exclude_resource_types: exclude_resource_type,
                output_keys,
            },
        ),
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

/// The log format the flag (else `RELUVIA_TRANSFORM_LOG_FORMAT`) asks for, for
/// errors reported before the settings, which decide it, are known.
fn flag_log_format(global: &GlobalArgs) -> LogFormat {
    match global.log_format {
        Some(LogFormatArg::Json) => LogFormat::Json,
        Some(LogFormatArg::Text) => LogFormat::Text,
        None => match std::env::var_os(format!("{}LOG_FORMAT", settings::ENV_PREFIX)) {
            Some(v) if v.eq_ignore_ascii_case("json") => LogFormat::Json,
            _ => LogFormat::Text,
        },
    }
}

/// A project loaded for a command: settings → project → manifest → graph.
struct Loaded {
    renderer: Renderer,
    manifest: Manifest,
    graph: Graph,
    target_dir: PathBuf,
    invocation_id: String,
    /// The project is the one built into the binary.
    builtin: bool,
}

/// Reads the project of `settings.project_dir`, writing the built-in project
/// there first when it is the one to use. A directory that was found rather than
/// given and holds no project is said in those words.
fn open_project(settings: &Settings, cancel: &Cancel) -> Result<Project> {
    let dir = &settings.project_dir;
    if settings.builtin_project() {
        project::builtin::ensure(dir)?;
    } else if !settings.project_dir_given() && !dir.join("dbt_project.yml").is_file() {
        return Err(crate::error::Error::usage(format!(
            "no dbt project here: {} holds no dbt_project.yml; run from the project's directory, or give it with --project-dir (or the project_dir setting, DBT_PROJECT_DIR)",
            dir.display()
        )));
    }
    project::load(dir, cancel)
}

fn load(settings: Arc<Settings>, cancel: &Cancel) -> Result<Loaded> {
    let project: Project = open_project(&settings, cancel)?;
    let invocation_id = uuid::Uuid::new_v4().to_string();
    let renderer = Renderer::new(&project, &settings, &invocation_id)?;
    let mut manifest = renderer.build_manifest(&project)?;
    (manifest.semantic, manifest.groups) = semantic::load(&project.entries, &manifest)?;
    manifest.index();
    manifest.exposures = exposures::load(&project.entries, &manifest)?;
    manifest.index();
    cancel.check("while rendering the project; nothing was run")?;
    let graph = Graph::build(&manifest)?;
    let target_dir = settings.resolve_target_path(&project.target_path);
    artifacts::remove_leftovers(&target_dir);
    Ok(Loaded {
        renderer,
        manifest,
        graph,
        target_dir,
        invocation_id,
        builtin: settings.builtin_project(),
    })
}

/// Renders the given models, analyses and tests, with the CTEs of the ephemeral
/// models they reach injected, writes their compiled SQL (and that of every
/// ephemeral model inlined, as dbt does) and the manifest. A node whose SQL cannot
/// be rendered keeps the error in `compile_error` (it fails at run time, as in
/// dbt); returns how many did.
fn compile_selected(loaded: &mut Loaded, order: &[String], cancel: &Cancel) -> Result<usize> {
    let project_name = loaded.manifest.project_name.clone();
    let mut failed = 0;
    let mut ephemerals = EphemeralCache::default();
    let write = |loaded: &Loaded, rel: &str, sql: &str| {
        let path = artifacts::compiled_path(&loaded.target_dir, &project_name, rel);
        artifacts::write_atomic(&path, format!("{sql}\n").as_bytes())
    };
    for id in order {
        cancel.check("while compiling; nothing was run")?;
        let m = &loaded.manifest;
        let rel = if let Some(node) = m.node(id) {
            if node.resource_type == "seed" {
                continue; // a CSV file: nothing to compile
            }
            node.original_file_path.clone()
        } else if let Some(t) = m.test(id) {
            // dbt's layout: generic tests under their YAML file, singular ones as is.
            match t.kind {
                TestKind::Generic => format!("{}/{}.sql", t.original_file_path, t.file_name),
                TestKind::Singular => t.original_file_path.clone(),
            }
        } else {
            continue;
        };
        let rendered = loaded.renderer.compile_id(m, id, &mut ephemerals);
        let (compiled, error) = match rendered {
            Ok(sql) => {
                write(loaded, &rel, &sql)?;
                (Some(sql), None)
            }
            Err(e) => {
                failed += 1;
                (None, Some(e.for_node(id).to_string()))
            }
        };
        if let Some(node) = loaded.manifest.node_mut(id) {
            node.compiled_code = compiled;
            node.compile_error = error;
        } else if let Some(t) = loaded.manifest.test_mut(id) {
            t.compiled_code = compiled;
            t.compile_error = error;
        }
    }
    // The ephemeral models inlined into what was compiled have their own file.
    for (id, sql) in ephemerals.compiled() {
        let Some(node) = loaded.manifest.node(id) else {
            continue;
        };
        if node.compiled_code.is_some() {
            continue;
        }
        write(loaded, &node.original_file_path, sql)?;
        let sql = sql.to_string();
        if let Some(node) = loaded.manifest.node_mut(id) {
            node.compiled_code = Some(sql);
        }
    }
    artifacts::write_json(
        &loaded.target_dir,
        "manifest.json",
        &artifacts::manifest_json(&loaded.manifest, &loaded.invocation_id),
    )?;
    Ok(failed)
}

/// dbt's warning for each selector of `--select` and `--exclude` that matches
/// nothing, also when others in the same union do.
fn warn_unmatched(out: &Output, loaded: &Loaded, global: &GlobalArgs) -> Result<()> {
    let specs = [global.select.as_slice(), global.exclude.as_slice()].concat();
    for spec in loaded.graph.unmatched(&loaded.manifest, &specs)? {
        out.warn(
            "no_nodes_for_selection_criteria",
            &format!("The selection criterion '{spec}' does not match any enabled nodes"),
        );
    }
    Ok(())
}

/// The first lines of a command that loaded a project.
fn header(out: &Output, loaded: &Loaded) {
    out.info(
        "main_report_version",
        &format!("Running with reluvia-transform={}", crate::VERSION),
    );
    if loaded.builtin {
        out.info(
            "builtin_project",
            &format!(
                "Using the project built into reluvia-transform {}: {} (no dbt_project.yml in the current directory, or in transforms/ or transform/ of the Meltano project). `meltano invoke reluvia-transform:init` writes a copy to transform/ to edit; the next run uses it",
                crate::VERSION,
                project::builtin::describe()
            ),
        );
    }
    let m = &loaded.manifest;
    let seeds = m.nodes.iter().filter(|n| n.resource_type == "seed").count();
    let models = m.nodes.len() - seeds;
    out.info(
        "found_stats",
        &format!(
            "Found {} model{}, {}{} data test{}, {} source{}, {} macro{}",
            models,
            plural(models),
            match seeds {
                0 => String::new(),
                n => format!("{n} seed{}, ", plural(n)),
            },
            m.tests.len(),
            plural(m.tests.len()),
            m.sources.len(),
            plural(m.sources.len()),
            m.macros.len(),
            plural(m.macros.len()),
        ),
    );
    warn_project(out, loaded);
}

/// The warnings of loading and parsing (custom config keys, deprecations).
fn warn_project(out: &Output, loaded: &Loaded) {
    for w in &loaded.manifest.warnings {
        out.warn("project_warning", &format!("[WARNING]: {w}"));
    }
}
