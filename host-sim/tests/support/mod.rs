//! Helpers for tests that run `dca-sim serve` against real SNMP tools.
#![allow(dead_code)]

use dca_core::poll::{Sink, WalkConfig, WalkState, Walker};
use dca_core::printer::plan::walk_plan;
use dca_core::printer::{Snapshot, SnapshotBuilder};
use dca_core::snmp::Value;
use dca_core::snmprec;
use dca_core::time::Instant;
use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub fn corpus() -> PathBuf {
    std::env::var_os("DCA_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus"))
}

pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Finds a peer program; under CI a missing peer fails the test, elsewhere
/// the test is skipped with a message.
pub fn peer(candidates: &[&str]) -> Option<PathBuf> {
    for c in candidates {
        let p = Path::new(c);
        if p.is_absolute() && p.exists() {
            return Some(p.to_path_buf());
        }
        if let Ok(out) = Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {c}"))
            .output()
            && out.status.success()
        {
            return Some(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
        }
    }
    assert!(
        !in_ci(),
        "none of {candidates:?} is installed (ci/setup.sh installs them)"
    );
    eprintln!("skipping: none of {candidates:?} is installed");
    None
}

/// A child process, killed when dropped.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `cmd` and waits, bounded, for a line containing `ready` on its
/// stdout or stderr; returns the process and the lines before. Both pipes
/// are drained for the process's whole life, so it never writes into a
/// closed pipe.
pub fn start_until(mut cmd: Command, ready: &str) -> (Running, Vec<String>) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the program starts");
    let (tx, rx) = mpsc::channel();
    let pipes: [Box<dyn std::io::Read + Send>; 2] = [
        Box::new(child.stdout.take().unwrap()),
        Box::new(child.stderr.take().unwrap()),
    ];
    for pipe in pipes {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    let running = Running(child);
    let mut before = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(line) if line.contains(ready) => return (running, before),
            Ok(line) => before.push(line),
            Err(e) => panic!("{cmd:?} did not report {ready:?}: {e}"),
        }
    }
}

/// A running `dca-sim serve`.
pub struct Sim {
    pub process: Running,
    pub map: Vec<(String, String)>,
    /// What the simulator said on stderr before it was ready.
    pub startup: Vec<String>,
    dir: PathBuf,
}

impl Sim {
    /// Starts the simulator and waits until it reports that every device is
    /// bound and the map is written.
    pub fn start(name: &str, args: &[&str]) -> Sim {
        let dir = std::env::temp_dir().join(format!("dca-sim-test-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let map_path = dir.join("map.json");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dca-sim"));
        cmd.arg("serve").args(args).arg("--map").arg(&map_path);
        let (process, startup) = start_until(cmd, "serving");
        let map: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&map_path).unwrap()).unwrap();
        let map = map
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                (
                    d["name"].as_str().unwrap().to_string(),
                    d["address"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        Sim {
            process,
            map,
            startup,
            dir,
        }
    }

    pub fn address_of(&self, name: &str) -> &str {
        &self.map.iter().find(|(n, _)| n == name).unwrap().1
    }

    /// Stops the simulator as Ctrl-C would and returns its exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.process.0.id().to_string())
            .status();
        self.process.0.wait().unwrap()
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One walked or recorded value, in a form both sides can produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub oid: String,
    pub value: String,
}

/// Runs a net-snmp walk tool with numeric output, hex strings and raw
/// timeticks, bounded in time, and parses its output.
pub fn walk(tool: &Path, version: &str, community: &str, address: &str) -> Vec<Line> {
    try_walk(tool, version, community, address).unwrap_or_else(|e| panic!("{e}"))
}

/// [`walk`], returning the tool's complaint instead of failing.
pub fn try_walk(
    tool: &Path,
    version: &str,
    community: &str,
    address: &str,
) -> Result<Vec<Line>, String> {
    try_walk_as(tool, &[version, "-c", community], address)
}

/// A walk with any of net-snmp's security options (`-v3 -u ... -l ...`).
pub fn try_walk_as(tool: &Path, security: &[&str], address: &str) -> Result<Vec<Line>, String> {
    let out = Command::new("timeout")
        .arg("60")
        .arg(tool)
        .args(security)
        .args([
            "-m", "", "-On", "-Ox", "-Ot", "-Oe", "-t", "2", "-r", "2", address, ".1",
        ])
        .output()
        .expect("the walk runs");
    if !out.status.success() {
        return Err(format!(
            "{} {} {address} failed: {}",
            tool.display(),
            security.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(parse_walk(&String::from_utf8_lossy(&out.stdout)))
}

/// Parses net-snmp output: `.OID = TYPE: VALUE`, hex strings continuing on
/// following lines.
pub fn parse_walk(text: &str) -> Vec<Line> {
    let mut lines: Vec<Line> = Vec::new();
    for raw in text.lines() {
        if let Some((oid, value)) = raw.split_once(" = ").filter(|(o, _)| o.starts_with('.')) {
            lines.push(Line {
                oid: oid.trim_start_matches('.').to_string(),
                value: value.trim().to_string(),
            });
        } else if raw.trim() == "End of MIB" {
            // How net-snmp's v1 walk reports noSuchName at the end.
        } else if let Some(last) = lines.last_mut() {
            last.value.push(' ');
            last.value.push_str(raw.trim());
        }
    }
    // Walking from the root, net-snmp prints the end of the MIB view as a
    // line of its own; it is not a value.
    lines.retain(|l| !l.value.starts_with("No more variables left"));
    for l in &mut lines {
        l.value = normalise(&l.value);
    }
    lines
}

/// Compares two walks and names the first difference, briefly.
pub fn assert_same(got: &[Line], want: &[Line], what: &str) {
    let first = got.iter().zip(want).position(|(g, w)| g != w);
    match first {
        Some(i) => panic!(
            "{what}: line {i} differs:\n  got  {:?}\n  want {:?}",
            got[i], want[i]
        ),
        None => assert_eq!(
            got.len(),
            want.len(),
            "{what}: {} lines walked, {} expected",
            got.len(),
            want.len()
        ),
    }
}

fn normalise(v: &str) -> String {
    match v.split_once(": ") {
        Some(("Hex-STRING", hex)) => format!(
            "Hex-STRING: {}",
            hex.split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .to_uppercase()
        ),
        Some(("OID", o)) => format!("OID: {}", o.trim_start_matches('.')),
        _ if v == "\"\"" => "Hex-STRING: ".to_string(),
        _ => v.to_string(),
    }
}

/// What a walk of a recording must return: every line it can serve, in OID
/// order, formatted as net-snmp prints it with the options of [`walk`].
/// SNMPv1 walks skip Counter64 values (RFC 3584).
pub fn expected(recording: &Path, v1: bool) -> Vec<Line> {
    let rec = snmprec::parse(&std::fs::read_to_string(recording).unwrap());
    let mut records = rec.records;
    records.sort_by(|a, b| a.oid.cmp(&b.oid));
    records.dedup_by(|a, b| a.oid == b.oid);
    records
        .iter()
        .filter_map(|r| {
            let hex = |b: &[u8]| {
                b.iter()
                    .map(|x| format!("{x:02X}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let value = match r.value() {
                Value::Integer(i) => format!("INTEGER: {i}"),
                Value::OctetString(b) => format!("Hex-STRING: {}", hex(b)),
                Value::ObjectId(o) => format!("OID: {o}"),
                Value::IpAddress(a) => format!("IpAddress: {}.{}.{}.{}", a[0], a[1], a[2], a[3]),
                Value::Counter32(c) => format!("Counter32: {c}"),
                Value::Gauge32(c) => format!("Gauge32: {c}"),
                Value::TimeTicks(t) => t.to_string(),
                Value::Counter64(_) if v1 => return None,
                Value::Counter64(c) => format!("Counter64: {c}"),
                Value::Opaque(b) => format!("OPAQUE: {}", hex(b)),
                Value::Null => "NULL".to_string(),
                _ => return None,
            };
            Some(Line {
                oid: r.oid.to_string(),
                value,
            })
        })
        .collect()
}

/// Every recording of the corpus's LibreNMS folder.
pub fn recordings() -> Vec<PathBuf> {
    let dir = corpus().join("librenms/snmprec");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e} (set DCA_CORPUS)", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "snmprec"))
        .collect();
    v.sort();
    v
}

pub fn stem(p: &Path) -> String {
    p.file_stem().unwrap().to_string_lossy().into_owned()
}

/// The shell's loop, with a blocking socket: send what is due, wait until
/// the next timeout for an answer, repeat until the walk ends. Bounded by
/// the walk's own deadline.
pub fn drive(mut walker: Walker, address: &str, sink: &mut impl Sink) -> Walker {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.connect(address).unwrap();
    let origin = std::time::Instant::now();
    let now = || Instant::from_millis(origin.elapsed().as_millis() as u64);
    let (mut out, mut inp) = ([0u8; 1500], [0u8; 65535]);
    while walker.state() == WalkState::Running {
        while let Some(n) = walker.poll_transmit(now(), &mut out) {
            socket.send(&out[..n]).unwrap();
        }
        let Some(due) = walker.poll_timeout() else {
            break;
        };
        let wait = due.saturating_since(now()).millis().max(1);
        socket
            .set_read_timeout(Some(std::time::Duration::from_millis(wait)))
            .unwrap();
        match socket.recv(&mut inp) {
            Ok(n) => walker.handle_datagram(now(), &mut inp[..n], sink),
            Err(_) => walker.handle_timeout(now()),
        }
    }
    walker
}

pub fn walk_device(address: &str, cfg: WalkConfig) -> (Walker, Snapshot) {
    let mut builder = SnapshotBuilder::new();
    let w = drive(
        Walker::new(cfg, walk_plan(), 7, Instant::from_millis(0)),
        address,
        &mut builder,
    );
    (w, builder.finish())
}

pub fn in_process(path: &std::path::Path) -> Snapshot {
    let rec = snmprec::parse(&std::fs::read_to_string(path).unwrap());
    rec.snapshot()
}
