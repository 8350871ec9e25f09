//! The `Runbook` class: a parsed runbook and its plans, as `runward runbook plan` renders them.

use crate::error::{OrThrow, invalid};
use napi::bindgen_prelude::{FromNapiRef, FromNapiValue, JsValue, Unknown, ValidateNapiValue};
use napi::{Env, ValueType};
use napi_derive::napi;
use runward::runbook::{self, Plan};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// A parsed, validated runbook.
///
/// Made with `Runbook.load(path)`, `Runbook.parse(text, path?)` or `Runbook.fromObject(data)`;
/// a malformed runbook throws with code `config` (from a file or text, with a message that
/// starts with `file:line:column`). Planning executes nothing: it resolves the parameters and
/// renders what every step would do.
#[napi]
pub struct Runbook {
    inner: runbook::Runbook,
}

/// Reads the parameters of a plan: an object of names to values, or nothing. Strings are
/// converted to the declared types by the core, as `--param NAME=VALUE` is.
pub(crate) fn params(value: Option<Value>) -> runward::Result<BTreeMap<String, Value>> {
    match value {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(map)) => Ok(map.into_iter().collect()),
        Some(other) => Err(invalid(format!(
            "runbook parameters must be an object of names to values, not {}",
            match other {
                Value::Array(_) => "an array",
                Value::String(_) => "a string",
                Value::Number(_) => "a number",
                _ => "a boolean",
            }
        ))),
    }
}

/// The largest integer a JavaScript number holds exactly, 2^53 - 1.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// Turns whole numbers that arrived as floats (napi reads integers beyond 32 bits as `f64`)
/// back into integers, so `timeout_ms: 5000000000` is an integer as it is in a file.
fn whole_numbers(value: Value) -> Value {
    match value {
        Value::Number(n) => match n.as_f64() {
            Some(f)
                if !n.is_i64()
                    && !n.is_u64()
                    && f.fract() == 0.0
                    && f.abs() <= MAX_SAFE_INTEGER =>
            {
                // Whole and within 2^53: the cast is exact.
                Value::from(f as i64)
            }
            _ => Value::Number(n),
        },
        Value::Array(items) => Value::Array(items.into_iter().map(whole_numbers).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, whole_numbers(v)))
                .collect(),
        ),
        other => other,
    }
}

/// Reads the argument of `Runbook.fromObject` as JSON data. Keys whose value is `undefined`
/// are left out; what JSON cannot hold (functions, symbols, `undefined` in an array) is
/// `invalid_input`.
fn runbook_data(env: &Env, data: Unknown<'_>) -> runward::Result<Value> {
    if matches!(data.get_type(), Ok(ValueType::Undefined)) {
        // No argument: the core explains what a runbook object is.
        return Ok(Value::Null);
    }
    // SAFETY: both handles come from the current call on the JavaScript thread.
    let value = unsafe { Value::from_napi_value(env.raw(), data.raw()) }.map_err(|e| {
        invalid(format!(
            "a runbook object holds only JSON values (objects, arrays, strings, numbers, booleans): {}",
            e.reason
        ))
    })?;
    Ok(whole_numbers(value))
}

impl Runbook {
    /// A copy of the core runbook of a JavaScript `Runbook`; anything else is `invalid_input`.
    pub(crate) fn from_arg(env: &Env, value: Unknown<'_>) -> runward::Result<runbook::Runbook> {
        let not_a_runbook = || {
            invalid(
                "expected a Runbook, made with Runbook.load(path), Runbook.parse(text) or Runbook.fromObject(data)",
            )
        };
        // SAFETY: `validate` checks that the value is an instance of the `Runbook` class
        // before `from_napi_ref` unwraps it, so the pointer is a `Runbook`'s.
        unsafe {
            <&Runbook as ValidateNapiValue>::validate(env.raw(), value.raw())
                .map_err(|_| not_a_runbook())?;
            let runbook = <Runbook as FromNapiRef>::from_napi_ref(env.raw(), value.raw())
                .map_err(|_| not_a_runbook())?;
            Ok(runbook.inner.clone())
        }
    }

    fn plan_of(&self, value: Option<Value>) -> runward::Result<Plan> {
        runbook::plan(&self.inner, &params(value)?)
    }
}

#[napi]
impl Runbook {
    /// Reads and validates a runbook file; throws with code `config` (naming the file and
    /// line) when it is malformed, `not_found` when it does not exist.
    #[napi(factory)]
    pub fn load(env: Env, path: String) -> napi::Result<Self> {
        let inner = runbook::Runbook::load(path).or_throw(&env)?;
        Ok(Runbook { inner })
    }

    /// Parses and validates runbook text; `path` names it in error messages.
    #[napi(factory)]
    pub fn parse(env: Env, text: String, path: Option<String>) -> napi::Result<Self> {
        let inner =
            runbook::Runbook::parse(&text, path.as_deref().map(Path::new)).or_throw(&env)?;
        Ok(Runbook { inner })
    }

    /// Builds and validates a runbook from an object shaped like a runbook file:
    /// `{ runbook: { name, ... }, params?: { ... }, steps: [...], on_cancel?: [...] }`, keys
    /// as in TOML. Every check of `parse` applies and an error names the key; a `null` value
    /// is refused (leave the key out, or make it `undefined`). The definition hash is the one
    /// of the same runbook written as a file. Throws with code `config` when the runbook is
    /// malformed, `invalid_input` when `data` holds what JSON cannot.
    #[napi(factory, ts_args_type = "data: RunbookData")]
    pub fn from_object(env: Env, data: Unknown<'_>) -> napi::Result<Self> {
        let inner = runbook_data(&env, data)
            .and_then(|value| runbook::Runbook::from_value(&value))
            .or_throw(&env)?;
        Ok(Runbook { inner })
    }

    /// The runbook's name.
    #[napi(getter)]
    pub fn name(&self) -> String {
        self.inner.name.clone()
    }

    /// The SHA-256 of the definition; comments and formatting do not change it.
    #[napi(getter)]
    pub fn definition_hash(&self) -> String {
        self.inner.definition_hash()
    }

    /// The ids of the steps, in order.
    #[napi(getter)]
    pub fn step_ids(&self) -> Vec<String> {
        self.inner.steps.iter().map(|s| s.id.clone()).collect()
    }

    /// The file the runbook came from, or `null`.
    #[napi(getter)]
    pub fn path(&self) -> Option<String> {
        self.inner.path.as_ref().map(|p| p.display().to_string())
    }

    /// The plan of a run with `params` (the JSON of `runward runbook plan --json`). Executes
    /// nothing. Throws with code `invalid_input` for an undeclared, missing or mistyped
    /// parameter.
    #[napi(
        ts_args_type = "params?: Record<string, unknown> | null",
        ts_return_type = "RunbookPlan"
    )]
    pub fn plan(&self, env: Env, params: Option<Value>) -> napi::Result<Value> {
        self.plan_of(params)
            .and_then(|plan| {
                serde_json::to_value(&plan)
                    .map_err(|e| runward::Error::new(runward::ErrorKind::Internal, e.to_string()))
            })
            .or_throw(&env)
    }

    /// The plan of a run with `params`, as the text `runward runbook plan` prints.
    #[napi(ts_args_type = "params?: Record<string, unknown> | null")]
    pub fn plan_text(&self, env: Env, params: Option<Value>) -> napi::Result<String> {
        Ok(self.plan_of(params).or_throw(&env)?.to_text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn whole_floats_become_integers() {
        let data =
            json!({ "a": 5_000_000_000.0_f64, "b": [1.5, -3.0e9_f64], "c": 1e300_f64, "d": 7 });
        let fixed = whole_numbers(data);
        assert!(fixed["a"].is_i64(), "{fixed}");
        assert_eq!(fixed["a"], json!(5_000_000_000_i64));
        assert_eq!(fixed["b"], json!([1.5, -3_000_000_000_i64]));
        assert!(fixed["c"].is_f64(), "beyond 2^53 stays a float: {fixed}");
        assert_eq!(fixed["d"], json!(7));
    }

    #[test]
    fn params_are_an_object_or_nothing() {
        assert!(params(None).unwrap().is_empty());
        assert!(params(Some(Value::Null)).unwrap().is_empty());
        let given = params(Some(json!({ "workers": "8", "dry": true }))).unwrap();
        assert_eq!(given["workers"], json!("8"));
        assert_eq!(given["dry"], json!(true));
        let err = params(Some(json!(["workers=8"]))).unwrap_err();
        assert_eq!(err.kind(), runward::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("not an array"), "{err}");
    }
}
