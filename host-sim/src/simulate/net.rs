//! The virtual network: the site LAN between an agent and its printers
//! (SNMP datagrams: loss, duplication, reordering by jitter), and the WAN
//! between agents and the cloud (request/response exchanges: a lost
//! request, an answer lost after the cloud committed, a request the cloud
//! processes twice, long delays, and partitions that cut an agent off).

use super::clock::Millis;
use crate::generate::Rng;

/// Fault rates of the WAN, in force while the world is in a storm.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WanFaults {
    /// Probability that an exchange loses its request or its answer (half
    /// each; an answer is lost after the cloud has committed).
    pub loss: f64,
    /// Probability that the cloud receives a request twice.
    pub dup: f64,
    /// Probability of a long delay (beyond the agent's timeout, at times).
    pub delay: f64,
}

/// Fault rates of the site LAN (SNMP), always in force.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LanFaults {
    pub loss: f64,
    pub dup: f64,
    /// Up to this many ms of extra delay per datagram, which reorders them.
    pub jitter_ms: u64,
}

/// What happens to one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    Lost,
    /// Arrives after this many ms.
    Delivered(Millis),
    /// Arrives twice, after each delay.
    Twice(Millis, Millis),
}

#[derive(Debug)]
pub struct Net {
    rng: Rng,
    wan: WanFaults,
    /// Whether the WAN faults are in force.
    storm: bool,
    /// Per agent: cut off from the cloud until then.
    cut_until: Vec<Millis>,
}

impl Net {
    pub fn new(seed: u64, agents: usize, wan: WanFaults) -> Self {
        Net {
            rng: Rng::new(seed),
            wan,
            storm: false,
            cut_until: vec![0; agents],
        }
    }

    pub fn set_storm(&mut self, on: bool) {
        self.storm = on;
    }

    pub fn partition(&mut self, agent: usize, until: Millis) {
        self.cut_until[agent] = self.cut_until[agent].max(until);
    }

    pub fn heal(&mut self, agent: usize) {
        self.cut_until[agent] = 0;
    }

    pub fn is_cut(&self, agent: usize, now: Millis) -> bool {
        self.cut_until[agent] > now
    }

    fn latency(&mut self) -> Millis {
        let base = self.rng.range(5, 80);
        if self.storm && self.wan.delay > 0.0 && self.rng.chance(self.wan.delay) {
            // Sometimes longer than the agent waits (30 s).
            base + self.rng.range(1_000, 60_000)
        } else {
            base
        }
    }

    /// The fate of a request from `agent` to the cloud.
    pub fn request(&mut self, agent: usize, now: Millis) -> Fate {
        if self.is_cut(agent, now) {
            return Fate::Lost;
        }
        if self.storm && self.rng.chance(self.wan.loss / 2.0) {
            return Fate::Lost;
        }
        let first = self.latency();
        if self.storm && self.wan.dup > 0.0 && self.rng.chance(self.wan.dup) {
            let second = first + self.rng.range(1, 2_000);
            return Fate::Twice(first, second);
        }
        Fate::Delivered(first)
    }

    /// The fate of the cloud's answer to `agent`.
    pub fn answer(&mut self, agent: usize, now: Millis) -> Fate {
        if self.is_cut(agent, now) {
            return Fate::Lost;
        }
        if self.storm && self.rng.chance(self.wan.loss / 2.0) {
            return Fate::Lost;
        }
        Fate::Delivered(self.latency())
    }

    /// Which of two answers to a duplicated request reaches the agent.
    pub fn pick_second(&mut self) -> bool {
        self.rng.chance(0.5)
    }
}

/// The LAN of one site, for one collection.
#[derive(Debug)]
pub struct Lan {
    rng: Rng,
    faults: LanFaults,
}

impl Lan {
    pub fn new(seed: u64, faults: LanFaults) -> Self {
        Lan {
            rng: Rng::new(seed),
            faults,
        }
    }

    fn delay(&mut self) -> Millis {
        let base = self.rng.range(1, 4);
        if self.faults.jitter_ms > 0 {
            base + self.rng.range(0, self.faults.jitter_ms + 1)
        } else {
            base
        }
    }

    /// The fate of one datagram (either direction).
    pub fn datagram(&mut self) -> Fate {
        if self.faults.loss > 0.0 && self.rng.chance(self.faults.loss) {
            return Fate::Lost;
        }
        let d = self.delay();
        if self.faults.dup > 0.0 && self.rng.chance(self.faults.dup) {
            return Fate::Twice(d, self.delay());
        }
        Fate::Delivered(d)
    }
}
