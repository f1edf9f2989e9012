//! `dca scan TARGET...`: discover the printers in address ranges and poll
//! each one, printing a table or JSON lines.

use crate::snapshot_json::to_json;
use crate::sweep::{self, SweepArgs, SweepError};
use dca_core::printer::{Snapshot, SupplyState};
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

/// The consumable with the least left, and any receptacle (waste toner)
/// that is full or nearly: a receptacle's level is the space left, so its
/// 0 % is not a low supply but a full box.
fn lowest_supply(s: &Snapshot) -> String {
    let lowest = s
        .supplies
        .iter()
        .filter(|x| !x.is_receptacle())
        .filter_map(|x| x.percent().map(|p| (p, x.description.as_str())))
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(p, d)| format!("{p:.0}% {d}"));
    let full = s.supplies.iter().filter_map(|x| match x.state() {
        SupplyState::Full => Some(format!("{} full", x.description.as_str())),
        SupplyState::AlmostFull => Some(format!("{} almost full", x.description.as_str())),
        _ => None,
    });
    let parts: Vec<String> = lowest.into_iter().chain(full).collect();
    if parts.is_empty() {
        "-".to_string()
    } else {
        parts.join("; ")
    }
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
    // The table is printed sorted by address once the sweep ends (answers
    // arrive in any order); JSON lines go out as printers are walked.
    let mut rows: Vec<(std::net::SocketAddr, String)> = Vec::new();
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
        if json {
            let _ = writeln!(std::io::stdout().lock(), "{line}");
        } else {
            rows.push((addr, line));
        }
    };
    let result = sweep::sweep(&args.sweep, std::io::stderr().is_terminal(), &mut print);
    rows.sort_by_key(|(addr, _)| (addr.ip(), addr.port()));
    let mut stdout = std::io::stdout().lock();
    for (_, line) in &rows {
        let _ = writeln!(stdout, "{line}");
    }
    drop(stdout);
    match result {
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
        "{} addresses probed, {} answered, {} walked, {} printers, {} unreachable, {} walks failed, {} datagrams ignored, in {:.1} s{}",
        st.probed,
        st.answered,
        st.walked,
        s.printers,
        st.unreachable,
        st.failed,
        st.ignored,
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

#[cfg(test)]
mod tests {
    use super::*;
    use dca_core::printer::{Supply, Text};

    fn supply(description: &str, class: i32, level: i32) -> Supply {
        let mut s = Supply::default();
        s.description = Text::from_str_lossy(description);
        s.class = Some(class);
        s.level = Some(level);
        s.max_capacity = Some(100);
        s
    }

    /// A waste toner box with no space left is not the "lowest supply" at
    /// 0 %: it is full, said as such beside the lowest consumable.
    #[test]
    fn a_full_receptacle_is_not_the_lowest_supply() {
        let mut s = Snapshot::default();
        let _ = s.supplies.push(supply("Black Cartridge", 3, 40));
        let _ = s.supplies.push(supply("Waste Toner Box", 4, 0));
        let _ = s.supplies.push(supply("Cyan Cartridge", 3, 60));
        assert_eq!(
            lowest_supply(&s),
            "40% Black Cartridge; Waste Toner Box full"
        );
        let mut s = Snapshot::default();
        let _ = s.supplies.push(supply("Waste Toner Box", 4, 90));
        assert_eq!(lowest_supply(&s), "-");
    }
}
