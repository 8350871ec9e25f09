//! [`SqliteStore`]: the default [`Store`], one SQLite file shared by any number of processes.

mod conn;
mod rows;
mod schema;

use self::conn::{Pool, Settings, TxError, TxResult};
use self::rows::*;
use super::chain::{self, GENESIS_HASH};
use super::unlock;
use super::*;
use crate::{Error, ErrorKind, Result};
use async_trait::async_trait;
use rusqlite::{OptionalExtension, Transaction, params};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The SQLite `synchronous` setting of a store's connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// Every commit is durable on power loss (fsync per commit).
    #[default]
    Full,
    /// Commits survive a process crash; the last ones may be lost on power loss. Faster.
    Normal,
}

/// How [`SqliteStore`] opens its database.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    synchronous: Synchronous,
    busy_timeout: Duration,
    busy_deadline: Duration,
    readers: usize,
    clock: Arc<dyn Clock>,
    unlock_iterations: u32,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            synchronous: Synchronous::Full,
            busy_timeout: Duration::from_millis(250),
            busy_deadline: Duration::from_secs(30),
            readers: 4,
            clock: Arc::new(SystemClock),
            unlock_iterations: unlock::DEFAULT_ITERATIONS,
        }
    }
}

impl SqliteOptions {
    /// `synchronous = FULL` (default) or `NORMAL`.
    pub fn synchronous(mut self, synchronous: Synchronous) -> Self {
        self.synchronous = synchronous;
        self
    }

    /// How long one SQLite call waits for a lock before the store backs off and retries
    /// (default 250 ms).
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// How long a call keeps retrying a busy database before it fails with
    /// [`ErrorKind::Busy`] (default 30 s).
    pub fn busy_deadline(mut self, deadline: Duration) -> Self {
        self.busy_deadline = deadline;
        self
    }

    /// How many idle reader connections a file store keeps (default 4).
    pub fn readers(mut self, readers: usize) -> Self {
        self.readers = readers;
        self
    }

    /// The clock expiry is judged against (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// PBKDF2 iterations for new unlock-code hashes (default
    /// [`DEFAULT_UNLOCK_ITERATIONS`](super::DEFAULT_UNLOCK_ITERATIONS)).
    pub fn unlock_iterations(mut self, iterations: u32) -> Self {
        self.unlock_iterations = iterations.max(1);
        self
    }
}

/// A [`Store`] in one SQLite database.
///
/// Writes go through one dedicated writer thread per store with `BEGIN IMMEDIATE`; reads use
/// separate connections. Across processes, SQLite's file locks serialise writers; a busy
/// database is retried with backoff until the busy deadline, so callers never see
/// "database is locked". The file uses WAL journaling and foreign keys.
#[derive(Clone)]
pub struct SqliteStore {
    pool: Arc<Pool>,
    unlock_iterations: u32,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.pool.settings.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the store at `path` with default options, and migrates it.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, SqliteOptions::default()).await
    }

    /// Opens the store at `path` with `options`. Refuses a schema newer than this build.
    pub async fn open_with(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self> {
        Self::open_inner(Some(path.as_ref().to_path_buf()), options).await
    }

    /// A private in-memory store, gone when the last clone is dropped. Reads and writes share
    /// its one connection on the writer thread.
    pub async fn open_in_memory() -> Result<Self> {
        Self::open_in_memory_with(SqliteOptions::default()).await
    }

    /// A private in-memory store with `options`.
    pub async fn open_in_memory_with(options: SqliteOptions) -> Result<Self> {
        Self::open_inner(None, options).await
    }

    async fn open_inner(path: Option<PathBuf>, options: SqliteOptions) -> Result<Self> {
        let settings = Settings {
            path,
            synchronous: match options.synchronous {
                Synchronous::Full => "FULL",
                Synchronous::Normal => "NORMAL",
            },
            busy_timeout: options.busy_timeout,
            busy_deadline: options.busy_deadline,
            readers: options.readers,
            clock: options.clock,
        };
        let pool = Pool::blocking(move || Pool::open(settings)).await?;
        Ok(SqliteStore {
            pool: Arc::new(pool),
            unlock_iterations: options.unlock_iterations,
        })
    }

    /// The database file, or `None` for an in-memory store.
    pub fn path(&self) -> Option<&Path> {
        self.pool.settings.path.as_deref()
    }

    /// The schema version this build creates and reads.
    pub fn schema_version() -> u32 {
        schema::latest()
    }

    async fn write<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnMut(&Transaction<'_>, Timestamp) -> TxResult<R> + Send + 'static,
    {
        let clock = Arc::clone(&self.pool.settings.clock);
        let mut f = f;
        self.pool.write(move |tx| f(tx, clock.now())).await
    }

    async fn read<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnMut(&Transaction<'_>, Timestamp) -> TxResult<R> + Send + 'static,
    {
        let clock = Arc::clone(&self.pool.settings.clock);
        let mut f = f;
        self.pool.read(move |tx| f(tx, clock.now())).await
    }
}

fn positive_ttl(ttl: Duration, what: &str) -> Result<()> {
    if ttl.is_zero() {
        return Err(Error::invalid(format!(
            "the {what} TTL is zero; pass a positive duration"
        )));
    }
    Ok(())
}

fn non_empty(value: &str, what: &str) -> Result<()> {
    if value.trim().is_empty() {
        return Err(Error::invalid(format!("the {what} is empty; pass a name")));
    }
    Ok(())
}

fn run_not_found(id: &RunId) -> Error {
    Error::new(
        ErrorKind::NotFound,
        format!("run {id} does not exist; list runs to find its id"),
    )
}

/// Checks in `tx` that `epoch` holds the run's lease at `now`; returns the run's status.
/// Writes (or re-arms) an attempt's intent; see [`Store::record_intent`].
fn intent_tx(
    tx: &Transaction<'_>,
    now: Timestamp,
    run: &RunId,
    epoch: u64,
    step_index: u32,
    step_id: &str,
    attempt: u32,
) -> TxResult<StepAttempt> {
    let (run, step_id) = (run.clone(), step_id.to_owned());
    let status = check_fence(tx, &run, epoch, now)?;
    refuse_closed(&run, status)?;
    if let Some(existing) = load_attempt(tx, &run, step_index, attempt)? {
        if existing.step_id != step_id {
            return Err(Error::new(
                        ErrorKind::Conflict,
                        format!(
                            "run {run}: step {step_index} attempt {attempt} was recorded for step `{}`, not `{step_id}`; the runbook changed under the run",
                            existing.step_id
                        ),
                    )
                    .into());
        }
        return match existing.status {
                    AttemptStatus::Intent | AttemptStatus::OutcomeUnknown => {
                        tx.execute(
                            "UPDATE step_attempts SET status = 'intent' WHERE run_id = ?1 AND step_index = ?2 AND attempt = ?3",
                            params![run.as_str(), step_index, attempt],
                        )?;
                        Ok(StepAttempt {
                            status: AttemptStatus::Intent,
                            ..existing
                        })
                    }
                    other => Err(Error::new(
                        ErrorKind::Conflict,
                        format!(
                            "run {run}: step {step_index} attempt {attempt} already finished ({other}); record attempt {} to retry",
                            attempt + 1
                        ),
                    )
                    .into()),
                };
    }
    let key = format!("{run}.{step_index}.{attempt}");
    tx.execute(
                "INSERT INTO step_attempts (run_id, step_index, attempt, step_id, idempotency_key, status, started_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'intent', ?6)",
                params![run.as_str(), step_index, attempt, step_id, key, now.as_millis()],
            )?;
    Ok(load_attempt(tx, &run, step_index, attempt)?.expect("just inserted"))
}

/// Validates a result and serialises its output.
fn checked_result(result: &StepResult) -> Result<Option<String>> {
    if !matches!(
        result.status,
        AttemptStatus::Succeeded | AttemptStatus::Failed | AttemptStatus::Skipped
    ) {
        return Err(Error::invalid(format!(
            "a step result is succeeded, failed or skipped, not {}",
            result.status
        )));
    }
    result
        .output
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| Error::invalid(format!("the step output is not JSON: {e}")))
}

/// Writes an attempt's result; see [`Store::record_result`].
#[allow(clippy::too_many_arguments)]
fn result_tx(
    tx: &Transaction<'_>,
    now: Timestamp,
    run: &RunId,
    epoch: u64,
    step_index: u32,
    attempt: u32,
    result: &StepResult,
    output: &Option<String>,
) -> TxResult<StepAttempt> {
    let (run, result, output) = (run.clone(), result.clone(), output.clone());
    check_fence(tx, &run, epoch, now)?;
    let Some(existing) = load_attempt(tx, &run, step_index, attempt)? else {
        return Err(Error::new(
                    ErrorKind::NotFound,
                    format!("run {run}: step {step_index} attempt {attempt} has no intent; record the intent before the effect"),
                )
                .into());
    };
    if !matches!(
        existing.status,
        AttemptStatus::Intent | AttemptStatus::OutcomeUnknown
    ) {
        return Err(Error::new(
                    ErrorKind::Conflict,
                    format!(
                        "run {run}: step {step_index} attempt {attempt} already has a result ({}); record a new attempt to retry",
                        existing.status
                    ),
                )
                .into());
    }
    tx.execute(
        "UPDATE step_attempts SET status = ?4, finished_at = ?5, output = ?6, error = ?7
                 WHERE run_id = ?1 AND step_index = ?2 AND attempt = ?3",
        params![
            run.as_str(),
            step_index,
            attempt,
            result.status.as_str(),
            now.as_millis(),
            output,
            result.error
        ],
    )?;
    Ok(load_attempt(tx, &run, step_index, attempt)?.expect("exists"))
}

/// Appends one event to the run's chain; see [`Store::append_event`].
fn append_tx(
    tx: &Transaction<'_>,
    now: Timestamp,
    run: &RunId,
    epoch: Option<u64>,
    kind: &str,
    data: &Value,
    data_text: &str,
) -> TxResult<Event> {
    let (run, kind, data_text) = (run.clone(), kind.to_owned(), data_text.to_owned());
    if let Some(epoch) = epoch {
        check_fence(tx, &run, epoch, now)?;
    }
    let head: Option<(i64, String)> = tx
        .query_row(
            "SELECT event_seq, event_head FROM runs WHERE id = ?1",
            [run.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((seq, prev_hash)) = head else {
        return Err(run_not_found(&run).into());
    };
    let seq = seq as u64 + 1;
    let hash = chain::event_hash(&run, seq, now, &kind, data, &prev_hash);
    tx.execute(
        "INSERT INTO events (run_id, seq, at, kind, data, prev_hash, hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            run.as_str(),
            seq as i64,
            now.as_millis(),
            kind,
            data_text,
            prev_hash,
            hash
        ],
    )?;
    tx.execute(
        "UPDATE runs SET event_seq = ?2, event_head = ?3 WHERE id = ?1",
        params![run.as_str(), seq as i64, hash],
    )?;
    Ok(Event {
        run_id: run.clone(),
        seq,
        at: now,
        kind: kind.clone(),
        data: data.clone(),
        prev_hash,
        hash,
    })
}

fn check_fence(
    tx: &Transaction<'_>,
    id: &RunId,
    epoch: u64,
    now: Timestamp,
) -> TxResult<RunStatus> {
    let row = tx
        .query_row(
            "SELECT lease_owner, lease_epoch, lease_expires_at, status FROM runs WHERE id = ?1",
            [id.as_str()],
            |r| {
                Ok((
                    r.get::<_, Option<String>>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Option<i64>>(2)?,
                    r.get::<_, String>(3)?,
                ))
            },
        )
        .optional()?;
    let Some((owner, current, expires, status)) = row else {
        return Err(run_not_found(id).into());
    };
    let lost = |why: String| -> TxError {
        Error::new(
            ErrorKind::LeaseLost,
            format!("run {id}: {why}; stop working on this run"),
        )
        .into()
    };
    if current as u64 != epoch {
        return Err(lost(format!(
            "lease epoch {epoch} is no longer current (epoch {current} belongs to {})",
            owner.as_deref().unwrap_or("nobody")
        )));
    }
    let Some(_) = owner else {
        return Err(lost(format!("the lease of epoch {epoch} was released")));
    };
    match expires {
        Some(at) if at > now.as_millis() => {}
        at => {
            return Err(lost(format!(
                "the lease of epoch {epoch} expired at {} (renew well within the TTL; \
                 acquire a new lease to continue)",
                Timestamp::from_millis(at.unwrap_or(0))
            )));
        }
    }
    Ok(status.parse()?)
}

fn refuse_closed(id: &RunId, status: RunStatus) -> TxResult<()> {
    if status.is_closed() {
        return Err(Error::new(
            ErrorKind::Conflict,
            format!("run {id} is {status} and closed; start a new run instead"),
        )
        .into());
    }
    Ok(())
}

fn load_run(tx: &Transaction<'_>, id: &RunId) -> TxResult<Run> {
    tx.query_row(
        &format!("SELECT {RUN_COLS} FROM runs WHERE id = ?1"),
        [id.as_str()],
        run_from_row,
    )
    .optional()?
    .ok_or_else(|| run_not_found(id).into())
}

fn load_attempt(
    tx: &Transaction<'_>,
    run: &RunId,
    step: u32,
    attempt: u32,
) -> TxResult<Option<StepAttempt>> {
    Ok(tx
        .query_row(
            &format!(
                "SELECT {ATTEMPT_COLS} FROM step_attempts WHERE run_id = ?1 AND step_index = ?2 AND attempt = ?3"
            ),
            params![run.as_str(), step, attempt],
            attempt_from_row,
        )
        .optional()?)
}

fn load_attempts(tx: &Transaction<'_>, run: &RunId) -> TxResult<Vec<StepAttempt>> {
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {ATTEMPT_COLS} FROM step_attempts WHERE run_id = ?1 ORDER BY step_index, attempt"
    ))?;
    let rows = stmt.query_map([run.as_str()], attempt_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn load_events(tx: &Transaction<'_>, run: &RunId, after: u64) -> TxResult<Vec<Event>> {
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {EVENT_COLS} FROM events WHERE run_id = ?1 AND seq > ?2 ORDER BY seq"
    ))?;
    let rows = stmt.query_map(params![run.as_str(), after as i64], event_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn load_flag(tx: &Transaction<'_>, name: &str) -> TxResult<Option<Flag>> {
    Ok(tx
        .query_row(
            &format!("SELECT {FLAG_COLS} FROM flags WHERE name = ?1"),
            [name],
            flag_from_row,
        )
        .optional()?)
}

fn load_schedule(tx: &Transaction<'_>, name: &str) -> TxResult<ScheduleRecord> {
    tx.query_row(
        &format!("SELECT {SCHEDULE_COLS} FROM schedules WHERE name = ?1"),
        [name],
        schedule_from_row,
    )
    .optional()?
    .ok_or_else(|| {
        Error::new(
            ErrorKind::NotFound,
            format!("schedule `{name}` does not exist; list schedules to see the names"),
        )
        .into()
    })
}

fn load_fire(tx: &Transaction<'_>, schedule: &str, due_at: Timestamp) -> TxResult<Fire> {
    Ok(tx.query_row(
        &format!("SELECT {FIRE_COLS} FROM schedule_fires WHERE schedule = ?1 AND due_at = ?2"),
        params![schedule, due_at.as_millis()],
        fire_from_row,
    )?)
}

fn load_approval(tx: &Transaction<'_>, id: &ApprovalId) -> TxResult<Approval> {
    let mut approval = tx
        .query_row(
            &format!("SELECT {APPROVAL_COLS} FROM approvals WHERE id = ?1"),
            [id.as_str()],
            approval_from_row,
        )
        .optional()?
        .ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                format!("approval {id} does not exist; list the run's approvals to find its id"),
            )
        })?;
    let mut stmt = tx.prepare_cached(
        "SELECT who, decision, at, comment FROM approval_votes WHERE approval_id = ?1 ORDER BY at, who",
    )?;
    let votes = stmt.query_map([id.as_str()], |r| {
        Ok((
            r.get::<_, String>(1)?,
            ApprovalVote {
                who: r.get(0)?,
                at: Timestamp::from_millis(r.get(2)?),
                comment: r.get(3)?,
            },
        ))
    })?;
    for vote in votes {
        let (decision, vote) = vote?;
        if decision == "approve" {
            approval.approvals.push(vote);
        } else {
            approval.denial = Some(vote);
        }
    }
    Ok(approval)
}

/// Turns an open approval past its expiry into `timed_out`; returns whether it did.
fn time_out_if_expired(
    tx: &Transaction<'_>,
    approval: &mut Approval,
    now: Timestamp,
) -> TxResult<bool> {
    let open = matches!(
        approval.status,
        ApprovalStatus::Pending | ApprovalStatus::Approved
    );
    if open && now >= approval.expires_at {
        tx.execute(
            "UPDATE approvals SET status = 'timed_out' WHERE id = ?1",
            [approval.id.as_str()],
        )?;
        approval.status = ApprovalStatus::TimedOut;
        return Ok(true);
    }
    Ok(false)
}

fn approval_closed(approval: &Approval) -> Error {
    let hint = match approval.status {
        ApprovalStatus::TimedOut => format!(
            "timed out at {}; request a new approval",
            approval.expires_at
        ),
        ApprovalStatus::Consumed => "was already used (single use); request a new approval".into(),
        ApprovalStatus::Denied => format!(
            "was denied by {}; request a new approval",
            approval
                .denial
                .as_ref()
                .map_or("someone", |d| d.who.as_str())
        ),
        ApprovalStatus::Approved => "is already approved".into(),
        ApprovalStatus::Pending => format!(
            "is pending with {} of {} approvals",
            approval.approvals.len(),
            approval.quorum
        ),
    };
    Error::new(
        ErrorKind::Conflict,
        format!("approval {} {hint}", approval.id),
    )
}

fn check_approver(approval: &Approval, who: &str, approving: bool) -> Result<()> {
    non_empty(who, "approver name")?;
    if !approval.approvers.is_empty() && !approval.approvers.iter().any(|a| a == who) {
        return Err(Error::new(
            ErrorKind::PolicyDenied,
            format!(
                "{who} is not an approver of approval {} (approvers: {}); ask one of them",
                approval.id,
                approval.approvers.join(", ")
            ),
        ));
    }
    if approving && approval.exclude_starter && approval.starter.as_deref() == Some(who) {
        return Err(Error::new(
            ErrorKind::PolicyDenied,
            format!(
                "{who} started run {} and this approval excludes the starter; ask another approver",
                approval.run_id
            ),
        ));
    }
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_run(&self, new: NewRun) -> Result<Run> {
        non_empty(&new.runbook, "runbook name")?;
        let params = serde_json::to_string(&new.params)
            .map_err(|e| Error::invalid(format!("the run parameters are not JSON: {e}")))?;
        self.write(move |tx, now| {
            let id = RunId::generate();
            insert_run(tx, &id, &new, &params, None, now)?;
            load_run(tx, &id)
        })
        .await
    }

    async fn get_run(&self, id: &RunId) -> Result<Run> {
        let id = id.clone();
        self.read(move |tx, _| load_run(tx, &id)).await
    }

    async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<Run>> {
        let filter = filter.clone();
        self.read(move |tx, _| {
            let mut sql = format!("SELECT {RUN_COLS} FROM runs WHERE 1 = 1");
            let mut args: Vec<rusqlite::types::Value> = Vec::new();
            if !filter.statuses.is_empty() {
                let marks = vec!["?"; filter.statuses.len()].join(", ");
                sql.push_str(&format!(" AND status IN ({marks})"));
                args.extend(filter.statuses.iter().map(|s| s.as_str().to_owned().into()));
            }
            if let Some(runbook) = &filter.runbook {
                sql.push_str(" AND runbook = ?");
                args.push(runbook.clone().into());
            }
            if let Some(schedule) = &filter.schedule {
                sql.push_str(" AND fire_schedule = ?");
                args.push(schedule.clone().into());
            }
            for (cond, value) in [
                (" AND created_at >= ?", filter.created_after),
                (" AND created_at < ?", filter.created_before),
                (" AND updated_at >= ?", filter.updated_after),
            ] {
                if let Some(t) = value {
                    sql.push_str(cond);
                    args.push(t.as_millis().into());
                }
            }
            sql.push_str(" ORDER BY created_at DESC, id DESC");
            if let Some(limit) = filter.limit {
                sql.push_str(&format!(" LIMIT {limit}"));
            }
            let mut stmt = tx.prepare(&sql)?;
            let rows = stmt.query_map(rusqlite::params_from_iter(args), run_from_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    async fn update_run(&self, id: &RunId, epoch: u64, update: RunUpdate) -> Result<Run> {
        let id = id.clone();
        self.write(move |tx, now| {
            let status = check_fence(tx, &id, epoch, now)?;
            refuse_closed(&id, status)?;
            let current = load_run(tx, &id)?;
            let error = match &update.error {
                Some(e) => e.clone(),
                None => current.error.clone(),
            };
            tx.execute(
                "UPDATE runs SET status = ?2, current_step = ?3, error = ?4, updated_at = ?5 WHERE id = ?1",
                params![
                    id.as_str(),
                    update.status.unwrap_or(current.status).as_str(),
                    update.current_step.unwrap_or(current.current_step),
                    error,
                    now.as_millis()
                ],
            )?;
            load_run(tx, &id)
        })
        .await
    }

    async fn run_details(&self, id: &RunId) -> Result<RunDetails> {
        let id = id.clone();
        self.read(move |tx, _| {
            Ok(RunDetails {
                run: load_run(tx, &id)?,
                attempts: load_attempts(tx, &id)?,
                events: load_events(tx, &id, 0)?,
            })
        })
        .await
    }

    async fn acquire_lease(&self, id: &RunId, owner: &str, ttl: Duration) -> Result<Lease> {
        positive_ttl(ttl, "lease")?;
        non_empty(owner, "lease owner")?;
        let (id, owner) = (id.clone(), owner.to_owned());
        self.write(move |tx, now| {
            let expires = now + ttl;
            let epoch: Option<i64> = tx
                .query_row(
                    "UPDATE runs SET lease_owner = ?2, lease_epoch = lease_epoch + 1, lease_expires_at = ?3
                     WHERE id = ?1 AND (lease_owner IS NULL OR lease_expires_at <= ?4)
                       AND status NOT IN ('succeeded', 'cancelled', 'compensated')
                     RETURNING lease_epoch",
                    params![id.as_str(), owner, expires.as_millis(), now.as_millis()],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(epoch) = epoch {
                return Ok(Lease {
                    owner: owner.clone(),
                    epoch: epoch as u64,
                    expires_at: expires,
                });
            }
            let run = load_run(tx, &id)?;
            refuse_closed(&id, run.status)?;
            let lease = run.lease.expect("a refused acquire means a held lease");
            Err(Error::new(
                ErrorKind::Conflict,
                format!(
                    "run {id} is leased by {} until {} (epoch {}); wait for the lease to expire \
                     or be released",
                    lease.owner, lease.expires_at, lease.epoch
                ),
            )
            .into())
        })
        .await
    }

    async fn renew_lease(
        &self,
        id: &RunId,
        owner: &str,
        epoch: u64,
        ttl: Duration,
    ) -> Result<Lease> {
        positive_ttl(ttl, "lease")?;
        let (id, owner) = (id.clone(), owner.to_owned());
        self.write(move |tx, now| {
            check_fence(tx, &id, epoch, now)?;
            let run = load_run(tx, &id)?;
            let holder = run.lease.map(|l| l.owner).unwrap_or_default();
            if holder != owner {
                return Err(Error::new(
                    ErrorKind::LeaseLost,
                    format!("run {id}: epoch {epoch} is held by {holder}, not {owner}; stop working on this run"),
                )
                .into());
            }
            let expires = now + ttl;
            tx.execute(
                "UPDATE runs SET lease_expires_at = ?2 WHERE id = ?1",
                params![id.as_str(), expires.as_millis()],
            )?;
            Ok(Lease {
                owner: owner.clone(),
                epoch,
                expires_at: expires,
            })
        })
        .await
    }

    async fn release_lease(&self, id: &RunId, epoch: u64) -> Result<()> {
        let id = id.clone();
        self.write(move |tx, _| {
            let n = tx.execute(
                "UPDATE runs SET lease_owner = NULL, lease_expires_at = NULL
                 WHERE id = ?1 AND lease_epoch = ?2 AND lease_owner IS NOT NULL",
                params![id.as_str(), epoch as i64],
            )?;
            if n == 0 {
                let run = load_run(tx, &id)?;
                return Err(Error::new(
                    ErrorKind::LeaseLost,
                    format!(
                        "run {id}: epoch {epoch} does not hold the lease (current epoch {}, {}); nothing to release",
                        run.epoch,
                        if run.lease.is_some() { "held" } else { "released" }
                    ),
                )
                .into());
            }
            Ok(())
        })
        .await
    }

    async fn expired_leases(&self, now: Timestamp) -> Result<Vec<Run>> {
        self.read(move |tx, _| {
            let mut stmt = tx.prepare_cached(&format!(
                "SELECT {RUN_COLS} FROM runs WHERE lease_owner IS NOT NULL AND lease_expires_at <= ?1
                 ORDER BY lease_expires_at"
            ))?;
            let rows = stmt.query_map([now.as_millis()], run_from_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    async fn mark_orphaned(&self, now: Timestamp) -> Result<Vec<Run>> {
        self.write(move |tx, _| {
            let mut stmt = tx.prepare_cached(&format!(
                "UPDATE runs SET status = 'orphaned', lease_owner = NULL, lease_expires_at = NULL,
                        updated_at = ?1
                 WHERE status IN ('running', 'compensating')
                   AND (lease_owner IS NULL OR lease_expires_at <= ?1)
                 RETURNING {RUN_COLS}"
            ))?;
            let rows = stmt.query_map([now.as_millis()], run_from_row)?;
            let mut runs: Vec<Run> = rows.collect::<rusqlite::Result<_>>()?;
            runs.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
            Ok(runs)
        })
        .await
    }

    async fn record_intent(
        &self,
        run: &RunId,
        epoch: u64,
        step_index: u32,
        step_id: &str,
        attempt: u32,
    ) -> Result<StepAttempt> {
        non_empty(step_id, "step id")?;
        if attempt == 0 {
            return Err(Error::invalid("attempt numbers start at 1"));
        }
        let (run, step_id) = (run.clone(), step_id.to_owned());
        self.write(move |tx, now| intent_tx(tx, now, &run, epoch, step_index, &step_id, attempt))
            .await
    }

    async fn record_result(
        &self,
        run: &RunId,
        epoch: u64,
        step_index: u32,
        attempt: u32,
        result: StepResult,
    ) -> Result<StepAttempt> {
        let output = checked_result(&result)?;
        let run = run.clone();
        self.write(move |tx, now| {
            result_tx(tx, now, &run, epoch, step_index, attempt, &result, &output)
        })
        .await
    }

    async fn mark_outcome_unknown(&self, run: &RunId, epoch: u64) -> Result<Vec<StepAttempt>> {
        let run = run.clone();
        self.write(move |tx, now| {
            check_fence(tx, &run, epoch, now)?;
            let mut stmt = tx.prepare_cached(&format!(
                "UPDATE step_attempts SET status = 'outcome_unknown'
                 WHERE run_id = ?1 AND status = 'intent' RETURNING {ATTEMPT_COLS}"
            ))?;
            let rows = stmt.query_map([run.as_str()], attempt_from_row)?;
            let mut attempts: Vec<StepAttempt> = rows.collect::<rusqlite::Result<_>>()?;
            attempts.sort_by_key(|a| (a.step_index, a.attempt));
            Ok(attempts)
        })
        .await
    }

    async fn record_compensation(
        &self,
        run: &RunId,
        epoch: u64,
        step_index: u32,
        attempt: u32,
        status: AttemptStatus,
        error: Option<String>,
    ) -> Result<StepAttempt> {
        use AttemptStatus as A;
        let allowed_from: &'static [AttemptStatus] = match status {
            A::Compensating => &[A::Succeeded, A::Compensating, A::CompensationFailed],
            A::Compensated | A::CompensationFailed => &[A::Compensating],
            other => {
                return Err(Error::invalid(format!(
                    "a compensation status is compensating, compensated or compensation_failed, not {other}"
                )));
            }
        };
        let run = run.clone();
        self.write(move |tx, now| {
            check_fence(tx, &run, epoch, now)?;
            let Some(existing) = load_attempt(tx, &run, step_index, attempt)? else {
                return Err(Error::new(
                    ErrorKind::NotFound,
                    format!("run {run}: step {step_index} attempt {attempt} does not exist"),
                )
                .into());
            };
            if !allowed_from.contains(&existing.status) {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!(
                        "run {run}: step {step_index} attempt {attempt} is {}; it cannot become {status}",
                        existing.status
                    ),
                )
                .into());
            }
            tx.execute(
                "UPDATE step_attempts SET status = ?4, error = ?5, finished_at = ?6
                 WHERE run_id = ?1 AND step_index = ?2 AND attempt = ?3",
                params![
                    run.as_str(),
                    step_index,
                    attempt,
                    status.as_str(),
                    error.clone().or(existing.error.clone()),
                    now.as_millis()
                ],
            )?;
            Ok(load_attempt(tx, &run, step_index, attempt)?.expect("exists"))
        })
        .await
    }

    async fn list_attempts(&self, run: &RunId) -> Result<Vec<StepAttempt>> {
        let run = run.clone();
        self.read(move |tx, _| {
            load_run(tx, &run)?;
            load_attempts(tx, &run)
        })
        .await
    }

    async fn append_event(
        &self,
        run: &RunId,
        epoch: Option<u64>,
        kind: &str,
        data: Value,
    ) -> Result<Event> {
        non_empty(kind, "event kind")?;
        let (run, kind) = (run.clone(), kind.to_owned());
        let data_text = chain::canonical_json(&data);
        self.write(move |tx, now| append_tx(tx, now, &run, epoch, &kind, &data, &data_text))
            .await
    }

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
        non_empty(step_id, "step id")?;
        non_empty(kind, "event kind")?;
        if attempt == 0 {
            return Err(Error::invalid("attempt numbers start at 1"));
        }
        let (run, step_id, kind) = (run.clone(), step_id.to_owned(), kind.to_owned());
        self.write(move |tx, now| {
            let stored = intent_tx(tx, now, &run, epoch, step_index, &step_id, attempt)?;
            tx.execute(
                "UPDATE runs SET current_step = ?2, updated_at = ?3 WHERE id = ?1",
                params![run.as_str(), step_index, now.as_millis()],
            )?;
            let data = super::with_idempotency_key(data.clone(), &stored);
            let text = chain::canonical_json(&data);
            let event = append_tx(tx, now, &run, Some(epoch), &kind, &data, &text)?;
            Ok((stored, event))
        })
        .await
    }

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
        non_empty(kind, "event kind")?;
        let output = checked_result(&result)?;
        let (run, kind) = (run.clone(), kind.to_owned());
        let data_text = chain::canonical_json(&data);
        self.write(move |tx, now| {
            let stored = result_tx(tx, now, &run, epoch, step_index, attempt, &result, &output)?;
            let event = append_tx(tx, now, &run, Some(epoch), &kind, &data, &data_text)?;
            Ok((stored, event))
        })
        .await
    }

    async fn list_events(&self, run: &RunId, after_seq: u64) -> Result<Vec<Event>> {
        let run = run.clone();
        self.read(move |tx, _| {
            load_run(tx, &run)?;
            load_events(tx, &run, after_seq)
        })
        .await
    }

    async fn verify_events(&self, run: &RunId) -> Result<ChainReport> {
        let run = run.clone();
        self.read(move |tx, _| {
            let (head_seq, head_hash): (i64, String) = tx
                .query_row(
                    "SELECT event_seq, event_head FROM runs WHERE id = ?1",
                    [run.as_str()],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?
                .ok_or_else(|| run_not_found(&run))?;
            let mut stmt = tx.prepare_cached(
                "SELECT seq, at, kind, data, prev_hash, hash FROM events WHERE run_id = ?1 ORDER BY seq",
            )?;
            let rows = stmt.query_map([run.as_str()], |r| {
                Ok(chain::RawEvent {
                    seq: r.get::<_, i64>(0)? as u64,
                    at: Timestamp::from_millis(r.get(1)?),
                    kind: r.get(2)?,
                    data: r.get(3)?,
                    prev_hash: r.get(4)?,
                    hash: r.get(5)?,
                })
            })?;
            let events: Vec<_> = rows.collect::<rusqlite::Result<_>>()?;
            Ok(chain::verify_chain(&run, &events, head_seq as u64, &head_hash))
        })
        .await
    }

    async fn set_flag(
        &self,
        name: &str,
        owner: &str,
        ttl: Duration,
        reason: Option<&str>,
    ) -> Result<Flag> {
        non_empty(name, "flag name")?;
        non_empty(owner, "flag owner")?;
        positive_ttl(ttl, "flag")?;
        let (name, owner, reason) = (name.to_owned(), owner.to_owned(), reason.map(str::to_owned));
        self.write(move |tx, now| {
            let existing = load_flag(tx, &name)?.filter(|f| f.expires_at > now);
            let set_at = match &existing {
                Some(f) if f.owner != owner => {
                    return Err(Error::new(
                        ErrorKind::Conflict,
                        format!(
                            "flag `{name}` is held by {} until {}{}; wait for it to expire or ask its owner to clear it",
                            f.owner,
                            f.expires_at,
                            f.reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default()
                        ),
                    )
                    .into());
                }
                Some(f) => f.set_at,
                None => now,
            };
            tx.execute(
                "INSERT INTO flags (name, owner, reason, set_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, reason = excluded.reason,
                     set_at = excluded.set_at, expires_at = excluded.expires_at",
                params![name, owner, reason, set_at.as_millis(), (now + ttl).as_millis()],
            )?;
            Ok(load_flag(tx, &name)?.expect("just written"))
        })
        .await
    }

    async fn renew_flag(&self, name: &str, owner: &str, ttl: Duration) -> Result<Flag> {
        positive_ttl(ttl, "flag")?;
        let (name, owner) = (name.to_owned(), owner.to_owned());
        self.write(
            move |tx, now| match load_flag(tx, &name)?.filter(|f| f.expires_at > now) {
                None => Err(Error::new(
                    ErrorKind::NotFound,
                    format!("flag `{name}` is not set (or expired); set it again"),
                )
                .into()),
                Some(f) if f.owner != owner => Err(Error::new(
                    ErrorKind::Conflict,
                    format!(
                        "flag `{name}` is held by {}, not {owner}; only its owner renews it",
                        f.owner
                    ),
                )
                .into()),
                Some(_) => {
                    tx.execute(
                        "UPDATE flags SET expires_at = ?2 WHERE name = ?1",
                        params![name, (now + ttl).as_millis()],
                    )?;
                    Ok(load_flag(tx, &name)?.expect("exists"))
                }
            },
        )
        .await
    }

    async fn clear_flag(&self, name: &str, owner: Option<&str>) -> Result<bool> {
        let (name, owner) = (name.to_owned(), owner.map(str::to_owned));
        self.write(move |tx, now| {
            let live = load_flag(tx, &name)?.filter(|f| f.expires_at > now);
            if let (Some(f), Some(owner)) = (&live, &owner) {
                if &f.owner != owner {
                    return Err(Error::new(
                        ErrorKind::Conflict,
                        format!(
                            "flag `{name}` is held by {}, not {owner}; ask its owner, or clear it as an operator override",
                            f.owner
                        ),
                    )
                    .into());
                }
            }
            tx.execute("DELETE FROM flags WHERE name = ?1", [&name])?;
            Ok(live.is_some())
        })
        .await
    }

    async fn clear_flags_owned_by(&self, owner: &str) -> Result<Vec<String>> {
        let owner = owner.to_owned();
        self.write(move |tx, _| {
            let mut stmt =
                tx.prepare_cached("DELETE FROM flags WHERE owner = ?1 RETURNING name")?;
            let rows = stmt.query_map([&owner], |r| r.get::<_, String>(0))?;
            let mut names: Vec<String> = rows.collect::<rusqlite::Result<_>>()?;
            names.sort();
            Ok(names)
        })
        .await
    }

    async fn get_flag(&self, name: &str) -> Result<Option<Flag>> {
        let name = name.to_owned();
        self.read(move |tx, now| Ok(load_flag(tx, &name)?.filter(|f| f.expires_at > now)))
            .await
    }

    async fn list_flags(&self) -> Result<Vec<Flag>> {
        self.read(move |tx, now| {
            let mut stmt = tx.prepare_cached(&format!(
                "SELECT {FLAG_COLS} FROM flags WHERE expires_at > ?1 ORDER BY name"
            ))?;
            let rows = stmt.query_map([now.as_millis()], flag_from_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    async fn set_unlock_code(
        &self,
        name: &str,
        code: &str,
        ttl: Duration,
        issuer: &CodeIssuer,
    ) -> Result<UnlockCode> {
        non_empty(name, "unlock-code name")?;
        positive_ttl(ttl, "unlock code")?;
        let (name, code, iterations) = (name.to_owned(), code.to_owned(), self.unlock_iterations);
        let hash = Pool::blocking(move || unlock::hash_code(&code, iterations)).await?;
        let issuer = issuer.clone();
        self.write(move |tx, now| write_unlock(tx, &name, &hash, now, ttl, &issuer, false))
            .await
    }

    async fn verify_unlock_code(&self, name: &str, code: &str) -> Result<UnlockCheck> {
        let name = name.to_owned();
        let row = self
            .read(move |tx, now| {
                let row = tx
                    .query_row(
                        "SELECT hash, expires_at FROM unlock_codes WHERE name = ?1",
                        [&name],
                        |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
                    )
                    .optional()?;
                Ok(row.map(|(hash, expires)| (hash, expires <= now.as_millis())))
            })
            .await?;
        let Some((hash, expired)) = row else {
            return Ok(UnlockCheck::NotSet);
        };
        let code = code.to_owned();
        let matches = Pool::blocking(move || unlock::verify_code(&hash, &code)).await?;
        Ok(match (matches, expired) {
            (false, _) => UnlockCheck::Invalid,
            (true, true) => UnlockCheck::Expired,
            (true, false) => UnlockCheck::Valid,
        })
    }

    async fn rotate_unlock_code(
        &self,
        name: &str,
        ttl: Duration,
        issuer: &CodeIssuer,
    ) -> Result<(UnlockCode, String)> {
        positive_ttl(ttl, "unlock code")?;
        let iterations = self.unlock_iterations;
        let (code, hash) = Pool::blocking(move || {
            let code = unlock::generate_code()?;
            let hash = unlock::hash_code(&code, iterations)?;
            Ok((code, hash))
        })
        .await?;
        let name = name.to_owned();
        let issuer = issuer.clone();
        let record = self
            .write(move |tx, now| write_unlock(tx, &name, &hash, now, ttl, &issuer, true))
            .await?;
        Ok((record, code))
    }

    async fn get_unlock_code(&self, name: &str) -> Result<Option<UnlockCode>> {
        let name = name.to_owned();
        self.read(move |tx, _| load_unlock(tx, &name)).await
    }

    async fn clear_unlock_code(&self, name: &str) -> Result<bool> {
        let name = name.to_owned();
        self.write(move |tx, _| {
            Ok(tx.execute("DELETE FROM unlock_codes WHERE name = ?1", [&name])? > 0)
        })
        .await
    }

    async fn put_schedule(&self, def: ScheduleDef) -> Result<ScheduleRecord> {
        non_empty(&def.name, "schedule name")?;
        non_empty(&def.spec, "schedule spec")?;
        non_empty(&def.runbook, "schedule runbook")?;
        let params = serde_json::to_string(&def.params)
            .map_err(|e| Error::invalid(format!("the schedule parameters are not JSON: {e}")))?;
        self.write(move |tx, now| {
            tx.execute(
                "INSERT INTO schedules (name, spec, time_zone, runbook, params, misfire, catch_up_ms,
                     overlap, enabled, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)
                 ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, time_zone = excluded.time_zone,
                     runbook = excluded.runbook, params = excluded.params, misfire = excluded.misfire,
                     catch_up_ms = excluded.catch_up_ms, overlap = excluded.overlap,
                     enabled = excluded.enabled, updated_at = excluded.updated_at",
                params![
                    def.name,
                    def.spec,
                    def.time_zone,
                    def.runbook,
                    params,
                    def.misfire.as_str(),
                    def.catch_up.map(|d| d.as_millis() as i64),
                    def.overlap.as_str(),
                    def.enabled,
                    now.as_millis()
                ],
            )?;
            load_schedule(tx, &def.name)
        })
        .await
    }

    async fn get_schedule(&self, name: &str) -> Result<ScheduleRecord> {
        let name = name.to_owned();
        self.read(move |tx, _| load_schedule(tx, &name)).await
    }

    async fn list_schedules(&self) -> Result<Vec<ScheduleRecord>> {
        self.read(move |tx, _| {
            let mut stmt = tx.prepare_cached(&format!(
                "SELECT {SCHEDULE_COLS} FROM schedules ORDER BY name"
            ))?;
            let rows = stmt.query_map([], schedule_from_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    async fn set_schedule_enabled(&self, name: &str, enabled: bool) -> Result<ScheduleRecord> {
        let name = name.to_owned();
        self.write(move |tx, now| {
            tx.execute(
                "UPDATE schedules SET enabled = ?2, updated_at = ?3 WHERE name = ?1",
                params![name, enabled, now.as_millis()],
            )?;
            load_schedule(tx, &name)
        })
        .await
    }

    async fn delete_schedule(&self, name: &str) -> Result<bool> {
        let name = name.to_owned();
        self.write(move |tx, _| {
            Ok(tx.execute("DELETE FROM schedules WHERE name = ?1", [&name])? > 0)
        })
        .await
    }

    async fn claim_fire_and_create_run(
        &self,
        schedule: &str,
        due_at: Timestamp,
        run: NewRun,
    ) -> Result<Claim<Run>> {
        non_empty(schedule, "schedule name")?;
        non_empty(&run.runbook, "runbook name")?;
        let params = serde_json::to_string(&run.params)
            .map_err(|e| Error::invalid(format!("the run parameters are not JSON: {e}")))?;
        let schedule = schedule.to_owned();
        self.write(move |tx, now| {
            let inserted = tx.execute(
                "INSERT INTO schedule_fires (schedule, due_at, status, recorded_at)
                 VALUES (?1, ?2, 'dispatched', ?3) ON CONFLICT DO NOTHING",
                params![schedule, due_at.as_millis(), now.as_millis()],
            )?;
            if inserted == 0 {
                return Ok(Claim::AlreadyClaimed(load_fire(tx, &schedule, due_at)?));
            }
            let id = RunId::generate();
            let fire = FireRef {
                schedule: schedule.clone(),
                due_at,
            };
            insert_run(tx, &id, &run, &params, Some(&fire), now)?;
            tx.execute(
                "UPDATE schedule_fires SET run_id = ?3 WHERE schedule = ?1 AND due_at = ?2",
                params![schedule, due_at.as_millis(), id.as_str()],
            )?;
            Ok(Claim::Claimed(load_run(tx, &id)?))
        })
        .await
    }

    async fn record_fire(
        &self,
        schedule: &str,
        due_at: Timestamp,
        status: FireStatus,
        reason: &str,
    ) -> Result<Claim<Fire>> {
        non_empty(schedule, "schedule name")?;
        if status == FireStatus::Dispatched {
            return Err(Error::invalid(
                "record_fire records skipped or missed due times; dispatch with claim_fire_and_create_run",
            ));
        }
        let (schedule, reason) = (schedule.to_owned(), reason.to_owned());
        self.write(move |tx, now| {
            let inserted = tx.execute(
                "INSERT INTO schedule_fires (schedule, due_at, status, reason, recorded_at)
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
                params![
                    schedule,
                    due_at.as_millis(),
                    status.as_str(),
                    reason,
                    now.as_millis()
                ],
            )?;
            let fire = load_fire(tx, &schedule, due_at)?;
            Ok(if inserted == 0 {
                Claim::AlreadyClaimed(fire)
            } else {
                Claim::Claimed(fire)
            })
        })
        .await
    }

    async fn list_fires(
        &self,
        schedule: &str,
        after: Option<Timestamp>,
        limit: Option<u32>,
    ) -> Result<Vec<Fire>> {
        let schedule = schedule.to_owned();
        self.read(move |tx, _| {
            let mut stmt = tx.prepare_cached(&format!(
                "SELECT {FIRE_COLS} FROM schedule_fires WHERE schedule = ?1 AND due_at > ?2
                 ORDER BY due_at LIMIT ?3"
            ))?;
            let rows = stmt.query_map(
                params![
                    schedule,
                    after.map_or(i64::MIN, Timestamp::as_millis),
                    limit.map_or(-1, i64::from)
                ],
                fire_from_row,
            )?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    async fn last_fire(&self, schedule: &str) -> Result<Option<Fire>> {
        let schedule = schedule.to_owned();
        self.read(move |tx, _| {
            Ok(tx
                .query_row(
                    &format!(
                        "SELECT {FIRE_COLS} FROM schedule_fires WHERE schedule = ?1 ORDER BY due_at DESC LIMIT 1"
                    ),
                    [&schedule],
                    fire_from_row,
                )
                .optional()?)
        })
        .await
    }

    async fn last_fires(&self) -> Result<std::collections::HashMap<String, Fire>> {
        self.read(move |tx, _| {
            // One primary-key lookup (schedule, due_at) per stored schedule: the cost follows the
            // number of schedules, not the size of the ledger.
            let mut stmt = tx.prepare(
                "SELECT f.schedule, f.due_at, f.status, f.run_id, f.reason, f.recorded_at
                 FROM schedules s
                 JOIN schedule_fires f ON f.schedule = s.name
                  AND f.due_at = (SELECT MAX(due_at) FROM schedule_fires WHERE schedule = s.name)",
            )?;
            let rows = stmt.query_map([], fire_from_row)?;
            let mut out = std::collections::HashMap::new();
            for fire in rows {
                let fire = fire?;
                out.insert(fire.schedule.clone(), fire);
            }
            Ok(out)
        })
        .await
    }

    async fn create_approval(&self, new: NewApproval) -> Result<Approval> {
        if new.quorum == 0 {
            return Err(Error::invalid("an approval quorum is at least 1"));
        }
        non_empty(&new.plan_digest, "plan digest")?;
        positive_ttl(new.ttl, "approval")?;
        if !new.approvers.is_empty() && (new.approvers.len() as u32) < new.quorum {
            return Err(Error::invalid(format!(
                "the quorum {} is larger than the {} listed approvers; list more approvers or lower the quorum",
                new.quorum,
                new.approvers.len()
            )));
        }
        let approvers = serde_json::to_string(&new.approvers)
            .map_err(|e| Error::invalid(format!("approvers: {e}")))?;
        self.write(move |tx, now| {
            let run = load_run(tx, &new.run_id)?;
            let id = ApprovalId::generate();
            tx.execute(
                "INSERT INTO approvals (id, run_id, step_index, attempt, plan_digest, quorum, approvers,
                     exclude_starter, starter, status, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'pending', ?10, ?11)",
                params![
                    id.as_str(),
                    run.id.as_str(),
                    new.step_index,
                    new.attempt,
                    new.plan_digest,
                    new.quorum,
                    approvers,
                    new.exclude_starter,
                    run.started_by,
                    now.as_millis(),
                    (now + new.ttl).as_millis()
                ],
            )?;
            load_approval(tx, &id)
        })
        .await
    }

    async fn get_approval(&self, id: &ApprovalId) -> Result<Approval> {
        let id = id.clone();
        self.read(move |tx, _| load_approval(tx, &id)).await
    }

    async fn list_approvals(&self, run: &RunId) -> Result<Vec<Approval>> {
        let run = run.clone();
        self.read(move |tx, _| {
            load_run(tx, &run)?;
            let ids: Vec<String> = {
                let mut stmt = tx.prepare_cached(
                    "SELECT id FROM approvals WHERE run_id = ?1 ORDER BY created_at, id",
                )?;
                let rows = stmt.query_map([run.as_str()], |r| r.get(0))?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            ids.into_iter()
                .map(|id| load_approval(tx, &ApprovalId::from(id)))
                .collect()
        })
        .await
    }

    async fn approve(&self, id: &ApprovalId, who: &str, comment: Option<&str>) -> Result<Approval> {
        let (id, who, comment) = (id.clone(), who.to_owned(), comment.map(str::to_owned));
        self.write(move |tx, now| {
            let mut approval = load_approval(tx, &id)?;
            if time_out_if_expired(tx, &mut approval, now)? {
                return Ok(Err(approval_closed(&approval)));
            }
            let already = approval.approvals.iter().any(|v| v.who == who);
            match approval.status {
                ApprovalStatus::Pending => {}
                ApprovalStatus::Approved if already => return Ok(Ok(approval)),
                _ => return Ok(Err(approval_closed(&approval))),
            }
            check_approver(&approval, &who, true)?;
            if already {
                return Ok(Ok(approval));
            }
            tx.execute(
                "INSERT INTO approval_votes (approval_id, who, decision, at, comment)
                 VALUES (?1, ?2, 'approve', ?3, ?4)",
                params![id.as_str(), who, now.as_millis(), comment],
            )?;
            if approval.approvals.len() as u32 + 1 >= approval.quorum {
                tx.execute(
                    "UPDATE approvals SET status = 'approved' WHERE id = ?1",
                    [id.as_str()],
                )?;
            }
            Ok(Ok(load_approval(tx, &id)?))
        })
        .await?
    }

    async fn deny(&self, id: &ApprovalId, who: &str, comment: Option<&str>) -> Result<Approval> {
        let (id, who, comment) = (id.clone(), who.to_owned(), comment.map(str::to_owned));
        self.write(move |tx, now| {
            let mut approval = load_approval(tx, &id)?;
            if time_out_if_expired(tx, &mut approval, now)? {
                return Ok(Err(approval_closed(&approval)));
            }
            match approval.status {
                ApprovalStatus::Pending => {}
                ApprovalStatus::Denied
                    if approval.denial.as_ref().is_some_and(|d| d.who == who) =>
                {
                    return Ok(Ok(approval));
                }
                _ => return Ok(Err(approval_closed(&approval))),
            }
            check_approver(&approval, &who, false)?;
            tx.execute(
                "INSERT INTO approval_votes (approval_id, who, decision, at, comment)
                 VALUES (?1, ?2, 'deny', ?3, ?4)
                 ON CONFLICT (approval_id, who) DO UPDATE SET decision = 'deny', at = excluded.at,
                     comment = excluded.comment",
                params![id.as_str(), who, now.as_millis(), comment],
            )?;
            tx.execute(
                "UPDATE approvals SET status = 'denied' WHERE id = ?1",
                [id.as_str()],
            )?;
            Ok(Ok(load_approval(tx, &id)?))
        })
        .await?
    }

    async fn consume_approval(
        &self,
        id: &ApprovalId,
        epoch: u64,
        plan_digest: &str,
    ) -> Result<Approval> {
        let (id, digest) = (id.clone(), plan_digest.to_owned());
        self.write(move |tx, now| {
            let mut approval = load_approval(tx, &id)?;
            check_fence(tx, &approval.run_id, epoch, now)?;
            if time_out_if_expired(tx, &mut approval, now)? {
                return Ok(Err(approval_closed(&approval)));
            }
            if approval.status != ApprovalStatus::Approved {
                return Ok(Err(approval_closed(&approval)));
            }
            if approval.plan_digest != digest {
                return Ok(Err(Error::new(
                    ErrorKind::Conflict,
                    format!(
                        "approval {id} approved plan {} but the step now plans {digest}; the plan changed, request a new approval",
                        approval.plan_digest
                    ),
                )));
            }
            tx.execute(
                "UPDATE approvals SET status = 'consumed', consumed_at = ?2 WHERE id = ?1",
                params![id.as_str(), now.as_millis()],
            )?;
            Ok(Ok(load_approval(tx, &id)?))
        })
        .await?
    }

    async fn expire_approvals(&self, now: Timestamp) -> Result<Vec<Approval>> {
        self.write(move |tx, _| {
            let ids: Vec<String> = {
                let mut stmt = tx.prepare_cached(
                    "UPDATE approvals SET status = 'timed_out'
                     WHERE status IN ('pending', 'approved') AND expires_at <= ?1 RETURNING id",
                )?;
                let rows = stmt.query_map([now.as_millis()], |r| r.get(0))?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            let mut approvals = ids
                .into_iter()
                .map(|id| load_approval(tx, &ApprovalId::from(id)))
                .collect::<TxResult<Vec<_>>>()?;
            approvals.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
            Ok(approvals)
        })
        .await
    }
}

fn insert_run(
    tx: &Transaction<'_>,
    id: &RunId,
    new: &NewRun,
    params_json: &str,
    fire: Option<&FireRef>,
    now: Timestamp,
) -> TxResult<()> {
    if let Some(parent) = &new.parent {
        load_run(tx, parent)?;
    }
    tx.execute(
        "INSERT INTO runs (id, runbook, definition_hash, params, status, started_by, created_at,
             updated_at, parent_run_id, fire_schedule, fire_due_at, event_head)
         VALUES (?1, ?2, ?3, ?4, 'queued', ?5, ?6, ?6, ?7, ?8, ?9, ?10)",
        params![
            id.as_str(),
            new.runbook,
            new.definition_hash,
            params_json,
            new.started_by,
            now.as_millis(),
            new.parent.as_ref().map(RunId::as_str),
            fire.map(|f| f.schedule.as_str()),
            fire.map(|f| f.due_at.as_millis()),
            GENESIS_HASH
        ],
    )?;
    Ok(())
}

fn load_unlock(tx: &Transaction<'_>, name: &str) -> TxResult<Option<UnlockCode>> {
    Ok(tx
        .query_row(
            "SELECT name, created_at, expires_at, generation, issued_by, override_reason
             FROM unlock_codes WHERE name = ?1",
            [name],
            |r| {
                Ok(UnlockCode {
                    name: r.get(0)?,
                    created_at: Timestamp::from_millis(r.get(1)?),
                    expires_at: Timestamp::from_millis(r.get(2)?),
                    generation: r.get(3)?,
                    issued_by: r.get(4)?,
                    override_reason: r.get(5)?,
                })
            },
        )
        .optional()?)
}

fn write_unlock(
    tx: &Transaction<'_>,
    name: &str,
    hash: &str,
    now: Timestamp,
    ttl: Duration,
    issuer: &CodeIssuer,
    must_exist: bool,
) -> TxResult<UnlockCode> {
    let previous = load_unlock(tx, name)?;
    if must_exist && previous.is_none() {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!("no unlock code is set under `{name}`; set one before rotating it"),
        )
        .into());
    }
    let generation = previous.map_or(1, |p| p.generation + 1);
    tx.execute(
        "INSERT INTO unlock_codes
             (name, hash, created_at, expires_at, generation, issued_by, override_reason)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (name) DO UPDATE SET hash = excluded.hash, created_at = excluded.created_at,
             expires_at = excluded.expires_at, generation = excluded.generation,
             issued_by = excluded.issued_by, override_reason = excluded.override_reason",
        params![
            name,
            hash,
            now.as_millis(),
            (now + ttl).as_millis(),
            generation,
            issuer.by,
            issuer.override_reason
        ],
    )?;
    Ok(load_unlock(tx, name)?.expect("just written"))
}
