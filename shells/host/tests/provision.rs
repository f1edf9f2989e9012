//! `dca provision` as a user runs it: the file it writes is a block core
//! reads back, and a bad target ends with exit code 2 and its name.

use dca_core::provision::Provisioning;
use std::process::Command;

#[test]
fn writes_a_block_core_reads_and_refuses_a_bad_target() {
    let dir = std::env::temp_dir().join(format!("dca-provision-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("prov.bin");
    let run = Command::new(env!("CARGO_BIN_EXE_dca"))
        .args(["provision", "--out"])
        .arg(&out)
        .args(["--targets", "10.77.0.64/26,10.77.1.0/26", "--sweeps", "1"])
        .output()
        .unwrap();
    assert!(run.status.success(), "{run:?}");
    let said = String::from_utf8(run.stdout).unwrap();
    assert!(said.contains("(128 addresses)"), "{said}");
    let block = std::fs::read(&out).unwrap();
    let p = Provisioning::decode(&block).unwrap().unwrap();
    assert_eq!(p.targets.as_str(), "10.77.0.64/26,10.77.1.0/26");
    assert_eq!((p.sweeps, p.port), (1, 161));

    let bad = dir.join("bad.bin");
    let run = Command::new(env!("CARGO_BIN_EXE_dca"))
        .args(["provision", "--out"])
        .arg(&bad)
        .args(["--targets", "10.77.0.64/26,printer.example"])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
    let err = String::from_utf8(run.stderr).unwrap();
    assert!(err.contains("\"printer.example\""), "{err}");
    assert!(!bad.exists());
    let _ = std::fs::remove_dir_all(&dir);
}
