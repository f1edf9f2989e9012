//! `dca-sim serve`: every emulated device on its own loopback address.

use crate::agent::{Behaviour, Reply, View, peek_version, respond, respond_error};
use crate::faults::Faults;
use crate::generate::Rng;
use crate::mib::{Dynamic, SimValue, Template};
use crate::usm_agent::V3Agent;
use crate::web::{self, Serving, WebStats, run_web};
use ipnet::Ipv4Net;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::net::UdpSocket;

/// Generated printers as devices, with the faults `faults_for` gives each
/// (by name) and the agent behaviour `behaviour_for` makes of them. `first`
/// is how many devices come before them (it seeds their fault dice).
pub fn generated(
    n: usize,
    seed: u64,
    time_scale: f64,
    first: usize,
    faults_for: impl Fn(&str) -> Faults,
    behaviour_for: impl Fn(&Faults) -> Arc<Behaviour>,
) -> Vec<Device> {
    let start = std::time::Instant::now();
    crate::generate::fleet(n, seed)
        .into_iter()
        .enumerate()
        .map(|(i, g)| {
            let mut printer = g.printer;
            let name = printer.name().to_string();
            let faults = faults_for(&name);
            printer.set_counter_faults(faults.counter32_wrap, faults.counters_backwards);
            let eval: Evaluator = Arc::new(move |d| {
                printer.eval(d, (start.elapsed().as_secs_f64() * time_scale) as u64)
            });
            Device {
                behaviour: behaviour_for(&faults),
                seed: seed ^ (first + i) as u64,
                name,
                source: "generated",
                template: g.template,
                eval: Some(eval),
                faults,
            }
        })
        .collect()
}

/// A fleet being served: each device on its own socket, answered by tasks
/// on a runtime that stops when the fleet is dropped.
pub struct Fleet {
    runtime: tokio::runtime::Runtime,
    stats: Arc<Stats>,
    web_stats: Arc<WebStats>,
    /// Each device's address, in order.
    pub addresses: Vec<SocketAddr>,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet")
            .field("devices", &self.addresses.len())
            .field("stats", &self.stats)
            .finish()
    }
}

impl Fleet {
    /// Binds every device on the addresses of `net` and starts serving.
    pub fn start(devices: Vec<Device>, net: Ipv4Net, port: u16) -> Result<Fleet, String> {
        Self::start_with_web(devices, net, port, WebPorts::default())
    }

    /// [`Fleet::start`], each device also serving its web pages on the
    /// TCP ports of `web` on its address.
    pub fn start_with_web(
        devices: Vec<Device>,
        net: Ipv4Net,
        port: u16,
        web: WebPorts,
    ) -> Result<Fleet, String> {
        let sockets = bind_all(&devices, net, port)?;
        let listen = |ip: std::net::IpAddr, port: Option<u16>| {
            port.map(|p| {
                let at = SocketAddr::new(ip, p);
                let l = std::net::TcpListener::bind(at).map_err(|e| format!("{at}: {e}"))?;
                l.set_nonblocking(true).map_err(|e| format!("{at}: {e}"))?;
                Ok::<_, String>(l)
            })
            .transpose()
        };
        let mut listeners = Vec::new();
        for (addr, _) in &sockets {
            listeners.push((listen(addr.ip(), web.http)?, listen(addr.ip(), web.https)?));
        }
        let mut listeners = listeners.into_iter();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the runtime: {e}"))?;
        let stats = Arc::new(Stats::default());
        let web_stats = Arc::new(WebStats::default());
        let addresses: Vec<SocketAddr> = sockets.iter().map(|(a, _)| *a).collect();
        {
            let _inside = runtime.enter();
            for (ordinal, (device, (addr, socket))) in devices.into_iter().zip(sockets).enumerate()
            {
                let socket = UdpSocket::from_std(socket).map_err(|e| format!("{addr}: {e}"))?;
                let v3 = device
                    .behaviour
                    .v3
                    .clone()
                    .map(|c| V3Agent::new(c, ordinal as u64));
                let device = Arc::new(device);
                let (http, https) = listeners.next().unwrap_or((None, None));
                let mut servers = Vec::new();
                let mut tls_at = None;
                if let Some(l) = https {
                    tls_at = Some(l.local_addr().map_err(|e| e.to_string())?);
                    let serial = web::snapshot_of(&device).identity.serial;
                    servers.push((l, Serving::Tls(web::self_signed(serial.as_str())?)));
                }
                if let Some(l) = http {
                    let serving = match tls_at {
                        Some(to) if web.redirect_to_tls => Serving::RedirectTo(to),
                        _ => Serving::Pages,
                    };
                    servers.push((l, serving));
                }
                for (l, serving) in servers {
                    let at = l.local_addr().map_err(|e| e.to_string())?;
                    let l =
                        tokio::net::TcpListener::from_std(l).map_err(|e| format!("{at}: {e}"))?;
                    runtime.spawn(run_web(device.clone(), l, serving, web_stats.clone()));
                }
                runtime.spawn(run_device(device, v3, socket, stats.clone()));
            }
        }
        Ok(Fleet {
            runtime,
            stats,
            web_stats,
            addresses,
        })
    }

    /// Runs `f` on the fleet's runtime until it ends (a shutdown signal, say).
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }

    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    pub fn web_stats(&self) -> Arc<WebStats> {
        self.web_stats.clone()
    }
}

/// The TCP ports each device serves its web pages on, if any.
#[derive(Debug, Clone, Copy, Default)]
pub struct WebPorts {
    /// Plain HTTP.
    pub http: Option<u16>,
    /// HTTPS, with a certificate the device signed itself.
    pub https: Option<u16>,
    /// With both: plain HTTP answers every request with a redirect to the
    /// same path over HTTPS, naming the device by its address, as printers
    /// do once TLS is on.
    pub redirect_to_tls: bool,
}

/// How a device computes its dynamic values.
pub type Evaluator = Arc<dyn Fn(Dynamic) -> Option<SimValue> + Send + Sync>;

/// One emulated device.
#[allow(missing_debug_implementations)] // holds a closure
pub struct Device {
    pub name: String,
    /// "recording" or "generated", as the map file says.
    pub source: &'static str,
    pub template: Arc<Template>,
    pub eval: Option<Evaluator>,
    pub behaviour: Arc<Behaviour>,
    pub faults: Faults,
    /// Seeds the device's fault dice, so a run is reproducible.
    pub seed: u64,
}

/// What the fleet did, reported at shutdown.
#[derive(Debug, Default)]
pub struct Stats {
    pub requests: AtomicU64,
    pub responses: AtomicU64,
    pub dropped: AtomicU64,
    /// Requests dropped or spoiled on purpose (loss, sleep, malformed).
    pub faulted: AtomicU64,
    /// Stray datagrams sent (the flood fault).
    pub strays: AtomicU64,
}

/// The addresses of a CIDR that can hold devices (no network or broadcast
/// address on prefixes shorter than /31).
pub fn addresses(net: Ipv4Net) -> impl Iterator<Item = Ipv4Addr> {
    net.hosts()
}

/// Binds one socket per device, in order, on the addresses of `net`.
pub fn bind_all(
    devices: &[Device],
    net: Ipv4Net,
    port: u16,
) -> Result<Vec<(SocketAddr, std::net::UdpSocket)>, String> {
    let available = addresses(net).take(devices.len()).count();
    if available < devices.len() {
        return Err(format!(
            "{net} has room for {available} devices, {} requested",
            devices.len()
        ));
    }
    // One descriptor per device, plus the runtime's own (Unix limits them;
    // Windows does not count sockets against such a limit).
    #[cfg(unix)]
    let wanted = devices.len() as u64 + 256;
    #[cfg(unix)]
    if let Ok((soft, hard)) = rlimit::Resource::NOFILE.get()
        && soft < wanted
    {
        rlimit::Resource::NOFILE
            .set(wanted.min(hard), hard)
            .map_err(|e| format!("cannot raise the open-file limit to {wanted}: {e}"))?;
    }
    addresses(net)
        .take(devices.len())
        .map(|ip| {
            let addr = SocketAddr::V4(SocketAddrV4::new(ip, port));
            let socket = std::net::UdpSocket::bind(addr).map_err(|e| format!("{addr}: {e}"))?;
            socket
                .set_nonblocking(true)
                .map_err(|e| format!("{addr}: {e}"))?;
            Ok((addr, socket))
        })
        .collect()
}

/// Writes the map atomically (tests wait for the file to appear).
pub fn write_map(
    path: &Path,
    devices: &[(String, &str)],
    addrs: &[SocketAddr],
) -> Result<(), String> {
    let entries: Vec<serde_json::Value> = devices
        .iter()
        .zip(addrs)
        .map(|((name, source), a)| serde_json::json!({"name": name, "address": a.to_string(), "source": source}))
        .collect();
    let text = serde_json::to_string_pretty(&entries).map_err(|e| e.to_string())?;
    let tmp = path.with_extension("json.partial");
    std::fs::write(&tmp, text).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Answers requests on one device's socket until the task is dropped;
/// `v3` is the device's own SNMPv3 engine, if it speaks v3.
pub async fn run_device(
    device: Arc<Device>,
    mut v3: Option<V3Agent>,
    socket: UdpSocket,
    stats: Arc<Stats>,
) {
    let absent = |_: Dynamic| None;
    let faults = &device.faults;
    let mut rng = Rng::new(device.seed);
    let mut last_request: Option<std::time::Instant> = None;
    let mut buf = vec![0u8; 2048];
    loop {
        let Ok((n, from)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        stats.requests.fetch_add(1, Ordering::Relaxed);
        let now = std::time::Instant::now();
        let was_asleep = faults.asleep_after_s.is_some_and(|idle| {
            last_request.is_none_or(|t| now.duration_since(t).as_secs() >= idle)
        });
        last_request = Some(now);
        if was_asleep || (faults.loss > 0.0 && rng.chance(faults.loss)) {
            stats.faulted.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let reply = if faults.gen_error > 0.0 && rng.chance(faults.gen_error) {
            stats.faulted.fetch_add(1, Ordering::Relaxed);
            respond_error(&device.behaviour, &buf[..n], 5)
        } else {
            let view = View {
                template: &device.template,
                eval: device.eval.as_deref().map_or(
                    &absent as &(dyn Fn(Dynamic) -> Option<SimValue> + Sync),
                    |e| e,
                ),
            };
            match v3.as_mut() {
                Some(engine) if peek_version(&buf[..n]) == Some(3) => {
                    engine.respond(&view, &device.behaviour, &mut buf[..n])
                }
                _ => respond(&view, &device.behaviour, &buf[..n]),
            }
        };
        let mut bytes = match reply {
            Reply::Send(bytes) => bytes,
            Reply::Drop(_) => {
                stats.dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
        };
        if faults.quirks.any() {
            bytes = faults.quirks.apply(&bytes);
        }
        if faults.lost_above.is_some_and(|n| bytes.len() > n) {
            stats.faulted.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        if faults.malformed > 0.0 && rng.chance(faults.malformed) {
            // Cut short: the framing promises more than arrives.
            stats.faulted.fetch_add(1, Ordering::Relaxed);
            bytes.truncate(bytes.len() * 2 / 3);
        }
        let delay = faults.delay_ms
            + if faults.jitter_ms > 0 {
                rng.range(0, faults.jitter_ms + 1)
            } else {
                0
            };
        if delay > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
        }
        if socket.send_to(&bytes, from).await.is_ok() {
            stats.responses.fetch_add(1, Ordering::Relaxed);
        }
        for i in 0..faults.flood {
            let stray = stray(&bytes, i, &mut rng);
            if socket.send_to(&stray, from).await.is_ok() {
                stats.strays.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// The `i`th stray datagram after `answer`: a stale duplicate of it, it
/// with one byte changed (a request id, a length, a value), or garbage.
fn stray(answer: &[u8], i: u32, rng: &mut Rng) -> Vec<u8> {
    match i % 3 {
        0 => answer.to_vec(),
        1 => {
            let mut b = answer.to_vec();
            if !b.is_empty() {
                let at = rng.range(0, b.len() as u64) as usize;
                b[at] ^= 1 << rng.range(0, 8);
            }
            b
        }
        _ => (0..rng.range(1, 600))
            .map(|_| rng.range(0, 256) as u8)
            .collect(),
    }
}
