//! `runward runbook run|resume|retry|skip|approve|deny|cancel|sweep`: durable runs driven by
//! real `runward` processes over a state file in a temporary directory.

mod common;

use common::{HELLO, cmd};
use serde_json::Value;
use std::path::Path;

const FAILING: &str = r#"
[runbook]
name = "broken"
[[steps]]
id = "restart"
kind = "command"
argv = ["false"]
"#;

/// Two approvers, the starter may not approve, then one more step.
const APPROVAL: &str = r#"
[runbook]
name = "gated"
[[steps]]
id = "ok"
kind = "approval"
approvers = ["alice", "bob"]
forbid_starter = true
message = "restart?"
[[steps]]
id = "after"
kind = "command"
argv = ["true"]
"#;

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

/// Starts `file` as `who` with `--json`; returns the exit code and the outcome.
fn start(dir: &Path, file: &str, who: &str) -> (Option<i32>, Value) {
    let out = cmd(dir, &["runbook", "run", file, "--as", who, "--json"]);
    (out.code, out.json())
}

fn status(dir: &Path, id: &str) -> String {
    let out = cmd(dir, &["runbook", "show", id, "--json"]);
    out.json()["run"]["status"].as_str().unwrap().to_owned()
}

fn run_count(dir: &Path) -> usize {
    let out = cmd(dir, &["runbook", "list", "--json"]);
    out.json().as_array().map_or(0, Vec::len)
}

#[test]
fn a_run_succeeds_with_progress_and_a_json_outcome() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "hello.toml", HELLO);
    let out = cmd(tmp.path(), &["runbook", "run", "hello.toml", "--json"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let outcome = out.json();
    assert_eq!(outcome["run"]["status"], "succeeded");
    assert_eq!(
        outcome["run"]["started_by"], "tester",
        "--as defaults to $USER"
    );
    assert!(outcome.get("approval").is_none());
    assert!(
        out.stderr.contains("step greet attempt 1 started"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("step greet succeeded: "),
        "{}",
        out.stderr
    );

    // Text output: progress and result, with ids and times filtered.
    let out = cmd(
        tmp.path(),
        &["runbook", "run", "hello.toml", "--as", "alice"],
    );
    assert_eq!(out.code, Some(0));
    let mut settings = common::settings(tmp.path());
    settings.add_filter(
        r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        "[ID]",
    );
    settings.bind(|| {
        insta::assert_snapshot!(format!(
            "--- stderr\n{}--- stdout\n{}",
            out.stderr, out.stdout
        ));
    });
}

#[test]
fn a_failing_run_exits_1_with_its_error() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "broken.toml", FAILING);
    let out = cmd(tmp.path(), &["runbook", "run", "broken.toml"]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stdout.contains("): failed"), "{}", out.stdout);
    assert!(out.stdout.contains("error: "), "{}", out.stdout);
    assert!(
        out.stderr.contains("step restart attempt 1 failed"),
        "{}",
        out.stderr
    );
}

#[test]
fn bad_input_and_refused_requirements_exit_2_and_create_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "hello.toml", HELLO);
    let out = cmd(
        tmp.path(),
        &["runbook", "run", "hello.toml", "-p", "bogus=1"],
    );
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr.contains("no parameter `bogus`"),
        "{}",
        out.stderr
    );
    let out = cmd(
        tmp.path(),
        &["runbook", "run", "hello.toml", "-p", "no-equals"],
    );
    assert_eq!(out.code, Some(2));
    assert!(out.stderr.contains("NAME=VALUE"), "{}", out.stderr);
    let out = cmd(tmp.path(), &["runbook", "run", "missing.toml"]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);

    write(
        tmp.path(),
        "guarded.toml",
        "[runbook]\nname = \"guarded\"\nrequires_flags_absent = [\"lockdown\"]\n[[steps]]\nid = \"a\"\nkind = \"sleep\"\nduration = \"1ms\"\n",
    );
    let lock = cmd(tmp.path(), &["lockdown", "--reason", "incident"]);
    assert_eq!(lock.code, Some(0), "{}", lock.stderr);
    let out = cmd(tmp.path(), &["runbook", "run", "guarded.toml", "--json"]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert_eq!(out.json()["error"]["kind"], "conflict");
    assert!(out.stderr.contains("incident"), "{}", out.stderr);
    assert_eq!(run_count(tmp.path()), 0);
}

#[test]
fn approvals_wait_refuse_the_wrong_person_and_resume_when_approved() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "gated.toml", APPROVAL);
    let (code, outcome) = start(tmp.path(), "gated.toml", "alice");
    assert_eq!(code, Some(4));
    assert_eq!(outcome["run"]["status"], "waiting_approval");
    assert_eq!(outcome["approval"]["quorum"], 1);
    let id = outcome["run"]["id"].as_str().unwrap().to_owned();

    let show = cmd(tmp.path(), &["runbook", "show", &id]);
    assert!(
        show.stdout.contains("waiting for approval"),
        "{}",
        show.stdout
    );
    assert!(
        show.stdout.contains("approvers: alice, bob"),
        "{}",
        show.stdout
    );

    // A stranger and the starter are refused; nothing changes.
    for who in ["mallory", "alice"] {
        let out = cmd(tmp.path(), &["runbook", "approve", &id, "--as", who]);
        assert_eq!(out.code, Some(1), "{who}: {}", out.stderr);
        assert!(out.stderr.starts_with("error: "), "{}", out.stderr);
    }
    let details = cmd(tmp.path(), &["runbook", "show", &id, "--json"]).json();
    assert_eq!(details["run"]["status"], "waiting_approval");
    assert!(
        !details["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "approval_given"),
        "refusals record nothing"
    );

    let out = cmd(
        tmp.path(),
        &[
            "runbook",
            "approve",
            &id,
            "--as",
            "bob",
            "--comment",
            "go",
            "--json",
        ],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let json = out.json();
    assert_eq!(json["approval"]["status"], "approved");
    assert_eq!(json["run"]["status"], "succeeded");
    assert!(
        out.stderr.contains("step after succeeded"),
        "{}",
        out.stderr
    );
}

#[test]
fn approve_without_resume_then_resume_from_the_recorded_file() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "gated.toml", APPROVAL);
    let (_, outcome) = start(tmp.path(), "gated.toml", "alice");
    let id = outcome["run"]["id"].as_str().unwrap().to_owned();
    let out = cmd(
        tmp.path(),
        &["runbook", "approve", &id, "--as", "bob", "--no-resume"],
    );
    assert_eq!(out.code, Some(4), "{}", out.stderr);
    assert!(
        out.stdout.contains("runward runbook resume"),
        "{}",
        out.stdout
    );
    assert_eq!(status(tmp.path(), &id), "waiting_approval");
    let out = cmd(tmp.path(), &["runbook", "resume", &id, "--json"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.json()["run"]["status"], "succeeded");
}

#[test]
fn a_denied_request_fails_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "gated.toml", APPROVAL);
    let (_, outcome) = start(tmp.path(), "gated.toml", "alice");
    let id = outcome["run"]["id"].as_str().unwrap().to_owned();
    let out = cmd(
        tmp.path(),
        &[
            "runbook",
            "deny",
            &id,
            "--as",
            "bob",
            "--comment",
            "not now",
        ],
    );
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stdout.contains("): failed"), "{}", out.stdout);
    assert!(
        out.stdout.contains("denied by bob: not now"),
        "{}",
        out.stdout
    );
}

#[test]
fn cancelling_a_waiting_run_runs_its_cancel_path() {
    let tmp = tempfile::tempdir().unwrap();
    let text = format!(
        "{APPROVAL}\n[[on_cancel]]\nid = \"cleanup\"\nkind = \"command\"\nshell = \"echo cleaned > cleaned.txt\"\n"
    );
    write(tmp.path(), "gated.toml", &text);
    let (_, outcome) = start(tmp.path(), "gated.toml", "alice");
    let id = outcome["run"]["id"].as_str().unwrap().to_owned();
    let out = cmd(
        tmp.path(),
        &[
            "runbook",
            "cancel",
            &id,
            "--as",
            "bob",
            "--reason",
            "wrong window",
            "--json",
        ],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.json()["run"]["status"], "cancelled");
    assert!(
        out.stderr.contains("cancel requested by bob: wrong window"),
        "{}",
        out.stderr
    );
    assert!(
        tmp.path().join("cleaned.txt").exists(),
        "the cancel path ran"
    );
    let again = cmd(tmp.path(), &["runbook", "cancel", &id, "--as", "bob"]);
    assert_eq!(again.code, Some(1));
    assert!(
        again.stderr.contains("already `cancelled`"),
        "{}",
        again.stderr
    );
}

#[test]
fn resume_refuses_a_changed_definition_until_overridden() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "pin.toml", FAILING);
    let (code, outcome) = start(tmp.path(), "pin.toml", "alice");
    assert_eq!(code, Some(1));
    let id = outcome["run"]["id"].as_str().unwrap().to_owned();
    write(
        tmp.path(),
        "pin.toml",
        &FAILING.replace("\"false\"", "\"true\""),
    );
    let out = cmd(tmp.path(), &["runbook", "resume", &id]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("--override-definition"),
        "{}",
        out.stderr
    );
    assert_eq!(
        status(tmp.path(), &id),
        "failed",
        "a refused resume changes nothing"
    );
    let out = cmd(
        tmp.path(),
        &[
            "runbook",
            "resume",
            &id,
            "--override-definition",
            "--reason",
            "fixed",
            "--json",
        ],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.json()["run"]["status"], "succeeded");
    assert!(
        out.stderr.contains("(changed definition accepted)"),
        "{}",
        out.stderr
    );

    let out = cmd(tmp.path(), &["runbook", "resume", "no-such-run"]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
}

#[test]
fn skip_needs_a_reason_and_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let text =
        format!("{FAILING}[[steps]]\nid = \"after\"\nkind = \"command\"\nargv = [\"true\"]\n");
    write(tmp.path(), "broken.toml", &text);
    let (_, outcome) = start(tmp.path(), "broken.toml", "alice");
    let id = outcome["run"]["id"].as_str().unwrap().to_owned();
    let out = cmd(tmp.path(), &["runbook", "skip", &id, "--reason", " "]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("needs a reason"), "{}", out.stderr);
    let out = cmd(
        tmp.path(),
        &[
            "runbook",
            "skip",
            &id,
            "--reason",
            "done by hand",
            "--as",
            "bob",
            "--json",
        ],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.json()["run"]["status"], "succeeded");
    assert!(
        out.stderr.contains("step restart skipped"),
        "{}",
        out.stderr
    );

    // Retry of a closed run changes nothing and says so.
    let out = cmd(tmp.path(), &["runbook", "retry", &id]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("only failed, orphaned or waiting runs"),
        "{}",
        out.stderr
    );
}

#[test]
fn sweep_reports_json() {
    let tmp = tempfile::tempdir().unwrap();
    let out = cmd(tmp.path(), &["runbook", "sweep", "--json"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let sweep = out.json();
    assert_eq!(sweep["orphaned"], serde_json::json!([]));
    assert_eq!(sweep["approvals_timed_out"], serde_json::json!([]));

    write(
        tmp.path(),
        "short.toml",
        &APPROVAL.replace("message = \"restart?\"", "expires = \"100ms\""),
    );
    let (code, outcome) = start(tmp.path(), "short.toml", "alice");
    assert_eq!(code, Some(4));
    std::thread::sleep(std::time::Duration::from_millis(150));
    let out = cmd(tmp.path(), &["runbook", "sweep", "--json"]);
    let sweep = out.json();
    assert_eq!(
        sweep["approvals_timed_out"][0]["id"],
        outcome["approval"]["id"]
    );
    assert_eq!(sweep["approvals_timed_out"][0]["status"], "timed_out");
}

/// A run whose process was killed is recovered one lease TTL after its last renewal: with
/// `[engine] lease_ttl = "1s"`, a sweep 1.5 s after the kill finds it orphaned.
#[test]
fn the_configured_lease_ttl_decides_when_a_killed_run_is_orphaned() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(dir, "runward.toml", "[engine]\nlease_ttl = \"1s\"\n");
    write(
        dir,
        "nap.toml",
        "[runbook]\nname = \"nap\"\n[[steps]]\nid = \"nap\"\nkind = \"sleep\"\nduration = \"60s\"\n",
    );
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("runward"))
        .current_dir(dir)
        .env_remove("RUNWARD_CONFIG")
        .args(["runbook", "run", "nap.toml"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let running = || {
        let out = cmd(dir, &["runbook", "list", "--status", "running", "--json"]);
        out.json().as_array().map_or(0, Vec::len) == 1
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !running() {
        assert!(std::time::Instant::now() < deadline, "the run starts");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let sweep = cmd(dir, &["runbook", "sweep", "--json"]).json();
    assert_eq!(sweep["orphaned"].as_array().unwrap().len(), 1, "{sweep}");
    assert_eq!(sweep["orphaned"][0]["status"], "orphaned");

    // Zero is an error with its location, never silently raised.
    write(dir, "runward.toml", "[engine]\nlease_ttl = \"0s\"\n");
    let out = cmd(dir, &["runbook", "sweep"]);
    assert_eq!(out.code, Some(2));
    assert!(out.stderr.contains("runward.toml:2:"), "{}", out.stderr);
}

#[test]
fn runbook_list_columns_line_up() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(dir, "hello.toml", HELLO);
    let long_runbook = HELLO.replace(
        "name = \"hello\"",
        "name = \"a-rather-long-runbook-name.v2\"",
    );
    write(dir, "long.toml", &long_runbook);
    for (file, who) in [
        ("hello.toml", "al"),
        ("long.toml", "someone-with-a-long-name"),
    ] {
        assert_eq!(
            cmd(dir, &["runbook", "run", file, "--as", who]).code,
            Some(0)
        );
    }
    let out = cmd(dir, &["runbook", "list"]);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", out.stdout);
    for header in ["RUNBOOK", "STATUS", "UPDATED", "STARTED BY"] {
        let column = lines[0].find(header).unwrap();
        for row in &lines[1..] {
            let cell = &row[column..];
            assert!(
                column == 0 || row.as_bytes()[column - 1] == b' ',
                "{header} starts a cell in\n{}",
                out.stdout
            );
            assert!(!cell.starts_with(' '), "{header} column in\n{}", out.stdout);
        }
    }
}
