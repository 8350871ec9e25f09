//! `tcp`: connect to `host:port` and report the connect latency.
//!
//! Also holds the resolve-and-connect helpers every network probe shares: names resolve with
//! tokio, every address passes the outbound policy's address check, and connects stop at the
//! check's deadline.

use super::BuildContext;
use crate::health::{CheckContext, DependencyState, OutageClass, Outcome, Probe};
use crate::policy::OutboundPolicy;
use crate::{Error, Result};
use async_trait::async_trait;
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// The parameters of a `tcp` check.
///
/// ```toml
/// [[checks]]
/// name = "queue"
/// kind = "tcp"
/// host = "127.0.0.1"
/// port = 5672
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Host name or IP address to connect to.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

/// Connects to a TCP port; passes when the connection is accepted.
#[derive(Debug, Clone)]
pub struct TcpProbe {
    host: String,
    port: u16,
    policy: Arc<OutboundPolicy>,
}

impl TcpProbe {
    /// A probe for `host:port` obeying `policy`; a refused host fails each check (outage
    /// `misconfigured`) without any connection attempt.
    pub fn new(host: impl Into<String>, port: u16, policy: Arc<OutboundPolicy>) -> Result<Self> {
        let host = host.into();
        if host.is_empty() || host.contains(['/', ' ']) {
            return Err(Error::config(format!(
                "`host` is `{host}`: expected a host name or an IP address"
            )));
        }
        Ok(TcpProbe { host, port, policy })
    }

    /// Builds the probe from a check table.
    pub fn from_params(params: Params, ctx: &BuildContext) -> Result<Self> {
        TcpProbe::new(params.host, params.port, ctx.outbound.clone())
    }
}

#[async_trait]
impl Probe for TcpProbe {
    async fn check(&self, ctx: &CheckContext) -> Outcome {
        let started = Instant::now();
        match connect(&self.policy, &self.host, self.port, soft_deadline(ctx)).await {
            Ok(_stream) => Outcome::pass()
                .with_observed("responseTime", elapsed_ms(started), Some("ms"))
                .with_state(DependencyState::Ready),
            Err(err) => err.outcome(&format!("{}:{}", self.host, self.port)),
        }
    }
}

/// Why a resolve or connect failed, classified for an [`Outcome`].
#[derive(Debug)]
pub(crate) enum NetError {
    /// The outbound policy refused the host or every address it resolved to.
    Policy(Error),
    /// The name did not resolve.
    Dns(std::io::Error),
    /// The name resolved to no address.
    NoAddress,
    /// Every address refused or failed the connection; the last error.
    Connect(std::io::Error),
    /// The deadline passed.
    Timeout,
}

impl NetError {
    /// The outcome for this error when talking to `target` (shown as is: pass no secrets).
    pub(crate) fn outcome(&self, target: &str) -> Outcome {
        match self {
            NetError::Policy(err) => {
                Outcome::outage(OutageClass::Misconfigured, err.message().to_owned())
                    .with_remediation(
                        "point the check at an allowed host, or widen [policy.outbound]",
                    )
            }
            NetError::Dns(err) => Outcome::outage(
                OutageClass::DnsResolution,
                format!("cannot resolve {target}: {err}"),
            ),
            NetError::NoAddress => Outcome::outage(
                OutageClass::DnsResolution,
                format!("{target} resolved to no address"),
            ),
            NetError::Connect(err) => Outcome::outage(
                OutageClass::from_io(err),
                format!("cannot connect to {target}: {err}"),
            ),
            NetError::Timeout => Outcome::outage(
                OutageClass::Timeout,
                format!("no connection to {target} before the deadline"),
            ),
        }
    }
}

/// Resolves `host` and keeps the addresses the policy allows.
///
/// Errors with [`NetError::Policy`] when the policy refuses the host or every address.
pub(crate) async fn resolve(
    policy: &OutboundPolicy,
    host: &str,
    port: u16,
) -> Result<Vec<SocketAddr>, NetError> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    policy.check_host(bare).map_err(NetError::Policy)?;
    let addrs: Vec<SocketAddr> = match bare.parse::<std::net::IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((bare, port))
            .await
            .map_err(NetError::Dns)?
            .collect(),
    };
    allowed_addrs(policy, addrs)
}

/// Keeps the addresses `policy` allows; errors with the first refusal when none is left.
pub(crate) fn allowed_addrs(
    policy: &OutboundPolicy,
    addrs: Vec<SocketAddr>,
) -> Result<Vec<SocketAddr>, NetError> {
    if addrs.is_empty() {
        return Err(NetError::NoAddress);
    }
    let mut refusal = None;
    let allowed: Vec<SocketAddr> = addrs
        .into_iter()
        .filter(|addr| match policy.check_ip(addr.ip()) {
            Ok(()) => true,
            Err(err) => {
                refusal.get_or_insert(err);
                false
            }
        })
        .collect();
    match (allowed.is_empty(), refusal) {
        (true, Some(err)) => Err(NetError::Policy(err)),
        (true, None) => Err(NetError::NoAddress),
        (false, _) => Ok(allowed),
    }
}

/// Resolves `host` under `policy` and connects to the first address that accepts, giving up
/// at `deadline`.
pub(crate) async fn connect(
    policy: &OutboundPolicy,
    host: &str,
    port: u16,
    deadline: Instant,
) -> Result<TcpStream, NetError> {
    let attempt = async {
        let addrs = resolve(policy, host, port).await?;
        let mut last = None;
        for addr in addrs {
            match TcpStream::connect(addr).await {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    return Ok(stream);
                }
                Err(err) => last = Some(err),
            }
        }
        Err(last.map(NetError::Connect).unwrap_or(NetError::NoAddress))
    };
    match tokio::time::timeout_at(deadline.into(), attempt).await {
        Ok(result) => result,
        Err(_) => Err(NetError::Timeout),
    }
}

/// A moment shortly before the check's deadline, so that the probe reports its own timeout
/// (with context) before the registry cancels it.
pub(crate) fn soft_deadline(ctx: &CheckContext) -> Instant {
    let margin = (ctx.timeout() / 20).min(Duration::from_millis(50));
    let deadline = ctx.deadline();
    deadline
        .checked_sub(margin)
        .filter(|d| *d > Instant::now())
        .unwrap_or(deadline)
}

/// Milliseconds since `started`, with microsecond precision.
pub(crate) fn elapsed_ms(started: Instant) -> f64 {
    (started.elapsed().as_secs_f64() * 1_000_000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::Status;

    fn ctx() -> CheckContext {
        CheckContext::new("tcp", Duration::from_secs(2))
    }

    #[tokio::test]
    async fn connects_to_a_listener_and_reports_latency() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let probe = TcpProbe::new("127.0.0.1", port, Arc::default()).unwrap();
        let outcome = probe.check(&ctx()).await;
        assert_eq!(outcome.status, Status::Pass, "{outcome:?}");
        let observed = outcome.observed.unwrap();
        assert_eq!(observed.measurement, "responseTime");
        assert!(observed.value.as_f64().unwrap() >= 0.0);
    }

    #[tokio::test]
    async fn dead_port_is_connection_refused() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let probe = TcpProbe::new("127.0.0.1", port, Arc::default()).unwrap();
        let outcome = probe.check(&ctx()).await;
        assert_eq!(outcome.status, Status::Fail);
        assert_eq!(
            outcome.outage,
            Some(OutageClass::ConnectionRefused),
            "{outcome:?}"
        );
        assert_eq!(outcome.state, Some(DependencyState::Offline));
    }

    #[tokio::test]
    async fn private_literal_is_refused_before_connecting() {
        // The policy refuses 10.0.0.1 before any packet is sent.
        let outcome = TcpProbe::new("10.0.0.1", 5432, Arc::default())
            .unwrap()
            .check(&ctx())
            .await;
        assert_eq!(
            outcome.outage,
            Some(OutageClass::Misconfigured),
            "{outcome:?}"
        );
        assert!(outcome.output.unwrap().contains("private"));
        let allowlist = OutboundPolicy {
            allow_hosts: vec!["db.internal".into()],
            ..Default::default()
        };
        let refused = TcpProbe::new("elsewhere.example", 5432, Arc::new(allowlist))
            .unwrap()
            .check(&ctx())
            .await;
        assert!(refused.output.unwrap().contains("allow_hosts"));
    }

    #[test]
    fn resolved_metadata_address_is_dropped_or_refused() {
        let policy = OutboundPolicy::default();
        let metadata: SocketAddr = "169.254.169.254:80".parse().unwrap();
        let public: SocketAddr = "93.184.216.34:80".parse().unwrap();
        match allowed_addrs(&policy, vec![metadata]) {
            Err(NetError::Policy(err)) => assert!(err.message().contains("metadata"), "{err}"),
            other => panic!("expected a policy refusal, got {other:?}"),
        }
        assert_eq!(
            allowed_addrs(&policy, vec![metadata, public]).unwrap(),
            vec![public]
        );
        let outcome = NetError::Policy(policy.check_ip(metadata.ip()).unwrap_err()).outcome("x");
        assert_eq!(outcome.outage, Some(OutageClass::Misconfigured));
    }

    #[test]
    fn unknown_params_are_rejected() {
        let table: toml::Table = toml::from_str("host = \"a\"\nport = 1\nhots = 2").unwrap();
        let err = table.try_into::<Params>().unwrap_err();
        assert!(err.to_string().contains("hots"), "{err}");
    }
}
