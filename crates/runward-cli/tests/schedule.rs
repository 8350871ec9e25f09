//! `runward schedule list|tick` against a temporary runward.toml and state directory.

mod common;

use common::runward;
use runward::store::Timestamp;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

const RUNBOOK: &str = r#"
[runbook]
name = "heartbeat"

[params.queue]
type = "string"
default = "default"

[[steps]]
id = "beat"
kind = "sleep"
duration = "1s"
"#;

fn write_config(dir: &Path, schedule_extra: &str) -> std::path::PathBuf {
    std::fs::write(dir.join("heartbeat.toml"), RUNBOOK).unwrap();
    let config = dir.join("runward.toml");
    std::fs::write(
        &config,
        format!(
            "[state]\ndir = \"state\"\n\n[[schedules]]\nname = \"heartbeat\"\nspec = \"@every:60\"\nrunbook = \"heartbeat.toml\"\nparams = {{ queue = \"ops\" }}\n{schedule_extra}"
        ),
    )
    .unwrap();
    config
}

fn json(config: &Path, args: &[&str]) -> Value {
    let out = runward().arg("-c").arg(config).args(args).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn len(v: &Value, key: &str) -> usize {
    v[key].as_array().map_or(0, Vec::len)
}

#[test]
fn schedule_tick_claims_each_due_time_once_and_records_skips() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), "");
    // One or two due times pass after the schedule is stored.
    let later = (Timestamp::now() + Duration::from_secs(120)).to_string();
    let first = json(&config, &["schedule", "tick", "--json", "--now", &later]);
    assert_eq!(first["synced"]["added"], serde_json::json!(["heartbeat"]));
    assert_eq!(len(&first, "claimed"), 1, "{first:#}");
    let handled = len(&first, "claimed") + len(&first, "missed");
    assert!((1..=2).contains(&handled), "{first:#}");
    let run_id = first["claimed"][0]["run_id"].as_str().unwrap().to_owned();

    // The same time again: nothing new, nothing twice.
    let again = json(&config, &["schedule", "tick", "--json", "--now", &later]);
    assert_eq!(
        again.as_object().unwrap()["synced"]["unchanged"][0],
        "heartbeat"
    );
    for key in ["claimed", "lost", "skipped", "missed", "errors"] {
        assert_eq!(len(&again, key), 0, "{key}: {again:#}");
    }

    // A minute on, the first run is still queued: overlap skip records the due time.
    let next = (Timestamp::now() + Duration::from_secs(180)).to_string();
    let out = runward()
        .arg("-c")
        .arg(&config)
        .args(["schedule", "tick", "--now", &next])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("0 claimed"), "{text}");
    assert!(
        text.contains(&format!("previous run {run_id} is still queued")),
        "{text}"
    );

    let list = json(&config, &["schedule", "list", "--json"]);
    let entry = &list[0];
    assert_eq!(entry["name"], "heartbeat");
    assert_eq!(entry["spec"], "@every:60");
    assert_eq!(entry["time_zone"], "UTC");
    assert_eq!(entry["params"]["queue"], "ops");
    assert!(entry["next_due"].is_string(), "{entry:#}");
    assert_eq!(entry["last_fire"]["status"], "skipped");

    let out = runward()
        .arg("-c")
        .arg(&config)
        .args(["schedule", "list"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("NAME"), "{text}");
    assert!(text.contains("heartbeat  @every:60  UTC"), "{text}");
    assert!(text.contains(" skipped"), "{text}");
}

#[test]
fn schedule_bad_config_exits_2_with_file_line_and_choices() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), "misfire = \"sometimes\"\n");
    for args in [&["schedule", "tick"][..], &["schedule", "list"][..]] {
        let out = runward()
            .arg("-c")
            .arg(&config)
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("runward.toml:9:"), "{stderr}");
        assert!(stderr.contains("skip, fire_once, fire_all"), "{stderr}");
    }

    let config = write_config(tmp.path(), "zone = \"Mars/Base\"\n");
    let out = runward()
        .arg("-c")
        .arg(&config)
        .args(["schedule", "tick"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("IANA"));

    let config = write_config(tmp.path(), "");
    let out = runward()
        .arg("-c")
        .arg(&config)
        .args(["schedule", "tick", "--now", "yesterday"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("RFC 3339"));
}
