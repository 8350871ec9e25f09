//! Closed and unwritable standard streams: a reader that goes away ends a command quietly with
//! exit 0, and a full stderr never panics, not even a server that logs.

mod common;

use common::{HELLO, cmd, free_port, get, wait_until};
use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Runs `runward args` in `dir` with stdout a pipe whose reading end is already closed, so
/// every write fails with EPIPE; returns the exit code and what went to stderr.
fn with_closed_stdout(dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    let (reader, writer) = rustix::pipe::pipe().unwrap();
    drop(reader);
    let out = Command::new(assert_cmd::cargo::cargo_bin("runward"))
        .current_dir(dir)
        .env_remove("RUNWARD_CONFIG")
        .args(args)
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_closed_stdout_ends_every_command_quietly() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("hello.toml"), HELLO).unwrap();
    let run = cmd(tmp.path(), &["runbook", "run", "hello.toml", "--json"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let id = run.json()["run"]["id"].as_str().unwrap().to_owned();

    let commands: &[&[&str]] = &[
        &["doctor", "--json"],
        &["check"],
        &["completions", "bash"],
        &["runbook", "plan", "hello.toml", "--json"],
        &["runbook", "plan", "hello.toml"],
        &["runbook", "list"],
        &["runbook", "show", &id],
        &["runbook", "show", &id, "--json"],
        &["runbook", "export", &id],
        &["flag", "list"],
        &["schedule", "list"],
        &["--help"],
    ];
    for args in commands {
        let (code, stderr) = with_closed_stdout(tmp.path(), args);
        assert_eq!(code, Some(0), "runward {args:?} exits 0: {stderr}");
        assert_eq!(stderr, "", "runward {args:?} says nothing");
    }
}

#[test]
fn a_full_stderr_never_panics() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("runward.toml"), "[[checks]]\nname = 1\n").unwrap();
    let out = Command::new(assert_cmd::cargo::cargo_bin("runward"))
        .current_dir(tmp.path())
        .env_remove("RUNWARD_CONFIG")
        .arg("check")
        .stderr(File::create("/dev/full").unwrap())
        .output()
        .unwrap();
    // The error could not be printed, but the exit code still says "bad configuration".
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_server_whose_log_cannot_be_written_keeps_serving() {
    let tmp = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("runward"))
        .current_dir(tmp.path())
        .env_remove("RUNWARD_CONFIG")
        .env_remove("RUNWARD_ADMIN_TOKEN")
        .args(["serve", "--addr", &addr])
        .stdout(Stdio::null())
        .stderr(File::create("/dev/full").unwrap())
        .spawn()
        .unwrap();
    let fast = Duration::from_secs(2);
    wait_until("serve answers /livez", Duration::from_secs(20), || {
        assert!(
            child.try_wait().unwrap().is_none(),
            "serve exited while starting"
        );
        std::net::TcpStream::connect(&addr).is_ok() && get(&addr, "/livez", fast).0 == 200
    });
    // Several sweeper periods of logging later, it still answers.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(get(&addr, "/readyz", fast).0, 200);
    assert!(
        child.try_wait().unwrap().is_none(),
        "serve is still running"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn an_empty_directory_works_on_embedded_defaults_and_reading_creates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join(".runward");
    for args in [
        &["check"][..],
        &["doctor"],
        &["runbook", "list"],
        &["flag", "list"],
        &["schedule", "list"],
    ] {
        let out = cmd(tmp.path(), args);
        assert_eq!(out.code, Some(0), "runward {args:?}: {}", out.stderr);
        assert!(!state.exists(), "runward {args:?} only reads");
    }
    let out = cmd(tmp.path(), &["check", "--json"]);
    assert_eq!(out.json()["status"], "pass");
    assert_eq!(
        cmd(tmp.path(), &["runbook", "list", "--json"]).json(),
        serde_json::json!([])
    );
    let missing = cmd(
        tmp.path(),
        &["runbook", "show", "0195b2a0-0000-7000-8000-000000000000"],
    );
    assert_eq!(missing.code, Some(2), "{}", missing.stderr);
    assert!(
        missing.stderr.contains("does not exist"),
        "{}",
        missing.stderr
    );

    // The first write creates the state.
    std::fs::write(tmp.path().join("hello.toml"), HELLO).unwrap();
    let run = cmd(tmp.path(), &["runbook", "run", "hello.toml"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(state.join("state.db").exists());
    let out = cmd(tmp.path(), &["check"]);
    assert_eq!(out.code, Some(0), "{}", out.stdout);
}

#[test]
fn check_fails_on_a_corrupt_state_database() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("hello.toml"), HELLO).unwrap();
    for _ in 0..20 {
        assert_eq!(
            cmd(tmp.path(), &["runbook", "run", "hello.toml"]).code,
            Some(0)
        );
    }
    let db = tmp.path().join(".runward/state.db");
    let mut bytes = std::fs::read(&db).unwrap();
    let page = 4096;
    assert!(bytes.len() > 3 * page, "the state spans several pages");
    bytes[2 * page..].fill(0x5a);
    std::fs::write(&db, &bytes).unwrap();
    let _ = std::fs::remove_file(tmp.path().join(".runward/state.db-wal"));
    let out = cmd(tmp.path(), &["check"]);
    assert_eq!(out.code, Some(1), "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("damaged"), "{}", out.stdout);
}
