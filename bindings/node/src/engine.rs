//! The `Engine` class: the core's durable run engine over a state database, with custom steps
//! written in JavaScript and the events of a run delivered as they are appended.
//!
//! Every method returns a promise and drives runs on runward's threads, so the event loop stays
//! free while a run goes; bad arguments reject too, with code `invalid_input`. The JavaScript
//! layer (`index.js`) wraps custom step functions and splits `onEvent` off the options.

use crate::convert;
use crate::error::invalid;
use crate::health::{promise, to_json};
use crate::runbook::{self as js_runbook, Runbook};
use async_trait::async_trait;
use napi::Env;
use napi::Status;
use napi::bindgen_prelude::{AsyncBlock, FnArgs, Promise, Unknown};
use napi::threadsafe_function::{
    ThreadsafeFunction, ThreadsafeFunctionCallMode, UnknownReturnValue,
};
use napi_derive::napi;
use runward::config::Config;
use runward::runbook::engine::{self as core, Resume, RunOutcome};
use runward::runbook::exec::{StepContext, StepError, StepOutput};
use runward::store::{Event, RunId, SqliteStore};
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// Options of `Engine.open()`, besides its custom `steps`.
#[napi(object, object_to_js = false, object_from_js = false)]
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct EngineOptions {
    /// The lease owner name, unique per process (default `<host>:<pid>:<random>`).
    pub owner: Option<String>,
    /// How long a lease lasts without renewal (default: `[engine] lease_ttl` of `config`,
    /// else 30000), between 100 and 86400000. A run whose process died is orphaned (by
    /// `sweep()`) this long after its last renewal.
    #[napi(ts_type = "number")]
    pub lease_ttl_ms: Option<u64>,
    /// A `runward.toml` whose health checks gates and `probe_first` policies read, and whose
    /// outbound policy `http` steps and gates follow.
    pub config: Option<String>,
}

/// Options of `engine.run()` and `engine.create()`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct StartOptions {
    started_by: Option<String>,
}

/// Options of `engine.resume()`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ResumeOptions {
    override_definition: Option<bool>,
    by: Option<String>,
    reason: Option<String>,
}

impl From<ResumeOptions> for Resume {
    fn from(o: ResumeOptions) -> Self {
        Resume {
            override_definition: o.override_definition.unwrap_or(false),
            by: o.by,
            reason: o.reason,
        }
    }
}

/// What a custom step function receives first.
#[napi(object, object_from_js = false)]
pub struct CustomStepContext {
    /// The run.
    pub run_id: String,
    /// The step's id in the runbook.
    pub step_id: String,
    /// The attempt number, from 1.
    pub attempt: u32,
    /// The same for every execution of this attempt, a rerun after a crash included: pass it
    /// to the target so it can refuse a duplicate.
    pub idempotency_key: String,
}

/// A wrapped custom step: `(ctx, params) => Promise<string>` (a JSON reply), never throwing or
/// rejecting. Weak, so a registered step does not keep the process alive.
pub(crate) type StepFn = ThreadsafeFunction<
    FnArgs<(CustomStepContext, Value)>,
    Promise<String>,
    FnArgs<(CustomStepContext, Value)>,
    Status,
    false,
    true,
>;

/// An `onEvent` callback.
pub(crate) type EventFn = ThreadsafeFunction<Value, UnknownReturnValue, Value, Status, false, true>;

/// What the JavaScript layer reports for one call of a step: its return value, or the message
/// of what it threw.
#[derive(Debug, Deserialize)]
struct Reply {
    ok: bool,
    #[serde(default)]
    value: Option<Value>,
    #[serde(default)]
    error: Option<String>,
}

/// The result of one call of a JavaScript step, from the JSON reply of the JavaScript layer.
///
/// A returned object gives its `summary` (a string) as the summary and its other keys as the
/// data; a string is the summary; `undefined` and `null` give an empty output; any other value
/// is the data. A throw or rejection is a failed attempt (retries apply) with its message.
fn output_from_reply(name: &str, json: &str) -> Result<StepOutput, StepError> {
    let reply: Reply = serde_json::from_str(json).map_err(|e| {
        StepError::failed(
            format!("the reply of custom step `{name}` could not be read: {e}"),
            StepOutput::default(),
        )
    })?;
    if !reply.ok {
        let message = reply
            .error
            .filter(|e| !e.is_empty())
            .unwrap_or_else(|| format!("custom step `{name}` threw"));
        return Err(StepError::failed(message, StepOutput::default()));
    }
    let (summary, data) = match reply.value {
        None | Some(Value::Null) => (String::new(), Value::Null),
        Some(Value::String(s)) => (s, Value::Null),
        Some(Value::Object(mut map)) => {
            let summary = match map.remove("summary") {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => s,
                Some(other) => other.to_string(),
            };
            let data = if map.is_empty() {
                Value::Null
            } else {
                Value::Object(map)
            };
            (summary, data)
        }
        Some(other) => (String::new(), other),
    };
    Ok(StepOutput {
        summary,
        data,
        ..StepOutput::default()
    })
}

/// A core custom step that calls a JavaScript function on the JavaScript thread.
struct JsStep {
    name: String,
    call: Arc<StepFn>,
}

#[async_trait]
impl core::Step for JsStep {
    async fn run(&self, ctx: &StepContext, params: &Value) -> Result<StepOutput, StepError> {
        let closing = |what: String| {
            StepError::failed(
                format!(
                    "custom step `{}` {what}: the event loop is closing",
                    self.name
                ),
                StepOutput::default(),
            )
        };
        let (tx, rx) = oneshot::channel::<Result<Promise<String>, String>>();
        let args = CustomStepContext {
            run_id: ctx.run_id.clone(),
            step_id: ctx.step_id.clone(),
            attempt: ctx.attempt,
            idempotency_key: ctx.idempotency_key.clone(),
        };
        let status = self.call.call_with_return_value(
            FnArgs::from((args, params.clone())),
            ThreadsafeFunctionCallMode::NonBlocking,
            move |ret, _env| {
                // Runs on the JavaScript thread: keep napi errors (which may hold JavaScript
                // references) on it, and send only their text.
                let _ = tx.send(ret.map_err(|e| e.reason.clone()));
                Ok(())
            },
        );
        if status != Status::Ok {
            return Err(closing(format!("could not be called ({status})")));
        }
        let reply = async {
            let promise = match rx.await {
                Ok(Ok(promise)) => promise,
                Ok(Err(reason)) => {
                    return Err(StepError::failed(
                        format!(
                            "custom step `{}` did not return a promise: {reason}",
                            self.name
                        ),
                        StepOutput::default(),
                    ));
                }
                Err(_) => return Err(closing("was dropped before it ran".into())),
            };
            match promise.await {
                Ok(reply) => output_from_reply(&self.name, &reply),
                Err(e) => Err(StepError::failed(
                    format!("custom step `{}` failed: {}", self.name, e.reason),
                    StepOutput::default(),
                )),
            }
        };
        // The function cannot be interrupted; on cancel its result is ignored.
        tokio::select! {
            result = reply => result,
            _ = ctx.cancel.cancelled() => Err(StepError::Cancelled),
        }
    }
}

/// Calls `callback` with `event` and waits until it has returned.
async fn send(callback: &EventFn, event: &Event) {
    let Ok(value) = serde_json::to_value(event) else {
        return;
    };
    let (tx, rx) = oneshot::channel::<()>();
    let status = callback.call_with_return_value(
        value,
        ThreadsafeFunctionCallMode::NonBlocking,
        move |ret, _env| {
            let _ = tx.send(());
            // A throw is an uncaught exception, as in an event listener.
            ret.map(|_| ())
        },
    );
    if status == Status::Ok {
        let _ = rx.await;
    }
}

/// Runs `drive` (which drives run `run`) and, with a callback, delivers the run's events with
/// `seq > after` (from now on without `after`) to it in order as they are appended; all are
/// delivered before this returns.
async fn with_events<F>(
    engine: &core::Engine,
    run: RunId,
    after: Option<u64>,
    on_event: Option<EventFn>,
    drive: F,
) -> runward::Result<RunOutcome>
where
    F: Future<Output = runward::Result<RunOutcome>>,
{
    let Some(callback) = on_event else {
        return drive.await;
    };
    let mut events = engine.follow(&run, after).await?;
    let (done_tx, mut done_rx) = oneshot::channel::<()>();
    let forward = async move {
        let mut done = false;
        loop {
            tokio::select! {
                biased;
                next = events.next() => match next {
                    Ok(event) => send(&callback, &event).await,
                    // The store could not be read; the tail is read again below.
                    Err(_) => break,
                },
                _ = &mut done_rx => {
                    done = true;
                    break;
                }
            }
        }
        if !done {
            let _ = done_rx.await;
        }
        if let Ok(rest) = events.rest().await {
            for event in &rest {
                send(&callback, event).await;
            }
        }
    };
    let drive = async move {
        let result = drive.await;
        let _ = done_tx.send(());
        result
    };
    let (result, ()) = tokio::join!(drive, forward);
    result
}

/// Reads a run id argument.
fn parse_run_id(id: String) -> runward::Result<RunId> {
    if id.trim().is_empty() {
        return Err(invalid("a run id must be a non-empty string"));
    }
    Ok(RunId::from(id))
}

/// The durable run engine over a SQLite state database (`.runward/state.db` for the CLI).
///
/// Made with `await Engine.open(path, options)`. Runs survive crashes: every step attempt is
/// written before and after its effect, under a lease renewed while the run goes; `sweep()`
/// marks runs whose process died `orphaned` and `resume()` continues them. Every method
/// returns a promise; rejections carry the core's error kind as `code` (`policy_denied` for a
/// refused approver, `conflict` for a changed definition, a held flag or a run held by another
/// process, `not_found` for an unknown run). Runs and events are the JSON of
/// `runward runbook show --json`.
#[napi]
pub struct Engine {
    inner: core::Engine,
    path: String,
}

/// A promise that rejects with `err` and its `code`.
fn rejected<T>(env: &Env, err: runward::Error) -> napi::Result<AsyncBlock<T>>
where
    T: napi::bindgen_prelude::ToNapiValue + Send + 'static,
{
    promise(env, async move { Err::<T, _>(err) }, Ok)
}

#[napi]
impl Engine {
    /// Opens (creating and migrating it if needed) the state database at `path` and builds an
    /// engine with the wrapped custom `steps` (see `index.js`).
    #[napi(js_name = "_open", skip_typescript)]
    pub fn open(
        env: Env,
        path: String,
        options: Option<Value>,
        steps: Option<HashMap<String, StepFn>>,
    ) -> napi::Result<AsyncBlock<Engine>> {
        promise(
            &env,
            async move {
                let options: EngineOptions = convert::options("engine options", options)?;
                let store: Arc<dyn runward::store::Store> =
                    Arc::new(SqliteStore::open(&path).await?);
                // The configuration's outbound policy and `[engine]` settings, then the options.
                let mut builder = match &options.config {
                    Some(config) => {
                        let config = Config::load(config)?;
                        config.engine_builder(store)?.registry(config.registry()?)
                    }
                    None => core::Engine::builder(store),
                };
                if let Some(owner) = options.owner {
                    if owner.trim().is_empty() {
                        return Err(invalid("`owner` must be a non-empty string"));
                    }
                    builder = builder.owner(owner);
                }
                if let Some(ms) = options.lease_ttl_ms {
                    builder = builder.lease_ttl(Duration::from_millis(ms))?;
                }
                for (name, call) in steps.unwrap_or_default() {
                    let step = JsStep {
                        name: name.clone(),
                        call: Arc::new(call),
                    };
                    builder = builder.step(name, Arc::new(step));
                }
                Ok(Engine {
                    inner: builder.build(),
                    path,
                })
            },
            Ok,
        )
    }

    /// The state database file.
    #[napi(getter)]
    pub fn path(&self) -> String {
        self.path.clone()
    }

    /// This engine's lease owner name.
    #[napi(getter)]
    pub fn owner(&self) -> String {
        self.inner.owner().to_owned()
    }

    /// Validates `params`, checks the runbook's flag requirements and creates a `queued` run
    /// pinned to the definition; nothing is created when any of this fails (`invalid_input`,
    /// `conflict`). Start it with `resume()`.
    #[napi(
        ts_args_type = "runbook: Runbook, params?: Record<string, unknown> | null, options?: { startedBy?: string }",
        ts_return_type = "Promise<Run>"
    )]
    pub fn create(
        &self,
        env: Env,
        runbook: Unknown<'_>,
        params: Option<Value>,
        options: Option<Value>,
    ) -> napi::Result<AsyncBlock<Value>> {
        let runbook = match Runbook::from_arg(&env, runbook) {
            Ok(rb) => rb,
            Err(err) => return rejected(&env, err),
        };
        let engine = self.inner.clone();
        promise(
            &env,
            async move {
                let options: StartOptions = convert::options("create options", options)?;
                let params = js_runbook::params(params)?;
                engine
                    .create(&runbook, &params, options.started_by.as_deref())
                    .await
            },
            |run| to_json(&run),
        )
    }

    /// Creates a run and drives it until it finishes or stops at a decision point; see
    /// `index.js` for the public `run`.
    #[napi(js_name = "_run", skip_typescript)]
    pub fn run(
        &self,
        env: Env,
        runbook: Unknown<'_>,
        params: Option<Value>,
        options: Option<Value>,
        on_event: Option<EventFn>,
    ) -> napi::Result<AsyncBlock<Value>> {
        let runbook = match Runbook::from_arg(&env, runbook) {
            Ok(rb) => rb,
            Err(err) => return rejected(&env, err),
        };
        let engine = self.inner.clone();
        promise(
            &env,
            async move {
                let options: StartOptions = convert::options("run options", options)?;
                let params = js_runbook::params(params)?;
                let run = engine
                    .create(&runbook, &params, options.started_by.as_deref())
                    .await?;
                // `start` is `create` then driving the queued run, as here.
                let drive = engine.resume(&run.id, &runbook, Resume::default());
                with_events(&engine, run.id.clone(), Some(0), on_event, drive).await
            },
            |outcome| to_json(&outcome),
        )
    }

    /// Drives run `runId` from where it stopped; see `index.js` for the public `resume`.
    #[napi(js_name = "_resume", skip_typescript)]
    pub fn resume(
        &self,
        env: Env,
        run_id: String,
        runbook: Unknown<'_>,
        options: Option<Value>,
        on_event: Option<EventFn>,
    ) -> napi::Result<AsyncBlock<Value>> {
        let runbook = match Runbook::from_arg(&env, runbook) {
            Ok(rb) => rb,
            Err(err) => return rejected(&env, err),
        };
        let engine = self.inner.clone();
        promise(
            &env,
            async move {
                let options: ResumeOptions = convert::options("resume options", options)?;
                let id = parse_run_id(run_id)?;
                let drive = engine.resume(&id, &runbook, options.into());
                with_events(&engine, id.clone(), None, on_event, drive).await
            },
            |outcome| to_json(&outcome),
        )
    }

    /// Runs the step the run stopped at again, recording `who` and `reason`: the same attempt
    /// (and idempotency key) when its outcome is unknown, a new attempt after a failure.
    /// Rejects with `conflict` unless the run is failed, orphaned or waiting.
    #[napi(
        ts_args_type = "runId: string, runbook: Runbook, who: string, reason?: string | null",
        ts_return_type = "Promise<RunOutcome>"
    )]
    pub fn retry(
        &self,
        env: Env,
        run_id: String,
        runbook: Unknown<'_>,
        who: String,
        reason: Option<String>,
    ) -> napi::Result<AsyncBlock<Value>> {
        let runbook = match Runbook::from_arg(&env, runbook) {
            Ok(rb) => rb,
            Err(err) => return rejected(&env, err),
        };
        let engine = self.inner.clone();
        promise(
            &env,
            async move {
                let id = parse_run_id(run_id)?;
                engine.retry(&id, &runbook, &who, reason.as_deref()).await
            },
            |outcome| to_json(&outcome),
        )
    }

    /// Records the step the run stopped at as skipped, with `who` and `reason` (required:
    /// `invalid_input` when blank), and goes on.
    #[napi(
        ts_args_type = "runId: string, runbook: Runbook, who: string, reason: string",
        ts_return_type = "Promise<RunOutcome>"
    )]
    pub fn skip(
        &self,
        env: Env,
        run_id: String,
        runbook: Unknown<'_>,
        who: String,
        reason: String,
    ) -> napi::Result<AsyncBlock<Value>> {
        let runbook = match Runbook::from_arg(&env, runbook) {
            Ok(rb) => rb,
            Err(err) => return rejected(&env, err),
        };
        let engine = self.inner.clone();
        promise(
            &env,
            async move {
                let id = parse_run_id(run_id)?;
                engine.skip(&id, &runbook, &who, &reason).await
            },
            |outcome| to_json(&outcome),
        )
    }

    /// The approval request run `runId` waits for; `conflict` when there is none.
    #[napi(ts_return_type = "Promise<Approval>")]
    pub fn pending_approval(&self, env: Env, run_id: String) -> napi::Result<AsyncBlock<Value>> {
        let engine = self.inner.clone();
        promise(
            &env,
            async move { engine.pending_approval(&parse_run_id(run_id)?).await },
            |approval| to_json(&approval),
        )
    }

    /// Adds `who`'s approval to the request run `runId` waits for and resolves to the request.
    /// Refused with `policy_denied` (nothing changes) for people outside the approvers and,
    /// under the starter rule, for the starter. Resume the run once it is `approved`.
    #[napi(
        ts_args_type = "runId: string, who: string, comment?: string | null",
        ts_return_type = "Promise<Approval>"
    )]
    pub fn approve(
        &self,
        env: Env,
        run_id: String,
        who: String,
        comment: Option<String>,
    ) -> napi::Result<AsyncBlock<Value>> {
        let engine = self.inner.clone();
        promise(
            &env,
            async move {
                let id = parse_run_id(run_id)?;
                engine.approve(&id, &who, comment.as_deref()).await
            },
            |approval| to_json(&approval),
        )
    }

    /// Denies the request run `runId` waits for; resuming the run then fails the step.
    #[napi(
        ts_args_type = "runId: string, who: string, comment?: string | null",
        ts_return_type = "Promise<Approval>"
    )]
    pub fn deny(
        &self,
        env: Env,
        run_id: String,
        who: String,
        comment: Option<String>,
    ) -> napi::Result<AsyncBlock<Value>> {
        let engine = self.inner.clone();
        promise(
            &env,
            async move {
                let id = parse_run_id(run_id)?;
                engine.deny(&id, &who, comment.as_deref()).await
            },
            |approval| to_json(&approval),
        )
    }

    /// Cancels run `runId` for `who`: records the request and, when no process drives the run,
    /// runs its cancel path here and resolves to the result. When another process (or call)
    /// drives it, that driver runs the cancel path shortly and this resolves to the run as it
    /// is. Rejects with `conflict` for a closed run.
    #[napi(
        ts_args_type = "runId: string, runbook: Runbook, who: string, reason?: string | null",
        ts_return_type = "Promise<RunOutcome>"
    )]
    pub fn cancel(
        &self,
        env: Env,
        run_id: String,
        runbook: Unknown<'_>,
        who: String,
        reason: Option<String>,
    ) -> napi::Result<AsyncBlock<Value>> {
        let runbook = match Runbook::from_arg(&env, runbook) {
            Ok(rb) => rb,
            Err(err) => return rejected(&env, err),
        };
        let engine = self.inner.clone();
        promise(
            &env,
            async move {
                let id = parse_run_id(run_id)?;
                engine.cancel(&id, &runbook, &who, reason.as_deref()).await
            },
            |outcome| to_json(&outcome),
        )
    }

    /// Marks runs whose process died (lease expired) `orphaned` and expired approvals
    /// `timed_out`, recording each in the run's evidence. Any number of processes may call it.
    #[napi(ts_return_type = "Promise<Sweep>")]
    pub fn sweep(&self, env: Env) -> napi::Result<AsyncBlock<Value>> {
        let engine = self.inner.clone();
        promise(&env, async move { engine.sweep().await }, |sweep| {
            to_json(&sweep)
        })
    }

    /// The runbook file run `runId` was started from (an absolute path), or `null` for a
    /// runbook parsed from text or a run not started yet.
    #[napi(ts_return_type = "Promise<string | null>")]
    pub fn source_of(&self, env: Env, run_id: String) -> napi::Result<AsyncBlock<Value>> {
        let engine = self.inner.clone();
        promise(
            &env,
            async move { engine.source_of(&parse_run_id(run_id)?).await },
            |path| Ok(path.map_or(Value::Null, |p| Value::String(p.display().to_string()))),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn replies_become_outputs_or_failures() {
        let out = output_from_reply(
            "snap",
            r#"{"ok":true,"value":{"summary":"done","id":7,"tags":["a"]}}"#,
        )
        .unwrap();
        assert_eq!(out.summary, "done");
        assert_eq!(out.data, json!({"id": 7, "tags": ["a"]}));
        let out = output_from_reply("snap", r#"{"ok":true,"value":"just text"}"#).unwrap();
        assert_eq!(
            (out.summary.as_str(), &out.data),
            ("just text", &Value::Null)
        );
        let out = output_from_reply("snap", r#"{"ok":true}"#).unwrap();
        assert_eq!(out, StepOutput::default());
        let out = output_from_reply("snap", r#"{"ok":true,"value":[1,2]}"#).unwrap();
        assert_eq!(out.data, json!([1, 2]));

        let err = output_from_reply("snap", r#"{"ok":false,"error":"disk full"}"#).unwrap_err();
        assert!(err.is_retryable());
        assert_eq!(err.to_string(), "the step failed: disk full");
        let err = output_from_reply("snap", r#"{"ok":false}"#).unwrap_err();
        assert!(
            err.to_string().contains("custom step `snap` threw"),
            "{err}"
        );
        let err = output_from_reply("snap", "not json").unwrap_err();
        assert!(err.to_string().contains("could not be read"), "{err}");
    }

    #[test]
    fn options_reject_unknown_keys() {
        let err =
            convert::options::<EngineOptions>("engine options", Some(json!({ "leaseTTL": 5 })))
                .unwrap_err();
        assert_eq!(err.kind(), runward::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("leaseTTL"), "{err}");
        let resume: Resume = convert::options::<ResumeOptions>(
            "resume options",
            Some(json!({ "overrideDefinition": true, "by": "ops" })),
        )
        .unwrap()
        .into();
        assert!(resume.override_definition);
        assert_eq!(resume.by.as_deref(), Some("ops"));
        assert!(parse_run_id(" ".into()).is_err());
    }
}
