//! Chunked answers (RFC 9112, 7.1) from devices' embedded web servers.
//! The sync protocol never takes them ([`super::http::parse_response`]
//! refuses them), but Device Web Access reads printers' own pages, and some
//! embedded servers answer in chunks even to the HTTP/1.0 requests the
//! agent sends. Sans-I/O: both functions read whatever bytes have arrived
//! and say how far they got.

use super::http::{HttpError, MAX_HEADERS};

/// The head of an answer whose body is chunked: its status and length.
/// `Ok(None)` until the head is complete. A head that also gives a
/// `Content-Length`, or whose last transfer coding is not `chunked`, is
/// refused: two framings are how requests and answers are smuggled.
pub fn response_head(bytes: &[u8]) -> Result<Option<(u16, usize)>, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut r = httparse::Response::new(&mut headers);
    let head_len = match r.parse(bytes) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(HttpError::Malformed("not an HTTP/1.x answer head")),
    };
    let status = r.code.ok_or(HttpError::Malformed("no status code"))?;
    let mut codings = 0usize;
    let mut last_is_chunked = false;
    for h in r.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            return Err(HttpError::ContentLength);
        }
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            let value = core::str::from_utf8(h.value).unwrap_or("");
            for coding in value.split(',').map(str::trim).filter(|c| !c.is_empty()) {
                codings = codings.saturating_add(1);
                last_is_chunked = coding.eq_ignore_ascii_case("chunked");
            }
        }
    }
    if codings != 1 || !last_is_chunked {
        // Compressed or stacked codings: the agent relays bytes as they
        // are and cannot judge what it cannot read.
        return Err(HttpError::Malformed("a transfer coding other than chunked"));
    }
    Ok(Some((status, head_len)))
}

/// How far a chunked body has come in the bytes given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes at the start taken by complete chunks, whose data was handed
    /// over: the caller drops them and reads on from there, so that no
    /// byte is read twice however the answer is cut.
    pub consumed: usize,
    /// Where the body (last chunk and trailers) ends, once it has.
    pub end: Option<usize>,
}

/// The longest chunk-size line taken (size, extensions, CRLF).
const MAX_SIZE_LINE: usize = 256;
/// The most trailer lines taken after the last chunk.
const MAX_TRAILERS: usize = 32;

/// Reads the chunked body at the start of `bytes`, handing the data of each
/// complete chunk to `data`, once.
pub fn body(bytes: &[u8], data: &mut dyn FnMut(&[u8])) -> Result<Progress, HttpError> {
    let bad = HttpError::Malformed;
    let mut at = 0usize;
    let waiting = |consumed| {
        Ok(Progress {
            consumed,
            end: None,
        })
    };
    loop {
        let Some((line, next)) = line_at(bytes, at)? else {
            return waiting(at);
        };
        let size = chunk_size(line).ok_or(bad("a chunk size that is not hexadecimal"))?;
        if size == 0 {
            return match trailers_end(bytes, next)? {
                Some(end) => Ok(Progress {
                    consumed: end,
                    end: Some(end),
                }),
                None => waiting(at),
            };
        }
        let data_end = next.checked_add(size).ok_or(bad("a chunk too large"))?;
        let Some(chunk) = bytes.get(next..data_end) else {
            return waiting(at);
        };
        match bytes.get(data_end..data_end.saturating_add(2)) {
            Some(b"\r\n") => {}
            Some(_) => return Err(bad("a chunk longer than its size")),
            // Its CRLF has not come (whole): what came of it must be a CR.
            None if bytes.get(data_end).is_some_and(|b| *b != b'\r') => {
                return Err(bad("a chunk longer than its size"));
            }
            None => return waiting(at),
        }
        data(chunk);
        at = data_end.saturating_add(2);
    }
}

/// The line starting at `at` (without its CRLF) and where the next starts;
/// `None` until its CRLF has come.
fn line_at(bytes: &[u8], at: usize) -> Result<Option<(&[u8], usize)>, HttpError> {
    let rest = bytes.get(at..).unwrap_or_default();
    // Looked for within the longest line taken, however much has come.
    let near = rest.get(..MAX_SIZE_LINE.saturating_add(2)).unwrap_or(rest);
    match near.windows(2).position(|w| w == b"\r\n") {
        Some(n) => Ok(Some((
            rest.get(..n).unwrap_or_default(),
            at.saturating_add(n).saturating_add(2),
        ))),
        None if rest.len() > MAX_SIZE_LINE => Err(HttpError::Malformed("a chunk line too long")),
        None => Ok(None),
    }
}

/// A chunk-size line's size: hex digits, then extensions after `;`.
fn chunk_size(line: &[u8]) -> Option<usize> {
    let digits = line.split(|b| *b == b';').next()?;
    let digits = core::str::from_utf8(digits).ok()?.trim_matches([' ', '\t']);
    if digits.is_empty() || digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    usize::from_str_radix(digits, 16).ok()
}

/// Where the trailer section starting at `at` ends (after its empty line).
fn trailers_end(bytes: &[u8], mut at: usize) -> Result<Option<usize>, HttpError> {
    for _ in 0..=MAX_TRAILERS {
        match line_at(bytes, at)? {
            None => return Ok(None),
            Some(([], next)) => return Ok(Some(next)),
            Some((_, next)) => at = next,
        }
    }
    Err(HttpError::Malformed("too many trailer lines"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn read(bytes: &[u8]) -> Result<(Vec<u8>, Progress), HttpError> {
        let mut out = Vec::new();
        let p = body(bytes, &mut |d| out.extend_from_slice(d))?;
        Ok((out, p))
    }

    #[test]
    fn a_chunked_body_is_read_whole_and_in_pieces() {
        let wire = b"5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: y\r\n\r\nNEXT";
        let (data, p) = read(wire).unwrap();
        assert_eq!(data, b"hello, world");
        assert_eq!(p.end, Some(wire.len() - 4));
        // Every prefix is incomplete, never an error, and gives no more data
        // than has come.
        for n in 0..wire.len() - 4 {
            let (data, p) = read(&wire[..n]).unwrap();
            assert_eq!(p.end, None, "{n}");
            assert!(p.consumed <= n);
            assert!(b"hello, world".starts_with(&data), "{n}");
        }
        // Byte by byte, dropping what was consumed: the same data, once.
        let mut pending = Vec::new();
        let mut data = Vec::new();
        for b in &wire[..wire.len() - 4] {
            pending.push(*b);
            let p = body(&pending, &mut |d| data.extend_from_slice(d)).unwrap();
            pending.drain(..p.consumed);
        }
        assert_eq!(data, b"hello, world");
        assert!(pending.is_empty());
    }

    #[test]
    fn bad_chunks_are_refused() {
        for wire in [
            &b"zz\r\nhello\r\n0\r\n\r\n"[..],
            b"5\r\nhello!!\r\n0\r\n\r\n",
            b"\r\n",
            b"ffffffffffffffffff\r\n",
            b"-5\r\nhello\r\n",
        ] {
            assert!(body(wire, &mut |_| {}).is_err(), "{wire:?}");
        }
        let long = [b'1'; 300];
        assert!(body(&long, &mut |_| {}).is_err());
    }

    #[test]
    fn only_a_plain_chunked_head_is_taken() {
        let head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n";
        assert_eq!(response_head(head), Ok(Some((200, head.len() - 3))));
        assert_eq!(response_head(&head[..20]), Ok(None));
        for refused in [
            &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"HTTP/1.1 200 OK\r\n\r\n",
            b"garbage\r\n\r\n",
        ] {
            assert!(response_head(refused).is_err(), "{refused:?}");
        }
    }
}
