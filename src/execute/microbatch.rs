//! Running a microbatch model (`incremental_strategy='microbatch'`) as dbt-core
//! 1.10 does: its batches ([`crate::project::Microbatch::batches`], or on
//! `retry` the batches that failed last time) one after the other, each compiled
//! with `model.batch` and its inputs that declare an `event_time` filtered to the
//! batch's window, each applied in its own transaction ([`postgres::build_model`]:
//! the first batch of a new table or of a `--full-refresh` builds the table
//! through the safe swap, the others merge on the `unique_key`, as dbt-postgres
//! does). A failed batch leaves the batches before it committed and its own
//! window as it was; when the first batch fails, the others are skipped. The
//! pre-hooks run with the first batch, the post-hooks with the last. PostgreSQL
//! does not run batches concurrently in dbt-postgres, nor here.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};

use crate::console::Output;
use crate::manifest::{Manifest, Node};
use crate::postgres;
use crate::project::{format_batch_start, Batch, BatchSize, EventWindow, Microbatch};
use crate::render::{with_database, EphemeralCache, RenderDb};
use crate::results::{Batched, Built, NodeFailure, NodeResult, Outcome};

use super::node::NodeRunner;

/// What the microbatch models of one invocation share.
#[derive(Debug, Clone, Default)]
pub(crate) struct MicrobatchRun {
    /// `--event-time-start`/`--event-time-end`.
    pub(crate) window: Option<EventWindow>,
    /// `retry`: per model, the batches that succeeded and those that failed
    /// last time (only models with both, as dbt keeps them).
    pub(crate) previous: BTreeMap<String, (Vec<Batch>, Vec<Batch>)>,
    /// When the invocation started: the end of the batches without a window.
    pub(crate) now: Option<DateTime<Utc>>,
}

impl NodeRunner {
    /// Runs the batches of microbatch model `node`; see the module documentation.
    pub(super) async fn microbatch(&self, node: &Node, mb: &Microbatch) -> NodeResult {
        let id = &node.unique_id;
        let previous = self.microbatch.previous.get(id);
        let batches = match previous {
            Some((_, failed)) => failed.clone(),
            None => mb.batches(
                node.incremental,
                self.microbatch.window,
                self.microbatch.now.unwrap_or_else(Utc::now),
            ),
        };
        let total = batches.len();
        let (mut successful, mut failed) = (Vec::new(), Vec::new());
        let mut first_failure: Option<NodeFailure> = None;
        let mut skip = false;
        for (i, batch) in batches.iter().enumerate() {
            let what = format!(
                "batch {} of {}.{}",
                format_batch_start(batch.0, mb.batch_size),
                node.schema,
                node.alias
            );
            if skip || self.swap.cancelled() {
                self.out.batch_end(i + 1, total, &what, id, Err(None), 0.0);
                failed.push(*batch);
                continue;
            }
            self.out.batch_start(i + 1, total, &what, id);
            let clock = Instant::now();
            // The first batch builds the table when it is new or rebuilt; the
            // others are increments.
            let incremental = i > 0 || node.incremental;
            let r = self
                .run_batch(
                    node,
                    mb.batch_size,
                    *batch,
                    incremental,
                    i == 0,
                    i + 1 == total,
                )
                .await;
            let secs = clock.elapsed().as_secs_f64();
            match r {
                Ok(built) => {
                    self.out
                        .batch_end(i + 1, total, &what, id, Ok(&built), secs);
                    successful.push(*batch);
                }
                Err(f) => {
                    self.out.error(&format!("{what}: {}", f.describe()));
                    self.out
                        .batch_end(i + 1, total, &what, id, Err(Some(&f)), secs);
                    failed.push(*batch);
                    // As dbt: without a first batch there is nothing to add to.
                    skip = i == 0;
                    first_failure.get_or_insert(f);
                }
            }
        }
        successful.sort();
        failed.sort();
        // On retry, the batches that had succeeded count as successful, as in dbt.
        if let Some((before, _)) = previous {
            successful.extend(before.iter().copied());
        }
        NodeResult {
            relation_name: Some(node.relation_name()),
            ..NodeResult::new(
                id,
                Outcome::Batched(Batched {
                    successful,
                    failed,
                    first_failure,
                }),
            )
        }
    }

    /// Compiles `node` for `batch` (on a connection: its macros may query) and
    /// applies it in its own transaction.
    async fn run_batch(
        &self,
        node: &Node,
        size: BatchSize,
        batch: Batch,
        incremental: bool,
        first: bool,
        last: bool,
    ) -> Result<Built, NodeFailure> {
        let mut n = node.clone();
        n.incremental = incremental;
        if !first {
            n.rendered_hooks.pre.clear();
        }
        if !last {
            n.rendered_hooks.post.clear();
        }
        let client = self.pool.get().await.map_err(|e| NodeFailure::Connection {
            message: e.to_string(),
        })?;
        let (renderer, manifest) = (self.renderer.clone(), self.manifest.clone());
        let handle = tokio::runtime::Handle::current();
        let owned = Arc::new(n.clone());
        let joined = tokio::task::spawn_blocking(move || {
            let db = RenderDb::new(handle, client, &owned.unique_id);
            let (rendered, _) = with_database(Some(db.clone()), || {
                let mut ephemerals = EphemeralCache::default();
                renderer.compile_batch(&manifest, &owned, (batch, size), &mut ephemerals)
            });
            let rendered = rendered.map_err(|e| e.for_node(&owned.unique_id).to_string());
            (db.take(), rendered)
        })
        .await;
        let (mut client, sql) = match joined {
            Ok((Some(client), rendered)) => (client, rendered),
            Ok((None, _)) | Err(_) => {
                self.pool.forget();
                return Err(NodeFailure::Connection {
                    message: format!(
                        "{}: the connection was lost while rendering",
                        node.unique_id
                    ),
                });
            }
        };
        let sql = match sql {
            Ok(sql) => sql,
            Err(message) => {
                self.pool.put(client);
                return Err(NodeFailure::Compile { message });
            }
        };
        // dbt's layout: target/compiled/<project>/<dir>/<model>/<model>_<batch>.sql
        let rel = batch_file(&node.compiled_file(), &format_batch_start(batch.0, size));
        let path =
            crate::artifacts::compiled_path(&self.target_dir, &self.manifest.project_name, &rel);
        let _ = crate::artifacts::write_atomic(&path, format!("{sql}\n").as_bytes());
        n.compiled_code = Some(sql.clone());
        let notify = |m: &str| self.out.warn("waiting", m);
        let r = postgres::build_model(
            &mut client,
            &n,
            &sql,
            &self.suffix,
            !incremental,
            &self.swap,
            &notify,
        )
        .await;
        self.pool.put(client);
        r.map_err(|f| match f {
            NodeFailure::Sql { sqlstate, message } => NodeFailure::Sql {
                sqlstate,
                message: format!(
                    "{message}; compiled code at {}",
                    self.compiled_dir.join(&rel).display()
                ),
            },
            f => f,
        })
    }
}

/// dbt's warnings: a microbatch model none of whose inputs has an `event_time`
/// (every batch reads everything), and `concurrent_batches: true`, which
/// dbt-postgres cannot honour (nor can we: batches run one after the other).
pub(super) fn warn(manifest: &Manifest, order: &[String], out: &Output) {
    let has_event_time = |id: &String| {
        let config = match manifest.node(id) {
            Some(n) => &n.config,
            None => match manifest.source(id) {
                Some(s) => &s.table.config,
                None => return false,
            },
        };
        config.get("event_time").is_some_and(|v| v.is_string())
    };
    for n in order.iter().filter_map(|id| manifest.node(id)) {
        if crate::project::is_microbatch(&n.config)
            && !n.depends_on_nodes.iter().any(has_event_time)
        {
            out.warn(
                "microbatch_no_event_time_inputs",
                &format!(
                    "The microbatch model '{}' has no 'ref' or 'source' input with an 'event_time' configuration. This means no filtering can be applied and can result in unexpected duplicate records in the resulting microbatch model; give its inputs an `event_time` config",
                    n.name
                ),
            );
        }
    }
    let n = order
        .iter()
        .filter_map(|id| manifest.node(id))
        .filter(|n| {
            crate::project::is_microbatch(&n.config)
                && n.config.get("concurrent_batches") == Some(&serde_json::Value::Bool(true))
        })
        .count();
    if n > 0 {
        out.warn(
            "concurrent_batches",
            &format!(
                "Found {n} microbatch model{} with the `concurrent_batches` config set to true, but the postgres adapter does not support running batches concurrently. Batches will be run sequentially.",
                crate::console::plural(n)
            ),
        );
    }
}

/// `models/x.sql` → `models/x/x_<suffix>.sql`.
fn batch_file(file: &str, suffix: &str) -> String {
    let (dir, name) = file.rsplit_once('/').unwrap_or(("", file));
    let (stem, ext) = name.rsplit_once('.').unwrap_or((name, "sql"));
    let inner = format!("{stem}/{stem}_{suffix}.{ext}");
    if dir.is_empty() {
        inner
    } else {
        format!("{dir}/{inner}")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn batch_files_go_where_dbt_writes_them() {
        assert_eq!(
            super::batch_file("models/marts/x.sql", "2024-03-01"),
            "models/marts/x/x_2024-03-01.sql"
        );
    }
}
