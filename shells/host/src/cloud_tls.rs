//! Whom the agent trusts to be its cloud: pins (the SHA-256 of the server's
//! public key, or of its whole certificate: `dca-cloud` prints both), a CA
//! file, or the system's roots. Several pins let a cloud roll its key over:
//! the agent is given the next key's pin before the cloud switches. The
//! firmware pins keys only; the host takes either, so one pin provisions
//! both.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// The server's key (SHA-256 of its SubjectPublicKeyInfo) or exactly
    /// this certificate (its SHA-256), whoever signed it: any of these.
    Pins(Vec<[u8; 32]>),
    /// Certificates chaining to the CA certificates in this PEM file.
    CaFile(PathBuf),
    /// Certificates chaining to the operating system's roots.
    System,
}

/// Parses a SHA-256 fingerprint: 64 hex digits, colons and case ignored, an
/// optional `sha256/` or `sha256:` prefix allowed.
pub fn parse_pin(text: &str) -> Result<[u8; 32], String> {
    let t = text.trim();
    let t = t
        .strip_prefix("sha256/")
        .or_else(|| t.strip_prefix("sha256:"))
        .unwrap_or(t);
    let digits: String = t.chars().filter(|c| *c != ':').collect();
    let bytes = hex::decode(&digits).map_err(|e| format!("pin {text:?} is not hex: {e}"))?;
    bytes
        .try_into()
        .map_err(|_| format!("pin {text:?} is not a SHA-256 fingerprint (64 hex digits)"))
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The words that start a pin mismatch's error, so the link can tell it
/// from other TLS failures.
pub const PIN_MISMATCH: &str = "the server's key sha256";

/// Accepts a certificate whose key, or which itself, is pinned; signatures
/// of the handshake are still checked against it, so only the holder of
/// its key can pass.
#[derive(Debug)]
struct PinVerifier {
    pins: Vec<[u8; 32]>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let seen: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
        let key: Option<[u8; 32]> = webpki::EndEntityCert::try_from(end_entity)
            .ok()
            .map(|c| Sha256::digest(c.subject_public_key_info().as_ref()).into());
        if self.pins.iter().any(|p| *p == seen || Some(*p) == key) {
            Ok(ServerCertVerified::assertion())
        } else {
            let pinned: Vec<String> = self.pins.iter().map(hex::encode).collect();
            Err(rustls::Error::General(format!(
                "{PIN_MISMATCH} {} (certificate sha256 {}) is not the pinned {}",
                key.map_or_else(|| "unreadable".to_string(), hex::encode),
                hex::encode(seen),
                pinned.join(" nor ")
            )))
        }
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

fn roots_from_file(path: &Path) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read CA certificates from {}: {e}", path.display()))?;
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(format!("no usable CA certificate in {}", path.display()));
    }
    Ok(roots)
}

fn system_roots() -> Result<RootCertStore, String> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        let why = found
            .errors
            .first()
            .map_or_else(String::new, |e| format!(": {e}"));
        return Err(format!(
            "no system CA certificates found{why}; give --ca or --pin"
        ));
    }
    Ok(roots)
}

pub fn client_config(trust: &Trust) -> Result<Arc<ClientConfig>, String> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let config = match trust {
        Trust::Pins(pins) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinVerifier {
                pins: pins.clone(),
                algorithms: provider.signature_verification_algorithms,
            }))
            .with_no_client_auth(),
        Trust::CaFile(path) => builder
            .with_root_certificates(roots_from_file(path)?)
            .with_no_client_auth(),
        Trust::System => builder
            .with_root_certificates(system_roots()?)
            .with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_parse_in_the_usual_spellings() {
        let hex64 = "ab".repeat(32);
        let colons = vec!["AB"; 32].join(":");
        assert_eq!(parse_pin(&hex64), Ok([0xab; 32]));
        assert_eq!(parse_pin(&colons), Ok([0xab; 32]));
        assert_eq!(parse_pin(&format!("sha256/{hex64}")), Ok([0xab; 32]));
        assert!(parse_pin("abcd").unwrap_err().contains("64 hex digits"));
        assert!(parse_pin("zz").unwrap_err().contains("not hex"));
    }

    /// A key pin (what the firmware is provisioned with) and a certificate
    /// pin both admit the server; any other pin refuses it.
    #[test]
    fn a_pin_names_the_key_or_the_certificate() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["cloud.example".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let der = cert.der().clone();
        let key_pin: [u8; 32] =
            Sha256::digest(rcgen::PublicKeyData::subject_public_key_info(&key)).into();
        let cert_pin: [u8; 32] = Sha256::digest(der.as_ref()).into();
        let verify = |pins: &[[u8; 32]]| {
            PinVerifier {
                pins: pins.to_vec(),
                algorithms: provider().signature_verification_algorithms,
            }
            .verify_server_cert(
                &der,
                &[],
                &ServerName::try_from("cloud.example").unwrap(),
                &[],
                UnixTime::now(),
            )
        };
        assert!(verify(&[key_pin]).is_ok());
        assert!(verify(&[cert_pin]).is_ok());
        // A rollover: the old key's pin and the next one's, in either order.
        assert!(verify(&[[0xcd; 32], key_pin]).is_ok());
        assert!(verify(&[key_pin, [0xcd; 32]]).is_ok());
        let refused = verify(&[[0xab; 32], [0xcd; 32]]).unwrap_err().to_string();
        assert!(refused.contains(&hex::encode(key_pin)), "{refused}");
        assert!(refused.contains(PIN_MISMATCH), "{refused}");
        assert!(refused.contains(&hex::encode([0xcd; 32])), "{refused}");
    }
}
