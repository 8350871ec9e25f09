//! `runward.Health`: a core health registry built from `runward.toml` and Python checks.

use crate::convert::{Json, check_state_json, json_to_py, transition_json};
use crate::errors::{invalid, py_err};
use crate::probe::python_probe;
use crate::runtime::{block_on, fork_error, runtime};
use crate::server::Server;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use runward::config::{Config, DetailPolicy};
use runward::health::endpoints::{self, EndpointOptions, ProbeRequest};
use runward::health::limits::ServerLimitsOverrides;
use runward::health::render::{self, Detail};
use runward::health::{
    CheckSpec, ProbeKind, Registry, Report, Schedule, Transition, Values, doctor,
};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

enum State {
    /// Checks are still being added.
    Building(Vec<CheckSpec>),
    /// The registry exists; its checks are fixed.
    Built(Registry),
}

/// Service identity and heartbeat given to the constructor; they override the configuration.
#[derive(Default)]
struct Overrides {
    service_id: Option<String>,
    version: Option<String>,
    release_id: Option<String>,
    description: Option<String>,
    heartbeat_timeout_ms: Option<u64>,
}

/// Transition callbacks, called in order on one `runward-hooks` thread with the GIL.
#[derive(Default)]
struct Hooks {
    callbacks: Mutex<Vec<Arc<Py<PyAny>>>>,
    sender: Mutex<Option<Sender<Transition>>>,
}

impl Hooks {
    fn forward(&self, transition: &Transition) {
        if let Some(sender) = &*self.sender.lock().unwrap_or_else(|e| e.into_inner()) {
            let _ = sender.send(transition.clone());
        }
    }

    /// Starts the dispatcher thread once. It ends when the registry and the Health are gone.
    fn ensure_thread(self: &Arc<Self>) -> std::io::Result<()> {
        let mut sender = self.sender.lock().unwrap_or_else(|e| e.into_inner());
        if sender.is_some() {
            return Ok(());
        }
        let (tx, rx) = channel::<Transition>();
        let hooks: Weak<Hooks> = Arc::downgrade(self);
        std::thread::Builder::new()
            .name("runward-hooks".into())
            .spawn(move || {
                for transition in rx {
                    let Some(hooks) = hooks.upgrade() else { return };
                    let callbacks = hooks
                        .callbacks
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .clone();
                    drop(hooks);
                    let value = transition_json(&transition);
                    let attached = Python::try_attach(|py| {
                        let Ok(arg) = json_to_py(py, &value) else {
                            return;
                        };
                        for callback in &callbacks {
                            if let Err(err) = callback.call1(py, (arg.clone(),)) {
                                err.write_unraisable(py, Some(callback.bind(py)));
                            }
                        }
                    });
                    if attached.is_none() {
                        return;
                    }
                }
            })?;
        *sender = Some(tx);
        Ok(())
    }
}

/// `(status, headers, body)` of `Health.handle`.
type HandleAnswer = (u16, Vec<(&'static str, String)>, String);

/// The core's answer as `(status, headers, body)`.
fn handle_answer(answer: endpoints::ProbeResponse) -> HandleAnswer {
    let headers = answer
        .headers()
        .map(|(name, value)| (name, value.to_owned()))
        .to_vec();
    (answer.status, headers, answer.body)
}

fn parse_kind(kind: &str) -> PyResult<ProbeKind> {
    kind.parse::<ProbeKind>().map_err(py_err)
}

fn parse_detail(detail: &str) -> PyResult<Detail> {
    match detail {
        "full" => Ok(Detail::Full),
        "status" => Ok(Detail::StatusOnly),
        other => Err(invalid(format!(
            "unknown detail `{other}`: expected one of full, status"
        ))),
    }
}

fn parse_policy(policy: &str) -> PyResult<DetailPolicy> {
    serde_json::from_value(serde_json::Value::String(policy.to_owned()))
        .map_err(|e| invalid(format!("invalid details policy `{policy}`: {e}")))
}

/// A health registry: checks from `runward.toml` and from Python, answered from a snapshot.
///
/// Checks are added until the registry is built, which happens on the first call that needs
/// it: anything but `add_check`, `on_transition`, `set_value` and `add_value`.
#[pyclass(module = "runward", name = "Health", frozen)]
pub(crate) struct Health {
    pid: u32,
    config: Config,
    overrides: Overrides,
    values: Arc<Values>,
    state: Mutex<State>,
    hooks: Arc<Hooks>,
    servers: Mutex<Vec<Py<Server>>>,
}

impl Health {
    fn check_process(&self, py: Python<'_>) -> PyResult<()> {
        if self.pid != std::process::id() {
            return Err(fork_error(py, "this Health object", self.pid));
        }
        Ok(())
    }

    /// The registry, built on first use.
    pub(crate) fn registry(&self, py: Python<'_>) -> PyResult<Registry> {
        self.check_process(py)?;
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let specs = match &*state {
            State::Built(registry) => return Ok(registry.clone()),
            State::Building(specs) => specs.clone(),
        };
        let registry = self.builder(specs).build().map_err(py_err)?;
        let hooks = self.hooks.clone();
        registry.on_transition(move |t| hooks.forward(t));
        *state = State::Built(registry.clone());
        Ok(registry)
    }

    fn builder(&self, specs: Vec<CheckSpec>) -> runward::health::RegistryBuilder {
        let service = &self.config.service;
        let o = &self.overrides;
        let mut builder = Registry::builder().values(self.values.clone());
        if let Some(id) = o.service_id.as_ref().or(service.id.as_ref()) {
            builder = builder.service_id(id);
        }
        if let Some(version) = o.version.as_ref().or(service.version.as_ref()) {
            builder = builder.version(version);
        }
        if let Some(release) = o.release_id.as_ref().or(service.release.as_ref()) {
            builder = builder.release_id(release);
        }
        if let Some(description) = o.description.as_ref().or(service.description.as_ref()) {
            builder = builder.description(description);
        }
        if let Some(ms) = o
            .heartbeat_timeout_ms
            .or(self.config.health.heartbeat_timeout_ms)
        {
            builder = builder.heartbeat_timeout(Duration::from_millis(ms));
        }
        for spec in specs {
            builder = builder.check(spec);
        }
        builder
    }

    fn report_of(&self, py: Python<'_>, kind: Option<&str>) -> PyResult<Report> {
        let registry = self.registry(py)?;
        Ok(match kind {
            Some(kind) => registry.evaluate(parse_kind(kind)?),
            None => registry.evaluate_all(),
        })
    }

    /// The endpoint options: the configuration's `[server]` (token from its `token_env`),
    /// overridden by the arguments.
    fn endpoint_options(
        &self,
        details: Option<&str>,
        token: Option<String>,
        check_metrics: Option<bool>,
    ) -> PyResult<EndpointOptions> {
        let details = details.map(parse_policy).transpose()?;
        Ok(self
            .config
            .endpoint_options()
            .overridden(details, token, check_metrics))
    }
}

#[pymethods]
impl Health {
    /// Loads `config` (a path to `runward.toml`; relative paths in it resolve against its
    /// directory) or starts empty. Keyword arguments override the file's `[service]` and
    /// `[health]` values. Raises `ConfigError` (with `file:line:column`) for a bad file and
    /// `NotFoundError` for a missing one.
    #[new]
    #[pyo3(signature = (config=None, *, service_id=None, version=None, release_id=None, description=None, heartbeat_timeout_ms=None))]
    fn new(
        config: Option<PathBuf>,
        service_id: Option<String>,
        version: Option<String>,
        release_id: Option<String>,
        description: Option<String>,
        heartbeat_timeout_ms: Option<u64>,
    ) -> PyResult<Self> {
        let config = match config {
            Some(path) => Config::load(path).map_err(py_err)?,
            // No file: no checks, and the defaults of every section.
            None => Config::parse("", None, Path::new(".")).map_err(py_err)?,
        };
        let specs = config.check_specs().map_err(py_err)?;
        Ok(Health {
            pid: std::process::id(),
            config,
            overrides: Overrides {
                service_id,
                version,
                release_id,
                description,
                heartbeat_timeout_ms,
            },
            values: Arc::new(Values::default()),
            state: Mutex::new(State::Building(specs)),
            hooks: Arc::default(),
            servers: Mutex::new(Vec::new()),
        })
    }

    /// Adds a check that calls `fn()` (no arguments): a plain function runs on runward's
    /// blocking threads, an `async def` function on an asyncio loop (`event_loop`, default
    /// runward's own loop thread). See the package documentation for what `fn` may return.
    /// Raises `InvalidInputError` for invalid settings, a duplicate name, or once the registry
    /// is built.
    #[pyo3(signature = (name, func, *, probes=vec!["readiness".to_owned()], critical=true, timeout_ms=2500, interval_ms=10_000, mode="periodic", ttl_ms=5_000, initial_delay_ms=0, jitter_ms=None, max_age_ms=None, failure_threshold=1, success_threshold=1, component_type=None, affected_endpoints=None, remediation=None, event_loop=None))]
    #[allow(clippy::too_many_arguments)]
    fn add_check(
        &self,
        py: Python<'_>,
        name: String,
        func: Py<PyAny>,
        probes: Vec<String>,
        critical: bool,
        timeout_ms: u64,
        interval_ms: u64,
        mode: &str,
        ttl_ms: u64,
        initial_delay_ms: u64,
        jitter_ms: Option<u64>,
        max_age_ms: Option<u64>,
        failure_threshold: u32,
        success_threshold: u32,
        component_type: Option<String>,
        affected_endpoints: Option<Vec<String>>,
        remediation: Option<String>,
        event_loop: Option<Py<PyAny>>,
    ) -> PyResult<()> {
        self.check_process(py)?;
        if !func.bind(py).is_callable() {
            return Err(PyTypeError::new_err(
                "the check must be a function or an async function",
            ));
        }
        let kinds = probes
            .iter()
            .map(|k| parse_kind(k))
            .collect::<PyResult<Vec<_>>>()?;
        let schedule = match mode {
            "periodic" => {
                let interval = Duration::from_millis(interval_ms);
                let Schedule::Periodic { jitter, .. } = Schedule::every(interval) else {
                    unreachable!()
                };
                Schedule::Periodic {
                    interval,
                    initial_delay: Duration::from_millis(initial_delay_ms),
                    jitter: jitter_ms.map(Duration::from_millis).unwrap_or(jitter),
                }
            }
            "on_demand" => Schedule::OnDemand {
                ttl: Duration::from_millis(ttl_ms),
            },
            other => {
                return Err(invalid(format!(
                    "`mode` is `{other}`: expected one of periodic, on_demand"
                )));
            }
        };
        let probe = python_probe(py, func, event_loop)?;
        let mut spec = CheckSpec::new(name, probe)
            .kinds(kinds)
            .critical(critical)
            .timeout(Duration::from_millis(timeout_ms))
            .schedule(schedule)
            .failure_threshold(failure_threshold)
            .success_threshold(success_threshold);
        if let Some(ms) = max_age_ms {
            spec = spec.max_age(Duration::from_millis(ms));
        }
        if let Some(t) = component_type {
            spec = spec.component_type(t);
        }
        if let Some(eps) = affected_endpoints {
            spec = spec.affected_endpoints(eps);
        }
        if let Some(hint) = remediation {
            spec = spec.remediation(hint);
        }
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let State::Building(specs) = &mut *state else {
            return Err(invalid(
                "checks cannot be added once the registry is built (by start, refresh, status, serve, \
                 handle, ...): add every check first",
            ));
        };
        // Let the core validate the names and settings now rather than at build time.
        let mut trial = Registry::builder();
        for s in specs.iter().chain(std::iter::once(&spec)) {
            trial = trial.check(s.clone());
        }
        trial.build().map_err(py_err)?;
        specs.push(spec);
        Ok(())
    }

    /// Starts the periodic checks on runward's own threads. Calling it again has no effect.
    fn start(&self, py: Python<'_>) -> PyResult<()> {
        let registry = self.registry(py)?;
        registry.start_on(runtime(py)?.handle());
        Ok(())
    }

    /// Stops the periodic checks; the snapshot stays readable.
    fn stop(&self, py: Python<'_>) -> PyResult<()> {
        self.registry(py)?.stop();
        Ok(())
    }

    /// Runs every check now and waits for all of them (the GIL is released meanwhile).
    fn refresh_all(&self, py: Python<'_>) -> PyResult<()> {
        let registry = self.registry(py)?;
        block_on(py, registry.refresh_all())
    }

    /// Awaitable twin of `refresh_all`.
    fn refresh_all_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let registry = self.registry(py)?;
        runtime(py)?;
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            registry.refresh_all().await;
            Ok(())
        })
    }

    /// Runs one check now (joining a run in flight) and returns its state as a dict.
    /// Raises `NotFoundError` for an unknown name.
    fn refresh(&self, py: Python<'_>, name: String) -> PyResult<Json> {
        let registry = self.registry(py)?;
        let state = block_on(py, registry.refresh(&name))?.map_err(py_err)?;
        Ok(Json(check_state_json(&name, &state)))
    }

    /// Awaitable twin of `refresh`.
    fn refresh_async<'py>(&self, py: Python<'py>, name: String) -> PyResult<Bound<'py, PyAny>> {
        let registry = self.registry(py)?;
        runtime(py)?;
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let state = registry.refresh(&name).await.map_err(py_err)?;
            Ok(Json(check_state_json(&name, &state)))
        })
    }

    /// The status of one probe kind from the snapshot: `pass`, `warn`, `fail` or `unknown`.
    #[pyo3(signature = (kind="readiness"))]
    fn status(&self, py: Python<'_>, kind: &str) -> PyResult<&'static str> {
        let kind = parse_kind(kind)?;
        Ok(self.registry(py)?.status(kind).as_str())
    }

    /// The health+json document of one probe kind, or of every check when `kind` is None.
    /// `detail="status"` gives what anonymous callers see.
    #[pyo3(signature = (kind=None, detail="full"))]
    fn report(&self, py: Python<'_>, kind: Option<&str>, detail: &str) -> PyResult<Json> {
        let detail = parse_detail(detail)?;
        let report = self.report_of(py, kind)?;
        Ok(Json(render::health_json(&report, detail)))
    }

    /// A human table of one probe kind, or of every check.
    #[pyo3(signature = (kind=None))]
    fn table(&self, py: Python<'_>, kind: Option<&str>) -> PyResult<String> {
        Ok(render::table(&self.report_of(py, kind)?))
    }

    /// Kubernetes-style `?verbose` text of one probe kind, or of every check.
    #[pyo3(signature = (kind=None))]
    fn verbose(&self, py: Python<'_>, kind: Option<&str>) -> PyResult<String> {
        Ok(render::verbose(&self.report_of(py, kind)?, Detail::Full))
    }

    /// Prometheus text exposition. Never runs a check.
    fn prometheus(&self, py: Python<'_>) -> PyResult<String> {
        Ok(render::prometheus(&self.registry(py)?))
    }

    /// Runs every check now; with `fix`, applies the fixers of failing checks and reruns them.
    /// Returns the doctor report as a dict (`status`, `exit_code`, `checks`, `warnings`, `values`).
    #[pyo3(signature = (fix=false))]
    fn doctor(&self, py: Python<'_>, fix: bool) -> PyResult<Json> {
        let registry = self.registry(py)?;
        let report = block_on(py, doctor::doctor(&registry, fix))?;
        Ok(Json(serde_json::to_value(&report).unwrap_or_default()))
    }

    /// Awaitable twin of `doctor`.
    #[pyo3(signature = (fix=false))]
    fn doctor_async<'py>(&self, py: Python<'py>, fix: bool) -> PyResult<Bound<'py, PyAny>> {
        let registry = self.registry(py)?;
        runtime(py)?;
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let report = doctor::doctor(&registry, fix).await;
            Ok(Json(serde_json::to_value(&report).unwrap_or_default()))
        })
    }

    /// Records that the host's main loop is alive (see `heartbeat_timeout_ms`).
    fn heartbeat(&self, py: Python<'_>) -> PyResult<()> {
        self.registry(py)?.heartbeat();
        Ok(())
    }

    /// Sets a gauge shown in every output.
    fn set_value(&self, name: &str, value: f64) {
        self.values.set(name, value);
    }

    /// Adds `delta` to a counter (from zero) and returns the new value.
    fn add_value(&self, name: &str, delta: f64) -> f64 {
        self.values.add(name, delta)
    }

    /// Closes a manual readiness gate: readiness fails until it is opened.
    fn close_gate(&self, py: Python<'_>, name: &str, reason: &str) -> PyResult<()> {
        self.registry(py)?.close_gate(name, reason);
        Ok(())
    }

    /// Opens a manual readiness gate.
    fn open_gate(&self, py: Python<'_>, name: &str) -> PyResult<()> {
        self.registry(py)?.open_gate(name);
        Ok(())
    }

    /// Starts shutdown: readiness fails at once; liveness keeps passing.
    fn begin_shutdown(&self, py: Python<'_>) -> PyResult<()> {
        self.registry(py)?.begin_shutdown();
        Ok(())
    }

    /// Records that in-flight work has drained; a server in `shutdown` stops waiting.
    fn mark_drained(&self, py: Python<'_>) -> PyResult<()> {
        self.registry(py)?.mark_drained();
        Ok(())
    }

    /// Whether shutdown has begun.
    #[getter]
    fn shutting_down(&self, py: Python<'_>) -> PyResult<bool> {
        Ok(self.registry(py)?.is_shutting_down())
    }

    /// Registers `callback(transition: dict)`, called after every status change of a check,
    /// in order, on a `runward-hooks` thread with the GIL. Its exceptions go to
    /// `sys.unraisablehook`.
    fn on_transition(&self, py: Python<'_>, callback: Py<PyAny>) -> PyResult<()> {
        self.check_process(py)?;
        if !callback.bind(py).is_callable() {
            return Err(PyTypeError::new_err("on_transition needs a callable"));
        }
        self.hooks.ensure_thread()?;
        self.hooks
            .callbacks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::new(callback));
        Ok(())
    }

    /// Configuration warnings found when the registry was built.
    #[getter]
    fn warnings(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        Ok(self.registry(py)?.warnings().to_vec())
    }

    /// The check names, in registration order (configuration first).
    #[getter]
    fn check_names(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        Ok(self.registry(py)?.check_names())
    }

    /// Serves `/livez`, `/readyz`, `/readyz/<check>`, `/startupz`, `/healthz` and `/metrics`
    /// on runward's own threads (they answer while the GIL is busy) and starts the periodic
    /// checks. `addr` defaults to the configuration's `[server] addr`; `details` (`loopback`,
    /// `token`, `public`, `none`) and `token` to its policy and token; `check_metrics=False`
    /// leaves the per-check series (labelled with check names) out of `/metrics`. The
    /// connection limits (`header_read_timeout_ms`, `idle_timeout_ms`, `max_connections`,
    /// `max_header_bytes`, `max_body_bytes`) default to `[server.limits]`. The server runs
    /// until `shutdown`/`close`, or until this Health is garbage-collected.
    #[pyo3(signature = (
        addr=None, *, details=None, token=None, check_metrics=None, header_read_timeout_ms=None,
        idle_timeout_ms=None, max_connections=None, max_header_bytes=None, max_body_bytes=None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn serve(
        &self,
        py: Python<'_>,
        addr: Option<String>,
        details: Option<&str>,
        token: Option<String>,
        check_metrics: Option<bool>,
        header_read_timeout_ms: Option<u64>,
        idle_timeout_ms: Option<u64>,
        max_connections: Option<usize>,
        max_header_bytes: Option<usize>,
        max_body_bytes: Option<usize>,
    ) -> PyResult<Py<Server>> {
        let registry = self.registry(py)?;
        let options = self.endpoint_options(details, token, check_metrics)?;
        let limits = self
            .config
            .server
            .limits
            .overridden(&ServerLimitsOverrides {
                header_read_timeout_ms,
                idle_timeout_ms,
                max_connections,
                max_header_bytes,
                max_body_bytes,
            });
        let addr = addr.unwrap_or_else(|| self.config.server.addr.clone());
        let app = runward::health::server::router(registry.clone(), options);
        let server = block_on(
            py,
            runward::health::server::Server::bind_router(registry, &addr, app, limits),
        )?
        .map_err(py_err)?;
        let server = Py::new(py, Server::new(server, self.config.server.drain_ms))?;
        self.servers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(server.clone_ref(py));
        Ok(server)
    }

    /// Answers one probe request from the snapshot as it is, without waiting: returns
    /// `(status, headers, body)`. On-demand checks past their TTL are revalidated in the
    /// background, so they may read stale here; async hosts use `answer`, as `runward.asgi` does.
    #[pyo3(signature = (path, query=None, authorization=None, peer_loopback=false, *, details=None, token=None, check_metrics=None))]
    #[allow(clippy::too_many_arguments)]
    fn handle(
        &self,
        py: Python<'_>,
        path: &str,
        query: Option<&str>,
        authorization: Option<&str>,
        peer_loopback: bool,
        details: Option<&str>,
        token: Option<String>,
        check_metrics: Option<bool>,
    ) -> PyResult<HandleAnswer> {
        let registry = self.registry(py)?;
        let options = self.endpoint_options(details, token, check_metrics)?;
        let request = ProbeRequest {
            path,
            query,
            authorization,
            peer_loopback,
        };
        Ok(handle_answer(endpoints::handle(
            &registry, &options, &request,
        )))
    }

    /// The awaitable form of `handle`, which the ASGI app uses: on-demand checks whose result
    /// is missing or older than their TTL run first (one run shared by concurrent requests,
    /// each wait bounded by the check's timeout), so a probe never finds them stale.
    #[pyo3(signature = (path, query=None, authorization=None, peer_loopback=false, *, details=None, token=None, check_metrics=None))]
    #[allow(clippy::too_many_arguments)]
    fn answer<'py>(
        &self,
        py: Python<'py>,
        path: String,
        query: Option<String>,
        authorization: Option<String>,
        peer_loopback: bool,
        details: Option<&str>,
        token: Option<String>,
        check_metrics: Option<bool>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let registry = self.registry(py)?;
        let options = self.endpoint_options(details, token, check_metrics)?;
        runtime(py)?;
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let request = ProbeRequest {
                path: &path,
                query: query.as_deref(),
                authorization: authorization.as_deref(),
                peer_loopback,
            };
            Ok(handle_answer(
                endpoints::answer(&registry, &options, &request).await,
            ))
        })
    }

    fn __repr__(&self) -> String {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let names = match &*state {
            State::Built(registry) => registry.check_names(),
            State::Building(specs) => specs.iter().map(|s| s.name().to_owned()).collect(),
        };
        format!("Health(checks={names:?})")
    }
}
