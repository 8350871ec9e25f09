//! Runbooks built in code: the same [`Runbook`] a TOML file gives, checked the same way.

use super::definition::{
    FlagRequirements, OnFailure, OutcomeUnknownPolicy, ParamSpec, ParamType, RUN_VARS, Runbook,
    StepDef, StepPolicy, rerun_by_default,
};
use super::steps::StepKind;
use super::template::references;
use crate::{Error, Result};
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Duration;

impl StepDef {
    /// A step with the defaults of a file: no timeout, no retries, 1 s backoff doubling up to
    /// 60 s, `on_failure = abort`, and `outcome_unknown` = `rerun` for kinds that may safely
    /// run again (gate, sleep, drain, flag, approval, runbook) and `ask` for the others.
    pub fn new(id: impl Into<String>, kind: StepKind) -> StepDef {
        let outcome_unknown = if rerun_by_default(kind.name()) {
            OutcomeUnknownPolicy::Rerun
        } else {
            OutcomeUnknownPolicy::Ask
        };
        StepDef {
            id: id.into(),
            title: None,
            kind,
            policy: StepPolicy {
                timeout: None,
                retries: 0,
                backoff: Duration::from_secs(1),
                backoff_max: Duration::from_secs(60),
                on_failure: OnFailure::Abort,
                outcome_unknown,
            },
            compensate: None,
        }
    }

    /// Sets the title.
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    /// Sets the deadline of one attempt.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.policy.timeout = Some(timeout);
        self
    }

    /// Sets the retries after the first attempt, and the first backoff.
    pub fn retries(mut self, retries: u32, backoff: Duration) -> Self {
        self.policy.retries = retries;
        self.policy.backoff = backoff;
        self
    }

    /// Sets what happens after the last failed attempt.
    pub fn on_failure(mut self, on_failure: OnFailure) -> Self {
        self.policy.on_failure = on_failure;
        self
    }

    /// Sets what happens after a crash left the outcome unknown.
    pub fn outcome_unknown(mut self, policy: OutcomeUnknownPolicy) -> Self {
        self.policy.outcome_unknown = policy;
        self
    }

    /// Sets the undo that compensation runs; its id becomes `<id>.undo`.
    pub fn compensate(mut self, undo: StepKind) -> Self {
        self.compensate = Some(Box::new(StepDef::new(format!("{}.undo", self.id), undo)));
        self
    }
}

/// Builds a [`Runbook`] in code. [`RunbookBuilder::build`] applies the checks of
/// [`Runbook::parse`]: unique step ids, jump targets, and templates that refer only to
/// declared parameters and run values.
///
/// ```
/// use runward::runbook::{CommandStep, OnFailure, ParamType, Runbook, StepDef, StepKind};
///
/// let restart: CommandStep = toml::from_str(r#"argv = ["systemctl", "restart", "{{ params.unit }}"]"#).unwrap();
/// let runbook = Runbook::builder("restart")
///     .param("unit", ParamType::String, Some("api".into()))
///     .requires_absent("lockdown")
///     .step(StepDef::new("restart", StepKind::Command(restart)).on_failure(OnFailure::Compensate))
///     .build()
///     .unwrap();
/// assert_eq!(runbook.steps.len(), 1);
/// ```
#[derive(Debug, Clone)]
pub struct RunbookBuilder {
    runbook: Runbook,
}

impl Runbook {
    /// Starts a runbook named `name` with no parameters and no steps.
    pub fn builder(name: impl Into<String>) -> RunbookBuilder {
        RunbookBuilder {
            runbook: Runbook {
                name: name.into(),
                description: None,
                params: Vec::new(),
                requires: FlagRequirements::default(),
                steps: Vec::new(),
                on_failure: OnFailure::Abort,
                on_cancel: Vec::new(),
                failure_path: Vec::new(),
                path: None,
            },
        }
    }
}

impl RunbookBuilder {
    /// Sets the description.
    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.runbook.description = Some(text.into());
        self
    }

    /// Declares a parameter with an optional default (secrets take none: use
    /// [`RunbookBuilder::secret`]).
    pub fn param(mut self, name: impl Into<String>, ty: ParamType, default: Option<Value>) -> Self {
        self.runbook.params.push(ParamSpec {
            name: name.into(),
            ty,
            default,
            description: None,
            env: None,
        });
        self
    }

    /// Declares a secret parameter read from environment variable `env` when the run goes.
    pub fn secret(mut self, name: impl Into<String>, env: impl Into<String>) -> Self {
        self.runbook.params.push(ParamSpec {
            name: name.into(),
            ty: ParamType::Secret,
            default: None,
            description: None,
            env: Some(env.into()),
        });
        self
    }

    /// Requires flag `name` to be absent when a run starts.
    pub fn requires_absent(mut self, name: impl Into<String>) -> Self {
        self.runbook.requires.absent.push(name.into());
        self
    }

    /// Requires flag `name` to be held when a run starts.
    pub fn requires_present(mut self, name: impl Into<String>) -> Self {
        self.runbook.requires.present.push(name.into());
        self
    }

    /// Appends a step.
    pub fn step(mut self, step: StepDef) -> Self {
        self.runbook.steps.push(step);
        self
    }

    /// Appends a step of the cancel path.
    pub fn on_cancel(mut self, step: StepDef) -> Self {
        self.runbook.on_cancel.push(step);
        self
    }

    /// Appends a step of the failure path, run when the run fails before it ends `failed`.
    pub fn on_failure_step(mut self, step: StepDef) -> Self {
        self.runbook.failure_path.push(step);
        self
    }

    /// Sets what a failure does when its step says `abort`.
    pub fn on_failure(mut self, on_failure: OnFailure) -> Self {
        self.runbook.on_failure = on_failure;
        self
    }

    /// The checked runbook.
    pub fn build(self) -> Result<Runbook> {
        let runbook = self.runbook;
        let mut names = BTreeSet::new();
        for p in &runbook.params {
            if !names.insert(p.name.as_str()) {
                return Err(Error::config(format!(
                    "parameter `{}` is declared twice",
                    p.name
                )));
            }
            if p.ty == ParamType::Secret && p.default.is_some() {
                return Err(Error::config(format!(
                    "secret parameter `{}` cannot have a default value; name its environment variable",
                    p.name
                )));
            }
        }
        let known: BTreeSet<String> = runbook
            .params
            .iter()
            .map(|p| format!("params.{}", p.name))
            .chain(RUN_VARS.iter().map(|s| (*s).to_owned()))
            .collect();
        let steps = runbook
            .steps
            .iter()
            .chain(&runbook.on_cancel)
            .chain(&runbook.failure_path);
        for step in steps.flat_map(|s| std::iter::once(s).chain(s.compensate.as_deref())) {
            let json = serde_json::to_value(&step.kind).unwrap_or(Value::Null);
            let mut strings = Vec::new();
            collect(&json, &mut strings);
            for text in strings {
                if let Some(missing) = references(&text).into_iter().find(|r| !known.contains(r)) {
                    return Err(Error::config(format!(
                        "step `{}` refers to `{{{{ {missing} }}}}`, which is not defined: declare the parameter or use one of {}",
                        step.id,
                        known.iter().cloned().collect::<Vec<_>>().join(", ")
                    )));
                }
            }
        }
        runbook.validate()?;
        Ok(runbook)
    }
}

fn collect(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| collect(v, out)),
        Value::Object(map) => map.values().for_each(|v| collect(v, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runbook::{SleepStep, plan};

    fn sleep() -> StepKind {
        StepKind::Sleep(SleepStep {
            duration: Duration::from_millis(1),
        })
    }

    #[test]
    fn a_built_runbook_equals_the_parsed_one() {
        let parsed = Runbook::parse(
            "[runbook]\nname = \"nap\"\nrequires_flags_absent = [\"lockdown\"]\n[params.who]\ntype = \"string\"\ndefault = \"ops\"\n[[steps]]\nid = \"nap\"\nkind = \"sleep\"\nduration = \"1ms\"\nretries = 2\nbackoff = \"5s\"\n",
            None,
        )
        .unwrap();
        let built = Runbook::builder("nap")
            .param("who", ParamType::String, Some("ops".into()))
            .requires_absent("lockdown")
            .step(StepDef::new("nap", sleep()).retries(2, Duration::from_secs(5)))
            .build()
            .unwrap();
        assert_eq!(built, parsed);
        assert_eq!(built.definition_hash(), parsed.definition_hash());
        assert!(plan(&built, &Default::default()).is_ok());
    }

    #[test]
    fn build_refuses_a_secret_on_a_command_line() {
        let command = |argv: &[&str]| {
            StepKind::Command(crate::runbook::CommandStep {
                argv: Some(argv.iter().map(|a| (*a).to_owned()).collect()),
                shell: None,
                env: Default::default(),
                cwd: None,
                success_codes: vec![0],
                max_output_bytes: 1024,
            })
        };
        let err = Runbook::builder("rotate")
            .secret("token", "WEBHOOK_TOKEN")
            .step(
                StepDef::new("apply", command(&["true"]))
                    .compensate(command(&["revoke", "{{ params.token }}"])),
            )
            .build()
            .unwrap_err();
        assert!(
            err.message().contains("`argv` of step `apply.undo`"),
            "{err}"
        );
    }

    #[test]
    fn build_refuses_what_parse_refuses() {
        let dup = Runbook::builder("x")
            .step(StepDef::new("a", sleep()))
            .step(StepDef::new("a", sleep()))
            .build()
            .unwrap_err();
        assert!(dup.message().contains("unique"), "{}", dup.message());
        let http: crate::runbook::HttpStep =
            toml::from_str("url = \"{{ params.nope }}/restart\"").unwrap();
        let missing = Runbook::builder("x")
            .step(StepDef::new("call", StepKind::Http(http)))
            .build()
            .unwrap_err();
        assert!(
            missing.message().contains("params.nope"),
            "{}",
            missing.message()
        );
        let empty = Runbook::builder("x").build().unwrap_err();
        assert!(empty.message().contains("no steps"));
        let jump = Runbook::builder("x")
            .step(StepDef::new("a", sleep()).on_failure(OnFailure::Goto("zz".into())))
            .build()
            .unwrap_err();
        assert!(jump.message().contains("zz"));
    }
}

#[cfg(test)]
mod from_value_tests {
    use crate::runbook::Runbook;
    use serde_json::json;

    #[test]
    fn data_shaped_like_a_file_gives_the_same_runbook() {
        let parsed = Runbook::parse(
            "[runbook]\nname = \"nap\"\n[params.who]\ndefault = \"ops\"\n[[steps]]\nid = \"nap\"\nkind = \"sleep\"\nduration = \"1ms\"\ncompensate = { kind = \"sleep\", duration = \"2ms\" }\n",
            None,
        )
        .unwrap();
        let from_data = Runbook::from_value(&json!({
            "runbook": {"name": "nap"},
            "params": {"who": {"default": "ops"}},
            "steps": [{"id": "nap", "kind": "sleep", "duration": "1ms",
                       "compensate": {"kind": "sleep", "duration": "2ms"}}],
        }))
        .unwrap();
        assert_eq!(from_data.definition_hash(), parsed.definition_hash());
    }

    #[test]
    fn bad_data_names_the_key() {
        let unknown = Runbook::from_value(&json!({
            "runbook": {"name": "x"},
            "steps": [{"id": "a", "kind": "teleport"}],
        }))
        .unwrap_err();
        assert!(
            unknown.message().contains("teleport"),
            "{}",
            unknown.message()
        );
        assert!(
            unknown.location().is_none(),
            "no position in generated text"
        );
        assert!(!unknown.to_string().contains("line "), "{unknown}");
        let typed = Runbook::from_value(&json!({
            "runbook": {"name": "x"},
            "steps": [{"id": "a", "kind": "sleep", "duration": 5}],
        }))
        .unwrap_err();
        assert!(
            typed.message().starts_with("`duration`"),
            "{}",
            typed.message()
        );
        let null = Runbook::from_value(&json!({"runbook": {"name": "x", "description": null}}))
            .unwrap_err();
        assert!(
            null.message().contains("runbook.description"),
            "{}",
            null.message()
        );
        assert!(Runbook::from_value(&json!([1])).is_err());
    }
}
