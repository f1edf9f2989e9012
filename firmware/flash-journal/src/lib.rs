//! The agent's journal of batches in NOR flash ([`FlashJournal`], the core's
//! `Journal` seam), and a small power-safe store for the device's identity
//! ([`identity`]).
//!
//! The journal is a log over a ring of erase sectors. Each entry is a
//! 64-byte header and its record:
//!
//! | offset | field                                                    |
//! |--------|----------------------------------------------------------|
//! | 0      | record length (u32, little-endian)                       |
//! | 4      | position (u64)                                           |
//! | 12     | journaled at, ms since the epoch (u64; all ones: unknown)|
//! | 20     | batch id (32 bytes)                                      |
//! | 52     | check: the first 4 bytes of SHA-256 over bytes 0..52     |
//! | 56     | `VALID`, programmed last: the entry is complete          |
//! | 60     | all ones while live; programmed to zero when dropped     |
//!
//! NOR flash only clears bits between erases, so an entry is written in
//! order (header, record, then the valid word) and dropped by clearing one
//! word; nothing is ever rewritten in place. A power cut in the middle of
//! an append leaves a header without its valid word: that sector takes no
//! more appends and the entry does not exist, so an append either returned
//! and survives, or never happened. A sector is erased, oldest first, only
//! once every entry in it has been dropped; when the oldest still holds a
//! live entry the journal is full (the session then drops delivered
//! batches it kept). Records are not checked here: the session checks each
//! against its digest.
//!
//! Why not `sequential-storage`: its queue reads whole items into a buffer
//! as large as the largest to look at any of them, and the session walks
//! entries often; here a walk reads headers only, and RAM holds an index of
//! 16 bytes per entry.
#![no_std]

pub mod identity;

use core::fmt;

use dca_core::sync::batch::BatchId;
use dca_core::sync::journal::{AppendError, Entry, Journal};
use embedded_storage::nor_flash::{NorFlash, NorFlashError, NorFlashErrorKind};
use heapless::Vec;
use sha2::{Digest, Sha256};

/// Bytes of an entry's header.
pub const HEADER: usize = 64;
/// Entries held at most (the index in RAM: 16 bytes each).
pub const MAX_ENTRIES: usize = 64;
/// Erase sectors in a region at most.
pub const MAX_SECTORS: usize = 32;
/// The valid word ("DCJ1").
const VALID: u32 = 0x314a_4344;
const LIVE: u32 = u32::MAX;
const NO_DATE: u64 = u64::MAX;
const WORD: usize = 4;

/// What went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The flash refused an operation.
    Flash(NorFlashErrorKind),
    /// The region is not whole sectors, has more than [`MAX_SECTORS`], or
    /// the flash writes in units other than 1, 2 or 4 bytes.
    Layout,
    /// A record larger than a sector can hold.
    TooLarge {
        bytes: usize,
    },
    NoSuchEntry,
    BufferTooSmall,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Flash(kind) => write!(f, "the flash failed: {kind:?}"),
            Error::Layout => f.write_str("the journal's flash region has an unusable layout"),
            Error::TooLarge { bytes } => {
                write!(
                    f,
                    "a record of {bytes} bytes is larger than a flash sector holds"
                )
            }
            Error::NoSuchEntry => f.write_str("no journal entry at that position"),
            Error::BufferTooSmall => f.write_str("the buffer cannot hold the record"),
        }
    }
}

fn flash<E: NorFlashError>(e: E) -> Error {
    Error::Flash(e.kind())
}

/// Programs `bytes` at `at` in whole words, the last padded with ones (which
/// program nothing).
fn write_words<F: NorFlash>(flash: &mut F, at: u32, bytes: &[u8]) -> Result<(), Error> {
    let whole = bytes.len() - bytes.len() % WORD;
    if whole > 0 {
        flash
            .write(at, bytes.get(..whole).unwrap_or(&[]))
            .map_err(crate::flash)?;
    }
    if whole < bytes.len() {
        let mut tail = [0xffu8; WORD];
        let rest = bytes.get(whole..).unwrap_or(&[]);
        tail.get_mut(..rest.len())
            .unwrap_or(&mut [])
            .copy_from_slice(rest);
        flash
            .write(at.saturating_add(whole as u32), &tail)
            .map_err(crate::flash)?;
    }
    Ok(())
}

/// A live entry: where it is.
#[derive(Debug, Clone, Copy)]
struct Slot {
    pos: u64,
    /// Offset of its header in the region.
    at: u32,
    len: u32,
}

#[derive(Debug, Clone, Copy, Default)]
struct Sector {
    /// Where the next entry would go (the sector size when closed).
    end: u32,
    /// Live entries in it.
    live: u16,
    /// Something was programmed since its last erase.
    dirty: bool,
}

/// The journal over `sectors` erase sectors of `F` starting at `base`.
pub struct FlashJournal<F: NorFlash> {
    flash: F,
    base: u32,
    sector_size: u32,
    sectors: Vec<Sector, MAX_SECTORS>,
    /// Live entries, by position.
    index: Vec<Slot, MAX_ENTRIES>,
    /// The sector appends go to.
    active: usize,
    last_pos: u64,
}

/// Rounds up to whole words.
fn padded(len: usize) -> usize {
    len.div_ceil(WORD).saturating_mul(WORD)
}

fn check(fields: &[u8]) -> [u8; 4] {
    let digest = Sha256::digest(fields);
    let mut c = [0u8; 4];
    c.copy_from_slice(digest.get(..4).unwrap_or(&[0; 4]));
    c
}

fn word(bytes: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    if let Some(b) = bytes.get(at..at + 4) {
        w.copy_from_slice(b);
    }
    u32::from_le_bytes(w)
}

fn dword(bytes: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    if let Some(b) = bytes.get(at..at + 8) {
        w.copy_from_slice(b);
    }
    u64::from_le_bytes(w)
}

/// A complete header's fields.
struct Header {
    len: u32,
    pos: u64,
    made_ms: Option<u64>,
    id: BatchId,
    live: bool,
}

fn parse(h: &[u8; HEADER]) -> Option<Header> {
    if word(h, 56) != VALID || h.get(52..56) != Some(&check(h.get(..52)?)[..]) {
        return None;
    }
    let mut id = [0u8; 32];
    id.copy_from_slice(h.get(20..52)?);
    let made = dword(h, 12);
    Some(Header {
        len: word(h, 0),
        pos: dword(h, 4),
        made_ms: (made != NO_DATE).then_some(made),
        id: BatchId(id),
        live: word(h, 60) == LIVE,
    })
}

impl<F: NorFlash> FlashJournal<F> {
    /// Opens the journal in `sectors` erase sectors from `base`, reading
    /// every header once (nothing is written).
    pub fn open(flash: F, base: u32, sectors: usize) -> Result<Self, Error> {
        let sector_size = u32::try_from(F::ERASE_SIZE).map_err(|_| Error::Layout)?;
        if sectors == 0
            || sectors > MAX_SECTORS
            || F::WRITE_SIZE == 0
            || !WORD.is_multiple_of(F::WRITE_SIZE)
            || F::ERASE_SIZE < HEADER * 2
            || !base.is_multiple_of(sector_size)
        {
            return Err(Error::Layout);
        }
        let mut j = FlashJournal {
            flash,
            base,
            sector_size,
            sectors: Vec::new(),
            index: Vec::new(),
            active: 0,
            last_pos: 0,
        };
        let mut newest: Option<(u64, usize)> = None;
        for s in 0..sectors {
            let info = j.scan(s, &mut newest)?;
            let _ = j.sectors.push(info);
        }
        if let Some((pos, s)) = newest {
            j.last_pos = pos;
            j.active = s;
        }
        Ok(j)
    }

    fn sector_start(&self, s: usize) -> u32 {
        self.base
            .saturating_add(self.sector_size.saturating_mul(s as u32))
    }

    /// Reads sector `s`'s headers: live entries into the index, the newest
    /// entry seen into `newest`.
    fn scan(&mut self, s: usize, newest: &mut Option<(u64, usize)>) -> Result<Sector, Error> {
        let start = self.sector_start(s);
        let size = self.sector_size;
        let mut info = Sector::default();
        let mut off = 0u32;
        // Bounded: every step moves at least one header forward.
        loop {
            if off as usize + HEADER > size as usize {
                info.end = size;
                break;
            }
            let mut h = [0u8; HEADER];
            self.flash
                .read(start.saturating_add(off), &mut h)
                .map_err(flash)?;
            if h.iter().all(|b| *b == 0xff) {
                // Erased from here, unless an erase was cut short: then
                // old bytes remain further on, and an append over them
                // would be corrupted. Such a sector is erased before use.
                if self.erased(start.saturating_add(off), size.saturating_sub(off))? {
                    info.end = off;
                } else {
                    info.dirty = true;
                    info.end = size;
                }
                break;
            }
            info.dirty = true;
            let entry = parse(&h).filter(|e| {
                (e.len as usize).saturating_add(HEADER) <= (size - off) as usize && e.pos > 0
            });
            let Some(e) = entry else {
                // An append cut short: nothing more goes in this sector.
                info.end = size;
                break;
            };
            if newest.is_none_or(|(p, _)| e.pos > p) {
                *newest = Some((e.pos, s));
            }
            if e.live {
                let slot = Slot {
                    pos: e.pos,
                    at: start.saturating_sub(self.base).saturating_add(off),
                    len: e.len,
                };
                let i = self.index.partition_point(|x| x.pos < e.pos);
                if self.index.insert(i, slot).is_ok() {
                    info.live = info.live.saturating_add(1);
                }
            }
            off = off.saturating_add((HEADER + padded(e.len as usize)) as u32);
        }
        Ok(info)
    }

    /// Whether `len` bytes from `at` all read as erased.
    fn erased(&mut self, at: u32, len: u32) -> Result<bool, Error> {
        let mut chunk = [0u8; HEADER];
        let mut done = 0u32;
        // Bounded: each pass reads up to a header's worth.
        while done < len {
            let n = (len - done).min(HEADER as u32);
            let part = chunk.get_mut(..n as usize).unwrap_or(&mut []);
            self.flash
                .read(at.saturating_add(done), part)
                .map_err(flash)?;
            if part.iter().any(|b| *b != 0xff) {
                return Ok(false);
            }
            done = done.saturating_add(n);
        }
        Ok(true)
    }

    /// Entries held, the bytes of their records, and sectors erased or
    /// erasable.
    pub fn usage(&self) -> (usize, usize, usize) {
        let bytes = self.index.iter().map(|s| s.len as usize).sum();
        let free = self.sectors.iter().filter(|s| s.live == 0).count();
        (self.index.len(), bytes, free)
    }

    /// The flash, back (to reopen it, say).
    pub fn into_flash(self) -> F {
        self.flash
    }

    fn fits(&self, s: usize, need: u32) -> bool {
        self.sectors
            .get(s)
            .is_some_and(|i| i.end.saturating_add(need) <= self.sector_size)
    }

    /// The sector the next entry of `need` bytes goes in, erased if it must
    /// be; `None` when the oldest sector still holds live entries.
    fn room(&mut self, need: u32) -> Result<Option<usize>, Error> {
        if self.fits(self.active, need) {
            return Ok(Some(self.active));
        }
        let next = (self.active + 1) % self.sectors.len().max(1);
        let Some(info) = self.sectors.get(next).copied() else {
            return Err(Error::Layout);
        };
        if info.live > 0 {
            return Ok(None);
        }
        if info.dirty {
            let from = self.sector_start(next);
            self.flash
                .erase(from, from.saturating_add(self.sector_size))
                .map_err(flash)?;
        }
        if let Some(i) = self.sectors.get_mut(next) {
            *i = Sector::default();
        }
        self.active = next;
        Ok(Some(next))
    }

    fn write(&mut self, at: u32, bytes: &[u8]) -> Result<(), Error> {
        self.flash
            .write(self.base.saturating_add(at), bytes)
            .map_err(flash)
    }

    fn slot(&self, pos: u64) -> Result<(usize, Slot), Error> {
        let i = self.index.partition_point(|s| s.pos < pos);
        match self.index.get(i) {
            Some(s) if s.pos == pos => Ok((i, *s)),
            _ => Err(Error::NoSuchEntry),
        }
    }
}

impl<F: NorFlash> Journal for FlashJournal<F> {
    type Error = Error;

    fn append(
        &mut self,
        id: &BatchId,
        made_ms: Option<u64>,
        record: &[u8],
    ) -> Result<u64, AppendError<Error>> {
        let need = HEADER + padded(record.len());
        if need > self.sector_size as usize {
            return Err(AppendError::Failed(Error::TooLarge {
                bytes: record.len(),
            }));
        }
        if self.index.is_full() {
            return Err(AppendError::Full);
        }
        let need = need as u32;
        let Some(s) = self.room(need).map_err(AppendError::Failed)? else {
            return Err(AppendError::Full);
        };
        let at = self
            .sector_start(s)
            .saturating_sub(self.base)
            .saturating_add(self.sectors.get(s).map_or(0, |i| i.end));
        let pos = self.last_pos.saturating_add(1);
        let mut h = [0xffu8; HEADER];
        h[0..4].copy_from_slice(&(record.len() as u32).to_le_bytes());
        h[4..12].copy_from_slice(&pos.to_le_bytes());
        h[12..20].copy_from_slice(&made_ms.unwrap_or(NO_DATE).to_le_bytes());
        h[20..52].copy_from_slice(&id.0);
        let c = check(&h[..52]);
        h[52..56].copy_from_slice(&c);
        // From here the sector is programmed: a failure closes it.
        if let Some(i) = self.sectors.get_mut(s) {
            i.dirty = true;
        }
        let written = (|| {
            self.write(at, &h[..56])?;
            let data_at = self.base.saturating_add(at).saturating_add(HEADER as u32);
            write_words(&mut self.flash, data_at, record)?;
            self.write(at.saturating_add(56), &VALID.to_le_bytes())
        })();
        if let Err(e) = written {
            if let Some(i) = self.sectors.get_mut(s) {
                i.end = self.sector_size;
            }
            return Err(AppendError::Failed(e));
        }
        if let Some(i) = self.sectors.get_mut(s) {
            i.end = i.end.saturating_add(need);
            i.live = i.live.saturating_add(1);
        }
        self.last_pos = pos;
        // Positions only grow: the new entry goes last.
        let _ = self.index.push(Slot {
            pos,
            at,
            len: record.len() as u32,
        });
        Ok(pos)
    }

    fn next(&mut self, after: Option<u64>) -> Result<Option<Entry>, Error> {
        let i = after.map_or(0, |a| self.index.partition_point(|s| s.pos <= a));
        let Some(slot) = self.index.get(i).copied() else {
            return Ok(None);
        };
        let mut h = [0u8; HEADER];
        self.flash
            .read(self.base.saturating_add(slot.at), &mut h)
            .map_err(flash)?;
        let e = parse(&h).ok_or(Error::NoSuchEntry)?;
        Ok(Some(Entry {
            pos: slot.pos,
            id: e.id,
            len: slot.len as usize,
            made_ms: e.made_ms,
        }))
    }

    fn read(&mut self, pos: u64, buf: &mut [u8]) -> Result<usize, Error> {
        let (_, slot) = self.slot(pos)?;
        let len = slot.len as usize;
        let dst = buf.get_mut(..len).ok_or(Error::BufferTooSmall)?;
        let from = self
            .base
            .saturating_add(slot.at)
            .saturating_add(HEADER as u32);
        self.flash.read(from, dst).map_err(flash)?;
        Ok(len)
    }

    fn remove(&mut self, pos: u64) -> Result<(), Error> {
        let (i, slot) = self.slot(pos)?;
        self.write(slot.at.saturating_add(60), &[0; 4])?;
        self.index.remove(i);
        let s = (slot.at / self.sector_size) as usize;
        if let Some(info) = self.sectors.get_mut(s) {
            info.live = info.live.saturating_sub(1);
        }
        Ok(())
    }

    /// No room to keep it aside on a device: dropped (the log says so).
    fn quarantine(&mut self, pos: u64, _: &str) -> Result<(), Error> {
        self.remove(pos)
    }
}

#[cfg(test)]
mod tests;
