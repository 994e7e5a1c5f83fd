//! The parsed project in dbt's vocabulary: models, data tests and sources with
//! their configs, relations and dependencies, indexed by unique id. Built by
//! [`crate::render`], read by the graph, the execution and the artifacts. Plain
//! data, no I/O.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::project::{Column, Constraint, Contract, SourceTable};

/// Quotes an identifier for PostgreSQL: `"name"`, with embedded quotes doubled.
pub(crate) fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// `"schema"."name"` as it appears in SQL.
pub(crate) fn relation_name(schema: &str, identifier: &str) -> String {
    format!("{}.{}", quote_ident(schema), quote_ident(identifier))
}

/// `"database"."schema"."name"`: how dbt-postgres renders a relation in compiled
/// SQL and records it (`relation_name`).
pub(crate) fn full_relation_name(database: &str, schema: &str, identifier: &str) -> String {
    format!(
        "{}.{}.{}",
        quote_ident(database),
        quote_ident(schema),
        quote_ident(identifier)
    )
}

/// How a model is persisted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Materialization {
    Table,
    View,
    /// A table built once, then changed by increments (see
    /// `postgres::incremental`).
    Incremental,
    /// A seed: a CSV file loaded into a table.
    Seed,
}

impl Materialization {
    /// The name dbt gives it (`config.materialized`).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Materialization::Table => "table",
            Materialization::View => "view",
            Materialization::Incremental => "incremental",
            Materialization::Seed => "seed",
        }
    }

    /// The kind of relation it builds, as DDL spells it (`alter table …`).
    pub(crate) fn relation_kind(self) -> &'static str {
        match self {
            Materialization::Table | Materialization::Incremental | Materialization::Seed => {
                "table"
            }
            Materialization::View => "view",
        }
    }
}

/// A model of the project (dbt's `ModelNode`), or a seed (`SeedNode`:
/// `resource_type` "seed", materialized [`Materialization::Seed`], no SQL).
#[derive(Debug, Clone)]
pub(crate) struct Node {
    /// `model.<project>.<name>`.
    pub(crate) unique_id: String,
    pub(crate) name: String,
    pub(crate) resource_type: &'static str,
    pub(crate) package_name: String,
    /// Path within its model path (`marts/a.sql`).
    pub(crate) path: String,
    /// Path within the project (`models/marts/a.sql`).
    pub(crate) original_file_path: String,
    /// `[project, dirs…, name]`.
    pub(crate) fqn: Vec<String>,
    pub(crate) raw_code: String,
    /// Filled by the compile phase.
    pub(crate) compiled_code: Option<String>,
    /// Why the compile phase could not render it: the node fails at run time.
    pub(crate) compile_error: Option<String>,
    /// The effective config: `dbt_project.yml` tree, then YAML `config:`, then the
    /// file's own `config()` call.
    pub(crate) config: Map<String, Value>,
    pub(crate) materialized: Materialization,
    /// Resolved schema (after `generate_schema_name`).
    pub(crate) schema: String,
    /// Resolved relation identifier (after `generate_alias_name`).
    pub(crate) alias: String,
    pub(crate) database: String,
    /// Unique ids of the models and sources this node reads.
    pub(crate) depends_on_nodes: Vec<String>,
    /// Unique ids of the project macros this node called.
    pub(crate) depends_on_macros: Vec<String>,
    pub(crate) refs: Vec<String>,
    pub(crate) sources: Vec<(String, String)>,
    pub(crate) description: String,
    pub(crate) columns: Vec<Column>,
    /// YAML file that documents the model, as dbt's `patch_path`.
    pub(crate) patch_path: Option<String>,
    /// That file (relative to the project) and the line of the model's entry.
    pub(crate) properties_at: Option<(String, usize)>,
    pub(crate) tags: Vec<String>,
    /// The `contract` config.
    pub(crate) contract: Contract,
    /// Model-level constraints (column-level ones are in `columns`).
    pub(crate) constraints: Vec<Constraint>,
    /// An incremental model compiled with `is_incremental()` true: its table
    /// exists and no full refresh applies, so it is built as an increment.
    pub(crate) incremental: bool,
}

impl Node {
    /// Whether the node is rebuilt from scratch: its own `full_refresh` config
    /// wins over the `--full-refresh` flag, as in dbt.
    pub(crate) fn full_refresh(&self, flag: bool) -> bool {
        self.config
            .get("full_refresh")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(flag)
    }

    /// `"database"."schema"."alias"`.
    pub(crate) fn relation_name(&self) -> String {
        full_relation_name(&self.database, &self.schema, &self.alias)
    }

    /// The columns of its properties as dbt keys them, by name: a name given
    /// twice keeps its first place and its last entry.
    pub(crate) fn declared_columns(&self) -> Vec<&Column> {
        let mut out: Vec<&Column> = Vec::new();
        for c in &self.columns {
            match out.iter_mut().find(|o| o.name == c.name) {
                Some(slot) => *slot = c,
                None => out.push(c),
            }
        }
        out
    }
}

/// A source table (dbt's `SourceDefinition`).
#[derive(Debug, Clone)]
pub(crate) struct SourceNode {
    /// `source.<project>.<source>.<table>`.
    pub(crate) unique_id: String,
    pub(crate) fqn: Vec<String>,
    /// The source's `database:`, else the target's.
    pub(crate) database: String,
    pub(crate) table: SourceTable,
}

impl SourceNode {
    /// `"database"."schema"."identifier"`.
    pub(crate) fn relation_name(&self) -> String {
        full_relation_name(&self.database, &self.table.schema, &self.table.identifier)
    }

    /// dbt's tags of a source table: those of the source and of the table, given
    /// as `tags:` or in `config:`, sorted.
    pub(crate) fn tags(&self) -> Vec<String> {
        let mut tags = self.table.tags.clone();
        match self.table.config.get("tags") {
            Some(Value::String(t)) => tags.push(t.clone()),
            Some(Value::Array(items)) => {
                tags.extend(items.iter().filter_map(Value::as_str).map(str::to_string))
            }
            _ => {}
        }
        tags.sort();
        tags.dedup();
        tags
    }
}

/// Whether a data test comes from YAML (generic) or a `.sql` file (singular).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TestKind {
    Generic,
    Singular,
}

/// A data test (dbt's `GenericTestNode`/`SingularTestNode`): a query returning
/// the failing rows.
#[derive(Debug, Clone)]
pub(crate) struct TestNode {
    /// `test.<project>.<name>.<hash>`.
    pub(crate) unique_id: String,
    /// `not_null_mart_x_col`, or the singular test's file stem: dbt's full name.
    pub(crate) name: String,
    /// The relation name of its stored failures: the `alias` config, else
    /// [`TestNode::file_name`].
    pub(crate) alias: String,
    /// The compiled file's stem: the name, or dbt's short form of a generic test
    /// name of 64 characters or more (see `render::data_tests`).
    pub(crate) file_name: String,
    pub(crate) kind: TestKind,
    /// The YAML file that declares it, or the singular test's `.sql` file.
    pub(crate) original_file_path: String,
    pub(crate) fqn: Vec<String>,
    /// Generic test name (`unique`, `accepted_values`, a custom one) and its
    /// arguments (`column_name`, `values`, `to`, …).
    pub(crate) test_name: Option<String>,
    pub(crate) kwargs: serde_json::Map<String, Value>,
    pub(crate) column_name: Option<String>,
    /// The model or source the test is declared on (generic tests).
    pub(crate) attached_node: Option<String>,
    /// severity, where, error_if, warn_if, store_failures, tags.
    pub(crate) config: Map<String, Value>,
    pub(crate) tags: Vec<String>,
    pub(crate) depends_on_nodes: Vec<String>,
    pub(crate) depends_on_macros: Vec<String>,
    pub(crate) raw_code: String,
    pub(crate) compiled_code: Option<String>,
    /// Why the compile phase could not render it: the test fails at run time.
    pub(crate) compile_error: Option<String>,
}

impl TestNode {
    /// `error` (default) or `warn`.
    pub(crate) fn severity(&self) -> &str {
        match self.config.get("severity").and_then(Value::as_str) {
            Some(s) if s.eq_ignore_ascii_case("warn") => "warn",
            _ => "error",
        }
    }

    /// The comparison that makes the failure count an error (`!= 0`).
    pub(crate) fn error_if(&self) -> String {
        self.config
            .get("error_if")
            .and_then(Value::as_str)
            .unwrap_or("!= 0")
            .to_string()
    }

    /// The comparison that makes the failure count a warning (`!= 0`).
    pub(crate) fn warn_if(&self) -> String {
        self.config
            .get("warn_if")
            .and_then(Value::as_str)
            .unwrap_or("!= 0")
            .to_string()
    }
}

/// An exposure (dbt's `Exposure`): something downstream that reads the project's
/// nodes, a dashboard or a report, declared under `exposures:` in YAML. It never
/// runs; it is documented and drawn in the lineage.
#[derive(Debug, Clone)]
pub(crate) struct Exposure {
    /// `exposure.<project>.<name>`.
    pub(crate) unique_id: String,
    pub(crate) name: String,
    pub(crate) label: Option<String>,
    /// `dashboard`, `notebook`, `analysis`, `ml` or `application`.
    pub(crate) kind: String,
    pub(crate) description: String,
    pub(crate) owner_name: Option<String>,
    pub(crate) owner_email: Option<String>,
    pub(crate) maturity: Option<String>,
    pub(crate) url: Option<String>,
    pub(crate) tags: Vec<String>,
    pub(crate) meta: Value,
    /// The YAML file that declares it.
    pub(crate) original_file_path: String,
    pub(crate) fqn: Vec<String>,
    pub(crate) refs: Vec<String>,
    pub(crate) sources: Vec<(String, String)>,
    /// Unique ids of the models and sources it reads.
    pub(crate) depends_on_nodes: Vec<String>,
}

/// What a unique id names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NodeKind {
    Model,
    Seed,
    Test,
    Source,
}

/// Where a unique id's node is in the manifest's lists.
#[derive(Debug, Clone, Copy)]
enum Slot {
    Model(usize),
    Test(usize),
    Source(usize),
}

/// Everything the project defines, after parsing.
#[derive(Debug, Clone, Default)]
pub(crate) struct Manifest {
    pub(crate) project_name: String,
    /// The target's database and schema.
    pub(crate) database: String,
    pub(crate) target_schema: String,
    /// Enabled models, in file order, then enabled seeds.
    pub(crate) nodes: Vec<Node>,
    pub(crate) sources: Vec<SourceNode>,
    /// Data tests of enabled models and of sources.
    pub(crate) tests: Vec<TestNode>,
    /// `(name, original_file_path)` of each project macro.
    pub(crate) macros: Vec<(String, String)>,
    /// Names of models disabled by config.
    pub(crate) disabled: Vec<String>,
    /// Deprecations and custom keys found while loading and parsing.
    pub(crate) warnings: Vec<String>,
    /// Exposures: what reads the project downstream (never run).
    pub(crate) exposures: Vec<Exposure>,
    /// Unique id → position in `nodes`, `tests` or `sources`; see [`Manifest::index`].
    slots: HashMap<String, Slot>,
}

impl Manifest {
    /// An empty manifest of project `name`.
    pub(crate) fn new(name: &str) -> Manifest {
        Manifest {
            project_name: name.to_string(),
            ..Default::default()
        }
    }

    /// (Re)builds the index by unique id; call once the lists are complete.
    pub(crate) fn index(&mut self) {
        let mut slots = HashMap::new();
        for (i, n) in self.nodes.iter().enumerate() {
            slots.insert(n.unique_id.clone(), Slot::Model(i));
        }
        for (i, t) in self.tests.iter().enumerate() {
            slots.insert(t.unique_id.clone(), Slot::Test(i));
        }
        for (i, s) in self.sources.iter().enumerate() {
            slots.insert(s.unique_id.clone(), Slot::Source(i));
        }
        self.slots = slots;
    }

    pub(crate) fn kind(&self, unique_id: &str) -> Option<NodeKind> {
        Some(match self.slots.get(unique_id)? {
            Slot::Model(i) if self.nodes[*i].resource_type == "seed" => NodeKind::Seed,
            Slot::Model(_) => NodeKind::Model,
            Slot::Test(_) => NodeKind::Test,
            Slot::Source(_) => NodeKind::Source,
        })
    }

    pub(crate) fn node(&self, unique_id: &str) -> Option<&Node> {
        match self.slots.get(unique_id)? {
            Slot::Model(i) => self.nodes.get(*i),
            _ => None,
        }
    }

    pub(crate) fn node_mut(&mut self, unique_id: &str) -> Option<&mut Node> {
        match self.slots.get(unique_id)? {
            Slot::Model(i) => self.nodes.get_mut(*i),
            _ => None,
        }
    }

    pub(crate) fn test(&self, unique_id: &str) -> Option<&TestNode> {
        match self.slots.get(unique_id)? {
            Slot::Test(i) => self.tests.get(*i),
            _ => None,
        }
    }

    pub(crate) fn test_mut(&mut self, unique_id: &str) -> Option<&mut TestNode> {
        match self.slots.get(unique_id)? {
            Slot::Test(i) => self.tests.get_mut(*i),
            _ => None,
        }
    }

    pub(crate) fn source(&self, unique_id: &str) -> Option<&SourceNode> {
        match self.slots.get(unique_id)? {
            Slot::Source(i) => self.sources.get(*i),
            _ => None,
        }
    }
}
