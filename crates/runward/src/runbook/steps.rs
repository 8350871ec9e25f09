//! The built-in step kinds and their parameters.

use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// The step kinds a runbook file accepts, in the order errors list them.
pub const STEP_KINDS: &[&str] = &[
    "command", "http", "gate", "approval", "flag", "drain", "sleep", "runbook", "custom",
];

/// Parses `"30s"`, `"500ms"`, `"10m"`, `"1h 30m"`.
pub(crate) fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text).map_err(|e| {
        serde::de::Error::custom(format!(
            "`{text}` is not a duration ({e}): write e.g. \"30s\", \"500ms\", \"10m\""
        ))
    })
}

pub(crate) fn opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d).map(Some)
}

fn ser_duration<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&humantime::format_duration(*d).to_string())
}

fn ser_opt_duration<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => ser_duration(d, s),
        None => s.serialize_none(),
    }
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StepKind {
    /// Runs a program.
    Command(CommandStep),
    /// Sends an HTTP request.
    Http(HttpStep),
    /// Waits until a condition holds.
    Gate(GateStep),
    /// Waits for people to approve.
    Approval(ApprovalStep),
    /// Sets or clears a flag.
    Flag(FlagStep),
    /// Waits until in-flight work reaches a level.
    Drain(DrainStep),
    /// Waits a fixed time.
    Sleep(SleepStep),
    /// Runs another runbook.
    Runbook(SubRunbookStep),
    /// A step implemented by the host application (Rust, Python or JS).
    Custom(CustomStep),
}

impl StepKind {
    /// The kind's name as written in files.
    pub fn name(&self) -> &'static str {
        match self {
            StepKind::Command(_) => "command",
            StepKind::Http(_) => "http",
            StepKind::Gate(_) => "gate",
            StepKind::Approval(_) => "approval",
            StepKind::Flag(_) => "flag",
            StepKind::Drain(_) => "drain",
            StepKind::Sleep(_) => "sleep",
            StepKind::Runbook(_) => "runbook",
            StepKind::Custom(_) => "custom",
        }
    }
}

/// `kind = "command"`: a program, with its idempotency key in `RUNWARD_IDEMPOTENCY_KEY`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CommandStep {
    /// The program and its arguments, run without a shell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argv: Option<Vec<String>>,
    /// A command line run with `sh -c`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
    /// Extra environment variables.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// The working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Exit codes that mean success (default `[0]`).
    #[serde(default = "zero", skip_serializing_if = "is_zero_only")]
    pub success_codes: Vec<i32>,
    /// Bytes of output kept per stream (default 64 KiB).
    #[serde(default = "default_output_cap")]
    pub max_output_bytes: usize,
}

fn zero() -> Vec<i32> {
    vec![0]
}
fn is_zero_only(v: &[i32]) -> bool {
    v == [0]
}
fn default_output_cap() -> usize {
    64 * 1024
}

/// `kind = "http"`: one request, with an `Idempotency-Key` header; the outbound policy applies.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpStep {
    /// The URL.
    pub url: String,
    /// The method (default `POST`).
    #[serde(default = "post")]
    pub method: String,
    /// Request headers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// The request body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Statuses that mean success (default: any 2xx).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expect_status: Vec<u16>,
}

fn post() -> String {
    "POST".into()
}

/// What a gate waits on.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GateTarget {
    /// A health check from `runward.toml`, by name.
    Check(String),
    /// A URL that must answer with an expected status.
    Http(String),
    /// A counter the application pushes, compared with `op` and `value`.
    Counter {
        /// The counter's name.
        name: String,
        /// One of `<`, `<=`, `==`, `>=`, `>`.
        op: String,
        /// The value to compare with.
        value: f64,
    },
}

/// `kind = "gate"`: wait until a check passes, a URL answers, or a counter meets a condition.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateStep {
    /// What to wait on.
    pub target: GateTarget,
    /// Time between samples.
    #[serde(serialize_with = "ser_duration")]
    pub interval: Duration,
    /// Give up after this long.
    #[serde(serialize_with = "ser_duration")]
    pub timeout: Duration,
    /// Passing samples in a row needed.
    pub min_successes: u32,
    /// On timeout: `fail` (default), `continue`, or `ask` (wait for an operator).
    pub on_timeout: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGate {
    check: Option<String>,
    http: Option<String>,
    counter: Option<String>,
    op: Option<String>,
    value: Option<f64>,
    #[serde(default, deserialize_with = "opt_duration")]
    interval: Option<Duration>,
    #[serde(default, deserialize_with = "opt_duration")]
    timeout: Option<Duration>,
    min_successes: Option<u32>,
    on_timeout: Option<String>,
}

impl RawGate {
    pub(crate) fn into_step(self) -> Result<GateStep, String> {
        let target = match (self.check, self.http, self.counter) {
            (Some(c), None, None) => GateTarget::Check(c),
            (None, Some(u), None) => GateTarget::Http(u),
            (None, None, Some(name)) => {
                let op = self.op.unwrap_or_else(|| "<=".into());
                if !["<", "<=", "==", ">=", ">"].contains(&op.as_str()) {
                    return Err(format!("`op` is `{op}`: expected one of <, <=, ==, >=, >"));
                }
                let value = self
                    .value
                    .ok_or("`value` is missing: a counter gate compares with `value`")?;
                GateTarget::Counter { name, op, value }
            }
            _ => {
                return Err(
                    "`check`, `http` or `counter`: a gate needs exactly one of them".into(),
                );
            }
        };
        let on_timeout = self.on_timeout.unwrap_or_else(|| "fail".into());
        if !["fail", "continue", "ask"].contains(&on_timeout.as_str()) {
            return Err(format!(
                "`on_timeout` is `{on_timeout}`: expected one of fail, continue, ask"
            ));
        }
        Ok(GateStep {
            target,
            interval: self.interval.unwrap_or(Duration::from_secs(1)),
            timeout: self.timeout.unwrap_or(Duration::from_secs(60)),
            min_successes: self.min_successes.unwrap_or(1).max(1),
            on_timeout,
        })
    }
}

/// `kind = "approval"`: a durable request for approval, bound to the plan digest.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalStep {
    /// Approvals needed (default 1).
    #[serde(default = "one")]
    pub quorum: u32,
    /// Who may approve; empty means anyone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<String>,
    /// Whether the person who started the run may not approve it.
    #[serde(default)]
    pub forbid_starter: bool,
    /// The request expires (turning `timed_out`) after this long.
    #[serde(
        default,
        deserialize_with = "opt_duration",
        serialize_with = "ser_opt_duration"
    )]
    pub expires: Option<Duration>,
    /// What the approvers are asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

fn one() -> u32 {
    1
}

/// Set or clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FlagAction {
    /// Take the flag as a lease owned by the run.
    Set,
    /// Release the flag.
    Clear,
}

/// `kind = "flag"`: set (a TTL'd lease owned by the run) or clear a flag such as `restarting`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FlagStep {
    /// Set or clear.
    pub action: FlagAction,
    /// The flag's name.
    pub flag: String,
    /// The lease's time to live, renewed while the run holds it (default 10m).
    #[serde(
        default,
        deserialize_with = "opt_duration",
        serialize_with = "ser_opt_duration"
    )]
    pub ttl: Option<Duration>,
    /// Why, shown with the flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Where a drain step reads the amount of in-flight work.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DrainSource {
    /// A counter the application pushes.
    Counter(String),
    /// A URL answering JSON, and the pointer to the number in it.
    Http {
        /// The URL.
        url: String,
        /// The JSON pointer to the count.
        pointer: String,
    },
    /// A program printing the count.
    Command(Vec<String>),
}

/// `kind = "drain"`: wait until in-flight work reaches `until` (default 0) or the deadline,
/// recording every sample.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DrainStep {
    /// Where to read the count.
    pub source: DrainSource,
    /// The level to reach.
    pub until: f64,
    /// Time between samples.
    #[serde(serialize_with = "ser_duration")]
    pub interval: Duration,
    /// Give up after this long.
    #[serde(serialize_with = "ser_duration")]
    pub timeout: Duration,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDrain {
    counter: Option<String>,
    url: Option<String>,
    pointer: Option<String>,
    argv: Option<Vec<String>>,
    until: Option<f64>,
    #[serde(default, deserialize_with = "opt_duration")]
    interval: Option<Duration>,
    #[serde(default, deserialize_with = "opt_duration")]
    timeout: Option<Duration>,
}

impl RawDrain {
    pub(crate) fn into_step(self) -> Result<DrainStep, String> {
        let source = match (self.counter, self.url, self.argv) {
            (Some(c), None, None) => DrainSource::Counter(c),
            (None, Some(url), None) => DrainSource::Http {
                url,
                pointer: self.pointer.ok_or(
                    "`pointer` is missing: an http drain reads the count at a JSON pointer",
                )?,
            },
            (None, None, Some(argv)) if !argv.is_empty() => DrainSource::Command(argv),
            _ => return Err("`counter`, `url` or `argv`: a drain needs exactly one source".into()),
        };
        Ok(DrainStep {
            source,
            until: self.until.unwrap_or(0.0),
            interval: self.interval.unwrap_or(Duration::from_secs(1)),
            timeout: self.timeout.unwrap_or(Duration::from_secs(60)),
        })
    }
}

/// `kind = "sleep"`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SleepStep {
    /// How long.
    #[serde(deserialize_with = "duration", serialize_with = "ser_duration")]
    pub duration: Duration,
}

/// `kind = "runbook"`: run another runbook file as a child run.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SubRunbookStep {
    /// The runbook file, relative to this one.
    pub path: String,
    /// Parameters passed to it (templates allowed).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, String>,
}

/// `kind = "custom"`: a step the host application registers under `name`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CustomStep {
    /// The registered step's name.
    pub name: String,
    /// Its parameters.
    #[serde(default, skip_serializing_if = "toml::Table::is_empty")]
    pub params: toml::Table,
}
