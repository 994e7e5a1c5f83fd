//! Ephemeral models as dbt compiles them: never built, each is inlined as a CTE
//! `__dbt__cte__<alias> as (<its SQL>)` into every node that reaches it through
//! `ref()`: models, analyses, data tests (`{{ model }}` of a test on an ephemeral
//! model) and singular tests. A node gets the CTEs of the ephemeral models it refers
//! to in the order of their first `ref()`, each preceded by the CTEs that model
//! carries itself (its own ephemeral ancestors), each CTE once. They are injected
//! after a leading `with` (or `with recursive`), else as a new `with` before the
//! first token (a leading comment included), as dbt's `inject_ctes_into_sql` does.
//! An ephemeral model's own compiled SQL is its SQL with its ancestors injected.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::manifest::{Manifest, Materialization};

use super::relation::cte_name;
use super::Renderer;

/// What compiling an ephemeral model gave.
#[derive(Debug, Clone)]
struct EphemeralSql {
    /// Its rendered SQL, which its users inline.
    pre: String,
    /// That SQL with its own CTEs injected: its compiled file.
    sql: String,
    /// The CTEs it carries, `(unique id, ` name as (…)`)`, dependencies first.
    ctes: Vec<(String, String)>,
}

/// The ephemeral models compiled so far in one invocation, each once (dbt
/// writes the compiled file of every ephemeral model it inlines).
#[derive(Debug, Default)]
pub(crate) struct EphemeralCache {
    done: BTreeMap<String, Result<EphemeralSql>>,
}

impl EphemeralCache {
    /// `(unique id, compiled SQL)` of every ephemeral model that compiled.
    pub(crate) fn compiled(&self) -> impl Iterator<Item = (&str, &str)> {
        self.done
            .iter()
            .filter_map(|(id, r)| r.as_ref().ok().map(|e| (id.as_str(), e.sql.as_str())))
    }
}

impl Renderer {
    /// The SQL of model, analysis or data test `id`, with the CTEs of the
    /// ephemeral models it reaches injected.
    pub(crate) fn compile_id(
        &self,
        manifest: &Manifest,
        id: &str,
        cache: &mut EphemeralCache,
    ) -> Result<String> {
        let (sql, ephemerals) = if let Some(n) = manifest.node(id) {
            if n.materialized == Materialization::Ephemeral {
                return self.ephemeral(manifest, id, cache).map(|e| e.sql);
            }
            self.render_node(n)?
        } else if let Some(t) = manifest.test(id).filter(|t| t.unit.is_some()) {
            (self.render_unit_test(t, manifest)?, Vec::new())
        } else if let Some(t) = manifest.test(id) {
            self.render_test(t, manifest)?
        } else {
            return Err(Error::usage(format!(
                "internal: {id} has no SQL to compile"
            )));
        };
        let ctes = self.ctes_for(manifest, &ephemerals, cache)?;
        Ok(inject_ctes(&sql, &ctes))
    }

    /// Model `id` of a microbatch model compiled for one batch (see
    /// [`Self::render_node_in`]), with its ephemeral CTEs.
    pub(crate) fn compile_batch(
        &self,
        manifest: &Manifest,
        node: &crate::manifest::Node,
        batch: (crate::project::Batch, crate::project::BatchSize),
        cache: &mut EphemeralCache,
    ) -> Result<String> {
        let (sql, ephemerals) = self.render_node_in(node, Some(batch))?;
        let ctes = self.ctes_for(manifest, &ephemerals, cache)?;
        Ok(inject_ctes(&sql, &ctes))
    }

    /// `compile --inline` / `show --inline`: `sql` rendered as dbt renders its
    /// `inline_query` node (the project's macros, `ref()`, `source()`,
    /// `var()`), with the CTEs of the ephemeral models it reaches.
    pub(crate) fn compile_inline(
        &self,
        manifest: &Manifest,
        sql: &str,
        cache: &mut EphemeralCache,
    ) -> Result<String> {
        let calls = super::context::Calls::new(super::context::Phase::Compile);
        let this = super::relation::Relation::new(
            &self.shared.database,
            &self.shared.target_schema,
            "inline_query",
            crate::manifest::Quoting::default(),
        );
        let node = serde_json::json!({"name": "inline_query", "resource_type": "sql_operation",
            "unique_id": format!("sql_operation.{}.inline_query", manifest.project_name)});
        let ctx = self.context(&calls, this, serde_json::Map::new(), node);
        let rendered = self
            .env
            .render_str(&super::pyops::rewrite(sql), ctx)
            .map_err(|e| {
                Error::usage(format!(
                    "the inline SQL: {}; fix the Jinja",
                    e.detail()
                        .map(str::to_string)
                        .unwrap_or_else(|| e.kind().to_string())
                ))
            })?;
        let ephemerals = calls.ephemerals.lock().unwrap().clone();
        let ctes = self.ctes_for(manifest, &ephemerals, cache)?;
        Ok(inject_ctes(rendered.trim(), &ctes))
    }

    /// The CTEs a node that refers to `ephemerals` (in this order) gets.
    fn ctes_for(
        &self,
        manifest: &Manifest,
        ephemerals: &[String],
        cache: &mut EphemeralCache,
    ) -> Result<Vec<(String, String)>> {
        let mut out: Vec<(String, String)> = Vec::new();
        let mut add = |id: &str, sql: String| {
            if !out.iter().any(|(x, _)| x == id) {
                out.push((id.to_string(), sql));
            }
        };
        for id in ephemerals {
            let e = self.ephemeral(manifest, id, cache)?;
            for (dep, sql) in e.ctes {
                add(&dep, sql);
            }
            let alias = manifest.node(id).map(|n| n.alias.as_str()).unwrap_or(id);
            add(id, format!(" {} as (\n{}\n)", cte_name(alias), e.pre));
        }
        Ok(out)
    }

    /// Compiles ephemeral model `id` once.
    fn ephemeral(
        &self,
        manifest: &Manifest,
        id: &str,
        cache: &mut EphemeralCache,
    ) -> Result<EphemeralSql> {
        if let Some(done) = cache.done.get(id) {
            return done.clone();
        }
        let Some(node) = manifest.node(id) else {
            return Err(Error::usage(format!(
                "internal: ephemeral model {id} is not in the manifest"
            )));
        };
        let result = self.render_node(node).and_then(|(pre, ephemerals)| {
            let ctes = self.ctes_for(manifest, &ephemerals, cache)?;
            Ok(EphemeralSql {
                sql: inject_ctes(&pre, &ctes),
                pre,
                ctes,
            })
        });
        cache.done.insert(id.to_string(), result.clone());
        result
    }
}

/// Injects `ctes` into `sql` as dbt does: after its leading `with` (or `with
/// recursive`) followed by `, `, else as `with <ctes> ` before its first token
/// (which may be a comment).
pub(crate) fn inject_ctes(sql: &str, ctes: &[(String, String)]) -> String {
    if ctes.is_empty() {
        return sql.to_string();
    }
    let joined: Vec<&str> = ctes.iter().map(|(_, s)| s.as_str()).collect();
    let joined = joined.join(", ");
    let first_token = skip_blank(sql, 0, false);
    let first_word = skip_blank(sql, 0, true);
    if word_at(sql, first_word).eq_ignore_ascii_case("with") {
        let mut end = first_word + 4;
        // `with recursive`: dbt injects after `recursive`, when nothing but
        // whitespace separates the two.
        let next = skip_blank(sql, end, false);
        if word_at(sql, next).eq_ignore_ascii_case("recursive") {
            end = next + "recursive".len();
        }
        return format!("{}{joined}, {}", &sql[..end], &sql[end..]);
    }
    format!(
        "{}with{joined} {}",
        &sql[..first_token],
        &sql[first_token..]
    )
}

/// The position of the first character at or after `from` that is not
/// whitespace (nor, with `comments`, part of a `--` or `/* */` comment).
fn skip_blank(sql: &str, from: usize, comments: bool) -> usize {
    let b = sql.as_bytes();
    let mut i = from;
    while i < b.len() {
        if b[i].is_ascii_whitespace() {
            i += 1;
        } else if comments && sql[i..].starts_with("--") {
            i = sql[i..].find('\n').map_or(b.len(), |n| i + n + 1);
        } else if comments && sql[i..].starts_with("/*") {
            i = sql[i + 2..].find("*/").map_or(b.len(), |n| i + 2 + n + 2);
        } else {
            break;
        }
    }
    i
}

/// The word (letters, digits, `_`) starting at `at`, empty if none.
fn word_at(sql: &str, at: usize) -> &str {
    let rest = &sql[at.min(sql.len())..];
    let len = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    &rest[..len]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctes() -> Vec<(String, String)> {
        vec![
            ("a".into(), " __dbt__cte__a as (\nselect 1\n)".into()),
            ("b".into(), " __dbt__cte__b as (\nselect 2\n)".into()),
        ]
    }

    fn flat(s: &str) -> String {
        s.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn injected_as_dbt_does() {
        assert_eq!(
            flat(&inject_ctes("select * from __dbt__cte__b", &ctes())),
            "with __dbt__cte__a as ( select 1 ), __dbt__cte__b as ( select 2 ) select * from __dbt__cte__b"
        );
        assert_eq!(
            flat(&inject_ctes("With x as (select 3) select * from x", &ctes())),
            "With __dbt__cte__a as ( select 1 ), __dbt__cte__b as ( select 2 ), x as (select 3) select * from x"
        );
        assert_eq!(
            flat(&inject_ctes(
                "with recursive r as (select 1) select * from r",
                &ctes()[..1]
            )),
            "with recursive __dbt__cte__a as ( select 1 ), r as (select 1) select * from r"
        );
        // A leading comment: dbt's `with` goes before it.
        assert_eq!(
            flat(&inject_ctes("-- note\nselect 1", &ctes()[..1])),
            "with __dbt__cte__a as ( select 1 ) -- note select 1"
        );
        // ... unless a `with` follows it.
        assert_eq!(
            flat(&inject_ctes(
                "/* c */ with x as (select 1) select 2",
                &ctes()[..1]
            )),
            "/* c */ with __dbt__cte__a as ( select 1 ), x as (select 1) select 2"
        );
        assert_eq!(inject_ctes("select 1", &[]), "select 1");
        // `without` is not `with`.
        assert!(inject_ctes("without", &ctes()[..1]).starts_with("with __dbt"));
    }
}
