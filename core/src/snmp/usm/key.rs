//! Key material: a password's key (Ku) and a key localised to one engine
//! (Kul). Wiped when dropped, and never shown by `Debug`.

use zeroize::Zeroize;

/// The longest key USM uses: a SHA-512 digest.
pub const MAX_KEY_LEN: usize = 64;

#[derive(Clone, PartialEq, Eq)]
pub struct Key {
    bytes: [u8; MAX_KEY_LEN],
    len: u8,
}

impl Key {
    pub(crate) const fn empty() -> Self {
        Self {
            bytes: [0; MAX_KEY_LEN],
            len: 0,
        }
    }

    /// A key from raw bytes (longer input is cut at [`MAX_KEY_LEN`]).
    pub fn from_bytes(bytes: &[u8]) -> Self {
        let mut k = Self::empty();
        k.append(bytes);
        k
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends what fits.
    pub(crate) fn append(&mut self, more: &[u8]) {
        let start = self.len();
        let room = MAX_KEY_LEN.saturating_sub(start);
        let n = more.len().min(room);
        let end = start.saturating_add(n);
        if let (Some(dst), Some(src)) = (self.bytes.get_mut(start..end), more.get(..n)) {
            dst.copy_from_slice(src);
            self.len = u8::try_from(end).unwrap_or(u8::MAX);
        }
    }

    /// Keeps the first `len` bytes, wiping the rest.
    pub(crate) fn truncate(&mut self, len: usize) {
        if len < self.len() {
            if let Some(tail) = self.bytes.get_mut(len..) {
                tail.zeroize();
            }
            self.len = u8::try_from(len).unwrap_or(u8::MAX);
        }
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

impl core::fmt::Debug for Key {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Key({} bytes)", self.len)
    }
}
