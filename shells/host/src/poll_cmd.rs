//! `dca poll HOST[:PORT]`: one full snapshot of one printer.
//!
//! The core's scan does the protocol, over one address: the same probe,
//! credential fallback and walk as `dca scan`, through the same socket
//! loop (`sweep::drive`).

use crate::snapshot_json::to_json;
use crate::snmp_args::SnmpArgs;
use crate::sweep::{self, Seen, SweepError, Via};
use dca_core::poll::scan::slots;
use dca_core::poll::{Credentials, Scan, WalkError};
use dca_core::printer::Snapshot;
use dca_core::snmp::Version;
use dca_core::time::Instant;
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct PollArgs {
    /// The printer: a name or address, with an optional :PORT ([v6]:PORT).
    target: String,
    #[command(flatten)]
    snmp: SnmpArgs,
    /// UDP port, when the target does not name one.
    #[arg(long, default_value_t = 161)]
    port: u16,
    /// Timeout of a first try, in milliseconds (doubles on each retry).
    #[arg(long, default_value_t = 1000)]
    timeout: u64,
    #[arg(long, default_value_t = 2)]
    retries: u8,
    /// Print the snapshot as the JSON of docs/snapshot.md.
    #[arg(long)]
    json: bool,
}

/// Resolves `host`, `host:port`, `[v6]:port` or a bare IPv6 address.
pub fn resolve(target: &str, default_port: u16) -> Result<SocketAddr, String> {
    let with_port = if target.parse::<std::net::IpAddr>().is_ok() {
        // A bare address, IPv6 included.
        SocketAddr::new(
            target.parse().map_err(|e| format!("{target}: {e}"))?,
            default_port,
        )
        .to_string()
    } else if target
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        target.to_string()
    } else if target.contains(':') && !target.starts_with('[') {
        return Err(format!("{target}: not a host, host:port or [v6]:port"));
    } else {
        format!("{target}:{default_port}")
    };
    with_port
        .to_socket_addrs()
        .map_err(|e| format!("{target}: {e}"))?
        .next()
        .ok_or_else(|| format!("{target}: no address"))
}

/// Polls one device as the scan does (one set of code for both): a probe
/// with each credential set in turn until one answers, then its walk, and
/// the next set if the walk is refused for a security reason. The outcome
/// is the snapshot and how it answered, or why not.
pub fn poll(
    address: SocketAddr,
    args: &PollArgs,
) -> Result<Result<(Snapshot, Via), WalkError>, SweepError> {
    let mut cfg = sweep::scan_config(&args.snmp, args.timeout, args.retries)?;
    cfg.port = address.port();
    let mut slot = slots(1);
    let mut scan: Scan<'_, _, 4, 1> = Scan::new(
        cfg,
        std::iter::once(address.ip()),
        &mut slot,
        Instant::from_millis(0),
    );
    let mut outcome = Err(WalkError::NoAnswer);
    sweep::drive(&mut scan, std::time::Instant::now(), None, &mut |seen| {
        outcome = match seen {
            Seen::Walked(_, snap, via) => Ok((snap.clone(), via.clone())),
            Seen::Failed(e) => Err(e),
        };
    })?;
    Ok(outcome)
}

/// What a poll did that its user should hear of, though it succeeded.
fn notes(via: &Via) -> Vec<String> {
    let mut notes = Vec::new();
    if via.reboots > 0 {
        notes.push(format!(
            "the device's SNMPv3 engine rebooted during the walk ({} time(s)); its new clock was taken from its notInTimeWindow Report and the walk went on",
            via.reboots
        ));
    }
    notes
}

/// How a credential set is named in messages: never its secrets.
pub fn describe_set(sets: &[Credentials], i: usize) -> String {
    let n = sets.len();
    let which = if n > 1 {
        format!("set {} of {n}: ", i + 1)
    } else {
        String::new()
    };
    match sets.get(i) {
        Some(Credentials::Community { version, .. }) => {
            let v = if *version == Version::V1 { "v1" } else { "v2c" };
            format!("{which}{v} community")
        }
        Some(Credentials::Usm(u)) => format!(
            "{which}v3 user {:?} at {}",
            String::from_utf8_lossy(&u.name),
            u.level().name()
        ),
        None => which,
    }
}

pub fn run(args: &PollArgs) -> ExitCode {
    let address = match resolve(&args.target, args.port) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("dca poll: {e}");
            return ExitCode::from(2);
        }
    };
    let sets = match args.snmp.credentials_cached() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("dca poll: {e}");
            return ExitCode::from(2);
        }
    };
    let outcome = match poll(address, args) {
        Ok(o) => o,
        Err(e @ SweepError::BadCredentials(_)) => {
            eprintln!("dca poll: {e}");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("dca poll: {e}");
            return ExitCode::from(1);
        }
    };
    if let Ok((_, via)) = &outcome {
        for line in notes(via) {
            eprintln!("dca poll: {address}: {line}");
        }
    }
    match outcome {
        Ok((snapshot, _)) if !snapshot.is_printer() => {
            eprintln!(
                "dca poll: {address}: answers SNMP but is not a printer (no Printer-MIB data for a printer device)"
            );
            if args.json {
                println!("{}", to_json(Some(&address.to_string()), &snapshot));
            }
            ExitCode::from(3)
        }
        Ok((snapshot, _)) => {
            if args.json {
                println!("{}", to_json(Some(&address.to_string()), &snapshot));
            } else {
                print!("{}", readable(&address, &snapshot));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            let tried = if sets.len() > 1 {
                "every credential set tried".to_string()
            } else {
                describe_set(&sets, 0)
            };
            eprintln!("dca poll: {address}: {} ({tried})", e.describe());
            ExitCode::from(match e {
                WalkError::NoAnswer => 4,
                WalkError::Usm(_) => 6,
                _ => 5,
            })
        }
    }
}

/// A level or capacity in the words of the JSON contract: RFC 3805's
/// special values by name, never a debug form.
fn amount(v: Option<i32>) -> String {
    match v {
        None => "-".into(),
        Some(n) if n >= 0 => n.to_string(),
        Some(-1) => "unlimited".into(),
        Some(-2) => "unknown".into(),
        Some(-3) => "some_remaining".into(),
        Some(_) => "other".into(),
    }
}

/// The snapshot for a person to read.
fn readable(address: &SocketAddr, s: &Snapshot) -> String {
    use std::fmt::Write as _;
    let id = &s.identity;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{address}  {} {}  serial {}",
        id.vendor.map_or("unknown vendor", |v| v.id()),
        id.model.as_str(),
        if id.serial.is_empty() {
            "-"
        } else {
            id.serial.as_str()
        }
    );
    for c in &s.counters {
        let _ = writeln!(out, "  counter  {:<24} {:>12}  {}", c.name, c.value, c.oid);
    }
    for sup in &s.supplies {
        let level = sup
            .percent()
            .map_or_else(|| sup.state().id().to_string(), |p| format!("{p:.0}%"));
        let _ = writeln!(
            out,
            "  supply   {:<40} {:>8}  {}",
            sup.description.as_str(),
            level,
            sup.state().id()
        );
    }
    for t in &s.trays {
        let _ = writeln!(
            out,
            "  tray     {:<40} {} of {}",
            t.name.as_str(),
            amount(t.level),
            amount(t.max_capacity)
        );
    }
    for a in &s.alerts {
        let _ = writeln!(
            out,
            "  alert    {} {}",
            a.severity_name().unwrap_or("-"),
            a.description.as_str()
        );
    }
    let flags: Vec<&str> = s.status.error_flags().collect();
    let _ = writeln!(
        out,
        "  status   {} {} {}",
        s.status.device_status_name().unwrap_or("-"),
        s.status.printer_status_name().unwrap_or("-"),
        flags.join(",")
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_resolve_or_say_why_not() {
        assert_eq!(
            resolve("127.1.0.5", 161).unwrap().to_string(),
            "127.1.0.5:161"
        );
        assert_eq!(
            resolve("127.1.0.5:1161", 161).unwrap().to_string(),
            "127.1.0.5:1161"
        );
        assert_eq!(resolve("::1", 1161).unwrap().to_string(), "[::1]:1161");
        assert_eq!(
            resolve("[::1]:1162", 161).unwrap().to_string(),
            "[::1]:1162"
        );
        assert_eq!(resolve("localhost:1161", 161).unwrap().port(), 1161);
        assert!(resolve("127.1.0.5:99999", 161).is_err());
        assert!(resolve("fe80::1:x:2", 161).is_err());
    }

    use dca_core::printer::{Text, Tray};

    fn tray(name: &str, level: Option<i32>, max: Option<i32>) -> Tray {
        let mut t = Tray::default();
        t.name = Text::from_str_lossy(name);
        t.level = level;
        t.max_capacity = max;
        t
    }

    /// Trays read "181 of 550", "unknown of unknown": never `Some(181)`.
    #[test]
    fn trays_are_written_in_words() {
        let mut s = Snapshot::default();
        let _ = s.trays.push(tray("Tray 1", Some(181), Some(550)));
        let _ = s.trays.push(tray("Auto Select", Some(-2), Some(-2)));
        let _ = s.trays.push(tray("Manual Feed", Some(-3), Some(-1)));
        let _ = s.trays.push(tray("Bypass", None, Some(-7)));
        let text = readable(&"127.0.0.1:161".parse().unwrap(), &s);
        assert!(
            text.contains("Tray 1") && text.contains("181 of 550"),
            "{text}"
        );
        assert!(text.contains("unknown of unknown"), "{text}");
        assert!(text.contains("some_remaining of unlimited"), "{text}");
        assert!(text.contains("- of other"), "{text}");
        assert!(!text.contains("Some(") && !text.contains("None"), "{text}");
    }
}
