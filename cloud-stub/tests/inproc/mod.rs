//! The real server in this process on a loopback address of 127.58.0.0/16,
//! and a TLS client for it that can come from any address of that range:
//! what the hardening tests and the abuse bench share.
//!
//! Every wait is bounded by the caller's deadline.

// Each user takes its own part of this module.
#![allow(dead_code)]

use dca_cloud::limits::Limits;
use dca_cloud::server::{Shared, serve};
use dca_cloud::store::Store;
use dca_cloud::tls;
use dca_core::sync::http::{self, Body};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

pub const OPERATOR: &str = "Basic b3BlcmF0b3I6c2VzYW1l"; // operator:sesame

/// A server under test; stopped (and its audit windows written) by
/// [`Server::stop`], or aborted when dropped.
pub struct Server {
    pub addr: SocketAddr,
    pub shared: Arc<Shared>,
    pub dir: PathBuf,
    pub connector: TlsConnector,
    /// What the server logged.
    pub log: Arc<Mutex<Vec<String>>>,
    /// Notified at each line logged.
    pub logged: Arc<tokio::sync::Notify>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

pub fn fresh_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("dca-inproc-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Starts a server on `ip` (port chosen by the system) with `limits`, in
/// the current runtime.
pub async fn start(name: &str, ip: &str, limits: Limits) -> Server {
    let dir = fresh_dir(name);
    let store = Store::open(&dir.join("cloud.db")).unwrap();
    let identity = tls::identity(None, None, &dir, &[ip.to_string()]).unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let logged = Arc::new(tokio::sync::Notify::new());
    let (sink, notify) = (log.clone(), logged.clone());
    let shared = Arc::new(
        Shared::with_limits(store, OPERATOR.to_string(), limits).log_to(Arc::new(
            move |line: &str| {
                sink.lock().unwrap().push(line.to_string());
                notify.notify_one();
            },
        )),
    );
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve(
        listener,
        tokio_rustls::TlsAcceptor::from(identity.config),
        shared.clone(),
        async {
            let _ = stopped.await;
        },
    ));
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(dir.join("dca-cloud-cert.pem")).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    Server {
        addr,
        shared,
        dir,
        connector: TlsConnector::from(Arc::new(config)),
        log,
        logged,
        stop: Some(stop),
        task: Some(task),
    }
}

impl Server {
    /// Stops the server; it writes its open audit windows as it ends.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(30), t)
                .await
                .expect("the server stops within 30 s")
                .unwrap();
        }
    }

    /// A TCP connection from `from` (an address of 127.58.0.0/16).
    pub async fn tcp(&self, from: &str) -> std::io::Result<TcpStream> {
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(from.parse::<IpAddr>().unwrap(), 0))?;
        socket.connect(self.addr).await
    }

    /// A TLS connection from `from`, handshake done, within 10 s.
    pub async fn tls(&self, from: &str) -> std::io::Result<TlsStream<TcpStream>> {
        let tcp = self.tcp(from).await?;
        let name = rustls::pki_types::ServerName::from(self.addr.ip());
        match tokio::time::timeout(Duration::from_secs(10), self.connector.connect(name, tcp)).await
        {
            Ok(r) => r,
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "TLS handshake not done within 10 s",
            )),
        }
    }

    /// Enrolls an agent of `customer`; its `Authorization` value.
    pub fn agent(&self, customer: &str) -> String {
        let mut store = self.shared.store.lock().unwrap();
        let token = store.create_token(customer).unwrap();
        let e = store.enroll(&token, "host", "0.2.0", "test").unwrap();
        format!("Bearer {}:{}", e.agent_id, e.secret)
    }

    /// Lines logged so far that contain `what`.
    pub fn logged_lines(&self, what: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(what))
            .count()
    }

    /// Waits until a line containing `what` was logged, `within` at most;
    /// whether one was.
    pub async fn wait_for_line(&self, what: &str, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if self.logged_lines(what) > 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, self.logged.notified())
                .await
                .is_err()
            {
                return self.logged_lines(what) > 0;
            }
        }
    }

    pub fn count(&self, sql: &str) -> i64 {
        self.shared
            .store
            .lock()
            .unwrap()
            .connection()
            .query_row(sql, [], |r| r.get(0))
            .unwrap()
    }
}

/// An answer as read off the wire.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Answer {
    /// A header's value (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
}

/// A request's head: `extra` lines end with CRLF.
pub fn head(method: &str, path: &str, extra: &str, body_len: usize) -> Vec<u8> {
    format!("{method} {path} HTTP/1.1\r\nHost: cloud\r\nContent-Length: {body_len}\r\n{extra}\r\n")
        .into_bytes()
}

/// Reads one answer from `s` within `within`.
pub async fn read_answer<S: AsyncReadExt + Unpin>(
    s: &mut S,
    within: Duration,
) -> std::io::Result<Answer> {
    let deadline = tokio::time::Instant::now() + within;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Ok(Some(h)) = http::parse_response(&buf, false) {
            let len = match h.body {
                Body::Length(n) => n,
                _ => 0,
            };
            if buf.len() >= h.head_len + len {
                return Ok(Answer {
                    status: h.status,
                    head: String::from_utf8_lossy(&buf[..h.head_len]).into_owned(),
                    body: buf[h.head_len..h.head_len + len].to_vec(),
                });
            }
        }
        let n = match tokio::time::timeout_at(deadline, s.read(&mut chunk)).await {
            Ok(r) => r?,
            Err(_) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no whole answer within {within:?} ({} bytes)", buf.len()),
                ));
            }
        };
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("closed after {} bytes of an answer", buf.len()),
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// One request on a new connection from `from`; its answer within 10 s.
pub async fn request(
    server: &Server,
    from: &str,
    method: &str,
    path: &str,
    extra: &str,
    body: &[u8],
) -> std::io::Result<Answer> {
    let mut s = server.tls(from).await?;
    let mut bytes = head(method, path, extra, body.len());
    bytes.extend_from_slice(body);
    s.write_all(&bytes).await?;
    s.flush().await?;
    read_answer(&mut s, Duration::from_secs(10)).await
}

/// Whether the peer closed `s` (or reset it) within `within`: reads and
/// drops whatever comes until then.
pub async fn closed_within<S: AsyncReadExt + Unpin>(s: &mut S, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    let mut chunk = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
            Err(_) => return false,
        }
    }
}
