//! Models: the parse render of every model (configs, dependencies, enabled or
//! not), their schema and alias through `generate_schema_name`/`generate_alias_name`,
//! and the compile render that produces the SQL that runs.

use std::sync::Arc;

use minijinja::Value;
use serde_json::{Map, Value as Json};

use crate::error::{Error, Result};
use crate::manifest::{Manifest, Materialization, Node, SourceNode};
use crate::project::{check_call_config, Contract, Resource, Warnings};
use crate::project::{merge_config, tree_config, Project};

use super::context::{node_json, Calls, Phase};
use super::{template_error, Relation, Renderer};

impl Renderer {
    /// Parses and compiles every enabled model of `project` into a [`Manifest`].
    pub(crate) fn build_manifest(&self, project: &Project) -> Result<Manifest> {
        let mut manifest = Manifest::new(&project.name);
        let mut warnings = Warnings::default();
        for s in &project.sources {
            manifest.sources.push(SourceNode {
                unique_id: format!("source.{}.{}.{}", project.name, s.source_name, s.name),
                fqn: vec![project.name.clone(), s.source_name.clone(), s.name.clone()],
                table: s.clone(),
            });
        }
        for (name, file) in &self.macros {
            manifest.macros.push((name.clone(), file.clone()));
        }

        // Parse phase: configs and dependencies.
        let mut parsed: Vec<(Node, Arc<Calls>)> = Vec::new();
        for m in &project.models {
            let dirs: Vec<String> = m.path.split('/').map(str::to_string).collect();
            let mut fqn = vec![project.name.clone()];
            fqn.extend(dirs[..dirs.len() - 1].iter().cloned());
            fqn.push(m.name.clone());
            let mut config = tree_config(
                Resource::Model,
                &project.models_config,
                &project.name,
                &fqn[1..],
            );
            let props = project.model_props.get(&m.name);
            if let Some(p) = props {
                for (k, v) in &p.config {
                    merge_config(&mut config, k, v.clone());
                }
            }
            let calls = Calls::new(Phase::Parse);
            let this = Relation {
                database: self.shared.database.clone(),
                schema: self.shared.target_schema.clone(),
                identifier: m.name.clone(),

                filter: None,
            };
            let model = serde_json::json!({"name": m.name, "unique_id": format!("model.{}.{}", project.name, m.name), "resource_type": "model", "fqn": fqn, "original_file_path": m.original_file_path});
            let ctx = self.context(&calls, this, config.clone(), model);
            let tmpl = self
                .env
                .get_template(&m.original_file_path)
                .map_err(|e| template_error(&e, &m.original_file_path))?;
            tmpl.render(ctx)
                .map_err(|e| template_error(&e, &m.original_file_path))?;
            let own = calls.config.lock().unwrap().clone();
            check_call_config(Resource::Model, &own, &m.original_file_path, &mut warnings)?;
            for (k, v) in own {
                merge_config(&mut config, &k, v);
            }
            let enabled = config
                .get("enabled")
                .and_then(Json::as_bool)
                .unwrap_or(true);
            if !enabled {
                manifest.disabled.push(m.name.clone());
                self.shared.disabled.lock().unwrap().insert(m.name.clone());
                continue;
            }
            // Every value was checked where it was given: a materialization here
            // is one reluvia-transform builds.
            let materialized = match config.get("materialized").and_then(Json::as_str) {
                Some("table") => Materialization::Table,
                _ => Materialization::View,
            };
            let tags = tags_of(&config);
            let contract = Contract::of(&config);
            if config.contains_key("contract") {
                // dbt's config holds the whole contract, defaults included.
                config.insert("contract".into(), contract.to_json());
            }
            let node = Node {
                unique_id: format!("model.{}.{}", project.name, m.name),
                name: m.name.clone(),
                resource_type: "model",
                package_name: project.name.clone(),
                path: m.path.clone(),
                original_file_path: m.original_file_path.clone(),
                fqn,
                raw_code: m.content.clone(),
                compiled_code: None,
                materialized,
                schema: String::new(),
                alias: String::new(),
                database: self.shared.database.clone(),
                depends_on_nodes: Vec::new(),
                depends_on_macros: calls
                    .macros
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|n| format!("macro.{}.{n}", project.name))
                    .collect(),
                refs: Vec::new(),
                sources: Vec::new(),
                description: props.map(|p| p.description.clone()).unwrap_or_default(),
                columns: props.map(|p| p.columns.clone()).unwrap_or_default(),
                patch_path: props.map(|p| format!("{}://{}", project.name, p.file)),
                properties_at: props.map(|p| (p.file.clone(), p.line)),
                tags,
                config,
                contract,
                constraints: props.map(|p| p.constraints.clone()).unwrap_or_default(),
            };
            parsed.push((node, calls));
        }

        // Names: schema and alias through the project's overrides, if any.
        for (node, _) in parsed.iter_mut() {
            let custom_schema = node
                .config
                .get("schema")
                .and_then(Json::as_str)
                .map(str::to_string);
            node.schema = self.generate_name("generate_schema_name", custom_schema, node)?;
            let custom_alias = node
                .config
                .get("alias")
                .and_then(Json::as_str)
                .map(str::to_string);
            node.alias = self.generate_name("generate_alias_name", custom_alias, node)?;
            self.shared.relations.lock().unwrap().insert(
                node.name.clone(),
                Relation {
                    database: node.database.clone(),
                    schema: node.schema.clone(),
                    identifier: node.alias.clone(),

                    filter: None,
                },
            );
        }

        // Dependencies, now that disabled models are known.
        for (node, calls) in parsed.iter_mut() {
            node.depends_on_nodes = self.deps_of(project, calls, &node.original_file_path)?;
            for r in calls.refs.lock().unwrap().iter() {
                if !node.refs.contains(r) {
                    node.refs.push(r.clone());
                }
            }
            for st in calls.sources.lock().unwrap().iter() {
                if !node.sources.contains(st) {
                    node.sources.push(st.clone());
                }
            }
            self.resolve_contract(project, node, &mut warnings)?;
        }
        manifest.nodes = parsed.into_iter().map(|(n, _)| n).collect();
        manifest.index();
        manifest.tests = self.build_tests(project, &manifest)?;
        manifest.index();
        manifest.warnings = project.warnings.clone();
        for w in warnings.0 {
            if !manifest.warnings.contains(&w) {
                manifest.warnings.push(w);
            }
        }
        Ok(manifest)
    }

    /// The model and source ids a render referred to; refs to disabled models fail.
    pub(super) fn deps_of(
        &self,
        project: &Project,
        calls: &Calls,
        file: &str,
    ) -> Result<Vec<String>> {
        let disabled = self.shared.disabled.lock().unwrap().clone();
        let mut deps = Vec::new();
        for r in calls.refs.lock().unwrap().iter() {
            if disabled.contains(r) {
                return Err(Error::in_file(
                    file.to_string(),
                    format!(
                        "ref('{r}') points at a disabled model; enable '{r}' or remove the ref"
                    ),
                ));
            }
            let id = format!("model.{}.{r}", project.name);
            if !deps.contains(&id) {
                deps.push(id);
            }
        }
        for (s, t) in calls.sources.lock().unwrap().iter() {
            let id = format!("source.{}.{s}.{t}", project.name);
            if !deps.contains(&id) {
                deps.push(id);
            }
        }
        Ok(deps)
    }

    /// Calls a project's `generate_schema_name`/`generate_alias_name` override, or
    /// applies dbt's default rule.
    pub(super) fn generate_name(
        &self,
        macro_name: &str,
        custom: Option<String>,
        node: &Node,
    ) -> Result<String> {
        if let Some(file) = self.macros.get(macro_name) {
            let calls = Calls::new(Phase::Parse);
            let this = Relation {
                database: node.database.clone(),
                schema: self.shared.target_schema.clone(),
                identifier: node.name.clone(),

                filter: None,
            };
            let ctx = self.context(&calls, this, node.config.clone(), node_json(node));
            let tmpl = self
                .env
                .get_template(file)
                .map_err(|e| template_error(&e, file))?;
            let mut captured = tmpl
                .render_captured(ctx)
                .map_err(|e| template_error(&e, file))?;
            calls.returns.lock().unwrap().push(None);
            let args = [
                custom.map(Value::from).unwrap_or(Value::from(())),
                Value::from(minijinja::value::Serde(node_json(node))),
            ];
            let out = captured
                .with_state_mut(|st| st.call_macro(macro_name, &args))
                .map_err(|e| template_error(&e, file))?;
            let ret = calls.returns.lock().unwrap().pop().flatten();
            let name = ret.map(|v| v.to_string()).unwrap_or(out).trim().to_string();
            if name.is_empty() {
                return Err(Error::in_file(
                    file.to_string(),
                    format!(
                        "{macro_name} returned an empty name for model '{}'",
                        node.name
                    ),
                ));
            }
            return Ok(name);
        }
        Ok(match (macro_name, custom) {
            ("generate_schema_name", None) => self.shared.target_schema.clone(),
            ("generate_schema_name", Some(c)) => {
                format!("{}_{}", self.shared.target_schema, c.trim())
            }
            (_, Some(alias)) => alias,
            (_, None) => node.name.clone(),
        })
    }

    /// Renders the SQL of `node` with every relation resolved.
    pub(crate) fn compile(&self, node: &Node) -> Result<String> {
        let calls = Calls::new(Phase::Compile);
        let this = Relation {
            database: node.database.clone(),
            schema: node.schema.clone(),
            identifier: node.alias.clone(),

            filter: None,
        };
        let ctx = self.context(&calls, this, node.config.clone(), node_json(node));
        let tmpl = self
            .env
            .get_template(&node.original_file_path)
            .map_err(|e| template_error(&e, &node.original_file_path))?;
        let sql = tmpl
            .render(ctx)
            .map_err(|e| template_error(&e, &node.original_file_path))?;
        Ok(sql.trim().to_string())
    }
}

pub(super) fn tags_of(config: &Map<String, Json>) -> Vec<String> {
    config
        .get("tags")
        .and_then(Json::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Json::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}
