//! Helpers shared by the CLI tests.
#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

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
