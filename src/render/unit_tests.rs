//! Unit tests as dbt-core 1.10 parses and compiles them: each `unit_tests:` entry
//! becomes a test node `unit_test.<project>.<model>.<name>` that depends on its
//! model; compiling it renders the model's SQL with every `ref()`/`source()` it
//! reads (and `this`) replaced by the CTE of a `given` input
//! (`__dbt__cte__<alias>`), with the test's `overrides` of vars, environment
//! variables and macros (`is_incremental`). The input CTEs themselves need the
//! columns of the real relations and are added at run time
//! ([`crate::unittest`]).

use std::collections::{BTreeMap, BTreeSet};

use minijinja::value::{Kwargs, Rest};
use minijinja::{State, Value};
use serde_json::{Map, Value as Json};

use crate::error::{Error, Result};
use crate::manifest::{Manifest, Quoting, Ref, TestKind, TestNode, UnitInput, UnitSpec};
use crate::project::{Input, Project, UnitTestDef};

use super::context::{Calls, Phase};
use super::relation::cte_name;
use super::{jerr, positional, template_error, version_kwarg, Relation, Renderer};

impl Renderer {
    /// The unit tests of `project` whose model is enabled, as test nodes.
    pub(super) fn build_unit_tests(
        &self,
        project: &Project,
        manifest: &Manifest,
    ) -> Result<Vec<TestNode>> {
        let mut out: Vec<TestNode> = Vec::new();
        let mut seen = BTreeSet::new();
        for def in &project.unit_tests {
            if def.config.get("enabled").and_then(Json::as_bool) == Some(false) {
                continue;
            }
            let Some(test) = self.unit_test_node(project, manifest, def)? else {
                continue;
            };
            if !seen.insert(test.unique_id.clone()) {
                return Err(Error::usage(format!(
                    "two unit tests of model '{}' are both named '{}'; rename one",
                    def.model, def.name
                ))
                .at(&def.file, Some(def.line)));
            }
            out.push(test);
        }
        Ok(out)
    }

    /// One unit test; `None` when its model is disabled (as dbt, which then
    /// drops it).
    fn unit_test_node(
        &self,
        project: &Project,
        manifest: &Manifest,
        def: &UnitTestDef,
    ) -> Result<Option<TestNode>> {
        let err = |line: usize, msg: String| Error::usage(msg).at(&def.file, Some(line));
        let name = &def.name;
        // dbt looks the tested model up in the unit test's own project.
        let model_ref = Ref {
            package: Some(project.name.clone()),
            name: def.model.clone(),
            version: None,
        };
        let model = match manifest
            .resolve_ref(&model_ref)
            .and_then(|id| manifest.node(&id))
        {
            Some(n) if n.resource_type == "model" => n,
            _ => {
                let id = format!("model.{}.{}", project.name, def.model);
                if manifest.disabled.contains(&id) {
                    return Ok(None);
                }
                return Err(err(
                    def.line,
                    format!(
                        "unit test '{name}': there is no model named '{}'; fix `model:`",
                        def.model
                    ),
                ));
            }
        };
        if model.version.is_some() {
            return Err(err(
                def.line,
                format!(
                    "unit test '{name}': unit tests of versioned models (here '{}') are not supported yet; remove the unit test or run it with dbt-core",
                    def.model
                ),
            ));
        }
        let incremental_override = def.overrides.macros.iter().find_map(|(k, v)| {
            (k.rsplit('.').next() == Some("is_incremental")).then_some(v.clone())
        });
        if model
            .depends_on_macros
            .iter()
            .any(|m| m == "macro.dbt.is_incremental")
        {
            match incremental_override {
                Some(Json::Bool(true)) => {
                    if !def.given.iter().any(|g| g.input == Input::This) {
                        return Err(err(def.line, format!(
                            "unit test '{name}' of incremental model '{}' overrides is_incremental to true and so must give a 'this' input; add `- input: this`",
                            model.name
                        )));
                    }
                }
                Some(Json::Bool(false)) => {}
                _ => {
                    return Err(err(def.line, format!(
                        "unit test '{name}' of incremental model '{}' must set `overrides: {{macros: {{is_incremental: true}}}}` (or false)",
                        model.name
                    )))
                }
            }
        }
        let mut inputs = Vec::new();
        for g in &def.given {
            let (cte, relation) = match &g.input {
                Input::This => (
                    cte_name(&model.alias),
                    (model.stored_schema(), model.stored_alias()),
                ),
                Input::Ref { name: n, version } => {
                    let r = Ref {
                        package: None,
                        name: n.clone(),
                        version: version.clone(),
                    };
                    // As `ref()` resolves it in a node of the unit test's project.
                    let r = self.shared.check_ref(&project.name, &r).unwrap_or(r);
                    let Some(node) = manifest.resolve_ref(&r).and_then(|id| manifest.node(&id))
                    else {
                        return Err(err(g.line, format!(
                            "unit test '{name}': input {} names no enabled model or seed; fix the input",
                            g.written
                        )));
                    };
                    (
                        cte_name(&node.alias),
                        (node.stored_schema(), node.stored_alias()),
                    )
                }
                Input::Source { source, table } => {
                    let Some(s) = manifest
                        .sources
                        .iter()
                        .find(|s| &s.table.source_name == source && &s.table.name == table)
                    else {
                        return Err(err(g.line, format!(
                            "unit test '{name}': input {} names no source table; declare it under `sources:` or fix the input",
                            g.written
                        )));
                    };
                    (
                        cte_name(&s.table.identifier),
                        (
                            Quoting::stored(&s.table.schema, s.table.quoting.schema),
                            Quoting::stored(&s.table.identifier, s.table.quoting.identifier),
                        ),
                    )
                }
            };
            inputs.push(UnitInput {
                cte,
                written: g.written.clone(),
                relation,
                rows: g.rows.clone(),
            });
        }
        let mut fqn =
            super::data_tests::yaml_fqn(&project.name, project.local_path(&def.file), &def.model);
        fqn.push(name.clone());
        let mut config = Map::new();
        config.insert("tags".into(), Json::Array(Vec::new()));
        config.insert("meta".into(), Json::Object(Map::new()));
        config.insert("enabled".into(), Json::Bool(true));
        for (k, v) in &def.config {
            config.insert(k.clone(), v.clone());
        }
        if let Some(Json::String(t)) = config.get("tags") {
            let t = t.clone();
            config.insert("tags".into(), Json::Array(vec![Json::String(t)]));
        }
        Ok(Some(TestNode {
            unique_id: format!("unit_test.{}.{}.{name}", project.name, def.model),
            name: name.clone(),
            alias: name.clone(),
            file_name: name.clone(),
            kind: TestKind::Unit,
            original_file_path: def.file.clone(),
            fqn,
            test_name: None,
            test_namespace: None,
            kwargs: Map::new(),
            column_name: None,
            attached_node: Some(model.unique_id.clone()),
            tags: super::parse::tags_of(&config),
            config,
            depends_on_nodes: vec![model.unique_id.clone()],
            depends_on_macros: Vec::new(),
            raw_code: String::new(),
            compiled_code: None,
            compile_error: None,
            unit: Some(Box::new(UnitSpec {
                model: model.unique_id.clone(),
                inputs,
                expect: def.expect.clone(),
                line: def.line,
                description: def.description.clone(),
                overrides: def.overrides.clone(),
            })),
        }))
    }

    /// The tested model's SQL as unit test `t` runs it: every relation it reads
    /// is the CTE of a `given` input, with the test's overrides.
    pub(super) fn render_unit_test(&self, t: &TestNode, manifest: &Manifest) -> Result<String> {
        let spec = t
            .unit
            .as_deref()
            .ok_or_else(|| Error::usage(format!("internal: {} is not a unit test", t.unique_id)))?;
        let model = manifest.node(&spec.model).ok_or_else(|| {
            Error::usage(format!("internal: the model of {} is unknown", t.unique_id))
        })?;
        let fail = |msg: String| Error::usage(msg).at(&t.original_file_path, Some(spec.line));
        // What each input stands for, and its CTE.
        let mut refs: BTreeMap<String, String> = BTreeMap::new();
        let mut sources: BTreeMap<(String, String), String> = BTreeMap::new();
        let mut this_cte = None;
        for (g, input) in self_given(spec) {
            match g {
                Input::This => this_cte = Some(input.cte.clone()),
                Input::Ref { name, .. } => {
                    refs.insert(name, input.cte.clone());
                }
                Input::Source { source, table } => {
                    sources.insert((source, table), input.cte.clone());
                }
            }
        }
        let test_name = t.name.clone();
        let mut overrides: BTreeMap<String, Value> = BTreeMap::new();
        let unit_name = test_name.clone();
        overrides.insert(
            "ref".into(),
            Value::from_function(
                move |args: Rest<Value>, kwargs: Kwargs| -> std::result::Result<Value, minijinja::Error> {
                    let pos = positional(&args);
                    let name = match pos.as_slice() {
                        [name] | [_, name] => name.clone(),
                        _ => return Err(jerr("ref() takes a model name, e.g. ref('stg_orders')")),
                    };
                    version_kwarg(&kwargs)?;
                    match refs.get(&name) {
                        Some(cte) => Ok(cte_relation(cte)),
                        None => Err(jerr(format!(
                            "unit test '{unit_name}': the model reads ref('{name}'), which is not among the test's `given` inputs; add `- input: ref('{name}')` with its rows"
                        ))),
                    }
                },
            ),
        );
        let unit_name = test_name.clone();
        overrides.insert(
            "source".into(),
            Value::from_function(
                move |args: Rest<Value>| -> std::result::Result<Value, minijinja::Error> {
                    let pos = positional(&args);
                    let [src, table] = pos.as_slice() else {
                        return Err(jerr("source() takes a source and a table name, e.g. source('raw_stripe', 'charges')"));
                    };
                    match sources.get(&(src.clone(), table.clone())) {
                        Some(cte) => Ok(cte_relation(cte)),
                        None => Err(jerr(format!(
                            "unit test '{unit_name}': the model reads source('{src}', '{table}'), which is not among the test's `given` inputs; add `- input: source('{src}', '{table}')` with its rows"
                        ))),
                    }
                },
            ),
        );
        // A package's model sees its package's vars.
        let mut vars = self
            .shared
            .package_vars
            .get(&model.package_name)
            .unwrap_or(&self.shared.vars)
            .clone();
        for (k, v) in &spec.overrides.vars {
            vars.insert(k.clone(), v.clone());
        }
        overrides.insert(
            "var".into(),
            Value::from_function(
                move |name: String, default: Option<Value>| -> std::result::Result<Value, minijinja::Error> {
                    match vars.get(&name) {
                        Some(v) => Ok(Value::from(minijinja::value::Serde(v))),
                        None => default.ok_or_else(|| {
                            jerr(format!("var('{name}') is not set and has no default; set it under `overrides: vars:` of the unit test, `vars:` in dbt_project.yml or --vars"))
                        }),
                    }
                },
            ),
        );
        let env_overrides = spec.overrides.env_vars.clone();
        let env_var = self
            .env
            .globals()
            .find(|(n, _)| *n == "env_var")
            .map(|(_, v)| v);
        overrides.insert(
            "env_var".into(),
            Value::from_function(
                move |state: &mut State,
                      name: String,
                      default: Option<Value>|
                      -> std::result::Result<Value, minijinja::Error> {
                    if let Some(v) = env_overrides.get(&name) {
                        return Ok(match v {
                            Json::String(s) => Value::from(s.clone()),
                            other => Value::from(other.to_string()),
                        });
                    }
                    let Some(f) = &env_var else {
                        return Err(jerr("internal: env_var is not defined"));
                    };
                    let mut args = vec![Value::from(name)];
                    args.extend(default);
                    f.call(state, &args)
                },
            ),
        );
        let mut incremental = false;
        for (key, value) in &spec.overrides.macros {
            let short = key.rsplit('.').next().unwrap_or(key).to_string();
            if short == "is_incremental" {
                incremental = value.as_bool().unwrap_or(false);
            }
            let v = Value::from(minijinja::value::Serde(value.clone()));
            overrides.insert(
                short,
                Value::from_function(move |_args: Rest<Value>| -> Value { v.clone() }),
            );
        }
        let calls = Calls::new(Phase::Compile);
        let base = self.compile_context(&calls, model);
        let this = match &this_cte {
            Some(cte) => cte_relation(cte),
            None => Value::from_object(Relation::new(
                &model.database,
                &model.schema,
                &model.alias,
                model.quoting,
            )),
        };
        overrides.insert("this".into(), this);
        overrides.insert("__incremental".into(), Value::from(incremental));
        let ctx = minijinja::context! { ..Value::from(overrides), ..base };
        let tmpl = self
            .env
            .get_template(&model.original_file_path)
            .map_err(|e| template_error(&e, &model.original_file_path))?;
        let sql = tmpl.render(ctx).map_err(|e| {
            fail(format!(
                "unit test '{}': rendering model '{}': {}",
                t.name,
                model.name,
                e.detail()
                    .map(str::to_string)
                    .unwrap_or_else(|| e.kind().to_string())
            ))
        })?;
        Ok(sql.trim().to_string())
    }
}

/// Each input of `spec` with what it stands for, read back from `input:`.
fn self_given(spec: &UnitSpec) -> Vec<(Input, &UnitInput)> {
    spec.inputs
        .iter()
        .filter_map(|i| Some((crate::project::parse_input(&i.written)?, i)))
        .collect()
}

/// A relation that renders as the CTE `cte`.
fn cte_relation(cte: &str) -> Value {
    Value::from_object(Relation {
        cte: true,
        ..Relation::new("", "", cte, Quoting::default())
    })
}
