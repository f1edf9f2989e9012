//! A plain, owned model of SNMP messages, with conversions to and from both
//! our codec and rasn-snmp, and proptest strategies over it.
#![allow(dead_code)]

use dca_core::ber::{Oid, OidRef};
use dca_core::snmp::{
    self as ours, CommunityMessage, HeaderData, Message, Pdu, PduType, Pdus, ScopedPdu,
    ScopedPduData, UsmSecurityParameters, V3Message, Value, VarBind, VarBinds, Version,
};
use proptest::collection::vec;
use proptest::prelude::*;
use rasn::types::{Integer, ObjectIdentifier, OctetString};
use rasn_smi::{v1 as smi1, v2 as smi2};
use rasn_snmp::{v1, v2, v2c, v3};

#[derive(Debug, Clone, PartialEq)]
pub enum MValue {
    Integer(i64),
    Str(Vec<u8>),
    Null,
    Oid(Vec<u32>),
    Ip([u8; 4]),
    Counter32(u32),
    Gauge32(u32),
    TimeTicks(u32),
    Opaque(Vec<u8>),
    Counter64(u64),
    NoSuchObject,
    NoSuchInstance,
    EndOfMibView,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MVarBind {
    pub name: Vec<u32>,
    pub value: MValue,
}

impl MVarBind {
    pub fn new(name: &[u32], value: MValue) -> Self {
        Self {
            name: name.to_vec(),
            value,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum MPdu {
    /// Every PDU with the common layout, GetBulk included (tag 0xa5).
    Std {
        tag: u8,
        request_id: i32,
        error_status: i32,
        error_index: i32,
        varbinds: Vec<MVarBind>,
    },
    TrapV1 {
        enterprise: Vec<u32>,
        agent: [u8; 4],
        generic: i32,
        specific: i32,
        time: u32,
        varbinds: Vec<MVarBind>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct MUsm {
    pub engine_id: Vec<u8>,
    pub boots: i32,
    pub time: i32,
    pub user: Vec<u8>,
    pub auth: Vec<u8>,
    pub privacy: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum MScoped {
    Plain {
        engine: Vec<u8>,
        context: Vec<u8>,
        pdu: MPdu,
    },
    Encrypted(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Model {
    Community {
        /// 0 for v1, 1 for v2c.
        version: i64,
        community: Vec<u8>,
        pdu: MPdu,
    },
    V3 {
        msg_id: i32,
        max_size: i32,
        flags: u8,
        security_model: i32,
        usm: MUsm,
        data: MScoped,
    },
}

// ---------------------------------------------------------------- strategies

fn arb_arcs() -> impl Strategy<Value = Vec<u32>> {
    let tail = prop_oneof![
        8 => vec(any::<u32>(), 0..16),
        8 => vec(0u32..300, 0..16),
        1 => vec(any::<u32>(), 126..=126),
    ];
    (0u32..=2, any::<u32>(), tail).prop_map(|(a, b, tail)| {
        let b = if a < 2 { b % 40 } else { b.min(u32::MAX - 80) };
        let mut arcs = vec![a, b];
        arcs.extend(tail);
        arcs
    })
}

fn arb_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..max)
}

fn arb_value(v2: bool) -> BoxedStrategy<MValue> {
    let common = prop_oneof![
        any::<i64>().prop_map(MValue::Integer),
        any::<i32>().prop_map(|v| MValue::Integer(v.into())),
        arb_bytes(200).prop_map(MValue::Str),
        Just(MValue::Null),
        arb_arcs().prop_map(MValue::Oid),
        any::<[u8; 4]>().prop_map(MValue::Ip),
        any::<u32>().prop_map(MValue::Counter32),
        any::<u32>().prop_map(MValue::Gauge32),
        any::<u32>().prop_map(MValue::TimeTicks),
        arb_bytes(40).prop_map(MValue::Opaque),
    ];
    if v2 {
        prop_oneof![
            10 => common,
            1 => any::<u64>().prop_map(MValue::Counter64),
            1 => Just(MValue::NoSuchObject),
            1 => Just(MValue::NoSuchInstance),
            1 => Just(MValue::EndOfMibView),
        ]
        .boxed()
    } else {
        common.boxed()
    }
}

fn arb_varbinds(v2: bool) -> impl Strategy<Value = Vec<MVarBind>> {
    vec(
        (arb_arcs(), arb_value(v2)).prop_map(|(name, value)| MVarBind { name, value }),
        0..12,
    )
}

/// PDUs of SNMPv2 (v2c and v3): error fields are non-negative (rasn-snmp
/// models them as unsigned, as RFC 3416 constrains them).
fn arb_v2_pdu() -> impl Strategy<Value = MPdu> {
    (
        prop::sample::select(vec![0xa0u8, 0xa1, 0xa2, 0xa3, 0xa5, 0xa6, 0xa7, 0xa8]),
        any::<i32>(),
        0..=i32::MAX,
        0..=i32::MAX,
        arb_varbinds(true),
    )
        .prop_map(
            |(tag, request_id, error_status, error_index, varbinds)| MPdu::Std {
                tag,
                request_id,
                error_status,
                error_index,
                varbinds,
            },
        )
}

fn arb_v1_pdu() -> impl Strategy<Value = MPdu> {
    let std = (
        prop::sample::select(vec![0xa0u8, 0xa1, 0xa2, 0xa3]),
        any::<i32>(),
        any::<i32>(),
        any::<i32>(),
        arb_varbinds(false),
    )
        .prop_map(
            |(tag, request_id, error_status, error_index, varbinds)| MPdu::Std {
                tag,
                request_id,
                error_status,
                error_index,
                varbinds,
            },
        );
    let trap = (
        arb_arcs(),
        any::<[u8; 4]>(),
        any::<i32>(),
        any::<i32>(),
        any::<u32>(),
        arb_varbinds(false),
    )
        .prop_map(
            |(enterprise, agent, generic, specific, time, varbinds)| MPdu::TrapV1 {
                enterprise,
                agent,
                generic,
                specific,
                time,
                varbinds,
            },
        );
    prop_oneof![4 => std, 1 => trap]
}

fn arb_usm() -> impl Strategy<Value = MUsm> {
    (
        arb_bytes(32),
        0..=i32::MAX,
        0..=i32::MAX,
        arb_bytes(32),
        arb_bytes(48),
        arb_bytes(16),
    )
        .prop_map(|(engine_id, boots, time, user, auth, privacy)| MUsm {
            engine_id,
            boots,
            time,
            user,
            auth,
            privacy,
        })
}

pub fn arb_message() -> impl Strategy<Value = Model> {
    let v1 = (arb_bytes(20), arb_v1_pdu()).prop_map(|(community, pdu)| Model::Community {
        version: 0,
        community,
        pdu,
    });
    let v2c = (arb_bytes(20), arb_v2_pdu()).prop_map(|(community, pdu)| Model::Community {
        version: 1,
        community,
        pdu,
    });
    let scoped = prop_oneof![
        3 => (arb_bytes(32), arb_bytes(16), arb_v2_pdu()).prop_map(|(engine, context, pdu)| MScoped::Plain { engine, context, pdu }),
        1 => arb_bytes(300).prop_map(MScoped::Encrypted),
    ];
    let v3 = (
        0..=i32::MAX,
        484..=i32::MAX,
        any::<u8>(),
        1..=i32::MAX,
        arb_usm(),
        scoped,
    )
        .prop_map(
            |(msg_id, max_size, flags, security_model, usm, data)| Model::V3 {
                msg_id,
                max_size,
                flags,
                security_model,
                usm,
                data,
            },
        );
    prop_oneof![v1, v2c, v3]
}

// ---------------------------------------------------------------- our codec

/// OIDs must outlive the varbinds that borrow them, so they are built first.
struct OurVarBinds {
    names: Vec<Oid>,
    values: Vec<Option<Oid>>,
}

impl OurVarBinds {
    fn new(list: &[MVarBind]) -> Self {
        let oid = |arcs: &[u32]| Oid::from_arcs(arcs).expect("generated OIDs are valid");
        Self {
            names: list.iter().map(|vb| oid(&vb.name)).collect(),
            values: list
                .iter()
                .map(|vb| match &vb.value {
                    MValue::Oid(a) => Some(oid(a)),
                    _ => None,
                })
                .collect(),
        }
    }

    fn varbinds<'a>(&'a self, list: &'a [MVarBind]) -> Vec<VarBind<'a>> {
        list.iter()
            .zip(&self.names)
            .zip(&self.values)
            .map(|((vb, name), oid)| {
                VarBind::new(name.as_oid_ref(), our_value(&vb.value, oid.as_ref()))
            })
            .collect()
    }
}

fn our_value<'a>(v: &'a MValue, oid: Option<&'a Oid>) -> Value<'a> {
    match v {
        MValue::Integer(i) => Value::Integer(*i),
        MValue::Str(b) => Value::OctetString(b),
        MValue::Null => Value::Null,
        MValue::Oid(_) => Value::ObjectId(oid.expect("built with the varbinds").as_oid_ref()),
        MValue::Ip(a) => Value::IpAddress(*a),
        MValue::Counter32(c) => Value::Counter32(*c),
        MValue::Gauge32(c) => Value::Gauge32(*c),
        MValue::TimeTicks(c) => Value::TimeTicks(*c),
        MValue::Opaque(b) => Value::Opaque(b),
        MValue::Counter64(c) => Value::Counter64(*c),
        MValue::NoSuchObject => Value::NoSuchObject,
        MValue::NoSuchInstance => Value::NoSuchInstance,
        MValue::EndOfMibView => Value::EndOfMibView,
    }
}

fn pdu_varbinds(pdu: &MPdu) -> &[MVarBind] {
    match pdu {
        MPdu::Std { varbinds, .. } | MPdu::TrapV1 { varbinds, .. } => varbinds,
    }
}

fn with_our_pdu<R>(pdu: &MPdu, f: impl FnOnce(Pdus<'_, &[VarBind<'_>]>) -> R) -> R {
    let store = OurVarBinds::new(pdu_varbinds(pdu));
    let vbs = store.varbinds(pdu_varbinds(pdu));
    match pdu {
        MPdu::Std {
            tag,
            request_id,
            error_status,
            error_index,
            ..
        } => f(Pdus::Pdu(Pdu {
            ty: PduType::from_tag(*tag).expect("generated tags are PDU tags"),
            request_id: *request_id,
            error_status: *error_status,
            error_index: *error_index,
            varbinds: &vbs,
        })),
        MPdu::TrapV1 {
            enterprise,
            agent,
            generic,
            specific,
            time,
            ..
        } => {
            let ent = Oid::from_arcs(enterprise).expect("valid");
            f(Pdus::TrapV1(ours::TrapV1 {
                enterprise: ent.as_oid_ref(),
                agent_addr: *agent,
                generic_trap: *generic,
                specific_trap: *specific,
                time_stamp: *time,
                varbinds: &vbs,
                offset: 0,
            }))
        }
    }
}

fn encode_our_usm(u: &MUsm) -> Vec<u8> {
    let p = UsmSecurityParameters {
        engine_id: &u.engine_id,
        engine_boots: u.boots,
        engine_time: u.time,
        user_name: &u.user,
        auth_params: &u.auth,
        priv_params: &u.privacy,
    };
    let mut buf = vec![0u8; p.encoded_len()];
    let n = p.encode(&mut buf).expect("sized by encoded_len");
    buf.truncate(n);
    buf
}

pub fn encode_ours(m: &Model) -> Vec<u8> {
    let mut buf = vec![0u8; 70_000];
    let n = match m {
        Model::Community {
            version,
            community,
            pdu,
        } => with_our_pdu(pdu, |pdu| {
            let msg = Message::Community(CommunityMessage {
                version: if *version == 0 {
                    Version::V1
                } else {
                    Version::V2c
                },
                community,
                pdu,
            });
            assert!(
                msg.encode(&mut buf[..msg.encoded_len() - 1]).is_err(),
                "one byte short must fail"
            );
            msg.encode(&mut buf).expect("fits")
        }),
        Model::V3 {
            msg_id,
            max_size,
            flags,
            security_model,
            usm,
            data,
        } => {
            let sec = encode_our_usm(usm);
            let header = HeaderData {
                msg_id: *msg_id,
                max_size: *max_size,
                flags: *flags,
                security_model: *security_model,
            };
            match data {
                MScoped::Encrypted(b) => Message::V3(V3Message {
                    header,
                    security_parameters: &sec,
                    data: ScopedPduData::<&[VarBind<'_>]>::Encrypted(b),
                })
                .encode(&mut buf)
                .expect("fits"),
                MScoped::Plain {
                    engine,
                    context,
                    pdu,
                } => with_our_pdu(pdu, |pdus| {
                    let Pdus::Pdu(pdu) = pdus else {
                        panic!("v3 carries v2 PDUs")
                    };
                    Message::V3(V3Message {
                        header,
                        security_parameters: &sec,
                        data: ScopedPduData::Plaintext(ScopedPdu {
                            context_engine_id: engine,
                            context_name: context,
                            pdu,
                        }),
                    })
                    .encode(&mut buf)
                    .expect("fits")
                }),
            }
        }
    };
    buf.truncate(n);
    buf
}

fn arcs(o: OidRef<'_>) -> Vec<u32> {
    o.arcs().collect()
}

fn model_value(v: Value<'_>) -> Result<MValue, String> {
    Ok(match v {
        Value::Integer(i) => MValue::Integer(i),
        Value::OctetString(b) => MValue::Str(b.to_vec()),
        Value::Null => MValue::Null,
        Value::ObjectId(o) => MValue::Oid(arcs(o)),
        Value::IpAddress(a) => MValue::Ip(a),
        Value::Counter32(c) => MValue::Counter32(c),
        Value::Gauge32(c) => MValue::Gauge32(c),
        Value::TimeTicks(c) => MValue::TimeTicks(c),
        Value::Opaque(b) => MValue::Opaque(b.to_vec()),
        Value::Counter64(c) => MValue::Counter64(c),
        Value::NoSuchObject => MValue::NoSuchObject,
        Value::NoSuchInstance => MValue::NoSuchInstance,
        Value::EndOfMibView => MValue::EndOfMibView,
        Value::Unknown { tag, .. } => return Err(format!("unknown tag {tag:#x}")),
    })
}

fn model_varbinds(list: VarBinds<'_>) -> Result<Vec<MVarBind>, String> {
    list.map(|vb| {
        let vb = vb.map_err(|e| e.to_string())?;
        Ok(MVarBind {
            name: arcs(vb.name),
            value: model_value(vb.value)?,
        })
    })
    .collect()
}

fn model_pdu(p: Pdus<'_, VarBinds<'_>>) -> Result<MPdu, String> {
    Ok(match p {
        Pdus::Pdu(p) => MPdu::Std {
            tag: p.ty.tag(),
            request_id: p.request_id,
            error_status: p.error_status,
            error_index: p.error_index,
            varbinds: model_varbinds(p.varbinds)?,
        },
        Pdus::TrapV1(t) => MPdu::TrapV1 {
            enterprise: arcs(t.enterprise),
            agent: t.agent_addr,
            generic: t.generic_trap,
            specific: t.specific_trap,
            time: t.time_stamp,
            varbinds: model_varbinds(t.varbinds)?,
        },
    })
}

pub fn decode_ours(bytes: &[u8]) -> Result<Model, String> {
    Ok(match Message::decode(bytes).map_err(|e| e.to_string())? {
        Message::Community(m) => Model::Community {
            version: m.version.wire(),
            community: m.community.to_vec(),
            pdu: model_pdu(m.pdu)?,
        },
        Message::V3(m) => {
            let u =
                UsmSecurityParameters::decode(m.security_parameters).map_err(|e| e.to_string())?;
            Model::V3 {
                msg_id: m.header.msg_id,
                max_size: m.header.max_size,
                flags: m.header.flags,
                security_model: m.header.security_model,
                usm: MUsm {
                    engine_id: u.engine_id.to_vec(),
                    boots: u.engine_boots,
                    time: u.engine_time,
                    user: u.user_name.to_vec(),
                    auth: u.auth_params.to_vec(),
                    privacy: u.priv_params.to_vec(),
                },
                data: match m.data {
                    ScopedPduData::Encrypted(b) => MScoped::Encrypted(b.to_vec()),
                    ScopedPduData::Plaintext(s) => MScoped::Plain {
                        engine: s.context_engine_id.to_vec(),
                        context: s.context_name.to_vec(),
                        pdu: model_pdu(Pdus::Pdu(s.pdu))?,
                    },
                },
            }
        }
    })
}

// ---------------------------------------------------------------- rasn-snmp

fn r_oid(arcs: &[u32]) -> ObjectIdentifier {
    ObjectIdentifier::new(arcs.to_vec()).expect("generated OIDs are valid")
}

fn r_opaque(content: &[u8]) -> smi1::Opaque {
    // rasn-smi builds an Opaque only by decoding one.
    let mut tlv = vec![0x44];
    let len = content.len();
    if len < 0x80 {
        tlv.push(len as u8);
    } else {
        tlv.extend([0x82, (len >> 8) as u8, len as u8]);
    }
    tlv.extend_from_slice(content);
    rasn::ber::decode(&tlv).expect("an Opaque TLV")
}

fn r_ip(a: [u8; 4]) -> smi1::IpAddress {
    smi1::IpAddress(a.into())
}

fn v1_value(v: &MValue) -> smi1::ObjectSyntax {
    use smi1::{ApplicationSyntax as A, ObjectSyntax as O, SimpleSyntax as S};
    match v {
        MValue::Integer(i) => O::Simple(S::Number(Integer::from(*i))),
        MValue::Str(b) => O::Simple(S::String(OctetString::from(b.clone()))),
        MValue::Null => O::Simple(S::Empty),
        MValue::Oid(a) => O::Simple(S::Object(r_oid(a))),
        MValue::Ip(a) => O::ApplicationWide(A::Address(smi1::NetworkAddress::Internet(r_ip(*a)))),
        MValue::Counter32(c) => O::ApplicationWide(A::Counter(smi1::Counter(*c))),
        MValue::Gauge32(c) => O::ApplicationWide(A::Gauge(smi1::Gauge(*c))),
        MValue::TimeTicks(c) => O::ApplicationWide(A::Ticks(smi1::TimeTicks(*c))),
        MValue::Opaque(b) => O::ApplicationWide(A::Arbitrary(r_opaque(b))),
        other => panic!("{other:?} does not exist in SNMPv1"),
    }
}

fn v2_value(v: &MValue) -> v2::VarBindValue {
    use smi2::{ApplicationSyntax as A, ObjectSyntax as O, SimpleSyntax as S};
    use v2::VarBindValue as V;
    match v {
        MValue::Integer(i) => V::Value(O::Simple(S::Integer(Integer::from(*i)))),
        MValue::Str(b) => V::Value(O::Simple(S::String(OctetString::from(b.clone())))),
        MValue::Null => V::Unspecified,
        MValue::Oid(a) => V::Value(O::Simple(S::ObjectId(r_oid(a)))),
        MValue::Ip(a) => V::Value(O::ApplicationWide(A::Address(r_ip(*a)))),
        MValue::Counter32(c) => V::Value(O::ApplicationWide(A::Counter(smi1::Counter(*c)))),
        MValue::Gauge32(c) => V::Value(O::ApplicationWide(A::Unsigned(smi1::Gauge(*c)))),
        MValue::TimeTicks(c) => V::Value(O::ApplicationWide(A::Ticks(smi1::TimeTicks(*c)))),
        MValue::Opaque(b) => V::Value(O::ApplicationWide(A::Arbitrary(r_opaque(b)))),
        MValue::Counter64(c) => V::Value(O::ApplicationWide(A::BigCounter(smi2::Counter64(*c)))),
        MValue::NoSuchObject => V::NoSuchObject,
        MValue::NoSuchInstance => V::NoSuchInstance,
        MValue::EndOfMibView => V::EndOfMibView,
    }
}

fn v1_pdus(pdu: &MPdu) -> v1::Pdus {
    let vbs = |l: &[MVarBind]| -> Vec<v1::VarBind> {
        l.iter()
            .map(|vb| v1::VarBind {
                name: r_oid(&vb.name),
                value: v1_value(&vb.value),
            })
            .collect()
    };
    match pdu {
        MPdu::Std {
            tag,
            request_id,
            error_status,
            error_index,
            varbinds,
        } => {
            let p = v1::Pdu {
                request_id: (*request_id).into(),
                error_status: (*error_status).into(),
                error_index: (*error_index).into(),
                variable_bindings: vbs(varbinds),
            };
            match tag {
                0xa0 => v1::Pdus::GetRequest(v1::GetRequest(p)),
                0xa1 => v1::Pdus::GetNextRequest(v1::GetNextRequest(p)),
                0xa2 => v1::Pdus::GetResponse(v1::GetResponse(p)),
                0xa3 => v1::Pdus::SetRequest(v1::SetRequest(p)),
                t => panic!("{t:#x} is not a v1 PDU"),
            }
        }
        MPdu::TrapV1 {
            enterprise,
            agent,
            generic,
            specific,
            time,
            varbinds,
        } => v1::Pdus::Trap(v1::Trap {
            enterprise: r_oid(enterprise),
            agent_addr: smi1::NetworkAddress::Internet(r_ip(*agent)),
            generic_trap: (*generic).into(),
            specific_trap: (*specific).into(),
            time_stamp: smi1::TimeTicks(*time),
            variable_bindings: vbs(varbinds),
        }),
    }
}

fn v2_pdus(pdu: &MPdu) -> v2::Pdus {
    let MPdu::Std {
        tag,
        request_id,
        error_status,
        error_index,
        varbinds,
    } = pdu
    else {
        panic!("no Trap-PDU in SNMPv2")
    };
    let list: Vec<v2::VarBind> = varbinds
        .iter()
        .map(|vb| v2::VarBind {
            name: r_oid(&vb.name),
            value: v2_value(&vb.value),
        })
        .collect();
    let unsigned = |v: i32| u32::try_from(v).expect("generated non-negative");
    let p = v2::Pdu {
        request_id: *request_id,
        error_status: unsigned(*error_status),
        error_index: unsigned(*error_index),
        variable_bindings: list,
    };
    match tag {
        0xa0 => v2::Pdus::GetRequest(v2::GetRequest(p)),
        0xa1 => v2::Pdus::GetNextRequest(v2::GetNextRequest(p)),
        0xa2 => v2::Pdus::Response(v2::Response(p)),
        0xa3 => v2::Pdus::SetRequest(v2::SetRequest(p)),
        0xa5 => v2::Pdus::GetBulkRequest(v2::GetBulkRequest(v2::BulkPdu {
            request_id: p.request_id,
            non_repeaters: p.error_status,
            max_repetitions: p.error_index,
            variable_bindings: p.variable_bindings,
        })),
        0xa6 => v2::Pdus::InformRequest(v2::InformRequest(p)),
        0xa7 => v2::Pdus::Trap(v2::Trap(p)),
        0xa8 => v2::Pdus::Report(v2::Report(p)),
        t => panic!("{t:#x} is not a v2 PDU"),
    }
}

fn r_usm(u: &MUsm) -> v3::USMSecurityParameters {
    v3::USMSecurityParameters {
        authoritative_engine_id: OctetString::from(u.engine_id.clone()),
        authoritative_engine_boots: u.boots.into(),
        authoritative_engine_time: u.time.into(),
        user_name: OctetString::from(u.user.clone()),
        authentication_parameters: OctetString::from(u.auth.clone()),
        privacy_parameters: OctetString::from(u.privacy.clone()),
    }
}

pub fn encode_rasn(m: &Model) -> Vec<u8> {
    match m {
        Model::Community {
            version: 0,
            community,
            pdu,
        } => rasn::ber::encode(&v1::Message {
            version: 0.into(),
            community: OctetString::from(community.clone()),
            data: v1_pdus(pdu),
        }),
        Model::Community { community, pdu, .. } => rasn::ber::encode(&v2c::Message {
            version: 1.into(),
            community: OctetString::from(community.clone()),
            data: v2_pdus(pdu),
        }),
        Model::V3 {
            msg_id,
            max_size,
            flags,
            security_model,
            usm,
            data,
        } => rasn::ber::encode(&v3::Message {
            version: 3.into(),
            global_data: v3::HeaderData {
                message_id: (*msg_id).into(),
                max_size: (*max_size).into(),
                flags: OctetString::from(vec![*flags]),
                security_model: (*security_model).into(),
            },
            security_parameters: OctetString::from(
                rasn::ber::encode(&r_usm(usm)).expect("encodes"),
            ),
            scoped_data: match data {
                MScoped::Encrypted(b) => {
                    v3::ScopedPduData::EncryptedPdu(OctetString::from(b.clone()))
                }
                MScoped::Plain {
                    engine,
                    context,
                    pdu,
                } => v3::ScopedPduData::CleartextPdu(v3::ScopedPdu {
                    engine_id: OctetString::from(engine.clone()),
                    name: OctetString::from(context.clone()),
                    data: v2_pdus(pdu),
                }),
            },
        }),
    }
    .expect("rasn encodes the model")
}

fn int<T: TryFrom<Integer>>(i: Integer) -> Option<T> {
    T::try_from(i).ok()
}

fn from_v1_value(v: smi1::ObjectSyntax) -> Option<MValue> {
    use smi1::{ApplicationSyntax as A, ObjectSyntax as O, SimpleSyntax as S};
    Some(match v {
        O::Simple(S::Number(i)) => MValue::Integer(int(i)?),
        O::Simple(S::String(b)) => MValue::Str(b.to_vec()),
        O::Simple(S::Empty) => MValue::Null,
        O::Simple(S::Object(o)) => MValue::Oid(o.to_vec()),
        O::ApplicationWide(A::Address(smi1::NetworkAddress::Internet(a))) => MValue::Ip(*a.0),
        O::ApplicationWide(A::Counter(c)) => MValue::Counter32(c.0),
        O::ApplicationWide(A::Gauge(c)) => MValue::Gauge32(c.0),
        O::ApplicationWide(A::Ticks(c)) => MValue::TimeTicks(c.0),
        O::ApplicationWide(A::Arbitrary(o)) => MValue::Opaque(o.as_ref().to_vec()),
    })
}

fn from_v2_value(v: v2::VarBindValue) -> Option<MValue> {
    use smi2::{ApplicationSyntax as A, ObjectSyntax as O, SimpleSyntax as S};
    use v2::VarBindValue as V;
    Some(match v {
        V::Value(O::Simple(S::Integer(i))) => MValue::Integer(int(i)?),
        V::Value(O::Simple(S::String(b))) => MValue::Str(b.to_vec()),
        V::Value(O::Simple(S::ObjectId(o))) => MValue::Oid(o.to_vec()),
        V::Value(O::ApplicationWide(A::Address(a))) => MValue::Ip(*a.0),
        V::Value(O::ApplicationWide(A::Counter(c))) => MValue::Counter32(c.0),
        V::Value(O::ApplicationWide(A::Unsigned(c))) => MValue::Gauge32(c.0),
        V::Value(O::ApplicationWide(A::Ticks(c))) => MValue::TimeTicks(c.0),
        V::Value(O::ApplicationWide(A::Arbitrary(o))) => MValue::Opaque(o.as_ref().to_vec()),
        V::Value(O::ApplicationWide(A::BigCounter(c))) => MValue::Counter64(c.0),
        V::Unspecified => MValue::Null,
        V::NoSuchObject => MValue::NoSuchObject,
        V::NoSuchInstance => MValue::NoSuchInstance,
        V::EndOfMibView => MValue::EndOfMibView,
    })
}

fn from_v1_pdus(p: v1::Pdus) -> Option<MPdu> {
    let vbs = |l: Vec<v1::VarBind>| -> Option<Vec<MVarBind>> {
        l.into_iter()
            .map(|vb| {
                Some(MVarBind {
                    name: vb.name.to_vec(),
                    value: from_v1_value(vb.value)?,
                })
            })
            .collect()
    };
    let std = |tag: u8, p: v1::Pdu| -> Option<MPdu> {
        Some(MPdu::Std {
            tag,
            request_id: int(p.request_id)?,
            error_status: int(p.error_status)?,
            error_index: int(p.error_index)?,
            varbinds: vbs(p.variable_bindings)?,
        })
    };
    match p {
        v1::Pdus::GetRequest(p) => std(0xa0, p.0),
        v1::Pdus::GetNextRequest(p) => std(0xa1, p.0),
        v1::Pdus::GetResponse(p) => std(0xa2, p.0),
        v1::Pdus::SetRequest(p) => std(0xa3, p.0),
        v1::Pdus::Trap(t) => Some(MPdu::TrapV1 {
            enterprise: t.enterprise.to_vec(),
            agent: match t.agent_addr {
                smi1::NetworkAddress::Internet(a) => *a.0,
            },
            generic: int(t.generic_trap)?,
            specific: int(t.specific_trap)?,
            time: t.time_stamp.0,
            varbinds: vbs(t.variable_bindings)?,
        }),
    }
}

fn from_v2_pdus(p: v2::Pdus) -> Option<MPdu> {
    let std = |tag: u8, p: v2::Pdu| -> Option<MPdu> {
        Some(MPdu::Std {
            tag,
            request_id: p.request_id,
            error_status: p.error_status.try_into().ok()?,
            error_index: p.error_index.try_into().ok()?,
            varbinds: p
                .variable_bindings
                .into_iter()
                .map(|vb| {
                    Some(MVarBind {
                        name: vb.name.to_vec(),
                        value: from_v2_value(vb.value)?,
                    })
                })
                .collect::<Option<_>>()?,
        })
    };
    match p {
        v2::Pdus::GetRequest(p) => std(0xa0, p.0),
        v2::Pdus::GetNextRequest(p) => std(0xa1, p.0),
        v2::Pdus::Response(p) => std(0xa2, p.0),
        v2::Pdus::SetRequest(p) => std(0xa3, p.0),
        v2::Pdus::GetBulkRequest(b) => std(
            0xa5,
            v2::Pdu {
                request_id: b.0.request_id,
                error_status: b.0.non_repeaters,
                error_index: b.0.max_repetitions,
                variable_bindings: b.0.variable_bindings,
            },
        ),
        v2::Pdus::InformRequest(p) => std(0xa6, p.0),
        v2::Pdus::Trap(p) => std(0xa7, p.0),
        v2::Pdus::Report(p) => std(0xa8, p.0),
    }
}

/// Decodes arbitrary bytes with rasn-snmp as whichever message type its
/// version field names; None if rasn-snmp refuses them or the content falls
/// outside the model (integers beyond 64 bits, say).
pub fn decode_rasn_any(bytes: &[u8]) -> Option<Model> {
    let probe = |version: i64, pdu| Model::Community {
        version,
        community: Vec::new(),
        pdu,
    };
    let empty = MPdu::Std {
        tag: 0xa0,
        request_id: 0,
        error_status: 0,
        error_index: 0,
        varbinds: Vec::new(),
    };
    let v3 = Model::V3 {
        msg_id: 0,
        max_size: 0,
        flags: 0,
        security_model: 0,
        usm: MUsm {
            engine_id: Vec::new(),
            boots: 0,
            time: 0,
            user: Vec::new(),
            auth: Vec::new(),
            privacy: Vec::new(),
        },
        data: MScoped::Encrypted(Vec::new()),
    };
    [probe(0, empty.clone()), probe(1, empty), v3]
        .iter()
        .find_map(|shape| {
            let m = decode_rasn(shape, bytes)?;
            let version_matches = match (&m, shape) {
                (Model::Community { version: a, .. }, Model::Community { version: b, .. }) => {
                    a == b
                }
                (Model::V3 { .. }, Model::V3 { .. }) => true,
                _ => false,
            };
            version_matches.then_some(m)
        })
}

/// Decodes with rasn-snmp, choosing the message type the model says (rasn
/// needs the version to pick a type), and converts back to the model.
pub fn decode_rasn(m: &Model, bytes: &[u8]) -> Option<Model> {
    match m {
        Model::Community { version: 0, .. } => {
            let r: v1::Message<v1::Pdus> = rasn::ber::decode(bytes).ok()?;
            Some(Model::Community {
                version: int(r.version)?,
                community: r.community.to_vec(),
                pdu: from_v1_pdus(r.data)?,
            })
        }
        Model::Community { .. } => {
            let r: v2c::Message<v2::Pdus> = rasn::ber::decode(bytes).ok()?;
            Some(Model::Community {
                version: int(r.version)?,
                community: r.community.to_vec(),
                pdu: from_v2_pdus(r.data)?,
            })
        }
        Model::V3 { .. } => {
            let r: v3::Message = rasn::ber::decode(bytes).ok()?;
            if int::<i64>(r.version.clone())? != 3 {
                return None;
            }
            let u: v3::USMSecurityParameters = rasn::ber::decode(&r.security_parameters).ok()?;
            let [flags] = r.global_data.flags.as_ref() else {
                return None;
            };
            Some(Model::V3 {
                msg_id: int(r.global_data.message_id)?,
                max_size: int(r.global_data.max_size)?,
                flags: *flags,
                security_model: int(r.global_data.security_model)?,
                usm: MUsm {
                    engine_id: u.authoritative_engine_id.to_vec(),
                    boots: int(u.authoritative_engine_boots)?,
                    time: int(u.authoritative_engine_time)?,
                    user: u.user_name.to_vec(),
                    auth: u.authentication_parameters.to_vec(),
                    privacy: u.privacy_parameters.to_vec(),
                },
                data: match r.scoped_data {
                    v3::ScopedPduData::EncryptedPdu(b) => MScoped::Encrypted(b.to_vec()),
                    v3::ScopedPduData::CleartextPdu(s) => MScoped::Plain {
                        engine: s.engine_id.to_vec(),
                        context: s.name.to_vec(),
                        pdu: from_v2_pdus(s.data)?,
                    },
                },
            })
        }
    }
}
