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
use crate::manifest::{
    quote_ident, Manifest, Materialization, Node, SourceNode, TestKind, TestNode,
};
use crate::project::{merge_config, tree_config, Project, SqlFile};
use crate::settings::Settings;

/// A relation as templates see it: renders as `"schema"."identifier"` and has
/// `.schema`, `.identifier`/`.name`/`.table` and `.database` attributes.
#[derive(Debug, Clone)]
pub struct Relation {
    pub database: String,
    pub schema: String,
    pub identifier: String,
    /// A data test's `where` config: the relation then renders as a filtered
    /// subquery, as dbt does.
    pub filter: Option<String>,
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
        let rel = format!(
            "{}.{}",
            quote_ident(&self.schema),
            quote_ident(&self.identifier)
        );
        match &self.filter {
            None => f.write_str(&rel),
            Some(w) => write!(f, "(select * from {rel} where {w}) dbt_subquery"),
        }
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

/// Template name of the built-in generic tests.
const BUILTIN_TESTS_FILE: &str = "<builtin>/generic_tests.sql";

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

                    filter: None,
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
        // The built-in generic tests come first so a project can override them.
        let mut macros: BTreeMap<String, String> = BTreeMap::new();
        let builtin = SqlFile {
            name: "generic_tests".into(),
            original_file_path: BUILTIN_TESTS_FILE.into(),
            path: "generic_tests.sql".into(),
            content: include_str!("builtin/generic_tests.sql").into(),
        };
        let macro_files: Vec<&SqlFile> = std::iter::once(&builtin)
            .chain(project.macros.iter())
            .collect();
        for f in &macro_files {
            let src = rewrite_test_blocks(&f.content);
            env.add_template_owned(f.original_file_path.clone(), src)
                .map_err(|e| template_error(&e, &f.original_file_path))?;
        }
        for f in &macro_files {
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
                    if prev != f.original_file_path && prev != BUILTIN_TESTS_FILE {
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
            env.add_function(
                name.clone(),
                move |state: &State, args: Rest<Value>, kwargs: Kwargs| {
                    // Forward keyword arguments to the macro as keyword arguments.
                    let mut all: Vec<Value> = args.0.clone();
                    let keys: Vec<String> = kwargs.args().map(str::to_string).collect();
                    if !keys.is_empty() {
                        let mut pairs = Vec::with_capacity(keys.len());
                        for k in keys {
                            let v: Value = kwargs.get(&k)?;
                            pairs.push((k, v));
                        }
                        all.push(Value::from(Kwargs::from_iter(pairs)));
                    }
                    call_project_macro(state, &file, &name, &all)
                },
            );
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

                    filter: None,
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

        for m in project.models.iter().chain(project.singular_tests.iter()) {
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
            let tags = tags_of(&config);
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

                    filter: None,
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
        manifest.tests = self.build_tests(project, &manifest)?;
        Ok(manifest)
    }

    /// Data tests: generic ones from the YAML of enabled models and of sources,
    /// singular ones from the test paths.
    fn build_tests(&self, project: &Project, manifest: &Manifest) -> Result<Vec<TestNode>> {
        let mut tests: Vec<TestNode> = Vec::new();
        let base_config = tree_config(&project.tests_config, &project.name, &[]);
        for node in &manifest.nodes {
            let Some(props) = project.model_props.get(&node.name) else {
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
                return Err(Error::usage(format!(
                    "{}: two data tests are both named '{}'; give one a `name:`",
                    t.original_file_path, t.name
                )));
            }
        }
        Ok(tests)
    }

    /// The render context of a singular test: `this` and `model` name the test.
    fn singular_test_context(
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

    /// The model and source ids a render referred to; refs to disabled models fail.
    fn deps_of(&self, project: &Project, calls: &Calls, file: &str) -> Result<Vec<String>> {
        let disabled = self.shared.disabled.lock().unwrap().clone();
        let mut deps = Vec::new();
        for r in calls.refs.lock().unwrap().iter() {
            if disabled.contains(r) {
                return Err(Error::usage(format!(
                    "{file}: ref('{r}') points at a disabled model; enable '{r}' or remove the ref"
                )));
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

    /// One generic test entry of a YAML file, on a model or a source table.
    #[allow(clippy::too_many_arguments)]
    fn generic_test(
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
            return Err(Error::usage(format!(
                "{file}: unknown data test '{test_name}' on {target_name}{}; use unique, not_null, accepted_values, relationships or define `{{% test {test_name}(model, …) %}}` in the macro paths",
                column.as_deref().map(|c| format!(".{c}")).unwrap_or_default()
            )));
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
                Error::usage(format!(
                    "{file}: test {name}: {}",
                    e.detail().unwrap_or("invalid argument")
                ))
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
    fn eval_arg(
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
    pub fn compile_test(&self, t: &TestNode, manifest: &Manifest) -> Result<String> {
        let calls = Calls::new(Phase::Compile);
        let err = |e: minijinja::Error| match t.kind {
            TestKind::Singular => template_error(&e, &t.original_file_path),
            TestKind::Generic => Error::usage(format!(
                "{}: test {}: {}",
                t.original_file_path,
                t.name,
                e.detail()
                    .map(str::to_string)
                    .unwrap_or_else(|| e.kind().to_string())
            )),
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
                    return Err(Error::usage(format!(
                        "{}: test {}: its model is unknown",
                        t.original_file_path, t.name
                    )));
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

    /// Name of the project this renderer was built for.
    pub fn project_name(&self) -> &str {
        &self.shared.project
    }
}

/// One YAML test entry: (test name, arguments, config, custom name).
type TestEntry = (String, Map<String, Json>, Map<String, Json>, Option<String>);

/// Parses one YAML test entry. Accepts
/// `- unique`, `- accepted_values: {values: […], config: {…}}`, arguments under
/// `arguments:` (dbt ≥ 1.10), and `test_name:` with `name:`.
fn parse_test_entry(entry: &Json, file: &str, on: &str) -> Result<TestEntry> {
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
        Error::usage(format!("{file}: a data test on {on} is not understood: {entry}; write `- unique` or `- accepted_values: {{values: [...]}}`"))
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
fn generic_test_name(
    on_source: bool,
    test: &str,
    target: &str,
    kwargs: &Map<String, Json>,
) -> String {
    fn flat(v: &Json, out: &mut Vec<String>) {
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
fn short_hash(s: &str) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")[..10].to_string()
}

fn tags_of(config: &Map<String, Json>) -> Vec<String> {
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
