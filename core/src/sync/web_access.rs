//! Device Web Access: the rules of relaying a dealer's browser to one
//! device's embedded web server, checked by the agent (and again by the
//! cloud, with the same functions). What the agent is told to open comes
//! as a task ([`Opening::parse`]); each request and each answer is judged
//! here before anything reaches the device or leaves it.
//!
//! - **One device, one port, nothing else**: a request names a path on the
//!   device (origin form, `/…`), never a host; the agent connects to the
//!   task's address alone, and only on a web port it allows.
//! - **No file transfers**, either way: `PUT` and every method but `GET`,
//!   `HEAD` and `POST` are refused; a `POST` must be a plain form
//!   (`application/x-www-form-urlencoded`), so multipart uploads (firmware
//!   forms) and octet streams are refused; an answer that is an attachment
//!   or an octet stream is refused, its body never relayed.
//! - **The same device**: before each new connection to the device the
//!   agent re-reads its identity; another serial at the address ends it.
//! - **A window**: a session ends at its expiry or after an idle spell.

use super::message::{Task, TaskKind};
use super::task::{MAX_DETAIL, detail};
use crate::time::{Duration, Instant};
use core::net::SocketAddr;
use heapless::String;

/// The longest serial number a session names.
pub const MAX_SERIAL: usize = 64;
/// The most a session may last, whatever the cloud asks.
pub const MAX_TTL: Duration = Duration::from_secs(60 * 60);
/// A session with no request for this long ends.
pub const IDLE: Duration = Duration::from_secs(10 * 60);
/// The web ports an agent relays to unless configured otherwise.
pub const DEFAULT_PORTS: [u16; 4] = [80, 443, 8080, 8443];

/// An `open_web` task, validated: which session, which device, for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opening {
    pub session: u64,
    /// The device's web server (its address as the cloud last saw it).
    pub target: SocketAddr,
    /// Whether to speak TLS to it.
    pub https: bool,
    /// The serial the device at `target` must still report.
    pub serial: String<MAX_SERIAL>,
    pub ttl: Duration,
}

impl Opening {
    /// Parses `session=ID;target=IP:PORT;scheme=http|https;serial=S;ttl=SECONDS`
    /// (fields in any order). The error is the failed task's detail.
    #[allow(clippy::result_large_err)]
    pub fn parse(task: &Task<'_>) -> Result<Opening, String<MAX_DETAIL>> {
        if TaskKind::parse(task.kind) != Some(TaskKind::OpenWeb) {
            return Err(detail(format_args!("not an open_web task: {}", task.kind)));
        }
        let (mut session, mut target, mut https, mut serial, mut ttl) =
            (None, None, false, None, None);
        // Each field once: a value that smuggled in a second `target=`
        // (a serial with a `;` in it) must not win.
        let mut seen = [false; 5];
        for field in task.arg.split(';').filter(|f| !f.trim().is_empty()) {
            let Some((k, v)) = field.split_once('=') else {
                return Err(detail(format_args!("open_web: {field:?} is not key=value")));
            };
            let v = v.trim();
            let slot = ["session", "target", "scheme", "serial", "ttl"]
                .iter()
                .position(|f| *f == k.trim())
                .and_then(|i| seen.get_mut(i));
            match slot {
                Some(s) if !*s => *s = true,
                _ => {
                    return Err(detail(format_args!(
                        "open_web: field {k:?} unknown or repeated"
                    )));
                }
            }
            match k.trim() {
                "session" => session = v.parse::<u64>().ok(),
                "target" => target = socket_addr(v),
                "scheme" => match v {
                    "http" => https = false,
                    "https" => https = true,
                    _ => return Err(detail(format_args!("open_web: scheme {v:?}"))),
                },
                "serial" if serial_allowed(v) => {
                    serial = String::try_from(v).ok();
                }
                "ttl" => ttl = v.parse::<u64>().ok().map(Duration::from_secs),
                _ => return Err(detail(format_args!("open_web: unknown or bad field {k:?}"))),
            }
        }
        match (session, target, serial, ttl) {
            (Some(session), Some(target), Some(serial), Some(ttl)) => Ok(Opening {
                session,
                target,
                https,
                serial,
                ttl: ttl.min(MAX_TTL),
            }),
            _ => Err(detail(format_args!(
                "open_web needs session, target, serial and ttl: {:?}",
                task.arg
            ))),
        }
    }

    /// "https" or "http", as the task names it.
    pub fn scheme(&self) -> &'static str {
        scheme(self.https)
    }

    /// Whether the agent may connect to this target at all: a web port it
    /// allows (`ports`), so a cloud cannot turn it into a scanner of other
    /// services.
    pub fn port_allowed(&self, ports: &[u16]) -> bool {
        ports.contains(&self.target.port())
    }
}

/// `IP:PORT` or `[IPv6]:PORT`. By hand rather than `SocketAddr`'s parser,
/// which the firmware's image would carry for this alone (the address
/// parser is there already).
fn socket_addr(v: &str) -> Option<SocketAddr> {
    let (host, port) = v.rsplit_once(':')?;
    let host = match host.strip_prefix('[') {
        Some(inner) => inner.strip_suffix(']')?,
        None if host.contains(':') => return None,
        None => host,
    };
    Some(SocketAddr::new(host.parse().ok()?, port.parse().ok()?))
}

/// A scheme's name as `open_web` and the logs write it.
pub fn scheme(https: bool) -> &'static str {
    if https { "https" } else { "http" }
}

/// A serial a session can name: printable, without the task's separators
/// (a device reports its serial; it must not be able to add fields).
pub fn serial_allowed(serial: &str) -> bool {
    !serial.trim().is_empty()
        && serial.len() <= MAX_SERIAL
        && serial
            .bytes()
            .all(|b| (0x20..0x7f).contains(&b) && b != b';' && b != b'=')
}

/// Why a request or an answer was not relayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A method other than GET, HEAD, POST (PUT among them).
    Method,
    /// A request naming a host: absolute form, or a network-path (`//h/…`).
    OtherHost,
    /// A POST that is not a plain form: multipart, octet stream, anything.
    Upload,
    /// An answer that is a file: an attachment or an octet stream.
    Download,
    /// The device at the address is not the one the session was opened for.
    OtherDevice,
    /// The session's port is not a web port this agent relays to.
    Port,
    /// The session expired, idled out or was closed.
    Closed,
    /// A path or header that could smuggle a second request or hide a
    /// header: spaces or control characters, bytes that are not text.
    Malformed,
}

impl Refusal {
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Method => "method refused: only GET, HEAD and form POSTs are relayed",
            Refusal::OtherHost => {
                "another host or port refused: only the session's device is reachable"
            }
            Refusal::Upload => "upload refused: only plain form posts reach the device",
            Refusal::Download => "download refused: files are not relayed from the device",
            Refusal::OtherDevice => "identity mismatch: another device now answers at this address",
            Refusal::Port => "port refused: not a web port this agent relays to",
            Refusal::Closed => "the session is closed",
            Refusal::Malformed => "malformed request refused",
        }
    }

    /// The HTTP status the browser is shown.
    pub fn status(self) -> u16 {
        match self {
            Refusal::Method => 405,
            Refusal::Malformed => 400,
            Refusal::Closed => 410,
            Refusal::OtherDevice | Refusal::Port => 502,
            Refusal::OtherHost | Refusal::Upload | Refusal::Download => 403,
        }
    }
}

/// The value of header `name` in `head` (`Name: value` lines separated by
/// CRLF or LF), the first if repeated; case-insensitive name.
pub fn header<'h>(head: &'h [u8], name: &'h str) -> Option<&'h str> {
    values(head, name).next()
}

/// Every value of header `name` in `head` (none when `head` is not text:
/// the checks refuse such a head first).
fn values<'h>(head: &'h [u8], name: &'h str) -> impl Iterator<Item = &'h str> {
    core::str::from_utf8(head)
        .unwrap_or("")
        .lines()
        .filter_map(move |line| {
            let (n, v) = line.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then_some(v.trim())
        })
}

/// Header lines that are text without control characters (tabs aside).
fn clean_head(head: &[u8]) -> bool {
    core::str::from_utf8(head).is_ok()
        && head
            .iter()
            .all(|&b| b == b'\t' || b == b'\r' || b == b'\n' || (b >= 0x20 && b != 0x7f))
}

/// Whether a header belongs to one connection (RFC 9110's hop-by-hop
/// fields, and a proxy's): never passed from browser to device or back.
pub fn hop_by_hop(name: &str) -> bool {
    let n = name.trim();
    [
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    ]
    .iter()
    .any(|h| n.eq_ignore_ascii_case(h))
        || n.get(..6).is_some_and(|p| p.eq_ignore_ascii_case("proxy-"))
}

/// The media type of a Content-Type value, without parameters, lowercase
/// compared by the callers.
fn media_type(value: &str) -> &str {
    value.split(';').next().unwrap_or("").trim()
}

/// Judges a browser's request before it goes to the device.
pub fn check_request(
    method: &str,
    path: &str,
    head: &[u8],
    body_len: usize,
) -> Result<(), Refusal> {
    if !path.starts_with('/') || path.starts_with("//") || path.contains('\\') {
        return Err(Refusal::OtherHost);
    }
    // A space or a line break would end the request line early and let a
    // second request through to the device.
    if path.bytes().any(|b| b <= 0x20 || b == 0x7f) || !clean_head(head) {
        return Err(Refusal::Malformed);
    }
    match method {
        "GET" | "HEAD" => {
            // A body on a GET is a transfer in disguise.
            if body_len > 0 {
                return Err(Refusal::Upload);
            }
        }
        "POST" => {
            // Two types could be read two ways by two parsers.
            if values(head, "content-type").nth(1).is_some() {
                return Err(Refusal::Upload);
            }
            let ct = header(head, "content-type").map(media_type);
            let form =
                ct.is_some_and(|t| t.eq_ignore_ascii_case("application/x-www-form-urlencoded"));
            if !(form || (ct.is_none() && body_len == 0)) {
                return Err(Refusal::Upload);
            }
        }
        _ => return Err(Refusal::Method),
    }
    Ok(())
}

/// Judges the device's answer before its body leaves the agent.
pub fn check_response(head: &[u8]) -> Result<(), Refusal> {
    // Not text: a header could hide in it.
    if !clean_head(head) {
        return Err(Refusal::Download);
    }
    // Every copy counts: a second header must not hide a file. Only
    // `inline` is a page: browsers save any other disposition type, known
    // or not, as a file (RFC 6266, 4.2).
    if values(head, "content-disposition").any(|v| !media_type(v).eq_ignore_ascii_case("inline"))
        || values(head, "content-type").nth(1).is_some()
    {
        return Err(Refusal::Download);
    }
    if header(head, "content-type")
        .map(media_type)
        .is_some_and(|t| {
            t.eq_ignore_ascii_case("application/octet-stream")
                || t.eq_ignore_ascii_case("application/x-download")
                || t.eq_ignore_ascii_case("application/force-download")
        })
    {
        return Err(Refusal::Download);
    }
    Ok(())
}

/// Whether the device read at the address is the session's: the same
/// serial, compared as printed (trimmed, case-insensitive).
pub fn same_device(expected: &str, seen: &str) -> bool {
    let (e, s) = (expected.trim(), seen.trim());
    !e.is_empty() && e.eq_ignore_ascii_case(s)
}

/// Where a device's redirect (its answer's `Location`) leads, seen from
/// the session. Embedded web servers name themselves by address in their
/// redirects (`http://10.1.2.3/login`), and many send every plain HTTP
/// request to HTTPS that way: followed as written, the browser would leave
/// the session for an address on the customer's network it cannot reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redirect<'a> {
    /// The device as the session reaches it, or a relative reference: the
    /// browser stays in the session. `rest` follows the authority (a path,
    /// query or fragment; empty for the root).
    Here { rest: &'a str },
    /// The device's own address at another scheme or port: the session may
    /// follow it there if the port is one the agent relays to.
    Moved {
        to: SocketAddr,
        https: bool,
        rest: &'a str,
    },
    /// Another host (or a host name the agent cannot compare): the browser
    /// leaves the session.
    Elsewhere,
}

/// Reads `location` against the session's device at `target` (over TLS
/// with `https`).
pub fn redirect<'a>(location: &'a str, target: SocketAddr, https: bool) -> Redirect<'a> {
    let location = location.trim();
    let (scheme_https, rest) = if let Some(rest) = location.strip_prefix("//") {
        (https, rest)
    } else if let Some((scheme, rest)) = location.split_once("://") {
        if scheme.eq_ignore_ascii_case("https") {
            (true, rest)
        } else if scheme.eq_ignore_ascii_case("http") {
            (false, rest)
        } else {
            return Redirect::Elsewhere;
        }
    } else if location.contains(':') && !location.starts_with('/') {
        // Another scheme (`ftp:`, `javascript:`), or a host without `//`.
        return Redirect::Elsewhere;
    } else {
        return Redirect::Here { rest: location };
    };
    let end = rest.find(['/', '\\', '?', '#']).unwrap_or(rest.len());
    let (authority, rest) = rest.split_at_checked(end).unwrap_or((rest, ""));
    // A path that browsers read as another host (`//host`, and `\` as `/`)
    // must not become one in the session; browsers also drop tabs and line
    // breaks anywhere in a URL, so `/<tab>/host` is one too.
    if rest.starts_with("//")
        || rest.starts_with('\\')
        || rest.starts_with("/\\")
        || rest.bytes().any(|b| b < 0x20 || b == 0x7f)
    {
        return Redirect::Elsewhere;
    }
    // A user name in a redirect is a trick, not a page.
    if authority.contains('@') {
        return Redirect::Elsewhere;
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(inner) => match inner.split_once(']') {
            Some((host, "")) => (host, None),
            Some((host, port)) => match port.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return Redirect::Elsewhere,
            },
            None => return Redirect::Elsewhere,
        },
        None => match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    let port = match port {
        None | Some("") => {
            if scheme_https {
                443
            } else {
                80
            }
        }
        // Digits only: the parser would also take a sign, browsers do not.
        Some(p) if !p.bytes().all(|b| b.is_ascii_digit()) => return Redirect::Elsewhere,
        Some(p) => match p.parse::<u16>() {
            Ok(p) if p > 0 => p,
            _ => return Redirect::Elsewhere,
        },
    };
    match host.parse::<core::net::IpAddr>() {
        Ok(ip) if ip == target.ip() => {
            if port == target.port() && scheme_https == https {
                Redirect::Here { rest }
            } else {
                Redirect::Moved {
                    to: SocketAddr::new(ip, port),
                    https: scheme_https,
                    rest,
                }
            }
        }
        _ => Redirect::Elsewhere,
    }
}

/// A session's time: open until its expiry, and while requests keep
/// coming within [`IDLE`] of each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    expires: Instant,
    last: Instant,
    idle: Duration,
}

impl Window {
    pub fn new(now: Instant, ttl: Duration) -> Window {
        Window {
            expires: now.saturating_add(ttl.min(MAX_TTL)),
            last: now,
            idle: IDLE,
        }
    }

    pub fn with_idle(mut self, idle: Duration) -> Window {
        self.idle = idle;
        self
    }

    pub fn is_open(&self, now: Instant) -> bool {
        now < self.expires && now < self.last.saturating_add(self.idle)
    }

    /// A request came.
    pub fn touch(&mut self, now: Instant) {
        self.last = self.last.max(now);
    }

    /// When it ends if nothing more comes.
    pub fn ends(&self) -> Instant {
        self.expires.min(self.last.saturating_add(self.idle))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(arg: &str) -> Task<'_> {
        Task {
            id: 1,
            kind: "open_web",
            arg,
        }
    }

    #[test]
    fn an_opening_names_one_session_one_device_and_a_bounded_time() {
        let o = Opening::parse(&task(
            "session=12;target=10.1.2.3:8080;serial=VNC3K12345;ttl=900",
        ))
        .unwrap();
        assert_eq!(o.session, 12);
        assert_eq!(o.target, "10.1.2.3:8080".parse().unwrap());
        assert!(!o.https);
        assert_eq!(o.serial.as_str(), "VNC3K12345");
        assert_eq!(o.ttl, Duration::from_secs(900));
        assert!(o.port_allowed(&DEFAULT_PORTS));
        assert!(!o.port_allowed(&[80]));
        let long = Opening::parse(&task(
            "session=1;target=[fd00::7]:443;scheme=https;serial=X;ttl=999999",
        ))
        .unwrap();
        assert_eq!(long.target, "[fd00::7]:443".parse().unwrap());
        assert!(long.https);
        assert_eq!(long.ttl, MAX_TTL);
        for bad in [
            "session=1;target=10.1.2.3:80;serial=X",
            "session=1;target=printer:80;serial=X;ttl=60",
            "session=1;target=fd00::7:80;serial=X;ttl=60",
            "session=1;target=10.1.2.3:99999;serial=X;ttl=60",
            "session=1;target=10.1.2.3:80;serial=;ttl=60",
            "session=1;target=10.1.2.3:80;serial=X;ttl=60;via=proxy",
            "session=1;target=10.1.2.3:80;scheme=ftp;serial=X;ttl=60",
            // A serial that smuggles in another target.
            "session=1;target=10.1.2.3:80;serial=B;target=10.0.0.7:80;ttl=60",
            "session=1;target=10.1.2.3:80;serial=B\nC;ttl=60",
            "garbage",
        ] {
            assert!(Opening::parse(&task(bad)).is_err(), "{bad}");
        }
        let other = Task {
            id: 1,
            kind: "rescan",
            arg: "",
        };
        assert!(Opening::parse(&other).is_err());
    }

    #[test]
    fn only_paths_on_the_device_and_plain_forms_are_relayed() {
        let form = b"Content-Type: application/x-www-form-urlencoded\r\n";
        assert_eq!(check_request("GET", "/", b"", 0), Ok(()));
        assert_eq!(check_request("HEAD", "/status?x=1", b"", 0), Ok(()));
        assert_eq!(check_request("POST", "/network", form, 20), Ok(()));
        assert_eq!(check_request("POST", "/empty", b"", 0), Ok(()));
        for (m, p) in [
            ("GET", "http://10.0.0.9:22/"),
            ("GET", "//10.0.0.9:22/"),
            ("GET", "10.0.0.9:22"),
            ("GET", "/\\evil"),
        ] {
            assert_eq!(check_request(m, p, b"", 0), Err(Refusal::OtherHost), "{p}");
        }
        for m in [
            "PUT", "DELETE", "PATCH", "CONNECT", "OPTIONS", "TRACE", "get",
        ] {
            assert_eq!(check_request(m, "/", b"", 0), Err(Refusal::Method), "{m}");
        }
        for head in [
            &b"Content-Type: multipart/form-data; boundary=x\r\n"[..],
            b"content-type: application/octet-stream\r\n",
            b"Content-Type: application/json\r\n",
            b"",
        ] {
            assert_eq!(
                check_request("POST", "/firmware", head, 100),
                Err(Refusal::Upload),
                "{}",
                String::<80>::try_from(core::str::from_utf8(head).unwrap()).unwrap()
            );
        }
        assert_eq!(check_request("GET", "/", b"", 5), Err(Refusal::Upload));
        // A second request smuggled in the path or a header.
        for p in ["/ HTTP/1.1\r\nHost: x\r\n\r\nGET /admin", "/a b", "/a\x7f"] {
            assert_eq!(
                check_request("GET", p, b"", 0),
                Err(Refusal::Malformed),
                "{p:?}"
            );
        }
        assert_eq!(
            check_request("GET", "/", b"X: a\x00b\r\n", 0),
            Err(Refusal::Malformed)
        );
        assert_eq!(
            check_request("GET", "/", &[b'X', b':', 0xff], 0),
            Err(Refusal::Malformed)
        );
        let two = b"Content-Type: application/x-www-form-urlencoded\r\nContent-Type: multipart/form-data\r\n";
        assert_eq!(check_request("POST", "/f", two, 9), Err(Refusal::Upload));
    }

    #[test]
    fn files_from_the_device_are_refused() {
        assert_eq!(check_response(b"Content-Type: text/html\r\n"), Ok(()));
        assert_eq!(
            check_response(b"Content-Disposition: inline\r\nContent-Type: text/plain\r\n"),
            Ok(())
        );
        for head in [
            &b"Content-Type: text/plain\r\nContent-Disposition: attachment; filename=\"log.txt\"\r\n"[..],
            b"content-disposition: ATTACHMENT\n",
            b"Content-Type: application/octet-stream\r\n",
            b"Content-Type: application/force-download; x=y\r\n",
            b"Content-Disposition: inline\r\nContent-Disposition: attachment\r\n",
            b"Content-Disposition: download; filename=x.cfg\r\n",
            b"Content-Type: text/html\r\nContent-Type: application/octet-stream\r\n",
            &[b'C', b':', 0xff, b'\r', b'\n'],
        ] {
            assert_eq!(check_response(head), Err(Refusal::Download));
        }
    }

    #[test]
    fn connection_headers_are_never_passed_on() {
        for h in [
            "Connection",
            "keep-alive",
            "TE",
            "Transfer-Encoding",
            "Upgrade",
            "Proxy-Authorization",
            "proxy-connection",
        ] {
            assert!(hop_by_hop(h), "{h}");
        }
        for h in ["Content-Type", "Cookie", "Accept", "Proxy", "Host"] {
            assert!(!hop_by_hop(h), "{h}");
        }
    }

    #[test]
    fn a_serial_cannot_add_fields_to_the_task() {
        assert!(serial_allowed("VNC3K12345"));
        assert!(serial_allowed("SN 123-45/6"));
        for bad in [
            "",
            " ",
            "A;target=10.0.0.7:80",
            "A=B",
            "A\nB",
            "A\u{7f}",
            "é",
        ] {
            assert!(!serial_allowed(bad), "{bad:?}");
        }
        assert!(!serial_allowed(&"X".repeat(MAX_SERIAL + 1)));
    }

    #[test]
    fn the_device_must_still_be_the_one_opened() {
        assert!(same_device("VNC3K12345", " vnc3k12345 "));
        assert!(!same_device("VNC3K12345", "VNC3K99999"));
        assert!(!same_device("", ""));
    }

    #[test]
    fn a_window_ends_at_its_expiry_or_after_an_idle_spell() {
        let t0 = Instant::from_millis(1_000);
        let mut w = Window::new(t0, Duration::from_secs(900)).with_idle(Duration::from_secs(60));
        assert!(w.is_open(t0));
        assert!(!w.is_open(t0.saturating_add(Duration::from_secs(61))));
        w.touch(t0.saturating_add(Duration::from_secs(50)));
        assert!(w.is_open(t0.saturating_add(Duration::from_secs(100))));
        let mut late = t0;
        for _ in 0..20 {
            late = late.saturating_add(Duration::from_secs(50));
            w.touch(late);
        }
        assert!(!w.is_open(late), "expired at 900 s however busy");
        assert_eq!(w.ends(), t0.saturating_add(Duration::from_secs(900)));
    }

    #[test]
    fn a_redirect_to_the_device_itself_stays_in_the_session() {
        let at: SocketAddr = "10.1.2.3:80".parse().unwrap();
        let here = |rest| Redirect::Here { rest };
        assert_eq!(redirect("/login.html", at, false), here("/login.html"));
        assert_eq!(redirect("status.html", at, false), here("status.html"));
        assert_eq!(redirect("http://10.1.2.3/a?b", at, false), here("/a?b"));
        assert_eq!(redirect("HTTP://10.1.2.3:80", at, false), here(""));
        assert_eq!(redirect(" //10.1.2.3/x ", at, false), here("/x"));
        // http to https on the same address: the device moved.
        assert_eq!(
            redirect("https://10.1.2.3/hp/device/", at, false),
            Redirect::Moved {
                to: "10.1.2.3:443".parse().unwrap(),
                https: true,
                rest: "/hp/device/"
            }
        );
        assert_eq!(
            redirect("http://10.1.2.3:8080?x", at, false),
            Redirect::Moved {
                to: "10.1.2.3:8080".parse().unwrap(),
                https: false,
                rest: "?x"
            }
        );
        let v6: SocketAddr = "[fd00::7]:443".parse().unwrap();
        assert_eq!(redirect("https://[fd00::7]/", v6, true), here("/"));
        assert_eq!(redirect("https://[fd00::7]:443/", v6, true), here("/"));
        for elsewhere in [
            "http://10.1.2.4/",
            "http://printer.local/",
            "http://user@10.1.2.3/",
            "http://10.1.2.3:0/",
            "http://10.1.2.3:99999/",
            "http://[fd00::7/",
            "ftp://10.1.2.3/",
            "javascript:alert(1)",
            "http://10.1.2.3//evil.example/",
            "http://10.1.2.3/\\evil.example/",
            "http://10.1.2.3\\evil.example/",
            "https://10.1.2.3//evil.example/",
            "http://10.1.2.3/\t/evil.example/",
            "http://10.1.2.3:+80/",
        ] {
            assert_eq!(
                redirect(elsewhere, at, false),
                Redirect::Elsewhere,
                "{elsewhere}"
            );
        }
    }
}
