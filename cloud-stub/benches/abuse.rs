//! Abuse: a well-behaved agent's ingest rate (readings stored per second,
//! batches of 500 on one kept-alive HTTPS connection, as the ingest bench
//! posts them) with the server idle, and while abusers run against the same
//! server at once:
//!
//! - idle: TLS connections opened and left silent, more from each address
//!   than its share of connection slots;
//! - slowloris: sockets dribbling a request head a byte at a time;
//! - garbage: random bodies behind a valid head (small ones, read and
//!   refused; large ones, refused unread), and heads that are not HTTP;
//! - bad credentials: requests with wrong bearer secrets, as fast as the
//!   server answers.
//!
//! The server runs in this process with its default limits on 127.58.0.1;
//! abusers come from other addresses of 127.58.0.0/16, on their own
//! threads. Prints a table; exits 1 if the agent's rate under abuse falls
//! below half its idle rate or any abuser got a 2xx answer.
//!
//! `cargo bench -p dca-cloud --bench abuse` (10 s idle, half before the
//! abuse and half after, and 15 s under abuse);
//! `-- --quick` (or DCA_ABUSE_QUICK=1) for a shorter run with fewer
//! abusers.

#[path = "../tests/inproc/mod.rs"]
mod inproc;

use dca_cloud::limits::Limits;
use dca_core::printer::{Snapshot, Text};
use dca_core::snmprec;
use dca_core::sync::Clock;
use dca_core::sync::batch::BatchId;
use dca_core::sync::message::{Readings, Request, Response};
use dca_core::sync::reading;
use inproc::{closed_within, head, read_answer};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::TlsConnector;

const SERVER: &str = "127.58.0.1";
const AGENT: &str = "127.58.0.2";
const BATCH: usize = 500;

struct Size {
    devices: usize,
    /// How long the agent is measured idle, and under abuse.
    calm: Duration,
    rough: Duration,
    idle_addresses: u8,
    idle_per_address: usize,
    slowloris: usize,
    garbage: usize,
    bad_credentials: usize,
}

impl Size {
    fn of(quick: bool) -> Size {
        if quick {
            Size {
                devices: 500,
                calm: Duration::from_secs(3),
                rough: Duration::from_secs(4),
                idle_addresses: 2,
                idle_per_address: 80,
                slowloris: 32,
                garbage: 2,
                bad_credentials: 2,
            }
        } else {
            Size {
                devices: 1000,
                calm: Duration::from_secs(10),
                // Longer than the head deadline: slowloris sockets are cut.
                rough: Duration::from_secs(15),
                idle_addresses: 8,
                idle_per_address: 80,
                slowloris: 128,
                garbage: 4,
                bad_credentials: 4,
            }
        }
    }
}

fn corpus() -> PathBuf {
    std::env::var_os("DCA_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus"))
}

fn printers() -> Vec<Snapshot> {
    let mut paths: Vec<_> = std::fs::read_dir(corpus().join("librenms/snmprec"))
        .expect("the corpus (set DCA_CORPUS)")
        .map(|e| e.expect("a corpus entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "snmprec"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| snmprec::parse(&std::fs::read_to_string(p).expect("a recording")).snapshot())
        .filter(Snapshot::is_printer)
        .collect()
}

/// The agent's fleet: every device once per round, in batches of
/// [`BATCH`], each batch chained after the one before.
struct Fleet {
    base: Vec<Snapshot>,
    devices: usize,
    round: usize,
    after: Option<BatchId>,
    position: u64,
}

impl Fleet {
    /// The next round's upload bodies, with their reading counts.
    fn next_round(&mut self) -> Vec<(Vec<u8>, u64)> {
        let round = self.round;
        self.round += 1;
        let at = Clock {
            wall_ms: Some(1_795_000_000_000 + round as u64 * 900_000),
            boot_id: [1; 16],
            mono_ms: 0,
        };
        let mut encoded = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        for i in 0..self.devices {
            let mut s = self.base[i % self.base.len()].clone();
            s.identity.serial = Text::from_str_lossy(&format!("ABUSE{i:06}"));
            // Counters only go up, round after round: no identity conflict.
            for c in s.counters.iter_mut() {
                c.value += (round * 100) as u64;
            }
            let address = format!("10.1.{}.{}", i / 256, i % 256);
            let n =
                reading::encode(&s, &at, Some(&address), &mut buf).expect("a reading fits 64 KiB");
            encoded.push(buf[..n].to_vec());
        }
        encoded
            .chunks(BATCH)
            .map(|chunk| {
                let raw = chunk.concat();
                let readings = Readings::new(&raw, chunk.len() as u64);
                let batch = BatchId::of(&readings);
                self.position += 1;
                let request = Request::Upload {
                    batch,
                    after: self.after,
                    position: self.position,
                    sent: at,
                    readings,
                };
                self.after = Some(batch);
                let mut body = vec![0u8; raw.len() + 256];
                let len = request.encode(&mut body).expect("an upload encodes");
                body.truncate(len);
                (body, chunk.len() as u64)
            })
            .collect()
    }
}

/// Posts rounds of the fleet on one kept-alive connection for `phase` (at
/// least one round); the readings stored and the time spent in requests
/// (making the batches is not counted).
async fn ingest(
    agent: &mut tokio_rustls::client::TlsStream<TcpStream>,
    auth: &str,
    fleet: &mut Fleet,
    phase: Duration,
) -> Result<(u64, Duration), String> {
    let headers = format!("Content-Type: application/cbor\r\nAuthorization: {auth}\r\n");
    let started = Instant::now();
    let mut busy = Duration::ZERO;
    let mut readings = 0;
    // Bounded: the phase's time, and a thousand rounds at most.
    for _ in 0..1000 {
        if started.elapsed() >= phase {
            break;
        }
        for (i, (body, n)) in fleet.next_round().iter().enumerate() {
            let mut bytes = head("POST", "/v1/sync", &headers, body.len());
            bytes.extend_from_slice(body);
            let start = Instant::now();
            agent
                .write_all(&bytes)
                .await
                .map_err(|e| format!("agent: round {}, upload {i}: {e}", fleet.round))?;
            let a = read_answer(agent, Duration::from_secs(60))
                .await
                .map_err(|e| format!("agent: round {}, upload {i}: {e}", fleet.round))?;
            busy += start.elapsed();
            match Response::decode(&a.body) {
                Ok(Response::Ack {
                    stored,
                    duplicate: false,
                    ..
                }) if u64::from(stored) == *n => readings += n,
                other => {
                    return Err(format!(
                        "agent: round {}, upload {i}: HTTP {}: {other:?}",
                        fleet.round, a.status
                    ));
                }
            }
        }
    }
    Ok((readings, busy))
}

/// What one kind of abuser did.
#[derive(Default)]
struct Tally {
    attempts: AtomicU64,
    /// Connections the server closed at accept (no TLS).
    refused: AtomicU64,
    /// Connections the server closed on the abuser.
    closed: AtomicU64,
    /// Connections open now, and at most.
    open: AtomicU64,
    peak: AtomicU64,
    statuses: Mutex<BTreeMap<u16, u64>>,
}

impl Tally {
    fn opened(&self) {
        let now = self.open.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak.fetch_max(now, Ordering::Relaxed);
    }

    fn ended(&self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }

    fn status(&self, s: u16) {
        *self
            .statuses
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(s)
            .or_default() += 1;
    }

    fn twos(&self) -> u64 {
        let statuses = self.statuses.lock().unwrap_or_else(|p| p.into_inner());
        statuses.range(200..300).map(|(_, n)| n).sum()
    }

    fn outcome(&self) -> String {
        let statuses = self.statuses.lock().unwrap_or_else(|p| p.into_inner());
        let mut parts: Vec<String> = statuses.iter().map(|(s, n)| format!("{s} x{n}")).collect();
        let refused = self.refused.load(Ordering::Relaxed);
        if refused > 0 {
            parts.push(format!("closed at accept x{refused}"));
        }
        let closed = self.closed.load(Ordering::Relaxed);
        if closed > 0 {
            parts.push(format!("closed by server x{closed}"));
        }
        let peak = self.peak.load(Ordering::Relaxed);
        if peak > 0 {
            parts.push(format!("held at most {peak} at once"));
        }
        if parts.is_empty() {
            "held".into()
        } else {
            parts.join(", ")
        }
    }
}

#[derive(Clone)]
struct Target {
    addr: SocketAddr,
    connector: TlsConnector,
    stop: Arc<AtomicBool>,
}

impl Target {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    async fn tcp(&self, from: IpAddr) -> std::io::Result<TcpStream> {
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(from, 0))?;
        socket.connect(self.addr).await
    }

    async fn tls(
        &self,
        from: IpAddr,
    ) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let tcp = self.tcp(from).await?;
        let name = rustls::pki_types::ServerName::from(self.addr.ip());
        tokio::time::timeout(Duration::from_secs(10), self.connector.connect(name, tcp))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "handshake"))?
    }
}

fn from(third: u8, fourth: u8) -> IpAddr {
    IpAddr::from([127, 58, third, fourth])
}

/// Opens a TLS connection and says nothing; opens another when the server
/// closes it.
async fn idle(t: Target, me: IpAddr, tally: Arc<Tally>) {
    while !t.stopped() {
        tally.attempts.fetch_add(1, Ordering::Relaxed);
        match t.tls(me).await {
            Ok(mut s) => {
                tally.opened();
                // Held until the server closes it or the run ends.
                while !t.stopped() {
                    if closed_within(&mut s, Duration::from_millis(500)).await {
                        tally.closed.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                }
                tally.ended();
            }
            Err(_) => {
                tally.refused.fetch_add(1, Ordering::Relaxed);
                // Refused: try again later, not in a tight loop.
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Dribbles a request head a byte every 500 ms; starts again when closed.
async fn slowloris(t: Target, me: IpAddr, tally: Arc<Tally>) {
    let head = head(
        "POST",
        "/v1/sync",
        "Content-Type: application/cbor\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
        10,
    );
    while !t.stopped() {
        tally.attempts.fetch_add(1, Ordering::Relaxed);
        let Ok(mut s) = t.tls(me).await else {
            tally.refused.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        tally.opened();
        for b in &head {
            if t.stopped() {
                break;
            }
            if s.write_all(&[*b]).await.is_err()
                || s.flush().await.is_err()
                || closed_within(&mut s, Duration::from_millis(500)).await
            {
                tally.closed.fetch_add(1, Ordering::Relaxed);
                break;
            }
        }
        tally.ended();
    }
}

/// xorshift: garbage needs no better randomness.
fn noise(seed: &mut u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|_| {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            *seed as u8
        })
        .collect()
}

/// One request on its own connection; the answer's status is tallied.
async fn one(t: &Target, me: IpAddr, bytes: &[u8], tally: &Tally) {
    tally.attempts.fetch_add(1, Ordering::Relaxed);
    let Ok(mut s) = t.tls(me).await else {
        tally.refused.fetch_add(1, Ordering::Relaxed);
        return;
    };
    if s.write_all(bytes).await.is_err() {
        tally.closed.fetch_add(1, Ordering::Relaxed);
        return;
    }
    match read_answer(&mut s, Duration::from_secs(20)).await {
        Ok(a) => tally.status(a.status),
        Err(_) => {
            tally.closed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Random bodies behind valid heads (small: read and refused 400; large:
/// refused 401 unread), and random heads.
async fn garbage(t: Target, me: IpAddr, seed: u64, bodies: Arc<Tally>, heads: Arc<Tally>) {
    let mut seed = seed | 1;
    let mut i = 0u64;
    while !t.stopped() {
        i += 1;
        let len = if i.is_multiple_of(2) {
            2000
        } else {
            256 * 1024
        };
        let mut bytes = head(
            "POST",
            "/v1/sync",
            "Content-Type: application/cbor\r\n",
            len,
        );
        bytes.extend_from_slice(&noise(&mut seed, len));
        one(&t, me, &bytes, &bodies).await;
        let mut junk = noise(&mut seed, 300);
        junk.extend_from_slice(b"\r\n\r\n");
        one(&t, me, &junk, &heads).await;
    }
}

/// Wrong bearer secrets, one request per connection, as fast as answered.
async fn bad_credentials(t: Target, me: IpAddr, tally: Arc<Tally>) {
    let mut i = 0u64;
    while !t.stopped() {
        i += 1;
        let body = [0xa0];
        let mut bytes = head(
            "POST",
            "/v1/sync",
            &format!(
                "Content-Type: application/cbor\r\nAuthorization: Bearer agt_{i:08x}:wrong\r\n"
            ),
            body.len(),
        );
        bytes.extend_from_slice(&body);
        one(&t, me, &bytes, &tally).await;
    }
}

fn main() -> ExitCode {
    let quick = std::env::args().any(|a| a == "--quick")
        || std::env::var("DCA_ABUSE_QUICK").is_ok_and(|v| v == "1");
    let size = Size::of(quick);
    let base = printers();
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("the server's runtime");
    let limits = Limits::default();
    let server = server_rt.block_on(inproc::start("abuse", SERVER, limits.clone()));
    let auth = server.agent("bench");
    let target = Target {
        addr: server.addr,
        connector: server.connector.clone(),
        stop: Arc::new(AtomicBool::new(false)),
    };

    let mut fleet = Fleet {
        base,
        devices: size.devices,
        round: 0,
        after: None,
        position: 0,
    };
    // The agent: its own thread and runtime, one connection for both
    // phases.
    let agent_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("the agent's runtime");
    let agent_ip = AGENT.parse().expect("an address");
    let mut agent = match agent_rt.block_on(target.tls(agent_ip)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("abuse: the agent cannot connect to {}: {e}", target.addr);
            return ExitCode::FAILURE;
        }
    };
    // Idle, half before the abuse and half after: the database grows as
    // the run goes, and the baseline takes both sizes, as the abuse phase
    // does.
    let before = match agent_rt.block_on(ingest(&mut agent, &auth, &mut fleet, size.calm / 2)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("abuse: idle phase: {e}");
            return ExitCode::FAILURE;
        }
    };

    // The abusers, on their own threads.
    let abuse_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("the abusers' runtime");
    let idle_t = Arc::new(Tally::default());
    let slow_t = Arc::new(Tally::default());
    let body_t = Arc::new(Tally::default());
    let head_t = Arc::new(Tally::default());
    let cred_t = Arc::new(Tally::default());
    let mut tasks = Vec::new();
    for a in 0..size.idle_addresses {
        for _ in 0..size.idle_per_address {
            tasks.push(abuse_rt.spawn(idle(target.clone(), from(10, a + 1), idle_t.clone())));
        }
    }
    for i in 0..size.slowloris {
        // 32 from each address: within its share of slots.
        let me = from(20, (i / 32) as u8 + 1);
        tasks.push(abuse_rt.spawn(slowloris(target.clone(), me, slow_t.clone())));
    }
    for i in 0..size.garbage {
        tasks.push(abuse_rt.spawn(garbage(
            target.clone(),
            from(30, i as u8 + 1),
            0x9e37_79b9_7f4a_7c15 ^ i as u64,
            body_t.clone(),
            head_t.clone(),
        )));
    }
    for i in 0..size.bad_credentials {
        tasks.push(abuse_rt.spawn(bad_credentials(
            target.clone(),
            from(40, i as u8 + 1),
            cred_t.clone(),
        )));
    }
    // Pacing, not synchronisation: the abusers get a second to connect.
    std::thread::sleep(Duration::from_secs(1));
    let abuse_start = Instant::now();
    let rough_rate = agent_rt.block_on(ingest(&mut agent, &auth, &mut fleet, size.rough));
    let abuse_secs = abuse_start.elapsed().as_secs_f64() + 1.0;
    target.stop.store(true, Ordering::Relaxed);
    abuse_rt.block_on(async {
        for t in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(15), t).await;
        }
    });
    drop(abuse_rt);
    let held = server.shared.slots.in_use();
    let (rough_readings, rough_busy) = match rough_rate {
        Ok(r) => r,
        Err(e) => {
            eprintln!("abuse: the agent failed under abuse: {e}");
            return ExitCode::FAILURE;
        }
    };
    let after = match agent_rt.block_on(ingest(&mut agent, &auth, &mut fleet, size.calm / 2)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("abuse: idle phase after the abuse: {e}");
            return ExitCode::FAILURE;
        }
    };
    server_rt.block_on(server.stop());
    let calm_readings = before.0 + after.0;
    let idle_rate = calm_readings as f64 / (before.1 + after.1).as_secs_f64();
    let rough_rate = rough_readings as f64 / rough_busy.as_secs_f64();

    let rate = |t: &Tally| t.attempts.load(Ordering::Relaxed) as f64 / abuse_secs;
    println!(
        "dca-cloud under abuse ({}; limits: {} connections, {} per address, head {:?}, idle {:?}; {:.1} s of abuse)",
        if quick { "quick" } else { "full" },
        limits.max_connections,
        limits.max_per_address,
        limits.head,
        limits.idle,
        abuse_secs
    );
    println!(
        "  {:<34} {:>6} {:>12}  outcome",
        "abuser", "count", "attempts/s"
    );
    let rows: [(&str, usize, &Tally); 5] = [
        (
            "idle TLS connections",
            size.idle_addresses as usize * size.idle_per_address,
            &idle_t,
        ),
        ("slowloris (1 byte / 500 ms)", size.slowloris, &slow_t),
        ("garbage bodies, valid head", size.garbage, &body_t),
        ("invalid heads", size.garbage, &head_t),
        ("wrong bearer secrets", size.bad_credentials, &cred_t),
    ];
    let mut twos = 0;
    for (name, count, t) in rows {
        twos += t.twos();
        println!(
            "  {:<34} {:>6} {:>12.1}  {}",
            name,
            count,
            rate(t),
            t.outcome()
        );
    }
    let ratio = rough_rate / idle_rate;
    println!(
        "  agent ingest (readings/s, batches of {BATCH}; {calm_readings} readings idle, {rough_readings} under abuse): idle {:.0}, under abuse {:.0}, ratio {:.2}",
        idle_rate, rough_rate, ratio
    );
    println!("  connections held once the abusers stopped: {held} (the agent's)");
    let mut failed = false;
    if ratio < 0.5 {
        eprintln!("abuse: FAILED: the agent's rate under abuse is below half its idle rate");
        failed = true;
    }
    if twos > 0 {
        eprintln!("abuse: FAILED: abusers got {twos} answers of 2xx");
        failed = true;
    }
    let _ = std::fs::remove_dir_all(inproc::fresh_dir("abuse"));
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
