//! What the site documents, read from artifacts in dbt's shapes: the nodes of
//! `manifest.json` (`nodes`, `sources`, `exposures`; seeds, snapshots and
//! analyses come in `nodes` with their `resource_type`), the column types and
//! statistics of `catalog.json`, the latest status of `run_results.json` and
//! `sources.json`. Each node becomes a [`DocNode`] of a [`Kind`]; what differs
//! between kinds (label, colour, whether it has a relation, a page, a place in
//! the overview, which facts it shows) is decided by the kind, so a new
//! resource type shows up once the manifest has it.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};

/// The resource types of dbt, as the site groups and draws them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Kind {
    Source,
    Seed,
    Snapshot,
    Model,
    Analysis,
    Test,
    Exposure,
    /// Any other resource type (metrics, semantic models, …): listed, drawn grey.
    Other,
}

impl Kind {
    pub(crate) fn of(resource_type: &str) -> Kind {
        match resource_type {
            "source" => Kind::Source,
            "seed" => Kind::Seed,
            "snapshot" => Kind::Snapshot,
            "model" => Kind::Model,
            "analysis" => Kind::Analysis,
            "test" => Kind::Test,
            "exposure" => Kind::Exposure,
            _ => Kind::Other,
        }
    }

    /// Every kind, in the order the site lists them.
    pub(crate) const ALL: [Kind; 8] = [
        Kind::Source,
        Kind::Seed,
        Kind::Snapshot,
        Kind::Model,
        Kind::Analysis,
        Kind::Exposure,
        Kind::Test,
        Kind::Other,
    ];

    /// The word for it.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Kind::Source => "source",
            Kind::Seed => "seed",
            Kind::Snapshot => "snapshot",
            Kind::Model => "model",
            Kind::Analysis => "analysis",
            Kind::Test => "test",
            Kind::Exposure => "exposure",
            Kind::Other => "other",
        }
    }

    pub(crate) fn plural(self) -> &'static str {
        match self {
            Kind::Analysis => "analyses",
            Kind::Source => "sources",
            Kind::Seed => "seeds",
            Kind::Snapshot => "snapshots",
            Kind::Model => "models",
            Kind::Test => "data tests",
            Kind::Exposure => "exposures",
            Kind::Other => "other nodes",
        }
    }

    /// Whether it is a relation in the database (and so in the catalog).
    pub(crate) fn has_relation(self) -> bool {
        matches!(
            self,
            Kind::Source | Kind::Seed | Kind::Snapshot | Kind::Model
        )
    }

    /// Whether it gets a page of its own; data tests are documented on the pages
    /// of the nodes they test.
    pub(crate) fn has_page(self) -> bool {
        self != Kind::Test
    }

    /// Whether the overview graph draws it (tests are drawn on node pages).
    pub(crate) fn in_overview(self) -> bool {
        self != Kind::Test
    }
}

/// A column as documented (YAML) and as found in the database (catalog).
#[derive(Debug, Clone, Default)]
pub(crate) struct DocColumn {
    pub(crate) name: String,
    pub(crate) description: String,
    /// The catalog's type, else the YAML `data_type`.
    pub(crate) data_type: Option<String>,
    /// In the database but not documented.
    pub(crate) undocumented: bool,
    /// Documented but not in the database (when a catalog was read).
    pub(crate) missing: bool,
    /// Indexes into [`Docs::nodes`] of the tests on this column.
    pub(crate) tests: Vec<usize>,
}

/// The latest outcome of a node, from `run_results.json` or `sources.json`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Status {
    /// `success`, `error`, `skipped`, `pass`, `warn`, `fail`, `runtime error`.
    pub(crate) status: String,
    pub(crate) completed_at: Option<String>,
    pub(crate) execution_time: Option<f64>,
    pub(crate) rows: Option<u64>,
    pub(crate) failures: Option<u64>,
    pub(crate) message: Option<String>,
    /// Freshness: the newest row's load time and its age in seconds.
    pub(crate) max_loaded_at: Option<String>,
    pub(crate) age_seconds: Option<f64>,
}

/// One documented node of any kind.
#[derive(Debug, Clone)]
pub(crate) struct DocNode {
    pub(crate) id: String,
    pub(crate) kind: Kind,
    pub(crate) name: String,
    /// What the graph and lists show: `raw_stripe.charges` for a source, an
    /// exposure's label, else the name.
    pub(crate) label: String,
    pub(crate) description: String,
    pub(crate) path: String,
    /// `"schema"."identifier"` when it is a relation.
    pub(crate) relation: Option<String>,
    pub(crate) columns: Vec<DocColumn>,
    pub(crate) raw_code: Option<String>,
    pub(crate) compiled_code: Option<String>,
    pub(crate) config: Value,
    pub(crate) tags: Vec<String>,
    /// Kind-specific facts, in order: (label, value).
    pub(crate) facts: Vec<(String, String)>,
    /// Indexes of the nodes it depends on, and of those that depend on it.
    pub(crate) parents: Vec<usize>,
    pub(crate) children: Vec<usize>,
    /// Tests: the node it tests and the column, when declared on one.
    pub(crate) attached: Option<usize>,
    pub(crate) column: Option<String>,
    /// Tests of this node (indexes), for its page.
    pub(crate) tests: Vec<usize>,
    pub(crate) status: Option<Status>,
    /// Catalog: relation type, owner, comment and statistics (label, value).
    pub(crate) stats: Vec<(String, String)>,
    /// The file name of its page (`model.p.x.html`), when it has one.
    pub(crate) page: Option<String>,
}

/// The whole project as the site documents it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Docs {
    pub(crate) project: String,
    pub(crate) nodes: Vec<DocNode>,
    pub(crate) index: HashMap<String, usize>,
    /// When the manifest, catalog, run results and freshness results were made.
    pub(crate) generated_at: Option<String>,
    pub(crate) catalog_at: Option<String>,
    pub(crate) run_at: Option<String>,
    pub(crate) freshness_at: Option<String>,
}

fn s(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or("").to_string()
}

fn opt(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .filter(|x| !x.is_empty())
        .map(str::to_string)
}

/// A safe file name for a node's page.
pub(crate) fn page_name(id: &str) -> String {
    let mut out: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    out.push_str(".html");
    out
}

fn json_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Facts worth a line on a node's page, by kind.
fn facts(kind: Kind, n: &Value) -> Vec<(String, String)> {
    let mut f: Vec<(String, String)> = Vec::new();
    let cfg = n.get("config").cloned().unwrap_or(Value::Null);
    let mut push = |label: &str, v: Option<String>| {
        if let Some(v) = v.filter(|v| !v.is_empty() && v != "null") {
            f.push((label.to_string(), v));
        }
    };
    match kind {
        Kind::Model | Kind::Seed | Kind::Snapshot | Kind::Analysis | Kind::Other => {
            push("materialized", opt(&cfg, "materialized"));
            push("database", opt(n, "database"));
            push("schema", opt(n, "schema"));
            push("alias", opt(n, "alias"));
            push("unique key", cfg.get("unique_key").map(json_text));
            push("strategy", opt(&cfg, "strategy"));
        }
        Kind::Source => {
            push("source", opt(n, "source_name"));
            push("source description", opt(n, "source_description"));
            push("loader", opt(n, "loader"));
            push("database", opt(n, "database"));
            push("schema", opt(n, "schema"));
            push("identifier", opt(n, "identifier"));
            push("loaded at field", opt(n, "loaded_at_field"));
            if let Some(fr) = n.get("freshness").filter(|v| !v.is_null()) {
                let part = |k: &str| {
                    fr.get(k)
                        .filter(|t| t.get("count").is_some_and(|c| !c.is_null()))
                        .map(|t| format!("{} {}s", json_text(&t["count"]), s(t, "period")))
                };
                let mut p = Vec::new();
                if let Some(w) = part("warn_after") {
                    p.push(format!("warn after {w}"));
                }
                if let Some(e) = part("error_after") {
                    p.push(format!("error after {e}"));
                }
                push("freshness", Some(p.join(", ")));
            }
        }
        Kind::Exposure => {
            push("type", opt(n, "type"));
            push("maturity", opt(n, "maturity"));
            let owner = n.get("owner").cloned().unwrap_or(Value::Null);
            let who = match (opt(&owner, "name"), opt(&owner, "email")) {
                (Some(a), Some(b)) => Some(format!("{a} <{b}>")),
                (a, b) => a.or(b),
            };
            push("owner", who);
            push("url", opt(n, "url"));
        }
        Kind::Test => {
            push("severity", opt(&cfg, "severity"));
            if let Some(m) = n.get("test_metadata").filter(|m| !m.is_null()) {
                push("test", opt(m, "name"));
                if let Some(Value::Object(kw)) = m.get("kwargs") {
                    for (k, v) in kw {
                        if k != "column_name" && k != "model" {
                            push(k, Some(json_text(v)));
                        }
                    }
                }
            }
            push("where", cfg.get("where").map(json_text));
        }
    }
    f
}

/// The catalog entry of a node: `(columns by lower-case name, stats lines, generated_at)`.
type CatalogEntry<'a> = Option<&'a Value>;

fn catalog_entry<'a>(catalog: Option<&'a Value>, id: &str, kind: Kind) -> CatalogEntry<'a> {
    let section = if kind == Kind::Source {
        "sources"
    } else {
        "nodes"
    };
    catalog?.get(section)?.get(id)
}

/// Builds the docs of a manifest (`manifest.json`'s value) with the optional
/// catalog, run results and freshness results.
pub(crate) fn build(
    manifest: &Value,
    catalog: Option<&Value>,
    run_results: Option<&Value>,
    sources: Option<&Value>,
) -> Docs {
    let mut docs = Docs {
        project: manifest
            .pointer("/metadata/project_name")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_default(),
        generated_at: manifest
            .pointer("/metadata/generated_at")
            .and_then(Value::as_str)
            .map(str::to_string),
        catalog_at: catalog
            .and_then(|c| c.pointer("/metadata/generated_at"))
            .and_then(Value::as_str)
            .map(str::to_string),
        run_at: run_results
            .and_then(|c| c.pointer("/metadata/generated_at"))
            .and_then(Value::as_str)
            .map(str::to_string),
        freshness_at: sources
            .and_then(|c| c.pointer("/metadata/generated_at"))
            .and_then(Value::as_str)
            .map(str::to_string),
        ..Default::default()
    };
    let empty = Map::new();
    let sections = ["sources", "nodes", "exposures"];
    let mut all: Vec<&Value> = Vec::new();
    for sec in sections {
        for (_, v) in manifest
            .get(sec)
            .and_then(Value::as_object)
            .unwrap_or(&empty)
        {
            all.push(v);
        }
    }
    for n in &all {
        if s(n, "resource_type") == "operation" {
            continue; // run hooks: not part of the lineage, as on dbt's site
        }
        let id = s(n, "unique_id");
        let kind = Kind::of(&s(n, "resource_type"));
        let name = s(n, "name");
        if docs.project.is_empty() {
            docs.project = s(n, "package_name");
        }
        let label = match kind {
            Kind::Source => format!("{}.{}", s(n, "source_name"), name),
            Kind::Exposure => opt(n, "label").unwrap_or_else(|| name.clone()),
            _ => name.clone(),
        };
        let cat = if kind.has_relation() {
            catalog_entry(catalog, &id, kind)
        } else {
            None
        };
        let mut columns: Vec<DocColumn> = Vec::new();
        if let Some(Value::Object(cols)) = n.get("columns") {
            for (cname, c) in cols {
                columns.push(DocColumn {
                    name: cname.clone(),
                    description: s(c, "description"),
                    data_type: opt(c, "data_type"),
                    missing: cat.is_some(),
                    ..Default::default()
                });
            }
        }
        let mut stats = Vec::new();
        if let Some(cat) = cat {
            let mut found: Vec<(i64, String, String, String)> = Vec::new();
            if let Some(Value::Object(cols)) = cat.get("columns") {
                for (cname, c) in cols {
                    found.push((
                        c.get("index").and_then(Value::as_i64).unwrap_or(0),
                        cname.clone(),
                        s(c, "type"),
                        s(c, "comment"),
                    ));
                }
            }
            found.sort();
            // The database's order; documented columns it lacks stay, marked.
            let mut ordered: Vec<DocColumn> = Vec::new();
            for (_, cname, ty, comment) in found {
                let pos = columns
                    .iter()
                    .position(|c| c.name.eq_ignore_ascii_case(&cname));
                let mut col = match pos {
                    Some(p) => columns.remove(p),
                    None => DocColumn {
                        name: cname.clone(),
                        description: comment.clone(),
                        undocumented: true,
                        ..Default::default()
                    },
                };
                col.missing = false;
                col.data_type = Some(ty);
                ordered.push(col);
            }
            ordered.append(&mut columns);
            columns = ordered;
            let meta = cat.get("metadata").cloned().unwrap_or(Value::Null);
            for (label, key) in [
                ("relation type", "type"),
                ("owner", "owner"),
                ("comment", "comment"),
            ] {
                if let Some(v) = opt(&meta, key) {
                    stats.push((label.to_string(), v));
                }
            }
            if let Some(Value::Object(st)) = cat.get("stats") {
                for (_, stat) in st {
                    if stat.get("include").and_then(Value::as_bool) == Some(true) {
                        stats.push((
                            s(stat, "label"),
                            json_text(stat.get("value").unwrap_or(&Value::Null)),
                        ));
                    }
                }
            }
        }
        let relation = opt(n, "relation_name");
        let node = DocNode {
            page: kind.has_page().then(|| page_name(&id)),
            kind,
            label,
            description: s(n, "description"),
            path: s(n, "original_file_path"),
            relation,
            columns,
            raw_code: opt(n, "raw_code"),
            compiled_code: opt(n, "compiled_code"),
            config: n.get("config").cloned().unwrap_or(Value::Null),
            tags: crate::semantic::string_list(n.get("tags")),
            facts: facts(kind, n),
            parents: Vec::new(),
            children: Vec::new(),
            attached: None,
            column: opt(n, "column_name"),
            tests: Vec::new(),
            status: None,
            stats,
            id: id.clone(),
            name,
        };
        docs.index.insert(id, docs.nodes.len());
        docs.nodes.push(node);
    }
    // Edges, attachments and tests.
    for (i, n) in all.iter().enumerate() {
        let deps = crate::semantic::string_list(n.pointer("/depends_on/nodes"));
        for d in deps {
            if let Some(&p) = docs.index.get(&d) {
                if !docs.nodes[i].parents.contains(&p) {
                    docs.nodes[i].parents.push(p);
                    docs.nodes[p].children.push(i);
                }
            }
        }
        if docs.nodes[i].kind == Kind::Test {
            let attached = opt(n, "attached_node")
                .and_then(|a| docs.index.get(&a).copied())
                .or_else(|| docs.nodes[i].parents.first().copied());
            docs.nodes[i].attached = attached;
            // Listed on every node it reads (a relationships test on both).
            for p in docs.nodes[i].parents.clone() {
                docs.nodes[p].tests.push(i);
            }
            if let (Some(a), Some(col)) = (attached, docs.nodes[i].column.clone()) {
                if let Some(c) = docs.nodes[a]
                    .columns
                    .iter_mut()
                    .find(|c| c.name.eq_ignore_ascii_case(&col))
                {
                    c.tests.push(i);
                }
            }
        }
    }
    // Latest status: a build or test result, or a freshness check.
    let mut status: BTreeMap<String, Status> = BTreeMap::new();
    for (artifact, freshness) in [(run_results, false), (sources, true)] {
        for r in artifact
            .and_then(|r| r.get("results"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let mut st = Status {
                status: s(r, "status"),
                completed_at: r
                    .get("timing")
                    .and_then(Value::as_array)
                    .and_then(|t| t.last())
                    .and_then(|t| opt(t, "completed_at")),
                execution_time: r.get("execution_time").and_then(Value::as_f64),
                ..Default::default()
            };
            if freshness {
                st.message = opt(r, "error");
                st.max_loaded_at = opt(r, "max_loaded_at");
                st.age_seconds = r.get("max_loaded_at_time_ago_in_s").and_then(Value::as_f64);
            } else {
                st.message = opt(r, "message");
                st.rows = r
                    .pointer("/adapter_response/rows_affected")
                    .and_then(Value::as_u64);
                st.failures = r.get("failures").and_then(Value::as_u64);
            }
            status.insert(s(r, "unique_id"), st);
        }
    }
    for n in docs.nodes.iter_mut() {
        n.status = status.remove(&n.id);
    }
    docs
}

impl Docs {
    /// Indexes of `start`'s ancestors (through parents) or descendants, nearest
    /// first, with their distance; `kinds` filters which nodes are walked.
    pub(crate) fn reach(
        &self,
        start: usize,
        up: bool,
        walk: impl Fn(&DocNode) -> bool,
    ) -> Vec<(usize, usize)> {
        let mut seen = vec![false; self.nodes.len()];
        seen[start] = true;
        let mut out = Vec::new();
        let mut queue = std::collections::VecDeque::from([(start, 0usize)]);
        while let Some((cur, d)) = queue.pop_front() {
            let next = if up {
                &self.nodes[cur].parents
            } else {
                &self.nodes[cur].children
            };
            for &nx in next {
                if !seen[nx] && walk(&self.nodes[nx]) {
                    seen[nx] = true;
                    out.push((nx, d + 1));
                    queue.push_back((nx, d + 1));
                }
            }
        }
        out
    }

    /// How many nodes of each kind.
    pub(crate) fn counts(&self) -> Vec<(Kind, usize)> {
        Kind::ALL
            .iter()
            .map(|k| (*k, self.nodes.iter().filter(|n| n.kind == *k).count()))
            .filter(|(_, c)| *c > 0)
            .collect()
    }
}
