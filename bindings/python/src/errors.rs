//! Maps runward errors to the exception classes of `runward.errors`.

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use runward::{Error, ErrorKind};

static ERRORS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

fn errors_module(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    ERRORS
        .get_or_try_init(py, || py.import("runward.errors").map(Bound::unbind))
        .map(|m| m.bind(py))
}

/// Builds an exception of the `runward.errors` class for `kind` with `message`.
pub(crate) fn new_error(py: Python<'_>, kind: ErrorKind, message: &str) -> PyErr {
    let made = errors_module(py)
        .and_then(|m| m.getattr("_from_kind"))
        .and_then(|f| f.call1((kind.as_str(), message)));
    match made {
        Ok(exc) => PyErr::from_value(exc),
        Err(_) => PyRuntimeError::new_err(format!("[{}] {message}", kind.as_str())),
    }
}

/// Converts a runward error into its Python exception: the class follows the error's kind,
/// `location` carries a configuration file position, and an underlying OS error becomes
/// `__cause__`.
pub(crate) fn py_err(err: Error) -> PyErr {
    Python::attach(|py| {
        let exc = new_error(py, err.kind(), err.message());
        if let Some(loc) = err.location() {
            let file = loc.file.as_ref().map(|f| f.display().to_string());
            let _ = exc
                .value(py)
                .setattr("location", (file, loc.line, loc.column));
        }
        let mut source = std::error::Error::source(&err);
        while let Some(cause) = source {
            if let Some(io) = cause.downcast_ref::<std::io::Error>() {
                let copy = match io.raw_os_error() {
                    Some(code) => std::io::Error::from_raw_os_error(code),
                    None => std::io::Error::new(io.kind(), io.to_string()),
                };
                exc.set_cause(py, Some(PyErr::from(copy)));
                break;
            }
            source = cause.source();
        }
        exc
    })
}

/// An `InvalidInputError` with `message`.
pub(crate) fn invalid(message: impl Into<String>) -> PyErr {
    Python::attach(|py| new_error(py, ErrorKind::InvalidInput, &message.into()))
}
