//! `dca poll` against `dca-sim serve`: the snapshot of each corpus printer
//! polled over UDP equals the one built in-process from its recording, and
//! failures end with the documented exit codes.

mod support;

use dca_core::snmprec;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::dca;

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
    let recordings = corpus().join("librenms/snmprec");
    start_sim_with(bind, &["--recordings", recordings.to_str().unwrap()])
}

fn start_sim_with(bind: &str, source: &[&str]) -> Sim {
    let map = std::env::temp_dir()
        .join(format!("dca-poll-test-{}-{bind}.json", std::process::id()).replace('/', "_"));
    let mut child = Command::new(dca_sim())
        .arg("serve")
        .args(source)
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

#[test]
fn polling_each_corpus_printer_gives_its_in_process_snapshot() {
    let sim = start_sim("127.24.0.0/24");
    let mut printers = 0;
    for (name, address) in &sim.1 {
        let path = corpus().join(format!("librenms/snmprec/{name}.snmprec"));
        let rec = snmprec::parse(&std::fs::read_to_string(&path).unwrap());
        let expected = rec.snapshot();
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

fn in_process_is_printer(name: &str) -> bool {
    let path = corpus().join(format!("librenms/snmprec/{name}.snmprec"));
    let rec = snmprec::parse(&std::fs::read_to_string(&path).unwrap());
    rec.snapshot().is_printer()
}

/// The addresses of the printers a `dca scan --json` found.
fn scanned(args: &[&str]) -> (std::collections::BTreeSet<String>, String) {
    let mut all = vec!["scan", "--json", "--port", "1161"];
    all.extend_from_slice(args);
    let out = dca(&all);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let found = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["address"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    (found, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn scan_finds_exactly_the_printers_of_the_map() {
    let sim = start_sim("127.26.0.0/24");
    let printers: std::collections::BTreeSet<String> = sim
        .1
        .iter()
        .filter(|(n, _)| in_process_is_printer(n))
        .map(|(_, a)| a.clone())
        .collect();
    assert!(printers.len() >= 15);
    let (found, summary) = scanned(&["127.26.0.0/24", "--timeout", "200"]);
    assert_eq!(found, printers);
    assert!(
        summary.contains("256 addresses probed")
            && summary.contains(&format!("{} printers", printers.len())),
        "{summary}"
    );
    // The table lists the same printers, sorted by address (answers
    // arrive in any order).
    let table = dca(&[
        "scan",
        "--port",
        "1161",
        "127.26.0.0/24",
        "--timeout",
        "200",
    ]);
    assert!(table.status.success());
    let rows: Vec<std::net::SocketAddr> = String::from_utf8_lossy(&table.stdout)
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
        .collect();
    let mut sorted = rows.clone();
    sorted.sort();
    assert_eq!(rows, sorted);
    assert_eq!(rows.len(), printers.len());
    // Exclusions are not probed.
    let (found, summary) = scanned(&[
        "127.26.0.0/24",
        "--timeout",
        "200",
        "--exclude",
        "127.26.0.1-10",
        "--exclude",
        "127.26.0.200/25",
    ]);
    let expected: std::collections::BTreeSet<String> = printers
        .iter()
        .filter(|a| {
            let last: u32 = a
                .split(':')
                .next()
                .unwrap()
                .rsplit('.')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            (11..128).contains(&last)
        })
        .cloned()
        .collect();
    assert_eq!(found, expected);
    // .0 and .11-.127: 118 addresses.
    assert!(summary.contains("118 addresses probed"), "{summary}");
}

#[test]
fn scan_of_a_generated_fleet_with_several_communities() {
    let _sim = start_sim_with(
        "127.27.0.0/23",
        &["--generate", "300", "--seed", "11", "--community", "site-b"],
    );
    let (found, _) = scanned(&[
        "127.27.0.0/23",
        "-c",
        "public",
        "-c",
        "site-b",
        "--rate",
        "2000",
        "--timeout",
        "200",
    ]);
    assert_eq!(found.len(), 300);
    let (found, summary) = scanned(&[
        "127.27.0.0/24",
        "-c",
        "public",
        "--retries",
        "0",
        "--timeout",
        "100",
    ]);
    assert!(found.is_empty());
    assert!(summary.contains("0 answered"), "{summary}");
    let bad = dca(&["scan", "127.27.0.0/40"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("prefix length above 32"));
}

#[test]
fn faulty_fleets_are_still_fully_polled() {
    let dir = std::env::temp_dir().join(format!("dca-scan-faults-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let scenario = dir.join("scenario.json");
    // Ten generated printers per fault; the simulator's dice are seeded, so
    // the lost requests are the same on every run.
    std::fs::write(
        &scenario,
        r#"[
            {"devices": "prn-0000*", "loss": 0.2},
            {"devices": "prn-0001*", "v1_only": true},
            {"devices": "prn-0002*", "no_bulk": true},
            {"devices": "prn-0003*", "too_big_above": 3},
            {"devices": "prn-0004*", "asleep_after_s": 3600},
            {"devices": "prn-0005*", "delay_ms": 100, "jitter_ms": 100}
        ]"#,
    )
    .unwrap();
    let _sim = start_sim_with(
        "127.28.0.0/24",
        &[
            "--generate",
            "60",
            "--seed",
            "5",
            "--scenario",
            scenario.to_str().unwrap(),
        ],
    );
    let (found, summary) = scanned(&["127.28.0.0/24", "--timeout", "400", "--retries", "3"]);
    assert_eq!(found.len(), 60, "{summary}");
    // The other 196 addresses of the /24 are reported unreachable.
    assert!(
        summary.contains("60 printers, 196 unreachable, 0 walks failed"),
        "{summary}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Every printer floods the scanner's port after each answer: stale
/// duplicates, answers spoiled in one byte, garbage. The scan still finds
/// every printer with the same readings, and the silent addresses of the
/// range still time out (their timers fire under the flood).
#[test]
fn a_flood_of_strays_on_the_agents_port_changes_nothing() {
    let _quiet = start_sim_with("127.59.4.0/26", &["--generate", "40", "--seed", "8"]);
    let _loud = start_sim_with(
        "127.59.5.0/26",
        &["--generate", "40", "--seed", "8", "--flood", "200"],
    );
    let json = |net: &str| {
        let out = dca(&["scan", "--json", "--port", "1161", net, "--timeout", "400"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let readings: std::collections::BTreeMap<String, serde_json::Value> =
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(|l| {
                    let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                    let last = v["address"].as_str().unwrap().split(['.', ':']).nth(3);
                    let key = last.unwrap().to_string();
                    // Only the address and the moment differ between the fleets.
                    for k in ["address", "collected_at", "elapsed_ms"] {
                        v.as_object_mut().unwrap().remove(k);
                    }
                    (key, v)
                })
                .collect();
        (readings, String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (quiet, _) = json("127.59.4.0/26");
    let (loud, summary) = json("127.59.5.0/26");
    assert_eq!(quiet.len(), 40);
    assert_eq!(
        loud.keys().collect::<Vec<_>>(),
        quiet.keys().collect::<Vec<_>>()
    );
    for (k, v) in &quiet {
        assert_eq!(v["serial"], loud[k]["serial"], "{k}");
        assert_eq!(v["model"], loud[k]["model"], "{k}");
    }
    // The 24 silent addresses of the /26 timed out, and the strays (200
    // after each of thousands of answers; the kernel drops many more) were
    // read and dropped.
    assert!(
        summary.contains("40 printers, 24 unreachable, 0 walks failed"),
        "{summary}"
    );
    let ignored: u64 = summary
        .split(" datagrams ignored")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count of ignored datagrams in {summary}"));
    assert!(ignored > 10_000, "{summary}");
}

/// The README's run command: an emulated fleet started in-process,
/// scanned and reported, without any setup.
#[test]
fn demo_scans_its_own_emulated_fleet() {
    let out = dca(&["demo", "--printers", "40", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 40);
    let serials: std::collections::BTreeSet<&str> = lines
        .iter()
        .map(|j| j["identity"]["serial"].as_str().unwrap())
        .collect();
    assert_eq!(serials.len(), 40, "distinct printers");
    assert!(
        lines
            .iter()
            .all(|j| j["printer"] == true && !j["supplies"].as_array().unwrap().is_empty())
    );
}

/// A v3-only fleet whose printers have two different users (device N knows
/// user N mod 2), with a v2c set first: `dca scan --credentials FILE`
/// tries the sets in order on each printer, walks every one, and says
/// which set each answered; one key pair is localised per printer.
#[test]
fn scan_of_a_v3_fleet_with_credential_sets_from_a_file() {
    let sim = start_sim_with(
        "127.29.0.0/25",
        &[
            "--generate",
            "40",
            "--seed",
            "5",
            "--v3-only",
            "--v3-spread",
            "--v3-context",
            "Jetdirect",
            "--v3-user",
            "north:SHA-256:authpass123:AES:privpass123",
            "--v3-user",
            "south:MD5:authpass456:AES-256C:privpass456",
        ],
    );
    let dir = std::env::temp_dir().join(format!("dca-scan-v3-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("credentials");
    std::fs::write(
        &file,
        "# tried in order on every printer\n\
         -c public\n\
         -v 3 -u north -l authPriv -a SHA-256 -A authpass123 -x AES -X privpass123 -n Jetdirect\n\
         -v 3 -u south -l authPriv -a MD5 -A authpass456 -x AES-256C -X privpass456 -n Jetdirect\n",
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let out = dca(&[
        "scan",
        "--json",
        "--port",
        "1161",
        "127.29.0.1-40",
        "--credentials",
        file.to_str().unwrap(),
        "--timeout",
        "300",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 40, "{stderr}");
    let order: Vec<&String> = sim.1.iter().map(|(_, a)| a).collect();
    for l in &lines {
        let address = l["address"].as_str().unwrap().to_string();
        let ordinal = order.iter().position(|a| **a == address).unwrap();
        let (set, user) = if ordinal % 2 == 0 {
            (2, "north")
        } else {
            (3, "south")
        };
        assert_eq!(l["snmp"]["version"], "3", "{l}");
        assert_eq!(l["snmp"]["credential_set"], set, "{address}");
        assert_eq!(l["snmp"]["user"], user, "{address}");
        assert_eq!(l["snmp"]["level"], "authPriv");
    }
    // Keys are made per engine, never per request: north's 20 engines get
    // an authentication and a privacy key (2 each); south's 20 get north's
    // 2 first (refused: unknown user), then south's authentication key and
    // its AES-256C key, which Reeder's extension makes of two
    // localisations with MD5 (3): 20 x 2 + 20 x 5.
    assert!(stderr.contains("SNMPv3 keys localised: 140"), "{stderr}");
    // The same file, readable by others, is refused before anything is sent.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let out = dca(&[
            "scan",
            "127.29.0.1",
            "--credentials",
            file.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains("chmod 600"));
    }
}
