//! dbt's `adapter` object (one method per match arm: `adapter.dispatch` finds
//! the macro to call as dbt does, see [`super::namespace`]), `api.Relation.create`,
//! `load_relation`, and the columns the adapter describes ([`ColumnObj`]), as
//! dbt-postgres answers them. Introspection reads the catalog on the render's
//! connection with values bound; while the project is parsed it answers as dbt
//! does then (no columns, no relation).

use std::sync::Arc;

use minijinja::value::{from_args, Kwargs, Object, ObjectRepr};
use minijinja::{Error, ErrorKind, State, Value};

use super::db::{connection, executing};
use super::jerr;
use super::namespace::{MacroRef, MacroTable};
use super::relation::{Relation, RelationType};
use crate::manifest::{quote_ident, Quoting};

/// `adapter`.
#[derive(Debug)]
pub(super) struct Adapter {
    pub(super) macros: Arc<MacroTable>,
}

impl Object for Adapter {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn call_method(
        self: &Arc<Self>,
        state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "dispatch" => self.dispatch(args),
            "quote" => {
                let (name,): (String,) = from_args(args)?;
                Ok(Value::from(quote_ident(&name)))
            }
            "get_columns_in_relation" => {
                let (relation,): (Value,) = from_args(args)?;
                columns_in_relation(state, &relation)
            }
            "get_relation" => {
                let (pos, kwargs): (&[Value], Kwargs) = from_args(args)?;
                let mut parts = [None, None, None];
                for (i, key) in ["database", "schema", "identifier"].iter().enumerate() {
                    parts[i] = kwargs
                        .get::<Option<String>>(key)?
                        .or_else(|| pos.get(i).and_then(|v| v.as_str().map(str::to_string)));
                }
                kwargs.assert_all_used()?;
                let [database, schema, identifier] = parts;
                let (Some(schema), Some(identifier)) = (schema, identifier) else {
                    return Err(jerr(
                        "adapter.get_relation(database, schema, identifier): give the schema and the identifier",
                    ));
                };
                find_relation(state, database.as_deref(), &schema, &identifier)
            }
            "drop_relation" => {
                let (relation,): (Value,) = from_args(args)?;
                drop_relation(state, &relation)
            }
            "get_missing_columns" => {
                let (from, to): (Value, Value) = from_args(args)?;
                let from_cols = columns_in_relation(state, &from)?;
                let to_cols = columns_in_relation(state, &to)?;
                let have: Vec<String> = to_cols
                    .try_iter()?
                    .filter_map(|c| c.get_attr("name").ok())
                    .map(|n| n.to_string())
                    .collect();
                let missing: Vec<Value> = from_cols
                    .try_iter()?
                    .filter(|c| {
                        c.get_attr("name")
                            .map(|n| !have.contains(&n.to_string()))
                            .unwrap_or(false)
                    })
                    .collect();
                Ok(Value::from(missing))
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}

impl Adapter {
    /// `adapter.dispatch(macro_name, macro_namespace=None)`: the macro itself,
    /// to be called.
    fn dispatch(&self, args: &[Value]) -> Result<Value, Error> {
        let (name, namespace, kwargs): (String, Option<Option<String>>, Kwargs) = from_args(args)?;
        let namespace = match namespace {
            Some(ns) => ns,
            None => kwargs.get::<Option<String>>("macro_namespace")?,
        };
        if kwargs.has("packages") {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("adapter.dispatch('{name}', packages=…): the packages argument is gone from dbt; use macro_namespace and the dispatch: config"),
            ));
        }
        kwargs.assert_all_used()?;
        let def = self.macros.dispatch(&name, namespace.as_deref())?;
        Ok(Value::from_object(MacroRef(def.clone())))
    }
}

/// The parts of a relation value (ours, or anything with those attributes).
fn parts(relation: &Value) -> Result<(Option<String>, Option<String>, String), Error> {
    let attr = |k: &str| -> Option<String> {
        relation
            .get_attr(k)
            .ok()
            .filter(|v| !v.is_none() && !v.is_undefined())
            .map(|v| v.to_string())
    };
    let identifier = attr("identifier").ok_or_else(|| {
        jerr(format!(
            "expected a relation (ref(), source(), this, api.Relation.create(…)), got {relation}"
        ))
    })?;
    Ok((attr("database"), attr("schema"), identifier))
}

/// `adapter.get_columns_in_relation(relation)`: its columns in order; none
/// while parsing.
fn columns_in_relation(state: &State, relation: &Value) -> Result<Value, Error> {
    let (_, schema, identifier) = parts(relation)?;
    if !executing(state)? {
        return Ok(Value::from(Vec::<Value>::new()));
    }
    let db = connection(state, "adapter.get_columns_in_relation()")?;
    let sql = "select column_name::text, data_type::text, character_maximum_length::int, \
               numeric_precision::int, numeric_scale::int \
               from information_schema.columns \
               where table_name::text = $1::text and ($2::text is null or table_schema::text = $2::text) \
               order by ordinal_position";
    let rows = db
        .run(
            move |c| Box::pin(async move { c.query(sql, &[&identifier, &schema]).await }),
            sql,
        )
        .map_err(|e| {
            jerr(format!(
                "Database Error in adapter.get_columns_in_relation(): {e}"
            ))
        })?;
    Ok(Value::from(
        rows.iter()
            .map(|r| {
                Value::from_object(ColumnObj {
                    column: r.get(0),
                    dtype: r.get(1),
                    char_size: r.get(2),
                    numeric_precision: r.get(3),
                    numeric_scale: r.get(4),
                })
            })
            .collect::<Vec<_>>(),
    ))
}

/// `adapter.drop_relation(relation)`: `drop <type> if exists … cascade` (a
/// table unless the relation says otherwise); nothing while parsing.
fn drop_relation(state: &State, relation: &Value) -> Result<Value, Error> {
    let (_, _, identifier) = parts(relation)?;
    if identifier.is_empty() || !executing(state)? {
        return Ok(Value::from(()));
    }
    let kind = match relation.get_attr("type")?.as_str() {
        Some("view") => "view",
        Some("materialized_view") => "materialized view",
        _ => "table",
    };
    let db = connection(state, "adapter.drop_relation()")?;
    let sql = format!("drop {kind} if exists {relation} cascade");
    db.query(&sql, false)
        .map_err(|e| jerr(format!("Database Error in adapter.drop_relation(): {e}")))?;
    Ok(Value::from(()))
}

/// The relation named so, with its type, or none (also while parsing).
fn find_relation(
    state: &State,
    database: Option<&str>,
    schema: &str,
    identifier: &str,
) -> Result<Value, Error> {
    if !executing(state)? {
        return Ok(Value::from(()));
    }
    let db = connection(state, "adapter.get_relation()")?;
    let sql = "select c.relkind::text, current_database()::text from pg_class c \
               join pg_namespace n on n.oid = c.relnamespace \
               where n.nspname::text = $1::text and c.relname::text = $2::text";
    let row = db
        .run(
            {
                let (schema, identifier) = (schema.to_string(), identifier.to_string());
                move |c| Box::pin(async move { c.query_opt(sql, &[&schema, &identifier]).await })
            },
            sql,
        )
        .map_err(|e| jerr(format!("Database Error in adapter.get_relation(): {e}")))?;
    let Some(row) = row else {
        return Ok(Value::from(()));
    };
    let (kind, current): (String, String) = (row.get(0), row.get(1));
    let rel_type = match kind.as_str() {
        "r" | "p" => RelationType::Table,
        "v" => RelationType::View,
        "m" => RelationType::MaterializedView,
        _ => return Ok(Value::from(())),
    };
    let mut rel = Relation::new(
        database.unwrap_or(&current),
        schema,
        identifier,
        Quoting::default(),
    );
    rel.rel_type = Some(rel_type);
    Ok(Value::from_object(rel))
}

/// `load_relation(relation)`: the relation as it exists, or none.
pub(super) fn load_relation(state: &State, relation: Value) -> Result<Value, Error> {
    let (database, schema, identifier) = parts(&relation)?;
    let Some(schema) = schema else {
        return Ok(Value::from(()));
    };
    find_relation(state, database.as_deref(), &schema, &identifier)
}

/// `api`: `api.Relation.create(…)`.
#[derive(Debug)]
pub(super) struct Api;

impl Object for Api {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "Relation" => Some(Value::from_object(RelationApi)),
            _ => None,
        }
    }
}

/// `api.Relation`.
#[derive(Debug)]
struct RelationApi;

impl Object for RelationApi {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "create" => {
                let (pos, kwargs): (&[Value], Kwargs) = from_args(args)?;
                let mut parts: [Option<String>; 4] = Default::default();
                for (i, key) in ["database", "schema", "identifier", "type"]
                    .iter()
                    .enumerate()
                {
                    parts[i] = kwargs
                        .get::<Option<String>>(key)?
                        .or_else(|| pos.get(i).and_then(|v| v.as_str().map(str::to_string)));
                }
                kwargs.assert_all_used()?;
                let [database, schema, identifier, kind] = parts;
                let mut rel = Relation::new(
                    database.as_deref().unwrap_or_default(),
                    schema.as_deref().unwrap_or_default(),
                    identifier.as_deref().unwrap_or_default(),
                    Quoting::default(),
                );
                rel.rel_type = kind.as_deref().map(RelationType::parse).transpose()?;
                Ok(Value::from_object(rel))
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}

/// A column as dbt-postgres describes it: `.name`/`.column`, `.dtype`,
/// `.data_type`, `.quoted`, sizes, and `is_string()`, `is_number()` ….
#[derive(Debug)]
pub(super) struct ColumnObj {
    column: String,
    dtype: String,
    char_size: Option<i32>,
    numeric_precision: Option<i32>,
    numeric_scale: Option<i32>,
}

impl ColumnObj {
    fn lower(&self) -> String {
        self.dtype.to_lowercase()
    }

    fn is_string(&self) -> bool {
        matches!(
            self.lower().as_str(),
            "text" | "character varying" | "character" | "varchar"
        )
    }

    fn is_integer(&self) -> bool {
        matches!(
            self.lower().as_str(),
            "smallint"
                | "integer"
                | "bigint"
                | "smallserial"
                | "serial"
                | "bigserial"
                | "int2"
                | "int4"
                | "int8"
                | "serial2"
                | "serial4"
                | "serial8"
        )
    }

    fn is_float(&self) -> bool {
        matches!(
            self.lower().as_str(),
            "real" | "float4" | "float" | "double precision" | "float8" | "double"
        )
    }

    fn is_numeric(&self) -> bool {
        matches!(self.lower().as_str(), "numeric" | "decimal")
    }

    fn string_size(&self) -> i32 {
        match self.char_size {
            Some(n) if self.dtype != "text" => n,
            _ => 256,
        }
    }

    /// dbt-postgres' `data_type`: `text` and unsized `character varying` as they
    /// are, other strings `character varying(n)`, numerics with their precision.
    fn data_type(&self) -> String {
        let lower = self.lower();
        if lower == "text" || (lower == "character varying" && self.char_size.is_none()) {
            return self.dtype.clone();
        }
        if self.is_string() {
            return format!("character varying({})", self.string_size());
        }
        if self.is_numeric() {
            if let (Some(p), Some(s)) = (self.numeric_precision, self.numeric_scale) {
                return format!("{}({p},{s})", self.dtype);
            }
        }
        self.dtype.clone()
    }
}

impl Object for ColumnObj {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let opt = |v: Option<i32>| v.map(Value::from).unwrap_or(Value::from(()));
        Some(match key.as_str()? {
            "name" | "column" => Value::from(self.column.clone()),
            "dtype" => Value::from(self.dtype.clone()),
            "data_type" => Value::from(self.data_type()),
            "quoted" => Value::from(format!("\"{}\"", self.column)),
            "char_size" => opt(self.char_size),
            "numeric_precision" => opt(self.numeric_precision),
            "numeric_scale" => opt(self.numeric_scale),
            _ => return None,
        })
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        if method == "literal" {
            let (v,): (Value,) = from_args(args)?;
            return Ok(Value::from(format!("{v}::{}", self.data_type())));
        }
        let () = from_args(args)?;
        Ok(Value::from(match method {
            "is_string" => self.is_string(),
            "is_integer" => self.is_integer(),
            "is_float" => self.is_float(),
            "is_numeric" => self.is_numeric(),
            "is_number" => self.is_integer() || self.is_numeric() || self.is_float(),
            "string_size" => {
                if !self.is_string() {
                    return Err(jerr("Called string_size() on non-string field!"));
                }
                return Ok(Value::from(self.string_size()));
            }
            _ => return Err(Error::from(ErrorKind::UnknownMethod)),
        }))
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<Column {} ({})>", self.column, self.data_type())
    }
}
