//! The messages of the sync protocol, as views that borrow the body they were
//! decoded from. Every message is a CBOR map with small integer keys: key 0 is
//! the protocol version, key 1 the kind, and unknown keys are skipped so a
//! newer peer can add fields without breaking an older one.

use super::batch::BatchId;
use super::cbor::{self, Enc, EncResult, array_len, map_len};
use super::{Clock, Error, VERSION};
use heapless::Vec;
use minicbor::Decoder;
use minicbor::encode::write::{Cursor, Write};

/// How many tasks one `tasks` response carries at most; the agent polls again
/// for the rest.
pub const MAX_TASKS: usize = 16;

mod key {
    pub const VERSION: u64 = 0;
    pub const KIND: u64 = 1;
    pub const TOKEN: u64 = 2;
    pub const AGENT_VERSION: u64 = 3;
    pub const HOSTNAME: u64 = 4;
    pub const CAPABILITIES: u64 = 5;
    pub const CLOCK: u64 = 6;
    pub const POSITION: u64 = 7;
    pub const READINGS: u64 = 8;
    pub const TASK: u64 = 9;
    pub const OK: u64 = 10;
    pub const DETAIL: u64 = 11;
    pub const AGENT_ID: u64 = 12;
    pub const SECRET: u64 = 13;
    pub const CUSTOMER: u64 = 14;
    pub const SERVER_MS: u64 = 15;
    pub const POLL_INTERVAL: u64 = 17;
    pub const STORED: u64 = 18;
    pub const TASKS: u64 = 19;
    pub const CODE: u64 = 20;
    pub const REASON: u64 = 21;
    pub const BATCH: u64 = 22;
    pub const LAST_BATCH: u64 = 23;
    pub const HELD: u64 = 24;
    pub const DUPLICATE: u64 = 25;
    pub const AFTER: u64 = 26;
    pub const HOLD_MAX: u64 = 27;
    pub const WAIT: u64 = 28;
    pub const SESSION: u64 = 29;
    pub const SEQ: u64 = 30;
    pub const STATUS: u64 = 31;
    pub const HEAD: u64 = 32;
    pub const BODY: u64 = 33;
    pub const REFUSED: u64 = 34;
    pub const METHOD: u64 = 35;
    pub const PATH: u64 = 36;
}

mod kind {
    pub const ENROLL: u64 = 1;
    pub const HELLO: u64 = 2;
    pub const UPLOAD: u64 = 3;
    pub const TASK_POLL: u64 = 4;
    pub const TASK_RESULT: u64 = 5;
    pub const LISTEN: u64 = 6;
    pub const RELAY: u64 = 7;
    pub const FORWARD: u64 = 71;
    pub const RELAY_IDLE: u64 = 72;
    pub const RELAY_CLOSED: u64 = 73;
    pub const ENROLLED: u64 = 65;
    pub const WELCOME: u64 = 66;
    pub const ACK: u64 = 67;
    pub const TASKS: u64 = 68;
    pub const REJECTED: u64 = 69;
    pub const NOTED: u64 = 70;
}

/// Capability bits an agent announces in `hello`.
pub mod capability {
    /// Runs `rescan` and `poll_device` tasks.
    pub const POLL_TASKS: u32 = 1;
    /// Keeps unacknowledged batches across restarts (store-and-forward).
    pub const JOURNAL: u32 = 2;
    /// Accepts `set_targets`, `set_schedule` and `set_log_level`.
    pub const SETTINGS: u32 = 4;
    /// Keeps a `listen` request open between rounds (the push channel).
    pub const LISTEN: u32 = 8;
    /// Relays a dealer's browser to a device's web page (`open_web`).
    pub const WEB_ACCESS: u32 = 16;
}

/// The readings of one upload: CBOR items already encoded (by
/// [`super::reading::encode`]), kept as the bytes they span so that a batch
/// journaled to disk is re-sent byte for byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Readings<'b> {
    raw: &'b [u8],
    count: u64,
}

impl<'b> Readings<'b> {
    /// `raw` is `count` encoded readings, one after the other.
    pub fn new(raw: &'b [u8], count: u64) -> Self {
        Readings { raw, count }
    }

    pub fn len(&self) -> u64 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn raw(&self) -> &'b [u8] {
        self.raw
    }

    /// Each reading in turn; a malformed one is an error for itself.
    pub fn iter(&self) -> impl Iterator<Item = Result<super::reading::Reading<'b>, Error>> + 'b {
        let mut d = Decoder::new(self.raw);
        (0..self.count).map(move |_| super::reading::decode_from(&mut d))
    }
}

/// What the agent sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request<'b> {
    /// Trade a one-time enrollment token for an agent id and secret.
    Enroll {
        token: &'b str,
        agent_version: &'b str,
        hostname: &'b str,
    },
    /// Opens a session: who the agent is, what it can do, what its clock says.
    Hello {
        agent_version: &'b str,
        capabilities: u32,
        clock: Clock,
    },
    /// A batch of readings, named by its content digest. `position` is the
    /// batch's place in the agent's journal, for logs only: the cloud keys
    /// batches on `batch`, so numbering can never block delivery.
    Upload {
        batch: BatchId,
        /// The batch before this one in the agent's journal, which the
        /// cloud must hold before it stores this one (`None`: the first the
        /// journal holds). It keeps what the cloud holds a prefix of the
        /// journal even when the cloud is restored from a backup while a
        /// round is under way.
        after: Option<BatchId>,
        position: u64,
        sent: Clock,
        readings: Readings<'b>,
    },
    /// Asks for the tasks waiting for this agent.
    TaskPoll,
    /// How a task ended.
    TaskResult {
        task: u64,
        ok: bool,
        detail: &'b str,
    },
    /// The push channel: asks for tasks like [`Request::TaskPoll`], but the
    /// cloud holds the answer until a task is there or `wait_s` seconds (at
    /// most the `hold_max_s` of its `welcome`) have passed, then answers
    /// `tasks`, empty when none came.
    Listen { wait_s: u32 },
    /// Device Web Access: the agent's side of a session's tunnel. Carries
    /// the answer to the last request forwarded (none at first) and asks
    /// for the next; the cloud holds it until a browser request comes.
    Relay {
        session: u64,
        answer: Option<RelayAnswer<'b>>,
    },
}

/// What the device answered to a forwarded request, or why the agent did
/// not forward it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayAnswer<'b> {
    pub seq: u64,
    pub status: u16,
    /// The answer's header lines (`Name: value` CRLF each), hop-by-hop ones
    /// removed.
    pub head: &'b [u8],
    pub body: &'b [u8],
    /// Set when the agent refused: nothing (or no body) was relayed.
    pub refused: Option<&'b str>,
}

/// A task the cloud hands the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Task<'b> {
    pub id: u64,
    /// One of [`TaskKind`]'s names; an agent reports a kind it does not know
    /// as a failed task rather than dropping it.
    pub kind: &'b str,
    /// The task's argument (targets, a device address, a schedule, a level).
    pub arg: &'b str,
}

/// The task kinds this version defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskKind {
    Rescan,
    PollDevice,
    SetTargets,
    SetSchedule,
    SetLogLevel,
    OpenWeb,
}

impl TaskKind {
    pub const ALL: [TaskKind; 6] = [
        TaskKind::Rescan,
        TaskKind::PollDevice,
        TaskKind::SetTargets,
        TaskKind::SetSchedule,
        TaskKind::SetLogLevel,
        TaskKind::OpenWeb,
    ];

    pub fn id(self) -> &'static str {
        match self {
            TaskKind::Rescan => "rescan",
            TaskKind::PollDevice => "poll_device",
            TaskKind::SetTargets => "set_targets",
            TaskKind::SetSchedule => "set_schedule",
            TaskKind::SetLogLevel => "set_log_level",
            TaskKind::OpenWeb => "open_web",
        }
    }

    pub fn parse(id: &str) -> Option<TaskKind> {
        TaskKind::ALL.into_iter().find(|k| k.id() == id)
    }
}

/// What the cloud answers.
// The task list makes one variant large; a response is decoded once per
// exchange and the core has no allocator to box it into.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response<'b> {
    Enrolled {
        agent_id: &'b str,
        secret: &'b str,
        customer: &'b str,
    },
    Welcome {
        server_ms: u64,
        /// The newest batch this agent delivered that the cloud holds: the
        /// agent's journal is delivered in order, so every batch journaled
        /// before it is held too, and every one after it is not (a cloud
        /// restored from an older backup names an older batch).
        last_batch: Option<BatchId>,
        /// How many of this agent's batches the cloud holds.
        held: u64,
        poll_interval_s: u32,
        /// How long the cloud holds a `listen` request at most (0: it offers
        /// no push channel, and the agent polls for tasks).
        hold_max_s: u32,
    },
    /// A batch is safe in the cloud.
    Ack {
        batch: BatchId,
        /// Readings this request stored (0 when the batch was held already).
        stored: u32,
        /// The cloud held the batch already (a lost ack, a restored agent, a
        /// re-enrolled one): nothing was stored twice.
        duplicate: bool,
    },
    /// A task result was recorded.
    Noted,
    Tasks(Vec<Task<'b>, MAX_TASKS>),
    /// The request was refused; `code` is the HTTP status that carried it.
    Rejected {
        code: u16,
        reason: &'b str,
    },
    /// A browser's request to relay to the session's device.
    Forward {
        seq: u64,
        method: &'b str,
        /// Origin form (`/…`); the agent refuses anything else.
        path: &'b str,
        /// The request's header lines, the cloud's own cookies removed.
        head: &'b [u8],
        body: &'b [u8],
    },
    /// No browser request came within the hold: ask again.
    RelayIdle,
    /// The session has ended (closed, expired, idle): stop relaying.
    RelayClosed,
}

fn header<W: Write>(e: &mut Enc<W>, entries: u64, kind: u64) -> EncResult {
    e.map(entries.saturating_add(2))?
        .u64(key::VERSION)?
        .u64(VERSION)?
        .u64(key::KIND)?
        .u64(kind)?;
    Ok(())
}

/// An upload up to its readings: the session writes the journal record (the
/// readings array) right after it, then [`put_upload_tail`].
pub(crate) fn put_upload_head<W: Write>(
    e: &mut Enc<W>,
    position: u64,
    sent: &Clock,
    has_after: bool,
) -> EncResult {
    header(e, if has_after { 5 } else { 4 }, kind::UPLOAD)?;
    e.u64(key::CLOCK)?;
    cbor::put_clock(e, sent)?;
    e.u64(key::POSITION)?.u64(position)?;
    e.u64(key::READINGS)?;
    Ok(())
}

/// An upload after its readings.
pub(crate) fn put_upload_tail<W: Write>(
    e: &mut Enc<W>,
    batch: &BatchId,
    after: Option<&BatchId>,
) -> EncResult {
    e.u64(key::BATCH)?.bytes(&batch.0)?;
    if let Some(a) = after {
        e.u64(key::AFTER)?.bytes(&a.0)?;
    }
    Ok(())
}

impl Request<'_> {
    /// Encodes into `buf`, returning the length used.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let mut e = Enc::new(Cursor::new(buf));
        self.encode_to(&mut e)?;
        Ok(e.into_writer().position())
    }

    /// The length [`Request::encode`] needs.
    pub fn encoded_len(&self) -> usize {
        let mut e = Enc::new(cbor::Counter::default());
        // Counting cannot fail.
        let _ = self.encode_to(&mut e);
        e.into_writer().len()
    }

    fn encode_to<W: Write>(&self, e: &mut Enc<W>) -> EncResult {
        match self {
            Request::Enroll {
                token,
                agent_version,
                hostname,
            } => {
                header(e, 3, kind::ENROLL)?;
                e.u64(key::TOKEN)?.str(token)?;
                e.u64(key::AGENT_VERSION)?.str(agent_version)?;
                e.u64(key::HOSTNAME)?.str(hostname)?;
            }
            Request::Hello {
                agent_version,
                capabilities,
                clock,
            } => {
                header(e, 3, kind::HELLO)?;
                e.u64(key::AGENT_VERSION)?.str(agent_version)?;
                e.u64(key::CAPABILITIES)?.u32(*capabilities)?;
                e.u64(key::CLOCK)?;
                cbor::put_clock(e, clock)?;
            }
            Request::Upload {
                batch,
                after,
                position,
                sent,
                readings,
            } => {
                put_upload_head(e, *position, sent, after.is_some())?;
                e.array(readings.count)?;
                cbor::put_raw(e, readings.raw)?;
                put_upload_tail(e, batch, after.as_ref())?;
            }
            Request::TaskPoll => header(e, 0, kind::TASK_POLL)?,
            Request::Listen { wait_s } => {
                header(e, 1, kind::LISTEN)?;
                e.u64(key::WAIT)?.u32(*wait_s)?;
            }
            Request::Relay { session, answer } => {
                let extra = match answer {
                    None => 0,
                    Some(a) => 4u64.saturating_add(u64::from(a.refused.is_some())),
                };
                header(e, 1u64.saturating_add(extra), kind::RELAY)?;
                e.u64(key::SESSION)?.u64(*session)?;
                if let Some(a) = answer {
                    e.u64(key::SEQ)?.u64(a.seq)?;
                    e.u64(key::STATUS)?.u16(a.status)?;
                    e.u64(key::HEAD)?.bytes(a.head)?;
                    e.u64(key::BODY)?.bytes(a.body)?;
                    if let Some(r) = a.refused {
                        e.u64(key::REFUSED)?.str(r)?;
                    }
                }
            }
            Request::TaskResult { task, ok, detail } => {
                header(e, 3, kind::TASK_RESULT)?;
                e.u64(key::TASK)?.u64(*task)?;
                e.u64(key::OK)?.bool(*ok)?;
                e.u64(key::DETAIL)?.str(detail)?;
            }
        }
        Ok(())
    }
}

impl Response<'_> {
    /// Encodes into `buf`, returning the length used.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let mut e = Enc::new(Cursor::new(buf));
        self.encode_to(&mut e, VERSION)?;
        Ok(e.into_writer().position())
    }

    /// The length [`Response::encode`] needs.
    pub fn encoded_len(&self) -> usize {
        let mut e = Enc::new(cbor::Counter::default());
        let _ = self.encode_to(&mut e, VERSION);
        e.into_writer().len()
    }

    /// Encodes a refusal in protocol `version`'s framing, so an agent that
    /// speaks an older version can still read why it was refused (the
    /// `rejected` message has kept its shape since version 1).
    pub fn encode_rejection(
        version: u64,
        code: u16,
        reason: &str,
        buf: &mut [u8],
    ) -> Result<usize, Error> {
        let mut e = Enc::new(Cursor::new(buf));
        Response::Rejected { code, reason }.encode_to(&mut e, version)?;
        Ok(e.into_writer().position())
    }

    fn encode_to<W: Write>(&self, e: &mut Enc<W>, version: u64) -> EncResult {
        let header = |e: &mut Enc<W>, entries: u64, kind: u64| -> EncResult {
            e.map(entries.saturating_add(2))?
                .u64(key::VERSION)?
                .u64(version)?
                .u64(key::KIND)?
                .u64(kind)?;
            Ok(())
        };
        match self {
            Response::Enrolled {
                agent_id,
                secret,
                customer,
            } => {
                header(e, 3, kind::ENROLLED)?;
                e.u64(key::AGENT_ID)?.str(agent_id)?;
                e.u64(key::SECRET)?.str(secret)?;
                e.u64(key::CUSTOMER)?.str(customer)?;
            }
            Response::Welcome {
                server_ms,
                last_batch,
                held,
                poll_interval_s,
                hold_max_s,
            } => {
                let entries = 3u64
                    .saturating_add(u64::from(last_batch.is_some()))
                    .saturating_add(u64::from(*hold_max_s > 0));
                header(e, entries, kind::WELCOME)?;
                e.u64(key::SERVER_MS)?.u64(*server_ms)?;
                e.u64(key::POLL_INTERVAL)?.u32(*poll_interval_s)?;
                if let Some(b) = last_batch {
                    e.u64(key::LAST_BATCH)?.bytes(&b.0)?;
                }
                e.u64(key::HELD)?.u64(*held)?;
                // Absent when 0: what an older cloud says, by omission.
                if *hold_max_s > 0 {
                    e.u64(key::HOLD_MAX)?.u32(*hold_max_s)?;
                }
            }
            Response::Ack {
                batch,
                stored,
                duplicate,
            } => {
                header(e, 3, kind::ACK)?;
                e.u64(key::STORED)?.u32(*stored)?;
                e.u64(key::BATCH)?.bytes(&batch.0)?;
                e.u64(key::DUPLICATE)?.bool(*duplicate)?;
            }
            Response::Noted => header(e, 0, kind::NOTED)?,
            Response::Tasks(tasks) => {
                header(e, 1, kind::TASKS)?;
                e.u64(key::TASKS)?.array(tasks.len() as u64)?;
                for t in tasks {
                    e.map(3)?;
                    e.u8(0)?.u64(t.id)?;
                    e.u8(1)?.str(t.kind)?;
                    e.u8(2)?.str(t.arg)?;
                }
            }
            Response::Rejected { code, reason } => {
                header(e, 2, kind::REJECTED)?;
                e.u64(key::CODE)?.u16(*code)?;
                e.u64(key::REASON)?.str(reason)?;
            }
            Response::Forward {
                seq,
                method,
                path,
                head,
                body,
            } => {
                header(e, 5, kind::FORWARD)?;
                e.u64(key::SEQ)?.u64(*seq)?;
                e.u64(key::METHOD)?.str(method)?;
                e.u64(key::PATH)?.str(path)?;
                e.u64(key::HEAD)?.bytes(head)?;
                e.u64(key::BODY)?.bytes(body)?;
            }
            Response::RelayIdle => header(e, 0, kind::RELAY_IDLE)?,
            Response::RelayClosed => header(e, 0, kind::RELAY_CLOSED)?,
        }
        Ok(())
    }
}

/// The fields any message may carry, gathered in one pass over its map.
#[derive(Default)]
struct Fields<'b> {
    version: Option<u64>,
    kind: Option<u64>,
    token: Option<&'b str>,
    agent_version: Option<&'b str>,
    hostname: Option<&'b str>,
    capabilities: Option<u32>,
    clock: Option<Clock>,
    position: Option<u64>,
    batch: Option<BatchId>,
    after: Option<BatchId>,
    last_batch: Option<BatchId>,
    held: Option<u64>,
    duplicate: Option<bool>,
    readings: Option<Readings<'b>>,
    task: Option<u64>,
    ok: Option<bool>,
    detail: Option<&'b str>,
    agent_id: Option<&'b str>,
    secret: Option<&'b str>,
    customer: Option<&'b str>,
    server_ms: Option<u64>,
    poll_interval: Option<u32>,
    hold_max: Option<u32>,
    wait: Option<u32>,
    session: Option<u64>,
    seq: Option<u64>,
    status: Option<u16>,
    head: Option<&'b [u8]>,
    body: Option<&'b [u8]>,
    refused: Option<&'b str>,
    method: Option<&'b str>,
    path: Option<&'b str>,
    stored: Option<u32>,
    tasks: Option<Vec<Task<'b>, MAX_TASKS>>,
    code: Option<u16>,
    reason: Option<&'b str>,
}

fn readings<'b>(d: &mut Decoder<'b>) -> Result<Readings<'b>, Error> {
    let count = array_len(d)?;
    let start = d.position();
    for _ in 0..count {
        d.skip()?;
    }
    let raw = d
        .input()
        .get(start..d.position())
        .ok_or(Error::Cbor { at: start })?;
    Ok(Readings { raw, count })
}

fn task<'b>(d: &mut Decoder<'b>) -> Result<Task<'b>, Error> {
    let (mut id, mut kind, mut arg) = (None, None, "");
    for _ in 0..map_len(d)? {
        match d.u64()? {
            0 => id = Some(d.u64()?),
            1 => kind = Some(d.str()?),
            2 => arg = d.str()?,
            _ => d.skip()?,
        }
    }
    Ok(Task {
        id: id.ok_or(Error::Missing("task.id"))?,
        kind: kind.ok_or(Error::Missing("task.kind"))?,
        arg,
    })
}

fn batch_id(d: &mut Decoder<'_>) -> Result<BatchId, Error> {
    d.bytes()?
        .try_into()
        .map(BatchId)
        .map_err(|_| Error::Invalid("batch id (must be 32 bytes)"))
}

fn tasks<'b>(d: &mut Decoder<'b>) -> Result<Vec<Task<'b>, MAX_TASKS>, Error> {
    let mut out = Vec::new();
    for _ in 0..array_len(d)? {
        out.push(task(d)?).map_err(|_| Error::TooMany("tasks"))?;
    }
    Ok(out)
}

impl<'b> Fields<'b> {
    fn decode(body: &'b [u8]) -> Result<Self, Error> {
        let mut d = Decoder::new(body);
        let mut f = Fields::default();
        for _ in 0..map_len(&mut d)? {
            match d.u64()? {
                key::VERSION => f.version = Some(d.u64()?),
                key::KIND => f.kind = Some(d.u64()?),
                key::TOKEN => f.token = Some(d.str()?),
                key::AGENT_VERSION => f.agent_version = Some(d.str()?),
                key::HOSTNAME => f.hostname = Some(d.str()?),
                key::CAPABILITIES => f.capabilities = Some(d.u32()?),
                key::CLOCK => f.clock = Some(cbor::clock(&mut d)?),
                key::POSITION => f.position = Some(d.u64()?),
                key::BATCH => f.batch = Some(batch_id(&mut d)?),
                key::AFTER => f.after = Some(batch_id(&mut d)?),
                key::LAST_BATCH => f.last_batch = Some(batch_id(&mut d)?),
                key::HELD => f.held = Some(d.u64()?),
                key::DUPLICATE => f.duplicate = Some(d.bool()?),
                key::READINGS => f.readings = Some(readings(&mut d)?),
                key::TASK => f.task = Some(d.u64()?),
                key::OK => f.ok = Some(d.bool()?),
                key::DETAIL => f.detail = Some(d.str()?),
                key::AGENT_ID => f.agent_id = Some(d.str()?),
                key::SECRET => f.secret = Some(d.str()?),
                key::CUSTOMER => f.customer = Some(d.str()?),
                key::SERVER_MS => f.server_ms = Some(d.u64()?),
                key::POLL_INTERVAL => f.poll_interval = Some(d.u32()?),
                key::HOLD_MAX => f.hold_max = Some(d.u32()?),
                key::WAIT => f.wait = Some(d.u32()?),
                key::SESSION => f.session = Some(d.u64()?),
                key::SEQ => f.seq = Some(d.u64()?),
                key::STATUS => f.status = Some(d.u16()?),
                key::HEAD => f.head = Some(d.bytes()?),
                key::BODY => f.body = Some(d.bytes()?),
                key::REFUSED => f.refused = Some(d.str()?),
                key::METHOD => f.method = Some(d.str()?),
                key::PATH => f.path = Some(d.str()?),
                key::STORED => f.stored = Some(d.u32()?),
                key::TASKS => f.tasks = Some(tasks(&mut d)?),
                key::CODE => f.code = Some(d.u16()?),
                key::REASON => f.reason = Some(d.str()?),
                _ => d.skip()?,
            }
        }
        if d.position() != body.len() {
            return Err(Error::Cbor { at: d.position() });
        }
        match f.version {
            Some(VERSION) => Ok(f),
            Some(other) => Err(Error::Version(other)),
            None => Err(Error::Missing("version")),
        }
    }

    fn kind(&self) -> Result<u64, Error> {
        self.kind.ok_or(Error::Missing("kind"))
    }
}

fn need<T>(v: Option<T>, field: &'static str) -> Result<T, Error> {
    v.ok_or(Error::Missing(field))
}

impl<'b> Request<'b> {
    /// Decodes a request body; trailing bytes after the message are an error.
    pub fn decode(body: &'b [u8]) -> Result<Self, Error> {
        let f = Fields::decode(body)?;
        Ok(match f.kind()? {
            kind::ENROLL => Request::Enroll {
                token: need(f.token, "token")?,
                agent_version: need(f.agent_version, "agent_version")?,
                hostname: f.hostname.unwrap_or(""),
            },
            kind::HELLO => Request::Hello {
                agent_version: need(f.agent_version, "agent_version")?,
                capabilities: f.capabilities.unwrap_or(0),
                clock: need(f.clock, "clock")?,
            },
            kind::UPLOAD => Request::Upload {
                batch: need(f.batch, "batch")?,
                after: f.after,
                position: f.position.unwrap_or(0),
                sent: need(f.clock, "clock")?,
                readings: need(f.readings, "readings")?,
            },
            kind::TASK_POLL => Request::TaskPoll,
            kind::LISTEN => Request::Listen {
                wait_s: need(f.wait, "wait")?,
            },
            kind::RELAY => Request::Relay {
                session: need(f.session, "session")?,
                answer: match f.seq {
                    None => None,
                    Some(seq) => Some(RelayAnswer {
                        seq,
                        status: need(f.status, "status")?,
                        head: f.head.unwrap_or(&[]),
                        body: f.body.unwrap_or(&[]),
                        refused: f.refused,
                    }),
                },
            },
            kind::TASK_RESULT => Request::TaskResult {
                task: need(f.task, "task")?,
                ok: need(f.ok, "ok")?,
                detail: f.detail.unwrap_or(""),
            },
            other => return Err(Error::Kind(other)),
        })
    }
}

impl<'b> Response<'b> {
    /// Decodes a response body; trailing bytes after the message are an error.
    pub fn decode(body: &'b [u8]) -> Result<Self, Error> {
        let f = Fields::decode(body)?;
        Ok(match f.kind()? {
            kind::ENROLLED => Response::Enrolled {
                agent_id: need(f.agent_id, "agent_id")?,
                secret: need(f.secret, "secret")?,
                customer: f.customer.unwrap_or(""),
            },
            kind::WELCOME => Response::Welcome {
                server_ms: need(f.server_ms, "server_ms")?,
                last_batch: f.last_batch,
                held: f.held.unwrap_or(0),
                poll_interval_s: f.poll_interval.unwrap_or(0),
                hold_max_s: f.hold_max.unwrap_or(0),
            },
            kind::ACK => Response::Ack {
                batch: need(f.batch, "batch")?,
                stored: f.stored.unwrap_or(0),
                duplicate: f.duplicate.unwrap_or(false),
            },
            kind::NOTED => Response::Noted,
            kind::TASKS => Response::Tasks(f.tasks.unwrap_or_default()),
            kind::REJECTED => Response::Rejected {
                code: need(f.code, "code")?,
                reason: f.reason.unwrap_or(""),
            },
            kind::FORWARD => Response::Forward {
                seq: need(f.seq, "seq")?,
                method: need(f.method, "method")?,
                path: need(f.path, "path")?,
                head: f.head.unwrap_or(&[]),
                body: f.body.unwrap_or(&[]),
            },
            kind::RELAY_IDLE => Response::RelayIdle,
            kind::RELAY_CLOSED => Response::RelayClosed,
            other => return Err(Error::Kind(other)),
        })
    }
}
