//! The demo, the README's first command: a throwaway PostgreSQL cluster, the
//! bundled sample of raw data (deterministic, about 90 days ending today), the
//! shipped project built and tested with `build`, and the executive summary.
//! Everything comes from the binary itself: the project is embedded at compile
//! time (build.rs) and the sample data is generated.
//!
//! Also owns loading generated raw data into a database (`generate`), which
//! benchmarks use at larger scales.

use std::path::Path;
use std::process::Command;

use bytes::Bytes;
use futures_util::SinkExt;
use tokio_postgres::Client;

use reluvia_sample::cluster::Cluster;
use reluvia_sample::contract::{self, Table};
use reluvia_sample::generate::{generate_table, Dataset, GenOptions};

use crate::error::{Error, Result};
use crate::manifest::{quote_ident, relation_name};

include!(concat!(env!("OUT_DIR"), "/embedded_project.rs"));

/// Options of `demo`.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub keep: bool,
    pub days: u32,
    pub sessions_per_day: Option<u32>,
    pub seed: u64,
}

/// Writes the embedded project into `dir`.
pub fn write_project(dir: &Path) -> Result<()> {
    for (rel, content) in EMBEDDED_PROJECT {
        let p = dir.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::runtime(format!("cannot create {}: {e}", parent.display())))?;
        }
        std::fs::write(&p, content)
            .map_err(|e| Error::runtime(format!("cannot write {}: {e}", p.display())))?;
    }
    Ok(())
}

/// Generator options for a run: today's date in UTC and `now`, the given scale.
pub fn gen_options(days: u32, sessions_per_day: Option<u32>, seed: u64) -> GenOptions {
    let now = chrono::Utc::now().naive_utc();
    let mut o = GenOptions::demo(now.date(), now);
    o.days = days;
    o.seed = seed;
    if let Some(n) = sessions_per_day {
        o.sessions_per_day = n;
    }
    o
}

/// (Re)creates the raw schemas in `client`'s database and loads generated data.
/// Returns (table, rows) pairs.
pub async fn load_raw(client: &Client, opts: &GenOptions) -> Result<Vec<(String, usize)>> {
    let db_err = |what: &str, e: tokio_postgres::Error| {
        Error::runtime(format!(
            "{what}: {}",
            crate::warehouse::describe_db_error(&e, "")
        ))
    };
    let drop: String = contract::schemas()
        .iter()
        .map(|s| format!("drop schema if exists {s} cascade;\n"))
        .collect();
    client
        .batch_execute(&drop)
        .await
        .map_err(|e| db_err("cannot reset the raw schemas", e))?;
    client
        .batch_execute(&contract::ddl())
        .await
        .map_err(|e| db_err("cannot create the raw tables", e))?;
    // Streamed: a blocking thread generates each table in row-aligned chunks that
    // go straight into COPY, so a large scale never sits in memory.
    let dataset = std::sync::Arc::new(Dataset::new(opts));
    let mut loaded = Vec::new();
    for table in Table::ALL {
        let label = format!("{}.{}", table.schema(), table.name());
        let cols = table
            .column_names()
            .iter()
            .map(|c| quote_ident(c))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "copy {} ({cols}) from stdin",
            relation_name(table.schema(), table.name())
        );
        let sink = client
            .copy_in::<_, Bytes>(sql.as_str())
            .await
            .map_err(|e| db_err("cannot start COPY", e))?;
        futures_util::pin_mut!(sink);
        let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(4);
        let ds = dataset.clone();
        let producer = tokio::task::spawn_blocking(move || {
            generate_table(&ds, table, |chunk| {
                let _ = tx.blocking_send(chunk.to_string());
            })
        });
        while let Some(chunk) = rx.recv().await {
            sink.send(Bytes::from(chunk.into_bytes()))
                .await
                .map_err(|e| db_err(&format!("cannot load {label}"), e))?;
        }
        sink.finish()
            .await
            .map_err(|e| db_err(&format!("cannot load {label}"), e))?;
        let rows = producer
            .await
            .map_err(|e| Error::runtime(format!("generator failed for {label}: {e}")))?;
        loaded.push((label, rows));
    }
    client
        .batch_execute("analyze")
        .await
        .map_err(|e| db_err("analyze", e))?;
    Ok(loaded)
}

/// Runs the demo; returns the exit code. Progress goes to stderr, the summary to
/// stdout.
pub fn run(opts: &DemoOptions) -> Result<i32> {
    eprintln!("demo: starting a throwaway PostgreSQL cluster");
    let cluster = Cluster::start().map_err(Error::runtime)?;
    let dbname = "reluvia_demo";
    cluster.create_database(dbname).map_err(Error::runtime)?;
    let project = tempfile_dir()?;
    write_project(&project)?;

    // A worker thread, so the Ctrl-C/SIGTERM watcher runs while the demo blocks.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| Error::runtime(format!("cannot start the async runtime: {e}")))?;
    let settings = demo_settings(&cluster, dbname, &project)?;
    // Interrupted: stop the throwaway server and remove its files before exiting
    // (the build child gets the same signal and rolls back on its own).
    let shared = std::sync::Arc::new(std::sync::Mutex::new(Some(cluster)));
    {
        let shared = shared.clone();
        let project = project.clone();
        rt.spawn(async move {
            let Ok(mut term) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            else {
                return;
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {},
                _ = term.recv() => {},
            }
            eprintln!("demo: interrupted; stopping the throwaway cluster");
            if let Some(c) = shared.lock().unwrap_or_else(|e| e.into_inner()).take() {
                c.stop();
            }
            let _ = std::fs::remove_dir_all(&project);
            std::process::exit(130);
        });
    }
    let cluster_ref = || shared.lock().unwrap_or_else(|e| e.into_inner());
    let gen = gen_options(opts.days, opts.sessions_per_day, opts.seed);
    eprintln!(
        "demo: loading {} days of sample raw data ending {}",
        gen.days, gen.end
    );
    let loaded = rt.block_on(async {
        let client = crate::warehouse::connect(&settings).await?;
        load_raw(&client, &gen).await
    })?;
    for (table, rows) in &loaded {
        eprintln!("demo:   {table:<28} {rows:>9} rows");
    }

    eprintln!("demo: checking freshness, building and testing the marts (reluvia-transform build --check-freshness)");
    let exe = std::env::current_exe()
        .map_err(|e| Error::runtime(format!("cannot find this executable: {e}")))?;
    let mut cmd = Command::new(exe);
    // The demo's own database, whatever the caller's environment says.
    for (k, _) in std::env::vars() {
        if k.starts_with("RELUVIA_TRANSFORM_")
            || k.starts_with("PG_ANALYTICS_")
            || k.starts_with("DBT_")
            || k == "DATABASE_URL"
            || (k.starts_with("PG") && k != "PGTZ")
        {
            cmd.env_remove(k);
        }
    }
    let status = cmd
        .args(["build", "--check-freshness", "--project-dir"])
        .arg(&project)
        .env("PG_ANALYTICS_HOST", &settings.host)
        .env("PG_ANALYTICS_PORT", settings.port.to_string())
        .env("PG_ANALYTICS_USER", &settings.user)
        .env("PG_ANALYTICS_DBNAME", dbname)
        .env_remove("MELTANO_PROJECT_ROOT")
        .status()
        .map_err(|e| Error::runtime(format!("cannot run build: {e}")))?;
    let code = status.code().unwrap_or(1);
    if code == 0 {
        let summary = rt.block_on(async {
            let client = crate::warehouse::connect(&settings).await?;
            crate::report::executive_summary(&client, &settings.schema, 14).await
        })?;
        println!("\n{summary}");
    } else {
        eprintln!("demo: build failed (exit {code}); the summary is not printed");
    }
    let Some(cluster) = cluster_ref().take() else {
        return Ok(130);
    };
    if opts.keep {
        let url = cluster.url(dbname);
        let stop = cluster.keep();
        eprintln!("demo: the cluster keeps running. Explore it with:\n  psql '{url}'\nStop it with:\n  {stop}");
        eprintln!("demo: the project is in {}", project.display());
    } else {
        drop(cluster);
        let _ = std::fs::remove_dir_all(&project);
    }
    Ok(code)
}

fn tempfile_dir() -> Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("reluvia-demo-project-{}", std::process::id()));
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::runtime(format!("cannot create {}: {e}", dir.display())))?;
    Ok(dir)
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
    crate::settings::load_with_env(&input, &move |k| match k {
        "PG_ANALYTICS_HOST" => Some(host.clone()),
        "PG_ANALYTICS_PORT" => Some(port.clone()),
        "PG_ANALYTICS_USER" => Some(user.clone()),
        "PG_ANALYTICS_DBNAME" => Some(dbname.to_string()),
        "RELUVIA_TRANSFORM_PROJECT_DIR" => Some(project_dir.clone()),
        _ => None,
    })
}
