//! The shell around dca-core's sync session ([`Session`]): it owns the
//! transport (the [`Link`] over TCP, a proxy tunnel and TLS), the journal
//! ([`FileJournal`]), the clocks and the sweeps, and does what the session's
//! events say. Every rule of the protocol (hello, what to upload and when,
//! what an answer means, backoff, which tasks are valid) is the session's;
//! `dca push` and `dca run` differ only in how long they drive it.

use crate::agent_state::{AgentState, StateDir};
use crate::cloud_link::{Answer, CloudUrl, Link, LinkError, Proxy};
use crate::cloud_tls::{self, Trust};
use crate::journal::FileJournal;
use crate::scan_cmd::describe;
use crate::sweep::{self, SweepArgs, SweepError};
use crate::web_relay::{self, WebAccess};
use dca_core::printer::Snapshot;
use dca_core::sync::batch::{BatchWriter, Refused};
use dca_core::sync::reading;
use dca_core::sync::session::{Config, Event, Failure, Now, Session, UPLOAD_OVERHEAD};
use dca_core::sync::task::{LogLevel, Order};
use dca_core::time::Instant;
use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;

/// A batch is cut at this many bytes of readings...
pub const MAX_BATCH_BYTES: usize = 1 << 20;
/// ... or this many readings, whichever comes first: far below the cloud's
/// body limit.
pub const MAX_BATCH_READINGS: u64 = 500;
/// The cloud refuses bodies over 8 MiB; no request buffer needs more.
const CLOUD_BODY_LIMIT: usize = 8 << 20;

/// The agent version the session announces.
pub const AGENT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The trust an agent's state asks for.
pub fn trust_of(pins: &[String], ca: Option<&PathBuf>) -> Result<Trust, String> {
    match (pins, ca) {
        ([_, ..], _) => Ok(Trust::Pins(
            pins.iter()
                .map(|p| cloud_tls::parse_pin(p))
                .collect::<Result<_, _>>()?,
        )),
        ([], Some(ca)) => Ok(Trust::CaFile(ca.clone())),
        ([], None) => Ok(Trust::System),
    }
}

/// The proxy: `--proxy`, else `HTTPS_PROXY` (unless `NO_PROXY` exempts the cloud).
pub fn proxy_for(flag: Option<&str>, cloud: &CloudUrl) -> Result<Option<Proxy>, String> {
    match flag {
        Some(p) => Proxy::parse(p).map(Some),
        None => Proxy::from_env(cloud),
    }
}

/// Posts one request body and returns the answer: the [`Link`], or a
/// stand-in in tests.
pub trait Transport {
    /// `wait`: how long the cloud may hold the answer on purpose (a
    /// `listen`), on top of the network's time.
    fn exchange(
        &mut self,
        authorization: Option<&str>,
        body: &[u8],
        wait: Option<std::time::Duration>,
    ) -> Result<Answer, LinkError>;

    /// What cuts the connection from another thread, if it can be cut.
    fn interrupter(&self) -> Option<crate::cloud_link::Interrupter> {
        None
    }
}

impl Transport for Link {
    fn exchange(
        &mut self,
        authorization: Option<&str>,
        body: &[u8],
        wait: Option<std::time::Duration>,
    ) -> Result<Answer, LinkError> {
        self.set_wait(wait.unwrap_or_default());
        Link::exchange(self, authorization, body)
    }

    fn interrupter(&self) -> Option<crate::cloud_link::Interrupter> {
        Some(Link::interrupter(self))
    }
}

/// Random bytes from the system, or, where it has none to give, from the
/// time and the process id (enough for a boot id and jitter).
pub(crate) fn random<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    if getrandom::fill(&mut out).is_err() {
        use sha2::{Digest, Sha256};
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let seed = Sha256::new()
            .chain_update(t.to_le_bytes())
            .chain_update(std::process::id().to_le_bytes())
            .finalize();
        for (o, s) in out.iter_mut().zip(seed.iter().cycle()) {
            *o = *s;
        }
    }
    out
}

/// The session's clocks: milliseconds since this process started, and the
/// date.
#[derive(Debug)]
pub struct Clocks {
    start: std::time::Instant,
}

impl Default for Clocks {
    fn default() -> Self {
        Clocks::new()
    }
}

impl Clocks {
    pub fn new() -> Clocks {
        Clocks {
            start: std::time::Instant::now(),
        }
    }

    pub fn now(&self) -> Now {
        let wall_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()
            .and_then(|d| u64::try_from(d.as_millis()).ok());
        Now {
            at: Instant::from_millis(
                u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX),
            ),
            wall_ms,
        }
    }

    /// How long from now until `t`.
    pub fn until(&self, t: Instant) -> std::time::Duration {
        std::time::Duration::from_millis(t.saturating_since(self.now().at).millis())
    }
}

pub use crate::logging::Log;

/// What happened in this process, for the final account and exit code.
#[derive(Debug, Default)]
pub struct Tally {
    pub readings: u64,
    pub batches: u64,
    pub delivered: u64,
    pub stored: u64,
    pub quarantined: u64,
    /// `kind done` / `kind failed`, in order.
    pub tasks: Vec<String>,
    /// Local trouble: readings not safely journaled, settings not saved,
    /// readings left out of a batch.
    pub trouble: Vec<String>,
    /// Batches the disk refused, held in memory instead.
    pub not_durable: u64,
    /// Positions held in memory only and not yet delivered.
    pub in_memory: BTreeSet<u64>,
}

/// What a collection gathered: a line for a task result, one for the log.
#[derive(Debug, Clone)]
pub struct Collected {
    pub short: String,
    pub long: String,
}

/// How a round ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    RoundDone {
        uploaded: u32,
        stored: u64,
    },
    Failed(Failure),
    /// The server's certificate did not match the pins or the CA: not a
    /// network fault, and no retry will mend it by itself.
    Untrusted,
}

/// Why the agent could not start.
#[derive(Debug)]
pub enum SetupError {
    /// Not enrolled, or a bad configuration: exit 2.
    Usage(String),
    /// Local trouble (the state directory is locked or unusable): exit 1.
    Local(String),
}

/// What the last exchange came to, for the lines that report a failure in
/// full (the session's own detail is cut to a task result's length).
#[derive(Debug)]
enum Exchanged {
    Transport(String),
    /// TLS refused the server: the link's own words.
    Untrusted(String),
    Status(u16),
}

/// The agent: identity, journal, transport and session.
pub struct Agent {
    pub log: Log,
    dir: StateDir,
    pub state: AgentState,
    journal: FileJournal,
    transport: Box<dyn Transport>,
    pub session: Session,
    clocks: Clocks,
    /// The request buffer: the largest record plus the upload framing.
    request: Vec<u8>,
    /// Where a batch is built.
    batch: Vec<u8>,
    /// The command line's sweep settings (its targets win over the cloud's).
    sweep: SweepArgs,
    /// The configuration file's targets: the cloud's win over them.
    default_targets: Vec<String>,
    mask: bool,
    /// `dca push`: one round, then the process ends.
    one_shot: bool,
    /// How to re-enroll, said when the cloud refuses the credentials.
    reenroll: Option<String>,
    pub tally: Tally,
    last: Option<Exchanged>,
    /// Device Web Access, for an agent that runs on (`dca run`).
    web: Option<WebAccess>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("dir", &self.dir)
            .field("agent_id", &self.state.agent_id)
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

/// What the agent is told on the command line.
#[derive(Debug, Clone)]
pub struct Options {
    pub log_prefix: &'static str,
    pub sweep: SweepArgs,
    pub mask_addresses: bool,
    pub proxy: Option<String>,
    pub one_shot: bool,
    /// A configuration file's targets, used while the cloud has set none.
    pub default_targets: Vec<String>,
    /// A configuration file's pins and CA, which win over those kept at
    /// enrollment (a pin rotated by an edit).
    pub trust: Option<(Vec<String>, Option<PathBuf>)>,
    /// A configuration file's log level, until the cloud sets one.
    pub log_level: Option<LogLevel>,
    /// How to re-enroll when the agent runs from a configuration file (a
    /// service's files are not the admin's to write with `dca enroll`).
    pub reenroll: Option<String>,
    /// Web ports relayed to beside the defaults (Device Web Access).
    pub web_ports: Vec<u16>,
}

/// Makes connections to the cloud like the agent's own, each new: a Device
/// Web Access relay holds one on its thread, beside the agent's.
pub fn connector(
    url: CloudUrl,
    tls: std::sync::Arc<rustls::ClientConfig>,
    proxy: Option<Proxy>,
) -> web_relay::Connector {
    std::sync::Arc::new(move || Box::new(Link::new(url.clone(), tls.clone(), proxy.clone())))
}

impl Agent {
    /// Locks and opens the state directory, and readies the link to the
    /// cloud; `config` makes the session's settings from the agent's state.
    pub fn open(
        dir: StateDir,
        opts: Options,
        config: impl FnOnce(&AgentState) -> Config,
    ) -> Result<Agent, SetupError> {
        if !dir.is_enrolled() {
            return Err(SetupError::Usage(format!(
                "not enrolled: no {} (run `dca enroll` first)",
                dir.path().join("agent.json").display()
            )));
        }
        let journal =
            FileJournal::open(dir.path()).map_err(|e| SetupError::Local(e.to_string()))?;
        let state = dir.load().map_err(SetupError::Usage)?;
        let url = CloudUrl::parse(&state.cloud).map_err(SetupError::Usage)?;
        let trust = match &opts.trust {
            Some((pins, ca)) => trust_of(pins, ca.as_ref()),
            None => trust_of(&state.pins, state.ca.as_ref()),
        }
        .map_err(SetupError::Usage)?;
        let tls = cloud_tls::client_config(&trust).map_err(SetupError::Usage)?;
        let proxy = proxy_for(opts.proxy.as_deref(), &url).map_err(SetupError::Usage)?;
        let cfg = config(&state);
        // A one-shot push ends before a session would: it relays nothing
        // (and does not announce that it could).
        let web = (!opts.one_shot).then(|| {
            WebAccess::new(
                &opts.web_ports,
                connector(url.clone(), tls.clone(), proxy.clone()),
                web_relay::identity::over_snmp(opts.sweep.clone()),
            )
        });
        let mut agent = Agent::new(
            dir,
            state,
            journal,
            Box::new(Link::new(url, tls, proxy)),
            cfg,
            opts,
        );
        agent.web = web;
        Ok(agent)
    }

    pub fn new(
        dir: StateDir,
        state: AgentState,
        mut journal: FileJournal,
        transport: Box<dyn Transport>,
        cfg: Config,
        opts: Options,
    ) -> Agent {
        let mut log = Log::new(opts.log_prefix);
        if let Some(level) = state
            .log_level
            .as_deref()
            .and_then(LogLevel::parse)
            .or(opts.log_level)
        {
            log.level = level;
        }
        for notice in journal.take_notices() {
            log.warn(notice);
        }
        let clocks = Clocks::new();
        let session = Session::new(
            cfg,
            clocks.now().at,
            random::<16>(),
            u64::from_le_bytes(random::<8>()),
        );
        // Records journaled by an older version may be larger than a batch
        // is now; one beyond the cloud's limit is refused (and quarantined)
        // by the session either way.
        let largest = journal
            .largest_record()
            .clamp(MAX_BATCH_BYTES, CLOUD_BODY_LIMIT);
        Agent {
            log,
            dir,
            state,
            journal,
            transport,
            session,
            clocks,
            request: vec![0u8; largest + UPLOAD_OVERHEAD],
            batch: vec![0u8; MAX_BATCH_BYTES],
            sweep: opts.sweep,
            default_targets: opts.default_targets,
            mask: opts.mask_addresses,
            one_shot: opts.one_shot,
            reenroll: opts.reenroll,
            tally: Tally::default(),
            last: None,
            web: None,
        }
    }

    /// Relays Device Web Access sessions with `web` (`open` gives an agent
    /// that runs on its own).
    #[cfg(test)]
    pub fn set_web_access(&mut self, web: Option<WebAccess>) {
        self.web = web;
    }

    #[cfg(test)]
    pub fn web_access(&self) -> Option<&WebAccess> {
        self.web.as_ref()
    }

    pub fn now(&self) -> Now {
        self.clocks.now()
    }

    /// What cuts the cloud connection from another thread (a stop signal
    /// while the push channel is held).
    pub fn interrupter(&self) -> Option<crate::cloud_link::Interrupter> {
        self.transport.interrupter()
    }

    pub fn clocks(&self) -> &Clocks {
        &self.clocks
    }

    pub fn journal_dir(&self) -> PathBuf {
        self.journal.records_dir().to_path_buf()
    }

    /// The targets to collect from: the command line's, else the cloud's.
    pub fn targets(&self) -> Vec<String> {
        if !self.sweep.targets.is_empty() {
            self.sweep.targets.clone()
        } else if !self.state.targets.is_empty() {
            self.state.targets.clone()
        } else {
            self.default_targets.clone()
        }
    }

    /// Sweeps `targets`, puts each printer's reading into batches and
    /// journals each batch through the session. Returns the account.
    pub fn collect(&mut self, targets: &[String]) -> Result<Collected, SweepError> {
        let mut args = self.sweep.clone();
        args.targets = targets.to_vec();
        // A service leaves out a name that does not resolve today.
        args.skip_unresolved = !self.one_shot;
        let mut c = Collector {
            session: &mut self.session,
            journal: &mut self.journal,
            writer: BatchWriter::new(&mut self.batch, MAX_BATCH_READINGS),
            clocks: &self.clocks,
            mask: self.mask,
            readings: 0,
            positions: Vec::new(),
            warnings: Vec::new(),
            trouble: Vec::new(),
        };
        let progress = std::io::stderr().is_terminal();
        let summary = sweep::sweep(&args, progress, &mut |addr, snap, _| c.add(addr, snap));
        c.seal();
        let Collector {
            readings,
            positions,
            warnings,
            trouble,
            ..
        } = c;
        for w in warnings {
            self.log.warn(w);
        }
        for t in trouble {
            self.log.error(&t);
            self.tally.trouble.push(t);
        }
        self.tally.readings += readings;
        self.tally.batches += positions.len() as u64;
        let summary = summary?;
        for e in &summary.unresolved {
            self.log.warn(format!(
                "target {e}: left out of this collection, tried again at the next"
            ));
        }
        let batches = match (positions.first(), positions.last()) {
            (Some(a), Some(b)) if a == b => format!("1 batch (journal position {a})"),
            (Some(a), Some(b)) => {
                format!("{} batches (journal positions {a} to {b})", positions.len())
            }
            _ => "no batch".to_string(),
        };
        Ok(Collected {
            short: format!(
                "{readings} readings in {batches}; {} printers among {} addresses",
                summary.printers, summary.stats.probed
            ),
            long: format!("{readings} readings in {batches}; {}", describe(&summary)),
        })
    }

    /// Posts the session's next request, if it has one now, and hands it
    /// the answer; false when it has nothing to send.
    pub fn exchange(&mut self) -> bool {
        let now = self.clocks.now();
        let Some(n) = self
            .session
            .poll_request(now, &mut self.journal, &mut self.request)
        else {
            return false;
        };
        let authorization = self.state.authorization();
        let body = self.request.get(..n).unwrap_or(&[]);
        let wait = self
            .session
            .in_flight_wait()
            .map(|w| std::time::Duration::from_millis(w.millis()));
        match self.transport.exchange(Some(&authorization), body, wait) {
            Ok(answer) => {
                self.last = Some(Exchanged::Status(answer.status));
                self.session.handle_response(
                    self.clocks.now(),
                    &mut self.journal,
                    answer.status,
                    &answer.body,
                );
            }
            Err(e) => {
                let text = e.to_string();
                self.session
                    .handle_transport_error(self.clocks.now(), &text);
                self.last = Some(match e {
                    LinkError::Untrusted(_) => Exchanged::Untrusted(text),
                    _ => Exchanged::Transport(text),
                });
            }
        }
        true
    }

    /// Does what every waiting event says; returns how many there were and
    /// the first that ended a round.
    pub fn drain(&mut self) -> (usize, Option<Outcome>) {
        let mut n = 0;
        let mut end = None;
        while let Some(e) = self.session.poll_event() {
            n += 1;
            if let Some(o) = self.handle(e) {
                end.get_or_insert(o);
            }
        }
        self.last = None;
        (n, end)
    }

    /// Drives the session until a round ends (`None`: it stopped with
    /// nothing to send and no round ended, which it should never do).
    pub fn round(&mut self) -> Option<Outcome> {
        loop {
            if let (_, Some(end)) = self.drain() {
                return Some(end);
            }
            if !self.exchange() {
                match self.drain() {
                    (_, Some(end)) => return Some(end),
                    (0, None) => return None,
                    _ => {}
                }
            }
        }
    }

    fn kept(&self) -> String {
        let dir = self.journal.records_dir().display();
        match self.tally.in_memory.len() {
            0 => format!("readings kept in {dir}"),
            n => format!(
                "journaled readings kept in {dir}, but {n} batches the disk refused are held in                  memory only"
            ),
        }
    }

    fn handle(&mut self, e: Event) -> Option<Outcome> {
        match e {
            Event::Collect => {
                let targets = self.targets();
                if targets.is_empty() {
                    self.log.warn(
                        "nothing to collect: no targets given, and the cloud has set none (set_targets)",
                    );
                } else {
                    match self.collect(&targets) {
                        Ok(c) => self.log.info(format!("collected {}", c.long)),
                        Err(e) => self.log.error(format!(
                            "collection failed: {e}; trying again at the next collection"
                        )),
                    }
                }
            }
            Event::Task { id, order } => self.run_task(id, order),
            Event::TaskRefused { id, detail } => {
                self.log.warn(format!("task {id} failed: {detail}"));
                self.tally.tasks.push(format!("task {id} failed"));
            }
            Event::Delivered {
                pos,
                batch,
                stored,
                duplicate,
            } => {
                self.tally.delivered += 1;
                self.tally.stored += u64::from(stored);
                self.tally.in_memory.remove(&pos);
                if duplicate {
                    self.log.info(format!(
                        "batch {batch} (journal position {pos}) delivered: the cloud held it already"
                    ));
                } else {
                    self.log.info(format!(
                        "batch {batch} (journal position {pos}) delivered: {stored} readings stored"
                    ));
                }
            }
            Event::Resending { from } => self.log.warn(format!(
                "the cloud no longer holds batches it acknowledged (restored from a backup, or \
                 this agent was re-enrolled): sending them again from journal position {}",
                from.map_or_else(|| "1".to_string(), |p| p.to_string())
            )),
            Event::Quarantined {
                pos,
                batch,
                code,
                reason,
            } => {
                self.tally.quarantined += 1;
                self.tally.in_memory.remove(&pos);
                let why = if code == 0 {
                    format!("is unreadable in the journal ({reason})")
                } else {
                    format!("was refused by the cloud (HTTP {code}: {reason})")
                };
                let at = self
                    .journal
                    .quarantined_at(pos)
                    .map_or_else(|| "the quarantine".to_string(), |p| p.display().to_string());
                self.log.warn(format!(
                    "batch {batch} (journal position {pos}) {why}; moved aside to {at}, \
                     the reason beside it; delivery goes on with the next batch"
                ));
            }
            Event::NotDurable { pos } => {
                self.tally.not_durable += 1;
                self.tally.in_memory.insert(pos);
                let t = format!(
                    "batch at journal position {pos} is held in memory only: the disk refused it, \
                     so its readings are lost if this process ends before the cloud has them"
                );
                self.log.error(&t);
                self.tally.trouble.push(t);
            }
            Event::JournalFailed { detail } => {
                let t = format!("journal trouble: {detail}");
                self.log.error(&t);
                self.tally.trouble.push(t);
            }
            Event::Failed {
                failure,
                retry_in,
                detail,
            } => {
                let then = if self.one_shot {
                    format!("{} for the next push", self.kept())
                } else {
                    format!(
                        "{}; trying again in {} s",
                        self.kept(),
                        retry_in.millis() / 1000
                    )
                };
                let untrusted = matches!(self.last, Some(Exchanged::Untrusted(_)));
                let line = match (failure, &self.last) {
                    // The link's own words: "cloud unreachable: ...".
                    (Failure::Unreachable, Some(Exchanged::Transport(full))) => {
                        format!("{full}; {then}")
                    }
                    // Told apart from an outage: the admin has to act.
                    (_, Some(Exchanged::Untrusted(full))) => format!(
                        "TRUST FAILURE, not a network fault: {full}; if the cloud's key was \
                         replaced, add its pin to the configuration (someone in between \
                         looks the same); {then}"
                    ),
                    (Failure::Unreachable, Some(Exchanged::Status(_))) => {
                        format!("the cloud did not take the request ({detail}); {then}")
                    }
                    (Failure::Unreachable, None) => format!("the round failed: {detail}; {then}"),
                    (Failure::Credentials, last) => format!(
                        "the cloud refused this agent's credentials ({}{detail}): re-enroll it: \
                         {}; {then}",
                        status_of(last),
                        self.reenroll.as_deref().unwrap_or("`dca enroll --force`")
                    ),
                    (Failure::Version, last) => format!(
                        "the cloud speaks another protocol version ({}{detail}): upgrade this \
                         agent; {then}",
                        status_of(last)
                    ),
                };
                self.log.error(line);
                return Some(if untrusted {
                    Outcome::Untrusted
                } else {
                    Outcome::Failed(failure)
                });
            }
            Event::ChannelDown { detail } => self.log.warn(format!(
                "push channel down ({detail}): calling for tasks every {} s until the next \
                 round succeeds",
                self.session.config().task_poll_every.millis() / 1000
            )),
            Event::RoundDone { uploaded, stored } => {
                if !self.one_shot {
                    let line = format!("{uploaded} batches delivered, {stored} readings stored");
                    if uploaded > 0 {
                        self.log.info(line);
                    } else {
                        self.log.debug(line);
                    }
                }
                return Some(Outcome::RoundDone { uploaded, stored });
            }
        }
        None
    }

    fn run_task(&mut self, id: u64, order: Order) {
        let kind = order.kind().id();
        self.log.info(format!("task {id} {kind} started"));
        let (ok, detail) = match order {
            Order::Rescan => {
                let targets = self.targets();
                if targets.is_empty() {
                    (false, "no targets to collect from".to_string())
                } else {
                    self.collected(&targets)
                }
            }
            Order::PollDevice(ip) => self.collected(&[ip.to_string()]),
            Order::SetTargets(list) => {
                self.state.targets = list.split(',').map(str::to_string).collect();
                let note = if self.sweep.targets.is_empty() {
                    ""
                } else {
                    " (this process keeps the command line's)"
                };
                self.save(format!("targets set to {list}{note}"))
            }
            Order::SetSchedule(every) => {
                let s = every.millis() / 1000;
                self.state.schedule_s = Some(s);
                // The session has taken the new interval already when it
                // schedules collections (`dca run`).
                self.save(format!("collection every {s} s"))
            }
            Order::SetLogLevel(level) => {
                self.state.log_level = Some(level.id().to_string());
                self.log.level = level;
                self.save(format!("log level {}", level.id()))
            }
            Order::OpenWeb(opening) => match &self.web {
                Some(web) => match web.open(opening, self.state.authorization(), self.log) {
                    Ok(detail) => (true, detail),
                    Err(why) => (false, why),
                },
                None => (
                    false,
                    "this agent relays no web access (a one-shot push does not)".to_string(),
                ),
            },
        };
        self.session.task_done(id, ok, &detail);
        if ok {
            self.log.info(format!("task {id} {kind} done: {detail}"));
        } else {
            self.log.warn(format!("task {id} {kind} failed: {detail}"));
        }
        self.tally
            .tasks
            .push(format!("{kind} {}", if ok { "done" } else { "failed" }));
    }

    fn collected(&mut self, targets: &[String]) -> (bool, String) {
        match self.collect(targets) {
            // The task's result is short; the log has the rest.
            Ok(c) => {
                self.log.debug(format!("collected {}", c.long));
                (true, c.short)
            }
            Err(e) => (false, e.to_string()),
        }
    }

    /// Saves a setting from the cloud; a failure is the task's, and the
    /// user's to see.
    fn save(&mut self, what: String) -> (bool, String) {
        match self.dir.save(&self.state) {
            Ok(()) => (true, what),
            Err(e) => {
                self.tally
                    .trouble
                    .push(format!("a setting from the cloud was not saved: {e}"));
                (
                    false,
                    format!("{e}; the setting holds until this process ends"),
                )
            }
        }
    }
}

fn status_of(last: &Option<Exchanged>) -> String {
    match last {
        Some(Exchanged::Status(s)) => format!("HTTP {s}: "),
        _ => String::new(),
    }
}

/// Puts a sweep's printers into batches as they are found.
struct Collector<'a> {
    session: &'a mut Session,
    journal: &'a mut FileJournal,
    writer: BatchWriter<'a>,
    clocks: &'a Clocks,
    mask: bool,
    readings: u64,
    positions: Vec<u64>,
    warnings: Vec<String>,
    trouble: Vec<String>,
}

impl Collector<'_> {
    fn add(&mut self, addr: SocketAddr, s: &Snapshot) {
        let ip = addr.ip().to_string();
        let address = (!self.mask).then_some(ip.as_str());
        if reading::key_of(s, address).is_none() {
            self.warnings.push(format!(
                "the printer at {ip} offers no serial, MAC or address; the cloud cannot key it"
            ));
        }
        let at = self.session.clock(self.clocks.now());
        let mut pushed = self.writer.push(s, &at, address);
        if pushed == Err(Refused::Full) {
            self.seal();
            pushed = self.writer.push(s, &at, address);
        }
        match pushed {
            Ok(()) => self.readings += 1,
            Err(Refused::TooLarge { bytes }) => self.trouble.push(format!(
                "the reading of the printer at {ip} is {bytes} bytes, more than a batch holds: left out"
            )),
            Err(Refused::Full) => self.trouble.push(format!(
                "the reading of the printer at {ip} fits no batch: left out"
            )),
            Err(Refused::Encoding(e)) => self.trouble.push(format!(
                "the reading of the printer at {ip} cannot be encoded ({e}): left out"
            )),
        }
    }

    /// Journals the batch being built, if any.
    fn seal(&mut self) {
        if self.writer.is_empty() {
            return;
        }
        let (record, id) = self.writer.seal();
        match self
            .session
            .commit(self.journal, self.clocks.now(), record, &id)
        {
            Ok(appended) => self.positions.push(appended.pos),
            // The session has said why (JournalFailed); the journal keeps
            // what the disk refuses in memory, so this is not reached.
            Err(e) => self.trouble.push(format!(
                "batch {id} could be neither journaled nor held in memory ({e}): its readings are lost"
            )),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    //! The shell against a small cloud in memory: the session's requests go
    //! to it through the [`Transport`] seam, so the loop, the journal and
    //! the exit codes are checked without a network. (The real cloud is
    //! `cloud-stub/tests/e2e.rs`'s.)

    use super::*;
    use dca_core::printer::{Identity, Qualification, Status, Text};
    use dca_core::sync::batch::{BatchId, parse_record};
    use dca_core::sync::message::{MAX_TASKS, Request, Response, Task};
    use std::cell::RefCell;
    use std::path::Path;
    use std::rc::Rc;

    /// What the cloud in memory does and has seen.
    #[derive(Debug, Default)]
    pub struct Cloud {
        /// Batches held, in the order they came.
        pub held: Vec<BatchId>,
        pub readings: u64,
        /// (kind, argument) handed out at the next task poll.
        pub tasks: Vec<(&'static str, String)>,
        pub results: Vec<(u64, bool, String)>,
        pub requests: usize,
        /// The network is down.
        pub down: bool,
        /// Every request is refused with this status and a `rejected` body.
        pub refuse: Option<u16>,
        /// The next upload is refused as malformed.
        pub reject_next_upload: bool,
        next_task: u64,
    }

    #[derive(Debug, Clone, Default)]
    pub struct Fake(pub Rc<RefCell<Cloud>>);

    fn encode(r: &Response<'_>) -> Vec<u8> {
        let mut out = vec![0u8; r.encoded_len()];
        let n = r.encode(&mut out).unwrap();
        out.truncate(n);
        out
    }

    impl Transport for Fake {
        fn exchange(
            &mut self,
            authorization: Option<&str>,
            body: &[u8],
            _wait: Option<std::time::Duration>,
        ) -> Result<Answer, LinkError> {
            let mut c = self.0.borrow_mut();
            c.requests += 1;
            if c.down {
                return Err(LinkError::Unreachable(
                    "127.0.0.1:9: connection refused (os error 111)".into(),
                ));
            }
            assert_eq!(authorization, Some("Bearer agt_1:s3cret"));
            let rejected = |code: u16, reason: &str| Answer {
                status: code,
                body: encode(&Response::Rejected { code, reason }),
            };
            if let Some(code) = c.refuse {
                return Ok(rejected(code, "unknown agent"));
            }
            let ok = |r: Response<'_>| Answer {
                status: 200,
                body: encode(&r),
            };
            Ok(match Request::decode(body).unwrap() {
                Request::Hello { .. } => ok(Response::Welcome {
                    server_ms: 1_795_000_000_000,
                    last_batch: c.held.last().copied(),
                    held: c.held.len() as u64,
                    poll_interval_s: 0,
                    hold_max_s: 0,
                }),
                Request::Upload {
                    batch, readings, ..
                } => {
                    if std::mem::take(&mut c.reject_next_upload) {
                        return Ok(rejected(400, "malformed CBOR at byte 3"));
                    }
                    assert_eq!(BatchId::of(&readings), batch);
                    let duplicate = c.held.contains(&batch);
                    if !duplicate {
                        c.held.push(batch);
                        c.readings += readings.len();
                    }
                    ok(Response::Ack {
                        batch,
                        stored: if duplicate { 0 } else { readings.len() as u32 },
                        duplicate,
                    })
                }
                Request::TaskPoll | Request::Listen { .. } => {
                    let waiting = std::mem::take(&mut c.tasks);
                    let mut list = heapless::Vec::<Task<'_>, MAX_TASKS>::new();
                    let mut ids = Vec::new();
                    for _ in &waiting {
                        c.next_task += 1;
                        ids.push(c.next_task);
                    }
                    for ((kind, arg), id) in waiting.iter().zip(&ids) {
                        list.push(Task { id: *id, kind, arg }).unwrap();
                    }
                    ok(Response::Tasks(list))
                }
                Request::TaskResult {
                    task,
                    ok: good,
                    detail,
                } => {
                    c.results.push((task, good, detail.to_string()));
                    ok(Response::Noted)
                }
                Request::Enroll { .. } => rejected(400, "already enrolled"),
                Request::Relay { .. } => ok(Response::RelayClosed),
            })
        }
    }

    pub struct TempDir(pub PathBuf);

    impl TempDir {
        pub fn new(name: &str) -> TempDir {
            let d = std::env::temp_dir().join(format!("dca-shell-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(&d).unwrap();
            TempDir(d)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    pub fn enrolled(dir: &Path) -> AgentState {
        let state = AgentState {
            cloud: "https://127.0.0.1:9".into(),
            agent_id: "agt_1".into(),
            secret: "s3cret".into(),
            customer: "acme".into(),
            pins: Vec::new(),
            ca: None,
            targets: Vec::new(),
            schedule_s: None,
            log_level: None,
        };
        StateDir::new(dir.to_path_buf()).save(&state).unwrap();
        state
    }

    /// An agent over `dir` talking to `cloud`.
    pub fn agent(dir: &Path, cloud: &Fake, cfg: Config, one_shot: bool) -> Agent {
        agent_with(dir, cloud, cfg, options(one_shot))
    }

    pub fn options(one_shot: bool) -> Options {
        Options {
            log_prefix: "test",
            sweep: SweepArgs::new(Vec::new(), 1161),
            mask_addresses: false,
            proxy: None,
            one_shot,
            default_targets: Vec::new(),
            trust: None,
            log_level: None,
            reenroll: None,
            web_ports: Vec::new(),
        }
    }

    pub fn agent_with(dir: &Path, cloud: &Fake, cfg: Config, opts: Options) -> Agent {
        let state = StateDir::new(dir.to_path_buf()).load().unwrap();
        let journal = FileJournal::open(dir).unwrap();
        Agent::new(
            StateDir::new(dir.to_path_buf()),
            state,
            journal,
            Box::new(cloud.clone()),
            cfg,
            opts,
        )
    }

    /// A configuration file's targets and log level are defaults: the
    /// cloud's settings win over them, and persist across restarts.
    #[test]
    fn the_clouds_settings_win_over_the_configuration_files() {
        let dir = TempDir::new("config-defaults");
        enrolled(&dir.0);
        let cloud = Fake::default();
        let from_file = || Options {
            default_targets: vec!["192.0.2.0/24".into()],
            log_level: Some(LogLevel::Warn),
            ..options(true)
        };
        let a = agent_with(&dir.0, &cloud, push_config(), from_file());
        assert_eq!(a.targets(), ["192.0.2.0/24"]);
        assert_eq!(a.log.level, LogLevel::Warn);
        drop(a);
        cloud.0.borrow_mut().tasks = vec![
            ("set_targets", "10.9.0.0/24".into()),
            ("set_log_level", "debug".into()),
        ];
        let mut a = agent_with(&dir.0, &cloud, push_config(), from_file());
        assert_eq!(crate::push_cmd::deliver(&mut a), 0);
        assert_eq!(a.targets(), ["10.9.0.0/24"]);
        drop(a);
        let a = agent_with(&dir.0, &cloud, push_config(), from_file());
        assert_eq!(a.targets(), ["10.9.0.0/24"]);
        assert_eq!(a.log.level, LogLevel::Debug);
        drop(a);
        // Targets on the command line still win over both.
        let mut cli = from_file();
        cli.sweep.targets = vec!["198.51.100.7".into()];
        let a = agent_with(&dir.0, &cloud, push_config(), cli);
        assert_eq!(a.targets(), ["198.51.100.7"]);
    }

    pub fn push_config() -> Config {
        let mut cfg = Config::new(AGENT_VERSION);
        cfg.collect_every = None;
        cfg
    }

    fn printer(serial: &str) -> Snapshot {
        Snapshot {
            qualification: Qualification::Printer { device_index: 1 },
            identity: Identity {
                serial: Text::from_str_lossy(serial),
                model: Text::from_str_lossy("LaserJet"),
                ..Identity::default()
            },
            counters: heapless::Vec::new(),
            supplies: heapless::Vec::new(),
            trays: heapless::Vec::new(),
            outputs: heapless::Vec::new(),
            alerts: heapless::Vec::new(),
            status: Status::default(),
            overflowed: false,
        }
    }

    /// Puts printers into one batch and journals it, as a sweep would.
    pub fn collect(agent: &mut Agent, serials: &[&str]) {
        let mut c = Collector {
            session: &mut agent.session,
            journal: &mut agent.journal,
            writer: BatchWriter::new(&mut agent.batch, MAX_BATCH_READINGS),
            clocks: &agent.clocks,
            mask: false,
            readings: 0,
            positions: Vec::new(),
            warnings: Vec::new(),
            trouble: Vec::new(),
        };
        for (i, s) in serials.iter().enumerate() {
            c.add(
                SocketAddr::from(([10, 0, 0, i as u8 + 1], 161)),
                &printer(s),
            );
        }
        c.seal();
        assert!(c.trouble.is_empty(), "{:?}", c.trouble);
    }

    fn journaled(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir.join("journal"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_round_delivers_the_batches_and_runs_the_tasks() {
        let dir = TempDir::new("round");
        enrolled(&dir.0);
        let cloud = Fake::default();
        cloud.0.borrow_mut().tasks = vec![
            ("set_log_level", "debug".into()),
            ("set_schedule", "120".into()),
            ("set_targets", "10.1.0.0/24, 10.2.0.1".into()),
            ("set_schedule", "5".into()),
            ("frobnicate", String::new()),
        ];
        let mut a = agent(&dir.0, &cloud, push_config(), true);
        collect(&mut a, &["A1", "B2"]);
        collect(&mut a, &["C3"]);
        assert_eq!(crate::push_cmd::deliver(&mut a), 0);
        let c = cloud.0.borrow();
        assert_eq!((c.held.len(), c.readings), (2, 3));
        // Every task has its result; the session refused the invalid ones.
        let mut results = c.results.clone();
        results.sort_by_key(|r| r.0);
        let results: Vec<bool> = results.iter().map(|r| r.1).collect();
        assert_eq!(results, [true, true, true, false, false], "{:?}", c.results);
        assert!(c.results.iter().any(|r| r.2.contains("frobnicate")));
        let saved = StateDir::new(dir.0.clone()).load().unwrap();
        assert_eq!(saved.log_level.as_deref(), Some("debug"));
        assert_eq!(saved.schedule_s, Some(120));
        assert_eq!(saved.targets, ["10.1.0.0/24", "10.2.0.1"]);
        assert_eq!(a.log.level, LogLevel::Debug);
        // Delivered batches stay journaled for a while (retention).
        assert_eq!(journaled(&dir.0).len(), 2);
        drop(c);
        // The next run says hello, learns the cloud has both, sends none.
        drop(a);
        let mut a = agent(&dir.0, &cloud, push_config(), true);
        assert_eq!(crate::push_cmd::deliver(&mut a), 0);
        assert_eq!(a.tally.delivered, 0);
        assert_eq!(cloud.0.borrow().held.len(), 2);
    }

    #[test]
    fn an_unreachable_cloud_keeps_the_readings_for_the_next_push() {
        let dir = TempDir::new("down");
        enrolled(&dir.0);
        let cloud = Fake::default();
        cloud.0.borrow_mut().down = true;
        let mut a = agent(&dir.0, &cloud, push_config(), true);
        collect(&mut a, &["A1"]);
        assert_eq!(crate::push_cmd::deliver(&mut a), 3);
        // One try, not a retry loop: push is one-shot.
        assert_eq!(cloud.0.borrow().requests, 1);
        drop(a);
        assert_eq!(journaled(&dir.0).len(), 1);
        cloud.0.borrow_mut().down = false;
        let mut a = agent(&dir.0, &cloud, push_config(), true);
        assert_eq!(crate::push_cmd::deliver(&mut a), 0);
        assert_eq!(cloud.0.borrow().readings, 1);
    }

    #[test]
    fn refused_credentials_and_versions_are_exit_4() {
        let dir = TempDir::new("refused");
        enrolled(&dir.0);
        for (status, outcome) in [(401, Failure::Credentials), (426, Failure::Version)] {
            let cloud = Fake::default();
            cloud.0.borrow_mut().refuse = Some(status);
            let mut a = agent(&dir.0, &cloud, push_config(), true);
            a.session.sync_now();
            assert_eq!(a.round(), Some(Outcome::Failed(outcome)));
            drop(a);
            let mut a = agent(&dir.0, &cloud, push_config(), true);
            assert_eq!(crate::push_cmd::deliver(&mut a), 4);
        }
        // A refusal the cloud may get over (503) is exit 3.
        let cloud = Fake::default();
        cloud.0.borrow_mut().refuse = Some(503);
        let mut a = agent(&dir.0, &cloud, push_config(), true);
        assert_eq!(crate::push_cmd::deliver(&mut a), 3);
    }

    #[test]
    fn a_refused_batch_is_quarantined_with_its_reason_and_the_push_succeeds() {
        let dir = TempDir::new("quarantine");
        enrolled(&dir.0);
        let cloud = Fake::default();
        cloud.0.borrow_mut().reject_next_upload = true;
        let mut a = agent(&dir.0, &cloud, push_config(), true);
        collect(&mut a, &["A1"]);
        collect(&mut a, &["B2"]);
        assert_eq!(crate::push_cmd::deliver(&mut a), 0);
        assert_eq!(a.tally.quarantined, 1);
        assert_eq!(cloud.0.borrow().held.len(), 1);
        let q: Vec<PathBuf> = std::fs::read_dir(dir.0.join("quarantine"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(q.len(), 2, "{q:?}");
        let reason = q
            .iter()
            .find(|p| p.to_string_lossy().ends_with(".reason.txt"))
            .unwrap();
        assert!(
            std::fs::read_to_string(reason)
                .unwrap()
                .contains("malformed CBOR at byte 3")
        );
        let record = q
            .iter()
            .find(|p| p.to_string_lossy().ends_with(".cbor"))
            .unwrap();
        assert!(parse_record(&std::fs::read(record).unwrap()).is_ok());
    }

    #[test]
    fn a_cloud_restored_from_a_backup_gets_what_it_lost() {
        let dir = TempDir::new("restored");
        enrolled(&dir.0);
        let cloud = Fake::default();
        let mut a = agent(&dir.0, &cloud, push_config(), true);
        collect(&mut a, &["A1"]);
        collect(&mut a, &["B2"]);
        collect(&mut a, &["C3"]);
        assert_eq!(crate::push_cmd::deliver(&mut a), 0);
        drop(a);
        let lost = {
            let mut c = cloud.0.borrow_mut();
            c.readings = 1;
            c.held.split_off(1)
        };
        let mut a = agent(&dir.0, &cloud, push_config(), true);
        assert_eq!(crate::push_cmd::deliver(&mut a), 0);
        assert_eq!(a.tally.delivered, 2);
        let c = cloud.0.borrow();
        assert_eq!(c.held[1..], lost[..]);
        assert_eq!(c.readings, 3);
    }

    #[test]
    fn a_setting_that_cannot_be_saved_fails_its_task_and_the_push() {
        let dir = TempDir::new("unsaved");
        enrolled(&dir.0);
        let cloud = Fake::default();
        cloud.0.borrow_mut().tasks = vec![("set_log_level", "warn".into())];
        let mut a = agent(&dir.0, &cloud, push_config(), true);
        // agent.json cannot be replaced once it is a directory (even by
        // root, which permissions would not stop).
        let json = dir.0.join("agent.json");
        std::fs::remove_file(&json).unwrap();
        std::fs::create_dir_all(json.join("x")).unwrap();
        assert_eq!(crate::push_cmd::deliver(&mut a), 1);
        let c = cloud.0.borrow();
        assert_eq!(c.results.len(), 1);
        assert!(!c.results[0].1);
        assert!(c.results[0].2.contains("agent.json"), "{:?}", c.results);
        assert!(a.tally.trouble[0].contains("not saved"));
    }

    #[test]
    fn readings_the_disk_refused_are_delivered_from_memory_and_the_push_says_so() {
        let Some(mount) = crate::journal::tests::tmpfs("push-full") else {
            return;
        };
        enrolled(&mount.0);
        let cloud = Fake::default();
        let mut a = agent(&mount.0, &cloud, push_config(), true);
        // Fill the disk.
        let filler = mount.0.join("filler");
        let mut f = std::fs::File::create(&filler).unwrap();
        use std::io::Write;
        while f.write_all(&[0u8; 4096]).is_ok() {}
        drop(f);
        collect(&mut a, &["A1", "B2"]);
        assert_eq!(crate::push_cmd::deliver(&mut a), 1);
        assert_eq!(a.tally.not_durable, 1);
        assert!(a.tally.in_memory.is_empty());
        assert_eq!(cloud.0.borrow().readings, 2);
        // And with the cloud down, the readings are lost: still exit 1
        // (not 3, which would promise they are kept).
        cloud.0.borrow_mut().down = true;
        collect(&mut a, &["C3"]);
        assert_eq!(crate::push_cmd::deliver(&mut a), 1);
        assert_eq!(a.tally.in_memory.len(), 1);
        drop(a);
    }
}
