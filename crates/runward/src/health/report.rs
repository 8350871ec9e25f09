//! A [`Report`]: one evaluation of the snapshot, the input of every renderer.

use super::snapshot::CheckState;
use super::{ProbeKind, Status};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// One evaluation of a probe kind (or of every check) at one moment.
#[derive(Debug, Clone)]
pub struct Report {
    /// The probe kind, or `None` for the whole service (`/healthz`, `doctor`).
    pub kind: Option<ProbeKind>,
    /// The aggregate status.
    pub status: Status,
    /// `serviceId`.
    pub service_id: Option<String>,
    /// `version`.
    pub version: Option<String>,
    /// `releaseId`.
    pub release_id: Option<String>,
    /// `description`.
    pub description: Option<String>,
    /// The checks that count towards this report.
    pub checks: Vec<CheckReport>,
    /// Notes: configuration warnings, shutdown, closed gates.
    pub notes: Vec<String>,
    /// Counters and gauges the application pushed.
    pub values: Vec<(String, f64)>,
    /// When the report was made.
    pub generated_at: SystemTime,
    /// How long the report stays current (`Cache-Control: max-age`).
    pub max_age: Duration,
}

/// One check within a [`Report`].
#[derive(Debug, Clone)]
pub struct CheckReport {
    /// The check's name (`componentId`).
    pub name: String,
    /// The status as of the report, `unknown` when stale or never run.
    pub status: Status,
    /// Whether a failure fails the probe (otherwise it degrades it to `warn`).
    pub critical: bool,
    /// The probe kinds the check counts towards.
    pub kinds: Vec<ProbeKind>,
    /// `componentType`.
    pub component_type: String,
    /// `affectedEndpoints`.
    pub affected_endpoints: Vec<String>,
    /// The configured remediation hint.
    pub remediation: Option<String>,
    /// What `doctor --fix` would do for this check.
    pub fix: Option<String>,
    /// Whether the latest result is older than the check's max age.
    pub stale: bool,
    /// The check's state in the snapshot.
    pub state: Arc<CheckState>,
}

impl CheckReport {
    /// The output to show: the outcome's, or why there is none.
    pub fn output(&self) -> Option<String> {
        if self.state.checked_at.is_none() {
            return Some("no result yet".into());
        }
        if self.stale {
            return Some("the latest result is too old to trust".into());
        }
        self.state.outcome.as_ref().and_then(|o| o.output.clone())
    }

    /// The remediation hint: the outcome's own, else the configured one.
    pub fn remediation(&self) -> Option<String> {
        self.state
            .outcome
            .as_ref()
            .and_then(|o| o.remediation.clone())
            .or_else(|| self.remediation.clone())
    }
}
