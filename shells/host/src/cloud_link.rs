//! The agent's connection to its cloud: TCP, an HTTP proxy tunnel when one is
//! configured (CONNECT), TLS, and HTTP/1.1 exchanges framed by the core. One
//! connection carries a session's exchanges; it is re-opened when the server
//! closes it.

use base64::Engine;
use dca_core::sync::{CONTENT_TYPE, ENDPOINT, http};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

/// How long a connection attempt, and any one read or write, may take.
const IO_TIMEOUT: Duration = Duration::from_secs(20);
/// The largest response accepted.
const MAX_RESPONSE: usize = 16 * 1024 * 1024;

/// Why an exchange did not happen.
#[derive(Debug)]
pub enum LinkError {
    /// The cloud (or the proxy) could not be reached: try again later.
    Unreachable(String),
    /// TLS refused the server (wrong pin, untrusted certificate, wrong name).
    Untrusted(String),
    /// The peer spoke something other than the protocol.
    Protocol(String),
}

impl std::fmt::Display for LinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinkError::Unreachable(e) => write!(f, "cloud unreachable: {e}"),
            LinkError::Untrusted(e) => write!(f, "refusing the cloud's certificate: {e}"),
            LinkError::Protocol(e) => write!(f, "protocol error: {e}"),
        }
    }
}

/// `https://host[:port]`, the form `--cloud` takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudUrl {
    pub host: String,
    pub port: u16,
}

/// Splits `host[:port]`, with IPv6 addresses in brackets.
fn host_port(s: &str, default_port: u16) -> Result<(String, u16), String> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("{s}: unclosed ["))?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| format!("{s}: bad port {p:?}"))?,
            None if after.is_empty() => default_port,
            None => return Err(format!("{s}: unexpected {after:?} after the address")),
        };
        return Ok((host.to_string(), port));
    }
    match s.rsplit_once(':') {
        Some((h, p)) => Ok((
            h.to_string(),
            p.parse().map_err(|_| format!("{s}: bad port {p:?}"))?,
        )),
        None => Ok((s.to_string(), default_port)),
    }
}

impl CloudUrl {
    /// Read as the firmware reads it (dca-core's `sync::url`).
    pub fn parse(url: &str) -> Result<CloudUrl, String> {
        let u = dca_core::sync::url::CloudUrl::parse(url)
            .map_err(|e| format!("cloud URL {url:?} {e}"))?;
        Ok(CloudUrl {
            host: u.host.to_string(),
            port: u.port,
        })
    }

    /// `host[:port]`, for the `Host` header and `CONNECT`.
    fn authority(&self) -> String {
        dca_core::sync::url::CloudUrl {
            host: &self.host,
            port: self.port,
        }
        .to_string()
    }

    pub fn to_url(&self) -> String {
        format!("https://{}", self.authority())
    }
}

/// An HTTP proxy reached with CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proxy {
    pub host: String,
    pub port: u16,
    /// `Proxy-Authorization` value from the URL's user info.
    pub authorization: Option<String>,
}

impl Proxy {
    /// `http://[user:password@]host[:port]` (the scheme may be left out).
    pub fn parse(url: &str) -> Result<Proxy, String> {
        // Errors show the URL without its password (they reach logs).
        let shown = match url.rsplit_once('@') {
            Some((_, after)) => format!("(credentials hidden)@{after}"),
            None => url.to_string(),
        };
        let rest = url.strip_prefix("http://").unwrap_or(url);
        if rest.contains("://") {
            return Err(format!(
                "proxy {shown:?}: only http:// proxies (CONNECT) are supported"
            ));
        }
        let authority = rest.split('/').next().unwrap_or("");
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (host, port) = host_port(hostport, 8080).map_err(|e| format!("proxy {e}"))?;
        if host.is_empty() {
            return Err(format!("proxy {shown:?} has no host"));
        }
        let authorization = userinfo.map(|u| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(u)
            )
        });
        Ok(Proxy {
            host,
            port,
            authorization,
        })
    }

    /// The proxy for `cloud` from `HTTPS_PROXY`, unless `NO_PROXY` exempts it.
    pub fn from_env(cloud: &CloudUrl) -> Result<Option<Proxy>, String> {
        let var = |names: [&str; 2]| {
            names
                .iter()
                .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
        };
        let Some(url) = var(["HTTPS_PROXY", "https_proxy"]) else {
            return Ok(None);
        };
        let exempt = var(["NO_PROXY", "no_proxy"]).is_some_and(|list| {
            list.split(',').map(str::trim).any(|entry| {
                entry == "*"
                    || entry.eq_ignore_ascii_case(&cloud.host)
                    || (!entry.is_empty()
                        && cloud.host.to_ascii_lowercase().ends_with(&format!(
                            ".{}",
                            entry.trim_start_matches('.').to_ascii_lowercase()
                        )))
            })
        });
        if exempt {
            Ok(None)
        } else {
            Proxy::parse(&url).map(Some)
        }
    }
}

fn connect_tcp(host: &str, port: u16) -> Result<TcpStream, LinkError> {
    let addrs = (host, port)
        .to_socket_addrs()
        .map_err(|e| LinkError::Unreachable(format!("{host}:{port}: {e}")))?;
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, IO_TIMEOUT) {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                let _ = s.set_read_timeout(Some(IO_TIMEOUT));
                let _ = s.set_write_timeout(Some(IO_TIMEOUT));
                return Ok(s);
            }
            Err(e) => last = Some(format!("{addr}: {e}")),
        }
    }
    Err(LinkError::Unreachable(
        last.unwrap_or_else(|| format!("{host}:{port}: no address")),
    ))
}

/// Reads a response head (and nothing after it when `tunnel`, since TLS
/// follows) from `r`; returns the head and any body bytes already read.
fn read_head(r: &mut impl Read, tunnel: bool) -> Result<(http::ResponseHead, Vec<u8>), LinkError> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match http::parse_response(&buf, tunnel) {
            Ok(Some(head)) => {
                let rest = buf.split_off(head.head_len);
                return Ok((head, rest));
            }
            Ok(None) if buf.len() > 64 * 1024 => {
                return Err(LinkError::Protocol("response head too large".into()));
            }
            Ok(None) => {}
            Err(e) => return Err(LinkError::Protocol(e.to_string())),
        }
        // Through a proxy, read byte by byte until the tunnel is up, so no
        // byte of the TLS stream is taken here.
        let want = if tunnel { 1 } else { chunk.len() };
        let n = r
            .read(&mut chunk[..want])
            .map_err(|e| LinkError::Unreachable(format!("reading the response: {e}")))?;
        if n == 0 {
            return Err(LinkError::Unreachable(
                "the connection closed before a response".into(),
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Reads the rest of a body whose start (`got`) came with the head.
fn read_body(
    r: &mut impl Read,
    body: http::Body,
    mut got: Vec<u8>,
    host: &str,
) -> Result<Vec<u8>, LinkError> {
    let limit = match body {
        http::Body::Empty => return Ok(Vec::new()),
        http::Body::Length(len) if len > MAX_RESPONSE => {
            return Err(LinkError::Protocol(format!(
                "response of {len} bytes is too large"
            )));
        }
        http::Body::Length(len) => len,
        http::Body::UntilClose => MAX_RESPONSE,
    };
    let mut chunk = [0u8; 16 * 1024];
    while got.len() < limit {
        let n = match r.read(&mut chunk) {
            Ok(n) => n,
            // A peer that closes without TLS close_notify ends a body
            // delimited by the close all the same.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
            Err(e) => return Err(LinkError::Unreachable(format!("{host}: {e}"))),
        };
        if n == 0 {
            if body == http::Body::UntilClose {
                return Ok(got);
            }
            return Err(LinkError::Unreachable(format!(
                "{host}: the connection closed mid-response"
            )));
        }
        got.extend_from_slice(&chunk[..n]);
    }
    if body == http::Body::UntilClose {
        return Err(LinkError::Protocol(format!(
            "response over {MAX_RESPONSE} bytes"
        )));
    }
    got.truncate(limit);
    Ok(got)
}

fn tunnel(proxy: &Proxy, cloud: &CloudUrl) -> Result<TcpStream, LinkError> {
    let mut s = connect_tcp(&proxy.host, proxy.port)
        .map_err(|e| LinkError::Unreachable(format!("proxy {}:{}: {e}", proxy.host, proxy.port)))?;
    // CONNECT always names the port, even 443.
    let authority = if cloud.host.contains(':') {
        format!("[{}]:{}", cloud.host, cloud.port)
    } else {
        format!("{}:{}", cloud.host, cloud.port)
    };
    let mut head = [0u8; 1024];
    let n = http::write_connect(&mut head, &authority, proxy.authorization.as_deref())
        .map_err(|e| LinkError::Protocol(e.to_string()))?;
    s.write_all(&head[..n])
        .map_err(|e| LinkError::Unreachable(format!("proxy {}:{}: {e}", proxy.host, proxy.port)))?;
    let (resp, _) = read_head(&mut s, true)?;
    match resp.status {
        200..=299 => Ok(s),
        407 => Err(LinkError::Unreachable(format!(
            "proxy {}:{} wants credentials (407): put them in the proxy URL",
            proxy.host, proxy.port
        ))),
        other => Err(LinkError::Unreachable(format!(
            "proxy {}:{} refused the tunnel to {authority} with HTTP {other}",
            proxy.host, proxy.port
        ))),
    }
}

/// An answer: HTTP status and body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

#[derive(Debug)]
pub struct Link {
    cloud: CloudUrl,
    tls: Arc<ClientConfig>,
    proxy: Option<Proxy>,
    stream: Option<StreamOwned<ClientConnection, TcpStream>>,
    /// How long the next answer may be held on purpose (a `listen`).
    wait: Duration,
    /// A second handle on the connection's socket, for [`Interrupter`].
    current: Interrupter,
}

/// Cuts a [`Link`]'s connection from another thread while the cloud holds
/// an answer on purpose (a `listen`): a service that stops then does not
/// wait out the hold. Any other exchange (an upload, a task result) is
/// left to finish, so a stop loses no answer.
#[derive(Debug, Clone, Default)]
pub struct Interrupter(Arc<std::sync::Mutex<Cut>>);

#[derive(Debug, Default)]
struct Cut {
    socket: Option<TcpStream>,
    /// An answer is being held on purpose now.
    holding: bool,
    /// A stop came: no answer is waited for on purpose any more (a stop
    /// just before a `listen` is sent must not wait out its hold).
    stopped: bool,
}

impl Interrupter {
    /// Shuts the connection down if its answer is being held: a read under
    /// way returns at once.
    pub fn interrupt(&self) {
        let mut cut = self.cut();
        cut.stopped = true;
        if let (true, Some(s)) = (cut.holding, cut.socket.as_ref()) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }

    fn cut(&self) -> std::sync::MutexGuard<'_, Cut> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set(&self, s: Option<TcpStream>) {
        self.cut().socket = s;
    }

    /// Marks a held answer awaited (or no longer); false when a stop came
    /// first, so the caller does not wait for it.
    fn holding(&self, held: bool) -> bool {
        let mut cut = self.cut();
        cut.holding = held;
        !(held && cut.stopped)
    }
}

impl Link {
    pub fn new(cloud: CloudUrl, tls: Arc<ClientConfig>, proxy: Option<Proxy>) -> Link {
        Link {
            cloud,
            tls,
            proxy,
            stream: None,
            wait: Duration::ZERO,
            current: Interrupter::default(),
        }
    }

    /// Drops the connection, and the interrupter's handle on its socket
    /// (which would otherwise keep it open).
    fn forget_stream(&mut self) {
        self.stream = None;
        self.current.set(None);
    }

    /// What cuts this link's connections from another thread.
    pub fn interrupter(&self) -> Interrupter {
        self.current.clone()
    }

    /// The next exchange's answer may be held `wait` by the cloud: its read
    /// deadline is that much longer.
    pub fn set_wait(&mut self, wait: Duration) {
        self.wait = wait;
    }

    fn open(&self) -> Result<StreamOwned<ClientConnection, TcpStream>, LinkError> {
        let tcp = match &self.proxy {
            Some(p) => tunnel(p, &self.cloud)?,
            None => connect_tcp(&self.cloud.host, self.cloud.port)?,
        };
        let name = ServerName::try_from(self.cloud.host.clone())
            .map_err(|e| LinkError::Protocol(format!("{}: {e}", self.cloud.host)))?;
        let conn = ClientConnection::new(self.tls.clone(), name)
            .map_err(|e| LinkError::Untrusted(e.to_string()))?;
        self.current.set(tcp.try_clone().ok());
        let mut stream = StreamOwned::new(conn, tcp);
        // Finish the handshake now, so a refused certificate is reported as
        // such rather than as a failed write.
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock).map_err(|e| {
                match e
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                {
                    Some(tls) => LinkError::Untrusted(tls.to_string()),
                    None => LinkError::Unreachable(format!(
                        "TLS handshake with {}: {e}",
                        self.cloud.to_url()
                    )),
                }
            })?;
        }
        Ok(stream)
    }

    /// Posts one CBOR body and returns the answer. A connection the server
    /// closed in between is re-opened once.
    pub fn exchange(
        &mut self,
        authorization: Option<&str>,
        body: &[u8],
    ) -> Result<Answer, LinkError> {
        let reused = self.stream.is_some();
        match self.try_exchange(authorization, body) {
            Err(LinkError::Unreachable(_)) if reused => {
                self.forget_stream();
                self.try_exchange(authorization, body)
            }
            other => other,
        }
    }

    fn try_exchange(
        &mut self,
        authorization: Option<&str>,
        body: &[u8],
    ) -> Result<Answer, LinkError> {
        if self.stream.is_none() {
            self.stream = Some(self.open()?);
        }
        let host = self.cloud.authority();
        let Some(stream) = self.stream.as_mut() else {
            return Err(LinkError::Unreachable("no connection".into()));
        };
        let mut head = vec![0u8; 1024 + authorization.map_or(0, str::len)];
        let n = http::write_post(
            &mut head,
            &http::PostHead {
                host: &host,
                path: ENDPOINT,
                authorization,
                content_type: CONTENT_TYPE,
                content_length: body.len(),
                user_agent: concat!("dca/", env!("CARGO_PKG_VERSION")),
            },
        )
        .map_err(|e| LinkError::Protocol(e.to_string()))?;
        let mut out = Vec::with_capacity(n + body.len());
        out.extend_from_slice(&head[..n]);
        out.extend_from_slice(body);
        let lost = |e: std::io::Error| LinkError::Unreachable(format!("{}: {e}", host));
        let _ = stream
            .sock
            .set_read_timeout(Some(IO_TIMEOUT.saturating_add(self.wait)));
        stream.write_all(&out).map_err(lost)?;
        stream.flush().map_err(lost)?;
        // Only a held answer may be cut by a stop; the rest are waited for.
        if !self.current.holding(!self.wait.is_zero()) {
            self.current.holding(false);
            self.forget_stream();
            return Err(LinkError::Unreachable(format!(
                "{host}: stopping: the held answer is not waited for"
            )));
        }
        let head = read_head(stream, false);
        self.current.holding(false);
        let (resp, got) = head?;
        let body = match read_body(stream, resp.body, got, &host) {
            Ok(b) => b,
            Err(e) => {
                self.forget_stream();
                return Err(e);
            }
        };
        if resp.close {
            self.forget_stream();
        }
        Ok(Answer {
            status: resp.status,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloud_urls() {
        assert_eq!(
            CloudUrl::parse("https://c.example").unwrap(),
            CloudUrl {
                host: "c.example".into(),
                port: 443
            }
        );
        assert_eq!(
            CloudUrl::parse("https://127.0.0.1:8443/").unwrap().port,
            8443
        );
        let v6 = CloudUrl::parse("https://[::1]:9443").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 9443));
        assert_eq!(v6.to_url(), "https://[::1]:9443");
        assert!(
            CloudUrl::parse("http://c.example")
                .unwrap_err()
                .contains("https://")
        );
        assert!(
            CloudUrl::parse("https://c:x")
                .unwrap_err()
                .contains("port that is not a number")
        );
    }

    #[test]
    fn proxies() {
        let p = Proxy::parse("http://user:pw@proxy.corp:3128").unwrap();
        assert_eq!((p.host.as_str(), p.port), ("proxy.corp", 3128));
        assert_eq!(p.authorization.as_deref(), Some("Basic dXNlcjpwdw=="));
        assert_eq!(Proxy::parse("proxy.corp").unwrap().port, 8080);
        assert!(Proxy::parse("socks5://p:1080").is_err());
    }
}
