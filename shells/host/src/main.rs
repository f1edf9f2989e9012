//! `dca`: OpenDCA's command-line agent.
//!
//! Scanning and polling arrive with the poller; today the binary offers
//! `dca decode`, which prints an SNMP datagram as the core's codec reads it
//! (the tool support reaches for when a device answers oddly), and
//! `dca snapshot`, which shows the snapshot a recorded device yields.

mod decode;
mod snapshot_cmd;
mod snapshot_json;

use std::process::ExitCode;

const USAGE: &str = "\
dca: OpenDCA data collection agent

USAGE:
    dca decode HEX...   print an SNMP datagram (hex, spaces and colons allowed)
    dca snapshot FILE.snmprec [--address ADDR] [--pretty]
                        the device snapshot a recording yields, as JSON
    dca --help

Not available yet in this build:
    dca scan, dca poll, dca enroll, dca push
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None | Some("-h" | "--help" | "help") => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some("decode") => decode::run(args.get(1..).unwrap_or_default()),
        Some("snapshot") => snapshot_cmd::run(args.get(1..).unwrap_or_default()),
        Some(other) => {
            eprintln!("dca: `{other}` is not available in this build\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}
