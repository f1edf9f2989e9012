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
    /// SHA-256 of the leaf certificate (DER), lowercase hex: what agents pin.
    pub fingerprint: String,
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
    let generated = rcgen::generate_simple_self_signed(names.to_vec())
        .map_err(|e| format!("cannot generate a self-signed certificate: {e}"))?;
    std::fs::write(&cert, generated.cert.pem())
        .map_err(|e| format!("cannot write {}: {e}", cert.display()))?;
    write_private(&key, generated.signing_key.serialize_pem().as_bytes())?;
    Ok((cert, key, true))
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
    let config =
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
    Ok(Identity {
        config: Arc::new(config),
        fingerprint,
        source,
    })
}
