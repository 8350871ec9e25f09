//! [`Scheduler`]: turns due times into queued runs through the store's fire ledger.
//!
//! Any number of processes may tick the same store at once, without a leader. Every due time
//! is written to the ledger exactly once, keyed `(schedule, due_at)`: either claimed together
//! with the run it creates ([`Store::claim_fire_and_create_run`]), or recorded as `skipped` or
//! `missed` with a reason ([`Store::record_fire`]). A process that finds a due time already in
//! the ledger counts it as lost to another process and moves on.
//!
//! For each schedule, a tick walks the due times after the last one in the ledger (or after
//! the schedule's creation), oldest first, up to the tick's `now`:
//!
//! - **Misfires.** A due time older than the catch-up window (`catch_up`, default 60 s for
//!   `skip` and 1 h for the others) is recorded `missed`. Inside the window, `skip` runs only
//!   the latest due time and records the earlier ones `missed`; `fire_once` runs the latest
//!   and records the earlier ones `skipped`; `fire_all` runs each, at most
//!   [`MAX_CATCH_UP_RUNS`] per schedule per tick (the rest wait for the next tick).
//! - **Overlap**, against the schedule's runs that are not terminal: `skip` records the due
//!   time `skipped` while any is active; `buffer_one` while one is still queued; `allow` always
//!   runs. Across processes ticking the same instant the overlap check is best effort: two
//!   different due times may both run, the same due time never does.
//! - **Disabled** schedules record their due times `skipped`.
//!
//! A tick handles at most [`MAX_DUE_PER_TICK`] due times per schedule; a longer backlog
//! continues on the next tick. A schedule whose store call or runbook lookup fails is reported
//! in [`TickReport::errors`] and retried on the next tick from where it stopped.

use super::definition::{Schedule, catch_up_window, spec_of};
use super::spec::ScheduleSpec;
use crate::runbook::Runbook;
use crate::store::{
    Claim, Fire, FireStatus, MisfirePolicy, NewRun, OverlapPolicy, Run, RunFilter, RunId,
    RunStatus, ScheduleRecord, Store, Timestamp,
};
use crate::{Error, Result};
use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Due times one schedule handles in one tick; a longer backlog continues on the next tick.
pub const MAX_DUE_PER_TICK: usize = 1000;

/// Runs one `fire_all` schedule starts in one tick while catching up.
pub const MAX_CATCH_UP_RUNS: usize = 100;

/// The runbook a run pins: its name and definition hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedRunbook {
    /// The runbook's name.
    pub name: String,
    /// The hash of its definition.
    pub definition_hash: String,
}

/// Turns a schedule's runbook reference into the runbook its runs pin.
///
/// Called once per schedule per tick, only when a due time is about to run. Closures
/// `Fn(&str) -> Result<ResolvedRunbook>` implement it.
pub trait RunbookResolver: Send + Sync + 'static {
    /// The runbook `reference` names. An error leaves the due time unclaimed; the next tick
    /// tries again.
    fn resolve(&self, reference: &str) -> Result<ResolvedRunbook>;
}

impl<F> RunbookResolver for F
where
    F: Fn(&str) -> Result<ResolvedRunbook> + Send + Sync + 'static,
{
    fn resolve(&self, reference: &str) -> Result<ResolvedRunbook> {
        self(reference)
    }
}

/// The default resolver: the reference is a runbook file, loaded at each dispatch so a run
/// pins the definition as it is then.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunbookFiles;

impl RunbookResolver for RunbookFiles {
    fn resolve(&self, reference: &str) -> Result<ResolvedRunbook> {
        let runbook = Runbook::load(reference)?;
        Ok(ResolvedRunbook {
            definition_hash: runbook.definition_hash(),
            name: runbook.name,
        })
    }
}

/// A due time this process claimed, with the run it created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dispatched {
    /// The schedule.
    pub schedule: String,
    /// The due time.
    pub due_at: Timestamp,
    /// The queued run.
    pub run_id: RunId,
}

/// A due time another process wrote to the ledger first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lost {
    /// The schedule.
    pub schedule: String,
    /// The due time.
    pub due_at: Timestamp,
    /// What the other process made of it.
    pub status: FireStatus,
}

/// A due time recorded as skipped or missed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recorded {
    /// The schedule.
    pub schedule: String,
    /// The due time.
    pub due_at: Timestamp,
    /// Why it did not run.
    pub reason: String,
}

/// A schedule the tick could not finish; the next tick resumes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TickError {
    /// The schedule.
    pub schedule: String,
    /// What failed.
    pub message: String,
}

/// What one [`Scheduler::tick`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TickReport {
    /// The time the tick evaluated.
    pub now: Timestamp,
    /// How many schedules it looked at.
    pub schedules: usize,
    /// Due times this process claimed, each with its new run.
    pub claimed: Vec<Dispatched>,
    /// Due times another process had already written to the ledger.
    pub lost: Vec<Lost>,
    /// Due times recorded `skipped`, with the reason.
    pub skipped: Vec<Recorded>,
    /// Due times recorded `missed`, with the reason.
    pub missed: Vec<Recorded>,
    /// Schedules that stopped on an error.
    pub errors: Vec<TickError>,
}

impl TickReport {
    fn new(now: Timestamp) -> Self {
        TickReport {
            now,
            schedules: 0,
            claimed: Vec::new(),
            lost: Vec::new(),
            skipped: Vec::new(),
            missed: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// How many due times this tick wrote or found in the ledger.
    pub fn handled(&self) -> usize {
        self.claimed.len() + self.lost.len() + self.skipped.len() + self.missed.len()
    }
}

/// One schedule as `runward schedule list` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScheduleStatus {
    /// The stored schedule.
    #[serde(flatten)]
    pub record: ScheduleRecord,
    /// The first due time after `now`, if the spec has one.
    pub next_due: Option<Timestamp>,
    /// The ledger row with the latest due time.
    pub last_fire: Option<Fire>,
}

/// What [`Scheduler::sync`] changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SyncReport {
    /// Schedules that were not in the store.
    pub added: Vec<String>,
    /// Schedules whose definition changed.
    pub updated: Vec<String>,
    /// Schedules already stored as given.
    pub unchanged: Vec<String>,
}

/// Where this process is in one schedule: every due time up to `after` is in the ledger.
#[derive(Debug)]
struct Cursor {
    created_at: Timestamp,
    spec_key: (String, String),
    spec: ScheduleSpec,
    after: Timestamp,
    next_due: Option<Timestamp>,
}

impl Cursor {
    fn advance(&mut self, to: Timestamp) {
        self.after = to;
        self.next_due = next_after(&self.spec, to);
    }
}

/// Ticks the schedules of a [`Store`]. Cheap to keep: it remembers, per schedule, the next due
/// time, so a tick with nothing due reads the schedule list and nothing else.
///
/// ```
/// use std::sync::Arc;
/// use runward::schedule::{ResolvedRunbook, Schedule, Scheduler};
/// use runward::store::{SqliteStore, Store, Timestamp};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> runward::Result<()> {
/// let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().await?);
/// let scheduler = Scheduler::new(store).with_resolver(|name: &str| {
///     Ok(ResolvedRunbook { name: name.to_owned(), definition_hash: "dev".into() })
/// });
/// scheduler.sync(&[Schedule::new("heartbeat", "@every:60", "heartbeat")?]).await?;
/// let report = scheduler.tick(Timestamp::now() + std::time::Duration::from_secs(60)).await?;
/// assert_eq!(report.claimed.len(), 1);
/// # Ok(()) }
/// ```
pub struct Scheduler {
    store: Arc<dyn Store>,
    resolver: Arc<dyn RunbookResolver>,
    cursors: tokio::sync::Mutex<HashMap<String, Cursor>>,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler").finish_non_exhaustive()
    }
}

impl Scheduler {
    /// A scheduler over `store` whose runbook references are files ([`RunbookFiles`]).
    pub fn new(store: Arc<dyn Store>) -> Self {
        Scheduler {
            store,
            resolver: Arc::new(RunbookFiles),
            cursors: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Uses `resolver` to turn runbook references into runbooks.
    pub fn with_resolver(mut self, resolver: impl RunbookResolver) -> Self {
        self.resolver = Arc::new(resolver);
        self
    }

    /// Stores `schedules`, writing only those that are new or changed. Schedules in the store
    /// that are not given stay as they are.
    pub async fn sync(&self, schedules: &[Schedule]) -> Result<SyncReport> {
        let existing: HashMap<String, ScheduleRecord> = self
            .store
            .list_schedules()
            .await?
            .into_iter()
            .map(|r| (r.def.name.clone(), r))
            .collect();
        let mut report = SyncReport::default();
        for schedule in schedules {
            let def = schedule.to_def();
            let name = def.name.clone();
            match existing.get(&name) {
                Some(record) if record.def == def => report.unchanged.push(name),
                Some(_) => {
                    self.store.put_schedule(def).await?;
                    report.updated.push(name);
                }
                None => {
                    self.store.put_schedule(def).await?;
                    report.added.push(name);
                }
            }
        }
        Ok(report)
    }

    /// Every stored schedule with its next due time after `now` and its last ledger row.
    pub async fn status(&self, now: Timestamp) -> Result<Vec<ScheduleStatus>> {
        let mut out = Vec::new();
        let mut last_fires = self.store.last_fires().await?;
        for record in self.store.list_schedules().await? {
            let next_due = spec_of(&record)
                .ok()
                .and_then(|spec| next_after(&spec, now));
            let last_fire = last_fires.remove(&record.def.name);
            out.push(ScheduleStatus {
                record,
                next_due,
                last_fire,
            });
        }
        Ok(out)
    }

    /// Evaluates every schedule at `now` and writes each due time up to `now` to the ledger.
    ///
    /// Fails only when the schedule list cannot be read; a schedule that fails midway is
    /// reported in [`TickReport::errors`] and resumed by the next tick.
    pub async fn tick(&self, now: Timestamp) -> Result<TickReport> {
        let records = self.store.list_schedules().await?;
        let mut cursors = self.cursors.lock().await;
        let names: HashSet<&str> = records.iter().map(|r| r.def.name.as_str()).collect();
        cursors.retain(|name, _| names.contains(name.as_str()));
        let mut report = TickReport::new(now);
        report.schedules = records.len();
        // A new process has no cursors: read every schedule's last ledger row in one query
        // rather than one query per schedule.
        let missing = records
            .iter()
            .filter(|r| !cursors.contains_key(&r.def.name))
            .count();
        let last_fires = if missing > 16 {
            Some(self.store.last_fires().await?)
        } else {
            None
        };
        for record in &records {
            let name = &record.def.name;
            if let Some(cursor) = cursors.get(name) {
                let same = cursor.created_at == record.created_at
                    && cursor.spec_key.0 == record.def.spec
                    && cursor.spec_key.1 == record.def.time_zone;
                if same && cursor.next_due.is_none_or(|next| next > now) {
                    continue;
                }
            }
            if let Err(e) = self
                .tick_one(record, now, &mut cursors, last_fires.as_ref(), &mut report)
                .await
            {
                report.errors.push(TickError {
                    schedule: name.clone(),
                    message: e.to_string(),
                });
            }
        }
        Ok(report)
    }

    async fn tick_one(
        &self,
        record: &ScheduleRecord,
        now: Timestamp,
        cursors: &mut HashMap<String, Cursor>,
        last_fires: Option<&HashMap<String, Fire>>,
        report: &mut TickReport,
    ) -> Result<()> {
        let def = &record.def;
        let name = def.name.as_str();
        let cursor = self.cursor(record, cursors, last_fires).await?;
        let due = due_between(&cursor.spec, cursor.after, now, MAX_DUE_PER_TICK);
        if due.is_empty() {
            cursor.advance(cursor.after);
            return Ok(());
        }
        // The latest due time is known only when the whole backlog fits in this tick.
        let latest = (due.len() < MAX_DUE_PER_TICK
            || next_after(&cursor.spec, due[due.len() - 1]).is_none_or(|n| n > now))
        .then(|| due[due.len() - 1]);
        let window = catch_up_window(def);
        let window_start = now - window;
        let mut active: Option<Vec<Run>> = None;
        let mut runbook: Option<ResolvedRunbook> = None;
        let mut catch_up_runs = 0;
        for &due_at in &due {
            let decision = if !def.enabled {
                Decision::Record(
                    FireStatus::Skipped,
                    format!("schedule `{name}` is disabled"),
                )
            } else if due_at < window_start {
                Decision::Record(
                    FireStatus::Missed,
                    format!(
                        "no process ticked within the catch-up window of {} after the due time (first tick at {now})",
                        humantime::format_duration(window)
                    ),
                )
            } else {
                match def.misfire {
                    MisfirePolicy::FireAll => Decision::Run,
                    _ if Some(due_at) == latest => Decision::Run,
                    MisfirePolicy::Skip => Decision::Record(
                        FireStatus::Missed,
                        "a later due time came before any tick; misfire policy skip runs only the latest".into(),
                    ),
                    MisfirePolicy::FireOnce => Decision::Record(
                        FireStatus::Skipped,
                        "misfire policy fire_once runs only the latest due time".into(),
                    ),
                }
            };
            let decision = match decision {
                Decision::Run => {
                    if def.misfire == MisfirePolicy::FireAll && Some(due_at) != latest {
                        if catch_up_runs >= MAX_CATCH_UP_RUNS {
                            // The rest of the backlog waits for the next tick.
                            return Ok(());
                        }
                        catch_up_runs += 1;
                    }
                    self.overlap(def.overlap, name, &mut active).await?
                }
                other => other,
            };
            match decision {
                Decision::Run => {
                    if runbook.is_none() {
                        runbook = Some(self.resolver.resolve(&def.runbook).map_err(|e| {
                            Error::new(
                                e.kind(),
                                format!("runbook `{}` cannot be loaded: {e}", def.runbook),
                            )
                        })?);
                    }
                    let rb = runbook.as_ref().expect("resolved above");
                    let run = NewRun::new(rb.name.clone(), rb.definition_hash.clone())
                        .params(def.params.clone())
                        .started_by(format!("schedule:{name}"));
                    match self
                        .store
                        .claim_fire_and_create_run(name, due_at, run)
                        .await?
                    {
                        Claim::Claimed(run) => {
                            report.claimed.push(Dispatched {
                                schedule: name.to_owned(),
                                due_at,
                                run_id: run.id.clone(),
                            });
                            if let Some(active) = &mut active {
                                active.push(run);
                            }
                        }
                        Claim::AlreadyClaimed(fire) => report.lost.push(Lost {
                            schedule: name.to_owned(),
                            due_at,
                            status: fire.status,
                        }),
                    }
                }
                Decision::Record(status, reason) => {
                    match self
                        .store
                        .record_fire(name, due_at, status, &reason)
                        .await?
                    {
                        Claim::Claimed(_) => {
                            let row = Recorded {
                                schedule: name.to_owned(),
                                due_at,
                                reason,
                            };
                            match status {
                                FireStatus::Missed => report.missed.push(row),
                                _ => report.skipped.push(row),
                            }
                        }
                        Claim::AlreadyClaimed(fire) => report.lost.push(Lost {
                            schedule: name.to_owned(),
                            due_at,
                            status: fire.status,
                        }),
                    }
                }
            }
            cursor.advance(due_at);
        }
        Ok(())
    }

    /// The overlap decision for a due time about to run; loads the active runs once per tick.
    async fn overlap(
        &self,
        policy: OverlapPolicy,
        schedule: &str,
        active: &mut Option<Vec<Run>>,
    ) -> Result<Decision> {
        if policy == OverlapPolicy::Allow {
            return Ok(Decision::Run);
        }
        if active.is_none() {
            let filter = RunFilter {
                statuses: RunStatus::ALL
                    .iter()
                    .copied()
                    .filter(|s| !s.is_terminal())
                    .collect(),
                schedule: Some(schedule.to_owned()),
                ..RunFilter::default()
            };
            *active = Some(self.store.list_runs(&filter).await?);
        }
        let runs = active.as_deref().unwrap_or_default();
        let blocking = match policy {
            OverlapPolicy::Skip => runs.first(),
            OverlapPolicy::BufferOne => runs.iter().find(|r| r.status == RunStatus::Queued),
            OverlapPolicy::Allow => None,
        };
        Ok(match blocking {
            None => Decision::Run,
            Some(run) if policy == OverlapPolicy::Skip => Decision::Record(
                FireStatus::Skipped,
                format!(
                    "previous run {} is still {} (overlap policy skip)",
                    run.id, run.status
                ),
            ),
            Some(run) => Decision::Record(
                FireStatus::Skipped,
                format!(
                    "run {} is already queued (overlap policy buffer_one keeps one waiting)",
                    run.id
                ),
            ),
        })
    }

    /// This process's cursor for `record`, loaded from the ledger (or from `last_fires`, read
    /// for the whole tick) when new or stale.
    async fn cursor<'a>(
        &self,
        record: &ScheduleRecord,
        cursors: &'a mut HashMap<String, Cursor>,
        last_fires: Option<&HashMap<String, Fire>>,
    ) -> Result<&'a mut Cursor> {
        let name = &record.def.name;
        let spec_key = (record.def.spec.clone(), record.def.time_zone.clone());
        let reusable = cursors
            .get(name)
            .is_some_and(|c| c.created_at == record.created_at);
        if reusable {
            let cursor = cursors.get_mut(name).expect("checked above");
            if cursor.spec_key != spec_key {
                // A changed spec applies to due times after those already handled.
                cursor.spec = spec_of(record)?;
                cursor.spec_key = spec_key;
                let after = cursor.after;
                cursor.advance(after);
            }
            return Ok(cursor);
        }
        let spec = spec_of(record)?;
        // Due times strictly after the schedule's creation are its own.
        let last = match last_fires {
            Some(all) => all.get(name).cloned(),
            None => self.store.last_fire(name).await?,
        };
        let after = match last {
            Some(fire) if fire.due_at > record.created_at => fire.due_at,
            _ => record.created_at,
        };
        let mut cursor = Cursor {
            created_at: record.created_at,
            spec_key,
            spec,
            after,
            next_due: None,
        };
        cursor.advance(after);
        cursors.insert(name.clone(), cursor);
        Ok(cursors.get_mut(name).expect("just inserted"))
    }
}

enum Decision {
    Run,
    Record(FireStatus, String),
}

/// Parses an RFC 3339 time such as `2026-11-23T10:00:00Z` or `2026-11-23T11:00:00+01:00`.
pub fn parse_time(text: &str) -> Result<Timestamp> {
    DateTime::parse_from_rfc3339(text.trim())
        .map(|t| Timestamp::from_millis(t.timestamp_millis()))
        .map_err(|e| {
            Error::invalid(format!(
                "`{text}` is not an RFC 3339 time ({e}): write e.g. 2026-11-23T10:00:00Z"
            ))
        })
}

fn to_utc(t: Timestamp) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(t.as_millis())
        .single()
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn from_utc(t: DateTime<Utc>) -> Timestamp {
    Timestamp::from_millis(t.timestamp_millis())
}

fn next_after(spec: &ScheduleSpec, after: Timestamp) -> Option<Timestamp> {
    spec.next_after(to_utc(after)).map(from_utc)
}

fn due_between(
    spec: &ScheduleSpec,
    after: Timestamp,
    until: Timestamp,
    limit: usize,
) -> Vec<Timestamp> {
    spec.due_between(to_utc(after), to_utc(until), limit)
        .into_iter()
        .map(from_utc)
        .collect()
}
