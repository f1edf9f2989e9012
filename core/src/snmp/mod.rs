//! SNMP messages (RFC 1157, 3416, 3412): v1 and v2c community messages, the
//! v3 envelope, every PDU type and every value type.
//!
//! # Contract
//!
//! **No input makes any function in this module panic**; the crate-wide lints
//! enforce it and the fuzz targets in `core/fuzz` exercise it.
//!
//! # Decoding
//!
//! [`Message::decode`] returns views that borrow the datagram. The varbind
//! list is decoded lazily by [`VarBinds`]: iterating it allocates nothing and
//! yields one `Result` per varbind, so a malformed varbind spoils itself and
//! not the rest of the PDU. Only a varbind whose framing (tag or length) is
//! broken ends the list, because nothing after it can be located.
//!
//! # Encoding
//!
//! The same types with a slice of [`VarBind`]s in place of [`VarBinds`] encode
//! into a caller's buffer, canonically, with `encode(&mut [u8])`.

mod message;
mod pdu;
#[cfg(feature = "usm")]
pub mod usm;
mod v3;
mod value;
mod varbind;

pub use message::{CommunityMessage, Message, Version};
pub use pdu::{ErrorStatus, Pdu, PduType, Pdus, TrapV1};
pub use v3::{HeaderData, ScopedPdu, ScopedPduData, UsmSecurityParameters, V3Message, flags};
pub use value::{Value, tag};
pub use varbind::{VarBind, VarBinds};

use crate::ber::{EncodeError, Writer};

/// Writes a complete encoding into `buf` and returns its length, after
/// checking once that it fits.
fn encode_into(
    buf: &mut [u8],
    len: usize,
    f: impl FnOnce(&mut Writer<'_>) -> Result<(), EncodeError>,
) -> Result<usize, EncodeError> {
    if len > buf.len() {
        return Err(EncodeError::BufferTooSmall {
            needed: len,
            available: buf.len(),
        });
    }
    let mut w = Writer::new(buf);
    f(&mut w)?;
    Ok(w.position())
}
