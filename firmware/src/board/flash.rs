//! The board's NOR flash for the journal and the identity. QEMU's
//! mps2-an386 has no flash that outlives the process, so this board keeps
//! each region in a file of the host's, read and written through
//! semihosting, with NOR's rules: a write only clears bits, an erase sets a
//! whole sector to ones. A semihosting write reaches the file before the
//! call returns, so killing QEMU at any moment is a power cut: what the
//! guest wrote is there, what it had not yet written is not. A real board
//! implements the same `embedded-storage` traits over its flash controller.

use cortex_m_semihosting::{nr, syscall};
use embedded_storage::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};

/// A flash sector: what an erase clears.
pub const SECTOR: usize = 4096;
/// Bytes moved through the stack per semihosting call.
const CHUNK: usize = 64;

/// Why the flash failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, defmt::Format)]
pub enum FlashError {
    /// The backing file cannot be opened or made.
    Unavailable,
    /// Outside the region, or not aligned as NOR wants.
    OutOfBounds,
    NotAligned,
    /// The host failed a read or write.
    Io,
}

impl NorFlashError for FlashError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            FlashError::OutOfBounds => NorFlashErrorKind::OutOfBounds,
            FlashError::NotAligned => NorFlashErrorKind::NotAligned,
            _ => NorFlashErrorKind::Other,
        }
    }
}

/// A region of `size` bytes (whole sectors) in host file `name`.
#[derive(Debug)]
pub struct HostFileFlash {
    fd: usize,
    size: usize,
}

impl HostFileFlash {
    /// Opens the file (NUL-terminated name), making it erased at `size`
    /// bytes when it is missing or shorter.
    pub fn open(name: &'static [u8], size: usize) -> Result<Self, FlashError> {
        let len = name.len().saturating_sub(1);
        // SAFETY: SYS_OPEN reads `len` bytes of the NUL-terminated name,
        // which lives for the whole program.
        let mut fd = unsafe { syscall!(OPEN, name.as_ptr(), nr::open::RW_BINARY, len) };
        if fd as isize == -1 {
            // SAFETY: as above; "w+b" creates the file.
            fd = unsafe { syscall!(OPEN, name.as_ptr(), nr::open::RW_TRUNC_BINARY, len) };
        }
        if fd as isize == -1 {
            return Err(FlashError::Unavailable);
        }
        let mut flash = HostFileFlash { fd, size };
        // SAFETY: SYS_FLEN only reads the handle.
        let have = unsafe { syscall!(FLEN, fd) };
        let have = if have as isize == -1 {
            0
        } else {
            have.min(size)
        };
        flash.fill_ones(have, size)?;
        Ok(flash)
    }

    fn seek(&mut self, at: usize) -> Result<(), FlashError> {
        // SAFETY: SYS_SEEK moves the handle's position; 0 is success.
        let r = unsafe { syscall!(SEEK, self.fd, at) };
        if r == 0 { Ok(()) } else { Err(FlashError::Io) }
    }

    fn read_at(&mut self, at: usize, buf: &mut [u8]) -> Result<(), FlashError> {
        self.seek(at)?;
        // SAFETY: SYS_READ writes at most `buf.len()` bytes into `buf` and
        // returns how many it did not.
        let left = unsafe { syscall!(READ, self.fd, buf.as_mut_ptr(), buf.len()) };
        if left == 0 {
            Ok(())
        } else {
            Err(FlashError::Io)
        }
    }

    fn write_at(&mut self, at: usize, bytes: &[u8]) -> Result<(), FlashError> {
        self.seek(at)?;
        // SAFETY: SYS_WRITE reads `bytes.len()` bytes of `bytes` and returns
        // how many it did not write.
        let left = unsafe { syscall!(WRITE, self.fd, bytes.as_ptr(), bytes.len()) };
        if left == 0 {
            Ok(())
        } else {
            Err(FlashError::Io)
        }
    }

    /// Sets `from..to` to ones (erased).
    fn fill_ones(&mut self, from: usize, to: usize) -> Result<(), FlashError> {
        let ones = [0xffu8; CHUNK];
        let mut at = from;
        // Bounded: each pass moves at least one byte.
        while at < to {
            let n = (to - at).min(CHUNK);
            self.write_at(at, ones.get(..n).unwrap_or(&[]))?;
            at += n;
        }
        Ok(())
    }

    fn check(&self, offset: u32, len: usize, align: usize) -> Result<usize, FlashError> {
        let at = offset as usize;
        if at.checked_add(len).is_none_or(|end| end > self.size) {
            return Err(FlashError::OutOfBounds);
        }
        if !at.is_multiple_of(align) || !len.is_multiple_of(align) {
            return Err(FlashError::NotAligned);
        }
        Ok(at)
    }
}

impl ErrorType for HostFileFlash {
    type Error = FlashError;
}

impl ReadNorFlash for HostFileFlash {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), FlashError> {
        let at = self.check(offset, bytes.len(), 1)?;
        self.read_at(at, bytes)
    }

    fn capacity(&self) -> usize {
        self.size
    }
}

impl NorFlash for HostFileFlash {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = SECTOR;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), FlashError> {
        let at = self.check(from, (to.saturating_sub(from)) as usize, SECTOR)?;
        self.fill_ones(at, to as usize)
    }

    /// Programs `bytes`: each bit already cleared stays cleared, as on NOR.
    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), FlashError> {
        let mut at = self.check(offset, bytes.len(), Self::WRITE_SIZE)?;
        for chunk in bytes.chunks(CHUNK) {
            let mut cells = [0u8; CHUNK];
            let cells = cells.get_mut(..chunk.len()).unwrap_or(&mut []);
            self.read_at(at, cells)?;
            for (cell, b) in cells.iter_mut().zip(chunk) {
                *cell &= *b;
            }
            self.write_at(at, cells)?;
            at += chunk.len();
        }
        Ok(())
    }
}
