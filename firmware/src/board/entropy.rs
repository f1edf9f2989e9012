//! The board's random source, for the network stack and for TLS (the
//! ClientHello's random and the ephemeral key: a predictable one makes the
//! session readable).
//!
//! A board implements [`EntropySource`]; the agent draws a 256-bit seed
//! from it at every boot and expands it with ChaCha20, so nonces never
//! repeat across reboots as long as the source does not. Real hardware
//! reads its TRNG here. QEMU's mps2-an386 has none, so this board asks the
//! host: it reads `/dev/urandom` through semihosting (QEMU runs with
//! `-semihosting-config enable=on,target=native`), and says so at boot.

use cortex_m_semihosting::{nr, syscall};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;

/// Why no entropy could be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, defmt::Format)]
pub enum EntropyError {
    /// The source cannot be opened (no semihosting host, or no such file).
    Unavailable,
    /// It ended or failed before giving all that was asked.
    ShortRead,
}

/// A source of unpredictable bytes.
pub trait EntropySource {
    /// Fills `out` entirely, or fails.
    fn fill(&mut self, out: &mut [u8]) -> Result<(), EntropyError>;
    /// What the source is, for the boot log.
    fn describe(&self) -> &'static str;
}

/// The host's `/dev/urandom`, read through semihosting.
#[derive(Debug, Default)]
pub struct HostUrandom;

const URANDOM: &[u8] = b"/dev/urandom\0";

impl EntropySource for HostUrandom {
    fn fill(&mut self, out: &mut [u8]) -> Result<(), EntropyError> {
        let name_len = URANDOM.len() - 1;
        // SAFETY: SYS_OPEN reads `name_len` bytes of the NUL-terminated name,
        // which lives for the whole program.
        let fd = unsafe { syscall!(OPEN, URANDOM.as_ptr(), nr::open::R_BINARY, name_len) };
        if fd as isize == -1 {
            return Err(EntropyError::Unavailable);
        }
        let mut filled = 0;
        let mut result = Ok(());
        // Bounded: each pass reads at least one byte or stops.
        while let Some(rest) = out.get_mut(filled..).filter(|r| !r.is_empty()) {
            // SAFETY: SYS_READ writes at most `rest.len()` bytes into
            // `rest`; it returns how many of them it did NOT write.
            let left = unsafe { syscall!(READ, fd, rest.as_mut_ptr(), rest.len()) };
            let read = rest.len().saturating_sub(left);
            if read == 0 || left > rest.len() {
                result = Err(EntropyError::ShortRead);
                break;
            }
            filled += read;
        }
        // SAFETY: closes the handle SYS_OPEN gave; nothing uses it after.
        unsafe { syscall!(CLOSE, fd) };
        result
    }

    fn describe(&self) -> &'static str {
        "the host's /dev/urandom, read through semihosting (this board has no TRNG)"
    }
}

/// A ChaCha20 generator seeded with 256 bits from `source`.
pub fn generator(source: &mut impl EntropySource) -> Result<ChaCha20Rng, EntropyError> {
    let mut seed = [0u8; 32];
    source.fill(&mut seed)?;
    Ok(ChaCha20Rng::from_seed(seed))
}
