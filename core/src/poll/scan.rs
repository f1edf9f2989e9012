//! Discovery and polling of many devices over one socket, sans I/O.
//!
//! Each address gets a cheap probe (a GET of sysObjectID.0 in v2c and v1,
//! or SNMPv3's engine discovery), with retries and each configured
//! credential set in turn; the set that answers is kept for that device,
//! and if its walk is refused for a security reason, the next set is
//! walked. Answering devices are walked (the [`Walker`]) in
//! one of the slots the caller provides, and qualify as printers by the
//! model's rule when the walk ends. Probes go out at a configurable rate,
//! with a cap on probes in flight; answers are routed by the address they
//! come from, and anything unexpected is counted and ignored.

use super::credentials::Credentials;
use super::walk::{WalkConfig, WalkError, WalkState, Walker};
use crate::ber::OidBuf;
use crate::printer::plan::Plan;
use crate::printer::{Snapshot, SnapshotBuilder};
use crate::snmp::{CommunityMessage, Message, Pdu, PduType, Pdus, VarBind, Version};
use crate::time::{Duration, Instant};
use core::net::{IpAddr, SocketAddr};
use heapless::{Deque, Vec};

/// sysObjectID.0: every SNMP agent has it.
const PROBE_OID: &[u32] = &[1, 3, 6, 1, 2, 1, 1, 2, 0];

#[derive(Debug, Clone)]
pub struct ScanConfig {
    /// Tried in order on each address; the first that answers is kept.
    pub credentials: Vec<Credentials, 8>,
    pub port: u16,
    pub probe_timeout: Duration,
    pub probe_retries: u8,
    /// Probes per second; 0 for no limit.
    pub rate: u32,
    /// Probes in flight at most (also bounded by the `PROBES` capacity).
    pub max_in_flight: usize,
    /// How each device is walked (its credentials are set per device).
    pub walk: WalkConfig,
    /// What each walk reads.
    pub plan: Plan,
    /// Seeds each walk's request-ids (SNMPv3's msgIDs) and privacy salts:
    /// random in the field, so that they cannot be guessed or repeat from
    /// one sweep to the next.
    pub seed: u64,
}

impl ScanConfig {
    /// v2c communities (each falls back to v1 by itself).
    pub fn new(communities: &[&[u8]], port: u16) -> Self {
        let mut list = Vec::new();
        for c in communities {
            let _ = list.push(Credentials::community(c));
        }
        Self::with_credentials(list, port)
    }

    pub fn with_credentials(credentials: Vec<Credentials, 8>, port: u16) -> Self {
        Self {
            credentials,
            port,
            probe_timeout: Duration::from_millis(1000),
            probe_retries: 1,
            rate: 0,
            max_in_flight: usize::MAX,
            walk: WalkConfig::new(b"public"),
            plan: Plan::Full,
            seed: 0,
        }
    }
}

/// A walk slot the caller provides: a device being walked, or room for
/// one. A slot is reused where it lies for device after device (it is tens
/// of KiB, which a small device cannot move across its stack).
#[derive(Debug)]
pub struct WalkSlot {
    /// A device occupies the slot (walking, or walked and not yet taken).
    busy: bool,
    addr: SocketAddr,
    /// Index of the credential set being walked with.
    credential: u8,
    walker: Walker,
    builder: SnapshotBuilder,
}

impl WalkSlot {
    pub fn new() -> Self {
        Self {
            busy: false,
            addr: SocketAddr::new(IpAddr::V4(core::net::Ipv4Addr::UNSPECIFIED), 0),
            credential: 0,
            walker: Walker::idle(),
            builder: SnapshotBuilder::new(),
        }
    }

    fn busy(&self) -> Option<&Self> {
        self.busy.then_some(self)
    }

    fn busy_mut(&mut self) -> Option<&mut Self> {
        self.busy.then_some(self)
    }
}

impl Default for WalkSlot {
    fn default() -> Self {
        Self::new()
    }
}

/// What happened to a device that answered. (Addresses that never answer
/// are only counted: a /16 sweep has tens of thousands of them.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The walk ended: take the snapshot of `slot` (printer or not).
    Walked { slot: usize },
    /// The device answered the probe but its walk failed.
    WalkFailed(SocketAddr, WalkError),
}

/// Counts for a progress bar and the final summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanStats {
    pub probed: u64,
    pub answered: u64,
    pub walked: u64,
    pub unreachable: u64,
    pub failed: u64,
    /// Datagrams from addresses or with request-ids we did not expect.
    pub ignored: u64,
}

#[derive(Debug, Clone)]
struct Probe {
    addr: SocketAddr,
    credential: u8,
    attempt: u8,
    request_id: i32,
    expires: Instant,
    /// Datagrams of this attempt still to send: a community attempt asks
    /// in v2c and in v1 at once, since v1-only printers ignore v2c and a
    /// few devices have v1 switched off; either answer proves an agent.
    /// A v3 attempt sends one discovery request.
    to_send: u8,
}

/// A scan over `targets`, with `PROBES` probes in flight at most and one
/// walk per slot of `slots` (at most `SLOTS`: the event queue holds one event
/// per slot; a device with little RAM names its few).
pub struct Scan<'s, I: Iterator<Item = IpAddr>, const PROBES: usize, const SLOTS: usize = 1024> {
    cfg: ScanConfig,
    targets: I,
    targets_done: bool,
    /// Probes in flight. Those with datagrams still to send are always the
    /// last `pending` entries, so finding the next one costs nothing even
    /// with tens of thousands in flight.
    probes: Vec<Probe, PROBES>,
    pending: usize,
    /// Devices that answered, waiting for a walk slot. As large as the
    /// probe table: probes in flight plus waiting devices never exceed it,
    /// so every answer finds room.
    waiting: Deque<(SocketAddr, u8), PROBES>,
    slots: &'s mut [WalkSlot],
    /// Probes in flight and busy slots per bucket of their addresses: a
    /// datagram from an address whose bucket is empty is nobody's, and is
    /// dropped at once instead of being searched for (a flood of stray
    /// datagrams must not cost a search of every probe each).
    expected: [u32; PROBES],
    events: Deque<Event, SLOTS>,
    next_probe_at: Instant,
    window_start: Instant,
    window_count: u32,
    next_request_id: i32,
    stats: ScanStats,
}

impl<I: Iterator<Item = IpAddr>, const PROBES: usize, const SLOTS: usize> core::fmt::Debug
    for Scan<'_, I, PROBES, SLOTS>
{
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Scan")
            .field("stats", &self.stats)
            .field("in_flight", &self.probes.len())
            .field("waiting", &self.waiting.len())
            .field("walking", &self.slots.iter().filter(|w| w.busy).count())
            .finish()
    }
}

impl<'s, I: Iterator<Item = IpAddr>, const PROBES: usize, const SLOTS: usize>
    Scan<'s, I, PROBES, SLOTS>
{
    pub fn new(cfg: ScanConfig, targets: I, slots: &'s mut [WalkSlot], now: Instant) -> Self {
        // Slots beyond SLOTS would have no room for their events: unused.
        let (slots, _) = slots.split_at_mut(slots.len().min(SLOTS));
        Self {
            cfg,
            targets,
            targets_done: false,
            probes: Vec::new(),
            pending: 0,
            waiting: Deque::new(),
            slots,
            expected: [0; PROBES],
            events: Deque::new(),
            next_probe_at: now,
            window_start: now,
            window_count: 0,
            next_request_id: 0x4000_0000,
            stats: ScanStats::default(),
        }
    }

    pub fn stats(&self) -> ScanStats {
        self.stats
    }

    /// True once every target was probed and every walk ended.
    pub fn is_finished(&self) -> bool {
        self.targets_done
            && self.probes.is_empty()
            && self.waiting.is_empty()
            && self.slots.iter().all(|w| !w.busy)
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn push_event(&mut self, e: Event) {
        // At most one event per walk slot is pending between two drains of
        // the shell (a slot is reused only after its snapshot is taken),
        // so the queue has room while slots number at most its capacity.
        let _ = self.events.push_back(e);
    }

    /// Takes the snapshot of a finished walk and frees its slot.
    pub fn take_snapshot(&mut self, slot: usize) -> Option<(SocketAddr, Snapshot)> {
        self.finish_walk(slot)
            .map(|(addr, snap)| (addr, snap.clone()))
    }

    /// The same, lent where it was built: a device with little RAM keeps
    /// no snapshot besides its walk slots. The slot is free again; the
    /// snapshot stays readable until the scan next runs.
    pub fn finish_walk(&mut self, slot: usize) -> Option<(SocketAddr, &Snapshot)> {
        let w = self
            .slots
            .get_mut(slot)?
            .busy_mut()
            .filter(|w| w.walker.state() == WalkState::Done)?;
        w.busy = false;
        expect(&mut self.expected, w.addr, false);
        Some((w.addr, w.builder.finish_in_place()))
    }

    /// The credential set a device was walked with (its index in the
    /// configuration, and the set) and its walker (the version it spoke,
    /// its statistics). Read it before the slot is freed.
    pub fn walk_of(&self, slot: usize) -> Option<(usize, &Credentials, &Walker)> {
        let w = self.slots.get(slot)?.busy()?;
        let i = usize::from(w.credential);
        self.cfg.credentials.get(i).map(|c| (i, c, &w.walker))
    }

    fn request_id(&mut self) -> i32 {
        self.next_request_id = self.next_request_id.wrapping_add(1) | 0x4000_0000;
        self.next_request_id
    }

    /// The next datagram to send and where; `None` when nothing is due.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<(SocketAddr, usize)> {
        self.fill_slots(now);
        for w in self.slots.iter_mut().filter(|w| w.busy) {
            if let Some(n) = w.walker.poll_transmit(now, buf) {
                return Some((w.addr, n));
            }
        }
        if self.pending > 0 {
            let i = self.probes.len().saturating_sub(self.pending);
            return self.send_probe(i, now, buf);
        }
        self.start_probe(now, buf)
    }

    fn start_probe(&mut self, now: Instant, buf: &mut [u8]) -> Option<(SocketAddr, usize)> {
        // Probes in flight plus answered devices waiting for a walk slot
        // never exceed the probe table, so every answer finds room.
        let room = self.probes.len().saturating_add(self.waiting.len()) < PROBES;
        if self.targets_done
            || !room
            || self.probes.len() >= self.cfg.max_in_flight
            || now < self.next_probe_at
        {
            return None;
        }
        let Some(ip) = self.targets.next() else {
            self.targets_done = true;
            return None;
        };
        let request_id = self.request_id();
        let probe = Probe {
            addr: SocketAddr::new(ip, self.cfg.port),
            credential: 0,
            attempt: 0,
            request_id,
            expires: now,
            to_send: datagrams_per_attempt(&self.cfg.credentials, 0),
        };
        let addr = probe.addr;
        if self.probes.push(probe).is_err() {
            return None;
        }
        expect(&mut self.expected, addr, true);
        self.pending = self.pending.saturating_add(1);
        self.stats.probed = self.stats.probed.saturating_add(1);
        if self.cfg.rate > 0 {
            // At most `rate` probes in each second-long window.
            if now.saturating_since(self.window_start) >= Duration::from_secs(1) {
                self.window_start = now;
                self.window_count = 0;
            }
            self.window_count = self.window_count.saturating_add(1);
            if self.window_count >= self.cfg.rate {
                self.next_probe_at = self.window_start.saturating_add(Duration::from_secs(1));
            }
        }
        self.send_probe(self.probes.len().saturating_sub(1), now, buf)
    }

    fn send_probe(
        &mut self,
        i: usize,
        now: Instant,
        buf: &mut [u8],
    ) -> Option<(SocketAddr, usize)> {
        let timeout = self.cfg.probe_timeout;
        let max_size = i32::from(self.cfg.walk.max_message_size);
        let p = self.probes.get_mut(i)?;
        let n = match self.cfg.credentials.get(usize::from(p.credential))? {
            Credentials::Community { community, .. } => {
                let oid = OidBuf::<16>::from_arcs(PROBE_OID).ok()?;
                let vbs = [VarBind::null(oid.as_oid_ref())];
                let version = if p.to_send >= 2 {
                    Version::V2c
                } else {
                    Version::V1
                };
                let msg = CommunityMessage {
                    version,
                    community,
                    pdu: Pdus::Pdu(Pdu::new(PduType::GetRequest, p.request_id, &vbs[..])),
                };
                msg.encode(buf).ok()?
            }
            #[cfg(feature = "usm")]
            Credentials::Usm(_) => {
                crate::snmp::usm::discovery_request(buf, p.request_id, max_size).ok()?
            }
        };
        let _ = max_size;
        p.to_send = p.to_send.saturating_sub(1);
        p.expires = now.saturating_add(timeout);
        let addr = p.addr;
        if p.to_send == 0 {
            self.pending = self.pending.saturating_sub(1);
        }
        Some((addr, n))
    }

    /// Starts walks of answered devices in free slots.
    fn fill_slots(&mut self, now: Instant) {
        for (i, slot) in self.slots.iter_mut().enumerate() {
            if slot.busy {
                continue;
            }
            let Some((addr, credential)) = self.waiting.pop_front() else {
                break;
            };
            slot.busy = true;
            slot.addr = addr;
            expect(&mut self.expected, addr, true);
            Self::start_walk(&self.cfg, i, slot, credential, now);
        }
    }

    fn start_walk(cfg: &ScanConfig, i: usize, slot: &mut WalkSlot, credential: u8, now: Instant) {
        let mut walk = cfg.walk.clone();
        if let Some(c) = cfg.credentials.get(usize::from(credential)) {
            walk.credentials = c.clone();
        }
        // Distinct per slot, set and moment, unguessable with a random seed.
        let seed = crate::mix::mix(
            cfg.seed
                ^ (i as u64).wrapping_mul(crate::mix::GOLDEN_GAMMA)
                ^ (u64::from(credential) << 56)
                ^ now.millis().rotate_left(24),
        ) as i32;
        slot.credential = credential;
        slot.walker.restart(walk, cfg.plan.reads(), seed, now);
        slot.builder.reset();
    }

    /// A datagram from `from` (changed in place: v3 answers are checked
    /// and decrypted where they lie).
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, bytes: &mut [u8]) {
        if !expecting(&self.expected, from) {
            self.stats.ignored = self.stats.ignored.saturating_add(1);
            return;
        }
        if let Some((i, w)) = self
            .slots
            .iter_mut()
            .enumerate()
            .find_map(|(i, s)| s.busy_mut().filter(|w| w.addr == from).map(|w| (i, w)))
        {
            let before = w.walker.stats().ignored;
            w.walker.handle_datagram(now, bytes, &mut w.builder);
            if w.walker.stats().ignored > before {
                self.stats.ignored = self.stats.ignored.saturating_add(1);
            }
            self.check_walk(i, now);
            return;
        }
        let Some(i) = self.probes.iter().position(|p| p.addr == from) else {
            self.stats.ignored = self.stats.ignored.saturating_add(1);
            return;
        };
        let answered = match (Message::decode(bytes), self.probes.get(i)) {
            (Ok(Message::Community(m)), Some(p)) => match m.pdu {
                Pdus::Pdu(pdu) => pdu.ty == PduType::Response && pdu.request_id == p.request_id,
                Pdus::TrapV1(_) => false,
            },
            // Discovery's Report (it carries our msgID) proves a v3 agent;
            // whether the user is right, the walk finds out.
            (Ok(Message::V3(m)), Some(p)) => m.header.msg_id == p.request_id,
            _ => false,
        };
        if !answered {
            self.stats.ignored = self.stats.ignored.saturating_add(1);
            return;
        }
        // Keep the pending probes at the end: a cheap swap only when no
        // datagram is pending, an order-keeping removal otherwise.
        let p = if self.pending == 0 {
            self.probes.swap_remove(i)
        } else {
            self.probes.remove(i)
        };
        if p.to_send > 0 {
            self.pending = self.pending.saturating_sub(1);
        }
        expect(&mut self.expected, p.addr, false);
        self.stats.answered = self.stats.answered.saturating_add(1);
        // Room is guaranteed by start_probe's bound.
        let _ = self.waiting.push_back((p.addr, p.credential));
        self.fill_slots(now);
    }

    fn check_walk(&mut self, i: usize, now: Instant) {
        #[cfg(not(feature = "usm"))]
        let _ = now;
        let Some(w) = self.slots.get(i).and_then(WalkSlot::busy) else {
            return;
        };
        match w.walker.state() {
            WalkState::Running => {}
            WalkState::Done => {
                self.stats.walked = self.stats.walked.saturating_add(1);
                self.push_event(Event::Walked { slot: i });
            }
            #[cfg(feature = "usm")]
            WalkState::Failed(WalkError::Usm(_))
                if usize::from(w.credential).saturating_add(1) < self.cfg.credentials.len() =>
            {
                // Refused for a security reason: the next set may be the
                // right one for this device.
                let next = w.credential.saturating_add(1);
                if let Some(slot) = self.slots.get_mut(i) {
                    Self::start_walk(&self.cfg, i, slot, next, now);
                }
            }
            WalkState::Failed(e) => {
                let addr = w.addr;
                if let Some(s) = self.slots.get_mut(i) {
                    s.busy = false;
                }
                expect(&mut self.expected, addr, false);
                self.stats.failed = self.stats.failed.saturating_add(1);
                self.push_event(Event::WalkFailed(addr, e));
            }
        }
    }

    /// When [`Scan::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let probes = self
            .probes
            .iter()
            .filter(|p| p.to_send == 0)
            .map(|p| p.expires);
        let walks = self
            .slots
            .iter()
            .filter(|w| w.busy)
            .filter_map(|w| w.walker.poll_timeout());
        let next_probe = (!self.targets_done).then_some(self.next_probe_at);
        probes.chain(walks).chain(next_probe).min()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        // Expired probes are retried, moved to the next community, or given
        // up; only while nothing is pending, so that the retried ones can
        // be moved to the end with the pending ones.
        if self.pending == 0 && self.probes.iter().any(|p| now >= p.expires) {
            const GONE: u8 = u8::MAX;
            let (retries, sets) = (self.cfg.probe_retries, self.cfg.credentials.len());
            let per_attempt = |c: u8| datagrams_per_attempt(&self.cfg.credentials, c);
            for p in self.probes.iter_mut().filter(|p| now >= p.expires) {
                if p.attempt < retries {
                    p.attempt = p.attempt.saturating_add(1);
                    p.to_send = per_attempt(p.credential);
                } else if usize::from(p.credential).saturating_add(1) < sets {
                    p.credential = p.credential.saturating_add(1);
                    p.attempt = 0;
                    p.to_send = per_attempt(p.credential);
                } else {
                    p.to_send = GONE;
                }
            }
            let before = self.probes.len();
            for p in self.probes.iter().filter(|p| p.to_send == GONE) {
                expect(&mut self.expected, p.addr, false);
            }
            self.probes.retain(|p| p.to_send != GONE);
            let gone = before.saturating_sub(self.probes.len());
            self.stats.unreachable = self.stats.unreachable.saturating_add(gone as u64);
            crate::heapsort::sort_by_key(&mut self.probes, |p| p.to_send > 0);
            self.pending = self.probes.iter().filter(|p| p.to_send > 0).count();
        }
        for i in 0..self.slots.len() {
            if let Some(w) = self.slots.get_mut(i).and_then(WalkSlot::busy_mut)
                && w.walker.state() == WalkState::Running
            {
                w.walker.handle_timeout(now);
                self.check_walk(i, now);
            }
        }
        self.fill_slots(now);
    }
}

/// The bucket of `addr` in [`Scan`]'s `expected` table.
fn bucket(addr: SocketAddr, buckets: usize) -> usize {
    let ip = match addr.ip() {
        IpAddr::V4(a) => u64::from(u32::from(a)),
        IpAddr::V6(a) => {
            let n = u128::from(a);
            (n as u64) ^ ((n >> 64) as u64)
        }
    };
    let h = crate::mix::mix(ip ^ (u64::from(addr.port()) << 48));
    usize::try_from(h)
        .unwrap_or(0)
        .checked_rem(buckets)
        .unwrap_or(0)
}

/// Counts `addr` in or out of the expected table.
fn expect(expected: &mut [u32], addr: SocketAddr, coming: bool) {
    let b = bucket(addr, expected.len());
    if let Some(n) = expected.get_mut(b) {
        *n = if coming {
            n.saturating_add(1)
        } else {
            n.saturating_sub(1)
        };
    }
}

/// Whether anything in flight may have come from `addr`.
fn expecting(expected: &[u32], addr: SocketAddr) -> bool {
    expected
        .get(bucket(addr, expected.len()))
        .is_some_and(|n| *n > 0)
}

/// Datagrams a probe of credential set `c` sends per attempt.
fn datagrams_per_attempt(credentials: &[Credentials], c: u8) -> u8 {
    match credentials.get(usize::from(c)) {
        Some(Credentials::Community { .. }) | None => 2,
        #[cfg(feature = "usm")]
        Some(Credentials::Usm(_)) => 1,
    }
}

/// An empty slot table of `n` walk slots (host side: heap memory).
#[cfg(feature = "std")]
pub fn slots(n: usize) -> std::vec::Vec<WalkSlot> {
    (0..n).map(|_| WalkSlot::new()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::poll::targets::{Target, addresses};
    use crate::snmp::{Message, Value};
    use std::vec::Vec as StdVec;

    /// Answers a request as a device with no objects would: endOfMibView
    /// for walks, noSuchObject for GETs, sysObjectID for the probe.
    fn answer(request: &[u8]) -> Option<StdVec<u8>> {
        let Ok(Message::Community(m)) = Message::decode(request) else {
            return None;
        };
        let Pdus::Pdu(p) = m.pdu else { return None };
        let names: StdVec<VarBind<'_>> = p.varbinds.clone().flatten().collect();
        let value = match p.ty {
            PduType::GetRequest => Value::NoSuchObject,
            _ => Value::EndOfMibView,
        };
        let vbs: StdVec<VarBind<'_>> = names
            .iter()
            .map(|vb| VarBind::new(vb.name, value))
            .collect();
        let resp = CommunityMessage {
            version: m.version,
            community: m.community,
            pdu: Pdus::Pdu(Pdu::new(PduType::Response, p.request_id, &vbs[..])),
        };
        let mut out = std::vec![0u8; resp.encoded_len()];
        resp.encode(&mut out).ok()?;
        Some(out)
    }

    /// Runs a scan of `targets` (4 walk slots, 16 probes) to its end,
    /// bounded: devices for which `silent` holds never answer, and before
    /// each round's answers `strays` datagrams arrive from addresses
    /// nothing was sent to, plus one of garbage from each answering device.
    /// Returns the stats, the walks taken and the strays sent.
    #[allow(clippy::arithmetic_side_effects)] // test arithmetic, small numbers
    fn run(
        targets: &str,
        silent: impl Fn(&SocketAddr) -> bool,
        strays: u32,
    ) -> (ScanStats, u64, u64) {
        let targets = [Target::parse(targets).unwrap()];
        let mut slot_table: StdVec<WalkSlot> = (0..4).map(|_| WalkSlot::new()).collect();
        let mut scan: Scan<'_, _, 16> = Scan::new(
            ScanConfig::new(&[b"public"], 161),
            addresses(&targets, &[]),
            &mut slot_table,
            Instant::from_millis(0),
        );
        let mut buf = [0u8; 1500];
        let (mut walked, mut sent_strays) = (0u64, 0u64);
        for round in 0..20_000u64 {
            let now = Instant::from_millis(round * 10);
            let mut sent = StdVec::new();
            while let Some((to, n)) = scan.poll_transmit(now, &mut buf) {
                sent.push((to, buf[..n].to_vec()));
            }
            for i in 0..strays {
                let from =
                    SocketAddr::new(IpAddr::V4(core::net::Ipv4Addr::from(0x0a08_0000 + i)), 161);
                let mut junk = [0x30, 0x03, 0x02, 0x01, (i & 0x7f) as u8];
                scan.handle_datagram(now, from, &mut junk);
                sent_strays += 1;
            }
            for (to, req) in sent {
                if silent(&to) {
                    continue;
                }
                if strays > 0 {
                    scan.handle_datagram(now, to, &mut [0xff, 0x00]);
                    sent_strays += 1;
                }
                if let Some(mut resp) = answer(&req) {
                    scan.handle_datagram(now, to, &mut resp);
                }
            }
            scan.handle_timeout(now);
            while let Some(e) = scan.poll_event() {
                if let Event::Walked { slot } = e {
                    assert!(scan.take_snapshot(slot).is_some());
                    walked += 1;
                }
            }
            if scan.is_finished() {
                return (scan.stats(), walked, sent_strays);
            }
        }
        panic!("the scan did not end: {:?}", scan.stats());
    }

    /// More devices than probes in flight and walk slots: every device that
    /// answers is walked, none is lost in between.
    #[test]
    fn no_answered_device_is_lost() {
        let (s, walked, _) = run("10.9.0.1-10.9.0.100", |_| false, 0);
        assert_eq!(
            (s.probed, s.answered, s.walked, walked),
            (100, 100, 100, 100),
            "{s:?}"
        );
    }

    /// A flood of stray datagrams (from addresses nothing was sent to, and
    /// garbage from the devices themselves) between the answers: every
    /// device that answers is still walked, the silent ones still time
    /// out, and every stray is counted as ignored.
    #[test]
    fn a_flood_of_strays_changes_nothing() {
        // Addresses ending in 0 (mod 10) never answer.
        let silent = |to: &SocketAddr| match to.ip() {
            IpAddr::V4(a) => a.octets()[3] % 10 == 0,
            IpAddr::V6(_) => false,
        };
        let (s, walked, strays) = run("10.9.0.1-10.9.0.60", silent, 200);
        assert_eq!(
            (s.probed, s.answered, s.walked, walked, s.unreachable),
            (60, 54, 54, 54, 6),
            "{s:?}"
        );
        assert!(s.ignored >= strays, "{s:?} {strays}");
    }
}
