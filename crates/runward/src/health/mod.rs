//! Health: probes answered from a precomputed snapshot, with hard deadlines.
//!
//! A [`Registry`] owns the checks. Checks run in the background (periodic, with jitter) or on
//! demand (TTL, single-flight); every request reads the latest [`Snapshot`] and never does
//! dependency I/O. Renderers in [`render`] turn one [`Report`] into health+json, a table,
//! verbose text, doctor JSON or Prometheus text.

#[cfg(feature = "server")]
mod connections;
pub mod doctor;
pub mod endpoints;
pub mod limits;
mod outcome;
mod probe;
mod registry;
pub mod render;
mod report;
#[cfg(feature = "server")]
pub mod server;
mod snapshot;
#[cfg(test)]
mod tests;

pub use outcome::{DependencyState, MAX_OUTPUT_LEN, Observed, OutageClass, Outcome, Status};
pub use probe::{CheckContext, Fixer, Probe, Values, blocking_probe_fn, fixer_fn, probe_fn};
pub use registry::{
    CheckSpec, DEFAULT_TIMEOUT, Endpoint, Registry, RegistryBuilder, Schedule, Transition,
};
pub use report::{CheckReport, Report};
pub use snapshot::{CheckState, Snapshot};

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The three probe kinds of an orchestrator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum ProbeKind {
    /// Passes once the application has started; latched after the first pass.
    Startup,
    /// Whether the application should receive traffic: dependencies, gates, drain.
    Readiness,
    /// Whether the process is alive: local signals only.
    Liveness,
}

impl ProbeKind {
    /// All kinds, in endpoint order.
    pub const ALL: [ProbeKind; 3] = [
        ProbeKind::Startup,
        ProbeKind::Readiness,
        ProbeKind::Liveness,
    ];

    /// The snake_case name used in configuration and output.
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeKind::Startup => "startup",
            ProbeKind::Readiness => "readiness",
            ProbeKind::Liveness => "liveness",
        }
    }
}

impl fmt::Display for ProbeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ProbeKind {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Self> {
        match s {
            "startup" => Ok(ProbeKind::Startup),
            "readiness" | "ready" => Ok(ProbeKind::Readiness),
            "liveness" | "live" => Ok(ProbeKind::Liveness),
            other => Err(crate::Error::invalid(format!(
                "unknown probe kind `{other}`: expected one of startup, readiness, liveness"
            ))),
        }
    }
}
