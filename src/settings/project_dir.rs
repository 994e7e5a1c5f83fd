//! Where the project comes from, in this order (the README's "Where the project
//! comes from"):
//!
//! 1. `--project-dir`;
//! 2. the `project_dir` setting from any other source (`RELUVIA_TRANSFORM_PROJECT_DIR`,
//!    a `--config` file, `DBT_POSTGRES_PROJECT_DIR`, `DBT_PROJECT_DIR`);
//! 3. the current directory, when it holds `dbt_project.yml`;
//! 4. under Meltano (`MELTANO_PROJECT_ROOT` set), `transforms/` then `transform/` of
//!    the Meltano project, when it holds `dbt_project.yml`;
//! 5. under Meltano only, the project built into the binary
//!    ([`crate::project::builtin`]), written to a folder of Meltano's `.meltano/`.
//!
//! The first two are the settings' own precedence; this module does the rest, for
//! when neither gives a directory. A directory that is given is used as it is: one
//! that does not exist is an error when the project loads, never a reason to look
//! elsewhere. Under Meltano the artifacts go under `.meltano/` too (the default of
//! `target_path`), as Meltano's dbt utilities keep theirs, so that running the
//! plugin leaves the Meltano project's `git status` clean.

use std::path::{Path, PathBuf};

use super::Origin;

/// The folder of `.meltano/` (`$MELTANO_SYS_DIR_ROOT` when set) that holds what
/// this plugin writes under Meltano: `target/` (artifacts) and `project/` (the
/// built-in project).
pub(super) fn meltano_folder(root: &Path, sys_dir: Option<&str>) -> PathBuf {
    let sys = match sys_dir {
        Some(d) => root.join(d), // an absolute path stays as it is
        None => root.join(".meltano"),
    };
    sys.join("transformers").join("reluvia-transform")
}

/// The project directory when no setting gives one, and how it was found.
/// `meltano`: the Meltano project root and [`meltano_folder`].
pub(super) fn locate(cwd: Option<&Path>, meltano: Option<(&Path, &Path)>) -> (PathBuf, Origin) {
    let holds = |dir: &Path| dir.join("dbt_project.yml").is_file();
    if let Some(cwd) = cwd.filter(|d| holds(d)) {
        return (
            cwd.to_path_buf(),
            Origin::Found("the current directory holds dbt_project.yml".into()),
        );
    }
    let Some((root, folder)) = meltano else {
        // Nothing found: the current directory, which the project loader then
        // reports as holding no dbt_project.yml.
        return (
            cwd.map(Path::to_path_buf).unwrap_or_else(|| ".".into()),
            Origin::Default,
        );
    };
    for name in ["transforms", "transform"] {
        let dir = root.join(name);
        if holds(&dir) {
            return (
                dir,
                Origin::Found(format!("{name}/ of the Meltano project")),
            );
        }
    }
    (
        crate::project::builtin::folder(&folder.join("project")),
        Origin::BuiltIn,
    )
}
