//! What the end-to-end tests share: starting the real programs (`dca-sim
//! serve` on the corpus, `dca-cloud serve` with its self-signed certificate,
//! `dca`, curl, tinyproxy), waiting on their output with deadlines, and
//! reading the cloud's database and the agent's journal.
//!
//! Every peer runs on its own loopback addresses; every wait is bounded;
//! every process started is killed when its handle is dropped.

// Each test file uses its own part of this module.
#![allow(dead_code)]

use dca_core::printer::Snapshot;
use dca_core::snmprec;
use dca_core::sync::batch::{BatchId, parse_record};
use rusqlite::Connection;
use std::cell::RefCell;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const STARTUP: Duration = Duration::from_secs(60);

pub fn corpus() -> PathBuf {
    std::env::var_os("DCA_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus"))
}

/// Whether the peer programs `test` needs are on `PATH`. A missing one skips
/// the test, saying so, except under `CI=true`, where it fails it.
pub fn peers(test: &str, programs: &[&str]) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let missing: Vec<&str> = programs
        .iter()
        .copied()
        .filter(|p| !std::env::split_paths(&path).any(|dir| dir.join(p).is_file()))
        .collect();
    if missing.is_empty() {
        return true;
    }
    let what = format!(
        "{test} needs {} (install it with: bash ci/setup.sh)",
        missing.join(" and ")
    );
    assert!(!std::env::var("CI").is_ok_and(|v| v == "true"), "{what}");
    eprintln!("skipped: {what}");
    false
}

/// Another package's binary, which `cargo test --workspace` builds beside
/// this test's.
pub fn sibling(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().and_then(Path::parent).unwrap().join(name);
    assert!(
        path.exists(),
        "{} is missing: run the workspace's tests (cargo test --workspace)",
        path.display()
    );
    path
}

pub fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("dca-e2e-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A child process killed when the test ends, however it ends.
pub struct Proc {
    pub child: Child,
    pub lines: mpsc::Receiver<String>,
    /// Lines read while waiting for others, for the message of a failed wait.
    seen: RefCell<Vec<String>>,
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
    pub fn start(cmd: &mut Command, ready: &str) -> (Proc, Vec<String>) {
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
                    let proc = Proc {
                        child,
                        lines: rx,
                        seen: RefCell::new(Vec::new()),
                    };
                    return (proc, seen);
                }
                Ok(l) => seen.push(l),
                Err(e) => panic!("{cmd:?} did not print {ready:?} ({e}); it printed {seen:#?}"),
            }
        }
    }

    /// Everything printed so far.
    pub fn drain(&self) -> Vec<String> {
        self.lines.try_iter().collect()
    }

    /// Waits up to `within` for a line containing `what` and returns it; the
    /// lines before it are passed over (and shown if none comes).
    pub fn wait_within(&self, what: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.contains(what) => {
                    self.seen.borrow_mut().push(l.clone());
                    return l;
                }
                Ok(l) => {
                    eprintln!("  | {l}");
                    self.seen.borrow_mut().push(l);
                }
                Err(e) => panic!(
                    "no line with {what:?} within {within:?} ({e}); the process printed {:#?}",
                    self.seen.borrow()
                ),
            }
        }
    }

    /// Watches the process for `d`: it must not exit meanwhile (what it
    /// prints is kept). Its status is polled between lines, not slept on.
    pub fn stays_up(&mut self, d: Duration) {
        let deadline = Instant::now() + d;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "the process exited ({status}); it printed {:#?}",
                    self.seen.borrow()
                );
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            match self
                .lines
                .recv_timeout(left.min(Duration::from_millis(200)))
            {
                Ok(l) => {
                    eprintln!("  | {l}");
                    self.seen.borrow_mut().push(l);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                // Both streams closed: the process is ending; try_wait says.
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().unwrap();
                    panic!(
                        "the process exited ({status}); it printed {:#?}",
                        self.seen.borrow()
                    );
                }
            }
        }
    }

    /// SIGTERM, then the exit status (bounded: the process must say it
    /// stopped within `STARTUP`).
    pub fn terminate(self, stopped: &str) -> ExitStatus {
        self.terminate_saying(stopped).0
    }

    /// [`Proc::terminate`], with the line that said it stopped.
    pub fn terminate_saying(mut self, stopped: &str) -> (ExitStatus, String) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let line = self.wait_within(stopped, STARTUP);
        (self.child.wait().unwrap(), line)
    }
}

/// Waits (bounded) for a line of `proc`'s output containing `what`.
pub fn wait_for(proc: &Proc, what: &str) -> String {
    proc.wait_within(what, STARTUP)
}

pub struct Cloud {
    pub proc: Proc,
    pub url: String,
    pub db: PathBuf,
    pub fingerprint: String,
    pub banner: Vec<String>,
}

pub fn start_cloud(dir: &Path, listen: &str) -> Cloud {
    start_cloud_with(dir, listen, &[])
}

/// [`start_cloud`] with more `dca-cloud serve` options.
pub fn start_cloud_with(dir: &Path, listen: &str, extra: &[&str]) -> Cloud {
    let db = dir.join("cloud.db");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dca-cloud"));
    cmd.args(["serve", "--listen", listen, "--db"])
        .arg(&db)
        .args(extra);
    let (proc, banner) = Proc::start(&mut cmd, "listening on https://");
    let line = banner.last().unwrap().clone();
    let find = |key: &str| {
        banner
            .iter()
            .find_map(|l| l.split_once(key).map(|(_, v)| v.trim().to_string()))
            .unwrap_or_else(|| panic!("no {key:?} in {banner:?}"))
    };
    let fingerprint = find("certificate sha256");
    let url = line
        .split_once("listening on ")
        .unwrap()
        .1
        .trim()
        .to_string();
    Cloud {
        proc,
        url,
        db,
        fingerprint,
        banner,
    }
}

pub fn token(db: &Path, customer: &str) -> String {
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

pub fn start_sim(bind: &str) -> Proc {
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

/// Prints what a finished `dca` said, for the test's log.
pub fn show(what: &str, out: &Output) {
    eprintln!(
        "{what}: {:?}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn dca(args: &[&str]) -> Output {
    let out = Command::new(sibling("dca"))
        .args(args)
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .output()
        .unwrap();
    show(&format!("dca {args:?}"), &out);
    out
}

/// `dca enroll` at `cloud` with token `t`, trusting the cloud by `trust`
/// (`["--pin", fingerprint]` or `["--ca", file]`), with `extra`.
pub fn enroll_with(
    cloud: &Cloud,
    t: &str,
    trust: [&str; 2],
    state: &Path,
    extra: &[&str],
) -> Output {
    let mut args = vec![
        "enroll",
        "--cloud",
        &cloud.url,
        "--token",
        t,
        trust[0],
        trust[1],
        "--state-dir",
        state.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    dca(&args)
}

pub fn enroll(cloud: &Cloud, customer: &str, state: &Path) {
    let t = token(&cloud.db, customer);
    let out = enroll_with(cloud, &t, ["--pin", &cloud.fingerprint], state, &[]);
    assert!(out.status.success());
}

/// The arguments of `dca push` to `targets` (none: the ones the cloud set)
/// on the corpus port, with `extra`.
pub fn push_args<'a>(targets: &[&'a str], state: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["push"];
    args.extend_from_slice(targets);
    args.extend_from_slice(&[
        "--port",
        "1161",
        "--timeout",
        "500",
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    args.extend_from_slice(extra);
    args
}

pub fn push(net: &str, state: &Path, extra: &[&str]) -> Output {
    dca(&push_args(&[net], state, extra))
}

/// `dca push NET`, which must exit 0 (saying why not if it does not).
pub fn push_ok(net: &str, state: &Path) -> Output {
    let out = push(net, state, &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn count(db: &Path, sql: &str) -> i64 {
    Connection::open(db)
        .unwrap()
        .query_row(sql, [], |r| r.get(0))
        .unwrap()
}

/// The corpus printers as the agent's model sees them.
pub fn corpus_printers() -> Vec<Snapshot> {
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

/// The counter rows (`readings` table) one collection of the corpus
/// printers stores.
pub fn counters_per_collection() -> i64 {
    corpus_printers()
        .iter()
        .map(|s| s.counters.len() as i64)
        .sum()
}

/// curl, as an independent HTTPS client trusting the cloud's certificate.
pub fn curl(cloud: &Cloud, args: &[&str]) -> (u16, Vec<u8>) {
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

/// An operator as `dca-cloud operator add` shows it, once.
pub struct NewOperator {
    pub name: String,
    pub password: String,
    /// The authenticator's secret, from the otpauth URI.
    pub totp: dca_cloud::totp::Totp,
}

/// Adds an operator of `dealer` with `role` (a new name each time).
pub fn add_operator(cloud: &Cloud, role: &str, dealer: &str) -> NewOperator {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let name = format!("op{}", NEXT.fetch_add(1, Ordering::Relaxed));
    let out = Command::new(env!("CARGO_BIN_EXE_dca-cloud"))
        .args([
            "operator", "add", &name, "--role", role, "--dealer", dealer, "--db",
        ])
        .arg(&cloud.db)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let shown = String::from_utf8(out.stdout).unwrap();
    let password = shown
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .unwrap_or_else(|| panic!("no password in {shown}"))
        .trim()
        .to_string();
    let secret = shown
        .split_once("secret=")
        .and_then(|(_, rest)| rest.split('&').next())
        .unwrap_or_else(|| panic!("no otpauth secret in {shown}"));
    let totp = dca_cloud::totp::Totp::from_base32(secret).unwrap();
    NewOperator {
        name,
        password,
        totp,
    }
}

/// A new operator of `dealer` with `role`, added with `dca-cloud operator
/// add` and signed in as a browser does it (the form, then the form posted
/// with its token, name, password and the authenticator's code), by curl:
/// the `Cookie` header line of its session. One account per sign-in: a
/// code is taken once, so a second sign-in within its 30 s would fail.
pub fn sign_in(cloud: &Cloud, role: &str, dealer: &str) -> String {
    let NewOperator {
        name,
        password,
        totp,
    } = add_operator(cloud, role, dealer);
    let url = format!("{}/signin", cloud.url);
    let (status, form) = curl(cloud, &["-i", &url]);
    let form = String::from_utf8(form).unwrap();
    assert_eq!(status, 200, "{form}");
    let token = set_cookie(&form, "__Host-dca_signin");
    assert!(
        form.contains(&format!("name=csrf value=\"{token}\"")),
        "{form}"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let fields = [
        format!("csrf={token}"),
        format!("name={name}"),
        format!("password={password}"),
        format!("code={}", totp.code_at(now)),
    ];
    let cookie = format!("Cookie: __Host-dca_signin={token}");
    let mut args = vec!["-i", "-H", cookie.as_str()];
    for f in &fields {
        args.extend(["--data-urlencode", f.as_str()]);
    }
    args.push(&url);
    let (status, answer) = curl(cloud, &args);
    let answer = String::from_utf8(answer).unwrap();
    assert_eq!(status, 303, "{answer}");
    format!(
        "Cookie: __Host-dca_session={}",
        set_cookie(&answer, "__Host-dca_session")
    )
}

/// The value a `Set-Cookie` header of `answer` (head and body, as `curl
/// -i` shows it) gives cookie `name`.
fn set_cookie(answer: &str, name: &str) -> String {
    answer
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .find_map(|l| {
            let (header, value) = l.split_once(':')?;
            let value = value.trim().strip_prefix(&format!("{name}="))?;
            header
                .eq_ignore_ascii_case("set-cookie")
                .then(|| value.split(';').next().unwrap_or("").to_string())
        })
        .unwrap_or_else(|| panic!("no Set-Cookie of {name} in {answer}"))
}

/// GET an API path with an agent's credentials.
pub fn api(cloud: &Cloud, state: &Path, path: &str) -> (u16, Vec<u8>) {
    curl(
        cloud,
        &["-H", &agent_auth(state), &format!("{}{path}", cloud.url)],
    )
}

/// tinyproxy on `address:port`, logging every tunnel, with `extra` settings.
pub fn start_proxy(dir: &Path, address: &str, port: u16, extra: &str) -> Proc {
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

pub fn agent_id(state: &Path) -> String {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("agent.json")).unwrap()).unwrap();
    v["agent_id"].as_str().unwrap().to_string()
}

/// `dca-cloud task create`, as the operator queues a task.
pub fn create_task(cloud: &Cloud, agent: &str, kind: &str, arg: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dca-cloud"))
        .args([
            "task", "create", "--agent", agent, "--kind", kind, "--arg", arg, "--db",
        ])
        .arg(&cloud.db)
        .output()
        .unwrap()
}

pub fn agent_auth(state: &Path) -> String {
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
pub struct Site {
    pub dir: PathBuf,
    pub cloud: Cloud,
    pub sim: Proc,
    pub state: PathBuf,
}

pub fn site(name: &str, listen: &str, net: &str) -> Site {
    let dir = temp_dir(name);
    let state = dir.join("agent");
    site_in(dir, listen, net, state)
}

/// A site in `dir` whose agent's state directory is `state`.
pub fn site_in(dir: PathBuf, listen: &str, net: &str, state: PathBuf) -> Site {
    let cloud = start_cloud(&dir, listen);
    let sim = start_sim(net);
    enroll(&cloud, "acme", &state);
    Site {
        dir,
        cloud,
        sim,
        state,
    }
}

/// A site whose agent has delivered one collection (`dca push NET`).
pub fn delivered_site(name: &str, listen: &str, net: &str) -> Site {
    let site = site(name, listen, net);
    assert!(push(net, &site.state, &[]).status.success());
    site
}

/// `dca run` on `state` collecting from `targets` on the corpus port every
/// `interval` seconds and asking for tasks every `task_interval`, once it
/// has said it started.
pub fn start_run(state: &Path, targets: &[&str], interval: u64, task_interval: u64) -> Proc {
    Proc::start(
        Command::new(sibling("dca"))
            .arg("run")
            .args(targets)
            .args(["--port", "1161", "--timeout", "500", "--interval"])
            .arg(interval.to_string())
            .arg("--task-interval")
            .arg(task_interval.to_string())
            .arg("--state-dir")
            .arg(state)
            .env_remove("HTTPS_PROXY")
            .env_remove("https_proxy"),
        "dca run: started",
    )
    .0
}

/// Stops a `dca run` (SIGTERM), which must exit with success.
pub fn stop_run(service: Proc) {
    let status = service.terminate("dca run: stopped");
    assert!(status.success(), "{status:?}");
}

/// One record of an agent's journal (`STATE/journal/<pos>-<digest>-<made>.cbor`).
#[derive(Debug, Clone)]
pub struct Record {
    pub pos: u64,
    pub digest: [u8; 32],
    pub path: PathBuf,
    /// The CBOR readings array.
    pub bytes: Vec<u8>,
}

impl Record {
    /// How many readings the record holds.
    pub fn readings(&self) -> u64 {
        parse_record(&self.bytes).unwrap().len()
    }
}

/// The journal's records, oldest first; each is checked against the digest
/// its name carries.
pub fn journal(state: &Path) -> Vec<Record> {
    let mut out = Vec::new();
    let Ok(listing) = std::fs::read_dir(state.join("journal")) else {
        return out;
    };
    for e in listing {
        let path = e.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".cbor").filter(|n| !n.starts_with('.')) else {
            continue;
        };
        let mut parts = stem.split('-');
        let pos: u64 = parts.next().unwrap().parse().unwrap();
        let digest: [u8; 32] = hex::decode(parts.next().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(
            BatchId::of(&parse_record(&bytes).unwrap()).0,
            digest,
            "{name} holds other readings than its name says"
        );
        out.push(Record {
            pos,
            digest,
            path,
            bytes,
        });
    }
    out.sort_by_key(|r| r.pos);
    out
}

/// Checks that the cloud holds every collection `state`'s journal holds
/// (`collections` of them, each of every corpus printer) exactly once: one
/// batch per digest with all its readings, the counter rows of every
/// collection, and no counter row twice.
pub fn every_collection_once(db: &Path, state: &Path, collections: usize) {
    let records = journal(state);
    assert_eq!(
        records.len(),
        collections,
        "the journal keeps every collection (retention): {records:#?}"
    );
    let printers = corpus_printers().len() as u64;
    let conn = Connection::open(db).unwrap();
    for r in &records {
        assert_eq!(r.readings(), printers, "collection at position {}", r.pos);
        let rows: Vec<(i64, i64)> = conn
            .prepare("SELECT id, readings FROM batches WHERE digest = ?1")
            .unwrap()
            .query_map([&r.digest[..]], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            rows.len(),
            1,
            "the batch at journal position {} is held once: {rows:?}",
            r.pos
        );
        assert_eq!(rows[0].1, printers as i64);
        let devices: i64 = conn
            .query_row(
                "SELECT COUNT(DISTINCT device_id) FROM readings WHERE batch_id = ?1",
                [rows[0].0],
                |row| row.get(0),
            )
            .unwrap();
        let with_counters = corpus_printers()
            .iter()
            .filter(|s| !s.counters.is_empty())
            .count() as i64;
        assert_eq!(devices, with_counters, "devices of position {}", r.pos);
    }
    assert_eq!(
        count(db, "SELECT COUNT(*) FROM batches"),
        collections as i64
    );
    assert_eq!(
        count(db, "SELECT COUNT(*) FROM readings"),
        collections as i64 * counters_per_collection(),
        "every counter of every collection, once"
    );
    assert_eq!(
        count(
            db,
            "SELECT COUNT(*) FROM (SELECT device_id, counter, boot_id, mono_ms, COUNT(*) AS n \
             FROM readings GROUP BY device_id, counter, boot_id, mono_ms HAVING n > 1)"
        ),
        0,
        "no counter row is stored twice"
    );
}

/// The number after `key` in `line` ("journal position 3" -> 3).
pub fn number_after(line: &str, key: &str) -> u64 {
    let rest = line
        .split_once(key)
        .unwrap_or_else(|| panic!("no {key:?} in {line:?}"))
        .1
        .trim_start();
    rest.split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|e| panic!("no number after {key:?} in {line:?}: {e}"))
}

/// `dca-sim serve` with `n` generated printers of `seed` on `bind`, each
/// with its web pages on TCP port `web_port`.
pub fn start_web_sim(bind: &str, n: usize, seed: u64, web_port: u16) -> Proc {
    start_web_sim_with(bind, n, seed, web_port, &[])
}

/// [`start_web_sim`] with more `dca-sim serve` options.
pub fn start_web_sim_with(bind: &str, n: usize, seed: u64, web_port: u16, more: &[&str]) -> Proc {
    Proc::start(
        Command::new(sibling("dca-sim"))
            .args([
                "serve",
                "--generate",
                &n.to_string(),
                "--seed",
                &seed.to_string(),
                "--bind",
                bind,
                "--port",
                "1161",
                "--web-port",
                &web_port.to_string(),
                // Printers serve their pages over TLS too, on a port of its own.
                "--web-tls-port",
                "8443",
            ])
            .args(more),
        "serving",
    )
    .0
}

/// What an emulated fleet's web servers were asked, as it says when it
/// stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebCounts {
    pub requests: u64,
    pub uploads: u64,
    pub downloads: u64,
}

/// Stops a `dca-sim serve` and returns its web counts.
pub fn stop_web_sim(sim: Proc) -> WebCounts {
    let (_, line) = sim.terminate_saying("dca-sim: stopped;");
    let web = line.split_once("web: ").map_or("", |(_, w)| w);
    let n = |what: &str| -> u64 {
        web.split(", ")
            .find_map(|part| part.strip_suffix(what))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {what:?} in {line:?}"))
    };
    WebCounts {
        requests: n(" requests"),
        uploads: n(" firmware uploads"),
        downloads: n(" log downloads"),
    }
}

/// A site whose agent runs as a service (push channel and relay) against
/// `printers` generated printers with web pages on port 8080.
pub struct WebSite {
    pub cloud: Cloud,
    pub sim: Option<Proc>,
    pub service: Option<Proc>,
    pub state: PathBuf,
    pub net: String,
}

impl WebSite {
    /// The site of test `name`: the cloud on 127.65.`n`.1, the printers on
    /// 127.65.(100 + `n`).0/30.
    pub fn start(name: &str, n: u8) -> WebSite {
        WebSite::start_with(name, n, &[])
    }

    /// [`WebSite::start`] with more `dca-cloud serve` options.
    pub fn start_with(name: &str, n: u8, cloud_options: &[&str]) -> WebSite {
        let dir = temp_dir(name);
        let cloud = start_cloud_with(&dir, &format!("127.65.{n}.1:0"), cloud_options);
        let net = format!("127.65.{}.0/30", 100 + n);
        let sim = start_web_sim(&net, 2, 1, 8080);
        let state = dir.join("agent");
        enroll(&cloud, "acme", &state);
        // Collections and task polls an hour apart: tasks come by the
        // push channel.
        let service = start_run(&state, &[&net], 3600, 3600);
        wait_for(&service, "batches delivered");
        WebSite {
            cloud,
            sim: Some(sim),
            service: Some(service),
            state,
            net,
        }
    }

    pub fn service(&self) -> &Proc {
        self.service.as_ref().unwrap()
    }

    /// The first device: its id, serial and address.
    pub fn device(&self) -> (i64, String, String) {
        rusqlite::Connection::open(&self.cloud.db)
            .unwrap()
            .query_row(
                "SELECT id, serial, address FROM devices ORDER BY id LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap()
    }

    /// Stops the printers; what their web servers were asked.
    pub fn printers_saw(&mut self) -> WebCounts {
        stop_web_sim(self.sim.take().unwrap())
    }
}

/// The page's form token (every signed-in page carries it).
pub fn csrf(page: &str) -> String {
    page.split_once("name=csrf value=\"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(v, _)| v.to_string())
        .unwrap_or_else(|| panic!("no form token in {page}"))
}

/// A header of `answer` (head and body, as `curl -i` shows it).
pub fn header<'a>(answer: &'a str, name: &str) -> Option<&'a str> {
    answer
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
}
