//! The dependency graph of a manifest: parent and child edges between unique ids
//! (models, data tests, and sources, which are leaves that never run), cycle
//! detection naming every node on the cycle with its file, dependency order and
//! the extra edges of `build`. Selection (with the tests that come along) is in
//! [`select`]; the selectors of `selectors.yml` in [`spec`]; the previous state
//! of `--state` in [`state`].

mod indexed;
mod select;
mod spec;
mod state;

pub(crate) use select::Against;
pub(crate) use spec::Selectors;
pub(crate) use state::PreviousState;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::error::{Error, Result};
use crate::manifest::Manifest;

/// Parent and child edges between unique ids.
#[derive(Debug, Clone, Default)]
pub(crate) struct Graph {
    /// Every unique id (models and sources).
    pub(crate) ids: BTreeSet<String>,
    pub(crate) parents: BTreeMap<String, Vec<String>>,
    pub(crate) children: BTreeMap<String, Vec<String>>,
}

impl Graph {
    /// Builds the graph of `manifest`, failing on a dependency cycle.
    pub(crate) fn build(manifest: &Manifest) -> Result<Graph> {
        let mut g = Graph::default();
        for s in &manifest.sources {
            g.ids.insert(s.unique_id.clone());
        }
        for n in &manifest.nodes {
            g.ids.insert(n.unique_id.clone());
        }
        for t in &manifest.tests {
            g.ids.insert(t.unique_id.clone());
        }
        // Exposures and the semantic layer build nothing but are selectable.
        for x in &manifest.exposures {
            g.ids.insert(x.unique_id.clone());
        }
        for x in &manifest.semantic {
            g.ids.insert(x.unique_id.clone());
        }
        let edges = g.ids.iter().map(|id| (id, manifest.depends_on(id)));
        for (id, deps) in edges {
            for dep in deps {
                g.parents.entry(id.clone()).or_default().push(dep.clone());
                g.children.entry(dep.clone()).or_default().push(id.clone());
            }
        }
        if let Some(cycle) = g.find_cycle() {
            let names: Vec<String> = cycle
                .iter()
                .map(|id| match manifest.node(id) {
                    Some(n) => format!("{} ({})", n.name, n.original_file_path),
                    None => id.clone(),
                })
                .collect();
            return Err(Error::usage(format!(
                "dependency cycle: {} → {}; remove one of these refs",
                names.join(" → "),
                names[0]
            )));
        }
        Ok(g)
    }

    /// One cycle, as the list of ids along it, if there is any.
    fn find_cycle(&self) -> Option<Vec<String>> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            Open,
            Done,
        }
        let mut marks: BTreeMap<&str, Mark> = BTreeMap::new();
        for start in &self.ids {
            if marks.contains_key(start.as_str()) {
                continue;
            }
            // Iterative DFS keeping the current path for reporting.
            let mut path: Vec<&str> = vec![start];
            let mut iters: Vec<usize> = vec![0];
            marks.insert(start, Mark::Open);
            while let Some(&node) = path.last() {
                let i = iters.last_mut().unwrap();
                let kids = self.children.get(node).map(Vec::as_slice).unwrap_or(&[]);
                if *i < kids.len() {
                    let k = kids[*i].as_str();
                    *i += 1;
                    match marks.get(k) {
                        Some(Mark::Open) => {
                            let from = path.iter().position(|p| *p == k).unwrap_or(0);
                            return Some(path[from..].iter().map(|s| s.to_string()).collect());
                        }
                        Some(Mark::Done) => {}
                        None => {
                            marks.insert(k, Mark::Open);
                            path.push(k);
                            iters.push(0);
                        }
                    }
                } else {
                    marks.insert(node, Mark::Done);
                    path.pop();
                    iters.pop();
                }
            }
        }
        None
    }

    /// Ids reachable from `id` through `edges`, up to `depth` steps (None: all).
    fn reach(
        &self,
        id: &str,
        edges: &BTreeMap<String, Vec<String>>,
        depth: Option<usize>,
    ) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut queue = VecDeque::from([(id.to_string(), 0usize)]);
        while let Some((cur, d)) = queue.pop_front() {
            if depth.is_some_and(|max| d >= max) {
                continue;
            }
            for next in edges.get(&cur).map(Vec::as_slice).unwrap_or(&[]) {
                if out.insert(next.clone()) {
                    queue.push_back((next.clone(), d + 1));
                }
            }
        }
        out
    }

    pub(crate) fn ancestors(&self, id: &str) -> BTreeSet<String> {
        self.reach(id, &self.parents, None)
    }

    pub(crate) fn descendants(&self, id: &str) -> BTreeSet<String> {
        self.reach(id, &self.children, None)
    }

    /// The graph `build` runs (dbt's `add_test_edges`): a data test also precedes
    /// every model that descends from *all* the nodes the test depends on, so a
    /// failing test skips them. A test of one model thus holds back that model's
    /// descendants; a relationships test between two models, only the nodes
    /// downstream of both.
    ///
    /// A unit test runs before its model instead, once the model's parents are
    /// built (their columns type its inputs): a failing one skips the model
    /// and everything downstream, as in dbt.
    pub(crate) fn for_build(&self, manifest: &Manifest) -> Graph {
        let mut g = self.with_unit_tests(manifest);
        for (n, tests) in self.test_edges(manifest) {
            let id = &manifest.nodes[n].unique_id;
            for t in tests.into_iter().map(|i| &manifest.tests[i].unique_id) {
                g.parents.entry(id.clone()).or_default().push(t.clone());
                g.children.entry(t.clone()).or_default().push(id.clone());
            }
        }
        g
    }

    /// `self.for_build(manifest).topo_order(ids)`, without making that graph's
    /// copies of every id of its (many) extra edges: for `compile`, which needs
    /// the order only.
    pub(crate) fn build_order(&self, manifest: &Manifest, ids: &BTreeSet<String>) -> Vec<String> {
        let base = indexed::Indexed::new(self);
        let edges = test_edges_in(&base, manifest);
        // Without unit tests, build's graph is this one with the test edges.
        let with_units;
        let mut g = if manifest.tests.iter().any(|t| t.unit.is_some()) {
            with_units = self.with_unit_tests(manifest);
            indexed::Indexed::new(&with_units)
        } else {
            base
        };
        let test_at: Vec<Option<usize>> = manifest
            .tests
            .iter()
            .map(|t| g.index_of(&t.unique_id))
            .collect();
        for (n, tests) in edges {
            let Some(node) = g.index_of(&manifest.nodes[n].unique_id) else {
                continue;
            };
            for test in tests.into_iter().filter_map(|t| test_at[t]) {
                g.parents[node].push(test);
                g.children[test].push(node);
            }
        }
        g.topo_order(ids)
    }

    /// This graph with the edges of the unit tests (see [`Self::for_build`]).
    fn with_unit_tests(&self, manifest: &Manifest) -> Graph {
        let mut g = self.clone();
        // dbt runs a model's unit tests one after the other and skips the rest
        // after a failure: each waits for the one before it (by unique id).
        let mut previous: BTreeMap<&str, &str> = BTreeMap::new();
        let mut units: Vec<&crate::manifest::TestNode> =
            manifest.tests.iter().filter(|t| t.unit.is_some()).collect();
        units.sort_by(|a, b| a.unique_id.cmp(&b.unique_id));
        for t in units {
            let id = &t.unique_id;
            for model in &t.depends_on_nodes {
                if let Some(before) = previous.insert(model, id) {
                    g.parents
                        .entry(id.clone())
                        .or_default()
                        .push(before.to_string());
                    g.children
                        .entry(before.to_string())
                        .or_default()
                        .push(id.clone());
                }
            }
            for model in &t.depends_on_nodes {
                g.parents
                    .entry(id.clone())
                    .or_default()
                    .retain(|p| p != model);
                g.children
                    .entry(model.clone())
                    .or_default()
                    .retain(|c| c != id);
                for p in self.parents.get(model).into_iter().flatten() {
                    g.parents.entry(id.clone()).or_default().push(p.clone());
                    g.children.entry(p.clone()).or_default().push(id.clone());
                }
                g.parents.entry(model.clone()).or_default().push(id.clone());
                g.children
                    .entry(id.clone())
                    .or_default()
                    .push(model.clone());
            }
        }
        g
    }

    /// The data tests each node waits for in `build` (see [`Self::for_build`]):
    /// (position in `manifest.nodes`, positions in `manifest.tests` in the
    /// manifest's order) for every node with any.
    fn test_edges(&self, manifest: &Manifest) -> Vec<(usize, Vec<usize>)> {
        test_edges_in(&indexed::Indexed::new(self), manifest)
    }

    /// [`Self::test_edges`] of the nodes `nodes` and the tests `tests` (each
    /// data test's dependencies, none for a unit test).
    #[cfg(test)]
    fn data_test_edges(
        &self,
        nodes: &[&str],
        tests: &[Option<&[String]>],
    ) -> Vec<(usize, Vec<usize>)> {
        data_test_edges_in(&indexed::Indexed::new(self), nodes, tests)
    }

    /// This graph with edges drawn across the nodes of `through` (ephemeral models,
    /// which never run): a node whose parent is one of them also gets that node's
    /// nearest parents outside `through`, so it still waits for them and a failure
    /// of one still skips it.
    pub(crate) fn across(&self, through: &BTreeSet<String>) -> Graph {
        let mut g = self.clone();
        for id in &self.ids {
            if through.contains(id) {
                continue;
            }
            let mut stack: Vec<&String> = self.parents.get(id).into_iter().flatten().collect();
            let mut seen: BTreeSet<&String> = BTreeSet::new();
            while let Some(p) = stack.pop() {
                if !through.contains(p) || !seen.insert(p) {
                    continue;
                }
                for pp in self.parents.get(p).into_iter().flatten() {
                    stack.push(pp);
                    if through.contains(pp) {
                        continue;
                    }
                    let ps = g.parents.entry(id.clone()).or_default();
                    if !ps.contains(pp) {
                        ps.push(pp.clone());
                        g.children.entry(pp.clone()).or_default().push(id.clone());
                    }
                }
            }
        }
        g
    }

    /// `ids` in an order where every node comes after its parents (ties by id).
    pub(crate) fn topo_order(&self, ids: &BTreeSet<String>) -> Vec<String> {
        indexed::Indexed::new(self).topo_order(ids)
    }
}

/// [`Graph::test_edges`] on `g`, the graph's indexed copy.
fn test_edges_in(g: &indexed::Indexed, manifest: &Manifest) -> Vec<(usize, Vec<usize>)> {
    let nodes: Vec<&str> = manifest
        .nodes
        .iter()
        .map(|n| n.unique_id.as_str())
        .collect();
    let tests: Vec<Option<&[String]>> = manifest
        .tests
        .iter()
        .map(|t| t.unit.is_none().then_some(t.depends_on_nodes.as_slice()))
        .collect();
    data_test_edges_in(g, &nodes, &tests)
}

/// The data tests each of `nodes` waits for in `build`, on `g`: (position in
/// `nodes`, positions in `tests`), `tests` giving each data test's
/// dependencies (none for a unit test).
fn data_test_edges_in(
    g: &indexed::Indexed,
    nodes: &[&str],
    tests: &[Option<&[String]>],
) -> Vec<(usize, Vec<usize>)> {
    // The data tests of each node they depend on, by position, and the
    // positions of each test's dependencies (none when one is not in the
    // graph: no node descends from it).
    let mut tests_of: Vec<Vec<usize>> = vec![Vec::new(); g.len()];
    let mut deps_of: Vec<Option<Vec<usize>>> = vec![None; tests.len()];
    for (i, t) in tests.iter().enumerate() {
        let Some(depends_on) = t else {
            continue;
        };
        for d in depends_on.iter().filter_map(|d| g.index_of(d)) {
            tests_of[d].push(i);
        }
        deps_of[i] = depends_on.iter().map(|d| g.index_of(d)).collect();
    }
    let mut seen = vec![false; g.len()];
    let mut upstream = vec![false; g.len()];
    let mut out = Vec::new();
    for (n, node) in nodes.iter().enumerate() {
        let Some(at) = g.index_of(node) else {
            continue;
        };
        // The candidates are the tests of the node's ancestors; those whose
        // dependencies all are ancestors make the node wait.
        let ancestors = g.ancestors(at, &mut seen);
        for &a in &ancestors {
            upstream[a] = true;
        }
        let mut candidates: Vec<usize> = ancestors
            .iter()
            .flat_map(|a| tests_of[*a].iter().copied())
            .collect();
        candidates.sort_unstable();
        candidates.dedup();
        candidates.retain(|t| {
            deps_of[*t]
                .as_ref()
                .is_some_and(|deps| deps.iter().all(|d| upstream[*d]))
        });
        for &a in &ancestors {
            upstream[a] = false;
        }
        if !candidates.is_empty() {
            out.push((n, candidates));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic pseudo-random sequence (xorshift).
    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
    }

    /// A random acyclic graph: `n` nodes (`m.000` …), each with up to three
    /// parents among the nodes before it, and some sources (`s.0` …).
    fn random_graph(rng: &mut Rng, n: usize) -> (Graph, Vec<String>) {
        let mut g = Graph::default();
        let mut ids: Vec<String> = (0..4).map(|i| format!("s.{i}")).collect();
        for i in 0..n {
            let id = format!("m.{:03}", (i * 7919) % 1000);
            for _ in 0..rng.below(4) {
                let p = ids[rng.below(ids.len())].clone();
                g.parents.entry(id.clone()).or_default().push(p.clone());
                g.children.entry(p).or_default().push(id.clone());
            }
            ids.push(id);
        }
        g.ids = ids.iter().cloned().collect();
        (g, ids)
    }

    /// The dependency order as a set of ready ids, one id at a time: what
    /// [`Graph::topo_order`] must give.
    fn reference_order(g: &Graph, ids: &BTreeSet<String>) -> Vec<String> {
        let mut indegree: BTreeMap<&str, usize> = ids.iter().map(|i| (i.as_str(), 0)).collect();
        for id in ids {
            for p in g.parents.get(id).into_iter().flatten() {
                if ids.contains(p) {
                    *indegree.get_mut(id.as_str()).unwrap() += 1;
                }
            }
        }
        let mut ready: BTreeSet<&str> = indegree
            .iter()
            .filter(|(_, d)| **d == 0)
            .map(|(i, _)| *i)
            .collect();
        let mut out = Vec::new();
        while let Some(&next) = ready.iter().next() {
            ready.remove(next);
            out.push(next.to_string());
            for c in g.children.get(next).into_iter().flatten() {
                if let Some(d) = indegree.get_mut(c.as_str()) {
                    *d -= 1;
                    if *d == 0 {
                        ready.insert(c.as_str());
                    }
                }
            }
        }
        out
    }

    #[test]
    fn topo_order_is_the_order_of_the_smallest_ready_id() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        for round in 0..50 {
            let (g, ids) = random_graph(&mut rng, 5 + round * 3);
            let mut chosen: BTreeSet<String> =
                ids.iter().filter(|_| rng.below(3) > 0).cloned().collect();
            // Ids the graph does not know come in id order with the others.
            chosen.insert(format!("a.{round}"));
            chosen.insert("z.unknown".to_string());
            let order = g.topo_order(&chosen);
            assert_eq!(order, reference_order(&g, &chosen), "round {round}");
            assert_eq!(order.len(), chosen.len());
        }
    }

    #[test]
    fn a_data_test_holds_back_the_nodes_downstream_of_all_its_dependencies() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for round in 0..30 {
            let (g, ids) = random_graph(&mut rng, 10 + round * 2);
            let nodes: Vec<&str> = ids.iter().map(String::as_str).collect();
            let deps: Vec<Vec<String>> = (0..ids.len())
                .map(|_| {
                    let mut d = vec![ids[rng.below(ids.len())].clone()];
                    if rng.below(4) == 0 {
                        d.push(ids[rng.below(ids.len())].clone());
                    }
                    if rng.below(8) == 0 {
                        d.push("m.missing".to_string());
                    }
                    d
                })
                .collect();
            let tests: Vec<Option<&[String]>> = deps
                .iter()
                .enumerate()
                .map(|(i, d)| (i % 5 != 0).then_some(d.as_slice()))
                .collect();
            let edges = g.data_test_edges(&nodes, &tests);
            // Each node waits for the data tests whose dependencies are all its
            // ancestors, in the tests' order.
            let mut expected = Vec::new();
            for (n, id) in nodes.iter().enumerate() {
                let upstream = g.ancestors(id);
                let waits: Vec<usize> = tests
                    .iter()
                    .enumerate()
                    .filter_map(|(i, t)| {
                        let d = (*t)?;
                        (!d.is_empty() && d.iter().all(|d| upstream.contains(d))).then_some(i)
                    })
                    .collect();
                if !waits.is_empty() {
                    expected.push((n, waits));
                }
            }
            assert_eq!(edges, expected, "round {round}");
        }
    }
}
