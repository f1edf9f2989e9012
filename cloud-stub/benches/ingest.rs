//! Ingest: readings stored per second by the cloud receiver, in one run:
//!
//! 1. `Store::ingest`: decode, key, and commit batches of 500 readings into
//!    SQLite (WAL, synchronous=FULL), as the server does after auth;
//! 2. the peer: the `sqlite3` shell running the same rows as plain SQL
//!    (same schema, same pragmas, one transaction per batch), what storage
//!    alone costs without any decoding or checks;
//! 3. over HTTPS: the server in this process, `curl` posting the same
//!    batches on one kept-alive connection.
//!
//! The readings are the corpus printers, given distinct serials to make a
//! fleet of 1,000 devices. `cargo bench -p dca-cloud --bench ingest`.

use dca_cloud::server::{Shared, serve};
use dca_cloud::store::{Agent, Store, Upload};
use dca_cloud::tls;
use dca_core::printer::{Snapshot, Text};
use dca_core::snmprec;
use dca_core::sync::Clock;
use dca_core::sync::batch::BatchId;
use dca_core::sync::message::{Readings, Request};
use dca_core::sync::reading::{self, Reading};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

const DEVICES: usize = 1_000;
const ROUNDS: usize = 5;
const BATCH: usize = 500;

fn corpus() -> PathBuf {
    std::env::var_os("DCA_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus"))
}

fn printers() -> Vec<Snapshot> {
    let mut out = Vec::new();
    let mut paths: Vec<_> = std::fs::read_dir(corpus().join("librenms/snmprec"))
        .expect("the corpus (set DCA_CORPUS)")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "snmprec"))
        .collect();
    paths.sort();
    for p in paths {
        let rec = snmprec::parse(&std::fs::read_to_string(&p).unwrap());
        let s = rec.snapshot();
        if s.is_printer() {
            out.push(s);
        }
    }
    out
}

/// Batches of encoded readings: every device once per round.
fn batches(base: &[Snapshot]) -> Vec<(Vec<u8>, u64)> {
    let mut all = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    for round in 0..ROUNDS {
        for i in 0..DEVICES {
            let mut s = base[i % base.len()].clone();
            s.identity.serial = Text::from_str_lossy(&format!("BENCH{i:06}"));
            for c in s.counters.iter_mut() {
                c.value += (round * 100 + i) as u64;
            }
            let at = Clock {
                wall_ms: Some(1_795_000_000_000 + round as u64 * 900_000),
                boot_id: [1; 16],
                mono_ms: 0,
            };
            let n = reading::encode(
                &s,
                &at,
                Some(&format!("10.{}.{}.{}", i / 65536, i / 256 % 256, i % 256)),
                &mut buf,
            )
            .unwrap();
            all.push(buf[..n].to_vec());
        }
    }
    all.chunks(BATCH)
        .map(|c| (c.concat(), c.len() as u64))
        .collect()
}

fn fresh_db(dir: &Path, name: &str) -> PathBuf {
    let db = dir.join(name);
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", db.display()));
    }
    db
}

fn enrolled(store: &mut Store) -> (Agent, String) {
    let token = store.create_token("bench").unwrap();
    let e = store.enroll(&token, "bench", "0", "bench").unwrap();
    let auth = format!("Bearer {}:{}", e.agent_id, e.secret);
    (store.authenticate(Some(&auth), "bench").unwrap(), auth)
}

fn sql_text(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn sql_opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "NULL".into(), |v| v.to_string())
}

/// The same rows as plain SQL for the sqlite3 shell.
fn sql_script(batches: &[(Vec<u8>, u64)], schema: &str) -> String {
    let mut sql = String::from("PRAGMA journal_mode=WAL;\nPRAGMA synchronous=FULL;\n");
    sql.push_str(schema);
    sql.push_str("\nINSERT INTO customers VALUES (1, 'bench', 0);\nINSERT INTO agents (id, customer_id, secret_hash, hostname, version, enrolled_ms) VALUES ('a', 1, x'00', 'h', '0', 0);\n");
    for (seq, (raw, n)) in batches.iter().enumerate() {
        let readings = Readings::new(raw, *n);
        let _ = writeln!(
            sql,
            "BEGIN;\nINSERT INTO batches (id, customer_id, agent_id, digest, readings, received_ms, position) VALUES ({}, 1, 'a', x'{}', {n}, 0, {});",
            seq + 1,
            hex::encode(BatchId::of(&readings).0),
            seq + 1
        );
        for r in readings.iter() {
            let r: Reading<'_> = r.unwrap();
            let key = r.key().unwrap().to_string();
            let at = r.at.wall_ms.unwrap();
            let _ = writeln!(
                sql,
                "INSERT INTO devices (customer_id, device_key, key_stable, vendor, serial, mac, model, firmware, sys_name, location, address, agent_id, first_seen_ms, last_seen_ms) VALUES (1, {}, 1, {}, {}, NULL, {}, {}, {}, {}, {}, 'a', {at}, {at}) ON CONFLICT (customer_id, device_key) DO UPDATE SET address = excluded.address, last_seen_ms = excluded.last_seen_ms;",
                sql_text(&key),
                sql_text(r.vendor),
                sql_text(r.serial),
                sql_text(r.model),
                sql_text(r.firmware),
                sql_text(r.sys_name),
                sql_text(r.sys_location),
                sql_text(r.address)
            );
            let device = format!(
                "(SELECT id FROM devices WHERE customer_id = 1 AND device_key = {})",
                sql_text(&key)
            );
            for c in &r.counters {
                let _ = writeln!(
                    sql,
                    "INSERT INTO readings (device_id, agent_id, batch_id, at_ms, boot_id, mono_ms, counter, value) VALUES ({device}, 'a', {}, {at}, x'01', 0, {}, {});",
                    seq + 1,
                    sql_text(c.name),
                    c.value
                );
            }
            for s in &r.supplies {
                let _ = writeln!(
                    sql,
                    "INSERT INTO supplies (device_id, batch_id, at_ms, supply_index, description, type, colorant, level, max_capacity, percent, state, part_number) VALUES ({device}, {}, {at}, {}, {}, NULL, {}, {}, {}, {}, {}, {});",
                    seq + 1,
                    s.index,
                    sql_text(s.description),
                    sql_text(s.colorant),
                    sql_opt(s.level),
                    sql_opt(s.max_capacity),
                    sql_opt(s.percent()),
                    sql_text(s.state),
                    sql_text(s.part_number)
                );
            }
        }
        let _ = writeln!(
            sql,
            "UPDATE agents SET last_batch = x'{}' WHERE id = 'a';\nCOMMIT;",
            hex::encode(BatchId::of(&readings).0)
        );
    }
    sql
}

fn rate(n: u64, secs: f64) -> String {
    format!("{:>9.0}/s", n as f64 / secs)
}

fn main() {
    let dir = std::env::temp_dir().join(format!("dca-ingest-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let base = printers();
    let batches = batches(&base);
    let readings: u64 = batches.iter().map(|(_, n)| n).sum();
    let sent = Clock {
        wall_ms: Some(1_795_000_000_000),
        boot_id: [1; 16],
        mono_ms: 0,
    };

    // 1. The store.
    let db = fresh_db(&dir, "store.db");
    let mut store = Store::open(&db).unwrap();
    let (agent, _) = enrolled(&mut store);
    let start = Instant::now();
    let mut after = None;
    for (seq, (raw, n)) in batches.iter().enumerate() {
        let readings = Readings::new(raw, *n);
        let id = BatchId::of(&readings);
        let done = store
            .ingest(
                &agent,
                &Upload {
                    batch: &id,
                    after: after.as_ref(),
                    position: seq as u64 + 1,
                    sent: &sent,
                    readings: &readings,
                },
                "bench",
            )
            .unwrap();
        assert!(!done.duplicate);
        after = Some(id);
    }
    let store_s = start.elapsed().as_secs_f64();
    let rows: i64 = store
        .connection()
        .query_row(
            "SELECT (SELECT COUNT(*) FROM readings) + (SELECT COUNT(*) FROM supplies)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let schema: String = store
        .connection()
        .prepare("SELECT sql || ';' FROM sqlite_master WHERE sql IS NOT NULL")
        .unwrap()
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect::<Vec<_>>()
        .join("\n");
    drop(store);

    // 2. The sqlite3 shell with the same rows.
    let script = dir.join("rows.sql");
    std::fs::write(&script, sql_script(&batches, &schema)).unwrap();
    let peer_db = fresh_db(&dir, "peer.db");
    let start = Instant::now();
    let out = Command::new("sqlite3")
        .arg(&peer_db)
        .stdin(std::fs::File::open(&script).unwrap())
        .output()
        .expect("sqlite3 is the peer of this benchmark (ci/setup.sh installs it)");
    let peer_s = start.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let peer_rows: i64 = rusqlite::Connection::open(&peer_db)
        .unwrap()
        .query_row(
            "SELECT (SELECT COUNT(*) FROM readings) + (SELECT COUNT(*) FROM supplies)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(peer_rows, rows, "the peer stored the same rows");

    // 3. Over HTTPS, posted by curl on one connection.
    let db = fresh_db(&dir, "https.db");
    let mut store = Store::open(&db).unwrap();
    let (_, auth) = enrolled(&mut store);
    let identity = tls::identity(None, None, &dir, &["127.0.0.1".into()]).unwrap();
    let shared = Arc::new(Shared::new(store));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!(
        "https://127.0.0.1:{}/v1/sync",
        listener.local_addr().unwrap().port()
    );
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = rt.spawn(serve(
        listener,
        tokio_rustls::TlsAcceptor::from(identity.config),
        shared.clone(),
        async {
            let _ = stop_rx.await;
        },
    ));
    let mut args: Vec<String> = Vec::new();
    for (seq, (raw, n)) in batches.iter().enumerate() {
        let readings = Readings::new(raw, *n);
        let before = seq
            .checked_sub(1)
            .map(|i| BatchId::of(&Readings::new(&batches[i].0, batches[i].1)));
        let body = Request::Upload {
            batch: BatchId::of(&readings),
            after: before,
            position: seq as u64 + 1,
            sent,
            readings,
        };
        let mut buf = vec![0u8; raw.len() + 256];
        let len = body.encode(&mut buf).unwrap();
        let file = dir.join(format!("batch{seq}.cbor"));
        std::fs::write(&file, &buf[..len]).unwrap();
        if seq > 0 {
            args.push("--next".into());
        }
        args.extend([
            "-sS".into(),
            "-o".into(),
            "/dev/null".into(),
            "--cacert".into(),
            dir.join("dca-cloud-cert.pem").display().to_string(),
            "-H".into(),
            "Content-Type: application/cbor".into(),
            "-H".into(),
            format!("Authorization: {auth}"),
            "--data-binary".into(),
            format!("@{}", file.display()),
            url.clone(),
        ]);
    }
    let start = Instant::now();
    let out = Command::new("curl")
        .args(&args)
        .output()
        .expect("curl posts the batches");
    let https_s = start.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let https_rows: i64 = shared
        .store
        .lock()
        .unwrap()
        .connection()
        .query_row(
            "SELECT (SELECT COUNT(*) FROM readings) + (SELECT COUNT(*) FROM supplies)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(https_rows, rows, "every batch stored over HTTPS");
    let _ = stop_tx.send(());
    let _ = rt.block_on(server);

    println!(
        "ingest of {readings} readings ({DEVICES} devices x {ROUNDS} rounds, batches of {BATCH}, {rows} rows of counters and supplies), WAL + synchronous=FULL:"
    );
    println!(
        "  {:<44} {:>7.3} s {} readings {} rows",
        "dca-cloud Store::ingest (decode+key+store)",
        store_s,
        rate(readings, store_s),
        rate(rows as u64, store_s)
    );
    println!(
        "  {:<44} {:>7.3} s {} readings {} rows",
        "sqlite3 shell, same rows as plain SQL",
        peer_s,
        rate(readings, peer_s),
        rate(rows as u64, peer_s)
    );
    println!(
        "  {:<44} {:>7.3} s {} readings {} rows",
        "dca-cloud over HTTPS (curl, one connection)",
        https_s,
        rate(readings, https_s),
        rate(rows as u64, https_s)
    );
    println!(
        "  Store::ingest / sqlite3 shell: {:.2}x the peer's speed",
        peer_s / store_s
    );
    let _ = std::fs::remove_dir_all(&dir);
}
