//! The real server in this process on a loopback address (each test file
//! its own range: 127.58.0.0/16, 127.60.0.0/16), and a TLS client for it
//! that can come from any address of that range, and an operator's
//! sign-in: what the hardening and sign-in tests and the abuse bench share.
//!
//! Every wait is bounded by the caller's deadline.

// Each user takes its own part of this module.
#![allow(dead_code)]

use dca_cloud::limits::Limits;
use dca_cloud::server::{Shared, serve};
use dca_cloud::store::{Role, Store};
use dca_cloud::tls;
use dca_cloud::totp::Totp;
use dca_core::sync::http::{self, Body};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

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
    let shared = Arc::new(Shared::with_limits(store, limits).log_to(Arc::new(
        move |line: &str| {
            sink.lock().unwrap().push(line.to_string());
            notify.notify_one();
        },
    )));
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
    let connector = connector_for(&dir);
    Server {
        addr,
        shared,
        dir,
        connector,
        log,
        logged,
        stop: Some(stop),
        task: Some(task),
    }
}

/// A TLS client that trusts the certificate a cloud made in `dir`.
pub fn connector_for(dir: &std::path::Path) -> TlsConnector {
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
    TlsConnector::from(Arc::new(config))
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

    /// A new operator account of `dealer` with `role`, made with the
    /// store's API. Each has its own name: a code is taken once, so two
    /// sign-ins of one account within a TOTP step would not both pass.
    pub fn add_operator(&self, role: Role, dealer: &str) -> Account {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let name = format!("op{}", NEXT.fetch_add(1, Ordering::Relaxed));
        let new = self
            .shared
            .store
            .lock()
            .unwrap()
            .add_operator(&name, role, dealer)
            .unwrap();
        Account {
            name,
            password: new.password,
            totp: new.totp,
        }
    }

    /// The code of `totp` now, on the server's clock (which a test may
    /// have moved).
    pub fn code(&self, totp: &Totp) -> String {
        let now_ms = self.shared.store.lock().unwrap().now();
        totp.code_at(u64::try_from(now_ms / 1000).unwrap())
    }

    /// `GET /signin` from `from`: the form's token, which the answer also
    /// sets as the `__Host-dca_signin` cookie.
    pub async fn signin_token(&self, from: &str) -> String {
        let a = request(self, from, "GET", "/signin", "", b"")
            .await
            .unwrap();
        assert_eq!(a.status, 200, "{a:?}");
        let token = a.cookie("__Host-dca_signin").unwrap();
        assert_eq!(hidden_csrf(&a.body), token, "the form carries its cookie");
        token
    }

    /// `POST /signin` from `from` with the form's `token` (as cookie and
    /// field), `name`, `password` and `code`, and `extra` header lines.
    pub async fn post_signin(
        &self,
        from: &str,
        token: &str,
        fields: [(&str, &str); 3],
        extra: &str,
    ) -> Answer {
        let mut body = format!("csrf={}", form_encode(token));
        for (name, value) in fields {
            body.push_str(&format!("&{name}={}", form_encode(value)));
        }
        let headers = format!(
            "Cookie: __Host-dca_signin={token}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\n{extra}"
        );
        request(self, from, "POST", "/signin", &headers, body.as_bytes())
            .await
            .unwrap()
    }

    /// A new operator of `dealer` with `role`, signed in from `from` as a
    /// browser does it (the form, then the form posted): its session.
    pub async fn sign_in(&self, from: &str, role: Role, dealer: &str) -> Signed {
        let account = self.add_operator(role, dealer);
        let token = self.signin_token(from).await;
        let code = self.code(&account.totp);
        let a = self
            .post_signin(
                from,
                &token,
                [
                    ("name", &account.name),
                    ("password", &account.password),
                    ("code", &code),
                ],
                "Origin: https://cloud\r\n",
            )
            .await;
        assert_eq!(a.status, 303, "{a:?}");
        let session = a.cookie("__Host-dca_session").unwrap();
        let cookie = format!("Cookie: __Host-dca_session={session}\r\n");
        let page = request(self, from, "GET", "/", &cookie, b"").await.unwrap();
        assert_eq!(page.status, 200, "{page:?}");
        Signed {
            name: account.name,
            session,
            cookie,
            csrf: hidden_csrf(&page.body),
        }
    }

    /// A session of a new operator of `dealer` with `role`, opened with the
    /// store's API, for tests about something else that must not spend
    /// connections on a sign-in (slot counts).
    pub fn session(&self, role: Role, dealer: &str) -> Signed {
        let account = self.add_operator(role, dealer);
        let mut store = self.shared.store.lock().unwrap();
        let id = store.sign_in_candidate(&account.name).unwrap().unwrap().id;
        let new = store.create_session(id).unwrap();
        Signed {
            name: account.name,
            cookie: format!("Cookie: __Host-dca_session={}\r\n", new.token),
            session: new.token,
            csrf: new.csrf,
        }
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

/// An operator account, with the secrets `operator add` shows once.
#[derive(Debug)]
pub struct Account {
    pub name: String,
    pub password: String,
    pub totp: Totp,
}

/// A signed-in operator: its session's token, the `Cookie` header line
/// that carries it, and the token its forms carry.
#[derive(Debug, Clone)]
pub struct Signed {
    pub name: String,
    pub session: String,
    pub cookie: String,
    pub csrf: String,
}

/// The value of the first hidden `csrf` field of a page.
pub fn hidden_csrf(page: &[u8]) -> String {
    let page = String::from_utf8_lossy(page);
    let (_, rest) = page
        .split_once("name=csrf value=\"")
        .unwrap_or_else(|| panic!("no csrf field in {page}"));
    rest.split('"').next().unwrap().to_string()
}

/// `value` for a form body: everything but letters and digits escaped.
pub fn form_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
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

    /// Every value of header `name` (case-insensitive), in order.
    pub fn headers(&self, name: &str) -> Vec<&str> {
        self.head
            .lines()
            .filter_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
            })
            .collect()
    }

    /// The whole `Set-Cookie` line that sets cookie `name`.
    pub fn set_cookie(&self, name: &str) -> Option<&str> {
        self.headers("Set-Cookie")
            .into_iter()
            .find(|c| c.starts_with(&format!("{name}=")))
    }

    /// The value a `Set-Cookie` gives cookie `name`.
    pub fn cookie(&self, name: &str) -> Option<String> {
        let line = self.set_cookie(name)?;
        let (_, rest) = line.split_once('=')?;
        Some(rest.split(';').next().unwrap_or("").to_string())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
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
