//! Protocol data units: the common RFC 3416 PDU (also the GetBulk layout) and
//! the SNMPv1 Trap-PDU (RFC 1157).

use super::varbind::{VarBind, VarBinds, encode_list, list_content_len};
use crate::ber::{
    DecodeError, DecodeErrorKind, EncodeError, OidRef, Reader, Writer, encoded_signed_len,
    encoded_unsigned_len, tag, tlv_len,
};
use crate::snmp::value::{Value, encode_oid, tag as value_tag};

/// Which PDU a message carries; the value is the context tag's identifier octet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PduType {
    GetRequest = 0xa0,
    GetNextRequest = 0xa1,
    Response = 0xa2,
    SetRequest = 0xa3,
    /// SNMPv1 Trap-PDU: a different layout, see [`TrapV1`].
    TrapV1 = 0xa4,
    GetBulkRequest = 0xa5,
    InformRequest = 0xa6,
    TrapV2 = 0xa7,
    Report = 0xa8,
}

impl PduType {
    pub const fn from_tag(t: u8) -> Option<Self> {
        Some(match t {
            0xa0 => Self::GetRequest,
            0xa1 => Self::GetNextRequest,
            0xa2 => Self::Response,
            0xa3 => Self::SetRequest,
            0xa4 => Self::TrapV1,
            0xa5 => Self::GetBulkRequest,
            0xa6 => Self::InformRequest,
            0xa7 => Self::TrapV2,
            0xa8 => Self::Report,
            _ => return None,
        })
    }

    pub const fn tag(self) -> u8 {
        self as u8
    }
}

/// error-status values (RFC 3416 section 3; 0 to 5 also in v1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum ErrorStatus {
    NoError = 0,
    TooBig = 1,
    NoSuchName = 2,
    BadValue = 3,
    ReadOnly = 4,
    GenErr = 5,
    NoAccess = 6,
    WrongType = 7,
    WrongLength = 8,
    WrongEncoding = 9,
    WrongValue = 10,
    NoCreation = 11,
    InconsistentValue = 12,
    ResourceUnavailable = 13,
    CommitFailed = 14,
    UndoFailed = 15,
    AuthorizationError = 16,
    NotWritable = 17,
    InconsistentName = 18,
}

impl ErrorStatus {
    const ALL: [ErrorStatus; 19] = [
        Self::NoError,
        Self::TooBig,
        Self::NoSuchName,
        Self::BadValue,
        Self::ReadOnly,
        Self::GenErr,
        Self::NoAccess,
        Self::WrongType,
        Self::WrongLength,
        Self::WrongEncoding,
        Self::WrongValue,
        Self::NoCreation,
        Self::InconsistentValue,
        Self::ResourceUnavailable,
        Self::CommitFailed,
        Self::UndoFailed,
        Self::AuthorizationError,
        Self::NotWritable,
        Self::InconsistentName,
    ];

    pub fn from_i32(v: i32) -> Option<Self> {
        Self::ALL.iter().copied().find(|s| *s as i32 == v)
    }
}

/// Every PDU but the v1 Trap: request-id, two integers and the varbinds.
///
/// In a GetBulkRequest the two integers are non-repeaters and
/// max-repetitions (RFC 3416 gives BulkPDU the same layout); use
/// [`Pdu::bulk`], [`Pdu::non_repeaters`] and [`Pdu::max_repetitions`].
///
/// `L` is the varbind list: [`VarBinds`] when decoded, a slice of
/// [`VarBind`] when encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pdu<L> {
    pub ty: PduType,
    pub request_id: i32,
    pub error_status: i32,
    pub error_index: i32,
    pub varbinds: L,
}

impl<L> Pdu<L> {
    /// A request or response with no error.
    pub const fn new(ty: PduType, request_id: i32, varbinds: L) -> Self {
        Self {
            ty,
            request_id,
            error_status: 0,
            error_index: 0,
            varbinds,
        }
    }

    /// A GetBulkRequest.
    pub const fn bulk(
        request_id: i32,
        non_repeaters: i32,
        max_repetitions: i32,
        varbinds: L,
    ) -> Self {
        Self {
            ty: PduType::GetBulkRequest,
            request_id,
            error_status: non_repeaters,
            error_index: max_repetitions,
            varbinds,
        }
    }

    pub const fn non_repeaters(&self) -> i32 {
        self.error_status
    }

    pub const fn max_repetitions(&self) -> i32 {
        self.error_index
    }

    /// The same PDU with its varbind list replaced (e.g. a decoded list by a
    /// slice of checked varbinds, to encode it again).
    pub fn map_varbinds<M>(self, f: impl FnOnce(L) -> M) -> Pdu<M> {
        Pdu {
            ty: self.ty,
            request_id: self.request_id,
            error_status: self.error_status,
            error_index: self.error_index,
            varbinds: f(self.varbinds),
        }
    }

    /// The error-status as a known value, if it is one.
    pub fn status(&self) -> Option<ErrorStatus> {
        ErrorStatus::from_i32(self.error_status)
    }
}

impl<'a> Pdu<VarBinds<'a>> {
    /// Decodes a PDU given its identifier octet and a reader over its contents.
    fn decode_contents(ty: PduType, mut r: Reader<'a>) -> Result<Self, DecodeError> {
        let request_id = r.read_i32()?;
        let error_status = r.read_i32()?;
        let error_index = r.read_i32()?;
        let varbinds = VarBinds::new(r.sub(tag::SEQUENCE)?);
        r.finish()?;
        Ok(Self {
            ty,
            request_id,
            error_status,
            error_index,
            varbinds,
        })
    }

    /// Decodes a PDU that must not be a v1 Trap (as in a v3 scoped PDU).
    pub(crate) fn decode(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let tlv = r.read_tlv()?;
        match PduType::from_tag(tlv.tag) {
            Some(PduType::TrapV1) | None => Err(DecodeError::new(
                DecodeErrorKind::UnknownPduType(tlv.tag),
                tlv.offset,
            )),
            Some(ty) => {
                Self::decode_contents(ty, Reader::with_offset(tlv.content, tlv.content_offset))
            }
        }
    }
}

impl Pdu<&[VarBind<'_>]> {
    fn content_len(&self) -> usize {
        [self.request_id, self.error_status, self.error_index]
            .iter()
            .fold(tlv_len(list_content_len(self.varbinds)), |n, &v| {
                n.saturating_add(tlv_len(encoded_signed_len(i64::from(v))))
            })
    }

    pub fn encoded_len(&self) -> usize {
        tlv_len(self.content_len())
    }

    pub fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.header(self.ty.tag(), self.content_len())?;
        for v in [self.request_id, self.error_status, self.error_index] {
            w.signed(tag::INTEGER, i64::from(v))?;
        }
        encode_list(w, self.varbinds)
    }
}

/// The SNMPv1 Trap-PDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrapV1<'a, L> {
    pub enterprise: OidRef<'a>,
    pub agent_addr: [u8; 4],
    pub generic_trap: i32,
    pub specific_trap: i32,
    pub time_stamp: u32,
    pub varbinds: L,
    /// Where the PDU starts in the datagram (0 when built for encoding).
    pub offset: usize,
}

impl<'a> TrapV1<'a, VarBinds<'a>> {
    fn decode_contents(mut r: Reader<'a>, offset: usize) -> Result<Self, DecodeError> {
        let ent = r.read_tagged(tag::OBJECT_IDENTIFIER)?;
        let enterprise = OidRef::from_ber(ent.content)
            .map_err(|e| DecodeError::new(DecodeErrorKind::BadOid(e), ent.offset))?;
        let addr = r.read_tagged(value_tag::IP_ADDRESS)?;
        let agent_addr = addr
            .content
            .try_into()
            .map_err(|_| DecodeError::new(DecodeErrorKind::BadIpAddress, addr.offset))?;
        let generic_trap = r.read_i32()?;
        let specific_trap = r.read_i32()?;
        let ts = r.read_tagged(value_tag::TIME_TICKS)?;
        let Value::TimeTicks(time_stamp) = Value::decode(ts.tag, ts.content, ts.offset)? else {
            return Err(DecodeError::new(
                DecodeErrorKind::ValueOutOfRange,
                ts.offset,
            ));
        };
        let varbinds = VarBinds::new(r.sub(tag::SEQUENCE)?);
        r.finish()?;
        Ok(Self {
            enterprise,
            agent_addr,
            generic_trap,
            specific_trap,
            time_stamp,
            varbinds,
            offset,
        })
    }
}

impl TrapV1<'_, &[VarBind<'_>]> {
    fn content_len(&self) -> usize {
        tlv_len(self.enterprise.canonical_len())
            .saturating_add(tlv_len(4))
            .saturating_add(tlv_len(encoded_signed_len(i64::from(self.generic_trap))))
            .saturating_add(tlv_len(encoded_signed_len(i64::from(self.specific_trap))))
            .saturating_add(tlv_len(encoded_unsigned_len(u64::from(self.time_stamp))))
            .saturating_add(tlv_len(list_content_len(self.varbinds)))
    }

    pub fn encoded_len(&self) -> usize {
        tlv_len(self.content_len())
    }

    pub fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.header(PduType::TrapV1.tag(), self.content_len())?;
        encode_oid(w, self.enterprise)?;
        w.primitive(value_tag::IP_ADDRESS, &self.agent_addr)?;
        w.signed(tag::INTEGER, i64::from(self.generic_trap))?;
        w.signed(tag::INTEGER, i64::from(self.specific_trap))?;
        w.unsigned(value_tag::TIME_TICKS, u64::from(self.time_stamp))?;
        encode_list(w, self.varbinds)
    }
}

/// Any PDU a community message can carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pdus<'a, L> {
    Pdu(Pdu<L>),
    TrapV1(TrapV1<'a, L>),
}

impl<'a, L> Pdus<'a, L> {
    pub fn ty(&self) -> PduType {
        match self {
            Pdus::Pdu(p) => p.ty,
            Pdus::TrapV1(_) => PduType::TrapV1,
        }
    }

    pub fn varbinds(&self) -> &L {
        match self {
            Pdus::Pdu(p) => &p.varbinds,
            Pdus::TrapV1(t) => &t.varbinds,
        }
    }

    /// The same PDU with its varbind list replaced.
    pub fn map_varbinds<M>(self, f: impl FnOnce(L) -> M) -> Pdus<'a, M> {
        match self {
            Pdus::Pdu(p) => Pdus::Pdu(p.map_varbinds(f)),
            Pdus::TrapV1(t) => Pdus::TrapV1(TrapV1 {
                enterprise: t.enterprise,
                agent_addr: t.agent_addr,
                generic_trap: t.generic_trap,
                specific_trap: t.specific_trap,
                time_stamp: t.time_stamp,
                varbinds: f(t.varbinds),
                offset: t.offset,
            }),
        }
    }
}

impl<'a> Pdus<'a, VarBinds<'a>> {
    /// Decodes the next element of `r` as a PDU.
    pub(crate) fn decode(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let tlv = r.read_tlv()?;
        let contents = Reader::with_offset(tlv.content, tlv.content_offset);
        match PduType::from_tag(tlv.tag) {
            Some(PduType::TrapV1) => {
                Ok(Pdus::TrapV1(TrapV1::decode_contents(contents, tlv.offset)?))
            }
            Some(ty) => Ok(Pdus::Pdu(Pdu::decode_contents(ty, contents)?)),
            None => Err(DecodeError::new(
                DecodeErrorKind::UnknownPduType(tlv.tag),
                tlv.offset,
            )),
        }
    }
}

impl Pdus<'_, &[VarBind<'_>]> {
    pub fn encoded_len(&self) -> usize {
        match self {
            Pdus::Pdu(p) => p.encoded_len(),
            Pdus::TrapV1(t) => t.encoded_len(),
        }
    }

    pub fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        match self {
            Pdus::Pdu(p) => p.encode(w),
            Pdus::TrapV1(t) => t.encode(w),
        }
    }
}
