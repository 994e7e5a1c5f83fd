//! No hang: a host that accepts TCP connections and never answers (a stuck proxy,
//! a half-open load balancer) fails within `connect_timeout`, whichever handshake
//! it stalls (TLS negotiation, TLS itself, start-up); and every connection has TCP
//! keepalives that notice a server gone silent in minutes, not the system's two
//! hours.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use crate::common::*;

/// How a silent server stalls a connection.
#[derive(Clone, Copy, Debug)]
enum Stall {
    /// Reads nothing, answers nothing.
    Silent,
    /// Accepts TLS (`S` to the SSLRequest), then says nothing.
    AfterTls,
}

/// A listener on a free port that accepts every connection and holds it open
/// without answering; counts the connections.
fn silent_server(stall: Stall) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        let mut held: Vec<TcpStream> = Vec::new();
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            count.fetch_add(1, Ordering::SeqCst);
            if let Stall::AfterTls = stall {
                let mut request = [0u8; 8];
                if conn.read_exact(&mut request).is_ok() {
                    let _ = conn.write_all(b"S");
                }
            }
            held.push(conn);
        }
    });
    (port, accepted)
}

/// Runs `cmd`, killing it and failing if it has not ended after a generous
/// watchdog (the point is that it ends; how fast is not asserted).
fn run_with_watchdog(mut cmd: Command) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("reluvia-transform hung on a server that never answers");
        }
    }
}

#[test]
fn a_server_that_never_answers_times_out_naming_the_setting() {
    let dir = project(&[
        ("dbt_project.yml", "name: p\n"),
        ("models/a.sql", "select 1 as x\n"),
    ]);
    let mut messages = Vec::new();
    for (stall, sslmode, command) in [
        (Stall::Silent, "disable", "run"), // the start-up message gets no answer
        (Stall::Silent, "prefer", "run"),  // the TLS request gets no answer
        (Stall::AfterTls, "require", "run"), // the TLS handshake gets no answer
        (Stall::Silent, "disable", "debug"), // debug's connection too
    ] {
        let (port, accepted) = silent_server(stall);
        let mut cmd = clean_command();
        cmd.args([command, "--project-dir", dir.path().to_str().unwrap()])
            .env("PG_ANALYTICS_HOST", "127.0.0.1")
            .env("PG_ANALYTICS_PORT", port.to_string())
            .env("PG_ANALYTICS_USER", "nobody")
            .env("PG_ANALYTICS_DBNAME", "nowhere")
            .env("RELUVIA_TRANSFORM_SSLMODE", sslmode)
            .env("RELUVIA_TRANSFORM_CONNECT_TIMEOUT", "1")
            .env("RELUVIA_TRANSFORM_CONNECT_RETRY_TIMEOUT", "0");
        let out = run_with_watchdog(cmd);
        let case = format!("{stall:?}, sslmode {sslmode}, {command}");
        assert_code(&out, 1);
        assert!(
            accepted.load(Ordering::SeqCst) >= 1,
            "{case}: never connected"
        );
        let err = stderr(&out);
        let last = err.lines().last().unwrap_or_default();
        assert!(
            last.contains(&format!(
                "error: timed out connecting to PostgreSQL at 127.0.0.1:{port}: no session within connect_timeout (1s, from env RELUVIA_TRANSFORM_CONNECT_TIMEOUT)"
            )),
            "{case}: {err}"
        );
        let message = &last[last.find("error: ").unwrap_or(0)..];
        messages.push(message.replace(&port.to_string(), "PORT"));
    }
    messages.dedup();
    assert_eq!(messages.len(), 1, "{messages:?}");
    insta::assert_snapshot!("silent_server", messages[0].clone());
}

/// The keepalive timer of the binary's connection to the test server, in seconds
/// (`ss` shows `timer:(keepalive,58sec,0)` while the connection is idle).
fn keepalive_timer(pid: u32, port: &str) -> Option<f64> {
    let out = Command::new("ss")
        .args(["-tnpoH", "state", "established"])
        .output()
        .expect("ss (iproute2) lists the sockets");
    let text = stdout(&out);
    let line = text
        .lines()
        .find(|l| l.contains(&format!("pid={pid},")) && l.contains(&format!(":{port} ")))?;
    let timer = line.split("timer:(keepalive,").nth(1)?.split(',').next()?;
    let (number, unit) = timer.split_at(timer.find(|c: char| c.is_ascii_alphabetic())?);
    let n: f64 = number.parse().ok()?;
    Some(match unit {
        "ms" => n / 1000.0,
        "sec" => n,
        "min" => n * 60.0,
        _ => n * 3600.0,
    })
}

#[test]
fn connections_have_keepalives_that_notice_a_dead_server_in_minutes() {
    let db = TestDb::new("keepalive");
    let dir = project(&[
        (
            "dbt_project.yml",
            "name: p\nmodels:\n  p:\n    +materialized: table\n",
        ),
        ("models/slow.sql", "select 1 as x from pg_sleep(600)\n"),
    ]);
    let (_, port, _) = server();
    // The default, then a configured idle time.
    for (idle, limit) in [(None, 60.0), (Some("7"), 7.0)] {
        let mut cmd = db.cmd();
        cmd.args(["run", "--project-dir", dir.path().to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(idle) = idle {
            cmd.env("RELUVIA_TRANSFORM_KEEPALIVES_IDLE", idle);
        }
        let mut child = cmd.spawn().unwrap();
        // While the model's query runs, the connection is silent: its keepalive
        // timer counts down from keepalives_idle.
        let mut timer = None;
        for _ in 0..600 {
            let active = db.value(&format!(
                "select count(*)::text from pg_stat_activity where datname = '{}' and state = 'active' and query like 'create table%pg_sleep(600)%'",
                db.name
            ));
            if active.as_deref() == Some("1") {
                timer = keepalive_timer(child.id(), &port);
                if timer.is_some() {
                    break;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill")
            .args(["-15", &child.id().to_string()])
            .status();
        let _ = child.wait();
        let timer = timer.expect("the model's connection with a keepalive timer");
        assert!(
            timer <= limit,
            "keepalives_idle {idle:?}: the keepalive timer is {timer}s, over {limit}s"
        );
    }
}
