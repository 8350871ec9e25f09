//! Renderers: health+json, a human table, verbose text, Prometheus text. All read a [`Report`]
//! or the registry's snapshot; none runs a check.

use super::registry::Endpoint;
use super::{CheckReport, ProbeKind, Registry, Report, Status};
use serde_json::{Map, Value, json};
use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

/// The media type of health+json.
pub const HEALTH_JSON: &str = "application/health+json";
/// The media type of the Prometheus text exposition format.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// How much a caller may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// Status only (anonymous callers).
    StatusOnly,
    /// Every check with its output.
    Full,
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// Renders a report as `application/health+json` (draft-inadarei-api-health-check field names).
pub fn health_json(report: &Report, detail: Detail) -> Value {
    let mut root = Map::new();
    root.insert("status".into(), json!(report.status.as_str()));
    if detail == Detail::StatusOnly {
        return Value::Object(root);
    }
    let optional = [
        ("version", &report.version),
        ("releaseId", &report.release_id),
        ("serviceId", &report.service_id),
        ("description", &report.description),
    ];
    for (key, value) in optional {
        if let Some(value) = value {
            root.insert(key.into(), json!(value));
        }
    }
    let failing: Vec<&str> = report
        .checks
        .iter()
        .filter(|c| !c.status.is_ok())
        .map(|c| c.name.as_str())
        .collect();
    if !failing.is_empty() {
        root.insert(
            "output".into(),
            json!(format!("failing: {}", failing.join(", "))),
        );
    }
    if !report.notes.is_empty() {
        root.insert("notes".into(), json!(report.notes));
    }
    let mut checks = Map::new();
    for check in &report.checks {
        let (key, entry) = check_entry(check);
        match checks.get_mut(&key) {
            Some(Value::Array(list)) => list.push(entry),
            _ => {
                checks.insert(key, Value::Array(vec![entry]));
            }
        }
    }
    for (name, value) in &report.values {
        checks.insert(
            format!("{name}:value"),
            json!([{ "componentId": name, "componentType": "metric", "observedValue": value, "status": "pass",
                     "time": rfc3339(report.generated_at) }]),
        );
    }
    root.insert("checks".into(), Value::Object(checks));
    Value::Object(root)
}

fn check_entry(check: &CheckReport) -> (String, Value) {
    let outcome = check.state.outcome.as_ref();
    let observed = outcome.and_then(|o| o.observed.as_ref());
    let measurement = observed.map(|o| o.measurement.as_str()).unwrap_or("status");
    let mut entry = Map::new();
    entry.insert("componentId".into(), json!(check.name));
    entry.insert("componentType".into(), json!(check.component_type));
    if let Some(observed) = observed {
        entry.insert("observedValue".into(), observed.value.clone());
        if let Some(unit) = &observed.unit {
            entry.insert("observedUnit".into(), json!(unit));
        }
    }
    entry.insert("status".into(), json!(check.status.as_str()));
    if let Some(at) = check.state.checked_at {
        entry.insert("time".into(), json!(rfc3339(at)));
    }
    if let Some(output) = check.output() {
        entry.insert("output".into(), json!(output));
    }
    if !check.affected_endpoints.is_empty() {
        entry.insert("affectedEndpoints".into(), json!(check.affected_endpoints));
    }
    if let Some(outcome) = outcome {
        if let Some(outage) = outcome.outage {
            entry.insert("outage".into(), json!(outage.as_str()));
        }
        if let Some(state) = outcome.state {
            entry.insert("dependencyState".into(), json!(state.as_str()));
        }
    }
    if !check.critical {
        entry.insert("critical".into(), json!(false));
    }
    (
        format!("{}:{measurement}", check.name),
        Value::Object(entry),
    )
}

fn duration_text(check: &CheckReport) -> String {
    if check.state.checked_at.is_none() {
        return "-".into();
    }
    let ms = check.state.duration.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

/// Renders a report as a human table.
pub fn table(report: &Report) -> String {
    let title = report.kind.map_or("health", |k| k.as_str());
    let mut out = format!("{title}: {}", report.status);
    if let Some(id) = &report.service_id {
        let _ = write!(out, "  ({id})");
    }
    out.push('\n');
    let rows: Vec<[String; 5]> = report
        .checks
        .iter()
        .map(|c| {
            let output = match (c.output(), c.state.outcome.as_ref().and_then(|o| o.outage)) {
                (Some(text), Some(outage)) => format!("[{outage}] {text}"),
                (Some(text), None) => text,
                (None, _) => observed_text(c),
            };
            [
                c.name.clone(),
                c.status.to_string(),
                if c.critical {
                    "critical".into()
                } else {
                    "optional".into()
                },
                duration_text(c),
                output,
            ]
        })
        .collect();
    out.push_str(&crate::table::render(
        &["CHECK", "STATUS", "ROLE", "TOOK", "OUTPUT"],
        &rows,
    ));
    for (name, value) in &report.values {
        out.push_str(&format!("value {name} = {value}\n"));
    }
    for note in &report.notes {
        out.push_str(&format!("note: {note}\n"));
    }
    out
}

fn observed_text(check: &CheckReport) -> String {
    match check
        .state
        .outcome
        .as_ref()
        .and_then(|o| o.observed.as_ref())
    {
        Some(o) => format!(
            "{} = {}{}",
            o.measurement,
            o.value,
            o.unit
                .as_deref()
                .map(|u| format!(" {u}"))
                .unwrap_or_default()
        ),
        None => String::new(),
    }
}

/// Renders a report as Kubernetes-style `?verbose` text: with full detail, one
/// `[+]`/`[~]`/`[-]` line per check with its reason; with status only, the counts of passing,
/// warning and failing checks and never a name.
pub fn verbose(report: &Report, detail: Detail) -> String {
    let mut out = String::new();
    if detail == Detail::StatusOnly {
        // Anonymous callers learn how many checks pass, never their names.
        let count = |ok: fn(Status) -> bool| report.checks.iter().filter(|c| ok(c.status)).count();
        let _ = writeln!(
            out,
            "{} check(s): {} ok, {} warn, {} failing or unknown; names and reasons withheld",
            report.checks.len(),
            count(|s| s == Status::Pass),
            count(|s| s == Status::Warn),
            count(|s| matches!(s, Status::Fail | Status::Unknown)),
        );
    }
    for check in report.checks.iter().filter(|_| detail == Detail::Full) {
        let mark = match check.status {
            Status::Pass => "[+]",
            Status::Warn => "[~]",
            Status::Fail | Status::Unknown => "[-]",
        };
        let word = match check.status {
            Status::Pass => "ok".to_owned(),
            Status::Warn => "warn".to_owned(),
            Status::Fail => "failed".to_owned(),
            Status::Unknown => "unknown".to_owned(),
        };
        let reason = match check.status {
            Status::Pass => String::new(),
            _ => check.output().map(|o| format!(": {o}")).unwrap_or_default(),
        };
        let _ = writeln!(out, "{mark}{} {word}{reason}", check.name);
    }
    if detail == Detail::Full {
        for note in &report.notes {
            let _ = writeln!(out, "note: {note}");
        }
    }
    let name = match report.kind {
        Some(ProbeKind::Startup) => "startupz",
        Some(ProbeKind::Readiness) => "readyz",
        Some(ProbeKind::Liveness) => "livez",
        None => "healthz",
    };
    let verdict = if report.status.is_ok() {
        "passed"
    } else {
        "failed"
    };
    let _ = writeln!(out, "{name} check {verdict}");
    out
}

fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Renders the registry's state as Prometheus text. Reads the snapshot only.
pub fn prometheus(registry: &Registry) -> String {
    prometheus_with(registry, true)
}

/// [`prometheus`], with the per-check series (labelled with check names) only when
/// `check_series` is true; the probe series are always there.
pub fn prometheus_with(registry: &Registry, check_series: bool) -> String {
    let report = registry.evaluate_all();
    let mut out = String::with_capacity(4096);
    let mut family =
        |name: &str, kind: &str, help: &str, samples: &mut dyn Iterator<Item = (String, f64)>| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
    let checks: &[CheckReport] = if check_series { &report.checks } else { &[] };
    let label = |c: &CheckReport| format!("check=\"{}\"", escape_label(&c.name));
    family(
        "runward_check_status",
        "gauge",
        "Status of each check: 1 for its current status, 0 for the others.",
        &mut checks.iter().flat_map(|c| {
            [Status::Pass, Status::Warn, Status::Fail, Status::Unknown]
                .into_iter()
                .map(move |s| {
                    (
                        format!("{{{},status=\"{s}\"}}", label(c)),
                        f64::from(u8::from(c.status == s)),
                    )
                })
        }),
    );
    family(
        "runward_check_up",
        "gauge",
        "1 when the check passes or warns, 0 otherwise.",
        &mut checks.iter().map(|c| {
            (
                format!("{{{}}}", label(c)),
                f64::from(u8::from(c.status.is_ok())),
            )
        }),
    );
    family(
        "runward_check_duration_seconds",
        "gauge",
        "Duration of the latest run of each check.",
        &mut checks
            .iter()
            .map(|c| (format!("{{{}}}", label(c)), c.state.duration.as_secs_f64())),
    );
    family(
        "runward_check_last_success_timestamp_seconds",
        "gauge",
        "Unix time of the latest passing run (0 if none).",
        &mut checks.iter().map(|c| {
            (
                format!("{{{}}}", label(c)),
                c.state.last_success.map(unix_seconds).unwrap_or(0.0),
            )
        }),
    );
    family(
        "runward_check_consecutive_failures",
        "gauge",
        "Failed runs in a row.",
        &mut checks.iter().map(|c| {
            (
                format!("{{{}}}", label(c)),
                f64::from(c.state.consecutive_failures),
            )
        }),
    );
    family(
        "runward_check_runs_total",
        "counter",
        "Runs of each check.",
        &mut checks
            .iter()
            .map(|c| (format!("{{{}}}", label(c)), c.state.runs as f64)),
    );
    family(
        "runward_check_timeouts_total",
        "counter",
        "Runs that overran their deadline.",
        &mut checks
            .iter()
            .map(|c| (format!("{{{}}}", label(c)), c.state.timeouts as f64)),
    );
    family(
        "runward_check_transitions_total",
        "counter",
        "Status changes of each check.",
        &mut checks
            .iter()
            .map(|c| (format!("{{{}}}", label(c)), c.state.transitions as f64)),
    );
    family(
        "runward_probe_up",
        "gauge",
        "1 when the probe answers 200, 0 when it answers 503.",
        &mut ProbeKind::ALL.into_iter().map(|k| {
            (
                format!("{{probe=\"{k}\"}}"),
                f64::from(u8::from(registry.status(k).is_ok())),
            )
        }),
    );
    family(
        "runward_probe_requests_total",
        "counter",
        "Probe requests served, by endpoint and HTTP code.",
        &mut registry
            .request_counts()
            .into_iter()
            .map(|(e, code, n): (Endpoint, u16, u64)| {
                (
                    format!("{{endpoint=\"{}\",code=\"{code}\"}}", e.path()),
                    n as f64,
                )
            }),
    );
    if !report.values.is_empty() {
        family(
            "runward_app_value",
            "gauge",
            "Counters and gauges pushed by the application.",
            &mut report
                .values
                .iter()
                .map(|(n, v)| (format!("{{name=\"{}\"}}", escape_label(n)), *v)),
        );
    }
    out
}
