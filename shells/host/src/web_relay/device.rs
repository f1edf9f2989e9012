//! One browser request to the session's device, over a connection of its
//! own: written as HTTP/1.0 with `Connection: close` (so the device should
//! answer with a length, or until it closes; the chunks some embedded
//! servers send anyway are read too), sent to the session's address alone,
//! and the answer read within bounds and judged before anything of it
//! leaves the agent.

use super::Limits;
use super::device_tls;
use dca_core::sync::chunked;
use dca_core::sync::http::{self, Body, HttpError};
use dca_core::sync::web_access::{self, Refusal};
use rustls::pki_types::ServerName;
use rustls::{ClientConnection, StreamOwned};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Instant;

/// An answer head larger than this is refused.
const MAX_HEAD: usize = 64 * 1024;

/// What the browser is sent back: the device's answer, or why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    /// Header lines (`Name: value` CRLF each).
    pub head: Vec<u8>,
    pub body: Vec<u8>,
    /// Set when the agent refused: then nothing of the device's answer,
    /// head or body, is in the reply.
    pub refused: Option<String>,
}

impl Reply {
    pub fn refused(status: u16, reason: impl Into<String>) -> Reply {
        Reply {
            status,
            head: Vec::new(),
            body: Vec::new(),
            refused: Some(reason.into()),
        }
    }

    pub fn refusal(r: Refusal) -> Reply {
        Reply::refused(r.status(), r.reason())
    }
}

/// Request headers the agent never passes on: the ones of one connection
/// (the cloud's with the browser), the ones it writes itself (`Host`, the
/// length) and `Expect`, which would have the device answer twice.
fn dropped_from_request(name: &str) -> bool {
    web_access::hop_by_hop(name)
        || ["host", "content-length", "expect"]
            .iter()
            .any(|n| name.trim().eq_ignore_ascii_case(n))
}

/// Answer headers the browser never sees: the device's connection's own,
/// and the length, which the cloud writes for the body it sends.
fn dropped_from_answer(name: &str) -> bool {
    web_access::hop_by_hop(name) || name.trim().eq_ignore_ascii_case("content-length")
}

fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn malformed(why: &str) -> Reply {
    Reply::refused(400, format!("malformed request: {why}"))
}

/// The bytes sent to the device for a request the rules admitted, or why
/// it cannot be sent. What the rules judged must be what the device reads:
/// a path or a header line that could end a line early (and smuggle a
/// second request in) is refused, and so is a second `Content-Type`, since
/// the rules read the first and a device may read another.
pub fn request(
    target: SocketAddr,
    method: &str,
    path: &str,
    head: &[u8],
    body: &[u8],
) -> Result<Vec<u8>, Reply> {
    if path.is_empty() || !path.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(malformed("the path holds characters HTTP does not allow"));
    }
    let Ok(head) = std::str::from_utf8(head) else {
        return Err(malformed("header lines that are not text"));
    };
    let mut out = format!("{method} {path} HTTP/1.0\r\nHost: {target}\r\n");
    let mut content_types = 0;
    for line in head.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(malformed("a header line without a name"));
        };
        if !is_token(name) {
            return Err(malformed("a header name HTTP does not allow"));
        }
        let value = value.trim_matches([' ', '\t']);
        if value.chars().any(|c| c.is_control() && c != '\t') {
            return Err(malformed("a header value with control characters"));
        }
        if name.eq_ignore_ascii_case("content-type") {
            content_types += 1;
            if content_types > 1 {
                return Err(malformed("more than one Content-Type"));
            }
        }
        if dropped_from_request(name) {
            continue;
        }
        out.push_str(name);
        out.push_str(": ");
        out.push_str(value);
        out.push_str("\r\n");
    }
    if method == "POST" || !body.is_empty() {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("Connection: close\r\n\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    Ok(bytes)
}

/// A connection to the device, plain or TLS, with its socket at hand for
/// the timeouts.
trait Wire: Read + Write {
    fn socket(&self) -> &TcpStream;
}

impl Wire for TcpStream {
    fn socket(&self) -> &TcpStream {
        self
    }
}

impl Wire for StreamOwned<ClientConnection, TcpStream> {
    fn socket(&self) -> &TcpStream {
        &self.sock
    }
}

/// Sends `request` to `target` (and nowhere else) and reads the answer,
/// judged: the device's reply, or the agent's refusal. `head_only`: the
/// request was a HEAD, whose answer has no body whatever its length says.
pub fn exchange(
    target: SocketAddr,
    https: bool,
    request: &[u8],
    head_only: bool,
    limits: &Limits,
) -> Reply {
    let tcp = match TcpStream::connect_timeout(&target, limits.connect) {
        Ok(s) => s,
        Err(e) if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) => {
            return Reply::refused(
                504,
                format!(
                    "device unreachable: {target} did not take the connection within {} s",
                    limits.connect.as_secs()
                ),
            );
        }
        Err(e) => return Reply::refused(502, format!("device unreachable: {target}: {e}")),
    };
    let _ = tcp.set_nodelay(true);
    let _ = tcp.set_write_timeout(Some(limits.read));
    // From the first byte: a TLS handshake reads inside the first write, and
    // a device that never answers its ClientHello must not hold the thread.
    let _ = tcp.set_read_timeout(Some(limits.read));
    let deadline = Instant::now() + limits.total;
    let answered = if https {
        let config = match device_tls::config() {
            Ok(c) => c,
            Err(e) => return Reply::refused(502, format!("TLS to the device: {e}")),
        };
        match ClientConnection::new(config, ServerName::from(target.ip())) {
            Ok(conn) => talk(
                &mut StreamOwned::new(conn, tcp),
                request,
                head_only,
                limits,
                deadline,
            ),
            Err(e) => Err(Reply::refused(502, format!("TLS to the device: {e}"))),
        }
    } else {
        let mut tcp = tcp;
        talk(&mut tcp, request, head_only, limits, deadline)
    };
    answered.unwrap_or_else(|refused| refused)
}

fn talk(
    wire: &mut impl Wire,
    request: &[u8],
    head_only: bool,
    limits: &Limits,
    deadline: Instant,
) -> Result<Reply, Reply> {
    let sent = wire.write_all(request).and_then(|()| wire.flush());
    if let Err(e) = sent {
        return Err(Reply::refused(
            502,
            format!("the device did not take the request: {e}"),
        ));
    }
    let (status, head, mut body, framing) = read_head(wire, limits, deadline)?;
    match framing {
        _ if head_only => body.clear(),
        Framing::Chunked => body = read_chunks(wire, body, limits, deadline)?,
        Framing::Plain(Body::Empty) => body.clear(),
        Framing::Plain(Body::Length(len)) if len > limits.max_answer => {
            return Err(too_large(limits));
        }
        Framing::Plain(Body::Length(len)) => {
            while body.len() < len {
                if read_some(wire, &mut body, limits, deadline)? == 0 {
                    return Err(Reply::refused(
                        502,
                        "the device closed the connection mid-answer",
                    ));
                }
            }
            body.truncate(len);
        }
        Framing::Plain(Body::UntilClose) => loop {
            // What came with the head counts too.
            if body.len() > limits.max_answer {
                return Err(too_large(limits));
            }
            if read_some(wire, &mut body, limits, deadline)? == 0 {
                break;
            }
        },
    }
    match answer_head(&head) {
        Ok(kept) => Ok(Reply {
            status,
            head: kept,
            body,
            refused: None,
        }),
        // The body is dropped here: it never leaves the agent.
        Err(r) => Err(Reply::refusal(r)),
    }
}

fn too_large(limits: &Limits) -> Reply {
    Reply::refused(
        502,
        format!("answer too large: over {} bytes", limits.max_answer),
    )
}

/// Reads up to the end of the answer's head (skipping interim 1xx
/// answers); returns the status, the head, the body bytes read with it,
/// and how the body ends.
/// How the device's answer body is framed.
enum Framing {
    Plain(Body),
    /// `Transfer-Encoding: chunked`, which HTTP/1.0 does not allow but some
    /// embedded servers send regardless.
    Chunked,
}

fn read_head(
    wire: &mut impl Wire,
    limits: &Limits,
    deadline: Instant,
) -> Result<(u16, Vec<u8>, Vec<u8>, Framing), Reply> {
    let mut buf = Vec::new();
    loop {
        match http::parse_response(&buf, false) {
            Ok(Some(h)) if (100..200).contains(&h.status) => {
                buf.drain(..h.head_len);
                continue;
            }
            Ok(Some(h)) => {
                let body = buf.split_off(h.head_len);
                return Ok((h.status, buf, body, Framing::Plain(h.body)));
            }
            Ok(None) if buf.len() > MAX_HEAD => {
                return Err(Reply::refused(
                    502,
                    format!("the device's answer head is over {MAX_HEAD} bytes"),
                ));
            }
            Ok(None) => {}
            Err(HttpError::Chunked) => match chunked::response_head(&buf) {
                Ok(Some((status, head_len))) if (100..200).contains(&status) => {
                    buf.drain(..head_len);
                    continue;
                }
                Ok(Some((status, head_len))) => {
                    let body = buf.split_off(head_len);
                    // These have no body, whatever the head says.
                    let framing = if status == 204 || status == 304 {
                        Framing::Plain(Body::Empty)
                    } else {
                        Framing::Chunked
                    };
                    return Ok((status, buf, body, framing));
                }
                Ok(None) => {}
                Err(e) => {
                    return Err(Reply::refused(
                        502,
                        format!("the device's answer cannot be read: {e}"),
                    ));
                }
            },
            Err(e) => {
                return Err(Reply::refused(
                    502,
                    format!("the device's answer is not HTTP: {e}"),
                ));
            }
        }
        if read_some(wire, &mut buf, limits, deadline)? == 0 {
            return Err(Reply::refused(
                502,
                "the device closed the connection without answering",
            ));
        }
    }
}

/// Reads a chunked body, of which `raw` came with the head: its data, at
/// most `max_answer` bytes of it.
fn read_chunks(
    wire: &mut impl Wire,
    mut raw: Vec<u8>,
    limits: &Limits,
    deadline: Instant,
) -> Result<Vec<u8>, Reply> {
    let broken = |e: HttpError| Reply::refused(502, format!("the device's chunks are broken: {e}"));
    let mut data = Vec::new();
    loop {
        let progress = chunked::body(&raw, &mut |d| data.extend_from_slice(d)).map_err(broken)?;
        // What is held unread is one chunk at most, and its line.
        raw.drain(..progress.consumed);
        if data.len() > limits.max_answer || raw.len() > limits.max_answer.saturating_add(MAX_HEAD)
        {
            return Err(too_large(limits));
        }
        if progress.end.is_some() {
            return Ok(data);
        }
        if read_some(wire, &mut raw, limits, deadline)? == 0 {
            return Err(Reply::refused(
                502,
                "the device closed the connection mid-answer",
            ));
        }
    }
}

/// Reads what has come into `buf`: 0 at the end of the stream. Each read
/// waits `limits.read` at most, and the whole answer `limits.total`.
fn read_some(
    wire: &mut impl Wire,
    buf: &mut Vec<u8>,
    limits: &Limits,
    deadline: Instant,
) -> Result<usize, Reply> {
    let late = || {
        Reply::refused(
            504,
            format!(
                "the device did not answer in time ({} s a read, {} s in all)",
                limits.read.as_secs(),
                limits.total.as_secs()
            ),
        )
    };
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(late());
    }
    let _ = wire.socket().set_read_timeout(Some(left.min(limits.read)));
    let mut chunk = [0u8; 16 * 1024];
    match wire.read(&mut chunk) {
        Ok(n) => {
            buf.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
            Ok(n)
        }
        // A device that closes without TLS close_notify ends its answer
        // all the same (many do).
        Err(e) if e.kind() == ErrorKind::UnexpectedEof => Ok(0),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Err(late()),
        Err(e) => Err(Reply::refused(
            502,
            format!("the device's answer broke off: {e}"),
        )),
    }
}

/// The answer's header lines the browser may see, or the rules' refusal.
/// Each line is judged on its own: the rules read the first of a repeated
/// header, and a browser may act on another. A line that is not UTF-8 is
/// judged on its lossy text, so a byte the rules cannot read does not hide
/// an attachment from them.
pub fn answer_head(raw: &[u8]) -> Result<Vec<u8>, Refusal> {
    let mut kept = Vec::new();
    // The first line is the status line.
    for line in raw.split(|b| *b == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let text = String::from_utf8_lossy(line);
        web_access::check_response(text.as_bytes())?;
        let name = text.split_once(':').map_or("", |(n, _)| n.trim());
        if dropped_from_answer(name) {
            continue;
        }
        kept.extend_from_slice(line);
        kept.extend_from_slice(b"\r\n");
    }
    Ok(kept)
}
