//! Installing packages as `dbt deps` does: resolving the declared packages
//! (local paths, git repositories, Hub packages with version ranges) together
//! with what each of them declares in turn, into one pinned version per package
//! — the ranges a Hub package gets from several places intersected, a conflict an
//! error naming them — and installing pinned packages under `packages-install-path`,
//! each under its project name. The lock file is in `lock`, the Hub's API in
//! `hub`, dbt's version rules in `semver`.

mod hub;
pub(crate) mod lock;
mod semver;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use crate::console::Output;
use crate::error::{Error, Result};
use crate::project::{self, Declared};

use hub::Hub;

/// The dbt-core version a Hub package's `require_dbt_version` is checked
/// against: the one this binary stands in for.
const DBT_VERSION: &str = "1.10.0";

/// A declared package and where it was declared (for messages).
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) decl: Declared,
    /// `packages.yml line 4`, `package acme/util 1.2.0`, …
    pub(crate) origin: String,
    /// The file and line to blame in an error.
    pub(crate) file: String,
    pub(crate) line: Option<usize>,
}

/// One package as every request for it combined (dbt's "unpinned" package).
#[derive(Debug, Clone)]
struct Wanted {
    /// The names it is known by (a git URL with and without `.git`).
    names: Vec<String>,
    requests: Vec<Request>,
}

impl Wanted {
    fn new(r: Request) -> Wanted {
        Wanted {
            names: names_of(&r.decl),
            requests: vec![r],
        }
    }
    fn first(&self) -> &Request {
        &self.requests[0]
    }
}

fn names_of(d: &Declared) -> Vec<String> {
    match d {
        Declared::Local { path } => vec![path.clone()],
        Declared::Hub { package, .. } => vec![package.clone()],
        Declared::Tarball { written, .. } => vec![written.clone()],
        Declared::Git {
            written: url,
            subdirectory,
            ..
        } => {
            let other = match url.strip_suffix(".git") {
                Some(u) => u.to_string(),
                None => format!("{url}.git"),
            };
            match subdirectory {
                Some(s) => vec![format!("{url}/{s}"), format!("{other}/{s}")],
                None => vec![url.clone(), other],
            }
        }
    }
}

fn kind(d: &Declared) -> &'static str {
    match d {
        Declared::Local { .. } => "local",
        Declared::Git { .. } => "git",
        Declared::Hub { .. } => "hub",
        Declared::Tarball { .. } => "tarball",
    }
}

/// A package pinned to one version, with what installing it needs.
#[derive(Debug, Clone)]
pub(crate) enum Pinned {
    Local {
        path: String,
    },
    Git {
        /// Rendered (what git is given), and as written (what is shown).
        url: String,
        written: String,
        /// The commit (after fetching), else the revision asked for.
        revision: String,
        subdirectory: Option<String>,
    },
    /// Rendered (what is downloaded), as written (what is shown), the name it
    /// installs as.
    Tarball {
        url: String,
        written: String,
        name: String,
    },
    Hub {
        package: String,
        version: String,
        /// The newest installable version.
        latest: String,
        tarball: String,
    },
}

/// What a pinned package is: its project name, its own declarations, where its
/// files are (fetched) for local and git packages.
struct Fetched {
    name: String,
    requests: Vec<Request>,
    dir: Option<PathBuf>,
}

/// Resolves and installs; keeps the Hub client and the git clones of one run.
pub(crate) struct Installer<'a> {
    root: PathBuf,
    root_name: String,
    out: &'a Output,
    hub: Option<Hub>,
    downloads: PathBuf,
    clones: Vec<((String, String), PathBuf)>,
    warned: HashSet<String>,
    /// What `var()` gives in the packages' own packages.yml.
    vars: project::InvocationVars,
}

impl Drop for Installer<'_> {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.downloads);
    }
}

impl<'a> Installer<'a> {
    pub(crate) fn new(
        root: &Path,
        root_name: &str,
        out: &'a Output,
        vars: project::InvocationVars,
    ) -> Installer<'a> {
        let downloads = std::env::temp_dir().join(format!(
            "reluvia-deps-{}-{}",
            std::process::id(),
            chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
        ));
        Installer {
            root: absolute(root),
            root_name: root_name.to_string(),
            out,
            hub: None,
            downloads,
            clones: Vec::new(),
            warned: HashSet::new(),
            vars,
        }
    }

    fn hub(&mut self) -> &mut Hub {
        self.hub.get_or_insert_with(Hub::from_env)
    }

    fn show_redirects(&mut self) {
        let redirects = self
            .hub
            .as_mut()
            .map(|h| std::mem::take(&mut h.redirects))
            .unwrap_or_default();
        for r in redirects {
            self.out.warn("deps_package_redirect", &r);
        }
    }

    /// Every package the requests need, transitively, each pinned once; with
    /// its lock-file entry (dbt's dictionary of the pin plus `name`).
    pub(crate) fn resolve(&mut self, requests: Vec<Request>) -> Result<Vec<(Pinned, Value)>> {
        let mut fin: Vec<Wanted> = Vec::new();
        let mut pending = requests;
        let mut expanded: HashSet<String> = HashSet::new();
        while !pending.is_empty() {
            let mut next = Vec::new();
            for r in pending {
                let i = incorporate(&mut fin, r)?;
                let pinned = self.pin(&fin[i])?;
                let key = format!("{pinned:?}");
                if !expanded.insert(key) {
                    continue;
                }
                let fetched = self.fetch(&pinned, fin[i].first())?;
                next.extend(fetched.requests);
            }
            pending = next;
        }
        let mut out = Vec::new();
        let mut seen: Vec<String> = Vec::new();
        for w in &fin {
            let mut pinned = self.pin(w)?;
            let fetched = self.fetch(&pinned, w.first())?;
            if let (Pinned::Git { revision, .. }, Some(dir)) = (&mut pinned, &fetched.dir) {
                *revision = git(&["rev-parse", "HEAD"], Some(dir), &w.names[0], None)?;
            }
            let r = w.first();
            if fetched.name == self.root_name {
                return Err(Error::usage(format!(
                    "package {} is named '{}' like this project; package names must be unique: rename one of them",
                    w.names[0], fetched.name
                ))
                .at(r.file.clone(), r.line));
            }
            if seen.contains(&fetched.name) {
                return Err(Error::usage(format!(
                    "two packages are named '{}' ({} is one); remove one of them",
                    fetched.name, w.names[0]
                ))
                .at(r.file.clone(), r.line));
            }
            seen.push(fetched.name.clone());
            let mut entry = match &pinned {
                Pinned::Local { path } => json!({ "local": path }),
                Pinned::Git {
                    written,
                    revision,
                    subdirectory,
                    ..
                } => {
                    // dbt writes the URL as written, never a rendered secret.
                    let mut e = json!({ "git": written, "revision": revision });
                    if let Some(s) = subdirectory {
                        e["subdirectory"] = json!(s);
                    }
                    e
                }
                Pinned::Hub {
                    package, version, ..
                } => json!({ "package": package, "version": version }),
                // dbt writes the URL as written, never a rendered secret.
                Pinned::Tarball { written, .. } => json!({ "tarball": written }),
            };
            entry["name"] = json!(fetched.name);
            out.push((pinned, entry));
        }
        self.show_redirects();
        Ok(out)
    }

    /// The one version all requests for a package allow.
    fn pin(&mut self, w: &Wanted) -> Result<Pinned> {
        let r = w.first().clone();
        let blame = |msg: String| Error::usage(msg).at(r.file.clone(), r.line);
        match &r.decl {
            Declared::Local { path } => Ok(Pinned::Local { path: path.clone() }),
            Declared::Tarball { url, written, name } => Ok(Pinned::Tarball {
                url: url.clone(),
                written: written.clone(),
                name: name.clone(),
            }),
            Declared::Git {
                url,
                written,
                subdirectory,
                ..
            } => {
                let mut revisions: Vec<String> = Vec::new();
                for q in &w.requests {
                    if let Declared::Git {
                        revision: Some(rev),
                        ..
                    } = &q.decl
                    {
                        if !revisions.contains(rev) {
                            revisions.push(rev.clone());
                        }
                    }
                }
                if revisions.len() > 1 {
                    return Err(blame(format!(
                        "git package '{written}' is asked for at several revisions ({}); a git package is installed at one revision: make them agree",
                        describe(&w.requests, |d| match d {
                            Declared::Git { revision, .. } => revision.clone().unwrap_or_else(|| "HEAD".into()),
                            _ => String::new(),
                        })
                    )));
                }
                Ok(Pinned::Git {
                    url: url.clone(),
                    written: written.clone(),
                    revision: revisions.pop().unwrap_or_else(|| "HEAD".into()),
                    subdirectory: subdirectory.clone(),
                })
            }
            Declared::Hub { package, .. } => {
                let mut specs = Vec::new();
                let mut prerelease = false;
                for q in &w.requests {
                    if let Declared::Hub {
                        versions,
                        install_prerelease,
                        ..
                    } = &q.decl
                    {
                        if std::ptr::eq(q, w.first()) {
                            prerelease = *install_prerelease;
                        }
                        for v in versions {
                            let Some(s) = semver::Spec::parse(v) else {
                                return Err(Error::usage(format!(
                                    "package '{package}': \"{v}\" is not a version (write 1.2.3, >=1.0.0, <2.0.0 …)"
                                ))
                                .at(q.file.clone(), q.line));
                            };
                            specs.push(s);
                        }
                    }
                }
                let range = semver::reduce(&specs).map_err(|_| {
                    blame(format!(
                        "package '{package}': no version satisfies every requirement: {}; make the version ranges overlap",
                        describe(&w.requests, |d| match d {
                            Declared::Hub { versions, .. } => versions.join(", "),
                            _ => String::new(),
                        })
                    ))
                })?;
                let hub_base = self.hub().base.clone();
                let unreachable = |e: String| {
                    blame(format!(
                        "package '{package}': the dbt Hub at {hub_base} cannot be read ({e}); check the network or DBT_PACKAGE_HUB_URL, or declare the package with git: or local:"
                    ))
                };
                if !self.hub().lists(package).map_err(unreachable)? {
                    return Err(blame(format!(
                        "package '{package}' is not on the dbt Hub at {hub_base}; check its name (org/package, as hub.getdbt.com lists it), or declare it with git: or local:"
                    )));
                }
                let versions: Vec<(String, hub::HubVersion)> =
                    self.hub().versions(package).map_err(unreachable)?.to_vec();
                let dbt = semver::Spec::parse(DBT_VERSION).expect("a version");
                let compatible: Vec<String> = versions
                    .iter()
                    .filter(|(_, v)| {
                        let specs: Option<Vec<semver::Spec>> = v
                            .require_dbt_version
                            .iter()
                            .map(|s| semver::Spec::parse(s))
                            .collect();
                        match specs {
                            Some(mut s) => {
                                s.push(dbt.clone());
                                s.len() == 1 || semver::reduce(&s).is_ok()
                            }
                            None => true,
                        }
                    })
                    .map(|(k, _)| k.clone())
                    .collect();
                let asked_prerelease = specs.iter().any(|s| s.prerelease.is_some());
                let installable = semver::installable(&compatible, prerelease || asked_prerelease);
                let Some(version) = semver::highest_in(&range, &installable) else {
                    return Err(blame(format!(
                        "package '{package}': no version matches {} (versions on the Hub: {}); change version:{}",
                        range.text(),
                        if installable.is_empty() { "none".to_string() } else { installable.join(", ") },
                        if prerelease { "" } else { " (prereleases need install_prerelease: true)" }
                    )));
                };
                let tarball = versions
                    .iter()
                    .find(|(k, _)| k == version)
                    .map(|(_, v)| v.tarball.clone())
                    .unwrap_or_default();
                Ok(Pinned::Hub {
                    package: package.clone(),
                    version: version.to_string(),
                    latest: installable.last().cloned().unwrap_or_default(),
                    tarball,
                })
            }
        }
    }

    /// The pinned package's name and declarations: from the Hub's JSON, or from
    /// its files (a git package is cloned into the download directory).
    fn fetch(&mut self, p: &Pinned, r: &Request) -> Result<Fetched> {
        match p {
            Pinned::Hub {
                package, version, ..
            } => {
                let v = self
                    .hub()
                    .versions(package)
                    .map_err(Error::runtime)?
                    .iter()
                    .find(|(k, _)| k == version)
                    .map(|(_, v)| v.clone())
                    .ok_or_else(|| {
                        Error::runtime(format!(
                            "package '{package}': no version {version} on the Hub"
                        ))
                    })?;
                let origin = format!("{package} {version} (as the dbt Hub describes it)");
                let requests = v
                    .packages
                    .iter()
                    .map(|e| {
                        Ok(Request {
                            decl: project::declared_from_json(e, &origin, &self.vars)?,
                            origin: format!("package {package} {version}"),
                            file: r.file.clone(),
                            line: r.line,
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(Fetched {
                    name: v.name,
                    requests,
                    dir: None,
                })
            }
            Pinned::Tarball { url, written, name } => {
                let dir = self.download_tarball(url, written, r)?;
                let mut fetched = self.fetched_dir(dir, &format!("tarball package {written}"))?;
                // dbt installs it under the declared name, whatever its project says.
                fetched.name = name.clone();
                Ok(fetched)
            }
            Pinned::Local { path } => {
                let dir = absolute(&self.root.join(path));
                if !dir.join("dbt_project.yml").is_file() {
                    return Err(Error::usage(format!(
                        "local package '{path}': {} has no dbt_project.yml; fix the path",
                        dir.display()
                    ))
                    .at(r.file.clone(), r.line));
                }
                self.fetched_dir(dir, &format!("local package {path}"))
            }
            Pinned::Git {
                url,
                written,
                revision,
                subdirectory,
            } => {
                let clone = self.clone_git(url, written, revision, r)?;
                let dir = match subdirectory {
                    Some(s) => clone.join(s),
                    None => clone,
                };
                if !dir.join("dbt_project.yml").is_file() {
                    return Err(Error::usage(format!(
                        "git package '{written}': no dbt_project.yml at {}; fix subdirectory:",
                        subdirectory.as_deref().unwrap_or("the repository's top")
                    ))
                    .at(r.file.clone(), r.line));
                }
                self.fetched_dir(dir, &format!("git package {written}"))
            }
        }
    }

    fn fetched_dir(&self, dir: PathBuf, origin: &str) -> Result<Fetched> {
        let name = project::package_name(&dir)?;
        let mut requests = Vec::new();
        if let Some((file, entries)) = project::declared(&dir, &self.vars)? {
            for e in entries {
                requests.push(Request {
                    decl: e.decl,
                    origin: format!("{origin} ({file} line {})", e.line),
                    file: format!("{}/{file}", dir.display()),
                    line: Some(e.line),
                });
            }
        }
        Ok(Fetched {
            name,
            requests,
            dir: Some(dir),
        })
    }

    /// The tarball at `url` (shown as `written`) unpacked in the download
    /// directory (once per run): its one top directory.
    fn download_tarball(&mut self, url: &str, written: &str, r: &Request) -> Result<PathBuf> {
        let key = (format!("tarball {url}"), String::new());
        if let Some((_, dir)) = self.clones.iter().find(|(k, _)| *k == key) {
            return Ok(dir.clone());
        }
        std::fs::create_dir_all(&self.downloads).map_err(|e| {
            Error::runtime(format!("cannot create {}: {e}", self.downloads.display()))
        })?;
        let dir = self
            .downloads
            .join(format!("tarball-{}", self.clones.len()));
        self.hub().unpack(url, &dir).map_err(|e| {
            // The reason quotes the URL: shown only when it holds no rendered value.
            let why = if url == written {
                e
            } else {
                "the reason is not shown: it may quote the rendered URL".to_string()
            };
            Error::usage(format!(
                "tarball package '{written}': cannot download and unpack it ({why}); check the URL and the network"
            ))
            .at(r.file.clone(), r.line)
        })?;
        self.clones.push((key, dir.clone()));
        Ok(dir)
    }

    /// A clone of `url` (shown as `written`) at `revision` in the download
    /// directory (once per run).
    fn clone_git(
        &mut self,
        url: &str,
        written: &str,
        revision: &str,
        r: &Request,
    ) -> Result<PathBuf> {
        let key = (url.to_string(), revision.to_string());
        if let Some((_, dir)) = self.clones.iter().find(|(k, _)| *k == key) {
            return Ok(dir.clone());
        }
        let unpinned = revision == "HEAD" || revision == "main" || revision == "master";
        let warn = !matches!(
            r.decl,
            Declared::Git {
                warn_unpinned: false,
                ..
            }
        );
        if unpinned && warn && self.warned.insert(written.to_string()) {
            self.out.warn(
                "deps_unpinned",
                &format!("The git package \"{written}\" is pinned to the \"{revision}\" branch. As a result, new commits will be installed when running deps; pin it with a revision: (a tag or a commit)"),
            );
        }
        let dir = self.downloads.join(format!("git-{}", self.clones.len()));
        std::fs::create_dir_all(&self.downloads).map_err(|e| {
            Error::runtime(format!("cannot create {}: {e}", self.downloads.display()))
        })?;
        let rendered = (url != written).then_some(url);
        git(
            &["clone", "--quiet", url, &dir.display().to_string()],
            None,
            written,
            rendered,
        )?;
        if revision != "HEAD" {
            git(
                &["checkout", "--quiet", revision],
                Some(&dir),
                written,
                rendered,
            )?;
        }
        self.clones.push((key, dir.clone()));
        Ok(dir)
    }

    /// Installs the lock file's packages into `install` (an empty directory).
    pub(crate) fn install(&mut self, locked: &[(Declared, Value)], install: &Path) -> Result<()> {
        let mut upgradable: Vec<String> = Vec::new();
        for (decl, entry) in locked {
            let r = Request {
                decl: decl.clone(),
                origin: lock::LOCK_FILE.into(),
                file: lock::LOCK_FILE.into(),
                line: None,
            };
            let w = Wanted::new(r.clone());
            let pinned = self.pin(&w)?;
            let shown = match &pinned {
                Pinned::Tarball { name, .. } => name.clone(),
                _ => w.names[0].clone(),
            };
            self.out
                .info("deps_install", &format!("Installing {shown}"));
            let fetched = self.fetch(&pinned, &r)?;
            let name = entry
                .get("name")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or(fetched.name);
            let dest = install.join(&name);
            match &pinned {
                Pinned::Local { path } => {
                    link_or_copy(fetched.dir.as_deref().unwrap_or(Path::new(path)), &dest)?;
                    self.out.info(
                        "deps_installed",
                        &format!("Installed from <local @ {path}>"),
                    );
                }
                Pinned::Tarball { written, .. } => {
                    let dir = fetched.dir.expect("a fetched tarball has a directory");
                    copy_dir(&dir, &dest)?;
                    self.out.info(
                        "deps_installed",
                        &format!("Installed from tarball (url: {written})"),
                    );
                }
                Pinned::Git { written, .. } => {
                    let dir = fetched.dir.expect("a fetched git package has a directory");
                    let sha = git(&["rev-parse", "HEAD"], Some(&dir), written, None)?;
                    copy_dir(&dir, &dest)?;
                    self.out
                        .info("deps_installed", &format!("Installed from revision {sha}"));
                }
                Pinned::Hub {
                    package,
                    version,
                    latest,
                    tarball,
                } => {
                    self.hub().unpack(tarball, &dest).map_err(|e| {
                        Error::usage(format!(
                            "package '{package}' {version}: {e}; check the network or DBT_PACKAGE_HUB_URL"
                        ))
                        .at(lock::LOCK_FILE, None)
                    })?;
                    self.out.info(
                        "deps_installed",
                        &format!("Installed from version {version}"),
                    );
                    if latest != version {
                        upgradable.push(package.clone());
                        self.out.info(
                            "deps_update_available",
                            &format!("Updated version available: {latest}"),
                        );
                    } else {
                        self.out.info("deps_up_to_date", "Up to date!");
                    }
                }
            }
            if let Declared::Git {
                subdirectory: Some(s),
                ..
            } = decl
            {
                self.out
                    .info("deps_subdirectory", &format!("   and subdirectory {s}"));
            }
        }
        self.show_redirects();
        if !upgradable.is_empty() {
            let list: Vec<String> = upgradable.iter().map(|p| format!("'{p}'")).collect();
            self.out.info(
                "deps_updates",
                &format!(
                    "Updates available for packages: [{}] \nUpdate your versions in packages.yml, then run dbt deps",
                    list.join(", ")
                ),
            );
        }
        Ok(())
    }
}

/// Adds a request to the package it is for (its index in `fin`); a package
/// asked for as two kinds (git and Hub) is an error naming both.
fn incorporate(fin: &mut Vec<Wanted>, r: Request) -> Result<usize> {
    let names = names_of(&r.decl);
    match fin
        .iter()
        .position(|w| w.names.iter().any(|n| names.contains(n)))
    {
        Some(i) => {
            let first = fin[i].first();
            if kind(&first.decl) != kind(&r.decl) {
                return Err(Error::usage(format!(
                    "package {} is declared as a {} package ({}) and as a {} package ({}); declare it one way",
                    names[0],
                    kind(&first.decl),
                    first.origin,
                    kind(&r.decl),
                    r.origin
                ))
                .at(r.file.clone(), r.line));
            }
            fin[i].requests.push(r);
            Ok(i)
        }
        None => {
            fin.push(Wanted::new(r));
            Ok(fin.len() - 1)
        }
    }
}

/// `X (origin) and Y (origin)`: each request's version and where it is from.
fn describe(requests: &[Request], version: impl Fn(&Declared) -> String) -> String {
    requests
        .iter()
        .map(|q| format!("{} ({})", version(&q.decl), q.origin))
        .collect::<Vec<_>>()
        .join(" and ")
}

/// Runs `git` (in `cwd`), returning its trimmed stdout; a failure names the
/// package by `url` as written. When the URL given to git was `rendered` from
/// Jinja (a token in it), git's own message is not shown: it may quote it.
fn git(args: &[&str], cwd: Option<&Path>, url: &str, rendered: Option<&str>) -> Result<String> {
    let mut cmd = Command::new("git");
    cmd.args(args).env("GIT_TERMINAL_PROMPT", "0");
    if let Some(d) = cwd {
        cmd.current_dir(d);
    }
    let output = cmd.output().map_err(|e| {
        Error::runtime(format!("git package '{url}': cannot run git: {e}; install git or declare the package with local:"))
    })?;
    if !output.status.success() {
        let err = String::from_utf8_lossy(&output.stderr);
        let line = err
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim();
        let line = match rendered {
            Some(_) => "(git's message is not shown: it may quote the rendered URL)",
            None => line,
        };
        return Err(Error::runtime(format!(
            "git package '{url}': git {} failed: {line}",
            args.first().copied().unwrap_or("")
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

fn link_or_copy(src: &Path, dest: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        if std::os::unix::fs::symlink(src, dest).is_ok() {
            return Ok(());
        }
    }
    copy_dir(src, dest)
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    let err = |e: std::io::Error| {
        Error::runtime(format!(
            "cannot copy {} to {}: {e}",
            from.display(),
            to.display()
        ))
    };
    std::fs::create_dir_all(to).map_err(err)?;
    for e in std::fs::read_dir(from).map_err(err)? {
        let e = e.map_err(err)?;
        if e.file_name() == ".git" {
            continue;
        }
        let target = to.join(e.file_name());
        if e.file_type().map_err(err)?.is_dir() {
            copy_dir(&e.path(), &target)?;
        } else {
            std::fs::copy(e.path(), &target).map_err(err)?;
        }
    }
    Ok(())
}

fn absolute(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}
