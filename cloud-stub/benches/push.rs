//! The push channel: how soon a task reaches a listening agent, and what an
//! idle channel costs the cloud.
//!
//! - **Latency**: a real `dca-cloud serve` process on 127.62.0.1; an agent
//!   (this process, speaking the sync protocol over TLS) holds a `listen`;
//!   `dca-cloud task create` is run as an operator runs it, and the time
//!   from starting that command to the `tasks` answer reaching the agent is
//!   taken, 100 times. The peer is the task poll it replaces: an agent that
//!   polls every P seconds starts a task P/2 after it was made in the median
//!   and 0.99·P at the 99th percentile (300 s by default).
//! - **Idle cost**: 10,000 agents each hold a `listen` (one TLS connection
//!   each, from 200 addresses of 127.62.0.0/16); the server's resident
//!   memory is read from /proc before and while they are held.
//!
//! `cargo bench -p dca-cloud --bench push` (10,000 channels);
//! `-- --quick` for 2,000. Exits 1 when the median latency is over a
//! second or a task did not arrive.

#[path = "../tests/inproc/mod.rs"]
mod inproc;

use dca_cloud::store::Store;
use dca_core::sync::http::{self, Body};
use dca_core::sync::message::{Request, Response};
use dca_core::sync::{CONTENT_TYPE, ENDPOINT};
use std::io::BufRead;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

const SERVER: &str = "127.62.0.1";
const TASKS: usize = 100;
/// The poll interval the channel replaces (the agent's default).
const POLL_S: f64 = 300.0;
const PER_ADDRESS: usize = 50;

struct Cloud {
    child: Child,
    addr: SocketAddr,
    db: PathBuf,
    connector: TlsConnector,
}

impl Drop for Cloud {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_cloud(dir: &Path, channels: usize) -> Cloud {
    let db = dir.join("cloud.db");
    let mut child = Command::new(env!("CARGO_BIN_EXE_dca-cloud"))
        .args(["serve", "--listen", &format!("{SERVER}:0"), "--db"])
        .arg(&db)
        .arg("--tls-dir")
        .arg(dir)
        .args(["--name", SERVER])
        .args(["--max-connections", &(channels + 100).to_string()])
        .args(["--max-per-address", &(PER_ADDRESS + 2).to_string()])
        // Held longer than the measurement takes to open every channel.
        .args(["--hold", "300"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("dca-cloud starts");
    let stdout = child.stdout.take().unwrap();
    let mut addr = None;
    // Bounded: the banner is a few lines, then the process waits.
    for line in std::io::BufReader::new(stdout).lines().take(20) {
        let line = line.unwrap();
        if let Some(url) = line.split_once("listening on https://") {
            addr = Some(url.1.trim().parse().unwrap());
            break;
        }
    }
    let addr = addr.expect("dca-cloud says where it listens");
    Cloud {
        child,
        addr,
        db,
        connector: inproc::connector_for(dir),
    }
}

/// `n` enrolled agents' `Authorization` values, written straight into the
/// cloud's database before it starts (one transaction's durability per
/// agent is the cloud's rule, not this setup's: synchronous off here).
fn enroll(db: &Path, n: usize) -> Vec<String> {
    let mut store = Store::open(db).unwrap();
    store
        .connection()
        .execute_batch("PRAGMA synchronous=OFF")
        .unwrap();
    (0..n)
        .map(|i| {
            let token = store.create_token("bench").unwrap();
            let e = store
                .enroll(&token, &format!("host-{i}"), "0.2.0", "bench")
                .unwrap();
            format!("Bearer {}:{}", e.agent_id, e.secret)
        })
        .collect()
}

async fn connect(cloud: &Cloud, from: IpAddr) -> std::io::Result<TlsStream<TcpStream>> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    let tcp = socket.connect(cloud.addr).await?;
    let name = rustls::pki_types::ServerName::from(cloud.addr.ip());
    cloud.connector.connect(name, tcp).await
}

async fn post(s: &mut TlsStream<TcpStream>, auth: &str, req: &Request<'_>) -> std::io::Result<()> {
    let mut body = vec![0u8; req.encoded_len()];
    let n = req.encode(&mut body).unwrap();
    let mut head = vec![0u8; 1024];
    let h = http::write_post(
        &mut head,
        &http::PostHead {
            host: SERVER,
            path: ENDPOINT,
            authorization: Some(auth),
            content_type: CONTENT_TYPE,
            content_length: n,
            user_agent: "push-bench",
        },
    )
    .unwrap();
    let mut out = head[..h].to_vec();
    out.extend_from_slice(&body[..n]);
    s.write_all(&out).await?;
    s.flush().await
}

/// One answer's body, within `limit`.
async fn answer(s: &mut TlsStream<TcpStream>, limit: Duration) -> std::io::Result<Vec<u8>> {
    let read = async {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            if let Ok(Some(head)) = http::parse_response(&buf, false)
                && let Body::Length(len) = head.body
                && buf.len() >= head.head_len + len
            {
                return Ok(buf[head.head_len..head.head_len + len].to_vec());
            }
            let n = s.read(&mut chunk).await?;
            if n == 0 {
                return Err(std::io::Error::other("closed"));
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::time::timeout(limit, read)
        .await
        .map_err(|_| std::io::Error::other("no answer in time"))?
}

fn task_create(db: &Path, agent: &str) {
    let id = agent
        .strip_prefix("Bearer ")
        .and_then(|a| a.split_once(':'))
        .unwrap()
        .0;
    let out = Command::new(env!("CARGO_BIN_EXE_dca-cloud"))
        .args(["task", "create", "--agent", id, "--kind", "set_log_level"])
        .args(["--arg", "info", "--db"])
        .arg(db)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

/// Latencies of `TASKS` tasks to one listening agent, in ms.
async fn latencies(cloud: &Cloud, agent: &str) -> Result<Vec<f64>, String> {
    let mut s = connect(cloud, "127.62.0.2".parse().unwrap())
        .await
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for _ in 0..TASKS {
        post(&mut s, agent, &Request::Listen { wait_s: 25 })
            .await
            .map_err(|e| e.to_string())?;
        let start = Instant::now();
        let db = cloud.db.clone();
        let a = agent.to_string();
        tokio::task::spawn_blocking(move || task_create(&db, &a))
            .await
            .map_err(|e| e.to_string())?;
        let body = answer(&mut s, Duration::from_secs(30))
            .await
            .map_err(|e| e.to_string())?;
        let took = start.elapsed();
        let task = match Response::decode(&body) {
            Ok(Response::Tasks(t)) if t.len() == 1 => t[0].id,
            other => return Err(format!("the listen was answered with {other:?}")),
        };
        out.push(took.as_secs_f64() * 1000.0);
        // Reported done, so the next listen waits for the next task.
        let result = Request::TaskResult {
            task,
            ok: true,
            detail: "log level info",
        };
        post(&mut s, agent, &result)
            .await
            .map_err(|e| e.to_string())?;
        answer(&mut s, Duration::from_secs(30))
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(out)
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn open_descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// The address of the `i`-th channel: `PER_ADDRESS` per address.
fn source(i: usize) -> IpAddr {
    let a = i / PER_ADDRESS;
    IpAddr::from([127, 62, 1 + (a / 250) as u8, 1 + (a % 250) as u8])
}

/// Opens one held `listen` per agent; the streams, kept open, by agent.
async fn hold_all(cloud: &Arc<Cloud>, agents: &[String]) -> Vec<(usize, TlsStream<TcpStream>)> {
    let mut held = Vec::with_capacity(agents.len());
    // A few hundred handshakes in flight at once.
    for chunk in agents.chunks(256).enumerate() {
        let (c, part) = chunk;
        let mut set = tokio::task::JoinSet::new();
        for (j, agent) in part.iter().enumerate() {
            let (cloud, agent) = (cloud.clone(), agent.clone());
            let i = c * 256 + j;
            set.spawn(async move {
                let mut s = connect(&cloud, source(i)).await?;
                post(&mut s, &agent, &Request::Listen { wait_s: 300 }).await?;
                Ok::<_, std::io::Error>((i, s))
            });
        }
        while let Some(r) = set.join_next().await {
            held.push(r.expect("task").expect("a channel opens"));
        }
    }
    held
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() -> ExitCode {
    let quick = std::env::args().any(|a| a == "--quick");
    let channels = if quick { 2_000 } else { 10_000 };
    // Each side holds one descriptor per channel.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let (soft, _) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
    if soft < channels as u64 + 512 {
        eprintln!(
            "push: {channels} channels need {} descriptors; this process may open {soft}",
            channels + 512
        );
        return ExitCode::FAILURE;
    }
    let dir = std::env::temp_dir().join(format!("dca-push-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let t = Instant::now();
    let agents = enroll(&dir.join("cloud.db"), channels);
    eprintln!(
        "push: {channels} agents enrolled in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let cloud = Arc::new(start_cloud(&dir, channels));
    let pid = cloud.child.id();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let lat = match runtime.block_on(latencies(&cloud, &agents[0])) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("push: a task did not reach its agent: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut sorted = lat.clone();
    sorted.sort_by(f64::total_cmp);
    let (median, p99) = (percentile(&sorted, 0.5), percentile(&sorted, 0.99));

    let before = rss_kib(pid);
    let fds_before = open_descriptors(pid);
    let t = Instant::now();
    let held = runtime.block_on(hold_all(&cloud, &agents[1..]));
    let opened = t.elapsed();
    // Every listen read and parked: the server's descriptors stop changing
    // once it has taken them all (a second without change, within a
    // minute at most).
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut last, mut still_since) = (open_descriptors(pid), Instant::now());
    while Instant::now() < deadline && still_since.elapsed() < Duration::from_secs(1) {
        std::thread::sleep(Duration::from_millis(200));
        let now = open_descriptors(pid);
        if now != last {
            (last, still_since) = (now, Instant::now());
        }
    }
    let during = rss_kib(pid);
    let fds = open_descriptors(pid).saturating_sub(fds_before);
    // A task for one agent among them all: woken as fast?
    let last = agents.len() - 2;
    let mut held = held;
    let woken_ms = runtime.block_on(async {
        let (_, s) = held.iter_mut().find(|(i, _)| *i == last)?;
        let start = Instant::now();
        let db = cloud.db.clone();
        let a = agents[last + 1].clone();
        tokio::task::spawn_blocking(move || task_create(&db, &a))
            .await
            .ok()?;
        let body = answer(s, Duration::from_secs(10)).await.ok()?;
        matches!(Response::decode(&body), Ok(Response::Tasks(t)) if t.len() == 1)
            .then(|| start.elapsed().as_secs_f64() * 1000.0)
    });
    drop(held);
    println!();
    println!(
        "push channel ({channels} channels; the cloud on {SERVER}, held {} channels from {} addresses)",
        channels - 1,
        (channels - 1).div_ceil(PER_ADDRESS)
    );
    println!("{:<52} {:>12} {:>12}", "", "median", "p99");
    println!(
        "{:<52} {:>9.1} ms {:>9.1} ms",
        format!("task create -> agent has the task ({TASKS} tasks)"),
        median,
        p99
    );
    println!(
        "{:<52} {:>10.0} s {:>10.0} s",
        format!("the task poll it replaces (every {POLL_S:.0} s)"),
        POLL_S / 2.0,
        POLL_S * 0.99
    );
    match woken_ms {
        Some(ms) => println!("{:<52} {:>9.1} ms", "one task among the held channels", ms),
        None => println!(
            "{:<52} {:>12}",
            "one task among the held channels", "not answered"
        ),
    }
    let per = (during.saturating_sub(before)) as f64 * 1024.0 / (channels - 1) as f64;
    println!(
        "idle channels: {} held ({} descriptors) opened in {:.1} s; cloud RSS {:.1} MiB before, {:.1} MiB while held: {:.1} KiB per channel",
        channels - 1,
        fds,
        opened.as_secs_f64(),
        before as f64 / 1024.0,
        during as f64 / 1024.0,
        per / 1024.0
    );
    let _ = std::fs::remove_dir_all(&dir);
    if median > 1000.0 || woken_ms.is_none() {
        eprintln!(
            "push: FAIL (median {median:.1} ms, or a task among the held channels never arrived)"
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
