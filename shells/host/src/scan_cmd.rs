//! `dca scan TARGET...`: discover the printers in address ranges and poll
//! each one, printing a table or JSON lines.

use crate::snapshot_json::to_json;
use crate::sweep::{self, SweepArgs, SweepError};
use dca_core::printer::Snapshot;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct ScanArgs {
    #[command(flatten)]
    pub(crate) sweep: SweepArgs,
    /// One snapshot (docs/snapshot.md) per printer per line.
    #[arg(long)]
    pub(crate) json: bool,
}

fn lowest_supply(s: &Snapshot) -> String {
    s.supplies
        .iter()
        .filter_map(|x| x.percent().map(|p| (p, x.description.as_str())))
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map_or_else(|| "-".to_string(), |(p, d)| format!("{p:.0}% {d}"))
}

pub fn run(args: &ScanArgs) -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    if !args.json {
        let _ = writeln!(
            stdout,
            "{:<22} {:<15} {:<32} {:<16} {:>10}  lowest supply",
            "address", "vendor", "model", "serial", "pages"
        );
    }
    let _ = stdout.flush();
    drop(stdout);
    let json = args.json;
    let mut print = |addr: std::net::SocketAddr, snap: &Snapshot, via: &sweep::Via| {
        let line = if json {
            let mut v = to_json(Some(&addr.to_string()), snap);
            v["snmp"] = via.to_json();
            v.to_string()
        } else {
            let id = &snap.identity;
            let one_line = |t: &str| t.replace(['\n', '\r', '\t'], " ");
            format!(
                "{:<22} {:<15} {:<32} {:<16} {:>10}  {}",
                addr,
                id.vendor.map_or("-", |v| v.id()),
                one_line(id.model.as_str()),
                one_line(id.serial.as_str()),
                snap.counter("total")
                    .map_or_else(|| "-".into(), |c| c.value.to_string()),
                one_line(&lowest_supply(snap))
            )
        };
        let _ = writeln!(std::io::stdout().lock(), "{line}");
    };
    match sweep::sweep(&args.sweep, std::io::stderr().is_terminal(), &mut print) {
        Ok(s) => {
            let keys = dca_core::snmp::usm::localizations();
            if keys > 0 {
                // The cost SNMPv3 adds per printer: keys made once per
                // engine, never per request.
                eprintln!("dca scan: SNMPv3 keys localised: {keys}");
            }
            eprintln!("dca scan: {}", describe(&s));
            ExitCode::SUCCESS
        }
        Err(e @ (SweepError::BadTarget(_) | SweepError::BadCredentials(_))) => {
            eprintln!("dca scan: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("dca scan: {e}");
            ExitCode::from(1)
        }
    }
}

/// The one-line account of a sweep.
pub fn describe(s: &sweep::Summary) -> String {
    let st = &s.stats;
    format!(
        "{} addresses probed, {} answered, {} walked, {} printers, {} unreachable, {} walks failed, in {:.1} s{}",
        st.probed,
        st.answered,
        st.walked,
        s.printers,
        st.unreachable,
        st.failed,
        s.elapsed.as_secs_f64(),
        peak_memory().map_or_else(String::new, |kib| format!(
            ", peak memory {:.1} MiB",
            kib as f64 / 1024.0
        ))
    )
}

/// Peak resident memory of this process, where the system tells it.
fn peak_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}
