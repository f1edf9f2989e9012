//! Walking one device through the model's walk plan, sans I/O.
//!
//! The walker turns a plan (scalars to GET, subtrees to walk) into SNMP
//! requests and feeds every varbind it receives to a [`Sink`] (the snapshot
//! builder). It never touches a socket or a clock: the shell calls
//! [`Walker::poll_transmit`] for the next datagram, hands answers to
//! [`Walker::handle_datagram`], sleeps until [`Walker::poll_timeout`] and
//! then calls [`Walker::handle_timeout`].
//!
//! What a field agent needs from a walk, and how it is done:
//! - **one request in flight** per device: a printer is not a server;
//! - **GetBulk** over several columns at once, with max-repetitions that
//!   shrink on `tooBig` and grow again while answers come back whole;
//! - **GETNEXT fallback**, detected and kept: a device that answers GetBulk
//!   with an error, or answers only SNMPv1 (v2c requests time out), is
//!   walked with GETNEXT in the version it speaks;
//! - **retries with backoff** (the timeout doubles), the same request-id on
//!   each retry so a late answer still counts, and a per-device deadline;
//! - **SNMPv1 errors** handled as v1 agents mean them: `noSuchName` on a GET
//!   drops that scalar, on a GETNEXT ends that column;
//! - answers that are not ours (other request-ids, late duplicates, other
//!   versions or communities, garbage) are counted and ignored;
//! - a walk never loops: a column ends when the agent leaves its subtree,
//!   reports endOfMibView, or returns a name that does not increase.

use super::credentials::Credentials;
use super::envelope::{Answer, Envelope};
use crate::ber::OidBuf;
use crate::printer::SnapshotBuilder;
use crate::printer::plan::Read;
#[cfg(feature = "usm")]
use crate::snmp::usm::{ReportKind, UsmError};
use crate::snmp::{ErrorStatus, Pdu, PduType, Value, VarBind, Version};
use crate::time::{Duration, Instant};
use heapless::Vec;

/// Where walked varbinds go.
pub trait Sink {
    fn push(&mut self, vb: &VarBind<'_>);
}

impl Sink for SnapshotBuilder {
    fn push(&mut self, vb: &VarBind<'_>) {
        SnapshotBuilder::push(self, vb);
    }
}

/// How to talk to the device.
#[derive(Debug, Clone)]
pub struct WalkConfig {
    /// The community or user; a v2c community falls back to v1 when v2c
    /// gets no answer at all.
    pub credentials: Credentials,
    /// The largest answer we can take in (SNMPv3 tells the device).
    pub max_message_size: u16,
    /// Timeout of the first try of a request; it doubles on each retry.
    pub timeout: Duration,
    pub retries: u8,
    /// The whole walk must end within this.
    pub deadline: Duration,
    /// Initial GetBulk max-repetitions (1..=100); adapted as the walk goes.
    pub max_repetitions: u8,
    /// Columns walked by one request.
    pub columns: u8,
    /// Scalars fetched by one GET.
    pub scalars: u8,
}

impl WalkConfig {
    /// A v2c community walk.
    pub fn new(community: &[u8]) -> Self {
        Self::with_credentials(Credentials::community(community))
    }

    pub fn with_credentials(credentials: Credentials) -> Self {
        Self {
            credentials,
            max_message_size: 65507,
            timeout: Duration::from_millis(1000),
            retries: 2,
            deadline: Duration::from_secs(60),
            max_repetitions: 10,
            columns: 4,
            scalars: 24,
        }
    }
}

/// Why a walk failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalkError {
    /// Nothing came back, in any version tried.
    NoAnswer,
    /// The device answered but stopped answering before the walk ended.
    StoppedAnswering,
    /// The per-device deadline passed first.
    Deadline,
    /// SNMPv3 security refused the walk (the device's Report, or our
    /// checks of its answers).
    #[cfg(feature = "usm")]
    Usm(UsmError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalkState {
    Running,
    Done,
    Failed(WalkError),
}

/// What a walk did, for logs and progress.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WalkStats {
    pub requests: u32,
    pub retries: u32,
    pub responses: u32,
    /// Datagrams that were not an answer to the request in flight.
    pub ignored: u32,
    pub too_big: u32,
    /// Requests made smaller after going unanswered (see `handle_timeout`).
    pub shrunk_after_silence: u32,
    /// Requests sent again after the engine's clock was learnt anew
    /// (notInTimeWindow: it rebooted, or our estimate drifted).
    pub resyncs: u32,
    /// Times the engine was discovered (v3).
    pub discoveries: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Bulk,
    Next,
}

#[derive(Debug, Clone)]
struct Column {
    root: &'static [u32],
    cursor: OidBuf<128>,
    done: bool,
}

#[derive(Debug, Clone)]
enum Request {
    /// Indexes into `gets`.
    Get(Vec<u8, 32>),
    /// Indexes into `columns`.
    Walk(Vec<u8, 16>),
    /// SNMPv3: learn the engine's id and clock.
    #[cfg(feature = "usm")]
    Discover,
    /// SNMPv3: sysObjectID without privacy, after requests with privacy
    /// went unanswered (see `Envelope::start_privacy_check`).
    #[cfg(feature = "usm")]
    PrivacyCheck,
}

#[derive(Debug, Clone)]
struct Outstanding {
    request_id: i32,
    request: Request,
    expires: Instant,
    attempt: u8,
    needs_send: bool,
}

const MAX_REPETITIONS_CAP: u8 = 50;

/// Unanswered requests made smaller per walk at most: each costs a full
/// round of retries, and a device that went away must fail soon.
const MAX_SHRINKS_AFTER_SILENCE: u32 = 4;

/// Room for the encoding of any scalar of the plan (a test checks that
/// each fits).
const SCALAR_OID_LEN: usize = 48;

/// Clock resynchronisations and rediscoveries per walk at most: an engine
/// whose Reports keep changing must fail, not loop.
#[cfg(feature = "usm")]
const MAX_RESYNCS: u32 = 3;

/// sysObjectID.0, asked by the privacy check.
#[cfg(feature = "usm")]
const SYS_OBJECT_ID: &[u32] = &[1, 3, 6, 1, 2, 1, 1, 2, 0];

/// Walks one device.
#[derive(Debug, Clone)]
pub struct Walker {
    cfg: WalkConfig,
    envelope: Envelope,
    /// A v3 answer that claimed to be ours and failed a check: the reason
    /// given if the walk then gets nothing.
    #[cfg(feature = "usm")]
    last_refusal: Option<UsmError>,
    mode: Mode,
    gets: Vec<(&'static [u32], bool), 64>,
    columns: Vec<Column, 32>,
    max_repetitions: u8,
    /// How far `max_repetitions` may grow again: lowered when an answer
    /// that large never arrived.
    repetitions_ceiling: u8,
    columns_per_request: u8,
    scalars_per_request: u8,
    next_request_id: i32,
    outstanding: Option<Outstanding>,
    deadline: Instant,
    answered: bool,
    state: WalkState,
    stats: WalkStats,
}

impl Walker {
    /// A walker over `plan`, starting now. `request_id_seed` should differ
    /// between walkers sharing a socket (and be random in the field).
    pub fn new(
        cfg: WalkConfig,
        plan: impl IntoIterator<Item = Read>,
        request_id_seed: i32,
        now: Instant,
    ) -> Self {
        let mut w = Self::idle();
        w.restart(cfg, plan, request_id_seed, now);
        w
    }

    /// A walker with nothing to do (its state is `Done`), to be started
    /// with [`Walker::restart`].
    pub fn idle() -> Self {
        Self {
            cfg: WalkConfig::new(b""),
            envelope: Envelope::new(Credentials::community(b""), 0, Instant::from_millis(0)),
            #[cfg(feature = "usm")]
            last_refusal: None,
            mode: Mode::Bulk,
            gets: Vec::new(),
            columns: Vec::new(),
            max_repetitions: 1,
            repetitions_ceiling: MAX_REPETITIONS_CAP,
            columns_per_request: 1,
            scalars_per_request: 1,
            next_request_id: 0,
            outstanding: None,
            deadline: Instant::from_millis(0),
            answered: false,
            state: WalkState::Done,
            stats: WalkStats::default(),
        }
    }

    /// Starts a new walk where this one lies: a walker is a few KiB, and a
    /// device with little RAM reuses one rather than build a new one on
    /// its stack for every printer.
    pub fn restart(
        &mut self,
        cfg: WalkConfig,
        plan: impl IntoIterator<Item = Read>,
        request_id_seed: i32,
        now: Instant,
    ) {
        self.gets.clear();
        self.columns.clear();
        for read in plan {
            match read {
                Read::Get(oid) => {
                    let _ = self.gets.push((oid, false));
                }
                Read::Walk(root) => {
                    if let Ok(cursor) = OidBuf::from_arcs(root) {
                        let _ = self.columns.push(Column {
                            root,
                            cursor,
                            done: false,
                        });
                    }
                }
            }
        }
        self.mode = if cfg.credentials.version() == Version::V1 {
            Mode::Next
        } else {
            Mode::Bulk
        };
        // Salts must not repeat under one key: spread the seed over all 64
        // bits (DES keeps only the low 32 of the counter).
        let salt_seed = crate::mix::mix((u64::from(request_id_seed as u32) << 32) ^ now.millis());
        self.envelope = Envelope::new(cfg.credentials.clone(), salt_seed, now);
        #[cfg(feature = "usm")]
        {
            self.last_refusal = None;
        }
        self.max_repetitions = cfg.max_repetitions.clamp(1, MAX_REPETITIONS_CAP);
        self.repetitions_ceiling = MAX_REPETITIONS_CAP;
        self.columns_per_request = cfg.columns.clamp(1, 16);
        self.scalars_per_request = cfg.scalars.clamp(1, 32);
        self.deadline = now.saturating_add(cfg.deadline);
        self.cfg = cfg;
        self.next_request_id = request_id_seed & 0x3fff_ffff;
        self.outstanding = None;
        self.answered = false;
        self.state = WalkState::Running;
        self.stats = WalkStats::default();
        self.prepare(now);
    }

    pub fn state(&self) -> WalkState {
        self.state
    }

    pub fn stats(&self) -> WalkStats {
        self.stats
    }

    /// The version the device turned out to speak.
    pub fn version(&self) -> Version {
        self.envelope.version()
    }

    /// Times the device's SNMPv3 engine rebooted during the walk (its
    /// boots count went up), each followed by the walk.
    #[cfg(feature = "usm")]
    pub fn engine_reboots(&self) -> u32 {
        self.envelope.engine().map_or(0, |e| e.reboots())
    }

    /// Whether GetBulk is in use (false after falling back to GETNEXT).
    pub fn uses_bulk(&self) -> bool {
        self.mode == Mode::Bulk
    }

    /// The request-id in flight, to route answers between walkers.
    pub fn request_id(&self) -> Option<i32> {
        self.outstanding.as_ref().map(|o| o.request_id)
    }

    fn new_request_id(&mut self) -> i32 {
        self.next_request_id = self.next_request_id.wrapping_add(1) & 0x3fff_ffff;
        self.next_request_id
    }

    /// Chooses the next request, or ends the walk.
    fn prepare(&mut self, now: Instant) {
        if self.state != WalkState::Running {
            return;
        }
        let request = if self.envelope.needs_engine() {
            self.stats.discoveries = self.stats.discoveries.saturating_add(1);
            discover_request()
        } else {
            self.next_request()
        };
        match request {
            None => {
                self.outstanding = None;
                self.state = WalkState::Done;
            }
            Some(request) => {
                let request_id = self.new_request_id();
                self.outstanding = Some(Outstanding {
                    request_id,
                    request,
                    expires: now.saturating_add(self.cfg.timeout),
                    attempt: 0,
                    needs_send: true,
                });
            }
        }
    }

    fn next_request(&self) -> Option<Request> {
        let mut gets: Vec<u8, 32> = Vec::new();
        for (i, (_, done)) in self.gets.iter().enumerate() {
            if !done && gets.len() < usize::from(self.scalars_per_request) {
                let _ = gets.push(u8::try_from(i).unwrap_or(u8::MAX));
            }
        }
        if !gets.is_empty() {
            return Some(Request::Get(gets));
        }
        let mut cols: Vec<u8, 16> = Vec::new();
        for (i, c) in self.columns.iter().enumerate() {
            if !c.done && cols.len() < usize::from(self.columns_per_request) {
                let _ = cols.push(u8::try_from(i).unwrap_or(u8::MAX));
            }
        }
        (!cols.is_empty()).then_some(Request::Walk(cols))
    }

    /// Writes the next datagram into `buf`; `None` when nothing is due.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        if self.state != WalkState::Running {
            return None;
        }
        let out = self.outstanding.as_ref()?;
        if !out.needs_send {
            return None;
        }
        let (request_id, request) = (out.request_id, out.request.clone());
        let max_size = i32::from(self.cfg.max_message_size);
        #[cfg(feature = "usm")]
        if let Request::Discover = request {
            let n = self.envelope.encode_discovery(request_id, max_size, buf)?;
            self.mark_sent(now);
            return Some(n);
        }
        // Scalars are named by their arcs and encoded here; columns lend
        // their cursors. (Kept small: this runs on a device's stack.)
        let mut names: Vec<OidBuf<SCALAR_OID_LEN>, 32> = Vec::new();
        match &request {
            Request::Get(idx) => {
                for i in idx {
                    if let Some(oid) = self
                        .gets
                        .get(usize::from(*i))
                        .and_then(|(o, _)| OidBuf::from_arcs(o).ok())
                    {
                        let _ = names.push(oid);
                    }
                }
            }
            #[cfg(feature = "usm")]
            Request::PrivacyCheck => {
                if let Ok(oid) = OidBuf::from_arcs(SYS_OBJECT_ID) {
                    let _ = names.push(oid);
                }
            }
            _ => {}
        }
        let mut vbs: Vec<VarBind<'_>, 32> = Vec::new();
        match &request {
            Request::Walk(idx) => {
                for i in idx {
                    if let Some(c) = self.columns.get(usize::from(*i)) {
                        let _ = vbs.push(VarBind::null(c.cursor.as_oid_ref()));
                    }
                }
            }
            _ => {
                for n in &names {
                    let _ = vbs.push(VarBind::null(n.as_oid_ref()));
                }
            }
        }
        let pdu = match (&request, self.mode) {
            (Request::Walk(_), Mode::Bulk) => {
                Pdu::bulk(request_id, 0, i32::from(self.max_repetitions), &vbs[..])
            }
            (Request::Walk(_), Mode::Next) => {
                Pdu::new(PduType::GetNextRequest, request_id, &vbs[..])
            }
            _ => Pdu::new(PduType::GetRequest, request_id, &vbs[..]),
        };
        let n = self.envelope.encode(now, pdu, max_size, buf);
        drop(vbs);
        let n = n?;
        self.mark_sent(now);
        Some(n)
    }

    fn mark_sent(&mut self, now: Instant) {
        if let Some(out) = self.outstanding.as_mut() {
            out.needs_send = false;
            out.expires =
                now.saturating_add(self.cfg.timeout.saturating_mul(1u64 << out.attempt.min(6)));
        }
        self.stats.requests = self.stats.requests.saturating_add(1);
    }

    /// When [`Walker::handle_timeout`] is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state != WalkState::Running {
            return None;
        }
        let expires = self
            .outstanding
            .as_ref()
            .map_or(self.deadline, |o| o.expires);
        Some(expires.min(self.deadline))
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state != WalkState::Running {
            return;
        }
        if now >= self.deadline {
            self.state = WalkState::Failed(WalkError::Deadline);
            return;
        }
        let Some(out) = self.outstanding.as_mut() else {
            return;
        };
        if out.needs_send || now < out.expires {
            return;
        }
        if out.attempt < self.cfg.retries {
            out.attempt = out.attempt.saturating_add(1);
            out.needs_send = true;
            self.stats.retries = self.stats.retries.saturating_add(1);
            return;
        }
        if !self.answered && self.envelope.fall_back_to_v1() {
            // Silence in v2c from the start: a v1-only device.
            self.mode = Mode::Next;
            self.outstanding = None;
            self.prepare(now);
            return;
        }
        #[cfg(feature = "usm")]
        if !self.answered && self.envelope.start_privacy_check() {
            let request_id = self.new_request_id();
            self.outstanding = Some(Outstanding {
                request_id,
                request: Request::PrivacyCheck,
                expires: now,
                attempt: 0,
                needs_send: true,
            });
            return;
        }
        let request = out.request.clone();
        if self.answered
            && self.stats.shrunk_after_silence < MAX_SHRINKS_AFTER_SILENCE
            && self.can_shrink(&request)
        {
            // A device that answered smaller requests and not this one: its
            // answer was most likely too large to arrive (IP fragments
            // dropped on the way, or by a receiver that cannot reassemble
            // them), which no tooBig reports. Ask for less, and never for
            // that much again.
            self.stats.shrunk_after_silence = self.stats.shrunk_after_silence.saturating_add(1);
            if let Request::Walk(_) = request
                && self.mode == Mode::Bulk
            {
                self.repetitions_ceiling = (self.max_repetitions / 2).max(1);
            }
            self.shrink(&request);
            self.outstanding = None;
            self.prepare(now);
            return;
        }
        self.state = WalkState::Failed(self.silence_error());
    }

    /// Why a walk that went silent failed, as precisely as known.
    fn silence_error(&self) -> WalkError {
        if self.answered {
            return WalkError::StoppedAnswering;
        }
        #[cfg(feature = "usm")]
        {
            if let Some(e) = self.last_refusal {
                return WalkError::Usm(e);
            }
            if self.envelope.engine().is_some() {
                return WalkError::Usm(UsmError::SilentAfterDiscovery);
            }
        }
        WalkError::NoAnswer
    }

    /// A Report answering the request in flight.
    #[cfg(feature = "usm")]
    fn handle_report(&mut self, now: Instant, kind: ReportKind, authenticated: bool) {
        let checking_privacy = matches!(
            self.outstanding.as_ref().map(|o| &o.request),
            Some(Request::PrivacyCheck)
        );
        if checking_privacy && authenticated {
            // Without privacy, the device answers us as the user: it is
            // the privacy it could not take.
            self.state = WalkState::Failed(WalkError::Usm(UsmError::PrivacyRefused));
            return;
        }
        match kind {
            // The Report moved the engine's clock (see `usm::open`):
            // send the same request again.
            ReportKind::NotInTimeWindow if authenticated && self.stats.resyncs < MAX_RESYNCS => {
                self.stats.resyncs = self.stats.resyncs.saturating_add(1);
                // A new request-id (msgID): Reports to copies sent with the
                // old clock must not count against this one.
                let request_id = self.new_request_id();
                if let Some(o) = self.outstanding.as_mut() {
                    o.request_id = request_id;
                    o.needs_send = true;
                    o.expires = now;
                }
            }
            // The device's engine id changed (a new board, a reset).
            ReportKind::UnknownEngineId if self.stats.discoveries <= MAX_RESYNCS => {
                self.envelope.forget_engine();
                self.outstanding = None;
                self.prepare(now);
            }
            _ => self.state = WalkState::Failed(WalkError::Usm(UsmError::Report(kind))),
        }
    }

    /// Takes a datagram from the device. Anything that is not the answer
    /// to the request in flight is counted and ignored.
    ///
    /// The datagram is changed in place: SNMPv3 answers are checked and
    /// decrypted where they lie.
    pub fn handle_datagram(&mut self, now: Instant, bytes: &mut [u8], sink: &mut impl Sink) {
        if self.state != WalkState::Running {
            self.stats.ignored = self.stats.ignored.saturating_add(1);
            return;
        }
        let Some(out_id) = self.outstanding.as_ref().map(|o| o.request_id) else {
            self.stats.ignored = self.stats.ignored.saturating_add(1);
            return;
        };
        let discovering = self.envelope.needs_engine();
        let pdu = match self.envelope.open(now, bytes) {
            // (A Response to discovery is no answer: discovery wants a Report.)
            Answer::Pdu(p)
                if p.ty == PduType::Response && p.request_id == out_id && !discovering =>
            {
                p
            }
            #[cfg(feature = "usm")]
            Answer::Discovered { request_id } if request_id == out_id => {
                self.outstanding = None;
                self.prepare(now);
                return;
            }
            #[cfg(feature = "usm")]
            Answer::Discovered { .. } => {
                // Not the answer to our discovery: not to be believed.
                self.envelope.forget_engine();
                self.stats.ignored = self.stats.ignored.saturating_add(1);
                return;
            }
            #[cfg(feature = "usm")]
            Answer::Report {
                request_id,
                kind,
                authenticated,
            } if request_id == out_id => {
                self.handle_report(now, kind, authenticated);
                return;
            }
            #[cfg(feature = "usm")]
            Answer::Refused(e) => {
                self.last_refusal = Some(e);
                self.stats.ignored = self.stats.ignored.saturating_add(1);
                return;
            }
            _ => {
                self.stats.ignored = self.stats.ignored.saturating_add(1);
                return;
            }
        };
        let Some(out) = self.outstanding.take() else {
            return;
        };
        self.answered = true;
        self.stats.responses = self.stats.responses.saturating_add(1);
        let status = ErrorStatus::from_i32(pdu.error_status);
        #[cfg(feature = "usm")]
        {
            if let Request::PrivacyCheck = out.request {
                self.state = WalkState::Failed(WalkError::Usm(UsmError::PrivacyRefused));
                return;
            }
            if status == Some(ErrorStatus::AuthorizationError) && self.version() == Version::V3 {
                self.state = WalkState::Failed(WalkError::Usm(UsmError::NotAuthorized));
                return;
            }
        }
        let index = usize::try_from(pdu.error_index).unwrap_or(0);
        match (status, &out.request) {
            (Some(ErrorStatus::NoError), Request::Get(idx)) => {
                for vb in pdu.varbinds.flatten() {
                    sink.push(&vb);
                }
                self.finish_gets(idx);
            }
            (Some(ErrorStatus::NoError), Request::Walk(idx)) => {
                let progressed = self.advance_columns(idx, pdu.varbinds, sink);
                if !progressed {
                    // An answer that moves nothing forward would loop.
                    for i in idx {
                        self.end_column(*i);
                    }
                }
                if self.mode == Mode::Bulk && self.max_repetitions < self.repetitions_ceiling {
                    self.max_repetitions = self
                        .max_repetitions
                        .saturating_add(5)
                        .min(self.repetitions_ceiling);
                }
            }
            (Some(ErrorStatus::TooBig), request) => {
                self.stats.too_big = self.stats.too_big.saturating_add(1);
                self.shrink(request);
            }
            (Some(ErrorStatus::NoSuchName), Request::Get(idx)) => {
                // v1: the index-th scalar does not exist; ask for the rest.
                match idx.get(index.saturating_sub(1)) {
                    Some(i) if index > 0 => self.finish_gets(&[*i]),
                    _ => self.finish_gets(idx),
                }
            }
            (Some(ErrorStatus::NoSuchName), Request::Walk(idx)) => {
                match idx.get(index.saturating_sub(1)) {
                    // v1: GETNEXT past the end of the MIB for that column.
                    Some(i) if index > 0 => self.end_column(*i),
                    _ => {
                        for i in idx {
                            self.end_column(*i);
                        }
                    }
                }
            }
            (_, Request::Walk(_)) if self.mode == Mode::Bulk => {
                // An agent without GetBulk answers it with an error: walk
                // with GETNEXT from now on.
                self.mode = Mode::Next;
            }
            (_, request) => {
                // genErr and the like: retry as after a timeout, then give
                // up those objects rather than the device.
                if out.attempt < self.cfg.retries {
                    self.stats.retries = self.stats.retries.saturating_add(1);
                    self.outstanding = Some(Outstanding {
                        attempt: out.attempt.saturating_add(1),
                        needs_send: true,
                        ..out
                    });
                    return;
                }
                match request {
                    Request::Get(idx) => self.finish_gets(idx),
                    Request::Walk(idx) => {
                        for i in idx {
                            self.end_column(*i);
                        }
                    }
                    #[cfg(feature = "usm")]
                    _ => {}
                }
            }
        }
        self.prepare(now);
    }

    fn finish_gets(&mut self, idx: &[u8]) {
        for i in idx {
            if let Some(g) = self.gets.get_mut(usize::from(*i)) {
                g.1 = true;
            }
        }
    }

    fn end_column(&mut self, i: u8) {
        if let Some(c) = self.columns.get_mut(usize::from(i)) {
            c.done = true;
        }
    }

    /// Feeds a GetBulk or GETNEXT answer; returns whether any column moved.
    fn advance_columns(
        &mut self,
        idx: &[u8],
        varbinds: crate::snmp::VarBinds<'_>,
        sink: &mut impl Sink,
    ) -> bool {
        let width = idx.len().max(1);
        let mut progressed = false;
        let mut seen = 0usize;
        for (j, vb) in varbinds.enumerate() {
            seen = j.saturating_add(1);
            let Some(&ci) = j.checked_rem(width).and_then(|k| idx.get(k)) else {
                continue;
            };
            let Some(col) = self.columns.get_mut(usize::from(ci)) else {
                continue;
            };
            if col.done {
                continue;
            }
            let Ok(vb) = vb else {
                // A malformed varbind: its column cannot go on from it.
                col.done = true;
                continue;
            };
            let inside = vb.name.starts_with_arcs(col.root.iter().copied())
                && vb.name.len() > col.root.len();
            let increasing = vb.name > col.cursor.as_oid_ref();
            if vb.value == Value::EndOfMibView || !inside || !increasing {
                col.done = true;
                continue;
            }
            match OidBuf::try_from(vb.name) {
                Ok(next) => col.cursor = next,
                Err(_) => {
                    col.done = true;
                    continue;
                }
            }
            sink.push(&vb);
            progressed = true;
        }
        // Fewer varbinds than columns in a GETNEXT answer: the rest cannot
        // be told apart, so they end (an agent answers every varbind).
        if self.mode == Mode::Next && seen < idx.len() {
            for i in idx.get(seen..).unwrap_or_default() {
                self.end_column(*i);
            }
        }
        progressed
    }

    /// After tooBig: fewer repetitions, then fewer columns or scalars; a
    /// single object that is too big on its own is given up.
    /// Whether [`Walker::shrink`] would make `request` smaller (rather than
    /// give its objects up).
    fn can_shrink(&self, request: &Request) -> bool {
        match request {
            Request::Get(idx) => idx.len() > 1,
            Request::Walk(idx) => {
                (self.mode == Mode::Bulk && self.max_repetitions > 1) || idx.len() > 1
            }
            #[cfg(feature = "usm")]
            _ => false,
        }
    }

    fn shrink(&mut self, request: &Request) {
        match request {
            Request::Get(idx) => {
                if idx.len() <= 1 {
                    self.finish_gets(idx);
                } else {
                    self.scalars_per_request = (self.scalars_per_request / 2).max(1);
                }
            }
            Request::Walk(idx) => {
                if self.mode == Mode::Bulk && self.max_repetitions > 1 {
                    self.max_repetitions = (self.max_repetitions / 2).max(1);
                } else if idx.len() > 1 {
                    self.columns_per_request = (self.columns_per_request / 2).max(1);
                } else if let Some(i) = idx.first() {
                    self.end_column(*i);
                }
            }
            #[cfg(feature = "usm")]
            _ => {}
        }
    }
}

/// The request that learns a v3 engine (none without SNMPv3).
fn discover_request() -> Option<Request> {
    #[cfg(feature = "usm")]
    {
        Some(Request::Discover)
    }
    #[cfg(not(feature = "usm"))]
    {
        None
    }
}

/// A sink that only counts, for callers that want the traffic and not the
/// data (and for tests).
#[derive(Debug, Default)]
pub struct Counter(pub usize);

impl Sink for Counter {
    fn push(&mut self, _: &VarBind<'_>) {
        self.0 = self.0.saturating_add(1);
    }
}

/// Names of the walk's errors, for messages.
impl WalkError {
    pub fn describe(self) -> &'static str {
        match self {
            WalkError::NoAnswer => "no answer (the device is down, or the community is wrong)",
            WalkError::StoppedAnswering => "the device stopped answering during the walk",
            WalkError::Deadline => "the walk did not finish before its deadline",
            #[cfg(feature = "usm")]
            WalkError::Usm(e) => e.describe(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::printer::plan::walk_plan;

    /// A scalar that did not fit would never be asked for.
    #[test]
    fn every_scalar_of_the_plan_fits_its_buffer() {
        let mut scalars = 0;
        for read in walk_plan() {
            if let Read::Get(arcs) = read {
                scalars += 1;
                assert!(
                    OidBuf::<SCALAR_OID_LEN>::from_arcs(arcs).is_ok(),
                    "{arcs:?} does not fit {SCALAR_OID_LEN} octets"
                );
            }
        }
        assert!(scalars > 20, "{scalars}");
    }
}
