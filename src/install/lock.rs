//! `package-lock.yml` and the YAML `deps` writes, as dbt 1.10 writes them: the
//! resolved packages (each entry's keys sorted, its `name`), the `sha1_hash` of
//! the declarations that produced them, and `packages.yml` rewritten by
//! `deps --add-package` — block style, lists indented under their key, scalars
//! quoted only where YAML needs it (PyYAML's choices).

use std::path::Path;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::project::{self, Declared, DeclaredEntry};

/// The lock file's name, next to dbt_project.yml.
pub(crate) const LOCK_FILE: &str = "package-lock.yml";

/// A lock file as read: its hash and its entries (each with its `name`).
pub(crate) struct Lock {
    pub(crate) sha1_hash: Option<String>,
    pub(crate) entries: Vec<(Declared, Value)>,
}

/// dbt's `sha1_hash` of the declared entries: each one's dictionary as
/// sorted-key JSON (Python's separators), the lines sorted.
pub(crate) fn declared_hash(entries: &[DeclaredEntry]) -> String {
    let mut lines: Vec<String> = entries
        .iter()
        .map(|e| crate::render::json_dumps(&e.hash_form, true))
        .collect();
    lines.sort();
    let digest = ring::digest::digest(
        &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        lines.join("\n").as_bytes(),
    );
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes the lock file: `entries` are the resolved packages' dictionaries.
pub(crate) fn write(dir: &Path, entries: Vec<Value>, hash: &str) -> Result<std::path::PathBuf> {
    let mut doc = serde_json::Map::new();
    doc.insert("packages".into(), Value::Array(entries));
    doc.insert("sha1_hash".into(), Value::String(hash.to_string()));
    let path = dir.join(LOCK_FILE);
    std::fs::write(&path, to_yaml(&Value::Object(doc)))
        .map_err(|e| Error::runtime(format!("cannot write {}: {e}", path.display())))?;
    Ok(path)
}

/// Reads the lock file; `None` when there is none.
pub(crate) fn read(dir: &Path, vars: &project::InvocationVars) -> Result<Option<Lock>> {
    let Ok(text) = std::fs::read_to_string(dir.join(LOCK_FILE)) else {
        return Ok(None);
    };
    let doc = project::parse_yaml(&text, LOCK_FILE)?;
    let sha1_hash = doc
        .get("sha1_hash")
        .and_then(Value::as_str)
        .map(str::to_string);
    let mut entries = Vec::new();
    for item in doc
        .get("packages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        entries.push((
            project::declared_from_json(item, LOCK_FILE, vars)?,
            item.clone(),
        ));
    }
    Ok(Some(Lock { sha1_hash, entries }))
}

/// A JSON document as PyYAML's block style with sorted keys and lists indented
/// under their key (dbt's dumper).
pub(crate) fn to_yaml(v: &Value) -> String {
    let mut out = String::new();
    emit(v, 0, &mut out);
    out
}

fn emit(v: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 || !out.ends_with("- ") {
                    out.push_str(&pad);
                }
                out.push_str(&scalar(k));
                out.push(':');
                emit_value(&m[k], indent, out);
            }
        }
        Value::Array(a) => {
            for item in a {
                out.push_str(&pad);
                out.push_str("- ");
                match item {
                    Value::Object(m) if !m.is_empty() => emit(item, indent + 2, out),
                    Value::Array(x) if !x.is_empty() => {
                        out.push('\n');
                        emit(item, indent + 2, out)
                    }
                    _ => {
                        out.push_str(&inline(item));
                        out.push('\n');
                    }
                }
            }
        }
        other => {
            out.push_str(&pad);
            out.push_str(&inline(other));
            out.push('\n');
        }
    }
}

/// After `key:`: a scalar on the same line, a collection on the next ones.
fn emit_value(v: &Value, indent: usize, out: &mut String) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            emit(v, indent + 2, out);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            emit(v, indent + 2, out);
        }
        other => {
            out.push(' ');
            out.push_str(&inline(other));
            out.push('\n');
        }
    }
}

fn inline(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => scalar(s),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

/// A string as PyYAML writes it: plain when that reads back as the same
/// string, else single-quoted.
fn scalar(s: &str) -> String {
    let lower = s.to_ascii_lowercase();
    let reserved = matches!(
        lower.as_str(),
        "" | "~" | "null" | "true" | "false" | "yes" | "no" | "on" | "off"
    );
    let numeric = s.parse::<f64>().is_ok()
        || s.chars()
            .all(|c| c.is_ascii_digit() || c == '_' || c == ':' || c == '.')
            && s.chars().any(|c| c.is_ascii_digit())
            && s.matches('.').count() <= 1;
    let mut chars = s.chars();
    let first_bad = match (chars.next(), chars.next()) {
        (Some('-' | '?' | ':'), next) => next.is_none_or(|c| c == ' '),
        (
            Some(
                ',' | '[' | ']' | '{' | '}' | '#' | '&' | '*' | '!' | '|' | '>' | '\'' | '"' | '%'
                | '@' | '`' | ' ',
            ),
            _,
        ) => true,
        _ => false,
    };
    let inner_bad = s.contains(": ")
        || s.contains(" #")
        || s.ends_with(' ')
        || s.ends_with(':')
        || s.chars().any(|c| c.is_control());
    if reserved || numeric || first_bad || inner_bad {
        format!("'{}'", s.replace('\'', "''"))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_file_as_dbt_writes_it() {
        let doc = serde_json::json!({
            "packages": [
                {"package": "a/b", "version": "1.2.0", "name": "b"},
                {"local": "../x y", "name": "n"},
                {"git": "https://x/y.git", "revision": "abc", "name": "q", "subdirectory": "s"},
                {"package": "a/c", "version": [">=1.0.0", "<2.0.0"]}
            ],
            "sha1_hash": "x"
        });
        assert_eq!(
            to_yaml(&doc),
            "packages:\n  - name: b\n    package: a/b\n    version: 1.2.0\n  - local: ../x y\n    name: n\n  - git: https://x/y.git\n    name: q\n    revision: abc\n    subdirectory: s\n  - package: a/c\n    version:\n      - '>=1.0.0'\n      - <2.0.0\nsha1_hash: x\n"
        );
    }

    #[test]
    fn hash_is_pythons_json() {
        let v = serde_json::json!({"package": "a/b", "version": ["<2.0.0", 1.5], "install_prerelease": false, "unrendered": {"package": "é"}});
        assert_eq!(
            crate::render::json_dumps(&v, true),
            r#"{"install_prerelease": false, "package": "a/b", "unrendered": {"package": "\u00e9"}, "version": ["<2.0.0", 1.5]}"#
        );
    }
}
