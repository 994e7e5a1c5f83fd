//! Contracts once a model's config is merged: the checks dbt makes when it parses
//! a contracted model, the warnings for what will not be applied, and each
//! foreign key's `to:` resolved to a relation — a dependency of the model, as in
//! dbt, so that the referenced model is built first.

use crate::error::{Error, Result};
use crate::manifest::{relation_name, Materialization, Node, Quoting, Ref};
use crate::project::{Constraint, ConstraintKind, Project, ToRelation, Warnings};

use super::{Relation, Renderer};

/// Records the relation a foreign key's `to:` names.
fn resolved(c: &mut Constraint, rel: &Relation) {
    let q = rel.quoting;
    c.to_relation = Some(relation_name(
        &Quoting::stored(&rel.schema, q.schema),
        &Quoting::stored(&rel.identifier, q.identifier),
    ));
    c.to_compiled = Some(q.render(&rel.database, &rel.schema, &rel.identifier));
}

impl Renderer {
    /// Checks `node`'s contract and constraints and resolves its foreign keys,
    /// adding the models and sources they reference to its dependencies.
    pub(super) fn resolve_contract(
        &self,
        project: &Project,
        node: &mut Node,
        warnings: &mut Warnings,
    ) -> Result<()> {
        let (file, line) = node
            .properties_at
            .clone()
            .unwrap_or_else(|| (node.original_file_path.clone(), 0));
        let at = |line: usize| (file.clone(), (line > 0).then_some(line));
        // `file line N`, as errors name a place.
        let place = |line: usize| {
            if line > 0 {
                format!("{file} line {line}")
            } else {
                file.clone()
            }
        };
        let has_constraints =
            !node.constraints.is_empty() || node.columns.iter().any(|c| !c.constraints.is_empty());
        if node.contract.enforced {
            if node.properties_at.is_some() && node.columns.is_empty() {
                let (f, l) = at(line);
                return Err(Error::usage(format!(
                    "model {} has an enforced contract but declares no columns; list every column of the model with its data_type under `columns:`",
                    node.name
                ))
                .at(f, l));
            }
            let naked: Vec<&str> = node
                .columns
                .iter()
                .filter(|c| {
                    c.data_type.as_deref().is_some_and(|t| {
                        matches!(
                            t.trim().to_ascii_lowercase().as_str(),
                            "numeric" | "decimal" | "number"
                        )
                    })
                })
                .map(|c| c.name.as_str())
                .collect();
            if !naked.is_empty() {
                warnings.push(format!(
                    "{}: model {}: {} {} {} a numeric type without precision and scale, which can round values unexpectedly; write numeric(precision, scale)",
                    place(line),
                    node.name,
                    if naked.len() == 1 { "column" } else { "columns" },
                    naked.join(", "),
                    if naked.len() == 1 { "has" } else { "have" },
                ));
            }
            if node.materialized == Materialization::View {
                let unsupported = node
                    .constraints
                    .iter()
                    .chain(node.columns.iter().flat_map(|c| c.constraints.iter()))
                    .any(|c| c.warn_unsupported && c.kind != ConstraintKind::Custom);
                if unsupported {
                    warnings.push(format!(
                        "{}: model {}: constraints are not applied to views (its contract's columns are still checked); set 'warn_unsupported: false' on a constraint to silence this",
                        place(line),
                        node.name
                    ));
                }
            }
            if node.materialized == Materialization::Table {
                for col in &node.columns {
                    for c in col.constraints.iter().filter(|c| c.name.is_some()) {
                        warnings.push(format!(
                            "{}: model {}, column {}: the name '{}' of its {} constraint is not used, as in dbt (PostgreSQL names column constraints); declare it under the model's `constraints:` with `columns: [{}]` to name it",
                            place(c.line),
                            node.name,
                            col.name,
                            c.name.as_deref().unwrap_or_default(),
                            c.kind.as_str(),
                            col.name
                        ));
                    }
                }
            }
        } else if has_constraints {
            warnings.push(format!(
                "{}: model {}: its constraints are applied only with an enforced contract (`contract: {{enforced: true}}`), which it does not have",
                place(line),
                node.name
            ));
        }

        // Foreign keys: dbt adds what `to:` names to the model's refs and sources,
        // enforced contract or not.
        let mut constraints: Vec<&mut Constraint> = node.constraints.iter_mut().collect();
        for c in node.columns.iter_mut() {
            constraints.extend(c.constraints.iter_mut());
        }
        let mut new_refs = Vec::new();
        let mut new_sources = Vec::new();
        for c in constraints {
            let Some((raw, target)) = c.to.clone() else {
                continue;
            };
            let (f, l) = at(c.line);
            let fail = |msg: String| Err(Error::usage(msg).at(f.clone(), l));
            match target {
                ToRelation::Ref { package, name } => {
                    let written = Ref {
                        package,
                        name: name.clone(),
                        version: None,
                    };
                    let key = match self.shared.check_ref(&project.name, &written) {
                        Ok(key) => key,
                        Err(_) if written.package.is_none() => {
                            return fail(format!(
                                "model {}: foreign key to: {raw}: there is no model named '{name}'; check the name",
                                node.name
                            ));
                        }
                        Err(e) => {
                            let why = e.detail().unwrap_or_default().to_string();
                            return fail(format!(
                                "model {}: foreign key to: {raw}: {why}",
                                node.name
                            ));
                        }
                    };
                    if self.shared.disabled.lock().unwrap().contains(&key) {
                        return fail(format!(
                            "model {}: foreign key to: {raw} points at a disabled model; enable '{name}' or remove the constraint",
                            node.name
                        ));
                    }
                    let rel = self.shared.relations.lock().unwrap().get(&key).cloned();
                    let Some(target) = rel else {
                        return fail(format!(
                            "model {}: foreign key to: {raw}: there is no model named '{name}'; check the name",
                            node.name
                        ));
                    };
                    if target.relation.cte {
                        return fail(format!(
                            "model {}: foreign key to: {raw}: '{name}' is an ephemeral model, which builds no table to reference; point the key at a table",
                            node.name
                        ));
                    }
                    resolved(c, &target.relation);
                    new_refs.push((written, target.unique_id));
                }
                ToRelation::Source { source, table } => {
                    let Some((package, rel)) = self.shared.source(&project.name, &source, &table)
                    else {
                        return fail(format!(
                            "model {}: foreign key to: {raw}: no such source table; declare it under `sources:`",
                            node.name
                        ));
                    };
                    resolved(c, &rel);
                    new_sources.push((package, source, table));
                }
            }
        }
        for (r, id) in new_refs {
            if !node.depends_on_nodes.contains(&id) {
                node.depends_on_nodes.push(id);
            }
            if !node.refs.contains(&r) {
                node.refs.push(r);
            }
        }
        for (p, s, t) in new_sources {
            let id = format!("source.{p}.{s}.{t}");
            if !node.depends_on_nodes.contains(&id) {
                node.depends_on_nodes.push(id);
            }
            if !node.sources.contains(&(s.clone(), t.clone())) {
                node.sources.push((s, t));
            }
        }
        Ok(())
    }
}
