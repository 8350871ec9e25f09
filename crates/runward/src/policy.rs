//! Policies that every network call obeys.
//!
//! [`OutboundPolicy`]: a host allowlist, HTTPS required except on loopback, and an SSRF guard
//! that refuses private, link-local and cloud-metadata addresses unless allowed. The address
//! check runs after DNS resolution, so a host name cannot smuggle in `169.254.169.254`.

use crate::{Error, ErrorKind, Result};
use serde::Deserialize;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Where outbound calls may go. The default allows any public host over HTTPS, plain HTTP
/// and any port on loopback, and refuses private, link-local and metadata addresses.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OutboundPolicy {
    /// Host names allowed; empty allows any. `*.example.com` matches subdomains.
    #[serde(default)]
    pub allow_hosts: Vec<String>,
    /// Allow private (RFC 1918, ULA) and link-local addresses.
    #[serde(default)]
    pub allow_private: bool,
    /// Allow plain `http://` to non-loopback hosts.
    #[serde(default)]
    pub allow_plain_http: bool,
    /// Allow the cloud metadata address (169.254.169.254, fd00:ec2::254). Off unless set.
    #[serde(default)]
    pub allow_metadata: bool,
}

fn denied(message: String) -> Error {
    Error::new(ErrorKind::PolicyDenied, message)
}

impl OutboundPolicy {
    /// Checks a URL's scheme and host before any connection is made.
    pub fn check_url(&self, url: &reqwest::Url) -> Result<()> {
        let host = url
            .host_str()
            .ok_or_else(|| Error::invalid(format!("URL `{}` has no host", redact_url(url))))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let literal: Option<IpAddr> = host.parse().ok();
        let loopback = literal
            .map(|ip| ip.is_loopback())
            .unwrap_or(host.eq_ignore_ascii_case("localhost"));
        match url.scheme() {
            "https" => {}
            "http" if loopback || self.allow_plain_http => {}
            "http" => {
                return Err(denied(format!(
                    "`{}` uses plain http to a non-loopback host: use https, or set \
                     policy.outbound.allow_plain_http = true",
                    redact_url(url)
                )));
            }
            other => {
                return Err(denied(format!(
                    "scheme `{other}` is not allowed: use https"
                )));
            }
        }
        self.check_host(host)?;
        if let Some(ip) = literal {
            self.check_ip(ip)?;
        }
        Ok(())
    }

    /// Checks a host name against the allowlist (loopback names always pass).
    pub fn check_host(&self, host: &str) -> Result<()> {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if self.allow_hosts.is_empty() || host == "localhost" {
            return Ok(());
        }
        if host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()) {
            return Ok(());
        }
        let allowed = self.allow_hosts.iter().any(|pattern| {
            let pattern = pattern.to_ascii_lowercase();
            match pattern.strip_prefix("*.") {
                Some(suffix) => host.ends_with(&format!(".{suffix}")),
                None => host == pattern,
            }
        });
        if allowed {
            Ok(())
        } else {
            Err(denied(format!(
                "host `{host}` is not in policy.outbound.allow_hosts ({})",
                self.allow_hosts.join(", ")
            )))
        }
    }

    /// Checks one resolved address: metadata, private and link-local addresses are refused
    /// unless allowed. Loopback is always allowed.
    pub fn check_ip(&self, ip: IpAddr) -> Result<()> {
        let ip = canonical(ip);
        if ip.is_loopback() {
            return Ok(());
        }
        if is_metadata(ip) {
            if self.allow_metadata {
                return Ok(());
            }
            return Err(denied(format!(
                "address {ip} is a cloud metadata endpoint: refused (set policy.outbound.allow_metadata = true \
                 only if this check really needs it)"
            )));
        }
        if is_private(ip) && !self.allow_private {
            return Err(denied(format!(
                "address {ip} is private or link-local: refused (set policy.outbound.allow_private = true \
                 to allow internal hosts)"
            )));
        }
        if ip.is_unspecified() || ip.is_multicast() {
            return Err(denied(format!("address {ip} is not a valid destination")));
        }
        Ok(())
    }
}

/// Maps IPv4-mapped IPv6 addresses to IPv4 so the checks see the real target.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

fn is_metadata(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4 == Ipv4Addr::new(169, 254, 169, 254) || v4 == Ipv4Addr::new(100, 100, 100, 200)
        }
        IpAddr::V6(v6) => v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254),
    }
}

fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_private()
                || v4.is_link_local()
                || v4.octets()[0] == 100 && (v4.octets()[1] & 0xC0) == 64 // 100.64.0.0/10 CGNAT
                || v4.octets()[0] == 0
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link-local
        }
    }
}

/// A URL with its user info and query removed, safe to show in outputs.
pub fn redact_url(url: &reqwest::Url) -> String {
    let mut clean = url.clone();
    let _ = clean.set_username("");
    let _ = clean.set_password(None);
    if clean.query().is_some() {
        clean.set_query(Some("redacted"));
    }
    clean.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> reqwest::Url {
        s.parse().unwrap()
    }

    #[test]
    fn https_required_except_loopback() {
        let p = OutboundPolicy::default();
        assert!(p.check_url(&url("http://127.0.0.1:9/x")).is_ok());
        assert!(p.check_url(&url("http://localhost:9/x")).is_ok());
        let err = p.check_url(&url("http://example.com/x")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PolicyDenied);
        assert!(err.to_string().contains("allow_plain_http"));
        assert!(p.check_url(&url("https://example.com/x")).is_ok());
    }

    #[test]
    fn metadata_and_private_refused() {
        let p = OutboundPolicy::default();
        for bad in [
            "169.254.169.254",
            "10.1.2.3",
            "192.168.0.1",
            "172.16.5.5",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:169.254.169.254",
        ] {
            let ip: IpAddr = bad.parse().unwrap();
            assert_eq!(
                p.check_ip(ip).unwrap_err().kind(),
                ErrorKind::PolicyDenied,
                "{bad}"
            );
        }
        assert!(p.check_ip("8.8.8.8".parse().unwrap()).is_ok());
        assert!(p.check_ip("::1".parse().unwrap()).is_ok());
        let open = OutboundPolicy {
            allow_private: true,
            ..Default::default()
        };
        assert!(open.check_ip("10.1.2.3".parse().unwrap()).is_ok());
        assert!(open.check_ip("169.254.169.254".parse().unwrap()).is_err());
    }

    #[test]
    fn allowlist_matches_subdomains() {
        let p = OutboundPolicy {
            allow_hosts: vec!["*.example.com".into(), "api.test".into()],
            ..Default::default()
        };
        assert!(p.check_host("a.example.com").is_ok());
        assert!(p.check_host("api.test").is_ok());
        assert!(p.check_host("example.com.evil").is_err());
        assert!(p.check_host("localhost").is_ok());
    }

    #[test]
    fn redacts_credentials_and_query() {
        let shown = redact_url(&url("https://user:pw@example.com/x?token=abc"));
        assert!(!shown.contains("pw") && !shown.contains("abc"), "{shown}");
    }
}
