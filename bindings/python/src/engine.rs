//! `runward.Engine`: the core's durable run engine over a SQLite state database, with Python
//! functions as custom steps and a callback that sees a run's events as they are appended.

use crate::convert::{Json, json_to_py, type_name};
use crate::errors::{invalid, py_err};
use crate::health::Health;
use crate::runbook::{Runbook, params_of};
use crate::runs::{spawn, to_json, wait};
use crate::runtime::{block_on, fork_error, runtime};
use crate::step::python_step;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use runward::config::Config;
use runward::health::Registry;
use runward::policy::OutboundPolicy;
use runward::runbook::engine::{self, Resume, RunOutcome, Step};
use runward::store::{Event, RunId, SqliteStore, Store};
use serde_json::Value;
use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Everything an engine is built from except its custom steps.
#[derive(Clone)]
struct Setup {
    store: Arc<dyn Store>,
    owner: String,
    lease_ttl: Option<Duration>,
    registry: Option<Registry>,
    outbound: Option<OutboundPolicy>,
}

struct Built {
    steps: BTreeMap<String, Arc<dyn Step>>,
    engine: engine::Engine,
}

fn build(
    setup: &Setup,
    steps: &BTreeMap<String, Arc<dyn Step>>,
) -> runward::Result<engine::Engine> {
    let mut builder = engine::Engine::builder(setup.store.clone()).owner(setup.owner.clone());
    if let Some(ttl) = setup.lease_ttl {
        builder = builder.lease_ttl(ttl)?;
    }
    if let Some(registry) = &setup.registry {
        builder = builder.registry(registry.clone());
    }
    if let Some(outbound) = &setup.outbound {
        builder = builder.outbound(outbound.clone());
    }
    for (name, step) in steps {
        builder = builder.step(name.clone(), step.clone());
    }
    Ok(builder.build())
}

/// A Python callable receiving each event dict.
type Callback = Arc<Py<PyAny>>;

/// The durable run engine over a SQLite state database (`.runward/state.db` for the CLI).
///
/// Made with `Engine.open(path, ...)` or `await Engine.open_async(path, ...)`. Runs, outcomes,
/// approvals and events are dicts, the JSON of the core types. Several engines (in this or
/// other processes) may share one database: leases keep a run driven by one at a time.
#[pyclass(module = "runward", name = "Engine", frozen)]
pub(crate) struct Engine {
    pid: u32,
    path: PathBuf,
    setup: Setup,
    built: Mutex<Built>,
}

/// Reads `steps={name: func}` as custom steps.
fn steps_of(steps: Option<&Bound<'_, PyDict>>) -> PyResult<BTreeMap<String, Arc<dyn Step>>> {
    let mut out = BTreeMap::new();
    for (name, func) in steps.map(|d| d.iter()).into_iter().flatten() {
        let name = name
            .cast::<PyString>()
            .map_err(|_| {
                PyTypeError::new_err(format!("step names must be str, not {}", type_name(&name)))
            })?
            .to_cow()?
            .into_owned();
        out.insert(name.clone(), checked_step(name, func)?);
    }
    Ok(out)
}

fn checked_step(name: String, func: Bound<'_, PyAny>) -> PyResult<Arc<dyn Step>> {
    if !func.is_callable() {
        return Err(PyTypeError::new_err(format!(
            "custom step `{name}` must be a function `fn(ctx, params)`, not {}",
            type_name(&func)
        )));
    }
    Ok(python_step(name, func.unbind()))
}

fn callback_of(on_event: Option<Bound<'_, PyAny>>) -> PyResult<Option<Callback>> {
    match on_event.filter(|f| !f.is_none()) {
        None => Ok(None),
        Some(f) if f.is_callable() => Ok(Some(Arc::new(f.unbind()))),
        Some(f) => Err(PyTypeError::new_err(format!(
            "on_event must be a function taking one event dict, not {}",
            type_name(&f)
        ))),
    }
}

fn lease_ttl_of(seconds: Option<f64>) -> PyResult<Option<Duration>> {
    seconds
        .map(|s| {
            let ttl = Duration::try_from_secs_f64(s).map_err(|_| {
                invalid(format!(
                    "lease_ttl is {s}: give a positive number of seconds"
                ))
            })?;
            engine::check_lease_ttl(ttl).map_err(|e| invalid(format!("lease_ttl: {}", e.message())))
        })
        .transpose()
}

async fn open_engine(
    path: PathBuf,
    owner: Option<String>,
    lease_ttl: Option<Duration>,
    config: Option<PathBuf>,
    registry: Option<Registry>,
    steps: BTreeMap<String, Arc<dyn Step>>,
) -> runward::Result<Engine> {
    let (mut registry, mut outbound, mut lease_ttl) = (registry, None, lease_ttl);
    if let Some(config) = config {
        let config = Config::load(&config)?;
        outbound = Some(config.outbound.as_ref().clone());
        registry = Some(config.registry()?);
        lease_ttl = lease_ttl.or(config.engine.lease_ttl);
    }
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).await?);
    let owner = owner.unwrap_or_else(engine::default_owner);
    let setup = Setup {
        store,
        owner,
        lease_ttl,
        registry,
        outbound,
    };
    let engine = build(&setup, &steps)?;
    Ok(Engine {
        pid: std::process::id(),
        path,
        setup,
        built: Mutex::new(Built { steps, engine }),
    })
}

/// Calls each event's callback in order on one blocking thread with the GIL; a raising
/// callback is reported as unraisable and the next events still arrive.
fn deliver(callback: Callback, events: mpsc::Receiver<Event>) {
    for event in events {
        let Ok(value) = serde_json::to_value(&event) else {
            continue;
        };
        let attached = Python::try_attach(|py| {
            let arg = match json_to_py(py, &value) {
                Ok(arg) => arg,
                Err(err) => return err.write_unraisable(py, Some(callback.bind(py))),
            };
            if let Err(err) = callback.call1(py, (arg,)) {
                err.write_unraisable(py, Some(callback.bind(py)));
            }
        });
        if attached.is_none() {
            return;
        }
    }
}

/// Runs `fut` (a call that drives run `id`) while `callback` receives each event appended to
/// the run from now on, in order, on a dedicated blocking thread. Returns once `fut` is done
/// and every event has been delivered.
async fn with_events<F>(
    engine: &engine::Engine,
    id: &RunId,
    callback: Option<Callback>,
    fut: F,
) -> runward::Result<RunOutcome>
where
    F: Future<Output = runward::Result<RunOutcome>>,
{
    let Some(callback) = callback else {
        return fut.await;
    };
    let mut events = engine.follow(id, None).await?;
    let (tx, rx) = mpsc::channel::<Event>();
    let dispatcher = tokio::task::spawn_blocking(move || deliver(callback, rx));
    let result = {
        let forward = async {
            loop {
                match events.next().await {
                    Ok(event) => {
                        let _ = tx.send(event);
                    }
                    // The store could not be read; the tail is read again below.
                    Err(_) => std::future::pending::<()>().await,
                }
            }
        };
        tokio::pin!(fut);
        tokio::pin!(forward);
        tokio::select! {
            biased;
            result = &mut fut => result,
            _ = &mut forward => unreachable!("forwarding events never ends"),
        }
    };
    // Whatever the broadcast has not delivered yet is in the store.
    if let Ok(rest) = events.rest().await {
        for event in rest {
            let _ = tx.send(event);
        }
    }
    drop(tx);
    let _ = dispatcher.await;
    result
}

fn outcome_json(outcome: runward::Result<RunOutcome>) -> runward::Result<Value> {
    to_json(&outcome?)
}

async fn run(
    engine: engine::Engine,
    runbook: runward::runbook::Runbook,
    params: BTreeMap<String, Value>,
    started_by: Option<String>,
    callback: Option<Callback>,
) -> runward::Result<Value> {
    let run = engine
        .create(&runbook, &params, started_by.as_deref())
        .await?;
    let driving = engine.resume(&run.id, &runbook, Resume::default());
    outcome_json(with_events(&engine, &run.id, callback, driving).await)
}

async fn create(
    engine: engine::Engine,
    runbook: runward::runbook::Runbook,
    params: BTreeMap<String, Value>,
    started_by: Option<String>,
) -> runward::Result<Value> {
    to_json(
        &engine
            .create(&runbook, &params, started_by.as_deref())
            .await?,
    )
}

/// What an operator call does to a run.
enum Action {
    Resume(Resume),
    Retry(String, Option<String>),
    Skip(String, String),
    Cancel(String, Option<String>),
}

async fn act(
    engine: engine::Engine,
    id: String,
    runbook: runward::runbook::Runbook,
    action: Action,
    callback: Option<Callback>,
) -> runward::Result<Value> {
    let id = RunId::from(id);
    let (e, rb) = (&engine, &runbook);
    let result = match &action {
        Action::Resume(resume) => {
            with_events(e, &id, callback, e.resume(&id, rb, resume.clone())).await
        }
        Action::Retry(who, reason) => {
            let driving = e.retry(&id, rb, who, reason.as_deref());
            with_events(e, &id, callback, driving).await
        }
        Action::Skip(who, reason) => {
            with_events(e, &id, callback, e.skip(&id, rb, who, reason)).await
        }
        Action::Cancel(who, reason) => {
            let driving = e.cancel(&id, rb, who, reason.as_deref());
            with_events(e, &id, callback, driving).await
        }
    };
    outcome_json(result)
}

/// An approval decision.
enum Vote {
    Approve,
    Deny,
    Pending,
}

async fn vote(
    engine: engine::Engine,
    id: String,
    vote: Vote,
    who: String,
    comment: Option<String>,
) -> runward::Result<Value> {
    let id = RunId::from(id);
    let approval = match vote {
        Vote::Approve => engine.approve(&id, &who, comment.as_deref()).await?,
        Vote::Deny => engine.deny(&id, &who, comment.as_deref()).await?,
        Vote::Pending => engine.pending_approval(&id).await?,
    };
    to_json(&approval)
}

async fn sweep(engine: engine::Engine) -> runward::Result<Value> {
    to_json(&engine.sweep().await?)
}

async fn source_of(engine: engine::Engine, id: String) -> runward::Result<Value> {
    let source = engine.source_of(&RunId::from(id)).await?;
    Ok(source
        .map(|p| Value::String(p.display().to_string()))
        .unwrap_or(Value::Null))
}

impl Engine {
    /// The core engine, refused in a process forked after this object was made.
    fn engine(&self, py: Python<'_>) -> PyResult<engine::Engine> {
        if self.pid != std::process::id() {
            return Err(fork_error(py, "this Engine object", self.pid));
        }
        Ok(self
            .built
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .engine
            .clone())
    }
}

/// The arguments of `Engine.open`, read with the GIL held.
type OpenArgs = (
    Option<Duration>,
    Option<Registry>,
    BTreeMap<String, Arc<dyn Step>>,
);

fn open_args(
    py: Python<'_>,
    lease_ttl: Option<f64>,
    config: Option<&PathBuf>,
    health: Option<PyRef<'_, Health>>,
    steps: Option<&Bound<'_, PyDict>>,
) -> PyResult<OpenArgs> {
    if config.is_some() && health.is_some() {
        return Err(invalid(
            "give either config (a runward.toml) or health (a runward.Health), not both",
        ));
    }
    let registry = health.map(|h| h.registry(py)).transpose()?;
    Ok((lease_ttl_of(lease_ttl)?, registry, steps_of(steps)?))
}

#[pymethods]
impl Engine {
    /// Opens (creating if needed, with its folder) the state database at `state_db` and builds
    /// an engine over it. `owner` names this engine's leases (default `<host>:<pid>:<random>`);
    /// `lease_ttl` is how many seconds a lease lasts without renewal (default 30): a run whose
    /// process died is orphaned that long after. `config` (a `runward.toml`) or `health` (a
    /// `runward.Health`) provides the health checks that gates and `probe_first` policies
    /// read; `config` also sets the outbound policy. `steps` maps custom step names to
    /// functions `fn(ctx, params)`. Raises `ConfigError` for a bad configuration and
    /// `StorageError` when the database cannot be opened.
    #[staticmethod]
    #[pyo3(signature = (state_db, *, owner=None, lease_ttl=None, config=None, health=None, steps=None))]
    fn open(
        py: Python<'_>,
        state_db: PathBuf,
        owner: Option<String>,
        lease_ttl: Option<f64>,
        config: Option<PathBuf>,
        health: Option<PyRef<'_, Health>>,
        steps: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let (ttl, registry, steps) = open_args(py, lease_ttl, config.as_ref(), health, steps)?;
        block_on(
            py,
            open_engine(state_db, owner, ttl, config, registry, steps),
        )?
        .map_err(py_err)
    }

    /// Awaitable twin of `open`.
    #[staticmethod]
    #[pyo3(signature = (state_db, *, owner=None, lease_ttl=None, config=None, health=None, steps=None))]
    fn open_async<'py>(
        py: Python<'py>,
        state_db: PathBuf,
        owner: Option<String>,
        lease_ttl: Option<f64>,
        config: Option<PathBuf>,
        health: Option<PyRef<'py, Health>>,
        steps: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (ttl, registry, steps) = open_args(py, lease_ttl, config.as_ref(), health, steps)?;
        runtime(py)?;
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            open_engine(state_db, owner, ttl, config, registry, steps)
                .await
                .map_err(py_err)
        })
    }

    /// The state database file.
    #[getter]
    fn path(&self) -> String {
        self.path.display().to_string()
    }

    /// The name this engine's leases carry.
    #[getter]
    fn owner(&self) -> String {
        self.setup.owner.clone()
    }

    /// The registered custom step names, sorted.
    #[getter]
    fn step_names(&self) -> Vec<String> {
        let built = self.built.lock().unwrap_or_else(|e| e.into_inner());
        built.steps.keys().cloned().collect()
    }

    /// Registers `func` as the custom step `name` (`kind = "custom"`, `name = "<name>"`),
    /// replacing any step of that name. Calls already running keep the steps they started
    /// with. Raises `TypeError` when `func` is not callable.
    fn register_step(&self, name: String, func: Bound<'_, PyAny>) -> PyResult<()> {
        let step = checked_step(name.clone(), func)?;
        let mut built = self.built.lock().unwrap_or_else(|e| e.into_inner());
        built.steps.insert(name, step);
        built.engine = build(&self.setup, &built.steps).map_err(py_err)?;
        Ok(())
    }

    /// Creates a run of `runbook` with `params` and drives it until it finishes or stops at a
    /// decision point (an approval, an operator question). Returns the outcome: `run`, and
    /// `approval` when the run waits for one. `on_event(event)` receives each event of the
    /// run, in order, while it runs, on a runward thread; all have arrived when this returns.
    /// Raises `InvalidInputError` for bad parameters and `ConflictError` when a flag
    /// requirement is not met (nothing is created then).
    #[pyo3(signature = (runbook, params=None, *, started_by=None, on_event=None))]
    fn run(
        &self,
        py: Python<'_>,
        runbook: PyRef<'_, Runbook>,
        params: Option<&Bound<'_, PyAny>>,
        started_by: Option<String>,
        on_event: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Json> {
        let (rb, params, cb) = (
            runbook.inner().clone(),
            params_of(params)?,
            callback_of(on_event)?,
        );
        wait(py, run(self.engine(py)?, rb, params, started_by, cb))
    }

    /// Awaitable twin of `run`.
    #[pyo3(signature = (runbook, params=None, *, started_by=None, on_event=None))]
    fn run_async<'py>(
        &self,
        py: Python<'py>,
        runbook: PyRef<'py, Runbook>,
        params: Option<&Bound<'py, PyAny>>,
        started_by: Option<String>,
        on_event: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (rb, params, cb) = (
            runbook.inner().clone(),
            params_of(params)?,
            callback_of(on_event)?,
        );
        spawn(py, run(self.engine(py)?, rb, params, started_by, cb))
    }

    /// Validates `params`, checks the runbook's flag requirements and creates a `queued` run
    /// pinned to the definition, without driving it; returns the run. Drive it with `resume`.
    #[pyo3(signature = (runbook, params=None, *, started_by=None))]
    fn create(
        &self,
        py: Python<'_>,
        runbook: PyRef<'_, Runbook>,
        params: Option<&Bound<'_, PyAny>>,
        started_by: Option<String>,
    ) -> PyResult<Json> {
        let (rb, params) = (runbook.inner().clone(), params_of(params)?);
        wait(py, create(self.engine(py)?, rb, params, started_by))
    }

    /// Awaitable twin of `create`.
    #[pyo3(signature = (runbook, params=None, *, started_by=None))]
    fn create_async<'py>(
        &self,
        py: Python<'py>,
        runbook: PyRef<'py, Runbook>,
        params: Option<&Bound<'py, PyAny>>,
        started_by: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (rb, params) = (runbook.inner().clone(), params_of(params)?);
        spawn(py, create(self.engine(py)?, rb, params, started_by))
    }

    /// Drives run `run_id` from where it stopped (a queued run starts, an orphaned, failed or
    /// waiting one continues) and returns the outcome. Raises `ConflictError` when another
    /// process holds the run or `runbook` changed since the run started (unless
    /// `override_definition`, which is recorded with `by` and `reason`), `NotFoundError` for
    /// an unknown run, `LeaseLostError` when this engine lost the run while driving it.
    #[pyo3(signature = (run_id, runbook, *, override_definition=false, by=None, reason=None, on_event=None))]
    #[allow(clippy::too_many_arguments)]
    fn resume(
        &self,
        py: Python<'_>,
        run_id: String,
        runbook: PyRef<'_, Runbook>,
        override_definition: bool,
        by: Option<String>,
        reason: Option<String>,
        on_event: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Json> {
        let resume = Resume {
            override_definition,
            by,
            reason,
        };
        let (rb, cb) = (runbook.inner().clone(), callback_of(on_event)?);
        wait(
            py,
            act(self.engine(py)?, run_id, rb, Action::Resume(resume), cb),
        )
    }

    /// Awaitable twin of `resume`.
    #[pyo3(signature = (run_id, runbook, *, override_definition=false, by=None, reason=None, on_event=None))]
    #[allow(clippy::too_many_arguments)]
    fn resume_async<'py>(
        &self,
        py: Python<'py>,
        run_id: String,
        runbook: PyRef<'py, Runbook>,
        override_definition: bool,
        by: Option<String>,
        reason: Option<String>,
        on_event: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let resume = Resume {
            override_definition,
            by,
            reason,
        };
        let (rb, cb) = (runbook.inner().clone(), callback_of(on_event)?);
        spawn(
            py,
            act(self.engine(py)?, run_id, rb, Action::Resume(resume), cb),
        )
    }

    /// Runs the step run `run_id` stopped at again, recording `who` and `reason`: the same
    /// attempt (and idempotency key) when its outcome is unknown, a new one after a failure.
    /// Raises `ConflictError` unless the run is failed, orphaned or waiting.
    #[pyo3(signature = (run_id, runbook, who, reason=None, *, on_event=None))]
    fn retry(
        &self,
        py: Python<'_>,
        run_id: String,
        runbook: PyRef<'_, Runbook>,
        who: String,
        reason: Option<String>,
        on_event: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Json> {
        let (rb, cb) = (runbook.inner().clone(), callback_of(on_event)?);
        wait(
            py,
            act(self.engine(py)?, run_id, rb, Action::Retry(who, reason), cb),
        )
    }

    /// Awaitable twin of `retry`.
    #[pyo3(signature = (run_id, runbook, who, reason=None, *, on_event=None))]
    fn retry_async<'py>(
        &self,
        py: Python<'py>,
        run_id: String,
        runbook: PyRef<'py, Runbook>,
        who: String,
        reason: Option<String>,
        on_event: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (rb, cb) = (runbook.inner().clone(), callback_of(on_event)?);
        spawn(
            py,
            act(self.engine(py)?, run_id, rb, Action::Retry(who, reason), cb),
        )
    }

    /// Records the step run `run_id` stopped at as skipped by `who` because of `reason`, and
    /// goes on. Raises `InvalidInputError` for a blank reason and `ConflictError` unless the
    /// run is failed, orphaned or waiting.
    #[pyo3(signature = (run_id, runbook, who, reason, *, on_event=None))]
    fn skip(
        &self,
        py: Python<'_>,
        run_id: String,
        runbook: PyRef<'_, Runbook>,
        who: String,
        reason: String,
        on_event: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Json> {
        let (rb, cb) = (runbook.inner().clone(), callback_of(on_event)?);
        wait(
            py,
            act(self.engine(py)?, run_id, rb, Action::Skip(who, reason), cb),
        )
    }

    /// Awaitable twin of `skip`.
    #[pyo3(signature = (run_id, runbook, who, reason, *, on_event=None))]
    fn skip_async<'py>(
        &self,
        py: Python<'py>,
        run_id: String,
        runbook: PyRef<'py, Runbook>,
        who: String,
        reason: String,
        on_event: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (rb, cb) = (runbook.inner().clone(), callback_of(on_event)?);
        spawn(
            py,
            act(self.engine(py)?, run_id, rb, Action::Skip(who, reason), cb),
        )
    }

    /// Cancels run `run_id` for `who`: when no process drives it, runs its cancel path here
    /// and returns the result; when one does, that process runs the cancel path within about
    /// a second and this returns the run as it is. Raises `ConflictError` for a closed run.
    #[pyo3(signature = (run_id, runbook, who, reason=None, *, on_event=None))]
    fn cancel(
        &self,
        py: Python<'_>,
        run_id: String,
        runbook: PyRef<'_, Runbook>,
        who: String,
        reason: Option<String>,
        on_event: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Json> {
        let (rb, cb) = (runbook.inner().clone(), callback_of(on_event)?);
        wait(
            py,
            act(
                self.engine(py)?,
                run_id,
                rb,
                Action::Cancel(who, reason),
                cb,
            ),
        )
    }

    /// Awaitable twin of `cancel`.
    #[pyo3(signature = (run_id, runbook, who, reason=None, *, on_event=None))]
    fn cancel_async<'py>(
        &self,
        py: Python<'py>,
        run_id: String,
        runbook: PyRef<'py, Runbook>,
        who: String,
        reason: Option<String>,
        on_event: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (rb, cb) = (runbook.inner().clone(), callback_of(on_event)?);
        spawn(
            py,
            act(
                self.engine(py)?,
                run_id,
                rb,
                Action::Cancel(who, reason),
                cb,
            ),
        )
    }

    /// Adds `who`'s approval to the request run `run_id` waits for and returns the request
    /// (`status` is `approved` once the quorum is met: then `resume` the run). Raises
    /// `PolicyDeniedError` (nothing changes) for someone outside the approvers or a starter
    /// the step forbids, `ConflictError` when the run waits for no open request.
    #[pyo3(signature = (run_id, who, comment=None))]
    fn approve(
        &self,
        py: Python<'_>,
        run_id: String,
        who: String,
        comment: Option<String>,
    ) -> PyResult<Json> {
        wait(
            py,
            vote(self.engine(py)?, run_id, Vote::Approve, who, comment),
        )
    }

    /// Awaitable twin of `approve`.
    #[pyo3(signature = (run_id, who, comment=None))]
    fn approve_async<'py>(
        &self,
        py: Python<'py>,
        run_id: String,
        who: String,
        comment: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        spawn(
            py,
            vote(self.engine(py)?, run_id, Vote::Approve, who, comment),
        )
    }

    /// Denies the request run `run_id` waits for and returns it; resuming the run then fails
    /// the step. Raises like `approve`.
    #[pyo3(signature = (run_id, who, comment=None))]
    fn deny(
        &self,
        py: Python<'_>,
        run_id: String,
        who: String,
        comment: Option<String>,
    ) -> PyResult<Json> {
        wait(py, vote(self.engine(py)?, run_id, Vote::Deny, who, comment))
    }

    /// Awaitable twin of `deny`.
    #[pyo3(signature = (run_id, who, comment=None))]
    fn deny_async<'py>(
        &self,
        py: Python<'py>,
        run_id: String,
        who: String,
        comment: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        spawn(py, vote(self.engine(py)?, run_id, Vote::Deny, who, comment))
    }

    /// The approval request run `run_id` waits for. Raises `ConflictError` when there is none.
    fn pending_approval(&self, py: Python<'_>, run_id: String) -> PyResult<Json> {
        let pending = vote(self.engine(py)?, run_id, Vote::Pending, String::new(), None);
        wait(py, pending)
    }

    /// Awaitable twin of `pending_approval`.
    fn pending_approval_async<'py>(
        &self,
        py: Python<'py>,
        run_id: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        let pending = vote(self.engine(py)?, run_id, Vote::Pending, String::new(), None);
        spawn(py, pending)
    }

    /// Marks runs whose process died (lease expired) `orphaned` and expired approvals
    /// `timed_out`, recording each in the run's evidence; returns `orphaned` (runs) and
    /// `approvals_timed_out`. Any number of processes may call it, at any time.
    fn sweep(&self, py: Python<'_>) -> PyResult<Json> {
        wait(py, sweep(self.engine(py)?))
    }

    /// Awaitable twin of `sweep`.
    fn sweep_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        spawn(py, sweep(self.engine(py)?))
    }

    /// The runbook file run `run_id` was started from (an absolute path), or `None` for a
    /// runbook parsed from text or a run not started yet.
    fn source_of(&self, py: Python<'_>, run_id: String) -> PyResult<Json> {
        wait(py, source_of(self.engine(py)?, run_id))
    }

    /// Awaitable twin of `source_of`.
    fn source_of_async<'py>(&self, py: Python<'py>, run_id: String) -> PyResult<Bound<'py, PyAny>> {
        spawn(py, source_of(self.engine(py)?, run_id))
    }

    fn __repr__(&self) -> String {
        format!(
            "<Engine {:?} owner={:?}>",
            self.path.display().to_string(),
            self.setup.owner
        )
    }
}
