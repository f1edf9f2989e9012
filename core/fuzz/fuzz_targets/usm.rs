//! SNMPv3 answers from a hostile network: arbitrary bytes are decoded,
//! authenticated and decrypted (in place) for a user at every level and
//! with every privacy protocol, without a panic. Half of the inputs are
//! made well-formed first (sealed with the right keys, then changed), so
//! the decryption and PDU decoding behind the digest check are reached.

#![no_main]

use dca_core::snmp::usm::{AuthProtocol, Engine, PrivProtocol, SealParams, User, open, seal};
use dca_core::snmp::{Pdu, PduType, VarBind};
use dca_core::time::Instant;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const ENGINE: &[u8] = b"\x80\x00\x1f\x88\x80fuzzengine";

/// Users are made once: each costs a mebibyte of hashing.
fn users() -> &'static Vec<(User, Engine)> {
    static USERS: OnceLock<Vec<(User, Engine)>> = OnceLock::new();
    USERS.get_or_init(|| {
        let now = Instant::from_millis(0);
        let mut v = Vec::new();
        let base = User::new(b"fuzz").unwrap();
        v.push(base.clone());
        for a in [AuthProtocol::Md5, AuthProtocol::Sha512] {
            let u = base.clone().with_auth(a, b"authpass123").unwrap();
            v.push(u.clone());
            for p in PrivProtocol::ALL {
                v.push(u.clone().with_privacy(p, b"privpass123").unwrap());
            }
        }
        v.into_iter()
            .map(|u| {
                let e = Engine::new(ENGINE, 7, 1000, now, &u).unwrap();
                (u, e)
            })
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let list = users();
    let (user, engine) = &list[usize::from(selector) % list.len()];
    let mut engine = engine.clone();
    let now = Instant::from_millis(5_000);
    let mut bytes = if selector & 0x80 != 0 && rest.len() >= 3 {
        // A sealed message with a few bytes changed at chosen places.
        let empty: &[VarBind<'_>] = &[];
        let mut buf = vec![0u8; 1500];
        let params = SealParams {
            msg_id: 1,
            max_size: 1500,
            salt: 1,
        };
        let Ok(n) = seal(
            &mut buf,
            user,
            &engine,
            &params,
            now,
            Pdu::new(PduType::Response, 1, empty),
        ) else {
            return;
        };
        buf.truncate(n);
        for pair in rest.chunks(2) {
            if let [at, x] = pair {
                let i = usize::from(*at) % n;
                buf[i] ^= x;
            }
        }
        buf
    } else {
        rest.to_vec()
    };
    let _ = open(&mut bytes, user, Some(&mut engine), now);
    let mut again = rest.to_vec();
    let _ = open(&mut again, user, None, now);
});
