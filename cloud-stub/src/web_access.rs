//! Device Web Access in the running cloud: each session gets an entry point
//! of its own (a TLS listener on a port of its own, opened with the
//! session and closed with it), reachable only with the session's cookie,
//! which the one-time key of the operator's redirect sets. A browser's
//! request is judged ([`dca_core::sync::web_access`]), queued for the
//! session's agent, whose `relay` request (held like a `listen`) takes it;
//! the agent's next `relay` brings the device's answer, judged again. Every
//! request, relayed or refused, is written to the device's access log.
//!
//! Why a port per session rather than a path on the cloud's own: the
//! device's pages use absolute paths (`/status`, `/css/…`) and set their
//! own cookies, which only work at the root of an origin; and closing the
//! listener is a visible, testable end of the session (the port refuses).

use crate::secret;
use crate::store::now_ms;
use crate::store::web_sessions::{OpenedWeb, WebRequest};
use dca_core::sync::message::{RelayAnswer, Response};
use dca_core::sync::web_access::{self as rules, Refusal};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_rustls::TlsAcceptor;

/// A request body a browser may send through (forms are small).
pub const MAX_REQUEST_BODY: usize = 64 * 1024;
const MAX_HEAD: usize = 16 * 1024;
/// How long a browser waits for the device's answer.
const ANSWER_WITHIN: Duration = Duration::from_secs(30);
/// A session with no request for this long is closed.
pub const IDLE: Duration = Duration::from_millis(rules::IDLE.millis());
/// Requests queued for the agent at most; more are refused (503).
const QUEUE: usize = 32;
/// Sessions one operator may hold open at once.
pub const PER_OPERATOR: usize = 4;
/// Sessions the cloud holds open at once.
pub const AT_ONCE: usize = 64;
/// Connections one session's entry point serves at once (a browser opens
/// six or so); more are closed at accept.
const CONNECTIONS: usize = 16;

/// A browser request waiting for the agent.
struct Pending {
    method: String,
    path: String,
    head: Vec<u8>,
    body: Vec<u8>,
    reply: oneshot::Sender<Answered>,
}

/// The device's answer, or the agent's refusal.
#[derive(Debug)]
pub struct Answered {
    pub status: u16,
    pub head: Vec<u8>,
    pub body: Vec<u8>,
    pub refused: Option<String>,
}

/// The operator who opened a session: their row and dealer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opener {
    pub operator_id: i64,
    pub dealer_id: i64,
}

/// One open session.
pub struct Tunnel {
    pub id: u64,
    pub agent: String,
    pub operator: String,
    /// Who opened it, by the operator's row and dealer, not the name: an
    /// operator removed and added again under the name is someone else.
    opener: Opener,
    pub device_id: i64,
    pub port: u16,
    /// The entry key's hash; the key works once.
    key_hash: Vec<u8>,
    key_used: AtomicBool,
    /// The cookie value that admits a browser to this session.
    cookie: String,
    expires: Instant,
    last: Mutex<Instant>,
    idle: Duration,
    queue: mpsc::Sender<Pending>,
    taken: tokio::sync::Mutex<mpsc::Receiver<Pending>>,
    /// Requests forwarded to the agent, by sequence number.
    waiting: Mutex<HashMap<u64, oneshot::Sender<Answered>>>,
    seq: AtomicU64,
    closed: AtomicBool,
    ended: Notify,
    listener: Mutex<Option<tokio::task::AbortHandle>>,
    /// Browser connections being served.
    connections: std::sync::atomic::AtomicUsize,
}

impl std::fmt::Debug for Tunnel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tunnel")
            .field("id", &self.id)
            .field("agent", &self.agent)
            .field("operator", &self.operator)
            .field("device_id", &self.device_id)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Tunnel {
    fn is_open(&self, now: Instant) -> bool {
        let last = *self.last.lock().unwrap_or_else(|p| p.into_inner());
        !self.closed.load(Ordering::Acquire) && now < self.expires && now < last + self.idle
    }

    fn touch(&self) {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    fn ends(&self) -> Instant {
        let last = *self.last.lock().unwrap_or_else(|p| p.into_inner());
        self.expires.min(last + self.idle)
    }

    fn cookie_name(&self) -> String {
        format!("__Host-dca_web_{}", self.id)
    }
}

/// Every open session, and what a new one's listener needs.
#[derive(Default)]
pub struct Tunnels {
    open: Mutex<HashMap<u64, Arc<Tunnel>>>,
    /// The cloud's TLS identity and address, set when it starts serving.
    entry: OnceLock<(TlsAcceptor, IpAddr)>,
    /// Idle timeout of new sessions (tests shorten it).
    idle: Mutex<Option<Duration>>,
}

impl std::fmt::Debug for Tunnels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tunnels")
            .field("open", &self.open_count())
            .finish_non_exhaustive()
    }
}

/// What the tunnel side needs of the server: the store, for the access
/// log and the session's end, and the log.
pub trait Host: Send + Sync + 'static {
    /// Whether `operator` may still open devices (not removed, still a
    /// dealer operator of the same dealer: another process may have
    /// changed it).
    fn may_open(&self, opener: Opener) -> bool;
    fn log_request(&self, device_id: i64, r: WebRequest);
    fn session_ended(&self, id: u64, reason: &str);
    fn log(&self, line: &str);
}

impl Tunnels {
    /// Where new sessions listen: the cloud's own address and identity.
    pub fn serve_on(&self, acceptor: TlsAcceptor, ip: IpAddr) {
        let _ = self.entry.set((acceptor, ip));
    }

    pub fn set_idle(&self, idle: Duration) {
        *self.idle.lock().unwrap_or_else(|p| p.into_inner()) = Some(idle);
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Tunnel>>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn open_count(&self) -> usize {
        self.map().len()
    }

    pub fn get(&self, id: u64) -> Option<Arc<Tunnel>> {
        self.map().get(&id).cloned()
    }

    /// Whether `operator` may open one more session: at most
    /// [`PER_OPERATOR`] each (an agent relays no more at once) and
    /// [`AT_ONCE`] in all, each holding a port and its tasks.
    pub fn room_for(&self, operator: &str) -> Result<(), String> {
        let open = self.map();
        let mine = open.values().filter(|t| t.operator == operator).count();
        if mine >= PER_OPERATOR {
            return Err(format!(
                "{operator} has {mine} web access sessions open: close one first"
            ));
        }
        if open.len() >= AT_ONCE {
            return Err(format!(
                "{} web access sessions are open: try again when one ends",
                open.len()
            ));
        }
        Ok(())
    }

    /// Ends every session of `operator` (signed out, removed).
    pub fn close_of<H: Host>(&self, operator: &str, reason: &str, host: &H) {
        let ids: Vec<u64> = self
            .map()
            .values()
            .filter(|t| t.operator == operator)
            .map(|t| t.id)
            .collect();
        for id in ids {
            self.close(id, reason, host);
        }
    }

    /// Starts the session's listener (from a runtime thread or a blocking
    /// one of the runtime); its port.
    pub fn start<H: Host>(
        self: &Arc<Self>,
        host: Arc<H>,
        opened: &OpenedWeb,
        operator: &str,
        opener: Opener,
    ) -> Result<u16, String> {
        let (acceptor, ip) = self
            .entry
            .get()
            .cloned()
            .ok_or("the cloud is not serving yet")?;
        let std_listener = std::net::TcpListener::bind(SocketAddr::new(ip, 0))
            .map_err(|e| format!("cannot open an entry point on {ip}: {e}"))?;
        std_listener
            .set_nonblocking(true)
            .map_err(|e| e.to_string())?;
        let port = std_listener.local_addr().map_err(|e| e.to_string())?.port();
        let runtime = tokio::runtime::Handle::try_current().map_err(|e| e.to_string())?;
        let listener = {
            let _guard = runtime.enter();
            tokio::net::TcpListener::from_std(std_listener).map_err(|e| e.to_string())?
        };
        let (queue, taken) = mpsc::channel(QUEUE);
        let now = Instant::now();
        // The session's own length, not its expiry less the wall clock:
        // the store may keep another clock (the simulation's), and the
        // wall clock may step.
        let ttl = Duration::from_secs(opened.ttl_s);
        let tunnel = Arc::new(Tunnel {
            id: opened.id,
            agent: opened.agent_id.clone(),
            operator: operator.to_string(),
            opener,
            device_id: opened.device_id,
            port,
            key_hash: secret::hash(&opened.key),
            key_used: AtomicBool::new(false),
            cookie: secret::random_hex(32),
            expires: now + ttl,
            last: Mutex::new(now),
            idle: self
                .idle
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .unwrap_or(IDLE),
            queue,
            taken: tokio::sync::Mutex::new(taken),
            waiting: Mutex::new(HashMap::new()),
            seq: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            ended: Notify::new(),
            listener: Mutex::new(None),
            connections: std::sync::atomic::AtomicUsize::new(0),
        });
        self.map().insert(opened.id, tunnel.clone());
        let accept = runtime.spawn(accept_loop(
            listener,
            acceptor,
            tunnel.clone(),
            host.clone(),
        ));
        *tunnel.listener.lock().unwrap_or_else(|p| p.into_inner()) = Some(accept.abort_handle());
        runtime.spawn(reaper(self.clone(), tunnel, host));
        Ok(port)
    }

    /// Ends a session: its listener closes, its waiting requests and its
    /// agent's relay are told, and the store records why.
    pub fn close<H: Host>(&self, id: u64, reason: &str, host: &H) -> bool {
        let Some(t) = self.map().remove(&id) else {
            return false;
        };
        t.closed.store(true, Ordering::Release);
        if let Some(a) = t.listener.lock().unwrap_or_else(|p| p.into_inner()).take() {
            a.abort();
        }
        t.waiting.lock().unwrap_or_else(|p| p.into_inner()).clear();
        t.ended.notify_waiters();
        host.session_ended(id, reason);
        true
    }

    /// The agent's `relay`: hands over the answer it brings, then waits up
    /// to `hold` for the next browser request. `None`: not this agent's
    /// open session (it is told the session is closed).
    pub async fn relay(
        &self,
        agent: &str,
        session: u64,
        answer: Option<RelayAnswer<'_>>,
        hold: Duration,
    ) -> Vec<u8> {
        let Some(t) = self.get(session).filter(|t| t.agent == agent) else {
            return encode(&Response::RelayClosed);
        };
        if let Some(a) = answer {
            let waiter = t
                .waiting
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&a.seq);
            if let Some(w) = waiter {
                let _ = w.send(Answered {
                    status: a.status,
                    head: a.head.to_vec(),
                    body: a.body.to_vec(),
                    refused: a.refused.map(str::to_string),
                });
            }
        }
        let ended = t.ended.notified();
        tokio::pin!(ended);
        let mut taken = tokio::select! {
            g = t.taken.lock() => g,
            () = &mut ended => return encode(&Response::RelayClosed),
        };
        // Requests whose browser gave up (504 after its wait) are dropped,
        // not carried out late: a form the operator was told failed stays
        // undone.
        let fresh = async {
            loop {
                match taken.recv().await {
                    Some(p) if p.reply.is_closed() => continue,
                    other => return other,
                }
            }
        };
        let next = tokio::select! {
            n = tokio::time::timeout(hold, fresh) => n,
            () = &mut ended => return encode(&Response::RelayClosed),
        };
        match next {
            Ok(Some(p)) => {
                let seq = t.seq.fetch_add(1, Ordering::Relaxed) + 1;
                t.waiting
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(seq, p.reply);
                encode(&Response::Forward {
                    seq,
                    method: &p.method,
                    path: &p.path,
                    head: &p.head,
                    body: &p.body,
                })
            }
            Ok(None) => encode(&Response::RelayClosed),
            Err(_) if t.closed.load(Ordering::Acquire) => encode(&Response::RelayClosed),
            Err(_) => encode(&Response::RelayIdle),
        }
    }
}

fn encode(r: &Response<'_>) -> Vec<u8> {
    let mut out = vec![0u8; r.encoded_len()];
    match r.encode(&mut out) {
        Ok(n) => out.truncate(n),
        Err(_) => out.clear(),
    }
    out
}

/// Closes the session when its time is up (expiry, or idle since its last
/// request).
async fn reaper<H: Host>(tunnels: Arc<Tunnels>, t: Arc<Tunnel>, host: Arc<H>) {
    loop {
        let ends = t.ends();
        tokio::time::sleep_until(ends.into()).await;
        if t.closed.load(Ordering::Acquire) {
            return;
        }
        let now = Instant::now();
        if !t.is_open(now) {
            let why = if now >= t.expires { "expired" } else { "idle" };
            tunnels.close(t.id, why, host.as_ref());
            return;
        }
    }
}

async fn accept_loop<H: Host>(
    listener: tokio::net::TcpListener,
    acceptor: TlsAcceptor,
    t: Arc<Tunnel>,
    host: Arc<H>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of descriptors and the like: the session's own entry
            // point waits a little rather than spinning.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        if t.connections.fetch_add(1, Ordering::AcqRel) >= CONNECTIONS {
            t.connections.fetch_sub(1, Ordering::AcqRel);
            drop(stream);
            continue;
        }
        let (acceptor, t, host) = (acceptor.clone(), t.clone(), host.clone());
        tokio::spawn(async move {
            if let Ok(Ok(tls)) =
                tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await
            {
                browser(tls, t.clone(), host).await;
            }
            t.connections.fetch_sub(1, Ordering::AcqRel);
        });
    }
}

/// A browser's request, as read off the entry point.
struct BrowserRequest {
    method: String,
    path: String,
    /// Every header, as (name, value).
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl BrowserRequest {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The header lines the device gets: no hop-by-hop headers, no Host
    /// (the agent writes the device's), nothing that names the cloud
    /// (Referer, Origin), and of the cookies only this session's device's
    /// own, under their own names (see [`device_cookie_prefix`]).
    fn forwarded_head(&self, session: u64) -> Vec<u8> {
        let prefix = device_cookie_prefix(session);
        let mut out = String::new();
        for (n, v) in &self.headers {
            let lower = n.to_ascii_lowercase();
            if rules::hop_by_hop(n) || matches!(lower.as_str(), "host" | "referer" | "origin") {
                continue;
            }
            if lower == "cookie" {
                let kept: Vec<&str> = v
                    .split(';')
                    .filter_map(|c| c.trim().strip_prefix(prefix.as_str()))
                    .filter(|c| !c.is_empty())
                    .collect();
                if !kept.is_empty() {
                    out.push_str(&format!("Cookie: {}\r\n", kept.join("; ")));
                }
                continue;
            }
            out.push_str(&format!("{n}: {v}\r\n"));
        }
        out.into_bytes()
    }
}

async fn read_request<S: AsyncReadExt + Unpin>(s: &mut S) -> Result<BrowserRequest, (u16, String)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => {
                let method = req.method.unwrap_or("").to_string();
                let path = req.path.unwrap_or("").to_string();
                let headers: Vec<(String, String)> = req
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_string(),
                            String::from_utf8_lossy(h.value).trim().to_string(),
                        )
                    })
                    .collect();
                let mut r = BrowserRequest {
                    method,
                    path,
                    headers,
                    body: Vec::new(),
                };
                if r.header("transfer-encoding").is_some() {
                    return Err((411, "a body needs a Content-Length".into()));
                }
                let want: usize = match r.header("content-length") {
                    None => 0,
                    Some(v) => v
                        .parse()
                        .map_err(|_| (400, format!("Content-Length {v:?}")))?,
                };
                if want > MAX_REQUEST_BODY {
                    return Err((
                        413,
                        format!("a body of {want} bytes: uploads are not relayed"),
                    ));
                }
                let mut body = buf.split_off(len);
                while body.len() < want {
                    let n = tokio::time::timeout_at(deadline, s.read(&mut chunk))
                        .await
                        .map_err(|_| (408, "the body did not come in time".to_string()))?
                        .map_err(|e| (400, e.to_string()))?;
                    if n == 0 {
                        return Err((400, "closed mid-body".into()));
                    }
                    body.extend_from_slice(&chunk[..n]);
                }
                body.truncate(want);
                r.body = body;
                return Ok(r);
            }
            Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => {
                return Err((431, "request head too large".into()));
            }
            Ok(httparse::Status::Partial) => {}
            Err(e) => return Err((400, format!("not HTTP: {e}"))),
        }
        let n = tokio::time::timeout_at(deadline, s.read(&mut chunk))
            .await
            .map_err(|_| (408, "the request did not come in time".to_string()))?
            .map_err(|e| (400, e.to_string()))?;
        if n == 0 {
            return Err((0, String::new()));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn respond<S: AsyncWriteExt + Unpin>(s: &mut S, status: u16, head: &[u8], body: &[u8]) {
    let mut out = format!("HTTP/1.1 {status} {}\r\n", crate::server::reason(status)).into_bytes();
    out.extend_from_slice(head);
    out.extend_from_slice(
        format!(
            "Content-Length: {}\r\nConnection: close\r\nCache-Control: no-store\r\nReferrer-Policy: no-referrer\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(body);
    let _ = tokio::time::timeout(Duration::from_secs(30), async {
        let _ = s.write_all(&out).await;
        let _ = s.flush().await;
        let _ = s.shutdown().await;
    })
    .await;
}

fn page(status: u16, text: &str) -> (u16, Vec<u8>, Vec<u8>) {
    (
        status,
        b"Content-Type: text/plain; charset=utf-8\r\n".to_vec(),
        format!("{text}\n").into_bytes(),
    )
}

/// Browsers scope cookies by host, not port: every entry point shares the
/// cloud's host name, so a device's cookies would reach the cloud's pages
/// and every other session's device. They travel renamed, under a prefix
/// of their session: set with it on the way out, and only those of this
/// session sent back, without it.
fn device_cookie_prefix(session: u64) -> String {
    format!("dwa{session}_")
}

/// The device's answer header lines the browser gets: its own, minus the
/// hop-by-hop ones and the length (recomputed), minus anything that would
/// reach past this session (`Clear-Site-Data`, and cookies with a domain
/// or a `__Host-`/`__Secure-` name, which would land on the cloud itself),
/// its cookies renamed to this session's (see [`device_cookie_prefix`]);
/// and told not to be sniffed or to download (a sandbox without
/// `allow-downloads`).
fn answered_head(head: &[u8], session: u64) -> Vec<u8> {
    let text = String::from_utf8_lossy(head);
    let prefix = device_cookie_prefix(session);
    let mut out = String::new();
    for line in text.lines() {
        let Some((n, v)) = line.split_once(':') else {
            continue;
        };
        let lower = n.trim().to_ascii_lowercase();
        if rules::hop_by_hop(&lower)
            || matches!(
                lower.as_str(),
                "content-length"
                    | "clear-site-data"
                    | "x-content-type-options"
                    | "content-security-policy"
            )
        {
            continue;
        }
        if lower == "set-cookie" {
            let v = v.trim();
            let name = v.split('=').next().unwrap_or("").trim();
            let scoped = v
                .split(';')
                .skip(1)
                .any(|a| a.trim().to_ascii_lowercase().starts_with("domain"));
            if name.is_empty()
                || scoped
                || name.starts_with("__Host-")
                || name.starts_with("__Secure-")
            {
                continue;
            }
            out.push_str(&format!("Set-Cookie: {prefix}{v}\r\n"));
            continue;
        }
        out.push_str(line.trim_end());
        out.push_str("\r\n");
    }
    out.push_str(
        "X-Content-Type-Options: nosniff\r\n\
         Content-Security-Policy: sandbox allow-scripts allow-forms allow-same-origin allow-popups\r\n",
    );
    out.into_bytes()
}

/// One browser connection: one request, one answer, closed.
async fn browser<S, H>(mut s: S, t: Arc<Tunnel>, host: Arc<H>)
where
    S: AsyncReadExt + AsyncWriteExt + Unpin,
    H: Host,
{
    let req = match read_request(&mut s).await {
        Ok(r) => r,
        Err((0, _)) => return,
        Err((status, why)) => {
            let (st, h, b) = page(status, &why);
            respond(&mut s, st, &h, &b).await;
            return;
        }
    };
    // The entry key is a secret: logged without it.
    // Without the query: the entry key is a secret, and a device's form
    // sent by GET carries its fields (a password) there.
    let logged_path = match req.path.split_once('?') {
        Some((p, _)) if p == "/.dwa/enter" => p.to_string(),
        Some((p, _)) => format!("{p}?…"),
        None => req.path.clone(),
    };
    let log = |status: u16, bytes: usize, refused: Option<&str>| {
        host.log_request(
            t.device_id,
            WebRequest {
                session: t.id,
                at_ms: now_ms(),
                operator: t.operator.clone(),
                method: req.method.clone(),
                path: logged_path.clone(),
                status,
                bytes: bytes as u64,
                refused: refused.map(str::to_string),
            },
        );
    };
    if !t.is_open(Instant::now()) {
        let (st, h, b) = page(410, Refusal::Closed.reason());
        respond(&mut s, st, &h, &b).await;
        return;
    }
    // The entry: the one-time key from the operator's redirect sets the
    // session's cookie.
    if let Some(query) = req.path.strip_prefix("/.dwa/enter?key=") {
        let good = secret::matches(query, &t.key_hash) && !t.key_used.swap(true, Ordering::AcqRel);
        if !good {
            log(403, 0, Some("entry key wrong or used"));
            let (st, h, b) = page(403, "this entry link is wrong or was used already");
            respond(&mut s, st, &h, &b).await;
            return;
        }
        let head = format!(
            "Set-Cookie: {}={}; Path=/; Secure; HttpOnly; SameSite=Strict\r\nLocation: /\r\n",
            t.cookie_name(),
            t.cookie
        );
        respond(&mut s, 303, head.as_bytes(), b"").await;
        return;
    }
    let admitted = req.header("cookie").is_some_and(|c| {
        c.split(';')
            .filter_map(|kv| kv.trim().split_once('='))
            .any(|(k, v)| k == t.cookie_name() && secret::same(v, &t.cookie))
    });
    if !admitted {
        log(403, 0, Some("no session cookie"));
        let (st, h, b) = page(403, "open the device from its page in the cloud");
        respond(&mut s, st, &h, &b).await;
        return;
    }
    if !host.may_open(t.opener) {
        log(403, 0, Some("the operator may no longer open devices"));
        let (st, h, b) = page(403, "the operator may no longer open devices");
        respond(&mut s, st, &h, &b).await;
        return;
    }
    t.touch();
    // A service worker would outlive the session on this origin (ports are
    // reused by later sessions).
    if req.header("service-worker").is_some() {
        log(403, 0, Some("service workers refused"));
        let (st, h, b) = page(403, "service workers refused");
        respond(&mut s, st, &h, &b).await;
        return;
    }
    let head = req.forwarded_head(t.id);
    // The cloud's own check, before anything goes to the agent.
    if let Err(r) = rules::check_request(&req.method, &req.path, &head, req.body.len()) {
        log(r.status(), 0, Some(r.reason()));
        let (st, h, b) = page(r.status(), r.reason());
        respond(&mut s, st, &h, &b).await;
        return;
    }
    let (reply, answer) = oneshot::channel();
    let pending = Pending {
        method: req.method.clone(),
        path: req.path.clone(),
        head,
        body: req.body.clone(),
        reply,
    };
    if t.queue.try_send(pending).is_err() {
        log(503, 0, Some("too many requests waiting for the agent"));
        let (st, h, b) = page(503, "too many requests waiting for the agent");
        respond(&mut s, st, &h, &b).await;
        return;
    }
    let answered = match tokio::time::timeout(ANSWER_WITHIN, answer).await {
        Ok(Ok(a)) => a,
        Ok(Err(_)) => {
            log(410, 0, Some(Refusal::Closed.reason()));
            let (st, h, b) = page(410, Refusal::Closed.reason());
            respond(&mut s, st, &h, &b).await;
            return;
        }
        Err(_) => {
            log(504, 0, Some("the agent did not answer in time"));
            let (st, h, b) = page(504, "the agent did not answer in time");
            respond(&mut s, st, &h, &b).await;
            return;
        }
    };
    if let Some(why) = &answered.refused {
        log(answered.status, 0, Some(why));
        let (st, h, b) = page(answered.status, why);
        respond(&mut s, st, &h, &b).await;
        return;
    }
    // And again on the way back: a file is not relayed, whatever the agent.
    if let Err(r) = rules::check_response(&answered.head) {
        log(r.status(), 0, Some(r.reason()));
        let (st, h, b) = page(r.status(), r.reason());
        respond(&mut s, st, &h, &b).await;
        return;
    }
    log(answered.status, answered.body.len(), None);
    let body = if req.method == "HEAD" {
        &[][..]
    } else {
        &answered.body[..]
    };
    respond(
        &mut s,
        answered.status,
        &answered_head(&answered.head, t.id),
        body,
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(cookie: &str) -> BrowserRequest {
        BrowserRequest {
            method: "GET".into(),
            path: "/".into(),
            headers: vec![
                ("Host".into(), "cloud:4443".into()),
                ("Cookie".into(), cookie.into()),
                ("Referer".into(), "https://cloud:8443/devices/1".into()),
                ("Connection".into(), "keep-alive".into()),
                ("Accept".into(), "text/html".into()),
            ],
            body: Vec::new(),
        }
    }

    #[test]
    fn a_device_gets_its_own_cookies_only_under_their_own_names() {
        let r = request(
            "__Host-dca_session=s3cret; __Host-dca_web_7=k; dwa7_sid=mine; dwa8_sid=other; plain=x",
        );
        let head = String::from_utf8(r.forwarded_head(7)).unwrap();
        assert_eq!(head, "Cookie: sid=mine\r\nAccept: text/html\r\n");
        // No cookie of this session: no Cookie header at all.
        let head = String::from_utf8(request("__Host-dca_session=s").forwarded_head(7)).unwrap();
        assert_eq!(head, "Accept: text/html\r\n");
    }

    #[test]
    fn a_device_cannot_set_cookies_beyond_its_session_nor_clear_the_cloud() {
        let device = b"Content-Type: text/html\r\n\
Set-Cookie: sid=abc; Path=/; HttpOnly\r\n\
Set-Cookie: __Host-dca_session=attacker; Secure; Path=/\r\n\
Set-Cookie: __Secure-x=1; Secure\r\n\
Set-Cookie: wide=1; Domain=cloud\r\n\
Clear-Site-Data: \"cookies\"\r\n\
Content-Security-Policy: default-src *\r\n\
Transfer-Encoding: chunked\r\n\
Content-Length: 12\r\n";
        let head = String::from_utf8(answered_head(device, 7)).unwrap();
        assert_eq!(
            head,
            "Content-Type: text/html\r\n\
Set-Cookie: dwa7_sid=abc; Path=/; HttpOnly\r\n\
X-Content-Type-Options: nosniff\r\n\
Content-Security-Policy: sandbox allow-scripts allow-forms allow-same-origin allow-popups\r\n"
        );
    }
}
