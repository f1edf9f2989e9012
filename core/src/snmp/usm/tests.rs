//! Known-answer vectors from the RFCs, and seal/open round trips over
//! every pairing of protocols.

// Arithmetic on test data: an overflow here is a failed test, not a crash.
#![allow(clippy::arithmetic_side_effects)]

use super::*;
use crate::ber::Oid;
use crate::snmp::{Pdu, PduType, Value, VarBind};
use crate::time::Instant;
use std::vec::Vec;

fn hex(s: &str) -> Vec<u8> {
    let s: std::string::String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// RFC 3414 A.3.1 and A.3.2: "maplesyrup" and engine 00..02.
#[test]
fn rfc3414_a3_password_to_key_and_localisation() {
    let engine = hex("000000000000000000000002");
    let cases = [
        (
            AuthProtocol::Md5,
            "9faf3283884e92834ebc9847d8edd963",
            "526f5eed9fcce26f8964c2930787d82b",
        ),
        (
            AuthProtocol::Sha1,
            "9fb5cc0381497b3793528939ff788d5d79145211",
            "6695febc9288e36282235fc7151f128497b38f3f",
        ),
    ];
    for (proto, ku, kul) in cases {
        let k = proto.password_to_key(b"maplesyrup");
        assert_eq!(k.as_bytes(), hex(ku), "{proto:?} Ku");
        assert_eq!(
            proto.localize(&k, &engine).as_bytes(),
            hex(kul),
            "{proto:?} Kul"
        );
    }
}

/// The SHA-2 keys have each hash's length (RFC 7860 4.2.2), and differ.
#[test]
fn sha2_keys_have_their_hash_length() {
    let engine = hex("000000000000000000000002");
    for proto in AuthProtocol::ALL {
        let kul = proto.localize(&proto.password_to_key(b"maplesyrup"), &engine);
        assert_eq!(kul.len(), proto.digest_len(), "{proto:?}");
    }
}

#[test]
fn net_snmp_names_parse() {
    for (name, p) in [
        ("MD5", AuthProtocol::Md5),
        ("sha", AuthProtocol::Sha1),
        ("SHA-224", AuthProtocol::Sha224),
        ("SHA256", AuthProtocol::Sha256),
        ("sha-384", AuthProtocol::Sha384),
        ("SHA-512", AuthProtocol::Sha512),
    ] {
        assert_eq!(AuthProtocol::parse(name), Some(p), "{name}");
    }
    assert_eq!(AuthProtocol::parse("SHA-1024"), None);
    for (name, p) in [
        ("DES", PrivProtocol::Des),
        ("AES", PrivProtocol::Aes128),
        ("AES-192", PrivProtocol::Aes192),
        ("aes256", PrivProtocol::Aes256),
        ("AES-192C", PrivProtocol::Aes192C),
        ("AES256C", PrivProtocol::Aes256C),
    ] {
        assert_eq!(PrivProtocol::parse(name), Some(p), "{name}");
    }
    assert_eq!(PrivProtocol::parse("3DES"), None);
    assert_eq!(
        SecurityLevel::parse("authpriv"),
        Some(SecurityLevel::AuthPriv)
    );
}

/// Blumenthal appends H(Kul); Reeder appends a second localised key made
/// from Kul as a password; both keep Kul as the key's start. (The bytes
/// themselves are proven against net-snmp's snmpd by the host tests.)
#[test]
fn key_extensions_start_with_kul_and_differ() {
    let engine = hex("8000000001020304");
    let ku = AuthProtocol::Sha1.password_to_key(b"privpass123");
    let kul = AuthProtocol::Sha1.localize(&ku, &engine);
    let blum = PrivProtocol::Aes256.localize(AuthProtocol::Sha1, &ku, &engine);
    let reeder = PrivProtocol::Aes256C.localize(AuthProtocol::Sha1, &ku, &engine);
    assert_eq!(blum.len(), 32);
    assert_eq!(&blum.as_bytes()[..20], kul.as_bytes());
    let h = AuthProtocol::Sha1.digest(kul.as_bytes());
    assert_eq!(&blum.as_bytes()[20..], &h.as_bytes()[..12]);
    let second =
        AuthProtocol::Sha1.localize(&AuthProtocol::Sha1.password_to_key(kul.as_bytes()), &engine);
    assert_eq!(&reeder.as_bytes()[..20], kul.as_bytes());
    assert_eq!(&reeder.as_bytes()[20..], &second.as_bytes()[..12]);
    // A long hash needs no extension: both are Kul cut to 32.
    let ku512 = AuthProtocol::Sha512.password_to_key(b"privpass123");
    let a = PrivProtocol::Aes256.localize(AuthProtocol::Sha512, &ku512, &engine);
    let b = PrivProtocol::Aes256C.localize(AuthProtocol::Sha512, &ku512, &engine);
    assert_eq!(a, b);
    assert_eq!(a.len(), 32);
}

fn user(auth: Option<AuthProtocol>, privacy: Option<PrivProtocol>) -> User {
    let mut u = User::new(b"printer")
        .unwrap()
        .with_context(b"Jetdirect")
        .unwrap();
    if let Some(a) = auth {
        u = u.with_auth(a, b"authpass123").unwrap();
    }
    if let Some(p) = privacy {
        u = u.with_privacy(p, b"privpass123").unwrap();
    }
    u
}

fn request(buf: &mut [u8], u: &User, e: &Engine, now: Instant, salt: u64) -> usize {
    let oid: Oid = "1.3.6.1.2.1.1.2.0".parse().unwrap();
    let vbs = [VarBind::new(oid.as_oid_ref(), Value::Integer(7))];
    let params = SealParams {
        msg_id: 42,
        max_size: 65507,
        salt,
    };
    seal(
        buf,
        u,
        e,
        &params,
        now,
        Pdu::new(PduType::GetRequest, 42, &vbs[..]),
    )
    .unwrap()
}

/// Every level and pairing: what is sealed opens to the same PDU; any
/// changed byte under authentication fails the digest.
#[test]
fn seal_then_open_every_pairing() {
    let engine_id = hex("80001f8880e9630000d61ff449");
    let now = Instant::from_millis(5_000);
    let mut levels = std::vec![(None, None)];
    for a in AuthProtocol::ALL {
        levels.push((Some(a), None));
        for p in PrivProtocol::ALL {
            levels.push((Some(a), Some(p)));
        }
    }
    assert_eq!(levels.len(), 43);
    for (a, p) in levels {
        let u = user(a, p);
        let mut e = Engine::new(&engine_id, 3, 1000, now, &u).unwrap();
        let mut buf = [0u8; 512];
        let n = request(&mut buf, &u, &e, now, 9);
        let mut copy = buf[..n].to_vec();
        match open(&mut copy, &u, Some(&mut e), now) {
            Ok(Opened::Pdu {
                msg_id: 42, pdu, ..
            }) => {
                let vb = pdu.varbinds.clone().next().unwrap().unwrap();
                assert_eq!(vb.value, Value::Integer(7), "{a:?} {p:?}");
            }
            other => panic!("{a:?} {p:?}: {other:?}"),
        }
        if p.is_some() {
            // The OID is not in the clear.
            let oid_ber = [0x2b, 6, 1, 2, 1, 1, 2, 0];
            assert!(!buf[..n].windows(8).any(|w| w == oid_ber), "{a:?} {p:?}");
        }
        if a.is_some() {
            for at in [n / 3, n / 2, n - 1] {
                let mut bad = buf[..n].to_vec();
                bad[at] ^= 0x01;
                let r = open(&mut bad, &u, Some(&mut e), now);
                assert!(
                    !matches!(r, Ok(Opened::Pdu { .. })),
                    "{a:?} {p:?} byte {at}: {r:?}"
                );
            }
        }
    }
}

/// A message from before the window (boots the same, time 151 s behind
/// our estimate) is refused; a newer boots count moves the clock on.
#[test]
fn time_window() {
    let engine_id = hex("8000000001020304");
    let u = user(Some(AuthProtocol::Sha256), Some(PrivProtocol::Aes128));
    let t0 = Instant::from_millis(0);
    let mut e = Engine::new(&engine_id, 5, 10_000, t0, &u).unwrap();
    let later = Instant::from_millis(400_000);
    let mut buf = [0u8; 512];
    // Sealed with the engine's old clock, opened 400 s later.
    let stale = Engine::new(&engine_id, 5, 10_000, t0, &u).unwrap();
    let n = request(&mut buf, &u, &stale, t0, 1);
    assert_eq!(
        open(&mut buf[..n].to_vec(), &u, Some(&mut e), later),
        Err(OpenError::Usm(UsmError::AnswerNotInTimeWindow))
    );
    // The engine rebooted: boots 6, time 3.
    let rebooted = Engine::new(&engine_id, 6, 3, later, &u).unwrap();
    let n = request(&mut buf, &u, &rebooted, later, 2);
    assert!(matches!(
        open(&mut buf[..n].to_vec(), &u, Some(&mut e), later),
        Ok(Opened::Pdu { .. })
    ));
    assert_eq!((e.boots(), e.time_at(later)), (6, 3));
}

#[test]
fn short_passwords_and_privacy_alone_are_refused() {
    assert_eq!(
        User::new(b"u")
            .unwrap()
            .with_auth(AuthProtocol::Md5, b"short")
            .unwrap_err(),
        CredentialError::PasswordTooShort
    );
    assert_eq!(
        User::new(b"u")
            .unwrap()
            .with_privacy(PrivProtocol::Des, b"longenough")
            .unwrap_err(),
        CredentialError::PrivacyWithoutAuth
    );
    assert!(User::new(b"").is_err());
    assert!(std::format!("{:?}", user(Some(AuthProtocol::Md5), None)).contains("Key(16 bytes)"));
}
