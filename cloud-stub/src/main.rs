//! `dca-cloud`: the minimal cloud receiver OpenDCA's tests deliver to.
//!
//! The receiver is not built yet; until it is, this binary says so instead
//! of pretending to accept readings.

use std::process::ExitCode;

const USAGE: &str = "\
dca-cloud: minimal cloud receiver for OpenDCA readings

USAGE:
    dca-cloud --help

Not available yet in this build:
    dca-cloud serve          HTTPS receiver storing readings in SQLite
    dca-cloud token create   enrollment tokens for agents
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None | Some("-h" | "--help" | "help") => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("dca-cloud: `{other}` is not available in this build\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}
