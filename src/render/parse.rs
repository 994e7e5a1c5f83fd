//! Models: the parse render of every model (configs, dependencies, enabled or
//! not), their schema and alias through `generate_schema_name`/`generate_alias_name`
//! (refused past PostgreSQL's 63 bytes), and the compile render that produces the
//! SQL that runs (refused when it is empty).

use std::collections::BTreeMap;
use std::sync::Arc;

use minijinja::Value;
use serde_json::{Map, Value as Json};

use crate::error::{Error, Result};
use crate::manifest::{Manifest, Materialization, Node, Quoting, Ref, RunHook, SourceNode};
use crate::project::{batch_id, python_str, Batch, BatchSize};
use crate::project::{
    check_call_config, grants_of, Contract, Hook, Hooks, Index, Resource, Warnings,
};
use crate::project::{merge_config, tree_config, ModelProps, Project, SqlFile};
use crate::results::{NodeResult, Status};

use super::context::{node_json, Calls, Phase};
use super::{template_error, RefTarget, Relation, Renderer};

impl Renderer {
    /// Parses and compiles every enabled model of `project` into a [`Manifest`].
    pub(crate) fn build_manifest(&self, project: &Project) -> Result<Manifest> {
        let mut manifest = Manifest::new(&project.name);
        manifest.database = self.shared.database.clone();
        manifest.target_schema = self.shared.target_schema.clone();
        for p in &project.packages {
            if let Some(dir) = &p.project.package_dir {
                manifest
                    .package_dirs
                    .push((format!("{dir}/"), p.name.clone()));
            }
        }
        let mut warnings = Warnings::default();
        for (p, s) in project
            .with_packages()
            .flat_map(|p| p.sources.iter().map(move |s| (p, s)))
        {
            let mut table = s.clone();
            table.description = self.description(&table.description, &table.file)?;
            table.source_description = self.description(&table.source_description, &table.file)?;
            for c in &mut table.columns {
                c.description = self.description(&c.description, &table.file)?;
            }
            manifest.sources.push(SourceNode {
                unique_id: format!("source.{}.{}.{}", p.name, s.source_name, s.name),
                // dbt's: the folders of the YAML file, the source, the table.
                fqn: {
                    let file = p.local_path(&s.file);
                    let mut fqn = super::data_tests::yaml_fqn(&p.name, file, &s.source_name);
                    fqn.push(s.name.clone());
                    fqn
                },
                database: s
                    .database
                    .clone()
                    .unwrap_or_else(|| self.shared.database.clone()),
                table,
            });
        }
        for (name, def) in &self.macros {
            let file = &def.file;
            if file == super::namespace::CROSS_DATABASE_FILE {
                continue;
            }
            manifest.macros.push((name.clone(), file.clone()));
            let text = project
                .macros
                .iter()
                .find(|f| &f.original_file_path == file);
            if let Some(sql) = text.and_then(|f| crate::project::macro_sql(&f.content, name)) {
                let calls = crate::project::macro_calls(&sql, name, self.macros.keys());
                manifest.macro_sources.insert(name.clone(), (sql, calls));
            }
        }
        // dbt runs the root project's run hooks first, then each package's in
        // the order of the packages' names; the console numbers them across
        // projects (`pkg.on-run-end.2`), the unique id within the project.
        let mut hook_projects: Vec<&Project> = project.with_packages().collect();
        hook_projects[1..].sort_by(|a, b| a.name.cmp(&b.name));
        for end in [false, true] {
            let kind = if end { "on-run-end" } else { "on-run-start" };
            let mut position = 0;
            for p in &hook_projects {
                let hooks = if end { &p.on_run_end } else { &p.on_run_start };
                for (i, sql) in hooks.iter().enumerate() {
                    let name = &p.name;
                    // dbt's operation node: `<project>.hooks.<project>-<kind>-<i>`,
                    // configured by the project's `models:` tree.
                    let fqn = vec![
                        name.clone(),
                        "hooks".to_string(),
                        format!("{name}-{kind}-{i}"),
                    ];
                    let mut config =
                        tree_config(Resource::Model, &p.models_config, name, &fqn[1..]);
                    root_override(project, p, Resource::Model, &fqn, &mut config);
                    let mut unrendered = tree_config(
                        Resource::Model,
                        &p.as_written.models_config,
                        name,
                        &fqn[1..],
                    );
                    root_override(project, p, Resource::Model, &fqn, &mut unrendered);
                    let depends_on_macros =
                        crate::project::macro_calls(sql, "", self.macros.keys())
                            .iter()
                            .filter_map(|m| self.macros.get(m).map(|d| d.unique_id()))
                            .collect();
                    manifest.run_hooks.push(RunHook {
                        unique_id: format!("operation.{name}.{name}-{kind}-{i}"),
                        name: format!("{name}.{kind}.{position}"),
                        sql: sql.clone(),
                        end,
                        package: name.clone(),
                        index: i,
                        checksum: p.project_file_checksum.clone(),
                        config,
                        unrendered_config: unrendered,
                        depends_on_macros,
                    });
                    position += 1;
                }
            }
        }

        // Seeds first: their configs need no rendering, and whether one is
        // enabled decides whether a ref to it is valid.
        let mut parsed: Vec<(Node, Arc<Calls>)> = Vec::new();
        for p in project.with_packages() {
            for s in &p.seeds {
                if let Some(node) = self.seed_node(project, p, s) {
                    parsed.push((node, Calls::new(Phase::Parse)));
                }
            }
        }

        // Parse phase: configs and dependencies, the files rendered on the
        // available cores, their outcomes taken in order.
        let files: Vec<(&Project, &SqlFile, Resource)> = project
            .with_packages()
            .flat_map(|p| {
                [
                    (&p.models, Resource::Model),
                    (&p.analyses, Resource::Analysis),
                    (&p.snapshots, Resource::Snapshot),
                ]
                .into_iter()
                .flat_map(move |(files, resource)| files.iter().map(move |m| (p, m, resource)))
            })
            .collect();
        let (outcomes, _) = crate::parallel::map_with(
            &files,
            crate::parallel::cores(),
            || (),
            |_, (p, m, resource)| {
                let (mut disabled, mut w) = (Vec::new(), Warnings::default());
                let node = self.parse_sql_node(project, p, m, *resource, &mut disabled, &mut w);
                (node, disabled, w)
            },
        );
        for (node, disabled, w) in outcomes {
            manifest.disabled.extend(disabled);
            for w in w.0 {
                warnings.push(w);
            }
            parsed.extend(node?);
        }

        // Models first, then analyses, then seeds.
        parsed.sort_by_key(|(n, _)| match n.resource_type {
            "model" => 0,
            "analysis" => 1,
            "snapshot" => 3,
            _ => 2,
        });

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
            let custom_database = node
                .config
                .get("database")
                .and_then(Json::as_str)
                .map(str::to_string);
            node.database = self.generate_name("generate_database_name", custom_database, node)?;
            if node.resource_type == "snapshot" {
                // dbt's older snapshot configs name the schema as it is.
                if let Some(s) = node.config.get("target_schema").and_then(Json::as_str) {
                    node.schema = s.to_string();
                }
            }
            check_identifiers(node)?;
            if node.resource_type == "analysis" {
                continue; // nothing refers to an analysis
            }
            let target = RefTarget {
                unique_id: node.unique_id.clone(),
                relation: Relation::of_node(node),
                event_time: node
                    .config
                    .get("event_time")
                    .and_then(Json::as_str)
                    .map(str::to_string),
            };
            let mut relations = self.shared.relations.lock().unwrap();
            if node.version.is_some() {
                relations.insert(
                    Ref {
                        package: Some(node.package_name.clone()),
                        name: node.name.clone(),
                        version: node.version.clone(),
                    },
                    target.clone(),
                );
            }
            if node.version.is_none() || node.version == node.latest_version {
                relations.insert(
                    Ref {
                        package: Some(node.package_name.clone()),
                        name: node.name.clone(),
                        version: None,
                    },
                    target,
                );
            }
        }

        // Dependencies, now that disabled models are known.
        for (node, calls) in parsed.iter_mut() {
            let own = project
                .with_packages()
                .find(|p| p.name == node.package_name)
                .unwrap_or(project);
            node.depends_on_nodes = self.deps_of(own, calls, &node.original_file_path)?;
            if node.materialized == Materialization::Ephemeral
                && node.depends_on_nodes.contains(&node.unique_id)
            {
                return Err(Error::in_file(
                    node.original_file_path.clone(),
                    format!("ephemeral model '{}' refers to itself; an ephemeral model cannot read its own relation", node.name),
                ));
            }
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
            self.resolve_contract(own, node, &mut warnings)?;
        }
        manifest.nodes = parsed.into_iter().map(|(n, _)| n).collect();
        manifest.index();
        let mut tests = Vec::new();
        for p in project.with_packages() {
            tests.extend(self.build_tests(project, p, &manifest, &mut warnings)?);
        }
        manifest.tests = tests;
        manifest.index();
        for p in project.with_packages() {
            let units = self.build_unit_tests(p, &manifest)?;
            manifest.tests.extend(units);
        }
        manifest.index();
        manifest.warnings = project.warnings.clone();
        for w in warnings.0 {
            if !manifest.warnings.contains(&w) {
                manifest.warnings.push(w);
            }
        }
        Ok(manifest)
    }

    /// The source and model ids a render referred to, sources first as dbt links
    /// them; refs to disabled models fail.
    pub(super) fn deps_of(
        &self,
        project: &Project,
        calls: &Calls,
        file: &str,
    ) -> Result<Vec<String>> {
        let disabled = self.shared.disabled.lock().unwrap().clone();
        // dbt links sources before refs.
        let mut deps = Vec::new();
        for (s, t) in calls.sources.lock().unwrap().iter() {
            let package = match self.shared.source(&project.name, s, t) {
                Some((p, _)) => p,
                None => project.name.clone(),
            };
            let id = format!("source.{package}.{s}.{t}");
            if !deps.contains(&id) {
                deps.push(id);
            }
        }
        for r in calls.refs.lock().unwrap().iter() {
            let resolved = self
                .shared
                .check_ref(&project.name, r)
                .map_err(|e| Error::in_file(file.to_string(), e.detail().unwrap_or_default()))?;
            let latest = Ref {
                version: resolved
                    .version
                    .clone()
                    .or_else(|| self.shared.latest(&resolved)),
                ..resolved.clone()
            };
            if disabled.contains(&resolved) || disabled.contains(&latest) {
                let name = &r.name;
                return Err(Error::in_file(
                    file.to_string(),
                    format!(
                        "ref('{name}') points at a disabled {}; enable '{name}' or remove the ref",
                        self.shared.kind_of(&resolved)
                    ),
                ));
            }
            let id = self.shared.ref_id(&resolved);
            if !deps.contains(&id) {
                deps.push(id);
            }
        }
        Ok(deps)
    }

    /// The node of a seed's CSV file, with its config from the `seeds:` tree and
    /// its YAML properties; `None` when it is disabled.
    fn seed_node(&self, root: &Project, project: &Project, s: &SqlFile) -> Option<Node> {
        let props = project.seed_props.get(&s.name);
        let (fqn, mut config) = fqn_and_config(project, s, Resource::Seed, props);
        let mut unrendered = written_config(project, Resource::Seed, &fqn, &s.name, props);
        root_override(root, project, Resource::Seed, &fqn, &mut config);
        root_override(root, project, Resource::Seed, &fqn, &mut unrendered);
        if config.get("enabled").and_then(Json::as_bool) == Some(false) {
            self.shared.disabled.lock().unwrap().insert(Ref {
                package: Some(project.name.clone()),
                name: s.name.clone(),
                version: None,
            });
            return None;
        }
        Some(Node {
            unrendered_config: unrendered,
            unique_id: format!("seed.{}.{}", project.name, s.name),
            name: s.name.clone(),
            resource_type: "seed",
            package_name: project.name.clone(),
            path: s.path.clone(),
            original_file_path: s.original_file_path.clone(),
            fqn,
            raw_code: String::new(),
            checksum: project
                .seed_checksums
                .get(&s.name)
                .cloned()
                .unwrap_or(Json::Null),
            compiled_code: None,
            compile_error: None,
            materialized: Materialization::Seed,
            schema: String::new(),
            alias: String::new(),
            database: self.shared.database.clone(),
            depends_on_nodes: Vec::new(),
            depends_on_macros: Vec::new(),
            refs: Vec::new(),
            sources: Vec::new(),
            description: props.map(|p| p.description.clone()).unwrap_or_default(),
            columns: props.map(|p| p.columns.clone()).unwrap_or_default(),
            patch_path: props.map(|p| format!("{}://{}", project.name, p.file)),
            properties_at: props.map(|p| (p.file.clone(), p.line)),
            contract: Contract::default(),
            constraints: Vec::new(),
            incremental: false,
            tags: tags_of(&config),
            hooks: Hooks::of(&config),
            rendered_hooks: Hooks::default(),
            hook_render: None,
            indexes: Index::list(&config),
            grants: grants_of(&config),
            config,
            version: None,
            latest_version: None,
            quoting: project.quoting,
        })
    }

    /// Calls a project's `generate_schema_name`/`generate_alias_name`/
    /// `generate_database_name` override, or applies dbt's default rule (for the
    /// database: the node's `database` config, else the target's).
    pub(super) fn generate_name(
        &self,
        macro_name: &str,
        custom: Option<String>,
        node: &Node,
    ) -> Result<String> {
        // dbt's: the root project's override, else the node's package's, else
        // dbt's own.
        // The macro is called through its own template: in a file of several
        // macros, one it calls from its file goes through the macro namespace.
        let own = |p: &str| self.table.in_package(p, macro_name);
        let def = own(&self.shared.root)
            .or_else(|| own(&node.package_name))
            .or_else(|| self.macros.get(macro_name));
        if let Some(def) = def {
            let file = def.file.as_str();
            let calls = Calls::new(Phase::Parse);
            let this = Relation::new(
                &node.database,
                &self.shared.target_schema,
                &node.name,
                node.quoting,
            );
            let ctx = self.context(&calls, this, node.config.clone(), node_json(node));
            let tmpl = self
                .env
                .get_template(&def.template)
                .map_err(|e| template_error(&e, file))?;
            let mut captured = tmpl
                .render_captured(ctx)
                .map_err(|e| template_error(&e, file))?;
            calls.returns.lock().unwrap().push(None);
            let args = [
                custom.map(Value::from).unwrap_or(Value::from(())),
                Value::from(minijinja::value::Serde(node_json(node))),
            ];
            let out = captured.with_state_mut(|st| st.call_macro(macro_name, &args));
            let ret = calls.returns.lock().unwrap().pop().flatten();
            let name = super::macros::returned(out, ret)
                .map_err(|e| template_error(&e, file))?
                .to_string()
                .trim()
                .to_string();
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
            ("generate_database_name", None) => self.shared.database.clone(),
            ("generate_schema_name", None) => self.shared.target_schema.clone(),
            ("generate_schema_name", Some(c)) => {
                format!("{}_{}", self.shared.target_schema, c.trim())
            }
            (_, Some(alias)) => alias,
            // dbt's default for a versioned model: `<name>_v<version>`.
            (_, None) => match &node.version {
                Some(v) => format!("{}_v{}", node.name, v.replace('.', "_")),
                None => node.name.clone(),
            },
        })
    }

    /// The context `node`'s SQL and hooks are rendered in: `this` is its relation.
    pub(super) fn compile_context(&self, calls: &Arc<Calls>, node: &Node) -> Value {
        let this = Relation::new(&node.database, &node.schema, &node.alias, node.quoting);
        self.context(calls, this, node.config.clone(), node_json(node))
    }

    /// Renders an `on-run-start`/`on-run-end` hook; `extra` adds dbt's `schemas`,
    /// `database_schemas` and `results` for `on-run-end`. The error is one line.
    pub(crate) fn render_run_hook(
        &self,
        hook: &RunHook,
        extra: Json,
    ) -> std::result::Result<String, String> {
        let calls = Calls::new(Phase::Compile);
        let this = Relation::new(
            &self.shared.database,
            &self.shared.target_schema,
            hook.unique_id.rsplit('.').next().unwrap_or_default(),
            Quoting::default(),
        );
        let node = serde_json::json!({"name": hook.name, "unique_id": hook.unique_id,
            "resource_type": "operation", "original_file_path": "dbt_project.yml"});
        let base = self.context(&calls, this, Map::new(), node);
        let ctx = minijinja::context! { ..Value::from(minijinja::value::Serde(&extra)), ..base };
        match self.env.render_str(&super::pyops::rewrite(&hook.sql), ctx) {
            Ok(sql) => Ok(sql.trim().to_string()),
            Err(e) => Err(format!(
                "{}: {}",
                hook.name,
                e.detail()
                    .map(str::to_string)
                    .unwrap_or_else(|| e.kind().to_string())
            )),
        }
    }

    /// Renders the SQL of `node` with every relation resolved (`is_incremental()`
    /// is true when `node.incremental` is); returns it with the unique ids of the
    /// ephemeral models it refers to, in the order of their first `ref()` (their
    /// CTEs are not injected yet: see [`super::ephemeral`]).
    pub(super) fn render_node(&self, node: &Node) -> Result<(String, Vec<String>)> {
        self.render_node_in(node, None)
    }

    /// [`Self::render_node`], inside `batch` of a microbatch model when given:
    /// `model.batch` is set and the refs and sources with an `event_time` read
    /// the batch's window.
    pub(super) fn render_node_in(
        &self,
        node: &Node,
        batch: Option<(Batch, BatchSize)>,
    ) -> Result<(String, Vec<String>)> {
        let calls = Calls::new(Phase::Compile);
        let ctx = self.compile_context(&calls, node);
        let ctx = match batch {
            None => ctx,
            Some(((start, end), size)) => {
                let mut model: BTreeMap<String, Value> = match node_json(node) {
                    Json::Object(m) => m
                        .into_iter()
                        .map(|(k, v)| (k, Value::from(minijinja::value::Serde(v))))
                        .collect(),
                    _ => BTreeMap::new(),
                };
                let mut b = BTreeMap::new();
                b.insert("id", Value::from(batch_id(start, size)));
                b.insert("event_time_start", super::pymodules::utc_datetime(start));
                b.insert("event_time_end", super::pymodules::utc_datetime(end));
                model.insert("batch".to_string(), Value::from(b));
                minijinja::context! {
                    __batch_window => vec![python_str(start), python_str(end)],
                    model => Value::from(model),
                    ..ctx
                }
            }
        };
        let ctx = minijinja::context! {
            __incremental => node.incremental,
            __depends_on => node.depends_on_nodes.clone(),
            __node_name => node.name.clone(),
            ..ctx
        };
        let template =
            super::template_name(node.resource_type, &node.original_file_path, &node.name);
        let tmpl = self
            .env
            .get_template(&template)
            .map_err(|e| template_error(&e, &node.original_file_path))?;
        let sql = tmpl
            .render(ctx)
            .map_err(|e| template_error(&e, &node.original_file_path))?;
        if !has_sql(&sql) {
            return Err(empty_model(&node.original_file_path, &node.name).for_node(&node.unique_id));
        }
        let ephemerals = calls.ephemerals.lock().unwrap().clone();
        Ok((sql.trim().to_string(), ephemerals))
    }

    /// Parses one model or analysis file (`resource` says which): its configs and
    /// dependencies. A disabled one is recorded as such and gives `None`.
    fn parse_sql_node(
        &self,
        root: &Project,
        project: &Project,
        m: &SqlFile,
        resource: Resource,
        disabled: &mut Vec<String>,
        warnings: &mut Warnings,
    ) -> Result<Option<(Node, Arc<Calls>)>> {
        let (name, version, props) = match resource {
            Resource::Analysis => (
                m.name.clone(),
                None,
                project.analysis_props.get(&m.name).cloned(),
            ),
            Resource::Snapshot => (
                m.name.clone(),
                None,
                project.snapshot_props.get(&m.name).cloned(),
            ),
            _ => project.model_identity(m),
        };
        let props = props.as_ref();
        let (mut fqn, mut config) = fqn_and_config(project, m, resource, props);
        let mut unrendered = written_config(project, resource, &fqn, &m.name, props);
        let (resource_type, unique_id) = match (resource, &version) {
            (Resource::Analysis, _) => ("analysis", format!("analysis.{}.{name}", project.name)),
            (Resource::Snapshot, _) => ("snapshot", format!("snapshot.{}.{name}", project.name)),
            (_, Some(v)) => ("model", format!("model.{}.{name}.v{v}", project.name)),
            _ => ("model", format!("model.{}.{name}", project.name)),
        };
        if let Some(v) = &version {
            // dbt's fqn of a version: the model's name, then `v<version>`.
            if let Some(last) = fqn.last_mut() {
                *last = name.clone();
            }
            fqn.push(format!("v{v}"));
        }
        let calls = Calls::new(Phase::Parse);
        let this = Relation::new(
            &self.shared.database,
            &self.shared.target_schema,
            &name,
            project.quoting,
        );
        let model = serde_json::json!({"name": name, "unique_id": unique_id, "resource_type": resource_type, "fqn": fqn, "original_file_path": m.original_file_path, "version": crate::manifest::version_json(version.as_deref())});
        let ctx = self.context(&calls, this, config.clone(), model);
        let template = super::template_name(resource_type, &m.original_file_path, &name);
        let tmpl = self
            .env
            .get_template(&template)
            .map_err(|e| template_error(&e, &m.original_file_path))?;
        let empty = match tmpl.render(ctx) {
            // A model that reads `execute` (itself or in a macro it calls, such
            // as `dbt_utils.get_column_values`) may render nothing while parsing
            // and its SQL when it runs: checked then (`render_node`).
            Ok(sql) => {
                !has_sql(&sql)
                    && !m.content.contains("execute")
                    && calls.macros.lock().unwrap().is_empty()
            }
            // dbt finds an undefined macro only when it compiles the node, which
            // then fails at run time while the others run: keep the node.
            Err(e) if is_run_time_error(&e) => false,
            Err(e) => return Err(template_error(&e, &m.original_file_path)),
        };
        let own = calls.config.lock().unwrap().clone();
        check_call_config(resource, &own, &m.original_file_path, warnings)?;
        for (k, v) in own {
            merge_config(&mut unrendered, &k, v.clone());
            merge_config(&mut config, &k, v);
        }
        root_override(root, project, resource, &fqn, &mut config);
        root_override(root, project, resource, &fqn, &mut unrendered);
        let enabled = config
            .get("enabled")
            .and_then(Json::as_bool)
            .unwrap_or(true);
        if enabled && resource == Resource::Snapshot {
            let (file, line) = match props {
                Some(p) if !p.config.is_empty() => (p.file.as_str(), Some(p.line)),
                _ => (m.original_file_path.as_str(), None),
            };
            crate::project::SnapshotConfig::of(&config, &self.shared.database, &name)
                .map_err(|msg| Error::usage(msg).at(file, line))?;
        }
        if !enabled {
            if matches!(resource, Resource::Model | Resource::Snapshot) {
                disabled.push(unique_id);
                self.shared.disabled.lock().unwrap().insert(Ref {
                    package: Some(project.name.clone()),
                    name: name.clone(),
                    version: version.clone(),
                });
            }
            return Ok(None);
        }
        if empty {
            // It would fail as `syntax error at or near ")"` in the wrapper.
            return Err(empty_model(&m.original_file_path, &name));
        }
        // Every value was checked where it was given: a materialization here
        // is one reluvia-transform builds.
        let materialized = match config.get("materialized").and_then(Json::as_str) {
            Some("table") => Materialization::Table,
            Some("ephemeral") if resource == Resource::Model => Materialization::Ephemeral,
            Some("incremental") if resource == Resource::Model => Materialization::Incremental,
            Some("materialized_view") if resource == Resource::Model => {
                Materialization::MaterializedView
            }
            _ if resource == Resource::Snapshot => Materialization::Snapshot,
            _ => Materialization::View,
        };
        let tags = tags_of(&config);
        let contract = Contract::of(&config);
        let hooks = Hooks::of(&config);
        let indexes = Index::list(&config);
        let grants = grants_of(&config);
        if materialized == Materialization::Incremental {
            // Where a YAML entry configures the model, name that place.
            let (file, line) = match props {
                Some(p) if p.config.contains_key("contract") => (p.file.as_str(), Some(p.line)),
                _ => (m.original_file_path.as_str(), None),
            };
            check_incremental(&config, &contract, &name)
                .map_err(|msg| Error::usage(msg).at(file, line))?;
        }
        if materialized == Materialization::MaterializedView && contract.enforced {
            let message = format!(
                "model '{name}': an enforced contract on a materialized view is not supported yet; remove `contract` or make it a table"
            );
            return Err(Error::usage(message).at(&m.original_file_path, None));
        }
        if config.contains_key("sql_header")
            && matches!(
                materialized,
                Materialization::MaterializedView | Materialization::Ephemeral
            )
        {
            // dbt-postgres puts it in front of tables, views, incremental models
            // and snapshots only.
            warnings.push(format!(
                "model '{name}' ({}): its sql_header is not run, as in dbt-postgres, which runs one only before a table, view, incremental model or snapshot, not {}; remove it or change the materialization",
                m.original_file_path,
                match materialized {
                    Materialization::Ephemeral => "an ephemeral model",
                    _ => "a materialized view",
                }
            ));
        }
        if config.contains_key("contract") {
            // dbt's config holds the whole contract, defaults included.
            config.insert("contract".into(), contract.to_json());
        }
        let node = Node {
            unrendered_config: unrendered,
            unique_id,
            name: name.clone(),
            resource_type,
            package_name: project.name.clone(),
            path: m.path.clone(),
            original_file_path: m.original_file_path.clone(),
            fqn,
            raw_code: m.content.clone(),
            checksum: crate::project::file_checksum(&m.content),
            compiled_code: None,
            compile_error: None,
            materialized,
            schema: String::new(),
            alias: String::new(),
            database: self.shared.database.clone(),
            depends_on_nodes: Vec::new(),
            depends_on_macros: calls.macro_ids(),
            refs: Vec::new(),
            sources: Vec::new(),
            description: match props {
                Some(p) => self.description(&p.description, &p.file)?,
                None => String::new(),
            },
            columns: match props {
                Some(p) => {
                    let mut cols = p.columns.clone();
                    for c in &mut cols {
                        c.description = self.description(&c.description, &p.file)?;
                    }
                    cols
                }
                None => Vec::new(),
            },
            patch_path: props.map(|p| format!("{}://{}", project.name, p.file)),
            properties_at: props.map(|p| (p.file.clone(), p.line)),
            tags,
            config,
            contract,
            constraints: props.map(|p| p.constraints.clone()).unwrap_or_default(),
            incremental: false,
            latest_version: version
                .as_ref()
                .and_then(|_| props.and_then(|p| p.latest_version.clone())),
            version,
            quoting: project.quoting,
            hooks,
            rendered_hooks: Hooks::default(),
            hook_render: None,
            indexes,
            grants,
        };
        Ok(Some((node, calls)))
    }

    /// Renders the hooks of `node` with its context (`this`, `config`, `ref` …).
    /// A hook whose Jinja reaches the database is kept as written, to be
    /// rendered when it runs (see [`Self::render_hook_now`]), as dbt renders
    /// every hook; the others give the same SQL now. A hook that renders to
    /// nothing is left out.
    pub(crate) fn render_hooks(&self, node: &Node) -> Result<Hooks> {
        let mut out = Hooks::default();
        for (which, hooks, slot) in [
            ("pre-hook", &node.hooks.pre, &mut out.pre),
            ("post-hook", &node.hooks.post, &mut out.post),
        ] {
            for (i, h) in hooks.iter().enumerate() {
                let (sql, wanted) =
                    super::with_database(None, || self.render_hook_text(node, (which, i), &h.sql));
                if wanted {
                    slot.push(Hook {
                        at_run: true,
                        ..h.clone()
                    });
                    continue;
                }
                let sql = sql?;
                let sql = sql.trim();
                if !sql.is_empty() {
                    slot.push(Hook {
                        sql: sql.to_string(),
                        transaction: h.transaction,
                        at_run: false,
                    });
                }
            }
        }
        Ok(out)
    }

    /// Renders hook `hook` of `node` (one kept for `Hook::at_run`) now, on the
    /// database [`super::with_database`] gives.
    pub(crate) fn render_hook_now(&self, node: &Node, hook: &Hook) -> Result<String> {
        let found = [
            ("pre-hook", &node.hooks.pre),
            ("post-hook", &node.hooks.post),
        ]
        .into_iter()
        .find_map(|(which, hooks)| {
            let i = hooks
                .iter()
                .position(|h| h.sql == hook.sql && h.transaction == hook.transaction)?;
            Some((which, i))
        })
        .unwrap_or(("hook", 0));
        self.render_hook_text(node, found, &hook.sql)
    }

    fn render_hook_text(
        &self,
        node: &Node,
        (which, i): (&str, usize),
        sql: &str,
    ) -> Result<String> {
        self.env
            .render_str(
                &super::pyops::rewrite(sql),
                self.compile_context(&Calls::new(Phase::Compile), node),
            )
            .map_err(|e| {
                Error::usage(format!(
                    "{which} {} of {}: {}",
                    i + 1,
                    node.name,
                    e.detail()
                        .map(str::to_string)
                        .unwrap_or_else(|| e.kind().to_string())
                ))
                .at(node.original_file_path.clone(), None)
                .for_node(&node.unique_id)
            })
    }
}

/// What an incremental model cannot be configured with yet, or at all (dbt refuses
/// both merge column lists at run time; we refuse them when the project loads).
fn check_incremental(
    config: &Map<String, Json>,
    contract: &Contract,
    name: &str,
) -> std::result::Result<(), String> {
    if contract.enforced {
        return Err(format!("model {name}: an enforced contract on an incremental model is not supported yet; remove `contract` from this model or make it a table"));
    }
    let set = |k: &str| config.get(k).is_some_and(|v| !v.is_null());
    if set("merge_update_columns") && set("merge_exclude_columns") {
        return Err(format!("model {name}: Model cannot specify merge_update_columns and merge_exclude_columns. Please update model to use only one config"));
    }
    crate::project::Microbatch::of(name, config)?;
    Ok(())
}

/// A model whose SQL is empty (a compile error: it would fail as `syntax error at
/// or near ")"` in the statement that builds it).
fn empty_model(file: &str, name: &str) -> Error {
    Error::in_file(
        file.to_string(),
        format!(
            "model '{name}' has no SQL (the file renders to nothing but blanks and comments); a model must be a select statement: write it, or delete the file (or disable the model with enabled: false)"
        ),
    )
}

/// Whether rendered SQL holds anything besides whitespace and comments.
fn has_sql(sql: &str) -> bool {
    let mut rest = sql;
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix("--") {
            rest = after.split_once('\n').map_or("", |(_, next)| next);
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.split_once("*/").map_or("", |(_, next)| next);
        } else {
            return !rest.is_empty();
        }
    }
}

/// PostgreSQL cuts identifiers to 63 bytes: a longer schema or alias would build
/// (and swap, and drop) a relation of another name, so it is a compile error.
fn check_identifiers(node: &Node) -> Result<()> {
    for (what, ident, fix) in [
        (
            "schema",
            &node.schema,
            "set a shorter +schema (or target schema)",
        ),
        (
            "alias",
            &node.alias,
            "set a shorter alias in its config, or rename the file",
        ),
    ] {
        if ident.len() > MAX_IDENTIFIER {
            return Err(Error::in_file(
                node.original_file_path.clone(),
                format!(
                    "model '{}': its {what} '{ident}' is {} bytes, over PostgreSQL's limit of {MAX_IDENTIFIER} for a name (it would be cut, and the model built under another name); {fix}",
                    node.name,
                    ident.len()
                ),
            )
            .for_node(&node.unique_id));
        }
    }
    Ok(())
}

/// The longest identifier PostgreSQL keeps whole, in bytes (NAMEDATALEN - 1).
const MAX_IDENTIFIER: usize = 63;

/// Render errors dbt reports only when it compiles the node (at run time): a call
/// of a macro or function that does not exist. Also `+`/`-` on `modules.datetime`
/// values, which dbt does and minijinja cannot: the node fails when it runs, not
/// the whole project.
pub(super) fn is_run_time_error(e: &minijinja::Error) -> bool {
    matches!(
        e.kind(),
        minijinja::ErrorKind::UnknownFunction | minijinja::ErrorKind::UndefinedError
    ) || (e.kind() == minijinja::ErrorKind::InvalidOperation
        && e.detail().is_some_and(|d| {
            d.starts_with("tried to use") && d.ends_with("plain object and plain object")
        }))
}

/// A model's or seed's fqn (`[project, folders…, name]`) and its configs from
/// the `dbt_project.yml` tree, then its YAML properties.
fn fqn_and_config(
    project: &Project,
    f: &SqlFile,
    resource: Resource,
    props: Option<&ModelProps>,
) -> (Vec<String>, Map<String, Json>) {
    let dirs: Vec<String> = f.path.split('/').map(str::to_string).collect();
    let mut fqn = vec![project.name.clone()];
    fqn.extend(dirs[..dirs.len() - 1].iter().cloned());
    if resource == Resource::Snapshot {
        // dbt's fqn of a snapshot block holds its file's name; a YAML snapshot's
        // path is `<file>.yml/<name>.sql`, whose folders come before the file.
        if f.path.ends_with(".sql") && !f.path.contains(".yml/") && !f.path.contains(".yaml/") {
            let stem = dirs[dirs.len() - 1].trim_end_matches(".sql").to_string();
            fqn.push(stem);
        } else {
            fqn.pop();
        }
    }
    fqn.push(f.name.clone());
    let tree = match resource {
        Resource::Seed => &project.seeds_config,
        Resource::Analysis => &project.analyses_config,
        Resource::Snapshot => &project.snapshots_config,
        _ => &project.models_config,
    };
    let mut config = tree_config(resource, tree, &project.name, &fqn[1..]);
    if resource == Resource::Snapshot {
        config.insert("materialized".into(), Json::from("snapshot"));
    }
    if let Some(p) = props {
        for (k, v) in &p.config {
            merge_config(&mut config, k, v.clone());
        }
    }
    (fqn, config)
}

/// A node's config as written (dbt's `unrendered_config`): the keys the
/// `dbt_project.yml` tree and its YAML `config:` set, Jinja kept as text.
fn written_config(
    project: &Project,
    resource: Resource,
    fqn: &[String],
    name: &str,
    props: Option<&ModelProps>,
) -> Map<String, Json> {
    let w = &project.as_written;
    // Snapshots' configs are not rendered: as written is as read.
    let (tree, written) = match resource {
        Resource::Seed => (&w.seeds_config, Some(&w.seed_props)),
        Resource::Analysis => (&w.analyses_config, Some(&w.analysis_props)),
        Resource::Snapshot => (&project.snapshots_config, None),
        _ => (&w.models_config, Some(&w.model_props)),
    };
    let mut config = tree_config(resource, tree, &project.name, &fqn[1..]);
    let own = props.map(|p| written.and_then(|m| m.get(name)).unwrap_or(&p.config));
    for (k, v) in own.into_iter().flatten() {
        merge_config(&mut config, k, v.clone());
    }
    config
}

/// dbt's precedence for a package's node: the root project's `dbt_project.yml`
/// tree (`models: <package>: …`, and its top-level keys) over everything the
/// package says, its `config()` calls included.
pub(super) fn root_override(
    root: &Project,
    project: &Project,
    resource: Resource,
    fqn: &[String],
    config: &mut Map<String, Json>,
) {
    if root.name == project.name {
        return;
    }
    let tree = match resource {
        Resource::Seed => &root.seeds_config,
        Resource::Analysis => &root.analyses_config,
        Resource::Snapshot => &root.snapshots_config,
        Resource::DataTest => &root.tests_config,
        _ => &root.models_config,
    };
    for (k, v) in tree_config(resource, tree, &project.name, &fqn[1..]) {
        merge_config(config, &k, v);
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

/// What dbt gives `on-run-end` hooks besides the usual context: `results` (every
/// node's result but the on-run-start hooks that passed: `status`, `message`,
/// `execution_time`, `thread_id`, `failures`, `adapter_response` and its `node`),
/// and the schemas (`schemas`) and `[database, schema]` pairs
/// (`database_schemas`) of the models and seeds that were built.
pub(crate) fn run_end_context(manifest: &Manifest, results: &[NodeResult]) -> Json {
    let mut built = std::collections::BTreeSet::new();
    let mut listed = Vec::new();
    for r in results {
        let node = manifest.node(&r.unique_id);
        if let (Some(n), Status::Success) = (node, r.status()) {
            built.insert((n.database.clone(), n.schema.clone()));
        }
        let is_hook = manifest
            .run_hooks
            .iter()
            .any(|h| h.unique_id == r.unique_id);
        if is_hook && r.status() != Status::Error {
            continue;
        }
        let node_json = match (node, manifest.test(&r.unique_id)) {
            (Some(n), _) => node_json(n),
            (_, Some(t)) => serde_json::json!({"name": t.name, "unique_id": t.unique_id,
                "resource_type": "test", "original_file_path": t.original_file_path}),
            _ => serde_json::json!({"unique_id": r.unique_id, "resource_type": "operation"}),
        };
        listed.push(serde_json::json!({
            "status": r.status().as_str(),
            "message": r.message(),
            "execution_time": r.execution_time,
            "thread_id": r.thread_id,
            "failures": r.failures(),
            "adapter_response": {"_message": r.message(), "code": r.code(),
                                 "rows_affected": r.rows_affected()},
            "node": node_json,
        }));
    }
    serde_json::json!({
        "results": listed,
        "schemas": built.iter().map(|(_, s)| s).collect::<std::collections::BTreeSet<_>>(),
        "database_schemas": built.iter().map(|(d, s)| [d, s]).collect::<Vec<_>>(),
    })
}
