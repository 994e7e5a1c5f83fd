//! The dependency graph of a manifest: parent and child edges between unique ids
//! (models, data tests, and sources, which are leaves that never run), cycle
//! detection naming every node on the cycle with its file, dependency order and
//! the extra edges of `build`. Selection (with the tests that come along) is in
//! [`select`]; the selectors of `selectors.yml` in [`spec`]; the previous state
//! of `--state` in [`state`].

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

    /// [`Self::ancestors`] borrowed from the graph, without copying ids.
    fn ancestor_ids<'a>(&'a self, id: &str) -> BTreeSet<&'a str> {
        let mut out = BTreeSet::new();
        let mut queue: Vec<&str> = self
            .parents
            .get(id)
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
        while let Some(cur) = queue.pop() {
            if out.insert(cur) {
                queue.extend(
                    self.parents
                        .get(cur)
                        .into_iter()
                        .flatten()
                        .map(String::as_str),
                );
            }
        }
        out
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
        // The data tests of each node they depend on: a node's candidates are
        // the tests of its ancestors (by position, to keep the manifest's order).
        let mut tests_of: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, t) in manifest.tests.iter().enumerate() {
            if t.unit.is_none() {
                for d in &t.depends_on_nodes {
                    tests_of.entry(d).or_default().push(i);
                }
            }
        }
        for n in &manifest.nodes {
            let upstream = self.ancestor_ids(&n.unique_id);
            let mut candidates: Vec<usize> = upstream
                .iter()
                .filter_map(|a| tests_of.get(a))
                .flatten()
                .copied()
                .collect();
            candidates.sort_unstable();
            candidates.dedup();
            for t in candidates.into_iter().map(|i| &manifest.tests[i]) {
                if !t
                    .depends_on_nodes
                    .iter()
                    .all(|d| upstream.contains(d.as_str()))
                {
                    continue;
                }
                g.parents
                    .entry(n.unique_id.clone())
                    .or_default()
                    .push(t.unique_id.clone());
                g.children
                    .entry(t.unique_id.clone())
                    .or_default()
                    .push(n.unique_id.clone());
            }
        }
        g
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
        let mut indegree: BTreeMap<&str, usize> = ids.iter().map(|i| (i.as_str(), 0)).collect();
        for id in ids {
            for p in self.parents.get(id).map(Vec::as_slice).unwrap_or(&[]) {
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
        let mut out = Vec::with_capacity(ids.len());
        while let Some(&next) = ready.iter().next() {
            ready.remove(next);
            out.push(next.to_string());
            for c in self.children.get(next).map(Vec::as_slice).unwrap_or(&[]) {
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
}
