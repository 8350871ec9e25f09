//! The seed runbooks in `examples/runbooks/`, each run end to end by `runward` against the
//! demo service in `examples/demo_service/` (a real process on loopback with real SQLite),
//! with the service's side-effect log checked for repeated effects.

mod common;

use common::{cmd, get, request, wait_until};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// The demo service on an ephemeral loopback port, stopped when dropped.
struct Demo {
    child: Child,
    addr: String,
    data: PathBuf,
}

impl Demo {
    fn start(dir: &Path) -> Demo {
        let data = dir.join("data");
        let port_file = dir.join("port");
        let child = Command::new("python3")
            .arg(examples().join("demo_service/demo_service.py"))
            .args([
                "--port",
                "0",
                "--startup-delay",
                "0",
                "--restart-seconds",
                "0.3",
            ])
            .arg("--data")
            .arg(&data)
            .arg("--port-file")
            .arg(&port_file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs the demo service");
        wait_until("the demo service listens", Duration::from_secs(20), || {
            std::fs::read_to_string(&port_file).is_ok_and(|p| !p.trim().is_empty())
        });
        let port = std::fs::read_to_string(&port_file).unwrap();
        Demo {
            child,
            addr: format!("127.0.0.1:{}", port.trim()),
            data,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn post(&self, path: &str) -> (u16, Value) {
        let (code, _, body) = request(
            &self.addr,
            "POST",
            path,
            None,
            None,
            Duration::from_secs(10),
        );
        (code, serde_json::from_str(&body).unwrap_or(Value::Null))
    }

    fn get(&self, path: &str) -> Value {
        let (code, body) = get(&self.addr, path, Duration::from_secs(10));
        assert_eq!(code, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    /// The service's own count of applied effects, by kind, and of repeated keys.
    fn effects(&self) -> Value {
        let out = Command::new("python3")
            .arg(examples().join("demo_service/effect_count.py"))
            .arg(&self.data)
            .output()
            .unwrap();
        assert!(out.status.success());
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

fn runbook(name: &str) -> String {
    examples().join("runbooks").join(name).display().to_string()
}

/// `setup` is the number of requests the test itself made (they carry no key).
fn assert_no_repeated_effect(demo: &Demo, setup: u64) -> Value {
    let effects = demo.effects();
    assert_eq!(effects["duplicates"], 0, "{effects}");
    assert_eq!(
        effects["without_key"], setup,
        "every effect of the run carried its idempotency key: {effects}"
    );
    effects
}

fn assert_evidence_intact(dir: &Path, run: &str) {
    let out = cmd(dir, &["runbook", "export", run, "--format", "json"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let evidence = out.json();
    assert!(evidence["chain"]["first_bad"].is_null(), "{evidence}");
}

#[test]
fn controlled_restart_drains_restarts_once_and_validates_readiness() {
    let dir = tempfile::tempdir().unwrap();
    let demo = Demo::start(dir.path());
    demo.post("/internal/work?n=3&ms=1500");
    let url = format!("service_url={}", demo.url());
    let file = runbook("controlled-restart-demo.toml");
    let out = cmd(
        dir.path(),
        &[
            "runbook", "run", &file, "--param", &url, "--as", "alice", "--json",
        ],
    );
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    let outcome = out.json();
    assert_eq!(outcome["run"]["status"], "succeeded");
    let stats = demo.get("/stats");
    assert_eq!(stats["restarts"], 1, "{stats}");
    assert_eq!(demo.get("/internal/inflight")["inflight"], 0);
    let effects = assert_no_repeated_effect(&demo, 1);
    assert_eq!(effects["by_effect"]["admin.restart"], 1);
    let flags = cmd(dir.path(), &["flag", "list", "--json"]).json();
    assert_eq!(
        flags.as_array().map(Vec::len),
        Some(0),
        "restarting was released: {flags}"
    );
    assert_evidence_intact(dir.path(), outcome["run"]["id"].as_str().unwrap());
}

#[test]
fn memory_rollback_needs_a_second_person_then_restores_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let demo = Demo::start(dir.path());
    demo.post("/memory/note?key=a&value=1");
    assert_eq!(demo.post("/memory/snapshot?name=known-good").0, 201);
    demo.post("/memory/note?key=b&value=2");
    demo.post("/memory/note?key=c&value=3");
    assert_eq!(demo.get("/memory/count")["count"], 3);
    let url = format!("service_url={}", demo.url());
    let data = format!("data_dir={}", demo.data.display());
    let file = runbook("memory-rollback.toml");
    let out = cmd(
        dir.path(),
        &[
            "runbook", "run", &file, "--param", &url, "--param", &data, "--as", "alice", "--json",
        ],
    );
    assert_eq!(
        out.code,
        Some(4),
        "waits for approval: {}\n{}",
        out.stdout,
        out.stderr
    );
    let run = out.json()["run"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        demo.get("/memory/count")["count"],
        3,
        "nothing restored before approval"
    );

    let starter = cmd(dir.path(), &["runbook", "approve", &run, "--as", "alice"]);
    assert_ne!(starter.code, Some(0), "the starter may not approve");
    assert!(starter.stderr.contains("alice"), "{}", starter.stderr);

    let approved = cmd(
        dir.path(),
        &["runbook", "approve", &run, "--as", "bob", "--json"],
    );
    assert_eq!(
        approved.code,
        Some(0),
        "{}\n{}",
        approved.stdout,
        approved.stderr
    );
    let show = cmd(dir.path(), &["runbook", "show", &run, "--json"]).json();
    assert_eq!(show["run"]["status"], "succeeded", "{show}");
    assert_eq!(
        demo.get("/memory/count")["count"],
        1,
        "restored to the snapshot"
    );
    assert!(
        demo.data
            .join(format!("snapshots/pre-rollback-{run}.db"))
            .exists(),
        "the forensic copy is kept"
    );
    assert_no_repeated_effect(&demo, 4);
    assert_evidence_intact(dir.path(), &run);
}

#[test]
fn a_sync_job_is_started_once_and_traceable_by_status() {
    let dir = tempfile::tempdir().unwrap();
    let demo = Demo::start(dir.path());
    let url = format!("service_url={}", demo.url());
    let file = runbook("sync-job.toml");
    let out = cmd(
        dir.path(),
        &[
            "runbook",
            "run",
            &file,
            "--param",
            &url,
            "--param",
            "job_ms=200",
            "--json",
        ],
    );
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    let jobs = demo.get("/jobs?status=completed");
    let jobs = jobs["jobs"].as_array().cloned().unwrap_or_default();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    let listed = cmd(
        dir.path(),
        &["runbook", "list", "--status", "succeeded", "--json"],
    )
    .json();
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    assert_no_repeated_effect(&demo, 0);
}

#[test]
fn the_release_checklist_rolls_out_after_approval_and_releases_its_flag() {
    let dir = tempfile::tempdir().unwrap();
    let demo = Demo::start(dir.path());
    let url = format!("service_url={}", demo.url());
    let data = format!("data_dir={}", demo.data.display());
    let file = runbook("release-checklist.toml");
    let out = cmd(
        dir.path(),
        &[
            "runbook",
            "run",
            &file,
            "--param",
            &url,
            "--param",
            &data,
            "--param",
            "version=2.0.0",
            "--as",
            "alice",
            "--json",
        ],
    );
    assert_eq!(out.code, Some(4), "{}\n{}", out.stdout, out.stderr);
    let run = out.json()["run"]["id"].as_str().unwrap().to_owned();
    let flags = cmd(dir.path(), &["flag", "list", "--json"]).json();
    assert!(flags.to_string().contains("releasing"), "{flags}");
    let approved = cmd(dir.path(), &["runbook", "approve", &run, "--as", "bob"]);
    assert_eq!(
        approved.code,
        Some(0),
        "{}\n{}",
        approved.stdout,
        approved.stderr
    );
    assert_eq!(demo.get("/healthz")["version"], "2.0.0");
    let flags = cmd(dir.path(), &["flag", "list", "--json"]).json();
    assert!(!flags.to_string().contains("releasing"), "{flags}");
    assert_no_repeated_effect(&demo, 0);
    assert_evidence_intact(dir.path(), &run);
}
