//! Built-in probes, and the factory that builds them from `[[checks]]` tables in `runward.toml`.
//!
//! Each probe lives in its own module with a `Params` struct (the check's table, minus the
//! common keys) and a constructor usable from code.

pub mod command;
pub mod config_check;
pub mod counter;
pub mod disk;
pub mod dns;
pub mod freshness;
pub mod http;
pub mod path;
pub mod redis;
pub mod sqlite;
pub mod state;
pub mod tcp;
pub mod tls_expiry;

use crate::health::{Fixer, Probe};
use crate::policy::OutboundPolicy;
use crate::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The probe kinds `runward.toml` accepts, in the order they are listed in errors.
pub const KINDS: &[&str] = &[
    "http",
    "tcp",
    "dns",
    "sqlite",
    "redis",
    "disk",
    "path",
    "state",
    "freshness",
    "tls",
    "command",
    "config",
    "counter",
];

/// What a probe factory needs besides the check's own parameters.
#[derive(Debug, Clone)]
pub struct BuildContext {
    /// Relative paths in the configuration resolve against this directory.
    pub base_dir: PathBuf,
    /// The outbound policy every network probe obeys.
    pub outbound: Arc<OutboundPolicy>,
}

impl BuildContext {
    /// Resolves a configured path against the configuration's directory.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base_dir.join(path)
        }
    }
}

/// Runs blocking filesystem work off the async threads within the check's soft deadline: a
/// panic in `inspect` is a `fail`, an overrun a `timeout` outage saying `what` did not finish.
pub(crate) async fn blocking_check(
    ctx: &crate::health::CheckContext,
    what: &str,
    inspect: impl FnOnce() -> crate::health::Outcome + Send + 'static,
) -> crate::health::Outcome {
    use crate::health::{OutageClass, Outcome};
    let task = tokio::task::spawn_blocking(inspect);
    match tokio::time::timeout_at(tcp::soft_deadline(ctx).into(), task).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(join)) => Outcome::fail(format!("{what} failed: {join}")),
        Err(_) => Outcome::outage(
            OutageClass::Timeout,
            format!("{what} did not finish before the deadline"),
        ),
    }
}

/// A probe built from configuration, with the repair `doctor --fix` may apply.
pub struct Built {
    /// The probe.
    pub probe: Arc<dyn Probe>,
    /// An optional repair for when it fails.
    pub fixer: Option<Arc<dyn Fixer>>,
}

impl Built {
    fn probe(probe: impl Probe) -> Self {
        Built {
            probe: Arc::new(probe),
            fixer: None,
        }
    }
}

/// Builds the probe of `kind` from the check's parameters.
///
/// Errors name the unknown kind and list the known ones, or say which parameter is wrong.
pub fn build(kind: &str, params: toml::Table, ctx: &BuildContext) -> Result<Built> {
    // Errors lead with the offending key in backticks, so the caller can point at its line.
    fn parse<T: serde::de::DeserializeOwned>(kind: &str, params: toml::Table) -> Result<T> {
        serde_path_to_error::deserialize(toml::Value::Table(params)).map_err(|e| {
            let path = e.path().to_string();
            let message = e.into_inner().message().trim().to_owned();
            if path.is_empty() || path == "." {
                Error::config(format!("{message} (in a `{kind}` check)"))
            } else {
                Error::config(format!("`{path}`: {message} (in a `{kind}` check)"))
            }
        })
    }
    Ok(match kind {
        "http" => Built::probe(http::HttpProbe::from_params(parse(kind, params)?, ctx)?),
        "tcp" => Built::probe(tcp::TcpProbe::from_params(parse(kind, params)?, ctx)?),
        "dns" => Built::probe(dns::DnsProbe::from_params(parse(kind, params)?)?),
        "sqlite" => Built::probe(sqlite::SqliteProbe::from_params(parse(kind, params)?, ctx)?),
        "redis" => Built::probe(redis::RedisProbe::from_params(parse(kind, params)?, ctx)?),
        "disk" => Built::probe(disk::DiskProbe::from_params(parse(kind, params)?, ctx)?),
        "path" => {
            let probe = path::PathProbe::from_params(parse(kind, params)?, ctx)?;
            let fixer = probe.fixer();
            Built {
                probe: Arc::new(probe),
                fixer,
            }
        }
        "state" => Built::probe(state::StateProbe::from_params(parse(kind, params)?, ctx)?),
        "freshness" => Built::probe(freshness::FreshnessProbe::from_params(
            parse(kind, params)?,
            ctx,
        )?),
        "tls" => Built::probe(tls_expiry::TlsExpiryProbe::from_params(
            parse(kind, params)?,
            ctx,
        )?),
        "command" => Built::probe(command::CommandProbe::from_params(
            parse(kind, params)?,
            ctx,
        )?),
        "config" => Built::probe(config_check::ConfigProbe::from_params(
            parse(kind, params)?,
            ctx,
        )?),
        "counter" => Built::probe(counter::CounterProbe::from_params(parse(kind, params)?)?),
        other => {
            return Err(Error::config(format!(
                "unknown check kind `{other}`: expected one of {}",
                KINDS.join(", ")
            )));
        }
    })
}
