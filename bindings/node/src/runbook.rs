//! The `Runbook` class: a parsed runbook and its plans, as `runward runbook plan` renders them.

use crate::error::{OrThrow, invalid};
use napi::Env;
use napi::bindgen_prelude::{FromNapiRef, JsValue, Unknown, ValidateNapiValue};
use napi_derive::napi;
use runward::runbook::{self, Plan};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// A parsed, validated runbook.
///
/// Made with `Runbook.load(path)` or `Runbook.parse(text, path?)`; a malformed runbook throws
/// with code `config` and a message that starts with `file:line:column`. Planning executes
/// nothing: it resolves the parameters and renders what every step would do.
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

impl Runbook {
    /// A copy of the core runbook of a JavaScript `Runbook`; anything else is `invalid_input`.
    pub(crate) fn from_arg(env: &Env, value: Unknown<'_>) -> runward::Result<runbook::Runbook> {
        let not_a_runbook =
            || invalid("expected a Runbook, made with Runbook.load(path) or Runbook.parse(text)");
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
