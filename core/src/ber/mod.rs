//! The subset of ASN.1 Basic Encoding Rules that SNMP uses.
//!
//! # Contract
//!
//! **No input makes any function in this module panic.** Every decoder returns
//! a [`DecodeError`] naming what went wrong and at which byte offset of the
//! datagram; every encoder returns an [`EncodeError`] when the caller's buffer
//! is too small. The lints below deny the constructs that could panic
//! (`unwrap`, `expect`, slice indexing, unchecked arithmetic; see the crate
//! root) so the compiler holds us to it; the fuzz targets in `core/fuzz`
//! check it with real inputs.
//!
//! # Leniency
//!
//! Decoding accepts what real devices send even when X.690 frowns on it:
//! long-form and non-minimal lengths, non-minimal INTEGERs, unsigned values
//! with extra leading octets. It refuses what cannot be read unambiguously:
//! indefinite lengths (forbidden in SNMP), high-tag-number identifiers and
//! lengths that run past their enclosing value.
//!
//! Encoding is strict: definite, minimal lengths and minimal contents only.

mod integer;
mod oid;
mod reader;
mod writer;

pub use integer::{decode_i64, decode_unsigned, encoded_signed_len, encoded_unsigned_len};
pub use oid::{Arcs, MAX_ARCS, MAX_OID_BYTES, Oid, OidBuf, OidError, OidRef};
pub use reader::Reader;
pub use writer::{Writer, header_len, tlv_len};

use core::fmt;

/// Universal-class tags that SNMP uses.
pub mod tag {
    pub const INTEGER: u8 = 0x02;
    pub const OCTET_STRING: u8 = 0x04;
    pub const NULL: u8 = 0x05;
    pub const OBJECT_IDENTIFIER: u8 = 0x06;
    pub const SEQUENCE: u8 = 0x30;
}

/// Why a decode failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeErrorKind {
    /// The input ended inside a tag, length or value.
    Truncated,
    /// A length byte of `0x80`: indefinite lengths are not allowed in SNMP.
    IndefiniteLength,
    /// A long-form length too large to be meaningful here.
    LengthOverflow,
    /// A high-tag-number identifier (low five bits all set); SNMP never uses one.
    UnsupportedTag(u8),
    /// A different tag was required at this place.
    UnexpectedTag { expected: u8, found: u8 },
    /// Bytes were left over after the last element of a value.
    TrailingData,
    /// An INTEGER or unsigned value with no content octets.
    EmptyInteger,
    /// An integer that does not fit the type it decodes into.
    IntegerOverflow,
    /// A NULL (or exception) with content octets.
    NonEmptyNull,
    /// An IpAddress whose length is not four octets.
    BadIpAddress,
    /// An OBJECT IDENTIFIER that cannot be read.
    BadOid(OidError),
    /// A field holds a number outside the values it may take.
    ValueOutOfRange,
    /// An SNMP message whose version is not 0 (v1), 1 (v2c) or 3 (v3).
    UnknownVersion(i64),
    /// A PDU tag that no SNMP version defines (or, in a v3 scoped PDU, the
    /// v1 Trap-PDU).
    UnknownPduType(u8),
}

/// A decode failure and the byte offset (from the start of the decoded
/// buffer) of the element that caused it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeError {
    pub kind: DecodeErrorKind,
    pub offset: usize,
}

impl DecodeError {
    pub const fn new(kind: DecodeErrorKind, offset: usize) -> Self {
        Self { kind, offset }
    }
}

impl fmt::Display for DecodeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => f.write_str("input ends inside an element"),
            Self::IndefiniteLength => f.write_str("indefinite length (not allowed in SNMP)"),
            Self::LengthOverflow => f.write_str("length too large"),
            Self::UnsupportedTag(t) => {
                write!(f, "unsupported high-tag-number identifier 0x{t:02x}")
            }
            Self::UnexpectedTag { expected, found } => {
                write!(f, "expected tag 0x{expected:02x}, found 0x{found:02x}")
            }
            Self::TrailingData => f.write_str("trailing bytes after the last element"),
            Self::EmptyInteger => f.write_str("integer with no content octets"),
            Self::IntegerOverflow => f.write_str("integer too large for its type"),
            Self::NonEmptyNull => f.write_str("NULL with content octets"),
            Self::BadIpAddress => f.write_str("IpAddress not four octets long"),
            Self::BadOid(e) => write!(f, "bad object identifier: {e}"),
            Self::ValueOutOfRange => f.write_str("value outside its allowed range"),
            Self::UnknownVersion(v) => write!(f, "unknown SNMP version {v}"),
            Self::UnknownPduType(t) => write!(f, "unknown PDU type 0x{t:02x}"),
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.kind, self.offset)
    }
}

/// Why an encode failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// The caller's buffer cannot hold the encoding.
    BufferTooSmall { needed: usize, available: usize },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BufferTooSmall { needed, available } => {
                write!(
                    f,
                    "buffer too small: {needed} bytes needed, {available} available"
                )
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for DecodeError {}
#[cfg(feature = "std")]
impl std::error::Error for EncodeError {}
