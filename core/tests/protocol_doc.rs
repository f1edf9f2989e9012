//! docs/protocol.md shows one example of every message in CBOR diagnostic
//! notation. This test encodes each example with the core and checks that the
//! document shows exactly what the encoder emits, so the specification and
//! the code cannot drift apart.

use dca_core::snmprec;
use dca_core::sync::batch::BatchId;
use dca_core::sync::message::{Readings, RelayAnswer, Request, Response, Task};
use dca_core::sync::{Clock, reading};
use std::path::Path;

fn diag(bytes: &[u8]) -> String {
    minicbor::display(bytes).to_string()
}

fn clock() -> Clock {
    Clock {
        wall_ms: Some(1_795_000_000_000),
        boot_id: [0x5a; 16],
        mono_ms: 86_400_000,
    }
}

/// A small printer, as recorded by snmpsim, so the example stays readable.
const PRINTER: &str = "\
1.3.6.1.2.1.1.1.0|4|HP LaserJet MFP M130nw
1.3.6.1.2.1.1.2.0|6|1.3.6.1.4.1.11.2.3.9.1
1.3.6.1.2.1.1.3.0|67|4280423
1.3.6.1.2.1.1.5.0|4|NPI6B4E21
1.3.6.1.2.1.2.2.1.6.1|4x|a0d3c16b4e21
1.3.6.1.2.1.25.3.2.1.3.1|4|HP LaserJet MFP M130nw
1.3.6.1.2.1.25.3.2.1.5.1|2|2
1.3.6.1.2.1.25.3.5.1.1.1|2|3
1.3.6.1.2.1.25.3.5.1.2.1|4x|00
1.3.6.1.2.1.43.5.1.1.17.1|4|VNC3K12345
1.3.6.1.2.1.43.10.2.1.4.1.1|65|15232
1.3.6.1.2.1.43.11.1.1.4.1.1|2|3
1.3.6.1.2.1.43.11.1.1.5.1.1|2|21
1.3.6.1.2.1.43.11.1.1.6.1.1|4|Black Cartridge HP CF217A
1.3.6.1.2.1.43.11.1.1.7.1.1|2|19
1.3.6.1.2.1.43.11.1.1.8.1.1|2|1600
1.3.6.1.2.1.43.11.1.1.9.1.1|2|880
";

fn examples() -> Vec<(&'static str, Vec<u8>)> {
    let rec = snmprec::parse(PRINTER);
    let snapshot = rec.snapshot();
    assert!(snapshot.is_printer());
    let mut rbuf = [0u8; 2048];
    let rlen = reading::encode(&snapshot, &clock(), Some("10.1.2.3"), &mut rbuf).unwrap();
    let reading_bytes = rbuf[..rlen].to_vec();

    let mut out = vec![("reading", reading_bytes.clone())];
    let mut tasks = heapless::Vec::new();
    tasks
        .push(Task {
            id: 17,
            kind: "rescan",
            arg: "",
        })
        .unwrap();
    tasks
        .push(Task {
            id: 18,
            kind: "set_targets",
            arg: "10.1.2.0/24",
        })
        .unwrap();
    let requests = [
        (
            "enroll",
            Request::Enroll {
                token: "dcat_3f9a",
                agent_version: "0.1.0",
                hostname: "print-server-01",
            },
        ),
        (
            "hello",
            Request::Hello {
                agent_version: "0.1.0",
                capabilities: 15,
                clock: clock(),
            },
        ),
        (
            "upload",
            Request::Upload {
                batch: BatchId::of(&Readings::new(&reading_bytes, 1)),
                after: Some(BatchId([0x5c; 32])),
                position: 42,
                sent: clock(),
                readings: Readings::new(&reading_bytes, 1),
            },
        ),
        ("task_poll", Request::TaskPoll),
        ("listen", Request::Listen { wait_s: 25 }),
        (
            "relay",
            Request::Relay {
                session: 4,
                answer: Some(RelayAnswer {
                    seq: 2,
                    status: 200,
                    head: b"Content-Type: text/html\r\n",
                    body: b"<html>",
                    refused: None,
                }),
            },
        ),
        (
            "task_result",
            Request::TaskResult {
                task: 17,
                ok: true,
                detail: "rescan: 1 readings journaled",
            },
        ),
    ];
    for (name, r) in requests {
        let mut buf = [0u8; 4096];
        let n = r.encode(&mut buf).unwrap();
        out.push((name, buf[..n].to_vec()));
    }
    let responses = [
        (
            "enrolled",
            Response::Enrolled {
                agent_id: "agt_51c0ffee",
                secret: "9b1d...e7",
                customer: "acme",
            },
        ),
        (
            "welcome",
            Response::Welcome {
                server_ms: 1_795_000_000_250,
                last_batch: Some(BatchId([0x5c; 32])),
                held: 41,
                poll_interval_s: 300,
                hold_max_s: 25,
            },
        ),
        (
            "ack",
            Response::Ack {
                batch: BatchId::of(&Readings::new(&reading_bytes, 1)),
                stored: 1,
                duplicate: false,
            },
        ),
        ("noted", Response::Noted),
        ("tasks", Response::Tasks(tasks)),
        (
            "forward",
            Response::Forward {
                seq: 3,
                method: "GET",
                path: "/",
                head: b"Accept: text/html\r\n",
                body: b"",
            },
        ),
        ("relay_idle", Response::RelayIdle),
        ("relay_closed", Response::RelayClosed),
        (
            "rejected",
            Response::Rejected {
                code: 400,
                reason: "batch id does not match its readings",
            },
        ),
    ];
    for (name, r) in responses {
        let mut buf = [0u8; 4096];
        let n = r.encode(&mut buf).unwrap();
        out.push((name, buf[..n].to_vec()));
    }
    out
}

#[test]
fn the_document_shows_what_the_encoder_emits() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/protocol.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    let mut missing = Vec::new();
    for (name, bytes) in examples() {
        let block = format!(
            "<!-- example: {name} ({} bytes) -->\n```cbor-diag\n{}\n```",
            bytes.len(),
            diag(&bytes)
        );
        if !doc.contains(&block) {
            missing.push(block);
        }
    }
    assert!(
        missing.is_empty(),
        "docs/protocol.md must contain, verbatim:\n\n{}",
        missing.join("\n\n")
    );
}
