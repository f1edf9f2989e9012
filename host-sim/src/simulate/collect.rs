//! One collection of a site, on the virtual LAN: the real core [`Scan`]
//! (discovery, then the walker in its slots) against the site's emulated
//! printers answering through [`crate::agent::respond`], in-process and
//! with no real delays, while virtual time advances by the LAN's latencies
//! and the scan's own timeouts. Readings go into core's [`BatchWriter`].
//!
//! A collection involves nothing but the site and its printers, so it runs
//! to its end when it starts, on a clock of its own that begins at the
//! world's time; the agent takes its batches at the time it ends (and a
//! crash before then loses them, as it would lose a sweep under way).

use super::clock::Millis;
use super::net::{Fate, Lan, LanFaults};
use crate::agent::{Behaviour, Reply, View, respond};
use crate::generate::Generated;
use dca_core::poll::scan::slots;
use dca_core::poll::{Event, Scan, ScanConfig, Target, addresses};
use dca_core::sync::Clock;
use dca_core::sync::batch::{BatchId, BatchWriter, Refused};
use dca_core::time::{Duration, Instant};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Printers per /24 of a site.
const PER_BLOCK: usize = 200;
/// Addresses at the end of each block with nothing behind them.
const EMPTY_PER_BLOCK: u32 = 2;
/// Readings per batch at most.
pub const BATCH_READINGS: u64 = 40;
/// Bytes per batch at most (the journal record).
pub const BATCH_BYTES: usize = 128 * 1024;

/// Datagrams on the wire: (arrival, order sent, from, bytes).
type Wire = BinaryHeap<Reverse<(Millis, u64, SocketAddr, Vec<u8>)>>;

/// One printer of a site.
#[allow(missing_debug_implementations)] // generated printers are large
pub struct SitePrinter {
    pub ip: Ipv4Addr,
    pub device: Generated,
    /// Its counters fall back after an hour (an injected fault).
    pub backwards: bool,
}

/// An agent's site: its printers on addresses of their own.
#[allow(missing_debug_implementations)]
pub struct Site {
    net: u8,
    pub printers: Vec<SitePrinter>,
    behaviour: Behaviour,
}

/// A sealed batch: the journal record and its id.
#[derive(Debug, Clone)]
pub struct Sealed {
    pub id: BatchId,
    pub record: Vec<u8>,
}

/// What a collection did.
#[derive(Debug, Default)]
pub struct Collection {
    pub end: Millis,
    pub batches: Vec<Sealed>,
    pub walked: u64,
    pub failed: u64,
    pub datagrams: u64,
}

/// Which devices to collect from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    All,
    One(IpAddr),
}

/// The clock readings carry: the agent's boot and the world's time.
#[derive(Debug, Clone, Copy)]
pub struct Boot {
    pub id: [u8; 16],
    /// When the agent process started, in world time.
    pub at: Millis,
    /// World time 0 on the wall clock (ms since the epoch).
    pub epoch_ms: u64,
}

impl Boot {
    pub fn clock(&self, now: Millis) -> Clock {
        Clock {
            wall_ms: Some(self.epoch_ms + now),
            boot_id: self.id,
            mono_ms: now - self.at,
        }
    }
}

impl Site {
    /// Site `index` (at most 254) with these printers.
    pub fn new(index: usize, devices: Vec<(Generated, bool)>) -> Site {
        let net = u8::try_from(index + 1).unwrap_or(255);
        let printers = devices
            .into_iter()
            .enumerate()
            .map(|(i, (device, backwards))| SitePrinter {
                ip: Ipv4Addr::new(10, net, (i / PER_BLOCK) as u8, (i % PER_BLOCK) as u8 + 1),
                device,
                backwards,
            })
            .collect();
        Site {
            net,
            printers,
            behaviour: Behaviour::default(),
        }
    }

    /// Every printer's block, with a few empty addresses after them.
    fn targets(&self) -> Vec<Target> {
        let blocks = self.printers.len().div_ceil(PER_BLOCK);
        (0..blocks)
            .map(|b| {
                let n = (self.printers.len() - b * PER_BLOCK).min(PER_BLOCK) as u32;
                let base = u32::from(Ipv4Addr::new(10, self.net, b as u8, 0));
                Target::V4 {
                    first: base + 1,
                    last: base + n + EMPTY_PER_BLOCK,
                }
            })
            .collect()
    }

    fn printer(&self, ip: IpAddr) -> Option<&SitePrinter> {
        let IpAddr::V4(v4) = ip else { return None };
        let [a, b, c, d] = v4.octets();
        if a != 10 || b != self.net || d == 0 || usize::from(d) > PER_BLOCK {
            return None;
        }
        self.printers
            .get(usize::from(c) * PER_BLOCK + usize::from(d) - 1)
    }

    /// Collects from `scope` starting at `start`; the LAN's dice come from
    /// `seed`.
    pub fn collect(
        &self,
        scope: Scope,
        start: Millis,
        boot: Boot,
        seed: u64,
        lan: LanFaults,
    ) -> Collection {
        let mut lan = Lan::new(seed, lan);
        let targets = match scope {
            Scope::All => self.targets(),
            Scope::One(ip) => vec![Target::Single(ip)],
        };
        let mut cfg = ScanConfig::new(&[b"public"], 161);
        cfg.probe_timeout = Duration::from_millis(1000);
        cfg.probe_retries = 2;
        cfg.walk.timeout = Duration::from_millis(1000);
        cfg.walk.retries = 3;
        let mut walk_slots = slots(64);
        let mut scan: Scan<'_, _, 1024> = Scan::new(
            cfg,
            addresses(&targets, &[]),
            &mut walk_slots,
            Instant::from_millis(start),
        );
        let mut out = Collection::default();
        let mut batch_buf = vec![0u8; BATCH_BYTES];
        let mut writer = BatchWriter::new(&mut batch_buf, BATCH_READINGS);
        let mut wire: Wire = BinaryHeap::new();
        let mut order = 0u64;
        let mut buf = [0u8; 1500];
        let mut now = start;
        let (mut sent, mut delivered) = (0u64, false);
        let seal = |w: &mut BatchWriter<'_>, out: &mut Collection| {
            if !w.is_empty() {
                let (record, id) = w.seal();
                out.batches.push(Sealed {
                    id,
                    record: record.to_vec(),
                });
            }
        };
        // Bounded: a scan ends within its deadlines; this is far beyond.
        for _ in 0..10_000_000u64 {
            let at = Instant::from_millis(now);
            scan.handle_timeout(at);
            while let Some((to, n)) = scan.poll_transmit(at, &mut buf) {
                out.datagrams += 1;
                let Some(p) = self.printer(to.ip()) else {
                    continue;
                };
                let delays = match lan.datagram() {
                    Fate::Lost => continue,
                    Fate::Delivered(d) => [Some(d), None],
                    Fate::Twice(a, b) => [Some(a), Some(b)],
                };
                for d in delays.into_iter().flatten() {
                    // The printer answers when the request arrives.
                    let t_s = (now + d) / 1000;
                    let g = &p.device;
                    let eval = |x| g.printer.eval(x, t_s);
                    let view = View {
                        template: &g.template,
                        eval: &eval,
                    };
                    if let Reply::Send(bytes) = respond(&view, &self.behaviour, &buf[..n]) {
                        let back = match lan.datagram() {
                            Fate::Lost => continue,
                            Fate::Delivered(b) | Fate::Twice(b, _) => b,
                        };
                        order += 1;
                        wire.push(Reverse((now + d + back, order, to, bytes)));
                    }
                }
            }
            while let Some(e) = scan.poll_event() {
                match e {
                    Event::Walked { slot } => {
                        let Some((addr, snap)) = scan.take_snapshot(slot) else {
                            continue;
                        };
                        if !snap.is_printer() {
                            continue;
                        }
                        out.walked += 1;
                        let clock = boot.clock(now);
                        let address = addr.ip().to_string();
                        match writer.push(&snap, &clock, Some(&address)) {
                            Ok(()) => {}
                            Err(Refused::Full) => {
                                seal(&mut writer, &mut out);
                                // An empty batch has room for any reading
                                // that is not too large on its own.
                                let _ = writer.push(&snap, &clock, Some(&address));
                            }
                            Err(_) => out.failed += 1,
                        }
                    }
                    Event::WalkFailed(..) => out.failed += 1,
                }
            }
            if scan.is_finished() {
                break;
            }
            let next_wire = wire.peek().map(|Reverse(w)| w.0);
            let next_timer = scan.poll_timeout().map(|t| t.millis());
            let next = match (next_wire, next_timer) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => a.or(b).unwrap_or(now + 1),
            };
            if next > now {
                now = next;
            } else if sent == out.datagrams && !delivered {
                // A timer that is due but changes nothing: move on.
                now += 1;
            }
            delivered = false;
            sent = out.datagrams;
            while let Some(Reverse(w)) = wire.peek() {
                if w.0 > now {
                    break;
                }
                let Some(Reverse((_, _, from, mut bytes))) = wire.pop() else {
                    break;
                };
                delivered = true;
                scan.handle_datagram(Instant::from_millis(now), from, &mut bytes);
            }
        }
        seal(&mut writer, &mut out);
        out.end = now;
        out
    }
}
