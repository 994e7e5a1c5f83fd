//! Relations as templates see them (`{{ ref('x') }}`, `{{ this }}`, `{{ source(…) }}`).

use std::sync::Arc;

use minijinja::value::Object;
use minijinja::Value;

use crate::manifest::full_relation_name;

/// A relation as templates see it: renders as `"database"."schema"."identifier"`
/// (as dbt-postgres does) and has
/// `.schema`, `.identifier`/`.name`/`.table` and `.database` attributes.
#[derive(Debug, Clone)]
pub(crate) struct Relation {
    pub(crate) database: String,
    pub(crate) schema: String,
    pub(crate) identifier: String,
    /// A data test's `where` config: the relation then renders as a filtered
    /// subquery, as dbt does.
    pub(crate) filter: Option<String>,
}

impl Object for Relation {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "schema" => Some(Value::from(self.schema.clone())),
            "identifier" | "name" | "table" => Some(Value::from(self.identifier.clone())),
            "database" => Some(Value::from(self.database.clone())),
            _ => None,
        }
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rel = full_relation_name(&self.database, &self.schema, &self.identifier);
        match &self.filter {
            None => f.write_str(&rel),
            Some(w) => write!(f, "(select * from {rel} where {w}) dbt_subquery"),
        }
    }
}
