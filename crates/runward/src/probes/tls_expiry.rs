//! `tls`: connect with TLS, read the server's leaf certificate and check its expiry.
//!
//! The chain is verified against the platform's roots, or the roots in `ca_file`; with
//! `insecure_skip_verify` the probe only reads dates. The leaf is captured even when
//! verification fails, so an expired certificate is reported with its date, not just as a
//! handshake error.

use super::BuildContext;
use super::tcp::{connect, soft_deadline};
use crate::health::{CheckContext, DependencyState, OutageClass, Outcome, Probe};
use crate::policy::OutboundPolicy;
use crate::{Error, Result};
use async_trait::async_trait;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// Days before expiry at which the check warns, unless configured.
pub const DEFAULT_WARN_DAYS: u32 = 14;

/// The parameters of a `tls` check.
///
/// ```toml
/// [[checks]]
/// name = "api-certificate"
/// kind = "tls"
/// host = "api.example.com"
/// warn_days = 21
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The host to connect to.
    pub host: String,
    /// The port (default 443).
    #[serde(default = "default_port")]
    pub port: u16,
    /// The name sent in SNI and verified in the certificate (default: `host`).
    #[serde(default)]
    pub server_name: Option<String>,
    /// Warn when the certificate expires within this many days (default 14).
    #[serde(default = "default_warn_days")]
    pub warn_days: u32,
    /// A PEM file of root certificates to trust instead of the platform's.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Skip chain and name verification and only read the dates.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

fn default_port() -> u16 {
    443
}

fn default_warn_days() -> u32 {
    DEFAULT_WARN_DAYS
}

/// Checks a server certificate's validity; observes the days left as `daysLeft`.
pub struct TlsExpiryProbe {
    host: String,
    port: u16,
    server_name: ServerName<'static>,
    warn_days: u32,
    verifier: Arc<dyn ServerCertVerifier>,
    verify: bool,
    policy: Arc<OutboundPolicy>,
}

impl std::fmt::Debug for TlsExpiryProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsExpiryProbe")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("server_name", &self.server_name)
            .field("warn_days", &self.warn_days)
            .field("verify", &self.verify)
            .finish()
    }
}

impl TlsExpiryProbe {
    /// A probe for `host:port`, verifying against the platform's roots.
    pub fn new(host: impl Into<String>, port: u16, policy: Arc<OutboundPolicy>) -> Result<Self> {
        let host = host.into();
        let server_name = server_name(&host)?;
        Ok(TlsExpiryProbe {
            host,
            port,
            server_name,
            warn_days: DEFAULT_WARN_DAYS,
            verifier: crate::tls::platform_verifier()?,
            verify: true,
            policy,
        })
    }

    /// Sends and verifies `name` instead of the host.
    pub fn server_name(mut self, name: &str) -> Result<Self> {
        self.server_name = server_name(name)?;
        Ok(self)
    }

    /// Warns when fewer than `days` are left.
    pub fn warn_days(mut self, days: u32) -> Self {
        self.warn_days = days;
        self
    }

    /// Trusts only the roots in this PEM file.
    pub fn ca_file(mut self, path: &std::path::Path) -> Result<Self> {
        self.verifier = crate::tls::verifier_from_ca_file(path)?;
        self.verify = true;
        Ok(self)
    }

    /// Skips chain and name verification: the probe then only reads the dates.
    pub fn insecure_skip_verify(mut self) -> Self {
        self.verifier = Arc::new(crate::tls::AcceptAnyCert::new());
        self.verify = false;
        self
    }

    /// Builds the probe from a check table.
    pub fn from_params(params: Params, ctx: &BuildContext) -> Result<Self> {
        if params.insecure_skip_verify && params.ca_file.is_some() {
            return Err(Error::config(
                "`ca_file` and `insecure_skip_verify` are both set: keep one",
            ));
        }
        let mut probe = TlsExpiryProbe::new(params.host, params.port, ctx.outbound.clone())?
            .warn_days(params.warn_days);
        if let Some(name) = params.server_name {
            probe = probe.server_name(&name)?;
        }
        if let Some(path) = params.ca_file {
            probe = probe.ca_file(&ctx.resolve(&path))?;
        }
        if params.insecure_skip_verify {
            probe = probe.insecure_skip_verify();
        }
        Ok(probe)
    }

    fn target(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

fn server_name(name: &str) -> Result<ServerName<'static>> {
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(bare.to_owned())
        .map_err(|_| Error::config(format!("`{name}` is not a valid TLS server name")))
}

/// Wraps a verifier and keeps the leaf certificate the server presented.
#[derive(Debug)]
struct Capture {
    inner: Arc<dyn ServerCertVerifier>,
    leaf: Mutex<Option<Vec<u8>>>,
}

impl ServerCertVerifier for Capture {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        *self.leaf.lock().unwrap_or_else(|e| e.into_inner()) = Some(end_entity.as_ref().to_vec());
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// What the probe read from a certificate.
#[derive(Debug, Clone)]
struct CertFacts {
    subject: String,
    not_before: i64,
    not_after: i64,
    not_after_text: String,
}

fn read_cert(der: &[u8]) -> std::result::Result<CertFacts, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| format!("cannot parse the certificate: {e}"))?;
    let validity = cert.validity();
    Ok(CertFacts {
        subject: cert.subject().to_string(),
        not_before: validity.not_before.timestamp(),
        not_after: validity.not_after.timestamp(),
        not_after_text: validity.not_after.to_string(),
    })
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// Judges a certificate's dates at `now`; `handshake_error` is the verification failure, if any.
fn assess(
    target: &str,
    facts: &CertFacts,
    now: i64,
    warn_days: u32,
    handshake_error: Option<String>,
) -> Outcome {
    let seconds_left = facts.not_after - now;
    let days_left = (seconds_left as f64 / 86_400.0 * 10.0).floor() / 10.0;
    let renew = format!("renew the certificate of {target}");
    let outcome = if seconds_left <= 0 {
        let ago = (-seconds_left) / 86_400;
        Outcome::outage(
            OutageClass::Tls,
            format!(
                "the certificate of {target} expired {ago} day(s) ago ({})",
                facts.not_after_text
            ),
        )
        .with_remediation(renew)
    } else if facts.not_before > now {
        Outcome::outage(
            OutageClass::Tls,
            format!("the certificate of {target} is not valid yet"),
        )
        .with_remediation("check the server's clock and the certificate's dates")
    } else if let Some(error) = handshake_error {
        Outcome::outage(
            OutageClass::Tls,
            format!("the certificate of {target} failed verification: {error}"),
        )
        .with_remediation("check the certificate chain and name, or set `ca_file`")
    } else if seconds_left < i64::from(warn_days) * 86_400 {
        Outcome::warn(format!(
            "the certificate of {target} expires in {} day(s) ({})",
            seconds_left / 86_400,
            facts.not_after_text
        ))
        .with_remediation(renew)
        .with_state(DependencyState::Ready)
    } else {
        Outcome::pass().with_state(DependencyState::Ready)
    };
    outcome
        .with_observed("daysLeft", days_left, Some("days"))
        .with_detail("notAfter", facts.not_after_text.clone())
        .with_detail("subject", facts.subject.clone())
}

#[async_trait]
impl Probe for TlsExpiryProbe {
    async fn check(&self, ctx: &CheckContext) -> Outcome {
        let deadline = soft_deadline(ctx);
        let target = self.target();
        let stream = match connect(&self.policy, &self.host, self.port, deadline).await {
            Ok(stream) => stream,
            Err(err) => return err.outcome(&target),
        };
        let capture = Arc::new(Capture {
            inner: self.verifier.clone(),
            leaf: Mutex::new(None),
        });
        let config = crate::tls::config_with_verifier(capture.clone());
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let handshake = connector.connect(self.server_name.clone(), stream);
        let result = match tokio::time::timeout_at(deadline.into(), handshake).await {
            Ok(result) => result,
            Err(_) => {
                return Outcome::outage(
                    OutageClass::Timeout,
                    format!("no TLS handshake with {target} before the deadline"),
                );
            }
        };
        let leaf = capture
            .leaf
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let handshake_error = match &result {
            Ok(_) => None,
            Err(err) => Some(
                match err
                    .get_ref()
                    .and_then(|e| e.downcast_ref::<rustls::Error>())
                {
                    Some(tls) => tls.to_string(),
                    None => err.to_string(),
                },
            ),
        };
        if let Ok(mut tls) = result {
            // Close politely; the result does not matter.
            let _ = tokio::time::timeout_at(
                deadline.into(),
                tokio::io::AsyncWriteExt::shutdown(&mut tls),
            )
            .await;
        }
        let Some(der) = leaf else {
            let error =
                handshake_error.unwrap_or_else(|| "the server sent no certificate".to_owned());
            return Outcome::outage(
                OutageClass::Tls,
                format!("TLS handshake with {target} failed: {error}"),
            )
            .with_remediation(
                "check that the port speaks TLS and the server's certificate configuration",
            );
        };
        match read_cert(&der) {
            Ok(facts) => assess(&target, &facts, now_unix(), self.warn_days, handshake_error),
            Err(text) => Outcome::outage(OutageClass::Tls, format!("{target}: {text}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::Status;

    fn facts(not_before: i64, not_after: i64) -> CertFacts {
        CertFacts {
            subject: "CN=x".into(),
            not_before,
            not_after,
            not_after_text: "then".into(),
        }
    }

    #[test]
    fn dates_map_to_statuses() {
        let now = 1_700_000_000;
        let day = 86_400;
        let ok = assess("h:443", &facts(now - day, now + 60 * day), now, 14, None);
        assert_eq!(ok.status, Status::Pass);
        assert_eq!(ok.observed.unwrap().value, serde_json::json!(60.0));
        let soon = assess("h:443", &facts(now - day, now + 3 * day), now, 14, None);
        assert_eq!(soon.status, Status::Warn);
        assert!(soon.output.unwrap().contains("expires in 3 day(s)"));
        let expired = assess(
            "h:443",
            &facts(now - 90 * day, now - 2 * day),
            now,
            14,
            Some("expired".into()),
        );
        assert_eq!(expired.status, Status::Fail);
        assert_eq!(expired.outage, Some(OutageClass::Tls));
        assert!(expired.output.unwrap().contains("expired 2 day(s) ago"));
        let future = assess("h:443", &facts(now + day, now + 90 * day), now, 14, None);
        assert_eq!(future.status, Status::Fail);
        let untrusted = assess(
            "h:443",
            &facts(now - day, now + 90 * day),
            now,
            14,
            Some("UnknownIssuer".into()),
        );
        assert_eq!(untrusted.outage, Some(OutageClass::Tls));
    }

    #[test]
    fn reads_a_generated_certificate() {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let facts = read_cert(cert.cert.der()).unwrap();
        assert!(facts.not_after > now_unix());
        assert!(read_cert(b"garbage").is_err());
    }

    #[test]
    fn params_default_and_conflict() {
        let params: Params = toml::from_str("host = \"example.com\"").unwrap();
        assert_eq!((params.port, params.warn_days), (443, DEFAULT_WARN_DAYS));
        let both: Params =
            toml::from_str("host = \"a\"\nca_file = \"x.pem\"\ninsecure_skip_verify = true")
                .unwrap();
        let ctx = BuildContext {
            base_dir: ".".into(),
            outbound: Default::default(),
        };
        assert!(TlsExpiryProbe::from_params(both, &ctx).is_err());
    }
}
