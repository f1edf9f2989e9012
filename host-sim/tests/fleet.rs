//! A generated fleet of 10,000 printers from one process: every device in
//! the map, each answering as a distinct printer that dca-core's model
//! accepts.

mod support;

use dca_core::ber::Oid;
use dca_core::printer::SnapshotBuilder;
use dca_core::snmp::{CommunityMessage, Message, Pdu, PduType, Pdus, Value, VarBind, Version};
use std::collections::HashSet;
use std::net::UdpSocket;
use std::time::Duration;
use support::Sim;

/// Walks a device with GETNEXT using dca-core's codec (bounded: at most
/// 2,000 steps, 2 s per answer), feeding the snapshot builder.
fn snapshot_of(address: &str) -> dca_core::printer::Snapshot {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut builder = SnapshotBuilder::new();
    let mut cursor: Oid = "1.3.6.1.2.1".parse().unwrap();
    let end: Oid = "1.3.6.1.5".parse().unwrap();
    let (mut out, mut inp) = ([0u8; 512], [0u8; 2048]);
    for request_id in 0..2000 {
        let vbs = [VarBind::null(cursor.as_oid_ref())];
        let msg = CommunityMessage {
            version: Version::V2c,
            community: b"public",
            pdu: Pdus::Pdu(Pdu::new(PduType::GetNextRequest, request_id, &vbs[..])),
        };
        let n = msg.encode(&mut out).unwrap();
        socket.send_to(&out[..n], address).unwrap();
        let (n, _) = socket.recv_from(&mut inp).expect("the device answers");
        let Message::Community(m) = Message::decode(&inp[..n]).unwrap() else {
            panic!("v2c answer")
        };
        let vb = m.pdu.varbinds().clone().next().unwrap().unwrap();
        if vb.value == Value::EndOfMibView || vb.name.cmp(&end.as_oid_ref()).is_ge() {
            return builder.finish();
        }
        builder.push(&vb);
        cursor = vb.name.to_oid();
    }
    panic!("walk of {address} did not end");
}

#[test]
fn ten_thousand_printers_from_one_process() {
    let sim = Sim::start(
        "fleet",
        &[
            "--generate",
            "10000",
            "--seed",
            "7",
            "--bind",
            "127.16.0.0/16",
            "--port",
            "1161",
        ],
    );
    assert_eq!(sim.map.len(), 10_000);
    let addresses: HashSet<&str> = sim.map.iter().map(|(_, a)| a.as_str()).collect();
    assert_eq!(addresses.len(), 10_000, "one address per device");
    let mut serials = HashSet::new();
    for i in [0, 1, 4_999, 9_998, 9_999] {
        let (name, address) = &sim.map[i];
        let snap = snapshot_of(address);
        assert!(
            snap.is_printer(),
            "{name} at {address}: {:?}",
            snap.qualification
        );
        assert_eq!(snap.identity.sys_name.as_str(), name);
        assert!(
            !snap.supplies.is_empty() && !snap.trays.is_empty(),
            "{name}"
        );
        assert!(snap.counter("total").is_some_and(|c| c.value > 0), "{name}");
        assert!(
            snap.identity.vendor.is_some() && snap.identity.mac.is_some(),
            "{name}"
        );
        assert!(
            serials.insert(snap.identity.serial.as_str().to_string()),
            "serials are distinct"
        );
    }
    let status = sim.stop();
    assert!(status.success(), "{status}");
}
