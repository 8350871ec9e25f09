//! The records a [`Store`](super::Store) keeps.

use super::Timestamp;
use crate::{Error, Result};
use serde::Serialize;
use serde_json::Value;
use std::fmt;
use std::time::Duration;

macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// A fresh, time-ordered id (UUIDv7).
            pub fn generate() -> Self {
                $name(uuid::Uuid::now_v7().to_string())
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                $name(s)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name(s.to_owned())
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

string_id!(
    /// The id of a run.
    RunId
);
string_id!(
    /// The id of an approval request.
    ApprovalId
);

macro_rules! str_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable snake_case name, as stored.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(Error::invalid(format!(
                        "unknown {} `{s}`; expected one of: {}",
                        $what,
                        [$($text),+].join(", ")
                    ))),
                }
            }
        }
    };
}

str_enum!(
    /// Where a run is in its lifecycle.
    RunStatus, "run status" {
        /// Created, not started.
        Queued = "queued",
        /// A process holding the lease executes its steps.
        Running = "running",
        /// Paused until an approval is decided.
        WaitingApproval = "waiting_approval",
        /// Paused until an operator acts (for example on an `outcome_unknown` step).
        WaitingOperator = "waiting_operator",
        /// Every step finished.
        Succeeded = "succeeded",
        /// A step failed and the run stopped.
        Failed = "failed",
        /// An operator cancelled the run.
        Cancelled = "cancelled",
        /// Undo steps are running in reverse.
        Compensating = "compensating",
        /// Every undo step finished.
        Compensated = "compensated",
        /// An undo step failed; an operator must look.
        CompensationFailed = "compensation_failed",
        /// The lease holder died; the run waits to be resumed.
        Orphaned = "orphaned",
    }
);

impl RunStatus {
    /// No process works on the run in this status until an operator acts.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunStatus::Succeeded
                | RunStatus::Failed
                | RunStatus::Cancelled
                | RunStatus::Compensated
                | RunStatus::CompensationFailed
        )
    }

    /// The store refuses any further change of a run in this status.
    pub fn is_closed(self) -> bool {
        matches!(
            self,
            RunStatus::Succeeded | RunStatus::Cancelled | RunStatus::Compensated
        )
    }
}

str_enum!(
    /// Where a step attempt is.
    AttemptStatus, "attempt status" {
        /// Written before the effect; no result yet.
        Intent = "intent",
        /// The effect finished and succeeded.
        Succeeded = "succeeded",
        /// The effect finished and failed.
        Failed = "failed",
        /// An intent whose process died before writing the result.
        OutcomeUnknown = "outcome_unknown",
        /// Skipped by a condition or an operator.
        Skipped = "skipped",
        /// The undo of this attempt's effect is running.
        Compensating = "compensating",
        /// The undo finished.
        Compensated = "compensated",
        /// The undo failed.
        CompensationFailed = "compensation_failed",
    }
);

str_enum!(
    /// What a recorded schedule fire became.
    FireStatus, "fire status" {
        /// A run was created for the due time.
        Dispatched = "dispatched",
        /// The due time was skipped on purpose (overlap or misfire policy, disabled schedule).
        Skipped = "skipped",
        /// The due time passed while no process was ticking.
        Missed = "missed",
    }
);

str_enum!(
    /// Where an approval request is.
    ApprovalStatus, "approval status" {
        /// Waiting for approvals.
        Pending = "pending",
        /// The quorum approved; ready for single use.
        Approved = "approved",
        /// Someone denied it.
        Denied = "denied",
        /// It expired before it was decided or used.
        TimedOut = "timed_out",
        /// The step it was bound to used it.
        Consumed = "consumed",
    }
);

str_enum!(
    /// What a schedule does with due times that passed while nothing ticked.
    MisfirePolicy, "misfire policy" {
        /// Record every missed due time, run none.
        Skip = "skip",
        /// Run the latest missed due time once, record the others.
        FireOnce = "fire_once",
        /// Run every missed due time inside the catch-up window.
        FireAll = "fire_all",
    }
);

str_enum!(
    /// What a schedule does when a due time comes while its previous run is still active.
    OverlapPolicy, "overlap policy" {
        /// Record the due time as skipped.
        Skip = "skip",
        /// Keep one due time waiting, skip the rest.
        BufferOne = "buffer_one",
        /// Start another run.
        Allow = "allow",
    }
);

/// The lease a process holds on a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lease {
    /// Who holds it: a stable, unique id per process.
    pub owner: String,
    /// The fencing epoch: incremented on every acquire, never reused.
    pub epoch: u64,
    /// When it lapses unless renewed.
    pub expires_at: Timestamp,
}

/// Which schedule due time created a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FireRef {
    /// The schedule's name.
    pub schedule: String,
    /// The due time.
    pub due_at: Timestamp,
}

/// A run of a runbook.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Run {
    /// Its id.
    pub id: RunId,
    /// The runbook's name.
    pub runbook: String,
    /// The hash of the runbook definition the run pinned.
    pub definition_hash: String,
    /// The parameters, as JSON.
    pub params: Value,
    /// Where it is.
    pub status: RunStatus,
    /// Who started it.
    pub started_by: Option<String>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
    /// The last error, for failed runs.
    pub error: Option<String>,
    /// The run that started this one as a sub-runbook.
    pub parent: Option<RunId>,
    /// The schedule due time that created it.
    pub fire: Option<FireRef>,
    /// The index of the step it is at.
    pub current_step: u32,
    /// The current lease, if one is held (it may have expired).
    pub lease: Option<Lease>,
    /// The last fencing epoch handed out; 0 before the first acquire.
    pub epoch: u64,
}

/// What [`Store::create_run`](super::Store::create_run) needs.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRun {
    /// The runbook's name.
    pub runbook: String,
    /// The hash of the runbook definition.
    pub definition_hash: String,
    /// The parameters, as JSON.
    pub params: Value,
    /// Who starts it.
    pub started_by: Option<String>,
    /// The parent run, for a sub-runbook.
    pub parent: Option<RunId>,
}

impl NewRun {
    /// A run of `runbook` pinned to `definition_hash`, with no parameters.
    pub fn new(runbook: impl Into<String>, definition_hash: impl Into<String>) -> Self {
        NewRun {
            runbook: runbook.into(),
            definition_hash: definition_hash.into(),
            params: Value::Object(Default::default()),
            started_by: None,
            parent: None,
        }
    }

    /// Sets the parameters.
    pub fn params(mut self, params: Value) -> Self {
        self.params = params;
        self
    }

    /// Sets who starts the run.
    pub fn started_by(mut self, who: impl Into<String>) -> Self {
        self.started_by = Some(who.into());
        self
    }

    /// Sets the parent run.
    pub fn parent(mut self, parent: RunId) -> Self {
        self.parent = Some(parent);
        self
    }
}

/// A change to a run; fields left `None` stay as they are.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunUpdate {
    /// The new status.
    pub status: Option<RunStatus>,
    /// The new current step index.
    pub current_step: Option<u32>,
    /// The new error (`Some(None)` clears it).
    pub error: Option<Option<String>>,
}

impl RunUpdate {
    /// An update that sets the status.
    pub fn status(status: RunStatus) -> Self {
        RunUpdate {
            status: Some(status),
            ..RunUpdate::default()
        }
    }

    /// Also sets the current step index.
    pub fn current_step(mut self, step: u32) -> Self {
        self.current_step = Some(step);
        self
    }

    /// Also sets the error.
    pub fn error(mut self, error: impl Into<String>) -> Self {
        self.error = Some(Some(error.into()));
        self
    }

    /// Also clears the error.
    pub fn clear_error(mut self) -> Self {
        self.error = Some(None);
        self
    }
}

/// Which runs [`Store::list_runs`](super::Store::list_runs) returns; empty matches all.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunFilter {
    /// Any of these statuses.
    pub statuses: Vec<RunStatus>,
    /// Only this runbook.
    pub runbook: Option<String>,
    /// Only runs created by this schedule.
    pub schedule: Option<String>,
    /// Created at or after this time.
    pub created_after: Option<Timestamp>,
    /// Created before this time.
    pub created_before: Option<Timestamp>,
    /// Changed at or after this time ("failed in the last day").
    pub updated_after: Option<Timestamp>,
    /// At most this many, newest first.
    pub limit: Option<u32>,
}

impl RunFilter {
    /// Runs in any of `statuses`.
    pub fn statuses(statuses: impl IntoIterator<Item = RunStatus>) -> Self {
        RunFilter {
            statuses: statuses.into_iter().collect(),
            ..RunFilter::default()
        }
    }
}

/// One attempt of one step of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepAttempt {
    /// The run.
    pub run_id: RunId,
    /// The step's position in the runbook.
    pub step_index: u32,
    /// The step's id in the runbook.
    pub step_id: String,
    /// The attempt number, from 1.
    pub attempt: u32,
    /// The key the effect carries so its target can deduplicate it; the same for every
    /// execution of this attempt.
    pub idempotency_key: String,
    /// Where it is.
    pub status: AttemptStatus,
    /// When the intent was written.
    pub started_at: Timestamp,
    /// When the result was written.
    pub finished_at: Option<Timestamp>,
    /// The step output, as JSON.
    pub output: Option<Value>,
    /// The error, for a failed attempt or undo.
    pub error: Option<String>,
}

/// The result of a step's effect, for [`Store::record_result`](super::Store::record_result).
#[derive(Debug, Clone, PartialEq)]
pub struct StepResult {
    /// `Succeeded`, `Failed` or `Skipped`.
    pub status: AttemptStatus,
    /// The output, as JSON.
    pub output: Option<Value>,
    /// The error or the reason for skipping.
    pub error: Option<String>,
}

impl StepResult {
    /// A success with `output`.
    pub fn succeeded(output: Value) -> Self {
        StepResult {
            status: AttemptStatus::Succeeded,
            output: Some(output),
            error: None,
        }
    }

    /// A failure with `error`.
    pub fn failed(error: impl Into<String>) -> Self {
        StepResult {
            status: AttemptStatus::Failed,
            output: None,
            error: Some(error.into()),
        }
    }

    /// A skip with `reason`.
    pub fn skipped(reason: impl Into<String>) -> Self {
        StepResult {
            status: AttemptStatus::Skipped,
            output: None,
            error: Some(reason.into()),
        }
    }
}

/// One entry of a run's hash-chained event log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// The run.
    pub run_id: RunId,
    /// Its position, from 1, without gaps.
    pub seq: u64,
    /// When it was appended.
    pub at: Timestamp,
    /// What happened (`step_started`, `approval`, `flag_set`, ...).
    pub kind: String,
    /// The details, as JSON.
    pub data: Value,
    /// The previous event's hash; 64 zeros for the first.
    pub prev_hash: String,
    /// SHA-256 (hex) of the canonical JSON of run, seq, at, kind, data and prev_hash.
    pub hash: String,
}

/// Why an event chain failed verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChainFault {
    /// A sequence number is missing or out of order (an event was deleted or reordered).
    Gap,
    /// `prev_hash` does not match the previous event's hash (an event before it was changed,
    /// deleted or reordered).
    BrokenLink,
    /// The stored hash does not match the content (the event was edited).
    HashMismatch,
    /// The run's recorded head names a later event than the last one found (the tail was cut).
    Truncated,
    /// The run's recorded head hash differs from the last event's hash.
    HeadMismatch,
    /// The stored data is not valid JSON.
    Malformed,
}

/// The first bad event of a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainBreak {
    /// The sequence number where verification stopped.
    pub seq: u64,
    /// Why.
    pub fault: ChainFault,
    /// What was expected and found.
    pub detail: String,
}

/// What [`Store::verify_events`](super::Store::verify_events) found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainReport {
    /// The run.
    pub run_id: RunId,
    /// How many events were read.
    pub events: u64,
    /// The last event that verified.
    pub last_good_seq: Option<u64>,
    /// The first fault, if any.
    pub first_bad: Option<ChainBreak>,
}

impl ChainReport {
    /// True when every event verified and the head matches.
    pub fn is_intact(&self) -> bool {
        self.first_bad.is_none()
    }
}

/// A run with its attempts and events, for `show`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunDetails {
    /// The run.
    pub run: Run,
    /// Its step attempts, by step index then attempt.
    pub attempts: Vec<StepAttempt>,
    /// Its events, by sequence number.
    pub events: Vec<Event>,
}

/// A named TTL lease, such as `lockdown` or `restarting`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Flag {
    /// Its name.
    pub name: String,
    /// Who holds it: a run id, or another stable owner name such as `health-policy`.
    pub owner: String,
    /// Why it was set.
    pub reason: Option<String>,
    /// When it was first set by this owner.
    pub set_at: Timestamp,
    /// When it lapses unless renewed.
    pub expires_at: Timestamp,
}

/// An unlock code record; the code itself is never stored, only a salted hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnlockCode {
    /// What it unlocks (for example `lockdown`).
    pub name: String,
    /// When it was set.
    pub created_at: Timestamp,
    /// When it stops verifying.
    pub expires_at: Timestamp,
    /// 1 for the first code, incremented by every rotation.
    pub generation: u32,
    /// Who issued this code, when known.
    pub issued_by: Option<String>,
    /// Why this code was issued without presenting the current one (an operator override).
    pub override_reason: Option<String>,
}

/// Who issues an unlock code, and why when they did so without the current code.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CodeIssuer {
    /// The operator or component issuing the code.
    pub by: Option<String>,
    /// Set when the code replaces one its issuer could not present.
    pub override_reason: Option<String>,
}

impl CodeIssuer {
    /// A code issued by `by`.
    pub fn by(by: impl Into<String>) -> Self {
        CodeIssuer {
            by: Some(by.into()),
            override_reason: None,
        }
    }
}

/// The answer of [`Store::verify_unlock_code`](super::Store::verify_unlock_code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnlockCheck {
    /// The code matches and has not expired.
    Valid,
    /// The code does not match.
    Invalid,
    /// The code matches but has expired.
    Expired,
    /// No code is set under this name.
    NotSet,
}

/// A schedule as the store keeps it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScheduleDef {
    /// Its unique name.
    pub name: String,
    /// A cron expression or `@every:N`.
    pub spec: String,
    /// The IANA time zone the spec is read in.
    pub time_zone: String,
    /// The runbook it starts.
    pub runbook: String,
    /// The parameters of the runs it starts.
    pub params: Value,
    /// What happens to due times that passed unticked.
    pub misfire: MisfirePolicy,
    /// The catch-up window for [`MisfirePolicy::FireAll`].
    pub catch_up: Option<Duration>,
    /// What happens when a previous run is still active.
    pub overlap: OverlapPolicy,
    /// Disabled schedules are kept but not ticked.
    pub enabled: bool,
}

impl ScheduleDef {
    /// An enabled schedule in UTC that skips misfires and overlaps.
    pub fn new(
        name: impl Into<String>,
        spec: impl Into<String>,
        runbook: impl Into<String>,
    ) -> Self {
        ScheduleDef {
            name: name.into(),
            spec: spec.into(),
            time_zone: "UTC".into(),
            runbook: runbook.into(),
            params: Value::Object(Default::default()),
            misfire: MisfirePolicy::Skip,
            catch_up: None,
            overlap: OverlapPolicy::Skip,
            enabled: true,
        }
    }
}

/// A stored schedule with its bookkeeping.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScheduleRecord {
    /// The definition.
    #[serde(flatten)]
    pub def: ScheduleDef,
    /// When it was first stored.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
}

/// One row of the fire ledger: what became of one due time of one schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fire {
    /// The schedule.
    pub schedule: String,
    /// The due time.
    pub due_at: Timestamp,
    /// What it became.
    pub status: FireStatus,
    /// The run it created, when dispatched.
    pub run_id: Option<RunId>,
    /// Why it was skipped or missed.
    pub reason: Option<String>,
    /// When the row was written.
    pub recorded_at: Timestamp,
}

/// The answer of a fire-ledger claim.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim<T> {
    /// This caller claimed the due time and wrote `T`.
    Claimed(T),
    /// The due time was already claimed; here is the existing ledger row.
    AlreadyClaimed(Fire),
}

impl<T> Claim<T> {
    /// The claimed value, or `None` when someone else claimed first.
    pub fn claimed(self) -> Option<T> {
        match self {
            Claim::Claimed(t) => Some(t),
            Claim::AlreadyClaimed(_) => None,
        }
    }

    /// True when this caller claimed the due time.
    pub fn is_claimed(&self) -> bool {
        matches!(self, Claim::Claimed(_))
    }
}

/// What [`Store::create_approval`](super::Store::create_approval) needs.
#[derive(Debug, Clone, PartialEq)]
pub struct NewApproval {
    /// The run.
    pub run_id: RunId,
    /// The step it gates.
    pub step_index: u32,
    /// The attempt it gates.
    pub attempt: u32,
    /// The digest of the plan the approvers see; consumption must present the same.
    pub plan_digest: String,
    /// How many distinct approvers it needs (at least 1).
    pub quorum: u32,
    /// Who may approve or deny; empty means anyone.
    pub approvers: Vec<String>,
    /// Refuse the run's starter as an approver.
    pub exclude_starter: bool,
    /// How long it stays open.
    pub ttl: Duration,
}

/// One person's decision on an approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApprovalVote {
    /// Who.
    pub who: String,
    /// When.
    pub at: Timestamp,
    /// Why, if they said.
    pub comment: Option<String>,
}

/// A durable approval request bound to one step attempt and one plan digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Approval {
    /// Its id.
    pub id: ApprovalId,
    /// The run.
    pub run_id: RunId,
    /// The step it gates.
    pub step_index: u32,
    /// The attempt it gates.
    pub attempt: u32,
    /// The digest of the approved plan.
    pub plan_digest: String,
    /// Distinct approvals needed.
    pub quorum: u32,
    /// Who may decide; empty means anyone.
    pub approvers: Vec<String>,
    /// Whether the run's starter is refused.
    pub exclude_starter: bool,
    /// The run's starter when the request was created.
    pub starter: Option<String>,
    /// The approvals given so far, oldest first.
    pub approvals: Vec<ApprovalVote>,
    /// The denial, if any.
    pub denial: Option<ApprovalVote>,
    /// Where it is.
    pub status: ApprovalStatus,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it times out.
    pub expires_at: Timestamp,
    /// When it was used.
    pub consumed_at: Option<Timestamp>,
}
