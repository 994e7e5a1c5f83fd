//! What a render sees besides `ref`/`source`: the call recorder of one render
//! ([`Calls`]: refs, sources, macros, `config()` calls and `return()` slots), the
//! `config` object (`config(…)`, `config.get`, `config.set`) with
//! `set_sql_header`, `exceptions`, and the `model` object of a node.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use minijinja::value::{Kwargs, Object};
use minijinja::{ErrorKind as JErrorKind, State, Value};
use serde_json::{Map, Value as Json};

use crate::manifest::Node;
use crate::project::merge_config;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    Parse,
    Compile,
}

/// What one render of one node records: its calls to `ref`, `source`, `config`
/// and project macros, and the `return()` slots of macro calls in flight.
#[derive(Debug)]
pub(super) struct Calls {
    pub(super) phase: Phase,
    pub(super) refs: Mutex<Vec<crate::manifest::Ref>>,
    /// Unique ids of the ephemeral models `ref()` reached (compile phase), in the
    /// order of their first call: their CTEs are injected in that order.
    pub(super) ephemerals: Mutex<Vec<String>>,
    pub(super) sources: Mutex<Vec<(String, String)>>,
    pub(super) macros: Mutex<BTreeSet<String>>,
    pub(super) config: Mutex<Map<String, Json>>,
    pub(super) returns: Mutex<Vec<Option<Value>>>,
    /// The connection of an execution-phase render, if it has one.
    pub(super) db: Option<Arc<super::db::RenderDb>>,
    /// What `{% call statement(name) %}` blocks kept, for `load_result(name)`.
    pub(super) results: Mutex<std::collections::BTreeMap<String, Value>>,
}

impl Object for Calls {}

impl Calls {
    /// `macro.<package>.<name>` of every macro this render called.
    pub(super) fn macro_ids(&self) -> Vec<String> {
        self.macros.lock().unwrap().iter().cloned().collect()
    }

    pub(super) fn new(phase: Phase) -> Arc<Calls> {
        Arc::new(Calls {
            phase,
            refs: Mutex::default(),
            ephemerals: Mutex::default(),
            sources: Mutex::default(),
            macros: Mutex::default(),
            config: Mutex::default(),
            returns: Mutex::default(),
            db: match phase {
                Phase::Parse => None,
                Phase::Compile => super::db::current(),
            },
            results: Mutex::default(),
        })
    }
}

/// `config`: callable (`{{ config(materialized='table') }}`) and readable
/// (`config.get('materialized')`).
#[derive(Debug)]
pub(super) struct ConfigObj {
    pub(super) calls: Arc<Calls>,
    /// The configs known before this render (project tree and YAML).
    pub(super) base: Map<String, Json>,
}

impl Object for ConfigObj {
    fn call(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        args: &[Value],
    ) -> std::result::Result<Value, minijinja::Error> {
        let (_, kwargs): (&[Value], Kwargs) = minijinja::value::from_args(args)?;
        for key in kwargs.args() {
            self.record(key, &kwargs.get(key)?)?;
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
                    Some(v) => Ok(super::mutable::from_json(&v)),
                    None if method == "require" => Err(minijinja::Error::new(
                        JErrorKind::InvalidOperation,
                        format!("config '{key}' is required but not set"),
                    )),
                    None => Ok(default.unwrap_or(Value::from(()))),
                }
            }
            // `config.set(name, value)` (what `set_sql_header` calls): recorded as
            // `config(name=value)` when the node is parsed, nothing when it runs.
            "set" => {
                let (key, value): (String, Value) = minijinja::value::from_args(args)?;
                self.record(&key, &value)?;
                Ok(Value::from(""))
            }
            _ => Err(minijinja::Error::from(JErrorKind::UnknownMethod)),
        }
    }
}

impl ConfigObj {
    /// Records config `key` (parse phase only: dbt takes a node's configs from
    /// its parse, and a later render changes none).
    fn record(&self, key: &str, value: &Value) -> std::result::Result<(), minijinja::Error> {
        if self.calls.phase != Phase::Parse {
            return Ok(());
        }
        let j = serde_json::to_value(value).map_err(|e| {
            minijinja::Error::new(
                JErrorKind::InvalidOperation,
                format!("config({key}=…): {e}"),
            )
        })?;
        merge_config(&mut self.calls.config.lock().unwrap(), key, j);
        Ok(())
    }
}

/// dbt's `{% call set_sql_header(config) %} … {% endcall %}`: the block's text
/// becomes the node's `sql_header` config (`config.set`, so recorded when the
/// node is parsed, as dbt records it). A function rather than a macro, so
/// that the block renders in its own template's state.
pub(super) fn set_sql_header(
    state: &mut State,
    config: Value,
    kwargs: Kwargs,
) -> std::result::Result<Value, minijinja::Error> {
    let caller: Option<Value> = kwargs.get("caller")?;
    kwargs.assert_all_used()?;
    let Some(caller) = caller else {
        return Err(minijinja::Error::new(
            JErrorKind::InvalidOperation,
            "set_sql_header() is a call block: {% call set_sql_header(config) %}set local …;{% endcall %}",
        ));
    };
    let header = caller.call(state, &[])?;
    config.call_method(state, "set", &[Value::from("sql_header"), header])
}

/// `exceptions.raise_compiler_error(msg)` and `exceptions.warn(msg)`.
#[derive(Debug)]
pub(super) struct Exceptions;

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
                crate::console::template_message(crate::console::Level::Warn, &msg);
                Ok(Value::from(""))
            }
            _ => Err(minijinja::Error::from(JErrorKind::UnknownMethod)),
        }
    }
}

/// The `node`/`model` object macros receive.
pub(super) fn node_json(node: &Node) -> Json {
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
        "version": crate::manifest::version_json(node.version.as_deref()),
        "latest_version": crate::manifest::version_json(node.latest_version.as_deref()),
        // A microbatch model's batch while it renders one (else none, as dbt).
        "batch": null,
    })
}
