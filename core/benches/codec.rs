//! Codec benchmark: dca-core against rasn-snmp in the same run.
//!
//! - decode of a 21-varbind SNMPv2c Response whose values come from a corpus
//!   printer (HP Color LaserJet M452nw, `librenms/snmprec/jetdirect.snmprec`,
//!   read at run time from `$DCA_CORPUS`, default `../shared/corpus`);
//! - encode of a GetBulkRequest for four Printer-MIB columns.
//!
//! Heap allocations are counted with a counting global allocator. After the
//! criterion groups, a summary pass prints a Markdown table (median of
//! several timed batches, the ratio, allocations per operation) for the README.
#![allow(unsafe_code)] // the counting allocator below

use criterion::{Criterion, criterion_group};
use dca_core::ber::Oid;
use dca_core::snmp::{CommunityMessage, Message, Pdu, PduType, Pdus, Value, VarBind, Version};
use rasn::types::{Integer, ObjectIdentifier, OctetString};
use rasn_snmp::{v2, v2c};
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

struct Counting;
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_in<R>(f: impl FnOnce() -> R) -> usize {
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    black_box(f());
    ALLOCATIONS.load(Ordering::Relaxed) - before
}

fn corpus_dir() -> PathBuf {
    std::env::var_os("DCA_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus"))
}

/// One recorded value of a simple type, owned.
enum Recorded {
    Integer(i64),
    Text(Vec<u8>),
    Oid(Box<Oid>),
    Unsigned(u8, u32),
}

/// The first 21 varbinds of the system group, ifPhysAddress, the hrDevice
/// table and the Printer-MIB in the recording: what a poll's first answers
/// look like.
fn recorded_varbinds() -> Vec<(Oid, Recorded)> {
    let path = corpus_dir().join("librenms/snmprec/jetdirect.snmprec");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "the benchmark reads {}: {e} (set DCA_CORPUS)",
            path.display()
        )
    });
    let wanted = [
        "1.3.6.1.2.1.1.",
        "1.3.6.1.2.1.2.2.1.6.",
        "1.3.6.1.2.1.25.3.2.1.",
        "1.3.6.1.2.1.43.",
    ];
    let list: Vec<(Oid, Recorded)> = text
        .lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, '|');
            let (oid, ty, value) = (parts.next()?, parts.next()?, parts.next()?);
            if !wanted.iter().any(|w| oid.starts_with(w)) {
                return None;
            }
            let value = match ty {
                "2" => Recorded::Integer(value.parse().ok()?),
                "4" => Recorded::Text(value.as_bytes().to_vec()),
                "4x" => Recorded::Text(
                    (0..value.len() / 2)
                        .map(|i| u8::from_str_radix(value.get(2 * i..2 * i + 2)?, 16).ok())
                        .collect::<Option<_>>()?,
                ),
                "6" => Recorded::Oid(Box::new(value.parse().ok()?)),
                "65" => Recorded::Unsigned(0x41, value.parse().ok()?),
                "66" => Recorded::Unsigned(0x42, value.parse().ok()?),
                "67" => Recorded::Unsigned(0x43, value.parse().ok()?),
                _ => return None,
            };
            Some((oid.parse().ok()?, value))
        })
        .take(21)
        .collect();
    assert_eq!(
        list.len(),
        21,
        "{} has fewer than 21 usable varbinds",
        path.display()
    );
    list
}

/// The Response datagram, encoded once with dca-core (the differential tests
/// show rasn-snmp emits the same bytes for the same content).
fn response_datagram() -> Vec<u8> {
    let recorded = recorded_varbinds();
    let vbs: Vec<VarBind<'_>> = recorded
        .iter()
        .map(|(name, v)| {
            let value = match v {
                Recorded::Integer(i) => Value::Integer(*i),
                Recorded::Text(b) => Value::OctetString(b),
                Recorded::Oid(o) => Value::ObjectId(o.as_oid_ref()),
                Recorded::Unsigned(0x41, n) => Value::Counter32(*n),
                Recorded::Unsigned(0x42, n) => Value::Gauge32(*n),
                Recorded::Unsigned(_, n) => Value::TimeTicks(*n),
            };
            VarBind::new(name.as_oid_ref(), value)
        })
        .collect();
    let msg = CommunityMessage {
        version: Version::V2c,
        community: b"public",
        pdu: Pdus::Pdu(Pdu::new(PduType::Response, 0x1357_2468, &vbs[..])),
    };
    let mut buf = vec![0u8; msg.encoded_len()];
    msg.encode(&mut buf).expect("sized by encoded_len");
    buf
}

fn decode_ours(bytes: &[u8]) -> usize {
    let Ok(Message::Community(m)) = Message::decode(bytes) else {
        panic!("the fixture decodes")
    };
    // Touch every varbind and value, as a poller would.
    let mut n = 0;
    for vb in m.pdu.varbinds().clone() {
        let vb = vb.expect("well-formed");
        n += vb.name.len()
            + match vb.value {
                Value::OctetString(b) => b.len(),
                Value::Integer(i) => i as usize,
                other => other.as_u64().unwrap_or(1) as usize,
            };
    }
    n
}

fn decode_rasn(bytes: &[u8]) -> usize {
    let m: v2c::Message<v2::Pdus> = rasn::ber::decode(bytes).expect("the fixture decodes");
    let v2::Pdus::Response(r) = m.data else {
        panic!("a response")
    };
    r.0.variable_bindings.len()
}

/// Columns a poller walks with GetBulk: supplies description, max, level,
/// and the marker life count.
const BULK_COLUMNS: [&str; 4] = [
    "1.3.6.1.2.1.43.11.1.1.6",
    "1.3.6.1.2.1.43.11.1.1.8",
    "1.3.6.1.2.1.43.11.1.1.9",
    "1.3.6.1.2.1.43.10.2.1.4",
];

fn encode_ours(columns: &[Oid], buf: &mut [u8]) -> usize {
    let vbs = [
        VarBind::null(columns[0].as_oid_ref()),
        VarBind::null(columns[1].as_oid_ref()),
        VarBind::null(columns[2].as_oid_ref()),
        VarBind::null(columns[3].as_oid_ref()),
    ];
    let msg = CommunityMessage {
        version: Version::V2c,
        community: b"public",
        pdu: Pdus::Pdu(Pdu::bulk(0x2468, 0, 25, &vbs[..])),
    };
    msg.encode(buf).expect("fits")
}

fn encode_rasn(columns: &[Vec<u32>]) -> Vec<u8> {
    let msg = v2c::Message {
        version: Integer::from(1),
        community: OctetString::from_static(b"public"),
        data: v2::Pdus::GetBulkRequest(v2::GetBulkRequest(v2::BulkPdu {
            request_id: 0x2468,
            non_repeaters: 0,
            max_repetitions: 25,
            variable_bindings: columns
                .iter()
                .map(|arcs| v2::VarBind {
                    name: ObjectIdentifier::new(arcs.clone()).expect("valid"),
                    value: v2::VarBindValue::Unspecified,
                })
                .collect(),
        })),
    };
    rasn::ber::encode(&msg).expect("encodes")
}

fn columns() -> (Vec<Oid>, Vec<Vec<u32>>) {
    let ours: Vec<Oid> = BULK_COLUMNS
        .iter()
        .map(|s| s.parse().expect("valid"))
        .collect();
    let theirs = ours.iter().map(|o| o.arcs().collect()).collect();
    (ours, theirs)
}

fn benches(c: &mut Criterion) {
    let datagram = response_datagram();
    assert_eq!(decode_rasn(&datagram), 21);
    let mut g = c.benchmark_group("decode 21-varbind v2c Response");
    g.bench_function("dca-core", |b| b.iter(|| decode_ours(black_box(&datagram))));
    g.bench_function("rasn-snmp", |b| {
        b.iter(|| decode_rasn(black_box(&datagram)))
    });
    g.finish();

    let (ours, theirs) = columns();
    let mut buf = [0u8; 1500];
    let n = encode_ours(&ours, &mut buf);
    assert_eq!(
        &buf[..n],
        &encode_rasn(&theirs)[..],
        "both encoders emit the same GetBulkRequest"
    );
    let mut g = c.benchmark_group("encode GetBulkRequest (4 columns)");
    g.bench_function("dca-core", |b| {
        b.iter(|| encode_ours(black_box(&ours), &mut buf))
    });
    g.bench_function("rasn-snmp", |b| b.iter(|| encode_rasn(black_box(&theirs))));
    g.finish();
}

/// Median nanoseconds per call over several timed batches.
fn time_ns(mut f: impl FnMut()) -> f64 {
    let batch = 20_000;
    let mut samples: Vec<f64> = (0..11)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..batch {
                f();
            }
            start.elapsed().as_nanos() as f64 / batch as f64
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn summary() {
    let datagram = response_datagram();
    let (ours, theirs) = columns();
    let mut buf = [0u8; 1500];
    let rows = [
        (
            format!("decode 21-varbind v2c Response ({} bytes)", datagram.len()),
            time_ns(|| {
                black_box(decode_ours(black_box(&datagram)));
            }),
            allocations_in(|| decode_ours(&datagram)),
            time_ns(|| {
                black_box(decode_rasn(black_box(&datagram)));
            }),
            allocations_in(|| decode_rasn(&datagram)),
        ),
        (
            "encode GetBulkRequest (4 columns)".to_string(),
            time_ns(|| {
                black_box(encode_ours(black_box(&ours), &mut buf));
            }),
            allocations_in(|| encode_ours(&ours, &mut [0u8; 1500])),
            time_ns(|| {
                black_box(encode_rasn(black_box(&theirs)));
            }),
            allocations_in(|| encode_rasn(&theirs)),
        ),
    ];
    println!("\n| operation | dca-core | allocations | rasn-snmp | allocations | speed-up |");
    println!("|---|---|---|---|---|---|");
    for (name, ours_ns, ours_alloc, theirs_ns, theirs_alloc) in rows {
        println!(
            "| {name} | {ours_ns:.0} ns | {ours_alloc} | {theirs_ns:.0} ns | {theirs_alloc} | {:.1}x |",
            theirs_ns / ours_ns
        );
    }
}

criterion_group!(codec, benches);

fn main() {
    // `cargo test --benches` runs each benchmark once as a smoke test; the
    // summary table is only for real runs.
    let testing = std::env::args().any(|a| a == "--test" || a == "--list");
    codec();
    if !testing {
        summary();
    }
    Criterion::default().configure_from_args().final_summary();
}
