//! Arbitrary varbind lists into the snapshot builder: nothing may panic.
//!
//! The input is read as a list of varbinds. Each starts with a selector
//! octet that picks a prefix from the walk plan (so the fuzzer reaches the
//! Printer-MIB and vendor tables rather than random OIDs), then up to four
//! index arcs, a value tag and a length-prefixed value.
#![no_main]

use dca_core::ber::Oid;
use dca_core::printer::SnapshotBuilder;
use dca_core::printer::plan::{Read, walk_plan};
use dca_core::snmp::{Value, VarBind};
use libfuzzer_sys::fuzz_target;

const TAGS: [u8; 12] = [
    0x02, 0x04, 0x05, 0x06, 0x40, 0x41, 0x42, 0x43, 0x44, 0x46, 0x80, 0x47,
];

fuzz_target!(|data: &[u8]| {
    let prefixes: Vec<&'static [u32]> = walk_plan()
        .map(|r| match r {
            Read::Get(o) | Read::Walk(o) => o,
        })
        .collect();
    let mut builder = SnapshotBuilder::new();
    let mut rest = data;
    // Owned names and values must outlive the varbinds that borrow them.
    while let [sel, n_arcs, rest2 @ ..] = rest {
        let Some(prefix) = prefixes.get(usize::from(*sel) % prefixes.len()) else {
            break;
        };
        let n = usize::from(n_arcs % 5);
        if rest2.len() < n + 2 {
            break;
        }
        let (arcs, rest3) = rest2.split_at(n);
        let mut name: Vec<u32> = prefix.to_vec();
        name.extend(arcs.iter().map(|a| u32::from(*a)));
        let Ok(oid) = Oid::from_arcs(&name) else {
            break;
        };
        let (tag, len) = (
            TAGS[usize::from(rest3[0]) % TAGS.len()],
            usize::from(rest3[1]),
        );
        let body = &rest3[2..];
        let content = &body[..len.min(body.len())];
        rest = &body[content.len()..];
        if let Ok(value) = Value::decode(tag, content, 0) {
            builder.push(&VarBind::new(oid.as_oid_ref(), value));
        }
    }
    let snap = builder.finish();
    // Touch every derived field.
    for s in &snap.supplies {
        let _ = (
            s.state(),
            s.percent(),
            s.type_name(),
            s.class_name(),
            s.unit_name(),
        );
    }
    for a in &snap.alerts {
        let _ = (a.severity_name(), a.group_name(), a.code_name());
    }
    let _ = snap.status.error_flags().count();
    let _ = (
        snap.is_printer(),
        snap.identity.model.as_str(),
        snap.identity.serial.as_str(),
    );
});
