//! Privacy protocols: DES-CBC (RFC 3414), AES-128-CFB (RFC 3826) and the
//! AES-192/256 drafts with their two ways of making a key long enough.

use super::auth::AuthProtocol;
use super::key::Key;
use aes::cipher::generic_array::GenericArray;
use aes::cipher::{AsyncStreamCipher, BlockDecryptMut, BlockEncryptMut, KeyIvInit};

/// Length of msgPrivacyParameters (the salt) for every protocol here.
pub const SALT_LEN: usize = 8;

const DES_BLOCK: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrivProtocol {
    Des,
    Aes128,
    /// AES-192 with the key extended as draft-blumenthal-aes-usm-04 says:
    /// net-snmp's "AES-192", pysnmp's and snmpsim's "AES192BLMT".
    Aes192,
    /// AES-256, Blumenthal's extension: net-snmp "AES-256", snmpsim
    /// "AES256BLMT".
    Aes256,
    /// AES-192 with the key extended as Cisco does
    /// (draft-reeder-snmpv3-usm-3desede): net-snmp "AES-192C", snmpsim
    /// "AES192".
    Aes192C,
    /// AES-256, Reeder's extension: net-snmp "AES-256C", snmpsim "AES256".
    Aes256C,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Extension {
    /// Kul || H(Kul)
    Blumenthal,
    /// Kul || localize(password_to_key(Kul))
    Reeder,
}

/// Why a ciphertext could not be decrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecryptError {
    /// msgPrivacyParameters is not 8 octets.
    BadSalt,
    /// DES: not a whole number of blocks.
    NotBlockAligned,
    /// The localised key does not fit the cipher.
    BadKey,
}

impl PrivProtocol {
    pub const ALL: [Self; 6] = [
        Self::Des,
        Self::Aes128,
        Self::Aes192,
        Self::Aes256,
        Self::Aes192C,
        Self::Aes256C,
    ];

    /// net-snmp's names (`-x`), any case, dashes optional; "AES128" is AES.
    pub fn parse(name: &str) -> Option<Self> {
        let mut plain: heapless::String<16> = heapless::String::new();
        for c in name.chars().filter(|c| *c != '-') {
            plain.push(c.to_ascii_uppercase()).ok()?;
        }
        Some(match plain.as_str() {
            "DES" => Self::Des,
            "AES" | "AES128" => Self::Aes128,
            "AES192" => Self::Aes192,
            "AES256" => Self::Aes256,
            "AES192C" => Self::Aes192C,
            "AES256C" => Self::Aes256C,
            _ => return None,
        })
    }

    pub const fn name(self) -> &'static str {
        match self {
            Self::Des => "DES",
            Self::Aes128 => "AES",
            Self::Aes192 => "AES-192",
            Self::Aes256 => "AES-256",
            Self::Aes192C => "AES-192C",
            Self::Aes256C => "AES-256C",
        }
    }

    /// Bytes of localised key the cipher takes (DES: key, then pre-IV).
    const fn key_len(self) -> usize {
        match self {
            Self::Des | Self::Aes128 => 16,
            Self::Aes192 | Self::Aes192C => 24,
            Self::Aes256 | Self::Aes256C => 32,
        }
    }

    const fn extension(self) -> Option<Extension> {
        match self {
            Self::Des | Self::Aes128 => None,
            Self::Aes192 | Self::Aes256 => Some(Extension::Blumenthal),
            Self::Aes192C | Self::Aes256C => Some(Extension::Reeder),
        }
    }

    /// The privacy key for one engine: Ku (of the privacy password, by the
    /// authentication hash) localised, then extended where the hash is
    /// shorter than the cipher's key, then cut to the cipher's length.
    pub fn localize(self, auth: AuthProtocol, ku: &Key, engine_id: &[u8]) -> Key {
        let mut key = auth.localize(ku, engine_id);
        // One round is always enough (the shortest hash, MD5, gives 16 of
        // the 32 bytes AES-256 needs); the bound is for the type checker.
        for _ in 0..4 {
            if key.len() >= self.key_len() {
                break;
            }
            match self.extension() {
                Some(Extension::Blumenthal) => {
                    let more = auth.digest(key.as_bytes());
                    key.append(more.as_bytes());
                }
                Some(Extension::Reeder) => {
                    let ku2 = auth.password_to_key(key.as_bytes());
                    let more = auth.localize(&ku2, engine_id);
                    key.append(more.as_bytes());
                }
                None => break,
            }
        }
        key.truncate(self.key_len());
        key
    }

    /// The ciphertext's length for `plain_len` bytes of ScopedPDU (DES
    /// pads to its block; CFB does not pad).
    pub const fn sealed_len(self, plain_len: usize) -> usize {
        match self {
            Self::Des => plain_len.div_ceil(DES_BLOCK).saturating_mul(DES_BLOCK),
            _ => plain_len,
        }
    }

    /// The salt (msgPrivacyParameters) for a message: DES puts the
    /// engine's boots before 32 bits of the counter (RFC 3414 8.1.1.1);
    /// AES takes the 64-bit counter (RFC 3826 3.1.2.1).
    pub fn salt(self, engine_boots: u32, counter: u64) -> [u8; SALT_LEN] {
        let mut salt = [0u8; SALT_LEN];
        match self {
            Self::Des => {
                let low = counter.to_be_bytes();
                let (b, c) = salt.split_at_mut(4);
                b.copy_from_slice(&engine_boots.to_be_bytes());
                c.copy_from_slice(low.get(4..).unwrap_or(&[0; 4]));
            }
            _ => salt = counter.to_be_bytes(),
        }
        salt
    }

    /// Encrypts `data` in place. Its length must be [`Self::sealed_len`]
    /// of the plaintext, the padding already there (any bytes). False if
    /// the key does not fit the cipher (nothing must then be sent).
    #[must_use]
    pub fn encrypt(
        self,
        key: &Key,
        engine_boots: u32,
        engine_time: u32,
        salt: &[u8; SALT_LEN],
        data: &mut [u8],
    ) -> bool {
        let k = key.as_bytes();
        match self {
            Self::Des => {
                let (Some(dk), Some(iv)) = (k.get(..8), des_iv(k, salt)) else {
                    return false;
                };
                let Ok(mut c) = cbc::Encryptor::<des::Des>::new_from_slices(dk, &iv) else {
                    return false;
                };
                for block in data.chunks_exact_mut(DES_BLOCK) {
                    c.encrypt_block_mut(GenericArray::from_mut_slice(block));
                }
                true
            }
            _ => {
                let iv = aes_iv(engine_boots, engine_time, salt);
                aes_cfb(self, k, &iv, data, true)
            }
        }
    }

    /// Decrypts `data` in place; the plaintext is `data` itself (DES may
    /// leave padding after the ScopedPDU, which its decoder ignores).
    pub fn decrypt(
        self,
        key: &Key,
        engine_boots: u32,
        engine_time: u32,
        salt: &[u8],
        data: &mut [u8],
    ) -> Result<(), DecryptError> {
        let salt: &[u8; SALT_LEN] = salt.try_into().map_err(|_| DecryptError::BadSalt)?;
        let k = key.as_bytes();
        match self {
            Self::Des => {
                if !data.len().is_multiple_of(DES_BLOCK) {
                    return Err(DecryptError::NotBlockAligned);
                }
                let (Some(dk), Some(iv)) = (k.get(..8), des_iv(k, salt)) else {
                    return Err(DecryptError::BadSalt);
                };
                let Ok(mut c) = cbc::Decryptor::<des::Des>::new_from_slices(dk, &iv) else {
                    return Err(DecryptError::BadKey);
                };
                for block in data.chunks_exact_mut(DES_BLOCK) {
                    c.decrypt_block_mut(GenericArray::from_mut_slice(block));
                }
            }
            _ => {
                let iv = aes_iv(engine_boots, engine_time, salt);
                if !aes_cfb(self, k, &iv, data, false) {
                    return Err(DecryptError::BadKey);
                }
            }
        }
        Ok(())
    }
}

/// DES: the pre-IV (the key's second half) XOR the salt.
fn des_iv(key: &[u8], salt: &[u8; SALT_LEN]) -> Option<[u8; DES_BLOCK]> {
    let pre_iv = key.get(8..16)?;
    let mut iv = [0u8; DES_BLOCK];
    for ((o, p), s) in iv.iter_mut().zip(pre_iv).zip(salt) {
        *o = p ^ s;
    }
    Some(iv)
}

/// AES: engineBoots || engineTime || salt, as the authoritative engine
/// (the printer) sent them or we send them.
fn aes_iv(engine_boots: u32, engine_time: u32, salt: &[u8; SALT_LEN]) -> [u8; 16] {
    let mut iv = [0u8; 16];
    let (bt, s) = iv.split_at_mut(8);
    let (b, t) = bt.split_at_mut(4);
    b.copy_from_slice(&engine_boots.to_be_bytes());
    t.copy_from_slice(&engine_time.to_be_bytes());
    s.copy_from_slice(salt);
    iv
}

/// AES-CFB over `data` in place, in the protocol's key size; false if the
/// key is too short for it.
fn aes_cfb(proto: PrivProtocol, key: &[u8], iv: &[u8; 16], data: &mut [u8], encrypt: bool) -> bool {
    use aes::{Aes128, Aes192, Aes256};
    match proto {
        PrivProtocol::Aes128 => cfb::<Aes128>(key, iv, data, encrypt),
        PrivProtocol::Aes192 | PrivProtocol::Aes192C => cfb::<Aes192>(key, iv, data, encrypt),
        PrivProtocol::Aes256 | PrivProtocol::Aes256C => cfb::<Aes256>(key, iv, data, encrypt),
        PrivProtocol::Des => false,
    }
}

fn cfb<A>(key: &[u8], iv: &[u8; 16], data: &mut [u8], encrypt: bool) -> bool
where
    A: aes::cipher::BlockCipher + aes::cipher::BlockEncryptMut + aes::cipher::KeyInit,
{
    let Some(key) = key.get(..A::key_size()) else {
        return false;
    };
    if encrypt {
        let Ok(c) = cfb_mode::Encryptor::<A>::new_from_slices(key, iv) else {
            return false;
        };
        c.encrypt(data);
    } else {
        let Ok(c) = cfb_mode::Decryptor::<A>::new_from_slices(key, iv) else {
            return false;
        };
        c.decrypt(data);
    }
    true
}
