//! `dca-sim simulate`: a deterministic simulation of agents delivering to
//! the cloud, in the spirit of FoundationDB's simulator and TigerBeetle's
//! VOPR. One process, one thread, one seed: one trace.
//!
//! Each agent runs the real core scan and walker over its own emulated
//! printers (whose counters grow with virtual time), the real core session,
//! and a journal with a real file journal's durability protocol on a
//! simulated disk; the cloud is dca-cloud's real store and request path on
//! SQLite. Between them: a virtual network and a virtual clock, and faults
//! drawn from the seed (see [`world`]). Invariants are in [`invariants`].
//!
//! - [`clock`]: the virtual clock and the event queue;
//! - [`net`]: the LAN (SNMP datagrams) and the WAN (exchanges);
//! - [`disk`], [`journal`]: the simulated disk and the journal on it;
//! - [`cloud`]: the real store, restarted, snapshotted, restored;
//! - [`collect`], [`agent`]: the site's printers and the agent;
//! - [`invariants`], [`report`]: what must hold, the trace and reports.

pub mod agent;
pub mod clock;
pub mod cloud;
pub mod collect;
pub mod disk;
pub mod invariants;
pub mod journal;
pub mod net;
pub mod report;
pub mod world;

pub use journal::Plant;
pub use net::{LanFaults, WanFaults};
pub use report::{FaultKind, SeedReport, Summary};

/// The version the simulated agents announce.
pub const AGENT_VERSION: &str = "0.1.0-sim";
/// World time 0 on the wall clock: 2027-01-15.
pub const EPOCH_MS: u64 = 1_800_000_000_000;

/// Episodes of each kind of fault per hour of storm (world-wide).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rates {
    pub partitions: f64,
    pub cloud_restarts: f64,
    pub restores: f64,
    pub crashes: f64,
    pub disk_full: f64,
    pub disk_errors: f64,
    pub reenrolls: f64,
    pub tasks: f64,
}

impl Default for Rates {
    fn default() -> Self {
        Rates {
            partitions: 1.0,
            cloud_restarts: 0.6,
            restores: 0.5,
            crashes: 1.5,
            disk_full: 0.6,
            disk_errors: 0.6,
            reenrolls: 0.5,
            tasks: 1.0,
        }
    }
}

/// One world's shape and its fault rates.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub agents: usize,
    /// Printers per agent.
    pub printers: usize,
    pub customers: usize,
    /// Virtual hours before the final quiet period.
    pub hours: f64,
    /// Seconds between collections.
    pub interval_s: u64,
    pub rates: Rates,
    pub wan: WanFaults,
    pub lan: LanFaults,
    /// Printers (in the whole world) whose counters go backwards.
    pub counters_backwards: usize,
    pub snapshot_every_s: u64,
    /// Bytes of each agent's disk.
    pub disk_bytes: u64,
    pub plant: Option<Plant>,
    /// Print the trace to stderr.
    pub trace: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            agents: 3,
            printers: 5,
            customers: 2,
            hours: 6.0,
            interval_s: 900,
            rates: Rates::default(),
            wan: WanFaults {
                loss: 0.05,
                dup: 0.03,
                delay: 0.02,
            },
            lan: LanFaults {
                loss: 0.01,
                dup: 0.005,
                jitter_ms: 20,
            },
            counters_backwards: 0,
            snapshot_every_s: 3600,
            disk_bytes: 256 << 20,
            plant: None,
            trace: false,
        }
    }
}

impl Config {
    /// The command that runs `seed` again with this configuration.
    pub fn replay_command(&self, seed: u64) -> String {
        let d = Config::default();
        let mut s = format!(
            "dca-sim simulate --seed {seed} --seeds 1 --agents {} --printers {} --customers {} --hours {} --interval {}",
            self.agents, self.printers, self.customers, self.hours, self.interval_s
        );
        let mut flag = |name: &str, v: f64, dv: f64| {
            if v != dv {
                s.push_str(&format!(" --{name} {v}"));
            }
        };
        flag("loss", self.wan.loss, d.wan.loss);
        flag("dup", self.wan.dup, d.wan.dup);
        flag("delay", self.wan.delay, d.wan.delay);
        flag("snmp-loss", self.lan.loss, d.lan.loss);
        flag("partitions", self.rates.partitions, d.rates.partitions);
        flag(
            "cloud-restarts",
            self.rates.cloud_restarts,
            d.rates.cloud_restarts,
        );
        flag("restores", self.rates.restores, d.rates.restores);
        flag("crashes", self.rates.crashes, d.rates.crashes);
        flag("disk-full", self.rates.disk_full, d.rates.disk_full);
        flag("disk-errors", self.rates.disk_errors, d.rates.disk_errors);
        flag("reenrolls", self.rates.reenrolls, d.rates.reenrolls);
        flag("tasks", self.rates.tasks, d.rates.tasks);
        if self.counters_backwards != d.counters_backwards {
            s.push_str(&format!(
                " --counters-backwards {}",
                self.counters_backwards
            ));
        }
        if self.snapshot_every_s != d.snapshot_every_s {
            s.push_str(&format!(" --snapshot-every {}", self.snapshot_every_s));
        }
        if let Some(p) = self.plant {
            s.push_str(&format!(" --plant {}", p.name()));
        }
        s.push_str(" --trace");
        s
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// Runs one seed. A panic anywhere (core, cloud, simulator) is a failure
/// of the seed, not of the run.
pub fn run_seed(cfg: &Config, seed: u64) -> SeedReport {
    let started = std::time::Instant::now();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        world::World::new(cfg, seed).map(|w| w.run())
    }));
    let mut report = match result {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => SeedReport {
            seed,
            violations: vec![format!("the world could not be set up: {e}")],
            ..SeedReport::default()
        },
        Err(p) => SeedReport {
            seed,
            violations: vec![format!("panicked: {}", panic_message(p.as_ref()))],
            ..SeedReport::default()
        },
    };
    report.real = started.elapsed();
    report
}

/// Runs `count` seeds from `first`, calling `each` after every seed.
pub fn run(cfg: &Config, first: u64, count: u64, mut each: impl FnMut(&SeedReport)) -> Summary {
    let started = std::time::Instant::now();
    let mut summary = Summary::default();
    for seed in first..first.saturating_add(count) {
        let r = run_seed(cfg, seed);
        each(&r);
        summary.add(&r);
    }
    summary.real = started.elapsed();
    summary
}
