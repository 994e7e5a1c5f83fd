//! The demo, the README's first command: a throwaway PostgreSQL cluster, the
//! bundled sample of raw data (deterministic, about 90 days ending today), the
//! shipped project built and tested with `build`, the executive summary on stdout,
//! and the executive report and the docs site written to `--output-dir`.
//! Everything comes from the binary itself: the project is embedded at compile
//! time (build.rs) and the sample data is generated.
//!

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::cli::{SampleArgs, Selection};
use crate::console::Output;
use crate::error::{Error, Result};
use crate::execute::Job;
use crate::report;
use crate::settings::LogFormat;
use reluvia_sample::cluster::Cluster;

use super::generate::{gen_options, load};
use super::Invocation;

/// Runs the demo; returns the exit code. Progress goes to stderr, the summary to
/// stdout. Cancelled at any step, it stops the cluster and removes its files (the
/// cluster and the project folder go when their owners are dropped).
pub(super) fn run(
    inv: &Invocation,
    keep: bool,
    sample: &SampleArgs,
    output_dir: &Path,
) -> Result<i32> {
    let interrupted = || Error::interrupted("during the demo; the throwaway cluster was removed");
    eprintln!("demo: starting a throwaway PostgreSQL cluster");
    let cluster = Cluster::start().map_err(Error::runtime)?;
    let dbname = "reluvia_demo";
    cluster.create_database(dbname).map_err(Error::runtime)?;
    let project = ProjectDir::create()?;
    crate::project::builtin::write(&project.0)
        .map_err(|(p, e)| Error::runtime(format!("cannot write {}: {e}", p.display())))?;
    let settings = Arc::new(demo_settings(&cluster, dbname, &project.0)?);
    inv.cancel
        .check("during the demo; the throwaway cluster was removed")?;

    let gen = gen_options(sample);
    eprintln!(
        "demo: loading {} days of sample raw data ending {}",
        gen.days, gen.end
    );
    // A fresh cluster: no raw schema to protect.
    let loaded = load(
        inv,
        &settings,
        &gen,
        "during the demo; the throwaway cluster was removed",
        false,
        &|line| eprintln!("demo:   {line}"),
    )?;
    for (table, rows) in &loaded {
        eprintln!("demo:   {table:<28} {rows:>9} rows");
    }

    eprintln!("demo: checking freshness, building and testing the marts (reluvia-transform build --check-freshness)");
    let out = Arc::new(Output::new(LogFormat::Text));
    let job = Job::Build {
        store_failures: false,
        check_freshness: true,
        full_refresh: false,
        empty: false,
        event_time: None,
    };
    let code = match super::job::run(inv, settings.clone(), &Selection::default(), &out, job) {
        Ok(code) => code,
        Err(e) => {
            out.error(&e.to_string());
            e.exit_code()
        }
    };
    if inv.cancel.is_cancelled() {
        return Err(interrupted());
    }
    if code == 0 {
        let loaded = super::load(settings.clone(), &inv.cancel)?;
        let summary = inv
            .runtime
            .block_on(report::summary(&settings, &loaded.manifest, 14))?;
        println!("\n{summary}");
        std::fs::create_dir_all(output_dir)
            .map_err(|e| Error::runtime(format!("cannot create {}: {e}", output_dir.display())))?;
        let options = report::ReportOptions {
            output: Some(output_dir.join("report.html")),
            ..Default::default()
        };
        let written = super::report::write(inv, settings.clone(), &options, &out)?;
        let site = super::docs::generate(
            inv,
            settings.clone(),
            &out,
            Some(&output_dir.join("docs")),
            false,
        )?;
        for p in &written {
            println!("Executive report: {}", p.display());
        }
        println!("Documentation site: {}", site.display());
    } else {
        eprintln!("demo: build failed (exit {code}); the summary is not printed");
    }
    if keep {
        let url = cluster.url(dbname);
        let stop = cluster.keep();
        let dir = project.keep();
        eprintln!("demo: the cluster keeps running. Explore it with:\n  psql '{url}'\nStop it with:\n  {stop}");
        eprintln!("demo: the project is in {}", dir.display());
    }
    Ok(code)
}

/// The demo's project folder, removed when dropped unless kept.
struct ProjectDir(PathBuf, bool);

impl ProjectDir {
    fn create() -> Result<ProjectDir> {
        let dir = std::env::temp_dir().join(format!("reluvia-demo-project-{}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::runtime(format!("cannot create {}: {e}", dir.display())))?;
        Ok(ProjectDir(dir, true))
    }

    fn keep(mut self) -> PathBuf {
        self.1 = false;
        self.0.clone()
    }
}

impl Drop for ProjectDir {
    fn drop(&mut self) {
        if self.1 {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn demo_settings(
    cluster: &Cluster,
    dbname: &str,
    project: &Path,
) -> Result<crate::settings::Settings> {
    let input = crate::settings::SettingsInput::default();
    let host = cluster.host().to_string();
    let port = cluster.port().to_string();
    let user = cluster.user().to_string();
    let project_dir = project.display().to_string();
    let env = move |k: &str| {
        Ok(match k {
            "PG_ANALYTICS_HOST" => Some(host.clone()),
            "PG_ANALYTICS_PORT" => Some(port.clone()),
            "PG_ANALYTICS_USER" => Some(user.clone()),
            "PG_ANALYTICS_DBNAME" => Some(dbname.to_string()),
            "RELUVIA_TRANSFORM_PROJECT_DIR" => Some(project_dir.clone()),
            _ => None,
        })
    };
    crate::settings::load_with_env(&input, &env, &[])
}
