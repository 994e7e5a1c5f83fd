//! Rendering: Jinja SQL templates with dbt's context, on minijinja.
//!
//! Owns the template environment and the dbt functions models call: `ref`,
//! `source`, `config`, `var`, `env_var`, `this`, `target`, `is_incremental`,
//! `return`, `log`, `exceptions.raise_compiler_error`, and every macro of the
//! project's macro paths as a global function. Like dbt, each model is rendered
//! twice: a *parse* render collects its `ref`/`source`/`config` calls (that is how
//! the graph and the configs are known), then a *compile* render, once every
//! relation name is known, produces the SQL that runs.
//!
//! Errors name the file and line (`models/a.sql line 3: …`) and say what to do.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use minijinja::value::{Kwargs, Object, Rest};
use minijinja::{Environment, ErrorKind as JErrorKind, State, Value};
use serde_json::{Map, Value as Json};

use crate::error::{Error, Result};
use crate::manifest::{quote_ident, Manifest, Materialization, Node, SourceNode};
use crate::project::{merge_config, tree_config, Project};
use crate::settings::Settings;

/// A relation as templates see it: renders as `"schema"."identifier"` and has
/// `.schema`, `.identifier`/`.name`/`.table` and `.database` attributes.
#[derive(Debug, Clone)]
pub struct Relation {
    pub database: String,
    pub schema: String,
    pub identifier: String,
}

impl Object for Relation {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "schema" => Some(Value::from(self.schema.clone())),
            "identifier" | "name" | "table" => Some(Value::from(self.identifier.clone())),
            "database" => Some(Value::from(self.database.clone())),
            _ => None,
        }
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}.{}",
            quote_ident(&self.schema),
            quote_ident(&self.identifier)
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Parse,
    Compile,
}

/// What one render of one node records: its calls to `ref`, `source`, `config`
/// and project macros, and the `return()` slots of macro calls in flight.
#[derive(Debug)]
struct Calls {
    phase: Phase,
    refs: Mutex<Vec<String>>,
    sources: Mutex<Vec<(String, String)>>,
    macros: Mutex<BTreeSet<String>>,
    config: Mutex<Map<String, Json>>,
    returns: Mutex<Vec<Option<Value>>>,
}

impl Object for Calls {}

impl Calls {
    fn new(phase: Phase) -> Arc<Calls> {
        Arc::new(Calls {
            phase,
            refs: Mutex::default(),
            sources: Mutex::default(),
            macros: Mutex::default(),
            config: Mutex::default(),
            returns: Mutex::default(),
        })
    }
}

/// `config`: callable (`{{ config(materialized='table') }}`) and readable
/// (`config.get('materialized')`).
#[derive(Debug)]
struct ConfigObj {
    calls: Arc<Calls>,
    /// The configs known before this render (project tree and YAML).
    base: Map<String, Json>,
}

impl Object for ConfigObj {
    fn call(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        args: &[Value],
    ) -> std::result::Result<Value, minijinja::Error> {
        let (_, kwargs): (&[Value], Kwargs) = minijinja::value::from_args(args)?;
        if self.calls.phase == Phase::Parse {
            let mut cfg = self.calls.config.lock().unwrap();
            for key in kwargs.args() {
                let v: Value = kwargs.get(key)?;
                let j = serde_json::to_value(&v).map_err(|e| {
                    minijinja::Error::new(
                        JErrorKind::InvalidOperation,
                        format!("config({key}=…): {e}"),
                    )
                })?;
                merge_config(&mut cfg, key, j);
            }
        }
        Ok(Value::from(""))
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> std::result::Result<Value, minijinja::Error> {
        match method {
            "get" | "require" => {
                let (key, default): (String, Option<Value>) = minijinja::value::from_args(args)?;
                let own = self.calls.config.lock().unwrap().get(&key).cloned();
                match own.or_else(|| self.base.get(&key).cloned()) {
                    Some(v) => Ok(Value::from(minijinja::value::Serde(&v))),
                    None if method == "require" => Err(minijinja::Error::new(
                        JErrorKind::InvalidOperation,
                        format!("config '{key}' is required but not set"),
                    )),
                    None => Ok(default.unwrap_or(Value::from(()))),
                }
            }
            _ => Err(minijinja::Error::from(JErrorKind::UnknownMethod)),
        }
    }
}

/// `exceptions.raise_compiler_error(msg)` and `exceptions.warn(msg)`.
#[derive(Debug)]
struct Exceptions;

impl Object for Exceptions {
    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> std::result::Result<Value, minijinja::Error> {
        let (msg,): (String,) = minijinja::value::from_args(args)?;
        match method {
            "raise_compiler_error" => Err(minijinja::Error::new(JErrorKind::InvalidOperation, msg)),
            "warn" => {
                log::warn!("{msg}");
                Ok(Value::from(""))
            }
            _ => Err(minijinja::Error::from(JErrorKind::UnknownMethod)),
        }
    }
}

/// Facts every render shares.
#[derive(Debug)]
struct Shared {
    project: String,
    database: String,
    target_schema: String,
    vars: Map<String, Json>,
    /// Every model file name (enabled or not), for `ref` checks at parse time.
    model_names: BTreeSet<String>,
    /// `(source, table)` → relation.
    sources: BTreeMap<(String, String), Relation>,
    /// Model name → relation; filled between the parse and compile phases.
    relations: Mutex<BTreeMap<String, Relation>>,
    disabled: Mutex<BTreeSet<String>>,
}

/// The template environment of a project.
pub struct Renderer {
    env: Environment<'static>,
    shared: Arc<Shared>,
    target: Value,
    invocation_id: String,
    run_started_at: String,
    /// Project macro name → file that defines it.
    macros: BTreeMap<String, String>,
}

/// Rewrites dbt's `{% test name(...) %}…{% endtest %}` blocks into macros named
/// `test_name`, keeping every line where it was.
pub fn rewrite_test_blocks(src: &str) -> String {
    let mut out = String::with_capacity(src.len() + 16);
    let mut i = 0;
    while let Some(off) = src[i..].find("{%") {
        let mut j = i + off + 2;
        if src[j..].starts_with('-') {
            j += 1;
        }
        j += src[j..].len() - src[j..].trim_start().len();
        out.push_str(&src[i..j]);
        let rest = &src[j..];
        let word_end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        match &rest[..word_end] {
            "test" => {
                out.push_str("macro test_");
                j += word_end;
                j += src[j..].len() - src[j..].trim_start_matches([' ', '\t']).len();
            }
            "endtest" => {
                out.push_str("endmacro");
                j += word_end;
            }
            _ => {}
        }
        i = j;
    }
    out.push_str(&src[i..]);
    out
}

/// Formats a template error as one line naming the file and line.
pub fn template_error(e: &minijinja::Error, fallback_file: &str) -> Error {
    let file = e.name().unwrap_or(fallback_file);
    let line = e.line().map(|l| format!(" line {l}")).unwrap_or_default();
    let detail = e
        .detail()
        .map(str::to_string)
        .unwrap_or_else(|| e.kind().to_string());
    let hint = match e.kind() {
        JErrorKind::SyntaxError => "; fix the Jinja syntax",
        JErrorKind::UnknownFunction => "; define the macro in the macro paths or fix its name",
        _ => "",
    };
    Error::usage(format!("{file}{line}: {detail}{hint}"))
}

fn jerr(msg: impl Into<String>) -> minijinja::Error {
    minijinja::Error::new(JErrorKind::InvalidOperation, msg.into())
}

fn calls_of(state: &State) -> std::result::Result<Arc<Calls>, minijinja::Error> {
    state
        .lookup("__calls")
        .and_then(|v| v.downcast_object::<Calls>())
        .ok_or_else(|| jerr("internal: render context missing"))
}

/// Positional string arguments, skipping keyword arguments (`v=`, `version=`).
fn positional(args: &[Value]) -> Vec<String> {
    args.iter()
        .filter(|a| !a.is_kwargs())
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect()
}

impl Renderer {
    /// Builds the environment: the project's macros as global functions and
    /// every model as a template (syntax errors surface here).
    pub fn new(project: &Project, settings: &Settings, invocation_id: &str) -> Result<Renderer> {
        let mut env = Environment::new();
        let mut vars = project.vars.clone();
        for (k, v) in &settings.vars {
            vars.insert(k.clone(), v.clone());
        }
        let database = settings.dbname.clone();
        let mut sources = BTreeMap::new();
        for s in &project.sources {
            sources.insert(
                (s.source_name.clone(), s.name.clone()),
                Relation {
                    database: s.database.clone().unwrap_or_else(|| database.clone()),
                    schema: s.schema.clone(),
                    identifier: s.identifier.clone(),
                },
            );
        }
        let shared = Arc::new(Shared {
            project: project.name.clone(),
            database: database.clone(),
            target_schema: settings.schema.clone(),
            vars,
            model_names: project.models.iter().map(|m| m.name.clone()).collect(),
            sources,
            relations: Mutex::default(),
            disabled: Mutex::default(),
        });

        let target_name = (settings
            .target
            .clone()
            .or_else(|| std::env::var("MELTANO_ENVIRONMENT").ok()))
        .unwrap_or_else(|| "default".into());
        let target = Value::from(minijinja::value::Serde(serde_json::json!({
            "name": target_name,
            "type": "postgres",
            "schema": settings.schema,
            "database": database,
            "dbname": database,
            "user": settings.user,
            "host": settings.host,
            "port": settings.port,
            "threads": settings.threads,
            "profile_name": project.name,
        })));

        // Macros: load each file, find the macros it defines, expose each as a global.
        let mut macros: BTreeMap<String, String> = BTreeMap::new();
        for f in &project.macros {
            let src = rewrite_test_blocks(&f.content);
            env.add_template_owned(f.original_file_path.clone(), src)
                .map_err(|e| template_error(&e, &f.original_file_path))?;
        }
        for f in &project.macros {
            let tmpl = env
                .get_template(&f.original_file_path)
                .map_err(|e| template_error(&e, &f.original_file_path))?;
            let names: Vec<String> = {
                let captured = tmpl
                    .render_captured(minijinja::context! {})
                    .map_err(|e| template_error(&e, &f.original_file_path))?;
                captured
                    .state()
                    .exports()
                    .into_iter()
                    .map(str::to_string)
                    .collect()
            };
            for name in names {
                if let Some(prev) = macros.insert(name.clone(), f.original_file_path.clone()) {
                    if prev != f.original_file_path {
                        return Err(Error::usage(format!(
                            "{}: macro '{name}' is also defined in {prev}; rename one of them",
                            f.original_file_path
                        )));
                    }
                }
            }
        }
        for (name, file) in &macros {
            let (name, file) = (name.clone(), file.clone());
            env.add_function(name.clone(), move |state: &State, args: Rest<Value>| {
                call_project_macro(state, &file, &name, &args)
            });
        }

        let sh = shared.clone();
        env.add_function("ref", move |state: &State, args: Rest<Value>| -> std::result::Result<Value, minijinja::Error> {
            let pos = positional(&args);
            let name = match pos.as_slice() {
                [name] => name.clone(),
                [_package, name] => name.clone(),
                _ => return Err(jerr("ref() takes a model name, e.g. ref('stg_orders')")),
            };
            let calls = calls_of(state)?;
            if !sh.model_names.contains(&name) {
                return Err(jerr(format!(
                    "ref('{name}'): there is no model named '{name}'; check the name or add models/…/{name}.sql"
                )));
            }
            calls.refs.lock().unwrap().push(name.clone());
            match calls.phase {
                Phase::Parse => Ok(Value::from_object(Relation {
                    database: sh.database.clone(),
                    schema: sh.target_schema.clone(),
                    identifier: name,
                })),
                Phase::Compile => {
                    if sh.disabled.lock().unwrap().contains(&name) {
                        return Err(jerr(format!("ref('{name}'): model '{name}' is disabled; enable it or remove the ref")));
                    }
                    let rel = sh.relations.lock().unwrap().get(&name).cloned();
                    rel.map(Value::from_object).ok_or_else(|| jerr(format!("ref('{name}'): model '{name}' is unknown")))
                }
            }
        });

        let sh = shared.clone();
        env.add_function("source", move |state: &State, args: Rest<Value>| -> std::result::Result<Value, minijinja::Error> {
            let pos = positional(&args);
            let [src, table] = pos.as_slice() else {
                return Err(jerr("source() takes a source and a table name, e.g. source('raw_stripe', 'charges')"));
            };
            let calls = calls_of(state)?;
            let rel = sh.sources.get(&(src.clone(), table.clone())).cloned().ok_or_else(|| {
                jerr(format!(
                    "source('{src}', '{table}'): no such source table; declare it under `sources:` in a .yml file of the model paths"
                ))
            })?;
            calls.sources.lock().unwrap().push((src.clone(), table.clone()));
            Ok(Value::from_object(rel))
        });

        let sh = shared.clone();
        env.add_function("var", move |name: String, default: Option<Value>| -> std::result::Result<Value, minijinja::Error> {
            match sh.vars.get(&name) {
                Some(v) => Ok(Value::from(minijinja::value::Serde(v))),
                None => default.ok_or_else(|| {
                    jerr(format!(
                        "var('{name}') is not set and has no default; pass --vars '{{\"{name}\": …}}' or set it under `vars:` in dbt_project.yml"
                    ))
                }),
            }
        });

        env.add_function("env_var", |name: String, default: Option<String>| -> std::result::Result<Value, minijinja::Error> {
            match std::env::var(&name) {
                Ok(v) => Ok(Value::from(v)),
                Err(_) => default
                    .map(Value::from)
                    .ok_or_else(|| jerr(format!("env_var('{name}'): the environment variable is not set and no default was given"))),
            }
        });

        env.add_function("is_incremental", || false);
        env.add_function("log", |msg: Value, _kwargs: Kwargs| {
            log::info!("{msg}");
            Value::from("")
        });
        env.add_function(
            "return",
            |state: &State, value: Value| -> std::result::Result<Value, minijinja::Error> {
                let calls = calls_of(state)?;
                if let Some(slot) = calls.returns.lock().unwrap().last_mut() {
                    *slot = Some(value);
                }
                Ok(Value::from(""))
            },
        );
        env.add_global("exceptions", Value::from_object(Exceptions));
        env.add_global("target", target.clone());
        env.add_global("project_name", Value::from(project.name.clone()));

        for m in &project.models {
            env.add_template_owned(m.original_file_path.clone(), m.content.clone())
                .map_err(|e| template_error(&e, &m.original_file_path))?;
        }

        Ok(Renderer {
            env,
            shared,
            target,
            invocation_id: invocation_id.to_string(),
            run_started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            macros,
        })
    }

    fn context(
        &self,
        calls: &Arc<Calls>,
        this: Relation,
        base: Map<String, Json>,
        model: Json,
    ) -> Value {
        minijinja::context! {
            __calls => Value::from_dyn_object(calls.clone()),
            config => Value::from_object(ConfigObj { calls: calls.clone(), base }),
            this => Value::from_object(this),
            model => Value::from(minijinja::value::Serde(&model)),
            target => self.target.clone(),
            invocation_id => self.invocation_id.clone(),
            run_started_at => self.run_started_at.clone(),
        }
    }

    /// Parses and compiles every enabled model of `project` into a [`Manifest`].
    pub fn build_manifest(&self, project: &Project) -> Result<Manifest> {
        let mut manifest = Manifest {
            project_name: project.name.clone(),
            ..Default::default()
        };
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
            let mut config = tree_config(&project.models_config, &project.name, &fqn[1..]);
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
            };
            let model = serde_json::json!({"name": m.name, "unique_id": format!("model.{}.{}", project.name, m.name), "resource_type": "model", "fqn": fqn, "original_file_path": m.original_file_path});
            let ctx = self.context(&calls, this, config.clone(), model);
            let tmpl = self
                .env
                .get_template(&m.original_file_path)
                .map_err(|e| template_error(&e, &m.original_file_path))?;
            tmpl.render(ctx)
                .map_err(|e| template_error(&e, &m.original_file_path))?;
            for (k, v) in calls.config.lock().unwrap().iter() {
                merge_config(&mut config, k, v.clone());
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
            let materialized = match config
                .get("materialized")
                .and_then(Json::as_str)
                .unwrap_or("view")
            {
                "table" => Materialization::Table,
                "view" => Materialization::View,
                other => {
                    return Err(Error::usage(format!(
                        "{}: materialized='{other}' is not supported yet; use 'table' or 'view'",
                        m.original_file_path
                    )))
                }
            };
            let tags: Vec<String> = config
                .get("tags")
                .and_then(Json::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Json::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
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
                tags,
                config,
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
                },
            );
        }

        // Dependencies, now that disabled models are known.
        let disabled = self.shared.disabled.lock().unwrap().clone();
        for (node, calls) in parsed.iter_mut() {
            let mut deps: Vec<String> = Vec::new();
            for r in calls.refs.lock().unwrap().iter() {
                if disabled.contains(r) {
                    return Err(Error::usage(format!(
                        "{}: ref('{r}') points at a disabled model; enable '{r}' or remove the ref",
                        node.original_file_path
                    )));
                }
                let id = format!("model.{}.{r}", project.name);
                if !deps.contains(&id) {
                    deps.push(id);
                }
                if !node.refs.contains(r) {
                    node.refs.push(r.clone());
                }
            }
            for (s, t) in calls.sources.lock().unwrap().iter() {
                let id = format!("source.{}.{s}.{t}", project.name);
                if !deps.contains(&id) {
                    deps.push(id);
                }
                if !node.sources.contains(&(s.clone(), t.clone())) {
                    node.sources.push((s.clone(), t.clone()));
                }
            }
            node.depends_on_nodes = deps;
        }
        manifest.nodes = parsed.into_iter().map(|(n, _)| n).collect();
        Ok(manifest)
    }

    /// Calls a project's `generate_schema_name`/`generate_alias_name` override, or
    /// applies dbt's default rule.
    fn generate_name(
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
                return Err(Error::usage(format!(
                    "{file}: {macro_name} returned an empty name for model '{}'",
                    node.name
                )));
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
    pub fn compile(&self, node: &Node) -> Result<String> {
        let calls = Calls::new(Phase::Compile);
        let this = Relation {
            database: node.database.clone(),
            schema: node.schema.clone(),
            identifier: node.alias.clone(),
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

    /// Name of the project this renderer was built for.
    pub fn project_name(&self) -> &str {
        &self.shared.project
    }
}

/// The `node`/`model` object macros receive.
fn node_json(node: &Node) -> Json {
    serde_json::json!({
        "name": node.name,
        "unique_id": node.unique_id,
        "resource_type": node.resource_type,
        "package_name": node.package_name,
        "path": node.path,
        "original_file_path": node.original_file_path,
        "fqn": node.fqn,
        "schema": node.schema,
        "alias": node.alias,
        "config": node.config,
        "tags": node.tags,
    })
}

/// Runs the project macro `name` (defined in `file`) for a caller, with the
/// caller's `this`, `model`, `config` and call recorder, honouring `return()`.
fn call_project_macro(
    state: &State,
    file: &str,
    name: &str,
    args: &[Value],
) -> std::result::Result<Value, minijinja::Error> {
    let calls = calls_of(state)?;
    calls.macros.lock().unwrap().insert(name.to_string());
    let tmpl = state.env().get_template(file)?;
    let ctx = minijinja::context! {
        __calls => Value::from_dyn_object(calls.clone()),
        config => state.lookup("config"),
        this => state.lookup("this"),
        model => state.lookup("model"),
        invocation_id => state.lookup("invocation_id"),
        run_started_at => state.lookup("run_started_at"),
    };
    let mut captured = tmpl.render_captured(ctx)?;
    calls.returns.lock().unwrap().push(None);
    let out = captured.with_state_mut(|st| st.call_macro(name, args));
    let ret = calls.returns.lock().unwrap().pop().flatten();
    let out = out?;
    Ok(ret.unwrap_or_else(|| Value::from_safe_string(out)))
}
