//! The console: what the user sees on stderr while a command runs.
//!
//! Text mode prints dbt-like lines (`12:00:01  1 of 3 START sql table model …`),
//! coloured as [`use_color`] decides. JSON mode (`--log-format json`) prints one
//! JSON object per event, for machines. Each event has a level; the console shows
//! those at `--log-level` and above (`--quiet`: errors only, `--debug`: all, with
//! each SQL statement sent), and the log file (`<log-path>/dbt.log`, as dbt's)
//! receives those at `--log-level-file` (default debug). Secrets are replaced
//! by `*****` in both. stdout is never written here: it is reserved for a
//! command's result (`ls`, `show`, `compile -s x`, `--about`).

use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use serde_json::{json, Value};

use crate::results::{FreshnessStatus, Outcome, Status, TestOutcome};
use crate::settings::LogFormat;

/// Severity of an event, and the minimum shown on the console or written to the
/// log file (`--log-level`, `--log-level-file`, `--debug`, `--quiet`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Level {
    Debug,
    Info,
    Warn,
    Error,
    /// Nothing at all.
    None,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
            Level::None => "none",
        }
    }

    fn parse(s: &str) -> Level {
        match s {
            "debug" => Level::Debug,
            "warn" => Level::Warn,
            "error" => Level::Error,
            _ => Level::Info,
        }
    }
}

/// The log file's line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileFormat {
    /// dbt's debug lines: `12:00:01.123456 [info ] [MainThread]: message`.
    Debug,
    /// The console's text lines.
    Text,
    /// One JSON object per line, as `--log-format json` prints them.
    Json,
}

/// How one invocation logs: the console, and the log file.
pub(crate) struct OutputOptions {
    pub(crate) format: LogFormat,
    /// `Some`: `--use-colors`/`--no-use-colors`; `None`: decided by the terminal.
    pub(crate) colors: Option<bool>,
    pub(crate) console_level: Level,
    /// `<log-path>/dbt.log`, its minimum level and format; `None`: no file.
    pub(crate) file: Option<(std::path::PathBuf, Level, FileFormat)>,
    /// Values never shown or written (the password): replaced by `*****`.
    pub(crate) secrets: Vec<String>,
    pub(crate) warn_error: WarnError,
    pub(crate) invocation_id: String,
}

/// Which warnings are errors (`--warn-error`, `--warn-error-options`), by dbt's
/// event name (`NoNodesForSelectionCriteria`, `NothingToDo`, `LogTestResult`…).
#[derive(Debug, Clone, Default)]
pub(crate) struct WarnError {
    /// `--warn-error`, or `error: all`.
    pub(crate) all: bool,
    pub(crate) error: Vec<String>,
    /// Kept as warnings even with `all`.
    pub(crate) warn: Vec<String>,
    /// Not shown at all.
    pub(crate) silence: Vec<String>,
}

impl WarnError {
    /// `--warn-error-options` as dbt reads it: YAML with `error` (or `include`):
    /// `all`, `*` or a list of names; `warn` (or `exclude`) and `silence`: lists.
    pub(crate) fn parse(text: &str) -> Result<WarnError, String> {
        let v: Value = serde_json::from_str(text)
            .ok()
            .or_else(|| serde_saphyr::from_str::<Value>(text).ok())
            .ok_or_else(|| format!("--warn-error-options: expected YAML such as '{{\"error\": \"all\", \"warn\": [\"NoNodesForSelectionCriteria\"]}}', got '{text}'"))?;
        let Value::Object(map) = v else {
            return Err(format!(
                "--warn-error-options: expected a mapping with error, warn or silence, got '{text}'"
            ));
        };
        let mut out = WarnError::default();
        for (k, v) in &map {
            let names = |v: &Value| -> Result<Vec<String>, String> {
                match v {
                    Value::Array(items) => items
                        .iter()
                        .map(|i| {
                            i.as_str().map(str::to_string).ok_or_else(|| {
                                format!("--warn-error-options: {k}: expected event names, got {i}")
                            })
                        })
                        .collect(),
                    Value::Null => Ok(Vec::new()),
                    other => Err(format!(
                        "--warn-error-options: {k}: expected a list of event names, got {other}"
                    )),
                }
            };
            match k.as_str() {
                "error" | "include" => match v {
                    Value::String(s) if s == "all" || s == "*" => out.all = true,
                    other => {
                        let n = names(other)?;
                        if n.iter().any(|x| x == "all" || x == "*") {
                            out.all = true;
                        }
                        out.error = n;
                    }
                },
                "warn" | "exclude" => out.warn = names(v)?,
                "silence" => out.silence = names(v)?,
                other => {
                    return Err(format!(
                        "--warn-error-options: unknown key '{other}'; use error, warn or silence"
                    ))
                }
            }
        }
        Ok(out)
    }

    fn promotes(&self, name: &str) -> bool {
        (self.all && !self.warn.iter().any(|w| w == name)) || self.error.iter().any(|e| e == name)
    }
}

/// dbt's name of a warning event of ours (what `--warn-error-options` names).
fn dbt_event_name(event: &str) -> String {
    match event {
        "no_nodes_for_selection_criteria" => "NoNodesForSelectionCriteria".into(),
        "nothing_to_do" => "NothingToDo".into(),
        "test_warn" => "LogTestResult".into(),
        other => other
            .split('_')
            .map(|w| {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                    .unwrap_or_default()
            })
            .collect(),
    }
}

/// Warnings about how the run goes (a retry, a wait, an interrupt): never errors.
const OPERATIONAL: &[&str] = &["connect_retry", "waiting", "interrupted", "log_file"];

/// The log file of an invocation: appended to, rotated at 10 MB (five old files
/// kept, `dbt.log.1`…), as dbt writes `logs/dbt.log`.
struct LogFile {
    path: std::path::PathBuf,
    file: Mutex<Option<std::fs::File>>,
    level: Level,
    format: FileFormat,
}

const LOG_FILE_MAX_BYTES: u64 = 10 * 1024 * 1024;

impl LogFile {
    fn open(path: &std::path::Path, level: Level, format: FileFormat) -> std::io::Result<LogFile> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let f = LogFile {
            path: path.to_path_buf(),
            file: Mutex::new(None),
            level,
            format,
        };
        f.reopen()?;
        Ok(f)
    }

    fn reopen(&self) -> std::io::Result<()> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        *self.file.lock().unwrap_or_else(|e| e.into_inner()) = Some(file);
        Ok(())
    }

    fn write(&self, line: &str) {
        let mut guard = self.file.lock().unwrap_or_else(|e| e.into_inner());
        let too_big = guard
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .is_some_and(|m| m.len() + line.len() as u64 > LOG_FILE_MAX_BYTES);
        if too_big {
            *guard = None;
            let name = self.path.display().to_string();
            for i in (1..5).rev() {
                let _ = std::fs::rename(format!("{name}.{i}"), format!("{name}.{}", i + 1));
            }
            let _ = std::fs::rename(&self.path, format!("{name}.1"));
            *guard = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .ok();
        }
        if let Some(f) = guard.as_mut() {
            let _ = f.write_all(line.as_bytes());
        }
    }
}

/// The event sink of one invocation.
pub(crate) struct Output {
    format: LogFormat,
    color: bool,
    console_level: Level,
    lock: Mutex<()>,
    file: Option<LogFile>,
    secrets: Vec<String>,
    warn_error: WarnError,
    /// Warnings that `--warn-error` made errors, in order.
    promoted: Mutex<Vec<String>>,
}

const WIDTH: usize = 80;

/// Whether the console is coloured: the flag, else not with `NO_COLOR`, always
/// with `CLICOLOR_FORCE` (not `0`), not on a `dumb` terminal, else when stderr is
/// a terminal.
fn use_color(flag: Option<bool>) -> bool {
    if let Some(f) = flag {
        return f;
    }
    let set = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if set("NO_COLOR").is_some() {
        return false;
    }
    if set("CLICOLOR_FORCE").is_some_and(|v| v != "0") {
        return true;
    }
    if set("TERM").is_some_and(|v| v == "dumb") {
        return false;
    }
    std::io::stderr().is_terminal()
}

impl Output {
    /// A console-only sink at the default level (errors before the settings are
    /// known, the demo).
    pub(crate) fn new(format: LogFormat) -> Output {
        Output {
            format,
            color: format == LogFormat::Text && use_color(None),
            console_level: Level::Info,
            lock: Mutex::new(()),
            file: None,
            secrets: Vec::new(),
            warn_error: WarnError::default(),
            promoted: Mutex::default(),
        }
    }

    /// The sink of a command: console level and colours, the log file (a file
    /// that cannot be opened is said on the console, and the command goes on).
    pub(crate) fn configured(o: OutputOptions) -> Output {
        let mut out = Output {
            format: o.format,
            color: o.format == LogFormat::Text && use_color(o.colors),
            console_level: o.console_level,
            lock: Mutex::new(()),
            file: None,
            secrets: o.secrets.into_iter().filter(|s| !s.is_empty()).collect(),
            warn_error: o.warn_error,
            promoted: Mutex::default(),
        };
        if let Some((path, level, format)) = o.file.filter(|(_, l, _)| *l != Level::None) {
            match LogFile::open(&path, level, format) {
                Ok(f) => {
                    if format == FileFormat::Debug {
                        let ts = chrono::Utc::now().format("%H:%M:%S%.6f");
                        let bar = "=".repeat(30);
                        f.write(&format!("\n\n{bar} {ts} | {} {bar}\n", o.invocation_id));
                    }
                    out.file = Some(f);
                }
                Err(e) => out.warn(
                    "log_file",
                    &format!(
                        "cannot write the log file {}: {e}; set --log-path to a writable directory",
                        path.display()
                    ),
                ),
            }
        }
        out
    }

    /// Whether debug events are shown or written anywhere (so that SQL
    /// statements are worth capturing).
    pub(crate) fn wants_debug(&self) -> bool {
        self.console_level == Level::Debug
            || self.file.as_ref().is_some_and(|f| f.level == Level::Debug)
    }

    fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), "*****");
            }
        }
        out
    }

    fn emit(&self, event: &str, level: &str, text: &str, fields: Value) {
        let lvl = Level::parse(level);
        let to_console = lvl >= self.console_level && self.console_level != Level::None;
        let to_file = self.file.as_ref().is_some_and(|f| lvl >= f.level);
        if !to_console && !to_file {
            return;
        }
        let text = self.scrub(text);
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let now = chrono::Utc::now();
        let json_line = |fields: Value| {
            let mut obj = json!({
                "ts": now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                "level": level,
                "event": event,
                "msg": strip_ansi(&text),
            });
            if let (Value::Object(o), Value::Object(f)) = (&mut obj, fields) {
                o.extend(f);
            }
            self.scrub(&obj.to_string())
        };
        if to_console {
            let mut err = std::io::stderr().lock();
            match self.format {
                LogFormat::Text => {
                    let _ = writeln!(err, "{}  {}", now.format("%H:%M:%S"), text);
                }
                LogFormat::Json => {
                    let _ = writeln!(err, "{}", json_line(fields.clone()));
                }
            }
        }
        if let Some(f) = self.file.as_ref().filter(|_| to_file) {
            let plain = strip_ansi(&text);
            let line = match f.format {
                FileFormat::Debug => format!(
                    "{} [{:<5}] [MainThread]: {plain}\n",
                    now.format("%H:%M:%S%.6f"),
                    lvl.name()
                ),
                FileFormat::Text => format!("{}  {plain}\n", now.format("%H:%M:%S")),
                FileFormat::Json => format!("{}\n", json_line(fields)),
            };
            f.write(&line);
        }
    }

    /// A debug line: shown with `--debug` or `--log-level debug`, and written to
    /// the log file (whose level is debug by default).
    pub(crate) fn debug(&self, event: &str, text: &str, fields: Value) {
        self.emit(event, "debug", text, fields);
    }

    /// The warnings `--warn-error` turned into errors, as the command's error.
    pub(crate) fn check_warnings(&self) -> crate::error::Result<()> {
        let promoted = self.promoted.lock().unwrap_or_else(|e| e.into_inner());
        match promoted.first() {
            None => Ok(()),
            Some(first) => Err(crate::error::Error::usage(format!(
                "{first} (a warning, made an error by --warn-error{}); fix it, or leave that warning out of --warn-error-options",
                if promoted.len() > 1 {
                    format!("; and {} more", promoted.len() - 1)
                } else {
                    String::new()
                }
            ))),
        }
    }

    /// Whether `--warn-error` makes a warning of dbt's `name` an error.
    pub(crate) fn warn_is_error(&self, name: &str) -> bool {
        self.warn_error.promotes(name)
    }

    fn paint(&self, text: &str, code: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    /// A plain informational line.
    pub(crate) fn info(&self, event: &str, text: &str) {
        self.emit(event, "info", text, json!({}));
    }

    /// A warning line; with `--warn-error` (for this kind of warning) it is
    /// recorded as an error instead ([`Output::check_warnings`]), and silenced
    /// kinds are not shown.
    pub(crate) fn warn(&self, event: &str, text: &str) {
        if !OPERATIONAL.contains(&event) {
            let name = dbt_event_name(event);
            if self.warn_error.silence.contains(&name) {
                return;
            }
            if self.warn_error.promotes(&name) {
                let t = self.paint(&format!("error: {text}"), "31");
                self.emit(event, "error", &t, json!({"warn_error": true}));
                self.promoted
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(text.to_string());
                return;
            }
        }
        let t = self.paint(text, "33");
        self.emit(event, "warn", &t, json!({}));
    }

    /// The one-line message of a failed command.
    pub(crate) fn error(&self, text: &str) {
        let t = self.paint(&format!("error: {text}"), "31");
        self.emit("error", "error", &t, json!({}));
    }

    /// `1 of 3 START sql table model analytics.x ....... [RUN]`.
    pub(crate) fn node_start(&self, index: usize, total: usize, what: &str, unique_id: &str) {
        let left = format!("{index} of {total} START {what}");
        let text = dotted(&left, "[RUN]");
        self.emit(
            "node_start",
            "info",
            &text,
            json!({"unique_id": unique_id, "index": index, "total": total}),
        );
    }

    /// `Batch 1 of 3 START batch 2024-03-01 of analytics.x ... [RUN]`: a batch of
    /// a microbatch model starts.
    pub(crate) fn batch_start(&self, index: usize, total: usize, what: &str, unique_id: &str) {
        let left = format!("Batch {index} of {total} START {what}");
        self.emit(
            "batch_start",
            "info",
            &dotted(&left, "[RUN]"),
            json!({"unique_id": unique_id, "index": index, "total": total, "batch": what}),
        );
    }

    /// `Batch 1 of 3 OK created batch 2024-03-01 of analytics.x ... [MERGE 2 in
    /// 0.12s]` (`ERROR creating`, `SKIP`): a batch ended.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn batch_end(
        &self,
        index: usize,
        total: usize,
        what: &str,
        unique_id: &str,
        result: Result<&crate::results::Built, Option<&crate::results::NodeFailure>>,
        seconds: f64,
    ) {
        let (word, code, tag, status) = match result {
            Ok(b) => (
                "OK created",
                "32",
                format!("[{} in {seconds:.2}s]", b.message),
                "success",
            ),
            Err(Some(f)) => (
                "ERROR creating",
                "31",
                format!("[{} in {seconds:.2}s]", f.console_tag()),
                "error",
            ),
            Err(None) => (
                "SKIP",
                "33",
                format!("[SKIPPED in {seconds:.2}s]"),
                "skipped",
            ),
        };
        let left = format!("Batch {index} of {total} {} {what}", self.paint(word, code));
        let text = dotted_painted(&left, &tag, if self.color { 9 } else { 0 });
        self.emit(
            "batch_end",
            if status == "error" { "error" } else { "info" },
            &text,
            json!({"unique_id": unique_id, "index": index, "total": total, "batch": what,
                   "status": status, "execution_time": seconds}),
        );
    }

    /// `1 of 3 OK created sql table model analytics.x ... [SELECT 42 in 0.12s]`;
    /// a test the catalog answered says what guaranteed it:
    /// `[PASS, guaranteed by events_pkey in 0.01s]`.
    pub(crate) fn node_end(
        &self,
        index: usize,
        total: usize,
        what: &str,
        unique_id: &str,
        outcome: &Outcome,
        seconds: f64,
    ) {
        let (status, detail, rows) = match outcome {
            Outcome::Built(b) => (Status::Success, b.message.clone(), b.rows),
            Outcome::Tested(t) => (t.status, t.failures.to_string(), Some(t.failures)),
            Outcome::Failed(f) => (Status::Error, f.message().to_string(), None),
            Outcome::Skipped(_) => (Status::Skipped, String::new(), None),
            Outcome::NoOp => (Status::NoOp, String::new(), None),
            Outcome::Batched(b) => (b.status(), b.message(), None),
        };
        let seed = what.starts_with("seed file ");
        let (word, code, tag) = match outcome {
            Outcome::Built(_) if seed => {
                ("OK loaded", "32", format!("[{detail} in {seconds:.2}s]"))
            }
            Outcome::Built(_) if what.starts_with("hook: ") => {
                ("OK", "32", format!("[OK in {seconds:.2}s]"))
            }
            Outcome::Built(_) => ("OK created", "32", format!("[{detail} in {seconds:.2}s]")),
            Outcome::Tested(_) => match status {
                Status::Pass => (
                    "PASS",
                    "32",
                    format!("[PASS{} in {seconds:.2}s]", by(outcome)),
                ),
                Status::Warn => (
                    "WARN",
                    "33",
                    format!("[WARN {detail}{} in {seconds:.2}s]", by(outcome)),
                ),
                _ => ("FAIL", "31", format!("[FAIL {detail} in {seconds:.2}s]")),
            },
            Outcome::Failed(f) => (
                if what.starts_with("test ") || what.starts_with("hook: ") {
                    "ERROR"
                } else if seed {
                    "ERROR loading"
                } else {
                    "ERROR creating"
                },
                "31",
                format!("[{} in {seconds:.2}s]", f.console_tag()),
            ),
            Outcome::Skipped(_) => ("SKIP", "33", "[SKIP]".to_string()),
            Outcome::NoOp => ("NO-OP", "33", format!("[NO-OP in {seconds:.2}s]")),
            Outcome::Batched(b) => match status {
                Status::Success => ("OK created", "32", format!("[{detail} in {seconds:.2}s]")),
                Status::PartialSuccess => (
                    "PARTIALLY created",
                    "33",
                    format!("[{detail} in {seconds:.2}s]"),
                ),
                _ => (
                    "ERROR creating",
                    "31",
                    format!(
                        "[{} in {seconds:.2}s]",
                        b.first_failure
                            .as_ref()
                            .map_or("ERROR", |f| f.console_tag())
                    ),
                ),
            },
        };
        let left = format!("{index} of {total} {} {what}", self.paint(word, code));
        // Colour codes add 9 invisible bytes (`\x1b[32m` and `\x1b[0m`).
        let text = dotted_painted(&left, &tag, if self.color { 9 } else { 0 });
        self.emit(
            "node_end",
            if status.is_failure() { "error" } else { "info" },
            &text,
            json!({"unique_id": unique_id, "index": index, "total": total, "status": status.as_str(),
                   "message": detail, "execution_time": seconds, "rows_affected": rows,
                   "guaranteed_by": match outcome {
                       Outcome::Tested(t) => t.guaranteed_by.as_deref(),
                       _ => None,
                   }}),
        );
    }

    /// End of a freshness check: `PASS`, `WARN`, `ERROR STALE` or `ERROR`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn freshness_end(
        &self,
        index: usize,
        total: usize,
        status: FreshnessStatus,
        what: &str,
        unique_id: &str,
        message: &str,
        seconds: f64,
    ) {
        let (word, code) = match status {
            FreshnessStatus::Pass => ("PASS", "32"),
            FreshnessStatus::Warn => ("WARN", "33"),
            FreshnessStatus::Error => ("ERROR STALE", "31"),
            FreshnessStatus::RuntimeError => ("ERROR", "31"),
        };
        let left = format!("{index} of {total} {} {what}", self.paint(word, code));
        let tag = format!("[{word} in {seconds:.2}s]");
        let text = dotted_painted(&left, &tag, if self.color { 9 } else { 0 });
        self.emit(
            "freshness_end",
            if code == "31" { "error" } else { "info" },
            &text,
            json!({"unique_id": unique_id, "index": index, "total": total, "status": status.as_str(), "message": message, "execution_time": seconds}),
        );
    }

    /// A blank line in text mode (nothing in JSON mode).
    pub(crate) fn blank(&self) {
        if self.format == LogFormat::Text {
            self.emit("", "info", "", json!({}));
        }
    }

    /// The closing summary: failures in detail, then the counts.
    pub(crate) fn summary(
        &self,
        counts: &Counts,
        failures: &[(String, String)],
        elapsed: f64,
        what_ran: &str,
    ) {
        self.blank();
        self.emit(
            "run_finished",
            "info",
            &format!("Finished running {what_ran} in {elapsed:.2}s."),
            json!({"elapsed": elapsed}),
        );
        self.blank();
        if failures.is_empty() && counts.warn == 0 {
            let t = self.paint("Completed successfully", "32");
            self.emit("run_completed", "info", &t, json!({}));
        } else {
            let t = format!(
                "Completed with {} error{} and {} warning{}:",
                counts.error,
                if counts.error == 1 { "" } else { "s" },
                counts.warn,
                if counts.warn == 1 { "" } else { "s" }
            );
            let t = self.paint(&t, if counts.error > 0 { "31" } else { "33" });
            self.emit(
                "run_completed",
                if counts.error > 0 { "error" } else { "warn" },
                &t,
                json!({}),
            );
            for (head, msg) in failures {
                self.blank();
                self.emit("failure", "error", head, json!({}));
                // A contract's table of mismatches spans several lines.
                let detail = format!("  {}", msg.replace('\n', "\n  "));
                self.emit("failure_detail", "error", &detail, json!({}));
            }
        }
        self.blank();
        self.emit(
            "summary",
            "info",
            &format!(
                "Done. PASS={} WARN={} ERROR={} SKIP={}{} TOTAL={}",
                counts.pass,
                counts.warn,
                counts.error,
                counts.skip,
                match counts.noop {
                    0 => String::new(),
                    n => format!(" NO-OP={n}"),
                },
                counts.total()
            ),
            json!({"pass": counts.pass, "warn": counts.warn, "error": counts.error, "skip": counts.skip, "no_op": counts.noop, "total": counts.total()}),
        );
    }
}

/// Result counts for the summary line.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Counts {
    pub(crate) pass: usize,
    pub(crate) warn: usize,
    pub(crate) error: usize,
    pub(crate) skip: usize,
    /// Exposures and saved queries in `build`.
    pub(crate) noop: usize,
}

impl Counts {
    pub(crate) fn total(&self) -> usize {
        self.pass + self.warn + self.error + self.skip + self.noop
    }
}

fn dotted(left: &str, right: &str) -> String {
    let used = left.chars().count() + right.chars().count() + 2;
    let dots = WIDTH.saturating_sub(used).max(3);
    format!("{left} {} {right}", ".".repeat(dots))
}

/// Like [`dotted`] for a left part holding `invisible` bytes of colour codes.
fn dotted_painted(left: &str, right: &str, invisible: usize) -> String {
    let used = left.chars().count().saturating_sub(invisible) + right.chars().count() + 2;
    let dots = WIDTH.saturating_sub(used).max(3);
    format!("{left} {} {right}", ".".repeat(dots))
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for d in chars.by_ref() {
                if d == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `""` for one, `"s"` for any other count.
pub(crate) fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

tokio::task_local! {
    /// The unique id of the node whose work is running: the SQL statements sent
    /// meanwhile are logged as `On <node>: …`, as dbt logs them.
    pub(crate) static NODE: String;
}

/// Where the SQL statements sent go, while a command wants debug lines.
static SQL_SINK: std::sync::RwLock<Option<std::sync::Arc<Output>>> = std::sync::RwLock::new(None);

/// Where templates' `log()`, `print()`-free messages and `exceptions.warn()` go.
static TEMPLATE_SINK: std::sync::RwLock<Option<std::sync::Arc<Output>>> =
    std::sync::RwLock::new(None);

/// A template's `log(msg, info=…)` (an info line, else a debug line: the log
/// file) or `exceptions.warn(msg)`, on the command's output.
pub(crate) fn template_message(level: Level, msg: &str) {
    let sink = TEMPLATE_SINK
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    if let Some(out) = sink {
        match level {
            Level::Debug => out.debug("jinja_log_debug", msg, json!({"msg": msg})),
            Level::Warn => out.warn("jinja_log_warn", msg),
            _ => out.info("jinja_log_info", msg),
        }
    }
}

/// From now on, every SQL statement sent to the server is a debug line of `out`
/// (when `out` shows or writes debug lines at all), and so are templates'
/// messages ([`template_message`]).
pub(crate) fn capture_sql(out: &std::sync::Arc<Output>) {
    *TEMPLATE_SINK.write().unwrap_or_else(|e| e.into_inner()) = Some(out.clone());
    if out.wants_debug() {
        *SQL_SINK.write().unwrap_or_else(|e| e.into_inner()) = Some(out.clone());
        log::set_max_level(log::max_level().max(log::LevelFilter::Debug));
    }
}

/// The process's logger: `RUST_LOG` (env_logger) as before, and the statements
/// tokio-postgres reports sending (`preparing query …`, `executing simple
/// query …`) forwarded to the command's [`Output`] as `On <node>: <sql>`.
struct Logger {
    inner: env_logger::Logger,
}

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        self.inner.enabled(metadata)
    }

    fn log(&self, record: &log::Record<'_>) {
        if record.level() == log::Level::Debug && record.target().starts_with("tokio_postgres") {
            let sink = SQL_SINK.read().unwrap_or_else(|e| e.into_inner()).clone();
            if let Some(out) = sink {
                let msg = record.args().to_string();
                let sql = msg
                    .strip_prefix("executing simple query: ")
                    .or_else(|| msg.strip_prefix("executing statement batch: "))
                    .or_else(|| {
                        msg.strip_prefix("preparing query ")
                            .and_then(|rest| rest.split_once(": ").map(|(_, q)| q))
                    });
                if let Some(sql) = sql {
                    let node = NODE
                        .try_with(|n| n.clone())
                        .unwrap_or_else(|_| "master".to_string());
                    out.debug(
                        "sql",
                        &format!("On {node}: {sql}"),
                        json!({"node": node, "sql": sql}),
                    );
                }
            }
        }
        if self.inner.matches(record) {
            self.inner.log(record);
        }
    }

    fn flush(&self) {
        self.inner.flush();
    }
}

/// Installs the process's logger (see [`Logger`]); `RUST_LOG` as env_logger reads it.
pub(crate) fn install_logger() {
    let inner = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("off"))
        .target(env_logger::Target::Stderr)
        .build();
    let max = inner.filter();
    if log::set_boxed_logger(Box::new(Logger { inner })).is_ok() {
        log::set_max_level(max);
    }
}

/// `, guaranteed by <index or NOT NULL>` for a test the catalog answered.
fn by(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Tested(TestOutcome {
            guaranteed_by: Some(by),
            ..
        }) => format!(", guaranteed by {by}"),
        _ => String::new(),
    }
}
