//! Data tests: generic tests declared in YAML (entries, dbt's names and ids,
//! arguments that are relations), singular tests from the test paths, and the
//! SQL of each test (the query returning its failing rows).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use minijinja::Value;
use serde_json::{Map, Value as Json};

use crate::error::{Error, Result};
use crate::manifest::{Manifest, TestKind, TestNode};
use crate::project::{
    check_call_config, merge_config, tree_config, Column, Project, Resource, Warnings,
};

use super::context::{Calls, Phase};
use super::parse::tags_of;
use super::{template_error, Relation, Renderer};

/// A test entry of a YAML resource, with the column it is declared under.
type TestEntryOf = (Option<Column>, Json);

impl Renderer {
    /// Data tests: generic ones from the YAML of enabled models and of sources,
    /// singular ones from the test paths.
    pub(super) fn build_tests(
        &self,
        root: &Project,
        project: &Project,
        manifest: &Manifest,
        warnings: &mut Warnings,
    ) -> Result<Vec<TestNode>> {
        let mut tests: Vec<TestNode> = Vec::new();
        let mut targets: Vec<(TestTarget, Vec<TestEntryOf>)> = Vec::new();
        for node in manifest
            .nodes
            .iter()
            .filter(|n| n.package_name == project.name)
        {
            let props = match (node.resource_type, &node.version) {
                ("seed", _) => project.seed_props.get(&node.name).cloned(),
                ("snapshot", _) => project.snapshot_props.get(&node.name).cloned(),
                ("model", Some(v)) => project
                    .model_props
                    .get(&node.name)
                    .map(|p| p.for_version(v)),
                ("model", None) => project.model_props.get(&node.name).cloned(),
                _ => None, // analyses have no data tests
            };
            let Some(props) = props else {
                continue;
            };
            let model_arg = match &node.version {
                Some(v) => format!(
                    "{{{{ get_where_subquery(ref('{}', version='{v}')) }}}}",
                    node.name
                ),
                None => format!("{{{{ get_where_subquery(ref('{}')) }}}}", node.name),
            };
            let on = TestTarget {
                name: node.test_target_name(),
                unique_id: node.unique_id.clone(),
                is_source: false,
                file: props.file.clone(),
                model_arg,
                tags: Vec::new(),
            };
            let mut entries: Vec<TestEntryOf> =
                props.tests.iter().map(|t| (None, t.clone())).collect();
            for c in &props.columns {
                entries.extend(c.tests.iter().map(|t| (Some(c.clone()), t.clone())));
            }
            targets.push((on, entries));
        }
        let prefix = format!("source.{}.", project.name);
        for s in manifest
            .sources
            .iter()
            .filter(|s| s.unique_id.starts_with(&prefix))
        {
            let on = TestTarget {
                name: format!("{}_{}", s.table.source_name, s.table.name),
                unique_id: s.unique_id.clone(),
                is_source: true,
                file: s.table.file.clone(),
                model_arg: format!(
                    "{{{{ get_where_subquery(source('{}', '{}')) }}}}",
                    s.table.source_name, s.table.name
                ),
                tags: s.table.tags.clone(),
            };
            let mut entries: Vec<TestEntryOf> =
                s.table.tests.iter().map(|t| (None, t.clone())).collect();
            for c in &s.table.columns {
                entries.extend(c.tests.iter().map(|t| (Some(c.clone()), t.clone())));
            }
            targets.push((on, entries));
        }
        // The generic tests are made on the available cores, kept in order.
        let found = std::sync::Mutex::new(std::mem::take(warnings));
        let jobs: Vec<(&TestTarget, &Option<Column>, &Json)> = targets
            .iter()
            .flat_map(|(on, entries)| entries.iter().map(move |(c, e)| (on, c, e)))
            .collect();
        let (made, _) = crate::parallel::map_with(
            &jobs,
            crate::parallel::cores(),
            || (),
            |_, (on, column, entry)| {
                let at = (*on, column.as_ref(), *entry);
                self.generic_test(root, project, at, manifest, &found)
            },
        );
        *warnings = found.into_inner().unwrap();
        for test in made {
            let test = test?;
            if test.config.get("enabled").and_then(Json::as_bool) != Some(false) {
                tests.push(test);
            }
        }
        for f in &project.singular_tests {
            let mut fqn = vec![project.name.clone()];
            let dirs: Vec<&str> = f.path.split('/').collect();
            fqn.extend(dirs[..dirs.len() - 1].iter().map(|d| d.to_string()));
            fqn.push(f.name.clone());
            let base_config = tree_config(
                Resource::DataTest,
                &project.tests_config,
                &project.name,
                &fqn[1..],
            );
            let calls = Calls::new(Phase::Parse);
            let ctx = self.singular_test_context(
                &calls,
                (&format!("test.{}.{}", project.name, f.name), &f.name),
                &f.original_file_path,
                base_config.clone(),
            );
            let tmpl = self
                .env
                .get_template(&f.original_file_path)
                .map_err(|e| template_error(&e, &f.original_file_path))?;
            if let Err(e) = tmpl.render(ctx) {
                if !super::parse::is_run_time_error(&e) {
                    return Err(template_error(&e, &f.original_file_path));
                }
            }
            let mut config = base_config;
            let own = calls.config.lock().unwrap().clone();
            check_call_config(Resource::DataTest, &own, &f.original_file_path, warnings)?;
            for (k, v) in own.iter() {
                merge_config(&mut config, k, v.clone());
            }
            super::parse::root_override(root, project, Resource::DataTest, &fqn, &mut config);
            if config.get("enabled").and_then(Json::as_bool) == Some(false) {
                continue;
            }
            let depends_on_nodes = self.deps_of(project, &calls, &f.original_file_path)?;
            let alias = config
                .get("alias")
                .and_then(Json::as_str)
                .unwrap_or(&f.name)
                .to_string();
            tests.push(TestNode {
                unique_id: format!("test.{}.{}", project.name, f.name),
                name: f.name.clone(),
                alias,
                file_name: f.name.clone(),
                kind: TestKind::Singular,
                original_file_path: f.original_file_path.clone(),
                fqn,
                test_name: None,
                test_namespace: None,
                kwargs: Map::new(),
                column_name: None,
                attached_node: None,
                tags: tags_of(&config),
                config,
                depends_on_nodes,
                depends_on_macros: calls.macro_ids(),
                raw_code: f.content.clone(),
                compiled_code: None,
                compile_error: None,
                unit: None,
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
        (unique_id, name): (&str, &str),
        file: &str,
        config: Map<String, Json>,
    ) -> Value {
        let this = Relation::new(
            &self.shared.database,
            &self.shared.target_schema,
            name,
            self.shared.quoting,
        );
        let model = serde_json::json!({"name": name, "unique_id": unique_id, "resource_type": "test", "original_file_path": file});
        self.context(calls, this, config, model)
    }

    /// One generic test entry of a YAML file, on a model or a source table, named
    /// and identified as dbt does (see [`generic_test_names`] and [`test_hash`]).
    pub(super) fn generic_test(
        &self,
        root: &Project,
        project: &Project,
        (on, column, entry): (&TestTarget, Option<&Column>, &Json),
        manifest: &Manifest,
        warnings: &std::sync::Mutex<Warnings>,
    ) -> Result<TestNode> {
        let file = on.file.as_str();
        let parsed = parse_test_entry(entry, file, &on.name, column.map(|c| c.name.as_str()))?;
        let TestEntry {
            test_name,
            namespace,
            kwargs,
            config: yaml_config,
            custom_name,
        } = parsed;
        let macro_name = format!("test_{test_name}");
        let def = match &namespace {
            Some(ns) if !self.table.packages.contains_key(ns) => {
                return Err(Error::in_file(file.to_string(), format!("data test '{ns}.{test_name}' on {}{}: no package named '{ns}' is installed; declare it in packages.yml and run deps", on.name, column.map(|c| format!(".{}", c.name)).unwrap_or_default())));
            }
            Some(ns) => self.table.in_package(ns, &macro_name),
            None => self
                .table
                .in_package(&project.name, &macro_name)
                .or_else(|| self.table.resolve(&macro_name)),
        };
        let Some(def) = def else {
            let full = match &namespace {
                Some(ns) => format!("{ns}.{test_name}"),
                None => test_name.clone(),
            };
            return Err(Error::in_file(file.to_string(), format!("unknown data test '{full}' on {}{}; use unique, not_null, accepted_values, relationships or define `{{% test {test_name}(model, …) %}}` in the macro paths", on.name, column.map(|c| format!(".{}", c.name)).unwrap_or_default())));
        };
        let macro_id = def.unique_id();
        let prefix = match &namespace {
            Some(ns) => format!(
                "{ns}_{}{test_name}",
                if on.is_source { "source_" } else { "" }
            ),
            None => format!("{}{test_name}", if on.is_source { "source_" } else { "" }),
        };
        let (short_name, full_name) = generic_test_names(&prefix, &on.name, &kwargs);
        let (name, file_name) = match custom_name {
            Some(n) => (n.clone(), n),
            None => (full_name, short_name),
        };
        let fqn = yaml_fqn(&project.name, project.local_path(file), &name);
        // dbt renders the entry's configs while parsing (`enabled: "{{ target.type
        // == 'postgres' }}"`), each to a native value.
        let mut yaml_config = yaml_config;
        for (key, value) in yaml_config.iter_mut() {
            self.render_config_value(value, file, Some(key))?;
        }
        let own_tags = tags_of(&yaml_config);
        // dbt's config of a generic test: its project's `data_tests:` tree, then
        // its config calls: the entry's configs, the `config()` calls of the test
        // macro, and the entry's configs again (dbt's code of a generic test calls
        // `config()` with them after the macro); then, for a package's test, the
        // root project's tree. A long name's alias is one of the entry's configs.
        let assemble = |from_macro: &Map<String, Json>| {
            let mut config = tree_config(
                Resource::DataTest,
                &project.tests_config,
                &project.name,
                &fqn[1..],
            );
            for (k, v) in &yaml_config {
                merge_config(&mut config, k, v.clone());
            }
            if !from_macro.is_empty() {
                for (k, v) in from_macro.iter().chain(&yaml_config) {
                    merge_config(&mut config, k, v.clone());
                }
            }
            super::parse::root_override(root, project, Resource::DataTest, &fqn, &mut config);
            let alias = match config.get("alias").and_then(Json::as_str) {
                Some(a) => a.to_string(),
                None => {
                    if file_name != name {
                        config.insert("alias".into(), Json::String(file_name.clone()));
                    }
                    file_name.clone()
                }
            };
            let tags = test_tags(on, column, &own_tags, &config);
            (config, alias, tags)
        };
        let (config, alias, tags) = assemble(&Map::new());
        // Arguments such as `to: ref('x')` add dependencies, before the tested node.
        // dbt renders every argument while parsing to find them; one that fails
        // here (other than a ref or source) fails its test when it is compiled.
        let calls = Calls::new(Phase::Parse);
        let ctx = minijinja::context! { __calls => Value::from_dyn_object(calls.clone()) };
        let mut args_rendered = true;
        for (k, v) in &kwargs {
            if let Err(e) = self.eval_arg(k, v, &ctx) {
                args_rendered = false;
                if ref_or_source(v) {
                    return Err(Error::in_file(
                        file.to_string(),
                        format!("test {name}: {}", e.detail().unwrap_or("invalid argument")),
                    ));
                }
            }
        }
        let mut refs: Vec<String> = Vec::new();
        let mut sources: Vec<String> = Vec::new();
        for d in self.deps_of(project, &calls, file)? {
            if d.starts_with("source.") {
                sources.push(d);
            } else {
                refs.push(d);
            }
        }
        let attached = on.unique_id.clone();
        if on.is_source {
            &mut sources
        } else {
            &mut refs
        }
        .push(attached.clone());
        let mut depends_on_nodes: Vec<String> = Vec::new();
        for d in refs.into_iter().chain(sources) {
            if !depends_on_nodes.contains(&d) {
                depends_on_nodes.push(d);
            }
        }
        let hash = test_hash(
            &name,
            &test_name,
            namespace.as_deref(),
            &kwargs,
            &on.model_arg,
        );
        let mut depends_on_macros = vec![macro_id.clone()];
        // dbt resolves `unique` and `not_null` without rendering the test; the others
        // call `get_where_subquery`.
        if !matches!(
            macro_id.as_str(),
            "macro.dbt.test_unique" | "macro.dbt.test_not_null"
        ) {
            depends_on_macros.push("macro.dbt.get_where_subquery".into());
        }
        let mut node = TestNode {
            unique_id: format!("test.{}.{name}.{hash}", project.name),
            name: name.clone(),
            alias,
            file_name: file_name.clone(),
            kind: TestKind::Generic,
            original_file_path: file.to_string(),
            fqn: fqn.clone(),
            test_name: Some(test_name.clone()),
            test_namespace: namespace,
            column_name: column.map(|c| c.name.clone()),
            attached_node: Some(attached),
            tags,
            config,
            depends_on_nodes,
            depends_on_macros,
            raw_code: String::new(),
            compiled_code: None,
            compile_error: None,
            unit: None,
            kwargs,
        };
        // dbt renders the test while parsing (but its own `unique` and
        // `not_null`): the test macro's `config()` calls configure the test, and
        // its `ref()`/`source()` calls add dependencies. An error there stops
        // the parse, as dbt's, but for a call of something undefined (dbt's parse
        // forgives it; the test fails when it is compiled). With an argument that
        // failed to render, the test fails when compiled.
        if args_rendered && self.renders_at_parse(&macro_id, &test_name) {
            let calls = Calls::new(Phase::Parse);
            if let Err(e) = self.render_generic(&node, manifest, &calls) {
                if !super::parse::is_run_time_error(&e) {
                    return Err(Error::in_file(
                        file.to_string(),
                        format!(
                            "test {name}: {}",
                            e.detail()
                                .map(str::to_string)
                                .unwrap_or_else(|| e.kind().to_string())
                        ),
                    ));
                }
            }
            let from_macro = calls.config.lock().unwrap().clone();
            let mut found = warnings.lock().unwrap();
            check_call_config(Resource::DataTest, &from_macro, &def.file, &mut found)?;
            drop(found);
            if !from_macro.is_empty() {
                (node.config, node.alias, node.tags) = assemble(&from_macro);
            }
            for d in self.deps_of(project, &calls, file)? {
                if !node.depends_on_nodes.contains(&d) {
                    node.depends_on_nodes.push(d);
                }
            }
        }
        Ok(node)
    }

    /// Whether dbt renders a generic test of this macro while parsing. dbt skips
    /// its own `unique` and `not_null`. Its other tests (`accepted_values`,
    /// `relationships`) call no `config()` and refer only to their arguments:
    /// rendering them would change nothing, so they are rendered only when a
    /// project or package overrides the implementation they dispatch to.
    fn renders_at_parse(&self, macro_id: &str, test_name: &str) -> bool {
        match macro_id {
            "macro.dbt.test_unique" | "macro.dbt.test_not_null" => false,
            id if id.starts_with("macro.dbt.") => {
                let names = [
                    format!("default__test_{test_name}"),
                    format!("postgres__test_{test_name}"),
                ];
                self.table
                    .packages
                    .iter()
                    .filter(|(p, _)| p.as_str() != super::namespace::INTERNAL)
                    .any(|(_, m)| names.iter().any(|n| m.contains_key(n)))
            }
            _ => true,
        }
    }

    /// A test argument as dbt hands it to the test macro (`add_rendered_test_kwargs`):
    /// every string in it (in lists and mappings too) but `column_name` is rendered
    /// with the test's context, `ref(…)`, `source(…)`, `var(…)`, `env_var(…)` and
    /// `doc(…)` as if written in `{{ }}`. A string that is one `{{ expression }}`
    /// gives the expression's value itself (a relation, a number, a date), as
    /// dbt's native rendering does; other Jinja gives text.
    pub(super) fn eval_arg(
        &self,
        key: &str,
        v: &Json,
        ctx: &Value,
    ) -> std::result::Result<Value, minijinja::Error> {
        if key == "column_name" {
            return Ok(Value::from(minijinja::value::Serde(v)));
        }
        self.eval_arg_value(v, ctx)
    }

    fn eval_arg_value(
        &self,
        v: &Json,
        ctx: &Value,
    ) -> std::result::Result<Value, minijinja::Error> {
        match v {
            Json::String(text) => {
                let wrapped;
                let text = if looks_like_call(text) {
                    wrapped = format!("{{{{ {text} }}}}");
                    wrapped.as_str()
                } else {
                    text.as_str()
                };
                if let Some(expr) = single_expression(text) {
                    return self
                        .env
                        .compile_expression(&super::pyops::rewrite_expression(expr))?
                        .eval(ctx.clone());
                }
                if text.contains("{{") || text.contains("{%") || text.contains("{#") {
                    return Ok(Value::from(
                        self.env
                            .render_str(&super::pyops::rewrite(text), ctx.clone())?,
                    ));
                }
                Ok(Value::from(text))
            }
            // Lists and mappings are Python objects the test macro may change.
            Json::Array(items) => items
                .iter()
                .map(|i| self.eval_arg_value(i, ctx))
                .collect::<std::result::Result<Vec<_>, _>>()
                .map(super::mutable::list),
            Json::Object(map) => map
                .iter()
                .map(|(k, i)| Ok((Value::from(k.clone()), self.eval_arg_value(i, ctx)?)))
                .collect::<std::result::Result<Vec<_>, minijinja::Error>>()
                .map(super::mutable::dict),
            other => Ok(Value::from(minijinja::value::Serde(other))),
        }
    }

    /// Renders the SQL of a data test (the query returning failing rows); returns
    /// it with the ephemeral models it reaches (their CTEs not injected yet).
    pub(super) fn render_test(
        &self,
        t: &TestNode,
        manifest: &Manifest,
    ) -> Result<(String, Vec<String>)> {
        let calls = Calls::new(Phase::Compile);
        let err = |e: minijinja::Error| match t.kind {
            TestKind::Singular => template_error(&e, &t.original_file_path),
            TestKind::Generic | TestKind::Unit => Error::in_file(
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
                    (&t.unique_id, &t.name),
                    &t.original_file_path,
                    t.config.clone(),
                );
                let tmpl = self.env.get_template(&t.original_file_path).map_err(err)?;
                tmpl.render(ctx).map_err(err)?
            }
            TestKind::Unit => return Ok((self.render_unit_test(t, manifest)?, Vec::new())),
            TestKind::Generic => self.render_generic(t, manifest, &calls).map_err(err)?,
        };
        let ephemerals = calls.ephemerals.lock().unwrap().clone();
        Ok((
            sql.trim().trim_end_matches(';').trim_end().to_string(),
            ephemerals,
        ))
    }

    /// Renders generic test `t`: its macro called with its arguments, `model` the
    /// relation it tests (its `where` config a filter). In the parse phase this is
    /// dbt's render of the test while parsing, which records its `config()` calls.
    fn render_generic(
        &self,
        t: &TestNode,
        manifest: &Manifest,
        calls: &Arc<Calls>,
    ) -> std::result::Result<String, minijinja::Error> {
        let attached = t.attached_node.as_deref().unwrap_or("");
        let mut model = if let Some(n) = manifest.node(attached) {
            Relation::of_node(n)
        } else if let Some(s) = manifest.source(attached) {
            Relation::of_source(s)
        } else {
            return Err(minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                "its model is unknown",
            ));
        };
        model.filter = t
            .config
            .get("where")
            .and_then(Json::as_str)
            .map(str::to_string);
        model.empty = self.shared.empty.load(std::sync::atomic::Ordering::Relaxed);
        let this = model.clone();
        // The test's id names its package: its package's macros come first.
        let id = serde_json::json!({"unique_id": t.unique_id});
        let ctx = self.context(calls, this, t.config.clone(), id);
        let mut args = Vec::new();
        let mut values: BTreeMap<String, Value> = BTreeMap::new();
        for (k, v) in &t.kwargs {
            values.insert(k.clone(), self.eval_arg(k, v, &ctx)?);
            args.push(format!("{k}=__args[{}]", Json::String(k.clone())));
        }
        // dbt renders the `model` argument (a ref) after the others.
        if model.cte {
            let mut eph = calls.ephemerals.lock().unwrap();
            if !eph.iter().any(|e| e == attached) {
                eph.push(attached.to_string());
            }
        }
        let call = format!(
            "{{{{ {}test_{}(model=model{}{}) }}}}",
            t.test_namespace
                .as_ref()
                .map(|ns| format!("{ns}."))
                .unwrap_or_default(),
            t.test_name.as_deref().unwrap_or(""),
            if args.is_empty() { "" } else { ", " },
            args.join(", ")
        );
        let ctx_calls = minijinja::context! { model => Value::from_object(model), __args => Value::from(values), ..ctx };
        self.env.render_str(&call, ctx_calls)
    }
}

/// dbt's tags of a generic test: those of its source and table, of its column,
/// and its own, sorted; then the configured ones not yet there.
fn test_tags(
    on: &TestTarget,
    column: Option<&Column>,
    own: &[String],
    config: &Map<String, Json>,
) -> Vec<String> {
    let mut tags: Vec<String> = on.tags.clone();
    if let Some(c) = column {
        tags.extend(c.tags.iter().cloned());
    }
    tags.extend(own.iter().cloned());
    tags.sort();
    tags.dedup();
    for t in tags_of(config) {
        if !tags.contains(&t) {
            tags.push(t);
        }
    }
    tags
}

/// dbt's `looks_like_func`: a test argument that is a call of `env_var`, `ref`,
/// `var`, `source` or `doc`, rendered as if written in `{{ }}`.
fn looks_like_call(text: &str) -> bool {
    let t = text.trim();
    let Some(name) = ["env_var", "ref", "var", "source", "doc"]
        .into_iter()
        .find(|n| t.starts_with(n))
    else {
        return false;
    };
    let rest = t[name.len()..].trim_start();
    !text.contains('\n') && rest.len() > 2 && rest.starts_with('(') && rest.ends_with(')')
}

/// Whether a test argument is a ref or source (an error there is the project's).
fn ref_or_source(v: &Json) -> bool {
    v.as_str().is_some_and(|t| {
        let t = t.trim();
        looks_like_call(t) && (t.starts_with("ref") || t.starts_with("source"))
    })
}

/// The expression of a string that is exactly one `{{ expression }}`.
fn single_expression(text: &str) -> Option<&str> {
    let inner = text.strip_prefix("{{")?.strip_suffix("}}")?;
    let inner = inner.strip_prefix('-').unwrap_or(inner);
    let inner = inner.strip_suffix('-').unwrap_or(inner);
    (!inner.contains("{{") && !inner.contains("}}") && !inner.contains("{%")).then_some(inner)
}

/// What a generic test is declared on: a model or a source table.
pub(super) struct TestTarget {
    /// `stg_orders`, or `<source>_<table>` for a source table.
    pub(super) name: String,
    pub(super) unique_id: String,
    pub(super) is_source: bool,
    /// The YAML file that declares the test.
    pub(super) file: String,
    /// dbt's `model` argument: `{{ get_where_subquery(ref('x')) }}`.
    pub(super) model_arg: String,
    /// Tags the test inherits (a source's and its table's).
    pub(super) tags: Vec<String>,
}

/// One YAML test entry, its arguments separated from its configs as dbt does.
pub(super) struct TestEntry {
    pub(super) test_name: String,
    /// `pkg` of `pkg.test`.
    pub(super) namespace: Option<String>,
    /// The arguments in dbt's order (the entry's keys, `column_name`, then those
    /// under `arguments:`), without `model`.
    pub(super) kwargs: Map<String, Json>,
    pub(super) config: Map<String, Json>,
    pub(super) custom_name: Option<String>,
}

/// Keys of a test entry that dbt reads as configs (`TestBuilder.CONFIG_ARGS`).
const CONFIG_ARGS: &[&str] = &[
    "severity",
    "tags",
    "enabled",
    "where",
    "limit",
    "warn_if",
    "error_if",
    "fail_calc",
    "store_failures",
    "store_failures_as",
    "meta",
    "database",
    "schema",
    "alias",
];

/// Parses one YAML test entry: `- unique`, `- accepted_values: {values: […],
/// config: {…}}`, arguments under `arguments:` (dbt ≥ 1.10) or beside the configs,
/// and `test_name:` with `name:`.
pub(super) fn parse_test_entry(
    entry: &Json,
    file: &str,
    on: &str,
    column: Option<&str>,
) -> Result<TestEntry> {
    let bad = || {
        Error::in_file(file.to_string(), format!("a data test on {on} is not understood: {entry}; write `- unique` or `- accepted_values: {{values: [...]}}`"))
    };
    let (full_name, body) = match entry {
        Json::String(n) => (n.clone(), Map::new()),
        Json::Object(obj) => match obj.get("test_name").and_then(Json::as_str) {
            Some(tn) => {
                let mut body = obj.clone();
                body.remove("test_name");
                (tn.to_string(), body)
            }
            None if obj.len() == 1 => {
                let (k, v) = obj.iter().next().ok_or_else(bad)?;
                match v {
                    Json::Object(b) => (k.clone(), b.clone()),
                    Json::Null => (k.clone(), Map::new()),
                    _ => return Err(bad()),
                }
            }
            None => return Err(bad()),
        },
        _ => return Err(bad()),
    };
    let (namespace, test_name) = match full_name.split_once('.') {
        Some((ns, n)) => (Some(ns.to_string()), n.to_string()),
        None => (None, full_name),
    };
    let mut args = body;
    if let Some(c) = column {
        args.insert("column_name".into(), Json::String(c.to_string()));
    }
    if let Some(Json::Object(a)) = args.remove("arguments") {
        for (k, v) in a {
            args.insert(k, v);
        }
    }
    let mut config = Map::new();
    for key in CONFIG_ARGS {
        if let Some(v) = args.remove(*key) {
            if !v.is_null() {
                config.insert((*key).to_string(), v);
            }
        }
    }
    if let Some(Json::Object(c)) = args.remove("config") {
        for (k, v) in c {
            if !v.is_null() {
                config.insert(k, v);
            }
        }
    }
    args.remove("description");
    let custom_name = match args.remove("name") {
        Some(Json::String(n)) => Some(n),
        Some(Json::Null) | None => None,
        Some(other) => Some(super::pystr::py_str(&other)),
    };
    Ok(TestEntry {
        test_name,
        namespace,
        kwargs: args,
        config,
        custom_name,
    })
}

/// dbt's names of a generic test: `(short, full)`. The full name is
/// `<prefix>_<target>_<arguments>`, the arguments (`column_name` among them) in
/// sorted key order, each value's items as Python's `str()`, every run of
/// characters outside `[0-9a-zA-Z_]` made one `_`, joined by `__`. It names the
/// test (unique id, fqn, `--select`). The short name, for the compiled file and
/// the relation alias, is the full name when it has fewer than 64 characters, else
/// `<prefix>_<target>` cut to 30 characters, `_` and the md5 of the full name.
pub(super) fn generic_test_names(
    prefix: &str,
    target: &str,
    kwargs: &Map<String, Json>,
) -> (String, String) {
    let mut keys: Vec<&String> = kwargs.keys().filter(|k| *k != "model").collect();
    keys.sort();
    let mut pieces: Vec<String> = Vec::new();
    for k in keys {
        match &kwargs[k] {
            Json::Object(o) => pieces.extend(o.values().map(super::pystr::py_str)),
            Json::Array(a) => pieces.extend(a.iter().map(super::pystr::py_str)),
            other => pieces.push(super::pystr::py_str(other)),
        }
    }
    let clean: Vec<String> = pieces.iter().map(|p| clean_piece(p)).collect();
    let identifier = format!("{prefix}_{target}");
    let full = format!("{identifier}_{}", clean.join("__"));
    if full.chars().count() >= 64 {
        let head: String = identifier.chars().take(30).collect();
        (format!("{head}_{}", super::pystr::md5_hex(&full)), full)
    } else {
        (full.clone(), full)
    }
}

/// Every run of characters outside `[0-9a-zA-Z_]` replaced by one `_`.
fn clean_piece(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_run = false;
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c);
            in_run = false;
        } else if !in_run {
            out.push('_');
            in_run = true;
        }
    }
    out
}

/// The 10-hex suffix of a generic test's unique id: the last 10 hex digits of the
/// md5 of its name followed by Python's `repr()` of its metadata (`kwargs` with
/// `model`, `name`, `namespace`), every mapping sorted and every scalar a string.
pub(super) fn test_hash(
    name: &str,
    test_name: &str,
    namespace: Option<&str>,
    kwargs: &Map<String, Json>,
    model_arg: &str,
) -> String {
    let mut kw = kwargs.clone();
    kw.insert("model".into(), Json::String(model_arg.to_string()));
    let metadata = serde_json::json!({
        "kwargs": Json::Object(kw),
        "name": test_name,
        "namespace": namespace,
    });
    let text = format!(
        "{name}{}",
        super::pystr::py_repr(&super::pystr::hashable(&metadata))
    );
    let digest = super::pystr::md5_hex(&text);
    digest[digest.len() - 10..].to_string()
}

/// A node's fqn from the file that defines it: the project, the folders of the
/// path below its top folder, the name.
pub(super) fn yaml_fqn(project: &str, original_file_path: &str, name: &str) -> Vec<String> {
    let mut fqn = vec![project.to_string()];
    let parts: Vec<&str> = original_file_path.split('/').collect();
    if parts.len() > 2 {
        fqn.extend(parts[1..parts.len() - 1].iter().map(|p| p.to_string()));
    }
    fqn.push(name.to_string());
    fqn
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Json) -> Map<String, Json> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn names_as_dbt_builds_them() {
        let kw = obj(json!({"values": [0], "quote": false, "column_name": "balance"}));
        let (short, full) = generic_test_names("accepted_values", "balances", &kw);
        assert_eq!(full, "accepted_values_balances_balance__False__0");
        assert_eq!(short, full);
        let kw = obj(
            json!({"column_name": "account_id", "to": "ref('stg_accounts')", "field": "account_id"}),
        );
        let (_, full) = generic_test_names("relationships", "stg_entries", &kw);
        assert_eq!(
            full,
            "relationships_stg_entries_account_id__account_id__ref_stg_accounts_"
        );
        let (short, _) = generic_test_names("x", "y", &obj(json!({})));
        assert_eq!(short, "x_y_");
    }

    #[test]
    fn hash_checked_against_dbt() {
        let kw = obj(json!({"column_name": "entry_id"}));
        let h = test_hash(
            "unique_stg_entries_entry_id",
            "unique",
            None,
            &kw,
            "{{ get_where_subquery(ref('stg_entries')) }}",
        );
        assert_eq!(h, "54610e658f");
    }
}
