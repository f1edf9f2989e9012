//! How the agent proves itself to a device: a community (SNMPv1, v2c) or a
//! USM user (SNMPv3). The scan tries a list of these in order on each
//! device and keeps the first that works.

use crate::snmp::Version;
#[cfg(feature = "usm")]
use crate::snmp::usm::User;
use heapless::Vec;

/// The longest community the agent keeps.
pub const MAX_COMMUNITY_LEN: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// SNMPv1 or v2c. A v2c walk that gets no answer at all falls back to
    /// v1 by itself (v1-only printers ignore v2c).
    Community {
        version: Version,
        community: Vec<u8, MAX_COMMUNITY_LEN>,
    },
    /// SNMPv3 with the user-based security model.
    #[cfg(feature = "usm")]
    Usm(User),
}

impl Credentials {
    /// A v2c community (cut at 64 octets).
    pub fn community(community: &[u8]) -> Self {
        Self::community_in(Version::V2c, community)
    }

    /// A community in a given version (v1 or v2c).
    pub fn community_in(version: Version, community: &[u8]) -> Self {
        let mut c = Vec::new();
        let _ = c.extend_from_slice(community.get(..MAX_COMMUNITY_LEN).unwrap_or(community));
        Self::Community {
            version,
            community: c,
        }
    }

    /// The version these credentials start in.
    pub fn version(&self) -> Version {
        match self {
            Self::Community { version, .. } => *version,
            #[cfg(feature = "usm")]
            Self::Usm(_) => Version::V3,
        }
    }
}

impl Default for Credentials {
    fn default() -> Self {
        Self::community(b"public")
    }
}
