//! SNMPv3's user-based security model (RFC 3414), as a command generator
//! (the agent polling printers) uses it: authentication (RFC 3414, 7860),
//! privacy (RFC 3414, 3826 and the AES-192/256 drafts), engine discovery,
//! the time window, and Reports turned into errors.
//!
//! Costs, and where they are paid: a password becomes a key (Ku) by hashing
//! a mebibyte, once per password, when a [`User`] is made. Each printer's
//! engine then gets its own localised keys (Kul), once per engine, kept in
//! its [`Engine`]. Every message after that costs one HMAC and one cipher
//! pass. Keys are wiped when dropped; passwords are never kept.

mod auth;
mod engine;
mod key;
mod privacy;
mod report;
mod seal;
mod user;

pub use auth::{AuthProtocol, MIN_PASSWORD_LEN};
pub use engine::{Engine, MAX_ENGINE_ID_LEN, TIME_WINDOW_SECS};
pub use key::{Key, MAX_KEY_LEN};
pub use privacy::{DecryptError, PrivProtocol, SALT_LEN};
pub use report::ReportKind;
pub use seal::{OpenError, Opened, SealParams, discovery_request, open, seal, seal_scoped};
pub use user::{CredentialError, SecurityLevel, User};

use core::sync::atomic::{AtomicU32, Ordering};

static LOCALIZATIONS: AtomicU32 = AtomicU32::new(0);

fn count_localization() {
    LOCALIZATIONS.fetch_add(1, Ordering::Relaxed);
}

/// How many keys were localised to an engine since the program started:
/// the benchmark shows it equals the number of engines, not of requests.
pub fn localizations() -> u32 {
    LOCALIZATIONS.load(Ordering::Relaxed)
}

/// Why a v3 exchange failed, as precisely as the printer said it (its
/// Report) or as we found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsmError {
    /// The printer reported something about our request.
    Report(ReportKind),
    /// An answer that claims our user failed our digest check (forged, or
    /// the printer's key differs from ours).
    AnswerDigest,
    /// An answer's timeliness was outside the 150 s window.
    AnswerNotInTimeWindow,
    /// An encrypted answer that did not decrypt to a ScopedPDU.
    AnswerDecryption,
    /// The device answered with authorizationError: the user exists and
    /// authenticated, but its access rules refuse it at this level.
    NotAuthorized,
    /// Requests with privacy went unanswered, the same without privacy
    /// were answered: the device drops what it cannot decrypt.
    PrivacyRefused,
    /// The engine answered discovery, then none of our requests.
    SilentAfterDiscovery,
}

impl UsmError {
    /// A sentence for logs and the CLI; never contains a secret.
    pub fn describe(self) -> &'static str {
        match self {
            UsmError::Report(k) => k.describe(),
            UsmError::AnswerDigest => {
                "an answer failed the digest check (the device's keys differ from ours)"
            }
            UsmError::AnswerNotInTimeWindow => "an answer was outside the 150 s time window",
            UsmError::AnswerDecryption => {
                "an answer did not decrypt (wrong privacy password or protocol)"
            }
            UsmError::NotAuthorized => {
                "the device refused this user at this security level (authorizationError)"
            }
            UsmError::PrivacyRefused => {
                "the device drops our encrypted requests but answers without privacy (wrong privacy password or protocol)"
            }
            UsmError::SilentAfterDiscovery => {
                "the device told its engine id, then answered none of our requests"
            }
        }
    }
}

#[cfg(test)]
mod tests;
