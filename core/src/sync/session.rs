//! The agent's whole conversation with its cloud, as a state machine that
//! does no I/O (in the manner of quinn-proto): the shell asks it for the next
//! request ([`Session::poll_request`]), posts it however it can (TLS, a
//! proxy, a simulated network), and hands back the answer
//! ([`Session::handle_response`]) or the failure
//! ([`Session::handle_transport_error`]). Timers are the caller's:
//! [`Session::poll_timeout`] says when to call [`Session::handle_timeout`].
//! What the shell must do is said by [`Session::poll_event`].
//!
//! The rules it owns:
//! - **Delivery**: each round says `hello`, learns the newest of the agent's
//!   batches the cloud holds, and uploads every journaled batch after it,
//!   oldest first, one at a time, each until acknowledged. Batches are named
//!   by digest, so re-sending one the cloud holds costs a duplicate ack and
//!   never a second copy; nothing depends on a counter the two sides could
//!   disagree on, so no crash, restore or re-enrollment can block delivery.
//! - **Retention**: acknowledged batches stay in the journal for
//!   [`Retention`] (age and bytes), so a cloud restored from an older backup,
//!   which names an older batch in its `welcome`, gets the rest again.
//! - **What an answer means**: [`Verdict`] is the one table.
//! - **Backoff**: a failed round is retried after 30 s, doubling to 15 min,
//!   with jitter so a site's agents do not return in step; collection keeps
//!   its own schedule meanwhile, no more often than it.
//! - **Tasks**: parsed and validated ([`super::task::Order`]); the shell runs
//!   them and reports with [`Session::task_done`]; results are delivered in
//!   the same round, and a task that collected has its batch uploaded before
//!   the next task poll.
//! - **Push channel**: between rounds, when the cloud offers it, a `listen`
//!   request is kept in flight so a task arrives as soon as it is made; its
//!   wait ends before the next collection, and a channel that fails falls
//!   back to the task poll until the next round succeeds.

use super::batch::{BatchId, parse_record};
use super::cbor::Enc;
use super::journal::{AppendError, Appended, Journal};
use super::message::{self, MAX_TASKS, Request, Response, capability};
use super::task::{self, MAX_DETAIL, Order};
use super::{Clock, Error};
use crate::time::{Duration, Instant};
use heapless::{Deque, String};
use minicbor::encode::write::Cursor;

/// Room for the upload framing around a journal record.
pub const UPLOAD_OVERHEAD: usize = 192;
/// How many events wait for the shell at most; the session stops producing
/// requests while the queue is nearly full.
const EVENT_ROOM: usize = 24;
/// Task polls per round: a task may collect, and its batch is delivered
/// before the next poll.
const MAX_TASK_POLLS: u8 = 4;

/// How long acknowledged batches are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Age, judged on the wall clock (ignored while the date is unknown).
    pub max_age: Duration,
    /// Bytes of acknowledged records kept at most.
    pub max_bytes: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            max_age: Duration::from_secs(7 * 24 * 3600),
            max_bytes: 64 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    pub agent_version: &'static str,
    pub capabilities: u32,
    /// Collect this often (`None`: the shell collects on its own, as a
    /// one-shot `push` does).
    pub collect_every: Option<Duration>,
    /// Call the cloud for tasks this often between collections.
    pub task_poll_every: Duration,
    pub retention: Retention,
    /// The first retry delay; it doubles per failure up to `backoff_max`.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
}

impl Config {
    pub fn new(agent_version: &'static str) -> Self {
        Config {
            agent_version,
            capabilities: capability::POLL_TASKS | capability::JOURNAL | capability::SETTINGS,
            collect_every: Some(Duration::from_secs(900)),
            task_poll_every: Duration::from_secs(300),
            retention: Retention::default(),
            backoff_min: Duration::from_secs(30),
            backoff_max: Duration::from_secs(900),
        }
    }
}

/// The caller's clocks: a monotonic instant, and the date when known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    pub at: Instant,
    pub wall_ms: Option<u64>,
}

/// Why a round failed, as the shell should tell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The cloud or the network failed; retried after the delay.
    Unreachable,
    /// The cloud refused the agent's credentials: an administrator must
    /// re-enroll it. Readings keep being collected and journaled, and the
    /// cloud is asked again at the longest delay.
    Credentials,
    /// The cloud speaks another protocol version: the agent must be
    /// upgraded. Readings are kept meanwhile.
    Version,
}

/// What the shell must do or may log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A scheduled collection is due: sweep, then [`Session::commit`].
    Collect,
    /// Run a task, then [`Session::task_done`] with its id.
    Task { id: u64, order: Order },
    /// A task the agent cannot run (unknown kind, bad argument): reported to
    /// the cloud as failed with `detail`, nothing for the shell to do.
    TaskRefused { id: u64, detail: String<MAX_DETAIL> },
    /// The cloud holds a batch.
    Delivered {
        pos: u64,
        batch: BatchId,
        stored: u32,
        duplicate: bool,
    },
    /// The cloud no longer holds batches it had acknowledged (restored from
    /// an older backup, or the agent was re-enrolled): `from` is the first
    /// position sent again (`None`: the journal's start).
    Resending { from: Option<u64> },
    /// A batch was refused as malformed and taken out of the delivery order.
    Quarantined {
        pos: u64,
        batch: BatchId,
        code: u16,
        reason: String<MAX_DETAIL>,
    },
    /// A batch is held in memory only: the journal could not persist it.
    NotDurable { pos: u64 },
    /// The journal failed; the operation is retried with the round.
    JournalFailed { detail: String<MAX_DETAIL> },
    /// A round failed; the next try is at `retry_in` from now.
    Failed {
        failure: Failure,
        retry_in: Duration,
        detail: String<MAX_DETAIL>,
    },
    /// A round ended with nothing left to send.
    RoundDone { uploaded: u32, stored: u64 },
    /// The push channel failed; tasks are polled for at the poll interval
    /// until a round succeeds and the channel is tried again.
    ChannelDown { detail: String<MAX_DETAIL> },
}

/// What an answer means: the one table of statuses.
// The answer makes one variant large; it lives on the stack for one call,
// and the core has no allocator to box it into.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict<'b> {
    /// The expected answer.
    Answer(Response<'b>),
    /// The batch in flight is malformed or too large for this cloud: move it
    /// aside, carry on with the next.
    Quarantine { code: u16 },
    /// The credentials are refused (401, 403 from the cloud itself).
    Credentials,
    /// The cloud speaks another protocol version (426, or a version field
    /// this agent cannot read).
    Version,
    /// The task result names a task that is not this agent's (404): drop it.
    DropResult,
    /// The cloud does not hold the batch this upload names as its
    /// predecessor (409): it lost batches since it said hello (restored from
    /// a backup mid-round). Say hello again and send from where it is.
    Resync,
    /// Anything else: 408, 409, 429, 5xx, a proxy's error page, an answer
    /// that makes no sense. It may heal, so retry later.
    Retry,
}

/// Reads an answer to `in_flight`. Only refusals in the cloud's own CBOR
/// are believed to judge a batch; a proxy's page never quarantines one.
fn judge<'b>(status: u16, body: &'b [u8], upload: bool, result: bool) -> (Verdict<'b>, &'b str) {
    match Response::decode(body) {
        Ok(Response::Rejected { code, reason }) => {
            let v = match code {
                401 | 403 => Verdict::Credentials,
                426 => Verdict::Version,
                400 | 413 | 415 | 422 if upload => Verdict::Quarantine { code },
                409 if upload => Verdict::Resync,
                404 if result => Verdict::DropResult,
                _ => Verdict::Retry,
            };
            (v, reason)
        }
        Ok(r) if status == 200 => (Verdict::Answer(r), ""),
        Ok(_) => (Verdict::Retry, "a non-refusal answer with an error status"),
        Err(Error::Version(_)) => (
            Verdict::Version,
            "the answer is in another protocol version",
        ),
        Err(_) if status == 426 => (Verdict::Version, "426 Upgrade Required"),
        Err(_) => (
            Verdict::Retry,
            match status {
                200 => "an undecodable answer",
                407 => "the proxy wants credentials (407)",
                502..=504 => "a gateway or proxy could not reach the cloud",
                _ => "an answer that is not the cloud's",
            },
        ),
    }
}

/// An agent's new credentials, as the cloud's answer to `enroll` gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enrolled<'b> {
    pub agent_id: &'b str,
    pub secret: &'b str,
    pub customer: &'b str,
}

/// Reads the answer to `enroll` by the same table as every other answer: a
/// used or unknown token is [`Failure::Credentials`], another protocol
/// version [`Failure::Version`], anything else that is not the credentials
/// [`Failure::Unreachable`]; the text says why.
pub fn enrollment(status: u16, body: &[u8]) -> Result<Enrolled<'_>, (Failure, &str)> {
    match judge(status, body, false, false) {
        (
            Verdict::Answer(Response::Enrolled {
                agent_id,
                secret,
                customer,
            }),
            _,
        ) => Ok(Enrolled {
            agent_id,
            secret,
            customer,
        }),
        (Verdict::Answer(_), _) => Err((Failure::Unreachable, "not an answer to enrollment")),
        (Verdict::Credentials, reason) => Err((Failure::Credentials, reason)),
        (Verdict::Version, reason) => Err((Failure::Version, reason)),
        (_, reason) => Err((Failure::Unreachable, reason)),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InFlight {
    Hello,
    Upload { pos: u64, batch: BatchId },
    TaskPoll,
    TaskResult,
    Listen { wait: Duration },
}

/// Where delivery stands in the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    /// Not known until the cloud says hello.
    Unknown,
    /// Every entry up to this position (none: nothing) is held by the cloud.
    Through(Option<u64>),
}

#[derive(Debug, Clone)]
struct Outcome {
    id: u64,
    ok: bool,
    detail: String<MAX_DETAIL>,
}

/// The agent's side of the sync protocol.
#[derive(Debug)]
pub struct Session {
    cfg: Config,
    boot_id: [u8; 16],
    rng: u64,
    in_flight: Option<InFlight>,
    cursor: Delivery,
    /// The last journal position this round delivers: what was journaled
    /// when the cloud said hello, and what the round's tasks collected.
    /// Batches collected meanwhile wait for the next round, so a sweep that
    /// takes longer than its interval cannot keep a round from ending (and
    /// tasks from being polled).
    round_limit: u64,
    /// The batch at the cursor: the predecessor the next upload names.
    cursor_id: Option<BatchId>,
    /// Resyncs since the last acknowledged upload; a cloud that keeps
    /// asking for one is treated as failing.
    resyncs: u8,
    hello_ok: bool,
    round_wanted: bool,
    tasks_wanted: bool,
    task_polls: u8,
    running_tasks: u8,
    results: Deque<Outcome, MAX_TASKS>,
    retry_at: Option<Instant>,
    failures: u32,
    next_collect: Option<Instant>,
    next_task_poll: Instant,
    events: Deque<Event, EVENT_ROOM>,
    uploaded: u32,
    stored: u64,
    /// How long the cloud holds a `listen` (zero: it offers no channel).
    hold_max: Duration,
    /// The channel failed since the last round that succeeded.
    channel_down: bool,
}

/// A `listen` shorter than this is not worth a request: the timer that
/// bounds it is about to fire.
const LISTEN_MIN: Duration = Duration::from_secs(1);

impl Session {
    /// A session that starts with a round at `now` (and a collection, when
    /// it schedules them). `seed` drives the backoff's jitter; `boot_id`
    /// tells this run of the agent apart in clocks.
    pub fn new(cfg: Config, now: Instant, boot_id: [u8; 16], seed: u64) -> Self {
        Session {
            cfg,
            boot_id,
            rng: seed,
            in_flight: None,
            cursor: Delivery::Unknown,
            round_limit: 0,
            cursor_id: None,
            resyncs: 0,
            hello_ok: false,
            round_wanted: true,
            tasks_wanted: true,
            task_polls: 0,
            running_tasks: 0,
            results: Deque::new(),
            retry_at: None,
            failures: 0,
            next_collect: cfg.collect_every.map(|_| now),
            next_task_poll: now.saturating_add(cfg.task_poll_every),
            events: Deque::new(),
            uploaded: 0,
            stored: 0,
            hold_max: Duration::from_secs(0),
            channel_down: false,
        }
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Changes the collection interval (a `set_schedule` the shell kept, or
    /// its own configuration).
    pub fn set_schedule(&mut self, now: Instant, every: Duration) {
        if self.cfg.collect_every.is_some() {
            self.cfg.collect_every = Some(every);
            let next = now.saturating_add(every);
            self.next_collect = Some(self.next_collect.map_or(next, |n| n.min(next)));
        }
    }

    /// Asks for a round as soon as backoff allows (after a collection the
    /// shell made on its own, or on an operator's request).
    pub fn sync_now(&mut self) {
        self.round_wanted = true;
        self.tasks_wanted = true;
    }

    /// The clock as the protocol carries it.
    pub fn clock(&self, now: Now) -> Clock {
        Clock {
            wall_ms: now.wall_ms,
            boot_id: self.boot_id,
            mono_ms: now.at.millis(),
        }
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// True while a round is wanted or under way (a held `listen` is not
    /// one).
    pub fn is_busy(&self) -> bool {
        self.round_wanted
            || self.running_tasks > 0
            || self
                .in_flight
                .is_some_and(|f| !matches!(f, InFlight::Listen { .. }))
    }

    /// Whether task results wait to be delivered (a shell that stops
    /// delivers them first, or the cloud runs those tasks again).
    pub fn results_pending(&self) -> bool {
        !self.results.is_empty()
    }

    /// How long the cloud may take to answer the request in flight: the
    /// wait of a `listen`, `None` for the others (the shell's own deadline).
    /// The shell's read deadline must allow it, plus the network's time.
    pub fn in_flight_wait(&self) -> Option<Duration> {
        match self.in_flight {
            Some(InFlight::Listen { wait }) => Some(wait),
            _ => None,
        }
    }

    /// Gives up a held `listen` without counting it as a failure: a shell
    /// that can post while one is held calls it when the session has a
    /// round to run ([`Session::is_busy`]), then closes that connection.
    pub fn abandon_listen(&mut self) {
        if let Some(InFlight::Listen { .. }) = self.in_flight {
            self.in_flight = None;
        }
    }

    /// Whether the push channel is offered by the cloud and up.
    pub fn channel_up(&self) -> bool {
        self.cfg.capabilities & capability::LISTEN != 0
            && self.hold_max.millis() > 0
            && !self.channel_down
    }

    fn emit(&mut self, e: Event) {
        if self.events.is_full() {
            // The oldest is a log line by now; the newest may be a task.
            let _ = self.events.pop_front();
        }
        let _ = self.events.push_back(e);
    }

    /// When [`Session::handle_timeout`] wants calling.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t = Some(self.next_task_poll);
        if let Some(c) = self.next_collect {
            t = t.min(Some(c));
        }
        if self.round_wanted
            && self.in_flight.is_none()
            && let Some(r) = self.retry_at
        {
            t = t.min(Some(r));
        }
        t
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if let (Some(due), Some(every)) = (self.next_collect, self.cfg.collect_every)
            && now >= due
        {
            self.emit(Event::Collect);
            // From now, not from `due`: a machine that slept does not
            // collect in a burst to catch up.
            self.next_collect = Some(now.saturating_add(every));
        }
        if now >= self.next_task_poll {
            self.next_task_poll = now.saturating_add(self.cfg.task_poll_every);
            self.round_wanted = true;
            self.tasks_wanted = true;
        }
        if self.retry_at.is_some_and(|r| now >= r) {
            self.retry_at = None;
        }
    }

    /// Journals a sealed batch (from [`super::batch::BatchWriter::seal`]) and
    /// wants a round to deliver it. A full journal first gives up the
    /// retained copies of delivered batches; a journal that still refuses
    /// is asked to hold the batch in memory, and the shell is told either
    /// way ([`Event::JournalFailed`], [`Event::NotDurable`]), since a
    /// reading that is not on disk is a reading a crash would lose.
    pub fn commit<J: Journal>(
        &mut self,
        journal: &mut J,
        now: Now,
        record: &[u8],
        id: &BatchId,
    ) -> Result<Appended, AppendError<J::Error>> {
        let mut result = journal.append(id, now.wall_ms, record);
        if matches!(result, Err(AppendError::Full)) && self.prune(journal, now, true) {
            result = journal.append(id, now.wall_ms, record);
        }
        let appended = match result {
            Ok(pos) => Appended { pos, durable: true },
            Err(e) => {
                self.emit(Event::JournalFailed {
                    detail: task::detail(format_args!("cannot journal batch {id}: {e}")),
                });
                let Some(pos) = journal.hold_in_memory(id, now.wall_ms, record) else {
                    return Err(e);
                };
                self.emit(Event::NotDurable { pos });
                Appended {
                    pos,
                    durable: false,
                }
            }
        };
        if self.running_tasks > 0 {
            self.round_limit = self.round_limit.max(appended.pos);
        }
        self.sync_now();
        Ok(appended)
    }

    /// Reports how a task ended; the result goes out in this round.
    pub fn task_done(&mut self, id: u64, ok: bool, detail: &str) {
        self.running_tasks = self.running_tasks.saturating_sub(1);
        let _ = self.results.push_back(Outcome {
            id,
            ok,
            detail: task::truncated(detail),
        });
        self.round_wanted = true;
    }

    /// The next request to post, written into `buf`; `None` when there is
    /// nothing to send now. `buf` must hold the largest journal record plus
    /// [`UPLOAD_OVERHEAD`].
    pub fn poll_request<J: Journal>(
        &mut self,
        now: Now,
        journal: &mut J,
        buf: &mut [u8],
    ) -> Option<usize> {
        if !self.round_wanted
            && self.in_flight.is_none()
            && self.running_tasks == 0
            && self.results.is_empty()
            && self.retry_at.is_none()
            && self.events.len() <= EVENT_ROOM.saturating_sub(MAX_TASKS + 4)
        {
            return self.listen(now, buf);
        }
        if self.in_flight.is_some()
            || self.running_tasks > 0
            || !self.round_wanted
            || self.retry_at.is_some_and(|r| now.at < r)
            // Leave room for what the answer may produce.
            || self.events.len() > EVENT_ROOM.saturating_sub(MAX_TASKS + 4)
        {
            return None;
        }
        if !self.hello_ok {
            let req = Request::Hello {
                agent_version: self.cfg.agent_version,
                capabilities: self.cfg.capabilities,
                clock: self.clock(now),
            };
            return self.send(req.encode(buf), InFlight::Hello, now);
        }
        if let Delivery::Through(after) = self.cursor {
            match self.upload(now, journal, after, buf) {
                Ok(Some(n)) => return Some(n),
                Ok(None) => {}
                Err(detail) => {
                    self.emit(Event::JournalFailed { detail });
                    self.fail(now, Failure::Unreachable, "the journal could not be read");
                    return None;
                }
            }
        }
        if let Some(r) = self.results.front() {
            let req = Request::TaskResult {
                task: r.id,
                ok: r.ok,
                detail: &r.detail,
            };
            return self.send(req.encode(buf), InFlight::TaskResult, now);
        }
        if self.tasks_wanted && self.task_polls < MAX_TASK_POLLS {
            return self.send(Request::TaskPoll.encode(buf), InFlight::TaskPoll, now);
        }
        // Batches collected during the round make the next one start at once.
        self.round_wanted = matches!(journal.next(Some(self.round_limit)), Ok(Some(_)));
        // A round that went through: the channel is worth trying again.
        self.channel_down = false;
        self.tasks_wanted = false;
        self.task_polls = 0;
        // Every round starts with hello: it is how a cloud restored from a
        // backup is noticed.
        self.hello_ok = false;
        let done = Event::RoundDone {
            uploaded: core::mem::take(&mut self.uploaded),
            stored: core::mem::take(&mut self.stored),
        };
        self.emit(done);
        None
    }

    /// A `listen`, when the channel is up and no timer is about to fire:
    /// it waits no longer than the next collection, so a shell that blocks
    /// on it still collects on time.
    fn listen(&mut self, now: Now, buf: &mut [u8]) -> Option<usize> {
        if !self.channel_up() {
            return None;
        }
        let mut wait = self.hold_max;
        if let Some(c) = self.next_collect {
            wait = wait.min(Duration::from_millis(
                c.millis().saturating_sub(now.at.millis()),
            ));
        }
        // Whole seconds, as the message carries them.
        let wait = Duration::from_secs(wait.millis() / 1000);
        if wait < LISTEN_MIN {
            return None;
        }
        let secs = u32::try_from(wait.millis() / 1000).unwrap_or(u32::MAX);
        let req = Request::Listen { wait_s: secs };
        self.send(req.encode(buf), InFlight::Listen { wait }, now)
    }

    /// The channel failed: no backoff (the cloud may be fine, and a proxy
    /// that cuts held requests would otherwise keep the agent in backoff);
    /// the task poll takes over until a round succeeds.
    fn channel_failed(&mut self, detail: &str) {
        self.channel_down = true;
        self.emit(Event::ChannelDown {
            detail: task::truncated(detail),
        });
    }

    fn send(&mut self, encoded: Result<usize, Error>, what: InFlight, now: Now) -> Option<usize> {
        match encoded {
            Ok(n) => {
                self.in_flight = Some(what);
                Some(n)
            }
            Err(e) => {
                let detail = task::detail(format_args!("cannot encode a request: {e}"));
                self.emit(Event::JournalFailed { detail });
                self.fail(now, Failure::Unreachable, "the send buffer is too small");
                None
            }
        }
    }

    // The error is a fixed-capacity text: without an allocator there is no
    // smaller way to carry it.
    #[allow(clippy::result_large_err)]
    /// Frames the next journaled batch after `after` as an upload. A record
    /// that does not read back as the batch it was journaled as (a torn or
    /// corrupted write) is quarantined here, without troubling the cloud.
    fn upload<J: Journal>(
        &mut self,
        now: Now,
        journal: &mut J,
        mut after: Option<u64>,
        buf: &mut [u8],
    ) -> Result<Option<usize>, String<MAX_DETAIL>> {
        let jerr = |e: &dyn core::fmt::Display| task::detail(format_args!("journal: {e}"));
        // Bounded: each pass quarantines one entry or returns.
        loop {
            let Some(entry) = journal
                .next(after)
                .map_err(|e| jerr(&e))?
                .filter(|e| e.pos <= self.round_limit)
            else {
                return Ok(None);
            };
            let mut head = [0u8; UPLOAD_OVERHEAD];
            let head_len = {
                let mut e = Enc::new(Cursor::new(&mut head[..]));
                message::put_upload_head(
                    &mut e,
                    entry.pos,
                    &self.clock(now),
                    self.cursor_id.is_some(),
                )
                .map_err(|e| jerr(&e))?;
                e.into_writer().position()
            };
            let tail_room = 80usize;
            let fits = entry.len <= buf.len().saturating_sub(head_len.saturating_add(tail_room));
            let checked = if fits {
                let room = buf.get_mut(head_len..).unwrap_or(&mut []);
                let n = journal.read(entry.pos, room).map_err(|e| jerr(&e))?;
                let record = room.get(..n).unwrap_or(&[]);
                match parse_record(record) {
                    Ok(r) if BatchId::of(&r) == entry.id => Ok(n),
                    Ok(_) => Err("its digest does not match (a corrupted record)"),
                    Err(_) => Err("it is not a readings array (a torn or corrupted record)"),
                }
            } else {
                Err("it is larger than the send buffer")
            };
            match checked {
                Ok(n) => {
                    if let Some(dst) = buf.get_mut(..head_len) {
                        dst.copy_from_slice(head.get(..head_len).unwrap_or(&[]));
                    }
                    let end = head_len.saturating_add(n);
                    let tail = buf.get_mut(end..).unwrap_or(&mut []);
                    let mut e = Enc::new(Cursor::new(tail));
                    message::put_upload_tail(&mut e, &entry.id, self.cursor_id.as_ref())
                        .map_err(|e| jerr(&e))?;
                    let total = end.saturating_add(e.into_writer().position());
                    self.in_flight = Some(InFlight::Upload {
                        pos: entry.pos,
                        batch: entry.id,
                    });
                    return Ok(Some(total));
                }
                Err(why) => {
                    journal.quarantine(entry.pos, why).map_err(|e| jerr(&e))?;
                    self.emit(Event::Quarantined {
                        pos: entry.pos,
                        batch: entry.id,
                        code: 0,
                        reason: task::truncated(why),
                    });
                    after = after.max(Some(entry.pos));
                }
            }
        }
    }

    /// The transport failed (connection refused or reset, TLS, timeout):
    /// whatever was in flight is retried after the delay.
    pub fn handle_transport_error(&mut self, now: Now, detail: &str) {
        if let Some(InFlight::Listen { .. }) = self.in_flight.take() {
            self.channel_failed(detail);
            return;
        }
        self.fail(now, Failure::Unreachable, detail);
    }

    /// The answer to the request in flight: an HTTP status and its body.
    pub fn handle_response<J: Journal>(
        &mut self,
        now: Now,
        journal: &mut J,
        status: u16,
        body: &[u8],
    ) {
        let Some(sent) = self.in_flight.take() else {
            return;
        };
        let upload = matches!(sent, InFlight::Upload { .. });
        let result = sent == InFlight::TaskResult;
        let (verdict, reason) = judge(status, body, upload, result);
        // A proxy's or gateway's error on a held request says the channel
        // does not pass, not that the cloud is down.
        if matches!(sent, InFlight::Listen { .. }) && verdict == Verdict::Retry {
            self.channel_failed(&task::detail(format_args!("HTTP {status}: {reason}")));
            return;
        }
        match verdict {
            Verdict::Answer(r) => self.answer(now, journal, sent, r),
            Verdict::Quarantine { code } => {
                if let InFlight::Upload { pos, batch } = sent {
                    if let Err(e) = journal.quarantine(pos, reason) {
                        let detail = task::detail(format_args!("journal: {e}"));
                        self.emit(Event::JournalFailed { detail });
                        self.fail(
                            now,
                            Failure::Unreachable,
                            "cannot move a refused batch aside",
                        );
                        return;
                    }
                    self.emit(Event::Quarantined {
                        pos,
                        batch,
                        code,
                        reason: task::truncated(reason),
                    });
                }
            }
            Verdict::DropResult => {
                let _ = self.results.pop_front();
            }
            Verdict::Resync => {
                self.resyncs = self.resyncs.saturating_add(1);
                self.hello_ok = false;
                if self.resyncs > 3 {
                    let detail = task::detail(format_args!("HTTP {status}: {reason}"));
                    self.fail(now, Failure::Unreachable, &detail);
                }
            }
            Verdict::Credentials => self.fail(now, Failure::Credentials, reason),
            Verdict::Version => self.fail(now, Failure::Version, reason),
            Verdict::Retry => {
                let detail = task::detail(format_args!("HTTP {status}: {reason}"));
                self.fail(now, Failure::Unreachable, &detail);
            }
        }
    }

    fn answer<J: Journal>(&mut self, now: Now, journal: &mut J, sent: InFlight, r: Response<'_>) {
        match (sent, r) {
            (
                InFlight::Hello,
                Response::Welcome {
                    last_batch,
                    poll_interval_s,
                    hold_max_s,
                    ..
                },
            ) => {
                self.hold_max = Duration::from_secs(u64::from(hold_max_s));
                if let Err(e) = self.reconcile(journal, last_batch) {
                    let detail = task::detail(format_args!("journal: {e}"));
                    self.emit(Event::JournalFailed { detail });
                    self.fail(now, Failure::Unreachable, "the journal could not be read");
                    return;
                }
                self.hello_ok = true;
                if poll_interval_s > 0 {
                    let every = Duration::from_secs(u64::from(poll_interval_s));
                    self.cfg.task_poll_every = every;
                    // A shorter interval holds from now, not from the poll
                    // the longer one had scheduled.
                    self.next_task_poll = self.next_task_poll.min(now.at.saturating_add(every));
                }
                self.prune(journal, now, false);
            }
            (
                InFlight::Upload { pos, batch },
                Response::Ack {
                    batch: acked,
                    stored,
                    duplicate,
                },
            ) if acked == batch => {
                self.cursor = Delivery::Through(Some(pos));
                self.cursor_id = Some(batch);
                self.resyncs = 0;
                self.failures = 0;
                self.uploaded = self.uploaded.saturating_add(1);
                self.stored = self.stored.saturating_add(u64::from(stored));
                self.emit(Event::Delivered {
                    pos,
                    batch,
                    stored,
                    duplicate,
                });
                self.prune(journal, now, false);
            }
            (InFlight::Listen { .. }, Response::Tasks(tasks)) => {
                // The channel stood in for the task poll.
                self.next_task_poll = now.at.saturating_add(self.cfg.task_poll_every);
                if !tasks.is_empty() {
                    // Results, and what the tasks collect, go out in a round;
                    // that round polls for any tasks left.
                    self.round_wanted = true;
                    self.tasks_wanted = true;
                }
                self.take_tasks(now, &tasks);
            }
            (InFlight::TaskPoll, Response::Tasks(tasks)) => {
                self.failures = 0;
                self.task_polls = self.task_polls.saturating_add(1);
                if tasks.is_empty() {
                    self.tasks_wanted = false;
                }
                self.take_tasks(now, &tasks);
            }
            (InFlight::TaskResult, Response::Noted) => {
                let _ = self.results.pop_front();
            }
            (_, other) => {
                let detail = task::detail(format_args!(
                    "an answer that does not fit the request: {}",
                    response_name(&other)
                ));
                self.fail(now, Failure::Unreachable, &detail);
            }
        }
    }

    /// Hands the shell the tasks it can run; those it cannot are reported
    /// as failed.
    fn take_tasks(&mut self, now: Now, tasks: &[message::Task<'_>]) {
        for t in tasks {
            match Order::parse(t) {
                Ok(order) => {
                    if let Order::SetSchedule(every) = order {
                        self.set_schedule(now.at, every);
                    }
                    self.running_tasks = self.running_tasks.saturating_add(1);
                    self.emit(Event::Task { id: t.id, order });
                }
                Err(detail) => {
                    self.emit(Event::TaskRefused {
                        id: t.id,
                        detail: detail.clone(),
                    });
                    let _ = self.results.push_back(Outcome {
                        id: t.id,
                        ok: false,
                        detail,
                    });
                }
            }
        }
    }

    /// Places the delivery cursor after the cloud's newest batch of ours.
    fn reconcile<J: Journal>(
        &mut self,
        journal: &mut J,
        last: Option<BatchId>,
    ) -> Result<(), J::Error> {
        let mut found = None;
        let mut after = None;
        while let Some(e) = journal.next(after)? {
            if last == Some(e.id) {
                found = Some(e.pos);
            }
            after = Some(e.pos);
        }
        self.round_limit = after.unwrap_or(0);
        let through = found;
        let before = self.cursor;
        self.cursor = Delivery::Through(through);
        self.cursor_id = through.and(last);
        // The cloud lost what it had acknowledged, or never had it under
        // this agent's name: say so, since the round re-sends it.
        if let Delivery::Through(old) = before {
            if old > through {
                self.emit(Event::Resending {
                    from: journal.next(through)?.map(|e| e.pos),
                });
            }
        } else if last.is_some() && found.is_none() {
            self.emit(Event::Resending { from: None });
        }
        Ok(())
    }

    /// Drops acknowledged batches past retention (all of them when
    /// `everything`, to make room for new readings). True when any went.
    fn prune<J: Journal>(&mut self, journal: &mut J, now: Now, everything: bool) -> bool {
        let Delivery::Through(Some(through)) = self.cursor else {
            return false;
        };
        let mut held_bytes = 0u64;
        let mut after = None;
        // First pass: how much is retained.
        loop {
            match journal.next(after) {
                Ok(Some(e)) if e.pos <= through => {
                    held_bytes = held_bytes.saturating_add(e.len as u64);
                    after = Some(e.pos);
                }
                _ => break,
            }
        }
        let mut removed = false;
        let too_old = |made: Option<u64>| match (made, now.wall_ms) {
            (Some(m), Some(w)) => w.saturating_sub(m) > self.cfg.retention.max_age.millis(),
            _ => false,
        };
        // Oldest first, while over the limits.
        loop {
            let e = match journal.next(None) {
                Ok(Some(e)) if e.pos <= through => e,
                _ => break,
            };
            if !(everything || held_bytes > self.cfg.retention.max_bytes || too_old(e.made_ms)) {
                break;
            }
            if let Err(err) = journal.remove(e.pos) {
                let detail = task::detail(format_args!("journal: {err}"));
                self.emit(Event::JournalFailed { detail });
                break;
            }
            held_bytes = held_bytes.saturating_sub(e.len as u64);
            removed = true;
        }
        removed
    }

    fn fail(&mut self, now: Now, failure: Failure, detail: &str) {
        self.failures = self.failures.saturating_add(1);
        self.hello_ok = false;
        self.round_wanted = true;
        let delay = match failure {
            Failure::Unreachable => self.backoff(),
            Failure::Credentials | Failure::Version => self.cfg.backoff_max,
        };
        self.retry_at = Some(now.at.saturating_add(delay));
        self.emit(Event::Failed {
            failure,
            retry_in: delay,
            detail: task::truncated(detail),
        });
    }

    /// `backoff_min` doubling per consecutive failure up to `backoff_max`,
    /// then a random 20 % taken off so agents that failed together do not
    /// retry together.
    fn backoff(&mut self) -> Duration {
        let doublings = self.failures.saturating_sub(1).min(20);
        let base = self
            .cfg
            .backoff_min
            .millis()
            .saturating_mul(1u64 << doublings)
            .min(self.cfg.backoff_max.millis());
        let jitter = self
            .next_random()
            .checked_rem((base / 5).max(1))
            .unwrap_or(0);
        Duration::from_millis(base.saturating_sub(jitter))
    }

    /// splitmix64: small, seedable, and enough for jitter.
    fn next_random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(crate::mix::GOLDEN_GAMMA);
        crate::mix::mix(self.rng)
    }
}

fn response_name(r: &Response<'_>) -> &'static str {
    match r {
        Response::Enrolled { .. } => "enrolled",
        Response::Welcome { .. } => "welcome",
        Response::Ack { .. } => "ack",
        Response::Noted => "noted",
        Response::Tasks(_) => "tasks",
        Response::Rejected { .. } => "rejected",
        Response::Forward { .. } => "forward",
        Response::RelayIdle => "relay_idle",
        Response::RelayClosed => "relay_closed",
    }
}
