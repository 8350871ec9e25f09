//! [`Runbook`]: the parsed, validated definition of a runbook, from a TOML file or built in code.

use super::steps::{
    ApprovalStep, CommandStep, CustomStep, FlagStep, HttpStep, RawDrain, RawGate, STEP_KINDS,
    SleepStep, StepKind, SubRunbookStep,
};
use super::template::references;
use crate::toml_location::{key_offset, location};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_spanned::Spanned;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The type of a runbook parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamType {
    /// Text.
    String,
    /// A whole number.
    Integer,
    /// A number.
    Number,
    /// `true` or `false`.
    Boolean,
    /// A reference to a secret (an environment variable name); the value is never stored.
    Secret,
}

/// One declared parameter.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParamSpec {
    /// Its name, used as `{{ params.<name> }}`.
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub ty: ParamType,
    /// The default value (never for secrets).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<serde_json::Value>,
    /// What it is for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// For secrets: the environment variable that holds the value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
}

/// What happens when a step fails after its retries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// Stop the run as failed.
    Abort,
    /// Record the failure and go on with the next step.
    Continue,
    /// Run the recorded undo of every completed step, in reverse.
    Compensate,
    /// Jump to the step with this id.
    Goto(String),
}

impl OnFailure {
    fn parse(text: &str) -> std::result::Result<OnFailure, String> {
        match text {
            "abort" => Ok(OnFailure::Abort),
            "continue" => Ok(OnFailure::Continue),
            "compensate" => Ok(OnFailure::Compensate),
            other => match other.strip_prefix("goto:") {
                Some(id) if !id.trim().is_empty() => Ok(OnFailure::Goto(id.trim().to_owned())),
                _ => Err(format!(
                    "`on_failure` is `{other}`: expected one of abort, continue, compensate, goto:<step id>"
                )),
            },
        }
    }
}

/// What to do with a step whose effect may or may not have happened (intent recorded, no
/// result) after a crash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeUnknownPolicy {
    /// Run it again: the step is idempotent (or receives its idempotency key).
    Rerun,
    /// Check this health check first: if it passes, treat the step as done; else run it again.
    ProbeFirst(String),
    /// Stop and wait for an operator to retry or skip it.
    Ask,
}

/// Retries, deadline and failure handling of one step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepPolicy {
    /// The deadline of one attempt.
    #[serde(skip_serializing_if = "Option::is_none", with = "opt_duration_ser")]
    pub timeout: Option<Duration>,
    /// Attempts after the first.
    pub retries: u32,
    /// The first backoff; doubled after each failure, with jitter.
    #[serde(with = "duration_ser")]
    pub backoff: Duration,
    /// The largest backoff.
    #[serde(with = "duration_ser")]
    pub backoff_max: Duration,
    /// What happens after the last failed attempt.
    pub on_failure: OnFailure,
    /// What happens after a crash left the outcome unknown.
    pub outcome_unknown: OutcomeUnknownPolicy,
}

mod duration_ser {
    pub(super) fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }
}

mod opt_duration_ser {
    pub(super) fn serialize<S: serde::Serializer>(
        d: &Option<std::time::Duration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&humantime::format_duration(*d).to_string()),
            None => s.serialize_none(),
        }
    }
}

/// One step of a runbook.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepDef {
    /// Unique within the runbook.
    pub id: String,
    /// A human title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// What it does.
    #[serde(flatten)]
    pub kind: StepKind,
    /// Retries, deadline, failure handling.
    pub policy: StepPolicy,
    /// The undo that compensation runs, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compensate: Option<Box<StepDef>>,
}

/// Flags that must be absent or present before a run starts.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FlagRequirements {
    /// These flags must not be held (e.g. `lockdown`).
    pub absent: Vec<String>,
    /// These flags must be held.
    pub present: Vec<String>,
}

/// A parsed, validated runbook.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Runbook {
    /// Its name.
    pub name: String,
    /// What it is for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Declared parameters.
    pub params: Vec<ParamSpec>,
    /// Flag preconditions.
    pub requires: FlagRequirements,
    /// The steps, in order.
    pub steps: Vec<StepDef>,
    /// What a failure without a step-level policy does (default `abort`).
    pub on_failure: OnFailure,
    /// Steps run when the run is cancelled.
    pub on_cancel: Vec<StepDef>,
    /// Steps run when the run fails (after its steps' failure handling stops it), before it
    /// ends `failed`: `[[on_failure]]` in a file.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failure_path: Vec<StepDef>,
    /// The file it came from.
    #[serde(skip)]
    pub path: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeader {
    name: String,
    description: Option<String>,
    #[serde(default)]
    requires_flags_absent: Vec<String>,
    #[serde(default)]
    requires_flags_present: Vec<String>,
    on_failure: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawParam {
    #[serde(rename = "type", default = "string_type")]
    ty: ParamType,
    default: Option<toml::Value>,
    description: Option<String>,
    env: Option<String>,
}

fn string_type() -> ParamType {
    ParamType::String
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRunbook {
    runbook: RawHeader,
    #[serde(default)]
    params: BTreeMap<String, RawParam>,
    #[serde(default)]
    steps: Vec<Spanned<toml::Table>>,
    #[serde(default)]
    on_cancel: Vec<Spanned<toml::Table>>,
    #[serde(default)]
    on_failure: Vec<Spanned<toml::Table>>,
}

/// Keys every step accepts besides its kind's own.
const COMMON_STEP_KEYS: &[&str] = &[
    "id",
    "kind",
    "title",
    "timeout",
    "retries",
    "backoff",
    "backoff_max",
    "on_failure",
    "outcome_unknown",
    "compensate",
];

/// The `run.*` values templates may use.
pub(crate) const RUN_VARS: &[&str] = &[
    "run.id",
    "run.runbook",
    "run.started_by",
    "run.idempotency_key",
];

impl Runbook {
    /// Reads and validates a runbook file. Errors name the file, line and key.
    pub fn load(path: impl AsRef<Path>) -> Result<Runbook> {
        let path = path.as_ref();
        let text = crate::toml_location::read_text(path, "runbook")?;
        Runbook::parse(&text, Some(path))
    }

    /// Parses and validates runbook text; `file` is used in error messages.
    pub fn parse(text: &str, file: Option<&Path>) -> Result<Runbook> {
        let at = |offset: usize| location(text, file, offset);
        let raw: RawRunbook = toml::from_str(text).map_err(|e: toml::de::Error| {
            let loc = e.span().map(|s| at(s.start)).unwrap_or_else(|| at(0));
            Error::config(e.message().trim().to_owned()).with_location(loc)
        })?;
        let header_offset = text.find("[runbook]").unwrap_or(0);
        let header_error = |key: &str, message: String| {
            Error::config(message).with_location(at(
                key_offset(text, header_offset, key).unwrap_or(header_offset)
            ))
        };
        crate::names::validate_name("runbook name", &raw.runbook.name)
            .map_err(|e| header_error("name", format!("`name`: {}", e.message())))?;
        let on_failure = match raw.runbook.on_failure.as_deref() {
            None => OnFailure::Abort,
            Some(text) => OnFailure::parse(text).map_err(|m| header_error("on_failure", m))?,
        };
        let mut params = Vec::new();
        for (name, p) in raw.params {
            if p.ty == ParamType::Secret && p.default.is_some() {
                let offset = text.find(&format!("[params.{name}]")).unwrap_or(0);
                return Err(Error::config(format!(
                    "`default`: secret parameter `{name}` cannot have a default value; name the environment variable with `env`"
                ))
                .with_location(at(key_offset(text, offset, "default").unwrap_or(offset))));
            }
            let default = p
                .default
                .map(|v| serde_json::to_value(v).unwrap_or(serde_json::Value::Null));
            params.push(ParamSpec {
                name,
                ty: p.ty,
                default,
                description: p.description,
                env: p.env,
            });
        }
        let secrets = secret_references(&params);
        let known: BTreeSet<String> = params
            .iter()
            .map(|p| format!("params.{}", p.name))
            .chain(RUN_VARS.iter().map(|s| (*s).to_owned()))
            .collect();
        let parse_steps = |tables: Vec<Spanned<toml::Table>>| -> Result<Vec<StepDef>> {
            tables
                .into_iter()
                .map(|spanned| {
                    let offset = spanned.span().start;
                    let table = spanned.into_inner();
                    parse_step(table, &known, &secrets).map_err(|message| {
                        let key = message.split('`').nth(1).unwrap_or("kind");
                        let loc = key_offset(text, offset, key)
                            .or_else(|| key_offset(text, offset, "kind"))
                            .unwrap_or(offset);
                        Error::config(message).with_location(at(loc))
                    })
                })
                .collect()
        };
        let steps = parse_steps(raw.steps)?;
        let on_cancel = parse_steps(raw.on_cancel)?;
        let failure_path = parse_steps(raw.on_failure)?;
        let runbook = Runbook {
            name: raw.runbook.name,
            description: raw.runbook.description,
            params,
            requires: FlagRequirements {
                absent: raw.runbook.requires_flags_absent,
                present: raw.runbook.requires_flags_present,
            },
            steps,
            on_failure,
            on_cancel,
            failure_path,
            path: file.map(Path::to_path_buf),
        };
        // What only the whole runbook shows (duplicate ids, jump targets, no steps) is
        // located at its [runbook] header.
        runbook
            .validate()
            .map_err(|e| Error::config(e.message().to_owned()).with_location(at(header_offset)))?;
        Ok(runbook)
    }

    /// Builds a runbook from data shaped like a runbook file (`{"runbook": {"name": ..},
    /// "params": {..}, "steps": [..], "on_cancel": [..]}`), as the Python and Node bindings
    /// receive it, with every check of [`Runbook::parse`]. Errors name the key; `null`
    /// values are refused (leave the key out instead).
    pub fn from_value(value: &serde_json::Value) -> Result<Runbook> {
        fn check_nulls(value: &serde_json::Value, at: &str) -> Result<()> {
            match value {
                serde_json::Value::Null => Err(Error::config(format!(
                    "`{at}` is null: leave the key out instead"
                ))),
                serde_json::Value::Array(items) => items
                    .iter()
                    .enumerate()
                    .try_for_each(|(i, v)| check_nulls(v, &format!("{at}[{i}]"))),
                serde_json::Value::Object(map) => map.iter().try_for_each(|(k, v)| {
                    check_nulls(
                        v,
                        &if at.is_empty() {
                            k.clone()
                        } else {
                            format!("{at}.{k}")
                        },
                    )
                }),
                _ => Ok(()),
            }
        }
        if !value.is_object() {
            return Err(Error::config(
                "a runbook is a table with `runbook`, `params`, `steps`, `on_cancel` and `on_failure` keys",
            ));
        }
        check_nulls(value, "")?;
        let text = toml::to_string(value)
            .map_err(|e| Error::config(format!("the runbook cannot be read as a table: {e}")))?;
        // Positions would point into the generated text, not the caller's data: drop them.
        Runbook::parse(&text, None).map_err(|e| {
            let message = match e.location() {
                Some(at) => e
                    .message()
                    .strip_prefix(&format!("{at}: "))
                    .unwrap_or(e.message()),
                None => e.message(),
            };
            Error::new(e.kind(), message.to_owned())
        })
    }

    /// Checks what parsing cannot: unique step ids, jump targets, at least one step.
    pub fn validate(&self) -> Result<()> {
        crate::names::validate_name("runbook name", &self.name)
            .map_err(|e| Error::config(e.message().to_owned()))?;
        for flag in self.requires.absent.iter().chain(&self.requires.present) {
            crate::names::validate_name("required flag name", flag)
                .map_err(|e| Error::config(e.message().to_owned()))?;
        }
        if self.steps.is_empty() {
            return Err(Error::config(format!(
                "runbook `{}` has no steps: add at least one [[steps]] entry",
                self.name
            )));
        }
        let mut ids = BTreeSet::new();
        for step in self
            .steps
            .iter()
            .chain(&self.on_cancel)
            .chain(&self.failure_path)
        {
            crate::names::validate_name("step id", &step.id)
                .map_err(|e| Error::config(e.message().to_owned()))?;
            if !ids.insert(step.id.as_str()) {
                return Err(Error::config(format!(
                    "two steps have the id `{}`: step ids must be unique",
                    step.id
                )));
            }
        }
        let secrets = secret_references(&self.params);
        for step in self
            .steps
            .iter()
            .chain(&self.on_cancel)
            .chain(&self.failure_path)
            .flat_map(|s| std::iter::once(s).chain(s.compensate.as_deref()))
        {
            if let StepKind::Command(c) = &step.kind {
                if let Some(message) = secret_on_command_line(&step.id, c, &secrets) {
                    return Err(Error::config(message));
                }
            }
        }
        for step in &self.steps {
            if let OnFailure::Goto(target) = &step.policy.on_failure {
                if !self.steps.iter().any(|s| &s.id == target) {
                    return Err(Error::config(format!(
                        "step `{}` jumps to `{target}` on failure, but no step has that id",
                        step.id
                    )));
                }
            }
        }
        Ok(())
    }

    /// The SHA-256 of the definition's canonical JSON. A run pins it; resuming a run whose
    /// runbook changed is refused without an explicit override.
    pub fn definition_hash(&self) -> String {
        let json = serde_json::to_vec(self).expect("a runbook always serializes");
        hex::encode(Sha256::digest(json))
    }

    /// The step with this id.
    pub fn step(&self, id: &str) -> Option<&StepDef> {
        self.steps.iter().find(|s| s.id == id)
    }
}

/// The template paths of secret parameters: `params.<name>`.
fn secret_references(params: &[ParamSpec]) -> BTreeSet<String> {
    params
        .iter()
        .filter(|p| p.ty == ParamType::Secret)
        .map(|p| format!("params.{}", p.name))
        .collect()
}

/// The refusal of a command step whose `argv`, `shell` or `cwd` refers to a secret
/// parameter: a command line is visible to every process on the host, so secrets reach a
/// command only through `env`. The message leads with the offending key in backticks.
fn secret_on_command_line(
    id: &str,
    step: &CommandStep,
    secrets: &BTreeSet<String>,
) -> Option<String> {
    let fields = [
        ("argv", step.argv.clone().unwrap_or_default()),
        ("shell", step.shell.iter().cloned().collect()),
        ("cwd", step.cwd.iter().cloned().collect()),
    ];
    fields.into_iter().find_map(|(key, texts)| {
        texts.iter().find_map(|text| {
            references(text)
                .into_iter()
                .find(|r| secrets.contains(r))
                .map(|secret| {
                    format!(
                        "`{key}` of step `{id}` refers to the secret `{{{{ {secret} }}}}`: a command line is visible to every process on the host; pass it through `env` instead (env = {{ NAME = \"{{{{ {secret} }}}}\" }})"
                    )
                })
        })
    })
}

fn get_str(table: &toml::Table, key: &str) -> std::result::Result<Option<String>, String> {
    match table.get(key) {
        None => Ok(None),
        Some(toml::Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("`{key}` must be a string")),
    }
}

fn get_duration(table: &toml::Table, key: &str) -> std::result::Result<Option<Duration>, String> {
    get_str(table, key)?
        .map(|text| {
            humantime::parse_duration(&text).map_err(|e| {
                format!("`{key}` is `{text}`, not a duration ({e}): write e.g. \"30s\" or \"5m\"")
            })
        })
        .transpose()
}

fn collect_strings(value: &toml::Value, out: &mut Vec<String>) {
    match value {
        toml::Value::String(s) => out.push(s.clone()),
        toml::Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
        toml::Value::Table(t) => t.values().for_each(|v| collect_strings(v, out)),
        _ => {}
    }
}

/// Kinds whose rerun after a crash is harmless (they wait, or find what their previous
/// execution did), so their `outcome_unknown` defaults to `rerun`; others default to `ask`.
pub(crate) fn rerun_by_default(kind: &str) -> bool {
    matches!(
        kind,
        "gate" | "sleep" | "drain" | "flag" | "approval" | "runbook"
    )
}

fn parse_step(
    table: toml::Table,
    known: &BTreeSet<String>,
    secrets: &BTreeSet<String>,
) -> std::result::Result<StepDef, String> {
    let id = get_str(&table, "id")?.ok_or("`id` is missing: every step needs a unique `id`")?;
    crate::names::validate_name("step id", &id).map_err(|e| format!("`id`: {}", e.message()))?;
    let kind_name = get_str(&table, "kind")?.ok_or_else(|| {
        format!(
            "`kind` is missing in step `{id}`: expected one of {}",
            STEP_KINDS.join(", ")
        )
    })?;
    // Templates may only refer to declared parameters and run values.
    for (key, value) in &table {
        let mut strings = Vec::new();
        collect_strings(value, &mut strings);
        for s in strings {
            for reference in references(&s) {
                if !known.contains(&reference) {
                    return Err(format!(
                        "`{key}` refers to `{{{{ {reference} }}}}`, which is not defined: declare it under [params] \
                         or use one of {}",
                        known.iter().cloned().collect::<Vec<_>>().join(", ")
                    ));
                }
            }
        }
    }
    let retries = match table.get("retries") {
        None => 0,
        Some(toml::Value::Integer(n)) if *n >= 0 => *n as u32,
        Some(_) => return Err("`retries` must be a non-negative integer".into()),
    };
    let on_failure = match get_str(&table, "on_failure")? {
        None => OnFailure::Abort,
        Some(text) => OnFailure::parse(&text)?,
    };
    let idempotent_kind = rerun_by_default(&kind_name);
    let outcome_unknown = match get_str(&table, "outcome_unknown")?.as_deref() {
        None if idempotent_kind => OutcomeUnknownPolicy::Rerun,
        None | Some("ask") => OutcomeUnknownPolicy::Ask,
        Some("rerun") => OutcomeUnknownPolicy::Rerun,
        Some(other) => match other.strip_prefix("probe_first:") {
            Some(check) if !check.trim().is_empty() => {
                OutcomeUnknownPolicy::ProbeFirst(check.trim().to_owned())
            }
            _ => {
                return Err(format!(
                    "`outcome_unknown` is `{other}`: expected one of rerun, ask, probe_first:<health check name>"
                ));
            }
        },
    };
    let policy = StepPolicy {
        timeout: get_duration(&table, "timeout")?,
        retries,
        backoff: get_duration(&table, "backoff")?.unwrap_or(Duration::from_secs(1)),
        backoff_max: get_duration(&table, "backoff_max")?.unwrap_or(Duration::from_secs(60)),
        on_failure,
        outcome_unknown,
    };
    let compensate = match table.get("compensate") {
        None => None,
        Some(toml::Value::Table(undo)) => {
            let mut undo = undo.clone();
            undo.insert("id".into(), toml::Value::String(format!("{id}.undo")));
            Some(Box::new(
                parse_step(undo, known, secrets)
                    .map_err(|m| format!("`compensate` of step `{id}`: {m}"))?,
            ))
        }
        Some(_) => {
            return Err(format!(
                "`compensate` of step `{id}` must be a table such as {{ kind = \"command\", argv = [...] }}"
            ));
        }
    };
    let title = get_str(&table, "title")?;
    // Gates and drains wait until their condition holds or the step's `timeout` passes.
    let waits = matches!(kind_name.as_str(), "gate" | "drain");
    let params: toml::Table = table
        .into_iter()
        .filter(|(k, _)| !COMMON_STEP_KEYS.contains(&k.as_str()) || (waits && k == "timeout"))
        .collect();
    let kind = parse_kind(&kind_name, params)?;
    if let StepKind::Command(c) = &kind {
        if c.argv.is_some() == c.shell.is_some() {
            return Err(format!(
                "`argv` or `shell`: command step `{id}` needs exactly one of them"
            ));
        }
        if let Some(message) = secret_on_command_line(&id, c, secrets) {
            return Err(message);
        }
    }
    // A templated flag name is checked once rendered, when the run sets it.
    if let StepKind::Flag(f) = &kind {
        if references(&f.flag).is_empty() {
            crate::names::validate_name("flag name", &f.flag)
                .map_err(|e| format!("`flag`: {}", e.message()))?;
        }
    }
    Ok(StepDef {
        id,
        title,
        kind,
        policy,
        compensate,
    })
}

fn parse_kind(kind: &str, params: toml::Table) -> std::result::Result<StepKind, String> {
    fn typed<T: serde::de::DeserializeOwned>(
        kind: &str,
        params: toml::Table,
    ) -> std::result::Result<T, String> {
        serde_path_to_error::deserialize(toml::Value::Table(params)).map_err(|e| {
            let path = e.path().to_string();
            let message = e.into_inner().message().trim().to_owned();
            if path.is_empty() || path == "." {
                format!("{message} (in a `{kind}` step)")
            } else {
                format!("`{path}`: {message} (in a `{kind}` step)")
            }
        })
    }
    Ok(match kind {
        "command" => StepKind::Command(typed::<CommandStep>(kind, params)?),
        "http" => StepKind::Http(typed::<HttpStep>(kind, params)?),
        "gate" => StepKind::Gate(typed::<RawGate>(kind, params)?.into_step()?),
        "approval" => StepKind::Approval(typed::<ApprovalStep>(kind, params)?),
        "flag" => StepKind::Flag(typed::<FlagStep>(kind, params)?),
        "drain" => StepKind::Drain(typed::<RawDrain>(kind, params)?.into_step()?),
        "sleep" => StepKind::Sleep(typed::<SleepStep>(kind, params)?),
        "runbook" => StepKind::Runbook(typed::<SubRunbookStep>(kind, params)?),
        "custom" => StepKind::Custom(typed::<CustomStep>(kind, params)?),
        other => {
            return Err(format!(
                "`kind` is `{other}`, an unknown step kind: expected one of {}",
                STEP_KINDS.join(", ")
            ));
        }
    })
}
