//! The SNMPv3 message envelope (RFC 3412) and the USM security parameters
//! (RFC 3414), without the cryptography, which builds on these views.

use super::encode_into;
use super::pdu::Pdu;
use super::varbind::{VarBind, VarBinds};
use crate::ber::{
    DecodeError, DecodeErrorKind, EncodeError, Reader, Writer, encoded_signed_len, tag, tlv_len,
};

/// msgFlags bits.
pub mod flags {
    pub const AUTH: u8 = 0x01;
    pub const PRIV: u8 = 0x02;
    pub const REPORTABLE: u8 = 0x04;
}

/// msgGlobalData.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderData {
    pub msg_id: i32,
    pub max_size: i32,
    /// The single octet of msgFlags.
    pub flags: u8,
    /// 3 for USM.
    pub security_model: i32,
}

impl HeaderData {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut h = r.sub(tag::SEQUENCE)?;
        let msg_id = h.read_i32()?;
        let max_size = h.read_i32()?;
        let flags_tlv = h.read_tagged(tag::OCTET_STRING)?;
        let flags = match flags_tlv.content {
            [f] => *f,
            _ => {
                return Err(DecodeError::new(
                    DecodeErrorKind::ValueOutOfRange,
                    flags_tlv.offset,
                ));
            }
        };
        let security_model = h.read_i32()?;
        h.finish()?;
        Ok(Self {
            msg_id,
            max_size,
            flags,
            security_model,
        })
    }

    pub(super) fn content_len(&self) -> usize {
        [self.msg_id, self.max_size, self.security_model]
            .iter()
            .fold(tlv_len(1), |n, &v| {
                n.saturating_add(tlv_len(encoded_signed_len(i64::from(v))))
            })
    }

    pub(super) fn write(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.header(tag::SEQUENCE, self.content_len())?;
        w.signed(tag::INTEGER, i64::from(self.msg_id))?;
        w.signed(tag::INTEGER, i64::from(self.max_size))?;
        w.primitive(tag::OCTET_STRING, &[self.flags])?;
        w.signed(tag::INTEGER, i64::from(self.security_model))
    }
}

/// A ScopedPDU: context engine, context name and a (v2) PDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopedPdu<'a, L> {
    pub context_engine_id: &'a [u8],
    pub context_name: &'a [u8],
    pub pdu: Pdu<L>,
}

impl<'a> ScopedPdu<'a, VarBinds<'a>> {
    fn decode_from(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let mut s = r.sub(tag::SEQUENCE)?;
        let context_engine_id = s.read_octets()?;
        let context_name = s.read_octets()?;
        let pdu = Pdu::decode(&mut s)?;
        s.finish()?;
        Ok(Self {
            context_engine_id,
            context_name,
            pdu,
        })
    }

    /// Decodes a decrypted ScopedPDU. Bytes after it are ignored: block
    /// ciphers (DES-CBC) leave padding there, which RFC 3414 says to discard.
    pub fn decode(plaintext: &'a [u8]) -> Result<Self, DecodeError> {
        Self::decode_from(&mut Reader::new(plaintext))
    }
}

impl ScopedPdu<'_, &[VarBind<'_>]> {
    fn content_len(&self) -> usize {
        tlv_len(self.context_engine_id.len())
            .saturating_add(tlv_len(self.context_name.len()))
            .saturating_add(self.pdu.encoded_len())
    }

    pub fn encoded_len(&self) -> usize {
        tlv_len(self.content_len())
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.header(tag::SEQUENCE, self.content_len())?;
        w.primitive(tag::OCTET_STRING, self.context_engine_id)?;
        w.primitive(tag::OCTET_STRING, self.context_name)?;
        self.pdu.encode(w)
    }

    /// Encodes the ScopedPDU alone (the plaintext that privacy encrypts).
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        encode_into(buf, self.encoded_len(), |w| self.write(w))
    }
}

/// msgData: a plaintext ScopedPDU, or the encrypted one as octets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopedPduData<'a, L> {
    Plaintext(ScopedPdu<'a, L>),
    Encrypted(&'a [u8]),
}

/// An SNMPv3 message, its security parameters still as octets (for USM,
/// read them with [`UsmSecurityParameters::decode`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V3Message<'a, L> {
    pub header: HeaderData,
    pub security_parameters: &'a [u8],
    pub data: ScopedPduData<'a, L>,
}

impl<'a> V3Message<'a, VarBinds<'a>> {
    pub(crate) fn decode_after_version(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let header = HeaderData::decode(r)?;
        let security_parameters = r.read_octets()?;
        let data = match r.peek_tag() {
            Some(tag::OCTET_STRING) => ScopedPduData::Encrypted(r.read_octets()?),
            _ => ScopedPduData::Plaintext(ScopedPdu::decode_from(r)?),
        };
        Ok(Self {
            header,
            security_parameters,
            data,
        })
    }
}

impl V3Message<'_, &[VarBind<'_>]> {
    fn data_len(&self) -> usize {
        match &self.data {
            ScopedPduData::Plaintext(s) => s.encoded_len(),
            ScopedPduData::Encrypted(b) => tlv_len(b.len()),
        }
    }

    fn content_len(&self) -> usize {
        tlv_len(1)
            .saturating_add(tlv_len(self.header.content_len()))
            .saturating_add(tlv_len(self.security_parameters.len()))
            .saturating_add(self.data_len())
    }

    pub fn encoded_len(&self) -> usize {
        tlv_len(self.content_len())
    }

    /// Encodes the message at the start of `buf`; returns its length.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        encode_into(buf, self.encoded_len(), |w| {
            w.header(tag::SEQUENCE, self.content_len())?;
            w.signed(tag::INTEGER, 3)?;
            self.header.write(w)?;
            w.primitive(tag::OCTET_STRING, self.security_parameters)?;
            match &self.data {
                ScopedPduData::Plaintext(s) => s.write(w),
                ScopedPduData::Encrypted(b) => w.primitive(tag::OCTET_STRING, b),
            }
        })
    }
}

/// UsmSecurityParameters (RFC 3414 section 2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsmSecurityParameters<'a> {
    pub engine_id: &'a [u8],
    pub engine_boots: i32,
    pub engine_time: i32,
    pub user_name: &'a [u8],
    pub auth_params: &'a [u8],
    pub priv_params: &'a [u8],
}

impl<'a> UsmSecurityParameters<'a> {
    /// Decodes the msgSecurityParameters octets of a USM message.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        let mut outer = Reader::new(bytes);
        let mut r = outer.sub(tag::SEQUENCE)?;
        outer.finish()?;
        let p = Self {
            engine_id: r.read_octets()?,
            engine_boots: r.read_i32()?,
            engine_time: r.read_i32()?,
            user_name: r.read_octets()?,
            auth_params: r.read_octets()?,
            priv_params: r.read_octets()?,
        };
        r.finish()?;
        Ok(p)
    }

    fn content_len(&self) -> usize {
        [
            self.engine_id,
            self.user_name,
            self.auth_params,
            self.priv_params,
        ]
        .iter()
        .fold(0usize, |n, b| n.saturating_add(tlv_len(b.len())))
        .saturating_add(tlv_len(encoded_signed_len(i64::from(self.engine_boots))))
        .saturating_add(tlv_len(encoded_signed_len(i64::from(self.engine_time))))
    }

    pub fn encoded_len(&self) -> usize {
        tlv_len(self.content_len())
    }

    /// Encodes the parameters (the content of msgSecurityParameters).
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        encode_into(buf, self.encoded_len(), |w| {
            w.header(tag::SEQUENCE, self.content_len())?;
            w.primitive(tag::OCTET_STRING, self.engine_id)?;
            w.signed(tag::INTEGER, i64::from(self.engine_boots))?;
            w.signed(tag::INTEGER, i64::from(self.engine_time))?;
            w.primitive(tag::OCTET_STRING, self.user_name)?;
            w.primitive(tag::OCTET_STRING, self.auth_params)?;
            w.primitive(tag::OCTET_STRING, self.priv_params)
        })
    }
}
