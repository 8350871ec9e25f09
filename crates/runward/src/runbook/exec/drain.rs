//! `drain`: sample the amount of in-flight work until it reaches a level or the deadline.

use super::gate::registry;
use super::{Captured, StepContext, StepError, StepOutput, checked_url, shown_url};
use crate::runbook::{DrainSource, DrainStep};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The event kind of each sample.
pub const SAMPLE_EVENT: &str = "drain.sample";

/// Bytes of a sampling command's output read for the count.
const SAMPLE_OUTPUT_BYTES: usize = 4096;

/// Runs a drain step.
///
/// Contract:
/// - Reads the level every `interval`, first at once: a counter from the registry's values,
///   the number at `pointer` in a URL's JSON answer, or the number a command prints (its
///   whole trimmed standard output, run like a command step with the idempotency key).
/// - Every sample is sent to [`StepContext::events`] as [`SAMPLE_EVENT`] with `n`, `level`
///   (`null` when it could not be read), `detail` and `elapsed_ms`; a sample that cannot be
///   read does not end the drain.
/// - Succeeds once a level is at or below `until`; `data` holds `samples`, `level` and the
///   recent levels. When `timeout` (or the attempt's deadline) leaves no time for another
///   sample, fails with [`StepError::Failed`] (`timed_out`), the output holding the same data.
/// - [`StepError::Prepare`] when the source cannot be sampled at all (no registry for a
///   counter, a bad template or URL, a policy refusal); [`StepError::Cancelled`] when
///   cancelled.
pub async fn run(step: &DrainStep, ctx: &StepContext) -> Result<StepOutput, StepError> {
    let started = Instant::now();
    let mut deadline = started + step.timeout;
    if let Some(d) = ctx.deadline {
        deadline = deadline.min(d);
    }
    let source = Source::prepare(&step.source, ctx)?;
    let mut levels: Vec<Value> = Vec::new();
    let mut n = 0u32;
    loop {
        let (level, detail) = source.sample(ctx, step.interval, deadline).await?;
        n += 1;
        ctx.emit(
            SAMPLE_EVENT,
            json!({
                "n": n,
                "level": level,
                "detail": detail,
                "elapsed_ms": started.elapsed().as_millis() as u64,
            }),
        );
        levels.push(json!(level));
        if levels.len() > 20 {
            levels.remove(0);
        }
        let data = json!({
            "source": source.shown(),
            "until": step.until,
            "samples": n,
            "level": level,
            "recent": levels,
        });
        if level.is_some_and(|l| l <= step.until) {
            return Ok(output(
                ctx,
                format!(
                    "{} reached {} after {n} samples",
                    source.shown(),
                    level.unwrap_or_default()
                ),
                data,
            ));
        }
        if Instant::now() + step.interval >= deadline {
            let shown_level = level.map_or_else(|| "unknown".to_owned(), |l| l.to_string());
            let summary = format!(
                "{} was still at {shown_level} (until {}) after {} and {n} samples",
                source.shown(),
                step.until,
                humantime::format_duration(Duration::from_millis(
                    started.elapsed().as_millis() as u64
                )),
            );
            let output = output(ctx, summary.clone(), data);
            return Err(StepError::timed_out(output.summary.clone(), output));
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

enum Source {
    Counter(crate::health::Registry, String),
    Http(reqwest::Client, reqwest::Url, String, String),
    Command(Vec<String>),
}

impl Source {
    fn prepare(source: &DrainSource, ctx: &StepContext) -> Result<Source, StepError> {
        Ok(match source {
            DrainSource::Counter(name) => Source::Counter(
                registry(ctx, "a `counter` drain")?.clone(),
                ctx.render("counter", name)?,
            ),
            DrainSource::Http { url, pointer } => {
                let url = checked_url(ctx, "url", &ctx.render("url", url)?)?;
                if !pointer.is_empty() && !pointer.starts_with('/') {
                    return Err(StepError::invalid(format!(
                        "`pointer` `{pointer}` must start with `/` (e.g. `/in_flight`)"
                    )));
                }
                let shown = shown_url(ctx, &url);
                Source::Http(super::http::client(ctx)?, url, pointer.clone(), shown)
            }
            DrainSource::Command(argv) => Source::Command(
                argv.iter()
                    .enumerate()
                    .map(|(i, a)| ctx.render(&format!("argv[{i}]"), a))
                    .collect::<Result<_, _>>()?,
            ),
        })
    }

    fn shown(&self) -> String {
        match self {
            Source::Counter(_, name) => format!("counter `{name}`"),
            Source::Http(_, _, pointer, shown) => format!("{shown} at `{pointer}`"),
            Source::Command(argv) => format!("`{}`", argv[0]),
        }
    }

    /// The level, or `None` with the reason.
    async fn sample(
        &self,
        ctx: &StepContext,
        interval: Duration,
        deadline: Instant,
    ) -> Result<(Option<f64>, String), StepError> {
        let limit = interval
            .max(Duration::from_secs(1))
            .min(deadline.saturating_duration_since(Instant::now()))
            .max(Duration::from_millis(50));
        Ok(match self {
            Source::Counter(registry, name) => match registry.values().get(name) {
                Some(level) => (Some(level), format!("{name} = {level}")),
                None => (None, format!("{name} has no value yet")),
            },
            Source::Http(client, url, pointer, shown) => {
                let request = client.get(url.clone());
                match super::http::send(ctx, request, shown, 64 * 1024, limit).await {
                    Ok((status, body)) if status.is_success() => {
                        let json: Result<Value, _> = serde_json::from_slice(&body.bytes);
                        match json.ok().as_ref().and_then(|j| j.pointer(pointer)) {
                            Some(found) => match number(found) {
                                Some(level) => (Some(level), format!("{pointer} = {level}")),
                                None => (None, format!("{pointer} is not a number: {found}")),
                            },
                            None => (None, format!("the answer has no number at {pointer}")),
                        }
                    }
                    Ok((status, _)) => (None, format!("answered {status}")),
                    Err(StepError::Failed { message, .. }) => (None, message),
                    Err(other) => return Err(other),
                }
            }
            Source::Command(argv) => {
                let mut sub = ctx.clone();
                let sample_deadline = Instant::now() + limit;
                sub.deadline = Some(
                    sub.deadline
                        .map_or(sample_deadline, |d| d.min(sample_deadline)),
                );
                let ran = super::command::execute(
                    &sub,
                    argv,
                    &BTreeMap::new(),
                    None,
                    SAMPLE_OUTPUT_BYTES,
                )
                .await;
                match ran {
                    Ok(ran) => match ran.ended {
                        crate::process::Ended::Exited(status) if status.success() => {
                            let text = ran.stdout.text();
                            match text.trim().parse::<f64>() {
                                Ok(level) => (Some(level), format!("printed {level}")),
                                Err(_) => {
                                    (None, format!("printed `{}`, not a number", short(&text)))
                                }
                            }
                        }
                        crate::process::Ended::Exited(status) => {
                            (None, format!("exited with {status}"))
                        }
                        crate::process::Ended::Deadline => {
                            (None, "was still running and was killed".to_owned())
                        }
                        crate::process::Ended::WaitFailed(err) => (None, err.to_string()),
                        crate::process::Ended::Stopped => return Err(StepError::Cancelled),
                    },
                    Err(StepError::Failed { message, .. }) => (None, message),
                    Err(other) => return Err(other),
                }
            }
        })
    }
}

fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn short(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(80) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_owned(),
    }
}
