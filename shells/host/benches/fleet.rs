//! Polling and discovery benchmarks, each against a named peer in the same
//! run, on emulated fleets from `dca-sim serve` (loopback only):
//!
//! - full poll of N generated printers with `dca scan`, against net-snmp's
//!   `snmpbulkwalk` of the same devices (one walk of 1.3.6.1 per printer, a
//!   superset of what dca reads) at the same parallelism;
//! - discovery of a /16 holding 1,000 printers, against `onesixtyone` and
//!   `braa` (which only probe; dca also walks and qualifies every printer);
//! - dca's peak memory, as it reports it.
//!
//! Run: `cargo bench -p dca-host --bench fleet` (builds dca-sim first).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

struct Running(Child);
impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn dca_sim() -> PathBuf {
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "-p", "dca-sim", "--quiet"])
        .status()
        .unwrap();
    assert!(status.success(), "building dca-sim");
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .and_then(|d| d.parent())
        .unwrap()
        .join("dca-sim")
}

/// Starts a generated fleet of `n` printers on `net` and waits until it serves.
fn fleet(sim: &PathBuf, n: usize, net: &str) -> Running {
    fleet_with(sim, n, net, &[])
}

/// The same, with more options for `dca-sim serve` (SNMPv3 users).
fn fleet_with(sim: &PathBuf, n: usize, net: &str, more: &[&str]) -> Running {
    let mut child = Command::new(sim)
        .args([
            "serve",
            "--generate",
            &n.to_string(),
            "--seed",
            "7",
            "--bind",
            net,
            "--port",
            "1161",
        ])
        .args(more)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let r = Running(child);
    loop {
        match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(l) if l.contains("serving") => return r,
            Ok(_) => {}
            Err(e) => panic!("dca-sim did not start: {e}"),
        }
    }
}

/// The n-th host address of a /16 starting at `base` (a.b.0.0).
fn host(base: &str, i: usize) -> String {
    let prefix = base.rsplitn(3, '.').nth(2).unwrap();
    format!("{prefix}.{}.{}", i / 256, i % 256)
}

/// Runs `dca scan`; returns (seconds, printers found, peak MiB).
fn dca_scan(args: &[&str]) -> (f64, usize, f64) {
    let (secs, printers, peak, _) = dca_scan_summary(args);
    (secs, printers, peak)
}

/// The same, with the summary line `dca scan` ends with.
fn dca_scan_summary(args: &[&str]) -> (f64, usize, f64, String) {
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_dca"))
        .arg("scan")
        .args(args)
        .output()
        .unwrap();
    let secs = start.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printers = String::from_utf8_lossy(&out.stdout).lines().count();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let peak = stderr
        .split("peak memory ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    let summary = stderr
        .lines()
        .filter(|l| l.starts_with("dca scan:"))
        .collect::<Vec<_>>()
        .join(" / ");
    (secs, printers, peak, summary)
}

/// One snmpbulkwalk of 1.3.6.1 per address, `parallel` at a time.
fn netsnmp_walks(addresses: &[String], parallel: usize) -> (f64, usize) {
    netsnmp_walks_as(addresses, parallel, &["-v2c", "-c", "public"])
}

/// The same with other security options (`-v3 -u ...`).
fn netsnmp_walks_as(addresses: &[String], parallel: usize, security: &[&str]) -> (f64, usize) {
    let security: Arc<Vec<String>> = Arc::new(security.iter().map(|s| s.to_string()).collect());
    let next = Arc::new(AtomicUsize::new(0));
    let ok = Arc::new(AtomicUsize::new(0));
    let addresses = Arc::new(addresses.to_vec());
    let start = Instant::now();
    let workers: Vec<_> = (0..parallel)
        .map(|_| {
            let (next, ok, addresses) = (next.clone(), ok.clone(), addresses.clone());
            let security = security.clone();
            std::thread::spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(a) = addresses.get(i) else { break };
                    let status = Command::new("snmpbulkwalk")
                        .args(security.iter())
                        .args([
                            "-m",
                            "",
                            "-On",
                            "-Cr25",
                            "-t",
                            "1",
                            "-r",
                            "1",
                            &format!("{a}:1161"),
                            ".1.3.6.1",
                        ])
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .status();
                    if status.is_ok_and(|s| s.success()) {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
    (start.elapsed().as_secs_f64(), ok.load(Ordering::Relaxed))
}

/// Runs a discovery tool; returns (seconds, lines of output matching `found`).
fn discover(program: &str, args: &[&str], found: &str) -> (f64, usize) {
    let start = Instant::now();
    let out = Command::new("timeout")
        .arg("300")
        .arg(program)
        .args(args)
        .output()
        .expect("the peer runs");
    let secs = start.elapsed().as_secs_f64();
    let n = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(found))
        .count();
    (secs, n)
}

fn main() {
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        return;
    }
    let sim = dca_sim();
    println!(
        "\n| printers | dca scan (s) | printers/s | peak MiB | snmpbulkwalk x64 (s) | printers/s | ratio |"
    );
    println!("|---|---|---|---|---|---|---|");
    for n in [100usize, 1_000, 10_000] {
        let _fleet = fleet(&sim, n, "127.40.0.0/16");
        let range = format!("127.40.0.1-{}", host("127.40.0.0", n));
        let (secs, printers, peak) =
            dca_scan(&[&range, "--port", "1161", "--json", "--parallel", "64"]);
        assert_eq!(printers, n, "dca found every printer");
        let (ns_secs, ns_ok) = if n <= 1_000 {
            let addresses: Vec<String> = (1..=n).map(|i| host("127.40.0.0", i)).collect();
            netsnmp_walks(&addresses, 64)
        } else {
            (f64::NAN, 0)
        };
        let ns_rate = ns_ok as f64 / ns_secs;
        println!(
            "| {n} | {secs:.2} | {:.0} | {peak:.1} | {} | {} | {} |",
            n as f64 / secs,
            if ns_secs.is_nan() {
                "-".into()
            } else {
                format!("{ns_secs:.2}")
            },
            if ns_secs.is_nan() {
                "-".into()
            } else {
                format!("{ns_rate:.0}")
            },
            if ns_secs.is_nan() {
                "-".into()
            } else {
                format!("{:.0}x", (n as f64 / secs) / ns_rate)
            },
        );
    }

    // SNMPv3: 1,000 printers that answer v3 only, authPriv SHA-256/AES-128,
    // each with its own engine (so its own localised keys).
    {
        let n = 1_000;
        let _fleet = fleet_with(
            &sim,
            n,
            "127.42.0.0/16",
            &[
                "--v3-user",
                "bench:SHA-256:authpass123:AES:privpass123",
                "--v3-only",
            ],
        );
        let range = format!("127.42.0.1-{}", host("127.42.0.0", n));
        // The same options, in net-snmp's words, for dca and snmpbulkwalk.
        let v3 = [
            "-v",
            "3",
            "-u",
            "bench",
            "-l",
            "authPriv",
            "-a",
            "SHA-256",
            "-A",
            "authpass123",
            "-x",
            "AES",
            "-X",
            "privpass123",
        ];
        let mut args = vec![
            range.as_str(),
            "--port",
            "1161",
            "--json",
            "--parallel",
            "64",
        ];
        args.extend_from_slice(&v3);
        let (secs, printers, peak, summary) = dca_scan_summary(&args);
        assert_eq!(printers, n, "dca found every v3 printer: {summary}");
        let addresses: Vec<String> = (1..=n).map(|i| host("127.42.0.0", i)).collect();
        let (ns_secs, ns_ok) = netsnmp_walks_as(&addresses, 64, &v3);
        assert_eq!(ns_ok, n, "net-snmp walked every v3 printer");
        let ns_rate = ns_ok as f64 / ns_secs;
        println!("\n| SNMPv3 authPriv SHA-256/AES-128, {n} printers | seconds | printers/s |");
        println!("|---|---|---|");
        println!(
            "| dca scan (peak {peak:.1} MiB) | {secs:.2} | {:.0} |",
            n as f64 / secs
        );
        println!("| snmpbulkwalk -v3 x64 | {ns_secs:.2} | {ns_rate:.0} |");
        println!("| ratio | | {:.0}x |", (n as f64 / secs) / ns_rate);
        println!("dca's summary: {summary}");
    }

    // A /16 with 1,000 printers among 65,536 addresses.
    let _fleet = fleet(&sim, 1_000, "127.41.0.0/16");
    let (secs, printers, peak) = dca_scan(&[
        "127.41.0.0/16",
        "--port",
        "1161",
        "--json",
        "--timeout",
        "500",
        "--retries",
        "1",
    ]);
    let (o_secs, o_found) = discover(
        "onesixtyone",
        &["-p", "1161", "-w", "0", "127.41.0.0/16", "public"],
        "[public]",
    );
    let (b_secs, b_found) = discover(
        "braa",
        &[
            "-t",
            "1",
            "-d",
            "0",
            "public@127.41.0.0-127.41.255.255:1161:.1.3.6.1.2.1.1.2.0",
        ],
        // braa prints "address:time:oid:value" lines.
        "ms:",
    );
    println!("\n| /16 discovery, 1,000 printers | seconds | found |");
    println!("|---|---|---|");
    println!(
        "| dca scan (probe, walk, qualify; peak {peak:.1} MiB) | {secs:.1} | {printers} printers |"
    );
    println!("| onesixtyone 0.3 (probe only) | {o_secs:.1} | {o_found} agents |");
    println!("| braa 0.82 (probe only) | {b_secs:.1} | {b_found} agents |");
}
