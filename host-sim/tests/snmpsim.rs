//! `dca-sim serve` compared with snmpsim 1.2.2, a second and independent
//! agent serving the same recordings: net-snmp walks of both must agree,
//! value for value, in v2c (GetBulk) and v1 (GetNext). And dca-core's v3
//! walker against snmpsim's SNMPv3 (pysnmp's USM, an implementation
//! independent of net-snmp): every pairing, both AES key extensions under
//! pysnmp's names, gives each recording's in-process snapshot.

mod support;

use dca_core::poll::{Credentials, WalkConfig, WalkState};
use dca_core::snmp::usm::{AuthProtocol, PrivProtocol, User};
use std::process::Command;
use support::{
    Running, Sim, in_process, peer, recordings, start_until, stem, try_walk, walk, walk_device,
};

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

/// snmpsim's name and ours for each pairing. pysnmp calls Reeder's key
/// extension AES192/AES256 and Blumenthal's AES192BLMT/AES256BLMT; net-snmp
/// (and this agent) call them AES-192C/AES-256C and AES-192/AES-256.
const V3_PAIRINGS: [(&str, &str, AuthProtocol, PrivProtocol); 7] = [
    ("MD5", "DES", AuthProtocol::Md5, PrivProtocol::Des),
    ("SHA", "AES", AuthProtocol::Sha1, PrivProtocol::Aes128),
    (
        "SHA224",
        "AES192BLMT",
        AuthProtocol::Sha224,
        PrivProtocol::Aes192,
    ),
    (
        "SHA256",
        "AES256BLMT",
        AuthProtocol::Sha256,
        PrivProtocol::Aes256,
    ),
    ("MD5", "AES256", AuthProtocol::Md5, PrivProtocol::Aes256C),
    ("SHA", "AES192", AuthProtocol::Sha1, PrivProtocol::Aes192C),
    (
        "SHA512",
        "AES256BLMT",
        AuthProtocol::Sha512,
        PrivProtocol::Aes256,
    ),
];

#[test]
fn the_v3_walker_reads_snmpsim_over_every_pairing() {
    let Some(snmpsim) = peer(&[
        "/opt/dca-snmpsim/bin/snmpsim-command-responder",
        "snmpsim-command-responder",
    ]) else {
        return;
    };
    let dir = std::fs::canonicalize(support::corpus().join("librenms/snmprec")).unwrap();
    let cache = std::env::temp_dir().join(format!("dca-snmpsim-v3-cache-{}", std::process::id()));
    std::fs::create_dir_all(&cache).unwrap();
    let _ = Command::new("chmod").arg("777").arg(&cache).status();
    let endpoint = "127.12.2.1:1161";
    let mut cmd = Command::new(&snmpsim);
    cmd.arg(format!("--cache-dir={}", cache.display()))
        .args(["--process-user=nobody", "--process-group=nogroup"])
        .args([
            "--v3-engine-id=auto",
            &format!("--data-dir={}", dir.display()),
        ]);
    for (i, (auth, privacy, _, _)) in V3_PAIRINGS.iter().enumerate() {
        cmd.arg(format!("--v3-user=user{i}"))
            .arg("--v3-auth-key=authpass123")
            .arg(format!("--v3-auth-proto={auth}"))
            .arg("--v3-priv-key=privpass123")
            .arg(format!("--v3-priv-proto={privacy}"));
    }
    cmd.arg(format!("--agent-udpv4-endpoint={endpoint}"));
    let (_guard, _) = start_until(cmd, "Listening at UDP/IPv4 endpoint");
    let files: Vec<_> = recordings()
        .into_iter()
        .filter(|f| !SNMPSIM_CANNOT_SERVE.iter().any(|(n, _)| *n == stem(f)))
        .collect();
    let mut walked = 0;
    for (i, (auth_name, priv_name, auth, privacy)) in V3_PAIRINGS.iter().enumerate() {
        // snmpsim picks the recording by context name: the file's name.
        let file = &files[i % files.len()];
        let user = User::new(format!("user{i}").as_bytes())
            .unwrap()
            .with_auth(*auth, b"authpass123")
            .unwrap()
            .with_privacy(*privacy, b"privpass123")
            .unwrap()
            .with_context(stem(file).as_bytes())
            .unwrap();
        let mut cfg = WalkConfig::with_credentials(Credentials::Usm(user));
        // pysnmp is slow to answer its first encrypted request.
        cfg.timeout = dca_core::time::Duration::from_millis(2000);
        let (w, snap) = walk_device(endpoint, cfg);
        let what = format!("{auth_name}/{priv_name} on {}", stem(file));
        assert_eq!(w.state(), WalkState::Done, "{what}: {:?}", w.stats());
        assert_eq!(snap, in_process(file), "{what}");
        walked += 1;
    }
    assert_eq!(walked, V3_PAIRINGS.len());
}
