//! Batches: the readings of one collection, encoded once, journaled, and
//! named by the SHA-256 of their bytes.
//!
//! A content digest rather than a counter names a batch because a counter
//! is state that crashes, full disks, restored backups and re-enrollments
//! put out of step between agent and cloud, and a batch named by a number
//! the other side has seen for something else can only be refused. A digest
//! needs no agreement: the same bytes are the same batch, whoever sends
//! them and however often, so the cloud stores each batch once.
//!
//! A journal record is the CBOR array of the readings (header and items),
//! exactly the value an upload carries under its `readings` key.

use super::Error;
use super::message::Readings;
use super::reading;
use crate::printer::Snapshot;
use core::fmt;
use minicbor::Decoder;
use sha2::{Digest, Sha256};

/// The SHA-256 of a batch's readings (the encoded items, without the array
/// header), as both sides compute it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct BatchId(pub [u8; 32]);

impl BatchId {
    /// The id of `readings` (their encoded items).
    pub fn of(readings: &Readings<'_>) -> BatchId {
        BatchId(Sha256::digest(readings.raw()).into())
    }
}

impl fmt::Display for BatchId {
    /// The first 8 bytes in hex: enough to tell batches apart in a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0.iter().take(8) {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for BatchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BatchId({self})")
    }
}

/// Reads a journal record back as the readings it holds.
pub fn parse_record(record: &[u8]) -> Result<Readings<'_>, Error> {
    let mut d = Decoder::new(record);
    let count = super::cbor::array_len(&mut d)?;
    let start = d.position();
    for _ in 0..count {
        d.skip()?;
    }
    if d.position() != record.len() {
        return Err(Error::Cbor { at: d.position() });
    }
    let raw = record.get(start..).ok_or(Error::Cbor { at: start })?;
    Ok(Readings::new(raw, count))
}

/// Room kept in front of the items for the array header (at most 9 bytes).
const HEADER_ROOM: usize = 9;

/// Why a reading did not go into the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The batch is full (by bytes or by count): seal it and start another.
    Full,
    /// The reading alone is larger than a batch may be.
    TooLarge { bytes: usize },
    /// The reading could not be encoded.
    Encoding(Error),
}

/// Builds one batch in a caller's buffer, cut by size and by count so that
/// no batch can exceed the cloud's body limit.
#[derive(Debug)]
pub struct BatchWriter<'b> {
    buf: &'b mut [u8],
    end: usize,
    count: u64,
    max_count: u64,
}

impl<'b> BatchWriter<'b> {
    /// A batch of at most `max_count` readings in `buf` (its length is the
    /// byte limit, the array header included).
    pub fn new(buf: &'b mut [u8], max_count: u64) -> Self {
        BatchWriter {
            buf,
            end: HEADER_ROOM,
            count: 0,
            max_count: max_count.max(1),
        }
    }

    pub fn len(&self) -> u64 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Adds the reading of `s`, read at `at` from `address` (`None` when the
    /// site masks addresses).
    pub fn push(
        &mut self,
        s: &Snapshot,
        at: &super::Clock,
        address: Option<&str>,
    ) -> Result<(), Refused> {
        let need = reading::encoded_len(s, at, address);
        let capacity = self.buf.len().saturating_sub(HEADER_ROOM);
        if need > capacity {
            return Err(Refused::TooLarge { bytes: need });
        }
        if self.count >= self.max_count || need > self.buf.len().saturating_sub(self.end) {
            return Err(Refused::Full);
        }
        let room = self.buf.get_mut(self.end..).ok_or(Refused::Full)?;
        let n = reading::encode(s, at, address, room).map_err(Refused::Encoding)?;
        self.end = self.end.saturating_add(n);
        self.count = self.count.saturating_add(1);
        Ok(())
    }

    /// The journal record of the batch (array header and items), and its
    /// id. Resets the writer for the next batch.
    pub fn seal(&mut self) -> (&[u8], BatchId) {
        let mut header = [0u8; HEADER_ROOM];
        let len = {
            let mut e =
                minicbor::Encoder::new(minicbor::encode::write::Cursor::new(&mut header[..]));
            // Nine bytes hold any array header.
            let _ = e.array(self.count);
            e.into_writer().position()
        };
        let start = HEADER_ROOM.saturating_sub(len);
        if let (Some(dst), Some(src)) = (self.buf.get_mut(start..HEADER_ROOM), header.get(..len)) {
            dst.copy_from_slice(src);
        }
        let end = core::mem::replace(&mut self.end, HEADER_ROOM);
        let count = core::mem::replace(&mut self.count, 0);
        let items = self.buf.get(HEADER_ROOM..end).unwrap_or(&[]);
        let id = BatchId::of(&Readings::new(items, count));
        (self.buf.get(start..end).unwrap_or(&[]), id)
    }
}
