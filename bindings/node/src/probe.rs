//! JavaScript functions as core probes and transition hooks.
//!
//! A check is called on the JavaScript thread through a thread-safe function. The JavaScript
//! layer (`index.js`) wraps the user's function so that the call never throws and returns a
//! promise of a JSON reply; the core's deadline applies to the whole round trip, so a blocked
//! event loop or a promise that never settles ends as a `timeout` failure.

use crate::convert::{ProbeContext, TransitionEvent, outcome_from_reply};
use async_trait::async_trait;
use napi::Status;
use napi::bindgen_prelude::Promise;
use napi::threadsafe_function::{
    ThreadsafeFunction, ThreadsafeFunctionCallMode, UnknownReturnValue,
};
use runward::health::{CheckContext, Outcome, Probe, Transition};
use std::sync::Arc;

/// A wrapped JavaScript check: `(ctx) => Promise<string>`, never throwing or rejecting.
/// Weak, so a registered check does not keep the process alive.
pub(crate) type CheckFn =
    ThreadsafeFunction<ProbeContext, Promise<String>, ProbeContext, Status, false, true>;

/// An `onTransition` callback. Weak, like [`CheckFn`].
pub(crate) type TransitionFn =
    ThreadsafeFunction<TransitionEvent, UnknownReturnValue, TransitionEvent, Status, false, true>;

/// A core probe that calls a JavaScript check.
pub(crate) struct JsProbe {
    call: Arc<CheckFn>,
    local: bool,
}

impl JsProbe {
    pub(crate) fn new(call: CheckFn, local: bool) -> Self {
        JsProbe {
            call: Arc::new(call),
            local,
        }
    }
}

#[async_trait]
impl Probe for JsProbe {
    async fn check(&self, ctx: &CheckContext) -> Outcome {
        let (tx, rx) = tokio::sync::oneshot::channel::<Result<Promise<String>, String>>();
        let args = ProbeContext {
            name: ctx.name().to_owned(),
            timeout_ms: u32::try_from(ctx.timeout().as_millis()).unwrap_or(u32::MAX),
        };
        let status = self.call.call_with_return_value(
            args,
            ThreadsafeFunctionCallMode::NonBlocking,
            move |ret, _env| {
                // Runs on the JavaScript thread: keep napi errors (which may hold JavaScript
                // references) on it, and send only their text.
                let _ = tx.send(ret.map_err(|e| e.reason.clone()));
                Ok(())
            },
        );
        if status != Status::Ok {
            return Outcome::fail(format!(
                "the JavaScript check could not be called ({status}): the event loop is closing"
            ));
        }
        let promise = match rx.await {
            Ok(Ok(promise)) => promise,
            Ok(Err(reason)) => {
                return Outcome::fail(format!(
                    "the JavaScript check did not return a promise: {reason}"
                ));
            }
            Err(_) => {
                return Outcome::fail(
                    "the JavaScript check was dropped before it ran: the event loop is closing",
                );
            }
        };
        match promise.await {
            Ok(reply) => outcome_from_reply(&reply),
            Err(e) => Outcome::fail(format!("the JavaScript check failed: {}", e.reason)),
        }
    }

    fn is_local(&self) -> bool {
        self.local
    }
}

/// A core transition hook that calls a JavaScript callback on the JavaScript thread.
pub(crate) fn transition_hook(
    callback: TransitionFn,
) -> impl Fn(&Transition) + Send + Sync + 'static {
    move |transition: &Transition| {
        callback.call(
            TransitionEvent::from(transition),
            ThreadsafeFunctionCallMode::NonBlocking,
        );
    }
}
