//! YAML as the project's files hold it, parsed into JSON values with errors that
//! name the file and line.

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// Parses YAML into JSON values, with errors naming the file and line.
pub(crate) fn parse_yaml(text: &str, file: &str) -> Result<Value> {
    if text.trim().is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    let v: Value = serde_saphyr::from_str(text).map_err(|e| {
        let msg = e.to_string();
        let first = msg
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("invalid YAML")
            .trim();
        let first = first.strip_prefix("error:").unwrap_or(first).trim();
        let at = msg
            .lines()
            .find_map(|l| {
                let l = l.trim();
                let pos = l.find("line ")?;
                Some(format!(" ({})", &l[pos..]))
            })
            .unwrap_or_default();
        let at = if first.contains("line ") {
            String::new()
        } else {
            at
        };
        Error::in_file(
            file.to_string(),
            format!("invalid YAML: {first}{at}; fix the file"),
        )
    })?;
    Ok(if v.is_null() {
        Value::Object(Map::new())
    } else {
        v
    })
}
