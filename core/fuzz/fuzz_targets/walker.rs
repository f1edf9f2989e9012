//! The walker fed with arbitrary answers and timeouts: nothing may panic,
//! and the walk always ends (the input is finite; the deadline bounds the
//! rest).
#![no_main]

use dca_core::ber::Oid;
use dca_core::poll::walk::Counter;
use dca_core::poll::{WalkConfig, WalkState, Walker};
use dca_core::printer::plan::{Read, walk_plan};
use dca_core::snmp::{CommunityMessage, Pdu, PduType, Pdus, Value, VarBind, Version};
use dca_core::time::{Duration, Instant};
use libfuzzer_sys::fuzz_target;

const TAGS: [u8; 8] = [0x02, 0x04, 0x05, 0x06, 0x41, 0x80, 0x81, 0x82];

fuzz_target!(|data: &[u8]| {
    let prefixes: Vec<&'static [u32]> = walk_plan()
        .map(|r| match r {
            Read::Get(o) | Read::Walk(o) => o,
        })
        .collect();
    let mut cfg = WalkConfig::new(b"public");
    cfg.deadline = Duration::from_secs(3600);
    let mut now = Instant::from_millis(0);
    let mut w = Walker::new(cfg, walk_plan(), 1, now);
    let mut sink = Counter::default();
    let mut buf = [0u8; 1500];
    let mut rest = data;
    while let [op, a, b, n, tail @ ..] = rest {
        rest = tail;
        let _ = w.poll_transmit(now, &mut buf);
        match op % 4 {
            0 => {
                now = now.saturating_add(Duration::from_millis(u64::from(*a) * 50));
                w.handle_timeout(now);
            }
            1 => {
                // Raw bytes as a datagram.
                let len = usize::from(*n).min(rest.len());
                let mut datagram = rest[..len].to_vec();
                w.handle_datagram(now, &mut datagram, &mut sink);
                rest = &rest[len..];
            }
            _ => {
                // A well-formed answer to the request in flight.
                let Some(request_id) = w.request_id() else {
                    continue;
                };
                let mut names = Vec::new();
                let mut contents = Vec::new();
                for i in 0..usize::from(n % 12) {
                    let Some((&sel, more)) = rest.split_first() else {
                        break;
                    };
                    let mut arcs = prefixes[usize::from(sel) % prefixes.len()].to_vec();
                    arcs.extend(
                        more.iter()
                            .take(usize::from(sel % 4))
                            .map(|x| u32::from(*x)),
                    );
                    rest = &more[usize::from(sel % 4).min(more.len())..];
                    let len = usize::from(b.wrapping_add(i as u8) % 6).min(rest.len());
                    contents.push((TAGS[usize::from(sel) % TAGS.len()], rest[..len].to_vec()));
                    rest = &rest[len..];
                    if let Ok(oid) = Oid::from_arcs(&arcs) {
                        names.push(oid);
                    }
                }
                let vbs: Vec<VarBind<'_>> = names
                    .iter()
                    .zip(&contents)
                    .filter_map(|(n, (t, c))| {
                        Value::decode(*t, c, 0)
                            .ok()
                            .map(|v| VarBind::new(n.as_oid_ref(), v))
                    })
                    .collect();
                let pdu = Pdu {
                    ty: PduType::Response,
                    request_id,
                    error_status: i32::from(*a % 20),
                    error_index: i32::from(*b % 8),
                    varbinds: &vbs[..],
                };
                let version = if w.version() == Version::V1 {
                    Version::V1
                } else {
                    Version::V2c
                };
                let msg = CommunityMessage {
                    version,
                    community: b"public",
                    pdu: Pdus::Pdu(pdu),
                };
                let mut out = vec![0u8; msg.encoded_len()];
                if let Ok(len) = msg.encode(&mut out) {
                    w.handle_datagram(now, &mut out[..len], &mut sink);
                }
            }
        }
    }
    // Whatever happened, time running out ends the walk.
    let mut guard = 0;
    while w.state() == WalkState::Running && guard < 10_000 {
        let _ = w.poll_transmit(now, &mut buf);
        now = now.saturating_add(Duration::from_secs(30));
        w.handle_timeout(now);
        guard += 1;
    }
    assert_ne!(w.state(), WalkState::Running, "the walk ended");
});
