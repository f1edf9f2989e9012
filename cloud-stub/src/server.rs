//! The HTTPS server: TLS with tokio-rustls, HTTP/1.1 framing from the core
//! (the same code the agent and the firmware use), keep-alive connections,
//! and bounded heads, bodies and idle times. Database work runs on blocking
//! threads, one transaction per exchange.

use crate::exchange;
use crate::store::{Scope, Store};
use crate::web;
use dca_core::sync::message::Request;
use dca_core::sync::{self, CONTENT_TYPE, ENDPOINT, http};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// The largest request head accepted (431 beyond).
pub const MAX_HEAD: usize = 16 * 1024;
/// The largest request body accepted (413 beyond): a batch of a few thousand
/// readings.
pub const MAX_BODY: usize = 8 * 1024 * 1024;
/// A connection silent for this long is closed.
const IDLE: Duration = Duration::from_secs(30);
const HANDSHAKE: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub struct Shared {
    pub store: Mutex<Store>,
    /// The `Authorization` value that opens every customer's pages.
    pub operator_authorization: String,
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
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        426 => "Upgrade Required",
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

/// Serves until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    shared: Arc<Shared>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, remote)) => {
                    let (acceptor, shared) = (acceptor.clone(), shared.clone());
                    tokio::spawn(async move {
                        let _ = stream.set_nodelay(true);
                        match tokio::time::timeout(HANDSHAKE, acceptor.accept(stream)).await {
                            Ok(Ok(tls)) => connection(tls, remote, shared).await,
                            Ok(Err(e)) => eprintln!("dca-cloud: {remote}: TLS handshake failed: {e}"),
                            Err(_) => eprintln!("dca-cloud: {remote}: TLS handshake timed out"),
                        }
                    });
                }
                // Out of descriptors and the like: say so and keep serving.
                Err(e) => {
                    eprintln!("dca-cloud: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            () = &mut shutdown => return,
        }
    }
}

async fn read_more<S: AsyncReadExt + Unpin>(s: &mut S, buf: &mut Vec<u8>) -> Option<usize> {
    let mut chunk = [0u8; 16 * 1024];
    match tokio::time::timeout(IDLE, s.read(&mut chunk)).await {
        Ok(Ok(0)) | Ok(Err(_)) | Err(_) => None,
        Ok(Ok(n)) => {
            buf.extend_from_slice(&chunk[..n]);
            Some(n)
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
    let mut head = [0u8; 1024];
    let extra = if close {
        format!("{}Connection: close\r\n", reply.extra)
    } else {
        reply.extra.clone()
    };
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

async fn connection<S: AsyncReadExt + AsyncWriteExt + Unpin>(
    mut s: S,
    remote: SocketAddr,
    shared: Arc<Shared>,
) {
    let mut buf = Vec::new();
    loop {
        let head = loop {
            match head_of(&buf) {
                Ok(Some(h)) => break h,
                Ok(None) if buf.len() > MAX_HEAD => {
                    let r = plain(431, "request head too large");
                    eprintln!("dca-cloud: {remote}: 431 {}", r.log);
                    let _ = send(&mut s, &r, true).await;
                    return;
                }
                Ok(None) => {
                    if read_more(&mut s, &mut buf).await.is_none() {
                        return;
                    }
                }
                Err(e) => {
                    let r = plain(400, &e.to_string());
                    eprintln!("dca-cloud: {remote}: 400 {}", r.log);
                    let _ = send(&mut s, &r, true).await;
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
            eprintln!(
                "dca-cloud: {remote} {} {}: 413 {}",
                head.method, head.path, r.log
            );
            let _ = send(&mut s, &r, true).await;
            return;
        }
        let end = head.head_len + head.content_length;
        while buf.len() < end {
            if read_more(&mut s, &mut buf).await.is_none() {
                return;
            }
        }
        let body: Vec<u8> = buf[head.head_len..end].to_vec();
        buf.drain(..end);
        let close = head.close;
        let (method, path) = (head.method.clone(), head.path.clone());
        let shared2 = shared.clone();
        let remote_text = remote.ip().to_string();
        let reply =
            tokio::task::spawn_blocking(move || route(&shared2, &head, &body, &remote_text))
                .await
                .unwrap_or_else(|e| plain(500, &format!("handler failed: {e}")));
        if reply.status >= 400 {
            eprintln!(
                "dca-cloud: {remote} {method} {path}: {} {}",
                reply.status, reply.log
            );
        } else if !reply.log.is_empty() {
            eprintln!("dca-cloud: {remote}: {}", reply.log);
        }
        if send(&mut s, &reply, close).await.is_err() || close {
            let _ = s.shutdown().await;
            return;
        }
    }
}

fn route(shared: &Shared, head: &Head, body: &[u8], remote: &str) -> Reply {
    let mut store = match shared.store.lock() {
        Ok(s) => s,
        Err(poisoned) => poisoned.into_inner(),
    };
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
            Ok(req) => exchange::handle(&mut store, &req, head.authorization.as_deref(), remote),
            // Another protocol version: refused in its own framing, so an
            // older agent can say why (and that it must be upgraded).
            Err(sync::Error::Version(v)) => {
                let answer = exchange::refuse_version(v);
                store.audit(
                    None,
                    None,
                    remote,
                    "version_refused",
                    &format!("sync protocol version {v}"),
                );
                answer
            }
            Err(e) => {
                let r = crate::store::Refusal::new(400, format!("malformed request body: {e}"));
                store.audit(None, None, remote, "bad_request", &r.reason);
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
