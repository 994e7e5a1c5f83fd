//! Macro namespaces: which macro a name means. Owns the table of every macro by
//! package (the root project, each installed package, and `dbt`: the built-in
//! macros), dbt's render-time resolution of an unqualified name (the calling
//! node's package, then the root project, then `dbt`), the `pkg.macro` objects
//! (`dbt_utils.star(…)`, `dbt.date_trunc(…)`), and the search of
//! `adapter.dispatch(name, macro_namespace)` with the project's `dispatch:`
//! config and the `postgres__`/`default__` prefixes.

use std::collections::BTreeMap;
use std::sync::Arc;

use minijinja::value::Object;
use minijinja::{Environment, ErrorKind as JErrorKind, State, Value};

use crate::error::{Error, Result};
use crate::project::{Project, SqlFile};

use super::macros::{call_project_macro, rewrite_test_blocks};
use super::template_error;

/// The package name of dbt's own macros.
pub(super) const INTERNAL: &str = "dbt";

/// One macro: its package, name and the template (file) that defines it.
#[derive(Debug, Clone)]
pub(super) struct MacroDef {
    pub(super) package: String,
    pub(super) name: String,
    pub(super) file: String,
    /// The template the macro is called from: its file's, or, in a file of several
    /// macros, one of its own (see [`own_template`]).
    pub(super) template: String,
    /// The declared arguments of a macro whose body reads `kwargs`: as in Jinja,
    /// it takes keyword arguments it does not declare, as the mapping `kwargs`.
    pub(super) catch_kwargs: Option<Arc<Vec<String>>>,
}

impl MacroDef {
    /// `macro.<package>.<name>`, what dbt lists in `depends_on.macros`.
    pub(super) fn unique_id(&self) -> String {
        format!("macro.{}.{}", self.package, self.name)
    }
}

/// Every macro by package.
#[derive(Debug, Default)]
pub(super) struct MacroTable {
    pub(super) root: String,
    /// package (root project, installed packages, `dbt`) → name → definition.
    pub(super) packages: BTreeMap<String, BTreeMap<String, MacroDef>>,
    /// `dispatch:` of `dbt_project.yml`.
    pub(super) dispatch: Vec<(String, Vec<String>)>,
}

impl MacroTable {
    /// An unqualified name as a node of the root project resolves it: the root
    /// project's macro, else dbt's.
    pub(super) fn resolve(&self, name: &str) -> Option<&MacroDef> {
        self.in_package(&self.root, name)
            .or_else(|| self.in_package(INTERNAL, name))
    }

    /// `package.name`.
    pub(super) fn in_package(&self, package: &str, name: &str) -> Option<&MacroDef> {
        self.packages.get(package).and_then(|m| m.get(name))
    }

    /// dbt's `adapter.dispatch(name, macro_namespace)`: for each package of the
    /// search order (the `dispatch:` config for that namespace; else the root
    /// project then the namespace when it is a package; else an unqualified
    /// lookup), `postgres__<name>` then `default__<name>`.
    pub(super) fn dispatch(
        &self,
        name: &str,
        namespace: Option<&str>,
    ) -> std::result::Result<&MacroDef, minijinja::Error> {
        if let Some((ns, n)) = name.split_once('.') {
            return Err(jerr(format!(
                "adapter.dispatch('{name}'): a macro name cannot contain '.'; write adapter.dispatch('{n}', macro_namespace='{ns}')"
            )));
        }
        let search: Vec<Option<&str>> = match namespace {
            None => vec![None],
            Some(ns) => match self.dispatch.iter().find(|(n, _)| n == ns) {
                Some((_, order)) => order.iter().map(|p| Some(p.as_str())).collect(),
                None if self.packages.contains_key(ns) => {
                    vec![Some(self.root.as_str()), Some(ns)]
                }
                None => vec![None],
            },
        };
        let mut tried = Vec::new();
        for package in search {
            for prefix in ["postgres", "default"] {
                let full = format!("{prefix}__{name}");
                let found = match package {
                    None => self.resolve(&full),
                    Some(p) => self.in_package(p, &full),
                };
                if let Some(m) = found {
                    return Ok(m);
                }
                tried.push(match package {
                    None => full,
                    Some(p) => format!("{p}.{full}"),
                });
            }
        }
        Err(jerr(format!(
            "adapter.dispatch: no macro named '{name}' in namespace '{}' (searched {}); define one of them or fix the name",
            namespace.unwrap_or("None"),
            tried.join(", ")
        )))
    }
}

/// Template name of dbt's cross-database macros (not counted or listed among the
/// project's macros).
pub(super) const CROSS_DATABASE_FILE: &str = "<builtin>/cross_database.sql";

/// dbt's own macros, built in: (template name, text).
const BUILTIN: &[(&str, &str)] = &[
    (
        "<builtin>/generic_tests.sql",
        include_str!("builtin/generic_tests.sql"),
    ),
    (
        CROSS_DATABASE_FILE,
        include_str!("builtin/cross_database.sql"),
    ),
];

/// The names of the `{% macro _name(…) %}` blocks of a file.
fn private_macro_names(src: &str) -> impl Iterator<Item = String> + '_ {
    src.match_indices("{%").filter_map(move |(i, _)| {
        let rest = src[i + 2..].trim_start_matches('-').trim_start();
        let rest = rest.strip_prefix("macro")?.trim_start();
        let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_'))?;
        rest[..end]
            .starts_with('_')
            .then(|| rest[..end].to_string())
    })
}

/// Adds every macro file (dbt's, the project's, the packages') to `env` as a
/// template, and each package (and `dbt`, and the root project) as a global
/// object of its macros. Returns the macros an unqualified name reaches from a
/// node of the root project (the project's over dbt's) and the whole table.
pub(super) fn load(
    env: &mut Environment<'static>,
    project: &Project,
) -> Result<(BTreeMap<String, MacroDef>, Arc<MacroTable>)> {
    let builtin: Vec<SqlFile> = BUILTIN
        .iter()
        .map(|(file, text)| SqlFile {
            name: String::new(),
            original_file_path: file.to_string(),
            path: String::new(),
            content: text.to_string(),
        })
        .collect();
    let mut sets: Vec<(&str, &[SqlFile])> = vec![
        (INTERNAL, &builtin),
        (project.name.as_str(), &project.macros),
    ];
    for p in &project.packages {
        sets.push((p.name.as_str(), &p.macros));
    }
    let mut table = MacroTable {
        root: project.name.clone(),
        packages: BTreeMap::new(),
        dispatch: project.dispatch.clone(),
    };
    for (package, files) in sets {
        let defs = table.packages.entry(package.to_string()).or_default();
        for f in files {
            let file = f.original_file_path.as_str();
            env.add_template_owned(
                file.to_string(),
                super::template_source(&rewrite_test_blocks(&f.content)),
            )
            .map_err(|e| template_error(&e, file))?;
            let source = rewrite_test_blocks(&f.content);
            let tmpl = env
                .get_template(file)
                .map_err(|e| template_error(&e, file))?;
            let captured = tmpl
                .render_captured(minijinja::context! {})
                .map_err(|e| template_error(&e, file))?;
            // minijinja does not export names starting with `_`; dbt has such
            // macros (`dbt_utils._is_ephemeral`).
            let state = captured.state();
            let private = private_macro_names(&f.content)
                .filter(|n| state.lookup(n).is_some_and(|v| v.as_object().is_some()));
            let names: Vec<String> = state
                .exports()
                .into_iter()
                .map(str::to_string)
                .chain(private)
                .collect();
            let mut own_templates = Vec::new();
            let name_spans: Vec<Option<(usize, usize)>> =
                names.iter().map(|n| macro_span(&source, n)).collect();
            let spans: Vec<(usize, usize)> = name_spans.iter().flatten().copied().collect();
            for (name, span) in names.into_iter().zip(name_spans) {
                // dbt compiles each macro as a template of its own, so a macro
                // calling another of its file goes through the macro namespace
                // (and the call boundary that catches `return()`), as any call.
                let template = match span {
                    Some(own) if spans.len() > 1 => {
                        let template = format!("{file}#{name}");
                        own_templates.push((
                            template.clone(),
                            super::template_source(&own_template(&source, own, &spans)),
                        ));
                        template
                    }
                    _ => file.to_string(),
                };
                let catch_kwargs = macro_body(&source, &name)
                    .filter(|body| reads_kwargs(body))
                    .map(|_| {
                        let declared = state
                            .lookup(&name)
                            .and_then(|m| m.get_attr("arguments").ok())
                            .and_then(|a| a.try_iter().ok())
                            .map(|it| it.filter_map(|v| v.as_str().map(str::to_string)).collect())
                            .unwrap_or_default();
                        Arc::new(declared)
                    });
                let def = MacroDef {
                    package: package.to_string(),
                    name: name.to_string(),
                    file: file.to_string(),
                    template,
                    catch_kwargs,
                };
                if let Some(prev) = defs.insert(name.clone(), def) {
                    if prev.file != file {
                        return Err(Error::in_file(
                            file.to_string(),
                            format!(
                                "macro '{name}' is also defined in {}; rename one of them",
                                prev.file
                            ),
                        ));
                    }
                }
            }
            drop(captured);
            for (template, text) in own_templates {
                env.add_template_owned(template, text)
                    .map_err(|e| template_error(&e, file))?;
            }
        }
    }
    let mut unqualified = table.packages[INTERNAL].clone();
    unqualified.extend(table.packages[&project.name].clone());
    let table = Arc::new(table);
    for package in table.packages.keys() {
        env.add_global(
            package.clone(),
            Value::from_object(PackageNs {
                package: package.clone(),
                table: table.clone(),
            }),
        );
    }
    Ok((unqualified, table))
}

/// The text of macro `name`'s body in `src`, up to its `endmacro`.
fn macro_body<'a>(src: &'a str, name: &str) -> Option<&'a str> {
    let mut from = 0;
    while let Some(off) = src[from..].find("{%") {
        let start = from + off;
        from = start + 2;
        let rest = src[from..].trim_start_matches('-').trim_start();
        let Some(rest) = rest.strip_prefix("macro") else {
            continue;
        };
        let rest = rest.trim_start();
        if rest
            .strip_prefix(name)
            .is_some_and(|r| r.trim_start().starts_with('('))
        {
            let body = &src[start..];
            let end = body.find("endmacro").unwrap_or(body.len());
            return Some(&body[..end]);
        }
    }
    None
}

/// Where macro `name`'s definition is in `src`: from its `{%` to the end of its
/// `endmacro` tag.
fn macro_span(src: &str, name: &str) -> Option<(usize, usize)> {
    let body = macro_body(src, name)?;
    let start = body.as_ptr() as usize - src.as_ptr() as usize;
    let end = start + body.len();
    let close = src[end..].find("%}").map_or(src.len(), |i| end + i + 2);
    Some((start, close))
}

/// `src` with every macro definition but `own` blanked out, its lines kept (so
/// errors give the file's own line numbers).
fn own_template(src: &str, own: (usize, usize), spans: &[(usize, usize)]) -> String {
    let mut out = String::with_capacity(src.len());
    let mut at = 0;
    let mut others: Vec<&(usize, usize)> = spans.iter().filter(|s| **s != own).collect();
    others.sort();
    for &(start, end) in others {
        if start < at {
            continue;
        }
        out.push_str(&src[at..start]);
        out.extend(src[start..end].chars().filter(|c| *c == '\n'));
        at = end;
    }
    out.push_str(&src[at..]);
    out
}

/// Whether Jinja text reads the name `kwargs`.
fn reads_kwargs(text: &str) -> bool {
    text.match_indices("kwargs").any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + 6..].chars().next();
        !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.')
            && !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

fn jerr(msg: String) -> minijinja::Error {
    minijinja::Error::new(JErrorKind::InvalidOperation, msg)
}

/// Calls `def` on behalf of the caller in `state` (recording it for the node).
pub(super) fn call(
    state: &State,
    def: &MacroDef,
    args: &[Value],
) -> std::result::Result<Value, minijinja::Error> {
    call_project_macro(
        state,
        (&def.template, &def.name, &def.unique_id()),
        def.catch_kwargs.as_deref().map(Vec::as_slice),
        args,
    )
}

/// A macro as a value: `dbt_utils.star`, what `adapter.dispatch(…)` returns.
#[derive(Debug)]
pub(super) struct MacroRef(pub(super) MacroDef);

impl Object for MacroRef {
    fn call(
        self: &Arc<Self>,
        state: &mut State<'_, '_>,
        args: &[Value],
    ) -> std::result::Result<Value, minijinja::Error> {
        call(state, &self.0, args)
    }
}

/// A package's macros as an object: `dbt_utils.star(…)`, `dbt.dateadd(…)`.
#[derive(Debug)]
pub(super) struct PackageNs {
    pub(super) package: String,
    pub(super) table: Arc<MacroTable>,
}

impl PackageNs {
    fn find(&self, name: &str) -> Option<&MacroDef> {
        self.table.in_package(&self.package, name)
    }
}

impl Object for PackageNs {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let def = self.find(key.as_str()?)?;
        Some(Value::from_object(MacroRef(def.clone())))
    }

    fn call_method(
        self: &Arc<Self>,
        state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> std::result::Result<Value, minijinja::Error> {
        match self.find(method) {
            Some(def) => call(state, def, args),
            None => Err(jerr(format!(
                "package '{}' has no macro named '{method}'; check the name (or reinstall the package if it is out of date)",
                self.package
            ))),
        }
    }
}
