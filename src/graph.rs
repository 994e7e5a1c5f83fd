//! The dependency graph of a manifest and node selection.
//!
//! Nodes are models and sources (sources are leaves that never run). The graph
//! rejects cycles, naming every node on the cycle with its file, and answers
//! dbt-style selection: `name`, `+name` (ancestors), `name+` (descendants),
//! `2+name`/`name+1` (bounded depth), `tag:x`, `path:models/marts`,
//! `source:raw_stripe[.charges]`, `fqn:a.b.c`, `test_type:generic`, `*`;
//! space-separated specs are a union, comma-joined ones an intersection;
//! `--exclude` removes. Data tests come along with the nodes they test.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::error::{Error, Result};
use crate::manifest::Manifest;

/// Parent and child edges between unique ids.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    /// Every unique id (models and sources).
    pub ids: BTreeSet<String>,
    pub parents: BTreeMap<String, Vec<String>>,
    pub children: BTreeMap<String, Vec<String>>,
}

impl Graph {
    /// Builds the graph of `manifest`, failing on a dependency cycle.
    pub fn build(manifest: &Manifest) -> Result<Graph> {
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
        let edges = manifest
            .nodes
            .iter()
            .map(|n| (&n.unique_id, &n.depends_on_nodes))
            .chain(
                manifest
                    .tests
                    .iter()
                    .map(|t| (&t.unique_id, &t.depends_on_nodes)),
            );
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

    pub fn ancestors(&self, id: &str) -> BTreeSet<String> {
        self.reach(id, &self.parents, None)
    }

    pub fn descendants(&self, id: &str) -> BTreeSet<String> {
        self.reach(id, &self.children, None)
    }

    /// The graph `build` runs: each data test also precedes the children of the
    /// node it tests, so a failing test skips them (dbt's semantics). An edge that
    /// would close a cycle (a child the test itself depends on) is left out.
    pub fn for_build(&self, manifest: &Manifest) -> Graph {
        let mut g = self.clone();
        for t in &manifest.tests {
            let Some(attached) = &t.attached_node else {
                continue;
            };
            let ancestors = self.ancestors(&t.unique_id);
            for child in self.children.get(attached).cloned().unwrap_or_default() {
                if child.starts_with("test.") || ancestors.contains(&child) || child == t.unique_id
                {
                    continue;
                }
                g.parents
                    .entry(child.clone())
                    .or_default()
                    .push(t.unique_id.clone());
                g.children
                    .entry(t.unique_id.clone())
                    .or_default()
                    .push(child);
            }
        }
        g
    }

    /// Adds the data tests whose every parent is selected or is a source
    /// ("buildable" indirect selection would be stricter; this is dbt's default
    /// "eager": a test comes along when any parent it tests is selected).
    pub fn with_tests(
        &self,
        manifest: &Manifest,
        selected: &BTreeSet<String>,
        excluded: &BTreeSet<String>,
    ) -> BTreeSet<String> {
        let mut out = selected.clone();
        for t in &manifest.tests {
            if excluded.contains(&t.unique_id) {
                continue;
            }
            if t.depends_on_nodes.iter().any(|d| selected.contains(d)) {
                out.insert(t.unique_id.clone());
            }
        }
        out
    }

    /// `ids` in an order where every node comes after its parents (ties by id).
    pub fn topo_order(&self, ids: &BTreeSet<String>) -> Vec<String> {
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

    /// The ids selected by `select` (all when empty) minus `exclude`.
    pub fn select(
        &self,
        manifest: &Manifest,
        select: &[String],
        exclude: &[String],
    ) -> Result<BTreeSet<String>> {
        let mut chosen: BTreeSet<String> = if select.iter().all(|s| s.trim().is_empty()) {
            self.ids.clone()
        } else {
            let mut acc = BTreeSet::new();
            for arg in select {
                for spec in arg.split_whitespace() {
                    acc.extend(self.intersection(manifest, spec)?);
                }
            }
            acc
        };
        for arg in exclude {
            for spec in arg.split_whitespace() {
                for id in self.intersection(manifest, spec)? {
                    chosen.remove(&id);
                }
            }
        }
        Ok(chosen)
    }

    fn intersection(&self, manifest: &Manifest, spec: &str) -> Result<BTreeSet<String>> {
        let mut parts = spec.split(',').filter(|p| !p.is_empty());
        let first = parts
            .next()
            .ok_or_else(|| Error::usage(format!("empty selector '{spec}'")))?;
        let mut acc = self.one(manifest, first)?;
        for p in parts {
            let other = self.one(manifest, p)?;
            acc = acc.intersection(&other).cloned().collect();
        }
        Ok(acc)
    }

    /// One selector with its optional graph operators.
    fn one(&self, manifest: &Manifest, spec: &str) -> Result<BTreeSet<String>> {
        let (up, rest) = graph_op_prefix(spec);
        let (body, down) = graph_op_suffix(rest);
        let mut base = self.method(manifest, body)?;
        let mut extra = BTreeSet::new();
        for id in &base {
            if let Some(depth) = up {
                extra.extend(self.reach(id, &self.parents, depth));
            }
            if let Some(depth) = down {
                extra.extend(self.reach(id, &self.children, depth));
            }
        }
        base.extend(extra);
        Ok(base)
    }

    fn method(&self, manifest: &Manifest, body: &str) -> Result<BTreeSet<String>> {
        let (method, value) = match body.split_once(':') {
            Some((m, v)) => (m, v),
            None => ("", body),
        };
        let mut out = BTreeSet::new();
        match method {
            "" | "fqn" => {
                for n in &manifest.nodes {
                    let fqn = n.fqn.join(".");
                    if value == "*" || n.name == value || fqn == value || fqn.ends_with(&format!(".{value}")) {
                        out.insert(n.unique_id.clone());
                    }
                }
                for t in &manifest.tests {
                    if value == "*" || t.name == value {
                        out.insert(t.unique_id.clone());
                    }
                }
            }
            "test_type" => {
                for t in &manifest.tests {
                    let kind = match t.kind {
                        crate::manifest::TestKind::Generic => "generic",
                        crate::manifest::TestKind::Singular => "singular",
                    };
                    if kind == value || (value == "data" && kind == "singular") {
                        out.insert(t.unique_id.clone());
                    }
                }
            }
            "test_name" => {
                for t in &manifest.tests {
                    if t.test_name.as_deref() == Some(value) {
                        out.insert(t.unique_id.clone());
                    }
                }
            }
            "tag" => {
                for n in &manifest.nodes {
                    if n.tags.iter().any(|t| t == value) {
                        out.insert(n.unique_id.clone());
                    }
                }
                for t in &manifest.tests {
                    if t.tags.iter().any(|x| x == value) {
                        out.insert(t.unique_id.clone());
                    }
                }
            }
            "path" => {
                let want = value.trim_end_matches('/');
                for n in &manifest.nodes {
                    let p = n.original_file_path.as_str();
                    if p == want || p.starts_with(&format!("{want}/")) {
                        out.insert(n.unique_id.clone());
                    }
                }
            }
            "source" => {
                for s in &manifest.sources {
                    let full = format!("{}.{}", s.table.source_name, s.table.name);
                    if value == "*" || s.table.source_name == value || full == value {
                        out.insert(s.unique_id.clone());
                    }
                }
            }
            "resource_type" => {
                if value == "model" {
                    out.extend(manifest.nodes.iter().map(|n| n.unique_id.clone()));
                } else if value == "source" {
                    out.extend(manifest.sources.iter().map(|s| s.unique_id.clone()));
                } else if value == "test" {
                    out.extend(manifest.tests.iter().map(|t| t.unique_id.clone()));
                }
            }
            "config.materialized" => {
                for n in &manifest.nodes {
                    if n.materialized.as_str() == value {
                        out.insert(n.unique_id.clone());
                    }
                }
            }
            other => {
                return Err(Error::usage(format!(
                    "unknown selector method '{other}:' in '{body}'; use a node name, tag:, path:, source:, fqn:, resource_type:, test_type:, test_name: or config.materialized:"
                )))
            }
        }
        Ok(out)
    }
}

/// `+x`, `2+x` → (Some(depth), "x").
fn graph_op_prefix(spec: &str) -> (Option<Option<usize>>, &str) {
    let digits = spec
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(spec.len());
    if spec[digits..].starts_with('+') {
        let depth = spec[..digits].parse::<usize>().ok();
        return (Some(depth), &spec[digits + 1..]);
    }
    (None, spec)
}

/// `x+`, `x+1` → ("x", Some(depth)).
fn graph_op_suffix(spec: &str) -> (&str, Option<Option<usize>>) {
    if let Some(pos) = spec.rfind('+') {
        let tail = &spec[pos + 1..];
        if tail.chars().all(|c| c.is_ascii_digit()) {
            return (&spec[..pos], Some(tail.parse::<usize>().ok()));
        }
    }
    (spec, None)
}
