//! SNMPv3 against net-snmp's snmpd, a real agent started here on loopback
//! with a fresh persistent directory: `dca poll -v 3` with every pairing
//! snmpd speaks answers what net-snmp's own `snmpget` answers, and each
//! kind of refusal gives its precise error.

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use support::{dca, peer_present};

/// net-snmp's agent and tools, which these tests run against.
fn peers() -> bool {
    peer_present("snmpd", "apt-get install snmpd; ci/setup.sh does")
        && peer_present("snmpget", "apt-get install snmp; ci/setup.sh does")
}

const AUTH: [&str; 6] = ["MD5", "SHA", "SHA-224", "SHA-256", "SHA-384", "SHA-512"];
/// net-snmp's names; the "C" ones are Reeder's key extension.
const PRIV: [&str; 6] = ["DES", "AES", "AES-192", "AES-256", "AES192C", "AES256C"];
const AUTH_PASS: &str = "authpass123";
const PRIV_PASS: &str = "privpass123";

struct Snmpd {
    child: Child,
    dir: PathBuf,
    address: String,
}

impl Drop for Snmpd {
    /// SIGTERM, so that snmpd saves its engine's boots count (a restart
    /// then counts one more), then SIGKILL if it lingers past 10 s.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        for _ in 0..200 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn user_name(auth: &str, privacy: Option<&str>) -> String {
    format!(
        "u{}{}",
        auth.replace('-', ""),
        privacy.unwrap_or("").replace('-', "")
    )
    .to_lowercase()
}

fn pairings() -> Vec<(&'static str, Option<&'static str>)> {
    let mut v = Vec::new();
    for a in AUTH {
        v.push((a, None));
        for p in PRIV {
            v.push((a, Some(p)));
        }
    }
    v
}

/// Starts snmpd on `address` (127.x.y.z:port) with a user per pairing, in
/// `dir` (kept across restarts, so the engine's boots count goes up).
fn snmpd(dir: &Path, address: &str) -> Snmpd {
    std::fs::create_dir_all(dir.join("persist")).unwrap();
    let mut conf = format!("agentAddress udp:{address}\nrocommunity public 127.0.0.0/8\n");
    for (a, p) in pairings() {
        let u = user_name(a, p);
        match p {
            None => conf += &format!("createUser {u} {a} \"{AUTH_PASS}\"\nrouser {u} auth\n"),
            Some(p) => {
                conf += &format!(
                    "createUser {u} {a} \"{AUTH_PASS}\" {p} \"{PRIV_PASS}\"\nrouser {u} priv\n"
                )
            }
        }
    }
    std::fs::write(dir.join("snmpd.conf"), conf).unwrap();
    let mut child = Command::new("snmpd")
        .args(["-f", "-Lo", "-C", "-c"])
        .arg(dir.join("snmpd.conf"))
        .env("SNMP_PERSISTENT_DIR", dir.join("persist"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("net-snmp's snmpd is needed (apt-get install snmpd; ci/setup.sh does)");
    // snmpd says its version once it listens.
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains("NET-SNMP version") => break,
            Ok(_) => {}
            Err(_) => panic!("snmpd did not start on {address} within 20 s"),
        }
    }
    Snmpd {
        child,
        dir: dir.to_path_buf(),
        address: address.to_string(),
    }
}

fn fresh_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("dca-snmpv3-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn v3_args(auth: &str, privacy: Option<&str>) -> Vec<String> {
    let mut a: Vec<String> = [
        "-v",
        "3",
        "-u",
        &user_name(auth, privacy),
        "-a",
        auth,
        "-A",
        AUTH_PASS,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    match privacy {
        Some(p) => a.extend(["-l", "authPriv", "-x", p, "-X", PRIV_PASS].map(String::from)),
        None => a.extend(["-l", "authNoPriv"].map(String::from)),
    }
    a
}

/// sysObjectID, sysName and sysLocation as net-snmp's snmpget reads them.
fn snmpget(address: &str, v3: &[String]) -> Vec<String> {
    let out = Command::new("timeout")
        .arg("30")
        .arg("snmpget")
        .args(v3)
        .args([
            "-On",
            "-Ovq",
            address,
            "1.3.6.1.2.1.1.2.0",
            "1.3.6.1.2.1.1.5.0",
            "1.3.6.1.2.1.1.6.0",
        ])
        .output()
        .expect("net-snmp's snmpget is needed (apt-get install snmp)");
    assert!(
        out.status.success(),
        "snmpget {v3:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            l.trim()
                .trim_matches('"')
                .trim_start_matches('.')
                .to_string()
        })
        .collect()
}

fn identity(json: &[u8]) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_slice(json).unwrap();
    let id = &v["identity"];
    ["sys_object_id", "sys_name", "sys_location"]
        .iter()
        .map(|k| id[k].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn every_pairing_answers_what_snmpget_answers() {
    if !peers() {
        return;
    }
    let dir = fresh_dir("pairings");
    let d = snmpd(&dir, "127.0.61.1:11161");
    let mut checked = 0;
    for (a, p) in pairings() {
        let args = v3_args(a, p);
        let expected = snmpget(&d.address, &args);
        let mut poll = vec!["poll".to_string(), d.address.clone(), "--json".into()];
        poll.extend(args.iter().cloned());
        let out = dca(&poll);
        // snmpd is not a printer: exit 3, with the snapshot printed.
        assert_eq!(
            out.status.code(),
            Some(3),
            "{a}/{p:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(identity(&out.stdout), expected, "{a}/{p:?}");
        checked += 1;
    }
    assert_eq!(checked, 42);
}

fn expect_refusal(address: &str, args: &[&str], phrase: &str) {
    let mut poll = vec!["poll".to_string(), address.to_string()];
    poll.extend(args.iter().map(|s| s.to_string()));
    let out = dca(&poll);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(6), "{args:?}: {err}");
    assert!(err.contains(phrase), "{args:?}: {err}");
}

#[test]
fn each_refusal_has_its_precise_error() {
    if !peers() {
        return;
    }
    let dir = fresh_dir("refusals");
    let d = snmpd(&dir, "127.0.61.2:11161");
    let user = user_name("SHA", Some("AES"));
    let base = ["-v", "3", "-u", &user, "-a", "SHA", "-x", "AES"];
    let with = |more: &[&'static str]| -> Vec<&str> {
        let mut v: Vec<&str> = base.to_vec();
        v.extend_from_slice(more);
        v
    };
    expect_refusal(
        &d.address,
        &with(&["-A", "wrongpass1", "-X", PRIV_PASS]),
        "wrong authentication password",
    );
    expect_refusal(
        &d.address,
        &with(&["-A", AUTH_PASS, "-X", "wrongpass1"]),
        "drops our encrypted requests but answers without privacy",
    );
    expect_refusal(
        &d.address,
        &["-v", "3", "-u", "nobody", "-a", "SHA", "-A", AUTH_PASS],
        "does not know this user name",
    );
    // A priv-only user asked at authNoPriv: its access rule refuses it.
    expect_refusal(
        &d.address,
        &with(&["-A", AUTH_PASS, "-l", "authNoPriv"]),
        "refused this user at this security level",
    );
    // An auth-only user asked with privacy it does not have.
    let auth_only = user_name("SHA", None);
    expect_refusal(
        &d.address,
        &[
            "-v", "3", "-u", &auth_only, "-a", "SHA", "-A", AUTH_PASS, "-x", "AES", "-X", PRIV_PASS,
        ],
        "refused the security level",
    );
}

/// The engine's id given (`-e`) skips discovery: the first request goes
/// with boots and time 0, the engine answers notInTimeWindow, the walk
/// takes its clock from that authenticated Report and goes on. After snmpd
/// restarts (a new engine clock, and here a new engine id too, since it
/// runs without its persistent configuration), the same command recovers
/// by itself again.
#[test]
fn an_engine_clock_is_learnt_again_and_a_restart_recovers() {
    if !peers() {
        return;
    }
    let dir = fresh_dir("reboot");
    let mut d = snmpd(&dir, "127.0.61.3:11161");
    let engine_hex = {
        let out = Command::new("snmpget")
            .args([
                "-v2c",
                "-c",
                "public",
                "-On",
                "-Ovq",
                &d.address,
                "1.3.6.1.6.3.10.2.1.1.0",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .chars()
            .filter(|c| c.is_ascii_hexdigit())
            .collect::<String>()
    };
    assert!(engine_hex.len() >= 10, "{engine_hex}");
    let mut args = vec![
        "poll".to_string(),
        d.address.clone(),
        "-e".into(),
        engine_hex.clone(),
    ];
    args.extend(v3_args("SHA-256", Some("AES")));
    let out = dca(&args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    let (dir, address) = (d.dir.clone(), d.address.clone());
    drop(d);
    d = snmpd(&dir, &address);
    let out = dca(&args);
    assert_eq!(
        out.status.code(),
        Some(3),
        "after the restart: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(d);
}
