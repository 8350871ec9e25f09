//! The CLI end to end: output formats (snapshots), exit codes, doctor --fix, bad input.

mod common;

use common::{make_db, runward, settings};
use std::fs;

const CONFIG: &str = r#"
[service]
id = "cli-test"
version = "1"
release = "2026.11.0"

[[checks]]
name = "data-dir"
kind = "path"
path = "data"
create = true
probes = ["startup", "readiness", "liveness"]
remediation = "run `runward doctor --fix`"

[[checks]]
name = "db"
kind = "sqlite"
path = "app.db"
min_user_version = 2
probes = ["readiness"]

[[checks]]
name = "enrichment"
kind = "tcp"
host = "127.0.0.1"
port = 9
critical = false
timeout_ms = 500
"#;

fn setup() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("runward.toml"), CONFIG).unwrap();
    make_db(&tmp.path().join("app.db"), 2);
    tmp
}

#[test]
fn check_prints_a_table_and_exits_by_status() {
    let tmp = setup();
    fs::create_dir(tmp.path().join("data")).unwrap();
    let out = runward()
        .current_dir(tmp.path())
        .args(["check"])
        .output()
        .unwrap();
    // The optional dependency is down: warn, exit 3.
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    settings(tmp.path()).bind(|| insta::assert_snapshot!(String::from_utf8_lossy(&out.stdout)));
}

#[test]
fn check_json_is_health_json() {
    let tmp = setup();
    fs::create_dir(tmp.path().join("data")).unwrap();
    let out = runward()
        .current_dir(tmp.path())
        .args(["check", "--json", "--kind", "readiness"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["status"], "warn");
    assert_eq!(json["serviceId"], "cli-test");
    assert_eq!(json["checks"]["db:responseTime"][0]["status"], "pass");
    assert_eq!(
        json["checks"]["enrichment:status"].as_array().map(Vec::len),
        Some(1)
    );
    settings(tmp.path()).bind(|| insta::assert_snapshot!(String::from_utf8_lossy(&out.stdout)));
}

#[test]
fn doctor_explains_and_fixes() {
    let tmp = setup();
    let out = runward()
        .current_dir(tmp.path())
        .args(["doctor", "--json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "the missing data directory fails"
    );
    settings(tmp.path()).bind(|| {
        insta::assert_snapshot!("doctor_before_fix", String::from_utf8_lossy(&out.stdout))
    });
    assert!(
        !tmp.path().join("data").exists(),
        "doctor without --fix changes nothing"
    );

    let out = runward()
        .current_dir(tmp.path())
        .args(["doctor", "--fix"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(tmp.path().join("data").is_dir());
    settings(tmp.path())
        .bind(|| insta::assert_snapshot!("doctor_after_fix", String::from_utf8_lossy(&out.stdout)));
}

#[test]
fn malformed_config_names_file_line_and_key() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(
        tmp.path().join("runward.toml"),
        "[[checks]]\nname = \"db\"\nkind = \"sqlite\"\npath = 42\n",
    )
    .unwrap();
    let out = runward()
        .current_dir(tmp.path())
        .args(["check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("runward.toml:4:"), "{stderr}");
    assert!(
        stderr.contains("`path`: invalid type: integer `42`"),
        "{stderr}"
    );

    fs::write(
        tmp.path().join("runward.toml"),
        "[[checks]]\nname = \"x\"\nkind = \"carrier-pigeon\"\n",
    )
    .unwrap();
    let out = runward()
        .current_dir(tmp.path())
        .args(["check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("runward.toml:3:"), "{stderr}");
    assert!(
        stderr.contains("unknown check kind `carrier-pigeon`: expected one of http, tcp"),
        "{stderr}"
    );

    fs::write(tmp.path().join("runward.toml"), "[service\nid = 1\n").unwrap();
    let out = runward()
        .current_dir(tmp.path())
        .args(["doctor"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("runward.toml:1:"));
}

#[test]
fn a_missing_config_file_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let out = runward()
        .current_dir(tmp.path())
        .args(["--config", "nope.toml", "check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot read configuration `nope.toml`"));
    assert_eq!(
        stderr.matches("No such file").count(),
        1,
        "the cause is said once: {stderr}"
    );
}

#[test]
fn the_top_level_help_describes_every_capability() {
    let out = runward().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    let about: String = help
        .split("\n\n")
        .next()
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for capability in [
        "health",
        "runbook",
        "approvals",
        "evidence",
        "schedules",
        "lockdown",
    ] {
        assert!(about.contains(capability), "{capability} in: {about}");
    }
}

#[test]
fn completions_are_generated() {
    let out = runward().args(["completions", "bash"]).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("runward"));
}
