//! `http`: send one request, with the idempotency key in the `Idempotency-Key` header.

use super::command::RedactFilter;
use super::{Captured, StepContext, StepError, StepOutput, checked_url, shown_url};
use crate::Error;
use crate::process::OutputFilter;
use crate::runbook::HttpStep;
use serde_json::json;
use std::time::Duration;

/// The header carrying the attempt's idempotency key.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

/// Bytes of a response body kept in the output.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The longest a request may take when the attempt has no deadline.
const NO_DEADLINE_TIMEOUT: Duration = Duration::from_secs(300);

/// Sends an http step's request.
///
/// Contract:
/// - `method`, `url`, header values and `body` are rendered first; the URL must pass the
///   outbound policy (scheme, host allowlist), and every resolved address and redirect is
///   checked again. A refusal, a bad method, URL or header is [`StepError::Prepare`].
/// - The request carries `Idempotency-Key: <key>`, replacing any header of that name.
/// - A status in `expect_status` (any 2xx when empty) is success; another status, a network
///   error, or the deadline is [`StepError::Failed`]. The status is the output's `exit_code`.
/// - The body is redacted as it streams and at most [`MAX_BODY_BYTES`] of it are kept, in
///   `stdout`, checksummed.
pub async fn run(step: &HttpStep, ctx: &StepContext) -> Result<StepOutput, StepError> {
    let method_text = ctx.render("method", &step.method)?;
    let method =
        reqwest::Method::from_bytes(method_text.to_ascii_uppercase().as_bytes()).map_err(|_| {
            StepError::invalid(format!("`method` `{method_text}` is not an HTTP method"))
        })?;
    let url = checked_url(ctx, "url", &ctx.render("url", &step.url)?)?;
    let mut headers = reqwest::header::HeaderMap::new();
    for (name, value) in &step.headers {
        let value = ctx.render(&format!("headers.{name}"), value)?;
        let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| StepError::invalid(format!("`{name}` is not a header name")))?;
        let value = reqwest::header::HeaderValue::from_str(&value)
            .map_err(|_| StepError::invalid(format!("header `{name}` has an invalid value")))?;
        headers.insert(name, value);
    }
    let key = reqwest::header::HeaderValue::from_str(&ctx.idempotency_key)
        .map_err(|_| StepError::invalid("the idempotency key is not a valid header value"))?;
    headers.insert(IDEMPOTENCY_HEADER, key);
    let body = step
        .body
        .as_deref()
        .map(|b| ctx.render("body", b))
        .transpose()?;
    let client = client(ctx)?;
    let mut request = client.request(method.clone(), url.clone()).headers(headers);
    if let Some(body) = body {
        request = request.body(body);
    }
    let target = format!("{method} {}", shown_url(ctx, &url));
    let (status, body) = send(ctx, request, &target, MAX_BODY_BYTES, NO_DEADLINE_TIMEOUT).await?;
    let ok = if step.expect_status.is_empty() {
        status.is_success()
    } else {
        step.expect_status.contains(&status.as_u16())
    };
    let output = StepOutput {
        summary: format!("{target} answered {status}"),
        data: json!({ "status": status.as_u16(), "url": shown_url(ctx, &url) }),
        exit_code: Some(i32::from(status.as_u16())),
        stdout: body,
        stderr: Captured::new(Vec::new(), false),
    };
    if ok {
        Ok(output)
    } else {
        let expected = if step.expect_status.is_empty() {
            "a 2xx status".to_owned()
        } else {
            format!("{:?}", step.expect_status)
        };
        let message = format!("{target} answered {status}, expected {expected}");
        Err(StepError::failed(message, output))
    }
}

/// A client that obeys the context's outbound policy.
pub(crate) fn client(ctx: &StepContext) -> Result<reqwest::Client, StepError> {
    crate::probes::http::client(&ctx.outbound, None).map_err(StepError::Prepare)
}

/// Sends `request` within `limit` and before the deadline; returns the status and the redacted, capped body.
/// Policy refusals on resolution or redirect are [`StepError::Prepare`].
pub(crate) async fn send(
    ctx: &StepContext,
    request: reqwest::RequestBuilder,
    target: &str,
    cap: usize,
    limit: Duration,
) -> Result<(reqwest::StatusCode, Captured), StepError> {
    let timeout = ctx.remaining(limit);
    let failure = |err: reqwest::Error| {
        if let Some(why) = crate::probes::http::policy_refusal(&err) {
            return StepError::Prepare(Error::new(
                crate::ErrorKind::PolicyDenied,
                ctx.redactor.redact(&format!("{target}: {why}")),
            ));
        }
        let timed = err.is_timeout();
        let err = err.without_url();
        let mut detail = Vec::new();
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
        while let Some(current) = source {
            let text = current.to_string();
            if !detail.iter().any(|d: &String| d.contains(&text)) {
                detail.push(text);
            }
            source = current.source();
        }
        let message = ctx
            .redactor
            .redact(&format!("{target}: {}", detail.join(": ")));
        if timed {
            StepError::timed_out(message, StepOutput::default())
        } else {
            StepError::failed(message, StepOutput::default())
        }
    };
    let mut response = tokio::select! {
        sent = request.timeout(timeout).send() => sent.map_err(failure)?,
        _ = ctx.cancel.cancelled() => return Err(StepError::Cancelled),
    };
    let status = response.status();
    let mut filter = RedactFilter::new(ctx.redactor.stream());
    let mut kept = Vec::new();
    let mut complete = false;
    while kept.len() <= cap {
        match response.chunk().await {
            Ok(Some(chunk)) => kept.extend(filter.push(&chunk)),
            Ok(None) => {
                kept.extend(filter.finish());
                complete = true;
                break;
            }
            // Keep what was read; the held-back tail may hold part of a secret.
            Err(_) => break,
        }
    }
    let truncated = !complete || kept.len() > cap;
    kept.truncate(cap);
    Ok((status, Captured::new(kept, truncated)))
}
