//! The outermost SNMP message: version, then a community and a PDU (v1,
//! v2c) or the v3 envelope.

use super::encode_into;
use super::pdu::Pdus;
use super::v3::{ScopedPdu, ScopedPduData, V3Message};
use super::varbind::{VarBind, VarBinds};
use crate::ber::{
    DecodeError, DecodeErrorKind, EncodeError, Reader, Writer, decode_i64, tag, tlv_len,
};

/// The msgVersion field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Version {
    V1 = 0,
    V2c = 1,
    V3 = 3,
}

impl Version {
    pub const fn wire(self) -> i64 {
        self as i64
    }
}

/// An SNMPv1 or SNMPv2c message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommunityMessage<'a, L> {
    /// [`Version::V1`] or [`Version::V2c`].
    pub version: Version,
    pub community: &'a [u8],
    pub pdu: Pdus<'a, L>,
}

/// Any SNMP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message<'a, L> {
    Community(CommunityMessage<'a, L>),
    V3(V3Message<'a, L>),
}

impl<'a> Message<'a, VarBinds<'a>> {
    /// Decodes a whole datagram. Bytes after the message are an error.
    ///
    /// The PDU type is not checked against the version (a GetBulk in a v1
    /// message decodes); the caller decides what it accepts.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let mut outer = Reader::new(bytes);
        let mut r = outer.sub(tag::SEQUENCE)?;
        outer.finish()?;
        let version_tlv = r.read_tagged(tag::INTEGER)?;
        let version =
            decode_i64(version_tlv.content).map_err(|k| DecodeError::new(k, version_tlv.offset))?;
        let message = match version {
            0 | 1 => {
                let community = r.read_octets()?;
                let pdu = Pdus::decode(&mut r)?;
                let version = if version == 0 {
                    Version::V1
                } else {
                    Version::V2c
                };
                Message::Community(CommunityMessage {
                    version,
                    community,
                    pdu,
                })
            }
            3 => Message::V3(V3Message::decode_after_version(&mut r)?),
            other => {
                return Err(DecodeError::new(
                    DecodeErrorKind::UnknownVersion(other),
                    version_tlv.offset,
                ));
            }
        };
        r.finish()?;
        Ok(message)
    }
}

impl<'a, L> Message<'a, L> {
    pub fn version(&self) -> Version {
        match self {
            Message::Community(m) => m.version,
            Message::V3(_) => Version::V3,
        }
    }

    /// The varbind list, unless the message carries an encrypted scoped PDU.
    pub fn varbinds(&self) -> Option<&L> {
        match self {
            Message::Community(m) => Some(m.pdu.varbinds()),
            Message::V3(m) => match &m.data {
                ScopedPduData::Plaintext(s) => Some(&s.pdu.varbinds),
                ScopedPduData::Encrypted(_) => None,
            },
        }
    }

    /// The same message with its varbind list replaced; with a slice of
    /// varbinds this turns a decoded message into one that encodes.
    pub fn map_varbinds<M>(self, f: impl FnOnce(L) -> M) -> Message<'a, M> {
        match self {
            Message::Community(m) => Message::Community(CommunityMessage {
                version: m.version,
                community: m.community,
                pdu: m.pdu.map_varbinds(f),
            }),
            Message::V3(m) => Message::V3(V3Message {
                header: m.header,
                security_parameters: m.security_parameters,
                data: match m.data {
                    ScopedPduData::Plaintext(s) => ScopedPduData::Plaintext(ScopedPdu {
                        context_engine_id: s.context_engine_id,
                        context_name: s.context_name,
                        pdu: s.pdu.map_varbinds(f),
                    }),
                    ScopedPduData::Encrypted(b) => ScopedPduData::Encrypted(b),
                },
            }),
        }
    }
}

impl CommunityMessage<'_, &[VarBind<'_>]> {
    fn content_len(&self) -> usize {
        tlv_len(1)
            .saturating_add(tlv_len(self.community.len()))
            .saturating_add(self.pdu.encoded_len())
    }

    pub fn encoded_len(&self) -> usize {
        tlv_len(self.content_len())
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.header(tag::SEQUENCE, self.content_len())?;
        w.signed(tag::INTEGER, self.version.wire())?;
        w.primitive(tag::OCTET_STRING, self.community)?;
        self.pdu.encode(w)
    }

    /// Encodes the message at the start of `buf`; returns its length.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        encode_into(buf, self.encoded_len(), |w| self.write(w))
    }
}

impl Message<'_, &[VarBind<'_>]> {
    pub fn encoded_len(&self) -> usize {
        match self {
            Message::Community(m) => m.encoded_len(),
            Message::V3(m) => m.encoded_len(),
        }
    }

    /// Encodes the message at the start of `buf`; returns its length.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        match self {
            Message::Community(m) => m.encode(buf),
            Message::V3(m) => m.encode(buf),
        }
    }
}
