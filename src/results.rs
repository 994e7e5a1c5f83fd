//! What happened to each node of a job: its [`Outcome`] (a build, a test's
//! verdict, a [`NodeFailure`] or a [`SkipReason`]) and [`Status`], and how each
//! source freshness check ended. The console line, the entry in
//! `run_results.json` and the exit code are all derived from these. Plain data,
//! shared by the execution, the adapter, the console and the artifacts.

/// How a node ended, as `run_results.json` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Success,
    Error,
    Skipped,
    Pass,
    Warn,
    Fail,
    /// Nothing to do: an exposure or saved query in `build`.
    NoOp,
    /// A microbatch model some of whose batches failed.
    PartialSuccess,
}

impl Status {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Status::Success => "success",
            Status::Error => "error",
            Status::Skipped => "skipped",
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::NoOp => "no-op",
            Status::PartialSuccess => "partial success",
        }
    }

    /// Whether the node's descendants must be skipped (as dbt, also after a
    /// partial success).
    pub(crate) fn is_failure(self) -> bool {
        matches!(self, Status::Error | Status::Fail | Status::PartialSuccess)
    }
}

/// Why a node errored. Every variant's message is one line that names what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NodeFailure {
    /// The server refused the node's SQL; `sqlstate` is the server's error code.
    Sql {
        sqlstate: Option<String>,
        message: String,
    },
    /// The swap found the relation in use for longer than its lock budget; the
    /// message names the sessions holding it.
    LockTimeout { message: String },
    /// Another invocation is building the relation and `wait_for_lock` is false.
    LockBusy { message: String },
    /// Something that depends on the relation (a materialized view, a view the new
    /// version no longer satisfies, a foreign key) cannot follow it.
    Dependents { message: String },
    /// No connection could be opened for the node.
    Connection { message: String },
    /// SIGINT or SIGTERM stopped the node; its relation was left as it was.
    Interrupted { message: String },
    /// The node's configuration cannot be run (a test condition that is not a
    /// comparison, …).
    Config { message: String },
    /// Rendering the node's SQL failed (an undefined macro, `raise_compiler_error`):
    /// as in dbt, that node fails at run time and the others still run.
    Compile { message: String },
    /// A seed's CSV file cannot be loaded as it is (a malformed row, a column
    /// the existing table does not have, …).
    Seed { message: String },
    /// The model's columns do not match its enforced contract: dbt's message and
    /// table of mismatches (several lines), then what to do.
    Contract { message: String },
}

impl NodeFailure {
    /// The message without its label.
    pub(crate) fn message(&self) -> &str {
        match self {
            NodeFailure::Sql { message, .. }
            | NodeFailure::LockTimeout { message }
            | NodeFailure::LockBusy { message }
            | NodeFailure::Dependents { message }
            | NodeFailure::Connection { message }
            | NodeFailure::Interrupted { message }
            | NodeFailure::Config { message }
            | NodeFailure::Compile { message } => message,
            NodeFailure::Seed { message } => message,
            NodeFailure::Contract { message } => message,
        }
    }

    /// What kind of failure, as the summary and `run_results.json` label it.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            NodeFailure::Sql { .. } => "Database error",
            NodeFailure::LockTimeout { .. } => "Lock timeout",
            NodeFailure::LockBusy { .. } => "Relation busy",
            NodeFailure::Dependents { .. } => "Dependent objects",
            NodeFailure::Connection { .. } => "Connection error",
            NodeFailure::Interrupted { .. } => "Interrupted",
            NodeFailure::Config { .. } => "Configuration error",
            NodeFailure::Compile { .. } => "Compilation Error",
            NodeFailure::Seed { .. } => "Seed error",
            NodeFailure::Contract { .. } => "Contract error",
        }
    }

    /// The word in the console line's brackets: `[ERROR in 0.12s]`.
    pub(crate) fn console_tag(&self) -> &'static str {
        match self {
            NodeFailure::LockTimeout { .. } => "LOCK TIMEOUT",
            NodeFailure::Interrupted { .. } => "CANCELLED",
            _ => "ERROR",
        }
    }

    /// `Label: message`, as recorded in `run_results.json` and the summary.
    pub(crate) fn describe(&self) -> String {
        format!("{}: {}", self.label(), self.message())
    }
}

/// Why a node did not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SkipReason {
    /// An ancestor failed (its unique id).
    Upstream(String),
    /// The run stopped early (fail-fast or an interrupt).
    Stopped,
}

impl SkipReason {
    pub(crate) fn message(&self) -> String {
        match self {
            SkipReason::Upstream(parent) => format!("skipped: upstream {parent} failed"),
            SkipReason::Stopped => "skipped: the run stopped early".to_string(),
        }
    }
}

/// How one node ended.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    /// A model was built.
    Built(Built),
    /// A data test ran and its failing rows were judged.
    Tested(TestOutcome),
    Failed(NodeFailure),
    Skipped(SkipReason),
    /// Nothing was run: an exposure or saved query in `build`, as dbt reports it.
    NoOp,
    /// A microbatch model ran its batches.
    Batched(Batched),
}

/// What the batches of a microbatch model did: the windows `[start, end)` that
/// were applied and those that failed (or were skipped), each sorted by start.
#[derive(Debug, Clone)]
pub(crate) struct Batched {
    pub(crate) successful: Vec<crate::project::Batch>,
    pub(crate) failed: Vec<crate::project::Batch>,
    /// The first batch failure, what the summary shows.
    pub(crate) first_failure: Option<NodeFailure>,
}

impl Batched {
    pub(crate) fn status(&self) -> Status {
        match (self.successful.is_empty(), self.failed.is_empty()) {
            (_, true) => Status::Success,
            (true, false) => Status::Error,
            (false, false) => Status::PartialSuccess,
        }
    }

    /// dbt's message: `SUCCESS`, `ERROR`, `PARTIAL SUCCESS (2/3)`.
    pub(crate) fn message(&self) -> String {
        match self.status() {
            Status::Success => "SUCCESS".to_string(),
            Status::PartialSuccess => format!(
                "PARTIAL SUCCESS ({}/{})",
                self.successful.len(),
                self.successful.len() + self.failed.len()
            ),
            _ => "ERROR".to_string(),
        }
    }

    /// What went wrong, for the summary: the failed windows and the first error.
    pub(crate) fn failure_detail(&self) -> String {
        let windows: Vec<String> = self
            .failed
            .iter()
            .map(|(s, e)| {
                format!(
                    "[{}, {})",
                    crate::project::python_str(*s),
                    crate::project::python_str(*e)
                )
            })
            .collect();
        let mut text = format!(
            "{} of {} batches failed or were skipped: {}; fix the cause and run `retry` to re-run only them",
            self.failed.len(),
            self.successful.len() + self.failed.len(),
            windows.join(", ")
        );
        if let Some(f) = &self.first_failure {
            text.push_str(&format!(" (first failure: {})", f.describe()));
        }
        text
    }
}

/// One executed (or skipped) node, as `run_results.json` records it.
#[derive(Debug, Clone)]
pub(crate) struct NodeResult {
    pub(crate) unique_id: String,
    pub(crate) outcome: Outcome,
    pub(crate) started_at: Option<chrono::DateTime<chrono::Utc>>,
    pub(crate) completed_at: Option<chrono::DateTime<chrono::Utc>>,
    pub(crate) execution_time: f64,
    pub(crate) thread_id: String,
    pub(crate) compiled_code: Option<String>,
    pub(crate) relation_name: Option<String>,
}

impl NodeResult {
    /// A result with nothing executed: no timing or SQL.
    pub(crate) fn new(unique_id: &str, outcome: Outcome) -> NodeResult {
        NodeResult {
            unique_id: unique_id.to_string(),
            outcome,
            started_at: None,
            completed_at: None,
            execution_time: 0.0,
            thread_id: String::new(),
            compiled_code: None,
            relation_name: None,
        }
    }

    pub(crate) fn status(&self) -> Status {
        match &self.outcome {
            Outcome::Built(_) => Status::Success,
            Outcome::Tested(t) => t.status,
            Outcome::Failed(_) => Status::Error,
            Outcome::Skipped(_) => Status::Skipped,
            Outcome::NoOp => Status::NoOp,
            Outcome::Batched(b) => b.status(),
        }
    }

    /// The message of `run_results.json`: the command tag of a build, dbt's
    /// wording of a test result, a labelled failure, or why it was skipped.
    pub(crate) fn message(&self) -> String {
        match &self.outcome {
            Outcome::Built(b) => b.message.clone(),
            Outcome::Tested(t) => match &t.stored_in {
                Some(table) => format!("{} (rows in {table})", t.message),
                None => t.message.clone(),
            },
            Outcome::Failed(f) => f.describe(),
            Outcome::Skipped(s) => s.message(),
            Outcome::NoOp => "NO-OP".to_string(),
            Outcome::Batched(b) => b.message(),
        }
    }

    pub(crate) fn rows_affected(&self) -> Option<u64> {
        match &self.outcome {
            Outcome::Built(b) => b.rows,
            _ => None,
        }
    }

    pub(crate) fn failures(&self) -> Option<u64> {
        match &self.outcome {
            Outcome::Tested(t) => Some(t.failures),
            Outcome::Batched(_) => Some(0),
            _ => None,
        }
    }

    /// The adapter's command code (`SELECT`, `CREATE VIEW`) of a build.
    pub(crate) fn code(&self) -> &str {
        match &self.outcome {
            Outcome::Built(b) => &b.code,
            _ => "",
        }
    }
}

/// What a successful materialization reports.
#[derive(Debug, Clone)]
pub(crate) struct Built {
    /// Command tag as dbt shows it: `SELECT 42`, `CREATE VIEW`.
    pub(crate) message: String,
    pub(crate) code: String,
    pub(crate) rows: Option<u64>,
}

/// What a test run found.
#[derive(Debug, Clone)]
pub(crate) struct TestOutcome {
    /// Pass, Warn or Fail.
    pub(crate) status: Status,
    pub(crate) failures: u64,
    /// dbt's wording: `Got 3 results, configured to fail if != 0`.
    pub(crate) message: String,
    /// Where the failing rows were stored, if they were.
    pub(crate) stored_in: Option<String>,
    /// What answered the test without reading the table: the unique index's
    /// name, or `NOT NULL` (see `datatest::guaranteed`).
    pub(crate) guaranteed_by: Option<String>,
}

/// How a freshness check ended, as `sources.json` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FreshnessStatus {
    Pass,
    Warn,
    /// Stale past `error_after`.
    Error,
    /// The check itself failed (no such table, a bad policy).
    RuntimeError,
}

impl FreshnessStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            FreshnessStatus::Pass => "pass",
            FreshnessStatus::Warn => "warn",
            FreshnessStatus::Error => "error",
            FreshnessStatus::RuntimeError => "runtime error",
        }
    }

    /// Whether it stops a `build --check-freshness` and makes the exit code 1.
    pub(crate) fn is_error(self) -> bool {
        matches!(self, FreshnessStatus::Error | FreshnessStatus::RuntimeError)
    }
}
