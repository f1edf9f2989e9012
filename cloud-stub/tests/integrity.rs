//! Meter integrity: a reading that does not fit its device's history (a
//! counter going back, another MAC under the same key, another agent)
//! raises an identity conflict and is stored flagged, while the billing
//! counters stay the last good ones; the operator sees the conflict
//! (`dca-cloud devices`, the web page, the API) and accepts it with
//! `dca-cloud conflict resolve`, after which the new values are billed.

use dca_cloud::report::{self, DeviceRow};
use dca_cloud::store::{Agent, Scope, Store, Upload};
use dca_cloud::web;
use dca_core::printer::{Snapshot, Text};
use dca_core::snmprec;
use dca_core::sync::batch::BatchId;
use dca_core::sync::message::Readings;
use dca_core::sync::{Clock, reading};
use std::path::{Path, PathBuf};
use std::process::Command;

fn db_path(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("dca-integrity-{name}-{}.db", std::process::id()));
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", path.display()));
    }
    path
}

fn printer() -> Snapshot {
    let corpus = std::env::var_os("DCA_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus"));
    let path = corpus.join("librenms/snmprec/jetdirect_m130nw.snmprec");
    let mut s = snmprec::parse(&std::fs::read_to_string(&path).unwrap()).snapshot();
    s.identity.serial = Text::from_str_lossy("BILL1");
    s.identity.mac = Some([0, 1, 2, 3, 4, 5]);
    s.counters.retain(|c| c.name == "total");
    assert_eq!(s.counters.len(), 1, "the printer counts total pages");
    s
}

fn enrolled(store: &mut Store, customer: &str) -> Agent {
    let token = store.create_token(customer).unwrap();
    let e = store.enroll(&token, "host", "0.2.0", "test").unwrap();
    store
        .authenticate(Some(&format!("Bearer {}:{}", e.agent_id, e.secret)), "test")
        .unwrap()
}

/// Delivers one reading of `s` with total `total` as its own batch;
/// returns how many readings were flagged.
fn deliver(store: &mut Store, agent: &Agent, s: &Snapshot, total: u64, n: u64) -> u32 {
    let mut s = s.clone();
    s.counters[0].value = total;
    let at = Clock {
        wall_ms: Some(1_795_000_000_000 + n * 60_000),
        boot_id: [2; 16],
        mono_ms: n,
    };
    let mut buf = vec![0u8; 16 * 1024];
    let len = reading::encode(&s, &at, Some("10.0.0.5"), &mut buf).unwrap();
    let readings = Readings::new(&buf[..len], 1);
    let batch = BatchId::of(&readings);
    let upload = Upload {
        batch: &batch,
        after: None,
        position: n,
        sent: &at,
        readings: &readings,
    };
    store.ingest(agent, &upload, "test").unwrap().flagged
}

fn device(store: &Store) -> DeviceRow {
    let mut all = report::devices(store, Scope::All).unwrap();
    assert_eq!(all.len(), 1, "{all:?}");
    all.remove(0)
}

fn flags(store: &Store, d: &DeviceRow) -> Vec<(i64, bool)> {
    let mut rows = report::readings_page(store, d.id, None, 100).unwrap();
    rows.reverse();
    rows.iter().map(|r| (r.value, r.flagged)).collect()
}

/// Version 1 took the latest value as the device's counter: a reading of
/// 10 after 50,000 (a swapped board, or another printer answering under
/// the same serial) replaced the billed counter silently. The billing
/// counter stays at 50,000, the readings are kept flagged, the conflict is
/// shown; accepted, the reset is billed from then on.
#[test]
fn a_counter_going_back_is_a_conflict_not_a_new_billing_counter() {
    let db = db_path("backwards");
    let mut store = Store::open(&db).unwrap();
    let agent = enrolled(&mut store, "acme");
    let s = printer();
    assert_eq!(deliver(&mut store, &agent, &s, 49_000, 1), 0);
    assert_eq!(deliver(&mut store, &agent, &s, 50_000, 2), 0);
    assert_eq!(deliver(&mut store, &agent, &s, 10, 3), 1);
    let d = device(&store);
    assert_eq!(d.counter("total"), Some(50_000), "billing holds");
    assert_eq!(d.conflicts.len(), 1, "{:?}", d.conflicts);
    let c = &d.conflicts[0];
    assert_eq!(c.kind, "counter_backwards");
    assert!(
        c.detail.contains("total went back from 50000 to 10"),
        "{}",
        c.detail
    );
    // Later readings of the device wait with it, even going up again.
    assert_eq!(deliver(&mut store, &agent, &s, 20, 4), 1);
    let d = device(&store);
    assert_eq!(d.counter("total"), Some(50_000));
    assert_eq!((d.conflicts.len(), d.conflicts[0].readings), (1, 2));
    assert_eq!(
        flags(&store, &d),
        [(49_000, false), (50_000, false), (10, true), (20, true)]
    );
    // Shown to the operator: the API, the page, the CLI.
    assert_eq!(d.to_json()["conflicts"][0]["kind"], "counter_backwards");
    let page = String::from_utf8(web::get(&store, Scope::All, "/").body).unwrap();
    assert!(page.contains("Identity conflicts") && page.contains("went back from 50000 to 20"));
    assert!(
        page.contains("(identity conflict)"),
        "the device's row says so"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_dca-cloud"))
        .args(["devices", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        listing.contains(&format!("conflict {} acme", c.id))
            && listing.contains("counter_backwards"),
        "{listing}"
    );
    // The operator accepts the reset: the flagged readings are billed.
    let out = Command::new(env!("CARGO_BIN_EXE_dca-cloud"))
        .args(["conflict", "resolve", &c.id.to_string(), "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let d = device(&store);
    assert!(d.conflicts.is_empty());
    assert_eq!(d.counter("total"), Some(20));
    assert_eq!(deliver(&mut store, &agent, &s, 30, 5), 0);
    assert_eq!(device(&store).counter("total"), Some(30));
}

/// Another MAC under a device's key, or another agent reporting it, is a
/// conflict too: the device keeps the identity it was billed under.
#[test]
fn another_mac_or_another_agent_is_a_conflict() {
    let mut store = Store::open(&db_path("identity")).unwrap();
    let first = enrolled(&mut store, "acme");
    let second = enrolled(&mut store, "acme");
    let s = printer();
    deliver(&mut store, &first, &s, 100, 1);
    let mut other = s.clone();
    other.identity.mac = Some([9, 9, 9, 9, 9, 9]);
    assert_eq!(deliver(&mut store, &first, &other, 200, 2), 1);
    let d = device(&store);
    assert_eq!(d.counter("total"), Some(100));
    assert_eq!(d.conflicts[0].kind, "mac_changed");
    assert!(
        d.conflicts[0].detail.contains("09:09:09:09:09:09"),
        "{:?}",
        d.conflicts
    );
    assert_eq!(d.agent, first.id);
    assert_eq!(deliver(&mut store, &second, &s, 300, 3), 1);
    let d = device(&store);
    let kinds: Vec<&str> = d.conflicts.iter().map(|c| c.kind.as_str()).collect();
    assert_eq!(kinds, ["mac_changed", "agent_changed"]);
    assert_eq!(d.agent, first.id, "billed under the first agent still");
    assert_eq!(d.counter("total"), Some(100));
    // An agent that replaces one gone silent (re-enrolled, say) takes the
    // device over without a conflict.
    let other_store_path = db_path("handover");
    let mut other = Store::open(&other_store_path).unwrap();
    let old = enrolled(&mut other, "acme");
    deliver(&mut other, &old, &s, 100, 1);
    // Enrolled later than the old agent's last contact.
    other.set_clock(|| dca_cloud::store::now_ms() + 60_000);
    let new = enrolled(&mut other, "acme");
    assert_eq!(deliver(&mut other, &new, &s, 150, 2), 0);
    let d = device(&other);
    assert!(d.conflicts.is_empty(), "{:?}", d.conflicts);
    assert_eq!(
        (d.agent.as_str(), d.counter("total")),
        (new.id.as_str(), Some(150))
    );

    let audited: i64 = store
        .connection()
        .query_row(
            "SELECT COUNT(*) FROM audit WHERE event = 'identity_conflict'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(audited, 2);
}
