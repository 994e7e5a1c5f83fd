//! The `adapter` object of dbt's Jinja context: one method per arm.
//! `adapter.dispatch(name, macro_namespace)` finds the macro to call as dbt
//! does (see [`super::namespace`]).

use std::sync::Arc;

use minijinja::value::{Kwargs, Object};
use minijinja::{ErrorKind as JErrorKind, State, Value};

use super::namespace::{MacroRef, MacroTable};

#[derive(Debug)]
pub(super) struct Adapter {
    pub(super) macros: Arc<MacroTable>,
}

impl Object for Adapter {
    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> std::result::Result<Value, minijinja::Error> {
        match method {
            "dispatch" => self.dispatch(args),
            _ => Err(minijinja::Error::from(JErrorKind::UnknownMethod)),
        }
    }
}

impl Adapter {
    /// `adapter.dispatch(macro_name, macro_namespace=None)`: the macro itself,
    /// to be called.
    fn dispatch(&self, args: &[Value]) -> std::result::Result<Value, minijinja::Error> {
        let (name, namespace, kwargs): (String, Option<Option<String>>, Kwargs) =
            minijinja::value::from_args(args)?;
        let namespace = match namespace {
            Some(ns) => ns,
            None => kwargs.get::<Option<String>>("macro_namespace")?,
        };
        if kwargs.has("packages") {
            return Err(minijinja::Error::new(
                JErrorKind::InvalidOperation,
                format!("adapter.dispatch('{name}', packages=…): the packages argument is gone from dbt; use macro_namespace and the dispatch: config"),
            ));
        }
        kwargs.assert_all_used()?;
        let def = self.macros.dispatch(&name, namespace.as_deref())?;
        Ok(Value::from_object(MacroRef(def.clone())))
    }
}
