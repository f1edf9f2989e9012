//! The store on a real SQLite file: batches held exactly once per customer
//! by their content digest (sync protocol 2), refusals that leave nothing
//! behind, customers kept apart, a database restored from an older copy,
//! databases of an older dca-cloud refused or (schema version 2) converted,
//! and readings placed in time.

use dca_cloud::report;
use dca_cloud::store::{Agent, Ingested, Refusal, Role, SCHEMA_VERSION, Scope, Store, Upload};
use dca_core::printer::Snapshot;
use dca_core::snmprec;
use dca_core::sync::batch::BatchId;
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

fn db_path(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("dca-store-{name}-{}.db", std::process::id()));
    remove_db(&path);
    path
}

fn remove_db(path: &Path) {
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", path.display()));
    }
}

fn open(name: &str) -> Store {
    Store::open(&db_path(name)).unwrap()
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

/// Every readings row.
const ALL: std::ops::RangeInclusive<i64> = 1..=i64::MAX;

fn count(store: &Store, sql: &str) -> i64 {
    store.connection().query_row(sql, [], |r| r.get(0)).unwrap()
}

/// Delivers the readings `raw` (`n` of them) as one batch named by their
/// digest, as an agent's upload does.
fn deliver(store: &mut Store, agent: &Agent, raw: &[u8], n: u64) -> Result<Ingested, Refusal> {
    let readings = Readings::new(raw, n);
    let id = BatchId::of(&readings);
    ingest(store, agent, &id, 0, &wall(2_000), &readings)
}

/// An upload of `readings` named `batch`, as a journal's first batch.
fn ingest(
    store: &mut Store,
    agent: &Agent,
    batch: &BatchId,
    position: u64,
    sent: &Clock,
    readings: &Readings<'_>,
) -> Result<Ingested, Refusal> {
    let upload = Upload {
        batch,
        after: None,
        position,
        sent,
        readings,
    };
    store.ingest(agent, &upload, "test")
}

fn id_of(raw: &[u8], n: u64) -> BatchId {
    BatchId::of(&Readings::new(raw, n))
}

fn delivered(store: &Store, agent: &Agent) -> (Option<BatchId>, u64) {
    store.delivered(&agent.id).unwrap()
}

fn enrolled(store: &mut Store, customer: &str) -> Agent {
    let token = store.create_token(customer).unwrap();
    let e = store.enroll(&token, "host", "0.1.0", "test").unwrap();
    store
        .authenticate(Some(&format!("Bearer {}:{}", e.agent_id, e.secret)), "test")
        .unwrap()
}

#[test]
fn batches_are_stored_exactly_once() {
    let mut store = open("once");
    let agent = enrolled(&mut store, "acme");
    assert_eq!(
        delivered(&store, &agent),
        (None, 0),
        "nothing delivered yet"
    );
    let hp = printer("jetdirect_m130nw");
    let (raw, n) = encode(&[(&hp, wall(1_000), Some("10.0.0.5"))]);
    let first_id = id_of(&raw, n);

    let first = deliver(&mut store, &agent, &raw, n).unwrap();
    assert_eq!((first.stored, first.duplicate), (1, false));
    let rows = count(&store, "SELECT COUNT(*) FROM readings");
    assert_eq!(rows, hp.counters.len() as i64);
    assert!(rows > 0);
    assert_eq!(delivered(&store, &agent), (Some(first_id), 1));

    // The same batch again (a lost ack): acknowledged, not stored.
    let again = deliver(&mut store, &agent, &raw, n).unwrap();
    assert_eq!((again.stored, again.duplicate), (0, true));
    assert_eq!(count(&store, "SELECT COUNT(*) FROM readings"), rows);
    assert_eq!(count(&store, "SELECT COUNT(*) FROM batches"), 1);
    let audited: String = store
        .connection()
        .query_row(
            "SELECT detail FROM audit WHERE event = 'duplicate'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(audited.contains(&first_id.to_string()), "{audited}");

    // The device moved (DHCP): same device, new address, second reading.
    let (moved, k) = encode(&[(&hp, wall(9_000), Some("10.0.0.99"))]);
    let moved_id = id_of(&moved, k);
    assert_ne!(moved_id, first_id);
    deliver(&mut store, &agent, &moved, k).unwrap();
    assert_eq!(count(&store, "SELECT COUNT(*) FROM devices"), 1);
    assert_eq!(count(&store, "SELECT COUNT(*) FROM readings"), 2 * rows);
    let d = report::devices(&store, Scope::All).unwrap().remove(0);
    assert_eq!(d.address, "10.0.0.99");
    assert_eq!(
        d.counter("total"),
        hp.counter("total").map(|c| c.value as i64)
    );

    // hello reports the newest batch delivered and how many are held.
    let (last, held) = store.hello(&agent, "0.2.0", 7, &wall(10_000)).unwrap();
    assert_eq!((last, held), (Some(moved_id), 2));

    // Each stored reading names its device and the batch that brought it,
    // in the order they were stored.
    let stored = store.readings_of_customer("acme", ALL).unwrap();
    assert_eq!(stored.len() as i64, 2 * rows);
    let (a, b) = stored.split_at(rows as usize);
    assert!(
        a.iter()
            .all(|r| r.batch == first_id && r.at_ms == Some(1_000))
    );
    assert!(
        b.iter()
            .all(|r| r.batch == moved_id && r.at_ms == Some(9_000))
    );
    assert!(stored.iter().all(|r| r.device_key == d.key
        && r.agent_id == agent.id
        && r.boot_id == BOOT
        && r.mono_ms == 1));
    assert!(
        store
            .readings_of_customer("nobody", ALL)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_batch_id_that_does_not_match_its_readings_is_refused() {
    let mut store = open("mismatch");
    let agent = enrolled(&mut store, "acme");
    let hp = printer("jetdirect_m130nw");
    let (raw, n) = encode(&[(&hp, wall(1_000), Some("10.0.0.5"))]);
    let (other, m) = encode(&[(&hp, wall(2_000), Some("10.0.0.5"))]);
    let readings = Readings::new(&raw, n);
    let err = ingest(
        &mut store,
        &agent,
        &id_of(&other, m),
        1,
        &wall(2_000),
        &readings,
    )
    .unwrap_err();
    assert_eq!(err.status, 400);
    assert_eq!(err.reason, "batch id does not match its readings");
    for table in ["devices", "readings", "batches"] {
        assert_eq!(
            count(&store, &format!("SELECT COUNT(*) FROM {table}")),
            0,
            "{table}"
        );
    }
    assert_eq!(delivered(&store, &agent), (None, 0));
}

#[test]
fn a_bad_reading_refuses_the_whole_batch() {
    let mut store = open("atomic");
    let agent = enrolled(&mut store, "acme");
    let hp = printer("jetdirect_m130nw");
    let (mut raw, _) = encode(&[(&hp, wall(1_000), Some("10.0.0.5"))]);
    raw.extend_from_slice(b"\xa1\x00\x01"); // a second "reading" whose clock is not a map
    let err = deliver(&mut store, &agent, &raw, 2).unwrap_err();
    assert_eq!(err.status, 400);
    assert!(err.reason.contains("reading 1"), "{}", err.reason);
    for table in ["devices", "readings", "supplies", "batches"] {
        assert_eq!(
            count(&store, &format!("SELECT COUNT(*) FROM {table}")),
            0,
            "{table} half-stored"
        );
    }
    assert_eq!(delivered(&store, &agent), (None, 0));
}

#[test]
fn a_re_enrolled_agent_delivers_no_batch_twice() {
    let mut store = open("reenrolled");
    let old = enrolled(&mut store, "acme");
    let hp = printer("jetdirect_m130nw");
    let (raw, n) = encode(&[(&hp, wall(1_000), Some("10.0.0.5"))]);
    assert!(!deliver(&mut store, &old, &raw, n).unwrap().duplicate);
    let rows = count(&store, "SELECT COUNT(*) FROM readings");

    // The host was reinstalled from its journal and enrolled again: its
    // first upload is the batch the old identity delivered.
    let new = enrolled(&mut store, "acme");
    let again = deliver(&mut store, &new, &raw, n).unwrap();
    assert_eq!((again.stored, again.duplicate), (0, true));
    assert_eq!(count(&store, "SELECT COUNT(*) FROM readings"), rows);
    // The new agent moves on past it, though the batch is the old one's.
    assert_eq!(delivered(&store, &new), (Some(id_of(&raw, n)), 0));
    assert_eq!(delivered(&store, &old), (Some(id_of(&raw, n)), 1));
}

#[test]
fn the_same_bytes_from_another_customer_are_stored() {
    let mut store = open("scoped");
    let a = enrolled(&mut store, "acme");
    let b = enrolled(&mut store, "globex");
    let hp = printer("jetdirect_m130nw");
    let (raw, n) = encode(&[(&hp, wall(1_000), Some("10.0.0.5"))]);
    assert!(!deliver(&mut store, &a, &raw, n).unwrap().duplicate);
    let theirs = deliver(&mut store, &b, &raw, n).unwrap();
    assert_eq!((theirs.stored, theirs.duplicate), (1, false));
    assert_eq!(count(&store, "SELECT COUNT(*) FROM batches"), 2);
    assert_eq!(
        store.readings_of_customer("acme", ALL).unwrap().len(),
        store.readings_of_customer("globex", ALL).unwrap().len()
    );
    assert_eq!(delivered(&store, &b), (Some(id_of(&raw, n)), 1));
}

#[test]
fn a_database_restored_from_an_older_copy_takes_the_lost_batches_once() {
    let path = db_path("restored");
    let backup = path.with_extension("backup");
    let mut store = Store::open(&path).unwrap();
    let agent = enrolled(&mut store, "acme");
    let hp = printer("jetdirect_m130nw");
    let batches: Vec<(Vec<u8>, u64)> = (0..4)
        .map(|i| encode(&[(&hp, wall(1_000 * (i + 1)), Some("10.0.0.5"))]))
        .collect();
    for (raw, n) in &batches[..2] {
        deliver(&mut store, &agent, raw, *n).unwrap();
    }
    // The operator's backup: the WAL folded into the file, the file copied.
    store
        .connection()
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    std::fs::copy(&path, &backup).unwrap();
    for (raw, n) in &batches[2..] {
        deliver(&mut store, &agent, raw, *n).unwrap();
    }
    assert_eq!(
        delivered(&store, &agent),
        (Some(id_of(&batches[3].0, batches[3].1)), 4)
    );
    let per_batch = hp.counters.len();
    drop(store);

    // The disk is lost; the cloud comes back from the backup.
    remove_db(&path);
    std::fs::copy(&backup, &path).unwrap();
    let _ = std::fs::remove_file(&backup);
    let mut store = Store::open(&path).unwrap();
    // The agent is in the backup: it was enrolled before it was taken.
    // hello names the older batch: the agent re-sends what came after it.
    let (last, held) = store.hello(&agent, "0.2.0", 7, &wall(10_000)).unwrap();
    assert_eq!(last, Some(id_of(&batches[1].0, batches[1].1)));
    assert_eq!(held, 2);
    assert_eq!(
        store.readings_of_customer("acme", ALL).unwrap().len(),
        2 * per_batch
    );

    // The agent still journals every batch: the two held are duplicates,
    // the two lost are stored, each once, in order.
    let outcomes: Vec<bool> = batches
        .iter()
        .map(|(raw, n)| deliver(&mut store, &agent, raw, *n).unwrap().duplicate)
        .collect();
    assert_eq!(outcomes, [true, true, false, false]);
    for (raw, n) in &batches {
        assert!(deliver(&mut store, &agent, raw, *n).unwrap().duplicate);
    }
    let stored = store.readings_of_customer("acme", ALL).unwrap();
    assert_eq!(stored.len(), 4 * per_batch);
    let order: Vec<BatchId> = stored
        .chunks(per_batch)
        .map(|c| {
            assert!(c.iter().all(|r| r.batch == c[0].batch));
            c[0].batch
        })
        .collect();
    let expected: Vec<BatchId> = batches.iter().map(|(raw, n)| id_of(raw, *n)).collect();
    assert_eq!(order, expected);
    assert_eq!(
        delivered(&store, &agent),
        (Some(id_of(&batches[3].0, batches[3].1)), 4)
    );
}

#[test]
fn a_database_of_an_older_dca_cloud_is_refused() {
    // A new database is marked with the schema version, and opens again.
    let path = db_path("fresh");
    drop(Store::open(&path).unwrap());
    let store = Store::open(&path).unwrap();
    let version: i64 = store
        .connection()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    assert_eq!(version, 3);
    drop(store);

    // Protocol 1's schema: batches numbered per agent, user_version 0.
    let path = db_path("v1");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, created_ms INTEGER NOT NULL);
         CREATE TABLE agents (id TEXT PRIMARY KEY, customer_id INTEGER NOT NULL, secret_hash BLOB NOT NULL,
             hostname TEXT NOT NULL, version TEXT NOT NULL, capabilities INTEGER NOT NULL DEFAULT 0,
             enrolled_ms INTEGER NOT NULL, last_contact_ms INTEGER, clock_skew_ms INTEGER,
             last_seq INTEGER NOT NULL DEFAULT 0, revoked_ms INTEGER);
         CREATE TABLE batches (agent_id TEXT NOT NULL, seq INTEGER NOT NULL, digest BLOB NOT NULL,
             readings INTEGER NOT NULL, received_ms INTEGER NOT NULL, PRIMARY KEY (agent_id, seq));",
    )
    .unwrap();
    drop(conn);
    let err = Store::open(&path).unwrap_err();
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("older dca-cloud"), "{err}");
    // Refused without touching it: still protocol 1's schema.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let v: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, 0);
    assert!(conn.prepare("SELECT last_seq FROM agents").is_ok());
}

/// Version 2's schema, as dca-cloud made it before dealers and operators'
/// sessions: what a cloud upgraded from it finds on disk.
const SCHEMA_V2: &str = "
CREATE TABLE IF NOT EXISTS customers (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS enrollment_tokens (
    token_hash BLOB PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    created_ms INTEGER NOT NULL,
    used_ms INTEGER,
    agent_id TEXT
);
CREATE TABLE IF NOT EXISTS agents (
    id TEXT PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    secret_hash BLOB NOT NULL,
    hostname TEXT NOT NULL,
    version TEXT NOT NULL,
    capabilities INTEGER NOT NULL DEFAULT 0,
    enrolled_ms INTEGER NOT NULL,
    last_contact_ms INTEGER,
    clock_skew_ms INTEGER,
    last_batch BLOB,
    revoked_ms INTEGER
);
CREATE TABLE IF NOT EXISTS batches (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    agent_id TEXT NOT NULL REFERENCES agents(id),
    digest BLOB NOT NULL,
    readings INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    position INTEGER NOT NULL,
    UNIQUE (customer_id, digest)
);
CREATE INDEX IF NOT EXISTS batches_by_agent ON batches (agent_id);
CREATE TABLE IF NOT EXISTS devices (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    device_key TEXT NOT NULL,
    key_stable INTEGER NOT NULL,
    vendor TEXT NOT NULL,
    serial TEXT NOT NULL,
    mac TEXT,
    model TEXT NOT NULL,
    firmware TEXT NOT NULL,
    sys_name TEXT NOT NULL,
    location TEXT NOT NULL,
    address TEXT NOT NULL,
    agent_id TEXT NOT NULL REFERENCES agents(id),
    first_seen_ms INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL,
    UNIQUE (customer_id, device_key)
);
CREATE TABLE IF NOT EXISTS readings (
    id INTEGER PRIMARY KEY,
    device_id INTEGER NOT NULL REFERENCES devices(id),
    agent_id TEXT NOT NULL,
    batch_id INTEGER NOT NULL REFERENCES batches(id),
    at_ms INTEGER,
    boot_id BLOB NOT NULL,
    mono_ms INTEGER NOT NULL,
    counter TEXT NOT NULL,
    value INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS readings_by_device ON readings (device_id, counter, id);
CREATE TABLE IF NOT EXISTS supplies (
    id INTEGER PRIMARY KEY,
    device_id INTEGER NOT NULL REFERENCES devices(id),
    batch_id INTEGER NOT NULL REFERENCES batches(id),
    at_ms INTEGER,
    supply_index INTEGER NOT NULL,
    description TEXT NOT NULL,
    type TEXT,
    colorant TEXT NOT NULL,
    level INTEGER,
    max_capacity INTEGER,
    percent REAL,
    state TEXT NOT NULL,
    part_number TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS supplies_by_device ON supplies (device_id, batch_id);
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY,
    device_id INTEGER NOT NULL REFERENCES devices(id),
    batch_id INTEGER NOT NULL REFERENCES batches(id),
    at_ms INTEGER,
    severity TEXT,
    alert_group INTEGER,
    code INTEGER,
    description TEXT NOT NULL,
    time_cs INTEGER
);
CREATE TABLE IF NOT EXISTS tasks (
    id INTEGER PRIMARY KEY,
    agent_id TEXT NOT NULL REFERENCES agents(id),
    kind TEXT NOT NULL,
    arg TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    delivered_ms INTEGER,
    done_ms INTEGER,
    ok INTEGER,
    detail TEXT
);
CREATE TABLE IF NOT EXISTS conflicts (
    id INTEGER PRIMARY KEY,
    device_id INTEGER NOT NULL REFERENCES devices(id),
    kind TEXT NOT NULL,
    detail TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    batch_id INTEGER NOT NULL REFERENCES batches(id),
    mac TEXT,
    first_ms INTEGER NOT NULL,
    last_ms INTEGER NOT NULL,
    readings INTEGER NOT NULL,
    resolved_ms INTEGER
);
CREATE INDEX IF NOT EXISTS conflicts_by_device ON conflicts (device_id, resolved_ms);
CREATE TABLE IF NOT EXISTS suspect_readings (
    reading_id INTEGER PRIMARY KEY REFERENCES readings(id),
    conflict_id INTEGER NOT NULL REFERENCES conflicts(id)
);
CREATE INDEX IF NOT EXISTS suspect_by_conflict ON suspect_readings (conflict_id);
CREATE TABLE IF NOT EXISTS operators (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('dealer', 'viewer')),
    password_hash TEXT NOT NULL,
    totp_secret TEXT NOT NULL,
    totp_last_step INTEGER,
    created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY,
    at_ms INTEGER NOT NULL,
    agent_id TEXT,
    customer_id INTEGER,
    remote TEXT NOT NULL,
    event TEXT NOT NULL,
    detail TEXT NOT NULL
);
";

/// The columns of `table`, as `PRAGMA table_info` lists them.
fn columns(
    conn: &rusqlite::Connection,
    table: &str,
) -> Vec<(String, String, bool, Option<String>)> {
    conn.prepare(&format!("PRAGMA table_info({table})"))
        .unwrap()
        .query_map([], |r| Ok((r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// A cloud upgraded to dealers opens its version 2 database: it is
/// converted in place, in the transaction that checks it, and its customers
/// and operators belong to the default dealer.
#[test]
fn a_database_of_schema_version_2_is_converted_in_place() {
    let fresh_path = db_path("v3-fresh");
    let fresh = Store::open(&fresh_path).unwrap();
    let path = db_path("v2");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(SCHEMA_V2).unwrap();
    conn.execute_batch(
        "PRAGMA user_version = 2;
         INSERT INTO customers (name, created_ms) VALUES ('acme', 1), ('globex', 2);",
    )
    .unwrap();
    let totp = dca_cloud::totp::Totp::from_base32("JBSWY3DPEHPK3PXPJBSWY3DP").unwrap();
    conn.execute(
        "INSERT INTO operators (name, role, password_hash, totp_secret, created_ms) VALUES ('jo', 'dealer', ?1, ?2, 3)",
        [
            dca_cloud::store::hash_password("pw").unwrap(),
            totp.secret_base32(),
        ],
    )
    .unwrap();
    drop(conn);

    let mut store = Store::open(&path).unwrap();
    let conn = store.connection();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    // The same tables and columns as a new database's.
    for table in ["dealers", "customers", "operators", "operator_sessions"] {
        assert_eq!(
            columns(conn, table),
            columns(fresh.connection(), table),
            "{table}"
        );
    }
    let dealers: Vec<(i64, String)> = conn
        .prepare("SELECT id, name FROM dealers")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(dealers, [(1, "default".to_string())]);
    let names: Vec<String> = report::customers(&store, Scope::Dealer(1))
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["acme", "globex"]);
    assert!(
        report::customers(&store, Scope::Dealer(2))
            .unwrap()
            .is_empty()
    );
    // The operator signs in as before, now of the default dealer.
    let t = 1_800_000_000;
    let jo = store
        .sign_in("jo", "pw", &totp.code_at(t), t)
        .unwrap()
        .unwrap();
    assert_eq!((jo.role, jo.dealer.as_str()), (Role::Dealer, "default"));
    let operators = store.operators().unwrap();
    assert_eq!(operators[0].dealer, "default");
    // acme is the default dealer's: naming another is refused.
    let err = store.create_token_for("acme", Some("north")).unwrap_err();
    assert!(err.contains("default") && err.contains("north"), "{err}");
    store.create_token_for("acme", Some("default")).unwrap();
    drop(store);
    // Opened again: as it is.
    drop(Store::open(&path).unwrap());

    // A version 2 database made before operators existed gets the whole
    // table.
    let path = db_path("v2-no-operators");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(SCHEMA_V2).unwrap();
    conn.execute_batch("DROP TABLE operators; PRAGMA user_version = 2;")
        .unwrap();
    drop(conn);
    let mut store = Store::open(&path).unwrap();
    assert_eq!(
        columns(store.connection(), "operators"),
        columns(fresh.connection(), "operators")
    );
    store.add_operator("vi", Role::Viewer, "north").unwrap();
}

#[test]
fn readings_without_a_date_are_placed_by_the_monotonic_clock() {
    let mut store = open("clock");
    // The cloud's clock, as a simulator sets it.
    const NOW: i64 = 1_800_000_000_000;
    store.set_clock(|| NOW);
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
    let readings = Readings::new(&raw, n);
    ingest(
        &mut store,
        &agent,
        &BatchId::of(&readings),
        1,
        &sent,
        &readings,
    )
    .unwrap();
    let placed: i64 = store
        .connection()
        .query_row("SELECT MIN(at_ms) FROM readings", [], |r| r.get(0))
        .unwrap();
    assert_eq!(placed, NOW - 60_000);
    assert_eq!(
        count(&store, "SELECT MAX(received_ms) FROM batches"),
        NOW,
        "stamped by the injected clock"
    );
    // Another boot's monotonic time cannot be placed: stored with no time.
    let other = Clock {
        wall_ms: None,
        boot_id: [1; 16],
        mono_ms: 5,
    };
    let (raw, n) = encode(&[(&hp, other, Some("10.0.0.5"))]);
    let readings = Readings::new(&raw, n);
    ingest(
        &mut store,
        &agent,
        &BatchId::of(&readings),
        2,
        &sent,
        &readings,
    )
    .unwrap();
    assert!(count(&store, "SELECT COUNT(*) FROM readings WHERE at_ms IS NULL") > 0);
}

#[test]
fn injected_entropy_makes_credentials_repeatable() {
    let seeded = |name: &str| {
        let mut store = open(name);
        let mut next = 0u8;
        store.set_entropy(move |buf: &mut [u8]| {
            for b in buf {
                next = next.wrapping_add(1);
                *b = next;
            }
        });
        let token = store.create_token("acme").unwrap();
        let e = store.enroll(&token, "host", "0.1.0", "test").unwrap();
        (token, e.agent_id, e.secret)
    };
    assert_eq!(seeded("seed-a"), seeded("seed-b"));
}

#[test]
fn customers_see_only_their_own_devices() {
    let mut store = open("scope");
    let a = enrolled(&mut store, "acme");
    let b = enrolled(&mut store, "globex");
    let hp = printer("jetdirect_m130nw");
    let ricoh = printer("ricoh_mpc3002");
    let (raw, n) = encode(&[(&hp, wall(1), Some("10.0.0.5"))]);
    deliver(&mut store, &a, &raw, n).unwrap();
    let (raw, n) = encode(&[
        (&hp, wall(1), Some("10.0.0.5")),
        (&ricoh, wall(1), Some("10.0.0.6")),
    ]);
    deliver(&mut store, &b, &raw, n).unwrap();
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
    let done = deliver(&mut store, &agent, &raw, n).unwrap();
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
    deliver(&mut store, &agent, &raw, n).unwrap();
    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM devices WHERE key_stable = 0"),
        1
    );
}

#[test]
fn credentials_are_checked_and_failures_audited() {
    let mut store = open("auth");
    let token = store.create_token("acme").unwrap();
    let first = store.enroll(&token, "host", "0.1.0", "test").unwrap();
    // The answer lost on its way: the same host asks again before its agent
    // ever called, and gets the same agent with a new secret (the first
    // one stops working).
    let e = store.enroll(&token, "host", "0.1.0", "test").unwrap();
    assert_eq!(e.agent_id, first.agent_id);
    assert_ne!(e.secret, first.secret);
    let old = format!("Bearer {}:{}", first.agent_id, first.secret);
    assert_eq!(
        store.authenticate(Some(&old), "test").unwrap_err().status,
        401
    );
    // Another host cannot.
    assert_eq!(
        store
            .enroll(&token, "elsewhere", "0.1.0", "test")
            .unwrap_err()
            .status,
        401
    );
    // Once the agent has called, the token is spent for good.
    let agent = store
        .authenticate(Some(&format!("Bearer {}:{}", e.agent_id, e.secret)), "test")
        .unwrap();
    store
        .hello(&agent, "0.1.0", 0, &wall(1_800_000_000_000))
        .unwrap();
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
        // The four above and the first, replaced secret.
        5
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

#[test]
fn a_batch_whose_predecessor_is_not_held_is_refused_and_marks_stay_in_order() {
    let mut store = open("order");
    let agent = enrolled(&mut store, "acme");
    let hp = printer("jetdirect_m130nw");
    let batch = |ms: u64| encode(&[(&hp, wall(ms), Some("10.0.0.5"))]);
    let ((r1, n1), (r2, n2), (r3, n3)) = (batch(1_000), batch(2_000), batch(3_000));
    let (b1, b2, b3) = (id_of(&r1, n1), id_of(&r2, n2), id_of(&r3, n3));
    let send = |store: &mut Store, raw: &[u8], n: u64, batch: &BatchId, after: Option<&BatchId>| {
        let readings = Readings::new(raw, n);
        let upload = Upload {
            batch,
            after,
            position: 0,
            sent: &wall(5_000),
            readings: &readings,
        };
        store.ingest(&agent, &upload, "test")
    };
    assert!(!send(&mut store, &r1, n1, &b1, None).unwrap().duplicate);
    assert!(!send(&mut store, &r2, n2, &b2, Some(&b1)).unwrap().duplicate);
    // A restore took b2's successor away: b3 names a batch never stored.
    let lost = BatchId([9; 32]);
    let refused = send(&mut store, &r3, n3, &b3, Some(&lost)).unwrap_err();
    assert_eq!(refused.status, 409, "{refused:?}");
    assert_eq!(count(&store, "SELECT COUNT(*) FROM batches"), 2);
    // An old batch sent again out of order (a restored agent's journal) is a
    // duplicate that leaves the mark where it was.
    assert!(
        send(&mut store, &r1, n1, &b1, Some(&lost))
            .unwrap()
            .duplicate
    );
    assert_eq!(delivered(&store, &agent), (Some(b2), 2));
    // In order, it goes in.
    assert!(!send(&mut store, &r3, n3, &b3, Some(&b2)).unwrap().duplicate);
    assert_eq!(delivered(&store, &agent), (Some(b3), 3));
}
