//! Relations as templates see them (`{{ ref('x') }}`, `{{ this }}`, `{{ source(…) }}`).

use std::sync::Arc;

use minijinja::value::{from_args, Enumerator, Kwargs, Object, ObjectRepr};
use minijinja::{Error, ErrorKind, State, Value};

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

/// A small mapping value.
fn mapping<V: Into<Value>, const N: usize>(pairs: [(&str, V); N]) -> Value {
    Value::from(
        pairs
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.into()))
            .collect::<std::collections::BTreeMap<String, Value>>(),
    )
}

/// The keys a relation has as a mapping (dbt's relation is a dataclass that is
/// also a mapping: `rel is mapping`, `rel.get('metadata')`).
const KEYS: &[&str] = &["path", "type", "metadata", "quote_policy", "include_policy"];

impl Relation {
    /// `rel.include(database=…, schema=…, identifier=…)`: the parts set false are
    /// left out of its rendering (and of its attributes).
    fn include(&self, kwargs: &Kwargs) -> Result<Relation, Error> {
        let mut rel = self.clone();
        for (key, part) in [
            ("database", &mut rel.database),
            ("schema", &mut rel.schema),
            ("identifier", &mut rel.identifier),
        ] {
            if kwargs.get::<Option<bool>>(key)? == Some(false) {
                part.clear();
            }
        }
        kwargs.assert_all_used()?;
        Ok(rel)
    }

    /// `rel.incorporate(type=…, path={…})`: a copy with the type or parts given.
    fn incorporate(&self, kwargs: &Kwargs) -> Result<Relation, Error> {
        let mut rel = self.clone();
        if let Some(kind) = kwargs.get::<Option<String>>("type")? {
            rel.rel_type = Some(RelationType::parse(&kind)?);
        }
        if let Some(path) = kwargs.get::<Option<Value>>("path")? {
            for (key, part) in [
                ("database", &mut rel.database),
                ("schema", &mut rel.schema),
                ("identifier", &mut rel.identifier),
            ] {
                let v = path.get_item(&Value::from(key))?;
                if let Some(v) = v.as_str() {
                    *part = v.to_string();
                }
            }
        }
        kwargs.assert_all_used()?;
        Ok(rel)
    }
}

impl RelationType {
    /// A type as `api.Relation.create(type=…)` and `incorporate(type=…)` take it.
    pub(crate) fn parse(kind: &str) -> Result<RelationType, Error> {
        Ok(match kind {
            "table" => RelationType::Table,
            "view" => RelationType::View,
            "materialized_view" => RelationType::MaterializedView,
            "cte" => RelationType::Cte,
            other => {
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    format!("relation type '{other}': the type is one of table, view, materialized_view, cte"),
                ))
            }
        })
    }
}

impl Object for Relation {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(KEYS)
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "render" => {
                let () = from_args(args)?;
                Ok(Value::from(self.to_string_plain()))
            }
            "include" => {
                let (kwargs,): (Kwargs,) = from_args(args)?;
                Ok(Value::from_object(self.include(&kwargs)?))
            }
            "incorporate" => {
                let (kwargs,): (Kwargs,) = from_args(args)?;
                Ok(Value::from_object(self.incorporate(&kwargs)?))
            }
            // Quoting follows the project's policy; a call asking for another
            // one is refused rather than ignored.
            "quote" => {
                let (kwargs,): (Kwargs,) = from_args(args)?;
                for (key, policy) in [
                    ("database", self.quoting.database),
                    ("schema", self.quoting.schema),
                    ("identifier", self.quoting.identifier),
                ] {
                    if let Some(want) = kwargs.get::<Option<bool>>(key)? {
                        if want != policy {
                            return Err(Error::new(
                                ErrorKind::InvalidOperation,
                                format!("relation.quote({key}={}): changing a relation's quoting is not supported yet; set `quoting:` in dbt_project.yml", if want { "True" } else { "False" }),
                            ));
                        }
                    }
                }
                kwargs.assert_all_used()?;
                Ok(Value::from_dyn_object(self.clone()))
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }

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
            "metadata" => Some(mapping([("type", "PostgresRelation")])),
            "path" => Some(mapping([
                ("database", part(&self.database)),
                ("schema", part(&self.schema)),
                ("identifier", Value::from(self.identifier.clone())),
            ])),
            "quote_policy" => Some(mapping([
                ("database", self.quoting.database),
                ("schema", self.quoting.schema),
                ("identifier", self.quoting.identifier),
            ])),
            "include_policy" => Some(mapping([
                ("database", !self.database.is_empty()),
                ("schema", !self.schema.is_empty()),
                ("identifier", !self.identifier.is_empty()),
            ])),
            _ => None,
        }
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_string_plain())
    }
}

impl Relation {
    /// How the relation renders in SQL.
    fn to_string_plain(&self) -> String {
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
            None => rel,
            Some(w) => format!("(select * from {rel} where {w}) dbt_subquery"),
        }
    }
}
