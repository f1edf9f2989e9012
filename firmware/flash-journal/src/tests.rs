//! The journal and the identity store on a model of NOR flash that only
//! clears bits between erases and can lose power in the middle of any write
//! or erase (leaving part of it done), then is opened again as after a
//! reboot.

extern crate std;

use super::*;
use embedded_storage::nor_flash::{ErrorType, NorFlashError, ReadNorFlash};
use std::collections::BTreeMap;
use std::string::ToString;
use std::vec::Vec as StdVec;

const SECTOR: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ModelError {
    PowerCut,
    Misaligned,
    /// A write that would set a cleared bit: NOR cannot.
    NotErased,
}

impl NorFlashError for ModelError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            ModelError::Misaligned => NorFlashErrorKind::NotAligned,
            _ => NorFlashErrorKind::Other,
        }
    }
}

/// NOR flash in memory. `ops_left`: writes and erases until the power goes;
/// the one that meets the cut does the first `torn` bytes of its work.
struct Nor {
    mem: StdVec<u8>,
    ops_left: Option<usize>,
    torn: usize,
    erases: StdVec<usize>,
}

impl Nor {
    fn new(sectors: usize) -> Nor {
        Nor {
            mem: std::vec![0xff; sectors * SECTOR],
            ops_left: None,
            torn: 0,
            erases: std::vec![0; sectors],
        }
    }

    /// False when the power is gone (after doing `torn` bytes of this op).
    fn power(&mut self) -> bool {
        match &mut self.ops_left {
            None => true,
            Some(0) => false,
            Some(n) => {
                *n -= 1;
                *n > 0
            }
        }
    }
}

impl ErrorType for Nor {
    type Error = ModelError;
}

impl ReadNorFlash for Nor {
    const READ_SIZE: usize = 1;
    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), ModelError> {
        let at = offset as usize;
        bytes.copy_from_slice(&self.mem[at..at + bytes.len()]);
        Ok(())
    }
    fn capacity(&self) -> usize {
        self.mem.len()
    }
}

impl NorFlash for Nor {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = SECTOR;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), ModelError> {
        let (from, to) = (from as usize, to as usize);
        if !from.is_multiple_of(SECTOR) || !to.is_multiple_of(SECTOR) {
            return Err(ModelError::Misaligned);
        }
        let whole = self.power();
        let end = if whole {
            to
        } else {
            (from + self.torn).min(to)
        };
        self.mem[from..end].fill(0xff);
        for s in from / SECTOR..to / SECTOR {
            self.erases[s] += 1;
        }
        if whole {
            Ok(())
        } else {
            Err(ModelError::PowerCut)
        }
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), ModelError> {
        let at = offset as usize;
        if !at.is_multiple_of(4) || !bytes.len().is_multiple_of(4) {
            return Err(ModelError::Misaligned);
        }
        let whole = self.power();
        let n = if whole {
            bytes.len()
        } else {
            self.torn.min(bytes.len())
        };
        for (i, b) in bytes[..n].iter().enumerate() {
            let cell = &mut self.mem[at + i];
            if *b & !*cell != 0 {
                return Err(ModelError::NotErased);
            }
            *cell &= *b;
        }
        if whole {
            Ok(())
        } else {
            Err(ModelError::PowerCut)
        }
    }
}

fn record(tag: u64, len: usize) -> StdVec<u8> {
    (0..len)
        .map(|i| (tag as usize * 31 + i * 7) as u8)
        .collect()
}

fn id(tag: u64) -> BatchId {
    let mut b = [0u8; 32];
    b[..8].copy_from_slice(&tag.to_le_bytes());
    BatchId(b)
}

/// Every live entry: position -> (id, made, record).
fn contents(j: &mut FlashJournal<Nor>) -> BTreeMap<u64, (BatchId, Option<u64>, StdVec<u8>)> {
    let mut out = BTreeMap::new();
    let mut after = None;
    while let Some(e) = j.next(after).unwrap() {
        let mut buf = std::vec![0u8; e.len];
        assert_eq!(j.read(e.pos, &mut buf).unwrap(), e.len);
        assert!(out.insert(e.pos, (e.id, e.made_ms, buf)).is_none());
        after = Some(e.pos);
    }
    out
}

#[test]
fn entries_survive_a_reopen_in_order() {
    let mut j = FlashJournal::open(Nor::new(4), 0, 4).unwrap();
    let a = j.append(&id(1), Some(7), &record(1, 100)).unwrap();
    let b = j.append(&id(2), None, &record(2, 3)).unwrap();
    assert!(b > a);
    let mut j = FlashJournal::open(j.into_flash(), 0, 4).unwrap();
    let c = contents(&mut j);
    assert_eq!(c.len(), 2);
    assert_eq!(c[&a], (id(1), Some(7), record(1, 100)));
    assert_eq!(c[&b], (id(2), None, record(2, 3)));
    // New positions follow the old ones.
    assert!(j.append(&id(3), None, &record(3, 8)).unwrap() > b);
}

#[test]
fn the_ring_reuses_sectors_once_their_entries_are_dropped_and_is_full_before() {
    let mut j = FlashJournal::open(Nor::new(3), 0, 3).unwrap();
    let mut held = std::collections::VecDeque::new();
    // Bounded: a few hundred appends through a three-sector ring.
    for tag in 0..300u64 {
        let rec = record(tag, 200 + (tag as usize % 5) * 37);
        match j.append(&id(tag), None, &rec) {
            Ok(pos) => held.push_back((pos, tag, rec)),
            Err(AppendError::Full) => {
                // Full only while the oldest sector holds live entries;
                // dropping the oldest makes room.
                assert!(!held.is_empty());
                let (pos, _, _) = held.pop_front().unwrap();
                j.remove(pos).unwrap();
                continue;
            }
            Err(e) => panic!("{e}"),
        }
        if held.len() > 4 {
            let (pos, _, _) = held.pop_front().unwrap();
            j.remove(pos).unwrap();
        }
    }
    let c = contents(&mut j);
    let expected: BTreeMap<_, _> = held
        .iter()
        .map(|(p, t, r)| (*p, (id(*t), None, r.clone())))
        .collect();
    assert_eq!(c, expected);
    let erases = j.into_flash().erases;
    // Wear spreads over every sector.
    assert!(erases.iter().all(|e| *e > 10), "{erases:?}");
    let (min, max) = (erases.iter().min().unwrap(), erases.iter().max().unwrap());
    assert!(max - min <= 1, "{erases:?}");
}

#[test]
fn a_record_larger_than_a_sector_is_refused_by_name() {
    let mut j = FlashJournal::open(Nor::new(2), 0, 2).unwrap();
    let err = j.append(&id(1), None, &record(1, SECTOR)).unwrap_err();
    assert_eq!(err, AppendError::Failed(Error::TooLarge { bytes: SECTOR }));
    assert!(err.to_string().contains("larger than a flash sector"));
}

#[test]
fn a_layout_it_cannot_use_is_refused() {
    assert!(matches!(
        FlashJournal::open(Nor::new(2), 100, 1),
        Err(Error::Layout)
    ));
    assert!(matches!(
        FlashJournal::open(Nor::new(2), 0, 0),
        Err(Error::Layout)
    ));
}

/// What a run of operations did, as the caller saw it.
#[derive(Default, Clone)]
struct Seen {
    /// Appends that returned, and not dropped since.
    durable: BTreeMap<u64, (BatchId, StdVec<u8>)>,
    /// Every record ever offered (an append cut short may or may not have
    /// happened).
    offered: BTreeMap<BatchId, StdVec<u8>>,
    /// Drops cut short: the entry may or may not be there.
    maybe_gone: BTreeMap<u64, (BatchId, StdVec<u8>)>,
    /// Drops that returned: never to be seen again.
    removed: std::collections::BTreeSet<u64>,
    /// Positions appends returned, in order.
    positions: StdVec<u64>,
}

/// A fixed workload: appends of varied sizes, drops of the oldest, until
/// the power goes (or an operation fails: false) or it ends (true).
fn workload(j: &mut FlashJournal<Nor>, seen: &mut Seen, start: u64) -> bool {
    for tag in start..start + 40 {
        let rec = record(tag, 50 + (tag as usize * 97) % 400);
        seen.offered.insert(id(tag), rec.clone());
        match j.append(&id(tag), Some(tag), &rec) {
            Ok(pos) => {
                seen.durable.insert(pos, (id(tag), rec));
                seen.positions.push(pos);
            }
            Err(AppendError::Full) => {}
            Err(AppendError::Failed(_)) => return false,
        }
        // Drop the oldest entry the journal holds, as the session does
        // (it may be one a cut append left, which the caller never saw).
        if seen.durable.len() > 5 || tag % 3 == 0 {
            let Ok(Some(oldest)) = j.next(None) else {
                continue;
            };
            let pos = oldest.pos;
            match j.remove(pos) {
                Ok(()) => {
                    seen.durable.remove(&pos);
                    seen.maybe_gone.remove(&pos);
                    seen.removed.insert(pos);
                }
                Err(_) => {
                    if let Some(v) = seen.durable.remove(&pos) {
                        seen.maybe_gone.insert(pos, v);
                    }
                    return false;
                }
            }
        }
    }
    true
}

/// The power goes at every write and erase of a workload in turn, part way
/// through it; after each cut the journal opens, holds every append that
/// returned and was not dropped, holds nothing it was not given, and
/// goes on working.
#[test]
fn a_power_cut_at_any_write_or_erase_loses_nothing_that_was_journaled() {
    // The workload's length in operations, without cuts.
    let ops = {
        let mut n = Nor::new(3);
        n.ops_left = Some(usize::MAX);
        let mut j = FlashJournal::open(n, 0, 3).unwrap();
        assert!(workload(&mut j, &mut Seen::default(), 0));
        usize::MAX - j.into_flash().ops_left.unwrap()
    };
    assert!(ops > 60, "{ops}");
    for cut in 1..=ops {
        // Cut writes part way into a header or a record; cut erases leave
        // old bytes after an erased start.
        for torn in [0, 1, 4, 9, 56, 60, 100, 700] {
            let mut nor = Nor::new(3);
            nor.ops_left = Some(cut);
            nor.torn = torn;
            let mut j = FlashJournal::open(nor, 0, 3).unwrap();
            let mut seen = Seen::default();
            workload(&mut j, &mut seen, 0);
            // Reboot.
            let mut nor = j.into_flash();
            nor.ops_left = None;
            let mut j = FlashJournal::open(nor, 0, 3).unwrap();
            let c = contents(&mut j);
            for (pos, (bid, rec)) in &seen.durable {
                let got = c.get(pos);
                assert_eq!(
                    got.map(|(i, _, r)| (i, r)),
                    Some((bid, rec)),
                    "cut {cut}/{ops} torn {torn}: position {pos} lost"
                );
            }
            for (pos, (bid, _, rec)) in &c {
                assert_eq!(
                    seen.offered.get(bid),
                    Some(rec),
                    "cut {cut} torn {torn}: position {pos} holds what was never given"
                );
                assert!(
                    !seen.removed.contains(pos),
                    "cut {cut} torn {torn}: position {pos} was dropped and came back"
                );
            }
            // And it goes on: more work, another reboot, still whole; new
            // positions come after every old one, dropped entries stay
            // dropped, and appends succeed (it is not stuck full).
            let before = c.keys().chain(&seen.positions).max().copied().unwrap_or(0);
            let mut more = Seen {
                positions: StdVec::new(),
                ..seen.clone()
            };
            // With the power back, nothing fails (a write over bytes an
            // interrupted erase left would).
            assert!(
                workload(&mut j, &mut more, 1000),
                "cut {cut} torn {torn}: the journal failed after the reboot"
            );
            assert!(
                more.positions.len() > 5,
                "cut {cut} torn {torn}: only {} appends after the reboot",
                more.positions.len()
            );
            assert!(
                more.positions.iter().all(|p| *p > before),
                "cut {cut} torn {torn}: a position was handed out again"
            );
            let mut j = FlashJournal::open(j.into_flash(), 0, 3).unwrap();
            let c = contents(&mut j);
            for pos in c.keys() {
                assert!(
                    !more.removed.contains(pos),
                    "cut {cut} torn {torn}: {pos} came back"
                );
            }
            for (pos, (bid, rec)) in &more.durable {
                assert_eq!(
                    c.get(pos).map(|(i, _, r)| (i, r)),
                    Some((bid, rec)),
                    "cut {cut} torn {torn}: after more work, position {pos} lost"
                );
            }
        }
    }
}

#[test]
fn the_identity_is_the_newest_whole_copy_across_power_cuts() {
    let base = 0;
    let mut buf = [0u8; 128];
    let mut nor = Nor::new(2);
    assert_eq!(identity::load(&mut nor, base, &mut buf).unwrap(), None);
    identity::store(&mut nor, base, 1, b"Bearer agent-1:secret").unwrap();
    assert_eq!(
        identity::load(&mut nor, base, &mut buf).unwrap(),
        Some((1, 21))
    );
    assert_eq!(&buf[..21], b"Bearer agent-1:secret");
    // A second store cut at every step: the old copy or the new, whole.
    let new = b"Bearer agent-2:another-secret!";
    for cut in 1..=4 {
        for torn in [0, 3, 8, 17] {
            let mut n = Nor {
                mem: nor.mem.clone(),
                ops_left: Some(cut),
                torn,
                erases: std::vec![0; 2],
            };
            let stored = identity::store(&mut n, base, 2, new).is_ok();
            n.ops_left = None;
            let got = identity::load(&mut n, base, &mut buf).unwrap();
            match got {
                Some((2, l)) => assert_eq!(&buf[..l], new),
                Some((1, l)) => {
                    assert!(
                        !stored,
                        "cut {cut} torn {torn}: stored but the old copy loads"
                    );
                    assert_eq!(&buf[..l], b"Bearer agent-1:secret");
                }
                other => panic!("cut {cut} torn {torn}: {other:?}"),
            }
        }
    }
}
