//! `dca-sim serve` compared with snmpsim 1.2.2, a second and independent
//! agent serving the same recordings: net-snmp walks of both must agree,
//! value for value, in v2c (GetBulk) and v1 (GetNext).

mod support;

use std::process::Command;
use support::{Running, Sim, peer, recordings, start_until, stem, try_walk, walk};

/// Recordings snmpsim cannot serve, and why. The test checks that it still
/// cannot (so the exception does not outlive its reason); the net-snmp test
/// checks dca-sim on them.
const SNMPSIM_CANNOT_SERVE: &[(&str, &str)] = &[(
    "zebra",
    "OID-typed lines with the value \"0\" (one arc, not encodable in BER): snmpsim drops the whole \
     request; dca-sim skips those lines and reports them",
)];

fn start_snmpsim(
    program: &std::path::Path,
    snmpget: &std::path::Path,
    data_dir: &std::path::Path,
    endpoint: &str,
) -> Running {
    let cache = std::env::temp_dir().join(format!("dca-snmpsim-cache-{}", std::process::id()));
    std::fs::create_dir_all(&cache).unwrap();
    // snmpsim drops to nobody, who must be able to write its index cache.
    let _ = Command::new("chmod").arg("777").arg(&cache).status();
    let mut cmd = Command::new(program);
    cmd.arg(format!("--data-dir={}", data_dir.display()))
        .arg(format!("--agent-udpv4-endpoint={endpoint}"))
        .arg(format!("--cache-dir={}", cache.display()))
        .args(["--process-user=nobody", "--process-group=nogroup"]);
    let (guard, _) = start_until(cmd, "Listening at UDP/IPv4 endpoint");
    // snmpsim reports "Listening" a moment before it reads its socket: the
    // first request can be lost. Wait until it answers, boundedly.
    for _ in 0..30 {
        let probe = Command::new(snmpget)
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
    let (Some(bulkwalk), Some(snmpwalk), Some(snmpget)) = (
        peer(&["snmpbulkwalk"]),
        peer(&["snmpwalk"]),
        peer(&["snmpget"]),
    ) else {
        return;
    };
    // snmpsim derives communities from paths: give it one without "..".
    let dir = std::fs::canonicalize(support::corpus().join("librenms/snmprec")).unwrap();
    let _reference = start_snmpsim(&snmpsim, &snmpget, &dir, "127.12.0.1:1161");
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
