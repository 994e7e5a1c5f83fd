//! The command line (clap): subcommands, their own options, and the global
//! options every subcommand takes (dbt's global flags, and the settings flags),
//! grouped after a subcommand's own in its `--help`. Options go before or after
//! the subcommand (`reluvia-transform -s x run` as `run -s x`): [`arguments`]
//! moves the subcommand to the front. [`parse`] reads the command line and turns
//! an unknown command or option into one line that suggests only a real near
//! match; commands that belong to other work ([`NOT_YET`]) say so.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::settings::SettingsInput;

#[derive(Debug, Parser)]
#[command(
    name = "reluvia-transform",
    version,
    about = "Run a dbt-format project of Jinja SQL models on PostgreSQL (the T of a Meltano ELT stack)",
    long_about = None,
    after_help = "Settings come from flags, RELUVIA_TRANSFORM_<NAME> and PG_ANALYTICS_* variables, a connection URL, --config JSON files, DBT_POSTGRES_* variables, a dbt profiles.yml and PG* variables; see the README.\nExit codes: 0 success, 1 a node failed or the run could not complete, 2 usage, settings or compile error."
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
    /// Print what this plugin is and its settings as a JSON Schema (Singer SDK convention), then exit.
    #[arg(long)]
    pub(crate) about: bool,
    /// Format of --about.
    #[arg(long, value_enum, default_value_t = AboutFormat::Text, requires = "about")]
    pub(crate) format: AboutFormat,
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
    /// No command was typed: `build` was put in its place (see [`arguments`]).
    #[arg(skip)]
    pub(crate) implicit: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Build the selected models in dependency order.
    Run(RunArgs),
    /// Run the data tests of the selected nodes.
    Test(TestArgs),
    /// Load seeds, build models and run their tests in graph order; a failing test skips what its model feeds.
    Build(BuildArgs),
    /// Load the selected seeds (CSV files of the seed paths) into tables.
    Seed(SeedArgs),
    /// Take the selected snapshots: record the changed rows of their queries as new versions.
    Snapshot(SnapshotArgs),
    /// Source commands: `source freshness`.
    Source {
        #[command(subcommand)]
        command: SourceCommand,
    },
    /// Same as `source freshness`.
    Freshness(FreshnessArgs),
    /// Render the selected nodes' SQL into the target path (and print it for `--select x`).
    Compile(CompileArgs),
    /// Run the selected node's query (or --inline SQL) and print its first rows; builds nothing.
    Show(ShowArgs),
    /// Run a macro of the project by itself, with --args as its arguments, on a connection of its own.
    RunOperation(RunOperationArgs),
    /// List the selected nodes, one per line.
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Parse the project, write manifest.json and report how long each phase took.
    Parse,
    /// Run again what errored, failed or was skipped in the last run_results.json, with that run's command and flags.
    Retry,
    /// Delete the project's clean-targets (default: the target path).
    Clean(CleanArgs),
    /// Install the packages of packages.yml (local: and git:) into packages-install-path and write package-lock.yml.
    Deps,
    /// Show the effective settings (secrets masked), test the connection and print the server version.
    Debug,
    /// Write the project built into the binary into a directory to edit (never overwriting a file); the next run uses it.
    Init {
        /// Where to write it [default: transform/ of the Meltano project, or ./transform].
        #[arg(value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Documentation: `docs generate` (catalog.json and a static site), `docs serve`.
    Docs {
        #[command(subcommand)]
        command: DocsCommand,
    },
    /// Write the executive report from the marts: one self-contained HTML file with inline SVG charts.
    Report(ReportArgs),
    /// Start a throwaway PostgreSQL, load sample raw data, build and test the marts, print the executive summary.
    Demo {
        /// Leave the cluster running and print how to connect.
        #[arg(long)]
        keep: bool,
        /// Where the executive report (report.html) and the docs site (docs/) go [default: reluvia-demo in the temporary directory].
        #[arg(long, value_name = "DIR")]
        output_dir: Option<PathBuf>,
        #[command(flatten)]
        sample: SampleArgs,
    },
    /// Replace the raw schemas of the configured database with generated data (for benchmarks).
    Generate {
        #[command(flatten)]
        sample: SampleArgs,
        /// Drop raw schemas that generate did not create, and what they hold (landed data included).
        #[arg(long)]
        replace_raw: bool,
    },
}

/// Which nodes a command works on (dbt's `--select`, `--exclude`, `--selector`).
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Node selection")]
pub(crate) struct Selection {
    /// Nodes to include: name, +name, name+, tag:x, path:models/marts, source:s, config.materialized:table… (space-separated: union; comma: intersection).
    #[arg(short = 's', long, num_args = 1.., value_name = "SELECTOR")]
    pub(crate) select: Vec<String>,
    /// The older name of --select (with ls/list: --select and --resource-type model, as in dbt).
    #[arg(
        short = 'm',
        long = "models",
        visible_alias = "model",
        num_args = 1..,
        value_name = "SELECTOR"
    )]
    pub(crate) models: Vec<String>,
    /// Nodes to leave out, same syntax as --select.
    #[arg(long, num_args = 1.., value_name = "SELECTOR")]
    pub(crate) exclude: Vec<String>,
    /// A selector defined in the project's selectors.yml (instead of --select/--exclude).
    #[arg(long, value_name = "NAME")]
    pub(crate) selector: Option<String>,
    /// The global flags selection is evaluated against (--indirect-selection,
    /// --state), filled in by the command's dispatch.
    #[arg(skip)]
    pub(crate) against: crate::graph::Against,
    /// `retry`: exactly these unique ids, instead of selectors.
    #[arg(skip)]
    pub(crate) ids: Option<std::collections::BTreeSet<String>>,
}

impl Selection {
    /// `-m`/`--models` read as `--select`, as every command but ls reads them.
    pub(crate) fn merged(&self) -> Selection {
        let mut s = self.clone();
        s.select.append(&mut s.models);
        s
    }
}

/// `run`.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct RunArgs {
    /// Rebuild from scratch what keeps state between runs (incremental models, materialized views).
    #[arg(short = 'f', long, env = "DBT_FULL_REFRESH")]
    pub(crate) full_refresh: bool,
    /// Read every ref() and source() as zero rows (schema-only builds), as dbt 1.8+.
    #[arg(long, env = "DBT_EMPTY")]
    pub(crate) empty: bool,
    #[command(flatten)]
    pub(crate) selection: Selection,
}

/// `test`.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct TestArgs {
    /// Keep each test's failing rows in a table of the audit schema (<schema>_dbt_test__audit).
    #[arg(long, env = "DBT_STORE_FAILURES")]
    pub(crate) store_failures: bool,
    #[command(flatten)]
    pub(crate) selection: Selection,
}

/// `build`.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct BuildArgs {
    /// Keep each test's failing rows in a table of the audit schema (<schema>_dbt_test__audit).
    #[arg(long, env = "DBT_STORE_FAILURES")]
    pub(crate) store_failures: bool,
    /// Check source freshness first and build nothing when a source is stale past error_after.
    #[arg(long)]
    pub(crate) check_freshness: bool,
    /// Recreate seeds' tables from their CSV files (new columns, new types), rebuild incremental models from scratch.
    #[arg(short = 'f', long, env = "DBT_FULL_REFRESH")]
    pub(crate) full_refresh: bool,
    /// Read every ref() and source() as zero rows (schema-only builds), as dbt 1.8+.
    #[arg(long, env = "DBT_EMPTY")]
    pub(crate) empty: bool,
    #[command(flatten)]
    pub(crate) selection: Selection,
}

/// `seed`.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct SeedArgs {
    /// Recreate the seeds' tables from their CSV files instead of reloading them (new columns, new types).
    #[arg(short = 'f', long, env = "DBT_FULL_REFRESH")]
    pub(crate) full_refresh: bool,
    #[command(flatten)]
    pub(crate) selection: Selection,
}

/// `snapshot`.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct SnapshotArgs {
    #[command(flatten)]
    pub(crate) selection: Selection,
}

/// `source freshness`.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct FreshnessArgs {
    /// Where to write the JSON report [default: <target-path>/sources.json].
    #[arg(short = 'o', long, value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) selection: Selection,
}

/// `text` or `json`, for what `compile` and `show` print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub(crate) enum TextOrJson {
    #[default]
    Text,
    Json,
}

/// `compile`.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct CompileArgs {
    /// Compile this SQL (the project's refs, sources and macros apply) instead of nodes.
    #[arg(long, value_name = "SQL", conflicts_with_all = ["select", "selector"])]
    pub(crate) inline: Option<String>,
    /// How to print the compiled SQL of `--select x`.
    #[arg(long, value_enum, default_value_t = TextOrJson::Text)]
    pub(crate) output: TextOrJson,
    /// Read every ref() and source() as zero rows (schema-only builds), as dbt 1.8+.
    #[arg(long, env = "DBT_EMPTY")]
    pub(crate) empty: bool,
    /// Compile as a full refresh would run (is_incremental() is false).
    #[arg(short = 'f', long, env = "DBT_FULL_REFRESH")]
    pub(crate) full_refresh: bool,
    #[command(flatten)]
    pub(crate) selection: Selection,
}

/// `show`.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct ShowArgs {
    /// Preview this SQL (the project's refs, sources and macros apply) instead of a node.
    #[arg(long, value_name = "SQL", conflicts_with_all = ["select", "selector"])]
    pub(crate) inline: Option<String>,
    /// How many rows to print (a negative number: all of them).
    #[arg(long, default_value_t = 5, allow_negative_numbers = true)]
    pub(crate) limit: i64,
    /// How to print the rows: a table, or JSON.
    #[arg(long, value_enum, default_value_t = TextOrJson::Text)]
    pub(crate) output: TextOrJson,
    /// Render as a full refresh would (is_incremental() is false).
    #[arg(short = 'f', long, env = "DBT_FULL_REFRESH")]
    pub(crate) full_refresh: bool,
    #[command(flatten)]
    pub(crate) selection: Selection,
}

/// `run-operation`.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct RunOperationArgs {
    /// The macro to run: `name` or `<project>.name`.
    #[arg(value_name = "MACRO")]
    pub(crate) macro_name: String,
    /// Its keyword arguments, a YAML (or JSON) mapping: --args '{table_name: x, n: 3}'.
    #[arg(long, value_name = "YAML")]
    pub(crate) args: Option<String>,
}

/// `ls` (`list`).
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct LsArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = LsOutput::Selector)]
    pub(crate) output: LsOutput,
    /// With `--output json`: the keys of each node to print, space-separated
    /// (default: name resource_type package_name original_file_path unique_id
    /// alias config tags depends_on source_name).
    #[arg(long, num_args = 1..)]
    pub(crate) output_keys: Vec<String>,
    /// Only nodes of these types (repeatable; `all`, `default`: all but analyses).
    #[arg(long, visible_alias = "resource-types", value_enum, num_args = 1..)]
    pub(crate) resource_type: Vec<ResourceTypeArg>,
    /// Leave out nodes of these types (repeatable).
    #[arg(long, visible_alias = "exclude-resource-types", value_enum, num_args = 1..)]
    pub(crate) exclude_resource_type: Vec<ResourceTypeArg>,
    #[command(flatten)]
    pub(crate) selection: Selection,
}

/// `clean`.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct CleanArgs {
    /// Also delete clean-targets outside the project directory.
    #[arg(long)]
    pub(crate) no_clean_project_files_only: bool,
    /// Refuse to delete clean-targets outside the project directory (the default).
    #[arg(long, hide = true, overrides_with = "no_clean_project_files_only")]
    pub(crate) clean_project_files_only: bool,
}

/// What `report` writes.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct ReportArgs {
    /// Where to write the report [default: <target-path>/report.html].
    #[arg(long, short = 'o', value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
    /// The UTC day to report, YYYY-MM-DD [default: the latest complete UTC day, yesterday].
    #[arg(long, value_name = "DATE")]
    pub(crate) date: Option<chrono::NaiveDate>,
    /// Complete days shown in the trend charts (today, partial, comes after them).
    #[arg(long, value_name = "N", default_value_t = 28, value_parser = clap::value_parser!(u32).range(1..=366))]
    pub(crate) days: u32,
    /// Also write a PNG of the report beside it (needs headless Chromium: `chromium`, or $RELUVIA_CHROMIUM).
    #[arg(long)]
    pub(crate) png: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum DocsCommand {
    /// Write catalog.json (from the database) and the documentation site (index.html and a page per node) into the target path.
    Generate {
        /// Write the site without reading the database: no catalog.json, column types from YAML only.
        #[arg(long)]
        no_catalog: bool,
    },
    /// Serve the generated site on localhost.
    Serve {
        /// Port to listen on (0: any free port).
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
    },
}

/// Size and seed of generated raw data.
#[derive(Debug, Args, Clone, Copy)]
pub(crate) struct SampleArgs {
    /// Days of data, ending today (UTC).
    #[arg(long, default_value_t = 90)]
    pub(crate) days: u32,
    /// Sessions per day [default: 40, a few thousand sessions in all].
    #[arg(long)]
    pub(crate) sessions_per_day: Option<u32>,
    /// Seed of the generator: the same seed, days and scale give the same data.
    #[arg(long, default_value_t = reluvia_sample::generate::DEMO_SEED)]
    pub(crate) seed: u64,
}

#[derive(Debug, Subcommand)]
pub(crate) enum SourceCommand {
    /// Check the age of the newest row of every source table with a freshness policy; writes sources.json.
    Freshness(FreshnessArgs),
    /// Compare the landed source tables with the columns (data_type) the project declares for them; exit 1 on a missing table or column or a changed type.
    Check {
        #[command(flatten)]
        selection: Selection,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum AboutFormat {
    Text,
    Json,
    Markdown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub(crate) enum LsOutput {
    /// `project.path.name`, as dbt prints it.
    #[default]
    Selector,
    /// Node names only.
    Name,
    /// One JSON object per line.
    Json,
    /// File paths.
    Path,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ResourceTypeArg {
    Model,
    Source,
    Test,
    Seed,
    Snapshot,
    Analysis,
    Exposure,
    Metric,
    #[value(name = "semantic_model")]
    SemanticModel,
    #[value(name = "saved_query")]
    SavedQuery,
    #[value(name = "unit_test")]
    UnitTest,
    /// Every type.
    All,
    /// Every type but analyses.
    Default,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormatArg {
    Text,
    Json,
}

/// The log file's line format (`--log-format-file`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFileFormat {
    /// dbt's debug lines: time with microseconds, level, thread, message.
    Debug,
    /// The console's lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Minimum severity of what is logged (`--log-level`, `--log-level-file`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub(crate) enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
    /// Nothing.
    None,
}

/// Which tests a selection brings along (`--indirect-selection`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub(crate) enum IndirectSelection {
    /// The tests of any selected node.
    #[default]
    Eager,
    /// Only tests whose every parent is selected.
    Cautious,
    /// Tests whose parents are selected or upstream of the selection.
    Buildable,
    /// No test that is not selected itself.
    Empty,
}

/// Options of every command: dbt's global flags and the settings flags.
#[derive(Debug, Args, Default, Clone)]
#[command(next_help_heading = "Global options")]
pub(crate) struct GlobalArgs {
    /// Directory holding dbt_project.yml [default: the current directory; under Meltano transforms/ or transform/ of the Meltano project, else the built-in project].
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) project_dir: Option<PathBuf>,
    /// Where compiled SQL and artifacts go, relative to the project directory [default: the project's target-path; under Meltano .meltano/transformers/reluvia-transform/target].
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) target_path: Option<PathBuf>,
    /// Directory of a dbt profiles.yml to read connection settings from.
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) profiles_dir: Option<PathBuf>,
    /// Profile of profiles.yml to use [default: the project's profile].
    #[arg(long, global = true, value_name = "NAME")]
    pub(crate) profile: Option<String>,
    /// Output of the profile to use [default: the profile's target].
    #[arg(short = 't', long, global = true, value_name = "NAME")]
    pub(crate) target: Option<String>,
    /// JSON file of settings (repeatable, later files win); `--config ENV` reads the environment only.
    #[arg(long = "config", global = true, value_name = "FILE")]
    pub(crate) config: Vec<PathBuf>,
    /// Values for var(), as a JSON or YAML object, e.g. '{"start_date": "2026-01-01"}'.
    #[arg(long, global = true, value_name = "YAML")]
    pub(crate) vars: Option<String>,
    /// How many nodes to run at once (and most connections opened).
    #[arg(long, global = true, value_name = "N")]
    pub(crate) threads: Option<u64>,
    /// Stop at the first failure.
    #[arg(short = 'x', long, global = true)]
    pub(crate) fail_fast: bool,
    /// Which tests come along with the selected nodes [default: eager].
    #[arg(
        long,
        global = true,
        value_enum,
        env = "DBT_INDIRECT_SELECTION",
        value_name = "MODE"
    )]
    pub(crate) indirect_selection: Option<IndirectSelection>,
    /// A previous run's target/ directory (manifest.json, run_results.json), for state: and result: selectors and --defer.
    #[arg(long, global = true, env = "DBT_STATE", value_name = "DIR")]
    pub(crate) state: Option<PathBuf>,
    /// Refs to unselected nodes whose relation this target lacks resolve to the relations of the --state manifest.
    #[arg(long, global = true, env = "DBT_DEFER", overrides_with = "no_defer")]
    pub(crate) defer: bool,
    #[arg(long, global = true, hide = true, overrides_with = "defer")]
    pub(crate) no_defer: bool,
    /// The target/ directory to defer to, when not --state's.
    #[arg(long, global = true, env = "DBT_DEFER_STATE", value_name = "DIR")]
    pub(crate) defer_state: Option<PathBuf>,
    /// With --defer: the state's relations even where this target has the relation.
    #[arg(
        long,
        global = true,
        env = "DBT_FAVOR_STATE",
        overrides_with = "no_favor_state"
    )]
    pub(crate) favor_state: bool,
    #[arg(long, global = true, hide = true, overrides_with = "favor_state")]
    pub(crate) no_favor_state: bool,
    /// Treat every warning as an error: a warning of the run makes it exit 2, a test of warn severity that fails counts as a failure.
    #[arg(long, global = true, env = "DBT_WARN_ERROR")]
    pub(crate) warn_error: bool,
    /// Which warnings are errors, as YAML: '{"error": "all" | [names], "warn": [names], "silence": [names]}'.
    #[arg(
        long,
        global = true,
        env = "DBT_WARN_ERROR_OPTIONS",
        value_name = "YAML",
        conflicts_with = "warn_error"
    )]
    pub(crate) warn_error_options: Option<String>,
    /// Console output: dbt-like text lines, or one JSON object per event.
    #[arg(long, global = true, value_enum)]
    pub(crate) log_format: Option<LogFormatArg>,
    /// Format of the log file [default: debug].
    #[arg(long, global = true, value_enum, env = "DBT_LOG_FORMAT_FILE")]
    pub(crate) log_format_file: Option<LogFileFormat>,
    /// Minimum severity shown on the console (and in the log file unless --log-level-file) [default: info].
    #[arg(long, global = true, value_enum, env = "DBT_LOG_LEVEL")]
    pub(crate) log_level: Option<LogLevel>,
    /// Minimum severity written to the log file [default: debug].
    #[arg(long, global = true, value_enum, env = "DBT_LOG_LEVEL_FILE")]
    pub(crate) log_level_file: Option<LogLevel>,
    /// Directory of the log file dbt.log [default: <project>/logs, or the project's log-path].
    #[arg(long, global = true, env = "DBT_LOG_PATH", value_name = "DIR")]
    pub(crate) log_path: Option<PathBuf>,
    /// Show debug lines on the console: each SQL statement sent, per node.
    #[arg(short = 'd', long, global = true, env = "DBT_DEBUG")]
    pub(crate) debug: bool,
    /// Show only errors on the console (a command's result on stdout is still printed).
    #[arg(short = 'q', long, global = true, env = "DBT_QUIET")]
    pub(crate) quiet: bool,
    /// Colour the console's lines [default: when stderr is a terminal, TERM is not dumb and NO_COLOR is unset; CLICOLOR_FORCE forces it].
    #[arg(long, global = true, overrides_with = "no_use_colors")]
    pub(crate) use_colors: bool,
    /// Never colour the console's lines.
    #[arg(
        long,
        global = true,
        visible_alias = "no-color",
        overrides_with = "use_colors"
    )]
    pub(crate) no_use_colors: bool,
}

impl GlobalArgs {
    /// The settings these options give, as flags (highest precedence).
    pub(crate) fn settings_input(&self) -> Result<SettingsInput> {
        let mut flags: Vec<(String, Value, String)> = Vec::new();
        if let Some(p) = &self.project_dir {
            flags.push((
                "project_dir".into(),
                Value::String(p.display().to_string()),
                "--project-dir".into(),
            ));
        }
        if let Some(p) = &self.target_path {
            flags.push((
                "target_path".into(),
                Value::String(p.display().to_string()),
                "--target-path".into(),
            ));
        }
        if let Some(t) = self.threads {
            flags.push(("threads".into(), Value::from(t), "--threads".into()));
        }
        if let Some(v) = &self.vars {
            flags.push(("vars".into(), parse_vars(v)?, "--vars".into()));
        }
        if self.fail_fast {
            flags.push(("fail_fast".into(), Value::Bool(true), "--fail-fast".into()));
        }
        if let Some(f) = self.log_format {
            let v = match f {
                LogFormatArg::Text => "text",
                LogFormatArg::Json => "json",
            };
            flags.push((
                "log_format".into(),
                Value::String(v.into()),
                "--log-format".into(),
            ));
        }
        for (name, value, flag) in [
            (
                "profiles_dir",
                self.profiles_dir.as_ref().map(|p| p.display().to_string()),
                "--profiles-dir",
            ),
            ("profile", self.profile.clone(), "--profile"),
            ("target", self.target.clone(), "--target"),
        ] {
            if let Some(v) = value {
                flags.push((name.into(), Value::String(v), flag.into()));
            }
        }
        Ok(SettingsInput {
            flags,
            config_files: self.config.clone(),
        })
    }

    /// `--use-colors` (true), `--no-use-colors` (false), or neither.
    pub(crate) fn colors(&self) -> Option<bool> {
        if self.no_use_colors {
            Some(false)
        } else if self.use_colors {
            Some(true)
        } else {
            None
        }
    }
}

impl Command {
    /// The command's selection options, for commands that select nodes.
    pub(crate) fn selection(&self) -> Option<&Selection> {
        Some(match self {
            Command::Run(a) => &a.selection,
            Command::Test(a) => &a.selection,
            Command::Build(a) => &a.selection,
            Command::Seed(a) => &a.selection,
            Command::Snapshot(a) => &a.selection,
            Command::Freshness(a)
            | Command::Source {
                command: SourceCommand::Freshness(a),
            } => &a.selection,
            Command::Compile(a) => &a.selection,
            Command::Show(a) => &a.selection,
            Command::Ls(a) => &a.selection,
            Command::Source {
                command: SourceCommand::Check { selection },
            } => selection,
            _ => return None,
        })
    }
}

/// Commands dbt has that belong to other work: answered with a clear "not
/// supported yet" (exit 2) rather than a suggestion of another command.
pub(crate) const NOT_YET: &[(&str, &str)] = &[(
    "clone",
    "build the relations with run or build, or read another environment's with --defer --state <DIR>",
)];

/// The names of the subcommands and their aliases.
pub(crate) fn command_names() -> Vec<String> {
    use clap::CommandFactory;
    Cli::command()
        .get_subcommands()
        .flat_map(|c| std::iter::once(c.get_name()).chain(c.get_all_aliases()))
        .map(str::to_string)
        .collect()
}

/// One option of the command line: its short and long names, whether it takes
/// a value, and whether it takes several.
struct OptionSpec {
    shorts: Vec<char>,
    longs: Vec<String>,
    takes: bool,
    several: bool,
}

/// Every option of every command (the root's, and each subcommand's, nested
/// ones included).
fn all_options() -> Vec<OptionSpec> {
    use clap::CommandFactory;
    let mut root = Cli::command();
    root.build();
    let mut out = Vec::new();
    let mut stack = vec![&root];
    while let Some(cmd) = stack.pop() {
        for a in cmd.get_arguments().filter(|a| !a.is_positional()) {
            let range = a.get_num_args().unwrap_or_default();
            let mut shorts: Vec<char> = a.get_short().into_iter().collect();
            shorts.extend(a.get_all_short_aliases().unwrap_or_default());
            let mut longs: Vec<String> = a.get_long().map(str::to_string).into_iter().collect();
            longs.extend(
                a.get_all_aliases()
                    .unwrap_or_default()
                    .into_iter()
                    .map(str::to_string),
            );
            out.push(OptionSpec {
                shorts,
                longs,
                takes: range.takes_values(),
                several: range.max_values() > 1,
            });
        }
        stack.extend(cmd.get_subcommands());
    }
    out
}

/// Names of the subcommands that have subcommands of their own.
const NESTED: &[&str] = &["source", "docs"];

/// The command line as clap should read it, and whether `build` was put in for a
/// missing command. The subcommand moves to the front when options come before it
/// (`-s x run` is `run -s x`: selection options belong to the subcommand); in
/// `-s x run`, the command name that follows a value of a many-valued option
/// (`--select`, `--exclude`) ends its values rather than being one more selector.
/// With no command but options, `build` is put in front (under Meltano the bare
/// plugin name means `build`; elsewhere the caller prints the help).
pub(crate) fn arguments(args: Vec<OsString>) -> (Vec<OsString>, bool) {
    let options = all_options();
    let commands = command_names();
    // Values seen of the many-valued option being read, if any.
    let mut many: Option<usize> = None;
    let mut i = 1;
    let mut command_at = None;
    while i < args.len() {
        let Some(word) = args[i].to_str() else {
            return (args, false);
        };
        let option = if let Some(long) = word.strip_prefix("--") {
            if long.is_empty() {
                break; // `--`: the rest is not options
            }
            let (name, inline) = match long.split_once('=') {
                Some((n, _)) => (n, true),
                None => (long, false),
            };
            options
                .iter()
                .find(|o| o.longs.iter().any(|l| l == name))
                .map(|o| (o.takes, o.several, inline))
        } else if let Some(short) = word.strip_prefix('-').filter(|s| !s.is_empty()) {
            let c = short.chars().next().unwrap_or('-');
            options
                .iter()
                .find(|o| o.shorts.contains(&c))
                .map(|o| (o.takes, o.several, short.len() > 1))
        } else {
            None
        };
        match option {
            Some((takes, several, inline)) => {
                many = None;
                if takes && several {
                    many = Some(usize::from(inline));
                } else if takes && !inline {
                    i += 1;
                }
            }
            None if word.starts_with('-') => many = None, // unknown: clap will say
            None => match many {
                Some(n) if n > 0 && commands.iter().any(|c| c == word) => {
                    log::debug!("'{word}' after a selector is the command");
                    command_at = Some(i);
                    break;
                }
                Some(n) => many = Some(n + 1),
                None => {
                    command_at = Some(i);
                    break;
                }
            },
        }
        i += 1;
    }
    match command_at {
        Some(1) => (args, false),
        Some(at) => {
            let word = args[at].to_str().unwrap_or_default();
            let end = if NESTED.contains(&word) {
                (at + 2).min(args.len())
            } else {
                at + 1
            };
            let mut out = args.clone();
            let moved: Vec<OsString> = out.drain(at..end).collect();
            out.splice(1..1, moved);
            (out, false)
        }
        None => {
            let root_only = ["--about", "--version", "-V", "--help", "-h"];
            let has_root_only = args[1..].iter().any(|a| {
                a.to_str()
                    .is_some_and(|w| root_only.contains(&w) || w.starts_with("--format"))
            });
            if args.len() <= 1 || has_root_only {
                (args, false)
            } else {
                let mut out = args.clone();
                out.insert(1, OsString::from("build"));
                (out, true)
            }
        }
    }
}

/// Reads the command line: `Ok(cli)`, or the exit code after printing help,
/// the version or an error.
pub(crate) fn parse(args: Vec<OsString>) -> std::result::Result<Cli, i32> {
    use clap::CommandFactory;
    let (args, implicit) = arguments(args);
    // A command that belongs to other work: say so rather than suggest another.
    if let Some(word) = args.get(1).and_then(|a| a.to_str()) {
        if let Some((name, why)) = NOT_YET.iter().find(|(n, _)| *n == word) {
            eprintln!("error: `{name}` is not supported yet: {why}. `reluvia-transform --help` lists the commands");
            return Err(2);
        }
    }
    match <Cli as Parser>::try_parse_from(&args) {
        Ok(mut cli) => {
            cli.implicit = implicit;
            Ok(cli)
        }
        Err(e) => {
            use clap::error::{ContextKind, ContextValue, ErrorKind};
            let invalid = |kind| match e.get(kind) {
                Some(ContextValue::String(s)) => Some(s.clone()),
                _ => None,
            };
            match e.kind() {
                ErrorKind::InvalidSubcommand => {
                    let word = invalid(ContextKind::InvalidSubcommand).unwrap_or_default();
                    let known: Vec<String> = command_names()
                        .into_iter()
                        .chain(NOT_YET.iter().map(|(n, _)| n.to_string()))
                        .collect();
                    let hint = near(&word, &known)
                        .map(|s| format!(" (did you mean `{s}`?)"))
                        .unwrap_or_default();
                    eprintln!("error: unknown command `{word}`{hint}; `reluvia-transform --help` lists the commands");
                    Err(2)
                }
                ErrorKind::UnknownArgument => {
                    let word = invalid(ContextKind::InvalidArg).unwrap_or_default();
                    let name = word.split('=').next().unwrap_or(&word).to_string();
                    let sub = args
                        .get(1)
                        .and_then(|a| a.to_str())
                        .filter(|w| !w.starts_with('-'))
                        .map(str::to_string);
                    let mut cmd = Cli::command();
                    cmd.build();
                    let mut scope = vec![&cmd];
                    if let Some(s) = &sub {
                        if let Some(c) = cmd.find_subcommand(s) {
                            scope.push(c);
                            if let Some(n) = args.get(2).and_then(|a| a.to_str()) {
                                if let Some(nested) = c.find_subcommand(n) {
                                    scope.push(nested);
                                }
                            }
                        }
                    }
                    let leaf = *scope.last().unwrap_or(&&cmd);
                    let known: Vec<String> = leaf
                        .get_arguments()
                        .filter(|a| !a.is_positional() && !a.is_hide_set())
                        .flat_map(|a| {
                            a.get_long()
                                .into_iter()
                                .map(|l| format!("--{l}"))
                                .chain(a.get_short().map(|s| format!("-{s}")))
                                .collect::<Vec<_>>()
                        })
                        .collect();
                    let hint = near(&name, &known)
                        .map(|s| format!(" (did you mean `{s}`?)"))
                        .unwrap_or_default();
                    let (whose, help) = match scope.len() {
                        1 => (String::new(), "reluvia-transform --help".to_string()),
                        _ => {
                            let path: Vec<&str> = scope[1..].iter().map(|c| c.get_name()).collect();
                            (
                                format!(" of `{}`", path.join(" ")),
                                format!("reluvia-transform {} --help", path.join(" ")),
                            )
                        }
                    };
                    eprintln!(
                        "error: unknown option `{name}`{whose}{hint}; `{help}` lists the options"
                    );
                    Err(2)
                }
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    let _ = e.print();
                    Err(0)
                }
                ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    let _ = e.print();
                    Err(2)
                }
                _ => {
                    let _ = e.print();
                    Err(2)
                }
            }
        }
    }
}

/// The candidate closest to `word`, if it is a real near match: at most two edits
/// (insertions, deletions, substitutions, swaps of neighbours) and no more than a
/// third of the word's length, so that `run-operation` does not suggest `run`.
pub(crate) fn near(word: &str, candidates: &[String]) -> Option<String> {
    let w: Vec<char> = word.trim_start_matches('-').chars().collect();
    let budget = (w.len() / 3).clamp(1, 2);
    candidates
        .iter()
        .filter(|c| c.starts_with("--") == word.starts_with("--"))
        .map(|c| {
            let chars: Vec<char> = c.trim_start_matches('-').chars().collect();
            (edit_distance(&w, &chars), c)
        })
        .filter(|(d, _)| *d <= budget)
        .min_by_key(|(d, c)| (*d, c.len()))
        .map(|(_, c)| c.clone())
}

/// Damerau–Levenshtein distance (optimal string alignment).
fn edit_distance(a: &[char], b: &[char]) -> usize {
    let (n, m) = (a.len(), b.len());
    let mut d = vec![vec![0usize; m + 1]; n + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=n {
        for j in 1..=m {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[n][m]
}

/// `--vars` as JSON, else YAML; it must be an object.
pub(crate) fn parse_vars(text: &str) -> Result<Value> {
    parse_mapping("--vars", text)
}

/// The value of `flag` (`--vars`, `run-operation --args`) as JSON, else YAML; it
/// must be an object.
pub(crate) fn parse_mapping(flag: &str, text: &str) -> Result<Value> {
    let parsed: Option<Value> = serde_json::from_str(text)
        .ok()
        .or_else(|| serde_saphyr::from_str::<Value>(text).ok());
    match parsed {
        Some(v @ Value::Object(_)) => Ok(v),
        _ => Err(Error::usage(format!(
            "{flag}: expected a JSON or YAML object such as '{{\"key\": \"value\"}}', got '{text}'"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn suggestions_are_near_matches_only() {
        let cmds = names(&["run", "build", "ls", "list", "test", "seed"]);
        assert_eq!(near("run-operation", &cmds), None);
        assert_eq!(near("buidl", &cmds).as_deref(), Some("build"));
        assert_eq!(near("lst", &cmds).as_deref(), Some("ls"));
        let flags = names(&["--target", "--state", "--select", "--threads"]);
        assert_eq!(near("--stat", &flags).as_deref(), Some("--state"));
        assert_eq!(near("--selct", &flags).as_deref(), Some("--select"));
        assert_eq!(near("--statex", &names(&["--target"])), None);
    }

    #[test]
    fn command_moves_to_the_front() {
        let os = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        let (a, implicit) = arguments(os(&["x", "-s", "a", "b", "run", "--threads", "2"]));
        assert_eq!(a, os(&["x", "run", "-s", "a", "b", "--threads", "2"]));
        assert!(!implicit);
        let (a, _) = arguments(os(&["x", "--threads", "2", "source", "freshness"]));
        assert_eq!(a, os(&["x", "source", "freshness", "--threads", "2"]));
        let (a, implicit) = arguments(os(&["x", "-s", "run"]));
        assert_eq!(a, os(&["x", "build", "-s", "run"]));
        assert!(implicit);
        let (a, implicit) = arguments(os(&["x", "--about"]));
        assert_eq!(a, os(&["x", "--about"]));
        assert!(!implicit);
    }
}
