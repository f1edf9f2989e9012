//! The deterministic simulation (`dca-sim simulate`), through its library:
//! seeds pass with every invariant, a seed replays to the same trace, and a
//! planted durability bug is caught.
#![cfg(feature = "simulate")]

use dca_sim::simulate::{self, Config, FaultKind, Plant, SeedReport};

/// A small world: 3 agents of 4 printers, 4 virtual hours of storms and
/// quiet periods.
fn small() -> Config {
    Config {
        agents: 3,
        printers: 4,
        hours: 4.0,
        ..Config::default()
    }
}

fn explain(r: &SeedReport, cfg: &Config) -> String {
    format!(
        "seed {} failed:\n  {}\nreplay: {}",
        r.seed,
        r.violations.join("\n  "),
        cfg.replay_command(r.seed)
    )
}

#[test]
fn seeds_hold_every_invariant_under_every_fault() {
    let cfg = small();
    let mut failures = Vec::new();
    let summary = simulate::run(&cfg, 1, 6, |r| {
        if !r.passed() {
            failures.push(explain(r, &cfg));
        }
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Every kind but counters going backwards, which `small` leaves off.
    for k in FaultKind::ALL
        .into_iter()
        .filter(|&k| k != FaultKind::CountersBackwards)
    {
        assert!(
            summary.faults.get(k) > 0,
            "no {} injected in 6 seeds:\n{}",
            k.name(),
            summary.render()
        );
    }
    assert!(
        summary.readings_stored > 6 * 3 * 4 * 10,
        "{}",
        summary.render()
    );
    assert!(summary.checks > 6 * 5, "{}", summary.render());
}

#[test]
fn a_seed_replays_to_the_same_trace() {
    let cfg = small();
    let a = simulate::run_seed(&cfg, 7);
    let b = simulate::run_seed(&cfg, 7);
    assert!(a.passed(), "{}", explain(&a, &cfg));
    assert_eq!(
        (a.trace_hash, a.events, a.readings_stored, &a.faults),
        (b.trace_hash, b.events, b.readings_stored, &b.faults)
    );
    let c = simulate::run_seed(&cfg, 8);
    assert_ne!(a.trace_hash, c.trace_hash, "another seed, another trace");
}

#[test]
fn a_journal_that_skips_the_directory_fsync_is_caught() {
    let cfg = Config {
        plant: Some(Plant::SkipDirFsync),
        ..small()
    };
    for seed in 1..=200 {
        let r = simulate::run_seed(&cfg, seed);
        if r.passed() {
            continue;
        }
        assert!(
            r.violations
                .iter()
                .all(|v| v.contains("durable batch") && v.contains("vanished")),
            "the planted bug shows as durable batches lost in a crash, and nothing else: {}",
            explain(&r, &cfg)
        );
        eprintln!("caught at {}", explain(&r, &cfg));
        return;
    }
    panic!("the planted skip-dir-fsync bug was not caught in 200 seeds");
}

#[test]
fn counters_that_go_backwards_are_flagged_not_failed() {
    let cfg = Config {
        counters_backwards: 2,
        ..small()
    };
    let r = simulate::run_seed(&cfg, 3);
    assert!(r.passed(), "{}", explain(&r, &cfg));
    assert!(!r.flagged.is_empty(), "a board swap is flagged: {r:?}");
    assert_eq!(r.faults.get(FaultKind::CountersBackwards), 2);
}

/// Found by this simulator: a cloud restored to an older snapshot while an
/// agent's round is under way (between a `welcome` and the next `upload`,
/// or while a delayed upload is still in flight) stored an upload whose
/// predecessors it no longer held, named it as the agent's newest batch,
/// and the predecessors were never sent again. Uploads now name their
/// predecessor, and the cloud refuses (409) one whose predecessor it lost.
/// Many restores and long delays make the race frequent.
#[test]
fn restores_during_a_round_lose_nothing() {
    let d = Config::default();
    let cfg = Config {
        rates: simulate::Rates {
            restores: 6.0,
            ..d.rates
        },
        wan: simulate::WanFaults {
            delay: 0.2,
            ..d.wan
        },
        snapshot_every_s: 600,
        ..d
    };
    let mut failures = Vec::new();
    for seed in 1..=100 {
        let r = simulate::run_seed(&cfg, seed);
        if !r.passed() {
            failures.push(explain(&r, &cfg));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
