//! `dca provision --out FILE --targets ...`: write the provisioning block
//! (core's `provision` format) a device reads before its first boot.
//!
//! Everything is checked here, where a person can fix it, rather than on a
//! device that can only log it: each target must parse as the device will
//! parse it, and the whole must fit the block's fixed capacities.

use crate::cloud_tls::parse_pin;
use dca_core::poll::Target;
use dca_core::provision::{
    Cloud, MAX_CA, MAX_CLOUD_URL, MAX_COMMUNITIES, MAX_COMMUNITY, MAX_PINS, MAX_TARGETS, MAX_TOKEN,
    Provisioning, StaticV4,
};
use dca_core::sync::url::CloudUrl;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The most a block may take: the firmware reads one 4 KiB flash page.
const MAX_BLOCK: usize = 4096;

#[derive(clap::Args, Debug)]
pub struct ProvisionArgs {
    /// The file to write the block to.
    #[arg(long)]
    pub(crate) out: PathBuf,
    /// IPv4 addresses, CIDR blocks (a.b.c.d/n) or ranges (a.b.c.d-e.f.g.h or
    /// a.b.c.d-h), separated by commas; no host names (a device has no resolver).
    #[arg(long, required = true, value_delimiter = ',', value_name = "T[,T...]")]
    pub(crate) targets: Vec<String>,
    /// Communities to try, in order (default: public; at most 4).
    #[arg(long = "community", short = 'c', value_name = "COMMUNITY")]
    pub(crate) communities: Vec<String>,
    /// The printers' SNMP port.
    #[arg(long, default_value_t = 161)]
    pub(crate) port: u16,
    /// Seconds between sweeps.
    #[arg(long, default_value_t = 900)]
    pub(crate) schedule: u32,
    /// Sweeps to run before stopping (a test image); 0 runs for ever.
    #[arg(long, default_value_t = 0)]
    pub(crate) sweeps: u32,
    /// The device's address when no DHCP server answers.
    #[arg(long = "static", value_name = "ADDR/PREFIX[@GATEWAY]")]
    pub(crate) static_v4: Option<String>,
    /// The cloud the device delivers to (https://HOST[:PORT]).
    #[arg(long, value_name = "URL")]
    pub(crate) cloud: Option<String>,
    /// The SHA-256 of a public key the cloud may present (`dca-cloud` prints
    /// its "key pin"); repeat for a planned key rotation (at most 4).
    #[arg(long = "pin", value_name = "SHA256")]
    pub(crate) pins: Vec<String>,
    /// Or a CA certificate (PEM or DER) the cloud's chain must lead to.
    #[arg(long, value_name = "FILE")]
    pub(crate) ca: Option<PathBuf>,
    /// The one-time enrollment token (`dca-cloud token create`).
    #[arg(long, value_name = "TOKEN")]
    pub(crate) token: Option<String>,
}

pub fn run(args: &ProvisionArgs) -> ExitCode {
    let p = match build(args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("dca provision: {e}");
            return ExitCode::from(2);
        }
    };
    let block = match encode(&p) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("dca provision: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = std::fs::write(&args.out, &block) {
        eprintln!("dca provision: cannot write {}: {e}", args.out.display());
        return ExitCode::from(1);
    }
    println!(
        "wrote {} ({} bytes): {}",
        args.out.display(),
        block.len(),
        describe(&p)
    );
    ExitCode::SUCCESS
}

/// The block's contents from the arguments, or what is wrong with them.
pub(crate) fn build(args: &ProvisionArgs) -> Result<Provisioning, String> {
    let mut p = Provisioning::default();
    let mut joined = String::new();
    for t in &args.targets {
        let t = t.trim();
        if t.is_empty() {
            return Err("empty target in --targets (a stray comma?)".into());
        }
        match Target::parse(t) {
            Ok(Target::Single(IpAddr::V6(_))) => {
                return Err(format!("target {t:?}: the firmware sweeps IPv4 only"));
            }
            Ok(_) => {}
            Err(e) => return Err(format!("target {t:?}: {}", e.describe())),
        }
        if !joined.is_empty() {
            joined.push(',');
        }
        joined.push_str(t);
    }
    p.targets = joined.as_str().try_into().map_err(|_| {
        format!(
            "targets take {} bytes written out; a block holds at most {MAX_TARGETS}",
            joined.len()
        )
    })?;
    if !args.communities.is_empty() {
        if args.communities.len() > MAX_COMMUNITIES {
            return Err(format!(
                "{} communities given; a block holds at most {MAX_COMMUNITIES}",
                args.communities.len()
            ));
        }
        p.communities.clear();
        for c in &args.communities {
            let c = c
                .as_str()
                .try_into()
                .map_err(|_| format!("community {c:?} is longer than {MAX_COMMUNITY} bytes"))?;
            // Cannot fail: the count was checked above.
            let _ = p.communities.push(c);
        }
    }
    if args.schedule == 0 {
        return Err("--schedule must be at least 1 second".into());
    }
    if args.port == 0 {
        return Err("--port 0 is not a port".into());
    }
    p.schedule_s = args.schedule;
    p.sweeps = args.sweeps;
    p.port = args.port;
    p.static_v4 = args.static_v4.as_deref().map(parse_static).transpose()?;
    p.cloud = cloud(args)?;
    Ok(p)
}

/// The cloud part: all of URL, trust and token, or none of them.
fn cloud(args: &ProvisionArgs) -> Result<Option<Cloud>, String> {
    let Some(url) = &args.cloud else {
        if !args.pins.is_empty() || args.ca.is_some() || args.token.is_some() {
            return Err("--pin, --ca and --token go with --cloud".into());
        }
        return Ok(None);
    };
    // Read as the device reads it; the image resolves no names, so the
    // host must be the cloud's IPv4 address.
    let parsed = CloudUrl::parse(url).map_err(|e| format!("--cloud {url:?} {e}"))?;
    if parsed.host.parse::<std::net::Ipv4Addr>().is_err() {
        return Err(format!(
            "--cloud {url:?}: the device connects to an IPv4 address (it resolves no names): \
             give https://A.B.C.D[:PORT]"
        ));
    }
    let mut c = Cloud {
        url: url
            .trim_end_matches('/')
            .try_into()
            .map_err(|_| format!("--cloud {url:?}: longer than {MAX_CLOUD_URL} bytes"))?,
        ..Cloud::default()
    };
    if args.pins.len() > MAX_PINS {
        return Err(format!(
            "{} pins given; a block holds at most {MAX_PINS}",
            args.pins.len()
        ));
    }
    for pin in &args.pins {
        // Cannot fail: the count was checked above.
        let _ = c.pins.push(parse_pin(pin)?);
    }
    if let Some(path) = &args.ca {
        let der = ca_der(path)?;
        c.ca = der.as_slice().try_into().map_err(|_| {
            format!(
                "{}: the CA certificate takes {} bytes; a block holds at most {MAX_CA}",
                path.display(),
                der.len()
            )
        })?;
    }
    if c.pins.is_empty() && c.ca.is_empty() {
        return Err("--cloud needs --pin (the cloud's key pin) or --ca".into());
    }
    let token = args
        .token
        .as_deref()
        .ok_or("--cloud needs --token (dca-cloud token create)")?;
    c.token = token
        .try_into()
        .map_err(|_| format!("--token is longer than {MAX_TOKEN} bytes"))?;
    Ok(Some(c))
}

/// One certificate from a PEM or DER file.
fn ca_der(path: &Path) -> Result<Vec<u8>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if bytes.first() == Some(&0x30) {
        return Ok(bytes);
    }
    let mut certs = CertificateDer::pem_slice_iter(&bytes);
    match (certs.next(), certs.next()) {
        (Some(Ok(cert)), None) => Ok(cert.to_vec()),
        (None, _) => Err(format!("{}: no certificate in it", path.display())),
        (Some(Err(e)), _) => Err(format!("{}: {e}", path.display())),
        (Some(Ok(_)), Some(_)) => Err(format!(
            "{}: more than one certificate; give the one CA the chain must lead to",
            path.display()
        )),
    }
}

/// `ADDR/PREFIX[@GATEWAY]`, e.g. `10.77.0.9/24@10.77.0.1`.
pub(crate) fn parse_static(s: &str) -> Result<StaticV4, String> {
    let bad = |why: &str| format!("--static {s:?}: {why} (expected ADDR/PREFIX[@GATEWAY])");
    let (net, gateway) = match s.split_once('@') {
        Some((n, g)) => (n, Some(g)),
        None => (s, None),
    };
    let (addr, prefix) = net.split_once('/').ok_or_else(|| bad("no /PREFIX"))?;
    let address: Ipv4Addr = addr.parse().map_err(|_| bad("not an IPv4 address"))?;
    let prefix: u8 = prefix.parse().map_err(|_| bad("prefix is not a number"))?;
    if prefix > 32 {
        return Err(bad("prefix length above 32"));
    }
    let gateway = gateway
        .map(|g| {
            g.parse::<Ipv4Addr>()
                .map_err(|_| bad("gateway is not an IPv4 address"))
        })
        .transpose()?;
    Ok(StaticV4 {
        address: address.octets(),
        prefix,
        gateway: gateway.map(|g| g.octets()),
    })
}

/// The block's bytes; checked by reading them back as a device would.
pub(crate) fn encode(p: &Provisioning) -> Result<Vec<u8>, String> {
    let mut buf = vec![0u8; MAX_BLOCK];
    let n = p
        .encode(&mut buf)
        .map_err(|e| format!("cannot encode the block: {e}"))?;
    buf.truncate(n);
    match Provisioning::decode(&buf) {
        Some(Ok(back)) if back == *p => Ok(buf),
        other => Err(format!("the block does not read back: {other:?}")),
    }
}

/// One line of what a block holds.
pub(crate) fn describe(p: &Provisioning) -> String {
    let addresses: u64 = p
        .targets
        .split(',')
        .filter_map(|t| Target::parse(t).ok())
        .map(|t| t.len())
        .sum();
    let communities: Vec<&str> = p.communities.iter().map(|c| c.as_str()).collect();
    let sweeps = match p.sweeps {
        0 => "sweeping for ever".to_string(),
        1 => "stopping after 1 sweep".to_string(),
        n => format!("stopping after {n} sweeps"),
    };
    let address = match &p.static_v4 {
        None => "address by DHCP".to_string(),
        Some(s) => format!(
            "address by DHCP, else {}/{}{}",
            Ipv4Addr::from(s.address),
            s.prefix,
            s.gateway
                .map_or_else(String::new, |g| format!(" via {}", Ipv4Addr::from(g)))
        ),
    };
    let cloud = match &p.cloud {
        None => "no cloud".to_string(),
        Some(c) if c.ca.is_empty() => format!(
            "cloud {} trusted by {} key pin{}, enrollment token set",
            c.url,
            c.pins.len(),
            if c.pins.len() == 1 { "" } else { "s" }
        ),
        Some(c) => format!(
            "cloud {} trusted through a CA ({} bytes), enrollment token set",
            c.url,
            c.ca.len()
        ),
    };
    format!(
        "targets {} ({addresses} addresses), communities {}, port {}, every {} s, {sweeps}, {address}, {cloud}",
        p.targets,
        communities.join(","),
        p.port,
        p.schedule_s
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use heapless::String as HString;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ProvisionArgs,
    }

    fn args(argv: &[&str]) -> ProvisionArgs {
        let mut full = vec!["dca-provision", "--out", "prov.bin"];
        full.extend_from_slice(argv);
        Cli::try_parse_from(full).unwrap().args
    }

    fn refused(argv: &[&str]) -> String {
        build(&args(argv)).unwrap_err()
    }

    #[test]
    fn every_field_round_trips_through_the_block() {
        let a = args(&[
            "--targets",
            "10.77.0.64/26, 10.77.1.0/26",
            "--targets",
            "10.77.2.5-9",
            "-c",
            "private",
            "-c",
            "public",
            "--port",
            "1161",
            "--schedule",
            "60",
            "--sweeps",
            "3",
            "--static",
            "10.77.0.9/24@10.77.0.1",
        ]);
        let p = build(&a).unwrap();
        let block = encode(&p).unwrap();
        let back = Provisioning::decode(&block).unwrap().unwrap();
        assert_eq!(back, p);
        assert_eq!(
            back.targets.as_str(),
            "10.77.0.64/26,10.77.1.0/26,10.77.2.5-9"
        );
        let communities: Vec<&str> = back.communities.iter().map(|c| c.as_str()).collect();
        assert_eq!(communities, ["private", "public"]);
        assert_eq!((back.port, back.schedule_s, back.sweeps), (1161, 60, 3));
        assert_eq!(
            back.static_v4,
            Some(StaticV4 {
                address: [10, 77, 0, 9],
                prefix: 24,
                gateway: Some([10, 77, 0, 1]),
            })
        );
        assert_eq!(
            describe(&back),
            "targets 10.77.0.64/26,10.77.1.0/26,10.77.2.5-9 (133 addresses), communities \
             private,public, port 1161, every 60 s, stopping after 3 sweeps, address by DHCP, \
             else 10.77.0.9/24 via 10.77.0.1, no cloud"
        );
    }

    #[test]
    fn the_cloud_its_pins_or_ca_and_token_round_trip() {
        let (a, b) = ("ab".repeat(32), format!("sha256:{}", "cd".repeat(32)));
        let p = build(&args(&[
            "--targets",
            "10.77.0.70",
            "--cloud",
            "https://10.77.0.1:8443/",
            "--pin",
            &a,
            "--pin",
            &b,
            "--token",
            "tok-1",
        ]))
        .unwrap();
        let back = Provisioning::decode(&encode(&p).unwrap()).unwrap().unwrap();
        let c = back.cloud.as_ref().unwrap();
        assert_eq!(c.url.as_str(), "https://10.77.0.1:8443");
        assert_eq!(c.pins.as_slice(), &[[0xab; 32], [0xcd; 32]]);
        assert_eq!(c.token.as_str(), "tok-1");
        assert!(
            describe(&back).ends_with(
                "cloud https://10.77.0.1:8443 trusted by 2 key pins, enrollment token set"
            )
        );
        // A CA from a PEM file, kept as DER.
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = params.self_signed(&key).unwrap();
        let file =
            std::env::temp_dir().join(format!("dca-provision-ca-{}.pem", std::process::id()));
        std::fs::write(&file, ca.pem()).unwrap();
        let p = build(&args(&[
            "--targets",
            "10.77.0.70",
            "--cloud",
            "https://10.77.0.1:8443",
            "--ca",
            file.to_str().unwrap(),
            "--token",
            "tok-2",
        ]))
        .unwrap();
        let _ = std::fs::remove_file(&file);
        let back = Provisioning::decode(&encode(&p).unwrap()).unwrap().unwrap();
        assert_eq!(back.cloud.unwrap().ca.as_slice(), ca.der().as_ref());
    }

    #[test]
    fn defaults_are_core_defaults() {
        let p = build(&args(&["--targets", "10.77.0.70"])).unwrap();
        let back = Provisioning::decode(&encode(&p).unwrap()).unwrap().unwrap();
        let expected = Provisioning {
            targets: HString::try_from("10.77.0.70").unwrap(),
            ..Provisioning::default()
        };
        assert_eq!(back, expected);
        let s = parse_static("192.168.1.20/16").unwrap();
        assert_eq!(s.gateway, None);
    }

    #[test]
    fn bad_input_is_refused_naming_what_is_wrong() {
        let e = refused(&["--targets", "10.77.0.64/26,printer.example"]);
        assert!(
            e.contains("\"printer.example\"") && e.contains("not an address"),
            "{e}"
        );
        let e = refused(&["--targets", "10.77.0.0/33"]);
        assert!(
            e.contains("\"10.77.0.0/33\"") && e.contains("prefix length"),
            "{e}"
        );
        let e = refused(&["--targets", "10.77.0.9-5"]);
        assert!(
            e.contains("\"10.77.0.9-5\"") && e.contains("ends before"),
            "{e}"
        );
        let e = refused(&["--targets", "::1"]);
        assert!(e.contains("IPv4 only"), "{e}");
        let e = refused(&["--targets", "10.77.0.1,,10.77.0.2"]);
        assert!(e.contains("empty target"), "{e}");
        let long: Vec<String> = (0..30).map(|i| format!("10.77.{i}.0/24")).collect();
        let e = refused(&["--targets", &long.join(",")]);
        assert!(e.contains("at most 256"), "{e}");
        let e = refused(&["--targets", "10.77.0.1", "-c", &"x".repeat(33)]);
        assert!(e.contains("longer than 32"), "{e}");
        let e = refused(&[
            "--targets",
            "10.77.0.1",
            "-c",
            "a",
            "-c",
            "b",
            "-c",
            "c",
            "-c",
            "d",
            "-c",
            "e",
        ]);
        assert!(
            e.contains("5 communities") && e.contains("at most 4"),
            "{e}"
        );
        let e = refused(&["--targets", "10.77.0.1", "--schedule", "0"]);
        assert!(e.contains("--schedule"), "{e}");
        for (s, why) in [
            ("10.77.0.9", "no /PREFIX"),
            ("10.77.0.9/40", "above 32"),
            ("10.77.0/24", "not an IPv4 address"),
            ("10.77.0.9/x", "not a number"),
            ("10.77.0.9/24@gw", "gateway"),
        ] {
            let e = refused(&["--targets", "10.77.0.1", "--static", s]);
            assert!(e.contains(&format!("{s:?}")) && e.contains(why), "{s}: {e}");
        }
        let pin = "ab".repeat(32);
        for (argv, why) in [
            (vec!["--pin", pin.as_str()], "go with --cloud"),
            (
                vec!["--cloud", "http://10.0.0.1", "--pin", &pin, "--token", "t"],
                "must start with https://",
            ),
            (
                vec!["--cloud", "https://", "--pin", &pin, "--token", "t"],
                "no host",
            ),
            (
                vec![
                    "--cloud",
                    "https://c.example",
                    "--pin",
                    &pin,
                    "--token",
                    "t",
                ],
                "resolves no names",
            ),
            (vec!["--cloud", "https://10.0.0.1", "--token", "t"], "--pin"),
            (
                vec!["--cloud", "https://10.0.0.1", "--pin", &pin],
                "--token",
            ),
            (
                vec!["--cloud", "https://10.0.0.1", "--pin", "12", "--token", "t"],
                "SHA-256",
            ),
        ] {
            let mut full = vec!["--targets", "10.77.0.1"];
            full.extend(argv);
            let e = refused(&full);
            assert!(e.contains(why), "{full:?}: {e}");
        }
        // Missing required flags are clap's to refuse.
        assert!(Cli::try_parse_from(["dca-provision", "--out", "p.bin"]).is_err());
    }
}
