//! The journal seam: where batches wait until the cloud holds them, and stay
//! a while after (so a cloud restored from an older backup can get them
//! back). The host keeps it in files, the firmware in flash, the simulator
//! on a simulated disk; the rules of what to send, drop or keep live in the
//! session, not here.
//!
//! An implementation keeps entries in the order they were appended, each
//! with a position greater than every position it handed out before, for
//! as long as it is open (even when every entry has been removed since).
//! Positions are local: the cloud knows batches by their [`BatchId`], and a
//! session learns where delivery stands from the cloud at every start, so a
//! journal reopened empty may start again at 1.

use super::batch::BatchId;
use core::fmt;

/// One journaled batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Its place in the journal; later entries have greater positions.
    pub pos: u64,
    pub id: BatchId,
    /// The length of its record (the encoded readings array).
    pub len: usize,
    /// Wall-clock time it was journaled, when the agent knew the date.
    pub made_ms: Option<u64>,
}

/// Why an append did not make a batch durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendError<E> {
    /// The journal's space is used up.
    Full,
    /// The storage failed (an I/O error, a bad flash sector).
    Failed(E),
}

impl<E: fmt::Display> fmt::Display for AppendError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppendError::Full => f.write_str("the journal is full"),
            AppendError::Failed(e) => write!(f, "{e}"),
        }
    }
}

/// What [`super::session::Session::commit`] did with a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub pos: u64,
    /// False when the storage refused the batch and the journal holds it in
    /// memory only ([`Journal::hold_in_memory`]): it is delivered in this run
    /// if the cloud answers, and lost if the process ends first.
    pub durable: bool,
}

/// Storage for batches.
pub trait Journal {
    /// What the storage reports when it fails.
    type Error: fmt::Display + fmt::Debug;

    /// Appends a record durably, after every entry held. Returns only once
    /// the record survives a power cut (or says it does not).
    fn append(
        &mut self,
        id: &BatchId,
        made_ms: Option<u64>,
        record: &[u8],
    ) -> Result<u64, AppendError<Self::Error>>;

    /// Keeps a record the storage refused in memory, after every entry
    /// held, so it can still be delivered while the process runs; returns
    /// its position. A device without memory to spare keeps the default,
    /// which declines.
    fn hold_in_memory(&mut self, id: &BatchId, made_ms: Option<u64>, record: &[u8]) -> Option<u64> {
        let _ = (id, made_ms, record);
        None
    }

    /// The first entry after position `after` (from the start when `None`).
    fn next(&mut self, after: Option<u64>) -> Result<Option<Entry>, Self::Error>;

    /// Reads the record at `pos` into `buf`; returns its length.
    fn read(&mut self, pos: u64, buf: &mut [u8]) -> Result<usize, Self::Error>;

    /// Drops the entry at `pos` (the cloud holds it and it is past
    /// retention).
    fn remove(&mut self, pos: u64) -> Result<(), Self::Error>;

    /// Takes the entry at `pos` out of the delivery order because the cloud
    /// refused it as malformed: the host keeps it aside with `reason` for
    /// an administrator; a device with no room for that drops it.
    fn quarantine(&mut self, pos: u64, reason: &str) -> Result<(), Self::Error>;
}
