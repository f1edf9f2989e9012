//! The trace (one canonical text line per event, hashed with FNV-1a, so two
//! runs of a seed can be compared by one number) and the reports of a seed
//! and of a run.

use super::clock::Millis;
use std::fmt::Write as _;

/// `h:mm:ss.mmm` of virtual time.
pub fn clock(ms: Millis) -> String {
    format!(
        "{}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The trace of one seed.
#[derive(Debug)]
pub struct Trace {
    hash: u64,
    events: u64,
    line: String,
    /// Print every line to stderr.
    pub echo: bool,
}

impl Trace {
    pub fn new(echo: bool) -> Self {
        Trace {
            hash: FNV_OFFSET,
            events: 0,
            line: String::new(),
            echo,
        }
    }

    /// Records one event at `now`.
    pub fn log(&mut self, now: Millis, what: std::fmt::Arguments<'_>) {
        self.line.clear();
        let _ = write!(self.line, "{now} ");
        let _ = self.line.write_fmt(what);
        for b in self.line.bytes().chain(std::iter::once(b'\n')) {
            self.hash ^= u64::from(b);
            self.hash = self.hash.wrapping_mul(FNV_PRIME);
        }
        self.events += 1;
        if self.echo {
            eprintln!(
                "{} {}",
                clock(now),
                &self.line[self.line.find(' ').map_or(0, |i| i + 1)..]
            );
        }
    }

    pub fn hash(&self) -> u64 {
        self.hash
    }

    pub fn events(&self) -> u64 {
        self.events
    }
}

/// The kinds of fault the simulator injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FaultKind {
    Partition,
    CloudRestart,
    Restore,
    Crash,
    DiskFull,
    DiskErrors,
    Reenroll,
    Task,
    /// A request the network lost, or an answer lost after the cloud
    /// committed.
    Loss,
    /// A request the cloud processed twice.
    Dup,
    /// A message delayed by seconds.
    Delay,
    /// A printer whose counters go backwards (a board swap).
    CountersBackwards,
}

impl FaultKind {
    pub const ALL: [FaultKind; 12] = [
        FaultKind::Partition,
        FaultKind::CloudRestart,
        FaultKind::Restore,
        FaultKind::Crash,
        FaultKind::DiskFull,
        FaultKind::DiskErrors,
        FaultKind::Reenroll,
        FaultKind::Task,
        FaultKind::Loss,
        FaultKind::Dup,
        FaultKind::Delay,
        FaultKind::CountersBackwards,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Partition => "partitions",
            FaultKind::CloudRestart => "cloud restarts",
            FaultKind::Restore => "restores",
            FaultKind::Crash => "agent crashes",
            FaultKind::DiskFull => "disk full",
            FaultKind::DiskErrors => "disk errors",
            FaultKind::Reenroll => "re-enrollments",
            FaultKind::Task => "tasks",
            FaultKind::Loss => "messages lost",
            FaultKind::Dup => "requests duplicated",
            FaultKind::Delay => "messages delayed",
            FaultKind::CountersBackwards => "counters backwards",
        }
    }
}

/// Counts per fault kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultCounts(pub [u64; 12]);

impl FaultCounts {
    pub fn add(&mut self, k: FaultKind) {
        self.0[k as usize] += 1;
    }

    pub fn get(&self, k: FaultKind) -> u64 {
        self.0[k as usize]
    }

    pub fn merge(&mut self, other: &FaultCounts) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a += b;
        }
    }
}

/// What one seed did.
#[derive(Debug, Clone, Default)]
pub struct SeedReport {
    pub seed: u64,
    pub trace_hash: u64,
    pub events: u64,
    pub faults: FaultCounts,
    pub checks: u64,
    pub readings_stored: u64,
    /// Batches committed by the agents.
    pub batches: u64,
    pub excused: u64,
    pub virtual_ms: Millis,
    pub real: std::time::Duration,
    /// Devices whose counters went backwards (injected and flagged).
    pub flagged: Vec<String>,
    /// Broken invariants (empty: the seed passed).
    pub violations: Vec<String>,
    /// Other notes (crash recoveries that lost writes, and the like).
    pub notes: Vec<String>,
    /// Real time spent in parts of the world (measured, never traced).
    pub profile: Profile,
    /// Where agent crashes hit (a session step, a journal operation and
    /// which disk operation in it, or between steps), counted.
    pub crash_sites: std::collections::BTreeMap<String, u64>,
}

/// Where the real time of a seed went.
#[derive(Debug, Clone, Copy, Default)]
pub struct Profile {
    /// SNMP: scans, walks and the emulated printers.
    pub collect: std::time::Duration,
    /// The cloud's request path (SQLite included).
    pub cloud: std::time::Duration,
    /// Reading the storage back and checking the invariants.
    pub checks: std::time::Duration,
    /// Snapshots and restores.
    pub snapshots: std::time::Duration,
}

impl Profile {
    pub fn merge(&mut self, o: &Profile) {
        self.collect += o.collect;
        self.cloud += o.cloud;
        self.checks += o.checks;
        self.snapshots += o.snapshots;
    }

    pub fn render(&self) -> String {
        format!(
            "collections (SNMP) {:.2} s, cloud requests {:.2} s, invariant checks {:.2} s, snapshots and restores {:.2} s",
            self.collect.as_secs_f64(),
            self.cloud.as_secs_f64(),
            self.checks.as_secs_f64(),
            self.snapshots.as_secs_f64()
        )
    }
}

impl SeedReport {
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }
}

/// What a run of seeds did.
#[derive(Debug, Default)]
pub struct Summary {
    pub seeds: u64,
    pub failed: Vec<SeedReport>,
    pub faults: FaultCounts,
    pub checks: u64,
    pub readings_stored: u64,
    pub batches: u64,
    pub virtual_ms: u128,
    pub real: std::time::Duration,
    pub flagged: u64,
    pub excused: u64,
    /// The hash of every seed's trace hash, in order.
    pub combined_hash: u64,
    pub profile: Profile,
    pub crash_sites: std::collections::BTreeMap<String, u64>,
}

impl Summary {
    pub fn add(&mut self, r: &SeedReport) {
        self.seeds += 1;
        self.faults.merge(&r.faults);
        self.checks += r.checks;
        self.readings_stored += r.readings_stored;
        self.batches += r.batches;
        self.virtual_ms += u128::from(r.virtual_ms);
        self.flagged += r.flagged.len() as u64;
        self.excused += r.excused;
        self.profile.merge(&r.profile);
        for (k, v) in &r.crash_sites {
            *self.crash_sites.entry(k.clone()).or_default() += v;
        }
        if self.combined_hash == 0 {
            self.combined_hash = FNV_OFFSET;
        }
        for b in r.trace_hash.to_le_bytes() {
            self.combined_hash ^= u64::from(b);
            self.combined_hash = self.combined_hash.wrapping_mul(FNV_PRIME);
        }
        if !r.passed() {
            self.failed.push(r.clone());
        }
    }

    pub fn passed(&self) -> bool {
        self.failed.is_empty()
    }

    /// The closing summary.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let real = self.real.as_secs_f64();
        let virt = self.virtual_ms as f64 / 1000.0;
        let _ = writeln!(
            s,
            "seeds run: {} ({} passed, {} failed)",
            self.seeds,
            self.seeds - self.failed.len() as u64,
            self.failed.len()
        );
        let faults: Vec<String> = FaultKind::ALL
            .iter()
            .filter(|k| self.faults.get(**k) > 0)
            .map(|k| format!("{} {}", k.name(), self.faults.get(*k)))
            .collect();
        let _ = writeln!(s, "faults injected: {}", faults.join(", "));
        let sites: Vec<String> = self
            .crash_sites
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let _ = writeln!(s, "crashes hit: {}", sites.join(", "));
        let _ = writeln!(
            s,
            "invariants checked: {} (batches lost to a restore after pruning, excused: {}; devices flagged for counters going backwards: {})",
            self.checks, self.excused, self.flagged
        );
        let _ = writeln!(
            s,
            "readings stored: {} (batches committed: {})",
            self.readings_stored, self.batches
        );
        let _ = writeln!(
            s,
            "virtual time: {:.1} h; real time: {:.2} s; simulated/real: {:.0}x; seeds/minute: {:.1}",
            virt / 3600.0,
            real,
            if real > 0.0 { virt / real } else { 0.0 },
            if real > 0.0 {
                self.seeds as f64 * 60.0 / real
            } else {
                0.0
            }
        );
        let _ = writeln!(s, "real time spent in: {}", self.profile.render());
        let _ = writeln!(
            s,
            "trace hashes of the {} seeds, combined: {:016x}",
            self.seeds, self.combined_hash
        );
        s
    }
}
