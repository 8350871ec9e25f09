//! Helpers shared by the CLI tests.
#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A one-step runbook that echoes `hello`.
pub const HELLO: &str = r#"
[runbook]
name = "hello"
[[steps]]
id = "greet"
kind = "command"
argv = ["echo", "hello"]
"#;

/// The `runward` binary under test.
pub fn runward() -> assert_cmd::Command {
    assert_cmd::Command::cargo_bin("runward").expect("the runward binary is built")
}

/// Filters that hide what changes between runs: durations, timestamps, temp paths.
pub fn settings(tmp: &Path) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(&regex_escape(&tmp.display().to_string()), "[TMP]");
    settings.add_filter(r"\d+(\.\d+)? ms", "[N] ms");
    settings.add_filter(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "[TIME]");
    settings.add_filter(r#""observedValue": \d+(\.\d+)?"#, r#""observedValue": [N]"#);
    settings.add_filter(r"utilization = \d+(\.\d+)?", "utilization = [N]");
    settings
}

fn regex_escape(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Creates a SQLite database with `user_version` and one `tickets` table.
pub fn make_db(path: &Path, user_version: i32) {
    let db = rusqlite::Connection::open(path).unwrap();
    db.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS tickets (id INTEGER PRIMARY KEY); PRAGMA user_version = {user_version};"
    ))
    .unwrap();
}

/// A plain HTTP/1.1 GET; returns (status code, body). Fails the test after `timeout`.
pub fn get(addr: &str, path: &str, timeout: Duration) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect to the server");
    stream.set_read_timeout(Some(timeout)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    stream
        .read_to_string(&mut raw)
        .expect("the server answers before the timeout");
    let code = raw
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("an HTTP status line");
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (code, body)
}

/// An HTTP/1.1 request with an optional bearer token and JSON body; returns (status code,
/// head, body). Fails the test after `timeout`.
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
    timeout: Duration,
) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).expect("connect to the server");
    stream.set_read_timeout(Some(timeout)).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let body = body.unwrap_or("");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    stream
        .read_to_string(&mut raw)
        .expect("the server answers before the timeout");
    let code = raw
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("an HTTP status line");
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw.as_str(), ""));
    (code, head.to_owned(), body.to_owned())
}

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `f` every 50 ms until it holds; fails the test after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A `runward serve` child process, killed when dropped.
pub struct Serve(pub Child);

impl Serve {
    /// Starts `runward serve --addr addr` in `dir` with extra environment variables.
    pub fn start(dir: &Path, addr: &str, env: &[(&str, &str)]) -> Serve {
        let child = Command::new(assert_cmd::cargo::cargo_bin("runward"))
            .current_dir(dir)
            .env_remove("RUNWARD_ADMIN_TOKEN")
            .envs(env.iter().copied())
            .args(["serve", "--addr", addr])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Serve(child)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What a `runward` process printed and how it exited.
pub struct Out {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// Standard output as JSON; fails the test with both streams otherwise.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is JSON ({e}): {}\n{}", self.stdout, self.stderr))
    }
}

/// Runs `runward args` in `dir` with no configuration from the environment and `USER=tester`.
pub fn cmd(dir: &Path, args: &[&str]) -> Out {
    let out = runward()
        .current_dir(dir)
        .env_remove("RUNWARD_CONFIG")
        .env("USER", "tester")
        .args(args)
        .output()
        .unwrap();
    Out {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
