//! Helpers shared by the `dca` binary's integration tests.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::process::{Command, Output};

/// Runs `dca` with `args`, bounded to 60 s.
pub fn dca<S: AsRef<OsStr>>(args: &[S]) -> Output {
    Command::new("timeout")
        .arg("60")
        .arg(env!("CARGO_BIN_EXE_dca"))
        .args(args)
        .output()
        .unwrap()
}

/// Whether a peer program is on the PATH. Under `CI=true` a missing peer
/// fails the test; elsewhere the test says what it skips, and why.
pub fn peer_present(program: &str, install: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{program} is missing ({install})"
        );
        eprintln!("skipped: {program} is not installed ({install})");
    }
    found
}
