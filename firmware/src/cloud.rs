//! The device's connection to the dealer's cloud: TCP through embassy-net,
//! TLS 1.3 through embedded-tls with the trust of the provisioning block
//! (cloud-tls: key pins or a CA), and the core's HTTP/1.1 framing around
//! the session's CBOR bodies. One connection carries the exchanges of a
//! burst (a round, usually) and is closed when the burst ends, so its
//! buffers can serve the next sweep.
//!
//! A connection is used only once the verifier says the server proved it is
//! the cloud: embedded-tls completes a handshake in which the server sent no
//! certificate without asking the verifier.

use core::fmt;
use core::net::Ipv4Addr;

use cloud_tls::{CloudVerifier, Provider, Refusal, Trust};
use dca_core::sync::http::{self, Body, HttpError, PostHead};
use dca_core::sync::url::CloudUrl;
use dca_core::sync::{CONTENT_TYPE, ENDPOINT};
use embassy_net::Stack;
use embassy_net::tcp::{ConnectError, TcpSocket};
use embassy_time::{Duration, with_timeout};
use embedded_tls::{Aes128GcmSha256, TlsConfig, TlsConnection, TlsContext, TlsError};
use rand_chacha::ChaCha20Rng;

/// The longest TLS record the device reads. TLS allows 16 KiB records
/// (RFC 8446 5.1); dca-cloud sends none above 8 KiB (its `MAX_RECORD`),
/// which halves the buffer. A larger record fails the connection
/// (embedded-tls: InsufficientSpace), it never overflows.
pub const TLS_READ: usize = 8192 + 256;
/// Records the device writes are cut at this size.
pub const TLS_WRITE: usize = 1024;
/// The TCP socket's buffers (the window it offers, and what waits to be
/// acknowledged).
pub const TCP_RX: usize = 2048;
pub const TCP_TX: usize = 1024;
/// What a connection borrows: see [`LinkBuffers::split`].
pub const LINK_BYTES: usize = TLS_READ + TLS_WRITE + TCP_RX + TCP_TX;
/// The longest HTTP head accepted from the cloud.
const HEAD_ROOM: usize = 512;
/// Connecting, the handshake, and each exchange get this long.
const CONNECT_TIME: Duration = Duration::from_secs(15);
const HANDSHAKE_TIME: Duration = Duration::from_secs(30);
const EXCHANGE_TIME: Duration = Duration::from_secs(30);

/// A connection's buffers, carved from memory the sweeps use between
/// connections (agent.rs).
pub struct LinkBuffers<'a> {
    pub tcp_rx: &'a mut [u8],
    pub tcp_tx: &'a mut [u8],
    pub tls_read: &'a mut [u8],
    pub tls_write: &'a mut [u8],
}

impl<'a> LinkBuffers<'a> {
    /// Cuts `bytes` (at least [`LINK_BYTES`]) into a connection's buffers.
    pub fn split(bytes: &'a mut [u8]) -> Option<Self> {
        let (tls_read, rest) = bytes.split_at_mut_checked(TLS_READ)?;
        let (tls_write, rest) = rest.split_at_mut_checked(TLS_WRITE)?;
        let (tcp_rx, rest) = rest.split_at_mut_checked(TCP_RX)?;
        let tcp_tx = rest.get_mut(..TCP_TX)?;
        Some(LinkBuffers {
            tcp_rx,
            tcp_tx,
            tls_read,
            tls_write,
        })
    }
}

/// Where the cloud is and how it is trusted (from the provisioning block).
pub struct CloudTarget<'a> {
    pub url: CloudUrl<'a>,
    /// The `Host` header: `host[:port]`.
    host_header: heapless::String<{ dca_core::provision::MAX_CLOUD_URL + 8 }>,
    /// The address connected to (the URL's host is an IPv4 address).
    pub address: Ipv4Addr,
    pub trust: Trust<'a>,
    /// `User-Agent`.
    pub agent: &'a str,
}

impl<'a> CloudTarget<'a> {
    /// The block's cloud, or why the device cannot reach it.
    pub fn new(url: &'a str, trust: Trust<'a>, agent: &'a str) -> Result<Self, LinkError> {
        let url = CloudUrl::parse(url).map_err(|_| LinkError::Url)?;
        // This image resolves no names: the block gives the cloud's address
        // (`dca provision` says so when it is given a name).
        let address = url.host.parse().map_err(|_| LinkError::NotAnAddress)?;
        let mut host_header = heapless::String::new();
        fmt::write(&mut host_header, format_args!("{url}")).map_err(|_| LinkError::Url)?;
        Ok(CloudTarget {
            url,
            host_header,
            address,
            trust,
            agent,
        })
    }
}

/// Why an exchange with the cloud failed.
#[derive(Debug, Clone, Copy)]
pub enum LinkError {
    Url,
    NotAnAddress,
    Connect(ConnectError),
    ConnectTimeout,
    /// The server is not the cloud: said by the verifier.
    Refused(Refusal),
    /// The handshake completed without the server proving it is the cloud.
    Unverified,
    Tls(TlsError),
    Timeout,
    /// The cloud closed the connection before its answer was complete.
    Closed,
    /// The answer's head is not HTTP, or larger than the device reads.
    Http(HttpError),
    /// The answer's body is larger than the buffer it is read into.
    TooLarge,
    /// The request does not fit the buffer it is framed in.
    RequestTooLarge,
}

impl LinkError {
    /// True when the server was refused as not the cloud: no request is
    /// sent, and the administrator must look.
    pub fn is_refusal(&self) -> bool {
        matches!(self, LinkError::Refused(_) | LinkError::Unverified)
    }
}

impl fmt::Display for LinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkError::Url => f.write_str("the cloud URL in the provisioning block does not parse"),
            LinkError::NotAnAddress => f.write_str(
                "the cloud URL names a host, and this image connects to IPv4 addresses only",
            ),
            LinkError::Connect(e) => write!(f, "cloud unreachable: TCP connect failed ({e:?})"),
            LinkError::ConnectTimeout => f.write_str("cloud unreachable: TCP connect timed out"),
            LinkError::Refused(why) => write!(f, "refusing the cloud's certificate: {why}"),
            LinkError::Unverified => f.write_str(
                "refusing the cloud: the handshake ended without the server proving its identity",
            ),
            LinkError::Tls(e) => write!(f, "TLS failed: {e:?}"),
            LinkError::Timeout => f.write_str("the cloud did not answer in time"),
            LinkError::Closed => f.write_str("the cloud closed the connection mid-answer"),
            LinkError::Http(e) => write!(f, "the cloud's answer: {e}"),
            LinkError::TooLarge => {
                f.write_str("the cloud's answer is larger than the device reads")
            }
            LinkError::RequestTooLarge => f.write_str("the request is larger than its buffer"),
        }
    }
}

/// An answer: its status and the length of its body, which is at the start
/// of the caller's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub len: usize,
    /// The cloud closes the connection after it.
    pub close: bool,
}

/// A verified TLS connection to the cloud.
pub struct Link<'a> {
    tls: TlsConnection<'a, TcpSocket<'a>, Aes128GcmSha256>,
}

impl<'a> Link<'a> {
    /// Connects and completes a handshake the verifier trusts.
    pub async fn open(
        stack: Stack<'a>,
        target: &CloudTarget<'_>,
        buffers: LinkBuffers<'a>,
        rng: &mut ChaCha20Rng,
    ) -> Result<Link<'a>, LinkError> {
        let mut socket = TcpSocket::new(stack, buffers.tcp_rx, buffers.tcp_tx);
        socket.set_timeout(Some(EXCHANGE_TIME));
        match with_timeout(
            CONNECT_TIME,
            socket.connect((target.address, target.url.port)),
        )
        .await
        {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(LinkError::Connect(e)),
            Err(_) => {
                socket.abort();
                return Err(LinkError::ConnectTimeout);
            }
        }
        let mut tls = TlsConnection::new(socket, buffers.tls_read, buffers.tls_write);
        let mut verifier = CloudVerifier::new(target.trust);
        // The name the certificate must hold (CA mode); sent as SNI only
        // when it is a name, as RFC 6066 wants.
        let _ = embedded_tls::TlsVerifier::<Aes128GcmSha256>::set_hostname_verification(
            &mut verifier,
            target.url.host,
        );
        let mut config = TlsConfig::new();
        if !target.url.host_is_address() {
            config = config.with_server_name(target.url.host);
        }
        let opened = with_timeout(
            HANDSHAKE_TIME,
            tls.open(TlsContext::new(
                &config,
                Provider {
                    rng: &mut *rng,
                    verifier: &mut verifier,
                },
            )),
        )
        .await;
        let result = match opened {
            Err(_) => Err(LinkError::Timeout),
            Ok(Err(e)) => Err(verifier
                .refusal()
                .map_or(LinkError::Tls(e), LinkError::Refused)),
            Ok(Ok(())) if !verifier.is_verified() => Err(verifier
                .refusal()
                .map_or(LinkError::Unverified, LinkError::Refused)),
            Ok(Ok(())) => Ok(()),
        };
        match result {
            Ok(()) => Ok(Link { tls }),
            Err(e) => {
                // No request reaches a server that is not the cloud: it
                // gets TLS's close alert, which carries nothing.
                if let Ok(mut socket) = tls.close().await.map_err(|(s, _)| s) {
                    socket.abort();
                }
                Err(e)
            }
        }
    }

    /// Posts the first `body_len` bytes of `buf`, then reads the answer's
    /// body into `buf` (from its start).
    pub async fn exchange(
        &mut self,
        target: &CloudTarget<'_>,
        authorization: Option<&str>,
        buf: &mut [u8],
        body_len: usize,
    ) -> Result<Answer, LinkError> {
        with_timeout(
            EXCHANGE_TIME,
            self.post(target, authorization, buf, body_len),
        )
        .await
        .unwrap_or(Err(LinkError::Timeout))
    }

    async fn post(
        &mut self,
        target: &CloudTarget<'_>,
        authorization: Option<&str>,
        buf: &mut [u8],
        body_len: usize,
    ) -> Result<Answer, LinkError> {
        let body = buf.get(..body_len).ok_or(LinkError::RequestTooLarge)?;
        let mut head = [0u8; HEAD_ROOM];
        let n = http::write_post(
            &mut head,
            &PostHead {
                host: &target.host_header,
                path: ENDPOINT,
                authorization,
                content_type: CONTENT_TYPE,
                content_length: body.len(),
                user_agent: target.agent,
            },
        )
        .map_err(|_| LinkError::RequestTooLarge)?;
        self.write_all(head.get(..n).unwrap_or(&[])).await?;
        self.write_all(body).await?;
        self.tls.flush().await.map_err(LinkError::Tls)?;
        self.read_answer(buf).await
    }

    async fn write_all(&mut self, mut bytes: &[u8]) -> Result<(), LinkError> {
        while !bytes.is_empty() {
            let n = self.tls.write(bytes).await.map_err(LinkError::Tls)?;
            bytes = bytes.get(n..).unwrap_or(&[]);
        }
        Ok(())
    }

    /// Reads a head, then its body into `out`.
    async fn read_answer(&mut self, out: &mut [u8]) -> Result<Answer, LinkError> {
        // The head and whatever of the body came with it arrive in `out`;
        // the body is then moved to the start.
        let mut got = 0usize;
        let head = loop {
            let room = out.get_mut(got..).filter(|r| !r.is_empty());
            let Some(room) = room else {
                return Err(LinkError::TooLarge);
            };
            let n = self.tls.read(room).await.map_err(LinkError::Tls)?;
            if n == 0 {
                return Err(LinkError::Closed);
            }
            got = got.saturating_add(n);
            let seen = out.get(..got).unwrap_or(&[]);
            match http::parse_response(seen, false) {
                Ok(Some(head)) => break head,
                Ok(None) if got >= HEAD_ROOM => {
                    return Err(LinkError::Http(HttpError::BufferTooSmall));
                }
                Ok(None) => {}
                Err(e) => return Err(LinkError::Http(e)),
            }
        };
        out.copy_within(head.head_len..got, 0);
        let mut len = got.saturating_sub(head.head_len);
        let want = match head.body {
            Body::Empty => 0,
            Body::Length(n) => n,
            // Read to the end the cloud marks by closing.
            Body::UntilClose => usize::MAX,
        };
        if want != usize::MAX && want > out.len() {
            return Err(LinkError::TooLarge);
        }
        while len < want {
            let Some(room) = out.get_mut(len..).filter(|r| !r.is_empty()) else {
                return Err(LinkError::TooLarge);
            };
            let n = match self.tls.read(room).await {
                Ok(n) => n,
                // Only the cloud's close_notify ends such a body: a bare
                // FIN or reset may be an attacker cutting it short.
                Err(TlsError::ConnectionClosed) if want == usize::MAX => 0,
                Err(e) => return Err(LinkError::Tls(e)),
            };
            if n == 0 {
                if want == usize::MAX {
                    break;
                }
                return Err(LinkError::Closed);
            }
            len = len.saturating_add(n);
        }
        Ok(Answer {
            status: head.status,
            len: len.min(want),
            close: head.close || want == usize::MAX,
        })
    }

    /// Ends the connection politely (close_notify, then FIN).
    pub async fn close(self) {
        match self.tls.close().await {
            Ok(mut socket) | Err((mut socket, _)) => {
                socket.close();
                let _ = with_timeout(Duration::from_secs(2), socket.flush()).await;
            }
        }
    }
}
