//! `runward runbook list|show|export` over runs recorded in the state store.

mod common;

use common::runward;
use runward::store::{NewRun, RunStatus, RunUpdate, SqliteStore, StepResult, Store};
use serde_json::json;
use std::time::Duration;

/// Records a failed run with one failed attempt and two events; returns its id.
async fn record_failed_run(dir: &std::path::Path) -> String {
    std::fs::create_dir_all(dir.join(".runward")).unwrap();
    let store = SqliteStore::open(dir.join(".runward/state.db"))
        .await
        .unwrap();
    let mut new = NewRun::new("controlled-restart", "ab".repeat(32));
    new.params = json!({ "service_url": "http://127.0.0.1:8000" });
    new.started_by = Some("alice".into());
    let run = store.create_run(new).await.unwrap();
    let lease = store
        .acquire_lease(&run.id, "test", Duration::from_secs(30))
        .await
        .unwrap();
    store
        .append_event(
            &run.id,
            Some(lease.epoch),
            "run_started",
            json!({ "by": "alice" }),
        )
        .await
        .unwrap();
    store
        .record_intent(&run.id, lease.epoch, 2, "restart", 1)
        .await
        .unwrap();
    store
        .record_result(
            &run.id,
            lease.epoch,
            2,
            1,
            StepResult::failed("exit code 1: unit not found"),
        )
        .await
        .unwrap();
    store
        .append_event(
            &run.id,
            Some(lease.epoch),
            "step_failed",
            json!({ "step": "restart", "exit_code": 1 }),
        )
        .await
        .unwrap();
    let mut update = RunUpdate::status(RunStatus::Failed);
    update.error = Some(Some("step `restart` failed".into()));
    store
        .update_run(&run.id, lease.epoch, update)
        .await
        .unwrap();
    run.id.to_string()
}

#[tokio::test]
async fn operators_list_show_and_export_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let id = record_failed_run(tmp.path()).await;

    let out = runward()
        .current_dir(tmp.path())
        .args([
            "runbook", "list", "--status", "failed", "--since", "1d", "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(runs.as_array().map(Vec::len), Some(1));
    assert_eq!(runs[0]["id"], id.as_str());
    assert_eq!(runs[0]["status"], "failed");

    let out = runward()
        .current_dir(tmp.path())
        .args(["runbook", "list", "--status", "succeeded"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("no runs match"));

    let out = runward()
        .current_dir(tmp.path())
        .args(["runbook", "show", &id])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("status: failed"), "{text}");
    assert!(
        text.contains("step 3 `restart` attempt 1: failed: exit code 1: unit not found"),
        "{text}"
    );

    let out = runward()
        .current_dir(tmp.path())
        .args(["runbook", "export", &id])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let md = String::from_utf8_lossy(&out.stdout);
    assert!(md.starts_with(&format!("# Run {id}")), "{md}");
    assert!(md.contains("The event chain verifies: 2 event(s)"), "{md}");
    assert!(md.contains("| 3 | restart | 1 | failed |"), "{md}");

    let file = tmp.path().join("evidence.json");
    let out = runward()
        .current_dir(tmp.path())
        .args(["runbook", "export", &id, "--format", "json", "-o"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(doc["events"].as_array().map(Vec::len), Some(2));
    assert_eq!(doc["chain"]["first_bad"], serde_json::Value::Null);
}

#[test]
fn bad_input_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let out = runward()
        .current_dir(tmp.path())
        .args(["runbook", "list", "--status", "sleeping"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown run status `sleeping`"));
    let out = runward()
        .current_dir(tmp.path())
        .args(["runbook", "show", "no-such-run"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(!String::from_utf8_lossy(&out.stderr).is_empty());
}
