//! The durable state store: runs, leases, step attempts, events, flags, unlock codes,
//! schedules, the fire ledger and approvals behind one [`Store`] trait.
//!
//! [`SqliteStore`] is the default backend. Every backend runs the same conformance suite
//! ([`store_conformance_tests!`](crate::store_conformance_tests)), so the engine relies on the
//! contracts written here and nothing else.
//!
//! ```
//! use std::time::Duration;
//! use runward::store::{NewRun, RunStatus, RunUpdate, SqliteStore, Store};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> runward::Result<()> {
//! let store = SqliteStore::open_in_memory().await?;
//! let run = store.create_run(NewRun::new("restart", "sha256:abc")).await?;
//! let lease = store.acquire_lease(&run.id, "worker-1", Duration::from_secs(30)).await?;
//! let run = store
//!     .update_run(&run.id, lease.epoch, RunUpdate::status(RunStatus::Running))
//!     .await?;
//! assert_eq!(run.status, RunStatus::Running);
//! # Ok(()) }
//! ```

pub mod chain;
#[doc(hidden)]
pub mod conformance;
mod sqlite;
mod time;
mod types;
mod unlock;

pub use sqlite::{SqliteOptions, SqliteStore, Synchronous};
pub use time::{Clock, ManualClock, SystemClock, Timestamp};
pub use types::*;
pub use unlock::DEFAULT_ITERATIONS as DEFAULT_UNLOCK_ITERATIONS;

use crate::Result;
use async_trait::async_trait;
use serde_json::Value;
use std::time::Duration;

/// `data` with the attempt's idempotency key added, when it is a JSON object: the event
/// [`Store::record_intent_logged`] appends.
pub(crate) fn with_idempotency_key(mut data: Value, attempt: &StepAttempt) -> Value {
    if let Value::Object(map) = &mut data {
        map.insert(
            "idempotency_key".into(),
            Value::String(attempt.idempotency_key.clone()),
        );
    }
    data
}

/// Durable state for runbooks, shared by any number of processes.
///
/// # Contracts every implementation keeps
///
/// - **Atomicity.** Each method is one transaction: it happens completely or not at all, and
///   concurrent callers (threads or processes) see it whole.
/// - **Time.** Expiry (leases, flags, approvals, unlock codes) is judged against the store's
///   [`Clock`]. An item expires at `expires_at`: at that instant it is already expired.
/// - **Fencing.** Methods that take an `epoch` write only while that epoch is the run's current
///   lease epoch, the lease is held (not released) and has not expired. Otherwise they change
///   nothing and fail with [`ErrorKind::LeaseLost`](crate::ErrorKind::LeaseLost): the caller
///   must stop working on the run. The check and the write happen in the same transaction.
/// - **Closed runs.** A run in a [closed](RunStatus::is_closed) status refuses every change
///   and new lease with [`ErrorKind::Conflict`](crate::ErrorKind::Conflict).
/// - **Errors.** Unknown ids give [`ErrorKind::NotFound`](crate::ErrorKind::NotFound); items
///   held by someone else or in a state that forbids the change give `Conflict`; refused
///   people give `PolicyDenied`; storage that stayed locked past the retry deadline gives
///   `Busy`, never a raw "database is locked". A failed call changes nothing, except where a
///   method says it records a timeout first.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    // ----- runs -----

    /// Creates a `queued` run with a fresh id and no lease (epoch 0).
    async fn create_run(&self, new: NewRun) -> Result<Run>;

    /// The run `id`.
    async fn get_run(&self, id: &RunId) -> Result<Run>;

    /// Runs matching `filter`, newest first.
    async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<Run>>;

    /// Applies `update` to the run, fenced by `epoch`, and returns the run as stored.
    async fn update_run(&self, id: &RunId, epoch: u64, update: RunUpdate) -> Result<Run>;

    /// The run with its attempts and events, read as one snapshot.
    async fn run_details(&self, id: &RunId) -> Result<RunDetails>;

    // ----- leases -----

    /// Takes the lease on the run for `owner` until now + `ttl` when it is free, released or
    /// expired, and returns it with a new epoch (the previous epoch + 1).
    ///
    /// Fails with `Conflict` while another unexpired lease is held, even by the same owner
    /// (renew instead), and for closed runs.
    async fn acquire_lease(&self, id: &RunId, owner: &str, ttl: Duration) -> Result<Lease>;

    /// Extends the caller's unexpired lease to now + `ttl`; fails with `LeaseLost` when
    /// `owner` and `epoch` no longer hold it.
    async fn renew_lease(
        &self,
        id: &RunId,
        owner: &str,
        epoch: u64,
        ttl: Duration,
    ) -> Result<Lease>;

    /// Gives the lease up so another process can acquire it at once. Fails with `LeaseLost`
    /// when `epoch` is no longer the current epoch or was already released.
    async fn release_lease(&self, id: &RunId, epoch: u64) -> Result<()>;

    /// Runs whose lease is held but expired at `now`.
    async fn expired_leases(&self, now: Timestamp) -> Result<Vec<Run>>;

    /// Turns every `running` or `compensating` run whose lease expired at `now` (or was
    /// released) into `orphaned`, drops the lease, and returns those runs, in one statement.
    /// Their attempts tell where they stopped; resuming starts with [`Store::acquire_lease`].
    async fn mark_orphaned(&self, now: Timestamp) -> Result<Vec<Run>>;

    // ----- step attempts -----

    /// Writes the intent of `attempt` (from 1) of step `step_index` before its effect, fenced
    /// by `epoch`, and returns it with its idempotency key.
    ///
    /// Recording the intent of an attempt that is `intent` or `outcome_unknown` again returns
    /// it with the same key (a rerun of the same effect). An attempt that already has a result
    /// fails with `Conflict`: retry with the next attempt number, which gets a new key.
    async fn record_intent(
        &self,
        run: &RunId,
        epoch: u64,
        step_index: u32,
        step_id: &str,
        attempt: u32,
    ) -> Result<StepAttempt>;

    /// Writes the result (`succeeded`, `failed` or `skipped`) of an attempt in `intent` or
    /// `outcome_unknown`, fenced by `epoch`. Fails with `NotFound` without an intent and with
    /// `Conflict` when the attempt already has a result.
    async fn record_result(
        &self,
        run: &RunId,
        epoch: u64,
        step_index: u32,
        attempt: u32,
        result: StepResult,
    ) -> Result<StepAttempt>;

    /// [`Store::record_intent`], [`Store::append_event`] and moving the run's `current_step`
    /// to `step_index`, fenced by the same `epoch`. When `data` is a JSON object, the
    /// attempt's `idempotency_key` is added to it. [`SqliteStore`] does all of it in one
    /// transaction; the default implementation makes the calls in turn, so a crash between
    /// them can leave the intent without its event: backends override it.
    #[allow(clippy::too_many_arguments)]
    async fn record_intent_logged(
        &self,
        run: &RunId,
        epoch: u64,
        step_index: u32,
        step_id: &str,
        attempt: u32,
        kind: &str,
        data: Value,
    ) -> Result<(StepAttempt, Event)> {
        let stored = self
            .record_intent(run, epoch, step_index, step_id, attempt)
            .await?;
        self.update_run(run, epoch, RunUpdate::default().current_step(step_index))
            .await?;
        let mut data = data;
        if let Value::Object(map) = &mut data {
            map.insert(
                "idempotency_key".into(),
                Value::String(stored.idempotency_key.clone()),
            );
        }
        let event = self.append_event(run, Some(epoch), kind, data).await?;
        Ok((stored, event))
    }

    /// [`Store::record_result`] and [`Store::append_event`], fenced by the same `epoch`.
    /// [`SqliteStore`] does both in one transaction; the default implementation makes the
    /// calls in turn (see [`Store::record_intent_logged`]).
    #[allow(clippy::too_many_arguments)]
    async fn record_result_logged(
        &self,
        run: &RunId,
        epoch: u64,
        step_index: u32,
        attempt: u32,
        result: StepResult,
        kind: &str,
        data: Value,
    ) -> Result<(StepAttempt, Event)> {
        let stored = self
            .record_result(run, epoch, step_index, attempt, result)
            .await?;
        let event = self.append_event(run, Some(epoch), kind, data).await?;
        Ok((stored, event))
    }

    /// Turns every `intent` attempt of the run into `outcome_unknown` and returns them; the
    /// process resuming a run calls it first, fenced by its new `epoch`.
    async fn mark_outcome_unknown(&self, run: &RunId, epoch: u64) -> Result<Vec<StepAttempt>>;

    /// Moves an attempt through its undo, fenced by `epoch`: `compensating` from `succeeded`
    /// (or again after `compensating` / `compensation_failed`), then `compensated` or
    /// `compensation_failed` from `compensating`. Other moves fail with `Conflict`.
    async fn record_compensation(
        &self,
        run: &RunId,
        epoch: u64,
        step_index: u32,
        attempt: u32,
        status: AttemptStatus,
        error: Option<String>,
    ) -> Result<StepAttempt>;

    /// The run's attempts, by step index then attempt.
    async fn list_attempts(&self, run: &RunId) -> Result<Vec<StepAttempt>>;

    // ----- events -----

    /// Appends an event to the run's hash chain: the next sequence number, the previous hash
    /// and the new hash are computed in the same transaction as the insert. With
    /// `Some(epoch)` the append is fenced; `None` is for operator actions made without a
    /// lease (approve, cancel request, note).
    async fn append_event(
        &self,
        run: &RunId,
        epoch: Option<u64>,
        kind: &str,
        data: Value,
    ) -> Result<Event>;

    /// The run's events with `seq > after_seq`, in order.
    async fn list_events(&self, run: &RunId, after_seq: u64) -> Result<Vec<Event>>;

    /// Recomputes the run's chain and reports the first bad event and why.
    async fn verify_events(&self, run: &RunId) -> Result<ChainReport>;

    // ----- flags -----

    /// Sets flag `name` for `owner` until now + `ttl`. Setting a flag the same owner holds
    /// renews it; an unexpired flag held by another owner fails with `Conflict`.
    async fn set_flag(
        &self,
        name: &str,
        owner: &str,
        ttl: Duration,
        reason: Option<&str>,
    ) -> Result<Flag>;

    /// Extends `owner`'s unexpired flag to now + `ttl`. Fails with `NotFound` when the flag is
    /// absent or expired and with `Conflict` when another owner holds it.
    async fn renew_flag(&self, name: &str, owner: &str, ttl: Duration) -> Result<Flag>;

    /// Clears flag `name`; returns whether an unexpired flag was cleared. With `Some(owner)`,
    /// an unexpired flag held by another owner fails with `Conflict`; `None` forces it
    /// (operator override).
    async fn clear_flag(&self, name: &str, owner: Option<&str>) -> Result<bool>;

    /// Clears every flag `owner` holds (on completion or compensation) and returns their names.
    async fn clear_flags_owned_by(&self, owner: &str) -> Result<Vec<String>>;

    /// Flag `name`, or `None` when absent or expired.
    async fn get_flag(&self, name: &str) -> Result<Option<Flag>>;

    /// Every unexpired flag, by name.
    async fn list_flags(&self) -> Result<Vec<Flag>>;

    // ----- unlock codes -----

    /// Stores a salted hash of `code` under `name`, valid until now + `ttl`, replacing any
    /// previous code, with who issued it. The code itself is never stored.
    async fn set_unlock_code(
        &self,
        name: &str,
        code: &str,
        ttl: Duration,
        issuer: &CodeIssuer,
    ) -> Result<UnlockCode>;

    /// Checks `code` against the stored hash. `Expired` is reported only for a matching code.
    async fn verify_unlock_code(&self, name: &str, code: &str) -> Result<UnlockCheck>;

    /// Replaces the code under `name` with a fresh random one valid until now + `ttl` and
    /// returns it once, in plain text; the old code stops verifying. The record keeps
    /// `issuer`. Fails with `NotFound` when no code is set.
    async fn rotate_unlock_code(
        &self,
        name: &str,
        ttl: Duration,
        issuer: &CodeIssuer,
    ) -> Result<(UnlockCode, String)>;

    /// The unlock-code record under `name` (without the code), even when expired.
    async fn get_unlock_code(&self, name: &str) -> Result<Option<UnlockCode>>;

    /// Deletes the code under `name`; returns whether one existed.
    async fn clear_unlock_code(&self, name: &str) -> Result<bool>;

    // ----- schedules and the fire ledger -----

    /// Creates or replaces schedule `def.name`; `created_at` survives replacement.
    async fn put_schedule(&self, def: ScheduleDef) -> Result<ScheduleRecord>;

    /// Schedule `name`.
    async fn get_schedule(&self, name: &str) -> Result<ScheduleRecord>;

    /// Every schedule, by name.
    async fn list_schedules(&self) -> Result<Vec<ScheduleRecord>>;

    /// Enables or disables schedule `name`.
    async fn set_schedule_enabled(&self, name: &str, enabled: bool) -> Result<ScheduleRecord>;

    /// Deletes schedule `name`, keeping its fire ledger; returns whether it existed.
    async fn delete_schedule(&self, name: &str) -> Result<bool>;

    /// Claims due time `due_at` of `schedule` and creates its `queued` run in ONE transaction.
    ///
    /// Exactly one caller, across all processes sharing the store, gets
    /// [`Claim::Claimed`] for a given `(schedule, due_at)`; every other gets
    /// [`Claim::AlreadyClaimed`] with the existing ledger row, and no run is created.
    async fn claim_fire_and_create_run(
        &self,
        schedule: &str,
        due_at: Timestamp,
        run: NewRun,
    ) -> Result<Claim<Run>>;

    /// Records that due time `due_at` of `schedule` was `skipped` or `missed`, with `reason`.
    /// The row takes the same key as a dispatch, so a recorded skip is never dispatched.
    async fn record_fire(
        &self,
        schedule: &str,
        due_at: Timestamp,
        status: FireStatus,
        reason: &str,
    ) -> Result<Claim<Fire>>;

    /// Ledger rows of `schedule` with `due_at > after`, oldest first, at most `limit`.
    async fn list_fires(
        &self,
        schedule: &str,
        after: Option<Timestamp>,
        limit: Option<u32>,
    ) -> Result<Vec<Fire>>;

    /// The ledger row of `schedule` with the latest due time.
    async fn last_fire(&self, schedule: &str) -> Result<Option<Fire>>;

    /// The ledger row with the latest due time of every stored schedule that has one, by
    /// schedule name, read as one snapshot (a scheduler's first tick reads them all at once).
    /// The default implementation calls [`Store::last_fire`] per stored schedule.
    async fn last_fires(&self) -> Result<std::collections::HashMap<String, Fire>> {
        let mut out = std::collections::HashMap::new();
        for record in self.list_schedules().await? {
            if let Some(fire) = self.last_fire(&record.def.name).await? {
                out.insert(record.def.name, fire);
            }
        }
        Ok(out)
    }

    // ----- approvals -----

    /// Opens a `pending` approval bound to a step attempt and a plan digest; records the run's
    /// starter for the starter rule.
    async fn create_approval(&self, new: NewApproval) -> Result<Approval>;

    /// Approval `id`.
    async fn get_approval(&self, id: &ApprovalId) -> Result<Approval>;

    /// The run's approvals, oldest first.
    async fn list_approvals(&self, run: &RunId) -> Result<Vec<Approval>>;

    /// Adds `who`'s approval; the approval turns `approved` when distinct approvals reach the
    /// quorum. Approving twice is a no-op. Refuses people outside the approvers list and,
    /// under the starter rule, the starter (`PolicyDenied`). Past `expires_at` it records
    /// `timed_out` and fails with `Conflict`; so does any approval that is not pending.
    async fn approve(&self, id: &ApprovalId, who: &str, comment: Option<&str>) -> Result<Approval>;

    /// Denies the approval (`denied`). The approvers list applies; the starter may deny.
    /// Expiry and state rules are those of [`Store::approve`].
    async fn deny(&self, id: &ApprovalId, who: &str, comment: Option<&str>) -> Result<Approval>;

    /// Uses an `approved` approval once, fenced by the run's lease `epoch`; `plan_digest`
    /// must equal the approved one. Any other state, a changed digest, or a second use fails
    /// with `Conflict`; past `expires_at` it records `timed_out` first.
    async fn consume_approval(
        &self,
        id: &ApprovalId,
        epoch: u64,
        plan_digest: &str,
    ) -> Result<Approval>;

    /// Turns every `pending` or `approved` approval past its expiry at `now` into `timed_out`
    /// and returns them.
    async fn expire_approvals(&self, now: Timestamp) -> Result<Vec<Approval>>;
}
