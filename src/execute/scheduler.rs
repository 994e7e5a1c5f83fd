//! The scheduler: runs selected nodes in dependency order, up to `threads` at a
//! time, each as soon as all of its selected parents have succeeded.
//!
//! A node that fails makes every selected descendant *skipped*; nodes that do not
//! depend on it still run. With `fail_fast`, nothing new starts after the first
//! failure. Cancellation (SIGINT, SIGTERM) stops new work and calls
//! `on_interrupt` once (the caller cancels in-flight queries there); what was
//! in flight finishes as an error and the rest is skipped.
//!
//! What "running a node" means is the caller's `job`; the scheduler only orders.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::future::Future;

use tokio::task::JoinSet;

use crate::cancel::Cancel;
use crate::graph::Graph;
use crate::results::{NodeResult, SkipReason};

/// Runs `order` (selected ids, parents before children).
///
/// `job(id, index)` runs one node; `index` counts from 1 in start order.
/// `skip(id, index, reason)` reports a node that will not run and returns its result.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn execute<J, Fut, S, I, IFut>(
    order: &[String],
    graph: &Graph,
    threads: usize,
    fail_fast: bool,
    cancel: &Cancel,
    job: J,
    skip: S,
    on_interrupt: I,
) -> (Vec<NodeResult>, bool)
where
    J: Fn(String, usize) -> Fut,
    Fut: Future<Output = NodeResult> + Send + 'static,
    S: Fn(&str, usize, SkipReason) -> NodeResult,
    I: FnOnce() -> IFut,
    IFut: Future<Output = ()>,
{
    let selected: BTreeSet<&str> = order.iter().map(String::as_str).collect();
    let position: BTreeMap<&str, usize> = order
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    let mut waiting: BTreeMap<&str, usize> = BTreeMap::new();
    for id in order {
        let n = graph
            .parents
            .get(id)
            .map(|ps| ps.iter().filter(|p| selected.contains(p.as_str())).count())
            .unwrap_or(0);
        waiting.insert(id.as_str(), n);
    }
    let mut ready: VecDeque<&str> = order
        .iter()
        .map(String::as_str)
        .filter(|id| waiting[id] == 0)
        .collect();
    let mut done: BTreeMap<String, NodeResult> = BTreeMap::new();
    let mut skipped: BTreeSet<String> = BTreeSet::new();
    let mut running = JoinSet::new();
    let mut index = 0usize;
    let mut stop = false;
    let mut interrupted = false;
    let mut on_interrupt = Some(on_interrupt);

    loop {
        if !interrupted && cancel.is_cancelled() {
            // Cancelled before this node could start (or between two results).
            interrupted = true;
            stop = true;
            if let Some(f) = on_interrupt.take() {
                f().await;
            }
        }
        while !stop && running.len() < threads.max(1) {
            let Some(id) = ready.pop_front() else { break };
            if skipped.contains(id) {
                continue;
            }
            index += 1;
            let fut = job(id.to_string(), index);
            // The SQL statements this node's work sends are logged under its id.
            running.spawn(crate::console::NODE.scope(id.to_string(), fut));
        }
        if running.is_empty() {
            break;
        }
        let finished = tokio::select! {
            r = running.join_next() => r,
            _ = cancel.cancelled(), if !interrupted => {
                interrupted = true;
                stop = true;
                if let Some(f) = on_interrupt.take() {
                    f().await;
                }
                continue;
            }
        };
        let Some(Ok(result)) = finished else { continue };
        let failed = result.status().is_failure();
        let id = result.unique_id.clone();
        if failed {
            if fail_fast {
                stop = true;
            }
            let mut desc: Vec<String> = graph
                .descendants(&id)
                .into_iter()
                .filter(|d| selected.contains(d.as_str()))
                .collect();
            desc.sort_by_key(|d| position[d.as_str()]);
            for d in desc {
                if skipped.insert(d.clone()) {
                    index += 1;
                    let r = skip(&d, index, SkipReason::Upstream(id.clone()));
                    done.insert(d, r);
                }
            }
        } else {
            for c in graph.children.get(&id).map(Vec::as_slice).unwrap_or(&[]) {
                if let Some(w) = waiting.get_mut(c.as_str()) {
                    *w -= 1;
                    if *w == 0 && !skipped.contains(c) {
                        ready.push_back(c.as_str());
                    }
                }
            }
        }
        done.insert(id, result);
    }

    for id in order {
        if !done.contains_key(id) {
            index += 1;
            let r = skip(id, index, SkipReason::Stopped);
            done.insert(id.clone(), r);
        }
    }
    let mut results: Vec<NodeResult> = done.into_values().collect();
    results.sort_by_key(|r| {
        position
            .get(r.unique_id.as_str())
            .copied()
            .unwrap_or(usize::MAX)
    });
    (results, interrupted)
}
