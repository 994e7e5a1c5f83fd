//! The parsed project in dbt's vocabulary: nodes (models; tests later), sources,
//! their configs, relations and dependencies. Built by [`crate::render`], read by
//! the graph, the scheduler and the artifacts. Plain data, no I/O.

use serde_json::{Map, Value};

use crate::project::{Column, SourceTable};

/// Quotes an identifier for PostgreSQL: `"name"`, with embedded quotes doubled.
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// `"schema"."name"` as it appears in SQL.
pub fn relation_name(schema: &str, identifier: &str) -> String {
    format!("{}.{}", quote_ident(schema), quote_ident(identifier))
}

/// How a model is persisted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Materialization {
    Table,
    View,
}

impl Materialization {
    pub fn as_str(self) -> &'static str {
        match self {
            Materialization::Table => "table",
            Materialization::View => "view",
        }
    }
}

/// A model of the project (dbt's `ModelNode`).
#[derive(Debug, Clone)]
pub struct Node {
    /// `model.<project>.<name>`.
    pub unique_id: String,
    pub name: String,
    pub resource_type: &'static str,
    pub package_name: String,
    /// Path within its model path (`marts/a.sql`).
    pub path: String,
    /// Path within the project (`models/marts/a.sql`).
    pub original_file_path: String,
    /// `[project, dirs…, name]`.
    pub fqn: Vec<String>,
    pub raw_code: String,
    /// Filled by the compile phase.
    pub compiled_code: Option<String>,
    /// The effective config: `dbt_project.yml` tree, then YAML `config:`, then the
    /// file's own `config()` call.
    pub config: Map<String, Value>,
    pub materialized: Materialization,
    /// Resolved schema (after `generate_schema_name`).
    pub schema: String,
    /// Resolved relation identifier (after `generate_alias_name`).
    pub alias: String,
    pub database: String,
    /// Unique ids of the models and sources this node reads.
    pub depends_on_nodes: Vec<String>,
    /// Unique ids of the project macros this node called.
    pub depends_on_macros: Vec<String>,
    pub refs: Vec<String>,
    pub sources: Vec<(String, String)>,
    pub description: String,
    pub columns: Vec<Column>,
    /// YAML file that documents the model, as dbt's `patch_path`.
    pub patch_path: Option<String>,
    pub tags: Vec<String>,
}

impl Node {
    /// `"schema"."alias"`.
    pub fn relation_name(&self) -> String {
        relation_name(&self.schema, &self.alias)
    }
}

/// A source table (dbt's `SourceDefinition`).
#[derive(Debug, Clone)]
pub struct SourceNode {
    /// `source.<project>.<source>.<table>`.
    pub unique_id: String,
    pub fqn: Vec<String>,
    pub table: SourceTable,
}

impl SourceNode {
    pub fn relation_name(&self) -> String {
        relation_name(&self.table.schema, &self.table.identifier)
    }
}

/// Whether a data test comes from YAML (generic) or a `.sql` file (singular).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestKind {
    Generic,
    Singular,
}

/// A data test (dbt's `GenericTestNode`/`SingularTestNode`): a query returning
/// the failing rows.
#[derive(Debug, Clone)]
pub struct TestNode {
    /// `test.<project>.<name>.<hash>`.
    pub unique_id: String,
    /// `not_null_mart_x_col`, or the singular test's file stem.
    pub name: String,
    pub kind: TestKind,
    /// The YAML file that declares it, or the singular test's `.sql` file.
    pub original_file_path: String,
    pub fqn: Vec<String>,
    /// Generic test name (`unique`, `accepted_values`, a custom one) and its
    /// arguments (`column_name`, `values`, `to`, …).
    pub test_name: Option<String>,
    pub kwargs: serde_json::Map<String, Value>,
    pub column_name: Option<String>,
    /// The model or source the test is declared on (generic tests).
    pub attached_node: Option<String>,
    /// severity, where, error_if, warn_if, store_failures, tags.
    pub config: Map<String, Value>,
    pub tags: Vec<String>,
    pub depends_on_nodes: Vec<String>,
    pub depends_on_macros: Vec<String>,
    pub raw_code: String,
    pub compiled_code: Option<String>,
}

impl TestNode {
    /// `error` (default) or `warn`.
    pub fn severity(&self) -> &str {
        match self.config.get("severity").and_then(Value::as_str) {
            Some(s) if s.eq_ignore_ascii_case("warn") => "warn",
            _ => "error",
        }
    }

    /// The comparison that makes the failure count an error (`!= 0`).
    pub fn error_if(&self) -> String {
        self.config
            .get("error_if")
            .and_then(Value::as_str)
            .unwrap_or("!= 0")
            .to_string()
    }

    /// The comparison that makes the failure count a warning (`!= 0`).
    pub fn warn_if(&self) -> String {
        self.config
            .get("warn_if")
            .and_then(Value::as_str)
            .unwrap_or("!= 0")
            .to_string()
    }
}

/// Everything the project defines, after parsing.
#[derive(Debug, Clone, Default)]
pub struct Manifest {
    pub project_name: String,
    /// Enabled models, in file order.
    pub nodes: Vec<Node>,
    pub sources: Vec<SourceNode>,
    /// Data tests of enabled models and of sources.
    pub tests: Vec<TestNode>,
    /// `(name, original_file_path)` of each project macro.
    pub macros: Vec<(String, String)>,
    /// Names of models disabled by config.
    pub disabled: Vec<String>,
}

impl Manifest {
    pub fn node(&self, unique_id: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.unique_id == unique_id)
    }

    pub fn test(&self, unique_id: &str) -> Option<&TestNode> {
        self.tests.iter().find(|t| t.unique_id == unique_id)
    }

    pub fn source(&self, unique_id: &str) -> Option<&SourceNode> {
        self.sources.iter().find(|s| s.unique_id == unique_id)
    }
}
