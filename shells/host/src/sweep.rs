//! One sweep of address ranges: discover the printers and walk each one.
//! `dca scan` prints what a sweep finds; `dca push` uploads it.
//!
//! The core's scan does discovery, retries, community selection and the
//! walks; this shell owns one UDP socket (dual-stack where the host has
//! IPv6, so IPv4 and IPv6 targets share it) and the clock.

use crate::snmp_args::SnmpArgs;
use dca_core::poll::scan::{ScanStats, slots};
use dca_core::poll::{Event, Scan, ScanConfig, Target, WalkError, addresses};
use dca_core::printer::Snapshot;
use dca_core::printer::plan::Plan;
use dca_core::time::{Duration, Instant};
use std::net::{SocketAddr, SocketAddrV6, ToSocketAddrs, UdpSocket};

#[derive(clap::Args, Clone, Debug)]
pub struct SweepArgs {
    /// Addresses, CIDR blocks (a.b.c.d/n), ranges (a.b.c.d-e.f.g.h or a.b.c.d-h) or host names.
    pub targets: Vec<String>,
    #[command(flatten)]
    pub snmp: SnmpArgs,
    #[arg(long, default_value_t = 161)]
    pub port: u16,
    /// Probes per second (0: as fast as the network takes them).
    #[arg(long, default_value_t = 0)]
    pub rate: u32,
    /// Timeout of a first try, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub timeout: u64,
    #[arg(long, default_value_t = 1)]
    pub retries: u8,
    /// Addresses or ranges to leave out.
    #[arg(long, value_name = "TARGET")]
    pub exclude: Vec<String>,
    /// Devices walked at once.
    #[arg(long, default_value_t = 64)]
    pub parallel: usize,
    /// Leave out host names that do not resolve (saying so in the summary)
    /// rather than refuse the sweep: a service keeps collecting from the
    /// rest, and tries the name again next time.
    #[arg(skip)]
    pub skip_unresolved: bool,
    /// What each printer's walk reads: everything (collections) or only
    /// its identity (Device Web Access checking who is at an address).
    #[arg(skip)]
    pub plan: Plan,
}

impl SweepArgs {
    /// Defaults for `targets` on `port`.
    pub fn new(targets: Vec<String>, port: u16) -> Self {
        SweepArgs {
            targets,
            snmp: Default::default(),
            port,
            rate: 0,
            timeout: 1000,
            retries: 1,
            exclude: Vec::new(),
            parallel: 64,
            skip_unresolved: false,
            plan: Plan::Full,
        }
    }
}

/// Which credential set a printer answered, for reports: never a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// 1-based, in the order the sets were given.
    pub set: usize,
    /// "1", "2c" or "3": what the printer spoke.
    pub version: &'static str,
    /// The v3 user and its level.
    pub user: Option<(String, &'static str)>,
    /// Times the device's v3 engine rebooted during the walk.
    pub reboots: u32,
}

impl Via {
    fn of(index: usize, c: &dca_core::poll::Credentials, walker: &dca_core::poll::Walker) -> Self {
        use dca_core::poll::Credentials;
        use dca_core::snmp::Version;
        Via {
            set: index + 1,
            reboots: walker.engine_reboots(),
            version: match walker.version() {
                Version::V1 => "1",
                Version::V2c => "2c",
                Version::V3 => "3",
            },
            user: match c {
                Credentials::Usm(u) => Some((
                    String::from_utf8_lossy(&u.name).into_owned(),
                    u.level().name(),
                )),
                Credentials::Community { .. } => None,
            },
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({"version": self.version, "credential_set": self.set});
        if let Some((user, level)) = &self.user {
            v["user"] = user.clone().into();
            v["level"] = (*level).into();
        }
        v
    }
}

/// Why a sweep did not run.
#[derive(Debug)]
pub enum SweepError {
    /// A target or exclusion that does not parse or resolve.
    BadTarget(String),
    /// SNMP options that do not make a credential set.
    BadCredentials(String),
    /// The socket or the thread could not be had.
    System(String),
}

impl std::fmt::Display for SweepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SweepError::BadTarget(e) => write!(f, "bad target {e}"),
            SweepError::BadCredentials(e) => f.write_str(e),
            SweepError::System(e) => f.write_str(e),
        }
    }
}

/// What a sweep did.
#[derive(Debug, Clone)]
pub struct Summary {
    pub stats: ScanStats,
    pub printers: u64,
    pub elapsed: std::time::Duration,
    /// Targets left out because their names did not resolve (with
    /// `skip_unresolved`), each with the reason.
    pub unresolved: Vec<String>,
}

/// A target that cannot be an address expression nor a host name; host
/// names are not resolved here (a name that does not resolve today may
/// tomorrow).
pub fn check_syntax(targets: &[String]) -> Result<(), String> {
    for s in targets {
        if let Err(syntax) = Target::parse(s)
            && looks_numeric(s)
        {
            return Err(format!("{s}: {}", syntax.describe()));
        }
    }
    Ok(())
}

fn looks_numeric(s: &str) -> bool {
    s.chars().all(|c| c.is_ascii_digit() || ".-/:".contains(c))
}

/// Parses a target, resolving host names to one address.
fn target(s: &str, port: u16) -> Result<Target, String> {
    match Target::parse(s) {
        Ok(t) => Ok(t),
        Err(syntax) => {
            if looks_numeric(s) {
                return Err(format!("{s}: {}", syntax.describe()));
            }
            let addr = (s, port)
                .to_socket_addrs()
                .map_err(|e| format!("{s}: {e}"))?
                .next()
                .ok_or_else(|| format!("{s}: no address"))?;
            Ok(Target::Single(addr.ip()))
        }
    }
}

/// One dual-stack socket (IPv4 only where the host has no IPv6), with a
/// receive buffer large enough for the answers of a burst of probes and of
/// every walk in flight: answers dropped by a full buffer would look like
/// dead devices.
fn socket() -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let open = |domain, addr: SocketAddr| -> std::io::Result<Socket> {
        let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
        if domain == Domain::IPV6 {
            s.set_only_v6(false)?;
        }
        // The system may cap this (net.core.rmem_max); what it grants is fine.
        let _ = s.set_recv_buffer_size(8 << 20);
        s.bind(&addr.into())?;
        Ok(s)
    };
    let any6: SocketAddr = "[::]:0".parse().map_err(std::io::Error::other)?;
    let any4: SocketAddr = "0.0.0.0:0".parse().map_err(std::io::Error::other)?;
    let s = open(Domain::IPV6, any6).or_else(|_| open(Domain::IPV4, any4))?;
    Ok(s.into())
}

/// A v4 destination as the dual-stack socket needs it.
fn outgoing(socket_is_v6: bool, to: SocketAddr) -> SocketAddr {
    match to {
        SocketAddr::V4(a) if socket_is_v6 => {
            SocketAddr::V6(SocketAddrV6::new(a.ip().to_ipv6_mapped(), a.port(), 0, 0))
        }
        other => other,
    }
}

fn incoming(from: SocketAddr) -> SocketAddr {
    SocketAddr::new(from.ip().to_canonical(), from.port())
}

/// Sweeps the targets, calling `found` with each printer walked. Runs on a
/// thread of its own: the scan's tables (65,536 probes in flight, as many
/// devices waiting for a walk) live in its state, about 5 MiB, more than a
/// main thread's stack should hold.
pub fn sweep(
    args: &SweepArgs,
    progress: bool,
    found: &mut (dyn FnMut(SocketAddr, &Snapshot, &Via) + Send),
) -> Result<Summary, SweepError> {
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("sweep".into())
            .stack_size(64 << 20)
            .spawn_scoped(scope, || run(args, progress, found))
            .map_err(|e| SweepError::System(format!("cannot start: {e}")))?
            .join()
            .unwrap_or_else(|_| Err(SweepError::System("the sweep thread failed".into())))
    })
}

fn run(
    args: &SweepArgs,
    progress: bool,
    found: &mut (dyn FnMut(SocketAddr, &Snapshot, &Via) + Send),
) -> Result<Summary, SweepError> {
    let mut unresolved = Vec::new();
    let mut parse_all = |list: &[String]| -> Result<Vec<Target>, String> {
        let mut out = Vec::new();
        for t in list {
            match target(t, args.port) {
                Ok(t) => out.push(t),
                Err(e) if args.skip_unresolved && !looks_numeric(t) => unresolved.push(e),
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    };
    let (targets, exclude) = match (parse_all(&args.targets), parse_all(&args.exclude)) {
        (Ok(t), Ok(x)) => (t, x),
        (Err(e), _) | (_, Err(e)) => return Err(SweepError::BadTarget(e)),
    };
    if targets.is_empty() {
        return Err(SweepError::BadTarget(match unresolved.first() {
            Some(e) => format!("{e} (and no other target)"),
            None => "list: no targets given".into(),
        }));
    }
    let total: u64 = targets.iter().map(Target::len).sum();
    let mut cfg = scan_config(&args.snmp, args.timeout, args.retries)?;
    cfg.plan = args.plan;
    cfg.port = args.port;
    cfg.rate = args.rate;
    let mut walk_slots = slots(args.parallel.clamp(1, 1024));
    let origin = std::time::Instant::now();
    let mut scan: Scan<'_, _, 65536> = Scan::new(
        cfg,
        addresses(&targets, &exclude),
        &mut walk_slots,
        Instant::from_millis(0),
    );
    let mut printers = 0u64;
    let progress = progress.then_some(total);
    // An identity read walks too few Printer-MIB tables to qualify a device
    // (a sparse one may fill none of them): what it is for is the serial,
    // which is compared with the one expected.
    let qualifies = |snap: &Snapshot| snap.is_printer() || args.plan == Plan::Identity;
    drive(&mut scan, origin, progress, &mut |seen| {
        if let Seen::Walked(addr, snap, via) = seen
            && qualifies(snap)
        {
            printers += 1;
            found(addr, snap, via);
        }
    })?;
    Ok(Summary {
        stats: scan.stats(),
        printers,
        elapsed: origin.elapsed(),
        unresolved,
    })
}

/// A scan's configuration from the SNMP options, timeout and retries
/// (`dca scan`, `push`, `run` and `poll` alike).
pub fn scan_config(
    snmp: &SnmpArgs,
    timeout_ms: u64,
    retries: u8,
) -> Result<ScanConfig, SweepError> {
    let sets = snmp
        .credentials_cached()
        .map_err(SweepError::BadCredentials)?;
    let mut list = heapless::Vec::new();
    for c in sets {
        list.push(c)
            .map_err(|_| SweepError::BadCredentials("at most 8 credential sets".into()))?;
    }
    let mut cfg = ScanConfig::with_credentials(list, 161);
    // Unguessable request-ids (SNMPv3 msgIDs) and salts, new each time.
    cfg.seed = u64::from_le_bytes(crate::cloud_session::random());
    cfg.probe_timeout = Duration::from_millis(timeout_ms);
    cfg.probe_retries = retries;
    cfg.walk.timeout = Duration::from_millis(timeout_ms);
    cfg.walk.retries = retries.max(1);
    Ok(cfg)
}

/// Datagrams read per turn of the loop at most.
const RECEIVE_BURST: usize = 512;

/// What the scan found out about one device.
pub enum Seen<'a> {
    /// Walked (printer or not), with the credential set it answered.
    Walked(SocketAddr, &'a Snapshot, &'a Via),
    /// It answered the probe, then its walk failed with every set left.
    Failed(WalkError),
}

/// Runs a scan to its end over one UDP socket (dual-stack where the host
/// has IPv6), telling `seen` about each device; with `progress` (the
/// number of addresses), a progress line on stderr.
pub fn drive<I: Iterator<Item = std::net::IpAddr>, const PROBES: usize, const SLOTS: usize>(
    scan: &mut Scan<'_, I, PROBES, SLOTS>,
    origin: std::time::Instant,
    progress: Option<u64>,
    seen: &mut dyn FnMut(Seen<'_>),
) -> Result<(), SweepError> {
    let socket =
        socket().map_err(|e| SweepError::System(format!("cannot open a UDP socket: {e}")))?;
    let v6 = socket.local_addr().is_ok_and(|a| a.is_ipv6());
    let now = || Instant::from_millis(origin.elapsed().as_millis() as u64);
    let (mut out, mut inp) = ([0u8; 1500], vec![0u8; 65535]);
    let mut walked = 0u64;
    let mut last_progress = origin;
    loop {
        scan.handle_timeout(now());
        // Send in bursts and read everything that arrived in between: a
        // socket that only sends while answers pile up overflows its
        // receive buffer, and answers lost there look like dead devices.
        let mut busy = false;
        for _ in 0..64 {
            let Some((to, n)) = scan.poll_transmit(now(), &mut out) else {
                break;
            };
            // A send error (no route, say) is the same as no answer.
            let _ = socket.send_to(&out[..n], outgoing(v6, to));
            busy = true;
        }
        let _ = socket.set_nonblocking(true);
        // At most a burst per turn: under a flood of datagrams the loop
        // must still come round to the timeouts and the sends.
        for _ in 0..RECEIVE_BURST {
            let Ok((n, from)) = socket.recv_from(&mut inp) else {
                break;
            };
            scan.handle_datagram(now(), incoming(from), &mut inp[..n]);
            busy = true;
        }
        while let Some(event) = scan.poll_event() {
            match event {
                Event::Walked { slot } => {
                    let via = scan.walk_of(slot).map(|(i, c, w)| Via::of(i, c, w));
                    if let (Some((addr, snap)), Some(via)) = (scan.finish_walk(slot), via) {
                        walked += 1;
                        seen(Seen::Walked(addr, snap, &via));
                    }
                }
                Event::WalkFailed(_, e) => seen(Seen::Failed(e)),
            }
        }
        if scan.is_finished() {
            break;
        }
        if let Some(total) = progress
            && last_progress.elapsed() > std::time::Duration::from_millis(200)
        {
            let s = scan.stats();
            eprint!(
                "\rprobed {}/{total}  answered {}  walked {walked}   ",
                s.probed, s.answered
            );
            last_progress = std::time::Instant::now();
        }
        if !busy {
            // Nothing to do until an answer arrives or a timer is due.
            let wait = scan
                .poll_timeout()
                .map_or(50, |t| t.saturating_since(now()).millis())
                .clamp(1, 50);
            let _ = socket.set_nonblocking(false);
            let _ = socket.set_read_timeout(Some(std::time::Duration::from_millis(wait)));
            if let Ok((n, from)) = socket.recv_from(&mut inp) {
                scan.handle_datagram(now(), incoming(from), &mut inp[..n]);
            }
        }
    }
    if progress.is_some() {
        eprint!("\r");
    }
    Ok(())
}
