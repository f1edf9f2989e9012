//! A cloud that hands out a script of relay answers, and a device's web
//! server on a loopback address that counts its connections.

use super::super::{Clock, IdentityReader, Limits, Relay};
use crate::cloud_link::{Answer, LinkError};
use crate::cloud_session::{Log, Transport};
use dca_core::sync::http;
use dca_core::sync::message::{Request, Response};
use dca_core::sync::web_access::Opening;
use dca_core::time::{Duration, Instant};
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};

/// What the cloud answers a relay with, in turn.
#[derive(Debug, Clone)]
pub enum Step {
    Forward {
        method: &'static str,
        path: String,
        head: Vec<u8>,
        body: Vec<u8>,
    },
    Idle,
    Closed,
    /// The connection fails.
    Down,
    /// `rejected` with this code.
    Refuse(u16),
}

pub fn get(path: &str) -> Step {
    Step::Forward {
        method: "GET",
        path: path.into(),
        head: b"Accept: text/html\r\n".to_vec(),
        body: Vec::new(),
    }
}

pub fn forward(method: &'static str, path: &str, head: &[u8], body: &[u8]) -> Step {
    Step::Forward {
        method,
        path: path.into(),
        head: head.to_vec(),
        body: body.to_vec(),
    }
}

/// An answer a relay carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Carried {
    pub seq: u64,
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
    pub refused: Option<String>,
}

#[derive(Debug, Default)]
pub struct CloudState {
    pub steps: VecDeque<Step>,
    /// What each relay carried, in order (`None`: no answer).
    pub relays: Vec<Option<Carried>>,
    /// How far each exchange moves the clock (a hold), in ms.
    pub step_ms: u64,
    seq: u64,
}

/// The cloud's side of the relay, in memory. When the script runs out it
/// closes the session, so every relay ends.
#[derive(Debug, Clone, Default)]
pub struct FakeCloud {
    pub state: Arc<Mutex<CloudState>>,
    pub clock: Arc<AtomicU64>,
}

fn encode(r: &Response<'_>) -> Vec<u8> {
    let mut out = vec![0u8; r.encoded_len()];
    let n = r.encode(&mut out).unwrap();
    out.truncate(n);
    out
}

impl FakeCloud {
    pub fn new(steps: Vec<Step>) -> FakeCloud {
        let cloud = FakeCloud::default();
        cloud.state.lock().unwrap().steps = steps.into();
        cloud
    }

    pub fn relays(&self) -> Vec<Option<Carried>> {
        self.state.lock().unwrap().relays.clone()
    }

    /// The answers carried, in order.
    pub fn answers(&self) -> Vec<Carried> {
        self.relays().into_iter().flatten().collect()
    }

    /// The relay's clock: this cloud's.
    pub fn time(&self) -> Clock {
        let ms = self.clock.clone();
        Arc::new(move || Instant::from_millis(ms.load(Ordering::SeqCst)))
    }
}

impl Transport for FakeCloud {
    fn exchange(
        &mut self,
        authorization: Option<&str>,
        body: &[u8],
        wait: Option<std::time::Duration>,
    ) -> Result<Answer, LinkError> {
        assert_eq!(authorization, Some("Bearer agt_1:s3cret"));
        assert_eq!(wait, Some(std::time::Duration::from_secs(25)), "held");
        let mut c = self.state.lock().unwrap();
        self.clock.fetch_add(c.step_ms, Ordering::SeqCst);
        let Request::Relay { session, answer } = Request::decode(body).unwrap() else {
            panic!("not a relay");
        };
        assert_eq!(session, 7);
        c.relays.push(answer.map(|a| Carried {
            seq: a.seq,
            status: a.status,
            head: String::from_utf8_lossy(a.head).into_owned(),
            body: a.body.to_vec(),
            refused: a.refused.map(str::to_string),
        }));
        let ok = |r: Response<'_>| {
            Ok(Answer {
                status: 200,
                body: encode(&r),
            })
        };
        match c.steps.pop_front().unwrap_or(Step::Closed) {
            Step::Forward {
                method,
                path,
                head,
                body,
            } => {
                c.seq += 1;
                ok(Response::Forward {
                    seq: c.seq,
                    method,
                    path: &path,
                    head: &head,
                    body: &body,
                })
            }
            Step::Idle => ok(Response::RelayIdle),
            Step::Closed => ok(Response::RelayClosed),
            Step::Down => Err(LinkError::Unreachable("127.64.0.9:443: reset".into())),
            Step::Refuse(code) => Ok(Answer {
                status: code,
                body: encode(&Response::Rejected {
                    code,
                    reason: "no such session",
                }),
            }),
        }
    }
}

/// A transport that says when the relay holding it let it go (the relay
/// has ended).
pub struct Signalling(pub FakeCloud, pub mpsc::Sender<()>);

impl Transport for Signalling {
    fn exchange(
        &mut self,
        authorization: Option<&str>,
        body: &[u8],
        wait: Option<std::time::Duration>,
    ) -> Result<Answer, LinkError> {
        self.0.exchange(authorization, body, wait)
    }
}

impl Drop for Signalling {
    fn drop(&mut self) {
        let _ = self.1.send(());
    }
}

/// Serials the identity reader reports, in turn, and how often it read.
#[derive(Debug, Clone, Default)]
pub struct Identities {
    pub script: Arc<Mutex<VecDeque<Result<String, String>>>>,
    pub reads: Arc<AtomicUsize>,
}

impl Identities {
    /// Reports `serial` every time.
    pub fn always(serial: &str) -> Identities {
        let ids = Identities::default();
        ids.script.lock().unwrap().push_back(Ok(serial.into()));
        ids
    }

    pub fn reader(&self) -> IdentityReader {
        let (script, reads) = (self.script.clone(), self.reads.clone());
        Arc::new(move |_| {
            reads.fetch_add(1, Ordering::SeqCst);
            let mut s = script.lock().unwrap();
            // The last one stays.
            if s.len() > 1 {
                s.pop_front().unwrap()
            } else {
                s.front().cloned().unwrap_or(Err("nothing answered".into()))
            }
        })
    }

    pub fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }
}

pub const SERIAL: &str = "VNC3K12345";

pub fn opening(target: SocketAddr, ttl_s: u64) -> Opening {
    Opening {
        session: 7,
        target,
        https: false,
        serial: heapless::String::try_from(SERIAL).unwrap(),
        ttl: Duration::from_secs(ttl_s),
    }
}

/// Limits for tests: no pause between tries.
pub fn limits() -> Limits {
    Limits {
        backoff: std::time::Duration::ZERO,
        ..Limits::default()
    }
}

pub fn relay(cloud: &FakeCloud, opening: Opening, ids: &Identities) -> Relay {
    Relay {
        opening,
        authorization: "Bearer agt_1:s3cret".into(),
        link: Box::new(cloud.clone()),
        identity: ids.reader(),
        ports: crate::web_relay::ports(&[]),
        moved_from: None,
        limits: limits(),
        clock: cloud.time(),
        log: Log::new("test"),
    }
}

/// A device's web server: every connection gets `answer` and is closed.
/// It counts connections and keeps the requests it read.
pub struct Device {
    pub addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    requests: Arc<(Mutex<Vec<String>>, Condvar)>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Reads one request: its head, and as much body as it says it has.
pub fn read_request_from(s: &mut impl Read) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    // Bounded by the stream's read timeout and the size.
    while buf.len() < 1 << 20 {
        if let Ok(Some(h)) = http::parse_request(&buf)
            && buf.len() >= h.head_len + h.content_length
        {
            break;
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    buf
}

impl Device {
    /// Serves on `ip`, a port of the system's choosing.
    pub fn start(ip: [u8; 4], answer: Vec<u8>) -> Device {
        Device::serve(ip, move |mut s: TcpStream| {
            let request = read_request_from(&mut s);
            let _ = s.write_all(&answer);
            request
        })
    }

    /// Serves on `ip` with `handle`, which answers a connection and returns
    /// the request it read.
    pub fn serve(ip: [u8; 4], handle: impl Fn(TcpStream) -> Vec<u8> + Send + 'static) -> Device {
        let listener = TcpListener::bind(SocketAddr::from((ip, 0))).unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (c, r, st) = (connections.clone(), requests.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for s in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(s) = s else { continue };
                c.fetch_add(1, Ordering::SeqCst);
                let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(5)));
                let request = handle(s);
                r.0.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&request).into_owned());
                r.1.notify_all();
            }
        });
        Device {
            addr,
            connections,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// The requests of every connection taken so far: the device records
    /// one after it has answered, so this waits (a bounded time) for the
    /// connections the browser's side may have seen answered already.
    pub fn requests(&self) -> Vec<String> {
        let (list, recorded) = &*self.requests;
        let taken = self.connections();
        let (list, _) = recorded
            .wait_timeout_while(
                list.lock().unwrap(),
                std::time::Duration::from_secs(10),
                |l| l.len() < taken,
            )
            .unwrap();
        list.clone()
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept so the thread sees the stop.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// An HTTP/1.1 answer with a length.
pub fn answer(status: &str, headers: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}
