//! The [`Registry`]: checks, their schedules, the snapshot, lifecycle and metrics.

use super::endpoints::ProbeResponse;
use super::probe::{CheckContext, Fixer, Probe, Values};
use super::report::{CheckReport, Report};
use super::snapshot::{CheckState, Snapshot};
use super::{OutageClass, Outcome, ProbeKind, Status};
use crate::{Error, Result};
use arc_swap::{ArcSwap, ArcSwapOption};
use futures::future::{BoxFuture, FutureExt, Shared};
use rand::Rng;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant, SystemTime};
use tokio::task::JoinHandle;

/// The deadline of a check unless configured otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(2500);

/// When a check runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// In the background, every `interval` plus or minus `jitter`, after `initial_delay`.
    Periodic {
        /// Time between runs.
        interval: Duration,
        /// Delay before the first run.
        initial_delay: Duration,
        /// Largest random shift applied to each interval, to spread load.
        jitter: Duration,
    },
    /// When a request finds the result older than `ttl`; concurrent callers share one run.
    OnDemand {
        /// How long a result is reused.
        ttl: Duration,
    },
}

impl Schedule {
    /// Periodic every `interval`, first run at once, 10 % jitter.
    pub fn every(interval: Duration) -> Self {
        Schedule::Periodic {
            interval,
            initial_delay: Duration::ZERO,
            jitter: interval / 10,
        }
    }

    /// How long a result is expected to stay current.
    fn period(&self) -> Duration {
        match *self {
            Schedule::Periodic {
                interval, jitter, ..
            } => interval + jitter,
            Schedule::OnDemand { ttl } => ttl,
        }
    }
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule::every(Duration::from_secs(10))
    }
}

/// One check: a probe plus its policy.
#[derive(Clone)]
pub struct CheckSpec {
    pub(crate) name: String,
    pub(crate) probe: Arc<dyn Probe>,
    pub(crate) kinds: Vec<ProbeKind>,
    pub(crate) critical: bool,
    pub(crate) timeout: Duration,
    pub(crate) schedule: Schedule,
    pub(crate) max_age: Option<Duration>,
    pub(crate) failure_threshold: u32,
    pub(crate) success_threshold: u32,
    pub(crate) component_type: Option<String>,
    pub(crate) affected_endpoints: Vec<String>,
    pub(crate) remediation: Option<String>,
    pub(crate) fixer: Option<Arc<dyn Fixer>>,
}

impl std::fmt::Debug for CheckSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckSpec")
            .field("name", &self.name)
            .field("kinds", &self.kinds)
            .field("critical", &self.critical)
            .field("timeout", &self.timeout)
            .field("schedule", &self.schedule)
            .finish_non_exhaustive()
    }
}

impl CheckSpec {
    /// A critical readiness check with the default timeout, run every 10 s.
    pub fn new(name: impl Into<String>, probe: Arc<dyn Probe>) -> Self {
        CheckSpec {
            name: name.into(),
            probe,
            kinds: vec![ProbeKind::Readiness],
            critical: true,
            timeout: DEFAULT_TIMEOUT,
            schedule: Schedule::default(),
            max_age: None,
            failure_threshold: 1,
            success_threshold: 1,
            component_type: None,
            affected_endpoints: Vec::new(),
            remediation: None,
            fixer: None,
        }
    }

    /// The probe kinds (endpoints) this check counts towards.
    pub fn kinds(mut self, kinds: impl IntoIterator<Item = ProbeKind>) -> Self {
        self.kinds = kinds.into_iter().collect();
        self
    }

    /// Critical checks fail the probe; optional ones only degrade it to `warn`.
    pub fn critical(mut self, critical: bool) -> Self {
        self.critical = critical;
        self
    }

    /// The deadline of one run.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// When the check runs.
    pub fn schedule(mut self, schedule: Schedule) -> Self {
        self.schedule = schedule;
        self
    }

    /// How old a result may be before it turns `unknown`. Defaults to two periods plus the timeout.
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    /// Consecutive failures before the check reports `fail` (at least 1).
    pub fn failure_threshold(mut self, n: u32) -> Self {
        self.failure_threshold = n.max(1);
        self
    }

    /// Consecutive passes before a failed check reports `pass` again (at least 1).
    pub fn success_threshold(mut self, n: u32) -> Self {
        self.success_threshold = n.max(1);
        self
    }

    /// The health+json `componentType`; defaults to the probe's own.
    pub fn component_type(mut self, component_type: impl Into<String>) -> Self {
        self.component_type = Some(component_type.into());
        self
    }

    /// Endpoints of the application that this dependency affects.
    pub fn affected_endpoints(
        mut self,
        endpoints: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.affected_endpoints = endpoints.into_iter().map(Into::into).collect();
        self
    }

    /// What an operator should do when the check fails (shown by `doctor`).
    pub fn remediation(mut self, hint: impl Into<String>) -> Self {
        self.remediation = Some(hint.into());
        self
    }

    /// A repair `doctor --fix` may apply when the check fails.
    pub fn fixer(mut self, fixer: Arc<dyn Fixer>) -> Self {
        self.fixer = Some(fixer);
        self
    }

    /// The check's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn effective_max_age(&self) -> Duration {
        self.max_age
            .unwrap_or(self.schedule.period() * 2 + self.timeout)
    }
}

/// A change of a check's reported status, passed to transition hooks.
#[derive(Debug, Clone)]
pub struct Transition {
    /// The check's name.
    pub check: String,
    /// The status before.
    pub from: Status,
    /// The status now.
    pub to: Status,
    /// Failed runs in a row at the time of the change.
    pub consecutive_failures: u32,
    /// How long the previous status held.
    pub previous_duration: Duration,
    /// When it changed.
    pub at: SystemTime,
    /// The outcome that caused the change.
    pub outcome: Outcome,
}

/// The HTTP endpoints whose requests are counted for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Endpoint {
    Livez,
    Readyz,
    Startupz,
    Healthz,
    ReadyzCheck,
    Metrics,
}

impl Endpoint {
    pub(crate) const ALL: [Endpoint; 6] = [
        Endpoint::Livez,
        Endpoint::Readyz,
        Endpoint::Startupz,
        Endpoint::Healthz,
        Endpoint::ReadyzCheck,
        Endpoint::Metrics,
    ];
    pub(crate) const CODES: [u16; 3] = [200, 404, 503];

    /// The path label used in metrics.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Livez => "/livez",
            Endpoint::Readyz => "/readyz",
            Endpoint::Startupz => "/startupz",
            Endpoint::Healthz => "/healthz",
            Endpoint::ReadyzCheck => "/readyz/{check}",
            Endpoint::Metrics => "/metrics",
        }
    }
}

type Hook = Arc<dyn Fn(&Transition) + Send + Sync>;

/// How many rendered answers a registry keeps: see [`Registry::cached_answer`].
pub(crate) const ANSWER_SLOTS: usize = 16;

/// The longest a rendered answer is reused, so that its times and `max-age` stay current.
const ANSWER_LIFETIME: Duration = Duration::from_secs(1);

/// A rendered answer and what it was rendered from.
struct CachedAnswer {
    snapshot: Arc<Snapshot>,
    version: u64,
    values_version: u64,
    valid_until: Instant,
    answer: ProbeResponse,
}

struct Slot {
    spec: CheckSpec,
    max_age: Duration,
    inflight: Mutex<Option<Shared<BoxFuture<'static, ()>>>>,
}

/// Service identity shown in health+json.
#[derive(Debug, Clone, Default)]
pub(crate) struct ServiceInfo {
    pub(crate) service_id: Option<String>,
    pub(crate) version: Option<String>,
    pub(crate) release_id: Option<String>,
    pub(crate) description: Option<String>,
}

struct Inner {
    service: ServiceInfo,
    slots: Vec<Slot>,
    by_name: HashMap<String, usize>,
    by_kind: [Vec<usize>; 3],
    /// The checks with [`Schedule::OnDemand`], with their TTL.
    on_demand: Vec<(usize, Duration)>,
    snapshot: ArcSwap<Snapshot>,
    write_lock: Mutex<()>,
    values: Arc<Values>,
    hooks: RwLock<Vec<Hook>>,
    epoch: Instant,
    startup_latched: AtomicBool,
    shutting_down: AtomicBool,
    drained: AtomicBool,
    heartbeat_ms: AtomicU64,
    heartbeat_timeout: Option<Duration>,
    gates_closed: AtomicBool,
    gates: RwLock<BTreeMap<String, String>>,
    requests: [[AtomicU64; 3]; 6],
    /// Bumped when gates, shutdown or the startup latch change what a report says.
    answers_version: AtomicU64,
    /// Rendered answers, reused while nothing they show has changed.
    answers: [ArcSwapOption<CachedAnswer>; ANSWER_SLOTS],
    warnings: Vec<String>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    runtime: Mutex<Option<tokio::runtime::Handle>>,
}

impl Slot {
    /// How long `state` stays current as of `now`: the time until the check's next run is due.
    fn fresh_for(&self, state: &CheckState, now: Instant) -> Option<Duration> {
        let at = state.checked_instant?;
        Some(
            self.spec
                .schedule
                .period()
                .saturating_sub(now.saturating_duration_since(at)),
        )
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        for task in self
            .tasks
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            task.abort();
        }
    }
}

/// Builds a [`Registry`].
#[derive(Default)]
pub struct RegistryBuilder {
    service: ServiceInfo,
    checks: Vec<CheckSpec>,
    heartbeat_timeout: Option<Duration>,
    values: Option<Arc<Values>>,
}

impl RegistryBuilder {
    /// The `serviceId` shown in health+json.
    pub fn service_id(mut self, id: impl Into<String>) -> Self {
        self.service.service_id = Some(id.into());
        self
    }

    /// The service's public version (`version`).
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.service.version = Some(version.into());
        self
    }

    /// The release or build identifier (`releaseId`).
    pub fn release_id(mut self, release: impl Into<String>) -> Self {
        self.service.release_id = Some(release.into());
        self
    }

    /// A human description of the service.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.service.description = Some(description.into());
        self
    }

    /// Adds a check.
    pub fn check(mut self, spec: CheckSpec) -> Self {
        self.checks.push(spec);
        self
    }

    /// Makes liveness fail when the host has not called [`Registry::heartbeat`] within `timeout`.
    pub fn heartbeat_timeout(mut self, timeout: Duration) -> Self {
        self.heartbeat_timeout = Some(timeout);
        self
    }

    /// Shares a value store (counters, gauges) with the registry.
    pub fn values(mut self, values: Arc<Values>) -> Self {
        self.values = Some(values);
        self
    }

    /// Validates the checks and builds the registry. Nothing runs until
    /// [`Registry::start`] or a refresh.
    pub fn build(self) -> Result<Registry> {
        let mut by_name = HashMap::new();
        let mut by_kind: [Vec<usize>; 3] = Default::default();
        let mut warnings = Vec::new();
        for (idx, spec) in self.checks.iter().enumerate() {
            crate::names::validate_name("check name", &spec.name)?;
            if by_name.insert(spec.name.clone(), idx).is_some() {
                return Err(Error::invalid(format!(
                    "two checks are named `{}`: give each check a unique name",
                    spec.name
                )));
            }
            if spec.timeout.is_zero() {
                return Err(Error::invalid(format!(
                    "check `{}` has a zero timeout",
                    spec.name
                )));
            }
            for kind in &spec.kinds {
                let list = &mut by_kind[kind_index(*kind)];
                if !list.contains(&idx) {
                    list.push(idx);
                }
            }
            if spec.kinds.contains(&ProbeKind::Liveness) && !spec.probe.is_local() {
                warnings.push(format!(
                    "check `{}` is a dependency check on liveness: a dependency outage would restart \
                     healthy processes; move it to readiness",
                    spec.name
                ));
            }
        }
        let slots: Vec<Slot> = self
            .checks
            .into_iter()
            .map(|spec| Slot {
                max_age: spec.effective_max_age(),
                spec,
                inflight: Mutex::new(None),
            })
            .collect();
        let on_demand = slots
            .iter()
            .enumerate()
            .filter_map(|(idx, slot)| match slot.spec.schedule {
                Schedule::OnDemand { ttl } => Some((idx, ttl)),
                Schedule::Periodic { .. } => None,
            })
            .collect();
        let snapshot = Snapshot {
            checks: slots
                .iter()
                .map(|_| Arc::new(CheckState::default()))
                .collect(),
        };
        Ok(Registry {
            inner: Arc::new(Inner {
                service: self.service,
                by_name,
                by_kind,
                on_demand,
                snapshot: ArcSwap::from_pointee(snapshot),
                write_lock: Mutex::new(()),
                values: self.values.unwrap_or_default(),
                hooks: RwLock::new(Vec::new()),
                epoch: Instant::now(),
                startup_latched: AtomicBool::new(false),
                shutting_down: AtomicBool::new(false),
                drained: AtomicBool::new(false),
                heartbeat_ms: AtomicU64::new(0),
                heartbeat_timeout: self.heartbeat_timeout,
                gates_closed: AtomicBool::new(false),
                gates: RwLock::new(BTreeMap::new()),
                requests: Default::default(),
                answers_version: AtomicU64::new(0),
                answers: Default::default(),
                warnings,
                tasks: Mutex::new(Vec::new()),
                runtime: Mutex::new(None),
                slots,
            }),
        })
    }
}

fn kind_index(kind: ProbeKind) -> usize {
    match kind {
        ProbeKind::Startup => 0,
        ProbeKind::Readiness => 1,
        ProbeKind::Liveness => 2,
    }
}

/// The health registry. Cheap to clone; all clones share one state.
///
/// Requests read the snapshot ([`Registry::status`], [`Registry::evaluate`]) and never run a
/// check themselves; checks run in background tasks started by [`Registry::start`], or on
/// [`Registry::refresh`].
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("checks", &self.check_names())
            .finish_non_exhaustive()
    }
}

impl Registry {
    /// Starts building a registry.
    pub fn builder() -> RegistryBuilder {
        RegistryBuilder::default()
    }

    /// Starts the periodic checks on the current tokio runtime.
    ///
    /// # Panics
    /// When called outside a tokio runtime; use [`Registry::start_on`] there.
    pub fn start(&self) {
        self.start_on(&tokio::runtime::Handle::current());
    }

    /// Starts the periodic checks on the given runtime. Calling it again has no effect.
    pub fn start_on(&self, handle: &tokio::runtime::Handle) {
        let mut runtime = self.inner.runtime.lock().unwrap_or_else(|e| e.into_inner());
        if runtime.is_some() {
            return;
        }
        *runtime = Some(handle.clone());
        let mut tasks = self.inner.tasks.lock().unwrap_or_else(|e| e.into_inner());
        for (idx, slot) in self.inner.slots.iter().enumerate() {
            if let Schedule::Periodic {
                interval,
                initial_delay,
                jitter,
            } = slot.spec.schedule
            {
                let weak = Arc::downgrade(&self.inner);
                tasks.push(handle.spawn(periodic_loop(weak, idx, interval, initial_delay, jitter)));
            }
        }
    }

    /// Stops the background checks. The snapshot stays readable.
    pub fn stop(&self) {
        for task in self
            .inner
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            task.abort();
        }
        *self.inner.runtime.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Runs one check now (sharing a run already in flight) and returns its new state.
    pub async fn refresh(&self, name: &str) -> Result<Arc<CheckState>> {
        let idx = self.index_of(name)?;
        run_check(&self.inner, idx).await;
        Ok(self.inner.snapshot.load().checks[idx].clone())
    }

    /// Runs every check now, concurrently, and waits for all of them.
    pub async fn refresh_all(&self) {
        let runs = (0..self.inner.slots.len()).map(|idx| run_check(&self.inner, idx));
        futures::future::join_all(runs).await;
    }

    /// Runs the checks of one kind now and waits for them.
    pub async fn refresh_kind(&self, kind: ProbeKind) {
        let runs = self.inner.by_kind[kind_index(kind)]
            .iter()
            .map(|&idx| run_check(&self.inner, idx));
        futures::future::join_all(runs).await;
    }

    /// Brings the on-demand checks of `kind` (every kind: `None`) up to date before an
    /// answer: each whose result is missing or older than its TTL runs now, or the run in
    /// flight is joined (single-flight), and this waits for them. No wait outlasts the
    /// check's timeout, after which the run records a timeout. Periodic checks are never
    /// run here, and when every on-demand result is fresh this returns without waiting.
    pub async fn await_on_demand(&self, kind: Option<ProbeKind>) {
        let stale = self.stale_on_demand(kind);
        if stale.is_empty() {
            return;
        }
        futures::future::join_all(stale.into_iter().map(|idx| run_check(&self.inner, idx))).await;
    }

    /// The on-demand checks of `kind` whose result is missing or older than their TTL.
    fn stale_on_demand(&self, kind: Option<ProbeKind>) -> Vec<usize> {
        if self.inner.on_demand.is_empty() {
            return Vec::new();
        }
        let snapshot = self.inner.snapshot.load();
        let now = Instant::now();
        self.inner
            .on_demand
            .iter()
            .filter(|(idx, _)| kind.is_none_or(|k| self.inner.slots[*idx].spec.kinds.contains(&k)))
            .filter(|(idx, ttl)| {
                !matches!(
                    snapshot.checks[*idx].checked_instant,
                    Some(at) if now.duration_since(at) < *ttl
                )
            })
            .map(|(idx, _)| *idx)
            .collect()
    }

    /// Starts background runs of the on-demand checks of `kind` whose result is older than
    /// their TTL. Never waits; needs [`Registry::start`] to have given it a runtime.
    pub fn revalidate(&self, kind: Option<ProbeKind>) {
        if self.inner.on_demand.is_empty() {
            return;
        }
        let Some(handle) = self
            .inner
            .runtime
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        else {
            return;
        };
        for idx in self.stale_on_demand(kind) {
            if !self.inner.slots[idx].is_running() {
                let inner = self.inner.clone();
                handle.spawn(async move { run_check(&inner, idx).await });
            }
        }
    }

    /// The status of one probe kind, from the snapshot. Allocation-free; this is the hot path
    /// of `/readyz`.
    pub fn status(&self, kind: ProbeKind) -> Status {
        self.status_and_fresh_for(kind).0
    }

    /// [`Registry::status`] and [`Registry::fresh_for`] in one pass over the snapshot: what
    /// a status-only answer needs.
    pub(crate) fn status_and_fresh_for(&self, kind: ProbeKind) -> (Status, Duration) {
        let inner = &*self.inner;
        match kind {
            ProbeKind::Startup if inner.startup_latched.load(Ordering::Acquire) => {
                return (Status::Pass, self.fresh_for(kind));
            }
            ProbeKind::Readiness
                if inner.shutting_down.load(Ordering::Acquire)
                    || inner.gates_closed.load(Ordering::Acquire) =>
            {
                return (Status::Fail, self.fresh_for(kind));
            }
            _ => {}
        }
        let snapshot = inner.snapshot.load();
        let now = Instant::now();
        let mut status = Status::Pass;
        let mut fresh: Option<Duration> = None;
        for &idx in &inner.by_kind[kind_index(kind)] {
            let slot = &inner.slots[idx];
            let state = &snapshot.checks[idx];
            let check = state.status_at(now, slot.max_age);
            status = combine(status, contribution(kind, check, slot.spec.critical));
            if let Some(left) = slot.fresh_for(state, now) {
                fresh = Some(fresh.map_or(left, |f| f.min(left)));
            }
        }
        if kind == ProbeKind::Liveness && self.heartbeat_overdue(now).is_some() {
            status = Status::Fail;
        }
        if kind == ProbeKind::Startup
            && status == Status::Pass
            && !inner.startup_latched.swap(true, Ordering::AcqRel)
        {
            inner.answers_version.fetch_add(1, Ordering::Release);
        }
        (status, fresh.unwrap_or(Duration::ZERO))
    }

    /// The answer in `slot` (one per endpoint, detail level and format; see
    /// `endpoints`), rendered by `render` only when what it shows may have changed: a check
    /// recorded a result, a result turned stale, a gate, shutdown or a pushed value changed,
    /// or it is a second old (its times and `max-age`). With a heartbeat timeout nothing is
    /// reused, since the heartbeat's age is part of the answer.
    pub(crate) fn cached_answer(
        &self,
        slot: usize,
        render: impl FnOnce() -> ProbeResponse,
    ) -> ProbeResponse {
        let inner = &*self.inner;
        if inner.heartbeat_timeout.is_some() {
            return render();
        }
        // A guard, not a clone: no reference count is touched on a hit.
        let snapshot = inner.snapshot.load();
        let version = inner.answers_version.load(Ordering::Acquire);
        let values_version = inner.values.version();
        let now = Instant::now();
        if let Some(cached) = &*inner.answers[slot].load()
            && Arc::ptr_eq(&cached.snapshot, &*snapshot)
            && cached.version == version
            && cached.values_version == values_version
            && now < cached.valid_until
        {
            return cached.answer.clone();
        }
        let snapshot = arc_swap::Guard::into_inner(snapshot);
        let answer = render();
        let mut valid_until = now + ANSWER_LIFETIME;
        for (idx, state) in snapshot.checks.iter().enumerate() {
            if let Some(at) = state.checked_instant {
                let stale_at = at + inner.slots[idx].max_age;
                if stale_at > now {
                    valid_until = valid_until.min(stale_at);
                }
            }
        }
        inner.answers[slot].store(Some(Arc::new(CachedAnswer {
            snapshot,
            version,
            values_version,
            valid_until,
            answer: answer.clone(),
        })));
        answer
    }

    /// The status of one check as reported to `/readyz/<check>`.
    pub fn check_status(&self, name: &str) -> Result<Status> {
        let idx = self.index_of(name)?;
        let slot = &self.inner.slots[idx];
        Ok(self.inner.snapshot.load().checks[idx].status_at(Instant::now(), slot.max_age))
    }

    /// A full report of one probe kind, from the snapshot.
    pub fn evaluate(&self, kind: ProbeKind) -> Report {
        let status = self.status(kind);
        let indices = self.inner.by_kind[kind_index(kind)].clone();
        let mut report = self.report(Some(kind), status, indices);
        if kind == ProbeKind::Startup && self.inner.startup_latched.load(Ordering::Acquire) {
            report
                .notes
                .push("startup passed once and is latched".into());
        }
        if kind == ProbeKind::Liveness {
            if let Some(timeout) = self.inner.heartbeat_timeout {
                report.checks.push(self.heartbeat_report(timeout));
            }
        }
        report
    }

    /// A report of one check, as `/readyz/<check>` shows it.
    pub fn check_report(&self, name: &str) -> Result<Report> {
        let idx = self.index_of(name)?;
        let slot = &self.inner.slots[idx];
        let status = self.inner.snapshot.load().checks[idx].status_at(Instant::now(), slot.max_age);
        Ok(self.report(Some(ProbeKind::Readiness), status, vec![idx]))
    }

    /// How long the results of `kind` stay current: the time until the earliest next run.
    pub fn fresh_for(&self, kind: ProbeKind) -> Duration {
        let snapshot = self.inner.snapshot.load();
        let now = Instant::now();
        let mut fresh: Option<Duration> = None;
        for &idx in &self.inner.by_kind[kind_index(kind)] {
            if let Some(left) = self.inner.slots[idx].fresh_for(&snapshot.checks[idx], now) {
                fresh = Some(fresh.map_or(left, |f| f.min(left)));
            }
        }
        fresh.unwrap_or(Duration::ZERO)
    }

    /// A report over every check (`/healthz`, `doctor`): critical failures fail it, optional
    /// ones degrade it to `warn`; unknown results fail closed.
    pub fn evaluate_all(&self) -> Report {
        let inner = &*self.inner;
        let snapshot = inner.snapshot.load();
        let now = Instant::now();
        let mut status = Status::Pass;
        for (idx, slot) in inner.slots.iter().enumerate() {
            let check = snapshot.checks[idx].status_at(now, slot.max_age);
            status = combine(
                status,
                contribution(ProbeKind::Readiness, check, slot.spec.critical),
            );
        }
        if inner.shutting_down.load(Ordering::Acquire) || inner.gates_closed.load(Ordering::Acquire)
        {
            status = Status::Fail;
        }
        if self.heartbeat_overdue(now).is_some() {
            status = Status::Fail;
        }
        let mut report = self.report(None, status, (0..inner.slots.len()).collect());
        if let Some(timeout) = inner.heartbeat_timeout {
            report.checks.push(self.heartbeat_report(timeout));
        }
        report
    }

    fn report(&self, kind: Option<ProbeKind>, status: Status, indices: Vec<usize>) -> Report {
        let inner = &*self.inner;
        let snapshot = inner.snapshot.load();
        let now = Instant::now();
        let mut notes: Vec<String> = match kind {
            None | Some(ProbeKind::Liveness) => inner.warnings.clone(),
            _ => Vec::new(),
        };
        if matches!(kind, None | Some(ProbeKind::Readiness)) {
            if inner.shutting_down.load(Ordering::Acquire) {
                notes.push("shutting down: readiness fails until the process exits".into());
            }
            for (gate, reason) in inner.gates.read().unwrap_or_else(|e| e.into_inner()).iter() {
                notes.push(format!("gate `{gate}` closed: {reason}"));
            }
        }
        let mut fresh_for: Option<Duration> = None;
        let checks = indices
            .into_iter()
            .map(|idx| {
                let slot = &inner.slots[idx];
                let state = snapshot.checks[idx].clone();
                let stale = state.is_stale(now, slot.max_age);
                if let Some(left) = slot.fresh_for(&state, now) {
                    fresh_for = Some(fresh_for.map_or(left, |f| f.min(left)));
                }
                CheckReport {
                    name: slot.spec.name.clone(),
                    status: state.status_at(now, slot.max_age),
                    critical: slot.spec.critical,
                    kinds: slot.spec.kinds.clone(),
                    component_type: slot
                        .spec
                        .component_type
                        .clone()
                        .unwrap_or_else(|| slot.spec.probe.component_type().to_owned()),
                    affected_endpoints: slot.spec.affected_endpoints.clone(),
                    remediation: slot.spec.remediation.clone(),
                    fix: slot.spec.fixer.as_ref().map(|f| f.describe()),
                    stale,
                    state,
                }
            })
            .collect();
        Report {
            kind,
            status,
            service_id: inner.service.service_id.clone(),
            version: inner.service.version.clone(),
            release_id: inner.service.release_id.clone(),
            description: inner.service.description.clone(),
            checks,
            notes,
            values: inner.values.all(),
            generated_at: SystemTime::now(),
            max_age: fresh_for.unwrap_or(Duration::ZERO),
        }
    }

    fn heartbeat_overdue(&self, now: Instant) -> Option<Duration> {
        let timeout = self.inner.heartbeat_timeout?;
        let last = Duration::from_millis(self.inner.heartbeat_ms.load(Ordering::Acquire));
        let since = now
            .saturating_duration_since(self.inner.epoch)
            .saturating_sub(last);
        (since > timeout).then_some(since)
    }

    fn heartbeat_report(&self, timeout: Duration) -> CheckReport {
        let now = Instant::now();
        let (status, outcome) = match self.heartbeat_overdue(now) {
            Some(since) => (
                Status::Fail,
                Outcome::fail(format!(
                    "no host heartbeat for {} ms (limit {} ms): the event loop or main thread is stuck",
                    since.as_millis(),
                    timeout.as_millis()
                )),
            ),
            None => (Status::Pass, Outcome::pass()),
        };
        CheckReport {
            name: "heartbeat".into(),
            status,
            critical: true,
            kinds: vec![ProbeKind::Liveness],
            component_type: "system".into(),
            affected_endpoints: Vec::new(),
            remediation: None,
            fix: None,
            stale: false,
            state: Arc::new(CheckState {
                status,
                outcome: Some(outcome),
                checked_at: Some(SystemTime::now()),
                checked_instant: Some(now),
                ..Default::default()
            }),
        }
    }

    /// Records that the host's main loop is alive. Liveness fails once the heartbeat is older
    /// than the configured timeout.
    pub fn heartbeat(&self) {
        let ms = self.inner.epoch.elapsed().as_millis() as u64;
        self.inner.heartbeat_ms.store(ms, Ordering::Release);
    }

    /// Closes a manual readiness gate (e.g. maintenance): readiness fails until it is opened.
    pub fn close_gate(&self, name: &str, reason: &str) {
        let mut gates = self.inner.gates.write().unwrap_or_else(|e| e.into_inner());
        gates.insert(name.to_owned(), reason.to_owned());
        self.inner.gates_closed.store(true, Ordering::Release);
        self.inner.answers_version.fetch_add(1, Ordering::Release);
    }

    /// Opens a manual readiness gate.
    pub fn open_gate(&self, name: &str) {
        let mut gates = self.inner.gates.write().unwrap_or_else(|e| e.into_inner());
        gates.remove(name);
        self.inner
            .gates_closed
            .store(!gates.is_empty(), Ordering::Release);
        self.inner.answers_version.fetch_add(1, Ordering::Release);
    }

    /// Starts shutdown: readiness fails at once; liveness keeps passing until the process exits.
    pub fn begin_shutdown(&self) {
        self.inner.shutting_down.store(true, Ordering::Release);
        self.inner.answers_version.fetch_add(1, Ordering::Release);
    }

    /// Whether shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.shutting_down.load(Ordering::Acquire)
    }

    /// Records that in-flight work has drained; the server may exit.
    pub fn mark_drained(&self) {
        self.inner.drained.store(true, Ordering::Release);
    }

    /// Whether in-flight work has drained.
    pub fn is_drained(&self) -> bool {
        self.inner.drained.load(Ordering::Acquire)
    }

    /// Registers a hook called after every status change of a check.
    pub fn on_transition(&self, hook: impl Fn(&Transition) + Send + Sync + 'static) {
        self.inner
            .hooks
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::new(hook));
    }

    /// The application's counters and gauges.
    pub fn values(&self) -> &Arc<Values> {
        &self.inner.values
    }

    /// Sets a gauge the application pushes (queue depth, ...).
    pub fn set_value(&self, name: &str, value: f64) {
        self.inner.values.set(name, value);
    }

    /// Adds to a counter the application pushes; returns the new value.
    pub fn add_value(&self, name: &str, delta: f64) -> f64 {
        self.inner.values.add(name, delta)
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.inner.snapshot.load_full()
    }

    /// Names of the checks, in registration order.
    pub fn check_names(&self) -> Vec<String> {
        self.inner
            .slots
            .iter()
            .map(|s| s.spec.name.clone())
            .collect()
    }

    /// Configuration warnings found at build time (e.g. dependency checks on liveness).
    pub fn warnings(&self) -> &[String] {
        &self.inner.warnings
    }

    /// The fixer attached to a check, if any.
    pub fn fixer(&self, name: &str) -> Result<Option<Arc<dyn Fixer>>> {
        Ok(self.inner.slots[self.index_of(name)?].spec.fixer.clone())
    }

    /// Counts one probe request for `/metrics`.
    pub fn count_request(&self, endpoint: Endpoint, code: u16) {
        let e = Endpoint::ALL
            .iter()
            .position(|&x| x == endpoint)
            .unwrap_or(0);
        if let Some(c) = Endpoint::CODES.iter().position(|&x| x == code) {
            self.inner.requests[e][c].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Requests counted per endpoint and code.
    pub fn request_counts(&self) -> Vec<(Endpoint, u16, u64)> {
        let mut out = Vec::new();
        for (e, endpoint) in Endpoint::ALL.iter().enumerate() {
            for (c, code) in Endpoint::CODES.iter().enumerate() {
                out.push((
                    *endpoint,
                    *code,
                    self.inner.requests[e][c].load(Ordering::Relaxed),
                ));
            }
        }
        out
    }

    fn index_of(&self, name: &str) -> Result<usize> {
        self.inner.by_name.get(name).copied().ok_or_else(|| {
            Error::new(
                crate::ErrorKind::NotFound,
                format!(
                    "no check named `{name}`; known checks: {}",
                    self.check_names().join(", ")
                ),
            )
        })
    }
}

impl Slot {
    fn is_running(&self) -> bool {
        matches!(&*self.inflight.lock().unwrap_or_else(|e| e.into_inner()), Some(f) if f.peek().is_none())
    }
}

/// How one check's status counts towards a probe of `kind`.
fn contribution(kind: ProbeKind, status: Status, critical: bool) -> Status {
    match (status, critical) {
        (Status::Pass, _) => Status::Pass,
        (Status::Warn, _) => Status::Warn,
        // Liveness does not fail closed: no result yet must not restart the process.
        (Status::Unknown, _) if kind == ProbeKind::Liveness => Status::Pass,
        (Status::Fail | Status::Unknown, true) => Status::Fail,
        (Status::Fail | Status::Unknown, false) => Status::Warn,
    }
}

fn combine(a: Status, b: Status) -> Status {
    fn rank(s: Status) -> u8 {
        match s {
            Status::Pass => 0,
            Status::Warn => 1,
            Status::Unknown => 2,
            Status::Fail => 3,
        }
    }
    if rank(b) > rank(a) { b } else { a }
}

async fn periodic_loop(
    weak: Weak<Inner>,
    idx: usize,
    interval: Duration,
    initial_delay: Duration,
    jitter: Duration,
) {
    tokio::time::sleep(initial_delay).await;
    loop {
        let Some(inner) = weak.upgrade() else { return };
        run_check(&inner, idx).await;
        drop(inner);
        let shift = if jitter.is_zero() {
            0i128
        } else {
            let j = jitter.as_millis() as i128;
            rand::rng().random_range(-j..=j)
        };
        let wait = (interval.as_millis() as i128 + shift).max(1) as u64;
        tokio::time::sleep(Duration::from_millis(wait)).await;
    }
}

/// Runs one check, or joins the run already in flight.
async fn run_check(inner: &Arc<Inner>, idx: usize) {
    let shared = {
        let mut slot = inner.slots[idx]
            .inflight
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match &*slot {
            Some(running) if running.peek().is_none() => running.clone(),
            _ => {
                let task = tokio::spawn(execute(inner.clone(), idx));
                let fut = async move {
                    let _ = task.await;
                }
                .boxed()
                .shared();
                *slot = Some(fut.clone());
                fut
            }
        }
    };
    shared.await;
}

/// Extracts a readable message from a panicked or cancelled task.
pub(crate) fn panic_message(err: tokio::task::JoinError) -> String {
    if err.is_cancelled() {
        return "the check was cancelled".into();
    }
    let payload = err.into_panic();
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic payload".into());
    format!("the check panicked: {text}")
}

async fn execute(inner: Arc<Inner>, idx: usize) {
    let slot = &inner.slots[idx];
    let timeout = slot.spec.timeout;
    let started = Instant::now();
    let at = SystemTime::now();
    let ctx = CheckContext {
        name: slot.spec.name.as_str().into(),
        deadline: started + timeout,
        timeout,
        values: inner.values.clone(),
    };
    let probe = slot.spec.probe.clone();
    let mut task = tokio::spawn(async move { probe.check(&ctx).await });
    let (outcome, timed_out) = match tokio::time::timeout(timeout, &mut task).await {
        Ok(Ok(outcome)) => (outcome, false),
        Ok(Err(err)) => (Outcome::fail(panic_message(err)), false),
        Err(_) => {
            task.abort();
            let outcome = Outcome::outage(
                OutageClass::Timeout,
                format!("no result within the {} ms deadline", timeout.as_millis()),
            );
            (outcome, true)
        }
    };
    record(&inner, idx, outcome, at, started, timed_out);
}

fn record(
    inner: &Inner,
    idx: usize,
    outcome: Outcome,
    at: SystemTime,
    started: Instant,
    timed_out: bool,
) {
    let slot = &inner.slots[idx];
    let transition = {
        let _guard = inner.write_lock.lock().unwrap_or_else(|e| e.into_inner());
        let snapshot = inner.snapshot.load();
        let old = &snapshot.checks[idx];
        let mut new = CheckState {
            outcome: None,
            checked_at: Some(at),
            checked_instant: Some(started),
            duration: started.elapsed(),
            runs: old.runs + 1,
            timeouts: old.timeouts + u64::from(timed_out),
            ..(**old).clone()
        };
        match outcome.status {
            Status::Fail | Status::Unknown => {
                new.consecutive_failures = old.consecutive_failures.saturating_add(1);
                new.consecutive_successes = 0;
                if new.consecutive_failures >= slot.spec.failure_threshold {
                    new.status = Status::Fail;
                }
            }
            Status::Pass | Status::Warn => {
                new.consecutive_successes = old.consecutive_successes.saturating_add(1);
                new.consecutive_failures = 0;
                new.last_success = Some(SystemTime::now());
                let recovering = old.status == Status::Fail;
                if !recovering || new.consecutive_successes >= slot.spec.success_threshold {
                    new.status = outcome.status;
                }
            }
        }
        let changed = new.status != old.status;
        let transition = changed.then(|| Transition {
            check: slot.spec.name.clone(),
            from: old.status,
            to: new.status,
            consecutive_failures: new.consecutive_failures,
            previous_duration: old
                .status_since
                .and_then(|since| at.duration_since(since).ok())
                .unwrap_or_default(),
            at,
            outcome: outcome.clone(),
        });
        if changed {
            new.transitions += 1;
            new.status_since = Some(at);
        }
        new.outcome = Some(outcome);
        let mut checks = snapshot.checks.clone();
        checks[idx] = Arc::new(new);
        inner.snapshot.store(Arc::new(Snapshot { checks }));
        transition
    };
    if let Some(transition) = transition {
        let hooks = inner
            .hooks
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for hook in hooks {
            hook(&transition);
        }
    }
}
