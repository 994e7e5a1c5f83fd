//! Project loading: reads a dbt-format project from disk, with dbt-core 1.x
//! semantics for `dbt_project.yml`, the YAML property files (sources, model and
//! column properties, data tests) and the model, macro and singular-test `.sql`
//! files. Nothing here renders Jinja or talks to a database: the result is plain
//! data that [`crate::render`] turns into nodes.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value};

use crate::cancel::Cancel;
use crate::error::{Error, Result};
use crate::manifest::Quoting;

pub(crate) mod builtin;
mod config;
mod contract;
mod dbt_project;
mod docs;
mod files;
mod grants;
mod hooks;
mod indexes;
mod keys;
mod macro_source;
mod microbatch;
mod packages;
mod properties;
mod session_settings;
mod snapshots;
mod unit_tests;
mod yaml;

pub(crate) use config::{
    check_call_config, check_rendered_config, merge_config, tree_config, valid_condition,
    FreshnessPolicy, Threshold, Warnings,
};
pub(crate) use contract::{py_str, Constraint, ConstraintKind, Contract, ToRelation};
pub(crate) use docs::DocBlock;
pub(crate) use files::{file_checksum, SqlFile};
pub(crate) use grants::{grants_of, Grants};
pub(crate) use hooks::{Hook, Hooks};
pub(crate) use indexes::Index;
pub(crate) use keys::Resource;
pub(crate) use macro_source::{calls as macro_calls, macro_sql};
pub(crate) use microbatch::{
    batch_id, format_batch_start, is_microbatch, python_str, Batch, BatchSize, EventWindow,
    Microbatch,
};
pub(crate) use packages::{
    declared, declared_from_json, package_name, Declared, DeclaredEntry, InvocationVars, Package,
};
pub(crate) use properties::{Column, ModelProps, PropertyEntry, SourceTable};
pub(crate) use session_settings::session_settings;
pub(crate) use snapshots::{HardDeletes, SnapshotConfig, Strategy as SnapshotStrategy};
pub(crate) use unit_tests::{parse_input, Input, Overrides, Rows, UnitTestDef};
pub(crate) use yaml::{parse_yaml, Yaml, YamlValue};

/// Config as written (see [`Project::as_written`]): the trees of
/// `dbt_project.yml` and each node's YAML `config:`, by resource and name.
#[derive(Debug, Clone, Default)]
pub(crate) struct AsWritten {
    pub(crate) models_config: Value,
    pub(crate) seeds_config: Value,
    pub(crate) analyses_config: Value,
    pub(crate) model_props: BTreeMap<String, serde_json::Map<String, Value>>,
    pub(crate) seed_props: BTreeMap<String, serde_json::Map<String, Value>>,
    pub(crate) analysis_props: BTreeMap<String, serde_json::Map<String, Value>>,
}

/// A dbt project as read from disk.
#[derive(Debug, Clone)]
pub(crate) struct Project {
    pub(crate) name: String,
    pub(crate) model_paths: Vec<String>,
    pub(crate) macro_paths: Vec<String>,
    pub(crate) test_paths: Vec<String>,
    pub(crate) seed_paths: Vec<String>,
    /// `target-path`, relative to the project directory unless absolute.
    pub(crate) target_path: String,
    /// Project-level `vars:` (global ones and those scoped to this project).
    pub(crate) vars: Map<String, Value>,
    /// The `models:` config tree of `dbt_project.yml`.
    pub(crate) models_config: Value,
    /// The config trees and YAML `config:` blocks as written, before their
    /// Jinja is rendered (dbt's `unrendered_config`); filled when they are
    /// rendered.
    pub(crate) as_written: AsWritten,
    /// The `data_tests:` (or `tests:`) config tree of `dbt_project.yml`.
    pub(crate) tests_config: Value,
    /// The `seeds:` config tree of `dbt_project.yml`.
    pub(crate) seeds_config: Value,
    /// `on-run-start` and `on-run-end` of `dbt_project.yml` (Jinja).
    pub(crate) on_run_start: Vec<String>,
    pub(crate) on_run_end: Vec<String>,
    /// Sources disabled by config (`source.table`), so a `source()` to one can say so.
    pub(crate) disabled_sources: Vec<String>,
    /// Deprecations and custom keys found while reading, shown once loaded.
    pub(crate) warnings: Vec<String>,
    /// Docs blocks by name.
    pub(crate) docs: BTreeMap<String, DocBlock>,
    pub(crate) models: Vec<SqlFile>,
    pub(crate) macros: Vec<SqlFile>,
    /// Singular data tests: `.sql` files in the test paths (outside `generic/`).
    pub(crate) singular_tests: Vec<SqlFile>,
    pub(crate) sources: Vec<SourceTable>,
    /// Model properties from YAML, by model name.
    pub(crate) model_props: BTreeMap<String, ModelProps>,
    /// Seeds: the `.csv` files of the seed paths (contents not read).
    pub(crate) seeds: Vec<SqlFile>,
    /// Seed properties from YAML, by seed name.
    pub(crate) seed_props: BTreeMap<String, ModelProps>,
    /// Each seed's file checksum as dbt's manifest gives it (`state:modified`).
    pub(crate) seed_checksums: BTreeMap<String, Value>,
    pub(crate) analysis_paths: Vec<String>,
    /// Analyses: the `.sql` files of the analysis paths (compiled, never run).
    pub(crate) analyses: Vec<SqlFile>,
    /// Analysis properties from YAML, by analysis name.
    pub(crate) analysis_props: BTreeMap<String, ModelProps>,
    /// Snapshots: one per `{% snapshot %}` block or YAML entry with `relation:`,
    /// its content the snapshot's select (see `snapshots`).
    pub(crate) snapshots: Vec<SqlFile>,
    /// Snapshot properties from YAML, by snapshot name.
    pub(crate) snapshot_props: BTreeMap<String, ModelProps>,
    /// YAML snapshots' `relation:` (name → (relation, the YAML file, line)).
    pub(crate) snapshot_relations: BTreeMap<String, (String, SqlFile, usize)>,
    /// The `snapshots:` config tree of `dbt_project.yml`.
    pub(crate) snapshots_config: Value,
    /// The `analyses:` config tree of `dbt_project.yml`.
    pub(crate) analyses_config: Value,
    /// `quoting:` of `dbt_project.yml`.
    pub(crate) quoting: Quoting,
    /// Exposures, metrics, semantic models, saved queries and groups as written.
    pub(crate) entries: Vec<PropertyEntry>,
    /// Versioned models: model file name → (model name, version).
    pub(crate) model_versions: BTreeMap<String, (String, String)>,
    /// Installed packages (the root project's only).
    pub(crate) packages: Vec<Package>,
    /// A package's `packages-install-path` directory (`dbt_packages/<dir>`),
    /// the prefix of its files' paths; `None` for the root project.
    pub(crate) package_dir: Option<String>,
    /// dbt's checksum of its `dbt_project.yml` (that of its run hooks' nodes).
    pub(crate) project_file_checksum: Value,
    /// `dispatch:` of `dbt_project.yml`: macro namespace → packages searched.
    pub(crate) dispatch: Vec<(String, Vec<String>)>,
    /// Unit tests of the property files.
    pub(crate) unit_tests: Vec<UnitTestDef>,
    /// `unit_tests:` lists as written (file, value), read once the fixture
    /// files are known.
    unit_test_yaml: Vec<(String, Yaml)>,
    /// Unit test fixture files (`<test path>/fixtures/**.csv|.sql`) by stem.
    fixtures: BTreeMap<String, SqlFile>,
}

impl Project {
    /// A path of one of this project's files as within the project: a
    /// package's without its `dbt_packages/<dir>/` prefix.
    pub(crate) fn local_path<'a>(&self, file: &'a str) -> &'a str {
        self.package_dir
            .as_ref()
            .and_then(|d| file.strip_prefix(d.as_str()))
            .and_then(|f| f.strip_prefix('/'))
            .unwrap_or(file)
    }

    /// The root project, then each installed package (as a project).
    pub(crate) fn with_packages(&self) -> impl Iterator<Item = &Project> {
        std::iter::once(self).chain(self.packages.iter().map(|p| &*p.project))
    }

    /// The name, version and properties of the model in file `m`: a versioned
    /// model's file is a version of the model its YAML names.
    pub(crate) fn model_identity(
        &self,
        m: &SqlFile,
    ) -> (String, Option<String>, Option<ModelProps>) {
        match self.model_versions.get(&m.name) {
            Some((model, v)) => {
                let props = self.model_props.get(model).map(|p| p.for_version(v));
                (model.clone(), Some(v.clone()), props)
            }
            None => (m.name.clone(), None, self.model_props.get(&m.name).cloned()),
        }
    }
}

/// Reads `dir`'s `dbt_project.yml` only (what `clean` and the log file need).
pub(crate) fn project_file(dir: &Path) -> Result<dbt_project::ProjectFile> {
    read_project_file(dir, &mut Warnings::default())
}

fn read_project_file(dir: &Path, warnings: &mut Warnings) -> Result<dbt_project::ProjectFile> {
    let path = dir.join("dbt_project.yml");
    let file = path.display().to_string();
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Error::usage(format!(
            "cannot read {file}: {e}; point --project-dir (or the project_dir setting) at the directory holding dbt_project.yml"
        ))
    })?;
    dbt_project::read(&yaml::parse(&text, &file)?, &file, warnings)
}

/// `dir`'s `selectors.yml` as JSON, with its path for messages; `None` when
/// there is none.
pub(crate) fn selectors_yml(dir: &Path) -> Result<Option<(Value, String)>> {
    let path = dir.join("selectors.yml");
    let file = path.display().to_string();
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some((yaml::parse_yaml(&text, &file)?, file))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::usage(format!(
            "cannot read {file}: {e}; check its permissions"
        ))),
    }
}

/// Reads the project in `dir`, with its installed packages.
pub(crate) fn load(dir: &Path, vars: &InvocationVars, cancel: &Cancel) -> Result<Project> {
    load_at(dir, None, vars, cancel)
}

/// Reads the project in `dir`, or with `package` (its directory relative to
/// `dir`, `dbt_packages/<dir>`) that installed package, whose files keep paths
/// relative to `dir` (what messages name) and which has no packages of its own.
fn load_at(
    dir: &Path,
    package: Option<&str>,
    vars: &InvocationVars,
    cancel: &Cancel,
) -> Result<Project> {
    let mut warnings = Warnings::default();
    let prefix = package.map(|p| format!("{p}/")).unwrap_or_default();
    let pf = read_project_file(&dir.join(&prefix), &mut warnings)?;
    let sources_tree = pf.sources.clone();
    let mut project = Project {
        name: pf.name,
        model_paths: pf.model_paths,
        macro_paths: pf.macro_paths,
        test_paths: pf.test_paths,
        seed_paths: pf.seed_paths.clone(),
        target_path: pf.target_path,
        vars: pf.vars,
        models_config: pf.models,
        as_written: AsWritten::default(),
        tests_config: pf.data_tests,
        seeds_config: pf.seeds,
        on_run_start: pf.on_run_start,
        on_run_end: pf.on_run_end,
        disabled_sources: Vec::new(),
        warnings: Vec::new(),
        docs: BTreeMap::new(),
        models: Vec::new(),
        macros: Vec::new(),
        singular_tests: Vec::new(),
        sources: Vec::new(),
        model_props: BTreeMap::new(),
        seeds: Vec::new(),
        seed_props: BTreeMap::new(),
        seed_checksums: BTreeMap::new(),
        analysis_paths: pf.analysis_paths.clone(),
        analyses: Vec::new(),
        analysis_props: BTreeMap::new(),
        analyses_config: pf.analyses,
        snapshots: Vec::new(),
        snapshot_props: BTreeMap::new(),
        snapshot_relations: BTreeMap::new(),
        snapshots_config: pf.snapshots,
        quoting: pf.quoting,
        entries: Vec::new(),
        model_versions: BTreeMap::new(),
        packages: Vec::new(),
        package_dir: package.map(str::to_string),
        project_file_checksum: file_checksum(
            &std::fs::read_to_string(dir.join(&prefix).join("dbt_project.yml")).unwrap_or_default(),
        ),
        dispatch: pf.dispatch,
        unit_tests: Vec::new(),
        unit_test_yaml: Vec::new(),
        fixtures: BTreeMap::new(),
    };
    if package.is_none() {
        project.packages =
            packages::load(dir, &pf.packages_install_path, &project.name, vars, cancel)?;
        // Config trees under an installed package's name apply to its nodes,
        // checked as the project's own.
        for p in &project.packages {
            let unused = format!("(no package named '{}' is installed)", p.name);
            warnings.0.retain(|w| !w.ends_with(&unused));
        }
        if !project.packages.is_empty() {
            let path = dir.join("dbt_project.yml");
            let file = path.display().to_string();
            let text = std::fs::read_to_string(&path)
                .map_err(|e| Error::usage(format!("cannot read {file}: {e}")))?;
            let names: Vec<&str> = project.packages.iter().map(|p| p.name.as_str()).collect();
            config::check_package_trees(&yaml::parse(&text, &file)?, &names, &file, &mut warnings)?;
        }
    }
    // `vars:` keys named after a package are that package's, not global: its
    // nodes see the package's own `vars:`, then the root's global ones, then the
    // root's scoped to it (dbt's order; `--vars` come last, when rendering).
    // The root's block scoped to itself stays the root's.
    let mut global = pf.global_vars;
    let mut scoped = Vec::new();
    for p in &project.packages {
        if p.name != project.name {
            scoped.push(project.vars.remove(&p.name));
            global.remove(&p.name);
        }
    }
    for (p, root_scoped) in project.packages.iter_mut().zip(scoped) {
        for (k, v) in &global {
            p.project.vars.insert(k.clone(), v.clone());
        }
        if let Some(Value::Object(m)) = root_scoped {
            p.project.vars.extend(m);
        }
    }
    let mut yml_files = Vec::new();
    let is_yml = |f: &SqlFile| {
        f.original_file_path.ends_with(".yml") || f.original_file_path.ends_with(".yaml")
    };
    for mp in project.model_paths.clone() {
        for f in files::walk(dir, &format!("{prefix}{mp}"), cancel)? {
            if f.original_file_path.ends_with(".sql") {
                project.models.push(f);
            } else if f.original_file_path.ends_with(".py") {
                return Err(Error::in_file(
                    f.original_file_path,
                    "Python models are not supported; write the model in SQL",
                ));
            } else if is_yml(&f) {
                yml_files.push(f);
            }
        }
    }
    for mp in project.macro_paths.clone() {
        for f in files::walk(dir, &format!("{prefix}{mp}"), cancel)? {
            if f.original_file_path.ends_with(".sql") {
                project.macros.push(f);
            } else if is_yml(&f) {
                yml_files.push(f);
            }
        }
    }
    for tp in project.test_paths.clone() {
        for f in files::walk(dir, &format!("{prefix}{tp}"), cancel)? {
            if is_yml(&f) {
                yml_files.push(f);
                continue;
            }
            // Unit test fixtures: `fixtures/` of a test path, CSV or SQL.
            if f.path.starts_with("fixtures/") {
                if f.original_file_path.ends_with(".csv") || f.original_file_path.ends_with(".sql")
                {
                    project.fixtures.insert(f.name.clone(), f);
                }
                continue;
            }
            if !f.original_file_path.ends_with(".sql") {
                continue;
            }
            // tests/generic/*.sql hold generic test definitions, like macros.
            if f.path.starts_with("generic/") {
                project.macros.push(f);
            } else {
                project.singular_tests.push(f);
            }
        }
    }

    for ap in project.analysis_paths.clone() {
        for f in files::walk(dir, &format!("{prefix}{ap}"), cancel)? {
            if f.original_file_path.ends_with(".sql") {
                project.analyses.push(f);
            } else if is_yml(&f) {
                yml_files.push(f);
            }
        }
    }
    for sp in &pf.snapshot_paths {
        for f in files::walk(dir, &format!("{prefix}{sp}"), cancel)? {
            if f.original_file_path.ends_with(".sql") {
                project.snapshots.extend(snapshots::blocks_of(&f)?);
            } else if is_yml(&f) {
                yml_files.push(f);
            }
        }
    }
    let mut analysis_names: BTreeMap<String, String> = BTreeMap::new();
    for a in &project.analyses {
        if let Some(other) = analysis_names.insert(a.name.clone(), a.original_file_path.clone()) {
            return Err(Error::usage(format!(
                "two analyses are named '{}': {} and {}; rename one of the files",
                a.name, other, a.original_file_path
            )));
        }
    }

    for sp in project.seed_paths.clone() {
        let is_csv = |name: &str| name.ends_with(".csv");
        for f in files::walk_reading(dir, &format!("{prefix}{sp}"), cancel, &|name| !is_csv(name))?
        {
            if is_csv(&f.original_file_path) {
                let checksum = files::seed_checksum(dir, &f.original_file_path);
                project.seed_checksums.insert(f.name.clone(), checksum);
                project.seeds.push(f);
            } else if is_yml(&f) {
                yml_files.push(f);
            }
        }
    }

    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for s in &project.seeds {
        if let Some(other) = seen.insert(s.name.clone(), s.original_file_path.clone()) {
            return Err(Error::usage(format!(
                "two seeds are named '{}': {} and {}; rename one of the files",
                s.name, other, s.original_file_path
            )));
        }
    }
    let seeds = std::mem::take(&mut seen);
    for m in &project.models {
        if let Some(seed) = seeds.get(&m.name) {
            return Err(Error::usage(format!(
                "a model and a seed are both named '{}': {} and {}; rename one of the files, ref() could not tell them apart",
                m.name, m.original_file_path, seed
            )));
        }
        if let Some(other) = seen.insert(m.name.clone(), m.original_file_path.clone()) {
            return Err(Error::usage(format!(
                "two models are named '{}': {} and {}; rename one of the files",
                m.name, other, m.original_file_path
            )));
        }
    }

    // A folder that is both a model path and a seed path is read once.
    let mut read_yml = std::collections::BTreeSet::new();
    yml_files.retain(|f| read_yml.insert(f.original_file_path.clone()));
    // The YAML is parsed on the available cores, then read in the files' order.
    let (docs, _) = crate::parallel::map_with(
        &yml_files,
        crate::parallel::cores(),
        || (),
        |_, f| yaml::parse(&f.content, &f.original_file_path),
    );
    for (f, doc) in yml_files.iter().zip(docs) {
        properties::read_properties(&mut project, f, doc?, &mut warnings)?;
    }
    resolve_versions(&mut project, &seen, &mut warnings)?;
    for (name, (relation, file, line)) in std::mem::take(&mut project.snapshot_relations) {
        project
            .snapshots
            .push(snapshots::yaml_snapshot(&name, &relation, &file, line)?);
    }
    check_snapshot_names(&project, &seen)?;
    for (file, value) in std::mem::take(&mut project.unit_test_yaml) {
        unit_tests::read(&value, &file, &project.fixtures, &mut project.unit_tests)?;
    }
    // Docs blocks: the docs paths, else every resource path (each folder once).
    let mut docs_paths = pf.docs_paths.clone().unwrap_or_else(|| {
        [
            &project.model_paths,
            &pf.seed_paths,
            &project.test_paths,
            &pf.analysis_paths,
            &project.macro_paths,
            &pf.snapshot_paths,
        ]
        .into_iter()
        .flatten()
        .cloned()
        .collect()
    });
    docs_paths.dedup();
    for dp in &docs_paths {
        // Only the .md files are read: the docs paths also hold seeds' CSV files.
        let is_md = |name: &str| name.ends_with(".md");
        for f in files::walk_reading(dir, &format!("{prefix}{dp}"), cancel, &is_md)? {
            if is_md(&f.original_file_path) {
                docs::read(&f, &mut project.docs)?;
            }
        }
    }
    apply_source_configs(&mut project, &sources_tree);
    project.warnings = warnings.0;
    Ok(project)
}

/// Snapshot names are unique, and no model or seed has one: `ref()` could not
/// tell them apart.
fn check_snapshot_names(project: &Project, models: &BTreeMap<String, String>) -> Result<()> {
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for s in &project.snapshots {
        if let Some(other) = seen.insert(&s.name, &s.original_file_path) {
            return Err(Error::usage(format!(
                "two snapshots are named '{}': {} and {}; rename one of them",
                s.name, other, s.original_file_path
            )));
        }
        let clash = models.get(&s.name).or_else(|| {
            project
                .seeds
                .iter()
                .find(|x| x.name == s.name)
                .map(|x| &x.original_file_path)
        });
        if let Some(other) = clash {
            return Err(Error::usage(format!(
                "a snapshot and a model or seed are both named '{}': {} and {}; rename one of them, ref() could not tell them apart",
                s.name, s.original_file_path, other
            )));
        }
    }
    Ok(())
}

/// dbt's versioned models: each version of a YAML entry with `versions:` is the
/// model file named by its `defined_in`, else `<model>_v<v>` (the latest version
/// may also be the file named after the model). `models` maps every model file
/// name to its path.
fn resolve_versions(
    project: &mut Project,
    models: &BTreeMap<String, String>,
    warnings: &mut Warnings,
) -> Result<()> {
    for (name, props) in &project.model_props {
        if props.versions.is_empty() {
            continue;
        }
        for v in &props.versions {
            let mut file = props.version_file(name, v);
            if !models.contains_key(&file)
                && props.latest_version.as_deref() == Some(v.v.as_str())
                && models.contains_key(name)
            {
                file = name.clone();
            }
            if !models.contains_key(&file) {
                // dbt warns (NoNodeForYamlKey) and goes on without that version.
                warnings.push(format!(
                    "Did not find matching node for patch with name '{file}' in the 'models' section of file '{}'",
                    props.file
                ));
                continue;
            }
            if let Some((other, ov)) = project.model_versions.get(&file) {
                return Err(Error::in_file(
                    props.file.clone(),
                    format!(
                        "model file '{file}' is both version {ov} of model '{other}' and version {} of model '{name}'; give each version its own file (defined_in)",
                        v.v
                    ),
                ));
            }
            project
                .model_versions
                .insert(file, (name.clone(), v.v.clone()));
        }
        if let Some(path) = models.get(name) {
            if !project.model_versions.contains_key(name) {
                return Err(Error::in_file(
                    path.clone(),
                    format!(
                        "model '{name}' is both this unversioned file and the versioned model of {}; rename the file or make it one of the versions (defined_in)",
                        props.file
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The `sources:` tree of `dbt_project.yml` and the YAML `config:` blocks of
/// sources, applied: `enabled`, `tags`, `meta`, and `freshness`/`loaded_at_field`
/// where the properties give none.
fn apply_source_configs(project: &mut Project, tree: &Value) {
    let name = project.name.clone();
    let mut kept = Vec::new();
    for mut s in std::mem::take(&mut project.sources) {
        let mut config = tree_config(
            Resource::Source,
            tree,
            &name,
            &[s.source_name.clone(), s.name.clone()],
        );
        for (k, v) in std::mem::take(&mut s.config) {
            merge_config(&mut config, &k, v);
        }
        if config.get("enabled").and_then(Value::as_bool) == Some(false) {
            project
                .disabled_sources
                .push(format!("{}.{}", s.source_name, s.name));
            continue;
        }
        if let Some(Value::Array(tags)) = config.get("tags") {
            for t in tags.iter().filter_map(Value::as_str) {
                if !s.tags.iter().any(|x| x == t) {
                    s.tags.push(t.to_string());
                }
            }
        }
        if s.loaded_at_field.is_none() {
            s.loaded_at_field = config
                .get("loaded_at_field")
                .and_then(Value::as_str)
                .map(str::to_string);
        }
        if s.freshness.is_none() {
            if let Some(f) = config.get("freshness") {
                // Checked when read; a policy that does not parse cannot be here.
                let y = yaml::from_json(f);
                s.freshness = FreshnessPolicy::from_yaml(&y, y.at("")).ok().flatten();
            }
        }
        if let Some(Value::Object(meta)) = config.get("meta") {
            if let Value::Object(m) = &mut s.meta {
                for (k, v) in meta {
                    m.entry(k.clone()).or_insert(v.clone());
                }
            }
        }
        s.config = config;
        kept.push(s);
    }
    project.sources = kept;
}
