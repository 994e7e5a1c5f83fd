//! `deps`: installs the packages `packages.yml` (or `dependencies.yml`) declares
//! into `packages-install-path` (default `dbt_packages/`), as `dbt deps` does:
//! `--add-package` first adds one to the file; the declarations are resolved
//! (with the packages they declare in turn) into `package-lock.yml` when there is
//! none, when it was written for other declarations (its `sha1_hash`) or with
//! `--upgrade`; then, unless `--lock`, the install path is emptied and the lock
//! file's packages are installed. No database: only the project is read.

use std::path::Path;
use std::sync::Arc;

use serde_json::{json, Value};

use crate::cli::{DepsArgs, PackageSource};
use crate::console::Output;
use crate::error::{Error, Result};
use crate::install::{lock, Installer, Request};
use crate::project;
use crate::settings::Settings;

use super::Invocation;

pub(super) fn deps(
    _inv: &Invocation,
    settings: Arc<Settings>,
    args: &DepsArgs,
    out: &Output,
) -> Result<i32> {
    let dir = settings.project_dir.clone();
    let pf = project::project_file(&dir)?;
    if let Some(spec) = &args.add_package {
        add_package(&dir, spec, args.source, out)?;
    }
    let vars = project::InvocationVars(settings.vars.clone());
    let Some((file, mut entries)) = project::declared(&dir, &vars)? else {
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
    if args.add_package.is_some() {
        // dbt hashes the declarations it just wrote without their written form
        // (so the next `deps` writes the lock file again, as dbt's does).
        for e in &mut entries {
            e.hash_form["unrendered"] = json!({});
        }
    }
    let hash = lock::declared_hash(&entries);
    let mut installer = Installer::new(&dir, &pf.name, out, vars.clone());
    let current = lock::read(&dir, &vars)?.and_then(|l| l.sha1_hash);
    if args.upgrade || current.as_deref() != Some(hash.as_str()) {
        let requests = entries
            .into_iter()
            .map(|e| Request {
                decl: e.decl,
                origin: format!("{file} line {}", e.line),
                file: file.clone(),
                line: Some(e.line),
            })
            .collect();
        let pins = installer.resolve(requests)?;
        let path = lock::write(&dir, pins.into_iter().map(|(_, e)| e).collect(), &hash)?;
        out.info(
            "deps_lock",
            &format!("Updating lock file in file path: {}", path.display()),
        );
    }
    if args.lock {
        return Ok(0);
    }
    let locked = lock::read(&dir, &vars)?
        .map(|l| l.entries)
        .unwrap_or_default();
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
    if locked.is_empty() {
        out.warn(
            "deps_no_packages",
            &format!("Warning: No packages were found in {}", lock::LOCK_FILE),
        );
        return Ok(0);
    }
    installer.install(&locked, &install)?;
    Ok(0)
}

/// `--add-package name@version`: the package written into the declaring file
/// (packages.yml, created when missing), replacing entries that name it, the
/// file rewritten as dbt writes it (keys sorted).
fn add_package(dir: &Path, spec: &str, source: PackageSource, out: &Output) -> Result<()> {
    let (name, version) = match spec.split_once('@') {
        Some((n, v)) => (n.to_string(), Some(v.to_string())),
        None => (spec.to_string(), None),
    };
    let (key, version_key, label) = match source {
        PackageSource::Hub => ("package", "version", "hub"),
        PackageSource::Git => ("git", "revision", "git"),
        PackageSource::Local => ("local", "version", "local"),
    };
    if version.is_none() && source != PackageSource::Local {
        return Err(Error::usage(format!(
            "--add-package {spec}: a version is required when the source is {label}; write name@version"
        )));
    }
    let file = if !dir.join("packages.yml").is_file()
        && std::fs::read_to_string(dir.join("dependencies.yml"))
            .is_ok_and(|t| t.lines().any(|l| l.starts_with("packages:")))
    {
        "dependencies.yml"
    } else {
        "packages.yml"
    };
    let path = dir.join(file);
    let mut doc = match std::fs::read_to_string(&path) {
        Ok(text) => project::parse_yaml(&text, file)?,
        Err(_) => {
            out.info("deps_created", "Created packages.yml");
            json!({ "packages": [] })
        }
    };
    let mut entry = serde_json::Map::new();
    entry.insert(key.into(), json!(name));
    if let Some(v) = &version {
        let v = if v.contains(',') {
            json!(v.split(',').collect::<Vec<_>>())
        } else {
            json!(v)
        };
        entry.insert(version_key.into(), v);
    }
    let Some(list) = doc.get_mut("packages").and_then(Value::as_array_mut) else {
        return Err(Error::in_file(
            file,
            "packages: expected a list of packages; fix it before --add-package",
        ));
    };
    list.retain(|e| {
        let names_it = e.as_object().is_some_and(|m| {
            m.values().any(|v| match v {
                Value::String(s) => s.contains(&name),
                Value::Array(a) => a.iter().any(|x| x.as_str() == Some(&name)),
                _ => false,
            })
        });
        if names_it {
            out.info(
                "deps_duplicate",
                &format!("Found duplicate package in packages.yml, removing: {e}"),
            );
        }
        !names_it
    });
    list.push(Value::Object(entry));
    std::fs::write(&path, lock::to_yaml(&doc))
        .map_err(|e| Error::runtime(format!("cannot write {}: {e}", path.display())))?;
    out.info(
        "deps_add",
        &format!(
            "Added new package {name}@{} to {}",
            version.as_deref().unwrap_or("None"),
            path.display()
        ),
    );
    Ok(())
}
