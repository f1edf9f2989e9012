//! `dca demo`: the main job on an embedded default. An emulated fleet of
//! generated printers is started in this process on loopback addresses,
//! then scanned and reported exactly as a real network would be.

use crate::scan_cmd::{self, ScanArgs};
use crate::sweep::SweepArgs;
use dca_sim::agent::Behaviour;
use dca_sim::faults::Faults;
use dca_sim::serve::{self, Fleet};
use std::process::ExitCode;
use std::sync::Arc;

/// Loopback block of the demo fleet, and its port.
const NET: &str = "127.77.0.0/16";
const PORT: u16 = 1161;

#[derive(clap::Args)]
pub struct DemoArgs {
    /// How many printers to emulate (up to 65,534).
    #[arg(long, default_value_t = 200)]
    printers: usize,
    /// Seed of the fleet: the same seed gives the same printers.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// One snapshot per printer per line instead of the table.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &DemoArgs) -> ExitCode {
    let behaviour = Arc::new(Behaviour::default());
    let devices = serve::generated(
        args.printers,
        args.seed,
        60.0,
        0,
        |_| Faults::default(),
        |_| behaviour.clone(),
    );
    let net = NET.parse().unwrap_or_else(|_| ipnet::Ipv4Net::default());
    let fleet = match Fleet::start(devices, net, PORT) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("dca demo: cannot start the emulated fleet: {e}");
            return ExitCode::from(1);
        }
    };
    let Some(last) = fleet.addresses.last() else {
        eprintln!("dca demo: --printers must be at least 1");
        return ExitCode::from(2);
    };
    eprintln!(
        "dca demo: {} emulated printers on {NET} port {PORT}; scanning them",
        fleet.addresses.len()
    );
    let scan = ScanArgs {
        sweep: SweepArgs::new(vec![format!("127.77.0.1-{}", last.ip())], PORT),
        json: args.json,
    };
    let code = scan_cmd::run(&scan);
    drop(fleet);
    code
}
