//! Variable bindings: a name and a value, and the lazily decoded list of them.

use super::value::{Value, encode_oid};
use crate::ber::{DecodeError, DecodeErrorKind, EncodeError, OidRef, Reader, Writer, tag, tlv_len};

/// One variable binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VarBind<'a> {
    pub name: OidRef<'a>,
    pub value: Value<'a>,
}

impl<'a> VarBind<'a> {
    pub const fn new(name: OidRef<'a>, value: Value<'a>) -> Self {
        Self { name, value }
    }

    /// A varbind as requests carry it: the name and NULL.
    pub const fn null(name: OidRef<'a>) -> Self {
        Self {
            name,
            value: Value::Null,
        }
    }

    /// Decodes the contents of a varbind SEQUENCE.
    fn decode_contents(mut r: Reader<'a>) -> Result<Self, DecodeError> {
        let name_tlv = r.read_tagged(tag::OBJECT_IDENTIFIER)?;
        let name = OidRef::from_ber(name_tlv.content)
            .map_err(|e| DecodeError::new(DecodeErrorKind::BadOid(e), name_tlv.offset))?;
        let v = r.read_tlv()?;
        let value = Value::decode(v.tag, v.content, v.offset)?;
        r.finish()?;
        Ok(Self { name, value })
    }

    fn content_len(&self) -> usize {
        tlv_len(self.name.canonical_len()).saturating_add(self.value.encoded_len())
    }

    /// Length of the whole encoded varbind.
    pub fn encoded_len(&self) -> usize {
        tlv_len(self.content_len())
    }

    pub fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.header(tag::SEQUENCE, self.content_len())?;
        encode_oid(w, self.name)?;
        self.value.encode(w)
    }
}

/// The varbind list of a decoded PDU, read on demand.
///
/// Iterating yields one `Result` per varbind. A varbind whose content is
/// malformed (a bad OID, a truncated value) yields an error and iteration
/// continues with the next one; a broken tag or length ends the list after
/// the error, since the following varbinds cannot be found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarBinds<'a> {
    reader: Reader<'a>,
}

impl<'a> VarBinds<'a> {
    /// A list over the contents of a VarBindList SEQUENCE.
    pub(crate) const fn new(reader: Reader<'a>) -> Self {
        Self { reader }
    }

    /// An empty list.
    pub const fn empty() -> Self {
        Self {
            reader: Reader::new(&[]),
        }
    }
}

impl<'a> Iterator for VarBinds<'a> {
    type Item = Result<VarBind<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.reader.is_empty() {
            return None;
        }
        let tlv = match self.reader.read_tlv() {
            Ok(tlv) => tlv,
            Err(e) => {
                // Framing is lost: nothing further can be located.
                self.reader = Reader::new(&[]);
                return Some(Err(e));
            }
        };
        if tlv.tag != tag::SEQUENCE {
            return Some(Err(DecodeError::new(
                DecodeErrorKind::UnexpectedTag {
                    expected: tag::SEQUENCE,
                    found: tlv.tag,
                },
                tlv.offset,
            )));
        }
        Some(VarBind::decode_contents(Reader::with_offset(
            tlv.content,
            tlv.content_offset,
        )))
    }
}

impl core::iter::FusedIterator for VarBinds<'_> {}

/// Encoding of a varbind list held in a slice.
pub(crate) fn list_content_len(list: &[VarBind<'_>]) -> usize {
    list.iter()
        .fold(0usize, |n, vb| n.saturating_add(vb.encoded_len()))
}

pub(crate) fn encode_list(w: &mut Writer<'_>, list: &[VarBind<'_>]) -> Result<(), EncodeError> {
    w.header(tag::SEQUENCE, list_content_len(list))?;
    list.iter().try_for_each(|vb| vb.encode(w))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn list(bytes: &[u8]) -> Vec<Result<VarBind<'_>, DecodeError>> {
        VarBinds::new(Reader::new(bytes)).collect()
    }

    #[test]
    fn a_bad_varbind_spoils_only_itself() {
        let bytes = [
            0x30, 0x07, 0x06, 0x03, 0x2b, 0x06, 0x01, 0x02, 0x00, // INTEGER with no content
            0x30, 0x06, 0x06, 0x02, 0x2b, 0x86, 0x05, 0x00, // OID with an unterminated arc
            0x30, 0x07, 0x06, 0x02, 0x2b, 0x06, 0x02, 0x01, 0x05, // fine: 1.3.6 = 5
        ];
        let items = list(&bytes);
        assert_eq!(items.len(), 3);
        assert_eq!(
            items[0].unwrap_err(),
            DecodeError::new(DecodeErrorKind::EmptyInteger, 7)
        );
        assert!(matches!(
            items[1].unwrap_err().kind,
            DecodeErrorKind::BadOid(_)
        ));
        let ok = items[2].unwrap();
        assert_eq!(ok.value, Value::Integer(5));
        assert!(ok.name.starts_with_arcs([1, 3, 6]));
    }

    #[test]
    fn broken_framing_ends_the_list() {
        // The second varbind claims 0x20 bytes; the list has only 4 left.
        let bytes = [
            0x30, 0x05, 0x06, 0x01, 0x2b, 0x05, 0x00, 0x30, 0x20, 0x06, 0x01,
        ];
        let items = list(&bytes);
        assert_eq!(items.len(), 2);
        assert!(items[0].is_ok());
        assert_eq!(items[1].unwrap_err().kind, DecodeErrorKind::Truncated);
    }

    #[test]
    fn varbind_with_trailing_element_is_an_error() {
        let bytes = [0x30, 0x07, 0x06, 0x01, 0x2b, 0x05, 0x00, 0x05, 0x00];
        assert_eq!(
            list(&bytes)[0].unwrap_err(),
            DecodeError::new(DecodeErrorKind::TrailingData, 7)
        );
    }
}
