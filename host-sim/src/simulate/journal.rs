//! The agent's journal on the simulated disk, with the durability protocol
//! of a real file journal: each batch is written to a temporary file, the
//! file is synced, renamed to its final name, and the directory is synced;
//! only then is the append durable. After a crash the journal is rebuilt
//! from what the disk listing durably holds, and temporary files are
//! removed. Skipping any step is a bug a crash can show, and
//! [`Plant::SkipDirFsync`] plants one on purpose.
//!
//! Files: `<pos>.rec` (a journaled batch), `<pos>.tmp` (an append under
//! way), `<pos>.q` (quarantined). A record file is a 48-byte header (magic,
//! time made, batch id, record length) and the record.

use super::disk::{DiskError, SimDisk};
use dca_core::sync::batch::BatchId;
use dca_core::sync::journal::{AppendError, Entry, Journal};
use std::collections::BTreeMap;

const MAGIC: &[u8; 4] = b"DCJ1";
const HEADER: usize = 48;

/// A bug planted on purpose, to show the simulator catches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plant {
    /// The journal does not sync the directory after the rename, so an
    /// acknowledged append is not durable.
    SkipDirFsync,
}

impl Plant {
    pub fn parse(s: &str) -> Option<Plant> {
        match s {
            "skip-dir-fsync" => Some(Plant::SkipDirFsync),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Plant::SkipDirFsync => "skip-dir-fsync",
        }
    }
}

/// What the journal did that the invariants want to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    Removed(BatchId),
    Quarantined(BatchId, String),
}

/// Core's [`Journal`] over a [`SimDisk`].
#[derive(Debug)]
pub struct SimJournal {
    disk: SimDisk,
    /// Entries on disk, as this process knows them.
    index: BTreeMap<u64, Entry>,
    /// Entries the disk refused, held in memory ([`Journal::hold_in_memory`]).
    memory: BTreeMap<u64, (Entry, Vec<u8>)>,
    next_pos: u64,
    plant: Option<Plant>,
    notes: Vec<Note>,
}

fn name(pos: u64, ext: &str) -> String {
    format!("{pos:016}.{ext}")
}

fn parse_name(n: &str) -> Option<(u64, &str)> {
    let (pos, ext) = n.split_once('.')?;
    Some((pos.parse().ok()?, ext))
}

fn header(id: &BatchId, made_ms: Option<u64>, len: usize) -> [u8; HEADER] {
    let mut h = [0u8; HEADER];
    h[..4].copy_from_slice(MAGIC);
    h[4..12].copy_from_slice(&made_ms.unwrap_or(u64::MAX).to_le_bytes());
    h[12..44].copy_from_slice(&id.0);
    h[44..48].copy_from_slice(&(len as u32).to_le_bytes());
    h
}

/// The entry a record file holds; `None` when its header is torn.
fn parse_file(pos: u64, bytes: &[u8]) -> Option<Entry> {
    if bytes.len() < HEADER || &bytes[..4] != MAGIC {
        return None;
    }
    let made = u64::from_le_bytes(bytes[4..12].try_into().ok()?);
    let mut id = [0u8; 32];
    id.copy_from_slice(&bytes[12..44]);
    Some(Entry {
        pos,
        id: BatchId(id),
        // What is there: a torn record reads short, and the session
        // quarantines it when its digest does not match.
        len: bytes.len() - HEADER,
        made_ms: (made != u64::MAX).then_some(made),
    })
}

impl SimJournal {
    /// Opens the journal on `disk` after a start or a crash: temporary files
    /// are removed, record files listed. Fails when the disk does (and
    /// gives the disk back).
    pub fn open(
        mut disk: SimDisk,
        plant: Option<Plant>,
    ) -> Result<SimJournal, Box<(SimDisk, DiskError)>> {
        disk.set_context("open");
        let mut index = BTreeMap::new();
        let mut next_pos = 1;
        let mut cleaned = false;
        for n in disk.list() {
            let Some((pos, ext)) = parse_name(&n) else {
                continue;
            };
            next_pos = next_pos.max(pos + 1);
            let result = match ext {
                "tmp" => {
                    cleaned = true;
                    disk.unlink(&n)
                }
                "rec" => match disk.read(&n).map(|b| parse_file(pos, b)) {
                    Ok(Some(e)) => {
                        index.insert(pos, e);
                        Ok(())
                    }
                    // A header torn by a crash: nothing to deliver.
                    Ok(None) => {
                        cleaned = true;
                        disk.unlink(&n)
                    }
                    Err(e) => Err(e),
                },
                _ => Ok(()),
            };
            if let Err(e) = result {
                return Err(Box::new((disk, e)));
            }
        }
        if cleaned && let Err(e) = disk.fsync_dir() {
            return Err(Box::new((disk, e)));
        }
        Ok(SimJournal {
            disk,
            index,
            memory: BTreeMap::new(),
            next_pos,
            plant,
            notes: Vec::new(),
        })
    }

    pub fn disk(&mut self) -> &mut SimDisk {
        &mut self.disk
    }

    /// The disk, when the process ends (its memory is lost).
    pub fn into_disk(self) -> SimDisk {
        self.disk
    }

    pub fn take_notes(&mut self) -> Vec<Note> {
        std::mem::take(&mut self.notes)
    }

    /// Every batch the journal holds, on disk or in memory.
    pub fn batches(&self) -> impl Iterator<Item = (BatchId, bool)> + '_ {
        self.index
            .values()
            .map(|e| (e.id, true))
            .chain(self.memory.values().map(|(e, _)| (e.id, false)))
    }

    /// The batches from the start of the journal through `id`, in order
    /// (empty when `id` is not in it).
    pub fn through(&self, id: &BatchId) -> Vec<BatchId> {
        let mut all: Vec<(u64, BatchId)> = self
            .index
            .values()
            .map(|e| (e.pos, e.id))
            .chain(self.memory.values().map(|(e, _)| (e.pos, e.id)))
            .collect();
        all.sort_unstable_by_key(|(pos, _)| *pos);
        match all.iter().position(|(_, b)| b == id) {
            Some(i) => all[..=i].iter().map(|(_, b)| *b).collect(),
            None => Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.index.len() + self.memory.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Starts journal operation `op` (a step a crash can hit).
    fn begin(&mut self, op: &'static str) -> Result<(), DiskError> {
        self.disk.set_context(op);
        if self.disk.tick(op) {
            Ok(())
        } else {
            Err(DiskError::Dead)
        }
    }

    fn try_append(
        &mut self,
        pos: u64,
        id: &BatchId,
        made_ms: Option<u64>,
        record: &[u8],
    ) -> Result<(), DiskError> {
        let (tmp, rec) = (name(pos, "tmp"), name(pos, "rec"));
        self.disk.create(&tmp)?;
        let mut bytes = Vec::with_capacity(HEADER + record.len());
        bytes.extend_from_slice(&header(id, made_ms, record.len()));
        bytes.extend_from_slice(record);
        let done = self
            .disk
            .append(&tmp, &bytes)
            .and_then(|()| self.disk.fsync(&tmp))
            .and_then(|()| self.disk.rename(&tmp, &rec));
        if let Err(e) = done {
            let _ = self.disk.unlink(&tmp);
            return Err(e);
        }
        if self.plant != Some(Plant::SkipDirFsync)
            && let Err(e) = self.disk.fsync_dir()
        {
            // Not known to be durable: take it back rather than leave a
            // second copy behind the one the session will hold in memory.
            // If even that fails, the record is in the directory, and the
            // journal says so (the batch is then held twice, which costs a
            // duplicate upload and nothing else).
            if self.disk.unlink(&rec).is_err() {
                self.hold(pos, id, made_ms, record.len());
            }
            return Err(e);
        }
        Ok(())
    }
}

impl SimJournal {
    /// Indexes a record written at `pos`, the last position handed out.
    fn hold(&mut self, pos: u64, id: &BatchId, made_ms: Option<u64>, len: usize) {
        self.next_pos = pos + 1;
        self.index.insert(
            pos,
            Entry {
                pos,
                id: *id,
                len,
                made_ms,
            },
        );
    }
}

impl Journal for SimJournal {
    type Error = DiskError;

    fn append(
        &mut self,
        id: &BatchId,
        made_ms: Option<u64>,
        record: &[u8],
    ) -> Result<u64, AppendError<DiskError>> {
        self.begin("append").map_err(AppendError::Failed)?;
        let pos = self.next_pos;
        match self.try_append(pos, id, made_ms, record) {
            Ok(()) => {
                self.hold(pos, id, made_ms, record.len());
                Ok(pos)
            }
            Err(DiskError::NoSpace) => Err(AppendError::Full),
            Err(e) => Err(AppendError::Failed(e)),
        }
    }

    fn hold_in_memory(&mut self, id: &BatchId, made_ms: Option<u64>, record: &[u8]) -> Option<u64> {
        let pos = self.next_pos;
        self.next_pos += 1;
        let entry = Entry {
            pos,
            id: *id,
            len: record.len(),
            made_ms,
        };
        self.memory.insert(pos, (entry, record.to_vec()));
        Some(pos)
    }

    fn next(&mut self, after: Option<u64>) -> Result<Option<Entry>, DiskError> {
        self.begin("next")?;
        let from = after.map_or(0, |a| a.saturating_add(1));
        let disk = self.index.range(from..).next().map(|(_, e)| *e);
        let mem = self.memory.range(from..).next().map(|(_, (e, _))| *e);
        Ok(match (disk, mem) {
            (Some(d), Some(m)) => Some(if d.pos < m.pos { d } else { m }),
            (d, m) => d.or(m),
        })
    }

    fn read(&mut self, pos: u64, buf: &mut [u8]) -> Result<usize, DiskError> {
        self.begin("read")?;
        let bytes: &[u8] = if let Some((_, r)) = self.memory.get(&pos) {
            r
        } else if self.index.contains_key(&pos) {
            let file = self.disk.read(&name(pos, "rec"))?;
            file.get(HEADER..).unwrap_or(&[])
        } else {
            return Err(DiskError::NotFound);
        };
        let dst = buf.get_mut(..bytes.len()).ok_or(DiskError::Io)?;
        dst.copy_from_slice(bytes);
        Ok(bytes.len())
    }

    fn remove(&mut self, pos: u64) -> Result<(), DiskError> {
        self.begin("remove")?;
        if let Some((e, _)) = self.memory.remove(&pos) {
            self.notes.push(Note::Removed(e.id));
            return Ok(());
        }
        let Some(e) = self.index.get(&pos).copied() else {
            return Err(DiskError::NotFound);
        };
        // A removal need not be durable: a record that comes back after a
        // crash is delivered already, and the session drops it again.
        self.disk.unlink(&name(pos, "rec"))?;
        self.index.remove(&pos);
        self.notes.push(Note::Removed(e.id));
        Ok(())
    }

    fn quarantine(&mut self, pos: u64, reason: &str) -> Result<(), DiskError> {
        self.begin("quarantine")?;
        if let Some((e, _)) = self.memory.remove(&pos) {
            self.notes.push(Note::Quarantined(e.id, reason.to_string()));
            return Ok(());
        }
        let Some(e) = self.index.get(&pos).copied() else {
            return Err(DiskError::NotFound);
        };
        self.disk.rename(&name(pos, "rec"), &name(pos, "q"))?;
        self.disk.fsync_dir()?;
        self.index.remove(&pos);
        self.notes.push(Note::Quarantined(e.id, reason.to_string()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(disk: SimDisk, plant: Option<Plant>) -> SimJournal {
        SimJournal::open(disk, plant).map_err(|b| b.1).unwrap()
    }

    #[test]
    fn durable_appends_survive_every_crash() {
        for seed in 0..100 {
            let mut j = open(SimDisk::new(1 << 20, seed), None);
            let id = BatchId([seed as u8; 32]);
            let pos = j.append(&id, Some(5), b"\x80").unwrap();
            j.disk().arm_crash(seed % 7, None);
            let second = j.append(&BatchId([1; 32]), None, b"\x80");
            let mut disk = j.into_disk();
            disk.crash();
            let mut j = open(disk, None);
            let first = j.next(None).unwrap().unwrap();
            assert_eq!((first.pos, first.id, first.made_ms), (pos, id, Some(5)));
            let mut buf = [0u8; 8];
            assert_eq!(j.read(pos, &mut buf).unwrap(), 1);
            if second.is_ok() {
                assert!(j.next(Some(pos)).unwrap().is_some(), "seed {seed}");
            }
        }
    }

    #[test]
    fn the_planted_bug_loses_acknowledged_appends() {
        let lost = (0..50).any(|seed| {
            let mut j = open(SimDisk::new(1 << 20, seed), Some(Plant::SkipDirFsync));
            j.append(&BatchId([2; 32]), None, b"\x80").unwrap();
            let mut disk = j.into_disk();
            disk.crash();
            open(disk, None).is_empty()
        });
        assert!(lost);
    }
}
