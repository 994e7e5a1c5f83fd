//! `debug`: the effective settings (secrets masked) and where each came from,
//! whether the project is there, and a test of the connection.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::postgres;
use crate::settings::Settings;

use super::Invocation;

pub(super) fn debug(inv: &Invocation, settings: Arc<Settings>) -> Result<i32> {
    let mut text = format!(
        "reluvia-transform {}\n\nSettings (highest-precedence source shown):\n",
        crate::VERSION
    );
    let rows = settings.describe();
    // Columns as wide as the longest setting name (connect_retry_timeout).
    let width = rows.iter().map(|(n, _, _)| n.len()).max().unwrap_or(0);
    for (name, value, origin) in rows {
        text.push_str(&format!("  {name:<width$} {value:<32} {origin}\n"));
    }
    let dbt_project = settings.project_dir.join("dbt_project.yml");
    let builtin = settings.builtin_project();
    text.push_str(&format!(
        "\nProject: {} ({})\n",
        settings.project_dir.display(),
        if builtin {
            format!(
                "built into the binary: {}, written there when a command needs it",
                crate::project::builtin::describe()
            )
        } else if dbt_project.is_file() {
            "dbt_project.yml found".to_string()
        } else {
            "dbt_project.yml NOT found".to_string()
        }
    ));
    let has_project = builtin || dbt_project.is_file();
    let conn = inv.runtime.block_on(async {
        let client = tokio::select! {
            c = postgres::connect(&settings) => c?,
            _ = inv.cancel.cancelled() => return Err(Error::interrupted("while connecting to PostgreSQL")),
        };
        postgres::cancellable(
            &client,
            &settings,
            &inv.cancel,
            "while reading the server version",
            postgres::server_version(&client),
        )
        .await
    });
    match conn {
        Ok(version) => {
            text.push_str(&format!(
                "Connection: OK ({}@{}:{}/{}, PostgreSQL {version})\n",
                settings.user, settings.host, settings.port, settings.dbname
            ));
            print!("{text}");
            Ok(if has_project { 0 } else { 1 })
        }
        Err(e) => {
            text.push_str("Connection: FAILED\n");
            print!("{text}");
            Err(e)
        }
    }
}
