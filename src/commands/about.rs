//! `--about`: name, version, description and the settings as a JSON Schema (the
//! Singer SDK convention Meltano reads), as text, JSON or Markdown.

use serde_json::json;

use crate::cli::AboutFormat;
use crate::settings;

/// `--about`: name, version, description and settings (Singer SDK convention).
pub(super) fn about(format: AboutFormat) -> String {
    let schema = settings::schema();
    let description = env!("CARGO_PKG_DESCRIPTION");
    match format {
        AboutFormat::Json => {
            let v = json!({
                "name": "reluvia-transform",
                "description": description,
                "version": crate::VERSION,
                "capabilities": ["about"],
                "settings": schema,
            });
            format!("{}\n", serde_json::to_string_pretty(&v).unwrap_or_default())
        }
        AboutFormat::Text | AboutFormat::Markdown => {
            let md = format == AboutFormat::Markdown;
            let mut t = if md {
                format!("# reluvia-transform\n\n{description}\n\nVersion: {}\n\n## Settings\n\n| Setting | Required | Default | Environment | Description |\n|:--|:--:|:--|:--|:--|\n", crate::VERSION)
            } else {
                format!(
                    "Name: reluvia-transform\nVersion: {}\nDescription: {description}\nSettings:\n",
                    crate::VERSION
                )
            };
            let required: Vec<&str> = schema["required"]
                .as_array()
                .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
                .unwrap_or_default();
            if let Some(props) = schema["properties"].as_object() {
                for (name, p) in props {
                    let default = p.get("default").map(|d| d.to_string()).unwrap_or_default();
                    let desc = p["description"].as_str().unwrap_or("");
                    let envs = settings::env_names(name).join(", ");
                    let req = if required.contains(&name.as_str()) {
                        "yes"
                    } else {
                        "no"
                    };
                    if md {
                        t.push_str(&format!(
                            "| {name} | {req} | {default} | {envs} | {desc} |\n"
                        ));
                    } else {
                        t.push_str(&format!(
                            "  - {name}{}: {desc} [env: {envs}]{}\n",
                            if req == "yes" { " (required)" } else { "" },
                            if default.is_empty() {
                                String::new()
                            } else {
                                format!(" [default: {default}]")
                            }
                        ));
                    }
                }
            }
            t
        }
    }
}
