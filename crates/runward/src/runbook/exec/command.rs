//! `command`: run a program once, with the idempotency key in its environment.

use super::{Captured, StepContext, StepError, StepOutput};
use crate::process::{self, Ended, OutputFilter};
use crate::runbook::CommandStep;
use crate::secrets::StreamRedactor;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The environment variable holding the attempt's idempotency key.
pub const IDEMPOTENCY_ENV: &str = "RUNWARD_IDEMPOTENCY_KEY";

/// Runs a command step.
///
/// Contract:
/// - `argv`, `shell`, `env` values and `cwd` are rendered first; exactly one of `argv` and
///   `shell` must be set. A registered secret in `argv`, `shell` or `cwd` is refused
///   ([`StepError::Prepare`]): secrets reach a command only through the environment
///   ([`StepContext::secret_env`] or `env`).
/// - The child gets `RUNWARD_IDEMPOTENCY_KEY`, `RUNWARD_RUN_ID`, `RUNWARD_STEP_ID` and
///   `RUNWARD_ATTEMPT`, the secret variables, then `env`. It has no input and leads its own
///   process group; a relative `cwd` resolves against [`StepContext::base_dir`].
/// - Each stream is redacted as it is read (a secret split across reads is still caught),
///   then capped to `max_output_bytes` keeping the tail, and checksummed.
/// - An exit code in `success_codes` is success; another code, a signal, or the deadline
///   (which kills the whole process group) is [`StepError::Failed`] with the output.
/// - Cancellation kills the whole process group and returns [`StepError::Cancelled`].
pub async fn run(step: &CommandStep, ctx: &StepContext) -> Result<StepOutput, StepError> {
    let argv = match (&step.argv, &step.shell) {
        (Some(argv), None) => {
            if argv.first().is_none_or(|p| p.is_empty()) {
                return Err(StepError::invalid(
                    "`argv` is empty: name the program first",
                ));
            }
            argv.iter()
                .enumerate()
                .map(|(i, a)| ctx.render(&format!("argv[{i}]"), a))
                .collect::<Result<Vec<_>, _>>()?
        }
        (None, Some(line)) => vec!["sh".into(), "-c".into(), ctx.render("shell", line)?],
        (Some(_), Some(_)) => {
            return Err(StepError::invalid(
                "`argv` and `shell` are both set: keep one",
            ));
        }
        (None, None) => {
            return Err(StepError::invalid(
                "`argv` (a list) or `shell` (a string) is required",
            ));
        }
    };
    let mut env = BTreeMap::new();
    for (key, value) in &step.env {
        env.insert(key.clone(), ctx.render(&format!("env.{key}"), value)?);
    }
    let cwd = step
        .cwd
        .as_deref()
        .map(|dir| ctx.render("cwd", dir))
        .transpose()?;
    let ran = execute(ctx, &argv, &env, cwd.as_deref(), step.max_output_bytes).await?;
    let shown = shown(&argv);
    let mut output = StepOutput {
        summary: String::new(),
        data: json!({ "elapsed_ms": ran.elapsed.as_millis() as u64 }),
        exit_code: None,
        stdout: ran.stdout,
        stderr: ran.stderr,
    };
    match ran.ended {
        Ended::Exited(status) => match status.code() {
            Some(code) => {
                output.exit_code = Some(code);
                if step.success_codes.contains(&code) {
                    output.summary = format!("{shown} exited with code {code}");
                    Ok(output)
                } else {
                    output.summary = format!(
                        "{shown} exited with code {code} (success: {:?})",
                        step.success_codes
                    );
                    Err(StepError::failed(output.summary.clone(), output))
                }
            }
            None => {
                let signal = process::signal_of(&status)
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "?".into());
                output.data["signal"] = json!(signal);
                output.summary = format!("{shown} was killed by signal {signal}");
                Err(StepError::failed(output.summary.clone(), output))
            }
        },
        Ended::Deadline => {
            output.summary = format!("{shown} was still running at the deadline and was killed");
            Err(StepError::timed_out(output.summary.clone(), output))
        }
        Ended::WaitFailed(err) => {
            output.summary = format!("waiting for {shown} failed: {err}");
            Err(StepError::failed(output.summary.clone(), output))
        }
        Ended::Stopped => Err(StepError::Cancelled),
    }
}

fn shown(argv: &[String]) -> String {
    if argv.len() == 3 && argv[0] == "sh" && argv[1] == "-c" {
        "the shell command".to_owned()
    } else {
        format!("`{}`", argv[0])
    }
}

/// What a finished child left, redacted.
pub(crate) struct Ran {
    pub(crate) ended: Ended,
    pub(crate) stdout: Captured,
    pub(crate) stderr: Captured,
    pub(crate) elapsed: Duration,
}

/// Spawns `argv` with the step environment, waits until the deadline, captures redacted
/// output. Refuses secrets outside the environment; a spawn failure is a failed effect.
pub(crate) async fn execute(
    ctx: &StepContext,
    argv: &[String],
    env: &BTreeMap<String, String>,
    cwd: Option<&str>,
    cap: usize,
) -> Result<Ran, StepError> {
    if argv.iter().any(|a| ctx.redactor.contains_secret(a))
        || cwd.is_some_and(|d| ctx.redactor.contains_secret(d))
    {
        return Err(StepError::invalid(
            "a secret value appears in the command line: pass secrets through `env` only",
        ));
    }
    let dir: PathBuf = match cwd {
        Some(d) => ctx.base_dir.join(d),
        None => ctx.base_dir.clone(),
    };
    let mut cmd = process::command(&argv[0], &argv[1..]);
    cmd.current_dir(&dir)
        .env(IDEMPOTENCY_ENV, &ctx.idempotency_key)
        .env("RUNWARD_RUN_ID", &ctx.run_id)
        .env("RUNWARD_STEP_ID", &ctx.step_id)
        .env("RUNWARD_ATTEMPT", ctx.attempt.to_string());
    for (key, secret) in &ctx.secret_env {
        cmd.env(key, secret.expose());
    }
    cmd.envs(env);
    let started = Instant::now();
    let deadline = ctx
        .deadline
        .unwrap_or_else(|| started + Duration::from_secs(100 * 365 * 86_400));
    let child = cmd.spawn().map_err(|err| {
        StepError::failed(
            format!("cannot start {} in {}: {err}", shown(argv), dir.display()),
            StepOutput::default(),
        )
    })?;
    let (out_filter, err_filter) = (
        RedactFilter::new(ctx.redactor.stream()),
        RedactFilter::new(ctx.redactor.stream()),
    );
    let finished = process::wait(
        child,
        deadline,
        ctx.cancel.cancelled(),
        |out| tokio::spawn(process::capture_filtered(out, cap, out_filter)),
        |err| tokio::spawn(process::capture_filtered(err, cap, err_filter)),
    )
    .await;
    let keep = |stream: Option<(Vec<u8>, bool)>| {
        let (bytes, cut) = stream.unwrap_or((Vec::new(), true));
        Captured::new(bytes, cut)
    };
    Ok(Ran {
        ended: finished.ended,
        stdout: keep(finished.stdout),
        stderr: keep(finished.stderr),
        elapsed: started.elapsed(),
    })
}

/// Decodes bytes as UTF-8 across reads (invalid sequences replaced) and redacts the text
/// with a [`StreamRedactor`], so a secret cut between two reads is still caught.
pub(crate) struct RedactFilter {
    redactor: StreamRedactor,
    carry: Vec<u8>,
}

impl RedactFilter {
    pub(crate) fn new(redactor: StreamRedactor) -> Self {
        RedactFilter {
            redactor,
            carry: Vec::new(),
        }
    }
}

/// Splits `bytes` into the longest prefix decodable now (invalid sequences replaced) and an
/// incomplete UTF-8 sequence at the end, kept for the next read.
fn decode(bytes: &[u8]) -> (String, Vec<u8>) {
    let mut text = String::new();
    let mut rest = bytes;
    loop {
        match std::str::from_utf8(rest) {
            Ok(valid) => {
                text.push_str(valid);
                return (text, Vec::new());
            }
            Err(e) => {
                let (valid, after) = rest.split_at(e.valid_up_to());
                text.push_str(std::str::from_utf8(valid).expect("checked prefix"));
                match e.error_len() {
                    Some(bad) => {
                        text.push('\u{FFFD}');
                        rest = &after[bad..];
                    }
                    None => return (text, after.to_vec()),
                }
            }
        }
    }
}

impl OutputFilter for RedactFilter {
    fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        self.carry.extend_from_slice(chunk);
        let (text, carry) = decode(&self.carry);
        self.carry = carry;
        self.redactor.push(&text).into_bytes()
    }

    fn finish(&mut self) -> Vec<u8> {
        let tail = String::from_utf8_lossy(&std::mem::take(&mut self.carry)).into_owned();
        let mut out = self.redactor.push(&tail);
        out.push_str(&self.redactor.finish());
        out.into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::{Redactor, SecretString};

    #[test]
    fn decode_keeps_split_characters_for_the_next_read() {
        let snow = "é".as_bytes();
        let (text, carry) = decode(&[b'a', snow[0]]);
        assert_eq!(text, "a");
        assert_eq!(carry, vec![snow[0]]);
        let (text, carry) = decode(&[b'a', 0xff, b'b']);
        assert_eq!(text, "a\u{FFFD}b");
        assert!(carry.is_empty());
    }

    #[test]
    fn filter_redacts_a_secret_split_byte_by_byte() {
        let secret = SecretString::new("s3cr€t-value-42");
        let redactor = Redactor::new([&secret]);
        let mut filter = RedactFilter::new(redactor.stream());
        let input = "before s3cr€t-value-42 after";
        let mut out = Vec::new();
        for byte in input.as_bytes() {
            out.extend(filter.push(&[*byte]));
        }
        out.extend(filter.finish());
        assert_eq!(String::from_utf8(out).unwrap(), "before [REDACTED] after");
    }
}
