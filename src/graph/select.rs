//! Node selection, dbt's syntax: `name`, `+name` (ancestors), `name+`
//! (descendants), `2+name`/`name+1` (bounded depth), `tag:x`, `path:models/marts`,
//! `source:raw_stripe[.charges]`, `fqn:a.b.c`, `test_type:generic`,
//! `test_name:unique`, `resource_type:model|seed`, `config.materialized:table`, `*`;
//! space-separated specs are a union, comma-joined ones an intersection;
//! `--exclude` removes.

use std::collections::BTreeSet;

use crate::error::{Error, Result};
use crate::manifest::{Manifest, TestKind};

use super::Graph;

impl Graph {
    /// The ids selected by `select` (all when empty) minus `exclude`.
    pub(crate) fn select(
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
                        TestKind::Generic => "generic",
                        TestKind::Singular => "singular",
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
                if value == "model" || value == "seed" {
                    out.extend(
                        manifest
                            .nodes
                            .iter()
                            .filter(|n| n.resource_type == value)
                            .map(|n| n.unique_id.clone()),
                    );
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
