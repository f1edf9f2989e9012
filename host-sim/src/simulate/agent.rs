//! One agent: the real core [`Session`] over a [`SimJournal`] on its own
//! [`SimDisk`], collecting from its site's printers with the real core scan
//! (see [`super::collect`]), posting its requests over the virtual WAN.
//!
//! The process can crash at any step: the disk counts every operation of
//! the journal and every call into the session, and when the operation a
//! crash was set for comes, it fails and so does everything after it; the
//! agent then loses its memory (session, collection under way, batches held
//! in memory) and its disk loses what was not durable. A new process opens
//! the journal again and starts a new session.

use super::clock::{Millis, Scheduler};
use super::cloud::Credentials;
use super::collect::{Boot, Collection, Scope, Site};
use super::disk::SimDisk;
use super::invariants::{Commit, Ledger};
use super::journal::{Note, SimJournal};
use super::net::{Fate, Net};
use super::report::{FaultCounts, FaultKind, Trace};
use super::world::Ev;
use super::{AGENT_VERSION, Config};
use crate::generate::Rng;
use dca_core::sync::batch::BatchId;
use dca_core::sync::message::{Request, Response};
use dca_core::sync::session::{self, Event, Now, Session, UPLOAD_OVERHEAD};
use dca_core::sync::task::Order;
use dca_core::time::{Duration, Instant};

/// How long the agent waits for an answer.
pub const EXCHANGE_TIMEOUT_MS: Millis = 30_000;

/// What the agent needs of the world while it acts.
#[allow(missing_debug_implementations)] // borrows of the world
pub struct Ctx<'a> {
    pub sched: &'a mut Scheduler<Ev>,
    pub net: &'a mut Net,
    pub trace: &'a mut Trace,
    pub ledger: &'a mut Ledger,
    pub faults: &'a mut FaultCounts,
    pub cfg: &'a Config,
    /// The last quiet period: no more collections.
    pub final_phase: bool,
    pub profile: &'a mut super::report::Profile,
    /// Where crashes hit, counted.
    pub crash_sites: &'a mut std::collections::BTreeMap<String, u64>,
}

impl Ctx<'_> {
    fn now(&self) -> Millis {
        self.sched.now()
    }
}

/// A collection under way, and the tasks waiting for it.
struct Pending {
    id: u64,
    result: Collection,
    tasks: Vec<u64>,
}

/// A running agent process.
struct Proc {
    session: Session,
    journal: SimJournal,
    boot: Boot,
    /// The exchange in flight.
    xid: Option<u64>,
    collecting: Option<Pending>,
}

impl Proc {
    fn now(&self, world: Millis) -> Now {
        Now {
            at: Instant::from_millis(world - self.boot.at),
            wall_ms: Some(self.boot.epoch_ms + world),
        }
    }

    /// Counts one step of the process (a call into the session); false
    /// once it has died.
    fn step(&mut self) -> bool {
        let disk = self.journal.disk();
        disk.set_context("session");
        disk.tick("step")
    }

    fn dead(&mut self) -> bool {
        self.journal.disk().is_dead()
    }
}

#[allow(missing_debug_implementations)] // the site's printers are large
pub struct Agent {
    pub index: usize,
    pub customer: usize,
    pub hostname: String,
    pub site: Site,
    pub creds: Credentials,
    proc: Option<Proc>,
    /// The disk while no process runs.
    disk: Option<SimDisk>,
    /// Incremented at each start: events of an older process are dropped.
    pub boot: u64,
    /// What was on disk as the last process knew it, for the invariants.
    pre_crash: Vec<BatchId>,
    buf: Vec<u8>,
    rng: Rng,
    next_id: u64,
    wake: Option<Millis>,
}

fn request_kind(body: &[u8]) -> String {
    match Request::decode(body) {
        Ok(Request::Enroll { .. }) => "enroll".into(),
        Ok(Request::Hello { .. }) => "hello".into(),
        Ok(Request::Upload {
            batch, position, ..
        }) => format!("upload pos={position} batch={batch}"),
        Ok(Request::TaskPoll) => "task_poll".into(),
        Ok(Request::Listen { wait_s }) => format!("listen {wait_s}s"),
        Ok(Request::Relay { session, .. }) => format!("relay {session}"),
        Ok(Request::TaskResult { task, ok, .. }) => format!("task_result {task} ok={ok}"),
        Err(e) => format!("undecodable ({e})"),
    }
}

/// The answer, as the trace tells it.
pub fn response_kind(status: u16, body: &[u8]) -> String {
    match Response::decode(body) {
        Ok(Response::Welcome {
            last_batch, held, ..
        }) => format!(
            "{status} welcome last={} held={held}",
            last_batch.map_or_else(|| "none".into(), |b| b.to_string())
        ),
        Ok(Response::Ack {
            batch,
            stored,
            duplicate,
        }) => format!("{status} ack {batch} stored={stored} duplicate={duplicate}"),
        Ok(Response::Tasks(t)) => format!("{status} tasks {}", t.len()),
        Ok(Response::Noted) => format!("{status} noted"),
        Ok(Response::Forward {
            seq, method, path, ..
        }) => {
            format!("{status} forward {seq} {method} {path}")
        }
        Ok(Response::RelayIdle) => format!("{status} relay idle"),
        Ok(Response::RelayClosed) => format!("{status} relay closed"),
        Ok(Response::Rejected { code, reason }) => format!("{status} rejected {code} {reason}"),
        Ok(Response::Enrolled { .. }) => format!("{status} enrolled"),
        Err(e) => format!("{status} undecodable ({e})"),
    }
}

impl Agent {
    pub fn new(
        index: usize,
        customer: usize,
        site: Site,
        creds: Credentials,
        disk: SimDisk,
        seed: u64,
    ) -> Agent {
        Agent {
            index,
            customer,
            hostname: format!("site-{index}"),
            site,
            creds,
            proc: None,
            disk: Some(disk),
            boot: 0,
            pre_crash: Vec::new(),
            buf: vec![0u8; super::collect::BATCH_BYTES + UPLOAD_OVERHEAD + 64],
            rng: Rng::new(seed),
            next_id: 0,
            wake: None,
        }
    }

    pub fn is_up(&self) -> bool {
        self.proc.is_some()
    }

    pub fn disk_mut(&mut self) -> &mut SimDisk {
        match (&mut self.proc, &mut self.disk) {
            (Some(p), _) => p.journal.disk(),
            (None, Some(d)) => d,
            // One of the two always holds the disk.
            (None, None) => unreachable!("an agent without a disk"),
        }
    }

    /// The batches of the running process's journal (`None` while down).
    pub fn journal(&self) -> Option<Vec<BatchId>> {
        self.proc
            .as_ref()
            .map(|p| p.journal.batches().map(|(id, _)| id).collect())
    }

    /// Running, nothing being collected, and every batch of its journal
    /// surely held by the cloud.
    pub fn settled(&self, ledger: &Ledger) -> bool {
        self.proc.as_ref().is_some_and(|p| {
            p.collecting.is_none() && p.journal.batches().all(|(id, _)| ledger.surely_held(&id))
        })
    }

    /// Starts a process on the disk (at the beginning, or after a crash).
    /// Returns the durable batches the crash lost (which only a broken
    /// journal loses), or `None` when the journal could not be opened yet
    /// (the disk failed; retried later).
    pub fn start(&mut self, ctx: &mut Ctx<'_>) -> Option<Vec<BatchId>> {
        let now = ctx.now();
        let disk = self.disk.take()?;
        let journal = match SimJournal::open(disk, ctx.cfg.plant) {
            Ok(j) => j,
            Err(failed) => {
                let (disk, e) = *failed;
                self.disk = Some(disk);
                ctx.trace
                    .log(now, format_args!("a{} start failed: {e}", self.index));
                ctx.sched.after(10_000, Ev::Restart { agent: self.index });
                return None;
            }
        };
        let after: Vec<BatchId> = journal
            .batches()
            .filter(|(_, on_disk)| *on_disk)
            .map(|(id, _)| id)
            .collect();
        let vanished = ctx.ledger.recovered(
            now,
            self.index,
            &std::mem::take(&mut self.pre_crash),
            &after,
        );
        self.boot += 1;
        let mut id = [0u8; 16];
        for chunk in id.chunks_mut(8) {
            chunk.copy_from_slice(&self.rng.next_u64().to_le_bytes());
        }
        let mut cfg = session::Config::new(AGENT_VERSION);
        cfg.collect_every = Some(Duration::from_secs(ctx.cfg.interval_s));
        let session = Session::new(cfg, Instant::from_millis(0), id, self.rng.next_u64());
        ctx.trace.log(
            now,
            format_args!(
                "a{} start boot={} journal={} vanished={}",
                self.index,
                self.boot,
                journal.len(),
                vanished.len()
            ),
        );
        self.proc = Some(Proc {
            session,
            journal,
            boot: Boot {
                id,
                at: now,
                epoch_ms: super::EPOCH_MS,
            },
            xid: None,
            collecting: None,
        });
        self.wake = None;
        self.drive(ctx);
        Some(vanished)
    }

    /// Sets a crash for one of the next `within` steps, or (a third of the
    /// time) for one of the operations of the next journal append.
    pub fn arm_crash(&mut self, within: u64) -> bool {
        let (k, only) = if self.rng.chance(1.0 / 3.0) {
            // An append is a step and five disk operations.
            (self.rng.range(0, 6), Some("append"))
        } else {
            (self.rng.range(0, within.max(1)), None)
        };
        match &mut self.proc {
            Some(p) => {
                let disk = p.journal.disk();
                if disk.crash_armed() {
                    return false;
                }
                disk.arm_crash(k, only);
                true
            }
            None => false,
        }
    }

    /// Crashes now, between two steps, if the crash set earlier has not
    /// come yet.
    pub fn kill(&mut self, ctx: &mut Ctx<'_>, boot: u64) {
        if boot != self.boot {
            return;
        }
        if let Some(mut p) = self.proc.take() {
            p.journal.disk().kill();
            self.crash(ctx, p, "between two steps");
        }
    }

    fn crash(&mut self, ctx: &mut Ctx<'_>, p: Proc, when: &str) {
        let now = ctx.now();
        self.pre_crash = p
            .journal
            .batches()
            .filter(|(_, on_disk)| *on_disk)
            .map(|(id, _)| id)
            .collect();
        let mut p = p;
        let step = p.journal.disk().ops();
        let site = match p.journal.disk().died() {
            Some(("session", _)) => "session step".to_string(),
            Some(("idle", _)) | None => "between steps".to_string(),
            Some((context, op)) => format!("journal {context}: {op}"),
        };
        let mut disk = p.journal.into_disk();
        let loss = disk.crash();
        ctx.trace.log(
            now,
            format_args!(
                "a{} crash {when} at step {step} ({site}): {} directory operations and {} files' unsynced writes lost",
                self.index, loss.dir_ops_lost, loss.files_torn
            ),
        );
        *ctx.crash_sites.entry(site).or_default() += 1;
        self.disk = Some(disk);
        self.boot += 1;
        self.wake = None;
        let delay = self.rng.range(1_000, 120_000);
        ctx.sched.after(delay, Ev::Restart { agent: self.index });
    }

    /// Takes the process out, runs `f` on it, and puts it back (or crashes
    /// it, when it died).
    fn with_proc(
        &mut self,
        ctx: &mut Ctx<'_>,
        boot: u64,
        f: impl FnOnce(&mut Agent, &mut Proc, &mut Ctx<'_>) -> bool,
    ) {
        if boot != self.boot {
            return;
        }
        let Some(mut p) = self.proc.take() else {
            return;
        };
        let alive = f(self, &mut p, ctx) && self.run(&mut p, ctx) && !p.dead();
        if alive {
            self.schedule_wake(&mut p, ctx);
            self.proc = Some(p);
        } else {
            self.crash(ctx, p, "mid-operation");
        }
    }

    pub fn drive(&mut self, ctx: &mut Ctx<'_>) {
        let boot = self.boot;
        self.with_proc(ctx, boot, |_, _, _| true);
    }

    pub fn on_wake(&mut self, ctx: &mut Ctx<'_>, boot: u64, at: Millis) {
        if boot != self.boot || self.wake != Some(at) {
            return;
        }
        self.wake = None;
        self.with_proc(ctx, boot, |_, _, _| true);
    }

    pub fn on_answer(&mut self, ctx: &mut Ctx<'_>, boot: u64, xid: u64, status: u16, body: &[u8]) {
        let index = self.index;
        self.with_proc(ctx, boot, |a, p, ctx| {
            if p.xid != Some(xid) {
                ctx.trace.log(
                    ctx.now(),
                    format_args!("a{index} x{xid} late answer dropped"),
                );
                return true;
            }
            p.xid = None;
            // A welcome says the cloud holds the batch it names and every
            // batch journaled before it: the session relies on that, and so
            // does the ledger (which checks it).
            if status == 200
                && let Ok(Response::Welcome {
                    last_batch: Some(last),
                    ..
                }) = Response::decode(body)
            {
                for id in p.journal.through(&last) {
                    ctx.ledger.confirmed(ctx.now(), &id, &last);
                }
            }
            if !p.step() {
                return false;
            }
            let n = p.now(ctx.now());
            p.session.handle_response(n, &mut p.journal, status, body);
            a.notes(p, ctx);
            !p.dead()
        });
    }

    pub fn on_transport_error(&mut self, ctx: &mut Ctx<'_>, boot: u64, xid: u64, detail: &str) {
        self.with_proc(ctx, boot, |a, p, ctx| {
            if p.xid != Some(xid) {
                return true;
            }
            p.xid = None;
            ctx.trace
                .log(ctx.now(), format_args!("a{} x{xid} {detail}", a.index));
            if !p.step() {
                return false;
            }
            let n = p.now(ctx.now());
            p.session.handle_transport_error(n, detail);
            !p.dead()
        });
    }

    /// A collection ended: commit its batches, then report its tasks.
    pub fn on_collected(&mut self, ctx: &mut Ctx<'_>, boot: u64, id: u64) {
        self.with_proc(ctx, boot, |a, p, ctx| {
            let Some(pending) = p.collecting.take_if(|c| c.id == id) else {
                return true;
            };
            let now = ctx.now();
            let mut batches = 0;
            for b in &pending.result.batches {
                ctx.ledger.sealed(now, a.index, a.customer, b.id, &b.record);
                if !p.step() {
                    return false;
                }
                let n = p.now(now);
                let r = p.session.commit(&mut p.journal, n, &b.record, &b.id);
                let how = match (&r, p.dead()) {
                    (Ok(x), _) if x.durable => Commit::Durable,
                    (_, true) => Commit::Crashed,
                    (Ok(_), false) => Commit::Memory,
                    (Err(_), false) => Commit::Failed,
                };
                ctx.ledger.committed(&b.id, how);
                ctx.trace.log(
                    now,
                    format_args!(
                        "a{} commit {} {} bytes: {how:?}{}",
                        a.index,
                        b.id,
                        b.record.len(),
                        r.map_or_else(|e| format!(" ({e})"), |x| format!(" pos={}", x.pos))
                    ),
                );
                a.notes(p, ctx);
                if p.dead() {
                    return false;
                }
                batches += 1;
            }
            for t in pending.tasks {
                if !p.step() {
                    return false;
                }
                let detail = format!("{} readings in {batches} batches", pending.result.walked);
                p.session.task_done(t, true, &detail);
            }
            true
        });
    }

    /// Runs the session until it waits: timers, events, the next request.
    fn run(&mut self, p: &mut Proc, ctx: &mut Ctx<'_>) -> bool {
        let now = ctx.now();
        let n = p.now(now);
        // Bounded: each pass sends a request or stops.
        for _ in 0..64 {
            if !p.step() {
                return false;
            }
            if p.session.poll_timeout().is_some_and(|t| t <= n.at) {
                p.session.handle_timeout(n.at);
            }
            if !self.events(p, ctx) {
                return false;
            }
            if p.xid.is_some() {
                return true;
            }
            if !p.step() {
                return false;
            }
            let sent = p.session.poll_request(n, &mut p.journal, &mut self.buf);
            self.notes(p, ctx);
            if p.dead() {
                return false;
            }
            match sent {
                Some(len) => self.send(p, ctx, len),
                None => return self.events(p, ctx),
            }
        }
        true
    }

    fn send(&mut self, p: &mut Proc, ctx: &mut Ctx<'_>, len: usize) {
        let now = ctx.now();
        self.next_id += 1;
        let xid = self.next_id;
        p.xid = Some(xid);
        let body = self.buf[..len].to_vec();
        let fate = ctx.net.request(self.index, now);
        ctx.trace.log(
            now,
            format_args!(
                "a{} x{xid} send {} ({len} bytes): {fate:?}",
                self.index,
                request_kind(&body)
            ),
        );
        let recv = |body: Vec<u8>| Ev::CloudRecv {
            agent: self.index,
            boot: self.boot,
            xid,
            body,
            auth: self.creds.bearer.clone(),
        };
        match fate {
            Fate::Lost => ctx.faults.add(FaultKind::Loss),
            Fate::Delivered(d) => {
                if d >= 1000 {
                    ctx.faults.add(FaultKind::Delay);
                }
                ctx.sched.after(d, recv(body));
            }
            Fate::Twice(a, b) => {
                ctx.faults.add(FaultKind::Dup);
                ctx.sched.after(a, recv(body.clone()));
                ctx.sched.after(b, recv(body));
            }
        }
        ctx.sched.after(
            EXCHANGE_TIMEOUT_MS,
            Ev::Timeout {
                agent: self.index,
                boot: self.boot,
                xid,
            },
        );
    }

    fn schedule_wake(&mut self, p: &mut Proc, ctx: &mut Ctx<'_>) {
        let now = ctx.now();
        let Some(t) = p.session.poll_timeout() else {
            return;
        };
        let at = (p.boot.at + t.millis()).max(now + 1);
        if self.wake.is_none_or(|w| at < w) {
            self.wake = Some(at);
            ctx.sched.at(
                at,
                Ev::Wake {
                    agent: self.index,
                    boot: self.boot,
                    at,
                },
            );
        }
    }

    /// Tells the ledger what the journal did.
    fn notes(&mut self, p: &mut Proc, ctx: &mut Ctx<'_>) {
        let now = ctx.now();
        for n in p.journal.take_notes() {
            match n {
                Note::Removed(id) => ctx.ledger.removed(now, &id),
                Note::Quarantined(id, why) => ctx.ledger.quarantined(now, &id, &why),
            }
        }
    }

    fn collect(&mut self, p: &mut Proc, ctx: &mut Ctx<'_>, scope: Scope, task: Option<u64>) {
        let now = ctx.now();
        if let Some(c) = &mut p.collecting {
            c.tasks.extend(task);
            ctx.trace.log(
                now,
                format_args!("a{} collect {scope:?}: joins the one under way", self.index),
            );
            return;
        }
        self.next_id += 1;
        let id = self.next_id;
        let started = std::time::Instant::now();
        let result = self
            .site
            .collect(scope, now, p.boot, self.rng.next_u64(), ctx.cfg.lan);
        ctx.profile.collect += started.elapsed();
        ctx.trace.log(
            now,
            format_args!(
                "a{} collect {scope:?} #{id}: {} walked, {} failed, {} datagrams, {} batches, ends {}",
                self.index,
                result.walked,
                result.failed,
                result.datagrams,
                result.batches.len(),
                result.end
            ),
        );
        ctx.sched.at(
            result.end.max(now + 1),
            Ev::Collected {
                agent: self.index,
                boot: self.boot,
                id,
            },
        );
        p.collecting = Some(Pending {
            id,
            result,
            tasks: task.into_iter().collect(),
        });
    }

    /// Handles the session's events; false if the process died.
    fn events(&mut self, p: &mut Proc, ctx: &mut Ctx<'_>) -> bool {
        let now = ctx.now();
        let a = self.index;
        // Bounded by the session's event queue.
        while let Some(e) = p.session.poll_event() {
            match e {
                Event::Collect if ctx.final_phase => {
                    ctx.trace.log(
                        now,
                        format_args!("a{a} collect: skipped (final quiet period)"),
                    );
                }
                Event::Collect => self.collect(p, ctx, Scope::All, None),
                Event::Task { id, order } => {
                    ctx.trace.log(now, format_args!("a{a} task {id} {order:?}"));
                    let done = match order {
                        Order::Rescan if !ctx.final_phase => {
                            self.collect(p, ctx, Scope::All, Some(id));
                            None
                        }
                        Order::PollDevice(ip)
                            if !ctx.final_phase
                                && self
                                    .site
                                    .printers
                                    .iter()
                                    .any(|x| std::net::IpAddr::V4(x.ip) == ip) =>
                        {
                            self.collect(p, ctx, Scope::One(ip), Some(id));
                            None
                        }
                        Order::Rescan | Order::PollDevice(_) if ctx.final_phase => {
                            Some((true, "skipped in the final quiet period"))
                        }
                        Order::PollDevice(_) => Some((false, "no such device at this site")),
                        _ => Some((true, "applied")),
                    };
                    if let Some((ok, detail)) = done {
                        if !p.step() {
                            return false;
                        }
                        p.session.task_done(id, ok, detail);
                    }
                }
                Event::Delivered {
                    pos,
                    batch,
                    stored,
                    duplicate,
                } => {
                    ctx.ledger.acked(now, &batch);
                    ctx.trace.log(
                        now,
                        format_args!(
                            "a{a} delivered pos={pos} {batch} stored={stored} duplicate={duplicate}"
                        ),
                    );
                }
                Event::ChannelDown { detail } => {
                    ctx.trace
                        .log(now, format_args!("a{a} push channel down: {detail}"));
                }
                Event::TaskRefused { id, detail } => {
                    ctx.trace
                        .log(now, format_args!("a{a} task {id} refused: {detail}"));
                }
                Event::Resending { from } => {
                    ctx.trace
                        .log(now, format_args!("a{a} resending from {from:?}"));
                }
                Event::Quarantined {
                    pos, batch, reason, ..
                } => {
                    ctx.trace.log(
                        now,
                        format_args!("a{a} quarantined pos={pos} {batch}: {reason}"),
                    );
                }
                Event::NotDurable { pos } => {
                    ctx.trace
                        .log(now, format_args!("a{a} not durable pos={pos}"));
                }
                Event::JournalFailed { detail } => {
                    ctx.trace
                        .log(now, format_args!("a{a} journal failed: {detail}"));
                }
                Event::Failed {
                    failure,
                    retry_in,
                    detail,
                } => {
                    ctx.trace.log(
                        now,
                        format_args!(
                            "a{a} round failed {failure:?} retry in {}: {detail}",
                            retry_in.millis()
                        ),
                    );
                }
                Event::RoundDone { uploaded, stored } => {
                    ctx.trace.log(
                        now,
                        format_args!("a{a} round done uploaded={uploaded} stored={stored}"),
                    );
                }
            }
            if p.dead() {
                return false;
            }
        }
        true
    }
}
