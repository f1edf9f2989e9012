//! End to end: `dca-sim serve` (the corpus printers), `dca-cloud serve`
//! (self-signed), `dca enroll` and `dca push`, checked in the cloud's SQLite
//! database. Also the refusals: a replayed batch stored once, wrong secrets,
//! customers kept apart, a wrong pin, and delivery through a real HTTP proxy
//! (tinyproxy) and with curl as an independent client.
//!
//! Every peer runs on its own loopback addresses; every wait is bounded.

use dca_core::printer::Snapshot;
use dca_core::snmprec;
use rusqlite::Connection;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const STARTUP: Duration = Duration::from_secs(60);

fn corpus() -> PathBuf {
    std::env::var_os("DCA_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus"))
}

/// Another package's binary, which `cargo test --workspace` builds beside
/// this test's.
fn sibling(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().and_then(Path::parent).unwrap().join(name);
    assert!(
        path.exists(),
        "{} is missing: run the workspace's tests (cargo test --workspace)",
        path.display()
    );
    path
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("dca-e2e-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A child process killed when the test ends, however it ends.
struct Proc {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    /// Starts `cmd` and waits (bounded) for a line of its output containing
    /// `ready`; returns the lines up to that one, which is last.
    fn start(cmd: &mut Command, ready: &str) -> (Proc, Vec<String>) {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let (tx, rx) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        let mut seen = Vec::new();
        loop {
            match rx.recv_timeout(STARTUP) {
                Ok(l) if l.contains(ready) => {
                    seen.push(l);
                    return (Proc { child, lines: rx }, seen);
                }
                Ok(l) => seen.push(l),
                Err(e) => panic!("{cmd:?} did not print {ready:?} ({e}); it printed {seen:#?}"),
            }
        }
    }

    /// Everything printed so far.
    fn drain(&self) -> Vec<String> {
        self.lines.try_iter().collect()
    }
}

struct Cloud {
    _proc: Proc,
    url: String,
    db: PathBuf,
    fingerprint: String,
    operator: String,
    banner: Vec<String>,
}

fn start_cloud(dir: &Path, listen: &str) -> Cloud {
    let db = dir.join("cloud.db");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dca-cloud"));
    cmd.args(["serve", "--listen", listen, "--db"])
        .arg(&db)
        .env_remove("DCA_CLOUD_OPERATOR_PASSWORD");
    let (proc, banner) = Proc::start(&mut cmd, "listening on https://");
    let line = banner.last().unwrap().clone();
    let find = |key: &str| {
        banner
            .iter()
            .find_map(|l| l.split_once(key).map(|(_, v)| v.trim().to_string()))
            .unwrap_or_else(|| panic!("no {key:?} in {banner:?}"))
    };
    let fingerprint = find("certificate sha256");
    let operator = find("password");
    let url = line
        .split_once("listening on ")
        .unwrap()
        .1
        .trim()
        .to_string();
    Cloud {
        _proc: proc,
        url,
        db,
        fingerprint,
        operator,
        banner,
    }
}

fn token(db: &Path, customer: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_dca-cloud"))
        .args(["token", "create", "--customer", customer, "--db"])
        .arg(db)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_string()
}

fn start_sim(bind: &str) -> Proc {
    let recordings = corpus().join("librenms/snmprec");
    Proc::start(
        Command::new(sibling("dca-sim"))
            .args(["serve", "--recordings"])
            .arg(recordings)
            .args(["--bind", bind, "--port", "1161"]),
        "serving",
    )
    .0
}

fn dca(args: &[&str]) -> Output {
    let out = Command::new(sibling("dca"))
        .args(args)
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .output()
        .unwrap();
    eprintln!(
        "dca {args:?}: {:?}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn enroll(cloud: &Cloud, customer: &str, state: &Path) {
    let t = token(&cloud.db, customer);
    let out = dca(&[
        "enroll",
        "--cloud",
        &cloud.url,
        "--token",
        &t,
        "--pin",
        &cloud.fingerprint,
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    assert!(out.status.success());
}

fn push(net: &str, state: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "push",
        net,
        "--port",
        "1161",
        "--timeout",
        "500",
        "--state-dir",
        state.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    dca(&args)
}

fn count(db: &Path, sql: &str) -> i64 {
    Connection::open(db)
        .unwrap()
        .query_row(sql, [], |r| r.get(0))
        .unwrap()
}

/// The corpus printers as the agent's model sees them.
fn corpus_printers() -> Vec<Snapshot> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(corpus().join("librenms/snmprec")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_none_or(|x| x != "snmprec") {
            continue;
        }
        let rec = snmprec::parse(&std::fs::read_to_string(&p).unwrap());
        let s = rec.snapshot();
        if s.is_printer() {
            out.push(s);
        }
    }
    out
}

/// curl, as an independent HTTPS client trusting the cloud's certificate.
fn curl(cloud: &Cloud, args: &[&str]) -> (u16, Vec<u8>) {
    let cert = cloud.db.parent().unwrap().join("dca-cloud-cert.pem");
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "--cacert"])
        .arg(cert)
        .args(["-o", "-", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl is needed by this test (ci/setup.sh installs it)");
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut body = out.stdout;
    let split = body.iter().rposition(|b| *b == b'\n').unwrap();
    let status = std::str::from_utf8(&body[split + 1..])
        .unwrap()
        .parse()
        .unwrap();
    body.truncate(split);
    (status, body)
}

/// GET an API path with an agent's credentials.
fn api(cloud: &Cloud, state: &Path, path: &str) -> (u16, Vec<u8>) {
    curl(
        cloud,
        &["-H", &agent_auth(state), &format!("{}{path}", cloud.url)],
    )
}

/// tinyproxy on `address:port`, logging every tunnel, with `extra` settings.
fn start_proxy(dir: &Path, address: &str, port: u16, extra: &str) -> Proc {
    let conf = dir.join(format!("tinyproxy-{port}.conf"));
    std::fs::write(
        &conf,
        format!(
            "Port {port}\nListen {address}\nTimeout 30\nAllow 127.0.0.0/8\nMaxClients 8\nLogLevel Info\nUser nobody\nGroup nogroup\n{extra}"
        ),
    )
    .unwrap();
    Proc::start(
        Command::new("tinyproxy").arg("-d").arg("-c").arg(&conf),
        "Accepting connections",
    )
    .0
}

fn agent_id(state: &Path) -> String {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("agent.json")).unwrap()).unwrap();
    v["agent_id"].as_str().unwrap().to_string()
}

/// `dca-cloud task create`, as the operator queues a task.
fn create_task(cloud: &Cloud, agent: &str, kind: &str, arg: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dca-cloud"))
        .args([
            "task", "create", "--agent", agent, "--kind", kind, "--arg", arg, "--db",
        ])
        .arg(&cloud.db)
        .output()
        .unwrap()
}

fn agent_auth(state: &Path) -> String {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("agent.json")).unwrap()).unwrap();
    format!(
        "Authorization: Bearer {}:{}",
        v["agent_id"].as_str().unwrap(),
        v["secret"].as_str().unwrap()
    )
}

/// One test's site: its directory, a cloud, the corpus printers on `net`,
/// and an agent of customer acme enrolled in `dir/agent`.
struct Site {
    dir: PathBuf,
    cloud: Cloud,
    _sim: Proc,
    state: PathBuf,
}

fn site(name: &str, listen: &str, net: &str) -> Site {
    let dir = temp_dir(name);
    let cloud = start_cloud(&dir, listen);
    let sim = start_sim(net);
    let state = dir.join("agent");
    enroll(&cloud, "acme", &state);
    Site {
        dir,
        cloud,
        _sim: sim,
        state,
    }
}

#[test]
fn corpus_printers_reach_the_database_whole() {
    let Site {
        dir: _,
        cloud,
        _sim,
        state,
    } = site("whole", "127.45.0.1:0", "127.45.1.0/24");
    assert!(push("127.45.1.0/24", &state, &[]).status.success());

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
    assert!(push("127.45.1.0/24", &state, &[]).status.success());
    assert_eq!(
        count(&cloud.db, "SELECT COUNT(*) FROM readings"),
        2 * readings
    );
    assert_eq!(
        count(&cloud.db, "SELECT COUNT(*) FROM devices"),
        printers.len() as i64
    );
    assert_eq!(count(&cloud.db, "SELECT last_seq FROM agents"), 2);

    // The web page, for the operator, shows every device and supply bars.
    let (status, page) = curl(
        &cloud,
        &[
            "-u",
            &format!("operator:{}", cloud.operator),
            &format!("{}/", cloud.url),
        ],
    );
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
    let (status, _) = curl(&cloud, &[&format!("{}/", cloud.url)]);
    assert_eq!(status, 401, "the page is not public");
    let (status, json) = api(&cloud, &state, "/api/devices");
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
    let listen = "127.46.0.1:18443";
    let Site {
        dir,
        cloud,
        _sim,
        state,
    } = site("replay", listen, "127.46.1.0/24");
    let pin = cloud.fingerprint.clone();
    drop(cloud);

    // The cloud is down: the readings wait in the outbox.
    let out = push("127.46.1.0/24", &state, &[]);
    assert_eq!(out.status.code(), Some(3), "unreachable cloud");
    let outbox: Vec<PathBuf> = std::fs::read_dir(state.join("outbox"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(outbox.len(), 1);
    let batch1 = std::fs::read(&outbox[0]).unwrap();

    // Back up (same database, same certificate): the waiting batch goes first.
    let cloud = start_cloud(&dir, listen);
    assert_eq!(
        cloud.fingerprint, pin,
        "the self-signed certificate is kept across restarts"
    );
    assert!(push("127.46.1.0/24", &state, &[]).status.success());
    assert_eq!(std::fs::read_dir(state.join("outbox")).unwrap().count(), 0);
    assert_eq!(count(&cloud.db, "SELECT COUNT(*) FROM batches"), 2);
    let readings = count(&cloud.db, "SELECT COUNT(*) FROM readings");
    let per_batch = count(&cloud.db, "SELECT COUNT(*) FROM readings WHERE seq = 1");
    assert_eq!(readings, 2 * per_batch);

    // Batch 1 again, as after a lost ack: acknowledged, stored once.
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
    let auth = agent_auth(&state);
    let (status, _) = post(&auth);
    assert_eq!(status, 200, "a replay is acknowledged");
    assert_eq!(
        count(&cloud.db, "SELECT COUNT(*) FROM readings"),
        readings,
        "and not stored again"
    );
    assert_eq!(
        count(
            &cloud.db,
            "SELECT COUNT(*) FROM audit WHERE event = 'replay'"
        ),
        1
    );

    // The same sequence number with other content is a conflict.
    let mut other = batch1.clone();
    let last = other.len() - 1;
    other[last] ^= 0x01;
    std::fs::write(&body, &other).unwrap();
    let (status, _) = post(&auth);
    assert!(
        status == 409 || status == 400,
        "altered replay answered {status}"
    );
    assert_eq!(count(&cloud.db, "SELECT COUNT(*) FROM readings"), readings);

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
    let Site {
        dir,
        cloud,
        _sim,
        state: a,
    } = site("auth", "127.47.0.1:0", "127.47.1.0/24");
    let b = dir.join("b");
    enroll(&cloud, "globex", &b);
    assert!(push("127.47.1.0/24", &a, &[]).status.success());
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
    let (status, json) = api(&cloud, &b, "/api/devices");
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
    let (status, _) = api(&cloud, &b, &format!("/api/devices/{acme_device}/readings"));
    assert_eq!(status, 404);
    let (status, _) = api(&cloud, &a, &format!("/api/devices/{acme_device}/readings"));
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
    let out = push("127.47.1.0/24", &a, &[]);
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
    assert_eq!(push("127.47.1.0/24", &a, &[]).status.code(), Some(4));

    // Tokens are one-time; unknown ones are refused.
    let t = token(&cloud.db, "acme");
    let c = dir.join("c");
    let args = |t: &str, pin: &str, state: &Path| {
        dca(&[
            "enroll",
            "--cloud",
            &cloud.url,
            "--token",
            t,
            "--pin",
            pin,
            "--state-dir",
            state.to_str().unwrap(),
            "--force",
        ])
    };
    assert!(args(&t, &cloud.fingerprint, &c).status.success());
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
    assert_eq!(out.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not the pinned"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!d.join("agent.json").exists());
    // The certificate as a CA file works where a pin would.
    let e = dir.join("e");
    let cert = dir.join("dca-cloud-cert.pem");
    let out = dca(&[
        "enroll",
        "--cloud",
        &cloud.url,
        "--token",
        &token(&cloud.db, "acme"),
        "--ca",
        cert.to_str().unwrap(),
        "--state-dir",
        e.to_str().unwrap(),
    ]);
    assert!(out.status.success());
}

#[test]
fn tasks_run_and_readings_pass_an_http_proxy() {
    let Site {
        dir,
        cloud,
        _sim,
        state,
    } = site("proxy", "127.48.0.1:0", "127.48.1.0/24");
    let proxy = start_proxy(&dir, "127.48.0.2", 18888, "");
    let id = agent_id(&state);
    for (kind, arg) in [
        ("rescan", ""),
        ("set_log_level", "debug"),
        ("set_targets", "127.48.1.0/24"),
        ("reboot", ""),
    ] {
        let out = create_task(&cloud, &id, kind, arg);
        assert_eq!(out.status.success(), kind != "reboot", "{kind}: {out:?}");
    }
    // Through the proxy, from HTTPS_PROXY.
    let out = Command::new(sibling("dca"))
        .args([
            "push",
            "127.48.1.0/24",
            "--port",
            "1161",
            "--timeout",
            "500",
            "--state-dir",
            state.to_str().unwrap(),
        ])
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
        dca(&[
            "push",
            "--port",
            "1161",
            "--timeout",
            "500",
            "--state-dir",
            state.to_str().unwrap(),
            "--proxy",
            "http://127.48.0.2:18888"
        ])
        .status
        .success()
    );
    assert_eq!(count(&cloud.db, "SELECT COUNT(*) FROM batches"), 3);
    // A proxy that wants credentials: refused without them (the readings
    // wait in the outbox), tunnelled with them (and the waiting batch goes
    // first).
    let _auth_proxy = start_proxy(&dir, "127.48.0.3", 18889, "BasicAuth dca s3cret\n");
    let s = state.to_str().unwrap();
    let common = [
        "push",
        "--port",
        "1161",
        "--timeout",
        "500",
        "--state-dir",
        s,
        "--proxy",
    ];
    let out = dca(&[&common[..], &["http://127.48.0.3:18889"]].concat());
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("407"));
    assert_eq!(count(&cloud.db, "SELECT COUNT(*) FROM batches"), 3);
    let out = dca(&[&common[..], &["http://dca:s3cret@127.48.0.3:18889"]].concat());
    assert!(out.status.success());
    assert_eq!(count(&cloud.db, "SELECT COUNT(*) FROM batches"), 5);
}

/// Waits (bounded) for a line of `proc`'s output containing `what`.
fn wait_for(proc: &Proc, what: &str) -> String {
    let deadline = std::time::Instant::now() + STARTUP;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match proc.lines.recv_timeout(left) {
            Ok(l) if l.contains(what) => return l,
            Ok(_) => {}
            Err(e) => panic!("no line with {what:?} within {STARTUP:?}: {e}"),
        }
    }
}

#[test]
fn the_service_collects_on_schedule_takes_tasks_and_stops_cleanly() {
    let Site {
        dir: _,
        cloud,
        _sim,
        state,
    } = site("service", "127.49.0.1:0", "127.49.1.0/24");
    let (service, _) = Proc::start(
        Command::new(sibling("dca"))
            .args(["run", "127.49.1.0/24", "--port", "1161", "--timeout", "500"])
            .args(["--interval", "1", "--task-interval", "1", "--state-dir"])
            .arg(&state)
            .env_remove("HTTPS_PROXY")
            .env_remove("https_proxy"),
        "dca run: started",
    );
    // Two collections, each delivered.
    wait_for(&service, "batches delivered");
    wait_for(&service, "batches delivered");
    assert!(count(&cloud.db, "SELECT COUNT(*) FROM batches") >= 2);
    // A task queued while it runs is taken at the next call.
    let id = agent_id(&state);
    assert!(
        create_task(&cloud, &id, "set_log_level", "debug")
            .status
            .success()
    );
    wait_for(&service, "set_log_level done");
    // SIGTERM stops it between rounds, with success.
    let pid = service.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    wait_for(&service, "dca run: stopped");
    let mut service = service;
    let status = service.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert_eq!(
        count(&cloud.db, "SELECT COUNT(*) FROM tasks WHERE ok = 1"),
        1
    );
}
