//! Node selection, dbt's syntax and semantics: `name` or a bare path of the fqn
//! (`marts`, `staging.crm`, `marts.*`), `+name` (ancestors), `name+`
//! (descendants), `2+name`/`name+1` (bounded depth), `@name`, `tag:x`,
//! `path:models/marts`, `file:a.sql`, `source:raw_stripe[.charges]`, `fqn:a.b.c`,
//! `test_type:generic`, `test_name:unique`, `resource_type:model|seed`,
//! `config.<key>:value`, `*`; space-separated specs are a union, comma-joined ones
//! an intersection; `--exclude` removes. [`Graph::unmatched`] names the specs
//! that match nothing, which dbt warns about.
//!
//! `state:` and `result:` compare with a previous invocation's artifacts
//! (`--state`, [`super::state`]).
//!
//! Tests come along as dbt's `--indirect-selection` says: each selector brings
//! the data tests of what it selects — every test with a selected parent
//! (`eager`, the default), only those whose parents are all selected
//! (`cautious`), or whose parents are selected or upstream of the selection
//! (`buildable`), or none (`empty`) — before the union and intersection are
//! taken, which then admit the tests whose parents the combination completes;
//! `--exclude x` also excludes the tests of `x`.

use std::collections::BTreeSet;

use serde_json::Value as Json;

use crate::artifacts;
use crate::error::{Error, Result};
use crate::manifest::{Manifest, NodeKind, TestKind};

use super::spec::{Op, Spec};
use super::state::PreviousState;
use super::Graph;
use crate::cli::IndirectSelection;

/// What a selection is evaluated against besides the project: the
/// `--indirect-selection` mode of the command line and the previous state of
/// `--state`; and the state `--defer` resolves unselected refs to.
#[derive(Debug, Clone, Default)]
pub(crate) struct Against {
    pub(crate) indirect: IndirectSelection,
    pub(crate) state: Option<std::sync::Arc<PreviousState>>,
    /// `--defer`: the state to defer to (`--defer-state`, else `--state`) and
    /// whether `--favor-state` prefers it even where this target has the relation.
    pub(crate) defer: Option<(std::sync::Arc<PreviousState>, bool)>,
    /// This invocation's `manifest.json`, made once when a `state:` selector
    /// first needs it.
    current: std::sync::OnceLock<Json>,
}

impl Against {
    pub(crate) fn new(
        indirect: IndirectSelection,
        state: Option<std::sync::Arc<PreviousState>>,
        defer: Option<(std::sync::Arc<PreviousState>, bool)>,
    ) -> Against {
        Against {
            indirect,
            state,
            defer,
            current: std::sync::OnceLock::new(),
        }
    }

    fn state(&self, method: &str, value: &str) -> Result<&PreviousState> {
        self.state.as_deref().ok_or_else(|| {
            Error::usage(format!(
                "{method}:{value} compares with a previous run: add --state <DIR> (the target/ directory of that run)"
            ))
        })
    }
}

/// What one selector picks: the nodes it selects (with the tests that come
/// along), and the tests still waiting for more of their parents (cautious and
/// buildable modes), which a union or intersection may complete.
#[derive(Debug, Default, Clone)]
struct Picked {
    direct: BTreeSet<String>,
    indirect: BTreeSet<String>,
}

impl Graph {
    /// The ids selected by `select` (all when empty) minus `exclude`, with the
    /// data tests each selector brings along.
    pub(crate) fn select(
        &self,
        manifest: &Manifest,
        select: &[String],
        exclude: &[String],
        against: &Against,
    ) -> Result<BTreeSet<String>> {
        let specs = |args: &[String]| -> Vec<String> {
            args.iter()
                .flat_map(|a| a.split_whitespace().map(str::to_string))
                .collect()
        };
        let wanted = specs(select);
        let chosen: BTreeSet<String> = if wanted.is_empty() {
            self.ids.clone()
        } else {
            self.union(manifest, &wanted, against)?.direct
        };
        let excluded = self.union(manifest, &specs(exclude), against)?.direct;
        // The difference itself is eager (dbt's): it admits no waiting test.
        Ok(chosen.difference(&excluded).cloned().collect())
    }

    /// The ids a `selectors.yml` definition selects: each criterion with the
    /// tests it brings along (its own `indirect_selection`, else the command
    /// line's), then unions, intersections, differences (eager, as dbt's).
    pub(crate) fn select_spec(
        &self,
        manifest: &Manifest,
        spec: &Spec,
        against: &Against,
    ) -> Result<BTreeSet<String>> {
        Ok(self.pick_spec(manifest, spec, against)?.direct)
    }

    fn pick_spec(&self, manifest: &Manifest, spec: &Spec, against: &Against) -> Result<Picked> {
        match spec {
            Spec::Criteria(c) => self.one(manifest, &c.selector(), c.indirect, against),
            Spec::Group { op, components, .. } => {
                let parts = components
                    .iter()
                    .map(|c| self.pick_spec(manifest, c, against))
                    .collect::<Result<Vec<_>>>()?;
                Ok(self.combine(manifest, *op, parts, IndirectSelection::Eager))
            }
        }
    }

    /// The selectors of `specs` (each space-separated one: an intersection such as
    /// `tag:x,path:y` counts as one) that match no node, which dbt warns about.
    pub(crate) fn unmatched(
        &self,
        manifest: &Manifest,
        specs: &[String],
        against: &Against,
    ) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for arg in specs {
            for spec in arg.split_whitespace() {
                if self
                    .intersection(manifest, spec, against)?
                    .direct
                    .is_empty()
                {
                    out.push(spec.to_string());
                }
            }
        }
        Ok(out)
    }

    /// The union of space-separated selectors of the command line.
    fn union(&self, manifest: &Manifest, specs: &[String], against: &Against) -> Result<Picked> {
        let parts = specs
            .iter()
            .map(|spec| self.intersection(manifest, spec, against))
            .collect::<Result<Vec<_>>>()?;
        Ok(self.combine(manifest, Op::Union, parts, against.indirect))
    }

    fn intersection(&self, manifest: &Manifest, spec: &str, against: &Against) -> Result<Picked> {
        let parts = spec
            .split(',')
            .filter(|p| !p.is_empty())
            .map(|p| self.one(manifest, p, against.indirect, against))
            .collect::<Result<Vec<_>>>()?;
        if parts.is_empty() {
            return Err(Error::usage(format!("empty selector '{spec}'")));
        }
        Ok(self.combine(manifest, Op::Intersection, parts, against.indirect))
    }

    /// A union, intersection or difference of picks: of what they select, and
    /// of what they select or hold waiting; then the waiting tests whose parents
    /// the result completes (cautious, buildable) join it.
    fn combine(
        &self,
        manifest: &Manifest,
        op: Op,
        parts: Vec<Picked>,
        mode: IndirectSelection,
    ) -> Picked {
        let fold = |sets: Vec<BTreeSet<String>>| -> BTreeSet<String> {
            let mut sets = sets.into_iter();
            let Some(first) = sets.next() else {
                return BTreeSet::new();
            };
            sets.fold(first, |acc, s| match op {
                Op::Union => acc.union(&s).cloned().collect(),
                Op::Intersection => acc.intersection(&s).cloned().collect(),
                Op::Difference => acc.difference(&s).cloned().collect(),
            })
        };
        let direct = fold(parts.iter().map(|p| p.direct.clone()).collect());
        let indirect = fold(
            parts
                .into_iter()
                .map(|p| p.direct.union(&p.indirect).cloned().collect())
                .collect(),
        );
        let mut picked = Picked { direct, indirect };
        if picked.direct == picked.indirect {
            return picked;
        }
        let reach = match mode {
            IndirectSelection::Cautious => picked.direct.clone(),
            IndirectSelection::Buildable => self.with_ancestors(&picked.direct),
            IndirectSelection::Eager | IndirectSelection::Empty => return picked,
        };
        let complete: Vec<String> = picked
            .indirect
            .iter()
            .filter(|id| manifest.node(id).is_some() || manifest.test(id).is_some())
            .filter(|id| manifest.depends_on(id).iter().all(|d| reach.contains(d)))
            .cloned()
            .collect();
        picked.direct.extend(complete);
        picked
    }

    /// `ids` and all their ancestors.
    fn with_ancestors(&self, ids: &BTreeSet<String>) -> BTreeSet<String> {
        let mut out = ids.clone();
        for id in ids {
            out.extend(self.ancestors(id));
        }
        out
    }

    /// One selector with its optional graph operators, and the tests of what it
    /// selects.
    fn one(
        &self,
        manifest: &Manifest,
        spec: &str,
        mode: IndirectSelection,
        against: &Against,
    ) -> Result<Picked> {
        let (at, spec) = match spec.strip_prefix('@') {
            Some(rest) => (true, rest),
            None => (false, spec),
        };
        let (up, rest) = graph_op_prefix(spec);
        let (body, down) = graph_op_suffix(rest);
        let mut base = self.method(manifest, body, against)?;
        let mut extra = BTreeSet::new();
        for id in &base {
            if at {
                let below = self.descendants(id);
                for d in below.iter().chain(std::iter::once(id)) {
                    extra.extend(self.ancestors(d));
                }
                extra.extend(below);
            }
            if let Some(depth) = up {
                extra.extend(self.reach(id, &self.parents, depth));
            }
            if let Some(depth) = down {
                extra.extend(self.reach(id, &self.children, depth));
            }
        }
        base.extend(extra);
        Ok(self.expand(manifest, base, mode))
    }

    /// The tests that come along with `selected`: a test with a selected parent
    /// joins when the mode admits it, else waits (cautious, buildable).
    fn expand(
        &self,
        manifest: &Manifest,
        selected: BTreeSet<String>,
        mode: IndirectSelection,
    ) -> Picked {
        let mut picked = Picked {
            direct: selected,
            indirect: BTreeSet::new(),
        };
        if mode == IndirectSelection::Empty {
            return picked;
        }
        let buildable = (mode == IndirectSelection::Buildable).then(|| {
            let mut reach = self.with_ancestors(&picked.direct);
            reach.extend(manifest.sources.iter().map(|s| s.unique_id.clone()));
            reach
        });
        for t in &manifest.tests {
            let parents = &t.depends_on_nodes;
            if picked.direct.contains(&t.unique_id)
                || !parents.iter().any(|d| picked.direct.contains(d))
            {
                continue;
            }
            let all_in = |set: &BTreeSet<String>| parents.iter().all(|d| set.contains(d));
            if mode == IndirectSelection::Eager
                || all_in(&picked.direct)
                || buildable.as_ref().is_some_and(all_in)
            {
                picked.direct.insert(t.unique_id.clone());
            } else {
                picked.indirect.insert(t.unique_id.clone());
            }
        }
        picked
    }

    fn method(
        &self,
        manifest: &Manifest,
        body: &str,
        against: &Against,
    ) -> Result<BTreeSet<String>> {
        let (method, value) = match body.split_once(':') {
            Some((m, v)) => (m, v),
            None if body.contains('/') => ("path", body),
            None if [".sql", ".py", ".csv"]
                .iter()
                .any(|ext| body.to_ascii_lowercase().ends_with(ext)) =>
            {
                ("file", body)
            }
            None => ("fqn", body),
        };
        let mut out = BTreeSet::new();
        // Models and tests: the nodes that are not sources.
        let non_sources = manifest
            .nodes
            .iter()
            .map(|n| (&n.unique_id, &n.fqn, n.original_file_path.as_str()))
            .chain(
                manifest
                    .tests
                    .iter()
                    .map(|t| (&t.unique_id, &t.fqn, t.original_file_path.as_str())),
            );
        match method {
            "fqn" => {
                for (id, fqn, _) in non_sources {
                    let versioned = manifest.node(id).is_some_and(|n| n.version.is_some());
                    if (versioned && version_matches(fqn, value))
                        || fqn_matches(fqn, value)
                        || fqn_matches(&fqn[1..], value)
                    {
                        out.insert(id.clone());
                    }
                }
            }
            "package" => {
                // `this` is the root project; ids are `<type>.<package>.…`.
                let want = if value == "this" {
                    manifest.project_name.as_str()
                } else {
                    value
                };
                let ids = non_sources
                    .map(|(id, _, _)| id)
                    .chain(manifest.sources.iter().map(|s| &s.unique_id));
                for id in ids {
                    if id.split('.').nth(1).is_some_and(|p| glob(want, p)) {
                        out.insert(id.clone());
                    }
                }
            }
            "file" => {
                for (id, _, path) in non_sources {
                    let file = path.rsplit('/').next().unwrap_or(path);
                    let stem = file.rsplit_once('.').map(|(s, _)| s).unwrap_or(file);
                    if glob(value, file) || glob(value, stem) {
                        out.insert(id.clone());
                    }
                }
            }
            "path" => {
                let want = value.trim_start_matches("./").trim_end_matches('/');
                let under = |p: &str| {
                    let mut cur = Some(p);
                    while let Some(c) = cur {
                        if glob(want, c) {
                            return true;
                        }
                        cur = c.rsplit_once('/').map(|(parent, _)| parent);
                    }
                    false
                };
                for n in &manifest.nodes {
                    let patch = n.patch_path.as_deref().and_then(|p| p.split_once("://"));
                    if under(&n.original_file_path) || patch.is_some_and(|(_, f)| glob(want, f)) {
                        out.insert(n.unique_id.clone());
                    }
                }
                for t in &manifest.tests {
                    if under(&t.original_file_path) {
                        out.insert(t.unique_id.clone());
                    }
                }
                for s in &manifest.sources {
                    if under(&s.table.file) {
                        out.insert(s.unique_id.clone());
                    }
                }
            }
            "test_type" => {
                for t in &manifest.tests {
                    let kind = match t.kind {
                        TestKind::Generic => "generic",
                        TestKind::Singular => "singular",
                        TestKind::Unit => "unit",
                    };
                    // `data`: every data test (generic and singular), as in dbt
                    // 1.8+; `schema` is generic's older name.
                    let data = value == "data" && kind != "unit";
                    if kind == value || data || (value == "schema" && kind == "generic") {
                        out.insert(t.unique_id.clone());
                    }
                }
            }
            "test_name" => {
                for t in &manifest.tests {
                    if t.test_name.as_deref().is_some_and(|n| glob(value, n)) {
                        out.insert(t.unique_id.clone());
                    }
                }
            }
            "tag" => {
                for n in &manifest.nodes {
                    if n.tags.iter().any(|t| glob(value, t)) {
                        out.insert(n.unique_id.clone());
                    }
                }
                for t in &manifest.tests {
                    if t.tags.iter().any(|x| glob(value, x)) {
                        out.insert(t.unique_id.clone());
                    }
                }
                for s in &manifest.sources {
                    if s.tags().iter().any(|x| glob(value, x)) {
                        out.insert(s.unique_id.clone());
                    }
                }
            }
            "source" => {
                let parts: Vec<&str> = value.split('.').collect();
                for s in &manifest.sources {
                    let t = &s.table;
                    let hit = match parts.as_slice() {
                        [src] => glob(src, &t.source_name),
                        [src, table] => glob(src, &t.source_name) && glob(table, &t.name),
                        [pkg, src, table] => {
                            s.unique_id.split('.').nth(1).is_some_and(|p| glob(pkg, p))
                                && glob(src, &t.source_name)
                                && glob(table, &t.name)
                        }
                        _ => false,
                    };
                    if hit {
                        out.insert(s.unique_id.clone());
                    }
                }
            }
            "exposure" | "metric" | "semantic_model" | "saved_query" => {
                // By name (or a glob of it), as dbt's exposure:/metric:/… methods.
                let names = manifest
                    .exposures
                    .iter()
                    .map(|x| (NodeKind::Exposure, &x.unique_id, &x.name))
                    .chain(manifest.semantic.iter().map(|x| (x.kind, &x.unique_id, &x.name)));
                for (kind, id, name) in names {
                    let bare = value.rsplit('.').next().unwrap_or(value);
                    if kind.as_str() == method && (glob(value, name) || glob(bare, name)) {
                        out.insert(id.clone());
                    }
                }
            }
            "resource_type" => {
                let kind = match value {
                    "model" => Some(NodeKind::Model),
                    "source" => Some(NodeKind::Source),
                    "test" => Some(NodeKind::Test),
                    "unit_test" => Some(NodeKind::UnitTest),
                    "seed" => Some(NodeKind::Seed),
                    "snapshot" => Some(NodeKind::Snapshot),
                    "analysis" => Some(NodeKind::Analysis),
                    "exposure" => Some(NodeKind::Exposure),
                    "metric" => Some(NodeKind::Metric),
                    "semantic_model" => Some(NodeKind::SemanticModel),
                    "saved_query" => Some(NodeKind::SavedQuery),
                    _ => None,
                };
                out.extend(
                    self.ids
                        .iter()
                        .filter(|id| kind.is_some() && manifest.kind(id) == kind)
                        .cloned(),
                );
            }
            "state" => {
                let state = against.state(method, value)?;
                let current = against
                    .current
                    .get_or_init(|| artifacts::manifest_json(manifest, ""));
                let hits = state.state_method(current, value)?;
                out.extend(hits.into_iter().filter(|id| self.ids.contains(id)));
            }
            "result" => {
                let hits = against.state(method, value)?.result_method(value)?;
                out.extend(hits.into_iter().filter(|id| self.ids.contains(id)));
            }
            m if m.starts_with("config.") => {
                let key = &m["config.".len()..];
                let configs = manifest
                    .nodes
                    .iter()
                    .map(|n| (&n.unique_id, artifacts::model_config(n)))
                    .chain(
                        manifest
                            .tests
                            .iter()
                            .map(|t| (&t.unique_id, artifacts::test_config(t))),
                    )
                    .chain(
                        manifest
                            .sources
                            .iter()
                            .map(|s| (&s.unique_id, artifacts::source_config(s))),
                    );
                for (id, config) in configs {
                    if config.get(key).is_some_and(|v| config_matches(v, value)) {
                        out.insert(id.clone());
                    }
                }
            }
            other => {
                return Err(Error::usage(format!(
                    "unknown selector method '{other}:' in '{body}'; use a node name, tag:, path:, file:, source:, exposure:, metric:, semantic_model:, saved_query:, fqn:, resource_type:, test_type:, test_name:, config.<key>:, state: or result:"
                )))
            }
        }
        Ok(out)
    }
}

/// A versioned model (fqn `[…, name, v<version>]`) is selected by its name, and by
/// `name.v1` or `name_v1`, as dbt matches it.
fn version_matches(fqn: &[String], selector: &str) -> bool {
    let n = fqn.len();
    if n < 2 {
        return false;
    }
    if fqn[n - 2] == selector {
        return true;
    }
    let parts: Vec<&str> = selector.split('.').collect();
    let tail = parts[parts.len().saturating_sub(2)..].join("_");
    fqn[n - 2..].join("_") == tail
}

/// dbt's fqn match: the selector's dot-separated parts match the fqn's first
/// parts (a wildcard part matches the rest as a glob), or the selector is the
/// node's name.
fn fqn_matches(fqn: &[String], selector: &str) -> bool {
    if fqn.last().is_some_and(|n| n == selector) {
        return true;
    }
    let flat: Vec<&str> = fqn.iter().flat_map(|s| s.split('.')).collect();
    let parts: Vec<&str> = selector.split('.').collect();
    if flat.len() < parts.len() {
        return false;
    }
    for (i, part) in parts.iter().enumerate() {
        if part.contains(['*', '?', '[', ']']) {
            return glob(&parts[i..].join("."), &flat[i..].join("."));
        }
        if flat[i] != *part {
            return false;
        }
    }
    true
}

/// A config value against a selector value: strings and other scalars by their
/// text, lists by any item.
fn config_matches(v: &Json, want: &str) -> bool {
    match v {
        Json::String(s) => s == want,
        Json::Array(items) => items.iter().any(|i| config_matches(i, want)),
        Json::Bool(b) => want.eq_ignore_ascii_case(if *b { "true" } else { "false" }),
        Json::Number(n) => n.to_string() == want,
        _ => false,
    }
}

/// Shell-style matching as Python's `fnmatch`: `*`, `?`, `[abc]`, `[!abc]`.
pub(super) fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    fn class(p: &[char], c: char) -> Option<(bool, usize)> {
        // Returns (matched, length of the class in p) for p starting at '['.
        let mut i = 1;
        let negate = matches!(p.get(i), Some('!'));
        if negate {
            i += 1;
        }
        let start = i;
        let mut hit = false;
        while i < p.len() && (p[i] != ']' || i == start) {
            if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
                if p[i] <= c && c <= p[i + 2] {
                    hit = true;
                }
                i += 3;
            } else {
                if p[i] == c {
                    hit = true;
                }
                i += 1;
            }
        }
        if i >= p.len() {
            return None; // no closing bracket: a literal '['
        }
        Some((hit != negate, i + 1))
    }
    fn go(p: &[char], t: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('*') => (0..=t.len()).any(|k| go(&p[1..], &t[k..])),
            Some('?') => !t.is_empty() && go(&p[1..], &t[1..]),
            Some('[') => match (t.first(), class(p, t.first().copied().unwrap_or('\0'))) {
                (Some(_), Some((hit, len))) => hit && go(&p[len..], &t[1..]),
                (None, _) => false,
                (Some(c), None) => *c == '[' && go(&p[1..], &t[1..]),
            },
            Some(c) => t.first() == Some(c) && go(&p[1..], &t[1..]),
        }
    }
    go(&p, &t)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("*", "anything"));
        assert!(glob("stg_*", "stg_orders"));
        assert!(!glob("stg_?", "stg_ab"));
        assert!(glob("[ab]x", "bx"));
        assert!(glob("[!ab]x", "cx"));
        assert!(glob("models/staging", "models/staging"));
    }

    #[test]
    fn fqn_prefixes() {
        let fqn: Vec<String> = ["p", "marts", "sales", "x"].map(String::from).to_vec();
        assert!(fqn_matches(&fqn, "x"));
        assert!(fqn_matches(&fqn[1..], "marts"));
        assert!(fqn_matches(&fqn[1..], "marts.sales"));
        assert!(fqn_matches(&fqn, "p.marts.*"));
        assert!(!fqn_matches(&fqn[1..], "sales"));
        let v: Vec<String> = ["p", "core", "members", "v1"].map(String::from).to_vec();
        assert!(version_matches(&v, "members"));
        assert!(version_matches(&v, "members.v1"));
        assert!(version_matches(&v, "members_v1"));
        assert!(!version_matches(&v, "members.v2"));
    }
}
