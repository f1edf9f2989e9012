//! The parts of an X.509 certificate the trust decision needs, read in
//! place with `der` (no allocator: the certificate stays in the TLS record
//! buffer and the parts borrow it).

use der::asn1::{AnyRef, BitStringRef, ObjectIdentifier, OctetStringRef};
use der::{Decode, Reader, SliceReader, Tag, TagNumber, Tagged};
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::Refusal;

const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const PRIME256V1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const BASIC_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.19");
const SUBJECT_ALT_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.17");

/// A certificate's fields, each borrowing the DER it was read from.
#[derive(Debug, Clone, Copy)]
pub struct Certificate<'a> {
    /// The signed part, header included: what the issuer's signature covers.
    tbs: &'a [u8],
    signature_algorithm: ObjectIdentifier,
    signature: &'a [u8],
    /// Names as DER (compared byte for byte, as issuers write them).
    issuer: &'a [u8],
    subject: &'a [u8],
    /// SubjectPublicKeyInfo, header included: what a pin is the SHA-256 of.
    spki: &'a [u8],
    /// The contents of the extensions SEQUENCE, when there is one.
    extensions: Option<&'a [u8]>,
}

fn malformed<E>(_: E) -> Refusal {
    Refusal::Malformed
}

const EXPLICIT_0: Tag = Tag::ContextSpecific {
    constructed: true,
    number: TagNumber::N0,
};
const EXPLICIT_3: Tag = Tag::ContextSpecific {
    constructed: true,
    number: TagNumber::N3,
};

impl<'a> Certificate<'a> {
    /// Reads a DER certificate; anything but exactly one certificate is
    /// refused.
    pub fn parse(der: &'a [u8]) -> Result<Self, Refusal> {
        let cert = AnyRef::from_der(der).map_err(malformed)?;
        cert.tag().assert_eq(Tag::Sequence).map_err(malformed)?;
        let mut outer = SliceReader::new(cert.value()).map_err(malformed)?;
        let tbs = outer.tlv_bytes().map_err(malformed)?;
        let algorithm = AnyRef::decode(&mut outer).map_err(malformed)?;
        let signature = BitStringRef::decode(&mut outer).map_err(malformed)?;
        outer.finish(()).map_err(malformed)?;
        let signature_algorithm =
            ObjectIdentifier::decode(&mut SliceReader::new(algorithm.value()).map_err(malformed)?)
                .map_err(malformed)?;

        let body = AnyRef::from_der(tbs).map_err(malformed)?;
        body.tag().assert_eq(Tag::Sequence).map_err(malformed)?;
        let mut fields = SliceReader::new(body.value()).map_err(malformed)?;
        if fields.peek_tag().map_err(malformed)? == EXPLICIT_0 {
            AnyRef::decode(&mut fields).map_err(malformed)?; // version
        }
        AnyRef::decode(&mut fields).map_err(malformed)?; // serialNumber
        AnyRef::decode(&mut fields).map_err(malformed)?; // signature
        let issuer = fields.tlv_bytes().map_err(malformed)?;
        AnyRef::decode(&mut fields).map_err(malformed)?; // validity
        let subject = fields.tlv_bytes().map_err(malformed)?;
        let spki = fields.tlv_bytes().map_err(malformed)?;
        let mut extensions = None;
        // issuerUniqueID and subjectUniqueID may come first; [3] holds the
        // extensions.
        while !fields.is_finished() {
            let field = AnyRef::decode(&mut fields).map_err(malformed)?;
            if field.tag() == EXPLICIT_3 {
                let list = AnyRef::from_der(field.value()).map_err(malformed)?;
                list.tag().assert_eq(Tag::Sequence).map_err(malformed)?;
                extensions = Some(list.value());
            }
        }
        Ok(Certificate {
            tbs,
            signature_algorithm,
            signature: signature.as_bytes().ok_or(Refusal::Malformed)?,
            issuer,
            subject,
            spki,
            extensions,
        })
    }

    /// SHA-256 of the SubjectPublicKeyInfo: the pin of this certificate's
    /// key (`openssl x509 -pubkey | openssl pkey -pubin -outform der |
    /// sha256sum`). A certificate renewed with the same key keeps it.
    pub fn spki_pin(&self) -> [u8; 32] {
        Sha256::digest(self.spki).into()
    }

    /// The certificate's key, which must be ECDSA on P-256 (the only kind
    /// embedded-tls can use without an allocator).
    pub fn p256_key(&self) -> Result<VerifyingKey, Refusal> {
        let spki = AnyRef::from_der(self.spki).map_err(malformed)?;
        let mut parts = SliceReader::new(spki.value()).map_err(malformed)?;
        let algorithm = AnyRef::decode(&mut parts).map_err(malformed)?;
        let key = BitStringRef::decode(&mut parts).map_err(malformed)?;
        let mut ids = SliceReader::new(algorithm.value()).map_err(malformed)?;
        let kind = ObjectIdentifier::decode(&mut ids).map_err(malformed)?;
        if kind != ID_EC_PUBLIC_KEY {
            return Err(Refusal::NotP256);
        }
        let curve = ObjectIdentifier::decode(&mut ids).map_err(|_| Refusal::NotP256)?;
        if curve != PRIME256V1 {
            return Err(Refusal::NotP256);
        }
        VerifyingKey::from_sec1_bytes(key.as_bytes().ok_or(Refusal::Malformed)?)
            .map_err(|_| Refusal::NotP256)
    }

    /// The extension `id`'s value (the contents of its OCTET STRING).
    fn extension(&self, id: ObjectIdentifier) -> Result<Option<&'a [u8]>, Refusal> {
        let Some(list) = self.extensions else {
            return Ok(None);
        };
        let mut list = SliceReader::new(list).map_err(malformed)?;
        while !list.is_finished() {
            let extension = AnyRef::decode(&mut list).map_err(malformed)?;
            let mut fields = SliceReader::new(extension.value()).map_err(malformed)?;
            let oid = ObjectIdentifier::decode(&mut fields).map_err(malformed)?;
            if fields.peek_tag().map_err(malformed)? == Tag::Boolean {
                bool::decode(&mut fields).map_err(malformed)?; // critical
            }
            let value = OctetStringRef::decode(&mut fields).map_err(malformed)?;
            if oid == id {
                return Ok(Some(value.as_bytes()));
            }
        }
        Ok(None)
    }

    /// Whether basicConstraints says cA TRUE: only such a certificate may
    /// sign another. Absent, or cA absent (FALSE by default), is not a CA.
    pub fn is_ca(&self) -> Result<bool, Refusal> {
        let Some(value) = self.extension(BASIC_CONSTRAINTS)? else {
            return Ok(false);
        };
        let constraints = AnyRef::from_der(value).map_err(malformed)?;
        constraints
            .tag()
            .assert_eq(Tag::Sequence)
            .map_err(malformed)?;
        let mut fields = SliceReader::new(constraints.value()).map_err(malformed)?;
        if fields.is_finished() || fields.peek_tag().map_err(malformed)? != Tag::Boolean {
            return Ok(false);
        }
        bool::decode(&mut fields).map_err(malformed)
    }

    /// Whether `issuer` issued this certificate: the names chain, the
    /// issuer is a CA, and its key made this certificate's signature
    /// (ECDSA P-256 with SHA-256).
    pub fn check_issued_by(&self, issuer: &Certificate<'_>) -> Result<(), Refusal> {
        if self.issuer != issuer.subject {
            return Err(Refusal::NotIssuedBy);
        }
        if !issuer.is_ca()? {
            return Err(Refusal::IssuerNotCa);
        }
        if self.signature_algorithm != ECDSA_WITH_SHA256 {
            return Err(Refusal::NotP256);
        }
        let key = issuer.p256_key()?;
        let signature = Signature::from_der(self.signature).map_err(|_| Refusal::BadSignature)?;
        key.verify(self.tbs, &signature)
            .map_err(|_| Refusal::BadSignature)
    }

    /// Whether `host` is one of the names the certificate holds (its
    /// subjectAltName: a DNS name, compared without case, with a `*` for
    /// one leftmost label; or an IPv4 address).
    pub fn names_host(&self, host: &str) -> Result<bool, Refusal> {
        let Some(value) = self.extension(SUBJECT_ALT_NAME)? else {
            return Ok(false);
        };
        let names = AnyRef::from_der(value).map_err(malformed)?;
        names.tag().assert_eq(Tag::Sequence).map_err(malformed)?;
        let mut names = SliceReader::new(names.value()).map_err(malformed)?;
        let address = parse_ipv4(host);
        while !names.is_finished() {
            let name = AnyRef::decode(&mut names).map_err(malformed)?;
            let matched = match (name.tag(), address) {
                // dNSName [2] IA5String
                (Tag::ContextSpecific { number, .. }, None) if number == TagNumber::N2 => {
                    dns_matches(name.value(), host)
                }
                // iPAddress [7] OCTET STRING
                (Tag::ContextSpecific { number, .. }, Some(ip)) if number == TagNumber::N7 => {
                    name.value() == ip
                }
                _ => false,
            };
            if matched {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

fn parse_ipv4(host: &str) -> Option<[u8; 4]> {
    host.parse::<core::net::Ipv4Addr>().ok().map(|a| a.octets())
}

fn dns_matches(pattern: &[u8], host: &str) -> bool {
    let host = host.trim_end_matches('.').as_bytes();
    match pattern.strip_prefix(b"*.") {
        Some(rest) => match host.iter().position(|b| *b == b'.') {
            Some(dot) => host
                .get(dot + 1..)
                .is_some_and(|h| h.eq_ignore_ascii_case(rest)),
            None => false,
        },
        None => pattern.eq_ignore_ascii_case(host),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_stand_for_one_label() {
        assert!(dns_matches(b"cloud.example", "CLOUD.example"));
        assert!(dns_matches(b"*.example", "cloud.example"));
        assert!(!dns_matches(b"*.example", "a.cloud.example"));
        assert!(!dns_matches(b"*.example", "example"));
        assert!(!dns_matches(b"cloud.example", "cloud.example.evil"));
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        for bytes in [
            &b""[..],
            b"\x30",
            b"\x30\x03\x02\x01\x00",
            b"\x04\x00",
            &[0x30, 0x80],
        ] {
            assert!(Certificate::parse(bytes).is_err(), "{bytes:?}");
        }
    }
}
