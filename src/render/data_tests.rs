//! Data tests: generic tests declared in YAML (entries, dbt's names and ids,
//! arguments that are relations), singular tests from the test paths, and the
//! SQL of each test (the query returning its failing rows).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use minijinja::Value;
use serde_json::{Map, Value as Json};

use crate::error::{Error, Result};
use crate::manifest::{Manifest, TestKind, TestNode};
use crate::project::{merge_config, tree_config, Project, Resource};

use super::context::{Calls, Phase};
use super::parse::tags_of;
use super::{template_error, Relation, Renderer};

impl Renderer {
    /// Data tests: generic ones from the YAML of enabled models and of sources,
    /// singular ones from the test paths.
    pub(super) fn build_tests(
        &self,
        project: &Project,
        manifest: &Manifest,
    ) -> Result<Vec<TestNode>> {
        let mut tests: Vec<TestNode> = Vec::new();
        let base_config = tree_config(
            Resource::DataTest,
            &project.tests_config,
            &project.name,
            &[],
        );
        for node in &manifest.nodes {
            let props = match node.resource_type {
                "seed" => project.seed_props.get(&node.name),
                _ => project.model_props.get(&node.name),
            };
            let Some(props) = props else {
                continue;
            };
            let mut entries: Vec<(Option<String>, &Json)> =
                props.tests.iter().map(|t| (None, t)).collect();
            for c in &props.columns {
                entries.extend(c.tests.iter().map(|t| (Some(c.name.clone()), t)));
            }
            for (column, entry) in entries {
                let t = self.generic_test(
                    project,
                    &base_config,
                    &props.file,
                    entry,
                    column,
                    &node.name,
                    &node.unique_id,
                    false,
                )?;
                tests.push(t);
            }
        }
        for s in &manifest.sources {
            let mut entries: Vec<(Option<String>, &Json)> =
                s.table.tests.iter().map(|t| (None, t)).collect();
            for c in &s.table.columns {
                entries.extend(c.tests.iter().map(|t| (Some(c.name.clone()), t)));
            }
            let target = format!("{}_{}", s.table.source_name, s.table.name);
            for (column, entry) in entries {
                let t = self.generic_test(
                    project,
                    &base_config,
                    &s.table.file,
                    entry,
                    column,
                    &target,
                    &s.unique_id,
                    true,
                )?;
                tests.push(t);
            }
        }
        for f in &project.singular_tests {
            let calls = Calls::new(Phase::Parse);
            let ctx = self.singular_test_context(
                &calls,
                &f.name,
                &f.original_file_path,
                base_config.clone(),
            );
            let tmpl = self
                .env
                .get_template(&f.original_file_path)
                .map_err(|e| template_error(&e, &f.original_file_path))?;
            tmpl.render(ctx)
                .map_err(|e| template_error(&e, &f.original_file_path))?;
            let mut config = base_config.clone();
            for (k, v) in calls.config.lock().unwrap().iter() {
                merge_config(&mut config, k, v.clone());
            }
            if config.get("enabled").and_then(Json::as_bool) == Some(false) {
                continue;
            }
            let depends_on_nodes = self.deps_of(project, &calls, &f.original_file_path)?;
            tests.push(TestNode {
                unique_id: format!("test.{}.{}", project.name, f.name),
                name: f.name.clone(),
                kind: TestKind::Singular,
                original_file_path: f.original_file_path.clone(),
                fqn: vec![project.name.clone(), f.name.clone()],
                test_name: None,
                kwargs: Map::new(),
                column_name: None,
                attached_node: None,
                tags: tags_of(&config),
                config,
                depends_on_nodes,
                depends_on_macros: Vec::new(),
                raw_code: f.content.clone(),
                compiled_code: None,
            });
        }
        let mut seen = BTreeSet::new();
        for t in &tests {
            if !seen.insert(t.unique_id.clone()) {
                return Err(Error::in_file(
                    t.original_file_path.to_string(),
                    format!(
                        "two data tests are both named '{}'; give one a `name:`",
                        t.name
                    ),
                ));
            }
        }
        Ok(tests)
    }

    /// The render context of a singular test: `this` and `model` name the test.
    pub(super) fn singular_test_context(
        &self,
        calls: &Arc<Calls>,
        name: &str,
        file: &str,
        config: Map<String, Json>,
    ) -> Value {
        let this = Relation {
            database: self.shared.database.clone(),
            schema: self.shared.target_schema.clone(),
            identifier: name.to_string(),
            filter: None,
        };
        let model =
            serde_json::json!({"name": name, "resource_type": "test", "original_file_path": file});
        self.context(calls, this, config, model)
    }

    /// One generic test entry of a YAML file, on a model or a source table.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn generic_test(
        &self,
        project: &Project,
        base_config: &Map<String, Json>,
        file: &str,
        entry: &Json,
        column: Option<String>,
        target_name: &str,
        attached: &str,
        on_source: bool,
    ) -> Result<TestNode> {
        let (test_name, mut kwargs, yaml_config, custom_name) =
            parse_test_entry(entry, file, target_name)?;
        let macro_name = format!("test_{test_name}");
        if !self.macros.contains_key(&macro_name) {
            return Err(Error::in_file(file.to_string(), format!("unknown data test '{test_name}' on {target_name}{}; use unique, not_null, accepted_values, relationships or define `{{% test {test_name}(model, …) %}}` in the macro paths", column.as_deref().map(|c| format!(".{c}")).unwrap_or_default())));
        }
        if let Some(c) = &column {
            kwargs.insert("column_name".into(), Json::String(c.clone()));
        }
        let mut config = base_config.clone();
        for (k, v) in yaml_config {
            merge_config(&mut config, &k, v);
        }
        let name = custom_name
            .unwrap_or_else(|| generic_test_name(on_source, &test_name, target_name, &kwargs));
        // Arguments such as `to: ref('x')` add dependencies.
        let calls = Calls::new(Phase::Parse);
        for v in kwargs.values() {
            self.eval_arg(v, &calls).map_err(|e| {
                Error::in_file(
                    file.to_string(),
                    format!("test {name}: {}", e.detail().unwrap_or("invalid argument")),
                )
            })?;
        }
        let mut depends_on_nodes = vec![attached.to_string()];
        for d in self.deps_of(project, &calls, file)? {
            if !depends_on_nodes.contains(&d) {
                depends_on_nodes.push(d);
            }
        }
        let hash = short_hash(&format!(
            "{file}\u{0}{name}\u{0}{}",
            Json::Object(kwargs.clone())
        ));
        Ok(TestNode {
            unique_id: format!("test.{}.{name}.{hash}", project.name),
            name: name.clone(),
            kind: TestKind::Generic,
            original_file_path: file.to_string(),
            fqn: vec![project.name.clone(), name.clone()],
            test_name: Some(test_name),
            column_name: column,
            attached_node: Some(attached.to_string()),
            tags: tags_of(&config),
            config,
            depends_on_nodes,
            depends_on_macros: vec![format!("macro.{}.{macro_name}", project.name)],
            raw_code: String::new(),
            compiled_code: None,
            kwargs,
        })
    }

    /// A test argument: `ref('x')`/`source('a','b')` strings become relations
    /// (recording the dependency), everything else stays data.
    pub(super) fn eval_arg(
        &self,
        v: &Json,
        calls: &Arc<Calls>,
    ) -> std::result::Result<Value, minijinja::Error> {
        if let Json::String(text) = v {
            let t = text.trim();
            if (t.starts_with("ref(") || t.starts_with("source(")) && t.ends_with(')') {
                let expr = self.env.compile_expression(t)?;
                return expr.eval(
                    minijinja::context! { __calls => Value::from_dyn_object(calls.clone()) },
                );
            }
        }
        Ok(Value::from(minijinja::value::Serde(v)))
    }

    /// Renders the SQL of a data test (the query returning failing rows).
    pub(crate) fn compile_test(&self, t: &TestNode, manifest: &Manifest) -> Result<String> {
        let calls = Calls::new(Phase::Compile);
        let err = |e: minijinja::Error| match t.kind {
            TestKind::Singular => template_error(&e, &t.original_file_path),
            TestKind::Generic => Error::in_file(
                t.original_file_path.to_string(),
                format!(
                    "test {}: {}",
                    t.name,
                    e.detail()
                        .map(str::to_string)
                        .unwrap_or_else(|| e.kind().to_string())
                ),
            ),
        };
        let sql = match t.kind {
            TestKind::Singular => {
                let ctx = self.singular_test_context(
                    &calls,
                    &t.name,
                    &t.original_file_path,
                    t.config.clone(),
                );
                let tmpl = self.env.get_template(&t.original_file_path).map_err(err)?;
                tmpl.render(ctx).map_err(err)?
            }
            TestKind::Generic => {
                let attached = t.attached_node.as_deref().unwrap_or("");
                let mut model = if let Some(n) = manifest.node(attached) {
                    Relation {
                        database: n.database.clone(),
                        schema: n.schema.clone(),
                        identifier: n.alias.clone(),
                        filter: None,
                    }
                } else if let Some(s) = manifest.source(attached) {
                    Relation {
                        database: self.shared.database.clone(),
                        schema: s.table.schema.clone(),
                        identifier: s.table.identifier.clone(),
                        filter: None,
                    }
                } else {
                    return Err(Error::in_file(
                        t.original_file_path.to_string(),
                        format!("test {}: its model is unknown", t.name),
                    ));
                };
                model.filter = t
                    .config
                    .get("where")
                    .and_then(Json::as_str)
                    .map(str::to_string);
                let mut args = Vec::new();
                let mut values: BTreeMap<String, Value> = BTreeMap::new();
                for (k, v) in &t.kwargs {
                    values.insert(k.clone(), self.eval_arg(v, &calls).map_err(err)?);
                    args.push(format!("{k}=__args[{}]", Json::String(k.clone())));
                }
                let call = format!(
                    "{{{{ test_{}(model=model{}{}) }}}}",
                    t.test_name.as_deref().unwrap_or(""),
                    if args.is_empty() { "" } else { ", " },
                    args.join(", ")
                );
                let this = model.clone();
                let mut ctx_calls = self.context(&calls, this, t.config.clone(), Json::Null);
                ctx_calls = minijinja::context! { model => Value::from_object(model), __args => Value::from(values), ..ctx_calls };
                self.env.render_str(&call, ctx_calls).map_err(err)?
            }
        };
        Ok(sql.trim().trim_end_matches(';').trim_end().to_string())
    }
}

/// One YAML test entry: (test name, arguments, config, custom name).
pub(super) type TestEntry = (String, Map<String, Json>, Map<String, Json>, Option<String>);

/// Parses one YAML test entry. Accepts
/// `- unique`, `- accepted_values: {values: […], config: {…}}`, arguments under
/// `arguments:` (dbt ≥ 1.10), and `test_name:` with `name:`.
pub(super) fn parse_test_entry(entry: &Json, file: &str, on: &str) -> Result<TestEntry> {
    const CONFIG_KEYS: &[&str] = &[
        "severity",
        "where",
        "error_if",
        "warn_if",
        "store_failures",
        "tags",
        "enabled",
        "limit",
        "meta",
    ];
    let bad = || {
        Error::in_file(file.to_string(), format!("a data test on {on} is not understood: {entry}; write `- unique` or `- accepted_values: {{values: [...]}}`"))
    };
    let (name, body) = match entry {
        Json::String(n) => return Ok((n.clone(), Map::new(), Map::new(), None)),
        Json::Object(obj) => match obj.get("test_name").and_then(Json::as_str) {
            Some(tn) => (tn.to_string(), entry.clone()),
            None if obj.len() == 1 => {
                let (k, v) = obj.iter().next().ok_or_else(bad)?;
                (k.clone(), v.clone())
            }
            None => return Err(bad()),
        },
        _ => return Err(bad()),
    };
    let (mut kwargs, mut config, mut custom) = (Map::new(), Map::new(), None);
    if let Json::Object(b) = body {
        for (k, v) in b {
            match k.as_str() {
                "config" => {
                    if let Json::Object(c) = v {
                        config.extend(c);
                    }
                }
                "arguments" => {
                    if let Json::Object(a) = v {
                        kwargs.extend(a);
                    }
                }
                "name" => custom = v.as_str().map(str::to_string),
                "test_name" | "description" => {}
                key if CONFIG_KEYS.contains(&key) => {
                    config.insert(k, v);
                }
                _ => {
                    kwargs.insert(k, v);
                }
            }
        }
    }
    Ok((name, kwargs, config, custom))
}

/// dbt's naming of generic tests: `[source_]<test>_<model>_<column>__<args…>`,
/// shortened with a hash past 63 characters.
pub(super) fn generic_test_name(
    on_source: bool,
    test: &str,
    target: &str,
    kwargs: &Map<String, Json>,
) -> String {
    pub(super) fn flat(v: &Json, out: &mut Vec<String>) {
        match v {
            Json::Array(a) => a.iter().for_each(|x| flat(x, out)),
            Json::Object(o) => o.values().for_each(|x| flat(x, out)),
            Json::String(s) => out.push(s.clone()),
            Json::Null => {}
            other => out.push(other.to_string()),
        }
    }
    let mut parts = vec![format!(
        "{}{test}_{target}",
        if on_source { "source_" } else { "" }
    )];
    if let Some(c) = kwargs.get("column_name").and_then(Json::as_str) {
        parts[0].push('_');
        parts[0].push_str(c);
    }
    let mut keys: Vec<&String> = kwargs
        .keys()
        .filter(|k| *k != "column_name" && *k != "model")
        .collect();
    keys.sort();
    for k in keys {
        let mut vals = Vec::new();
        flat(&kwargs[k], &mut vals);
        parts.extend(vals);
    }
    let name: String = parts
        .join("__")
        .chars()
        .filter(|c| *c != '\'' && *c != '"')
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.len() <= 63 {
        name
    } else {
        let head: String = name.chars().take(52).collect();
        format!("{head}_{}", &short_hash(&name)[..10])
    }
}

/// A short stable hash (FNV-1a, hex) for unique ids.
pub(super) fn short_hash(s: &str) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")[..10].to_string()
}
