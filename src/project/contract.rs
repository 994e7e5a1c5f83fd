//! Model contracts and constraints as the property files declare them, typed and
//! checked when the project loads: `contract: {enforced, alias_types}`, column
//! `data_type`s, and constraints at the column level (dbt's
//! `ColumnLevelConstraint`) and at the model level (`ModelLevelConstraint`, with
//! `columns`). A constraint dbt would drop from the DDL without a word (a check
//! without an expression, a model-level `not_null`, a foreign key that names
//! nothing) is refused here, with its file and line.

use serde_json::{json, Map, Value};

use crate::error::Result;

use super::yaml::{At, Yaml, YamlValue};

/// A model's `contract` config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Contract {
    pub(crate) enforced: bool,
    /// Whether `data_type: string` means `text` (dbt's type aliases).
    pub(crate) alias_types: bool,
}

impl Default for Contract {
    fn default() -> Contract {
        Contract {
            enforced: false,
            alias_types: true,
        }
    }
}

impl Contract {
    /// The contract of a merged config (its `contract` value was checked when
    /// read, so anything else is the default).
    pub(crate) fn of(config: &Map<String, Value>) -> Contract {
        let mut c = Contract::default();
        if let Some(Value::Object(o)) = config.get("contract") {
            if let Some(b) = o.get("enforced").and_then(Value::as_bool) {
                c.enforced = b;
            }
            if let Some(b) = o.get("alias_types").and_then(Value::as_bool) {
                c.alias_types = b;
            }
        }
        c
    }

    /// `{"enforced": …, "alias_types": …}`, as dbt writes the config.
    pub(crate) fn to_json(self) -> Value {
        json!({"enforced": self.enforced, "alias_types": self.alias_types})
    }
}

/// Checks a `contract:` config value: a mapping of `enforced` and `alias_types`,
/// both booleans (or null, dbt's "not set").
pub(crate) fn check_contract(v: &Yaml, path: &str, at: At<'_>) -> Result<()> {
    if v.is_null() {
        return Ok(());
    }
    if !matches!(v.value, YamlValue::Map(_)) {
        return Err(at.error(format!(
            "{path}: expected a mapping such as {{enforced: true}}, got {}; fix the value",
            v.kind()
        )));
    }
    for (k, line, val) in v.entries() {
        let at = At {
            file: at.file,
            line: if *line > 0 { *line } else { at.line },
        };
        match k.as_str() {
            "enforced" | "alias_types" => {
                if !matches!(val.value, YamlValue::Bool(_)) {
                    return Err(at.error(format!(
                        "{path}.{k}: expected true or false, got {}; fix the value",
                        val.kind()
                    )));
                }
            }
            other => {
                return Err(at.error(format!(
                    "{path}.{other}: unknown key; a contract has `enforced` and `alias_types`"
                )))
            }
        }
    }
    Ok(())
}

/// The kinds of constraint dbt knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConstraintKind {
    NotNull,
    Unique,
    PrimaryKey,
    Check,
    ForeignKey,
    Custom,
}

const KINDS: &str = "not_null, unique, primary_key, check, foreign_key, custom";

impl ConstraintKind {
    fn parse(s: &str) -> Option<ConstraintKind> {
        Some(match s {
            "not_null" => ConstraintKind::NotNull,
            "unique" => ConstraintKind::Unique,
            "primary_key" => ConstraintKind::PrimaryKey,
            "check" => ConstraintKind::Check,
            "foreign_key" => ConstraintKind::ForeignKey,
            "custom" => ConstraintKind::Custom,
            _ => return None,
        })
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ConstraintKind::NotNull => "not_null",
            ConstraintKind::Unique => "unique",
            ConstraintKind::PrimaryKey => "primary_key",
            ConstraintKind::Check => "check",
            ConstraintKind::ForeignKey => "foreign_key",
            ConstraintKind::Custom => "custom",
        }
    }
}

/// What a foreign key's `to:` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ToRelation {
    /// `ref('model')` or `ref('package', 'model')`.
    Ref {
        package: Option<String>,
        name: String,
    },
    /// `source('source', 'table')`.
    Source { source: String, table: String },
}

/// Where a constraint is declared: on a column, or on the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    Column,
    Model,
}

/// One constraint (dbt's `ColumnLevelConstraint`, or `ModelLevelConstraint` when
/// it has `columns`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Constraint {
    pub(crate) kind: ConstraintKind,
    pub(crate) name: Option<String>,
    pub(crate) expression: Option<String>,
    /// `to:` as written (`ref('plans')`) and what it names.
    pub(crate) to: Option<(String, ToRelation)>,
    pub(crate) to_columns: Vec<String>,
    /// The constrained columns (model-level constraints).
    pub(crate) columns: Vec<String>,
    pub(crate) warn_unenforced: bool,
    pub(crate) warn_unsupported: bool,
    pub(crate) level: Level,
    /// The line that declares it.
    pub(crate) line: usize,
    /// The relation `to` names, once the project is rendered: `"schema"."name"`
    /// for the DDL, and `"database"."schema"."name"` as dbt's compiled node has it.
    pub(crate) to_relation: Option<String>,
    pub(crate) to_compiled: Option<String>,
}

impl Constraint {
    /// As `manifest.json` writes it: once the model is compiled, `to` is the
    /// relation it names.
    pub(crate) fn to_json(&self, compiled: bool) -> Value {
        let to = match (&self.to_compiled, &self.to) {
            (Some(rel), _) if compiled => Some(rel.clone()),
            (_, to) => to.as_ref().map(|(raw, _)| raw.clone()),
        };
        let mut o = json!({
            "type": self.kind.as_str(),
            "name": self.name,
            "expression": self.expression,
            "warn_unenforced": self.warn_unenforced,
            "warn_unsupported": self.warn_unsupported,
            "to": to,
            "to_columns": self.to_columns,
        });
        if self.level == Level::Model {
            o["columns"] = json!(self.columns);
        }
        o
    }

    /// Python's `repr()` of dbt's constraint dataclass, for the contract checksum.
    pub(crate) fn python_repr(&self) -> String {
        let opt = |v: &Option<String>| v.as_deref().map_or("None".to_string(), py_str);
        let list = |v: &[String]| {
            format!(
                "[{}]",
                v.iter().map(|s| py_str(s)).collect::<Vec<_>>().join(", ")
            )
        };
        let py_bool = |b: bool| if b { "True" } else { "False" };
        let class = match self.level {
            Level::Column => "ColumnLevelConstraint",
            Level::Model => "ModelLevelConstraint",
        };
        let mut s = format!(
            "{class}(type=<ConstraintType.{k}: '{k}'>, name={}, expression={}, warn_unenforced={}, warn_unsupported={}, to={}, to_columns={}",
            opt(&self.name),
            opt(&self.expression),
            py_bool(self.warn_unenforced),
            py_bool(self.warn_unsupported),
            opt(&self.to.as_ref().map(|(raw, _)| raw.clone())),
            list(&self.to_columns),
            k = self.kind.as_str(),
        );
        if self.level == Level::Model {
            s.push_str(&format!(", columns={}", list(&self.columns)));
        }
        s.push(')');
        s
    }
}

/// Python's `repr()` of a string: single quotes, or double quotes when it has a
/// single quote and no double quote; backslashes and the chosen quote escaped.
pub(crate) fn py_str(s: &str) -> String {
    let q = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(q);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == q => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push(q);
    out
}

/// Reads the `constraints:` list of a column (`Level::Column`) or of a model.
/// `what` names the owner in messages (`column plan_id`, `model plans`).
pub(crate) fn read_constraints(
    v: &Yaml,
    level: Level,
    what: &str,
    file: &str,
) -> Result<Vec<Constraint>> {
    let items = match &v.value {
        YamlValue::Seq(items) => items.as_slice(),
        YamlValue::Null => &[],
        _ => {
            return Err(v.at(file).error(format!(
                "{what}: constraints: expected a list such as `- type: not_null`, got {}",
                v.kind()
            )))
        }
    };
    items
        .iter()
        .map(|c| read_constraint(c, level, what, file))
        .collect()
}

fn read_constraint(c: &Yaml, level: Level, what: &str, file: &str) -> Result<Constraint> {
    let at = c.at(file);
    if !matches!(c.value, YamlValue::Map(_)) {
        return Err(at.error(format!(
            "{what}: a constraint must be a mapping with a `type:` (such as `- type: not_null`), got {}",
            c.kind()
        )));
    }
    let kind = match c.get("type") {
        None => {
            return Err(at.error(format!(
                "{what}: a constraint has no `type:`; give one of {KINDS}"
            )))
        }
        Some(t) => match t.as_str().and_then(ConstraintKind::parse) {
            Some(k) => k,
            None => {
                let shown = t
                    .as_str()
                    .map_or_else(|| t.kind().to_string(), |s| format!("'{s}'"));
                return Err(t.at(file).error(format!(
                    "{what}: unknown constraint type {shown}; use one of {KINDS}"
                )));
            }
        },
    };
    let ctx = format!("{what}: {} constraint", kind.as_str());
    let mut out = Constraint {
        kind,
        name: None,
        expression: None,
        to: None,
        to_columns: Vec::new(),
        columns: Vec::new(),
        warn_unenforced: true,
        warn_unsupported: true,
        level,
        line: c.line,
        to_relation: None,
        to_compiled: None,
    };
    let mut to_at = at;
    for (k, line, val) in c.entries() {
        let at = At { file, line: *line };
        match k.as_str() {
            "type" => {}
            "name" => out.name = string(val, &ctx, k, at)?,
            "expression" => out.expression = string(val, &ctx, k, at)?,
            "to" => {
                to_at = at;
                if let Some(raw) = string(val, &ctx, k, at)? {
                    let target = parse_to(&raw).ok_or_else(|| {
                        at.error(format!(
                            "{ctx}: to: '{raw}' is not a ref or a source; write to: ref('model') or to: source('source', 'table')"
                        ))
                    })?;
                    out.to = Some((raw, target));
                }
            }
            "to_columns" => out.to_columns = strings(val, &ctx, k, at)?,
            "columns" if level == Level::Model => out.columns = strings(val, &ctx, k, at)?,
            "columns" => {
                return Err(at.error(format!(
                    "{ctx}: `columns:` is for model-level constraints; a column's constraint applies to its own column, so remove it (or move the constraint under the model's `constraints:`)"
                )))
            }
            "warn_unenforced" | "warn_unsupported" => {
                let b = match val.value {
                    YamlValue::Bool(b) => b,
                    _ => {
                        return Err(at.error(format!(
                            "{ctx}: {k}: expected true or false, got {}",
                            val.kind()
                        )))
                    }
                };
                if k == "warn_unenforced" {
                    out.warn_unenforced = b;
                } else {
                    out.warn_unsupported = b;
                }
            }
            other => {
                let keys = if level == Level::Model {
                    "type, name, expression, columns, to, to_columns, warn_unenforced, warn_unsupported"
                } else {
                    "type, name, expression, to, to_columns, warn_unenforced, warn_unsupported"
                };
                return Err(at.error(format!(
                    "{ctx}: unknown key `{other}`; a constraint has {keys}"
                )));
            }
        }
    }
    check_complete(&out, &ctx, at, to_at)?;
    Ok(out)
}

/// The parts each kind needs, where dbt would otherwise leave the constraint out
/// of the DDL without a word (or write DDL that cannot run).
fn check_complete(c: &Constraint, ctx: &str, at: At<'_>, to_at: At<'_>) -> Result<()> {
    let model = c.level == Level::Model;
    match c.kind {
        ConstraintKind::Check if c.expression.is_none() => Err(at.error(format!(
            "{ctx} needs an `expression:`, the condition every row must meet (such as \"amount >= 0\")"
        ))),
        ConstraintKind::Custom if c.expression.is_none() => Err(at.error(format!(
            "{ctx} needs an `expression:`, the constraint's SQL"
        ))),
        ConstraintKind::NotNull if model => Err(at.error(format!(
            "{ctx}: not_null is a column-level constraint (dbt leaves it out of the table at the model level); put it under the column's `constraints:`"
        ))),
        ConstraintKind::ForeignKey => {
            match (&c.to, c.to_columns.is_empty(), &c.expression) {
                (Some(_), false, None) => {}
                (Some(_), true, None) => {
                    return Err(to_at.error(format!(
                        "{ctx}: `to:` needs `to_columns:`, the referenced columns (such as to_columns: [id])"
                    )))
                }
                (None, true, Some(_)) => {}
                (None, false, _) => {
                    return Err(at.error(format!(
                        "{ctx}: `to_columns:` needs `to:`, the referenced model (such as to: ref('plans'))"
                    )))
                }
                (Some(_), _, Some(_)) => {
                    return Err(at.error(format!(
                        "{ctx}: give either `to:` with `to_columns:`, or `expression:`, not both"
                    )))
                }
                (None, true, None) => {
                    return Err(at.error(format!(
                        "{ctx} needs `to: ref('model')` with `to_columns: [column]`, or an `expression:` such as \"analytics.plans (plan_id)\""
                    )))
                }
            }
            if model && c.columns.is_empty() {
                return Err(at.error(format!(
                    "{ctx} needs `columns:`, the referencing columns of this model"
                )));
            }
            Ok(())
        }
        ConstraintKind::Unique | ConstraintKind::PrimaryKey if model && c.columns.is_empty() => {
            Err(at.error(format!("{ctx} needs `columns:`, such as columns: [id]")))
        }
        _ => Ok(()),
    }
}

fn string(v: &Yaml, ctx: &str, key: &str, at: At<'_>) -> Result<Option<String>> {
    match &v.value {
        YamlValue::Str(s) => Ok(Some(s.clone())),
        YamlValue::Null => Ok(None),
        _ => Err(at.error(format!("{ctx}: {key}: expected a string, got {}", v.kind()))),
    }
}

fn strings(v: &Yaml, ctx: &str, key: &str, at: At<'_>) -> Result<Vec<String>> {
    let bad = || {
        at.error(format!(
            "{ctx}: {key}: expected a list of column names, such as [id]"
        ))
    };
    match &v.value {
        YamlValue::Null => Ok(Vec::new()),
        YamlValue::Seq(items) => items
            .iter()
            .map(|i| i.as_str().map(str::to_string).ok_or_else(bad))
            .collect(),
        _ => Err(bad()),
    }
}

/// `ref('m')`, `ref("pkg", "m")` or `source('s', 't')`, as dbt reads a foreign
/// key's `to:` (statically: string arguments only).
pub(crate) fn parse_to(raw: &str) -> Option<ToRelation> {
    let s = raw.trim();
    let open = s.find('(')?;
    let func = s[..open].trim();
    let inner = s[open + 1..].trim_end().strip_suffix(')')?;
    let mut args = Vec::new();
    let mut rest = inner.trim();
    while !rest.is_empty() {
        let q = rest.chars().next()?;
        if q != '\'' && q != '"' {
            return None;
        }
        let end = rest[1..].find(q)? + 1;
        args.push(rest[1..end].to_string());
        rest = rest[end + 1..].trim_start();
        if let Some(r) = rest.strip_prefix(',') {
            rest = r.trim_start();
            if rest.is_empty() {
                return None;
            }
        } else if !rest.is_empty() {
            return None;
        }
    }
    match (func, args.as_slice()) {
        ("ref", [name]) => Some(ToRelation::Ref {
            package: None,
            name: name.clone(),
        }),
        ("ref", [package, name]) => Some(ToRelation::Ref {
            package: Some(package.clone()),
            name: name.clone(),
        }),
        ("source", [source, table]) => Some(ToRelation::Source {
            source: source.clone(),
            table: table.clone(),
        }),
        _ => None,
    }
}

/// Checks a column's `data_type`: text that goes into the table's DDL as it is,
/// so it must read as a type (PostgreSQL says whether the type exists).
pub(crate) fn check_data_type(v: &Yaml, column: &str, file: &str) -> Result<Option<String>> {
    let s = match &v.value {
        YamlValue::Str(s) => s,
        YamlValue::Null => return Ok(None),
        _ => {
            return Err(v.at(file).error(format!(
                "column {column}: data_type: expected a type name such as integer or numeric(8,2), got {}",
                v.kind()
            )))
        }
    };
    let mut depth = 0i32;
    let balanced = s.chars().all(|c| {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        depth >= 0
    }) && depth == 0;
    if s.trim().is_empty() || !balanced || s.contains(';') || s.contains("--") || s.contains("/*") {
        return Err(v.at(file).error(format!(
            "column {column}: data_type '{s}' is not a type name; write a PostgreSQL type such as integer, numeric(8,2) or text"
        )));
    }
    Ok(Some(s.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_parses_refs_and_sources() {
        assert_eq!(
            parse_to("ref('plans')"),
            Some(ToRelation::Ref {
                package: None,
                name: "plans".into()
            })
        );
        assert_eq!(
            parse_to(" ref( \"pkg\" , 'plans' ) "),
            Some(ToRelation::Ref {
                package: Some("pkg".into()),
                name: "plans".into()
            })
        );
        assert_eq!(
            parse_to("source('billing', 'plans')"),
            Some(ToRelation::Source {
                source: "billing".into(),
                table: "plans".into()
            })
        );
        for bad in [
            "plans",
            "ref(plans)",
            "ref('a', 'b', 'c')",
            "ref('a',)",
            "{{ ref('a') }}",
            "source('a')",
            "ref('a') x",
        ] {
            assert_eq!(parse_to(bad), None, "{bad}");
        }
    }

    #[test]
    fn python_repr_of_strings() {
        assert_eq!(py_str("a"), "'a'");
        assert_eq!(py_str("ref('plans')"), "\"ref('plans')\"");
        assert_eq!(py_str("a'\"b"), "'a\\'\"b'");
        assert_eq!(py_str("a\\b"), "'a\\\\b'");
    }
}
