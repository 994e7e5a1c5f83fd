//! Snapshots as written: the `{% snapshot name %}…{% endsnapshot %}` blocks of
//! the `.sql` files of the snapshot paths, and dbt 1.9's YAML snapshots (a
//! `snapshots:` entry with `relation:`), each turned into one [`SqlFile`] whose
//! content is the snapshot's select (a block's body keeps its line numbers).

use serde_json::{Map, Value};

use crate::error::{Error, Result};

use super::files::SqlFile;

/// One snapshot of a `.sql` file: its name and the body of its block, padded with
/// the newlines before it so that template lines are the file's lines.
#[derive(Debug)]
struct Block {
    name: String,
    body: String,
}

/// The snapshots of a `.sql` file of the snapshot paths; text outside the blocks
/// must be blank or Jinja comments (dbt ignores it; we refuse anything else,
/// which dbt would not run either).
pub(super) fn blocks_of(f: &SqlFile) -> Result<Vec<SqlFile>> {
    let mut out = Vec::new();
    for b in scan(&f.content, &f.original_file_path)? {
        out.push(SqlFile {
            name: b.name,
            original_file_path: f.original_file_path.clone(),
            path: f.path.clone(),
            content: b.body,
        });
    }
    Ok(out)
}

/// The tag at the start of `s` (`{%` … `%}`), as its words and its length.
fn tag_at(s: &str) -> Option<(Vec<String>, usize)> {
    let rest = s.strip_prefix("{%")?;
    let end = rest.find("%}")?;
    let inner = rest[..end].trim_matches(|c: char| c == '-' || c == '+' || c.is_whitespace());
    let words = inner.split_whitespace().map(str::to_string).collect();
    Some((words, end + 4))
}

fn scan(text: &str, file: &str) -> Result<Vec<Block>> {
    let line_of = |pos: usize| text[..pos].matches('\n').count() + 1;
    let mut out = Vec::new();
    let mut i = 0;
    let mut open: Option<(String, usize, usize)> = None; // name, body start, line
    while i < text.len() {
        let rest = &text[i..];
        if rest.starts_with("{#") {
            let end = rest.find("#}").map_or(text.len(), |e| i + e + 2);
            i = end;
            continue;
        }
        if let Some((words, len)) = tag_at(rest) {
            match (words.first().map(String::as_str), &open) {
                (Some("snapshot"), None) => {
                    let Some(name) = words.get(1).filter(|_| words.len() == 2) else {
                        return Err(Error::usage(
                            "a snapshot block needs one name: {% snapshot orders_snapshot %}; fix the tag",
                        )
                        .at(file, Some(line_of(i))));
                    };
                    open = Some((name.clone(), i + len, line_of(i)));
                }
                (Some("snapshot"), Some(_)) => {
                    return Err(Error::usage(
                        "a snapshot block inside another; close the first with {% endsnapshot %}",
                    )
                    .at(file, Some(line_of(i))))
                }
                (Some("endsnapshot"), Some((name, start, _))) => {
                    let pad = "\n".repeat(line_of(*start) - 1);
                    let body = format!("{pad}{}", &text[*start..i]);
                    out.push(Block {
                        name: name.clone(),
                        body,
                    });
                    open = None;
                }
                (Some("endsnapshot"), None) => {
                    return Err(Error::usage(
                        "{% endsnapshot %} without a {% snapshot name %} before it; fix the blocks",
                    )
                    .at(file, Some(line_of(i))))
                }
                _ => {}
            }
            i += len;
            continue;
        }
        let c = rest.chars().next().map_or(1, char::len_utf8);
        i += c;
    }
    if let Some((name, _, line)) = open {
        return Err(Error::usage(format!(
            "snapshot '{name}' is not closed; end it with {{% endsnapshot %}}"
        ))
        .at(file, Some(line)));
    }
    Ok(out)
}

/// The SQL of a YAML snapshot with `relation:` (`ref('orders')`,
/// `source('raw', 'orders')`): dbt's `select * from {{ <relation> }}`.
pub(super) fn yaml_snapshot(
    name: &str,
    relation: &str,
    file: &SqlFile,
    line: usize,
) -> Result<SqlFile> {
    let r = relation.trim();
    if !(r.starts_with("ref(") || r.starts_with("source(")) || !r.ends_with(')') {
        return Err(Error::usage(format!(
            "snapshots.{name}.relation: expected ref('…') or source('…', '…'), got '{r}'; fix the value"
        ))
        .at(&file.original_file_path, Some(line)));
    }
    let pad = "\n".repeat(line.saturating_sub(1));
    Ok(SqlFile {
        name: name.to_string(),
        original_file_path: file.original_file_path.clone(),
        path: format!("{}/{name}.sql", file.path),
        content: format!("{pad}select * from {{{{ {r} }}}}"),
    })
}

/// A snapshot's strategy: how a changed row is recognised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Strategy {
    /// `updated_at` is newer than the current version's `dbt_valid_from`.
    Timestamp { updated_at: String },
    /// One of the columns differs (`None`: every column of the query, `all`);
    /// `updated_at` stamps the versions when given, else the current time.
    Check {
        cols: Option<Vec<String>>,
        updated_at: Option<String>,
    },
}

/// What happens to a key that is no longer in the query's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HardDeletes {
    Ignore,
    Invalidate,
    NewRecord,
}

/// The meta columns' names (`snapshot_meta_column_names`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MetaColumns {
    pub(crate) valid_from: String,
    pub(crate) valid_to: String,
    pub(crate) scd_id: String,
    pub(crate) updated_at: String,
    pub(crate) is_deleted: String,
}

/// A snapshot's configs, checked (dbt's `SnapshotConfig` validation).
#[derive(Debug, Clone)]
pub(crate) struct SnapshotConfig {
    pub(crate) strategy: Strategy,
    /// The `unique_key` expressions; `composite` when given as a list.
    pub(crate) unique_key: Vec<String>,
    pub(crate) composite: bool,
    pub(crate) hard_deletes: HardDeletes,
    pub(crate) columns: MetaColumns,
    /// `dbt_valid_to_current`: a SQL expression for current rows' `dbt_valid_to`.
    pub(crate) valid_to_current: Option<String>,
}

impl SnapshotConfig {
    /// The configs of snapshot `name`, or what is wrong with them (dbt's words
    /// where it has some); `database` is the target's.
    pub(crate) fn of(
        config: &Map<String, Value>,
        database: &str,
        name: &str,
    ) -> std::result::Result<SnapshotConfig, String> {
        let get = |k: &str| config.get(k).filter(|v| !v.is_null());
        let text = |k: &str| get(k).and_then(Value::as_str).map(str::to_string);
        let (unique_key, composite) = match get("unique_key") {
            Some(Value::String(s)) if !s.is_empty() => (vec![s.clone()], false),
            Some(Value::Array(items)) if !items.is_empty() => (
                items
                    .iter()
                    .filter_map(|i| i.as_str().map(str::to_string))
                    .collect(),
                true,
            ),
            _ => (Vec::new(), false),
        };
        let strategy = text("strategy");
        if strategy.is_none() || unique_key.is_empty() {
            return Err(format!(
                "snapshot '{name}': Snapshots must be configured with a 'strategy' and 'unique_key'; set both in its config"
            ));
        }
        let check_cols = get("check_cols");
        let strategy = match strategy.as_deref() {
            Some("timestamp") => {
                let Some(updated_at) = text("updated_at") else {
                    return Err(format!("snapshot '{name}': A snapshot configured with the timestamp strategy must specify an updated_at configuration"));
                };
                if check_cols.is_some() {
                    return Err(format!("snapshot '{name}': A 'timestamp' snapshot should not have 'check_cols'; remove check_cols or use strategy 'check'"));
                }
                Strategy::Timestamp { updated_at }
            }
            Some("check") => {
                let cols = match check_cols {
                    Some(Value::String(s)) if s == "all" => None,
                    Some(Value::Array(items)) if !items.is_empty() => Some(
                        items
                            .iter()
                            .filter_map(|i| i.as_str().map(str::to_string))
                            .collect(),
                    ),
                    _ => return Err(format!("snapshot '{name}': A snapshot configured with the check strategy must specify a check_cols configuration ('all' or a list of columns)")),
                };
                Strategy::Check {
                    cols,
                    updated_at: text("updated_at"),
                }
            }
            Some(other) => {
                return Err(format!(
                    "snapshot '{name}': strategy '{other}' is not supported (custom strategies need dbt's macro library); use 'timestamp' or 'check'"
                ))
            }
            None => unreachable!("checked above"),
        };
        let invalidate = get("invalidate_hard_deletes").and_then(Value::as_bool);
        let hard = text("hard_deletes");
        if invalidate.is_some() && hard.is_some() {
            return Err(format!("snapshot '{name}': You cannot set both the invalidate_hard_deletes and hard_deletes config properties on the same snapshot; keep hard_deletes"));
        }
        let hard_deletes = match (invalidate, hard.as_deref()) {
            (Some(true), _) | (_, Some("invalidate")) => HardDeletes::Invalidate,
            (_, Some("new_record")) => HardDeletes::NewRecord,
            _ => HardDeletes::Ignore,
        };
        let names = get("snapshot_meta_column_names").and_then(Value::as_object);
        let col = |k: &str| {
            names
                .and_then(|n| n.get(k))
                .and_then(Value::as_str)
                .unwrap_or(k)
                .to_string()
        };
        for k in ["target_database", "database"] {
            if let Some(db) = text(k) {
                if db != database {
                    return Err(format!(
                        "snapshot '{name}': {k} '{db}' is another database than the target's ('{database}'), which PostgreSQL cannot write to in the same session; remove {k}"
                    ));
                }
            }
        }
        Ok(SnapshotConfig {
            strategy,
            unique_key,
            composite,
            hard_deletes,
            columns: MetaColumns {
                valid_from: col("dbt_valid_from"),
                valid_to: col("dbt_valid_to"),
                scd_id: col("dbt_scd_id"),
                updated_at: col("dbt_updated_at"),
                is_deleted: col("dbt_is_deleted"),
            },
            valid_to_current: text("dbt_valid_to_current"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks() {
        let text = "{# a note #}\n{% snapshot a %}\n{{ config(strategy='check') }}\nselect 1\n{% endsnapshot %}\n\n{%- snapshot b -%}select 2{% endsnapshot %}\n";
        let b = scan(text, "s.sql").unwrap();
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].name, "a");
        assert_eq!(
            b[0].body.lines().nth(2),
            Some("{{ config(strategy='check') }}")
        );
        assert_eq!(b[1].name, "b");
        assert!(b[1].body.ends_with("select 2"));
        assert!(scan("{% snapshot a %} select 1", "s.sql").is_err());
        assert!(scan("{% endsnapshot %}", "s.sql").is_err());
    }
}
