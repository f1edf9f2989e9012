//! The sync protocol: every corpus printer's reading survives the trip through
//! CBOR, every message kind round-trips, bad bodies are refused with a reason,
//! and the HTTP framing parses what it writes. Also prints the measured reading
//! sizes that docs/protocol.md quotes.

use dca_core::printer::Snapshot;
use dca_core::snmprec;
use dca_core::sync::batch::{self as batches, BatchId, BatchWriter, Refused};
use dca_core::sync::http::{self, Body, HttpError, PostHead};
use dca_core::sync::message::{Readings, RelayAnswer, Request, Response, Task};
use dca_core::sync::reading::{self, DeviceKey, Reading};
use dca_core::sync::{Clock, Error};
use std::path::{Path, PathBuf};

fn corpus() -> PathBuf {
    std::env::var_os("DCA_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus"))
}

fn printers() -> Vec<(String, Snapshot)> {
    let dir = corpus().join("librenms/snmprec");
    let mut out = Vec::new();
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| {
            panic!(
                "the corpus is missing at {} ({e}); set DCA_CORPUS",
                dir.display()
            )
        })
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "snmprec"))
        .collect();
    paths.sort();
    for p in paths {
        let rec = snmprec::parse(&std::fs::read_to_string(&p).unwrap());
        let s = rec.snapshot();
        if s.is_printer() {
            out.push((p.file_stem().unwrap().to_string_lossy().into_owned(), s));
        }
    }
    assert!(
        out.len() >= 10,
        "expected the corpus printers, found {}",
        out.len()
    );
    out
}

fn clock() -> Clock {
    Clock {
        wall_ms: Some(1_795_000_000_000),
        boot_id: [7; 16],
        mono_ms: 42_000,
    }
}

fn assert_same(s: &Snapshot, r: &Reading<'_>) {
    let id = &s.identity;
    assert_eq!(r.vendor, id.vendor.map_or("", |v| v.id()));
    assert_eq!(r.serial, id.serial.as_str());
    assert_eq!(r.mac, id.mac);
    assert_eq!(r.model, id.model.as_str());
    assert_eq!(r.firmware, id.firmware.as_str());
    assert_eq!(r.sys_name, id.sys_name.as_str());
    assert_eq!(r.uptime_cs, id.sys_uptime_cs);
    assert_eq!(r.counters.len(), s.counters.len());
    for (c, rc) in s.counters.iter().zip(&r.counters) {
        assert_eq!((c.name, c.value), (rc.name, rc.value));
    }
    assert_eq!(r.supplies.len(), s.supplies.len());
    for (x, rx) in s.supplies.iter().zip(&r.supplies) {
        assert_eq!(rx.index, x.index);
        assert_eq!(rx.description, x.description.as_str());
        assert_eq!((rx.level, rx.max_capacity), (x.level, x.max_capacity));
        assert_eq!(
            (rx.supply_type, rx.class, rx.unit),
            (x.supply_type, x.class, x.unit)
        );
        assert_eq!(rx.state, x.state().id());
        assert_eq!(rx.colorant, x.colorant.as_str());
        assert_eq!(rx.part_number, x.part_number.as_str());
        assert_eq!(rx.percent().map(|p| p as f32), x.percent());
    }
    assert_eq!(r.trays.len(), s.trays.len());
    for (t, rt) in s.trays.iter().zip(&r.trays) {
        assert_eq!(
            (rt.index, rt.name, rt.level, rt.max_capacity),
            (t.index, t.name.as_str(), t.level, t.max_capacity)
        );
    }
    assert_eq!(r.outputs.len(), s.outputs.len());
    assert_eq!(r.alerts.len(), s.alerts.len());
    for (a, ra) in s.alerts.iter().zip(&r.alerts) {
        assert_eq!(
            (ra.severity, ra.group, ra.code, ra.description),
            (a.severity, a.group, a.code, a.description.as_str())
        );
    }
    assert_eq!(r.status.error_state, &s.status.error_state[..]);
    assert_eq!(r.status.printer_status, s.status.printer_status);
}

#[test]
fn corpus_readings_round_trip_and_stay_small() {
    let mut sizes = Vec::new();
    println!(
        "{:<40} {:>6} {:>9} {:>5}",
        "recording", "bytes", "counters", "key"
    );
    for (name, s) in printers() {
        let mut buf = [0u8; 8192];
        let len = reading::encode(&s, &clock(), Some("192.0.2.10"), &mut buf).unwrap();
        let r = Reading::decode(&buf[..len]).unwrap();
        assert_same(&s, &r);
        assert_eq!(r.address, "192.0.2.10");
        assert_eq!(r.at, clock());
        assert_eq!(r.key(), reading::key_of(&s, Some("192.0.2.10")), "{name}");
        assert!(r.key().is_some());
        // Counter values alone: the part no delta could leave out.
        let counters: usize = s.counters.iter().map(|c| 2 + c.name.len() + 9).sum();
        println!(
            "{name:<40} {len:>6} {counters:>9} {:>5}",
            if r.key().is_some_and(|k| k.is_stable()) {
                "yes"
            } else {
                "addr"
            }
        );
        sizes.push(len);
    }
    sizes.sort();
    let median = sizes[sizes.len() / 2];
    println!(
        "reading sizes over {} printers: min {} B, median {} B, max {} B",
        sizes.len(),
        sizes[0],
        median,
        sizes[sizes.len() - 1]
    );
    assert!(
        median < 1024,
        "a typical reading must stay under 1 KiB, median is {median} B"
    );
}

#[test]
fn a_reading_without_address_leaves_it_out() {
    let (_, s) = printers().remove(0);
    let mut with = [0u8; 8192];
    let mut without = [0u8; 8192];
    let a = reading::encode(&s, &clock(), Some("192.0.2.10"), &mut with).unwrap();
    let b = reading::encode(&s, &clock(), None, &mut without).unwrap();
    assert!(b < a);
    assert_eq!(Reading::decode(&without[..b]).unwrap().address, "");
}

#[test]
fn device_keys_prefer_serial_then_mac_and_never_the_address() {
    let mac = [0, 0x1b, 0xa9, 1, 2, 3];
    let at = "192.0.2.7";
    assert_eq!(
        DeviceKey::of("hp", " CN123 ", Some(mac), at),
        Some(DeviceKey::Serial {
            vendor: "hp",
            serial: "CN123"
        })
    );
    assert_eq!(
        DeviceKey::of("hp", "", Some(mac), at),
        Some(DeviceKey::Mac(mac))
    );
    let last_resort = DeviceKey::of("hp", "  ", Some([0; 6]), at).unwrap();
    assert_eq!(last_resort, DeviceKey::Address(at));
    assert!(!last_resort.is_stable());
    assert_eq!(DeviceKey::of("hp", "", None, ""), None);
    assert_eq!(DeviceKey::Mac(mac).to_string(), "mac/00:1b:a9:01:02:03");
}

fn batch(readings: &[(String, Snapshot)]) -> (Vec<u8>, u64) {
    let mut raw = Vec::new();
    for (_, s) in readings {
        let mut buf = [0u8; 8192];
        let n = reading::encode(s, &clock(), None, &mut buf).unwrap();
        raw.extend_from_slice(&buf[..n]);
    }
    (raw, readings.len() as u64)
}

#[test]
fn every_request_and_response_round_trips() {
    let ps = printers();
    let (raw, n) = batch(&ps[..3]);
    let requests = [
        Request::Enroll {
            token: "tok",
            agent_version: "0.1.0",
            hostname: "pc-1",
        },
        Request::Hello {
            agent_version: "0.1.0",
            capabilities: 7,
            clock: Clock {
                wall_ms: None,
                ..clock()
            },
        },
        Request::Upload {
            batch: BatchId::of(&Readings::new(&raw, n)),
            after: Some(BatchId([3; 32])),
            position: 9,
            sent: clock(),
            readings: Readings::new(&raw, n),
        },
        Request::TaskPoll,
        Request::Listen { wait_s: 25 },
        Request::Relay {
            session: 4,
            answer: None,
        },
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
        Request::Relay {
            session: 4,
            answer: Some(RelayAnswer {
                seq: 3,
                status: 403,
                head: b"",
                body: b"",
                refused: Some("download refused"),
            }),
        },
        Request::TaskResult {
            task: 3,
            ok: false,
            detail: "unknown task kind",
        },
    ];
    for req in &requests {
        let mut buf = vec![0u8; 64 * 1024];
        let len = req.encode(&mut buf).unwrap();
        assert_eq!(req.encoded_len(), len, "{req:?}");
        assert_eq!(&Request::decode(&buf[..len]).unwrap(), req);
        assert!(
            Response::decode(&buf[..len]).is_err(),
            "a request is not a response"
        );
        // Every strict prefix is refused, never half-read.
        for cut in 0..len {
            assert!(
                Request::decode(&buf[..cut]).is_err(),
                "{req:?} cut at {cut}"
            );
        }
    }
    let mut tasks = heapless::Vec::new();
    tasks
        .push(Task {
            id: 1,
            kind: "rescan",
            arg: "",
        })
        .unwrap();
    tasks
        .push(Task {
            id: 2,
            kind: "set_log_level",
            arg: "debug",
        })
        .unwrap();
    let responses = [
        Response::Enrolled {
            agent_id: "a1",
            secret: "s",
            customer: "acme",
        },
        Response::Welcome {
            server_ms: 5,
            last_batch: Some(BatchId([7; 32])),
            held: 4,
            poll_interval_s: 300,
            hold_max_s: 25,
        },
        Response::Welcome {
            server_ms: 5,
            last_batch: None,
            held: 0,
            poll_interval_s: 300,
            hold_max_s: 0,
        },
        Response::Ack {
            batch: BatchId([9; 32]),
            stored: 3,
            duplicate: true,
        },
        Response::Noted,
        Response::Tasks(tasks),
        Response::Rejected {
            code: 400,
            reason: "reading 3 of the batch: missing field `clock`",
        },
        Response::Forward {
            seq: 2,
            method: "POST",
            path: "/network",
            head: b"Content-Type: application/x-www-form-urlencoded\r\n",
            body: b"ip=10.0.0.7",
        },
        Response::RelayIdle,
        Response::RelayClosed,
    ];
    for resp in &responses {
        let mut buf = [0u8; 2048];
        let len = resp.encode(&mut buf).unwrap();
        assert_eq!(resp.encoded_len(), len, "{resp:?}");
        assert_eq!(&Response::decode(&buf[..len]).unwrap(), resp);
    }
    // A refusal in version 1's framing, which an old agent can read.
    let mut buf = [0u8; 128];
    let len = Response::encode_rejection(1, 426, "upgrade", &mut buf).unwrap();
    assert_eq!(&buf[..4], &[0xa4, 0x00, 0x01, 0x01]);
    assert_eq!(Response::decode(&buf[..len]), Err(Error::Version(1)));
}

#[test]
fn upload_readings_decode_one_by_one() {
    let ps = printers();
    let (raw, n) = batch(&ps);
    let req = Request::Upload {
        batch: BatchId::of(&Readings::new(&raw, n)),
        after: None,
        position: 1,
        sent: clock(),
        readings: Readings::new(&raw, n),
    };
    let mut buf = vec![0u8; 256 * 1024];
    let len = req.encode(&mut buf).unwrap();
    let Request::Upload { readings, .. } = Request::decode(&buf[..len]).unwrap() else {
        panic!("not an upload")
    };
    assert_eq!(readings.len(), ps.len() as u64);
    for ((_, s), r) in ps.iter().zip(readings.iter()) {
        assert_same(s, &r.unwrap());
    }
}

#[test]
fn bad_bodies_are_refused_with_a_reason() {
    let mut buf = [0u8; 256];
    let len = Request::TaskPoll.encode(&mut buf).unwrap();
    // Version 1 is not spoken any more.
    let mut v1 = buf[..len].to_vec();
    assert_eq!(v1[2], 2);
    v1[2] = 1;
    assert_eq!(Request::decode(&v1), Err(Error::Version(1)));
    // Trailing garbage.
    let mut trailing = buf[..len].to_vec();
    trailing.push(0);
    assert!(matches!(
        Request::decode(&trailing),
        Err(Error::Cbor { .. })
    ));
    // Not a map at all.
    assert!(matches!(
        Request::decode(b"\x01"),
        Err(Error::Cbor { at: 0 })
    ));
    // An upload without its batch id names the field.
    let body = [0xa3, 0x00, 0x02, 0x01, 0x03, 0x08, 0x80];
    assert_eq!(Request::decode(&body), Err(Error::Missing("batch")));
    // Unknown keys are skipped (a newer agent's extra field).
    let body = [
        0xa3, 0x00, 0x02, 0x01, 0x04, 0x18, 0x63, 0x63, b'n', b'e', b'w',
    ];
    assert_eq!(Request::decode(&body), Ok(Request::TaskPoll));
    // An encoding that does not fit is an error, not a truncated message.
    let mut small = [0u8; 8];
    assert_eq!(
        Request::Enroll {
            token: "a long token",
            agent_version: "1",
            hostname: ""
        }
        .encode(&mut small),
        Err(Error::BufferTooSmall)
    );
}

#[test]
fn http_post_heads_parse_back() {
    let mut buf = [0u8; 512];
    let len = http::write_post(
        &mut buf,
        &PostHead {
            host: "cloud.example:8443",
            path: "/v1/sync",
            authorization: Some("Bearer a1:s3cret"),
            content_type: "application/cbor",
            content_length: 123,
            user_agent: "dca/0.1",
        },
    )
    .unwrap();
    let head = http::parse_request(&buf[..len]).unwrap().unwrap();
    assert_eq!(
        (head.method, head.path, head.head_len),
        ("POST", "/v1/sync", len)
    );
    assert_eq!(head.content_length, 123);
    assert_eq!(head.content_type, Some("application/cbor"));
    assert_eq!(head.authorization, Some("Bearer a1:s3cret"));
    assert!(!head.close);
    for cut in 0..len {
        assert_eq!(http::parse_request(&buf[..cut]), Ok(None), "cut at {cut}");
    }
    let mut tiny = [0u8; 16];
    assert_eq!(
        http::write_connect(&mut tiny, "cloud.example:443", None),
        Err(HttpError::BufferTooSmall)
    );
}

#[test]
fn http_responses_frame_their_bodies() {
    let mut buf = [0u8; 256];
    let len = http::write_response_head(
        &mut buf,
        401,
        "Unauthorized",
        "application/cbor",
        17,
        "Connection: close\r\n",
    )
    .unwrap();
    let head = http::parse_response(&buf[..len], false).unwrap().unwrap();
    assert_eq!(
        (head.status, head.head_len, head.body, head.close),
        (401, len, Body::Length(17), true)
    );
    // A proxy's answer to CONNECT has no body.
    let ok = b"HTTP/1.1 200 Connection established\r\n\r\n";
    assert_eq!(
        http::parse_response(ok, true).unwrap().unwrap().body,
        Body::Empty
    );
    // Without a length the body runs to the end of the connection, as a
    // proxy's refusal of a tunnel (tinyproxy's 407) sends it.
    let refused = b"HTTP/1.0 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"p\"\r\n\r\n<html>";
    let head = http::parse_response(refused, true).unwrap().unwrap();
    assert_eq!(
        (head.status, head.body, head.close),
        (407, Body::UntilClose, true)
    );
    let head = http::parse_response(b"HTTP/1.1 200 OK\r\n\r\n", false)
        .unwrap()
        .unwrap();
    assert_eq!((head.body, head.close), (Body::UntilClose, true));
    assert_eq!(
        http::parse_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            false
        ),
        Err(HttpError::Chunked)
    );
    assert_eq!(
        http::parse_response(
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            false
        ),
        Err(HttpError::ContentLength)
    );
    assert_eq!(
        http::parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", false),
        Err(HttpError::ContentLength)
    );
    assert!(matches!(
        http::parse_request(b"GARBAGE\x00\r\n\r\n"),
        Err(HttpError::Malformed(_))
    ));
}

#[test]
fn batches_are_cut_by_bytes_and_count_and_named_by_digest() {
    let ps = printers();
    for (_, s) in &ps {
        let mut buf = vec![0u8; 8192];
        let n = reading::encode(s, &clock(), Some("10.0.0.1"), &mut buf).unwrap();
        assert_eq!(reading::encoded_len(s, &clock(), Some("10.0.0.1")), n);
    }
    // By count: three readings per batch.
    let mut buf = vec![0u8; 64 * 1024];
    let mut w = BatchWriter::new(&mut buf, 3);
    let mut sealed = Vec::new();
    for (_, s) in &ps {
        match w.push(s, &clock(), None) {
            Ok(()) => {}
            Err(Refused::Full) => {
                let (record, id) = w.seal();
                sealed.push((record.to_vec(), id));
                w.push(s, &clock(), None).unwrap();
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    let (record, id) = w.seal();
    sealed.push((record.to_vec(), id));
    let total: u64 = sealed
        .iter()
        .map(|(r, id)| {
            let readings = batches::parse_record(r).unwrap();
            assert!(readings.len() <= 3);
            assert_eq!(BatchId::of(&readings), *id);
            readings.len()
        })
        .sum();
    assert_eq!(total, ps.len() as u64);
    // By bytes: no record exceeds the buffer, however many readings fit.
    let mut small = vec![0u8; 2048];
    let mut w = BatchWriter::new(&mut small, 500);
    let mut records = 0;
    for (_, s) in &ps {
        match w.push(s, &clock(), None) {
            Ok(()) => {}
            Err(Refused::Full) => {
                let (record, _) = w.seal();
                assert!(record.len() <= 2048);
                records += 1;
                w.push(s, &clock(), None).unwrap();
            }
            Err(Refused::TooLarge { bytes }) => assert!(bytes > 2048 - 9),
            Err(e) => panic!("{e:?}"),
        }
    }
    assert!(
        records > 1,
        "a 2 KiB limit must cut the corpus into batches"
    );
    // A different batch has a different name.
    assert_ne!(sealed[0].1, sealed[1].1);
}
