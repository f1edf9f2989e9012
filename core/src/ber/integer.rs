//! INTEGER content octets (two's complement, big-endian), both directions.
//!
//! Decoding is lenient: redundant leading sign octets are accepted (devices
//! send `02 02 00 05`). Unsigned application types (Counter32, Gauge32,
//! TimeTicks, Counter64) are read as net-snmp reads them: the octets are a
//! two's complement number of up to nine octets (the ninth only as a leading
//! zero), truncated to the type's width. So `41 04 ff ff ff ff`, a Counter32
//! some printers send for 4294967295, decodes to 4294967295 rather than
//! failing or becoming -1.

use super::DecodeErrorKind;

/// Reads signed INTEGER content octets into an `i64`.
pub fn decode_i64(content: &[u8]) -> Result<i64, DecodeErrorKind> {
    let (&first, _) = content.split_first().ok_or(DecodeErrorKind::EmptyInteger)?;
    let sign_byte = if first & 0x80 != 0 { 0xff } else { 0x00 };
    // Drop redundant sign octets, but keep one if the next octet's top bit
    // would otherwise flip the sign.
    let mut rest = content;
    while let [a, b, ..] = rest {
        if *a == sign_byte && (b & 0x80) == (sign_byte & 0x80) {
            rest = rest.get(1..).unwrap_or_default();
        } else {
            break;
        }
    }
    if rest.len() > 8 {
        return Err(DecodeErrorKind::IntegerOverflow);
    }
    let init: i64 = if sign_byte == 0xff { -1 } else { 0 };
    Ok(rest.iter().fold(init, |acc, &b| (acc << 8) | i64::from(b)))
}

/// Reads unsigned application-type content octets the way net-snmp does,
/// then keeps the low `bits` bits (32 or 64).
pub fn decode_unsigned(content: &[u8], bits: u32) -> Result<u64, DecodeErrorKind> {
    let (&first, _) = content.split_first().ok_or(DecodeErrorKind::EmptyInteger)?;
    if content.len() > 9 || (content.len() == 9 && first != 0) {
        return Err(DecodeErrorKind::IntegerOverflow);
    }
    let init: u64 = if first & 0x80 != 0 { u64::MAX } else { 0 };
    let value = content
        .iter()
        .fold(init, |acc, &b| (acc << 8) | u64::from(b));
    // Keep the low `bits` bits; a shift of 64 or more keeps them all.
    Ok(u64::MAX
        .checked_shl(bits)
        .map_or(value, |high| value & !high))
}

/// Number of content octets of the minimal encoding of `v`.
pub fn encoded_signed_len(v: i64) -> usize {
    // Redundant sign bits are the leading zeros of the value (or of its
    // complement when negative); one sign bit must remain.
    let redundant = if v < 0 {
        (!v).leading_zeros()
    } else {
        v.leading_zeros()
    };
    let needed_bits = 65u32.saturating_sub(redundant);
    needed_bits.div_ceil(8) as usize
}

/// Number of content octets of the minimal encoding of unsigned `v` (a
/// leading zero octet is needed when the top bit of the first octet is set).
pub fn encoded_unsigned_len(v: u64) -> usize {
    let significant_bits = 64u32.saturating_sub(v.leading_zeros());
    // One more bit for the sign, rounded up to whole octets, at least one.
    ((significant_bits >> 3) as usize).saturating_add(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_minimal_and_lenient() {
        assert_eq!(decode_i64(&[0x00]), Ok(0));
        assert_eq!(decode_i64(&[0x7f]), Ok(127));
        assert_eq!(decode_i64(&[0x00, 0x80]), Ok(128));
        assert_eq!(decode_i64(&[0x80]), Ok(-128));
        assert_eq!(decode_i64(&[0xff, 0x7f]), Ok(-129));
        assert_eq!(decode_i64(&[0xff]), Ok(-1));
        // Non-minimal encodings some agents send.
        assert_eq!(decode_i64(&[0x00, 0x00, 0x00, 0x05]), Ok(5));
        assert_eq!(decode_i64(&[0xff, 0xff, 0xff, 0xfe]), Ok(-2));
        assert_eq!(decode_i64(&[0x00; 20]), Ok(0));
        // An unsigned 32-bit value sent as a five-octet INTEGER.
        assert_eq!(decode_i64(&[0x00, 0xff, 0xff, 0xff, 0xff]), Ok(0xffff_ffff));
        assert_eq!(
            decode_i64(&[0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            Ok(i64::MAX)
        );
        assert_eq!(decode_i64(&[0x80, 0, 0, 0, 0, 0, 0, 0]), Ok(i64::MIN));
        assert_eq!(
            decode_i64(&[0x01, 0, 0, 0, 0, 0, 0, 0, 0]),
            Err(DecodeErrorKind::IntegerOverflow)
        );
        assert_eq!(decode_i64(&[]), Err(DecodeErrorKind::EmptyInteger));
    }

    #[test]
    fn unsigned_like_net_snmp() {
        assert_eq!(
            decode_unsigned(&[0x00, 0xff, 0xff, 0xff, 0xff], 32),
            Ok(0xffff_ffff)
        );
        assert_eq!(
            decode_unsigned(&[0xff, 0xff, 0xff, 0xff], 32),
            Ok(0xffff_ffff)
        );
        assert_eq!(decode_unsigned(&[0x80], 32), Ok(0xffff_ff80));
        assert_eq!(decode_unsigned(&[0, 0, 0, 0, 0, 0, 0, 0, 7], 32), Ok(7));
        assert_eq!(decode_unsigned(&[1, 0, 0, 0, 0], 32), Ok(0));
        assert_eq!(
            decode_unsigned(&[0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], 64),
            Ok(u64::MAX)
        );
        assert_eq!(
            decode_unsigned(&[1, 0, 0, 0, 0, 0, 0, 0, 0], 64),
            Err(DecodeErrorKind::IntegerOverflow)
        );
        assert_eq!(
            decode_unsigned(&[0; 10], 64),
            Err(DecodeErrorKind::IntegerOverflow)
        );
    }

    #[test]
    fn minimal_lengths() {
        for (v, n) in [
            (0i64, 1),
            (127, 1),
            (128, 2),
            (-128, 1),
            (-129, 2),
            (i64::MAX, 8),
            (i64::MIN, 8),
        ] {
            assert_eq!(encoded_signed_len(v), n, "{v}");
        }
        for (v, n) in [
            (0u64, 1),
            (127, 1),
            (128, 2),
            (255, 2),
            (0xffff_ffff, 5),
            (u64::MAX, 9),
        ] {
            assert_eq!(encoded_unsigned_len(v), n, "{v}");
        }
    }
}
