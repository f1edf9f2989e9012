//! A small value kept across power cuts in two erase sectors (the device's
//! credentials with the cloud). Each copy is a header (magic, sequence,
//! length, check) and the bytes; a store erases and writes the sector not
//! holding the newest copy, so a cut at any moment leaves the old copy or
//! the new one whole, and a load takes the newest whole one.

use embedded_storage::nor_flash::NorFlash;
use sha2::{Digest, Sha256};

use crate::{Error, write_words};

/// "DCI1".
const MAGIC: u32 = 0x3149_4344;
const HEAD: usize = 16;

fn check(seq: u32, bytes: &[u8]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(seq.to_le_bytes());
    h.update((bytes.len() as u32).to_le_bytes());
    h.update(bytes);
    let d = h.finalize();
    let mut c = [0u8; 4];
    c.copy_from_slice(d.get(..4).unwrap_or(&[0; 4]));
    c
}

/// The newest whole copy in the two sectors from `base`: its sequence and
/// length, its bytes at the start of `buf`; `None` when there is none.
pub fn load<F: NorFlash>(
    flash: &mut F,
    base: u32,
    buf: &mut [u8],
) -> Result<Option<(u32, usize)>, Error> {
    let mut best: Option<(u32, u32)> = None;
    for copy in 0..2u32 {
        let at = base.saturating_add(copy.saturating_mul(F::ERASE_SIZE as u32));
        if let Some((seq, _)) = whole(flash, at, buf)?
            && best.is_none_or(|(s, _)| seq > s)
        {
            best = Some((seq, at));
        }
    }
    match best {
        // Read the newest again: `buf` holds the last one checked.
        Some((_, at)) => whole(flash, at, buf),
        None => Ok(None),
    }
}

/// The copy at `at` if it is whole: its sequence and length, its bytes
/// into `buf`.
fn whole<F: NorFlash>(
    flash: &mut F,
    at: u32,
    buf: &mut [u8],
) -> Result<Option<(u32, usize)>, Error> {
    let mut h = [0u8; HEAD];
    flash.read(at, &mut h).map_err(crate::flash)?;
    let magic = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
    let seq = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
    let len = u32::from_le_bytes([h[8], h[9], h[10], h[11]]) as usize;
    if magic != MAGIC || len > F::ERASE_SIZE - HEAD {
        return Ok(None);
    }
    let Some(dst) = buf.get_mut(..len) else {
        return Ok(None);
    };
    flash
        .read(at.saturating_add(HEAD as u32), dst)
        .map_err(crate::flash)?;
    Ok((h[12..16] == check(seq, dst)).then_some((seq, len)))
}

/// Stores `bytes` as the newest copy (sequence `seq`, one more than the
/// loaded one, 1 when none was), in the sector that does not hold the
/// loaded copy.
pub fn store<F: NorFlash>(flash: &mut F, base: u32, seq: u32, bytes: &[u8]) -> Result<(), Error> {
    if bytes.len() > F::ERASE_SIZE - HEAD
        || F::WRITE_SIZE == 0
        || !4usize.is_multiple_of(F::WRITE_SIZE)
    {
        return Err(Error::TooLarge { bytes: bytes.len() });
    }
    let at = base.saturating_add((seq % 2).saturating_mul(F::ERASE_SIZE as u32));
    flash
        .erase(at, at.saturating_add(F::ERASE_SIZE as u32))
        .map_err(crate::flash)?;
    write_words(flash, at.saturating_add(HEAD as u32), bytes)?;
    // The header last: until it is whole, this copy does not exist.
    let mut h = [0u8; HEAD];
    h[0..4].copy_from_slice(&MAGIC.to_le_bytes());
    h[4..8].copy_from_slice(&seq.to_le_bytes());
    h[8..12].copy_from_slice(&(bytes.len() as u32).to_le_bytes());
    h[12..16].copy_from_slice(&check(seq, bytes));
    flash.write(at, &h).map_err(crate::flash)
}
