//! OpenDCA's brain: a `no_std`, sans-I/O core shared by the firmware, the host
//! service and the simulator.
//!
//! Nothing in this crate touches a socket, a clock, a disk or the heap. Callers
//! hand in bytes and buffers; the core hands back bytes and events.
//!
//! - [`ber`]: the Basic Encoding Rules subset SNMP uses: a [`ber::Reader`] with
//!   nested sub-readers, a [`ber::Writer`] that emits canonical encodings into a
//!   caller's buffer, and object identifiers ([`ber::Oid`], [`ber::OidRef`]).
//! - [`snmp`]: SNMP v1 / v2c messages, the v3 envelope, every PDU type and
//!   value type, decoded as zero-copy views that borrow the datagram.
//! - [`printer`]: the device model, from walked varbinds to a snapshot.
//! - [`poll`]: walking a device through the model's plan (retries, GetBulk
//!   adaptation, fallbacks), driven by the caller's clock and socket.
//! - [`sync`]: the cloud sync protocol: CBOR messages, readings keyed on the
//!   device's identity, and the HTTP/1.1 framing that carries them.
//!
//! ```
//! use dca_core::ber::Oid;
//! use dca_core::snmp::{CommunityMessage, Message, Pdu, PduType, Pdus, Value, VarBind, Version};
//!
//! // Encode a GetRequest for sysDescr into a caller's buffer...
//! let sys_descr: Oid = "1.3.6.1.2.1.1.1.0".parse().unwrap();
//! let varbinds = [VarBind::null(sys_descr.as_oid_ref())];
//! let request = CommunityMessage {
//!     version: Version::V2c,
//!     community: b"public",
//!     pdu: Pdus::Pdu(Pdu::new(PduType::GetRequest, 7, &varbinds[..])),
//! };
//! let mut buf = [0u8; 484];
//! let len = request.encode(&mut buf).unwrap();
//!
//! // ...and read it back without copying anything out of the datagram.
//! let Message::Community(m) = Message::decode(&buf[..len]).unwrap() else { unreachable!() };
//! assert_eq!(m.community, b"public");
//! for vb in m.pdu.varbinds().clone() {
//!     let vb = vb.unwrap(); // a malformed varbind is an error for itself only
//!     assert_eq!(vb.name.to_string(), "1.3.6.1.2.1.1.1.0");
//!     assert_eq!(vb.value, Value::Null);
//! }
//! ```
#![no_std]
#![forbid(unsafe_code)]
// The core's contract: no input makes any function panic. These lints deny
// the constructs that could (tests may use them: see core/clippy.toml).
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::unreachable,
    clippy::arithmetic_side_effects
)]

#[cfg(any(test, feature = "std"))]
extern crate std;

pub mod ber;
mod heapsort;
pub mod mix;
pub mod poll;
pub mod printer;
pub mod provision;
pub mod snmp;
#[cfg(feature = "std")]
pub mod snmprec;
pub mod sync;
pub mod time;
