//! What must hold, and the ledger it is judged against.
//!
//! The ledger learns every batch an agent commits (its readings, decoded
//! from the journal record) and what became of it: durable, held in memory
//! only, failed, or lost to a crash during the commit; acknowledged (or
//! named held by a welcome); taken out of the journal. The cloud's storage
//! is read back and judged:
//! - **exactly once**: no counter value of a reading is stored twice, and
//!   every stored value comes from a committed reading, unchanged;
//! - **in order**: a device's readings are stored in the order of their
//!   clock, and its counters never go backwards (unless the printer's board
//!   was swapped on purpose: then it is flagged, not failed);
//! - **acknowledged means held**: a batch acknowledged (or named held by a
//!   welcome) since the last restore is stored;
//! - **durable means delivered** (after a quiet period): every batch the
//!   journal durably accepted is stored, unless the cloud lost it in a
//!   restore after the agent had pruned it (excused, and counted);
//! - **nobody is blocked**: every agent's journal is delivered.
//!
//! Storage is judged incrementally (the rows stored since the last check)
//! when a fault heals, and in full (through
//! [`dca_cloud::store::Store::readings_of_customer`]) at the end of each
//! quiet period and of the run.

use super::clock::Millis;
use super::report::clock;
use dca_cloud::store::StoredReading;
use dca_core::sync::batch::{BatchId, parse_record};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// FxHash: fast, and deterministic (no per-process random keys).
#[derive(Debug, Default, Clone, Copy)]
pub struct Fx(u64);

impl Hasher for Fx {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    fn write_u16(&mut self, n: u16) {
        self.write_u64(u64::from(n));
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

type FxBuild = BuildHasherDefault<Fx>;
type Map<K, V> = HashMap<K, V, FxBuild>;
type Set<K> = HashSet<K, FxBuild>;

/// What a commit did with a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// The journal durably accepted it: it must reach the cloud.
    Durable,
    /// Held in memory only: it may reach the cloud, once at most.
    Memory,
    /// Refused altogether.
    Failed,
    /// The agent crashed during the commit.
    Crashed,
}

/// A device, interned: (customer, index in the customer's devices).
type Device = u32;
/// A reading, as the cloud keys it: device, boot, time since boot.
type ReadingKey = (Device, [u8; 16], u64);

#[derive(Debug)]
struct ReadingRec {
    batch: BatchId,
    at_ms: Option<u64>,
    counters: Vec<(u16, u64)>,
}

#[derive(Debug)]
struct BatchRec {
    agent: usize,
    customer: usize,
    sealed: Millis,
    commit: Option<Commit>,
    acked: Option<Millis>,
    /// Named held by a welcome (naming this batch), rather than acked.
    confirmed_by: Option<BatchId>,
    in_journal: bool,
    removed: Option<Millis>,
    vanished: Option<Millis>,
    readings: usize,
}

/// What has been judged of one customer's storage so far.
#[derive(Debug, Default)]
struct Judged {
    seen: Set<(Device, [u8; 16], u64, u16)>,
    readings: Set<ReadingKey>,
    held: Set<BatchId>,
    last_at: Map<Device, i64>,
    last_value: Map<(Device, u16), (i64, Option<i64>)>,
}

#[derive(Debug, Default)]
pub struct Ledger {
    batches: Map<BatchId, BatchRec>,
    /// Batch ids in the order they were sealed.
    order: Vec<BatchId>,
    readings: Map<ReadingKey, ReadingRec>,
    /// Per customer: device key -> interned device.
    devices: Vec<Map<String, Device>>,
    device_names: Vec<String>,
    counters: Map<String, u16>,
    /// Devices whose counters were made to go backwards: (agent, address).
    injected_backwards: BTreeSet<(usize, String)>,
    backwards: Set<Device>,
    /// Devices seen going backwards (customer, device key).
    pub flagged: BTreeSet<(usize, String)>,
    restores: Vec<Millis>,
    judged: Vec<Judged>,
    /// Storage rows judged so far (the highest row id).
    pub cursor: i64,
    pub violations: Vec<String>,
    /// Problems already told (a batch missing at every check is told once).
    told: BTreeSet<String>,
    pub checks: u64,
    pub excused: BTreeSet<BatchId>,
    /// Why each excused batch was excused.
    pub notes: Vec<String>,
    /// Readings stored, at the last check.
    pub stored_readings: u64,
}

fn short(id: &BatchId) -> String {
    id.to_string()
}

impl Ledger {
    pub fn new(customers: usize) -> Self {
        Ledger {
            devices: (0..customers).map(|_| Map::default()).collect(),
            judged: (0..customers).map(|_| Judged::default()).collect(),
            ..Ledger::default()
        }
    }

    /// Batches committed so far.
    pub fn batches(&self) -> u64 {
        self.order.len() as u64
    }

    pub fn customers(&self) -> usize {
        self.devices.len()
    }

    pub fn inject_backwards(&mut self, agent: usize, address: String) {
        self.injected_backwards.insert((agent, address));
    }

    /// Records a broken invariant; `key` names the problem, so that one
    /// seen at every check is told once.
    pub fn violation(&mut self, now: Millis, key: Option<String>, what: String) {
        if let Some(k) = key
            && !self.told.insert(k)
        {
            return;
        }
        // The first few say it all.
        if self.violations.len() < 100 {
            self.violations.push(format!("t={} {what}", clock(now)));
        }
    }

    fn device(&mut self, customer: usize, key: &str) -> Device {
        if let Some(d) = self.devices[customer].get(key) {
            return *d;
        }
        let d = self.device_names.len() as Device;
        self.device_names.push(key.to_string());
        self.devices[customer].insert(key.to_string(), d);
        d
    }

    fn counter(&mut self, name: &str) -> u16 {
        if let Some(c) = self.counters.get(name) {
            return *c;
        }
        let c = self.counters.len() as u16;
        self.counters.insert(name.to_string(), c);
        c
    }

    /// A batch about to be committed by `agent` of `customer`.
    pub fn sealed(
        &mut self,
        now: Millis,
        agent: usize,
        customer: usize,
        id: BatchId,
        record: &[u8],
    ) {
        if self.batches.contains_key(&id) {
            self.violation(now, None, format!("batch {} sealed twice", short(&id)));
            return;
        }
        let mut count = 0;
        match parse_record(record) {
            Ok(readings) => {
                for r in readings.iter() {
                    let Ok(r) = r else {
                        self.violation(
                            now,
                            None,
                            format!("batch {}: a reading does not decode", short(&id)),
                        );
                        continue;
                    };
                    let Some(key) = r.key() else { continue };
                    let device = self.device(customer, &key.to_string());
                    if self
                        .injected_backwards
                        .contains(&(agent, r.address.to_string()))
                    {
                        self.backwards.insert(device);
                    }
                    let counters = r
                        .counters
                        .iter()
                        .map(|c| (self.counter(c.name), c.value))
                        .collect();
                    let rec = ReadingRec {
                        batch: id,
                        at_ms: r.at.wall_ms,
                        counters,
                    };
                    if self
                        .readings
                        .insert((device, r.at.boot_id, r.at.mono_ms), rec)
                        .is_some()
                    {
                        self.violation(
                            now,
                            None,
                            format!("batch {}: a reading taken twice", short(&id)),
                        );
                    }
                    count += 1;
                }
            }
            Err(e) => self.violation(
                now,
                None,
                format!("batch {}: record does not parse: {e}", short(&id)),
            ),
        }
        self.batches.insert(
            id,
            BatchRec {
                agent,
                customer,
                sealed: now,
                commit: None,
                acked: None,
                confirmed_by: None,
                in_journal: false,
                removed: None,
                vanished: None,
                readings: count,
            },
        );
        self.order.push(id);
    }

    pub fn committed(&mut self, id: &BatchId, how: Commit) {
        if let Some(b) = self.batches.get_mut(id) {
            b.commit = Some(how);
            b.in_journal = matches!(how, Commit::Durable | Commit::Memory);
        }
    }

    pub fn acked(&mut self, now: Millis, id: &BatchId) {
        match self.batches.get_mut(id) {
            Some(b) => {
                b.acked = Some(now);
                b.confirmed_by = None;
            }
            None => self.violation(
                now,
                None,
                format!("an ack for batch {} nobody sealed", short(id)),
            ),
        }
    }

    /// A welcome named `last` as the agent's newest batch held, so `id`
    /// (journaled no later) is held too.
    pub fn confirmed(&mut self, now: Millis, id: &BatchId, last: &BatchId) {
        let lost = self
            .batches
            .get(id)
            .is_some_and(|b| self.lost_to_restore(b));
        match self.batches.get_mut(id) {
            // A batch the agent pruned after an ack and the cloud then lost
            // in a restore is outside the welcome's claim, even if its file
            // came back (a removal need not be durable).
            Some(_) if lost => {}
            Some(b) => {
                b.acked = Some(now);
                b.confirmed_by = Some(*last);
            }
            None => self.violation(
                now,
                None,
                format!("a welcome names batch {} nobody sealed", short(id)),
            ),
        }
    }

    /// Held by the cloud, pruned by the agent, then lost in a restore.
    fn lost_to_restore(&self, b: &BatchRec) -> bool {
        b.removed.is_some()
            && b.vanished.is_none()
            && b.acked
                .is_some_and(|a| self.restores.iter().any(|r| *r > a))
    }

    /// Whether the cloud holds `id` for sure: acknowledged since the last
    /// restore.
    pub fn surely_held(&self, id: &BatchId) -> bool {
        let last_restore = self.restores.last().copied();
        self.batches
            .get(id)
            .and_then(|b| b.acked)
            .is_some_and(|a| last_restore.is_none_or(|r| a > r))
    }

    pub fn removed(&mut self, now: Millis, id: &BatchId) {
        let acked = self.batches.get(id).and_then(|b| b.acked);
        if let Some(b) = self.batches.get_mut(id) {
            b.in_journal = false;
            b.removed = Some(now);
        }
        if acked.is_none() {
            self.violation(
                now,
                None,
                format!(
                    "batch {} left the journal before the cloud held it",
                    short(id)
                ),
            );
        }
    }

    pub fn quarantined(&mut self, now: Millis, id: &BatchId, reason: &str) {
        if let Some(b) = self.batches.get_mut(id) {
            b.in_journal = false;
        }
        self.violation(
            now,
            None,
            format!("batch {} quarantined: {reason}", short(id)),
        );
    }

    /// The cloud's database was replaced by an older one: judge it afresh.
    pub fn restored(&mut self, now: Millis) {
        self.restores.push(now);
        self.reset();
    }

    fn reset(&mut self) {
        for j in &mut self.judged {
            *j = Judged::default();
        }
        self.cursor = 0;
    }

    /// An agent came back from a crash: `before` were on its disk as its
    /// last process knew it, `after` are what the new one found. Returns
    /// the durable batches that vanished.
    pub fn recovered(
        &mut self,
        now: Millis,
        agent: usize,
        before: &[BatchId],
        after: &[BatchId],
    ) -> Vec<BatchId> {
        let after: HashSet<&BatchId> = after.iter().collect();
        let mut vanished = Vec::new();
        for id in before {
            if after.contains(id) {
                continue;
            }
            if let Some(b) = self.batches.get_mut(id)
                && b.agent == agent
                && b.commit == Some(Commit::Durable)
            {
                b.vanished = Some(now);
                b.in_journal = false;
                vanished.push(*id);
            }
        }
        for id in after.iter() {
            if let Some(b) = self.batches.get_mut(id) {
                // A removal the crash undid.
                b.in_journal = true;
            }
        }
        vanished
    }

    /// A durable batch vanished in a crash and the cloud does not hold it.
    pub fn lost_for_good(&mut self, now: Millis, id: &BatchId, agent: usize) {
        self.checks += 1;
        self.violation(
            now,
            Some(format!("missing {id:?}")),
            format!(
                "durable batch {} of agent {agent} vanished from its journal in a crash before the cloud held it: it can never be stored",
                short(id)
            ),
        );
    }

    /// Whether customer `c`'s storage, as judged, holds batch `id`.
    pub fn holds(&self, c: usize, id: &BatchId) -> bool {
        self.judged.get(c).is_some_and(|j| j.held.contains(id))
    }

    /// Judges rows of customer `c` stored after those judged already.
    fn judge(&mut self, now: Millis, c: usize, rows: &[StoredReading]) {
        let mut problems = Vec::new();
        let mut flagged = Vec::new();
        let mut judged = std::mem::take(&mut self.judged[c]);
        for r in rows {
            judged.held.insert(r.batch);
            let Some(&device) = self.devices[c].get(r.device_key.as_str()) else {
                problems.push(format!(
                    "stored but never collected: device {} (batch {})",
                    r.device_key,
                    short(&r.batch)
                ));
                continue;
            };
            let Some(&counter) = self.counters.get(r.counter.as_str()) else {
                problems.push(format!(
                    "{} stored a counter never collected: {}",
                    r.device_key, r.counter
                ));
                continue;
            };
            if !judged.seen.insert((device, r.boot_id, r.mono_ms, counter)) {
                problems.push(format!(
                    "stored twice: {} {} of the reading at {:?} (batch {})",
                    r.device_key,
                    r.counter,
                    r.at_ms,
                    short(&r.batch)
                ));
                continue;
            }
            judged.readings.insert((device, r.boot_id, r.mono_ms));
            match self.readings.get(&(device, r.boot_id, r.mono_ms)) {
                None => problems.push(format!(
                    "stored but never collected: {} at {:?} (batch {})",
                    r.device_key,
                    r.at_ms,
                    short(&r.batch)
                )),
                Some(rec) => {
                    if rec.batch != r.batch {
                        problems.push(format!(
                            "{} at {:?} stored from batch {}, collected in {}",
                            r.device_key,
                            r.at_ms,
                            short(&r.batch),
                            short(&rec.batch)
                        ));
                    }
                    let want = rec.counters.iter().find(|(n, _)| *n == counter);
                    if want.is_none_or(|(_, v)| i64::try_from(*v).ok() != Some(r.value)) {
                        problems.push(format!(
                            "{} {} stored as {}, collected as {:?}",
                            r.device_key,
                            r.counter,
                            r.value,
                            want.map(|w| w.1)
                        ));
                    }
                    if r.at_ms.and_then(|a| u64::try_from(a).ok()) != rec.at_ms {
                        problems.push(format!(
                            "{} reading stored at {:?}, taken at {:?}",
                            r.device_key, r.at_ms, rec.at_ms
                        ));
                    }
                }
            }
            let at = r.at_ms.unwrap_or(i64::MIN);
            let last = judged.last_at.entry(device).or_insert(at);
            if at < *last {
                problems.push(format!(
                    "out of order: {} reading at {at} stored after one at {last}",
                    r.device_key
                ));
            }
            *last = (*last).max(at);
            let lv = judged
                .last_value
                .entry((device, counter))
                .or_insert((r.value, r.at_ms));
            if r.value < lv.0 && r.at_ms >= lv.1 {
                if self.backwards.contains(&device) {
                    flagged.push(r.device_key.clone());
                } else {
                    problems.push(format!(
                        "counter went backwards: {} {} from {} to {} at {:?}",
                        r.device_key, r.counter, lv.0, r.value, r.at_ms
                    ));
                }
            }
            *lv = (r.value, r.at_ms);
        }
        self.judged[c] = judged;
        for p in problems.into_iter().take(10) {
            self.violation(now, Some(p.clone()), format!("customer {c}: {p}"));
        }
        for f in flagged {
            self.flagged.insert((c, f));
        }
    }

    /// Checks what always holds, judging `rows` (per customer, the rows
    /// stored after `self.cursor`, or all of them when `full`); `cursor` is
    /// the highest row id they include.
    pub fn check_safety(
        &mut self,
        now: Millis,
        rows: &[Vec<StoredReading>],
        full: bool,
        cursor: i64,
    ) {
        self.checks += 1;
        if full {
            self.reset();
        }
        for (c, r) in rows.iter().enumerate().take(self.customers()) {
            self.judge(now, c, r);
        }
        self.cursor = cursor;
        self.stored_readings = self.judged.iter().map(|j| j.readings.len() as u64).sum();
        // Acknowledged since the last restore means held.
        let last_restore = self.restores.last().copied();
        let mut missing = Vec::new();
        for id in &self.order {
            let b = &self.batches[id];
            if b.readings > 0
                && b.acked.is_some_and(|a| last_restore.is_none_or(|r| a > r))
                && !self.judged[b.customer].held.contains(id)
            {
                let how = match &b.confirmed_by {
                    Some(last) => {
                        format!("named held by a welcome (its newest batch {})", short(last))
                    }
                    None => "acknowledged".to_string(),
                };
                missing.push((
                    format!("unheld {id:?}"),
                    format!(
                        "batch {} of agent {} {how} at {} but not stored",
                        short(id),
                        b.agent,
                        clock(b.acked.unwrap_or(0))
                    ),
                ));
            }
        }
        for (k, m) in missing.into_iter().take(10) {
            self.violation(now, Some(k), m);
        }
    }

    /// Checks that every durable batch sealed by `cutoff` is stored, and
    /// that `journals` (each running agent's) are delivered. Call after a
    /// full [`Ledger::check_safety`].
    pub fn check_delivered(
        &mut self,
        now: Millis,
        cutoff: Millis,
        journals: &[(usize, Vec<BatchId>)],
    ) {
        self.checks += 1;
        let mut missing = Vec::new();
        let mut excused = Vec::new();
        for id in &self.order {
            let b = &self.batches[id];
            if b.sealed > cutoff
                || b.commit != Some(Commit::Durable)
                || b.readings == 0
                || self.judged[b.customer].held.contains(id)
            {
                continue;
            }
            if self.lost_to_restore(b) {
                if !self.excused.contains(id) {
                    excused.push((
                        *id,
                        format!(
                            "batch {} of agent {} lost, excused: held by the cloud at {}, pruned from the journal at {} (to make room), then the cloud was restored to an older snapshot",
                            short(id),
                            b.agent,
                            clock(b.acked.unwrap_or(0)),
                            clock(b.removed.unwrap_or(0)),
                        ),
                    ));
                }
                continue;
            }
            let why = if let Some(v) = b.vanished {
                format!(
                    "; it vanished from the agent's journal in the crash at {}",
                    clock(v)
                )
            } else if !b.in_journal {
                "; it is no longer in the agent's journal".to_string()
            } else {
                "; it is still in the agent's journal".to_string()
            };
            missing.push((
                format!("missing {id:?}"),
                format!(
                    "durable batch {} of agent {} (sealed at {}, {} readings) is not stored{why}",
                    short(id),
                    b.agent,
                    clock(b.sealed),
                    b.readings
                ),
            ));
        }
        for (id, why) in excused {
            self.excused.insert(id);
            self.notes.push(why);
        }
        for (k, m) in missing.into_iter().take(10) {
            self.violation(now, Some(k), m);
        }
        for (agent, batches) in journals {
            let waiting: Vec<&BatchId> = batches
                .iter()
                .filter(|id| {
                    self.batches.get(id).is_some_and(|b| {
                        b.sealed <= cutoff
                            && b.readings > 0
                            && !self.judged[b.customer].held.contains(id)
                            && !self.lost_to_restore(b)
                    })
                })
                .collect();
            if let Some(first) = waiting.first() {
                let what = format!(
                    "agent {agent} is blocked: {} journaled batches (first {}) not delivered by the end of the quiet period",
                    waiting.len(),
                    short(first)
                );
                self.violation(now, Some(format!("blocked {agent}")), what);
            }
        }
    }
}
