//! The JavaScript shapes of options, probe results and events, and their conversion to and
//! from the core's types.
//!
//! Option objects are read with serde, so a misspelt or mistyped key fails with an
//! `invalid_input` error that names it. The `#[napi(object)]` attribute only generates their
//! TypeScript declarations.

use crate::error::invalid;
use napi_derive::napi;
use runward::config::DetailPolicy;
use runward::health::render::Detail;
use runward::health::{
    CheckSpec, DependencyState, OutageClass, Outcome, Probe, ProbeKind, Schedule, Status,
    Transition,
};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Reads an options object; `None`, `undefined` and `null` give the defaults.
pub(crate) fn options<T: DeserializeOwned + Default>(
    what: &str,
    value: Option<Value>,
) -> runward::Result<T> {
    match value {
        None | Some(Value::Null) => Ok(T::default()),
        Some(value) => {
            serde_json::from_value(value).map_err(|e| invalid(format!("invalid {what}: {e}")))
        }
    }
}

/// Options of `new Health()`.
#[napi(object, object_to_js = false, object_from_js = false)]
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct HealthOptions {
    /// A `runward.toml` whose service, checks and `[server]` settings to load. Relative paths
    /// in it resolve against its folder. Without it the registry has only the checks added
    /// with `addCheck`.
    pub config: Option<String>,
    /// `serviceId` in health+json; overrides the configuration's.
    pub service_id: Option<String>,
    /// `version` in health+json.
    pub version: Option<String>,
    /// `releaseId` in health+json.
    pub release_id: Option<String>,
    /// `description` in health+json.
    pub description: Option<String>,
    /// Liveness fails when `heartbeat()` has not been called for this long.
    pub heartbeat_timeout_ms: Option<u32>,
}

/// Options of `addCheck()`. Defaults: readiness, critical, 2500 ms timeout, periodic every
/// 10 s with 10 % jitter.
#[napi(object, object_to_js = false, object_from_js = false)]
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct CheckOptions {
    /// The probes the check counts towards.
    #[napi(ts_type = "ProbeKindName[]")]
    pub probes: Option<Vec<String>>,
    /// Critical checks fail the probe; optional ones degrade it to `warn`.
    pub critical: Option<bool>,
    /// The deadline of one run; an overrun is a `fail` with outage `timeout`.
    pub timeout_ms: Option<u32>,
    /// `periodic` (in the background) or `on_demand` (when a request finds the result older
    /// than `ttlMs`).
    #[napi(ts_type = "'periodic' | 'on_demand'")]
    pub mode: Option<String>,
    /// Time between periodic runs.
    pub interval_ms: Option<u32>,
    /// Delay before the first periodic run.
    pub initial_delay_ms: Option<u32>,
    /// Largest random shift of each interval.
    pub jitter_ms: Option<u32>,
    /// How long an on-demand result is reused.
    pub ttl_ms: Option<u32>,
    /// How old a result may be before it turns `unknown`.
    pub max_age_ms: Option<u32>,
    /// Consecutive failures before the check reports `fail`.
    pub failure_threshold: Option<u32>,
    /// Consecutive passes before a failed check reports `pass` again.
    pub success_threshold: Option<u32>,
    /// The health+json `componentType`.
    pub component_type: Option<String>,
    /// Endpoints of the application that this dependency affects.
    pub affected_endpoints: Option<Vec<String>>,
    /// What an operator should do when the check fails.
    pub remediation: Option<String>,
    /// Whether the check looks at local signals only; liveness warns about checks that do not.
    pub local: Option<bool>,
}

impl CheckOptions {
    /// The check spec these options describe, for `probe`.
    pub(crate) fn spec(self, name: String, probe: Arc<dyn Probe>) -> runward::Result<CheckSpec> {
        let mut spec = CheckSpec::new(name, probe);
        if let Some(kinds) = self.probes {
            spec = spec.kinds(
                kinds
                    .iter()
                    .map(|k| k.parse::<ProbeKind>())
                    .collect::<runward::Result<Vec<_>>>()?,
            );
        }
        if let Some(critical) = self.critical {
            spec = spec.critical(critical);
        }
        if let Some(ms) = self.timeout_ms {
            spec = spec.timeout(millis(ms));
        }
        let schedule = match self.mode.as_deref().unwrap_or("periodic") {
            "periodic" => {
                let every = Schedule::every(millis(self.interval_ms.unwrap_or(10_000).max(1)));
                let Schedule::Periodic {
                    interval,
                    initial_delay,
                    jitter,
                } = every
                else {
                    unreachable!()
                };
                Schedule::Periodic {
                    interval,
                    initial_delay: self.initial_delay_ms.map_or(initial_delay, millis),
                    jitter: self.jitter_ms.map_or(jitter, millis),
                }
            }
            "on_demand" => Schedule::OnDemand {
                ttl: millis(self.ttl_ms.unwrap_or(5_000)),
            },
            other => {
                return Err(invalid(format!(
                    "`mode` is `{other}`: expected one of periodic, on_demand"
                )));
            }
        };
        spec = spec.schedule(schedule);
        if let Some(ms) = self.max_age_ms {
            spec = spec.max_age(millis(ms));
        }
        if let Some(n) = self.failure_threshold {
            spec = spec.failure_threshold(n);
        }
        if let Some(n) = self.success_threshold {
            spec = spec.success_threshold(n);
        }
        if let Some(t) = self.component_type {
            spec = spec.component_type(t);
        }
        if let Some(eps) = self.affected_endpoints {
            spec = spec.affected_endpoints(eps);
        }
        if let Some(hint) = self.remediation {
            spec = spec.remediation(hint);
        }
        Ok(spec)
    }
}

pub(crate) fn millis(ms: u32) -> Duration {
    Duration::from_millis(u64::from(ms))
}

/// Who may see check details over HTTP, overriding the configuration's `[server]` settings.
#[napi(object, object_to_js = false, object_from_js = false)]
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct EndpointOverrides {
    /// `loopback` (default): loopback callers and token holders; `token`: token holders;
    /// `public`: everyone; `none`: nobody.
    #[napi(ts_type = "DetailPolicyName")]
    pub details: Option<DetailPolicy>,
    /// The bearer token that unlocks details.
    pub token: Option<String>,
    /// Whether `/metrics` carries the per-check series, labelled with check names (default:
    /// the configuration's `[server] check_metrics`, true).
    pub check_metrics: Option<bool>,
}

/// Options of `serve()`.
#[napi(object, object_to_js = false, object_from_js = false)]
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ServeOptions {
    /// The listen address, e.g. `127.0.0.1:0` for any free port. Defaults to the
    /// configuration's `[server].addr` (`127.0.0.1:8080`).
    pub addr: Option<String>,
    /// Who may see check details.
    #[napi(ts_type = "DetailPolicyName")]
    pub details: Option<DetailPolicy>,
    /// The bearer token that unlocks details.
    pub token: Option<String>,
    /// Whether `/metrics` carries the per-check series, labelled with check names (default:
    /// the configuration's `[server] check_metrics`, true).
    pub check_metrics: Option<bool>,
    /// How long a client may take to send a request's headers once it started, in ms
    /// (default: `[server.limits] header_read_timeout_ms`, 5000).
    pub header_read_timeout_ms: Option<u32>,
    /// How long a connection with nothing in flight stays open, in ms (default:
    /// `[server.limits] idle_timeout_ms`, 30000).
    pub idle_timeout_ms: Option<u32>,
    /// The most connections open at once (default: sized from the open-files limit).
    pub max_connections: Option<u32>,
    /// The most bytes of request line and headers (default 16384).
    pub max_header_bytes: Option<u32>,
    /// The most bytes of request body (default 65536).
    pub max_body_bytes: Option<u32>,
}

impl ServeOptions {
    /// The connection limits these options override.
    pub(crate) fn limit_overrides(&self) -> runward::health::limits::ServerLimitsOverrides {
        runward::health::limits::ServerLimitsOverrides {
            header_read_timeout_ms: self.header_read_timeout_ms.map(u64::from),
            idle_timeout_ms: self.idle_timeout_ms.map(u64::from),
            max_connections: self.max_connections.map(|n| n as usize),
            max_header_bytes: self.max_header_bytes.map(|n| n as usize),
            max_body_bytes: self.max_body_bytes.map(|n| n as usize),
        }
    }
}

/// Options of `HealthServer.shutdown()`.
#[napi(object, object_to_js = false, object_from_js = false)]
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ShutdownOptions {
    /// Longest wait for `markDrained()` before the server stops. Defaults to the
    /// configuration's `[server].drain_ms` (5000).
    pub drain_ms: Option<u32>,
}

/// Options of `doctor()`.
#[napi(object, object_to_js = false, object_from_js = false)]
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct DoctorOptions {
    /// Apply the fixers of failing checks, then run those checks again.
    pub fix: Option<bool>,
}

/// What a JavaScript check receives.
#[napi(object, object_from_js = false)]
pub struct ProbeContext {
    /// The check's name.
    pub name: String,
    /// The check's deadline; a result that comes later is discarded.
    pub timeout_ms: u32,
}

/// One probe request, as an HTTP framework sees it.
#[napi(object, object_to_js = false)]
pub struct ProbeRequest {
    /// The path, e.g. `/readyz` or `/readyz/db`.
    pub path: String,
    /// The query string without `?`, e.g. `verbose`.
    pub query: Option<String>,
    /// The `Authorization` header.
    pub authorization: Option<String>,
    /// Whether the caller connected from a loopback address.
    pub peer_loopback: Option<bool>,
}

/// The answer to a `ProbeRequest`.
#[napi(object, object_from_js = false)]
pub struct ProbeResponse {
    /// The HTTP status code.
    pub status: u32,
    /// `content-type` and `cache-control`.
    pub headers: HashMap<String, String>,
    /// The body.
    pub body: String,
}

impl ProbeRequest {
    /// The core's view of this request.
    pub(crate) fn as_core(&self) -> runward::health::endpoints::ProbeRequest<'_> {
        runward::health::endpoints::ProbeRequest {
            path: &self.path,
            query: self.query.as_deref(),
            authorization: self.authorization.as_deref(),
            peer_loopback: self.peer_loopback.unwrap_or(false),
        }
    }
}

impl ProbeResponse {
    /// The core's answer, with its headers as a map.
    pub(crate) fn from_core(answer: runward::health::endpoints::ProbeResponse) -> ProbeResponse {
        let headers = answer
            .headers()
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .into();
        ProbeResponse {
            status: u32::from(answer.status),
            headers,
            body: answer.body,
        }
    }
}

/// A change of a check's status, passed to `onTransition` callbacks.
#[napi(object, object_from_js = false)]
pub struct TransitionEvent {
    /// The check's name.
    pub check: String,
    /// The status before.
    #[napi(ts_type = "CheckStatus")]
    pub from: String,
    /// The status now.
    #[napi(ts_type = "CheckStatus")]
    pub to: String,
    /// Failed runs in a row at the time of the change.
    pub consecutive_failures: u32,
    /// How long the previous status held.
    pub previous_duration_ms: f64,
    /// When it changed (RFC 3339).
    pub at: String,
    /// The outcome that caused the change.
    #[napi(ts_type = "CheckOutcome")]
    pub outcome: Value,
}

impl From<&Transition> for TransitionEvent {
    fn from(t: &Transition) -> Self {
        TransitionEvent {
            check: t.check.clone(),
            from: t.from.as_str().to_owned(),
            to: t.to.as_str().to_owned(),
            consecutive_failures: t.consecutive_failures,
            previous_duration_ms: t.previous_duration.as_secs_f64() * 1000.0,
            at: humantime::format_rfc3339_millis(t.at).to_string(),
            outcome: serde_json::to_value(&t.outcome).unwrap_or(Value::Null),
        }
    }
}

/// Parses a probe kind; `None` stands for readiness.
pub(crate) fn kind_or_readiness(kind: Option<&str>) -> runward::Result<ProbeKind> {
    kind.map_or(Ok(ProbeKind::Readiness), str::parse)
}

/// Parses an optional probe kind; `None` stands for every check (`/healthz`).
pub(crate) fn kind_or_all(kind: Option<&str>) -> runward::Result<Option<ProbeKind>> {
    kind.map(str::parse).transpose()
}

/// Parses a detail level: `full` (default) or `status`.
pub(crate) fn detail(detail: Option<&str>) -> runward::Result<Detail> {
    match detail.unwrap_or("full") {
        "full" => Ok(Detail::Full),
        "status" => Ok(Detail::StatusOnly),
        other => Err(invalid(format!(
            "`detail` is `{other}`: expected one of full, status"
        ))),
    }
}

/// What the JavaScript layer reports for one call of a check: its return value, or the
/// message of what it threw.
#[derive(Debug, Deserialize)]
struct Reply {
    ok: bool,
    #[serde(default)]
    value: Option<Value>,
    #[serde(default)]
    error: Option<String>,
}

/// A result object returned by a JavaScript check.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ResultObject {
    status: Status,
    output: Option<String>,
    observed: Option<Value>,
    unit: Option<String>,
    measurement: Option<String>,
    outage: Option<OutageClass>,
    state: Option<DependencyState>,
    remediation: Option<String>,
    details: Option<Map<String, Value>>,
}

/// The outcome of one call of a JavaScript check, from the JSON reply of the JavaScript layer.
///
/// `undefined`, `null` and `true` pass; `false` fails; an object is a result
/// (`{ status, output?, observed?, unit?, measurement?, outage?, state?, remediation?,
/// details? }`); a throw or rejection fails with its message.
pub(crate) fn outcome_from_reply(json: &str) -> Outcome {
    match serde_json::from_str::<Reply>(json) {
        Ok(Reply {
            ok: true, value, ..
        }) => outcome_from_value(value),
        Ok(Reply {
            ok: false, error, ..
        }) => Outcome::fail(
            error
                .filter(|e| !e.is_empty())
                .unwrap_or_else(|| "the check threw".into()),
        ),
        Err(e) => Outcome::fail(format!("the check's reply could not be read: {e}")),
    }
}

fn outcome_from_value(value: Option<Value>) -> Outcome {
    let object = match value {
        None | Some(Value::Null) | Some(Value::Bool(true)) => return Outcome::pass(),
        Some(Value::Bool(false)) => return Outcome::fail("the check returned false"),
        Some(value @ Value::Object(_)) => value,
        Some(other) => {
            let kind = match other {
                Value::Number(_) => "a number",
                Value::String(_) => "a string",
                _ => "an array",
            };
            return Outcome::fail(format!(
                "the check returned {kind}: return true, false, nothing, or {{ status, output?, ... }}"
            ));
        }
    };
    let result: ResultObject = match serde_json::from_value(object) {
        Ok(result) => result,
        Err(e) => return Outcome::fail(format!("the check returned an invalid result: {e}")),
    };
    let mut outcome = Outcome {
        status: result.status,
        ..Outcome::default()
    };
    if let Some(output) = result.output {
        outcome = outcome.with_output(output);
    }
    if let Some(value) = result.observed {
        let measurement = result.measurement.as_deref().unwrap_or("value");
        outcome = outcome.with_observed(measurement, value, result.unit.as_deref());
    }
    if let Some(state) = result.state {
        outcome = outcome.with_state(state);
    }
    if let Some(class) = result.outage {
        outcome = outcome.with_outage(class);
    }
    if let Some(hint) = result.remediation {
        outcome = outcome.with_remediation(hint);
    }
    for (key, value) in result.details.unwrap_or_default() {
        outcome = outcome.with_detail(&key, value);
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_values_map_to_pass_and_fail() {
        assert_eq!(outcome_from_reply(r#"{"ok":true}"#).status, Status::Pass);
        assert_eq!(
            outcome_from_reply(r#"{"ok":true,"value":true}"#).status,
            Status::Pass
        );
        assert_eq!(
            outcome_from_reply(r#"{"ok":true,"value":null}"#).status,
            Status::Pass
        );
        let fail = outcome_from_reply(r#"{"ok":true,"value":false}"#);
        assert_eq!(fail.status, Status::Fail);
        assert_eq!(fail.output.as_deref(), Some("the check returned false"));
        let odd = outcome_from_reply(r#"{"ok":true,"value":"up"}"#);
        assert_eq!(odd.status, Status::Fail);
        assert!(odd.output.unwrap().contains("a string"));
    }

    #[test]
    fn throws_fail_with_their_message() {
        let o = outcome_from_reply(r#"{"ok":false,"error":"db down"}"#);
        assert_eq!(o.status, Status::Fail);
        assert_eq!(o.output.as_deref(), Some("db down"));
    }

    #[test]
    fn result_objects_keep_every_field() {
        let o = outcome_from_reply(
            r#"{"ok":true,"value":{"status":"fail","output":"slow","observed":812,"unit":"ms",
                "measurement":"responseTime","outage":"timeout","remediation":"restart it",
                "details":{"host":"db1"}}}"#,
        );
        assert_eq!(o.status, Status::Fail);
        assert_eq!(o.output.as_deref(), Some("slow"));
        let observed = o.observed.unwrap();
        assert_eq!(observed.measurement, "responseTime");
        assert_eq!(observed.value, serde_json::json!(812));
        assert_eq!(observed.unit.as_deref(), Some("ms"));
        assert_eq!(o.outage, Some(OutageClass::Timeout));
        assert_eq!(o.state, Some(DependencyState::Offline));
        assert_eq!(o.remediation.as_deref(), Some("restart it"));
        assert_eq!(o.details["host"], "db1");
    }

    #[test]
    fn invalid_result_objects_fail_and_say_why() {
        let o = outcome_from_reply(r#"{"ok":true,"value":{"status":"ok"}}"#);
        assert_eq!(o.status, Status::Fail);
        assert!(o.output.unwrap().contains("unknown variant `ok`"));
        let o = outcome_from_reply(r#"{"ok":true,"value":{"status":"pass","outpt":"x"}}"#);
        assert!(o.output.unwrap().contains("unknown field `outpt`"));
    }

    #[test]
    fn check_options_reject_unknown_keys_and_modes() {
        let err =
            options::<CheckOptions>("check options", Some(serde_json::json!({ "timeoutMS": 5 })))
                .unwrap_err();
        assert_eq!(err.kind(), runward::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("timeoutMS"), "{err}");
        let probe = runward::health::probe_fn(|_| async { Outcome::pass() });
        let opts = CheckOptions {
            mode: Some("sometimes".into()),
            ..Default::default()
        };
        let err = opts.spec("x".into(), probe).unwrap_err();
        assert!(err.to_string().contains("periodic, on_demand"), "{err}");
    }
}
