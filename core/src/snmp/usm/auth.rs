//! Authentication protocols: RFC 3414 (HMAC-MD5-96, HMAC-SHA-96) and
//! RFC 7860 (HMAC-SHA-224/256/384/512), password-to-key and localisation.

use super::key::Key;
use hmac::digest::Digest;
use hmac::digest::core_api::BlockSizeUser;
use hmac::{Mac, SimpleHmac};

/// What one password-to-key costs in hashing: 1 MiB (RFC 3414 A.2.1),
/// fed to the hash 64 bytes at a time.
const CHUNK_LEN: usize = 64;
const CHUNKS: usize = (1 << 20) / CHUNK_LEN;

/// Shortest password the RFC and net-snmp accept.
pub const MIN_PASSWORD_LEN: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthProtocol {
    Md5,
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

/// Runs `$body` with `$d` naming the protocol's hash type.
macro_rules! with_hash {
    ($proto:expr, $d:ident => $body:expr) => {
        match $proto {
            AuthProtocol::Md5 => {
                type $d = md5::Md5;
                $body
            }
            AuthProtocol::Sha1 => {
                type $d = sha1::Sha1;
                $body
            }
            AuthProtocol::Sha224 => {
                type $d = sha2::Sha224;
                $body
            }
            AuthProtocol::Sha256 => {
                type $d = sha2::Sha256;
                $body
            }
            AuthProtocol::Sha384 => {
                type $d = sha2::Sha384;
                $body
            }
            AuthProtocol::Sha512 => {
                type $d = sha2::Sha512;
                $body
            }
        }
    };
}

impl AuthProtocol {
    pub const ALL: [Self; 6] = [
        Self::Md5,
        Self::Sha1,
        Self::Sha224,
        Self::Sha256,
        Self::Sha384,
        Self::Sha512,
    ];

    /// net-snmp's names (`-a`), any case; "SHA" is SHA-1, and the dashes
    /// of the SHA-2 names may be left out.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| {
            let n = p.name();
            name.eq_ignore_ascii_case(n)
                || p.names_without_dash(name)
                || (*p == Self::Sha1 && name.eq_ignore_ascii_case("SHA1"))
        })
    }

    fn names_without_dash(self, name: &str) -> bool {
        let n = self.name();
        let (a, b) = n.split_once('-').unwrap_or((n, ""));
        !b.is_empty()
            && name.len() == a.len().saturating_add(b.len())
            && name
                .get(..a.len())
                .is_some_and(|x| x.eq_ignore_ascii_case(a))
            && name
                .get(a.len()..)
                .is_some_and(|x| x.eq_ignore_ascii_case(b))
    }

    pub const fn name(self) -> &'static str {
        match self {
            Self::Md5 => "MD5",
            Self::Sha1 => "SHA",
            Self::Sha224 => "SHA-224",
            Self::Sha256 => "SHA-256",
            Self::Sha384 => "SHA-384",
            Self::Sha512 => "SHA-512",
        }
    }

    /// Length of msgAuthenticationParameters: the truncated HMAC.
    pub const fn mac_len(self) -> usize {
        match self {
            Self::Md5 | Self::Sha1 => 12,
            Self::Sha224 => 16,
            Self::Sha256 => 24,
            Self::Sha384 => 32,
            Self::Sha512 => 48,
        }
    }

    /// Length of the hash, and so of Ku and Kul.
    pub const fn digest_len(self) -> usize {
        match self {
            Self::Md5 => 16,
            Self::Sha1 => 20,
            Self::Sha224 => 28,
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }

    /// Ku: the hash of 1 MiB of the password repeated (RFC 3414 A.2). The
    /// slow step (a million bytes hashed): compute it once per password.
    pub fn password_to_key(self, password: &[u8]) -> Key {
        with_hash!(self, D => expand_password::<D>(password))
    }

    /// Kul = H(Ku || engineID || Ku).
    pub fn localize(self, ku: &Key, engine_id: &[u8]) -> Key {
        super::count_localization();
        with_hash!(self, D => {
            let mut d = D::new();
            d.update(ku.as_bytes());
            d.update(engine_id);
            d.update(ku.as_bytes());
            key_of(d.finalize())
        })
    }

    /// The plain hash of `data` (the Blumenthal key extension uses it).
    pub(crate) fn digest(self, data: &[u8]) -> Key {
        with_hash!(self, D => key_of(D::digest(data)))
    }

    /// Writes the truncated HMAC of `message` under `key` into `out`
    /// (`mac_len` bytes; a shorter `out` gets what fits).
    pub(crate) fn sign(self, key: &Key, message: &[u8], out: &mut [u8]) {
        with_hash!(self, D => {
            if let Ok(mut mac) = SimpleHmac::<D>::new_from_slice(key.as_bytes()) {
                mac.update(message);
                let tag = mac.finalize().into_bytes();
                let n = self.mac_len().min(out.len()).min(tag.len());
                if let (Some(dst), Some(src)) = (out.get_mut(..n), tag.get(..n)) {
                    dst.copy_from_slice(src);
                }
            }
        })
    }

    /// Whether `tag` is the truncated HMAC of `message`, compared in
    /// constant time.
    pub(crate) fn verify(self, key: &Key, message: &[u8], tag: &[u8]) -> bool {
        if tag.len() != self.mac_len() {
            return false;
        }
        with_hash!(self, D => {
            SimpleHmac::<D>::new_from_slice(key.as_bytes()).is_ok_and(|mut mac| {
                mac.update(message);
                mac.verify_truncated_left(tag).is_ok()
            })
        })
    }
}

fn expand_password<D: Digest + BlockSizeUser>(password: &[u8]) -> Key {
    let mut d = D::new();
    if password.is_empty() {
        return Key::empty();
    }
    // 64 bytes at a time, the password wrapping around.
    let mut chunk = [0u8; CHUNK_LEN];
    let mut next = 0usize;
    for _ in 0..CHUNKS {
        for b in chunk.iter_mut() {
            *b = password.get(next).copied().unwrap_or(0);
            next = next.wrapping_add(1);
            if next >= password.len() {
                next = 0;
            }
        }
        d.update(chunk);
    }
    zeroize::Zeroize::zeroize(&mut chunk);
    key_of(d.finalize())
}

/// A key from a digest, the digest's copy wiped.
fn key_of<N: hmac::digest::generic_array::ArrayLength<u8>>(
    mut digest: hmac::digest::generic_array::GenericArray<u8, N>,
) -> Key {
    let key = Key::from_bytes(&digest);
    zeroize::Zeroize::zeroize(digest.as_mut_slice());
    key
}
