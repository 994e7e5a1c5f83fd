//! The console: what the user sees on stderr while a command runs.
//!
//! Text mode prints dbt-like lines (`12:00:01  1 of 3 START sql table model …`),
//! coloured only when stderr is a terminal and `NO_COLOR` is unset. JSON mode
//! (`--log-format json`) prints one JSON object per event, for machines. stdout is
//! never written here: it is reserved for a command's result (`ls`, `--about`).

use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use serde_json::{json, Value};

use crate::results::{FreshnessStatus, Outcome, Status, TestOutcome};
use crate::settings::LogFormat;

/// The event sink of one invocation.
pub(crate) struct Output {
    format: LogFormat,
    color: bool,
    lock: Mutex<()>,
}

const WIDTH: usize = 80;

impl Output {
    pub(crate) fn new(format: LogFormat) -> Output {
        let color = format == LogFormat::Text
            && std::io::stderr().is_terminal()
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Output {
            format,
            color,
            lock: Mutex::new(()),
        }
    }

    fn emit(&self, event: &str, level: &str, text: &str, fields: Value) {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let now = chrono::Utc::now();
        let mut err = std::io::stderr().lock();
        match self.format {
            LogFormat::Text => {
                let _ = writeln!(err, "{}  {}", now.format("%H:%M:%S"), text);
            }
            LogFormat::Json => {
                let mut obj = json!({
                    "ts": now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                    "level": level,
                    "event": event,
                    "msg": strip_ansi(text),
                });
                if let (Value::Object(o), Value::Object(f)) = (&mut obj, fields) {
                    o.extend(f);
                }
                let _ = writeln!(err, "{obj}");
            }
        }
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

    /// A warning line.
    pub(crate) fn warn(&self, event: &str, text: &str) {
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
        };
        let seed = what.starts_with("seed file ");
        let (word, code, tag) = match outcome {
            Outcome::Built(_) if seed => {
                ("OK loaded", "32", format!("[{detail} in {seconds:.2}s]"))
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
                if what.starts_with("test ") {
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
                "Done. PASS={} WARN={} ERROR={} SKIP={} TOTAL={}",
                counts.pass,
                counts.warn,
                counts.error,
                counts.skip,
                counts.total()
            ),
            json!({"pass": counts.pass, "warn": counts.warn, "error": counts.error, "skip": counts.skip, "total": counts.total()}),
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
}

impl Counts {
    pub(crate) fn total(&self) -> usize {
        self.pass + self.warn + self.error + self.skip
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
