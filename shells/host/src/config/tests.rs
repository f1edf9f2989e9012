use super::*;
use dca_core::poll::Credentials;

/// Writes `text` to a fresh file with `mode`.
fn file(name: &str, text: &str, mode: u32) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dca-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(format!("{name}.toml"));
    std::fs::write(&p, text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    #[cfg(not(unix))]
    let _ = mode;
    p
}

fn error(name: &str, text: &str) -> String {
    let p = file(name, text, 0o600);
    let e = Config::load(&p).unwrap_err().0;
    let shown = p.display().to_string();
    e.strip_prefix(&shown)
        .unwrap_or_else(|| panic!("{e} does not name {shown}"))
        .to_string()
}

#[test]
fn the_sample_shipped_with_the_packages_is_valid() {
    let text = include_str!("../../packaging/dca.toml");
    let c = Config::load(&file("sample", text, 0o600)).unwrap();
    let cloud = c.cloud.as_ref().unwrap();
    assert_eq!(cloud.url, "https://cloud.example.com:8443");
    assert_eq!(c.collect.targets, ["192.168.1.0/24"]);
    assert_eq!(c.collect.every_s, 900);
    let sets = c.sweep().snmp.credentials().unwrap();
    assert_eq!(sets, [Credentials::community(b"public")]);
}

#[test]
fn an_empty_file_means_the_defaults() {
    let c = Config::load(&file("empty", "", 0o644)).unwrap();
    assert!(c.cloud.is_none());
    let sweep = c.sweep();
    assert_eq!((sweep.port, sweep.timeout, sweep.parallel), (161, 1000, 64));
    assert_eq!(
        sweep.snmp.credentials().unwrap(),
        [Credentials::community(b"public")]
    );
    assert_eq!(c.log_level(), Some(LogLevel::Info));
}

#[test]
fn credential_sets_are_tried_in_the_files_order() {
    let text = r#"
[[snmp]]
version = "3"
user = "mps"
auth_protocol = "SHA-256"
auth_password = "authpass123"
priv_protocol = "AES"
priv_password = "privpass123"
context = "Jetdirect"

[[snmp]]
communities = ["private", "public"]

[[snmp]]
version = "1"
communities = ["old"]
"#;
    let c = Config::load(&file("sets", text, 0o600)).unwrap();
    let sets = c.sweep().snmp.credentials().unwrap();
    assert_eq!(sets.len(), 4);
    match &sets[0] {
        Credentials::Usm(u) => {
            assert_eq!(u.name.as_slice(), b"mps");
            assert_eq!(u.context_name.as_slice(), b"Jetdirect");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(sets[1], Credentials::community(b"private"));
    assert_eq!(
        sets[3],
        Credentials::community_in(dca_core::snmp::Version::V1, b"old")
    );
}

/// Every error names the file, the line, the column and the key.
#[test]
fn errors_name_the_line_the_column_and_the_key() {
    let e = error("unknown", "[collect]\ntargets = []\nintervl = 5\n");
    assert!(
        e.starts_with(":3:1: collect.intervl: unknown field `intervl`"),
        "{e}"
    );
    let e = error("type", "[collect]\nevery_s = \"often\"\n");
    assert!(e.starts_with(":2:11: collect.every_s: invalid type"), "{e}");
    let e = error("syntax", "[cloud]\nurl = \"https://x\n");
    assert!(e.starts_with(":2:"), "{e}");
    let e = error("zero", "[collect]\nretries = 2\n  every_s = 0\n");
    assert_eq!(e, ":3:3: collect.every_s: must be at least 1");
    let e = error(
        "pin",
        "[cloud]\nurl = \"https://cloud.example\"\npins = [\"abcd\"]\n",
    );
    assert!(e.starts_with(":3:1: cloud.pins: pin \"abcd\""), "{e}");
    let e = error(
        "auth",
        "[[snmp]]\ncommunities = [\"x\"]\n\n[[snmp]]\nversion = \"3\"\nuser = \"u\"\nauth_protocol = \"SHA-3\"\nauth_password = \"authpass123\"\n",
    );
    assert!(
        e.starts_with(":7:1: snmp[2].auth_protocol: the protocol is MD5, SHA"),
        "{e}"
    );
    let e = error("web-port-zero", "[collect]\nweb_ports = [9443, 0]\n");
    assert_eq!(e, ":2:1: collect.web_ports: ports are 1 to 65535");
    let e = error("web-port-big", "[collect]\nweb_ports = [70000]\n");
    assert!(e.starts_with(":2:"), "{e}");
    let e = error("target", "[collect]\ntargets = [\"10.0.0.300\"]\n");
    assert!(e.starts_with(":2:1: collect.targets: 10.0.0.300"), "{e}");
    let e = error("level", "[log]\nlevel = \"loud\"\n");
    assert_eq!(
        e,
        ":2:1: log.level: \"loud\": error, warn, info, debug or trace"
    );
    // An error on a table's header names that table, not the one above.
    let e = error(
        "header",
        "[cloud]\nurl = \"https://c.example\"\n[colect]\nevery_s = 5\n",
    );
    assert!(e.starts_with(":3:2: colect: unknown field `colect`"), "{e}");
    let e = error("v3c", "[[snmp]]\nversion = \"2c\"\nuser = \"mps\"\n");
    assert!(
        e.starts_with(":3:1: snmp[1].user: is an SNMPv3 option"),
        "{e}"
    );
}

/// A secret given in the wrong form is not repeated in the error (which
/// reaches logs), nor is a proxy's password.
#[test]
fn errors_never_repeat_a_secret() {
    for (name, text) in [
        ("community", "[[snmp]]\ncommunities = \"s3cret-c\"\n"),
        (
            "password",
            "[[snmp]]\nversion = \"3\"\nuser = \"u\"\nauth_password = 123456789\n",
        ),
        (
            "token",
            "[cloud]\nurl = \"https://c.example\"\ntoken = 42\n",
        ),
    ] {
        let e = error(name, text);
        assert!(e.contains("not shown: this key holds a secret"), "{e}");
        assert!(!e.contains("s3cret-c") && !e.contains("123456789"), "{e}");
    }
    let e = error(
        "proxy",
        "[cloud]\nurl = \"https://c.example\"\nproxy = \"ftp://jo:pr0xy-pass@p.example:3128\"\n",
    );
    assert!(
        e.contains("cloud.proxy") && !e.contains("pr0xy-pass"),
        "{e}"
    );
}

/// A file with secrets others may read is refused; one without is not.
#[cfg(unix)]
#[test]
fn secrets_need_an_owner_only_file() {
    let secret = "[[snmp]]\ncommunities = [\"s3cret\"]\n";
    let e = Config::load(&file("open", secret, 0o640)).unwrap_err().0;
    assert!(
        e.contains("holds secrets and others may read it (mode 640)"),
        "{e}"
    );
    assert!(!e.contains("s3cret"), "{e}");
    assert!(Config::load(&file("closed", secret, 0o600)).is_ok());
    let token = "[cloud]\nurl = \"https://c.example\"\ntoken = \"dcat_x\"\n";
    assert!(Config::load(&file("token", token, 0o644)).is_err());
    let plain = "[collect]\ntargets = [\"10.0.0.0/24\"]\n";
    assert!(Config::load(&file("plain", plain, 0o644)).is_ok());
}

#[test]
fn pins_and_a_ca_file_exclude_each_other() {
    let pin = "ab".repeat(32);
    let text = format!(
        "[cloud]\nurl = \"https://c.example\"\npins = [\"{pin}\"]\nca = \"/etc/hostname\"\n"
    );
    let e = error("both", &text);
    assert!(
        e.ends_with("cloud.ca: give pins or a CA file, not both"),
        "{e}"
    );
}

/// Device Web Access relays to the default web ports and the file's.
#[test]
fn web_ports_add_to_the_defaults() {
    let c = Config::load(&file("web", "[collect]\nweb_ports = [9443, 8000]\n", 0o644)).unwrap();
    assert_eq!(c.collect.web_ports, [9443, 8000]);
    assert!(
        Config::load(&file("no-web", "", 0o644))
            .unwrap()
            .collect
            .web_ports
            .is_empty()
    );
}
