//! The `Health` class: a core health registry, built from a configuration file and from code.

use crate::convert::{
    self, CheckOptions, DoctorOptions, EndpointOverrides, HealthOptions, ProbeRequest,
    ProbeResponse, ServeOptions, millis,
};
use crate::error::{OrThrow, invalid, throwable};
use crate::probe::{CheckFn, JsProbe, TransitionFn, transition_hook};
use crate::runtime;
use crate::server::{HealthServer, SharedServer};
use napi::Env;
use napi::bindgen_prelude::{AsyncBlock, AsyncBlockBuilder, ToNapiValue};
use napi_derive::napi;
use runward::config::Config;
use runward::health::endpoints::{self, EndpointOptions};
use runward::health::limits::ServerLimits;
use runward::health::server::{Server, router};
use runward::health::{CheckSpec, Registry, RegistryBuilder, Values, doctor, render};
use serde_json::Value;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// The default `[server]` drain period when there is no configuration.
const DEFAULT_DRAIN: Duration = Duration::from_millis(5000);
/// The default listen address when there is no configuration.
const DEFAULT_ADDR: &str = "127.0.0.1:8080";

/// Service identity and registry settings that apply when the registry is built.
#[derive(Default)]
struct Service {
    service_id: Option<String>,
    version: Option<String>,
    release_id: Option<String>,
    description: Option<String>,
    heartbeat_timeout: Option<Duration>,
}

/// Checks and hooks collected until the registry is built.
#[derive(Default)]
struct Pending {
    service: Service,
    specs: Vec<CheckSpec>,
    hooks: Vec<TransitionFn>,
}

impl Pending {
    fn builder(&self, values: Option<Arc<Values>>) -> RegistryBuilder {
        let s = &self.service;
        let mut builder = Registry::builder();
        if let Some(v) = &s.service_id {
            builder = builder.service_id(v);
        }
        if let Some(v) = &s.version {
            builder = builder.version(v);
        }
        if let Some(v) = &s.release_id {
            builder = builder.release_id(v);
        }
        if let Some(v) = &s.description {
            builder = builder.description(v);
        }
        if let Some(t) = s.heartbeat_timeout {
            builder = builder.heartbeat_timeout(t);
        }
        if let Some(values) = values {
            builder = builder.values(values);
        }
        self.specs
            .iter()
            .cloned()
            .fold(builder, RegistryBuilder::check)
    }

    /// Builds a registry that is never started, to validate the checks and read warnings.
    fn trial(&self) -> runward::Result<Registry> {
        self.builder(None).build()
    }
}

enum State {
    Pending(Pending),
    Built(Registry),
}

/// A health registry: checks from a `runward.toml` and from code, answered from a snapshot.
///
/// Checks can be added until the registry is built, which happens on the first call that
/// needs it (`start`, `refresh*`, `status`, `report`, `serve`, `handle`, ...). Background
/// checks and the HTTP server run on runward's own threads.
#[napi]
pub struct Health {
    state: State,
    values: Arc<Values>,
    endpoint: EndpointOptions,
    addr: String,
    drain: Duration,
    limits: ServerLimits,
    servers: Vec<SharedServer>,
}

/// Runs `fut` on runward's runtime and settles a promise on the JavaScript thread: resolved
/// with `map(value)`, or rejected with the core error and its `code`.
pub(crate) fn promise<V, T, F, M>(env: &Env, fut: F, map: M) -> napi::Result<AsyncBlock<T>>
where
    V: Send + 'static,
    T: ToNapiValue + 'static,
    F: Future<Output = runward::Result<V>> + Send + 'static,
    M: FnOnce(V) -> napi::Result<T> + 'static,
{
    AsyncBlockBuilder::build_with_map(
        env,
        async move { Ok(fut.await) },
        move |env, result: runward::Result<V>| match result {
            Ok(value) => map(value),
            Err(err) => Err(throwable(&env, &err)),
        },
    )
}

pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> napi::Result<Value> {
    serde_json::to_value(value).map_err(|e| napi::Error::from_reason(e.to_string()))
}

#[napi]
impl Health {
    /// Loads `options.config` when given and validates its checks; configuration errors throw
    /// with code `config` and name the file and line.
    #[napi(constructor, ts_args_type = "options?: HealthOptions")]
    pub fn new(env: Env, options: Option<Value>) -> napi::Result<Self> {
        Health::create(options).or_throw(&env)
    }

    fn create(options: Option<Value>) -> runward::Result<Self> {
        let options: HealthOptions = convert::options("Health options", options)?;
        let mut pending = Pending::default();
        let mut endpoint = EndpointOptions::default();
        let mut addr = DEFAULT_ADDR.to_owned();
        let mut drain = DEFAULT_DRAIN;
        let mut limits = ServerLimits::default();
        if let Some(path) = &options.config {
            let config = Config::load(path)?;
            pending.specs = config.check_specs()?;
            pending.service = Service {
                service_id: config.service.id.clone(),
                version: config.service.version.clone(),
                release_id: config.service.release.clone(),
                description: config.service.description.clone(),
                heartbeat_timeout: config
                    .health
                    .heartbeat_timeout_ms
                    .map(Duration::from_millis),
            };
            endpoint = config.endpoint_options();
            addr = config.server.addr.clone();
            drain = Duration::from_millis(config.server.drain_ms);
            limits = config.server.limits.clone();
        }
        let s = &mut pending.service;
        s.service_id = options.service_id.or(s.service_id.take());
        s.version = options.version.or(s.version.take());
        s.release_id = options.release_id.or(s.release_id.take());
        s.description = options.description.or(s.description.take());
        s.heartbeat_timeout = options
            .heartbeat_timeout_ms
            .map(millis)
            .or(s.heartbeat_timeout);
        pending.trial()?;
        Ok(Health {
            state: State::Pending(pending),
            values: Arc::new(Values::default()),
            endpoint,
            addr,
            drain,
            limits,
            servers: Vec::new(),
        })
    }

    /// Adds a check whose probe is a wrapped JavaScript function (see `index.js`).
    #[napi(js_name = "_addCheck", skip_typescript)]
    pub fn add_check(
        &mut self,
        env: Env,
        name: String,
        check: CheckFn,
        options: Option<Value>,
    ) -> napi::Result<()> {
        self.add(name, check, options).or_throw(&env)
    }

    fn add(&mut self, name: String, check: CheckFn, options: Option<Value>) -> runward::Result<()> {
        let State::Pending(pending) = &mut self.state else {
            return Err(invalid(format!(
                "cannot add check `{name}`: the registry is already built (add checks before start, \
                 refresh, status, report, serve or handle)"
            )));
        };
        let options: CheckOptions = convert::options("check options", options)?;
        let local = options.local.unwrap_or(false);
        let spec = options.spec(name, Arc::new(JsProbe::new(check, local)))?;
        pending.specs.push(spec);
        if let Err(err) = pending.trial() {
            pending.specs.pop();
            return Err(err);
        }
        Ok(())
    }

    /// The registry, built on first use.
    fn registry(&mut self) -> runward::Result<Registry> {
        if let State::Pending(pending) = &mut self.state {
            let registry = pending.builder(Some(self.values.clone())).build()?;
            for hook in std::mem::take(&mut pending.hooks) {
                registry.on_transition(transition_hook(hook));
            }
            self.state = State::Built(registry);
        }
        match &self.state {
            State::Built(registry) => Ok(registry.clone()),
            State::Pending(_) => unreachable!("the registry was just built"),
        }
    }

    /// Starts the periodic checks on runward's threads. Calling it again has no effect.
    #[napi]
    pub fn start(&mut self, env: Env) -> napi::Result<()> {
        let registry = self.registry().or_throw(&env)?;
        registry.start_on(&runtime::handle());
        Ok(())
    }

    /// Stops the periodic checks; the snapshot stays readable.
    #[napi]
    pub fn stop(&mut self, env: Env) -> napi::Result<()> {
        self.registry().or_throw(&env)?.stop();
        Ok(())
    }

    /// Runs every check now and resolves once all have finished.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn refresh_all(&mut self, env: Env) -> napi::Result<AsyncBlock<()>> {
        let registry = self.registry().or_throw(&env)?;
        promise(
            &env,
            async move {
                registry.refresh_all().await;
                Ok(())
            },
            Ok,
        )
    }

    /// Runs one check now (sharing a run in flight) and resolves to its health+json report.
    /// Rejects with code `not_found` for an unknown name.
    #[napi(ts_return_type = "Promise<HealthJson>")]
    pub fn refresh(&mut self, env: Env, name: String) -> napi::Result<AsyncBlock<Value>> {
        let registry = self.registry().or_throw(&env)?;
        promise(
            &env,
            async move {
                registry.refresh(&name).await?;
                let report = registry.check_report(&name)?;
                Ok(render::health_json(&report, render::Detail::Full))
            },
            Ok,
        )
    }

    /// The status of a probe (default `readiness`), read from the snapshot.
    #[napi(ts_args_type = "kind?: ProbeKindName", ts_return_type = "CheckStatus")]
    pub fn status(&mut self, env: Env, kind: Option<String>) -> napi::Result<String> {
        let kind = convert::kind_or_readiness(kind.as_deref()).or_throw(&env)?;
        Ok(self
            .registry()
            .or_throw(&env)?
            .status(kind)
            .as_str()
            .to_owned())
    }

    /// The status of one check; throws with code `not_found` for an unknown name.
    #[napi(ts_return_type = "CheckStatus")]
    pub fn check_status(&mut self, env: Env, name: String) -> napi::Result<String> {
        let registry = self.registry().or_throw(&env)?;
        Ok(registry
            .check_status(&name)
            .or_throw(&env)?
            .as_str()
            .to_owned())
    }

    /// The health+json report of a probe, or of every check when `kind` is omitted.
    /// `detail: 'status'` gives what anonymous HTTP callers see.
    #[napi(
        ts_args_type = "kind?: ProbeKindName | null, detail?: 'full' | 'status'",
        ts_return_type = "HealthJson"
    )]
    pub fn report(
        &mut self,
        env: Env,
        kind: Option<String>,
        detail: Option<String>,
    ) -> napi::Result<Value> {
        let kind = convert::kind_or_all(kind.as_deref()).or_throw(&env)?;
        let detail = convert::detail(detail.as_deref()).or_throw(&env)?;
        let registry = self.registry().or_throw(&env)?;
        let report = kind.map_or_else(|| registry.evaluate_all(), |k| registry.evaluate(k));
        Ok(render::health_json(&report, detail))
    }

    /// A human table of a probe, or of every check when `kind` is omitted.
    #[napi(ts_args_type = "kind?: ProbeKindName | null")]
    pub fn table(&mut self, env: Env, kind: Option<String>) -> napi::Result<String> {
        let kind = convert::kind_or_all(kind.as_deref()).or_throw(&env)?;
        let registry = self.registry().or_throw(&env)?;
        let report = kind.map_or_else(|| registry.evaluate_all(), |k| registry.evaluate(k));
        Ok(render::table(&report))
    }

    /// Kubernetes-style `?verbose` text of a probe, or of every check when `kind` is omitted.
    #[napi(ts_args_type = "kind?: ProbeKindName | null, detail?: 'full' | 'status'")]
    pub fn verbose(
        &mut self,
        env: Env,
        kind: Option<String>,
        detail: Option<String>,
    ) -> napi::Result<String> {
        let kind = convert::kind_or_all(kind.as_deref()).or_throw(&env)?;
        let detail = convert::detail(detail.as_deref()).or_throw(&env)?;
        let registry = self.registry().or_throw(&env)?;
        let report = kind.map_or_else(|| registry.evaluate_all(), |k| registry.evaluate(k));
        Ok(render::verbose(&report, detail))
    }

    /// Prometheus text exposition; reads the snapshot and never runs a check.
    #[napi]
    pub fn prometheus(&mut self, env: Env) -> napi::Result<String> {
        Ok(render::prometheus(&self.registry().or_throw(&env)?))
    }

    /// Runs every check now, explains failures and, with `fix: true`, applies the fixers of
    /// failing checks and runs them again. Resolves to the core's doctor report.
    #[napi(
        ts_args_type = "options?: DoctorOptions",
        ts_return_type = "Promise<DoctorReport>"
    )]
    pub fn doctor(&mut self, env: Env, options: Option<Value>) -> napi::Result<AsyncBlock<Value>> {
        let options: DoctorOptions = convert::options("doctor options", options).or_throw(&env)?;
        let registry = self.registry().or_throw(&env)?;
        let fix = options.fix.unwrap_or(false);
        promise(
            &env,
            async move { Ok(doctor::doctor(&registry, fix).await) },
            |report| to_json(&report),
        )
    }

    /// Records that the event loop is alive; liveness fails once the last heartbeat is older
    /// than `heartbeatTimeoutMs`.
    #[napi]
    pub fn heartbeat(&mut self, env: Env) -> napi::Result<()> {
        self.registry().or_throw(&env)?.heartbeat();
        Ok(())
    }

    /// Sets a gauge the application pushes (queue depth, ...).
    #[napi]
    pub fn set_value(&self, name: String, value: f64) {
        self.values.set(&name, value);
    }

    /// Adds to a counter the application pushes; returns the new value.
    #[napi]
    pub fn add_value(&self, name: String, delta: f64) -> f64 {
        self.values.add(&name, delta)
    }

    /// Closes a manual readiness gate: readiness fails until it is opened.
    #[napi]
    pub fn close_gate(&mut self, env: Env, name: String, reason: String) -> napi::Result<()> {
        self.registry().or_throw(&env)?.close_gate(&name, &reason);
        Ok(())
    }

    /// Opens a manual readiness gate.
    #[napi]
    pub fn open_gate(&mut self, env: Env, name: String) -> napi::Result<()> {
        self.registry().or_throw(&env)?.open_gate(&name);
        Ok(())
    }

    /// Starts shutdown: readiness fails at once; liveness keeps passing.
    #[napi]
    pub fn begin_shutdown(&mut self, env: Env) -> napi::Result<()> {
        self.registry().or_throw(&env)?.begin_shutdown();
        Ok(())
    }

    /// Records that in-flight work has drained; a server in `shutdown()` stops.
    #[napi]
    pub fn mark_drained(&mut self, env: Env) -> napi::Result<()> {
        self.registry().or_throw(&env)?.mark_drained();
        Ok(())
    }

    /// Calls `callback` on the JavaScript thread after every status change of a check.
    /// An exception thrown by the callback is an uncaught exception, as in an event listener.
    #[napi(ts_args_type = "callback: (event: TransitionEvent) => void")]
    pub fn on_transition(&mut self, callback: TransitionFn) {
        match &mut self.state {
            State::Pending(pending) => pending.hooks.push(callback),
            State::Built(registry) => registry.on_transition(transition_hook(callback)),
        }
    }

    /// Configuration warnings, e.g. a dependency check on liveness.
    #[napi(getter)]
    pub fn warnings(&self) -> Vec<String> {
        match &self.state {
            State::Pending(pending) => pending
                .trial()
                .map(|r| r.warnings().to_vec())
                .unwrap_or_default(),
            State::Built(registry) => registry.warnings().to_vec(),
        }
    }

    /// Names of the checks, in registration order.
    #[napi(getter)]
    pub fn check_names(&self) -> Vec<String> {
        match &self.state {
            State::Pending(pending) => pending.specs.iter().map(|s| s.name().to_owned()).collect(),
            State::Built(registry) => registry.check_names(),
        }
    }

    /// Serves `/livez`, `/readyz`, `/readyz/<check>`, `/startupz`, `/healthz` and `/metrics` on
    /// runward's threads, so probes answer while the event loop is busy; starts the periodic
    /// checks. The server keeps the process alive until `shutdown()` or `unref()`.
    #[napi(
        ts_args_type = "options?: ServeOptions",
        ts_return_type = "Promise<HealthServer>"
    )]
    pub fn serve(
        &mut self,
        env: Env,
        options: Option<Value>,
    ) -> napi::Result<AsyncBlock<HealthServer>> {
        let options: ServeOptions = convert::options("serve options", options).or_throw(&env)?;
        let registry = self.registry().or_throw(&env)?;
        let limits = self.limits.overridden(&options.limit_overrides());
        let addr = options.addr.unwrap_or_else(|| self.addr.clone());
        let endpoint =
            self.endpoint
                .overridden(options.details, options.token, options.check_metrics);
        let slot = SharedServer::default();
        self.servers.push(slot.clone());
        let keep_alive = HealthServer::keep_alive(&env)?;
        let drain = self.drain;
        promise(
            &env,
            async move {
                let app = router(registry.clone(), endpoint);
                Server::bind_router(registry, &addr, app, limits).await
            },
            move |server| Ok(HealthServer::new(server, slot, keep_alive, drain)),
        )
    }

    /// Answers one probe request from the snapshot as it is, without waiting: the core's
    /// status code, headers and body. On-demand checks past their TTL are revalidated in the
    /// background, so they may read stale here; `answer()` waits for them.
    #[napi(ts_args_type = "request: ProbeRequest, options?: EndpointOverrides")]
    pub fn handle(
        &mut self,
        env: Env,
        request: ProbeRequest,
        options: Option<Value>,
    ) -> napi::Result<ProbeResponse> {
        let registry = self.registry().or_throw(&env)?;
        let endpoint = self.endpoint_with(options).or_throw(&env)?;
        let answer = endpoints::handle(&registry, &endpoint, &request.as_core());
        Ok(ProbeResponse::from_core(answer))
    }

    /// Answers one probe request as the HTTP server does, and as the request handler uses it:
    /// on-demand checks whose result is missing or older than their TTL run first (one run
    /// shared by concurrent requests, each wait bounded by the check's timeout).
    #[napi(
        ts_args_type = "request: ProbeRequest, options?: EndpointOverrides",
        ts_return_type = "Promise<ProbeResponse>"
    )]
    pub fn answer(
        &mut self,
        env: Env,
        request: ProbeRequest,
        options: Option<Value>,
    ) -> napi::Result<AsyncBlock<ProbeResponse>> {
        let registry = self.registry().or_throw(&env)?;
        let endpoint = self.endpoint_with(options).or_throw(&env)?;
        promise(
            &env,
            async move {
                let answer = endpoints::answer(&registry, &endpoint, &request.as_core()).await;
                Ok(answer)
            },
            |answer| Ok(ProbeResponse::from_core(answer)),
        )
    }
}

impl Health {
    /// The endpoint options with the per-call overrides of `handle()` / `answer()` applied.
    fn endpoint_with(&self, options: Option<Value>) -> runward::Result<EndpointOptions> {
        let options: EndpointOverrides = convert::options("handler options", options)?;
        Ok(self
            .endpoint
            .overridden(options.details, options.token, options.check_metrics))
    }
}
