//! What we know of one printer's SNMP engine: its id, its clock (boots and
//! time, kept in step as RFC 3414 3.2 step 7b says for a non-authoritative
//! engine) and the user's keys localised to it.

use super::key::Key;
use super::user::User;
use crate::time::Instant;
use heapless::Vec;

/// snmpEngineID: 5 to 32 octets (RFC 3411); a Report naming a longer one is
/// not followed.
pub const MAX_ENGINE_ID_LEN: usize = 32;

/// How far a message's time may lag the engine's clock as we estimate it.
pub const TIME_WINDOW_SECS: u32 = 150;

/// engineBoots at its limit: the engine must be reconfigured (RFC 3414 2.2.2).
const BOOTS_LATCHED: u32 = 2_147_483_647;

#[derive(Debug, Clone)]
pub struct Engine {
    id: Vec<u8, MAX_ENGINE_ID_LEN>,
    boots: u32,
    /// engineTime when `synced_at` was our clock.
    time: u32,
    synced_at: Instant,
    latest_received_time: u32,
    /// Whether an authenticated message ever set the clock (discovery's
    /// Report is not authenticated).
    authenticated_clock: bool,
    /// Times the boots count went up after that: the engine rebooted.
    reboots: u32,
    auth_key: Key,
    priv_key: Key,
}

impl Engine {
    /// An engine learnt from discovery (or named by `-e`), with `user`'s
    /// keys localised to it: the only place keys are localised.
    pub fn new(id: &[u8], boots: u32, time: u32, now: Instant, user: &User) -> Option<Self> {
        let id = Vec::from_slice(id).ok()?;
        let auth_key = user
            .auth_ku()
            .map_or(Key::empty(), |(p, ku)| p.localize(ku, &id));
        let priv_key = match (user.auth_protocol(), user.priv_ku()) {
            (Some(auth), Some((p, ku))) => p.localize(auth, ku, &id),
            _ => Key::empty(),
        };
        Some(Self {
            id,
            boots,
            time,
            synced_at: now,
            latest_received_time: time,
            authenticated_clock: false,
            reboots: 0,
            auth_key,
            priv_key,
        })
    }

    pub fn id(&self) -> &[u8] {
        &self.id
    }

    pub fn boots(&self) -> u32 {
        self.boots
    }

    /// Reboots seen since the clock was first authenticated.
    pub fn reboots(&self) -> u32 {
        self.reboots
    }

    /// The engine's time now, as we estimate it.
    pub fn time_at(&self, now: Instant) -> u32 {
        let elapsed = now.saturating_since(self.synced_at).millis() / 1000;
        let t = u64::from(self.time).saturating_add(elapsed);
        u32::try_from(t.min(u64::from(BOOTS_LATCHED))).unwrap_or(BOOTS_LATCHED)
    }

    pub(crate) fn auth_key(&self) -> &Key {
        &self.auth_key
    }

    pub(crate) fn priv_key(&self) -> &Key {
        &self.priv_key
    }

    /// Takes the boots and time of an authenticated message from the
    /// engine, then says whether the message is timely. An authenticated
    /// notInTimeWindow Report (the engine rebooted, or our estimate
    /// drifted) moves the clock forward here, so the request sent again
    /// after it is timely.
    pub(crate) fn accept_time(&mut self, boots: u32, time: u32, now: Instant) -> bool {
        if boots > self.boots && self.authenticated_clock {
            self.reboots = self.reboots.saturating_add(1);
        }
        if boots > self.boots || (boots == self.boots && time > self.latest_received_time) {
            self.set_clock(boots, time, now);
        }
        self.authenticated_clock = true;
        let lag_limit = self.time_at(now).saturating_sub(TIME_WINDOW_SECS);
        !(self.boots >= BOOTS_LATCHED
            || boots < self.boots
            || (boots == self.boots && time < lag_limit))
    }

    fn set_clock(&mut self, boots: u32, time: u32, now: Instant) {
        self.boots = boots;
        self.time = time;
        self.latest_received_time = time;
        self.synced_at = now;
    }
}
