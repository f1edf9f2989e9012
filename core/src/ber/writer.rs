//! Emits canonical BER (definite, minimal lengths) into a caller's buffer.
//!
//! Writing goes front to back. Every encodable type can state its encoded
//! length before it writes, so each header is written once with its minimal
//! length and nothing is moved afterwards.

use super::{EncodeError, encoded_signed_len, encoded_unsigned_len};

/// Number of octets of the identifier and minimal length of a value with
/// `content_len` content octets.
pub const fn header_len(content_len: usize) -> usize {
    if content_len < 0x80 {
        2
    } else {
        // 0x8N followed by N length octets.
        let len_octets = (usize::BITS.saturating_sub(content_len.leading_zeros())).div_ceil(8);
        (len_octets as usize).saturating_add(2)
    }
}

/// Total encoded length of a value with `content_len` content octets.
pub const fn tlv_len(content_len: usize) -> usize {
    header_len(content_len).saturating_add(content_len)
}

/// A cursor writing into a borrowed buffer.
#[derive(Debug)]
pub struct Writer<'b> {
    buf: &'b mut [u8],
    pos: usize,
}

impl<'b> Writer<'b> {
    pub fn new(buf: &'b mut [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// How many bytes have been written.
    pub const fn position(&self) -> usize {
        self.pos
    }

    /// The bytes written so far.
    pub fn written(&self) -> &[u8] {
        self.buf.get(..self.pos).unwrap_or_default()
    }

    /// Reserves `n` bytes and returns them for the caller to fill.
    fn take(&mut self, n: usize) -> Result<&mut [u8], EncodeError> {
        let available = self.buf.len();
        let end = self.pos.checked_add(n).filter(|&e| e <= available).ok_or(
            EncodeError::BufferTooSmall {
                needed: self.pos.saturating_add(n),
                available,
            },
        )?;
        let start = self.pos;
        self.pos = end;
        self.buf
            .get_mut(start..end)
            .ok_or(EncodeError::BufferTooSmall {
                needed: end,
                available,
            })
    }

    pub fn bytes(&mut self, bytes: &[u8]) -> Result<(), EncodeError> {
        self.take(bytes.len())?.copy_from_slice(bytes);
        Ok(())
    }

    /// Writes an identifier and the minimal definite length.
    pub fn header(&mut self, tag: u8, content_len: usize) -> Result<(), EncodeError> {
        let n = header_len(content_len);
        let out = self.take(n)?;
        let be = content_len.to_be_bytes();
        match out {
            [t, l] => {
                *t = tag;
                // header_len chose the short form, so this fits in 7 bits.
                *l = be.last().copied().unwrap_or_default();
            }
            [t, l, len_octets @ ..] => {
                *t = tag;
                let count = len_octets.len();
                *l = 0x80 | (count as u8);
                let start = be.len().saturating_sub(count);
                len_octets.copy_from_slice(be.get(start..).unwrap_or_default());
            }
            _ => {}
        }
        Ok(())
    }

    /// Writes a primitive element.
    pub fn primitive(&mut self, tag: u8, content: &[u8]) -> Result<(), EncodeError> {
        self.header(tag, content.len())?;
        self.bytes(content)
    }

    /// Writes a signed integer with minimal content octets.
    pub fn signed(&mut self, tag: u8, v: i64) -> Result<(), EncodeError> {
        let n = encoded_signed_len(v);
        let be = v.to_be_bytes();
        self.primitive(
            tag,
            be.get(be.len().saturating_sub(n)..).unwrap_or_default(),
        )
    }

    /// Writes an unsigned integer with minimal content octets (a leading zero
    /// octet when the top bit would otherwise read as a sign).
    pub fn unsigned(&mut self, tag: u8, v: u64) -> Result<(), EncodeError> {
        let n = encoded_unsigned_len(v);
        self.header(tag, n)?;
        if n > 8 {
            self.bytes(&[0])?;
        }
        let be = v.to_be_bytes();
        self.bytes(be.get(be.len().saturating_sub(n)..).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ber::{Reader, decode_i64, decode_unsigned, tag};

    fn encode(f: impl FnOnce(&mut Writer<'_>) -> Result<(), EncodeError>) -> std::vec::Vec<u8> {
        let mut buf = [0u8; 300];
        let mut w = Writer::new(&mut buf);
        f(&mut w).unwrap();
        w.written().to_vec()
    }

    #[test]
    fn minimal_lengths() {
        assert_eq!(encode(|w| w.header(0x30, 0)), [0x30, 0x00]);
        assert_eq!(encode(|w| w.header(0x30, 127)), [0x30, 0x7f]);
        assert_eq!(encode(|w| w.header(0x30, 128)), [0x30, 0x81, 0x80]);
        assert_eq!(encode(|w| w.header(0x30, 256)), [0x30, 0x82, 0x01, 0x00]);
        assert_eq!(
            encode(|w| w.header(0x30, 65536)),
            [0x30, 0x83, 0x01, 0x00, 0x00]
        );
        for len in [0, 1, 127, 128, 255, 256, 65535, 65536, 1 << 24] {
            assert_eq!(
                encode(|w| w.header(0x30, len)).len(),
                header_len(len),
                "{len}"
            );
        }
    }

    #[test]
    fn minimal_integers_round_trip() {
        assert_eq!(encode(|w| w.signed(tag::INTEGER, 0)), [0x02, 0x01, 0x00]);
        assert_eq!(
            encode(|w| w.signed(tag::INTEGER, 128)),
            [0x02, 0x02, 0x00, 0x80]
        );
        assert_eq!(
            encode(|w| w.signed(tag::INTEGER, -129)),
            [0x02, 0x02, 0xff, 0x7f]
        );
        assert_eq!(
            encode(|w| w.unsigned(0x41, 0xffff_ffff)),
            [0x41, 0x05, 0x00, 0xff, 0xff, 0xff, 0xff]
        );
        assert_eq!(
            encode(|w| w.unsigned(0x46, u64::MAX)),
            [
                0x46, 0x09, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff
            ]
        );
        for v in [
            0i64,
            1,
            -1,
            127,
            128,
            -128,
            -129,
            65535,
            i64::from(i32::MIN),
            i64::MAX,
            i64::MIN,
        ] {
            let bytes = encode(|w| w.signed(tag::INTEGER, v));
            let tlv = Reader::new(&bytes).read_tlv().unwrap();
            assert_eq!(decode_i64(tlv.content), Ok(v));
        }
        for v in [0u64, 1, 127, 128, 255, 256, 0xffff_ffff, u64::MAX] {
            let bytes = encode(|w| w.unsigned(0x46, v));
            let tlv = Reader::new(&bytes).read_tlv().unwrap();
            assert_eq!(decode_unsigned(tlv.content, 64), Ok(v));
        }
    }

    #[test]
    fn too_small_is_an_error() {
        let mut buf = [0u8; 3];
        let mut w = Writer::new(&mut buf);
        assert_eq!(
            w.primitive(tag::OCTET_STRING, b"abc"),
            Err(EncodeError::BufferTooSmall {
                needed: 5,
                available: 3
            })
        );
    }
}
