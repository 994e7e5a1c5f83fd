//! The dbt Hub's package index API, as `dbt deps` reads it: the list of packages
//! (`api/v1/index.json`), each package's versions (`api/v1/<org>/<name>.json`:
//! per version the project `name`, its own `packages` and `downloads.tarball`),
//! and the tarball of a version unpacked under the install path. The base URL is
//! `DBT_PACKAGE_HUB_URL` (default `https://hub.getdbt.com/`); answers are kept for
//! the rest of the command.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

/// The public Hub, when `DBT_PACKAGE_HUB_URL` is not set.
const DEFAULT_HUB: &str = "https://hub.getdbt.com/";
/// Attempts of a request that could not reach the Hub (dbt retries too).
const ATTEMPTS: u32 = 3;

/// One version of a Hub package, as its JSON describes it.
#[derive(Debug, Clone)]
pub(crate) struct HubVersion {
    /// The `name:` of the package's dbt_project.yml (its install directory).
    pub(crate) name: String,
    /// The packages it depends on (entries as in packages.yml).
    pub(crate) packages: Vec<Value>,
    pub(crate) tarball: String,
    /// `require_dbt_version`, when given.
    pub(crate) require_dbt_version: Vec<String>,
}

/// A client of one Hub, caching what it read.
pub(crate) struct Hub {
    pub(crate) base: String,
    agent: ureq::Agent,
    index: Option<Vec<String>>,
    packages: HashMap<String, Vec<(String, HubVersion)>>,
    /// Redirect warnings (`redirectnamespace`/`redirectname`) not yet shown.
    pub(crate) redirects: Vec<String>,
}

impl Hub {
    pub(crate) fn from_env() -> Hub {
        let base = std::env::var("DBT_PACKAGE_HUB_URL")
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| DEFAULT_HUB.to_string());
        let base = if base.ends_with('/') {
            base
        } else {
            format!("{base}/")
        };
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(30)))
            .http_status_as_error(false)
            .build()
            .into();
        Hub {
            base,
            agent,
            index: None,
            packages: HashMap::new(),
            redirects: Vec::new(),
        }
    }

    /// GETs `url`: the body, or why not (a sentence).
    fn get(&self, url: &str, limit: u64) -> Result<Vec<u8>, String> {
        let mut last = String::new();
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(500 * u64::from(attempt)));
            }
            match self.agent.get(url).call() {
                Ok(mut resp) => {
                    let status = resp.status().as_u16();
                    if status != 200 {
                        return Err(format!("{url} answered HTTP {status}"));
                    }
                    let mut body = Vec::new();
                    resp.body_mut()
                        .as_reader()
                        .take(limit)
                        .read_to_end(&mut body)
                        .map_err(|e| format!("reading {url}: {e}"))?;
                    return Ok(body);
                }
                Err(e) => last = format!("cannot reach {url}: {e}"),
            }
        }
        Err(last)
    }

    fn get_json(&self, url: &str) -> Result<Value, String> {
        let body = self.get(url, 64 << 20)?;
        serde_json::from_slice(&body).map_err(|e| format!("{url} is not JSON: {e}"))
    }

    /// Whether the Hub lists `package` (`org/name`).
    pub(crate) fn lists(&mut self, package: &str) -> Result<bool, String> {
        if self.index.is_none() {
            let url = format!("{}api/v1/index.json", self.base);
            let Value::Array(items) = self.get_json(&url)? else {
                return Err(format!("{url} is not a list of packages"));
            };
            self.index = Some(
                items
                    .into_iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect(),
            );
        }
        Ok(self
            .index
            .as_ref()
            .is_some_and(|i| i.iter().any(|p| p == package)))
    }

    /// Every version of `package`, in the Hub's order.
    pub(crate) fn versions(&mut self, package: &str) -> Result<&[(String, HubVersion)], String> {
        if !self.packages.contains_key(package) {
            let url = format!("{}api/v1/{package}.json", self.base);
            let doc = self.get_json(&url)?;
            let Some(versions) = doc.get("versions").and_then(Value::as_object) else {
                return Err(format!("{url} has no versions"));
            };
            if doc.get("redirectnamespace").is_some() || doc.get("redirectname").is_some() {
                let pick = |redirect: &str, own: &str| {
                    doc.get(redirect)
                        .and_then(Value::as_str)
                        .filter(|s| !s.is_empty())
                        .or_else(|| doc.get(own).and_then(Value::as_str))
                        .unwrap_or("")
                        .to_string()
                };
                let new = format!(
                    "{}/{}",
                    pick("redirectnamespace", "namespace"),
                    pick("redirectname", "name")
                );
                self.redirects.push(format!(
                    "The `{package}` package is deprecated in favor of `{new}`. Please update your `packages.yml` configuration to use `{new}` instead."
                ));
            }
            let mut out = Vec::new();
            for (v, info) in versions {
                let text = |k: &str| info.get(k).and_then(Value::as_str).map(str::to_string);
                let (Some(name), Some(tarball)) = (
                    text("name"),
                    info.pointer("/downloads/tarball")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                ) else {
                    return Err(format!(
                        "{url}: version {v} lacks name or downloads.tarball"
                    ));
                };
                let require_dbt_version = match info.get("require_dbt_version") {
                    Some(Value::String(s)) => vec![s.clone()],
                    Some(Value::Array(a)) => a
                        .iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect(),
                    _ => Vec::new(),
                };
                let packages = info
                    .get("packages")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                out.push((
                    v.clone(),
                    HubVersion {
                        name,
                        packages,
                        tarball,
                        require_dbt_version,
                    },
                ));
            }
            self.packages.insert(package.to_string(), out);
        }
        Ok(&self.packages[package])
    }

    /// Downloads `url` and unpacks it as `dest` (a directory that must not
    /// exist): the tarball's single top directory becomes `dest`.
    pub(crate) fn unpack(&self, url: &str, dest: &Path) -> Result<(), String> {
        let body = self.get(url, 1 << 30)?;
        let parent = dest.parent().unwrap_or(Path::new("."));
        let tmp = parent.join(format!(
            ".unpack-{}",
            dest.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("package")
        ));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp)
            .map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
        let result = (|| {
            let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&body[..]));
            // `unpack` refuses entries that would land outside `tmp`.
            archive
                .unpack(&tmp)
                .map_err(|e| format!("cannot unpack {url}: {e}"))?;
            let tops: Vec<_> = std::fs::read_dir(&tmp)
                .map_err(|e| e.to_string())?
                .filter_map(|e| e.ok())
                .collect();
            let from = match tops.as_slice() {
                [one] if one.path().is_dir() => one.path(),
                _ => tmp.clone(),
            };
            std::fs::rename(&from, dest)
                .map_err(|e| format!("cannot move the package to {}: {e}", dest.display()))
        })();
        let _ = std::fs::remove_dir_all(&tmp);
        result
    }
}
