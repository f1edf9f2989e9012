//! Small CBOR helpers shared by the messages and readings: definite lengths
//! only (this protocol never emits indefinite ones), optional values as null.

use super::{Clock, Error};
use minicbor::data::Type;
use minicbor::encode::Write;
use minicbor::{Decoder, Encoder};

/// An encoder over any writer: a caller's buffer, or a [`Counter`].
pub(crate) type Enc<W> = Encoder<W>;
pub(crate) type EncResult = Result<(), Error>;

/// A writer that only counts, so every encoder can say how long its output
/// will be before a caller sizes a buffer for it.
#[derive(Debug, Default)]
pub(crate) struct Counter(usize);

impl Counter {
    pub(crate) fn len(&self) -> usize {
        self.0
    }
}

impl Write for Counter {
    type Error = core::convert::Infallible;

    fn write_all(&mut self, buf: &[u8]) -> Result<(), Self::Error> {
        self.0 = self.0.saturating_add(buf.len());
        Ok(())
    }
}

pub(crate) fn map_len(d: &mut Decoder<'_>) -> Result<u64, Error> {
    d.map()?.ok_or(Error::Invalid("indefinite-length map"))
}

pub(crate) fn array_len(d: &mut Decoder<'_>) -> Result<u64, Error> {
    d.array()?.ok_or(Error::Invalid("indefinite-length array"))
}

/// Reads `null` as `None`; anything else with `read`.
pub(crate) fn opt<'b, T>(
    d: &mut Decoder<'b>,
    read: impl FnOnce(&mut Decoder<'b>) -> Result<T, minicbor::decode::Error>,
) -> Result<Option<T>, Error> {
    if d.datatype()? == Type::Null {
        d.null()?;
        Ok(None)
    } else {
        Ok(Some(read(d)?))
    }
}

pub(crate) fn put_opt_i32<W: Write>(e: &mut Encoder<W>, v: Option<i32>) -> Result<(), Error> {
    match v {
        Some(v) => e.i32(v)?,
        None => e.null()?,
    };
    Ok(())
}

pub(crate) fn put_opt_u32<W: Write>(e: &mut Encoder<W>, v: Option<u32>) -> Result<(), Error> {
    match v {
        Some(v) => e.u32(v)?,
        None => e.null()?,
    };
    Ok(())
}

/// Writes bytes that are already CBOR (a reading encoded earlier) as they are.
pub(crate) fn put_raw<W: Write>(e: &mut Enc<W>, raw: &[u8]) -> EncResult {
    e.writer_mut()
        .write_all(raw)
        .map_err(|_| Error::BufferTooSmall)
}

pub(crate) fn put_clock<W: Write>(e: &mut Enc<W>, c: &Clock) -> EncResult {
    let entries = if c.wall_ms.is_some() { 3 } else { 2 };
    e.map(entries)?;
    if let Some(wall) = c.wall_ms {
        e.u8(0)?.u64(wall)?;
    }
    e.u8(1)?.bytes(&c.boot_id)?;
    e.u8(2)?.u64(c.mono_ms)?;
    Ok(())
}

pub(crate) fn clock(d: &mut Decoder<'_>) -> Result<Clock, Error> {
    let mut c = Clock::default();
    let mut boot = false;
    for _ in 0..map_len(d)? {
        match d.u64()? {
            0 => c.wall_ms = Some(d.u64()?),
            1 => {
                c.boot_id = d
                    .bytes()?
                    .try_into()
                    .map_err(|_| Error::Invalid("boot id (must be 16 bytes)"))?;
                boot = true;
            }
            2 => c.mono_ms = d.u64()?,
            _ => d.skip()?,
        }
    }
    if !boot {
        return Err(Error::Missing("clock.boot_id"));
    }
    Ok(c)
}
