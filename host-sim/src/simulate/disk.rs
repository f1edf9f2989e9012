//! A simulated disk with the durability rules of a POSIX file system, as
//! strict as the worst real one allows:
//! - a file's contents survive a crash only as far as its last `fsync`
//!   (writes after it may survive in part: a torn tail);
//! - names (create, rename, unlink) survive only as far as the last `fsync`
//!   of the directory (operations after it may survive in part, in order);
//! - writes fail with ENOSPC once the disk is full, and any operation fails
//!   with EIO while the disk is failing.
//!
//! It also carries the agent's crash fuse: every operation counts, and the
//! operation a crash is set for fails, as does everything after it, until
//! the owner crashes the disk (the process died at that step).

use crate::generate::Rng;
use std::collections::BTreeMap;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskError {
    /// No space left on the device.
    NoSpace,
    /// An I/O error.
    Io,
    /// No such file.
    NotFound,
    /// The process died at this operation (the crash fuse blew).
    Dead,
}

impl fmt::Display for DiskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DiskError::NoSpace => "no space left on device (ENOSPC)",
            DiskError::Io => "input/output error (EIO)",
            DiskError::NotFound => "no such file (ENOENT)",
            DiskError::Dead => "the process died",
        })
    }
}

impl std::error::Error for DiskError {}

#[derive(Debug, Clone)]
struct Inode {
    data: Vec<u8>,
    /// The contents as of the last successful fsync.
    synced: Vec<u8>,
}

#[derive(Debug, Clone)]
enum DirOp {
    Link(String, u64),
    Unlink(String),
}

/// What a crash did to the disk, for the trace.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CrashLoss {
    /// Directory operations since the last directory fsync that were lost.
    pub dir_ops_lost: usize,
    /// Files whose unsynced writes were lost or torn.
    pub files_torn: usize,
}

/// One agent's disk (one flat directory).
#[derive(Debug)]
pub struct SimDisk {
    inodes: BTreeMap<u64, Inode>,
    dir: BTreeMap<String, u64>,
    durable_dir: BTreeMap<String, u64>,
    /// Directory operations since the last directory fsync, in order.
    log: Vec<DirOp>,
    next_inode: u64,
    /// Bytes the disk holds at most.
    capacity: u64,
    /// The capacity when no fault applies.
    normal_capacity: u64,
    /// Probability that an operation fails with EIO (a failing disk).
    io_errors: f64,
    rng: Rng,
    ops: u64,
    /// A crash set: operations left before it, counting only those of one
    /// context when it names one.
    fuse: Option<(u64, Option<&'static str>)>,
    dead: bool,
    /// What the process is doing (the journal names its operations).
    context: &'static str,
    /// Where the process died: (context, operation).
    died: Option<(&'static str, &'static str)>,
}

impl SimDisk {
    pub fn new(capacity: u64, seed: u64) -> Self {
        SimDisk {
            inodes: BTreeMap::new(),
            dir: BTreeMap::new(),
            durable_dir: BTreeMap::new(),
            log: Vec::new(),
            next_inode: 1,
            capacity,
            normal_capacity: capacity,
            io_errors: 0.0,
            rng: Rng::new(seed),
            ops: 0,
            fuse: None,
            dead: false,
            context: "session",
            died: None,
        }
    }

    /// Counts one operation `op` of the process; false once it is dead
    /// (the fuse blew here or earlier).
    pub fn tick(&mut self, op: &'static str) -> bool {
        if self.dead {
            return false;
        }
        self.ops += 1;
        if let Some((left, only)) = &mut self.fuse
            && only.is_none_or(|c| c == self.context)
        {
            if *left == 0 {
                self.dead = true;
                self.fuse = None;
                self.died = Some((self.context, op));
                return false;
            }
            *left -= 1;
        }
        true
    }

    /// Names what the process does next (for where a crash hit).
    pub fn set_context(&mut self, context: &'static str) {
        self.context = context;
    }

    /// Where the process died, while it is dead: (context, operation).
    pub fn died(&self) -> Option<(&'static str, &'static str)> {
        self.died
    }

    /// Arms a crash `after` operations from now (0: at the next one),
    /// counting only operations in `context` when given.
    pub fn arm_crash(&mut self, after: u64, context: Option<&'static str>) {
        self.fuse = Some((after, context));
    }

    pub fn crash_armed(&self) -> bool {
        self.fuse.is_some()
    }

    /// Kills the process now, between two operations.
    pub fn kill(&mut self) {
        self.dead = true;
        self.fuse = None;
        self.died = Some(("idle", "between steps"));
    }

    pub fn is_dead(&self) -> bool {
        self.dead
    }

    pub fn ops(&self) -> u64 {
        self.ops
    }

    /// Fills the disk: only `slack` bytes more fit.
    pub fn fill(&mut self, slack: u64) {
        self.capacity = self.used() + slack;
    }

    pub fn set_io_errors(&mut self, p: f64) {
        self.io_errors = p;
    }

    /// The space back to normal.
    pub fn unfill(&mut self) {
        self.capacity = self.normal_capacity;
    }

    /// Bytes held by files that have a name.
    pub fn used(&self) -> u64 {
        let mut seen = std::collections::BTreeSet::new();
        self.dir
            .values()
            .filter(|i| seen.insert(**i))
            .filter_map(|i| self.inodes.get(i))
            .map(|n| n.data.len() as u64)
            .sum()
    }

    fn begin(&mut self, op: &'static str) -> Result<(), DiskError> {
        if !self.tick(op) {
            return Err(DiskError::Dead);
        }
        if self.io_errors > 0.0 && self.rng.chance(self.io_errors) {
            return Err(DiskError::Io);
        }
        Ok(())
    }

    /// Creates an empty file (replacing any of that name).
    pub fn create(&mut self, name: &str) -> Result<(), DiskError> {
        self.begin("create")?;
        let ino = self.next_inode;
        self.next_inode += 1;
        self.inodes.insert(
            ino,
            Inode {
                data: Vec::new(),
                synced: Vec::new(),
            },
        );
        self.dir.insert(name.to_string(), ino);
        self.log.push(DirOp::Link(name.to_string(), ino));
        Ok(())
    }

    /// Appends to a file. On ENOSPC or EIO part of the data may have been
    /// written.
    pub fn append(&mut self, name: &str, bytes: &[u8]) -> Result<(), DiskError> {
        self.begin("write")?;
        let used = self.used();
        let ino = *self.dir.get(name).ok_or(DiskError::NotFound)?;
        let free = self.capacity.saturating_sub(used) as usize;
        let inode = self.inodes.get_mut(&ino).ok_or(DiskError::NotFound)?;
        if bytes.len() > free {
            inode.data.extend_from_slice(&bytes[..free]);
            return Err(DiskError::NoSpace);
        }
        inode.data.extend_from_slice(bytes);
        Ok(())
    }

    /// Makes a file's contents durable.
    pub fn fsync(&mut self, name: &str) -> Result<(), DiskError> {
        self.begin("fsync")?;
        let ino = *self.dir.get(name).ok_or(DiskError::NotFound)?;
        let inode = self.inodes.get_mut(&ino).ok_or(DiskError::NotFound)?;
        inode.synced.clone_from(&inode.data);
        Ok(())
    }

    /// Renames `from` to `to`, replacing `to`.
    pub fn rename(&mut self, from: &str, to: &str) -> Result<(), DiskError> {
        self.begin("rename")?;
        let ino = self.dir.remove(from).ok_or(DiskError::NotFound)?;
        self.dir.insert(to.to_string(), ino);
        self.log.push(DirOp::Link(to.to_string(), ino));
        self.log.push(DirOp::Unlink(from.to_string()));
        Ok(())
    }

    pub fn unlink(&mut self, name: &str) -> Result<(), DiskError> {
        self.begin("unlink")?;
        self.dir.remove(name).ok_or(DiskError::NotFound)?;
        self.log.push(DirOp::Unlink(name.to_string()));
        Ok(())
    }

    /// Makes the directory's names durable.
    pub fn fsync_dir(&mut self) -> Result<(), DiskError> {
        self.begin("fsync dir")?;
        self.durable_dir.clone_from(&self.dir);
        self.log.clear();
        // Files without a name that no crash can bring back are gone.
        let live: std::collections::BTreeSet<u64> = self.dir.values().copied().collect();
        self.inodes.retain(|ino, _| live.contains(ino));
        Ok(())
    }

    pub fn read(&mut self, name: &str) -> Result<&[u8], DiskError> {
        self.begin("read")?;
        let ino = *self.dir.get(name).ok_or(DiskError::NotFound)?;
        self.inodes
            .get(&ino)
            .map(|n| n.data.as_slice())
            .ok_or(DiskError::NotFound)
    }

    /// The names in the directory, in order (not an operation that fails:
    /// the journal lists it once, when it opens).
    pub fn list(&self) -> Vec<String> {
        self.dir.keys().cloned().collect()
    }

    /// A power cut: names fall back to the last directory fsync plus some
    /// prefix of the operations after it; contents to the last fsync plus
    /// possibly a torn part of what was appended since. The process is
    /// alive again afterwards (a new one, on the same disk).
    pub fn crash(&mut self) -> CrashLoss {
        let mut loss = CrashLoss::default();
        // Half the time nothing after the last directory fsync survives.
        let keep = if self.log.is_empty() || self.rng.chance(0.5) {
            0
        } else {
            self.rng.range(0, self.log.len() as u64 + 1) as usize
        };
        loss.dir_ops_lost = self.log.len() - keep;
        let mut dir = std::mem::take(&mut self.durable_dir);
        for op in self.log.drain(..keep) {
            match op {
                DirOp::Link(name, ino) => {
                    dir.insert(name, ino);
                }
                DirOp::Unlink(name) => {
                    dir.remove(&name);
                }
            }
        }
        self.log.clear();
        self.dir = dir.clone();
        self.durable_dir = dir;
        let live: std::collections::BTreeSet<u64> = self.dir.values().copied().collect();
        self.inodes.retain(|ino, _| live.contains(ino));
        for inode in self.inodes.values_mut() {
            if inode.data == inode.synced {
                continue;
            }
            loss.files_torn += 1;
            let extends = inode.data.starts_with(&inode.synced);
            let keep = if extends && self.rng.chance(0.5) {
                self.rng
                    .range(inode.synced.len() as u64, inode.data.len() as u64 + 1)
                    as usize
            } else {
                inode.synced.len()
            };
            if extends {
                inode.data.truncate(keep);
            } else {
                inode.data.clone_from(&inode.synced);
            }
            inode.synced.clone_from(&inode.data);
        }
        self.dead = false;
        self.fuse = None;
        self.died = None;
        self.context = "session";
        loss
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_synced_names_and_contents_survive() {
        for seed in 0..50 {
            let mut d = SimDisk::new(1 << 20, seed);
            d.create("a.tmp").unwrap();
            d.append("a.tmp", b"hello").unwrap();
            d.fsync("a.tmp").unwrap();
            d.rename("a.tmp", "a").unwrap();
            d.fsync_dir().unwrap();
            d.create("b.tmp").unwrap();
            d.append("b.tmp", b"world").unwrap();
            d.fsync("b.tmp").unwrap();
            d.rename("b.tmp", "b").unwrap();
            d.append("a", b" again").unwrap();
            d.crash();
            let names = d.list();
            assert!(names.contains(&"a".to_string()), "{names:?}");
            let a = d.read("a").unwrap().to_vec();
            assert!(a.starts_with(b"hello") && b"hello again".starts_with(&a[..]));
            if names.contains(&"b".to_string()) {
                assert_eq!(d.read("b").unwrap(), b"world");
            }
        }
        // Some seed loses the unsynced rename.
        assert!((0..50).any(|seed| {
            let mut d = SimDisk::new(1 << 20, seed);
            d.create("b").unwrap();
            d.crash();
            d.list().is_empty()
        }));
    }

    #[test]
    fn full_disk_and_fuse() {
        let mut d = SimDisk::new(1 << 20, 1);
        d.create("x").unwrap();
        d.fill(3);
        assert_eq!(d.append("x", b"12345"), Err(DiskError::NoSpace));
        d.unfill();
        d.arm_crash(1, None);
        assert!(d.append("x", b"ok").is_ok());
        assert_eq!(d.fsync("x"), Err(DiskError::Dead));
        assert_eq!(d.died(), Some(("session", "fsync")));
        assert_eq!(d.fsync("x"), Err(DiskError::Dead));
        d.crash();
        assert!(d.fsync("x").is_ok());
    }
}
