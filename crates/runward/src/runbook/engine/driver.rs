//! Drives one leased run through its steps. Every store write here is fenced by the lease
//! epoch; a `LeaseLost` error ends the drive at once.

use super::backoff;
use super::lease::{CANCEL_REQUESTED, KeeperConfig, LeaseKeeper, Signals};
use super::{
    DEFAULT_APPROVAL_TTL, DEFAULT_FLAG_TTL, Decision, Engine, Resume, RunOutcome, resolve_params,
};
use crate::flags::LOCKDOWN;
use crate::health::Status;
use crate::runbook::exec::{
    self, Cancel, StepContext, StepError, StepEvents, StepOutput, gate::GateOutcome,
};
use crate::runbook::{
    FlagAction, OnFailure, OutcomeUnknownPolicy, ParamType, Runbook, StepDef, StepKind, Vars, plan,
};
use crate::secrets::{Redactor, SecretString};
use crate::store::{
    Approval, ApprovalStatus, AttemptStatus, NewApproval, Run, RunId, RunStatus, RunUpdate,
    StepAttempt, StepResult,
};
use crate::{Error, ErrorKind, Result};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How many `goto` jumps one drive may take before the run fails as looping.
const MAX_JUMPS: u32 = 100;

pub(super) async fn drive(
    engine: Engine,
    id: RunId,
    runbook: Runbook,
    resume: Resume,
    decision: Option<Decision>,
) -> Result<RunOutcome> {
    let store = engine.inner.store.clone();
    let run = store.get_run(&id).await?;
    if run.status.is_closed() {
        return Ok(RunOutcome {
            run,
            approval: None,
        });
    }
    if run.runbook != runbook.name {
        return Err(Error::invalid(format!(
            "run {id} is a run of runbook `{}`, not `{}`",
            run.runbook, runbook.name
        )));
    }
    let hash = runbook.definition_hash();
    // A definition accepted by an earlier override stays accepted for this run.
    // Read once per drive: the definition check here, the markers `go` looks for, and the
    // keeper's starting point all come from this one read.
    let events = store.list_events(&id, 0).await?;
    let accepted = hash == run.definition_hash
        || events.iter().any(|e| {
            e.kind == "run_resumed"
                && e.data["definition_overridden"].as_str() == Some(hash.as_str())
        });
    if !accepted && !resume.override_definition {
        return Err(Error::new(
            ErrorKind::Conflict,
            format!(
                "runbook `{}` changed since run {id} started (pinned definition {}, now {}): \
                 resume with the original file, or override explicitly (--override-definition)",
                runbook.name,
                short(&run.definition_hash),
                short(&hash)
            ),
        ));
    }
    let lease = store
        .acquire_lease(&id, &engine.inner.owner, engine.inner.lease_ttl)
        .await
        .map_err(|e| match e.kind() {
            ErrorKind::Conflict if !run.status.is_closed() => Error::new(
                ErrorKind::Conflict,
                format!(
                    "run {id} is being driven by {} (its lease is held): wait, or let it expire",
                    run.lease
                        .as_ref()
                        .map(|l| l.owner.as_str())
                        .unwrap_or("another process")
                ),
            ),
            _ => e,
        })?;
    let flag_ttls: Arc<std::sync::Mutex<BTreeMap<String, Duration>>> = Arc::default();
    let keeper = LeaseKeeper::start(
        store.clone(),
        id.clone(),
        KeeperConfig {
            after_seq: events.last().map_or(0, |e| e.seq),
            owner: engine.inner.owner.clone(),
            epoch: lease.epoch,
            ttl: engine.inner.lease_ttl,
            renew_every: engine.inner.renew_every,
            poll_every: engine.inner.poll_every,
            flag_ttls: flag_ttls.clone(),
        },
    );
    let mut driver = Driver {
        engine: engine.clone(),
        signals: keeper.signals.clone(),
        runbook: Arc::new(runbook),
        hash,
        epoch: lease.epoch,
        run,
        attempts: Vec::new(),
        vars: Vars::new(),
        redactor: Redactor::default(),
        secrets: BTreeMap::new(),
        plan_digest: String::new(),
        floors: BTreeMap::new(),
        flag_ttls,
        operator: (None, None),
    };
    let result = driver.go(resume, decision, events).await;
    keeper.stop().await;
    let run = match result {
        Ok(run) => run,
        Err(e) => {
            // A run left `running` by an error is released so it can be resumed at once;
            // `LeaseLost` means someone else owns it now and nothing may be written.
            if e.kind() != ErrorKind::LeaseLost {
                let _ = store.release_lease(&id, lease.epoch).await;
            }
            return Err(e);
        }
    };
    if !run.status.is_closed() {
        let _ = store.release_lease(&id, lease.epoch).await;
    }
    let approval = if run.status == RunStatus::WaitingApproval {
        engine.pending_approval(&id).await.ok()
    } else {
        None
    };
    let run = store.get_run(&id).await.unwrap_or(run);
    Ok(RunOutcome { run, approval })
}

fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}

struct Driver {
    engine: Engine,
    signals: Signals,
    runbook: Arc<Runbook>,
    hash: String,
    epoch: u64,
    run: Run,
    /// The run's attempts, kept in step with the store.
    attempts: Vec<StepAttempt>,
    vars: Vars,
    redactor: Redactor,
    secrets: BTreeMap<String, SecretString>,
    plan_digest: String,
    /// After a `goto`, attempts up to these numbers (by step index) belong to an earlier pass
    /// and do not count as done.
    floors: BTreeMap<usize, u32>,
    /// The TTL of each flag the run's steps set, by rendered name, for the keeper's renewals.
    flag_ttls: Arc<std::sync::Mutex<BTreeMap<String, Duration>>>,
    /// Who resumed the run and why, for the evidence of their decisions.
    operator: (Option<String>, Option<String>),
}

/// How one step ended.
enum StepEnd {
    Done,
    Failed(String),
    Wait(RunStatus, String),
    Cancelled,
}

/// What one execution of an effect returned.
enum Effect {
    Succeeded(StepOutput),
    Failed(StepError),
    /// Pause the run (a pending approval, a child run waiting).
    Wait(RunStatus, String),
    /// The gate timed out with `on_timeout = "ask"`.
    Ask(StepOutput),
}

impl Driver {
    async fn go(
        &mut self,
        resume: Resume,
        decision: Option<Decision>,
        events: Vec<crate::store::Event>,
    ) -> Result<Run> {
        let store = self.engine.inner.store.clone();
        let id = self.run.id.clone();
        self.operator = (resume.by.clone(), resume.reason.clone());
        self.prepare_values()?;
        {
            let mut ttls = self.flag_ttls.lock().unwrap_or_else(|e| e.into_inner());
            for step in &self.runbook.steps {
                if let StepKind::Flag(f) = &step.kind {
                    if f.action == FlagAction::Set {
                        if let Ok(name) = self.vars.render(&f.flag) {
                            ttls.insert(name, f.ttl.unwrap_or(DEFAULT_FLAG_TTL));
                        }
                    }
                }
            }
        }
        for attempt in store.mark_outcome_unknown(&id, self.epoch).await? {
            // An approval's attempt stays open while the run waits; that is not a crash.
            let waiting_approval = matches!(
                self.runbook
                    .steps
                    .get(attempt.step_index as usize)
                    .map(|s| &s.kind),
                Some(StepKind::Approval(_))
            );
            if waiting_approval {
                continue;
            }
            self.event(
                "step_outcome_unknown",
                json!({"step": attempt.step_id, "attempt": attempt.attempt, "idempotency_key": attempt.idempotency_key}),
            )
            .await?;
        }
        self.attempts = store.list_attempts(&id).await?;
        if events.iter().any(|e| e.kind == CANCEL_REQUESTED) {
            self.signals.cancel_requested.cancel();
        }
        for marker in ["failure_path_started", "step_goto"] {
            if let Some(event) = events.iter().rfind(|e| e.kind == marker) {
                let stale =
                    serde_json::from_value::<BTreeMap<String, u32>>(event.data["stale"].clone())
                        .unwrap_or_default();
                self.floors.extend(
                    stale
                        .into_iter()
                        .filter_map(|(k, v)| Some((k.parse().ok()?, v))),
                );
            }
        }
        let previous = self.run.status;
        if previous == RunStatus::Queued {
            if let Err(e) = self.engine.check_requirements(&self.runbook).await {
                self.event("run_refused", json!({"error": e.message()}))
                    .await?;
                return self
                    .finish(RunStatus::Failed, Some(e.message().to_owned()))
                    .await;
            }
            self.update(RunUpdate::status(RunStatus::Running).current_step(0))
                .await?;
            let plan = plan(&self.runbook, &self.given_params())?;
            self.event(
                "run_started",
                json!({
                    "runbook": self.runbook.name,
                    "definition_hash": self.hash,
                    "plan_digest": plan.digest,
                    "params": plan.params,
                    "started_by": self.run.started_by,
                    "source": self.runbook.path.as_ref().map(|p| {
                        std::path::absolute(p).unwrap_or_else(|_| p.clone()).display().to_string()
                    }),
                    "owner": self.engine.inner.owner,
                    "epoch": self.epoch,
                }),
            )
            .await?;
        } else {
            self.event(
                "run_resumed",
                json!({
                    "from": previous,
                    "by": resume.by,
                    "reason": resume.reason,
                    "decision": decision.as_ref().map(|d| match d { Decision::Retry => "retry", Decision::Skip => "skip" }),
                    "owner": self.engine.inner.owner,
                    "epoch": self.epoch,
                    "definition_overridden": (self.hash != self.run.definition_hash).then_some(&self.hash),
                }),
            )
            .await?;
            // A run orphaned during its compensation finishes the compensation.
            let compensating = matches!(
                previous,
                RunStatus::Compensating | RunStatus::CompensationFailed
            ) || events.iter().any(|e| e.kind == "compensation_started");
            if compensating {
                return self
                    .compensate("resuming an interrupted compensation", decision)
                    .await;
            }
            if self.signals.cancel_requested.is_cancelled() {
                return self.cancel_path().await;
            }
            // A run orphaned during its failure path finishes that path, then fails.
            let failure_base = self.runbook.steps.len() + self.runbook.on_cancel.len();
            // Decided by position: the process may have died without a sweep marking it orphaned.
            if self.run.current_step as usize >= failure_base
                && !self.runbook.failure_path.is_empty()
            {
                let started = events.iter().rfind(|e| e.kind == "failure_path_started");
                let error = started
                    .and_then(|e| e.data["error"].as_str())
                    .unwrap_or("the run failed")
                    .to_owned();
                let index = started
                    .and_then(|e| e.data["step_index"].as_u64())
                    .unwrap_or(0) as usize;
                self.update(RunUpdate::status(RunStatus::Running)).await?;
                return self.fail(index, error).await;
            }
            self.update(RunUpdate::status(RunStatus::Running).clear_error())
                .await?;
        }
        self.forward(decision).await
    }

    /// Parameters in the form `plan` takes: stored values, secrets as variable names.
    fn given_params(&self) -> BTreeMap<String, Value> {
        match &self.run.params {
            Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            _ => BTreeMap::new(),
        }
    }

    /// Template values, secrets from the environment, and the plan digest approvals bind to.
    fn prepare_values(&mut self) -> Result<()> {
        let given = self.given_params();
        // Revalidates the stored parameters against the (possibly overridden) definition.
        let stored = resolve_params(&self.runbook, &given)?;
        let plan = plan(&self.runbook, &stored)?;
        self.plan_digest = plan.digest;
        let mut vars = Vars::new();
        for spec in &self.runbook.params {
            let value = stored.get(&spec.name).cloned().unwrap_or(Value::Null);
            if spec.ty == ParamType::Secret {
                let env = value.as_str().unwrap_or_default().to_owned();
                let secret = std::env::var(&env).ok().filter(|v| !v.is_empty()).ok_or_else(|| {
                    Error::invalid(format!(
                        "secret parameter `{}` reads environment variable `{env}`, which is not set: set it in the environment of the process driving the run",
                        spec.name
                    ))
                })?;
                vars.set(format!("params.{}", spec.name), secret.clone());
                self.secrets.insert(env, SecretString::new(secret));
            } else {
                let text = match value {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                vars.set(format!("params.{}", spec.name), text);
            }
        }
        vars.set("run.id", self.run.id.to_string())
            .set("run.runbook", self.runbook.name.clone())
            .set(
                "run.started_by",
                self.run.started_by.clone().unwrap_or_default(),
            );
        self.redactor = Redactor::new(self.secrets.values());
        self.vars = vars;
        Ok(())
    }

    async fn forward(&mut self, mut decision: Option<Decision>) -> Result<Run> {
        let steps = self.runbook.steps.clone();
        let mut index = self.run.current_step as usize;
        let mut jumps = 0u32;
        while index < steps.len() {
            if self.signals.cancel_requested.is_cancelled() {
                return self.cancel_path().await;
            }
            let step = &steps[index];
            let end = self.step(index, step, decision.take(), true).await?;
            match end {
                StepEnd::Done => index += 1,
                StepEnd::Cancelled => return self.cancel_path().await,
                StepEnd::Wait(status, why) => return self.pause(index, status, why).await,
                StepEnd::Failed(error) => {
                    let policy = match &step.policy.on_failure {
                        OnFailure::Abort => &self.runbook.on_failure,
                        other => other,
                    };
                    match policy {
                        OnFailure::Continue => {
                            self.event(
                                "step_failure_ignored",
                                json!({"step": step.id, "error": error}),
                            )
                            .await?;
                            index += 1;
                        }
                        OnFailure::Goto(target) => {
                            jumps += 1;
                            if jumps > MAX_JUMPS {
                                return self
                                    .fail(index, format!(
                                        "step `{}` jumped to `{target}` {MAX_JUMPS} times: stopping a loop; last error: {error}",
                                        step.id
                                    ))
                                    .await;
                            }
                            let to =
                                steps.iter().position(|s| &s.id == target).ok_or_else(|| {
                                    Error::invalid(format!("no step `{target}` to jump to"))
                                })?;
                            for j in to..steps.len() {
                                if let Some(last) = self.latest(j) {
                                    let floor = last.attempt;
                                    self.floors.insert(j, floor);
                                }
                            }
                            let stale: BTreeMap<String, u32> = self
                                .floors
                                .iter()
                                .map(|(k, v)| (k.to_string(), *v))
                                .collect();
                            self.event(
                                "step_goto",
                                json!({"from": step.id, "to": target, "error": error, "stale": stale}),
                            )
                            .await?;
                            self.update(RunUpdate::default().current_step(to as u32))
                                .await?;
                            index = to;
                        }
                        OnFailure::Compensate => {
                            self.update(
                                RunUpdate::default()
                                    .error(format!("step `{}` failed: {error}", step.id)),
                            )
                            .await?;
                            return self
                                .compensate(&format!("step `{}` failed: {error}", step.id), None)
                                .await;
                        }
                        OnFailure::Abort => {
                            return self
                                .fail(index, format!("step `{}` failed: {error}", step.id))
                                .await;
                        }
                    }
                }
            }
        }
        self.event("run_succeeded", json!({"steps": steps.len()}))
            .await?;
        self.finish(RunStatus::Succeeded, None).await
    }

    fn latest(&self, index: usize) -> Option<&StepAttempt> {
        self.attempts
            .iter()
            .filter(|a| a.step_index as usize == index)
            .max_by_key(|a| a.attempt)
    }

    fn remember(&mut self, attempt: StepAttempt) {
        match self
            .attempts
            .iter_mut()
            .find(|a| a.step_index == attempt.step_index && a.attempt == attempt.attempt)
        {
            Some(slot) => *slot = attempt,
            None => self.attempts.push(attempt),
        }
    }

    /// Runs step `index` to an end: resolves a previous attempt, then attempts with retries.
    async fn step(
        &mut self,
        index: usize,
        step: &StepDef,
        decision: Option<Decision>,
        cancellable: bool,
    ) -> Result<StepEnd> {
        let mut attempt = 1;
        if let Some(last) = self.latest(index).cloned() {
            attempt = last.attempt + 1;
            let stale = self.floors.get(&index).is_some_and(|f| last.attempt <= *f);
            if !stale {
                match last.status {
                    AttemptStatus::Succeeded
                    | AttemptStatus::Skipped
                    | AttemptStatus::Compensating
                    | AttemptStatus::Compensated
                    | AttemptStatus::CompensationFailed => return Ok(StepEnd::Done),
                    AttemptStatus::Intent | AttemptStatus::OutcomeUnknown
                        if matches!(step.kind, StepKind::Approval(_)) =>
                    {
                        // An approval's attempt stays open while the run waits: only approve
                        // or deny decide it, never a skip or an outcome_unknown policy.
                        if decision == Some(Decision::Skip) {
                            return Err(Error::new(
                                ErrorKind::PolicyDenied,
                                format!(
                                    "step `{}` is an approval: it is decided by approve or deny, not skipped",
                                    step.id
                                ),
                            ));
                        }
                        attempt = last.attempt;
                    }
                    AttemptStatus::Intent | AttemptStatus::OutcomeUnknown => match decision {
                        Some(Decision::Skip) => {
                            return self.skip_attempt(index, step, last.attempt).await;
                        }
                        Some(Decision::Retry) => attempt = last.attempt,
                        None => match &step.policy.outcome_unknown {
                            OutcomeUnknownPolicy::Rerun => attempt = last.attempt,
                            OutcomeUnknownPolicy::ProbeFirst(check) => {
                                if self.probe_passes(check).await? {
                                    let result = StepResult::succeeded(json!({
                                        "resolved_by": "probe_first",
                                        "check": check,
                                    }));
                                    let stored = self
                                        .store()
                                        .record_result(
                                            &self.run.id,
                                            self.epoch,
                                            index as u32,
                                            last.attempt,
                                            result,
                                        )
                                        .await?;
                                    self.remember(stored);
                                    self.event(
                                            "step_resolved",
                                            json!({"step": step.id, "attempt": last.attempt, "by": "probe_first", "check": check}),
                                        )
                                        .await?;
                                    return Ok(StepEnd::Done);
                                }
                                attempt = last.attempt;
                            }
                            OutcomeUnknownPolicy::Ask => {
                                return Ok(StepEnd::Wait(
                                    RunStatus::WaitingOperator,
                                    format!(
                                        "step `{}` attempt {}: the process died during its effect, so its outcome is unknown; retry or skip it",
                                        step.id, last.attempt
                                    ),
                                ));
                            }
                        },
                    },
                    AttemptStatus::Failed => {
                        if decision == Some(Decision::Skip) {
                            return self.skip_attempt(index, step, attempt).await;
                        }
                    }
                }
            }
        }
        let last_allowed = attempt + step.policy.retries;
        loop {
            let (stored, event) = self
                .store()
                .record_intent_logged(
                    &self.run.id,
                    self.epoch,
                    index as u32,
                    &step.id,
                    attempt,
                    "step_started",
                    json!({"step": step.id, "index": index, "kind": step.kind.name(), "attempt": attempt}),
                )
                .await?;
            let key = stored.idempotency_key.clone();
            self.remember(stored);
            self.broadcast(event);
            let effect = self
                .execute(step, index, attempt, &key, cancellable)
                .await?;
            match effect {
                Effect::Succeeded(output) => {
                    self.record(
                        index,
                        step,
                        attempt,
                        AttemptStatus::Succeeded,
                        &output,
                        None,
                    )
                    .await?;
                    return Ok(StepEnd::Done);
                }
                Effect::Wait(status, why) => return Ok(StepEnd::Wait(status, why)),
                Effect::Ask(output) => {
                    let why = format!("step `{}`: {}; retry or skip it", step.id, output.summary);
                    self.record(
                        index,
                        step,
                        attempt,
                        AttemptStatus::Failed,
                        &output,
                        Some(&why),
                    )
                    .await?;
                    return Ok(StepEnd::Wait(RunStatus::WaitingOperator, why));
                }
                Effect::Failed(StepError::Cancelled) => {
                    self.lease_check()?;
                    let output = StepOutput::default();
                    self.record(
                        index,
                        step,
                        attempt,
                        AttemptStatus::Failed,
                        &output,
                        Some("cancelled by an operator"),
                    )
                    .await?;
                    return Ok(StepEnd::Cancelled);
                }
                Effect::Failed(err) => {
                    self.lease_check()?;
                    let message = self.redactor.redact(&error_text(&err));
                    let output = err.output().cloned().unwrap_or_default();
                    self.record(
                        index,
                        step,
                        attempt,
                        AttemptStatus::Failed,
                        &output,
                        Some(&message),
                    )
                    .await?;
                    if err.is_retryable() && attempt < last_allowed {
                        let delay = backoff::delay(
                            step.policy.backoff,
                            step.policy.backoff_max,
                            attempt + 1 - (last_allowed - step.policy.retries),
                        );
                        self.event(
                            "step_retry_scheduled",
                            json!({"step": step.id, "next_attempt": attempt + 1, "delay_ms": delay.as_millis() as u64}),
                        )
                        .await?;
                        let cancel = self.attempt_cancel(cancellable);
                        tokio::select! {
                            // Firing it ends its forwarding task.
                            _ = tokio::time::sleep(delay) => cancel.cancel(),
                            _ = cancel.cancelled() => {
                                self.lease_check()?;
                                return Ok(StepEnd::Cancelled);
                            }
                        }
                        attempt += 1;
                        continue;
                    }
                    return Ok(StepEnd::Failed(message));
                }
            }
        }
    }

    async fn skip_attempt(
        &mut self,
        index: usize,
        step: &StepDef,
        attempt: u32,
    ) -> Result<StepEnd> {
        let store = self.store();
        if self.latest(index).is_none_or(|a| a.attempt != attempt) {
            let stored = store
                .record_intent(&self.run.id, self.epoch, index as u32, &step.id, attempt)
                .await?;
            self.remember(stored);
        }
        let stored = store
            .record_result(
                &self.run.id,
                self.epoch,
                index as u32,
                attempt,
                StepResult::skipped(format!(
                    "skipped by {}: {}",
                    self.operator.0.as_deref().unwrap_or("an operator"),
                    self.operator.1.as_deref().unwrap_or("no reason given")
                )),
            )
            .await?;
        self.remember(stored);
        self.event(
            "step_skipped",
            json!({"step": step.id, "attempt": attempt, "who": self.operator.0, "reason": self.operator.1}),
        )
        .await?;
        Ok(StepEnd::Done)
    }

    /// Writes an attempt's result and its event.
    async fn record(
        &mut self,
        index: usize,
        step: &StepDef,
        attempt: u32,
        status: AttemptStatus,
        output: &StepOutput,
        error: Option<&str>,
    ) -> Result<()> {
        let output_json = serde_json::to_value(output).unwrap_or(Value::Null);
        let result = StepResult {
            status,
            output: Some(output_json),
            error: error.map(str::to_owned),
        };
        let kind = if status == AttemptStatus::Succeeded {
            "step_succeeded"
        } else {
            "step_failed"
        };
        let mut data = json!({
            "step": step.id,
            "attempt": attempt,
            "summary": output.summary,
            "exit_code": output.exit_code,
        });
        if !output.stdout.bytes.is_empty() || output.exit_code.is_some() {
            data["stdout_sha256"] = json!(output.stdout.sha256);
            data["stderr_sha256"] = json!(output.stderr.sha256);
            data["truncated"] = json!(output.stdout.truncated || output.stderr.truncated);
        }
        if let Some(error) = error {
            data["error"] = json!(error);
        }
        let (stored, event) = self
            .store()
            .record_result_logged(
                &self.run.id,
                self.epoch,
                index as u32,
                attempt,
                result,
                kind,
                exec::redact_json(&self.redactor, data),
            )
            .await?;
        self.remember(stored);
        self.broadcast(event);
        Ok(())
    }

    fn store(&self) -> Arc<dyn crate::store::Store> {
        self.engine.inner.store.clone()
    }

    fn lease_check(&self) -> Result<()> {
        if self.signals.lost.is_cancelled() {
            return Err(Error::new(
                ErrorKind::LeaseLost,
                format!(
                    "lost the lease on run {} (epoch {}): another process owns it now",
                    self.run.id, self.epoch
                ),
            ));
        }
        Ok(())
    }

    /// A cancel signal for one attempt: fired when the lease is lost and, when
    /// `cancellable`, on an operator's cancel request.
    fn attempt_cancel(&self, cancellable: bool) -> Cancel {
        let cancel = Cancel::new();
        let (lost, requested, out) = (
            self.signals.lost.clone(),
            self.signals.cancel_requested.clone(),
            cancel.clone(),
        );
        tokio::spawn(async move {
            tokio::select! {
                _ = lost.cancelled() => out.cancel(),
                _ = requested.cancelled(), if cancellable => out.cancel(),
                _ = out.cancelled() => {}
            }
        });
        cancel
    }

    fn context(&self, step: &StepDef, attempt: u32, key: &str, cancel: Cancel) -> StepContext {
        let mut ctx = StepContext::new(self.run.id.to_string(), step.id.clone(), attempt);
        // The run's redactor is built once per drive, not per attempt.
        ctx.redactor = self.redactor.clone();
        ctx.secret_env = self.secrets.clone();
        ctx.idempotency_key = key.to_owned();
        if let Some(timeout) = step.policy.timeout {
            ctx.deadline = Some(Instant::now() + timeout);
        }
        let mut vars = self.vars.clone();
        vars.set("run.idempotency_key", key.to_owned());
        ctx.vars = vars;
        ctx.outbound = self.engine.inner.outbound.clone();
        ctx.base_dir = self.base_dir();
        ctx.registry = self.engine.inner.registry.clone();
        ctx.cancel = cancel;
        ctx
    }

    fn base_dir(&self) -> PathBuf {
        self.runbook
            .path
            .as_ref()
            .and_then(|p| p.parent())
            .map(|p| {
                if p.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    p.to_path_buf()
                }
            })
            .unwrap_or_else(|| std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")))
    }

    /// Runs one effect, streaming its samples into the evidence as they come.
    async fn execute(
        &mut self,
        step: &StepDef,
        index: usize,
        attempt: u32,
        key: &str,
        cancellable: bool,
    ) -> Result<Effect> {
        let cancel = self.attempt_cancel(cancellable);
        let (tx, rx) = mpsc::unbounded_channel();
        let writer = tokio::spawn(write_events(
            self.engine.clone(),
            self.run.id.clone(),
            self.epoch,
            step.id.clone(),
            rx,
        ));
        let mut ctx = self.context(step, attempt, key, cancel.clone());
        ctx.events = Arc::new(ChannelEvents(tx));
        let effect = self.effect(step, index, attempt, &ctx).await;
        drop(ctx);
        cancel.cancel(); // ends the forwarding task
        writer
            .await
            .map_err(|e| Error::new(ErrorKind::Internal, format!("event writer: {e}")))??;
        effect
    }

    async fn effect(
        &mut self,
        step: &StepDef,
        index: usize,
        attempt: u32,
        ctx: &StepContext,
    ) -> Result<Effect> {
        let done = |r: std::result::Result<StepOutput, StepError>| match r {
            Ok(output) => Effect::Succeeded(output),
            Err(e) => Effect::Failed(e),
        };
        Ok(match &step.kind {
            StepKind::Command(c) => done(exec::command::run(c, ctx).await),
            StepKind::Http(h) => done(exec::http::run(h, ctx).await),
            StepKind::Drain(d) => done(exec::drain::run(d, ctx).await),
            StepKind::Sleep(s) => done(exec::sleep::run(s, ctx).await),
            StepKind::Gate(g) => match exec::gate::run(g, ctx).await {
                Ok(result) => match result.outcome {
                    GateOutcome::Passed | GateOutcome::Continue => Effect::Succeeded(result.output),
                    GateOutcome::Fail => Effect::Failed(StepError::Failed {
                        message: result.output.summary.clone(),
                        timed_out: true,
                        output: Box::new(result.output),
                    }),
                    GateOutcome::Ask => Effect::Ask(result.output),
                },
                Err(e) => Effect::Failed(e),
            },
            StepKind::Flag(f) => {
                let name = match ctx.render("flag", &f.flag) {
                    Ok(name) => name,
                    Err(e) => return Ok(Effect::Failed(e)),
                };
                self.flag_effect(&name, f.action, f.ttl, f.reason.as_deref())
                    .await?
            }
            StepKind::Approval(a) => self.approval_effect(index, attempt, a, ctx).await?,
            StepKind::Runbook(s) => self.child_effect(s, ctx).await?,
            StepKind::Custom(c) => {
                let Some(custom) = self.engine.inner.steps.get(&c.name).cloned() else {
                    let known: Vec<&str> = self.engine.inner.steps.names().collect();
                    return Ok(Effect::Failed(StepError::invalid(format!(
                        "no custom step `{}` is registered; register it on the engine (registered: {})",
                        c.name,
                        if known.is_empty() {
                            "none".to_owned()
                        } else {
                            known.join(", ")
                        }
                    ))));
                };
                let params = match render_json(ctx, toml_to_json(&c.params)) {
                    Ok(p) => p,
                    Err(e) => return Ok(Effect::Failed(e)),
                };
                let run = custom.run(ctx, &params);
                let result = match ctx.deadline {
                    Some(deadline) => match tokio::time::timeout_at(deadline.into(), run).await {
                        Ok(r) => r,
                        Err(_) => Err(StepError::Failed {
                            message: format!("custom step `{}` passed its timeout", c.name),
                            timed_out: true,
                            output: Box::default(),
                        }),
                    },
                    None => run.await,
                };
                // Custom code may put anything in its output: redact it all, failed or not.
                done(match result {
                    Ok(output) => Ok(redact_output(&self.redactor, output)),
                    Err(StepError::Failed {
                        message,
                        timed_out,
                        output,
                    }) => Err(StepError::Failed {
                        message: self.redactor.redact(&message),
                        timed_out,
                        output: Box::new(redact_output(&self.redactor, *output)),
                    }),
                    Err(other) => Err(other),
                })
            }
        })
    }

    async fn flag_effect(
        &mut self,
        name: &str,
        action: FlagAction,
        ttl: Option<Duration>,
        reason: Option<&str>,
    ) -> Result<Effect> {
        if name == LOCKDOWN {
            return Ok(Effect::Failed(StepError::invalid(
                "the `lockdown` flag is not set or cleared by a flag step: lockdown comes with an \
                 unlock code (`runward lockdown`, `runward unlock`); require it absent with \
                 `requires_flags_absent` instead",
            )));
        }
        let store = self.store();
        let owner = self.run.id.to_string();
        let outcome = match action {
            FlagAction::Set => store
                .set_flag(name, &owner, ttl.unwrap_or(DEFAULT_FLAG_TTL), reason)
                .await
                .map(|flag| {
                    (
                        "flag_set",
                        json!({"flag": name, "expires_at": flag.expires_at, "reason": reason}),
                    )
                }),
            FlagAction::Clear => store
                .clear_flag(name, Some(&owner))
                .await
                .map(|was_set| ("flag_cleared", json!({"flag": name, "was_set": was_set}))),
        };
        match outcome {
            Ok((kind, data)) => {
                self.event(kind, data.clone()).await?;
                Ok(Effect::Succeeded(StepOutput {
                    summary: format!("{kind} `{name}`").replace('_', " "),
                    data,
                    ..StepOutput::default()
                }))
            }
            Err(e) if e.kind() == ErrorKind::Conflict => Ok(Effect::Failed(StepError::failed(
                e.message().to_owned(),
                StepOutput::default(),
            ))),
            Err(e) => Err(e),
        }
    }

    async fn approval_effect(
        &mut self,
        index: usize,
        attempt: u32,
        step: &crate::runbook::ApprovalStep,
        ctx: &StepContext,
    ) -> Result<Effect> {
        let store = self.store();
        let existing = store
            .list_approvals(&self.run.id)
            .await?
            .into_iter()
            .find(|a| a.step_index == index as u32 && a.attempt == attempt);
        let approval: Approval = match existing {
            Some(a) => a,
            None => {
                let message = match step.message.as_deref().map(|m| ctx.render("message", m)) {
                    Some(Ok(m)) => Some(m),
                    Some(Err(e)) => return Ok(Effect::Failed(e)),
                    None => None,
                };
                let approval = store
                    .create_approval(NewApproval {
                        run_id: self.run.id.clone(),
                        step_index: index as u32,
                        attempt,
                        plan_digest: self.plan_digest.clone(),
                        quorum: step.quorum.max(1),
                        approvers: step.approvers.clone(),
                        exclude_starter: step.forbid_starter,
                        ttl: step.expires.unwrap_or(DEFAULT_APPROVAL_TTL),
                    })
                    .await?;
                self.event(
                    "approval_requested",
                    json!({
                        "approval": approval.id,
                        "step": ctx.step_id,
                        "quorum": approval.quorum,
                        "approvers": approval.approvers,
                        "forbid_starter": approval.exclude_starter,
                        "expires_at": approval.expires_at,
                        "plan_digest": approval.plan_digest,
                        "message": message,
                    }),
                )
                .await?;
                approval
            }
        };
        let refused = |message: String| {
            Effect::Failed(StepError::Prepare(Error::new(
                ErrorKind::PolicyDenied,
                message,
            )))
        };
        Ok(match approval.status {
            ApprovalStatus::Pending => Effect::Wait(
                RunStatus::WaitingApproval,
                format!(
                    "step `{}` waits for {} approval(s) (request {}, expires {})",
                    ctx.step_id, approval.quorum, approval.id, approval.expires_at
                ),
            ),
            ApprovalStatus::Approved | ApprovalStatus::Consumed => {
                let used = if approval.status == ApprovalStatus::Approved {
                    match store
                        .consume_approval(&approval.id, self.epoch, &self.plan_digest)
                        .await
                    {
                        Ok(a) => a,
                        Err(e) if e.kind() == ErrorKind::Conflict => {
                            return Ok(refused(format!(
                                "approval {} cannot be used: {}",
                                approval.id,
                                e.message()
                            )));
                        }
                        Err(e) => return Err(e),
                    }
                } else {
                    approval
                };
                let who: Vec<&str> = used.approvals.iter().map(|v| v.who.as_str()).collect();
                self.event(
                    "approval_used",
                    json!({"approval": used.id, "approved_by": who}),
                )
                .await?;
                Effect::Succeeded(StepOutput {
                    summary: format!("approved by {}", who.join(", ")),
                    data: json!({"approval": used.id, "approved_by": who}),
                    ..StepOutput::default()
                })
            }
            ApprovalStatus::Denied => {
                let denial = approval.denial.as_ref();
                refused(format!(
                    "approval {} was denied by {}{}",
                    approval.id,
                    denial.map(|d| d.who.as_str()).unwrap_or("someone"),
                    denial
                        .and_then(|d| d.comment.as_deref())
                        .map(|c| format!(": {c}"))
                        .unwrap_or_default()
                ))
            }
            ApprovalStatus::TimedOut => refused(format!(
                "approval {} timed out at {} before it was decided",
                approval.id, approval.expires_at
            )),
        })
    }

    async fn child_effect(
        &mut self,
        step: &crate::runbook::SubRunbookStep,
        ctx: &StepContext,
    ) -> Result<Effect> {
        let path = match ctx.render("path", &step.path) {
            Ok(p) => self.base_dir().join(p),
            Err(e) => return Ok(Effect::Failed(e)),
        };
        let child = match Runbook::load(&path) {
            Ok(rb) => rb,
            Err(e) => return Ok(Effect::Failed(StepError::Prepare(e))),
        };
        let mut params = BTreeMap::new();
        for (name, template) in &step.params {
            match ctx.render(name, template) {
                Ok(v) if ctx.redactor.contains_secret(&v) => {
                    return Ok(Effect::Failed(StepError::invalid(format!(
                        "parameter `{name}` of the sub-runbook would carry a secret value: declare it \
                         `type = \"secret\"` in the child and pass the environment variable's name"
                    ))));
                }
                Ok(v) => params.insert(name.clone(), Value::String(v)),
                Err(e) => return Ok(Effect::Failed(e)),
            };
        }
        let store = self.store();
        // A rerun after a crash finds the child this attempt created (by its idempotency key).
        let created = store
            .list_events(&self.run.id, 0)
            .await?
            .into_iter()
            .rfind(|e| {
                e.kind == "child_run_created"
                    && e.data["key"].as_str() == Some(ctx.idempotency_key.as_str())
            })
            .and_then(|e| e.data["child"].as_str().map(RunId::from));
        let existing = match created {
            Some(id) => Some(store.get_run(&id).await?),
            None => None,
        };
        let child_run = match existing {
            Some(run) => run,
            None => match self
                .engine
                .create_run(
                    &child,
                    &params,
                    self.run.started_by.as_deref(),
                    Some(self.run.id.clone()),
                )
                .await
            {
                Ok(run) => {
                    self.event(
                        "child_run_created",
                        json!({"step": ctx.step_id, "child": run.id, "runbook": child.name, "key": ctx.idempotency_key}),
                    )
                    .await?;
                    run
                }
                Err(e) if e.kind() != ErrorKind::Storage && e.kind() != ErrorKind::Busy => {
                    return Ok(Effect::Failed(StepError::Prepare(e)));
                }
                Err(e) => return Err(e),
            },
        };
        let outcome = Box::pin(super::driver::drive(
            self.engine.clone(),
            child_run.id.clone(),
            child,
            Resume::default(),
            None,
        ))
        .await?;
        let status = outcome.run.status;
        let data = json!({"child": child_run.id, "status": status});
        Ok(match status {
            RunStatus::Succeeded => Effect::Succeeded(StepOutput {
                summary: format!("child run {} succeeded", child_run.id),
                data,
                ..StepOutput::default()
            }),
            RunStatus::WaitingApproval | RunStatus::WaitingOperator => Effect::Wait(
                status,
                format!(
                    "child run {} is `{status}`: act on it, then resume this run",
                    child_run.id
                ),
            ),
            other => Effect::Failed(StepError::failed(
                format!(
                    "child run {} ended `{other}`{}",
                    child_run.id,
                    outcome
                        .run
                        .error
                        .map(|e| format!(": {e}"))
                        .unwrap_or_default()
                ),
                StepOutput {
                    data,
                    ..StepOutput::default()
                },
            )),
        })
    }

    async fn probe_passes(&self, check: &str) -> Result<bool> {
        let Some(registry) = &self.engine.inner.registry else {
            return Err(Error::invalid(format!(
                "the outcome_unknown policy `probe_first:{check}` needs the health registry: drive the run with one"
            )));
        };
        let state = registry.refresh(check).await?;
        let passed = matches!(state.status, Status::Pass | Status::Warn);
        self.event(
            "probe_first",
            json!({"check": check, "status": state.status, "passed": passed}),
        )
        .await?;
        Ok(passed)
    }

    /// Undoes every completed step in reverse, durably.
    async fn compensate(&mut self, reason: &str, mut decision: Option<Decision>) -> Result<Run> {
        if self.run.status != RunStatus::Compensating {
            self.update(RunUpdate::status(RunStatus::Compensating))
                .await?;
            self.event("compensation_started", json!({"reason": reason}))
                .await?;
        }
        let steps = self.runbook.steps.clone();
        for index in (0..steps.len()).rev() {
            let Some(last) = self.latest(index).cloned() else {
                continue;
            };
            if !matches!(
                last.status,
                AttemptStatus::Succeeded
                    | AttemptStatus::Compensating
                    | AttemptStatus::CompensationFailed
            ) {
                continue;
            }
            let step = &steps[index];
            let undo: Option<StepDef> = match (&step.compensate, &step.kind) {
                (Some(undo), _) => Some((**undo).clone()),
                (None, StepKind::Flag(f)) if f.action == FlagAction::Set => Some(StepDef {
                    id: format!("{}.undo", step.id),
                    title: None,
                    kind: StepKind::Flag(crate::runbook::FlagStep {
                        action: FlagAction::Clear,
                        flag: f.flag.clone(),
                        ttl: None,
                        reason: None,
                    }),
                    policy: step.policy.clone(),
                    compensate: None,
                }),
                _ => None,
            };
            let Some(undo) = undo else { continue };
            let key = format!("{}:undo", last.idempotency_key);
            if last.status == AttemptStatus::Compensating {
                // The process died during this undo: its outcome is unknown.
                let resolved = match (decision.take(), &undo.policy.outcome_unknown) {
                    (Some(Decision::Skip), _) => Some(format!(
                        "skipped by {}: {}",
                        self.operator.0.as_deref().unwrap_or("an operator"),
                        self.operator.1.as_deref().unwrap_or("no reason given")
                    )),
                    (Some(Decision::Retry), _) | (None, OutcomeUnknownPolicy::Rerun) => None,
                    (None, OutcomeUnknownPolicy::ProbeFirst(check)) => {
                        let check = check.clone();
                        self.probe_passes(&check)
                            .await?
                            .then(|| format!("probe_first: `{check}` passes"))
                    }
                    (None, OutcomeUnknownPolicy::Ask) => {
                        let why = format!(
                            "the undo of step `{}` was interrupted, so its outcome is unknown; retry or skip it",
                            step.id
                        );
                        self.event(
                            "run_waiting",
                            json!({"status": RunStatus::WaitingOperator, "reason": why}),
                        )
                        .await?;
                        return self
                            .update(RunUpdate::status(RunStatus::WaitingOperator).error(why))
                            .await;
                    }
                };
                if let Some(note) = resolved {
                    let stored = self
                        .store()
                        .record_compensation(
                            &self.run.id,
                            self.epoch,
                            index as u32,
                            last.attempt,
                            AttemptStatus::Compensated,
                            Some(note.clone()),
                        )
                        .await?;
                    self.remember(stored);
                    self.event(
                        "compensated",
                        json!({"step": step.id, "attempt": last.attempt, "resolved": note}),
                    )
                    .await?;
                    continue;
                }
            }
            let marked = self
                .store()
                .record_compensation(
                    &self.run.id,
                    self.epoch,
                    index as u32,
                    last.attempt,
                    AttemptStatus::Compensating,
                    None,
                )
                .await?;
            self.remember(marked);
            self.event(
                "step_compensating",
                json!({"step": step.id, "attempt": last.attempt, "undo": undo.kind.name()}),
            )
            .await?;
            let mut error = None;
            for try_no in 1..=undo.policy.retries + 1 {
                match self
                    .execute(&undo, index, last.attempt, &key, false)
                    .await?
                {
                    Effect::Succeeded(_) => {
                        error = None;
                        break;
                    }
                    Effect::Failed(e) => {
                        self.lease_check()?;
                        error = Some(self.redactor.redact(&error_text(&e)));
                        if !e.is_retryable() {
                            break;
                        }
                    }
                    Effect::Wait(_, why) => {
                        error = Some(format!("an undo cannot wait: {why}"));
                        break;
                    }
                    Effect::Ask(output) => {
                        error = Some(output.summary);
                        break;
                    }
                }
                if try_no <= undo.policy.retries {
                    tokio::time::sleep(backoff::delay(
                        undo.policy.backoff,
                        undo.policy.backoff_max,
                        try_no,
                    ))
                    .await;
                }
            }
            let status = if error.is_some() {
                AttemptStatus::CompensationFailed
            } else {
                AttemptStatus::Compensated
            };
            let stored = self
                .store()
                .record_compensation(
                    &self.run.id,
                    self.epoch,
                    index as u32,
                    last.attempt,
                    status,
                    error.clone(),
                )
                .await?;
            self.remember(stored);
            self.event(
                status.as_str(),
                json!({"step": step.id, "attempt": last.attempt, "error": error}),
            )
            .await?;
            if let Some(error) = error {
                let message = format!("undo of step `{}` failed: {error}", step.id);
                self.event("run_compensation_failed", json!({"error": message}))
                    .await?;
                return self
                    .finish(RunStatus::CompensationFailed, Some(message))
                    .await;
            }
        }
        self.event("run_compensated", json!({"reason": reason}))
            .await?;
        self.finish(RunStatus::Compensated, None).await
    }

    /// Runs the runbook's cancel path, then closes the run as `cancelled`.
    async fn cancel_path(&mut self) -> Result<Run> {
        self.event(
            "cancel_started",
            json!({"steps": self.runbook.on_cancel.len()}),
        )
        .await?;
        let base = self.runbook.steps.len();
        let on_cancel = self.runbook.on_cancel.clone();
        let mut errors = Vec::new();
        for (j, step) in on_cancel.iter().enumerate() {
            match self.step(base + j, step, None, false).await? {
                StepEnd::Done => {}
                StepEnd::Failed(e) => errors.push(format!("`{}`: {e}", step.id)),
                StepEnd::Wait(_, why) => errors.push(format!("`{}` cannot wait: {why}", step.id)),
                StepEnd::Cancelled => {}
            }
        }
        let error = (!errors.is_empty()).then(|| format!("cancel path: {}", errors.join("; ")));
        self.event("run_cancelled", json!({"errors": errors}))
            .await?;
        self.finish(RunStatus::Cancelled, error).await
    }

    async fn pause(&mut self, index: usize, status: RunStatus, why: String) -> Result<Run> {
        self.event("run_waiting", json!({"status": status, "reason": why}))
            .await?;
        self.update(
            RunUpdate::status(status)
                .current_step(index as u32)
                .error(why),
        )
        .await
    }

    /// Runs the failure path (if any), then ends the run `failed` at step `index`, where a
    /// resume retries it.
    async fn fail(&mut self, index: usize, error: String) -> Result<Run> {
        let path = self.runbook.failure_path.clone();
        if !path.is_empty() {
            let base = self.runbook.steps.len() + self.runbook.on_cancel.len();
            if (self.run.current_step as usize) < base {
                // A new failure: runs of the path for earlier failures do not count.
                for j in 0..path.len() {
                    if let Some(last) = self.latest(base + j) {
                        let floor = last.attempt;
                        self.floors.insert(base + j, floor);
                    }
                }
                let stale: BTreeMap<String, u32> = (base..base + path.len())
                    .filter_map(|i| Some((i.to_string(), *self.floors.get(&i)?)))
                    .collect();
                self.event(
                    "failure_path_started",
                    json!({"error": error, "step_index": index, "steps": path.len(), "stale": stale}),
                )
                .await?;
            }
            let mut errors = Vec::new();
            for (j, step) in path.iter().enumerate() {
                match self.step(base + j, step, None, false).await? {
                    StepEnd::Done | StepEnd::Cancelled => {}
                    StepEnd::Failed(e) => errors.push(format!("`{}`: {e}", step.id)),
                    StepEnd::Wait(_, why) => {
                        errors.push(format!("`{}` cannot wait: {why}", step.id))
                    }
                }
            }
            if !errors.is_empty() {
                self.event("failure_path_errors", json!({"errors": errors}))
                    .await?;
            }
        }
        self.event("run_failed", json!({"error": error})).await?;
        self.update(RunUpdate::default().current_step(index as u32))
            .await?;
        self.finish(RunStatus::Failed, Some(error)).await
    }

    /// Writes the end status, releasing the flags the run holds.
    async fn finish(&mut self, status: RunStatus, error: Option<String>) -> Result<Run> {
        self.lease_check()?;
        // A run that may still be resumed (failed, compensation_failed) keeps its flags until
        // their TTL lapses; a closed run gives them back.
        if status.is_closed() {
            // Prove the lease is still ours right before releasing: flags are owned by the
            // run, not by this process, so a successor's flags would go too.
            self.update(RunUpdate::default()).await?;
            let released = self
                .store()
                .clear_flags_owned_by(self.run.id.as_str())
                .await?;
            if !released.is_empty() {
                self.event("flags_released", json!({"flags": released}))
                    .await?;
            }
        }
        let mut update = RunUpdate::status(status);
        update.error = Some(error);
        self.update(update).await
    }

    async fn update(&mut self, update: RunUpdate) -> Result<Run> {
        let run = self
            .store()
            .update_run(&self.run.id, self.epoch, update)
            .await?;
        self.run = run.clone();
        Ok(run)
    }

    fn broadcast(&self, event: crate::store::Event) {
        let _ = self.engine.inner.events.send(event);
    }

    /// Appends a fenced, redacted event and broadcasts it.
    async fn event(&self, kind: &str, data: Value) -> Result<()> {
        append(
            &self.engine,
            &self.run.id,
            self.epoch,
            kind,
            exec::redact_json(&self.redactor, data),
        )
        .await
    }
}

async fn append(engine: &Engine, run: &RunId, epoch: u64, kind: &str, data: Value) -> Result<()> {
    let event = engine
        .inner
        .store
        .append_event(run, Some(epoch), kind, data)
        .await?;
    let _ = engine.inner.events.send(event);
    Ok(())
}

/// Sends executor samples to the writer task.
struct ChannelEvents(mpsc::UnboundedSender<(String, Value)>);

impl StepEvents for ChannelEvents {
    fn record(&self, kind: &str, data: Value) {
        let _ = self.0.send((kind.to_owned(), data));
    }
}

async fn write_events(
    engine: Engine,
    run: RunId,
    epoch: u64,
    step: String,
    mut rx: mpsc::UnboundedReceiver<(String, Value)>,
) -> Result<()> {
    while let Some((kind, mut data)) = rx.recv().await {
        if let Value::Object(map) = &mut data {
            map.insert("step".into(), Value::String(step.clone()));
        }
        append(&engine, &run, epoch, &kind, data).await?;
    }
    Ok(())
}

fn error_text(err: &StepError) -> String {
    match err {
        StepError::Prepare(e) => e.message().to_owned(),
        StepError::Failed { message, .. } => message.clone(),
        StepError::Cancelled => "cancelled".into(),
    }
}

fn toml_to_json(table: &toml::Table) -> Value {
    serde_json::to_value(table).unwrap_or(Value::Null)
}

fn render_json(ctx: &StepContext, value: Value) -> std::result::Result<Value, StepError> {
    Ok(match value {
        Value::String(s) => Value::String(ctx.render("params", &s)?),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|v| render_json(ctx, v))
                .collect::<std::result::Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| Ok((k, render_json(ctx, v)?)))
                .collect::<std::result::Result<_, StepError>>()?,
        ),
        other => other,
    })
}

fn redact_output(redactor: &Redactor, output: StepOutput) -> StepOutput {
    if redactor.is_empty() {
        return output;
    }
    let captured = |c: exec::Captured| {
        let text = redactor.redact(&c.text());
        exec::Captured::new(text.into_bytes(), c.truncated)
    };
    StepOutput {
        summary: redactor.redact(&output.summary),
        data: exec::redact_json(redactor, output.data),
        exit_code: output.exit_code,
        stdout: captured(output.stdout),
        stderr: captured(output.stderr),
    }
}
