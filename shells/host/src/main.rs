//! `dca`: OpenDCA's command-line agent.

mod agent_state;
mod cloud_link;
mod cloud_session;
mod cloud_tls;
mod config;
mod decode;
mod demo_cmd;
mod enroll_cmd;
mod journal;
mod logging;
mod poll_cmd;
mod provision_cmd;
mod push_cmd;
mod run_cmd;
mod scan_cmd;
mod secret_file;
mod service_cmd;
mod snapshot_cmd;
mod snapshot_json;
mod snmp_args;
mod sweep;
mod web_relay;

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
    /// Enroll this agent with a cloud, using a one-time token.
    ///
    /// Exit codes: 0 enrolled; 1 local trouble; 2 bad arguments or already
    /// enrolled; 3 cloud unreachable; 4 the token or the protocol version
    /// refused; 5 the cloud's certificate matched neither the pins nor the
    /// CA.
    Enroll(enroll_cmd::EnrollArgs),
    /// Collect once and deliver the readings to the cloud, then run its tasks.
    ///
    /// Exit codes: 0 delivered (a batch the cloud refused as malformed is
    /// quarantined with a warning, and does not fail the push); 1 local
    /// trouble (the state directory is in use by another dca, a batch could
    /// not be journaled, even if it was delivered, a setting could not be
    /// saved); 2 bad arguments or not enrolled; 3 cloud unreachable or
    /// refusing for now (readings kept for the next push); 4 the cloud
    /// refused this agent's credentials (re-enroll) or protocol version
    /// (upgrade); 5 the cloud's certificate matched neither the pins nor
    /// the CA (readings kept).
    Push(push_cmd::PushArgs),
    /// Run as a service: collect on a schedule, deliver, and take the
    /// cloud's tasks, until SIGINT or SIGTERM.
    ///
    /// Every failure that can heal (the cloud, the network, the journal, a
    /// target) is logged and retried. Exit codes: 0 stopped by a signal; 1
    /// the state directory is in use by another dca (or unusable); 2 bad
    /// arguments or not enrolled.
    Run(run_cmd::RunArgs),
    /// Install, remove or inspect the agent as a system service (systemd,
    /// launchd or the Windows service manager) running `dca run --config`.
    Service(service_cmd::ServiceArgs),
    /// Write the provisioning block a device reads at its first boot.
    ///
    /// The firmware reads it from flash at 0x003FF000 (under QEMU:
    /// `-device loader,file=FILE,addr=0x003FF000,force-raw=on`). Exit codes:
    /// 0 written, 1 the file could not be written, 2 bad arguments.
    Provision(provision_cmd::ProvisionArgs),
    /// Check a configuration file (`dca run --config FILE`).
    ///
    /// Exit codes: 0 valid; 2 not (the error names the file, the line, the
    /// column and the key).
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
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

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate FILE (default: the platform's, e.g. /etc/opendca/dca.toml).
    Check { file: Option<std::path::PathBuf> },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Poll(args) => poll_cmd::run(&args),
        Command::Scan(args) => scan_cmd::run(&args),
        Command::Demo(args) => demo_cmd::run(&args),
        Command::Enroll(args) => enroll_cmd::run(&args),
        Command::Push(args) => push_cmd::run(&args),
        Command::Run(args) => run_cmd::run(&args),
        Command::Provision(args) => provision_cmd::run(&args),
        Command::Service(args) => service_cmd::run(&args),
        Command::Config {
            command: ConfigCommand::Check { file },
        } => config::check_cmd(&file.unwrap_or_else(config::default_path)),
        Command::Decode { hex } => decode::run(&hex),
        Command::Snapshot {
            file,
            address,
            pretty,
        } => snapshot_cmd::run(&file, address.as_deref(), pretty),
    }
}
