//! HTTP/1.1 framing for the sync exchanges, sans-I/O: request and response
//! heads are written into caller buffers and parsed (with `httparse`) from
//! whatever bytes have arrived so far. Bodies are always sized by
//! `Content-Length`: the protocol never streams, and a fixed length is what
//! every proxy, TLS-inspecting or not, passes through unchanged.

use core::fmt::{self, Write};

/// Headers beyond this many make a head malformed; proxies add a few, a
/// browser a dozen or so.
pub const MAX_HEADERS: usize = 48;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpError {
    /// The head is not HTTP/1.x (what `httparse` objected to).
    Malformed(&'static str),
    /// `Content-Length` is absent where a body is required, repeated with
    /// different values, or not a number.
    ContentLength,
    /// A chunked body: the protocol sizes every body up front.
    Chunked,
    /// The caller's buffer cannot hold the head.
    BufferTooSmall,
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Malformed(why) => write!(f, "malformed HTTP head: {why}"),
            HttpError::ContentLength => f.write_str("missing or invalid Content-Length"),
            HttpError::Chunked => f.write_str("chunked transfer encoding is not supported"),
            HttpError::BufferTooSmall => f.write_str("buffer too small for the HTTP head"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for HttpError {}

fn malformed(e: httparse::Error) -> HttpError {
    HttpError::Malformed(match e {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid new line",
        httparse::Error::Status => "invalid status",
        httparse::Error::Token => "invalid token",
        httparse::Error::TooManyHeaders => "too many headers",
        httparse::Error::Version => "invalid HTTP version",
    })
}

/// Writes formatted text into a byte slice, failing rather than truncating.
struct SliceWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl Write for SliceWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(fmt::Error)?;
        let dst = self.buf.get_mut(self.len..end).ok_or(fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

fn write_with(
    buf: &mut [u8],
    f: impl FnOnce(&mut SliceWriter<'_>) -> fmt::Result,
) -> Result<usize, HttpError> {
    let mut w = SliceWriter { buf, len: 0 };
    f(&mut w).map_err(|_| HttpError::BufferTooSmall)?;
    Ok(w.len)
}

/// The head of a sync request (always a POST of a CBOR body).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PostHead<'a> {
    /// `Host` header: the cloud's host name and, when not 443, its port.
    pub host: &'a str,
    pub path: &'a str,
    /// `Authorization` value, e.g. `Bearer <agent id>:<secret>`; none for
    /// enrollment.
    pub authorization: Option<&'a str>,
    pub content_type: &'a str,
    pub content_length: usize,
    pub user_agent: &'a str,
}

/// Writes the head of a POST; the body follows it on the wire.
pub fn write_post(buf: &mut [u8], h: &PostHead<'_>) -> Result<usize, HttpError> {
    write_with(buf, |w| {
        write!(
            w,
            "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nAccept: {}\r\n",
            h.path, h.host, h.user_agent, h.content_type, h.content_length, h.content_type
        )?;
        if let Some(auth) = h.authorization {
            write!(w, "Authorization: {auth}\r\n")?;
        }
        w.write_str("\r\n")
    })
}

/// Writes a `CONNECT` request that asks an HTTP proxy for a tunnel to
/// `authority` (`host:port`), with optional `Proxy-Authorization`.
pub fn write_connect(
    buf: &mut [u8],
    authority: &str,
    proxy_auth: Option<&str>,
) -> Result<usize, HttpError> {
    write_with(buf, |w| {
        write!(w, "CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n")?;
        if let Some(auth) = proxy_auth {
            write!(w, "Proxy-Authorization: {auth}\r\n")?;
        }
        w.write_str("\r\n")
    })
}

/// Writes a response head; `extra` lines are written as given (each must end
/// with CRLF).
pub fn write_response_head(
    buf: &mut [u8],
    status: u16,
    reason: &str,
    content_type: &str,
    content_length: usize,
    extra: &str,
) -> Result<usize, HttpError> {
    write_with(buf, |w| {
        write!(
            w,
            "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {content_length}\r\nCache-Control: no-store\r\n{extra}\r\n"
        )
    })
}

/// How a response's body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// No body by definition (204, 304, 1xx, a `CONNECT` tunnel's 2xx).
    Empty,
    /// `Content-Length` bytes.
    Length(usize),
    /// No length given: the body runs until the server closes the
    /// connection (HTTP/1.1 allows it; proxies' error pages do it).
    UntilClose,
}

/// The parts of a response head the agent acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHead {
    pub status: u16,
    /// Bytes of the head; the body starts here.
    pub head_len: usize,
    pub body: Body,
    /// The server will close the connection after this response.
    pub close: bool,
}

/// The parts of a request head the cloud acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHead<'b> {
    pub method: &'b str,
    pub path: &'b str,
    pub head_len: usize,
    /// 0 when absent (a GET).
    pub content_length: usize,
    pub content_type: Option<&'b str>,
    pub authorization: Option<&'b str>,
    /// `Cookie`: the operator's session on the cloud's web pages.
    pub cookie: Option<&'b str>,
    /// `Origin`: where a browser's form was posted from (checked against
    /// `Host` to refuse cross-site requests).
    pub origin: Option<&'b str>,
    /// `Host`: the name and port the client addressed.
    pub host: Option<&'b str>,
    pub close: bool,
}

/// What the headers say about the body and the connection.
struct Framing<'b> {
    content_length: Option<usize>,
    content_type: Option<&'b str>,
    authorization: Option<&'b str>,
    close: bool,
}

fn parse_len(v: &[u8]) -> Option<usize> {
    let s = core::str::from_utf8(v).ok()?.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn framing<'b>(headers: &[httparse::Header<'b>], http10: bool) -> Result<Framing<'b>, HttpError> {
    let mut f = Framing {
        content_length: None,
        content_type: None,
        authorization: None,
        close: http10,
    };
    for h in headers {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            let len = parse_len(h.value).ok_or(HttpError::ContentLength)?;
            if f.content_length.is_some_and(|l| l != len) {
                return Err(HttpError::ContentLength);
            }
            f.content_length = Some(len);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(HttpError::Chunked);
        } else if name.eq_ignore_ascii_case("content-type") {
            f.content_type = core::str::from_utf8(h.value).ok();
        } else if name.eq_ignore_ascii_case("authorization") {
            f.authorization = core::str::from_utf8(h.value).ok();
        } else if name.eq_ignore_ascii_case("connection") {
            let v = core::str::from_utf8(h.value).unwrap_or("");
            if v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")) {
                f.close = true;
            } else if v
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("keep-alive"))
            {
                f.close = false;
            }
        }
    }
    Ok(f)
}

/// Parses a response head from the bytes received so far: `Ok(None)` until
/// the head is complete. `tunnel` marks the answer to a `CONNECT`, whose 2xx
/// has no body.
pub fn parse_response(bytes: &[u8], tunnel: bool) -> Result<Option<ResponseHead>, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut r = httparse::Response::new(&mut headers);
    let head_len = match r.parse(bytes).map_err(malformed)? {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => return Ok(None),
    };
    let status = r.code.ok_or(HttpError::Malformed("no status code"))?;
    let f = framing(r.headers, r.version == Some(0))?;
    let bodiless = (100..200).contains(&status)
        || status == 204
        || status == 304
        || (tunnel && (200..300).contains(&status));
    let body = match (bodiless, f.content_length) {
        (true, _) => Body::Empty,
        (false, Some(len)) => Body::Length(len),
        (false, None) => Body::UntilClose,
    };
    Ok(Some(ResponseHead {
        status,
        head_len,
        body,
        close: f.close || body == Body::UntilClose,
    }))
}

/// Parses a request head from the bytes received so far: `Ok(None)` until
/// the head is complete.
pub fn parse_request(bytes: &[u8]) -> Result<Option<RequestHead<'_>>, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut r = httparse::Request::new(&mut headers);
    let head_len = match r.parse(bytes).map_err(malformed)? {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => return Ok(None),
    };
    let method = r.method.ok_or(HttpError::Malformed("no method"))?;
    let path = r.path.ok_or(HttpError::Malformed("no path"))?;
    let f = framing(r.headers, r.version == Some(0))?;
    let (cookie, origin, host) = (
        single(r.headers, "cookie")?,
        single(r.headers, "origin")?,
        single(r.headers, "host")?,
    );
    Ok(Some(RequestHead {
        method,
        path,
        head_len,
        content_length: f.content_length.unwrap_or(0),
        content_type: f.content_type,
        authorization: f.authorization,
        cookie,
        origin,
        host,
        close: f.close,
    }))
}

/// The value of header `name`, which may appear once at most: the cloud
/// decides on these (a session, a cross-site check), and two copies would
/// leave it to guess which one a proxy or browser meant. Not UTF-8 reads as
/// absent, as `Authorization` does.
fn single<'b>(headers: &[httparse::Header<'b>], name: &str) -> Result<Option<&'b str>, HttpError> {
    let mut found = None;
    for h in headers.iter().filter(|h| h.name.eq_ignore_ascii_case(name)) {
        if found.is_some() {
            return Err(HttpError::Malformed(
                "a repeated Cookie, Origin or Host header",
            ));
        }
        found = Some(core::str::from_utf8(h.value).ok());
    }
    Ok(found.flatten())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_names_its_cookie_origin_and_host() {
        let text = b"POST /signout HTTP/1.1\r\nHost: cloud.example:8443\r\n\
Origin: https://cloud.example:8443\r\nCookie: a=1; __Host-dca_session=ab\r\n\
Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 5\r\n\r\ncsrf=";
        let head = parse_request(text).unwrap().unwrap();
        assert_eq!(head.host, Some("cloud.example:8443"));
        assert_eq!(head.origin, Some("https://cloud.example:8443"));
        assert_eq!(head.cookie, Some("a=1; __Host-dca_session=ab"));
        assert_eq!(head.content_length, 5);
        // Absent: none of them.
        let bare = parse_request(b"GET / HTTP/1.1\r\n\r\n").unwrap().unwrap();
        assert_eq!((bare.host, bare.origin, bare.cookie), (None, None, None));
        // Header names are case-insensitive.
        let lower = parse_request(b"GET / HTTP/1.1\r\nhost: h\r\nCOOKIE: c=1\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!((lower.host, lower.cookie), (Some("h"), Some("c=1")));
    }

    #[test]
    fn a_repeated_cookie_origin_or_host_is_malformed() {
        for twice in [
            &b"GET / HTTP/1.1\r\nCookie: a=1\r\nCookie: a=2\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nOrigin: https://a\r\norigin: https://b\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        ] {
            assert!(
                matches!(parse_request(twice), Err(HttpError::Malformed(_))),
                "{:?}",
                core::str::from_utf8(twice)
            );
        }
        // Other headers may repeat, as before.
        assert!(parse_request(b"GET / HTTP/1.1\r\nAccept: a\r\nAccept: b\r\n\r\n").is_ok());
    }

    #[test]
    fn a_value_that_is_not_utf8_reads_as_absent() {
        let head = parse_request(b"GET / HTTP/1.1\r\nCookie: \xff\r\nHost: h\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!((head.cookie, head.host), (None, Some("h")));
    }
}
