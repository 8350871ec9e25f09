//! The durable run engine: drives a run of a [`Runbook`] through its steps so that it survives
//! crashes and never repeats an effect by accident.
//!
//! # What the engine promises
//!
//! - **Intent before effect.** Every step attempt is written (`intent`, with a stable
//!   idempotency key) before its effect and its result after. A process that died in between
//!   leaves the attempt `outcome_unknown`; resuming resolves it by the step's declared policy:
//!   rerun, check a health check first, or stop for an operator.
//! - **Fencing.** A run is driven only under its lease; every write carries the lease's epoch,
//!   and a process that lost its lease stops without writing. A keeper renews the lease and
//!   the flags the run holds while it runs.
//! - **Failure handling.** Retries with exponential backoff and jitter, then the step's
//!   `on_failure`: abort, continue, go to a step, or compensate (the recorded undo of every
//!   completed step, in reverse, each undo written before and after).
//! - **Decision points.** Approvals, `ask` policies and `ask` gates pause the run
//!   (`waiting_approval`, `waiting_operator`) and release the lease; [`Engine::resume`],
//!   [`Engine::retry`] and [`Engine::skip`] continue it.
//! - **Pinning.** A run pins its definition hash; resuming with a changed runbook is refused
//!   unless [`Resume::override_definition`] is set, and the override is recorded.
//! - **Evidence.** Every transition, sample, approval, flag change and operator action is
//!   appended to the run's hash-chained event log, with registered secret values redacted,
//!   and broadcast to [`Engine::subscribe`]rs.
//!
//! ```
//! use std::collections::BTreeMap;
//! use std::sync::Arc;
//! use runward::runbook::Runbook;
//! use runward::runbook::engine::Engine;
//! use runward::store::{RunStatus, SqliteStore};
//!
//! # #[tokio::main] async fn main() -> runward::Result<()> {
//! let runbook = Runbook::parse(r#"
//!     [runbook]
//!     name = "hello"
//!     [[steps]]
//!     id = "greet"
//!     kind = "command"
//!     argv = ["echo", "hello"]
//! "#, None)?;
//! let engine = Engine::builder(Arc::new(SqliteStore::open_in_memory().await?)).build();
//! let outcome = engine.start(&runbook, &BTreeMap::new(), Some("alice")).await?;
//! assert_eq!(outcome.run.status, RunStatus::Succeeded);
//! # Ok(()) }
//! ```

mod backoff;
mod custom;
mod driver;
mod events;
mod lease;

pub use custom::{CustomSteps, Step, step_fn};

/// How long a run's lease lasts without renewal when nothing else sets it.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(30);
/// The shortest lease TTL accepted: the driver renews every third of it.
pub const MIN_LEASE_TTL: Duration = Duration::from_millis(100);
/// The longest lease TTL accepted: a run whose driver died waits this long to be recovered.
pub const MAX_LEASE_TTL: Duration = Duration::from_secs(24 * 3600);

/// Checks a lease TTL: between [`MIN_LEASE_TTL`] and [`MAX_LEASE_TTL`]. Anything else fails
/// with [`ErrorKind::InvalidInput`]; it is never adjusted.
pub fn check_lease_ttl(ttl: Duration) -> Result<Duration> {
    if (MIN_LEASE_TTL..=MAX_LEASE_TTL).contains(&ttl) {
        Ok(ttl)
    } else {
        Err(crate::Error::invalid(format!(
            "the lease TTL is {}: give a value between {} and {} (default {}); a run whose driver dies is recovered one TTL after its last renewal",
            humantime::format_duration(ttl),
            humantime::format_duration(MIN_LEASE_TTL),
            humantime::format_duration(MAX_LEASE_TTL),
            humantime::format_duration(DEFAULT_LEASE_TTL),
        )))
    }
}
pub use events::RunEvents;

use super::{ParamType, Runbook, plan};
use crate::health::Registry;
use crate::policy::OutboundPolicy;
use crate::store::{
    Approval, ApprovalStatus, Event, NewRun, Run, RunFilter, RunId, RunStatus, Store, Timestamp,
};
use crate::{Error, ErrorKind, Result};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;

/// How long a flag set by a `flag` step lives without renewal when the step gives no `ttl`.
pub const DEFAULT_FLAG_TTL: Duration = Duration::from_secs(600);

/// How long an approval stays open when the step gives no `expires`.
pub const DEFAULT_APPROVAL_TTL: Duration = Duration::from_secs(24 * 3600);

/// Drives runs of runbooks over a [`Store`]. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    owner: String,
    lease_ttl: Duration,
    renew_every: Duration,
    poll_every: Duration,
    registry: Option<Registry>,
    outbound: Arc<OutboundPolicy>,
    steps: CustomSteps,
    events: broadcast::Sender<Event>,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("owner", &self.inner.owner)
            .field("lease_ttl", &self.inner.lease_ttl)
            .field("custom_steps", &self.inner.steps)
            .finish_non_exhaustive()
    }
}

/// Configures an [`Engine`].
pub struct EngineBuilder {
    store: Arc<dyn Store>,
    owner: Option<String>,
    lease_ttl: Duration,
    renew_every: Option<Duration>,
    poll_every: Duration,
    registry: Option<Registry>,
    outbound: Arc<OutboundPolicy>,
    steps: CustomSteps,
}

impl EngineBuilder {
    /// The lease owner name; default `<host>:<pid>:<random>`, unique per engine.
    pub fn owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = Some(owner.into());
        self
    }

    /// How long a lease lasts without renewal ([`DEFAULT_LEASE_TTL`] unless set). A run
    /// whose driver died can be marked `orphaned` by a sweep this long after its last renewal.
    /// Fails with [`ErrorKind::InvalidInput`] outside
    /// [`MIN_LEASE_TTL`]..=[`MAX_LEASE_TTL`] (see [`check_lease_ttl`]).
    pub fn lease_ttl(mut self, ttl: Duration) -> Result<Self> {
        self.lease_ttl = check_lease_ttl(ttl)?;
        Ok(self)
    }

    /// How often the lease is renewed (default a third of the TTL).
    pub fn renew_every(mut self, every: Duration) -> Self {
        self.renew_every = Some(every.max(Duration::from_millis(10)));
        self
    }

    /// How often a running run looks for cancel requests (default 1 s).
    pub fn poll_every(mut self, every: Duration) -> Self {
        self.poll_every = every.max(Duration::from_millis(10));
        self
    }

    /// The health registry that gates, drains and `probe_first` policies read.
    pub fn registry(mut self, registry: Registry) -> Self {
        self.registry = Some(registry);
        self
    }

    /// Where `http` steps and gates may connect.
    pub fn outbound(mut self, policy: OutboundPolicy) -> Self {
        self.outbound = Arc::new(policy);
        self
    }

    /// Registers a custom step for `kind = "custom"`, `name = <name>` steps.
    pub fn step(mut self, name: impl Into<String>, step: Arc<dyn Step>) -> Self {
        self.steps.insert(name, step);
        self
    }

    /// The engine.
    pub fn build(self) -> Engine {
        let renew_every = self.renew_every.unwrap_or(self.lease_ttl / 3);
        let owner = self.owner.unwrap_or_else(default_owner);
        Engine {
            inner: Arc::new(Inner {
                store: self.store,
                owner,
                lease_ttl: self.lease_ttl,
                renew_every,
                poll_every: self.poll_every,
                registry: self.registry,
                outbound: self.outbound,
                steps: self.steps,
                events: broadcast::channel(1024).0,
            }),
        }
    }
}

/// A lease owner name unique to this engine: `<host>:<pid>:<random>`, the default of
/// [`EngineBuilder::owner`].
pub fn default_owner() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into());
    let id = uuid::Uuid::now_v7().simple().to_string();
    format!("{host}:{}:{}", std::process::id(), &id[id.len() - 8..])
}

/// Where a call to the engine left a run.
#[derive(Debug, Clone, Serialize)]
pub struct RunOutcome {
    /// The run as stored when the call returned.
    pub run: Run,
    /// The approval the run waits for, when `waiting_approval`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<Approval>,
}

/// How [`Engine::resume`] continues a run.
#[derive(Debug, Clone, Default)]
pub struct Resume {
    /// Resume even though the runbook's definition changed since the run started.
    pub override_definition: bool,
    /// Who resumes, for the evidence.
    pub by: Option<String>,
    /// Why, for the evidence.
    pub reason: Option<String>,
}

/// An operator's decision on the step a run stopped at.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Decision {
    /// Run the step again (the same attempt when its outcome is unknown, else a new one).
    Retry,
    /// Record the step as skipped and go on.
    Skip,
}

/// What [`Engine::sweep`] found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Sweep {
    /// Runs whose driver died (lease expired), now `orphaned`.
    pub orphaned: Vec<Run>,
    /// Approvals that expired, now `timed_out`.
    pub approvals_timed_out: Vec<Approval>,
}

impl Engine {
    /// An engine over `store` with default settings.
    pub fn builder(store: Arc<dyn Store>) -> EngineBuilder {
        EngineBuilder {
            store,
            owner: None,
            lease_ttl: DEFAULT_LEASE_TTL,
            renew_every: None,
            poll_every: Duration::from_secs(1),
            registry: None,
            outbound: Arc::new(OutboundPolicy::default()),
            steps: CustomSteps::default(),
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// This engine's lease owner name.
    pub fn owner(&self) -> &str {
        &self.inner.owner
    }

    /// Every event this engine appends from now on, as appended (already redacted). A slow
    /// receiver misses events ([`broadcast::error::RecvError::Lagged`]); the store keeps
    /// them all.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    /// Validates `params` against the runbook, checks its flag requirements, and creates a
    /// `queued` run pinned to the definition. Nothing is created when any of this fails.
    ///
    /// Secret parameters are stored as the name of the environment variable holding them,
    /// never as values.
    pub async fn create(
        &self,
        runbook: &Runbook,
        params: &BTreeMap<String, Value>,
        started_by: Option<&str>,
    ) -> Result<Run> {
        self.create_run(runbook, params, started_by, None).await
    }

    pub(crate) async fn create_run(
        &self,
        runbook: &Runbook,
        params: &BTreeMap<String, Value>,
        started_by: Option<&str>,
        parent: Option<RunId>,
    ) -> Result<Run> {
        let stored = resolve_params(runbook, params)?;
        self.check_requirements(runbook).await?;
        let mut new = NewRun::new(runbook.name.clone(), runbook.definition_hash())
            .params(Value::Object(stored.into_iter().collect()));
        new.started_by = started_by.map(str::to_owned);
        new.parent = parent;
        self.inner.store.create_run(new).await
    }

    /// Fails with `Conflict` when a flag the runbook requires absent is held, or one it
    /// requires present is not.
    pub async fn check_requirements(&self, runbook: &Runbook) -> Result<()> {
        let store = &self.inner.store;
        for name in &runbook.requires.absent {
            if let Some(flag) = store.get_flag(name).await? {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!(
                        "runbook `{}` requires flag `{name}` to be absent, but `{}` holds it until {}{}",
                        runbook.name,
                        flag.owner,
                        flag.expires_at,
                        flag.reason.map(|r| format!(" ({r})")).unwrap_or_default()
                    ),
                ));
            }
        }
        for name in &runbook.requires.present {
            if store.get_flag(name).await?.is_none() {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!(
                        "runbook `{}` requires flag `{name}` to be set; set it with `runward flag set {name}`",
                        runbook.name
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Creates a run and drives it until it finishes or stops at a decision point.
    pub async fn start(
        &self,
        runbook: &Runbook,
        params: &BTreeMap<String, Value>,
        started_by: Option<&str>,
    ) -> Result<RunOutcome> {
        let run = self.create(runbook, params, started_by).await?;
        self.drive(&run.id, runbook, Resume::default(), None).await
    }

    /// Drives run `id` from where it stopped: a `queued` run starts, an `orphaned`, `failed`
    /// or waiting run continues (a failed step gets a new attempt), a `compensating` run
    /// finishes its compensation. Closed runs are returned as they are.
    ///
    /// Errors: `Conflict` when another process holds the lease or the definition changed
    /// without [`Resume::override_definition`]; `LeaseLost` when this process lost the lease
    /// while driving (it wrote nothing after that).
    pub async fn resume(
        &self,
        id: &RunId,
        runbook: &Runbook,
        resume: Resume,
    ) -> Result<RunOutcome> {
        self.drive(id, runbook, resume, None).await
    }

    /// Runs the step the run stopped at again, recording `who` and `reason`: the same attempt
    /// (and idempotency key) when its outcome is unknown, a new attempt after a failure.
    pub async fn retry(
        &self,
        id: &RunId,
        runbook: &Runbook,
        who: &str,
        reason: Option<&str>,
    ) -> Result<RunOutcome> {
        self.operator_decision(id, runbook, who, reason, Decision::Retry)
            .await
    }

    /// Records the step the run stopped at as skipped, with `who` and `reason`, and goes on.
    pub async fn skip(
        &self,
        id: &RunId,
        runbook: &Runbook,
        who: &str,
        reason: &str,
    ) -> Result<RunOutcome> {
        if reason.trim().is_empty() {
            return Err(Error::invalid(
                "skipping a step needs a reason: pass --reason \"...\"",
            ));
        }
        self.operator_decision(id, runbook, who, Some(reason), Decision::Skip)
            .await
    }

    async fn operator_decision(
        &self,
        id: &RunId,
        runbook: &Runbook,
        who: &str,
        reason: Option<&str>,
        decision: Decision,
    ) -> Result<RunOutcome> {
        let run = self.inner.store.get_run(id).await?;
        if !matches!(
            run.status,
            RunStatus::Failed
                | RunStatus::WaitingOperator
                | RunStatus::Orphaned
                | RunStatus::WaitingApproval
        ) {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!(
                    "run {id} is `{}`: only failed, orphaned or waiting runs take retry or skip",
                    run.status
                ),
            ));
        }
        let at_approval = runbook
            .steps
            .get(run.current_step as usize)
            .is_some_and(|s| matches!(s.kind, super::StepKind::Approval(_)));
        if decision == Decision::Skip && at_approval {
            return Err(Error::new(
                ErrorKind::PolicyDenied,
                format!(
                    "run {id} stopped at an approval step: approvals are decided by approve or deny, never skipped"
                ),
            ));
        }
        let resume = Resume {
            override_definition: false,
            by: Some(who.to_owned()),
            reason: reason.map(str::to_owned),
        };
        self.drive(id, runbook, resume, Some(decision)).await
    }

    async fn drive(
        &self,
        id: &RunId,
        runbook: &Runbook,
        resume: Resume,
        decision: Option<Decision>,
    ) -> Result<RunOutcome> {
        driver::drive(self.clone(), id.clone(), runbook.clone(), resume, decision).await
    }

    /// The approval run `id` waits for.
    pub async fn pending_approval(&self, id: &RunId) -> Result<Approval> {
        let approvals = self.inner.store.list_approvals(id).await?;
        approvals
            .into_iter()
            .rev()
            .find(|a| matches!(a.status, ApprovalStatus::Pending | ApprovalStatus::Approved))
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Conflict,
                    format!("run {id} has no open approval request"),
                )
            })
    }

    /// Adds `who`'s approval to the request run `id` waits for, and records it in the run's
    /// evidence. Refused (`PolicyDenied`, nothing changes) for people outside the approvers
    /// and, under the starter rule, for the starter. Resume the run once the result is
    /// `approved`.
    pub async fn approve(&self, id: &RunId, who: &str, comment: Option<&str>) -> Result<Approval> {
        let pending = self.pending_approval(id).await?;
        let approval = self.inner.store.approve(&pending.id, who, comment).await?;
        self.operator_event(
            id,
            "approval_given",
            json!({"approval": approval.id, "who": who, "comment": comment, "status": approval.status}),
        )
        .await?;
        Ok(approval)
    }

    /// Denies the request run `id` waits for; resuming the run then fails the step.
    pub async fn deny(&self, id: &RunId, who: &str, comment: Option<&str>) -> Result<Approval> {
        let pending = self.pending_approval(id).await?;
        let approval = self.inner.store.deny(&pending.id, who, comment).await?;
        self.operator_event(
            id,
            "approval_denied",
            json!({"approval": approval.id, "who": who, "comment": comment}),
        )
        .await?;
        Ok(approval)
    }

    /// Cancels run `id` for `who`: records the request, then, when no process drives the run,
    /// runs its cancel path here and returns the result. When another process drives it, that
    /// process runs the cancel path within a second or so and this returns the run as it is.
    pub async fn cancel(
        &self,
        id: &RunId,
        runbook: &Runbook,
        who: &str,
        reason: Option<&str>,
    ) -> Result<RunOutcome> {
        let run = self.inner.store.get_run(id).await?;
        if run.status.is_closed() {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!("run {id} is already `{}`", run.status),
            ));
        }
        self.operator_event(
            id,
            lease::CANCEL_REQUESTED,
            json!({"who": who, "reason": reason}),
        )
        .await?;
        let held = run
            .lease
            .as_ref()
            .is_some_and(|l| l.expires_at > Timestamp::now());
        if held {
            return Ok(RunOutcome {
                run: self.inner.store.get_run(id).await?,
                approval: None,
            });
        }
        match self.drive(id, runbook, Resume::default(), None).await {
            Err(e) if e.kind() == ErrorKind::Conflict && e.message().contains("lease") => {
                Ok(RunOutcome {
                    run: self.inner.store.get_run(id).await?,
                    approval: None,
                })
            }
            other => other,
        }
    }

    /// Marks runs whose driver died `orphaned` and expired approvals `timed_out`, recording
    /// each in the run's evidence. Call it periodically (`runward serve` does, every few
    /// seconds); any number of processes may.
    pub async fn sweep(&self) -> Result<Sweep> {
        let now = Timestamp::now();
        let store = &self.inner.store;
        let orphaned = store.mark_orphaned(now).await?;
        for run in &orphaned {
            self.operator_event(
                &run.id,
                "run_orphaned",
                json!({"reason": "the lease expired: the process driving the run stopped renewing it", "step": run.current_step}),
            )
            .await?;
        }
        let approvals_timed_out = store.expire_approvals(now).await?;
        for approval in &approvals_timed_out {
            self.operator_event(
                &approval.run_id,
                "approval_timed_out",
                json!({"approval": approval.id, "expired_at": approval.expires_at}),
            )
            .await?;
        }
        Ok(Sweep {
            orphaned,
            approvals_timed_out,
        })
    }

    /// The runbook file run `id` was started from, as recorded in its `run_started` event
    /// (an absolute path when the runbook was loaded from a file); `None` for runbooks built
    /// in code or runs not started yet.
    pub async fn source_of(&self, id: &RunId) -> Result<Option<std::path::PathBuf>> {
        let events = self.inner.store.list_events(id, 0).await?;
        Ok(events
            .iter()
            .find(|e| e.kind == "run_started")
            .and_then(|e| e.data["source"].as_str())
            .map(std::path::PathBuf::from))
    }

    /// Runs in `statuses` (all when empty) changed at or after `since`, newest first.
    pub async fn list(&self, filter: &RunFilter) -> Result<Vec<Run>> {
        self.inner.store.list_runs(filter).await
    }

    /// Appends an event without a lease (operator actions) and broadcasts it.
    async fn operator_event(&self, id: &RunId, kind: &str, data: Value) -> Result<Event> {
        let event = self.inner.store.append_event(id, None, kind, data).await?;
        let _ = self.inner.events.send(event.clone());
        Ok(event)
    }
}

/// The parameters as a run stores them: declared ones only, typed, defaults filled in;
/// secrets as the name of their environment variable.
fn resolve_params(
    runbook: &Runbook,
    given: &BTreeMap<String, Value>,
) -> Result<BTreeMap<String, Value>> {
    let plan = plan(runbook, given)?;
    let mut stored = BTreeMap::new();
    for spec in &runbook.params {
        let value = if spec.ty == ParamType::Secret {
            let env = match given.get(&spec.name) {
                Some(v) => v.clone(),
                None => Value::String(spec.env.clone().unwrap_or_default()),
            };
            // Only the variable's name is stored: refuse anything that could be the value.
            let is_name = env.as_str().is_some_and(|s| {
                let mut chars = s.chars();
                chars
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
            });
            if !is_name {
                return Err(Error::invalid(format!(
                    "secret parameter `{}` takes the name of an environment variable (letters, digits and `_`), not a value",
                    spec.name
                )));
            }
            env
        } else {
            plan.params.get(&spec.name).cloned().unwrap_or(Value::Null)
        };
        stored.insert(spec.name.clone(), value);
    }
    Ok(stored)
}

#[cfg(test)]
mod tests;
