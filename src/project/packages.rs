//! Installed packages: the projects under `packages-install-path` (`dbt_packages/`
//! as `deps` or `dbt deps` fills it), each read from its own `dbt_project.yml`,
//! each read as a project of its own (macros, generic tests, models, seeds,
//! snapshots, singular tests, unit tests, analyses, YAML, run hooks), under the
//! package's name. A project whose declared packages are not all installed is
//! refused.

use std::path::Path;

use crate::cancel::Cancel;
use crate::error::{Error, Result};

use super::config::Warnings;
use super::files::SqlFile;

/// One installed package.
#[derive(Debug, Clone)]
pub(crate) struct Package {
    /// The `name:` of its `dbt_project.yml` (its macro namespace).
    pub(crate) name: String,
    /// Its macro files and `generic/` test files; `original_file_path` is
    /// relative to the root project (`dbt_packages/<dir>/macros/x.sql`).
    pub(crate) macros: Vec<SqlFile>,
    /// Everything else of it (models, seeds, snapshots, tests, analyses, YAML),
    /// read as a project of its own, paths relative to the root project; its
    /// `vars` are what its nodes see (its own, then the root's).
    pub(crate) project: Box<super::Project>,
}

/// The packages installed under `dir/install_path`, sorted by directory name.
pub(super) fn load(
    dir: &Path,
    install_path: &str,
    root_name: &str,
    vars: &InvocationVars,
    cancel: &Cancel,
) -> Result<Vec<Package>> {
    let base = dir.join(install_path);
    let declared = declared_packages(dir, vars)?;
    let mut dirs: Vec<_> = match std::fs::read_dir(&base) {
        Ok(entries) => entries
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.join("dbt_project.yml").is_file())
            .collect(),
        Err(_) => Vec::new(),
    };
    dirs.sort();
    if let Some((file, n)) = &declared {
        if dirs.len() < *n {
            return Err(Error::in_file(
                file.clone(),
                format!(
                    "{n} package(s) are declared here but {} are installed in {install_path}/; run `reluvia-transform deps` (or `dbt deps`) to install them",
                    dirs.len()
                ),
            ));
        }
    }
    let mut out: Vec<Package> = Vec::new();
    let mut seen: Vec<(String, String)> = Vec::new();
    for pdir in dirs {
        let rel = pdir
            .strip_prefix(dir)
            .unwrap_or(&pdir)
            .to_string_lossy()
            .replace('\\', "/");
        let pf = super::read_project_file(&pdir, &mut Warnings::default())?;
        if pf.name == root_name {
            // dbt installs the project into itself only by mistake; its files are
            // the root project's.
            continue;
        }
        if let Some((_, other)) = seen.iter().find(|(n, _)| n == &pf.name) {
            return Err(Error::in_file(
                format!("{rel}/dbt_project.yml"),
                format!(
                    "package '{}' is installed twice (also in {other}/); remove one of the directories",
                    pf.name
                ),
            ));
        }
        seen.push((pf.name.clone(), rel.clone()));
        let project = super::load_at(dir, Some(&rel), vars, cancel)?;
        out.push(Package {
            name: pf.name,
            macros: project.macros.clone(),
            project: Box::new(project),
        });
    }
    Ok(out)
}

/// `packages.yml` (else `dependencies.yml`): the file and how many packages it
/// declares; `None` when there is neither. Its entries are rendered, as dbt
/// renders them whenever it loads the project: a `var()` that is not given
/// fails every command, not only `deps`.
fn declared_packages(dir: &Path, vars: &InvocationVars) -> Result<Option<(String, usize)>> {
    for name in ["packages.yml", "dependencies.yml"] {
        let path = dir.join(name);
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let doc = super::yaml::parse(&text, name)?;
        let n = match doc.get("packages").map(|p| &p.value) {
            Some(super::yaml::YamlValue::Seq(items)) => {
                for item in items {
                    render_entry(item, name, vars)?;
                }
                items.len()
            }
            _ => 0,
        };
        return Ok(Some((name.to_string(), n)));
    }
    Ok(None)
}

/// One entry of `packages.yml`/`dependencies.yml`, as `deps` installs it.
#[derive(Debug, Clone)]
pub(crate) enum Declared {
    /// `local: path` (relative to the project).
    Local { path: String },
    /// `git: url` with `revision`, `subdirectory`, `warn-unpinned`; `url` is
    /// rendered (`{{ env_var('GIT_TOKEN') }}` in it), `written` as the file has
    /// it: what messages and the lock file show.
    Git {
        url: String,
        written: String,
        revision: Option<String>,
        subdirectory: Option<String>,
        warn_unpinned: bool,
    },
    /// `tarball: url` with `name:` (the directory it installs as); `url`
    /// rendered, `written` as the file has it.
    Tarball {
        url: String,
        written: String,
        name: String,
    },
    /// `package: org/name` from the dbt Hub, with `version:` (one or a list of
    /// ranges, as written) and `install_prerelease`.
    Hub {
        package: String,
        versions: Vec<String>,
        install_prerelease: bool,
    },
}

/// One declared package: what it is, its form in dbt's `sha1_hash` of the
/// declarations (the entry with dbt's defaults and itself as `unrendered`) and
/// the line it starts on.
#[derive(Debug, Clone)]
pub(crate) struct DeclaredEntry {
    pub(crate) decl: Declared,
    pub(crate) hash_form: serde_json::Value,
    pub(crate) line: usize,
}

/// The declaring file (name) and its entries; `None` when there is neither
/// `packages.yml` nor `dependencies.yml`. As dbt, `dependencies.yml` is read when
/// it has a `packages:` key, and both files having one is an error.
pub(crate) fn declared(
    dir: &Path,
    vars: &InvocationVars,
) -> Result<Option<(String, Vec<DeclaredEntry>)>> {
    use super::yaml::YamlValue;
    let mut docs = Vec::new();
    for name in ["dependencies.yml", "packages.yml"] {
        if let Ok(text) = std::fs::read_to_string(dir.join(name)) {
            docs.push((name, super::yaml::parse(&text, name)?));
        }
    }
    if docs.len() == 2 && docs.iter().all(|(_, d)| d.get("packages").is_some()) {
        return Err(Error::in_file(
            "packages.yml",
            "packages: is declared in both packages.yml and dependencies.yml (dbt refuses that too); keep the packages in one of them",
        ));
    }
    let Some((name, doc)) = docs
        .iter()
        .find(|(_, d)| d.get("packages").is_some())
        .or_else(|| docs.iter().find(|(n, _)| *n == "packages.yml"))
        .or(docs.first())
    else {
        return Ok(None);
    };
    let name = name.to_string();
    let items = match doc.get("packages").map(|p| (&p.value, p)) {
        None | Some((YamlValue::Null, _)) => return Ok(Some((name, Vec::new()))),
        Some((YamlValue::Seq(items), _)) => items,
        Some((_, p)) => {
            return Err(p.at(&name).error(
                "packages: expected a list of packages (- local: …, - git: …, - package: …)",
            ))
        }
    };
    let mut out = Vec::new();
    for item in items {
        let rendered = render_entry(item, &name, vars)?;
        out.push(DeclaredEntry {
            decl: declared_item(&rendered, item, &name)?,
            hash_form: hash_form(&rendered, item),
            line: item.line,
        });
    }
    Ok(Some((name, out)))
}

/// A package entry given as JSON (a Hub package's own `packages`, a lock
/// file's entry, rendered as dbt renders them); `origin` names where it comes
/// from in errors.
pub(crate) fn declared_from_json(
    v: &serde_json::Value,
    origin: &str,
    vars: &InvocationVars,
) -> Result<Declared> {
    let item = super::yaml::from_json(v);
    declared_item(&render_entry(&item, origin, vars)?, &item, origin)
}

/// The invocation's own `--vars`: the only variables `var()` sees in
/// packages.yml (dbt renders it before any project is read, so
/// `dbt_project.yml`'s `vars:` are not there).
#[derive(Debug, Clone, Default)]
pub(crate) struct InvocationVars(pub(crate) serde_json::Map<String, serde_json::Value>);

/// An entry with the Jinja of its text values rendered as dbt renders
/// packages.yml: `env_var(name, default)` (secret variables included: the
/// rendered text is used, never shown) and `var(name, default)` of `--vars`.
fn render_entry(
    item: &super::yaml::Yaml,
    file: &str,
    vars: &InvocationVars,
) -> Result<super::yaml::Yaml> {
    use super::yaml::YamlValue;
    let value = match &item.value {
        YamlValue::Str(s) if s.contains("{{") || s.contains("{%") => {
            YamlValue::Str(render_text(s, vars).map_err(|e| item.at(file).error(e))?)
        }
        YamlValue::Seq(items) => YamlValue::Seq(
            items
                .iter()
                .map(|i| render_entry(i, file, vars))
                .collect::<Result<_>>()?,
        ),
        YamlValue::Map(entries) => YamlValue::Map(
            entries
                .iter()
                .map(|(k, line, v)| Ok((k.clone(), *line, render_entry(v, file, vars)?)))
                .collect::<Result<_>>()?,
        ),
        other => other.clone(),
    };
    Ok(super::yaml::Yaml {
        value,
        line: item.line,
    })
}

/// Renders one text of packages.yml; the error never quotes a rendered value.
fn render_text(text: &str, vars: &InvocationVars) -> std::result::Result<String, String> {
    let fail = |msg: String| minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, msg);
    let mut jinja = minijinja::Environment::new();
    jinja.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    jinja.add_function(
        "env_var",
        move |name: String,
              default: Option<String>|
              -> std::result::Result<String, minijinja::Error> {
            match crate::settings::process_env(&name) {
                Ok(Some(v)) => Ok(v),
                Ok(None) => default.ok_or_else(|| {
                    fail(format!(
                        "env_var('{name}') is not set and has no default; set it or give a default"
                    ))
                }),
                Err(e) => Err(fail(e.message)),
            }
        },
    );
    let given = vars.0.clone();
    jinja.add_function(
        "var",
        move |name: String,
              default: Option<minijinja::Value>|
              -> std::result::Result<minijinja::Value, minijinja::Error> {
            match (given.get(&name), default) {
                (Some(v), _) => Ok(minijinja::Value::from(minijinja::value::Serde(v))),
                (None, Some(d)) => Ok(d),
                (None, None) => Err(fail(format!(
                    "var('{name}') is not given and has no default: packages.yml sees only the --vars of the command, not dbt_project.yml's vars (as in dbt); pass --vars '{{{name}: …}}' or give a default"
                ))),
            }
        },
    );
    jinja.render_str(text, minijinja::context! {}).map_err(|e| {
        let detail = e
            .detail()
            .map(str::to_string)
            .unwrap_or_else(|| e.kind().to_string());
        format!("cannot render '{text}': {detail} (packages.yml may use env_var() and var() only)")
    })
}

/// dbt's dictionary of a declared package for its `sha1_hash`: the rendered
/// entry, the defaults dbt fills in, and the entry as written under
/// `unrendered`.
fn hash_form(rendered: &super::yaml::Yaml, item: &super::yaml::Yaml) -> serde_json::Value {
    let raw = item.to_json();
    let mut with = rendered.to_json();
    if let serde_json::Value::Object(m) = &mut with {
        let defaults: &[(&str, serde_json::Value)] = if m.contains_key("local") {
            &[]
        } else if m.contains_key("git") {
            &[
                ("revision", serde_json::Value::Null),
                ("warn-unpinned", serde_json::Value::Null),
                ("subdirectory", serde_json::Value::Null),
            ]
        } else if m.contains_key("package") {
            &[("install_prerelease", serde_json::Value::Bool(false))]
        } else {
            &[]
        };
        for (k, v) in defaults {
            m.entry(k.to_string()).or_insert_with(|| v.clone());
        }
        m.insert("unrendered".into(), raw);
    }
    with
}

/// One entry, `item` rendered and `written` as the file has it.
fn declared_item(
    item: &super::yaml::Yaml,
    written: &super::yaml::Yaml,
    name: &str,
) -> Result<Declared> {
    use super::yaml::YamlValue;
    let text_of = |key: &str| -> Result<Option<String>> {
        match item.get(key) {
            None => Ok(None),
            Some(v) => match &v.value {
                YamlValue::Str(s) => Ok(Some(s.clone())),
                YamlValue::Null => Ok(None),
                _ => match v.to_json() {
                    serde_json::Value::Number(n) => Ok(Some(n.to_string())),
                    _ => Err(v.at(name).error(format!("{key}: expected a string"))),
                },
            },
        }
    };
    let flag = |keys: &[&str], default: bool| -> Result<bool> {
        match keys.iter().find_map(|k| item.get(k).map(|v| (k, v))) {
            Some((_, v)) if v.is_null() => Ok(default),
            Some((k, v)) => match v.value {
                YamlValue::Bool(b) => Ok(b),
                _ => Err(v.at(name).error(format!("{k}: expected true or false"))),
            },
            None => Ok(default),
        }
    };
    if let Some(path) = text_of("local")? {
        Ok(Declared::Local { path })
    } else if let Some(url) = text_of("git")? {
        Ok(Declared::Git {
            written: written_text(written, "git", &url),
            url,
            revision: text_of("revision")?,
            subdirectory: text_of("subdirectory")?,
            warn_unpinned: flag(&["warn-unpinned", "warn_unpinned"], true)?,
        })
    } else if let Some(package) = text_of("package")? {
        let versions = match item.get("version") {
            None => Vec::new(),
            Some(v) => match &v.value {
                YamlValue::Seq(list) => list
                    .iter()
                    .map(|x| match x.to_json() {
                        serde_json::Value::String(s) => Ok(s),
                        serde_json::Value::Number(n) => Ok(n.to_string()),
                        _ => Err(x.at(name).error("version: expected a version string")),
                    })
                    .collect::<Result<Vec<_>>>()?,
                YamlValue::Null => Vec::new(),
                _ => text_of("version")?.into_iter().collect(),
            },
        };
        if versions.is_empty() {
            return Err(item.at(name).error(format!(
                "package '{package}': version: is required for a Hub package (a version such as \"1.3.0\" or a range such as [\">=1.0.0\", \"<2.0.0\"])"
            )));
        }
        Ok(Declared::Hub {
            package,
            versions,
            install_prerelease: flag(&["install_prerelease"], false)?,
        })
    } else if let Some(url) = text_of("tarball")? {
        let Some(package) = text_of("name")? else {
            return Err(item.at(name).error(format!(
                "tarball package '{}': name: is required (the directory it installs as, the name in its dbt_project.yml)",
                written_text(written, "tarball", &url)
            )));
        };
        Ok(Declared::Tarball {
            written: written_text(written, "tarball", &url),
            url,
            name: package,
        })
    } else if item.get("private").is_some() {
        Err(item.at(name).error(
            "private: packages (resolved through dbt's hosted service) are not installed by reluvia-transform deps; declare the package with git: (a URL with a token from env_var()), tarball:, local: or package:",
        ))
    } else {
        Err(item.at(name).error(format!(
            "expected a package with local:, git:, package: or tarball:, got {}",
            item.kind()
        )))
    }
}

/// The text of `key` in the entry as written (before rendering), else `rendered`.
fn written_text(written: &super::yaml::Yaml, key: &str, rendered: &str) -> String {
    match written.get(key).map(|v| &v.value) {
        Some(super::yaml::YamlValue::Str(s)) => s.clone(),
        _ => rendered.to_string(),
    }
}

/// The `name:` of the `dbt_project.yml` in `dir` (what a package installs as).
pub(crate) fn package_name(dir: &Path) -> Result<String> {
    Ok(super::read_project_file(dir, &mut Warnings::default())?.name)
}
