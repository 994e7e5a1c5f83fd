//! `init`: writes the project built into the binary into a directory to edit
//! (`meltano invoke reluvia-transform:init`), as dbt's Meltano utilities'
//! `:initialize` does: `transform/` of the Meltano project by default, which the
//! next run finds. It never overwrites a file: when any of the project's files
//! exists, it writes nothing and says which.

use std::path::{Path, PathBuf};

use crate::console::Output;
use crate::error::Result;
use crate::project::builtin;

pub(super) fn init(dir: Option<&Path>, out: &Output) -> Result<()> {
    let root = std::env::var_os("MELTANO_PROJECT_ROOT")
        .filter(|r| !r.is_empty())
        .map(PathBuf::from);
    // Relative to the Meltano project under Meltano, else to the current directory.
    let base = root.clone().unwrap_or_default();
    let target = base.join(dir.unwrap_or(Path::new("transform")));
    let written = builtin::write_new(&target)?;
    out.info(
        "init",
        &format!(
            "Wrote the project built into reluvia-transform {}, {} ({} files), to {}",
            crate::VERSION,
            builtin::describe(),
            written.len(),
            target.display()
        ),
    );
    let found = root.as_ref().is_some_and(|r| {
        [r.join("transforms"), r.join("transform")]
            .iter()
            .find(|d| d.join("dbt_project.yml").is_file())
            .is_some_and(|d| same(d, &target))
    });
    let next = if found {
        "The next run uses it: edit its models, sources.yml declares what the loaders must land"
            .to_string()
    } else {
        format!(
            "To run it, point the project_dir setting at it: meltano config set reluvia-transform project_dir {} (or --project-dir)",
            target.display()
        )
    };
    out.info("init_next", &next);
    Ok(())
}

/// Whether two paths name the same directory.
fn same(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}
