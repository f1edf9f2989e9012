//! `dca-sim serve` compared with snmpsim 1.2.2, a second and independent
//! agent serving the same recordings: net-snmp walks of both must agree,
//! value for value, in v2c (GetBulk) and v1 (GetNext).

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use support::{Sim, peer, recordings, stem, try_walk, walk};

/// Recordings snmpsim cannot serve, and why. The test checks that it still
/// cannot (so the exception does not outlive its reason); the net-snmp test
/// checks dca-sim on them.
const SNMPSIM_CANNOT_SERVE: &[(&str, &str)] = &[(
    "zebra",
    "OID-typed lines with the value \"0\" (one arc, not encodable in BER): snmpsim drops the whole \
     request; dca-sim skips those lines and reports them",
)];

/// snmpsim, stopped when dropped.
struct Snmpsim(std::process::Child);

impl Drop for Snmpsim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_snmpsim(program: &std::path::Path, data_dir: &std::path::Path, endpoint: &str) -> Snmpsim {
    let cache = std::env::temp_dir().join(format!("dca-snmpsim-cache-{}", std::process::id()));
    std::fs::create_dir_all(&cache).unwrap();
    // snmpsim drops to nobody, who must be able to write its index cache.
    let _ = Command::new("chmod").arg("777").arg(&cache).status();
    let mut child = Command::new(program)
        .arg(format!("--data-dir={}", data_dir.display()))
        .arg(format!("--agent-udpv4-endpoint={endpoint}"))
        .arg(format!("--cache-dir={}", cache.display()))
        .args(["--process-user=nobody", "--process-group=nogroup"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("snmpsim starts");
    let (tx, rx) = mpsc::channel();
    for pipe in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    let guard = Snmpsim(child);
    loop {
        match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(line) if line.contains("Listening at UDP/IPv4 endpoint") => break,
            Ok(_) => {}
            Err(e) => panic!("snmpsim did not start listening: {e}"),
        }
    }
    // snmpsim reports "Listening" a moment before it reads its socket: the
    // first request can be lost. Wait until it answers, boundedly.
    for _ in 0..30 {
        let probe = Command::new("snmpget")
            .args([
                "-v2c",
                "-c",
                "jetdirect",
                "-m",
                "",
                "-t",
                "1",
                "-r",
                "0",
                endpoint,
                "1.3.6.1.2.1.1.3.0",
            ])
            .output()
            .expect("snmpget runs");
        if probe.status.success() {
            return guard;
        }
    }
    panic!("snmpsim at {endpoint} does not answer")
}

#[test]
fn walks_of_dca_sim_and_snmpsim_agree() {
    let Some(snmpsim) = peer(&[
        "/opt/dca-snmpsim/bin/snmpsim-command-responder",
        "snmpsim-command-responder",
    ]) else {
        return;
    };
    let (Some(bulkwalk), Some(snmpwalk)) = (peer(&["snmpbulkwalk"]), peer(&["snmpwalk"])) else {
        return;
    };
    // snmpsim derives communities from paths: give it one without "..".
    let dir = std::fs::canonicalize(support::corpus().join("librenms/snmprec")).unwrap();
    let _reference = start_snmpsim(&snmpsim, &dir, "127.12.0.1:1161");
    let sim = Sim::start(
        "snmpsim",
        &[
            "--recordings",
            dir.to_str().unwrap(),
            "--bind",
            "127.12.1.0/24",
            "--port",
            "1161",
        ],
    );
    let mut compared = 0;
    for file in recordings() {
        let name = stem(&file);
        let ours = sim.address_of(&name).to_string();
        if let Some((_, why)) = SNMPSIM_CANNOT_SERVE.iter().find(|(n, _)| *n == name) {
            assert!(
                try_walk(&bulkwalk, "-v2c", &name, "127.12.0.1:1161").is_err(),
                "snmpsim now serves {name}: {why}"
            );
            continue;
        }
        // snmpsim selects the recording by community: the file's name.
        let theirs_v2 = walk(&bulkwalk, "-v2c", &name, "127.12.0.1:1161");
        support::assert_same(
            &walk(&bulkwalk, "-v2c", "public", &ours),
            &theirs_v2,
            &format!("v2c walk of {name}"),
        );
        let theirs_v1 = walk(&snmpwalk, "-v1", &name, "127.12.0.1:1161");
        support::assert_same(
            &walk(&snmpwalk, "-v1", "public", &ours),
            &theirs_v1,
            &format!("v1 walk of {name}"),
        );
        compared += theirs_v2.len() + theirs_v1.len();
    }
    assert!(compared > 7000, "only {compared} values compared");
}
