//! Python functions and coroutine functions as custom runbook steps.
//!
//! A step function is called as `func(ctx, params)` on the core's blocking pool, never on a
//! tokio worker thread. When it returns an awaitable (an `async def` function does), the
//! awaitable runs to completion with `asyncio.run` on that same blocking thread. When the
//! engine gives up on the attempt (the step's timeout, an operator's cancel, a lost lease),
//! a coroutine is cancelled; a plain function cannot be interrupted and is left to finish,
//! its result ignored.

use crate::convert::{exception_text, py_to_json, type_name};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use runward::runbook::engine::{Step, step_fn};
use runward::runbook::exec::{StepContext, StepError, StepOutput};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The custom step `name`, calling `func(ctx, params)` once per attempt.
pub(crate) fn python_step(name: String, func: Py<PyAny>) -> Arc<dyn Step> {
    let func = Arc::new(func);
    let name = Arc::new(name);
    step_fn(move |ctx, params| {
        let (func, name) = (func.clone(), name.clone());
        async move { call(name, func, ctx, params).await }
    })
}

/// The `StepCall` (see `runward._loop`) of a running attempt, cancelled when the attempt's
/// future is dropped or cancelled before the call returned.
#[derive(Default)]
struct Running {
    done: bool,
    abandoned: bool,
    call: Option<Py<PyAny>>,
}

struct CancelOnDrop(Arc<Mutex<Running>>);

impl CancelOnDrop {
    /// The call returned: nothing to cancel. The reference is released without the GIL.
    fn finish(&self) {
        let mut running = self.0.lock().unwrap_or_else(|e| e.into_inner());
        running.done = true;
        running.call = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        let call = {
            let mut running = self.0.lock().unwrap_or_else(|e| e.into_inner());
            if running.done {
                return;
            }
            running.abandoned = true;
            running.call.take()
        };
        if let Some(call) = call {
            // Off the tokio worker threads, which must not wait for the GIL.
            let cancel = move || {
                Python::try_attach(|py| {
                    let _ = call.call_method0(py, "cancel");
                });
            };
            match tokio::runtime::Handle::try_current() {
                Ok(handle) => {
                    handle.spawn_blocking(cancel);
                }
                Err(_) => cancel(),
            }
        }
    }
}

/// What the step function sees of its attempt.
fn context_json(ctx: &StepContext) -> Value {
    json!({
        "run_id": ctx.run_id,
        "step_id": ctx.step_id,
        "attempt": ctx.attempt,
        "idempotency_key": ctx.idempotency_key,
        "timeout": ctx.deadline.map(|d| d.saturating_duration_since(Instant::now()).as_secs_f64()),
    })
}

async fn call(
    name: Arc<String>,
    func: Arc<Py<PyAny>>,
    ctx: StepContext,
    params: Value,
) -> Result<StepOutput, StepError> {
    let running = Arc::new(Mutex::new(Running::default()));
    let guard = CancelOnDrop(running.clone());
    let context = context_json(&ctx);
    let blocking = tokio::task::spawn_blocking(move || {
        Python::try_attach(|py| {
            let result = (|| -> PyResult<Bound<'_, PyAny>> {
                let call = py.import("runward._loop")?.getattr("StepCall")?.call0()?;
                {
                    let mut slot = running.lock().unwrap_or_else(|e| e.into_inner());
                    if slot.abandoned {
                        call.call_method0("cancel")?;
                    } else {
                        slot.call = Some(call.clone().unbind());
                    }
                }
                let ctx = crate::convert::json_to_py(py, &context)?;
                let params = crate::convert::json_to_py(py, &params)?;
                call.call_method1("run", (func.bind(py), ctx, params))
            })();
            match result {
                Ok(value) => output_from_py(&name, &value),
                Err(err) => Err(StepError::failed(
                    exception_text(py, &err),
                    StepOutput::default(),
                )),
            }
        })
    });
    let result = tokio::select! {
        joined = blocking => match joined {
            Ok(Some(result)) => result,
            Ok(None) => Err(StepError::failed(
                "the Python interpreter is shutting down",
                StepOutput::default(),
            )),
            Err(_) => Err(StepError::failed(
                "the step function's thread stopped unexpectedly",
                StepOutput::default(),
            )),
        },
        _ = ctx.cancel.cancelled() => return Err(StepError::Cancelled),
    };
    guard.finish();
    result
}

/// The output of a step function's return value: `None`, a `str` (the summary) or a dict
/// whose `summary` key is the summary and whose other keys are the data.
fn output_from_py(name: &str, value: &Bound<'_, PyAny>) -> Result<StepOutput, StepError> {
    let invalid = |why: String| StepError::failed(why, StepOutput::default());
    if value.is_none() {
        return Ok(StepOutput::default());
    }
    if let Ok(text) = value.cast::<PyString>() {
        return Ok(StepOutput {
            summary: text.to_cow().map(|t| t.into_owned()).unwrap_or_default(),
            ..StepOutput::default()
        });
    }
    let Ok(dict) = value.cast::<PyDict>() else {
        return Err(invalid(format!(
            "custom step `{name}` returned {}: return a dict (its `summary` key is the summary, \
             the rest the data), a str or None",
            type_name(value)
        )));
    };
    let json = py_to_json(dict.as_any()).map_err(|err| {
        invalid(format!(
            "custom step `{name}` returned a dict that is not JSON-compatible: {}",
            exception_text(value.py(), &err)
        ))
    })?;
    let Value::Object(mut map) = json else {
        unreachable!("a dict converts to a JSON object")
    };
    let summary = match map.remove("summary") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s,
        Some(other) => {
            return Err(invalid(format!(
                "custom step `{name}` returned a `summary` that is not a str: {other}"
            )));
        }
    };
    Ok(StepOutput {
        summary,
        data: if map.is_empty() {
            Value::Null
        } else {
            Value::Object(map)
        },
        ..StepOutput::default()
    })
}
