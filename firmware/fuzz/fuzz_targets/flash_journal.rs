//! Arbitrary bytes as the flash the journal and the identity store find at
//! boot (torn writes, bit rot, another program's data): opening and walking
//! them may fail but never panic, every entry found reads back at its
//! length, and the journal still takes a new entry that a reopen finds.
#![no_main]

use dca_core::sync::batch::BatchId;
use dca_core::sync::journal::Journal;
use embedded_storage::nor_flash::{ErrorType, NorFlash, NorFlashErrorKind, ReadNorFlash};
use flash_journal::{FlashJournal, identity};
use libfuzzer_sys::fuzz_target;

const SECTOR: usize = 512;
const SECTORS: usize = 4;

struct Ram(Vec<u8>);

#[derive(Debug)]
struct Bounds;

impl embedded_storage::nor_flash::NorFlashError for Bounds {
    fn kind(&self) -> NorFlashErrorKind {
        NorFlashErrorKind::OutOfBounds
    }
}

impl ErrorType for Ram {
    type Error = Bounds;
}

impl ReadNorFlash for Ram {
    const READ_SIZE: usize = 1;
    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Bounds> {
        let at = offset as usize;
        let src = self.0.get(at..at + bytes.len()).ok_or(Bounds)?;
        bytes.copy_from_slice(src);
        Ok(())
    }
    fn capacity(&self) -> usize {
        self.0.len()
    }
}

impl NorFlash for Ram {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = SECTOR;
    fn erase(&mut self, from: u32, to: u32) -> Result<(), Bounds> {
        self.0
            .get_mut(from as usize..to as usize)
            .ok_or(Bounds)?
            .fill(0xff);
        Ok(())
    }
    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Bounds> {
        let at = offset as usize;
        let dst = self.0.get_mut(at..at + bytes.len()).ok_or(Bounds)?;
        for (d, b) in dst.iter_mut().zip(bytes) {
            *d &= *b;
        }
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let mut mem = data.to_vec();
    mem.resize(SECTOR * SECTORS, 0xff);
    mem.truncate(SECTOR * SECTORS);

    let mut buf = vec![0u8; SECTOR];
    let mut flash = Ram(mem.clone());
    if let Ok(Some((_, len))) = identity::load(&mut flash, 0, &mut buf) {
        assert!(len <= SECTOR);
    }

    let Ok(mut j) = FlashJournal::open(Ram(mem), 0, SECTORS) else {
        return;
    };
    let mut after = None;
    let mut last = 0;
    // Bounded by the index's size.
    while let Ok(Some(e)) = j.next(after) {
        assert!(e.pos > last);
        last = e.pos;
        let n = j.read(e.pos, &mut buf).expect("an entry found reads");
        assert_eq!(n, e.len);
        after = Some(e.pos);
    }
    // Make room the way the session does (oldest first), then append.
    let record = [0x81, 0xa0];
    let id = BatchId([7; 32]);
    let mut pos = j.append(&id, None, &record);
    for _ in 0..flash_journal::MAX_ENTRIES {
        if pos.is_ok() {
            break;
        }
        let Ok(Some(oldest)) = j.next(None) else {
            break;
        };
        if j.remove(oldest.pos).is_err() {
            break;
        }
        pos = j.append(&id, None, &record);
    }
    if let Ok(pos) = pos {
        assert!(pos > last);
        let mut j = FlashJournal::open(j.into_flash(), 0, SECTORS).expect("reopens");
        let n = j.read(pos, &mut buf).expect("the new entry is there");
        assert_eq!(buf.get(..n), Some(&record[..]));
    }
});
