//! Real TLS 1.3 handshakes between embedded-tls with the cloud verifier and
//! a rustls server (what `dca-cloud` serves with) on loopback, with
//! certificates made here: pins, key rotation, a dealer's CA, the forged
//! chain embedded-tls's own checker lets through, and a certificate
//! replayed without its key.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use cloud_tls::{Certificate, CloudVerifier, Provider, Refusal, Trust};
use embedded_io_adapters::std::FromStd;
use embedded_tls::blocking::{TlsConnection, TlsContext};
use embedded_tls::{Aes128GcmSha256, SignatureScheme, TlsConfig};
use rand_core::OsRng;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// What a server presents: its chain (its own certificate first) and the
/// key it signs the handshake with.
struct Presented {
    chain: Vec<Vec<u8>>,
    key: KeyPair,
}

fn params(names: &[&str], cn: &str, ca: bool) -> CertificateParams {
    let mut p =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = if ca {
        IsCa::Ca(BasicConstraints::Unconstrained)
    } else {
        IsCa::ExplicitNoCa
    };
    p
}

/// A dealer's CA.
struct Ca {
    der: Vec<u8>,
    issuer: Issuer<'static, KeyPair>,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let p = params(&[], name, true);
    let der = p.self_signed(&key).unwrap().der().to_vec();
    Ca {
        der,
        issuer: Issuer::new(p, key),
    }
}

fn p256() -> KeyPair {
    KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap()
}

fn self_signed(key: KeyPair) -> Presented {
    let cert = params(&["cloud.example"], "cloud", false)
        .self_signed(&key)
        .unwrap();
    Presented {
        chain: vec![cert.der().to_vec()],
        key,
    }
}

/// A server certificate for `host` that `issuer` signs.
fn issued(host: &str, issuer: &Issuer<'_, KeyPair>) -> Presented {
    let key = p256();
    let cert = params(&[host], host, false)
        .signed_by(&key, issuer)
        .unwrap();
    Presented {
        chain: vec![cert.der().to_vec()],
        key,
    }
}

fn pin_of(p: &Presented) -> [u8; 32] {
    Certificate::parse(&p.chain[0]).unwrap().spki_pin()
}

/// Always presents one certificate with one key, whether or not they
/// belong together (rustls's own builder would refuse a mismatch, and a
/// replay is exactly that).
#[derive(Debug)]
struct Fixed(Arc<CertifiedKey>);

impl ResolvesServerCert for Fixed {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// A rustls server on loopback for one connection: answers "pong!" to
/// "ping!". Returns its port.
fn serve(chain: &[Vec<u8>], key: &KeyPair) -> (u16, std::thread::JoinHandle<()>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let signing = provider
        .key_provider
        .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            key.serialize_der(),
        )))
        .unwrap();
    let certs = chain
        .iter()
        .map(|c| CertificateDer::from(c.clone()))
        .collect();
    let resolver = Fixed(Arc::new(CertifiedKey::new(certs, signing)));
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (socket, _) = listener.accept().unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let conn = rustls::ServerConnection::new(config).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, socket);
        let mut ping = [0u8; 5];
        if tls.read_exact(&mut ping).is_ok() && &ping == b"ping!" {
            let _ = tls.write_all(b"pong!");
            let _ = tls.flush();
        }
    });
    (port, server)
}

/// The device's side: connects with `trust` (naming `host` when given),
/// sends "ping!" and wants "pong!". The record buffers are the sizes the
/// firmware uses.
fn connect(server: &Presented, trust: Trust<'_>, host: Option<&str>) -> Result<(), Refusal> {
    let (port, handle) = serve(&server.chain, &server.key);
    let socket = TcpStream::connect(("127.0.0.1", port)).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let (mut rx, mut tx) = (vec![0u8; 16_640], vec![0u8; 1024]);
    let mut config = TlsConfig::new();
    if let Some(host) = host {
        config = config.with_server_name(host);
    }
    let mut tls: TlsConnection<_, Aes128GcmSha256> =
        TlsConnection::new(FromStd::new(socket), &mut rx, &mut tx);
    let mut verifier = CloudVerifier::new(trust);
    let opened = tls.open(TlsContext::new(
        &config,
        Provider {
            rng: OsRng,
            verifier: &mut verifier,
        },
    ));
    let result = match opened {
        Err(e) => Err(verifier
            .refusal()
            .unwrap_or_else(|| panic!("refused for no reason: {e:?}"))),
        Ok(()) if !verifier.is_verified() => {
            Err(verifier.refusal().unwrap_or(Refusal::NoCertificate))
        }
        Ok(()) => {
            tls.write(b"ping!").unwrap();
            tls.flush().unwrap();
            let mut pong = [0u8; 5];
            let n = tls.read(&mut pong).unwrap();
            assert_eq!(&pong[..n], b"pong!");
            Ok(())
        }
    };
    drop(tls);
    handle.join().unwrap();
    result
}

#[test]
fn a_pinned_key_is_trusted_and_any_other_refused() {
    let cloud = self_signed(p256());
    let pin = pin_of(&cloud);
    assert_eq!(connect(&cloud, Trust::Pins(&[pin]), None), Ok(()));
    // One of several pins suffices (a planned rotation).
    assert_eq!(connect(&cloud, Trust::Pins(&[[7; 32], pin]), None), Ok(()));
    assert_eq!(
        connect(&cloud, Trust::Pins(&[[7; 32]]), None),
        Err(Refusal::PinMismatch)
    );
}

#[test]
fn a_certificate_renewed_with_the_same_key_keeps_its_pin() {
    let key = p256();
    let first = params(&["cloud.example"], "cloud 2026", false)
        .self_signed(&key)
        .unwrap();
    let renewed = params(&["cloud.example", "cloud2.example"], "cloud 2027", false)
        .self_signed(&key)
        .unwrap();
    assert_ne!(first.der(), renewed.der());
    let pin = Certificate::parse(first.der()).unwrap().spki_pin();
    let server = Presented {
        chain: vec![renewed.der().to_vec()],
        key,
    };
    assert_eq!(connect(&server, Trust::Pins(&[pin]), None), Ok(()));
}

#[test]
fn a_certificate_replayed_without_its_key_is_refused() {
    // The attacker has the cloud's certificate (it is public) and pins
    // match, but the handshake is signed with the attacker's own key.
    let cloud = self_signed(p256());
    let replay = Presented {
        chain: cloud.chain.clone(),
        key: p256(),
    };
    assert_eq!(
        connect(&replay, Trust::Pins(&[pin_of(&cloud)]), None),
        Err(Refusal::BadHandshakeSignature)
    );
}

#[test]
fn a_dealer_ca_is_trusted_directly_and_through_a_sub_ca() {
    let root = ca("Dealer Root CA");
    let direct = issued("cloud.example", &root.issuer);
    assert_eq!(
        connect(&direct, Trust::Ca(&root.der), Some("cloud.example")),
        Ok(())
    );
    // Root -> sub-CA -> server, the sub-CA sent in the chain.
    let sub_key = p256();
    let sub_params = params(&[], "Dealer Issuing CA", true);
    let sub = sub_params.signed_by(&sub_key, &root.issuer).unwrap();
    let sub_issuer = Issuer::new(sub_params, sub_key);
    let mut server = issued("cloud.example", &sub_issuer);
    server.chain.push(sub.der().to_vec());
    assert_eq!(
        connect(&server, Trust::Ca(&root.der), Some("cloud.example")),
        Ok(())
    );
}

#[test]
fn a_chain_through_a_certificate_that_is_not_a_ca_is_refused() {
    // A customer's ordinary certificate from the dealer's CA (CA:FALSE)
    // signs a forged cloud certificate: embedded-tls's rustpki accepts this.
    let root = ca("Dealer Root CA");
    let ordinary_key = p256();
    let ordinary_params = params(&["printer.customer.example"], "printer", false);
    let ordinary = ordinary_params
        .signed_by(&ordinary_key, &root.issuer)
        .unwrap();
    let ordinary_issuer = Issuer::new(ordinary_params, ordinary_key);
    let mut forged = issued("cloud.example", &ordinary_issuer);
    forged.chain.push(ordinary.der().to_vec());
    assert_eq!(
        connect(&forged, Trust::Ca(&root.der), Some("cloud.example")),
        Err(Refusal::IssuerNotCa)
    );
}

#[test]
fn another_ca_or_another_host_is_refused() {
    let root = ca("Dealer Root CA");
    let other = ca("Someone Else's CA");
    let server = issued("cloud.example", &other.issuer);
    assert_eq!(
        connect(&server, Trust::Ca(&root.der), Some("cloud.example")),
        Err(Refusal::UntrustedChain)
    );
    // The dealer's CA issued it, but the connection named no host.
    let right = issued("cloud.example", &root.issuer);
    assert_eq!(
        connect(&right, Trust::Ca(&root.der), None),
        Err(Refusal::WrongHost)
    );
    // The dealer's CA issued it, but for another host.
    let elsewhere = issued("shop.example", &root.issuer);
    assert_eq!(
        connect(&elsewhere, Trust::Ca(&root.der), Some("cloud.example")),
        Err(Refusal::WrongHost)
    );
}

#[test]
fn a_handshake_signature_without_a_trusted_certificate_verifies_nothing() {
    // embedded-tls finishes a handshake that never carried a certificate
    // without asking the verifier: then it must not say "verified"; and a
    // CertificateVerify that arrives without a certificate is refused.
    let mut verifier = CloudVerifier::new(Trust::Pins(&[[0; 32]]));
    assert!(!verifier.is_verified());
    assert_eq!(
        verifier.check_handshake_signature(SignatureScheme::EcdsaSecp256r1Sha256, &[0x30, 0]),
        Err(Refusal::OutOfOrder)
    );
    assert!(!verifier.is_verified());
}

#[test]
fn only_ecdsa_p256_with_sha256_is_accepted() {
    let cloud = self_signed(p256());
    let pins = [pin_of(&cloud)];
    let mut verifier = CloudVerifier::new(Trust::Pins(&pins));
    verifier
        .check_chain(&[cloud.chain[0].as_slice()], [0; 32])
        .unwrap();
    assert_eq!(
        verifier.check_handshake_signature(SignatureScheme::Ed25519, &[0; 64]),
        Err(Refusal::NotP256)
    );
    assert!(!verifier.is_verified());
    // A pinned P-384 key is still one this device cannot verify with.
    let p384 = self_signed(KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap());
    let pins = [pin_of(&p384)];
    let mut verifier = CloudVerifier::new(Trust::Pins(&pins));
    assert_eq!(
        verifier.check_chain(&[p384.chain[0].as_slice()], [0; 32]),
        Err(Refusal::NotP256)
    );
}

#[test]
fn the_pin_is_the_digest_of_the_key_as_the_cloud_prints_it() {
    // dca-cloud prints SHA-256 of the key's SubjectPublicKeyInfo; the
    // device computes it from the certificate: the two must agree.
    use rcgen::PublicKeyData;
    use sha2::{Digest, Sha256};
    let key = p256();
    let expected: [u8; 32] = Sha256::digest(key.subject_public_key_info()).into();
    assert_eq!(pin_of(&self_signed(key)), expected);
}
