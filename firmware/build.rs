//! Puts memory.x and device.x where cortex-m-rt's link.x looks for them.
//! The layout's source is memory.x.in: a memory.x in this directory would
//! be found by the linker before the one written here.
use std::{env, fs, path::PathBuf};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let memory = include_str!("memory.x.in");
    // The SNMPv3 image is measured, not held to the budget: it gets 1 MiB
    // of flash so that CI can print what USM costs.
    let memory = if env::var_os("CARGO_FEATURE_SNMPV3").is_some() {
        memory.replace("LENGTH = 256K", "LENGTH = 1024K")
    } else {
        memory.to_string()
    };
    fs::write(out.join("memory.x"), memory).expect("OUT_DIR is writable");
    fs::write(out.join("device.x"), include_bytes!("device.x")).expect("OUT_DIR is writable");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x.in");
    println!("cargo:rerun-if-changed=device.x");
}
