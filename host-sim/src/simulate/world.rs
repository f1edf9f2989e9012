//! The world of one seed: agents, the cloud, the networks, the fault
//! schedule, and the event loop that runs them on the virtual clock.
//!
//! Time alternates between storms, in which faults are injected at their
//! rates, and quiet periods, which begin once every fault has healed and
//! last long enough for any agent to deliver (twice the longest backoff and
//! one task interval); at the end of each the invariants are checked in
//! full. Safety invariants are also checked whenever a fault heals. The
//! last quiet period has no collections and ends as soon as every agent has
//! delivered its whole journal.

use super::agent::{Agent, Ctx, response_kind};
use super::clock::{Millis, Scheduler};
use super::cloud::Cloud;
use super::collect::Site;
use super::disk::SimDisk;
use super::invariants::Ledger;
use super::net::{Fate, Net};
use super::report::{FaultCounts, FaultKind, Profile, SeedReport, Trace, clock};
use super::{Config, EPOCH_MS};
use crate::generate::{Rng, fleet};
use crate::mib::{Dynamic, SimValue};
use dca_cloud::store::StoredReading;
use std::collections::BTreeSet;

const MINUTE: Millis = 60_000;
const HOUR: Millis = 60 * MINUTE;

/// Every event of the world.
#[derive(Debug)]
pub enum Ev {
    Wake {
        agent: usize,
        boot: u64,
        at: Millis,
    },
    Collected {
        agent: usize,
        boot: u64,
        id: u64,
    },
    /// Start (or restart) an agent's process.
    Restart {
        agent: usize,
    },
    /// Crash an agent now if the crash set for it has not come.
    Kill {
        agent: usize,
        boot: u64,
    },
    CloudRecv {
        agent: usize,
        boot: u64,
        xid: u64,
        body: Vec<u8>,
        auth: String,
    },
    Answer {
        agent: usize,
        boot: u64,
        xid: u64,
        status: u16,
        body: Vec<u8>,
    },
    /// The cloud is down: the connection is refused.
    Refused {
        agent: usize,
        boot: u64,
        xid: u64,
    },
    Timeout {
        agent: usize,
        boot: u64,
        xid: u64,
    },
    Fault(FaultKind),
    Heal(Heal),
    Snapshot,
    StormStart,
    StormEnd,
    QuietEnd {
        id: u64,
    },
}

#[derive(Debug, Clone, Copy)]
pub enum Heal {
    Partition(usize),
    CloudUp,
    Restore(usize),
    DiskFull(usize),
    DiskErrors(usize),
}

pub struct World<'c> {
    cfg: &'c Config,
    seed: u64,
    sched: Scheduler<Ev>,
    net: Net,
    cloud: Cloud,
    agents: Vec<Agent>,
    ledger: Ledger,
    trace: Trace,
    faults: FaultCounts,
    rng: Rng,
    storm: bool,
    storm_end: Millis,
    /// Faults that have not healed yet.
    active: u32,
    quiet: Option<(u64, Millis)>,
    quiet_seq: u64,
    final_phase: bool,
    end: Millis,
    finished: bool,
    partitioned: Vec<bool>,
    disk_full: Vec<bool>,
    disk_errors: Vec<bool>,
    crashing: Vec<bool>,
    notes: Vec<String>,
    profile: Profile,
    crash_sites: std::collections::BTreeMap<String, u64>,
}

impl std::fmt::Debug for World<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World")
            .field("seed", &self.seed)
            .field("now", &self.sched.now())
            .finish_non_exhaustive()
    }
}

pub fn customer_name(c: usize) -> String {
    format!("customer-{c}")
}

fn serial(g: &crate::generate::Generated) -> Vec<u8> {
    match g.printer.eval(Dynamic::Serial, 0) {
        Some(SimValue::Octets(s)) => s,
        _ => Vec::new(),
    }
}

fn mix(seed: u64, stream: u64) -> u64 {
    Rng::new(seed ^ stream.wrapping_mul(0xd1b5_4a32_d192_ed03)).next_u64()
}

impl<'c> World<'c> {
    pub fn new(cfg: &'c Config, seed: u64) -> Result<World<'c>, String> {
        let mut rng = Rng::new(mix(seed, 1));
        let mut cloud = Cloud::new(mix(seed, 2))?;
        cloud.set_time(EPOCH_MS);
        let customers = cfg.customers.clamp(1, cfg.agents.max(1));
        let mut serials: Vec<BTreeSet<Vec<u8>>> = vec![BTreeSet::new(); customers];
        let mut ledger = Ledger::new(customers);
        // The printers whose counters will go backwards.
        let total = cfg.agents * cfg.printers;
        let mut backwards = BTreeSet::new();
        let mut faults = FaultCounts::default();
        while backwards.len() < cfg.counters_backwards.min(total) {
            if backwards.insert(rng.range(0, total as u64) as usize) {
                faults.add(FaultKind::CountersBackwards);
            }
        }
        let mut agents = Vec::new();
        for a in 0..cfg.agents {
            let customer = a % customers;
            // Serial numbers unique within a customer, as real ones are.
            let mut fleet_seed = mix(seed, 100 + a as u64);
            let devices = loop {
                let f = fleet(cfg.printers, fleet_seed);
                let s: BTreeSet<Vec<u8>> = f.iter().map(serial).collect();
                if s.len() == f.len() && s.is_disjoint(&serials[customer]) {
                    serials[customer].extend(s);
                    break f;
                }
                fleet_seed = fleet_seed.wrapping_add(1);
            };
            let devices = devices
                .into_iter()
                .enumerate()
                .map(|(i, mut g)| {
                    let back = backwards.contains(&(a * cfg.printers + i));
                    if back {
                        g.printer.set_counter_faults(false, true);
                    }
                    (g, back)
                })
                .collect();
            let site = Site::new(a, devices);
            for p in site.printers.iter().filter(|p| p.backwards) {
                ledger.inject_backwards(a, p.ip.to_string());
            }
            let creds = cloud.enroll(&customer_name(customer), &format!("site-{a}"))?;
            let disk = SimDisk::new(cfg.disk_bytes, mix(seed, 200 + a as u64));
            agents.push(Agent::new(
                a,
                customer,
                site,
                creds,
                disk,
                mix(seed, 300 + a as u64),
            ));
        }
        let n = cfg.agents;
        Ok(World {
            cfg,
            seed,
            sched: Scheduler::new(),
            net: Net::new(mix(seed, 3), n, cfg.wan),
            cloud,
            agents,
            ledger,
            trace: Trace::new(cfg.trace),
            faults,
            rng,
            storm: false,
            storm_end: 0,
            active: 0,
            quiet: None,
            quiet_seq: 0,
            final_phase: false,
            end: (cfg.hours * HOUR as f64) as Millis,
            finished: false,
            partitioned: vec![false; n],
            disk_full: vec![false; n],
            disk_errors: vec![false; n],
            crashing: vec![false; n],
            notes: Vec::new(),
            profile: Profile::default(),
            crash_sites: Default::default(),
        })
    }

    /// How long a quiet period lasts: time for any agent to deliver.
    fn quiet_length(&self) -> Millis {
        // 2 x the longest backoff (15 min) and one task interval (5 min),
        // and a minute for the round itself.
        2 * 15 * MINUTE + 5 * MINUTE + MINUTE
    }

    fn with_agent<R>(&mut self, i: usize, f: impl FnOnce(&mut Agent, &mut Ctx<'_>) -> R) -> R {
        let mut ctx = Ctx {
            sched: &mut self.sched,
            net: &mut self.net,
            trace: &mut self.trace,
            ledger: &mut self.ledger,
            faults: &mut self.faults,
            cfg: self.cfg,
            final_phase: self.final_phase,
            profile: &mut self.profile,
            crash_sites: &mut self.crash_sites,
        };
        f(&mut self.agents[i], &mut ctx)
    }

    fn log(&mut self, what: std::fmt::Arguments<'_>) {
        let now = self.sched.now();
        self.trace.log(now, what);
    }

    pub fn run(mut self) -> SeedReport {
        let started = std::time::Instant::now();
        for a in 0..self.agents.len() {
            let at = self.rng.range(0, MINUTE);
            self.sched.at(at, Ev::Restart { agent: a });
        }
        self.sched.at(MINUTE, Ev::Snapshot);
        if self.end > 0 {
            self.sched.at((5 * MINUTE).min(self.end), Ev::StormStart);
        } else {
            self.begin_quiet(true);
        }
        // Bounded: far more events than any configuration makes.
        let limit = 200_000_000u64;
        let mut events = 0u64;
        while let Some(ev) = self.sched.pop() {
            events += 1;
            if events > limit {
                let now = self.sched.now();
                self.ledger.violation(
                    now,
                    None,
                    format!("the simulation did not end after {limit} events"),
                );
                break;
            }
            self.handle(ev);
            if self.finished {
                break;
            }
            if self.final_phase && self.agents.iter().all(|a| a.settled(&self.ledger)) {
                self.log(format_args!("final: every agent delivered its journal"));
                self.finish();
                break;
            }
        }
        if !self.finished {
            self.finish();
        }
        let l = &self.ledger;
        SeedReport {
            seed: self.seed,
            trace_hash: self.trace.hash(),
            events: self.trace.events(),
            faults: self.faults.clone(),
            checks: l.checks,
            readings_stored: l.stored_readings,
            batches: l.batches(),
            excused: l.excused.len() as u64,
            virtual_ms: self.sched.now(),
            real: started.elapsed(),
            flagged: l
                .flagged
                .iter()
                .map(|(c, d)| format!("{} {d}", customer_name(*c)))
                .collect(),
            violations: l.violations.clone(),
            notes: self.notes.iter().chain(&l.notes).cloned().collect(),
            profile: self.profile,
            crash_sites: self.crash_sites.clone(),
        }
    }

    fn finish(&mut self) {
        self.finished = true;
        if !self.cloud.is_up() {
            let _ = self.cloud.start();
        }
        self.check(Some(Millis::MAX));
    }

    fn handle(&mut self, ev: Ev) {
        let now = self.sched.now();
        match ev {
            Ev::Wake { agent, boot, at } => self.with_agent(agent, |a, c| a.on_wake(c, boot, at)),
            Ev::Collected { agent, boot, id } => {
                self.with_agent(agent, |a, c| a.on_collected(c, boot, id))
            }
            Ev::Restart { agent } => {
                let vanished = self.with_agent(agent, |a, c| a.start(c));
                if let Some(vanished) = vanished {
                    self.vanished(agent, &vanished);
                    if std::mem::take(&mut self.crashing[agent]) {
                        self.healed();
                    }
                }
            }
            Ev::Kill { agent, boot } => self.with_agent(agent, |a, c| a.kill(c, boot)),
            Ev::CloudRecv {
                agent,
                boot,
                xid,
                body,
                auth,
            } => self.cloud_recv(agent, boot, xid, &body, &auth),
            Ev::Answer {
                agent,
                boot,
                xid,
                status,
                body,
            } => self.with_agent(agent, |a, c| a.on_answer(c, boot, xid, status, &body)),
            Ev::Refused { agent, boot, xid } => self.with_agent(agent, |a, c| {
                a.on_transport_error(c, boot, xid, "connection refused")
            }),
            Ev::Timeout { agent, boot, xid } => self.with_agent(agent, |a, c| {
                a.on_transport_error(c, boot, xid, "timed out")
            }),
            Ev::Fault(kind) => self.inject(kind),
            Ev::Heal(h) => self.heal(h),
            Ev::Snapshot => {
                let started = std::time::Instant::now();
                if self.cloud.is_up() {
                    match self.cloud.snapshot(now) {
                        Ok(()) => self.log(format_args!(
                            "cloud snapshot {}",
                            self.cloud.snapshots() - 1
                        )),
                        Err(e) => self
                            .notes
                            .push(format!("t={} snapshot failed: {e}", clock(now))),
                    }
                }
                self.profile.snapshots += started.elapsed();
                self.sched
                    .after(self.cfg.snapshot_every_s * 1000, Ev::Snapshot);
            }
            Ev::StormStart => self.storm_start(),
            Ev::StormEnd => {
                self.storm = false;
                self.net.set_storm(false);
                self.log(format_args!("storm ends"));
                self.maybe_quiet();
            }
            Ev::QuietEnd { id } => self.quiet_end(id),
        }
    }

    fn cloud_recv(&mut self, agent: usize, boot: u64, xid: u64, body: &[u8], auth: &str) {
        let now = self.sched.now();
        if !self.cloud.is_up() {
            self.log(format_args!(
                "cloud a{agent} x{xid}: connection refused (down)"
            ));
            self.sched.after(20, Ev::Refused { agent, boot, xid });
            return;
        }
        self.cloud.set_time(EPOCH_MS + now);
        let remote = format!("10.{}.255.1", agent + 1);
        let started = std::time::Instant::now();
        let (status, answer) = self.cloud.exchange(body, Some(auth), &remote);
        self.profile.cloud += started.elapsed();
        let fate = self.net.answer(agent, now);
        self.log(format_args!(
            "cloud a{agent} x{xid}: {} answer {fate:?}",
            response_kind(status, &answer)
        ));
        match fate {
            Fate::Lost => self.faults.add(FaultKind::Loss),
            Fate::Delivered(d) | Fate::Twice(d, _) => {
                if d >= 1000 {
                    self.faults.add(FaultKind::Delay);
                }
                self.sched.after(
                    d,
                    Ev::Answer {
                        agent,
                        boot,
                        xid,
                        status,
                        body: answer,
                    },
                );
            }
        }
    }

    fn storm_start(&mut self) {
        let now = self.sched.now();
        if now >= self.end {
            self.begin_quiet(true);
            return;
        }
        self.storm = true;
        self.net.set_storm(true);
        self.storm_end = (now + self.rng.range(30 * MINUTE, 3 * HOUR)).min(self.end);
        let len_h = (self.storm_end - now) as f64 / HOUR as f64;
        let until = self.storm_end;
        self.log(format_args!("storm starts, until {until}"));
        let r = self.cfg.rates;
        for (kind, rate) in [
            (FaultKind::Partition, r.partitions),
            (FaultKind::CloudRestart, r.cloud_restarts),
            (FaultKind::Restore, r.restores),
            (FaultKind::Crash, r.crashes),
            (FaultKind::DiskFull, r.disk_full),
            (FaultKind::DiskErrors, r.disk_errors),
            (FaultKind::Reenroll, r.reenrolls),
            (FaultKind::Task, r.tasks),
        ] {
            if rate <= 0.0 {
                continue;
            }
            // Poisson arrivals at `rate` per hour.
            let mut t = 0.0f64;
            loop {
                let u = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
                t += -(1.0 - u).ln() / rate;
                if t >= len_h {
                    break;
                }
                self.sched
                    .at(now + (t * HOUR as f64) as Millis, Ev::Fault(kind));
            }
        }
        self.sched.at(self.storm_end, Ev::StormEnd);
    }

    fn maybe_quiet(&mut self) {
        if !self.storm && self.active == 0 && self.quiet.is_none() {
            let last = self.storm_end >= self.end;
            self.begin_quiet(last);
        }
    }

    fn begin_quiet(&mut self, last: bool) {
        let now = self.sched.now();
        self.quiet_seq += 1;
        self.quiet = Some((self.quiet_seq, now));
        self.final_phase = last;
        let id = self.quiet_seq;
        self.log(format_args!(
            "quiet period {id}{} starts",
            if last { " (final)" } else { "" }
        ));
        let len = self.quiet_length();
        self.sched.after(len, Ev::QuietEnd { id: self.quiet_seq });
    }

    fn quiet_end(&mut self, id: u64) {
        let Some((current, start)) = self.quiet else {
            return;
        };
        if current != id {
            return;
        }
        if self.final_phase {
            self.log(format_args!("final quiet period over"));
            self.finish();
            return;
        }
        self.log(format_args!("quiet period {id} over"));
        self.check(Some(start));
        self.quiet = None;
        if self.sched.now() >= self.end {
            self.begin_quiet(true);
        } else {
            self.storm_start();
        }
    }

    fn pick_agent(&mut self) -> usize {
        self.rng.range(0, self.agents.len() as u64) as usize
    }

    fn inject(&mut self, kind: FaultKind) {
        let now = self.sched.now();
        let a = self.pick_agent();
        match kind {
            FaultKind::Partition => {
                if self.partitioned[a] {
                    return;
                }
                let d = self.rng.range(MINUTE, 45 * MINUTE);
                self.net.partition(a, now + d);
                self.partitioned[a] = true;
                self.active += 1;
                self.sched.after(d, Ev::Heal(Heal::Partition(a)));
                self.log(format_args!("fault: a{a} cut off for {d} ms"));
            }
            FaultKind::CloudRestart => {
                if !self.cloud.is_up() {
                    return;
                }
                self.cloud.stop();
                self.active += 1;
                let d = self.rng.range(5_000, 120_000);
                self.sched.after(d, Ev::Heal(Heal::CloudUp));
                self.log(format_args!("fault: cloud stops for {d} ms"));
            }
            FaultKind::Restore => {
                let n = self.cloud.snapshots();
                if !self.cloud.is_up() || n == 0 {
                    return;
                }
                let which = n - 1 - self.rng.range(0, n.min(3) as u64) as usize;
                self.cloud.stop();
                self.active += 1;
                let d = self.rng.range(10_000, 120_000);
                self.sched.after(d, Ev::Heal(Heal::Restore(which)));
                self.log(format_args!(
                    "fault: cloud stops, to be restored from snapshot {which}"
                ));
            }
            FaultKind::Crash => {
                if self.crashing[a] || !self.agents[a].arm_crash(60) {
                    return;
                }
                self.crashing[a] = true;
                self.active += 1;
                let boot = self.agents[a].boot;
                // If the step it is set for does not come (no append, say),
                // it crashes between steps.
                self.sched.after(20 * MINUTE, Ev::Kill { agent: a, boot });
                self.log(format_args!("fault: a{a} will crash"));
            }
            FaultKind::DiskFull => {
                if self.disk_full[a] {
                    return;
                }
                let slack = self.rng.range(0, 4096);
                self.agents[a].disk_mut().fill(slack);
                self.disk_full[a] = true;
                self.active += 1;
                let d = self.rng.range(5 * MINUTE, 60 * MINUTE);
                self.sched.after(d, Ev::Heal(Heal::DiskFull(a)));
                self.log(format_args!("fault: a{a} disk full for {d} ms"));
            }
            FaultKind::DiskErrors => {
                if self.disk_errors[a] {
                    return;
                }
                self.agents[a].disk_mut().set_io_errors(0.25);
                self.disk_errors[a] = true;
                self.active += 1;
                let d = self.rng.range(MINUTE, 20 * MINUTE);
                self.sched.after(d, Ev::Heal(Heal::DiskErrors(a)));
                self.log(format_args!("fault: a{a} disk fails for {d} ms"));
            }
            FaultKind::Reenroll => {
                if !self.cloud.is_up() {
                    return;
                }
                let revoke = self.rng.chance(0.5);
                self.reenroll(a, revoke, "an administrator re-enrolls it");
            }
            FaultKind::Task => {
                if !self.cloud.is_up() {
                    return;
                }
                let agent = &self.agents[a];
                let (kind, arg) = match self.rng.range(0, 10) {
                    0..=3 => ("rescan", String::new()),
                    4 | 5 => {
                        let i = self.rng.range(0, agent.site.printers.len().max(1) as u64) as usize;
                        let ip = agent
                            .site
                            .printers
                            .get(i)
                            .map_or("10.0.0.1".into(), |p| p.ip.to_string());
                        ("poll_device", ip)
                    }
                    6 => ("set_schedule", self.cfg.interval_s.to_string()),
                    7 => ("set_log_level", "debug".into()),
                    8 => ("set_targets", format!("10.{}.0.0/24", a + 1)),
                    _ => ("reboot", String::new()),
                };
                let id = agent.creds.agent_id.clone();
                match self.cloud.create_task(&id, kind, &arg) {
                    Ok(t) => self.log(format_args!("fault: task {t} {kind} {arg:?} for a{a}")),
                    Err(e) => {
                        self.log(format_args!("fault: task for a{a} not created: {e}"));
                        return;
                    }
                }
            }
            // Counted where they happen.
            FaultKind::Loss | FaultKind::Dup | FaultKind::Delay | FaultKind::CountersBackwards => {
                return;
            }
        }
        self.faults.add(kind);
    }

    fn reenroll(&mut self, a: usize, revoke_old: bool, why: &str) {
        let customer = customer_name(self.agents[a].customer);
        let host = self.agents[a].hostname.clone();
        match self.cloud.enroll(&customer, &host) {
            Ok(creds) => {
                let old = std::mem::replace(&mut self.agents[a].creds, creds);
                if revoke_old {
                    let _ = self.cloud.revoke(&old.agent_id);
                }
                self.log(format_args!(
                    "a{a} re-enrolled ({why}){}",
                    if revoke_old {
                        ", old credentials revoked"
                    } else {
                        ""
                    }
                ));
            }
            Err(e) => {
                let now = self.sched.now();
                self.ledger
                    .violation(now, None, format!("a{a} cannot re-enroll: {e}"));
            }
        }
    }

    fn heal(&mut self, h: Heal) {
        let now = self.sched.now();
        match h {
            Heal::Partition(a) => {
                self.net.heal(a);
                self.partitioned[a] = false;
                self.log(format_args!("heal: a{a} reconnected"));
            }
            Heal::CloudUp => {
                if let Err(e) = self.cloud.start() {
                    self.ledger
                        .violation(now, None, format!("the cloud does not start: {e}"));
                }
                self.log(format_args!("heal: cloud up"));
            }
            Heal::Restore(which) => {
                let started = std::time::Instant::now();
                let restored = self.cloud.restore(which);
                self.profile.snapshots += started.elapsed();
                match restored {
                    Ok(taken) => {
                        self.ledger.restored(now);
                        self.log(format_args!(
                            "heal: cloud restored from snapshot {which} taken at {taken}"
                        ));
                    }
                    Err(e) => self.ledger.violation(
                        now,
                        None,
                        format!("the cloud cannot be restored: {e}"),
                    ),
                }
                // An agent enrolled after the snapshot is unknown to the
                // restored cloud: the operator enrolls it again.
                for a in 0..self.agents.len() {
                    if !self.cloud.knows(&self.agents[a].creds) {
                        self.faults.add(FaultKind::Reenroll);
                        self.reenroll(a, false, "the restored cloud does not know it");
                    }
                }
            }
            Heal::DiskFull(a) => {
                self.agents[a].disk_mut().unfill();
                self.disk_full[a] = false;
                self.log(format_args!("heal: a{a} disk has room"));
            }
            Heal::DiskErrors(a) => {
                self.agents[a].disk_mut().set_io_errors(0.0);
                self.disk_errors[a] = false;
                self.log(format_args!("heal: a{a} disk works"));
            }
        }
        self.healed();
    }

    /// A fault healed: check what must always hold.
    fn healed(&mut self) {
        self.active = self.active.saturating_sub(1);
        self.check(None);
        self.maybe_quiet();
    }

    /// A crash lost durable batches (only a broken journal does): each is
    /// lost for good unless the cloud holds it already.
    fn vanished(&mut self, agent: usize, ids: &[dca_core::sync::batch::BatchId]) {
        if ids.is_empty() || !self.cloud.is_up() {
            return;
        }
        self.check(None);
        let now = self.sched.now();
        let customer = self.agents[agent].customer;
        for id in ids {
            if !self.ledger.holds(customer, id) {
                self.ledger.lost_for_good(now, id, agent);
            }
        }
    }

    /// Reads back the cloud's storage and checks the invariants: the rows
    /// stored since the last check; with `cutoff`, all of them (through the
    /// store's own read call), and that everything durable by then was
    /// delivered.
    fn check(&mut self, cutoff: Option<Millis>) {
        let now = self.sched.now();
        if !self.cloud.is_up() {
            self.log(format_args!("check skipped: the cloud is down"));
            return;
        }
        let started = std::time::Instant::now();
        let customers = self.ledger.customers();
        let through = match self.cloud.last_row() {
            Ok(r) => r,
            Err(e) => {
                self.ledger
                    .violation(now, None, format!("the cloud cannot be read: {e}"));
                return;
            }
        };
        let after = self.ledger.cursor;
        let mut rows: Vec<Vec<StoredReading>> = Vec::with_capacity(customers);
        for c in 0..customers {
            let name = customer_name(c);
            let read = if cutoff.is_some() {
                self.cloud.readings(&name)
            } else {
                self.cloud.readings_since(&name, after, through)
            };
            match read {
                Ok(r) => rows.push(r),
                Err(e) => {
                    self.ledger
                        .violation(now, None, format!("the cloud cannot be read: {e}"));
                    return;
                }
            }
        }
        let before = self.ledger.violations.len();
        self.ledger
            .check_safety(now, &rows, cutoff.is_some(), through);
        if let Some(c) = cutoff {
            let journals: Vec<(usize, Vec<_>)> = self
                .agents
                .iter()
                .filter_map(|a| a.journal().map(|j| (a.index, j)))
                .collect();
            self.ledger.check_delivered(now, c, &journals);
        }
        let after = self.ledger.violations.len();
        self.profile.checks += started.elapsed();
        let stored = self.ledger.stored_readings;
        self.log(format_args!(
            "check{}: {stored} readings stored, {} new violations",
            cutoff.map_or_else(String::new, |c| format!(" through {c}")),
            after - before
        ));
    }
}
