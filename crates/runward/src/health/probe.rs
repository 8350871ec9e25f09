//! The [`Probe`] trait that every check implements, and adapters from closures.

use super::Outcome;
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// What a probe knows about the check it runs for.
#[derive(Debug, Clone)]
pub struct CheckContext {
    pub(crate) name: Arc<str>,
    pub(crate) deadline: Instant,
    pub(crate) timeout: Duration,
    pub(crate) values: Arc<Values>,
}

impl CheckContext {
    /// A context for running a probe outside a registry (tests, one-off checks).
    pub fn new(name: &str, timeout: Duration) -> Self {
        CheckContext {
            name: name.into(),
            deadline: Instant::now() + timeout,
            timeout,
            values: Arc::new(Values::default()),
        }
    }

    /// The check's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// When the registry will cancel this check. Probes should give up before it.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Time left before the deadline (zero once passed).
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// The check's configured timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Counters and gauges the application pushes into the registry.
    pub fn values(&self) -> &Values {
        &self.values
    }
}

/// One check of one dependency.
///
/// Contract: `check` returns within `ctx.deadline()`; the registry also enforces the deadline by
/// cancelling the future and recording a `timeout` failure. A probe must not open a new
/// connection pool per call: borrow the host's handle. A panic is caught and reported as a
/// failure with its message.
#[async_trait]
pub trait Probe: Send + Sync + 'static {
    /// Runs the check once.
    async fn check(&self, ctx: &CheckContext) -> Outcome;

    /// Whether this probe only looks at local signals (disk, files, pushed counters).
    /// Liveness warns about checks that are not local.
    fn is_local(&self) -> bool {
        false
    }

    /// The health+json `componentType` (`component`, `datastore`, `system`).
    fn component_type(&self) -> &str {
        "component"
    }
}

/// A repair that `doctor --fix` applies to a failing check (e.g. create a missing directory).
pub trait Fixer: Send + Sync + 'static {
    /// Applies the repair and says what it did.
    fn fix(&self) -> crate::Result<String>;
    /// Says what the repair would do, for `doctor` without `--fix`.
    fn describe(&self) -> String;
}

struct FnFixer<F> {
    description: String,
    f: F,
}

impl<F> Fixer for FnFixer<F>
where
    F: Fn() -> crate::Result<String> + Send + Sync + 'static,
{
    fn fix(&self) -> crate::Result<String> {
        (self.f)()
    }
    fn describe(&self) -> String {
        self.description.clone()
    }
}

/// A [`Fixer`] from a description and a closure.
pub fn fixer_fn<F>(description: impl Into<String>, f: F) -> Arc<dyn Fixer>
where
    F: Fn() -> crate::Result<String> + Send + Sync + 'static,
{
    Arc::new(FnFixer {
        description: description.into(),
        f,
    })
}

struct FnProbe<F>(F);

#[async_trait]
impl<F, Fut> Probe for FnProbe<F>
where
    F: Fn(CheckContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    async fn check(&self, ctx: &CheckContext) -> Outcome {
        (self.0)(ctx.clone()).await
    }
}

/// A probe from an async closure.
pub fn probe_fn<F, Fut>(f: F) -> Arc<dyn Probe>
where
    F: Fn(CheckContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    Arc::new(FnProbe(f))
}

struct BlockingProbe<F> {
    f: Arc<F>,
    busy: Arc<AtomicBool>,
}

#[async_trait]
impl<F> Probe for BlockingProbe<F>
where
    F: Fn(CheckContext) -> Outcome + Send + Sync + 'static,
{
    async fn check(&self, ctx: &CheckContext) -> Outcome {
        // A blocking call cannot be cancelled. If an earlier call overran its deadline and is
        // still running, do not start a second one: at most one run per check is in flight.
        if self.busy.swap(true, Ordering::AcqRel) {
            return Outcome::outage(
                super::OutageClass::Timeout,
                "the previous run of this check is still in progress",
            );
        }
        let f = self.f.clone();
        let busy = self.busy.clone();
        let ctx = ctx.clone();
        let handle = tokio::task::spawn_blocking(move || {
            let _reset = ResetOnDrop(busy);
            f(ctx)
        });
        match handle.await {
            Ok(outcome) => outcome,
            Err(err) => Outcome::fail(super::registry::panic_message(err)),
        }
    }
}

struct ResetOnDrop(Arc<AtomicBool>);
impl Drop for ResetOnDrop {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// A probe from a blocking closure, run on the blocking thread pool.
///
/// When a call overruns its deadline the registry reports a timeout and abandons it; until
/// the abandoned call returns, further runs report a timeout instead of piling up threads.
pub fn blocking_probe_fn<F>(f: F) -> Arc<dyn Probe>
where
    F: Fn(CheckContext) -> Outcome + Send + Sync + 'static,
{
    Arc::new(BlockingProbe {
        f: Arc::new(f),
        busy: Arc::new(AtomicBool::new(false)),
    })
}

/// Counters and gauges the application pushes (job queue depth, guardrail counters).
///
/// They are shown in every output and can be checked with thresholds by a `counter` probe.
#[derive(Debug, Default)]
pub struct Values {
    inner: RwLock<BTreeMap<String, f64>>,
    /// Bumped on every change, so rendered answers know when they are out of date.
    version: std::sync::atomic::AtomicU64,
}

impl Values {
    /// Sets a gauge to `value`.
    pub fn set(&self, name: &str, value: f64) {
        self.inner
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_owned(), value);
        self.version
            .fetch_add(1, std::sync::atomic::Ordering::Release);
    }

    /// Adds `delta` to a counter (starting from zero) and returns the new value.
    pub fn add(&self, name: &str, delta: f64) -> f64 {
        let mut map = self.inner.write().unwrap_or_else(|e| e.into_inner());
        let slot = map.entry(name.to_owned()).or_insert(0.0);
        *slot += delta;
        self.version
            .fetch_add(1, std::sync::atomic::Ordering::Release);
        *slot
    }

    /// A number that changes whenever a value does.
    pub(crate) fn version(&self) -> u64 {
        self.version.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The current value, if the application has pushed one.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .copied()
    }

    /// All values, sorted by name.
    pub fn all(&self) -> Vec<(String, f64)> {
        self.inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }
}
