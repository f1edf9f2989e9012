//! `dca poll` against `dca-sim serve`: the snapshot of each corpus printer
//! polled over UDP equals the one built in-process from its recording, and
//! failures end with the documented exit codes.

use dca_core::printer::SnapshotBuilder;
use dca_core::snmp::VarBind;
use dca_core::snmprec;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn corpus() -> PathBuf {
    std::env::var_os("DCA_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus"))
}

/// dca-sim is another package's binary: `cargo test --workspace` builds it
/// beside this test's own binaries.
fn dca_sim() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let sim = dir.join("dca-sim");
    assert!(
        sim.exists(),
        "{} is missing: run the workspace's tests (cargo test --workspace)",
        sim.display()
    );
    sim
}

struct Sim(Child, Vec<(String, String)>);

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_sim(bind: &str) -> Sim {
    let map = std::env::temp_dir()
        .join(format!("dca-poll-test-{}-{bind}.json", std::process::id()).replace('/', "_"));
    let mut child = Command::new(dca_sim())
        .args(["serve", "--recordings"])
        .arg(corpus().join("librenms/snmprec"))
        .args(["--bind", bind, "--port", "1161", "--map"])
        .arg(&map)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    loop {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(l) if l.contains("serving") => break,
            Ok(_) => {}
            Err(e) => panic!("dca-sim did not start: {e}"),
        }
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&map).unwrap()).unwrap();
    let devices = json
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
    Sim(child, devices)
}

fn dca(args: &[&str]) -> std::process::Output {
    Command::new("timeout")
        .arg("60")
        .arg(env!("CARGO_BIN_EXE_dca"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn polling_each_corpus_printer_gives_its_in_process_snapshot() {
    let sim = start_sim("127.24.0.0/24");
    let mut printers = 0;
    for (name, address) in &sim.1 {
        let path = corpus().join(format!("librenms/snmprec/{name}.snmprec"));
        let rec = snmprec::parse(&std::fs::read_to_string(&path).unwrap());
        let mut b = SnapshotBuilder::new();
        for r in &rec.records {
            b.push(&VarBind::new(r.oid.as_oid_ref(), r.value()));
        }
        let expected = b.finish();
        let out = dca(&["poll", address, "--json", "--timeout", "300"]);
        let code = out.status.code();
        if !expected.is_printer() {
            assert_eq!(
                code,
                Some(3),
                "{name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(String::from_utf8_lossy(&out.stderr).contains("not a printer"));
            continue;
        }
        assert_eq!(
            code,
            Some(0),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let want = snapshot_json(address, &path);
        assert_eq!(got, want, "{name}");
        printers += 1;
    }
    assert!(printers >= 15, "{printers} printers polled");
}

/// The in-process snapshot of a recording, through `dca snapshot`.
fn snapshot_json(address: &str, recording: &Path) -> serde_json::Value {
    let out = dca(&[
        "snapshot",
        recording.to_str().unwrap(),
        "--address",
        address,
    ]);
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn failures_have_their_exit_codes() {
    let sim = start_sim("127.25.0.0/24");
    let address = &sim.1.iter().find(|(n, _)| n == "jetdirect").unwrap().1;
    // A wrong community looks like no answer at all: 4.
    let wrong = dca(&[
        "poll",
        address,
        "-c",
        "private",
        "--timeout",
        "100",
        "--retries",
        "0",
    ]);
    assert_eq!(
        wrong.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&wrong.stderr)
    );
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("no answer"));
    // The right one among several is found.
    let several = dca(&[
        "poll",
        address,
        "-c",
        "private",
        "-c",
        "public",
        "--timeout",
        "100",
        "--retries",
        "0",
    ]);
    assert_eq!(
        several.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&several.stderr)
    );
    assert!(String::from_utf8_lossy(&several.stdout).contains("hp"));
    // Nothing listening: 4. Bad target syntax: 2.
    assert_eq!(
        dca(&[
            "poll",
            "127.25.1.1:1161",
            "--timeout",
            "100",
            "--retries",
            "0"
        ])
        .status
        .code(),
        Some(4)
    );
    let bad = dca(&["poll", "127.0.0.1:99999"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("127.0.0.1:99999"));
}
