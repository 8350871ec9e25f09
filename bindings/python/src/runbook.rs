//! `runward.Runbook`: a parsed runbook and its plans, as `runward runbook plan` renders them.

use crate::convert::{json_to_py, py_to_json, type_name};
use crate::errors::py_err;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyMapping, PyString};
use runward::runbook::{self, Plan};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A parsed, validated runbook.
///
/// Made with `Runbook.load(path)`, `Runbook.parse(text, path=None)` or
/// `Runbook.from_dict(data)`; a malformed runbook raises `ConfigError` whose message starts
/// with `file:line:column` (from `from_dict`, one that names the key). Planning executes
/// nothing: it resolves the parameters and renders what every step would do.
#[pyclass(module = "runward", name = "Runbook", frozen)]
pub(crate) struct Runbook {
    inner: runbook::Runbook,
}

/// Reads `params` (a mapping of parameter names to values, or `None`) as the core's parameter
/// map. Strings are converted to the declared types by the core, as `--param NAME=VALUE` is.
pub(crate) fn params_of(params: Option<&Bound<'_, PyAny>>) -> PyResult<BTreeMap<String, Value>> {
    let mut out = BTreeMap::new();
    let Some(params) = params.filter(|p| !p.is_none()) else {
        return Ok(out);
    };
    let items = if let Ok(dict) = params.cast::<PyDict>() {
        dict.items()
    } else if let Ok(mapping) = params.cast::<PyMapping>() {
        mapping.items()?
    } else {
        return Err(PyTypeError::new_err(format!(
            "params must be a mapping of parameter names to values, not {}",
            type_name(params)
        )));
    };
    for item in items.iter() {
        let (key, value): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item.extract()?;
        let name = key.cast::<PyString>().map_err(|_| {
            PyTypeError::new_err(format!(
                "parameter names must be str, not {}",
                type_name(&key)
            ))
        })?;
        out.insert(name.to_cow()?.into_owned(), py_to_json(&value)?);
    }
    Ok(out)
}

impl Runbook {
    /// The core runbook.
    pub(crate) fn inner(&self) -> &runbook::Runbook {
        &self.inner
    }

    fn plan_of(&self, params: Option<&Bound<'_, PyAny>>) -> PyResult<Plan> {
        runbook::plan(&self.inner, &params_of(params)?).map_err(py_err)
    }
}

#[pymethods]
impl Runbook {
    /// Reads and validates a runbook file.
    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let inner = py
            .detach(|| runbook::Runbook::load(&path))
            .map_err(py_err)?;
        Ok(Runbook { inner })
    }

    /// Parses and validates runbook text; `path` names it in error messages.
    #[staticmethod]
    #[pyo3(signature = (text, path=None))]
    fn parse(text: &str, path: Option<PathBuf>) -> PyResult<Self> {
        let inner = runbook::Runbook::parse(text, path.as_deref()).map_err(py_err)?;
        Ok(Runbook { inner })
    }

    /// Builds and validates a runbook from data shaped like a runbook file: a mapping with
    /// `runbook` (`name`, ...), `params`, `steps` and `on_cancel`, as `tomllib.load` returns it.
    /// Values are JSON-compatible (`None`, `bool`, `int`, `float`, `str`, `list`, `tuple`,
    /// `dict` with `str` keys); durations are strings such as `"30s"`. Invalid data, or a
    /// `None` value (leave the key out instead), raises `ConfigError` naming the key.
    #[staticmethod]
    fn from_dict(data: &Bound<'_, PyAny>) -> PyResult<Self> {
        let value = if data.is_instance_of::<PyDict>() {
            py_to_json(data)?
        } else if let Ok(mapping) = data.cast::<PyMapping>() {
            let mut map = serde_json::Map::new();
            for item in mapping.items()?.iter() {
                let (key, value): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item.extract()?;
                let key = key.cast::<PyString>().map_err(|_| {
                    PyTypeError::new_err(format!(
                        "runbook keys must be str, not {}",
                        type_name(&key)
                    ))
                })?;
                map.insert(key.to_cow()?.into_owned(), py_to_json(&value)?);
            }
            Value::Object(map)
        } else {
            return Err(PyTypeError::new_err(format!(
                "a runbook must be a mapping (runbook, params, steps, on_cancel), not {}",
                type_name(data)
            )));
        };
        let inner = runbook::Runbook::from_value(&value).map_err(py_err)?;
        Ok(Runbook { inner })
    }

    /// The runbook's name.
    #[getter]
    fn name(&self) -> &str {
        &self.inner.name
    }

    /// The SHA-256 of the definition; comments and formatting do not change it.
    #[getter]
    fn definition_hash(&self) -> String {
        self.inner.definition_hash()
    }

    /// The ids of the steps, in order.
    #[getter]
    fn step_ids(&self) -> Vec<String> {
        self.inner.steps.iter().map(|s| s.id.clone()).collect()
    }

    /// The file the runbook came from, if any.
    #[getter]
    fn path(&self) -> Option<String> {
        self.inner.path.as_ref().map(|p| p.display().to_string())
    }

    /// The plan of a run with `params`, as a dict (the JSON of `runward runbook plan --json`).
    /// Executes nothing. Raises `InvalidInputError` for an undeclared, missing or mistyped
    /// parameter.
    #[pyo3(signature = (params=None))]
    fn plan<'py>(
        &self,
        py: Python<'py>,
        params: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let plan = self.plan_of(params)?;
        let json = serde_json::to_value(&plan).map_err(|e| {
            py_err(runward::Error::new(
                runward::ErrorKind::Internal,
                e.to_string(),
            ))
        })?;
        json_to_py(py, &json)
    }

    /// The plan of a run with `params`, as the text `runward runbook plan` prints.
    #[pyo3(signature = (params=None))]
    fn plan_text(&self, params: Option<&Bound<'_, PyAny>>) -> PyResult<String> {
        Ok(self.plan_of(params)?.to_text())
    }

    fn __repr__(&self) -> String {
        format!(
            "<Runbook {:?} ({} steps)>",
            self.inner.name,
            self.inner.steps.len()
        )
    }
}
