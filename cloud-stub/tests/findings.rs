//! End to end, one test per finding that sync protocol 2 fixed, with the
//! real programs (`dca-sim serve` on the corpus, `dca-cloud serve`, `dca`):
//! a re-enrolled agent and a cloud restored from a backup are not blocked
//! and lose nothing; a failing disk is never an exit 0 with readings
//! dropped; `dca run` waits out what can heal; two agents cannot share a
//! state directory; a batch the cloud refuses is quarantined and does not
//! block the rest. Each test says why version 1 failed it.
//!
//! Every peer runs on its own loopback addresses (127.50 to 127.55); every
//! wait is bounded; every process started is stopped.

mod support;

use dca_core::sync::batch::{BatchId, parse_record};
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;
use support::*;

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Finding 1. Version 1 numbered batches per agent: `dca enroll --force`
/// gave the agent a new id whose sequence at the cloud started again at 0,
/// while the batch waiting in the outbox kept the number the old id had
/// given it, so the cloud refused it as skipping ahead (409) at every push,
/// and nothing after it was ever delivered. Version 2 names batches by
/// digest: the new agent's hello finds no batch of its own, sends its whole
/// journal again, the batch the old id delivered is a duplicate, and the
/// rest is stored once.
#[test]
fn a_re_enrolled_agent_delivers_what_waited_and_nothing_twice() {
    let listen = "127.50.0.1:18443";
    let net = "127.50.1.0/24";
    let site = delivered_site("reenroll", listen, net);
    let state = &site.state;
    let old_id = agent_id(state);

    // The cloud goes down: the second collection waits in the journal.
    drop(site.cloud);
    let out = push(net, state, &[]);
    assert_eq!(out.status.code(), Some(3), "unreachable cloud");
    assert_eq!(journal(state).len(), 2);

    // Back up (same database); the agent is re-enrolled for the same
    // customer with a new token, keeping its journal.
    let cloud = start_cloud(&site.dir, listen);
    let t = token(&cloud.db, "acme");
    let out = enroll_with(
        &cloud,
        &t,
        ["--pin", &cloud.fingerprint],
        state,
        &["--force"],
    );
    assert!(out.status.success());
    let new_id = agent_id(state);
    assert_ne!(new_id, old_id);

    let out = push_ok(net, state);
    assert!(
        stderr(&out).contains("the cloud held it already"),
        "the first batch is a duplicate: {}",
        stderr(&out)
    );
    every_collection_once(&cloud.db, state, 3);
    assert_eq!(
        count(
            &cloud.db,
            "SELECT COUNT(*) FROM audit WHERE event = 'duplicate'"
        ),
        1
    );
    // The new agent's newest batch is the last collection.
    let last: Vec<u8> = Connection::open(&cloud.db)
        .unwrap()
        .query_row(
            "SELECT last_batch FROM agents WHERE id = ?1",
            [&new_id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(last, journal(state)[2].digest);
    // And the next push sends only its own collection.
    let out = push(net, state, &[]);
    assert!(out.status.success());
    assert!(
        stdout(&out).contains("1 batches delivered"),
        "{}",
        stdout(&out)
    );
    every_collection_once(&cloud.db, state, 4);
}

/// Copies a cloud's database while the cloud is stopped, replacing `to`.
fn copy_db(from: &Path, to: &Path) {
    // Fold the write-ahead log into the database file, so that the file
    // alone is the whole database.
    Connection::open(from)
        .unwrap()
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    for ext in ["-wal", "-shm"] {
        let mut side = to.as_os_str().to_owned();
        side.push(ext);
        let _ = std::fs::remove_file(PathBuf::from(side));
    }
    std::fs::copy(from, to).unwrap();
}

/// Finding 1, second variant. Version 1 deleted a batch from the outbox
/// once acknowledged, and a cloud restored from a backup taken before the
/// last deliveries then held a lower sequence than the agent's next: the
/// restore's lost batches were gone from the agent too, and the next batch
/// was refused as skipping ahead (409) for ever. Version 2 keeps delivered
/// batches (retention); the restored cloud names an older batch at hello,
/// and the agent sends again everything after it.
#[test]
fn a_cloud_restored_from_a_backup_gets_every_reading_once() {
    let listen = "127.51.0.1:18443";
    let net = "127.51.1.0/24";
    let site = delivered_site("restore", listen, net);
    let (dir, state) = (&site.dir, &site.state);

    // The backup, taken while the cloud is stopped.
    let db = site.cloud.db.clone();
    drop(site.cloud);
    let backup = dir.join("backup.db");
    copy_db(&db, &backup);

    // Two more deliveries, which the restore will lose.
    let cloud = start_cloud(dir, listen);
    for _ in 0..2 {
        assert!(push(net, state, &[]).status.success());
    }
    assert_eq!(count(&db, "SELECT COUNT(*) FROM batches"), 3);
    drop(cloud);
    copy_db(&backup, &db);
    let cloud = start_cloud(dir, listen);
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM batches"),
        1,
        "the restore lost two batches"
    );

    // The next push sends the two again, then its own.
    let out = push_ok(net, state);
    assert!(
        stdout(&out).contains("3 batches delivered"),
        "{}",
        stdout(&out)
    );
    every_collection_once(&cloud.db, state, 4);
}

/// A small tmpfs, unmounted (and removed) when dropped.
struct Tmpfs(PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A 64 KiB tmpfs at `at`, or `None` where this process may not mount one
/// (not root, no CAP_SYS_ADMIN, no `mount`), or where DCA_E2E_NO_TMPFS is
/// set (to run the fallback where mounting works).
fn tmpfs(at: &Path) -> Option<Tmpfs> {
    if std::env::var_os("DCA_E2E_NO_TMPFS").is_some() {
        return None;
    }
    std::fs::create_dir_all(at).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k,nr_inodes=64", "tmpfs"])
        .arg(at)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if mounted {
        Some(Tmpfs(at.to_path_buf()))
    } else {
        let _ = std::fs::remove_dir(at);
        None
    }
}

/// Fills the file system `dir` is on, to the last block.
fn fill(dir: &Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(dir.join("filler")).unwrap();
    let block = [0u8; 4096];
    while f.write_all(&block).is_ok() {}
    while f.write_all(&[0u8]).is_ok() {}
    let _ = f.sync_all();
    let probe = dir.join("probe");
    assert!(
        std::fs::write(&probe, block).is_err(),
        "the file system still has room"
    );
    let _ = std::fs::remove_file(probe);
}

/// The journal directory holds no record and no temporary file.
fn journal_is_empty(state: &Path) {
    let left: Vec<String> = std::fs::read_dir(state.join("journal"))
        .map(|l| {
            l.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

/// Finding 2. Version 1 sent a batch it could not journal "from memory"
/// and then reported success: `dca push` exited 0 although its readings had
/// never been on disk, and with the cloud down it exited 3, promising
/// batches "kept for the next push" that were lost as it ended. Version 2
/// delivers the batch from memory all the same, but `dca push` says the
/// journal failed and exits 1, and says the readings are lost when the
/// cloud did not take them.
///
/// The state directory is on a full 64 KiB tmpfs; where this process may
/// not mount one, `dca push` runs under RLIMIT_FSIZE (prlimit) with SIGXFSZ
/// ignored, so its journal write fails with EFBIG instead of ENOSPC.
#[test]
fn a_failing_disk_is_never_an_exit_0_with_readings_dropped() {
    let net = "127.52.1.0/24";
    let dir = temp_dir("disk");
    let small = tmpfs(&dir.join("small"));
    if small.is_none()
        && !peers(
            "a_failing_disk_is_never_an_exit_0_with_readings_dropped (without a tmpfs)",
            &["sh", "prlimit"],
        )
    {
        return;
    }
    let state = match &small {
        Some(m) => m.0.join("agent"),
        None => dir.join("agent"),
    };
    let site = site_in(dir, "127.52.0.1:0", net, state);
    let state = &site.state;
    match &small {
        Some(m) => fill(&m.0),
        None => eprintln!("cannot mount a tmpfs here: dca push runs under prlimit --fsize"),
    }
    let failing_push = || {
        let args = push_args(&[net], state, &[]);
        match &small {
            Some(_) => dca(&args),
            None => {
                let out = Command::new("sh")
                    .args(["-c", "trap '' XFSZ; exec prlimit --fsize=1024 \"$@\"", "sh"])
                    .arg(sibling("dca"))
                    .args(&args)
                    .env_remove("HTTPS_PROXY")
                    .env_remove("https_proxy")
                    .output()
                    .unwrap();
                show(&format!("prlimit --fsize=1024 dca {args:?}"), &out);
                out
            }
        }
    };

    // The cloud is up: the readings arrive from memory, and the push fails.
    let out = failing_push();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.lines()
            .any(|l| l.contains("journal trouble: cannot journal batch")),
        "a line naming the journal's failure: {err}"
    );
    assert!(
        err.contains("1 batches were never safely journaled (the cloud has them now)"),
        "{err}"
    );
    assert_eq!(count(&site.cloud.db, "SELECT COUNT(*) FROM batches"), 1);
    assert_eq!(
        count(&site.cloud.db, "SELECT COUNT(*) FROM readings"),
        counters_per_collection(),
        "every reading arrived"
    );
    journal_is_empty(state);

    // The cloud is down: the readings are lost, and the push says so.
    let db = site.cloud.db.clone();
    drop(site.cloud);
    let out = failing_push();
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "not 0, and not 3, which promises the readings are kept: {err}"
    );
    assert!(
        err.contains("the readings of the 1 the cloud did not take are lost"),
        "{err}"
    );
    assert_eq!(count(&db, "SELECT COUNT(*) FROM batches"), 1);
    journal_is_empty(state);
}

/// Finding 3. Version 1's `dca run` exited at the first failure it did
/// not count as transient: a target name that does not resolve today was a
/// usage error (exit 2) at the first collection, so the service ended and
/// collected nothing more. Version 2 leaves the name out of that
/// collection, keeps the readings of the rest in the journal while the
/// cloud is down, retries after the backoff (30 s less up to a fifth) and
/// delivers once the cloud is back.
#[test]
fn the_service_waits_out_an_unresolved_target_and_a_cloud_that_is_down() {
    let listen = "127.53.0.1:18443";
    let net = "127.53.1.0/24";
    let site = site("heal", listen, net);
    let state = &site.state;
    let db = site.cloud.db.clone();
    drop(site.cloud);
    let mut service = start_run(state, &["printer.invalid", net], 60, 60);
    let left_out = service.wait_within("left out of this collection", STARTUP);
    assert!(left_out.contains("printer.invalid"), "{left_out}");
    let printers = corpus_printers().len();
    service.wait_within(&format!("collected {printers} readings"), STARTUP);
    let failed = service.wait_within("trying again in", STARTUP);
    assert!(failed.contains("cloud unreachable"), "{failed}");
    let retry = number_after(&failed, "trying again in");
    assert!((24..=30).contains(&retry), "{failed}");
    // Still running after the failure.
    service.stays_up(Duration::from_secs(2));

    // The cloud comes back: the retry delivers the waiting batch.
    let _cloud = start_cloud(&site.dir, listen);
    let delivered = service.wait_within(
        &format!("delivered: {printers} readings stored"),
        Duration::from_secs(retry + 20),
    );
    assert!(delivered.contains("journal position 1"), "{delivered}");
    every_collection_once(&db, state, 1);

    stop_run(service);
}

/// Finding 4. Version 1 took no lock: a `dca push` started while `dca run`
/// worked in the same state directory read and wrote the same outbox and
/// sequence counter, so both could journal different batches under one
/// number (one then refused as a conflict) or send the same batch twice.
/// Version 2 holds STATE/lock while an agent runs: the second is refused
/// with exit 1, naming the directory, and the first goes on.
#[test]
fn a_second_agent_on_the_same_state_directory_is_refused() {
    let net = "127.54.1.0/24";
    let site = site("lock", "127.54.0.1:0", net);
    let state = &site.state;
    let mut service = start_run(state, &[net], 3, 60);
    let first = service.wait_within("delivered:", STARTUP);
    let first = number_after(&first, "journal position");

    let out = push(net, state, &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&state.display().to_string()), "{err}");
    assert!(err.contains("in use by another dca"), "{err}");
    assert!(!err.contains("collected"), "it must not sweep: {err}");

    // The running agent is unaffected: still up, still delivering.
    service.stays_up(Duration::from_secs(1));
    let next = service.wait_within("delivered:", STARTUP);
    assert!(number_after(&next, "journal position") > first, "{next}");
    stop_run(service);

    // Its lock goes with it.
    push_ok(net, state);
    let collections = journal(state).len();
    every_collection_once(&site.cloud.db, state, collections);
}

/// Finding 5. Version 1 stopped delivery at the first batch the cloud
/// refused: a malformed batch stayed at the head of the outbox, every push
/// failed on it (exit 4) and nothing journaled after it was ever sent.
/// Version 2 moves a batch the cloud refuses as malformed to
/// STATE/quarantine/ with the cloud's reason, and the rest flows.
#[test]
fn a_malformed_batch_is_quarantined_and_the_rest_is_delivered() {
    let net = "127.55.1.0/24";
    let site = site("quarantine", "127.55.0.1:0", net);
    let (cloud, state) = (&site.cloud, &site.state);
    // A readings array of one reading without its clock (key 0), which the
    // cloud refuses: [{1: "hp", 2: "BADCLOCK1"}], named by the digest of
    // its items, at journal position 1, before the push's own.
    let mut record = vec![0x81, 0xa2, 0x01, 0x62];
    record.extend_from_slice(b"hp");
    record.extend_from_slice(&[0x02, 0x69]);
    record.extend_from_slice(b"BADCLOCK1");
    let id = BatchId::of(&parse_record(&record).unwrap());
    let name = format!("{:020}-{}-x.cbor", 1, hex::encode(id.0));
    std::fs::create_dir_all(state.join("journal")).unwrap();
    std::fs::write(state.join("journal").join(&name), &record).unwrap();

    let out = push_ok(net, state);
    assert!(stdout(&out).contains("1 quarantined"), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("was refused by the cloud (HTTP 400"),
        "{}",
        stderr(&out)
    );
    // Moved aside, byte for byte, with the cloud's reason beside it.
    let moved = state.join("quarantine").join(&name);
    assert_eq!(std::fs::read(&moved).unwrap(), record);
    let reason =
        std::fs::read_to_string(state.join("quarantine").join(format!("{name}.reason.txt")))
            .unwrap();
    assert!(
        reason.contains(&format!("reading 0 of batch {id}")) && reason.contains("reading.at"),
        "{reason}"
    );
    assert!(!state.join("journal").join(&name).exists());
    // The new readings are stored; the refused batch is not.
    let records = journal(state);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].pos, 2);
    every_collection_once(&cloud.db, state, 1);
    assert_eq!(
        count(
            &cloud.db,
            &format!(
                "SELECT COUNT(*) FROM batches WHERE digest = x'{}'",
                hex::encode(id.0)
            )
        ),
        0
    );

    // It stays aside: the next push does not send it again.
    let out = push(net, state, &[]);
    assert!(out.status.success());
    assert!(!stdout(&out).contains("quarantined"), "{}", stdout(&out));
    every_collection_once(&cloud.db, state, 2);
}
