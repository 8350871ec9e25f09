//! `doctor`: run every check now, explain failures, and optionally apply their fixers.

use super::{Registry, Report, Status};
use serde::Serialize;

/// Exit code for a report whose status is `pass`.
pub const EXIT_PASS: i32 = 0;
/// Exit code for `fail` (or `unknown`).
pub const EXIT_FAIL: i32 = 1;
/// Exit code for a configuration that cannot be loaded, or bad usage.
pub const EXIT_BAD_CONFIG: i32 = 2;
/// Exit code for `warn` (degraded but serving).
pub const EXIT_WARN: i32 = 3;

/// The process exit code that stands for `status`.
pub fn exit_code(status: Status) -> i32 {
    match status {
        Status::Pass => EXIT_PASS,
        Status::Warn => EXIT_WARN,
        Status::Fail | Status::Unknown => EXIT_FAIL,
    }
}

/// What `doctor` found, serialisable as its JSON output.
#[derive(Debug, Clone, Serialize)]
pub struct DoctorReport {
    /// The overall status after any fixes.
    pub status: Status,
    /// The exit code the CLI uses for this report.
    pub exit_code: i32,
    /// One entry per check.
    pub checks: Vec<DoctorCheck>,
    /// Configuration warnings.
    pub warnings: Vec<String>,
    /// Counters and gauges the application pushed.
    pub values: serde_json::Map<String, serde_json::Value>,
}

/// One check as `doctor` reports it.
#[derive(Debug, Clone, Serialize)]
pub struct DoctorCheck {
    /// The check's name.
    pub name: String,
    /// Its status.
    pub status: Status,
    /// Whether it is critical.
    pub critical: bool,
    /// The probe kinds it counts towards.
    pub probes: Vec<super::ProbeKind>,
    /// What it observed or why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// The outage class of a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outage: Option<super::OutageClass>,
    /// The dependency state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<super::DependencyState>,
    /// What to do about a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remediation: Option<String>,
    /// The attached fixer, and what it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<FixResult>,
}

/// A fixer's description and, with `--fix`, its result.
#[derive(Debug, Clone, Serialize)]
pub struct FixResult {
    /// What the fixer does.
    pub description: String,
    /// Whether it ran.
    pub applied: bool,
    /// What it reported, or why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Whether it failed.
    pub failed: bool,
}

/// Runs every check now; with `fix`, applies the fixers of failing checks and runs those
/// checks again.
pub async fn doctor(registry: &Registry, fix: bool) -> DoctorReport {
    registry.refresh_all().await;
    let mut fixes: Vec<(String, FixResult)> = Vec::new();
    let before = registry.evaluate_all();
    for check in &before.checks {
        if check.status.is_ok() {
            continue;
        }
        let Ok(Some(fixer)) = registry.fixer(&check.name) else {
            continue;
        };
        let description = fixer.describe();
        if !fix {
            fixes.push((
                check.name.clone(),
                FixResult {
                    description,
                    applied: false,
                    message: None,
                    failed: false,
                },
            ));
            continue;
        }
        let result = match fixer.fix() {
            Ok(message) => FixResult {
                description,
                applied: true,
                message: Some(message),
                failed: false,
            },
            Err(err) => FixResult {
                description,
                applied: true,
                message: Some(err.to_string()),
                failed: true,
            },
        };
        let _ = registry.refresh(&check.name).await;
        fixes.push((check.name.clone(), result));
    }
    let report = registry.evaluate_all();
    from_report(&report, fixes, registry.warnings().to_vec())
}

fn from_report(
    report: &Report,
    mut fixes: Vec<(String, FixResult)>,
    warnings: Vec<String>,
) -> DoctorReport {
    let checks = report
        .checks
        .iter()
        .map(|c| {
            let outcome = c.state.outcome.as_ref();
            let fix = fixes
                .iter()
                .position(|(n, _)| *n == c.name)
                .map(|i| fixes.swap_remove(i).1);
            DoctorCheck {
                name: c.name.clone(),
                status: c.status,
                critical: c.critical,
                probes: c.kinds.clone(),
                output: c.output(),
                outage: outcome.and_then(|o| o.outage),
                state: outcome.and_then(|o| o.state),
                remediation: if c.status == Status::Pass {
                    None
                } else {
                    c.remediation()
                },
                fix,
            }
        })
        .collect();
    DoctorReport {
        status: report.status,
        exit_code: exit_code(report.status),
        checks,
        warnings,
        values: report
            .values
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::json!(v)))
            .collect(),
    }
}

/// Renders a doctor report for people.
pub fn doctor_text(report: &DoctorReport) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for check in &report.checks {
        let mark = match check.status {
            Status::Pass => "ok  ",
            Status::Warn => "WARN",
            Status::Fail | Status::Unknown => "FAIL",
        };
        let _ = write!(out, "{mark} {}", check.name);
        if !check.critical && !check.status.is_ok() {
            out.push_str(" (optional)");
        }
        if let Some(output) = &check.output {
            let _ = write!(out, ": {output}");
        }
        out.push('\n');
        if let Some(hint) = &check.remediation {
            let _ = writeln!(out, "     hint: {hint}");
        }
        if let Some(fix) = &check.fix {
            match (fix.applied, fix.failed) {
                (false, _) => {
                    let _ = writeln!(
                        out,
                        "     fix available (run with --fix): {}",
                        fix.description
                    );
                }
                (true, false) => {
                    let _ = writeln!(
                        out,
                        "     fixed: {}",
                        fix.message.as_deref().unwrap_or(&fix.description)
                    );
                }
                (true, true) => {
                    let _ = writeln!(
                        out,
                        "     fix failed: {}",
                        fix.message.as_deref().unwrap_or("")
                    );
                }
            }
        }
    }
    for warning in &report.warnings {
        let _ = writeln!(out, "warning: {warning}");
    }
    let _ = writeln!(out, "overall: {}", report.status);
    out
}
