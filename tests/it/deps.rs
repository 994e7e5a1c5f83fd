//! `deps` through the binary, without a database: packages from a stand-in dbt
//! Hub on loopback (a thread serving fixed files), the lock file, and the errors
//! that name the package (unknown, no matching version).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use crate::common::*;

/// Files served at `http://127.0.0.1:<port>/<path>`; others answer 404.
type Files = Arc<Mutex<HashMap<String, Vec<u8>>>>;

/// A stand-in Hub: its base URL and the files it serves (editable while it runs).
fn hub() -> (String, Files) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/", listener.local_addr().unwrap());
    let files: Files = Arc::default();
    let served = files.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            if reader.read_line(&mut request).is_err() {
                continue;
            }
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                    break;
                }
            }
            let path = request
                .split_whitespace()
                .nth(1)
                .unwrap_or("/")
                .trim_start_matches('/')
                .to_string();
            let body = served.lock().unwrap().get(&path).cloned();
            let (status, body) = match body {
                Some(b) => ("200 OK", b),
                None => ("404 Not Found", b"not found".to_vec()),
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(&body);
        }
    });
    (base, files)
}

/// Publishes `acme/num_tools` at `versions` (a tarball each, made with tar).
fn publish(base: &str, files: &Files, work: &Path, versions: &[&str]) {
    let mut entries = Vec::new();
    for v in versions {
        let dir = work.join(format!("src/num_tools-{v}"));
        write(
            &dir,
            "dbt_project.yml",
            &format!("name: num_tools\nversion: \"{v}\"\nconfig-version: 2\n"),
        );
        write(
            &dir,
            "macros/release.sql",
            &format!("{{% macro release() %}}{v}{{% endmacro %}}"),
        );
        let tarball = work.join(format!("num_tools-{v}.tar.gz"));
        let ok = Command::new("tar")
            .arg("-czf")
            .arg(&tarball)
            .arg("-C")
            .arg(work.join("src"))
            .arg(format!("num_tools-{v}"))
            .status()
            .unwrap()
            .success();
        assert!(ok, "tar failed");
        let name = format!("tarballs/num_tools-{v}.tar.gz");
        files
            .lock()
            .unwrap()
            .insert(name.clone(), std::fs::read(&tarball).unwrap());
        entries.push(format!(
            r#""{v}": {{"name": "num_tools", "packages": [], "downloads": {{"tarball": "{base}{name}"}}}}"#
        ));
    }
    let mut f = files.lock().unwrap();
    f.insert(
        "api/v1/index.json".into(),
        br#"["acme/num_tools", "acme/other"]"#.to_vec(),
    );
    f.insert(
        "api/v1/acme/num_tools.json".into(),
        format!(
            r#"{{"name": "num_tools", "namespace": "acme", "versions": {{{}}}}}"#,
            entries.join(", ")
        )
        .into_bytes(),
    );
}

/// `deps` in `dir` with the Hub at `base` and no connection settings at all.
fn deps(dir: &Path, base: &str, extra: &[&str]) -> std::process::Output {
    clean_command()
        .arg("deps")
        .args(extra)
        .arg("--project-dir")
        .arg(dir)
        .env("DBT_PACKAGE_HUB_URL", base)
        .env("HOME", dir)
        .output()
        .unwrap()
}

const PROJECT: &str = "name: shop\nversion: \"1.0\"\nconfig-version: 2\nprofile: shop\n";

#[test]
fn hub_package_installed_and_locked_without_database_settings() {
    let work = tempfile::tempdir().unwrap();
    let (base, files) = hub();
    publish(&base, &files, work.path(), &["1.0.0", "1.1.0", "2.0.0"]);
    let p = project(&[
        ("dbt_project.yml", PROJECT),
        (
            "packages.yml",
            "packages:\n  - package: acme/num_tools\n    version: [\">=1.0.0\", \"<2.0.0\"]\n",
        ),
    ]);
    let out = deps(p.path(), &base, &[]);
    assert_code(&out, 0);
    let release = p.path().join("dbt_packages/num_tools/macros/release.sql");
    assert!(std::fs::read_to_string(&release).unwrap().contains("1.1.0"));
    let lock = std::fs::read_to_string(p.path().join("package-lock.yml")).unwrap();
    assert!(
        lock.starts_with(
            "packages:\n  - name: num_tools\n    package: acme/num_tools\n    version: 1.1.0\nsha1_hash: "
        ),
        "{lock}"
    );

    // A newer matching version: the lock file still decides, until --upgrade.
    publish(
        &base,
        &files,
        work.path(),
        &["1.0.0", "1.1.0", "1.5.0", "2.0.0"],
    );
    assert_code(&deps(p.path(), &base, &[]), 0);
    assert!(std::fs::read_to_string(&release).unwrap().contains("1.1.0"));
    let out = deps(p.path(), &base, &["--upgrade"]);
    assert_code(&out, 0);
    assert!(std::fs::read_to_string(&release).unwrap().contains("1.5.0"));
    assert!(stderr(&out).contains("Updated version available: 2.0.0"));
}

#[test]
fn hub_errors_name_the_package() {
    let work = tempfile::tempdir().unwrap();
    let (base, files) = hub();
    publish(&base, &files, work.path(), &["1.0.0", "1.1.0"]);
    let cases = [
        (
            "packages:\n  - package: acme/num_tools\n    version: \">=3.0.0\"\n",
            "packages.yml line 2: package 'acme/num_tools': no version matches >=3.0.0 (versions on the Hub: 1.0.0, 1.1.0)",
        ),
        (
            "packages:\n  - package: acme/missing\n    version: 1.0.0\n",
            "packages.yml line 2: package 'acme/missing' is not on the dbt Hub at",
        ),
    ];
    for (packages, want) in cases {
        let p = project(&[("dbt_project.yml", PROJECT), ("packages.yml", packages)]);
        let out = deps(p.path(), &base, &[]);
        assert_code(&out, 2);
        assert!(stderr(&out).contains(want), "{}", stderr(&out));
        assert!(!p.path().join("package-lock.yml").exists());
    }
}

/// `git` in `dir`, which must succeed.
fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .status()
        .unwrap()
        .success();
    assert!(ok, "git {args:?} failed");
}

/// Every file under `dir` (the log, the lock, what was installed) as text.
fn all_text(dir: &Path) -> String {
    let mut out = String::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.push_str(&all_text(&path));
        } else if let Ok(text) = std::fs::read_to_string(&path) {
            out.push_str(&text);
        }
    }
    out
}

#[test]
fn git_url_rendered_from_env_var_is_never_shown_or_locked() {
    // The "secret" is the repositories' base URL, as a token in an https URL
    // would be: it must reach git, and nothing else.
    let repos = tempfile::tempdir().unwrap();
    let repo = repos.path().join("calc_pkg");
    write(
        &repo,
        "dbt_project.yml",
        "name: calc_pkg\nversion: \"1.0\"\nconfig-version: 2\n",
    );
    write(&repo, "macros/two.sql", "{% macro two() %}2{% endmacro %}");
    git(&repo, &["init", "--quiet", "-b", "main"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "--quiet", "-m", "first"]);
    let secret = format!("file://{}", repos.path().display());
    let written = "{{ env_var('PKG_GIT_BASE') }}/calc_pkg";
    let p = project(&[
        ("dbt_project.yml", PROJECT),
        (
            "packages.yml",
            &format!("packages:\n  - git: \"{written}\"\n    revision: main\n"),
        ),
    ]);
    let run = |env: &str| {
        clean_command()
            .arg("deps")
            .arg("--project-dir")
            .arg(p.path())
            .env("HOME", p.path())
            .env("PKG_GIT_BASE", env)
            .output()
            .unwrap()
    };
    let out = run(&secret);
    assert_code(&out, 0);
    assert!(p
        .path()
        .join("dbt_packages/calc_pkg/macros/two.sql")
        .is_file());
    let lock = std::fs::read_to_string(p.path().join("package-lock.yml")).unwrap();
    // PyYAML's quoting, as dbt writes it.
    let quoted = written.replace('\'', "''");
    assert!(lock.contains(&format!("git: '{quoted}'")), "{lock}");
    let shown = format!("{}{}{}", stdout(&out), stderr(&out), all_text(p.path()));
    assert!(
        shown.contains("Installing {{ env_var('PKG_GIT_BASE') }}/calc_pkg"),
        "{shown}"
    );
    assert!(
        !shown.contains(&secret),
        "the rendered URL was shown: {shown}"
    );

    // The next deps reads the lock file's unrendered URL and renders it again.
    let out = run(&secret);
    assert_code(&out, 0);
    assert!(!format!("{}{}", stdout(&out), stderr(&out)).contains(&secret));

    // A failing clone names the package as written, without git's message
    // (which quotes the URL it was given).
    std::fs::remove_file(p.path().join("package-lock.yml")).unwrap();
    let wrong = format!("{secret}-nowhere");
    let out = run(&wrong);
    assert_code(&out, 1);
    let err = stderr(&out);
    assert!(err.contains(&format!("git package '{written}'")), "{err}");
    assert!(!err.contains(&wrong), "{err}");

    // Without the variable: a one-line error naming the file and line.
    let out = clean_command()
        .arg("deps")
        .arg("--project-dir")
        .arg(p.path())
        .env("HOME", p.path())
        .env_remove("PKG_GIT_BASE")
        .output()
        .unwrap();
    assert_code(&out, 2);
    assert!(
        stderr(&out).contains("packages.yml line 2: cannot render"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn packages_yml_renders_var_of_the_command_only_whenever_the_project_loads() {
    let p = project(&[
        (
            "dbt_project.yml",
            "name: shop\nversion: \"1.0\"\nconfig-version: 2\nvars:\n  pkg_dir: local_pkgs\n",
        ),
        (
            "packages.yml",
            "packages:\n  - local: \"{{ var('pkg_dir') }}/util\"\n",
        ),
        (
            "local_pkgs/util/dbt_project.yml",
            "name: util\nversion: \"1.0\"\nconfig-version: 2\n",
        ),
        (
            "local_pkgs/util/macros/one.sql",
            "{% macro one() %}1{% endmacro %}",
        ),
        ("models/m.sql", "select {{ util.one() }} as x"),
    ]);
    let run = |args: &[&str]| {
        clean_command()
            .args(args)
            .arg("--project-dir")
            .arg(p.path())
            .env("HOME", p.path())
            .output()
            .unwrap()
    };
    // dbt_project.yml's vars are not seen in packages.yml: deps fails, naming the line.
    let out = run(&["deps"]);
    assert_code(&out, 2);
    let err = stderr(&out);
    assert!(
        err.contains("packages.yml line 2") && err.contains("var('pkg_dir') is not given"),
        "{err}"
    );
    assert_code(&run(&["deps", "--vars", "{pkg_dir: local_pkgs}"]), 0);
    let lock = std::fs::read_to_string(p.path().join("package-lock.yml")).unwrap();
    assert!(lock.contains("local: local_pkgs/util"), "{lock}");
    // Every command renders packages.yml, as dbt does when it loads the project.
    let db = TestDb::new("deps_vars_load");
    let pd = p.path().to_str().unwrap();
    let out = db.cli(&["parse", "--project-dir", pd]);
    assert_code(&out, 2);
    assert!(
        stderr(&out).contains("var('pkg_dir') is not given"),
        "{}",
        stderr(&out)
    );
    let out = db.cli(&[
        "parse",
        "--project-dir",
        pd,
        "--vars",
        "{pkg_dir: local_pkgs}",
    ]);
    assert_code(&out, 0);
}
