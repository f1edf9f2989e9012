//! Differential tests against rasn-snmp, an independent implementation of the
//! same ASN.1 modules.
//!
//! Proptest generates messages as a plain model (below). Each is encoded by
//! both codecs; then:
//! - our encoding decodes in rasn-snmp to the model,
//! - rasn-snmp's encoding decodes in our codec to the model,
//! - and both encodings are the same bytes (both claim canonical BER).
//!
//! The model covers v1 (every v1 PDU including the Trap-PDU), v2c (every PDU)
//! and v3 (header, USM security parameters, plaintext and encrypted scoped
//! PDUs), and every value type each version allows.

mod model;

use model::{Model, arb_message};
use proptest::prelude::*;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 2000,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn our_encoding_decodes_in_rasn(m in arb_message()) {
        let ours = model::encode_ours(&m);
        let back = model::decode_rasn(&m, &ours);
        prop_assert_eq!(back, Some(m.clone()), "bytes {:02x?}", ours);
    }

    #[test]
    fn rasn_encoding_decodes_in_ours(m in arb_message()) {
        let theirs = model::encode_rasn(&m);
        let back = model::decode_ours(&theirs);
        prop_assert_eq!(back, Ok(m.clone()), "bytes {:02x?}", theirs);
    }

    #[test]
    fn both_codecs_emit_the_same_bytes(m in arb_message()) {
        prop_assert_eq!(model::encode_ours(&m), model::encode_rasn(&m));
    }
}

/// Proptest shrinks failures, but a fixed example documents the shape of the
/// model and fails readably if the plumbing itself breaks.
#[test]
fn a_v2c_get_response_with_every_value_type() {
    use model::{MPdu, MValue, MVarBind};
    let vbs = vec![
        MVarBind::new(
            &[1, 3, 6, 1, 2, 1, 1, 1, 0],
            MValue::Str(b"HP LaserJet".to_vec()),
        ),
        MVarBind::new(
            &[1, 3, 6, 1, 2, 1, 1, 2, 0],
            MValue::Oid(vec![1, 3, 6, 1, 4, 1, 11]),
        ),
        MVarBind::new(&[1, 3, 6, 1, 2, 1, 1, 3, 0], MValue::TimeTicks(123_456)),
        MVarBind::new(&[1, 3, 6, 1, 2, 1, 4, 20, 1, 1], MValue::Ip([10, 0, 0, 7])),
        MVarBind::new(
            &[1, 3, 6, 1, 2, 1, 43, 10, 2, 1, 4, 1, 1],
            MValue::Counter32(u32::MAX),
        ),
        MVarBind::new(
            &[1, 3, 6, 1, 2, 1, 43, 11, 1, 1, 9, 1, 1],
            MValue::Integer(-3),
        ),
        MVarBind::new(&[1, 3, 6, 1, 2, 1, 25, 2, 2, 0], MValue::Gauge32(1024)),
        MVarBind::new(
            &[1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 6, 1],
            MValue::Counter64(u64::MAX),
        ),
        MVarBind::new(
            &[1, 3, 6, 1, 4, 1, 2021, 10, 1, 6, 1],
            MValue::Opaque(vec![0x9f, 0x78, 4, 0, 0, 0, 0]),
        ),
        MVarBind::new(&[1, 3, 6, 1, 2, 1, 1, 9, 0], MValue::Null),
        MVarBind::new(&[1, 3, 6, 1, 2, 1, 1, 10, 0], MValue::NoSuchObject),
        MVarBind::new(&[1, 3, 6, 1, 2, 1, 1, 11, 0], MValue::NoSuchInstance),
        MVarBind::new(&[1, 3, 6, 1, 2, 1, 1, 12, 0], MValue::EndOfMibView),
    ];
    let m = Model::Community {
        version: 1,
        community: b"public".to_vec(),
        pdu: MPdu::Std {
            tag: 0xa2,
            request_id: 42,
            error_status: 0,
            error_index: 0,
            varbinds: vbs,
        },
    };
    let ours = model::encode_ours(&m);
    assert_eq!(ours, model::encode_rasn(&m));
    assert_eq!(model::decode_rasn(&m, &ours), Some(m.clone()));
    assert_eq!(model::decode_ours(&ours), Ok(m));
}
