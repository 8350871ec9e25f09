//! `counter`: thresholds over a value the application pushes (job queue depth, guardrail
//! counters), read from the registry's [`Values`](crate::health::Values).

use crate::health::{CheckContext, Outcome, Probe, Status};
use crate::{Error, Result};
use async_trait::async_trait;
use serde::Deserialize;

/// What a `counter` check reports while the application has not pushed its value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Missing {
    /// Pass: no value means nothing to worry about.
    Pass,
    /// Warn (the default).
    #[default]
    Warn,
    /// Fail.
    Fail,
}

/// The parameters of a `counter` check.
///
/// ```toml
/// [[checks]]
/// name = "job-queue"
/// kind = "counter"
/// counter = "jobs_pending"
/// warn_above = 100
/// fail_above = 1000
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The name the application pushes the value under (`name` is the check's own name).
    pub counter: String,
    /// Warn when the value is above this.
    #[serde(default)]
    pub warn_above: Option<f64>,
    /// Fail when the value is above this.
    #[serde(default)]
    pub fail_above: Option<f64>,
    /// Warn when the value is below this.
    #[serde(default)]
    pub warn_below: Option<f64>,
    /// Fail when the value is below this.
    #[serde(default)]
    pub fail_below: Option<f64>,
    /// What to report while no value has been pushed: `pass`, `warn` (default) or `fail`.
    #[serde(default)]
    pub missing: Missing,
}

/// Compares a pushed value with thresholds; observes it as `count`.
#[derive(Debug, Clone)]
pub struct CounterProbe {
    counter: String,
    warn_above: Option<f64>,
    fail_above: Option<f64>,
    warn_below: Option<f64>,
    fail_below: Option<f64>,
    missing: Missing,
}

impl CounterProbe {
    /// A probe over the value named `counter`, with no thresholds yet (it then only reports
    /// the value).
    pub fn new(counter: impl Into<String>) -> Self {
        CounterProbe {
            counter: counter.into(),
            warn_above: None,
            fail_above: None,
            warn_below: None,
            fail_below: None,
            missing: Missing::default(),
        }
    }

    /// Warns above `warn`, fails above `fail`.
    pub fn above(mut self, warn: Option<f64>, fail: Option<f64>) -> Self {
        self.warn_above = warn;
        self.fail_above = fail;
        self
    }

    /// Warns below `warn`, fails below `fail`.
    pub fn below(mut self, warn: Option<f64>, fail: Option<f64>) -> Self {
        self.warn_below = warn;
        self.fail_below = fail;
        self
    }

    /// What to report while no value has been pushed.
    pub fn missing(mut self, missing: Missing) -> Self {
        self.missing = missing;
        self
    }

    /// Builds the probe from a check table. Errors when thresholds contradict each other.
    pub fn from_params(params: Params) -> Result<Self> {
        if params.counter.trim().is_empty() {
            return Err(Error::config(
                "`counter` is empty: name the value the application pushes",
            ));
        }
        if let (Some(w), Some(f)) = (params.warn_above, params.fail_above) {
            if w > f {
                return Err(Error::config(format!(
                    "`warn_above` ({w}) is above `fail_above` ({f})"
                )));
            }
        }
        if let (Some(w), Some(f)) = (params.warn_below, params.fail_below) {
            if w < f {
                return Err(Error::config(format!(
                    "`warn_below` ({w}) is below `fail_below` ({f})"
                )));
            }
        }
        Ok(CounterProbe::new(params.counter)
            .above(params.warn_above, params.fail_above)
            .below(params.warn_below, params.fail_below)
            .missing(params.missing))
    }

    fn assess(&self, value: Option<f64>) -> Outcome {
        let name = &self.counter;
        let Some(value) = value else {
            let text = format!("no value for `{name}` has been pushed yet");
            return match self.missing {
                Missing::Pass => Outcome::pass().with_output(text),
                Missing::Warn => Outcome::warn(text),
                Missing::Fail => Outcome::fail(text),
            };
        };
        let shown = if value.fract() == 0.0 && value.abs() < 1e15 {
            format!("{}", value as i64)
        } else {
            value.to_string()
        };
        let verdict = if self.fail_above.is_some_and(|t| value > t) {
            Some((
                Status::Fail,
                format!(
                    "`{name}` is {shown}, above {}",
                    self.fail_above.unwrap_or_default()
                ),
            ))
        } else if self.fail_below.is_some_and(|t| value < t) {
            Some((
                Status::Fail,
                format!(
                    "`{name}` is {shown}, below {}",
                    self.fail_below.unwrap_or_default()
                ),
            ))
        } else if self.warn_above.is_some_and(|t| value > t) {
            Some((
                Status::Warn,
                format!(
                    "`{name}` is {shown}, above {}",
                    self.warn_above.unwrap_or_default()
                ),
            ))
        } else if self.warn_below.is_some_and(|t| value < t) {
            Some((
                Status::Warn,
                format!(
                    "`{name}` is {shown}, below {}",
                    self.warn_below.unwrap_or_default()
                ),
            ))
        } else {
            None
        };
        let outcome = match verdict {
            None => Outcome::pass(),
            Some((Status::Fail, text)) => Outcome::fail(text),
            Some((_, text)) => Outcome::warn(text),
        };
        let number = serde_json::Number::from_f64(value)
            .map(serde_json::Value::Number)
            .unwrap_or_default();
        let number = if value.fract() == 0.0 && value.abs() < 1e15 {
            serde_json::json!(value as i64)
        } else {
            number
        };
        outcome.with_observed("count", number, None)
    }
}

#[async_trait]
impl Probe for CounterProbe {
    async fn check(&self, ctx: &CheckContext) -> Outcome {
        self.assess(ctx.values().get(&self.counter))
    }

    fn is_local(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn probe() -> CounterProbe {
        CounterProbe::new("jobs")
            .above(Some(10.0), Some(100.0))
            .below(Some(2.0), Some(1.0))
    }

    #[test]
    fn thresholds_pick_the_worst_status() {
        let p = probe();
        assert_eq!(p.assess(Some(5.0)).status, Status::Pass);
        assert_eq!(p.assess(Some(11.0)).status, Status::Warn);
        let fail = p.assess(Some(101.0));
        assert_eq!(fail.status, Status::Fail);
        assert_eq!(fail.output.as_deref(), Some("`jobs` is 101, above 100"));
        assert_eq!(fail.observed.unwrap().value, serde_json::json!(101));
        assert_eq!(p.assess(Some(1.5)).status, Status::Warn);
        assert_eq!(p.assess(Some(0.5)).status, Status::Fail);
        assert_eq!(
            p.assess(Some(0.5)).observed.unwrap().value,
            serde_json::json!(0.5)
        );
    }

    #[test]
    fn missing_value_follows_the_setting() {
        assert_eq!(probe().assess(None).status, Status::Warn);
        assert_eq!(
            probe().missing(Missing::Fail).assess(None).status,
            Status::Fail
        );
        assert_eq!(
            probe().missing(Missing::Pass).assess(None).status,
            Status::Pass
        );
    }

    #[test]
    fn params_parse_and_reject_contradictions() {
        let params: Params =
            toml::from_str("counter = \"q\"\nwarn_above = 5\nmissing = \"fail\"").unwrap();
        assert_eq!(params.counter, "q");
        assert_eq!(params.missing, Missing::Fail);
        assert!(CounterProbe::from_params(params).is_ok());
        let bad: Params =
            toml::from_str("counter = \"q\"\nwarn_above = 50\nfail_above = 5").unwrap();
        assert!(
            CounterProbe::from_params(bad)
                .unwrap_err()
                .to_string()
                .contains("warn_above")
        );
    }

    #[tokio::test]
    async fn reads_the_value_the_application_pushed() {
        let ctx = CheckContext::new("jobs", Duration::from_secs(1));
        ctx.values().set("jobs", 150.0);
        let outcome = probe().check(&ctx).await;
        assert_eq!(outcome.status, Status::Fail);
    }
}
