//! The command line (clap): subcommands and global options, and how options map
//! onto settings. Options are global, so they go before or after the subcommand
//! (`reluvia-transform run --select x` as with dbt). `--select` and `--exclude`
//! take several values, so before the subcommand they would swallow it:
//! [`arguments`] ends their values at a subcommand name.

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
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Build the selected models in dependency order.
    Run,
    /// Run the data tests of the selected nodes.
    Test {
        /// Keep each test's failing rows in a table of the audit schema (<schema>_dbt_test__audit).
        #[arg(long)]
        store_failures: bool,
    },
    /// Build models and run their tests in graph order; a failing test skips the model's descendants.
    Build {
        /// Keep each test's failing rows in a table of the audit schema (<schema>_dbt_test__audit).
        #[arg(long)]
        store_failures: bool,
        /// Check source freshness first and build nothing when a source is stale past error_after.
        #[arg(long)]
        check_freshness: bool,
        /// Recreate seeds' tables from their CSV files instead of reloading them (new columns, new types).
        #[arg(long)]
        full_refresh: bool,
    },
    /// Load the selected seeds (CSV files of the seed paths) into tables.
    Seed {
        /// Recreate the seeds' tables from their CSV files instead of reloading them (new columns, new types).
        #[arg(long)]
        full_refresh: bool,
    },
    /// Source commands: `source freshness`.
    Source {
        #[command(subcommand)]
        command: SourceCommand,
    },
    /// Same as `source freshness`.
    Freshness,
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
    /// Render the selected models' SQL into the target path without touching the database.
    Compile,
    /// List the selected nodes, one per line.
    #[command(alias = "list")]
    Ls {
        /// Output format.
        #[arg(long, value_enum, default_value_t = LsOutput::Selector)]
        output: LsOutput,
        /// Only nodes of these types (repeatable; `all`, `default`: all but analyses).
        #[arg(long, value_enum, num_args = 1.., action = clap::ArgAction::Append)]
        resource_type: Vec<ResourceTypeArg>,
        /// Leave out nodes of these types (repeatable).
        #[arg(long, value_enum, num_args = 1.., action = clap::ArgAction::Append)]
        exclude_resource_type: Vec<ResourceTypeArg>,
        /// With `--output json`: the keys of each node to print, space-separated
        /// (default: name resource_type package_name original_file_path unique_id
        /// alias config tags depends_on source_name).
        #[arg(long, num_args = 1.., action = clap::ArgAction::Append)]
        output_keys: Vec<String>,
    },
    /// Show the effective settings (secrets masked), test the connection and print the server version.
    Debug,
    /// Write the project built into the binary into a directory to edit (never overwriting a file); the next run uses it.
    Init {
        /// Where to write it [default: transform/ of the Meltano project, or ./transform].
        #[arg(value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Write the executive report from the marts: one self-contained HTML file with inline SVG charts.
    Report(ReportArgs),
    /// Documentation: `docs generate` (catalog.json and a static site), `docs serve`.
    Docs {
        #[command(subcommand)]
        command: DocsCommand,
    },
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
    Freshness,
    /// Compare the landed source tables with the columns (data_type) the project declares for them; exit 1 on a missing table or column or a changed type.
    Check,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum AboutFormat {
    Text,
    Json,
    Markdown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LsOutput {
    /// `project.path.name`, as dbt prints it.
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

#[derive(Debug, Args, Default)]
pub(crate) struct GlobalArgs {
    /// Directory holding dbt_project.yml [default: the current directory; under Meltano transforms/ or transform/ of the Meltano project, else the built-in project].
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) project_dir: Option<PathBuf>,
    /// Where compiled SQL and artifacts go, relative to the project directory [default: the project's target-path; under Meltano .meltano/transformers/reluvia-transform/target].
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) target_path: Option<PathBuf>,
    /// JSON file of settings (repeatable, later files win); `--config ENV` reads the environment only.
    #[arg(long = "config", global = true, value_name = "FILE")]
    pub(crate) config: Vec<PathBuf>,
    /// Nodes to include: name, +name, name+, tag:x, path:models/marts, source:s (space-separated: union; comma: intersection).
    #[arg(short = 's', long, global = true, num_args = 1.., value_name = "SELECTOR")]
    pub(crate) select: Vec<String>,
    /// Nodes to leave out, same syntax as --select.
    #[arg(long, global = true, num_args = 1.., value_name = "SELECTOR")]
    pub(crate) exclude: Vec<String>,
    /// How many models to build at once (and most connections opened).
    #[arg(long, global = true, value_name = "N")]
    pub(crate) threads: Option<u64>,
    /// Values for var(), as a JSON or YAML object, e.g. '{"start_date": "2026-01-01"}'.
    #[arg(long, global = true, value_name = "YAML")]
    pub(crate) vars: Option<String>,
    /// Stop at the first failure.
    #[arg(short = 'x', long, global = true)]
    pub(crate) fail_fast: bool,
    /// Console output: dbt-like text lines, or one JSON object per event.
    #[arg(long, global = true, value_enum)]
    pub(crate) log_format: Option<LogFormatArg>,
    /// Directory of a dbt profiles.yml to read connection settings from.
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) profiles_dir: Option<PathBuf>,
    /// Profile of profiles.yml to use [default: the project's profile].
    #[arg(long, global = true, value_name = "NAME")]
    pub(crate) profile: Option<String>,
    /// Output of the profile to use [default: the profile's target].
    #[arg(long, global = true, value_name = "NAME")]
    pub(crate) target: Option<String>,
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
}

/// The names of the subcommands and their aliases.
pub(crate) fn command_names() -> Vec<String> {
    use clap::CommandFactory;
    Cli::command()
        .get_subcommands()
        .flat_map(|c| std::iter::once(c.get_name()).chain(c.get_all_aliases()))
        .map(str::to_string)
        .collect()
}

/// The command line as clap should read it: in `-s x run`, the subcommand name
/// that follows a value of a many-valued option (`--select`, `--exclude`) ends its
/// values, and moves to the front (`run -s x`, the same thing since options are
/// global), rather than being taken as one more selector, which under Meltano
/// would then run the default `build`. Anything else is left as it is.
pub(crate) fn arguments(args: Vec<OsString>) -> Vec<OsString> {
    use clap::CommandFactory;
    let mut cli = Cli::command();
    cli.build();
    // Each option: its short and long names, whether it takes a value, and
    // whether it takes several.
    let options: Vec<(Option<char>, Option<String>, bool, bool)> = cli
        .get_arguments()
        .filter(|a| !a.is_positional())
        .map(|a| {
            let range = a.get_num_args().unwrap_or_default();
            (
                a.get_short(),
                a.get_long().map(str::to_string),
                range.takes_values(),
                range.max_values() > 1,
            )
        })
        .collect();
    let commands = command_names();
    // Values seen of the many-valued option being read, if any.
    let mut many: Option<usize> = None;
    let mut i = 1;
    while i < args.len() {
        let Some(word) = args[i].to_str() else {
            return args;
        };
        let option = if let Some(long) = word.strip_prefix("--") {
            if long.is_empty() {
                return args; // `--`: the rest is not options
            }
            let (name, inline) = match long.split_once('=') {
                Some((n, _)) => (n, true),
                None => (long, false),
            };
            options
                .iter()
                .find(|o| o.1.as_deref() == Some(name))
                .map(|o| (o.2, o.3, inline))
        } else if let Some(short) = word.strip_prefix('-').filter(|s| !s.is_empty()) {
            let c = short.chars().next();
            options
                .iter()
                .find(|o| o.0.is_some() && o.0 == c)
                .map(|o| (o.2, o.3, short.len() > 1))
        } else {
            None
        };
        match option {
            // An option: a flag, one value (the next word, unless given inline) or
            // several.
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
                    let mut out = args.clone();
                    // `source freshness`: the nested subcommand moves along.
                    let end = if word == "source" {
                        (i + 2).min(args.len())
                    } else {
                        i + 1
                    };
                    let moved: Vec<OsString> = out.drain(i..end).collect();
                    log::debug!("'{word}' after a selector is the command");
                    out.splice(1..1, moved);
                    return out;
                }
                Some(n) => many = Some(n + 1),
                None => return args, // the subcommand, where clap expects it
            },
        }
        i += 1;
    }
    args
}

/// `--vars` as JSON, else YAML; it must be an object.
pub(crate) fn parse_vars(text: &str) -> Result<Value> {
    let parsed: Option<Value> = serde_json::from_str(text)
        .ok()
        .or_else(|| serde_saphyr::from_str::<Value>(text).ok());
    match parsed {
        Some(v @ Value::Object(_)) => Ok(v),
        _ => Err(Error::usage(format!(
            "--vars: expected a JSON or YAML object such as '{{\"key\": \"value\"}}', got '{text}'"
        ))),
    }
}
