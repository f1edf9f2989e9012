//! The server's certificate: from the operator's files, or self-signed on
//! first start and kept beside the database so that agents' pins stay valid
//! across restarts.

use crate::secret;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug)]
pub struct Identity {
    pub config: Arc<ServerConfig>,
    /// SHA-256 of the leaf certificate (DER), lowercase hex: what the host
    /// agent's `--pin` takes.
    pub fingerprint: String,
    /// SHA-256 of the leaf's public key (its SubjectPublicKeyInfo),
    /// lowercase hex: what devices pin, since it survives a renewal with
    /// the same key.
    pub key_pin: String,
    /// Where the certificate came from, for the start-up banner.
    pub source: String,
}

fn load(
    cert: &Path,
    key: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read certificates from {}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("no certificate in {}", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("cannot read private key from {}: {e}", key.display()))?;
    Ok((certs, key))
}

/// Generates a self-signed certificate for `names` into `dir` unless one is
/// there already.
fn self_signed(dir: &Path, names: &[String]) -> Result<(PathBuf, PathBuf, bool), String> {
    let cert = dir.join("dca-cloud-cert.pem");
    let key = dir.join("dca-cloud-key.pem");
    if cert.exists() && key.exists() {
        return Ok((cert, key, false));
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let (pem, signing_key) = generate(names)?;
    std::fs::write(&cert, pem).map_err(|e| format!("cannot write {}: {e}", cert.display()))?;
    write_private(&key, signing_key.serialize_pem().as_bytes())?;
    Ok((cert, key, true))
}

/// A self-signed certificate (PEM) for `names` and its key: ECDSA P-256,
/// the one kind every agent can verify, the firmware's embedded-tls
/// included (it cannot do RSA without an allocator).
fn generate(names: &[String]) -> Result<(String, rcgen::KeyPair), String> {
    let failed = |e: rcgen::Error| format!("cannot generate a self-signed certificate: {e}");
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(failed)?;
    let cert = rcgen::CertificateParams::new(names.to_vec())
        .and_then(|params| params.self_signed(&key))
        .map_err(failed)?;
    Ok((cert.pem(), key))
}

/// SHA-256 of a certificate's SubjectPublicKeyInfo, lowercase hex.
fn key_pin(cert: &CertificateDer<'_>) -> Result<String, String> {
    let parsed = webpki::EndEntityCert::try_from(cert)
        .map_err(|e| format!("the certificate cannot be read: {e:?}"))?;
    Ok(secret::sha256_hex(
        parsed.subject_public_key_info().as_ref(),
    ))
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The server's TLS identity: `cert` and `key` when given, else the
/// self-signed pair in `dir` (generated for `names` on first start).
pub fn identity(
    cert: Option<&Path>,
    key: Option<&Path>,
    dir: &Path,
    names: &[String],
) -> Result<Identity, String> {
    let (cert_path, key_path, source) = match (cert, key) {
        (Some(c), Some(k)) => (
            c.to_path_buf(),
            k.to_path_buf(),
            format!("certificate {}", c.display()),
        ),
        (None, None) => {
            let (c, k, fresh) = self_signed(dir, names)?;
            let how = if fresh { "generated" } else { "kept" };
            let source = format!("self-signed certificate {how} at {}", c.display());
            (c, k, source)
        }
        _ => return Err("--cert and --key go together".into()),
    };
    let (certs, key) = load(&cert_path, &key_path)?;
    let fingerprint = secret::sha256_hex(&certs[0]);
    let key_pin = key_pin(&certs[0]).map_err(|e| format!("{}: {e}", cert_path.display()))?;
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| {
                format!(
                    "certificate {} and key {} do not make a TLS identity: {e}",
                    cert_path.display(),
                    key_path.display()
                )
            })?;
    // Devices read a whole TLS record into RAM before decrypting it; records
    // of at most this size let an MFP's agent keep an 8 KiB buffer instead
    // of TLS's 16 KiB. Nothing the cloud sends needs larger ones.
    config.max_fragment_size = Some(MAX_RECORD);
    Ok(Identity {
        config: Arc::new(config),
        fingerprint,
        key_pin,
        source,
    })
}

/// The largest TLS record the cloud sends, header included (firmware's
/// `cloud::TLS_READ` is sized by it).
pub const MAX_RECORD: usize = 8192;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_certificate_is_p256_and_its_pin_is_its_key() {
        let dir = std::env::temp_dir().join(format!("dca-cloud-tls-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let id = identity(None, None, &dir, &["cloud.example".into()]).unwrap();
        let key_pem = std::fs::read_to_string(dir.join("dca-cloud-key.pem")).unwrap();
        let key = rcgen::KeyPair::from_pem(&key_pem).unwrap();
        assert!(key.is_compatible(&rcgen::PKCS_ECDSA_P256_SHA256));
        // The pin read from the certificate is the key's own SPKI digest.
        use rcgen::PublicKeyData;
        assert_eq!(
            id.key_pin,
            secret::sha256_hex(&key.subject_public_key_info())
        );
        assert_ne!(id.key_pin, id.fingerprint);
        // Kept across restarts, and so is the pin.
        let again = identity(None, None, &dir, &["cloud.example".into()]).unwrap();
        assert_eq!(again.key_pin, id.key_pin);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
