//! decode -> encode -> decode is stable: a message whose varbinds all decode
//! encodes canonically, that encoding decodes to the same content, and
//! encoding it again gives the same bytes.
#![no_main]

use dca_core::snmp::{Message, VarBind, VarBinds};
use libfuzzer_sys::fuzz_target;

/// Decodes and re-encodes; None if the message or a varbind does not decode.
fn reencode(data: &[u8]) -> Option<(Vec<u8>, Vec<String>)> {
    let msg = Message::decode(data).ok()?;
    let vbs: Vec<VarBind<'_>> = msg
        .varbinds()
        .cloned()
        .unwrap_or_else(VarBinds::empty)
        .collect::<Result<_, _>>()
        .ok()?;
    let seen = vbs
        .iter()
        .map(|vb| format!("{} = {:?}", vb.name, vb.value))
        .collect();
    let msg = msg.map_varbinds(|_| &vbs[..]);
    let mut out = vec![0u8; msg.encoded_len()];
    let n = msg
        .encode(&mut out)
        .expect("a buffer of encoded_len bytes fits");
    assert_eq!(n, out.len(), "encoded_len matches what encode wrote");
    Some((out, seen))
}

fuzz_target!(|data: &[u8]| {
    let Some((first, seen_first)) = reencode(data) else {
        return;
    };
    let (second, seen_second) = reencode(&first).expect("our own encoding decodes");
    assert_eq!(first, second, "encoding is stable");
    // Values compare by content: a padded OID equals its canonical form.
    assert_eq!(seen_first, seen_second);
});
