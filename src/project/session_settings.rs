//! The `session_settings` config of models (ours; dbt has none): PostgreSQL
//! settings for the statements that build one model, such as
//! `{work_mem: '64MB', jit: false}`. It owns the allow-list of settings a model
//! may change, the check of each name and value when the project loads (with the
//! file and line), and the typed list the adapter applies with `set_config(…,
//! true)` (`SET LOCAL`) inside the model's transaction.
//!
//! Only planner and memory settings that change how fast a query runs, never what
//! it returns or who may run it, are allowed: not `search_path`, `TimeZone`, roles,
//! timeouts (the swap's own lock rules depend on them), nor
//! `default_statistics_target` (the swap's `ANALYZE` sets its own).

use serde_json::{Map, Value};

use crate::error::Result;

use super::yaml::{At, Yaml, YamlValue};

/// The shape of a setting's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A size: a whole number of the setting's unit, or with a unit (`64MB`).
    Memory,
    Bool,
    Int,
    Real,
    /// A JIT threshold: a planner cost, or -1 for never.
    Cost,
    /// `synchronous_commit`'s values.
    Commit,
}

/// The settings a model may change, by name.
const ALLOWED: &[(&str, Kind)] = &[
    ("work_mem", Kind::Memory),
    ("maintenance_work_mem", Kind::Memory),
    ("effective_cache_size", Kind::Memory),
    ("min_parallel_table_scan_size", Kind::Memory),
    ("min_parallel_index_scan_size", Kind::Memory),
    ("hash_mem_multiplier", Kind::Real),
    ("jit", Kind::Bool),
    ("jit_above_cost", Kind::Cost),
    ("jit_inline_above_cost", Kind::Cost),
    ("jit_optimize_above_cost", Kind::Cost),
    ("max_parallel_workers_per_gather", Kind::Int),
    ("max_parallel_maintenance_workers", Kind::Int),
    ("parallel_leader_participation", Kind::Bool),
    ("parallel_setup_cost", Kind::Real),
    ("parallel_tuple_cost", Kind::Real),
    ("random_page_cost", Kind::Real),
    ("seq_page_cost", Kind::Real),
    ("cpu_tuple_cost", Kind::Real),
    ("cpu_index_tuple_cost", Kind::Real),
    ("cpu_operator_cost", Kind::Real),
    ("effective_io_concurrency", Kind::Int),
    ("join_collapse_limit", Kind::Int),
    ("from_collapse_limit", Kind::Int),
    ("enable_async_append", Kind::Bool),
    ("enable_bitmapscan", Kind::Bool),
    ("enable_gathermerge", Kind::Bool),
    ("enable_hashagg", Kind::Bool),
    ("enable_hashjoin", Kind::Bool),
    ("enable_incremental_sort", Kind::Bool),
    ("enable_indexonlyscan", Kind::Bool),
    ("enable_indexscan", Kind::Bool),
    ("enable_material", Kind::Bool),
    ("enable_memoize", Kind::Bool),
    ("enable_mergejoin", Kind::Bool),
    ("enable_nestloop", Kind::Bool),
    ("enable_parallel_append", Kind::Bool),
    ("enable_parallel_hash", Kind::Bool),
    ("enable_partition_pruning", Kind::Bool),
    ("enable_partitionwise_aggregate", Kind::Bool),
    ("enable_partitionwise_join", Kind::Bool),
    ("enable_seqscan", Kind::Bool),
    ("enable_sort", Kind::Bool),
    ("enable_tidscan", Kind::Bool),
    ("synchronous_commit", Kind::Commit),
];

fn kind_of(name: &str) -> Option<Kind> {
    ALLOWED.iter().find(|(n, _)| *n == name).map(|(_, k)| *k)
}

/// The value as PostgreSQL reads it, or `None` when it does not have the
/// setting's shape.
fn value_text(kind: Kind, v: &YamlValue) -> Option<String> {
    match (kind, v) {
        (Kind::Bool, YamlValue::Bool(b)) => Some(if *b { "on" } else { "off" }.to_string()),
        (Kind::Bool, YamlValue::Str(s)) => matches!(
            s.to_ascii_lowercase().as_str(),
            "on" | "off" | "true" | "false"
        )
        .then(|| s.to_ascii_lowercase()),
        (Kind::Commit, YamlValue::Bool(b)) => Some(if *b { "on" } else { "off" }.to_string()),
        (Kind::Commit, YamlValue::Str(s)) => matches!(
            s.as_str(),
            "on" | "off" | "local" | "remote_write" | "remote_apply"
        )
        .then(|| s.clone()),
        (Kind::Memory | Kind::Int, YamlValue::Int(n)) if *n >= 0 => Some(n.to_string()),
        (Kind::Int, YamlValue::Str(s)) => {
            (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.clone())
        }
        (Kind::Memory, YamlValue::Str(s)) => {
            let digits = s.bytes().take_while(u8::is_ascii_digit).count();
            let unit = s[digits..].trim_start();
            (digits > 0 && matches!(unit, "" | "B" | "kB" | "MB" | "GB" | "TB")).then(|| s.clone())
        }
        (Kind::Real, v) => number_from(v, 0.0),
        (Kind::Cost, v) => number_from(v, -1.0),
        _ => None,
    }
}

/// A finite number of at least `min`, written as a number or a string.
fn number_from(v: &YamlValue, min: f64) -> Option<String> {
    match v {
        YamlValue::Int(n) if *n as f64 >= min => Some(n.to_string()),
        YamlValue::Float(f) if *f >= min && f.is_finite() => Some(f.to_string()),
        YamlValue::Str(s) => s
            .parse::<f64>()
            .ok()
            .filter(|f| *f >= min && f.is_finite())
            .map(|_| s.clone()),
        _ => None,
    }
}

fn example(kind: Kind) -> &'static str {
    match kind {
        Kind::Memory => "a size such as '64MB' or a whole number of kB",
        Kind::Bool => "true or false",
        Kind::Int => "a whole number",
        Kind::Real => "a number such as 1.1",
        Kind::Cost => "a planner cost such as 500000, or -1 for never",
        Kind::Commit => "'on', 'off', 'local', 'remote_write' or 'remote_apply'",
    }
}

/// `session_settings`: a mapping of allowed setting names to values of their shape.
pub(super) fn check_session_settings(v: &Yaml, path: &str, at: At<'_>) -> Result<()> {
    let entries = match &v.value {
        YamlValue::Null => return Ok(()),
        YamlValue::Map(entries) => entries,
        _ => {
            return Err(at.error(format!(
                "{path}: expected a mapping of PostgreSQL settings, e.g. {{work_mem: '64MB'}}, got {}; fix the value",
                v.kind()
            )))
        }
    };
    for (name, line, value) in entries {
        let here = At {
            line: if *line > 0 { *line } else { at.line },
            ..at
        };
        let Some(kind) = kind_of(name) else {
            return Err(here.error(format!(
                "{path}.{name}: not a setting a model may change; use one of {} (see README, \"Session settings\")",
                ALLOWED
                    .iter()
                    .map(|(n, _)| *n)
                    .filter(|n| !n.starts_with("enable_") && !n.starts_with("cpu_"))
                    .collect::<Vec<_>>()
                    .join(", ")
                    + ", enable_*, cpu_*"
            )));
        };
        if value_text(kind, &value.value).is_none() {
            return Err(here.error(format!(
                "{path}.{name}: expected {}, got {}; fix the value",
                example(kind),
                match &value.value {
                    YamlValue::Str(s) => format!("'{s}'"),
                    YamlValue::Int(n) => n.to_string(),
                    YamlValue::Float(f) => f.to_string(),
                    _ => value.kind().to_string(),
                }
            )));
        }
    }
    Ok(())
}

/// The settings of a merged config (checked when it loaded), as `(name, value)`
/// in the order written.
pub(crate) fn session_settings(config: &Map<String, Value>) -> Vec<(String, String)> {
    let Some(Value::Object(m)) = config.get("session_settings") else {
        return Vec::new();
    };
    m.iter()
        .filter_map(|(name, v)| {
            let kind = kind_of(name)?;
            let value = value_text(kind, &super::yaml::from_json(v).value)?;
            Some((name.clone(), value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_take_the_shape_of_their_setting() {
        let text = |k, v: YamlValue| value_text(k, &v);
        assert_eq!(
            text(Kind::Memory, YamlValue::Str("64MB".into())),
            Some("64MB".into())
        );
        assert_eq!(
            text(Kind::Memory, YamlValue::Str("64 MB".into())),
            Some("64 MB".into())
        );
        assert_eq!(text(Kind::Memory, YamlValue::Str("64mb".into())), None);
        assert_eq!(text(Kind::Memory, YamlValue::Str("lots".into())), None);
        assert_eq!(
            text(Kind::Memory, YamlValue::Int(65536)),
            Some("65536".into())
        );
        assert_eq!(text(Kind::Bool, YamlValue::Bool(false)), Some("off".into()));
        assert_eq!(
            text(Kind::Bool, YamlValue::Str("On".into())),
            Some("on".into())
        );
        assert_eq!(text(Kind::Bool, YamlValue::Int(1)), None);
        assert_eq!(text(Kind::Real, YamlValue::Float(1.5)), Some("1.5".into()));
        assert_eq!(text(Kind::Real, YamlValue::Str("-1".into())), None);
        assert_eq!(text(Kind::Real, YamlValue::Int(-1)), None);
        assert_eq!(text(Kind::Cost, YamlValue::Int(-1)), Some("-1".into()));
        assert_eq!(text(Kind::Cost, YamlValue::Int(-2)), None);
        assert_eq!(
            text(Kind::Cost, YamlValue::Float(5e5)),
            Some("500000".into())
        );
        assert_eq!(text(Kind::Int, YamlValue::Str("4; reset all".into())), None);
        assert_eq!(
            text(Kind::Commit, YamlValue::Str("local".into())),
            Some("local".into())
        );
        assert_eq!(kind_of("search_path"), None);
        assert_eq!(kind_of("default_statistics_target"), None);
    }
}
