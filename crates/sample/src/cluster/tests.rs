//! The throwaway cluster, started for real: temporary, kept, with options, shared.

use super::*;

/// The value `sql` returns in the database of connection URL `url`, by `psql`
/// (which also shows the URL works for the demo's users).
fn query_one(url: &str, sql: &str) -> Result<String, String> {
    let psql = find_bin_dir()?.join("psql");
    let out = client_command(&psql)
        .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d"])
        .arg(url)
        .arg("-c")
        .arg(sql)
        .output()
        .map_err(|e| format!("psql: {e}"))?;
    if !out.status.success() {
        return Err(format!("{url}: {}", output_text(&out)));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text.strip_suffix('\n').unwrap_or(&text).to_string())
}

#[test]
fn start_connect_create_database_stop() {
    let cluster = Cluster::start().expect("start");
    assert_eq!(cluster.host(), "127.0.0.1");
    assert_eq!(cluster.user(), "postgres");
    assert!(cluster.port() > 0);
    assert_eq!(
        cluster.url("x y"),
        format!("postgresql://postgres@127.0.0.1:{}/x%20y", cluster.port())
    );
    let user = query_one(&cluster.url("postgres"), "SELECT current_user::text").expect("query");
    assert_eq!(user, "postgres");
    let encoding = query_one(
        &cluster.url("postgres"),
        "SELECT current_setting('server_encoding')",
    )
    .expect("query");
    assert_eq!(encoding, "UTF8");

    cluster.create_database("Demo-DB").expect("createdb");
    let db = query_one(&cluster.url("Demo-DB"), "SELECT current_database()::text").expect("query");
    assert_eq!(db, "Demo-DB");
    let err = cluster.create_database("Demo-DB").expect_err("exists");
    assert!(
        err.contains("already exists") && !err.contains('\n'),
        "{err}"
    );

    let root = cluster.root.clone();
    let data = cluster.data.clone();
    let port = cluster.port();
    assert!(data.join("PG_VERSION").is_file());
    cluster.stop();
    assert!(!data.exists() && !root.exists(), "directory left behind");
    assert!(
        std::net::TcpStream::connect((HOST, port)).is_err(),
        "server still up"
    );
}

#[test]
fn two_clusters_get_different_ports_and_drop_cleans_up() {
    let a = Cluster::start().expect("start a");
    let b = Cluster::start().expect("start b");
    assert_ne!(a.port(), b.port());
    assert_ne!(a.root, b.root);
    for c in [&a, &b] {
        let one = query_one(&c.url("postgres"), "SELECT '1'::text").expect("query");
        assert_eq!(one, "1");
    }
    let roots = [a.root.clone(), b.root.clone()];
    drop(a);
    drop(b);
    assert!(roots.iter().all(|r| !r.exists()));
}

#[test]
fn kept_cluster_survives_until_its_stop_command() {
    let cluster = Cluster::start().expect("start");
    let root = cluster.root.clone();
    let kept = cluster.keep();
    assert!(root.exists());
    assert_eq!(kept.to_string(), kept.stop_command);
    let one = query_one(&kept.url("postgres"), "SELECT 'up'::text").expect("still running");
    assert_eq!(one, "up");
    let status = Command::new("sh")
        .arg("-c")
        .arg(&kept.stop_command)
        .stdout(Stdio::null())
        .status()
        .expect("sh");
    assert!(status.success(), "{}", kept.stop_command);
    assert!(!root.exists());
    assert!(std::net::TcpStream::connect((HOST, kept.port)).is_err());
}

/// The owner and mode of a file, by `stat`.
fn owner_and_mode(path: &Path) -> String {
    let out = Command::new("stat")
        .args(["-c", "%U %a"])
        .arg(path)
        .output()
        .expect("stat");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The user the server runs as: `postgres` when we are root, else ourselves.
fn server_user() -> String {
    if running_as_root() {
        return USER.to_string();
    }
    let out = Command::new("id").arg("-un").output().expect("id");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn options_configure_the_server() {
    let extra = std::env::temp_dir().join(format!("reluvia-pg-test-extra-{}", std::process::id()));
    std::fs::write(&extra, "hello from the test\n").expect("write");
    let options = ClusterOptions::new()
        .max_connections(20)
        .timezone("Pacific/Chatham")
        .conf_line("work_mem = '7MB'")
        .pg_hba(
            "local all all trust\nhost all nobody 127.0.0.1/32 reject\nhost all all 127.0.0.1/32 trust\n",
        )
        .data_file("extra.txt", &extra);
    let cluster = Cluster::start_with(&options).expect("start");
    let _ = std::fs::remove_file(&extra);
    let url = cluster.url("postgres");
    let show = |setting: &str| query_one(&url, &format!("SHOW {setting}")).expect("show");
    assert_eq!(show("max_connections"), "20");
    assert_eq!(show("timezone"), "Pacific/Chatham");
    assert_eq!(show("work_mem"), "7MB");
    assert_eq!(show("fsync"), "off");
    let rules = query_one(
        &url,
        "SELECT string_agg(type || ' ' || array_to_string(user_name, ',') || ' ' || auth_method, '; ' ORDER BY line_number) FROM pg_hba_file_rules",
    )
    .expect("hba");
    assert_eq!(rules, "local all trust; host nobody reject; host all trust");
    let copied = cluster.data.join("extra.txt");
    assert_eq!(owner_and_mode(&copied), format!("{} 600", server_user()));
    assert_eq!(
        query_one(&url, "SELECT pg_read_file('extra.txt')").expect("read"),
        "hello from the test\n"
    );
    // The shared-only operations leave a temporary cluster to its drop.
    assert!(!cluster.shared);
    cluster.execute("postgres", "SELECT 1").expect("execute");
    let err = cluster
        .execute("postgres", "SELECT nope")
        .expect_err("bad SQL");
    assert!(err.contains("nope") && !err.contains('\n'), "{err}");
}

#[test]
fn shared_cluster_is_reused_until_stopped() {
    let dir = std::env::temp_dir().join(format!("reluvia-pg-test-shared-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let options = ClusterOptions::new().timezone("Asia/Kathmandu");
    // Two at once: they take turns and share one server.
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| Cluster::shared(&dir, &options).expect("shared a"));
        let b = s.spawn(|| Cluster::shared(&dir, &options).expect("shared b"));
        (a.join().expect("a"), b.join().expect("b"))
    });
    assert_eq!(a.port(), b.port());
    let port = a.port();
    assert_eq!(a.data, dir);
    let url = a.url("postgres");
    assert_eq!(
        query_one(&url, "SHOW timezone").expect("tz"),
        "Asia/Kathmandu"
    );
    a.execute("postgres", "CREATE TABLE marker (x int)")
        .expect("marker");
    drop(a);
    drop(b);
    assert!(!Path::new(&format!("{}.lock", dir.display())).exists());

    // Dropped, it still runs; the next call reuses it and rewrites pg_hba.conf.
    let hba = "local all all trust\nhost all all 127.0.0.1/32 trust\nhost all nobody 127.0.0.1/32 reject\n";
    let again = Cluster::shared(&dir, &options.clone().pg_hba(hba)).expect("reuse");
    assert_eq!(again.port(), port);
    assert_eq!(
        query_one(&url, "SELECT count(*)::text FROM marker").expect("marker kept"),
        "0"
    );
    assert_eq!(
        query_one(
            &url,
            "SELECT count(*)::text FROM pg_hba_file_rules WHERE auth_method = 'reject'"
        )
        .expect("hba"),
        "1"
    );
    drop(again);

    // Stopped, the directory stays; the next call starts a fresh cluster there.
    assert!(Cluster::stop_shared(&dir).expect("stop"));
    assert!(!Cluster::stop_shared(&dir).expect("stop again"));
    assert!(
        std::net::TcpStream::connect((HOST, port)).is_err(),
        "server still up"
    );
    assert!(dir.join("PG_VERSION").is_file());
    let fresh = Cluster::shared(&dir, &options).expect("fresh");
    let missing = query_one(&fresh.url("postgres"), "SELECT count(*) FROM marker");
    assert!(missing.is_err(), "old data survived: {missing:?}");
    let port = fresh.port();
    fresh.stop();
    assert!(
        std::net::TcpStream::connect((HOST, port)).is_err(),
        "server still up"
    );
    assert!(dir.join("PG_VERSION").is_file());
    let _ = std::fs::remove_dir_all(&dir);

    // A directory that is not a cluster's is never removed.
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("precious.txt"), "keep me").expect("write");
    let err = Cluster::shared(&dir, &options).expect_err("not a data directory");
    assert!(err.contains("not removing it"), "{err}");
    assert!(dir.join("precious.txt").is_file());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bin_dir_errors_say_what_to_do() {
    let empty = std::env::temp_dir().join(format!("reluvia-pg-test-empty-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&empty);
    let err = find_bin_dir_in(
        Some(empty.clone().into_os_string()),
        Path::new("/nonexistent"),
        || None,
    )
    .expect_err("empty dir is no bin dir");
    assert!(err.contains(BIN_ENV), "{err}");
    let err = find_bin_dir_in(None, &empty, || None).expect_err("nothing installed");
    assert!(
        err.contains("apt-get install postgresql") && !err.contains('\n'),
        "{err}"
    );
    let err = find_bin_dir_in(None, &empty, || Some(empty.clone()))
        .expect_err("pg_config without server");
    assert!(err.contains("apt-get install postgresql"), "{err}");
    let _ = std::fs::remove_dir_all(&empty);
    // On this machine the Debian layout has a server.
    let found = find_bin_dir_in(None, Path::new("/usr/lib/postgresql"), || None).expect("found");
    assert!(found.join("initdb").is_file());
}

#[test]
fn quoting_helpers() {
    assert_eq!(shell_quote("/tmp/a-b_c.1"), "/tmp/a-b_c.1");
    assert_eq!(shell_quote("it's here"), "'it'\\''s here'");
    assert_eq!(conf_quote("a'b\\c"), "a''b\\\\c");
    assert_eq!(last_lines("a\n\nb\nc\n", 2), "b | c");
    assert_eq!(last_lines("", 2), "(no output)");
}

/// The generator's output loads into the tables it describes: COPY accepts every
/// value (escaping, timestamps, JSON) and the primary keys hold.
#[test]
fn generated_raw_data_loads() {
    use crate::generate::{generate, GenOptions};
    let cluster = Cluster::start().expect("start");
    cluster.create_database("raw").expect("createdb");
    let end = chrono::NaiveDate::from_ymd_opt(2026, 11, 24).expect("date");
    let now = end.and_hms_opt(18, 3, 11).expect("time");
    let tables = generate(&GenOptions {
        seed: 1,
        days: 30,
        sessions_per_day: 40,
        end,
        now,
    });
    let out = cluster
        .psql("raw")
        .arg("-c")
        .arg(crate::contract::ddl())
        .output()
        .expect("psql");
    assert!(out.status.success(), "{}", output_text(&out));
    for data in &tables {
        let copy = format!(
            "COPY {}.{} ({}) FROM STDIN",
            data.schema,
            data.table,
            data.columns.join(", ")
        );
        let mut child = cluster
            .psql("raw")
            .arg("-c")
            .arg(&copy)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("psql");
        let mut stdin = child.stdin.take().expect("stdin");
        let text = data.copy_text.clone();
        let writer = std::thread::spawn(move || stdin.write_all(text.as_bytes()));
        let out = child.wait_with_output().expect("psql");
        writer
            .join()
            .expect("writer thread")
            .expect("write to psql");
        assert!(out.status.success(), "{copy}: {}", output_text(&out));
        let count = query_one(
            &cluster.url("raw"),
            &format!("SELECT count(*)::text FROM {}.{}", data.schema, data.table),
        )
        .expect("count");
        assert_eq!(
            count,
            data.rows.to_string(),
            "{}.{}",
            data.schema,
            data.table
        );
    }
    // Values that needed escaping arrive intact.
    let tab = query_one(
        &cluster.url("raw"),
        "SELECT count(*)::text FROM raw_facebook.ad_statistics WHERE ad_name = E'Testimonial\\tcut B'",
    )
    .expect("query");
    assert_ne!(tab, "0");
    let newline = query_one(
        &cluster.url("raw"),
        "SELECT name FROM raw_facebook.campaigns WHERE name LIKE 'Retargeting%'",
    )
    .expect("query");
    assert_eq!(newline, "Retargeting\n30d visitors");
    let query = query_one(
        &cluster.url("raw"),
        "SELECT count(*)::text FROM raw_amplitude.events WHERE event_properties->>'query' = E'C:\\\\ reset\\nplan'",
    )
    .expect("query");
    assert_ne!(query, "0");
}
