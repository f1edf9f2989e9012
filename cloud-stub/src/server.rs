//! The HTTPS server: TLS with tokio-rustls, HTTP/1.1 framing from the core
//! (the same code the agent and the firmware use), keep-alive connections,
//! and bounded heads, bodies and idle times (see `limits.rs`): connection
//! slots, deadlines per phase that a dribbling client cannot renew,
//! credentials checked before a body is read, failed sign-ins limited per
//! address (`guard.rs`) and audited per window (`audit.rs`). Database work
//! runs on blocking threads, one transaction per exchange.
//!
//! People sign in at `/signin` (name, password, TOTP code) and get a
//! session cookie; every page then needs it (or an agent's credentials),
//! and every form posted needs the session's token and, when the browser
//! names one, an `Origin` of this very host.

use crate::audit::{self, FailureAudit};
use crate::channel::{self, Channels};
use crate::exchange;
use crate::guard::{Failure, Guard, Verdict};
use crate::limits::{AcceptBackoff, Limits, Slots};
use crate::logline::{self, Sink};
use crate::store::web_sessions::WebRequest;
use crate::store::{Scope, Session, Store};
use crate::web;
use crate::web_access::Tunnels;
use dca_core::sync::message::Request;
use dca_core::sync::{self, CONTENT_TYPE, ENDPOINT, http};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// The largest request head accepted (431 beyond).
pub const MAX_HEAD: usize = 16 * 1024;
/// The largest request body accepted (413 beyond): a batch of a few thousand
/// readings.
pub const MAX_BODY: usize = 8 * 1024 * 1024;
/// How often closed audit windows are written and the guards tidied.
const HOUSEKEEPING: Duration = Duration::from_secs(5);

/// Sent with every answer, pages and API alike: nothing is sniffed, framed,
/// scripted or loaded from elsewhere (the page's only style is inline),
/// forms post to this cloud only, and no referrer leaves it (`same-origin`,
/// not `no-referrer`: under `no-referrer` a browser sends `Origin: null`
/// with the cloud's own forms, and the CSRF check could not tell them from
/// a forged one). (Every answer is
/// also `Cache-Control: no-store`, see `http::write_response_head`: pages
/// of a session stay out of shared and back-button caches.)
const SECURITY_HEADERS: &str = "X-Content-Type-Options: nosniff\r\n\
Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'\r\n\
X-Frame-Options: DENY\r\n\
Referrer-Policy: same-origin\r\n";

/// What the server shares between connections.
pub struct Shared {
    pub store: Mutex<Store>,
    pub limits: Limits,
    pub slots: Arc<Slots>,
    /// Failed operator sign-ins per address.
    pub operator_guard: Guard,
    /// Failed agent credentials and enrollment tokens per address.
    pub agent_guard: Guard,
    /// Failures of unauthenticated requests, counted per window.
    pub failures: FailureAudit,
    /// The agents' held `listen`s (the push channel).
    pub channels: Channels,
    /// Open Device Web Access sessions.
    pub tunnels: Arc<Tunnels>,
    /// Password checks running now.
    sign_ins: AtomicU64,
    /// Connections closed at accept because the server or their address
    /// was full, since the last housekeeping.
    refused: AtomicU64,
    log: Sink,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("store", &self.store)
            .field("limits", &self.limits)
            .field("slots", &self.slots)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// A server on `store` with the default limits, logging to stderr.
    pub fn new(store: Store) -> Shared {
        Shared::with_limits(store, Limits::default())
    }

    pub fn with_limits(store: Store, limits: Limits) -> Shared {
        let mut store = store;
        store.set_hold_max_s(u32::try_from(limits.hold.as_secs()).unwrap_or(u32::MAX));
        let tunnels = Arc::new(Tunnels::default());
        tunnels.set_idle(limits.web_idle);
        Shared {
            channels: Channels::default(),
            tunnels,
            sign_ins: AtomicU64::new(0),
            store: Mutex::new(store),
            slots: Slots::new(&limits),
            limits,
            operator_guard: Guard::default(),
            agent_guard: Guard::default(),
            failures: FailureAudit::default(),
            refused: AtomicU64::new(0),
            log: logline::stderr(),
        }
    }

    /// Sends the log lines to `sink` instead of stderr.
    pub fn log_to(mut self, sink: Sink) -> Shared {
        self.log = sink;
        self
    }

    /// Logs one line, its client-given parts escaped.
    fn log(&self, line: &str) {
        (self.log)(&logline::escape(line));
    }

    /// The store, for the one holding the lock at a time (a panicked
    /// holder leaves it consistent: every change is one transaction).
    pub fn lock_store(&self) -> std::sync::MutexGuard<'_, Store> {
        match self.store.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Counts a failure of an unauthenticated request; writes what it
    /// opened or closed (rarely: twice a window per address and event).
    fn failed(&self, store: &mut Store, remote: IpAddr, event: &'static str, detail: &str) {
        let now_ms = store.now();
        let rows = self
            .failures
            .record(remote, event, detail, Instant::now(), now_ms);
        audit::write(store, &rows);
    }

    /// Writes every open window of failures (at shutdown; tests).
    pub fn flush_audit(&self) {
        let all = self.failures.take(None);
        audit::write(&mut self.lock_store(), &all);
    }
}

/// What a request head said, copied out of the read buffer.
#[derive(Clone)]
struct Head {
    method: String,
    path: String,
    head_len: usize,
    content_length: usize,
    content_type: Option<String>,
    authorization: Option<String>,
    cookie: Option<String>,
    origin: Option<String>,
    host: Option<String>,
    close: bool,
}

struct Reply {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
    extra: String,
    log: String,
}

/// The reason phrase of a status, for the cloud's answers and its web
/// access entry points alike.
pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        303 => "See Other",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

fn plain(status: u16, message: &str) -> Reply {
    Reply {
        status,
        content_type: "text/plain; charset=utf-8",
        body: format!("{message}\n").into_bytes(),
        extra: String::new(),
        log: message.to_string(),
    }
}

/// Serves until `shutdown` completes, then writes the audit windows still
/// open.
pub async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    shared: Arc<Shared>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut backoff = AcceptBackoff::default();
    let mut housekeeping = tokio::time::interval(HOUSEKEEPING);
    housekeeping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    if let Ok(local) = listener.local_addr() {
        shared.tunnels.serve_on(acceptor.clone(), local.ip());
    }
    let watcher = tokio::spawn(watch_tasks(shared.clone()));
    let _stop_watching = AbortOnDrop(watcher);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, remote)) => {
                    backoff.succeeded();
                    // Full: closed at once, before any TLS work, so that the
                    // connections held keep their share of the machine.
                    let slot = match shared.slots.take(remote.ip()) {
                        Ok(slot) => slot,
                        Err(_) => {
                            shared.refused.fetch_add(1, Ordering::Relaxed);
                            drop(stream);
                            continue;
                        }
                    };
                    let (acceptor, shared) = (acceptor.clone(), shared.clone());
                    tokio::spawn(async move {
                        let _slot = slot;
                        let _ = stream.set_nodelay(true);
                        match tokio::time::timeout(shared.limits.handshake, acceptor.accept(stream)).await {
                            Ok(Ok(tls)) => connection(tls, remote, shared).await,
                            Ok(Err(e)) => shared.log(&format!("dca-cloud: {remote}: TLS handshake failed: {e}")),
                            Err(_) => shared.log(&format!("dca-cloud: {remote}: TLS handshake timed out")),
                        }
                    });
                }
                // Out of descriptors and the like: wait longer each time it
                // fails again (the connections held go on meanwhile and free
                // descriptors as they end), and keep serving.
                Err(e) => {
                    let wait = backoff.failed();
                    shared.log(&format!("dca-cloud: accept failed: {e} (next try in {} ms)", wait.as_millis()));
                    tokio::time::sleep(wait).await;
                }
            },
            _ = housekeeping.tick() => {
                let closed = shared.failures.take(Some(Instant::now()));
                let refused = shared.refused.swap(0, Ordering::Relaxed);
                if refused > 0 {
                    shared.log(&format!(
                        "dca-cloud: {refused} connections closed at accept: {} held (at most {}, {} per address)",
                        shared.slots.in_use(), shared.limits.max_connections, shared.limits.max_per_address
                    ));
                }
                shared.operator_guard.tidy(Instant::now());
                shared.agent_guard.tidy(Instant::now());
                shared.channels.tidy();
                if !closed.is_empty() {
                    let shared = shared.clone();
                    let _ = tokio::task::spawn_blocking(move || {
                        audit::write(&mut shared.lock_store(), &closed);
                    })
                    .await;
                }
            }
            () = &mut shutdown => {
                let shared = shared.clone();
                let _ = tokio::task::spawn_blocking(move || shared.flush_audit()).await;
                return;
            }
        }
    }
}

/// Password checks running at once, at most [`SIGN_INS_AT_ONCE`].
const SIGN_INS_AT_ONCE: usize = 4;

/// A password check's turn, given back when dropped.
struct SignInTurn<'a>(&'a AtomicU64);

impl<'a> SignInTurn<'a> {
    fn take(running: &'a AtomicU64) -> Option<SignInTurn<'a>> {
        let n = running.fetch_add(1, Ordering::AcqRel);
        if n >= SIGN_INS_AT_ONCE as u64 {
            running.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(SignInTurn(running))
    }
}

impl Drop for SignInTurn<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Ends a spawned task when its owner goes.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Looks for new tasks every [`channel::WATCH_EVERY`] and wakes their
/// agents' held `listen`s. A failed look is logged and tried again.
async fn watch_tasks(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(channel::WATCH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let s = shared.clone();
        let looked = tokio::task::spawn_blocking(move || {
            let store = s.lock_store();
            s.channels.look(
                || store.newest_task_id(),
                |after| store.agents_with_tasks_after(after),
            )
        })
        .await;
        if let Ok(Err(e)) = looked {
            shared.log(&format!("dca-cloud: looking for new tasks failed: {e}"));
        }
    }
}

/// Whether a request is an agent's `listen`, and how long it may be held.
fn listen_wait(shared: &Shared, head: &Head, body: &[u8]) -> Option<Duration> {
    if head.path != ENDPOINT || head.method != "POST" || shared.limits.hold.is_zero() {
        return None;
    }
    channel::agent_of(head.authorization.as_deref()?)?;
    match Request::decode(body) {
        Ok(Request::Listen { wait_s }) => {
            Some(Duration::from_secs(u64::from(wait_s)).min(shared.limits.hold))
        }
        _ => None,
    }
}

/// A failed task's id and detail, from a `task result` request.
fn refused_task_of(head: &Head, body: &[u8]) -> Option<(u64, String)> {
    if head.path != ENDPOINT || head.authorization.is_none() {
        return None;
    }
    match Request::decode(body) {
        Ok(Request::TaskResult {
            task,
            ok: false,
            detail,
        }) => Some((task, detail.to_string())),
        _ => None,
    }
}

/// An agent that refused to open a web access session (a port it does not
/// relay to, an older agent): the session and its entry point close at
/// once, rather than wait out their idle time.
async fn close_refused_session(shared: &Arc<Shared>, task: u64, detail: String) {
    let s = shared.clone();
    let _ = tokio::task::spawn_blocking(move || {
        let session = s.lock_store().web_session_of_task(task);
        if let Some(id) = session {
            s.tunnels
                .close(id, &format!("the agent refused: {detail}"), s.as_ref());
        }
    })
    .await;
}

/// The agent of a `relay` request (its credentials were checked before
/// its body was read).
fn relay_of(head: &Head, body: &[u8]) -> Option<String> {
    if head.path != ENDPOINT || head.method != "POST" {
        return None;
    }
    let agent = channel::agent_of(head.authorization.as_deref()?)?;
    matches!(Request::decode(body), Ok(Request::Relay { .. })).then(|| agent.to_string())
}

/// Answers a `relay`: hands the device's answer to the browser waiting for
/// it, and holds the request until the next browser request comes.
async fn relayed(shared: &Arc<Shared>, agent: &str, body: &[u8]) -> Reply {
    let Ok(Request::Relay { session, answer }) = Request::decode(body) else {
        return plain(400, "not a relay request");
    };
    // Well under the agent's own deadline for a relay (its I/O timeout, 20
    // s, plus the 25 s it allows for the hold), whatever --hold says.
    let hold = shared
        .limits
        .hold
        .clamp(Duration::from_secs(1), Duration::from_secs(20));
    let answer = shared.tunnels.relay(agent, session, answer, hold).await;
    Reply {
        status: 200,
        content_type: CONTENT_TYPE,
        body: answer,
        extra: String::new(),
        log: String::new(),
    }
}

impl crate::web_access::Host for Shared {
    fn may_open(&self, opener: crate::web_access::Opener) -> bool {
        self.lock_store()
            .operator_standing(opener.operator_id)
            .is_ok_and(|s| s == Some((crate::store::Role::Dealer, opener.dealer_id)))
    }

    fn log_request(&self, device_id: i64, r: WebRequest) {
        let line = format!(
            "web access session {}: {} {} {} -> {}{}",
            r.session,
            r.operator,
            r.method,
            r.path,
            r.status,
            r.refused
                .as_deref()
                .map_or_else(String::new, |why| format!(" refused: {why}"))
        );
        if let Err(e) = self.lock_store().log_web_request(device_id, &r) {
            self.log(&format!(
                "dca-cloud: the access log could not be written: {e}"
            ));
        }
        self.log(&format!("dca-cloud: {line}"));
    }

    fn session_ended(&self, id: u64, reason: &str) {
        if let Err(e) = self.lock_store().close_web_session(id, reason) {
            self.log(&format!("dca-cloud: web access session {id}: {e}"));
        }
        self.log(&format!(
            "dca-cloud: web access session {id} closed: {reason}"
        ));
    }

    fn log(&self, line: &str) {
        Shared::log(self, line);
    }
}

/// Whether an answer is an empty task list (what a held `listen` waits on).
fn no_tasks(reply: &Reply) -> bool {
    reply.status == 200
        && matches!(
            dca_core::sync::message::Response::decode(&reply.body),
            Ok(dca_core::sync::message::Response::Tasks(t)) if t.is_empty()
        )
}

/// Answers a request off the async threads (its store work blocks).
async fn route_blocking(
    shared: &Arc<Shared>,
    head: &Head,
    body: &Arc<Vec<u8>>,
    ip: IpAddr,
) -> Reply {
    let (s, h, b) = (shared.clone(), head.clone(), body.clone());
    tokio::task::spawn_blocking(move || route(&s, &h, &b, ip))
        .await
        .unwrap_or_else(|e| plain(500, &format!("handler failed: {e}")))
}

/// Answers a `listen`: at once when tasks wait, else when one is made for
/// this agent or `wait` has passed (an empty list, not logged: a channel
/// answers so every 25 s).
async fn held(
    shared: &Arc<Shared>,
    head: &Head,
    body: Vec<u8>,
    ip: IpAddr,
    wait: Duration,
) -> Reply {
    let body = Arc::new(body);
    let agent = head
        .authorization
        .as_deref()
        .and_then(channel::agent_of)
        .unwrap_or_default()
        .to_string();
    // Taken before the first look, so a task made meanwhile still wakes it.
    let wake = shared.channels.listener(&agent);
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        // Registered before the look for tasks: a task made in between
        // wakes it.
        let woken = wake.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let mut reply = route_blocking(shared, head, &body, ip).await;
        if !no_tasks(&reply) {
            return reply;
        }
        if tokio::time::timeout_at(deadline, woken).await.is_err() {
            reply.log.clear();
            return reply;
        }
    }
}

/// Reads what is there into `buf`, waiting until `deadline` at most: a
/// deadline fixed by the caller for a whole phase, not renewed per read.
async fn read_until<S: AsyncReadExt + Unpin>(
    s: &mut S,
    buf: &mut Vec<u8>,
    deadline: Instant,
) -> Result<(), &'static str> {
    let mut chunk = [0u8; 16 * 1024];
    match tokio::time::timeout_at(deadline.into(), s.read(&mut chunk)).await {
        Ok(Ok(0)) => Err("closed by the client"),
        Ok(Err(_)) => Err("read failed"),
        Err(_) => Err("deadline passed"),
        Ok(Ok(n)) => {
            buf.extend_from_slice(&chunk[..n]);
            Ok(())
        }
    }
}

fn head_of(buf: &[u8]) -> Result<Option<Head>, http::HttpError> {
    Ok(http::parse_request(buf)?.map(|h| Head {
        method: h.method.to_string(),
        path: h.path.to_string(),
        head_len: h.head_len,
        content_length: h.content_length,
        content_type: h.content_type.map(str::to_string),
        authorization: h.authorization.map(str::to_string),
        cookie: h.cookie.map(str::to_string),
        origin: h.origin.map(str::to_string),
        host: h.host.map(str::to_string),
        close: h.close,
    }))
}

async fn send<S: AsyncWriteExt + Unpin>(
    s: &mut S,
    reply: &Reply,
    close: bool,
) -> std::io::Result<()> {
    let mut head = [0u8; 2048];
    let mut extra = format!("{}{SECURITY_HEADERS}", reply.extra);
    if close {
        extra.push_str("Connection: close\r\n");
    }
    let n = http::write_response_head(
        &mut head,
        reply.status,
        reason(reply.status),
        reply.content_type,
        reply.body.len(),
        &extra,
    )
    .map_err(|e| std::io::Error::other(e.to_string()))?;
    let mut out = Vec::with_capacity(n + reply.body.len());
    out.extend_from_slice(&head[..n]);
    out.extend_from_slice(&reply.body);
    s.write_all(&out).await?;
    s.flush().await
}

/// [`send`] within `limit`: a client that stops reading loses its
/// connection instead of holding it.
async fn send_within<S: AsyncWriteExt + Unpin>(
    s: &mut S,
    reply: &Reply,
    close: bool,
    limit: Duration,
) -> std::io::Result<()> {
    match tokio::time::timeout(limit, send(s, reply, close)).await {
        Ok(r) => r,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("the answer was not taken within {limit:?}"),
        )),
    }
}

async fn connection<S: AsyncReadExt + AsyncWriteExt + Unpin>(
    mut s: S,
    remote: SocketAddr,
    shared: Arc<Shared>,
) {
    let limits = &shared.limits;
    let mut buf = Vec::new();
    loop {
        // A kept-alive connection waits for its next request's first byte
        // this long; from that byte, the head must be whole within
        // `limits.head`, however the bytes come.
        if buf.is_empty()
            && read_until(&mut s, &mut buf, Instant::now() + limits.idle)
                .await
                .is_err()
        {
            return;
        }
        let head_deadline = Instant::now() + limits.head;
        let head = loop {
            match head_of(&buf) {
                Ok(Some(h)) => break h,
                Ok(None) if buf.len() > MAX_HEAD => {
                    let r = plain(431, "request head too large");
                    shared.log(&format!("dca-cloud: {remote}: 431 {}", r.log));
                    let _ = send_within(&mut s, &r, true, limits.write).await;
                    return;
                }
                Ok(None) => {
                    if let Err(why) = read_until(&mut s, &mut buf, head_deadline).await {
                        if why == "deadline passed" {
                            shared.log(&format!(
                                "dca-cloud: {remote}: closed: request head not whole within {:?} ({} bytes)",
                                limits.head,
                                buf.len()
                            ));
                        }
                        return;
                    }
                }
                Err(e) => {
                    let r = plain(400, &e.to_string());
                    shared.log(&format!("dca-cloud: {remote}: 400 {}", r.log));
                    let _ = send_within(&mut s, &r, true, limits.write).await;
                    return;
                }
            }
        };
        if head.content_length > MAX_BODY {
            let r = plain(
                413,
                &format!(
                    "body of {} bytes is over the limit of {MAX_BODY}",
                    head.content_length
                ),
            );
            shared.log(&format!(
                "dca-cloud: {remote} {} {}: 413 {}",
                head.method, head.path, r.log
            ));
            let _ = send_within(&mut s, &r, true, limits.write).await;
            return;
        }
        // Credentials before the body: a stranger's megabytes are refused
        // unread.
        if let Err(r) = admit(&shared, &head, remote.ip()).await {
            shared.log(&format!(
                "dca-cloud: {remote} {} {}: {} {}",
                head.method, head.path, r.status, r.log
            ));
            let _ = send_within(&mut s, &r, true, limits.write).await;
            let _ = tokio::time::timeout(limits.write, s.shutdown()).await;
            return;
        }
        let end = head.head_len + head.content_length;
        let body_deadline = Instant::now() + limits.body_deadline(head.content_length);
        while buf.len() < end {
            if let Err(why) = read_until(&mut s, &mut buf, body_deadline).await {
                if why == "deadline passed" {
                    shared.log(&format!(
                        "dca-cloud: {remote} {} {}: closed: body of {} bytes not whole within {:?}",
                        head.method,
                        head.path,
                        head.content_length,
                        limits.body_deadline(head.content_length)
                    ));
                }
                return;
            }
        }
        let body: Vec<u8> = buf[head.head_len..end].to_vec();
        buf.drain(..end);
        let close = head.close;
        // An operator's page carries the session cookie: a refusal there
        // (a viewer opening a device, a form past its token) is no
        // stranger's probing and must not lock the address out.
        let unauthenticated =
            head.authorization.is_none() && cookie(&head, SESSION_COOKIE).is_none();
        let (method, path) = (head.method.clone(), head.path.clone());
        let ip = remote.ip();
        let refused_task = refused_task_of(&head, &body);
        let reply = match (listen_wait(&shared, &head, &body), relay_of(&head, &body)) {
            (Some(wait), _) => held(&shared, &head, body, ip, wait).await,
            (None, Some(agent)) => relayed(&shared, &agent, &body).await,
            (None, None) => route_blocking(&shared, &head, &Arc::new(body), ip).await,
        };
        if let (Some((task, detail)), 200) = (refused_task, reply.status) {
            close_refused_session(&shared, task, detail).await;
        }
        if reply.status >= 400 {
            shared.log(&format!(
                "dca-cloud: {remote} {method} {path}: {} {}",
                reply.status, reply.log
            ));
        } else if !reply.log.is_empty() {
            shared.log(&format!("dca-cloud: {remote}: {}", reply.log));
        }
        // A stranger's failed request ends its connection and counts
        // against its address: otherwise a wrong content type or method,
        // repeated just inside the idle deadline, holds a connection slot
        // forever without ever meeting a lockout.
        let stranger_failed = unauthenticated && reply.status >= 400;
        if stranger_failed && !matches!(reply.status, 401 | 429) {
            let _ = shared.agent_guard.failed(remote.ip(), Instant::now());
        }
        let close = close || stranger_failed;
        if send_within(&mut s, &reply, close, limits.write)
            .await
            .is_err()
            || close
        {
            let _ = tokio::time::timeout(limits.write, s.shutdown()).await;
            return;
        }
    }
}

fn retry_after(left: Duration) -> String {
    format!("Retry-After: {}\r\n", left.as_secs().max(1))
}

/// The answer to a request refused before its body was read: CBOR on the
/// sync endpoint (what agents read), text elsewhere.
fn early_refusal(sync: bool, status: u16, message: &str) -> Reply {
    if sync {
        cbor_reply(exchange::refuse(&crate::store::Refusal::new(
            status, message,
        )))
    } else {
        plain(status, message)
    }
}

/// Whether a request may go on to its body: its credentials hold, or it
/// needs none (an enrollment, small; a page or a form, small: its session
/// is checked with it), and its address is not locked out.
async fn admit(shared: &Arc<Shared>, head: &Head, remote: IpAddr) -> Result<(), Reply> {
    let sync = head.path == ENDPOINT;
    let Some(authorization) = head.authorization.clone() else {
        if !sync {
            return admit_operator(shared, head, remote);
        }
        // An enrollment: no credentials, a small body, and an address that
        // has not been guessing tokens.
        if let Verdict::Locked(left) = shared.agent_guard.check(remote, Instant::now()) {
            let mut r = early_refusal(
                true,
                429,
                "too many failed attempts from this address: try again later",
            );
            r.extra = retry_after(left);
            return Err(r);
        }
        if head.content_length > shared.limits.max_unauthenticated_body {
            return Err(early_refusal(
                true,
                401,
                &format!(
                    "a body of {} bytes needs agent credentials (Authorization: Bearer)",
                    head.content_length
                ),
            ));
        }
        return Ok(());
    };
    let shared2 = shared.clone();
    let checked = tokio::task::spawn_blocking(move || {
        let mut store = shared2.lock_store();
        match store.check_credentials(Some(&authorization)) {
            Ok(_) => Ok(()),
            Err(f) => {
                let detail = match &f.agent {
                    Some(a) => format!("agent {a}: {}", f.why),
                    None => f.why.clone(),
                };
                shared2.failed(&mut store, remote, "auth_refused", &detail);
                Err(f.refusal)
            }
        }
    })
    .await;
    match checked {
        Ok(Ok(())) => Ok(()),
        Ok(Err(refusal)) if refusal.status != 401 => {
            Err(early_refusal(sync, refusal.status, &refusal.reason))
        }
        Ok(Err(refusal)) => match shared.agent_guard.failed(remote, Instant::now()) {
            Failure::Counted => Err(early_refusal(sync, 401, &refusal.reason)),
            Failure::LockedOut(left) | Failure::StillLocked(left) => {
                let mut r = early_refusal(
                    sync,
                    429,
                    "too many failed attempts from this address: try again later",
                );
                r.extra = retry_after(left);
                Err(r)
            }
        },
        Err(e) => Err(plain(500, &format!("credential check failed: {e}"))),
    }
}

/// A person's request (no `Authorization`): a page, the sign-in form, a
/// form posted. Its session, if any, is checked with the request; before
/// that only a small body is taken (a form is a few hundred bytes), and a
/// sign-in only from an address that is not locked out, so that passwords
/// cannot be guessed faster than the lockouts allow.
fn admit_operator(shared: &Shared, head: &Head, remote: IpAddr) -> Result<(), Reply> {
    if head.content_length > shared.limits.max_unauthenticated_body {
        return Err(plain(
            413,
            &format!(
                "a body of {} bytes is over the web pages' limit of {}",
                head.content_length, shared.limits.max_unauthenticated_body
            ),
        ));
    }
    if page_path(&head.path) == SIGNIN
        && head.method == "POST"
        && let Verdict::Locked(left) = shared.operator_guard.check(remote, Instant::now())
    {
        return Err(too_many_sign_ins(left));
    }
    Ok(())
}

/// The sign-in form's path (GET shows it, POST signs in).
const SIGNIN: &str = "/signin";
/// The path a session's sign-out form posts to.
const SIGNOUT: &str = "/signout";
/// The session's cookie. `__Host-`: the browser takes it only from this
/// host over HTTPS, for the whole site, so no neighbour (another port's
/// or a subdomain's page) can plant one.
const SESSION_COOKIE: &str = "__Host-dca_session";
/// The sign-in form's cookie, whose value the form carries back: a form
/// posted from elsewhere cannot sign a browser in as someone else.
const SIGNIN_COOKIE: &str = "__Host-dca_signin";
/// How long the sign-in form may be filled in, in seconds.
const SIGNIN_AGE_S: i64 = 600;
const REFUSED_SIGNIN: &str = "wrong name, password or code";
const CROSS_SITE: &str = "cross-site request refused";

/// `path` without its query.
fn page_path(path: &str) -> &str {
    path.split_once('?').map_or(path, |(p, _)| p)
}

/// A `Set-Cookie` line: secure, out of scripts' reach, and sent with no
/// request another site starts.
fn set_cookie(name: &str, value: &str, max_age_s: i64) -> String {
    format!(
        "Set-Cookie: {name}={value}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={max_age_s}\r\n"
    )
}

/// The value of cookie `name` in the request's `Cookie` header (the first,
/// should the browser send two).
fn cookie<'a>(head: &'a Head, name: &str) -> Option<&'a str> {
    head.cookie.as_deref()?.split(';').find_map(|pair| {
        let (n, v) = pair.trim().split_once('=')?;
        (n == name).then(|| v.trim())
    })
}

/// Whether a form was posted from this cloud's own pages, as far as the
/// browser says: an `Origin`, when sent, must be this host over HTTPS.
fn same_origin(head: &Head) -> bool {
    match head.origin.as_deref() {
        None => true,
        Some(origin) => head
            .host
            .as_deref()
            .is_some_and(|host| origin.eq_ignore_ascii_case(&format!("https://{host}"))),
    }
}

fn too_many_sign_ins(left: Duration) -> Reply {
    let mut r = plain(
        429,
        "too many failed sign-ins from this address: try again later",
    );
    r.extra = retry_after(left);
    r
}

/// A 303 to `to`, not logged unless the caller says what it did (a page
/// asked for without a session is no event).
fn redirect(to: &str, message: &str) -> Reply {
    let mut r = plain(303, message);
    r.extra = format!("Location: {to}\r\n");
    r.log.clear();
    r
}

/// The sign-in form with a fresh token, in the form and in its cookie.
fn signin_form(status: u16, message: Option<&str>) -> Reply {
    let token = crate::secret::random_hex(32);
    Reply {
        status,
        content_type: "text/html; charset=utf-8",
        body: web::signin_page(&token, message),
        extra: set_cookie(SIGNIN_COOKIE, &token, SIGNIN_AGE_S),
        log: message.unwrap_or_default().to_string(),
    }
}

fn not_allowed(path: &str, method: &str, allow: &str) -> Reply {
    let mut r = plain(405, &format!("{path} takes {allow}, not {method}"));
    r.extra = format!("Allow: {allow}\r\n");
    r
}

fn route(shared: &Arc<Shared>, head: &Head, body: &[u8], remote_ip: IpAddr) -> Reply {
    let mut store = shared.lock_store();
    let remote = &remote_ip.to_string();
    if head.path == ENDPOINT {
        if head.method != "POST" {
            let mut r = plain(405, &format!("{ENDPOINT} takes POST, not {}", head.method));
            r.extra = "Allow: POST\r\n".into();
            return r;
        }
        let ct = head.content_type.as_deref().unwrap_or("");
        if !ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .eq_ignore_ascii_case(CONTENT_TYPE)
        {
            return cbor_reply(exchange::refuse(&crate::store::Refusal::new(
                415,
                format!("content type must be {CONTENT_TYPE}, not {ct:?}"),
            )));
        }
        let answer = match Request::decode(body) {
            // Anything but an enrollment needs credentials: one without
            // them is counted like a wrong secret (the store would write a
            // row for each).
            Ok(req) if head.authorization.is_none() && !matches!(req, Request::Enroll { .. }) => {
                shared.failed(
                    &mut store,
                    remote_ip,
                    "auth_refused",
                    "no agent credentials",
                );
                match shared.agent_guard.failed(remote_ip, Instant::now()) {
                    Failure::Counted => exchange::refuse(&crate::store::Refusal::new(
                        401,
                        "this request needs agent credentials (Authorization: Bearer)",
                    )),
                    Failure::LockedOut(_) | Failure::StillLocked(_) => {
                        exchange::refuse(&crate::store::Refusal::new(
                            429,
                            "too many failed attempts from this address: try again later",
                        ))
                    }
                }
            }
            Ok(req) => {
                let answer =
                    exchange::handle(&mut store, &req, head.authorization.as_deref(), remote);
                // Guessing enrollment tokens counts like guessing secrets.
                if matches!(req, Request::Enroll { .. }) && answer.status == 401 {
                    shared.agent_guard.failed(remote_ip, Instant::now());
                }
                answer
            }
            // Another protocol version: refused in its own framing, so an
            // older agent can say why (and that it must be upgraded).
            Err(sync::Error::Version(v)) => {
                let answer = exchange::refuse_version(v);
                shared.failed(
                    &mut store,
                    remote_ip,
                    "version_refused",
                    &format!("sync protocol version {v}"),
                );
                answer
            }
            // Undecodable: the sender is not known to be an agent (even with
            // credentials, a body that is not a request is not one of
            // theirs), so it is counted per window, not a row each.
            Err(e) => {
                let r = crate::store::Refusal::new(400, format!("malformed request body: {e}"));
                shared.failed(&mut store, remote_ip, "bad_request", &r.reason);
                exchange::refuse(&r)
            }
        };
        return cbor_reply(answer);
    }
    web_route(shared, store, head, body, remote_ip)
}

/// Who asks for a page.
enum Reader {
    /// An agent, by its credentials (checked in [`admit`]).
    Agent(Scope),
    /// A signed-in operator, and the cookie's token.
    Operator(Session, String),
}

/// Everything but the sync endpoint: the sign-in form, the pages, the
/// forms they post. `store` is given up while a password is checked.
fn web_route(
    shared: &Arc<Shared>,
    mut store: std::sync::MutexGuard<'_, Store>,
    head: &Head,
    body: &[u8],
    remote: IpAddr,
) -> Reply {
    let path = page_path(&head.path);
    if path == SIGNIN {
        return match head.method.as_str() {
            "GET" => signin_form(200, None),
            "POST" => sign_in(shared, store, head, body, remote),
            m => not_allowed(path, m, "GET, POST"),
        };
    }
    let reader = match head.authorization.as_deref() {
        Some(a) => match store.authenticate(Some(a), &remote.to_string()) {
            Ok(agent) => Reader::Agent(Scope::Customer(agent.customer_id)),
            Err(r) => return plain(r.status, &r.reason),
        },
        None => {
            let Some(token) = cookie(head, SESSION_COOKIE) else {
                return signed_out(path, false);
            };
            match store.session(token) {
                Ok(Some(session)) => Reader::Operator(session, token.to_string()),
                Ok(None) => return signed_out(path, true),
                Err(e) => return plain(503, &e),
            }
        }
    };
    match (head.method.as_str(), reader) {
        ("POST", Reader::Operator(session, token)) => {
            let form = web::form(body).unwrap_or_default();
            let csrf = web::field(&form, "csrf").unwrap_or("");
            if !same_origin(head) || !crate::secret::same(csrf, &session.csrf) {
                return plain(403, CROSS_SITE);
            }
            if let Some(device) = path
                .strip_prefix("/devices/")
                .and_then(|p| p.strip_suffix("/web"))
                .and_then(|id| id.parse::<i64>().ok())
            {
                return open_web(shared, store, head, &session, device, &form, remote);
            }
            if let Some(id) = path
                .strip_prefix("/web/")
                .and_then(|p| p.strip_suffix("/close"))
                .and_then(|id| id.parse::<u64>().ok())
            {
                drop(store);
                return close_web(shared, &session, id);
            }
            if path != SIGNOUT {
                return not_allowed(path, "POST", "GET");
            }
            if let Err(e) = store.end_session(&token) {
                return plain(503, &e);
            }
            store.audit(
                None,
                None,
                &remote.to_string(),
                "operator_signed_out",
                &session.operator,
            );
            // The operator's web access sessions end with the sign-in.
            drop(store);
            shared.tunnels.close_of(
                &session.operator,
                "its operator signed out",
                shared.as_ref(),
            );
            let mut r = redirect(SIGNIN, "signed out");
            r.extra.push_str(&set_cookie(SESSION_COOKIE, "", 0));
            r.log = format!("operator {} signed out", session.operator);
            r
        }
        ("GET", reader) if path != SIGNOUT => {
            let (scope, session) = match &reader {
                Reader::Agent(scope) => (*scope, None),
                Reader::Operator(s, _) => (Scope::Dealer(s.dealer_id), Some(s)),
            };
            let viewer = session.map(|s| web::Viewer {
                name: &s.operator,
                role: s.role.id(),
                dealer: &s.dealer,
                csrf: &s.csrf,
            });
            let page = web::get_as(&store, scope, &head.path, viewer.as_ref());
            Reply {
                status: page.status,
                content_type: page.content_type,
                body: page.body,
                extra: String::new(),
                log: String::new(),
            }
        }
        (method, _) if path == SIGNOUT => not_allowed(path, method, "POST"),
        (method, _) => not_allowed(path, method, "GET"),
    }
}

/// How long a Device Web Access session lasts (its idle timeout is
/// shorter: [`crate::web_access::IDLE`]).
const WEB_SESSION_S: u64 = 15 * 60;

/// `POST /devices/{id}/web`: a dealer operator opens the device's web page.
/// The session is made (and `open_web` queued for the device's agent,
/// which the push channel brings at once), its entry point opened, and the
/// browser sent there with the one-time key that sets its cookie.
fn open_web(
    shared: &Arc<Shared>,
    mut store: std::sync::MutexGuard<'_, Store>,
    head: &Head,
    session: &crate::store::Session,
    device: i64,
    form: &[(String, String)],
    remote: IpAddr,
) -> Reply {
    if session.role != crate::store::Role::Dealer {
        store.audit(
            None,
            None,
            &remote.to_string(),
            "web_session_refused",
            &format!(
                "{} (a viewer) asked to open device {device}",
                session.operator
            ),
        );
        return plain(403, "only dealer operators may open a device's web page");
    }
    let port = web::field(form, "port")
        .and_then(|p| p.parse::<u16>().ok())
        .filter(|p| *p > 0)
        .unwrap_or(80);
    // Printers serve HTTPS on 443 and 8443 (with their own, mostly
    // self-signed certificates) and plain HTTP elsewhere, unless told.
    let https = match web::field(form, "scheme") {
        None | Some("") => matches!(port, 443 | 8443),
        Some("https") => true,
        Some("http") => false,
        Some(_) => return plain(400, "scheme: http or https"),
    };
    if let Err(full) = shared.tunnels.room_for(&session.operator) {
        return plain(429, &full);
    }
    let opened = match store.open_web_session(
        &session.operator,
        session.dealer_id,
        device,
        port,
        https,
        WEB_SESSION_S,
    ) {
        Ok(o) => o,
        Err(r) => return plain(r.status, &r.reason),
    };
    drop(store);
    let entry = match shared.tunnels.start(
        shared.clone(),
        &opened,
        &session.operator,
        crate::web_access::Opener {
            operator_id: session.operator_id,
            dealer_id: session.dealer_id,
        },
    ) {
        Ok(port) => port,
        Err(e) => {
            let _ = shared.lock_store().close_web_session(opened.id, &e);
            return plain(
                503,
                &format!("the session's entry point could not open: {e}"),
            );
        }
    };
    // The agent is told once the entry point is there: its first relay
    // finds the session.
    let queued = shared.lock_store().queue_open_web(&opened);
    if let Err(e) = queued {
        shared.tunnels.close(opened.id, &e, shared.as_ref());
        return plain(503, &format!("the agent could not be told: {e}"));
    }
    // The browser came to this host name; the entry point is on the same
    // host, another port.
    let host = head
        .host
        .as_deref()
        .map(|h| match h.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => h,
        })
        .filter(|h| {
            !h.is_empty()
                && h.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']')
                })
        })
        .unwrap_or("localhost")
        .to_string();
    // A page that goes on to the entry point, not a redirect: the form's
    // answer may only lead back to this origin ("form-action 'self'"), and
    // the entry point is another origin (its own port).
    let link = format!("https://{host}:{entry}/.dwa/enter?key={}", opened.key);
    let mut r = Reply {
        status: 200,
        content_type: "text/html; charset=utf-8",
        body: web::entry_page(&link, opened.id, &opened.serial).into_bytes(),
        extra: String::new(),
        log: String::new(),
    };
    r.log = format!(
        "web access session {} opened by {} for device {device} ({}) at {}://{}, entry port {entry}",
        opened.id,
        session.operator,
        opened.serial,
        opened.scheme(),
        opened.target
    );
    r
}

/// `POST /web/{id}/close`: ends a session of this operator's dealer.
fn close_web(shared: &Arc<Shared>, session: &crate::store::Session, id: u64) -> Reply {
    // The operator who opened it closes it; the others' end by themselves.
    let mine = shared
        .tunnels
        .get(id)
        .is_some_and(|t| t.operator == session.operator);
    if !mine
        || !shared.tunnels.close(
            id,
            &format!("closed by {}", session.operator),
            shared.as_ref(),
        )
    {
        return plain(404, &format!("no open web access session {id}"));
    }
    redirect("/", "closed")
}

/// No session (none given, or over): a browser is sent to the sign-in
/// form, a program under `/api/` told 401. The cookie of a session that is
/// over is cleared.
fn signed_out(path: &str, stale_cookie: bool) -> Reply {
    let mut r = if path.starts_with("/api/") {
        let mut r = plain(
            401,
            "sign in at /signin, or send an agent's credentials (Authorization: Bearer)",
        );
        r.extra = "WWW-Authenticate: Bearer realm=\"OpenDCA cloud\"\r\n".into();
        r
    } else {
        redirect(SIGNIN, "sign in first")
    };
    if stale_cookie {
        r.extra.push_str(&set_cookie(SESSION_COOKIE, "", 0));
    }
    r
}

/// `POST /signin`: the form's token against its cookie, then the name,
/// password and code. The store's lock is let go while Argon2 runs (tens of
/// milliseconds that every agent's upload would otherwise wait out), and
/// taken again to spend the code, which a concurrent sign-in with the same
/// code cannot also do. Every refusal reads the same, whichever factor was
/// wrong; failures count towards the address's lockout.
fn sign_in(
    shared: &Shared,
    store: std::sync::MutexGuard<'_, Store>,
    head: &Head,
    body: &[u8],
    remote: IpAddr,
) -> Reply {
    if let Verdict::Locked(left) = shared.operator_guard.check(remote, Instant::now()) {
        return too_many_sign_ins(left);
    }
    let form = web::form(body).unwrap_or_default();
    let field = |name: &str| web::field(&form, name).unwrap_or("");
    let expected = cookie(head, SIGNIN_COOKIE).unwrap_or("");
    if !same_origin(head) || expected.is_empty() || !crate::secret::same(field("csrf"), expected) {
        // The form again: its cookie may just have lapsed (ten minutes).
        return signin_form(
            403,
            Some(&format!(
                "{CROSS_SITE} (or the form was older than {} minutes): sign in again",
                SIGNIN_AGE_S / 60
            )),
        );
    }
    let (name, password, code) = (field("name"), field("password"), field("code"));
    let candidate = match store.sign_in_candidate(name) {
        Ok(c) => c,
        Err(e) => return plain(503, &e),
    };
    let unix_secs = u64::try_from(store.now() / 1000).unwrap_or(0);
    drop(store);
    // Each check takes 19 MiB and tens of milliseconds of a blocking
    // thread (which uploads and listens need too): a few at once, the
    // rest told to come back.
    let Some(_turn) = SignInTurn::take(&shared.sign_ins) else {
        let mut r = plain(503, "too many sign-ins at once: try again in a second");
        r.extra = retry_after(Duration::from_secs(1));
        return r;
    };
    let step = crate::store::verify_sign_in(candidate.as_ref(), password, code, unix_secs);
    let mut store = shared.lock_store();
    let signed_in = match (candidate, step) {
        (Some(c), Some(step)) => match store.take_totp_step(c.id, step) {
            Ok(true) => Some(c),
            Ok(false) => None,
            Err(e) => return plain(503, &e),
        },
        _ => None,
    };
    let remote_text = remote.to_string();
    let Some(operator) = signed_in else {
        let failure = shared.operator_guard.failed(remote, Instant::now());
        shared.failed(
            &mut store,
            remote,
            "operator_signin_refused",
            &format!("{REFUSED_SIGNIN} (name {name:?})"),
        );
        return match failure {
            Failure::Counted => signin_form(401, Some(REFUSED_SIGNIN)),
            Failure::LockedOut(left) => {
                store.audit(
                    None,
                    None,
                    &remote_text,
                    "operator_locked_out",
                    &format!(
                        "more than {} failed sign-ins within {:?}: locked out for {:?}",
                        Guard::ALLOWED,
                        Guard::WINDOW,
                        left
                    ),
                );
                too_many_sign_ins(left)
            }
            Failure::StillLocked(left) => too_many_sign_ins(left),
        };
    };
    let session = match store.create_session(operator.id) {
        Ok(s) => s,
        Err(e) => return plain(503, &e),
    };
    store.audit(
        None,
        None,
        &remote_text,
        "operator_signed_in",
        &operator.name,
    );
    let mut r = redirect("/", "signed in");
    r.extra.push_str(&set_cookie(
        SESSION_COOKIE,
        &session.token,
        crate::store::SESSION_LIFETIME_MS / 1000,
    ));
    r.extra.push_str(&set_cookie(SIGNIN_COOKIE, "", 0));
    r.log = format!(
        "operator {} ({} of dealer {}) signed in",
        operator.name,
        operator.role.id(),
        operator.dealer
    );
    r
}

fn cbor_reply(a: exchange::Answer) -> Reply {
    Reply {
        status: a.status,
        content_type: CONTENT_TYPE,
        body: a.body,
        extra: String::new(),
        log: a.log,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Version 1 wrote answers with no deadline: a client that stopped
    /// reading held its connection (and its slot) for ever. The write
    /// gives up at its deadline.
    #[tokio::test]
    async fn an_answer_nobody_reads_gives_up_at_its_deadline() {
        // A pipe of 64 bytes whose other end never reads.
        let (mut ours, _theirs) = tokio::io::duplex(64);
        let reply = plain(200, &"x".repeat(10_000));
        let limit = Duration::from_millis(300);
        let start = Instant::now();
        let sent = tokio::time::timeout(
            Duration::from_secs(10),
            send_within(&mut ours, &reply, false, limit),
        )
        .await
        .expect("send_within returns by its own deadline");
        let err = sent.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
        assert!(start.elapsed() < Duration::from_secs(2));
    }
}
