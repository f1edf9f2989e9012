//! End to end: `dca-sim serve` (the corpus printers), `dca-cloud serve`
//! (self-signed), `dca enroll` and `dca push`, checked in the cloud's SQLite
//! database. Also the refusals: a replayed batch stored once, wrong secrets,
//! customers kept apart, a wrong pin, and delivery through a real HTTP proxy
//! (tinyproxy) and with curl as an independent client.
//!
//! Every peer runs on its own loopback addresses; every wait is bounded.
//! The helpers are in `support/`, shared with `findings.rs`.

mod support;

use dca_core::sync::Clock;
use dca_core::sync::batch::{BatchId, parse_record};
use dca_core::sync::message::{Request, Response};
use rusqlite::Connection;
use std::path::Path;
use std::process::Command;
use support::*;

#[test]
fn corpus_printers_reach_the_database_whole() {
    if !peers("corpus_printers_reach_the_database_whole", &["curl"]) {
        return;
    }
    let site = delivered_site("whole", "127.45.0.1:0", "127.45.1.0/24");
    let (cloud, state) = (&site.cloud, &site.state);

    let printers = corpus_printers();
    let db = Connection::open(&cloud.db).unwrap();
    assert_eq!(
        count(&cloud.db, "SELECT COUNT(*) FROM devices"),
        printers.len() as i64
    );
    for s in &printers {
        let serial = s.identity.serial.as_str().trim();
        let model = s.identity.model.as_str();
        // The device row: by serial when the printer has one, else by model.
        let (id, key): (i64, String) = db
            .query_row(
                "SELECT id, device_key FROM devices WHERE (?1 != '' AND serial = ?1) OR (?1 = '' AND model = ?2)",
                [serial, model],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap_or_else(|e| panic!("no device for {serial:?} {model:?}: {e}"));
        let mut stored: Vec<(String, i64)> = db
            .prepare("SELECT counter, value FROM readings WHERE device_id = ?1 ORDER BY id")
            .unwrap()
            .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let mut expected: Vec<(String, i64)> = s
            .counters
            .iter()
            .map(|c| (c.name.to_string(), c.value as i64))
            .collect();
        stored.sort();
        expected.sort();
        assert_eq!(stored, expected, "counters of {key}");
        let supplies: Vec<(i64, String, Option<i64>)> = db
            .prepare("SELECT supply_index, description, level FROM supplies WHERE device_id = ?1 ORDER BY id")
            .unwrap()
            .query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let expected: Vec<(i64, String, Option<i64>)> = s
            .supplies
            .iter()
            .map(|x| {
                (
                    i64::from(x.index),
                    x.description.as_str().to_string(),
                    x.level.map(i64::from),
                )
            })
            .collect();
        assert_eq!(supplies, expected, "supplies of {key}");
        if s.identity.mac.is_some() || !serial.is_empty() {
            assert!(
                !key.starts_with("address/"),
                "{key} must not be keyed on its address"
            );
        }
    }
    let readings = count(&cloud.db, "SELECT COUNT(*) FROM readings");
    let counters: usize = printers.iter().map(|s| s.counters.len()).sum();
    assert_eq!(readings, counters as i64);

    // A second push adds readings, not devices.
    assert!(push("127.45.1.0/24", state, &[]).status.success());
    assert_eq!(
        count(&cloud.db, "SELECT COUNT(*) FROM readings"),
        2 * readings
    );
    assert_eq!(
        count(&cloud.db, "SELECT COUNT(*) FROM devices"),
        printers.len() as i64
    );
    // Delivered batches stay in the journal (retention); the cloud's
    // newest batch of this agent's is the second collection.
    let records = journal(state);
    assert_eq!(records.len(), 2);
    let last: Vec<u8> = Connection::open(&cloud.db)
        .unwrap()
        .query_row("SELECT last_batch FROM agents", [], |r| r.get(0))
        .unwrap();
    assert_eq!(last, records[1].digest);

    // The web page, for an operator signed in, shows every device of its
    // dealer's customers and supply bars.
    let session = sign_in(cloud, "viewer", "default");
    let (status, page) = curl(cloud, &["-H", &session, &format!("{}/", cloud.url)]);
    assert_eq!(status, 200);
    let page = String::from_utf8(page).unwrap();
    for s in &printers {
        assert!(
            page.contains(s.identity.model.as_str()),
            "page lacks {}",
            s.identity.model.as_str()
        );
    }
    assert!(page.contains("class=bar"));
    let (status, _) = curl(cloud, &[&format!("{}/", cloud.url)]);
    assert_eq!(status, 303, "the page is not public: to the sign-in form");
    let (status, _) = curl(cloud, &[&format!("{}/api/devices", cloud.url)]);
    assert_eq!(status, 401, "nor is the API");
    let (status, json) = api(cloud, state, "/api/devices");
    assert_eq!(status, 200);
    let devices: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(devices.as_array().unwrap().len(), printers.len());
    assert!(!cloud.banner.is_empty());

    // The operator's commands read the same database.
    let cli = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_dca-cloud"))
            .args(args)
            .arg("--db")
            .arg(&cloud.db)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    assert!(cli(&["devices"]).contains(&format!("{} devices", printers.len())));
    let s = printers
        .iter()
        .find(|s| !s.identity.serial.is_empty() && !s.counters.is_empty())
        .unwrap();
    let listing = cli(&["readings", s.identity.serial.as_str().trim()]);
    let total = s.counter("total").or(s.counters.first()).unwrap();
    let lines = listing
        .lines()
        .filter(|l| l.split_whitespace().any(|w| w == total.name))
        .count();
    assert_eq!(
        lines, 2,
        "two pushes, two values of {}:\n{listing}",
        total.name
    );
    assert!(listing.contains(&total.value.to_string()));
}

#[test]
fn batches_wait_for_the_cloud_and_a_replay_is_stored_once() {
    if !peers(
        "batches_wait_for_the_cloud_and_a_replay_is_stored_once",
        &["curl"],
    ) {
        return;
    }
    let listen = "127.46.0.1:18443";
    let site = site("replay", listen, "127.46.1.0/24");
    let (dir, state) = (&site.dir, &site.state);
    let pin = site.cloud.fingerprint.clone();
    drop(site.cloud);

    // The cloud is down: the readings wait in the journal.
    let out = push("127.46.1.0/24", state, &[]);
    assert_eq!(out.status.code(), Some(3), "unreachable cloud");
    let waiting = journal(state);
    assert_eq!(waiting.len(), 1);
    let record1 = waiting[0].clone();

    // Back up (same database, same certificate): the waiting batch goes first.
    let cloud = start_cloud(dir, listen);
    assert_eq!(
        cloud.fingerprint, pin,
        "the self-signed certificate is kept across restarts"
    );
    assert!(push("127.46.1.0/24", state, &[]).status.success());
    // Delivered batches stay in the journal for a while (retention).
    let records = journal(state);
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].digest, record1.digest);
    assert_eq!(count(&cloud.db, "SELECT COUNT(*) FROM batches"), 2);
    let first: i64 = Connection::open(&cloud.db)
        .unwrap()
        .query_row(
            "SELECT id FROM batches WHERE digest = ?1",
            [&record1.digest[..]],
            |r| r.get(0),
        )
        .unwrap();
    let readings = count(&cloud.db, "SELECT COUNT(*) FROM readings");
    let per_batch = count(
        &cloud.db,
        &format!("SELECT COUNT(*) FROM readings WHERE batch_id = {first}"),
    );
    assert_eq!(readings, 2 * per_batch);

    // Batch 1 again, as after a lost ack: a version 2 upload of the journal
    // record, sent by curl. Acknowledged as a duplicate, stored once.
    let upload = |record: &[u8], batch: Option<BatchId>| {
        let readings = parse_record(record).unwrap();
        let req = Request::Upload {
            batch: batch.unwrap_or_else(|| BatchId::of(&readings)),
            // The journal's first batch names no predecessor.
            after: None,
            position: record1.pos,
            sent: Clock {
                wall_ms: None,
                boot_id: [7; 16],
                mono_ms: 1,
            },
            readings,
        };
        let mut buf = vec![0u8; req.encoded_len()];
        let n = req.encode(&mut buf).unwrap();
        buf.truncate(n);
        buf
    };
    let batch1 = upload(&record1.bytes, None);
    let body = dir.join("batch1.cbor");
    std::fs::write(&body, &batch1).unwrap();
    let sync = format!("{}/v1/sync", cloud.url);
    let at = format!("@{}", body.display());
    let post = |auth: &str| {
        curl(
            &cloud,
            &[
                "-H",
                "Content-Type: application/cbor",
                "-H",
                auth,
                "--data-binary",
                &at,
                &sync,
            ],
        )
    };
    let auth = agent_auth(state);
    let (status, ack) = post(&auth);
    assert_eq!(status, 200, "a replay is acknowledged");
    assert_eq!(
        Response::decode(&ack).unwrap(),
        Response::Ack {
            batch: BatchId(record1.digest),
            stored: 0,
            duplicate: true
        }
    );
    assert_eq!(
        count(&cloud.db, "SELECT COUNT(*) FROM readings"),
        readings,
        "and not stored again"
    );
    assert_eq!(
        count(
            &cloud.db,
            "SELECT COUNT(*) FROM audit WHERE event = 'duplicate'"
        ),
        1
    );

    // A flipped byte changes the digest: the batch id no longer matches
    // its readings, whichever of the two the byte was in.
    let mut other = batch1.clone();
    let last = other.len() - 1;
    other[last] ^= 0x01; // the last byte of the batch id (key 22 comes last)
    let mut altered = record1.bytes.clone();
    let total = altered
        .windows(6)
        .position(|w| w == b"\x65total")
        .expect("a reading with a total counter");
    altered[total + 5] = b'L'; // "totaL": still valid CBOR
    for (what, bytes) in [
        ("a flipped id", other),
        (
            "altered readings",
            upload(&altered, Some(BatchId(record1.digest))),
        ),
    ] {
        std::fs::write(&body, &bytes).unwrap();
        let (status, reason) = post(&auth);
        let reason = String::from_utf8_lossy(&reason);
        assert_eq!(status, 400, "{what}: {reason}");
        assert!(
            reason.contains("batch id does not match its readings"),
            "{what}: {reason}"
        );
    }
    assert_eq!(count(&cloud.db, "SELECT COUNT(*) FROM readings"), readings);
    assert_eq!(count(&cloud.db, "SELECT COUNT(*) FROM batches"), 2);

    // Bad input: 4xx with a reason, nothing stored.
    assert_eq!(curl(&cloud, &[&sync]).0, 405, "GET of the sync endpoint");
    std::fs::write(&body, b"\xa2\x00\x01\x01").unwrap();
    let (status, reason) = post(&auth);
    assert_eq!(status, 400);
    assert!(
        String::from_utf8_lossy(&reason).contains("malformed CBOR"),
        "{}",
        String::from_utf8_lossy(&reason)
    );
    std::fs::write(&body, &batch1).unwrap();
    let (status, _) = curl(
        &cloud,
        &[
            "-H",
            "Content-Type: text/plain",
            "-H",
            &auth,
            "--data-binary",
            &format!("@{}", body.display()),
            &sync,
        ],
    );
    assert_eq!(status, 415);
    let (status, _) = curl(
        &cloud,
        &[
            "-H",
            "Content-Type: application/cbor",
            "-H",
            "Content-Length: 999999999",
            "-H",
            &auth,
            "--data-binary",
            "x",
            &sync,
        ],
    );
    assert_eq!(status, 413);
    assert_eq!(count(&cloud.db, "SELECT COUNT(*) FROM readings"), readings);
}

#[test]
fn secrets_pins_and_customers_are_enforced() {
    if !peers("secrets_pins_and_customers_are_enforced", &["curl"]) {
        return;
    }
    let site = site("auth", "127.47.0.1:0", "127.47.1.0/24");
    let (dir, cloud, a) = (&site.dir, &site.cloud, &site.state);
    let b = dir.join("b");
    enroll(cloud, "globex", &b);
    assert!(push("127.47.1.0/24", a, &[]).status.success());
    let acme_readings = count(&cloud.db, "SELECT COUNT(*) FROM readings");
    let devices = count(&cloud.db, "SELECT COUNT(*) FROM devices");

    // B reads the same printers: they become globex's devices, acme's
    // rows are untouched.
    assert!(push("127.47.1.0/24", &b, &[]).status.success());
    assert_eq!(
        count(&cloud.db, "SELECT COUNT(*) FROM devices"),
        2 * devices
    );
    assert_eq!(
        count(
            &cloud.db,
            "SELECT COUNT(*) FROM readings r JOIN devices d ON d.id = r.device_id JOIN customers c ON c.id = d.customer_id WHERE c.name = 'acme'"
        ),
        acme_readings
    );
    // B sees only globex's devices, and none of acme's by id.
    let (status, json) = api(cloud, &b, "/api/devices");
    assert_eq!(status, 200);
    let seen: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(seen.as_array().unwrap().len() as i64, devices);
    assert!(
        seen.as_array()
            .unwrap()
            .iter()
            .all(|d| d["customer"] == "globex")
    );
    let acme_device: i64 = Connection::open(&cloud.db)
        .unwrap()
        .query_row("SELECT d.id FROM devices d JOIN customers c ON c.id = d.customer_id WHERE c.name = 'acme' LIMIT 1", [], |r| r.get(0))
        .unwrap();
    let (status, _) = api(cloud, &b, &format!("/api/devices/{acme_device}/readings"));
    assert_eq!(status, 404);
    let (status, _) = api(cloud, a, &format!("/api/devices/{acme_device}/readings"));
    assert_eq!(status, 200);

    // A wrong secret: 401 and an audit entry; the agent says so (exit 4).
    let agent_json = a.join("agent.json");
    let original = std::fs::read_to_string(&agent_json).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&original).unwrap();
    v["secret"] = "0".repeat(64).into();
    std::fs::write(&agent_json, v.to_string()).unwrap();
    let before = count(
        &cloud.db,
        "SELECT COUNT(*) FROM audit WHERE event = 'auth_refused'",
    );
    let out = push("127.47.1.0/24", a, &[]);
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));
    assert!(
        count(
            &cloud.db,
            "SELECT COUNT(*) FROM audit WHERE event = 'auth_refused'"
        ) > before
    );
    std::fs::write(&agent_json, original).unwrap();

    // A revoked agent is refused the same way.
    let id = v["agent_id"].as_str().unwrap().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_dca-cloud"))
        .args(["agent", "revoke", &id, "--db"])
        .arg(&cloud.db)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(push("127.47.1.0/24", a, &[]).status.code(), Some(4));

    // Tokens are one-time; unknown ones are refused.
    let t = token(&cloud.db, "acme");
    let c = dir.join("c");
    let args = |t: &str, pin: &str, state: &Path| {
        enroll_with(cloud, t, ["--pin", pin], state, &["--force"])
    };
    assert!(args(&t, &cloud.fingerprint, &c).status.success());
    // Asked again before the agent ever called (its answer lost, say):
    // the same agent, with a new secret.
    let id_of = |state: &Path| {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(state.join("agent.json")).unwrap())
                .unwrap();
        v["agent_id"].as_str().unwrap().to_string()
    };
    let first = id_of(&c);
    assert!(args(&t, &cloud.fingerprint, &c).status.success());
    assert_eq!(id_of(&c), first);
    // Once it has called, the token is spent.
    assert!(push("127.47.1.0/24", &c, &[]).status.success());
    assert_eq!(
        args(&t, &cloud.fingerprint, &c).status.code(),
        Some(4),
        "a used token"
    );
    assert_eq!(
        args("dcat_nonsense", &cloud.fingerprint, &c).status.code(),
        Some(4)
    );

    // A wrong pin: dca refuses to connect and stores nothing.
    let d = dir.join("d");
    let out = args(&token(&cloud.db, "acme"), &"ab".repeat(32), &d);
    assert_eq!(out.status.code(), Some(5), "a trust failure");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not the pinned"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!d.join("agent.json").exists());
    // The certificate as a CA file works where a pin would.
    let e = dir.join("e");
    let cert = dir.join("dca-cloud-cert.pem");
    let t = token(&cloud.db, "acme");
    let out = enroll_with(cloud, &t, ["--ca", cert.to_str().unwrap()], &e, &[]);
    assert!(out.status.success());
}

#[test]
fn tasks_run_and_readings_pass_an_http_proxy() {
    if !peers("tasks_run_and_readings_pass_an_http_proxy", &["tinyproxy"]) {
        return;
    }
    let site = site("proxy", "127.48.0.1:0", "127.48.1.0/24");
    let (dir, cloud, state) = (&site.dir, &site.cloud, &site.state);
    let proxy = start_proxy(dir, "127.48.0.2", 18888, "");
    let id = agent_id(state);
    for (kind, arg) in [
        ("rescan", ""),
        ("set_log_level", "debug"),
        ("set_targets", "127.48.1.0/24"),
        ("reboot", ""),
    ] {
        let out = create_task(cloud, &id, kind, arg);
        assert_eq!(out.status.success(), kind != "reboot", "{kind}: {out:?}");
    }
    // Through the proxy, from HTTPS_PROXY.
    let out = Command::new(sibling("dca"))
        .args(push_args(&["127.48.1.0/24"], state, &[]))
        .env("HTTPS_PROXY", "http://127.48.0.2:18888")
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .output()
        .unwrap();
    eprintln!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success());
    let log = proxy.drain().join("\n");
    assert!(
        log.contains("CONNECT 127.48.0.1:"),
        "the proxy saw no tunnel: {log}"
    );
    // The rescan added a second batch; the settings reached the agent.
    assert_eq!(count(&cloud.db, "SELECT COUNT(*) FROM batches"), 2);
    assert_eq!(
        count(
            &cloud.db,
            "SELECT COUNT(*) FROM tasks WHERE done_ms IS NOT NULL AND ok = 1"
        ),
        3
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("agent.json")).unwrap()).unwrap();
    assert_eq!(v["log_level"], "debug");
    assert_eq!(v["targets"][0], "127.48.1.0/24");
    // Pushing without targets now uses the ones the cloud set.
    assert!(
        dca(&push_args(
            &[],
            state,
            &["--proxy", "http://127.48.0.2:18888"]
        ))
        .status
        .success()
    );
    assert_eq!(count(&cloud.db, "SELECT COUNT(*) FROM batches"), 3);
    // A proxy that wants credentials: refused without them (the readings
    // wait in the journal), tunnelled with them (and the waiting batch goes
    // first).
    let _auth_proxy = start_proxy(dir, "127.48.0.3", 18889, "BasicAuth dca s3cret\n");
    let via = |proxy: &str| dca(&push_args(&[], state, &["--proxy", proxy]));
    let out = via("http://127.48.0.3:18889");
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("407"));
    assert_eq!(count(&cloud.db, "SELECT COUNT(*) FROM batches"), 3);
    let out = via("http://dca:s3cret@127.48.0.3:18889");
    assert!(out.status.success());
    assert_eq!(count(&cloud.db, "SELECT COUNT(*) FROM batches"), 5);
}

#[test]
fn the_service_collects_on_schedule_takes_tasks_and_stops_cleanly() {
    let site = site("service", "127.49.0.1:0", "127.49.1.0/24");
    let (cloud, state) = (&site.cloud, &site.state);
    // Every 3 s, not every second: a sweep of the /24 takes about 1 s, and
    // while collections are due as fast as sweeps end, the session keeps
    // uploading the new batches and never ends its round (no task poll, no
    // "batches delivered"): a known bug of dca run, reported separately.
    let service = start_run(state, &["127.49.1.0/24"], 3, 1);
    // Two collections, each delivered.
    wait_for(&service, "batches delivered");
    wait_for(&service, "batches delivered");
    assert!(count(&cloud.db, "SELECT COUNT(*) FROM batches") >= 2);
    // A task queued while it runs is taken at the next call.
    let id = agent_id(state);
    assert!(
        create_task(cloud, &id, "set_log_level", "debug")
            .status
            .success()
    );
    wait_for(&service, "set_log_level done");
    // SIGTERM stops it between rounds, with success.
    stop_run(service);
    assert_eq!(
        count(&cloud.db, "SELECT COUNT(*) FROM tasks WHERE ok = 1"),
        1
    );
}
