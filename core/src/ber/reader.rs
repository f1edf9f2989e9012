//! A cursor over BER bytes that hands out borrowed TLV contents.

use super::{DecodeError, DecodeErrorKind, decode_i64, tag};

/// Reads tag-length-value elements from a borrowed buffer.
///
/// A constructed element is read with [`Reader::sub`], which returns a new
/// reader confined to that element's contents; [`Reader::finish`] then checks
/// that nothing was left unread. Offsets in errors are relative to the
/// outermost buffer, so a failure deep inside a datagram still says where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reader<'a> {
    rest: &'a [u8],
    /// Offset of `rest[0]` in the outermost buffer.
    offset: usize,
}

/// One element: its identifier octet, its content and where it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    pub tag: u8,
    pub content: &'a [u8],
    /// Offset of the identifier octet in the outermost buffer.
    pub offset: usize,
    /// Offset of the first content octet.
    pub content_offset: usize,
}

impl<'a> Reader<'a> {
    pub const fn new(bytes: &'a [u8]) -> Self {
        Self {
            rest: bytes,
            offset: 0,
        }
    }

    /// A reader over `bytes` that reports offsets starting at `offset`.
    pub const fn with_offset(bytes: &'a [u8], offset: usize) -> Self {
        Self {
            rest: bytes,
            offset,
        }
    }

    pub const fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The offset of the next unread byte in the outermost buffer.
    pub const fn offset(&self) -> usize {
        self.offset
    }

    /// The bytes not yet read.
    pub const fn remaining(&self) -> &'a [u8] {
        self.rest
    }

    fn err(&self, kind: DecodeErrorKind) -> DecodeError {
        DecodeError::new(kind, self.offset)
    }

    /// The identifier octet of the next element, without consuming it.
    pub fn peek_tag(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    /// Reads the next element whatever its tag.
    pub fn read_tlv(&mut self) -> Result<Tlv<'a>, DecodeError> {
        let start = self.offset;
        // Fast path for the common case: a low tag and a short-form length.
        if let [tag, len @ 0..0x80, rest @ ..] = self.rest
            && tag & 0x1f != 0x1f
            && let Some((content, rest)) = rest.split_at_checked(usize::from(*len))
        {
            let content_offset = start.saturating_add(2);
            self.rest = rest;
            self.offset = content_offset.saturating_add(content.len());
            return Ok(Tlv {
                tag: *tag,
                content,
                offset: start,
                content_offset,
            });
        }
        let (&tag, after_tag) = self
            .rest
            .split_first()
            .ok_or(self.err(DecodeErrorKind::Truncated))?;
        if tag & 0x1f == 0x1f {
            return Err(self.err(DecodeErrorKind::UnsupportedTag(tag)));
        }
        let (len, len_octets) =
            read_length(after_tag).map_err(|k| DecodeError::new(k, start.saturating_add(1)))?;
        let header = len_octets.saturating_add(1);
        let after_header = self
            .rest
            .get(header..)
            .ok_or(self.err(DecodeErrorKind::Truncated))?;
        let content_offset = start.saturating_add(header);
        let (content, rest) = after_header
            .split_at_checked(len)
            .ok_or(DecodeError::new(DecodeErrorKind::Truncated, content_offset))?;
        self.rest = rest;
        self.offset = content_offset.saturating_add(len);
        Ok(Tlv {
            tag,
            content,
            offset: start,
            content_offset,
        })
    }

    /// Reads the next element, which must carry `expected`, and returns it.
    pub fn read_tagged(&mut self, expected: u8) -> Result<Tlv<'a>, DecodeError> {
        match self.peek_tag() {
            Some(found) if found != expected => {
                Err(self.err(DecodeErrorKind::UnexpectedTag { expected, found }))
            }
            _ => self.read_tlv(),
        }
    }

    /// Reads a constructed element with tag `expected` and returns a reader
    /// over its contents.
    pub fn sub(&mut self, expected: u8) -> Result<Reader<'a>, DecodeError> {
        let tlv = self.read_tagged(expected)?;
        Ok(Reader::with_offset(tlv.content, tlv.content_offset))
    }

    /// Fails if anything is left unread.
    pub fn finish(&self) -> Result<(), DecodeError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(self.err(DecodeErrorKind::TrailingData))
        }
    }

    /// Reads an INTEGER that must fit an `i32`.
    pub fn read_i32(&mut self) -> Result<i32, DecodeError> {
        let tlv = self.read_tagged(tag::INTEGER)?;
        let v = decode_i64(tlv.content).map_err(|k| DecodeError::new(k, tlv.offset))?;
        i32::try_from(v).map_err(|_| DecodeError::new(DecodeErrorKind::IntegerOverflow, tlv.offset))
    }

    /// Reads an OCTET STRING and returns its content.
    pub fn read_octets(&mut self) -> Result<&'a [u8], DecodeError> {
        Ok(self.read_tagged(tag::OCTET_STRING)?.content)
    }
}

/// Decodes a length field; returns the length and how many octets it used.
///
/// Long forms with leading zero octets are accepted (some agents always use
/// `82 xx xx`); anything that does not fit in 32 bits is refused, which is far
/// beyond any UDP datagram.
fn read_length(bytes: &[u8]) -> Result<(usize, usize), DecodeErrorKind> {
    let (&first, rest) = bytes.split_first().ok_or(DecodeErrorKind::Truncated)?;
    if first < 0x80 {
        return Ok((usize::from(first), 1));
    }
    let count = usize::from(first & 0x7f);
    if count == 0 {
        return Err(DecodeErrorKind::IndefiniteLength);
    }
    let octets = rest.get(..count).ok_or(DecodeErrorKind::Truncated)?;
    let mut len: u32 = 0;
    for &b in octets {
        len = len
            .checked_mul(256)
            .map(|l| l | u32::from(b))
            .ok_or(DecodeErrorKind::LengthOverflow)?;
    }
    let len = usize::try_from(len).map_err(|_| DecodeErrorKind::LengthOverflow)?;
    Ok((len, count.saturating_add(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_lengths() {
        let mut r = Reader::new(&[0x04, 0x02, b'h', b'i']);
        assert_eq!(r.read_octets().unwrap(), b"hi");
        r.finish().unwrap();

        // Long form, and a non-minimal long form with a leading zero octet.
        let mut r = Reader::new(&[
            0x04, 0x81, 0x02, b'h', b'i', 0x04, 0x83, 0x00, 0x00, 0x01, b'!',
        ]);
        assert_eq!(r.read_octets().unwrap(), b"hi");
        assert_eq!(r.read_octets().unwrap(), b"!");
        assert!(r.is_empty());
    }

    #[test]
    fn refuses_what_cannot_be_read() {
        let e = Reader::new(&[0x30, 0x80, 0x00, 0x00])
            .read_tlv()
            .unwrap_err();
        assert_eq!(e, DecodeError::new(DecodeErrorKind::IndefiniteLength, 1));
        let e = Reader::new(&[0x04, 0x05, 1, 2]).read_tlv().unwrap_err();
        assert_eq!(e, DecodeError::new(DecodeErrorKind::Truncated, 2));
        let e = Reader::new(&[0x04, 0x85, 1, 0, 0, 0, 0])
            .read_tlv()
            .unwrap_err();
        assert_eq!(e.kind, DecodeErrorKind::LengthOverflow);
        let e = Reader::new(&[0x1f, 0x01, 0x00]).read_tlv().unwrap_err();
        assert_eq!(e.kind, DecodeErrorKind::UnsupportedTag(0x1f));
        assert_eq!(
            Reader::new(&[]).read_tlv().unwrap_err().kind,
            DecodeErrorKind::Truncated
        );
        assert_eq!(
            Reader::new(&[0x04]).read_tlv().unwrap_err().kind,
            DecodeErrorKind::Truncated
        );
        assert_eq!(
            Reader::new(&[0x04, 0x82, 0x01])
                .read_tlv()
                .unwrap_err()
                .kind,
            DecodeErrorKind::Truncated
        );
    }

    #[test]
    fn sub_readers_report_absolute_offsets_and_trailing_data() {
        // SEQUENCE { INTEGER 1, INTEGER 2 } followed by a stray byte inside.
        let bytes = [0x30, 0x07, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02, 0xff];
        let mut outer = Reader::new(&bytes);
        let mut seq = outer.sub(tag::SEQUENCE).unwrap();
        assert_eq!(seq.read_i32().unwrap(), 1);
        assert_eq!(seq.read_i32().unwrap(), 2);
        assert_eq!(
            seq.finish().unwrap_err(),
            DecodeError::new(DecodeErrorKind::TrailingData, 8)
        );
        let e = Reader::new(&bytes).sub(tag::INTEGER).unwrap_err();
        assert_eq!(
            e.kind,
            DecodeErrorKind::UnexpectedTag {
                expected: tag::INTEGER,
                found: tag::SEQUENCE
            }
        );
    }

    #[test]
    fn i32_range_is_enforced() {
        let mut r = Reader::new(&[0x02, 0x05, 0x00, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(
            r.read_i32().unwrap_err().kind,
            DecodeErrorKind::IntegerOverflow
        );
    }
}
