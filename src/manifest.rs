//! The parsed project in dbt's vocabulary: models, data tests and sources with
//! their configs, relations and dependencies, indexed by unique id. Built by
//! [`crate::render`], read by the graph, the execution and the artifacts. Plain
//! data, no I/O.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};

use crate::project::{Column, Constraint, Contract, Grants, Hooks, Index, SourceTable};

/// Quotes an identifier for PostgreSQL: `"name"`, with embedded quotes doubled.
pub(crate) fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// `"schema"."name"` as it appears in SQL.
pub(crate) fn relation_name(schema: &str, identifier: &str) -> String {
    format!("{}.{}", quote_ident(schema), quote_ident(identifier))
}

/// Which parts of a relation's name are written quoted: dbt's quote policy,
/// every part quoted on PostgreSQL unless `quoting:` in `dbt_project.yml` (or a
/// source's `quoting:`) says otherwise. An unquoted part is folded to lower case
/// by PostgreSQL, so the relation it names is the folded one ([`Quoting::stored`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Quoting {
    pub(crate) database: bool,
    pub(crate) schema: bool,
    pub(crate) identifier: bool,
}

impl Default for Quoting {
    fn default() -> Quoting {
        Quoting {
            database: true,
            schema: true,
            identifier: true,
        }
    }
}

impl Quoting {
    /// `database.schema.identifier` with each part quoted or not, as dbt-postgres
    /// renders a relation.
    pub(crate) fn render(&self, database: &str, schema: &str, identifier: &str) -> String {
        let part = |name: &str, quoted: bool| {
            if quoted {
                quote_ident(name)
            } else {
                name.to_string()
            }
        };
        format!(
            "{}.{}.{}",
            part(database, self.database),
            part(schema, self.schema),
            part(identifier, self.identifier)
        )
    }

    /// The name PostgreSQL stores for `name` written `quoted` or not: itself, or
    /// folded to lower case (ASCII letters only, as PostgreSQL folds in UTF-8).
    pub(crate) fn stored(name: &str, quoted: bool) -> String {
        if quoted {
            name.to_string()
        } else {
            name.to_ascii_lowercase()
        }
    }

    /// This policy with the parts `over` sets (`{identifier: false}`) replaced.
    pub(crate) fn merged(mut self, over: &serde_json::Map<String, Value>) -> Quoting {
        for (k, v) in over {
            let Some(b) = v.as_bool() else { continue };
            match k.as_str() {
                "database" => self.database = b,
                "schema" => self.schema = b,
                "identifier" => self.identifier = b,
                _ => {}
            }
        }
        self
    }
}

/// A `ref()` as written: maybe a package, a name and, for a versioned model,
/// maybe a version (none: the latest). Resolved, it names its package.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Ref {
    pub(crate) package: Option<String>,
    pub(crate) name: String,
    pub(crate) version: Option<String>,
}

impl Ref {
    /// `{"name", "package", "version"}` as `manifest.json` records a ref.
    pub(crate) fn to_json(&self) -> Value {
        serde_json::json!({"name": self.name, "package": self.package, "version": version_json(self.version.as_deref())})
    }
}

/// A version as dbt records it: a number when it is one.
pub(crate) fn version_json(v: Option<&str>) -> Value {
    match v {
        None => Value::Null,
        Some(v) => match (v.parse::<i64>(), v.parse::<f64>()) {
            (Ok(i), _) => Value::from(i),
            (_, Ok(f)) => serde_json::Number::from_f64(f)
                .map(Value::Number)
                .unwrap_or_else(|| Value::from(v)),
            _ => Value::from(v),
        },
    }
}

/// How a model is persisted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Materialization {
    Table,
    View,
    /// A table built once, then changed by increments (see
    /// `postgres::incremental`).
    Incremental,
    /// A materialized view (see `postgres::matview`).
    MaterializedView,
    /// A seed: a CSV file loaded into a table.
    Seed,
    /// Never built: its SQL is inlined as a CTE (`__dbt__cte__<alias>`) into every
    /// node that refers to it.
    Ephemeral,
    /// A snapshot: a table of the versions of its query's rows (see
    /// `postgres::snapshot`).
    Snapshot,
}

impl Materialization {
    /// The name dbt gives it (`config.materialized`).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Materialization::Table => "table",
            Materialization::View => "view",
            Materialization::Incremental => "incremental",
            Materialization::MaterializedView => "materialized_view",
            Materialization::Seed => "seed",
            Materialization::Ephemeral => "ephemeral",
            Materialization::Snapshot => "snapshot",
        }
    }

    /// The kind of relation it builds, as DDL spells it (`alter table …`); an
    /// ephemeral model builds none and never reaches the adapter.
    pub(crate) fn relation_kind(self) -> &'static str {
        match self {
            Materialization::Table
            | Materialization::Incremental
            | Materialization::Seed
            | Materialization::Snapshot => "table",
            Materialization::View | Materialization::Ephemeral => "view",
            Materialization::MaterializedView => "materialized view",
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
    /// dbt's checksum of its file (`{"name": "sha256", "checksum": …}`).
    pub(crate) checksum: Value,
    /// Filled by the compile phase.
    pub(crate) compiled_code: Option<String>,
    /// Why the compile phase could not render it: the node fails at run time.
    pub(crate) compile_error: Option<String>,
    /// The effective config: `dbt_project.yml` tree, then YAML `config:`, then the
    /// file's own `config()` call.
    pub(crate) config: Map<String, Value>,
    /// The keys set by the tree, the YAML and the `config()` call, their Jinja
    /// kept as written (dbt's `unrendered_config`, compared by `state:`).
    pub(crate) unrendered_config: Map<String, Value>,
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
    pub(crate) refs: Vec<Ref>,
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
    /// A versioned model's version (`1` of `model.p.members.v1`), as written.
    pub(crate) version: Option<String>,
    /// The latest version of a versioned model.
    pub(crate) latest_version: Option<String>,
    /// How its relation's name is written (the project's `quoting:`).
    pub(crate) quoting: Quoting,
    /// `pre-hook`/`post-hook` as configured (Jinja).
    pub(crate) hooks: Hooks,
    /// The hooks rendered with the node's context (by the compile phase).
    pub(crate) rendered_hooks: Hooks,
    /// Renders its hooks that are rendered when they run (`Hook::at_run`).
    pub(crate) hook_render: Option<crate::postgres::HookRender>,
    /// `indexes` (tables and seeds; dbt ignores them on views).
    pub(crate) indexes: Vec<Index>,
    /// `grants`; `None` without one (or an empty one): grants are carried over.
    pub(crate) grants: Option<Grants>,
}

/// An `on-run-start` or `on-run-end` hook of `dbt_project.yml` (dbt's
/// `operation` node).
#[derive(Debug, Clone)]
pub(crate) struct RunHook {
    /// `operation.<project>.<project>-on-run-start-<index>`.
    pub(crate) unique_id: String,
    /// `<project>.on-run-start.<index>`, as the console names it.
    pub(crate) name: String,
    /// As written (Jinja, rendered when it runs).
    pub(crate) sql: String,
    /// `on-run-end` (else `on-run-start`).
    pub(crate) end: bool,
    /// The project whose `dbt_project.yml` declares it, and its position there.
    pub(crate) package: String,
    pub(crate) index: usize,
    /// dbt's checksum of that `dbt_project.yml` (every hook of it has it).
    pub(crate) checksum: Value,
    /// The configs the project's `models:` tree gives `<project>.hooks.<name>`,
    /// as read and as written (dbt records them on its operation node).
    pub(crate) config: Map<String, Value>,
    pub(crate) unrendered_config: Map<String, Value>,
    /// `macro.<package>.<name>` of the macros its text calls.
    pub(crate) depends_on_macros: Vec<String>,
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

    /// Whether its table is created `unlogged` (config `unlogged: true`; tables
    /// and incremental models).
    pub(crate) fn unlogged(&self) -> bool {
        self.config
            .get("unlogged")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false)
    }

    /// Where its compiled SQL goes under `target/compiled/<project>/`: its file,
    /// and for a YAML snapshot `<file>.yml/<name>.sql`, as dbt writes them.
    pub(crate) fn compiled_file(&self) -> String {
        if self.resource_type == "snapshot" && !self.original_file_path.ends_with(".sql") {
            format!("{}/{}.sql", self.original_file_path, self.name)
        } else {
            self.original_file_path.clone()
        }
    }

    /// `"database"."schema"."alias"` (parts the project does not quote bare).
    pub(crate) fn relation_name(&self) -> String {
        self.quoting
            .render(&self.database, &self.schema, &self.alias)
    }

    /// The schema as PostgreSQL stores it (folded when the project does not quote
    /// schemas).
    pub(crate) fn stored_schema(&self) -> String {
        Quoting::stored(&self.schema, self.quoting.schema)
    }

    /// The relation's name as PostgreSQL stores it (folded when the project does
    /// not quote identifiers).
    pub(crate) fn stored_alias(&self) -> String {
        Quoting::stored(&self.alias, self.quoting.identifier)
    }

    /// The name generic tests on it are named after: `<name>_v<version>` for a
    /// versioned model.
    pub(crate) fn test_target_name(&self) -> String {
        match &self.version {
            Some(v) => format!("{}_v{v}", self.name),
            None => self.name.clone(),
        }
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
    /// `"database"."schema"."identifier"` (parts its quoting leaves bare).
    pub(crate) fn relation_name(&self) -> String {
        self.table
            .quoting
            .render(&self.database, &self.table.schema, &self.table.identifier)
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
    /// A unit test (`unit_tests:`, resource type `unit_test`): the tested model
    /// run on given rows, compared with expected rows (see [`UnitSpec`]).
    Unit,
}

/// What a unit test runs: the tested model's SQL (the test's compiled code) on
/// its given inputs, each a CTE, compared with the expected rows.
#[derive(Debug, Clone)]
pub(crate) struct UnitSpec {
    /// The tested model's unique id.
    pub(crate) model: String,
    /// The inputs the model's SQL reads, in the order of their first use.
    pub(crate) inputs: Vec<UnitInput>,
    pub(crate) expect: crate::project::Rows,
    /// The YAML file's line of the unit test, for messages.
    pub(crate) line: usize,
    pub(crate) description: String,
    pub(crate) overrides: crate::project::Overrides,
}

/// One `given` input of a unit test, as the tested model reads it.
#[derive(Debug, Clone)]
pub(crate) struct UnitInput {
    /// The CTE that stands for it (`__dbt__cte__<alias>`).
    pub(crate) cte: String,
    /// `input:` as written.
    pub(crate) written: String,
    /// The relation it stands for, as PostgreSQL stores its names (its columns
    /// type the rows): (schema, identifier).
    pub(crate) relation: (String, String),
    pub(crate) rows: crate::project::Rows,
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
    /// The package of a generic test written `package.test_name`.
    pub(crate) test_namespace: Option<String>,
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
    /// A unit test's inputs and expected rows.
    pub(crate) unit: Option<Box<UnitSpec>>,
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
    pub(crate) refs: Vec<Ref>,
    pub(crate) sources: Vec<(String, String)>,
    /// Metrics it reads (`metric('x')`).
    pub(crate) metrics: Vec<String>,
    /// Unique ids of the models, sources and metrics it reads.
    pub(crate) depends_on_nodes: Vec<String>,
    /// `enabled`, `tags` and `meta`, as dbt's exposure config.
    pub(crate) config: Map<String, Value>,
}

/// A metric, semantic model or saved query (dbt's semantic layer), declared under
/// `metrics:`, `semantic_models:` or `saved_queries:` in YAML. None is built;
/// they are nodes of the graph so that `ls`, selection and `build` (a saved query
/// is a no-op there) see them as dbt does.
#[derive(Debug, Clone)]
pub(crate) struct SemanticNode {
    /// `metric.<project>.<name>`, `semantic_model.…`, `saved_query.…`.
    pub(crate) unique_id: String,
    pub(crate) kind: NodeKind,
    pub(crate) name: String,
    pub(crate) label: Option<String>,
    pub(crate) description: String,
    /// The YAML file that declares it.
    pub(crate) original_file_path: String,
    pub(crate) fqn: Vec<String>,
    pub(crate) tags: Vec<String>,
    /// dbt's config of the kind, every default included.
    pub(crate) config: Map<String, Value>,
    /// Unique ids of the nodes it reads: a semantic model's model, a metric's
    /// semantic models or metrics, a saved query's metrics.
    pub(crate) depends_on_nodes: Vec<String>,
    /// The YAML entry as written, for `manifest.json`.
    pub(crate) spec: Value,
}

/// What a unique id names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NodeKind {
    Model,
    Seed,
    Snapshot,
    Test,
    /// A unit test (kept among the tests, [`TestKind::Unit`]).
    UnitTest,
    Source,
    /// An analysis: compiled by `compile`, never run.
    Analysis,
    Exposure,
    Metric,
    SemanticModel,
    SavedQuery,
}

impl NodeKind {
    /// dbt's `resource_type`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            NodeKind::Model => "model",
            NodeKind::Seed => "seed",
            NodeKind::Snapshot => "snapshot",
            NodeKind::Test => "test",
            NodeKind::UnitTest => "unit_test",
            NodeKind::Source => "source",
            NodeKind::Analysis => "analysis",
            NodeKind::Exposure => "exposure",
            NodeKind::Metric => "metric",
            NodeKind::SemanticModel => "semantic_model",
            NodeKind::SavedQuery => "saved_query",
        }
    }
}

/// Where a unique id's node is in the manifest's lists.
#[derive(Debug, Clone, Copy)]
enum Slot {
    Model(usize),
    Test(usize),
    Source(usize),
    Exposure(usize),
    Semantic(usize),
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
    /// Each project macro's text and the project macros it calls, by name.
    pub(crate) macro_sources: BTreeMap<String, (String, Vec<String>)>,
    /// Names of models disabled by config.
    pub(crate) disabled: Vec<String>,
    /// Deprecations and custom keys found while loading and parsing.
    pub(crate) warnings: Vec<String>,
    /// Exposures: what reads the project downstream (never run).
    pub(crate) exposures: Vec<Exposure>,
    /// Metrics, semantic models and saved queries (never built).
    pub(crate) semantic: Vec<SemanticNode>,
    /// `groups:` of the property files: name → owner (`{name, email}`).
    pub(crate) groups: Vec<(String, Value)>,
    /// `on-run-start` then `on-run-end` hooks, in order.
    pub(crate) run_hooks: Vec<RunHook>,
    /// Nodes whose render reaches the database (`run_query`, `statement`,
    /// `adapter.get_columns_in_relation` …): rendered when they run, on their
    /// connection, once their parents are built (dbt's execution phase).
    pub(crate) render_at_run: std::collections::BTreeSet<String>,
    /// Each installed package's directory with a trailing slash
    /// (`dbt_packages/<dir>/`, the prefix of its files' paths) and its name.
    pub(crate) package_dirs: Vec<(String, String)>,
    /// Unique id → position in `nodes`, `tests` or `sources`; see [`Manifest::index`].
    slots: HashMap<String, Slot>,
}

impl Manifest {
    /// The package a file of the project belongs to and its path within that
    /// package (dbt's `original_file_path`): the root project's files are
    /// the project's as they are.
    pub(crate) fn package_path<'a>(&'a self, file: &'a str) -> (&'a str, &'a str) {
        for (dir, name) in &self.package_dirs {
            if let Some(rest) = file.strip_prefix(dir.as_str()) {
                return (name, rest);
            }
        }
        (&self.project_name, file)
    }

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
        for (i, x) in self.exposures.iter().enumerate() {
            slots.insert(x.unique_id.clone(), Slot::Exposure(i));
        }
        for (i, x) in self.semantic.iter().enumerate() {
            slots.insert(x.unique_id.clone(), Slot::Semantic(i));
        }
        self.slots = slots;
    }

    pub(crate) fn kind(&self, unique_id: &str) -> Option<NodeKind> {
        Some(match self.slots.get(unique_id)? {
            Slot::Model(i) => match self.nodes[*i].resource_type {
                "seed" => NodeKind::Seed,
                "snapshot" => NodeKind::Snapshot,
                "analysis" => NodeKind::Analysis,
                _ => NodeKind::Model,
            },
            Slot::Test(i) if self.tests[*i].kind == TestKind::Unit => NodeKind::UnitTest,
            Slot::Test(_) => NodeKind::Test,
            Slot::Source(_) => NodeKind::Source,
            Slot::Exposure(_) => NodeKind::Exposure,
            Slot::Semantic(i) => self.semantic[*i].kind,
        })
    }

    /// The unique id of the model or seed `r` names: a versioned model's given
    /// version, or its latest when none is given.
    pub(crate) fn resolve_ref(&self, r: &Ref) -> Option<String> {
        let package = r.package.as_ref().unwrap_or(&self.project_name);
        self.nodes
            .iter()
            .filter(|n| {
                matches!(n.resource_type, "model" | "seed" | "snapshot")
                    && n.name == r.name
                    && &n.package_name == package
            })
            .find(|n| match (&r.version, &n.version) {
                (Some(want), Some(v)) => want == v,
                (Some(_), None) => false,
                (None, None) => true,
                (None, Some(v)) => n.latest_version.as_ref() == Some(v),
            })
            .map(|n| n.unique_id.clone())
    }

    pub(crate) fn exposure(&self, unique_id: &str) -> Option<&Exposure> {
        match self.slots.get(unique_id)? {
            Slot::Exposure(i) => self.exposures.get(*i),
            _ => None,
        }
    }

    pub(crate) fn semantic(&self, unique_id: &str) -> Option<&SemanticNode> {
        match self.slots.get(unique_id)? {
            Slot::Semantic(i) => self.semantic.get(*i),
            _ => None,
        }
    }

    /// The `depends_on.nodes` of any node of the graph: a model, seed, analysis,
    /// test, exposure or semantic-layer node (sources depend on nothing).
    pub(crate) fn depends_on(&self, unique_id: &str) -> &[String] {
        match self.slots.get(unique_id) {
            Some(Slot::Model(i)) => &self.nodes[*i].depends_on_nodes,
            Some(Slot::Test(i)) => &self.tests[*i].depends_on_nodes,
            Some(Slot::Exposure(i)) => &self.exposures[*i].depends_on_nodes,
            Some(Slot::Semantic(i)) => &self.semantic[*i].depends_on_nodes,
            Some(Slot::Source(_)) | None => &[],
        }
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
