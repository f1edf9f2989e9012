//! The emulated SNMP agent: requests in, responses out, with rasn-snmp.
//!
//! The agent decodes and encodes with rasn-snmp, not with dca-core's codec,
//! so every simulated poll is also an interoperability test between two
//! independent implementations. Behaviour follows RFC 3416 (v2c) and RFC
//! 1157 / RFC 3584 (v1):
//! - GET: noSuchObject / noSuchInstance (v2c), noSuchName with the index
//!   of the first missing varbind (v1);
//! - GETNEXT: endOfMibView past the end (v2c), noSuchName (v1); v1 skips
//!   Counter64 values, which SNMPv1 cannot carry;
//! - GETBULK: non-repeaters and max-repetitions honoured, and the response
//!   cut to the varbinds that fit the maximum response size;
//! - a GET or GETNEXT response that does not fit is `tooBig` with no
//!   varbinds; SET is refused (notWritable in v2c, noSuchName in v1);
//! - a wrong community gets no answer, as real agents do.

use crate::mib::{Dynamic, Lookup, SimValue, Slot, Template};
use rasn::types::{Integer, ObjectIdentifier, OctetString};
use rasn_smi::{v1 as smi1, v2 as smi2};
use rasn_snmp::{v1, v2, v2c};

/// Limits and behaviours of one emulated agent that faults may change.
#[derive(Debug, Clone)]
pub struct Behaviour {
    pub community: Vec<u8>,
    /// The largest response the agent sends, in octets.
    pub max_response: usize,
    /// Answers SNMPv1 only (v2c requests are dropped).
    pub v1_only: bool,
    /// GetBulk is answered with genErr, as by agents that lack it.
    pub no_bulk: bool,
    /// Responses with more varbinds than this are `tooBig` instead.
    pub too_big_above: Option<usize>,
    /// SNMPv3: the users and context every device knows (each device has
    /// its own engine, see `usm_agent`).
    pub v3: Option<std::sync::Arc<crate::usm_agent::V3Config>>,
    /// Answer SNMPv3 only (v1 and v2c requests get no answer).
    pub v3_only: bool,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            community: b"public".to_vec(),
            max_response: 1472,
            v1_only: false,
            no_bulk: false,
            too_big_above: None,
            v3: None,
            v3_only: false,
        }
    }
}

/// A device as the agent sees it: its template and how to compute the
/// dynamic values.
#[allow(missing_debug_implementations)] // holds a closure
pub struct View<'a> {
    pub template: &'a Template,
    /// A dynamic value now, or `None` if that row is absent right now.
    pub eval: &'a (dyn Fn(Dynamic) -> Option<SimValue> + Sync),
}

impl View<'_> {
    fn value(&self, slot: &Slot) -> Option<SimValue> {
        match slot {
            Slot::Fixed(v) => Some(v.clone()),
            Slot::Dynamic(d) => (self.eval)(*d),
        }
    }

    fn present(&self, slot: &Slot) -> bool {
        matches!(slot, Slot::Fixed(_)) || self.value(slot).is_some()
    }

    /// GET of one name.
    fn get(&self, name: &[u32]) -> Result<SimValue, Lookup<'static>> {
        match self.template.get(name) {
            Lookup::Found(slot) => self.value(slot).ok_or(Lookup::NoSuchInstance),
            Lookup::NoSuchInstance => Err(Lookup::NoSuchInstance),
            Lookup::NoSuchObject => Err(Lookup::NoSuchObject),
        }
    }

    /// GETNEXT from `after`, over present values that `accept` takes.
    fn next(
        &self,
        after: &[u32],
        accept: impl Fn(&SimValue) -> bool,
    ) -> Option<(Vec<u32>, SimValue)> {
        let mut from = after.to_vec();
        loop {
            let (name, slot) = self.template.next_after(&from, |s| self.present(s))?;
            match self.value(slot) {
                Some(v) if accept(&v) => return Some((name.to_vec(), v)),
                _ => from = name.to_vec(),
            }
        }
    }
}

/// What the agent does with a datagram.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    Send(Vec<u8>),
    /// No answer: wrong community, undecodable input, unsupported version.
    Drop(DropReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    Undecodable,
    WrongCommunity,
    VersionRefused,
    NotARequest,
}

fn oid(arcs: &[u32]) -> ObjectIdentifier {
    // Template OIDs come from parsed text or recordings and are valid; a
    // degenerate one falls back to 0.0 rather than failing the response.
    ObjectIdentifier::new(arcs.to_vec())
        .unwrap_or_else(|| ObjectIdentifier::new_unchecked(vec![0, 0].into()))
}

fn opaque(content: &[u8]) -> smi1::Opaque {
    // rasn-smi builds an Opaque only by decoding one.
    let mut tlv = vec![0x44];
    let len = content.len();
    if len < 0x80 {
        tlv.push(len as u8);
    } else {
        tlv.extend([0x82, (len >> 8) as u8, len as u8]);
    }
    tlv.extend_from_slice(content);
    rasn::ber::decode(&tlv)
        .unwrap_or_else(|_| rasn::ber::decode(&[0x44, 0]).expect("an empty Opaque decodes"))
}

fn v2_value(v: SimValue) -> v2::VarBindValue {
    use smi2::{ApplicationSyntax as A, ObjectSyntax as O, SimpleSyntax as S};
    use v2::VarBindValue as V;
    match v {
        SimValue::Integer(i) => V::Value(O::Simple(S::Integer(Integer::from(i)))),
        SimValue::Octets(b) => V::Value(O::Simple(S::String(OctetString::from(b)))),
        SimValue::Null => V::Unspecified,
        SimValue::Oid(a) => V::Value(O::Simple(S::ObjectId(oid(&a)))),
        SimValue::Ip(a) => V::Value(O::ApplicationWide(A::Address(smi1::IpAddress(a.into())))),
        SimValue::Counter32(c) => V::Value(O::ApplicationWide(A::Counter(smi1::Counter(c)))),
        SimValue::Gauge32(c) => V::Value(O::ApplicationWide(A::Unsigned(smi1::Gauge(c)))),
        SimValue::TimeTicks(c) => V::Value(O::ApplicationWide(A::Ticks(smi1::TimeTicks(c)))),
        SimValue::Opaque(b) => V::Value(O::ApplicationWide(A::Arbitrary(opaque(&b)))),
        SimValue::Counter64(c) => V::Value(O::ApplicationWide(A::BigCounter(smi2::Counter64(c)))),
    }
}

fn v1_value(v: SimValue) -> smi1::ObjectSyntax {
    use smi1::{ApplicationSyntax as A, ObjectSyntax as O, SimpleSyntax as S};
    match v {
        SimValue::Integer(i) => O::Simple(S::Number(Integer::from(i))),
        SimValue::Octets(b) => O::Simple(S::String(OctetString::from(b))),
        SimValue::Null => O::Simple(S::Empty),
        SimValue::Oid(a) => O::Simple(S::Object(oid(&a))),
        SimValue::Ip(a) => O::ApplicationWide(A::Address(smi1::NetworkAddress::Internet(
            smi1::IpAddress(a.into()),
        ))),
        SimValue::Counter32(c) => O::ApplicationWide(A::Counter(smi1::Counter(c))),
        SimValue::Gauge32(c) => O::ApplicationWide(A::Gauge(smi1::Gauge(c))),
        SimValue::TimeTicks(c) => O::ApplicationWide(A::Ticks(smi1::TimeTicks(c))),
        SimValue::Opaque(b) => O::ApplicationWide(A::Arbitrary(opaque(&b))),
        // Never served to v1 (GETNEXT skips it, GET answers noSuchName).
        SimValue::Counter64(_) => O::Simple(S::Empty),
    }
}

fn not_counter64(v: &SimValue) -> bool {
    !matches!(v, SimValue::Counter64(_))
}

/// Encoded size of one varbind, to fill GetBulk responses up to the limit.
fn encoded_len<T: rasn::Encode>(vb: &T) -> usize {
    rasn::ber::encode(vb).map_or(usize::MAX / 2, |b| b.len())
}

/// Handles one datagram.
pub fn respond(view: &View<'_>, b: &Behaviour, request: &[u8]) -> Reply {
    // The version decides the message type; rasn needs to know it first.
    match peek_version(request) {
        Some(0 | 1) if b.v3_only => Reply::Drop(DropReason::VersionRefused),
        Some(1) if b.v1_only => Reply::Drop(DropReason::VersionRefused),
        Some(1) => match rasn::ber::decode::<v2c::Message<v2::Pdus>>(request) {
            Ok(m) if m.community.as_ref() != b.community.as_slice() => {
                Reply::Drop(DropReason::WrongCommunity)
            }
            Ok(m) => respond_v2c(view, b, m),
            Err(_) => Reply::Drop(DropReason::Undecodable),
        },
        Some(0) => match rasn::ber::decode::<v1::Message<v1::Pdus>>(request) {
            Ok(m) if m.community.as_ref() != b.community.as_slice() => {
                Reply::Drop(DropReason::WrongCommunity)
            }
            Ok(m) => respond_v1(view, b, m),
            Err(_) => Reply::Drop(DropReason::Undecodable),
        },
        Some(_) => Reply::Drop(DropReason::VersionRefused),
        None => Reply::Drop(DropReason::Undecodable),
    }
}

/// Answers a request with an error status (an injected genErr), echoing
/// its varbinds; requests that would get no answer still get none.
pub fn respond_error(b: &Behaviour, request: &[u8], status: u32) -> Reply {
    match peek_version(request) {
        Some(1) if !b.v1_only => match rasn::ber::decode::<v2c::Message<v2::Pdus>>(request) {
            Ok(m) if m.community.as_ref() == b.community.as_slice() => {
                let (request_id, vbs) = match m.data {
                    v2::Pdus::GetRequest(p) => (p.0.request_id, p.0.variable_bindings),
                    v2::Pdus::GetNextRequest(p) => (p.0.request_id, p.0.variable_bindings),
                    v2::Pdus::GetBulkRequest(p) => (p.0.request_id, p.0.variable_bindings),
                    v2::Pdus::SetRequest(p) => (p.0.request_id, p.0.variable_bindings),
                    _ => return Reply::Drop(DropReason::NotARequest),
                };
                let msg = v2c::Message {
                    version: m.version,
                    community: m.community,
                    data: v2::Pdus::Response(v2::Response(v2::Pdu {
                        request_id,
                        error_status: status,
                        error_index: u32::from(!vbs.is_empty()),
                        variable_bindings: vbs,
                    })),
                };
                rasn::ber::encode(&msg).map_or(Reply::Drop(DropReason::Undecodable), Reply::Send)
            }
            Ok(_) => Reply::Drop(DropReason::WrongCommunity),
            Err(_) => Reply::Drop(DropReason::Undecodable),
        },
        Some(0) => match rasn::ber::decode::<v1::Message<v1::Pdus>>(request) {
            Ok(m) if m.community.as_ref() == b.community.as_slice() => {
                let p = match m.data {
                    v1::Pdus::GetRequest(p) => p.0,
                    v1::Pdus::GetNextRequest(p) => p.0,
                    v1::Pdus::SetRequest(p) => p.0,
                    _ => return Reply::Drop(DropReason::NotARequest),
                };
                let index = i64::from(!p.variable_bindings.is_empty());
                let msg = v1::Message {
                    version: m.version,
                    community: m.community,
                    data: v1::Pdus::GetResponse(v1::GetResponse(v1::Pdu {
                        request_id: p.request_id,
                        error_status: Integer::from(i64::from(status)),
                        error_index: Integer::from(index),
                        variable_bindings: p.variable_bindings,
                    })),
                };
                rasn::ber::encode(&msg).map_or(Reply::Drop(DropReason::Undecodable), Reply::Send)
            }
            Ok(_) => Reply::Drop(DropReason::WrongCommunity),
            Err(_) => Reply::Drop(DropReason::Undecodable),
        },
        _ => Reply::Drop(DropReason::VersionRefused),
    }
}

/// The version field of an SNMP message, read with dca-core's BER reader
/// (only to pick rasn's message type).
pub(crate) fn peek_version(bytes: &[u8]) -> Option<i64> {
    use dca_core::ber::{Reader, decode_i64, tag};
    let mut outer = Reader::new(bytes);
    let mut seq = outer.sub(tag::SEQUENCE).ok()?;
    let v = seq.read_tagged(tag::INTEGER).ok()?;
    decode_i64(v.content).ok()
}

fn arcs(o: &ObjectIdentifier) -> &[u32] {
    o.as_ref()
}

fn respond_v2c(view: &View<'_>, b: &Behaviour, m: v2c::Message<v2::Pdus>) -> Reply {
    let (version, community) = (m.version, m.community);
    answer_v2(view, b, m.data, |pdu| {
        rasn::ber::encode(&v2c::Message {
            version: version.clone(),
            community: community.clone(),
            data: v2::Pdus::Response(v2::Response(pdu)),
        })
        .ok()
    })
}

/// Answers a v2 PDU (of a v2c message or a v3 ScopedPDU); `encode` makes
/// the whole datagram of a Response, whose size decides tooBig.
pub(crate) fn answer_v2(
    view: &View<'_>,
    b: &Behaviour,
    data: v2::Pdus,
    encode: impl Fn(v2::Pdu) -> Option<Vec<u8>>,
) -> Reply {
    let response =
        |pdu: v2::Pdu| encode(pdu).map_or(Reply::Drop(DropReason::Undecodable), Reply::Send);
    let pdu_with = |request_id: i32, status: u32, index: u32, vbs: Vec<v2::VarBind>| v2::Pdu {
        request_id,
        error_status: status,
        error_index: index,
        variable_bindings: vbs,
    };
    let (request_id, vbs) = match data {
        v2::Pdus::GetRequest(p) => {
            let out: Vec<v2::VarBind> =
                p.0.variable_bindings
                    .iter()
                    .map(|vb| v2::VarBind {
                        name: vb.name.clone(),
                        value: match view.get(arcs(&vb.name)) {
                            Ok(v) => v2_value(v),
                            Err(Lookup::NoSuchObject) => v2::VarBindValue::NoSuchObject,
                            Err(_) => v2::VarBindValue::NoSuchInstance,
                        },
                    })
                    .collect();
            (p.0.request_id, out)
        }
        v2::Pdus::GetNextRequest(p) => {
            let out =
                p.0.variable_bindings
                    .iter()
                    .map(|vb| next_v2(view, arcs(&vb.name)))
                    .collect();
            (p.0.request_id, out)
        }
        v2::Pdus::GetBulkRequest(p) => {
            if b.no_bulk {
                let vbs = p.0.variable_bindings.clone();
                return response(pdu_with(
                    p.0.request_id,
                    v2::Pdu::ERROR_STATUS_GEN_ERR,
                    1,
                    vbs,
                ));
            }
            let vbs = bulk(view, b, &p.0);
            if b.too_big_above.is_some_and(|n| vbs.len() > n) {
                return response(pdu_with(
                    p.0.request_id,
                    v2::Pdu::ERROR_STATUS_TOO_BIG,
                    0,
                    vec![],
                ));
            }
            return response(pdu_with(p.0.request_id, 0, 0, vbs));
        }
        v2::Pdus::SetRequest(p) => {
            let vbs = p.0.variable_bindings.clone();
            let index = u32::from(!vbs.is_empty());
            return response(pdu_with(
                p.0.request_id,
                v2::Pdu::ERROR_STATUS_NOT_WRITABLE,
                index,
                vbs,
            ));
        }
        _ => return Reply::Drop(DropReason::NotARequest),
    };
    let too_many = b.too_big_above.is_some_and(|n| vbs.len() > n);
    let pdu = pdu_with(request_id, 0, 0, vbs);
    match response(pdu) {
        Reply::Send(bytes) if bytes.len() <= b.max_response && !too_many => Reply::Send(bytes),
        _ => response(pdu_with(
            request_id,
            v2::Pdu::ERROR_STATUS_TOO_BIG,
            0,
            vec![],
        )),
    }
}

fn next_v2(view: &View<'_>, after: &[u32]) -> v2::VarBind {
    match view.next(after, |_| true) {
        Some((name, value)) => v2::VarBind {
            name: oid(&name),
            value: v2_value(value),
        },
        None => v2::VarBind {
            name: oid(after),
            value: v2::VarBindValue::EndOfMibView,
        },
    }
}

/// RFC 3416 4.2.3, filling the response only as far as it fits.
fn bulk(view: &View<'_>, b: &Behaviour, p: &v2::BulkPdu) -> Vec<v2::VarBind> {
    let requested = &p.variable_bindings;
    let n = (p.non_repeaters as usize).min(requested.len());
    let m = p.max_repetitions as usize;
    // Room for the message around the varbinds: version, community,
    // request-id, error fields and the sequence headers.
    let overhead = 40 + b.community.len();
    let mut room = b.max_response.saturating_sub(overhead);
    let mut out = Vec::new();
    let mut push = |vb: v2::VarBind, out: &mut Vec<v2::VarBind>| {
        let len = encoded_len(&vb);
        if len > room {
            return false;
        }
        room -= len;
        out.push(vb);
        true
    };
    for vb in &requested[..n] {
        if !push(next_v2(view, arcs(&vb.name)), &mut out) {
            return out;
        }
    }
    let mut cursors: Vec<Vec<u32>> = requested[n..]
        .iter()
        .map(|vb| arcs(&vb.name).to_vec())
        .collect();
    for _ in 0..m {
        if cursors.is_empty() {
            break;
        }
        let mut all_ended = true;
        for cursor in cursors.iter_mut() {
            let vb = next_v2(view, cursor);
            if vb.value != v2::VarBindValue::EndOfMibView {
                all_ended = false;
                *cursor = arcs(&vb.name).to_vec();
            }
            if !push(vb, &mut out) {
                return out;
            }
        }
        if all_ended {
            break;
        }
    }
    out
}

fn respond_v1(view: &View<'_>, b: &Behaviour, m: v1::Message<v1::Pdus>) -> Reply {
    let respond_with = |p: v1::Pdu| {
        let msg = v1::Message {
            version: m.version.clone(),
            community: m.community.clone(),
            data: v1::Pdus::GetResponse(v1::GetResponse(p)),
        };
        rasn::ber::encode(&msg).map_or(Reply::Drop(DropReason::Undecodable), Reply::Send)
    };
    let error = |p: &v1::Pdu, status: u64, index: usize| v1::Pdu {
        request_id: p.request_id.clone(),
        error_status: Integer::from(status as i64),
        error_index: Integer::from(index as i64),
        variable_bindings: p.variable_bindings.clone(),
    };
    let (p, next) = match &m.data {
        v1::Pdus::GetRequest(p) => (&p.0, false),
        v1::Pdus::GetNextRequest(p) => (&p.0, true),
        v1::Pdus::SetRequest(p) => {
            let index = usize::from(!p.0.variable_bindings.is_empty());
            return respond_with(error(&p.0, v1::Pdu::ERROR_STATUS_NO_SUCH_NAME, index));
        }
        _ => return Reply::Drop(DropReason::NotARequest),
    };
    let mut out = Vec::with_capacity(p.variable_bindings.len());
    for (i, vb) in p.variable_bindings.iter().enumerate() {
        let found = if next {
            view.next(arcs(&vb.name), not_counter64)
                .map(|(name, v)| (oid(&name), v))
        } else {
            view.get(arcs(&vb.name))
                .ok()
                .filter(not_counter64)
                .map(|v| (vb.name.clone(), v))
        };
        match found {
            Some((name, value)) => out.push(v1::VarBind {
                name,
                value: v1_value(value),
            }),
            None => return respond_with(error(p, v1::Pdu::ERROR_STATUS_NO_SUCH_NAME, i + 1)),
        }
    }
    if b.too_big_above.is_some_and(|n| out.len() > n) {
        return respond_with(error(p, v1::Pdu::ERROR_STATUS_TOO_BIG, 0));
    }
    let ok = v1::Pdu {
        request_id: p.request_id.clone(),
        error_status: Integer::from(0),
        error_index: Integer::from(0),
        variable_bindings: out,
    };
    match respond_with(ok) {
        Reply::Send(bytes) if bytes.len() <= b.max_response => Reply::Send(bytes),
        _ => respond_with(error(p, v1::Pdu::ERROR_STATUS_TOO_BIG, 0)),
    }
}
