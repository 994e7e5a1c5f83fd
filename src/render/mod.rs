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
//! `env_var()` never renders a secret (the variables of the password and URL
//! settings, dbt's `DBT_ENV_SECRET_*`): what a model renders lands in compiled
//! SQL, `manifest.json` and tables.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use minijinja::value::{Kwargs, Rest};
use minijinja::{Environment, ErrorKind as JErrorKind, State, Value};
use serde_json::{Map, Value as Json};

use crate::error::{Error, Result};
use crate::project::{Project, SqlFile};
use crate::settings::Settings;

mod context;
mod contracts;
mod data_tests;
mod macros;
mod parse;
mod pycompat;
mod pystr;
mod relation;

use context::{Calls, ConfigObj, Exceptions, Phase};
use macros::{call_project_macro, rewrite_test_blocks};
pub(crate) use relation::Relation;

/// Facts every render shares.
#[derive(Debug)]
struct Shared {
    database: String,
    target_schema: String,
    vars: Map<String, Json>,
    /// Every model file name (enabled or not), for `ref` checks at parse time.
    model_names: BTreeSet<String>,
    /// Every seed name (enabled or not): `ref` reaches seeds too.
    seed_names: BTreeSet<String>,
    /// `(source, table)` → relation.
    sources: BTreeMap<(String, String), Relation>,
    /// Model name → relation; filled between the parse and compile phases.
    relations: Mutex<BTreeMap<String, Relation>>,
    disabled: Mutex<BTreeSet<String>>,
}

/// The template environment of a project.
pub(crate) struct Renderer {
    env: Environment<'static>,
    shared: Arc<Shared>,
    target: Value,
    invocation_id: String,
    run_started_at: String,
    /// Project macro name → file that defines it.
    macros: BTreeMap<String, String>,
    /// Whether every test stores its failures (`--store-failures` or the setting),
    /// for `should_store_failures()`.
    store_all: Arc<std::sync::atomic::AtomicBool>,
}

/// Template name of the built-in generic tests.
const BUILTIN_TESTS_FILE: &str = "<builtin>/generic_tests.sql";

/// Formats a template error as one line naming the file and line.
pub(crate) fn template_error(e: &minijinja::Error, fallback_file: &str) -> Error {
    let file = e.name().unwrap_or(fallback_file);
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
    pub(crate) fn new(
        project: &Project,
        settings: &Settings,
        invocation_id: &str,
    ) -> Result<Renderer> {
        let mut env = Environment::new();
        env.set_unknown_method_callback(pycompat::python_method);
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
            database: database.clone(),
            target_schema: settings.schema.clone(),
            vars,
            model_names: project.models.iter().map(|m| m.name.clone()).collect(),
            seed_names: project.seeds.iter().map(|m| m.name.clone()).collect(),
            sources,
            relations: Mutex::default(),
            disabled: Mutex::default(),
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
                        return Err(Error::in_file(
                            f.original_file_path.to_string(),
                            format!("macro '{name}' is also defined in {prev}; rename one of them"),
                        ));
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
            if !sh.model_names.contains(&name) && !sh.seed_names.contains(&name) {
                return Err(jerr(format!(
                    "ref('{name}'): there is no model or seed named '{name}'; check the name or add models/…/{name}.sql"
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
                        let what = if sh.seed_names.contains(&name) { "seed" } else { "model" };
                        return Err(jerr(format!("ref('{name}'): {what} '{name}' is disabled; enable it or remove the ref")));
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
                    .insert("dbt.is_incremental".to_string());
                Ok(state.lookup("__incremental").is_some_and(|v| v.is_true()))
            },
        );
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
            store_all,
        })
    }

    /// A description from YAML, rendered as dbt renders descriptions (`doc()`,
    /// `var()`, `env_var()`); text without Jinja is returned as it is.
    pub(super) fn description(&self, text: &str, file: &str) -> Result<String> {
        if !text.contains("{{") && !text.contains("{%") {
            return Ok(text.to_string());
        }
        self.env
            .render_str(text, minijinja::context! {})
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
}
