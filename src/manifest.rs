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

/// Everything the project defines, after parsing.
#[derive(Debug, Clone, Default)]
pub struct Manifest {
    pub project_name: String,
    /// Enabled models, in file order.
    pub nodes: Vec<Node>,
    pub sources: Vec<SourceNode>,
    /// `(name, original_file_path)` of each project macro.
    pub macros: Vec<(String, String)>,
    /// Names of models disabled by config.
    pub disabled: Vec<String>,
}

impl Manifest {
    pub fn node(&self, unique_id: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.unique_id == unique_id)
    }
}
