//! TLS to a device's own web server (`scheme=https` sessions).
//!
//! Printers serve certificates they made themselves, for names nobody
//! controls (often their factory host name or a bare address): no CA signs
//! them, so checking a chain or a name would refuse every device. This
//! configuration therefore accepts the device's certificate whatever it is,
//! and the device's identity is checked another way: over SNMP, before each
//! connection, against the serial the session was opened for
//! ([`super::identity`]). The handshake's signatures are still checked
//! against the certificate shown, so the TLS session is with whoever holds
//! that certificate's key. This configuration is used for devices only: the
//! cloud link keeps its own trust (pins, a CA or the system's roots).

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use std::sync::{Arc, OnceLock};

/// Accepts any certificate: see the module's words on why.
#[derive(Debug)]
struct DeviceCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for DeviceCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

fn build() -> Result<Arc<ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let algorithms = provider.signature_verification_algorithms;
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(DeviceCertificate { algorithms }))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The client configuration for devices, made once per process.
pub fn config() -> Result<Arc<ClientConfig>, String> {
    static CONFIG: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
    CONFIG.get_or_init(build).clone()
}
