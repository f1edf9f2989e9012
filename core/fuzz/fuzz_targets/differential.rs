//! Arbitrary bytes into both our codec and rasn-snmp: where both accept the
//! input they must read the same content, and both must then emit the same
//! canonical bytes for it.
#![no_main]

#[path = "../../tests/model/mod.rs"]
mod model;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(theirs) = model::decode_rasn_any(data) else {
        return;
    };
    let Ok(ours) = model::decode_ours(data) else {
        return;
    };
    assert_eq!(ours, theirs, "the codecs read the same bytes differently");
    assert_eq!(
        model::encode_ours(&ours),
        model::encode_rasn(&theirs),
        "canonical encodings differ"
    );
});
