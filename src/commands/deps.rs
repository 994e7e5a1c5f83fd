//! `deps`: installs the packages `packages.yml` (else `dependencies.yml`)
//! declares into `packages-install-path` (default `dbt_packages/`), as `dbt deps`
//! does: `local:` packages as a symbolic link to their directory, `git:` packages
//! cloned with the system `git` (`revision`, `subdirectory`), each under the name
//! of its `dbt_project.yml`; then writes `package-lock.yml`. Hub and tarball
//! packages are refused as not supported yet, before anything is removed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use crate::console::Output;
use crate::error::{Error, Result};
use crate::project::{self, Declared};
use crate::settings::Settings;

use super::Invocation;

pub(super) fn deps(_inv: &Invocation, settings: Arc<Settings>, out: &Output) -> Result<i32> {
    let dir = settings.project_dir.clone();
    let pf = project::project_file(&dir)?;
    let Some((file, entries)) = project::declared(&dir)? else {
        out.warn(
            "deps_no_packages",
            "Warning: No packages were found in packages.yml",
        );
        return Ok(0);
    };
    if entries.is_empty() {
        out.warn(
            "deps_no_packages",
            &format!("Warning: No packages were found in {file}"),
        );
        return Ok(0);
    }
    let install = dir.join(&pf.packages_install_path);
    match std::fs::remove_dir_all(&install) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(Error::runtime(format!(
                "cannot remove {}: {e}",
                install.display()
            )))
        }
    }
    std::fs::create_dir_all(&install)
        .map_err(|e| Error::runtime(format!("cannot create {}: {e}", install.display())))?;
    let mut lock: Vec<String> = Vec::new();
    for (i, (decl, _)) in entries.iter().enumerate() {
        match decl {
            Declared::Local { path } => {
                let src = absolute(&dir.join(path));
                if !src.join("dbt_project.yml").is_file() {
                    return Err(Error::in_file(
                        file.clone(),
                        format!(
                            "local package '{path}': {} has no dbt_project.yml; fix the path",
                            src.display()
                        ),
                    ));
                }
                let name = project::package_name(&src)?;
                out.info("deps_install", &format!("Installing {path}"));
                link_or_copy(&src, &install.join(&name))?;
                out.info(
                    "deps_installed",
                    &format!("Installed from <local @ {path}>"),
                );
                lock.push(format!(
                    "  - local: {}\n    name: {}\n",
                    yaml_str(path),
                    yaml_str(&name)
                ));
            }
            Declared::Git {
                url,
                revision,
                subdirectory,
                warn_unpinned,
            } => {
                out.info("deps_install", &format!("Installing {url}"));
                let tmp = install.join(format!(".clone-{i}"));
                git(
                    &["clone", "--quiet", url, &tmp.display().to_string()],
                    None,
                    url,
                )?;
                if let Some(rev) = revision {
                    git(&["checkout", "--quiet", rev], Some(&tmp), url)?;
                } else if *warn_unpinned {
                    out.warn(
                        "deps_unpinned",
                        &format!("The git package \"{url}\" is not pinned. As a result, new commits will be installed when running deps; pin it with a revision: (a tag or a commit)"),
                    );
                }
                let sha = git(&["rev-parse", "HEAD"], Some(&tmp), url)?;
                let src = match subdirectory {
                    Some(sub) => tmp.join(sub),
                    None => tmp.clone(),
                };
                if !src.join("dbt_project.yml").is_file() {
                    return Err(Error::in_file(
                        file.clone(),
                        format!(
                            "git package '{url}': no dbt_project.yml at {}; fix subdirectory:",
                            subdirectory.as_deref().unwrap_or("the repository's top")
                        ),
                    ));
                }
                let name = project::package_name(&src)?;
                let dest = install.join(&name);
                std::fs::rename(&src, &dest).map_err(|e| {
                    Error::runtime(format!(
                        "cannot move the clone of {url} to {}: {e}",
                        dest.display()
                    ))
                })?;
                let _ = std::fs::remove_dir_all(&tmp);
                let _ = std::fs::remove_dir_all(dest.join(".git"));
                out.info(
                    "deps_installed",
                    &format!(
                        "Installed from revision {}",
                        revision.as_deref().unwrap_or("HEAD")
                    ),
                );
                let mut entry = format!(
                    "  - git: {}\n    name: {}\n    revision: {}\n",
                    yaml_str(url),
                    yaml_str(&name),
                    yaml_str(&sha)
                );
                if let Some(sub) = subdirectory {
                    entry.push_str(&format!("    subdirectory: {}\n", yaml_str(sub)));
                }
                lock.push(entry);
            }
        }
    }
    let text = format!(
        "packages:\n{}sha1_hash: {}\n",
        lock.concat(),
        declared_hash(entries.iter().map(|(_, j)| j))
    );
    let lock_path = dir.join("package-lock.yml");
    std::fs::write(&lock_path, text)
        .map_err(|e| Error::runtime(format!("cannot write {}: {e}", lock_path.display())))?;
    out.info(
        "deps_lock",
        &format!("Updating lock file in file path: {}", lock_path.display()),
    );
    Ok(0)
}

/// dbt's `sha1_hash` of the declared entries: each entry with itself as its
/// `unrendered` form (packages.yml is not rendered here), as sorted-key JSON, the
/// lines sorted; a changed `packages.yml` changes it.
fn declared_hash<'a>(entries: impl Iterator<Item = &'a serde_json::Value>) -> String {
    let mut lines: Vec<String> = entries
        .map(|e| {
            let mut with = e.clone();
            if let serde_json::Value::Object(m) = &mut with {
                m.insert("unrendered".into(), e.clone());
            }
            sorted_json(&with)
        })
        .collect();
    lines.sort();
    let digest = ring::digest::digest(
        &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        lines.join("\n").as_bytes(),
    );
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn sorted_json(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .into_iter()
                .map(|k| {
                    format!(
                        "{}: {}",
                        serde_json::Value::String(k.clone()),
                        sorted_json(&m[k])
                    )
                })
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
        other => other.to_string(),
    }
}

/// A YAML scalar: plain when safe, else single-quoted.
fn yaml_str(s: &str) -> String {
    let plain = !s.is_empty()
        && !s.starts_with(['-', '@'])
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._/-+@".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "''"))
    }
}

/// Runs `git` (in `cwd`), returning its trimmed stdout; a failure names the package.
fn git(args: &[&str], cwd: Option<&Path>, url: &str) -> Result<String> {
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
