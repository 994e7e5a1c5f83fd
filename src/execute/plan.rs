//! The plan of a job: which nodes it runs, in which order, on which graph.

use std::collections::BTreeSet;

use crate::graph::Graph;
use crate::manifest::{Manifest, Materialization, NodeKind};

/// What an executing command runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Job {
    Run {
        full_refresh: bool,
        /// `--empty`: refs and sources read as zero rows.
        empty: bool,
        /// `--event-time-start`/`--event-time-end`: microbatch models' window.
        event_time: Option<crate::project::EventWindow>,
    },
    /// `seed`: load the selected seeds.
    Seed {
        full_refresh: bool,
    },
    /// `snapshot`: take the selected snapshots.
    Snapshot,
    Test {
        store_failures: bool,
    },
    Build {
        store_failures: bool,
        check_freshness: bool,
        full_refresh: bool,
        /// `--empty`: refs and sources read as zero rows.
        empty: bool,
        /// `--event-time-start`/`--event-time-end`: microbatch models' window.
        event_time: Option<crate::project::EventWindow>,
    },
}

impl Job {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Job::Run { .. } => "run",
            Job::Seed { .. } => "seed",
            Job::Snapshot => "snapshot",
            Job::Test { .. } => "test",
            Job::Build { .. } => "build",
        }
    }
}

/// The selected ids a job executes, in dependency order, and the graph it runs on
/// (`build`'s adds the edges that make a failing test skip what its model feeds).
pub(crate) fn plan(
    graph: &Graph,
    manifest: &Manifest,
    chosen: &BTreeSet<String>,
    job: Job,
) -> (Vec<String>, Graph) {
    let (graph, ids) = runs(graph, manifest, chosen, job);
    match job {
        Job::Build { .. } => {
            let g = graph.for_build(manifest);
            (g.topo_order(&ids), g)
        }
        _ => (graph.topo_order(&ids), graph),
    }
}

/// [`plan`]'s order alone (for `compile` and `show`, which run nothing), made
/// without `build`'s graph.
pub(crate) fn plan_order(
    graph: &Graph,
    manifest: &Manifest,
    chosen: &BTreeSet<String>,
    job: Job,
) -> Vec<String> {
    let (graph, ids) = runs(graph, manifest, chosen, job);
    match job {
        Job::Build { .. } => graph.build_order(manifest, &ids),
        _ => graph.topo_order(&ids),
    }
}

/// The graph a job runs on before `build`'s extra edges (drawn across the
/// ephemeral models) and the selected ids it executes.
fn runs(
    graph: &Graph,
    manifest: &Manifest,
    chosen: &BTreeSet<String>,
    job: Job,
) -> (Graph, BTreeSet<String>) {
    let of_kind = |kind: NodeKind| -> BTreeSet<String> {
        chosen
            .iter()
            .filter(|id| manifest.kind(id) == Some(kind))
            .cloned()
            .collect()
    };
    // Ephemeral models never run: their SQL is inlined into their users, which
    // wait for (and are skipped with) what the ephemeral models read.
    let ephemeral: BTreeSet<String> = manifest
        .nodes
        .iter()
        .filter(|n| n.materialized == Materialization::Ephemeral)
        .map(|n| n.unique_id.clone())
        .collect();
    let graph = graph.across(&ephemeral);
    let mut models = of_kind(NodeKind::Model);
    models.retain(|id| !ephemeral.contains(id));
    let seeds = of_kind(NodeKind::Seed);
    let snapshots = of_kind(NodeKind::Snapshot);
    let tests: BTreeSet<String> = of_kind(NodeKind::Test)
        .into_iter()
        .chain(of_kind(NodeKind::UnitTest))
        .collect();
    let ids = match job {
        Job::Run { .. } => models,
        Job::Seed { .. } => seeds,
        Job::Snapshot => snapshots,
        Job::Test { .. } => tests,
        Job::Build { .. } => {
            // Exposures and saved queries are no-ops in build, as in dbt.
            let noops = of_kind(NodeKind::Exposure)
                .into_iter()
                .chain(of_kind(NodeKind::SavedQuery));
            models
                .union(&tests)
                .chain(&seeds)
                .chain(&snapshots)
                .cloned()
                .chain(noops)
                .collect()
        }
    };
    (graph, ids)
}
