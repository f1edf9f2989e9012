//! The firmware's trust in the dealer's cloud, for embedded-tls 0.19.
//!
//! [`CloudVerifier`] decides whether the server is the cloud, in one of two
//! ways ([`Trust`]):
//!
//! - **pins**: the SHA-256 of the server certificate's public key (its
//!   SubjectPublicKeyInfo) must be one of a few the device was provisioned
//!   with. A certificate renewed with the same key keeps working, and a
//!   second pin lets a planned key rotation happen without a firmware
//!   update.
//! - **a CA** (a dealer's own PKI): the chain the server sends must lead
//!   from its certificate to the provisioned CA certificate, every issuer
//!   must be a CA (basicConstraints cA TRUE: embedded-tls's own `rustpki`
//!   accepts a chain in which an ordinary certificate signs the server's),
//!   every signature must hold, and the server's certificate must name the
//!   host the device connects to. Validity dates are not checked: the device
//!   has no trusted clock before it reaches the cloud.
//!
//! Either way the verifier checks the server's CertificateVerify signature
//! itself (without it, anyone holding a copy of the certificate would
//! pass), accepts only ECDSA P-256 with SHA-256, and records success.
//! embedded-tls completes a handshake in which the server never sent a
//! certificate at all, without calling the verifier: **a connection is
//! trusted only if [`CloudVerifier::is_verified`] holds after `open`**.
//!
//! [`Provider`] hands the verifier and a random source to embedded-tls.
#![no_std]

mod x509;

pub use x509::Certificate;

use embedded_tls::{
    Aes128GcmSha256, CertificateEntryRef, CertificateRef, CertificateVerifyRef, CryptoProvider,
    CryptoRngCore, SignatureScheme, TlsError, TlsVerifier,
};
use heapless::String;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};

/// Why the server was not trusted, for the device's log (embedded-tls's
/// own error says little).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A certificate that does not parse as X.509 DER.
    Malformed,
    /// A key or signature other than ECDSA on P-256 with SHA-256.
    NotP256,
    /// The server sent no certificate, or a raw public key.
    NoCertificate,
    /// The server's key is none of the pinned ones.
    PinMismatch,
    /// A certificate's issuer name is not the next certificate's subject.
    NotIssuedBy,
    /// A certificate that is not a CA (basicConstraints) signed another.
    IssuerNotCa,
    /// A certificate's signature does not verify with its issuer's key.
    BadSignature,
    /// The chain does not reach the trusted CA.
    UntrustedChain,
    /// The server's certificate does not name the host connected to (or,
    /// with a CA, no host was given to check).
    WrongHost,
    /// The CertificateVerify signature is not the server key's over this
    /// handshake (a certificate replayed without its key).
    BadHandshakeSignature,
    /// CertificateVerify came without a certificate before it.
    OutOfOrder,
}

impl core::fmt::Display for Refusal {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Refusal::Malformed => "a certificate is not valid DER X.509",
            Refusal::NotP256 => "a key or signature is not ECDSA P-256 with SHA-256",
            Refusal::NoCertificate => "the server sent no certificate",
            Refusal::PinMismatch => "the server's key matches no pin",
            Refusal::NotIssuedBy => "the chain's names do not link up",
            Refusal::IssuerNotCa => "a certificate that is not a CA signed another",
            Refusal::BadSignature => "a certificate's signature does not verify",
            Refusal::UntrustedChain => "the chain does not lead to the trusted CA",
            Refusal::WrongHost => "the server's certificate does not name the cloud's host",
            Refusal::BadHandshakeSignature => {
                "the server did not prove it holds the certificate's key"
            }
            Refusal::OutOfOrder => "the server's handshake came out of order",
        })
    }
}

/// What the device trusts.
#[derive(Debug, Clone, Copy)]
pub enum Trust<'a> {
    /// SHA-256 of the server key's SubjectPublicKeyInfo; any one matches.
    Pins(&'a [[u8; 32]]),
    /// A CA certificate (DER) the server's chain must lead to.
    Ca(&'a [u8]),
}

/// Certificates in a chain at most (embedded-tls's own limit).
const MAX_CHAIN: usize = 16;
/// The longest DNS name.
const MAX_HOST: usize = 253;

/// The TLS 1.3 server context string of CertificateVerify (RFC 8446, 4.4.3).
const SERVER_CONTEXT: &[u8] = b"TLS 1.3, server CertificateVerify";

/// Decides whether the server is the cloud; one per connection.
#[derive(Debug)]
pub struct CloudVerifier<'a> {
    trust: Trust<'a>,
    host: Option<String<MAX_HOST>>,
    /// The server's key and the transcript hash up to its certificate,
    /// kept for its CertificateVerify.
    pending: Option<(VerifyingKey, [u8; 32])>,
    verified: bool,
    refusal: Option<Refusal>,
}

impl<'a> CloudVerifier<'a> {
    pub fn new(trust: Trust<'a>) -> Self {
        CloudVerifier {
            trust,
            host: None,
            pending: None,
            verified: false,
            refusal: None,
        }
    }

    /// True only once the server's certificate was trusted and it proved it
    /// holds the key. Check it after every `open`.
    pub fn is_verified(&self) -> bool {
        self.verified
    }

    /// Why the server was refused, if it was.
    pub fn refusal(&self) -> Option<Refusal> {
        self.refusal
    }

    fn refuse(&mut self, why: Refusal) -> Refusal {
        self.verified = false;
        self.pending = None;
        self.refusal = Some(why);
        why
    }

    /// The server's certificate chain (DER, its own first) and the hash of
    /// the handshake up to and including it.
    pub fn check_chain(&mut self, chain: &[&[u8]], transcript: [u8; 32]) -> Result<(), Refusal> {
        self.verified = false;
        match self.trusted_key(chain) {
            Ok(key) => {
                self.pending = Some((key, transcript));
                Ok(())
            }
            Err(why) => Err(self.refuse(why)),
        }
    }

    fn trusted_key(&self, chain: &[&[u8]]) -> Result<VerifyingKey, Refusal> {
        let leaf_der = chain.first().ok_or(Refusal::NoCertificate)?;
        let leaf = Certificate::parse(leaf_der)?;
        match self.trust {
            Trust::Pins(pins) => {
                let pin = leaf.spki_pin();
                if !pins.iter().any(|p| p == &pin) {
                    return Err(Refusal::PinMismatch);
                }
            }
            Trust::Ca(ca) => {
                let anchor = Certificate::parse(ca)?;
                self.check_path(&leaf, chain, &anchor)?;
                // A CA vouches for many hosts: without the cloud's name to
                // check (the connection must set it), trust nothing.
                let host = self.host.as_ref().ok_or(Refusal::WrongHost)?;
                if !leaf.names_host(host)? {
                    return Err(Refusal::WrongHost);
                }
            }
        }
        leaf.p256_key()
    }

    /// From the leaf up the chain the server sent, each certificate issued
    /// by the next, until one the anchor issued.
    fn check_path(
        &self,
        leaf: &Certificate<'_>,
        chain: &[&[u8]],
        anchor: &Certificate<'_>,
    ) -> Result<(), Refusal> {
        let mut child = *leaf;
        for next in chain.iter().skip(1).take(MAX_CHAIN).map(Some).chain([None]) {
            match child.check_issued_by(anchor) {
                Ok(()) => return Ok(()),
                // Issued by the anchor's name, but not validly: refuse now.
                Err(why) if why != Refusal::NotIssuedBy => return Err(why),
                Err(_) => {}
            }
            let Some(der) = next else {
                return Err(Refusal::UntrustedChain);
            };
            let issuer = Certificate::parse(der)?;
            child.check_issued_by(&issuer)?;
            child = issuer;
        }
        Err(Refusal::UntrustedChain)
    }

    /// The server's CertificateVerify: its key's signature over the
    /// handshake so far.
    pub fn check_handshake_signature(
        &mut self,
        scheme: SignatureScheme,
        signature: &[u8],
    ) -> Result<(), Refusal> {
        let Some((key, transcript)) = self.pending.take() else {
            return Err(self.refuse(Refusal::OutOfOrder));
        };
        if scheme != SignatureScheme::EcdsaSecp256r1Sha256 {
            return Err(self.refuse(Refusal::NotP256));
        }
        let mut signed = [0x20u8; 64 + SERVER_CONTEXT.len() + 1 + 32];
        let (context, rest) = signed[64..].split_at_mut(SERVER_CONTEXT.len());
        context.copy_from_slice(SERVER_CONTEXT);
        if let Some((zero, hash)) = rest.split_first_mut() {
            *zero = 0;
            hash.copy_from_slice(&transcript);
        }
        let checked = Signature::from_der(signature)
            .ok()
            .is_some_and(|s| key.verify(&signed, &s).is_ok());
        if !checked {
            return Err(self.refuse(Refusal::BadHandshakeSignature));
        }
        self.verified = true;
        Ok(())
    }
}

impl TlsVerifier<Aes128GcmSha256> for CloudVerifier<'_> {
    fn set_hostname_verification(&mut self, hostname: &str) -> Result<(), TlsError> {
        let mut host = String::new();
        host.push_str(hostname)
            .map_err(|_| TlsError::InvalidCertificate)?;
        self.host = Some(host);
        Ok(())
    }

    fn verify_certificate(
        &mut self,
        transcript: &Sha256,
        cert: CertificateRef,
    ) -> Result<(), TlsError> {
        let mut chain: heapless::Vec<&[u8], MAX_CHAIN> = heapless::Vec::new();
        for entry in &cert.entries {
            let CertificateEntryRef::X509(der) = entry else {
                self.refuse(Refusal::NoCertificate);
                return Err(TlsError::InvalidCertificate);
            };
            // As many as embedded-tls passes, which is at most MAX_CHAIN.
            let _ = chain.push(der);
        }
        // The hash CertificateVerify signs: the handshake up to and
        // including this Certificate message (verify_signature gets none).
        let hash: [u8; 32] = transcript.clone().finalize().into();
        self.check_chain(&chain, hash)
            .map_err(|_| TlsError::InvalidCertificate)
    }

    fn verify_signature(&mut self, verify: CertificateVerifyRef) -> Result<(), TlsError> {
        self.check_handshake_signature(verify.signature_scheme, verify.signature)
            .map_err(|_| TlsError::InvalidSignature)
    }
}

/// The crypto embedded-tls asks for: the random source (a board's TRNG, or
/// a generator seeded from one) and the verifier.
#[derive(Debug)]
pub struct Provider<'v, 't, R> {
    pub rng: R,
    pub verifier: &'v mut CloudVerifier<'t>,
}

impl<R: CryptoRngCore> CryptoProvider for Provider<'_, '_, R> {
    type CipherSuite = Aes128GcmSha256;
    // The device presents no client certificate, so signs nothing.
    type Signature = p256::ecdsa::DerSignature;

    fn rng(&mut self) -> impl CryptoRngCore {
        &mut self.rng
    }

    fn verifier(&mut self) -> Result<&mut impl TlsVerifier<Aes128GcmSha256>, TlsError> {
        Ok(&mut *self.verifier)
    }
}
