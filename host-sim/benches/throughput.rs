//! Throughput of `dca-sim serve` against snmpsim 1.2.2 serving the same
//! recordings, in the same run, with the same load generator; and the
//! memory of a 10,000-printer generated fleet.
//!
//! The load generator is a set of threads, each with its own UDP socket,
//! sending GETNEXT requests (dca-core's codec) round-robin over the devices
//! and waiting for each answer before the next: `responses / second` over a
//! fixed window. Run: `cargo bench -p dca-sim --bench throughput`.

use dca_core::ber::Oid;
use dca_core::snmp::{CommunityMessage, Message, Pdu, PduType, Pdus, VarBind, Version};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(5);
const WORKERS: usize = 16;

#[path = "../tests/support/mod.rs"]
mod support;

use support::start_until;

fn corpus() -> PathBuf {
    std::fs::canonicalize(support::corpus().join("librenms/snmprec"))
        .expect("the corpus (set DCA_CORPUS)")
}

/// (address, community) of every device to load.
type Targets = Vec<(String, String)>;

/// Sends GETNEXTs for `WINDOW`; returns responses per second.
fn load(targets: &Targets) -> f64 {
    let targets = Arc::new(targets.clone());
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let (targets, stop, answered) = (targets.clone(), stop.clone(), answered.clone());
            std::thread::spawn(move || {
                let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
                socket
                    .set_read_timeout(Some(Duration::from_millis(500)))
                    .unwrap();
                let name: Oid = "1.3.6.1.2.1.1.1.0".parse().unwrap();
                let (mut out, mut inp) = ([0u8; 256], [0u8; 2048]);
                let mut i = w;
                let mut request_id = (w as i32) << 20;
                while !stop.load(Ordering::Relaxed) {
                    let (address, community) = &targets[i % targets.len()];
                    i += WORKERS;
                    request_id = request_id.wrapping_add(1);
                    let vbs = [VarBind::null(name.as_oid_ref())];
                    let msg = CommunityMessage {
                        version: Version::V2c,
                        community: community.as_bytes(),
                        pdu: Pdus::Pdu(Pdu::new(PduType::GetNextRequest, request_id, &vbs[..])),
                    };
                    let n = msg.encode(&mut out).unwrap();
                    if socket.send_to(&out[..n], address.as_str()).is_err() {
                        continue;
                    }
                    // Count only the answer to this request.
                    while let Ok((n, _)) = socket.recv_from(&mut inp) {
                        if let Ok(Message::Community(m)) = Message::decode(&inp[..n])
                            && let Pdus::Pdu(p) = m.pdu
                            && p.request_id == request_id
                        {
                            answered.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(WINDOW);
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.join();
    }
    answered.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

fn rss_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn main() {
    // `cargo test --benches` runs bench binaries with --test: nothing to
    // smoke-test here beyond building.
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        return;
    }
    let dir = corpus();
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "snmprec") && !p.ends_with("zebra.snmprec"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();

    let mut sim = Command::new(env!("CARGO_BIN_EXE_dca-sim"));
    let map = std::env::temp_dir().join(format!("dca-bench-map-{}.json", std::process::id()));
    sim.args([
        "serve",
        "--recordings",
        dir.to_str().unwrap(),
        "--bind",
        "127.20.0.0/24",
        "--port",
        "1161",
        "--map",
    ])
    .arg(&map);
    let (ours_guard, _) = start_until(sim, "serving");
    let map: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&map).unwrap()).unwrap();
    let ours: Targets = map
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| names.contains(&d["name"].as_str().unwrap().to_string()))
        .map(|d| {
            (
                d["address"].as_str().unwrap().to_string(),
                "public".to_string(),
            )
        })
        .collect();
    let ours_rate = load(&ours);
    drop(ours_guard);

    let snmpsim_bin = ["/opt/dca-snmpsim/bin/snmpsim-command-responder"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("snmpsim (ci/setup.sh installs it in /opt/dca-snmpsim)");
    let cache = std::env::temp_dir().join(format!("dca-bench-snmpsim-{}", std::process::id()));
    std::fs::create_dir_all(&cache).unwrap();
    let _ = Command::new("chmod").arg("777").arg(&cache).status();
    let mut snmpsim = Command::new(snmpsim_bin);
    snmpsim
        .arg(format!("--data-dir={}", dir.display()))
        .arg(format!("--cache-dir={}", cache.display()))
        .args([
            "--agent-udpv4-endpoint=127.21.0.1:1161",
            "--process-user=nobody",
            "--process-group=nogroup",
        ]);
    let (theirs_guard, _) = start_until(snmpsim, "Listening at UDP/IPv4 endpoint");
    let theirs: Targets = names
        .iter()
        .map(|n| ("127.21.0.1:1161".to_string(), n.clone()))
        .collect();
    // The first request after "Listening" can be lost: warm up first.
    let _ = load_once(&theirs);
    let theirs_rate = load(&theirs);
    drop(theirs_guard);

    // Memory of 10,000 generated printers, after each answered one request.
    let mut fleet = Command::new(env!("CARGO_BIN_EXE_dca-sim"));
    fleet.args([
        "serve",
        "--generate",
        "10000",
        "--seed",
        "7",
        "--bind",
        "127.22.0.0/16",
        "--port",
        "1161",
    ]);
    let (fleet_guard, _) = start_until(fleet, "serving");
    let pid = fleet_guard.0.id();
    let all: Targets = (1..=10_000u32)
        .map(|i| {
            (
                format!("127.22.{}.{}:1161", i / 256, i % 256),
                "public".to_string(),
            )
        })
        .filter(|(a, _)| !a.ends_with(".0:1161"))
        .collect();
    let _ = load_once(&all);
    let (rss, hwm) = (rss_kib(pid, "VmRSS:"), rss_kib(pid, "VmHWM:"));
    drop(fleet_guard);

    println!(
        "\n| server | GETNEXT responses/s ({WORKERS} clients, {} devices) |",
        ours.len()
    );
    println!("|---|---|");
    println!("| dca-sim serve | {ours_rate:.0} |");
    println!("| snmpsim 1.2.2 | {theirs_rate:.0} |");
    println!("| ratio | {:.0}x |", ours_rate / theirs_rate.max(1.0));
    println!(
        "\n10,000 generated printers: {:.1} MiB resident ({:.1} MiB peak), {:.1} KiB per device",
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0,
        hwm as f64 / 10_000.0
    );
}

/// One request to each target, sequentially (warm-up and memory touch).
fn load_once(targets: &Targets) -> usize {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let name: Oid = "1.3.6.1.2.1.1.5.0".parse().unwrap();
    let (mut out, mut inp) = ([0u8; 256], [0u8; 2048]);
    let mut answered = 0;
    for (i, (address, community)) in targets.iter().enumerate() {
        let vbs = [VarBind::null(name.as_oid_ref())];
        let msg = CommunityMessage {
            version: Version::V2c,
            community: community.as_bytes(),
            pdu: Pdus::Pdu(Pdu::new(PduType::GetRequest, i as i32, &vbs[..])),
        };
        let n = msg.encode(&mut out).unwrap();
        if socket.send_to(&out[..n], address.as_str()).is_ok() && socket.recv_from(&mut inp).is_ok()
        {
            answered += 1;
        }
    }
    answered
}
