//! dca-sim as a library: emulated printer fleets that the `dca-sim` binary
//! serves, and that other programs (`dca demo`) can start in-process.

pub mod agent;
pub mod faults;
pub mod generate;
pub mod mib;
pub mod quirks;
pub mod recording;
pub mod serve;
#[cfg(feature = "simulate")]
pub mod simulate;
pub mod usm_agent;
pub mod web;
