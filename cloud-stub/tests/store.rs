//! The store on a real SQLite file: exactly-once batches, refusals that
//! leave nothing behind, customers kept apart, and readings placed in time.

use dca_cloud::report;
use dca_cloud::store::{Scope, Store};
use dca_core::printer::Snapshot;
use dca_core::snmprec;
use dca_core::sync::message::Readings;
use dca_core::sync::{Clock, reading};
use std::path::{Path, PathBuf};

fn corpus() -> PathBuf {
    std::env::var_os("DCA_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus"))
}

fn printer(name: &str) -> Snapshot {
    let path = corpus()
        .join("librenms/snmprec")
        .join(format!("{name}.snmprec"));
    let rec = snmprec::parse(
        &std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    );
    rec.snapshot()
}

fn open(name: &str) -> Store {
    let path = std::env::temp_dir().join(format!("dca-store-{name}-{}.db", std::process::id()));
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", path.display()));
    }
    Store::open(&path).unwrap()
}

const BOOT: [u8; 16] = [9; 16];

fn encode(snaps: &[(&Snapshot, Clock, Option<&str>)]) -> (Vec<u8>, u64) {
    let mut raw = Vec::new();
    for (s, at, addr) in snaps {
        let mut buf = vec![0u8; 16 * 1024];
        let n = reading::encode(s, at, *addr, &mut buf).unwrap();
        raw.extend_from_slice(&buf[..n]);
    }
    (raw, snaps.len() as u64)
}

fn wall(ms: u64) -> Clock {
    Clock {
        wall_ms: Some(ms),
        boot_id: BOOT,
        mono_ms: 1,
    }
}

fn count(store: &Store, sql: &str) -> i64 {
    store.connection().query_row(sql, [], |r| r.get(0)).unwrap()
}

fn enrolled(store: &mut Store, customer: &str) -> dca_cloud::store::Agent {
    let token = store.create_token(customer).unwrap();
    let e = store.enroll(&token, "host", "0.1.0", "test").unwrap();
    store
        .authenticate(Some(&format!("Bearer {}:{}", e.agent_id, e.secret)), "test")
        .unwrap()
}

#[test]
fn batches_are_stored_exactly_once_and_in_order() {
    let mut store = open("order");
    let agent = enrolled(&mut store, "acme");
    let hp = printer("jetdirect_m130nw");
    let (raw, n) = encode(&[(&hp, wall(1_000), Some("10.0.0.5"))]);
    let readings = Readings::new(&raw, n);
    let sent = wall(2_000);

    // Sequence 2 before 1 skips ahead: refused, nothing stored.
    let skip = store
        .ingest(&agent, 2, &sent, &readings, "test")
        .unwrap_err();
    assert_eq!(skip.status, 409);
    assert!(
        skip.reason.contains("next expected is 1"),
        "{}",
        skip.reason
    );
    assert_eq!(count(&store, "SELECT COUNT(*) FROM readings"), 0);

    let first = store.ingest(&agent, 1, &sent, &readings, "test").unwrap();
    assert_eq!((first.acked, first.stored, first.replay), (1, 1, false));
    let rows = count(&store, "SELECT COUNT(*) FROM readings");
    assert_eq!(rows, hp.counters.len() as i64);
    assert!(rows > 0);

    // The same batch again: acknowledged, not stored.
    let again = store.ingest(&agent, 1, &sent, &readings, "test").unwrap();
    assert_eq!((again.acked, again.stored, again.replay), (1, 0, true));
    assert_eq!(count(&store, "SELECT COUNT(*) FROM readings"), rows);

    // Sequence 1 with other readings: a conflict, not a silent overwrite.
    let (other, m) = encode(&[(&hp, wall(5_000), Some("10.0.0.5"))]);
    let conflict = store
        .ingest(&agent, 1, &sent, &Readings::new(&other, m), "test")
        .unwrap_err();
    assert_eq!(conflict.status, 409);

    // The device moved (DHCP): same device, new address, second reading.
    let (moved, k) = encode(&[(&hp, wall(9_000), Some("10.0.0.99"))]);
    store
        .ingest(&agent, 2, &sent, &Readings::new(&moved, k), "test")
        .unwrap();
    assert_eq!(count(&store, "SELECT COUNT(*) FROM devices"), 1);
    assert_eq!(count(&store, "SELECT COUNT(*) FROM readings"), 2 * rows);
    let d = report::devices(&store, Scope::All).unwrap().remove(0);
    assert_eq!(d.address, "10.0.0.99");
    assert_eq!(
        d.counter("total"),
        hp.counter("total").map(|c| c.value as i64)
    );
}

#[test]
fn a_bad_reading_refuses_the_whole_batch() {
    let mut store = open("atomic");
    let agent = enrolled(&mut store, "acme");
    let hp = printer("jetdirect_m130nw");
    let (mut raw, _) = encode(&[(&hp, wall(1_000), Some("10.0.0.5"))]);
    raw.extend_from_slice(b"\xa1\x00\x01"); // a second "reading" whose clock is not a map
    let err = store
        .ingest(&agent, 1, &wall(2_000), &Readings::new(&raw, 2), "test")
        .unwrap_err();
    assert_eq!(err.status, 400);
    assert!(err.reason.contains("reading 1"), "{}", err.reason);
    for table in ["devices", "readings", "supplies", "batches"] {
        assert_eq!(
            count(&store, &format!("SELECT COUNT(*) FROM {table}")),
            0,
            "{table} half-stored"
        );
    }
    assert_eq!(store.last_seq(&agent.id).unwrap(), 0);
}

#[test]
fn readings_without_a_date_are_placed_by_the_monotonic_clock() {
    let mut store = open("clock");
    let agent = enrolled(&mut store, "acme");
    let hp = printer("jetdirect_m130nw");
    // Read 60 s before the batch was sent, on the same boot, no wall clock.
    let at = Clock {
        wall_ms: None,
        boot_id: BOOT,
        mono_ms: 40_000,
    };
    let sent = Clock {
        wall_ms: None,
        boot_id: BOOT,
        mono_ms: 100_000,
    };
    let (raw, n) = encode(&[(&hp, at, Some("10.0.0.5"))]);
    let before = dca_cloud::store::now_ms();
    store
        .ingest(&agent, 1, &sent, &Readings::new(&raw, n), "test")
        .unwrap();
    let after = dca_cloud::store::now_ms();
    let placed: i64 = store
        .connection()
        .query_row("SELECT MIN(at_ms) FROM readings", [], |r| r.get(0))
        .unwrap();
    assert!(
        (before - 60_000..=after - 60_000).contains(&placed),
        "{placed} not 60 s before {before}..{after}"
    );
    // Another boot's monotonic time cannot be placed: stored with no time.
    let other = Clock {
        wall_ms: None,
        boot_id: [1; 16],
        mono_ms: 5,
    };
    let (raw, n) = encode(&[(&hp, other, Some("10.0.0.5"))]);
    store
        .ingest(&agent, 2, &sent, &Readings::new(&raw, n), "test")
        .unwrap();
    assert!(count(&store, "SELECT COUNT(*) FROM readings WHERE at_ms IS NULL") > 0);
}

#[test]
fn customers_see_only_their_own_devices() {
    let mut store = open("scope");
    let a = enrolled(&mut store, "acme");
    let b = enrolled(&mut store, "globex");
    let hp = printer("jetdirect_m130nw");
    let ricoh = printer("ricoh_mpc3002");
    let (raw, n) = encode(&[(&hp, wall(1), Some("10.0.0.5"))]);
    store
        .ingest(&a, 1, &wall(2), &Readings::new(&raw, n), "test")
        .unwrap();
    let (raw, n) = encode(&[
        (&hp, wall(1), Some("10.0.0.5")),
        (&ricoh, wall(1), Some("10.0.0.6")),
    ]);
    store
        .ingest(&b, 1, &wall(2), &Readings::new(&raw, n), "test")
        .unwrap();
    assert_eq!(
        report::devices(&store, Scope::Customer(a.customer_id))
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        report::devices(&store, Scope::Customer(b.customer_id))
            .unwrap()
            .len(),
        2
    );
    assert_eq!(report::devices(&store, Scope::All).unwrap().len(), 3);
    let ricoh_key = report::devices(&store, Scope::Customer(b.customer_id))
        .unwrap()
        .into_iter()
        .find(|d| d.vendor == "ricoh")
        .unwrap()
        .key;
    assert!(
        report::device(&store, Scope::Customer(a.customer_id), &ricoh_key)
            .unwrap()
            .is_none()
    );
}

#[test]
fn unkeyable_readings_are_skipped_and_audited() {
    let mut store = open("unkeyed");
    let agent = enrolled(&mut store, "acme");
    // The Xerox recording has neither serial nor MAC: with its address
    // masked, nothing identifies it.
    let xerox = printer("xerox");
    let hp = printer("jetdirect_m130nw");
    let (raw, n) = encode(&[(&xerox, wall(1), None), (&hp, wall(1), None)]);
    let done = store
        .ingest(&agent, 1, &wall(2), &Readings::new(&raw, n), "test")
        .unwrap();
    assert_eq!((done.stored, done.skipped), (1, 1));
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(*) FROM audit WHERE event = 'reading_skipped'"
        ),
        1
    );
    // With its address, it is kept, marked as unstably keyed.
    let (raw, n) = encode(&[(&xerox, wall(1), Some("10.0.0.7"))]);
    store
        .ingest(&agent, 2, &wall(2), &Readings::new(&raw, n), "test")
        .unwrap();
    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM devices WHERE key_stable = 0"),
        1
    );
}

#[test]
fn credentials_are_checked_and_failures_audited() {
    let mut store = open("auth");
    let token = store.create_token("acme").unwrap();
    let e = store.enroll(&token, "host", "0.1.0", "test").unwrap();
    assert_eq!(
        store
            .enroll(&token, "host", "0.1.0", "test")
            .unwrap_err()
            .status,
        401,
        "tokens are one-time"
    );
    for bad in [
        None,
        Some("Bearer nobody:x".to_string()),
        Some(format!("Bearer {}:wrong", e.agent_id)),
        Some("Basic xyz".into()),
    ] {
        assert_eq!(
            store
                .authenticate(bad.as_deref(), "test")
                .unwrap_err()
                .status,
            401,
            "{bad:?}"
        );
    }
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(*) FROM audit WHERE event = 'auth_refused'"
        ),
        4
    );
    let stored: Vec<u8> = store
        .connection()
        .query_row("SELECT secret_hash FROM agents", [], |r| r.get(0))
        .unwrap();
    assert_ne!(stored, e.secret.as_bytes(), "secrets are stored hashed");
    store.revoke(&e.agent_id).unwrap();
    assert_eq!(
        store
            .authenticate(Some(&format!("Bearer {}:{}", e.agent_id, e.secret)), "test")
            .unwrap_err()
            .status,
        401
    );
}
