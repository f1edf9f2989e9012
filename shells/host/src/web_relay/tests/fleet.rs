//! End to end on an emulated printer (dca-sim, in this process): its
//! identity read over SNMP by the agent's own sweep, its web pages on port
//! 8080 relayed, its firmware form and log download refused, and nothing
//! sent to it once the session names another serial.

use super::support::*;
use crate::cloud_session::Log;
use crate::sweep::SweepArgs;
use crate::web_relay::{Connector, WebAccess, identity};
use dca_core::sync::web_access::Refusal;
use dca_sim::agent::Behaviour;
use dca_sim::faults::Faults;
use dca_sim::serve::{self, Fleet, WebPorts};
use std::sync::atomic::Ordering;
use std::sync::{Arc, mpsc};
use std::time::Duration;

const SNMP_PORT: u16 = 1161;

fn printer() -> Fleet {
    let behaviour = Arc::new(Behaviour::default());
    let devices = serve::generated(1, 11, 60.0, 0, |_| Faults::default(), |_| behaviour.clone());
    Fleet::start_with_web(
        devices,
        "127.64.9.0/30".parse().unwrap(),
        SNMP_PORT,
        WebPorts {
            http: Some(8080),
            https: None,
            redirect_to_tls: false,
        },
    )
    .unwrap()
}

#[test]
fn an_emulated_printers_pages_are_relayed_and_its_files_are_not() {
    let fleet = printer();
    let ip = fleet.addresses[0].ip();
    let reader = identity::over_snmp(SweepArgs::new(Vec::new(), SNMP_PORT));
    let serial = reader(ip).expect("the printer's serial over SNMP");
    assert!(!serial.is_empty());
    let stats = fleet.web_stats();

    let cloud = FakeCloud::new(vec![
        get("/"),
        get("/log"),
        forward(
            "POST",
            "/firmware",
            b"Content-Type: multipart/form-data; boundary=b\r\n",
            b"--b\r\nContent-Disposition: form-data; name=\"image\"; filename=\"fw.bin\"\r\n\r\nFW\r\n--b--\r\n",
        ),
        forward(
            "POST",
            "/network",
            b"Content-Type: application/x-www-form-urlencoded\r\n",
            b"hostname=front-desk",
        ),
    ]);
    let (tx, rx) = mpsc::channel();
    let relay_cloud = cloud.clone();
    let connect: Connector =
        Arc::new(move || Box::new(Signalling(relay_cloud.clone(), tx.clone())));
    let web = WebAccess::new(&[], connect, reader.clone());
    let mut o = opening(std::net::SocketAddr::new(ip, 8080), 600);
    o.serial = heapless::String::try_from(serial.as_str()).unwrap();
    let detail = web
        .open(o.clone(), "Bearer agt_1:s3cret".into(), Log::new("test"))
        .unwrap();
    assert_eq!(
        detail,
        format!("web access session 7 relaying to {ip}:8080")
    );
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the relay ended");

    let a = cloud.answers();
    assert_eq!(a.len(), 4, "{a:?}");
    assert_eq!(a[0].status, 200);
    let page = String::from_utf8_lossy(&a[0].body);
    assert!(page.contains(&serial), "{page}");
    assert!(a[0].head.contains("Content-Type: text/html"));
    assert_eq!(
        (a[1].status, a[1].refused.as_deref()),
        (403, Some(Refusal::Download.reason()))
    );
    assert!(a[1].body.is_empty());
    assert_eq!(
        (a[2].status, a[2].refused.as_deref()),
        (403, Some(Refusal::Upload.reason()))
    );
    assert_eq!((a[3].status, a[3].refused.as_deref()), (200, None));
    // The firmware form never got its upload; the log was read by the
    // agent but not relayed.
    assert_eq!(stats.uploads.load(Ordering::SeqCst), 0);
    assert_eq!(stats.settings.load(Ordering::SeqCst), 1);
    assert_eq!(stats.requests.load(Ordering::SeqCst), 3);

    // A session for another serial at this address sends nothing to it.
    let cloud = FakeCloud::new(vec![get("/")]);
    let mut other = opening(o.target, 600);
    other.serial = heapless::String::try_from("NOT-THIS-PRINTER").unwrap();
    let mut r = relay(&cloud, other, &Identities::default());
    r.identity = reader;
    r.run();
    let a = cloud.answers();
    assert_eq!(
        (a[0].status, a[0].refused.as_deref()),
        (502, Some(Refusal::OtherDevice.reason()))
    );
    assert_eq!(stats.requests.load(Ordering::SeqCst), 3);
}

/// Requests one printer with `behaviour` took for a full walk and for an
/// identity check, after checking that both found the same serial.
fn requests_for_full_walk_and_identity(behaviour: Behaviour) -> (u64, u64) {
    let devices = serve::generated(
        1,
        11,
        60.0,
        0,
        |_| Faults::default(),
        |_| Arc::new(behaviour.clone()),
    );
    let fleet = Fleet::start(devices, "127.64.9.4/30".parse().unwrap(), SNMP_PORT).unwrap();
    let ip = fleet.addresses[0].ip();
    let requests = || fleet.stats().requests.load(Ordering::SeqCst);

    let mut full = None;
    let mut args = SweepArgs::new(vec![ip.to_string()], SNMP_PORT);
    let before = requests();
    crate::sweep::sweep(&args, false, &mut |_, snap, _| {
        full = Some(snap.identity.serial.as_str().to_string());
    })
    .unwrap();
    let full_requests = requests() - before;

    args.targets.clear();
    let before = requests();
    let serial = identity::over_snmp(args)(ip).expect("its identity");
    assert_eq!(Some(serial), full);
    (full_requests, requests() - before)
}

#[test]
fn the_identity_check_reads_the_serial_of_a_full_walk_for_a_few_requests() {
    // GetBulk: a full walk is few large answers, the check fewer still.
    let (full, id) = requests_for_full_walk_and_identity(Behaviour::default());
    assert!(id < full, "identity {id} requests, full walk {full}");
    // An SNMPv1 printer answers a row per request: there the full walk's
    // supplies, trays, alerts and counters would weigh on every page load
    // (this emulated printer is a small one; an MFP has many more rows).
    let v1 = Behaviour {
        v1_only: true,
        ..Behaviour::default()
    };
    let (full, id) = requests_for_full_walk_and_identity(v1);
    assert!(id * 2 < full, "identity {id} requests, full walk {full}");
}

/// A printer whose Printer MIB is sparse (only its input trays' levels, as
/// some recorded ones): a collection qualifies it, the identity walk does
/// not see enough to, and must name it all the same.
#[test]
fn a_sparse_printer_is_named_by_the_identity_check() {
    use dca_sim::mib::{SimValue, Slot, Template};
    use dca_sim::serve::Device;
    let text = |s: &str| Slot::Fixed(SimValue::Octets(s.as_bytes().to_vec()));
    let entries = vec![
        (
            vec![1, 3, 6, 1, 2, 1, 1, 1, 0],
            text("HP ETHERNET MULTI-ENVIRONMENT,SN:VNB3K41234,FN:4Q817L4"),
        ),
        (
            vec![1, 3, 6, 1, 2, 1, 1, 2, 0],
            Slot::Fixed(SimValue::Oid(vec![1, 3, 6, 1, 4, 1, 11, 2, 3, 9, 1])),
        ),
        (
            vec![1, 3, 6, 1, 2, 1, 25, 3, 2, 1, 2, 1],
            Slot::Fixed(SimValue::Oid(vec![1, 3, 6, 1, 2, 1, 25, 3, 1, 5])),
        ),
        (
            vec![1, 3, 6, 1, 2, 1, 43, 8, 2, 1, 10, 1, 1],
            Slot::Fixed(SimValue::Integer(250)),
        ),
    ];
    let device = Device {
        name: "sparse".into(),
        source: "generated",
        template: Arc::new(Template::new(entries)),
        eval: None,
        behaviour: Arc::new(Behaviour::default()),
        faults: Faults::default(),
        seed: 1,
    };
    let fleet = Fleet::start(vec![device], "127.64.9.8/30".parse().unwrap(), SNMP_PORT).unwrap();
    let ip = fleet.addresses[0].ip();
    let mut full = Vec::new();
    let args = SweepArgs::new(vec![ip.to_string()], SNMP_PORT);
    crate::sweep::sweep(&args, false, &mut |_, snap, _| {
        full.push(snap.identity.serial.as_str().to_string());
    })
    .unwrap();
    assert_eq!(full, ["VNB3K41234"], "a collection takes it for a printer");
    let reader = identity::over_snmp(SweepArgs::new(Vec::new(), SNMP_PORT));
    assert_eq!(reader(ip).as_deref(), Ok("VNB3K41234"));
}
