//! `dca-sim serve` checked by Debian's net-snmp: `snmpbulkwalk -v2c` and
//! `snmpwalk -v1` of every corpus recording return exactly the recording's
//! OIDs and values, in order (v1 without Counter64, per RFC 3584), and so
//! does `snmpbulkwalk -v3` over the USM pairings the simulator serves.

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

/// Users the v3 fleet knows, in `--v3-user` form and as net-snmp options:
/// both AES key extensions, with hashes short enough to need them.
const V3_USERS: [(&str, &[&str]); 6] = [
    (
        "a:SHA-256:authpass123:AES:privpass123",
        &["-a", "SHA-256", "-x", "AES"],
    ),
    (
        "b:MD5:authpass123:DES:privpass123",
        &["-a", "MD5", "-x", "DES"],
    ),
    (
        "c:SHA:authpass123:AES-256:privpass123",
        &["-a", "SHA", "-x", "AES-256"],
    ),
    (
        "d:MD5:authpass123:AES-192C:privpass123",
        &["-a", "MD5", "-x", "AES192C"],
    ),
    (
        "e:SHA-224:authpass123:AES-256C:privpass123",
        &["-a", "SHA-224", "-x", "AES256C"],
    ),
    (
        "f:SHA-512:authpass123:AES-192:privpass123",
        &["-a", "SHA-512", "-x", "AES-192"],
    ),
];

#[test]
fn net_snmp_v3_walks_return_every_recording_exactly() {
    let Some(bulkwalk) = peer(&["snmpbulkwalk"]) else {
        return;
    };
    let dir = support::corpus().join("librenms/snmprec");
    let mut args = vec![
        "--recordings".to_string(),
        dir.to_str().unwrap().to_string(),
        "--bind".into(),
        "127.56.0.0/24".into(),
        "--port".into(),
        "1161".into(),
        "--v3-context".into(),
        "Jetdirect".into(),
    ];
    for (spec, _) in V3_USERS {
        args.extend(["--v3-user".to_string(), spec.to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let sim = Sim::start("netsnmp-v3", &args);
    let files = recordings();
    let mut walked = 0;
    for (i, file) in files.iter().enumerate() {
        let (spec, protocols) = V3_USERS[i % V3_USERS.len()];
        let user = &spec[..1];
        let mut security = vec!["-v3", "-u", user, "-l", "authPriv", "-A", "authpass123"];
        security.extend(["-X", "privpass123", "-n", "Jetdirect"]);
        security.extend_from_slice(protocols);
        let address = sim.address_of(&stem(file)).to_string();
        let got =
            support::try_walk_as(&bulkwalk, &security, &address).unwrap_or_else(|e| panic!("{e}"));
        support::assert_same(
            &got,
            &expected(file, false),
            &format!("snmpbulkwalk {} of {}", security.join(" "), stem(file)),
        );
        walked += got.len();
    }
    assert!(walked > 5000, "only {walked} values walked over v3");
    // A wrong context is refused by name, as HP printers do.
    let address = sim.address_of(&stem(&files[0])).to_string();
    let err = support::try_walk_as(
        &bulkwalk,
        &[
            "-v3",
            "-u",
            "a",
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
            "-n",
            "public",
        ],
        &address,
    )
    .unwrap_err();
    assert!(err.contains("context"), "{err}");
    assert!(sim.stop().success());
}
