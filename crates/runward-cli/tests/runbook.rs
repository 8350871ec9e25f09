//! `runward runbook plan`: text and JSON plans, and clear errors for bad input.

mod common;

use common::runward;
use std::path::PathBuf;

fn seed() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/runbooks/controlled-restart.toml")
}

#[test]
fn plan_prints_every_effect() {
    let out = runward()
        .args(["runbook", "plan"])
        .arg(seed())
        .args(["--param", "service_url=http://127.0.0.1:9000"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "5. validate-ready [gate] wait until http://127.0.0.1:9000/readyz answers 2xx 3 times"
        ),
        "{text}"
    );
    assert!(text.contains("undo: clear flag `restarting`"), "{text}");
}

#[test]
fn plan_json_carries_hash_and_digest() {
    let out = runward()
        .args(["runbook", "plan", "--json"])
        .arg(seed())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["runbook"], "controlled-restart");
    assert_eq!(plan["definition_hash"].as_str().map(str::len), Some(64));
    assert_eq!(plan["digest"].as_str().map(str::len), Some(64));
    assert_eq!(plan["steps"].as_array().map(Vec::len), Some(5));
    assert_eq!(
        plan["steps"][2]["policy"]["outcome_unknown"]["probe_first"],
        "api"
    );
}

#[test]
fn bad_runbooks_and_parameters_exit_2_with_a_location() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("bad.toml");
    std::fs::write(
        &file,
        "[runbook]\nname = \"x\"\n\n[[steps]]\nid = \"a\"\nkind = \"teleport\"\n",
    )
    .unwrap();
    let out = runward()
        .args(["runbook", "plan"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.toml:6:"), "{stderr}");
    assert!(stderr.contains("unknown step kind"), "{stderr}");

    let out = runward()
        .args(["runbook", "plan"])
        .arg(seed())
        .args(["-p", "bogus=1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no parameter `bogus`"));

    let out = runward()
        .args(["runbook", "plan"])
        .arg(seed())
        .args(["-p", "no-equals"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("NAME=VALUE"));

    let out = runward()
        .args(["runbook", "plan"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is a directory"));
}

#[test]
fn a_secret_in_a_command_line_is_refused_before_any_run_exists() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("rotate.toml");
    std::fs::write(
        &file,
        r#"[runbook]
name = "rotate"

[params.token]
type = "secret"
env = "WEBHOOK_TOKEN"

[[steps]]
id = "apply"
kind = "command"
env = { TOKEN = "{{ params.token }}" }
argv = ["sh", "-c", "echo applied"]
compensate = { kind = "command", shell = "revoke {{ params.token }}" }
"#,
    )
    .unwrap();
    for args in [&["plan"][..], &["run", "--as", "alice"]] {
        let out = runward()
            .current_dir(tmp.path())
            .env("WEBHOOK_TOKEN", "s3cret-value")
            .arg("runbook")
            .args(args)
            .arg(&file)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "runbook {args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("rotate.toml:13:"), "{stderr}");
        assert!(stderr.contains("`shell`"), "{stderr}");
        assert!(stderr.contains("pass it through `env`"), "{stderr}");
        assert!(!stderr.contains("s3cret-value"), "{stderr}");
    }
    assert!(!tmp.path().join(".runward").exists(), "no run was recorded");

    // Through `env` the same secret is fine.
    let fixed = std::fs::read_to_string(&file).unwrap().replace(
        "shell = \"revoke {{ params.token }}\"",
        "shell = \"revoke\", env = { TOKEN = \"{{ params.token }}\" }",
    );
    std::fs::write(&file, fixed).unwrap();
    let out = runward()
        .args(["runbook", "plan"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
