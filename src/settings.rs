//! Settings: where each value comes from, which source wins, and validation.
//!
//! Sources, highest first: command-line flags; `RELUVIA_TRANSFORM_<NAME>` (the name
//! Meltano exports); `PG_ANALYTICS_{HOST,PORT,USER,PASSWORD,DBNAME}` (the names the
//! data team already uses); `--config FILE` JSON files (a later file wins, Singer
//! style); the defaults of `schemas/config.schema.json`.
//!
//! That schema is the single source of truth: it lists the settings, their types and
//! defaults, and the merged settings are validated against it with every problem
//! reported in one message, each naming the setting and where its value came from.
//! The password is never shown: [`Settings::describe`] masks it and validation errors
//! about it omit the value.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// The JSON Schema of the settings, embedded so an installed binary needs no files.
pub const CONFIG_SCHEMA: &str = include_str!("../schemas/config.schema.json");

/// Environment variable prefix Meltano uses for this plugin's settings.
pub const ENV_PREFIX: &str = "RELUVIA_TRANSFORM_";

/// Settings that the data team's existing `PG_ANALYTICS_*` variables can carry.
const PG_ANALYTICS: &[&str] = &["host", "port", "user", "password", "dbname"];

/// Settings whose values are secrets: masked in output, never logged.
pub const SECRETS: &[&str] = &["password"];

/// The effective settings of an invocation.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub host: String,
    pub port: u16,
    pub user: String,
    #[serde(default)]
    pub password: Option<String>,
    pub dbname: String,
    pub schema: String,
    pub threads: usize,
    pub statement_timeout: u64,
    pub connect_timeout: u64,
    pub project_dir: PathBuf,
    #[serde(default)]
    pub target_path: Option<PathBuf>,
    pub vars: Map<String, Value>,
    pub fail_fast: bool,
    pub check_freshness: bool,
    pub store_failures: bool,
    pub log_format: LogFormat,
    pub application_name: String,
    /// Where each value came from, for `debug` and error messages.
    #[serde(skip)]
    pub origins: BTreeMap<String, Origin>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Flag(String),
    Env(String),
    File(PathBuf),
    Default,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Flag(flag) => write!(f, "flag {flag}"),
            Origin::Env(var) => write!(f, "env {var}"),
            Origin::File(path) => write!(f, "config file {}", path.display()),
            Origin::Default => f.write_str("default"),
        }
    }
}

/// What the command line contributes to settings.
#[derive(Debug, Default, Clone)]
pub struct SettingsInput {
    /// Settings given as flags: setting name → (value, flag spelling).
    pub flags: Vec<(String, Value, String)>,
    /// `--config` arguments in order; the word `ENV` means "environment only".
    pub config_files: Vec<PathBuf>,
}

/// The parsed settings schema.
pub fn schema() -> Value {
    serde_json::from_str(CONFIG_SCHEMA).expect("the embedded config schema is valid JSON")
}

/// Names of every setting, in the schema's order.
pub fn names() -> Vec<String> {
    schema()["properties"]
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

/// Environment variables that can carry `name`, highest precedence first.
pub fn env_names(name: &str) -> Vec<String> {
    let mut v = vec![format!("{ENV_PREFIX}{}", name.to_uppercase())];
    if PG_ANALYTICS.contains(&name) {
        v.push(format!("PG_ANALYTICS_{}", name.to_uppercase()));
    }
    v
}

/// Loads, merges and validates settings from the process environment.
pub fn load(input: &SettingsInput) -> Result<Settings> {
    load_with_env(input, &|k| std::env::var(k).ok())
}

/// [`load`] with an explicit environment, for tests and embedding.
pub fn load_with_env(
    input: &SettingsInput,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Settings> {
    let schema = schema();
    let props = schema["properties"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let mut merged: Map<String, Value> = Map::new();
    let mut origins: BTreeMap<String, Origin> = BTreeMap::new();

    // Lowest first; each later layer overwrites.
    for (name, prop) in &props {
        if let Some(d) = prop.get("default") {
            merged.insert(name.clone(), d.clone());
            origins.insert(name.clone(), Origin::Default);
        }
    }
    let default_project_dir = match env("MELTANO_PROJECT_ROOT") {
        Some(root) if !root.is_empty() => Path::new(&root).join("transforms"),
        _ => PathBuf::from("transforms"),
    };
    merged.insert(
        "project_dir".into(),
        Value::String(default_project_dir.display().to_string()),
    );
    origins.insert("project_dir".into(), Origin::Default);

    for file in &input.config_files {
        if file.as_os_str() == "ENV" {
            continue; // Singer SDK convention: settings from the environment only.
        }
        let text = std::fs::read_to_string(file).map_err(|e| {
            Error::usage(format!(
                "cannot read config file {}: {e}; check the --config path",
                file.display()
            ))
        })?;
        let value: Value = serde_json::from_str(&text).map_err(|e| {
            Error::usage(format!(
                "config file {} line {} column {}: invalid JSON ({e}); fix the file",
                file.display(),
                e.line(),
                e.column()
            ))
        })?;
        let Value::Object(obj) = value else {
            return Err(Error::usage(format!(
                "config file {}: expected a JSON object of settings",
                file.display()
            )));
        };
        for (k, v) in obj {
            if v.is_null() {
                continue; // Meltano writes unset settings as null
            }
            origins.insert(k.clone(), Origin::File(file.clone()));
            merged.insert(k, v);
        }
    }

    for (name, prop) in &props {
        // Lowest-precedence variable first so the higher one overwrites it.
        for var in env_names(name).iter().rev() {
            if let Some(raw) = env(var) {
                if raw.is_empty() {
                    continue; // an empty variable means "not set", as Meltano exports it
                }
                merged.insert(name.clone(), coerce(&raw, prop));
                origins.insert(name.clone(), Origin::Env(var.clone()));
            }
        }
    }

    for (name, value, flag) in &input.flags {
        merged.insert(name.clone(), value.clone());
        origins.insert(name.clone(), Origin::Flag(flag.clone()));
    }

    validate(&schema, &merged, &origins)?;
    let mut settings: Settings = serde_json::from_value(Value::Object(merged))
        .map_err(|e| Error::usage(format!("invalid settings: {e}")))?;
    settings.origins = origins;
    Ok(settings)
}

/// Turns an environment string into the JSON type the schema asks for. A value that
/// does not parse is kept as a string, so validation reports it by name.
fn coerce(raw: &str, prop: &Value) -> Value {
    let ty = prop.get("type").and_then(Value::as_str).unwrap_or("string");
    match ty {
        "integer" => raw
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::String(raw.into())),
        "boolean" => match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Value::Bool(true),
            "false" | "0" | "no" | "off" => Value::Bool(false),
            _ => Value::String(raw.into()),
        },
        "object" | "array" => {
            serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.into()))
        }
        _ => Value::String(raw.into()),
    }
}

fn validate(
    schema: &Value,
    merged: &Map<String, Value>,
    origins: &BTreeMap<String, Origin>,
) -> Result<()> {
    let validator = jsonschema::validator_for(schema).expect("the embedded config schema compiles");
    let instance = Value::Object(merged.clone());
    let mut problems: Vec<String> = Vec::new();
    for err in validator.iter_errors(&instance) {
        let path = err.instance_path().to_string();
        let name = path
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or("")
            .to_string();
        if name.is_empty() {
            // Object-level errors: missing or unknown settings.
            let msg = err.to_string();
            if let Some(missing) = quoted(&msg).filter(|_| msg.contains("required")) {
                let vars = env_names(&missing).join(" or ");
                problems.push(format!(
                    "{missing}: missing (set {vars}, or \"{missing}\" in a --config file)"
                ));
            } else if msg.contains("Additional properties") || msg.contains("additional") {
                for key in merged.keys() {
                    if schema["properties"].get(key).is_none() {
                        let from = origins
                            .get(key)
                            .map(|o| format!(" (from {o})"))
                            .unwrap_or_default();
                        problems.push(format!(
                            "{key}: unknown setting{from}; see `reluvia-transform --about`"
                        ));
                    }
                }
            } else {
                problems.push(msg);
            }
            continue;
        }
        let from = origins
            .get(&name)
            .map(|o| format!(" (from {o})"))
            .unwrap_or_default();
        let detail = if SECRETS.contains(&name.as_str()) {
            err.masked().to_string()
        } else {
            err.to_string()
        };
        problems.push(format!("{name}: {detail}{from}"));
    }
    problems.dedup();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::usage(format!(
            "invalid settings: {}",
            problems.join("; ")
        )))
    }
}

/// The first `"quoted"` word of a message.
fn quoted(msg: &str) -> Option<String> {
    let start = msg.find('"')? + 1;
    let end = msg[start..].find('"')? + start;
    Some(msg[start..end].to_string())
}

impl Settings {
    /// Every setting with its value (secrets masked) and origin, for `debug`.
    pub fn describe(&self) -> Vec<(String, String, String)> {
        let value = serde_json::json!({
            "host": self.host, "port": self.port, "user": self.user,
            "password": self.password.as_ref().map(|_| "********"),
            "dbname": self.dbname, "schema": self.schema, "threads": self.threads,
            "statement_timeout": self.statement_timeout, "connect_timeout": self.connect_timeout,
            "project_dir": self.project_dir, "target_path": self.target_path, "vars": self.vars,
            "fail_fast": self.fail_fast,
            "check_freshness": self.check_freshness, "store_failures": self.store_failures,
            "log_format": match self.log_format { LogFormat::Text => "text", LogFormat::Json => "json" },
            "application_name": self.application_name,
        });
        names()
            .into_iter()
            .map(|n| {
                let v = match &value[&n] {
                    Value::Null => "(not set)".to_string(),
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let o = self
                    .origins
                    .get(&n)
                    .map(|o| o.to_string())
                    .unwrap_or_else(|| "not set".into());
                (n, v, o)
            })
            .collect()
    }

    /// The target path: the setting, else the project's `target-path`, relative to
    /// the project directory unless absolute.
    pub fn resolve_target_path(&self, project_target: &str) -> PathBuf {
        let p = self
            .target_path
            .clone()
            .unwrap_or_else(|| PathBuf::from(project_target));
        if p.is_absolute() {
            p
        } else {
            self.project_dir.join(p)
        }
    }
}
