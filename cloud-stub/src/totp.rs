//! Time-based one-time passwords (RFC 6238 over RFC 4226's HOTP): the
//! second factor of an operator's sign-in. The secret is shared once, as
//! an `otpauth://` URI (a QR code of it) that authenticator apps read.
//!
//! A code is accepted for the step it belongs to and one step either side
//! (clocks drift; people type slowly), and never twice: the caller keeps
//! the last step accepted, and a code of that step or an earlier one is
//! refused even if it is right (a code seen over a shoulder or in a log
//! cannot be replayed).

use hmac::{Hmac, Mac};
use subtle::ConstantTimeEq;

/// The HMAC under the code. SHA-1 is what every authenticator app reads;
/// RFC 6238 also names SHA-256 and SHA-512.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha1,
    Sha256,
    Sha512,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha1 => "SHA1",
            Algorithm::Sha256 => "SHA256",
            Algorithm::Sha512 => "SHA512",
        }
    }

    fn mac(self, key: &[u8], message: &[u8]) -> Vec<u8> {
        fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], message: &[u8]) -> Vec<u8> {
            let mut m = <M as hmac::digest::KeyInit>::new_from_slice(key)
                .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
            m.update(message);
            m.finalize().into_bytes().to_vec()
        }
        match self {
            Algorithm::Sha1 => run::<Hmac<sha1::Sha1>>(key, message),
            Algorithm::Sha256 => run::<Hmac<sha2::Sha256>>(key, message),
            Algorithm::Sha512 => run::<Hmac<sha2::Sha512>>(key, message),
        }
    }
}

/// One operator's TOTP parameters.
#[derive(Clone, PartialEq, Eq)]
pub struct Totp {
    secret: Vec<u8>,
    pub algorithm: Algorithm,
    pub digits: u32,
    /// Seconds per step.
    pub period: u64,
}

/// Never shows the secret.
impl std::fmt::Debug for Totp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Totp")
            .field("algorithm", &self.algorithm)
            .field("digits", &self.digits)
            .field("period", &self.period)
            .finish_non_exhaustive()
    }
}

impl Totp {
    /// SHA-1, 6 digits, 30 s: what authenticator apps expect.
    pub fn new(secret: Vec<u8>) -> Totp {
        Totp {
            secret,
            algorithm: Algorithm::Sha1,
            digits: 6,
            period: 30,
        }
    }

    /// A fresh 160-bit secret (RFC 4226's recommended length).
    pub fn generate() -> Result<Totp, String> {
        let mut secret = vec![0u8; 20];
        getrandom::fill(&mut secret).map_err(|e| format!("no randomness: {e}"))?;
        Ok(Totp::new(secret))
    }

    /// From the secret in base32 (as stored and as apps show it).
    pub fn from_base32(text: &str) -> Result<Totp, String> {
        let clean: String = text
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '=')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let secret = data_encoding::BASE32_NOPAD
            .decode(clean.as_bytes())
            .map_err(|e| format!("a TOTP secret is base32: {e}"))?;
        if secret.len() < 10 {
            return Err("a TOTP secret has at least 80 bits".into());
        }
        Ok(Totp::new(secret))
    }

    pub fn secret_base32(&self) -> String {
        data_encoding::BASE32_NOPAD.encode(&self.secret)
    }

    /// The step `unix_secs` falls in.
    pub fn step(&self, unix_secs: u64) -> u64 {
        unix_secs / self.period.max(1)
    }

    /// RFC 4226's HOTP of `counter`: dynamic truncation of the HMAC.
    pub fn code_of_step(&self, counter: u64) -> u32 {
        let mac = self.algorithm.mac(&self.secret, &counter.to_be_bytes());
        let offset = usize::from(mac.last().copied().unwrap_or(0) & 0x0f);
        let word = mac
            .get(offset..offset + 4)
            .map_or(0, |b| u32::from_be_bytes([b[0] & 0x7f, b[1], b[2], b[3]]));
        word % 10u32.pow(self.digits.min(9))
    }

    /// The code at `unix_secs`, zero-padded to its digits.
    pub fn code_at(&self, unix_secs: u64) -> String {
        format!(
            "{:0width$}",
            self.code_of_step(self.step(unix_secs)),
            width = self.digits as usize
        )
    }

    /// The step `code` belongs to if it is right at `unix_secs` (one step
    /// of drift either way) and later than `last_used`; the caller keeps
    /// the step it returns as the new `last_used`.
    pub fn verify(&self, code: &str, unix_secs: u64, last_used: Option<u64>) -> Option<u64> {
        let code = code.trim();
        if code.len() != self.digits as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let now = self.step(unix_secs);
        let mut found = None;
        // Every candidate is computed and compared, so the time taken does
        // not say which step matched.
        for step in [now.saturating_sub(1), now, now.saturating_add(1)] {
            let want = format!(
                "{:0width$}",
                self.code_of_step(step),
                width = self.digits as usize
            );
            let same: bool = want.as_bytes().ct_eq(code.as_bytes()).into();
            if same && last_used.is_none_or(|l| step > l) && found.is_none() {
                found = Some(step);
            }
        }
        found
    }

    /// The `otpauth://` URI authenticator apps read (Key Uri Format).
    pub fn uri(&self, issuer: &str, account: &str) -> String {
        let enc = |s: &str| {
            s.bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect::<String>()
        };
        format!(
            "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm={}&digits={}&period={}",
            enc(issuer),
            enc(account),
            self.secret_base32(),
            enc(issuer),
            self.algorithm.name(),
            self.digits,
            self.period
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rfc(algorithm: Algorithm, seed: &[u8], len: usize) -> Totp {
        let secret = seed.iter().copied().cycle().take(len).collect();
        Totp {
            secret,
            algorithm,
            digits: 8,
            period: 30,
        }
    }

    /// RFC 6238, Appendix B.
    #[test]
    fn the_rfc_6238_test_vectors() {
        let times = [
            59,
            1_111_111_109,
            1_111_111_111,
            1_234_567_890,
            2_000_000_000,
            20_000_000_000,
        ];
        let cases = [
            (
                rfc(Algorithm::Sha1, b"1234567890", 20),
                [
                    "94287082", "07081804", "14050471", "89005924", "69279037", "65353130",
                ],
            ),
            (
                rfc(Algorithm::Sha256, b"1234567890", 32),
                [
                    "46119246", "68084774", "67062674", "91819424", "90698825", "77737706",
                ],
            ),
            (
                rfc(Algorithm::Sha512, b"1234567890", 64),
                [
                    "90693936", "25091201", "99943326", "93441116", "38618901", "47863826",
                ],
            ),
        ];
        for (totp, want) in cases {
            for (t, code) in times.iter().zip(want) {
                assert_eq!(totp.code_at(*t), code, "{:?} at {t}", totp.algorithm);
                assert!(totp.verify(code, *t, None).is_some());
            }
        }
    }

    #[test]
    fn a_code_is_taken_once_within_a_step_of_drift() {
        let totp = Totp::from_base32("JBSWY3DPEHPK3PXP").unwrap();
        let t = 1_800_000_000;
        let code = totp.code_at(t);
        let step = totp.verify(&code, t, None).unwrap();
        // Replayed: refused, even though it is right.
        assert_eq!(totp.verify(&code, t, Some(step)), None);
        // A step late or early is fine; two are not.
        assert_eq!(totp.verify(&code, t + 30, None), Some(step));
        assert_eq!(totp.verify(&code, t - 30, None), Some(step));
        assert_eq!(totp.verify(&code, t + 60, None), None);
        // The next step's code after this one was used.
        assert!(
            totp.verify(&totp.code_at(t + 30), t + 30, Some(step))
                .is_some()
        );
        for wrong in ["", "12345", "1234567", "abcdef", " 12 34 "] {
            assert_eq!(totp.verify(wrong, t, None), None, "{wrong:?}");
        }
    }

    #[test]
    fn secrets_travel_as_base32_in_an_otpauth_uri() {
        let totp = Totp::generate().unwrap();
        let b32 = totp.secret_base32();
        assert_eq!(b32.len(), 32);
        assert_eq!(Totp::from_base32(&b32.to_lowercase()).unwrap(), totp);
        assert!(Totp::from_base32("MFRGG").is_err(), "too short");
        assert!(Totp::from_base32("not base32!").is_err());
        let uri = totp.uri("OpenDCA acme", "jo@example.com");
        assert_eq!(
            uri,
            format!(
                "otpauth://totp/OpenDCA%20acme:jo%40example.com?secret={b32}&issuer=OpenDCA%20acme&algorithm=SHA1&digits=6&period=30"
            )
        );
        assert!(!format!("{totp:?}").contains(&b32));
    }
}
