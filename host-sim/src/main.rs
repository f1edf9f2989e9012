//! `dca-sim`: emulated printer fleets for testing OpenDCA.
//!
//! The fleet server (`dca-sim serve`) is not built yet; until it is, this
//! binary says so instead of pretending to serve anything.

use std::process::ExitCode;

const USAGE: &str = "\
dca-sim: emulated printer fleets for testing OpenDCA

USAGE:
    dca-sim --help

Not available yet in this build:
    dca-sim serve    emulated SNMP printers on loopback addresses
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None | Some("-h" | "--help" | "help") => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("dca-sim: `{other}` is not available in this build\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}
