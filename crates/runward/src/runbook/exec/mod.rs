//! Step executors: the effects of the built-in step kinds, one attempt at a time.
//!
//! The engine persists an attempt's intent, calls an executor with a [`StepContext`], and
//! persists the result. Every executor promises:
//!
//! - templates in the step's fields are rendered from [`StepContext::vars`] before anything
//!   runs; an unknown placeholder is [`StepError::Prepare`] and nothing runs;
//! - the attempt's idempotency key reaches the effect (`RUNWARD_IDEMPOTENCY_KEY` for a
//!   command, the `Idempotency-Key` header for a request);
//! - nothing leaves the executor (output, summary, data, events) with a registered secret
//!   value in it, plain, base64 or percent-encoded, even when the value arrives split across
//!   output chunks;
//! - the effect stops at [`StepContext::deadline`] (a command's whole process group is
//!   killed) and waits end early on [`StepContext::cancel`].
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use runward::runbook::exec::{self, StepContext};
//! use runward::runbook::CommandStep;
//! let step: CommandStep = toml::from_str(r#"argv = ["echo", "{{ params.who }}"]"#).unwrap();
//! let mut ctx = StepContext::new("run-1", "greet", 1);
//! ctx.vars.set("params.who", "world");
//! let output = exec::command::run(&step, &ctx).await.unwrap();
//! assert_eq!(output.stdout.text(), "world\n");
//! # });
//! ```

pub mod command;
pub mod drain;
pub mod gate;
pub mod http;
pub mod sleep;

use super::Vars;
use crate::health::Registry;
use crate::policy::OutboundPolicy;
use crate::secrets::{Redactor, SecretString};
use crate::{Error, ErrorKind};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where executors send samples and progress (gate samples, drain levels) while they run.
///
/// Implementations must be cheap and must not block: the engine appends each event to the
/// run's evidence. Values are redacted before they are sent.
pub trait StepEvents: Send + Sync {
    /// Receives one event of `kind` (e.g. `gate.sample`, `drain.sample`) with its data.
    fn record(&self, kind: &str, data: Value);
}

/// Discards every event.
#[derive(Debug, Default)]
pub struct NoEvents;

impl StepEvents for NoEvents {
    fn record(&self, _kind: &str, _data: Value) {}
}

/// Keeps events in memory, in order; for tests and dry runs.
#[derive(Debug, Default)]
pub struct VecEvents {
    events: Mutex<Vec<(String, Value)>>,
}

impl VecEvents {
    /// An empty sink.
    pub fn new() -> Self {
        VecEvents::default()
    }

    /// A copy of the events received so far.
    pub fn events(&self) -> Vec<(String, Value)> {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The events of one kind, data only.
    pub fn of_kind(&self, kind: &str) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|(k, _)| k == kind)
            .map(|(_, v)| v)
            .collect()
    }
}

impl StepEvents for VecEvents {
    fn record(&self, kind: &str, data: Value) {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((kind.to_owned(), data));
    }
}

/// A cancellation signal shared by the engine and the executors it runs. Cheap to clone;
/// cancelling is permanent.
#[derive(Debug, Clone)]
pub struct Cancel {
    tx: Arc<tokio::sync::watch::Sender<bool>>,
}

impl Default for Cancel {
    fn default() -> Self {
        Cancel {
            tx: Arc::new(tokio::sync::watch::channel(false).0),
        }
    }
}

impl Cancel {
    /// A signal that has not fired.
    pub fn new() -> Self {
        Cancel::default()
    }

    /// Fires the signal; every current and future wait on it ends.
    pub fn cancel(&self) {
        self.tx.send_replace(true);
    }

    /// Whether the signal has fired.
    pub fn is_cancelled(&self) -> bool {
        *self.tx.borrow()
    }

    /// Completes once the signal fires.
    pub async fn cancelled(&self) {
        let mut rx = self.tx.subscribe();
        let _ = rx.wait_for(|fired| *fired).await;
    }
}

/// Everything one step attempt needs from the engine.
#[derive(Clone)]
pub struct StepContext {
    /// The run.
    pub run_id: String,
    /// The step's id in the runbook.
    pub step_id: String,
    /// The attempt number, from 1.
    pub attempt: u32,
    /// The key that stays the same across attempts of the same step in the same run; the
    /// effect receives it so a rerun after a crash can be recognised.
    pub idempotency_key: String,
    /// When the attempt must end; `None` for no limit.
    pub deadline: Option<Instant>,
    /// The values templates render from.
    pub vars: Vars,
    /// Redacts the run's registered secret values from everything executors produce.
    pub redactor: Redactor,
    /// Secret values passed to command steps as environment variables, the only way a secret
    /// may reach a command.
    pub secret_env: BTreeMap<String, SecretString>,
    /// Where outbound requests may go.
    pub outbound: Arc<OutboundPolicy>,
    /// The directory relative paths (`cwd`) resolve against.
    pub base_dir: PathBuf,
    /// The health registry gates and drains read checks and counters from.
    pub registry: Option<Registry>,
    /// Receives samples and progress.
    pub events: Arc<dyn StepEvents>,
    /// Ends waits early.
    pub cancel: Cancel,
}

impl std::fmt::Debug for StepContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepContext")
            .field("run_id", &self.run_id)
            .field("step_id", &self.step_id)
            .field("attempt", &self.attempt)
            .field("deadline", &self.deadline)
            .field("secret_env", &self.secret_env.keys().collect::<Vec<_>>())
            .field("base_dir", &self.base_dir)
            .finish_non_exhaustive()
    }
}

impl StepContext {
    /// A context with the idempotency key `<run_id>:<step_id>`, no deadline, no secrets, the
    /// default outbound policy, the current directory, no registry and no event sink.
    pub fn new(run_id: impl Into<String>, step_id: impl Into<String>, attempt: u32) -> Self {
        let (run_id, step_id) = (run_id.into(), step_id.into());
        StepContext {
            idempotency_key: format!("{run_id}:{step_id}"),
            run_id,
            step_id,
            attempt,
            deadline: None,
            vars: Vars::new(),
            redactor: Redactor::default(),
            secret_env: BTreeMap::new(),
            outbound: Arc::new(OutboundPolicy::default()),
            base_dir: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
            registry: None,
            events: Arc::new(NoEvents),
            cancel: Cancel::new(),
        }
    }

    /// Sets the deadline to `timeout` from now.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.deadline = Some(Instant::now() + timeout);
        self
    }

    /// Registers secrets: each is redacted from all output and passed to commands as the
    /// environment variable it is keyed by.
    pub fn with_secrets(mut self, secrets: BTreeMap<String, SecretString>) -> Self {
        self.redactor = Redactor::new(secrets.values());
        self.secret_env = secrets;
        self
    }

    /// Renders a template; an unknown placeholder is a preparation error.
    pub fn render(&self, field: &str, text: &str) -> Result<String, StepError> {
        self.vars.render(text).map_err(|e| {
            StepError::prepare(Error::new(
                e.kind(),
                format!("`{field}`: {}", self.redactor.redact(e.message())),
            ))
        })
    }

    /// Sends an event, with every registered secret removed from its strings.
    pub fn emit(&self, kind: &str, data: Value) {
        self.events.record(kind, redact_json(&self.redactor, data));
    }

    /// The time left before the deadline, at most `cap`.
    pub(crate) fn remaining(&self, cap: Duration) -> Duration {
        match self.deadline {
            Some(d) => d.saturating_duration_since(Instant::now()).min(cap),
            None => cap,
        }
    }

    /// Waits `duration` (cut at the deadline); `Err(Cancelled)` when cancelled first.
    pub(crate) async fn pause(&self, duration: Duration) -> Result<(), StepError> {
        if self.cancel.is_cancelled() {
            return Err(StepError::Cancelled);
        }
        tokio::select! {
            _ = tokio::time::sleep(self.remaining(duration)) => Ok(()),
            _ = self.cancel.cancelled() => Err(StepError::Cancelled),
        }
    }
}

/// Every string in `value` (keys included) with the registered secrets removed.
pub(crate) fn redact_json(redactor: &Redactor, value: Value) -> Value {
    if redactor.is_empty() {
        return value;
    }
    match value {
        Value::String(s) => Value::String(redactor.redact(&s)),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|v| redact_json(redactor, v))
                .collect(),
        ),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (redactor.redact(&k), redact_json(redactor, v)))
                .collect(),
        ),
        other => other,
    }
}

/// Output kept from one stream: redacted, capped, with the SHA-256 of exactly the kept bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Captured {
    /// The kept bytes (the tail when the stream was longer than the cap).
    #[serde(serialize_with = "ser_lossy")]
    pub bytes: Vec<u8>,
    /// Hex SHA-256 of `bytes`.
    pub sha256: String,
    /// Whether bytes were dropped to respect the cap.
    pub truncated: bool,
}

fn ser_lossy<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(bytes))
}

impl Captured {
    /// Wraps already redacted and capped bytes.
    pub fn new(bytes: Vec<u8>, truncated: bool) -> Self {
        let sha256 = hex::encode(Sha256::digest(&bytes));
        Captured {
            bytes,
            sha256,
            truncated,
        }
    }

    /// The bytes as text, invalid UTF-8 replaced.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

/// What one successful (or, inside [`StepError::Failed`], failed) attempt produced. Every
/// string in it has been redacted.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StepOutput {
    /// One line for people.
    pub summary: String,
    /// Kind-specific data (status, samples taken, final level, ...).
    pub data: Value,
    /// The exit code of a command (or the status of a request).
    pub exit_code: Option<i32>,
    /// Standard output of a command, or the body of a response.
    pub stdout: Captured,
    /// Standard error of a command.
    pub stderr: Captured,
}

/// Why a step preparation or effect did not succeed; [`kind`](StepError::kind) lets the
/// engine decide whether a retry can help.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// The step could not be prepared, and nothing ran: a bad template, an invalid field, a
    /// policy refusal, a missing registry. Retrying the same step will not help.
    #[error("the step could not be prepared: {0}")]
    Prepare(Error),
    /// The effect ran and failed (non-success exit, unexpected status, deadline, network
    /// error). A retry may help; the output holds what was observed.
    #[error("the step failed: {message}")]
    Failed {
        /// What failed, redacted.
        message: String,
        /// Whether the deadline ended the effect.
        timed_out: bool,
        /// What the attempt produced before failing.
        output: Box<StepOutput>,
    },
    /// The attempt was cancelled before it finished.
    #[error("the step was cancelled")]
    Cancelled,
}

/// The class of a [`StepError`], for the engine's retry decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StepErrorKind {
    /// Nothing ran; do not retry.
    Prepare,
    /// The effect failed; the step's retry policy applies.
    Failed,
    /// Cancelled; run the cancel path.
    Cancelled,
}

impl StepError {
    /// Nothing ran and a retry cannot help.
    pub fn prepare(err: Error) -> Self {
        StepError::Prepare(err)
    }

    /// A preparation error of kind `invalid_input`.
    pub fn invalid(message: impl Into<String>) -> Self {
        StepError::Prepare(Error::new(ErrorKind::InvalidInput, message))
    }

    /// A failed effect (retries apply), with what it produced.
    pub fn failed(message: impl Into<String>, output: StepOutput) -> Self {
        StepError::Failed {
            message: message.into(),
            timed_out: false,
            output: Box::new(output),
        }
    }

    /// An effect ended by its deadline.
    pub fn timed_out(message: impl Into<String>, output: StepOutput) -> Self {
        StepError::Failed {
            message: message.into(),
            timed_out: true,
            output: Box::new(output),
        }
    }

    /// The class of the error.
    pub fn kind(&self) -> StepErrorKind {
        match self {
            StepError::Prepare(_) => StepErrorKind::Prepare,
            StepError::Failed { .. } => StepErrorKind::Failed,
            StepError::Cancelled => StepErrorKind::Cancelled,
        }
    }

    /// Whether retrying the attempt can help.
    pub fn is_retryable(&self) -> bool {
        self.kind() == StepErrorKind::Failed
    }

    /// The output of a failed effect.
    pub fn output(&self) -> Option<&StepOutput> {
        match self {
            StepError::Failed { output, .. } => Some(output),
            _ => None,
        }
    }
}

/// Parses and policy-checks a rendered URL.
pub(crate) fn checked_url(
    ctx: &StepContext,
    field: &str,
    text: &str,
) -> Result<reqwest::Url, StepError> {
    let url = reqwest::Url::parse(text).map_err(|e| {
        StepError::invalid(format!(
            "`{field}` is not a URL ({e}): `{}`",
            ctx.redactor.redact(text)
        ))
    })?;
    ctx.outbound
        .check_url(&url)
        .map_err(|e| StepError::Prepare(Error::new(e.kind(), ctx.redactor.redact(e.message()))))?;
    Ok(url)
}

/// The shown form of a URL: no credentials or query values, no secrets.
pub(crate) fn shown_url(ctx: &StepContext, url: &reqwest::Url) -> String {
    ctx.redactor.redact(&crate::policy::redact_url(url))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_redacted() {
        let sink = Arc::new(VecEvents::new());
        let mut secrets = BTreeMap::new();
        secrets.insert("TOKEN".to_owned(), SecretString::new("hunter2-very-secret"));
        let mut ctx = StepContext::new("r", "s", 1).with_secrets(secrets);
        ctx.events = sink.clone();
        ctx.emit(
            "x",
            serde_json::json!({"a": ["say hunter2-very-secret"], "n": 1}),
        );
        let text = serde_json::to_string(&sink.events()).unwrap();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("[REDACTED]"));
    }

    #[test]
    fn captured_checksums_the_kept_bytes() {
        let kept = Captured::new(b"abc".to_vec(), true);
        assert!(kept.truncated);
        assert_eq!(kept.sha256, hex::encode(Sha256::digest(b"abc")));
    }

    #[tokio::test]
    async fn pause_ends_on_cancel() {
        let ctx = StepContext::new("r", "s", 1);
        let cancel = ctx.cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            cancel.cancel();
        });
        let started = Instant::now();
        let err = ctx.pause(Duration::from_secs(10)).await.unwrap_err();
        assert_eq!(err.kind(), StepErrorKind::Cancelled);
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
