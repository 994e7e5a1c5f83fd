//! Project macros: dbt's `{% test %}` blocks rewritten into macros, and calling a
//! macro on behalf of a node with its context, honouring `return()`.

use std::collections::BTreeMap;

use minijinja::value::Kwargs;
use minijinja::{State, Value};

use super::calls_of;

/// What `return()` stops a macro with; the macro's caller takes the value.
pub(super) const RETURNED: &str = "return() outside a macro";

/// What a macro call gave: the value it returned (its render stopped there), else
/// what it rendered, else its error.
pub(super) fn returned<E>(
    out: std::result::Result<String, E>,
    ret: Option<Value>,
) -> std::result::Result<Value, E> {
    match (ret, out) {
        (Some(v), _) => Ok(v),
        (None, out) => out.map(Value::from_safe_string),
    }
}

/// Rewrites dbt's `{% test name(...) %}…{% endtest %}` blocks into macros named
/// `test_name`, keeping every line where it was.
pub(super) fn rewrite_test_blocks(src: &str) -> String {
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

/// Runs the project macro `name` (defined in `file`) for a caller, with the
/// caller's `this`, `model`, `config`, `is_incremental()` (and an on-run-end
/// hook's `results`, `schemas`, `database_schemas`) and call recorder (which
/// records `id`, `macro.<package>.<name>`), honouring `return()`. A macro that
/// reads `kwargs` (`catch_kwargs`: its declared arguments) gets the keyword
/// arguments it does not declare as that mapping, as Jinja gives them.
pub(super) fn call_project_macro(
    state: &State,
    (file, name, id): (&str, &str, &str),
    catch_kwargs: Option<&[String]>,
    args: &[Value],
) -> std::result::Result<Value, minijinja::Error> {
    let mut args = args.to_vec();
    let mut extra: BTreeMap<String, Value> = BTreeMap::new();
    if let Some(declared) = catch_kwargs {
        if let Some(last) = args.last().filter(|v| v.is_kwargs()).cloned() {
            let kwargs = Kwargs::try_from(last)?;
            let mut kept = Vec::new();
            for k in kwargs.args() {
                let v: Value = kwargs.get(k)?;
                if declared.iter().any(|d| d == k) || k == "caller" {
                    kept.push((k.to_string(), v));
                } else {
                    extra.insert(k.to_string(), v);
                }
            }
            args.pop();
            if !kept.is_empty() {
                args.push(Value::from(Kwargs::from_iter(kept)));
            }
        }
    }
    let calls = calls_of(state)?;
    calls.macros.lock().unwrap().insert(id.to_string());
    let tmpl = state.env().get_template(file)?;
    let ctx = minijinja::context! {
        __calls => Value::from_dyn_object(calls.clone()),
        config => state.lookup("config"),
        this => state.lookup("this"),
        model => state.lookup("model"),
        invocation_id => state.lookup("invocation_id"),
        run_started_at => state.lookup("run_started_at"),
        __incremental => state.lookup("__incremental"),
        execute => state.lookup("execute"),
        __package => state.lookup("__package"),
        // An on-run-end hook's context.
        results => state.lookup("results"),
        schemas => state.lookup("schemas"),
        database_schemas => state.lookup("database_schemas"),
    };
    let ctx = match catch_kwargs {
        Some(_) => minijinja::context! { kwargs => Value::from(extra), ..ctx },
        None => ctx,
    };
    let mut captured = tmpl.render_captured(ctx)?;
    calls.returns.lock().unwrap().push(None);
    let out = captured.with_state_mut(|st| st.call_macro(name, &args));
    let ret = calls.returns.lock().unwrap().pop().flatten();
    returned(out, ret)
}

impl super::Renderer {
    /// Whether the project defines macro `name` (`name` or `<project>.name`);
    /// gives its bare name.
    pub(crate) fn find_macro(&self, project: &str, name: &str) -> Option<String> {
        let bare = match name.split_once('.') {
            Some((pkg, bare)) if pkg == project => bare,
            Some(_) => return None,
            None => name,
        };
        self.macros.contains_key(bare).then(|| bare.to_string())
    }

    /// Runs macro `name` (see [`Self::find_macro`]) by itself in dbt's execution
    /// phase, with `args` as its keyword arguments (`run-operation`); its
    /// statements reach the database given by [`super::with_database`]. Gives
    /// what it rendered (or returned).
    pub(crate) fn run_operation(
        &self,
        project: &str,
        name: &str,
        args: &serde_json::Map<String, serde_json::Value>,
    ) -> crate::error::Result<String> {
        let Some(def) = self.macros.get(name) else {
            return Err(crate::error::Error::usage(format!(
                "run-operation: there is no macro named '{name}'"
            )));
        };
        // Its own template: in a file of several macros, a sibling it calls goes
        // through the macro namespace (and its `return()` ends only that call).
        let file = def.file.clone();
        let calls = super::context::Calls::new(super::context::Phase::Compile);
        let this = super::Relation::new(
            &self.shared.database,
            &self.shared.target_schema,
            name,
            self.shared.quoting,
        );
        let node = serde_json::json!({"name": name, "resource_type": "operation",
            "unique_id": format!("macro.{project}.{name}"), "original_file_path": file});
        let ctx = self.context(&calls, this, serde_json::Map::new(), node);
        let tmpl = self
            .env
            .get_template(&def.template)
            .map_err(|e| super::template_error(&e, &file))?;
        let mut captured = tmpl
            .render_captured(ctx)
            .map_err(|e| super::template_error(&e, &file))?;
        let kwargs = minijinja::value::Kwargs::from_iter(
            args.iter()
                .map(|(k, v)| (k.clone(), super::mutable::from_json(v))),
        );
        calls.returns.lock().unwrap().push(None);
        let out = captured.with_state_mut(|st| st.call_macro(name, &[Value::from(kwargs)]));
        let ret = calls.returns.lock().unwrap().pop().flatten();
        returned(out, ret)
            .map(|v| v.to_string())
            .map_err(|e| super::template_error(&e, &file))
    }
}
