//! `freshness`: a heartbeat file whose modification time must be recent (a worker or a
//! scheduler touches it; a stale file means it stopped).

use super::BuildContext;
use crate::health::{CheckContext, Outcome, Probe};
use crate::{Error, Result};
use async_trait::async_trait;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

/// The parameters of a `freshness` check.
///
/// ```toml
/// [[checks]]
/// name = "worker-heartbeat"
/// kind = "freshness"
/// path = "run/worker.heartbeat"
/// max_file_age_ms = 60000
/// warn_age_ms = 30000
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The heartbeat file; relative to the configuration file.
    pub path: PathBuf,
    /// Fail when the file was last modified longer ago than this (`max_age_ms` is the
    /// check's own result age, so this key differs).
    pub max_file_age_ms: u64,
    /// Warn when the file was last modified longer ago than this.
    #[serde(default)]
    pub warn_age_ms: Option<u64>,
}

/// Checks a heartbeat file's age; observes it as `age` in seconds.
#[derive(Debug, Clone)]
pub struct FreshnessProbe {
    path: PathBuf,
    max_age: Duration,
    warn_age: Option<Duration>,
}

impl FreshnessProbe {
    /// A probe failing when `path` was last modified more than `max_age` ago.
    pub fn new(path: impl Into<PathBuf>, max_age: Duration) -> Self {
        FreshnessProbe {
            path: path.into(),
            max_age,
            warn_age: None,
        }
    }

    /// Warns when the file is older than `age`.
    pub fn warn_age(mut self, age: Duration) -> Self {
        self.warn_age = Some(age);
        self
    }

    /// Builds the probe from a check table.
    pub fn from_params(params: Params, ctx: &BuildContext) -> Result<Self> {
        if params.max_file_age_ms == 0 {
            return Err(Error::config("`max_file_age_ms` must be greater than 0"));
        }
        if params
            .warn_age_ms
            .is_some_and(|w| w > params.max_file_age_ms)
        {
            return Err(Error::config(
                "`warn_age_ms` is above `max_file_age_ms`: the warning would never show",
            ));
        }
        let mut probe = FreshnessProbe::new(
            ctx.resolve(&params.path),
            Duration::from_millis(params.max_file_age_ms),
        );
        if let Some(ms) = params.warn_age_ms {
            probe = probe.warn_age(Duration::from_millis(ms));
        }
        Ok(probe)
    }

    fn assess(&self, age: Duration) -> Outcome {
        let seconds = (age.as_secs_f64() * 10.0).round() / 10.0;
        let shown = humantime::format_duration(Duration::from_secs(age.as_secs()));
        let outcome = if age > self.max_age {
            Outcome::fail(format!(
                "{} was last updated {shown} ago (limit {})",
                self.path.display(),
                humantime::format_duration(self.max_age)
            ))
            .with_remediation(format!(
                "check the process that touches {}",
                self.path.display()
            ))
        } else if self.warn_age.is_some_and(|w| age > w) {
            Outcome::warn(format!(
                "{} was last updated {shown} ago",
                self.path.display()
            ))
        } else {
            Outcome::pass()
        };
        outcome.with_observed("age", seconds, Some("s"))
    }
}

#[async_trait]
impl Probe for FreshnessProbe {
    async fn check(&self, _ctx: &CheckContext) -> Outcome {
        let modified = match tokio::fs::metadata(&self.path)
            .await
            .and_then(|m| m.modified())
        {
            Ok(modified) => modified,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Outcome::fail(format!(
                    "heartbeat file {} does not exist",
                    self.path.display()
                ))
                .with_remediation(format!(
                    "start the process that writes {}",
                    self.path.display()
                ));
            }
            Err(err) => {
                return Outcome::fail(format!("cannot read {}: {err}", self.path.display()));
            }
        };
        // A modification time in the future (clock skew) counts as fresh.
        let age = SystemTime::now()
            .duration_since(modified)
            .unwrap_or_default();
        self.assess(age)
    }

    fn is_local(&self) -> bool {
        true
    }

    fn component_type(&self) -> &str {
        "system"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::Status;

    #[test]
    fn ages_map_to_statuses() {
        let probe =
            FreshnessProbe::new("hb", Duration::from_secs(60)).warn_age(Duration::from_secs(30));
        assert_eq!(probe.assess(Duration::from_secs(5)).status, Status::Pass);
        assert_eq!(probe.assess(Duration::from_secs(45)).status, Status::Warn);
        let stale = probe.assess(Duration::from_secs(90));
        assert_eq!(stale.status, Status::Fail);
        assert_eq!(stale.observed.unwrap().value, serde_json::json!(90.0));
        assert!(stale.output.unwrap().contains("1m 30s ago"));
    }

    #[tokio::test]
    async fn fresh_file_passes_and_old_file_fails() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hb");
        let ctx = CheckContext::new("hb", Duration::from_secs(1));
        let probe = FreshnessProbe::new(&path, Duration::from_secs(60));
        assert_eq!(probe.check(&ctx).await.status, Status::Fail, "missing file");
        std::fs::write(&path, b"").unwrap();
        assert_eq!(probe.check(&ctx).await.status, Status::Pass);
        let file = std::fs::File::options().write(true).open(&path).unwrap();
        file.set_modified(SystemTime::now() - Duration::from_secs(600))
            .unwrap();
        let outcome = probe.check(&ctx).await;
        assert_eq!(outcome.status, Status::Fail);
        assert!(outcome.observed.unwrap().value.as_f64().unwrap() >= 600.0);
    }

    #[test]
    fn max_age_key_is_distinct_from_the_common_one() {
        let params: Params = toml::from_str("path = \"hb\"\nmax_file_age_ms = 1000").unwrap();
        assert_eq!(params.max_file_age_ms, 1000);
    }
}
