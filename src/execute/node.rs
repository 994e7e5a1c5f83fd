//! Running one node of a job: a model built and swapped in, or a data test run and
//! judged, on a connection of the pool; and reporting a node that is skipped. Each
//! ends as a [`NodeResult`] whose [`Outcome`] says what happened.

use std::sync::Arc;
use std::time::Instant;

use crate::console::Output;
use crate::datatest;
use crate::manifest::{Manifest, Node, TestNode};
use crate::postgres::{self, Pool, SeedLoad, SwapOptions};
use crate::results::{Built, NodeFailure, NodeResult, Outcome, SkipReason, Status};
use crate::seed::{self, SeedFile};
use crate::settings::Settings;

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
}

impl NodeRunner {
    /// Runs node `id`, the `index`-th to start.
    pub(super) async fn run(self: Arc<Self>, id: String, index: usize) -> NodeResult {
        let started_at = chrono::Utc::now();
        let clock = Instant::now();
        let (mut result, what) = if let Some(t) = self.manifest.test(&id) {
            let what = format!("test {}", t.name);
            self.out.node_start(index, self.total, &what, &id);
            (self.test(t).await, what)
        } else if let Some(node) = self
            .manifest
            .node(&id)
            .filter(|n| n.resource_type == "seed")
        {
            let what = format!("seed file {}.{}", node.schema, node.alias);
            self.out.node_start(index, self.total, &what, &id);
            (self.seed(node).await, what)
        } else if let Some(node) = self.manifest.node(&id) {
            let what = format!(
                "sql {} model {}.{}",
                node.materialized.as_str(),
                node.schema,
                node.alias
            );
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
        let sql = t.compiled_code.clone().unwrap_or_default();
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
            Ok(mut client) => {
                let guaranteed = match (&store, self.tested_table(t)) {
                    (None, Some((schema, name))) => {
                        datatest::guaranteed(&client, t, schema, name).await
                    }
                    _ => None,
                };
                let r = datatest::run(&mut client, t, &sql, store.as_deref(), guaranteed).await;
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
        if let Some(message) = &node.compile_error {
            let failure = NodeFailure::Compile {
                message: message.clone(),
            };
            return NodeResult {
                relation_name: Some(node.relation_name()),
                ..NodeResult::new(&node.unique_id, Outcome::Failed(failure))
            };
        }
        let sql = node.compiled_code.clone().unwrap_or_default();
        let outcome = match self.pool.get().await {
            Ok(mut client) => {
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
        let r =
            postgres::load_seed(&mut client, node, &load, &self.suffix, &self.swap, &notify).await;
        self.pool.put(client);
        r
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
            (_, Some(t)) => (format!("test {}", t.name), t.compiled_code.clone(), None),
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

fn interrupted_test(t: &TestNode) -> NodeFailure {
    NodeFailure::Interrupted {
        message: format!("test {} was cancelled", t.name),
    }
}
