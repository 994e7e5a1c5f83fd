//! No secret in any output: a catalogue of failing (and passing) invocations, each
//! with a distinctive password, after which every output stream and every file the
//! run left under the project and the target path is searched for it; and secrets
//! are never rendered into models (`env_var()` refuses the variables that supply
//! the password, and dbt's `DBT_ENV_SECRET_*`), so they reach no compiled SQL,
//! manifest or table.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use crate::common::*;

/// The start of every password of this module: what is searched for.
const SECRET: &str = "Zq7S3cr3t";
/// The password of the role [`role`] creates.
const PASSWORD: &str = "Zq7S3cr3tPw";

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// A login role that needs [`PASSWORD`] (member of `pw_users`, which the test
/// cluster's pg_hba.conf asks a password of), allowed to build in `db`.
fn role(db: &TestDb, name: &str) {
    db.exec(&format!(
        "do $$ begin if not exists (select from pg_roles where rolname = '{name}') then create role {name} login password '{PASSWORD}'; end if; end $$; grant pw_users to {name}; grant all on database \"{}\" to {name};",
        db.name
    ));
}

/// One invocation of the catalogue.
struct Case {
    name: &'static str,
    args: Vec<String>,
    env: Vec<(String, OsString)>,
    /// Files written into the project before the run.
    files: Vec<(&'static str, String)>,
    code: i32,
    /// What stderr must say, so the case fails the way it is meant to.
    says: &'static str,
}

fn case(name: &'static str, code: i32, says: &'static str) -> Case {
    Case {
        name,
        args: vec!["run".into()],
        env: Vec::new(),
        files: Vec::new(),
        code,
        says,
    }
}

impl Case {
    fn env(mut self, k: &str, v: impl Into<OsString>) -> Case {
        self.env.push((k.to_string(), v.into()));
        self
    }
    fn args(mut self, args: &[&str]) -> Case {
        self.args = args.iter().map(|a| a.to_string()).collect();
        self
    }
    fn file(mut self, path: &'static str, content: impl Into<String>) -> Case {
        self.files.push((path, content.into()));
        self
    }
    /// Connection settings of the test server, as the role [`role`] made.
    fn server(self, db: &TestDb, user: &str) -> Case {
        let (host, port, _) = server();
        self.env("PG_ANALYTICS_HOST", host)
            .env("PG_ANALYTICS_PORT", port)
            .env("PG_ANALYTICS_USER", user)
            .env("PG_ANALYTICS_DBNAME", &db.name)
    }
}

#[test]
fn no_password_reaches_any_output_or_file() {
    let db = TestDb::new("secrets");
    role(&db, "secrets_pw");
    let (host, port, _) = server();
    let url = |rest: &str| rest.replace("PW", PASSWORD);
    let good_url = url(&format!(
        "postgres://secrets_pw:PW@{host}:{port}/{}?sslmode=disable",
        db.name
    ));
    let profiles = |password: &str| {
        format!(
            "p:\n  target: dev\n  outputs:\n    dev:\n      type: postgres\n      host: {host}\n      port: {port}\n      user: secrets_pw\n      password: {password}\n      dbname: {}\n",
            db.name
        )
    };
    let model_reading = |var: &str| format!("select '{{{{ env_var(\"{var}\") }}}}' as pw\n");
    let mut invalid_utf8 = PASSWORD.as_bytes().to_vec();
    invalid_utf8.push(0xff);

    let mut cases = vec![
        // Connection URLs of every shape, each refused as a settings error.
        case("url without colon", 2, "invalid connection URL")
            .env("RELUVIA_TRANSFORM_URL", url("postgres//alice:PW@db/x")),
        case("url without slashes", 2, "invalid connection URL")
            .env("RELUVIA_TRANSFORM_URL", url("postgres:alice:PW@db/x")),
        case("url with one slash", 2, "invalid connection URL")
            .env("RELUVIA_TRANSFORM_URL", url("postgres:/alice:PW@db/x")),
        case(
            "url with multi-byte characters",
            2,
            "invalid connection URL",
        )
        .env("RELUVIA_TRANSFORM_URL", url("postgres:/éPW")),
        case("url that is the password", 2, "invalid connection URL")
            .env("RELUVIA_TRANSFORM_URL", url("PW")),
        case("libpq keyword string", 2, "invalid connection URL")
            .env("RELUVIA_TRANSFORM_URL", url("host=db password=PW")),
        case("url without @", 2, "the port must be a number")
            .env("RELUVIA_TRANSFORM_URL", url("postgres://alice:PW/db")),
        case("url with a bad port", 2, "the port must be a number").env(
            "RELUVIA_TRANSFORM_URL",
            url("postgresql://alice:PW@h:x5432/d"),
        ),
        case("password= parameter", 2, "unsupported parameter 'sslmod'").env(
            "RELUVIA_TRANSFORM_URL",
            url("postgres://h/d?password=PW&sslmod=require"),
        ),
        case("password= parameter holding &", 2, "has no '='").env(
            "RELUVIA_TRANSFORM_URL",
            url("postgres://h/d?password=PW&x&sslmode=require"),
        ),
        case("percent-encoded password", 2, "unsupported parameter").env(
            "RELUVIA_TRANSFORM_URL",
            format!("postgres://alice:{SECRET}%50w@h/d?bogus=1"),
        ),
        case("percent-encoded parameter name", 2, "unsupported parameter").env(
            "RELUVIA_TRANSFORM_URL",
            url("postgres://h/d?%70assword=PW&bogus=1"),
        ),
        case("bad percent-encoding", 2, "bad percent-encoding")
            .env("RELUVIA_TRANSFORM_URL", url("postgres://alice:PW%zz@h/d")),
        case("several hosts", 2, "several hosts")
            .env("RELUVIA_TRANSFORM_URL", url("postgres://alice:PW@h1,h2/d")),
        case("@ for :", 2, "has no '='")
            .env("RELUVIA_TRANSFORM_URL", url("postgres://alice@PW@h/d?x")),
        case("url from a --config file", 2, "invalid connection URL")
            .args(&["run", "--config", "CONFIG"])
            .file("config.json", url(r#"{"url": "postgres//alice:PW@db/x"}"#)),
        case("good url, other setting invalid", 2, "threads")
            .env("RELUVIA_TRANSFORM_URL", good_url.clone())
            .env("RELUVIA_TRANSFORM_THREADS", "0"),
        case(
            "password in a --config file, other setting invalid",
            2,
            "threads",
        )
        .args(&["run", "--config", "CONFIG"])
        .file(
            "config.json",
            url(r#"{"password": "PW", "threads": 0, "colour": "PW"}"#),
        ),
        case("password of the wrong type", 2, "password")
            .args(&["run", "--config", "CONFIG"])
            .file("config.json", format!(r#"{{"password": ["{PASSWORD}"]}}"#)),
        case("password not UTF-8", 2, "PGPASSWORD is not valid UTF-8")
            .env("PGPASSWORD", OsString::from_vec(invalid_utf8)),
        // Wrong passwords, from every source, against the real server.
        case("wrong password in the url", 1, "authentication failed")
            .env("RELUVIA_TRANSFORM_URL", good_url.replace("Pw@", "Px@")),
        case(
            "wrong password in the url, debug",
            1,
            "authentication failed",
        )
        .args(&["debug"])
        .env("RELUVIA_TRANSFORM_URL", good_url.replace("Pw@", "Px@")),
        case("wrong PGPASSWORD", 1, "authentication failed")
            .server(&db, "secrets_pw")
            .env("PGPASSWORD", format!("{SECRET}Px")),
        case("wrong PG_ANALYTICS_PASSWORD", 1, "authentication failed")
            .server(&db, "secrets_pw")
            .env("PG_ANALYTICS_PASSWORD", format!("{SECRET}Px")),
        case("wrong DBT_POSTGRES_PASSWORD", 1, "authentication failed")
            .server(&db, "secrets_pw")
            .env("DBT_POSTGRES_PASSWORD", format!("{SECRET}Px")),
        case("wrong password in profiles.yml", 1, "authentication failed")
            .env("DBT_PROFILES_DIR", "PROJECT")
            .file("profiles.yml", profiles(&format!("{SECRET}Px"))),
        // TLS failures with a password set.
        case("TLS refused by the server", 1, "TLS").env(
            "RELUVIA_TRANSFORM_URL",
            good_url.replace("disable", "require"),
        ),
        case("TLS without a CA file", 2, "sslrootcert")
            .env(
                "RELUVIA_TRANSFORM_URL",
                good_url.replace("disable", "verify-full"),
            )
            .env("HOME", "/nonexistent"),
        // Template errors.
        case(
            "profiles.yml password with a Jinja error",
            2,
            "not shown: it is a secret",
        )
        .env("DBT_PROFILES_DIR", "PROJECT")
        .file("profiles.yml", profiles(&format!("\"{PASSWORD}{{{{ x\""))),
        case("profiles.yml password with a YAML error", 2, "invalid YAML")
            .env("DBT_PROFILES_DIR", "PROJECT")
            .file(
                "profiles.yml",
                profiles(&format!("\"{PASSWORD}\n      bad: [")),
            )
            .env("PGPASSWORD", PASSWORD),
        case(
            "model reading the password",
            2,
            "RELUVIA_TRANSFORM_PASSWORD",
        )
        .server(&db, "secrets_pw")
        .env("RELUVIA_TRANSFORM_PASSWORD", PASSWORD)
        .file("models/a.sql", model_reading("RELUVIA_TRANSFORM_PASSWORD")),
        case("model reading the url", 2, "RELUVIA_TRANSFORM_URL")
            .env("RELUVIA_TRANSFORM_URL", good_url.clone())
            .file("models/a.sql", model_reading("RELUVIA_TRANSFORM_URL")),
        case("model reading a dbt secret", 2, "DBT_ENV_SECRET_")
            .server(&db, "secrets_pw")
            .env("PGPASSWORD", PASSWORD)
            .env("DBT_ENV_SECRET_PW", PASSWORD)
            .file("models/a.sql", model_reading("DBT_ENV_SECRET_PW")),
        case(
            "compiler error naming the password variable",
            2,
            "PGPASSWORD",
        )
        .args(&["compile"])
        .server(&db, "secrets_pw")
        .env("PGPASSWORD", PASSWORD)
        .file(
            "models/a.sql",
            "{{ exceptions.raise_compiler_error(env_var('PGPASSWORD')) }}\n",
        ),
        // A failing model, with the password from each source.
        case("failing model", 1, "division by zero")
            .server(&db, "secrets_pw")
            .env("PG_ANALYTICS_PASSWORD", PASSWORD)
            .file(
                "models/a.sql",
                "{{ config(materialized='table') }}\nselect 1 / 0 as x\n",
            ),
        // Successes, with every log on.
        case("run with RUST_LOG=trace", 0, "Completed successfully")
            .env("RELUVIA_TRANSFORM_URL", good_url.clone())
            .env("RUST_LOG", "trace"),
        case("debug with RUST_LOG=debug", 0, "")
            .args(&["debug"])
            .server(&db, "secrets_pw")
            .env("PGPASSWORD", PASSWORD)
            .env("RELUVIA_TRANSFORM_URL", good_url.clone())
            .env("RUST_LOG", "debug"),
        case("debug with a profiles.yml password", 0, "")
            .args(&["debug"])
            .env("DBT_PROFILES_DIR", "PROJECT")
            .file(
                "profiles.yml",
                profiles("\"{{ env_var('DBT_ENV_SECRET_PASSWORD') }}\""),
            )
            .env("DBT_ENV_SECRET_PASSWORD", PASSWORD),
        case("compile and ls", 0, "")
            .args(&["compile"])
            .env("RELUVIA_TRANSFORM_URL", good_url.clone()),
        case("ls as JSON", 0, "")
            .args(&["ls", "--output", "json"])
            .env("RELUVIA_TRANSFORM_URL", good_url.clone()),
    ];
    // Every case in JSON logs too, as Meltano keeps them.
    let json: Vec<Case> = cases
        .iter()
        .map(|c| Case {
            name: c.name,
            args: c
                .args
                .iter()
                .cloned()
                .chain(["--log-format".to_string(), "json".to_string()])
                .collect(),
            env: c.env.clone(),
            files: c.files.clone(),
            code: c.code,
            says: c.says,
        })
        .collect();
    cases.extend(json);

    let mut leaks = Vec::new();
    for c in &cases {
        let dir = project(&[
            ("dbt_project.yml", "name: p\nprofile: p\n"),
            ("models/a.sql", "select 1 as x\n"),
        ]);
        let target = tempfile::tempdir().unwrap();
        for (path, content) in &c.files {
            write(dir.path(), path, content);
        }
        let pdir = dir.path().to_str().unwrap();
        let mut cmd = clean_command();
        cmd.env("HOME", dir.path()).current_dir(dir.path());
        for (k, v) in &c.env {
            if v == "PROJECT" {
                cmd.env(k, dir.path());
            } else {
                cmd.env(k, v);
            }
        }
        let args: Vec<String> = c
            .args
            .iter()
            .map(|a| a.replace("CONFIG", &format!("{pdir}/config.json")))
            .collect();
        let out = cmd
            .args(&args)
            .args(["--project-dir", pdir, "--target-path"])
            .arg(target.path())
            .output()
            .unwrap();
        let label = format!("{} ({})", c.name, args.join(" "));
        assert_eq!(
            out.status.code(),
            Some(c.code),
            "{label}: exit code\n{}{}",
            stdout(&out),
            stderr(&out)
        );
        assert!(
            stderr(&out).contains(c.says),
            "{label}: expected '{}' in\n{}",
            c.says,
            stderr(&out)
        );
        for (stream, text) in [("stdout", stdout(&out)), ("stderr", stderr(&out))] {
            if text.contains(SECRET) {
                leaks.push(format!("{label}: {stream}: {text}"));
            }
        }
        for f in files_under(dir.path())
            .into_iter()
            .chain(files_under(target.path()))
        {
            let written = c.files.iter().any(|(p, _)| f == dir.path().join(p));
            let text = String::from_utf8_lossy(&std::fs::read(&f).unwrap()).into_owned();
            if !written && text.contains(SECRET) {
                leaks.push(format!("{label}: {}", f.display()));
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "the password leaked:\n{}",
        leaks.join("\n")
    );
}

#[test]
fn secrets_are_never_rendered_into_models() {
    let db = TestDb::new("secret_render");
    role(&db, "secrets_render");
    let (host, port, _) = server();
    let profiles = tempfile::tempdir().unwrap();
    // dbt's secret variables are for profiles.yml: there they work.
    write(
        profiles.path(),
        "profiles.yml",
        &format!(
            "p:\n  target: dev\n  outputs:\n    dev:\n      type: postgres\n      host: {host}\n      port: {port}\n      user: secrets_render\n      password: \"{{{{ env_var('DBT_ENV_SECRET_PASSWORD') }}}}\"\n      dbname: {}\n",
            db.name
        ),
    );
    let run = |var: &str| {
        let dir = project(&[
            (
                "dbt_project.yml",
                "name: p\nprofile: p\nmodels:\n  p:\n    +materialized: table\n",
            ),
            ("models/ok.sql", "select 1 as x\n"),
            (
                "models/pw.sql",
                &format!("select '{{{{ env_var(\"{var}\", \"none\") }}}}' as pw\n"),
            ),
        ]);
        // Each variable holds the password (the URL one, a URL with it).
        let value = match var {
            "RELUVIA_TRANSFORM_URL" => format!(
                "postgres://secrets_render:{PASSWORD}@{host}:{port}/{}",
                db.name
            ),
            _ => PASSWORD.to_string(),
        };
        let out = clean_command()
            .args(["run", "--project-dir", dir.path().to_str().unwrap()])
            .env("DBT_PROFILES_DIR", profiles.path())
            .env("DBT_ENV_SECRET_PASSWORD", PASSWORD)
            .env(var, value)
            .output()
            .unwrap();
        (dir, out)
    };
    let mut messages = Vec::new();
    for var in [
        "RELUVIA_TRANSFORM_PASSWORD",
        "PG_ANALYTICS_PASSWORD",
        "DBT_POSTGRES_PASSWORD",
        "PGPASSWORD",
        "RELUVIA_TRANSFORM_URL",
        "DBT_ENV_SECRET_PASSWORD",
        "DBT_ENV_SECRET_OTHER",
    ] {
        let (dir, out) = run(var);
        assert_code(&out, 2);
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("models/pw.sql line 1: env_var('"), "{err}");
        messages.push(
            err.split_once("  ")
                .map_or(err.clone(), |(_, m)| m.to_string()),
        );
        for f in files_under(dir.path()) {
            let text = std::fs::read_to_string(&f).unwrap_or_default();
            assert!(
                !text.contains(SECRET) || f.ends_with("models/pw.sql"),
                "{var}: {}",
                f.display()
            );
        }
        assert!(
            !dir.path().join("target/manifest.json").exists(),
            "{var}: a manifest was written"
        );
    }
    // Nothing was built, not even the schema: the refusal is a compile error.
    assert_eq!(
        db.value("select count(*)::text from pg_namespace where nspname = 'analytics'"),
        Some("0".into())
    );
    insta::assert_snapshot!("env_var_refuses_secrets", messages.join(""));

    // Any other variable renders, and the profile's secret connects.
    let (_, out) = run("RELUVIA_SECRETS_TEST_PLAIN");
    assert_code(&out, 0);
    assert_eq!(
        db.value("select pw from analytics.pw"),
        Some(PASSWORD.into())
    );
}
