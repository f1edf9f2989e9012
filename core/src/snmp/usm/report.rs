//! Report PDUs: what a printer says when it refuses a v3 request. The
//! counter a Report carries names the reason (RFC 3414 3.2, RFC 3412 7.2).

use crate::snmp::VarBinds;

/// usmStats: 1.3.6.1.6.3.15.1.1.N.0
const USM_STATS: &[u32] = &[1, 3, 6, 1, 6, 3, 15, 1, 1];
/// snmpMPDStats: 1.3.6.1.6.3.11.2.1.N.0
const MPD_STATS: &[u32] = &[1, 3, 6, 1, 6, 3, 11, 2, 1];
/// snmpTargetMIB's context counters: 1.3.6.1.6.3.12.1.N.0
const CONTEXT_STATS: &[u32] = &[1, 3, 6, 1, 6, 3, 12, 1];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    UnsupportedSecurityLevel,
    NotInTimeWindow,
    UnknownUserName,
    UnknownEngineId,
    WrongDigest,
    DecryptionError,
    UnknownSecurityModel,
    InvalidMessage,
    UnknownPduHandler,
    UnavailableContext,
    UnknownContext,
    /// A Report with a counter we do not know.
    Other,
}

impl ReportKind {
    /// The kind named by a Report's first varbind.
    pub fn of(varbinds: VarBinds<'_>) -> Self {
        let Some(Ok(vb)) = varbinds.clone().next() else {
            return Self::Other;
        };
        let arcs = |prefix: &[u32]| -> Option<u32> {
            if !vb.name.starts_with_arcs(prefix.iter().copied()) {
                return None;
            }
            let mut rest = vb.name.arcs().skip(prefix.len());
            let n = rest.next()?;
            match (rest.next(), rest.next()) {
                (Some(0), None) | (None, None) => Some(n),
                _ => None,
            }
        };
        match (arcs(USM_STATS), arcs(MPD_STATS), arcs(CONTEXT_STATS)) {
            (Some(1), _, _) => Self::UnsupportedSecurityLevel,
            (Some(2), _, _) => Self::NotInTimeWindow,
            (Some(3), _, _) => Self::UnknownUserName,
            (Some(4), _, _) => Self::UnknownEngineId,
            (Some(5), _, _) => Self::WrongDigest,
            (Some(6), _, _) => Self::DecryptionError,
            (_, Some(1), _) => Self::UnknownSecurityModel,
            (_, Some(2), _) => Self::InvalidMessage,
            (_, Some(3), _) => Self::UnknownPduHandler,
            (_, _, Some(4)) => Self::UnavailableContext,
            (_, _, Some(5)) => Self::UnknownContext,
            _ => Self::Other,
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Self::UnsupportedSecurityLevel => {
                "the device refused the security level (the user exists with another level)"
            }
            Self::NotInTimeWindow => "the device says our request is outside its time window",
            Self::UnknownUserName => "the device does not know this user name",
            Self::UnknownEngineId => "the device does not know the engine id we used",
            Self::WrongDigest => {
                "the device refused our digest (wrong authentication password or protocol)"
            }
            Self::DecryptionError => {
                "the device could not decrypt our request (wrong privacy password or protocol)"
            }
            Self::UnknownSecurityModel => "the device does not speak the user-based security model",
            Self::InvalidMessage => "the device found our message invalid",
            Self::UnknownPduHandler => "the device has no handler for our request",
            Self::UnavailableContext => "the device says the context is unavailable",
            Self::UnknownContext => {
                "the device does not know the context name (HP wants \"Jetdirect\")"
            }
            Self::Other => "the device sent a Report we do not know",
        }
    }
}
