//! The device's side of the cloud session: the core's `Session` (the same
//! state machine the host agent drives) fed with the sweeps' readings and
//! driven over the TLS link (cloud.rs). The device enrolls with the block's
//! one-time token first; every exchange after carries the credentials the
//! cloud gave it.
//!
//! What a shell does and nothing more: it journals batches through the
//! session, posts the requests the session makes, hands back the answers,
//! and does what the session's events say (collect, run a task, log).

use core::fmt::Write as _;
use core::net::{IpAddr, SocketAddr};

use dca_core::poll::Target;
use dca_core::printer::Snapshot;
use dca_core::sync::batch::{BatchWriter, Refused};
use dca_core::sync::journal::Journal;
use dca_core::sync::message::MAX_TASKS;
use dca_core::sync::message::Request;
use dca_core::sync::session::{self, Config, Event, Failure, Now, Session};
use dca_core::sync::task::{LogLevel, Order};
use dca_core::time::Duration as CoreDuration;
use heapless::{Deque, String, Vec};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::RngCore;

use embedded_storage::nor_flash::NorFlash;
use flash_journal::identity;

use crate::cloud::{CloudTarget, Link, LinkError};

/// The agent's name in `hello` and `User-Agent`.
pub const AGENT_VERSION: &str = concat!("dca-firmware/", env!("CARGO_PKG_VERSION"));
/// Bytes of delivered batches kept for a cloud restored from a backup: two
/// of the journal's sixteen sectors.
const RETAINED_BYTES: u64 = 8 * 1024;
/// Readings per batch at most (the byte limit is the work buffer's).
const BATCH_READINGS: u64 = 64;
/// `Bearer <agent id>:<secret>`.
const AUTH_ROOM: usize = 200;
/// What the identity store keeps: the cloud's URL, a line break, then the
/// authorization (an identity for another cloud is not used).
const KEPT_ROOM: usize = dca_core::provision::MAX_CLOUD_URL + 1 + AUTH_ROOM;
/// Targets the cloud may set, at most.
pub const MAX_TARGETS: usize = 16;
/// Enrollment is retried this long after a failure, doubling to the max.
const ENROLL_RETRY_MIN: CoreDuration = CoreDuration::from_secs(30);
const ENROLL_RETRY_MAX: CoreDuration = CoreDuration::from_secs(900);

/// A sweep the session's events ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SweepFor {
    /// The schedule's collection.
    Schedule,
    /// A task: the targets (rescan) or one device (poll_device).
    Task { id: u64, device: Option<IpAddr> },
}

/// What a burst posts first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Enroll,
    /// The session's request, this many bytes at the start of the work
    /// buffer.
    Request(usize),
}

/// Where enrollment stands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Identity {
    /// Not yet: enroll at the next chance (`retry_at`, after `delay`).
    Pending {
        retry_at: dca_core::time::Instant,
        delay: CoreDuration,
    },
    /// `Bearer id:secret`.
    Enrolled(String<AUTH_ROOM>),
}

/// The session, its journal and the device's identity with the cloud.
pub struct Delivery<J: Journal + 'static, F: NorFlash> {
    pub session: Session,
    pub journal: &'static mut J,
    identity: Identity,
    /// Where the identity is kept, and the sequence of the newest copy
    /// there (`None`: the flash could not be read, so nothing is written
    /// over a copy that may be the newest).
    identity_flash: F,
    identity_seq: Option<u32>,
    cloud_url: &'static str,
    token: &'static str,
    hostname: String<32>,
    pub rng: ChaCha20Rng,
    /// Sweeps the session's events asked for, in order (a scheduled one at
    /// most once).
    pending: Deque<SweepFor, { MAX_TASKS + 1 }>,
    /// The cloud was refused (not the cloud, or it refused us): said once
    /// per burst, not per exchange.
    pub refusals: u32,
    /// Every batch journaled so far has been delivered.
    pub all_delivered: bool,
    pub delivered_batches: u32,
    pub stored_readings: u64,
    pub targets: Vec<Target, MAX_TARGETS>,
    pub log_level: LogLevel,
}

/// The clock the session reads (the device knows no date).
pub fn now() -> Now {
    Now {
        at: crate::agent::now(),
        wall_ms: None,
    }
}

impl<J: Journal + 'static, F: NorFlash> Delivery<J, F> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        journal: &'static mut J,
        mut identity_flash: F,
        cloud_url: &'static str,
        token: &'static str,
        schedule_s: u32,
        mac: [u8; 6],
        mut rng: ChaCha20Rng,
        targets: Vec<Target, MAX_TARGETS>,
    ) -> Self {
        let mut cfg = Config::new(AGENT_VERSION);
        // The journal is small and the device knows no date (so the age
        // limit never applies): keep little of what the cloud holds, so
        // that a boot with the cloud away (when nothing delivered can be
        // told apart) still finds room for new readings.
        cfg.retention.max_bytes = RETAINED_BYTES;
        cfg.collect_every = Some(CoreDuration::from_secs(u64::from(schedule_s.max(1))));
        let mut boot_id = [0u8; 16];
        rng.fill_bytes(&mut boot_id);
        let seed = rng.next_u64();
        let mut hostname = String::new();
        let _ = write!(
            hostname,
            "dca-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
            mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]
        );
        let (identity, identity_seq) = kept_identity(&mut identity_flash, cloud_url);
        Delivery {
            session: Session::new(cfg, now().at, boot_id, seed),
            journal,
            identity,
            identity_flash,
            identity_seq,
            cloud_url,
            token,
            hostname,
            rng,
            pending: Deque::new(),
            refusals: 0,
            all_delivered: true,
            delivered_batches: 0,
            stored_readings: 0,
            targets,
            log_level: LogLevel::Info,
        }
    }

    /// The next sweep an event asked for, if any.
    pub fn take_sweep(&mut self) -> Option<SweepFor> {
        self.pending.pop_front()
    }

    /// Handles the session's events in order; sweeps they ask for wait for
    /// [`Delivery::take_sweep`].
    pub fn drain_events(&mut self) {
        while let Some(e) = self.session.poll_event() {
            self.handle(e);
        }
    }

    fn want_sweep(&mut self, why: SweepFor) {
        if why == SweepFor::Schedule && self.pending.iter().any(|p| *p == why) {
            return;
        }
        if self.pending.push_back(why).is_err() {
            // More tasks than the session hands out at once: cannot be.
            defmt::warn!("delivery: too many sweeps asked for; one is dropped");
        }
    }

    /// What to post first, if anything is due: enrollment, or the
    /// session's next request (written into `work` and now in flight: a
    /// link that cannot be opened must be reported with
    /// [`Delivery::transport_failed`]).
    pub fn next(&mut self, work: &mut [u8]) -> Option<Next> {
        match &self.identity {
            Identity::Pending { retry_at, .. } => (now().at >= *retry_at).then_some(Next::Enroll),
            Identity::Enrolled(_) => self
                .session
                .poll_request(now(), self.journal, work)
                .map(Next::Request),
        }
    }

    /// When the session or enrollment next wants the loop.
    pub fn next_wake(&self) -> Option<dca_core::time::Instant> {
        let t = self.session.poll_timeout();
        match &self.identity {
            Identity::Pending { retry_at, .. } => Some(t.map_or(*retry_at, |t| t.min(*retry_at))),
            Identity::Enrolled(_) => t,
        }
    }

    /// Posts `first` and what follows over `link`, until the session has
    /// nothing to send, an event needs a sweep, or the link fails. `work`
    /// holds each request and then its answer.
    pub async fn burst(
        &mut self,
        link: &mut Link<'_>,
        target: &CloudTarget<'_>,
        work: &mut [u8],
        first: Next,
    ) {
        let mut next = Some(first);
        // Bounded: a round is a few exchanges per batch, and the session
        // ends it on its own.
        for _ in 0..1024 {
            match next {
                None => return,
                Some(Next::Enroll) => match self.enroll(link, target, work).await {
                    // The cloud closes the connection after its answer.
                    Ok(true) | Err(()) => return,
                    Ok(false) => {}
                },
                Some(Next::Request(n)) => {
                    let Identity::Enrolled(auth) = &self.identity else {
                        return;
                    };
                    match link.exchange(target, Some(auth.as_str()), work, n).await {
                        Ok(answer) => {
                            let body = work.get(..answer.len).unwrap_or(&[]);
                            self.session
                                .handle_response(now(), self.journal, answer.status, body);
                            self.drain_events();
                            if answer.close {
                                return;
                            }
                        }
                        Err(e) => {
                            self.transport_failed(e);
                            return;
                        }
                    }
                }
            }
            // None while a task's sweep waits (the session holds the round
            // until the task is done): the burst ends and the sweep runs.
            next = self.next(work);
        }
    }

    /// The link could not be opened, or failed mid-burst.
    pub fn transport_failed(&mut self, e: LinkError) {
        let mut detail: String<160> = String::new();
        let _ = write!(detail, "{e}");
        if e.is_refusal() {
            self.refusals = self.refusals.saturating_add(1);
            defmt::error!(
                "delivery: {=str}; nothing was sent and the readings stay journaled (check the block's pins or CA)",
                detail.as_str()
            );
        }
        match &mut self.identity {
            Identity::Pending { retry_at, delay } => {
                if !e.is_refusal() {
                    defmt::warn!(
                        "delivery: enrollment not done: {=str}; trying again in {=u64} s",
                        detail.as_str(),
                        delay.millis() / 1000
                    );
                }
                *retry_at = now().at.saturating_add(*delay);
                *delay = delay.saturating_mul(2).min(ENROLL_RETRY_MAX);
            }
            Identity::Enrolled(_) => {
                self.session.handle_transport_error(now(), &detail);
                self.drain_events();
            }
        }
    }

    /// Enrolls; `Ok(true)` when the cloud closes the connection after.
    async fn enroll(
        &mut self,
        link: &mut Link<'_>,
        target: &CloudTarget<'_>,
        work: &mut [u8],
    ) -> Result<bool, ()> {
        let req = Request::Enroll {
            token: self.token.trim(),
            agent_version: AGENT_VERSION,
            hostname: &self.hostname,
        };
        let Ok(n) = req.encode(work) else {
            defmt::error!("delivery: the enrollment request does not fit its buffer");
            return Err(());
        };
        let answer = match link.exchange(target, None, work, n).await {
            Ok(a) => a,
            Err(e) => {
                self.transport_failed(e);
                return Err(());
            }
        };
        let body = work.get(..answer.len).unwrap_or(&[]);
        match session::enrollment(answer.status, body) {
            Ok(enrolled) => {
                let mut auth = String::new();
                if write!(auth, "Bearer {}:{}", enrolled.agent_id, enrolled.secret).is_err() {
                    defmt::error!(
                        "delivery: the cloud's credentials are longer than the device keeps"
                    );
                    return Err(());
                }
                defmt::info!(
                    "delivery: enrolled as agent {=str} for customer {=str}",
                    enrolled.agent_id,
                    enrolled.customer
                );
                self.keep_identity(&auth);
                self.identity = Identity::Enrolled(auth);
                Ok(answer.close)
            }
            Err((failure, why)) => {
                if let Identity::Pending { retry_at, delay } = &mut self.identity {
                    let wait = match failure {
                        Failure::Unreachable => *delay,
                        Failure::Credentials | Failure::Version => ENROLL_RETRY_MAX,
                    };
                    *retry_at = now().at.saturating_add(wait);
                    *delay = delay.saturating_mul(2).min(ENROLL_RETRY_MAX);
                    match failure {
                        Failure::Credentials => {
                            self.refusals = self.refusals.saturating_add(1);
                            defmt::error!(
                                "delivery: the cloud refused the enrollment token (HTTP {=u16}: {=str}): provision a new one; readings stay journaled, asked again in {=u64} s",
                                answer.status,
                                why,
                                wait.millis() / 1000
                            )
                        }
                        Failure::Version => defmt::error!(
                            "delivery: the cloud speaks another protocol version ({=str}): update this firmware",
                            why
                        ),
                        Failure::Unreachable => defmt::warn!(
                            "delivery: enrollment not done (HTTP {=u16}: {=str}); trying again in {=u64} s",
                            answer.status,
                            why,
                            wait.millis() / 1000
                        ),
                    }
                }
                Err(())
            }
        }
    }

    /// Writes the credentials to flash, so a restart does not enroll again
    /// (the token is spent).
    fn keep_identity(&mut self, auth: &str) {
        let mut kept: String<KEPT_ROOM> = String::new();
        if write!(kept, "{}\n{}", self.cloud_url, auth).is_err() {
            return;
        }
        let Some(seq) = self.identity_seq.map(|s| s.wrapping_add(1)) else {
            defmt::error!(
                "delivery: the identity is not kept: its flash could not be read at boot; after a restart the device needs a new token"
            );
            return;
        };
        match identity::store(&mut self.identity_flash, 0, seq, kept.as_bytes()) {
            Ok(()) => {
                self.identity_seq = Some(seq);
                defmt::info!("delivery: identity kept in flash");
            }
            Err(e) => defmt::error!(
                "delivery: the identity could not be kept in flash ({}): after a restart the device needs a new token",
                defmt::Display2Format(&e)
            ),
        }
    }

    fn handle(&mut self, e: Event) {
        match e {
            Event::Collect => self.want_sweep(SweepFor::Schedule),
            Event::Task { id, order } => self.run_task(id, order),
            Event::TaskRefused { id, detail } => {
                defmt::warn!("delivery: task {=u64} refused: {=str}", id, detail.as_str())
            }
            // The image announces no push channel, so none can fail.
            Event::ChannelDown { detail } => {
                defmt::warn!("delivery: push channel down: {=str}", detail.as_str())
            }
            Event::Delivered {
                pos,
                stored,
                duplicate,
                ..
            } => {
                self.delivered_batches = self.delivered_batches.saturating_add(1);
                self.stored_readings = self.stored_readings.saturating_add(u64::from(stored));
                defmt::info!(
                    "delivery: batch at journal position {=u64} delivered: {=u32} readings stored{=str}",
                    pos,
                    stored,
                    if duplicate {
                        " (the cloud held it already)"
                    } else {
                        ""
                    }
                );
            }
            Event::Resending { from } => defmt::warn!(
                "delivery: the cloud no longer holds batches it acknowledged: sending again from journal position {=u64}",
                from.unwrap_or(1)
            ),
            Event::Quarantined {
                pos, code, reason, ..
            } => defmt::error!(
                "delivery: batch at journal position {=u64} refused by the cloud (HTTP {=u16}: {=str}) and dropped",
                pos,
                code,
                reason.as_str()
            ),
            Event::NotDurable { pos } => defmt::error!(
                "delivery: batch at journal position {=u64} is held in memory only",
                pos
            ),
            Event::JournalFailed { detail } => {
                defmt::error!("delivery: journal trouble: {=str}", detail.as_str())
            }
            Event::Failed {
                failure,
                retry_in,
                detail,
            } => {
                let what = match failure {
                    Failure::Unreachable => "the round failed",
                    Failure::Credentials => {
                        self.refusals = self.refusals.saturating_add(1);
                        "the cloud refused this device's credentials (re-provision it)"
                    }
                    Failure::Version => {
                        "the cloud speaks another protocol version (update this firmware)"
                    }
                };
                let (held, bytes) = self.journal_usage();
                defmt::warn!(
                    "delivery: {=str}: {=str}; {=usize} batches ({=usize} bytes) kept, trying again in {=u64} s",
                    what,
                    detail.as_str(),
                    held,
                    bytes,
                    retry_in.millis() / 1000
                );
            }
            Event::RoundDone { uploaded, stored } => {
                if uploaded > 0 {
                    defmt::info!(
                        "delivery: round done: {=u32} batches delivered, {=u64} readings stored",
                        uploaded,
                        stored
                    );
                }
                self.all_delivered = true;
            }
        }
    }

    fn journal_usage(&mut self) -> (usize, usize) {
        let (mut n, mut bytes, mut after) = (0usize, 0usize, None);
        // Bounded by the journal's entries.
        while let Ok(Some(e)) = self.journal.next(after) {
            n = n.saturating_add(1);
            bytes = bytes.saturating_add(e.len);
            after = Some(e.pos);
        }
        (n, bytes)
    }

    fn run_task(&mut self, id: u64, order: Order) {
        let (ok, detail): (bool, String<96>) = match order {
            Order::Rescan => {
                self.want_sweep(SweepFor::Task { id, device: None });
                return;
            }
            Order::PollDevice(ip) => {
                self.want_sweep(SweepFor::Task {
                    id,
                    device: Some(ip),
                });
                return;
            }
            Order::SetTargets(list) => {
                let mut targets = Vec::new();
                let mut bad = None;
                for t in list.split(',') {
                    match Target::parse(t) {
                        Ok(t) if targets.push(t).is_ok() => {}
                        Ok(_) => bad = Some("too many targets"),
                        Err(_) => bad = Some("a target does not parse"),
                    }
                }
                let mut d = String::new();
                match bad {
                    Some(why) => {
                        let _ = write!(d, "{why}: targets unchanged");
                        (false, d)
                    }
                    None => {
                        self.targets = targets;
                        let _ = write!(
                            d,
                            "targets set ({} expressions, until restart)",
                            self.targets.len()
                        );
                        (true, d)
                    }
                }
            }
            Order::SetSchedule(every) => {
                let mut d = String::new();
                let _ = write!(d, "collection every {} s", every.millis() / 1000);
                (true, d)
            }
            Order::SetLogLevel(level) => {
                // The image's own level is fixed when it is built (defmt);
                // this one decides whether each printer gets a line.
                self.log_level = level;
                let mut d = String::new();
                let _ = write!(d, "log level {} (until restart)", level.id());
                (true, d)
            }
            // Device Web Access is the host agent's for now: the image does
            // not announce it, and says so if asked.
            Order::OpenWeb(_) => {
                let mut d = String::new();
                let _ = write!(d, "web access is not relayed by this device");
                (false, d)
            }
        };
        defmt::info!("delivery: task {=u64}: {=str}", id, detail.as_str());
        self.session.task_done(id, ok, &detail);
    }

    /// Ends a task's sweep: its result goes out in this round.
    pub fn sweep_done(&mut self, why: SweepFor, printers: u32, readings: u32) {
        if let SweepFor::Task { id, .. } = why {
            let mut d: String<96> = String::new();
            let _ = write!(d, "{printers} printers, {readings} readings journaled");
            self.session.task_done(id, true, &d);
        }
    }
}

/// The identity kept in flash for `cloud_url`, if any, and the sequence of
/// the newest copy (`None` when the flash cannot be read).
fn kept_identity<F: NorFlash>(flash: &mut F, cloud_url: &str) -> (Identity, Option<u32>) {
    let pending = Identity::Pending {
        retry_at: now().at,
        delay: ENROLL_RETRY_MIN,
    };
    let mut buf = [0u8; KEPT_ROOM];
    match identity::load(flash, 0, &mut buf) {
        Ok(Some((seq, len))) => {
            let text = buf
                .get(..len)
                .and_then(|b| core::str::from_utf8(b).ok())
                .and_then(|t| t.split_once('\n'));
            match text {
                Some((url, auth)) if url == cloud_url => {
                    let mut a = String::new();
                    if a.push_str(auth).is_ok() {
                        defmt::info!("delivery: identity read from flash (copy {=u32})", seq);
                        return (Identity::Enrolled(a), Some(seq));
                    }
                    (pending, Some(seq))
                }
                Some(_) => {
                    defmt::warn!(
                        "delivery: the identity in flash is for another cloud: enrolling with the block's token"
                    );
                    (pending, Some(seq))
                }
                None => (pending, Some(seq)),
            }
        }
        Ok(None) => {
            defmt::info!("delivery: no identity in flash yet: enrolling");
            (pending, Some(0))
        }
        Err(e) => {
            defmt::error!(
                "delivery: the identity flash cannot be read ({}): enrolling",
                defmt::Display2Format(&e)
            );
            (pending, None)
        }
    }
}

/// A sweep's readings on their way into the journal.
pub struct Collector<'w, J: Journal> {
    session: &'w mut Session,
    journal: &'w mut J,
    writer: BatchWriter<'w>,
    all_delivered: &'w mut bool,
    pub readings: u32,
    pub batches: u32,
}

impl<'w, J: Journal> Collector<'w, J> {
    /// Collects a sweep's printers into batches journaled through the
    /// session; `work` holds the batch being built.
    pub fn new(
        session: &'w mut Session,
        journal: &'w mut J,
        all_delivered: &'w mut bool,
        work: &'w mut [u8],
    ) -> Self {
        Collector {
            session,
            journal,
            writer: BatchWriter::new(work, BATCH_READINGS),
            all_delivered,
            readings: 0,
            batches: 0,
        }
    }

    pub fn add(&mut self, addr: SocketAddr, snap: &Snapshot) {
        let mut ip: String<48> = String::new();
        let _ = write!(ip, "{}", addr.ip());
        let at = self.session.clock(now());
        let mut pushed = self.writer.push(snap, &at, Some(&ip));
        if pushed == Err(Refused::Full) {
            self.seal();
            pushed = self.writer.push(snap, &at, Some(&ip));
        }
        match pushed {
            Ok(()) => self.readings = self.readings.saturating_add(1),
            Err(Refused::TooLarge { bytes }) => defmt::error!(
                "delivery: the reading of {=str} is {=usize} bytes, more than a batch holds: left out",
                ip.as_str(),
                bytes
            ),
            Err(e) => defmt::error!(
                "delivery: the reading of {=str} was left out: {}",
                ip.as_str(),
                defmt::Debug2Format(&e)
            ),
        }
    }

    /// Journals the batch being built, if any.
    pub fn seal(&mut self) {
        if self.writer.is_empty() {
            return;
        }
        let (record, id) = self.writer.seal();
        let len = record.len();
        match self.session.commit(self.journal, now(), record, &id) {
            Ok(appended) => {
                self.batches = self.batches.saturating_add(1);
                *self.all_delivered = false;
                defmt::info!(
                    "delivery: batch {} of {=usize} bytes journaled at position {=u64}",
                    defmt::Display2Format(&id),
                    len,
                    appended.pos
                );
            }
            Err(e) => defmt::error!(
                "delivery: a batch could not be journaled ({}): its readings are lost",
                defmt::Display2Format(&e)
            ),
        }
    }
}
