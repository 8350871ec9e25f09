//! The result of one check: [`Status`], [`Outcome`], [`OutageClass`], [`DependencyState`].

use serde::{Deserialize, Serialize};
use std::fmt;

/// The status of a check or of a whole probe, in the health+json vocabulary.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord, Default,
)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Healthy.
    Pass,
    /// Healthy with concerns (degraded): still answers 200.
    Warn,
    /// Unhealthy: answers 503.
    Fail,
    /// No result yet, or the result is too old to trust. Readiness and startup treat it as a failure.
    #[default]
    Unknown,
}

impl Status {
    /// The lowercase name used in every output.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Unknown => "unknown",
        }
    }

    /// Whether an orchestrator should treat this status as healthy (HTTP 200).
    pub fn is_ok(self) -> bool {
        matches!(self, Status::Pass | Status::Warn)
    }

    /// The HTTP status code for a probe answering with this status.
    pub fn http_code(self) -> u16 {
        if self.is_ok() { 200 } else { 503 }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a dependency is out, derived from the real error a probe saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OutageClass {
    /// The host name did not resolve.
    DnsResolution,
    /// The check did not finish before its deadline.
    Timeout,
    /// No route to the host or network.
    NetworkUnreachable,
    /// Nothing listens on the port.
    ConnectionRefused,
    /// The TLS handshake or certificate failed.
    Tls,
    /// The dependency refused our credentials (401/403).
    Auth,
    /// The dependency answered with a server error (5xx) or is otherwise down.
    ProviderUnavailable,
    /// The dependency runs a version we do not support.
    VersionMismatch,
    /// The dependency answered with a body we could not parse.
    MalformedPayload,
    /// The database schema is missing or not migrated.
    SchemaUnavailable,
    /// The check or the dependency is configured wrongly.
    Misconfigured,
}

impl OutageClass {
    /// The snake_case name used in every output.
    pub fn as_str(self) -> &'static str {
        match self {
            OutageClass::DnsResolution => "dns_resolution",
            OutageClass::Timeout => "timeout",
            OutageClass::NetworkUnreachable => "network_unreachable",
            OutageClass::ConnectionRefused => "connection_refused",
            OutageClass::Tls => "tls",
            OutageClass::Auth => "auth",
            OutageClass::ProviderUnavailable => "provider_unavailable",
            OutageClass::VersionMismatch => "version_mismatch",
            OutageClass::MalformedPayload => "malformed_payload",
            OutageClass::SchemaUnavailable => "schema_unavailable",
            OutageClass::Misconfigured => "misconfigured",
        }
    }

    /// The dependency state an outage of this class implies.
    pub fn dependency_state(self) -> DependencyState {
        match self {
            OutageClass::VersionMismatch => DependencyState::VersionMismatch,
            OutageClass::MalformedPayload => DependencyState::MalformedPayload,
            OutageClass::SchemaUnavailable => DependencyState::SchemaUnavailable,
            OutageClass::ProviderUnavailable | OutageClass::Auth => DependencyState::Degraded,
            OutageClass::Misconfigured => DependencyState::Disabled,
            _ => DependencyState::Offline,
        }
    }

    /// Classifies an I/O error from a connect, read or write.
    pub fn from_io(err: &std::io::Error) -> OutageClass {
        use std::io::ErrorKind as K;
        match err.kind() {
            K::ConnectionRefused => OutageClass::ConnectionRefused,
            K::TimedOut | K::WouldBlock => OutageClass::Timeout,
            K::HostUnreachable | K::NetworkUnreachable | K::AddrNotAvailable | K::NetworkDown => {
                OutageClass::NetworkUnreachable
            }
            K::InvalidData => OutageClass::MalformedPayload,
            K::PermissionDenied => OutageClass::Auth,
            _ => {
                let text = err.to_string();
                if text.contains("failed to lookup address")
                    || text.contains("Name or service not known")
                {
                    OutageClass::DnsResolution
                } else {
                    OutageClass::ProviderUnavailable
                }
            }
        }
    }
}

impl fmt::Display for OutageClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The state of an optional dependency as the application sees it (enrichment on or off).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DependencyState {
    /// Usable.
    Ready,
    /// Turned off by configuration.
    Disabled,
    /// Not reachable.
    Offline,
    /// Reachable, but its schema is not there.
    SchemaUnavailable,
    /// Reachable, but at a version outside the supported range.
    VersionMismatch,
    /// Reachable, but answering with bodies we cannot parse.
    MalformedPayload,
    /// Reachable and answering, but unhealthy.
    Degraded,
}

impl DependencyState {
    /// The snake_case name used in every output.
    pub fn as_str(self) -> &'static str {
        match self {
            DependencyState::Ready => "ready",
            DependencyState::Disabled => "disabled",
            DependencyState::Offline => "offline",
            DependencyState::SchemaUnavailable => "schema_unavailable",
            DependencyState::VersionMismatch => "version_mismatch",
            DependencyState::MalformedPayload => "malformed_payload",
            DependencyState::Degraded => "degraded",
        }
    }
}

impl fmt::Display for DependencyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A measured value: the `measurement` half of a health+json check key, its value and unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observed {
    /// The measurement name, e.g. `responseTime`, `utilization`, `count`.
    pub measurement: String,
    /// The value.
    pub value: serde_json::Value,
    /// The unit, e.g. `ms`, `percent`, `bytes`, `days`.
    pub unit: Option<String>,
}

/// Longest output kept from one check; longer text is cut at a character boundary.
pub const MAX_OUTPUT_LEN: usize = 512;

/// The result of one check of one dependency.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Outcome {
    /// The raw status of this one result (thresholds apply on top).
    pub status: Status,
    /// What was measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed: Option<Observed>,
    /// A short, human explanation; bounded to [`MAX_OUTPUT_LEN`] bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// Why the dependency is out, when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outage: Option<OutageClass>,
    /// The dependency state this result implies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<DependencyState>,
    /// What an operator should do about a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remediation: Option<String>,
    /// Further structured details, shown to authorised callers only.
    #[serde(skip_serializing_if = "serde_json::Map::is_empty", default)]
    pub details: serde_json::Map<String, serde_json::Value>,
}

impl Outcome {
    /// A passing outcome.
    pub fn pass() -> Self {
        Outcome {
            status: Status::Pass,
            ..Default::default()
        }
    }

    /// A warning with an explanation.
    pub fn warn(output: impl Into<String>) -> Self {
        Outcome {
            status: Status::Warn,
            ..Default::default()
        }
        .with_output(output)
    }

    /// A failure with an explanation.
    pub fn fail(output: impl Into<String>) -> Self {
        Outcome {
            status: Status::Fail,
            ..Default::default()
        }
        .with_output(output)
    }

    /// A failure of the given outage class; the dependency state follows from the class.
    pub fn outage(class: OutageClass, output: impl Into<String>) -> Self {
        Outcome::fail(output).with_outage(class)
    }

    /// Sets the measured value.
    pub fn with_observed(
        mut self,
        measurement: &str,
        value: impl Into<serde_json::Value>,
        unit: Option<&str>,
    ) -> Self {
        self.observed = Some(Observed {
            measurement: measurement.to_owned(),
            value: value.into(),
            unit: unit.map(str::to_owned),
        });
        self
    }

    /// Sets the output, cut to [`MAX_OUTPUT_LEN`] bytes.
    pub fn with_output(mut self, output: impl Into<String>) -> Self {
        self.output = Some(bound_output(output.into()));
        self
    }

    /// Sets the outage class, and the dependency state it implies unless one is set.
    pub fn with_outage(mut self, class: OutageClass) -> Self {
        self.outage = Some(class);
        if self.state.is_none() {
            self.state = Some(class.dependency_state());
        }
        self
    }

    /// Sets the dependency state.
    pub fn with_state(mut self, state: DependencyState) -> Self {
        self.state = Some(state);
        self
    }

    /// Sets the remediation hint.
    pub fn with_remediation(mut self, hint: impl Into<String>) -> Self {
        self.remediation = Some(hint.into());
        self
    }

    /// Adds a structured detail.
    pub fn with_detail(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.details.insert(key.to_owned(), value.into());
        self
    }
}

/// Cuts text to [`MAX_OUTPUT_LEN`] bytes at a character boundary, marking the cut.
pub(crate) fn bound_output(mut text: String) -> String {
    if text.len() > MAX_OUTPUT_LEN {
        let mut end = MAX_OUTPUT_LEN - 3;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str("...");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_bounded_on_a_char_boundary() {
        let long = "é".repeat(400);
        let outcome = Outcome::fail(long);
        let out = outcome.output.unwrap();
        assert!(out.len() <= MAX_OUTPUT_LEN);
        assert!(out.ends_with("..."));
    }

    #[test]
    fn outage_implies_state() {
        let o = Outcome::outage(OutageClass::VersionMismatch, "v2 not in ^1");
        assert_eq!(o.state, Some(DependencyState::VersionMismatch));
        assert_eq!(o.status, Status::Fail);
    }
}
