//! Every way users connect, through the binary: the precedence of every settings
//! source (the README's table), dbt profiles.yml, connection URLs, libpq's and
//! dbt-postgres' variables, TLS modes against a second throwaway cluster with a
//! certificate made here, and start-up retries.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use reluvia_sample::cluster::{Cluster, ClusterOptions};

fn pd(dir: &tempfile::TempDir) -> &str {
    dir.path().to_str().unwrap()
}

/// `name` line of `debug` as "value origin".
fn line(text: &str, name: &str) -> String {
    text.lines()
        .find(|l| l.trim_start().starts_with(&format!("{name} ")))
        .unwrap_or_else(|| panic!("{name} in {text}"))
        .split_whitespace()
        .skip(1)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A one-line error without its clock time, for snapshots.
fn from_error(err: &str) -> String {
    let at = err.find("error: ").unwrap_or(0);
    err[at..].trim_end().to_string()
}

/// A port nobody listens on.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn every_source_ranks_as_the_readme_says() {
    let home = tempfile::tempdir().unwrap();
    let profiles = tempfile::tempdir().unwrap();
    write(
        profiles.path(),
        "profiles.yml",
        "config:\n  send_anonymous_usage_stats: false\nshop:\n  target: dev\n  outputs:\n    dev:\n      type: postgres\n      host: 127.0.0.16\n      user: profile_user\n      pass: profile-secret\n      port: 1\n      dbname: d\n      schema: from_profile\n      threads: 3\n",
    );
    let cfg = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        cfg.path(),
        r#"{"host": "127.0.0.14", "threads": 6, "schema": "from_file"}"#,
    )
    .unwrap();
    let port = free_port().to_string();
    let url = format!("postgres://url_user:url-secret@127.0.0.13:{port}/d");
    // Highest first; each row is removed in turn and the next must show.
    let host_sources: Vec<(&str, String, &str)> = vec![
        (
            "RELUVIA_TRANSFORM_HOST",
            "127.0.0.11".into(),
            "env RELUVIA_TRANSFORM_HOST",
        ),
        (
            "PG_ANALYTICS_HOST",
            "127.0.0.12".into(),
            "env PG_ANALYTICS_HOST",
        ),
        (
            "RELUVIA_TRANSFORM_URL",
            url.clone(),
            "url (env RELUVIA_TRANSFORM_URL)",
        ),
        ("--config", cfg.path().display().to_string(), "config file"),
        (
            "DBT_POSTGRES_HOST",
            "127.0.0.15".into(),
            "env DBT_POSTGRES_HOST",
        ),
        (
            "DBT_PROFILES_DIR",
            profiles.path().display().to_string(),
            "profiles.yml",
        ),
        ("PGHOST", "127.0.0.17".into(), "env PGHOST"),
    ];
    let expected_hosts = [
        "127.0.0.11",
        "127.0.0.12",
        "127.0.0.13",
        "127.0.0.14",
        "127.0.0.15",
        "127.0.0.16",
        "127.0.0.17",
        "localhost",
    ];
    let debug = |sources: &[(&str, String, &str)], args: &[&str]| -> String {
        let mut c = clean_command();
        c.env("HOME", home.path())
            .env("PGPORT", &port)
            .env("PGUSER", "pg_user")
            .env("PGDATABASE", "d")
            .args(["debug", "--project-dir", "/nonexistent"])
            .args(args);
        for (k, v, _) in sources {
            if *k == "--config" {
                c.args(["--config", v]);
            } else {
                c.env(k, v);
            }
        }
        let out = c.output().unwrap();
        assert_code(&out, 1); // nothing listens there
        stdout(&out)
    };
    for skip in 0..=host_sources.len() {
        let t = debug(&host_sources[skip..], &[]);
        let got = line(&t, "host");
        assert!(
            got.starts_with(&format!("{} ", expected_hosts[skip])) || got == expected_hosts[skip],
            "without the top {skip} sources: host {got}"
        );
        if skip < host_sources.len() {
            assert!(got.contains(host_sources[skip].2), "{got}");
        } else {
            assert_eq!(got, "localhost default");
        }
    }

    // Flags beat everything; the threads chain crosses the other layers.
    let all = host_sources.clone();
    let t = debug(
        &[
            all[3].clone(),
            all[5].clone(),
            ("RELUVIA_TRANSFORM_THREADS", "8".into(), ""),
            ("DBT_POSTGRES_THREADS", "5".into(), ""),
        ],
        &["--threads", "9"],
    );
    assert_eq!(line(&t, "threads"), "9 flag --threads");
    let t = debug(
        &[
            all[3].clone(),
            all[5].clone(),
            ("RELUVIA_TRANSFORM_THREADS", "8".into(), ""),
            ("DBT_POSTGRES_THREADS", "5".into(), ""),
        ],
        &[],
    );
    assert_eq!(line(&t, "threads"), "8 env RELUVIA_TRANSFORM_THREADS");
    let t = debug(
        &[
            all[3].clone(),
            all[5].clone(),
            ("DBT_POSTGRES_THREADS", "5".into(), ""),
        ],
        &[],
    );
    assert!(line(&t, "threads").starts_with("6 config file"), "{t}");
    let t = debug(
        &[all[5].clone(), ("DBT_POSTGRES_THREADS", "5".into(), "")],
        &[],
    );
    assert_eq!(line(&t, "threads"), "5 env DBT_POSTGRES_THREADS");
    let t = debug(&[all[5].clone()], &[]);
    let profile_origin = format!(
        "{} (profile shop, target dev)",
        profiles.path().join("profiles.yml").display()
    );
    assert_eq!(line(&t, "threads"), format!("3 {profile_origin}"));
    assert_eq!(line(&t, "schema"), format!("from_profile {profile_origin}"));
    // The profile's user beats PGUSER; its password is masked like any other.
    assert_eq!(line(&t, "user"), format!("profile_user {profile_origin}"));
    assert_eq!(line(&t, "password"), format!("******** {profile_origin}"));
    assert!(!t.contains("profile-secret"));
    let t = debug(&[], &[]);
    assert_eq!(line(&t, "threads"), "4 default");
    assert_eq!(line(&t, "user"), "pg_user env PGUSER");

    // The URL: its parts rank as one source, the URL itself is shown masked.
    let t = debug(&all[2..], &[]);
    assert_eq!(
        line(&t, "url"),
        format!("postgres://url_user:********@127.0.0.13:{port}/d env RELUVIA_TRANSFORM_URL")
    );
    assert_eq!(line(&t, "user"), "url_user url (env RELUVIA_TRANSFORM_URL)");
    assert_eq!(
        line(&t, "password"),
        "******** url (env RELUVIA_TRANSFORM_URL)"
    );
    assert!(!t.contains("url-secret"), "{t}");
}

#[test]
fn a_connection_url_connects_and_never_shows_its_password() {
    let db = TestDb::new("url");
    db.exec("do $$ begin if not exists (select from pg_roles where rolname = 'pw_url') then create role pw_url login password 'Url-S3cret'; end if; end $$; grant pw_users to pw_url;");
    db.exec(&format!("grant all on database \"{}\" to pw_url;", db.name));
    let dir = project(&[
        ("dbt_project.yml", "name: p\n"),
        ("models/a.sql", "select 1 as x\n"),
    ]);
    let (host, port, _) = server();
    let url = format!(
        "postgresql://pw_url:Url-S3cret@{host}:{port}/{}?application_name=from-url&sslmode=disable",
        db.name
    );
    let out = clean_command()
        .args(["debug", "--project-dir", pd(&dir)])
        .env("RELUVIA_TRANSFORM_URL", &url)
        .output()
        .unwrap();
    assert_code(&out, 0);
    let t = stdout(&out);
    assert!(t.contains("Connection: OK (pw_url@"), "{t}");
    assert!(!t.contains("Url-S3cret"), "{t}");
    assert_eq!(
        line(&t, "application_name"),
        "from-url url (env RELUVIA_TRANSFORM_URL)"
    );
    assert_eq!(
        line(&t, "sslmode"),
        "disable url (env RELUVIA_TRANSFORM_URL)"
    );

    // A wrong password in the URL: one line naming user and host, still masked.
    let bad = url.replace("Url-S3cret", "Wrong-S3cret");
    let out = clean_command()
        .args(["run", "--project-dir", pd(&dir)])
        .env("RELUVIA_TRANSFORM_URL", &bad)
        .output()
        .unwrap();
    assert_code(&out, 1);
    assert!(
        stderr(&out).contains(&format!(
            "authentication failed for user 'pw_url' at {host}:{port}"
        )),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("S3cret"));

    // A URL that cannot be honoured is a settings error, masked too.
    let out = clean_command()
        .args(["run", "--project-dir", pd(&dir)])
        .env(
            "RELUVIA_TRANSFORM_URL",
            "postgres://u:Very-S3cret@h/d?target_session_attrs=any",
        )
        .output()
        .unwrap();
    assert_code(&out, 2);
    let err = stderr(&out);
    assert!(err.contains("invalid connection URL postgres://u:********@h/d?target_session_attrs=any: unsupported parameter 'target_session_attrs'"), "{err}");
    assert!(err.contains("(from env RELUVIA_TRANSFORM_URL)"), "{err}");
    insta::assert_snapshot!("bad_url", from_error(&err));
    assert!(!err.contains("S3cret"));
}

#[test]
fn libpq_and_dbt_postgres_variables_alone_are_enough() {
    let db = TestDb::new("envnames");
    let dir = project(&[
        (
            "dbt_project.yml",
            "name: p\nmodels:\n  p:\n    +materialized: table\n",
        ),
        (
            "models/a.sql",
            "select current_user::text as who, current_setting('search_path') as sp\n",
        ),
    ]);
    let (host, port, user) = server();
    let out = clean_command()
        .args(["run", "--project-dir", pd(&dir)])
        .env("PGHOST", &host)
        .env("PGPORT", &port)
        .env("PGUSER", &user)
        .env("PGDATABASE", &db.name)
        .env("PGSSLMODE", "disable")
        .output()
        .unwrap();
    assert_code(&out, 0);
    assert_eq!(db.lines("select who from analytics.a"), vec![user.clone()]);

    // Meltano's dbt-postgres utility names, with its search_path and schema.
    let out = clean_command()
        .args(["run"])
        .env("DBT_POSTGRES_HOST", &host)
        .env("DBT_POSTGRES_PORT", &port)
        .env("DBT_POSTGRES_USER", &user)
        .env("DBT_POSTGRES_DBNAME", &db.name)
        .env("DBT_POSTGRES_SCHEMA", "from_dbt")
        .env("DBT_POSTGRES_SEARCH_PATH", "from_dbt, public")
        .env("DBT_POSTGRES_PROJECT_DIR", pd(&dir))
        .output()
        .unwrap();
    assert_code(&out, 0);
    assert_eq!(
        db.lines("select sp from from_dbt.a"),
        vec!["from_dbt, public"]
    );
}

/// A profiles.yml in a folder of its own, pointing at `db`.
fn profiles_for(db: &TestDb) -> tempfile::TempDir {
    let (host, port, _) = server();
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "profiles.yml",
        &format!(
            "shop:\n  target: \"{{{{ env_var('SHOP_TARGET', 'dev') }}}}\"\n  outputs:\n    dev:\n      type: postgres\n      host: {host}\n      port: {port}\n      user: \"{{{{ env_var('SHOP_USER') }}}}\"\n      password: \"{{{{ env_var('SHOP_PASSWORD', '') }}}}\"\n      dbname: {}\n      schema: dev_schema\n      threads: 2\n    prod:\n      type: postgres\n      host: {host}\n      port: \"{{{{ env_var('SHOP_PORT') | as_number }}}}\"\n      user: \"{{{{ env_var('SHOP_USER') }}}}\"\n      database: {}\n      schema: prod_schema\nother:\n  target: x\n  outputs:\n    x:\n      type: snowflake\n      account: \"{{{{ env_var('NEVER_SET') }}}}\"\n",
            db.name, db.name
        ),
    );
    dir
}

#[test]
fn profiles_yml_is_read_like_dbt_reads_it() {
    let db = TestDb::new("profiles");
    let (_, port, user) = server();
    let profiles = profiles_for(&db);
    let dir = project(&[
        (
            "dbt_project.yml",
            "name: shop\nprofile: shop\nmodels:\n  shop:\n    +materialized: table\n",
        ),
        (
            "models/t.sql",
            "select '{{ target.name }}' as target_name\n",
        ),
    ]);
    let cmd = |args: &[&str]| -> Command {
        let mut c = clean_command();
        c.env("HOME", profiles.path()) // no ~/.dbt there
            .env("SHOP_USER", &user)
            .env("SHOP_PORT", &port)
            .args(args);
        c
    };
    // DBT_PROFILES_DIR, the project's profile, the profile's default target.
    let out = cmd(&["run", "--project-dir", pd(&dir)])
        .env("DBT_PROFILES_DIR", profiles.path())
        .output()
        .unwrap();
    assert_code(&out, 0);
    assert_eq!(
        db.lines("select target_name from dev_schema.t"),
        vec!["dev"]
    );
    // --profiles-dir and --target; `target.name` follows the target.
    let out = cmd(&[
        "run",
        "--project-dir",
        pd(&dir),
        "--profiles-dir",
        profiles.path().to_str().unwrap(),
        "--target",
        "prod",
    ])
    .output()
    .unwrap();
    assert_code(&out, 0);
    assert_eq!(
        db.lines("select target_name from prod_schema.t"),
        vec!["prod"]
    );
    // env_var() in the target itself.
    let out = cmd(&["run", "--project-dir", pd(&dir)])
        .env("DBT_PROFILES_DIR", profiles.path())
        .env("SHOP_TARGET", "prod")
        .output()
        .unwrap();
    assert_code(&out, 0);

    let fails = |c: &mut Command| -> String {
        let out = c.output().unwrap();
        assert_code(&out, 2);
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        err
    };
    let file = profiles.path().join("profiles.yml").display().to_string();
    // An env_var() without a default that is not set, in the chosen output.
    let err = fails(
        cmd(&["run", "--project-dir", pd(&dir)])
            .env("DBT_PROFILES_DIR", profiles.path())
            .env_remove("SHOP_USER"),
    );
    assert!(
        err.contains(&format!(
            "{file}: profile 'shop', target 'dev': user: cannot render"
        )),
        "{err}"
    );
    assert!(
        err.contains("env_var('SHOP_USER') is not set and has no default"),
        "{err}"
    );
    // Unknown profile or target, named with what exists.
    let err = fails(
        cmd(&["run", "--project-dir", pd(&dir), "--profile", "nope"])
            .env("DBT_PROFILES_DIR", profiles.path()),
    );
    assert!(
        err.contains(&format!(
            "{file}: no profile 'nope' (asked for by flag --profile); it has 'shop', 'other'"
        )),
        "{err}"
    );
    let err = fails(
        cmd(&["run", "--project-dir", pd(&dir), "--target", "qa"])
            .env("DBT_PROFILES_DIR", profiles.path()),
    );
    assert!(
        err.contains("no output 'qa' (asked for by flag --target); it has 'dev', 'prod'"),
        "{err}"
    );
    // Another adapter's profile.
    let err = fails(
        cmd(&["run", "--project-dir", pd(&dir), "--profile", "other"])
            .env("DBT_PROFILES_DIR", profiles.path())
            .env("NEVER_SET", "x"),
    );
    assert!(
        err.contains("type is 'snowflake', but reluvia-transform only connects to PostgreSQL"),
        "{err}"
    );
    // A profiles_dir without the file; a malformed file, named.
    let empty = tempfile::tempdir().unwrap();
    let err = fails(cmd(&["run", "--project-dir", pd(&dir)]).env("DBT_PROFILES_DIR", empty.path()));
    assert!(
        err.contains(&format!(
            "profiles_dir {} (env DBT_PROFILES_DIR) has no profiles.yml",
            empty.path().display()
        )),
        "{err}"
    );
    write(empty.path(), "profiles.yml", "shop: [unclosed\n");
    let err = fails(cmd(&["run", "--project-dir", pd(&dir)]).env("DBT_PROFILES_DIR", empty.path()));
    assert!(
        err.contains(&format!(
            "{}: invalid YAML",
            empty.path().join("profiles.yml").display()
        )),
        "{err}"
    );

    // No profiles.yml anywhere is fine when the settings come from elsewhere.
    let out = db
        .cmd()
        .env("HOME", empty.path().join("nowhere"))
        .args(["run", "--project-dir", pd(&dir)])
        .output()
        .unwrap();
    assert_code(&out, 0);
    // ~/.dbt/profiles.yml is the default place.
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir(home.path().join(".dbt")).unwrap();
    std::fs::copy(
        profiles.path().join("profiles.yml"),
        home.path().join(".dbt/profiles.yml"),
    )
    .unwrap();
    let out = cmd(&["debug", "--project-dir", pd(&dir)])
        .env("HOME", home.path())
        .output()
        .unwrap();
    assert_code(&out, 0);
    assert!(
        stdout(&out).contains(".dbt/profiles.yml (profile shop, target dev)"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn transient_start_up_failures_are_retried_until_the_server_answers() {
    let db = TestDb::new("retry");
    let dir = project(&[
        ("dbt_project.yml", "name: p\n"),
        ("models/a.sql", "select 1 as x\n"),
    ]);
    let (_, real_port, user) = server();
    let port = free_port();
    let started = Instant::now();
    let child = clean_command()
        .args(["run", "--project-dir", pd(&dir)])
        .env("PG_ANALYTICS_HOST", "127.0.0.1")
        .env("PG_ANALYTICS_PORT", port.to_string())
        .env("PG_ANALYTICS_USER", &user)
        .env("PG_ANALYTICS_DBNAME", &db.name)
        .env("RELUVIA_TRANSFORM_CONNECT_RETRY_TIMEOUT", "20")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Nothing listens for a second (connection refused), then a server that is
    // "starting up" once (57P03), then the real one behind a proxy.
    std::thread::sleep(Duration::from_millis(1000));
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    std::thread::spawn(move || {
        for (i, conn) in listener.incoming().enumerate() {
            let Ok(conn) = conn else { continue };
            if i == 0 {
                starting_up(conn);
            } else {
                proxy(conn, &real_port);
            }
        }
    });
    let out = child.wait_with_output().unwrap();
    assert_code(&out, 0);
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "cannot connect to PostgreSQL at 127.0.0.1:{port} yet (Connection refused"
        )),
        "{err}"
    );
    assert!(
        err.contains("yet (the database system is starting up); retrying in"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_eq!(
        db.value("select x::text from analytics.a"),
        Some("1".into())
    );

    // Never retried: a wrong password (named with user and host) or a missing database.
    db.exec("do $$ begin if not exists (select from pg_roles where rolname = 'pw_retry') then create role pw_retry login password 'right'; end if; end $$; grant pw_users to pw_retry;");
    let started = Instant::now();
    let out = db
        .cmd()
        .args(["run", "--project-dir", pd(&dir)])
        .env("PG_ANALYTICS_USER", "pw_retry")
        .env("PG_ANALYTICS_PASSWORD", "wrong")
        .env("RELUVIA_TRANSFORM_CONNECT_RETRY_TIMEOUT", "30")
        .output()
        .unwrap();
    assert_code(&out, 1);
    let err = stderr(&out);
    assert!(!err.contains("retrying"), "{err}");
    assert!(
        err.contains("authentication failed for user 'pw_retry' at 127.0.0.1:"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    let out = db
        .cmd()
        .args(["run", "--project-dir", pd(&dir)])
        .env("PG_ANALYTICS_DBNAME", "no_such_db")
        .env("RELUVIA_TRANSFORM_CONNECT_RETRY_TIMEOUT", "30")
        .output()
        .unwrap();
    assert_code(&out, 1);
    assert!(!stderr(&out).contains("retrying"));

    // SIGTERM (Meltano's --timeout) while retrying: exit 1 at once, nothing run.
    let child = db
        .cmd()
        .args(["run", "--project-dir", pd(&dir)])
        .env("PG_ANALYTICS_PORT", free_port().to_string())
        .env("RELUVIA_TRANSFORM_CONNECT_RETRY_TIMEOUT", "60")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    let started = Instant::now();
    ok(Command::new("kill").args(["-15", &child.id().to_string()]));
    let out = child.wait_with_output().unwrap();
    assert_code(&out, 1);
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(
        stderr(&out).contains("interrupted while connecting to PostgreSQL; nothing was run"),
        "{}",
        stderr(&out)
    );

    // A server that never comes: the retries stop after the budget, and say so.
    let out = db
        .cmd()
        .args(["run", "--project-dir", pd(&dir)])
        .env("PG_ANALYTICS_PORT", free_port().to_string())
        .env("RELUVIA_TRANSFORM_CONNECT_RETRY_TIMEOUT", "1")
        .output()
        .unwrap();
    assert_code(&out, 1);
    let last = stderr(&out).lines().last().unwrap_or_default().to_string();
    assert!(last.contains("tries over 1s: Connection refused"), "{last}");
}

/// Answers one connection as a server still starting up (SQLSTATE 57P03).
fn starting_up(mut conn: TcpStream) {
    let read_message = |conn: &mut TcpStream| -> Option<Vec<u8>> {
        let mut len = [0u8; 4];
        conn.read_exact(&mut len).ok()?;
        let mut body = vec![0u8; (u32::from_be_bytes(len) as usize).saturating_sub(4)];
        conn.read_exact(&mut body).ok()?;
        Some(body)
    };
    let Some(first) = read_message(&mut conn) else {
        return;
    };
    if first.starts_with(&80877103u32.to_be_bytes()) {
        let _ = conn.write_all(b"N"); // no TLS here
        if read_message(&mut conn).is_none() {
            return;
        }
    }
    let mut fields = Vec::new();
    for (tag, value) in [
        (b'S', "FATAL"),
        (b'V', "FATAL"),
        (b'C', "57P03"),
        (b'M', "the database system is starting up"),
    ] {
        fields.push(tag);
        fields.extend_from_slice(value.as_bytes());
        fields.push(0);
    }
    fields.push(0);
    let mut msg = vec![b'E'];
    msg.extend_from_slice(&((fields.len() + 4) as u32).to_be_bytes());
    msg.extend_from_slice(&fields);
    let _ = conn.write_all(&msg);
}

/// Relays one connection to the test server.
fn proxy(client: TcpStream, real_port: &str) {
    let Ok(server) = TcpStream::connect(("127.0.0.1", real_port.parse::<u16>().unwrap())) else {
        return;
    };
    let (mut c1, mut s1) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let (mut c2, mut s2) = (client, server);
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut c1, &mut s1);
        let _ = s1.shutdown(std::net::Shutdown::Write);
    });
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut s2, &mut c2);
        let _ = c2.shutdown(std::net::Shutdown::Write);
    });
}

/// A second throwaway PostgreSQL with TLS on (`hostssl` only), its certificate
/// signed by a CA made for the test, for `localhost` only. Stopped and removed on
/// drop.
struct TlsCluster {
    /// The certificates and keys: `ca.crt`, `other_ca.crt`, `server.crt`, ...
    dir: tempfile::TempDir,
    cluster: Cluster,
}

fn ok(c: &mut Command) -> Output {
    let out = c.output().unwrap_or_else(|e| panic!("{c:?}: {e}"));
    assert!(
        out.status.success(),
        "{c:?}: {}{}",
        stdout(&out),
        stderr(&out)
    );
    out
}

fn openssl(dir: &Path, args: &[&str]) {
    ok(Command::new("openssl").current_dir(dir).args(args));
}

impl TlsCluster {
    fn start() -> TlsCluster {
        let dir = tempfile::tempdir().unwrap();
        // Certificates: a CA, a server certificate for localhost signed by it, and
        // an unrelated CA.
        let certs = dir.path();
        for ca in ["ca", "other_ca"] {
            openssl(
                certs,
                &[
                    "req",
                    "-x509",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:prime256v1",
                    "-nodes",
                    "-keyout",
                    &format!("{ca}.key"),
                    "-out",
                    &format!("{ca}.crt"),
                    "-days",
                    "2",
                    "-subj",
                    &format!("/CN=reluvia test {ca}"),
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-addext",
                    "keyUsage=critical,keyCertSign,cRLSign",
                ],
            );
        }
        openssl(
            certs,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=localhost",
            ],
        );
        std::fs::write(
            certs.join("server.ext"),
            "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        openssl(
            certs,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.crt",
                "-days",
                "2",
                "-extfile",
                "server.ext",
            ],
        );
        let options = ClusterOptions::new()
            .max_connections(20)
            .conf_line("shared_buffers = 16MB")
            .conf_line("ssl = on")
            .conf_line("ssl_cert_file = 'server.crt'")
            .conf_line("ssl_key_file = 'server.key'")
            .pg_hba(
                "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n",
            )
            .data_file("server.crt", certs.join("server.crt"))
            .data_file("server.key", certs.join("server.key"));
        let cluster = Cluster::start_with(&options).expect("start the TLS cluster");
        TlsCluster { dir, cluster }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

#[test]
fn tls_modes_behave_as_libpq() {
    let tls = TlsCluster::start();
    let dir = project(&[("dbt_project.yml", "name: p\n")]);
    let nowhere = tempfile::tempdir().unwrap(); // a HOME without ~/.postgresql
    let debug = |host: &str, port: &str, mode: &str, ca: Option<&str>| -> Output {
        let mut c = clean_command();
        c.args(["debug", "--project-dir", pd(&dir)])
            .env("HOME", nowhere.path())
            .env("PG_ANALYTICS_HOST", host)
            .env("PG_ANALYTICS_PORT", port)
            .env("PG_ANALYTICS_USER", "postgres")
            .env("PG_ANALYTICS_DBNAME", "postgres")
            .env("RELUVIA_TRANSFORM_SSLMODE", mode);
        if let Some(ca) = ca {
            c.env("RELUVIA_TRANSFORM_SSLROOTCERT", ca);
        }
        c.output().unwrap()
    };
    let port = tls.cluster.port().to_string();
    let (ca, other_ca) = (tls.path("ca.crt"), tls.path("other_ca.crt"));
    let connected = |o: &Output, encrypted: bool| {
        assert_code(o, 0);
        let t = stdout(o);
        let want = if encrypted {
            " over TLSv1."
        } else {
            " without TLS)"
        };
        assert!(t.contains("Connection: OK") && t.contains(want), "{t}");
    };
    let failed = |o: &Output, why: &str| {
        assert_code(o, 1);
        let err = stderr(o);
        assert!(err.contains(why), "expected '{why}' in {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    };

    // The TLS-only server.
    failed(&debug("localhost", &port, "disable", None), "no encryption");
    connected(&debug("localhost", &port, "prefer", None), true);
    connected(&debug("localhost", &port, "require", None), true);
    // require with a root certificate verifies the chain, as libpq does.
    connected(&debug("127.0.0.1", &port, "require", Some(&ca)), true);
    failed(
        &debug("localhost", &port, "require", Some(&other_ca)),
        "TLS connection to PostgreSQL at localhost",
    );
    connected(&debug("127.0.0.1", &port, "verify-ca", Some(&ca)), true);
    failed(
        &debug("localhost", &port, "verify-ca", Some(&other_ca)),
        "UnknownIssuer",
    );
    connected(&debug("localhost", &port, "verify-full", Some(&ca)), true);
    failed(
        &debug("127.0.0.1", &port, "verify-full", Some(&ca)),
        "(sslmode verify-full, from env RELUVIA_TRANSFORM_SSLMODE)",
    );
    let o = debug("127.0.0.1", &port, "verify-full", Some(&ca));
    assert!(stderr(&o).contains("not valid for name"), "{}", stderr(&o));
    insta::with_settings!({filters => vec![(r":\d+ failed", ":PORT failed")]}, {
        insta::assert_snapshot!("verify_full_wrong_name", from_error(&stderr(&o)));
    });
    // verify modes without a CA file: a settings problem, said before connecting.
    let o = debug("localhost", &port, "verify-full", None);
    assert_code(&o, 2);
    assert!(
        stderr(&o).contains("set sslrootcert to its PEM file"),
        "{}",
        stderr(&o)
    );
    let o = debug(
        "localhost",
        &port,
        "verify-ca",
        Some(&tls.path("server.ext")),
    );
    assert_code(&o, 2);
    assert!(
        stderr(&o).contains("no certificate in it"),
        "{}",
        stderr(&o)
    );

    // The plain test server: prefer falls back, require refuses.
    let (host, plain_port, _) = server();
    connected(&debug(&host, &plain_port, "prefer", None), false);
    failed(
        &debug(&host, &plain_port, "require", None),
        "server does not support TLS",
    );

    // A run over TLS, with the query cancelled over TLS too on SIGTERM.
    let models = project(&[
        (
            "dbt_project.yml",
            "name: p\nmodels:\n  p:\n    +materialized: table\n",
        ),
        (
            "models/slow.sql",
            "select ssl from pg_stat_ssl, pg_sleep(30) where pid = pg_backend_pid()\n",
        ),
    ]);
    let child = clean_command()
        .args(["run", "--project-dir", pd(&models)])
        .env("PG_ANALYTICS_HOST", "localhost")
        .env("PG_ANALYTICS_PORT", &port)
        .env("PG_ANALYTICS_USER", "postgres")
        .env("PG_ANALYTICS_DBNAME", "postgres")
        .env("RELUVIA_TRANSFORM_SSLMODE", "verify-full")
        .env("RELUVIA_TRANSFORM_SSLROOTCERT", &ca)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let running = |pattern: &str| -> String {
        let out = tls
            .cluster
            .psql("postgres")
            .arg("-Atc")
            .arg(format!("select count(*) from pg_stat_activity a join pg_stat_ssl s using (pid) where a.query like '{pattern}' and a.state = 'active' and s.ssl"))
            .output()
            .unwrap();
        stdout(&out).trim().to_string()
    };
    let mut seen = false;
    for _ in 0..200 {
        if running("create table%pg_sleep(30)%") == "1" {
            seen = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(seen, "the build never ran over TLS");
    ok(Command::new("kill").args(["-15", &child.id().to_string()]));
    let out = child.wait_with_output().unwrap();
    assert_code(&out, 1);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        running("create table%pg_sleep(30)%"),
        "0",
        "the query was not cancelled"
    );
}
