//! The one place requests are wrapped for a device and its answers
//! unwrapped: a community message (v1, v2c) or a USM message (v3), chosen
//! by the [`Credentials`]. The walker and the scan speak PDUs only.

use super::credentials::Credentials;
#[cfg(feature = "usm")]
use crate::snmp::usm::{self, Engine, OpenError, Opened, ReportKind, SealParams, User, UsmError};
use crate::snmp::{CommunityMessage, Message, Pdu, Pdus, VarBind, VarBinds, Version};
use crate::time::Instant;

/// What a datagram turned out to be.
#[derive(Debug)]
pub(crate) enum Answer<'a> {
    /// A PDU in our version and with our secret (any request-id).
    Pdu(Pdu<VarBinds<'a>>),
    /// The engine told its id and clock: requests can be sealed now (if
    /// the Report answers our discovery: its msgID).
    #[cfg(feature = "usm")]
    Discovered { request_id: i32 },
    /// The device refused a request of ours (request-id = msgID).
    #[cfg(feature = "usm")]
    Report {
        request_id: i32,
        kind: ReportKind,
        authenticated: bool,
    },
    /// It claimed to be ours and failed a check.
    #[cfg(feature = "usm")]
    Refused(UsmError),
    /// Anything else: another version, secret or engine, or garbage.
    NotOurs,
}

#[derive(Debug, Clone)]
pub(crate) struct Envelope {
    credentials: Credentials,
    /// The version in use: a community walk may fall back from v2c to v1.
    version: Version,
    /// The device's engine, once discovered (v3).
    #[cfg(feature = "usm")]
    engine: Option<Engine>,
    /// The privacy salt: a counter that never repeats for a key.
    #[cfg(feature = "usm")]
    salt: u64,
    /// The user without privacy, while a check of whether the privacy
    /// settings are what the device refuses is under way.
    #[cfg(feature = "usm")]
    downgraded: Option<User>,
}

impl Envelope {
    /// `salt_seed` should differ between walks (random in the field), so
    /// that a salt is never used twice with one key.
    pub(crate) fn new(credentials: Credentials, salt_seed: u64, now: Instant) -> Self {
        let _ = (salt_seed, now);
        Self {
            version: credentials.version(),
            #[cfg(feature = "usm")]
            engine: match &credentials {
                // A known engine id (`-e`) skips discovery; its clock comes
                // from the first notInTimeWindow Report.
                Credentials::Usm(u) if !u.engine_id.is_empty() => {
                    Engine::new(&u.engine_id, 0, 0, now, u)
                }
                _ => None,
            },
            #[cfg(feature = "usm")]
            salt: salt_seed,
            #[cfg(feature = "usm")]
            downgraded: None,
            credentials,
        }
    }

    pub(crate) fn version(&self) -> Version {
        self.version
    }

    /// A v2c community walk that got nothing: try v1. False when there is
    /// nothing to fall back to.
    pub(crate) fn fall_back_to_v1(&mut self) -> bool {
        let fell = matches!(self.credentials, Credentials::Community { .. })
            && self.version == Version::V2c;
        if fell {
            self.version = Version::V1;
        }
        fell
    }

    /// True while a v3 walk must first learn the device's engine.
    pub(crate) fn needs_engine(&self) -> bool {
        #[cfg(feature = "usm")]
        if let Credentials::Usm(_) = self.credentials {
            return self.engine.is_none();
        }
        false
    }

    /// The engine as known so far (v3).
    #[cfg(feature = "usm")]
    pub(crate) fn engine(&self) -> Option<&Engine> {
        self.engine.as_ref()
    }

    /// Forget the engine (it said it does not know the id we used).
    #[cfg(feature = "usm")]
    pub(crate) fn forget_engine(&mut self) {
        self.engine = None;
    }

    /// Whether a walk that got no answer at all should check whether the
    /// privacy settings are the cause (an agent drops what it cannot
    /// decrypt without a word): it asks once more without privacy.
    #[cfg(feature = "usm")]
    pub(crate) fn start_privacy_check(&mut self) -> bool {
        let Credentials::Usm(u) = &self.credentials else {
            return false;
        };
        if self.engine.is_none() || self.downgraded.is_some() || u.priv_protocol().is_none() {
            return false;
        }
        self.downgraded = Some(u.without_privacy());
        true
    }

    #[cfg(feature = "usm")]
    fn user(&self) -> Option<&User> {
        match &self.credentials {
            Credentials::Usm(u) => Some(self.downgraded.as_ref().unwrap_or(u)),
            Credentials::Community { .. } => None,
        }
    }

    /// The discovery request (v3, before the engine is known).
    #[cfg(feature = "usm")]
    pub(crate) fn encode_discovery(
        &self,
        request_id: i32,
        max_size: i32,
        buf: &mut [u8],
    ) -> Option<usize> {
        usm::discovery_request(buf, request_id, max_size).ok()
    }

    /// Wraps `pdu` for the device; `None` if it does not fit `buf` (or a
    /// v3 engine is not known yet).
    pub(crate) fn encode(
        &mut self,
        now: Instant,
        pdu: Pdu<&[VarBind<'_>]>,
        max_size: i32,
        buf: &mut [u8],
    ) -> Option<usize> {
        let _ = (now, max_size);
        match &self.credentials {
            Credentials::Community { community, .. } => CommunityMessage {
                version: self.version,
                community,
                pdu: Pdus::Pdu(pdu),
            }
            .encode(buf)
            .ok(),
            #[cfg(feature = "usm")]
            Credentials::Usm(_) => {
                self.salt = self.salt.wrapping_add(1);
                let params = SealParams {
                    msg_id: pdu.request_id,
                    max_size,
                    salt: self.salt,
                };
                let (user, engine) = (self.user()?, self.engine.as_ref()?);
                usm::seal(buf, user, engine, &params, now, pdu).ok()
            }
        }
    }

    /// Unwraps a datagram from the device.
    pub(crate) fn open<'a>(&mut self, now: Instant, bytes: &'a mut [u8]) -> Answer<'a> {
        let _ = now;
        match &self.credentials {
            Credentials::Community { community, .. } => {
                let bytes: &'a [u8] = bytes;
                match Message::decode(bytes) {
                    Ok(Message::Community(m))
                        if m.version == self.version && m.community == community.as_slice() =>
                    {
                        match m.pdu {
                            Pdus::Pdu(p) => Answer::Pdu(p),
                            Pdus::TrapV1(_) => Answer::NotOurs,
                        }
                    }
                    _ => Answer::NotOurs,
                }
            }
            #[cfg(feature = "usm")]
            Credentials::Usm(base) => {
                let user = self.downgraded.as_ref().unwrap_or(base);
                match usm::open(bytes, user, self.engine.as_mut(), now) {
                    Ok(Opened::Pdu { pdu, .. }) => Answer::Pdu(pdu),
                    Ok(Opened::Report {
                        msg_id,
                        engine_id,
                        boots,
                        time,
                        kind,
                        authenticated,
                    }) => {
                        if self.engine.is_none() && !engine_id.is_empty() {
                            // Discovery's answer (usmStatsUnknownEngineIDs,
                            // or any Report naming the engine).
                            self.engine = Engine::new(engine_id, boots, time, now, user);
                            if self.engine.is_some() {
                                return Answer::Discovered { request_id: msg_id };
                            }
                        }
                        Answer::Report {
                            request_id: msg_id,
                            kind,
                            authenticated,
                        }
                    }
                    Err(OpenError::Usm(e)) => Answer::Refused(e),
                    Err(OpenError::NotOurs) => Answer::NotOurs,
                }
            }
        }
    }
}
