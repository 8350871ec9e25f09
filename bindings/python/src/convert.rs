//! Conversions between JSON values, core types and Python objects.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use runward::health::{CheckState, Outcome, Transition};
use serde_json::{Map, Value};
use std::time::{SystemTime, UNIX_EPOCH};

/// A JSON value that converts to plain Python objects (dict, list, str, int, float, bool, None).
pub(crate) struct Json(pub(crate) Value);

impl<'py> IntoPyObject<'py> for Json {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json_to_py(py, &self.0)
    }
}

/// Converts a JSON value to plain Python objects.
pub(crate) fn json_to_py<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                PyFloat::new(py, n.as_f64().unwrap_or(f64::NAN)).into_any()
            }
        }
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(json_to_py(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (k, v) in map {
                dict.set_item(k, json_to_py(py, v)?)?;
            }
            dict.into_any()
        }
    })
}

/// Converts a JSON-compatible Python object (None, bool, int, float, str, list, tuple, dict
/// with str keys) to a JSON value. Non-finite floats become `null`.
pub(crate) fn py_to_json(obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    if obj.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if obj.is_instance_of::<PyInt>() {
        if let Ok(i) = obj.extract::<i64>() {
            return Ok(Value::from(i));
        }
        if let Ok(u) = obj.extract::<u64>() {
            return Ok(Value::from(u));
        }
        return Ok(
            serde_json::Number::from_f64(obj.extract::<f64>()?).map_or(Value::Null, Value::Number)
        );
    }
    if obj.is_instance_of::<PyFloat>() {
        return Ok(
            serde_json::Number::from_f64(obj.extract::<f64>()?).map_or(Value::Null, Value::Number)
        );
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::String(s.to_cow()?.into_owned()));
    }
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        return obj
            .try_iter()?
            .map(|item| py_to_json(&item?))
            .collect::<PyResult<Vec<_>>>()
            .map(Value::Array);
    }
    if let Ok(dict) = obj.cast::<PyDict>() {
        let mut map = Map::new();
        for (k, v) in dict.iter() {
            let key = k.cast::<PyString>().map_err(|_| {
                PyTypeError::new_err(format!(
                    "JSON object keys must be str, not {}",
                    type_name(&k)
                ))
            })?;
            map.insert(key.to_cow()?.into_owned(), py_to_json(&v)?);
        }
        return Ok(Value::Object(map));
    }
    Err(PyTypeError::new_err(format!(
        "{} is not JSON-compatible: use None, bool, int, float, str, list, tuple or dict",
        type_name(obj)
    )))
}

/// The name of an object's type.
pub(crate) fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "object".into())
}

/// `TypeName: message` of a raised exception, as a check's output.
pub(crate) fn exception_text(py: Python<'_>, err: &PyErr) -> String {
    let value = err.value(py);
    let name = type_name(value.as_any());
    match value.str().map(|s| s.to_string()) {
        Ok(text) if !text.is_empty() => format!("{name}: {text}"),
        _ => name,
    }
}

fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Adds an outcome's fields except its raw status (`output`, `outage`, `state`, `observed`,
/// `remediation`, `details`) to `map`, as the core serialises them.
fn merge_outcome(map: &mut Map<String, Value>, outcome: Option<&Outcome>) {
    for key in ["output", "outage", "state", "observed", "remediation"] {
        map.insert(key.into(), Value::Null);
    }
    map.insert("details".into(), Value::Object(Map::new()));
    if let Some(Ok(Value::Object(fields))) = outcome.map(serde_json::to_value) {
        for (k, v) in fields {
            if k != "status" {
                map.insert(k, v);
            }
        }
    }
}

/// One check's state after a run, as returned by `Health.refresh`.
pub(crate) fn check_state_json(name: &str, state: &CheckState) -> Value {
    let mut map = Map::new();
    map.insert("name".into(), Value::from(name));
    map.insert("status".into(), Value::from(state.status.as_str()));
    merge_outcome(&mut map, state.outcome.as_ref());
    map.insert(
        "duration_ms".into(),
        Value::from(state.duration.as_secs_f64() * 1000.0),
    );
    map.insert(
        "checked_at".into(),
        state.checked_at.map(unix_seconds).into(),
    );
    map.insert(
        "last_success".into(),
        state.last_success.map(unix_seconds).into(),
    );
    map.insert(
        "consecutive_failures".into(),
        Value::from(state.consecutive_failures),
    );
    map.insert(
        "consecutive_successes".into(),
        Value::from(state.consecutive_successes),
    );
    map.insert("runs".into(), Value::from(state.runs));
    map.insert("timeouts".into(), Value::from(state.timeouts));
    map.insert("transitions".into(), Value::from(state.transitions));
    Value::Object(map)
}

/// A status change, as passed to `Health.on_transition` callbacks.
pub(crate) fn transition_json(t: &Transition) -> Value {
    let mut map = Map::new();
    map.insert("check".into(), Value::from(t.check.as_str()));
    map.insert("from".into(), Value::from(t.from.as_str()));
    map.insert("to".into(), Value::from(t.to.as_str()));
    map.insert(
        "consecutive_failures".into(),
        Value::from(t.consecutive_failures),
    );
    map.insert(
        "previous_duration_ms".into(),
        Value::from(t.previous_duration.as_secs_f64() * 1000.0),
    );
    map.insert("at".into(), Value::from(unix_seconds(t.at)));
    merge_outcome(&mut map, Some(&t.outcome));
    Value::Object(map)
}
