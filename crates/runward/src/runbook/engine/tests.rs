use super::*;
use crate::health::{CheckSpec, Outcome, ProbeKind};
use crate::runbook::exec::{StepError, StepOutput};
use crate::store::{AttemptStatus, RunUpdate, SqliteStore, Timestamp};
use serde_json::json;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

fn runbook(text: &str) -> Runbook {
    Runbook::parse(text, None).unwrap()
}

async fn engine() -> Engine {
    Engine::builder(Arc::new(SqliteStore::open_in_memory().await.unwrap()))
        .poll_every(Duration::from_millis(20))
        .build()
}

fn no_params() -> BTreeMap<String, Value> {
    BTreeMap::new()
}

fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::String((*v).to_owned())))
        .collect()
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

async fn kinds(engine: &Engine, run: &RunId) -> Vec<String> {
    let events = engine.store().list_events(run, 0).await.unwrap();
    events.into_iter().map(|e| e.kind).collect()
}

#[tokio::test]
async fn a_run_goes_queued_running_succeeded_with_intact_evidence() {
    let engine = engine().await;
    let mut events = engine.subscribe();
    let rb = runbook(
        r#"
        [runbook]
        name = "hello"
        [[steps]]
        id = "greet"
        kind = "command"
        argv = ["sh", "-c", "echo hello $RUNWARD_IDEMPOTENCY_KEY"]
        [[steps]]
        id = "nap"
        kind = "sleep"
        duration = "10ms"
        "#,
    );
    let outcome = engine
        .start(&rb, &no_params(), Some("alice"))
        .await
        .unwrap();
    assert_eq!(outcome.run.status, RunStatus::Succeeded);
    assert_eq!(outcome.run.started_by.as_deref(), Some("alice"));
    assert_eq!(
        outcome.run.current_step, 1,
        "the run's position followed its steps"
    );
    let details = engine.store().run_details(&outcome.run.id).await.unwrap();
    assert_eq!(details.attempts.len(), 2);
    let greet = &details.attempts[0];
    assert_eq!(greet.status, AttemptStatus::Succeeded);
    let stdout = greet.output.as_ref().unwrap()["stdout"]["bytes"]
        .as_str()
        .unwrap();
    assert_eq!(stdout.trim(), format!("hello {}", greet.idempotency_key));
    let kinds = kinds(&engine, &outcome.run.id).await;
    assert_eq!(kinds.first().unwrap(), "run_started");
    assert_eq!(kinds.last().unwrap(), "run_succeeded");
    assert!(
        engine
            .store()
            .verify_events(&outcome.run.id)
            .await
            .unwrap()
            .is_intact()
    );
    let first = events.recv().await.unwrap();
    assert_eq!(first.kind, "run_started");
}

#[tokio::test]
async fn retries_back_off_then_succeed_with_a_new_key_per_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("keys");
    let engine = engine().await;
    let rb = runbook(&format!(
        r#"
        [runbook]
        name = "flaky"
        [[steps]]
        id = "flaky"
        kind = "command"
        shell = "echo $RUNWARD_IDEMPOTENCY_KEY >> {log}; test $(wc -l < {log}) -ge 3"
        retries = 3
        backoff = "20ms"
        "#,
        log = log.display()
    ));
    let outcome = engine.start(&rb, &no_params(), None).await.unwrap();
    assert_eq!(outcome.run.status, RunStatus::Succeeded);
    let attempts = engine.store().list_attempts(&outcome.run.id).await.unwrap();
    let statuses: Vec<_> = attempts.iter().map(|a| a.status).collect();
    assert_eq!(
        statuses,
        [
            AttemptStatus::Failed,
            AttemptStatus::Failed,
            AttemptStatus::Succeeded
        ]
    );
    let keys = lines(&log);
    assert_eq!(keys.len(), 3);
    assert_eq!(
        keys.iter().collect::<std::collections::BTreeSet<_>>().len(),
        3,
        "each attempt has its own key: {keys:?}"
    );
    let retries = kinds(&engine, &outcome.run.id)
        .await
        .into_iter()
        .filter(|k| k == "step_retry_scheduled")
        .count();
    assert_eq!(retries, 2);
}

#[tokio::test]
async fn on_failure_continue_goto_and_abort() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("visits");
    let engine = engine().await;
    let rb = runbook(&format!(
        r#"
        [runbook]
        name = "paths"
        [[steps]]
        id = "ignored"
        kind = "command"
        argv = ["false"]
        on_failure = "continue"
        [[steps]]
        id = "fix"
        kind = "command"
        shell = "echo fix >> {m}"
        [[steps]]
        id = "mid"
        kind = "command"
        shell = "echo mid >> {m}.mid"
        [[steps]]
        id = "check"
        kind = "command"
        shell = "test $(wc -l < {m}) -ge 2"
        on_failure = "goto:fix"
        [[steps]]
        id = "stop"
        kind = "command"
        argv = ["false"]
        "#,
        m = marker.display()
    ));
    let outcome = engine.start(&rb, &no_params(), None).await.unwrap();
    assert_eq!(outcome.run.status, RunStatus::Failed);
    assert!(
        outcome
            .run
            .error
            .as_deref()
            .unwrap()
            .contains("step `stop` failed")
    );
    assert_eq!(lines(&marker).len(), 2, "goto ran `fix` a second time");
    let mid = marker.with_extension("mid");
    assert_eq!(
        lines(&mid).len(),
        2,
        "and every step after it, though `mid` had succeeded"
    );
    let kinds = kinds(&engine, &outcome.run.id).await;
    assert!(kinds.contains(&"step_failure_ignored".to_owned()));
    assert!(kinds.contains(&"step_goto".to_owned()));
}

#[tokio::test]
async fn compensation_undoes_completed_steps_in_reverse_and_releases_flags() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let engine = engine().await;
    let rb = runbook(&format!(
        r#"
        [runbook]
        name = "undo"
        on_failure = "compensate"
        [[steps]]
        id = "announce"
        kind = "flag"
        action = "set"
        flag = "restarting"
        [[steps]]
        id = "one"
        kind = "command"
        shell = "echo do-one >> {l}"
        compensate = {{ kind = "command", shell = "echo undo-one >> {l}" }}
        [[steps]]
        id = "two"
        kind = "command"
        shell = "echo do-two >> {l}"
        compensate = {{ kind = "command", shell = "echo undo-two >> {l}" }}
        [[steps]]
        id = "boom"
        kind = "command"
        argv = ["false"]
        "#,
        l = log.display()
    ));
    let outcome = engine.start(&rb, &no_params(), None).await.unwrap();
    assert_eq!(outcome.run.status, RunStatus::Compensated);
    assert_eq!(lines(&log), ["do-one", "do-two", "undo-two", "undo-one"]);
    assert!(
        engine
            .store()
            .get_flag("restarting")
            .await
            .unwrap()
            .is_none()
    );
    let attempts = engine.store().list_attempts(&outcome.run.id).await.unwrap();
    assert!(
        attempts[..3]
            .iter()
            .all(|a| a.status == AttemptStatus::Compensated),
        "{attempts:?}"
    );
}

#[tokio::test]
async fn a_failing_undo_leaves_compensation_failed_and_resume_finishes_it() {
    let dir = tempfile::tempdir().unwrap();
    let gate = dir.path().join("undo-allowed");
    let engine = engine().await;
    let rb = runbook(&format!(
        r#"
        [runbook]
        name = "undo-fails"
        [[steps]]
        id = "one"
        kind = "command"
        argv = ["true"]
        compensate = {{ kind = "command", argv = ["test", "-e", "{g}"] }}
        [[steps]]
        id = "boom"
        kind = "command"
        argv = ["false"]
        on_failure = "compensate"
        "#,
        g = gate.display()
    ));
    let outcome = engine.start(&rb, &no_params(), None).await.unwrap();
    assert_eq!(outcome.run.status, RunStatus::CompensationFailed);
    std::fs::write(&gate, "").unwrap();
    let outcome = engine
        .resume(&outcome.run.id, &rb, Resume::default())
        .await
        .unwrap();
    assert_eq!(outcome.run.status, RunStatus::Compensated);
}

/// Creates a run of `rb` and starts it as a process that is about to die would: `running`
/// under a lease that lapses after 50 ms. Returns the run and that lease's epoch.
async fn run_of_a_dying_process(engine: &Engine, rb: &Runbook) -> (Run, u64) {
    let store = engine.store();
    let run = engine
        .create(rb, &no_params(), Some("alice"))
        .await
        .unwrap();
    let lease = store
        .acquire_lease(&run.id, "dead-process", Duration::from_millis(50))
        .await
        .unwrap();
    store
        .update_run(&run.id, lease.epoch, RunUpdate::status(RunStatus::Running))
        .await
        .unwrap();
    (run, lease.epoch)
}

/// Leaves step 0 of a new run with an intent and no result, as a process killed during the
/// effect would, and returns the run once the sweeper has orphaned it.
async fn crashed_run(engine: &Engine, rb: &Runbook) -> Run {
    let store = engine.store();
    let (run, epoch) = run_of_a_dying_process(engine, rb).await;
    store
        .record_intent(&run.id, epoch, 0, &rb.steps[0].id, 1)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(80)).await;
    let sweep = engine.sweep().await.unwrap();
    assert_eq!(sweep.orphaned.len(), 1);
    store.get_run(&run.id).await.unwrap()
}

#[tokio::test]
async fn outcome_unknown_with_ask_waits_then_retry_reuses_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("keys");
    let engine = engine().await;
    let rb = runbook(&format!(
        r#"
        [runbook]
        name = "ask"
        [[steps]]
        id = "effect"
        kind = "command"
        shell = "echo $RUNWARD_IDEMPOTENCY_KEY >> {}"
        "#,
        log.display()
    ));
    let run = crashed_run(&engine, &rb).await;
    assert_eq!(run.status, RunStatus::Orphaned);
    let waiting = engine
        .resume(&run.id, &rb, Resume::default())
        .await
        .unwrap();
    assert_eq!(waiting.run.status, RunStatus::WaitingOperator);
    assert!(waiting.run.error.unwrap().contains("outcome is unknown"));
    assert!(lines(&log).is_empty(), "ask must not rerun the effect");
    let done = engine
        .retry(&run.id, &rb, "bob", Some("checked the target"))
        .await
        .unwrap();
    assert_eq!(done.run.status, RunStatus::Succeeded);
    let attempts = engine.store().list_attempts(&run.id).await.unwrap();
    assert_eq!(
        attempts.len(),
        1,
        "a retry of an unknown outcome reruns the same attempt"
    );
    assert_eq!(lines(&log), [attempts[0].idempotency_key.clone()]);
    let resumed = engine.store().list_events(&run.id, 0).await.unwrap();
    let action = resumed
        .iter()
        .rev()
        .find(|e| e.kind == "run_resumed")
        .unwrap();
    assert_eq!(action.data["by"], "bob");
    assert_eq!(action.data["decision"], "retry");
}

#[tokio::test]
async fn skip_needs_a_reason_and_records_the_step_skipped() {
    let engine = engine().await;
    let rb = runbook(
        r#"
        [runbook]
        name = "skip"
        [[steps]]
        id = "effect"
        kind = "command"
        argv = ["false"]
        "#,
    );
    let failed = engine.start(&rb, &no_params(), None).await.unwrap();
    assert_eq!(failed.run.status, RunStatus::Failed);
    let err = engine
        .skip(&failed.run.id, &rb, "bob", " ")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let done = engine
        .skip(&failed.run.id, &rb, "bob", "done by hand")
        .await
        .unwrap();
    assert_eq!(done.run.status, RunStatus::Succeeded);
    let attempts = engine.store().list_attempts(&failed.run.id).await.unwrap();
    assert_eq!(attempts.last().unwrap().status, AttemptStatus::Skipped);
    assert_eq!(
        attempts.last().unwrap().error.as_deref(),
        Some("skipped by bob: done by hand")
    );
}

#[tokio::test]
async fn probe_first_treats_a_passing_check_as_done_without_rerunning() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("effects");
    let registry = crate::health::Registry::builder()
        .check(
            CheckSpec::new(
                "api",
                crate::health::probe_fn(|_| async { Outcome::pass() }),
            )
            .kinds([ProbeKind::Readiness]),
        )
        .build()
        .unwrap();
    let engine = Engine::builder(Arc::new(SqliteStore::open_in_memory().await.unwrap()))
        .registry(registry)
        .build();
    let rb = runbook(&format!(
        r#"
        [runbook]
        name = "probe"
        [[steps]]
        id = "restart"
        kind = "command"
        shell = "echo ran >> {}"
        outcome_unknown = "probe_first:api"
        "#,
        log.display()
    ));
    let run = crashed_run(&engine, &rb).await;
    let done = engine
        .resume(&run.id, &rb, Resume::default())
        .await
        .unwrap();
    assert_eq!(done.run.status, RunStatus::Succeeded);
    assert!(
        lines(&log).is_empty(),
        "the passing probe resolved the step"
    );
    let kinds = kinds(&engine, &run.id).await;
    assert!(kinds.contains(&"step_resolved".to_owned()), "{kinds:?}");
}

#[tokio::test]
async fn resuming_with_a_changed_definition_needs_an_override() {
    let engine = engine().await;
    let text = |cmd: &str| {
        format!(
            "[runbook]\nname = \"pin\"\n[[steps]]\nid = \"a\"\nkind = \"command\"\nargv = [\"{cmd}\"]\n"
        )
    };
    let old = runbook(&text("false"));
    let failed = engine.start(&old, &no_params(), None).await.unwrap();
    assert_eq!(failed.run.status, RunStatus::Failed);
    let new = runbook(&text("true"));
    let err = engine
        .resume(&failed.run.id, &new, Resume::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(err.message().contains("changed since"), "{}", err.message());
    let before = engine.store().get_run(&failed.run.id).await.unwrap();
    assert_eq!(
        before.status,
        RunStatus::Failed,
        "a refused resume changes nothing"
    );
    let resume = Resume {
        override_definition: true,
        by: Some("ops".into()),
        reason: Some("fixed the command".into()),
    };
    let done = engine.resume(&failed.run.id, &new, resume).await.unwrap();
    assert_eq!(done.run.status, RunStatus::Succeeded);
    let events = engine.store().list_events(&failed.run.id, 0).await.unwrap();
    let resumed = events.iter().find(|e| e.kind == "run_resumed").unwrap();
    assert_eq!(resumed.data["definition_overridden"], new.definition_hash());
}

fn approval_runbook(extra: &str) -> Runbook {
    runbook(&format!(
        r#"
        [runbook]
        name = "approve"
        [[steps]]
        id = "ok"
        kind = "approval"
        approvers = ["alice", "bob", "carol"]
        forbid_starter = true
        message = "restart?"
        {extra}
        [[steps]]
        id = "after"
        kind = "command"
        argv = ["true"]
        "#
    ))
}

#[tokio::test]
async fn approvals_wait_enforce_people_and_quorum_and_are_used_once() {
    let engine = engine().await;
    let rb = approval_runbook("quorum = 2");
    let waiting = engine
        .start(&rb, &no_params(), Some("alice"))
        .await
        .unwrap();
    assert_eq!(waiting.run.status, RunStatus::WaitingApproval);
    let approval = waiting.approval.clone().unwrap();
    let id = waiting.run.id.clone();

    let starter = engine.approve(&id, "alice", None).await.unwrap_err();
    assert_eq!(starter.kind(), ErrorKind::PolicyDenied);
    let stranger = engine.approve(&id, "mallory", None).await.unwrap_err();
    assert_eq!(stranger.kind(), ErrorKind::PolicyDenied);
    let unchanged = engine.store().get_approval(&approval.id).await.unwrap();
    assert!(unchanged.approvals.is_empty(), "refusals change nothing");

    let one = engine
        .approve(&id, "bob", Some("looks fine"))
        .await
        .unwrap();
    assert_eq!(one.status, ApprovalStatus::Pending);
    let still = engine.resume(&id, &rb, Resume::default()).await.unwrap();
    assert_eq!(still.run.status, RunStatus::WaitingApproval);
    let two = engine.approve(&id, "carol", None).await.unwrap();
    assert_eq!(two.status, ApprovalStatus::Approved);
    let done = engine.resume(&id, &rb, Resume::default()).await.unwrap();
    assert_eq!(done.run.status, RunStatus::Succeeded);
    let used = engine.store().get_approval(&approval.id).await.unwrap();
    assert_eq!(used.status, ApprovalStatus::Consumed);
    assert_eq!(used.plan_digest, plan(&rb, &no_params()).unwrap().digest);
    let kinds = kinds(&engine, &id).await;
    for kind in ["approval_requested", "approval_given", "approval_used"] {
        assert!(
            kinds.contains(&kind.to_owned()),
            "{kind} missing: {kinds:?}"
        );
    }
}

#[tokio::test]
async fn a_denied_or_expired_approval_fails_the_step() {
    let engine = engine().await;
    let rb = approval_runbook("");
    let waiting = engine
        .start(&rb, &no_params(), Some("alice"))
        .await
        .unwrap();
    engine
        .deny(&waiting.run.id, "bob", Some("not now"))
        .await
        .unwrap();
    let denied = engine
        .resume(&waiting.run.id, &rb, Resume::default())
        .await
        .unwrap();
    assert_eq!(denied.run.status, RunStatus::Failed);
    assert!(denied.run.error.unwrap().contains("denied by bob: not now"));

    let rb = approval_runbook("expires = \"200ms\"");
    let waiting = engine
        .start(&rb, &no_params(), Some("alice"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;
    let sweep = engine.sweep().await.unwrap();
    assert_eq!(sweep.approvals_timed_out.len(), 1);
    let late = engine
        .approve(&waiting.run.id, "bob", None)
        .await
        .unwrap_err();
    assert_eq!(late.kind(), ErrorKind::Conflict);
    let timed_out = engine
        .resume(&waiting.run.id, &rb, Resume::default())
        .await
        .unwrap();
    assert_eq!(timed_out.run.status, RunStatus::Failed);
    assert!(timed_out.run.error.unwrap().contains("timed out"));
}

#[tokio::test]
async fn flag_requirements_are_checked_before_anything_is_created() {
    let engine = engine().await;
    let rb = runbook(
        r#"
        [runbook]
        name = "guarded"
        requires_flags_absent = ["lockdown"]
        [[steps]]
        id = "a"
        kind = "sleep"
        duration = "1ms"
        "#,
    );
    engine
        .store()
        .set_flag(
            "lockdown",
            "admin",
            Duration::from_secs(60),
            Some("incident"),
        )
        .await
        .unwrap();
    let err = engine.start(&rb, &no_params(), None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(err.message().contains("incident"), "{}", err.message());
    assert!(engine.list(&RunFilter::default()).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_run_keeps_its_flags_until_it_closes_and_lockdown_is_refused() {
    let engine = engine().await;
    let rb = runbook(
        r#"
        [runbook]
        name = "flagged"
        [[steps]]
        id = "set"
        kind = "flag"
        action = "set"
        flag = "restarting"
        ttl = "5m"
        [[steps]]
        id = "lock"
        kind = "flag"
        action = "set"
        flag = "lockdown"
        "#,
    );
    let outcome = engine.start(&rb, &no_params(), None).await.unwrap();
    assert_eq!(outcome.run.status, RunStatus::Failed);
    assert!(outcome.run.error.unwrap().contains("unlock code"));
    assert!(engine.store().get_flag("lockdown").await.unwrap().is_none());
    // A failed run may be resumed: it keeps its flags until their TTL lapses.
    let held = engine
        .store()
        .get_flag("restarting")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(held.owner, outcome.run.id.as_str());
    let kinds = kinds(&engine, &outcome.run.id).await;
    assert!(kinds.contains(&"flag_set".to_owned()));
    assert!(!kinds.contains(&"flags_released".to_owned()));
    // Cancelling closes it and gives the flag back.
    let cancelled = engine
        .cancel(&outcome.run.id, &rb, "ops", None)
        .await
        .unwrap();
    assert_eq!(cancelled.run.status, RunStatus::Cancelled);
    assert!(
        engine
            .store()
            .get_flag("restarting")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn cancel_interrupts_a_running_step_and_runs_the_cancel_path() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("cancel");
    let engine = engine().await;
    let rb = runbook(&format!(
        r#"
        [runbook]
        name = "long"
        [[steps]]
        id = "wait"
        kind = "sleep"
        duration = "30s"
        [[on_cancel]]
        id = "cleanup"
        kind = "command"
        shell = "echo cleaned >> {}"
        "#,
        log.display()
    ));
    let run = engine.create(&rb, &no_params(), None).await.unwrap();
    let driving = tokio::spawn({
        let (engine, rb, id) = (engine.clone(), rb.clone(), run.id.clone());
        async move { engine.resume(&id, &rb, Resume::default()).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let requested = engine
        .cancel(&run.id, &rb, "bob", Some("wrong window"))
        .await
        .unwrap();
    assert_eq!(
        requested.run.status,
        RunStatus::Running,
        "the driver acts on it"
    );
    let started = std::time::Instant::now();
    let outcome = driving.await.unwrap().unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(outcome.run.status, RunStatus::Cancelled);
    assert_eq!(lines(&log), ["cleaned"]);
    let events = engine.store().list_events(&run.id, 0).await.unwrap();
    let request = events
        .iter()
        .find(|e| e.kind == "cancel_requested")
        .unwrap();
    assert_eq!(request.data["who"], "bob");

    // A waiting run is cancelled on the spot.
    let approval = approval_runbook("");
    let waiting = engine
        .start(&approval, &no_params(), Some("zed"))
        .await
        .unwrap();
    let cancelled = engine
        .cancel(&waiting.run.id, &approval, "bob", None)
        .await
        .unwrap();
    assert_eq!(cancelled.run.status, RunStatus::Cancelled);
}

#[tokio::test]
async fn custom_steps_run_with_their_params_and_unknown_ones_fail_clearly() {
    let calls = Arc::new(AtomicU32::new(0));
    let seen = calls.clone();
    let custom = step_fn(move |ctx, params| {
        let seen = seen.clone();
        async move {
            seen.fetch_add(1, Ordering::SeqCst);
            if params["target"] != "db-1" {
                return Err(StepError::failed("wrong target", StepOutput::default()));
            }
            Ok(StepOutput {
                summary: format!("snapshot of {} ({})", params["target"], ctx.idempotency_key),
                ..StepOutput::default()
            })
        }
    });
    let engine = Engine::builder(Arc::new(SqliteStore::open_in_memory().await.unwrap()))
        .step("snapshot", custom)
        .build();
    let rb = runbook(
        r#"
        [runbook]
        name = "custom"
        [params.target]
        default = "db-1"
        [[steps]]
        id = "snap"
        kind = "custom"
        name = "snapshot"
        params = { target = "{{ params.target }}" }
        [[steps]]
        id = "missing"
        kind = "custom"
        name = "nope"
        "#,
    );
    let outcome = engine.start(&rb, &no_params(), None).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(outcome.run.status, RunStatus::Failed);
    let error = outcome.run.error.unwrap();
    assert!(
        error.contains("no custom step `nope`") && error.contains("snapshot"),
        "{error}"
    );
}

#[tokio::test]
async fn a_sub_runbook_runs_as_a_child_run() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("child.toml"),
        "[runbook]\nname = \"child\"\n[params.word]\ndefault = \"x\"\n[[steps]]\nid = \"say\"\nkind = \"command\"\nargv = [\"test\", \"{{ params.word }}\", \"=\", \"hi\"]\n",
    )
    .unwrap();
    let parent = dir.path().join("parent.toml");
    std::fs::write(
        &parent,
        "[runbook]\nname = \"parent\"\n[[steps]]\nid = \"child\"\nkind = \"runbook\"\npath = \"child.toml\"\nparams = { word = \"hi\" }\n",
    )
    .unwrap();
    let engine = engine().await;
    let rb = Runbook::load(&parent).unwrap();
    let outcome = engine.start(&rb, &no_params(), Some("ops")).await.unwrap();
    assert_eq!(outcome.run.status, RunStatus::Succeeded);
    let runs = engine.list(&RunFilter::default()).await.unwrap();
    let child = runs.iter().find(|r| r.runbook == "child").unwrap();
    assert_eq!(child.parent.as_ref(), Some(&outcome.run.id));
    assert_eq!(child.status, RunStatus::Succeeded);
    assert_eq!(child.started_by.as_deref(), Some("ops"));
}

#[tokio::test]
async fn a_driver_that_lost_its_lease_writes_nothing_more() {
    let store: Arc<dyn crate::store::Store> =
        Arc::new(SqliteStore::open_in_memory().await.unwrap());
    // This engine never renews in time: as if its process were paused.
    let paused = Engine::builder(store.clone())
        .owner("paused")
        .lease_ttl(Duration::from_millis(150))
        .unwrap()
        .renew_every(Duration::from_secs(60))
        .build();
    let other = Engine::builder(store.clone()).owner("other").build();
    let rb = runbook(
        r#"
        [runbook]
        name = "slow"
        [[steps]]
        id = "slow"
        kind = "command"
        argv = ["sleep", "0.6"]
        [[steps]]
        id = "next"
        kind = "command"
        argv = ["true"]
        "#,
    );
    let run = paused.create(&rb, &no_params(), None).await.unwrap();
    let driving = tokio::spawn({
        let (paused, rb, id) = (paused.clone(), rb.clone(), run.id.clone());
        async move { paused.resume(&id, &rb, Resume::default()).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(other.sweep().await.unwrap().orphaned.len(), 1);
    let taken = store
        .acquire_lease(&run.id, "other", Duration::from_secs(30))
        .await
        .unwrap();
    let before = store.list_events(&run.id, 0).await.unwrap().len();
    let err = driving.await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LeaseLost, "{err}");
    let after = store.run_details(&run.id).await.unwrap();
    assert_eq!(
        after.events.len(),
        before,
        "the old driver appended nothing"
    );
    assert_eq!(after.attempts[0].status, AttemptStatus::Intent);
    assert_eq!(after.run.epoch, taken.epoch);
}

#[tokio::test]
async fn secret_params_reach_commands_by_environment_and_never_the_evidence() {
    // SAFETY: the variable name is unique to this test.
    unsafe { std::env::set_var("RUNWARD_TEST_ENGINE_TOKEN", "tok-3141592653-secret") };
    let engine = engine().await;
    let rb = runbook(
        r#"
        [runbook]
        name = "secret"
        [params.token]
        type = "secret"
        env = "RUNWARD_TEST_ENGINE_TOKEN"
        [[steps]]
        id = "leak"
        kind = "command"
        shell = "echo token=$RUNWARD_TEST_ENGINE_TOKEN; echo $RUNWARD_TEST_ENGINE_TOKEN | base64"
        "#,
    );
    let outcome = engine.start(&rb, &params(&[]), None).await.unwrap();
    assert_eq!(outcome.run.status, RunStatus::Succeeded);
    let details = engine.store().run_details(&outcome.run.id).await.unwrap();
    let text = serde_json::to_string(&details).unwrap();
    assert!(!text.contains("tok-3141592653-secret"), "{text}");
    assert!(
        text.contains("RUNWARD_TEST_ENGINE_TOKEN"),
        "the reference is kept"
    );
    assert!(text.contains("[REDACTED]"));
}

#[tokio::test]
async fn the_source_file_is_recorded_for_resume() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("one.toml");
    std::fs::write(
        &path,
        "[runbook]\nname = \"one\"\n[[steps]]\nid = \"a\"\nkind = \"sleep\"\nduration = \"1ms\"\n",
    )
    .unwrap();
    let engine = engine().await;
    let rb = Runbook::load(&path).unwrap();
    let outcome = engine.start(&rb, &no_params(), None).await.unwrap();
    assert_eq!(engine.source_of(&outcome.run.id).await.unwrap(), Some(path));
}

#[tokio::test]
async fn a_failing_custom_step_has_its_output_redacted_too() {
    // SAFETY: the variable name is unique to this test.
    unsafe { std::env::set_var("RUNWARD_TEST_CUSTOM_TOKEN", "cust-2718281828-secret") };
    let leak = step_fn(|_ctx, _params| async {
        Err(StepError::failed(
            "upstream said cust-2718281828-secret",
            StepOutput {
                summary: "token cust-2718281828-secret".into(),
                data: serde_json::json!({"echo": "cust-2718281828-secret"}),
                ..StepOutput::default()
            },
        ))
    });
    let engine = Engine::builder(Arc::new(SqliteStore::open_in_memory().await.unwrap()))
        .step("leak", leak)
        .build();
    let rb = runbook(
        r#"
        [runbook]
        name = "leaky"
        [params.token]
        type = "secret"
        env = "RUNWARD_TEST_CUSTOM_TOKEN"
        [[steps]]
        id = "leak"
        kind = "custom"
        name = "leak"
        "#,
    );
    let outcome = engine.start(&rb, &no_params(), None).await.unwrap();
    assert_eq!(outcome.run.status, RunStatus::Failed);
    let details = engine.store().run_details(&outcome.run.id).await.unwrap();
    let text = serde_json::to_string(&details).unwrap();
    assert!(!text.contains("cust-2718281828-secret"), "{text}");
}

#[tokio::test]
async fn a_run_orphaned_while_compensating_finishes_its_compensation() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let engine = engine().await;
    let rb = runbook(&format!(
        r#"
        [runbook]
        name = "half-undone"
        [[steps]]
        id = "one"
        kind = "command"
        shell = "echo do-one >> {l}"
        compensate = {{ kind = "command", shell = "echo undo-one >> {l}" }}
        [[steps]]
        id = "two"
        kind = "command"
        shell = "echo do-two >> {l}"
        on_failure = "compensate"
        "#,
        l = log.display()
    ));
    // A process did step one, then step two failed and it died while undoing step one.
    let store = engine.store();
    let (run, e) = run_of_a_dying_process(&engine, &rb).await;
    store.record_intent(&run.id, e, 0, "one", 1).await.unwrap();
    store
        .record_result(
            &run.id,
            e,
            0,
            1,
            crate::store::StepResult::succeeded(json!({})),
        )
        .await
        .unwrap();
    store.record_intent(&run.id, e, 1, "two", 1).await.unwrap();
    store
        .record_result(&run.id, e, 1, 1, crate::store::StepResult::failed("boom"))
        .await
        .unwrap();
    store
        .update_run(&run.id, e, RunUpdate::status(RunStatus::Compensating))
        .await
        .unwrap();
    store
        .append_event(&run.id, Some(e), "compensation_started", json!({}))
        .await
        .unwrap();
    store
        .record_compensation(&run.id, e, 0, 1, AttemptStatus::Compensating, None)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert_eq!(engine.sweep().await.unwrap().orphaned.len(), 1);
    // The undo was interrupted: a command's outcome is unknown, so an operator decides.
    let waiting = engine
        .resume(&run.id, &rb, Resume::default())
        .await
        .unwrap();
    assert_eq!(waiting.run.status, RunStatus::WaitingOperator);
    assert!(waiting.run.error.unwrap().contains("undo of step `one`"));
    assert!(
        lines(&log).is_empty(),
        "the undo is not rerun without a decision"
    );
    let done = engine
        .retry(&run.id, &rb, "ops", Some("the refund did not happen"))
        .await
        .unwrap();
    assert_eq!(done.run.status, RunStatus::Compensated);
    assert_eq!(lines(&log), ["undo-one"], "step two is not run again");
}

#[tokio::test]
async fn flags_with_templated_names_are_renewed_with_their_own_ttl() {
    let seen = Arc::new(std::sync::Mutex::new(None));
    let probe = seen.clone();
    let store: Arc<dyn crate::store::Store> =
        Arc::new(SqliteStore::open_in_memory().await.unwrap());
    let reader = store.clone();
    let check = step_fn(move |_ctx, _params| {
        let (probe, reader) = (probe.clone(), reader.clone());
        async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            *probe.lock().unwrap() = reader.get_flag("hold-7").await.unwrap();
            Ok(StepOutput::default())
        }
    });
    let engine = Engine::builder(store)
        .renew_every(Duration::from_millis(50))
        .step("check", check)
        .build();
    let rb = runbook(
        r#"
        [runbook]
        name = "templated-flag"
        [params.n]
        type = "integer"
        [[steps]]
        id = "hold"
        kind = "flag"
        action = "set"
        flag = "hold-{{ params.n }}"
        ttl = "2h"
        [[steps]]
        id = "check"
        kind = "custom"
        name = "check"
        "#,
    );
    let outcome = engine
        .start(&rb, &params(&[("n", "7")]), None)
        .await
        .unwrap();
    assert_eq!(outcome.run.status, RunStatus::Succeeded);
    let flag = seen
        .lock()
        .unwrap()
        .clone()
        .expect("the flag was held during the step");
    let left = flag.expires_at.duration_since(Timestamp::now());
    assert!(
        left > Duration::from_secs(3600),
        "renewed with its own 2h TTL: {left:?}"
    );
}

#[tokio::test]
async fn a_definition_accepted_by_override_stays_accepted() {
    let engine = engine().await;
    let text = |cmd: &str| {
        format!(
            "[runbook]\nname = \"pin2\"\n[[steps]]\nid = \"a\"\nkind = \"command\"\nargv = [\"{cmd}\"]\n[[steps]]\nid = \"ok\"\nkind = \"approval\"\n"
        )
    };
    let old = runbook(&text("false"));
    let failed = engine
        .start(&old, &no_params(), Some("alice"))
        .await
        .unwrap();
    let new = runbook(&text("true"));
    let resume = Resume {
        override_definition: true,
        ..Resume::default()
    };
    let waiting = engine.resume(&failed.run.id, &new, resume).await.unwrap();
    assert_eq!(waiting.run.status, RunStatus::WaitingApproval);
    engine.approve(&failed.run.id, "bob", None).await.unwrap();
    let done = engine
        .resume(&failed.run.id, &new, Resume::default())
        .await
        .unwrap();
    assert_eq!(done.run.status, RunStatus::Succeeded);
}

#[tokio::test]
async fn the_failure_path_runs_on_each_failure_and_a_retry_resumes_the_failed_step() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let gate = dir.path().join("fixed");
    let engine = engine().await;
    let rb = runbook(&format!(
        r#"
        [runbook]
        name = "with-failure-path"
        [[steps]]
        id = "first"
        kind = "command"
        shell = "echo first >> {l}"
        [[steps]]
        id = "check"
        kind = "command"
        argv = ["test", "-e", "{g}"]
        [[on_failure]]
        id = "notify"
        kind = "command"
        shell = "echo notify >> {l}"
        "#,
        l = log.display(),
        g = gate.display()
    ));
    assert_eq!(plan(&rb, &no_params()).unwrap().on_failure.len(), 1);
    let failed = engine.start(&rb, &no_params(), None).await.unwrap();
    assert_eq!(failed.run.status, RunStatus::Failed);
    assert_eq!(failed.run.current_step, 1, "stopped at the failed step");
    assert_eq!(lines(&log), ["first", "notify"]);
    let again = engine
        .retry(&failed.run.id, &rb, "ops", None)
        .await
        .unwrap();
    assert_eq!(again.run.status, RunStatus::Failed);
    assert_eq!(
        lines(&log),
        ["first", "notify", "notify"],
        "a new failure runs the path again"
    );
    std::fs::write(&gate, "").unwrap();
    let done = engine
        .retry(&failed.run.id, &rb, "ops", None)
        .await
        .unwrap();
    assert_eq!(done.run.status, RunStatus::Succeeded);
    assert_eq!(lines(&log), ["first", "notify", "notify"]);
    let kinds = kinds(&engine, &failed.run.id).await;
    assert_eq!(
        kinds
            .iter()
            .filter(|k| *k == "failure_path_started")
            .count(),
        2
    );
}

#[tokio::test]
async fn an_approval_cannot_be_skipped_and_ignores_outcome_policies() {
    let engine = engine().await;
    let rb = approval_runbook("outcome_unknown = \"probe_first:api\"");
    let waiting = engine
        .start(&rb, &no_params(), Some("mallory"))
        .await
        .unwrap();
    let id = waiting.run.id.clone();
    let err = engine
        .skip(&id, &rb, "mallory", "in a hurry")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PolicyDenied);
    let still = engine.store().get_run(&id).await.unwrap();
    assert_eq!(
        still.status,
        RunStatus::WaitingApproval,
        "a refused skip changes nothing"
    );
    // Resuming re-enters the approval instead of applying probe_first (no registry here).
    let again = engine.resume(&id, &rb, Resume::default()).await.unwrap();
    assert_eq!(again.run.status, RunStatus::WaitingApproval);
    engine.approve(&id, "bob", None).await.unwrap();
    let done = engine.resume(&id, &rb, Resume::default()).await.unwrap();
    assert_eq!(done.run.status, RunStatus::Succeeded);
}

#[tokio::test]
async fn a_crash_in_the_failure_path_resumed_without_a_sweep_still_fails() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let engine = engine().await;
    let rb = runbook(&format!(
        r#"
        [runbook]
        name = "crash-in-path"
        [[steps]]
        id = "boom"
        kind = "command"
        argv = ["false"]
        [[on_failure]]
        id = "notify"
        kind = "command"
        outcome_unknown = "rerun"
        shell = "echo notify >> {}"
        "#,
        log.display()
    ));
    // A process ran `boom`, started the failure path and died inside `notify`.
    let store = engine.store();
    let (run, e) = run_of_a_dying_process(&engine, &rb).await;
    store.record_intent(&run.id, e, 0, "boom", 1).await.unwrap();
    store
        .record_result(&run.id, e, 0, 1, crate::store::StepResult::failed("exit 1"))
        .await
        .unwrap();
    store
        .append_event(
            &run.id,
            Some(e),
            "failure_path_started",
            json!({"error": "step `boom` failed", "step_index": 0, "stale": {}}),
        )
        .await
        .unwrap();
    store
        .record_intent_logged(&run.id, e, 1, "notify", 1, "step_started", json!({}))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(80)).await;
    // No sweep: the run still reads `running`.
    let done = engine
        .resume(&run.id, &rb, Resume::default())
        .await
        .unwrap();
    assert_eq!(done.run.status, RunStatus::Failed);
    assert_eq!(
        done.run.current_step, 0,
        "a retry starts at the failed step"
    );
    assert_eq!(lines(&log), ["notify"]);
}

#[tokio::test]
async fn each_sub_runbook_step_has_its_own_child_and_secrets_stay_out_of_child_params() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    std::fs::write(
        dir.path().join("child.toml"),
        format!(
            "[runbook]\nname = \"child\"\n[params.word]\n[[steps]]\nid = \"say\"\nkind = \"command\"\nshell = \"echo {{{{ params.word }}}} >> {}\"\n",
            log.display()
        ),
    )
    .unwrap();
    let parent = dir.path().join("parent.toml");
    std::fs::write(
        &parent,
        "[runbook]\nname = \"parent\"\n[[steps]]\nid = \"c1\"\nkind = \"runbook\"\npath = \"child.toml\"\nparams = { word = \"one\" }\n[[steps]]\nid = \"c2\"\nkind = \"runbook\"\npath = \"child.toml\"\nparams = { word = \"two\" }\n",
    )
    .unwrap();
    let engine = engine().await;
    let rb = Runbook::load(&parent).unwrap();
    let outcome = engine.start(&rb, &no_params(), None).await.unwrap();
    assert_eq!(outcome.run.status, RunStatus::Succeeded);
    assert_eq!(lines(&log), ["one", "two"]);

    // SAFETY: the variable name is unique to this test.
    unsafe { std::env::set_var("RUNWARD_TEST_PARENT_TOKEN", "parent-1618033-secret") };
    std::fs::write(
        &parent,
        "[runbook]\nname = \"leaky-parent\"\n[params.token]\ntype = \"secret\"\nenv = \"RUNWARD_TEST_PARENT_TOKEN\"\n[[steps]]\nid = \"c\"\nkind = \"runbook\"\npath = \"child.toml\"\nparams = { word = \"{{ params.token }}\" }\n",
    )
    .unwrap();
    let rb = Runbook::load(&parent).unwrap();
    let outcome = engine.start(&rb, &no_params(), None).await.unwrap();
    assert_eq!(outcome.run.status, RunStatus::Failed);
    assert!(outcome.run.error.unwrap().contains("secret"));
    let all = engine.list(&RunFilter::default()).await.unwrap();
    let text = serde_json::to_string(&all).unwrap();
    assert!(!text.contains("parent-1618033-secret"), "{text}");

    let bad = engine
        .create(&rb, &params(&[("token", "a value, not a name")]), None)
        .await
        .unwrap_err();
    assert_eq!(bad.kind(), ErrorKind::InvalidInput);
}
