//! The subcommands, one file each: every file wires the data path (settings →
//! project → rendered manifest → graph → execution → results) for its job and
//! returns the exit code. This file dispatches the command line and holds what
//! they share: loading the project and compiling the selected nodes.

mod about;
mod clean;
mod compile;
mod debug;
mod demo;
mod deps;
mod docs;
mod freshness;
mod generate;
mod init;
mod job;
mod ls;
mod parse;
mod report;
mod retry;
mod run_operation;
mod show;
mod source_check;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::artifacts;
use crate::cancel::Cancel;
use crate::cli::{
    Cli, Command, GlobalArgs, IndirectSelection, LogFileFormat, LogFormatArg, LogLevel, Selection,
    SourceCommand,
};
use crate::console::{plural, FileFormat, Level, Output, OutputOptions, WarnError};
use crate::error::Result;
use crate::execute::Job;
use crate::exposures;
use crate::graph::{Against, Graph, PreviousState, Selectors};
use crate::manifest::{Manifest, Materialization};
use crate::postgres;
use crate::project::{self, Project};
use crate::render::{with_database, EphemeralCache, RenderDb, Renderer};
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
    // Under Meltano the bare plugin name means the daily job, `build`.
    let command = match cli.command {
        Some(c) => c,
        None if std::env::var_os("MELTANO_PROJECT_ROOT").is_some() => {
            Command::Build(crate::cli::BuildArgs::default())
        }
        None => {
            use clap::CommandFactory;
            let _ = Cli::command().print_help();
            return 2;
        }
    };
    if cli.implicit {
        // A command name read as a selector (`-s run`): without a command, the
        // default would run something else than what was typed.
        let commands = crate::cli::command_names();
        if let Some(word) = command
            .selection()
            .into_iter()
            .flat_map(|s| s.select.iter().chain(&s.models).chain(&s.exclude))
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
        if std::env::var_os("MELTANO_PROJECT_ROOT").is_none() {
            use clap::CommandFactory;
            let _ = Cli::command().print_help();
            return 2;
        }
    }
    dispatch(inv, &command, &cli.global)
}

/// The command's flags as dbt's `flags` object gives them to templates.
fn template_flags(
    command: &Command,
    global: &GlobalArgs,
    settings: &Settings,
) -> crate::render::Flags {
    let (which, full_refresh, store_failures, empty) = match command {
        Command::Run(a) => ("run", a.full_refresh, false, Some(a.empty)),
        Command::Build(a) => ("build", a.full_refresh, a.store_failures, Some(a.empty)),
        Command::Test(a) => ("test", false, a.store_failures, None),
        Command::Seed(a) => ("seed", a.full_refresh, false, None),
        Command::Snapshot(_) => ("snapshot", false, false, Some(false)),
        Command::Compile(a) => ("compile", a.full_refresh, false, Some(a.empty)),
        Command::Show(a) => ("show", a.full_refresh, false, None),
        Command::RunOperation(_) => ("run-operation", false, false, None),
        Command::Ls(_) => ("list", false, false, None),
        Command::Parse => ("parse", false, false, None),
        Command::Retry => ("retry", false, false, None),
        Command::Source { .. } | Command::Freshness(_) => ("freshness", false, false, None),
        Command::Docs { .. } => ("generate", false, false, None),
        Command::Deps(_) => ("deps", false, false, None),
        Command::Clean(_) => ("clean", false, false, None),
        Command::Debug => ("debug", false, false, None),
        _ => ("", false, false, None),
    };
    crate::render::Flags {
        which,
        full_refresh,
        store_failures,
        empty,
        warn_error: global.warn_error.then_some(true),
        fail_fast: settings.fail_fast,
    }
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
    // `deps` and `clean` need no connection (nor a profile), as in dbt.
    let no_connection = matches!(command, Command::Deps(_) | Command::Clean(_));
    let settings = match global
        .settings_input()
        .and_then(|i| settings::load(&settings::SettingsInput { no_connection, ..i }))
    {
        Ok(s) => Arc::new(s),
        Err(e) => {
            Output::new(early_format).error(&e.to_string());
            return e.exit_code();
        }
    };
    let out = match output(global, &settings) {
        Ok(o) => Arc::new(o),
        Err(e) => {
            Output::new(settings.log_format).error(&e.to_string());
            return e.exit_code();
        }
    };
    crate::console::capture_sql(&out);
    crate::render::set_flags(template_flags(command, global, &settings));
    for w in &settings.warnings {
        out.warn("settings_warning", w);
    }
    let against = match against(global, &settings.project_dir) {
        Ok(a) => a,
        Err(e) => {
            out.error(&e.to_string());
            return e.exit_code();
        }
    };
    let mut merged = command
        .selection()
        .map(Selection::merged)
        .unwrap_or_default();
    merged.against = against.clone();
    let sel = &merged;
    let result = match command {
        Command::Run(a) => event_window(&a.event_time).and_then(|event_time| {
            let job = Job::Run {
                full_refresh: a.full_refresh,
                empty: a.empty,
                event_time,
            };
            job::run(inv, settings, sel, &out, job)
        }),
        Command::Test(a) => job::run(
            inv,
            settings,
            sel,
            &out,
            Job::Test {
                store_failures: a.store_failures,
            },
        ),
        Command::Build(a) => event_window(&a.event_time).and_then(|event_time| {
            let job = Job::Build {
                store_failures: a.store_failures,
                check_freshness: a.check_freshness,
                full_refresh: a.full_refresh,
                empty: a.empty,
                event_time,
            };
            job::run(inv, settings, sel, &out, job)
        }),
        Command::Seed(a) => job::run(
            inv,
            settings,
            sel,
            &out,
            Job::Seed {
                full_refresh: a.full_refresh,
            },
        ),
        Command::Snapshot(_) => job::run(inv, settings, sel, &out, Job::Snapshot),
        Command::Source {
            command: SourceCommand::Freshness(a),
        }
        | Command::Freshness(a) => freshness::source_freshness(inv, settings, sel, a, &out),
        Command::Source {
            command: SourceCommand::Check { .. },
        } => source_check::source_check(inv, settings, sel, &out),
        Command::Compile(a) => {
            let mut a = a.clone();
            a.selection.against = against;
            compile::compile(inv, settings, &a, &out)
        }
        Command::Show(a) => {
            let mut a = a.clone();
            a.selection = merged.clone();
            show::show(inv, settings, &a, &out)
        }
        Command::RunOperation(a) => run_operation::run_operation(inv, settings, a, &out),
        Command::Parse => parse::parse(inv, settings, &out),
        Command::Retry => retry::retry(inv, settings, global, sel, &out),
        Command::Clean(a) => clean::clean(inv, settings, a, &out),
        Command::Deps(a) => deps::deps(inv, settings, a, &out),
        Command::Demo { .. } | Command::Init { .. } => {
            unreachable!("demo and init run before settings are read")
        }
        Command::Generate {
            sample,
            replace_raw,
        } => generate::generate(inv, settings, sample, *replace_raw, &out),
        Command::Ls(a) => {
            let mut a = a.clone();
            a.selection.against = against;
            ls::ls(inv, settings, &a, &out)
        }
        Command::Debug => debug::debug(inv, settings),
        Command::Report(args) => report::report(inv, settings, args, &out),
        Command::Docs { command } => docs::docs(inv, settings, command, &out),
    };
    let result = result.and_then(|code| out.check_warnings().map(|()| code));
    match result {
        Ok(code) => code,
        Err(e) => {
            out.error(&e.to_string());
            e.exit_code()
        }
    }
}

/// `--event-time-start`/`--event-time-end`, checked as dbt checks them.
fn event_window(a: &crate::cli::EventTimeArgs) -> Result<Option<crate::project::EventWindow>> {
    crate::project::EventWindow::of(a.event_time_start.as_deref(), a.event_time_end.as_deref())
        .map_err(crate::error::Error::usage)
}

/// What selection is evaluated against: `--indirect-selection`, the artifacts
/// of `--state` and, with `--defer`, those of `--defer-state` (else `--state`);
/// relative directories are read from the project directory, as dbt does.
fn against(global: &GlobalArgs, project_dir: &Path) -> Result<Against> {
    let read = |dir: &Path| PreviousState::read(project_dir, dir).map(Arc::new);
    let state = global.state.as_deref().map(read).transpose()?;
    let defer = if global.defer {
        let to = match (&global.defer_state, &state) {
            (Some(dir), _) => read(dir)?,
            (None, Some(state)) => state.clone(),
            (None, None) => {
                return Err(crate::error::Error::usage(
                    "--defer needs the artifacts of a previous run to defer to: add --state <DIR> (or --defer-state <DIR>)",
                ))
            }
        };
        Some((to, global.favor_state))
    } else {
        None
    };
    Ok(Against::new(
        global.indirect_selection.unwrap_or_default(),
        state,
        defer,
    ))
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

/// The console and log file of a command, as the flags and settings ask.
fn output(global: &GlobalArgs, settings: &Settings) -> Result<Output> {
    let level = |l: LogLevel| match l {
        LogLevel::Debug => Level::Debug,
        LogLevel::Info => Level::Info,
        LogLevel::Warn => Level::Warn,
        LogLevel::Error => Level::Error,
        LogLevel::None => Level::None,
    };
    let console_level = if global.debug {
        Level::Debug
    } else if global.quiet {
        Level::Error
    } else {
        global.log_level.map(level).unwrap_or(Level::Info)
    };
    let file_level = global.log_level_file.map(level).unwrap_or(Level::Debug);
    let file_format = match global.log_format_file {
        None | Some(LogFileFormat::Debug) => FileFormat::Debug,
        Some(LogFileFormat::Text) => FileFormat::Text,
        Some(LogFileFormat::Json) => FileFormat::Json,
    };
    let dir = &settings.project_dir;
    let log_dir = match &global.log_path {
        Some(p) if p.is_absolute() => Some(p.clone()),
        Some(p) => Some(dir.join(p)),
        // The built-in project's directory is written whole, once: its log goes
        // beside it, `.meltano/transformers/reluvia-transform/logs`.
        None if settings.builtin_project() => dir
            .parent()
            .and_then(Path::parent)
            .map(|folder| folder.join("logs")),
        // No project here (the command will say so): no file left behind.
        None if !dir.join("dbt_project.yml").is_file() => None,
        // The project's `log-path` (dbt reads it unrendered), else `logs`.
        None => Some(
            dir.join(
                project::project_file(dir)
                    .ok()
                    .and_then(|pf| pf.log_path)
                    .unwrap_or_else(|| "logs".to_string()),
            ),
        ),
    };
    let warn_error = match (&global.warn_error_options, global.warn_error) {
        (Some(text), _) => WarnError::parse(text).map_err(crate::error::Error::usage)?,
        (None, true) => WarnError {
            all: true,
            ..WarnError::default()
        },
        (None, false) => WarnError::default(),
    };
    Ok(Output::configured(OutputOptions {
        format: settings.log_format,
        colors: global.colors(),
        console_level,
        file: log_dir.map(|d| (d.join("dbt.log"), file_level, file_format)),
        secrets: settings.password.iter().cloned().collect(),
        warn_error,
        invocation_id: invocation_id().to_string(),
    }))
}

/// The id of this invocation (one per process), in the artifacts and the log file.
fn invocation_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| uuid::Uuid::new_v4().to_string())
}

/// The ids the command line selects: `--selector` (or the selectors.yml default
/// when neither `--select` nor `--exclude` is given), else `--select` minus
/// `--exclude`.
fn chosen(loaded: &Loaded, sel: &Selection, out: &Output) -> Result<BTreeSet<String>> {
    let (graph, manifest) = (&loaded.graph, &loaded.manifest);
    if let Some(ids) = &sel.ids {
        return Ok(ids
            .iter()
            .filter(|id| graph.ids.contains(*id))
            .cloned()
            .collect());
    }
    let against = &sel.against;
    // Criteria of selectors.yml without their own `indirect_selection` take the
    // command line's.
    let reparsed;
    let selectors = match &loaded.selectors_doc {
        Some((doc, file)) if against.indirect != IndirectSelection::Eager => {
            reparsed = Selectors::parse(doc, file, against.indirect)?;
            &reparsed
        }
        _ => &loaded.selectors,
    };
    let name = match (&sel.selector, &selectors.default) {
        (Some(name), _) => Some(name),
        (None, Some(default)) if sel.select.is_empty() && sel.exclude.is_empty() => {
            out.info(
                "default_selector",
                &format!("Using default selector {default}"),
            );
            Some(default)
        }
        _ => None,
    };
    match name {
        Some(name) => {
            let spec = selectors.by_name.get(name).ok_or_else(|| {
                crate::error::Error::usage(format!(
                    "--selector: no selector named '{name}' in selectors.yml; it defines {}",
                    if selectors.order.is_empty() {
                        "none".to_string()
                    } else {
                        selectors.order.join(", ")
                    }
                ))
            })?;
            graph.select_spec(manifest, spec, against)
        }
        None => graph.select(manifest, &sel.select, &sel.exclude, against),
    }
}

/// A project loaded for a command: settings → project → manifest → graph.
struct Loaded {
    renderer: Arc<Renderer>,
    /// The project's `selectors.yml` (none: no selectors).
    selectors: Selectors,
    /// That file as read, and its path, to read again under another
    /// `--indirect-selection` default.
    selectors_doc: Option<(serde_json::Value, String)>,
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
    project::load(dir, &project::InvocationVars(settings.vars.clone()), cancel)
}

fn load(settings: Arc<Settings>, cancel: &Cancel) -> Result<Loaded> {
    let mut project: Project = open_project(&settings, cancel)?;
    let invocation_id = invocation_id().to_string();
    let renderer = Arc::new(Renderer::new(&project, &settings, &invocation_id)?);
    renderer.render_configs(&mut project)?;
    let mut manifest = renderer.build_manifest(&project)?;
    (manifest.semantic, manifest.groups) = semantic::load(&project.entries, &manifest)?;
    manifest.index();
    manifest.exposures = exposures::load(&project.entries, &manifest)?;
    manifest.index();
    renderer.set_graph(&manifest);
    cancel.check("while rendering the project; nothing was run")?;
    let graph = Graph::build(&manifest)?;
    let selectors_doc = project::selectors_yml(&settings.project_dir)?;
    let selectors = match &selectors_doc {
        Some((doc, file)) => Selectors::parse(doc, file, IndirectSelection::Eager)?,
        None => Selectors::default(),
    };
    let target_dir = settings.resolve_target_path(&project.target_path);
    artifacts::remove_leftovers(&target_dir);
    Ok(Loaded {
        renderer,
        selectors,
        selectors_doc,
        manifest,
        graph,
        target_dir,
        invocation_id,
        builtin: settings.builtin_project(),
    })
}

/// Decides which selected incremental models compile with `is_incremental()`
/// true, as dbt does: their table exists (the database is asked once, and only
/// when one is selected) and neither their `full_refresh` config nor the
/// `--full-refresh` flag asks for a rebuild.
fn mark_incremental(
    inv: &Invocation,
    settings: &Settings,
    out: &Output,
    loaded: &mut Loaded,
    order: &[String],
    full_refresh: bool,
) -> Result<()> {
    let wanted: Vec<(String, String, String)> = order
        .iter()
        .filter_map(|id| loaded.manifest.node(id))
        .filter(|n| n.materialized == Materialization::Incremental && !n.full_refresh(full_refresh))
        .map(|n| (n.unique_id.clone(), n.schema.clone(), n.alias.clone()))
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let relations: Vec<(String, String)> = wanted
        .iter()
        .map(|(_, s, a)| (s.clone(), a.clone()))
        .collect();
    let tables = inv.runtime.block_on(async {
        let client =
            postgres::connect_with_retry(settings, &inv.cancel, &|m| out.warn("connect_retry", m))
                .await?;
        postgres::existing_tables(&client, &relations).await
    })?;
    for (id, schema, alias) in wanted {
        if tables.contains(&(schema, alias)) {
            if let Some(n) = loaded.manifest.node_mut(&id) {
                n.incremental = true;
            }
        }
    }
    Ok(())
}

/// `--defer`, as dbt does: a `ref()` to a node that this invocation does not
/// build resolves to the relation the deferred-to state built, when this
/// target lacks the node's relation — or always, for an unselected node, with
/// `--favor-state`. `building` holds what this invocation builds (none for
/// `compile`), `selected` what was selected.
fn defer(
    inv: &Invocation,
    settings: &Settings,
    out: &Output,
    loaded: &Loaded,
    against: &Against,
    selected: &BTreeSet<String>,
    building: &[String],
) -> Result<()> {
    let Some((state, favor)) = &against.defer else {
        return Ok(());
    };
    let building: BTreeSet<&String> = building.iter().collect();
    let mut candidates = Vec::new();
    for n in &loaded.manifest.nodes {
        if building.contains(&n.unique_id)
            || n.materialized == Materialization::Ephemeral
            || n.resource_type == "analysis"
        {
            continue;
        }
        if let Some(rel) = state.relation_of(&n.unique_id)? {
            candidates.push((n, rel));
        }
    }
    if candidates.is_empty() {
        return Ok(());
    }
    let relations: Vec<(String, String)> = candidates
        .iter()
        .map(|(n, _)| (n.schema.clone(), n.alias.clone()))
        .collect();
    let existing = inv.runtime.block_on(async {
        let client =
            postgres::connect_with_retry(settings, &inv.cancel, &|m| out.warn("connect_retry", m))
                .await?;
        postgres::existing_relations(&client, &relations).await
    })?;
    for (n, (database, schema, identifier)) in candidates {
        let favored = *favor && !selected.contains(&n.unique_id);
        if favored || !existing.contains(&(n.schema.clone(), n.alias.clone())) {
            out.debug(
                "defer",
                &format!(
                    "Deferring ref to {} to \"{database}\".\"{schema}\".\"{identifier}\"",
                    n.unique_id
                ),
                serde_json::json!({"unique_id": n.unique_id}),
            );
            loaded
                .renderer
                .defer_ref(&n.unique_id, &database, &schema, &identifier);
        }
    }
    Ok(())
}

/// Renders the given models, analyses and tests, with the CTEs of the ephemeral
/// models they reach injected, writes their compiled SQL (and that of every
/// ephemeral model inlined, as dbt does) and the manifest. A node whose SQL cannot
/// be rendered keeps the error in `compile_error` (it fails at run time, as in
/// dbt); returns how many did. Renders reach the database through `db` (dbt's
/// execution phase); without it, a node whose render reaches for the database
/// is left to be rendered when it runs (`Manifest::render_at_run`).
fn compile_selected(
    loaded: &mut Loaded,
    order: &[String],
    cancel: &Cancel,
    db: Option<Arc<RenderDb>>,
) -> Result<usize> {
    let mut failed = 0;
    let mut later = Vec::new();
    let writer = artifacts::CompiledWriter::start();
    let write = |loaded: &Loaded, rel: &str, sql: &str| {
        let path = artifacts::compiled_node_path(&loaded.target_dir, &loaded.manifest, rel);
        writer.write(path, sql.to_string());
    };
    // Rendering reads the manifest only: the nodes are rendered on the available
    // cores (one at a time with a database, which has one connection), then
    // written and recorded in `order`'s order.
    let workers = if db.is_some() {
        1
    } else {
        crate::parallel::cores()
    };
    let (renders, ephemeral_sql) = render_all(loaded, order, cancel, &db, workers)?;
    for (id, render) in order.iter().zip(renders) {
        let Some(Render {
            hooks,
            rel,
            rendered,
            wanted_db,
        }) = render
        else {
            continue;
        };
        // A seed's hooks are not rendered again when it runs.
        if wanted_db && db.is_none() && rel.is_some() {
            later.push(id.clone());
            continue;
        }
        let (compiled, mut error) = match (&rel, rendered) {
            (Some(rel), Some(rendered)) => match rendered {
                Ok(sql) => {
                    // dbt writes no compiled file for a snapshot.
                    if !artifacts::is_snapshot(&loaded.manifest, id) {
                        write(loaded, rel, &sql);
                    }
                    (Some(sql), None)
                }
                Err(e) => (None, Some(e.for_node(id).to_string())),
            },
            _ => (None, None),
        };
        let hooks = match hooks {
            Some(Ok(h)) => h,
            Some(Err(e)) => {
                error = error.or_else(|| Some(e.for_node(id).to_string()));
                Default::default()
            }
            None => Default::default(),
        };
        if error.is_some() {
            failed += 1;
        }
        if let Some(node) = loaded.manifest.node_mut(id) {
            node.compiled_code = compiled;
            node.compile_error = error;
            node.rendered_hooks = hooks;
        } else if let Some(t) = loaded.manifest.test_mut(id) {
            t.compiled_code = compiled;
            t.compile_error = error;
        }
    }
    loaded.manifest.render_at_run.extend(later);
    // The ephemeral models inlined into what was compiled have their own file.
    for (id, sql) in ephemeral_sql {
        let Some(node) = loaded.manifest.node(&id) else {
            continue;
        };
        if node.compiled_code.is_some() {
            continue;
        }
        write(loaded, &node.original_file_path, &sql);
        if let Some(node) = loaded.manifest.node_mut(&id) {
            node.compiled_code = Some(sql);
        }
    }
    let manifest = artifacts::manifest_json(&loaded.manifest, &loaded.invocation_id);
    writer.finish()?;
    artifacts::write_json(&loaded.target_dir, "manifest.json", &manifest)?;
    // Freeing the large document is left to a thread of its own.
    std::thread::spawn(move || drop(manifest));
    Ok(failed)
}

/// What rendering one node gave: its hooks (a node's), where its compiled SQL
/// goes and the SQL (none for a seed), and whether a render reached for a
/// database it was not given.
struct Render {
    hooks: Option<Result<project::Hooks>>,
    rel: Option<String>,
    rendered: Option<Result<String>>,
    wanted_db: bool,
}

type EphemeralSql = std::collections::BTreeMap<String, String>;

/// Renders every node of `order` on `workers` threads; gives each node's
/// [`Render`] (none for what is neither a node nor a test) in `order`'s order,
/// and the compiled SQL of every ephemeral model inlined.
fn render_all(
    loaded: &Loaded,
    order: &[String],
    cancel: &Cancel,
    db: &Option<Arc<RenderDb>>,
    workers: usize,
) -> Result<(Vec<Option<Render>>, EphemeralSql)> {
    let (renders, caches) = crate::parallel::map_with(
        order,
        workers,
        EphemeralCache::default,
        |ephemerals, id| -> Result<Option<Render>> {
            cancel.check("while compiling; nothing was run")?;
            Ok(render_one(loaded, id, db, ephemerals))
        },
    );
    let renders = renders.into_iter().collect::<Result<Vec<_>>>()?;
    let mut ephemeral_sql = EphemeralSql::new();
    for cache in &caches {
        for (id, sql) in cache.compiled() {
            ephemeral_sql
                .entry(id.to_string())
                .or_insert_with(|| sql.to_string());
        }
    }
    Ok((renders, ephemeral_sql))
}

/// Renders node or test `id`'s hooks and SQL (see [`Render`]).
fn render_one(
    loaded: &Loaded,
    id: &str,
    db: &Option<Arc<RenderDb>>,
    ephemerals: &mut EphemeralCache,
) -> Option<Render> {
    let m = &loaded.manifest;
    let mut hooks = None;
    let mut wanted_db = false;
    if let Some(node) = m.node(id) {
        let (h, wanted) = with_database(db.clone(), || loaded.renderer.render_hooks(node));
        wanted_db |= wanted;
        hooks = Some(h);
    } else if m.test(id).is_none() {
        return None;
    }
    let rel = artifacts::compiled_file(m, id);
    let rendered = rel.as_ref().map(|_| {
        let (r, wanted) =
            with_database(db.clone(), || loaded.renderer.compile_id(m, id, ephemerals));
        wanted_db |= wanted;
        r
    });
    Some(Render {
        hooks,
        rel,
        rendered,
        wanted_db,
    })
}

/// dbt's warning for each selector of `--select` and `--exclude` that matches
/// nothing, also when others in the same union do.
fn warn_unmatched(out: &Output, loaded: &Loaded, sel: &Selection) -> Result<()> {
    let specs = [sel.select.as_slice(), sel.exclude.as_slice()].concat();
    for spec in loaded
        .graph
        .unmatched(&loaded.manifest, &specs, &sel.against)?
    {
        out.warn(
            "no_nodes_for_selection_criteria",
            &format!("The selection criterion '{spec}' does not match any enabled nodes"),
        );
    }
    // With --warn-error, dbt stops here: nothing runs, no run_results.json.
    out.check_warnings()
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
    let analyses = m
        .nodes
        .iter()
        .filter(|n| n.resource_type == "analysis")
        .count();
    let snapshots = m
        .nodes
        .iter()
        .filter(|n| n.resource_type == "snapshot")
        .count();
    let models = m.nodes.len() - seeds - analyses - snapshots;
    let units = m.tests.iter().filter(|t| t.unit.is_some()).count();
    let data_tests = m.tests.len() - units;
    out.info(
        "found_stats",
        &format!(
            "Found {} model{}, {}{}{}{} data test{}, {}{} source{}, {} macro{}",
            models,
            plural(models),
            match snapshots {
                0 => String::new(),
                n => format!("{n} snapshot{}, ", plural(n)),
            },
            match seeds {
                0 => String::new(),
                n => format!("{n} seed{}, ", plural(n)),
            },
            match analyses {
                0 => String::new(),
                1 => "1 analysis, ".to_string(),
                n => format!("{n} analyses, "),
            },
            data_tests,
            plural(data_tests),
            match units {
                0 => String::new(),
                n => format!("{n} unit test{}, ", plural(n)),
            },
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
