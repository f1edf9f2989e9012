//! Byte fixtures for every PDU type, the v3 envelope and the quirky encodings
//! real printers send. The bytes were written out by hand (with a throwaway
//! BER helper independent of this codec), so they check the codec against
//! X.690 rather than against itself.

use dca_core::ber::{DecodeErrorKind, Oid};
use dca_core::snmp::{
    ErrorStatus, Message, PduType, Pdus, ScopedPduData, UsmSecurityParameters, Value, VarBind,
    VarBinds, Version,
};

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn oid(s: &str) -> Oid {
    s.parse().unwrap()
}

/// Decodes `bytes`, checks every varbind decodes, encodes the message again
/// and returns the new bytes.
fn reencode(bytes: &[u8]) -> Vec<u8> {
    let msg = Message::decode(bytes).unwrap();
    let vbs: Vec<VarBind<'_>> = msg
        .varbinds()
        .cloned()
        .unwrap_or_else(VarBinds::empty)
        .collect::<Result<_, _>>()
        .unwrap();
    let msg = msg.map_varbinds(|_| &vbs[..]);
    let mut out = vec![0u8; msg.encoded_len()];
    let n = msg.encode(&mut out).unwrap();
    assert_eq!(n, out.len());
    out
}

fn varbinds(m: &Message<'_, VarBinds<'_>>) -> Vec<VarBind<'static>> {
    // Copied out (leaked) so tests can compare without juggling lifetimes.
    m.varbinds()
        .cloned()
        .unwrap()
        .map(|vb| to_static(vb.unwrap()))
        .collect()
}

fn to_static(vb: VarBind<'_>) -> VarBind<'static> {
    let leaked: &'static [u8] = Box::leak(vb.name.as_ber().to_vec().into_boxed_slice());
    let name = dca_core::ber::OidRef::from_ber(leaked).unwrap();
    let value = match vb.value {
        Value::OctetString(b) => Value::OctetString(Box::leak(b.to_vec().into_boxed_slice())),
        Value::Opaque(b) => Value::Opaque(Box::leak(b.to_vec().into_boxed_slice())),
        Value::ObjectId(o) => Value::ObjectId(
            dca_core::ber::OidRef::from_ber(Box::leak(o.as_ber().to_vec().into_boxed_slice()))
                .unwrap(),
        ),
        Value::Unknown { tag, content } => Value::Unknown {
            tag,
            content: Box::leak(content.to_vec().into_boxed_slice()),
        },
        Value::Integer(v) => Value::Integer(v),
        Value::Null => Value::Null,
        Value::IpAddress(a) => Value::IpAddress(a),
        Value::Counter32(v) => Value::Counter32(v),
        Value::Gauge32(v) => Value::Gauge32(v),
        Value::TimeTicks(v) => Value::TimeTicks(v),
        Value::Counter64(v) => Value::Counter64(v),
        Value::NoSuchObject => Value::NoSuchObject,
        Value::NoSuchInstance => Value::NoSuchInstance,
        Value::EndOfMibView => Value::EndOfMibView,
    };
    VarBind::new(name, value)
}

fn community_pdu<'a>(
    m: &'a Message<'a, VarBinds<'a>>,
) -> (&'a [u8], Version, &'a Pdus<'a, VarBinds<'a>>) {
    match m {
        Message::Community(c) => (c.community, c.version, &c.pdu),
        Message::V3(_) => panic!("expected a community message"),
    }
}

fn std_pdu<'a>(p: &'a Pdus<'a, VarBinds<'a>>) -> &'a dca_core::snmp::Pdu<VarBinds<'a>> {
    match p {
        Pdus::Pdu(p) => p,
        Pdus::TrapV1(_) => panic!("expected a PDU, got a v1 trap"),
    }
}
const V1_GET: &str = "303402010004067075626c6963a027020101020100020100301c300c06082b060102010101000500300c06082b060102010102000500";
const V2C_GETNEXT: &str =
    "302b02010104067075626c6963a11e02047fffffff0201000201003010300e060a2b060102012b0b0101090500";
const V2C_BULK: &str = "3035020101040770726976617465a5270201fb020101020119301c300b06072b0601020101030500300d06092b060102012b0b01010500";
const V2C_RESPONSE: &str = "3082012002010104067075626c6963a2820111020204d202010002010030820103302906082b06010201010100041d48502045544845524e4554204d554c54492d454e5649524f4e4d454e54301606082b06010201010200060a2b060104010b02030901301006082b0601020101030043040083d6003015060d2b06010201041401010a00000740040a0000073015060c2b060102012b0a0201040101410500ffffffff301006092b060102011902020042030100003018060b2b060102011f0101010601460900ffffffffffffffff3016060b2b060104018f650a01060144079f78043f8000003011060c2b060102012b0b01010901010201fd300c06082b060102010109008000300c06082b060102010109018100300b06072b06010201010a8200";
const V2C_SET_RESPONSE_ERROR: &str =
    "302902010104067075626c6963a21c0201090201110201013011300f06082b0601020101050004036c6162";
const V2C_SET: &str =
    "302a020101040770726976617465a31c0201090201000201003011300f06082b0601020101050004036c6162";
const V2C_INFORM: &str = "304002010104067075626c6963a63302014d0201000201003028300d06082b060102010103004301643017060a2b06010603010104010006092b0601060301010501";
const V2C_TRAP: &str = "304202010104067075626c6963a73502014e020100020100302a300e06082b06010201010300430200c83018060a2b060106030101040100060a2b060102012b12020001";
const V1_TRAP: &str = "303f02010004067075626c6963a432060a2b060104010b020309014004c000020a0201060201014302303930143012060c2b060102012b1201010701010202044d";
const V3_REPORT: &str = "306b020103300e02012a020300ffe304010002010304323030040d80001f8880e9630000d61ff449020103020301e2400407696e697469616c040c0000000000000000000000000400302204000400a81c0201010201000201003011300f060a2b060106030f01010400410107";
const V3_ENCRYPTED: &str = "3059020103300e02012b020300ffe304010702010304323030040d80001f8880e9630000d61ff449020103020301e2400407696e697469616c040c00000000000000000000000004000410000102030405060708090a0b0c0d0e0f";
const QUIRKY_RESPONSE: &str = "3082008902020001048200067075626c6963a282007702040000000502020000020100308200663082001406082b06010201010500048200064d46502d33463014060c2b060102012b0a02010401014104ffffffff3010060c2b060102012b0a020105010102003015060c2b060102012b0a020104010202050080000001300d06072b06010401630147020102";

#[test]
fn v1_get_request() {
    let bytes = hex(V1_GET);
    let m = Message::decode(&bytes).unwrap();
    let (community, version, pdu) = community_pdu(&m);
    assert_eq!((community, version), (&b"public"[..], Version::V1));
    let p = std_pdu(pdu);
    assert_eq!(
        (p.ty, p.request_id, p.error_status, p.error_index),
        (PduType::GetRequest, 1, 0, 0)
    );
    let vbs = varbinds(&m);
    assert_eq!(vbs.len(), 2);
    assert_eq!(vbs[0].name.to_string(), "1.3.6.1.2.1.1.1.0");
    assert_eq!(vbs[1].value, Value::Null);
    assert_eq!(reencode(&bytes), bytes);
}

#[test]
fn v2c_get_next_and_get_bulk() {
    let bytes = hex(V2C_GETNEXT);
    let m = Message::decode(&bytes).unwrap();
    let p = std_pdu(community_pdu(&m).2);
    assert_eq!((p.ty, p.request_id), (PduType::GetNextRequest, i32::MAX));
    assert_eq!(reencode(&bytes), bytes);

    let bytes = hex(V2C_BULK);
    let m = Message::decode(&bytes).unwrap();
    let (community, version, pdu) = community_pdu(&m);
    assert_eq!((community, version), (&b"private"[..], Version::V2c));
    let p = std_pdu(pdu);
    assert_eq!(p.ty, PduType::GetBulkRequest);
    assert_eq!(
        (p.request_id, p.non_repeaters(), p.max_repetitions()),
        (-5, 1, 25)
    );
    assert_eq!(
        varbinds(&m)[1].name,
        oid("1.3.6.1.2.1.43.11.1.1").as_oid_ref()
    );
    assert_eq!(reencode(&bytes), bytes);
}

#[test]
fn v2c_response_with_every_value_type() {
    let bytes = hex(V2C_RESPONSE);
    let m = Message::decode(&bytes).unwrap();
    assert_eq!(std_pdu(community_pdu(&m).2).ty, PduType::Response);
    let values: Vec<Value<'_>> = varbinds(&m).into_iter().map(|vb| vb.value).collect();
    let sys_object_id = oid("1.3.6.1.4.1.11.2.3.9.1");
    assert_eq!(
        values,
        [
            Value::OctetString(b"HP ETHERNET MULTI-ENVIRONMENT"),
            Value::ObjectId(sys_object_id.as_oid_ref()),
            Value::TimeTicks(8_640_000),
            Value::IpAddress([10, 0, 0, 7]),
            Value::Counter32(u32::MAX),
            Value::Gauge32(65536),
            Value::Counter64(u64::MAX),
            Value::Opaque(&[0x9f, 0x78, 4, 0x3f, 0x80, 0, 0]),
            Value::Integer(-3),
            Value::NoSuchObject,
            Value::NoSuchInstance,
            Value::EndOfMibView,
        ]
    );
    assert_eq!(reencode(&bytes), bytes);
}

#[test]
fn v2c_set_and_an_error_response() {
    let bytes = hex(V2C_SET);
    let m = Message::decode(&bytes).unwrap();
    assert_eq!(std_pdu(community_pdu(&m).2).ty, PduType::SetRequest);
    assert_eq!(varbinds(&m)[0].value, Value::OctetString(b"lab"));
    assert_eq!(reencode(&bytes), bytes);

    let bytes = hex(V2C_SET_RESPONSE_ERROR);
    let m = Message::decode(&bytes).unwrap();
    let p = std_pdu(community_pdu(&m).2);
    assert_eq!(p.status(), Some(ErrorStatus::NotWritable));
    assert_eq!(p.error_index, 1);
    assert_eq!(reencode(&bytes), bytes);
}

#[test]
fn v2c_inform_and_trap() {
    for (fixture, ty, trap_oid) in [
        (V2C_INFORM, PduType::InformRequest, "1.3.6.1.6.3.1.1.5.1"),
        (V2C_TRAP, PduType::TrapV2, "1.3.6.1.2.1.43.18.2.0.1"),
    ] {
        let bytes = hex(fixture);
        let m = Message::decode(&bytes).unwrap();
        assert_eq!(std_pdu(community_pdu(&m).2).ty, ty);
        let trap = oid(trap_oid);
        assert_eq!(varbinds(&m)[1].value, Value::ObjectId(trap.as_oid_ref()));
        assert_eq!(reencode(&bytes), bytes);
    }
}

#[test]
fn v1_trap_pdu() {
    let bytes = hex(V1_TRAP);
    let m = Message::decode(&bytes).unwrap();
    let Pdus::TrapV1(t) = community_pdu(&m).2 else {
        panic!("expected a v1 trap")
    };
    assert_eq!(t.enterprise.to_string(), "1.3.6.1.4.1.11.2.3.9.1");
    assert_eq!(t.agent_addr, [192, 0, 2, 10]);
    assert_eq!(
        (t.generic_trap, t.specific_trap, t.time_stamp),
        (6, 1, 12345)
    );
    assert_eq!(varbinds(&m)[0].value, Value::Integer(1101));
    assert_eq!(reencode(&bytes), bytes);
}

#[test]
fn v3_report_with_usm_parameters() {
    let bytes = hex(V3_REPORT);
    let m = Message::decode(&bytes).unwrap();
    let Message::V3(v3) = &m else {
        panic!("expected v3")
    };
    assert_eq!(
        (
            v3.header.msg_id,
            v3.header.max_size,
            v3.header.flags,
            v3.header.security_model
        ),
        (42, 65507, 0, 3)
    );
    let usm = UsmSecurityParameters::decode(v3.security_parameters).unwrap();
    assert_eq!(usm.engine_id, hex("80001f8880e9630000d61ff449"));
    assert_eq!(
        (usm.engine_boots, usm.engine_time, usm.user_name),
        (3, 123_456, &b"initial"[..])
    );
    assert_eq!(
        (usm.auth_params, usm.priv_params),
        (&[0u8; 12][..], &b""[..])
    );
    let ScopedPduData::Plaintext(s) = &v3.data else {
        panic!("expected plaintext")
    };
    assert_eq!(s.pdu.ty, PduType::Report);
    assert_eq!(varbinds(&m)[0].value, Value::Counter32(7));
    assert_eq!(reencode(&bytes), bytes);

    // The USM parameters encode back to the same octets.
    let mut buf = [0u8; 128];
    let n = usm.encode(&mut buf).unwrap();
    assert_eq!(&buf[..n], v3.security_parameters);
}

#[test]
fn v3_encrypted_scoped_pdu() {
    let bytes = hex(V3_ENCRYPTED);
    let m = Message::decode(&bytes).unwrap();
    let Message::V3(v3) = &m else {
        panic!("expected v3")
    };
    assert_eq!(v3.header.flags, 0x07);
    assert_eq!(
        v3.data,
        ScopedPduData::Encrypted(&(0u8..16).collect::<Vec<_>>())
    );
    assert!(m.varbinds().is_none());
    assert_eq!(reencode(&bytes), bytes);
}

/// A response carrying the misbehaviours of the field notes: long-form
/// lengths everywhere, non-minimal INTEGERs, a Counter32 without its leading
/// zero octet, a page counter above 2^31 sent as INTEGER, an unknown
/// application tag, and one broken varbind in the middle.
#[test]
fn quirky_response_decodes_varbind_by_varbind() {
    let bytes = hex(QUIRKY_RESPONSE);
    let m = Message::decode(&bytes).unwrap();
    let p = std_pdu(community_pdu(&m).2);
    assert_eq!((p.ty, p.request_id), (PduType::Response, 5));
    let items: Vec<_> = m.varbinds().cloned().unwrap().collect();
    assert_eq!(items.len(), 5);
    assert_eq!(items[0].unwrap().value, Value::OctetString(b"MFP-3F"));
    assert_eq!(items[1].unwrap().value, Value::Counter32(u32::MAX));
    let bad = items[2].unwrap_err();
    assert_eq!(bad.kind, DecodeErrorKind::EmptyInteger);
    assert_eq!(
        &bytes[bad.offset..bad.offset + 2],
        [0x02, 0x00],
        "the offset points at the bad value"
    );
    assert_eq!(items[3].unwrap().value.as_u64(), Some(0x8000_0001));
    assert_eq!(
        items[4].unwrap().value,
        Value::Unknown {
            tag: 0x47,
            content: &[1, 2]
        }
    );

    // Re-encoding the good varbinds is canonical: shorter, and decodes the same.
    let good: Vec<VarBind<'_>> = items.iter().filter_map(|r| r.ok()).collect();
    let msg = m.clone().map_varbinds(|_| &good[..]);
    let mut out = vec![0u8; msg.encoded_len()];
    msg.encode(&mut out).unwrap();
    assert!(out.len() < bytes.len());
    let again = Message::decode(&out).unwrap();
    let again: Vec<VarBind<'_>> = again
        .varbinds()
        .cloned()
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(again, good);
}

#[test]
fn malformed_messages_say_what_and_where() {
    let bytes = hex(V2C_RESPONSE);
    // Every truncation is an error, never a panic, and points inside the input.
    for cut in 0..bytes.len() {
        let e = Message::decode(&bytes[..cut]).unwrap_err();
        assert!(e.offset <= cut, "cut {cut}: {e}");
    }
    // Trailing garbage after the message.
    let mut extra = bytes.clone();
    extra.push(0);
    assert_eq!(
        Message::decode(&extra).unwrap_err().kind,
        DecodeErrorKind::TrailingData
    );
    // Unknown version and unknown PDU tag.
    let mut v2 = hex(V2C_SET);
    v2[4] = 2;
    assert_eq!(
        Message::decode(&v2).unwrap_err().kind,
        DecodeErrorKind::UnknownVersion(2)
    );
    let mut bad_pdu = hex(V2C_SET);
    let at = bad_pdu.iter().position(|&b| b == 0xa3).unwrap();
    bad_pdu[at] = 0xa9;
    assert_eq!(
        Message::decode(&bad_pdu).unwrap_err().kind,
        DecodeErrorKind::UnknownPduType(0xa9)
    );
    // A v1 Trap-PDU inside a v3 scoped PDU is refused.
    let mut v3 = hex(V3_REPORT);
    let at = v3.iter().position(|&b| b == 0xa8).unwrap();
    v3[at] = 0xa4;
    assert_eq!(
        Message::decode(&v3).unwrap_err().kind,
        DecodeErrorKind::UnknownPduType(0xa4)
    );
}

#[test]
fn encoding_into_a_short_buffer_is_an_error() {
    let bytes = hex(V1_GET);
    let m = Message::decode(&bytes).unwrap();
    let vbs: Vec<VarBind<'_>> = m.varbinds().cloned().unwrap().map(Result::unwrap).collect();
    let msg = m.map_varbinds(|_| &vbs[..]);
    let mut buf = vec![0u8; bytes.len() - 1];
    assert_eq!(
        msg.encode(&mut buf),
        Err(dca_core::ber::EncodeError::BufferTooSmall {
            needed: bytes.len(),
            available: bytes.len() - 1
        })
    );
}
