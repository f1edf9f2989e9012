//! Device Web Access, the agent's side: an `open_web` task starts a relay
//! on a thread of its own (the agent's loop, its collections and its push
//! channel go on), over a connection to the cloud of its own. The rules
//! are dca-core's ([`dca_core::sync::web_access`]); this module applies
//! them where the bytes are: the cloud's `forward`s are judged before the
//! device is contacted, the device's identity is read again over SNMP
//! before every connection, only the session's address and port are ever
//! connected to, and the device's answers are judged before they leave.

mod device;
mod device_tls;
pub mod identity;
mod relay;
#[cfg(test)]
mod tests;

pub use relay::{Ended, Relay};

use crate::cloud_session::{Log, Transport};
use dca_core::sync::web_access::{self, Opening, Refusal};
use dca_core::time::Instant;
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Makes a new connection to the agent's cloud (same address, trust and
/// proxy as the agent's own), for a relay to hold on its thread.
pub type Connector = Arc<dyn Fn() -> Box<dyn Transport + Send> + Send + Sync>;
/// Reads the serial of the device at an address, or says why it cannot.
pub type IdentityReader = Arc<dyn Fn(IpAddr) -> Result<String, String> + Send + Sync>;
/// The relay's clock (tests move it by hand).
pub type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// The most sessions one agent relays at once: each holds a thread and a
/// connection to the cloud.
pub const MAX_SESSIONS: usize = 4;

/// A relay's bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// How long the cloud holds a `relay` before it answers `relay idle`.
    pub hold: Duration,
    /// Failed exchanges with the cloud in a row before the relay gives up.
    pub tries: u32,
    /// The pause after the first failure, doubled after each next one.
    pub backoff: Duration,
    /// Connecting to the device.
    pub connect: Duration,
    /// Any one read from the device.
    pub read: Duration,
    /// A whole answer from the device.
    pub total: Duration,
    /// The largest answer body relayed.
    pub max_answer: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            hold: Duration::from_secs(25),
            tries: 5,
            backoff: Duration::from_secs(1),
            connect: Duration::from_secs(5),
            read: Duration::from_secs(10),
            total: Duration::from_secs(60),
            max_answer: 4 << 20,
        }
    }
}

/// The web ports relayed to: dca-core's defaults and `extra` (the
/// configuration's `web_ports`, `dca run --web-port`).
pub fn ports(extra: &[u16]) -> Vec<u16> {
    let mut all: Vec<u16> = web_access::DEFAULT_PORTS.to_vec();
    all.extend_from_slice(extra);
    all.sort_unstable();
    all.dedup();
    all
}

/// A clock counting from now.
pub fn clock() -> Clock {
    let start = std::time::Instant::now();
    Arc::new(move || {
        Instant::from_millis(u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX))
    })
}

/// What the agent needs to open relays, and the sessions it relays now.
pub struct WebAccess {
    ports: Vec<u16>,
    connect: Connector,
    identity: IdentityReader,
    pub limits: Limits,
    active: Arc<Mutex<BTreeSet<u64>>>,
}

impl std::fmt::Debug for WebAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebAccess")
            .field("ports", &self.ports)
            .field("limits", &self.limits)
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}

/// Takes a session off the active list when its thread ends, however.
struct Active {
    set: Arc<Mutex<BTreeSet<u64>>>,
    session: u64,
}

impl Drop for Active {
    fn drop(&mut self) {
        self.set
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.session);
    }
}

impl WebAccess {
    /// Relays to the default web ports and `extra_ports`, over connections
    /// `connect` makes, checking devices with `identity`.
    pub fn new(extra_ports: &[u16], connect: Connector, identity: IdentityReader) -> WebAccess {
        WebAccess {
            ports: ports(extra_ports),
            connect,
            identity,
            limits: Limits::default(),
            active: Arc::default(),
        }
    }

    /// Sessions being relayed now.
    #[cfg(test)]
    pub fn active(&self) -> Vec<u64> {
        let set = self.active.lock().unwrap_or_else(|p| p.into_inner());
        set.iter().copied().collect()
    }

    /// Starts relaying `opening` on a thread of its own, with the agent's
    /// `authorization`: the task's result detail, or why it was refused
    /// (then nothing was started, and no connection made).
    pub fn open(
        &self,
        opening: Opening,
        authorization: String,
        log: Log,
    ) -> Result<String, String> {
        let session = opening.session;
        let target = opening.target;
        if !opening.port_allowed(&self.ports) {
            let list: Vec<String> = self.ports.iter().map(u16::to_string).collect();
            return Err(format!(
                "{} ({target}; it relays to {})",
                Refusal::Port.reason(),
                list.join(", ")
            ));
        }
        let active = {
            let mut set = self.active.lock().unwrap_or_else(|p| p.into_inner());
            if set.contains(&session) {
                return Err(format!(
                    "web access session {session} is being relayed already"
                ));
            }
            if set.len() >= MAX_SESSIONS {
                return Err(format!(
                    "{MAX_SESSIONS} web access sessions are open, the most this agent relays at once"
                ));
            }
            set.insert(session);
            Active {
                set: self.active.clone(),
                session,
            }
        };
        let start = format!(
            "web access session {session}: relaying to {}://{target} (device serial {}) \
             for {} s at most",
            opening.scheme(),
            opening.serial.as_str(),
            opening.ttl.millis() / 1000
        );
        let relay = Relay {
            opening,
            authorization,
            link: (self.connect)(),
            identity: self.identity.clone(),
            ports: self.ports.clone(),
            moved_from: None,
            limits: self.limits,
            clock: clock(),
            log,
        };
        std::thread::Builder::new()
            .name(format!("web-access-{session}"))
            .spawn(move || {
                let _active = active;
                log.info(start);
                let end = relay.run();
                let line = format!("web access session {session} ended: {end}");
                match end {
                    Ended::Closed | Ended::Window => log.info(line),
                    _ => log.warn(line),
                }
            })
            .map_err(|e| format!("cannot start the relay: {e}"))?;
        Ok(format!("web access session {session} relaying to {target}"))
    }
}
