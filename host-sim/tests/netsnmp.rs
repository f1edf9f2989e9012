//! `dca-sim serve` checked by Debian's net-snmp: `snmpbulkwalk -v2c` and
//! `snmpwalk -v1` of every corpus recording return exactly the recording's
//! OIDs and values, in order (v1 without Counter64, per RFC 3584).

mod support;

use support::{Sim, expected, peer, recordings, stem, walk};

#[test]
fn net_snmp_walks_return_every_recording_exactly() {
    let (Some(bulkwalk), Some(snmpwalk)) = (peer(&["snmpbulkwalk"]), peer(&["snmpwalk"])) else {
        return;
    };
    let dir = support::corpus().join("librenms/snmprec");
    let sim = Sim::start(
        "netsnmp",
        &[
            "--recordings",
            dir.to_str().unwrap(),
            "--bind",
            "127.11.0.0/24",
            "--port",
            "1161",
        ],
    );
    let files = recordings();
    assert_eq!(sim.map.len(), files.len(), "one device per recording");
    // Lines that cannot be served are named with file and line, and skipped.
    assert!(
        sim.startup
            .iter()
            .any(|l| l.contains("zebra.snmprec: line 330: bad OID value")
                && l.ends_with("(skipped)")),
        "{:?}",
        sim.startup
    );
    let mut walked = 0;
    for file in &files {
        let address = sim.address_of(&stem(file)).to_string();
        let v2 = walk(&bulkwalk, "-v2c", "public", &address);
        support::assert_same(
            &v2,
            &expected(file, false),
            &format!("snmpbulkwalk -v2c of {}", stem(file)),
        );
        let v1 = walk(&snmpwalk, "-v1", "public", &address);
        support::assert_same(
            &v1,
            &expected(file, true),
            &format!("snmpwalk -v1 of {}", stem(file)),
        );
        walked += v2.len();
    }
    assert!(walked > 5000, "only {walked} values walked");
    let status = sim.stop();
    assert!(
        status.success(),
        "dca-sim exits cleanly on SIGTERM: {status}"
    );
}

#[test]
fn a_wrong_community_gets_no_answer() {
    let Some(snmpget) = peer(&["snmpget"]) else {
        return;
    };
    let dir = support::corpus().join("librenms/snmprec");
    let sim = Sim::start(
        "community",
        &[
            "--recordings",
            dir.to_str().unwrap(),
            "--bind",
            "127.13.0.0/24",
            "--port",
            "1161",
        ],
    );
    let address = sim.address_of("jetdirect").to_string();
    let get = |community: &str| {
        std::process::Command::new("timeout")
            .arg("20")
            .arg(&snmpget)
            .args([
                "-v2c",
                "-c",
                community,
                "-m",
                "",
                "-On",
                "-t",
                "1",
                "-r",
                "0",
                &address,
                "1.3.6.1.2.1.1.5.0",
            ])
            .output()
            .unwrap()
    };
    let right = get("public");
    assert!(
        right.status.success(),
        "{}",
        String::from_utf8_lossy(&right.stderr)
    );
    let wrong = get("private");
    assert!(!wrong.status.success());
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("Timeout"),
        "{}",
        String::from_utf8_lossy(&wrong.stderr)
    );
}
