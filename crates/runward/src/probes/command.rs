//! `command`: run a program and check its exit code.
//!
//! The child runs in its own process group with no input; its output is captured up to a
//! cap (the tail is kept) and shown on failure. At the deadline the whole group is killed.

use super::BuildContext;
use super::config_check::expand_env;
use super::tcp::{elapsed_ms, soft_deadline};
use crate::health::{CheckContext, OutageClass, Outcome, Probe};
use crate::process::{self, Ended};
use crate::{Error, Result};
use async_trait::async_trait;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

/// Output kept per stream when the check does not say.
pub const DEFAULT_MAX_OUTPUT: usize = 4096;

/// The parameters of a `command` check: either `argv` or `shell`.
///
/// ```toml
/// [[checks]]
/// name = "migrations-current"
/// kind = "command"
/// argv = ["./manage.py", "migrate", "--check"]
/// cwd = "app"
/// env = { DJANGO_SETTINGS_MODULE = "app.settings", DB_PASSWORD = "${DB_PASSWORD}" }
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The program and its arguments, run without a shell.
    #[serde(default)]
    pub argv: Option<Vec<String>>,
    /// A command line run with `sh -c`.
    #[serde(default)]
    pub shell: Option<String>,
    /// The working directory; relative to the configuration file. Defaults to the
    /// configuration file's directory.
    #[serde(default)]
    pub cwd: Option<PathBuf>,
    /// Extra environment variables; values may reference `${ENV_NAME}`.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The exit code that means healthy (default 0).
    #[serde(default)]
    pub exit_code: i32,
    /// Bytes of output kept per stream, from the end (default 4096).
    #[serde(default = "default_max_output")]
    pub max_output_bytes: usize,
}

fn default_max_output() -> usize {
    DEFAULT_MAX_OUTPUT
}

/// Runs a command; passes when it exits with the expected code. Observes its run time as
/// `responseTime`.
#[derive(Debug, Clone)]
pub struct CommandProbe {
    program: String,
    args: Vec<String>,
    cwd: Option<PathBuf>,
    env: BTreeMap<String, String>,
    exit_code: i32,
    max_output: usize,
}

impl CommandProbe {
    /// A probe running `argv` (program first) without a shell.
    pub fn new<S: Into<String>>(argv: impl IntoIterator<Item = S>) -> Result<Self> {
        let mut argv = argv.into_iter().map(Into::into);
        let program = argv
            .next()
            .filter(|p| !p.is_empty())
            .ok_or_else(|| Error::config("`argv` is empty"))?;
        Ok(CommandProbe {
            program,
            args: argv.collect(),
            cwd: None,
            env: BTreeMap::new(),
            exit_code: 0,
            max_output: DEFAULT_MAX_OUTPUT,
        })
    }

    /// A probe running `line` with `sh -c`.
    pub fn shell(line: impl Into<String>) -> Self {
        CommandProbe::new(["sh".to_owned(), "-c".to_owned(), line.into()])
            .expect("argv is not empty")
    }

    /// Runs in `dir`.
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// Sets an environment variable; the value may reference `${ENV_NAME}`.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(key.into(), value.into());
        self
    }

    /// The exit code that means healthy.
    pub fn exit_code(mut self, code: i32) -> Self {
        self.exit_code = code;
        self
    }

    /// Bytes of output kept per stream.
    pub fn max_output_bytes(mut self, bytes: usize) -> Self {
        self.max_output = bytes;
        self
    }

    /// Builds the probe from a check table.
    pub fn from_params(params: Params, ctx: &BuildContext) -> Result<Self> {
        let probe = match (params.argv, params.shell) {
            (Some(_), Some(_)) => {
                return Err(Error::config("`argv` and `shell` are both set: keep one"));
            }
            (None, None) => {
                return Err(Error::config(
                    "`argv` (a list) or `shell` (a string) is required",
                ));
            }
            (Some(argv), None) => CommandProbe::new(argv)?,
            (None, Some(line)) => {
                if line.trim().is_empty() {
                    return Err(Error::config("`shell` is empty"));
                }
                CommandProbe::shell(line)
            }
        };
        let cwd = params
            .cwd
            .map(|d| ctx.resolve(&d))
            .unwrap_or_else(|| ctx.base_dir.clone());
        let mut probe = probe
            .cwd(cwd)
            .exit_code(params.exit_code)
            .max_output_bytes(params.max_output_bytes);
        probe.env = params.env;
        Ok(probe)
    }

    fn shown(&self) -> String {
        if self.program == "sh" && self.args.first().is_some_and(|a| a == "-c") {
            "the shell command".to_owned()
        } else {
            format!("`{}`", self.program)
        }
    }
}

/// The last lines of the captured output, preferring stderr.
fn tail(stdout: &[u8], stderr: &[u8]) -> String {
    let pick = if String::from_utf8_lossy(stderr).trim().is_empty() {
        stdout
    } else {
        stderr
    };
    let text = String::from_utf8_lossy(pick);
    let text = text.trim();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(8);
    let joined = lines[start..].join(" | ");
    let chars: Vec<char> = joined.chars().collect();
    if chars.len() > 300 {
        format!(
            "...{}",
            chars[chars.len() - 300..].iter().collect::<String>()
        )
    } else {
        joined
    }
}

#[async_trait]
impl Probe for CommandProbe {
    async fn check(&self, ctx: &CheckContext) -> Outcome {
        let mut cmd = process::command(&self.program, &self.args);
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
        for (key, value) in &self.env {
            match expand_env(value) {
                Ok(value) => cmd.env(key, value),
                Err(why) => {
                    return Outcome::outage(
                        OutageClass::Misconfigured,
                        format!("`env.{key}` references {why}"),
                    );
                }
            };
        }
        let started = Instant::now();
        let child = match cmd.spawn() {
            Ok(child) => child,
            Err(err) => {
                let where_ = self
                    .cwd
                    .as_ref()
                    .map(|d| format!(" in {}", d.display()))
                    .unwrap_or_default();
                return Outcome::outage(
                    OutageClass::Misconfigured,
                    format!("cannot start {}{where_}: {err}", self.shown()),
                )
                .with_remediation("check the command's path, its permissions and `cwd`");
            }
        };
        let cap = self.max_output;
        let deadline = soft_deadline(ctx);
        let finished = process::wait(
            child,
            deadline,
            std::future::pending(),
            |out| tokio::spawn(process::capture(out, cap)),
            |err| tokio::spawn(process::capture(err, cap)),
        )
        .await;
        let status = match finished.ended {
            Ended::Exited(status) => status,
            Ended::WaitFailed(err) => {
                return Outcome::fail(format!("waiting for {} failed: {err}", self.shown()));
            }
            Ended::Deadline | Ended::Stopped => {
                return Outcome::outage(
                    OutageClass::Timeout,
                    format!(
                        "{} was still running at the deadline and was killed",
                        self.shown()
                    ),
                )
                .with_observed("responseTime", elapsed_ms(started), Some("ms"));
            }
        };
        let elapsed = elapsed_ms(started);
        let (out, out_cut) = finished.stdout.unwrap_or((Vec::new(), true));
        let (err, err_cut) = finished.stderr.unwrap_or((Vec::new(), true));
        let code = status.code();
        let outcome = if code == Some(self.exit_code) {
            Outcome::pass()
        } else {
            let how = match code {
                Some(code) => format!("exited with code {code} (expected {})", self.exit_code),
                None => {
                    let signal = process::signal_of(&status);
                    format!(
                        "was killed by signal {}",
                        signal.map(|s| s.to_string()).unwrap_or_else(|| "?".into())
                    )
                }
            };
            let output = tail(&out, &err);
            let text = if output.is_empty() {
                format!("{} {how}", self.shown())
            } else {
                format!("{} {how}: {output}", self.shown())
            };
            Outcome::fail(text)
        };
        let mut outcome = outcome.with_observed("responseTime", elapsed, Some("ms"));
        if let Some(code) = code {
            outcome = outcome.with_detail("exitCode", code);
        }
        if out_cut || err_cut {
            outcome = outcome.with_detail("outputTruncated", true);
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::Status;
    use std::time::Duration;

    fn ctx(ms: u64) -> CheckContext {
        CheckContext::new("cmd", Duration::from_millis(ms))
    }

    #[tokio::test]
    async fn exit_zero_passes() {
        let outcome = CommandProbe::new(["true"]).unwrap().check(&ctx(2000)).await;
        assert_eq!(outcome.status, Status::Pass, "{outcome:?}");
        assert_eq!(outcome.details["exitCode"], 0);
    }

    #[tokio::test]
    async fn wrong_exit_code_fails_with_the_output_tail() {
        let probe = CommandProbe::shell("echo starting; echo 'db unreachable' >&2; exit 3");
        let outcome = probe.check(&ctx(2000)).await;
        assert_eq!(outcome.status, Status::Fail);
        let text = outcome.output.unwrap();
        assert!(text.contains("exited with code 3 (expected 0)"), "{text}");
        assert!(text.contains("db unreachable"), "{text}");
        let expected = CommandProbe::shell("exit 3")
            .exit_code(3)
            .check(&ctx(2000))
            .await;
        assert_eq!(expected.status, Status::Pass);
    }

    #[tokio::test]
    async fn output_is_capped_from_the_tail() {
        let (kept, cut) = process::capture(&b"0123456789"[..], 4).await;
        assert_eq!(kept, b"6789");
        assert!(cut);
        let probe = CommandProbe::shell("yes line | head -c 200000; echo LAST >&2; exit 1")
            .max_output_bytes(64);
        let outcome = probe.check(&ctx(5000)).await;
        assert!(outcome.output.unwrap().ends_with("LAST"));
        assert_eq!(outcome.details["outputTruncated"], true);
    }

    #[tokio::test]
    async fn overrun_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("survived");
        let line = format!("(sleep 1; touch {}) & sleep 5", marker.display());
        let started = Instant::now();
        let outcome = CommandProbe::shell(line).check(&ctx(300)).await;
        assert!(
            started.elapsed() < Duration::from_millis(900),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(outcome.outage, Some(OutageClass::Timeout), "{outcome:?}");
        tokio::time::sleep(Duration::from_millis(1300)).await;
        assert!(
            !marker.exists(),
            "the background child outlived the deadline"
        );
    }

    #[tokio::test]
    async fn env_values_expand_and_missing_programs_are_misconfigured() {
        let probe =
            CommandProbe::shell("test \"$GREETING\" = \"hi $HOME\"").env("GREETING", "hi ${HOME}");
        assert_eq!(probe.check(&ctx(2000)).await.status, Status::Pass);
        let missing = CommandProbe::new(["/no/such/program-runward"])
            .unwrap()
            .check(&ctx(2000))
            .await;
        assert_eq!(missing.outage, Some(OutageClass::Misconfigured));
        let unset = CommandProbe::new(["true"])
            .unwrap()
            .env("X", "${RUNWARD_UNSET_FOR_TEST_9}")
            .check(&ctx(2000))
            .await;
        assert!(unset.output.unwrap().contains("RUNWARD_UNSET_FOR_TEST_9"));
    }

    #[test]
    fn params_need_argv_or_shell() {
        let ctx = BuildContext {
            base_dir: "/tmp".into(),
            outbound: Default::default(),
        };
        let none: Params = toml::from_str("exit_code = 1").unwrap();
        assert!(CommandProbe::from_params(none, &ctx).is_err());
        let both: Params = toml::from_str("argv = [\"a\"]\nshell = \"b\"").unwrap();
        assert!(CommandProbe::from_params(both, &ctx).is_err());
        let ok: Params = toml::from_str("argv = [\"ls\", \"-l\"]").unwrap();
        let probe = CommandProbe::from_params(ok, &ctx).unwrap();
        assert_eq!(probe.cwd.as_deref(), Some(std::path::Path::new("/tmp")));
    }
}
