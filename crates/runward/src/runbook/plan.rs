//! Plans: every effect of a run with its parameters resolved, computed without executing
//! anything. Approvals bind to the plan's digest.

use super::definition::{FlagRequirements, OnFailure, ParamType, Runbook, StepDef, StepPolicy};
use super::steps::{DrainSource, FlagAction, GateTarget, StepKind};
use super::template::Vars;
use crate::{Error, Result};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// A rendered plan of one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// The runbook's name.
    pub runbook: String,
    /// The definition hash the run will pin.
    pub definition_hash: String,
    /// Parameters as the run will see them; secrets appear as references, never values.
    pub params: BTreeMap<String, Value>,
    /// Flag preconditions.
    pub requires: FlagRequirements,
    /// The steps, in order.
    pub steps: Vec<PlannedStep>,
    /// The steps a cancellation runs.
    pub on_cancel: Vec<PlannedStep>,
    /// The steps a failure runs before the run ends `failed`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub on_failure: Vec<PlannedStep>,
    /// SHA-256 of everything above.
    pub digest: String,
}

/// One planned step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedStep {
    /// 1-based position.
    pub index: usize,
    /// The step's id.
    pub id: String,
    /// The step's kind.
    pub kind: &'static str,
    /// Its title, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// What it will do, with parameters resolved.
    pub effect: String,
    /// Retries, deadline and failure handling.
    pub policy: StepPolicy,
    /// What compensation would do, if the step has an undo.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compensation: Option<String>,
}

/// Resolves the parameters and renders every step's effect. Executes nothing.
///
/// `given` holds values by parameter name; strings are converted to the declared type.
/// Errors: an undeclared parameter, a missing required one, a value of the wrong type, or a
/// template that cannot be rendered.
pub fn plan(runbook: &Runbook, given: &BTreeMap<String, Value>) -> Result<Plan> {
    for name in given.keys() {
        if !runbook.params.iter().any(|p| &p.name == name) {
            let declared: Vec<&str> = runbook.params.iter().map(|p| p.name.as_str()).collect();
            return Err(Error::invalid(format!(
                "runbook `{}` has no parameter `{name}`; declared: {}",
                runbook.name,
                if declared.is_empty() {
                    "none".to_owned()
                } else {
                    declared.join(", ")
                }
            )));
        }
    }
    let mut vars = Vars::new();
    let mut params = BTreeMap::new();
    for spec in &runbook.params {
        let shown = if spec.ty == ParamType::Secret {
            let env = match given.get(&spec.name) {
                Some(Value::String(env)) => env.clone(),
                Some(_) => {
                    return Err(Error::invalid(format!(
                        "secret parameter `{}` takes the name of an environment variable, not a value",
                        spec.name
                    )));
                }
                None => spec.env.clone().ok_or_else(|| {
                    Error::invalid(format!(
                        "secret parameter `{}` names no environment variable: set `env` in the runbook or pass the variable's name",
                        spec.name
                    ))
                })?,
            };
            let set = std::env::var_os(&env).is_some_and(|v| !v.is_empty());
            let reference = format!("[secret ${env}{}]", if set { "" } else { ", not set" });
            vars.set(format!("params.{}", spec.name), reference.clone());
            Value::String(reference)
        } else {
            let value = match given.get(&spec.name).or(spec.default.as_ref()) {
                Some(v) => coerce(&spec.name, spec.ty, v)?,
                None => {
                    return Err(Error::invalid(format!(
                        "missing parameter `{}`: pass it with --param {}=<value>",
                        spec.name, spec.name
                    )));
                }
            };
            vars.set(format!("params.{}", spec.name), display(&value));
            value
        };
        params.insert(spec.name.clone(), shown);
    }
    vars.set("run.id", "<run id>")
        .set("run.runbook", runbook.name.clone())
        .set("run.started_by", "<starter>")
        .set("run.idempotency_key", "<idempotency key>");
    let render_steps = |steps: &[StepDef]| -> Result<Vec<PlannedStep>> {
        steps
            .iter()
            .enumerate()
            .map(|(i, step)| {
                let effect = describe(step, &vars)
                    .map_err(|e| Error::invalid(format!("step `{}`: {}", step.id, e.message())))?;
                let compensation = step
                    .compensate
                    .as_ref()
                    .map(|undo| describe(undo, &vars))
                    .transpose()
                    .map_err(|e| {
                        Error::invalid(format!("step `{}` compensation: {}", step.id, e.message()))
                    })?
                    .or_else(|| match &step.kind {
                        StepKind::Flag(f) if f.action == FlagAction::Set => {
                            Some(format!("clear flag `{}`", f.flag))
                        }
                        _ => None,
                    });
                Ok(PlannedStep {
                    index: i + 1,
                    id: step.id.clone(),
                    kind: step.kind.name(),
                    title: step.title.clone(),
                    effect,
                    policy: step.policy.clone(),
                    compensation,
                })
            })
            .collect()
    };
    let mut plan = Plan {
        runbook: runbook.name.clone(),
        definition_hash: runbook.definition_hash(),
        params,
        requires: runbook.requires.clone(),
        steps: render_steps(&runbook.steps)?,
        on_cancel: render_steps(&runbook.on_cancel)?,
        on_failure: render_steps(&runbook.failure_path)?,
        digest: String::new(),
    };
    plan.digest = hex::encode(Sha256::digest(
        serde_json::to_vec(&plan).expect("a plan always serializes"),
    ));
    Ok(plan)
}

fn display(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn coerce(name: &str, ty: ParamType, value: &Value) -> Result<Value> {
    let wrong = |expected: &str| {
        Error::invalid(format!(
            "parameter `{name}` must be {expected}, got {value}"
        ))
    };
    Ok(match (ty, value) {
        (ParamType::String, Value::String(_)) => value.clone(),
        (ParamType::String, Value::Number(_) | Value::Bool(_)) => Value::String(display(value)),
        (ParamType::Integer, Value::Number(n)) if n.is_i64() || n.is_u64() => value.clone(),
        (ParamType::Integer, Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| wrong("an integer"))?,
        (ParamType::Number, Value::Number(_)) => value.clone(),
        (ParamType::Number, Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| wrong("a number"))?,
        (ParamType::Boolean, Value::Bool(_)) => value.clone(),
        (ParamType::Boolean, Value::String(s)) => match s.trim() {
            "true" | "yes" | "1" => Value::Bool(true),
            "false" | "no" | "0" => Value::Bool(false),
            _ => return Err(wrong("true or false")),
        },
        (ParamType::Integer, _) => return Err(wrong("an integer")),
        (ParamType::Number, _) => return Err(wrong("a number")),
        (ParamType::Boolean, _) => return Err(wrong("true or false")),
        (ParamType::String, _) => return Err(wrong("a string")),
        (ParamType::Secret, _) => return Err(wrong("an environment variable name")),
    })
}

fn human(d: std::time::Duration) -> String {
    humantime::format_duration(d).to_string()
}

fn describe(step: &StepDef, vars: &Vars) -> Result<String> {
    let r = |s: &str| vars.render(s);
    let mut text = match &step.kind {
        StepKind::Command(c) => {
            let line = match (&c.argv, &c.shell) {
                (Some(argv), _) => argv
                    .iter()
                    .map(|a| r(a))
                    .collect::<Result<Vec<_>>>()?
                    .join(" "),
                (None, Some(shell)) => format!("sh -c '{}'", r(shell)?),
                (None, None) => String::new(),
            };
            let mut text = format!("run `{line}`");
            if let Some(cwd) = &c.cwd {
                let _ = write!(text, " in {}", r(cwd)?);
            }
            if !c.env.is_empty() {
                let _ = write!(
                    text,
                    " with env {}",
                    c.env.keys().cloned().collect::<Vec<_>>().join(", ")
                );
            }
            text.push_str("; idempotency key in RUNWARD_IDEMPOTENCY_KEY");
            text
        }
        StepKind::Http(h) => {
            let expect = if h.expect_status.is_empty() {
                "any 2xx".to_owned()
            } else {
                h.expect_status
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(" or ")
            };
            format!(
                "{} {} expecting {expect}, with an Idempotency-Key header",
                h.method,
                r(&h.url)?
            )
        }
        StepKind::Gate(g) => {
            let what = match &g.target {
                GateTarget::Check(name) => format!("health check `{name}` passes"),
                GateTarget::Http(url) => format!("{} answers 2xx", r(url)?),
                GateTarget::Counter { name, op, value } => format!("counter `{name}` {op} {value}"),
            };
            let times = if g.min_successes > 1 {
                format!(" {} times in a row", g.min_successes)
            } else {
                String::new()
            };
            format!(
                "wait until {what}{times} (every {}, up to {}; on timeout: {})",
                human(g.interval),
                human(g.timeout),
                g.on_timeout
            )
        }
        StepKind::Approval(a) => {
            let who = if a.approvers.is_empty() {
                "anyone".to_owned()
            } else {
                a.approvers.join(", ")
            };
            let mut text = format!("wait for {} approval(s) from {who}", a.quorum);
            if a.forbid_starter {
                text.push_str(", not the starter");
            }
            if let Some(expires) = a.expires {
                let _ = write!(text, "; expires after {}", human(expires));
            }
            if let Some(message) = &a.message {
                let _ = write!(text, ": \"{}\"", r(message)?);
            }
            text
        }
        StepKind::Flag(f) => match f.action {
            FlagAction::Set => format!(
                "set flag `{}` for {} (owned by the run, renewed while it runs, released when it ends)",
                f.flag,
                human(f.ttl.unwrap_or(std::time::Duration::from_secs(600)))
            ),
            FlagAction::Clear => format!("clear flag `{}`", f.flag),
        },
        StepKind::Drain(d) => {
            let source = match &d.source {
                DrainSource::Counter(name) => format!("counter `{name}`"),
                DrainSource::Http { url, pointer } => format!("{} at {pointer}", r(url)?),
                DrainSource::Command(argv) => {
                    format!(
                        "the output of `{}`",
                        argv.iter()
                            .map(|a| r(a))
                            .collect::<Result<Vec<_>>>()?
                            .join(" ")
                    )
                }
            };
            format!(
                "wait until {source} <= {} (every {}, up to {}), recording samples",
                d.until,
                human(d.interval),
                human(d.timeout)
            )
        }
        StepKind::Sleep(s) => format!("wait {}", human(s.duration)),
        StepKind::Runbook(s) => {
            let params = s
                .params
                .iter()
                .map(|(k, v)| Ok(format!("{k}={}", r(v)?)))
                .collect::<Result<Vec<_>>>()?;
            if params.is_empty() {
                format!("run runbook `{}`", s.path)
            } else {
                format!("run runbook `{}` with {}", s.path, params.join(", "))
            }
        }
        StepKind::Custom(c) => format!("run custom step `{}`", c.name),
    };
    let p = &step.policy;
    let waits = matches!(step.kind, StepKind::Gate(_) | StepKind::Drain(_));
    if let (Some(timeout), false) = (p.timeout, waits) {
        let _ = write!(text, "; timeout {}", human(timeout));
    }
    if p.retries > 0 {
        let _ = write!(
            text,
            "; {} retries from {} backoff",
            p.retries,
            human(p.backoff)
        );
    }
    match &p.on_failure {
        OnFailure::Abort => {}
        OnFailure::Continue => text.push_str("; on failure: continue"),
        OnFailure::Compensate => text.push_str("; on failure: compensate"),
        OnFailure::Goto(id) => {
            let _ = write!(text, "; on failure: go to `{id}`");
        }
    }
    Ok(text)
}

impl Plan {
    /// The plan as text for people.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "plan for runbook `{}` (definition {})\n",
            self.runbook,
            &self.definition_hash[..12]
        );
        if !self.params.is_empty() {
            out.push_str("params:\n");
            for (k, v) in &self.params {
                let _ = writeln!(out, "  {k} = {}", display(v));
            }
        }
        if !self.requires.absent.is_empty() {
            let _ = writeln!(
                out,
                "requires flags absent: {}",
                self.requires.absent.join(", ")
            );
        }
        if !self.requires.present.is_empty() {
            let _ = writeln!(
                out,
                "requires flags present: {}",
                self.requires.present.join(", ")
            );
        }
        out.push_str("steps:\n");
        for s in &self.steps {
            let _ = writeln!(out, "  {}. {} [{}] {}", s.index, s.id, s.kind, s.effect);
            if let Some(undo) = &s.compensation {
                let _ = writeln!(out, "     undo: {undo}");
            }
        }
        if !self.on_cancel.is_empty() {
            out.push_str("on cancel:\n");
            for s in &self.on_cancel {
                let _ = writeln!(out, "  {}. {} [{}] {}", s.index, s.id, s.kind, s.effect);
            }
        }
        if !self.on_failure.is_empty() {
            out.push_str("on failure:\n");
            for s in &self.on_failure {
                let _ = writeln!(out, "  {}. {} [{}] {}", s.index, s.id, s.kind, s.effect);
            }
        }
        let _ = writeln!(out, "digest: {}", self.digest);
        out
    }
}
