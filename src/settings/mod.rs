//! Settings: where each value comes from, which source wins, and validation.
//!
//! Sources, highest first (the README's "Connecting" table):
//!
//! 1. command-line flags;
//! 2. `RELUVIA_TRANSFORM_<NAME>` (the names Meltano exports);
//! 3. `PG_ANALYTICS_{HOST,PORT,USER,PASSWORD,DBNAME}` (the data team's names);
//! 4. the parts of a connection URL (the `url` setting, itself from any source);
//! 5. `--config FILE` JSON files (a later file wins, Singer style);
//! 6. `DBT_POSTGRES_<NAME>`, `DBT_PROFILES_DIR`, `DBT_PROJECT_DIR` and
//!    `DBT_TARGET_PATH` (Meltano's dbt-postgres utility);
//! 7. a dbt `profiles.yml` ([`profiles`]);
//! 8. libpq's `PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`, `PGDATABASE`, `PGSSLMODE`
//!    (and `PGSSLROOTCERT`, `PGCONNECT_TIMEOUT`, `PGAPPNAME`);
//! 9. the defaults of `schemas/config.schema.json`; for `project_dir`, what
//!    [`project_dir`] finds (the current directory, the Meltano project, the
//!    built-in project); under Meltano, `target_path` defaults to `.meltano/`.
//!
//! The URL and the profile depend on settings themselves (`url`, `profiles_dir`,
//! `profile`, `target`, `project_dir`), so they are read once the other sources are
//! merged, then slotted in at their rank.
//!
//! That schema is the single source of truth: it lists the settings, their types and
//! defaults, and the merged settings are validated against it with every problem
//! reported in one message, each naming the setting and where its value came from.
//! Secrets are never shown: [`Settings::describe`] masks the password and the
//! password inside a URL, and validation errors about them omit the value.
//!
//! Nothing falls back silently: an environment value that is not UTF-8 is an
//! error naming the variable ([`process_env`]), a setting given under its name and
//! an alias (`database` for `dbname`, the schema's `x-aliases`) with different
//! values is an error, and a `RELUVIA_TRANSFORM_*` variable that names no setting
//! is reported in [`Settings::warnings`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::{Error, Result};

mod profiles;
mod project_dir;
mod url;

/// The JSON Schema of the settings, embedded so an installed binary needs no files.
pub(crate) const CONFIG_SCHEMA: &str = include_str!("../../schemas/config.schema.json");

/// Environment variable prefix Meltano uses for this plugin's settings.
pub(crate) const ENV_PREFIX: &str = "RELUVIA_TRANSFORM_";

/// Settings that the data team's existing `PG_ANALYTICS_*` variables can carry.
const PG_ANALYTICS: &[&str] = &["host", "port", "user", "password", "dbname"];

/// Settings that Meltano's dbt-postgres utility exports as `DBT_POSTGRES_<NAME>`.
const DBT_POSTGRES: &[&str] = &[
    "host",
    "port",
    "user",
    "password",
    "dbname",
    "schema",
    "threads",
    "keepalives_idle",
    "search_path",
    "sslmode",
    "sslrootcert",
    "project_dir",
    "profiles_dir",
    "target",
    "target_path",
];

/// libpq's environment variables and the settings they stand for.
const LIBPQ: &[(&str, &str)] = &[
    ("PGHOST", "host"),
    ("PGPORT", "port"),
    ("PGUSER", "user"),
    ("PGPASSWORD", "password"),
    ("PGDATABASE", "dbname"),
    ("PGSSLMODE", "sslmode"),
    ("PGSSLROOTCERT", "sslrootcert"),
    ("PGCONNECT_TIMEOUT", "connect_timeout"),
    ("PGAPPNAME", "application_name"),
];

/// Settings whose values are secrets: masked in output, never logged, and their
/// variables never rendered into models ([`secret_variables`]).
pub(crate) const SECRETS: &[&str] = &["password", "url"];

/// A lookup of one environment variable: `Ok(None)` when it is not set, an error
/// naming it when its value cannot be read (not UTF-8).
pub(crate) type Env<'a> = dyn Fn(&str) -> Result<Option<String>> + 'a;

/// The effective settings of an invocation.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Settings {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) user: String,
    #[serde(default)]
    pub(crate) password: Option<String>,
    pub(crate) dbname: String,
    pub(crate) schema: String,
    pub(crate) threads: usize,
    pub(crate) statement_timeout: u64,
    pub(crate) connect_timeout: u64,
    pub(crate) connect_retry_timeout: u64,
    pub(crate) sslmode: SslMode,
    #[serde(default)]
    pub(crate) sslrootcert: Option<PathBuf>,
    pub(crate) keepalives_idle: u64,
    pub(crate) keepalives_interval: u64,
    pub(crate) keepalives_count: u32,
    #[serde(default)]
    pub(crate) search_path: Option<String>,
    #[serde(default)]
    pub(crate) target: Option<String>,
    pub(crate) lock_timeout: f64,
    pub(crate) swap_retries: u32,
    pub(crate) wait_for_lock: bool,
    pub(crate) project_dir: PathBuf,
    #[serde(default)]
    pub(crate) target_path: Option<PathBuf>,
    pub(crate) vars: Map<String, Value>,
    pub(crate) fail_fast: bool,
    pub(crate) check_freshness: bool,
    pub(crate) source_check_warn_only: bool,
    pub(crate) store_failures: bool,
    pub(crate) report_after_build: bool,
    pub(crate) log_format: LogFormat,
    pub(crate) application_name: String,
    /// Where each value came from, for `debug` and error messages.
    #[serde(skip)]
    pub(crate) origins: BTreeMap<String, Origin>,
    /// The merged values as validated, for `debug`.
    #[serde(skip)]
    pub(crate) values: Map<String, Value>,
    /// What the user should know about the settings (a variable that is not a
    /// setting, …), said on the console before the command runs.
    #[serde(skip)]
    pub(crate) warnings: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LogFormat {
    #[default]
    Text,
    Json,
}

/// libpq's `sslmode` values that reluvia-transform implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum SslMode {
    Disable,
    #[default]
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    Flag(String),
    Env(String),
    File(PathBuf),
    /// A part of the connection URL, which itself came from the inner origin.
    Url(Box<Origin>),
    Profile {
        path: PathBuf,
        profile: String,
        target: String,
    },
    Default,
    /// `project_dir` found where no setting named it (why, as the console says it).
    Found(String),
    /// `project_dir` is where the project built into the binary is written.
    BuiltIn,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Flag(flag) => write!(f, "flag {flag}"),
            Origin::Env(var) => write!(f, "env {var}"),
            Origin::File(path) => write!(f, "config file {}", path.display()),
            Origin::Url(from) => write!(f, "url ({from})"),
            Origin::Profile {
                path,
                profile,
                target,
            } => write!(f, "{} (profile {profile}, target {target})", path.display()),
            Origin::Default => f.write_str("default"),
            Origin::Found(why) => f.write_str(why),
            Origin::BuiltIn => f.write_str(
                "the project built into the binary (no dbt_project.yml in the current directory, or in transforms/ or transform/ of the Meltano project)",
            ),
        }
    }
}

/// What the command line contributes to settings.
#[derive(Debug, Default, Clone)]
pub(crate) struct SettingsInput {
    /// Settings given as flags: setting name → (value, flag spelling).
    pub(crate) flags: Vec<(String, Value, String)>,
    /// `--config` arguments in order; the word `ENV` means "environment only".
    pub(crate) config_files: Vec<PathBuf>,
    /// The command connects to no database (`deps`, `clean`): the connection
    /// settings may be missing, and a profile that cannot be read is ignored.
    pub(crate) no_connection: bool,
}

/// The parsed settings schema.
pub(crate) fn schema() -> Value {
    serde_json::from_str(CONFIG_SCHEMA).expect("the embedded config schema is valid JSON")
}

/// Names of every setting, in the schema's order.
pub(crate) fn names() -> Vec<String> {
    schema()["properties"]
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

/// Environment variables that can carry `name`, highest precedence first.
pub(crate) fn env_names(name: &str) -> Vec<String> {
    let upper = name.to_uppercase();
    let mut v = vec![format!("{ENV_PREFIX}{upper}")];
    if PG_ANALYTICS.contains(&name) {
        v.push(format!("PG_ANALYTICS_{upper}"));
    }
    v.extend(dbt_env_names(name));
    v.extend(
        LIBPQ
            .iter()
            .filter(|(_, n)| *n == name)
            .map(|(var, _)| var.to_string()),
    );
    v
}

/// The dbt-postgres utility's variables for `name`, highest precedence first.
fn dbt_env_names(name: &str) -> Vec<String> {
    let mut v = Vec::new();
    if DBT_POSTGRES.contains(&name) {
        v.push(format!("DBT_POSTGRES_{}", name.to_uppercase()));
    }
    // dbt's own names, as the utility exports them.
    match name {
        "profiles_dir" => v.push("DBT_PROFILES_DIR".to_string()),
        "project_dir" => v.push("DBT_PROJECT_DIR".to_string()),
        "target_path" => v.push("DBT_TARGET_PATH".to_string()),
        _ => {}
    }
    v
}

/// Other names of a setting (`database` for `dbname`, as dbt-postgres calls it),
/// from the schema's `x-aliases`: accepted in `--config` files and as
/// `RELUVIA_TRANSFORM_<ALIAS>`.
pub(crate) fn aliases(name: &str) -> Vec<String> {
    schema()["properties"][name]["x-aliases"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Every environment variable that can supply a secret setting (the password, the
/// URL), with that setting: what templates must never render.
pub(crate) fn secret_variables() -> Vec<(String, &'static str)> {
    SECRETS
        .iter()
        .flat_map(|name| env_names(name).into_iter().map(move |var| (var, *name)))
        .collect()
}

/// A variable of the process environment. A value that is not UTF-8 is an error
/// naming the variable: it is neither used nor silently skipped (which would let a
/// lower-ranked source or a default take its place).
pub(crate) fn process_env(name: &str) -> Result<Option<String>> {
    match std::env::var(name) {
        Ok(v) => Ok(Some(v)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(Error::usage(format!(
            "environment variable {name} is not valid UTF-8; fix its value or unset it"
        ))),
    }
}

/// One source of settings: `(setting, value, origin)` in the order read.
type Layer = Vec<(String, Value, Origin)>;

/// Loads, merges and validates settings from the process environment.
pub(crate) fn load(input: &SettingsInput) -> Result<Settings> {
    let names: Vec<String> = std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .collect();
    load_with_env(input, &process_env, &names)
}

/// [`load`] with an explicit environment (`names`: the variables set, to find the
/// `RELUVIA_TRANSFORM_*` ones that are not settings), for tests and embedding.
pub(crate) fn load_with_env(
    input: &SettingsInput,
    env: &Env<'_>,
    names: &[String],
) -> Result<Settings> {
    let schema = schema();
    let props = schema["properties"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let set = |v: Option<String>| v.filter(|s| !s.is_empty());

    let mut defaults: Layer = Vec::new();
    for (name, prop) in &props {
        if let Some(d) = prop.get("default") {
            defaults.push((name.clone(), d.clone(), Origin::Default));
        }
    }
    // Under Meltano, what the plugin writes goes under `.meltano/`.
    let meltano = match set(env("MELTANO_PROJECT_ROOT")?) {
        Some(root) => {
            let folder = project_dir::meltano_folder(
                Path::new(&root),
                set(env("MELTANO_SYS_DIR_ROOT")?).as_deref(),
            );
            Some((PathBuf::from(root), folder))
        }
        None => None,
    };
    if let Some((_, folder)) = &meltano {
        defaults.push((
            "target_path".into(),
            Value::String(folder.join("target").display().to_string()),
            Origin::Default,
        ));
    }

    let mut libpq: Layer = Vec::new();
    for (var, name) in LIBPQ {
        if let Some(raw) = set(env(var)?) {
            libpq.push((
                name.to_string(),
                coerce(&raw, props.get(*name).unwrap_or(&Value::Null)),
                Origin::Env(var.to_string()),
            ));
        }
    }

    // An empty variable means "not set", as Meltano exports unset settings.
    let env_layer = |names: &dyn Fn(&str) -> Vec<String>| -> Result<Layer> {
        let mut layer = Layer::new();
        for (name, prop) in &props {
            // Lowest-precedence variable first so the higher one overwrites it.
            for var in names(name).iter().rev() {
                if let Some(raw) = set(env(var)?) {
                    layer.push((name.clone(), coerce(&raw, prop), Origin::Env(var.clone())));
                }
            }
        }
        Ok(layer)
    };
    let dbt_postgres = env_layer(&dbt_env_names)?;
    let pg_analytics = env_layer(&|name| {
        if PG_ANALYTICS.contains(&name) {
            vec![format!("PG_ANALYTICS_{}", name.to_uppercase())]
        } else {
            Vec::new()
        }
    })?;
    // A setting's own variable ranks above its aliases' (and must agree with them).
    let reluvia = env_layer(&|name| {
        std::iter::once(name.to_string())
            .chain(aliases(name))
            .map(|n| format!("{ENV_PREFIX}{}", n.to_uppercase()))
            .collect()
    })?;
    let written: Vec<String> = reluvia
        .iter()
        .map(|(_, _, origin)| match origin {
            Origin::Env(var) => var.clone(),
            other => other.to_string(),
        })
        .collect();
    check_aliases(&reluvia, &written)?;
    let warnings = unknown_variables(&props, names);
    let files = config_files(&input.config_files)?;
    let flags: Layer = input
        .flags
        .iter()
        .map(|(n, v, flag)| (n.clone(), v.clone(), Origin::Flag(flag.clone())))
        .collect();

    // First pass without the URL and the profile, which depend on settings.
    let first = merge(&[
        &defaults,
        &libpq,
        &dbt_postgres,
        &files,
        &pg_analytics,
        &reluvia,
        &flags,
    ]);
    let given = |name: &str| -> Option<(String, Origin)> {
        let (v, o) = first.get(name)?;
        Some((v.as_str()?.to_string(), o.clone()))
    };

    let mut url_layer = Layer::new();
    if let Some((url, from)) = given("url") {
        let parts = url::parse(&url)
            .map_err(|e| Error::usage(format!("invalid settings: url: {e} (from {from})")))?;
        for (name, value) in parts {
            let value = match value {
                Value::String(s) => coerce(&s, props.get(&name).unwrap_or(&Value::Null)),
                other => other,
            };
            url_layer.push((name, value, Origin::Url(Box::new(from.clone()))));
        }
    }

    // The project: the setting, else where `project_dir::locate` finds one.
    let cwd = std::env::current_dir().ok();
    let mut found = Layer::new();
    let project_profile = match given("project_dir") {
        Some((dir, _)) => profiles::project_profile(Path::new(&dir)),
        None => {
            let (dir, origin) = project_dir::locate(
                cwd.as_deref(),
                meltano.as_ref().map(|(r, f)| (r.as_path(), f.as_path())),
            );
            let profile = match origin {
                Origin::BuiltIn => crate::project::builtin::profile(),
                _ => profiles::project_profile(&dir),
            };
            found.push((
                "project_dir".into(),
                Value::String(dir.display().to_string()),
                origin,
            ));
            profile
        }
    };

    let request = profiles::Request {
        dir: given("profiles_dir").map(|(d, o)| (PathBuf::from(d), o.to_string())),
        profile: given("profile").map(|(p, o)| (p, o.to_string())),
        target: given("target").map(|(t, o)| (t, o.to_string())),
        target_is_flag: matches!(given("target"), Some((_, Origin::Flag(_)))),
        project_profile,
        home: set(env("HOME")?).map(PathBuf::from),
        cwd,
    };
    let mut profile_layer = Layer::new();
    let profile = match profiles::load(&request, env) {
        Err(_) if input.no_connection => None,
        other => other?,
    };
    if let Some(p) = profile {
        let origin = Origin::Profile {
            path: p.path.clone(),
            profile: p.profile.clone(),
            target: p.target.clone(),
        };
        for (name, value) in p.values {
            let value = match value {
                Value::String(s) => coerce(&s, props.get(&name).unwrap_or(&Value::Null)),
                other => other,
            };
            profile_layer.push((name, value, origin.clone()));
        }
        // The chosen profile and target, so `debug` and templates (target.name) see them.
        profile_layer.push(("profile".into(), Value::String(p.profile), origin.clone()));
        profile_layer.push(("target".into(), Value::String(p.target), origin));
    }

    let all = merge(&[
        &defaults,
        &found,
        &libpq,
        &profile_layer,
        &dbt_postgres,
        &files,
        &url_layer,
        &pg_analytics,
        &reluvia,
        &flags,
    ]);
    let mut merged: Map<String, Value> = Map::new();
    let mut origins: BTreeMap<String, Origin> = BTreeMap::new();
    for (name, (value, origin)) in all {
        merged.insert(name.clone(), value);
        origins.insert(name, origin);
    }

    if input.no_connection {
        // Never used to connect: only what a command without a database needs
        // must be valid.
        for name in ["user", "dbname"] {
            if !merged.contains_key(name) {
                merged.insert(name.into(), Value::String("(not needed)".into()));
                origins.insert(name.into(), Origin::Default);
            }
        }
    }
    validate(&schema, &merged, &origins)?;
    let mut settings: Settings = serde_json::from_value(Value::Object(merged.clone()))
        .map_err(|e| Error::usage(format!("invalid settings: {e}")))?;
    settings.origins = origins;
    settings.values = merged;
    settings.warnings = warnings;
    Ok(settings)
}

/// Layers merged lowest first: each later layer overwrites the earlier ones. Keeps
/// the order in which names first appear.
fn merge(layers: &[&Layer]) -> Vec<(String, (Value, Origin))> {
    let mut out: Vec<(String, (Value, Origin))> = Vec::new();
    for layer in layers {
        for (name, value, origin) in layer.iter() {
            match out.iter_mut().find(|(n, _)| n == name) {
                Some(slot) => slot.1 = (value.clone(), origin.clone()),
                None => out.push((name.clone(), (value.clone(), origin.clone()))),
            }
        }
    }
    out
}

trait Lookup {
    fn get(&self, name: &str) -> Option<&(Value, Origin)>;
}

impl Lookup for Vec<(String, (Value, Origin))> {
    fn get(&self, name: &str) -> Option<&(Value, Origin)> {
        self.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
}

/// The settings of the `--config` files, a later file overwriting an earlier one.
fn config_files(files: &[PathBuf]) -> Result<Layer> {
    let mut layer = Layer::new();
    for file in files {
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
        let mut own = Layer::new();
        let mut written = Vec::new();
        for (k, v) in obj {
            if v.is_null() {
                continue; // Meltano writes unset settings as null
            }
            own.push((canonical(&k), v, Origin::File(file.clone())));
            written.push(k);
        }
        check_aliases(&own, &written)?;
        layer.extend(own);
    }
    Ok(layer)
}

/// The setting `key` names: itself, or the setting it is an alias of.
fn canonical(key: &str) -> String {
    names()
        .into_iter()
        .find(|n| aliases(n).iter().any(|a| a == key))
        .unwrap_or_else(|| key.to_string())
}

/// One source giving a setting twice, under its name and an alias (`written`: the
/// names as given, in the layer's order), must give the same value; which one it
/// was is then irrelevant.
fn check_aliases(layer: &Layer, written: &[String]) -> Result<()> {
    for (i, (name, value, origin)) in layer.iter().enumerate() {
        for (j, (other, other_value, _)) in layer.iter().enumerate().skip(i + 1) {
            if other == name && other_value != value && !SECRETS.contains(&name.as_str()) {
                let source = match origin {
                    Origin::File(_) => format!("{origin} gives"),
                    _ => "the environment gives".to_string(),
                };
                return Err(Error::usage(format!(
                    "invalid settings: {source} {name} twice, with different values: {} = {value} and {} = {other_value}; {} is another name for {name}, so keep one of them",
                    written[i],
                    written[j],
                    aliases(name).join(", ")
                )));
            }
        }
    }
    Ok(())
}

/// `RELUVIA_TRANSFORM_<NAME>` variables that are set but name no setting (a typo,
/// or a setting Meltano knows and this binary does not): ignored, but said.
fn unknown_variables(props: &Map<String, Value>, names: &[String]) -> Vec<String> {
    let mut known: Vec<String> = Vec::new();
    for name in props.keys() {
        known.push(name.to_uppercase());
        known.extend(aliases(name).iter().map(|a| a.to_uppercase()));
    }
    let mut out: Vec<String> = names
        .iter()
        .filter_map(|var| {
            let rest = var.strip_prefix(ENV_PREFIX)?;
            (!known.iter().any(|k| k == rest)).then(|| {
                format!(
                    "{var} is set but is not a setting of reluvia-transform, so it is ignored; check its name (`reluvia-transform --about` lists the settings)"
                )
            })
        })
        .collect();
    out.sort();
    out
}

/// Turns an environment string into the JSON type the schema asks for. A value that
/// does not parse is kept as a string, so validation reports it by name.
pub(crate) fn coerce(raw: &str, prop: &Value) -> Value {
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
        "number" => raw
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(raw.into())),
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
                    "{missing}: missing (set {vars}, \"{missing}\" in a --config file, the url setting, or a dbt profiles.yml)"
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
    /// Where setting `name` came from, as messages say it: `env PGPASSWORD`,
    /// `url (env RELUVIA_TRANSFORM_URL)`, `default`.
    pub(crate) fn origin(&self, name: &str) -> String {
        self.origins
            .get(name)
            .map(|o| o.to_string())
            .unwrap_or_else(|| "not set".to_string())
    }

    /// Every setting with its value (secrets masked) and origin, for `debug`.
    pub(crate) fn describe(&self) -> Vec<(String, String, String)> {
        names()
            .into_iter()
            .map(|n| {
                let v = match (n.as_str(), self.values.get(&n)) {
                    (_, None) | (_, Some(Value::Null)) => "(not set)".to_string(),
                    ("url", Some(Value::String(u))) => url::mask(u),
                    (name, Some(_)) if SECRETS.contains(&name) => "********".to_string(),
                    (_, Some(Value::String(s))) => s.clone(),
                    (_, Some(other)) => other.to_string(),
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

    /// Whether the project is the one built into the binary (see [`project_dir`]).
    pub(crate) fn builtin_project(&self) -> bool {
        matches!(self.origins.get("project_dir"), Some(Origin::BuiltIn))
    }

    /// Whether a setting named the project directory (rather than it being found).
    pub(crate) fn project_dir_given(&self) -> bool {
        matches!(
            self.origins.get("project_dir"),
            Some(Origin::Flag(_) | Origin::Env(_) | Origin::File(_))
        )
    }

    /// The target path: the setting (under Meltano its default is in `.meltano/`),
    /// else the project's `target-path`, relative to the project directory unless
    /// absolute.
    pub(crate) fn resolve_target_path(&self, project_target: &str) -> PathBuf {
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
