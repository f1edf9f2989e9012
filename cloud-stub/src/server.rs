//! The HTTPS server: TLS with tokio-rustls, HTTP/1.1 framing from the core
//! (the same code the agent and the firmware use), keep-alive connections,
//! and bounded heads, bodies and idle times (see `limits.rs`): connection
//! slots, deadlines per phase that a dribbling client cannot renew,
//! credentials checked before a body is read, failed sign-ins limited per
//! address (`guard.rs`) and audited per window (`audit.rs`). Database work
//! runs on blocking threads, one transaction per exchange.

use crate::audit::{self, FailureAudit};
use crate::exchange;
use crate::guard::{Failure, Guard, Verdict};
use crate::limits::{AcceptBackoff, Limits, Slots};
use crate::logline::{self, Sink};
use crate::store::{Scope, Store};
use crate::web;
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
/// scripted or loaded from elsewhere (the page's only style is inline), and
/// no referrer leaves.
const SECURITY_HEADERS: &str = "X-Content-Type-Options: nosniff\r\n\
Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'\r\n\
X-Frame-Options: DENY\r\n\
Referrer-Policy: no-referrer\r\n";

/// What the server shares between connections.
pub struct Shared {
    pub store: Mutex<Store>,
    /// The `Authorization` value that opens every customer's pages.
    pub operator_authorization: String,
    pub limits: Limits,
    pub slots: Arc<Slots>,
    /// Failed operator sign-ins per address.
    pub operator_guard: Guard,
    /// Failed agent credentials and enrollment tokens per address.
    pub agent_guard: Guard,
    /// Failures of unauthenticated requests, counted per window.
    pub failures: FailureAudit,
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
    pub fn new(store: Store, operator_authorization: String) -> Shared {
        Shared::with_limits(store, operator_authorization, Limits::default())
    }

    pub fn with_limits(store: Store, operator_authorization: String, limits: Limits) -> Shared {
        Shared {
            store: Mutex::new(store),
            operator_authorization,
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

    fn lock_store(&self) -> std::sync::MutexGuard<'_, Store> {
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
struct Head {
    method: String,
    path: String,
    head_len: usize,
    content_length: usize,
    content_type: Option<String>,
    authorization: Option<String>,
    close: bool,
}

struct Reply {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
    extra: String,
    log: String,
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
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
        let unauthenticated = head.authorization.is_none();
        let (method, path) = (head.method.clone(), head.path.clone());
        let shared2 = shared.clone();
        let ip = remote.ip();
        let reply = tokio::task::spawn_blocking(move || route(&shared2, &head, &body, ip))
            .await
            .unwrap_or_else(|e| plain(500, &format!("handler failed: {e}")));
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
/// needs none (an enrollment, small), and its address is not locked out.
async fn admit(shared: &Arc<Shared>, head: &Head, remote: IpAddr) -> Result<(), Reply> {
    let sync = head.path == ENDPOINT;
    let operator = !sync
        && head
            .authorization
            .as_deref()
            .is_some_and(|a| a.starts_with("Basic "));
    if operator {
        return admit_operator(shared, head, remote).await;
    }
    let Some(authorization) = head.authorization.clone() else {
        if !sync {
            let mut r = plain(
                401,
                "sign in as the operator, or as an agent with its credentials",
            );
            r.extra =
                "WWW-Authenticate: Basic realm=\"OpenDCA cloud\", charset=\"UTF-8\"\r\n".into();
            return Err(r);
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

/// The operator's sign-in: checked only while its address is not locked
/// out, so that a password cannot be guessed faster than the lockouts
/// allow; failures are counted and audited per window, lockouts at once.
async fn admit_operator(shared: &Arc<Shared>, head: &Head, remote: IpAddr) -> Result<(), Reply> {
    let too_many = |left: Duration| {
        let mut r = plain(
            429,
            "too many failed sign-ins from this address: try again later",
        );
        r.extra = retry_after(left);
        r
    };
    if let Verdict::Locked(left) = shared.operator_guard.check(remote, Instant::now()) {
        return Err(too_many(left));
    }
    let presented = head.authorization.as_deref().unwrap_or("");
    if constant_eq(presented, &shared.operator_authorization) {
        return Ok(());
    }
    let failure = shared.operator_guard.failed(remote, Instant::now());
    let shared2 = shared.clone();
    let _ = tokio::task::spawn_blocking(move || {
        let mut store = shared2.lock_store();
        shared2.failed(
            &mut store,
            remote,
            "operator_signin_refused",
            "wrong operator password",
        );
        if let Failure::LockedOut(left) = failure {
            store.audit(
                None,
                None,
                &remote.to_string(),
                "operator_locked_out",
                &format!(
                    "more than {} failed sign-ins within {:?}: locked out for {:?}",
                    Guard::ALLOWED,
                    Guard::WINDOW,
                    left
                ),
            );
        }
    })
    .await;
    match failure {
        Failure::Counted => {
            let mut r = plain(401, "wrong operator password");
            r.extra =
                "WWW-Authenticate: Basic realm=\"OpenDCA cloud\", charset=\"UTF-8\"\r\n".into();
            Err(r)
        }
        Failure::LockedOut(left) | Failure::StillLocked(left) => Err(too_many(left)),
    }
}

fn route(shared: &Shared, head: &Head, body: &[u8], remote_ip: IpAddr) -> Reply {
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
    if head.method != "GET" {
        let mut r = plain(
            405,
            &format!("{} takes GET, not {}", head.path, head.method),
        );
        r.extra = "Allow: GET\r\n".into();
        return r;
    }
    let scope = match head.authorization.as_deref() {
        Some(a) if a.starts_with("Basic ") && constant_eq(a, &shared.operator_authorization) => {
            Scope::All
        }
        Some(a) if a.starts_with("Bearer ") => match store.authenticate(Some(a), remote) {
            Ok(agent) => Scope::Customer(agent.customer_id),
            Err(r) => return plain(r.status, &r.reason),
        },
        _ => {
            let mut r = plain(
                401,
                "sign in as the operator, or as an agent with its credentials",
            );
            r.extra =
                "WWW-Authenticate: Basic realm=\"OpenDCA cloud\", charset=\"UTF-8\"\r\n".into();
            return r;
        }
    };
    let page = web::get(&store, scope, &head.path);
    Reply {
        status: page.status,
        content_type: page.content_type,
        body: page.body,
        extra: String::new(),
        log: String::new(),
    }
}

fn constant_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
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
