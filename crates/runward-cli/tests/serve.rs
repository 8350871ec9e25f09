//! `runward serve` end to end: a real loopback dependency that hangs, the probe endpoints
//! staying fast, and the SIGTERM sequence.

mod common;

use common::{Serve, free_port, get, request, wait_until};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A loopback HTTP dependency that answers `{"status":"ok"}`, or hangs while `hang` is set.
fn dependency(hang: Arc<AtomicBool>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let hang = hang.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 1024];
                let _ = stream.read(&mut buf);
                if hang.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_secs(30));
                    return;
                }
                let body = r#"{"status":"ok","contract_version":"1.4.0"}"#;
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    addr
}

#[test]
fn readyz_stays_fast_while_a_dependency_hangs_and_follows_it_back() {
    let hang = Arc::new(AtomicBool::new(false));
    let dep = dependency(hang.clone());
    let tmp = tempfile::tempdir().unwrap();
    let config = format!(
        r#"
[service]
id = "e2e"

[server]
details = "public"
drain_ms = 1500

[[checks]]
name = "api"
kind = "http"
url = "http://{dep}/v1/health"
timeout_ms = 300
interval_ms = 100
jitter_ms = 0
probes = ["readiness"]
"#
    );
    std::fs::write(tmp.path().join("runward.toml"), config).unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let mut serve = Serve::start(tmp.path(), &addr, &[]);
    let fast = Duration::from_millis(250);
    wait_until("server up and ready", Duration::from_secs(20), || {
        std::net::TcpStream::connect(&addr).is_ok() && get(&addr, "/readyz", fast).0 == 200
    });

    // The dependency hangs: every probe request still answers at once; the check turns
    // `fail` with outage `timeout` once its deadline passes.
    hang.store(true, Ordering::SeqCst);
    let started = Instant::now();
    wait_until("readyz turns 503", Duration::from_secs(5), || {
        let t = Instant::now();
        let (code, _) = get(&addr, "/readyz", fast);
        assert!(t.elapsed() < fast, "a probe request took {:?}", t.elapsed());
        code == 503
    });
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "failed before the deadline passed"
    );
    let (code, body) = get(&addr, "/readyz/api", fast);
    assert_eq!(code, 503);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    let check = &json["checks"].as_object().unwrap().values().next().unwrap()[0];
    assert_eq!(check["outage"], "timeout", "{body}");
    assert_eq!(check["status"], "fail");
    let (_, verbose) = get(&addr, "/readyz?verbose", fast);
    assert!(verbose.contains("[-]api failed: "), "{verbose}");
    assert!(verbose.contains("readyz check failed"), "{verbose}");

    // It recovers.
    hang.store(false, Ordering::SeqCst);
    wait_until("readyz turns 200 again", Duration::from_secs(5), || {
        get(&addr, "/readyz", fast).0 == 200
    });

    // Metrics never run a check and count probe requests.
    let (code, metrics) = get(&addr, "/metrics", fast);
    assert_eq!(code, 200);
    assert!(
        metrics.contains("runward_check_timeouts_total{check=\"api\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("runward_probe_requests_total{endpoint=\"/readyz\",code=\"503\"}"));

    // SIGTERM: readiness fails at once, liveness keeps passing during the drain, then exit 0.
    let pid = serve.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    wait_until("readyz fails after SIGTERM", Duration::from_secs(2), || {
        get(&addr, "/readyz", fast).0 == 503
    });
    assert_eq!(get(&addr, "/livez", fast).0, 200);
    let exit = loop {
        if let Some(status) = serve.0.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "serve exits 0 after the drain: {exit:?}");
}

#[test]
fn anonymous_callers_get_status_only() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("data")).unwrap();
    let config = r#"
[server]
details = "token"
token_env = "E2E_TOKEN"
check_metrics = false

[[checks]]
name = "data"
kind = "path"
path = "data"
"#;
    std::fs::write(tmp.path().join("runward.toml"), config).unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let _serve = Serve::start(tmp.path(), &addr, &[("E2E_TOKEN", "s3cret-token")]);
    let fast = Duration::from_millis(500);
    wait_until("ready", Duration::from_secs(20), || {
        std::net::TcpStream::connect(&addr).is_ok() && get(&addr, "/readyz", fast).0 == 200
    });
    let (_, body) = get(&addr, "/healthz", fast);
    assert_eq!(body, r#"{"status":"pass"}"#);
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    write!(stream, "GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cret-token\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    assert!(raw.contains("application/health+json"), "{raw}");
    assert!(raw.contains("\"data:"), "details with the token: {raw}");

    // No check name reaches an anonymous caller: not from an unknown check, not from ?verbose.
    let (code, body) = get(&addr, "/readyz/nope", fast);
    assert_eq!(code, 404);
    assert!(!body.contains("data"), "{body}");
    let (code, body) = get(&addr, "/readyz?verbose", fast);
    assert_eq!(code, 200);
    assert!(!body.contains("data"), "{body}");
    assert!(body.starts_with("1 check(s): 1 ok"), "{body}");
    assert!(body.ends_with("readyz check passed\n"), "{body}");
    // `check_metrics = false`: the scrape has the probe series and no check name.
    let (code, body) = get(&addr, "/metrics", fast);
    assert_eq!(code, 200);
    assert!(!body.contains("check=\""), "{body}");
    assert!(
        body.contains("runward_probe_up{probe=\"readiness\"} 1"),
        "{body}"
    );
}

#[test]
fn repeated_readiness_failures_start_lockdown() {
    let tmp = tempfile::tempdir().unwrap();
    let dead = free_port();
    let config = format!(
        r#"
[[checks]]
name = "api"
kind = "tcp"
host = "127.0.0.1"
port = {dead}
timeout_ms = 200
interval_ms = 100
jitter_ms = 0

[lockdown]
failures = 3
window_ms = 10000
ttl_ms = 60000
"#
    );
    std::fs::write(tmp.path().join("runward.toml"), config).unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let _serve = Serve::start(tmp.path(), &addr, &[]);
    wait_until("lockdown is set", Duration::from_secs(20), || {
        let out = Command::new(assert_cmd::cargo::cargo_bin("runward"))
            .current_dir(tmp.path())
            .args(["flag", "list", "--json"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).contains("\"lockdown\"")
    });
    // The code went nowhere: an operator overrides, on the record, to get one.
    let out = Command::new(assert_cmd::cargo::cargo_bin("runward"))
        .current_dir(tmp.path())
        .args([
            "unlock",
            "--rotate",
            "--override",
            "--reason",
            "auto-lockdown, code not delivered",
            "--as",
            "oncall",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn serve_ticks_the_configured_schedules() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("beat.toml"),
        "[runbook]\nname = \"beat\"\n\n[[steps]]\nid = \"wait\"\nkind = \"sleep\"\nduration = \"1s\"\n",
    )
    .unwrap();
    std::fs::write(
        tmp.path().join("runward.toml"),
        "[[schedules]]\nname = \"beat\"\nspec = \"@every:1\"\nrunbook = \"beat.toml\"\noverlap = \"allow\"\n",
    )
    .unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let _serve = Serve::start(tmp.path(), &addr, &[]);
    wait_until(
        "two scheduled runs are queued",
        Duration::from_secs(20),
        || {
            let out = Command::new(assert_cmd::cargo::cargo_bin("runward"))
                .current_dir(tmp.path())
                .args(["runbook", "list", "--json"])
                .output()
                .unwrap();
            let runs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
            runs.as_array().is_some_and(|r| {
                r.len() >= 2 && r.iter().all(|run| run["started_by"] == "schedule:beat")
            })
        },
    );
    // serve drives the queued runs it schedules.
    wait_until("a scheduled run succeeds", Duration::from_secs(20), || {
        let out = Command::new(assert_cmd::cargo::cargo_bin("runward"))
            .current_dir(tmp.path())
            .args(["runbook", "list", "--status", "succeeded", "--json"])
            .output()
            .unwrap();
        let runs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        runs.as_array().is_some_and(|r| !r.is_empty())
    });
    // Without a token the admin API is not served.
    let (code, _, _) = request(
        &addr,
        "GET",
        "/admin/runs",
        Some("anything"),
        None,
        Duration::from_secs(2),
    );
    assert_eq!(code, 404);
}

const TOKEN: &str = "admin-s3cret";

/// Calls the admin API with the token; returns the status and the JSON body.
fn admin(addr: &str, method: &str, path: &str, body: Option<&str>) -> (u16, serde_json::Value) {
    let (code, _, body) = request(
        addr,
        method,
        path,
        Some(TOKEN),
        body,
        Duration::from_secs(5),
    );
    let json = serde_json::from_str(&body).unwrap_or(serde_json::Value::Null);
    (code, json)
}

fn wait_for_status(addr: &str, id: &str, status: &str) {
    wait_until(
        &format!("run {id} is {status}"),
        Duration::from_secs(10),
        || admin(addr, "GET", &format!("/admin/runs/{id}"), None).1["run"]["status"] == status,
    );
}

#[test]
fn the_admin_api_starts_lists_approves_and_cancels_runs() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("runward.toml"),
        "[server]\ndrain_ms = 100\nadmin_token_env = \"OPS_ADMIN_TOKEN\"\n",
    )
    .unwrap();
    std::fs::create_dir(tmp.path().join("runbooks")).unwrap();
    std::fs::write(
        tmp.path().join("runbooks/hello.toml"),
        "[runbook]\nname = \"hello\"\n[[steps]]\nid = \"greet\"\nkind = \"command\"\nargv = [\"true\"]\n",
    )
    .unwrap();
    std::fs::write(
        tmp.path().join("runbooks/gated.toml"),
        "[runbook]\nname = \"gated\"\n[[steps]]\nid = \"ok\"\nkind = \"approval\"\napprovers = [\"alice\", \"bob\"]\nforbid_starter = true\n[[steps]]\nid = \"after\"\nkind = \"command\"\nargv = [\"true\"]\n",
    )
    .unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    // The token variable named by `server.admin_token_env`.
    let _serve = Serve::start(tmp.path(), &addr, &[("OPS_ADMIN_TOKEN", TOKEN)]);
    let fast = Duration::from_millis(500);
    wait_until("server up", Duration::from_secs(20), || {
        std::net::TcpStream::connect(&addr).is_ok() && get(&addr, "/livez", fast).0 == 200
    });

    // No token, or the wrong one: 401 with a Bearer challenge.
    for token in [None, Some("wrong")] {
        let (code, head, _) = request(&addr, "GET", "/admin/runs", token, None, fast);
        assert_eq!(code, 401, "{head}");
        assert!(
            head.to_ascii_lowercase()
                .contains("www-authenticate: bearer"),
            "{head}"
        );
    }
    // Paths outside the configuration directory are refused.
    let (code, body) = admin(
        &addr,
        "POST",
        "/admin/runs",
        Some(r#"{"runbook": "../hello.toml"}"#),
    );
    assert_eq!(code, 400, "{body}");
    assert_eq!(body["error"]["kind"], "invalid_input");
    // A directory is not a runbook: 400 saying so, not a 500.
    let (code, body) = admin(
        &addr,
        "POST",
        "/admin/runs",
        Some(r#"{"runbook": "runbooks"}"#),
    );
    assert_eq!(code, 400, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("is a directory"), "{message}");
    // An unknown field is refused by name, on every route that takes a body.
    for (path, request) in [
        (
            "/admin/runs",
            r#"{"runbook": "runbooks/hello.toml", "parms": {}}"#,
        ),
        ("/admin/runs/x/approve", r#"{"who": "bob", "coment": "ok"}"#),
        ("/admin/runs/x/cancel", r#"{"who": "bob", "why": "drill"}"#),
    ] {
        let (code, body) = admin(&addr, "POST", path, Some(request));
        assert_eq!(code, 400, "{path}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.starts_with("unknown field `"), "{path}: {message}");
    }

    // Start a run: 202 at once, driven in the background.
    let (code, run) = admin(
        &addr,
        "POST",
        "/admin/runs",
        Some(r#"{"runbook": "runbooks/hello.toml", "started_by": "alice"}"#),
    );
    assert_eq!(code, 202, "{run}");
    let hello = run["id"].as_str().unwrap().to_owned();
    wait_for_status(&addr, &hello, "succeeded");

    // A run waiting for approval: listed by status, refused for a stranger, approved by bob.
    let start_gated = || {
        let (code, run) = admin(
            &addr,
            "POST",
            "/admin/runs",
            Some(r#"{"runbook": "runbooks/gated.toml", "params": {}, "started_by": "alice"}"#),
        );
        assert_eq!(code, 202, "{run}");
        let id = run["id"].as_str().unwrap().to_owned();
        wait_for_status(&addr, &id, "waiting_approval");
        id
    };
    let gated = start_gated();
    let (code, runs) = admin(
        &addr,
        "GET",
        "/admin/runs?status=waiting_approval&since=1d&limit=50",
        None,
    );
    assert_eq!(code, 200);
    let ids: Vec<&str> = runs
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["id"].as_str())
        .collect();
    assert_eq!(ids, [gated.as_str()]);
    let (code, details) = admin(&addr, "GET", &format!("/admin/runs/{gated}"), None);
    assert_eq!(code, 200);
    assert_eq!(details["approval"]["status"], "pending");
    let approve = format!("/admin/runs/{gated}/approve");
    let (code, body) = admin(&addr, "POST", &approve, Some(r#"{"who": "mallory"}"#));
    assert_eq!(code, 403, "{body}");
    let (code, body) = admin(&addr, "POST", &approve, Some(r#"{"who": "alice"}"#));
    assert_eq!(code, 403, "the starter may not approve: {body}");
    let (code, body) = admin(
        &addr,
        "POST",
        &approve,
        Some(r#"{"who": "bob", "comment": "go"}"#),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["approval"]["status"], "approved");
    wait_for_status(&addr, &gated, "succeeded");

    // Cancel a waiting run; deny another.
    let waiting = start_gated();
    let (code, body) = admin(
        &addr,
        "POST",
        &format!("/admin/runs/{waiting}/cancel"),
        Some(r#"{"who": "bob", "reason": "wrong window"}"#),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["run"]["status"], "cancelled");
    let (code, body) = admin(
        &addr,
        "POST",
        &format!("/admin/runs/{waiting}/cancel"),
        Some(r#"{"who": "bob"}"#),
    );
    assert_eq!(code, 409, "{body}");
    let denied = start_gated();
    let (code, body) = admin(
        &addr,
        "POST",
        &format!("/admin/runs/{denied}/deny"),
        Some(r#"{"who": "bob", "comment": "not now"}"#),
    );
    assert_eq!(code, 200, "{body}");
    wait_for_status(&addr, &denied, "failed");
    let (code, _) = admin(&addr, "GET", "/admin/runs/no-such-run", None);
    assert_eq!(code, 404);
    let (code, body) = admin(&addr, "GET", "/admin/runs?status=sleeping", None);
    assert_eq!(code, 400, "{body}");
}

/// The (soft, hard) limits on open files of process `pid`, from /proc.
fn open_files_limits(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let fields: Vec<&str> = line["Max open files".len()..].split_whitespace().collect();
    (fields[0].to_owned(), fields[1].to_owned())
}

#[test]
fn serve_raises_its_open_files_limit_to_the_hard_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let runward = assert_cmd::cargo::cargo_bin("runward");
    let child = Command::new("sh")
        .current_dir(tmp.path())
        .env_remove("RUNWARD_ADMIN_TOKEN")
        .args([
            "-c",
            &format!(
                "ulimit -Sn 256 && exec {} serve --addr {addr}",
                runward.display()
            ),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let serve = Serve(child);
    let fast = Duration::from_millis(500);
    wait_until("server up", Duration::from_secs(20), || {
        std::net::TcpStream::connect(&addr).is_ok() && get(&addr, "/livez", fast).0 == 200
    });
    let (soft, hard) = open_files_limits(serve.0.id());
    assert_eq!(soft, hard, "the soft limit of 256 was raised");
}

#[test]
fn on_demand_checks_are_ready_at_every_probe_period_and_a_failure_shows_at_the_next_probe() {
    let hang = Arc::new(AtomicBool::new(false));
    let dep = dependency(hang.clone());
    let tmp = tempfile::tempdir().unwrap();
    let config = format!(
        r#"
[[checks]]
name = "api"
kind = "http"
url = "http://{dep}/v1/health"
mode = "on_demand"
ttl_ms = 200
timeout_ms = 300
probes = ["readiness"]
"#
    );
    std::fs::write(tmp.path().join("runward.toml"), config).unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let _serve = Serve::start(tmp.path(), &addr, &[]);
    let within = Duration::from_millis(1_000);
    wait_until("server up", Duration::from_secs(20), || {
        std::net::TcpStream::connect(&addr).is_ok()
    });
    // A TTL of 200 ms and a max age of 700 ms: probes faster than the TTL, between the TTL
    // and the max age, and well beyond both, as a kubelet's 10 s period is for a 500 ms TTL.
    for period_ms in [100u64, 500, 1_000, 2_000] {
        for probe in 0..2 {
            let (code, body) = get(&addr, "/readyz", within);
            assert_eq!(
                code, 200,
                "probed every {period_ms} ms, probe {probe}: {body}"
            );
            std::thread::sleep(Duration::from_millis(period_ms));
        }
    }
    // The dependency hangs: the next probe waits at most the check's 300 ms timeout and
    // reports it.
    hang.store(true, Ordering::SeqCst);
    let started = Instant::now();
    let (code, _) = get(&addr, "/readyz", within);
    assert_eq!(code, 503);
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
}
