//! Arbitrary bytes through every decoder of the codec: nothing may panic.
#![no_main]

use dca_core::ber::{OidRef, Reader};
use dca_core::snmp::{Message, ScopedPdu, UsmSecurityParameters, Value};
use libfuzzer_sys::fuzz_target;
use std::fmt::Write;

fuzz_target!(|data: &[u8]| {
    let mut sink = String::new();
    if let Ok(m) = Message::decode(data) {
        let _ = write!(sink, "{m:?}");
        if let Some(list) = m.varbinds() {
            for vb in list.clone() {
                match vb {
                    Ok(vb) => {
                        let _ = write!(sink, "{} {:?} {:?}", vb.name, vb.value, vb.value.as_u64());
                        let _ = vb.name.last_arc();
                        let _ = vb.name.to_oid();
                    }
                    Err(e) => {
                        assert!(e.offset <= data.len(), "error offset {e} outside the input");
                        let _ = write!(sink, "{e}");
                    }
                }
            }
        }
        if let Message::V3(v3) = &m {
            let _ = UsmSecurityParameters::decode(v3.security_parameters);
        }
    } else if let Err(e) = Message::decode(data) {
        assert!(e.offset <= data.len(), "error offset {e} outside the input");
    }
    let _ = ScopedPdu::decode(data).map(|s| s.pdu.varbinds.count());
    let _ = UsmSecurityParameters::decode(data);
    if let Ok(oid) = OidRef::from_ber(data) {
        let _ = write!(sink, "{oid}");
        assert_eq!(oid.to_oid().as_oid_ref(), oid);
        assert_eq!(oid.to_oid().as_ber().len(), oid.canonical_len());
    }
    let mut r = Reader::new(data);
    while let Ok(tlv) = r.read_tlv() {
        let _ = Value::decode(tlv.tag, tlv.content, tlv.offset);
    }
});
