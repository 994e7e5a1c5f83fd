//! Installed packages: the projects under `packages-install-path` (`dbt_packages/`
//! as `deps` or `dbt deps` fills it), each read from its own `dbt_project.yml`,
//! each read as a project of its own (macros, generic tests, models, seeds,
//! snapshots, singular tests, analyses, YAML), under the package's name. A
//! package's hooks and unit tests are refused as not supported yet, and so is a
//! project whose declared packages are not all installed.

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
    cancel: &Cancel,
) -> Result<Vec<Package>> {
    let base = dir.join(install_path);
    let declared = declared_packages(dir)?;
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
        let project = super::load_at(dir, Some(&rel), cancel)?;
        let hooks = !project.on_run_start.is_empty() || !project.on_run_end.is_empty();
        if hooks || !project.unit_tests.is_empty() {
            let what = if hooks {
                "on-run-start/on-run-end hooks"
            } else {
                "unit tests"
            };
            return Err(Error::in_file(
                format!("{rel}/dbt_project.yml"),
                format!("{what} of packages are not supported yet; remove them from package '{}' or run this project with dbt-core", pf.name),
            ));
        }
        out.push(Package {
            name: pf.name,
            macros: project.macros.clone(),
            project: Box::new(project),
        });
    }
    Ok(out)
}

/// `packages.yml` (else `dependencies.yml`): the file and how many packages it
/// declares; `None` when there is neither.
fn declared_packages(dir: &Path) -> Result<Option<(String, usize)>> {
    for name in ["packages.yml", "dependencies.yml"] {
        let path = dir.join(name);
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let doc = super::yaml::parse(&text, name)?;
        let n = match doc.get("packages").map(|p| &p.value) {
            Some(super::yaml::YamlValue::Seq(items)) => items.len(),
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
    /// `git: url` with `revision`, `subdirectory`, `warn-unpinned`.
    Git {
        url: String,
        revision: Option<String>,
        subdirectory: Option<String>,
        warn_unpinned: bool,
    },
}

/// Declared packages, each with the entry as written (JSON).
pub(crate) type DeclaredEntries = Vec<(Declared, serde_json::Value)>;

/// The declaring file (name) and its entries, each with its JSON form (for the
/// lock file's hash); `None` when there is neither file. Entries `deps` cannot
/// install yet (Hub `package:`, `tarball:`, `private:`) are errors naming the line.
pub(crate) fn declared(dir: &Path) -> Result<Option<(String, DeclaredEntries)>> {
    use super::yaml::YamlValue;
    for name in ["packages.yml", "dependencies.yml"] {
        let path = dir.join(name);
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let doc = super::yaml::parse(&text, name)?;
        let items = match doc.get("packages").map(|p| (&p.value, p)) {
            None | Some((YamlValue::Null, _)) => return Ok(Some((name.to_string(), Vec::new()))),
            Some((YamlValue::Seq(items), _)) => items,
            Some((_, p)) => {
                return Err(p
                    .at(name)
                    .error("packages: expected a list of packages (- local: …, - git: …)"))
            }
        };
        let mut out = Vec::new();
        for item in items {
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
            let decl = if let Some(path) = text_of("local")? {
                Declared::Local { path }
            } else if let Some(url) = text_of("git")? {
                let warn_unpinned = match item.get("warn-unpinned").or(item.get("warn_unpinned")) {
                    Some(v) => match v.value {
                        YamlValue::Bool(b) => b,
                        _ => return Err(v.at(name).error("warn-unpinned: expected true or false")),
                    },
                    None => true,
                };
                Declared::Git {
                    url,
                    revision: text_of("revision")?,
                    subdirectory: text_of("subdirectory")?,
                    warn_unpinned,
                }
            } else if item.get("package").is_some() {
                return Err(item.at(name).error(
                    "Hub packages (package: … version: …) are not installed by reluvia-transform deps yet; install with `dbt deps`, or declare the package with git: or local:",
                ));
            } else if item.get("tarball").is_some() || item.get("private").is_some() {
                return Err(item.at(name).error(
                    "tarball: and private: packages are not installed by reluvia-transform deps yet; install with `dbt deps`, or declare the package with git: or local:",
                ));
            } else {
                return Err(item.at(name).error(format!(
                    "expected a package with local:, git:, package: or tarball:, got {}",
                    item.kind()
                )));
            };
            out.push((decl, item.to_json()));
        }
        return Ok(Some((name.to_string(), out)));
    }
    Ok(None)
}

/// The `name:` of the `dbt_project.yml` in `dir` (what a package installs as).
pub(crate) fn package_name(dir: &Path) -> Result<String> {
    Ok(super::read_project_file(dir, &mut Warnings::default())?.name)
}
