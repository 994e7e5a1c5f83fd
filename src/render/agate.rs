//! Query results as dbt's macros see them: an agate-like [`Table`] (what
//! `run_query` returns and `load_result(…).table` holds) with `.columns` and
//! `.rows`, each indexable by position and by name, `.columns[0].values()`,
//! `.column_names`, `.print_table()`.
//!
//! Values are typed as dbt types them: PostgreSQL's text columns stay text,
//! integers are integers, `numeric` and floats numbers, booleans booleans, and
//! everything else (dates, timestamps, JSON) the text PostgreSQL sends.

use std::sync::Arc;

use minijinja::value::{from_args, Enumerator, Object, ObjectRepr};
use minijinja::{Error, ErrorKind, State, Value};

/// How a column's values are typed (agate's type of the column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ColumnType {
    Integer,
    /// `numeric`: a whole number when PostgreSQL sends one (`16`), else a float
    /// (Python's Decimal keeps `10.00`, a float prints `10.0`).
    Number,
    /// `real`, `double precision`: always a float (`10.0`).
    Float,
    Boolean,
    Text,
}

impl ColumnType {
    /// The type of a PostgreSQL column, by its type's name.
    pub(super) fn of_pg(type_name: &str) -> ColumnType {
        match type_name {
            "int2" | "int4" | "int8" | "oid" => ColumnType::Integer,
            "numeric" => ColumnType::Number,
            "float4" | "float8" => ColumnType::Float,
            "bool" => ColumnType::Boolean,
            _ => ColumnType::Text,
        }
    }

    /// A value PostgreSQL sent as text, as a template value of this type.
    pub(super) fn value(self, text: Option<&str>) -> Value {
        let Some(t) = text else {
            return Value::from(());
        };
        match self {
            ColumnType::Integer => t
                .parse::<i64>()
                .map(Value::from)
                .unwrap_or_else(|_| Value::from(t)),
            ColumnType::Number => match t.parse::<i64>() {
                Ok(i) => Value::from(i),
                Err(_) => t
                    .parse::<f64>()
                    .map(Value::from)
                    .unwrap_or_else(|_| Value::from(t)),
            },
            ColumnType::Float => t
                .parse::<f64>()
                .map(Value::from)
                .unwrap_or_else(|_| Value::from(t)),
            ColumnType::Boolean => Value::from(t == "t" || t == "true"),
            ColumnType::Text => Value::from(t),
        }
    }

    fn agate_name(self) -> &'static str {
        match self {
            ColumnType::Integer => "Integer",
            ColumnType::Number | ColumnType::Float => "Number",
            ColumnType::Boolean => "Boolean",
            ColumnType::Text => "Text",
        }
    }
}

/// A query's result: column names and types, and its rows.
#[derive(Debug, Default)]
pub(super) struct Table {
    pub(super) names: Vec<String>,
    pub(super) types: Vec<ColumnType>,
    pub(super) rows: Vec<Vec<Value>>,
}

impl Table {
    /// The column at `key`: a name, or a position (negative from the end).
    fn position(&self, key: &Value) -> Option<usize> {
        if let Some(name) = key.as_str() {
            return self.names.iter().position(|n| n == name);
        }
        index(key, self.names.len())
    }

    fn row_position(&self, key: &Value) -> Option<usize> {
        index(key, self.rows.len())
    }

    /// The rows as lists of values (`load_result(…)['data']`).
    pub(super) fn data(&self) -> Value {
        Value::from(
            self.rows
                .iter()
                .map(|r| Value::from(r.clone()))
                .collect::<Vec<_>>(),
        )
    }

    /// The table as text, one line per row (`print_table()`).
    fn as_text(&self) -> String {
        let mut out = format!("| {} |", self.names.join(" | "));
        for r in &self.rows {
            let cells: Vec<String> = r.iter().map(|v| v.to_string()).collect();
            out.push_str(&format!("\n| {} |", cells.join(" | ")));
        }
        out
    }
}

/// A Python index into `len` items (negative from the end).
fn index(key: &Value, len: usize) -> Option<usize> {
    let i = i64::try_from(key.clone()).ok()?;
    let len = len as i64;
    let i = if i < 0 { i + len } else { i };
    (0..len).contains(&i).then_some(i as usize)
}

/// `run_query(…)` / `load_result(…).table`.
#[derive(Debug)]
pub(super) struct TableObj(pub(super) Arc<Table>);

impl Object for TableObj {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Iterable
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "columns" => Some(Value::from_object(Columns(self.0.clone()))),
            "rows" => Some(Value::from_object(Rows(self.0.clone()))),
            "column_names" => Some(Value::from(self.0.names.clone())),
            "column_types" => Some(Value::from(
                self.0
                    .types
                    .iter()
                    .map(|t| t.agate_name())
                    .collect::<Vec<_>>(),
            )),
            _ => None,
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let t = self.0.clone();
        Enumerator::Values(
            (0..t.rows.len())
                .map(|i| Value::from_object(Row(t.clone(), i)))
                .collect(),
        )
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        _args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "print_table" => {
                crate::render::print_line(&self.0.as_text());
                Ok(Value::from(()))
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}

/// `table.columns`: by position or by name.
#[derive(Debug)]
struct Columns(Arc<Table>);

impl Object for Columns {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let i = self.0.position(key)?;
        Some(Value::from_object(Column(self.0.clone(), i)))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Seq(self.0.names.len())
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let () = from_args(args)?;
        let cols = || {
            (0..self.0.names.len())
                .map(|i| Value::from_object(Column(self.0.clone(), i)))
                .collect::<Vec<_>>()
        };
        match method {
            "keys" => Ok(Value::from(self.0.names.clone())),
            "values" => Ok(Value::from(cols())),
            "items" => Ok(Value::from(
                self.0
                    .names
                    .iter()
                    .cloned()
                    .zip(cols())
                    .map(|(n, c)| Value::from(vec![Value::from(n), c]))
                    .collect::<Vec<_>>(),
            )),
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}

/// One column: `.name`, `.data_type`, `.values()`, iterable over its values.
#[derive(Debug)]
struct Column(Arc<Table>, usize);

impl Column {
    fn values(&self) -> Vec<Value> {
        self.0.rows.iter().map(|r| r[self.1].clone()).collect()
    }
}

impl Object for Column {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str() {
            Some("name") => Some(Value::from(self.0.names[self.1].clone())),
            Some("data_type") => Some(Value::from(self.0.types[self.1].agate_name())),
            Some(_) => None,
            None => {
                let i = self.0.row_position(key)?;
                Some(self.0.rows[i][self.1].clone())
            }
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Seq(self.0.rows.len())
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let () = from_args(args)?;
        match method {
            "values" => Ok(Value::from(self.values())),
            "values_without_nulls" => Ok(Value::from(
                self.values()
                    .into_iter()
                    .filter(|v| !v.is_none())
                    .collect::<Vec<_>>(),
            )),
            "values_distinct" => {
                let mut out: Vec<Value> = Vec::new();
                for v in self.values() {
                    if !out.contains(&v) {
                        out.push(v);
                    }
                }
                Ok(Value::from(out))
            }
            "values_sorted" => {
                let mut v = self.values();
                v.sort();
                Ok(Value::from(v))
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}

/// `table.rows`: by position.
#[derive(Debug)]
struct Rows(Arc<Table>);

impl Object for Rows {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let i = self.0.row_position(key)?;
        Some(Value::from_object(Row(self.0.clone(), i)))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Seq(self.0.rows.len())
    }
}

/// One row: by position or by column name, iterable over its values; `.keys()`,
/// `.values()`, `.items()`, `.get(name)`.
#[derive(Debug)]
struct Row(Arc<Table>, usize);

impl Object for Row {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let i = self.0.position(key)?;
        Some(self.0.rows[self.1][i].clone())
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Seq(self.0.names.len())
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let row = &self.0.rows[self.1];
        match method {
            "keys" => Ok(Value::from(self.0.names.clone())),
            "values" => Ok(Value::from(row.clone())),
            "items" => Ok(Value::from(
                self.0
                    .names
                    .iter()
                    .zip(row)
                    .map(|(n, v)| Value::from(vec![Value::from(n.clone()), v.clone()]))
                    .collect::<Vec<_>>(),
            )),
            "get" => {
                let (key, default): (Value, Option<Value>) = from_args(args)?;
                Ok(self
                    .get_value(&key)
                    .unwrap_or(default.unwrap_or(Value::from(()))))
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}
