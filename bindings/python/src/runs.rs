//! `runward.Runs` and `runward.Scheduler`: the runs of a state database, as `runward runbook
//! list|show|export` read them, and the schedules of a `runward.toml`, as `runward schedule
//! list|tick` run them.

use crate::convert::Json;
use crate::errors::py_err;
use crate::runtime::{block_on, fork_error, runtime};
use pyo3::prelude::*;
use runward::config::Config;
use runward::runbook::Evidence;
use runward::schedule::{self, Schedule, parse_time};
use runward::store::{RunFilter, RunId, RunStatus, SqliteStore, Store, Timestamp};
use runward::{Error, ErrorKind};
use serde_json::Value;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How many runs `list` returns when no limit is given, as `runward runbook list` does.
const DEFAULT_LIMIT: u32 = 50;

pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> runward::Result<Value> {
    serde_json::to_value(value).map_err(|e| Error::new(ErrorKind::Internal, e.to_string()))
}

/// Runs `fut` on runward's runtime with the GIL released.
pub(crate) fn wait<F>(py: Python<'_>, fut: F) -> PyResult<Json>
where
    F: Future<Output = runward::Result<Value>> + Send,
{
    block_on(py, fut)?.map(Json).map_err(py_err)
}

/// An awaitable of `fut`, run on runward's runtime.
pub(crate) fn spawn<'py, F>(py: Python<'py>, fut: F) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = runward::Result<Value>> + Send + 'static,
{
    runtime(py)?;
    pyo3_async_runtimes::tokio::future_into_py(
        py,
        async move { fut.await.map(Json).map_err(py_err) },
    )
}

/// The runs recorded in a SQLite state database (`.runward/state.db` for the CLI).
///
/// Made with `Runs.open(path)` or `await Runs.open_async(path)`. Runs, attempts and events are
/// returned as dicts, the JSON of `runward runbook list|show --json`; `export` returns the
/// evidence document of `runward runbook export`.
#[pyclass(module = "runward", name = "Runs", frozen)]
pub(crate) struct Runs {
    pid: u32,
    path: PathBuf,
    store: Arc<SqliteStore>,
}

async fn open_runs(path: PathBuf) -> runward::Result<Runs> {
    let store = SqliteStore::open(&path).await?;
    Ok(Runs {
        pid: std::process::id(),
        path,
        store: Arc::new(store),
    })
}

async fn list(
    store: Arc<SqliteStore>,
    status: Option<Vec<String>>,
    since_ms: Option<u64>,
    runbook: Option<String>,
    limit: u32,
) -> runward::Result<Value> {
    let statuses = status
        .unwrap_or_default()
        .iter()
        .map(|s| s.parse::<RunStatus>())
        .collect::<runward::Result<Vec<_>>>()?;
    let filter = RunFilter {
        statuses,
        runbook,
        updated_after: since_ms.map(|ms| Timestamp::now() - Duration::from_millis(ms)),
        limit: Some(limit),
        ..RunFilter::default()
    };
    to_json(&store.list_runs(&filter).await?)
}

async fn show(store: Arc<SqliteStore>, run_id: String) -> runward::Result<Value> {
    to_json(&store.run_details(&RunId::from(run_id)).await?)
}

async fn export(store: Arc<SqliteStore>, run_id: String, format: String) -> runward::Result<Value> {
    let render: fn(&Evidence) -> String = match format.as_str() {
        "markdown" => Evidence::to_markdown,
        "json" => Evidence::to_json,
        other => {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("unknown export format `{other}`; expected markdown or json"),
            ));
        }
    };
    let evidence = Evidence::collect(store.as_ref(), &RunId::from(run_id)).await?;
    Ok(Value::String(render(&evidence)))
}

async fn verify(store: Arc<SqliteStore>, run_id: String) -> runward::Result<Value> {
    to_json(&store.verify_events(&RunId::from(run_id)).await?)
}

impl Runs {
    /// The store, refused in a process forked after this object was made.
    fn store(&self, py: Python<'_>) -> PyResult<Arc<SqliteStore>> {
        if self.pid != std::process::id() {
            return Err(fork_error(py, "this Runs object", self.pid));
        }
        Ok(self.store.clone())
    }
}

#[pymethods]
impl Runs {
    /// Opens (creating if needed, with its folder) the state database at `path` and migrates
    /// it. Raises `StorageError` when it cannot be opened.
    #[staticmethod]
    fn open(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        block_on(py, open_runs(path))?.map_err(py_err)
    }

    /// Awaitable twin of `open`.
    #[staticmethod]
    fn open_async(py: Python<'_>, path: PathBuf) -> PyResult<Bound<'_, PyAny>> {
        runtime(py)?;
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            open_runs(path).await.map_err(py_err)
        })
    }

    /// The state database file.
    #[getter]
    fn path(&self) -> String {
        self.path.display().to_string()
    }

    /// Runs, newest first: in any of `status` (names such as `failed`), changed in the last
    /// `since_ms` milliseconds, of `runbook`, at most `limit`. An unknown status raises
    /// `InvalidInputError` listing the valid ones.
    #[pyo3(signature = (status=None, since_ms=None, runbook=None, limit=DEFAULT_LIMIT))]
    fn list(
        &self,
        py: Python<'_>,
        status: Option<Vec<String>>,
        since_ms: Option<u64>,
        runbook: Option<String>,
        limit: u32,
    ) -> PyResult<Json> {
        wait(py, list(self.store(py)?, status, since_ms, runbook, limit))
    }

    /// Awaitable twin of `list`.
    #[pyo3(signature = (status=None, since_ms=None, runbook=None, limit=DEFAULT_LIMIT))]
    fn list_async<'py>(
        &self,
        py: Python<'py>,
        status: Option<Vec<String>>,
        since_ms: Option<u64>,
        runbook: Option<String>,
        limit: u32,
    ) -> PyResult<Bound<'py, PyAny>> {
        spawn(py, list(self.store(py)?, status, since_ms, runbook, limit))
    }

    /// The run with its step attempts and events (`run`, `attempts`, `events`). Raises
    /// `NotFoundError` for an unknown run.
    fn show(&self, py: Python<'_>, run_id: String) -> PyResult<Json> {
        wait(py, show(self.store(py)?, run_id))
    }

    /// Awaitable twin of `show`.
    fn show_async<'py>(&self, py: Python<'py>, run_id: String) -> PyResult<Bound<'py, PyAny>> {
        spawn(py, show(self.store(py)?, run_id))
    }

    /// The run's evidence document, `markdown` or `json`: the run, its attempts, its events
    /// and the verdict on their hash chain. Raises `NotFoundError` for an unknown run and
    /// `InvalidInputError` for another format.
    #[pyo3(signature = (run_id, format="markdown".to_owned()))]
    fn export(&self, py: Python<'_>, run_id: String, format: String) -> PyResult<Json> {
        wait(py, export(self.store(py)?, run_id, format))
    }

    /// Awaitable twin of `export`.
    #[pyo3(signature = (run_id, format="markdown".to_owned()))]
    fn export_async<'py>(
        &self,
        py: Python<'py>,
        run_id: String,
        format: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        spawn(py, export(self.store(py)?, run_id, format))
    }

    /// Verifies the run's event chain: `events` read, `last_good_seq`, and `first_bad`
    /// (`None` when intact). Raises `NotFoundError` for an unknown run.
    fn verify(&self, py: Python<'_>, run_id: String) -> PyResult<Json> {
        wait(py, verify(self.store(py)?, run_id))
    }

    /// Awaitable twin of `verify`.
    fn verify_async<'py>(&self, py: Python<'py>, run_id: String) -> PyResult<Bound<'py, PyAny>> {
        spawn(py, verify(self.store(py)?, run_id))
    }

    fn __repr__(&self) -> String {
        format!("<Runs {:?}>", self.path.display().to_string())
    }
}

/// The `[[schedules]]` of a `runward.toml` over its state database.
///
/// Made with `Scheduler.from_config(path)`. `list` and `tick` first write the configuration's
/// schedules to the store, as `runward schedule list|tick` do; every due time is claimed once
/// across all processes sharing the database.
#[pyclass(module = "runward", name = "Scheduler", frozen)]
pub(crate) struct Scheduler {
    pid: u32,
    config: PathBuf,
    schedules: Arc<Vec<Schedule>>,
    inner: Arc<schedule::Scheduler>,
}

type Shared = (Arc<Vec<Schedule>>, Arc<schedule::Scheduler>);

async fn from_config(path: PathBuf) -> runward::Result<Scheduler> {
    let config = Config::load(&path)?;
    let store: Arc<dyn Store> = Arc::new(config.open_store().await?);
    Ok(Scheduler {
        pid: std::process::id(),
        config: path,
        schedules: Arc::new(config.schedules),
        inner: Arc::new(schedule::Scheduler::new(store)),
    })
}

async fn sync((schedules, scheduler): Shared) -> runward::Result<Value> {
    to_json(&scheduler.sync(&schedules).await?)
}

async fn status((schedules, scheduler): Shared) -> runward::Result<Value> {
    scheduler.sync(&schedules).await?;
    to_json(&scheduler.status(Timestamp::now()).await?)
}

async fn tick((schedules, scheduler): Shared, now: Option<String>) -> runward::Result<Value> {
    let now = match now {
        Some(text) => parse_time(&text)?,
        None => Timestamp::now(),
    };
    let synced = scheduler.sync(&schedules).await?;
    let mut report = to_json(&scheduler.tick(now).await?)?;
    report["synced"] = to_json(&synced)?;
    Ok(report)
}

impl Scheduler {
    /// The schedules and the core scheduler, refused in a process forked after this object
    /// was made.
    fn shared(&self, py: Python<'_>) -> PyResult<Shared> {
        if self.pid != std::process::id() {
            return Err(fork_error(py, "this Scheduler object", self.pid));
        }
        Ok((self.schedules.clone(), self.inner.clone()))
    }
}

#[pymethods]
impl Scheduler {
    /// Loads `runward.toml` at `path` (its `[[schedules]]` validated: spec, zone, runbook
    /// file, parameters) and opens its state database. Raises `ConfigError` naming the file,
    /// line and key.
    #[staticmethod]
    fn from_config(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        block_on(py, from_config(path))?.map_err(py_err)
    }

    /// Awaitable twin of `from_config`.
    #[staticmethod]
    fn from_config_async(py: Python<'_>, path: PathBuf) -> PyResult<Bound<'_, PyAny>> {
        runtime(py)?;
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            from_config(path).await.map_err(py_err)
        })
    }

    /// The configuration file.
    #[getter]
    fn config(&self) -> String {
        self.config.display().to_string()
    }

    /// Writes the configuration's schedules to the store and returns which were `added`,
    /// `updated` or `unchanged`. Stored schedules the configuration lacks stay.
    fn sync(&self, py: Python<'_>) -> PyResult<Json> {
        wait(py, sync(self.shared(py)?))
    }

    /// Awaitable twin of `sync`.
    fn sync_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        spawn(py, sync(self.shared(py)?))
    }

    /// Every stored schedule (after a sync) with its `next_due` time and `last_fire`, the
    /// JSON of `runward schedule list --json`.
    fn list(&self, py: Python<'_>) -> PyResult<Json> {
        wait(py, status(self.shared(py)?))
    }

    /// Awaitable twin of `list`.
    fn list_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        spawn(py, status(self.shared(py)?))
    }

    /// Syncs, then writes every due time up to `now` (RFC 3339 text such as
    /// `2026-11-23T10:00:00Z`; default: the current time) to the fire ledger, and returns the
    /// report of `runward schedule tick --json`: `claimed` (with their new runs), `lost`,
    /// `skipped`, `missed` (with reasons), `errors` and `synced`. A `now` that is not RFC 3339
    /// raises `InvalidInputError`.
    #[pyo3(signature = (now=None))]
    fn tick(&self, py: Python<'_>, now: Option<String>) -> PyResult<Json> {
        wait(py, tick(self.shared(py)?, now))
    }

    /// Awaitable twin of `tick`.
    #[pyo3(signature = (now=None))]
    fn tick_async<'py>(&self, py: Python<'py>, now: Option<String>) -> PyResult<Bound<'py, PyAny>> {
        spawn(py, tick(self.shared(py)?, now))
    }

    fn __repr__(&self) -> String {
        format!(
            "<Scheduler {:?} ({} schedules)>",
            self.config.display().to_string(),
            self.schedules.len()
        )
    }
}
