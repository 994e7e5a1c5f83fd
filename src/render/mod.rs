//! Rendering: Jinja SQL templates with dbt's context, on minijinja.
//!
//! Owns the template environment and the dbt functions models call: `ref`,
//! `source`, `config`, `var`, `env_var`, `this`, `target`, `is_incremental`,
//! `return`, `log`, `print`, `exceptions.raise_compiler_error`, and every macro of
//! the project's macro paths as a global function; the database-facing context
//! (`execute`, `run_query`, `statement`, `adapter`, `api`) lives in [`db`] and
//! [`adapter`]. Like dbt, each model is rendered
//! twice: a *parse* render collects its `ref`/`source`/`config` calls (that is how
//! the graph and the configs are known), then a *compile* render, once every
//! relation name is known, produces the SQL that runs.
//!
//! Errors name the file and line (`models/a.sql line 3: …`) and say what to do.
//! `env_var()` never renders a secret (the variables of the password and URL
//! settings, dbt's `DBT_ENV_SECRET_*`): what a model renders lands in compiled
//! SQL, `manifest.json` and tables.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use minijinja::value::{Kwargs, Rest};
use minijinja::{Environment, ErrorKind as JErrorKind, State, Value};
use serde_json::{Map, Value as Json};

use crate::error::{Error, Result};
use crate::manifest::Ref;
use crate::project::Project;
use crate::settings::Settings;

mod adapter;
mod agate;
mod context;
mod contracts;
mod data_tests;
mod db;
mod ephemeral;
mod helpers;
mod macros;
mod mutable;
mod namespace;
mod parse;
mod pycompat;
mod pymodules;
mod pyobjects;
mod pyops;
mod pyset;
mod pystr;
mod relation;
mod unit_tests;

use context::{Calls, ConfigObj, Exceptions, Phase};
pub(crate) use db::{with_database, RenderDb};
pub(crate) use ephemeral::{inject_ctes, EphemeralCache};
pub(crate) use parse::run_end_context;
pub(crate) use pyobjects::{set_flags, Flags};
pub(crate) use pystr::{json_dumps, json_str, py_float};
pub(crate) use relation::Relation;

/// Facts every render shares.
#[derive(Debug)]
struct Shared {
    /// The root project's name.
    root: String,
    database: String,
    target_schema: String,
    /// What `var()` reads in the root project's nodes (`--vars` over the project's).
    vars: Map<String, Json>,
    /// What it reads in each package's nodes (its own, the root's, `--vars`).
    package_vars: BTreeMap<String, Map<String, Json>>,
    /// The project's `quoting:`.
    quoting: crate::manifest::Quoting,
    /// Every model (package, name) (enabled or not; a versioned model's name
    /// once) with its versions and latest version, for `ref` checks at parse time.
    models: BTreeMap<(String, String), (Vec<String>, Option<String>)>,
    /// Every seed (package, name) (enabled or not): `ref` reaches seeds too.
    seed_names: BTreeSet<(String, String)>,
    /// Every snapshot (package, name) (enabled or not): and snapshots.
    snapshot_names: BTreeSet<(String, String)>,
    /// A node name → the packages with a model, seed or snapshot of that name
    /// (models' packages first, then seeds', then snapshots', each in order).
    packages_by_name: BTreeMap<String, Vec<String>>,
    /// `(package, source, table)` → relation.
    sources: BTreeMap<(String, String, String), Relation>,
    /// A resolved ref (package, name, version) → what `ref()` gives (a versioned
    /// model's latest version also under no version); filled between the parse
    /// and compile phases.
    relations: Mutex<BTreeMap<Ref, RefTarget>>,
    /// Resolved refs of the models and seeds disabled by config.
    disabled: Mutex<BTreeSet<Ref>>,
    /// `--empty`: refs and sources read zero rows.
    empty: std::sync::atomic::AtomicBool,
    /// `(source, table)` → its `event_time` config, when it has one.
    source_event_times: BTreeMap<(String, String), String>,
}

impl Shared {
    /// Resolves a `ref([package,] name, v=version)` written in a node of package
    /// `from` as dbt does: the named package; else the root project, then the
    /// node's own package, then any package (more than one is ambiguous). Gives
    /// the ref with the package that defines it.
    fn check_ref(&self, from: &str, r: &Ref) -> std::result::Result<Ref, minijinja::Error> {
        let name = r.name.as_str();
        let version = r.version.as_deref();
        let call = match &r.package {
            Some(p) => format!("ref('{p}', '{name}')"),
            None => format!("ref('{name}')"),
        };
        let candidates: Vec<Option<&str>> = match &r.package {
            Some(p) => vec![Some(p.as_str())],
            None if from == self.root => vec![Some(&self.root), None],
            None => vec![Some(&self.root), Some(from), None],
        };
        // dbt remembers a disabled node found on the way and points the ref at
        // it only when no enabled node is found: a first pass skips disabled
        // ones (known once parsing is done), a second takes them.
        let disabled = |p: &str| {
            version.is_none()
                && self.disabled.lock().unwrap().contains(&Ref {
                    package: Some(p.to_string()),
                    name: name.to_string(),
                    version: None,
                })
        };
        let mut package = None;
        'passes: for skip_disabled in [true, false] {
            for c in &candidates {
                let mut found: Vec<&str> = self.packages_defining(name);
                found.retain(|p| c.is_none_or(|c| c == *p) && !(skip_disabled && disabled(p)));
                match found.as_slice() {
                    [] => continue,
                    [one] => {
                        package = Some(one.to_string());
                        break 'passes;
                    }
                    many => {
                        return Err(jerr(format!(
                            "{call}: there are nodes named '{name}' in several packages ({}); write ref('<package>', '{name}') with one of them",
                            many.join(", ")
                        )))
                    }
                }
            }
        }
        let Some(package) = package else {
            if let Some(p) = &r.package {
                if !self.is_package(p) {
                    let installed = self.package_vars.keys().cloned().collect::<Vec<_>>();
                    let installed = if installed.is_empty() {
                        "none".to_string()
                    } else {
                        installed.join(", ")
                    };
                    return Err(jerr(format!(
                        "{call}: there is no package named '{p}' (this project is '{}'; installed packages: {installed}); fix the package name, or declare the package in packages.yml and run deps",
                        self.root
                    )));
                }
                return Err(jerr(format!(
                    "{call}: package '{p}' has no model, seed or snapshot named '{name}'; check the name"
                )));
            }
            return Err(jerr(format!(
                "{call}: there is no model or seed named '{name}'; check the name or add models/…/{name}.sql"
            )));
        };
        let resolved = Ref {
            package: Some(package.clone()),
            name: name.to_string(),
            version: version.map(str::to_string),
        };
        let key = (package, name.to_string());
        for (names, what) in [
            (&self.seed_names, "seed"),
            (&self.snapshot_names, "snapshot"),
        ] {
            if names.contains(&key) {
                if version.is_some() {
                    return Err(jerr(format!(
                        "ref('{name}', v=…): '{name}' is a {what}, which has no versions; remove the version"
                    )));
                }
                return Ok(resolved);
            }
        }
        let versions = self
            .models
            .get(&key)
            .map(|(v, _)| v.clone())
            .unwrap_or_default();
        if let Some(v) = version {
            if versions.is_empty() {
                return Err(jerr(format!(
                    "ref('{name}', v={v}): model '{name}' has no versions; remove the version, or declare `versions:` in its YAML"
                )));
            }
            if !versions.iter().any(|x| x == v) {
                return Err(jerr(format!(
                    "ref('{name}', v={v}): model '{name}' has no version {v} (it has {}); fix the version",
                    versions.join(", ")
                )));
            }
        }
        Ok(resolved)
    }

    /// The packages (the root project among them) with a model, seed or
    /// snapshot named `name`.
    fn packages_defining(&self, name: &str) -> Vec<&str> {
        self.packages_by_name
            .get(name)
            .map(|ps| ps.iter().map(String::as_str).collect())
            .unwrap_or_default()
    }

    fn is_package(&self, name: &str) -> bool {
        name == self.root || self.package_vars.contains_key(name)
    }

    /// What a resolved ref names, as messages say it: a seed, a snapshot or a model.
    fn kind_of(&self, r: &Ref) -> &'static str {
        let key = (r.package.clone().unwrap_or_default(), r.name.clone());
        if self.seed_names.contains(&key) {
            "seed"
        } else if self.snapshot_names.contains(&key) {
            "snapshot"
        } else {
            "model"
        }
    }

    /// The unique id a resolved `ref()` names: a seed, a model, a version of a
    /// versioned model (the latest when none is given).
    fn ref_id(&self, r: &Ref) -> String {
        let project = r.package.clone().unwrap_or_else(|| self.root.clone());
        let key = (project.clone(), r.name.clone());
        if self.seed_names.contains(&key) {
            return format!("seed.{project}.{}", r.name);
        }
        if self.snapshot_names.contains(&key) {
            return format!("snapshot.{project}.{}", r.name);
        }
        match self.models.get(&key) {
            Some((versions, latest)) if !versions.is_empty() => {
                let v = r
                    .version
                    .as_ref()
                    .or(latest.as_ref())
                    .cloned()
                    .unwrap_or_default();
                format!("model.{project}.{}.v{v}", r.name)
            }
            _ => format!("model.{project}.{}", r.name),
        }
    }

    /// The latest version of the model a resolved ref names, if it is versioned.
    fn latest(&self, r: &Ref) -> Option<String> {
        let key = (r.package.clone().unwrap_or_default(), r.name.clone());
        self.models.get(&key).and_then(|(_, l)| l.clone())
    }

    /// `source(source, table)` written in a node of package `from`: the root
    /// project's, then the node's package's, then any package's.
    fn source(&self, from: &str, src: &str, table: &str) -> Option<(String, Relation)> {
        let order = [self.root.as_str(), from];
        for p in order {
            if let Some(r) = self
                .sources
                .get(&(p.to_string(), src.to_string(), table.to_string()))
            {
                return Some((p.to_string(), r.clone()));
            }
        }
        self.sources
            .iter()
            .find(|((_, s, t), _)| s == src && t == table)
            .map(|((p, _, _), r)| (p.clone(), r.clone()))
    }
}

/// The package of the node a render is for (`__package` of its context), else
/// the root project (`None`).
fn package_of(state: &State) -> Option<String> {
    state
        .lookup("__package")
        .and_then(|v| v.as_str().map(str::to_string))
}

/// What a `ref()` resolves to at compile time.
#[derive(Debug, Clone)]
struct RefTarget {
    unique_id: String,
    relation: Relation,
    /// Its `event_time` config: inside a microbatch model's batch, `ref()`
    /// filters it to the batch's window.
    event_time: Option<String>,
}

/// Inside a microbatch model's batch (`__batch_window` in the context), the
/// condition that keeps an input's rows of the batch's window, as dbt writes
/// it: `<event_time> >= '<start>' and <event_time> < '<end>'`.
fn batch_filter(state: &State, event_time: Option<&str>) -> Option<String> {
    let field = event_time?;
    let window = state.lookup("__batch_window")?;
    let start = window.get_item(&Value::from(0)).ok()?;
    let end = window.get_item(&Value::from(1)).ok()?;
    Some(format!("{field} >= '{start}' and {field} < '{end}'"))
}

/// The template environment of a project.
pub(crate) struct Renderer {
    env: Environment<'static>,
    shared: Arc<Shared>,
    target: Value,
    invocation_id: String,
    run_started_at: Value,
    /// Macro name → its definition, as a root-project node resolves an
    /// unqualified name (the project's macros over dbt's).
    macros: BTreeMap<String, namespace::MacroDef>,
    /// Every macro by package.
    table: Arc<namespace::MacroTable>,
    /// Whether every test stores its failures (`--store-failures` or the setting),
    /// for `should_store_failures()`.
    store_all: Arc<std::sync::atomic::AtomicBool>,
    /// `graph`, filled by [`Renderer::set_graph`] once the project is parsed.
    graph: Arc<pyobjects::GraphObj>,
    /// Whether a macro or node of the project mentions `graph` (building it
    /// costs a manifest's worth of JSON, spent only then).
    reads_graph: bool,
}

/// The name of the template of a node's SQL: its file, and for a snapshot (a
/// file may hold several) `<file>#<name>`.
fn template_name(resource_type: &str, file: &str, name: &str) -> String {
    match resource_type {
        "snapshot" => format!("{file}#{name}"),
        _ => file.to_string(),
    }
}

/// Formats a template error as one line naming the file and line.
pub(crate) fn template_error(e: &minijinja::Error, fallback_file: &str) -> Error {
    let file = e.name().unwrap_or(fallback_file);
    // A snapshot's template is named `<file>#<snapshot>`.
    let file = file.split_once('#').map_or(file, |(f, _)| f);
    let detail = e
        .detail()
        .map(str::to_string)
        .unwrap_or_else(|| e.kind().to_string());
    let hint = match e.kind() {
        JErrorKind::SyntaxError => "; fix the Jinja syntax",
        JErrorKind::UnknownFunction => "; define the macro in the macro paths or fix its name",
        _ => "",
    };
    Error::usage(format!("{detail}{hint}")).at(file, e.line())
}

/// A template file's source as it is compiled: Python's mutable list and dict
/// literals ([`mutable`]) and Python's operators ([`pyops`]), lines kept.
fn template_source(src: &str) -> String {
    pyops::rewrite(&mutable::rewrite(src)).into_owned()
}

/// A template's `print()` (and `print_table()`): a line on stdout, as dbt prints.
fn print_line(text: &str) {
    println!("{text}");
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

/// The `v=`/`version=` keyword argument of a `ref()` as dbt writes versions
/// (`1`, `2.5`, `beta`); any other keyword is an error.
fn version_kwarg(kwargs: &Kwargs) -> std::result::Result<Option<String>, minijinja::Error> {
    let mut version = None;
    for key in ["v", "version"] {
        if let Some(v) = kwargs.get::<Option<Value>>(key)? {
            version = Some(match serde_json::to_value(&v).unwrap_or(Json::Null) {
                Json::String(s) => s,
                Json::Number(n) if n.is_f64() => {
                    let f = n.as_f64().unwrap_or(0.0);
                    if f.fract() == 0.0 {
                        format!("{f:.1}")
                    } else {
                        f.to_string()
                    }
                }
                other => other.to_string(),
            });
        }
    }
    kwargs.assert_all_used()?;
    Ok(version)
}

impl Renderer {
    /// Builds the environment: the project's macros as global functions and
    /// every model as a template (syntax errors surface here).
    pub(crate) fn new(
        project: &Project,
        settings: &Settings,
        invocation_id: &str,
    ) -> Result<Renderer> {
        let mut env = Environment::new();
        env.set_unknown_method_callback(pycompat::python_method);
        mutable::register(&mut env);
        pyops::register(&mut env);
        // `{{ value | as_python }}`: a value as dbt's Jinja prints it (`True`, `None`).
        env.add_filter("as_python", |v: Value| {
            let json = serde_json::to_value(&v).unwrap_or(Json::Null);
            pystr::py_str(&json)
        });
        let mut vars = project.vars.clone();
        for (k, v) in &settings.vars {
            vars.insert(k.clone(), v.clone());
        }
        let database = settings.dbname.clone();
        let mut sources = BTreeMap::new();
        let mut models: BTreeMap<(String, String), (Vec<String>, Option<String>)> = BTreeMap::new();
        let mut seed_names = BTreeSet::new();
        let mut snapshot_names = BTreeSet::new();
        for p in project.with_packages() {
            for s in &p.sources {
                sources.insert(
                    (p.name.clone(), s.source_name.clone(), s.name.clone()),
                    Relation::new(
                        s.database.as_deref().unwrap_or(&database),
                        &s.schema,
                        &s.identifier,
                        s.quoting,
                    ),
                );
            }
            for m in &p.models {
                let (name, version, _) = p.model_identity(m);
                let entry = models.entry((p.name.clone(), name.clone())).or_default();
                if let Some(v) = version {
                    entry.0.push(v);
                    entry.1 = p
                        .model_props
                        .get(&name)
                        .and_then(|p| p.latest_version.clone());
                }
            }
            seed_names.extend(p.seeds.iter().map(|m| (p.name.clone(), m.name.clone())));
            snapshot_names.extend(p.snapshots.iter().map(|m| (p.name.clone(), m.name.clone())));
        }
        let mut packages_by_name: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (p, n) in models
            .keys()
            .chain(seed_names.iter())
            .chain(snapshot_names.iter())
        {
            let packages = packages_by_name.entry(n.clone()).or_default();
            if !packages.contains(p) {
                packages.push(p.clone());
            }
        }
        let package_vars = project
            .packages
            .iter()
            .map(|p| {
                let mut v = p.project.vars.clone();
                v.extend(settings.vars.iter().map(|(k, x)| (k.clone(), x.clone())));
                (p.name.clone(), v)
            })
            .collect();
        let shared = Arc::new(Shared {
            root: project.name.clone(),
            database: database.clone(),
            target_schema: settings.schema.clone(),
            vars,
            package_vars,
            quoting: project.quoting,
            models,
            seed_names,
            snapshot_names,
            packages_by_name,
            sources,
            relations: Mutex::default(),
            disabled: Mutex::default(),
            empty: std::sync::atomic::AtomicBool::new(false),
            source_event_times: project
                .sources
                .iter()
                .filter_map(|s| {
                    let et = s.config.get("event_time")?.as_str()?;
                    Some(((s.source_name.clone(), s.name.clone()), et.to_string()))
                })
                .collect(),
        });

        let meltano_environment = crate::settings::process_env("MELTANO_ENVIRONMENT")?;
        let target_name =
            (settings.target.clone().or(meltano_environment)).unwrap_or_else(|| "default".into());
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

        // Macros: every file of dbt's built-in macros, the project and the packages
        // (see `namespace`); the root project's and dbt's are global functions, each
        // package (and `dbt`) an object of its macros.
        let (macros, table) = namespace::load(&mut env, project)?;
        for def in macros.values() {
            let def = def.clone();
            env.add_function(
                def.name.clone(),
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
                    namespace::call(state, &def, &all)
                },
            );
        }
        env.add_global(
            "adapter",
            Value::from_object(adapter::Adapter {
                macros: table.clone(),
            }),
        );

        let sh = shared.clone();
        env.add_function("ref", move |state: &State, args: Rest<Value>, kwargs: Kwargs| -> std::result::Result<Value, minijinja::Error> {
            let pos = positional(&args);
            let (package, name) = match pos.as_slice() {
                [name] => (None, name.clone()),
                [package, name] => (Some(package.clone()), name.clone()),
                _ => return Err(jerr("ref() takes a model name, e.g. ref('stg_orders')")),
            };
            let version = version_kwarg(&kwargs)?;
            let calls = calls_of(state)?;
            let written = Ref { package, name: name.clone(), version };
            let from = package_of(state).unwrap_or_else(|| sh.root.clone());
            let target = sh.check_ref(&from, &written)?;
            calls.refs.lock().unwrap().push(written);
            match calls.phase {
                Phase::Parse => Ok(Value::from_object(Relation::new(
                    &sh.database,
                    &sh.target_schema,
                    &name,
                    sh.quoting,
                ))),
                Phase::Compile => {
                    if sh.disabled.lock().unwrap().contains(&target) {
                        let what = sh.kind_of(&target);
                        return Err(jerr(format!("ref('{name}'): {what} '{name}' is disabled; enable it or remove the ref")));
                    }
                    let found = sh.relations.lock().unwrap().get(&target).cloned();
                    let Some(found) = found else {
                        return Err(jerr(format!("ref('{name}'): model '{name}' is unknown")));
                    };
                    // dbt's check: a ref the parse did not see (inside a
                    // `statement` block or under `if execute`) is not a dependency.
                    if let Some(deps) = state.lookup("__depends_on") {
                        if !deps.try_iter()?.any(|d| d.as_str() == Some(found.unique_id.as_str())) {
                            let node = state.lookup("__node_name").map(|n| n.to_string()).unwrap_or_default();
                            return Err(jerr(format!(
                                "dbt was unable to infer all dependencies for the model \"{node}\": ref('{name}') is only reached when the model runs (inside a statement block or under `if execute`); add the hint `-- depends_on: {{{{ ref('{name}') }}}}` to the model"
                            )));
                        }
                    }
                    if found.relation.cte {
                        let mut eph = calls.ephemerals.lock().unwrap();
                        if !eph.contains(&found.unique_id) {
                            eph.push(found.unique_id.clone());
                        }
                    }
                    let mut relation = found.relation;
                    relation.empty = sh.empty.load(std::sync::atomic::Ordering::Relaxed);
                    relation.event_filter = batch_filter(state, found.event_time.as_deref());
                    Ok(Value::from_object(relation))
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
            let from = package_of(state).unwrap_or_else(|| sh.root.clone());
            let (_, rel) = sh.source(&from, src, table).ok_or_else(|| {
                jerr(format!(
                    "source('{src}', '{table}'): no such source table; declare it under `sources:` in a .yml file of the model paths"
                ))
            })?;
            calls.sources.lock().unwrap().push((src.clone(), table.clone()));
            let mut rel = rel;
            rel.empty = sh.empty.load(std::sync::atomic::Ordering::Relaxed);
            if calls.phase == Phase::Compile {
                let event_time = sh.source_event_times.get(&(src.clone(), table.clone()));
                rel.event_filter = batch_filter(state, event_time.map(String::as_str));
            }
            Ok(Value::from_object(rel))
        });

        env.add_global(
            "var",
            Value::from_object(helpers::VarObj {
                vars: shared.vars.clone(),
                packages: shared.package_vars.clone(),
            }),
        );
        env.add_function("tojson", helpers::tojson);
        env.add_function("fromjson", helpers::fromjson);
        env.add_function("fromyaml", helpers::fromyaml);
        env.add_function("local_md5", helpers::local_md5);
        env.add_function("toyaml", pyobjects::toyaml);
        env.add_function("set", pyset::set);
        env.add_function("set_strict", pyset::set_strict);
        env.add_function("zip", pyobjects::zip);
        env.add_function("zip_strict", pyobjects::zip_strict);
        env.add_global("flags", Value::from_object(pyobjects::FlagsObj));
        env.add_global("builtins", Value::from_object(pyobjects::Builtins));
        let graph = Arc::new(pyobjects::GraphObj::default());
        env.add_global("graph", Value::from_dyn_object(graph.clone()));
        let reads_graph = project.with_packages().any(|p| {
            p.macros
                .iter()
                .chain(&p.models)
                .chain(&p.singular_tests)
                .chain(&p.analyses)
                .any(|f| f.content.contains("graph"))
        });

        let docs: BTreeMap<String, String> = project
            .docs
            .iter()
            .map(|(k, d)| (k.clone(), d.contents.clone()))
            .collect();
        env.add_function("doc", move |args: Rest<String>| -> std::result::Result<Value, minijinja::Error> {
            let name = match args.as_slice() {
                [name] | [_, name] => name,
                _ => return Err(jerr("doc() takes a docs block name, e.g. doc('orders')")),
            };
            docs.get(name).map(|c| Value::from(c.clone())).ok_or_else(|| {
                jerr(format!(
                    "doc('{name}'): there is no docs block named '{name}'; define {{% docs {name} %}}…{{% enddocs %}} in a .md file of the docs paths"
                ))
            })
        });

        // Secrets are never rendered: what a model renders lands in
        // target/compiled, manifest.json and tables. dbt allows DBT_ENV_SECRET_*
        // only in profiles.yml and packages.yml; the variables that supply the
        // password or the URL are secrets too.
        let secrets = crate::settings::secret_variables();
        env.add_function("env_var", move |name: String, default: Option<String>| -> std::result::Result<Value, minijinja::Error> {
            if name.starts_with("DBT_ENV_SECRET_") {
                return Err(jerr(format!(
                    "env_var('{name}'): DBT_ENV_SECRET_* variables are secrets, rendered in profiles.yml only (as in dbt), never in models, macros or tests, whose SQL lands in target/compiled, manifest.json and tables; use it in profiles.yml"
                )));
            }
            if let Some((_, setting)) = secrets.iter().find(|(var, _)| *var == name) {
                return Err(jerr(format!(
                    "env_var('{name}'): {name} supplies the {setting} setting, a secret, and secrets are never rendered into models, macros or tests, whose SQL lands in target/compiled, manifest.json and tables; read a variable that holds no secret"
                )));
            }
            match crate::settings::process_env(&name) {
                Ok(Some(v)) => Ok(Value::from(v)),
                Ok(None) => default
                    .map(Value::from)
                    .ok_or_else(|| jerr(format!("env_var('{name}'): the environment variable is not set and no default was given"))),
                Err(e) => Err(jerr(format!("env_var('{name}'): {}", e.message))),
            }
        });

        // True only while compiling an incremental model whose table exists and
        // to which no full refresh applies (`Node::incremental`); false at parse
        // time, as in dbt.
        env.add_function(
            "is_incremental",
            |state: &State| -> std::result::Result<bool, minijinja::Error> {
                // dbt lists it among the node's macros.
                calls_of(state)?
                    .macros
                    .lock()
                    .unwrap()
                    .insert("macro.dbt.is_incremental".to_string());
                Ok(state.lookup("__incremental").is_some_and(|v| v.is_true()))
            },
        );
        // dbt's hook helpers: a hook config as JSON text, read back when configs
        // are merged (project::hook_values).
        for (name, inside) in [
            ("before_begin", false),
            ("in_transaction", true),
            ("after_commit", false),
        ] {
            env.add_function(name, move |sql: String| -> String {
                serde_json::json!({"sql": sql, "transaction": inside}).to_string()
            });
        }
        // dbt's `should_store_failures()`: the node's `store_failures` config, else
        // the `store_failures` setting.
        let store_all = Arc::new(std::sync::atomic::AtomicBool::new(settings.store_failures));
        let default_store = store_all.clone();
        env.add_function(
            "should_store_failures",
            move |state: &mut State| -> std::result::Result<bool, minijinja::Error> {
                let default_store = default_store.load(std::sync::atomic::Ordering::Relaxed);
                let Some(cfg) = state.lookup("config") else {
                    return Ok(default_store);
                };
                let v = cfg.call_method(state, "get", &[Value::from("store_failures")])?;
                Ok(if v.is_none() || v.is_undefined() {
                    default_store
                } else {
                    v.is_true()
                })
            },
        );
        // dbt's `log(msg, info=False)`: an info line on the console with
        // `info=True`, else a debug line (the log file).
        env.add_function(
            "log",
            |msg: Value,
             info: Option<bool>,
             kwargs: Kwargs|
             -> std::result::Result<Value, minijinja::Error> {
                let info = info
                    .or(kwargs.get::<Option<bool>>("info")?)
                    .unwrap_or(false);
                kwargs.assert_all_used()?;
                let level = if info {
                    crate::console::Level::Info
                } else {
                    crate::console::Level::Debug
                };
                crate::console::template_message(level, &msg.to_string());
                Ok(Value::from(""))
            },
        );
        env.add_function("print", |msg: Value| {
            print_line(&msg.to_string());
            Value::from("")
        });
        env.add_function(
            "return",
            |state: &State, value: Value| -> std::result::Result<Value, minijinja::Error> {
                let calls = calls_of(state)?;
                if let Some(slot) = calls.returns.lock().unwrap().last_mut() {
                    // As in dbt, `return` ends the macro: the rest of it does not
                    // run (the caller takes the value, see `macros::returned`).
                    if slot.is_none() {
                        *slot = Some(value);
                    }
                    return Err(minijinja::Error::new(
                        minijinja::ErrorKind::InvalidOperation,
                        macros::RETURNED,
                    ));
                }
                Ok(Value::from(""))
            },
        );
        env.add_global("exceptions", Value::from_object(Exceptions));
        env.add_global("modules", pymodules::modules());
        env.add_function("run_query", db::run_query);
        env.add_function("statement", db::statement);
        env.add_function("set_sql_header", context::set_sql_header);
        env.add_function("load_result", db::load_result);
        env.add_function("load_relation", adapter::load_relation);
        env.add_global("api", Value::from_object(adapter::Api));
        env.add_global("target", target.clone());
        env.add_global("project_name", Value::from(project.name.clone()));

        for p in project.with_packages() {
            for m in p
                .models
                .iter()
                .chain(p.singular_tests.iter())
                .chain(p.analyses.iter())
            {
                env.add_template_owned(m.original_file_path.clone(), template_source(&m.content))
                    .map_err(|e| template_error(&e, &m.original_file_path))?;
            }
            for m in &p.snapshots {
                let name = template_name("snapshot", &m.original_file_path, &m.name);
                env.add_template_owned(name, template_source(&m.content))
                    .map_err(|e| template_error(&e, &m.original_file_path))?;
            }
        }

        Ok(Renderer {
            env,
            shared,
            target,
            invocation_id: invocation_id.to_string(),
            run_started_at: pymodules::utc_datetime(chrono::Utc::now()),
            macros,
            table,
            store_all,
            graph,
            reads_graph,
        })
    }

    /// Fills `graph` from the parsed project, as dbt builds its flat graph when
    /// parsing is done (when some template of the project mentions it).
    pub(crate) fn set_graph(&self, manifest: &crate::manifest::Manifest) {
        if !self.reads_graph || self.graph.0.get().is_some() {
            return;
        }
        let json = crate::artifacts::manifest_json(manifest, &self.invocation_id);
        let flat: Map<String, Json> = pyobjects::GRAPH_SECTIONS
            .iter()
            .map(|k| (k.to_string(), json.get(*k).cloned().unwrap_or(Json::Null)))
            .collect();
        let _ = self
            .graph
            .0
            .set(Value::from(minijinja::value::Serde(Json::Object(flat))));
    }

    /// Renders the Jinja in the config values of `dbt_project.yml`'s trees and of
    /// YAML `config:` blocks, as dbt does when it reads them (`var()`,
    /// `env_var()`, `target`); a value that renders to a number, boolean or
    /// `None` becomes one, as dbt's native rendering makes it. Hooks keep their
    /// Jinja: they are rendered with their node.
    pub(crate) fn render_configs(&self, project: &mut Project) -> Result<()> {
        for p in &mut project.packages {
            self.render_configs(&mut p.project)?;
        }
        let props = |m: &std::collections::BTreeMap<String, crate::project::ModelProps>| {
            m.iter()
                .map(|(k, p)| (k.clone(), p.config.clone()))
                .collect()
        };
        project.as_written = crate::project::AsWritten {
            models_config: project.models_config.clone(),
            seeds_config: project.seeds_config.clone(),
            analyses_config: project.analyses_config.clone(),
            model_props: props(&project.model_props),
            seed_props: props(&project.seed_props),
            analysis_props: props(&project.analysis_props),
        };
        for tree in [
            &mut project.models_config,
            &mut project.seeds_config,
            &mut project.tests_config,
            &mut project.analyses_config,
        ] {
            self.render_config_value(tree, "dbt_project.yml", None)?;
        }
        for props in [
            &mut project.model_props,
            &mut project.seed_props,
            &mut project.analysis_props,
        ] {
            for p in props.values_mut() {
                let file = p.file.clone();
                for (key, value) in p.config.iter_mut() {
                    if !is_hook_key(key) {
                        self.render_config_value(value, &file, Some(key))?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Renders one value (of config key `key`, when known) and checks what a
    /// typed key's Jinja rendered to.
    fn render_config_value(&self, value: &mut Json, file: &str, key: Option<&str>) -> Result<()> {
        match value {
            Json::String(text) if text.contains("{{") || text.contains("{%") => {
                let rendered = self
                    .env
                    .render_str(&pyops::rewrite(text), minijinja::context! {})
                    .map_err(|e| {
                        Error::usage(format!(
                            "the config value '{text}': {}; fix the Jinja",
                            e.detail()
                                .map(str::to_string)
                                .unwrap_or_else(|| e.kind().to_string())
                        ))
                        .at(file, None)
                    })?;
                let text = text.clone();
                *value = native(rendered);
                if let Some(key) = key {
                    crate::project::check_rendered_config(key.trim_start_matches('+'), value)
                        .map_err(|why| {
                            Error::usage(format!("{key}: the config value '{text}' {why}"))
                                .at(file, None)
                        })?;
                }
            }
            Json::Array(items) => {
                for item in items {
                    self.render_config_value(item, file, None)?;
                }
            }
            Json::Object(map) => {
                for (key, item) in map.iter_mut() {
                    if !is_hook_key(key) {
                        self.render_config_value(item, file, Some(key))?;
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// A description from YAML, rendered as dbt renders descriptions (`doc()`,
    /// `var()`, `env_var()`); text without Jinja is returned as it is.
    pub(super) fn description(&self, text: &str, file: &str) -> Result<String> {
        if !text.contains("{{") && !text.contains("{%") {
            return Ok(text.to_string());
        }
        self.env
            .render_str(&pyops::rewrite(text), minijinja::context! {})
            .map_err(|e| {
                Error::usage(format!(
                    "a description: {}",
                    e.detail()
                        .map(str::to_string)
                        .unwrap_or_else(|| e.kind().to_string())
                ))
                .at(file, None)
            })
    }

    /// `--defer`: `ref()` to `unique_id` gives the relation the deferred-to
    /// state built, `database.schema.identifier`, quoted as the node's own.
    pub(crate) fn defer_ref(
        &self,
        unique_id: &str,
        database: &str,
        schema: &str,
        identifier: &str,
    ) {
        for target in self.shared.relations.lock().unwrap().values_mut() {
            if target.unique_id == unique_id {
                let quoting = target.relation.quoting;
                target.relation = Relation::new(database, schema, identifier, quoting);
            }
        }
    }

    /// `--empty`: refs and sources compiled from now on read zero rows, as
    /// dbt renders them (`(select * from … where false limit 0)`).
    pub(crate) fn empty(&self, on: bool) {
        self.shared
            .empty
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// `test`/`build --store-failures`: tests compiled from now on store their
    /// failures unless their config says otherwise.
    pub(crate) fn store_failures(&self, all: bool) {
        self.store_all
            .store(all, std::sync::atomic::Ordering::Relaxed);
    }

    fn context(
        &self,
        calls: &Arc<Calls>,
        this: Relation,
        base: Map<String, Json>,
        model: Json,
    ) -> Value {
        // A package's node (`<type>.<package>.…`): `ref`, `source` and `var`
        // resolve from its package, and its package's macros are called
        // unqualified, before the root project's.
        let package = model
            .get("unique_id")
            .and_then(Json::as_str)
            .and_then(|id| id.split('.').nth(1))
            .filter(|p| self.shared.package_vars.contains_key(*p))
            .map(str::to_string);
        let own_macros: BTreeMap<String, Value> = package
            .as_ref()
            .and_then(|p| self.table.packages.get(p))
            .map(|defs| {
                defs.iter()
                    .map(|(name, def)| {
                        (
                            name.clone(),
                            Value::from_object(namespace::MacroRef(def.clone())),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let base = minijinja::context! {
            __calls => Value::from_dyn_object(calls.clone()),
            __package => package,
            config => Value::from_object(ConfigObj { calls: calls.clone(), base }),
            this => Value::from_object(this),
            model => Value::from(minijinja::value::Serde(&model)),
            target => self.target.clone(),
            invocation_id => self.invocation_id.clone(),
            run_started_at => self.run_started_at.clone(),
            execute => calls.phase == Phase::Compile,
        };
        if own_macros.is_empty() {
            base
        } else {
            minijinja::context! { ..Value::from(own_macros), ..base }
        }
    }
}

/// `pre-hook`/`post-hook` in any of their spellings: rendered with their node.
fn is_hook_key(key: &str) -> bool {
    matches!(
        key.trim_start_matches('+'),
        "pre-hook" | "post-hook" | "pre_hook" | "post_hook"
    )
}

/// A rendered config value as dbt's native rendering reads it: Python's
/// literals for numbers, booleans and `None`, else the text.
fn native(text: String) -> Json {
    let t = text.trim();
    match t {
        "True" | "true" => return Json::Bool(true),
        "False" | "false" => return Json::Bool(false),
        "None" => return Json::Null,
        _ => {}
    }
    if let Ok(i) = t.parse::<i64>() {
        return Json::from(i);
    }
    if t.contains('.') {
        if let Ok(f) = t.parse::<f64>() {
            if let Some(n) = serde_json::Number::from_f64(f) {
                return Json::Number(n);
            }
        }
    }
    Json::String(text)
}
