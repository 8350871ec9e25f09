//! Step executors against real parts: processes, a loopback HTTP server, a health registry.
//! A planted secret must never appear in anything an executor returns or records.

use base64::Engine as _;
use runward::ErrorKind;
use runward::health::{CheckSpec, Outcome, Registry, probe_fn};
use runward::runbook::exec::{self, StepContext, StepError, StepErrorKind, StepOutput, VecEvents};
use runward::runbook::{CommandStep, DrainSource, DrainStep, GateStep, GateTarget, HttpStep};
use runward::secrets::SecretString;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const SECRET: &str = "hunter2-very-secret-42";

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// A context with `SECRET` registered as `TOKEN`, and a Vec event sink.
fn context(step: &str) -> (StepContext, Arc<VecEvents>) {
    let mut secrets = BTreeMap::new();
    secrets.insert("TOKEN".to_owned(), SecretString::new(SECRET));
    let mut ctx = StepContext::new("run-7", step, 1).with_secrets(secrets);
    ctx.idempotency_key = format!("run-7/{step}/key");
    let events = Arc::new(VecEvents::new());
    ctx.events = events.clone();
    (ctx, events)
}

/// Fails if the secret, or its base64 form, appears anywhere in what was produced.
fn assert_clean(output: &StepOutput, events: &VecEvents) {
    let text = format!(
        "{}{:?}",
        serde_json::to_string(output).unwrap(),
        events.events()
    );
    assert!(!text.contains(SECRET), "the secret leaked: {text}");
    assert!(
        !text.contains("hunter2"),
        "part of the secret leaked: {text}"
    );
    assert!(!text.contains(&b64(SECRET)[..16]), "base64 leaked: {text}");
}

fn shell(line: &str) -> CommandStep {
    toml::from_str(&format!("shell = {}", toml::Value::String(line.into()))).unwrap()
}

// ---------------------------------------------------------------------------------------------
// command

#[tokio::test]
async fn command_gets_the_key_and_secrets_through_env_and_output_is_redacted() {
    let (ctx, events) = context("cmd");
    let mut step = shell(
        "echo \"key=$RUNWARD_IDEMPOTENCY_KEY attempt=$RUNWARD_ATTEMPT\"; echo \"token $TOKEN\"; \
         printf '%s' \"Basic:$TOKEN\" | base64; echo \"$TOKEN\" >&2; echo \"{{ params.who }}\"",
    );
    let mut ctx = ctx;
    ctx.vars.set("params.who", "operator");
    step.max_output_bytes = 4096;
    let out = exec::command::run(&step, &ctx).await.unwrap();
    let stdout = out.stdout.text();
    assert!(stdout.contains("key=run-7/cmd/key attempt=1"), "{stdout}");
    assert!(stdout.contains("token [REDACTED]"), "{stdout}");
    assert!(stdout.contains("operator"), "{stdout}");
    assert_eq!(out.stderr.text(), "[REDACTED]\n");
    assert_eq!(out.exit_code, Some(0));
    assert_eq!(
        out.stdout.sha256,
        hex::encode(Sha256::digest(&out.stdout.bytes))
    );
    assert!(!out.stdout.truncated);
    assert_clean(&out, &events);
}

#[tokio::test]
async fn secrets_split_across_output_chunks_are_redacted() {
    let (mut ctx, events) = context("split");
    ctx.vars.set("params.x", "1");
    let mut step = shell(
        "printf '%s' \"$A\"; sleep 0.2; printf '%s\\n' \"$B\"; \
         E=$(printf '%s' \"$TOKEN\" | base64); \
         printf 'b64=%s' \"$(printf '%s' \"$E\" | cut -c1-7)\"; sleep 0.2; \
         printf '%s\\n' \"$(printf '%s' \"$E\" | cut -c8-)\"",
    );
    step.env.insert("A".into(), SECRET[..9].into());
    step.env.insert("B".into(), SECRET[9..].into());
    let out = exec::command::run(&step, &ctx).await.unwrap();
    let stdout = out.stdout.text();
    assert_eq!(stdout.matches("[REDACTED]").count(), 2, "{stdout}");
    assert!(stdout.starts_with("[REDACTED]\nb64="), "{stdout}");
    assert_clean(&out, &events);
}

#[tokio::test]
async fn secrets_outside_env_and_bad_templates_are_refused_before_running() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let (mut ctx, _) = context("refuse");
    ctx.vars.set("params.token", SECRET);
    let step = shell(&format!(
        "touch {}; echo {{{{ params.token }}}}",
        marker.display()
    ));
    let err = exec::command::run(&step, &ctx).await.unwrap_err();
    assert_eq!(err.kind(), StepErrorKind::Prepare, "{err}");
    assert!(err.to_string().contains("env"), "{err}");
    assert!(!err.to_string().contains(SECRET));
    let step = shell(&format!(
        "touch {}; echo {{{{ params.nope }}}}",
        marker.display()
    ));
    let err = exec::command::run(&step, &ctx).await.unwrap_err();
    assert!(matches!(err, StepError::Prepare(_)), "{err}");
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("params.nope"), "{err}");
    assert!(!marker.exists(), "nothing runs when preparation fails");
}

#[tokio::test]
async fn success_codes_decide_and_failures_keep_the_output() {
    let (ctx, events) = context("codes");
    let mut step = shell("echo \"partial $TOKEN\"; exit 3");
    let err = exec::command::run(&step, &ctx).await.unwrap_err();
    assert!(err.is_retryable());
    let out = err.output().unwrap();
    assert_eq!(out.exit_code, Some(3));
    assert_eq!(out.stdout.text(), "partial [REDACTED]\n");
    assert_clean(out, &events);
    step.success_codes = vec![0, 3];
    let ok = exec::command::run(&step, &ctx).await.unwrap();
    assert_eq!(ok.exit_code, Some(3));
}

#[tokio::test]
async fn output_is_capped_from_the_tail_and_checksummed() {
    let (ctx, _) = context("cap");
    let mut step = shell("yes line | head -c 200000; echo LAST");
    step.max_output_bytes = 64;
    let out = exec::command::run(&step, &ctx).await.unwrap();
    assert_eq!(out.stdout.bytes.len(), 64);
    assert!(out.stdout.text().ends_with("LAST\n"));
    assert!(out.stdout.truncated);
    assert_eq!(
        out.stdout.sha256,
        hex::encode(Sha256::digest(&out.stdout.bytes))
    );
}

#[tokio::test]
async fn the_deadline_kills_the_whole_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("survived");
    let (ctx, _) = context("deadline");
    let ctx = ctx.with_timeout(Duration::from_millis(300));
    let step = shell(&format!(
        "echo started; (sleep 1; touch {}) & sleep 5",
        marker.display()
    ));
    let started = Instant::now();
    let err = exec::command::run(&step, &ctx).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_millis(1000),
        "{:?}",
        started.elapsed()
    );
    match &err {
        StepError::Failed {
            timed_out, output, ..
        } => {
            assert!(timed_out, "{err}");
            assert_eq!(output.stdout.text(), "started\n");
        }
        other => panic!("expected a timed-out failure, got {other}"),
    }
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert!(
        !marker.exists(),
        "the background child outlived the deadline"
    );
}

#[tokio::test]
async fn cancelling_kills_a_running_command() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("survived");
    let (ctx, _) = context("cancel");
    let step = shell(&format!("(sleep 1; touch {}) & sleep 5", marker.display()));
    let cancel = ctx.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(150)).await;
        cancel.cancel();
    });
    let started = Instant::now();
    let err = exec::command::run(&step, &ctx).await.unwrap_err();
    assert_eq!(err.kind(), StepErrorKind::Cancelled, "{err}");
    assert!(started.elapsed() < Duration::from_millis(1000));
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert!(!marker.exists(), "the background child outlived the cancel");
}

// ---------------------------------------------------------------------------------------------
// A loopback HTTP/1.1 server: one request per connection, answers by path and hit count,
// records every request (head and body).

type Route = Arc<dyn Fn(&str, usize) -> (u16, Vec<String>) + Send + Sync>;

struct Server {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

/// `route(path, hit)` returns the status and the body, written as separate chunks.
async fn serve(route: Route) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let hits = Arc::new(Mutex::new(HashMap::<String, usize>::new()));
    let log = requests.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let (route, log, hits) = (route.clone(), log.clone(), hits.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let head_end = loop {
                    if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break at + 4;
                    }
                    let mut chunk = [0u8; 4096];
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                while buf.len() < head_end + length {
                    let mut chunk = [0u8; 4096];
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let body = String::from_utf8_lossy(&buf[head_end..head_end + length]).to_string();
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                log.lock().unwrap().push(format!("{head}{body}"));
                let hit = {
                    let mut hits = hits.lock().unwrap();
                    let n = hits.entry(path.clone()).or_default();
                    *n += 1;
                    *n
                };
                let (status, chunks) = route(&path, hit);
                let total: usize = chunks.iter().map(String::len).sum();
                let location = if status == 302 {
                    "Location: http://10.0.0.1/steal\r\n"
                } else {
                    ""
                };
                let head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n{location}\
                     Content-Length: {total}\r\nConnection: close\r\n\r\n"
                );
                if sock.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                for chunk in chunks {
                    if sock.write_all(chunk.as_bytes()).await.is_err() {
                        return;
                    }
                    let _ = sock.flush().await;
                    tokio::time::sleep(Duration::from_millis(60)).await;
                }
            });
        }
    });
    Server { port, requests }
}

fn http_step(url: &str) -> HttpStep {
    toml::from_str(&format!("url = {}", toml::Value::String(url.into()))).unwrap()
}

#[tokio::test]
async fn http_sends_the_key_and_redacts_a_body_cut_inside_secrets() {
    let encoded = b64(SECRET);
    let server = serve(Arc::new(move |path, _| match path {
        "/deploy" => (
            200,
            vec![
                format!("{{\"token\":\"{}", &SECRET[..7]),
                format!("{}\",\"b64\":\"{}", &SECRET[7..], &encoded[..10]),
                format!("{}\"}}", &encoded[10..]),
            ],
        ),
        "/boom" => (500, vec![format!("failed with {SECRET}")]),
        _ => (404, vec!["{}".into()]),
    }))
    .await;
    let (mut ctx, events) = context("deploy");
    ctx.vars.set("params.base", server.url(""));
    ctx.vars.set("params.version", "1.4.2");
    let mut step = http_step("{{ params.base }}/deploy");
    step.body = Some(r#"{"version":"{{ params.version }}"}"#.into());
    step.headers
        .insert("Authorization".into(), format!("Bearer {SECRET}"));
    let out = exec::http::run(&step, &ctx).await.unwrap();
    assert_eq!(out.exit_code, Some(200));
    let body = out.stdout.text();
    // The last base64 characters also encode padding bits, so they may stay.
    assert!(
        body.starts_with(r#"{"token":"[REDACTED]","b64":"[REDACTED]"#),
        "{body}"
    );
    assert_clean(&out, &events);
    let seen = server.requests.lock().unwrap()[0].to_ascii_lowercase();
    assert!(seen.starts_with("post /deploy "), "{seen}");
    assert!(seen.contains("idempotency-key: run-7/deploy/key"), "{seen}");
    assert!(seen.contains(r#"{"version":"1.4.2"}"#), "{seen}");

    let err = exec::http::run(&http_step(&server.url("/boom")), &ctx)
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    let out = err.output().unwrap();
    assert_eq!(out.exit_code, Some(500));
    assert_eq!(out.stdout.text(), "failed with [REDACTED]");
    assert_clean(out, &events);
    let mut accept = http_step(&server.url("/boom"));
    accept.expect_status = vec![500];
    exec::http::run(&accept, &ctx).await.unwrap();
}

#[tokio::test]
async fn http_policy_refusals_are_preparation_errors() {
    let (ctx, _) = context("policy");
    for url in [
        "http://10.0.0.1/steal",
        "http://169.254.169.254/latest/meta-data/",
        "http://example.com/plain",
        "ftp://127.0.0.1/x",
    ] {
        match exec::http::run(&http_step(url), &ctx).await {
            Err(StepError::Prepare(err)) => {
                assert_eq!(err.kind(), ErrorKind::PolicyDenied, "{url}: {err}")
            }
            other => panic!("{url}: expected a policy refusal, got {other:?}"),
        }
    }
    let server = serve(Arc::new(|path, _| match path {
        "/to-private" => (302, vec![]),
        _ => (0, vec![]),
    }))
    .await;
    // A redirect to a refused address is a refusal too, found after the request was sent.
    match exec::http::run(&http_step(&server.url("/to-private")), &ctx).await {
        Err(StepError::Prepare(err)) => assert_eq!(err.kind(), ErrorKind::PolicyDenied, "{err}"),
        other => panic!("expected a policy refusal, got {other:?}"),
    }
    // A request the server answers with nothing is a failed effect, not a refusal.
    let err = exec::http::run(&http_step(&server.url("/x")), &ctx)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), StepErrorKind::Failed, "{err}");
}

// ---------------------------------------------------------------------------------------------
// gate

fn gate(target: GateTarget, min_successes: u32, timeout_ms: u64, on_timeout: &str) -> GateStep {
    GateStep {
        target,
        interval: Duration::from_millis(20),
        timeout: Duration::from_millis(timeout_ms),
        min_successes,
        on_timeout: on_timeout.into(),
    }
}

fn counter(name: &str, op: &str, value: f64) -> GateTarget {
    GateTarget::Counter {
        name: name.into(),
        op: op.into(),
        value,
    }
}

#[tokio::test]
async fn gate_on_a_counter_waits_for_min_successes_in_a_row() {
    let registry = Registry::builder().build().unwrap();
    registry.set_value("queue", 5.0);
    let (mut ctx, events) = context("gate");
    ctx.registry = Some(registry.clone());
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        registry.set_value("queue", 0.0);
    });
    let step = gate(counter("queue", "<=", 0.0), 3, 5000, "fail");
    let result = exec::gate::run(&step, &ctx).await.unwrap();
    assert_eq!(result.outcome, exec::gate::GateOutcome::Passed);
    let samples = events.of_kind(exec::gate::SAMPLE_EVENT);
    assert!(samples.len() >= 4, "{samples:?}");
    assert_eq!(samples[0]["ok"], false);
    assert_eq!(samples[0]["value"], 5.0);
    let last3: Vec<_> = samples[samples.len() - 3..]
        .iter()
        .map(|s| &s["ok"])
        .collect();
    assert_eq!(last3, [true, true, true]);
    assert_eq!(samples.last().unwrap()["streak"], 3);
    assert_eq!(result.output.data["samples"], samples.len());
}

#[tokio::test]
async fn gate_timing_out_reports_the_on_timeout_outcome() {
    let registry = Registry::builder().build().unwrap();
    registry.set_value("errors", 9.0);
    let (mut ctx, events) = context("gate-timeout");
    ctx.registry = Some(registry);
    for (on_timeout, expected) in [
        ("fail", exec::gate::GateOutcome::Fail),
        ("continue", exec::gate::GateOutcome::Continue),
        ("ask", exec::gate::GateOutcome::Ask),
    ] {
        let started = Instant::now();
        let step = gate(counter("errors", "<", 1.0), 1, 150, on_timeout);
        let result = exec::gate::run(&step, &ctx).await.unwrap();
        assert_eq!(result.outcome, expected);
        assert!(started.elapsed() < Duration::from_secs(1));
        assert!(
            result.output.summary.contains("did not pass"),
            "{:?}",
            result.output
        );
    }
    let samples = events.of_kind(exec::gate::SAMPLE_EVENT);
    assert!(samples.len() >= 6, "{samples:?}");
    assert!(samples.iter().all(|s| s["ok"] == false));
}

#[tokio::test]
async fn gate_on_a_url_and_on_a_registry_check() {
    let server = serve(Arc::new(|path, hit| match path {
        "/readyz" if hit > 2 => (200, vec!["{}".into()]),
        _ => (503, vec!["{}".into()]),
    }))
    .await;
    let (ctx, events) = context("gate-http");
    let step = gate(GateTarget::Http(server.url("/readyz")), 2, 5000, "fail");
    let result = exec::gate::run(&step, &ctx).await.unwrap();
    assert_eq!(result.outcome, exec::gate::GateOutcome::Passed);
    let values: Vec<_> = events
        .of_kind(exec::gate::SAMPLE_EVENT)
        .iter()
        .map(|s| s["value"].clone())
        .collect();
    assert_eq!(values, [503, 503, 200, 200]);

    let healthy = Arc::new(AtomicBool::new(false));
    let flag = healthy.clone();
    let registry = Registry::builder()
        .check(CheckSpec::new(
            "db",
            probe_fn(move |_| {
                let up = flag.load(Ordering::SeqCst);
                async move {
                    if up {
                        Outcome::pass()
                    } else {
                        Outcome::fail("down")
                    }
                }
            }),
        ))
        .build()
        .unwrap();
    let (mut ctx, events) = context("gate-check");
    ctx.registry = Some(registry);
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(80)).await;
        healthy.store(true, Ordering::SeqCst);
    });
    let step = gate(GateTarget::Check("db".into()), 2, 5000, "fail");
    let result = exec::gate::run(&step, &ctx).await.unwrap();
    assert_eq!(result.outcome, exec::gate::GateOutcome::Passed);
    let samples = events.of_kind(exec::gate::SAMPLE_EVENT);
    assert_eq!(samples[0]["value"], "fail");
    assert_eq!(samples.last().unwrap()["value"], "pass");

    let unknown = gate(GateTarget::Check("nope".into()), 1, 100, "fail");
    let err = exec::gate::run(&unknown, &ctx).await.unwrap_err();
    assert_eq!(err.kind(), StepErrorKind::Prepare, "{err}");
    let (no_registry, _) = context("gate-none");
    let err = exec::gate::run(&step, &no_registry).await.unwrap_err();
    assert_eq!(err.kind(), StepErrorKind::Prepare, "{err}");
}

// ---------------------------------------------------------------------------------------------
// drain

fn drain(source: DrainSource, timeout_ms: u64) -> DrainStep {
    DrainStep {
        source,
        until: 0.0,
        interval: Duration::from_millis(20),
        timeout: Duration::from_millis(timeout_ms),
    }
}

#[tokio::test]
async fn drain_records_samples_until_the_counter_reaches_zero() {
    let registry = Registry::builder().build().unwrap();
    registry.set_value("in_flight", 3.0);
    let (mut ctx, events) = context("drain");
    ctx.registry = Some(registry.clone());
    tokio::spawn(async move {
        for left in [2.0, 1.0, 0.0] {
            tokio::time::sleep(Duration::from_millis(50)).await;
            registry.set_value("in_flight", left);
        }
    });
    let out = exec::drain::run(&drain(DrainSource::Counter("in_flight".into()), 5000), &ctx)
        .await
        .unwrap();
    let levels: Vec<f64> = events
        .of_kind(exec::drain::SAMPLE_EVENT)
        .iter()
        .map(|s| s["level"].as_f64().unwrap())
        .collect();
    assert_eq!(levels.first(), Some(&3.0));
    assert_eq!(levels.last(), Some(&0.0));
    assert!(levels.windows(2).all(|w| w[0] >= w[1]), "{levels:?}");
    assert!(levels.len() >= 3, "{levels:?}");
    assert_eq!(out.data["level"], 0.0);
    assert_eq!(out.data["samples"], levels.len());
}

#[tokio::test]
async fn drain_reads_json_over_http_and_command_output() {
    let server = serve(Arc::new(|_, hit| {
        let left = 3usize.saturating_sub(hit);
        (200, vec![format!("{{\"work\":{{\"in_flight\":{left}}}}}")])
    }))
    .await;
    let (ctx, events) = context("drain-http");
    let source = DrainSource::Http {
        url: server.url("/stats"),
        pointer: "/work/in_flight".into(),
    };
    let out = exec::drain::run(&drain(source, 5000), &ctx).await.unwrap();
    assert_eq!(out.data["samples"], 3);
    let levels: Vec<_> = events
        .of_kind(exec::drain::SAMPLE_EVENT)
        .iter()
        .map(|s| s["level"].clone())
        .collect();
    assert_eq!(levels, [2.0, 1.0, 0.0]);

    let (ctx, events) = context("drain-cmd");
    let source = DrainSource::Command(vec![
        "sh".into(),
        "-c".into(),
        "test \"$RUNWARD_IDEMPOTENCY_KEY\" = run-7/drain-cmd/key && echo ' 0 '".into(),
    ]);
    exec::drain::run(&drain(source, 5000), &ctx).await.unwrap();
    assert_eq!(events.of_kind(exec::drain::SAMPLE_EVENT)[0]["level"], 0.0);
}

#[tokio::test]
async fn drain_past_its_timeout_fails_with_the_samples() {
    let registry = Registry::builder().build().unwrap();
    registry.set_value("in_flight", 4.0);
    let (mut ctx, events) = context("drain-timeout");
    ctx.registry = Some(registry);
    let started = Instant::now();
    let err = exec::drain::run(&drain(DrainSource::Counter("in_flight".into()), 150), &ctx)
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(1));
    match &err {
        StepError::Failed {
            timed_out, output, ..
        } => {
            assert!(timed_out);
            assert_eq!(output.data["level"], 4.0);
        }
        other => panic!("expected a timeout, got {other}"),
    }
    let samples = events.of_kind(exec::drain::SAMPLE_EVENT);
    assert!(samples.len() >= 3, "{samples:?}");
    let missing = exec::drain::run(&drain(DrainSource::Counter("absent".into()), 100), &ctx)
        .await
        .unwrap_err();
    assert!(missing.to_string().contains("unknown"), "{missing}");
}
