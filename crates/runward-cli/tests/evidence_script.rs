//! The standalone verifier printed in docs/evidence.md, run exactly as printed against real
//! exports, tampered exports and events whose data holds every number format.

mod common;

use common::cmd;
use runward::store::chain::{GENESIS_HASH, event_hash};
use runward::store::{RunId, Timestamp};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The first ```python block of docs/evidence.md, written to `dir`.
fn script(dir: &Path) -> PathBuf {
    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/evidence.md");
    let text = std::fs::read_to_string(doc).unwrap();
    let start = text.find("```python\n").expect("a python block") + "```python\n".len();
    let end = start + text[start..].find("\n```").expect("the block ends");
    let path = dir.join("verify_evidence.py");
    std::fs::write(&path, &text[start..=end]).unwrap();
    path
}

/// Runs the script on `export`; returns the exit code and stdout + stderr.
fn verify(script: &Path, dir: &Path, export: &Value) -> (Option<i32>, String) {
    let file = dir.join("evidence.json");
    std::fs::write(&file, serde_json::to_string_pretty(export).unwrap()).unwrap();
    let out = Command::new("python3")
        .arg(script)
        .arg(&file)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

#[test]
fn the_documented_script_verifies_an_export_and_finds_tampering() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let script = script(dir);
    std::fs::write(
        dir.join("hello.toml"),
        "[runbook]\nname = \"hello\"\n[[steps]]\nid = \"greet\"\nkind = \"command\"\nargv = [\"echo\", \"h\u{e9}llo \\\"x\\\" \\t 1.5 \u{1f680}\"]\n[[steps]]\nid = \"nap\"\nkind = \"sleep\"\nduration = \"1ms\"\n",
    )
    .unwrap();
    let run = cmd(dir, &["runbook", "run", "hello.toml", "--json"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let id = run.json()["run"]["id"].as_str().unwrap().to_owned();
    let export = cmd(dir, &["runbook", "export", &id, "--format", "json"]).json();
    let events = export["events"].as_array().unwrap().len();
    assert!(events >= 6, "{export}");

    let (code, text) = verify(&script, dir, &export);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.starts_with(&format!("chain verified: {events} events, head ")),
        "{text}"
    );

    let mut edited = export.clone();
    edited["events"][2]["data"]["attempt"] = json!(2);
    let (code, text) = verify(&script, dir, &edited);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("event 3") && text.contains("edited"),
        "{text}"
    );

    let mut removed = export.clone();
    removed["events"].as_array_mut().unwrap().remove(1);
    let (code, text) = verify(&script, dir, &removed);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("expected event 2"), "{text}");

    let mut reordered = export.clone();
    reordered["events"].as_array_mut().unwrap().swap(1, 2);
    let (code, _) = verify(&script, dir, &reordered);
    assert_eq!(code, Some(1));

    let mut retimed = export.clone();
    retimed["events"][0]["at"] = json!("2020-01-01T00:00:00.000Z");
    let (code, text) = verify(&script, dir, &retimed);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("event 1"), "{text}");

    let (code, text) = verify(&script, dir, &json!({"events": []}));
    assert_eq!(code, Some(2), "{text}");
}

#[test]
fn the_documented_script_writes_numbers_and_strings_as_the_core_does() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let script = script(dir);
    let run = RunId::from("0195b2a0-0000-7000-8000-000000000001");
    let data = [
        json!({"floats": [1.5, 0.1, 1e21, 1e-7, 1e16, 1e15, 123456789.125, 0.00001, 0.0001,
                          5e-324, 1.7976931348623157e308, -2.5e-9, 100.0, 0.0, -0.0, 1e-6, 1.5e-5, 1.5e300]}),
        json!({"ints": [0, -1, 9007199254740993u64, i64::MIN, u64::MAX]}),
        json!({"text": "quote \" backslash \\ tab \t nl \n bell \u{7} del \u{7f} é 🚀 /",
               "ключ": true, "a": null, "B": false, "é": [], "z": {}}),
        json!("a bare string"),
    ];
    let mut prev = GENESIS_HASH.to_owned();
    let mut events = Vec::new();
    for (i, data) in data.iter().enumerate() {
        let seq = i as u64 + 1;
        let at = Timestamp::from_millis(1_765_132_182_132 + i as i64 * 1001);
        let hash = event_hash(&run, seq, at, "custom", data, &prev);
        events.push(json!({
            "run_id": run.as_str(), "seq": seq, "at": at, "kind": "custom",
            "data": data, "prev_hash": prev, "hash": hash,
        }));
        prev = hash;
    }
    let export = json!({"run": {"id": run.as_str()}, "events": events});
    let (code, text) = verify(&script, dir, &export);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains(&prev), "{text}");
}
