//! TLS client setup shared by the network probes: the `ring` crypto provider, the platform's
//! root certificates, extra roots from a PEM file, and a verifier that only reads certificates.

use crate::{Error, ErrorKind, Result};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::path::Path;
use std::sync::{Arc, OnceLock};

/// The `ring` provider every runward TLS connection uses.
///
/// Also installs it as the process default when no default is installed yet, so that other
/// rustls users in the process (reqwest without a preconfigured config) find one.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| {
            let provider = rustls::crypto::ring::default_provider();
            // Fails only when another provider is already the default, which is fine.
            let _ = provider.clone().install_default();
            Arc::new(provider)
        })
        .clone()
}

/// The verifier that trusts the platform's roots, built once per process.
pub(crate) fn platform_verifier() -> Result<Arc<dyn ServerCertVerifier>> {
    static VERIFIER: OnceLock<Result<Arc<rustls_platform_verifier::Verifier>, String>> =
        OnceLock::new();
    VERIFIER
        .get_or_init(|| {
            rustls_platform_verifier::Verifier::new(provider())
                .map(Arc::new)
                .map_err(|e| e.to_string())
        })
        .clone()
        .map(|v| v as Arc<dyn ServerCertVerifier>)
        .map_err(|e| {
            Error::new(
                ErrorKind::Internal,
                format!("cannot load the platform's root certificates: {e}"),
            )
        })
}

/// A client configuration that verifies servers against the platform's roots.
pub(crate) fn client_config() -> Result<Arc<ClientConfig>> {
    static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    if let Some(config) = CONFIG.get() {
        return Ok(config.clone());
    }
    let config = Arc::new(config_with_verifier(platform_verifier()?));
    Ok(CONFIG.get_or_init(|| config).clone())
}

/// A client configuration (TLS 1.2 and 1.3, no client certificate) around `verifier`.
pub(crate) fn config_with_verifier(verifier: Arc<dyn ServerCertVerifier>) -> ClientConfig {
    ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports the default protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth()
}

/// A verifier that trusts only the certificates in the PEM file at `path`.
pub(crate) fn verifier_from_ca_file(path: &Path) -> Result<Arc<dyn ServerCertVerifier>> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path)? {
        roots.add(cert).map_err(|e| {
            Error::config(format!(
                "`ca_file` {} holds a certificate that cannot be a root: {e}",
                path.display()
            ))
        })?;
    }
    let verifier =
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(|e| Error::config(format!("`ca_file` {}: {e}", path.display())))?;
    Ok(verifier)
}

/// Reads every certificate from a PEM file. Errors when it holds none.
pub(crate) fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let bytes = std::fs::read(path)
        .map_err(|e| Error::io(format!("cannot read `ca_file` {}", path.display()), e))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| {
            Error::config(format!(
                "`ca_file` {} is not valid PEM: {e}",
                path.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(Error::config(format!(
            "`ca_file` {} holds no certificate: expected `-----BEGIN CERTIFICATE-----` blocks",
            path.display()
        )));
    }
    Ok(certs)
}

/// A verifier that accepts any certificate chain and name, but still checks handshake
/// signatures. Only for reading a certificate (e.g. its expiry), never for sending data.
#[derive(Debug)]
pub(crate) struct AcceptAnyCert {
    algorithms: WebPkiSupportedAlgorithms,
}

impl AcceptAnyCert {
    /// A new accepting verifier using the process provider's signature algorithms.
    pub(crate) fn new() -> Self {
        AcceptAnyCert {
            algorithms: provider().signature_verification_algorithms,
        }
    }
}

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_config_builds_and_is_shared() {
        let a = client_config().expect("platform roots load");
        let b = client_config().unwrap();
        assert!(Arc::ptr_eq(&a, &b));
    }

    #[test]
    fn ca_file_without_certificates_is_a_config_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let err = verifier_from_ca_file(&path).expect_err("no certificate in the file");
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.to_string().contains("holds no certificate"), "{err}");
    }

    #[test]
    fn ca_file_with_a_self_signed_certificate_builds_a_verifier() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        std::fs::write(&path, cert.cert.pem()).unwrap();
        assert!(verifier_from_ca_file(&path).is_ok());
        assert_eq!(load_certs(&path).unwrap().len(), 1);
    }
}
