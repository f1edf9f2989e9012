//! `dca poll HOST[:PORT]`: one full snapshot of one printer.
//!
//! The core's walker does the protocol; this shell owns the socket and the
//! clock. One device needs no async runtime: a blocking socket that waits
//! until the walker's next timeout is the whole loop.

use crate::snapshot_json::to_json;
use crate::snmp_args::SnmpArgs;
use dca_core::poll::{Credentials, Sink, WalkConfig, WalkError, WalkState, Walker};
use dca_core::printer::plan::walk_plan;
use dca_core::printer::{Snapshot, SnapshotBuilder};
use dca_core::snmp::Version;
use dca_core::time::{Duration, Instant};
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
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

/// Runs a walk to its end over a blocking socket.
pub fn drive(
    mut walker: Walker,
    address: SocketAddr,
    sink: &mut impl Sink,
) -> std::io::Result<Walker> {
    let local: SocketAddr = if address.is_ipv4() {
        "0.0.0.0:0".parse()
    } else {
        "[::]:0".parse()
    }
    .expect("literal addresses parse");
    let socket = UdpSocket::bind(local)?;
    socket.connect(address)?;
    let origin = std::time::Instant::now();
    let now = || Instant::from_millis(origin.elapsed().as_millis() as u64);
    let (mut out, mut inp) = ([0u8; 1500], vec![0u8; 65535]);
    while walker.state() == WalkState::Running {
        while let Some(n) = walker.poll_transmit(now(), &mut out) {
            socket.send(&out[..n])?;
        }
        let Some(due) = walker.poll_timeout() else {
            break;
        };
        let wait = due.saturating_since(now()).millis().max(1);
        socket.set_read_timeout(Some(std::time::Duration::from_millis(wait)))?;
        match socket.recv(&mut inp) {
            Ok(n) => walker.handle_datagram(now(), &mut inp[..n], sink),
            // Timeouts, and ICMP port-unreachable surfacing as errors, are
            // both "no answer yet".
            Err(_) => walker.handle_timeout(now()),
        }
    }
    Ok(walker)
}

/// Polls one device, trying each credential set in order: the next is
/// tried when a set gets no answer or is refused for a security reason.
pub fn poll(
    address: SocketAddr,
    args: &PollArgs,
    sets: &[Credentials],
) -> Result<(Snapshot, usize), (WalkError, usize)> {
    let mut last = (WalkError::NoAnswer, 0);
    for (i, credentials) in sets.iter().enumerate() {
        let mut cfg = WalkConfig::with_credentials(credentials.clone());
        cfg.timeout = Duration::from_millis(args.timeout);
        cfg.retries = args.retries;
        let mut builder = SnapshotBuilder::new();
        // Unguessable request-ids (SNMPv3 msgIDs) and salts.
        let seed = i32::from_le_bytes(crate::cloud_session::random());
        let walker = Walker::new(cfg, walk_plan(), seed, Instant::from_millis(0));
        let walker = drive(walker, address, &mut builder).map_err(|_| (WalkError::NoAnswer, i))?;
        for line in session_notes(&walker) {
            eprintln!("dca poll: {address}: {line}");
        }
        match walker.state() {
            WalkState::Done => return Ok((builder.finish(), i)),
            WalkState::Failed(e @ (WalkError::NoAnswer | WalkError::Usm(_))) => last = (e, i),
            WalkState::Failed(e) => return Err((e, i)),
            WalkState::Running => {}
        }
    }
    Err(last)
}

/// What a walk did that its user should hear of, though it succeeded: an
/// engine that rebooted (its clock learnt again).
pub fn session_notes(walker: &Walker) -> Vec<String> {
    let mut notes = Vec::new();
    let reboots = walker.engine_reboots();
    if reboots > 0 {
        notes.push(format!(
            "the device's SNMPv3 engine rebooted during the walk ({reboots} time(s)); its new clock was taken from its notInTimeWindow Report and the walk went on"
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
    let sets = match args.snmp.credentials() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("dca poll: {e}");
            return ExitCode::from(2);
        }
    };
    match poll(address, args, &sets) {
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
        Err((e, i)) => {
            eprintln!(
                "dca poll: {address}: {} ({})",
                e.describe(),
                describe_set(&sets, i)
            );
            ExitCode::from(match e {
                WalkError::NoAnswer => 4,
                WalkError::Usm(_) => 6,
                _ => 5,
            })
        }
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
            "  tray     {:<40} {:?}/{:?}",
            t.name.as_str(),
            t.level,
            t.max_capacity
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
}
