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
#![no_std]
#![forbid(unsafe_code)]

#[cfg(any(test, feature = "std"))]
extern crate std;

pub mod ber;
pub mod snmp;
