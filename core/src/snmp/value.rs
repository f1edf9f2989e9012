//! The values a varbind carries (RFC 2578 ObjectSyntax plus the RFC 3416
//! exceptions), decoded leniently and encoded canonically.

use crate::ber::{
    self, DecodeError, DecodeErrorKind, EncodeError, OidRef, Writer, decode_i64, decode_unsigned,
    encoded_signed_len, encoded_unsigned_len, tlv_len,
};

/// Identifier octets of every value type.
pub mod tag {
    pub use crate::ber::tag::{INTEGER, NULL, OBJECT_IDENTIFIER, OCTET_STRING};
    pub const IP_ADDRESS: u8 = 0x40;
    pub const COUNTER32: u8 = 0x41;
    pub const GAUGE32: u8 = 0x42;
    pub const TIME_TICKS: u8 = 0x43;
    pub const OPAQUE: u8 = 0x44;
    pub const COUNTER64: u8 = 0x46;
    pub const NO_SUCH_OBJECT: u8 = 0x80;
    pub const NO_SUCH_INSTANCE: u8 = 0x81;
    pub const END_OF_MIB_VIEW: u8 = 0x82;
}

/// One varbind value, borrowing the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    /// INTEGER / Integer32. Kept as `i64` because some agents send unsigned
    /// 32-bit quantities as five-octet INTEGERs.
    Integer(i64),
    OctetString(&'a [u8]),
    Null,
    ObjectId(OidRef<'a>),
    IpAddress([u8; 4]),
    Counter32(u32),
    Gauge32(u32),
    TimeTicks(u32),
    /// The content octets of an Opaque (themselves BER of some other type).
    Opaque(&'a [u8]),
    Counter64(u64),
    NoSuchObject,
    NoSuchInstance,
    EndOfMibView,
    /// A tag this codec does not know (NsapAddress, UInteger32, vendor
    /// inventions): kept with its raw content so nothing is lost.
    Unknown {
        tag: u8,
        content: &'a [u8],
    },
}

impl<'a> Value<'a> {
    /// Decodes a value from its identifier octet and content octets.
    /// `offset` is where the element starts, for error reports.
    pub fn decode(tag_octet: u8, content: &'a [u8], offset: usize) -> Result<Self, DecodeError> {
        let err = |kind| DecodeError::new(kind, offset);
        let u32_of = |c: &[u8]| {
            decode_unsigned(c, 32)
                .map(|v| u32::try_from(v).unwrap_or(u32::MAX))
                .map_err(err)
        };
        let empty = |v: Value<'a>| {
            if content.is_empty() {
                Ok(v)
            } else {
                Err(err(DecodeErrorKind::NonEmptyNull))
            }
        };
        Ok(match tag_octet {
            tag::INTEGER => Value::Integer(decode_i64(content).map_err(err)?),
            tag::OCTET_STRING => Value::OctetString(content),
            tag::NULL => empty(Value::Null)?,
            tag::OBJECT_IDENTIFIER => Value::ObjectId(
                OidRef::from_ber(content).map_err(|e| err(DecodeErrorKind::BadOid(e)))?,
            ),
            tag::IP_ADDRESS => Value::IpAddress(
                content
                    .try_into()
                    .map_err(|_| err(DecodeErrorKind::BadIpAddress))?,
            ),
            tag::COUNTER32 => Value::Counter32(u32_of(content)?),
            tag::GAUGE32 => Value::Gauge32(u32_of(content)?),
            tag::TIME_TICKS => Value::TimeTicks(u32_of(content)?),
            tag::OPAQUE => Value::Opaque(content),
            tag::COUNTER64 => Value::Counter64(decode_unsigned(content, 64).map_err(err)?),
            tag::NO_SUCH_OBJECT => empty(Value::NoSuchObject)?,
            tag::NO_SUCH_INSTANCE => empty(Value::NoSuchInstance)?,
            tag::END_OF_MIB_VIEW => empty(Value::EndOfMibView)?,
            other => Value::Unknown {
                tag: other,
                content,
            },
        })
    }

    /// The identifier octet this value is encoded with.
    pub fn tag(&self) -> u8 {
        match self {
            Value::Integer(_) => tag::INTEGER,
            Value::OctetString(_) => tag::OCTET_STRING,
            Value::Null => tag::NULL,
            Value::ObjectId(_) => tag::OBJECT_IDENTIFIER,
            Value::IpAddress(_) => tag::IP_ADDRESS,
            Value::Counter32(_) => tag::COUNTER32,
            Value::Gauge32(_) => tag::GAUGE32,
            Value::TimeTicks(_) => tag::TIME_TICKS,
            Value::Opaque(_) => tag::OPAQUE,
            Value::Counter64(_) => tag::COUNTER64,
            Value::NoSuchObject => tag::NO_SUCH_OBJECT,
            Value::NoSuchInstance => tag::NO_SUCH_INSTANCE,
            Value::EndOfMibView => tag::END_OF_MIB_VIEW,
            Value::Unknown { tag, .. } => *tag,
        }
    }

    /// True for noSuchObject, noSuchInstance and endOfMibView.
    pub fn is_exception(&self) -> bool {
        matches!(
            self,
            Value::NoSuchObject | Value::NoSuchInstance | Value::EndOfMibView
        )
    }

    /// The value as an unsigned number, when it is one that can be (for
    /// counters that some devices send as INTEGER and others as Counter32).
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::Integer(v) => u64::try_from(v).ok(),
            Value::Counter32(v) | Value::Gauge32(v) | Value::TimeTicks(v) => Some(u64::from(v)),
            Value::Counter64(v) => Some(v),
            _ => None,
        }
    }

    fn content_len(&self) -> usize {
        match self {
            Value::Integer(v) => encoded_signed_len(*v),
            Value::OctetString(b) | Value::Opaque(b) | Value::Unknown { content: b, .. } => b.len(),
            Value::Null | Value::NoSuchObject | Value::NoSuchInstance | Value::EndOfMibView => 0,
            Value::ObjectId(oid) => oid.canonical_len(),
            Value::IpAddress(_) => 4,
            Value::Counter32(v) | Value::Gauge32(v) | Value::TimeTicks(v) => {
                encoded_unsigned_len(u64::from(*v))
            }
            Value::Counter64(v) => encoded_unsigned_len(*v),
        }
    }

    /// Length of the whole encoded element.
    pub fn encoded_len(&self) -> usize {
        tlv_len(self.content_len())
    }

    /// Writes the element. Unknown values are written back exactly as
    /// received; everything else is written in its minimal form.
    pub fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        let t = self.tag();
        match self {
            Value::Integer(v) => w.signed(t, *v),
            Value::OctetString(b) | Value::Opaque(b) | Value::Unknown { content: b, .. } => {
                w.primitive(t, b)
            }
            Value::Null | Value::NoSuchObject | Value::NoSuchInstance | Value::EndOfMibView => {
                w.header(t, 0)
            }
            Value::ObjectId(oid) => encode_oid(w, *oid),
            Value::IpAddress(a) => w.primitive(t, a),
            Value::Counter32(v) | Value::Gauge32(v) | Value::TimeTicks(v) => {
                w.unsigned(t, u64::from(*v))
            }
            Value::Counter64(v) => w.unsigned(t, *v),
        }
    }
}

/// Writes an OBJECT IDENTIFIER element, re-encoding padded input minimally.
pub(crate) fn encode_oid(w: &mut Writer<'_>, oid: OidRef<'_>) -> Result<(), EncodeError> {
    if oid.is_canonical() {
        w.primitive(ber::tag::OBJECT_IDENTIFIER, oid.as_ber())
    } else {
        w.primitive(ber::tag::OBJECT_IDENTIFIER, oid.to_oid().as_ber())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ber::Reader;

    fn decode(bytes: &[u8]) -> Result<Value<'_>, DecodeError> {
        let tlv = Reader::new(bytes).read_tlv()?;
        Value::decode(tlv.tag, tlv.content, tlv.offset)
    }

    fn encode(v: Value<'_>) -> std::vec::Vec<u8> {
        let mut buf = [0u8; 64];
        let mut w = Writer::new(&mut buf);
        v.encode(&mut w).unwrap();
        assert_eq!(w.position(), v.encoded_len());
        w.written().to_vec()
    }

    /// Every value type: canonical bytes decode to the value and the value
    /// encodes back to the same bytes.
    #[test]
    fn each_type_round_trips_through_fixed_bytes() {
        let oid_bytes = [0x2b, 6, 1, 2, 1, 1, 2, 0];
        let fixtures: [(&[u8], Value<'_>); 16] = [
            (&[0x02, 0x01, 0x2a], Value::Integer(42)),
            (
                &[0x02, 0x04, 0x80, 0, 0, 0],
                Value::Integer(i64::from(i32::MIN)),
            ),
            (&[0x04, 0x03, b'H', b'P', 0], Value::OctetString(b"HP\0")),
            (&[0x04, 0x00], Value::OctetString(b"")),
            (&[0x05, 0x00], Value::Null),
            (
                &[0x06, 0x08, 0x2b, 6, 1, 2, 1, 1, 2, 0],
                Value::ObjectId(OidRef::from_ber(&oid_bytes).unwrap()),
            ),
            (
                &[0x40, 0x04, 127, 1, 0, 5],
                Value::IpAddress([127, 1, 0, 5]),
            ),
            (
                &[0x41, 0x05, 0x00, 0xff, 0xff, 0xff, 0xff],
                Value::Counter32(u32::MAX),
            ),
            (&[0x42, 0x01, 0x64], Value::Gauge32(100)),
            (&[0x43, 0x03, 0x01, 0x86, 0xa0], Value::TimeTicks(100_000)),
            (
                &[0x44, 0x03, 0x02, 0x01, 0x07],
                Value::Opaque(&[0x02, 0x01, 0x07]),
            ),
            (
                &[
                    0x46, 0x09, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                ],
                Value::Counter64(u64::MAX),
            ),
            (&[0x80, 0x00], Value::NoSuchObject),
            (&[0x81, 0x00], Value::NoSuchInstance),
            (&[0x82, 0x00], Value::EndOfMibView),
            (
                &[0x47, 0x01, 0x05],
                Value::Unknown {
                    tag: 0x47,
                    content: &[0x05],
                },
            ),
        ];
        for (bytes, value) in fixtures {
            assert_eq!(decode(bytes).unwrap(), value, "{bytes:02x?}");
            assert_eq!(encode(value), bytes, "{value:?}");
        }
    }

    /// The quirky encodings of the field notes decode to what the device meant.
    #[test]
    fn quirky_encodings_from_the_field() {
        // Counter32 4294967295 sent without its leading zero octet.
        assert_eq!(
            decode(&[0x41, 0x04, 0xff, 0xff, 0xff, 0xff]).unwrap(),
            Value::Counter32(u32::MAX)
        );
        // Extra leading octets on unsigned types.
        assert_eq!(
            decode(&[0x41, 0x06, 0, 0, 0, 0, 0x30, 0x39]).unwrap(),
            Value::Counter32(12345)
        );
        assert_eq!(
            decode(&[0x43, 0x08, 0, 0, 0, 0, 0, 0, 0, 1]).unwrap(),
            Value::TimeTicks(1)
        );
        assert_eq!(
            decode(&[0x46, 0x09, 0, 0, 0, 0, 0, 0, 0, 0, 9]).unwrap(),
            Value::Counter64(9)
        );
        // Non-minimal INTEGER, and a page counter above 2^31 sent as INTEGER.
        assert_eq!(
            decode(&[0x02, 0x04, 0, 0, 0, 7]).unwrap(),
            Value::Integer(7)
        );
        assert_eq!(
            decode(&[0x02, 0x05, 0x00, 0x80, 0, 0, 0]).unwrap().as_u64(),
            Some(0x8000_0000)
        );
        // Long-form length on a short string.
        assert_eq!(
            decode(&[0x04, 0x81, 0x02, b'o', b'k']).unwrap(),
            Value::OctetString(b"ok")
        );
        // The canonical re-encoding drops the quirk.
        assert_eq!(
            encode(Value::Counter32(u32::MAX)),
            [0x41, 0x05, 0x00, 0xff, 0xff, 0xff, 0xff]
        );
    }

    #[test]
    fn malformed_values_are_errors() {
        assert_eq!(
            decode(&[0x02, 0x00]).unwrap_err().kind,
            DecodeErrorKind::EmptyInteger
        );
        assert_eq!(
            decode(&[0x05, 0x01, 0x00]).unwrap_err().kind,
            DecodeErrorKind::NonEmptyNull
        );
        assert_eq!(
            decode(&[0x40, 0x03, 1, 2, 3]).unwrap_err().kind,
            DecodeErrorKind::BadIpAddress
        );
        assert_eq!(
            decode(&[0x41, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])
                .unwrap_err()
                .kind,
            DecodeErrorKind::IntegerOverflow
        );
        assert!(matches!(
            decode(&[0x06, 0x01, 0x81]).unwrap_err().kind,
            DecodeErrorKind::BadOid(_)
        ));
    }
}
