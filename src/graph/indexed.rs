//! An integer-indexed copy of a [`Graph`] for the passes over the whole graph
//! (dependency order, `build`'s test edges): every id gets its rank in id order,
//! so that edges are plain vectors of numbers and "smallest ready id first" is
//! "smallest number first", with no string compared or copied per edge.

use std::collections::{BTreeSet, BinaryHeap, HashMap};

use super::Graph;

pub(super) struct Indexed<'a> {
    /// Every id of the graph (its ids and both ends of every edge), sorted.
    names: Vec<&'a str>,
    index: HashMap<&'a str, usize>,
    pub(super) parents: Vec<Vec<usize>>,
    pub(super) children: Vec<Vec<usize>>,
}

impl<'a> Indexed<'a> {
    pub(super) fn new(g: &'a Graph) -> Self {
        let mut all: BTreeSet<&str> = g.ids.iter().map(String::as_str).collect();
        for edges in [&g.parents, &g.children] {
            for (id, others) in edges {
                all.insert(id);
                all.extend(others.iter().map(String::as_str));
            }
        }
        let names: Vec<&str> = all.into_iter().collect();
        let index: HashMap<&str, usize> = names.iter().enumerate().map(|(i, n)| (*n, i)).collect();
        let lists = |edges: &std::collections::BTreeMap<String, Vec<String>>| {
            let mut out = vec![Vec::new(); names.len()];
            for (id, others) in edges {
                out[index[id.as_str()]] = others.iter().map(|o| index[o.as_str()]).collect();
            }
            out
        };
        let parents = lists(&g.parents);
        let children = lists(&g.children);
        Indexed {
            names,
            index,
            parents,
            children,
        }
    }

    pub(super) fn index_of(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    pub(super) fn len(&self) -> usize {
        self.names.len()
    }

    /// The ancestors of `i` (through `parents`), each once, in no given order;
    /// `seen` (one flag per id, all false) is left all false.
    pub(super) fn ancestors(&self, i: usize, seen: &mut [bool]) -> Vec<usize> {
        let mut out = Vec::new();
        let mut stack: Vec<usize> = self.parents[i].clone();
        while let Some(cur) = stack.pop() {
            if !seen[cur] {
                seen[cur] = true;
                out.push(cur);
                stack.extend_from_slice(&self.parents[cur]);
            }
        }
        for &a in &out {
            seen[a] = false;
        }
        out
    }

    /// `ids` in an order where every node comes after its parents, ties by id:
    /// [`Graph::topo_order`]. An id that is not in the graph comes when nothing
    /// else is ready, as it has no parents.
    pub(super) fn topo_order(&self, ids: &BTreeSet<String>) -> Vec<String> {
        let mut wanted = vec![false; self.len()];
        // Ids unknown to the graph have no edges: ready from the start.
        let mut strangers: Vec<&str> = Vec::new();
        for id in ids {
            match self.index_of(id) {
                Some(i) => wanted[i] = true,
                None => strangers.push(id),
            }
        }
        let mut indegree = vec![0usize; self.len()];
        for (i, want) in wanted.iter().enumerate() {
            if *want {
                indegree[i] = self.parents[i].iter().filter(|p| wanted[**p]).count();
            }
        }
        let mut ready: BinaryHeap<std::cmp::Reverse<usize>> = (0..self.len())
            .filter(|i| wanted[*i] && indegree[*i] == 0)
            .map(std::cmp::Reverse)
            .collect();
        let mut out = Vec::with_capacity(ids.len());
        // The strangers merge into the order by id, as in a set of ready ids.
        let mut strangers = strangers.into_iter().peekable();
        loop {
            let next = ready.peek().map(|r| r.0);
            match (next, strangers.peek()) {
                (Some(i), Some(s)) if *s < self.names[i] => {
                    out.push(s.to_string());
                    strangers.next();
                }
                (None, Some(s)) => {
                    out.push(s.to_string());
                    strangers.next();
                }
                (Some(i), _) => {
                    ready.pop();
                    out.push(self.names[i].to_string());
                    for &c in &self.children[i] {
                        if wanted[c] {
                            indegree[c] -= 1;
                            if indegree[c] == 0 {
                                ready.push(std::cmp::Reverse(c));
                            }
                        }
                    }
                }
                (None, None) => break,
            }
        }
        out
    }
}
