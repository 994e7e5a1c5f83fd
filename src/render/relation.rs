//! Relations as templates see them (`{{ ref('x') }}`, `{{ this }}`, `{{ source(…) }}`).

use std::sync::Arc;

use minijinja::value::Object;
use minijinja::Value;

use crate::manifest::{Node, Quoting, SourceNode};

/// A relation as templates see it: renders as `"database"."schema"."identifier"`
/// (as dbt-postgres does, parts its quote policy leaves bare unquoted), or, for an
/// ephemeral model, as the name of its CTE; has `.schema`,
/// `.identifier`/`.name`/`.table` and `.database` attributes.
#[derive(Debug, Clone)]
pub(crate) struct Relation {
    pub(crate) database: String,
    pub(crate) schema: String,
    pub(crate) identifier: String,
    pub(crate) quoting: Quoting,
    /// An ephemeral model: `identifier` is its CTE's name (`__dbt__cte__<alias>`),
    /// rendered alone.
    pub(crate) cte: bool,
    /// A data test's `where` config: the relation then renders as a filtered
    /// subquery, as dbt does.
    pub(crate) filter: Option<String>,
    /// What the relation is, when known (`adapter.get_relation`,
    /// `api.Relation.create(type=…)`): `.type`, `.is_table`, `.is_view`.
    pub(crate) rel_type: Option<RelationType>,
    /// `--empty`: a ref or source renders as a subquery of zero rows.
    pub(crate) empty: bool,
    /// Inside a microbatch model's batch, a ref or source with an `event_time`:
    /// the condition that keeps the batch's window, rendered as dbt's filtered
    /// subquery.
    pub(crate) event_filter: Option<String>,
}

/// dbt's relation types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RelationType {
    Table,
    View,
    MaterializedView,
    Cte,
}

impl RelationType {
    fn as_str(self) -> &'static str {
        match self {
            RelationType::Table => "table",
            RelationType::View => "view",
            RelationType::MaterializedView => "materialized_view",
            RelationType::Cte => "cte",
        }
    }
}

impl Relation {
    /// `database.schema.identifier` under `quoting`.
    pub(crate) fn new(
        database: &str,
        schema: &str,
        identifier: &str,
        quoting: Quoting,
    ) -> Relation {
        Relation {
            database: database.to_string(),
            schema: schema.to_string(),
            identifier: identifier.to_string(),
            quoting,
            cte: false,
            filter: None,
            rel_type: None,
            empty: false,
            event_filter: None,
        }
    }

    /// What `ref()` to `node` gives once names are known: its relation, or the
    /// CTE of an ephemeral model.
    pub(crate) fn of_node(node: &Node) -> Relation {
        if node.materialized == crate::manifest::Materialization::Ephemeral {
            Relation {
                cte: true,
                ..Relation::new("", "", &cte_name(&node.alias), Quoting::default())
            }
        } else {
            Relation::new(&node.database, &node.schema, &node.alias, node.quoting)
        }
    }

    /// A source table's relation.
    pub(crate) fn of_source(s: &SourceNode) -> Relation {
        Relation::new(
            &s.database,
            &s.table.schema,
            &s.table.identifier,
            s.table.quoting,
        )
    }
}

/// The name of an ephemeral model's CTE, from its alias (dbt's
/// `add_ephemeral_prefix`).
pub(crate) fn cte_name(alias: &str) -> String {
    format!("__dbt__cte__{alias}")
}

impl Object for Relation {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let part = |s: &str| {
            if self.cte {
                Value::from(())
            } else {
                Value::from(s.to_string())
            }
        };
        match key.as_str()? {
            "schema" => Some(part(&self.schema)),
            "identifier" | "name" | "table" => Some(Value::from(self.identifier.clone())),
            "database" => Some(part(&self.database)),
            "type" => Some(
                self.rel_type
                    .map(|t| Value::from(t.as_str()))
                    .unwrap_or(Value::from(())),
            ),
            "is_table" => Some(Value::from(self.rel_type == Some(RelationType::Table))),
            "is_view" => Some(Value::from(self.rel_type == Some(RelationType::View))),
            "is_materialized_view" => Some(Value::from(
                self.rel_type == Some(RelationType::MaterializedView),
            )),
            "is_cte" => Some(Value::from(
                self.cte || self.rel_type == Some(RelationType::Cte),
            )),
            _ => None,
        }
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rel = if self.cte {
            self.identifier.clone()
        } else if self.database.is_empty() || self.schema.is_empty() {
            // `api.Relation.create` without some parts: only those given.
            let quote = |s: &str, q: bool| {
                if q {
                    crate::manifest::quote_ident(s)
                } else {
                    s.to_string()
                }
            };
            [
                (&self.database, self.quoting.database),
                (&self.schema, self.quoting.schema),
                (&self.identifier, self.quoting.identifier),
            ]
            .iter()
            .filter(|(p, _)| !p.is_empty())
            .map(|(p, q)| quote(p, *q))
            .collect::<Vec<_>>()
            .join(".")
        } else {
            self.quoting
                .render(&self.database, &self.schema, &self.identifier)
        };
        // As dbt's `render_limited()`: zero rows, aliased after the table.
        let rel = if self.empty {
            format!(
                "(select * from {rel} where false limit 0) _dbt_limit_subq_{}",
                self.identifier
            )
        } else {
            rel
        };
        // dbt's `render_event_time_filtered()`, around the limited subquery.
        let rel = match &self.event_filter {
            Some(cond) => format!(
                "(select * from {rel} where {cond}) _dbt_et_filter_subq_{}",
                self.identifier
            ),
            None => rel,
        };
        match &self.filter {
            None => f.write_str(&rel),
            Some(w) => write!(f, "(select * from {rel} where {w}) dbt_subquery"),
        }
    }
}
