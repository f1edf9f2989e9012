//! How fast `dca-sim simulate` runs one simulated day of a dealer's site:
//! 10 agents x 100 printers polled every 15 minutes, every fault kind
//! injected, every invariant checked, against the clock on the wall (the
//! peer a simulator is measured against: how much virtual time one real
//! second buys). Run with `cargo bench -p dca-sim --bench simulate`.

use dca_sim::simulate::{self, Config};

fn main() {
    let cfg = Config {
        agents: 10,
        printers: 100,
        hours: 24.0,
        interval_s: 900,
        ..Config::default()
    };
    let r = simulate::run_seed(&cfg, 1);
    assert!(r.passed(), "seed 1 broke an invariant: {:?}", r.violations);
    let real = r.real.as_secs_f64();
    let simulated = r.virtual_ms as f64 / 1000.0;
    println!("| world | simulated | real | simulated-to-real | readings stored | readings/s |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| 10 agents x 100 printers, every 15 min | {:.1} h | {real:.1} s | {:.0}x | {} | {:.0} |",
        simulated / 3600.0,
        simulated / real,
        r.readings_stored,
        r.readings_stored as f64 / real
    );
    println!(
        "time: SNMP {:.1} s, cloud {:.1} s, invariants {:.1} s; {} faults injected, {} checks",
        r.profile.collect.as_secs_f64(),
        r.profile.cloud.as_secs_f64(),
        r.profile.checks.as_secs_f64(),
        r.faults.0.iter().sum::<u64>(),
        r.checks
    );
}
