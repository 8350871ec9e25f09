//! `dns`: resolve a host name with the system resolver and count its addresses.

use super::tcp::{elapsed_ms, soft_deadline};
use crate::health::{CheckContext, DependencyState, OutageClass, Outcome, Probe};
use crate::{Error, Result};
use async_trait::async_trait;
use serde::Deserialize;
use std::time::Instant;

/// The parameters of a `dns` check.
///
/// ```toml
/// [[checks]]
/// name = "api-dns"
/// kind = "dns"
/// host = "api.example.com"
/// min_addresses = 2
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The host name to resolve.
    pub host: String,
    /// Fail when fewer distinct addresses come back (default 1).
    #[serde(default = "one")]
    pub min_addresses: usize,
}

fn one() -> usize {
    1
}

/// Resolves a host name; observes the lookup time as `responseTime`.
#[derive(Debug, Clone)]
pub struct DnsProbe {
    host: String,
    min_addresses: usize,
}

impl DnsProbe {
    /// A probe resolving `host`, passing with at least one address.
    pub fn new(host: impl Into<String>) -> Result<Self> {
        let host = host.into();
        if host.trim().is_empty() || host.contains(['/', ':', ' ']) {
            return Err(Error::config(format!(
                "`host` is `{host}`: expected a bare host name such as api.example.com"
            )));
        }
        Ok(DnsProbe {
            host,
            min_addresses: 1,
        })
    }

    /// Fails when fewer than `n` distinct addresses come back.
    pub fn min_addresses(mut self, n: usize) -> Self {
        self.min_addresses = n;
        self
    }

    /// Builds the probe from a check table.
    pub fn from_params(params: Params) -> Result<Self> {
        Ok(DnsProbe::new(params.host)?.min_addresses(params.min_addresses))
    }
}

#[async_trait]
impl Probe for DnsProbe {
    async fn check(&self, ctx: &CheckContext) -> Outcome {
        let started = Instant::now();
        let lookup = tokio::net::lookup_host((self.host.as_str(), 0));
        let result = tokio::time::timeout_at(soft_deadline(ctx).into(), lookup).await;
        let latency = elapsed_ms(started);
        let addrs = match result {
            Err(_) => {
                return Outcome::outage(
                    OutageClass::Timeout,
                    format!("resolving {} did not finish before the deadline", self.host),
                );
            }
            Ok(Err(err)) => {
                return Outcome::outage(
                    OutageClass::DnsResolution,
                    format!("cannot resolve {}: {err}", self.host),
                )
                .with_observed("responseTime", latency, Some("ms"));
            }
            Ok(Ok(addrs)) => {
                let mut ips: Vec<std::net::IpAddr> = addrs.map(|a| a.ip()).collect();
                ips.sort();
                ips.dedup();
                ips
            }
        };
        let listed: Vec<String> = addrs.iter().map(ToString::to_string).collect();
        if addrs.len() < self.min_addresses {
            return Outcome::outage(
                OutageClass::DnsResolution,
                format!(
                    "{} resolved to {} address(es), expected at least {}",
                    self.host,
                    addrs.len(),
                    self.min_addresses
                ),
            )
            .with_observed("responseTime", latency, Some("ms"))
            .with_detail("addresses", listed);
        }
        Outcome::pass()
            .with_observed("responseTime", latency, Some("ms"))
            .with_state(DependencyState::Ready)
            .with_detail("addresses", listed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::Status;
    use std::time::Duration;

    fn ctx() -> CheckContext {
        CheckContext::new("dns", Duration::from_secs(2))
    }

    #[tokio::test]
    async fn resolves_localhost() {
        let outcome = DnsProbe::new("localhost").unwrap().check(&ctx()).await;
        assert_eq!(outcome.status, Status::Pass, "{outcome:?}");
        assert_eq!(outcome.observed.unwrap().measurement, "responseTime");
        assert!(!outcome.details["addresses"].as_array().unwrap().is_empty());
    }

    #[tokio::test]
    async fn too_few_addresses_is_a_dns_failure() {
        let outcome = DnsProbe::new("localhost")
            .unwrap()
            .min_addresses(50)
            .check(&ctx())
            .await;
        assert_eq!(outcome.status, Status::Fail);
        assert_eq!(outcome.outage, Some(OutageClass::DnsResolution));
        assert!(outcome.output.unwrap().contains("expected at least 50"));
    }

    #[tokio::test]
    async fn unknown_name_is_dns_resolution() {
        // `.invalid` never resolves (RFC 6761).
        let probe = DnsProbe::new("runward-probe-test.invalid").unwrap();
        let outcome = probe.check(&ctx()).await;
        assert_eq!(outcome.status, Status::Fail);
        assert_eq!(
            outcome.outage,
            Some(OutageClass::DnsResolution),
            "{outcome:?}"
        );
    }

    #[test]
    fn rejects_urls_as_host_names() {
        assert!(DnsProbe::new("https://example.com").is_err());
        assert!(DnsProbe::new("").is_err());
        let params: Params = toml::from_str("host = \"example.com\"").unwrap();
        assert_eq!(params.min_addresses, 1);
    }
}
