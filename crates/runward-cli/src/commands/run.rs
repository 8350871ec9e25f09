//! `runward runbook run|resume|retry|skip|approve|deny|cancel|sweep`: drive durable runs with
//! the engine, printing progress to standard error as events arrive.

use crate::cli::{CancelArgs, DecideArgs, ResumeArgs, RetryArgs, RunArgs, SkipArgs, SweepArgs};
use crate::output::{errln, outln};
use anyhow::Result;
use runward::config::Config;
use runward::runbook::Runbook;
use runward::runbook::engine::{Engine, Resume, RunOutcome};
use runward::store::{ApprovalStatus, Event, RunId, RunStatus, Store};
use runward::{Error, ErrorKind};
use serde_json::{Value, json};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};

/// The run reached a decision point: an approval or an operator must act.
pub(crate) const EXIT_WAITING: i32 = 4;
const EXIT_FAILED: i32 = 1;
const EXIT_BAD_INPUT: i32 = 2;

/// An engine over the configured state store, with the configuration's health registry when a
/// configuration file was found, and its outbound policy.
pub(crate) async fn engine(config: &Config) -> Result<Engine> {
    let store: Arc<dyn Store> = Arc::new(config.open_store().await?);
    let mut builder = config.engine_builder(store)?;
    if config.path.is_some() {
        builder = builder.registry(config.registry()?);
    }
    Ok(builder.build())
}

/// `runward runbook run`.
pub(crate) async fn run(config: &Config, args: RunArgs) -> Result<i32> {
    let prepared = Runbook::load(&args.file).and_then(|runbook| {
        super::runbook::parse_params(&args.params).map(|params| (runbook, params))
    });
    let (runbook, params) = match prepared {
        Ok(ok) => ok,
        Err(e) => return refuse(e, args.json, EXIT_BAD_INPUT),
    };
    let engine = engine(config).await?;
    let mut events = engine.subscribe();
    // Creating first keeps "nothing was created" refusals apart from failures of the run.
    let run = match engine.create(&runbook, &params, args.who.as_deref()).await {
        Ok(run) => run,
        Err(e) if is_refusal(&e) => return refuse(e, args.json, EXIT_BAD_INPUT),
        Err(e) => return Err(e.into()),
    };
    errln!("run {} created ({})", run.id, runbook.name);
    let outcome = with_progress(
        &mut events,
        &run.id,
        engine.resume(&run.id, &runbook, Resume::default()),
    )
    .await;
    finish(outcome, args.json)
}

/// Loads run `run`'s runbook (`file`, else the one it started from), then drives the run with
/// `act` while showing its progress, and prints the outcome.
async fn operate<F, Fut>(
    config: &Config,
    run: &str,
    file: Option<&Path>,
    json: bool,
    act: F,
) -> Result<i32>
where
    F: FnOnce(Engine, RunId, Runbook) -> Fut,
    Fut: Future<Output = runward::Result<RunOutcome>>,
{
    let engine = engine(config).await?;
    let id = RunId::from(run);
    let runbook = match runbook_of(&engine, &id, file).await {
        Ok(runbook) => runbook,
        Err(e) => return refused(e, json),
    };
    let mut events = engine.subscribe();
    let outcome = with_progress(&mut events, &id, act(engine.clone(), id.clone(), runbook)).await;
    finish(outcome, json)
}

/// `runward runbook resume`.
pub(crate) async fn resume(config: &Config, args: ResumeArgs) -> Result<i32> {
    let resume = Resume {
        override_definition: args.override_definition,
        by: args.who,
        reason: args.reason,
    };
    operate(
        config,
        &args.run,
        args.file.as_deref(),
        args.json,
        |engine, id, runbook| async move { engine.resume(&id, &runbook, resume).await },
    )
    .await
}

/// `runward runbook retry`.
pub(crate) async fn retry(config: &Config, args: RetryArgs) -> Result<i32> {
    let (who, reason) = (args.who, args.reason);
    operate(config, &args.run, args.file.as_deref(), args.json, |engine, id, runbook| async move {
        engine.retry(&id, &runbook, &who, reason.as_deref()).await
    })
    .await
}

/// `runward runbook skip`.
pub(crate) async fn skip(config: &Config, args: SkipArgs) -> Result<i32> {
    let (who, reason) = (args.who, args.reason);
    operate(
        config,
        &args.run,
        args.file.as_deref(),
        args.json,
        |engine, id, runbook| async move { engine.skip(&id, &runbook, &who, &reason).await },
    )
    .await
}

/// `runward runbook approve` (`deny` when `approve` is false).
pub(crate) async fn decide(config: &Config, args: DecideArgs, approve: bool) -> Result<i32> {
    let engine = engine(config).await?;
    let id = RunId::from(args.run.as_str());
    // Load the runbook before recording anything, so a missing file changes nothing.
    let runbook = if args.no_resume {
        None
    } else {
        match runbook_of(&engine, &id, args.file.as_deref()).await {
            Ok(runbook) => Some(runbook),
            Err(e) => return refused(e, args.json),
        }
    };
    let decided = if approve {
        engine
            .approve(&id, &args.who, args.comment.as_deref())
            .await
    } else {
        engine.deny(&id, &args.who, args.comment.as_deref()).await
    };
    let approval = match decided {
        Ok(approval) => approval,
        Err(e) => return refused(e, args.json),
    };
    let verb = if approve { "approved" } else { "denied" };
    errln!(
        "{verb} request {} of run {id} as {} (request is now {})",
        approval.id,
        args.who,
        approval.status
    );
    let resume = matches!(
        approval.status,
        ApprovalStatus::Approved | ApprovalStatus::Denied
    );
    let outcome = match runbook {
        Some(runbook) if resume => {
            let mut events = engine.subscribe();
            let by = Resume {
                by: Some(args.who.clone()),
                reason: Some(format!("approval {verb}")),
                ..Resume::default()
            };
            match with_progress(&mut events, &id, engine.resume(&id, &runbook, by)).await {
                Ok(outcome) => Some(outcome),
                Err(e) => return refused(e, args.json),
            }
        }
        _ => None,
    };
    let run = match &outcome {
        Some(outcome) => outcome.run.clone(),
        None => engine.store().get_run(&id).await?,
    };
    if args.json {
        print_json(&json!({ "approval": approval, "outcome": outcome, "run": run }))?;
    } else {
        if approval.status == ApprovalStatus::Pending {
            outln!(
                "request {} has {} of {} approval(s); the run keeps waiting",
                approval.id,
                approval.approvals.len(),
                approval.quorum
            );
        } else if outcome.is_none() {
            outln!(
                "request {} is {}; resume the run with `runward runbook resume {id}`",
                approval.id,
                approval.status
            );
        }
        print_run(&run, outcome.as_ref().and_then(|o| o.approval.as_ref()))?;
    }
    Ok(exit_for(run.status))
}

/// `runward runbook cancel`.
pub(crate) async fn cancel(config: &Config, args: CancelArgs) -> Result<i32> {
    let engine = engine(config).await?;
    let id = RunId::from(args.run.as_str());
    let runbook = match runbook_of(&engine, &id, args.file.as_deref()).await {
        Ok(runbook) => runbook,
        Err(e) => return refused(e, args.json),
    };
    let mut events = engine.subscribe();
    let outcome = with_progress(
        &mut events,
        &id,
        engine.cancel(&id, &runbook, &args.who, args.reason.as_deref()),
    )
    .await;
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(e) => return refused(e, args.json),
    };
    if args.json {
        print_json(&serde_json::to_value(&outcome)?)?;
    } else {
        if outcome.run.status != RunStatus::Cancelled {
            outln!("cancel requested; the process driving the run acts on it within seconds");
        }
        print_run(&outcome.run, None)?;
    }
    let cancelled_cleanly =
        outcome.run.status == RunStatus::Cancelled && outcome.run.error.is_none();
    let handed_over = !outcome.run.status.is_terminal();
    Ok(if cancelled_cleanly || handed_over {
        0
    } else {
        EXIT_FAILED
    })
}

/// `runward runbook sweep`.
pub(crate) async fn sweep(config: &Config, args: SweepArgs) -> Result<i32> {
    let engine = engine(config).await?;
    let sweep = engine.sweep().await?;
    if args.json {
        print_json(&serde_json::to_value(&sweep)?)?;
        return Ok(0);
    }
    outln!(
        "{} run(s) orphaned, {} approval(s) timed out",
        sweep.orphaned.len(),
        sweep.approvals_timed_out.len()
    );
    for run in &sweep.orphaned {
        outln!(
            "orphaned   {}  {}  resume it with `runward runbook resume {}`",
            run.id,
            run.runbook,
            run.id
        );
    }
    for approval in &sweep.approvals_timed_out {
        outln!(
            "timed out  {}  run {}  expired {}",
            approval.id,
            approval.run_id,
            approval.expires_at
        );
    }
    Ok(0)
}

/// The runbook to continue run `id` with: `file` when given, else the file it started from.
async fn runbook_of(engine: &Engine, id: &RunId, file: Option<&Path>) -> runward::Result<Runbook> {
    let path: PathBuf =
        match file {
            Some(file) => file.to_path_buf(),
            None => {
                // Fails with NotFound for an unknown run.
                engine.store().get_run(id).await?;
                engine.source_of(id).await?.ok_or_else(|| {
                Error::new(ErrorKind::InvalidInput, format!(
                    "the runbook file of run {id} is not recorded (it never started, or its \
                     runbook was built in code): pass it with --file"
                ))
            })?
            }
        };
    Runbook::load(&path)
}

/// Drives `work` while printing the events of this engine as they arrive.
async fn with_progress<T>(
    events: &mut broadcast::Receiver<Event>,
    run: &RunId,
    work: impl Future<Output = T>,
) -> T {
    tokio::pin!(work);
    let result = loop {
        tokio::select! {
            result = &mut work => break result,
            event = events.recv() => match event {
                Ok(event) => progress(&event, run),
                Err(RecvError::Lagged(n)) => errln!("({n} event(s) not shown: see `runward runbook show {run}`)"),
                Err(RecvError::Closed) => break work.await,
            },
        }
    };
    loop {
        match events.try_recv() {
            Ok(event) => progress(&event, run),
            Err(TryRecvError::Lagged(n)) => {
                errln!("({n} event(s) not shown: see `runward runbook show {run}`)");
            }
            Err(_) => break,
        }
    }
    result
}

fn progress(event: &Event, run: &RunId) {
    let line = describe_event(event);
    if &event.run_id == run {
        errln!("{line}");
    } else {
        errln!("[run {}] {line}", event.run_id);
    }
}

/// One line for an event, as an operator reads it.
pub(crate) fn describe_event(event: &Event) -> String {
    let d = &event.data;
    let s = |key: &str| -> String {
        match &d[key] {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        }
    };
    let suffix = |key: &str, sep: &str| -> String {
        let v = s(key);
        if v.is_empty() {
            String::new()
        } else {
            format!("{sep}{v}")
        }
    };
    match event.kind.as_str() {
        "run_started" => format!("run started: runbook `{}`", s("runbook")),
        "run_resumed" => {
            let mut line = format!("run resumed from {}", s("from"));
            line += &suffix("by", " by ");
            line += &suffix("decision", ", decision: ");
            line += &suffix("reason", ": ");
            if !d["definition_overridden"].is_null() {
                line += " (changed definition accepted)";
            }
            line
        }
        "step_started" => format!("step {} attempt {} started", s("step"), s("attempt")),
        "step_succeeded" => format!("step {} succeeded{}", s("step"), suffix("summary", ": ")),
        "step_failed" => format!(
            "step {} attempt {} failed{}",
            s("step"),
            s("attempt"),
            suffix("error", ": ")
        ),
        "step_retry_scheduled" => format!(
            "step {} retries in {} ms (attempt {})",
            s("step"),
            s("delay_ms"),
            s("next_attempt")
        ),
        "step_skipped" => format!("step {} skipped", s("step")),
        "step_outcome_unknown" => format!(
            "step {} attempt {}: outcome unknown (its process stopped mid-step)",
            s("step"),
            s("attempt")
        ),
        "approval_requested" => format!(
            "waiting for approval {} (quorum {})",
            s("approval"),
            s("quorum")
        ),
        "approval_given" => format!(
            "approval {} given by {}{} (now {})",
            s("approval"),
            s("who"),
            suffix("comment", ": "),
            s("status")
        ),
        "approval_denied" => format!(
            "approval {} denied by {}{}",
            s("approval"),
            s("who"),
            suffix("comment", ": ")
        ),
        "approval_used" => format!("approval {} used", s("approval")),
        "approval_timed_out" => format!("approval {} timed out", s("approval")),
        "run_waiting" => format!("run waiting ({}){}", s("status"), suffix("reason", ": ")),
        "run_failed" => format!("run failed{}", suffix("error", ": ")),
        "run_refused" => format!("run refused{}", suffix("error", ": ")),
        "run_succeeded" => "run succeeded".to_owned(),
        "run_orphaned" => "run orphaned: its driver stopped renewing the lease".to_owned(),
        "compensation_started" => format!("compensating{}", suffix("reason", ": ")),
        "step_compensating" => format!("undoing step {}", s("step")),
        "run_compensated" => "run compensated".to_owned(),
        "run_compensation_failed" => {
            format!("run compensation failed{}", suffix("error", ": "))
        }
        "cancel_requested" => format!("cancel requested by {}{}", s("who"), suffix("reason", ": ")),
        "cancel_started" => format!("running the cancel path ({} step(s))", s("steps")),
        "run_cancelled" => "run cancelled".to_owned(),
        "drain.sample" => format!(
            "step {}: in flight {} (sample {})",
            s("step"),
            s("level"),
            s("n")
        ),
        "gate.sample" => format!(
            "step {}: sample {} {}{} ({} in a row)",
            s("step"),
            s("n"),
            if d["ok"] == Value::Bool(true) {
                "passed"
            } else {
                "not yet"
            },
            suffix("detail", ": "),
            s("streak")
        ),
        "flag_set" | "flag_cleared" => {
            format!("{} `{}`", event.kind.replace('_', " "), s("flag"))
        }
        other => {
            let step = suffix("step", ": step ");
            format!("{}{step}", other.replace('_', " "))
        }
    }
}

/// Prints the outcome and picks the exit code from where the run stopped.
fn finish(outcome: runward::Result<RunOutcome>, json: bool) -> Result<i32> {
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(e) => return refused(e, json),
    };
    if json {
        print_json(&serde_json::to_value(&outcome)?)?;
    } else {
        print_run(&outcome.run, outcome.approval.as_ref())?;
    }
    Ok(exit_for(outcome.run.status))
}

fn print_run(
    run: &runward::store::Run,
    approval: Option<&runward::store::Approval>,
) -> std::io::Result<()> {
    outln!("run {} ({}): {}", run.id, run.runbook, run.status);
    if let Some(error) = &run.error {
        let label = if run.status.is_terminal() {
            "error"
        } else {
            "reason"
        };
        outln!("{label}: {error}");
    }
    if let Some(approval) = approval {
        outln!(
            "waiting for approval {}: {} of {} given{}, expires {}",
            approval.id,
            approval.approvals.len(),
            approval.quorum,
            if approval.approvers.is_empty() {
                String::new()
            } else {
                format!(", approvers: {}", approval.approvers.join(", "))
            },
            approval.expires_at
        );
        outln!(
            "decide with: runward runbook approve {} --as WHO  (or deny)",
            run.id
        );
    } else if run.status == RunStatus::WaitingOperator {
        outln!(
            "decide with: runward runbook retry {id}  or  runward runbook skip {id} --reason ...",
            id = run.id
        );
    }
    Ok(())
}

/// 0 succeeded (or still in progress), 1 ended badly, 4 waits for a decision.
pub(crate) fn exit_for(status: RunStatus) -> i32 {
    match status {
        RunStatus::Succeeded | RunStatus::Queued | RunStatus::Running | RunStatus::Compensating => {
            0
        }
        RunStatus::WaitingApproval | RunStatus::WaitingOperator => EXIT_WAITING,
        RunStatus::Failed
        | RunStatus::Cancelled
        | RunStatus::Compensated
        | RunStatus::CompensationFailed
        | RunStatus::Orphaned => EXIT_FAILED,
    }
}

/// Errors that refuse a request without changing anything.
fn is_refusal(err: &Error) -> bool {
    matches!(
        err.kind(),
        ErrorKind::InvalidInput
            | ErrorKind::Config
            | ErrorKind::NotFound
            | ErrorKind::Conflict
            | ErrorKind::PolicyDenied
    )
}

/// Reports bad input (exit 2) and refusals such as conflicts and policy denials (exit 1);
/// other errors end the command.
fn refused(err: Error, json: bool) -> Result<i32> {
    let code = match err.kind() {
        ErrorKind::InvalidInput | ErrorKind::Config | ErrorKind::NotFound => EXIT_BAD_INPUT,
        ErrorKind::Conflict | ErrorKind::PolicyDenied => EXIT_FAILED,
        _ => return Err(err.into()),
    };
    refuse(err, json, code)
}

/// Reports a refusal on standard error (and as JSON with `--json`) and returns `code`.
fn refuse(err: Error, json: bool, code: i32) -> Result<i32> {
    if json {
        print_json(&json!({
            "error": { "kind": err.kind().as_str(), "message": err.message() }
        }))?;
    }
    errln!("error: {err}");
    Ok(code)
}

fn print_json(value: &Value) -> Result<()> {
    outln!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
