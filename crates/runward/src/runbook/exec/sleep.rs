//! `sleep`: wait a fixed time, ending early when cancelled.

use super::{StepContext, StepError, StepOutput};
use crate::runbook::SleepStep;
use serde_json::json;
use std::time::Instant;

/// Runs a sleep step.
///
/// Contract: waits `duration`, cut short by the attempt's deadline (still a success: the
/// wait is all there is to do). Returns [`StepError::Cancelled`] as soon as
/// [`StepContext::cancel`] fires. `data` holds `slept_ms`.
pub async fn run(step: &SleepStep, ctx: &StepContext) -> Result<StepOutput, StepError> {
    let started = Instant::now();
    ctx.pause(step.duration).await?;
    let slept = started.elapsed();
    Ok(StepOutput {
        summary: format!(
            "slept {}",
            humantime::format_duration(std::time::Duration::from_millis(slept.as_millis() as u64))
        ),
        data: json!({ "slept_ms": slept.as_millis() as u64 }),
        ..StepOutput::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn sleeps_and_is_cancellable() {
        let ctx = StepContext::new("r", "s", 1);
        let out = run(
            &SleepStep {
                duration: Duration::from_millis(30),
            },
            &ctx,
        )
        .await
        .unwrap();
        assert!(out.data["slept_ms"].as_u64().unwrap() >= 30);
        ctx.cancel.cancel();
        let started = Instant::now();
        let err = run(
            &SleepStep {
                duration: Duration::from_secs(30),
            },
            &ctx,
        )
        .await
        .unwrap_err();
        assert!(matches!(err, StepError::Cancelled));
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
