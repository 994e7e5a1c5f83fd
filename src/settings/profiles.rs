//! dbt `profiles.yml` as a settings source, so a project run by dbt-postgres can
//! switch over without renaming anything.
//!
//! Owns where the file is looked for (`profiles_dir`, else the current directory,
//! else `~/.dbt`, as dbt), which profile and target are chosen, rendering their
//! `{{ env_var('X', 'default') }}` values with minijinja, and mapping dbt-postgres'
//! keys onto settings. Like dbt, only the chosen output is rendered, so an
//! unrelated profile's unset variables are no error. A missing file is not an error
//! unless `profiles_dir` or `profile` was set; a malformed one is, naming the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::Env;
use crate::error::{Error, Result};

/// dbt-postgres output keys and the settings they map to.
const KEYS: &[(&str, &str)] = &[
    ("host", "host"),
    ("port", "port"),
    ("user", "user"),
    ("password", "password"),
    ("pass", "password"),
    ("dbname", "dbname"),
    ("database", "dbname"),
    ("schema", "schema"),
    ("threads", "threads"),
    ("sslmode", "sslmode"),
    ("sslrootcert", "sslrootcert"),
    ("connect_timeout", "connect_timeout"),
    ("keepalives_idle", "keepalives_idle"),
    ("search_path", "search_path"),
];

/// What decides which profile is read: each given value with a description of
/// where it came from (for messages).
#[derive(Debug, Default, Clone)]
pub(crate) struct Request {
    pub(crate) dir: Option<(PathBuf, String)>,
    pub(crate) profile: Option<(String, String)>,
    pub(crate) target: Option<(String, String)>,
    /// The target was given as `--target`: a profile must then be found and used.
    pub(crate) target_is_flag: bool,
    /// The `profile:` of the project's dbt_project.yml, when it has one.
    pub(crate) project_profile: Option<String>,
    pub(crate) home: Option<PathBuf>,
    pub(crate) cwd: Option<PathBuf>,
}

/// The settings one output of a profile gives.
#[derive(Debug, Clone)]
pub(crate) struct Loaded {
    pub(crate) path: PathBuf,
    pub(crate) profile: String,
    pub(crate) target: String,
    /// `(setting, value)`; values rendered, not yet coerced to the settings' types.
    pub(crate) values: Vec<(String, Value)>,
}

/// Finds, reads and renders the profile; `Ok(None)` when there is none to use.
pub(crate) fn load(req: &Request, env: &Env<'_>) -> Result<Option<Loaded>> {
    // `--target X` chooses an output of a profile: without one it would be ignored.
    let unused = |why: String| -> Result<Option<Loaded>> {
        match &req.target {
            Some((t, _)) if req.target_is_flag => Err(Error::usage(format!(
                "--target {t} was given, but {why}, so there is no output '{t}' to use; set profiles_dir (--profiles-dir or DBT_PROFILES_DIR) and profile, or drop --target"
            ))),
            _ => {
                log::debug!("{why}; no profile used");
                Ok(None)
            }
        }
    };
    let Some(path) = locate(req)? else {
        if let Some((p, from)) = &req.profile {
            return Err(Error::usage(format!(
                "profile '{p}' ({from}) was asked for but no profiles.yml was found in the current directory or ~/.dbt; set profiles_dir (--profiles-dir or DBT_PROFILES_DIR)"
            )));
        }
        return unused("no profiles.yml was found in the current directory or ~/.dbt".into());
    };
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::usage(format!("cannot read {shown}: {e}; check its permissions")))?;
    let doc = crate::project::parse_yaml(&text, &shown)?;
    let Value::Object(profiles) = doc else {
        return Err(Error::usage(format!(
            "{shown}: expected a mapping of profile names; fix the file"
        )));
    };
    // `config:` is dbt's old place for user settings, not a profile.
    let names: Vec<&String> = profiles.keys().filter(|k| *k != "config").collect();
    let chosen = match &req.profile {
        Some((p, from)) => {
            if !profiles.contains_key(p) {
                return Err(Error::usage(format!(
                    "{shown}: no profile '{p}' (asked for by {from}); it has {}",
                    list(&names)
                )));
            }
            p.clone()
        }
        None => match req.project_profile.clone() {
            Some(p) if profiles.contains_key(&p) => p,
            // The project names a profile this file does not have (say a
            // ~/.dbt/profiles.yml of other projects): the file is not for us.
            Some(p) => {
                return unused(format!(
                    "{shown} has no profile '{p}' (the profile of dbt_project.yml)"
                ))
            }
            None if names.len() == 1 => names[0].clone(),
            None => {
                return unused(format!(
                    "{shown} has several profiles and neither --profile nor dbt_project.yml chooses one"
                ))
            }
        },
    };
    let at = |what: &str| format!("{shown}: profile '{chosen}': {what}");
    let profile = profiles[&chosen].as_object().ok_or_else(|| {
        Error::usage(at(
            "expected a mapping with target and outputs; fix the file",
        ))
    })?;
    let outputs = profile
        .get("outputs")
        .and_then(Value::as_object)
        .ok_or_else(|| Error::usage(at("no outputs mapping; fix the file")))?;
    let output_names: Vec<&String> = outputs.keys().collect();
    let target = match &req.target {
        Some((t, from)) => {
            if !outputs.contains_key(t) {
                return Err(Error::usage(at(&format!(
                    "no output '{t}' (asked for by {from}); it has {}",
                    list(&output_names)
                ))));
            }
            t.clone()
        }
        None => match profile.get("target") {
            Some(Value::String(t)) => {
                let t =
                    render(t, env, false).map_err(|e| Error::usage(at(&format!("target: {e}"))))?;
                if !outputs.contains_key(&t) {
                    return Err(Error::usage(at(&format!(
                        "its target '{t}' is not one of its outputs ({}); fix the file or set target",
                        list(&output_names)
                    ))));
                }
                t
            }
            _ if output_names.len() == 1 => output_names[0].clone(),
            _ => {
                return Err(Error::usage(at(&format!(
                    "no target; set target to one of {}",
                    list(&output_names)
                ))))
            }
        },
    };
    let at = |what: &str| format!("{shown}: profile '{chosen}', target '{target}': {what}");
    let output = outputs[&target].as_object().ok_or_else(|| {
        Error::usage(at(
            "expected a mapping of connection settings; fix the file",
        ))
    })?;
    let mut values: Vec<(String, Value)> = Vec::new();
    for (key, raw) in output {
        if key == "type" {
            let ty = match raw {
                Value::String(s) => render(s, env, false).map_err(|e| Error::usage(at(&e)))?,
                other => other.to_string(),
            };
            if ty != "postgres" {
                return Err(Error::usage(at(&format!(
                    "type is '{ty}', but reluvia-transform only connects to PostgreSQL (type: postgres)"
                ))));
            }
            continue;
        }
        let Some((_, setting)) = KEYS.iter().find(|(k, _)| k == key) else {
            continue; // dbt-only keys (retries, role, …) have no setting here
        };
        let value = match raw {
            Value::String(s) => {
                let secret = super::SECRETS.contains(setting);
                let v =
                    render(s, env, secret).map_err(|e| Error::usage(at(&format!("{key}: {e}"))))?;
                if v.is_empty() {
                    continue; // `env_var('X', '')`: not set, like an empty variable
                }
                Value::String(v)
            }
            Value::Null => continue,
            other => other.clone(),
        };
        values.retain(|(n, _)| n != setting);
        values.push((setting.to_string(), value));
    }
    Ok(Some(Loaded {
        path,
        profile: chosen,
        target,
        values,
    }))
}

fn list(names: &[&String]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names
            .iter()
            .map(|n| format!("'{n}'"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The profiles.yml to read, if any.
fn locate(req: &Request) -> Result<Option<PathBuf>> {
    if let Some((dir, from)) = &req.dir {
        let p = dir.join("profiles.yml");
        if p.is_file() {
            return Ok(Some(p));
        }
        return Err(Error::usage(format!(
            "profiles_dir {} ({from}) has no profiles.yml; fix the path or unset it",
            dir.display()
        )));
    }
    let candidates = [
        req.cwd.as_ref().map(|d| d.join("profiles.yml")),
        req.home
            .as_ref()
            .map(|h| h.join(".dbt").join("profiles.yml")),
    ];
    Ok(candidates.into_iter().flatten().find(|p| p.is_file()))
}

/// The `profile:` of the project's dbt_project.yml, when it can be read. A broken
/// dbt_project.yml is reported when the project is loaded, not here.
pub(super) fn project_profile(project_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(project_dir.join("dbt_project.yml")).ok()?;
    let doc = crate::project::parse_yaml(&text, "dbt_project.yml").ok()?;
    doc.get("profile")?.as_str().map(str::to_string)
}

/// Renders one value of the profile: dbt's `env_var(name, default)` and the
/// `as_text`/`as_number`/`as_bool`/`as_native` filters (which only mark types in
/// dbt; values are typed by the settings schema here). An error quotes the
/// template unless it is `secret` (a password may be written in it).
fn render(text: &str, env: &Env<'_>, secret: bool) -> std::result::Result<String, String> {
    if !text.contains("{{") && !text.contains("{%") {
        return Ok(text.to_string());
    }
    // minijinja functions must be 'static, and `env` is borrowed: a first pass
    // records which variables the template reads, a second renders with their values.
    let wanted: Arc<Mutex<Vec<String>>> = Arc::default();
    let first = {
        let wanted = wanted.clone();
        render_with(text, secret, move |name: &str| {
            wanted
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(name.to_string());
            Some(String::new())
        })
    };
    first?;
    let mut values: BTreeMap<String, Option<String>> = BTreeMap::new();
    for name in wanted.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        values.insert(name.clone(), env(name).map_err(|e| e.message)?);
    }
    render_with(text, secret, move |name: &str| {
        values.get(name).cloned().flatten()
    })
}

fn render_with(
    text: &str,
    secret: bool,
    lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
) -> std::result::Result<String, String> {
    let mut jinja = minijinja::Environment::new();
    jinja.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    jinja.add_function(
        "env_var",
        move |name: String,
              default: Option<String>|
              -> std::result::Result<String, minijinja::Error> {
            match lookup(&name).or(default) {
                Some(v) => Ok(v),
                None => Err(minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    format!(
                        "env_var('{name}') is not set and has no default; set it or give a default"
                    ),
                )),
            }
        },
    );
    for f in ["as_text", "as_number", "as_bool", "as_native"] {
        jinja.add_filter(f, |v: minijinja::Value| v);
    }
    jinja.render_str(text, minijinja::context! {}).map_err(|e| {
        let detail = e
            .detail()
            .map(str::to_string)
            .unwrap_or_else(|| e.to_string());
        if secret {
            format!("cannot render it (not shown: it is a secret): {detail}")
        } else {
            format!("cannot render '{text}': {detail}")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(k: &str) -> Result<Option<String>> {
        Ok(match k {
            "PGH" => Some("db.internal".into()),
            "PORT" => Some("6543".into()),
            _ => None,
        })
    }

    fn render(text: &str, env: &Env<'_>) -> std::result::Result<String, String> {
        super::render(text, env, false)
    }

    #[test]
    fn renders_env_var_with_defaults_and_filters() {
        assert_eq!(render("{{ env_var('PGH') }}", &env).unwrap(), "db.internal");
        assert_eq!(
            render("{{ env_var('NOPE', 'dflt') }}", &env).unwrap(),
            "dflt"
        );
        assert_eq!(
            render("{{ env_var('PORT') | as_number }}", &env).unwrap(),
            "6543"
        );
        assert_eq!(render("plain", &env).unwrap(), "plain");
        let e = render("{{ env_var('NOPE') }}", &env).unwrap_err();
        assert!(e.contains("env_var('NOPE') is not set"), "{e}");
    }
}
