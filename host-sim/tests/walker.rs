//! dca-core's walker against `dca-sim serve`: walking every corpus
//! recording over UDP gives the same snapshot as building it in-process from
//! the recording, and faulty devices (loss, v1 only, no GetBulk, tooBig,
//! asleep, slow, genErr, quirky encodings) are still walked completely.

mod support;

use dca_core::poll::{WalkConfig, WalkError, WalkState};
use dca_core::snmp::Version;
use dca_core::time::Duration;
use support::{Sim, in_process, recordings, stem, walk_device};

fn fast() -> WalkConfig {
    let mut cfg = WalkConfig::new(b"public");
    cfg.timeout = Duration::from_millis(200);
    cfg.deadline = Duration::from_secs(30);
    cfg
}

#[test]
fn walking_each_recording_gives_its_in_process_snapshot() {
    let dir = support::corpus().join("librenms/snmprec");
    let sim = Sim::start(
        "walker",
        &[
            "--recordings",
            dir.to_str().unwrap(),
            "--bind",
            "127.17.0.0/24",
            "--port",
            "1161",
        ],
    );
    for file in recordings() {
        let (w, walked) = walk_device(sim.address_of(&stem(&file)), fast());
        assert_eq!(
            w.state(),
            WalkState::Done,
            "{}: {:?}",
            stem(&file),
            w.stats()
        );
        assert_eq!(walked, in_process(&file), "{}", stem(&file));
        assert!(w.uses_bulk() && w.version() == Version::V2c);
    }
}

#[test]
fn faulty_devices_are_still_walked_completely() {
    let dir = std::env::temp_dir().join(format!("dca-walker-faults-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let scenario = dir.join("scenario.json");
    // Every printer recording gets one fault.
    std::fs::write(
        &scenario,
        r#"[
            {"devices": "jetdirect", "v1_only": true},
            {"devices": "sharp", "no_bulk": true},
            {"devices": "ricoh_mpc3002", "too_big_above": 6},
            {"devices": "konica", "asleep_after_s": 3600},
            {"devices": "utax", "gen_error": 0.3},
            {"devices": "epson", "loss": 0.3},
            {"devices": "canonprinter_lbp", "delay_ms": 150, "jitter_ms": 100},
            {"devices": "jetdirect_m880", "quirks": ["unsigned-without-zero", "long-lengths", "padded-integers"]},
            {"devices": "konica_c250i", "too_big_above": 1, "v1_only": true},
            {"devices": "fujifilmprinter_c7580", "lost_above": 700},
            {"devices": "brother_hl5370dw", "lost_above": 700}
        ]"#,
    )
    .unwrap();
    let recordings_dir = support::corpus().join("librenms/snmprec");
    let sim = Sim::start(
        "walker-faults",
        &[
            "--recordings",
            recordings_dir.to_str().unwrap(),
            "--bind",
            "127.18.0.0/24",
            "--port",
            "1161",
            "--scenario",
            scenario.to_str().unwrap(),
            "--seed",
            "3",
        ],
    );
    for name in [
        "jetdirect",
        "sharp",
        "ricoh_mpc3002",
        "konica",
        "utax",
        "epson",
        "canonprinter_lbp",
        "jetdirect_m880",
        "konica_c250i",
        "fujifilmprinter_c7580",
        "brother_hl5370dw",
    ] {
        let mut cfg = fast();
        // Enough for the lossy ones; an answer that never arrives costs a
        // full round of retries each time, so those get fewer.
        cfg.retries = match name {
            "fujifilmprinter_c7580" | "brother_hl5370dw" => 1,
            _ => 4,
        };
        let (w, walked) = walk_device(sim.address_of(name), cfg);
        assert_eq!(w.state(), WalkState::Done, "{name}: {:?}", w.stats());
        let file = recordings_dir.join(format!("{name}.snmprec"));
        assert_eq!(walked, in_process(&file), "{name}");
        match name {
            "jetdirect" | "konica_c250i" => {
                assert_eq!(w.version(), Version::V1, "{name} detected as v1-only")
            }
            "sharp" => assert!(!w.uses_bulk(), "sharp detected as without GetBulk"),
            "ricoh_mpc3002" => assert!(w.stats().too_big > 0),
            "epson" | "konica" => assert!(w.stats().retries > 0),
            // Answers above a size never arrived: the walker asked for less.
            "fujifilmprinter_c7580" | "brother_hl5370dw" => {
                assert!(
                    w.stats().shrunk_after_silence > 0,
                    "{name}: {:?}",
                    w.stats()
                )
            }
            _ => {}
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn silence_and_wrong_communities_end_in_no_answer() {
    // Nothing listens on this address (the test owns 127.19.0.0/16).
    let mut cfg = fast();
    cfg.timeout = Duration::from_millis(50);
    cfg.retries = 1;
    let (w, snap) = walk_device("127.19.0.1:1161", cfg);
    assert_eq!(w.state(), WalkState::Failed(WalkError::NoAnswer));
    assert!(!snap.is_printer());
    // v2c then v1 were both tried.
    assert_eq!(w.stats().requests, 4);
}
