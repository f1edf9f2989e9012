//! The cloud sync protocol (docs/protocol.md): CBOR messages the agent posts to
//! one HTTPS endpoint, and the HTTP/1.1 framing around them.
//!
//! The agent initiates every exchange: one POST of a CBOR request, one CBOR
//! response. Everything here works on caller buffers: [`message`] encodes and
//! decodes the messages as views that borrow the bytes, [`reading`] turns a
//! [`crate::printer::Snapshot`] into the reading a batch carries, and [`http`]
//! builds and parses the requests and responses that carry them.

pub mod batch;
mod cbor;
pub mod chunked;
pub mod http;
pub mod journal;
pub mod message;
pub mod reading;
pub mod session;
pub mod task;
pub mod url;
pub mod web_access;

use core::fmt;

/// The protocol version every message carries (key 0). A peer refuses a
/// version it does not speak rather than guess at its meaning.
pub const VERSION: u64 = 2;
/// The one path every exchange is posted to.
pub const ENDPOINT: &str = "/v1/sync";
/// The content type of every request and response body.
pub const CONTENT_TYPE: &str = "application/cbor";

/// Why a message could not be encoded or decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The CBOR itself is malformed or of the wrong type at byte `at`.
    Cbor { at: usize },
    /// The message speaks a protocol version this side does not.
    Version(u64),
    /// The message kind (key 1) is not one this side knows, or not one
    /// expected here (a response where a request belongs).
    Kind(u64),
    /// A field the message requires is absent.
    Missing(&'static str),
    /// More entries than the fixed capacity of `what`.
    TooMany(&'static str),
    /// A value out of its range (a MAC that is not 6 bytes, a boot id that is
    /// not 16).
    Invalid(&'static str),
    /// The caller's buffer is too small for the encoding.
    BufferTooSmall,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Cbor { at } => write!(f, "malformed CBOR at byte {at}"),
            Error::Version(v) => write!(f, "unsupported protocol version {v}"),
            Error::Kind(k) => write!(f, "unexpected message kind {k}"),
            Error::Missing(field) => write!(f, "missing field `{field}`"),
            Error::TooMany(what) => write!(f, "too many {what}"),
            Error::Invalid(what) => write!(f, "invalid {what}"),
            Error::BufferTooSmall => f.write_str("buffer too small for the message"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}

impl From<minicbor::decode::Error> for Error {
    fn from(e: minicbor::decode::Error) -> Self {
        Error::Cbor {
            at: e.position().unwrap_or(0),
        }
    }
}

impl<E> From<minicbor::encode::Error<E>> for Error {
    fn from(_: minicbor::encode::Error<E>) -> Self {
        Error::BufferTooSmall
    }
}

/// When a reading or message was made. The agent's wall clock when it knows
/// the date; otherwise time since boot plus an id of that boot, so the cloud
/// can order readings of one boot and tell boots apart (an MFP may not know
/// the date until NTP answers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Clock {
    /// Milliseconds since the Unix epoch, when known.
    pub wall_ms: Option<u64>,
    /// A random id drawn at each boot.
    pub boot_id: [u8; 16],
    /// Milliseconds since that boot.
    pub mono_ms: u64,
}
