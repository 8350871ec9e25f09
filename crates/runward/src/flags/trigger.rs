//! Lockdown that turns itself on when readiness fails repeatedly.

use super::{Flags, LOCKDOWN, Lockdown};
use crate::health::{ProbeKind, Registry, Status};
use crate::store::{Clock, SystemClock, Timestamp};
use crate::{Error, ErrorKind, Result};
use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// When readiness failures turn lockdown on.
///
/// Lockdown starts when `failures` failed readiness evaluations fall within `window`. An
/// evaluation is one sample of the registry's snapshot, taken every `interval`; it fails when
/// at least one critical readiness check reports `fail` (`unknown` before a first result,
/// closed gates and shutdown do not count).
///
/// ```
/// use std::time::Duration;
/// use runward::flags::LockdownPolicy;
///
/// let policy = LockdownPolicy {
///     failures: 5,
///     window: Duration::from_secs(60),
///     ttl: Duration::from_secs(3600),
///     ..LockdownPolicy::default()
/// };
/// assert_eq!(policy.owner, "health-policy");
/// ```
#[derive(Debug, Clone)]
pub struct LockdownPolicy {
    /// Failed evaluations within `window` that start lockdown (at least 1).
    pub failures: u32,
    /// How far back failures count.
    pub window: Duration,
    /// How long the lockdown lasts unless unlocked.
    pub ttl: Duration,
    /// How long its unlock code stays valid.
    pub code_ttl: Duration,
    /// How often readiness is sampled.
    pub interval: Duration,
    /// The owner of the lockdown flag it sets.
    pub owner: String,
}

impl Default for LockdownPolicy {
    /// 3 failures within 1 minute, sampled every second; lockdown and code for 1 hour.
    fn default() -> Self {
        LockdownPolicy {
            failures: 3,
            window: Duration::from_secs(60),
            ttl: Duration::from_secs(3600),
            code_ttl: Duration::from_secs(3600),
            interval: Duration::from_secs(1),
            owner: "health-policy".into(),
        }
    }
}

impl LockdownPolicy {
    /// `failures` within `window` start a lockdown of `ttl` (the code lives as long); other
    /// settings are the defaults.
    pub fn new(failures: u32, window: Duration, ttl: Duration) -> Self {
        LockdownPolicy {
            failures,
            window,
            ttl,
            code_ttl: ttl,
            ..LockdownPolicy::default()
        }
    }

    fn validate(&self) -> Result<()> {
        let bad = |what: &str| {
            Err(Error::new(
                ErrorKind::InvalidInput,
                format!("lockdown policy: {what}"),
            ))
        };
        if self.failures == 0 {
            return bad("`failures` must be at least 1");
        }
        if self.window.is_zero() || self.ttl.is_zero() || self.code_ttl.is_zero() {
            return bad("`window`, `ttl` and `code_ttl` must be greater than zero");
        }
        if self.interval.is_zero() {
            return bad("`interval` must be greater than zero; 1s is a good start");
        }
        if self.owner.trim().is_empty() {
            return bad("`owner` must not be empty");
        }
        Ok(())
    }
}

/// What a lockdown started by a [`LockdownTrigger`] hands to its [`LockdownTrigger::on_lockdown`]
/// hook.
#[derive(Debug, Clone)]
pub struct LockdownEvent {
    /// The failed evaluations counted in the window.
    pub failures: u32,
    /// The critical readiness checks failing at the last sample.
    pub failing: Vec<String>,
    /// The lockdown, with its unlock code (shown nowhere else).
    pub lockdown: Lockdown,
}

/// The result of one [`LockdownTrigger::sample`].
#[derive(Debug, Clone)]
pub enum Sample {
    /// Readiness did not fail.
    Passed,
    /// Readiness failed; `in_window` failures count now, fewer than the policy's limit.
    Failed {
        /// Failures within the window, this one included.
        in_window: u32,
    },
    /// This sample reached the limit and started lockdown.
    LockedDown(Box<LockdownEvent>),
    /// The limit was reached but lockdown was already on; the count starts again.
    AlreadyLocked,
    /// The registry is shutting down; nothing was counted.
    Skipped,
}

type Hook = Arc<dyn Fn(&LockdownEvent) + Send + Sync>;

struct Inner {
    registry: Registry,
    flags: Flags,
    policy: LockdownPolicy,
    clock: Arc<dyn Clock>,
    window: tokio::sync::Mutex<VecDeque<Timestamp>>,
    hook: Mutex<Option<Hook>>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// Samples a health [`Registry`]'s readiness and turns lockdown on after repeated failures,
/// as a [`LockdownPolicy`] says. Cheap to clone; clones share the count and the task.
///
/// The unlock code of a lockdown it starts goes to the [`on_lockdown`](Self::on_lockdown)
/// hook and nowhere else; without a hook, operators get a code with an override of
/// [`Flags::rotate_unlock_code`] (`runward unlock --rotate --override --reason TEXT`). When
/// the limit is reached while lockdown is already on (set by anyone), no new lockdown or code
/// is issued and the count starts again from zero. The background task stops with [`stop`](Self::stop) or when the
/// last clone is dropped.
#[derive(Clone)]
pub struct LockdownTrigger {
    inner: Arc<Inner>,
}

impl fmt::Debug for LockdownTrigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockdownTrigger")
            .field("policy", &self.inner.policy)
            .finish_non_exhaustive()
    }
}

/// Attaches `policy` to `registry` and starts sampling on the current tokio runtime.
///
/// Fails with [`ErrorKind::InvalidInput`] for an invalid policy and outside a tokio runtime
/// (build a [`LockdownTrigger`] and call [`LockdownTrigger::start_on`] there).
pub fn attach_lockdown(
    registry: &Registry,
    flags: Flags,
    policy: LockdownPolicy,
) -> Result<LockdownTrigger> {
    let handle = tokio::runtime::Handle::try_current().map_err(|_| {
        Error::new(
            ErrorKind::InvalidInput,
            "attach_lockdown needs a tokio runtime; call it inside one, or use LockdownTrigger::start_on",
        )
    })?;
    let trigger = LockdownTrigger::new(registry, flags, policy)?;
    trigger.start_on(&handle);
    Ok(trigger)
}

impl LockdownTrigger {
    /// A trigger for `registry` that sets lockdown through `flags`; it samples nothing until
    /// started or until [`sample`](Self::sample) is called. Fails for an invalid policy.
    pub fn new(registry: &Registry, flags: Flags, policy: LockdownPolicy) -> Result<Self> {
        policy.validate()?;
        Ok(LockdownTrigger {
            inner: Arc::new(Inner {
                registry: registry.clone(),
                flags,
                policy,
                clock: Arc::new(SystemClock),
                window: tokio::sync::Mutex::new(VecDeque::new()),
                hook: Mutex::new(None),
                task: Mutex::new(None),
            }),
        })
    }

    /// Judges the window against `clock` instead of the system clock (for tests). Call it
    /// before the trigger is cloned or started.
    ///
    /// # Panics
    /// When the trigger was already cloned or started.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        Arc::get_mut(&mut self.inner)
            .expect("with_clock is called before the trigger is cloned or started")
            .clock = clock;
        self
    }

    /// Registers the hook called, once per lockdown it starts, with the event and the unlock
    /// code. Keep it short and non-blocking; deliver the code to the operators, never log it.
    /// A later call replaces the hook.
    pub fn on_lockdown(&self, hook: impl Fn(&LockdownEvent) + Send + Sync + 'static) {
        *self.inner.hook.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(hook));
    }

    /// The policy.
    pub fn policy(&self) -> &LockdownPolicy {
        &self.inner.policy
    }

    /// Failed evaluations currently counted in the window.
    pub async fn failures_in_window(&self) -> u32 {
        let mut window = self.inner.window.lock().await;
        prune(
            &mut window,
            self.inner.clock.now(),
            self.inner.policy.window,
        );
        window.len() as u32
    }

    /// Takes one readiness sample from the registry's snapshot (it runs no check) and starts
    /// lockdown when it brings the failures in the window to the policy's limit. Samples are
    /// taken one at a time. A store error leaves the count as it was, so the next failing
    /// sample tries again.
    pub async fn sample(&self) -> Result<Sample> {
        let inner = &*self.inner;
        let mut window = inner.window.lock().await;
        if inner.registry.is_shutting_down() {
            return Ok(Sample::Skipped);
        }
        let report = inner.registry.evaluate(ProbeKind::Readiness);
        let failing: Vec<String> = report
            .checks
            .iter()
            .filter(|c| c.critical && c.status == Status::Fail)
            .map(|c| c.name.clone())
            .collect();
        let now = inner.clock.now();
        prune(&mut window, now, inner.policy.window);
        if failing.is_empty() {
            return Ok(Sample::Passed);
        }
        window.push_back(now);
        let count = window.len() as u32;
        if count < inner.policy.failures {
            return Ok(Sample::Failed { in_window: count });
        }
        if inner.flags.get(LOCKDOWN).await?.is_some() {
            window.clear();
            return Ok(Sample::AlreadyLocked);
        }
        let reason = format!(
            "readiness failed {count} times within {} (failing: {})",
            humantime::format_duration(inner.policy.window),
            failing.join(", ")
        );
        let result = inner
            .flags
            .lockdown_with_code_ttl(
                &inner.policy.owner,
                Some(&reason),
                inner.policy.ttl,
                inner.policy.code_ttl,
            )
            .await;
        let lockdown = match result {
            Ok(lockdown) => lockdown,
            Err(e) if e.kind() == ErrorKind::Conflict => {
                window.clear();
                return Ok(Sample::AlreadyLocked);
            }
            Err(e) => {
                // Keep the count without this sample so the next failure retries.
                window.pop_back();
                return Err(e);
            }
        };
        window.clear();
        drop(window);
        let event = LockdownEvent {
            failures: count,
            failing,
            lockdown,
        };
        tracing::warn!(
            owner = %inner.policy.owner,
            failures = count,
            failing = ?event.failing,
            "lockdown started by the health policy"
        );
        let hook = inner.hook.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(hook) = hook {
            hook(&event);
        }
        Ok(Sample::LockedDown(Box::new(event)))
    }

    /// Starts sampling every `policy.interval` on `handle`. Calling it again has no effect.
    /// Store errors are logged and retried at the next failing sample.
    pub fn start_on(&self, handle: &tokio::runtime::Handle) {
        let mut task = self.inner.task.lock().unwrap_or_else(|e| e.into_inner());
        if task.is_some() {
            return;
        }
        let weak = Arc::downgrade(&self.inner);
        let interval = self.inner.policy.interval;
        *task = Some(handle.spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                let trigger = LockdownTrigger { inner };
                if let Err(e) = trigger.sample().await {
                    tracing::warn!(error = %e, "the lockdown policy could not sample or lock");
                }
            }
        }));
    }

    /// Starts sampling on the current tokio runtime.
    ///
    /// # Panics
    /// Outside a tokio runtime; use [`start_on`](Self::start_on) there.
    pub fn start(&self) {
        self.start_on(&tokio::runtime::Handle::current());
    }

    /// Stops sampling. The count is kept; [`sample`](Self::sample) still works.
    pub fn stop(&self) {
        if let Some(task) = self
            .inner
            .task
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            task.abort();
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(task) = self
            .task
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            task.abort();
        }
    }
}

/// Drops failures at or beyond `window` before `now`.
fn prune(window: &mut VecDeque<Timestamp>, now: Timestamp, span: Duration) {
    while window.front().is_some_and(|&t| t + span <= now) {
        window.pop_front();
    }
}
