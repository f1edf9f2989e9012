//! `dca`: OpenDCA's command-line agent.

mod decode;
mod demo_cmd;
mod poll_cmd;
mod scan_cmd;
mod snapshot_cmd;
mod snapshot_json;
mod sweep;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "dca", about = "OpenDCA data collection agent", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Poll one printer and print its snapshot.
    ///
    /// Exit codes: 0 a printer was polled, 2 bad arguments or target, 3 the
    /// device answered but is not a printer, 4 no answer (which is also what
    /// a wrong community looks like), 5 the device stopped answering.
    Poll(poll_cmd::PollArgs),
    /// Discover the printers in address ranges and poll each one.
    Scan(scan_cmd::ScanArgs),
    /// Start an emulated fleet in this process, then scan and report it.
    Demo(demo_cmd::DemoArgs),
    /// Print an SNMP datagram as the codec reads it (hex; spaces and colons allowed).
    Decode {
        #[arg(required = true)]
        hex: Vec<String>,
    },
    /// The snapshot (JSON) a snmpsim recording yields.
    Snapshot {
        file: String,
        /// The address to put in the JSON.
        #[arg(long)]
        address: Option<String>,
        #[arg(long)]
        pretty: bool,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Poll(args) => poll_cmd::run(&args),
        Command::Scan(args) => scan_cmd::run(&args),
        Command::Demo(args) => demo_cmd::run(&args),
        Command::Decode { hex } => decode::run(&hex),
        Command::Snapshot {
            file,
            address,
            pretty,
        } => snapshot_cmd::run(&file, address.as_deref(), pretty),
    }
}
