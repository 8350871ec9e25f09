//! Python functions and coroutine functions as core probes.
//!
//! Plain functions run on the core's blocking pool through [`blocking_probe_fn`], which
//! abandons an overrunning call and refuses to start a second one meanwhile. Coroutine
//! functions run on an asyncio event loop (runward's own loop thread unless the check names
//! one); when the registry abandons the run at its deadline, the asyncio task is cancelled.
//! No tokio worker thread ever waits for the GIL.

use crate::convert::exception_text;
use crate::outcome::outcome_from_py;
use pyo3::prelude::*;
use pyo3::types::{PyCFunction, PyDict, PyTuple};
use runward::health::{CheckContext, Outcome, Probe, blocking_probe_fn, probe_fn};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Extra time a sync function awaiting a coroutine waits past the deadline, so that the
/// registry's own timeout is what reports the overrun.
const AWAIT_GRACE: Duration = Duration::from_millis(500);

fn helpers(py: Python<'_>) -> PyResult<Bound<'_, PyModule>> {
    py.import("runward._loop")
}

/// A probe calling `func` with no arguments. `event_loop` is the asyncio loop to run a
/// coroutine function on; `None` means runward's own loop thread.
pub(crate) fn python_probe(
    py: Python<'_>,
    func: Py<PyAny>,
    event_loop: Option<Py<PyAny>>,
) -> PyResult<Arc<dyn Probe>> {
    let is_coroutine: bool = py
        .import("inspect")?
        .call_method1("iscoroutinefunction", (func.bind(py),))?
        .extract()?;
    let func = Arc::new(func);
    let event_loop = Arc::new(event_loop);
    if !is_coroutine {
        return Ok(blocking_probe_fn(move |ctx| {
            Python::try_attach(|py| call_sync(py, &func, &event_loop, &ctx)).unwrap_or_else(exiting)
        }));
    }
    Ok(probe_fn(move |_ctx: CheckContext| {
        let func = func.clone();
        let event_loop = event_loop.clone();
        async move { run_coroutine(func, event_loop).await }
    }))
}

/// The outcome of a check that could not run because the interpreter is finalizing.
fn exiting() -> Outcome {
    Outcome::fail("the Python interpreter is shutting down")
}

/// Calls a plain function; an awaitable result is awaited on the event loop until shortly
/// after the deadline.
fn call_sync(
    py: Python<'_>,
    func: &Py<PyAny>,
    event_loop: &Option<Py<PyAny>>,
    ctx: &CheckContext,
) -> Outcome {
    let result = func.call0(py).and_then(|value| {
        let value = value.into_bound(py);
        let awaitable: bool = py
            .import("inspect")?
            .call_method1("isawaitable", (&value,))?
            .extract()?;
        if !awaitable {
            return Ok(value);
        }
        let timeout = (ctx.remaining() + AWAIT_GRACE).as_secs_f64();
        helpers(py)?.call_method1(
            "wait",
            (value, timeout, event_loop.as_ref().map(|l| l.bind(py))),
        )
    });
    match result {
        Ok(value) => outcome_from_py(&value),
        Err(err) => Outcome::fail(exception_text(py, &err)),
    }
}

/// The `concurrent.futures.Future` of a running coroutine check, cancelled when the probe
/// future is dropped before the coroutine finished (the registry abandoned the run).
#[derive(Default)]
struct Running {
    abandoned: bool,
    future: Option<Py<PyAny>>,
}

struct CancelOnDrop(Arc<Mutex<Running>>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        let future = {
            let mut running = self.0.lock().unwrap_or_else(|e| e.into_inner());
            running.abandoned = true;
            running.future.take()
        };
        if let Some(future) = future {
            cancel_later(future);
        }
    }
}

/// Cancels a future off the tokio worker threads, which must not wait for the GIL.
fn cancel_later(future: Py<PyAny>) {
    let cancel = move || {
        Python::try_attach(|py| {
            let _ = future.call_method0(py, "cancel");
        });
    };
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            handle.spawn_blocking(cancel);
        }
        Err(_) => cancel(),
    }
}

async fn run_coroutine(func: Arc<Py<PyAny>>, event_loop: Arc<Option<Py<PyAny>>>) -> Outcome {
    let (tx, rx) = tokio::sync::oneshot::channel::<Outcome>();
    let running = Arc::new(Mutex::new(Running::default()));
    let guard = CancelOnDrop(running.clone());
    let tx = Mutex::new(Some(tx));
    let started = tokio::task::spawn_blocking(move || {
        Python::try_attach(|py| {
            let submit = || -> PyResult<()> {
                let done = PyCFunction::new_closure(
                    py,
                    Some(c"runward_check_done"),
                    None,
                    move |args: &Bound<'_, PyTuple>,
                          _kwargs: Option<&Bound<'_, PyDict>>|
                          -> PyResult<()> {
                        let outcome = future_outcome(&args.get_item(0)?);
                        if let Some(tx) = tx.lock().unwrap_or_else(|e| e.into_inner()).take() {
                            let _ = tx.send(outcome);
                        }
                        Ok(())
                    },
                )?;
                let future = helpers(py)?.call_method1(
                    "submit",
                    (
                        func.bind(py),
                        done,
                        event_loop.as_ref().as_ref().map(|l| l.bind(py)),
                    ),
                )?;
                let mut slot = running.lock().unwrap_or_else(|e| e.into_inner());
                if slot.abandoned {
                    future.call_method0("cancel")?;
                } else {
                    slot.future = Some(future.unbind());
                }
                Ok(())
            };
            submit().map_err(|err| exception_text(py, &err))
        })
    });
    match started.await {
        Ok(Some(Ok(()))) => {}
        Ok(Some(Err(text))) => return Outcome::fail(text),
        Ok(None) => return exiting(),
        Err(_) => return Outcome::fail("the check could not be started"),
    }
    let outcome = rx
        .await
        .unwrap_or_else(|_| Outcome::fail("the check's coroutine ended without a result"));
    // Finished: nothing to cancel. The reference is released without the GIL.
    guard.0.lock().unwrap_or_else(|e| e.into_inner()).future = None;
    outcome
}

/// The outcome of a finished `concurrent.futures.Future`.
fn future_outcome(future: &Bound<'_, PyAny>) -> Outcome {
    let py = future.py();
    let cancelled = future
        .call_method0("cancelled")
        .and_then(|c| c.extract::<bool>())
        .unwrap_or(false);
    if cancelled {
        return Outcome::fail("the check was cancelled");
    }
    match future.call_method0("result") {
        Ok(value) => outcome_from_py(&value),
        Err(err) => Outcome::fail(exception_text(py, &err)),
    }
}
