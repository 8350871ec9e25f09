//! `gate`: sample a health check, a URL or a counter until enough samples in a row pass, or
//! until the gate's timeout.

use super::{Captured, StepContext, StepError, StepOutput, checked_url, shown_url};
use crate::health::{Registry, Status};
use crate::runbook::{GateStep, GateTarget};
use serde::Serialize;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// The event kind of each sample.
pub const SAMPLE_EVENT: &str = "gate.sample";

/// What the engine does after a gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GateOutcome {
    /// `min_successes` samples in a row passed: go on.
    Passed,
    /// Timed out with `on_timeout = "fail"`: the step fails.
    Fail,
    /// Timed out with `on_timeout = "continue"`: go on, recording the timeout.
    Continue,
    /// Timed out with `on_timeout = "ask"`: wait for an operator's decision.
    Ask,
}

/// A gate's outcome and its output (`data` holds the sample count and the last sample).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateResult {
    /// What the engine should do.
    pub outcome: GateOutcome,
    /// The summary and data for the evidence.
    pub output: StepOutput,
}

/// One observation.
struct Sample {
    ok: bool,
    value: Value,
    detail: String,
}

/// Runs a gate step.
///
/// Contract:
/// - Samples the target every `interval`, first at once: a `check` is refreshed through the
///   registry and passes when `pass` or `warn`; an `http` URL passes on a 2xx answer; a
///   `counter` passes when its value compares true with `op` and `value` (a counter with no
///   value yet fails the sample).
/// - Every sample is sent to [`StepContext::events`] as [`SAMPLE_EVENT`] with `n`, `ok`,
///   `value`, `detail` and the current `streak`.
/// - Returns [`GateOutcome::Passed`] once `min_successes` samples in a row pass. When
///   `timeout` (or the attempt's deadline, whichever is first) leaves no time for another
///   sample, returns the outcome `on_timeout` names; the gate never fails by itself.
/// - [`StepError::Prepare`] when the target cannot be sampled at all: no registry for a check
///   or counter, an unknown check, a bad template, or a URL the outbound policy refuses.
///   [`StepError::Cancelled`] when cancelled.
pub async fn run(step: &GateStep, ctx: &StepContext) -> Result<GateResult, StepError> {
    let started = Instant::now();
    let mut deadline = started + step.timeout;
    if let Some(d) = ctx.deadline {
        deadline = deadline.min(d);
    }
    let target = Target::prepare(step, ctx)?;
    let mut n = 0u32;
    let mut streak = 0u32;
    loop {
        let sample = target.sample(ctx, step.interval, deadline).await?;
        n += 1;
        streak = if sample.ok { streak + 1 } else { 0 };
        let last = json!({
            "n": n,
            "ok": sample.ok,
            "value": sample.value,
            "detail": sample.detail,
            "streak": streak,
            "elapsed_ms": started.elapsed().as_millis() as u64,
        });
        ctx.emit(SAMPLE_EVENT, last.clone());
        let data = |outcome: GateOutcome| json!({ "target": target.shown(), "samples": n, "outcome": outcome, "last": last });
        if streak >= step.min_successes.max(1) {
            let outcome = GateOutcome::Passed;
            return Ok(GateResult {
                outcome,
                output: output(
                    ctx,
                    format!("{} passed {streak} time(s) in a row", target.shown()),
                    data(outcome),
                ),
            });
        }
        if Instant::now() + step.interval >= deadline {
            let outcome = match step.on_timeout.as_str() {
                "continue" => GateOutcome::Continue,
                "ask" => GateOutcome::Ask,
                _ => GateOutcome::Fail,
            };
            let summary = format!(
                "{} did not pass {} time(s) in a row within {} ({n} samples, last: {})",
                target.shown(),
                step.min_successes,
                humantime::format_duration(step.timeout),
                sample.detail
            );
            return Ok(GateResult {
                outcome,
                output: output(ctx, summary, data(outcome)),
            });
        }
        ctx.pause(step.interval).await?;
    }
}

fn output(ctx: &StepContext, summary: String, data: Value) -> StepOutput {
    StepOutput {
        summary: ctx.redactor.redact(&summary),
        data: super::redact_json(&ctx.redactor, data),
        exit_code: None,
        stdout: Captured::new(Vec::new(), false),
        stderr: Captured::new(Vec::new(), false),
    }
}

enum Target {
    Check(Registry, String),
    Http(reqwest::Client, reqwest::Url, String),
    Counter(Registry, String, String, f64),
}

pub(crate) fn registry<'a>(ctx: &'a StepContext, what: &str) -> Result<&'a Registry, StepError> {
    ctx.registry.as_ref().ok_or_else(|| {
        StepError::invalid(format!(
            "{what} needs the health registry: run the runbook with one"
        ))
    })
}

impl Target {
    fn prepare(step: &GateStep, ctx: &StepContext) -> Result<Target, StepError> {
        Ok(match &step.target {
            GateTarget::Check(name) => {
                let name = ctx.render("check", name)?;
                let registry = registry(ctx, "a `check` gate")?;
                registry.check_status(&name).map_err(StepError::Prepare)?;
                Target::Check(registry.clone(), name)
            }
            GateTarget::Http(url) => {
                let url = checked_url(ctx, "http", &ctx.render("http", url)?)?;
                let shown = shown_url(ctx, &url);
                Target::Http(super::http::client(ctx)?, url, shown)
            }
            GateTarget::Counter { name, op, value } => {
                let name = ctx.render("counter", name)?;
                let registry = registry(ctx, "a `counter` gate")?;
                if compare(0.0, op, 0.0).is_none() {
                    return Err(StepError::invalid(format!(
                        "`op` is `{op}`: expected one of <, <=, ==, >=, >"
                    )));
                }
                Target::Counter(registry.clone(), name, op.clone(), *value)
            }
        })
    }

    fn shown(&self) -> String {
        match self {
            Target::Check(_, name) => format!("check `{name}`"),
            Target::Http(_, _, shown) => shown.clone(),
            Target::Counter(_, name, op, value) => format!("counter `{name}` {op} {value}"),
        }
    }

    async fn sample(
        &self,
        ctx: &StepContext,
        interval: Duration,
        deadline: Instant,
    ) -> Result<Sample, StepError> {
        Ok(match self {
            Target::Check(registry, name) => {
                let refreshed = tokio::select! {
                    r = registry.refresh(name) => r,
                    _ = ctx.cancel.cancelled() => return Err(StepError::Cancelled),
                };
                refreshed.map_err(StepError::Prepare)?;
                let status = registry.check_status(name).map_err(StepError::Prepare)?;
                Sample {
                    ok: matches!(status, Status::Pass | Status::Warn),
                    value: json!(status_name(status)),
                    detail: format!("status {}", status_name(status)),
                }
            }
            Target::Http(client, url, shown) => {
                let limit = interval
                    .max(Duration::from_secs(1))
                    .min(deadline.saturating_duration_since(Instant::now()))
                    .max(Duration::from_millis(50));
                let request = client
                    .get(url.clone())
                    .header(super::http::IDEMPOTENCY_HEADER, &ctx.idempotency_key);
                match super::http::send(ctx, request, shown, 0, limit).await {
                    Ok((status, _)) => Sample {
                        ok: status.is_success(),
                        value: json!(status.as_u16()),
                        detail: format!("answered {status}"),
                    },
                    Err(StepError::Failed { message, .. }) => Sample {
                        ok: false,
                        value: Value::Null,
                        detail: message,
                    },
                    Err(other) => return Err(other),
                }
            }
            Target::Counter(registry, name, op, value) => match registry.values().get(name) {
                Some(current) => Sample {
                    ok: compare(current, op, *value).unwrap_or(false),
                    value: json!(current),
                    detail: format!("{name} = {current}"),
                },
                None => Sample {
                    ok: false,
                    value: Value::Null,
                    detail: format!("{name} has no value yet"),
                },
            },
        })
    }
}

/// Compares `left op right`; `None` for an unknown operator.
pub(crate) fn compare(left: f64, op: &str, right: f64) -> Option<bool> {
    Some(match op {
        "<" => left < right,
        "<=" => left <= right,
        "==" => left == right,
        ">=" => left >= right,
        ">" => left > right,
        _ => return None,
    })
}

fn status_name(status: Status) -> &'static str {
    match status {
        Status::Pass => "pass",
        Status::Warn => "warn",
        Status::Fail => "fail",
        _ => "unknown",
    }
}
