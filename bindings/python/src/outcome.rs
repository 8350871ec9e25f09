//! `runward.Outcome`: what a Python check returns, and how any return value becomes a core
//! [`Outcome`].

use crate::convert::{exception_text, json_to_py, py_to_json, type_name};
use crate::errors::invalid;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyString};
use runward::health::{DependencyState, OutageClass, Outcome, Status};
use serde_json::Value;

fn parse_name<T: serde::de::DeserializeOwned>(what: &str, name: &str) -> PyResult<T> {
    serde_json::from_value(Value::String(name.to_owned()))
        .map_err(|e| invalid(format!("invalid {what} `{name}`: {e}")))
}

/// The result of one check: a status plus optional detail.
///
/// `status` is `pass`, `warn`, `fail` or `unknown`; `outage` one of the core's outage classes
/// (`timeout`, `connection_refused`, ...); `state` a dependency state (`ready`, `offline`, ...);
/// `observed` a JSON-compatible measured value with its `unit` and `measurement` name
/// (default `value`); `details` a JSON-compatible dict shown to authorised callers. `output`
/// is cut to 512 bytes. Invalid values raise `InvalidInputError`.
#[pyclass(frozen, module = "runward", name = "Outcome")]
pub(crate) struct PyOutcome {
    pub(crate) inner: Outcome,
}

#[pymethods]
impl PyOutcome {
    #[new]
    #[pyo3(signature = (status, output=None, observed=None, unit=None, measurement=None, outage=None, state=None, remediation=None, details=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        status: &str,
        output: Option<String>,
        observed: Option<&Bound<'_, PyAny>>,
        unit: Option<&str>,
        measurement: Option<&str>,
        outage: Option<&str>,
        state: Option<&str>,
        remediation: Option<String>,
        details: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let status: Status = parse_name("status", status)?;
        let mut inner = Outcome {
            status,
            ..Default::default()
        };
        if let Some(output) = output {
            inner = inner.with_output(output);
        }
        match observed {
            Some(value) if !value.is_none() => {
                let value = py_to_json(value)?;
                inner = inner.with_observed(measurement.unwrap_or("value"), value, unit);
            }
            _ if unit.is_some() || measurement.is_some() => {
                return Err(invalid(
                    "`unit` and `measurement` describe `observed`: pass `observed` too",
                ));
            }
            _ => {}
        }
        if let Some(state) = state {
            inner = inner.with_state(parse_name::<DependencyState>("dependency state", state)?);
        }
        if let Some(outage) = outage {
            inner = inner.with_outage(parse_name::<OutageClass>("outage class", outage)?);
        }
        if let Some(hint) = remediation {
            inner = inner.with_remediation(hint);
        }
        if let Some(details) = details {
            match py_to_json(details.as_any())? {
                Value::Object(map) => inner.details = map,
                _ => return Err(invalid("`details` must be a dict")),
            }
        }
        Ok(PyOutcome { inner })
    }

    /// `pass`, `warn`, `fail` or `unknown`.
    #[getter]
    fn status(&self) -> &'static str {
        self.inner.status.as_str()
    }

    /// The human explanation, if any.
    #[getter]
    fn output(&self) -> Option<&str> {
        self.inner.output.as_deref()
    }

    /// The measured value, if any.
    #[getter]
    fn observed<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match &self.inner.observed {
            Some(o) => json_to_py(py, &o.value),
            None => Ok(py.None().into_bound(py)),
        }
    }

    /// The unit of the measured value, if any.
    #[getter]
    fn unit(&self) -> Option<&str> {
        self.inner.observed.as_ref().and_then(|o| o.unit.as_deref())
    }

    /// The measurement name of the observed value, if any.
    #[getter]
    fn measurement(&self) -> Option<&str> {
        self.inner.observed.as_ref().map(|o| o.measurement.as_str())
    }

    /// The outage class, if any.
    #[getter]
    fn outage(&self) -> Option<&'static str> {
        self.inner.outage.map(OutageClass::as_str)
    }

    /// The dependency state, if any (implied by the outage class unless given).
    #[getter]
    fn state(&self) -> Option<&'static str> {
        self.inner.state.map(DependencyState::as_str)
    }

    /// What an operator should do, if anything.
    #[getter]
    fn remediation(&self) -> Option<&str> {
        self.inner.remediation.as_deref()
    }

    /// Structured details.
    #[getter]
    fn details<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json_to_py(py, &Value::Object(self.inner.details.clone()))
    }

    /// The outcome as the core serialises it (absent fields left out).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let value = serde_json::to_value(&self.inner).unwrap_or(Value::Null);
        json_to_py(py, &value)
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<PyOutcome>()
            .is_ok_and(|o| o.get().inner == self.inner)
    }

    fn __repr__(&self) -> String {
        let mut text = format!("Outcome({:?}", self.inner.status.as_str());
        if let Some(output) = &self.inner.output {
            text.push_str(&format!(", output={output:?}"));
        }
        if let Some(outage) = self.inner.outage {
            text.push_str(&format!(", outage={:?}", outage.as_str()));
        }
        text.push(')');
        text
    }
}

fn try_outcome(obj: &Bound<'_, PyAny>) -> PyResult<Outcome> {
    let py = obj.py();
    if obj.is_none() {
        return Ok(Outcome::pass());
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(if b.is_true() {
            Outcome::pass()
        } else {
            Outcome::fail("the check returned False")
        });
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Outcome::pass().with_output(s.to_cow()?.into_owned()));
    }
    if let Ok(o) = obj.cast::<PyOutcome>() {
        return Ok(o.get().inner.clone());
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        let made = py.get_type::<PyOutcome>().call((), Some(d))?;
        return Ok(made.cast::<PyOutcome>()?.get().inner.clone());
    }
    Err(PyTypeError::new_err(format!(
        "the check returned {}: return None, a bool, a str, a runward.Outcome or a dict",
        type_name(obj)
    )))
}

/// The core outcome for a check function's return value; an invalid value is a failure that
/// says what was wrong.
pub(crate) fn outcome_from_py(obj: &Bound<'_, PyAny>) -> Outcome {
    try_outcome(obj).unwrap_or_else(|err| Outcome::fail(exception_text(obj.py(), &err)))
}
