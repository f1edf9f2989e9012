//! Tokens, agent ids and secrets: random, shown once, stored only as hashes.
//!
//! Secrets are 256 random bits, so one SHA-256 is as good as a slow password
//! hash here (nothing to brute-force) and keeps every request cheap.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// `bytes` random bytes as lowercase hex.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("the operating system's random source failed");
    hex::encode(buf)
}

pub fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Compares a presented secret with a stored hash in constant time.
pub fn matches(secret: &str, stored_hash: &[u8]) -> bool {
    hash(secret).ct_eq(stored_hash).into()
}

/// Whether two secrets presented as text are equal, in constant time.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
