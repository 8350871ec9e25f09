//! Core errors as thrown JavaScript errors.
//!
//! Every error the binding throws or rejects with is a JavaScript `Error` whose `code` is the
//! core's [`ErrorKind`] name (`config`, `not_found`, `invalid_input`, ...), whose `name` is
//! `RunwardError`, and whose `message` is the core's message unchanged.

use napi::bindgen_prelude::{JsObjectValue, JsValue};
use napi::{Env, JsError};
use runward::{Error, ErrorKind};

/// The `code` of a thrown error.
struct Code(&'static str);

impl AsRef<str> for Code {
    fn as_ref(&self) -> &str {
        self.0
    }
}

/// Builds the JavaScript error for `err` on the JavaScript thread.
///
/// The returned error holds a reference to that JavaScript object, so throwing it or rejecting
/// a promise with it hands over the object as built here (with its `code` and `name`).
pub(crate) fn throwable(env: &Env, err: &Error) -> napi::Error {
    let error = napi::Error::new(Code(err.kind().as_str()), err.to_string());
    let value = JsError::from(error).into_unknown(*env);
    if let Ok(mut object) = value.coerce_to_object() {
        let _ = object.set_named_property("name", "RunwardError");
    }
    napi::Error::from(value)
}

/// An `invalid_input` error with `message`.
pub(crate) fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidInput, message)
}

/// Converts core results into thrown errors.
pub(crate) trait OrThrow<T> {
    /// The value, or the core error as a JavaScript error with its `code`.
    fn or_throw(self, env: &Env) -> napi::Result<T>;
}

impl<T> OrThrow<T> for runward::Result<T> {
    fn or_throw(self, env: &Env) -> napi::Result<T> {
        self.map_err(|e| throwable(env, &e))
    }
}
