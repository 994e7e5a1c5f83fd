//! Running one node of a job: a model built and swapped in (a snapshot's next
//! versions applied), or a data test run and
//! judged, on a connection of the pool; and reporting a node that is skipped. Each
//! ends as a [`NodeResult`] whose [`Outcome`] says what happened.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use tokio_postgres::Client;

use crate::console::Output;
use crate::datatest;
use crate::manifest::{Manifest, Node, TestNode};
use crate::postgres::{self, Pool, SeedLoad, SwapOptions};
use crate::project::Hooks;
use crate::render::{with_database, EphemeralCache, RenderDb, Renderer};
use crate::results::{Built, NodeFailure, NodeResult, Outcome, SkipReason, Status};
use crate::seed::{self, SeedFile};
use crate::settings::Settings;
use crate::unittest;

/// What every node of one execution shares.
pub(super) struct NodeRunner {
    pub(super) manifest: Arc<Manifest>,
    pub(super) settings: Arc<Settings>,
    pub(super) pool: Arc<Pool>,
    pub(super) out: Arc<Output>,
    pub(super) swap: SwapOptions,
    /// Unique to the invocation: temporary and backup relation names derive from it.
    pub(super) suffix: String,
    /// The audit schema when `--store-failures` (or the setting) asks for it.
    pub(super) audit: Option<String>,
    /// How many nodes the job runs, for `3 of 8`.
    pub(super) total: usize,
    /// `--full-refresh`: seeds are recreated rather than reloaded.
    pub(super) full_refresh: bool,
    /// Where the compiled SQL of the project's nodes is, as messages name it
    /// (`target/compiled/<project>`).
    pub(super) compiled_dir: std::path::PathBuf,
    /// Renders the nodes whose SQL reaches the database, when they run.
    pub(super) renderer: Arc<Renderer>,
    /// Where their compiled SQL is written.
    pub(super) target_dir: PathBuf,
    /// The batches of microbatch models.
    pub(super) microbatch: super::MicrobatchRun,
    /// The data tests that share a scan of their relation.
    pub(super) shared_scans: datatest::SharedScans,
}

/// What rendering a node when it runs gave: its SQL and (a model's) hooks.
type RenderedNow = Result<(String, Option<Hooks>), String>;

impl NodeRunner {
    /// Runs node `id`, the `index`-th to start.
    pub(super) async fn run(self: Arc<Self>, id: String, index: usize) -> NodeResult {
        let started_at = chrono::Utc::now();
        let clock = Instant::now();
        let (mut result, what) = if let Some(t) = self.manifest.test(&id) {
            let what = test_what(&self.manifest, t);
            self.out.node_start(index, self.total, &what, &id);
            let result = if t.unit.is_some() {
                self.unit_test(t).await
            } else {
                self.test(t).await
            };
            (result, what)
        } else if let Some(node) = self
            .manifest
            .node(&id)
            .filter(|n| n.resource_type == "seed")
        {
            let what = format!("seed file {}.{}", node.schema, node.alias);
            self.out.node_start(index, self.total, &what, &id);
            (self.seed(node).await, what)
        } else if let Some(node) = self.manifest.node(&id) {
            let what = match node.resource_type {
                "snapshot" => format!("snapshot {}.{}", node.schema, node.alias),
                _ => format!(
                    "sql {} model {}.{}",
                    if crate::project::is_microbatch(&node.config) {
                        "microbatch"
                    } else {
                        node.materialized.as_str()
                    },
                    node.schema,
                    node.alias
                ),
            };
            self.out.node_start(index, self.total, &what, &id);
            (self.model(node).await, what)
        } else if let Some(kind) = self.manifest.kind(&id) {
            // An exposure or saved query: nothing to run, as in dbt's build.
            let name = self
                .manifest
                .exposure(&id)
                .map(|x| x.name.clone())
                .or_else(|| self.manifest.semantic(&id).map(|x| x.name.clone()));
            let what = format!(
                "{} {}",
                kind.as_str().replace('_', " "),
                name.unwrap_or_default()
            );
            (NodeResult::new(&id, Outcome::NoOp), what)
        } else {
            unreachable!("the plan holds only models, seeds, tests, exposures and saved queries")
        };
        let secs = clock.elapsed().as_secs_f64();
        result.started_at = Some(started_at);
        result.completed_at = Some(chrono::Utc::now());
        result.execution_time = secs;
        result.thread_id = format!("Thread-{}", (index - 1) % self.settings.threads + 1);
        self.out
            .node_end(index, self.total, &what, &id, &result.outcome, secs);
        result
    }

    async fn test(&self, t: &TestNode) -> NodeResult {
        if let Some(message) = &t.compile_error {
            let failure = NodeFailure::Compile {
                message: message.clone(),
            };
            return NodeResult::new(&t.unique_id, Outcome::Failed(failure));
        }
        let mut sql = t.compiled_code.clone().unwrap_or_default();
        // --store-failures (or the setting) for every test; a test's own
        // `store_failures` config for that test alone.
        let store = match t
            .config
            .get("store_failures")
            .and_then(serde_json::Value::as_bool)
        {
            Some(true) => Some(datatest::audit_schema(&self.settings.schema)),
            Some(false) => None,
            None => self.audit.clone(),
        };
        let outcome = match self.pool.get().await {
            Ok(client) => {
                let mut client = match self.render_if_deferred(&t.unique_id, client).await {
                    Ok((client, Some((now, _)))) => {
                        sql = now;
                        client
                    }
                    Ok((client, None)) => client,
                    Err(failure) => return NodeResult::new(&t.unique_id, Outcome::Failed(failure)),
                };
                let guaranteed = match (&store, self.tested_table(t)) {
                    (None, Some((schema, name))) => {
                        datatest::guaranteed(&client, t, schema, name).await
                    }
                    _ => None,
                };
                let shared = match (&store, &guaranteed) {
                    (None, None) => self.shared_scans.outcome(&client, t).await,
                    _ => None,
                };
                let r = match shared {
                    Some(outcome) => Ok(outcome),
                    None => datatest::run(&mut client, t, &sql, store.as_deref(), guaranteed).await,
                };
                self.pool.put(client);
                match r {
                    // `--warn-error`: a warning test fails, worded as dbt words it.
                    Ok(mut o)
                        if o.status == Status::Warn && self.out.warn_is_error("LogTestResult") =>
                    {
                        o.status = Status::Fail;
                        o.message = o
                            .message
                            .replace("configured to warn", "configured to fail");
                        Outcome::Tested(o)
                    }
                    Ok(o) => Outcome::Tested(o),
                    Err(_) if self.swap_cancelled() => Outcome::Failed(interrupted_test(t)),
                    Err(f) => Outcome::Failed(f),
                }
            }
            Err(e) => Outcome::Failed(NodeFailure::Connection {
                message: e.to_string(),
            }),
        };
        NodeResult {
            compiled_code: Some(sql),
            ..NodeResult::new(&t.unique_id, outcome)
        }
    }

    /// Runs unit test `t` (see [`unittest`]).
    async fn unit_test(&self, t: &TestNode) -> NodeResult {
        if let Some(message) = &t.compile_error {
            let failure = NodeFailure::Compile {
                message: message.clone(),
            };
            return NodeResult::new(&t.unique_id, Outcome::Failed(failure));
        }
        let model_sql = t.compiled_code.clone().unwrap_or_default();
        let (outcome, sql) = match self.pool.get().await {
            Ok(mut client) => {
                let (r, sql) = unittest::run(&mut client, t, &model_sql).await;
                self.pool.put(client);
                let outcome = match r {
                    Ok(o) => Outcome::Tested(o),
                    Err(_) if self.swap_cancelled() => Outcome::Failed(interrupted_test(t)),
                    Err(f) => Outcome::Failed(f),
                };
                (outcome, sql)
            }
            Err(e) => (
                Outcome::Failed(NodeFailure::Connection {
                    message: e.to_string(),
                }),
                model_sql,
            ),
        };
        NodeResult {
            compiled_code: Some(sql),
            ..NodeResult::new(&t.unique_id, outcome)
        }
    }

    /// The table a generic test reads, as (schema, name), when it is in the
    /// target's database: the model or source the test is declared on.
    fn tested_table(&self, t: &TestNode) -> Option<(&str, &str)> {
        let id = t.attached_node.as_deref()?;
        if let Some(node) = self.manifest.node(id) {
            return (node.database == self.manifest.database)
                .then_some((node.schema.as_str(), node.alias.as_str()));
        }
        let source = self.manifest.source(id)?;
        (source.database == self.manifest.database).then_some((
            source.table.schema.as_str(),
            source.table.identifier.as_str(),
        ))
    }

    async fn model(&self, node: &Node) -> NodeResult {
        // Compiled batch by batch (as dbt, never as a whole when it runs).
        if let Ok(Some(mb)) = crate::project::Microbatch::of(&node.name, &node.config) {
            return self.microbatch(node, &mb).await;
        }
        if let Some(message) = &node.compile_error {
            let failure = NodeFailure::Compile {
                message: message.clone(),
            };
            return NodeResult {
                relation_name: Some(node.relation_name()),
                ..NodeResult::new(&node.unique_id, Outcome::Failed(failure))
            };
        }
        let mut sql = node.compiled_code.clone().unwrap_or_default();
        let mut rendered_node = None;
        let outcome = match self.pool.get().await {
            Ok(client) => {
                let mut client = match self.render_if_deferred(&node.unique_id, client).await {
                    Ok((client, Some((now, hooks)))) => {
                        let mut n = node.clone();
                        n.rendered_hooks = hooks.unwrap_or_default();
                        n.compiled_code = Some(now.clone());
                        sql = now;
                        rendered_node = Some(n);
                        client
                    }
                    Ok((client, None)) => client,
                    Err(failure) => {
                        return NodeResult {
                            relation_name: Some(node.relation_name()),
                            ..NodeResult::new(&node.unique_id, Outcome::Failed(failure))
                        }
                    }
                };
                let node = rendered_node.as_ref().unwrap_or(node);
                let with_render = self.with_hook_render(node);
                let node = with_render.as_ref().unwrap_or(node);
                let notify = |m: &str| self.out.warn("waiting", m);
                let r = postgres::build_model(
                    &mut client,
                    node,
                    &sql,
                    &self.suffix,
                    node.full_refresh(self.full_refresh),
                    &self.swap,
                    &notify,
                )
                .await;
                self.pool.put(client);
                match r {
                    Ok(built) => Outcome::Built(built),
                    // A database error in the model's SQL: where to read it, as dbt
                    // says ("compiled code at target/compiled/…").
                    Err(NodeFailure::Sql { sqlstate, message }) => {
                        Outcome::Failed(NodeFailure::Sql {
                            sqlstate,
                            message: format!(
                                "{message}; compiled code at {}",
                                self.compiled_dir.join(node.compiled_file()).display()
                            ),
                        })
                    }
                    Err(f) => Outcome::Failed(f),
                }
            }
            Err(e) => Outcome::Failed(NodeFailure::Connection {
                message: e.to_string(),
            }),
        };
        NodeResult {
            compiled_code: Some(sql),
            relation_name: Some(node.relation_name()),
            ..NodeResult::new(&node.unique_id, outcome)
        }
    }

    /// Reads a seed's CSV once to infer its columns, then loads it (see
    /// [`postgres::load_seed`]).
    async fn seed(&self, node: &Node) -> NodeResult {
        // A seed's compile error is one of its hooks'.
        let loaded = match &node.compile_error {
            Some(message) => Err(NodeFailure::Compile {
                message: message.clone(),
            }),
            None => self.load_seed(node).await,
        };
        let outcome = match loaded {
            Ok(built) => Outcome::Built(built),
            Err(f) => Outcome::Failed(f),
        };
        NodeResult {
            relation_name: Some(node.relation_name()),
            ..NodeResult::new(&node.unique_id, outcome)
        }
    }

    async fn load_seed(&self, node: &Node) -> Result<Built, NodeFailure> {
        let config = |k: &str| node.config.get(k);
        let file = SeedFile {
            path: self.settings.project_dir.join(&node.original_file_path),
            display: node.original_file_path.clone(),
            delimiter: config("delimiter")
                .and_then(serde_json::Value::as_str)
                .and_then(|d| d.chars().next())
                .unwrap_or(','),
            column_types: config("column_types")
                .and_then(serde_json::Value::as_object)
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                        .collect()
                })
                .unwrap_or_default(),
        };
        let reading = file.clone();
        let cancel = self.swap.clone();
        let shape =
            tokio::task::spawn_blocking(move || seed::infer(&reading, &|| !cancel.cancelled()))
                .await
                .map_err(|e| NodeFailure::Seed {
                    message: format!("{}: {e}", file.display),
                })?;
        let shape = match shape {
            Ok(s) => s,
            Err(_) if self.swap_cancelled() => {
                return Err(NodeFailure::Interrupted {
                    message: format!(
                        "cancelled; {}.{} was left as it was",
                        node.schema, node.alias
                    ),
                })
            }
            Err(e) => {
                return Err(NodeFailure::Seed {
                    message: format!("{}: {e}", file.display),
                })
            }
        };
        let load = SeedLoad {
            file,
            shape,
            // The seed's own `full_refresh` config wins over the flag, as in dbt.
            full_refresh: node.full_refresh(self.full_refresh),
            quote_columns: config("quote_columns")
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(true),
        };
        let mut client = self.pool.get().await.map_err(|e| NodeFailure::Connection {
            message: e.to_string(),
        })?;
        let notify = |m: &str| self.out.warn("waiting", m);
        let with_render = self.with_hook_render(node);
        let node = with_render.as_ref().unwrap_or(node);
        let r =
            postgres::load_seed(&mut client, node, &load, &self.suffix, &self.swap, &notify).await;
        self.pool.put(client);
        r
    }

    /// For a node of `render_at_run`: renders it now on `client` (its parents are
    /// built), writes its compiled SQL and gives it back with the connection.
    /// A render that fails is the node's compile failure.
    async fn render_if_deferred(
        &self,
        id: &str,
        client: Client,
    ) -> Result<(Client, Option<(String, Option<Hooks>)>), NodeFailure> {
        if !self.manifest.render_at_run.contains(id) {
            return Ok((client, None));
        }
        let (renderer, manifest) = (self.renderer.clone(), self.manifest.clone());
        let handle = tokio::runtime::Handle::current();
        let owned = id.to_string();
        let joined = tokio::task::spawn_blocking(move || {
            let db = RenderDb::new(handle, client, &owned);
            let (rendered, _) = with_database(Some(db.clone()), || -> crate::error::Result<_> {
                let mut ephemerals = EphemeralCache::default();
                let sql = renderer.compile_id(&manifest, &owned, &mut ephemerals)?;
                let hooks = match manifest.node(&owned) {
                    Some(n) => Some(renderer.render_hooks(n)?),
                    None => None,
                };
                Ok((sql, hooks))
            });
            let rendered: RenderedNow = rendered.map_err(|e| e.for_node(&owned).to_string());
            (db.take(), rendered)
        })
        .await;
        let (client, rendered) = match joined {
            Ok((Some(client), rendered)) => (client, rendered),
            Ok((None, _)) | Err(_) => {
                self.pool.forget();
                return Err(NodeFailure::Connection {
                    message: format!("{id}: the connection was lost while rendering"),
                });
            }
        };
        match rendered {
            Ok((sql, hooks)) => {
                let written = crate::artifacts::compiled_file(&self.manifest, id)
                    .filter(|_| !crate::artifacts::is_snapshot(&self.manifest, id));
                if let Some(rel) = written {
                    let path = crate::artifacts::compiled_node_path(
                        &self.target_dir,
                        &self.manifest,
                        &rel,
                    );
                    let _ = crate::artifacts::write_atomic(&path, format!("{sql}\n").as_bytes());
                }
                Ok((client, Some((sql, hooks))))
            }
            Err(message) => {
                self.pool.put(client);
                Err(NodeFailure::Compile { message })
            }
        }
    }

    /// `node` with what renders its hooks that are rendered when they run
    /// (`Hook::at_run`), when it has any.
    fn with_hook_render(&self, node: &Node) -> Option<Node> {
        let hooks = &node.rendered_hooks;
        if !hooks.pre.iter().chain(&hooks.post).any(|h| h.at_run) {
            return None;
        }
        let renderer = self.renderer.clone();
        let handle = tokio::runtime::Handle::current();
        let built = node.clone();
        let render = move |hook: &crate::project::Hook, lend: postgres::Lend| {
            let db = RenderDb::lent(handle.clone(), lend, &built.unique_id);
            let (r, _) = with_database(Some(db), || renderer.render_hook_now(&built, hook));
            r.map_err(|e| e.to_string())
        };
        let mut n = node.clone();
        n.hook_render = Some(postgres::HookRender(Arc::new(render)));
        Some(n)
    }

    fn swap_cancelled(&self) -> bool {
        self.swap.cancelled()
    }

    /// Reports node `id`, the `index`-th, as skipped.
    pub(super) fn skip(&self, id: &str, index: usize, reason: SkipReason) -> NodeResult {
        let (what, compiled, relation) = match (self.manifest.node(id), self.manifest.test(id)) {
            (Some(n), _) if n.resource_type == "seed" => (
                format!("seed file {}.{}", n.schema, n.alias),
                None,
                Some(n.relation_name()),
            ),
            (Some(n), _) => (
                format!("relation {}.{}", n.schema, n.alias),
                n.compiled_code.clone(),
                Some(n.relation_name()),
            ),
            (_, Some(t)) => (test_what(&self.manifest, t), t.compiled_code.clone(), None),
            _ => (id.to_string(), None, None),
        };
        let outcome = Outcome::Skipped(reason);
        self.out
            .node_end(index, self.total, &what, id, &outcome, 0.0);
        NodeResult {
            compiled_code: compiled,
            relation_name: relation,
            ..NodeResult::new(id, outcome)
        }
    }
}

/// How the console names a test: `test <name>`, or dbt's `unit_test
/// <model>::<name>`.
fn test_what(manifest: &Manifest, t: &TestNode) -> String {
    match t.unit.as_deref() {
        Some(u) => format!(
            "unit_test {}::{}",
            manifest.node(&u.model).map_or("", |n| n.name.as_str()),
            t.name
        ),
        None => format!("test {}", t.name),
    }
}

fn interrupted_test(t: &TestNode) -> NodeFailure {
    NodeFailure::Interrupted {
        message: format!("test {} was cancelled", t.name),
    }
}
